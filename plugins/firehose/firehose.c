/*
 * The `firehose` destination: records into an Amazon Data Firehose stream
 * with PutRecordBatch (firehose_api.c), through the engine's AWS layer
 * (endpoint, region, credentials incl. AssumeRole for `role`, SigV4,
 * retries).
 *
 * Destination: a Firehose stream name ([a-zA-Z0-9_.-]{1,64}) or its ARN
 * arn:<partition>:firehose:<region>:<account>:deliverystream/<name>. The
 * API names the stream by name only, so the ARN gives the name and the
 * region (a mapping `region` that says otherwise is refused); a stream of
 * another account needs that account's credentials, through `role`.
 *
 * Each message is one Firehose record (collapse `none` by default: one
 * source record each; the other modes pack several source records into one
 * Firehose record). Firehose concatenates records as they are, so with
 * `appendNewline: true` each record gets a "\n" after it, which makes
 * newline-delimited files at the destination (S3 objects...).
 */
#include <stdlib.h>
#include <string.h>

#include "firehose.h"

struct firehose_options {
    int append_newline;
};

FANOUT_STREAM_ENTRY_POINTS(firehose_kind)

/* The newline is part of the record Firehose counts and of the request. */
static int s_target_limits(void *state, const struct fanout_target *t,
                           struct fanout_limits *lim, char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    const struct firehose_options *o = t->options;
    if (o && o->append_newline) {
        lim->max_message_bytes = FIREHOSE_MAX_RECORD_BYTES - 1;
        lim->per_message_overhead = FIREHOSE_PER_RECORD_OVERHEAD + 1;
    }
    return 0;
}

static int s_open(void *state, const struct fanout_target *t, void **out,
                  struct fanout_error *err)
{
    const struct firehose_options *o = t->options;
    struct firehose_target *f =
        fanout_stream_open(&firehose_kind, state, t, sizeof *f, err);
    if (!f)
        return -1;
    f->append_newline = o && o->append_newline;
    *out = f;
    return 0;
}

static const struct fanout_option s_options[] = {
    {.name = "appendNewline",
     .type = FANOUT_OPT_BOOL,
     .offset = offsetof(struct firehose_options, append_newline),
     .default_int = 0,
     .description = "end each Firehose record with \"\\n\" (newline-delimited objects "
                    "at the destination)"},
    {.name = NULL},
};

FANOUT_PLUGIN_DEFINE(
        .name = "firehose", .version = "1.0.0",
        .description = "Amazon Data Firehose (PutRecordBatch)",
        .destination_example =
            "my-stream or arn:aws:firehose:us-east-1:123456789012:deliverystream/my-stream",
        .limits = {.max_messages_per_call = FIREHOSE_MAX_RECORDS_PER_CALL,
                   .max_message_bytes = FIREHOSE_MAX_RECORD_BYTES,
                   .max_call_bytes = FIREHOSE_CALL_BUDGET,
                   .per_message_overhead = FIREHOSE_PER_RECORD_OVERHEAD,
                   .per_call_overhead = FIREHOSE_PER_REQUEST_OVERHEAD},
        .collapse_modes = FANOUT_COLLAPSE_ALL, .default_collapse = FANOUT_COLLAPSE_NONE,
        .options = s_options, .options_size = sizeof(struct firehose_options),
        .init = s_stream_init, .fini = fanout_plugin_state_free,
        .validate = s_stream_validate, .open = s_open, .send = fanout_stream_send,
        .close = fanout_stream_close, .target_limits = s_target_limits);
