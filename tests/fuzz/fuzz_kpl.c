/* KPL de-aggregation (engine/core/kpl.c). The first byte picks the mode: odd,
 * the rest is decoded as is (magic and digest checks); even, the rest is
 * taken as the protobuf and wrapped with the magic and its correct MD5, so
 * that mutations reach the protobuf decoder and the checks after it.
 * Checks, beyond ASan and UBSan: success and failure are exclusive and
 * complete (users and count set on success, NULL and 0 with a reason on
 * failure); every user record's key and data lie in the arena-owned copy
 * and are readable to their length. */
#include <openssl/evp.h>
#include <string.h>

#include "fuzz.h"
#include "core/kpl.h"
#include "common/util.h"

static struct fanout_arena s_arena;

static void s_decode(const uint8_t *p, size_t n)
{
    struct fanout_kpl_user *users = (void *)1;
    size_t count = 7;
    char err[256];
    err[0] = 0;
    int rc = fanout_kpl_decode(p, n, &s_arena, &users, &count, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(rc == -1, "rc %d", rc);
        FUZZ_CHECK(users == NULL && count == 0, "failure leaves users or count set");
        FUZZ_CHECK(err[0], "failure without a reason");
        return;
    }
    FUZZ_CHECK(fanout_kpl_has_magic(p, n), "decoded without the magic");
    FUZZ_CHECK((count == 0) == (users == NULL), "count %zu, users %p", count,
               (void *)users);
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < count; i++) {
        FUZZ_CHECK(users[i].data != NULL, "user record %zu without data", i);
        FUZZ_CHECK(users[i].key || users[i].key_len == 0, "user record %zu key", i);
        FUZZ_CHECK(users[i].data_len <= n && users[i].key_len <= n,
                   "user record %zu longer than the aggregate", i);
        for (size_t k = 0; k < users[i].key_len; k++)
            sink ^= users[i].key[k];
        for (size_t k = 0; k < users[i].data_len; k++)
            sink ^= users[i].data[k];
        if (users[i].explicit_hash_key)
            sink ^= (uint8_t)strlen(users[i].explicit_hash_key);
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    if (size == 0) {
        s_decode(data, 0);
        return 0;
    }
    if (data[0] & 1) {
        s_decode(data + 1, size - 1);
    } else {
        size_t pb = size - 1, n = FANOUT_KPL_MAGIC_LEN + pb + FANOUT_KPL_DIGEST_LEN;
        uint8_t *buf = malloc(n);
        FUZZ_CHECK(buf != NULL, "out of memory");
        memcpy(buf, FANOUT_KPL_MAGIC, FANOUT_KPL_MAGIC_LEN);
        memcpy(buf + FANOUT_KPL_MAGIC_LEN, data + 1, pb);
        unsigned md_len = 0;
        FUZZ_CHECK(EVP_Digest(data + 1, pb, buf + FANOUT_KPL_MAGIC_LEN + pb, &md_len,
                              EVP_md5(), NULL) &&
                       md_len == FANOUT_KPL_DIGEST_LEN,
                   "MD5 unavailable");
        s_decode(buf, n);
        free(buf);
    }
    fanout_arena_reset(&s_arena);
    return 0;
}
