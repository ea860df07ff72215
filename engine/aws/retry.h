/* The retry policy of the AWS calls that retry themselves: the engine's
 * own calls through fanout_aws_call (mapping store, management commands),
 * STS AssumeRole and container credentials. Record sends are retried by
 * the engine alone (FANOUT_RETRY_ATTEMPTS; see client.h): the classification
 * below still tells them throttled from retryable from fatal. */
#ifndef FANOUT_RETRY_H
#define FANOUT_RETRY_H

#include <stddef.h>
#include <stdint.h>

struct fanout_retry_policy {
    unsigned max_attempts;       /* FANOUT_AWS_MAX_ATTEMPTS, default 5; not for
                                    record sends */
    unsigned base_ms;            /* FANOUT_AWS_RETRY_BASE_MS, default 50 */
    unsigned cap_ms;             /* FANOUT_AWS_RETRY_CAP_MS, default 5000 */
    unsigned request_timeout_ms; /* FANOUT_AWS_TIMEOUT_MS, one attempt, default 10000 */
};

/* Defaults, then the environment. Returns -1 with err for a bad value. */
int fanout_retry_policy_from_env(struct fanout_retry_policy *p, char *err, size_t err_len);

enum fanout_retry_class {
    FANOUT_RETRY_NONE = 0,      /* success */
    FANOUT_RETRY_THROTTLE = 1,  /* throttling error */
    FANOUT_RETRY_TRANSIENT = 2, /* 5xx, timeout, reset, connect failure */
    FANOUT_RETRY_EXPIRED = 3,   /* expired credentials: refresh, retry once */
    FANOUT_RETRY_FATAL = 4,     /* do not retry */
};

/* Classify an outcome: HTTP status (0 = none), the service's error code
 * (may be NULL) and the transport error (enum fanout_http_error). */
enum fanout_retry_class fanout_retry_classify(long status, const char *error_code,
                                              int transport_error);

/* Full jitter: a random delay in [0, min(cap, base * 2^(attempt-1))] for the
 * retry after `attempt` (1-based). `seed` is the caller's rand_r state. */
unsigned fanout_retry_delay_ms(const struct fanout_retry_policy *p, unsigned attempt,
                               unsigned *seed);

#endif
