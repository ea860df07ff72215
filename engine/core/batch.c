#include "core/batch.h"

#include <string.h>

#define JSON_PREFIX     "{\"Records\":["
#define JSON_SUFFIX     "]}"
#define JSON_PREFIX_LEN (sizeof JSON_PREFIX - 1)
#define JSON_SUFFIX_LEN (sizeof JSON_SUFFIX - 1)

size_t fanout_message_size(const struct fanout_message *m, const struct fanout_limits *lim)
{
    return m->body_len + (lim->key_counts ? m->key_len : 0);
}

/* The largest message the limits allow, all limits taken together. */
static uint64_t s_message_limit(const struct fanout_limits *lim)
{
    uint64_t limit = lim->max_message_bytes ? lim->max_message_bytes : UINT64_MAX;
    if (lim->max_call_bytes) {
        uint64_t over = (uint64_t)lim->per_call_overhead + lim->per_message_overhead;
        uint64_t room = lim->max_call_bytes > over ? lim->max_call_bytes - over : 0;
        if (room < limit)
            limit = room;
    }
    return limit;
}

struct s_builder {
    struct fanout_arena *arena;
    const struct fanout_limits *lim;
    enum fanout_collapse mode;
    uint64_t limit;
    struct fanout_plan *plan;
    size_t cap;                         /* the records: most messages, rejections */
    struct fanout_message **msgs;       /* all messages, in order */
    const struct fanout_record **slots; /* the records of all messages */
    size_t used_slots;
    /* the message being built (collapse modes) */
    struct fanout_sbuf body;
    size_t first_slot, cur_count;
    struct fanout_sbuf item;
};

static int s_reject(struct s_builder *b, struct fanout_rec *r, const char *fmt, ...)
    FANOUT_FMT(3, 4);
static int s_reject(struct s_builder *b, struct fanout_rec *r, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *reason = fanout_arena_strdup(b->arena, msg);
    if (!reason)
        return -1;
    /* made at the first rejection: most plans have none */
    if (!b->plan->rejected && !(b->plan->rejected = fanout_arena_alloc(
                                    b->arena, b->cap * sizeof(struct fanout_rejection))))
        return -1;
    b->plan->rejected[b->plan->rejected_count++] = (struct fanout_rejection){r, reason};
    return 0;
}

static int s_emit(struct s_builder *b, const uint8_t *key, size_t key_len,
                  const uint8_t *body, size_t body_len, size_t first_slot, size_t count)
{
    struct fanout_message *m = fanout_arena_alloc(b->arena, sizeof *m);
    if (!m)
        return -1;
    m->key = key;
    m->key_len = key_len;
    m->body = body;
    m->body_len = body_len;
    m->record_count = count;
    m->records = (const struct fanout_record *const *)&b->slots[first_slot];
    b->msgs[b->plan->message_count++] = m;
    return 0;
}

/* Close the collapsed message being built, if any. */
static int s_flush(struct s_builder *b)
{
    if (!b->cur_count)
        return 0;
    if (b->mode == FANOUT_COLLAPSE_JSON &&
        fanout_sbuf_put(&b->body, JSON_SUFFIX, JSON_SUFFIX_LEN) != 0)
        return -1;
    const uint8_t *body = b->body.len ? b->body.bytes : (const uint8_t *)"";
    if (b->mode == FANOUT_COLLAPSE_CONCAT_B64) {
        struct fanout_sbuf enc = {0};
        if (fanout_sbuf_base64(&enc, b->body.bytes ? b->body.bytes : (uint8_t *)"",
                               b->body.len) != 0)
            return -1;
        fanout_sbuf_free(&b->body);
        b->body = enc;
        body = enc.len ? enc.bytes : (const uint8_t *)"";
    }
    uint8_t *copy = fanout_arena_memdup(b->arena, body, b->body.len);
    if (!copy)
        return -1;
    const struct fanout_record *first = b->slots[b->first_slot];
    if (s_emit(b, first->key, first->key_len, copy, b->body.len, b->first_slot,
               b->cur_count) != 0)
        return -1;
    fanout_sbuf_reset(&b->body);
    b->cur_count = 0;
    return 0;
}

/* The size of the current message if `item_len` more bytes of record were
 * added to it (collapse modes), first key counted when the service counts
 * keys. */
static uint64_t s_size_with(const struct s_builder *b, size_t key_len, size_t item_len)
{
    uint64_t key = b->lim->key_counts ? key_len : 0;
    uint64_t raw = b->body.len + item_len;
    switch (b->mode) {
    case FANOUT_COLLAPSE_JSON:
        if (b->cur_count == 0)
            raw = JSON_PREFIX_LEN + item_len;
        else
            raw = b->body.len + 1 + item_len; /* comma */
        return raw + JSON_SUFFIX_LEN + key;
    case FANOUT_COLLAPSE_CONCAT_B64: return fanout_base64_encoded_len(raw) + key;
    default: return raw + key;
    }
}

/* The record's data as one element of a JSON collapse message. */
static int s_json_item(struct s_builder *b, const struct fanout_record *r,
                       const uint8_t **out, size_t *out_len)
{
    if (fanout_json_valid(r->data, r->data_len)) {
        *out = r->data;
        *out_len = r->data_len;
        return 0;
    }
    fanout_sbuf_reset(&b->item);
    int rc;
    if (fanout_utf8_check(r->data, r->data_len)) {
        rc = fanout_sbuf_json_str(&b->item, r->data, r->data_len);
    } else {
        struct fanout_sbuf enc = {0};
        rc = fanout_sbuf_base64(&enc, r->data, r->data_len);
        if (rc == 0)
            rc = fanout_sbuf_json_str(&b->item, enc.bytes ? enc.bytes : (uint8_t *)"",
                                      enc.len);
        fanout_sbuf_free(&enc);
    }
    *out = b->item.bytes;
    *out_len = b->item.len;
    return rc;
}

static int s_add_collapsed(struct s_builder *b, struct fanout_rec *rec)
{
    const struct fanout_record *r = &rec->pub;
    const uint8_t *item = r->data;
    size_t item_len = r->data_len;
    if (b->mode == FANOUT_COLLAPSE_JSON && s_json_item(b, r, &item, &item_len) != 0)
        return -1;

    /* Does the record fit in a message on its own? */
    size_t saved_count = b->cur_count, saved_len = b->body.len;
    b->cur_count = 0;
    b->body.len = 0;
    uint64_t alone = s_size_with(b, r->key_len, item_len);
    b->cur_count = saved_count;
    b->body.len = saved_len;
    if (alone > b->limit) {
        const char *form = b->mode == FANOUT_COLLAPSE_JSON         ? "in a JSON message"
                           : b->mode == FANOUT_COLLAPSE_CONCAT_B64 ? "in base64"
                                                                   : "as a message";
        return s_reject(b, rec,
                        "record of %zu bytes is %llu bytes %s%s, larger than the "
                        "destination's limit of %llu bytes per message",
                        r->data_len, (unsigned long long)alone, form,
                        b->lim->key_counts ? " with its partition key" : "",
                        (unsigned long long)b->limit);
    }
    const struct fanout_record *first = b->cur_count ? b->slots[b->first_slot] : r;
    if (b->cur_count && s_size_with(b, first->key_len, item_len) > b->limit) {
        if (s_flush(b) != 0)
            return -1;
    }
    if (b->cur_count == 0) {
        b->first_slot = b->used_slots;
        if (b->mode == FANOUT_COLLAPSE_JSON &&
            fanout_sbuf_put(&b->body, JSON_PREFIX, JSON_PREFIX_LEN) != 0)
            return -1;
    } else if (b->mode == FANOUT_COLLAPSE_JSON && fanout_sbuf_putc(&b->body, ',') != 0) {
        return -1;
    }
    if (fanout_sbuf_put(&b->body, item, item_len) != 0)
        return -1;
    b->slots[b->used_slots++] = r;
    b->cur_count++;
    return 0;
}

static int s_add_single(struct s_builder *b, struct fanout_rec *rec)
{
    const struct fanout_record *r = &rec->pub;
    uint64_t size = r->data_len + (b->lim->key_counts ? r->key_len : 0);
    if (size > b->limit) {
        if (b->lim->key_counts)
            return s_reject(b, rec,
                            "record of %llu bytes (data %zu + partition key %zu) is larger "
                            "than the destination's limit of %llu bytes per record",
                            (unsigned long long)size, r->data_len, r->key_len,
                            (unsigned long long)b->limit);
        return s_reject(b, rec,
                        "record of %zu bytes is larger than the destination's limit of "
                        "%llu bytes per message",
                        r->data_len, (unsigned long long)b->limit);
    }
    b->slots[b->used_slots] = r;
    return s_emit(b, r->key, r->key_len, r->data, r->data_len, b->used_slots++, 1);
}

/* The end of the call that starts at message `i`: as many messages as the
 * per-call limits allow, at least one. */
static size_t s_call_end(const struct s_builder *b, size_t i)
{
    const struct fanout_limits *lim = b->lim;
    size_t n = b->plan->message_count, count = 0;
    uint64_t bytes = lim->per_call_overhead;
    for (; i < n; i++, count++) {
        uint64_t add = fanout_message_size(b->msgs[i], lim) + lim->per_message_overhead;
        if (count && lim->max_messages_per_call && count >= lim->max_messages_per_call)
            break;
        if (count && lim->max_call_bytes && bytes + add > lim->max_call_bytes)
            break;
        bytes += add;
    }
    return i;
}

/* Group the messages, in order, into calls under the per-call limits: the
 * calls counted first, so that their array has the size it needs. */
static int s_calls(struct s_builder *b)
{
    struct fanout_plan *p = b->plan;
    size_t calls = 0;
    for (size_t i = 0; i < p->message_count; i = s_call_end(b, i))
        calls++;
    p->calls = fanout_arena_alloc(b->arena, (calls ? calls : 1) * sizeof *p->calls);
    if (!p->calls)
        return -1;
    for (size_t i = 0, end; i < p->message_count; i = end) {
        end = s_call_end(b, i);
        p->calls[p->call_count++] = (struct fanout_call){end - i, &b->msgs[i]};
    }
    return 0;
}

/* Whether every record fits the target's limit as a message of its own
 * (collapse none): then the messages of another target can serve. */
static int s_all_fit(const struct s_builder *b, struct fanout_rec *const *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct fanout_record *r = &recs[i]->pub;
        if (r->data_len + (b->lim->key_counts ? r->key_len : 0) > b->limit)
            return 0;
    }
    return 1;
}

int fanout_plan_build(struct fanout_rec *const *recs, size_t n, enum fanout_collapse mode,
                      const struct fanout_limits *lim, struct fanout_arena *arena,
                      struct fanout_plan *out)
{
    return fanout_plan_build_shared(recs, n, mode, lim, arena, NULL, out);
}

int fanout_plan_build_shared(struct fanout_rec *const *recs, size_t n,
                             enum fanout_collapse mode, const struct fanout_limits *lim,
                             struct fanout_arena *arena, struct fanout_plan_share *share,
                             struct fanout_plan *out)
{
    memset(out, 0, sizeof *out);
    size_t cap = n ? n : 1;
    struct s_builder b = {
        .arena = arena,
        .lim = lim,
        .mode = mode,
        .limit = s_message_limit(lim),
        .plan = out,
        .cap = cap,
    };
    if (mode != FANOUT_COLLAPSE_NONE)
        share = NULL;
    if (share && share->messages && share->recs == recs && share->count == n &&
        s_all_fit(&b, recs, n)) {
        /* the messages an earlier target made of these records, as they are:
         * only the calls differ */
        b.msgs = share->messages;
        out->message_count = n;
        return s_calls(&b);
    }
    b.msgs = fanout_arena_alloc(arena, cap * sizeof(struct fanout_message *));
    b.slots = fanout_arena_alloc(arena, cap * sizeof(struct fanout_record *));
    if (!b.msgs || !b.slots)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = mode == FANOUT_COLLAPSE_NONE ? s_add_single(&b, recs[i])
                                          : s_add_collapsed(&b, recs[i]);
    if (rc == 0)
        rc = s_flush(&b);
    if (rc == 0)
        rc = s_calls(&b);
    fanout_sbuf_free(&b.body);
    fanout_sbuf_free(&b.item);
    if (rc == 0 && share && !share->messages && out->message_count == n) {
        share->recs = recs;
        share->count = n;
        share->messages = b.msgs;
    }
    return rc;
}
