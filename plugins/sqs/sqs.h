/*
 * Internal to the sqs plugin: what sqs.c (lifecycle, destination, send)
 * and sqs_api.c (the JSON 1.0 wire protocol and its helpers) share. The
 * module is built with hidden visibility: nothing here is exported.
 */
#ifndef FANOUT_SQS_H
#define FANOUT_SQS_H

#include <stddef.h>
#include <stdint.h>

#include <fanout/aws.h>
#include <fanout/helpers.h>
#include <fanout/plugin.h>

/* Service limits: aws-facts §3 "SQS" (botocore sqs service-2.json,
 * SendMessageBatch; AWS What's New 4 Aug 2025). */
/* Entries per SendMessageBatch. */
#define SQS_MAX_ENTRIES 10
/* Largest message and largest batch total (sum of the messages' sizes),
 * both 1 MiB since 4 Aug 2025 (256 KiB before). A message's size is its
 * body plus its message attributes' names, types and values. */
#define SQS_MAX_MESSAGE_BYTES 1048576
/* The queue attribute MaximumMessageSize ranges over 1,024..1,048,576. */
#define SQS_MIN_MESSAGE_BYTES 1024
/* MessageGroupId and MessageDeduplicationId: 1..128 characters,
 * alphanumeric and punctuation. */
#define SQS_MAX_ID_CHARS 128
/* Queue names: 1..80 characters of [A-Za-z0-9_-], ".fifo" included. */
#define SQS_MAX_QUEUE_NAME 80

/* The message attribute that marks a body sent as base64 (option
 * binaryBase64), and what it adds to the message's size. */
#define SQS_B64_ATTR_NAME  "fanout-encoding"
#define SQS_B64_ATTR_TYPE  "String"
#define SQS_B64_ATTR_VALUE "base64"
#define SQS_B64_ATTR_BYTES                                                                 \
    (sizeof SQS_B64_ATTR_NAME - 1 + sizeof SQS_B64_ATTR_TYPE - 1 +                         \
     sizeof SQS_B64_ATTR_VALUE - 1)

/* ---- message bodies ---- */

/* The offset of the first byte of `s` that SQS does not accept (invalid
 * UTF-8, or a character outside #x9 | #xA | #xD | #x20-#xD7FF |
 * #xE000-#xFFFD | #x10000-#x10FFFF), or `n` when the whole body is
 * acceptable. `*what` describes the offending character. */
size_t sqs_text_check(const uint8_t *s, size_t n, char *what, size_t what_len);

/* Lower-case hex SHA-256 of the concatenated parts (64 characters + NUL
 * into out[65]). Returns 0, or -1 when the digest is not available. */
int sqs_sha256_hex(const void *const *parts, const size_t *lens, size_t count,
                   char out[65]);

/* The FIFO MessageGroupId for a key: the key itself when it is 1..128
 * characters SQS accepts, else the hex SHA-256 of the key. */
int sqs_group_id(const uint8_t *key, size_t key_len, char out[SQS_MAX_ID_CHARS + 1]);

/* The FIFO MessageDeduplicationId of a message: the hex SHA-256 of the
 * mapping id, the source ARN and the first and last records' sequence and
 * sub-sequence numbers with the record count, so the same message sent
 * again (a retry, a redelivered batch) carries the same id. */
int sqs_dedup_id(const char *target_id, const struct fanout_message *m,
                 char out[SQS_MAX_ID_CHARS + 1]);

/* ---- the wire protocol ---- */

/* One message as it goes on the wire. */
struct sqs_entry {
    size_t index;        /* the message's index in the batch; the entry Id */
    const uint8_t *body; /* as sent (the message body, or `encoded`) */
    size_t body_len;
    uint8_t *encoded; /* owned: the base64 of the body (binaryBase64) */
    size_t size;      /* what SQS counts: body + attribute bytes */
    int fifo;
    char group_id[SQS_MAX_ID_CHARS + 1];
    char dedup_id[SQS_MAX_ID_CHARS + 1];
};

/* The JSON 1.0 body of SendMessage (count 1, batch 0) or SendMessageBatch
 * for these entries. Returns 0 or -1 (out of memory). */
int sqs_request_body(struct fanout_sbuf *b, const char *queue_url,
                     struct sqs_entry *const *entries, size_t count, int batch);

/* Fill `out[entry->index]` for every entry of one request that was not
 * delivered, from the engine's response. */
void sqs_read_response(const struct fanout_aws_response *r,
                       struct sqs_entry *const *entries, size_t count, int batch,
                       struct fanout_outcome *out);

#endif
