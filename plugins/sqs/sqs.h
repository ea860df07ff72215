/*
 * Internal to the sqs plugin: what sqs.c (lifecycle, destination, send)
 * and sqs_api.c (the JSON 1.0 wire protocol and its helpers) share. The
 * module is built with hidden visibility: nothing here is exported.
 */
#ifndef FANOUT_SQS_H
#define FANOUT_SQS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include <fanout/aws.h>
#include <fanout/aws_target.h>
#include <fanout/batch.h>
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
/* Queue names: 1..80 characters of [A-Za-z0-9_-], ".fifo" included. */
#define SQS_MAX_QUEUE_NAME 80

/* An open queue: what sqs.c makes of a target, and the requests' ctx. */
struct sqs_instance {
    struct fanout_msg_target msg; /* first: host, id, queue URL, FIFO, options */
    const char *role;
    const char *external_id;
    char region[64];    /* "" = the default region */
    char endpoint[320]; /* "" = the queue's region's endpoint */
    char *queue_url;
    EVP_MD *md5; /* fetched at open for the answers' checks; NULL: per answer */
};

/* ---- the wire protocol ---- */

/* Characters SQS accepts in a body: #x9 | #xA | #xD | #x20-#xD7FF |
 * #xE000-#xFFFD | #x10000-#x10FFFF (fanout_text_check's `accept`). */
int sqs_char(uint32_t cp);

/* fanout_batch_api.failed_status: a request that failed as a whole with
 * one of SQS's throttling codes the AWS layer does not know (the
 * AWS.SimpleQueueService. prefix, KMS.ThrottlingException) is throttled. */
int sqs_failed_status(void *ctx, const struct fanout_aws_response *resp, int status);

/* fanout_batch_api.build: the JSON 1.0 SendMessage (one entry) or
 * SendMessageBatch (Ids: the messages' batch indexes) of request r, whose
 * entries are struct fanout_msg_entry; ctx is the sqs_instance. */
int sqs_build(void *ctx, struct fanout_batch_request *r);

/* fanout_batch_api.read: the outcome of each entry of r that did not go,
 * from its successful (FANOUT_AWS_OK) answer. */
void sqs_read(void *ctx, const struct fanout_batch_request *r, struct fanout_outcome *out);

#endif
