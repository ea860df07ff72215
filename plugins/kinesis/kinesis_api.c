/*
 * PutRecords on the wire (JSON 1.1): build the request, read the answer.
 *
 * Request:  POST /, X-Amz-Target: Kinesis_20131202.PutRecords,
 *           Content-Type: application/x-amz-json-1.1,
 *           {"StreamName"|"StreamARN":..., "Records":[{"Data":<base64>,
 *            "PartitionKey":..., "ExplicitHashKey"?:...}, ...]}
 * Response: {"FailedRecordCount":N, "Records":[...]} in request order and of
 *           the request's length, each entry {"SequenceNumber","ShardId"} or
 *           {"ErrorCode","ErrorMessage"}; ErrorCode is
 *           ProvisionedThroughputExceededException (throttled) or
 *           InternalFailure (retry). Source: the PutRecords API reference and
 *           botocore's kinesis/2013-12-02/service-2.json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <fanout/aws_codes.h>

#include "kinesis.h"

/* ---- partition keys ---- */

/* The length of `s` in UTF-16 code units, or -1 when it is not UTF-8. */
static long s_utf16_units(const uint8_t *s, size_t n)
{
    long units = 0;
    for (size_t i = 0; i < n;) {
        size_t k = fanout_utf8_seq(s + i, n - i);
        if (!k)
            return -1;
        units += k == 4 ? 2 : 1;
        i += k;
    }
    return units;
}

/* ExplicitHashKey: 0|[1-9][0-9]{0,38}, at most 2^128 - 1. */
static int s_hash_key_ok(const char *h)
{
    static const char max[] = "340282366920938463463374607431768211455";
    size_t n = strlen(h);
    if (n < 1 || n > 39 || strspn(h, "0123456789") != n || (n > 1 && h[0] == '0'))
        return 0;
    return n < 39 || strcmp(h, max) <= 0;
}

/* One message as it goes out. */
struct s_entry {
    const struct fanout_message *m;
    const uint8_t *key;
    size_t key_len;
    /* owned, for a key hashed by hashLongPartitionKeys only: "sha256:" +
     * 64 hex digits (an entry stays small: a batch of 10,000 records has
     * 10,000 of them) */
    char *hashed;
    const char *explicit_hash;
};

static void s_release(void *ctx, void *entry)
{
    (void)ctx;
    free(((struct s_entry *)entry)->hashed);
}

/* Prepare message i's partition key; on refusal fill its outcome. */
static int s_prepare_key(const struct kinesis_target *t, const struct fanout_message *m,
                         struct s_entry *e, struct fanout_outcome *o)
{
    e->key = m->key;
    e->key_len = m->key_len;
    if (m->key_len == 0) {
        fanout_outcome_set(o, FANOUT_FATAL, "InvalidPartitionKey",
                           "the record has an empty partition key; Kinesis needs 1 to %u "
                           "characters",
                           KINESIS_MAX_KEY_UNITS);
        return -1;
    }
    long units = s_utf16_units(m->key, m->key_len);
    if (units >= 1 && (unsigned long)units <= KINESIS_MAX_KEY_UNITS)
        return 0;
    if (!t->hash_long_keys) {
        if (units < 0)
            fanout_outcome_set(o, FANOUT_FATAL, "InvalidPartitionKey",
                               "the partition key (%zu bytes) is not valid UTF-8 "
                               "(hashLongPartitionKeys is off)",
                               m->key_len);
        else
            fanout_outcome_set(o, FANOUT_FATAL, "InvalidPartitionKey",
                               "the partition key has %ld characters, more than the %u "
                               "Kinesis takes (hashLongPartitionKeys is off)",
                               units, KINESIS_MAX_KEY_UNITS);
        return -1;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(m->key, m->key_len, md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != 32) {
        fanout_outcome_set(o, FANOUT_RETRY, "HashFailed",
                           "could not hash the %zu-byte partition key", m->key_len);
        return -1;
    }
    static const char hex[] = "0123456789abcdef";
    e->hashed = malloc(72);
    if (!e->hashed) {
        fanout_outcome_set(o, FANOUT_RETRY, "OutOfMemory",
                           "out of memory hashing the %zu-byte partition key", m->key_len);
        return -1;
    }
    memcpy(e->hashed, "sha256:", 7);
    for (unsigned i = 0; i < 32; i++) {
        e->hashed[7 + 2 * i] = hex[md[i] >> 4];
        e->hashed[8 + 2 * i] = hex[md[i] & 15];
    }
    e->hashed[71] = 0;
    e->key = (const uint8_t *)e->hashed;
    e->key_len = 71;
    return 0;
}

/* ---- the call (fanout_batch_send) ---- */

/* SequenceNumber: 0|([1-9]\d{0,128}) (botocore's model) */
static int s_seq_ok(const char *seq)
{
    size_t n = strlen(seq);
    return n <= 129 && strspn(seq, "0123456789") == n && (n == 1 || seq[0] != '0');
}

/* Message `index` as a record: its partition key (maybe hashed) and
 * explicit hash key; it counts key + data, as Kinesis does. */
static int s_prepare(void *ctx, const struct fanout_message *m, size_t index, void *entry,
                     uint64_t *size, struct fanout_outcome *o)
{
    const struct kinesis_target *t = ctx;
    struct s_entry *e = entry;
    (void)index;
    e->m = m;
    if (s_prepare_key(t, m, e, o) != 0)
        return -1;
    const struct fanout_record *r = m->record_count == 1 ? m->records[0] : NULL;
    if (t->explicit_hashes && r && r->explicit_hash_key) {
        if (!s_hash_key_ok(r->explicit_hash_key)) {
            fanout_outcome_set(o, FANOUT_FATAL, "InvalidExplicitHashKey",
                               "the KPL explicit hash key \"%.60s\" is not a decimal "
                               "from 0 to 2^128-1",
                               r->explicit_hash_key);
            return -1;
        }
        e->explicit_hash = r->explicit_hash_key;
    }
    *size = e->key_len + m->body_len;
    return 0;
}

static int s_build(void *ctx, struct fanout_batch_request *r)
{
    const struct kinesis_target *t = ctx;
    size_t need = 0;
    for (size_t k = 0; k < r->count; k++) {
        const struct s_entry *e = r->entries[k];
        need += 64 + (e->m->body_len + 2) / 3 * 4 + 6 * e->key_len +
                (e->explicit_hash ? 64 : 0);
    }
    struct fanout_sbuf *b = &r->body;
    int rc = fanout_stream_build_begin(&t->s, r, need);
    for (size_t k = 0; k < r->count; k++) {
        const struct s_entry *e = r->entries[k];
        rc |= fanout_sbuf_puts(b, k ? ",{\"Data\":\"" : "{\"Data\":\"");
        rc |= fanout_sbuf_base64(b, e->m->body, e->m->body_len);
        rc |= fanout_sbuf_puts(b, "\",\"PartitionKey\":");
        /* the key is valid UTF-8 here (s_prepare_key), so nothing is replaced */
        rc |= fanout_sbuf_json_str(b, e->key, e->key_len);
        if (e->explicit_hash)
            rc |= fanout_sbuf_printf(b, ",\"ExplicitHashKey\":\"%s\"", e->explicit_hash);
        rc |= fanout_sbuf_puts(b, "}");
    }
    return fanout_stream_build_end(r) | rc;
}

/* With parallel: false, a failed record resent after a later record of the
 * same key was written breaks that key's order: say so. */
static void s_warn_reordered(const struct kinesis_target *t,
                             const struct fanout_batch_request *r,
                             const struct fanout_outcome *out)
{
    const struct fanout_host *h = t->s.host;
    for (size_t a = 0; a < r->count; a++) {
        const struct s_entry *ea = r->entries[a];
        const struct fanout_outcome *oa = &out[r->indexes[a]];
        if (oa->status != FANOUT_RETRY && oa->status != FANOUT_THROTTLED)
            continue;
        for (size_t b = a + 1; b < r->count; b++) {
            const struct s_entry *eb = r->entries[b];
            if (out[r->indexes[b]].status == FANOUT_OK && eb->key_len == ea->key_len &&
                memcmp(eb->key, ea->key, ea->key_len) == 0) {
                if (h->log_enabled(FANOUT_LOG_WARN))
                    h->log(FANOUT_LOG_WARN, t->s.id,
                           "PutRecords to %s: a record of partition key \"%.*s\" failed "
                           "(%s) after a later record of that key was written; resending "
                           "it breaks the order of that key",
                           t->s.name, (int)(ea->key_len > 100 ? 100 : ea->key_len),
                           (const char *)ea->key, oa->code);
                break;
            }
        }
    }
}

static void s_read(void *ctx, const struct fanout_batch_request *r,
                   struct fanout_outcome *out)
{
    const struct kinesis_target *t = ctx;
    if (fanout_stream_read(&t->s, r, out) > 0 && t->s.ordered)
        s_warn_reordered(t, r, out);
}

const struct fanout_stream_kind kinesis_kind = {
    .plugin = "kinesis",
    .dest = {"kinesis", "stream/", "Kinesis stream", "stream ARN", KINESIS_MAX_NAME_LEN},
    /* by StreamARN when given one: a stream of another account, shared by a
     * resource policy, can only be named that way */
    .request = {"PutRecords", "Kinesis_20131202.PutRecords", "StreamName", "StreamARN",
                "Records"},
    .answer = {"FailedRecordCount", "Records", "SequenceNumber", s_seq_ok, "written", NULL,
               NULL},
    .batch = {.entry_size = sizeof(struct s_entry),
              .max_entries = KINESIS_MAX_RECORDS_PER_CALL,
              .max_request_bytes = KINESIS_MAX_CALL_BYTES,
              .prepare = s_prepare,
              .build = s_build,
              .read = s_read,
              .release = s_release},
};
