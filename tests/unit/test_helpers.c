/* The SDK's header-only helpers for plugin authors (fanout/helpers.h). */
#include <check.h>

#include "check_main.h"

#include <fanout/helpers.h>
#include <fanout/jplain.h>
#include <jansson.h>

START_TEST(sbuf_grows_and_formats)
{
    struct fanout_sbuf b = {0};
    for (int i = 0; i < 2000; i++)
        ck_assert_int_eq(fanout_sbuf_printf(&b, "%d,", i), 0);
    ck_assert(strncmp(b.p, "0,1,2,", 6) == 0);
    ck_assert_int_eq(b.p[b.len], 0);
    ck_assert_int_eq(fanout_sbuf_puts(&b, "end"), 0);
    ck_assert(strcmp(b.p + b.len - 3, "end") == 0);
    fanout_sbuf_free(&b);
    ck_assert_ptr_null(b.p);
}
END_TEST

/* fanout_decimal against snprintf: every power of ten and its neighbours,
 * and the extremes. */
START_TEST(decimal_digits)
{
    uint64_t v = 1;
    for (int i = 0; i < 20; i++, v *= 10) {
        uint64_t probes[] = {v - 1, v, v + 1, v * 9 + 9};
        for (size_t k = 0; k < sizeof probes / sizeof *probes; k++) {
            char got[FANOUT_DECIMAL_MAX + 1], want[32];
            size_t n = fanout_decimal(got, probes[k]);
            got[n] = 0;
            snprintf(want, sizeof want, "%llu", (unsigned long long)probes[k]);
            ck_assert_str_eq(got, want);
        }
    }
    char got[FANOUT_DECIMAL_MAX + 1];
    got[fanout_decimal(got, UINT64_MAX)] = 0;
    ck_assert_str_eq(got, "18446744073709551615");
}
END_TEST

START_TEST(json_strings_always_valid)
{
    struct fanout_sbuf b = {0};
    const char in[] = "q\"\\\n\t\x01 \xc3\xbc \xf0\x9f\x98\x80 \xff \xed\xa0\x80 end";
    ck_assert_int_eq(fanout_sbuf_json_str(&b, in, sizeof in - 1), 0);
    json_error_t je;
    json_t *j = json_loadb(b.p, b.len, JSON_DECODE_ANY, &je);
    ck_assert_msg(j != NULL, "%s: %s", b.p, je.text);
    ck_assert_str_eq(
        json_string_value(j),
        "q\"\\\n\t\x01 \xc3\xbc \xf0\x9f\x98\x80 \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd"
        "\xef\xbf\xbd end");
    json_decref(j);
    fanout_sbuf_free(&b);
}
END_TEST

/* The 8-byte fast path hands every byte that needs a look to the byte
 * loop: each such byte at each offset of a longer string, and each byte
 * that needs none, comes back out of a JSON parser as it went in (an
 * invalid UTF-8 byte as U+FFFD), with the escapes of the byte loop. */
START_TEST(json_strings_every_offset)
{
    static const struct {
        const char *in, *out, *text; /* a byte or a sequence; decoded; as written */
    } probes[] = {
        {"\x01", "\x01", "\\u0001"},
        {"\x1f", "\x1f", "\\u001f"},
        {"\n", "\n", "\\n"},
        {"\"", "\"", "\\\""},
        {"\\", "\\", "\\\\"},
        {" ", " ", " "},
        {"\x7f", "\x7f", "\x7f"},
        {"\x80", "\xef\xbf\xbd", "\xef\xbf\xbd"},
        {"\xff", "\xef\xbf\xbd", "\xef\xbf\xbd"},
        {"\xc3\xbc", "\xc3\xbc", "\xc3\xbc"},
        {"!", "!", "!"},
        {"#", "#", "#"},
        {"[", "[", "["},
        {"]", "]", "]"},
        {"~", "~", "~"},
    };
    for (size_t k = 0; k < sizeof probes / sizeof *probes; k++) {
        for (size_t len = 1; len <= 40; len++) {
            for (size_t at = 0; at + strlen(probes[k].in) <= len; at++) {
                char in[64], want[64], text[80];
                memset(in, 'a', sizeof in);
                memcpy(in + at, probes[k].in, strlen(probes[k].in));
                size_t tail = len - at - strlen(probes[k].in);
                snprintf(want, sizeof want, "%.*s%s%.*s", (int)at, in, probes[k].out,
                         (int)tail, in + len - tail);
                snprintf(text, sizeof text, "\"%.*s%s%.*s\"", (int)at, in, probes[k].text,
                         (int)tail, in + len - tail);
                struct fanout_sbuf b = {0};
                ck_assert_int_eq(fanout_sbuf_json_str(&b, in, len), 0);
                ck_assert_str_eq(b.p, text);
                json_error_t je;
                json_t *j = json_loadb(b.p, b.len, JSON_DECODE_ANY, &je);
                ck_assert_msg(j != NULL, "%s: %s", b.p, je.text);
                ck_assert_str_eq(json_string_value(j), want);
                json_decref(j);
                fanout_sbuf_free(&b);
            }
        }
    }
}
END_TEST

/* The plain-string reader's 8-byte path: a byte that is not plain at any
 * offset of strings of 1..40 bytes makes the string not plain; a quote
 * ends it there. */
START_TEST(jplain_strings_every_offset)
{
    static const unsigned char bad[] = {0x00, 0x01, 0x1f, '\\', 0x7f, 0x80, 0xc3, 0xff};
    static const unsigned char good[] = {' ', '!', '#', '[', ']', '~'};
    for (size_t len = 1; len <= 40; len++) {
        for (size_t at = 0; at < len; at++) {
            char text[48];
            const char *s = NULL;
            size_t n = 0;
            memset(text, 'a', sizeof text);
            text[0] = '"';
            text[1 + len] = '"';
            const char *end = text + len + 2;
            ck_assert_ptr_eq(fanout_jplain_string(text, end, &s, &n), end);
            ck_assert_uint_eq(n, len);
            for (size_t k = 0; k < sizeof bad; k++) {
                text[1 + at] = (char)bad[k];
                ck_assert_msg(fanout_jplain_string(text, end, &s, &n) == NULL,
                              "byte 0x%02x at %zu of %zu read as plain", bad[k], at, len);
            }
            for (size_t k = 0; k < sizeof good; k++) {
                text[1 + at] = (char)good[k];
                ck_assert_ptr_eq(fanout_jplain_string(text, end, &s, &n), end);
                ck_assert_uint_eq(n, len);
            }
            text[1 + at] = '"';
            ck_assert_ptr_eq(fanout_jplain_string(text, end, &s, &n), text + at + 2);
            ck_assert_uint_eq(n, at);
            text[1 + at] = 'a';
            /* no closing quote: not a string */
            ck_assert_ptr_null(fanout_jplain_string(text, end - 1, &s, &n));
        }
    }
}
END_TEST

START_TEST(base64_vectors)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        struct fanout_sbuf b = {0};
        ck_assert_int_eq(fanout_sbuf_base64(&b, plain[i], strlen(plain[i])), 0);
        ck_assert_str_eq(b.p ? b.p : "", enc[i]);
        fanout_sbuf_free(&b);
    }
}
END_TEST

/* base64 one bit at a time: a reference unlike the encoder's */
static void s_b64_bits(const uint8_t *in, size_t n, char *out)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t bits = n * 8, o = 0;
    for (size_t at = 0; at < bits; at += 6) {
        unsigned v = 0;
        for (size_t k = at; k < at + 6; k++)
            v = v << 1 | (k < bits ? (in[k / 8] >> (7 - k % 8)) & 1u : 0u);
        out[o++] = a[v];
    }
    while (o % 4)
        out[o++] = '=';
    out[o] = 0;
}

/* Every length up to 300 (the SIMD part takes 12 bytes at a time, from 16
 * left), every byte value, after text already in the buffer. */
START_TEST(base64_lengths)
{
    uint8_t in[300];
    char want[401];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 167 + 13); /* 167 odd: all 256 values */
    for (size_t n = 0; n <= sizeof in; n++) {
        struct fanout_sbuf b = {0};
        ck_assert_int_eq(fanout_sbuf_puts(&b, "x:"), 0);
        ck_assert_int_eq(fanout_sbuf_base64(&b, in + (n % 7), n - (n % 7)), 0);
        s_b64_bits(in + (n % 7), n - (n % 7), want);
        ck_assert_uint_eq(b.len, 2 + strlen(want));
        ck_assert_msg(strcmp(b.p + 2, want) == 0, "length %zu: %s, expected %s",
                      n - (n % 7), b.p + 2, want);
        fanout_sbuf_free(&b);
    }
}
END_TEST

START_TEST(utf8)
{
    ck_assert(fanout_utf8_check((const uint8_t *)"plain \xc3\xbc", 8));
    ck_assert(!fanout_utf8_check((const uint8_t *)"\xc0\xaf", 2));
    ck_assert(!fanout_utf8_check((const uint8_t *)"\xed\xa0\x80", 3));
    ck_assert(!fanout_utf8_check((const uint8_t *)"\xf4\x90\x80\x80", 4));
    ck_assert(!fanout_utf8_check((const uint8_t *)"ab\xe2\x82", 4));
}
END_TEST

/* A sequence after every run of ASCII the fast paths read (16, 8 and one
 * byte at a time), and ASCII after it: valid, invalid and cut short. */
START_TEST(utf8_at_every_offset)
{
    static const struct {
        const char *seq;
        int valid;
    } seqs[] = {{"\xc3\xbc", 1}, {"\xe2\x82\xac", 1}, {"\xf0\x9f\x98\x80", 1},
                {"\xc0\xaf", 0}, {"\xed\xa0\x80", 0}, {"\x80", 0},
                {"\xff", 0}};
    uint8_t buf[96];
    for (size_t q = 0; q < sizeof seqs / sizeof seqs[0]; q++)
        for (size_t before = 0; before <= 40; before++)
            for (size_t after = 0; after <= 20; after++) {
                size_t sl = strlen(seqs[q].seq), n = before + sl + after;
                memset(buf, 'a', sizeof buf);
                memcpy(buf + before, seqs[q].seq, sl);
                ck_assert_msg(fanout_utf8_check(buf, n) == seqs[q].valid,
                              "sequence %zu after %zu bytes, %zu after it", q, before,
                              after);
                ck_assert_msg(fanout_utf8_check(buf, before + sl - 1) == (sl == 1),
                              "sequence %zu cut short after %zu bytes", q, before);
                ck_assert(fanout_utf8_check(buf, before));
            }
}
END_TEST

START_TEST(arns)
{
    struct fanout_arn a;
    ck_assert_int_eq(fanout_arn_split("arn:aws-cn:sqs:cn-north-1:123456789012:q", &a), 0);
    ck_assert(a.partition_len == 6 && !strncmp(a.partition, "aws-cn", 6));
    ck_assert(a.region_len == 10 && !strncmp(a.region, "cn-north-1", 10));
    ck_assert(a.resource_len == 1 && a.resource[0] == 'q');
    /* resources may contain ':' (Lambda qualifiers) and '/' */
    ck_assert_int_eq(fanout_arn_split("arn:aws:lambda:us-east-1:1:function:f:alias", &a),
                     0);
    ck_assert(a.resource_len == 16 && !strncmp(a.resource, "function:f:alias", 16));
    ck_assert_int_eq(fanout_arn_split("arn:aws:iam::123456789012:role/x", &a), 0);
    ck_assert_uint_eq(a.region_len, 0);
    ck_assert_int_eq(fanout_arn_split("arn:aws:sqs:us-east-1:1:", &a), -1);
    ck_assert_int_eq(fanout_arn_split("arn:aws:sqs", &a), -1);
    ck_assert_int_eq(fanout_arn_split("not-an-arn", &a), -1);
    ck_assert_int_eq(fanout_arn_split(NULL, &a), -1);
}
END_TEST

START_TEST(aws_outcomes)
{
    struct fanout_aws_response r = {.struct_size = sizeof r};
    struct fanout_outcome o = {0};
    r.result = FANOUT_AWS_OK;
    ck_assert_int_eq(fanout_aws_outcome(&r, &o), FANOUT_OK);
    ck_assert_int_eq(o.status, FANOUT_OK);
    r.result = FANOUT_AWS_THROTTLED;
    strcpy(r.error_code, "ThrottlingException");
    strcpy(r.error_message, "Rate exceeded");
    ck_assert_int_eq(fanout_aws_outcome(&r, &o), FANOUT_THROTTLED);
    ck_assert_str_eq(o.code, "ThrottlingException");
    ck_assert_str_eq(o.message, "Rate exceeded");
    r.result = FANOUT_AWS_RETRYABLE;
    ck_assert_int_eq(fanout_aws_outcome(&r, &o), FANOUT_RETRY);
    r.result = FANOUT_AWS_FAILED;
    r.error_code[0] = 0;
    r.error_message[0] = 0;
    ck_assert_int_eq(fanout_aws_outcome(&r, &o), FANOUT_FATAL);
    ck_assert_str_eq(o.code, "RequestFailed");
    char *d = fanout_strndup("abcdef", 3);
    ck_assert_str_eq(d, "abc");
    free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("helpers");
    TCase *tc = tcase_create("sdk");
    tcase_add_test(tc, sbuf_grows_and_formats);
    tcase_add_test(tc, decimal_digits);
    tcase_add_test(tc, utf8_at_every_offset);
    tcase_add_test(tc, json_strings_always_valid);
    tcase_add_test(tc, json_strings_every_offset);
    tcase_add_test(tc, jplain_strings_every_offset);
    tcase_add_test(tc, base64_vectors);
    tcase_add_test(tc, base64_lengths);
    tcase_add_test(tc, utf8);
    tcase_add_test(tc, arns);
    tcase_add_test(tc, aws_outcomes);
    suite_add_tcase(s, tc);
    return fanout_check_run(s);
}
