/*
 * Header-only conveniences for plugin authors: a growable byte buffer, JSON
 * string escaping, base64, UTF-8 checks, ARN splitting, and mapping an AWS
 * response onto a message outcome.
 *
 * Not part of the ABI: everything here is `static inline` and compiled into
 * the plugin, so it needs no engine symbol and may change between SDK
 * releases without breaking built plugins.
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

/* Zero-initialise; the byte after `len` is kept NUL. Functions return 0, or
 * -1 when out of memory (the buffer is then unchanged). */
struct fanout_sbuf {
    char *p;
    size_t len;
    size_t cap;
};

static inline int fanout_sbuf_reserve(struct fanout_sbuf *b, size_t extra)
{
    if (b->len + extra + 1 < b->len)
        return -1;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *p = (char *)realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int fanout_sbuf_put(struct fanout_sbuf *b, const void *src, size_t n)
{
    if (fanout_sbuf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->p + b->len, src, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

static inline int fanout_sbuf_puts(struct fanout_sbuf *b, const char *s)
{
    return fanout_sbuf_put(b, s, strlen(s));
}

static inline int fanout_sbuf_printf(struct fanout_sbuf *b, const char *fmt, ...)
    FANOUT_PRINTF(2, 3);
static inline int fanout_sbuf_printf(struct fanout_sbuf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || fanout_sbuf_reserve(b, (size_t)n) != 0) {
        va_end(ap2);
        return -1;
    }
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
    return 0;
}

static inline void fanout_sbuf_free(struct fanout_sbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- UTF-8 -------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s (n bytes left), or 0 (no
 * overlongs, no surrogates, nothing above U+10FFFF). */
static inline size_t fanout_utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t k = c < 0x80                 ? 1
               : c >= 0xC2 && c <= 0xDF ? 2
               : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4
                                        : 0;
    if (!k || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0) ||
        (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))
        return 0;
    return k;
}

/* Non-zero when s[0..n) is valid UTF-8. */
static inline int fanout_utf8_check(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = fanout_utf8_seq(s + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

/* ---- JSON strings and base64 ----------------------------------------------- */

/* Append s[0..n) as a JSON string, quotes included; invalid UTF-8 becomes
 * U+FFFD so the output is always valid JSON. */
static inline int fanout_sbuf_json_str(struct fanout_sbuf *b, const void *src, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *s = (const uint8_t *)src;
    int rc = fanout_sbuf_put(b, "\"", 1);
    size_t run = 0, i = 0;
    while (i < n && rc == 0) {
        uint8_t c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        size_t k = c >= 0x80 ? fanout_utf8_seq(s + i, n - i) : 0;
        if (k) {
            i += k;
            continue;
        }
        rc |= fanout_sbuf_put(b, s + run, i - run);
        char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
        switch (c) {
        case '"': rc |= fanout_sbuf_puts(b, "\\\""); break;
        case '\\': rc |= fanout_sbuf_puts(b, "\\\\"); break;
        case '\n': rc |= fanout_sbuf_puts(b, "\\n"); break;
        case '\r': rc |= fanout_sbuf_puts(b, "\\r"); break;
        case '\t': rc |= fanout_sbuf_puts(b, "\\t"); break;
        default:
            if (c < 0x20)
                rc |= fanout_sbuf_put(b, esc, 6);
            else
                rc |= fanout_sbuf_puts(b, "\xEF\xBF\xBD"); /* invalid UTF-8 */
        }
        run = ++i;
    }
    rc |= fanout_sbuf_put(b, s + run, n - run);
    return rc | fanout_sbuf_put(b, "\"", 1);
}

/* The base64 (standard alphabet, padded) of src[0..n) appended. */
static inline int fanout_sbuf_base64(struct fanout_sbuf *b, const void *src, size_t n)
{
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *p = (const uint8_t *)src;
    if (fanout_sbuf_reserve(b, (n + 2) / 3 * 4) != 0)
        return -1;
    char *o = b->p + b->len;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        *o++ = t[v >> 18];
        *o++ = t[(v >> 12) & 63];
        *o++ = i + 1 < n ? t[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? t[v & 63] : '=';
    }
    b->len = (size_t)(o - b->p);
    b->p[b->len] = 0;
    return 0;
}

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
