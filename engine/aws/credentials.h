/* Credentials: the standard provider chain, and STS AssumeRole for
 * cross-account targets, cached and refreshed before they expire. */
#ifndef FANOUT_CREDENTIALS_H
#define FANOUT_CREDENTIALS_H

#include <stddef.h>
#include <stdint.h>

struct fanout_credentials {
    char access_key_id[128];
    char secret_access_key[128];
    char session_token[4096]; /* empty for long-term keys */
    int64_t expires_ms;       /* Unix epoch ms; 0 = does not expire */
    char source[32];          /* "environment", "profile", "container",
                                 "assume-role", "web-identity", "sso",
                                 "process", "instance-metadata": messages */
};

/* Credentials for a request: the base chain (the aws command's: environment,
 * the AWS_PROFILE profile with its role / web identity / SSO / keys /
 * credential_process, container credentials, instance metadata) or,
 * with `role_arn`, that role assumed through STS (in `region`) with the
 * base credentials and `external_id`. Cached; refreshed when less than the
 * refresh margin (FANOUT_CREDENTIALS_REFRESH_SECONDS, default 300, or a
 * quarter of the lifetime when shorter) is left; `force` refreshes now
 * (after an expired-token error). Thread-safe. Returns 0, or -1 with err
 * (never containing a secret).
 *
 * Retries: one fetch at a time per key, shared by every caller waiting for
 * it; STS and the container endpoint are retried inside that fetch (up to
 * FANOUT_AWS_MAX_ATTEMPTS, within the deadline), as nothing else retries
 * them. A fetch that failed with no usable credentials to fall back on is
 * not repeated for 5 s: its error is returned meanwhile, `force` included,
 * so the engine's retries of record sends, other batches and other targets
 * of the same role do not multiply the requests to STS. */
int fanout_credentials_get(const char *role_arn, const char *external_id,
                           const char *region, int force, struct fanout_credentials *out,
                           char *err, size_t err_len);

/* The invocation's deadline hook (ms left; NULL: none): STS and container
 * requests are cut to it, and not retried past it. Set by fanout_aws_init. */
void fanout_credentials_set_deadline(int64_t (*remaining_ms)(void));

/* Forget every cached credential (tests). */
void fanout_credentials_reset(void);

#endif
