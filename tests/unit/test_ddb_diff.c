/* The DynamoDB conversion from the event's scanner nodes against the former
 * conversion through jansson trees (ddb_ref.c), byte for byte and error for
 * error (ddb_diff.c): on the images and keys of tests/data's events, on
 * hand-picked edge cases and on generated DynamoDB JSON (seeded: the same
 * texts every run). */
#include <check.h>

#include "check_main.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jscan.h"
#include "common/util.h"
#include "core/ddb.h"
#include "ddb_diff.h"

static void s_agree(const char *text, size_t len, int expect_scanned)
{
    char why[1024];
    int rc = ddb_diff(text, len, why, sizeof why);
    ck_assert_msg(rc >= 0, "%s\ninput: %.*s", why, (int)(len > 600 ? 600 : len), text);
    if (expect_scanned)
        ck_assert_msg(rc == 1, "not valid JSON: %.*s", (int)len, text);
}

/* ---- tests/data events -------------------------------------------------- */

START_TEST(test_event_files)
{
    char path[1024];
    const char *dir = getenv("FANOUT_TESTDATA");
    snprintf(path, sizeof path, "%s/events/dynamodb.json", dir ? dir : "tests/data");
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s (set FANOUT_TESTDATA)", path);
    struct fanout_sbuf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fanout_sbuf_put(&b, chunk, n);
    fclose(f);
    struct fanout_arena a = {0};
    char err[256];
    const struct fanout_jnode *root =
        fanout_jscan((const char *)b.bytes, b.len, &a, err, sizeof err);
    ck_assert_msg(root != NULL, "%s", err);
    size_t checked = 0;
    for (const struct fanout_jnode *r = fanout_jget(root, "Records")->child; r;
         r = r->next) {
        const struct fanout_jnode *d = fanout_jget(r, "dynamodb");
        static const char *const parts[] = {"Keys", "NewImage", "OldImage"};
        for (size_t i = 0; i < 3; i++) {
            const struct fanout_jnode *v = fanout_jget(d, parts[i]);
            if (v) {
                s_agree(v->text, v->len, 1);
                checked++;
            }
        }
        s_agree(d->text, d->len, 1);
    }
    ck_assert_uint_gt(checked, 4);
    fanout_arena_free(&a);
    fanout_sbuf_free(&b);
}
END_TEST

/* ---- edge cases --------------------------------------------------------- */

static const char *const s_cases[] = {
    "{}",
    "[]",
    "\"text\"",
    "5",
    "null",
    "{\"a\":{\"S\":\"x\"},\"a\":{\"S\":\"y\"}}",
    "{\"a\":{\"S\":\"x\",\"S\":\"y\"}}",
    "{\"a\\u0000b\":{\"S\":\"x\"}}",
    "{\"a\":{\"S\\u0000\":\"x\"}}",
    "{\"a\":{\"S\":\"x\\u0000y\"}}",
    "{\"a\":{\"\\u0053\":\"escaped type name\"}}",
    "{\"\\u00e9\\ud83d\\ude00\\\"\\\\\\/"
    "\\b\\f\\n\\r\\t\\u001f\\u007f\":{\"S\":\"\\u0001\\u001F\"}}",
    "{\"k\":{\"S\":\"caf\xc3\xa9 \xf0\x9f\x98\x80 \x7f\"}}",
    "{\"k\":{\"S\":\"\xff\"}}",
    "{\"k\":{\"S\":\"\\ud800\"}}",
    "{\"n\":{\"N\":\"123456789012345678901234567890123456789\"}}",
    "{\"n\":{\"N\":\"12345678901234567890123456789012345678\"}}",
    "{\"n\":{\"N\":\"-0\"},\"m\":{\"N\":\"+5\"},\"o\":{\"N\":\"5.\"},\"p\":{\"N\":\".5\"},"
    "\"q\":{\"N\":\"007\"},\"r\":{\"N\":\"1E+05\"},\"s\":{\"N\":\"0e1000\"}}",
    "{\"n\":{\"N\":\"1E-130\"},\"m\":{\"N\":\"1e-131\"},\"o\":{\"N\":\"1e126\"},"
    "\"p\":{\"N\":\"9.9999999999999999999999999999999999999E+125\"}}",
    "{\"n\":{\"N\":\"NaN\"}}",
    "{\"n\":{\"N\":\"1e\"}}",
    "{\"n\":{\"N\":\" 1\"}}",
    "{\"n\":{\"N\":\"\"}}",
    "{\"n\":{\"N\":5}}",
    "{\"n\":{\"N\":5.0}}",
    "{\"n\":{\"N\":99999999999999999999}}",
    "{\"n\":{\"N\":-9223372036854775808}}",
    "{\"n\":{\"N\":9223372036854775807}}",
    "{\"n\":{\"N\":9223372036854775808}}",
    "{\"n\":{\"N\":1e400}}",
    "{\"n\":{\"N\":-1e400}}",
    "{\"n\":{\"N\":1e-400}}",
    "{\"n\":{\"N\":-0}}",
    "{\"n\":{\"N\":-0.0}}",
    "{\"x\":{\"Z\":[1,-0,0.1,1e5,1E+05,-2.5e-7,123456789.123456789,1e300,5e-324]}}",
    "{\"b\":{\"B\":\"AAEC\"},\"c\":{\"B\":\"\"},\"d\":{\"B\":\"AA==\"},\"e\":{\"B\":"
    "\"QUJD\\/w==\"}}",
    "{\"b\":{\"B\":\"A\"}}",
    "{\"b\":{\"B\":\"AA=A\"}}",
    "{\"b\":{\"B\":\"@@@@\"}}",
    "{\"b\":{\"B\":\"\\u00e9AAA\"}}",
    "{\"b\":{\"BS\":[\"AAEC\",\"AA==\"]},\"c\":{\"BS\":[]},\"d\":{\"BS\":[\"AA=A\"]}}",
    "{\"s\":{\"SS\":[]},\"n\":{\"NS\":[]},\"t\":{\"SS\":[\"a\",\"\\n\"]},\"u\":{\"NS\":["
    "\"1\",\"x\"]}}",
    "{\"s\":{\"SS\":\"a\"}}",
    "{\"s\":{\"SS\":[1]}}",
    "{\"s\":{\"NS\":[null]}}",
    "{\"t\":{\"BOOL\":true},\"f\":{\"BOOL\":false},\"n\":{\"NULL\":true}}",
    "{\"t\":{\"BOOL\":\"true\"}}",
    "{\"t\":{\"BOOL\":1}}",
    "{\"n\":{\"NULL\":false}}",
    "{\"n\":{\"NULL\":null}}",
    "{\"m\":{\"M\":{}},\"l\":{\"L\":[]},\"x\":{\"M\":[]},\"y\":{\"L\":{}}}",
    "{\"m\":{\"M\":{\"a\":{\"L\":[{\"S\":\"1\"},{\"M\":{\"b\":{\"X\":1}}}]}}}}",
    "{\"u\":{\"X\":\"x\"}}",
    "{\"u\":{\"s\":\"lower case\"}}",
    "{\"u\":{\"BOOLEAN\":true}}",
    "{\"u\":{}}",
    "{\"u\":{\"S\":\"a\",\"N\":\"1\",\"B\":\"\"}}",
    "{\"u\":\"not an AttributeValue\"}",
    "{\"u\":[{\"S\":\"x\"}]}",
    "{ \"a\" : { \"S\" : \"spaced\" } ,\n\t\"b\" : { \"L\" : [ { \"N\" : \"1\" } , { "
    "\"NULL\" : true } ] } }",
    "{\"k\":{\"N\":\"1\"},\"j\":{\"B\":\"AA==\"},\"i\":{\"S\":\"a|b\"}}",
    "{\"k\":{\"BOOL\":true}}",
    "{\"k\":{\"N\":\"1.2.3\"}}",
};

START_TEST(test_edge_cases)
{
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++)
        s_agree(s_cases[i], strlen(s_cases[i]), 0);
}
END_TEST

/* N strings near the rules of a plain number (s_number_plain_in reads
 * those with 16 bytes after them at once): each followed by more than 16
 * bytes, and at the end of the text. */
START_TEST(test_plain_numbers)
{
    static const char *const nums[] = {"0",
                                       "-0",
                                       "01",
                                       "-01",
                                       "1.",
                                       "-",
                                       "-.5",
                                       ".5",
                                       "5",
                                       "1.2.3",
                                       "1..2",
                                       "0.0",
                                       "00.5",
                                       "10",
                                       "-10.25",
                                       "1.5e3",
                                       "12a",
                                       "1/",
                                       "9:",
                                       "-9.0",
                                       "0.",
                                       "--1",
                                       "1-",
                                       "-0.000",
                                       "1234567890123456",
                                       "12345678901234567",
                                       "123456789012345.",
                                       "-123456789012345",
                                       "1.23456789012345",
                                       "0123456789012345"};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        for (int tail = 0; tail < 2; tail++) {
            struct fanout_sbuf b = {0};
            fanout_sbuf_puts(&b, "{\"n\":{\"N\":\"");
            fanout_sbuf_puts(&b, nums[i]);
            fanout_sbuf_puts(
                &b, tail ? "\"},\"pad\":{\"S\":\"more than sixteen bytes after it\"}}"
                         : "\"}}");
            s_agree((const char *)b.bytes, b.len, 1);
            fanout_sbuf_free(&b);
        }
}
END_TEST

/* Nesting around DynamoDB's limit of 32 M and L levels, and far beyond. */
START_TEST(test_deep)
{
    static const int depths[] = {31, 32, 33, 34, 200, 250};
    for (size_t d = 0; d < sizeof depths / sizeof depths[0]; d++)
        for (int kind = 0; kind < 3; kind++) {
            struct fanout_sbuf b = {0};
            fanout_sbuf_puts(&b, "{\"d\":");
            for (int i = 0; i < depths[d]; i++)
                fanout_sbuf_puts(&b, kind == 0   ? "{\"M\":{\"d\":"
                                     : kind == 1 ? "{\"L\":["
                                     : (i & 1)   ? "{\"L\":["
                                                 : "{\"M\":{\"x\\u0064\":");
            fanout_sbuf_puts(&b, "{\"N\":\"1\"}");
            for (int i = depths[d] - 1; i >= 0; i--)
                fanout_sbuf_puts(&b, kind == 0   ? "}}"
                                     : kind == 1 ? "]}"
                                     : (i & 1)   ? "]}"
                                                 : "}}");
            fanout_sbuf_puts(&b, "}");
            s_agree((const char *)b.bytes, b.len, 1);
            fanout_sbuf_free(&b);
        }
}
END_TEST

/* ---- images of a shape met before (fanout_ddb_image_seen) --------------- */

/* fanout_ddb_image_seen against fanout_ddb_image_shape on `text` (the
 * text's end `len` bytes on, or further: `end`), with `seen` as the tests
 * before left it: the same end, count and bytes, reading only or
 * converting, before and after the text's own shape is kept. */
static void s_seen_agree(struct fanout_ddb_seen *seen, const char *text, const char *end)
{
    struct fanout_sbuf e0 = {0}, e1 = {0};
    size_t c0 = 0, c1 = 0;
    const char *r0 = fanout_ddb_image_shape(text, end, &c0, &e0);
    for (int round = 0; round < 2; round++) {
        /* reading only: the same answer, or none, or, for an image
         * fanout_ddb_image_shape refuses (a number it does not take), the
         * scan's answer */
        const char *rv = fanout_ddb_image_seen(seen, text, end, &c1, NULL);
        ck_assert_msg(!rv || (r0 ? rv == r0 && c1 == c0 : ddb_diff_object(text, rv, c1)),
                      "read only: end %td (%zu), not %td (%zu): %.*s", rv ? rv - text : -1,
                      c1, r0 ? r0 - text : -1, c0,
                      (int)(end - text > 600 ? 600 : end - text), text);
        const char *r1 = fanout_ddb_image_seen(seen, text, end, &c1, &e1);
        ck_assert_msg(r1 == r0, "round %d: end %td, not %td: %.*s", round,
                      r1 ? r1 - text : -1, r0 ? r0 - text : -1,
                      (int)(end - text > 600 ? 600 : end - text), text);
        if (r0) {
            ck_assert_uint_eq(c1, c0);
            ck_assert_msg(e1.len == e0.len && memcmp(e1.bytes, e0.bytes, e0.len) == 0,
                          "round %d: \"%s\", not \"%s\"", round, e1.bytes, e0.bytes);
        }
    }
    fanout_sbuf_free(&e0);
    fanout_sbuf_free(&e1);
}

/* `tmpl` with its "%" `value` and its "@" `bool_value`, and, `tail`,
 * text after it: the length of the image. */
static size_t s_seen_template(struct fanout_sbuf *b, const char *tmpl, const char *value,
                              const char *bool_value, int tail)
{
    fanout_sbuf_reset(b);
    for (const char *c = tmpl; *c; c++)
        if (*c == '%')
            fanout_sbuf_puts(b, value);
        else if (*c == '@')
            fanout_sbuf_puts(b, bool_value);
        else
            fanout_sbuf_putc(b, (uint8_t)*c);
    size_t len = b->len;
    if (tail)
        fanout_sbuf_puts(b, ", \"more\": \"text after the image\"}");
    return len;
}

/* A fanout_ddb_seen with the shape of the image (or `keys`, the Keys) `w`
 * kept. */
static struct fanout_ddb_seen *s_seen_fresh(const struct fanout_sbuf *w, int keys)
{
    struct fanout_ddb_seen *seen = fanout_ddb_seen_new();
    ck_assert_ptr_nonnull(seen);
    struct fanout_sbuf e = {0};
    size_t count;
    const char *text = (const char *)w->bytes, *end = text + w->len;
    ck_assert_ptr_nonnull(keys ? fanout_ddb_keys_seen(seen, text, end, &count, &e)
                               : fanout_ddb_image_seen(seen, text, end, &count, &e));
    fanout_sbuf_free(&e);
    return seen;
}

/* Images of one shape with other values, good and bad: each template's
 * "%" is a value, replaced by each of `values`, and "@" a BOOL's, by one
 * of `bools`, each read with the shape of the template's image of "1" and
 * "true" kept. */
START_TEST(test_seen_values)
{
    static const char *const templates[] = {
        "{\"pk\": {\"S\": \"%\"}, \"sk\": {\"N\": \"%\"}, \"ok\": {\"BOOL\": true}}",
        "{\"a\":{\"N\":\"%\"}}",
        "{\"a\":{\"S\":\"%\"},\"m\":{\"M\":{\"x\":{\"L\":[{\"N\":\"%\"},{\"S\":\"%\"},"
        "{\"NULL\":true}]}}},\"e\":{\"L\":[]}}",
        "{ \"a\" : { \"S\" : \"%\" } ,\n \"b\" : { \"N\" : \"%\" } }",
        "{\"b\":{\"BOOL\":@},\"s\":{\"S\":\"%\"},\"l\":{\"L\":[{\"BOOL\": @ "
        "},{\"NULL\":true}]}}",
        "{\"n\": {\"NULL\": true}, \"b\": {\"BOOL\": @}}",
    };
    /* for "@": a BOOL's value */
    static const char *const bools[] = {"false", "true", "truex",    "fals", "null",
                                        "True",  "1",    "\"true\"", "tru"};
    static const char *const values[] = {
        "1",
        "user#000001",
        "",
        "0",
        "-0",
        "12.5",
        "007",
        "1e5",
        ".5",
        "1.",
        "-",
        "abc",
        "12345678901234567890123456789012345678",
        "123456789012345678901234567890123456789",
        "with \\\" quote",
        "back\\\\slash",
        "\\u0041",
        "tab\there",
        "caf\xc3\xa9",
        "a long value of more than sixteen bytes, and then some more",
        "\"",
        "x\"}, \"y\": {\"S\": \"z",
    };
    struct fanout_sbuf b = {0}, w = {0};
    for (size_t t = 0; t < sizeof templates / sizeof templates[0]; t++) {
        /* "1" and "true" everywhere, text after it: its shape is kept */
        s_seen_template(&w, templates[t], "1", "true", 1);
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++)
            for (int tail = 0; tail < 2; tail++) {
                struct fanout_ddb_seen *seen = s_seen_fresh(&w, 0);
                size_t count;
                const char *wend = (const char *)w.bytes + w.len;
                /* kept: read again from its shape */
                ck_assert_ptr_nonnull(
                    fanout_ddb_image_seen(seen, (const char *)w.bytes, wend, &count, NULL));
                size_t len =
                    s_seen_template(&b, templates[t], values[v],
                                    bools[v % (sizeof bools / sizeof bools[0])], tail);
                s_seen_agree(seen, (const char *)b.bytes,
                             (const char *)b.bytes + (tail ? b.len : len));
                fanout_ddb_seen_free(seen);
            }
    }
    fanout_sbuf_free(&b);
    fanout_sbuf_free(&w);
}
END_TEST

/* Keys of one shape with other values, good and bad (fanout_ddb_keys_seen
 * against fanout_ddb_keys_shape), the shape of the template's Keys of
 * "1234" kept. */
START_TEST(test_seen_keys)
{
    static const char *const templates[] = {
        "{\"pk\": {\"S\": \"%\"}, \"sk\": {\"N\": \"%\"}}",
        "{\"id\":{\"B\":\"%\"}}",
        "{\"a\":{\"S\":\"%\"},\"b\":{\"B\":\"%\"},\"c\":{\"N\":\"%\"}}",
    };
    static const char *const values[] = {
        "QUJD",        "1",         "",
        "-0",          "1e5",       "007",
        "AAEC",        "AA==",      "A===",
        "abc",         "ab=c",      "with \\\" quote",
        "caf\xc3\xa9", "tab\there", "a long value of more than sixteen bytes",
    };
    struct fanout_sbuf b = {0}, w = {0}, e = {0}, f = {0};
    for (size_t t = 0; t < sizeof templates / sizeof templates[0]; t++) {
        s_seen_template(&w, templates[t], "1234", "", 1);
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++)
            for (int tail = 0; tail < 2; tail++) {
                struct fanout_ddb_seen *seen = s_seen_fresh(&w, 1);
                size_t c0 = 0, c1 = 0;
                size_t len = s_seen_template(&b, templates[t], values[v], "", tail);
                const char *text = (const char *)b.bytes,
                           *end = text + (tail ? b.len : len);
                const char *q = fanout_ddb_keys_shape(text, end, &c0, &e);
                for (int round = 0; round < 2; round++) {
                    const char *r = fanout_ddb_keys_seen(seen, text, end, &c1, &f);
                    ck_assert_msg(r == q, "round %d: end %td, not %td: %s", round,
                                  r ? r - text : -1, q ? q - text : -1, text);
                    if (q) {
                        ck_assert_uint_eq(c1, c0);
                        ck_assert_msg(
                            f.len == e.len && memcmp(f.bytes, e.bytes, e.len) == 0,
                            "round %d: \"%s\", not \"%s\"", round, f.bytes, e.bytes);
                    } else {
                        ck_assert_uint_eq(f.len, 0);
                    }
                }
                fanout_ddb_seen_free(seen);
            }
    }
    fanout_sbuf_free(&b);
    fanout_sbuf_free(&w);
    fanout_sbuf_free(&e);
    fanout_sbuf_free(&f);
}
END_TEST

/* ---- attacks on the shapes seen before ---------------------------------- */

/* `n` bytes of `text` then `tail` bytes of text as an event may have after
 * an image (quotes, braces, spaces), in a block of exactly that size, so
 * that ASan sees a read past it. */
static char *s_exact(const char *text, size_t n, size_t tail)
{
    static const char after[] = "\"}, \"x\": {\"S\": \"y\"}}]}\\\"";
    char *b = malloc(n + tail + 1); /* + 1: malloc(0) */
    ck_assert_ptr_nonnull(b);
    memcpy(b, text, n);
    for (size_t i = 0; i < tail; i++)
        b[n + i] = after[i % (sizeof after - 1)];
    return b;
}

/* The image (or `keys`, Keys) `text`, with the shape of `teacher` kept:
 * what fanout_ddb_image_seen (fanout_ddb_keys_seen) answers is what
 * fanout_ddb_image_shape (fanout_ddb_keys_shape) answers, and what they
 * take is valid JSON that the full converter (fanout_ddb_image_text,
 * fanout_ddb_key_text) writes to the same bytes; with 0 to 40 bytes of
 * text after it. Returns how many times the kept shape took it. */
static size_t s_attack(int keys, const char *teacher, const char *text)
{
    size_t taken = 0, n = strlen(text);
    /* and as ddb_diff takes it: the reference, and its own variant's shape */
    char why[1024];
    ck_assert_msg(ddb_diff(text, n, why, sizeof why) >= 0, "%s\ninput: %s", why, text);
    for (size_t tail = 0; tail <= 40; tail++) {
        struct fanout_ddb_seen *seen = fanout_ddb_seen_new();
        ck_assert_ptr_nonnull(seen);
        struct fanout_sbuf e = {0}, f = {0}, full = {0};
        size_t c0 = 0, c1 = 0, tn = strlen(teacher);
        char *t = s_exact(teacher, tn, 20), *b = s_exact(text, n, tail);
        const char *end = b + n + tail;
        const char *taught = keys ? fanout_ddb_keys_seen(seen, t, t + tn + 20, &c1, &f)
                                  : fanout_ddb_image_seen(seen, t, t + tn + 20, &c1, &f);
        ck_assert_msg(taught != NULL, "not taken: %s", teacher);
        const char *q = keys ? fanout_ddb_keys_shape(b, end, &c0, &e)
                             : fanout_ddb_image_shape(b, end, &c0, &e);
        const char *r = keys ? NULL : fanout_ddb_image_seen(seen, b, end, &c1, NULL);
        /* reading only: also an image whose numbers fanout_ddb_image_shape
         * refuses, as the scan takes it */
        ck_assert_msg(!r || (q ? r == q && c1 == c0 : ddb_diff_object(b, r, c1)),
                      "read only: end %td, not %td: %s|%zu", r ? r - b : -1, q ? q - b : -1,
                      text, tail);
        taken += r != NULL;
        r = keys ? fanout_ddb_keys_seen(seen, b, end, &c1, &f)
                 : fanout_ddb_image_seen(seen, b, end, &c1, &f);
        ck_assert_msg(r == q, "end %td, not %td: %s|%zu", r ? r - b : -1, q ? q - b : -1,
                      text, tail);
        if (q) {
            ck_assert_uint_eq(c1, c0);
            ck_assert_msg(f.len == e.len && memcmp(f.bytes, e.bytes, e.len) == 0,
                          "\"%s\", not \"%s\": %s|%zu", f.bytes, e.bytes, text, tail);
            /* the full converter on the text taken (validated first) */
            struct fanout_arena nodes = {0};
            char err[512];
            const struct fanout_jnode *v =
                fanout_jscan(b, (size_t)(q - b), &nodes, err, sizeof err);
            ck_assert_msg(v && v->count == c0, "took what the scanner refuses: %s: %s",
                          v ? "count" : err, text);
            ck_assert_int_eq(keys ? fanout_ddb_key_text(b, (size_t)(q - b), &nodes, &full,
                                                        err, sizeof err)
                                  : fanout_ddb_image_text(b, (size_t)(q - b), 1, &nodes,
                                                          &full, err, sizeof err),
                             0);
            ck_assert_msg(full.len == e.len && memcmp(full.bytes, e.bytes, e.len) == 0,
                          "\"%s\", the full converter \"%s\": %s", e.bytes, full.bytes,
                          text);
            fanout_arena_free(&nodes);
        }
        free(t);
        free(b);
        fanout_sbuf_free(&e);
        fanout_sbuf_free(&f);
        fanout_sbuf_free(&full);
        fanout_ddb_seen_free(seen);
    }
    return taken;
}

/* Values that read like the pieces around them, escapes, numbers valid in
 * JSON but not plain N (and the reverse), BOOLs spelled otherwise, bytes
 * that are not printable ASCII, values ending at 16-byte boundaries, each
 * in images and Keys whose shape (with "1" and true) is kept, followed by
 * 0 to 40 bytes of text. */
START_TEST(test_seen_attacks)
{
    static const char *const images[] = {
        "{\"pk\":{\"S\":\"%\"},\"sk\":{\"N\":\"%\"},\"ok\":{\"BOOL\":@}}",
        "{\"a\":{\"S\":\"%\"},\"b\":{\"S\":\"%\"}}",
        "{\"l\":{\"L\":[{\"S\":\"%\"},{\"N\":\"%\"},{\"BOOL\":@},{\"NULL\":true}]}}",
        "{\"m\":{\"M\":{\"a\":{\"S\":\"%\"},\"n\":{\"M\":{\"b\":{\"BOOL\":@}}}}}}",
        "{ \"a\" : { \"S\" : \"%\" } , \"b\" : { \"BOOL\" : @ } }",
        "{\"n\":{\"N\":\"%\"}}",
    };
    static const char *const keys[] = {
        "{\"pk\":{\"S\":\"%\"},\"sk\":{\"N\":\"%\"}}",
        "{\"id\":{\"B\":\"%\"},\"s\":{\"S\":\"%\"}}",
    };
    static const char *const values[] = {
        /* the next piece's text, or a part of it */
        "x\\\"},\\\"b\\\":{\\\"S\\\":\\\"y",
        "\"},\"b\":{\"S\":\"",
        "\"}",
        "}",
        "\\\"}",
        /* escapes */
        "\\\"",
        "\\\\",
        "a\\\\",
        "\\u0000",
        "\\ud800",
        "\\udc00",
        "\\ud800\\u0041",
        "\\u0041",
        "\\/",
        /* N: exponents, signs, leading zeros, digits */
        "1e5",
        "1E+5",
        "-0",
        "+1",
        ".5",
        "1.",
        "00",
        "007",
        "0.0",
        "-",
        "1.2.3",
        "1e126",
        "12345678901234567890123456789012345678",
        "123456789012345678901234567890123456789",
        "0000000000000000000000000000000000000001",
        "1234567890123456",
        "12345678901234567",
        /* B */
        "QQ==",
        "QQ=",
        "A===",
        "QUJD",
        /* other bytes */
        "",
        "caf\xc3\xa9",
        "\xff",
        "\xed\xa0\x80",
        "tab\there",
        "\x7f",
        "\x01",
    };
    /* a BOOL's value, each with the values above in turn */
    static const char *const bools[] = {"false", "true", "truex",    "fals", "null",
                                        "TRUE",  "1",    "\"true\"", "true "};
    struct fanout_sbuf w = {0}, b = {0};
    size_t taken = 0;
    for (int k = 0; k < 2; k++) {
        const char *const *tmpl = k ? keys : images;
        size_t nt = k ? sizeof keys / sizeof *keys : sizeof images / sizeof *images;
        for (size_t t = 0; t < nt; t++) {
            s_seen_template(&w, tmpl[t], k ? "1234" : "1", "true", 0);
            for (size_t v = 0; v < sizeof values / sizeof *values; v++) {
                s_seen_template(&b, tmpl[t], values[v],
                                bools[v % (sizeof bools / sizeof *bools)], 0);
                taken += s_attack(k, (const char *)w.bytes, (const char *)b.bytes);
            }
            /* S values of 0 to 40 bytes: ends on and around 16-byte
             * boundaries, of the value and of the text */
            for (size_t len = 0; len <= 40; len++) {
                char v[48];
                memset(v, k ? 'A' : 'x', len);
                v[len] = 0;
                s_seen_template(&b, tmpl[t], v, len % 2 ? "false" : "true", 0);
                taken += s_attack(k, (const char *)w.bytes, (const char *)b.bytes);
            }
        }
    }
    /* the kept shapes did read most of those they could */
    ck_assert_uint_gt(taken, 1000);
    fanout_sbuf_free(&w);
    fanout_sbuf_free(&b);
}
END_TEST

/* Images and Keys kept apart: Keys and an image of one text read with the
 * other's shape kept; an image whose text is one kept but for a name
 * repeated, a space, a name's byte; more values (64, 65) and bytes of
 * pieces (2,048 and more) than a shape keeps; M 32 and 33 levels deep. */
/* Reading only (an OldImage: not converted), an N's text is a string like
 * any other, as the scan's quick pass takes it: an image of a kept shape
 * whose N fanout_ddb_image_shape refuses is taken with its end and count;
 * converting, it is not. Its strings and BOOLs are still checked. */
START_TEST(test_seen_read_only_numbers)
{
    static const char teach[] = "{\"pk\": {\"S\": \"a\"}, \"n\": {\"N\": \"12\"}, "
                                "\"ok\": {\"BOOL\": true}}";
    static const char *const odd[] = {"01", "1e5", "", "-", "abc", "1.", "+1"};
    /* an escape in an S, a quote in an N, a BOOL neither true nor false */
    static const char *const refused[] = {
        "{\"pk\": {\"S\": \"a\\n\"}, \"n\": {\"N\": \"1\"}, \"ok\": {\"BOOL\": true}}",
        "{\"pk\": {\"S\": \"a\"}, \"n\": {\"N\": \"1\\\"\"}, \"ok\": {\"BOOL\": true}}",
        "{\"pk\": {\"S\": \"a\"}, \"n\": {\"N\": \"1\"}, \"ok\": {\"BOOL\": tru}}"};
    const size_t n_odd = sizeof odd / sizeof *odd,
                 n_refused = sizeof refused / sizeof *refused;
    size_t tn = strlen(teach);
    char *t = s_exact(teach, tn, 20);
    for (size_t i = 0; i < n_odd + n_refused; i++) {
        /* each with the shape just kept (no credit spent) */
        struct fanout_ddb_seen *seen = fanout_ddb_seen_new();
        ck_assert_ptr_nonnull(seen);
        struct fanout_sbuf f = {0};
        size_t c = 0;
        ck_assert_ptr_nonnull(fanout_ddb_image_seen(seen, t, t + tn + 20, &c, &f));
        char text[256];
        if (i < n_odd)
            snprintf(text, sizeof text,
                     "{\"pk\": {\"S\": \"b\"}, \"n\": {\"N\": \"%s\"}, \"ok\": {\"BOOL\": "
                     "false}}",
                     odd[i]);
        else
            snprintf(text, sizeof text, "%s", refused[i - n_odd]);
        size_t n = strlen(text);
        char *b = s_exact(text, n, 20);
        c = 0;
        const char *r = fanout_ddb_image_seen(seen, b, b + n + 20, &c, NULL);
        if (i < n_odd) {
            ck_assert_msg(r == b + n, "read only, not taken: %s", text);
            ck_assert_uint_eq(c, 3);
            ck_assert_msg(ddb_diff_object(b, b + n, c), "not one object: %s", text);
            ck_assert_msg(fanout_ddb_image_seen(seen, b, b + n + 20, &c, &f) == NULL,
                          "converted: %s", text);
        } else {
            ck_assert_msg(r == NULL, "read only, taken: %s", text);
        }
        free(b);
        fanout_sbuf_free(&f);
        fanout_ddb_seen_free(seen);
    }
    free(t);
}
END_TEST

START_TEST(test_seen_mixups)
{
    static const char one[] = "{\"id\":{\"S\":\"1\"},\"n\":{\"N\":\"2\"}}";
    static const char two[] = "{\"id\":{\"S\":\"3\"},\"n\":{\"N\":\"4\"}}";
    /* the Keys' shape kept, the image read (and the reverse) */
    for (int k = 0; k < 2; k++) {
        struct fanout_ddb_seen *seen = fanout_ddb_seen_new();
        struct fanout_sbuf f = {0};
        size_t c;
        char *t = s_exact(one, strlen(one), 20), *b = s_exact(two, strlen(two), 20);
        const char *end = b + strlen(two) + 20;
        ck_assert_ptr_nonnull(
            k ? fanout_ddb_image_seen(seen, t, t + strlen(one) + 20, &c, &f)
              : fanout_ddb_keys_seen(seen, t, t + strlen(one) + 20, &c, &f));
        if (k) {
            ck_assert_ptr_nonnull(fanout_ddb_keys_seen(seen, b, end, &c, &f));
            ck_assert_str_eq(f.p, "3|4");
        } else {
            ck_assert_ptr_null(fanout_ddb_image_seen(seen, b, end, &c, NULL));
            ck_assert_ptr_nonnull(fanout_ddb_image_seen(seen, b, end, &c, &f));
            ck_assert_str_eq(f.p, "{\"id\":\"3\",\"n\":4}");
        }
        free(t);
        free(b);
        fanout_sbuf_free(&f);
        fanout_ddb_seen_free(seen);
    }
    static const char *const near[] = {
        "{\"id\":{\"S\":\"1\"},\"id\":{\"N\":\"2\"}}",
        "{\"id\":{\"S\":\"1\"}, \"n\":{\"N\":\"2\"}}",
        "{\"id\":{\"S\":\"1\"},\"m\":{\"N\":\"2\"}}",
        "{\"id\":{\"S\":\"1\"},\"n\":{\"S\":\"2\"}}",
        "{\"id\":{\"S\":\"1\"},\"n\":{\"N\":2}}",
        "{\"id\":{\"S\":\"1\"},\"n\":{\"N\":\"2\"}",
        "{\"id\":{\"S\":\"1\"},\"n\":{\"N\":\"2\"}},",
    };
    for (size_t i = 0; i < sizeof near / sizeof *near; i++) {
        s_attack(0, one, near[i]);
        s_attack(1, one, near[i]);
    }
    /* 63 to 65 values (in a list); 30 to 32 names of 70 bytes (about
     * 2,048 bytes of pieces) */
    struct fanout_sbuf w = {0}, b = {0};
    for (size_t n = 63; n <= 65; n++)
        for (int names = 0; names < 2; names++) {
            for (int pass = 0; pass < 2; pass++) {
                struct fanout_sbuf *o = pass ? &b : &w;
                fanout_sbuf_reset(o);
                fanout_sbuf_puts(o, names ? "{" : "{\"l\":{\"L\":[");
                for (size_t a = 0; a < (names ? n - 33 : n); a++) {
                    char item[128];
                    const char *v = pass ? "value" : "1";
                    if (names)
                        snprintf(
                            item, sizeof item,
                            "%s\"a%03zu-a-name-long-enough-to-fill-the-pieces-of-a-shape-"
                            "to-its-end\":{\"S\":\"%s\"}",
                            a ? "," : "", a, v);
                    else
                        snprintf(item, sizeof item, "%s{\"S\":\"%s\"}", a ? "," : "", v);
                    fanout_sbuf_puts(o, item);
                }
                fanout_sbuf_puts(o, names ? "}" : "]}}");
            }
            s_attack(0, (const char *)w.bytes, (const char *)b.bytes);
        }
    /* M 32 levels deep (DynamoDB's most) and 33, the shape of 32 kept */
    for (int depth = 31; depth <= 33; depth++)
        for (int pass = 0; pass < 2; pass++) {
            struct fanout_sbuf *o = pass ? &b : &w;
            int levels = pass || depth < 32 ? depth : 32;
            fanout_sbuf_reset(o);
            fanout_sbuf_puts(o, "{\"d\":");
            for (int i = 0; i < levels; i++)
                fanout_sbuf_puts(o, "{\"M\":{\"d\":");
            fanout_sbuf_puts(o, pass ? "{\"S\":\"deep\"}" : "{\"S\":\"1\"}");
            for (int i = 0; i < levels; i++)
                fanout_sbuf_puts(o, "}}");
            fanout_sbuf_putc(o, '}');
            if (pass)
                s_attack(0, (const char *)w.bytes, (const char *)b.bytes);
        }
    fanout_sbuf_free(&w);
    fanout_sbuf_free(&b);
}
END_TEST

/* ---- generated ---------------------------------------------------------- */

static uint64_t s_rng = 0x9E3779B97F4A7C15ULL;

static unsigned s_rand(unsigned n)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (unsigned)(s_rng % n);
}

static const char *s_pick(const char *const *v, size_t n)
{
    return v[s_rand((unsigned)n)];
}
#define PICK(v) s_pick(v, sizeof v / sizeof v[0])

static void s_ws(struct fanout_sbuf *b)
{
    static const char *const ws[] = {"", "", "", " ", "\n  ", "\t"};
    fanout_sbuf_puts(b, PICK(ws));
}

static void s_gen_string(struct fanout_sbuf *b)
{
    static const char *const pieces[] = {"a",
                                         "pk",
                                         "user#1",
                                         " ",
                                         "|",
                                         "\xc3\xa9",
                                         "\xf0\x9f\x98\x80",
                                         "\x7f",
                                         "\\u0000",
                                         "\\u001f",
                                         "\\u001F",
                                         "\\\"",
                                         "\\\\",
                                         "\\/",
                                         "\\n",
                                         "\\t",
                                         "\\b",
                                         "\\u00e9",
                                         "\\ud83d\\ude00",
                                         "\\u2028",
                                         "S",
                                         "N",
                                         "AAEC",
                                         "==",
                                         "0",
                                         "1e5",
                                         "\xff"};
    fanout_sbuf_putc(b, '"');
    for (unsigned i = 0, n = s_rand(5); i < n; i++)
        fanout_sbuf_puts(b, PICK(pieces));
    fanout_sbuf_putc(b, '"');
}

static void s_gen_number_string(struct fanout_sbuf *b)
{
    static const char *const fixed[] = {"0",
                                        "-0",
                                        "+5",
                                        "5.",
                                        ".5",
                                        "007",
                                        "1e+05",
                                        "1E-130",
                                        "1e-131",
                                        "0e1000",
                                        "1e126",
                                        "9.9999999999999999999999999999999999999E+125",
                                        "NaN",
                                        "1e",
                                        "",
                                        " 1",
                                        "1.2.3",
                                        "-",
                                        "+e2",
                                        "123456789012345678901234567890123456789",
                                        "0.00000000000000000000000000000000000000000001",
                                        "\\u0031",
                                        "1\\u0000"};
    if (s_rand(3) == 0) {
        fanout_sbuf_putc(b, '"');
        fanout_sbuf_puts(b, PICK(fixed));
        fanout_sbuf_putc(b, '"');
        return;
    }
    static const char *const signs[] = {"", "", "-", "+"};
    fanout_sbuf_putc(b, '"');
    fanout_sbuf_puts(b, PICK(signs));
    for (unsigned i = 0, n = s_rand(45); i < n; i++)
        fanout_sbuf_putc(b, (uint8_t)('0' + s_rand(10)));
    if (s_rand(2)) {
        fanout_sbuf_putc(b, '.');
        for (unsigned i = 0, n = s_rand(10); i < n; i++)
            fanout_sbuf_putc(b, (uint8_t)('0' + s_rand(10)));
    }
    if (s_rand(3) == 0)
        fanout_sbuf_printf(b, "e%s%u", PICK(signs), s_rand(200));
    fanout_sbuf_putc(b, '"');
}

static void s_gen_base64(struct fanout_sbuf *b)
{
    static const char *const fixed[] = {
        "",     "AAEC",       "AA==",     "AAA=", "A",       "AA=A",
        "@@@@", "QUJD\\/w==", "QUJD/w==", "====", "AAECAw=="};
    fanout_sbuf_putc(b, '"');
    if (s_rand(20) == 0) {
        /* past one validation chunk (4096), padding near its end */
        unsigned n = 4092 + 4 * s_rand(3);
        for (unsigned i = 0; i < n; i++)
            fanout_sbuf_putc(b, (uint8_t) "ABCD+/09"[s_rand(8)]);
        fanout_sbuf_puts(b, s_rand(2) ? "AA==" : "A===");
    } else {
        fanout_sbuf_puts(b, PICK(fixed));
    }
    fanout_sbuf_putc(b, '"');
}

static void s_gen_json(struct fanout_sbuf *b)
{
    static const char *const raw[] = {"1",
                                      "-0",
                                      "0.1",
                                      "-2.5e-7",
                                      "1e5",
                                      "1E+05",
                                      "99999999999999999999",
                                      "1e400",
                                      "-1e400",
                                      "1e-400",
                                      "9223372036854775807",
                                      "-9223372036854775808",
                                      "true",
                                      "false",
                                      "null",
                                      "[]",
                                      "{}",
                                      "[1,\"a\"]",
                                      "{\"x\":1}",
                                      "5e-324",
                                      "123456789.123456789"};
    fanout_sbuf_puts(b, PICK(raw));
}

static void s_gen_value(struct fanout_sbuf *b, int depth, unsigned *budget);

static void s_gen_members(struct fanout_sbuf *b, int depth, unsigned *budget, int map)
{
    fanout_sbuf_putc(b, map ? '{' : '[');
    unsigned n = *budget > 0 ? s_rand(depth > 6 ? 2 : 4) : 0;
    if (depth > 6 && s_rand(4) == 0)
        n = 1; /* a chain: deep nesting */
    for (unsigned i = 0; i < n; i++) {
        if (i)
            fanout_sbuf_putc(b, ',');
        s_ws(b);
        if (map) {
            if (s_rand(30) == 0)
                fanout_sbuf_puts(b, "\"dup\"");
            else if (s_rand(30) == 0)
                fanout_sbuf_puts(b, "\"dup\"");
            else
                s_gen_string(b);
            s_ws(b);
            fanout_sbuf_putc(b, ':');
        }
        s_gen_value(b, depth + 1, budget);
    }
    s_ws(b);
    fanout_sbuf_putc(b, map ? '}' : ']');
}

static void s_gen_set(struct fanout_sbuf *b, void (*member)(struct fanout_sbuf *))
{
    fanout_sbuf_putc(b, '[');
    for (unsigned i = 0, n = s_rand(4); i < n; i++) {
        if (i)
            fanout_sbuf_putc(b, ',');
        if (s_rand(25) == 0)
            s_gen_json(b);
        else
            member(b);
    }
    fanout_sbuf_putc(b, ']');
}

/* An AttributeValue, mostly well-formed. */
static void s_gen_value(struct fanout_sbuf *b, int depth, unsigned *budget)
{
    static const char *const unknown[] = {
        "\"X\"", "\"s\"", "\"\"", "\"BOOLEAN\"", "\"\\u0053\"", "\"\\u004e\"", "\"SSS\""};
    if (*budget)
        (*budget)--;
    unsigned what = s_rand(depth > 30 ? 3 : 16);
    if (depth > 30 && s_rand(3))
        what = 14; /* keep chains going past the limit */
    if (s_rand(40) == 0) {
        s_gen_json(b); /* not an AttributeValue */
        return;
    }
    fanout_sbuf_putc(b, '{');
    s_ws(b);
    switch (what) {
    case 0:
        fanout_sbuf_puts(b, "\"S\":");
        s_rand(20) ? s_gen_string(b) : s_gen_json(b);
        break;
    case 1:
    case 2:
        fanout_sbuf_puts(b, "\"N\":");
        s_rand(20) ? s_gen_number_string(b) : s_gen_json(b);
        break;
    case 3:
        fanout_sbuf_puts(b, "\"B\":");
        s_rand(20) ? s_gen_base64(b) : s_gen_json(b);
        break;
    case 4:
        fanout_sbuf_puts(b, "\"BOOL\":");
        s_rand(10) ? fanout_sbuf_puts(b, s_rand(2) ? "true" : "false") : (s_gen_json(b), 0);
        break;
    case 5:
        fanout_sbuf_puts(b, "\"NULL\":");
        s_rand(10) ? fanout_sbuf_puts(b, "true") : (s_gen_json(b), 0);
        break;
    case 6:
        fanout_sbuf_puts(b, "\"SS\":");
        s_gen_set(b, s_gen_string);
        break;
    case 7:
        fanout_sbuf_puts(b, "\"NS\":");
        s_gen_set(b, s_gen_number_string);
        break;
    case 8:
        fanout_sbuf_puts(b, "\"BS\":");
        s_gen_set(b, s_gen_base64);
        break;
    case 9:
        fanout_sbuf_puts(b, PICK(unknown));
        fanout_sbuf_putc(b, ':');
        s_gen_string(b);
        break;
    case 10:
        /* two type keys, or none */
        if (s_rand(2))
            fanout_sbuf_puts(b, "\"S\":\"a\",\"N\":\"1\"");
        break;
    case 11:
    case 12:
    case 13:
        fanout_sbuf_puts(b, "\"M\":");
        s_rand(30) ? s_gen_members(b, depth, budget, 1) : s_gen_json(b);
        break;
    default:
        fanout_sbuf_puts(b, "\"L\":");
        s_rand(30) ? s_gen_members(b, depth, budget, 0) : s_gen_json(b);
        break;
    }
    s_ws(b);
    fanout_sbuf_putc(b, '}');
}

START_TEST(test_generated)
{
    size_t agreed = 0, total = 20000;
    struct fanout_sbuf b = {0};
    /* one for all: shapes kept from texts before */
    struct fanout_ddb_seen *seen = fanout_ddb_seen_new();
    ck_assert_ptr_nonnull(seen);
    for (size_t i = 0; i < total; i++) {
        fanout_sbuf_reset(&b);
        unsigned budget = 40 + s_rand(200);
        if (s_rand(50) == 0)
            s_gen_json(&b); /* an image or Keys that is not an object */
        else
            s_gen_members(&b, 0, &budget, 1);
        char why[1024];
        int rc = ddb_diff((const char *)b.bytes, b.len, why, sizeof why);
        s_seen_agree(seen, (const char *)b.bytes, (const char *)b.bytes + b.len);
        ck_assert_msg(rc >= 0, "case %zu: %s\ninput: %.*s", i, why,
                      (int)(b.len > 2000 ? 2000 : b.len), (const char *)b.bytes);
        agreed += rc == 1;
    }
    fanout_sbuf_free(&b);
    fanout_ddb_seen_free(seen);
    /* most texts are valid JSON (some carry invalid UTF-8 on purpose) */
    ck_assert_uint_gt(agreed, total / 2);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("ddb_diff");
    TCase *tc = tcase_create("differential");
    tcase_add_test(tc, test_event_files);
    tcase_add_test(tc, test_edge_cases);
    tcase_add_test(tc, test_plain_numbers);
    tcase_add_test(tc, test_deep);
    tcase_add_test(tc, test_seen_values);
    tcase_add_test(tc, test_seen_keys);
    tcase_add_test(tc, test_seen_attacks);
    tcase_add_test(tc, test_seen_read_only_numbers);
    tcase_add_test(tc, test_seen_mixups);
    tcase_add_test(tc, test_generated);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fanout_check_run(s_suite());
}
