/* The deployment commands deploy and destroy, natively against the AWS
 * APIs (DynamoDB, IAM, Lambda, STS through the AWS layer), with the names
 * and order the README's "Deploying" gives: the mapping table, the execution
 * role and its inline policy, the plugin layers, the function. What hook and
 * unhook share with them is exported in cli_deploy.h. */
#include "cli/cli_deploy.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fanout/helpers.h>
#include <fanout/xml.h>

#include "cli/cli_aws.h"
#include "cli/cli_cmd.h"
#include "cli/cli_policy.h"
#include "core/ddb.h"
#include "core/ddb_table.h"

#ifndef FANOUT_VERSION
#define FANOUT_VERSION "dev"
#endif

#define D_RUNTIME     "provided.al2023"
#define D_HANDLER     "bootstrap"
#define D_TAG         "fanout:function"
#define D_POLICY      "fanout"
#define D_VPC_POLICY  "AWSLambdaVPCAccessExecutionRole"
#define D_IAM_VERSION "2010-05-08"
#define D_FUNCTIONS   "/2015-03-31/functions/"
#define D_ESMS        "/2015-03-31/event-source-mappings/"
#define D_LAYERS      "/2018-10-31/layers/"
#define D_RBIF        "FANOUT_REPORT_BATCH_ITEM_FAILURES"
#define D_TRUST                                                                            \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"      \
    "{\"Service\":\"lambda.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}"
/* Lambda's limits: layers per function, a function name, a direct
 * upload's zip. */
#define D_MAX_LAYERS    5
#define D_MAX_NAME      64
#define D_MAX_ZIP_BYTES (50L * 1024 * 1024)
/* How long a new role may take to become usable by Lambda. */
#define D_ROLE_WINDOW_S 60
/* Pages of one listing before giving up (a service answering the same
 * marker forever). */
#define D_MAX_PAGES 10000
#define D_ARN_MAX   2048

/* The plugin types of plugins/: one layer each with --plugins. */
static const char *const d_plugin_types[] = {"es",      "file",   "firehose",  "iot",
                                             "kinesis", "lambda", "memcached", "redis",
                                             "sns",     "sqs",    NULL};

/* ---- small helpers ---------------------------------------------------------------- */

static int d_is(const struct cli_aws_reply *r, const char *code)
{
    return strcmp(r->code, code) == 0;
}

static int d_not_found(const struct cli_aws_reply *r)
{
    return d_is(r, "ResourceNotFoundException") || d_is(r, "NoSuchEntity") ||
           r->status == 404;
}

static int d_oom(const char *cmd)
{
    fprintf(stderr, "fanout %s: out of memory\n", cmd);
    return CLI_FAILED;
}

static const char *d_str(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    const char *s = json_string_value(v);
    return s && *s ? s : NULL;
}

/* One line of what a command did, on standard output. */
static void d_line(const char *fmt, ...) FANOUT_FMT(1, 2);
static void d_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* A failed call that may only mean "there is no such resource": 1 then,
 * else -1 with the failure printed ("fanout <cmd>: <what>: ..."). `r` is
 * released. */
static int d_gone_or_fail(const char *cmd, struct cli_aws_reply *r, const char *action,
                          const char *resource, const char *fmt, ...) FANOUT_FMT(5, 6);
static int d_gone_or_fail(const char *cmd, struct cli_aws_reply *r, const char *action,
                          const char *resource, const char *fmt, ...)
{
    int gone = d_not_found(r);
    if (!gone) {
        char what[1200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        cli_aws_fail(cmd, what, action, resource, r);
    }
    cli_aws_reply_free(r);
    return gone ? 1 : -1;
}

/* prefix + encoded name + suffix into out. 0, or -1 when it does not fit. */
static int d_path(char *out, size_t len, const char *prefix, const char *name,
                  const char *suffix)
{
    struct fanout_sbuf b = {0};
    int rc = fanout_sbuf_puts(&b, prefix) | cli_aws_encode(&b, name) |
             fanout_sbuf_puts(&b, suffix);
    int ok = rc == 0 && b.p && b.len < len;
    if (ok)
        memcpy(out, b.p, b.len + 1);
    fanout_sbuf_free(&b);
    return ok ? 0 : -1;
}

int cli_function_path(const char *function, const char *suffix, char *out, size_t len)
{
    return d_path(out, len, D_FUNCTIONS, function, suffix);
}

/* A Lambda request on prefix + name + suffix (body stolen). */
static int d_lambda(const char *method, const char *prefix, const char *name,
                    const char *suffix, const char *query, json_t *body,
                    struct cli_aws_reply *r)
{
    char path[1024];
    if (d_path(path, sizeof path, prefix, name, suffix) != 0) {
        json_decref(body);
        memset(r, 0, sizeof *r);
        fanout_strlcpy(r->code, "InvalidParameter", sizeof r->code);
        snprintf(r->message, sizeof r->message, "the name is too long for a request path");
        return -1;
    }
    return cli_aws_rest("lambda", method, path, query, body, r);
}

static int d_iam(const char *action, const char *const *params, struct cli_aws_reply *r)
{
    return cli_aws_query("iam", action, D_IAM_VERSION, params, r);
}

/* "name=value&name2=value2" with the values encoded (NULL-terminated
 * pairs; a NULL or empty value leaves its pair out). malloc'd, or NULL. */
static char *d_query(const char *const *pairs)
{
    struct fanout_sbuf q = {0};
    int rc = 0;
    for (; pairs[0]; pairs += 2) {
        if (!pairs[1] || !*pairs[1])
            continue;
        if (q.len)
            rc |= fanout_sbuf_putc(&q, '&');
        rc |= fanout_sbuf_printf(&q, "%s=", pairs[0]) | cli_aws_encode(&q, pairs[1]);
    }
    if (rc == 0 && !q.p)
        rc = fanout_sbuf_puts(&q, "");
    if (rc != 0) {
        fanout_sbuf_free(&q);
        return NULL;
    }
    return q.p;
}

/* The next page's marker of a listing into `marker`: 1 there is one, 0
 * the last page, -1 a marker that repeats or does not fit (printed). */
static int d_next(const char *cmd, const char *what, const char *next, char *marker,
                  size_t len)
{
    if (!next || !*next)
        return 0;
    if (!strcmp(next, marker) || strlen(next) >= len) {
        fprintf(stderr, "fanout %s: %s: the listing's NextMarker %s; stopped\n", cmd, what,
                strlen(next) >= len ? "is too long" : "repeats");
        return -1;
    }
    fanout_strlcpy(marker, next, len);
    return 1;
}

/* ---- identity ------------------------------------------------------------------ */

struct d_who {
    char account[32], partition[32];
    const char *region;
};

static int d_identity(const char *cmd, struct d_who *w)
{
    char err[768];
    w->region = cli_aws_region();
    if (cli_aws_identity(w->account, sizeof w->account, w->partition, sizeof w->partition,
                         err, sizeof err) != 0) {
        fprintf(stderr, "fanout %s: who am I: %s\n", cmd, err);
        return CLI_FAILED;
    }
    return CLI_OK;
}

/* ---- the function ------------------------------------------------------------- */

/* GetFunctionConfiguration: 0 with *cfg, 1 no such function, -1 failed
 * (printed). */
/* The function's configuration: GetFunction's Configuration (`whole`), or
 * GetFunctionConfiguration. 0 with *cfg, 1 no such function, -1 failed
 * (printed). */
static int d_function_read(const char *cmd, const char *function, int whole, json_t **cfg)
{
    struct cli_aws_reply r;
    *cfg = NULL;
    if (d_lambda("GET", D_FUNCTIONS, function, whole ? "" : "/configuration", NULL, NULL,
                 &r) != 0) {
        return d_gone_or_fail(
            cmd, &r, whole ? "lambda:GetFunction" : "lambda:GetFunctionConfiguration",
            function, "reading function %s", function);
    }
    json_t *c = whole ? json_object_get(r.json, "Configuration") : r.json;
    *cfg = c ? json_incref(c) : json_object();
    cli_aws_reply_free(&r);
    return *cfg ? 0 : (d_oom(cmd), -1);
}

static int d_function_get(const char *cmd, const char *function, json_t **cfg)
{
    return d_function_read(cmd, function, 0, cfg);
}

json_t *cli_function_config(const char *cmd, const char *function)
{
    json_t *cfg;
    int rc = d_function_get(cmd, function, &cfg);
    if (rc == 1)
        fprintf(stderr,
                "fanout %s: there is no function %s in this account and region (fanout "
                "deploy --function %s creates it)\n",
                cmd, function, function);
    return rc == 0 ? cfg : NULL;
}

/* A wait's read (0 read, 1 gone, -1 failed and printed): 0 to go on, -1
 * to stop. */
static int d_probe_read(const char *cmd, const char *kind, const char *name, int rc)
{
    if (rc == 1)
        fprintf(stderr, "fanout %s: %s %s: gone while waiting for it\n", cmd, kind, name);
    return rc == 0 ? 0 : -1;
}

struct d_fn_wait {
    const char *cmd, *function;
};

static int d_fn_probe(void *ctx, char *progress, size_t len)
{
    const struct d_fn_wait *w = ctx;
    json_t *cfg;
    if (d_probe_read(w->cmd, "function", w->function,
                     d_function_get(w->cmd, w->function, &cfg)) != 0)
        return -1;
    const char *state = d_str(cfg, "State", NULL);
    const char *last = d_str(cfg, "LastUpdateStatus", NULL);
    int done = -1;
    if (state && !strcmp(state, "Failed")) {
        fprintf(
            stderr, "fanout %s: function %s: State Failed: %s: %s\n", w->cmd, w->function,
            d_str(cfg, "StateReasonCode", NULL) ? d_str(cfg, "StateReasonCode", NULL) : "-",
            d_str(cfg, "StateReason", NULL) ? d_str(cfg, "StateReason", NULL)
                                            : "no reason given");
    } else if (last && !strcmp(last, "Failed")) {
        fprintf(stderr, "fanout %s: function %s: its last update failed: %s: %s\n", w->cmd,
                w->function,
                d_str(cfg, "LastUpdateStatusReasonCode", NULL)
                    ? d_str(cfg, "LastUpdateStatusReasonCode", NULL)
                    : "-",
                d_str(cfg, "LastUpdateStatusReason", NULL)
                    ? d_str(cfg, "LastUpdateStatusReason", NULL)
                    : "no reason given");
    } else if ((!state || !strcmp(state, "Active") || !strcmp(state, "Inactive")) &&
               (!last || !strcmp(last, "Successful"))) {
        done = 1;
    } else {
        snprintf(progress, len, "State %s (LastUpdateStatus %s)", state ? state : "-",
                 last ? last : "-");
        done = 0;
    }
    json_decref(cfg);
    return done;
}

int cli_function_wait(const char *cmd, const char *function)
{
    struct d_fn_wait w = {cmd, function};
    char what[160];
    snprintf(what, sizeof what, "function %s", function);
    return cli_aws_wait(cmd, what, d_fn_probe, &w) == 0 ? CLI_OK : CLI_FAILED;
}

/* A Lambda write retried while the new role cannot be assumed yet (IAM
 * propagates a role in seconds); the answer in `r`. */
struct d_retry {
    const char *cmd, *what, *action, *resource;
    const char *method, *path;
    json_t *body; /* kept: sent again on each try */
    struct cli_aws_reply r;
};

static int d_role_not_ready(const struct cli_aws_reply *r)
{
    return d_is(r, "InvalidParameterValueException") &&
           (strstr(r->message, "cannot be assumed by Lambda") ||
            strstr(r->message,
                   "does not have permissions to call CreateNetworkInterface") ||
            /* CreateEventSourceMapping before the role's new policy reads
             * the stream everywhere */
            strstr(r->message, "Please ensure the role can perform"));
}

static int d_retry_probe(void *ctx, char *progress, size_t len)
{
    struct d_retry *c = ctx;
    cli_aws_reply_free(&c->r);
    if (cli_aws_rest("lambda", c->method, c->path, NULL, json_incref(c->body), &c->r) == 0)
        return 1;
    if (d_role_not_ready(&c->r)) {
        snprintf(progress, len, "Lambda answers: %s", c->r.message);
        return 0;
    }
    cli_aws_fail(c->cmd, c->what, c->action, c->resource, &c->r);
    return -1;
}

/* Send `body` (kept by the caller); 0 with c->r, or -1 printed. */
static int d_retry_role(struct d_retry *c)
{
    memset(&c->r, 0, sizeof c->r);
    char wait_what[256];
    snprintf(wait_what, sizeof wait_what, "IAM role propagation (%s)", c->what);
    return cli_aws_wait_up_to(c->cmd, wait_what, D_ROLE_WINDOW_S, d_retry_probe, c);
}

int cli_lambda_write(const char *cmd, const char *what, const char *action,
                     const char *resource, const char *method, const char *path,
                     json_t *body, struct cli_aws_reply *r)
{
    struct d_retry c = {cmd, what, action, resource, method, path, body};
    int rc = d_retry_role(&c);
    *r = c.r;
    return rc;
}

int cli_function_set_env(const char *cmd, const char *function, const char *name,
                         const char *value)
{
    if (cli_function_wait(cmd, function) != CLI_OK)
        return CLI_FAILED;
    json_t *cfg = cli_function_config(cmd, function);
    if (!cfg)
        return CLI_FAILED;
    json_t *vars =
        json_deep_copy(json_object_get(json_object_get(cfg, "Environment"), "Variables"));
    json_decref(cfg);
    if (!vars && !(vars = json_object()))
        return d_oom(cmd);
    const char *cur = json_string_value(json_object_get(vars, name));
    if (value ? cur && !strcmp(cur, value) : !cur) {
        json_decref(vars);
        return CLI_OK;
    }
    int rc = value ? json_object_set_new(vars, name, json_string(value))
                   : json_object_del(vars, name);
    json_t *body = rc ? NULL : json_pack("{s:{s:o}}", "Environment", "Variables", vars);
    if (!body)
        return rc ? (json_decref(vars), d_oom(cmd)) : d_oom(cmd);
    struct cli_aws_reply r;
    if (d_lambda("PUT", D_FUNCTIONS, function, "/configuration", NULL, body, &r) != 0) {
        char what[256];
        snprintf(what, sizeof what, "function %s: setting %s", function, name);
        cli_aws_fail(cmd, what, "lambda:UpdateFunctionConfiguration", function, &r);
        cli_aws_reply_free(&r);
        return CLI_FAILED;
    }
    cli_aws_reply_free(&r);
    if (value)
        d_line("function %s: environment %s=%s", function, name, value);
    else
        d_line("function %s: environment %s removed", function, name);
    return cli_function_wait(cmd, function);
}

/* ---- event source mappings ------------------------------------------------------ */

int cli_esm_list(const char *cmd, const char *function, const char *source_arn, json_t *out)
{
    char marker[1024] = "";
    char what[160];
    snprintf(what, sizeof what, "listing the event source mappings of %s", function);
    for (int page = 0; page < D_MAX_PAGES; page++) {
        /* in the order SigV4 sorts them */
        const char *pairs[] = {
            "EventSourceArn", source_arn, "FunctionName", function, "Marker", marker, NULL};
        char *q = d_query(pairs);
        if (!q)
            return d_oom(cmd);
        struct cli_aws_reply r;
        int rc = cli_aws_rest("lambda", "GET", D_ESMS, q, NULL, &r);
        free(q);
        if (rc != 0) {
            return d_gone_or_fail(cmd, &r, "lambda:ListEventSourceMappings", function, "%s",
                                  what) > 0
                       ? CLI_OK
                       : CLI_FAILED;
        }
        json_t *list = json_object_get(r.json, "EventSourceMappings");
        if (!json_is_array(list)) {
            /* not "none": an answer without the list proves nothing */
            fprintf(stderr,
                    "fanout %s: %s: Lambda's answer has no EventSourceMappings list; "
                    "stopped\n",
                    cmd, what);
            cli_aws_reply_free(&r);
            return CLI_FAILED;
        }
        if (json_array_extend(out, list) != 0) {
            cli_aws_reply_free(&r);
            return d_oom(cmd);
        }
        rc = d_next(cmd, what, d_str(r.json, "NextMarker", NULL), marker, sizeof marker);
        cli_aws_reply_free(&r);
        if (rc <= 0)
            return rc == 0 ? CLI_OK : CLI_FAILED;
    }
    fprintf(stderr, "fanout %s: %s: more than %d pages; stopped\n", cmd, what, D_MAX_PAGES);
    return CLI_FAILED;
}

/* ---- the role's policy ---------------------------------------------------------- */

struct d_scan {
    const char *cmd;
    json_t *out;
};

static int d_scan_item(void *ctx, const json_t *item)
{
    struct d_scan *s = ctx;
    struct fanout_sbuf b = {0};
    char err[256];
    if (fanout_ddb_image_to_json(item, 1, &b, err, sizeof err) != 0) {
        fprintf(stderr,
                "fanout %s: warning: a mapping item does not read (%s); no permission "
                "added for it\n",
                s->cmd, err);
        fanout_sbuf_free(&b);
        return 0;
    }
    json_t *j = b.p ? json_loadb(b.p, b.len, 0, NULL) : NULL;
    fanout_sbuf_free(&b);
    if (json_is_object(j))
        return json_array_append_new(s->out, j) ? -1 : 0;
    json_decref(j);
    return 0;
}

/* Every mapping of the table (active or not), as plain JSON. */
static int d_table_mappings(const char *cmd, const char *table, json_t *out)
{
    json_t *body = json_pack("{s:s}", "TableName", table);
    if (!body)
        return d_oom(cmd);
    struct d_scan s = {cmd, out};
    struct fanout_json_reply jr;
    memset(&jr, 0, sizeof jr);
    int rc = fanout_ddb_read_pages(cli_aws_region(), "Scan", body, 0, d_scan_item, &s, &jr);
    json_decref(body);
    json_decref(jr.json);
    if (rc == 0)
        return CLI_OK;
    if (rc == -2)
        return d_oom(cmd);
    struct cli_aws_reply r = {.status = jr.status};
    fanout_strlcpy(r.code, jr.code, sizeof r.code);
    fanout_strlcpy(r.message, jr.message, sizeof r.message);
    char what[320];
    snprintf(what, sizeof what, "reading the mappings of table %s", table);
    return cli_aws_fail(cmd, what, "dynamodb:Scan", table, &r);
}

/* Percent-decode `s` in place (IAM returns policy documents URL-encoded).
 * 0, or -1 when an escape is malformed. */
static int d_unescape(char *s)
{
    char *w = s;
    for (const char *p = s; *p; p++) {
        if (*p != '%') {
            *w++ = *p;
            continue;
        }
        unsigned v = 0;
        for (int k = 1; k <= 2; k++) {
            char c = p[k];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                return -1;
            v = v * 16 + (unsigned)d;
        }
        *w++ = (char)v;
        p += 2;
    }
    *w = 0;
    return 0;
}

/* 1 when the role's policy "fanout" is `doc` already (GetRolePolicy; any
 * doubt, an error included, is 0: the policy is put). */
static int d_policy_same(const char *role, const json_t *doc)
{
    const char *params[] = {"RoleName", role, "PolicyName", D_POLICY, NULL};
    struct cli_aws_reply r;
    int same = 0;
    if (d_iam("GetRolePolicy", params, &r) == 0) {
        char *text = cli_aws_xml_text(r.body, r.len, "PolicyDocument");
        if (text && d_unescape(text) == 0) {
            json_t *have = json_loads(text, 0, NULL);
            same = have && json_equal(have, doc);
            json_decref(have);
        }
        free(text);
    }
    cli_aws_reply_free(&r);
    return same;
}

/* Put the inline policy "fanout" of `role`. */
static int d_put_policy(const char *cmd, const struct d_who *w, const char *function,
                        const char *role, const char *table, const char *table_arn,
                        const char *also_source)
{
    json_t *sources = json_array(), *esms = json_array(), *mappings = json_array();
    int rc = sources && esms && mappings ? CLI_OK : d_oom(cmd);
    if (rc == CLI_OK)
        rc = cli_esm_list(cmd, function, NULL, esms);
    if (rc == CLI_OK)
        rc = d_table_mappings(cmd, table, mappings);
    size_t i;
    json_t *e;
    json_array_foreach (esms, i, e) {
        const char *src = d_str(e, "EventSourceArn", NULL);
        if (rc == CLI_OK && src && json_array_append_new(sources, json_string(src)) != 0)
            rc = d_oom(cmd);
    }
    if (rc == CLI_OK && also_source &&
        json_array_append_new(sources, json_string(also_source)) != 0)
        rc = d_oom(cmd);
    json_t *doc = NULL;
    char *text = NULL;
    if (rc == CLI_OK) {
        const struct cli_policy_in in = {w->partition, w->region, w->account, function,
                                         table_arn,    sources,   mappings};
        doc = cli_policy_build(&in, cmd, stderr);
        text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        if (!text)
            rc = d_oom(cmd);
    }
    if (rc == CLI_OK && d_policy_same(role, doc)) {
        d_line("role %s: policy %s unchanged (%zu statements: %zu sources, %zu mappings "
               "read)",
               role, D_POLICY, json_array_size(json_object_get(doc, "Statement")),
               json_array_size(sources), json_array_size(mappings));
    } else if (rc == CLI_OK) {
        const char *params[] = {"RoleName",       role, "PolicyName", D_POLICY,
                                "PolicyDocument", text, NULL};
        struct cli_aws_reply r;
        if (d_iam("PutRolePolicy", params, &r) != 0) {
            char what[160], res[D_ARN_MAX];
            snprintf(what, sizeof what, "role %s: putting its policy %s", role, D_POLICY);
            snprintf(res, sizeof res, "arn:%s:iam::%s:role/%s", w->partition, w->account,
                     role);
            rc = cli_aws_fail(cmd, what, "iam:PutRolePolicy", res, &r);
        } else {
            d_line(
                "role %s: policy %s put (%zu statements: %zu sources, %zu mappings read)",
                role, D_POLICY, json_array_size(json_object_get(doc, "Statement")),
                json_array_size(sources), json_array_size(mappings));
        }
        cli_aws_reply_free(&r);
    }
    free(text);
    json_decref(doc);
    json_decref(sources);
    json_decref(esms);
    json_decref(mappings);
    return rc;
}

/* The value of tag `key` in a GetRole answer (Role/Tags/member), or 0. */
static int d_role_tag(const char *body, size_t len, const char *key, char *out,
                      size_t out_len)
{
    struct fanout_xml_elem tags, m;
    if (!body || !fanout_xml_find(body, len, "Tags", 0, &tags) || !tags.closed)
        return 0;
    const char *p = tags.content;
    size_t n = tags.content_len;
    while (n && fanout_xml_find(p, n, "member", 0, &m) && m.closed) {
        char k[256];
        if (fanout_xml_field(m.content, m.content_len, "Key", 0, FANOUT_XML_TRIM, k,
                             sizeof k) >= 0 &&
            !strcmp(k, key) &&
            fanout_xml_field(m.content, m.content_len, "Value", 0, FANOUT_XML_TRIM, out,
                             out_len) >= 0)
            return 1;
        p += m.after;
        n -= m.after;
    }
    return 0;
}

/* The last part of a role ARN (arn:P:iam::A:role/path/NAME) into out. */
static int d_role_name(const char *arn, char *out, size_t len)
{
    const char *r = arn ? strstr(arn, ":role/") : NULL;
    const char *slash = r ? strrchr(r, '/') : NULL;
    if (!slash || !slash[1] || strlen(slash + 1) >= len)
        return 0;
    fanout_strlcpy(out, slash + 1, len);
    return 1;
}

/* GetRole: 0 with the answer, 1 no such role, -1 failed (printed). */
static int d_role_get(const char *cmd, const char *role, struct cli_aws_reply *r)
{
    const char *params[] = {"RoleName", role, NULL};
    if (d_iam("GetRole", params, r) == 0)
        return 0;
    if (d_is(r, "NoSuchEntity")) {
        cli_aws_reply_free(r);
        return 1;
    }
    char what[160];
    snprintf(what, sizeof what, "reading role %s", role);
    cli_aws_fail(cmd, what, "iam:GetRole", role, r);
    cli_aws_reply_free(r);
    return -1;
}

int cli_deploy_refresh_policy(const char *cmd, const char *function,
                              const char *also_source)
{
    struct d_who w;
    if (d_identity(cmd, &w) != CLI_OK)
        return CLI_FAILED;
    json_t *cfg = cli_function_config(cmd, function);
    if (!cfg)
        return CLI_FAILED;
    const char *name = d_str(cfg, "FunctionName", NULL);
    char fname[D_MAX_NAME + 1], role[D_MAX_NAME + 1], table[1024], tag[256];
    fanout_strlcpy(fname, name ? name : function, sizeof fname);
    const char *tv = json_string_value(json_object_get(
        json_object_get(json_object_get(cfg, "Environment"), "Variables"), "FANOUT_TABLE"));
    if (tv && *tv)
        fanout_strlcpy(table, tv, sizeof table);
    else
        snprintf(table, sizeof table, "%sTargets", fname);
    int have_role = d_role_name(d_str(cfg, "Role", NULL), role, sizeof role);
    json_decref(cfg);
    if (!have_role) {
        fprintf(stderr, "fanout %s: function %s: its configuration names no role ARN\n",
                cmd, fname);
        return CLI_FAILED;
    }
    struct cli_aws_reply r;
    int rc = d_role_get(cmd, role, &r);
    if (rc < 0)
        return CLI_FAILED;
    int ours =
        rc == 0 && d_role_tag(r.body, r.len, D_TAG, tag, sizeof tag) && !strcmp(tag, fname);
    cli_aws_reply_free(&r);
    if (!ours) {
        fprintf(
            stderr,
            "fanout %s: note: role %s is not deploy's (no tag %s=%s): its policy is left "
            "as it is; it must allow what the function's sources and targets need\n",
            cmd, role, D_TAG, fname);
        return CLI_OK;
    }
    json_t *body = json_pack("{s:s}", "TableName", table);
    if (!body)
        return d_oom(cmd);
    if (cli_aws_json("dynamodb", "1.0", "DynamoDB_20120810.DescribeTable", body, &r) != 0) {
        char what[1200];
        snprintf(what, sizeof what, "reading table %s (FANOUT_TABLE of function %s)", table,
                 fname);
        rc = cli_aws_fail(cmd, what, "dynamodb:DescribeTable", table, &r);
        cli_aws_reply_free(&r);
        return rc;
    }
    char table_arn[D_ARN_MAX];
    const char *arn = d_str(json_object_get(r.json, "Table"), "TableArn", NULL);
    fanout_strlcpy(table_arn, arn ? arn : table, sizeof table_arn);
    cli_aws_reply_free(&r);
    return d_put_policy(cmd, &w, fname, role, table, table_arn, also_source);
}

/* ---- options ------------------------------------------------------------------- */

enum { D_DEPLOY = 1, D_DESTROY = 2, D_BOTH = 3 };

struct d_opts {
    const char *function, *function_arn, *table, *table_arn, *exec_role, *exec_role_arn;
    const char *memory, *timeout, *arch, *plugins, *package_dir, *runtime;
    json_t *subnets, *sgs;
    struct cli_aws_flags aws;
    int yes, delete_table;
    /* derived */
    char name[D_MAX_NAME + 1];
    char table_name[1024], table_region[64];
    long memory_mb, timeout_s;
    const char *types[D_MAX_LAYERS];
    size_t ntypes;
};

#define D_OPT(m) offsetof(struct d_opts, m)

static const struct {
    const char *name;
    size_t offset;
    unsigned commands;
} d_values[] = {
    {"function", D_OPT(function), D_BOTH},
    {"function-arn", D_OPT(function_arn), D_BOTH},
    {"table", D_OPT(table), D_BOTH},
    {"table-arn", D_OPT(table_arn), D_BOTH},
    {"exec-role", D_OPT(exec_role), D_BOTH},
    {"exec-role-arn", D_OPT(exec_role_arn), D_BOTH},
    {"memory", D_OPT(memory), D_DEPLOY},
    {"timeout", D_OPT(timeout), D_DEPLOY},
    {"arch", D_OPT(arch), D_DEPLOY},
    {"plugins", D_OPT(plugins), D_DEPLOY},
    {"package-dir", D_OPT(package_dir), D_DEPLOY},
    {"runtime", D_OPT(runtime), D_DEPLOY},
    {"subnet", D_OPT(subnets), D_DEPLOY},
    {"security-group", D_OPT(sgs), D_DEPLOY},
};

static int d_usage(const char *cmd, const char *fmt, ...) FANOUT_FMT(2, 3);
static int d_usage(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fanout %s: %s\n(fanout %s --help lists the options, with examples)\n",
            cmd, msg, cmd);
    return CLI_USAGE;
}

/* --subnet a,b --subnet c: each id once, none empty. */
static int d_add_ids(const char *cmd, const char *flag, const char *value, json_t *ids)
{
    const char *p = value;
    for (;;) {
        size_t n = strcspn(p, ",");
        char id[256];
        if (n == 0 || n >= sizeof id)
            return d_usage(cmd, "--%s \"%s\": %s", flag, value,
                           n ? "an id is too long"
                             : "an empty id (ids are comma-separated)");
        memcpy(id, p, n);
        id[n] = 0;
        size_t i;
        json_t *v;
        int seen = 0;
        json_array_foreach (ids, i, v)
            seen |= !strcmp(json_string_value(v), id);
        if (!seen && json_array_append_new(ids, json_string(id)) != 0)
            return d_oom(cmd);
        if (!p[n])
            return CLI_OK;
        p += n + 1;
    }
}

static int d_long(const char *cmd, const char *flag, const char *v, long lo, long hi,
                  long *out)
{
    char *end;
    errno = 0;
    long n = v && *v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || n < lo || n > hi)
        return d_usage(cmd, "--%s expects a whole number from %ld to %ld, got \"%s\"", flag,
                       lo, hi, v ? v : "");
    *out = n;
    return CLI_OK;
}

static int d_parse(const char *cmd, unsigned which, int argc, char **argv, struct d_opts *o)
{
    memset(o, 0, sizeof *o);
    o->subnets = json_array();
    o->sgs = json_array();
    if (!o->subnets || !o->sgs)
        return d_oom(cmd);
    for (int i = 1; i < argc; i++) {
        char err[256];
        const char *a = argv[i];
        int rc = cli_aws_common_flag(&o->aws, argc, argv, &i, err, sizeof err);
        if (rc < 0)
            return d_usage(cmd, "%s", err);
        if (rc > 0)
            continue;
        for (size_t k = 0; k < sizeof d_values / sizeof *d_values && rc == 0; k++) {
            if (!(d_values[k].commands & which))
                continue;
            const char *v;
            rc = cli_aws_value_flag(argc, argv, &i, d_values[k].name, &v, err, sizeof err);
            if (rc < 0)
                return d_usage(cmd, "%s", err);
            if (rc == 0)
                continue;
            if (d_values[k].offset == D_OPT(subnets) || d_values[k].offset == D_OPT(sgs)) {
                json_t *ids = d_values[k].offset == D_OPT(subnets) ? o->subnets : o->sgs;
                int st = d_add_ids(cmd, d_values[k].name, v, ids);
                if (st != CLI_OK)
                    return st;
            } else {
                *(const char **)((char *)o + d_values[k].offset) = v;
            }
        }
        if (rc > 0)
            continue;
        if (which == D_DESTROY && !strcmp(a, "--yes"))
            o->yes = 1;
        else if (which == D_DESTROY && !strcmp(a, "--delete-table"))
            o->delete_table = 1;
        else if (!strncmp(a, "--", 2))
            return d_usage(cmd, "unknown option \"%s\"", a);
        else
            return d_usage(cmd, "unexpected argument \"%s\"", a);
    }
    return CLI_OK;
}

static int d_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > D_MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
            return 0;
    return 1;
}

/* The names the flags give: function (and its region, from an ARN),
 * table, role. */
static int d_names(const char *cmd, unsigned which, struct d_opts *o)
{
    if (o->function && o->function_arn)
        return d_usage(cmd,
                       "give the function once: --function NAME or --function-arn ARN");
    if (o->exec_role && o->exec_role_arn)
        return d_usage(cmd, "give the role once: --exec-role NAME or --exec-role-arn ARN");
    const char *name = o->function ? o->function : "fanout";
    static char region[64];
    if (o->function_arn) {
        /* arn:P:lambda:R:A:function:NAME */
        const char *f[7];
        const char *p = o->function_arn;
        int n = 0;
        for (; n < 7 && p; n++) {
            f[n] = p;
            p = strchr(p, ':');
            p = p ? p + 1 : NULL;
        }
        size_t rl = n == 7 ? (size_t)(f[4] - f[3] - 1) : 0;
        if (n != 7 || p || strncmp(o->function_arn, "arn:", 4) ||
            strncmp(f[2], "lambda:", 7) || strncmp(f[5], "function:", 9) || rl == 0 ||
            rl >= sizeof region)
            return d_usage(cmd,
                           "--function-arn expects arn:PARTITION:lambda:REGION:ACCOUNT:"
                           "function:NAME (unqualified), got \"%s\"",
                           o->function_arn);
        memcpy(region, f[3], rl);
        region[rl] = 0;
        name = f[6];
        if (o->aws.region && strcmp(o->aws.region, region) != 0)
            return d_usage(cmd, "--function-arn is in %s, --region says %s", region,
                           o->aws.region);
        o->aws.region = region;
    }
    if (!d_name_ok(name))
        return d_usage(cmd,
                       "\"%s\" is not a function name (1 to %d of A-Z, a-z, 0-9, - and _)",
                       name, D_MAX_NAME);
    fanout_strlcpy(o->name, name, sizeof o->name);
    if (!o->exec_role && !o->exec_role_arn && strlen(o->name) + 4 > D_MAX_NAME)
        return d_usage(cmd,
                       "the role name %sRole would be longer than %d characters: name the "
                       "role with --exec-role NAME",
                       o->name, D_MAX_NAME);
    if (o->exec_role &&
        (!*o->exec_role || strlen(o->exec_role) > D_MAX_NAME ||
         strspn(o->exec_role, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvw"
                              "xyz0123456789+=,.@_-") != strlen(o->exec_role)))
        return d_usage(cmd,
                       "--exec-role \"%s\" is not a role name (1 to %d of A-Z a-z 0-9 "
                       "+=,.@_-)",
                       o->exec_role, D_MAX_NAME);
    if (o->exec_role_arn &&
        (strncmp(o->exec_role_arn, "arn:", 4) || !strstr(o->exec_role_arn, ":iam::") ||
         !strstr(o->exec_role_arn, ":role/")))
        return d_usage(cmd,
                       "--exec-role-arn expects arn:PARTITION:iam::ACCOUNT:role/NAME, "
                       "got \"%s\"",
                       o->exec_role_arn);
    char err[512];
    if (cli_table(o->table, o->table_arn, o->name, NULL, o->table_name,
                  sizeof o->table_name, o->table_region, sizeof o->table_region, err,
                  sizeof err) < 0)
        return d_usage(cmd, "%s", err);
    if (o->table_arn && o->aws.region && o->table_region[0] &&
        strcmp(o->table_region, o->aws.region) != 0)
        return d_usage(cmd,
                       "--table-arn is in %s, but the function in %s: its table must be "
                       "in its region",
                       o->table_region, o->aws.region);
    if (o->table_arn && !o->aws.region && o->table_region[0])
        o->aws.region = o->table_region;
    (void)which;
    return CLI_OK;
}

static int d_deploy_opts(const char *cmd, struct d_opts *o)
{
    if (o->runtime && strcmp(o->runtime, D_RUNTIME) != 0)
        return d_usage(cmd,
                       "--runtime %s: fanout is a native custom runtime (the bootstrap "
                       "executable of fanout-function-ARCH.zip); the only runtime is %s",
                       o->runtime, D_RUNTIME);
    if (o->arch && strcmp(o->arch, "x86_64") != 0 && strcmp(o->arch, "arm64") != 0)
        return d_usage(cmd, "--arch expects x86_64 or arm64, got \"%s\"", o->arch);
    if (o->memory && d_long(cmd, "memory", o->memory, 128, 10240, &o->memory_mb) != CLI_OK)
        return CLI_USAGE;
    if (o->timeout && d_long(cmd, "timeout", o->timeout, 1, 900, &o->timeout_s) != CLI_OK)
        return CLI_USAGE;
    if (!o->memory)
        o->memory_mb = 128;
    if (!o->timeout)
        o->timeout_s = 30;
    if (!json_array_size(o->subnets) != !json_array_size(o->sgs))
        return d_usage(cmd,
                       "%s: a function in a VPC needs both --subnet and "
                       "--security-group",
                       json_array_size(o->subnets) ? "--subnet without --security-group"
                                                   : "--security-group without --subnet");
    if (o->package_dir && !*o->package_dir)
        return d_usage(cmd, "--package-dir must not be empty");
    if (!o->plugins)
        return CLI_OK;
    const char *p = o->plugins;
    for (;;) {
        size_t n = strcspn(p, ",");
        const char *type = NULL;
        for (const char *const *t = d_plugin_types; *t && n; t++)
            if (strlen(*t) == n && !strncmp(*t, p, n))
                type = *t;
        if (!type)
            return d_usage(cmd,
                           "--plugins \"%s\": \"%.*s\" is not a plugin type (es, file, "
                           "firehose, iot, kinesis, lambda, memcached, redis, sns, sqs)",
                           o->plugins, (int)n, p);
        int seen = 0;
        for (size_t i = 0; i < o->ntypes; i++)
            seen |= o->types[i] == type;
        if (!seen) {
            if (o->ntypes == D_MAX_LAYERS)
                return d_usage(cmd,
                               "--plugins: at most %d types (a function has at most %d "
                               "layers); leave --plugins out for the one layer with every "
                               "plugin",
                               D_MAX_LAYERS, D_MAX_LAYERS);
            o->types[o->ntypes++] = type;
        }
        if (!p[n])
            return CLI_OK;
        p += n + 1;
    }
}

/* Parse, check and apply a command's flags. */
static int d_start(const char *cmd, unsigned which, int argc, char **argv, struct d_opts *o)
{
    int rc = d_parse(cmd, which, argc, argv, o);
    if (rc == CLI_OK)
        rc = d_names(cmd, which, o);
    if (rc == CLI_OK && which == D_DEPLOY)
        rc = d_deploy_opts(cmd, o);
    char err[512];
    if (rc == CLI_OK && cli_aws_setup(cmd, &o->aws, err, sizeof err) != 0)
        rc = d_usage(cmd, "%s", err);
    return rc;
}

static void d_opts_free(struct d_opts *o)
{
    json_decref(o->subnets);
    json_decref(o->sgs);
}

/* ---- packages ------------------------------------------------------------------ */

struct d_zip {
    char path[4096];
    char *b64;        /* the zip, base64 */
    char sha_hex[65]; /* sha256, hex */
    char sha_b64[64]; /* sha256, base64: Lambda's CodeSha256 */
    size_t size;
};

static void d_zip_free(struct d_zip *z)
{
    free(z->b64);
    z->b64 = NULL;
}

static int d_zip_read(const char *cmd, const char *dir, const char *file, const char *arch,
                      struct d_zip *z)
{
    memset(z, 0, sizeof *z);
    int n = snprintf(z->path, sizeof z->path, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= sizeof z->path)
        return d_usage(cmd, "--package-dir %s: path too long", dir);
    FILE *f = fopen(z->path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = f ? EISDIR : errno;
        if (f)
            fclose(f);
        fprintf(stderr,
                "fanout %s: %s: %s; `scripts/package.sh --arch %s` makes the packages (in "
                "dist/; --package-dir DIR names another directory)\n",
                cmd, z->path, strerror(e), arch);
        return CLI_USAGE;
    }
    if (st.st_size <= 0 || st.st_size > D_MAX_ZIP_BYTES) {
        fclose(f);
        fprintf(stderr,
                "fanout %s: %s: %lld bytes; Lambda takes a zip of 1 byte to %ld MB in a "
                "direct upload\n",
                cmd, z->path, (long long)st.st_size, D_MAX_ZIP_BYTES / (1024 * 1024));
        return CLI_USAGE;
    }
    size_t size = (size_t)st.st_size;
    unsigned char *data = malloc(size);
    if (!data) {
        fclose(f);
        return d_oom(cmd);
    }
    size_t got = fread(data, 1, size, f);
    fclose(f);
    if (got != size) {
        free(data);
        fprintf(stderr, "fanout %s: %s: read %zu of %zu bytes\n", cmd, z->path, got, size);
        return CLI_FAILED;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    struct fanout_sbuf b64 = {0}, sha = {0};
    int rc = EVP_Digest(data, size, md, &md_len, EVP_sha256(), NULL) == 1 && md_len == 32
                 ? 0
                 : -1;
    if (rc == 0)
        rc = fanout_sbuf_base64(&b64, data, size) | fanout_sbuf_base64(&sha, md, md_len);
    free(data);
    if (rc != 0 || !b64.p || !sha.p || sha.len >= sizeof z->sha_b64) {
        fanout_sbuf_free(&b64);
        fanout_sbuf_free(&sha);
        fprintf(stderr,
                "fanout %s: %s: cannot compute its sha256 and base64 (out of memory)\n",
                cmd, z->path);
        return CLI_FAILED;
    }
    for (unsigned i = 0; i < md_len; i++)
        snprintf(z->sha_hex + 2 * i, 3, "%02x", md[i]);
    memcpy(z->sha_b64, sha.p, sha.len + 1);
    fanout_sbuf_free(&sha);
    z->b64 = b64.p;
    z->size = size;
    return CLI_OK;
}

/* ---- deploy -------------------------------------------------------------------- */

struct d_run {
    const char *cmd;
    struct d_opts o;
    struct d_who who;
    json_t *current; /* the existing function's configuration, or NULL */
    const char *arch;
    struct d_zip fn_zip;
    struct d_zip layer_zip[D_MAX_LAYERS];
    char layer_name[D_MAX_LAYERS][160];
    size_t nlayers;
    char table_arn[D_ARN_MAX];
    char role_name[D_MAX_NAME + 8], role_arn[D_ARN_MAX];
    int role_ours, role_created;
    json_t *layer_arns;
};

static int d_packages(struct d_run *d)
{
    const char *dir = d->o.package_dir ? d->o.package_dir : "./dist";
    char file[160];
    snprintf(file, sizeof file, "fanout-function-%s.zip", d->arch);
    int rc = d_zip_read(d->cmd, dir, file, d->arch, &d->fn_zip);
    if (d->o.ntypes == 0) {
        snprintf(file, sizeof file, "fanout-plugins-%s.zip", d->arch);
        snprintf(d->layer_name[0], sizeof d->layer_name[0], "%s-plugins", d->o.name);
        d->nlayers = 1;
        if (rc == CLI_OK)
            rc = d_zip_read(d->cmd, dir, file, d->arch, &d->layer_zip[0]);
    }
    for (size_t i = 0; i < d->o.ntypes; i++) {
        snprintf(file, sizeof file, "fanout-plugin-%s-%s.zip", d->o.types[i], d->arch);
        snprintf(d->layer_name[i], sizeof d->layer_name[i], "%s-plugin-%s", d->o.name,
                 d->o.types[i]);
        d->nlayers = i + 1;
        if (rc == CLI_OK)
            rc = d_zip_read(d->cmd, dir, file, d->arch, &d->layer_zip[i]);
    }
    return rc;
}

struct d_table_wait {
    const char *cmd, *table;
    char arn[D_ARN_MAX];
};

/* DescribeTable: 0 with the Table, 1 none, -1 failed (printed). */
static int d_table_get(const char *cmd, const char *table, json_t **out)
{
    struct cli_aws_reply r;
    json_t *body = json_pack("{s:s}", "TableName", table);
    *out = NULL;
    if (!body)
        return d_oom(cmd), -1;
    if (cli_aws_json("dynamodb", "1.0", "DynamoDB_20120810.DescribeTable", body, &r) != 0) {
        return d_gone_or_fail(cmd, &r, "dynamodb:DescribeTable", table, "reading table %s",
                              table);
    }
    *out = json_incref(json_object_get(r.json, "Table"));
    cli_aws_reply_free(&r);
    if (!*out) {
        fprintf(stderr, "fanout %s: table %s: the DescribeTable answer has no Table\n", cmd,
                table);
        return -1;
    }
    return 0;
}

static int d_table_probe(void *ctx, char *progress, size_t len)
{
    struct d_table_wait *w = ctx;
    json_t *t;
    if (d_probe_read(w->cmd, "table", w->table, d_table_get(w->cmd, w->table, &t)) != 0)
        return -1;
    const char *status = d_str(t, "TableStatus", NULL);
    const char *arn = d_str(t, "TableArn", NULL);
    fanout_strlcpy(w->arn, arn ? arn : "", sizeof w->arn);
    int done = status && !strcmp(status, "ACTIVE");
    if (!done)
        snprintf(progress, len, "TableStatus %s", status ? status : "-");
    json_decref(t);
    return done;
}

static int d_table(struct d_run *d)
{
    const char *cmd = d->cmd, *table = d->o.table_name;
    json_t *t;
    int rc = d_table_get(cmd, table, &t);
    if (rc < 0)
        return CLI_FAILED;
    const char *status = rc == 0 ? d_str(t, "TableStatus", NULL) : NULL;
    const char *state = "unchanged";
    if (rc == 1 && d->o.table_arn) {
        fprintf(
            stderr,
            "fanout %s: --table-arn %s: there is no such table (deploy creates the table "
            "only when it names it: --table NAME, or by default %sTargets)\n",
            cmd, d->o.table_arn, d->o.name);
        return CLI_FAILED;
    }
    if (rc == 1) {
        json_t *body = json_pack(
            "{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:[{s:s, s:s}, {s:s, s:s}], s:s, "
            "s:[{s:s, s:s}]}",
            "TableName", table, "AttributeDefinitions", "AttributeName", "sourceArn",
            "AttributeType", "S", "AttributeName", "id", "AttributeType", "S", "KeySchema",
            "AttributeName", "sourceArn", "KeyType", "HASH", "AttributeName", "id",
            "KeyType", "RANGE", "BillingMode", "PAY_PER_REQUEST", "Tags", "Key", D_TAG,
            "Value", d->o.name);
        struct cli_aws_reply r;
        if (!body)
            return d_oom(cmd);
        if (cli_aws_json("dynamodb", "1.0", "DynamoDB_20120810.CreateTable", body, &r) !=
            0) {
            char what[1100], res[D_ARN_MAX];
            snprintf(what, sizeof what, "creating table %s", table);
            snprintf(res, sizeof res, "arn:%s:dynamodb:%s:%s:table/%s", d->who.partition,
                     d->who.region, d->who.account, table);
            rc = cli_aws_fail(cmd, what, "dynamodb:CreateTable", res, &r);
            cli_aws_reply_free(&r);
            return rc;
        }
        cli_aws_reply_free(&r);
        state = "created";
    } else if (!status || strcmp(status, "ACTIVE") != 0) {
        state = "unchanged (was not ACTIVE yet)";
    } else {
        fanout_strlcpy(d->table_arn,
                       d_str(t, "TableArn", NULL) ? d_str(t, "TableArn", NULL) : "",
                       sizeof d->table_arn);
    }
    json_decref(t);
    if (!d->table_arn[0]) {
        struct d_table_wait w = {cmd, table, ""};
        char what[1100];
        snprintf(what, sizeof what, "table %s", table);
        if (cli_aws_wait(cmd, what, d_table_probe, &w) != 0)
            return CLI_FAILED;
        fanout_strlcpy(d->table_arn, w.arn, sizeof d->table_arn);
    }
    if (!d->table_arn[0])
        snprintf(d->table_arn, sizeof d->table_arn, "arn:%s:dynamodb:%s:%s:table/%s",
                 d->who.partition, d->who.region, d->who.account, table);
    d_line("table %s: %s", table, state);
    return CLI_OK;
}

/* The function is (or will be) in a VPC: subnets given, or already set. */
static int d_in_vpc(const struct d_run *d)
{
    if (json_array_size(d->o.subnets))
        return 1;
    const json_t *s =
        json_object_get(json_object_get(d->current, "VpcConfig"), "SubnetIds");
    return json_array_size(s) > 0;
}

static int d_vpc_policy(struct d_run *d)
{
    const char *cmd = d->cmd;
    char policy[D_ARN_MAX];
    snprintf(policy, sizeof policy, "arn:%s:iam::aws:policy/service-role/%s",
             d->who.partition, D_VPC_POLICY);
    int want = d_in_vpc(d), attached = 0;
    struct cli_aws_reply r;
    if (!d->role_created) {
        const char *params[] = {"RoleName", d->role_name, NULL};
        if (d_iam("ListAttachedRolePolicies", params, &r) != 0) {
            char what[160];
            snprintf(what, sizeof what, "role %s: listing its managed policies",
                     d->role_name);
            cli_aws_fail(cmd, what, "iam:ListAttachedRolePolicies", d->role_arn, &r);
            cli_aws_reply_free(&r);
            return CLI_FAILED;
        }
        attached = r.body && strstr(r.body, policy) != NULL;
        cli_aws_reply_free(&r);
    }
    if (want == attached)
        return CLI_OK;
    const char *action = want ? "AttachRolePolicy" : "DetachRolePolicy";
    const char *params[] = {"RoleName", d->role_name, "PolicyArn", policy, NULL};
    if (d_iam(action, params, &r) != 0 && !(!want && d_is(&r, "NoSuchEntity"))) {
        char what[256], perm[64];
        snprintf(what, sizeof what, "role %s: %s %s", d->role_name,
                 want ? "attaching" : "detaching", D_VPC_POLICY);
        snprintf(perm, sizeof perm, "iam:%s", action);
        cli_aws_fail(cmd, what, perm, d->role_arn, &r);
        cli_aws_reply_free(&r);
        return CLI_FAILED;
    }
    cli_aws_reply_free(&r);
    d_line("role %s: policy %s %s", d->role_name, D_VPC_POLICY,
           want ? "attached" : "detached");
    return CLI_OK;
}

static int d_role(struct d_run *d)
{
    const char *cmd = d->cmd;
    if (d->o.exec_role_arn) {
        fanout_strlcpy(d->role_arn, d->o.exec_role_arn, sizeof d->role_arn);
        d_line("role %s: given with --exec-role-arn, not changed (it must allow what the "
               "function reads and writes)",
               d->role_arn);
        return CLI_OK;
    }
    d->role_ours = 1;
    if (d->o.exec_role)
        fanout_strlcpy(d->role_name, d->o.exec_role, sizeof d->role_name);
    else if (snprintf(d->role_name, sizeof d->role_name, "%sRole", d->o.name) >=
             (int)sizeof d->role_name)
        return CLI_FAILED; /* d_parse refused such a name */
    struct cli_aws_reply r;
    int rc = d_role_get(cmd, d->role_name, &r);
    if (rc < 0)
        return CLI_FAILED;
    if (rc == 1) {
        char desc[160];
        snprintf(desc, sizeof desc, "Execution role of the fanout function %s", d->o.name);
        const char *params[] = {"RoleName",
                                d->role_name,
                                "Path",
                                "/",
                                "AssumeRolePolicyDocument",
                                D_TRUST,
                                "Description",
                                desc,
                                "Tags.member.1.Key",
                                D_TAG,
                                "Tags.member.1.Value",
                                d->o.name,
                                NULL};
        if (d_iam("CreateRole", params, &r) != 0) {
            char what[160], res[D_ARN_MAX];
            snprintf(what, sizeof what, "creating role %s", d->role_name);
            snprintf(res, sizeof res, "arn:%s:iam::%s:role/%s", d->who.partition,
                     d->who.account, d->role_name);
            rc = cli_aws_fail(cmd, what, "iam:CreateRole", res, &r);
            cli_aws_reply_free(&r);
            return rc;
        }
        d->role_created = 1;
    }
    char *arn = cli_aws_xml_text(r.body, r.len, "Arn");
    cli_aws_reply_free(&r);
    if (!arn || strncmp(arn, "arn:", 4) || strlen(arn) >= sizeof d->role_arn) {
        free(arn);
        fprintf(stderr, "fanout %s: role %s: the %s answer has no Role Arn\n", cmd,
                d->role_name, d->role_created ? "CreateRole" : "GetRole");
        return CLI_FAILED;
    }
    fanout_strlcpy(d->role_arn, arn, sizeof d->role_arn);
    free(arn);
    d_line("role %s: %s", d->role_name, d->role_created ? "created" : "unchanged");
    rc = d_put_policy(cmd, &d->who, d->o.name, d->role_name, d->o.table_name, d->table_arn,
                      NULL);
    return rc == CLI_OK ? d_vpc_policy(d) : rc;
}

/* ListLayerVersions' newest version of `layer`: its number (0: none) and
 * ARN. CLI_ status. */
static int d_layer_latest(const char *cmd, const char *layer, long long *version, char *arn,
                          size_t arn_len)
{
    struct cli_aws_reply r;
    *version = 0;
    if (d_lambda("GET", D_LAYERS, layer, "/versions", NULL, NULL, &r) != 0) {
        return d_gone_or_fail(cmd, &r, "lambda:ListLayerVersions", layer,
                              "listing the versions of layer %s", layer) > 0
                   ? CLI_OK
                   : CLI_FAILED;
    }
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(r.json, "LayerVersions"), i, v) {
        long long n = json_integer_value(json_object_get(v, "Version"));
        const char *a = d_str(v, "LayerVersionArn", NULL);
        if (n > *version && a && strlen(a) < arn_len) {
            *version = n;
            fanout_strlcpy(arn, a, arn_len);
        }
    }
    cli_aws_reply_free(&r);
    return CLI_OK;
}

static int d_layer_put(struct d_run *d, size_t i)
{
    const char *cmd = d->cmd, *layer = d->layer_name[i];
    const struct d_zip *z = &d->layer_zip[i];
    char arn[D_ARN_MAX] = "", suffix[64];
    long long version;
    struct cli_aws_reply r;
    if (d_layer_latest(cmd, layer, &version, arn, sizeof arn) != CLI_OK)
        return CLI_FAILED;
    if (version > 0) {
        snprintf(suffix, sizeof suffix, "/versions/%lld", version);
        if (d_lambda("GET", D_LAYERS, layer, suffix, NULL, NULL, &r) != 0) {
            char what[256];
            snprintf(what, sizeof what, "reading layer %s version %lld", layer, version);
            cli_aws_fail(cmd, what, "lambda:GetLayerVersion", arn, &r);
            cli_aws_reply_free(&r);
            return CLI_FAILED;
        }
        const char *sha = d_str(r.json, "Content", "CodeSha256");
        int same = sha && !strcmp(sha, z->sha_b64);
        cli_aws_reply_free(&r);
        if (same) {
            d_line("layer %s: unchanged (version %lld)", layer, version);
            return json_array_append_new(d->layer_arns, json_string(arn)) ? d_oom(cmd)
                                                                          : CLI_OK;
        }
    }
    char desc[256];
    snprintf(desc, sizeof desc, "fanout plugins %s sha256:%s",
             d->o.ntypes ? d->o.types[i] : "all", z->sha_hex);
    json_t *body =
        json_pack("{s:s, s:{s:s}, s:[s], s:[s], s:s}", "Description", desc, "Content",
                  "ZipFile", z->b64, "CompatibleRuntimes", D_RUNTIME,
                  "CompatibleArchitectures", d->arch, "LicenseInfo", "Apache-2.0");
    if (!body)
        return d_oom(cmd);
    if (d_lambda("POST", D_LAYERS, layer, "/versions", NULL, body, &r) != 0) {
        char what[256], res[D_ARN_MAX];
        snprintf(what, sizeof what, "publishing layer %s", layer);
        snprintf(res, sizeof res, "arn:%s:lambda:%s:%s:layer:%s", d->who.partition,
                 d->who.region, d->who.account, layer);
        cli_aws_fail(cmd, what, "lambda:PublishLayerVersion", res, &r);
        cli_aws_reply_free(&r);
        return CLI_FAILED;
    }
    const char *a = d_str(r.json, "LayerVersionArn", NULL);
    version = json_integer_value(json_object_get(r.json, "Version"));
    int rc = CLI_OK;
    if (!a) {
        fprintf(stderr,
                "fanout %s: layer %s: the PublishLayerVersion answer has no "
                "LayerVersionArn\n",
                cmd, layer);
        rc = CLI_FAILED;
    } else if (json_array_append_new(d->layer_arns, json_string(a)) != 0) {
        rc = d_oom(cmd);
    } else {
        d_line("layer %s: version %lld published (%zu bytes)", layer, version, z->size);
    }
    cli_aws_reply_free(&r);
    return rc;
}

/* Layer i, its zip released once it is no longer needed. */
static int d_layer(struct d_run *d, size_t i)
{
    int rc = d_layer_put(d, i);
    d_zip_free(&d->layer_zip[i]);
    return rc;
}

static char *d_description(void)
{
    static char desc[128];
    snprintf(desc, sizeof desc, "fanout stream fan-out (deployed by fanout %s)",
             FANOUT_VERSION);
    return desc;
}

/* The environment the function gets: its own variables kept, FANOUT_TABLE
 * set, FANOUT_REPORT_BATCH_ITEM_FAILURES "false" unless hook set it. */
static json_t *d_env(const struct d_run *d)
{
    json_t *vars = json_deep_copy(
        json_object_get(json_object_get(d->current, "Environment"), "Variables"));
    if (!vars)
        vars = json_object();
    if (!vars)
        return NULL;
    int rc = json_object_set_new(vars, "FANOUT_TABLE", json_string(d->o.table_name));
    if (!json_object_get(vars, D_RBIF))
        rc |= json_object_set_new(vars, D_RBIF, json_string("false"));
    if (rc) {
        json_decref(vars);
        return NULL;
    }
    return vars;
}

static int d_same_set(const json_t *a, const json_t *b)
{
    if (json_array_size(a) != json_array_size(b))
        return 0;
    size_t i, j;
    json_t *x, *y;
    json_array_foreach (a, i, x) {
        int found = 0;
        json_array_foreach (b, j, y)
            found |= json_equal(x, y);
        if (!found)
            return 0;
    }
    return 1;
}

static int d_create_function(struct d_run *d, char *fn_arn, size_t len)
{
    const char *cmd = d->cmd;
    json_t *env = d_env(d);
    json_t *body =
        env ? json_pack("{s:s, s:s, s:s, s:s, s:{s:s}, s:s, s:i, s:i, s:[s], s:O, "
                        "s:{s:o}, s:{s:s}}",
                        "FunctionName", d->o.name, "Runtime", D_RUNTIME, "Role",
                        d->role_arn, "Handler", D_HANDLER, "Code", "ZipFile", d->fn_zip.b64,
                        "Description", d_description(), "Timeout", (int)d->o.timeout_s,
                        "MemorySize", (int)d->o.memory_mb, "Architectures", d->arch,
                        "Layers", d->layer_arns, "Environment", "Variables", env, "Tags",
                        D_TAG, d->o.name)
            : NULL;
    if (body && json_array_size(d->o.subnets) &&
        json_object_set_new(body, "VpcConfig",
                            json_pack("{s:O, s:O}", "SubnetIds", d->o.subnets,
                                      "SecurityGroupIds", d->o.sgs)) != 0) {
        json_decref(body);
        body = NULL;
    }
    if (!body)
        return d_oom(cmd);
    char what[160], res[D_ARN_MAX];
    snprintf(what, sizeof what, "creating function %s", d->o.name);
    snprintf(res, sizeof res, "arn:%s:lambda:%s:%s:function:%s", d->who.partition,
             d->who.region, d->who.account, d->o.name);
    struct d_retry c = {
        cmd, what, "lambda:CreateFunction", res, "POST", "/2015-03-31/functions", body};
    int rc = d_retry_role(&c);
    json_decref(body);
    const char *arn = rc == 0 ? d_str(c.r.json, "FunctionArn", NULL) : NULL;
    fanout_strlcpy(fn_arn, arn ? arn : res, len);
    cli_aws_reply_free(&c.r);
    if (rc != 0)
        return CLI_FAILED;
    d_line("function %s: created", d->o.name);
    return cli_function_wait(cmd, d->o.name);
}

/* Wait while the function is being created or updated (Lambda refuses
 * another update meanwhile). A failed last update does not stop this one,
 * which may be its cure. */
static int d_ready(struct d_run *d)
{
    const char *state = d_str(d->current, "State", NULL);
    const char *last = d_str(d->current, "LastUpdateStatus", NULL);
    if (last && !strcmp(last, "Failed"))
        fprintf(stderr,
                "fanout %s: note: function %s: its last update failed (%s); updating "
                "it again\n",
                d->cmd, d->o.name,
                d_str(d->current, "LastUpdateStatusReason", NULL)
                    ? d_str(d->current, "LastUpdateStatusReason", NULL)
                    : "no reason given");
    if ((!state || strcmp(state, "Pending") != 0) &&
        (!last || strcmp(last, "InProgress") != 0))
        return CLI_OK;
    return cli_function_wait(d->cmd, d->o.name);
}

/* The configuration members that differ from the function's, into upd;
 * their names into `names`. */
static int d_config_diff(struct d_run *d, json_t *upd, char *names, size_t len)
{
    const json_t *cur = d->current;
    int rc = 0;
    /* after a failed update, everything is sent again */
    const char *last = d_str(cur, "LastUpdateStatus", NULL);
    int force = last && !strcmp(last, "Failed");
    names[0] = 0;
#define D_CHANGED(member, value)                                                           \
    do {                                                                                   \
        rc |= json_object_set_new(upd, member, value);                                     \
        if (names[0])                                                                      \
            strncat(names, ", ", len - strlen(names) - 1);                                 \
        strncat(names, member, len - strlen(names) - 1);                                   \
    } while (0)
    static const char *const strs[] = {"Role", "Handler", "Runtime", "Description"};
    const char *want[] = {d->role_arn, D_HANDLER, D_RUNTIME, d_description()};
    for (size_t i = 0; i < 4; i++) {
        const char *have = d_str(cur, strs[i], NULL);
        if (force || !have || strcmp(have, want[i]) != 0)
            D_CHANGED(strs[i], json_string(want[i]));
    }
    if (d->o.memory &&
        (force || json_integer_value(json_object_get(cur, "MemorySize")) != d->o.memory_mb))
        D_CHANGED("MemorySize", json_integer(d->o.memory_mb));
    if (d->o.timeout &&
        (force || json_integer_value(json_object_get(cur, "Timeout")) != d->o.timeout_s))
        D_CHANGED("Timeout", json_integer(d->o.timeout_s));
    json_t *have_layers = json_array();
    if (!have_layers)
        rc = -1;
    size_t i;
    json_t *l;
    json_array_foreach (json_object_get(cur, "Layers"), i, l)
        rc |= json_array_append_new(
            have_layers, json_string(d_str(l, "Arn", NULL) ? d_str(l, "Arn", NULL) : ""));
    if (force || !json_equal(have_layers, d->layer_arns))
        D_CHANGED("Layers", json_copy(d->layer_arns));
    json_decref(have_layers);
    json_t *env = d_env(d);
    const json_t *have_env =
        json_object_get(json_object_get(cur, "Environment"), "Variables");
    if (!env)
        rc = -1;
    else if (force || !json_equal(env, have_env))
        D_CHANGED("Environment", json_pack("{s:o}", "Variables", env));
    else
        json_decref(env);
    if (json_array_size(d->o.subnets)) {
        const json_t *vpc = json_object_get(cur, "VpcConfig");
        if (!d_same_set(json_object_get(vpc, "SubnetIds"), d->o.subnets) ||
            !d_same_set(json_object_get(vpc, "SecurityGroupIds"), d->o.sgs))
            D_CHANGED("VpcConfig", json_pack("{s:O, s:O}", "SubnetIds", d->o.subnets,
                                             "SecurityGroupIds", d->o.sgs));
    }
#undef D_CHANGED
    return rc ? -1 : 0;
}

static int d_update_function(struct d_run *d)
{
    const char *cmd = d->cmd, *name = d->o.name;
    int changed = 0;
    if (d_ready(d) != CLI_OK)
        return CLI_FAILED;
    const char *sha = d_str(d->current, "CodeSha256", NULL);
    const char *arch =
        json_string_value(json_array_get(json_object_get(d->current, "Architectures"), 0));
    struct cli_aws_reply r;
    char what[256];
    if (!sha || strcmp(sha, d->fn_zip.sha_b64) != 0 || (arch && strcmp(arch, d->arch))) {
        json_t *body =
            json_pack("{s:s, s:[s]}", "ZipFile", d->fn_zip.b64, "Architectures", d->arch);
        if (!body)
            return d_oom(cmd);
        if (d_lambda("PUT", D_FUNCTIONS, name, "/code", NULL, body, &r) != 0) {
            snprintf(what, sizeof what, "updating the code of function %s", name);
            cli_aws_fail(cmd, what, "lambda:UpdateFunctionCode",
                         d_str(d->current, "FunctionArn", NULL), &r);
            cli_aws_reply_free(&r);
            return CLI_FAILED;
        }
        cli_aws_reply_free(&r);
        d_line("function %s: code updated (sha256 %s)", name, d->fn_zip.sha_hex);
        changed = 1;
        if (cli_function_wait(cmd, name) != CLI_OK)
            return CLI_FAILED;
    }
    json_t *upd = json_object();
    char names[256];
    if (!upd || d_config_diff(d, upd, names, sizeof names) != 0) {
        json_decref(upd);
        return d_oom(cmd);
    }
    if (json_object_size(upd)) {
        char path[1024];
        snprintf(what, sizeof what, "updating the configuration of function %s", name);
        if (cli_function_path(name, "/configuration", path, sizeof path) != 0) {
            json_decref(upd);
            return d_oom(cmd);
        }
        struct d_retry c = {cmd,
                            what,
                            "lambda:UpdateFunctionConfiguration",
                            d_str(d->current, "FunctionArn", NULL),
                            "PUT",
                            path,
                            upd};
        int rc = d_retry_role(&c);
        cli_aws_reply_free(&c.r);
        json_decref(upd);
        if (rc != 0)
            return CLI_FAILED;
        d_line("function %s: configuration updated (%s)", name, names);
        changed = 1;
        if (cli_function_wait(cmd, name) != CLI_OK)
            return CLI_FAILED;
    } else {
        json_decref(upd);
    }
    if (!changed)
        d_line("function %s: unchanged", name);
    return CLI_OK;
}

static int d_deploy(struct d_run *d)
{
    /* the packages first when the flags name the architecture; else it is
     * the existing function's (x86_64 for a new one) */
    int rc = CLI_OK;
    if (d->o.arch) {
        d->arch = d->o.arch;
        rc = d_packages(d);
    }
    if (rc == CLI_OK)
        rc = d_identity(d->cmd, &d->who);
    if (rc == CLI_OK && d_function_read(d->cmd, d->o.name, 1, &d->current) < 0)
        rc = CLI_FAILED;
    if (rc == CLI_OK && !d->o.arch) {
        const char *have = json_string_value(
            json_array_get(json_object_get(d->current, "Architectures"), 0));
        d->arch = have && !strcmp(have, "arm64") ? "arm64" : "x86_64";
        rc = d_packages(d);
    }
    if (rc != CLI_OK)
        return rc;
    if ((rc = d_table(d)) != CLI_OK || (rc = d_role(d)) != CLI_OK)
        return rc;
    for (size_t i = 0; i < d->nlayers; i++)
        if ((rc = d_layer(d, i)) != CLI_OK)
            return rc;
    char fn_arn[D_ARN_MAX];
    if (!d->current) {
        rc = d_create_function(d, fn_arn, sizeof fn_arn);
    } else {
        const char *a = d_str(d->current, "FunctionArn", NULL);
        fanout_strlcpy(fn_arn, a ? a : d->o.name, sizeof fn_arn);
        rc = d_update_function(d);
    }
    if (rc == CLI_OK)
        d_line("%s", fn_arn);
    return rc;
}

/* --help (or -h) anywhere: the help on stdout, 1. */
static int d_help(const struct cli_command *cmd, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cli_help(cmd, stdout);
            return 1;
        }
    return 0;
}

int cli_deploy(const struct cli_command *cmd, int argc, char **argv)
{
    if (d_help(cmd, argc, argv))
        return CLI_OK;
    struct d_run d;
    memset(&d, 0, sizeof d);
    d.cmd = cmd->name;
    int rc = d_start(cmd->name, D_DEPLOY, argc, argv, &d.o);
    if (rc == CLI_OK && !(d.layer_arns = json_array()))
        rc = d_oom(cmd->name);
    if (rc == CLI_OK)
        rc = d_deploy(&d);
    d_zip_free(&d.fn_zip);
    for (size_t i = 0; i < D_MAX_LAYERS; i++)
        d_zip_free(&d.layer_zip[i]);
    json_decref(d.current);
    json_decref(d.layer_arns);
    d_opts_free(&d.o);
    return rc;
}

/* ---- destroy ------------------------------------------------------------------- */

struct d_esm_gone {
    const char *cmd, *uuid;
    int deleted;
};

static int d_esm_probe(void *ctx, char *progress, size_t len)
{
    struct d_esm_gone *g = ctx;
    struct cli_aws_reply r;
    char what[160];
    snprintf(what, sizeof what, "deleting event source mapping %s", g->uuid);
    int in_use = 0;
    if (!g->deleted) {
        if (d_lambda("DELETE", D_ESMS, g->uuid, "", NULL, NULL, &r) == 0 ||
            d_not_found(&r)) {
            g->deleted = 1;
        } else if (d_is(&r, "ResourceInUseException")) {
            in_use = 1; /* Creating, Updating...: deleted once settled */
        } else {
            cli_aws_fail(g->cmd, what, "lambda:DeleteEventSourceMapping", g->uuid, &r);
            cli_aws_reply_free(&r);
            return -1;
        }
        cli_aws_reply_free(&r);
    }
    if (d_lambda("GET", D_ESMS, g->uuid, "", NULL, NULL, &r) != 0) {
        return d_gone_or_fail(g->cmd, &r, "lambda:GetEventSourceMapping", g->uuid, "%s",
                              what);
    }
    snprintf(progress, len, "State %s%s",
             d_str(r.json, "State", NULL) ? d_str(r.json, "State", NULL) : "-",
             in_use ? " (it cannot be deleted in this state)" : "");
    cli_aws_reply_free(&r);
    return 0;
}

static int d_destroy_esms(const char *cmd, const char *function)
{
    json_t *esms = json_array();
    if (!esms)
        return d_oom(cmd);
    int rc = cli_esm_list(cmd, function, NULL, esms);
    size_t i;
    json_t *e;
    json_array_foreach (esms, i, e) {
        const char *uuid = d_str(e, "UUID", NULL), *src = d_str(e, "EventSourceArn", NULL);
        if (rc != CLI_OK || !uuid)
            continue;
        struct d_esm_gone g = {cmd, uuid, 0};
        char what[256];
        snprintf(what, sizeof what, "event source mapping %s", uuid);
        if (cli_aws_wait(cmd, what, d_esm_probe, &g) != 0)
            rc = CLI_FAILED;
        else
            d_line("event source mapping %s (%s): deleted", uuid, src ? src : "-");
    }
    if (rc == CLI_OK && json_array_size(esms) == 0)
        d_line("event source mappings of %s: none", function);
    json_decref(esms);
    return rc;
}

static int d_destroy_function(const char *cmd, const char *function)
{
    struct cli_aws_reply r;
    if (d_lambda("DELETE", D_FUNCTIONS, function, "", NULL, NULL, &r) != 0) {
        if (d_gone_or_fail(cmd, &r, "lambda:DeleteFunction", function,
                           "deleting function %s", function) < 0)
            return CLI_FAILED;
        d_line("function %s: not found", function);
        return CLI_OK;
    }
    cli_aws_reply_free(&r);
    d_line("function %s: deleted", function);
    return CLI_OK;
}

/* Is `layer` one of deploy's for the function: NAME-plugins, or
 * NAME-plugin-TYPE with a plugin type? */
static int d_our_layer(const char *function, const char *layer)
{
    size_t n = strlen(function);
    if (strncmp(layer, function, n) != 0)
        return 0;
    if (!strcmp(layer + n, "-plugins"))
        return 1;
    if (strncmp(layer + n, "-plugin-", 8) != 0)
        return 0;
    for (const char *const *t = d_plugin_types; *t; t++)
        if (!strcmp(layer + n + 8, *t))
            return 1;
    return 0;
}

/* Delete every version of `layer`. */
static int d_destroy_layer(const char *cmd, const char *layer)
{
    char marker[1024] = "", what[256];
    snprintf(what, sizeof what, "listing the versions of layer %s", layer);
    int deleted = 0;
    for (int page = 0; page < D_MAX_PAGES; page++) {
        const char *pairs[] = {"Marker", marker, NULL};
        char *q = d_query(pairs);
        struct cli_aws_reply r;
        if (!q)
            return d_oom(cmd);
        int rc = d_lambda("GET", D_LAYERS, layer, "/versions", q[0] ? q : NULL, NULL, &r);
        free(q);
        if (rc != 0) {
            if (d_gone_or_fail(cmd, &r, "lambda:ListLayerVersions", layer, "%s", what) < 0)
                return CLI_FAILED;
            break;
        }
        size_t i;
        json_t *v;
        json_array_foreach (json_object_get(r.json, "LayerVersions"), i, v) {
            char suffix[64];
            struct cli_aws_reply dr;
            long long n = json_integer_value(json_object_get(v, "Version"));
            snprintf(suffix, sizeof suffix, "/versions/%lld", n);
            if (d_lambda("DELETE", D_LAYERS, layer, suffix, NULL, NULL, &dr) != 0 &&
                !d_not_found(&dr)) {
                char dwhat[256];
                snprintf(dwhat, sizeof dwhat, "deleting layer %s version %lld", layer, n);
                cli_aws_fail(cmd, dwhat, "lambda:DeleteLayerVersion",
                             d_str(v, "LayerVersionArn", NULL), &dr);
                cli_aws_reply_free(&dr);
                cli_aws_reply_free(&r);
                return CLI_FAILED;
            }
            cli_aws_reply_free(&dr);
            deleted++;
        }
        rc = d_next(cmd, what, d_str(r.json, "NextMarker", NULL), marker, sizeof marker);
        cli_aws_reply_free(&r);
        if (rc < 0)
            return CLI_FAILED;
        if (rc == 0)
            break;
    }
    d_line("layer %s: %d version%s deleted", layer, deleted, deleted == 1 ? "" : "s");
    return CLI_OK;
}

static int d_destroy_layers(const char *cmd, const char *function)
{
    char marker[1024] = "";
    int found = 0;
    for (int page = 0; page < D_MAX_PAGES; page++) {
        const char *pairs[] = {"Marker", marker, NULL};
        char *q = d_query(pairs);
        struct cli_aws_reply r;
        if (!q)
            return d_oom(cmd);
        int rc =
            cli_aws_rest("lambda", "GET", "/2018-10-31/layers", q[0] ? q : NULL, NULL, &r);
        free(q);
        if (rc != 0) {
            cli_aws_fail(cmd, "listing the layers", "lambda:ListLayers", "*", &r);
            cli_aws_reply_free(&r);
            return CLI_FAILED;
        }
        size_t i;
        json_t *l;
        json_array_foreach (json_object_get(r.json, "Layers"), i, l) {
            const char *name = d_str(l, "LayerName", NULL);
            if (rc == 0 && name && d_our_layer(function, name)) {
                found++;
                rc = d_destroy_layer(cmd, name) == CLI_OK ? 0 : -1;
            }
        }
        if (rc == 0)
            rc = d_next(cmd, "listing the layers", d_str(r.json, "NextMarker", NULL),
                        marker, sizeof marker);
        cli_aws_reply_free(&r);
        if (rc < 0)
            return CLI_FAILED;
        if (rc == 0)
            break;
    }
    if (!found)
        d_line("layers %s-plugin*: none", function);
    return CLI_OK;
}

/* IAM calls whose "no such entity" answer means done. */
static int d_iam_gone(const char *cmd, const char *action, const char *const *params,
                      const char *what, const char *resource)
{
    struct cli_aws_reply r;
    int rc = CLI_OK;
    if (d_iam(action, params, &r) != 0 && !d_is(&r, "NoSuchEntity")) {
        char perm[64];
        snprintf(perm, sizeof perm, "iam:%s", action);
        rc = cli_aws_fail(cmd, what, perm, resource, &r);
    }
    cli_aws_reply_free(&r);
    return rc;
}

static int d_destroy_role(const char *cmd, const struct d_opts *o, const char *role_arn)
{
    char role[D_MAX_NAME + 1], tag[256];
    if (o->exec_role_arn) {
        d_line("role %s: kept (given with --exec-role-arn)", o->exec_role_arn);
        return CLI_OK;
    }
    if (o->exec_role)
        fanout_strlcpy(role, o->exec_role, sizeof role);
    else if (!d_role_name(role_arn, role, sizeof role) &&
             snprintf(role, sizeof role, "%sRole", o->name) >= (int)sizeof role)
        return CLI_FAILED; /* d_parse refused such a name */
    struct cli_aws_reply r;
    int rc = d_role_get(cmd, role, &r);
    if (rc < 0)
        return CLI_FAILED;
    if (rc == 1) {
        d_line("role %s: not found", role);
        return CLI_OK;
    }
    int ours = d_role_tag(r.body, r.len, D_TAG, tag, sizeof tag) && !strcmp(tag, o->name);
    char *arn = cli_aws_xml_text(r.body, r.len, "Arn");
    cli_aws_reply_free(&r);
    if (!ours) {
        d_line("role %s: kept (it has no tag %s=%s: deploy did not create it for this "
               "function)",
               role, D_TAG, o->name);
        free(arn);
        return CLI_OK;
    }
    char what[160], vpc[D_ARN_MAX], partition[32] = "aws";
    /* arn:PARTITION:iam::... */
    if (arn && !strncmp(arn, "arn:", 4) && strcspn(arn + 4, ":") < sizeof partition) {
        memcpy(partition, arn + 4, strcspn(arn + 4, ":"));
        partition[strcspn(arn + 4, ":")] = 0;
    }
    snprintf(vpc, sizeof vpc, "arn:%s:iam::aws:policy/service-role/%s", partition,
             D_VPC_POLICY);
    const char *pol[] = {"RoleName", role, "PolicyName", D_POLICY, NULL};
    const char *det[] = {"RoleName", role, "PolicyArn", vpc, NULL};
    const char *del[] = {"RoleName", role, NULL};
    snprintf(what, sizeof what, "role %s: deleting its policy %s", role, D_POLICY);
    rc = d_iam_gone(cmd, "DeleteRolePolicy", pol, what, arn);
    if (rc == CLI_OK) {
        snprintf(what, sizeof what, "role %s: detaching %s", role, D_VPC_POLICY);
        rc = d_iam_gone(cmd, "DetachRolePolicy", det, what, arn);
    }
    if (rc == CLI_OK) {
        snprintf(what, sizeof what, "deleting role %s", role);
        if (d_iam("DeleteRole", del, &r) != 0 && !d_is(&r, "NoSuchEntity")) {
            rc = cli_aws_fail(cmd, what, "iam:DeleteRole", arn, &r);
            if (d_is(&r, "DeleteConflict"))
                fprintf(stderr,
                        "fanout %s: role %s has policies or instance profiles that deploy "
                        "did not add: remove them, then run destroy again\n",
                        cmd, role);
        } else {
            d_line("role %s: deleted", role);
        }
        cli_aws_reply_free(&r);
    }
    free(arn);
    return rc;
}

/* DeleteTable answers DELETING: the table is gone when DescribeTable says
 * it does not exist. */
struct d_table_gone {
    const char *cmd, *table;
};

static int d_table_gone_probe(void *ctx, char *progress, size_t len)
{
    struct d_table_gone *g = ctx;
    json_t *body = json_pack("{s:s}", "TableName", g->table);
    struct cli_aws_reply r;
    if (!body)
        return d_oom(g->cmd), -1;
    int done;
    if (cli_aws_json("dynamodb", "1.0", "DynamoDB_20120810.DescribeTable", body, &r) == 0) {
        snprintf(progress, len, "TableStatus %s",
                 d_str(json_object_get(r.json, "Table"), "TableStatus", "-"));
        done = 0;
    } else if (d_is(&r, "ResourceNotFoundException")) {
        done = 1;
    } else {
        char what[1100];
        snprintf(what, sizeof what, "waiting for table %s to be deleted", g->table);
        cli_aws_fail(g->cmd, what, "dynamodb:DescribeTable", g->table, &r);
        done = -1;
    }
    cli_aws_reply_free(&r);
    return done;
}

static int d_destroy_table(const char *cmd, const struct d_opts *o)
{
    if (!o->delete_table) {
        d_line("table %s: kept (--delete-table deletes it)", o->table_name);
        return CLI_OK;
    }
    json_t *body = json_pack("{s:s}", "TableName", o->table_name);
    struct cli_aws_reply r;
    if (!body)
        return d_oom(cmd);
    int rc = CLI_OK;
    if (cli_aws_json("dynamodb", "1.0", "DynamoDB_20120810.DeleteTable", body, &r) != 0) {
        if (d_is(&r, "ResourceNotFoundException")) {
            d_line("table %s: not found", o->table_name);
        } else {
            char what[1100];
            snprintf(what, sizeof what, "deleting table %s", o->table_name);
            rc = cli_aws_fail(cmd, what, "dynamodb:DeleteTable", o->table_name, &r);
        }
    } else {
        struct d_table_gone g = {cmd, o->table_name};
        char what[1100];
        snprintf(what, sizeof what, "table %s", o->table_name);
        rc = cli_aws_wait(cmd, what, d_table_gone_probe, &g) == 0 ? CLI_OK : CLI_FAILED;
        if (rc == CLI_OK)
            d_line("table %s: deleted", o->table_name);
    }
    cli_aws_reply_free(&r);
    return rc;
}

/* --yes, or "y" / "yes" typed on a terminal. */
static int d_confirm(const char *cmd, const struct d_opts *o)
{
    if (o->yes)
        return CLI_OK;
    if (!isatty(STDIN_FILENO)) {
        fprintf(stderr,
                "fanout %s: standard input is not a terminal, so nothing can be confirmed; "
                "pass --yes to delete function %s and what deploy created for it\n",
                cmd, o->name);
        return CLI_USAGE;
    }
    fprintf(
        stderr,
        "Delete function %s, its event source mappings, its layers %s-plugin*, its role "
        "(when deploy created it)%s%s? [y/N] ",
        o->name, o->name, o->delete_table ? " and table " : "",
        o->delete_table ? o->table_name : "");
    char line[32];
    if (!fgets(line, sizeof line, stdin))
        line[0] = 0;
    line[strcspn(line, "\r\n")] = 0;
    if (!strcasecmp(line, "y") || !strcasecmp(line, "yes"))
        return CLI_OK;
    fprintf(stderr, "fanout %s: not confirmed; nothing was deleted\n", cmd);
    return CLI_FAILED;
}

int cli_destroy(const struct cli_command *cmd, int argc, char **argv)
{
    if (d_help(cmd, argc, argv))
        return CLI_OK;
    const char *c = cmd->name;
    struct d_opts o;
    int rc = d_start(c, D_DESTROY, argc, argv, &o);
    if (rc == CLI_OK)
        rc = d_confirm(c, &o);
    json_t *cfg = NULL;
    if (rc == CLI_OK && d_function_get(c, o.name, &cfg) < 0)
        rc = CLI_FAILED;
    char role_arn[D_ARN_MAX] = "";
    if (cfg && d_str(cfg, "Role", NULL))
        fanout_strlcpy(role_arn, d_str(cfg, "Role", NULL), sizeof role_arn);
    json_decref(cfg);
    if (rc == CLI_OK)
        rc = d_destroy_esms(c, o.name);
    if (rc == CLI_OK)
        rc = d_destroy_function(c, o.name);
    if (rc == CLI_OK)
        rc = d_destroy_layers(c, o.name);
    if (rc == CLI_OK)
        rc = d_destroy_role(c, &o, role_arn[0] ? role_arn : NULL);
    if (rc == CLI_OK)
        rc = d_destroy_table(c, &o);
    d_opts_free(&o);
    return rc;
}
