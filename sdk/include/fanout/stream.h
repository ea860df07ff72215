/*
 * Stream-like AWS destinations reached with a JSON 1.1 batch call (Kinesis
 * PutRecords, Firehose PutRecordBatch; EventBridge PutEvents has the same
 * shape): in libfanout-sdk (pkg-config fanout-sdk), for plugins built on
 * fanout_batch_send (fanout/batch.h).
 *
 * The plugin describes its service once (struct fanout_stream_kind: names,
 * request, answer, and its fanout_batch_api callbacks); the helpers below
 * own what every such plugin would otherwise write again, down to its
 * init, validate, open, send and close:
 *
 *   the destination: a resource name ([a-zA-Z0-9_.-], 1 to max_name_len)
 *     or its ARN arn:<partition>:<service>:<region>:<12 digits>:<resource
 *     prefix><name>, whose region is the target's (a mapping `region` that
 *     says otherwise is refused); the messages that say what was expected;
 *   the instance: host, log scope, name, ARN, region, role, external id;
 *   the request: POST / with the JSON 1.1 content type and X-Amz-Target,
 *     the body's envelope {"<name field>":"<name or ARN>","<entries>":[...]}
 *     around the entries the plugin writes;
 *   the answer: {"<failed count>":N,"<answers>":[{"<ok field>":"..."} |
 *     {"ErrorCode":"...","ErrorMessage":"..."}, ...]} read strictly (see
 *     fanout_stream_read).
 *
 * fanout_stream_read needs jansson (the plugin links it anyway); the rest
 * needs only the host.
 */
#ifndef FANOUT_STREAM_H
#define FANOUT_STREAM_H

#include <stddef.h>

#include "aws_target.h"
#include "batch.h"
#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fanout_stream_kind {
    const char *plugin; /* "kinesis": messages, the default log scope */
    struct fanout_stream_names {
        const char *service;   /* the ARN's service and the request's: "kinesis" */
        const char *resource;  /* the ARN resource before the name: "stream/" */
        const char *label;     /* "Kinesis stream" (messages) */
        const char *arn_label; /* "stream ARN" (messages) */
        size_t max_name_len;
    } dest;
    struct fanout_stream_request {
        const char *operation;  /* "PutRecords" (logs, messages) */
        const char *amz_target; /* "Kinesis_20131202.PutRecords" */
        const char *name_field; /* "StreamName" */
        const char *arn_field;  /* "StreamARN", or NULL: the name even for an ARN */
        const char *entries;    /* "Records" */
    } request;
    struct fanout_stream_answer {
        const char *failed_count; /* "FailedRecordCount" */
        const char *answers;      /* "Records" */
        const char *ok_field;     /* "SequenceNumber" */
        /* Optional: is an ok_field value one (NULL: any non-empty string). */
        int (*ok_valid)(const char *value);
        const char *done; /* "written": what a delivered entry is, in messages */
        /* Entry ErrorCodes, NULL-terminated, beyond the SDK's one list
         * (fanout/aws_codes.h): the service's own throttled ones; its own
         * ones worth a retry (either may be NULL). Any other code fails for
         * good. */
        const char *const *throttle_codes;
        const char *const *retry_codes;
    } answer;
    /* How fanout_stream_send sends (fanout/batch.h): the plugin's entry,
     * limits and callbacks; their ctx is the instance. */
    struct fanout_batch_api batch;
};

/* What an instance keeps of its target. Every string is its own copy. */
struct fanout_stream {
    const struct fanout_stream_kind *kind;
    const struct fanout_host *host;
    char *id;          /* the mapping id (or the plugin's name): log scope */
    char *name;        /* the resource name */
    char *arn;         /* the destination's ARN, or NULL when given a name */
    char *region;      /* the region to sign for, or NULL for the default */
    char *role;        /* or NULL */
    char *external_id; /* or NULL */
    int ordered;       /* set by the plugin: fanout_batch_target.ordered */
    struct fanout_batch_spares spares; /* request bodies kept between calls */
};

/* `init` of such a plugin: checks that the engine has the AWS services
 * (plugin ABI 1.1; else EngineTooOld naming kind->plugin) and makes the
 * host the plugin's state, which fanout_stream_open takes. */
int fanout_stream_init(const struct fanout_stream_kind *kind,
                       const struct fanout_host *host, void **state,
                       struct fanout_error *err);

/* The `init` and `validate` of a plugin for `kind`: defines s_stream_init
 * (fanout_stream_init) and s_stream_validate (fanout_stream_check) for
 * FANOUT_PLUGIN_DEFINE. */
#define FANOUT_STREAM_ENTRY_POINTS(kind)                                                   \
    static int s_stream_init(const struct fanout_host *host, void **state,                 \
                             struct fanout_error *err)                                     \
    {                                                                                      \
        return fanout_stream_init(&(kind), host, state, err);                              \
    }                                                                                      \
    static int s_stream_validate(const struct fanout_target *t, char *err, size_t err_len) \
    {                                                                                      \
        return fanout_stream_check(&(kind), t, err, err_len);                              \
    }

/* Is the target's destination one (and its region the mapping's)? Returns
 * 0, or -1 with what was expected in err. */
int fanout_stream_check(const struct fanout_stream_kind *kind,
                        const struct fanout_target *t, char *err, size_t err_len);

/* `open` of such a plugin: a zeroed instance of `size` bytes whose first
 * member is the struct fanout_stream, filled from the target (`state`: what
 * fanout_stream_init returned); the plugin sets the rest (ordered, its
 * options). Returns it, or NULL with err (InvalidDestination, OutOfMemory).
 * fanout_stream_close is the plugin's `close`. */
void *fanout_stream_open(const struct fanout_stream_kind *kind, void *state,
                         const struct fanout_target *t, size_t size,
                         struct fanout_error *err);
void fanout_stream_close(void *instance);

/* `send` of such a plugin (`instance` from fanout_stream_open): the batch
 * through fanout_batch_send with the kind's batch api, to the instance's
 * log scope and destination name, in order when it is `ordered`. */
int fanout_stream_send(void *instance, const struct fanout_batch *batch,
                       struct fanout_outcome *outcomes);

/* For a `build` callback: set up r's request to `s` and open its body with
 * the envelope, reserving `need` more bytes for the entries. The plugin then
 * writes the entries into r->body, comma-separated, and calls
 * fanout_stream_build_end. Return 0, or -1 when out of memory. */
int fanout_stream_build_begin(const struct fanout_stream *s, struct fanout_batch_request *r,
                              size_t need);
int fanout_stream_build_end(struct fanout_batch_request *r);

/* For a `read` callback: read r->resp into the outcomes of r's entries.
 * The answer counts only when it is the one the API documents: HTTP 200, a
 * JSON object whose kind->answers has one entry per entry sent, each an
 * object with either a non-empty ok_field or an ErrorCode (not both, each a
 * string), and a kind->failed_count that is the number of entries with an
 * ErrorCode. Anything else contradicts itself or answers another request:
 * nothing in it is believed, and every entry sent is retried (ProtocolError;
 * a duplicate is what at-least-once allows, an entry wrongly taken as
 * delivered is a loss). Returns the number of failed entries, or -1 when
 * the answer was not believed. */
int fanout_stream_read(const struct fanout_stream *s, const struct fanout_batch_request *r,
                       struct fanout_outcome *out);

/* The status of an entry's ErrorCode (kind's lists). */
int fanout_stream_code_status(const struct fanout_stream_kind *kind, const char *code);

#ifdef __cplusplus
}
#endif

#endif /* FANOUT_STREAM_H */
