/*
 * Internal to the sns plugin: what sns.c (lifecycle, destination, send)
 * and sns_api.c (the Query wire protocol and its helpers) share. The
 * module is built with hidden visibility: nothing here is exported.
 */
#ifndef FANOUT_SNS_H
#define FANOUT_SNS_H

#include <stddef.h>
#include <stdint.h>

#include <fanout/aws.h>
#include <fanout/helpers.h>
#include <fanout/plugin.h>

/* Service limits: aws-facts §3 "SNS" (botocore sns service-2.json,
 * Publish / PublishBatch). */
/* Entries per PublishBatch (more: TooManyEntriesInBatchRequest). */
#define SNS_MAX_ENTRIES 10
/* Largest message, and largest PublishBatch total: 256 KB. A message's
 * size is its text plus its message attributes' names, types and values. */
#define SNS_MAX_MESSAGE_BYTES 262144
/* What the option maxMessageBytes may raise the limit to: the topic
 * attribute MaximumMessageSize of newer documentation (1 MiB), UNCONFIRMED
 * in botocore@HEAD (aws-facts §3), so it is the user's to claim. */
#define SNS_MAX_MESSAGE_BYTES_OPTION 1048576
/* MessageGroupId and MessageDeduplicationId: 1..128 characters,
 * alphanumeric and punctuation. */
#define SNS_MAX_ID_CHARS 128
/* Topic names: 1..256 characters of [A-Za-z0-9_-], ".fifo" included. */
#define SNS_MAX_TOPIC_NAME 256
#define SNS_API_VERSION    "2010-03-31"

/* The message attribute that marks a message sent as base64 (option
 * binaryBase64), and what it adds to the message's size. */
#define SNS_B64_ATTR_NAME  "fanout-encoding"
#define SNS_B64_ATTR_TYPE  "String"
#define SNS_B64_ATTR_VALUE "base64"
#define SNS_B64_ATTR_BYTES                                                                 \
    (sizeof SNS_B64_ATTR_NAME - 1 + sizeof SNS_B64_ATTR_TYPE - 1 +                         \
     sizeof SNS_B64_ATTR_VALUE - 1)

/* ---- messages ---- */

/* The offset of the first byte that is not valid UTF-8, or `n`. */
size_t sns_utf8_check(const uint8_t *s, size_t n);

/* Lower-case hex SHA-256 of the concatenated parts into out[65]. Returns
 * 0, or -1 when the digest is not available. */
int sns_sha256_hex(const void *const *parts, const size_t *lens, size_t count,
                   char out[65]);

/* The FIFO MessageGroupId for a key: the key itself when it is 1..128
 * characters SNS accepts, else the hex SHA-256 of the key. */
int sns_group_id(const uint8_t *key, size_t key_len, char out[SNS_MAX_ID_CHARS + 1]);

/* The FIFO MessageDeduplicationId of a message: the hex SHA-256 of the
 * mapping id, the source ARN and the first and last records' sequence and
 * sub-sequence numbers with the record count (stable across resends). */
int sns_dedup_id(const char *target_id, const struct fanout_message *m,
                 char out[SNS_MAX_ID_CHARS + 1]);

/* ---- the wire protocol ---- */

/* One message as it goes on the wire. */
struct sns_entry {
    size_t index;        /* the message's index in the batch; the entry Id */
    const uint8_t *body; /* as sent (the message body, or `encoded`) */
    size_t body_len;
    uint8_t *encoded; /* owned: the base64 of the body (binaryBase64) */
    size_t size;      /* what SNS counts: body + attribute bytes */
    int fifo;
    char group_id[SNS_MAX_ID_CHARS + 1];
    char dedup_id[SNS_MAX_ID_CHARS + 1];
};

/* The form body of Publish (count 1, batch 0) or PublishBatch. Returns 0
 * or -1 (out of memory). */
int sns_request_body(struct fanout_sbuf *b, const char *topic_arn,
                     struct sns_entry *const *entries, size_t count, int batch);

/* Fill `out[entry->index]` for every entry of one request that was not
 * delivered, from the engine's response. */
void sns_read_response(const struct fanout_aws_response *r,
                       struct sns_entry *const *entries, size_t count, int batch,
                       struct fanout_outcome *out);

#endif
