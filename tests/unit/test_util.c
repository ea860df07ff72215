#include <check.h>

#include "check_main.h"
#include <stdlib.h>
#include <string.h>

#include "common/base64_simd.h"
#include "common/log.h"
#include "common/util.h"

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

static char *s_b64(const char *in, size_t n)
{
    struct fanout_sbuf b = {0};
    ck_assert_int_eq(fanout_sbuf_base64(&b, (const uint8_t *)in, n), 0);
    return b.bytes ? (char *)b.bytes : strdup("");
}

START_TEST(base64_rfc4648_vectors)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *e = s_b64(plain[i], strlen(plain[i]));
        ck_assert_str_eq(e, enc[i]);
        free(e);
        uint8_t out[16];
        size_t bad = 99;
        long n = fanout_base64_decode(enc[i], strlen(enc[i]), out, &bad);
        ck_assert_int_eq(n, (long)strlen(plain[i]));
        ck_assert(memcmp(out, plain[i], (size_t)n) == 0);
    }
}
END_TEST

START_TEST(base64_binary_roundtrip)
{
    uint8_t in[256], out[300];
    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)(255 - i);
    for (size_t n = 0; n <= 256; n += 17) {
        char *e = s_b64((const char *)in, n);
        ck_assert_uint_eq(strlen(e), fanout_base64_encoded_len(n));
        long m = fanout_base64_decode(e, strlen(e), out, NULL);
        ck_assert_int_eq(m, (long)n);
        ck_assert(memcmp(in, out, n) == 0);
        free(e);
    }
}
END_TEST

START_TEST(base64_strict_errors)
{
    uint8_t out[32];
    size_t bad;
    /* length not a multiple of 4 */
    ck_assert_int_eq(fanout_base64_decode("Zm9", 3, out, &bad), -1);
    ck_assert_uint_eq(bad, 3);
    /* a character outside the alphabet, and its offset */
    ck_assert_int_eq(fanout_base64_decode("Zm9v!mFy", 8, out, &bad), -1);
    ck_assert_uint_eq(bad, 4);
    /* URL-safe alphabet is not the standard one */
    ck_assert_int_eq(fanout_base64_decode("_-8=", 4, out, &bad), -1);
    ck_assert_uint_eq(bad, 0);
    /* whitespace is refused */
    ck_assert_int_eq(fanout_base64_decode("Zm9v Zg==", 9, out, &bad), -1);
    /* padding in the middle */
    ck_assert_int_eq(fanout_base64_decode("Zg==Zm9v", 8, out, &bad), -1);
    /* non-canonical trailing bits */
    ck_assert_int_eq(fanout_base64_decode("Zh==", 4, out, &bad), -1);
    ck_assert_int_eq(fanout_base64_decode("Zm9=", 4, out, &bad), -1);
    /* a lone '=' in the third place */
    ck_assert_int_eq(fanout_base64_decode("Zm=v", 4, out, &bad), -1);
}
END_TEST

/* The decoder as RFC 4648 reads it, one character at a time: the result
 * and the offset of the first offending character that
 * fanout_base64_decode must give, whatever SIMD does for it. */
static long s_b64_ref(const char *in, size_t n, uint8_t *out, size_t *bad)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n % 4) {
        *bad = n;
        return -1;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], last = i + 4 == n;
        int pad = last && in[i + 3] == '=' ? (in[i + 2] == '=' ? 2 : 1) : 0;
        for (int k = 0; k < 4 - pad; k++) {
            const char *p = in[i + k] ? strchr(abc, in[i + k]) : NULL;
            if (!p) {
                *bad = i + (size_t)k;
                return -1;
            }
            v[k] = (int)(p - abc);
        }
        if ((pad == 2 && (v[1] & 15)) || (pad == 1 && (v[2] & 3))) {
            *bad = i + (pad == 2 ? 1 : 2); /* non-canonical trailing bits */
            return -1;
        }
        out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
        if (pad < 2)
            out[o++] = (uint8_t)(v[1] << 4 | v[2] >> 2);
        if (pad < 1)
            out[o++] = (uint8_t)(v[2] << 6 | v[3]);
    }
    return (long)o;
}

/* Decoding in place (the event's text, fanout_event_parse_in_place):
 * the bytes of every length 0..300 (each padding), and every SIMD
 * instruction set on its own with out == in. */
START_TEST(base64_in_place)
{
    uint8_t in[300];
    char text[404 + 1];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 181 + 7);
    for (size_t n = 0; n <= sizeof in; n++) {
        char *e = s_b64((const char *)in, n);
        size_t len = strlen(e);
        memcpy(text, e, len + 1);
        size_t bad = 77;
        long m = fanout_base64_decode_in_place(text, len, &bad);
        ck_assert_int_eq(m, (long)n);
        ck_assert_msg(memcmp(text, in, n) == 0, "length %zu", n);
        /* and back, over the same bytes */
        fanout_base64_encode_back(text, n);
        ck_assert_msg(memcmp(text, e, len) == 0, "length %zu: %.*s", n, (int)len, text);
        for (int isa = FANOUT_B64_SSSE3; len >= 20 && isa <= FANOUT_B64_AVX2; isa++) {
            if (!fanout_base64_simd_has((enum fanout_b64_isa)isa))
                continue;
            uint8_t ref[404];
            size_t want = fanout_base64_decode_simd_isa((enum fanout_b64_isa)isa,
                                                        (const uint8_t *)e, len - 4, ref);
            memcpy(text, e, len + 1);
            size_t got = fanout_base64_decode_simd_isa(
                (enum fanout_b64_isa)isa, (const uint8_t *)text, len - 4, (uint8_t *)text);
            ck_assert_uint_eq(got, want);
            ck_assert_msg(memcmp(text, in, got / 4 * 3) == 0, "isa %d length %zu", isa, n);
        }
        free(e);
    }
}
END_TEST

/* A bad character (or padding, or trailing bits) at every offset of texts
 * up to 300 bytes: the error names it and the text is as it was (the quads
 * decoded before it encoded back, SIMD stores past them included). */
START_TEST(base64_in_place_bad_leaves_text)
{
    uint8_t in[225];
    char text[300 + 1];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 97 + 3);
    for (size_t n = 1; n <= sizeof in; n += 7) {
        char *e = s_b64((const char *)in, n);
        size_t len = strlen(e);
        static const char bads[] = {'!', '-', '\\', '=', '\0'};
        for (size_t at = 0; at < len; at++)
            for (size_t b = 0; b < sizeof bads; b++) {
                memcpy(text, e, len + 1);
                text[at] = bads[b];
                char before[300 + 1];
                memcpy(before, text, len + 1);
                size_t bad = 999;
                long m = fanout_base64_decode_in_place(text, len, &bad);
                if (m >= 0) /* '=' where padding may be: maybe valid */
                    continue;
                ck_assert_uint_le(bad, at);
                ck_assert_msg(memcmp(text, before, len) == 0, "length %zu, '%c' at %zu", n,
                              bads[b] ? bads[b] : '0', at);
            }
        /* a length not a multiple of 4: nothing written */
        memcpy(text, e, len + 1);
        ck_assert_int_eq(fanout_base64_decode_in_place(text, len - 1, NULL), -1);
        ck_assert(memcmp(text, e, len) == 0);
        free(e);
    }
    /* non-canonical trailing bits after decoded quads */
    char nc[] = "Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZh==";
    char keep[sizeof nc];
    memcpy(keep, nc, sizeof nc);
    size_t bad;
    ck_assert_int_eq(fanout_base64_decode_in_place(nc, strlen(nc), &bad), -1);
    ck_assert_uint_eq(bad, strlen(nc) - 3);
    ck_assert_str_eq(nc, keep);
}
END_TEST

START_TEST(base64_simd_matches_reference)
{
    /* every length up to 100 with and without padding, each with one
     * character replaced (anything: alphabet, '=', whitespace, bytes of
     * 0x80 and up) at every offset: the result, the bytes and the offset
     * named are the reference's; and each SIMD kernel the CPU has decodes
     * every whole block of 16 before the first character outside the
     * alphabet, as the reference does (checked with plain tests and one
     * assertion per case: check's assertions are slow by the million) */
    static const char odd[] = {'=',        ' ',        '\n', '-', '_', '.',
                               '@',        '[',        '`',  '{', 0,   (char)0x80,
                               (char)0xC3, (char)0xFF, 'A',  '/', '+', '9'};
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t in[100], ref[104], got[104 + 8], simd[104 + 8];
    unsigned seed = 1;
    size_t cases = 0;
    for (size_t n = 0; n <= 100; n++) {
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (uint8_t)(seed >> 16);
        }
        char *e = s_b64((const char *)in, n);
        size_t len = strlen(e);
        char t[140];
        for (size_t at = 0; at <= len; at++) {
            for (size_t k = 0; k < (at < len ? sizeof odd : 1); k++, cases++) {
                memcpy(t, e, len);
                if (at < len)
                    t[at] = odd[k];
                size_t bad_ref = 0, bad = 0;
                long want = s_b64_ref(t, len, ref, &bad_ref);
                memset(got, 0xAA, sizeof got);
                long m = fanout_base64_decode(t, len, got, &bad);
                int ok = m == want &&
                         (want < 0 ? bad == bad_ref : memcmp(got, ref, (size_t)want) == 0);
                /* nothing written past what the caller is told to hold */
                for (size_t b = fanout_base64_decoded_max(len); b < sizeof got; b++)
                    ok &= got[b] == 0xAA;
                size_t stop = 0;
                while (len > 4 && stop < len - 4 && t[stop] && strchr(abc, t[stop]))
                    stop++;
                for (int isa = FANOUT_B64_SSSE3; len > 4 && isa <= FANOUT_B64_AVX2; isa++) {
                    if (!fanout_base64_simd_has((enum fanout_b64_isa)isa))
                        continue;
                    memset(simd, 0xAA, sizeof simd);
                    size_t done = fanout_base64_decode_simd_isa(
                        (enum fanout_b64_isa)isa, (const uint8_t *)t, len - 4, simd);
                    ok &= done == stop / 16 * 16 && memcmp(simd, ref, done / 4 * 3) == 0;
                    for (size_t b = fanout_base64_decoded_max(len); b < sizeof simd; b++)
                        ok &= simd[b] == 0xAA;
                }
                if (!ok)
                    ck_abort_msg("base64 of %zu characters, 0x%02x at %zu: %ld (bad at "
                                 "%zu), the reference %ld (bad at %zu)",
                                 len, (uint8_t)t[at < len ? at : 0], at, m, bad, want,
                                 bad_ref);
            }
        }
        free(e);
    }
    ck_assert_uint_gt(cases, 40000);
}
END_TEST

START_TEST(utf8_validation)
{
    ck_assert(fanout_utf8_check((const uint8_t *)"", 0));
    ck_assert(fanout_utf8_check((const uint8_t *)"plain ascii text, long enough", 29));
    ck_assert(
        fanout_utf8_check((const uint8_t *)"\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80", 9));
    ck_assert(!fanout_utf8_check((const uint8_t *)"\xc3", 1));             /* truncated */
    ck_assert(!fanout_utf8_check((const uint8_t *)"\xc0\xaf", 2));         /* overlong */
    ck_assert(!fanout_utf8_check((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
    ck_assert(!fanout_utf8_check((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    ck_assert(!fanout_utf8_check((const uint8_t *)"abcdefgh\xff", 9));
}
END_TEST

START_TEST(json_validation)
{
    static const char *const good[] = {
        "{}",
        "[]",
        "0",
        "-0.5e+10",
        "\"\\u00e9\\n\"",
        " {\"a\":[1,true,false,null]} ",
        "{\"k\":{\"n\":{\"m\":[[],{}]}}}",
        "\"\xc3\xbc\"",
        "1E5",
    };
    static const char *const bad[] = {
        "",          "{",     "[1,]",  "{\"a\":1,}", "01",      "1.",
        ".5",        "+1",    "tru",   "nul",        "\"\\x\"", "\"a",
        "{\"a\" 1}", "[1 2]", "{} {}", "\"\t\"",     "NaN",     "\"\\u12G4\"",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        ck_assert_msg(fanout_json_valid((const uint8_t *)good[i], strlen(good[i])),
                      "should be valid: %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!fanout_json_valid((const uint8_t *)bad[i], strlen(bad[i])),
                      "should be invalid: %s", bad[i]);
    /* invalid UTF-8 inside a string */
    ck_assert(!fanout_json_valid((const uint8_t *)"\"\xff\"", 3));
    /* nesting is bounded rather than recursing without end */
    size_t n = 100000;
    char *deep = malloc(n);
    memset(deep, '[', n);
    ck_assert(!fanout_json_valid((const uint8_t *)deep, n));
    free(deep);
}
END_TEST

START_TEST(json_string_escaping)
{
    struct fanout_sbuf b = {0};
    const char in[] = "q\"b\\n\n\x01\xc3\xbc\xff";
    ck_assert_int_eq(fanout_sbuf_json_str(&b, (const uint8_t *)in, sizeof in - 1), 0);
    ck_assert_str_eq((char *)b.bytes, "\"q\\\"b\\\\n\\n\\u0001\xc3\xbc\xef\xbf\xbd\"");
    ck_assert(fanout_json_valid(b.bytes, b.len));
    fanout_sbuf_free(&b);
}
END_TEST

START_TEST(buf_and_arena)
{
    struct fanout_sbuf b = {0};
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(fanout_sbuf_printf(&b, "%d,", i), 0);
    ck_assert_uint_eq(b.bytes[b.len], 0);
    ck_assert(strncmp((char *)b.bytes, "0,1,2,", 6) == 0);
    fanout_sbuf_free(&b);

    struct fanout_arena a = {0};
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 1000; i++) {
            char *s = fanout_arena_sprintf(&a, "item-%d", i);
            ck_assert_str_eq(s, s + 0);
            ck_assert(((uintptr_t)s & 15) == 0);
        }
        void *big = fanout_arena_alloc(&a, 1 << 20); /* bigger than a chunk */
        ck_assert_ptr_nonnull(big);
        memset(big, 1, 1 << 20);
        char *small = fanout_arena_strdup(&a, "after the big one");
        ck_assert_str_eq(small, "after the big one");
        fanout_arena_reset(&a);
        ck_assert_uint_eq(a.total, 0);
    }
    /* reset keeps the chunks: the next invocation's first allocations come
     * from one of them, not from malloc */
    void *first = fanout_arena_alloc(&a, 64);
    fanout_arena_reset(&a);
    ck_assert_ptr_nonnull(a.spare);
    void *again = fanout_arena_alloc(&a, 64);
    ck_assert_ptr_nonnull(again);
    ck_assert_ptr_eq(first, again);
    fanout_arena_free(&a);
    ck_assert_ptr_null(a.spare);
}
END_TEST

/* Whether the 4 KiB page at p is resident. */
static int s_resident(const void *p)
{
    unsigned char v = 0;
    void *page = (void *)((uintptr_t)p & ~(uintptr_t)4095);
    ck_assert_int_eq(mincore(page, 4096, &v), 0);
    return v & 1;
}

/* The VmFlags of the mapping holding `p` (/proc/self/smaps) name `flag`;
 * -1 when there is no smaps to read. */
static int s_vm_flag(const void *p, const char *flag)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[512];
    int in = 0, found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long from, to;
        if (sscanf(line, "%lx-%lx ", &from, &to) == 2 &&
            strchr(line, '-') < strchr(line, ' ')) {
            in = (uintptr_t)p >= from && (uintptr_t)p < to;
        } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            for (char *t = strtok(line + 8, " \n"); t; t = strtok(NULL, " \n"))
                found |= strcmp(t, flag) == 0;
            break;
        }
    }
    fclose(f);
    return found;
}

/* trim gives back the pages of a chunk past what the arena handed out,
 * and keeps what it handed out (and the arena usable after). */
START_TEST(arena_trim_gives_back_the_unused_tail)
{
    struct fanout_arena a = {0};
    enum { BLOCK = 4000, SMALL = 16, BIG = 400 };
    /* the first (small) chunk, then 1.6 MB of a mapped 2 MiB chunk, touched */
    uint8_t *last = NULL;
    for (int i = 0; i < SMALL + BIG; i++) {
        last = fanout_arena_alloc(&a, BLOCK);
        ck_assert_ptr_nonnull(last);
        memset(last, 0x5a, BLOCK);
    }
    fanout_arena_reset(&a);
    /* again: the small chunk, then one block at the start of the big one */
    uint8_t *p = NULL;
    for (int i = 0; i <= SMALL; i++) {
        p = fanout_arena_alloc(&a, BLOCK);
        memset(p, i, BLOCK);
    }
    uintptr_t base = (uintptr_t)p & ~(uintptr_t)(2 * 1024 * 1024 - 1);
    ck_assert_uint_lt((uintptr_t)p - base, 64 * 1024); /* a mapped chunk's start */
    ck_assert(s_resident(last));                       /* touched before the reset */
    fanout_arena_trim(&a);
    for (uintptr_t q = ((uintptr_t)p + BLOCK + 4095) & ~(uintptr_t)4095;
         q < (uintptr_t)last + BLOCK; q += 4096)
        ck_assert_msg(!s_resident((void *)q), "page at +%zu still resident",
                      (size_t)(q - base));
    /* and the tail out of huge pages: khugepaged would collapse the chunk
     * (up to 511 of 512 pages empty) and make it resident again (a kernel
     * without transparent huge pages refuses the madvise: nothing to check) */
    int nh = access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0
                 ? s_vm_flag(last, "nh")
                 : -1;
    if (nh >= 0)
        ck_assert_msg(nh, "the trimmed tail may still be collapsed into a huge page");
    for (int k = 0; k < BLOCK; k++)
        ck_assert_uint_eq(p[k], SMALL);
    uint8_t *after = fanout_arena_alloc(&a, BLOCK);
    ck_assert_ptr_eq(after, p + BLOCK);
    /* past the page the kept block ends in: given back, so zero again */
    uint8_t *from = (uint8_t *)(((uintptr_t)after + 4095) & ~(uintptr_t)4095);
    for (uint8_t *q = from; q < after + BLOCK; q++)
        ck_assert_uint_eq(*q, 0);
    /* once a chunk: filled again (a warm invocation), its tail stays */
    memset(after, 1, BLOCK);
    fanout_arena_trim(&a);
    ck_assert(s_resident(after + BLOCK - 1));
    fanout_arena_free(&a);
}
END_TEST

START_TEST(quote_caps_and_marks)
{
    char buf[FANOUT_QUOTE_SIZE];
    const char *s = "short";
    ck_assert_ptr_eq(fanout_quote(buf, s), s);
    ck_assert_str_eq(fanout_quote(buf, NULL), "");
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    big[FANOUT_QUOTE_MAX] = 0;
    ck_assert_ptr_eq(fanout_quote(buf, big), big); /* exactly the cap: as is */
    big[FANOUT_QUOTE_MAX] = 'a';
    const char *q = fanout_quote(buf, big);
    ck_assert_ptr_eq(q, buf);
    ck_assert_uint_eq(strspn(q, "a"), FANOUT_QUOTE_MAX);
    ck_assert_str_eq(q + FANOUT_QUOTE_MAX, "\xe2\x80\xa6(999 bytes)");
    /* a cut never splits a UTF-8 character */
    for (size_t i = 1; i + 1 < sizeof big - 1; i += 2) { /* odd: 0xa9 at the cap */
        big[i] = (char)0xc3;
        big[i + 1] = (char)0xa9;
    }
    q = fanout_quote(buf, big);
    size_t kept = strlen(q) - strlen(strstr(q, "\xe2\x80\xa6("));
    ck_assert_uint_le(kept, FANOUT_QUOTE_MAX);
    ck_assert(fanout_utf8_check((const uint8_t *)q, strlen(q)));
}
END_TEST

static char *s_logged(int json, const char *scope, const char *msg)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    fanout_log_set(FANOUT_LOG_INFO, json);
    fanout_log_set_fd(fileno(f));
    fanout_log(FANOUT_LOG_ERROR, scope, "%s", msg);
    fanout_log_set_fd(-1);
    long n = ftell(f) >= 0 ? lseek(fileno(f), 0, SEEK_END) : 0;
    char *out = calloc(1, (size_t)n + 1);
    ck_assert_int_eq(pread(fileno(f), out, (size_t)n, 0), n);
    fclose(f);
    return out;
}

START_TEST(log_escapes_and_caps)
{
    char *t = s_logged(0, "id\x1b[2J", "a\rb\nc\td\x7f");
    ck_assert_msg(strstr(t, "[id\\x1b[2J] a\\x0db c\\x09d\\x7f\n"), "%s", t);
    ck_assert_ptr_null(strchr(t, '\x1b'));
    free(t);
    t = s_logged(1, "id\x1b", "a\rb\x01");
    ck_assert_msg(strstr(t, "\"scope\":\"id\\u001b\",\"message\":\"a\\rb\\u0001\"}"), "%s",
                  t);
    free(t);
    /* a 1 MB scope (a mapping id) is capped, in both formats */
    size_t n = 1 << 20;
    char *scope = malloc(n + 1);
    memset(scope, 's', n);
    scope[n] = 0;
    for (int json = 0; json < 2; json++) {
        t = s_logged(json, scope, "m");
        ck_assert_uint_lt(strlen(t), 600);
        ck_assert_msg(strstr(t, "\xe2\x80\xa6(1048576 bytes)"), "%s", t);
        free(t);
    }
    free(scope);
}
END_TEST

START_TEST(log_levels_and_formats)
{
    ck_assert_int_eq(fanout_log_parse_level("INFO"), FANOUT_LOG_INFO);
    ck_assert_int_eq(fanout_log_parse_level("warn"), FANOUT_LOG_WARN);
    ck_assert_int_eq(fanout_log_parse_level("Warning"), FANOUT_LOG_WARN);
    ck_assert_int_eq(fanout_log_parse_level("TRACE"), FANOUT_LOG_DEBUG);
    ck_assert_int_eq(fanout_log_parse_level("debug"), FANOUT_LOG_DEBUG);
    ck_assert_int_eq(fanout_log_parse_level("ERROR"), FANOUT_LOG_ERROR);
    ck_assert_int_eq(fanout_log_parse_level("FATAL"), -1);
    ck_assert_int_eq(fanout_log_parse_level("loud"), -2);
    ck_assert_int_eq(fanout_log_parse_level(NULL), -2);
    /* FANOUT_LOG_FORMAT wins; then a terminal reads text; then Lambda's */
    ck_assert(fanout_log_json_wanted("json", NULL, 1));
    ck_assert(!fanout_log_json_wanted("text", "JSON", 0));
    ck_assert(!fanout_log_json_wanted(NULL, "JSON", 1));
    ck_assert(fanout_log_json_wanted(NULL, "JSON", 0));
    ck_assert(fanout_log_json_wanted("", "json", 0));
    ck_assert(!fanout_log_json_wanted(NULL, "Text", 0));
    ck_assert(!fanout_log_json_wanted(NULL, NULL, 0));
}
END_TEST

START_TEST(log_request_id)
{
    fanout_log_set_request_id("8476a536-e9f4-11e8-9739-2dfe598c3fcd");
    char *t = s_logged(1, "out", "m");
    ck_assert_msg(strstr(t, "\"level\":\"ERROR\",\"requestId\":\"8476a536-e9f4-11e8-9739-"
                            "2dfe598c3fcd\",\"scope\":\"out\",\"message\":\"m\"}\n"),
                  "%s", t);
    free(t);
    t = s_logged(0, "out", "m"); /* the text format is unchanged */
    ck_assert_ptr_null(strstr(t, "8476a536"));
    free(t);
    char big[300];
    memset(big, 'r', sizeof big - 1);
    big[sizeof big - 1] = 0;
    fanout_log_set_request_id(big); /* cut */
    t = s_logged(1, NULL, "m");
    ck_assert_uint_lt(strlen(t), 250);
    free(t);
    fanout_log_set_request_id(NULL);
    t = s_logged(1, NULL, "m");
    ck_assert_ptr_null(strstr(t, "requestId"));
    free(t);
    /* FATAL filters every line of fanout's */
    fanout_log_set_level((enum fanout_log_level)fanout_log_parse_level("FATAL"));
    ck_assert(!fanout_log_enabled(FANOUT_LOG_ERROR));
    fanout_log_set_level(FANOUT_LOG_INFO);
    ck_assert(fanout_log_enabled(FANOUT_LOG_ERROR));
}
END_TEST

/* What fanout sets for its own libraries stays out of the processes it
 * starts; a variable the user set is neither changed nor hidden. */
static int s_in_env(char **env, const char *entry)
{
    for (; *env; env++)
        if (!strcmp(*env, entry))
            return 1;
    return 0;
}

START_TEST(own_env_hidden_from_children)
{
    ck_assert_int_eq(setenv("FANOUT_TEST_USER_SET", "mine", 1), 0);
    unsetenv("FANOUT_TEST_OWN");
    fanout_env_set_own("FANOUT_TEST_OWN", "1");
    fanout_env_set_own("FANOUT_TEST_USER_SET", "theirs");
    ck_assert_str_eq(getenv("FANOUT_TEST_OWN"), "1");
    ck_assert_str_eq(getenv("FANOUT_TEST_USER_SET"), "mine");
    char **env = fanout_child_env();
    ck_assert_ptr_nonnull(env);
    ck_assert(!s_in_env(env, "FANOUT_TEST_OWN=1"));
    ck_assert(s_in_env(env, "FANOUT_TEST_USER_SET=mine"));
    size_t n = 0, m = 0;
    while (env[n])
        n++;
    extern char **environ;
    while (environ[m])
        m++;
    ck_assert_uint_eq(n + 1, m); /* only that one left out */
    free(env);
}
END_TEST

START_TEST(type_names)
{
    ck_assert(fanout_valid_type_name("sqs"));
    ck_assert(fanout_valid_type_name("my_plugin-2"));
    ck_assert(!fanout_valid_type_name(""));
    ck_assert(!fanout_valid_type_name("../sqs"));
    ck_assert(!fanout_valid_type_name("a/b"));
    ck_assert(!fanout_valid_type_name("sqs.so"));
    ck_assert(!fanout_valid_type_name("SQS"));
    ck_assert(!fanout_valid_type_name(NULL));
    char longname[66];
    memset(longname, 'a', 65);
    longname[65] = 0;
    ck_assert(!fanout_valid_type_name(longname));
    longname[64] = 0;
    ck_assert(fanout_valid_type_name(longname));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, base64_rfc4648_vectors);
    tcase_add_test(tc, base64_binary_roundtrip);
    tcase_add_test(tc, base64_strict_errors);
    tcase_add_test(tc, base64_simd_matches_reference);
    tcase_add_test(tc, base64_in_place);
    tcase_add_test(tc, base64_in_place_bad_leaves_text);
    tcase_add_test(tc, utf8_validation);
    tcase_add_test(tc, json_validation);
    tcase_add_test(tc, json_string_escaping);
    tcase_add_test(tc, buf_and_arena);
    tcase_add_test(tc, arena_trim_gives_back_the_unused_tail);
    tcase_add_test(tc, type_names);
    tcase_add_test(tc, own_env_hidden_from_children);
    tcase_add_test(tc, quote_caps_and_marks);
    tcase_add_test(tc, log_escapes_and_caps);
    tcase_add_test(tc, log_levels_and_formats);
    tcase_add_test(tc, log_request_id);
    suite_add_tcase(s, tc);
    return fanout_check_run(s);
}
