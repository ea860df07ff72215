/*
 * Sending one batch to an AWS batch API (SendMessageBatch, PublishBatch,
 * PutRecords, PutRecordBatch, PutEvents, PutLogEvents...): the loop every
 * such plugin needs, in libfanout-sdk (pkg-config fanout-sdk).
 *
 * The plugin gives three callbacks and its limits; fanout_batch_send owns
 * the rest:
 *
 *   prepare  one message -> one entry of the plugin's own type (checks,
 *            encodings, ids), or a refusal in that message's outcome;
 *   build    the entries of one request -> the request (body, headers,
 *            operation name);
 *   read     one successful answer (result FANOUT_AWS_OK) -> the outcome of
 *            each entry that did not go. Entries left untouched count as
 *            delivered, so `read` must believe only the answer the API
 *            documents (see the in-tree plugins).
 *
 * The helper splits the prepared entries, in message order, into requests of
 * at most `max_entries` entries and `max_request_bytes` bytes (as `prepare`
 * counted them); sends them together through the host's aws_call, or one
 * after the other when the target is `ordered` (parallel: false, FIFO
 * queues and topics), stopping at the first request that fails so that no
 * later message overtakes an earlier one (those wait for the engine's retry,
 * outcome FANOUT_RETRY "NotSent"); turns a whole request the AWS layer gave
 * up on into every entry's outcome (throttled, retry or fatal, with the
 * service's code and "<operation>: <message>"); logs each request and each
 * entry that failed at debug level; and frees everything.
 *
 * Retries: none here. The engine owns the retry budget; a message whose
 * outcome is FANOUT_RETRY or FANOUT_THROTTLED comes back in a later batch
 * (batch->attempt counts).
 */
#ifndef FANOUT_BATCH_H
#define FANOUT_BATCH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "aws.h"
#include "helpers.h"
#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FANOUT_BATCH_MAX_HEADERS 4

/* One request of a batch: `entries`, `indexes` and `count` are set by the
 * helper; `build` fills `req` (struct_size is preset), may use `headers` and
 * `body` as storage (the helper frees `body`; `body` may come empty but with
 * room, from fanout_batch_send_kept's spares), and names the `operation`
 * (a static string, for logs and messages). `resp` holds the answer when
 * `read` is called. */
struct fanout_batch_request {
    void *const *entries;  /* the plugin's entries, in message order */
    const size_t *indexes; /* entries[j] is batch message indexes[j] */
    size_t count;
    uint64_t bytes; /* the sum of the entries' sizes */
    const char *operation;
    struct fanout_aws_request req;
    struct fanout_aws_header headers[FANOUT_BATCH_MAX_HEADERS];
    struct fanout_sbuf body;
    struct fanout_aws_response resp;
};

struct fanout_batch_api {
    size_t entry_size;          /* bytes of the plugin's entry type */
    size_t max_entries;         /* per request (0: no limit) */
    uint64_t max_request_bytes; /* per request, sum of entry sizes (0: none) */
    /* Make message `index`'s entry in `entry` (zeroed, entry_size bytes) and
     * set `*size` to what it counts against max_request_bytes. Return 0, or
     * -1 after setting `*out` (the message is then not sent). */
    int (*prepare)(void *ctx, const struct fanout_message *m, size_t index, void *entry,
                   uint64_t *size, struct fanout_outcome *out);
    /* Build request `r`. Return 0, or -1 when out of memory. */
    int (*build)(void *ctx, struct fanout_batch_request *r);
    /* Read r->resp, whose result is FANOUT_AWS_OK, into the outcomes
     * (outcomes[r->indexes[j]] for entry j). */
    void (*read)(void *ctx, const struct fanout_batch_request *r,
                 struct fanout_outcome *outcomes);
    /* Optional: free what `prepare` allocated in an entry. Called for every
     * entry, prepared or refused (a refused one may be half-filled). */
    void (*release)(void *ctx, void *entry);
    /* Optional: the outcome status of a request that failed as a whole,
     * given the one fanout_aws_outcome chose (`status`), for a service whose
     * codes say more than the AWS layer's class (Firehose throttles with a
     * 5xx ServiceUnavailableException; SQS's Query-compatible codes, such
     * as "AWS.SimpleQueueService.RequestThrottled", are not in its list). */
    int (*failed_status)(void *ctx, const struct fanout_aws_response *resp, int status);
};

/* Request bodies kept between calls of one instance, whatever its thread:
 * a body is written into memory already touched instead of fresh pages (a
 * page fault each 4 KiB). At most FANOUT_BATCH_SPARES are kept, each of at
 * most FANOUT_BATCH_SPARE_MAX bytes: a one-off giant body is given back. */
#define FANOUT_BATCH_SPARES    4
#define FANOUT_BATCH_SPARE_MAX (1u << 20)

struct fanout_batch_spares {
    pthread_mutex_t lock;
    size_t count;
    struct fanout_sbuf bufs[FANOUT_BATCH_SPARES];
};

/* Returns 0, or -1 when the lock cannot be made. */
int fanout_batch_spares_init(struct fanout_batch_spares *s);
/* Frees the kept bodies (the instance's close). */
void fanout_batch_spares_free(struct fanout_batch_spares *s);

struct fanout_batch_target {
    const struct fanout_host *host;
    const char *target_id;   /* the log lines' scope */
    const char *destination; /* what the log lines name */
    int ordered;             /* requests one at a time, stop at a failure */
    const char *order_scope; /* the NotSent message's "an earlier request to
                              * this <order_scope> failed" ("destination") */
};

/* Send `batch`, filling the outcomes of the messages that did not go.
 * Returns 0, or -1 when out of memory (the outcomes say which messages). */
int fanout_batch_send(const struct fanout_batch_api *api,
                      const struct fanout_batch_target *t, void *ctx,
                      const struct fanout_batch *batch, struct fanout_outcome *outcomes);

/* fanout_batch_send writing the request bodies into `spares`' kept ones
 * (NULL: each fresh), and keeping them there afterwards. */
int fanout_batch_send_kept(const struct fanout_batch_api *api,
                           const struct fanout_batch_target *t,
                           struct fanout_batch_spares *spares, void *ctx,
                           const struct fanout_batch *batch,
                           struct fanout_outcome *outcomes);

/* ---- messages of queue and topic APIs (SQS, SNS) ---------------------- */

/* FIFO MessageGroupId and MessageDeduplicationId: 1..128 characters,
 * alphanumeric and punctuation. */
#define FANOUT_FIFO_ID_MAX 128

/* The message attribute that marks a body sent as base64, and what it adds
 * to the message's size. */
#define FANOUT_B64_ATTR_NAME  "fanout-encoding"
#define FANOUT_B64_ATTR_TYPE  "String"
#define FANOUT_B64_ATTR_VALUE "base64"
#define FANOUT_B64_ATTR_BYTES                                                              \
    (sizeof FANOUT_B64_ATTR_NAME - 1 + sizeof FANOUT_B64_ATTR_TYPE - 1 +                   \
     sizeof FANOUT_B64_ATTR_VALUE - 1)

/* One message as it goes on the wire; an entry type for fanout_batch_send
 * (release: fanout_msg_entry_release). */
struct fanout_msg_entry {
    const uint8_t *body; /* as sent: the message body, or `encoded` */
    size_t body_len;
    uint8_t *encoded; /* owned: the base64 of a binary body, with the attribute */
    int fifo;         /* group_id and dedup_id are set */
    /* owned, one allocation for a FIFO target only (an entry of a standard
     * queue or topic stays small: a batch of 10,000 messages has 10,000) */
    char *group_id; /* FANOUT_FIFO_ID_MAX + 1 bytes, then dedup_id's */
    char *dedup_id;
};

/* The offset of the first byte of s[0..n) that is not valid UTF-8 or whose
 * character `accept` (NULL: any) refuses, or `n`; `what` (may be NULL)
 * describes it ("invalid UTF-8 (byte 0xC3)", "character U+0001"). */
size_t fanout_text_check(const uint8_t *s, size_t n, int (*accept)(uint32_t cp), char *what,
                         size_t what_len);

/* Lower-case hex SHA-256 of the concatenated parts into out[65]. Returns 0,
 * or -1 when the digest is not available (a FIPS provider without it). */
int fanout_sha256_hex(const void *const *parts, const size_t *lens, size_t count,
                      char out[65]);

/* The FIFO MessageGroupId for a key: the key itself when it is 1..128
 * printable ASCII characters but space, else the hex SHA-256 of the key (one
 * key still maps to one group). */
int fanout_fifo_group_id(const uint8_t *key, size_t key_len,
                         char out[FANOUT_FIFO_ID_MAX + 1]);

/* The FIFO MessageDeduplicationId of a message: the hex SHA-256 of the
 * mapping id, the source ARN, and the first and last records' sequence and
 * sub-sequence numbers with the record count, so the same message sent
 * again (a retry, a redelivered batch) carries the same id. */
int fanout_fifo_dedup_id(const char *target_id, const struct fanout_message *m,
                         char out[FANOUT_FIFO_ID_MAX + 1]);

/* Fill `e` with message m's body, or its base64 when `base64`, check the
 * size the service counts (the base64 and its attribute) against
 * `max_bytes` into `*size`, and, for a FIFO target (`fifo_target_id` its
 * id, else NULL), set the group and deduplication ids. Returns 0, or -1
 * with `out` set: MessageTooLong (fatal), out of memory or
 * DigestUnavailable (retried). */
int fanout_msg_entry_prepare(struct fanout_msg_entry *e, const struct fanout_message *m,
                             int base64, uint64_t max_bytes, const char *fifo_target_id,
                             uint64_t *size, struct fanout_outcome *out);

/* fanout_batch_api.release for a struct fanout_msg_entry. */
void fanout_msg_entry_release(void *ctx, void *entry);

/* What every message-service instance (SQS, SNS) starts with: the plugin's
 * instance struct has it as its first member, so that the fanout_msg_*
 * functions can read it from the instance. */
struct fanout_msg_target {
    const struct fanout_host *host;
    const char *target_id;   /* the target outlives the instance */
    const char *destination; /* the queue URL, the topic ARN: for logs */
    int fifo;                /* order, group and deduplication ids */
    int binary_base64;       /* binaryBase64: send binary bodies as base64 */
    uint64_t max_message_bytes;
};

/* Requests a message service's call may carry: its plugin's
 * max_messages_per_call is max_entries times this, its max_call_bytes one
 * request's limit. Small messages then travel four requests to a call,
 * sent together: one thread, one wait on their answers and one check of
 * their reused connections serve four requests instead of one (SQS end to
 * end: system calls 6,410 -> 4,968 for 1,000 requests). Large ones still
 * fill a call's bytes with one request, so a call holds no more memory
 * than before. Ten to a call saved no more system calls and opened more
 * connections (peak RSS +1.6 MiB). */
#define FANOUT_MSG_REQUESTS_PER_CALL 4

/* A message service (SQS, SNS): how it refuses a message, and the protocol
 * (build one request, read one answer: fanout_batch_api's callbacks, whose
 * ctx is the plugin's instance). Entries are struct fanout_msg_entry. */
struct fanout_msg_service {
    const char *name;           /* "SQS", in messages */
    size_t max_entries;         /* per request */
    const char *order_scope;    /* "FIFO queue" */
    const char *empty_code;     /* the service's error for an empty body */
    const char *empty_why;      /* "SQS needs a body of at least one character" */
    const char *binary_code;    /* its error for a body it cannot carry */
    int (*accept)(uint32_t cp); /* the characters it carries (NULL: any UTF-8) */
    int (*build)(void *ctx, struct fanout_batch_request *r);
    void (*read)(void *ctx, const struct fanout_batch_request *r,
                 struct fanout_outcome *outcomes);
    int (*failed_status)(void *ctx, const struct fanout_aws_response *resp, int status);
};

/* fanout_batch_send for a message service: each message checked (empty,
 * characters the service cannot carry unless binaryBase64) and prepared
 * (fanout_msg_entry_prepare), requests of up to max_entries messages and
 * max_request_bytes bytes, sent together, or in order one at a time for a
 * FIFO target. `instance` starts with a struct fanout_msg_target. */
int fanout_msg_send(const struct fanout_msg_service *svc, void *instance,
                    uint64_t max_request_bytes, const struct fanout_batch *batch,
                    struct fanout_outcome *outcomes);

#ifdef __cplusplus
}
#endif

#endif /* FANOUT_BATCH_H */
