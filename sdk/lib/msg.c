/* Messages of queue and topic APIs (fanout/batch.h): text checks, SHA-256,
 * FIFO ids, the base64 of a binary body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fanout/batch.h"
#include "fanout/swar.h"

/* What `accept` said of each ASCII character, per thread and function (it
 * is a property of the character): a body is mostly ASCII, and asking per
 * byte was a third of a message's preparation. */
static __thread int (*s_asked_fn)(uint32_t cp);
static __thread uint8_t s_asked[128]; /* 0: not asked, 1: accepted, 2: refused */
static __thread int s_printable_ok;   /* 0: not known, 1: all of 0x20..0x7E, 2: not */

static int s_ascii_ok(int (*accept)(uint32_t cp), unsigned c)
{
    if (!s_asked[c])
        s_asked[c] = accept(c) ? 1 : 2;
    return s_asked[c] == 1;
}

size_t fanout_text_check(const uint8_t *s, size_t n, int (*accept)(uint32_t cp), char *what,
                         size_t what_len)
{
    if (accept && accept != s_asked_fn) {
        memset(s_asked, 0, sizeof s_asked);
        s_printable_ok = 0;
        s_asked_fn = accept;
    }
    if (accept && !s_printable_ok && n >= 64) {
        s_printable_ok = 1;
        for (unsigned c = 0x20; c < 0x7F; c++)
            if (!s_ascii_ok(accept, c))
                s_printable_ok = 2;
    }
    int words = !accept || s_printable_ok == 1;
    for (size_t i = 0; i < n;) {
        if (words) {
            /* eight characters at a time while all are 0x20..0x7E */
            while (i + 8 <= n) {
                uint64_t x;
                memcpy(&x, s + i, 8);
                if (fanout_swar_below(x, 0x20) | fanout_swar_eq(x, 0x7f) |
                    fanout_swar_high(x))
                    break;
                i += 8;
            }
            if (i >= n)
                break;
        }
        if (s[i] < 0x80 && (!accept || s_ascii_ok(accept, s[i]))) {
            i++;
            continue;
        }
        size_t k = fanout_utf8_seq(s + i, n - i);
        if (!k) {
            if (what)
                snprintf(what, what_len, "invalid UTF-8 (byte 0x%02X)", s[i]);
            return i;
        }
        uint32_t cp = k == 1 ? s[i] : s[i] & (0x7Fu >> k);
        for (size_t j = 1; j < k; j++)
            cp = (cp << 6) | (s[i + j] & 0x3Fu);
        if (accept && !accept(cp)) {
            if (what)
                snprintf(what, what_len, "character U+%04X", (unsigned)cp);
            return i;
        }
        i += k;
    }
    if (what && what_len)
        what[0] = '\0';
    return n;
}

int fanout_sha256_hex(const void *const *parts, const size_t *lens, size_t count,
                      char out[65])
{
    static const char hex[] = "0123456789abcdef";
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    for (size_t i = 0; ok && i < count; i++)
        ok = EVP_DigestUpdate(ctx, parts[i], lens[i]) == 1;
    ok = ok && EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    for (unsigned i = 0; i < len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * len] = '\0';
    return 0;
}

int fanout_fifo_group_id(const uint8_t *key, size_t key_len,
                         char out[FANOUT_FIFO_ID_MAX + 1])
{
    /* alphanumeric and punctuation: the printable ASCII but space */
    int ok = key_len > 0 && key_len <= FANOUT_FIFO_ID_MAX;
    for (size_t i = 0; ok && i < key_len; i++)
        ok = key[i] > 0x20 && key[i] < 0x7F;
    if (ok) {
        memcpy(out, key, key_len);
        out[key_len] = '\0';
        return 0;
    }
    const void *parts[] = {key ? (const void *)key : ""};
    size_t lens[] = {key ? key_len : 0};
    return fanout_sha256_hex(parts, lens, 1, out);
}

int fanout_fifo_dedup_id(const char *target_id, const struct fanout_message *m,
                         char out[FANOUT_FIFO_ID_MAX + 1])
{
    const struct fanout_record *first = m->records[0];
    const struct fanout_record *last = m->records[m->record_count - 1];
    char subs[96];
    int n = snprintf(subs, sizeof subs, "%llu:%llu:%zu",
                     (unsigned long long)first->sub_sequence_number,
                     (unsigned long long)last->sub_sequence_number, m->record_count);
    const char *src = first->source_arn ? first->source_arn : "";
    /* NUL-terminated parts, so ("ab","c") and ("a","bc") differ */
    const void *parts[] = {"fanout-dedup-1",      target_id, src, first->sequence_number,
                           last->sequence_number, subs};
    size_t lens[] = {sizeof "fanout-dedup-1",
                     strlen(target_id) + 1,
                     strlen(src) + 1,
                     strlen(first->sequence_number) + 1,
                     strlen(last->sequence_number) + 1,
                     (size_t)(n > 0 ? n : 0)};
    return fanout_sha256_hex(parts, lens, sizeof lens / sizeof *lens, out);
}

int fanout_msg_entry_prepare(struct fanout_msg_entry *e, const struct fanout_message *m,
                             int base64, uint64_t max_bytes, const char *fifo_target_id,
                             uint64_t *size, struct fanout_outcome *out)
{
    e->body = m->body;
    e->body_len = m->body_len;
    if (base64) {
        struct fanout_sbuf b = {0};
        if (fanout_sbuf_base64(&b, m->body, m->body_len) != 0) {
            fanout_sbuf_free(&b);
            fanout_outcome_set(out, FANOUT_RETRY, "OutOfMemory", "out of memory");
            return -1;
        }
        e->encoded = (uint8_t *)b.p;
        e->body = e->encoded;
        e->body_len = b.len;
    }
    *size = e->body_len + (e->encoded ? FANOUT_B64_ATTR_BYTES : 0);
    if (*size > max_bytes) {
        fanout_outcome_set(
            out, FANOUT_FATAL, "MessageTooLong",
            "message of %zu bytes is %llu bytes%s, larger than the limit of "
            "%llu bytes per message",
            m->body_len, (unsigned long long)*size,
            e->encoded ? " as base64 with its \"" FANOUT_B64_ATTR_NAME "\" attribute" : "",
            (unsigned long long)max_bytes);
        return -1;
    }
    if (!fifo_target_id)
        return 0;
    e->group_id = malloc(2 * (FANOUT_FIFO_ID_MAX + 1));
    if (!e->group_id) {
        fanout_outcome_set(out, FANOUT_RETRY, "OutOfMemory", "out of memory");
        return -1;
    }
    e->dedup_id = e->group_id + FANOUT_FIFO_ID_MAX + 1;
    if (fanout_fifo_group_id(m->key, m->key_len, e->group_id) != 0 ||
        fanout_fifo_dedup_id(fifo_target_id, m, e->dedup_id) != 0) {
        fanout_outcome_set(out, FANOUT_RETRY, "DigestUnavailable",
                           "could not compute the FIFO group and deduplication ids "
                           "(SHA-256 unavailable)");
        return -1;
    }
    e->fifo = 1;
    return 0;
}

void fanout_msg_entry_release(void *ctx, void *entry)
{
    (void)ctx;
    struct fanout_msg_entry *e = entry;
    free(e->encoded);
    e->encoded = NULL;
    free(e->group_id);
    e->group_id = e->dedup_id = NULL;
}

/* The context fanout_msg_send hands fanout_batch_send. */
struct s_msg_call {
    const struct fanout_msg_service *svc;
    void *instance;
};

static int s_prepare(void *ctx, const struct fanout_message *m, size_t index, void *entry,
                     uint64_t *size, struct fanout_outcome *out)
{
    const struct s_msg_call *c = ctx;
    const struct fanout_msg_target *t = c->instance;
    (void)index;
    if (m->body_len == 0) {
        fanout_outcome_set(out, FANOUT_FATAL, c->svc->empty_code, "empty message: %s",
                           c->svc->empty_why);
        return -1;
    }
    char what[64];
    size_t bad = fanout_text_check(m->body, m->body_len, c->svc->accept, what, sizeof what);
    if (bad < m->body_len && !t->binary_base64) {
        fanout_outcome_set(out, FANOUT_FATAL, c->svc->binary_code,
                           "message of %zu bytes is not text %s accepts: %s at byte %zu; "
                           "for binary data use collapse \"concat-b64\" (or \"JSON\"), "
                           "or set \"binaryBase64\": true",
                           m->body_len, c->svc->name, what, bad);
        return -1;
    }
    return fanout_msg_entry_prepare(entry, m, bad < m->body_len, t->max_message_bytes,
                                    t->fifo ? t->target_id : NULL, size, out);
}

static int s_build(void *ctx, struct fanout_batch_request *r)
{
    const struct s_msg_call *c = ctx;
    return c->svc->build(c->instance, r);
}

static void s_read(void *ctx, const struct fanout_batch_request *r,
                   struct fanout_outcome *outcomes)
{
    const struct s_msg_call *c = ctx;
    c->svc->read(c->instance, r, outcomes);
}

static int s_failed_status(void *ctx, const struct fanout_aws_response *resp, int status)
{
    const struct s_msg_call *c = ctx;
    return c->svc->failed_status(c->instance, resp, status);
}

int fanout_msg_send(const struct fanout_msg_service *svc, void *instance,
                    uint64_t max_request_bytes, const struct fanout_batch *batch,
                    struct fanout_outcome *outcomes)
{
    const struct fanout_msg_target *t = instance;
    struct s_msg_call c = {svc, instance};
    const struct fanout_batch_api api = {
        .entry_size = sizeof(struct fanout_msg_entry),
        .max_entries = svc->max_entries,
        .max_request_bytes = max_request_bytes,
        .prepare = s_prepare,
        .build = s_build,
        .read = s_read,
        .release = fanout_msg_entry_release,
        .failed_status = svc->failed_status ? s_failed_status : NULL,
    };
    const struct fanout_batch_target bt = {.host = t->host,
                                           .target_id = t->target_id,
                                           .destination = t->destination,
                                           .ordered = t->fifo,
                                           .order_scope = svc->order_scope};
    return fanout_batch_send(&api, &bt, &c, batch, outcomes);
}
