/* DynamoDB Streams attribute conversion (engine/core/ddb.c). */
#include <check.h>

#include "check_main.h"
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ddb.h"
#include "common/util.h"

/* DynamoDB's nesting limit, as ddb.c enforces it. */
#define DDB_MAX_DEPTH 32

/* ---- helpers ------------------------------------------------------------ */

/* JSON is written in these tests with ' for ", to keep it readable. */
static char *s_dq(const char *src)
{
    char *s = strdup(src);
    ck_assert_ptr_nonnull(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}

static json_t *s_load(const char *sq)
{
    char *text = s_dq(sq);
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    ck_assert_msg(j != NULL, "test input does not parse: %s: %s", e.text, text);
    free(text);
    return j;
}

/* The output must be valid JSON: parse it back with jansson. Integers beyond
 * int64 (valid JSON, kept digit for digit) need JSON_DECODE_INT_AS_REAL. */
static void s_assert_json(const uint8_t *p, size_t n, size_t flags)
{
    json_error_t e;
    json_t *j = json_loadb((const char *)p, n, flags, &e);
    ck_assert_msg(j != NULL, "output is not valid JSON (%s): %.*s", e.text, (int)n,
                  (const char *)p);
    ck_assert_msg(json_is_object(j), "output is not an object: %.*s", (int)n,
                  (const char *)p);
    json_decref(j);
    ck_assert_msg(fanout_json_valid(p, n), "fanout_json_valid refuses: %.*s", (int)n,
                  (const char *)p);
}

static void s_ok_json_flags(const json_t *image, int convert, const char *expected,
                            size_t flags)
{
    struct fanout_sbuf b = {0};
    char err[256] = "untouched";
    int rc = fanout_ddb_image_to_json(image, convert, &b, err, sizeof err);
    ck_assert_msg(rc == 0, "conversion failed: %s", err);
    ck_assert_str_eq(err, "");
    ck_assert_ptr_nonnull(b.bytes);
    ck_assert_str_eq((const char *)b.bytes, expected);
    ck_assert_uint_eq(b.len, strlen(expected));
    s_assert_json(b.bytes, b.len, flags);
    fanout_sbuf_free(&b);
}

/* image and expected in single-quote JSON */
static void s_ok_flags(const char *image_sq, int convert, const char *expected_sq,
                       size_t flags)
{
    json_t *image = s_load(image_sq);
    char *expected = s_dq(expected_sq);
    s_ok_json_flags(image, convert, expected, flags);
    free(expected);
    json_decref(image);
}

static void s_ok(const char *image_sq, int convert, const char *expected_sq)
{
    s_ok_flags(image_sq, convert, expected_sq, 0);
}

#define PREFIX "PREFIX,"

/* Expect an error whose message contains every needle (NULL-terminated), and
 * the buffer back as it was: text already in it, and its NUL. */
static void s_err_json_v(const json_t *image, int convert, va_list ap)
{
    struct fanout_sbuf b = {0};
    ck_assert_int_eq(fanout_sbuf_puts(&b, PREFIX), 0);
    char err[512] = "";
    int rc = fanout_ddb_image_to_json(image, convert, &b, err, sizeof err);
    ck_assert_msg(rc == -1, "expected an error, got %d and %s", rc, (const char *)b.bytes);
    ck_assert_uint_eq(b.len, strlen(PREFIX));
    ck_assert_str_eq((const char *)b.bytes, PREFIX);
    for (const char *needle = va_arg(ap, const char *); needle;
         needle = va_arg(ap, const char *))
        ck_assert_msg(strstr(err, needle) != NULL, "error \"%s\" does not contain \"%s\"",
                      err, needle);
    ck_assert_msg(strchr(err, '\n') == NULL, "error has a newline: %s", err);
    fanout_sbuf_free(&b);
}

static void s_err_json(const json_t *image, int convert, ...)
{
    va_list ap;
    va_start(ap, convert);
    s_err_json_v(image, convert, ap);
    va_end(ap);
}

static void s_err(const char *image_sq, int convert, ...)
{
    json_t *image = s_load(image_sq);
    va_list ap;
    va_start(ap, convert);
    s_err_json_v(image, convert, ap);
    va_end(ap);
    json_decref(image);
}

static void s_key_ok_json(const json_t *keys, const char *expected)
{
    struct fanout_sbuf b = {0};
    ck_assert_int_eq(fanout_sbuf_puts(&b, PREFIX), 0);
    char err[256] = "untouched";
    int rc = fanout_ddb_key(keys, &b, err, sizeof err);
    ck_assert_msg(rc == 0, "key failed: %s", err);
    ck_assert_str_eq(err, "");
    ck_assert_str_eq((const char *)b.bytes + strlen(PREFIX), expected);
    ck_assert_uint_eq(b.len, strlen(PREFIX) + strlen(expected));
    fanout_sbuf_free(&b);
}

static void s_key_ok(const char *keys_sq, const char *expected)
{
    json_t *keys = s_load(keys_sq);
    s_key_ok_json(keys, expected);
    json_decref(keys);
}

static void s_key_err_json(const json_t *keys, ...)
{
    struct fanout_sbuf b = {0};
    ck_assert_int_eq(fanout_sbuf_puts(&b, PREFIX), 0);
    char err[512] = "";
    int rc = fanout_ddb_key(keys, &b, err, sizeof err);
    ck_assert_msg(rc == -1, "expected an error, got key %s", (const char *)b.bytes);
    ck_assert_uint_eq(b.len, strlen(PREFIX));
    ck_assert_str_eq((const char *)b.bytes, PREFIX);
    va_list ap;
    va_start(ap, keys);
    for (const char *needle = va_arg(ap, const char *); needle;
         needle = va_arg(ap, const char *))
        ck_assert_msg(strstr(err, needle) != NULL, "error \"%s\" does not contain \"%s\"",
                      err, needle);
    va_end(ap);
    fanout_sbuf_free(&b);
}

/* ---- every type --------------------------------------------------------- */

static const char *const s_all_types =
    "{'s':{'S':'hello'},'n':{'N':'-12.50e+3'},'b':{'B':'AAD/'},'t':{'BOOL':true},"
    "'f':{'BOOL':false},'z':{'NULL':true},'m':{'M':{'x':{'S':'y'},'e':{'M':{}}}},"
    "'l':{'L':[{'N':'1'},{'S':'two'},{'L':[]}]},'ss':{'SS':['a','b']},"
    "'ns':{'NS':['1','2.5','-3e2']},'bs':{'BS':['AAD/','AQ==','']}}";

START_TEST(test_all_types_converted)
{
    s_ok(s_all_types, 1,
         "{'s':'hello','n':-12.50e+3,'b':'AAD/','t':true,'f':false,'z':null,"
         "'m':{'x':'y','e':{}},'l':[1,'two',[]],'ss':['a','b'],'ns':[1,2.5,-3e2],"
         "'bs':['AAD/','AQ==','']}");
}
END_TEST

START_TEST(test_all_types_unconverted)
{
    /* DynamoDB JSON, compact, in the input's order, N strings untouched */
    s_ok(s_all_types, 0, s_all_types);
    s_ok("{'z':{'N':'007'},'a':{'S':'x'}}", 0, "{'z':{'N':'007'},'a':{'S':'x'}}");
}
END_TEST

START_TEST(test_each_type_alone)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"{'v':{'S':'text'}}", "{'v':'text'}"},
        {"{'v':{'N':'42'}}", "{'v':42}"},
        {"{'v':{'B':'aGVsbG8='}}", "{'v':'aGVsbG8='}"},
        {"{'v':{'BOOL':true}}", "{'v':true}"},
        {"{'v':{'BOOL':false}}", "{'v':false}"},
        {"{'v':{'NULL':true}}", "{'v':null}"},
        {"{'v':{'M':{'a':{'N':'1'}}}}", "{'v':{'a':1}}"},
        {"{'v':{'L':[{'BOOL':true},{'NULL':true}]}}", "{'v':[true,null]}"},
        {"{'v':{'SS':['x']}}", "{'v':['x']}"},
        {"{'v':{'NS':['0.1']}}", "{'v':[0.1]}"},
        {"{'v':{'BS':['AA==']}}", "{'v':['AA==']}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_ok(cases[i].in, 1, cases[i].out);
        s_ok(cases[i].in, 0, cases[i].in);
    }
}
END_TEST

START_TEST(test_empty_values)
{
    s_ok("{}", 1, "{}");
    s_ok("{}", 0, "{}");
    s_ok("{'m':{'M':{}},'l':{'L':[]},'s':{'S':''},'b':{'B':''},'ss':{'SS':[]}}", 1,
         "{'m':{},'l':[],'s':'','b':'','ss':[]}");
    s_ok("{'':{'S':''}}", 1, "{'':''}");
}
END_TEST

START_TEST(test_null_image)
{
    s_ok_json_flags(NULL, 1, "{}", 0);
    s_ok_json_flags(NULL, 0, "{}", 0);
}
END_TEST

START_TEST(test_appends)
{
    /* the output is appended to what the buffer holds */
    struct fanout_sbuf b = {0};
    char err[128];
    ck_assert_int_eq(fanout_sbuf_puts(&b, "["), 0);
    json_t *image = s_load("{'a':{'N':'1'}}");
    ck_assert_int_eq(fanout_ddb_image_to_json(image, 1, &b, err, sizeof err), 0);
    ck_assert_int_eq(fanout_sbuf_puts(&b, ","), 0);
    ck_assert_int_eq(fanout_ddb_image_to_json(image, 0, &b, err, sizeof err), 0);
    ck_assert_int_eq(fanout_sbuf_puts(&b, ","), 0);
    ck_assert_int_eq(fanout_ddb_image_to_json(NULL, 1, &b, err, sizeof err), 0);
    ck_assert_str_eq((const char *)b.bytes, "[{\"a\":1},{\"a\":{\"N\":\"1\"}},{}");
    json_decref(image);
    fanout_sbuf_free(&b);
}
END_TEST

/* ---- the sample event --------------------------------------------------- */

static json_t *s_load_sample(void)
{
    char path[4096];
    const char *dir = getenv("FANOUT_TESTDATA");
    if (dir) {
        snprintf(path, sizeof path, "%s/events/dynamodb.json", dir);
    } else {
        /* run by hand from the build directory: __FILE__ is relative to it */
        snprintf(path, sizeof path, "%s", __FILE__);
        char *slash = strrchr(path, '/');
        ck_assert_ptr_nonnull(slash);
        snprintf(slash, sizeof path - (size_t)(slash - path),
                 "/../data/events/dynamodb.json");
    }
    json_error_t e;
    json_t *event = json_load_file(path, 0, &e);
    ck_assert_msg(event != NULL, "%s: %s", path, e.text);
    return event;
}

START_TEST(test_sample_event)
{
    static const struct {
        const char *price, *blob, *ok;
    } want[6] = {
        {"655072485368.431", "AAD/", "true"},
        {"244380646564.147", "AQD/", "false"},
        {NULL, NULL, NULL},
        {"687740247562.597", "AwD/", "false"},
        {"101451945789.724", "BAD/", "true"},
        {NULL, NULL, NULL},
    };
    json_t *event = s_load_sample();
    json_t *records = json_object_get(event, "Records");
    ck_assert_uint_eq(json_array_size(records), 6);
    for (size_t i = 0; i < 6; i++) {
        json_t *ddb = json_object_get(json_array_get(records, i), "dynamodb");
        const json_t *image = json_object_get(ddb, "NewImage");
        char expected[1024], key[64];
        if (want[i].price) {
            snprintf(expected, sizeof expected,
                     "{\"hash\":\"h1002-%zu\",\"range\":%zu,\"price\":%s,"
                     "\"big\":12345678901234567890123456789.5,\"blob\":\"%s\",\"ok\":%s,"
                     "\"nothing\":null,\"tags\":[\"a\",\"b\"],\"nums\":[1,2.5],"
                     "\"blobs\":[\"%s\"],\"nested\":{\"l\":[\"x\",7,{\"deep\":false}]}}",
                     i, i, want[i].price, want[i].blob, want[i].ok, want[i].blob);
        } else {
            ck_assert_ptr_null(image); /* REMOVE: no NewImage, data is {} */
            snprintf(expected, sizeof expected, "{}");
        }
        s_ok_json_flags(image, 1, expected, 0);
        snprintf(key, sizeof key, "h1002-%zu|%zu", i, i);
        s_key_ok_json(json_object_get(ddb, "Keys"), key);
    }

    /* unconverted: DynamoDB JSON, compact, in order */
    const json_t *image = json_object_get(
        json_object_get(json_array_get(records, 0), "dynamodb"), "NewImage");
    s_ok_json_flags(
        image, 0,
        "{\"hash\":{\"S\":\"h1002-0\"},\"range\":{\"N\":\"0\"},"
        "\"price\":{\"N\":\"655072485368.431\"},"
        "\"big\":{\"N\":\"12345678901234567890123456789.5\"},"
        "\"blob\":{\"B\":\"AAD/\"},\"ok\":{\"BOOL\":true},\"nothing\":{\"NULL\":true},"
        "\"tags\":{\"SS\":[\"a\",\"b\"]},\"nums\":{\"NS\":[\"1\",\"2.5\"]},"
        "\"blobs\":{\"BS\":[\"AAD/\"]},\"nested\":{\"M\":{\"l\":{\"L\":[{\"S\":\"x\"},"
        "{\"N\":\"7\"},{\"M\":{\"deep\":{\"BOOL\":false}}}]}}}}",
        0);

    /* the converted big number reads back as the number it is */
    struct fanout_sbuf b = {0};
    char err[128];
    ck_assert_int_eq(fanout_ddb_image_to_json(image, 1, &b, err, sizeof err), 0);
    json_t *plain = json_loadb((const char *)b.bytes, b.len, 0, NULL);
    ck_assert_ptr_nonnull(plain);
    ck_assert(json_is_real(json_object_get(plain, "big")));
    ck_assert_double_eq_tol(json_real_value(json_object_get(plain, "big")),
                            12345678901234567890123456789.5, 1e13);
    json_decref(plain);
    fanout_sbuf_free(&b);
    json_decref(event);
}
END_TEST

/* ---- numbers ------------------------------------------------------------ */

START_TEST(test_numbers_accepted)
{
    static const struct {
        const char *in, *out;
        int big_int; /* beyond int64: jansson needs JSON_DECODE_INT_AS_REAL */
    } cases[] = {
        {"0", "0", 0},
        {"-0", "-0", 0},
        {"7", "7", 0},
        {"-42.5", "-42.5", 0},
        {"1.50", "1.50", 0}, /* trailing zeros as sent */
        {"100", "100", 0},
        {"0.000", "0.000", 0},
        /* DynamoDB accepts these input forms; JSON does not, so minimal fixes */
        {"007", "7", 0},
        {"-007.10", "-7.10", 0},
        {"00", "0", 0},
        {"00.5", "0.5", 0},
        {"+5", "5", 0},
        {"+0.0", "0.0", 0},
        {".5", "0.5", 0},
        {"-.5", "-0.5", 0},
        {"+.5", "0.5", 0},
        {"5.", "5", 0},
        {"-5.", "-5", 0},
        {"5.e3", "5e3", 0},
        /* exponents exactly as sent */
        {"1e5", "1e5", 0},
        {"1E5", "1E5", 0},
        {"1e+5", "1e+5", 0},
        {"-17.4E37", "-17.4E37", 0},
        {"1E-05", "1E-05", 0},
        {"0e1000", "0e1000", 0},
        {"0E-99999999999999999999", "0E-99999999999999999999", 0},
        /* limits: 38 significant digits, magnitudes 1E-130 .. 9.99..E+125 */
        {"12345678901234567890123456789012345678", "12345678901234567890123456789012345678",
         1},
        {"-12345678901234567890123456789012345678",
         "-12345678901234567890123456789012345678", 1},
        {"3.1415926535897932384626433832795028841",
         "3.1415926535897932384626433832795028841", 0},
        {"12345678901234567890123456789012345678000000",
         "12345678901234567890123456789012345678000000", 1},
        {"0.000012345678901234567890123456789012345678",
         "0.000012345678901234567890123456789012345678", 0},
        {"31415926535897932384626433832795028841e30",
         "31415926535897932384626433832795028841e30", 0},
        {"9.9999999999999999999999999999999999999E125",
         "9.9999999999999999999999999999999999999E125", 0},
        {"-9.9999999999999999999999999999999999999E+125",
         "-9.9999999999999999999999999999999999999E+125", 0},
        {"1E-130", "1E-130", 0},
        {"-1e-130", "-1e-130", 0},
        {"0.01e-128", "0.01e-128", 0},
        {"1000e122", "1000e122", 0},
        {"12345678901234567890123456789.5", "12345678901234567890123456789.5", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char in[256], out[256], set_in[256], set_out[256];
        snprintf(in, sizeof in, "{'n':{'N':'%s'}}", cases[i].in);
        snprintf(out, sizeof out, "{'n':%s}", cases[i].out);
        size_t flags = cases[i].big_int ? JSON_DECODE_INT_AS_REAL : 0;
        s_ok_flags(in, 1, out, flags);
        s_ok_flags(in, 0, in, 0);
        snprintf(set_in, sizeof set_in, "{'n':{'NS':['1','%s']}}", cases[i].in);
        snprintf(set_out, sizeof set_out, "{'n':[1,%s]}", cases[i].out);
        s_ok_flags(set_in, 1, set_out, flags);
    }
}
END_TEST

START_TEST(test_numbers_rejected)
{
    static const struct {
        const char *in, *why;
    } cases[] = {
        {"", "is not a number"},
        {"NaN", "is not a number"},
        {"-NaN", "is not a number"},
        {"Infinity", "is not a number"},
        {"-Infinity", "is not a number"},
        {"inf", "is not a number"},
        {"dog", "is not a number"},
        {"+", "is not a number"},
        {"-", "is not a number"},
        {".", "is not a number"},
        {"+.", "is not a number"},
        {"-.e1", "is not a number"},
        {"e5", "is not a number"},
        {"+e2", "is not a number"},
        {"1e", "is not a number"},
        {"1e+", "is not a number"},
        {"1e5.5", "is not a number"},
        {"1.2.3", "is not a number"},
        {"++5", "is not a number"},
        {"+-5", "is not a number"},
        {"1+2", "is not a number"},
        {" 5", "is not a number"},
        {"5 ", "is not a number"},
        {"0x10", "is not a number"},
        {"1,5", "is not a number"},
        {"1_000", "is not a number"},
        {"\\u0661", "is not a number"}, /* ARABIC-INDIC DIGIT ONE */
        {"123456789012345678901234567890123456789", "has 39 significant digits"},
        {"3.14159265358979323846264338327950288419", "has 39 significant digits"},
        {"0.000123456789012345678901234567890123456789", "has 39 significant digits"},
        {"1E126", "too large"},
        {"-1E126", "too large"},
        {"11e125", "too large"},
        {"99999999999999999999999999999999999999e89", "too large"},
        {"1e99999999999999999999999999", "too large"},
        {"1E-131", "too small"},
        {"0.9e-130", "too small"},
        {"-0.1e-130", "too small"},
        {"1e-99999999999999999999999999", "too small"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char in[256];
        snprintf(in, sizeof in, "{'a':{'S':'ok'},'n':{'N':'%s'}}", cases[i].in);
        s_err(in, 1, "attribute \"n\": N value \"", cases[i].why, NULL);
        snprintf(in, sizeof in, "{'a':{'S':'ok'},'n':{'M':{'x':{'NS':['1','%s']}}}}",
                 cases[i].in);
        s_err(in, 1, "attribute \"n.x[1]\": NS member value \"", cases[i].why, NULL);
        /* without conversion, values pass through unchecked */
        snprintf(in, sizeof in, "{'n':{'N':'%s'}}", cases[i].in);
        if (!strchr(cases[i].in, '\\'))
            s_ok(in, 0, in);
    }
}
END_TEST

START_TEST(test_number_with_nul)
{
    static const char one_nul_two[] = {'1', 0, '2'};
    json_t *image = json_pack("{s:{s:o}}", "n", "N", json_stringn(one_nul_two, 3));
    ck_assert_ptr_nonnull(image);
    s_err_json(image, 1, "attribute \"n\": N value \"1?2\" is not a number", NULL);
    json_decref(image);
}
END_TEST

/* ---- strings ------------------------------------------------------------ */

START_TEST(test_string_escapes)
{
    /* quotes, backslash, control characters, non-ASCII (2, 3, 4 bytes) and
     * '/', which needs no escape; in names too */
    const char *in =
        "{\"k\\\"e\\\\y\\n\":{\"S\":\"q\\\"b\\\\c\\u0001\\n\\t\\r\\b\\f\\u001f\\u007f"
        "/é日😀\"},\"m\":{\"M\":{\"\\u00e9\\\"\":{\"SS\":[\"\\\"\",\"\\\\\"]}}}}";
    json_error_t e;
    json_t *image = json_loads(in, 0, &e);
    ck_assert_msg(image != NULL, "%s", e.text);
    s_ok_json_flags(image, 1,
                    "{\"k\\\"e\\\\y\\n\":\"q\\\"b\\\\c\\u0001\\n\\t\\r\\b\\f\\u001f\x7f"
                    "/é日😀\",\"m\":{\"é\\\"\":[\"\\\"\",\"\\\\\"]}}",
                    0);
    /* jansson writes \u escapes in upper case */
    s_ok_json_flags(
        image, 0,
        "{\"k\\\"e\\\\y\\n\":{\"S\":\"q\\\"b\\\\c\\u0001\\n\\t\\r\\b\\f\\u001F\x7f"
        "/é日😀\"},\"m\":{\"M\":{\"é\\\"\":{\"SS\":[\"\\\"\",\"\\\\\"]}}}}",
        0);
    json_decref(image);
}
END_TEST

START_TEST(test_string_with_nul)
{
    json_t *image = json_pack("{s:{s:o}}", "s", "S", json_stringn("a\0b", 3));
    ck_assert_ptr_nonnull(image);
    /* valid JSON; jansson wants JSON_ALLOW_NUL to read it back */
    s_ok_json_flags(image, 1, "{\"s\":\"a\\u0000b\"}", JSON_ALLOW_NUL);
    json_decref(image);
}
END_TEST

START_TEST(test_large_values)
{
    /* big enough to grow the buffer many times over, and to cross the base64
     * checker's 4096-character chunks */
    size_t n = 100000;
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, 'a', n);
    s[n] = 0;
    uint8_t *raw = malloc(9000);
    ck_assert_ptr_nonnull(raw);
    for (size_t i = 0; i < 9000; i++)
        raw[i] = (uint8_t)(i * 7);
    struct fanout_sbuf b64 = {0};
    ck_assert_int_eq(fanout_sbuf_base64(&b64, raw, 8999), 0); /* ends in '=' */
    ck_assert_uint_eq(b64.len, 12000);

    json_t *image =
        json_pack("{s:{s:s},s:{s:s}}", "s", "S", s, "b", "B", (const char *)b64.bytes);
    ck_assert_ptr_nonnull(image);
    struct fanout_sbuf expected = {0};
    ck_assert_int_eq(fanout_sbuf_printf(&expected, "{\"s\":\"%s\",\"b\":\"%s\"}", s,
                                        (const char *)b64.bytes),
                     0);
    s_ok_json_flags(image, 1, (const char *)expected.bytes, 0);
    json_decref(image);

    /* padding at the end of a chunk but not of the value */
    static const struct {
        size_t at;
        const char *set, *offset;
    } bad[] = {
        {4094, "==", "unexpected '=' at offset 4094"},
        {4095, "=", "unexpected '=' at offset 4095"},
        {4096, "=", "unexpected '=' at offset 4096"},
        {5000, "!", "unexpected '!' at offset 5000"},
        {11997, "\n", "unexpected 0x0a at offset 11997"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *copy = strdup((const char *)b64.bytes);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy + bad[i].at, bad[i].set, strlen(bad[i].set));
        image = json_pack("{s:{s:s}}", "b", "B", copy);
        s_err_json(image, 1, "attribute \"b\": B value is not valid base64", bad[i].offset,
                   NULL);
        json_decref(image);
        free(copy);
    }

    fanout_sbuf_free(&expected);
    fanout_sbuf_free(&b64);
    free(raw);
    free(s);
}
END_TEST

/* ---- nesting ------------------------------------------------------------ */

/* An image {"d": V} where V is `levels` nested M (kind 'M'), L ('L') or
 * alternating ('X') values around {"S": "x"}; *expected gets the plain JSON. */
static json_t *s_nested(int levels, char kind, struct fanout_sbuf *expected)
{
    json_t *v = json_pack("{s:s}", "S", "x");
    for (int i = 0; i < levels; i++) {
        int map = kind == 'M' || (kind == 'X' && i % 2 == 0);
        v = map ? json_pack("{s:{s:o}}", "M", "d", v) : json_pack("{s:[o]}", "L", v);
        ck_assert_ptr_nonnull(v);
    }
    if (expected) {
        fanout_sbuf_puts(expected, "{\"d\":");
        for (int i = levels - 1; i >= 0; i--) {
            int map = kind == 'M' || (kind == 'X' && i % 2 == 0);
            fanout_sbuf_puts(expected, map ? "{\"d\":" : "[");
        }
        fanout_sbuf_puts(expected, "\"x\"");
        for (int i = 0; i < levels; i++) {
            int map = kind == 'M' || (kind == 'X' && i % 2 == 0);
            fanout_sbuf_puts(expected, map ? "}" : "]");
        }
        fanout_sbuf_puts(expected, "}");
    }
    return json_pack("{s:o}", "d", v);
}

START_TEST(test_nesting_limit)
{
    static const char kinds[] = {'M', 'L', 'X'};
    for (size_t k = 0; k < sizeof kinds; k++) {
        struct fanout_sbuf expected = {0};
        json_t *image = s_nested(DDB_MAX_DEPTH, kinds[k], &expected);
        s_ok_json_flags(image, 1, (const char *)expected.bytes, 0);
        json_decref(image);
        fanout_sbuf_free(&expected);

        image = s_nested(DDB_MAX_DEPTH + 1, kinds[k], NULL);
        s_err_json(image, 1, "attribute \"d", "nested more than 32 levels deep", NULL);
        json_decref(image);

        /* far deeper than the limit: refused, not recursed through */
        image = s_nested(1000, kinds[k], NULL);
        s_err_json(image, 1, "nested more than 32 levels deep", NULL);
        json_decref(image);
    }
    /* the path names the value that goes too deep */
    json_t *image = s_nested(DDB_MAX_DEPTH + 1, 'M', NULL);
    struct fanout_sbuf path = {0};
    fanout_sbuf_puts(&path, "attribute \"d");
    for (int i = 0; i < DDB_MAX_DEPTH; i++)
        fanout_sbuf_puts(&path, ".d");
    fanout_sbuf_puts(&path, "\": M and L values nested more than 32 levels deep");
    s_err_json(image, 1, (const char *)path.bytes, NULL);
    json_decref(image);
    fanout_sbuf_free(&path);
}
END_TEST

START_TEST(test_nested_mixed)
{
    s_ok("{'a':{'L':[{'M':{'b':{'L':[{'L':[{'N':'1'}]},{'M':{}}]}}},{'SS':['s']}]}}", 1,
         "{'a':[{'b':[[1],{}]},['s']]}");
}
END_TEST

/* ---- errors ------------------------------------------------------------- */

START_TEST(test_error_unknown_type)
{
    /* the message is the one ddb.h documents, exactly */
    json_t *image = s_load("{'nested':{'M':{'l':{'L':[{'S':'x'},{'N':'7'},{'X':'?'}]}}}}");
    struct fanout_sbuf b = {0};
    char err[256];
    ck_assert_int_eq(fanout_ddb_image_to_json(image, 1, &b, err, sizeof err), -1);
    ck_assert_str_eq(err,
                     "attribute \"nested.l[2]\": unknown DynamoDB type \"X\" (expected one "
                     "of S, N, B, BOOL, NULL, M, L, SS, NS, BS)");
    ck_assert_uint_eq(b.len, 0);
    ck_assert(b.bytes == NULL || b.bytes[0] == 0);
    json_decref(image);
    fanout_sbuf_free(&b);

    s_err("{'a':{'s':'lowercase'}}", 1, "attribute \"a\": unknown DynamoDB type \"s\"",
          NULL);
    s_err("{'a':{'':'x'}}", 1, "attribute \"a\": unknown DynamoDB type \"\"", NULL);
}
END_TEST

START_TEST(test_error_wrappers)
{
    s_err("{'a':{}}", 1, "attribute \"a\": empty AttributeValue", "exactly one", NULL);
    s_err("{'a':{'S':'x','N':'1'}}", 1,
          "attribute \"a\": AttributeValue has 2 type keys (\"S\", \"N\"); expected "
          "exactly one",
          NULL);
    s_err("{'a':{'S':'x','N':'1','B':''}}", 1, "has 3 type keys (\"S\", \"N\", ...)", NULL);
    s_err("{'a':'x'}", 1, "attribute \"a\": expected an AttributeValue object",
          "got a string", NULL);
    s_err("{'a':[]}", 1, "attribute \"a\": expected an AttributeValue object",
          "got an array", NULL);
    s_err("{'a':null}", 1, "attribute \"a\": expected an AttributeValue object", "got null",
          NULL);
    s_err("{'a':{'L':[{'S':'x'},5]}}", 1, "attribute \"a[1]\": expected an AttributeValue",
          "got an integer", NULL);
}
END_TEST

START_TEST(test_error_wrong_json_types)
{
    static const struct {
        const char *in, *msg;
    } cases[] = {
        {"{'a':{'S':5}}", "attribute \"a\": S value must be a string, got an integer"},
        {"{'a':{'S':null}}", "attribute \"a\": S value must be a string, got null"},
        {"{'a':{'N':1.5}}", "attribute \"a\": N value must be a string, got a real number"},
        {"{'a':{'N':15}}", "attribute \"a\": N value must be a string, got an integer"},
        {"{'a':{'B':[]}}", "attribute \"a\": B value must be a string, got an array"},
        {"{'a':{'BOOL':'true'}}",
         "attribute \"a\": BOOL value must be true or false, got a string"},
        {"{'a':{'BOOL':1}}",
         "attribute \"a\": BOOL value must be true or false, got an integer"},
        {"{'a':{'NULL':false}}", "attribute \"a\": NULL value must be true, got false"},
        {"{'a':{'NULL':null}}", "attribute \"a\": NULL value must be true, got null"},
        {"{'a':{'M':[]}}", "attribute \"a\": M value must be an object, got an array"},
        {"{'a':{'M':'x'}}", "attribute \"a\": M value must be an object, got a string"},
        {"{'a':{'L':{}}}", "attribute \"a\": L value must be an array, got an object"},
        {"{'a':{'SS':'a'}}", "attribute \"a\": SS value must be an array, got a string"},
        {"{'a':{'NS':'1'}}", "attribute \"a\": NS value must be an array, got a string"},
        {"{'a':{'BS':{}}}", "attribute \"a\": BS value must be an array, got an object"},
        {"{'a':{'SS':['x',2]}}",
         "attribute \"a[1]\": SS member value must be a string, got an integer"},
        {"{'a':{'NS':['1',2]}}",
         "attribute \"a[1]\": NS member value must be a string, got an integer"},
        {"{'a':{'BS':['AA==',true]}}",
         "attribute \"a[1]\": BS member value must be a string, got true"},
        {"{'a':{'SS':[{'S':'x'}]}}",
         "attribute \"a[0]\": SS member value must be a string, got an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_err(cases[i].in, 1, cases[i].msg, NULL);
}
END_TEST

START_TEST(test_error_base64)
{
    static const struct {
        const char *in, *msg;
    } cases[] = {
        {"AAD", "length 3 is not a multiple of 4"},
        {"AAD/A", "length 5 is not a multiple of 4"},
        {"AA=A", "unexpected '=' at offset 2"},
        {"A===", "unexpected '=' at offset 1"},
        {"====", "unexpected '=' at offset 0"},
        {"AB==", "unexpected 'B' at offset 1"}, /* non-zero trailing bits */
        {"AAB=", "unexpected 'B' at offset 2"},
        {"AA==AAAA", "unexpected '=' at offset 2"},
        {"AAD-", "unexpected '-' at offset 3"}, /* base64url is not base64 */
        {"AA D", "unexpected ' ' at offset 2"},
        {"AAD\\t", "unexpected 0x09 at offset 3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char in[128];
        snprintf(in, sizeof in, "{'a':{'M':{'b':{'B':'%s'}}}}", cases[i].in);
        s_err(in, 1, "attribute \"a.b\": B value is not valid base64: ", cases[i].msg,
              NULL);
        snprintf(in, sizeof in, "{'a':{'BS':['AAAA','%s']}}", cases[i].in);
        s_err(in, 1,
              "attribute \"a[1]\": BS member value is not valid base64: ", cases[i].msg,
              NULL);
    }
}
END_TEST

START_TEST(test_error_paths)
{
    s_err("{'a':{'M':{'b':{'L':[{'S':'x'},{'N':'1'},{'M':{'c':{'S':5}}}]}}}}", 1,
          "attribute \"a.b[2].c\": S value must be a string", NULL);
    s_err("{'ok':{'S':'x'},'x':{'L':[{'L':[{'BOOL':true},{'L':[{'Q':1}]}]}]}}", 1,
          "attribute \"x[0][1][0]\": unknown DynamoDB type \"Q\"", NULL);
    /* names are quoted safely: control characters become '?', long ones cut */
    s_err("{'we\\nird':{'M':{'tab\\there':{'N':'x'}}}}", 1,
          "attribute \"we?ird.tab?here\": N value \"x\" is not a number", NULL);
    char long_name[200], in[400], needle[200];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    snprintf(in, sizeof in, "{'%s':{'S':1}}", long_name);
    snprintf(needle, sizeof needle, "attribute \"%.64s...\": S value", long_name);
    s_err(in, 1, needle, NULL);
    /* a long type name is cut too, at a UTF-8 character boundary: 41 two-byte
     * characters, cut to the 32 that fit in 64 bytes */
    struct fanout_sbuf type = {0};
    for (int i = 0; i < 41; i++)
        fanout_sbuf_puts(&type, "\u00e9");
    snprintf(in, sizeof in, "{'a':{'%s':1}}", (const char *)type.bytes);
    fanout_sbuf_reset(&type);
    fanout_sbuf_puts(&type, "unknown DynamoDB type \"");
    for (int i = 0; i < 32; i++)
        fanout_sbuf_puts(&type, "\xc3\xa9");
    fanout_sbuf_puts(&type, "...\"");
    s_err(in, 1, (const char *)type.bytes, NULL);
    fanout_sbuf_free(&type);
}
END_TEST

START_TEST(test_error_image)
{
    s_err("[]", 1, "image: expected an object of attributes, got an array", NULL);
    s_err("[]", 0, "image: expected an object of attributes, got an array", NULL);
    json_t *s = json_string("x");
    s_err_json(s, 1, "image: expected an object of attributes, got a string", NULL);
    s_err_json(s, 0, "image: expected an object of attributes, got a string", NULL);
    json_decref(s);
}
END_TEST

START_TEST(test_error_restores_buffer)
{
    /* the error comes after much output: all of it is taken back */
    struct fanout_sbuf b = {0};
    ck_assert_int_eq(fanout_sbuf_puts(&b, "keep"), 0);
    json_t *image = s_load(
        "{'a':{'S':'"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'},"
        "'b':{'L':[{'N':'1'},{'N':'2'},{'M':{'c':{'BOOL':'no'}}}]}}");
    char err[256];
    for (int i = 0; i < 300; i++) /* grow it past its first capacity */
        ck_assert_int_eq(fanout_ddb_image_to_json(image, 0, &b, err, sizeof err), 0);
    size_t len = b.len;
    ck_assert_int_eq(fanout_ddb_image_to_json(image, 1, &b, err, sizeof err), -1);
    ck_assert_uint_eq(b.len, len);
    ck_assert_int_eq(b.bytes[len], 0);
    ck_assert_int_eq(memcmp(b.bytes, "keep{", 5), 0);
    ck_assert_str_eq(
        err, "attribute \"b[2].c\": BOOL value must be true or false, got a string");
    json_decref(image);
    fanout_sbuf_free(&b);

    /* an empty, never-allocated buffer stays that way */
    struct fanout_sbuf empty = {0};
    image = s_load("{'a':{'X':1}}");
    ck_assert_int_eq(fanout_ddb_image_to_json(image, 1, &empty, err, sizeof err), -1);
    ck_assert_uint_eq(empty.len, 0);
    json_decref(image);
    fanout_sbuf_free(&empty);
}
END_TEST

START_TEST(test_error_text_bounds)
{
    json_t *image = s_load("{'attribute_with_a_long_name':{'X':1}}");
    struct fanout_sbuf b = {0};
    /* no error buffer at all */
    ck_assert_int_eq(fanout_ddb_image_to_json(image, 1, &b, NULL, 0), -1);
    /* a small one: cut and terminated */
    char err[16];
    memset(err, 'z', sizeof err);
    ck_assert_int_eq(fanout_ddb_image_to_json(image, 1, &b, err, sizeof err), -1);
    ck_assert_str_eq(err, "attribute \"attr");
    char one[1] = {'z'};
    ck_assert_int_eq(fanout_ddb_image_to_json(image, 1, &b, one, sizeof one), -1);
    ck_assert_int_eq(one[0], 0);
    ck_assert_uint_eq(b.len, 0);
    json_decref(image);

    json_t *keys = s_load("{'k':{'BOOL':true}}");
    ck_assert_int_eq(fanout_ddb_key(keys, &b, NULL, 0), -1);
    json_decref(keys);
    fanout_sbuf_free(&b);
}
END_TEST

START_TEST(test_unconverted_passes_through)
{
    /* without conversion nothing inside the image is checked */
    s_ok("{'a':{'X':1},'b':{'S':5},'c':{},'d':{'N':'NaN'}}", 0,
         "{'a':{'X':1},'b':{'S':5},'c':{},'d':{'N':'NaN'}}");
}
END_TEST

/* ---- conversion while the event is scanned ------------------------------ */

/* `part` (single-quote JSON, in *part_dq as JSON) followed by `tail`, as
 * in an event's text. */
static char *s_in_event(const char *part_sq, const char *tail, char **part_dq, size_t *n)
{
    *part_dq = s_dq(part_sq);
    *n = strlen(*part_dq);
    char *text = malloc(*n + strlen(tail) + 1);
    ck_assert_ptr_nonnull(text);
    memcpy(text, *part_dq, *n);
    strcpy(text + *n, tail);
    return text;
}

/* fanout_ddb_image_shape of an image (single-quote JSON) followed by the
 * rest of an event: the image's end and fanout_ddb_image_text's bytes when
 * `accepted`, else NULL. */
static void s_shape(const char *image_sq, int accepted, size_t count)
{
    char *image;
    size_t n;
    char *text = s_in_event(image_sq, "}}, {\"eventName\": \"INSERT\"}]}", &image, &n);
    struct fanout_sbuf got = {0}, want = {0};
    struct fanout_arena nodes = {0};
    char err[256];
    size_t c = 12345;
    const char *end = fanout_ddb_image_shape(text, text + strlen(text), &c, &got);
    if (!accepted) {
        ck_assert_msg(end == NULL, "accepted: %s", image);
    } else {
        ck_assert_msg(end == text + n, "not accepted, or wrong end: %s", image);
        ck_assert_uint_eq(c, count);
        ck_assert_int_eq(fanout_ddb_image_text(image, n, 1, &nodes, &want, err, sizeof err),
                         0);
        ck_assert_str_eq(got.p, want.p);
        ck_assert_uint_eq(got.len, want.len);
    }
    fanout_sbuf_free(&got);
    fanout_sbuf_free(&want);
    fanout_arena_free(&nodes);
    free(text);
    free(image);
}

START_TEST(test_shape_accepted)
{
    s_shape("{}", 1, 0);
    s_shape("{ }", 1, 0);
    s_shape("{'a':{'S':'x'}}", 1, 1);
    s_shape("{'pk': {'S': 'user#1'}, 'n': {'N': '-12.5'}, 'b': {'BOOL': false},"
            " 'z': {'NULL': true}, 'm': {'M': {'in': {'L': [{'S': 'a'}, {'N': '1'},"
            " {'M': {}}, {'L': []}]}}}}",
            1, 5);
    s_shape("{\n\t'a' : { 'S' : '' } ,'b':{'M':{'a':{'S':'same name, other map'}}}}", 1, 2);
}
END_TEST

START_TEST(test_shape_refused)
{
    /* what the scan must read itself, valid or not */
    s_shape("{'a':{'S':'x'},'a':{'S':'y'}}", 0, 0);             /* repeated name */
    s_shape("{'m':{'M':{'a':{'N':'1'},'a':{'N':'2'}}}}", 0, 0); /* repeated, inside */
    s_shape("{'a':{'S':'x\\\\y'}}", 0, 0);                      /* an escape */
    s_shape("{'a\\u0041':{'S':'x'}}", 0, 0);                    /* an escaped name */
    s_shape("{'a':{'S':'caf\xc3\xa9'}}", 0, 0);                 /* not ASCII */
    s_shape("{'a':{'S':'tab\there'}}", 0, 0);                   /* a control character */
    s_shape("{'a':{'S':'bad\xff'}}", 0, 0);                     /* not UTF-8 */
    s_shape("{'a':{'N':5}}", 0, 0);                             /* a JSON number */
    s_shape("{'a':{'N':'1e3'}}", 0, 0);                         /* N not plain */
    s_shape("{'a':{'B':'AAAA'}}", 0, 0);                        /* B: handed over */
    s_shape("{'a':{'SS':['x']}}", 0, 0);                        /* sets: handed over */
    s_shape("{'a':{'X':'1'}}", 0, 0);                           /* unknown type */
    s_shape("{'a':{'S':'x','N':'1'}}", 0, 0);                   /* two types */
    s_shape("{'a':{'BOOL':nul}}", 0, 0);                        /* a bad literal */
    s_shape("{'a':{'S':'x'},}", 0, 0);                          /* a trailing comma */
    s_shape("{'a':{'S':'x'};", 0, 0);                           /* not closed */
    s_shape("{'a' {'S':'x'}}", 0, 0);                           /* no ':' */
    s_shape("[{'S':'x'}]", 0, 0);                               /* not an object */
    /* more names in one object than the quick pass compares */
    struct fanout_sbuf many = {0};
    fanout_sbuf_putc(&many, '{');
    for (int i = 0; i < 33; i++)
        fanout_sbuf_printf(&many, "%s'a%d':{'S':'x'}", i ? "," : "", i);
    fanout_sbuf_putc(&many, '}');
    s_shape(many.p, 0, 0);
    /* deeper than DynamoDB allows */
    struct fanout_sbuf deep = {0};
    fanout_sbuf_puts(&deep, "{'a':");
    for (int i = 0; i < DDB_MAX_DEPTH + 1; i++)
        fanout_sbuf_puts(&deep, "{'L':[");
    fanout_sbuf_puts(&deep, "{'S':'x'}");
    for (int i = 0; i < DDB_MAX_DEPTH + 1; i++)
        fanout_sbuf_puts(&deep, "]}");
    fanout_sbuf_putc(&deep, '}');
    s_shape(deep.p, 0, 0);
    fanout_sbuf_free(&many);
    fanout_sbuf_free(&deep);
    /* an image at the very end of the text: read by the scan */
    struct fanout_sbuf got = {0};
    size_t c;
    const char *img = "{\"a\":{\"S\":\"x\"}}";
    ck_assert_ptr_null(fanout_ddb_image_shape(img, img + strlen(img), &c, &got));
    fanout_sbuf_free(&got);
}
END_TEST

/* fanout_ddb_keys_shape of Keys (single-quote JSON) followed by the rest
 * of an event: their end and fanout_ddb_key_text's key when `accepted`,
 * else NULL and nothing written. */
static void s_keys_shape(const char *keys_sq, int accepted, size_t count)
{
    char *keys;
    size_t n;
    char *text =
        s_in_event(keys_sq, ", \"NewImage\": {}}, \"eventName\": \"INSERT\"}]}", &keys, &n);
    struct fanout_sbuf got = {0}, want = {0};
    struct fanout_arena nodes = {0};
    char err[256];
    size_t c = 12345;
    fanout_sbuf_puts(&got, "left over");
    const char *end = fanout_ddb_keys_shape(text, text + strlen(text), &c, &got);
    if (!accepted) {
        ck_assert_msg(end == NULL, "accepted: %s", keys);
        ck_assert_uint_eq(got.len, 0);
    } else {
        ck_assert_msg(end == text + n, "not accepted, or wrong end: %s", keys);
        ck_assert_uint_eq(c, count);
        ck_assert_int_eq(fanout_ddb_key_text(keys, n, &nodes, &want, err, sizeof err), 0);
        ck_assert_uint_eq(got.len, want.len);
        ck_assert_mem_eq(got.p, want.p, want.len);
    }
    fanout_sbuf_free(&got);
    fanout_sbuf_free(&want);
    fanout_arena_free(&nodes);
    free(text);
    free(keys);
}

START_TEST(test_keys_shape)
{
    s_keys_shape("{'pk':{'S':'user#1'}}", 1, 1);
    s_keys_shape("{'pk': {'S': 'user#1'}, 'sk': {'N': '-12.50'}}", 1, 2);
    s_keys_shape("{ 'b' : { 'B' : 'AAD/' } ,\n\t'r':{'S':''}}", 1, 2);
    s_keys_shape("{'range':{'N':'5'},'hash':{'S':'x|y'}}", 1, 2);
    /* what the scan and fanout_ddb_key_text must read themselves */
    s_keys_shape("{}", 0, 0);                            /* empty: an error */
    s_keys_shape("{'a':{'S':'x'},'a':{'S':'y'}}", 0, 0); /* repeated name */
    s_keys_shape("{'a':{'S':'x\\\\y'}}", 0, 0);          /* an escape */
    s_keys_shape("{'a\\u0041':{'S':'x'}}", 0, 0);        /* an escaped name */
    s_keys_shape("{'a':{'S':'caf\xc3\xa9'}}", 0, 0);     /* not ASCII */
    s_keys_shape("{'a':{'S':'tab\there'}}", 0, 0);       /* a control character */
    s_keys_shape("{'a':{'N':5}}", 0, 0);                 /* a JSON number */
    s_keys_shape("{'a':{'N':'1e3'}}", 0, 0);             /* N not plain */
    s_keys_shape("{'a':{'B':'AA='}}", 0, 0);             /* B not base64 */
    s_keys_shape("{'a':{'BOOL':true}}", 0, 0);           /* not a key type */
    s_keys_shape("{'a':{'M':{}}}", 0, 0);                /* not a key type */
    s_keys_shape("{'a':{'S':'x','N':'1'}}", 0, 0);       /* two types */
    s_keys_shape("{'a':{'S':'x'},}", 0, 0);              /* a trailing comma */
    s_keys_shape("{'a':{'S':'x'};", 0, 0);               /* not closed */
    s_keys_shape("{'a' {'S':'x'}}", 0, 0);               /* no ':' */
    s_keys_shape("[{'S':'x'}]", 0, 0);                   /* not an object */
    /* more names than the quick pass compares */
    struct fanout_sbuf many = {0};
    fanout_sbuf_putc(&many, '{');
    for (int i = 0; i < 33; i++)
        fanout_sbuf_printf(&many, "%s'a%d':{'S':'x'}", i ? "," : "", i);
    fanout_sbuf_putc(&many, '}');
    s_keys_shape(many.p, 0, 0);
    fanout_sbuf_free(&many);
    /* Keys at the very end of the text: read by the scan */
    struct fanout_sbuf got = {0};
    size_t c;
    const char *keys = "{\"a\":{\"S\":\"x\"}}";
    ck_assert_ptr_null(fanout_ddb_keys_shape(keys, keys + strlen(keys), &c, &got));
    fanout_sbuf_free(&got);
}
END_TEST

/* ---- keys --------------------------------------------------------------- */

START_TEST(test_key)
{
    s_key_ok("{'hash':{'S':'h1'},'range':{'N':'0'}}", "h1|0");
    s_key_ok("{'hash':{'S':'h1'}}", "h1");
    s_key_ok("{'id':{'N':'12345678901234567890123456789.5'}}",
             "12345678901234567890123456789.5");
    s_key_ok("{'id':{'N':'+5'}}", "+5"); /* checked, kept as sent: the key is text */
    s_key_ok("{'blob':{'B':'AAD/'}}", "AAD/");
    s_key_ok("{'blob':{'B':'AAD/'},'range':{'S':'x|y'}}", "AAD/|x|y");
    /* the order of the object, not sorted */
    s_key_ok("{'range':{'N':'5'},'hash':{'S':'h'}}", "5|h");
    s_key_ok("{'z':{'S':'1'},'a':{'S':'2'},'m':{'S':'3'}}", "1|2|3");
    /* text as it is, no JSON escaping */
    s_key_ok("{'k':{'S':'a\\\"b\\\\c é'}}", "a\"b\\c é");
    s_key_ok("{'k':{'S':''}}", "");
}
END_TEST

START_TEST(test_key_errors)
{
    json_t *k;
    k = s_load("{'k':{'BOOL':true}}");
    s_key_err_json(
        k, "key attribute \"k\": type \"BOOL\" cannot be a key (expected S, N or B)", NULL);
    json_decref(k);
    static const char *const not_keys[] = {"NULL", "M", "L", "SS", "NS", "BS", "X"};
    for (size_t i = 0; i < sizeof not_keys / sizeof not_keys[0]; i++) {
        char in[64], msg[128];
        snprintf(in, sizeof in, "{'h':{'S':'x'},'k':{'%s':true}}", not_keys[i]);
        snprintf(msg, sizeof msg, "key attribute \"k\": type \"%s\" cannot be a key",
                 not_keys[i]);
        k = s_load(in);
        s_key_err_json(k, msg, NULL);
        json_decref(k);
    }

    k = s_load("{}");
    s_key_err_json(k, "Keys: empty object", NULL);
    json_decref(k);
    k = s_load("[]");
    s_key_err_json(k, "Keys: expected an object of key attributes, got an array", NULL);
    json_decref(k);
    s_key_err_json(NULL, "Keys: expected an object of key attributes, got nothing", NULL);

    static const struct {
        const char *in, *msg;
    } cases[] = {
        {"{'h':{'S':'x'},'k':'v'}",
         "key attribute \"k\": expected an AttributeValue object"},
        {"{'k':{}}", "key attribute \"k\": empty AttributeValue"},
        {"{'k':{'S':'x','N':'1'}}", "key attribute \"k\": AttributeValue has 2 type keys"},
        {"{'k':{'S':1}}", "key attribute \"k\": S value must be a string, got an integer"},
        {"{'k':{'N':1}}", "key attribute \"k\": N value must be a string, got an integer"},
        {"{'k':{'B':null}}", "key attribute \"k\": B value must be a string, got null"},
        {"{'h':{'S':'x'},'k':{'N':'1.2.3'}}",
         "key attribute \"k\": N value \"1.2.3\" is not a number"},
        {"{'k':{'N':'NaN'}}", "key attribute \"k\": N value \"NaN\" is not a number"},
        {"{'k':{'N':'1e200'}}", "key attribute \"k\": N value \"1e200\" is too large"},
        {"{'h':{'S':'x'},'k':{'B':'AAD'}}",
         "key attribute \"k\": B value is not valid base64"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        k = s_load(cases[i].in);
        s_key_err_json(k, cases[i].msg, NULL);
        json_decref(k);
    }
}
END_TEST

/* ---- runner ------------------------------------------------------------- */

static Suite *s_suite(void)
{
    Suite *s = suite_create("ddb");
    TCase *tc = tcase_create("convert");
    tcase_add_test(tc, test_all_types_converted);
    tcase_add_test(tc, test_all_types_unconverted);
    tcase_add_test(tc, test_each_type_alone);
    tcase_add_test(tc, test_empty_values);
    tcase_add_test(tc, test_null_image);
    tcase_add_test(tc, test_appends);
    tcase_add_test(tc, test_sample_event);
    tcase_add_test(tc, test_string_escapes);
    tcase_add_test(tc, test_string_with_nul);
    tcase_add_test(tc, test_large_values);
    tcase_add_test(tc, test_unconverted_passes_through);
    suite_add_tcase(s, tc);

    tc = tcase_create("numbers");
    tcase_add_test(tc, test_numbers_accepted);
    tcase_add_test(tc, test_numbers_rejected);
    tcase_add_test(tc, test_number_with_nul);
    suite_add_tcase(s, tc);

    tc = tcase_create("nesting");
    tcase_add_test(tc, test_nesting_limit);
    tcase_add_test(tc, test_nested_mixed);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_error_unknown_type);
    tcase_add_test(tc, test_error_wrappers);
    tcase_add_test(tc, test_error_wrong_json_types);
    tcase_add_test(tc, test_error_base64);
    tcase_add_test(tc, test_error_paths);
    tcase_add_test(tc, test_error_image);
    tcase_add_test(tc, test_error_restores_buffer);
    tcase_add_test(tc, test_error_text_bounds);
    suite_add_tcase(s, tc);

    tc = tcase_create("shape");
    tcase_add_test(tc, test_shape_accepted);
    tcase_add_test(tc, test_shape_refused);
    tcase_add_test(tc, test_keys_shape);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys");
    tcase_add_test(tc, test_key);
    tcase_add_test(tc, test_key_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fanout_check_run(s_suite());
}
