/* The SDK's buffer, UTF-8, JSON string and base64 helpers (fanout/helpers.h),
 * linked into every plugin and into the engine: one implementation. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fanout/helpers.h"

/* ---- buffers ------------------------------------------------------------ */

int fanout_sbuf_reserve(struct fanout_sbuf *b, size_t extra)
{
    size_t need = b->len + extra + 1; /* keep room for the NUL */
    if (need < b->len)
        return -1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    uint8_t *p = realloc(b->bytes, cap);
    if (!p)
        return -1;
    b->bytes = p;
    b->cap = cap;
    return 0;
}

int fanout_sbuf_put(struct fanout_sbuf *b, const void *p, size_t n)
{
    if (fanout_sbuf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->bytes + b->len, p, n);
    b->len += n;
    b->bytes[b->len] = 0;
    return 0;
}

int fanout_sbuf_puts(struct fanout_sbuf *b, const char *s)
{
    return fanout_sbuf_put(b, s, strlen(s));
}

int fanout_sbuf_putc(struct fanout_sbuf *b, uint8_t c)
{
    return fanout_sbuf_put(b, &c, 1);
}

int fanout_sbuf_printf(struct fanout_sbuf *b, const char *fmt, ...)
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
    vsnprintf((char *)b->bytes + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
    return 0;
}

void fanout_sbuf_reset(struct fanout_sbuf *b)
{
    b->len = 0;
    if (b->bytes)
        b->bytes[0] = 0;
}

void fanout_sbuf_free(struct fanout_sbuf *b)
{
    free(b->bytes);
    b->bytes = NULL;
    b->len = b->cap = 0;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
size_t fanout_utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        if (n >= 2 && (s[1] & 0xC0) == 0x80)
            return 2;
        return 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && s[1] >= 0xA0)
            return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
            (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90)
            return 0;
        if (c == 0xF4 && s[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

int fanout_utf8_check(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* fast path over ASCII, 8 bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        size_t k = fanout_utf8_seq(s + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

int fanout_sbuf_json_str(struct fanout_sbuf *b, const void *src, size_t n)
{
    const uint8_t *s = src;
    static const char hex[] = "0123456789abcdef";
    /* worst case: every byte becomes \u00XX (6) or U+FFFD (3) */
    if (fanout_sbuf_reserve(b, n * 6 + 2) != 0)
        return -1;
    uint8_t *o = b->bytes + b->len;
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = c;
            i++;
            continue;
        }
        if (c < 0x80) {
            *o++ = '\\';
            switch (c) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = (uint8_t)hex[c >> 4];
                *o++ = (uint8_t)hex[c & 15];
            }
            i++;
            continue;
        }
        size_t k = fanout_utf8_seq(s + i, n - i);
        if (k) {
            memcpy(o, s + i, k);
            o += k;
            i += k;
        } else {
            *o++ = 0xEF;
            *o++ = 0xBF;
            *o++ = 0xBD;
            i++;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->bytes);
    b->bytes[b->len] = 0;
    return 0;
}

/* ---- base64 ------------------------------------------------------------- */

static const char s_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int fanout_sbuf_base64(struct fanout_sbuf *b, const void *src, size_t n)
{
    const uint8_t *p = src;
    size_t out = (n + 2) / 3 * 4;
    if (fanout_sbuf_reserve(b, out) != 0)
        return -1;
    uint8_t *o = b->bytes + b->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = (uint8_t)s_b64[v >> 18];
        *o++ = (uint8_t)s_b64[(v >> 12) & 63];
        *o++ = (uint8_t)s_b64[(v >> 6) & 63];
        *o++ = (uint8_t)s_b64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        *o++ = (uint8_t)s_b64[v >> 18];
        *o++ = (uint8_t)s_b64[(v >> 12) & 63];
        *o++ = i + 1 < n ? (uint8_t)s_b64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len += out;
    b->bytes[b->len] = 0;
    return 0;
}
