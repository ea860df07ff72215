/*
 * PutRecordBatch on the wire (JSON 1.1): build the request, read the
 * answer.
 *
 * Request:  POST /, X-Amz-Target: Firehose_20150804.PutRecordBatch,
 *           Content-Type: application/x-amz-json-1.1,
 *           {"DeliveryStreamName":..., "Records":[{"Data":<base64>}, ...]}
 * Response: {"FailedPutCount":N, "Encrypted":..., "RequestResponses":[...]}
 *           in request order and of the request's length, each entry
 *           {"RecordId"} or {"ErrorCode","ErrorMessage"}; ErrorCode is
 *           ServiceUnavailableException (Firehose's "slow down": throttled)
 *           or InternalFailure (retry). Source: the PutRecordBatch API
 *           reference and botocore's firehose/2015-08-04/service-2.json.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fanout/aws_codes.h>

#include "firehose.h"

/* Base64 of `p` followed by `tail` (0 or 1 bytes), as one blob: the whole
 * 3-byte groups of `p`, then its last 0 to 2 bytes with the tail. */
static int s_put_b64(struct fanout_sbuf *b, const uint8_t *p, size_t n, const uint8_t *tail,
                     size_t tail_len)
{
    size_t whole = n - n % 3, k = 0;
    uint8_t last[4];
    for (size_t i = whole; i < n; i++)
        last[k++] = p[i];
    for (size_t j = 0; j < tail_len; j++)
        last[k++] = tail[j];
    return fanout_sbuf_base64(b, p, whole) | fanout_sbuf_base64(b, last, k);
}

/* ---- the call ---- */

static void s_log(const struct firehose_target *t, enum fanout_log_level level,
                  const char *fmt, ...) FANOUT_PRINTF(3, 4);
static void s_log(const struct firehose_target *t, enum fanout_log_level level,
                  const char *fmt, ...)
{
    if (!t->host || !t->host->log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    t->host->vlog(level, t->id, fmt, ap);
    va_end(ap);
}

static void s_mark_all(size_t n, struct fanout_outcome *out, int status, const char *code,
                       const char *fmt, ...) FANOUT_PRINTF(5, 6);
static void s_mark_all(size_t n, struct fanout_outcome *out, int status, const char *code,
                       const char *fmt, ...)
{
    char msg[sizeof out->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < n; i++)
        fanout_outcome_set(&out[i], status, code, "%s", msg);
}

/* ServiceUnavailableException is how Firehose says "slow down" (the
 * stream's throughput quota), per entry and per request. */
static int s_is_throttle(const char *code)
{
    return strcmp(code, "ServiceUnavailableException") == 0 ||
           fanout_aws_code_is_throttling(code);
}

static int s_entry_status(const char *code)
{
    if (s_is_throttle(code))
        return FANOUT_THROTTLED;
    if (strcmp(code, "InternalFailure") == 0 || strcmp(code, "ServiceUnavailable") == 0)
        return FANOUT_RETRY;
    return FANOUT_FATAL;
}

/* Read a 2xx answer. It counts only when it is the one the API documents:
 * HTTP 200, a JSON object whose "RequestResponses" has one entry per record
 * sent, each an object with either a RecordId or an ErrorCode (not both),
 * and a "FailedPutCount" that is the number of entries with an ErrorCode.
 * Anything else contradicts itself or answers another request: nothing in
 * it is believed and every record is retried (a duplicate is what
 * at-least-once allows; a record wrongly taken as accepted is a loss). */
static void s_read_answer(const struct firehose_target *t, size_t n, long status,
                          const uint8_t *body, size_t body_len, struct fanout_outcome *out)
{
    char what[160] = "";
    json_error_t jerr;
    json_t *root = NULL, *rs = NULL;
    size_t failed = 0, throttled = 0;
    if (status != 200) {
        snprintf(what, sizeof what, "HTTP %ld, not the 200 PutRecordBatch answers with",
                 status);
        goto doubt;
    }
    root = body && body_len
               ? json_loadb((const char *)body, body_len, JSON_REJECT_DUPLICATES, &jerr)
               : NULL;
    rs = json_object_get(root, "RequestResponses");
    if (!json_is_object(root)) {
        if (root)
            snprintf(what, sizeof what, "a JSON body that is not an object");
        else if (body_len)
            snprintf(what, sizeof what, "a body that is not JSON (%.60s)", jerr.text);
        else
            snprintf(what, sizeof what, "an empty body");
        goto doubt;
    }
    if (!json_is_array(rs) || json_array_size(rs) != n) {
        if (!json_is_array(rs))
            snprintf(what, sizeof what, "no \"RequestResponses\" array");
        else
            snprintf(what, sizeof what, "%zu entries in \"RequestResponses\"",
                     json_array_size(rs));
        goto doubt;
    }
    json_t *fc = json_object_get(root, "FailedPutCount");
    if (!json_is_integer(fc) || json_integer_value(fc) < 0) {
        snprintf(what, sizeof what, "%s \"FailedPutCount\"", fc ? "a non-count" : "no");
        goto doubt;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(rs, i);
        json_t *jc = json_object_get(r, "ErrorCode");
        json_t *ji = json_object_get(r, "RecordId");
        const char *code = json_string_value(jc);
        const char *id = json_string_value(ji);
        int has_code = code && *code, has_id = id && *id;
        if (!json_is_object(r) || has_code == has_id ||
            (jc && !json_is_null(jc) && !code) || (ji && !json_is_null(ji) && !id)) {
            snprintf(what, sizeof what, "entry %zu with %s", i,
                     !json_is_object(r)     ? "no object"
                     : has_code && has_id   ? "both RecordId and ErrorCode"
                     : !has_code && !has_id ? "neither RecordId nor ErrorCode"
                                            : "a RecordId or ErrorCode not a string");
            goto doubt;
        }
        if (has_code) {
            failed++;
            throttled += s_entry_status(code) == FANOUT_THROTTLED;
        }
    }
    if ((json_int_t)failed != json_integer_value(fc)) {
        snprintf(what, sizeof what,
                 "\"FailedPutCount\" %" JSON_INTEGER_FORMAT " but %zu failed entries",
                 json_integer_value(fc), failed);
        goto doubt;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(rs, i);
        const char *code = json_string_value(json_object_get(r, "ErrorCode"));
        if (!code)
            continue; /* accepted: the outcome stays FANOUT_OK */
        const char *msg = json_string_value(json_object_get(r, "ErrorMessage"));
        fanout_outcome_set(&out[i], s_entry_status(code), code, "%s",
                           msg && *msg ? msg : "(no message)");
    }
    if (failed)
        s_log(t, FANOUT_LOG_INFO,
              "PutRecordBatch to %s: %zu of %zu records failed (%zu throttled)", t->stream,
              failed, n, throttled);
    else
        s_log(t, FANOUT_LOG_DEBUG, "PutRecordBatch to %s: %zu records accepted", t->stream,
              n);
    json_decref(root);
    return;
doubt:
    s_log(t, FANOUT_LOG_WARN, "PutRecordBatch to %s: %zu records sent, answer has %s",
          t->stream, n, what);
    s_mark_all(n, out, FANOUT_RETRY, "ProtocolError",
               "PutRecordBatch answered with %s for %zu records sent; nothing is known "
               "accepted",
               what, n);
    json_decref(root);
}

void firehose_put_record_batch(const struct firehose_target *t,
                               const struct fanout_batch *batch, struct fanout_outcome *out)
{
    static const uint8_t newline[] = "\n";
    size_t n = batch->count, tail = t->append_newline ? 1 : 0;
    if (!n)
        return;
    struct fanout_sbuf b = {0};
    size_t need = 40 + strlen(t->stream);
    for (size_t i = 0; i < n; i++)
        need += 16 + (batch->messages[i]->body_len + tail + 2) / 3 * 4;
    int rc = fanout_sbuf_reserve(&b, need);
    rc |= fanout_sbuf_puts(&b, "{\"DeliveryStreamName\":\"");
    rc |= fanout_sbuf_puts(&b, t->stream); /* no character to escape */
    rc |= fanout_sbuf_puts(&b, "\",\"Records\":[");
    for (size_t i = 0; i < n; i++) {
        const struct fanout_message *m = batch->messages[i];
        rc |= fanout_sbuf_puts(&b, i ? ",{\"Data\":\"" : "{\"Data\":\"");
        rc |= s_put_b64(&b, m->body, m->body_len, newline, tail);
        rc |= fanout_sbuf_puts(&b, "\"}");
    }
    rc |= fanout_sbuf_puts(&b, "]}");
    if (rc != 0) {
        s_mark_all(n, out, FANOUT_RETRY, "OutOfMemory",
                   "out of memory building PutRecordBatch");
        fanout_sbuf_free(&b);
        return;
    }
    if (b.len > FIREHOSE_MAX_REQUEST_BYTES)
        s_log(t, FANOUT_LOG_WARN,
              "PutRecordBatch to %s: the request is %zu bytes, over the %u this plugin "
              "keeps to",
              t->stream, b.len, FIREHOSE_MAX_REQUEST_BYTES);

    static const struct fanout_aws_header headers[] = {
        {"Content-Type", "application/x-amz-json-1.1"},
        {"X-Amz-Target", "Firehose_20150804.PutRecordBatch"},
    };
    struct fanout_aws_request req = {
        .struct_size = sizeof req,
        .service = "firehose",
        .region = t->region,
        .role_arn = t->role,
        .external_id = t->external_id,
        .method = "POST",
        .path = "/",
        .headers = headers,
        .header_count = sizeof headers / sizeof *headers,
        .body = (const uint8_t *)b.p,
        .body_len = b.len,
        .protocol = FANOUT_AWS_JSON,
    };
    struct fanout_aws_response resp = {.struct_size = sizeof resp};
    const struct fanout_aws_request *reqs[] = {&req};
    struct fanout_aws_response *resps[] = {&resp};
    s_log(t, FANOUT_LOG_DEBUG, "PutRecordBatch to %s: %zu records, %zu bytes (attempt %u)",
          t->stream, n, b.len, batch->attempt);
    t->host->aws_call(reqs, resps, 1);
    switch (resp.result) {
    case FANOUT_AWS_OK:
        s_read_answer(t, n, resp.status, resp.body, resp.body_len, out);
        break;
    case FANOUT_AWS_THROTTLED:
        s_mark_all(n, out, FANOUT_THROTTLED, resp.error_code, "PutRecordBatch to %s: %s",
                   t->stream, resp.error_message);
        break;
    case FANOUT_AWS_RETRYABLE:
        /* the engine retries ServiceUnavailableException as a 5xx; it is
         * Firehose's throttling all the same */
        s_mark_all(n, out, s_is_throttle(resp.error_code) ? FANOUT_THROTTLED : FANOUT_RETRY,
                   resp.error_code, "PutRecordBatch to %s: %s", t->stream,
                   resp.error_message);
        break;
    default:
        s_mark_all(n, out, FANOUT_FATAL,
                   resp.error_code[0] ? resp.error_code : "RequestFailed",
                   "PutRecordBatch to %s: %s", t->stream,
                   resp.error_message[0] ? resp.error_message : "the request failed");
        break;
    }
    t->host->aws_response_clean_up(&resp);
    fanout_sbuf_free(&b);
}
