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
#include <fanout/aws_target.h>
#include <fanout/batch.h>
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
/* Topic names: 1..256 characters of [A-Za-z0-9_-], ".fifo" included. */
#define SNS_MAX_TOPIC_NAME 256
#define SNS_API_VERSION    "2010-03-31"

/* An open topic: what sns.c makes of a target, and the requests' ctx. */
struct sns_instance {
    struct fanout_msg_target msg; /* first: host, id, topic ARN, FIFO, options */
    const char *topic_arn;
    const char *role;
    const char *external_id;
    char region[64];
};

/* ---- the wire protocol ---- */

/* fanout_batch_api.build: the Query Publish (one entry) or PublishBatch
 * (Ids: the messages' batch indexes) of request r, whose entries are
 * struct fanout_msg_entry; ctx is the sns_instance. */
int sns_build(void *ctx, struct fanout_batch_request *r);

/* fanout_batch_api.read: the outcome of each entry of r that did not go,
 * from its successful (FANOUT_AWS_OK) answer. */
void sns_read(void *ctx, const struct fanout_batch_request *r, struct fanout_outcome *out);

#endif
