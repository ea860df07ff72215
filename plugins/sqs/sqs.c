/*
 * The `sqs` destination: messages to an Amazon SQS queue.
 *
 * Destination: a queue URL, in any of the forms AWS hands out or an
 * emulator uses:
 *   https://sqs.<region>.amazonaws.com/<account>/<queue>     (any partition's
 *       DNS suffix, e.g. amazonaws.com.cn; sqs-fips.; VPC endpoint hosts)
 *   https://<region>.queue.amazonaws.com/<account>/<queue>   (legacy)
 *   https://queue.amazonaws.com/<account>/<queue>            (legacy, us-east-1)
 *   http(s)://<host>[:port]/<account>/<queue>                (emulators)
 * or a queue ARN arn:<partition>:sqs:<region>:<account>:<queue>, whose URL
 * is the SQS endpoint of that region (overrides applied) + /account/queue.
 * The region comes from the URL or ARN; a mapping `region` may repeat it
 * but not contradict it (refused). A URL with no region in its host (an
 * emulator) is signed for the mapping's region, else the default one.
 *
 * Protocol: JSON 1.0 (sqs_api.c). The request goes to the queue URL's host
 * unless AWS_ENDPOINT_URL_SQS (or AWS_ENDPOINT_URL...) says otherwise; the
 * QueueUrl travels in the body. One message goes with SendMessage, several
 * with SendMessageBatch (up to 10 entries, 1 MiB in all; entry Ids are the
 * messages' indexes in the engine's batch).
 *
 * Bodies: SQS accepts only the characters #x9 | #xA | #xD | #x20-#xD7FF |
 * #xE000-#xFFFD | #x10000-#x10FFFF, as UTF-8. A message with anything else
 * (binary data with collapse none or concat) is refused, naming the first
 * offending byte and suggesting collapse concat-b64; with the option
 * binaryBase64 it is sent as its base64 instead, with the message
 * attribute fanout-encoding = base64 (the base64 and the attribute count
 * against the size limit). JSON and concat-b64 collapse always give text.
 * An empty body is refused (SQS requires at least one character).
 *
 * FIFO queues (name ends in .fifo): MessageGroupId is the message's key
 * (the partition key, or the DynamoDB key values joined by '|'; a key SQS
 * would refuse as a group id, longer than 128 characters or with spaces or
 * non-ASCII, is replaced by its hex SHA-256, so one key still maps to one
 * group). MessageDeduplicationId is the hex SHA-256 of the mapping id, the
 * source ARN, and the first and last records' sequence and sub-sequence
 * numbers with the record count: the same message resent after a retry, or
 * in a batch Lambda delivers again, is dropped by SQS as a duplicate within
 * its 5-minute deduplication window. Order holds within one call; across
 * calls set `parallel: false` (a resent failed entry still lands after the
 * entries that went through).
 *
 * Outcomes: a Failed entry with SenderFault true is permanent, other
 * failures are retried (throttling codes as throttled); a whole request
 * the engine gave up on is reported with the service's code.
 */
#include <ctype.h>
#include <fanout/aws_partitions.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sqs.h"

struct sqs_options {
    int binary_base64;
    int64_t max_message_bytes;
};

/* A parsed destination. */
struct s_dest {
    int is_arn;
    char endpoint[320]; /* URL form: scheme://host[:port] */
    char region[64];    /* from the host or the ARN; "" when none */
    char account[64];
    char name[SQS_MAX_QUEUE_NAME + 1];
    int fifo;
    int aws_host;
};

#define S_FORMS                                                                            \
    "a queue URL (https://sqs.<region>.amazonaws.com/<account>/<queue>) or a queue ARN "   \
    "(arn:aws:sqs:<region>:<account>:<queue>)"

/* ---- destination ---- */

/* A region name: lower-case letters, digits and '-', a letter first, a
 * digit last, with at least one '-' ("us-east-1", "cn-north-1"). */
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

static int s_queue_name(const char *s, size_t n, int *fifo)
{
    if (n < 1 || n > SQS_MAX_QUEUE_NAME)
        return 0;
    *fifo = n > 5 && memcmp(s + n - 5, ".fifo", 5) == 0;
    size_t base = *fifo ? n - 5 : n;
    for (size_t i = 0; i < base; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_' && c != '-')
            return 0;
    }
    return base > 0;
}

static int s_digits(const char *s, size_t n, size_t want)
{
    if (n != want)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* An AWS host: a partition's DNS suffix or dual-stack suffix (the SDK's
 * table, the engine's too). */
static int s_aws_host(const char *host)
{
    return fanout_aws_host_is_aws(host);
}

/* The region named by an SQS host, or "" (emulators, unknown forms). */
static void s_host_region(const char *host, char *out, size_t out_len)
{
    out[0] = '\0';
    if (strcmp(host, "queue.amazonaws.com") == 0) {
        snprintf(out, out_len, "us-east-1");
        return;
    }
    /* labels */
    const char *lab[16];
    size_t len[16], n = 0;
    for (const char *p = host; *p && n < 16;) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        lab[n] = p;
        len[n++] = l;
        p += l + (dot ? 1 : 0);
        if (!dot)
            break;
    }
    /* sqs.<region>. / sqs-fips.<region>. / vpce-...sqs.<region>.vpce. */
    for (size_t i = 0; i + 1 < n; i++) {
        int sqs = (len[i] == 3 && memcmp(lab[i], "sqs", 3) == 0) ||
                  (len[i] == 8 && memcmp(lab[i], "sqs-fips", 8) == 0);
        if (sqs && s_region_like(lab[i + 1], len[i + 1])) {
            snprintf(out, out_len, "%.*s", (int)len[i + 1], lab[i + 1]);
            return;
        }
    }
    /* legacy <region>.queue.amazonaws.com[.cn] */
    if (n > 2 && len[1] == 5 && memcmp(lab[1], "queue", 5) == 0 &&
        s_region_like(lab[0], len[0]))
        snprintf(out, out_len, "%.*s", (int)len[0], lab[0]);
}

static int s_parse_arn(const char *d, struct s_dest *o, char *err, size_t err_len)
{
    /* arn:partition:service:region:account:resource */
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
    if (n == 6 && fl[2] == 3 && memcmp(f[2], "sns", 3) == 0) {
        snprintf(err, err_len,
                 "\"%.80s\" is an SNS topic ARN, not an SQS queue (topics take type "
                 "\"sns\"); expected %s",
                 d, S_FORMS);
        return -1;
    }
    if (n != 6 || fl[2] != 3 || memcmp(f[2], "sqs", 3) != 0 || fl[1] < 3 ||
        memcmp(f[1], "aws", 3) != 0) {
        snprintf(err, err_len, "\"%.80s\" is not an SQS queue ARN; expected %s", d,
                 S_FORMS);
        return -1;
    }
    if (!s_region_like(f[3], fl[3])) {
        snprintf(err, err_len, "queue ARN \"%.80s\": \"%.*s\" is not a region", d,
                 (int)(fl[3] > 40 ? 40 : fl[3]), f[3]);
        return -1;
    }
    if (!s_digits(f[4], fl[4], 12)) {
        snprintf(err, err_len, "queue ARN \"%.80s\": the account must be 12 digits", d);
        return -1;
    }
    if (!s_queue_name(f[5], fl[5], &o->fifo)) {
        snprintf(err, err_len,
                 "queue ARN \"%.80s\": the queue name must be 1-80 characters of "
                 "A-Z a-z 0-9 _ - (\".fifo\" included)",
                 d);
        return -1;
    }
    o->is_arn = 1;
    o->aws_host = 1;
    snprintf(o->region, sizeof o->region, "%.*s", (int)fl[3], f[3]);
    snprintf(o->account, sizeof o->account, "%.*s", (int)fl[4], f[4]);
    snprintf(o->name, sizeof o->name, "%.*s", (int)fl[5], f[5]);
    return 0;
}

static int s_parse_url(const char *d, struct s_dest *o, char *err, size_t err_len)
{
    size_t scheme = strncmp(d, "https://", 8) == 0  ? 8
                    : strncmp(d, "http://", 7) == 0 ? 7
                                                    : 0;
    if (!scheme) {
        snprintf(err, err_len, "\"%.80s\" is neither %s", d, S_FORMS);
        return -1;
    }
    const char *auth = d + scheme;
    const char *slash = strchr(auth, '/');
    size_t alen = slash ? (size_t)(slash - auth) : strlen(auth);
    if (alen == 0 || alen > 255 || memchr(auth, '@', alen) || strpbrk(d, " ?#\t\r\n")) {
        snprintf(
            err, err_len,
            "queue URL \"%.80s\": expected http(s)://host[:port]/<account>/<queue> with "
            "no user, query or fragment",
            d);
        return -1;
    }
    /* host without the port, lower-cased, for the checks */
    char host[256];
    size_t hl = alen;
    if (auth[0] != '[') {
        const char *colon = memchr(auth, ':', alen);
        if (colon) {
            hl = (size_t)(colon - auth);
            if (!s_digits(colon + 1, alen - hl - 1, alen - hl - 1) || alen - hl - 1 == 0 ||
                alen - hl - 1 > 5) {
                snprintf(err, err_len, "queue URL \"%.80s\": bad port", d);
                return -1;
            }
        }
    }
    for (size_t i = 0; i < hl; i++)
        host[i] = (char)tolower((unsigned char)auth[i]);
    host[hl] = '\0';
    /* path: /<account>/<queue> */
    const char *acc = slash ? slash + 1 : "";
    const char *sep = strchr(acc, '/');
    const char *name = sep ? sep + 1 : "";
    size_t acc_len = sep ? (size_t)(sep - acc) : strlen(acc);
    size_t name_len = strlen(name);
    if (name_len && name[name_len - 1] == '/')
        name_len--; /* a trailing slash, as some tools print */
    if (!sep || acc_len == 0 || acc_len >= sizeof o->account ||
        memchr(name, '/', name_len)) {
        snprintf(err, err_len,
                 "queue URL \"%.80s\": the path must be /<account>/<queue>, e.g. "
                 "/123456789012/my-queue",
                 d);
        return -1;
    }
    for (size_t i = 0; i < acc_len; i++)
        if (!isalnum((unsigned char)acc[i]) && acc[i] != '_' && acc[i] != '-') {
            snprintf(err, err_len, "queue URL \"%.80s\": bad account \"%.*s\"", d,
                     (int)(acc_len > 40 ? 40 : acc_len), acc);
            return -1;
        }
    if (!s_queue_name(name, name_len, &o->fifo)) {
        snprintf(err, err_len,
                 "queue URL \"%.80s\": the queue name must be 1-80 characters of A-Z a-z "
                 "0-9 _ - (\".fifo\" included)",
                 d);
        return -1;
    }
    o->aws_host = s_aws_host(host);
    if (o->aws_host && !s_digits(acc, acc_len, 12)) {
        snprintf(err, err_len, "queue URL \"%.80s\": the account must be 12 digits", d);
        return -1;
    }
    snprintf(o->endpoint, sizeof o->endpoint, "%.*s", (int)(scheme + alen), d);
    snprintf(o->account, sizeof o->account, "%.*s", (int)acc_len, acc);
    snprintf(o->name, sizeof o->name, "%.*s", (int)name_len, name);
    if (o->aws_host)
        s_host_region(host, o->region, sizeof o->region);
    return 0;
}

static int s_parse(const struct fanout_target *t, struct s_dest *o, char *err,
                   size_t err_len)
{
    memset(o, 0, sizeof *o);
    const char *d = t->destination;
    if (!d || !*d) {
        snprintf(err, err_len, "expected %s", S_FORMS);
        return -1;
    }
    if (strncmp(d, "arn:", 4) == 0) {
        if (s_parse_arn(d, o, err, err_len) != 0)
            return -1;
    } else if (s_parse_url(d, o, err, err_len) != 0) {
        return -1;
    }
    if (t->region && *t->region && o->region[0] && strcmp(t->region, o->region) != 0) {
        snprintf(err, err_len,
                 "region \"%.40s\" conflicts with the queue's region \"%s\" (from its %s): "
                 "drop \"region\" or fix the destination",
                 t->region, o->region, o->is_arn ? "ARN" : "URL");
        return -1;
    }
    if (o->aws_host && !o->region[0] && !(t->region && *t->region)) {
        snprintf(err, err_len,
                 "queue URL \"%.80s\": no region in its host; use "
                 "https://sqs.<region>.amazonaws.com/... or set \"region\"",
                 d);
        return -1;
    }
    return 0;
}

/* ---- lifecycle ---- */

static int s_init(const struct fanout_host *host, void **state, struct fanout_error *err)
{
    return fanout_aws_plugin_init("sqs", host, state, err);
}

static int s_validate(const struct fanout_target *t, char *err, size_t err_len)
{
    struct s_dest d;
    return s_parse(t, &d, err, err_len);
}

static int s_limits(void *state, const struct fanout_target *t, struct fanout_limits *lim,
                    char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    const struct sqs_options *o = t->options;
    /* the queue's own MaximumMessageSize, when lower; the batch total
     * stays 1 MiB */
    if (o && o->max_message_bytes > 0)
        lim->max_message_bytes = (uint64_t)o->max_message_bytes;
    return 0;
}

static int s_open(void *state, const struct fanout_target *t, void **out,
                  struct fanout_error *err)
{
    const struct fanout_host *host = ((const struct fanout_plugin_state *)state)->host;
    const struct sqs_options *o = t->options;
    struct s_dest d;
    char why[256];
    if (s_parse(t, &d, why, sizeof why) != 0) {
        snprintf(err->code, sizeof err->code, "InvalidDestination");
        snprintf(err->message, sizeof err->message, "%s", why);
        return -1;
    }
    struct sqs_instance *in = calloc(1, sizeof *in);
    if (!in) {
        snprintf(err->message, sizeof err->message, "out of memory");
        return -1;
    }
    in->msg.host = host;
    in->msg.target_id = t->id;
    in->role = t->role && *t->role ? t->role : NULL;
    in->external_id = t->external_id && *t->external_id ? t->external_id : NULL;
    snprintf(in->region, sizeof in->region, "%s",
             t->region && *t->region ? t->region : d.region);
    in->msg.fifo = d.fifo;
    in->msg.binary_base64 = o && o->binary_base64;
    in->msg.max_message_bytes = o && o->max_message_bytes > 0
                                    ? (uint64_t)o->max_message_bytes
                                    : SQS_MAX_MESSAGE_BYTES;
    char base[512];
    if (d.is_arn) {
        /* the region's SQS endpoint, overrides applied */
        char e2[256];
        if (host->aws_endpoint("sqs", d.region, base, sizeof base, e2, sizeof e2) != 0) {
            snprintf(err->code, sizeof err->code, "InvalidEndpoint");
            snprintf(err->message, sizeof err->message, "no SQS endpoint for %.40s: %.190s",
                     d.region, e2);
            free(in);
            return -1;
        }
    } else {
        snprintf(base, sizeof base, "%s", d.endpoint);
        snprintf(in->endpoint, sizeof in->endpoint, "%s", d.endpoint);
    }
    size_t need = strlen(base) + strlen(d.account) + strlen(d.name) + 3;
    in->queue_url = malloc(need);
    if (!in->queue_url) {
        snprintf(err->message, sizeof err->message, "out of memory");
        free(in);
        return -1;
    }
    in->msg.destination = in->queue_url;
    snprintf(in->queue_url, need, "%s/%s/%s", base, d.account, d.name);
    in->md5 = EVP_MD_fetch(NULL, "MD5", NULL);
    *out = in;
    return 0;
}

static void s_close(void *instance)
{
    struct sqs_instance *in = instance;
    free(in->queue_url);
    EVP_MD_free(in->md5);
    free(in);
}

/* ---- send ---- */

static const struct fanout_msg_service s_service = {
    .name = "SQS",
    .max_entries = SQS_MAX_ENTRIES,
    .order_scope = "FIFO queue",
    .empty_code = "MissingParameter",
    .empty_why = "SQS needs a body of at least one character",
    .binary_code = "InvalidMessageContents",
    .accept = sqs_char,
    .build = sqs_build,
    .read = sqs_read,
    .failed_status = sqs_failed_status,
};

/* A standard queue takes the requests together; a FIFO queue one after
 * the other, so its messages arrive in order. */
static int s_send(void *instance, const struct fanout_batch *batch,
                  struct fanout_outcome *outcomes)
{
    return fanout_msg_send(&s_service, instance, SQS_MAX_MESSAGE_BYTES, batch, outcomes);
}

static const struct fanout_option s_options[] = {
    {.name = "binaryBase64",
     .type = FANOUT_OPT_BOOL,
     .offset = offsetof(struct sqs_options, binary_base64),
     .default_int = 0,
     .description = "send a body SQS cannot carry (binary) as base64, with message "
                    "attribute fanout-encoding=base64, instead of refusing it"},
    {.name = "maxMessageBytes",
     .type = FANOUT_OPT_INT,
     .offset = offsetof(struct sqs_options, max_message_bytes),
     .default_int = SQS_MAX_MESSAGE_BYTES,
     .min = SQS_MIN_MESSAGE_BYTES,
     .max = SQS_MAX_MESSAGE_BYTES,
     .description = "the queue's MaximumMessageSize when lower than 1 MiB"},
    {.name = NULL},
};

FANOUT_PLUGIN_DEFINE(
        .name = "sqs", .version = "1.0.0",
        .description = "Amazon SQS queues (SendMessageBatch, FIFO included)",
        .destination_example = "https://sqs.us-east-1.amazonaws.com/123456789012/my-queue "
                               "or arn:aws:sqs:us-east-1:123456789012:my-queue",
        .limits = {.max_messages_per_call = SQS_MAX_ENTRIES * FANOUT_MSG_REQUESTS_PER_CALL,
                   .max_message_bytes = SQS_MAX_MESSAGE_BYTES,
                   .max_call_bytes = SQS_MAX_MESSAGE_BYTES},
        .collapse_modes = FANOUT_COLLAPSE_ALL, .default_collapse = FANOUT_COLLAPSE_JSON,
        .options = s_options, .options_size = sizeof(struct sqs_options), .init = s_init,
        .fini = fanout_plugin_state_free, .validate = s_validate, .open = s_open,
        .send = s_send, .close = s_close, .target_limits = s_limits);
