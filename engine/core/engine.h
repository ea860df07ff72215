/* The engine: one invocation = decode, look up targets, batch, dispatch,
 * collect outcomes. Plugins, plugin instances and the mapping store live
 * across invocations. */
#ifndef FANOUT_ENGINE_H
#define FANOUT_ENGINE_H

#include <fanout/plugin.h>

#include "core/loader.h"
#include "core/mapping.h"
#include "common/util.h"

struct fanout_engine_config {
    const char *config_path; /* mapping file; NULL: the DynamoDB table */
    const char *table;       /* DynamoDB mapping table when no file */
    const char *plugin_path; /* NULL: the default search path */
    /* Targets (or parallel batches) in flight at once, at most (each
     * parallel target's own limit adapts below it, core/conc.h):
     * FANOUT_MAX_PARALLEL, default 16. */
    unsigned max_parallel;
    /* Attempts per message, the first included: FANOUT_RETRY_ATTEMPTS,
     * default 4. */
    unsigned retry_attempts;
    /* Backoff: full jitter over min(cap, base * 2^(attempt-1)) ms:
     * FANOUT_RETRY_BASE_MS (default 100), FANOUT_RETRY_CAP_MS (5000). */
    unsigned retry_base_ms;
    unsigned retry_cap_ms;
    /* Stop retrying when less than this is left before the deadline:
     * FANOUT_DEADLINE_MARGIN_MS, default 2000. */
    unsigned deadline_margin_ms;
    /* Seed for the backoff jitter (0: from the clock), for repeatable
     * tests: FANOUT_RETRY_SEED. */
    unsigned retry_seed;
    /* Plugin instances no mapping used for this long are closed (their
     * mapping changed or went away): FANOUT_INSTANCE_IDLE_SECONDS, default
     * 900. */
    unsigned instance_idle_s;
    /* FANOUT_SKIP_INVALID_MAPPINGS=true: an invalid mapping is skipped
     * (logged) instead of failing its source's records. */
    int skip_invalid_mappings;
};

/* Fill defaults, then apply the FANOUT_* environment variables. Returns -1
 * with err for a malformed value. */
int fanout_engine_config_from_env(struct fanout_engine_config *cfg, char *err,
                                  size_t err_len);

struct fanout_target_summary {
    char *source_arn;
    char *id;
    char *type;
    char *destination;
    size_t records;   /* decoded records for this target */
    size_t messages;  /* after collapse */
    size_t calls;     /* send calls, retries included */
    size_t delivered; /* records */
    size_t failed;    /* records */
    size_t filtered;  /* records the mapping's filter dropped (handled) */
    /* Records sent again after a retryable failure or throttling, once
     * per resend (a record resent twice counts 2). */
    size_t retried;
    /* Records it could not deliver that its on-failure destination
     * ("onFailure") confirmed: handled, not failed. */
    size_t on_failure;
    /* The oldest stream arrival time of its source's records (Unix epoch
     * ms), 0 when the event does not say. */
    int64_t oldest_arrival_ms;
    char *error; /* why the whole target failed (plugin refused...) */
};

struct fanout_result {
    size_t records;        /* records in the event */
    size_t failed_records; /* records that failed somewhere */
    int64_t started_ms;    /* when the invocation started (Unix epoch ms) */
    double duration_ms;    /* how long it took (monotonic clock) */
    /* The oldest stream arrival time of the event's records (Unix epoch
     * ms), 0 when the event does not say (SNS). */
    int64_t oldest_arrival_ms;
    /* The event came from SNS, which invokes asynchronously and reads any
     * answer as success: failed records can only fail the invocation
     * (batchItemFailures are for Kinesis and DynamoDB Streams). */
    int no_partial_response;
    size_t target_count;
    struct fanout_target_summary *targets;
    size_t failed_seq_count;
    char **failed_seqs; /* sequence numbers of failed records, event order */
};

struct fanout_engine;

struct fanout_engine *fanout_engine_new(const struct fanout_engine_config *cfg,
                                        const struct fanout_host *host, char *err,
                                        size_t err_len);
void fanout_engine_destroy(struct fanout_engine *e);

/* Run one event. Returns 0 when every record reached every active target,
 * 1 when some record failed (see `res`), -1 when the event is unusable (err
 * says why; nothing was sent). */
int fanout_engine_invoke(struct fanout_engine *e, const char *event, size_t len,
                         struct fanout_result *res, char *err, size_t err_len);
/* fanout_engine_invoke on an event whose text it may change (its Kinesis
 * records' data are decoded where they are: fanout_event_parse_in_place);
 * the text is not the event's any more after it. */
int fanout_engine_invoke_in_place(struct fanout_engine *e, char *event, size_t len,
                                  struct fanout_result *res, char *err, size_t err_len);
void fanout_result_clean_up(struct fanout_result *res);

/* {"batchItemFailures":[{"itemIdentifier":"<seq>"},...]} */
int fanout_result_response(const struct fanout_result *res, struct fanout_sbuf *out);

struct fanout_loader *fanout_engine_loader(struct fanout_engine *e);
struct fanout_store *fanout_engine_store(struct fanout_engine *e);

/* Check a mapping against its plugin (collapse mode accepted, options,
 * destination validator) without opening it. Returns 0, or -1 with err. */
int fanout_engine_check_mapping(struct fanout_engine *e, const struct fanout_mapping *m,
                                char *err, size_t err_len);

/* The same checks with the plugins of loader `l`, without an engine (the
 * management commands check one mapping before they write it). */
int fanout_mapping_check_plugin(struct fanout_loader *l, const struct fanout_mapping *m,
                                char *err, size_t err_len);

/* The host services table given to plugins. */
const struct fanout_host *fanout_host_default(void);

#endif
