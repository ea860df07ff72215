/* The DynamoDB mapping store: one item per mapping (hash key sourceArn,
 * range key id), read with Query per source and cached, and the codec
 * between mappings and DynamoDB items.
 *
 * Active mappings are filtered here rather than with a FilterExpression:
 * the store must see every item of the source to report the invalid ones
 * (an "active" stored as {"S":"true"} would silently never match a filter
 * on BOOL true), and a source has few items. */
#include "core/store_ddb.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ddb_table.h"
#include "common/log.h"
#include "common/util.h"

/* Defaults of FANOUT_MAPPING_REFRESH_SECONDS and
 * FANOUT_MAPPING_STALE_SECONDS. */
#define S_REFRESH_DEFAULT_MS 60000
#define S_STALE_DEFAULT_MS   900000
/* Longest interval accepted for either: a day. */
#define S_SECONDS_MAX 86400.0
/* DynamoDB's own limit on the nesting depth of an item. */
#define S_DEPTH_MAX  32
#define S_SHOWN_TEXT 64 /* characters of a wrong value quoted in a message */

/* ---- item codec ------------------------------------------------------------ */

/* The schema's boolean fields; its other fields are strings. */
static const char *const s_bool_fields[] = {"active",      "parallel",       "convertDDB",
                                            "deaggregate", "appendNewlines", "wholeRecord",
                                            NULL};

static int s_in(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (strcmp(*list, name) == 0)
            return 1;
    return 0;
}

/* An AttributeValue is an object with exactly one member, its type. */
static const char *s_attr_type(const json_t *v, const json_t **val)
{
    if (!json_is_object(v) || json_object_size(v) != 1)
        return NULL;
    void *it = json_object_iter((json_t *)v);
    *val = json_object_iter_value(it);
    return json_object_iter_key(it);
}

const char *fanout_ddb_item_text(const json_t *item, const char *name)
{
    const json_t *v;
    const char *t = s_attr_type(json_object_get(item, name), &v);
    return t && !strcmp(t, "S") && json_is_string(v) ? json_string_value(v) : NULL;
}

/* What was found, for messages: S "true", N 1, BOOL false, NULL, M... */
static void s_describe(const json_t *attr, char *out, size_t len)
{
    const json_t *val;
    const char *type = s_attr_type(attr, &val);
    if (!type) {
        snprintf(out, len,
                 "%s, not a DynamoDB attribute value (one type key, e.g. "
                 "{\"S\": \"...\"} or {\"BOOL\": true})",
                 json_is_object(attr) ? "an object" : "a JSON value");
        return;
    }
    if ((!strcmp(type, "S") || !strcmp(type, "N")) && json_is_string(val)) {
        const char *s = json_string_value(val);
        size_t n = strlen(s);
        int cut = n > S_SHOWN_TEXT;
        snprintf(out, len, "%s %s%.*s%s%s", type, type[0] == 'S' ? "\"" : "",
                 cut ? S_SHOWN_TEXT : (int)n, s, cut ? "..." : "",
                 type[0] == 'S' ? "\"" : "");
    } else if (!strcmp(type, "BOOL") && json_is_boolean(val)) {
        snprintf(out, len, "BOOL %s", json_is_true(val) ? "true" : "false");
    } else {
        snprintf(out, len, "%s", type);
    }
}

struct s_item_ctx {
    size_t index;
    const char *id;
    char *err;
    size_t err_len;
};

static int s_item_problem(struct s_item_ctx *c, const char *field, const char *fmt, ...)
    FANOUT_FMT(3, 4);
static int s_item_problem(struct s_item_ctx *c, const char *field, const char *fmt, ...)
{
    /* the same message as fanout_mapping_parse's */
    va_list ap;
    va_start(ap, fmt);
    fanout_mapping_vproblem(c->err, c->err_len, c->index, c->id, field, fmt, ap);
    va_end(ap);
    return -1;
}

/* DynamoDB's number syntax: -?digits[.digits][e[+-]digits]. */
static int s_number_ok(const char *s)
{
    const char *p = s;
    int digits = 0;
    if (*p == '-')
        p++;
    for (; *p >= '0' && *p <= '9'; p++)
        digits++;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            digits++;
    if (!digits)
        return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (*p < '0' || *p > '9')
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == 0;
}

/* N as JSON: an integer when it is one that fits 64 bits, else a double.
 * Plugin options are counts and sizes, where both are exact. */
static json_t *s_number(const char *s, char *why, size_t why_len)
{
    if (!s_number_ok(s)) {
        snprintf(why, why_len, "N \"%.*s\" is not a number", S_SHOWN_TEXT, s);
        return NULL;
    }
    if (!strpbrk(s, ".eE")) {
        errno = 0;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (errno == 0 && *end == 0)
            return json_integer(v);
    }
    double d = strtod(s, NULL);
    if (!isfinite(d)) {
        snprintf(why, why_len, "N %.*s is out of range", S_SHOWN_TEXT, s);
        return NULL;
    }
    return json_real(d);
}

/* An AttributeValue as plain JSON (S string, N number, B base64 string,
 * BOOL, NULL null, M object, L array, SS/NS/BS arrays). NULL with `why`. */
static json_t *s_attr_to_json(const json_t *attr, int depth, char *why, size_t why_len)
{
    const json_t *v;
    const char *t = s_attr_type(attr, &v);
    if (!t || depth > S_DEPTH_MAX) {
        if (t)
            snprintf(why, why_len, "nested deeper than %d levels", S_DEPTH_MAX);
        else
            s_describe(attr, why, why_len);
        return NULL;
    }
    if ((!strcmp(t, "S") || !strcmp(t, "B")) && json_is_string(v))
        return json_stringn(json_string_value(v), json_string_length(v));
    if (!strcmp(t, "N") && json_is_string(v))
        return s_number(json_string_value(v), why, why_len);
    if (!strcmp(t, "BOOL") && json_is_boolean(v))
        return json_boolean(json_is_true(v));
    if (!strcmp(t, "NULL") && json_is_true(v))
        return json_null();
    if (!strcmp(t, "M") && json_is_object(v)) {
        json_t *out = json_object();
        const char *k;
        json_t *a;
        json_object_foreach ((json_t *)v, k, a) {
            json_t *x = out ? s_attr_to_json(a, depth + 1, why, why_len) : NULL;
            if (!x || json_object_set_new(out, k, x) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    int set = !strcmp(t, "SS") || !strcmp(t, "NS") || !strcmp(t, "BS");
    if ((set || !strcmp(t, "L")) && json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *a;
        json_array_foreach (v, i, a) {
            json_t *x = NULL;
            if (!out)
                break;
            if (!set)
                x = s_attr_to_json(a, depth + 1, why, why_len);
            else if (!json_is_string(a))
                snprintf(why, why_len, "%s holds something other than strings", t);
            else if (t[0] == 'N')
                x = s_number(json_string_value(a), why, why_len);
            else
                x = json_stringn(json_string_value(a), json_string_length(a));
            if (!x || json_array_append_new(out, x) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    snprintf(why, why_len,
             "unknown or malformed DynamoDB attribute value of type \"%s\" (expected one "
             "of S, N, B, BOOL, NULL, M, L, SS, NS, BS)",
             t);
    return NULL;
}

/* Schema fields are read strictly: strings only from S, booleans only from
 * BOOL. NULL reads as absent, as JSON null does in the file store. */
static int s_schema_field(struct s_item_ctx *c, const json_t *item, const char *field,
                          json_t *obj)
{
    const json_t *attr = json_object_get(item, field), *v;
    if (!attr)
        return 0;
    const char *t = s_attr_type(attr, &v);
    if (t && !strcmp(t, "NULL"))
        return 0;
    int want_bool = s_in(s_bool_fields, field);
    if (!t || strcmp(t, want_bool ? "BOOL" : "S") != 0 ||
        !(want_bool ? json_is_boolean(v) : json_is_string(v))) {
        char found[160];
        s_describe(attr, found, sizeof found);
        return s_item_problem(c, field, "expected %s, got %s",
                              want_bool ? "a boolean (DynamoDB BOOL: true or false)"
                                        : "a string (DynamoDB S)",
                              found);
    }
    json_t *x = want_bool ? json_boolean(json_is_true(v))
                          : json_stringn(json_string_value(v), json_string_length(v));
    if (!x || json_object_set_new(obj, field, x) != 0)
        return s_item_problem(c, field, "out of memory");
    return 0;
}

struct fanout_mapping *fanout_mapping_from_item(const json_t *item, size_t index, char *err,
                                                size_t err_len)
{
    struct s_item_ctx c = {index, NULL, err, err_len};
    if (!json_is_object(item)) {
        snprintf(err, err_len,
                 "mapping #%zu: expected a DynamoDB item (an object of attribute values)",
                 index);
        return NULL;
    }
    const json_t *idv;
    const char *idt = s_attr_type(json_object_get(item, "id"), &idv);
    if (idt && !strcmp(idt, "S") && json_is_string(idv) && json_string_length(idv) > 0)
        c.id = json_string_value(idv);

    json_t *obj = json_object();
    if (!obj) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    /* schema fields first, in the schema's order, so the first problem
     * reported is the one the file store would report */
    for (const char *const *f = fanout_mapping_fields; *f; f++)
        if (s_schema_field(&c, item, *f, obj) != 0)
            goto fail;
    const char *key;
    json_t *attr;
    json_object_foreach ((json_t *)item, key, attr) {
        if (s_in(fanout_mapping_fields, key))
            continue;
        char why[256];
        json_t *x = s_attr_to_json(attr, 1, why, sizeof why);
        if (!x) {
            s_item_problem(&c, key, "%s", why);
            goto fail;
        }
        if (json_object_set_new(obj, key, x) != 0) {
            snprintf(err, err_len, "out of memory");
            goto fail;
        }
    }
    struct fanout_mapping *m = fanout_mapping_parse(obj, index, err, err_len);
    json_decref(obj);
    return m;
fail:
    json_decref(obj);
    return NULL;
}

static json_t *s_json_to_attr(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_pack("{s:s%}", "S", json_string_value(v), json_string_length(v));
    case JSON_TRUE:
    case JSON_FALSE: return json_pack("{s:b}", "BOOL", json_is_true(v));
    case JSON_NULL: return json_pack("{s:b}", "NULL", 1);
    case JSON_INTEGER: {
        char n[32];
        snprintf(n, sizeof n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return json_pack("{s:s}", "N", n);
    }
    case JSON_REAL: {
        char n[40];
        snprintf(n, sizeof n, "%.17g", json_real_value(v));
        return json_pack("{s:s}", "N", n);
    }
    case JSON_OBJECT: {
        json_t *m = json_object();
        const char *k;
        json_t *x;
        json_object_foreach ((json_t *)v, k, x)
            if (!m || json_object_set_new(m, k, s_json_to_attr(x)) != 0) {
                json_decref(m);
                return NULL;
            }
        return m ? json_pack("{s:o}", "M", m) : NULL;
    }
    case JSON_ARRAY: {
        json_t *l = json_array();
        size_t i;
        json_t *x;
        json_array_foreach (v, i, x)
            if (!l || json_array_append_new(l, s_json_to_attr(x)) != 0) {
                json_decref(l);
                return NULL;
            }
        return l ? json_pack("{s:o}", "L", l) : NULL;
    }
    }
    return NULL;
}

json_t *fanout_mapping_to_item(const struct fanout_mapping *m)
{
    json_t *item = json_object();
    const char *key;
    json_t *v;
    json_object_foreach (m->json, key, v) {
        if (json_is_null(v))
            continue; /* absent, as the file store reads null */
        /* a schema field given as an object ("onFailure") is stored as a
         * string holding its JSON, the form the table is read in */
        char *text = s_in(fanout_mapping_fields, key) && json_is_object(v)
                         ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS)
                         : NULL;
        json_t *attr = text ? json_pack("{s:s}", "S", text) : s_json_to_attr(v);
        free(text);
        if (!item || json_object_set_new(item, key, attr) != 0) {
            json_decref(item ? NULL : attr); /* set_new took it */
            json_decref(item);
            return NULL;
        }
    }
    return item;
}

/* ---- table name and settings ------------------------------------------------ */

const char *fanout_store_ddb_table_name(char *buf, size_t len, char *err, size_t err_len)
{
    const char *table = getenv("FANOUT_TABLE");
    const char *fn = getenv("AWS_LAMBDA_FUNCTION_NAME");
    int n;
    if (table && *table)
        n = snprintf(buf, len, "%s", table);
    else if (fn && *fn)
        n = snprintf(buf, len, "%sTargets", fn);
    else {
        snprintf(err, err_len,
                 "no mapping store: give --config FILE, set FANOUT_CONFIG to a mapping "
                 "file, or set FANOUT_TABLE to a DynamoDB table (under Lambda the "
                 "default table is <function name>Targets)");
        return NULL;
    }
    if (n < 0 || (size_t)n >= len) {
        snprintf(err, err_len, "the mapping table name (%s) is too long",
                 table && *table ? "FANOUT_TABLE" : "AWS_LAMBDA_FUNCTION_NAME + Targets");
        return NULL;
    }
    return buf;
}

/* DynamoDB's rule: 3 to 255 of [A-Za-z0-9_.-]; or the table's ARN. */
/* A duration in seconds from the environment (decimals allowed). */
static int s_env_seconds(const char *name, int64_t dflt_ms, int64_t *out_ms, char *err,
                         size_t err_len)
{
    const char *v = getenv(name);
    *out_ms = dflt_ms;
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= 0 && d <= S_SECONDS_MAX)) {
        snprintf(err, err_len,
                 "%s: expected a number of seconds from 0 to %.0f (e.g. 60), got \"%s\"",
                 name, S_SECONDS_MAX, v);
        return -1;
    }
    *out_ms = (int64_t)(d * 1000 + 0.5); /* d is in [0, S_SECONDS_MAX] */
    return 0;
}

/* ---- the store ------------------------------------------------------------- */

/* The cache of one source. */
struct s_entry {
    char *source;
    struct fanout_mapping_set set; /* every valid mapping of the source */
    struct fanout_mapping **active;
    size_t active_count;
    size_t *bad; /* problems that may be active: indexes into set */
    size_t bad_count;
    int have;        /* read successfully at least once */
    int64_t read_ms; /* end of the last good read */
    int64_t next_ms; /* read again from then on */
    uint64_t used;   /* the store's lookup count at its last lookup */
};

/* Sources cached at most: events name any sources they like (an SNS message
 * unwrapped names its own), and each would stay for the process's life; the
 * least recently looked up goes first. */
#define S_ENTRIES_MAX 1024

struct s_ddb_store {
    struct fanout_store base;
    char *table;
    char *region;
    int64_t refresh_ms;
    int64_t stale_ms;
    long page_limit; /* 0: DynamoDB's (1 MB pages) */
    struct s_entry *entries;
    size_t entry_count;
    size_t entry_cap;
    uint64_t lookups;
    struct fanout_mapping_set all; /* the last Scan, for `all` */
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Growable arrays beside a fanout_mapping_set (which keeps no capacity). */
struct s_collect {
    struct fanout_mapping_set *set;
    size_t item_cap;
    size_t problem_cap;
};

/* Room for one more of `size` bytes in p[0..count): the (maybe moved)
 * array, or NULL with p untouched. */
static void *s_grow(void *p, size_t *cap, size_t count, size_t size)
{
    if (count < *cap)
        return p;
    size_t n = *cap ? *cap * 2 : 16;
    void *q = realloc(p, n * size);
    if (q)
        *cap = n;
    return q;
}

static int s_add_item(struct s_collect *c, struct fanout_mapping *m)
{
    void *p = s_grow(c->set->items, &c->item_cap, c->set->count, sizeof *c->set->items);
    if (!p) {
        fanout_mapping_free(m);
        return -1;
    }
    c->set->items = p;
    c->set->items[c->set->count++] = m;
    return 0;
}

/* What can be read of an invalid item, to attribute it: its key
 * attributes and a BOOL "active" (anything else there reads as unknown). */
static int s_add_problem(struct s_collect *c, const char *msg, const json_t *item)
{
    size_t cap = c->problem_cap;
    void *p =
        s_grow(c->set->problems, &cap, c->set->problem_count, sizeof *c->set->problems);
    if (!p)
        return -1;
    c->set->problems = p;
    if (cap != c->problem_cap) {
        void *d = realloc(c->set->details, cap * sizeof *c->set->details);
        if (!d)
            return -1; /* problems grew: harmless, problem_cap not raised */
        c->set->details = d;
        c->problem_cap = cap;
    }
    const char *src = fanout_ddb_item_text(item, "sourceArn");
    const char *id = fanout_ddb_item_text(item, "id");
    const json_t *v;
    const char *t = s_attr_type(json_object_get(item, "active"), &v);
    int active = t && !strcmp(t, "BOOL") && json_is_boolean(v) ? json_is_true(v) : -1;
    return fanout_mapping_set_add_problem(c->set, msg, src, id, active);
}

/* Why a read failed, in err. */
static void s_read_failed(const struct s_ddb_store *st, const char *op,
                          const struct fanout_json_reply *r, char *err, size_t err_len)
{
    if (!strcmp(r->code, "InvalidResponse") || !strcmp(r->code, "OutOfMemory")) {
        snprintf(err, err_len, "table %s: DynamoDB %s: %s", st->table, op, r->message);
        return;
    }
    int missing = strcmp(r->code, "ResourceNotFoundException") == 0;
    char status[64] = "";
    if (r->status)
        snprintf(status, sizeof status, " (HTTP %ld, %u attempt%s)", r->status, r->attempts,
                 r->attempts == 1 ? "" : "s");
    snprintf(err, err_len, "table %s: DynamoDB %s failed: %s%s%s%s%s", st->table, op,
             r->code[0] ? r->code : "error", r->message[0] ? ": " : "", r->message, status,
             missing ? "; does the table exist in this account and region? (it is "
                       "FANOUT_TABLE, or <function name>Targets under Lambda)"
                     : "");
}

/* One item of a read: a valid mapping or a problem into the set. */
struct s_reader {
    struct s_collect c;
    const char *source;
    size_t index;
    char answer_wrong[768]; /* why the answer cannot be this read's, or "" */
};

static int s_read_item(void *ctx, const json_t *item)
{
    struct s_reader *rd = ctx;
    char msg[768], full[1024];
    const char *item_source = fanout_ddb_item_text(item, "sourceArn");
    if (rd->source && item_source && strcmp(item_source, rd->source) != 0) {
        /* an answer to another request (a proxy's, an emulator's): its
         * items are some other source's targets */
        char qs[FANOUT_QUOTE_SIZE], qi[FANOUT_QUOTE_SIZE];
        snprintf(rd->answer_wrong, sizeof rd->answer_wrong,
                 "the answer holds an item of sourceArn \"%s\" (id \"%s\"), not of the "
                 "sourceArn asked for: not an answer to this Query, so none of its items "
                 "is used",
                 fanout_quote(qs, item_source),
                 fanout_quote(qi, fanout_ddb_item_text(item, "id")));
        return -1;
    }
    struct fanout_mapping *m = fanout_mapping_from_item(item, rd->index++, msg, sizeof msg);
    if (m)
        return s_add_item(&rd->c, m);
    /* in a Scan, ids repeat across sources: name the source */
    if (!rd->source && item_source) {
        char q[FANOUT_QUOTE_SIZE];
        snprintf(full, sizeof full, "sourceArn %s: %s", fanout_quote(q, item_source), msg);
    } else
        snprintf(full, sizeof full, "%s", msg);
    return s_add_problem(&rd->c, full, item);
}

/* A (sourceArn, id) pair of a read, for s_key_twice. */
struct s_key {
    const char *source;
    const char *id;
};

static int s_key_cmp(const void *a, const void *b)
{
    const struct s_key *x = a, *y = b;
    int c = strcmp(x->source, y->source);
    return c ? c : strcmp(x->id, y->id);
}

/* A table holds one item per key: a key twice in one read is a page served
 * twice or an answer spliced from others, and would make two targets of
 * one item. Non-zero (why in `why`) when a key of `set`'s mappings or of
 * its problems (those whose key could be read) comes twice; -1 with `why`
 * empty: out of memory. */
static int s_key_twice(const struct fanout_mapping_set *set, char *why, size_t why_len)
{
    size_t n = 0, total = set->count + set->problem_count;
    if (total < 2)
        return 0;
    struct s_key *keys = malloc(total * sizeof *keys);
    if (!keys)
        return -1;
    for (size_t i = 0; i < set->count; i++)
        keys[n++] = (struct s_key){set->items[i]->source_arn, set->items[i]->id};
    for (size_t i = 0; i < set->problem_count; i++)
        if (set->details[i].source_arn && set->details[i].id)
            keys[n++] = (struct s_key){set->details[i].source_arn, set->details[i].id};
    qsort(keys, n, sizeof *keys, s_key_cmp);
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++) {
        if (s_key_cmp(&keys[i - 1], &keys[i]) == 0) {
            char qs[FANOUT_QUOTE_SIZE], qi[FANOUT_QUOTE_SIZE];
            snprintf(why, why_len,
                     "the answer holds the item of sourceArn \"%s\", id \"%s\" twice (a "
                     "table holds one item per key): a page served twice, so none of its "
                     "items is used",
                     fanout_quote(qs, keys[i].source), fanout_quote(qi, keys[i].id));
            rc = 1;
        }
    }
    free(keys);
    return rc;
}

/* Read every item of `source` (Query) or of the table (source NULL: Scan),
 * page after page: valid mappings and problems into `set`. */
static int s_read(struct s_ddb_store *st, const char *source,
                  struct fanout_mapping_set *set, char *err, size_t err_len)
{
    const char *op = source ? "Query" : "Scan";
    struct s_reader rd = {{set, 0, 0}, source, 0, ""};
    memset(set, 0, sizeof *set);
    json_t *body = source ? json_pack("{s:s, s:s, s:{s:{s:s}}}", "TableName", st->table,
                                      "KeyConditionExpression", "sourceArn = :s",
                                      "ExpressionAttributeValues", ":s", "S", source)
                          : json_pack("{s:s}", "TableName", st->table);
    struct fanout_json_reply r;
    int rc = body ? fanout_ddb_read_pages(st->region, op, body, st->page_limit, s_read_item,
                                          &rd, &r)
                  : -2;
    json_decref(body);
    if (rc == 0 && s_key_twice(set, rd.answer_wrong, sizeof rd.answer_wrong) != 0)
        rc = -2;
    if (rc == -1)
        s_read_failed(st, op, &r, err, err_len);
    else if (rc != 0 && rd.answer_wrong[0])
        snprintf(err, err_len, "table %s: DynamoDB %s: %s", st->table, op, rd.answer_wrong);
    else if (rc != 0)
        snprintf(err, err_len, "out of memory");
    if (rc != 0)
        fanout_mapping_set_clean_up(set);
    return rc ? -1 : 0;
}

static void s_entry_clean_up(struct s_entry *e)
{
    fanout_mapping_set_clean_up(&e->set);
    free(e->active);
    e->active = NULL;
    e->active_count = 0;
    free(e->bad);
    e->bad = NULL;
    e->bad_count = 0;
}

static struct s_entry *s_entry_get(struct s_ddb_store *st, const char *source)
{
    st->lookups++;
    for (size_t i = 0; i < st->entry_count; i++)
        if (strcmp(st->entries[i].source, source) == 0) {
            st->entries[i].used = st->lookups;
            return &st->entries[i];
        }
    char *copy = strdup(source);
    if (!copy)
        return NULL;
    struct s_entry *e;
    if (st->entry_count == S_ENTRIES_MAX) {
        /* the one least recently looked up makes room (what an earlier
         * lookup lent out is valid until this one only) */
        e = &st->entries[0];
        for (size_t i = 1; i < st->entry_count; i++)
            if (st->entries[i].used < e->used)
                e = &st->entries[i];
        s_entry_clean_up(e);
        free(e->source);
    } else {
        void *p = s_grow(st->entries, &st->entry_cap, st->entry_count, sizeof *st->entries);
        if (!p) {
            free(copy);
            return NULL;
        }
        st->entries = p;
        e = &st->entries[st->entry_count++];
    }
    memset(e, 0, sizeof *e);
    e->source = copy;
    e->used = st->lookups;
    return e;
}

/* Adopt a fresh read into the entry. */
static int s_entry_set(struct s_ddb_store *st, struct s_entry *e,
                       struct fanout_mapping_set *set)
{
    struct fanout_mapping **active = calloc(set->count ? set->count : 1, sizeof *active);
    size_t *bad = calloc(set->problem_count ? set->problem_count : 1, sizeof *bad);
    if (!active || !bad) {
        free(active);
        free(bad);
        return -1;
    }
    size_t n = 0, k = 0;
    for (size_t i = 0; i < set->count; i++)
        if (set->items[i]->active)
            active[n++] = set->items[i];
    /* a Query returns the items of this source only: an invalid one is
     * attributed with certainty, and fails it unless it is inactive */
    for (size_t i = 0; i < set->problem_count; i++)
        if (set->details[i].active != 0)
            bad[k++] = i;
    s_entry_clean_up(e);
    e->set = *set;
    e->active = active;
    e->active_count = n;
    e->bad = bad;
    e->bad_count = k;
    e->have = 1;
    e->read_ms = s_now_ms();
    e->next_ms = e->read_ms + st->refresh_ms;
    return 0;
}

static int s_ddb_lookup(struct fanout_store *s, const char *source_arn,
                        struct fanout_mapping *const **out, size_t *count,
                        const size_t **bad, size_t *bad_count,
                        const struct fanout_mapping_set **bad_set, char *err,
                        size_t err_len)
{
    struct s_ddb_store *st = (struct s_ddb_store *)s;
    struct s_entry *e = s_entry_get(st, source_arn);
    char qsrc[FANOUT_QUOTE_SIZE];
    const char *shown = fanout_quote(qsrc, source_arn); /* for messages */
    if (!e) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    int64_t now = s_now_ms();
    if (!e->have || now >= e->next_ms) {
        struct fanout_mapping_set set;
        char why[1024];
        int rc = s_read(st, source_arn, &set, why, sizeof why);
        if (rc == 0) {
            for (size_t i = 0; i < set.problem_count; i++)
                LOG_ERROR("mappings",
                          "table %s, sourceArn %s: %s; while it is invalid, the records "
                          "of this source are reported failed (the other targets still "
                          "get them)",
                          st->table, shown, set.problems[i]);
            for (size_t i = 0; i < set.count; i++)
                if (set.items[i]->ignored)
                    LOG_WARN("mappings", "table %s, sourceArn %s: %s", st->table, shown,
                             set.items[i]->ignored);
            if (s_entry_set(st, e, &set) != 0) {
                fanout_mapping_set_clean_up(&set);
                snprintf(why, sizeof why, "out of memory");
                rc = -1;
            } else {
                LOG_DEBUG("mappings", "table %s: %s: %zu mappings read, %zu active",
                          st->table, shown, e->set.count, e->active_count);
            }
        }
        if (rc != 0) {
            now = s_now_ms();
            int64_t age = now - e->read_ms;
            if (!e->have) {
                snprintf(err, err_len, "cannot read the mappings of %s: %s", shown, why);
                return -1;
            }
            if (age > st->stale_ms) {
                /* too old to trust: try again on every lookup from now on */
                e->next_ms = now;
                /* the cause last: the caller's buffer may cut it short */
                snprintf(
                    err, err_len,
                    "cannot read the mappings of %s, and the last good ones (read "
                    "%.1f s ago) are older than FANOUT_MAPPING_STALE_SECONDS (%.1f s), "
                    "so no longer used: %s",
                    shown, age / 1000.0, st->stale_ms / 1000.0, why);
                return -1;
            }
            /* try again after the refresh interval, but no later than the
             * moment the cached mappings go stale */
            e->next_ms = now + st->refresh_ms;
            if (e->next_ms > e->read_ms + st->stale_ms + 1)
                e->next_ms = e->read_ms + st->stale_ms + 1;
            LOG_WARN("mappings",
                     "cannot refresh the mappings of %s: %s; serving the %zu active "
                     "mappings read %.1f s ago, for at most %.1f s after that read "
                     "(FANOUT_MAPPING_STALE_SECONDS)",
                     shown, why, e->active_count, age / 1000.0, st->stale_ms / 1000.0);
        }
    }
    *out = e->active;
    *count = e->active_count;
    if (bad) {
        *bad = e->bad;
        *bad_count = e->bad_count;
        *bad_set = &e->set;
    }
    return 0;
}

static int s_ddb_all(struct fanout_store *s, const struct fanout_mapping_set **out,
                     char *err, size_t err_len)
{
    struct s_ddb_store *st = (struct s_ddb_store *)s;
    struct fanout_mapping_set set;
    if (s_read(st, NULL, &set, err, err_len) != 0)
        return -1;
    fanout_mapping_set_clean_up(&st->all);
    st->all = set;
    *out = &st->all;
    return 0;
}

static void s_ddb_destroy(struct fanout_store *s)
{
    struct s_ddb_store *st = (struct s_ddb_store *)s;
    for (size_t i = 0; i < st->entry_count; i++) {
        s_entry_clean_up(&st->entries[i]);
        free(st->entries[i].source);
    }
    free(st->entries);
    fanout_mapping_set_clean_up(&st->all);
    free(st->table);
    free(st->region);
    free(st);
}

static const struct fanout_store_ops s_ddb_ops = {
    .kind = "dynamodb",
    .lookup = s_ddb_lookup,
    .all = s_ddb_all,
    .destroy = s_ddb_destroy,
};

struct fanout_store *fanout_store_ddb_new(const char *table, const char *region, char *err,
                                          size_t err_len)
{
    if (!table || !fanout_ddb_table_ok(table)) {
        snprintf(err, err_len,
                 "mapping table \"%s\": a DynamoDB table name is 3 to 255 of "
                 "[A-Za-z0-9_.-] (or the table's ARN)",
                 table ? table : "");
        return NULL;
    }
    struct s_ddb_store *st = calloc(1, sizeof *st);
    if (!st || !(st->table = strdup(table)) || (region && !(st->region = strdup(region)))) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    st->base.ops = &s_ddb_ops;
    if (s_env_seconds("FANOUT_MAPPING_REFRESH_SECONDS", S_REFRESH_DEFAULT_MS,
                      &st->refresh_ms, err, err_len) != 0 ||
        s_env_seconds("FANOUT_MAPPING_STALE_SECONDS", S_STALE_DEFAULT_MS, &st->stale_ms,
                      err, err_len) != 0 ||
        fanout_ddb_page_limit(&st->page_limit, err, err_len) != 0)
        goto fail;
    /* Nothing is read yet: the first lookup of a source queries it, so a
     * cold start costs no DescribeTable (and needs no permission for it). */
    LOG_DEBUG("mappings", "DynamoDB table %s: refresh every %.1f s, stale after %.1f s",
              table, st->refresh_ms / 1000.0, st->stale_ms / 1000.0);
    return &st->base;
fail:
    if (st)
        s_ddb_destroy(&st->base);
    return NULL;
}
