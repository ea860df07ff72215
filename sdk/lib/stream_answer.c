/* The answer of a stream-like AWS batch call, read strictly
 * (fanout_stream_read, fanout/stream.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fanout/aws_codes.h"
#include "fanout/stream.h"

static int s_in(const char *const *list, const char *code)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strcmp(list[i], code) == 0)
            return 1;
    return 0;
}

int fanout_stream_code_status(const struct fanout_stream_kind *kind, const char *code)
{
    if (fanout_aws_code_is_throttling(code) || s_in(kind->answer.throttle_codes, code))
        return FANOUT_THROTTLED;
    if (fanout_aws_code_is_transient(code) || s_in(kind->answer.retry_codes, code))
        return FANOUT_RETRY;
    return FANOUT_FATAL;
}

/* Check every entry of a 200 answer whose counts can be believed, counting
 * the failed and throttled ones. Returns 0, or -1 with what is wrong. */
static int s_check_entries(const struct fanout_stream_kind *k, json_t *rs, size_t sent,
                           size_t *failed, size_t *throttled, char *what, size_t what_len)
{
    const char *okf = k->answer.ok_field;
    for (size_t i = 0; i < sent; i++) {
        json_t *r = json_array_get(rs, i);
        json_t *jc = json_object_get(r, "ErrorCode");
        json_t *jo = json_object_get(r, okf);
        const char *code = json_string_value(jc);
        const char *ok = json_string_value(jo);
        int has_code = code && *code, has_ok = ok && *ok;
        if (!json_is_object(r) || has_code == has_ok ||
            (jc && !json_is_null(jc) && !code) || (jo && !json_is_null(jo) && !ok)) {
            if (!json_is_object(r))
                snprintf(what, what_len, "entry %zu with no object", i);
            else if (has_code && has_ok)
                snprintf(what, what_len, "entry %zu with both %s and ErrorCode", i, okf);
            else if (!has_code && !has_ok)
                snprintf(what, what_len, "entry %zu with neither %s nor ErrorCode", i, okf);
            else
                snprintf(what, what_len, "entry %zu with a %s or ErrorCode not a string", i,
                         okf);
            return -1;
        }
        if (has_ok && k->answer.ok_valid && !k->answer.ok_valid(ok)) {
            snprintf(what, what_len, "entry %zu with a %s that is not one", i, okf);
            return -1;
        }
        if (has_code) {
            (*failed)++;
            *throttled += fanout_stream_code_status(k, code) == FANOUT_THROTTLED;
        }
    }
    return 0;
}

/* ---- the common answer without a tree ----
 *
 * A 500-entry PutRecords answer as a jansson tree is 1,500 allocations and
 * 500 hash tables, read once. s_fast reads the answers of the usual shape
 * straight from the text: an object whose members are plain values and the
 * answers array, each entry an object of plain strings (or null), every
 * name distinct, every string printable ASCII without escapes (its value is
 * then its text), the count a small non-negative integer; the entries
 * check out (s_check_entries' rules) and the count agrees. For those its
 * result is the tree's. Anything else, including every answer in doubt,
 * goes to the jansson reader below, which says exactly what is wrong. */

struct s_span {
    const char *p;
    size_t n; /* p NULL: absent or null */
};

struct s_fast_entry {
    struct s_span code, msg;
};

static const char *s_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A string of printable ASCII without escapes at p (the opening quote):
 * its span, and the position after it, or NULL. */
static const char *s_plain_str(const char *p, const char *end, struct s_span *out)
{
    if (p >= end || *p != '"')
        return NULL;
    const char *q = ++p;
    while (q < end && *q != '"') {
        unsigned char c = (unsigned char)*q;
        if (c < 0x20 || c > 0x7e || c == '\\')
            return NULL;
        q++;
    }
    if (q >= end)
        return NULL;
    out->p = p;
    out->n = (size_t)(q - p);
    return q + 1;
}

static int s_span_is(const struct s_span *a, const char *s)
{
    return a->p && a->n == strlen(s) && memcmp(a->p, s, a->n) == 0;
}

static int s_lit(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

/* A plain value (plain string, null, true, false, or 0|[1-9][0-9]{0,17}):
 * the position after it, or NULL. *num is the integer, or -1. */
static const char *s_plain_value(const char *p, const char *end, struct s_span *str,
                                 long long *num)
{
    *num = -1;
    str->p = NULL;
    str->n = 0;
    if (p < end && *p == '"')
        return s_plain_str(p, end, str);
    if (s_lit(p, end, "null"))
        return p + 4;
    if (s_lit(p, end, "true"))
        return p + 4;
    if (s_lit(p, end, "false"))
        return p + 5;
    if (p < end && *p >= '0' && *p <= '9') {
        const char *q = p;
        long long v = 0;
        while (q < end && *q >= '0' && *q <= '9' && q - p < 18)
            v = v * 10 + (*q++ - '0');
        if ((q < end &&
             (*q == '.' || *q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9'))) ||
            (*p == '0' && q - p > 1))
            return NULL;
        *num = v;
        return q;
    }
    return NULL;
}

/* Member names seen in one object, to refuse duplicates. */
#define S_FAST_MAX_MEMBERS 8

static int s_name_new(struct s_span *seen, size_t *nseen, const struct s_span *name)
{
    for (size_t i = 0; i < *nseen; i++)
        if (seen[i].n == name->n && memcmp(seen[i].p, name->p, name->n) == 0)
            return 0;
    if (*nseen == S_FAST_MAX_MEMBERS)
        return 0;
    seen[(*nseen)++] = *name;
    return 1;
}

/* One entry {"name":"plain"|null, ...} at p: the position after it, or NULL.
 * Fills e and the ok field's span. */
static const char *s_fast_entry(const char *p, const char *end, const char *okf,
                                struct s_fast_entry *e, struct s_span *ok)
{
    struct s_span seen[S_FAST_MAX_MEMBERS];
    size_t nseen = 0;
    if (p >= end || *p != '{')
        return NULL;
    p = s_ws(p + 1, end);
    if (p < end && *p == '}')
        return p + 1;
    for (;;) {
        struct s_span name, val = {NULL, 0};
        p = s_plain_str(p, end, &name);
        if (!p || !s_name_new(seen, &nseen, &name))
            return NULL;
        p = s_ws(p, end);
        if (p >= end || *p != ':')
            return NULL;
        p = s_ws(p + 1, end);
        if (s_lit(p, end, "null"))
            p += 4;
        else if (!(p = s_plain_str(p, end, &val)))
            return NULL;
        if (s_span_is(&name, "ErrorCode"))
            e->code = val;
        else if (s_span_is(&name, "ErrorMessage"))
            e->msg = val;
        else if (s_span_is(&name, okf))
            *ok = val;
        p = s_ws(p, end);
        if (p < end && *p == ',') {
            p = s_ws(p + 1, end);
            continue;
        }
        return p < end && *p == '}' ? p + 1 : NULL;
    }
}

/* Check an entry as s_check_entries does (values here are strings or
 * absent); 0 when it checks out. */
static int s_fast_check(const struct fanout_stream_kind *k, const struct s_fast_entry *e,
                        const struct s_span *ok, size_t *failed)
{
    int has_code = e->code.p && e->code.n, has_ok = ok->p && ok->n;
    /* an empty ErrorCode beside a good entry: the tree's reader's case */
    if (has_code == has_ok || (e->code.p && !e->code.n))
        return -1;
    if (has_ok && k->answer.ok_valid) {
        char v[160];
        if (ok->n >= sizeof v)
            return -1;
        memcpy(v, ok->p, ok->n);
        v[ok->n] = 0;
        if (!k->answer.ok_valid(v))
            return -1;
    }
    if (has_code && e->code.n >= 128)
        return -1;
    *failed += has_code;
    return 0;
}

/* The answers array at p, exactly `sent` entries: the position after it,
 * or NULL. */
static const char *s_fast_array(const struct fanout_stream_kind *k, const char *p,
                                const char *end, size_t sent, struct s_fast_entry *es,
                                size_t *failed)
{
    if (p >= end || *p != '[')
        return NULL;
    p = s_ws(p + 1, end);
    size_t i = 0;
    if (p < end && *p == ']')
        return sent == 0 ? p + 1 : NULL;
    for (;; i++) {
        struct s_span ok = {NULL, 0};
        if (i == sent)
            return NULL;
        p = s_fast_entry(p, end, k->answer.ok_field, &es[i], &ok);
        if (!p || s_fast_check(k, &es[i], &ok, failed) != 0)
            return NULL;
        p = s_ws(p, end);
        if (p < end && *p == ',') {
            p = s_ws(p + 1, end);
            continue;
        }
        return p < end && *p == ']' && i + 1 == sent ? p + 1 : NULL;
    }
}

/* The answer read without a tree into es (sent entries, zeroed): 0 with
 * *failed set, or -1 when it is not of the common shape or not right. */
static int s_fast(const struct fanout_stream_kind *k, const char *body, size_t len,
                  size_t sent, struct s_fast_entry *es, size_t *failed)
{
    const char *end = body + len, *p = s_ws(body, end);
    struct s_span seen[S_FAST_MAX_MEMBERS];
    size_t nseen = 0;
    long long count = -1;
    int have_answers = 0;
    *failed = 0;
    if (p >= end || *p != '{')
        return -1;
    p = s_ws(p + 1, end);
    if (p < end && *p == '}')
        return -1;
    for (;;) {
        struct s_span name, str;
        long long num;
        p = s_plain_str(p, end, &name);
        if (!p || !s_name_new(seen, &nseen, &name))
            return -1;
        p = s_ws(p, end);
        if (p >= end || *p != ':')
            return -1;
        p = s_ws(p + 1, end);
        if (s_span_is(&name, k->answer.answers)) {
            p = s_fast_array(k, p, end, sent, es, failed);
            have_answers = 1;
        } else {
            p = s_plain_value(p, end, &str, &num);
            if (s_span_is(&name, k->answer.failed_count))
                count = num;
        }
        if (!p)
            return -1;
        p = s_ws(p, end);
        if (p < end && *p == ',') {
            p = s_ws(p + 1, end);
            continue;
        }
        if (p >= end || *p != '}')
            return -1;
        break;
    }
    if (s_ws(p + 1, end) != end || !have_answers || count < 0 ||
        (unsigned long long)count != *failed)
        return -1;
    return 0;
}

/* The outcomes and the log line of an answer s_fast read. */
static int s_fast_outcomes(const struct fanout_stream *s,
                           const struct fanout_batch_request *r,
                           const struct s_fast_entry *es, size_t failed,
                           struct fanout_outcome *out)
{
    const struct fanout_stream_kind *kind = s->kind;
    const struct fanout_host *h = s->host;
    size_t sent = r->count, throttled = 0;
    for (size_t i = 0; failed && i < sent; i++) {
        if (!es[i].code.p)
            continue; /* delivered: the outcome stays FANOUT_OK */
        char code[128];
        memcpy(code, es[i].code.p, es[i].code.n);
        code[es[i].code.n] = 0;
        int st = fanout_stream_code_status(kind, code);
        throttled += st == FANOUT_THROTTLED;
        if (es[i].msg.p && es[i].msg.n)
            fanout_outcome_set(&out[r->indexes[i]], st, code, "%.*s", (int)es[i].msg.n,
                               es[i].msg.p);
        else
            fanout_outcome_set(&out[r->indexes[i]], st, code, "%s", "(no message)");
    }
    if (failed && h->log_enabled(FANOUT_LOG_INFO))
        h->log(FANOUT_LOG_INFO, s->id,
               "%s to %s: %zu of %zu records failed (%zu throttled)",
               kind->request.operation, s->name, failed, sent, throttled);
    else if (!failed && h->log_enabled(FANOUT_LOG_DEBUG))
        h->log(FANOUT_LOG_DEBUG, s->id, "%s to %s: %zu records %s", kind->request.operation,
               s->name, sent, kind->answer.done);
    return (int)failed;
}

int fanout_stream_read(const struct fanout_stream *s, const struct fanout_batch_request *r,
                       struct fanout_outcome *out)
{
    const struct fanout_stream_kind *kind = s->kind;
    const struct fanout_host *h = s->host;
    const struct fanout_aws_response *resp = &r->resp;
    const char *op = kind->request.operation;
    size_t sent = r->count, failed = 0, throttled = 0;
    char what[160] = "";
    json_error_t jerr;
    json_t *root = NULL;
    if (resp->status != 200) {
        snprintf(what, sizeof what, "HTTP %ld, not the 200 %s answers with", resp->status,
                 op);
        goto doubt;
    }
    if (resp->body && resp->body_len && sent) {
        struct s_fast_entry *es = calloc(sent, sizeof *es);
        if (es && s_fast(kind, (const char *)resp->body, resp->body_len, sent, es,
                         &failed) == 0) {
            int n = s_fast_outcomes(s, r, es, failed, out);
            free(es);
            return n;
        }
        free(es);
        failed = 0;
    }
    if (resp->body && resp->body_len)
        root = json_loadb((const char *)resp->body, resp->body_len, JSON_REJECT_DUPLICATES,
                          &jerr);
    json_t *rs = json_object_get(root, kind->answer.answers);
    json_t *fc = json_object_get(root, kind->answer.failed_count);
    if (!json_is_object(root)) {
        if (root)
            snprintf(what, sizeof what, "a JSON body that is not an object");
        else if (resp->body_len)
            snprintf(what, sizeof what, "a body that is not JSON (%.60s)", jerr.text);
        else
            snprintf(what, sizeof what, "an empty body");
        goto doubt;
    }
    if (!json_is_array(rs)) {
        snprintf(what, sizeof what, "no \"%s\" array", kind->answer.answers);
        goto doubt;
    }
    if (json_array_size(rs) != sent) {
        snprintf(what, sizeof what, "%zu entries in \"%s\"", json_array_size(rs),
                 kind->answer.answers);
        goto doubt;
    }
    if (!json_is_integer(fc) || json_integer_value(fc) < 0) {
        snprintf(what, sizeof what, "%s \"%s\"", fc ? "a non-count" : "no",
                 kind->answer.failed_count);
        goto doubt;
    }
    if (s_check_entries(kind, rs, sent, &failed, &throttled, what, sizeof what) != 0)
        goto doubt;
    if ((json_int_t)failed != json_integer_value(fc)) {
        snprintf(what, sizeof what,
                 "\"%s\" %" JSON_INTEGER_FORMAT " but %zu failed entries",
                 kind->answer.failed_count, json_integer_value(fc), failed);
        goto doubt;
    }
    for (size_t i = 0; i < sent; i++) {
        json_t *e = json_array_get(rs, i);
        const char *code = json_string_value(json_object_get(e, "ErrorCode"));
        if (!code)
            continue; /* delivered: the outcome stays FANOUT_OK */
        const char *msg = json_string_value(json_object_get(e, "ErrorMessage"));
        fanout_outcome_set(&out[r->indexes[i]], fanout_stream_code_status(kind, code), code,
                           "%s", msg && *msg ? msg : "(no message)");
    }
    if (failed && h->log_enabled(FANOUT_LOG_INFO))
        h->log(FANOUT_LOG_INFO, s->id,
               "%s to %s: %zu of %zu records failed (%zu throttled)", op, s->name, failed,
               sent, throttled);
    else if (!failed && h->log_enabled(FANOUT_LOG_DEBUG))
        h->log(FANOUT_LOG_DEBUG, s->id, "%s to %s: %zu records %s", op, s->name, sent,
               kind->answer.done);
    json_decref(root);
    return (int)failed;
doubt:
    if (h->log_enabled(FANOUT_LOG_WARN))
        h->log(FANOUT_LOG_WARN, s->id, "%s to %s: %zu records sent, answer has %s", op,
               s->name, sent, what);
    for (size_t i = 0; i < sent; i++)
        fanout_outcome_set(&out[r->indexes[i]], FANOUT_RETRY, "ProtocolError",
                           "%s answered with %s for %zu records sent; nothing is known %s",
                           op, what, sent, kind->answer.done);
    json_decref(root);
    return -1;
}
