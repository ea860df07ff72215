/* The SDK's buffer, UTF-8, JSON string and base64 helpers (fanout/helpers.h),
 * linked into every plugin and into the engine: one implementation. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fanout/helpers.h"
#include "fanout/swar.h"

#if FANOUT_HAVE_SSE2
#include <emmintrin.h>
#endif

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

size_t fanout_decimal(char *out, uint64_t v)
{
    size_t n = 1;
    for (uint64_t t = v; t >= 10; t /= 10)
        n++;
    for (size_t k = n; k-- > 0; v /= 10)
        out[k] = (char)('0' + v % 10);
    return n;
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
        /* fast path over ASCII, 16 bytes at a time with SSE2, then 8, then
         * byte by byte up to a sequence (not a call per byte of the tail) */
#if FANOUT_HAVE_SSE2
        while (n - i >= 16) {
            if (_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)(s + i))))
                break;
            i += 16;
        }
#endif
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL)
                break;
            i += 8;
        }
        while (i < n && s[i] < 0x80)
            i++;
        if (i >= n)
            break;
        size_t k = fanout_utf8_seq(s + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

/* The bytes of v (8 read from memory) that are not copied as they are
 * into a JSON string, each marked by its high bit: below 0x20, '"', '\\',
 * 0x80 and above. The classic "has a zero byte" bit tricks: a borrow can
 * mark a byte above a marked one, never below, so the lowest mark is
 * exact. */
static uint64_t s_word_escapes(uint64_t v)
{
    return fanout_swar_high(v) | fanout_swar_below(v, 0x20) | fanout_swar_eq(v, '"') |
           fanout_swar_eq(v, '\\');
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
        /* 8 bytes at a time up to the first that needs a look (SQS
         * message bodies went through the byte loop below at 15
         * instructions a byte) */
        while (n - i >= 8) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            uint64_t marks = s_word_escapes(v);
            memcpy(o, &v, 8); /* room: 6 bytes reserved per byte */
            if (marks) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                size_t k = (size_t)__builtin_ctzll(marks) / 8;
                o += k;
                i += k;
#endif
                break;
            }
            o += 8;
            i += 8;
        }
        if (i == n)
            break;
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

/* 12 input bytes to 16 characters, 16 bytes read (x86-64: SSSE3, chosen
 * at run time), in the way of W. Mula and D. Lemire ("Faster Base64
 * Encoding and Decoding Using AVX2 Instructions", 2018) as aklomp/base64
 * writes it: a shuffle puts each 3 bytes' 24 bits in a 32-bit lane, two
 * multiplies move its four 6-bit values to one byte each, and a table per
 * range of values (A-Z, a-z, 0-9, '+', '/') gives what to add. Returns the
 * input bytes encoded (a multiple of 12); the scalar loop does the rest. */
#if FANOUT_HAVE_X86_SIMD
#include <immintrin.h>

__attribute__((target("ssse3"))) static size_t s_b64_ssse3(const uint8_t *in, size_t n,
                                                           uint8_t *out)
{
    const __m128i shuf = _mm_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1);
    const __m128i lut =
        _mm_setr_epi8(65, 71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 0, 0);
    size_t i = 0;
    for (; n - i >= 16; i += 12, out += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(in + i));
        v = _mm_shuffle_epi8(v, shuf);
        __m128i hi = _mm_mulhi_epu16(_mm_and_si128(v, _mm_set1_epi32(0x0FC0FC00)),
                                     _mm_set1_epi32(0x04000040));
        __m128i lo = _mm_mullo_epi16(_mm_and_si128(v, _mm_set1_epi32(0x003F03F0)),
                                     _mm_set1_epi32(0x01000010));
        __m128i idx = _mm_or_si128(hi, lo); /* each byte a 6-bit value */
        /* 0..25 -> 0, 26..51 -> 1, 52..61 -> 2..11, 62 -> 12, 63 -> 13 */
        __m128i range = _mm_subs_epu8(idx, _mm_set1_epi8(51));
        range = _mm_sub_epi8(range, _mm_cmpgt_epi8(idx, _mm_set1_epi8(25)));
        _mm_storeu_si128((__m128i *)(void *)out,
                         _mm_add_epi8(idx, _mm_shuffle_epi8(lut, range)));
    }
    return i;
}

static int s_b64_has_ssse3(void)
{
    static int has; /* 0: not asked yet, 1: no, 2: yes */
    int h = __atomic_load_n(&has, __ATOMIC_RELAXED);
    if (!h) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("ssse3") ? 2 : 1;
        __atomic_store_n(&has, h, __ATOMIC_RELAXED);
    }
    return h == 2;
}

static size_t s_b64_simd(const uint8_t *in, size_t n, uint8_t *out)
{
    return n >= 16 && s_b64_has_ssse3() ? s_b64_ssse3(in, n, out) : 0;
}
#else
static size_t s_b64_simd(const uint8_t *in, size_t n, uint8_t *out)
{
    (void)in;
    (void)n;
    (void)out;
    return 0;
}
#endif

int fanout_sbuf_base64(struct fanout_sbuf *b, const void *src, size_t n)
{
    const uint8_t *p = src;
    size_t out = (n + 2) / 3 * 4;
    if (fanout_sbuf_reserve(b, out) != 0)
        return -1;
    uint8_t *o = b->bytes + b->len;
    size_t i = s_b64_simd(p, n, o);
    o += i / 3 * 4;
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
