/* The answer of a stream-like AWS batch call, read strictly
 * (fanout_stream_read, fanout/stream.h). */
#include <stdio.h>
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
