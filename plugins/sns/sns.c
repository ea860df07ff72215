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
    return fanout_aws_plugin_init("sns", host, state, err);
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
    in->msg.host = ((const struct fanout_plugin_state *)state)->host;
    in->msg.target_id = t->id;
    in->msg.destination = in->topic_arn = t->destination;
    in->role = t->role && *t->role ? t->role : NULL;
    in->external_id = t->external_id && *t->external_id ? t->external_id : NULL;
    snprintf(in->region, sizeof in->region, "%s", region);
    in->msg.fifo = fifo;
    in->msg.binary_base64 = o && o->binary_base64;
    in->msg.max_message_bytes = s_max_bytes(t);
    *out = in;
    return 0;
}

static void s_close(void *instance)
{
    free(instance);
}

/* ---- send ---- */

static const struct fanout_msg_service s_service = {
    .name = "SNS",
    .max_entries = SNS_MAX_ENTRIES,
    .order_scope = "FIFO topic",
    .empty_code = "InvalidParameter",
    .empty_why = "SNS refuses an empty Message",
    .binary_code = "InvalidParameter",
    .accept = NULL,
    .build = sns_build,
    .read = sns_read,
};

/* A standard topic takes the requests together; a FIFO topic one after
 * the other, so its messages arrive in order. */
static int s_send(void *instance, const struct fanout_batch *batch,
                  struct fanout_outcome *outcomes)
{
    const struct sns_instance *in = instance;
    return fanout_msg_send(&s_service, instance, in->msg.max_message_bytes, batch,
                           outcomes);
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
                     .limits = {.max_messages_per_call = SNS_MAX_ENTRIES *
                                                         FANOUT_MSG_REQUESTS_PER_CALL,
                                .max_message_bytes = SNS_MAX_MESSAGE_BYTES,
                                .max_call_bytes = SNS_MAX_MESSAGE_BYTES},
                     .collapse_modes = FANOUT_COLLAPSE_ALL,
                     .default_collapse = FANOUT_COLLAPSE_JSON, .options = s_options,
                     .options_size = sizeof(struct sns_options), .init = s_init,
                     .fini = fanout_plugin_state_free, .validate = s_validate,
                     .open = s_open, .send = s_send, .close = s_close,
                     .target_limits = s_limits);
