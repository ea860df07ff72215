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
 * `body` as storage (the helper frees `body`), and names the `operation`
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
    /* Optional: free what `prepare` allocated in an entry. */
    void (*release)(void *ctx, void *entry);
    /* Optional: the outcome status of a request that failed as a whole,
     * given the one fanout_aws_outcome chose (`status`), for a service whose
     * codes say more than the AWS layer's class (Firehose throttles with a
     * 5xx ServiceUnavailableException). */
    int (*failed_status)(void *ctx, const struct fanout_aws_response *resp, int status);
};

struct fanout_batch_target {
    const struct fanout_host *host;
    const char *target_id;   /* the log lines' scope */
    const char *destination; /* what the log lines name */
    int ordered;             /* requests one at a time, stop at a failure */
};

/* Send `batch`, filling the outcomes of the messages that did not go.
 * Returns 0, or -1 when out of memory (the outcomes say which messages). */
int fanout_batch_send(const struct fanout_batch_api *api,
                      const struct fanout_batch_target *t, void *ctx,
                      const struct fanout_batch *batch, struct fanout_outcome *outcomes);

#ifdef __cplusplus
}
#endif

#endif /* FANOUT_BATCH_H */
