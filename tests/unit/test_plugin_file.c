/*
 * The file plugin (file.c) through its descriptor: each message one JSON
 * line, in order, with its record's fields ("dataBase64"/"keyBase64" for
 * bytes that are not UTF-8, "records" for a collapsed message), appended
 * across calls; destinations and an open that fails.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fanout/helpers.h>

#include "check_main.h"
#include "reply_host.h"

extern const struct fanout_plugin fanout_plugin_v1;

static const struct fanout_plugin *const p = &fanout_plugin_v1;

static char s_path[64];

static void *s_open(const char *dest, void **state, struct fanout_error *err)
{
    void *inst = NULL;
    ck_assert_int_eq(p->init(&reply_host, state, err), 0);
    struct fanout_target t = {.struct_size = sizeof t, .id = "f", .destination = dest};
    if (p->open(*state, &t, &inst, err) != 0)
        return NULL;
    return inst;
}

/* The file's lines, in a buffer of `cap` bytes. */
static size_t s_lines(char *buf, size_t cap, char *lines[], size_t max)
{
    FILE *f = fopen(s_path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, cap - 1, f), k = 0;
    fclose(f);
    buf[n] = 0;
    for (char *s = buf, *nl; k < max && (nl = strchr(s, '\n')); s = nl + 1) {
        *nl = 0;
        lines[k++] = s;
    }
    return k;
}

START_TEST(lines_in_order)
{
    snprintf(s_path, sizeof s_path, "/tmp/fanout-test-file-%d.jsonl", (int)getpid());
    unlink(s_path);
    void *state = NULL;
    struct fanout_error err = {0};
    void *inst = s_open(s_path, &state, &err);
    ck_assert_msg(inst != NULL, "%s", err.message);
    struct reply_batch b;
    reply_batch_init(&b, 3);
    static const uint8_t bin[] = {0xff, 0x00, 'a'};
    b.msgs[1].body = bin;
    b.msgs[1].body_len = sizeof bin;
    b.msgs[2].key = bin;
    b.msgs[2].key_len = sizeof bin;
    ck_assert_int_eq(p->send(inst, &b.batch, b.out), 0);
    ck_assert_uint_eq(reply_batch_ok(&b, 3), 3);
    /* a second call appends; a collapsed message says how many records */
    struct reply_batch c;
    reply_batch_init(&c, 2);
    c.msgs[0].record_count = 2;
    c.batch.count = 1;
    c.batch.collapse = FANOUT_COLLAPSE_JSON;
    ck_assert_int_eq(p->send(inst, &c.batch, c.out), 0);
    p->close(inst);
    p->fini(state);

    char buf[4096], *l[8];
    ck_assert_uint_eq(s_lines(buf, sizeof buf, l, 8), 4);
    ck_assert_str_eq(l[0],
                     "{\"source\":\"arn:aws:kinesis:us-east-1:123456789012:stream/src\","
                     "\"key\":\"k0\",\"sequenceNumber\":"
                     "\"49590338271490256608559692538361571095921575989136588898\","
                     "\"subSequenceNumber\":0,\"action\":\"PUT\",\"data\":\"{\\\"n\\\":"
                     "0}\"}");
    ck_assert_msg(strstr(l[1], "\"key\":\"k1\"") &&
                      strstr(l[1], "\"dataBase64\":\"/wBh\"") && !strstr(l[1], "\"data\":"),
                  "%s", l[1]);
    ck_assert_msg(strstr(l[2], "\"keyBase64\":\"/wBh\"") &&
                      strstr(l[2], "\"subSequenceNumber\":2") &&
                      strstr(l[2], "\"data\":\"{\\\"n\\\":2}\""),
                  "%s", l[2]);
    ck_assert_msg(strstr(l[3], "\"records\":2") && !strstr(l[3], "\"action\""), "%s", l[3]);
    unlink(s_path);
}
END_TEST

/* "data" as the plain escaper would write it: '"', '\\', \n, \r, \t
 * by name, other bytes below 0x20 as \u00XX, the rest as they are. */
static size_t s_escaped(const uint8_t *d, size_t n, char *out)
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = d[i];
        if (c == '"' || c == '\\')
            o += (size_t)sprintf(out + o, "\\%c", c);
        else if (c == '\n')
            o += (size_t)sprintf(out + o, "\\n");
        else if (c == '\r')
            o += (size_t)sprintf(out + o, "\\r");
        else if (c == '\t')
            o += (size_t)sprintf(out + o, "\\t");
        else if (c < 0x20)
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        else
            out[o++] = (char)c;
    }
    out[o++] = '"';
    out[o] = 0;
    return o;
}

/* `body` sent as one message; the line it made, read from *f (opened at
 * the first call) into *line. */
static const char *s_send_line(void *inst, FILE **f, const uint8_t *body, size_t len,
                               char **line, size_t *line_cap)
{
    struct reply_batch b;
    reply_batch_init(&b, 1);
    b.msgs[0].body = body;
    b.msgs[0].body_len = len;
    ck_assert_int_eq(p->send(inst, &b.batch, b.out), 0);
    if (!*f) {
        *f = fopen(s_path, "r");
        ck_assert_ptr_nonnull(*f);
    }
    ck_assert_msg(getline(line, line_cap, *f) > 0, "no line for %zu bytes", len);
    return *line;
}

/* The line's "data", from its value on, when it is the reference escaping
 * of `body` (written into `want`) closing the line; NULL else. */
static const char *s_data_matches(const char *line, const uint8_t *body, size_t len,
                                  char *want)
{
    s_escaped(body, len, want);
    const char *data = strstr(line, ",\"data\":");
    ck_assert_ptr_nonnull(data);
    data += strlen(",\"data\":");
    size_t n = strlen(want);
    return strncmp(data, want, n) == 0 && strcmp(data + n, "}\n") == 0 ? NULL : data;
}

/* Every byte that needs an escape, alone or in runs, at every offset of
 * bodies of 0 to 70 bytes (the escaper reads 16 and 8 bytes at a time,
 * storing them before it looks), with UTF-8 and DEL around: the line
 * holds exactly the reference escaping. */
START_TEST(escapes_at_every_offset)
{
    snprintf(s_path, sizeof s_path, "/tmp/fanout-test-file-esc-%d.jsonl", (int)getpid());
    unlink(s_path);
    void *state = NULL;
    struct fanout_error err = {0};
    void *inst = s_open(s_path, &state, &err);
    ck_assert_msg(inst != NULL, "%s", err.message);
    static const uint8_t special[] = {'"', '\\', '\n', '\r', '\t', 0x01, 0x1f, 0x7f};
    static const char filler[] = "abc\xc3\xa9"
                                 "defghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMN"
                                 "OPQRSTUVWXYZ!#$%&'()*+,-./:;<=>?@[]^_`{|}~";
    uint8_t body[80];
    char want[80 * 6 + 8];
    char *line = NULL;
    size_t line_cap = 0, cases = 0;
    FILE *f = NULL;
    for (size_t len = 0; len <= 70; len++) {
        for (size_t at = 0; at <= len; at++) {
            for (size_t k = 0; k < sizeof special; k++) {
                memcpy(body, filler, len);
                if (at < len) {
                    body[at] = special[k];
                    /* a run of two at some offsets, and the last byte too */
                    if (k % 2 && at + 1 < len)
                        body[at + 1] = special[(k + 1) % sizeof special];
                    if (k == 3)
                        body[len - 1] = '"';
                }
                s_send_line(inst, &f, body, len, &line, &line_cap);
                /* the filler's one two-byte character cut or overwritten:
                 * not UTF-8, so base64 */
                int utf8 = 1;
                for (size_t i = 0; i < len; i++)
                    if ((body[i] == 0xc3) != (i + 1 < len && body[i + 1] == 0xa9) ||
                        (body[i] == 0xa9 && (i == 0 || body[i - 1] != 0xc3)))
                        utf8 = 0;
                if (!utf8) {
                    ck_assert_ptr_nonnull(strstr(line, "\"dataBase64\":"));
                    continue;
                }
                const char *bad = s_data_matches(line, body, len, want);
                ck_assert_msg(!bad, "len %zu, at %zu, byte 0x%02x: %s, expected %s", len,
                              at, special[k], bad, want);
                cases++;
                if (at == len)
                    break;
            }
        }
    }
    ck_assert_uint_gt(cases, 15000);
    free(line);
    fclose(f);
    p->close(inst);
    p->fini(state);
    unlink(s_path);
}
END_TEST

/* Bodies dense with escapes, as converted DynamoDB images are (a quote
 * every few bytes) and worse: several in one 16-byte block, whole blocks
 * of them, every byte one (the line six times the body, past the buffer's
 * first size), at lengths around the block size and far beyond. Each line
 * holds exactly the reference escaping. */
START_TEST(dense_escapes)
{
    snprintf(s_path, sizeof s_path, "/tmp/fanout-test-file-dense-%d.jsonl", (int)getpid());
    unlink(s_path);
    void *state = NULL;
    struct fanout_error err = {0};
    void *inst = s_open(s_path, &state, &err);
    ck_assert_msg(inst != NULL, "%s", err.message);
    static const uint8_t special[] = {'"', '\\', '\n', '\r', '\t', 0x01, 0x1f, 0x00};
    static const size_t lens[] = {0,  1,  2,  15, 16,  17,  31,  32,  33,   47,   48,
                                  49, 63, 64, 65, 100, 255, 256, 257, 1000, 4097, 20000};
    enum { S_MAX = 20000 };
    uint8_t *body = malloc(S_MAX);
    char *want = malloc(S_MAX * 6 + 8);
    ck_assert_ptr_nonnull(body);
    ck_assert_ptr_nonnull(want);
    char *line = NULL;
    size_t line_cap = 0, cases = 0;
    FILE *f = NULL;
    uint32_t seed = 12345;
    /* density: one byte in `every` needs an escape (1: all of them) */
    static const unsigned every[] = {1, 2, 3, 5, 8};
    for (size_t d = 0; d < sizeof every / sizeof every[0]; d++) {
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            size_t len = lens[l];
            for (size_t i = 0; i < len; i++) {
                seed = seed * 1103515245u + 12345u;
                unsigned r = seed >> 16;
                body[i] = r % every[d] == 0 ? special[(r / every[d]) % sizeof special]
                                            : (uint8_t)('a' + r % 26);
            }
            s_send_line(inst, &f, body, len, &line, &line_cap);
            const char *bad = s_data_matches(line, body, len, want);
            ck_assert_msg(!bad, "len %zu, one in %u escaped: %.200s, expected %.200s", len,
                          every[d], bad, want);
            cases++;
        }
    }
    ck_assert_uint_eq(cases, 5 * sizeof lens / sizeof lens[0]);
    free(line);
    free(body);
    free(want);
    fclose(f);
    p->close(inst);
    p->fini(state);
    unlink(s_path);
}
END_TEST

START_TEST(open_fails)
{
    void *state = NULL;
    struct fanout_error err = {0};
    ck_assert_ptr_null(s_open("/nonexistent-dir/x/y.jsonl", &state, &err));
    ck_assert_str_eq(err.code, "OpenFailed");
    ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent-dir/x/y.jsonl"));
    p->fini(state);
}
END_TEST

START_TEST(destinations)
{
    char err[128];
    struct fanout_target t = {.struct_size = sizeof t, .destination = "/tmp/x.jsonl"};
    ck_assert_int_eq(p->validate(&t, err, sizeof err), 0);
    t.destination = "-";
    ck_assert_int_eq(p->validate(&t, err, sizeof err), 0);
    t.destination = "";
    ck_assert_int_eq(p->validate(&t, err, sizeof err), -1);
    t.destination = "/tmp/x.jsonl";
    t.region = "us-east-1";
    ck_assert_int_eq(p->validate(&t, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "\"region\""));
    t.region = NULL;
    t.role = "arn:aws:iam::123456789012:role/r";
    ck_assert_int_eq(p->validate(&t, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "\"role\""));
}
END_TEST

/* ---- the escaper alone, against a plain byte-by-byte reference ---- */

int fanout_file_json_str(struct fanout_sbuf *b, const uint8_t *s, size_t n, int ssse3);

/* The reference escaping of `d` (quotes included) at `out`: its length. */
static size_t s_ref(const uint8_t *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = d[i];
        const char *named = c == '"'    ? "\""
                            : c == '\\' ? "\\"
                            : c == '\n' ? "n"
                            : c == '\r' ? "r"
                            : c == '\t' ? "t"
                                        : NULL;
        if (named) {
            out[o++] = '\\';
            out[o++] = named[0];
        } else if (c < 0x20) {
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hex[c >> 4];
            out[o + 5] = hex[c & 15];
            o += 6;
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    return o;
}

/* `s` (n bytes, the end of its allocation: a read past it is ASan's) by
 * both paths, each appended to 3 bytes already in a buffer of exactly the
 * size the escaper reserves first (a write past it is ASan's; an escape
 * grows it): "" when both match the reference, else what went wrong. */
static const char *s_esc_check(const uint8_t *s, size_t n, char *want, char *msg,
                               size_t cap)
{
    size_t wn = s_ref(s, n, want);
    for (int ssse3 = 0; ssse3 <= 1; ssse3++) {
        struct fanout_sbuf b = {.len = 3, .cap = 3 + n + 2 + 16 + 1};
        b.p = malloc(b.cap);
        ck_assert_ptr_nonnull(b.p);
        memcpy(b.p, "ab,", 3);
        ck_assert_int_eq(fanout_file_json_str(&b, s, n, ssse3), 0);
        if (b.len != 3 + wn || memcmp(b.p, "ab,", 3) != 0 ||
            memcmp(b.p + 3, want, wn) != 0 || b.p[b.len] != 0) {
            snprintf(msg, cap, "ssse3 %d, %zu bytes: got %.*s (%zu bytes), expected %.*s",
                     ssse3, n, (int)(b.len < 400 ? b.len : 400), b.p, b.len,
                     (int)(wn < 400 ? wn : 400), want);
            free(b.p);
            return msg;
        }
        free(b.p);
    }
    return "";
}

/* Every byte value (all 256) at every position of strings of 0 to 17
 * bytes (a block and a tail), alone and as a run of three; up to 70
 * bytes, a byte of each kind (the escapes' classes, their neighbours, and
 * UTF-8's) at every position: the whole square costs minutes under
 * valgrind. */
static const uint8_t s_kinds[] = {0x00, 0x01, '\t', '\n', '\r', 0x1f, ' ',  '!', '"',
                                  '#',  '[',  '\\', ']',  0x7f, 0x80, 0xc3, 0xff};
START_TEST(escaper_every_byte_everywhere)
{
    char want[80 * 6 + 8], msg[1200];
    size_t cases = 0;
    for (size_t len = 0; len <= 70; len++) {
        uint8_t *s = malloc(len ? len : 1);
        ck_assert_ptr_nonnull(s);
        const unsigned values = len <= 17 ? 256 : sizeof s_kinds;
        for (size_t at = 0; at < len; at++) {
            for (unsigned v = 0; v < values; v++) {
                const unsigned c = len <= 17 ? v : s_kinds[v];
                for (size_t i = 0; i < len; i++)
                    s[i] = (uint8_t)('a' + (i * 7) % 26);
                for (size_t k = at; k < len && k < at + (c & 1 ? 3 : 1); k++)
                    s[k] = (uint8_t)c;
                const char *bad = s_esc_check(s, len, want, msg, sizeof msg);
                ck_assert_msg(!*bad, "byte 0x%02x at %zu: %s", c, at, bad);
                cases++;
            }
        }
        if (!len)
            ck_assert_msg(!*s_esc_check(s, 0, want, msg, sizeof msg), "%s", msg);
        free(s);
    }
    ck_assert_uint_eq(cases,
                      256u * (17 * 18 / 2) + sizeof s_kinds * (70 * 71 / 2 - 17 * 18 / 2));
}
END_TEST

/* Every escape pattern of a 16-byte block (2^16), the flagged bytes '"'
 * and '\\' (the shuffle's), at block offset 16 of strings of 16 + 16 + 5
 * bytes (a whole block after, and a tail), one in three at offset 0 (the
 * string's first block); cycling through
 * all the kinds of escapes (the control characters' path), every pattern
 * of the block's first and last byte with one in 13 of the others (all
 * of them cost minutes under valgrind). */
START_TEST(escaper_every_mask)
{
    static const uint8_t quotes[] = {'"', '\\'};
    static const uint8_t all[] = {'"', '\\', '\n', 0x00, '"', '\t', 0x1f, '\r', '"'};
    enum { S_LEN = 37 };
    char want[S_LEN * 6 + 8], msg[1200];
    uint8_t *s = malloc(S_LEN);
    ck_assert_ptr_nonnull(s);
    for (unsigned kind = 0; kind < 2; kind++) {
        const uint8_t *sp = kind ? all : quotes;
        size_t nsp = kind ? sizeof all : sizeof quotes;
        for (unsigned at = 0; at <= 16; at += 16) {
            for (unsigned m = 0; m < 65536; m++) {
                if ((kind && (m >> 1 & 0x3fff) % 13) || (!kind && !at && m % 3))
                    continue;
                for (size_t i = 0; i < S_LEN; i++)
                    s[i] = (uint8_t)("x{}:,0\xc3\xa9"[i % 8]);
                for (unsigned j = 0, k = m; j < 16; j++)
                    if (m >> j & 1)
                        s[at + j] = sp[k++ % nsp];
                const char *bad = s_esc_check(s, S_LEN, want, msg, sizeof msg);
                ck_assert_msg(!*bad, "mask 0x%04x at %u, kind %u: %s", m, at, kind, bad);
            }
        }
    }
    free(s);
}
END_TEST

/* Long strings at many densities of quotes: the buffer grows mid-string
 * (from the size reserved first), the bytes before the string kept. */
START_TEST(escaper_grows)
{
    enum { S_MAX = 5000 };
    char *want = malloc(S_MAX * 6 + 8), msg[1200];
    ck_assert_ptr_nonnull(want);
    uint32_t seed = 777;
    static const unsigned every[] = {1, 2, 3, 4, 5, 9, 17, 100};
    for (size_t d = 0; d < sizeof every / sizeof every[0]; d++) {
        for (size_t len = 1000; len <= S_MAX; len += 999) {
            uint8_t *s = malloc(len);
            ck_assert_ptr_nonnull(s);
            for (size_t i = 0; i < len; i++) {
                seed = seed * 1103515245u + 12345u;
                unsigned r = seed >> 16;
                s[i] = r % every[d] ? (uint8_t)(' ' + r % 95)
                                    : (uint8_t)(r & 64   ? '"'
                                                : r & 32 ? '\\'
                                                         : r % 32);
            }
            const char *bad = s_esc_check(s, len, want, msg, sizeof msg);
            ck_assert_msg(!*bad, "one in %u escaped: %s", every[d], bad);
            free(s);
        }
    }
    free(want);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plugin_file");
    TCase *tc = tcase_create("lines");
    tcase_add_test(tc, lines_in_order);
    tcase_add_test(tc, escapes_at_every_offset);
    tcase_add_test(tc, dense_escapes);
    tcase_add_test(tc, open_fails);
    tcase_add_test(tc, destinations);
    suite_add_tcase(s, tc);
    TCase *esc = tcase_create("escaper");
    tcase_set_timeout(esc, 120);
    tcase_add_test(esc, escaper_every_byte_everywhere);
    tcase_add_test(esc, escaper_every_mask);
    tcase_add_test(esc, escaper_grows);
    suite_add_tcase(s, esc);
    return fanout_check_run(s);
}
