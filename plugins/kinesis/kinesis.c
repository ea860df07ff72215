/*
 * The `kinesis` destination: records into a Kinesis data stream with
 * PutRecords (kinesis_api.c), through the engine's AWS layer (endpoint,
 * region, credentials incl. AssumeRole for `role`, SigV4, retries).
 *
 * Destination: a stream name ([a-zA-Z0-9_.-]{1,128}) or a stream ARN
 * arn:<partition>:kinesis:<region>:<account>:stream/<name>. With an ARN the
 * request names the stream by StreamARN (a stream of another account, shared
 * by a resource policy, can only be named that way) and the ARN's region is
 * the target's region; a mapping `region` that says otherwise is refused.
 *
 * Sizes count the partition key plus the data, as Kinesis does. A stream
 * keeps a 1 MiB maximum record size until raised with UpdateMaxRecordSize;
 * the option `maxRecordSizeInKiB` (the same number, 1024..10240) tells the
 * plugin that the stream was raised.
 *
 * Partition keys: the record's key (the first record's with a collapse
 * mode). Kinesis takes 1 to 256 characters. A longer key, or one that is
 * not UTF-8 (only a KPL user record can carry one), is replaced by
 * "sha256:" and the hex SHA-256 of its bytes (`hashLongPartitionKeys`,
 * default true): the same key always maps to the same replacement, so
 * records of one key still share a shard and keep their order. With
 * `hashLongPartitionKeys: false` such a record fails for good, with the
 * reason. An empty key always fails. KPL user records that carry an
 * explicit hash key send it as ExplicitHashKey (collapse `none` only).
 *
 * Order: with `parallel: false` the engine sends this target's calls one at
 * a time and Kinesis keeps the order of one shard's records within a call.
 * Only a partial failure can reorder: the failed records are resent after
 * later records of the same key were written. That cannot be undone, so it
 * is logged as a warning naming the partition key.
 */
#include <stdlib.h>
#include <string.h>

#include "kinesis.h"

struct kinesis_options {
    int64_t max_record_kib;
    int hash_long_keys;
};

FANOUT_STREAM_ENTRY_POINTS(kinesis_kind)

static int s_target_limits(void *state, const struct fanout_target *t,
                           struct fanout_limits *lim, char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    const struct kinesis_options *o = t->options;
    int64_t kib = o ? o->max_record_kib : KINESIS_DEFAULT_RECORD_KIB;
    lim->max_message_bytes = (uint64_t)kib * 1024u;
    return 0;
}

static int s_open(void *state, const struct fanout_target *t, void **out,
                  struct fanout_error *err)
{
    const struct kinesis_options *o = t->options;
    struct kinesis_target *k = fanout_stream_open(&kinesis_kind, state, t, sizeof *k, err);
    if (!k)
        return -1;
    k->s.ordered = !t->parallel;
    k->hash_long_keys = o ? o->hash_long_keys : 1;
    k->explicit_hashes = t->collapse == FANOUT_COLLAPSE_NONE;
    *out = k;
    return 0;
}

static const struct fanout_option s_options[] = {
    {.name = "maxRecordSizeInKiB",
     .type = FANOUT_OPT_INT,
     .offset = offsetof(struct kinesis_options, max_record_kib),
     .default_int = KINESIS_DEFAULT_RECORD_KIB,
     .min = KINESIS_MIN_RECORD_KIB,
     .max = KINESIS_MAX_RECORD_KIB,
     .description = "the stream's maximum record size in KiB (partition key + data), as "
                    "set with UpdateMaxRecordSize; default 1024"},
    {.name = "hashLongPartitionKeys",
     .type = FANOUT_OPT_BOOL,
     .offset = offsetof(struct kinesis_options, hash_long_keys),
     .default_int = 1,
     .description = "send a partition key over 256 characters (or not UTF-8) as "
                    "\"sha256:<hex>\" of it; false: such a record fails"},
    {.name = NULL},
};

FANOUT_PLUGIN_DEFINE(
        .name = "kinesis", .version = "1.0.0",
        .description = "Kinesis Data Streams (PutRecords)",
        .destination_example =
            "my-stream or arn:aws:kinesis:us-east-1:123456789012:stream/my-stream",
        .limits = {.max_messages_per_call = KINESIS_MAX_RECORDS_PER_CALL,
                   .max_message_bytes = (uint64_t)KINESIS_DEFAULT_RECORD_KIB * 1024u,
                   .max_call_bytes = KINESIS_MAX_CALL_BYTES,
                   .key_counts = 1},
        .collapse_modes = FANOUT_COLLAPSE_ALL, .default_collapse = FANOUT_COLLAPSE_NONE,
        .options = s_options, .options_size = sizeof(struct kinesis_options),
        .init = s_stream_init, .fini = fanout_plugin_state_free,
        .validate = s_stream_validate, .open = s_open, .send = fanout_stream_send,
        .close = fanout_stream_close, .target_limits = s_target_limits);
