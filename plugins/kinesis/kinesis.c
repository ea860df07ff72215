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

static const struct fanout_host *s_host;

/* ---- destinations ---- */

static int s_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

static int s_name_ok(const char *s, size_t n)
{
    if (n < 1 || n > KINESIS_MAX_NAME_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!s_name_char(s[i]))
            return 0;
    return 1;
}

struct s_dest {
    const char *name;
    size_t name_len;
    const char *region; /* the ARN's, or NULL */
    size_t region_len;
    int arn;
};

/* Parse a destination; on error write what was expected. */
static int s_parse_dest(const char *d, struct s_dest *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (!d || !*d) {
        snprintf(err, err_len, "expected a Kinesis stream name or stream ARN, got nothing");
        return -1;
    }
    size_t n = strlen(d);
    if (strncmp(d, "arn:", 4) != 0) {
        if (s_name_ok(d, n)) {
            out->name = d;
            out->name_len = n;
            return 0;
        }
        const char *hint = strstr(d, "://") ? " (a URL is not a stream)" : "";
        snprintf(err, err_len,
                 "\"%.200s\"%s is not a Kinesis stream name ([a-zA-Z0-9_.-], 1 to %u "
                 "characters) nor a stream ARN "
                 "(arn:<partition>:kinesis:<region>:<account>:stream/<name>)",
                 d, hint, KINESIS_MAX_NAME_LEN);
        return -1;
    }
    /* arn:<partition>:<service>:<region>:<account>:<resource> */
    const char *f[6];
    size_t fl[6];
    const char *p = d;
    for (int i = 0; i < 6; i++) {
        const char *c = i < 5 ? strchr(p, ':') : p + strlen(p);
        if (!c)
            goto bad_arn;
        f[i] = p;
        fl[i] = (size_t)(c - p);
        p = c + 1;
    }
    if (fl[2] != 7 || strncmp(f[2], "kinesis", 7) != 0) {
        snprintf(err, err_len,
                 "\"%.200s\" is an ARN of service \"%.*s\", not a Kinesis stream ARN "
                 "(arn:<partition>:kinesis:<region>:<account>:stream/<name>)",
                 d, (int)(fl[2] > 40 ? 40 : fl[2]), f[2]);
        return -1;
    }
    if (!fanout_aws_partition_name_ok(f[1], fl[1]) ||
        !fanout_aws_region_name_ok(f[3], fl[3]) || fl[4] != 12 ||
        strspn(f[4], "0123456789") < 12 || fl[5] < 8 || strncmp(f[5], "stream/", 7) != 0 ||
        !s_name_ok(f[5] + 7, fl[5] - 7))
        goto bad_arn;
    out->arn = 1;
    out->name = f[5] + 7;
    out->name_len = fl[5] - 7;
    out->region = f[3];
    out->region_len = fl[3];
    return 0;
bad_arn:
    snprintf(err, err_len,
             "\"%.200s\" is not a Kinesis stream ARN: expected "
             "arn:<partition>:kinesis:<region>:<12-digit account>:stream/<name> with a "
             "name of [a-zA-Z0-9_.-], 1 to %u characters",
             d, KINESIS_MAX_NAME_LEN);
    return -1;
}

/* The destination, and its region against the mapping's. */
static int s_check_target(const struct fanout_target *t, struct s_dest *d, char *err,
                          size_t err_len)
{
    if (s_parse_dest(t->destination, d, err, err_len) != 0)
        return -1;
    if (d->arn && t->region &&
        (strlen(t->region) != d->region_len ||
         strncmp(t->region, d->region, d->region_len) != 0)) {
        snprintf(err, err_len,
                 "the stream ARN is in region %.*s but the mapping's \"region\" is %s; "
                 "drop \"region\" or make them agree",
                 (int)d->region_len, d->region, t->region);
        return -1;
    }
    return 0;
}

/* ---- the plugin ---- */

static int s_init(const struct fanout_host *host, void **state, struct fanout_error *err)
{
    if (!FANOUT_HOST_HAS(host, aws_call) || !FANOUT_HOST_HAS(host, aws_response_clean_up)) {
        snprintf(err->code, sizeof err->code, "%s", "EngineTooOld");
        snprintf(
            err->message, sizeof err->message,
            "the kinesis plugin needs the engine's AWS services (plugin ABI 1.1); this "
            "engine speaks %u.%u",
            host->abi_major, host->abi_minor);
        return -1;
    }
    s_host = host;
    *state = NULL;
    return 0;
}

static int s_validate(const struct fanout_target *t, char *err, size_t err_len)
{
    struct s_dest d;
    return s_check_target(t, &d, err, err_len);
}

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

static char *s_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void s_close(void *instance)
{
    struct kinesis_target *k = instance;
    if (!k)
        return;
    free(k->id);
    free(k->stream);
    free(k->stream_arn);
    free(k->region);
    free(k->role);
    free(k->external_id);
    free(k);
}

static int s_open(void *state, const struct fanout_target *t, void **out,
                  struct fanout_error *err)
{
    (void)state;
    struct s_dest d;
    if (s_check_target(t, &d, err->message, sizeof err->message) != 0) {
        snprintf(err->code, sizeof err->code, "%s", "InvalidDestination");
        return -1;
    }
    const struct kinesis_options *o = t->options;
    struct kinesis_target *k = calloc(1, sizeof *k);
    if (!k)
        goto oom;
    k->host = s_host;
    k->id = s_dup(t->id ? t->id : "kinesis");
    k->stream = fanout_strndup(d.name, d.name_len);
    if (d.arn)
        k->stream_arn = s_dup(t->destination);
    if (t->region)
        k->region = s_dup(t->region);
    else if (d.arn)
        k->region = fanout_strndup(d.region, d.region_len);
    k->role = s_dup(t->role);
    k->external_id = s_dup(t->external_id);
    k->ordered = !t->parallel;
    k->hash_long_keys = o ? o->hash_long_keys : 1;
    k->explicit_hashes = t->collapse == FANOUT_COLLAPSE_NONE;
    if (!k->id || !k->stream || (d.arn && !k->stream_arn) ||
        ((t->region || d.arn) && !k->region) || (t->role && !k->role) ||
        (t->external_id && !k->external_id))
        goto oom;
    *out = k;
    return 0;
oom:
    s_close(k);
    snprintf(err->code, sizeof err->code, "%s", "OutOfMemory");
    snprintf(err->message, sizeof err->message, "out of memory");
    return -1;
}

static int s_send(void *instance, const struct fanout_batch *batch,
                  struct fanout_outcome *outcomes)
{
    kinesis_put_records(instance, batch, outcomes);
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
        .init = s_init, .validate = s_validate, .open = s_open, .send = s_send,
        .close = s_close, .target_limits = s_target_limits);
