/*
 * Conveniences for plugin authors: a growable byte buffer, JSON string
 * escaping, base64, UTF-8 checks, ARN splitting, and mapping an AWS response
 * onto a message outcome.
 *
 * Not part of the ABI: the functions are `static inline` or in the static
 * library libfanout-sdk (pkg-config fanout-sdk --libs), compiled into the
 * plugin, so they need no engine symbol and may change between SDK releases
 * without breaking built plugins.
 */
#ifndef FANOUT_HELPERS_H
#define FANOUT_HELPERS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- a growable buffer ---------------------------------------------------- */

/* Zero-initialise; the byte after `len` is kept NUL, so text can be used as
 * a C string. `p` and `bytes` are the same storage, as text or as bytes.
 * Functions return 0, or -1 when out of memory (the buffer is then
 * unchanged). In libfanout-sdk (pkg-config fanout-sdk); the engine uses the
 * same code. */
struct fanout_sbuf {
    union {
        char *p;
        uint8_t *bytes;
    };
    size_t len;
    size_t cap;
};

int fanout_sbuf_reserve(struct fanout_sbuf *b, size_t extra);
int fanout_sbuf_put(struct fanout_sbuf *b, const void *src, size_t n);
int fanout_sbuf_puts(struct fanout_sbuf *b, const char *s);
int fanout_sbuf_putc(struct fanout_sbuf *b, uint8_t c);
int fanout_sbuf_printf(struct fanout_sbuf *b, const char *fmt, ...) FANOUT_PRINTF(2, 3);
/* The decimal digits of v written at out (at most FANOUT_DECIMAL_MAX, no
 * NUL); their count. For hot paths where snprintf's cost shows. */
#define FANOUT_DECIMAL_MAX 20
size_t fanout_decimal(char *out, uint64_t v);
/* Empty the buffer, keeping its storage. */
void fanout_sbuf_reset(struct fanout_sbuf *b);
void fanout_sbuf_free(struct fanout_sbuf *b);

/* ---- UTF-8 -------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s (n bytes left, n > 0), or 0
 * (no overlongs, no surrogates, nothing above U+10FFFF). */
size_t fanout_utf8_seq(const uint8_t *s, size_t n);

/* Non-zero when s[0..n) is valid UTF-8. */
int fanout_utf8_check(const uint8_t *s, size_t n);

/* ---- JSON strings and base64 ----------------------------------------------- */

/* Append s[0..n) as a JSON string literal, quotes included; invalid UTF-8
 * becomes U+FFFD so the output is always valid JSON. */
int fanout_sbuf_json_str(struct fanout_sbuf *b, const void *src, size_t n);

/* The base64 (standard alphabet, padded) of src[0..n) appended. */
int fanout_sbuf_base64(struct fanout_sbuf *b, const void *src, size_t n);

/* ---- ARNs --------------------------------------------------------------- */

/* arn:<partition>:<service>:<region>:<account>:<resource>, as spans into
 * the string (not NUL-terminated; region and account may be empty). */
struct fanout_arn {
    const char *partition, *service, *region, *account, *resource;
    size_t partition_len, service_len, region_len, account_len, resource_len;
};

/* Split an ARN. Returns 0, or -1 when it does not have the six parts with a
 * non-empty partition, service and resource. */
static inline int fanout_arn_split(const char *arn, struct fanout_arn *out)
{
    const char *parts[6];
    size_t lens[6];
    const char *p = arn;
    if (!arn || strncmp(arn, "arn:", 4) != 0)
        return -1;
    for (int i = 0; i < 6; i++) {
        const char *end = i < 5 ? strchr(p, ':') : p + strlen(p);
        if (!end)
            return -1;
        parts[i] = p;
        lens[i] = (size_t)(end - p);
        p = end + (i < 5);
    }
    if (!lens[1] || !lens[2] || !lens[5])
        return -1;
    *out = (struct fanout_arn){parts[1], parts[2], parts[3], parts[4], parts[5],
                               lens[1],  lens[2],  lens[3],  lens[4],  lens[5]};
    return 0;
}

/* A region as AWS names them ("us-east-1", "us-gov-west-1", "cn-north-1"):
 * 6 to 32 of [a-z0-9-], at least two '-', no "--", a digit last. */
static inline int fanout_aws_region_name_ok(const char *s, size_t n)
{
    size_t dashes = 0;
    if (n < 6 || n > 32 || s[0] == '-' || s[n - 1] < '0' || s[n - 1] > '9')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '-') {
            if (s[i - 1] == '-')
                return 0;
            dashes++;
        } else if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'))) {
            return 0;
        }
    }
    return dashes >= 2;
}

/* A partition name: "aws", or "aws-" and [a-z-] ("aws-cn", "aws-iso-b"). */
static inline int fanout_aws_partition_name_ok(const char *s, size_t n)
{
    if (n < 3 || strncmp(s, "aws", 3) != 0 || s[n - 1] == '-')
        return 0;
    for (size_t i = 3; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '-'))
            return 0;
    return n == 3 || s[3] == '-';
}

/* ---- AWS responses -------------------------------------------------------- */

/* The outcome of a whole request that did not succeed: THROTTLED ->
 * FANOUT_THROTTLED, RETRYABLE -> FANOUT_RETRY, FAILED -> FANOUT_FATAL, with
 * the service's code and message. Returns the status (FANOUT_OK on
 * success, leaving `o` untouched). */
static inline int fanout_aws_outcome(const struct fanout_aws_response *r,
                                     struct fanout_outcome *o)
{
    int st = r->result == FANOUT_AWS_OK          ? FANOUT_OK
             : r->result == FANOUT_AWS_THROTTLED ? FANOUT_THROTTLED
             : r->result == FANOUT_AWS_RETRYABLE ? FANOUT_RETRY
                                                 : FANOUT_FATAL;
    if (st != FANOUT_OK)
        fanout_outcome_set(o, st, r->error_code[0] ? r->error_code : "RequestFailed", "%s",
                           r->error_message[0] ? r->error_message : "the request failed");
    return st;
}

/* A copy of s[0..n) as a C string (NULL when out of memory). */
static inline char *fanout_strndup(const char *s, size_t n)
{
    char *c = (char *)malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = 0;
    }
    return c;
}

#ifdef __cplusplus
}
#endif

#endif /* FANOUT_HELPERS_H */
