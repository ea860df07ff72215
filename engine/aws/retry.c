/*
 * The retry policy of all AWS calls: settings, classification of an
 * outcome, and the backoff delay.
 *
 * Error codes are those of the AWS SDKs' "standard" retry mode:
 * botocore/retries/standard.py (github.com/boto/botocore, commit
 * 0719e79583bba4ce33d41f430ab6ca9658ed35a5: _THROTTLED_ERROR_CODES,
 * _TRANSIENT_ERROR_CODES, _TRANSIENT_STATUS_CODES, RetryIDPCommunicationError)
 * and botocore/data/_retry.json (commit 1521276d74f22677143cb8877f50709c8dbe32e7,
 * the legacy mode: 429, 500, 503, 509, Throttling/ThrottlingException,
 * Kinesis LimitExceededException, SQS RequestThrottled, EC2
 * RequestLimitExceeded, DynamoDB ProvisionedThroughputExceededException).
 * The same lists are in aws-sdk-js-v3's service-error-classification.
 * The throttling and transient codes are the SDK's (fanout/aws_codes.h),
 * so that plugins reading per-entry codes use the same lists.
 */
/* retry.h uses size_t without <stddef.h> */
#include <stddef.h>

#include "aws/retry.h"

#include <fanout/aws_codes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/http.h"

/* Expired credentials or request: refresh, sign again, retry once.
 * Not InvalidClientTokenId or UnrecognizedClientException: those say the
 * access key is unknown (deleted, another partition, a region not enabled
 * for the account), which fresh credentials from the same source do not
 * change, so they are fatal. RequestExpired (the signed time is too old,
 * e.g. after long backoff) is cured by signing again. */
static const char *const s_expired_codes[] = {
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
};

static int s_in(const char *const *list, size_t n, const char *code)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], code) == 0)
            return 1;
    return 0;
}

#define S_IN(list, code) s_in(list, sizeof list / sizeof *list, code)

enum fanout_retry_class fanout_retry_classify(long status, const char *error_code,
                                              int transport_error)
{
    /* A transport error wins over a status: a reset after the headers
     * leaves a truncated body. TLS failures (verification, handshake)
     * will not pass on a retry. */
    if (transport_error != FANOUT_HTTP_OK)
        return transport_error == FANOUT_HTTP_TLS ? FANOUT_RETRY_FATAL
                                                  : FANOUT_RETRY_TRANSIENT;
    int has_code = error_code && *error_code;
    /* The code decides first: services throttle with 400 (Throttling), 403
     * (SQS RequestThrottled) or 503 (EC2 RequestLimitExceeded, S3
     * SlowDown), and per-record codes come with a 200. */
    if (has_code) {
        if (S_IN(s_expired_codes, error_code))
            return FANOUT_RETRY_EXPIRED;
        if (fanout_aws_code_is_throttling(error_code))
            return FANOUT_RETRY_THROTTLE;
        if (fanout_aws_code_is_transient(error_code))
            return FANOUT_RETRY_TRANSIENT;
    }
    if (status >= 200 && status < 300)
        return has_code ? FANOUT_RETRY_FATAL : FANOUT_RETRY_NONE;
    /* 429 Too Many Requests (OpenSearch, Lambda); 509 Bandwidth Limit
     * Exceeded (_retry.json limit_exceeded). */
    if (status == 429 || status == 509)
        return FANOUT_RETRY_THROTTLE;
    /* Any 5xx: standard.py lists 500, 502, 503 and 504; the others (501,
     * 505...) are as likely to be a proxy's passing trouble. */
    if (status >= 500 && status < 600)
        return FANOUT_RETRY_TRANSIENT;
    /* 408 Request Timeout: the server (often a load balancer in front of
     * an OpenSearch domain or an emulator) gave up waiting for the
     * request; sending it again is safe (RFC 9110 15.5.9). */
    if (status == 408)
        return FANOUT_RETRY_TRANSIENT;
    /* No status and no transport error: nothing arrived. */
    if (status == 0)
        return has_code ? FANOUT_RETRY_FATAL : FANOUT_RETRY_TRANSIENT;
    return FANOUT_RETRY_FATAL;
}

/* ---- settings ---- */

struct s_setting {
    const char *name;
    unsigned min, max;
    size_t offset;
};

static const struct s_setting s_settings[] = {
    {"FANOUT_AWS_MAX_ATTEMPTS", 1, 20, offsetof(struct fanout_retry_policy, max_attempts)},
    {"FANOUT_AWS_RETRY_BASE_MS", 0, 60000, offsetof(struct fanout_retry_policy, base_ms)},
    {"FANOUT_AWS_RETRY_CAP_MS", 0, 300000, offsetof(struct fanout_retry_policy, cap_ms)},
    /* One attempt; Lambda's longest invocation is 15 minutes. */
    {"FANOUT_AWS_TIMEOUT_MS", 100, 900000,
     offsetof(struct fanout_retry_policy, request_timeout_ms)},
};

/* Decimal digits only: no sign, no spaces, no exponent. */
static int s_parse_uint(const char *s, unsigned long long *out)
{
    unsigned long long v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (~0ULL - 9) / 10)
            return -1;
        v = v * 10 + (unsigned)(*s - '0');
    }
    *out = v;
    return 0;
}

int fanout_retry_policy_from_env(struct fanout_retry_policy *p, char *err, size_t err_len)
{
    p->max_attempts = 5;
    p->base_ms = 50;
    p->cap_ms = 5000;
    p->request_timeout_ms = 10000;
    for (size_t i = 0; i < sizeof s_settings / sizeof *s_settings; i++) {
        const struct s_setting *s = &s_settings[i];
        const char *v = getenv(s->name);
        if (!v || !*v)
            continue;
        unsigned long long n;
        if (s_parse_uint(v, &n) != 0 || n < s->min || n > s->max) {
            char shown[24];
            size_t k = 0;
            for (; v[k] && k + 1 < sizeof shown; k++)
                shown[k] = (v[k] >= 0x20 && v[k] < 0x7f) ? v[k] : '?';
            shown[k] = '\0';
            if (err && err_len)
                snprintf(err, err_len, "%s=\"%s%s\": expected a whole number from %u to %u",
                         s->name, shown, v[k] ? "..." : "", s->min, s->max);
            return -1;
        }
        *(unsigned *)((char *)p + s->offset) = (unsigned)n;
    }
    if (p->cap_ms < p->base_ms) {
        if (err && err_len)
            snprintf(err, err_len,
                     "FANOUT_AWS_RETRY_CAP_MS (%u) is below FANOUT_AWS_RETRY_BASE_MS (%u)",
                     p->cap_ms, p->base_ms);
        return -1;
    }
    return 0;
}

/* ---- backoff ---- */

unsigned fanout_retry_delay_ms(const struct fanout_retry_policy *p, unsigned attempt,
                               unsigned *seed)
{
    if (!p)
        return 0;
    unsigned shift = attempt > 0 ? attempt - 1 : 0;
    /* base * 2^shift, capped, without overflow: base < 2^32 and shift < 32
     * keep the product under 2^64. */
    uint64_t ceiling = p->cap_ms;
    if (shift < 32) {
        uint64_t grown = (uint64_t)p->base_ms << shift;
        if (grown < ceiling)
            ceiling = grown;
    }
    if (ceiling == 0)
        return 0;
    if (!seed)
        return (unsigned)(ceiling / 2);
    /* 62 random bits from two rand_r draws; the modulo bias over at most
     * 2^32 + 1 values is below 2^-29. */
    uint64_t r =
        ((uint64_t)(unsigned)rand_r(seed) << 31) ^ (uint64_t)(unsigned)rand_r(seed);
    return (unsigned)(r % (ceiling + 1));
}
