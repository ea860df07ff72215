/* KPL (Kinesis Producer Library) aggregated records.
 *
 * Format: the 4-byte magic F3 89 9A C2, a protobuf `AggregatedRecord`
 * (kpl.proto), then the 16-byte MD5 of that protobuf. Each user record takes
 * its partition key (and optional explicit hash key) from the aggregate's
 * tables by index. */
#ifndef FANOUT_KPL_H
#define FANOUT_KPL_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define FANOUT_KPL_MAGIC      "\xF3\x89\x9A\xC2"
#define FANOUT_KPL_MAGIC_LEN  4
#define FANOUT_KPL_DIGEST_LEN 16

struct fanout_kpl_user {
    const uint8_t *key; /* partition key bytes (UTF-8 as produced; not re-checked) */
    size_t key_len;
    const char *explicit_hash_key; /* NUL-terminated, as produced; NULL when none */
    const uint8_t *data;           /* never NULL, even when data_len is 0 */
    size_t data_len;
};

/* Non-zero when p[0..n) starts with the KPL magic. */
int fanout_kpl_has_magic(const uint8_t *p, size_t n);

/* Decode an aggregated record. On success returns 0 and sets *users to an
 * array of *count user records, all allocated from `arena` (valid until it
 * is reset). On failure returns -1 and writes into err a reason that says
 * what was wrong and what was expected, e.g. "KPL digest mismatch: the
 * trailing MD5 does not match the 1180-byte protobuf", "truncated KPL
 * record: 18 bytes, need at least 20 (magic + digest)", "user record 3:
 * partition_key_index 9 out of range (table has 4 keys)". *users and *count
 * are NULL and 0 on failure.
 *
 * An aggregate with no user records is valid: it returns 0 with *count 0 and
 * *users NULL (nothing is dropped; aws-kinesis-agg never emits one). */
int fanout_kpl_decode(const uint8_t *p, size_t n, struct fanout_arena *arena,
                      struct fanout_kpl_user **users, size_t *count, char *err,
                      size_t err_len);

#endif
