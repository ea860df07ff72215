#include "core/event.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ddb.h"
#include "common/jscan.h"
#include "core/kpl.h"

#include <stddef.h>

/* a raw record's members by name are its rec.pub's */
#define S_SAME(raw_m, pub_m)                                                               \
    _Static_assert(offsetof(struct fanout_raw_record, raw_m) ==                            \
                       offsetof(struct fanout_raw_record, rec.pub.pub_m),                  \
                   "fanout_raw_record." #raw_m " is not rec.pub." #pub_m)
S_SAME(key, key);
S_SAME(key_len, key_len);
S_SAME(data, data);
S_SAME(data_len, data_len);
S_SAME(sequence_number, sequence_number);
S_SAME(sub_sequence_number_, sub_sequence_number);
S_SAME(aggregated_, aggregated);
S_SAME(explicit_hash_key_, explicit_hash_key);
S_SAME(action, action);
S_SAME(source_arn, source_arn);
S_SAME(region, region);

/* The last copy made of a member that most records repeat (eventSource,
 * eventSourceARN, awsRegion): the next record with the same text gets
 * the same copy, not one of its own. */
struct s_intern {
    const char *text;
    size_t len;
    const char *copy;
};

struct s_parser {
    struct fanout_event *ev;
    struct fanout_arena *arena;
    const char *start, *end; /* the event's text: sizes the record array */
    int writable;            /* the text may be changed: data decoded in place */
    size_t cap;
    struct s_intern source, arn, region;
    /* the nodes of one record at a time (the event is scanned with nodes
     * down to its records only), reset for each record */
    struct fanout_arena scratch;
    size_t next_index;      /* of the next record of the event's Records */
    struct fanout_sbuf key; /* a DynamoDB record's key, reset for each */
    int stopped;            /* out of memory: no further record is read */
    /* the last NewImage converted as the scan met it (s_shape_image): its
     * text in the event, and its plain JSON */
    const char *conv_text;
    struct fanout_sbuf conv;
    int convert_images;
    /* the last Keys read as the scan met them: their text, their key in
     * `key` */
    const char *key_text;
    /* the shapes of the images converted and Keys read last (NULL: none
     * kept); seen_tried: made (or tried to be) at the first hook call */
    struct fanout_ddb_seen *seen;
    int seen_tried;
};

/* A string member, unescaped into the arena, or NULL. */
static const char *s_str(struct s_parser *ps, const struct fanout_jnode *obj,
                         const char *key, size_t *len)
{
    return fanout_jstr(fanout_jget(obj, key), ps->arena, len);
}

/* The string `n` (NULL when not a string), NUL-terminated, in as many
 * bytes of the arena (not rounded up: a sequence number per record). */
static const char *s_str_bytes(struct s_parser *ps, const struct fanout_jnode *n)
{
    if (!n || n->type != FANOUT_J_STRING || n->escaped)
        return fanout_jstr(n, ps->arena, NULL);
    char *out = fanout_arena_bytes(ps->arena, n->len + 1);
    if (out) {
        memcpy(out, n->text, n->len);
        out[n->len] = 0;
    }
    return out;
}

/* The string `n` (NULL when not a string) for a member most records
 * repeat: see struct s_intern. */
static const char *s_str_interned(struct s_parser *ps, const struct fanout_jnode *n,
                                  struct s_intern *in)
{
    if (!n || n->type != FANOUT_J_STRING)
        return NULL;
    if (in->copy && !n->escaped && n->len == in->len &&
        memcmp(n->text, in->text, n->len) == 0)
        return in->copy;
    const char *copy = fanout_jstr(n, ps->arena, NULL);
    if (copy && !n->escaped)
        *in = (struct s_intern){n->text, n->len, copy};
    return copy;
}

/* Members of one object found in one walk of it: got[i] is the first
 * member named want[i], as fanout_jget finds it (NULL when none, or when
 * `obj` is not an object). A member name with an escape before all are
 * found sends every name to fanout_jget, which compares names unescaped. */
struct s_want {
    const char *name;
    size_t len;
};
#define S_WANT(lit)                                                                        \
    {                                                                                      \
        lit, sizeof(lit) - 1                                                               \
    }

__attribute__((always_inline)) static inline void s_members(const struct fanout_jnode *obj,
                                                            const struct s_want *want,
                                                            size_t n,
                                                            const struct fanout_jnode **got)
{
    for (size_t k = 0; k < n; k++)
        got[k] = NULL;
    if (!obj || obj->type != FANOUT_J_OBJECT)
        return;
    size_t left = n;
    for (const struct fanout_jnode *c = obj->child; c && left; c = c->next) {
        if (c->key_escaped) {
            for (size_t k = 0; k < n; k++)
                got[k] = fanout_jget_n(obj, want[k].name, want[k].len);
            return;
        }
        for (size_t k = 0; k < n; k++)
            if (!got[k] && c->key_len == want[k].len && c->key[0] == want[k].name[0] &&
                memcmp(c->key, want[k].name, want[k].len) == 0) {
                got[k] = c;
                left--;
                break;
            }
    }
}

/* The region field of an ARN (arn:partition:service:region:...), or NULL. */
static const char *s_arn_region(struct fanout_arena *a, const char *arn)
{
    if (!arn || strncmp(arn, "arn:", 4) != 0)
        return NULL;
    const char *p = arn;
    for (int i = 0; i < 3; i++) {
        p = strchr(p, ':');
        if (!p)
            return NULL;
        p++;
    }
    const char *end = strchr(p, ':');
    if (!end || end == p)
        return NULL;
    return fanout_arena_memdup(a, p, (size_t)(end - p));
}

static struct fanout_raw_record *s_new_record(struct s_parser *ps, size_t index,
                                              const struct fanout_jnode *obj)
{
    struct fanout_event *ev = ps->ev;
    if (ev->count == ps->cap) {
        /* In the arena (huge pages: a fault per 2 MiB), for as many records
         * as the event's text holds at the size of those read so far (and a
         * little more): an event of records alike is sized at its first
         * record. Made larger (a copy, the old one left to the arena) when
         * that was too few. */
        size_t cap = 0;
        if (obj->text >= ps->start && obj->text < ps->end) {
            size_t done = (size_t)(obj->text - ps->start) + obj->len + 2;
            size_t rest = (size_t)(ps->end - obj->text);
            size_t each = done / (ev->count + 1);
            cap = ev->count + rest / (each ? each : 1) + 1;
            cap += cap / 32 + 16;
        }
        if (cap < ps->cap + ps->cap / 2 + 16)
            cap = ps->cap + ps->cap / 2 + 16;
        if (cap > SIZE_MAX / sizeof *ev->records)
            return NULL;
        struct fanout_raw_record *p = fanout_arena_alloc(ps->arena, cap * sizeof *p);
        if (!p)
            return NULL;
        if (ev->count)
            memcpy(p, ev->records, ev->count * sizeof *p);
        ev->records = p;
        ps->cap = cap;
    }
    struct fanout_raw_record *r = &ev->records[ev->count++];
    memset(r, 0, sizeof *r);
    r->index = index;
    r->json = obj->text;
    r->json_len = obj->len;
    return r;
}

/* Record `r` failed to parse: say which record and what was expected. */
static void s_fail(struct s_parser *ps, struct fanout_raw_record *r, const char *fmt, ...)
    FANOUT_FMT(3, 4);
static void s_fail(struct s_parser *ps, struct fanout_raw_record *r, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char q[FANOUT_QUOTE_SIZE];
    r->error = fanout_arena_sprintf(ps->arena, "record %zu%s%s%s: %s", r->index,
                                    r->sequence_number ? " (sequence number " : "",
                                    fanout_quote(q, r->sequence_number),
                                    r->sequence_number ? ")" : "", msg);
}

/* A JSON number of at most 15 digits with maybe a fraction and no sign
 * or exponent (as Lambda writes times), as strtod reads it: the digits
 * and the power of ten are exact doubles, so their quotient is the
 * correctly rounded value strtod gives. -1 for any other number. */
static int s_decimal_exact(const char *t, size_t n, double *out)
{
    static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    uint64_t m = 0;
    int digits = 0, frac = -1;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c >= '0' && c <= '9') {
            if (++digits > 15)
                return -1;
            m = m * 10 + (uint64_t)(c - '0');
            if (frac >= 0)
                frac++;
        } else if (c == '.' && frac < 0) {
            frac = 0;
        } else {
            return -1;
        }
    }
    if (!digits)
        return -1;
    *out = (double)m / p10[frac > 0 ? frac : 0];
    return 0;
}

/* after 2000-01-01 and before 2100: anything else is not a time */
#define S_EPOCH_MIN 946684800.0
#define S_EPOCH_MAX 4102444800.0

/* The ms of a number of seconds (digits and maybe a point and decimals, as
 * Lambda writes times) in integers, the same as the double path below:
 * - up to 3 decimals and 15 digits: that path's rounding error (under
 *   1e-3 ms) cannot move its + 0.5 across a whole ms;
 * - more decimals, up to 19 digits: the ms rounded half up, unless the
 *   part below the ms is within 0.002 of a half (the error of the double
 *   path is below 0.0015 ms) or the time within 1 ms of the bounds.
 * -1 for any other number: the double path decides. */
static int64_t s_epoch_ms_exact(const char *t, size_t n)
{
    static const uint64_t scale[] = {1000, 100, 10, 1};
    const uint64_t min = (uint64_t)(S_EPOCH_MIN * 1000),
                   max = (uint64_t)(S_EPOCH_MAX * 1000);
    if (n == 0 || n > 20) /* 19 digits and a point */
        return -1;
    uint64_t m = 0;
    size_t dot = n;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(t[i] - '0');
        if (d < 10)
            m = m * 10 + d;
        else if (t[i] == '.' && dot == n && i)
            dot = i;
        else
            return -1;
    }
    size_t frac = dot == n ? 0 : n - dot - 1, digits = n - (dot < n);
    if ((dot < n && !frac) || digits > 19)
        return -1;
    if (frac <= 3) {
        if (digits > 15)
            return -1;
        m *= scale[frac];
        return m < min || m > max ? 0 : (int64_t)m;
    }
    uint64_t p = 1;
    for (size_t k = 3; k < frac; k++)
        p *= 10;
    uint64_t ms = m / p, twice = m % p * 2;
    uint64_t off_half = twice > p ? twice - p : p - twice;
    if (off_half * 250 <= p || ms <= min || ms + 1 >= max)
        return -1;
    return (int64_t)(ms + (twice >= p));
}

/* A time in seconds since the epoch (a JSON number, maybe with a
 * fraction) as ms, or 0 when absent or not a plausible time. */
static int64_t s_epoch_seconds_ms(const struct fanout_jnode *n)
{
    char num[64];
    if (!n || n->type != FANOUT_J_NUMBER || n->len >= sizeof num)
        return 0;
    int64_t ms = s_epoch_ms_exact(n->text, n->len);
    if (ms >= 0)
        return ms;
    double secs;
    if (s_decimal_exact(n->text, n->len, &secs) != 0) {
        memcpy(num, n->text, n->len);
        num[n->len] = 0;
        secs = strtod(num, NULL);
    }
    if (!isfinite(secs) || secs < S_EPOCH_MIN || secs > S_EPOCH_MAX)
        return 0;
    return (int64_t)(secs * 1000.0 + 0.5);
}

/* The string `n` (NULL when not a string) NUL-terminated where it is, over
 * its closing quote, in a text that may be changed (fanout_raw_json puts
 * the quote back); else s_str_bytes. */
static const char *s_str_in_place(struct s_parser *ps, const struct fanout_jnode *n)
{
    if (!ps->writable || !n || n->type != FANOUT_J_STRING || n->escaped)
        return s_str_bytes(ps, n);
    char *t = (char *)n->text;
    t[n->len] = 0;
    return t;
}

/* Whether the string `n` holds a NUL (\u0000). The members read as text
 * (eventSource, eventSourceARN, awsRegion, eventName, the sequence
 * numbers) would read as their part before it: "REMOVE\u0000x" as REMOVE,
 * an ARN as another stream's. No AWS writer puts one there; such a record
 * fails, named. Only an escaped string can hold one. */
static int s_has_nul(struct s_parser *ps, const struct fanout_jnode *n)
{
    if (!n || n->type != FANOUT_J_STRING || !n->escaped)
        return 0;
    size_t len = 0;
    const char *t = fanout_jstr(n, &ps->scratch, &len);
    return t && strlen(t) != len;
}

/* The record's member "kinesis" is `k` (NULL when it has none); `dup`: the
 * record repeats a name (its sequence number maybe not kept). */
static void s_parse_kinesis(struct s_parser *ps, struct fanout_raw_record *r,
                            const struct fanout_jnode *k, int dup)
{
    r->kind = FANOUT_SRC_KINESIS;
    r->action = "PUT";
    if (!k || k->type != FANOUT_J_OBJECT) {
        s_fail(ps, r, "field \"kinesis\": missing or not an object");
        return;
    }
    static const struct s_want want[] = {S_WANT("sequenceNumber"),
                                         S_WANT("approximateArrivalTimestamp"),
                                         S_WANT("partitionKey"), S_WANT("data")};
    const struct fanout_jnode *got[4];
    s_members(k, want, 4, got);
    if (s_has_nul(ps, got[0])) {
        s_fail(ps, r, "field \"kinesis.sequenceNumber\": holds a NUL character (\\u0000)");
        return;
    }
    r->sequence_number = dup ? s_str_bytes(ps, got[0]) : s_str_in_place(ps, got[0]);
    r->arrival_ms = s_epoch_seconds_ms(got[1]);
    /* the key points into the event's text when it has no escape: the
     * text outlives the records, and the key is read by its length */
    size_t pk_len = 0;
    const char *pk = got[2] && got[2]->type == FANOUT_J_STRING && !got[2]->escaped
                         ? got[2]->text
                         : fanout_jstr(got[2], ps->arena, &pk_len);
    if (pk && pk == got[2]->text)
        pk_len = got[2]->len;
    const struct fanout_jnode *data = got[3];
    if (!r->sequence_number) {
        s_fail(ps, r, "field \"kinesis.sequenceNumber\": missing or not a string");
        return;
    }
    if (!pk) {
        s_fail(ps, r, "field \"kinesis.partitionKey\": missing or not a string");
        return;
    }
    if (!data || data->type != FANOUT_J_STRING) {
        s_fail(ps, r, "field \"kinesis.data\": missing or not a string (expected base64)");
        return;
    }
    r->key = (const uint8_t *)pk;
    r->key_len = pk_len;
    /* base64 has no character JSON must escape, but a writer may escape
     * '/' as "\/": decode from the text when it has no escape. Decoded
     * where it is (fewer bytes than characters) in a text that may be
     * changed, or in the unescaped copy; else into the arena. */
    size_t n = data->len, bad = 0;
    char *own = data->escaped  ? (char *)fanout_jstr(data, ps->arena, &n)
                : ps->writable ? (char *)data->text
                               : NULL;
    uint8_t *out = NULL;
    long m = -1;
    if (own && n) {
        out = (uint8_t *)own;
        m = fanout_base64_decode_in_place(own, n, &bad);
    } else if (own) {
        out = (uint8_t *)"";
        m = 0;
    } else if (!data->escaped) {
        out = fanout_arena_bytes(ps->arena, fanout_base64_decoded_max(n) + 1);
        m = out ? fanout_base64_decode(data->text, n, out, &bad) : -1;
    }
    if (m < 0) {
        if (bad == n)
            s_fail(ps, r,
                   "field \"kinesis.data\": not valid base64: length %zu is not a "
                   "multiple of 4 (expected padded standard base64)",
                   n);
        else
            s_fail(ps, r,
                   "field \"kinesis.data\": not valid base64 at offset %zu (expected "
                   "the standard alphabet A-Z a-z 0-9 + / with = padding)",
                   bad);
        return;
    }
    if (m || !own)
        out[m] = 0; /* in place: m < n (n is 4 or more) */
    r->data = out;
    r->data_len = (size_t)m;
}

/* The members the scan keeps no nodes below (fanout_jscan_each_skip): the
 * key comes from Keys' text, a NewImage is converted from its text. */
static const char *const s_ddb_skipped[] = {"NewImage", "OldImage", "Keys", NULL};

/* fanout_ddb_readable of a NewImage or Keys: one the scan kept no nodes below is
 * scanned again only when it holds what may be unreadable (a number, an
 * escaped member name); with neither, an object is readable. */
static int s_image_readable(struct s_parser *ps, const struct fanout_jnode *img)
{
    if (img->child || !img->inside)
        return fanout_ddb_readable(img);
    char err[8];
    const struct fanout_jnode *full =
        fanout_jscan_valid(img->text, img->len, &ps->scratch, err, sizeof err);
    return full && fanout_ddb_readable(full);
}

/* A DynamoDB record's eventName (NULL when not a string): one of the
 * three DynamoDB Streams sends, as a constant; any other, a copy. */
static const char *s_action(struct s_parser *ps, const struct fanout_jnode *n)
{
    static const char *const known[] = {"INSERT", "MODIFY", "REMOVE"};
    if (n && n->type == FANOUT_J_STRING && !n->escaped && n->len == 6)
        for (size_t i = 0; i < 3; i++)
            if (memcmp(n->text, known[i], 6) == 0)
                return known[i];
    return fanout_jstr(n, ps->arena, NULL);
}

/* The record `r` is `rec` (its members scanned). */
static void s_parse_dynamodb(struct s_parser *ps, struct fanout_raw_record *r,
                             const struct fanout_jnode *rec)
{
    r->kind = FANOUT_SRC_DYNAMODB;
    static const struct s_want top[] = {S_WANT("eventName"), S_WANT("dynamodb")};
    const struct fanout_jnode *got_top[2];
    s_members(rec, top, 2, got_top);
    if (s_has_nul(ps, got_top[0])) {
        s_fail(ps, r,
               "field \"eventName\": holds a NUL character (\\u0000) (expected INSERT, "
               "MODIFY or REMOVE)");
        return;
    }
    const char *name = s_action(ps, got_top[0]);
    r->action = name ? name : "UNKNOWN";
    const struct fanout_jnode *d = got_top[1];
    if (!d || d->type != FANOUT_J_OBJECT) {
        s_fail(ps, r, "field \"dynamodb\": missing or not an object");
        return;
    }
    /* its members in one walk (as fanout_jget finds them) */
    static const struct s_want want[] = {S_WANT("SequenceNumber"),
                                         S_WANT("ApproximateCreationDateTime"),
                                         S_WANT("NewImage"), S_WANT("Keys")};
    const struct fanout_jnode *got[4];
    s_members(d, want, 4, got);
    if (s_has_nul(ps, got[0])) {
        s_fail(ps, r, "field \"dynamodb.SequenceNumber\": holds a NUL character (\\u0000)");
        return;
    }
    r->sequence_number = fanout_jstr(got[0], ps->arena, NULL);
    r->arrival_ms = s_epoch_seconds_ms(got[1]);
    if (!r->sequence_number) {
        s_fail(ps, r, "field \"dynamodb.SequenceNumber\": missing or not a string");
        return;
    }
    if (!name) {
        s_fail(ps, r, "field \"eventName\": missing (expected INSERT, MODIFY or REMOVE)");
        return;
    }
    /* the key now, from this record's nodes; the new image's text is kept
     * and converted per target (fanout_decode_group) */
    const struct fanout_jnode *img = got[2];
    if (img && img->type != FANOUT_J_OBJECT) {
        s_fail(ps, r, "field \"dynamodb.NewImage\": not an object");
        return;
    }
    const struct fanout_jnode *keys = got[3];
    if ((keys && !s_image_readable(ps, keys)) || (img && !s_image_readable(ps, img))) {
        s_fail(ps, r, "field \"dynamodb\": cannot be read (out of memory?)");
        return;
    }
    r->data = img ? (const uint8_t *)img->text : NULL;
    r->data_len = img ? img->len : 0;
    struct fanout_sbuf *kb = &ps->key;
    char err[256];
    /* Keys read as the scan met them (s_shape_member) are in kb already;
     * other Keys the scan kept no nodes below: from their text */
    int krc = 0;
    if (!keys || keys->text != ps->key_text) {
        fanout_sbuf_reset(kb);
        krc = keys && keys->type == FANOUT_J_OBJECT && keys->count && !keys->child
                  ? fanout_ddb_key_text(keys->text, keys->len, &ps->scratch, kb, err,
                                        sizeof err)
                  : fanout_ddb_key_write(keys, kb, err, sizeof err);
    }
    if (krc == -2) {
        s_fail(ps, r, "field \"dynamodb\": cannot be read (out of memory?)");
        return;
    }
    if (krc != 0) {
        s_fail(ps, r, "field \"dynamodb.Keys\": %s", err);
        return;
    }
    r->key = fanout_arena_memdup(ps->arena, kb->bytes ? kb->bytes : (uint8_t *)"", kb->len);
    r->key_len = kb->len;
    /* a NewImage converted as the scan met it (the first one, as fanout_jget
     * finds it; NULL when out of memory: converted per target) */
    if (img && img->text == ps->conv_text) {
        r->converted = fanout_arena_memdup(ps->arena, ps->conv.bytes, ps->conv.len);
        r->converted_len = ps->conv.len;
    }
}

static void s_parse_records(struct s_parser *ps, const struct fanout_jnode *records,
                            int nested, size_t outer_index);

/* A record whose JSON repeats a member name anywhere is refused: readers
 * disagree on which value counts (the first, the last), so no target may
 * get it. When the repeated name is the record's identifier, it is not
 * trusted either (the record is then reported without one, which makes
 * Lambda retry the whole batch). */
static void s_fail_duplicate(struct s_parser *ps, struct fanout_raw_record *r, int rc,
                             const char *path)
{
    if (rc == 0)
        return;
    if (rc < 0) {
        r->error = NULL;
        s_fail(ps, r, "cannot be checked (out of memory)");
        return;
    }
    if (!strcmp(path, "kinesis.sequenceNumber") || !strcmp(path, "kinesis") ||
        !strcmp(path, "dynamodb.SequenceNumber") || !strcmp(path, "dynamodb") ||
        !strcmp(path, "Sns.MessageId") || !strcmp(path, "Sns"))
        r->sequence_number = NULL;
    r->error = NULL;
    s_fail(ps, r,
           "duplicate key \"%s\": a name may appear once per object (the record is "
           "not sent to any target)",
           path);
}

/* The record `r` is `rec` (its members scanned). Returns 1 when the
 * message was an event and its records were added in place of the wrapper
 * (`r` is then no longer valid). */
static int s_parse_sns(struct s_parser *ps, struct fanout_raw_record *r,
                       const struct fanout_jnode *rec, int nested)
{
    const struct fanout_jnode *sns = fanout_jget(rec, "Sns");
    r->kind = FANOUT_SRC_SNS;
    r->action = "PUBLISH";
    ps->ev->from_sns = 1;
    if (!sns || sns->type != FANOUT_J_OBJECT) {
        s_fail(ps, r, "field \"Sns\": missing or not an object");
        return 0;
    }
    /* read as text: up to a NUL, "topic\u0000x" would be the topic's ARN
     * (s_has_nul) */
    static const char *const text[] = {"MessageId", "TopicArn"};
    for (size_t i = 0; i < sizeof text / sizeof *text; i++)
        if (s_has_nul(ps, fanout_jget(sns, text[i]))) {
            s_fail(ps, r, "field \"Sns.%s\": holds a NUL character (\\u0000)", text[i]);
            return 0;
        }
    const char *id = s_str(ps, sns, "MessageId", NULL);
    const char *topic = s_str(ps, sns, "TopicArn", NULL);
    size_t msg_len;
    const char *msg = s_str(ps, sns, "Message", &msg_len);
    r->sequence_number = id;
    if (!id || !topic || !msg) {
        s_fail(ps, r,
               "fields \"Sns.MessageId\", \"Sns.TopicArn\" and \"Sns.Message\" "
               "must be strings");
        return 0;
    }
    r->source_arn = topic;
    /* A message that is itself a Kinesis or DynamoDB Streams event (as a
     * fan-out to SNS with collapse JSON produces) is unwrapped: its records
     * are processed as if they had arrived directly. */
    if (!nested && msg_len && msg[0] == '{') {
        char err[8];
        const struct fanout_jnode *inner =
            fanout_jscan(msg, msg_len, ps->arena, err, sizeof err);
        const struct fanout_jnode *recs = fanout_jget(inner, "Records");
        char dup[80];
        if (recs && fanout_jdup_members(inner, ps->arena, dup, sizeof dup) != 0) {
            s_fail(ps, r, "field \"Sns.Message\": the event inside repeats the key \"%s\"",
                   dup);
            return 0;
        }
        if (recs && recs->type == FANOUT_J_ARRAY && recs->count > 0) {
            const char *src = s_str(ps, recs->child, "eventSource", NULL);
            if (src && (!strcmp(src, "aws:kinesis") || !strcmp(src, "aws:dynamodb"))) {
                size_t wrapper = r->index;
                ps->ev->count--; /* the wrapper itself is not a record */
                s_parse_records(ps, recs, 1, wrapper);
                return 1;
            }
        }
    }
    r->key = (const uint8_t *)r->sequence_number;
    r->key_len = strlen(r->sequence_number);
    r->data = (const uint8_t *)msg;
    r->data_len = msg_len;
    return 0;
}

/* The eventSource `src` is `lit` (`len` bytes): strcmp, its length known
 * when it is the copy most records share (struct s_intern), and then the
 * bytes compared in place rather than by a call. */
static inline int s_src_is(const struct s_parser *ps, const char *src, const char *lit,
                           size_t len)
{
    size_t src_len = src == ps->source.copy ? ps->source.len : strlen(src);
    return src_len == len && memcmp(src, lit, len) == 0;
}

/* One record: `obj` as the event keeps it, `full` the same with its
 * members (when `obj` was scanned shallow; else `obj` itself). Returns -1
 * when out of memory (no further record is read). */
static int s_parse_record(struct s_parser *ps, const struct fanout_jnode *obj,
                          const struct fanout_jnode *full, int nested, size_t index)
{
    struct fanout_raw_record *r = s_new_record(ps, index, obj);
    if (!r)
        return -1;
    if (obj->type != FANOUT_J_OBJECT) {
        s_fail(ps, r, "not an object");
        return 0;
    }
    /* checked first: an SNS wrapper with a repeated name is not
     * unwrapped */
    char path[160];
    int dup = fanout_jdup(full, &ps->scratch, path, sizeof path);
    const struct fanout_jnode *rec = full;
    static const struct s_want want[] = {S_WANT("eventSource"), S_WANT("eventSourceARN"),
                                         S_WANT("awsRegion"), S_WANT("kinesis")};
    const struct fanout_jnode *got[4];
    s_members(rec, want, 4, got);
    int nul = -1;
    for (int k = 0; k < 3 && nul < 0; k++)
        if (s_has_nul(ps, got[k]))
            nul = k;
    const char *src = s_str_interned(ps, got[0], &ps->source);
    const char *nul_name = nul >= 0 ? want[nul].name : NULL;
    if (!src && !nul_name) { /* SNS spells it so */
        if (s_has_nul(ps, fanout_jget(rec, "EventSource")))
            nul_name = "EventSource";
        else
            src = s_str(ps, rec, "EventSource", NULL);
    }
    r->source_arn = nul == 1 ? NULL : s_str_interned(ps, got[1], &ps->arn);
    const char *region = nul == 2 ? NULL : s_str_interned(ps, got[2], &ps->region);
    if (nul_name) {
        s_fail(ps, r, "field \"%s\": holds a NUL character (\\u0000)", nul_name);
    } else if (!src) {
        s_fail(ps, r,
               "field \"eventSource\": missing (expected aws:kinesis, "
               "aws:dynamodb or aws:sns)");
    } else if (s_src_is(ps, src, "aws:kinesis", 11)) {
        s_parse_kinesis(ps, r, got[3], dup);
    } else if (s_src_is(ps, src, "aws:dynamodb", 12)) {
        s_parse_dynamodb(ps, r, rec);
    } else if (s_src_is(ps, src, "aws:sns", 7)) {
        if (s_parse_sns(ps, r, rec, nested || dup))
            return 0; /* unwrapped: r is gone or was reused */
    } else {
        char q[FANOUT_QUOTE_SIZE];
        s_fail(ps, r,
               "field \"eventSource\": unknown source \"%s\" (expected aws:kinesis, "
               "aws:dynamodb or aws:sns)",
               fanout_quote(q, src));
    }
    if (!r->source_arn && !r->error)
        s_fail(ps, r, "field \"eventSourceARN\": missing or not a string");
    s_fail_duplicate(ps, r, dup, path);
    r->region = region ? region : s_arn_region(ps->arena, r->source_arn);
    return 0;
}

/* The records of an event inside an SNS message (scanned in full). */
static void s_parse_records(struct s_parser *ps, const struct fanout_jnode *records,
                            int nested, size_t outer_index)
{
    size_t i = 0;
    for (const struct fanout_jnode *obj = records->child; obj; obj = obj->next, i++)
        if (s_parse_record(ps, obj, obj, nested, nested ? outer_index : i) != 0)
            return;
}

/* fanout_jscan_each's callback: a record of the event's Records, as soon
 * as it is scanned (its members in the scratch arena). */
static void s_each_record(void *ctx, const struct fanout_jnode *kept,
                          const struct fanout_jnode *full)
{
    struct s_parser *ps = ctx;
    size_t index = ps->next_index++;
    if (!ps->stopped && s_parse_record(ps, kept, full, 0, index) != 0)
        ps->stopped = 1;
}

static int s_group(struct fanout_event *ev, struct fanout_arena *a)
{
    /* Few sources per event in practice: a linear scan per record, over the
     * groups, keeps first-seen order without a hash table. */
    /* each entry written before it is read: not zeroed */
    size_t *counts = malloc((ev->count + 1) * sizeof *counts);
    size_t *group_of = malloc((ev->count + 1) * sizeof *group_of);
    const char **arns = malloc((ev->count + 1) * sizeof *arns);
    if (!counts || !group_of || !arns) {
        free(counts);
        free(group_of);
        free(arns);
        return -1;
    }
    size_t ng = 0, last = 0;
    for (size_t i = 0; i < ev->count; i++) {
        const char *arn = ev->records[i].source_arn ? ev->records[i].source_arn : "";
        size_t g = ng;
        /* most records share their ARN's copy (s_str_interned) */
        if (ng && (arns[last] == arn || strcmp(arns[last], arn) == 0))
            g = last;
        else
            for (size_t j = 0; j < ng; j++)
                if (strcmp(arns[j], arn) == 0) {
                    g = j;
                    break;
                }
        if (g == ng) {
            counts[ng] = 0;
            arns[ng++] = arn;
        }
        group_of[i] = last = g;
        counts[g]++;
        ev->records[i].rec.raw = &ev->records[i]; /* where it stays */
    }
    ev->groups = fanout_arena_calloc(a, (ng ? ng : 1) * sizeof *ev->groups);
    int rc = ev->groups ? 0 : -1;
    for (size_t g = 0; rc == 0 && g < ng; g++) {
        ev->groups[g].source_arn = arns[g];
        ev->groups[g].records =
            fanout_arena_alloc(a, (counts[g] ? counts[g] : 1) * sizeof(void *));
        if (!ev->groups[g].records)
            rc = -1;
    }
    if (rc == 0) {
        ev->group_count = ng;
        for (size_t i = 0; i < ev->count; i++) {
            struct fanout_source_group *grp = &ev->groups[group_of[i]];
            grp->records[grp->count++] = &ev->records[i];
            int64_t t = ev->records[i].arrival_ms;
            if (t && (!grp->oldest_arrival_ms || t < grp->oldest_arrival_ms))
                grp->oldest_arrival_ms = t;
            if (t && (!ev->oldest_arrival_ms || t < ev->oldest_arrival_ms))
                ev->oldest_arrival_ms = t;
        }
    }
    free(counts);
    free(group_of);
    free(arns);
    return rc;
}

/* fanout_jscan_each_skip_shape's hook (s_ddb_skipped): a NewImage
 * converted now when images are converted, Keys made into the key now. */
static const char *s_shape_member(void *ctx, int which, const char *p, const char *end,
                                  size_t *count)
{
    struct s_parser *ps = ctx;
    const char *q = NULL;
    /* made at the first DynamoDB record (NULL when out of memory: each
     * text then read on its own) */
    if (!ps->seen && !ps->seen_tried) {
        ps->seen_tried = 1;
        ps->seen = fanout_ddb_seen_new();
    }
    if (which == 0 && ps->convert_images) {
        q = ps->seen ? fanout_ddb_image_seen(ps->seen, p, end, count, &ps->conv)
                     : fanout_ddb_image_shape(p, end, count, &ps->conv);
        ps->conv_text = q ? p : NULL;
    } else if (which == 1 && ps->convert_images && ps->seen) {
        /* an OldImage of a shape a NewImage had: only read */
        q = fanout_ddb_image_seen(ps->seen, p, end, count, NULL);
    } else if (which == 2) {
        q = ps->seen ? fanout_ddb_keys_seen(ps->seen, p, end, count, &ps->key)
                     : fanout_ddb_keys_shape(p, end, count, &ps->key);
        ps->key_text = q ? p : NULL;
    }
    return q;
}

int fanout_event_parse(const char *json, size_t len, struct fanout_arena *arena,
                       struct fanout_event *ev, char *err, size_t err_len)
{
    return fanout_event_parse_opts(json, len, 0, arena, ev, err, err_len);
}

static int s_parse_event(const char *json, size_t len, int convert_images, int writable,
                         struct fanout_arena *arena, struct fanout_event *ev, char *err,
                         size_t err_len)
{
    memset(ev, 0, sizeof *ev);
    char why[256];
    struct s_parser ps = {.ev = ev,
                          .arena = arena,
                          .start = json,
                          .end = json + len,
                          .convert_images = convert_images,
                          .writable = writable};
    /* one pass: nodes down to the records (level 2) stay; each record's
     * members are scanned into the scratch arena and the record read
     * (s_each_record) as the scan meets it, so the nodes of one record at
     * a time are in memory, not those of all 10,000. The records read
     * before an error in the event are dropped with it. */
    const struct fanout_jnode *root = fanout_jscan_each_skip_shape(
        json, len, "Records", "dynamodb", s_ddb_skipped, s_shape_member, &ps, arena,
        &ps.scratch, s_each_record, &ps, why, sizeof why);
    fanout_arena_free(&ps.scratch);
    fanout_sbuf_free(&ps.key);
    fanout_sbuf_free(&ps.conv);
    fanout_ddb_seen_free(ps.seen);
    if (!root) {
        fanout_event_clean_up(ev);
        snprintf(err, err_len, "event is not valid JSON: %s", why);
        return -1;
    }
    if (fanout_jdup_members(root, arena, why, sizeof why) != 0) {
        fanout_event_clean_up(ev);
        snprintf(err, err_len,
                 "event repeats the key \"%s\" at its top level (a name may appear once "
                 "per object)",
                 why);
        return -1;
    }
    const struct fanout_jnode *records = fanout_jget(root, "Records");
    if (!records || records->type != FANOUT_J_ARRAY) {
        fanout_event_clean_up(ev);
        snprintf(err, err_len,
                 "event has no \"Records\" array (expected a Kinesis, DynamoDB Streams "
                 "or SNS event: {\"Records\":[...]})");
        return -1;
    }
    if (s_group(ev, arena) != 0) {
        snprintf(err, err_len, "out of memory");
        fanout_event_clean_up(ev);
        return -1;
    }
    return 0;
}

int fanout_event_parse_opts(const char *json, size_t len, int convert_images,
                            struct fanout_arena *arena, struct fanout_event *ev, char *err,
                            size_t err_len)
{
    return s_parse_event(json, len, convert_images, 0, arena, ev, err, err_len);
}

int fanout_event_parse_in_place(char *json, size_t len, int convert_images,
                                struct fanout_arena *arena, struct fanout_event *ev,
                                char *err, size_t err_len)
{
    return s_parse_event(json, len, convert_images, 1, arena, ev, err, err_len);
}

void fanout_event_clean_up(struct fanout_event *ev)
{
    /* the records and groups are the arena's */
    memset(ev, 0, sizeof *ev);
}

/* ---- decoding --------------------------------------------------------- */

/* The record as `raw` has it, for a target that changes it: a copy. */
static struct fanout_rec *s_rec(struct fanout_arena *a, const struct fanout_raw_record *raw)
{
    struct fanout_rec *r = fanout_arena_alloc(a, sizeof *r);
    if (r)
        *r = raw->rec;
    return r;
}

/* A record that cannot be decoded for a target: the failure list is made
 * at the first (most groups have none), for as many as the group's
 * records. */
static int s_failed(struct fanout_decoded *out, size_t cap, struct fanout_arena *a,
                    const struct fanout_raw_record *raw, const char *reason)
{
    if (!out->failures &&
        !(out->failures = fanout_arena_alloc(a, cap * sizeof *out->failures)))
        return -1;
    out->failures[out->failed_count++] = (struct fanout_failure){raw, reason};
    return 0;
}

int fanout_decode_group(const struct fanout_source_group *g, struct fanout_decode_opts opts,
                        struct fanout_arena *a, struct fanout_decoded *out)
{
    memset(out, 0, sizeof *out);
    size_t cap = g->count ? g->count : 1, group_cap = cap;
    out->records = fanout_arena_alloc(a, cap * sizeof *out->records);
    if (!out->records)
        return -1;
    /* Kinesis and SNS records as they are: the raw record's own view */
    int as_is = !opts.append_newline && !opts.source_json;
    struct fanout_sbuf scratch = {0};
    struct fanout_arena nodes = {0}; /* of one DynamoDB image at a time */
    char err[512];
    int rc = 0;
    for (size_t i = 0; i < g->count && rc == 0; i++) {
        struct fanout_raw_record *raw = g->records[i];
        if (raw->error) {
            rc = s_failed(out, group_cap, a, raw, raw->error);
            continue;
        }
        if (raw->kind == FANOUT_SRC_KINESIS && opts.deaggregate &&
            fanout_kpl_has_magic(raw->data, raw->data_len)) {
            struct fanout_kpl_user *users;
            size_t n;
            if (fanout_kpl_decode(raw->data, raw->data_len, a, &users, &n, err,
                                  sizeof err) != 0) {
                char q[FANOUT_QUOTE_SIZE];
                const char *why = fanout_arena_sprintf(
                    a, "record %zu (sequence number %s): %s", raw->index,
                    fanout_quote(q, raw->sequence_number), err);
                rc = why ? s_failed(out, group_cap, a, raw, why) : -1;
                continue;
            }
            /* room for the expansion and the records after this one: the
             * pointer array grows by doubling (the arena keeps the old one
             * until reset, so copies stay few) */
            size_t need = out->count + n + (g->count - i - 1);
            if (need > cap) {
                size_t grown_cap = cap * 2 > need ? cap * 2 : need;
                struct fanout_rec **grown =
                    fanout_arena_alloc(a, grown_cap * sizeof *grown);
                if (!grown) {
                    rc = -1;
                    break;
                }
                memcpy(grown, out->records, out->count * sizeof *grown);
                out->records = grown;
                cap = grown_cap;
            }
            for (size_t u = 0; u < n; u++) {
                struct fanout_rec *r = s_rec(a, raw);
                if (!r) {
                    rc = -1;
                    break;
                }
                r->pub.key = users[u].key;
                r->pub.key_len = users[u].key_len;
                r->pub.data = users[u].data;
                r->pub.data_len = users[u].data_len;
                r->pub.explicit_hash_key = users[u].explicit_hash_key;
                r->pub.sub_sequence_number = u;
                r->pub.aggregated = 1;
                out->records[out->count++] = r;
            }
            continue;
        }
        if (as_is && raw->kind != FANOUT_SRC_DYNAMODB) {
            out->records[out->count++] = &raw->rec;
            continue;
        }
        struct fanout_rec *r = s_rec(a, raw);
        if (!r) {
            rc = -1;
            break;
        }
        if (raw->kind == FANOUT_SRC_DYNAMODB) {
            /* the NewImage (or NULL) from its text; the whole record from
             * its nodes, scanned again (the record's scan reset them) */
            const struct fanout_jnode *rec = NULL;
            if (raw->converted && opts.convert_ddb && !opts.whole_record) {
                r->pub.data = (const uint8_t *)raw->converted;
                r->pub.data_len = raw->converted_len;
                out->records[out->count++] = r;
                continue;
            }
            fanout_sbuf_reset(&scratch);
            fanout_arena_reset(&nodes);
            int wrc = !opts.whole_record
                          ? fanout_ddb_image_text((const char *)raw->data, raw->data_len,
                                                  opts.convert_ddb, &nodes, &scratch, err,
                                                  sizeof err)
                      : (rec = fanout_jscan_valid(raw->json, raw->json_len, &nodes, err,
                                                  sizeof err))
                          ? fanout_ddb_record_write(rec, opts.convert_ddb, &scratch, err,
                                                    sizeof err)
                          : -2;
            if (wrc == -2) {
                rc = -1;
                break;
            }
            if (wrc != 0) {
                char q[FANOUT_QUOTE_SIZE];
                const char *why = fanout_arena_sprintf(
                    a, "record %zu (sequence number %s): %s%s", raw->index,
                    fanout_quote(q, raw->sequence_number),
                    opts.whole_record ? "" : "field \"dynamodb.NewImage\": ", err);
                rc = why ? s_failed(out, group_cap, a, raw, why) : -1;
                continue;
            }
            r->pub.data = fanout_arena_memdup(
                a, scratch.bytes ? scratch.bytes : (uint8_t *)"", scratch.len);
            r->pub.data_len = scratch.len;
            if (!r->pub.data) {
                rc = -1;
                break;
            }
        }
        out->records[out->count++] = r;
    }
    fanout_sbuf_free(&scratch);
    fanout_arena_free(&nodes);
    /* "appendNewlines": each record's data (Kinesis, KPL user record,
     * DynamoDB image) gets a newline, before any collapse. A copy: the
     * decoded data may be shared with the other targets' variants. */
    for (size_t i = 0; rc == 0 && opts.append_newline && i < out->count; i++) {
        struct fanout_rec *r = out->records[i];
        uint8_t *d = fanout_arena_alloc(a, r->pub.data_len + 2); /* + NUL, as memdup */
        if (!d) {
            rc = -1;
            break;
        }
        if (r->pub.data_len)
            memcpy(d, r->pub.data, r->pub.data_len);
        d[r->pub.data_len] = '\n';
        d[r->pub.data_len + 1] = 0;
        r->pub.data = d;
        r->pub.data_len++;
    }
    /* The source record's JSON: its text in the event (as it was, when its
     * data was decoded there), shared by the user records of one KPL
     * aggregate. */
    for (size_t i = 0; rc == 0 && opts.source_json && i < out->count; i++) {
        struct fanout_rec *r = out->records[i];
        r->pub.source_json = fanout_raw_json_keep(r->raw, a);
        r->pub.source_json_len = r->raw->json_len;
        if (!r->pub.source_json)
            rc = -1;
    }
    return rc;
}
