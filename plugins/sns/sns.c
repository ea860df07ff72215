/*
 * The `sns` destination: messages to an Amazon SNS topic.
 *
 * Destination: a topic ARN arn:<partition>:sns:<region>:<account>:<topic>.
 * The request is signed for the topic's region (a topic in another region
 * than the function's is a cross-region target with nothing more to set);
 * a mapping `region` may repeat it but not contradict it (refused). The
 * endpoint is the region's SNS endpoint unless AWS_ENDPOINT_URL_SNS (or
 * AWS_ENDPOINT_URL...) says otherwise.
 *
 * Protocol: Query (sns_api.c). One message goes with Publish, several with
 * PublishBatch (up to 10 entries, 256 KB in all; entry Ids are the
 * messages' indexes in the engine's batch).
 *
 * Limits: 262,144 bytes per message and per PublishBatch. The option
 * maxMessageBytes (up to 1,048,576) raises both, for a topic whose
 * MaximumMessageSize attribute was raised: that attribute is newer than
 * the API models we checked (UNCONFIRMED), so it is the user's to claim.
 *
 * Bodies: SNS takes UTF-8 text. A message that is not valid UTF-8 (binary
 * data with collapse none or concat) is refused, naming the first bad
 * byte and suggesting collapse concat-b64; with the option binaryBase64
 * it is sent as its base64 instead, with the message attribute
 * fanout-encoding = base64 (the base64 and the attribute count against
 * the size limit). JSON and concat-b64 collapse always give text. An empty
 * message is refused (SNS answers InvalidParameter: Empty message).
 *
 * FIFO topics (name ends in .fifo): MessageGroupId is the message's key (a
 * key SNS would refuse as a group id, longer than 128 characters or with
 * spaces or non-ASCII, is replaced by its hex SHA-256), and
 * MessageDeduplicationId the hex SHA-256 of the mapping id, the source ARN,
 * and the first and last records' sequence and sub-sequence numbers with
 * the record count: the same message resent after a retry, or in a batch
 * Lambda delivers again, is dropped as a duplicate within SNS's 5-minute
 * deduplication window. For order across calls set `parallel: false`.
 *
 * Outcomes: a Failed entry with SenderFault true is permanent, other
 * failures are retried (throttling codes as throttled); a whole request
 * the engine gave up on is reported with the service's code.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sns.h"

struct sns_options {
    int binary_base64;
    int64_t max_message_bytes;
};

struct sns_instance {
    const struct fanout_host *host;
    const char *target_id; /* the target outlives the instance */
    const char *topic_arn;
    const char *role;
    const char *external_id;
    char region[64];
    int fifo;
    int binary_base64;
    uint64_t max_message_bytes; /* per message and per PublishBatch */
};

#define S_FORM "a topic ARN (arn:aws:sns:<region>:<account>:<topic>)"

/* ---- destination ---- */

static int s_region_like(const char *s, size_t n)
{
    if (n < 4 || n > 40 || !islower((unsigned char)s[0]) ||
        !isdigit((unsigned char)s[n - 1]))
        return 0;
    int dash = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '-')
            dash = 1;
        else if (!islower(c) && !isdigit(c))
            return 0;
    }
    return dash;
}

/* Splits and checks the ARN; region[64] gets its region. */
static int s_parse(const struct fanout_target *t, char *region, int *fifo, char *err,
                   size_t err_len)
{
    const char *d = t->destination;
    if (!d || !*d) {
        snprintf(err, err_len, "expected %s", S_FORM);
        return -1;
    }
    if (strncmp(d, "http://", 7) == 0 || strncmp(d, "https://", 8) == 0) {
        snprintf(err, err_len, "\"%.80s\" is a URL%s; an SNS destination is %s", d,
                 strstr(d, "sqs") || strstr(d, "queue")
                     ? " (an SQS queue? queues take type "
                       "\"sqs\")"
                     : "",
                 S_FORM);
        return -1;
    }
    const char *f[6];
    size_t fl[6], n = 0;
    const char *p = d;
    while (n < 6) {
        const char *c = n < 5 ? strchr(p, ':') : NULL;
        size_t l = c ? (size_t)(c - p) : strlen(p);
        f[n] = p;
        fl[n++] = l;
        if (!c)
            break;
        p = c + 1;
    }
    if (n == 6 && fl[0] == 3 && memcmp(f[0], "arn", 3) == 0 && fl[2] == 3 &&
        memcmp(f[2], "sqs", 3) == 0) {
        snprintf(err, err_len,
                 "\"%.80s\" is an SQS queue ARN, not an SNS topic (queues take type "
                 "\"sqs\"); expected %s",
                 d, S_FORM);
        return -1;
    }
    if (n != 6 || fl[0] != 3 || memcmp(f[0], "arn", 3) != 0 || fl[1] < 3 ||
        memcmp(f[1], "aws", 3) != 0 || fl[2] != 3 || memcmp(f[2], "sns", 3) != 0) {
        snprintf(err, err_len, "\"%.80s\" is not an SNS topic ARN; expected %s", d, S_FORM);
        return -1;
    }
    if (!s_region_like(f[3], fl[3])) {
        snprintf(err, err_len, "topic ARN \"%.80s\": \"%.*s\" is not a region", d,
                 (int)(fl[3] > 40 ? 40 : fl[3]), f[3]);
        return -1;
    }
    int digits = fl[4] == 12;
    for (size_t i = 0; digits && i < fl[4]; i++)
        digits = isdigit((unsigned char)f[4][i]);
    if (!digits) {
        snprintf(err, err_len, "topic ARN \"%.80s\": the account must be 12 digits", d);
        return -1;
    }
    *fifo = fl[5] > 5 && memcmp(f[5] + fl[5] - 5, ".fifo", 5) == 0;
    size_t base = *fifo ? fl[5] - 5 : fl[5];
    int ok = base > 0 && fl[5] <= SNS_MAX_TOPIC_NAME;
    for (size_t i = 0; ok && i < base; i++) {
        unsigned char c = (unsigned char)f[5][i];
        ok = isalnum(c) || c == '_' || c == '-';
    }
    if (!ok) {
        snprintf(err, err_len,
                 "topic ARN \"%.80s\": the topic name must be 1-256 characters of A-Z a-z "
                 "0-9 _ - (\".fifo\" included)",
                 d);
        return -1;
    }
    snprintf(region, 64, "%.*s", (int)fl[3], f[3]);
    if (t->region && *t->region && strcmp(t->region, region) != 0) {
        snprintf(
            err, err_len,
            "region \"%.40s\" conflicts with the topic's region \"%s\" (from its ARN): "
            "drop \"region\" or fix the destination",
            t->region, region);
        return -1;
    }
    return 0;
}

/* ---- lifecycle ---- */

static int s_init(const struct fanout_host *host, void **state, struct fanout_error *err)
{
    if (!FANOUT_HOST_HAS(host, aws_call)) {
        snprintf(err->code, sizeof err->code, "EngineTooOld");
        snprintf(err->message, sizeof err->message,
                 "the sns plugin needs an engine with AWS calls (plugin ABI 1.1)");
        return -1;
    }
    *state = (void *)host;
    return 0;
}

static int s_validate(const struct fanout_target *t, char *err, size_t err_len)
{
    char region[64];
    int fifo;
    return s_parse(t, region, &fifo, err, err_len);
}

static uint64_t s_max_bytes(const struct fanout_target *t)
{
    const struct sns_options *o = t->options;
    return o && o->max_message_bytes > 0 ? (uint64_t)o->max_message_bytes
                                         : SNS_MAX_MESSAGE_BYTES;
}

static int s_limits(void *state, const struct fanout_target *t, struct fanout_limits *lim,
                    char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    lim->max_message_bytes = s_max_bytes(t);
    lim->max_call_bytes = s_max_bytes(t);
    return 0;
}

static int s_open(void *state, const struct fanout_target *t, void **out,
                  struct fanout_error *err)
{
    const struct sns_options *o = t->options;
    char region[64], why[256];
    int fifo = 0;
    if (s_parse(t, region, &fifo, why, sizeof why) != 0) {
        snprintf(err->code, sizeof err->code, "InvalidDestination");
        snprintf(err->message, sizeof err->message, "%s", why);
        return -1;
    }
    struct sns_instance *in = calloc(1, sizeof *in);
    if (!in) {
        snprintf(err->message, sizeof err->message, "out of memory");
        return -1;
    }
    in->host = state;
    in->target_id = t->id;
    in->topic_arn = t->destination;
    in->role = t->role && *t->role ? t->role : NULL;
    in->external_id = t->external_id && *t->external_id ? t->external_id : NULL;
    snprintf(in->region, sizeof in->region, "%s", region);
    in->fifo = fifo;
    in->binary_base64 = o && o->binary_base64;
    in->max_message_bytes = s_max_bytes(t);
    *out = in;
    return 0;
}

static void s_close(void *instance)
{
    free(instance);
}

/* ---- send ---- */

/* Make message i's entry; on a refusal fill its outcome and return -1. */
static int s_prepare(const struct sns_instance *in, const struct fanout_message *m,
                     size_t i, struct sns_entry *e, struct fanout_outcome *out)
{
    e->index = i;
    e->body = m->body;
    e->body_len = m->body_len;
    if (m->body_len == 0) {
        fanout_outcome_set(out, FANOUT_FATAL, "InvalidParameter",
                           "empty message: SNS refuses an empty Message");
        return -1;
    }
    size_t bad = sns_utf8_check(m->body, m->body_len);
    if (bad < m->body_len) {
        if (!in->binary_base64) {
            fanout_outcome_set(
                out, FANOUT_FATAL, "InvalidParameter",
                "message of %zu bytes is not UTF-8 text (byte 0x%02X at "
                "offset %zu); for binary data use collapse \"concat-b64\" (or "
                "\"JSON\"), or set \"binaryBase64\": true",
                m->body_len, m->body[bad], bad);
            return -1;
        }
        struct fanout_sbuf b = {0};
        if (fanout_sbuf_base64(&b, m->body, m->body_len) != 0) {
            fanout_sbuf_free(&b);
            fanout_outcome_set(out, FANOUT_RETRY, "OutOfMemory", "out of memory");
            return -1;
        }
        e->encoded = (uint8_t *)b.p;
        e->body = e->encoded;
        e->body_len = b.len;
    }
    e->size = e->body_len + (e->encoded ? SNS_B64_ATTR_BYTES : 0);
    if (e->size > in->max_message_bytes) {
        fanout_outcome_set(
            out, FANOUT_FATAL, "MessageTooLong",
            "message of %zu bytes is %zu bytes%s, larger than the limit of "
            "%llu bytes per message",
            m->body_len, e->size,
            e->encoded ? " as base64 with its \"" SNS_B64_ATTR_NAME "\" attribute" : "",
            (unsigned long long)in->max_message_bytes);
        return -1;
    }
    if (in->fifo && (sns_group_id(m->key, m->key_len, e->group_id) != 0 ||
                     sns_dedup_id(in->target_id, m, e->dedup_id) != 0)) {
        fanout_outcome_set(out, FANOUT_RETRY, "DigestUnavailable",
                           "could not compute the FIFO group and deduplication ids "
                           "(SHA-256 unavailable)");
        return -1;
    }
    e->fifo = in->fifo;
    return 0;
}

struct s_request {
    struct sns_entry **entries;
    size_t count;
    struct fanout_sbuf body;
    struct fanout_aws_header headers[1];
    struct fanout_aws_request req;
    struct fanout_aws_response resp;
};

static int s_build(const struct sns_instance *in, struct s_request *r)
{
    int batch = r->count > 1;
    if (sns_request_body(&r->body, in->topic_arn, r->entries, r->count, batch) != 0)
        return -1;
    r->headers[0] = (struct fanout_aws_header){
        "Content-Type", "application/x-www-form-urlencoded; charset=utf-8"};
    r->req = (struct fanout_aws_request){
        .struct_size = sizeof r->req,
        .service = "sns",
        .region = in->region,
        .role_arn = in->role,
        .external_id = in->external_id,
        .method = "POST",
        .path = "/",
        .headers = r->headers,
        .header_count = 1,
        .body = (const uint8_t *)r->body.p,
        .body_len = r->body.len,
        .protocol = FANOUT_AWS_QUERY,
    };
    r->resp.struct_size = sizeof r->resp;
    return 0;
}

static void s_log_request(const struct sns_instance *in, const struct s_request *r,
                          unsigned attempt)
{
    if (!in->host->log_enabled(FANOUT_LOG_DEBUG))
        return;
    size_t bytes = 0;
    for (size_t i = 0; i < r->count; i++)
        bytes += r->entries[i]->size;
    in->host->log(FANOUT_LOG_DEBUG, in->target_id,
                  "%s: %zu message%s, %zu bytes, to %s (attempt %u)",
                  r->count > 1 ? "PublishBatch" : "Publish", r->count,
                  r->count == 1 ? "" : "s", bytes, in->topic_arn, attempt);
}

static void s_mark(struct s_request *reqs, size_t from, size_t to, struct fanout_outcome *o,
                   int status, const char *code, const char *msg)
{
    for (size_t j = from; j < to; j++)
        for (size_t e = 0; e < reqs[j].count; e++)
            fanout_outcome_set(&o[reqs[j].entries[e]->index], status, code, "%s", msg);
}

/* Entries that did not go, at debug level: the engine logs the final
 * outcome only, and a retried entry's first reason helps. */
static void s_log_failures(const struct sns_instance *in, const struct s_request *r,
                           const struct fanout_outcome *out, unsigned attempt)
{
    if (!in->host->log_enabled(FANOUT_LOG_DEBUG))
        return;
    static const char *const names[] = {"ok", "retry", "throttled", "fatal"};
    for (size_t i = 0; i < r->count; i++) {
        const struct fanout_outcome *o = &out[r->entries[i]->index];
        if (o->status == FANOUT_OK)
            continue;
        in->host->log(FANOUT_LOG_DEBUG, in->target_id,
                      "message %zu (attempt %u): %s: %.64s: %.256s", r->entries[i]->index,
                      attempt, o->status >= 0 && o->status <= 3 ? names[o->status] : "?",
                      o->code, o->message);
    }
}

static int s_send(void *instance, const struct fanout_batch *batch,
                  struct fanout_outcome *outcomes)
{
    struct sns_instance *in = instance;
    size_t n = batch->count;
    struct sns_entry *entries = calloc(n ? n : 1, sizeof *entries);
    struct sns_entry **ready = calloc(n ? n : 1, sizeof *ready);
    struct s_request *reqs = calloc(n ? n : 1, sizeof *reqs);
    size_t nready = 0, nreq = 0;
    int rc = 0;
    if (!entries || !ready || !reqs) {
        for (size_t i = 0; i < n; i++)
            fanout_outcome_set(&outcomes[i], FANOUT_RETRY, "OutOfMemory", "out of memory");
        rc = -1;
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (s_prepare(in, batch->messages[i], i, &entries[i], &outcomes[i]) == 0)
            ready[nready++] = &entries[i];

    /* Requests: in order, up to 10 entries and the byte limit each (the
     * engine cut the batch so already, unless base64 made some messages
     * larger). */
    for (size_t i = 0; i < nready;) {
        struct s_request *r = &reqs[nreq++];
        r->entries = &ready[i];
        uint64_t bytes = 0;
        while (i < nready && r->count < SNS_MAX_ENTRIES &&
               (r->count == 0 || bytes + ready[i]->size <= in->max_message_bytes)) {
            bytes += ready[i]->size;
            r->count++;
            i++;
        }
    }
    for (size_t k = 0; k < nreq; k++) {
        if (s_build(in, &reqs[k]) != 0) {
            s_mark(reqs, k, nreq, outcomes, FANOUT_RETRY, "OutOfMemory",
                   "out of memory building the request");
            nreq = k;
            rc = -1;
            break;
        }
    }
    /* A standard topic takes the requests together; a FIFO topic one after
     * the other, so its messages arrive in order, and after a request that
     * failed the later ones wait for the retry. */
    size_t step = in->fifo ? 1 : nreq;
    for (size_t k = 0; k < nreq; k += step) {
        size_t m = k + step <= nreq ? step : nreq - k;
        const struct fanout_aws_request **rq = calloc(m, sizeof *rq);
        struct fanout_aws_response **rs = calloc(m, sizeof *rs);
        if (!rq || !rs) {
            free(rq);
            free(rs);
            s_mark(reqs, k, nreq, outcomes, FANOUT_RETRY, "OutOfMemory", "out of memory");
            rc = -1;
            break;
        }
        for (size_t j = 0; j < m; j++) {
            rq[j] = &reqs[k + j].req;
            rs[j] = &reqs[k + j].resp;
            s_log_request(in, &reqs[k + j], batch->attempt);
        }
        in->host->aws_call(rq, rs, m);
        int failed = 0;
        for (size_t j = 0; j < m; j++) {
            struct s_request *r = &reqs[k + j];
            sns_read_response(&r->resp, r->entries, r->count, r->count > 1, outcomes);
            s_log_failures(in, r, outcomes, batch->attempt);
            in->host->aws_response_clean_up(&r->resp);
            failed |= r->resp.result != FANOUT_AWS_OK;
        }
        free(rq);
        free(rs);
        if (in->fifo && failed && k + m < nreq) {
            s_mark(reqs, k + m, nreq, outcomes, FANOUT_RETRY, "NotSent",
                   "not sent yet: an earlier request to this FIFO topic failed, and order "
                   "comes first");
            break;
        }
    }
done:
    /* every request's body, built or half-built (reqs is zeroed) */
    for (size_t k = 0; reqs && k < n; k++)
        fanout_sbuf_free(&reqs[k].body);
    for (size_t i = 0; entries && i < n; i++)
        free(entries[i].encoded);
    free(entries);
    free(ready);
    free(reqs);
    return rc;
}

static const struct fanout_option s_options[] = {
    {.name = "binaryBase64",
     .type = FANOUT_OPT_BOOL,
     .offset = offsetof(struct sns_options, binary_base64),
     .default_int = 0,
     .description = "send a message that is not UTF-8 (binary) as base64, with message "
                    "attribute fanout-encoding=base64, instead of refusing it"},
    {.name = "maxMessageBytes",
     .type = FANOUT_OPT_INT,
     .offset = offsetof(struct sns_options, max_message_bytes),
     .default_int = SNS_MAX_MESSAGE_BYTES,
     .min = 1,
     .max = SNS_MAX_MESSAGE_BYTES_OPTION,
     .description = "bytes per message and per PublishBatch: up to 1048576 for a topic "
                    "whose MaximumMessageSize was raised"},
    {.name = NULL},
};

FANOUT_PLUGIN_DEFINE(.name = "sns", .version = "1.0.0",
                     .description = "Amazon SNS topics (PublishBatch, FIFO included)",
                     .destination_example = "arn:aws:sns:us-east-1:123456789012:my-topic",
                     .limits = {.max_messages_per_call = SNS_MAX_ENTRIES,
                                .max_message_bytes = SNS_MAX_MESSAGE_BYTES,
                                .max_call_bytes = SNS_MAX_MESSAGE_BYTES},
                     .collapse_modes = FANOUT_COLLAPSE_ALL,
                     .default_collapse = FANOUT_COLLAPSE_JSON, .options = s_options,
                     .options_size = sizeof(struct sns_options), .init = s_init,
                     .validate = s_validate, .open = s_open, .send = s_send,
                     .close = s_close, .target_limits = s_limits);
