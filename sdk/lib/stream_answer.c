/* The answer of a stream-like AWS batch call, read strictly
 * (fanout_stream_read, fanout/stream.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fanout/aws_codes.h"
#include "fanout/jplain.h"
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

/* Member `name` of an entry as a string span (p NULL: absent or null);
 * -1 when it is another type. */
static int s_member_str(const struct fanout_jplain_member *m, size_t count,
                        const char *name, struct s_span *out)
{
    out->p = NULL;
    out->n = 0;
    for (size_t i = 0; i < count; i++) {
        if (!fanout_jplain_is(m[i].name, m[i].name_len, name))
            continue;
        if (m[i].value.type == FANOUT_JPLAIN_STRING) {
            out->p = m[i].value.p;
            out->n = m[i].value.n;
        } else if (m[i].value.type != FANOUT_JPLAIN_NULL) {
            return -1;
        }
    }
    return 0;
}

/* One entry, checked as s_check_entries does; 0 when it checks out. */
static int s_fast_entry(const struct fanout_stream_kind *k,
                        const struct fanout_jplain_member *m, size_t count,
                        struct s_fast_entry *e, size_t *failed)
{
    struct s_span ok;
    if (s_member_str(m, count, "ErrorCode", &e->code) != 0 ||
        s_member_str(m, count, "ErrorMessage", &e->msg) != 0 ||
        s_member_str(m, count, k->answer.ok_field, &ok) != 0)
        return -1;
    int has_code = e->code.p && e->code.n, has_ok = ok.p && ok.n;
    /* an empty ErrorCode beside a good entry: the tree's reader's case */
    if (has_code == has_ok || (e->code.p && !e->code.n) || (has_code && e->code.n >= 128))
        return -1;
    if (has_ok && k->answer.ok_valid) {
        char v[160];
        if (ok.n >= sizeof v)
            return -1;
        memcpy(v, ok.p, ok.n);
        v[ok.n] = 0;
        if (!k->answer.ok_valid(v))
            return -1;
    }
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
    p = fanout_jplain_ws(p + 1, end);
    if (p < end && *p == ']')
        return sent == 0 ? p + 1 : NULL;
    for (size_t i = 0;; i++) {
        struct fanout_jplain_member m[8];
        size_t count;
        if (i == sent || !(p = fanout_jplain_object(p, end, m, 8, &count)) ||
            s_fast_entry(k, m, count, &es[i], failed) != 0)
            return NULL;
        int more = fanout_jplain_next(&p, end, ']');
        if (more < 0 || (!more && i + 1 != sent))
            return NULL;
        if (!more)
            return p;
    }
}

/* The answer read without a tree into es (sent entries, zeroed): 0 with
 * *failed set, or -1 when it is not of the common shape or not right. */
static int s_fast(const struct fanout_stream_kind *k, const char *body, size_t len,
                  size_t sent, struct s_fast_entry *es, size_t *failed)
{
    const char *end = body + len, *p = fanout_jplain_ws(body, end);
    struct fanout_jplain_member seen[8];
    size_t nseen = 0;
    long long count = -1;
    int have_answers = 0, more = 1;
    *failed = 0;
    if (p >= end || *p != '{')
        return -1;
    p++;
    while (more > 0) {
        struct fanout_jplain_member *x = &seen[nseen];
        if (nseen == 8 || !(p = fanout_jplain_name(p, end, &x->name, &x->name_len)) ||
            fanout_jplain_seen(seen, nseen, x->name, x->name_len))
            return -1;
        nseen++;
        if (fanout_jplain_is(x->name, x->name_len, k->answer.answers)) {
            p = s_fast_array(k, p, end, sent, es, failed);
            have_answers = 1;
        } else if ((p = fanout_jplain_value(p, end, &x->value)) &&
                   fanout_jplain_is(x->name, x->name_len, k->answer.failed_count)) {
            count = x->value.type == FANOUT_JPLAIN_INT ? x->value.num : -1;
        }
        if (!p || (more = fanout_jplain_next(&p, end, '}')) < 0)
            return -1;
    }
    if (fanout_jplain_ws(p, end) != end || !have_answers || count < 0 ||
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
