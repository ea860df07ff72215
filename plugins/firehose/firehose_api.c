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
#include <string.h>

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

/* ---- the call (fanout_batch_send) ---- */

/* ServiceUnavailableException is how Firehose says "slow down" (the
 * stream's throughput quota), per entry and per request. */
static const char *const s_throttle_codes[] = {"ServiceUnavailableException",
                                               "ThrottlingException", NULL};

/* The bytes of the body's envelope, at most (firehose.h): the rest of the
 * 4 MiB goes to the entries. */
#define S_ENVELOPE (23u + FIREHOSE_MAX_NAME_LEN + 13u + 2u)

/* Message `index` as a record; it counts its entry in the body:
 * ,{"Data":"<base64 of the data and the newline>"}. */
static int s_prepare(void *ctx, const struct fanout_message *m, size_t index, void *entry,
                     uint64_t *size, struct fanout_outcome *o)
{
    const struct firehose_target *t = ctx;
    (void)index;
    (void)o;
    *(const struct fanout_message **)entry = m;
    *size = 12 + (m->body_len + (t->append_newline ? 1 : 0) + 2) / 3 * 4;
    return 0;
}

static int s_build(void *ctx, struct fanout_batch_request *r)
{
    static const uint8_t newline[] = "\n";
    const struct firehose_target *t = ctx;
    size_t tail = t->append_newline ? 1 : 0;
    struct fanout_sbuf *b = &r->body;
    int rc = fanout_stream_build_begin(&t->s, r, r->bytes + 16);
    for (size_t i = 0; i < r->count; i++) {
        const struct fanout_message *m =
            *(const struct fanout_message *const *)r->entries[i];
        rc |= fanout_sbuf_puts(b, i ? ",{\"Data\":\"" : "{\"Data\":\"");
        rc |= s_put_b64(b, m->body, m->body_len, newline, tail);
        rc |= fanout_sbuf_puts(b, "\"}");
    }
    rc |= fanout_stream_build_end(r);
    if (rc == 0 && b->len > FIREHOSE_MAX_REQUEST_BYTES &&
        t->s.host->log_enabled(FANOUT_LOG_WARN))
        t->s.host->log(FANOUT_LOG_WARN, t->s.id,
                       "PutRecordBatch to %s: the request is %zu bytes, over the %u this "
                       "plugin keeps to",
                       t->s.name, b->len, FIREHOSE_MAX_REQUEST_BYTES);
    return rc;
}

static void s_read(void *ctx, const struct fanout_batch_request *r,
                   struct fanout_outcome *out)
{
    const struct firehose_target *t = ctx;
    fanout_stream_read(&t->s, r, out);
}

/* The engine retries ServiceUnavailableException as a 5xx; it is
 * Firehose's throttling all the same. */
static int s_failed_status(void *ctx, const struct fanout_aws_response *resp, int status)
{
    (void)ctx;
    return status == FANOUT_RETRY &&
                   fanout_stream_code_status(&firehose_kind, resp->error_code) ==
                       FANOUT_THROTTLED
               ? FANOUT_THROTTLED
               : status;
}

const struct fanout_stream_kind firehose_kind = {
    .plugin = "firehose",
    .dest = {"firehose", "deliverystream/", "Firehose stream", "Firehose stream ARN",
             FIREHOSE_MAX_NAME_LEN},
    /* the API names a stream by its name only */
    .request = {"PutRecordBatch", "Firehose_20150804.PutRecordBatch", "DeliveryStreamName",
                NULL, "Records"},
    .answer = {"FailedPutCount", "RequestResponses", "RecordId", NULL, "accepted",
               s_throttle_codes, NULL},
    .batch = {.entry_size = sizeof(const struct fanout_message *),
              .max_entries = FIREHOSE_MAX_RECORDS_PER_CALL,
              .max_request_bytes = FIREHOSE_MAX_REQUEST_BYTES - S_ENVELOPE,
              .prepare = s_prepare,
              .build = s_build,
              .read = s_read,
              .failed_status = s_failed_status},
};
