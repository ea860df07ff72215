/* Check suite for engine/core/kpl.c: KPL de-aggregation.
 *
 * Real producer output comes from two places: the Lambda event in
 * tests/data/events (written by aws-kinesis-agg) and the fixture that
 * tests/node/gen-kpl.js makes with aws-kinesis-agg (tests/data/kpl, or the
 * file named by FANOUT_KPL_FIXTURE, which tests/kpl_node.sh regenerates).
 * Invalid aggregates are built here with the same generated protobuf-c code,
 * which packs whatever indices it is given. */
#include <check.h>

#include "check_main.h"
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/kpl.h"
#include "core/kpl.pb-c.h"

/* A table entry of the bytes-typed partition key table. */
#define S_BIN(lit) ((ProtobufCBinaryData){sizeof(lit) - 1, (uint8_t *)(lit)})
#include "common/util.h"

#define ERR_LEN 256

/* ---- helpers ------------------------------------------------------------ */

/* A path under the test data directory: FANOUT_TESTDATA (set by meson test),
 * else tests/data relative to the working directory (the repository root). */
static char *s_testdata_path(const char *rel)
{
    const char *dir = getenv("FANOUT_TESTDATA");
    if (!dir || !*dir)
        dir = "tests/data";
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

static json_t *s_load_json(const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    ck_assert_msg(root != NULL, "cannot load %s: %s (line %d)", path, jerr.text, jerr.line);
    return root;
}

/* One JSON value per line; returns an array. */
static json_t *s_load_jsonl(const char *path)
{
    json_error_t jerr;
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    json_t *lines = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len == 0 || (len == 1 && line[0] == '\n'))
            continue;
        json_t *v = json_loadb(line, (size_t)len, 0, &jerr);
        ck_assert_msg(v != NULL, "%s:%d: %s", path, lineno, jerr.text);
        json_array_append_new(lines, v);
    }
    free(line);
    fclose(f);
    return lines;
}

static const char *s_str(const json_t *obj, const char *field)
{
    const char *s = json_string_value(json_object_get(obj, field));
    ck_assert_msg(s != NULL, "missing string field \"%s\"", field);
    return s;
}

/* Decode base64 text into `out` (replacing its contents). */
static void s_b64(const char *text, struct fanout_sbuf *out)
{
    size_t n = strlen(text);
    fanout_sbuf_reset(out);
    ck_assert_int_eq(fanout_sbuf_reserve(out, fanout_base64_decoded_max(n)), 0);
    size_t bad_at = 0;
    long got = fanout_base64_decode(text, n, out->bytes, &bad_at);
    ck_assert_msg(got >= 0, "bad base64 at offset %zu", bad_at);
    out->len = (size_t)got;
}

/* magic + protobuf + MD5(protobuf), the way a producer frames it. */
static void s_seal(const uint8_t *pb, size_t n, struct fanout_sbuf *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    ck_assert(EVP_Digest(pb, n, md, &md_len, EVP_md5(), NULL));
    ck_assert_uint_eq(md_len, FANOUT_KPL_DIGEST_LEN);
    fanout_sbuf_reset(out);
    ck_assert_int_eq(fanout_sbuf_put(out, FANOUT_KPL_MAGIC, FANOUT_KPL_MAGIC_LEN), 0);
    ck_assert_int_eq(fanout_sbuf_put(out, pb, n), 0);
    ck_assert_int_eq(fanout_sbuf_put(out, md, md_len), 0);
}

static void s_pack_seal(const AggregatedRecord *agg, struct fanout_sbuf *out)
{
    size_t n = aggregated_record__get_packed_size(agg);
    uint8_t *pb = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(pb);
    ck_assert_uint_eq(aggregated_record__pack(agg, pb), n);
    s_seal(pb, n, out);
    free(pb);
}

static volatile unsigned s_sink;

/* Decoded user records must be safe to read in full: touch every byte so
 * valgrind and ASan see any pointer that escapes its allocation. */
static void s_touch_users(const struct fanout_kpl_user *u, size_t count)
{
    unsigned sum = 0;
    for (size_t i = 0; i < count; i++) {
        ck_assert_ptr_nonnull(u[i].key);
        ck_assert_ptr_nonnull(u[i].data);
        for (size_t j = 0; j < u[i].key_len; j++)
            sum += u[i].key[j];
        for (size_t j = 0; j < u[i].data_len; j++)
            sum += u[i].data[j];
        if (u[i].explicit_hash_key)
            sum += (unsigned)strlen(u[i].explicit_hash_key);
    }
    s_sink = sum;
}

/* For expectations that do not list explicit hash keys. */
static const char s_any_ehk[] = "(not checked)";

static void s_check_user(const struct fanout_kpl_user *u, const char *where, size_t i,
                         const char *key, size_t key_len, const char *ehk,
                         const uint8_t *data, size_t data_len)
{
    ck_assert_msg(u->key_len == key_len && memcmp(u->key, key, key_len) == 0,
                  "%s, user record %zu: key \"%.*s\", expected \"%.*s\"", where, i,
                  (int)u->key_len, (const char *)u->key, (int)key_len, key);
    if (ehk && ehk != s_any_ehk)
        ck_assert_msg(u->explicit_hash_key && strcmp(u->explicit_hash_key, ehk) == 0,
                      "%s, user record %zu: explicit hash key %s, expected %s", where, i,
                      u->explicit_hash_key ? u->explicit_hash_key : "(none)", ehk);
    else if (!ehk)
        ck_assert_msg(u->explicit_hash_key == NULL,
                      "%s, user record %zu: explicit hash key %s, expected none", where, i,
                      u->explicit_hash_key);
    ck_assert_msg(u->data_len == data_len,
                  "%s, user record %zu: %zu data bytes, expected %zu", where, i,
                  u->data_len, data_len);
    ck_assert_ptr_nonnull(u->data);
    ck_assert_msg(data_len == 0 || memcmp(u->data, data, data_len) == 0,
                  "%s, user record %zu: data differs", where, i);
}

/* xorshift64*: a fixed seed keeps the corruption loops repeatable. */
static uint64_t s_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

/* A valid aggregate using every field: two keys, two explicit hash keys, a
 * record without one, a tag, empty data. */
static void s_build_rich(struct fanout_sbuf *out)
{
    ProtobufCBinaryData keys[] = {S_BIN("alpha"), S_BIN("ключ")};
    char *ehks[] = {"340282366920938463463374607431768211455", "4294967296"};
    Tag tag = TAG__INIT;
    tag.key = "origin";
    tag.value = "test";
    Tag *tags[] = {&tag};
    Record r[4];
    for (size_t i = 0; i < 4; i++)
        record__init(&r[i]);
    r[0].partition_key_index = 1;
    r[0].has_explicit_hash_key_index = 1;
    r[0].explicit_hash_key_index = 1;
    r[0].data = (ProtobufCBinaryData){5, (uint8_t *)"hello"};
    r[1].partition_key_index = 0;
    r[1].data = (ProtobufCBinaryData){3, (uint8_t *)"\x00\xff\x01"};
    r[1].n_tags = 1;
    r[1].tags = tags;
    r[2].partition_key_index = 1;
    r[2].has_explicit_hash_key_index = 1;
    r[2].explicit_hash_key_index = 0;
    r[2].data = (ProtobufCBinaryData){0, NULL};
    r[3].partition_key_index = 0;
    r[3].has_explicit_hash_key_index = 1;
    r[3].explicit_hash_key_index = 1;
    r[3].data = (ProtobufCBinaryData){15, (uint8_t *)"{\"last\":\"one\"}\n"};
    Record *recs[] = {&r[0], &r[1], &r[2], &r[3]};
    AggregatedRecord agg = AGGREGATED_RECORD__INIT;
    agg.n_partition_key_table = 2;
    agg.partition_key_table = keys;
    agg.n_explicit_hash_key_table = 2;
    agg.explicit_hash_key_table = ehks;
    agg.n_records = 4;
    agg.records = recs;
    s_pack_seal(&agg, out);
}

/* An aggregate whose one record points at (pk, ehk) indices that the tables
 * (of n_keys and n_ehks entries) may not have. */
static void s_build_indices(size_t n_keys, size_t n_ehks, uint64_t pk, int has_ehk,
                            uint64_t ehk, struct fanout_sbuf *out)
{
    ProtobufCBinaryData keys[] = {S_BIN("k0"), S_BIN("k1"), S_BIN("k2")};
    char *ehks[] = {"1", "2", "3"};
    Record ok = RECORD__INIT, bad = RECORD__INIT;
    ok.data = (ProtobufCBinaryData){2, (uint8_t *)"ok"};
    bad.partition_key_index = pk;
    bad.has_explicit_hash_key_index = has_ehk;
    bad.explicit_hash_key_index = ehk;
    bad.data = (ProtobufCBinaryData){3, (uint8_t *)"bad"};
    Record *recs[] = {&ok, &bad};
    AggregatedRecord agg = AGGREGATED_RECORD__INIT;
    agg.n_partition_key_table = n_keys;
    agg.partition_key_table = keys;
    agg.n_explicit_hash_key_table = n_ehks;
    agg.explicit_hash_key_table = ehks;
    agg.n_records = 2;
    agg.records = recs;
    s_pack_seal(&agg, out);
}

static int s_decode(const struct fanout_sbuf *b, struct fanout_arena *arena,
                    struct fanout_kpl_user **users, size_t *count, char *err)
{
    err[0] = '\0';
    return fanout_kpl_decode(b->bytes, b->len, arena, users, count, err, ERR_LEN);
}

/* ---- magic -------------------------------------------------------------- */

START_TEST(test_has_magic)
{
    const uint8_t agg[] = {0xF3, 0x89, 0x9A, 0xC2, 0x0A};
    ck_assert(fanout_kpl_has_magic(agg, 5));
    ck_assert(fanout_kpl_has_magic(agg, 4));
    ck_assert(!fanout_kpl_has_magic(agg, 3));
    ck_assert(!fanout_kpl_has_magic(agg, 0));
    ck_assert(!fanout_kpl_has_magic(NULL, 0));
    ck_assert(!fanout_kpl_has_magic((const uint8_t *)"{\"a\":1}", 7));
    const uint8_t near[] = {0xF3, 0x89, 0x9A, 0xC3};
    ck_assert(!fanout_kpl_has_magic(near, 4));
}
END_TEST

/* ---- real producer output ------------------------------------------------ */

/* Every record of the Lambda event: aggregates expand to the listed user
 * records in order, plain records pass through as themselves, and the last
 * (corrupt digest) fails. */
START_TEST(test_events_file)
{
    char *event_path = s_testdata_path("events/kpl-aggregated.json");
    char *expect_path = s_testdata_path("events/kpl-aggregated.expected.jsonl");
    json_t *event = s_load_json(event_path);
    json_t *expected = s_load_jsonl(expect_path);
    json_t *records = json_object_get(event, "Records");
    ck_assert(json_is_array(records));
    ck_assert_uint_gt(json_array_size(records), 0);

    struct fanout_arena arena = {0};
    struct fanout_sbuf data = {0}, want = {0};
    char err[ERR_LEN], where[128];
    size_t next = 0, aggregates = 0, plain = 0, corrupt = 0;

    for (size_t r = 0; r < json_array_size(records); r++) {
        const json_t *kin = json_object_get(json_array_get(records, r), "kinesis");
        const char *seq = s_str(kin, "sequenceNumber");
        s_b64(s_str(kin, "data"), &data);
        snprintf(where, sizeof where, "event record %zu (%s)", r, seq);

        if (!fanout_kpl_has_magic(data.bytes, data.len)) {
            plain++;
            ck_assert_msg(next < json_array_size(expected), "%s: not expected", where);
            const json_t *e = json_array_get(expected, next++);
            const char *key = s_str(kin, "partitionKey");
            ck_assert_str_eq(s_str(e, "key"), key);
            s_b64(s_str(e, "dataB64"), &want);
            ck_assert_uint_eq(data.len, want.len);
            ck_assert_mem_eq(data.bytes, want.bytes, want.len);
            continue;
        }

        struct fanout_kpl_user *users = NULL;
        size_t count = 0;
        if (s_decode(&data, &arena, &users, &count, err) != 0) {
            corrupt++;
            ck_assert_msg(strstr(err, "KPL digest mismatch") != NULL, "%s: %s", where, err);
            ck_assert_msg(next < json_array_size(expected), "%s: not expected", where);
            const json_t *e = json_array_get(expected, next++);
            ck_assert_str_eq(s_str(e, "corrupt"), seq);
            ck_assert_str_eq(s_str(e, "dataB64"), s_str(kin, "data"));
            continue;
        }
        aggregates++;
        ck_assert_uint_gt(count, 0);
        for (size_t i = 0; i < count; i++) {
            ck_assert_msg(next < json_array_size(expected),
                          "%s: more user records than expected", where);
            const json_t *e = json_array_get(expected, next++);
            ck_assert_msg(json_object_get(e, "corrupt") == NULL,
                          "%s: decoded, but the list says it is corrupt", where);
            const char *key = s_str(e, "key");
            s_b64(s_str(e, "dataB64"), &want);
            /* the list gives no explicit hash keys: the fixture test checks them */
            s_check_user(&users[i], where, i, key, strlen(key), s_any_ehk, want.bytes,
                         want.len);
        }
        fanout_arena_reset(&arena);
    }
    ck_assert_uint_eq(next, json_array_size(expected));
    ck_assert_uint_eq(corrupt, 1);
    ck_assert_uint_gt(aggregates, 0);
    ck_assert_uint_gt(plain, 0);

    fanout_sbuf_free(&data);
    fanout_sbuf_free(&want);
    fanout_arena_free(&arena);
    json_decref(expected);
    json_decref(event);
    free(expect_path);
    free(event_path);
}
END_TEST

/* Aggregates made by aws-kinesis-agg (tests/node/gen-kpl.js) decode to the
 * records that went in: keys, explicit hash keys and data. */
START_TEST(test_library_fixture)
{
    const char *env = getenv("FANOUT_KPL_FIXTURE");
    char *path = env && *env ? strdup(env) : s_testdata_path("kpl/agg-fixture.json");
    ck_assert_ptr_nonnull(path);
    json_t *fixture = s_load_json(path);
    json_t *aggs = json_object_get(fixture, "aggregates");
    ck_assert_msg(json_array_size(aggs) > 0, "%s: no aggregates", path);

    struct fanout_arena arena = {0};
    struct fanout_sbuf blob = {0}, want = {0};
    char err[ERR_LEN], where[160];
    size_t total = 0, with_ehk = 0;

    for (size_t a = 0; a < json_array_size(aggs); a++) {
        const json_t *agg = json_array_get(aggs, a);
        const json_t *expect = json_object_get(agg, "records");
        snprintf(where, sizeof where, "%s: aggregate %zu (%s)", path, a,
                 s_str(agg, "name"));
        s_b64(s_str(agg, "dataB64"), &blob);
        ck_assert_msg(fanout_kpl_has_magic(blob.bytes, blob.len), "%s: no magic", where);

        struct fanout_kpl_user *users = NULL;
        size_t count = 0;
        ck_assert_msg(s_decode(&blob, &arena, &users, &count, err) == 0, "%s: %s", where,
                      err);
        ck_assert_msg(count == json_array_size(expect),
                      "%s: %zu user records, expected %zu", where, count,
                      json_array_size(expect));
        for (size_t i = 0; i < count; i++) {
            const json_t *e = json_array_get(expect, i);
            const json_t *key = json_object_get(e, "key");
            const json_t *ehk = json_object_get(e, "explicitHashKey");
            ck_assert(json_is_string(key));
            ck_assert(json_is_string(ehk) || json_is_null(ehk));
            s_b64(s_str(e, "dataB64"), &want);
            s_check_user(&users[i], where, i, json_string_value(key),
                         json_string_length(key), json_string_value(ehk), want.bytes,
                         want.len);
            with_ehk += json_is_string(ehk);
        }
        total += count;
        fanout_arena_reset(&arena);
    }
    ck_assert_uint_gt(total, 0);
    ck_assert_uint_gt(with_ehk, 0);

    fanout_sbuf_free(&blob);
    fanout_sbuf_free(&want);
    fanout_arena_free(&arena);
    json_decref(fixture);
    free(path);
}
END_TEST

/* ---- decoding details ----------------------------------------------------- */

START_TEST(test_explicit_hash_keys)
{
    struct fanout_arena arena = {0};
    struct fanout_sbuf blob = {0};
    char err[ERR_LEN];
    struct fanout_kpl_user *u = NULL;
    size_t count = 0;
    s_build_rich(&blob);
    ck_assert_msg(s_decode(&blob, &arena, &u, &count, err) == 0, "%s", err);
    ck_assert_uint_eq(count, 4);
    s_check_user(&u[0], "rich", 0, "ключ", strlen("ключ"), "4294967296",
                 (const uint8_t *)"hello", 5);
    s_check_user(&u[1], "rich", 1, "alpha", 5, NULL, (const uint8_t *)"\x00\xff\x01", 3);
    s_check_user(&u[2], "rich", 2, "ключ", strlen("ключ"),
                 "340282366920938463463374607431768211455", NULL, 0);
    s_check_user(&u[3], "rich", 3, "alpha", 5, "4294967296",
                 (const uint8_t *)"{\"last\":\"one\"}\n", 15);
    fanout_sbuf_free(&blob);
    fanout_arena_free(&arena);
}
END_TEST

START_TEST(test_digest_mismatch)
{
    struct fanout_arena arena = {0};
    struct fanout_sbuf blob = {0};
    char err[ERR_LEN], want[ERR_LEN];
    struct fanout_kpl_user *u = NULL;
    size_t count = 0;
    s_build_rich(&blob);
    size_t pb_len = blob.len - FANOUT_KPL_MAGIC_LEN - FANOUT_KPL_DIGEST_LEN;
    snprintf(want, sizeof want,
             "KPL digest mismatch: the trailing MD5 does not match the %zu-byte protobuf",
             pb_len);

    blob.bytes[blob.len - 1] ^= 0x01; /* the digest */
    ck_assert_int_eq(s_decode(&blob, &arena, &u, &count, err), -1);
    ck_assert_str_eq(err, want);
    ck_assert_ptr_null(u);
    ck_assert_uint_eq(count, 0);
    blob.bytes[blob.len - 1] ^= 0x01;

    blob.bytes[FANOUT_KPL_MAGIC_LEN + pb_len / 2] ^= 0x80; /* the protobuf */
    ck_assert_int_eq(s_decode(&blob, &arena, &u, &count, err), -1);
    ck_assert_str_eq(err, want);
    blob.bytes[FANOUT_KPL_MAGIC_LEN + pb_len / 2] ^= 0x80;

    ck_assert_int_eq(s_decode(&blob, &arena, &u, &count, err), 0);
    ck_assert_uint_eq(count, 4);
    fanout_sbuf_free(&blob);
    fanout_arena_free(&arena);
}
END_TEST

/* Every prefix of a valid aggregate fails cleanly (the digest is then read
 * from the wrong place); none crashes or reads past the prefix. The input is
 * copied to an exact-size allocation so an over-read is caught. */
static void s_check_prefixes(const struct fanout_sbuf *blob, const char *what)
{
    struct fanout_arena arena = {0};
    char err[ERR_LEN], want[ERR_LEN];
    for (size_t n = 0; n < blob->len; n++) {
        uint8_t *p = malloc(n ? n : 1);
        ck_assert_ptr_nonnull(p);
        if (n)
            memcpy(p, blob->bytes, n);
        struct fanout_kpl_user *u = NULL;
        size_t count = 0;
        err[0] = '\0';
        int rc = fanout_kpl_decode(p, n, &arena, &u, &count, err, sizeof err);
        if (rc == 0) {
            s_touch_users(u, count); /* a digest collision: fine if sane */
        } else {
            ck_assert_int_eq(rc, -1);
            ck_assert_msg(err[0] != '\0', "%s: prefix %zu fails without a reason", what, n);
            if (n < FANOUT_KPL_MAGIC_LEN + FANOUT_KPL_DIGEST_LEN) {
                snprintf(
                    want, sizeof want,
                    "truncated KPL record: %zu bytes, need at least 20 (magic + digest)",
                    n);
                ck_assert_str_eq(err, want);
            } else {
                ck_assert_msg(strstr(err, "KPL digest mismatch") != NULL,
                              "%s: prefix %zu: %s", what, n, err);
            }
        }
        free(p);
        fanout_arena_reset(&arena);
    }
    fanout_arena_free(&arena);
}

/* Every prefix of the protobuf, sealed with its own valid digest, so that the
 * protobuf parser itself meets the truncation. */
static void s_check_sealed_prefixes(const struct fanout_sbuf *blob, size_t full_count,
                                    const char *what)
{
    struct fanout_arena arena = {0};
    struct fanout_sbuf sealed = {0};
    char err[ERR_LEN];
    const uint8_t *pb = blob->bytes + FANOUT_KPL_MAGIC_LEN;
    size_t pb_len = blob->len - FANOUT_KPL_MAGIC_LEN - FANOUT_KPL_DIGEST_LEN;
    size_t decoded = 0, failed = 0;
    for (size_t n = 0; n <= pb_len; n++) {
        s_seal(pb, n, &sealed);
        struct fanout_kpl_user *u = NULL;
        size_t count = 0;
        if (s_decode(&sealed, &arena, &u, &count, err) == 0) {
            decoded++;
            ck_assert_uint_le(count, full_count);
            s_touch_users(u, count);
        } else {
            failed++;
            ck_assert_msg(err[0] != '\0', "%s: sealed prefix %zu fails without a reason",
                          what, n);
            ck_assert_msg(strstr(err, "digest mismatch") == NULL,
                          "%s: sealed prefix %zu: %s", what, n, err);
        }
        fanout_arena_reset(&arena);
    }
    ck_assert_uint_gt(decoded, 1); /* at least the empty and the whole protobuf */
    ck_assert_uint_gt(failed, 0);
    fanout_sbuf_free(&sealed);
    fanout_arena_free(&arena);
}

START_TEST(test_truncated)
{
    struct fanout_sbuf blob = {0};
    s_build_rich(&blob);
    s_check_prefixes(&blob, "rich aggregate");
    s_check_sealed_prefixes(&blob, 4, "rich aggregate");

    /* and the first aggregate of the aws-kinesis-agg event */
    char *path = s_testdata_path("events/kpl-aggregated.json");
    json_t *event = s_load_json(path);
    const json_t *kin =
        json_object_get(json_array_get(json_object_get(event, "Records"), 0), "kinesis");
    s_b64(s_str(kin, "data"), &blob);
    ck_assert(fanout_kpl_has_magic(blob.bytes, blob.len));
    s_check_prefixes(&blob, "event aggregate");
    s_check_sealed_prefixes(&blob, SIZE_MAX, "event aggregate");
    json_decref(event);
    free(path);
    fanout_sbuf_free(&blob);
}
END_TEST

/* Random byte corruption. Sealed again after corrupting, most inputs reach
 * the protobuf parser and the index checks; left unsealed, they must all be
 * caught by the digest (or the magic). */
START_TEST(test_random_corruption)
{
    enum { ROUNDS = 3000 };
    struct fanout_arena arena = {0};
    struct fanout_sbuf blob = {0}, work = {0}, sealed = {0};
    char err[ERR_LEN];
    uint64_t state = UINT64_C(0x9E3779B97F4A7C15);
    size_t decoded = 0, failed = 0;
    s_build_rich(&blob);
    size_t pb_len = blob.len - FANOUT_KPL_MAGIC_LEN - FANOUT_KPL_DIGEST_LEN;

    for (int round = 0; round < ROUNDS; round++) {
        fanout_sbuf_reset(&work);
        ck_assert_int_eq(fanout_sbuf_put(&work, blob.bytes, blob.len), 0);
        int flips = 1 + (int)(s_rand(&state) % 4);
        for (int f = 0; f < flips; f++) {
            size_t at = (size_t)(s_rand(&state) % work.len);
            work.bytes[at] = (uint8_t)s_rand(&state);
        }
        int changed = memcmp(work.bytes, blob.bytes, blob.len) != 0;

        struct fanout_kpl_user *u = NULL;
        size_t count = 0;
        int rc = s_decode(&work, &arena, &u, &count, err);
        if (changed) {
            ck_assert_int_eq(rc, -1);
            ck_assert_msg(strstr(err, "KPL digest mismatch") != NULL ||
                              strstr(err, "not a KPL aggregated record") != NULL,
                          "round %d: %s", round, err);
        }
        fanout_arena_reset(&arena);

        s_seal(work.bytes + FANOUT_KPL_MAGIC_LEN, pb_len, &sealed);
        if (s_decode(&sealed, &arena, &u, &count, err) == 0) {
            decoded++;
            s_touch_users(u, count);
        } else {
            failed++;
            ck_assert_msg(err[0] != '\0', "round %d: fails without a reason", round);
        }
        fanout_arena_reset(&arena);
    }
    /* Both outcomes occur, so the parser and the checks were exercised. */
    ck_assert_uint_gt(decoded, 0);
    ck_assert_uint_gt(failed, 0);
    fanout_sbuf_free(&blob);
    fanout_sbuf_free(&work);
    fanout_sbuf_free(&sealed);
    fanout_arena_free(&arena);
}
END_TEST

START_TEST(test_partition_key_index_out_of_range)
{
    struct fanout_arena arena = {0};
    struct fanout_sbuf blob = {0};
    char err[ERR_LEN];
    struct fanout_kpl_user *u = NULL;
    size_t count = 0;

    s_build_indices(2, 0, 1, 0, 0, &blob); /* the last valid index */
    ck_assert_msg(s_decode(&blob, &arena, &u, &count, err) == 0, "%s", err);
    ck_assert_uint_eq(count, 2);
    s_check_user(&u[1], "last index", 1, "k1", 2, NULL, (const uint8_t *)"bad", 3);

    s_build_indices(2, 0, 2, 0, 0, &blob);
    ck_assert_int_eq(s_decode(&blob, &arena, &u, &count, err), -1);
    ck_assert_str_eq(
        err, "user record 1: partition_key_index 2 out of range (table has 2 keys)");
    ck_assert_ptr_null(u);
    ck_assert_uint_eq(count, 0);

    s_build_indices(2, 0, UINT64_MAX, 0, 0, &blob);
    ck_assert_int_eq(s_decode(&blob, &arena, &u, &count, err), -1);
    ck_assert_str_eq(err, "user record 1: partition_key_index 18446744073709551615 out of "
                          "range (table has 2 keys)");

    s_build_indices(0, 0, 0, 0, 0, &blob); /* records but no keys at all */
    ck_assert_int_eq(s_decode(&blob, &arena, &u, &count, err), -1);
    ck_assert_str_eq(
        err, "user record 0: partition_key_index 0 out of range (table has 0 keys)");

    fanout_sbuf_free(&blob);
    fanout_arena_free(&arena);
}
END_TEST

START_TEST(test_explicit_hash_key_index_out_of_range)
{
    struct fanout_arena arena = {0};
    struct fanout_sbuf blob = {0};
    char err[ERR_LEN];
    struct fanout_kpl_user *u = NULL;
    size_t count = 0;

    s_build_indices(3, 2, 2, 1, 1, &blob); /* the last valid index */
    ck_assert_msg(s_decode(&blob, &arena, &u, &count, err) == 0, "%s", err);
    s_check_user(&u[1], "last index", 1, "k2", 2, "2", (const uint8_t *)"bad", 3);

    s_build_indices(3, 2, 2, 1, 2, &blob);
    ck_assert_int_eq(s_decode(&blob, &arena, &u, &count, err), -1);
    ck_assert_str_eq(err,
                     "user record 1: explicit_hash_key_index 2 out of range (table has 2 "
                     "explicit hash keys)");

    s_build_indices(3, 0, 0, 1, 0, &blob); /* an index into an empty table */
    ck_assert_int_eq(s_decode(&blob, &arena, &u, &count, err), -1);
    ck_assert_str_eq(err,
                     "user record 1: explicit_hash_key_index 0 out of range (table has 0 "
                     "explicit hash keys)");

    s_build_indices(3, 1, 0, 1, UINT64_MAX, &blob);
    ck_assert_int_eq(s_decode(&blob, &arena, &u, &count, err), -1);
    ck_assert_str_eq(err,
                     "user record 1: explicit_hash_key_index 18446744073709551615 out of "
                     "range (table has 1 explicit hash keys)");

    fanout_sbuf_free(&blob);
    fanout_arena_free(&arena);
}
END_TEST

START_TEST(test_magic_only)
{
    struct fanout_arena arena = {0};
    char err[ERR_LEN];
    struct fanout_kpl_user *u = NULL;
    size_t count = 0;
    const uint8_t magic[] = {0xF3, 0x89, 0x9A, 0xC2};
    ck_assert_int_eq(
        fanout_kpl_decode(magic, sizeof magic, &arena, &u, &count, err, sizeof err), -1);
    ck_assert_str_eq(err,
                     "truncated KPL record: 4 bytes, need at least 20 (magic + digest)");
    ck_assert_ptr_null(u);
    ck_assert_uint_eq(count, 0);

    ck_assert_int_eq(fanout_kpl_decode(magic, 2, &arena, &u, &count, err, sizeof err), -1);
    ck_assert_str_eq(err,
                     "truncated KPL record: 2 bytes, need at least 20 (magic + digest)");
    ck_assert_int_eq(fanout_kpl_decode(NULL, 0, &arena, &u, &count, err, sizeof err), -1);
    ck_assert_str_eq(err,
                     "truncated KPL record: 0 bytes, need at least 20 (magic + digest)");
    fanout_arena_free(&arena);
}
END_TEST

/* Zero user records is a valid aggregate that yields nothing (count 0). The
 * smallest one is exactly magic + MD5 of the empty protobuf. */
START_TEST(test_zero_records)
{
    struct fanout_arena arena = {0};
    struct fanout_sbuf blob = {0};
    char err[ERR_LEN];
    struct fanout_kpl_user *u = (void *)&blob;
    size_t count = 99;

    s_seal(NULL, 0, &blob);
    ck_assert_uint_eq(blob.len, 20);
    ck_assert_msg(s_decode(&blob, &arena, &u, &count, err) == 0, "%s", err);
    ck_assert_uint_eq(count, 0);
    ck_assert_ptr_null(u);

    ProtobufCBinaryData keys[] = {S_BIN("unused")};
    AggregatedRecord agg = AGGREGATED_RECORD__INIT;
    agg.n_partition_key_table = 1;
    agg.partition_key_table = keys;
    s_pack_seal(&agg, &blob);
    count = 99;
    ck_assert_msg(s_decode(&blob, &arena, &u, &count, err) == 0, "%s", err);
    ck_assert_uint_eq(count, 0);

    fanout_sbuf_free(&blob);
    fanout_arena_free(&arena);
}
END_TEST

START_TEST(test_not_kpl)
{
    struct fanout_arena arena = {0};
    char err[ERR_LEN];
    struct fanout_kpl_user *u = NULL;
    size_t count = 0;
    const char *plain = "{\"plain\":3,\"s\":\"x\"}";
    ck_assert_int_eq(fanout_kpl_decode((const uint8_t *)plain, strlen(plain), &arena, &u,
                                       &count, err, sizeof err),
                     -1);
    ck_assert_str_eq(err, "not a KPL aggregated record: expected the magic F3 89 9A C2, "
                          "found 7B 22 70 6C");
    const uint8_t two[] = {0xF3, 0x00};
    ck_assert_int_eq(fanout_kpl_decode(two, 2, &arena, &u, &count, err, sizeof err), -1);
    ck_assert_str_eq(err, "not a KPL aggregated record: expected the magic F3 89 9A C2, "
                          "found F3 00");
    fanout_arena_free(&arena);
}
END_TEST

/* Sealed with a valid digest, but not a valid AggregatedRecord. */
START_TEST(test_malformed_protobuf)
{
    static const struct {
        const char *what;
        const char *pb;
        size_t len;
    } cases[] = {
        /* record {partition_key_index: 0} without its required data */
        {"missing data", "\x0a\x01k\x1a\x02\x08\x00", 7},
        /* record {data: "x"} without its required partition_key_index */
        {"missing partition_key_index", "\x0a\x01k\x1a\x03\x1a\x01x", 8},
        /* a key whose length runs past the end */
        {"length past the end", "\x0a\x7fk", 3},
        /* a varint that never ends */
        {"endless varint", "\x1a\x05\x08\xff\xff\xff\xff", 7},
        /* wire type 7 does not exist */
        {"bad wire type", "\x0f\x00", 2},
        /* tag {value: "v"} without its required key */
        {"tag without key", "\x0a\x01k\x1a\x09\x08\x00\x1a\x01x\x22\x02\x12\x00", 14},
    };
    struct fanout_arena arena = {0};
    struct fanout_sbuf blob = {0};
    char err[ERR_LEN], want[ERR_LEN];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fanout_kpl_user *u = NULL;
        size_t count = 0;
        s_seal((const uint8_t *)cases[i].pb, cases[i].len, &blob);
        ck_assert_msg(s_decode(&blob, &arena, &u, &count, err) == -1, "%s: decoded",
                      cases[i].what);
        snprintf(
            want, sizeof want,
            "malformed KPL protobuf: the %zu bytes between magic and digest are not an "
            "AggregatedRecord (bad encoding or a missing required field)",
            cases[i].len);
        ck_assert_str_eq(err, want);
        ck_assert_ptr_null(u);
    }
    fanout_sbuf_free(&blob);
    fanout_arena_free(&arena);
}
END_TEST

/* Empty data still has a pointer, so callers may memcpy from it. */
START_TEST(test_empty_data_not_null)
{
    struct fanout_arena arena = {0};
    struct fanout_sbuf blob = {0};
    char err[ERR_LEN];
    struct fanout_kpl_user *u = NULL;
    size_t count = 0;
    s_build_rich(&blob);
    ck_assert_int_eq(s_decode(&blob, &arena, &u, &count, err), 0);
    ck_assert_uint_eq(u[2].data_len, 0);
    ck_assert_ptr_nonnull(u[2].data);
    fanout_sbuf_free(&blob);
    fanout_arena_free(&arena);
}
END_TEST

/* Results live in the arena, not in the input buffer. */
START_TEST(test_results_outlive_input)
{
    struct fanout_arena arena = {0};
    struct fanout_sbuf blob = {0};
    char err[ERR_LEN];
    struct fanout_kpl_user *u = NULL;
    size_t count = 0;
    s_build_rich(&blob);
    ck_assert_int_eq(s_decode(&blob, &arena, &u, &count, err), 0);
    memset(blob.bytes, 0xAA, blob.len);
    fanout_sbuf_free(&blob);
    s_check_user(&u[0], "after free", 0, "ключ", strlen("ключ"), "4294967296",
                 (const uint8_t *)"hello", 5);
    s_check_user(&u[3], "after free", 3, "alpha", 5, "4294967296",
                 (const uint8_t *)"{\"last\":\"one\"}\n", 15);
    fanout_arena_free(&arena);
}
END_TEST

/* err may be NULL or short; the message is cut, never overrun. */
START_TEST(test_error_buffer)
{
    struct fanout_arena arena = {0};
    struct fanout_kpl_user *u = NULL;
    size_t count = 0;
    const uint8_t magic[] = {0xF3, 0x89, 0x9A, 0xC2};
    ck_assert_int_eq(fanout_kpl_decode(magic, 4, &arena, &u, &count, NULL, 0), -1);
    char small[10] = "xxxxxxxxx";
    ck_assert_int_eq(fanout_kpl_decode(magic, 4, &arena, &u, &count, small, 1), -1);
    ck_assert_str_eq(small, "");
    ck_assert_int_eq(fanout_kpl_decode(magic, 4, &arena, &u, &count, small, sizeof small),
                     -1);
    ck_assert_str_eq(small, "truncated");
    fanout_arena_free(&arena);
}
END_TEST

/* Keys come back as the bytes produced: no UTF-8 check, no re-encoding. */
START_TEST(test_key_bytes_as_produced)
{
    struct fanout_arena arena = {0};
    struct fanout_sbuf blob = {0};
    char err[ERR_LEN];
    struct fanout_kpl_user *u = NULL;
    size_t count = 0;
    /* not UTF-8, and a NUL inside: the key keeps every byte */
    ProtobufCBinaryData keys[] = {S_BIN("\xff\xfe-not\0-utf8")};
    Record r = RECORD__INIT;
    r.data = (ProtobufCBinaryData){1, (uint8_t *)"d"};
    Record *recs[] = {&r};
    AggregatedRecord agg = AGGREGATED_RECORD__INIT;
    agg.n_partition_key_table = 1;
    agg.partition_key_table = keys;
    agg.n_records = 1;
    agg.records = recs;
    s_pack_seal(&agg, &blob);
    ck_assert_msg(s_decode(&blob, &arena, &u, &count, err) == 0, "%s", err);
    ck_assert_uint_eq(count, 1);
    ck_assert_uint_eq(u[0].key_len, 12);
    s_check_user(&u[0], "raw key", 0, (const char *)keys[0].data, keys[0].len, NULL,
                 (const uint8_t *)"d", 1);
    fanout_sbuf_free(&blob);
    fanout_arena_free(&arena);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("kpl");
    TCase *tc = tcase_create("decode");
    tcase_add_test(tc, test_has_magic);
    tcase_add_test(tc, test_events_file);
    tcase_add_test(tc, test_library_fixture);
    tcase_add_test(tc, test_explicit_hash_keys);
    tcase_add_test(tc, test_digest_mismatch);
    tcase_add_test(tc, test_partition_key_index_out_of_range);
    tcase_add_test(tc, test_explicit_hash_key_index_out_of_range);
    tcase_add_test(tc, test_magic_only);
    tcase_add_test(tc, test_zero_records);
    tcase_add_test(tc, test_not_kpl);
    tcase_add_test(tc, test_malformed_protobuf);
    tcase_add_test(tc, test_empty_data_not_null);
    tcase_add_test(tc, test_results_outlive_input);
    tcase_add_test(tc, test_error_buffer);
    tcase_add_test(tc, test_key_bytes_as_produced);
    suite_add_tcase(s, tc);

    TCase *robust = tcase_create("robustness");
    tcase_set_timeout(robust, 120);
    tcase_add_test(robust, test_truncated);
    tcase_add_test(robust, test_random_corruption);
    suite_add_tcase(s, robust);
    return s;
}

int main(void)
{
    return fanout_check_run(s_suite());
}
