/* KPL de-aggregation: magic, MD5 digest, then the AggregatedRecord protobuf
 * unpacked by protobuf-c into the caller's arena.
 *
 * Format reference: amazon-kinesis-producer, aggregation-format.md. */
#include "core/kpl.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/kpl.pb-c.h"

/* The smallest aggregate: the magic, an empty protobuf, the digest. */
#define KPL_MIN_LEN (FANOUT_KPL_MAGIC_LEN + FANOUT_KPL_DIGEST_LEN)

/* Handed out for empty user-record data, so `data` is never NULL and callers
 * may pass it to memcpy and friends as it is. */
static const uint8_t s_empty_data[1];

struct pb_arena_ctx {
    struct fanout_arena *arena;
    int failed; /* an allocation failed: tell "out of memory" from "malformed" */
};

static void *s_pb_alloc(void *allocator_data, size_t size)
{
    struct pb_arena_ctx *ctx = allocator_data;
    void *p = fanout_arena_alloc(ctx->arena, size);
    if (!p)
        ctx->failed = 1;
    return p;
}

/* The arena releases everything at once on reset; protobuf-c also frees the
 * partial message when unpacking fails, which is then a no-op too. */
static void s_pb_free(void *allocator_data, void *pointer)
{
    (void)allocator_data;
    (void)pointer;
}

static int s_fail(char *err, size_t err_len, const char *fmt, ...) FANOUT_FMT(3, 4);

static int s_fail(char *err, size_t err_len, const char *fmt, ...)
{
    if (err && err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int fanout_kpl_has_magic(const uint8_t *p, size_t n)
{
    return p && n >= FANOUT_KPL_MAGIC_LEN &&
           memcmp(p, FANOUT_KPL_MAGIC, FANOUT_KPL_MAGIC_LEN) == 0;
}

/* MD5 fetched once: EVP_md5() makes OpenSSL 3 look the algorithm up again
 * at every digest (about 11 K instructions an aggregate, a fifth of its
 * check). NULL when it cannot be fetched: EVP_md5() then, as before. */
static pthread_once_t s_md5_once = PTHREAD_ONCE_INIT;
static EVP_MD *s_md5_fetched;

static void s_md5_fetch(void)
{
    s_md5_fetched = EVP_MD_fetch(NULL, "MD5", NULL);
}

/* Non-zero when the MD5 of p[0..n) equals `digest`; -1 when MD5 could not be
 * computed at all (e.g. a FIPS-only OpenSSL configuration). */
static int s_digest_matches(const uint8_t *p, size_t n, const uint8_t *digest)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    pthread_once(&s_md5_once, s_md5_fetch);
    const EVP_MD *alg = s_md5_fetched ? s_md5_fetched : EVP_md5();
    if (!EVP_Digest(p, n, md, &md_len, alg, NULL) || md_len != FANOUT_KPL_DIGEST_LEN)
        return -1;
    return memcmp(md, digest, FANOUT_KPL_DIGEST_LEN) == 0;
}

int fanout_kpl_decode(const uint8_t *p, size_t n, struct fanout_arena *arena,
                      struct fanout_kpl_user **users, size_t *count, char *err,
                      size_t err_len)
{
    *users = NULL;
    *count = 0;

    /* Compare only the bytes present, so a cut-short aggregate reads as
     * truncated rather than as "not KPL". */
    size_t head = n < FANOUT_KPL_MAGIC_LEN ? n : FANOUT_KPL_MAGIC_LEN;
    if (head && memcmp(p, FANOUT_KPL_MAGIC, head) != 0) {
        char found[3 * FANOUT_KPL_MAGIC_LEN + 1] = "";
        for (size_t i = 0; i < head; i++)
            snprintf(found + 3 * i, sizeof found - 3 * i, "%02X ", p[i]);
        found[3 * head - 1] = '\0';
        return s_fail(err, err_len,
                      "not a KPL aggregated record: expected the magic F3 89 9A C2, "
                      "found %s",
                      found);
    }
    if (n < KPL_MIN_LEN)
        return s_fail(err, err_len,
                      "truncated KPL record: %zu bytes, need at least %d (magic + digest)",
                      n, KPL_MIN_LEN);

    const uint8_t *pb = p + FANOUT_KPL_MAGIC_LEN;
    size_t pb_len = n - KPL_MIN_LEN;
    int match = s_digest_matches(pb, pb_len, pb + pb_len);
    if (match < 0)
        return s_fail(err, err_len,
                      "cannot verify the KPL digest: MD5 is not available from OpenSSL");
    if (!match)
        return s_fail(err, err_len,
                      "KPL digest mismatch: the trailing MD5 does not match the "
                      "%zu-byte protobuf",
                      pb_len);

    struct pb_arena_ctx ctx = {.arena = arena};
    ProtobufCAllocator allocator = {
        .alloc = s_pb_alloc, .free = s_pb_free, .allocator_data = &ctx};
    AggregatedRecord *agg = aggregated_record__unpack(&allocator, pb_len, pb);
    if (!agg) {
        if (ctx.failed)
            return s_fail(err, err_len, "out of memory unpacking the %zu-byte KPL protobuf",
                          pb_len);
        return s_fail(err, err_len,
                      "malformed KPL protobuf: the %zu bytes between magic and digest "
                      "are not an AggregatedRecord (bad encoding or a missing "
                      "required field)",
                      pb_len);
    }

    if (agg->n_records == 0)
        return 0; /* valid: an aggregate may carry no user records */

    if (agg->n_records > SIZE_MAX / sizeof(struct fanout_kpl_user))
        return s_fail(err, err_len, "KPL aggregate has too many user records (%zu)",
                      agg->n_records);
    struct fanout_kpl_user *out = fanout_arena_calloc(arena, agg->n_records * sizeof *out);
    if (!out)
        return s_fail(err, err_len, "out of memory for %zu KPL user records",
                      agg->n_records);

    for (size_t i = 0; i < agg->n_records; i++) {
        const Record *r = agg->records[i];
        if (r->partition_key_index >= agg->n_partition_key_table)
            return s_fail(err, err_len,
                          "user record %zu: partition_key_index %" PRIu64
                          " out of range (table has %zu keys)",
                          i, r->partition_key_index, agg->n_partition_key_table);
        const ProtobufCBinaryData *key = &agg->partition_key_table[r->partition_key_index];
        out[i].key = key->len ? key->data : s_empty_data;
        out[i].key_len = key->len;

        if (r->has_explicit_hash_key_index) {
            if (r->explicit_hash_key_index >= agg->n_explicit_hash_key_table)
                return s_fail(err, err_len,
                              "user record %zu: explicit_hash_key_index %" PRIu64
                              " out of range (table has %zu explicit hash keys)",
                              i, r->explicit_hash_key_index,
                              agg->n_explicit_hash_key_table);
            out[i].explicit_hash_key =
                agg->explicit_hash_key_table[r->explicit_hash_key_index];
        }

        out[i].data = r->data.len ? r->data.data : s_empty_data;
        out[i].data_len = r->data.len;
    }

    *users = out;
    *count = agg->n_records;
    return 0;
}
