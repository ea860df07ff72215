#include "core/mapping.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/jscan.h"
#include "common/log.h"
#include "common/util.h"
#include "core/filter.h"

const char *const fanout_mapping_fields[] = {
    "sourceArn",  "id",          "type",           "destination", "active",
    "role",       "externalId",  "region",         "collapse",    "parallel",
    "convertDDB", "deaggregate", "appendNewlines", "onFailure",   "wholeRecord",
    "filter",     NULL,
};

static const char *const s_collapse_names[] = {"none", "JSON", "concat", "concat-b64"};

int fanout_collapse_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcasecmp(s, s_collapse_names[i]) == 0)
            return i;
    return -1;
}

const char *fanout_collapse_name(int mode)
{
    return mode >= 0 && mode < 4 ? s_collapse_names[mode] : "default";
}

static const char *s_json_type(const json_t *v)
{
    return fanout_json_type_name(v);
}

struct s_ctx {
    const json_t *obj;
    size_t index;
    const char *id;
    char *err;
    size_t err_len;
};

static int s_problem(struct s_ctx *c, const char *field, const char *fmt, ...)
    FANOUT_FMT(3, 4);
int fanout_mapping_vproblem(char *err, size_t err_len, size_t index, const char *id,
                            const char *field, const char *fmt, va_list ap)
{
    char rule[384];
    vsnprintf(rule, sizeof rule, fmt, ap);
    char q[FANOUT_QUOTE_SIZE];
    if (id)
        snprintf(err, err_len, "mapping \"%s\" (#%zu): field \"%s\": %s",
                 fanout_quote(q, id), index, field, rule);
    else
        snprintf(err, err_len, "mapping #%zu: field \"%s\": %s", index, field, rule);
    return -1;
}

static int s_problem(struct s_ctx *c, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fanout_mapping_vproblem(c->err, c->err_len, c->index, c->id, field, fmt, ap);
    va_end(ap);
    return -1;
}

/* A string field: required or optional (absent or null leaves *out NULL). */
static int s_string(struct s_ctx *c, const char *field, int required, const char **out)
{
    const json_t *v = json_object_get(c->obj, field);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return s_problem(c, field, "required, missing");
        return 0;
    }
    if (!json_is_string(v))
        return s_problem(c, field, "expected a string, got %s", s_json_type(v));
    if (json_string_length(v) == 0)
        return s_problem(c, field, "must not be empty");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return s_problem(c, field, "must not contain NUL characters");
    *out = json_string_value(v);
    return 0;
}

/* A boolean field, read strictly: "true" as a string is an error. */
static int s_bool(struct s_ctx *c, const char *field, int required, int dflt, int *out)
{
    const json_t *v = json_object_get(c->obj, field);
    *out = dflt;
    if (!v || json_is_null(v)) {
        if (required)
            return s_problem(c, field, "required, missing (expected true or false)");
        return 0;
    }
    char q[FANOUT_QUOTE_SIZE];
    if (!json_is_boolean(v))
        return s_problem(c, field, "expected a boolean (true or false), got %s%s%s%s",
                         s_json_type(v), json_is_string(v) ? " \"" : "",
                         json_is_string(v) ? fanout_quote(q, json_string_value(v)) : "",
                         json_is_string(v) ? "\"" : "");
    *out = json_is_true(v);
    return 0;
}

static int s_all(const char *s, const char *allowed_punct)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(allowed_punct, *s))
            return 0;
    return 1;
}

/* aws region names: us-east-1, eu-central-2, us-gov-west-1, cn-north-1... */
static int s_region_ok(const char *r)
{
    size_t n = strlen(r), parts = 0;
    if (n < 6 || n > 32 || !isdigit((unsigned char)r[n - 1]))
        return 0;
    for (const char *p = r; *p; p++) {
        if (*p == '-')
            parts++;
        else if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p))
            return 0;
    }
    return parts >= 2 && r[0] != '-' && !strstr(r, "--");
}

/* arn:<partition>:iam::<12 digits>:role/<path/name> */
static int s_role_ok(const char *arn)
{
    if (strncmp(arn, "arn:", 4) != 0)
        return 0;
    const char *p = strchr(arn + 4, ':');
    if (!p || strncmp(p, ":iam::", 6) != 0)
        return 0;
    p += 6;
    for (int i = 0; i < 12; i++)
        if (!isdigit((unsigned char)p[i]))
            return 0;
    return strncmp(p + 12, ":role/", 6) == 0 && p[18] != 0;
}

/* What aws-lambda-fanout's configuration reader (lib/configuration.js)
 * accepted and then dropped, per type: its CLI writes "collapse" (default
 * "none") for every type, and "role", "externalId", "region" when given.
 * Only these types and fields: anything else is used, or refused when
 * invalid. "collapse": "none" is not ignored on these types, since it is
 * what their plugins do. */
static const struct {
    const char *type;
    int collapse, aws; /* collapse ignored; role, externalId, region ignored */
} s_legacy[] = {
    {"lambda", 1, 0},
    {"es", 1, 0},
    {"memcached", 1, 1},
    {"redis", 1, 1},
};

/* Clear the settings of `m` that the original ignored (values already
 * checked), naming them in m->ignored. Returns -1 when out of memory. */
static int s_legacy_ignored(struct s_ctx *c, struct fanout_mapping *m)
{
    int collapse = 0, aws = 0;
    for (size_t i = 0; i < sizeof s_legacy / sizeof *s_legacy; i++)
        if (strcmp(m->type, s_legacy[i].type) == 0) {
            collapse = s_legacy[i].collapse;
            aws = s_legacy[i].aws;
        }
    if (!collapse && !aws)
        return 0;
    struct fanout_sbuf b = {0};
    char q[FANOUT_QUOTE_SIZE];
    int n = 0, rc = 0;
    if (c->id)
        rc |= fanout_sbuf_printf(&b, "mapping \"%s\" (#%zu): ", fanout_quote(q, c->id),
                                 c->index);
    else
        rc |= fanout_sbuf_printf(&b, "mapping #%zu: ", c->index);
    if (collapse && m->collapse > 0) {
        rc |= fanout_sbuf_printf(&b, "field \"collapse\" (\"%s\")",
                                 fanout_collapse_name(m->collapse));
        m->collapse = -1;
        n++;
    }
    const char *names[] = {"role", "externalId", "region"};
    const char **fields[] = {&m->role, &m->external_id, &m->region};
    for (size_t i = 0; aws && i < 3; i++)
        if (*fields[i]) {
            rc |= fanout_sbuf_printf(&b, "%sfield \"%s\" (\"%s\")", n ? ", " : "", names[i],
                                     fanout_quote(q, *fields[i]));
            *fields[i] = NULL;
            n++;
        }
    if (!n) {
        fanout_sbuf_free(&b);
        return 0;
    }
    rc |= fanout_sbuf_printf(&b,
                             ": ignored for type \"%s\", as aws-lambda-fanout ignored %s; "
                             "the mapping is used without %s",
                             m->type, n > 1 ? "them" : "it", n > 1 ? "them" : "it");
    if (rc != 0 || !b.bytes) {
        fanout_sbuf_free(&b);
        return -1;
    }
    m->ignored = (char *)b.bytes;
    return 0;
}

/* "onFailure": a destination object, or (as the table stores it) a string
 * holding one, parsed into a child mapping of the same source. Its
 * problems read `field "onFailure": field "<inner>": <rule>`. */
static int s_on_failure(struct s_ctx *c, struct fanout_mapping *m)
{
    static const char *const allowed[] = {"type", "destination", "role", "externalId",
                                          "region"};
    const json_t *v = json_object_get(m->json, "onFailure");
    if (!v || json_is_null(v))
        return 0;
    json_t *obj;
    if (json_is_string(v)) {
        json_error_t je;
        obj = json_loadb(json_string_value(v), json_string_length(v), JSON_DECODE_ANY, &je);
        if (!obj)
            return s_problem(c, "onFailure",
                             "expected a destination object or a string holding one, got "
                             "a string that is not JSON: column %d: %s",
                             je.column, je.text);
    } else {
        obj = json_deep_copy(v);
    }
    int rc = -1;
    if (!json_is_object(obj)) {
        s_problem(c, "onFailure",
                  "expected a destination object like {\"type\": \"sqs\", "
                  "\"destination\": \"https://sqs...\"}, got %s",
                  obj ? s_json_type(obj) : "nothing");
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach (obj, key, val) {
        int schema = 0, ok = 0;
        for (const char *const *f = fanout_mapping_fields; *f; f++)
            schema |= strcmp(*f, key) == 0;
        for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
            ok |= strcmp(allowed[i], key) == 0;
        if (schema && !ok) {
            s_problem(c, "onFailure",
                      "field \"%s\": not accepted in an on-failure destination (it takes "
                      "type, destination, role, externalId, region and its plugin's "
                      "options)",
                      key);
            goto out;
        }
    }
    struct fanout_sbuf id = {0};
    char why[768], prefix[FANOUT_QUOTE_SIZE + 48], q[FANOUT_QUOTE_SIZE];
    if (fanout_sbuf_printf(&id, "%s:onFailure", m->id) != 0 ||
        json_object_set_new(obj, "sourceArn", json_string(m->source_arn)) != 0 ||
        json_object_set_new(obj, "id", json_string(id.p)) != 0 ||
        json_object_set_new(obj, "active", json_true()) != 0 ||
        json_object_set_new(obj, "collapse", json_string("none")) != 0) {
        fanout_sbuf_free(&id);
        snprintf(c->err, c->err_len, "out of memory");
        goto out;
    }
    m->on_failure = fanout_mapping_parse(obj, c->index, why, sizeof why);
    if (!m->on_failure) {
        /* its messages name the child; say which field of ours it is */
        int n = snprintf(prefix, sizeof prefix,
                         "mapping \"%s\" (#%zu): ", fanout_quote(q, id.p), c->index);
        const char *rest = strncmp(why, prefix, (size_t)n) == 0 ? why + n : why;
        s_problem(c, "onFailure", "%s", rest);
    } else {
        rc = 0;
    }
    fanout_sbuf_free(&id);
out:
    json_decref(obj);
    return rc;
}

/* arn:<partition>:dynamodb:<region>:<account>:table/<name>/stream/<label> */
static int s_ddb_stream_arn(const char *arn)
{
    const char *p = arn;
    for (int i = 0; i < 2 && p; i++)
        p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL;
    return p && strncmp(p, "dynamodb:", 9) == 0 && strstr(p, ":table/") &&
           strstr(p, "/stream/");
}

/* "filter": an event pattern object, or a string holding one (the table's
 * form), compiled now. A name repeated in the string is refused, as in a
 * mapping file. */
static int s_filter(struct s_ctx *c, struct fanout_mapping *m)
{
    const json_t *v = json_object_get(c->obj, "filter");
    json_t *parsed = NULL;
    char why[384];
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        json_error_t je;
        const char *text = json_string_value(v);
        size_t len = json_string_length(v);
        parsed = json_loadb(text, len, 0, &je);
        if (!parsed)
            return s_problem(c, "filter",
                             "the string is not an event pattern in JSON: line %d, column "
                             "%d: %s",
                             je.line, je.column, je.text);
        struct fanout_arena a = {0};
        const struct fanout_jnode *n = fanout_jscan(text, len, &a, why, sizeof why);
        int dup = n ? fanout_jdup(n, &a, why, sizeof why) : -1;
        fanout_arena_free(&a);
        if (dup != 0) {
            json_decref(parsed);
            if (dup < 0)
                return s_problem(c, "filter", "cannot be read (out of memory)");
            return s_problem(c, "filter",
                             "%s: appears more than once (a name may appear once per "
                             "object)",
                             why);
        }
        v = parsed;
    } else if (!json_is_object(v)) {
        return s_problem(c, "filter",
                         "expected an event pattern: a JSON object, or a string holding "
                         "one, got %s",
                         s_json_type(v));
    }
    m->filter = fanout_filter_compile(v, why, sizeof why);
    json_decref(parsed);
    return m->filter ? 0 : s_problem(c, "filter", "%s", why);
}

struct fanout_mapping *fanout_mapping_parse(const json_t *obj, size_t index, char *err,
                                            size_t err_len)
{
    struct s_ctx c = {obj, index, NULL, err, err_len};
    char q[FANOUT_QUOTE_SIZE];
    if (!json_is_object(obj)) {
        snprintf(err, err_len, "mapping #%zu: expected an object, got %s", index,
                 s_json_type(obj));
        return NULL;
    }
    const json_t *idv = json_object_get(obj, "id");
    if (json_is_string(idv) && json_string_length(idv) > 0)
        c.id = json_string_value(idv);

    struct fanout_mapping *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    m->collapse = -1;
    const char *collapse = NULL;
    if (s_string(&c, "sourceArn", 1, &m->source_arn) || s_string(&c, "id", 1, &m->id) ||
        s_string(&c, "type", 1, &m->type) ||
        s_string(&c, "destination", 1, &m->destination) ||
        s_bool(&c, "active", 1, 0, &m->active) || s_string(&c, "role", 0, &m->role) ||
        s_string(&c, "externalId", 0, &m->external_id) ||
        s_string(&c, "region", 0, &m->region) || s_string(&c, "collapse", 0, &collapse) ||
        s_bool(&c, "parallel", 0, 1, &m->parallel) ||
        s_bool(&c, "convertDDB", 0, 0, &m->convert_ddb) ||
        s_bool(&c, "deaggregate", 0, 0, &m->deaggregate) ||
        s_bool(&c, "appendNewlines", 0, 0, &m->append_newlines) ||
        s_bool(&c, "wholeRecord", 0, 0, &m->whole_record))
        goto fail;

    if (strncmp(m->source_arn, "arn:", 4) != 0) {
        s_problem(&c, "sourceArn",
                  "expected the ARN of a Kinesis stream or a DynamoDB stream, e.g. "
                  "arn:aws:kinesis:us-east-1:123456789012:stream/my-stream, got \"%s\"",
                  fanout_quote(q, m->source_arn));
        goto fail;
    }
    if (m->whole_record && !s_ddb_stream_arn(m->source_arn)) {
        s_problem(&c, "wholeRecord",
                  "only for DynamoDB Streams sources (a sourceArn like "
                  "arn:aws:dynamodb:us-east-1:123456789012:table/my-table/stream/"
                  "2026-01-01T00:00:00.000), got sourceArn \"%s\"",
                  fanout_quote(q, m->source_arn));
        goto fail;
    }
    if (strlen(m->id) > 255) {
        s_problem(&c, "id", "longer than 255 characters");
        goto fail;
    }
    if (!fanout_valid_type_name(m->type)) {
        s_problem(&c, "type",
                  "\"%s\" is not a plugin name: use 1 to 64 of [a-z0-9_-] (e.g. sqs, "
                  "kinesis, file), never a path",
                  fanout_quote(q, m->type));
        goto fail;
    }
    if (m->role && !s_role_ok(m->role)) {
        s_problem(&c, "role",
                  "expected an IAM role ARN like arn:aws:iam::123456789012:role/fanout, "
                  "got \"%s\"",
                  fanout_quote(q, m->role));
        goto fail;
    }
    if (m->external_id) {
        size_t n = strlen(m->external_id);
        if (!m->role) {
            s_problem(&c, "externalId",
                      "set without \"role\": it is only used to "
                      "assume a role");
            goto fail;
        }
        if (n < 2 || n > 1224 || !s_all(m->external_id, "_+=,.@:/-")) {
            s_problem(&c, "externalId",
                      "expected 2 to 1224 characters of [A-Za-z0-9_+=,.@:/-] (the "
                      "AssumeRole rule)");
            goto fail;
        }
    }
    if (m->region && !s_region_ok(m->region)) {
        s_problem(&c, "region", "expected an AWS region like us-east-1, got \"%s\"",
                  fanout_quote(q, m->region));
        goto fail;
    }
    if (collapse) {
        m->collapse = fanout_collapse_parse(collapse);
        if (m->collapse < 0) {
            s_problem(&c, "collapse",
                      "expected one of none, JSON, concat, concat-b64, got \"%s\"",
                      fanout_quote(q, collapse));
            goto fail;
        }
    }
    if (s_filter(&c, m) != 0)
        goto fail;

    m->json = json_deep_copy(obj);
    m->extra = json_object();
    if (!m->json || !m->extra) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    /* Re-point the strings into our own copy. */
    m->source_arn = json_string_value(json_object_get(m->json, "sourceArn"));
    m->id = json_string_value(json_object_get(m->json, "id"));
    m->type = json_string_value(json_object_get(m->json, "type"));
    m->destination = json_string_value(json_object_get(m->json, "destination"));
    m->role = m->role ? json_string_value(json_object_get(m->json, "role")) : NULL;
    m->external_id =
        m->external_id ? json_string_value(json_object_get(m->json, "externalId")) : NULL;
    m->region = m->region ? json_string_value(json_object_get(m->json, "region")) : NULL;
    if (s_legacy_ignored(&c, m) != 0) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    if (s_on_failure(&c, m) != 0)
        goto fail;

    const char *key;
    json_t *val;
    json_object_foreach (m->json, key, val) {
        int known = 0;
        for (const char *const *f = fanout_mapping_fields; *f; f++)
            known |= strcmp(*f, key) == 0;
        if (!known)
            json_object_set(m->extra, key, val);
    }
    return m;
fail:
    fanout_mapping_free(m->on_failure);
    fanout_filter_free(m->filter);
    json_decref(m->json);
    json_decref(m->extra);
    free(m->ignored);
    free(m);
    return NULL;
}

void fanout_mapping_free(struct fanout_mapping *m)
{
    if (!m)
        return;
    fanout_mapping_free(m->on_failure);
    free(m->ignored);
    fanout_filter_free(m->filter);
    json_decref(m->json);
    json_decref(m->extra);
    free(m);
}

int fanout_mapping_set_add_problem(struct fanout_mapping_set *set, const char *message,
                                   const char *source_arn, const char *id, int active)
{
    struct fanout_mapping_problem d = {NULL, NULL, active};
    char *msg = strdup(message);
    if (source_arn && *source_arn)
        d.source_arn = strdup(source_arn);
    if (id && *id)
        d.id = strdup(id);
    if (!msg || (source_arn && *source_arn && !d.source_arn) || (id && *id && !d.id)) {
        free(msg);
        free(d.source_arn);
        free(d.id);
        return -1;
    }
    set->problems[set->problem_count] = msg;
    set->details[set->problem_count] = d;
    set->problem_count++;
    return 0;
}

int fanout_mapping_problem_applies(const struct fanout_mapping_problem *p,
                                   const char *source_arn)
{
    if (p->active == 0)
        return 0;
    return !p->source_arn || strcmp(p->source_arn, source_arn) == 0;
}

int fanout_skip_invalid_mappings(char *err, size_t err_len)
{
    const char *v = getenv("FANOUT_SKIP_INVALID_MAPPINGS");
    if (!v || !*v || !strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no"))
        return 0;
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"))
        return 1;
    char q[FANOUT_QUOTE_SIZE];
    snprintf(err, err_len,
             "environment variable FANOUT_SKIP_INVALID_MAPPINGS=\"%s\": expected true or "
             "false",
             fanout_quote(q, v));
    return -1;
}

/* What can be read of an invalid mapping object, to attribute it. */
static void s_problem_facts(const json_t *obj, const char **source_arn, const char **id,
                            int *active)
{
    const json_t *v = json_object_get(obj, "sourceArn");
    *source_arn = json_is_string(v) ? json_string_value(v) : NULL;
    v = json_object_get(obj, "id");
    *id = json_is_string(v) ? json_string_value(v) : NULL;
    v = json_object_get(obj, "active");
    *active = json_is_boolean(v) ? json_is_true(v) : -1;
}

int fanout_mapping_set_parse(const char *text, size_t len, const char *origin,
                             struct fanout_mapping_set *set, char *err, size_t err_len)
{
    memset(set, 0, sizeof *set);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_DECODE_ANY, &je);
    if (!root) {
        snprintf(err, err_len, "%s: not valid JSON: line %d, column %d: %s", origin,
                 je.line, je.column, je.text);
        return -1;
    }
    if (!json_is_array(root)) {
        snprintf(
            err, err_len,
            "%s: expected a JSON array of mappings ([{\"sourceArn\": ..., \"id\": "
            "..., \"type\": ..., \"destination\": ..., \"active\": true}, ...]), got %s",
            origin, s_json_type(root));
        json_decref(root);
        return -1;
    }
    /* jansson keeps the last of repeated member names; the scanner finds
     * them, per mapping, so that such a mapping is refused by name */
    struct fanout_arena arena = {0};
    char why[256];
    const struct fanout_jnode *scan = fanout_jscan(text, len, &arena, why, sizeof why);
    if (!scan || scan->type != FANOUT_J_ARRAY || scan->count != json_array_size(root)) {
        snprintf(err, err_len, "%s: not valid JSON: %s", origin,
                 scan ? "the array cannot be read" : why);
        fanout_arena_free(&arena);
        json_decref(root);
        return -1;
    }
    size_t n = json_array_size(root);
    set->items = calloc(n ? n : 1, sizeof *set->items);
    set->problems = calloc(n ? n : 1, sizeof *set->problems);
    set->details = calloc(n ? n : 1, sizeof *set->details);
    if (!set->items || !set->problems || !set->details) {
        json_decref(root);
        fanout_arena_free(&arena);
        fanout_mapping_set_clean_up(set);
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    const struct fanout_jnode *node = scan->child;
    for (size_t i = 0; i < n; i++, node = node->next) {
        char msg[768];
        const json_t *obj = json_array_get(root, i);
        char path[160];
        int dup = fanout_jdup(node, &arena, path, sizeof path);
        struct fanout_mapping *m = NULL;
        const char *src, *id;
        int active;
        s_problem_facts(obj, &src, &id, &active);
        if (dup != 0) {
            char q[FANOUT_QUOTE_SIZE];
            if (id && *id)
                snprintf(msg, sizeof msg,
                         "mapping \"%s\" (#%zu): field \"%s\": appears more than once (a "
                         "name may appear once per object)",
                         fanout_quote(q, id), i, dup > 0 ? path : "?");
            else
                snprintf(msg, sizeof msg,
                         "mapping #%zu: field \"%s\": appears more than once (a name may "
                         "appear once per object)",
                         i, dup > 0 ? path : "?");
            /* a repeated sourceArn or active is not trusted */
            if (!strcmp(path, "sourceArn"))
                src = NULL;
            if (!strcmp(path, "active"))
                active = -1;
        } else {
            m = fanout_mapping_parse(obj, i, msg, sizeof msg);
        }
        for (size_t j = 0; m && j < set->count; j++) {
            if (strcmp(set->items[j]->source_arn, m->source_arn) == 0 &&
                strcmp(set->items[j]->id, m->id) == 0) {
                char q[FANOUT_QUOTE_SIZE];
                snprintf(msg, sizeof msg,
                         "mapping \"%s\" (#%zu): field \"id\": duplicate of an earlier "
                         "mapping with the same sourceArn and id (each pair must be "
                         "unique)",
                         fanout_quote(q, m->id), i);
                active = m->active;
                fanout_mapping_free(m);
                m = NULL;
            }
        }
        if (m)
            set->items[set->count++] = m;
        else if (fanout_mapping_set_add_problem(set, msg, src, id, active) != 0) {
            json_decref(root);
            fanout_arena_free(&arena);
            fanout_mapping_set_clean_up(set);
            snprintf(err, err_len, "out of memory");
            return -1;
        }
    }
    fanout_arena_free(&arena);
    json_decref(root);
    return 0;
}

void fanout_mapping_set_clean_up(struct fanout_mapping_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        fanout_mapping_free(set->items[i]);
    for (size_t i = 0; i < set->problem_count; i++) {
        free(set->problems[i]);
        free(set->details[i].source_arn);
        free(set->details[i].id);
    }
    free(set->items);
    free(set->problems);
    free(set->details);
    memset(set, 0, sizeof *set);
}

/* ---- the file store ------------------------------------------------------ */

struct s_file_store {
    struct fanout_store base;
    char *path;
    struct fanout_mapping_set set;
    struct timespec mtime;
    off_t size;
    int loaded;
    /* scratch for lookup results */
    struct fanout_mapping **found;
    size_t found_cap;
    size_t *bad;
    size_t bad_cap;
};

static int s_read_file(const char *path, char **out, size_t *len, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "%s: cannot open the mapping file: %m", path);
        return -1;
    }
    struct fanout_sbuf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (fanout_sbuf_put(&b, chunk, n) != 0) {
            fclose(f);
            fanout_sbuf_free(&b);
            snprintf(err, err_len, "%s: out of memory", path);
            return -1;
        }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fanout_sbuf_free(&b);
        snprintf(err, err_len, "%s: read error", path);
        return -1;
    }
    *out = b.bytes ? (char *)b.bytes : strdup("");
    *len = b.len;
    return *out ? 0 : -1;
}

/* (Re)load when the file changed. A failed reload keeps the last good set. */
static int s_file_refresh(struct s_file_store *fs, char *err, size_t err_len)
{
    struct stat st;
    if (stat(fs->path, &st) != 0) {
        snprintf(err, err_len, "%s: cannot read the mapping file: %m", fs->path);
        goto failed;
    }
    if (fs->loaded && st.st_mtim.tv_sec == fs->mtime.tv_sec &&
        st.st_mtim.tv_nsec == fs->mtime.tv_nsec && st.st_size == fs->size)
        return 0;
    char *text;
    size_t len;
    if (s_read_file(fs->path, &text, &len, err, err_len) != 0)
        goto failed;
    struct fanout_mapping_set set;
    int rc = fanout_mapping_set_parse(text, len, fs->path, &set, err, err_len);
    free(text);
    if (rc != 0)
        goto failed;
    fanout_mapping_set_clean_up(&fs->set);
    fs->set = set;
    fs->mtime = st.st_mtim;
    fs->size = st.st_size;
    fs->loaded = 1;
    for (size_t i = 0; i < set.problem_count; i++)
        LOG_ERROR("mappings",
                  "%s: %s; while it is invalid, the records of its source are reported "
                  "failed (the other targets still get them)",
                  fs->path, set.problems[i]);
    for (size_t i = 0; i < set.count; i++)
        if (set.items[i]->ignored)
            LOG_WARN("mappings", "%s: %s", fs->path, set.items[i]->ignored);
    LOG_DEBUG("mappings", "%s: %zu valid mappings loaded", fs->path, set.count);
    return 0;
failed:
    if (!fs->loaded)
        return -1;
    LOG_WARN("mappings", "%s; keeping the %zu mappings loaded before", err, fs->set.count);
    return 0;
}

static int s_file_lookup(struct fanout_store *s, const char *source_arn,
                         struct fanout_mapping *const **out, size_t *count,
                         const size_t **bad, size_t *bad_count,
                         const struct fanout_mapping_set **bad_set, char *err,
                         size_t err_len)
{
    struct s_file_store *fs = (struct s_file_store *)s;
    if (s_file_refresh(fs, err, err_len) != 0)
        return -1;
    if (fs->found_cap < fs->set.count) {
        void *p = realloc(fs->found, fs->set.count * sizeof *fs->found);
        if (!p) {
            snprintf(err, err_len, "out of memory");
            return -1;
        }
        fs->found = p;
        fs->found_cap = fs->set.count;
    }
    if (fs->bad_cap < fs->set.problem_count) {
        void *p = realloc(fs->bad, fs->set.problem_count * sizeof *fs->bad);
        if (!p) {
            snprintf(err, err_len, "out of memory");
            return -1;
        }
        fs->bad = p;
        fs->bad_cap = fs->set.problem_count;
    }
    size_t n = 0;
    for (size_t i = 0; i < fs->set.count; i++) {
        struct fanout_mapping *m = fs->set.items[i];
        if (m->active && strcmp(m->source_arn, source_arn) == 0)
            fs->found[n++] = m;
    }
    *out = fs->found;
    *count = n;
    if (bad) {
        size_t k = 0;
        for (size_t i = 0; i < fs->set.problem_count; i++)
            if (fanout_mapping_problem_applies(&fs->set.details[i], source_arn))
                fs->bad[k++] = i;
        *bad = fs->bad;
        *bad_count = k;
        *bad_set = &fs->set;
    }
    return 0;
}

static int s_file_all(struct fanout_store *s, const struct fanout_mapping_set **out,
                      char *err, size_t err_len)
{
    struct s_file_store *fs = (struct s_file_store *)s;
    if (s_file_refresh(fs, err, err_len) != 0)
        return -1;
    *out = &fs->set;
    return 0;
}

static void s_file_destroy(struct fanout_store *s)
{
    struct s_file_store *fs = (struct s_file_store *)s;
    fanout_mapping_set_clean_up(&fs->set);
    free(fs->found);
    free(fs->bad);
    free(fs->path);
    free(fs);
}

static const struct fanout_store_ops s_file_ops = {
    .kind = "file",
    .lookup = s_file_lookup,
    .all = s_file_all,
    .destroy = s_file_destroy,
};

struct fanout_store *fanout_store_file_new(const char *path, char *err, size_t err_len)
{
    struct s_file_store *fs = calloc(1, sizeof *fs);
    if (!fs || !(fs->path = strdup(path))) {
        free(fs);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    fs->base.ops = &s_file_ops;
    if (s_file_refresh(fs, err, err_len) != 0) {
        s_file_destroy(&fs->base);
        return NULL;
    }
    return &fs->base;
}
