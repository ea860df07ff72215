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

static const struct fanout_host *s_host;

/* ---- destinations ---- */

static int s_name_ok(const char *s, size_t n)
{
    if (n < 1 || n > FIREHOSE_MAX_NAME_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

struct s_dest {
    const char *name;
    size_t name_len;
    const char *region; /* the ARN's, or NULL */
    size_t region_len;
};

static int s_parse_dest(const char *d, struct s_dest *out, char *err, size_t err_len)
{
    static const char prefix[] = "deliverystream/";
    const size_t plen = sizeof prefix - 1;
    memset(out, 0, sizeof *out);
    if (!d || !*d) {
        snprintf(err, err_len, "expected a Firehose stream name or ARN, got nothing");
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
                 "\"%.200s\"%s is not a Firehose stream name ([a-zA-Z0-9_.-], 1 to %u "
                 "characters) nor a Firehose stream ARN "
                 "(arn:<partition>:firehose:<region>:<account>:deliverystream/<name>)",
                 d, hint, FIREHOSE_MAX_NAME_LEN);
        return -1;
    }
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
    if (fl[2] != 8 || strncmp(f[2], "firehose", 8) != 0) {
        snprintf(err, err_len,
                 "\"%.200s\" is an ARN of service \"%.*s\", not a Firehose stream ARN "
                 "(arn:<partition>:firehose:<region>:<account>:deliverystream/<name>)",
                 d, (int)(fl[2] > 40 ? 40 : fl[2]), f[2]);
        return -1;
    }
    if (!fanout_aws_partition_name_ok(f[1], fl[1]) ||
        !fanout_aws_region_name_ok(f[3], fl[3]) || fl[4] != 12 ||
        strspn(f[4], "0123456789") < 12 || fl[5] <= plen ||
        strncmp(f[5], prefix, plen) != 0 || !s_name_ok(f[5] + plen, fl[5] - plen))
        goto bad_arn;
    out->name = f[5] + plen;
    out->name_len = fl[5] - plen;
    out->region = f[3];
    out->region_len = fl[3];
    return 0;
bad_arn:
    snprintf(err, err_len,
             "\"%.200s\" is not a Firehose stream ARN: expected "
             "arn:<partition>:firehose:<region>:<12-digit account>:deliverystream/<name> "
             "with a name of [a-zA-Z0-9_.-], 1 to %u characters",
             d, FIREHOSE_MAX_NAME_LEN);
    return -1;
}

static int s_check_target(const struct fanout_target *t, struct s_dest *d, char *err,
                          size_t err_len)
{
    if (s_parse_dest(t->destination, d, err, err_len) != 0)
        return -1;
    if (d->region && t->region &&
        (strlen(t->region) != d->region_len ||
         strncmp(t->region, d->region, d->region_len) != 0)) {
        snprintf(
            err, err_len,
            "the Firehose stream ARN is in region %.*s but the mapping's \"region\" is "
            "%s; drop \"region\" or make them agree",
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
        snprintf(err->message, sizeof err->message,
                 "the firehose plugin needs the engine's AWS services (plugin ABI 1.1); "
                 "this engine speaks %u.%u",
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

static char *s_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void s_close(void *instance)
{
    struct firehose_target *f = instance;
    if (!f)
        return;
    free(f->id);
    free(f->stream);
    free(f->region);
    free(f->role);
    free(f->external_id);
    free(f);
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
    const struct firehose_options *o = t->options;
    struct firehose_target *f = calloc(1, sizeof *f);
    if (!f)
        goto oom;
    f->host = s_host;
    f->id = s_dup(t->id ? t->id : "firehose");
    f->stream = fanout_strndup(d.name, d.name_len);
    if (t->region)
        f->region = s_dup(t->region);
    else if (d.region)
        f->region = fanout_strndup(d.region, d.region_len);
    f->role = s_dup(t->role);
    f->external_id = s_dup(t->external_id);
    f->append_newline = o && o->append_newline;
    if (!f->id || !f->stream || ((t->region || d.region) && !f->region) ||
        (t->role && !f->role) || (t->external_id && !f->external_id))
        goto oom;
    *out = f;
    return 0;
oom:
    s_close(f);
    snprintf(err->code, sizeof err->code, "%s", "OutOfMemory");
    snprintf(err->message, sizeof err->message, "out of memory");
    return -1;
}

static int s_send(void *instance, const struct fanout_batch *batch,
                  struct fanout_outcome *outcomes)
{
    firehose_put_record_batch(instance, batch, outcomes);
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
        .init = s_init, .validate = s_validate, .open = s_open, .send = s_send,
        .close = s_close, .target_limits = s_target_limits);
