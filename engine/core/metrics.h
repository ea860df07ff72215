/* Metrics of one invocation in CloudWatch Embedded Metric Format (EMF):
 * JSON documents, one per line on stdout, that CloudWatch Logs turns into
 * metrics with no API call on the hot path.
 *
 * Per invocation, one document per target, then one for the invocation:
 * - a target's: dimension set [TargetId, TargetType]; metrics RecordsIn,
 *   Delivered, Failed, Retried (records resent), Requests (send calls),
 *   all Count, Duration (the invocation's, Milliseconds) and BatchAge
 *   (Milliseconds: the invocation's start minus the oldest arrival time of
 *   the target's source records, when the event gives one); properties
 *   SourceArn, Destination and requestId (Lambda).
 * - the invocation's: dimension set [FunctionName] under Lambda (an empty
 *   set elsewhere); metrics Records, FailedRecords, Targets (Count),
 *   Duration and BatchAge (the event's oldest record).
 * Target documents rather than one directive per target in one document:
 * dimension values are root members, so one document holds one TargetId.
 * At most 7 metrics and 2 dimensions per document (EMF: 100 and 30). */
#ifndef FANOUT_METRICS_H
#define FANOUT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "core/engine.h"

#define FANOUT_METRICS_NAMESPACE_DEFAULT "FanOut"
#define FANOUT_METRICS_NAMESPACE_MAX     255

struct fanout_metrics_config {
    int enabled;
    char ns[FANOUT_METRICS_NAMESPACE_MAX + 1];
};

/* FANOUT_METRICS (emf|on|true|1 or off|false|0; `default_on` when unset)
 * and FANOUT_METRICS_NAMESPACE (default "FanOut"; CloudWatch's rules: 1 to
 * 255 of A-Z a-z 0-9 . - _ / # : and space, not starting with "AWS/").
 * Returns -1 with err for a malformed value. */
int fanout_metrics_config_from_env(struct fanout_metrics_config *c, int default_on,
                                   char *err, size_t err_len);

/* 1 when `ns` is a usable CloudWatch namespace. */
int fanout_metrics_namespace_valid(const char *ns);

struct fanout_metrics_context {
    const char *ns;
    const char *request_id;    /* NULL: none (fanout invoke) */
    const char *function_name; /* NULL: none; the invocation's dimension */
    int64_t now_ms;            /* the documents' Timestamp */
};

/* Append the documents of `res` to `out`, one line each. Returns 0, or -1
 * when out of memory. */
int fanout_metrics_emf(const struct fanout_result *res,
                       const struct fanout_metrics_context *ctx, struct fanout_sbuf *out);

/* The documents of `res` written to `fd` (stdout) with one write(2) where
 * the pipe allows; the time and Lambda's function name are taken here. A
 * failure is logged. */
void fanout_metrics_emit(const struct fanout_metrics_config *c,
                         const struct fanout_result *res, const char *request_id, int fd);

#endif
