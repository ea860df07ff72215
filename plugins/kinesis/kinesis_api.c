/*
 * PutRecords on the wire (JSON 1.1): build the request, read the answer.
 *
 * Request:  POST /, X-Amz-Target: Kinesis_20131202.PutRecords,
 *           Content-Type: application/x-amz-json-1.1,
 *           {"StreamName"|"StreamARN":..., "Records":[{"Data":<base64>,
 *            "PartitionKey":..., "ExplicitHashKey"?:...}, ...]}
 * Response: {"FailedRecordCount":N, "Records":[...]} in request order and of
 *           the request's length, each entry {"SequenceNumber","ShardId"} or
 *           {"ErrorCode","ErrorMessage"}; ErrorCode is
 *           ProvisionedThroughputExceededException (throttled) or
 *           InternalFailure (retry). Source: the PutRecords API reference and
 *           botocore's kinesis/2013-12-02/service-2.json.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include <fanout/aws_codes.h>

#include "kinesis.h"

/* ---- partition keys ---- */

/* The length of `s` in UTF-16 code units, or -1 when it is not UTF-8. */
static long s_utf16_units(const uint8_t *s, size_t n)
{
    long units = 0;
    for (size_t i = 0; i < n;) {
        size_t k = fanout_utf8_seq(s + i, n - i);
        if (!k)
            return -1;
        units += k == 4 ? 2 : 1;
        i += k;
    }
    return units;
}

/* ExplicitHashKey: 0|[1-9][0-9]{0,38}, at most 2^128 - 1. */
static int s_hash_key_ok(const char *h)
{
    static const char max[] = "340282366920938463463374607431768211455";
    size_t n = strlen(h);
    if (n < 1 || n > 39 || strspn(h, "0123456789") != n || (n > 1 && h[0] == '0'))
        return 0;
    return n < 39 || strcmp(h, max) <= 0;
}

/* One message as it goes out, or why it does not. */
struct s_entry {
    const uint8_t *key;
    size_t key_len;
    char hashed[72]; /* "sha256:" + 64 hex digits */
    const char *explicit_hash;
};

/* Prepare message i's partition key; on refusal fill its outcome. */
static int s_prepare_key(const struct kinesis_target *t, const struct fanout_message *m,
                         struct s_entry *e, struct fanout_outcome *o)
{
    e->key = m->key;
    e->key_len = m->key_len;
    if (m->key_len == 0) {
        fanout_outcome_set(o, FANOUT_FATAL, "InvalidPartitionKey",
                           "the record has an empty partition key; Kinesis needs 1 to %u "
                           "characters",
                           KINESIS_MAX_KEY_UNITS);
        return -1;
    }
    long units = s_utf16_units(m->key, m->key_len);
    if (units >= 1 && (unsigned long)units <= KINESIS_MAX_KEY_UNITS)
        return 0;
    if (!t->hash_long_keys) {
        if (units < 0)
            fanout_outcome_set(o, FANOUT_FATAL, "InvalidPartitionKey",
                               "the partition key (%zu bytes) is not valid UTF-8 "
                               "(hashLongPartitionKeys is off)",
                               m->key_len);
        else
            fanout_outcome_set(o, FANOUT_FATAL, "InvalidPartitionKey",
                               "the partition key has %ld characters, more than the %u "
                               "Kinesis takes (hashLongPartitionKeys is off)",
                               units, KINESIS_MAX_KEY_UNITS);
        return -1;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(m->key, m->key_len, md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != 32) {
        fanout_outcome_set(o, FANOUT_RETRY, "HashFailed",
                           "could not hash the %zu-byte partition key", m->key_len);
        return -1;
    }
    static const char hex[] = "0123456789abcdef";
    memcpy(e->hashed, "sha256:", 7);
    for (unsigned i = 0; i < 32; i++) {
        e->hashed[7 + 2 * i] = hex[md[i] >> 4];
        e->hashed[8 + 2 * i] = hex[md[i] & 15];
    }
    e->hashed[71] = 0;
    e->key = (const uint8_t *)e->hashed;
    e->key_len = 71;
    return 0;
}

/* ---- the call ---- */

static void s_log(const struct kinesis_target *t, enum fanout_log_level level,
                  const char *fmt, ...) FANOUT_PRINTF(3, 4);
static void s_log(const struct kinesis_target *t, enum fanout_log_level level,
                  const char *fmt, ...)
{
    if (!t->host || !t->host->log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    t->host->vlog(level, t->id, fmt, ap);
    va_end(ap);
}

static void s_mark_all(const size_t *idx, size_t n, struct fanout_outcome *out, int status,
                       const char *code, const char *fmt, ...) FANOUT_PRINTF(6, 7);
static void s_mark_all(const size_t *idx, size_t n, struct fanout_outcome *out, int status,
                       const char *code, const char *fmt, ...)
{
    char msg[sizeof out->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < n; i++)
        fanout_outcome_set(&out[idx[i]], status, code, "%s", msg);
}

static int s_entry_status(const char *code)
{
    if (fanout_aws_code_is_throttling(code))
        return FANOUT_THROTTLED;
    if (strcmp(code, "InternalFailure") == 0 || strcmp(code, "ServiceUnavailable") == 0)
        return FANOUT_RETRY;
    return FANOUT_FATAL;
}

/* With parallel: false, a failed record resent after a later record of the
 * same key was written breaks that key's order: say so. */
static void s_warn_reordered(const struct kinesis_target *t, const struct s_entry *entries,
                             const size_t *idx, size_t sent,
                             const struct fanout_outcome *out)
{
    for (size_t a = 0; a < sent; a++) {
        const struct s_entry *ea = &entries[idx[a]];
        if (out[idx[a]].status != FANOUT_RETRY && out[idx[a]].status != FANOUT_THROTTLED)
            continue;
        for (size_t b = a + 1; b < sent; b++) {
            const struct s_entry *eb = &entries[idx[b]];
            if (out[idx[b]].status == FANOUT_OK && eb->key_len == ea->key_len &&
                memcmp(eb->key, ea->key, ea->key_len) == 0) {
                s_log(t, FANOUT_LOG_WARN,
                      "PutRecords to %s: a record of partition key \"%.*s\" failed (%s) "
                      "after a later record of that key was written; resending it "
                      "breaks the order of that key",
                      t->stream, (int)(ea->key_len > 100 ? 100 : ea->key_len),
                      (const char *)ea->key, out[idx[a]].code);
                break;
            }
        }
    }
}

/* Read a 2xx answer: one outcome per entry sent. The answer counts only
 * when it is the one the API documents: HTTP 200, a JSON object whose
 * "Records" has one entry per record sent, each an object with either a
 * SequenceNumber or an ErrorCode (not both), and a "FailedRecordCount" that
 * is the number of entries with an ErrorCode. Anything else contradicts
 * itself or answers another request: nothing in it is believed, and every
 * record sent is retried (a record written twice is what at-least-once
 * allows; a record taken as written when it was not is a loss). */
static void s_read_answer(const struct kinesis_target *t, const struct s_entry *entries,
                          const size_t *idx, size_t sent, long status, const uint8_t *body,
                          size_t body_len, struct fanout_outcome *out)
{
    char what[160] = "";
    json_error_t jerr;
    json_t *root = NULL, *recs = NULL;
    size_t failed = 0, throttled = 0;
    if (status != 200) {
        snprintf(what, sizeof what, "HTTP %ld, not the 200 PutRecords answers with",
                 status);
        goto doubt;
    }
    root = body && body_len
               ? json_loadb((const char *)body, body_len, JSON_REJECT_DUPLICATES, &jerr)
               : NULL;
    recs = json_object_get(root, "Records");
    if (!json_is_object(root)) {
        if (root)
            snprintf(what, sizeof what, "a JSON body that is not an object");
        else if (body_len)
            snprintf(what, sizeof what, "a body that is not JSON (%.60s)", jerr.text);
        else
            snprintf(what, sizeof what, "an empty body");
        goto doubt;
    }
    if (!json_is_array(recs) || json_array_size(recs) != sent) {
        if (!json_is_array(recs))
            snprintf(what, sizeof what, "no \"Records\" array");
        else
            snprintf(what, sizeof what, "%zu entries in \"Records\"",
                     json_array_size(recs));
        goto doubt;
    }
    json_t *fc = json_object_get(root, "FailedRecordCount");
    if (!json_is_integer(fc) || json_integer_value(fc) < 0) {
        snprintf(what, sizeof what, "%s \"FailedRecordCount\"", fc ? "a non-count" : "no");
        goto doubt;
    }
    for (size_t i = 0; i < sent; i++) {
        json_t *r = json_array_get(recs, i);
        json_t *jc = json_object_get(r, "ErrorCode");
        json_t *js = json_object_get(r, "SequenceNumber");
        const char *code = json_string_value(jc);
        const char *seq = json_string_value(js);
        int has_code = code && *code, has_seq = seq && *seq;
        if (!json_is_object(r) || has_code == has_seq ||
            (jc && !json_is_null(jc) && !code) || (js && !json_is_null(js) && !seq)) {
            snprintf(what, sizeof what, "entry %zu with %s", i,
                     !json_is_object(r)    ? "no object"
                     : has_code && has_seq ? "both SequenceNumber and ErrorCode"
                     : !has_code && !has_seq
                         ? "neither SequenceNumber nor ErrorCode"
                         : "a SequenceNumber or ErrorCode not a string");
            goto doubt;
        }
        /* SequenceNumber: 0|([1-9]\d{0,128}) (botocore's model) */
        size_t sl = has_seq ? strlen(seq) : 0;
        if (has_seq &&
            (sl > 129 || strspn(seq, "0123456789") != sl || (sl > 1 && seq[0] == '0'))) {
            snprintf(what, sizeof what, "entry %zu with a SequenceNumber that is not one",
                     i);
            goto doubt;
        }
        if (has_code) {
            failed++;
            throttled += s_entry_status(code) == FANOUT_THROTTLED;
        }
    }
    if ((json_int_t)failed != json_integer_value(fc)) {
        snprintf(what, sizeof what,
                 "\"FailedRecordCount\" %" JSON_INTEGER_FORMAT " but %zu failed entries",
                 json_integer_value(fc), failed);
        goto doubt;
    }
    for (size_t i = 0; i < sent; i++) {
        json_t *r = json_array_get(recs, i);
        const char *code = json_string_value(json_object_get(r, "ErrorCode"));
        if (!code)
            continue; /* written: the outcome stays FANOUT_OK */
        const char *msg = json_string_value(json_object_get(r, "ErrorMessage"));
        fanout_outcome_set(&out[idx[i]], s_entry_status(code), code, "%s",
                           msg && *msg ? msg : "(no message)");
    }
    if (failed)
        s_log(t, FANOUT_LOG_INFO,
              "PutRecords to %s: %zu of %zu records failed (%zu throttled)", t->stream,
              failed, sent, throttled);
    else
        s_log(t, FANOUT_LOG_DEBUG, "PutRecords to %s: %zu records written", t->stream,
              sent);
    if (failed && t->ordered)
        s_warn_reordered(t, entries, idx, sent, out);
    json_decref(root);
    return;
doubt:
    s_log(t, FANOUT_LOG_WARN, "PutRecords to %s: %zu records sent, answer has %s",
          t->stream, sent, what);
    s_mark_all(idx, sent, out, FANOUT_RETRY, "ProtocolError",
               "PutRecords answered with %s for %zu records sent; nothing is known "
               "written",
               what, sent);
    json_decref(root);
}

void kinesis_put_records(const struct kinesis_target *t, const struct fanout_batch *batch,
                         struct fanout_outcome *out)
{
    size_t n = batch->count;
    struct s_entry *entries = calloc(n ? n : 1, sizeof *entries);
    size_t *idx = calloc(n ? n : 1, sizeof *idx);
    struct fanout_sbuf b = {0};
    if (!entries || !idx) {
        for (size_t i = 0; i < n; i++)
            fanout_outcome_set(&out[i], FANOUT_RETRY, "OutOfMemory",
                               "out of memory building PutRecords");
        free(entries);
        free(idx);
        return;
    }

    /* Which messages go out, and the body's size. */
    size_t sent = 0, need = 64 + strlen(t->stream_arn ? t->stream_arn : t->stream);
    for (size_t i = 0; i < n; i++) {
        const struct fanout_message *m = batch->messages[i];
        struct s_entry *e = &entries[i];
        if (s_prepare_key(t, m, e, &out[i]) != 0)
            continue;
        const struct fanout_record *r = m->record_count == 1 ? m->records[0] : NULL;
        if (t->explicit_hashes && r && r->explicit_hash_key) {
            if (!s_hash_key_ok(r->explicit_hash_key)) {
                fanout_outcome_set(&out[i], FANOUT_FATAL, "InvalidExplicitHashKey",
                                   "the KPL explicit hash key \"%.60s\" is not a decimal "
                                   "from 0 to 2^128-1",
                                   r->explicit_hash_key);
                continue;
            }
            e->explicit_hash = r->explicit_hash_key;
        }
        idx[sent++] = i;
        need +=
            64 + (m->body_len + 2) / 3 * 4 + 6 * e->key_len + (e->explicit_hash ? 64 : 0);
    }
    if (!sent)
        goto done;

    int rc = fanout_sbuf_reserve(&b, need);
    rc |= fanout_sbuf_puts(&b, t->stream_arn ? "{\"StreamARN\":\"" : "{\"StreamName\":\"");
    /* no character to escape in a stream name or ARN */
    rc |= fanout_sbuf_puts(&b, t->stream_arn ? t->stream_arn : t->stream);
    rc |= fanout_sbuf_puts(&b, "\",\"Records\":[");
    for (size_t k = 0; k < sent; k++) {
        const struct fanout_message *m = batch->messages[idx[k]];
        const struct s_entry *e = &entries[idx[k]];
        rc |= fanout_sbuf_puts(&b, k ? ",{\"Data\":\"" : "{\"Data\":\"");
        rc |= fanout_sbuf_base64(&b, m->body, m->body_len);
        rc |= fanout_sbuf_puts(&b, "\",\"PartitionKey\":");
        /* the key is valid UTF-8 here (s_prepare_key), so nothing is replaced */
        rc |= fanout_sbuf_json_str(&b, e->key, e->key_len);
        if (e->explicit_hash)
            rc |= fanout_sbuf_printf(&b, ",\"ExplicitHashKey\":\"%s\"", e->explicit_hash);
        rc |= fanout_sbuf_puts(&b, "}");
    }
    rc |= fanout_sbuf_puts(&b, "]}");
    if (rc != 0) {
        s_mark_all(idx, sent, out, FANOUT_RETRY, "OutOfMemory",
                   "out of memory building PutRecords");
        goto done;
    }

    static const struct fanout_aws_header headers[] = {
        {"Content-Type", "application/x-amz-json-1.1"},
        {"X-Amz-Target", "Kinesis_20131202.PutRecords"},
    };
    struct fanout_aws_request req = {
        .struct_size = sizeof req,
        .service = "kinesis",
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
    s_log(t, FANOUT_LOG_DEBUG, "PutRecords to %s: %zu records, %zu bytes (attempt %u)",
          t->stream, sent, b.len, batch->attempt);
    t->host->aws_call(reqs, resps, 1);
    switch (resp.result) {
    case FANOUT_AWS_OK:
        s_read_answer(t, entries, idx, sent, resp.status, resp.body, resp.body_len, out);
        break;
    case FANOUT_AWS_THROTTLED:
        s_mark_all(idx, sent, out, FANOUT_THROTTLED, resp.error_code,
                   "PutRecords to %s: %s", t->stream, resp.error_message);
        break;
    case FANOUT_AWS_RETRYABLE:
        s_mark_all(idx, sent, out, FANOUT_RETRY, resp.error_code, "PutRecords to %s: %s",
                   t->stream, resp.error_message);
        break;
    default:
        s_mark_all(idx, sent, out, FANOUT_FATAL,
                   resp.error_code[0] ? resp.error_code : "RequestFailed",
                   "PutRecords to %s: %s", t->stream,
                   resp.error_message[0] ? resp.error_message : "the request failed");
        break;
    }
    t->host->aws_response_clean_up(&resp);
done:
    fanout_sbuf_free(&b);
    free(entries);
    free(idx);
}
