/* Whole Lambda events (Kinesis, KPL-aggregated Kinesis, DynamoDB Streams,
 * SNS-wrapped) through the engine's parser and per-target decoder
 * (engine/core/event.c, and through it jscan.c, kpl.c, ddb.c). Checks, beyond
 * ASan and UBSan, that every record is accounted for: each record is in
 * exactly one source group; after decoding, each is either failed once
 * (with a reason) or delivered (an aggregate as its user records), never
 * both and never dropped; converted DynamoDB images are valid JSON; parsed
 * in place, the same records, and their JSON as it was; a DynamoDB
 * record's key (made as the scan met its Keys, maybe piece by piece with
 * the shape of Keys before) is what fanout_ddb_key_write makes of its
 * Keys scanned again. */
#include <stdlib.h>
#include <string.h>

#include "common/jscan.h"
#include "core/ddb.h"
#include "core/event.h"
#include "fuzz.h"
#include "core/kpl.h"
#include "common/util.h"

static struct fanout_arena s_arena;

static void s_check_decoded(const struct fanout_source_group *g,
                            const struct fanout_decoded *d, struct fanout_decode_opts o)
{
    /* per record of the group: times delivered, times failed */
    size_t *out = calloc(g->count + 1, sizeof *out);
    size_t *failed = calloc(g->count + 1, sizeof *failed);
    FUZZ_CHECK(out && failed, "out of memory");
    for (size_t i = 0; i < d->count; i++) {
        const struct fanout_rec *r = d->records[i];
        size_t k = 0;
        while (k < g->count && g->records[k] != r->raw)
            k++;
        FUZZ_CHECK(k < g->count, "decoded record %zu is not from this group", i);
        out[k]++;
        FUZZ_CHECK(r->pub.data || r->pub.data_len == 0, "record without data");
        FUZZ_CHECK(r->pub.key || r->pub.key_len == 0, "record without key");
        FUZZ_CHECK(!o.source_json || r->pub.source_json, "no source JSON");
        if (r->raw->kind == FANOUT_SRC_DYNAMODB)
            FUZZ_CHECK(fanout_json_valid(r->pub.data, r->pub.data_len),
                       "DynamoDB image (convert %d) is not valid JSON: %.*s", o.convert_ddb,
                       (int)(r->pub.data_len > 300 ? 300 : r->pub.data_len),
                       (const char *)r->pub.data);
        if (!r->pub.aggregated)
            FUZZ_CHECK(out[k] == 1, "record %zu delivered twice", k);
    }
    for (size_t i = 0; i < d->failed_count; i++) {
        size_t k = 0;
        while (k < g->count && g->records[k] != d->failures[i].raw)
            k++;
        FUZZ_CHECK(k < g->count, "failure %zu is not from this group", i);
        FUZZ_CHECK(d->failures[i].reason && d->failures[i].reason[0],
                   "failure without reason");
        failed[k]++;
    }
    for (size_t k = 0; k < g->count; k++) {
        const struct fanout_raw_record *raw = g->records[k];
        FUZZ_CHECK(failed[k] <= 1, "record %zu failed twice", k);
        FUZZ_CHECK(!(failed[k] && out[k]), "record %zu both failed and delivered", k);
        if (raw->error)
            FUZZ_CHECK(failed[k] == 1, "record %zu has an error but was not failed", k);
        /* only an aggregate with no user records may yield nothing */
        if (!failed[k] && !out[k])
            FUZZ_CHECK(raw->kind == FANOUT_SRC_KINESIS && o.deaggregate &&
                           fanout_kpl_has_magic(raw->data, raw->data_len),
                       "record %zu neither delivered nor failed", k);
    }
    free(out);
    free(failed);
}

/* Each DynamoDB record read without error: its key as fanout_ddb_key_write
 * writes it from its Keys, the record's JSON scanned again. */
static void s_keys_alike(const struct fanout_event *ev)
{
    static struct fanout_arena nodes;
    struct fanout_sbuf key = {0};
    for (size_t i = 0; i < ev->count; i++) {
        const struct fanout_raw_record *r = &ev->records[i];
        if (r->kind != FANOUT_SRC_DYNAMODB || r->error)
            continue;
        char err[512];
        const struct fanout_jnode *rec =
            fanout_jscan(r->json, r->json_len, &nodes, err, sizeof err);
        FUZZ_CHECK(rec, "record %zu: its JSON not valid: %s", i, err);
        const struct fanout_jnode *keys = fanout_jget(fanout_jget(rec, "dynamodb"), "Keys");
        fanout_sbuf_reset(&key);
        FUZZ_CHECK(fanout_ddb_key_write(keys, &key, err, sizeof err) == 0,
                   "record %zu: a key made of Keys fanout_ddb_key_write refuses: %s", i,
                   err);
        FUZZ_CHECK(key.len == r->key_len && (!key.len || !memcmp(key.p, r->key, key.len)),
                   "record %zu: key \"%.*s\", not \"%s\"", i, (int)r->key_len,
                   (const char *)r->key, (const char *)key.p);
        fanout_arena_reset(&nodes);
    }
    fanout_sbuf_free(&key);
}

/* The event parsed again with its NewImages converted as scanned
 * (fanout_event_parse_opts): the same records, errors and decoded data. */
static void s_converted_alike(const char *data, size_t size, const struct fanout_event *ev)
{
    struct fanout_event cv;
    char err[512];
    FUZZ_CHECK(fanout_event_parse_opts(data, size, 1, &s_arena, &cv, err, sizeof err) == 0,
               "refused when converting: %s", err);
    FUZZ_CHECK(cv.count == ev->count && cv.group_count == ev->group_count,
               "other records when converting");
    s_keys_alike(ev);
    s_keys_alike(&cv);
    for (size_t i = 0; i < ev->count; i++) {
        const struct fanout_raw_record *a = &ev->records[i], *b = &cv.records[i];
        FUZZ_CHECK(strcmp(a->error ? a->error : "", b->error ? b->error : "") == 0,
                   "record %zu: other error when converting", i);
        FUZZ_CHECK(a->key_len == b->key_len &&
                       (!a->key_len || !memcmp(a->key, b->key, a->key_len)),
                   "record %zu: other key when converting", i);
    }
    static const struct fanout_decode_opts s_cv_opts[] = {{0, 1, 0, 0, 0}, {0, 1, 0, 1, 0}};
    for (size_t g = 0; g < ev->group_count; g++)
        for (size_t o = 0; o < sizeof s_cv_opts / sizeof s_cv_opts[0]; o++) {
            struct fanout_decoded d[2];
            FUZZ_CHECK(
                fanout_decode_group(&ev->groups[g], s_cv_opts[o], &s_arena, &d[0]) == 0 &&
                    fanout_decode_group(&cv.groups[g], s_cv_opts[o], &s_arena, &d[1]) == 0,
                "decoding failed as a whole");
            FUZZ_CHECK(d[0].count == d[1].count && d[0].failed_count == d[1].failed_count,
                       "other decoded records when converting");
            for (size_t i = 0; i < d[0].failed_count; i++)
                FUZZ_CHECK(!strcmp(d[0].failures[i].reason, d[1].failures[i].reason),
                           "other failure when converting");
            for (size_t i = 0; i < d[0].count; i++)
                FUZZ_CHECK(d[0].records[i]->pub.data_len == d[1].records[i]->pub.data_len &&
                               !memcmp(d[0].records[i]->pub.data, d[1].records[i]->pub.data,
                                       d[0].records[i]->pub.data_len),
                           "other data when converting");
        }
    fanout_event_clean_up(&cv);
}

/* The event parsed again from a copy it may change
 * (fanout_event_parse_in_place): the same records, errors, keys, data and
 * sequence numbers, and each record's JSON as the event had it
 * (fanout_raw_json). */
static void s_in_place_alike(const char *data, size_t size, const struct fanout_event *ev)
{
    char *copy = malloc(size + 1);
    FUZZ_CHECK(copy, "out of memory");
    memcpy(copy, data, size);
    copy[size] = 0;
    struct fanout_event ip;
    char err[512];
    FUZZ_CHECK(fanout_event_parse_in_place(copy, size, 0, &s_arena, &ip, err, sizeof err) ==
                   0,
               "refused in place: %s", err);
    FUZZ_CHECK(ip.count == ev->count && ip.group_count == ev->group_count,
               "other records in place");
    for (size_t i = 0; i < ev->count; i++) {
        const struct fanout_raw_record *a = &ev->records[i], *b = &ip.records[i];
        FUZZ_CHECK(strcmp(a->error ? a->error : "", b->error ? b->error : "") == 0,
                   "record %zu: other error in place", i);
        FUZZ_CHECK(a->key_len == b->key_len &&
                       (!a->key_len || !memcmp(a->key, b->key, a->key_len)),
                   "record %zu: other key in place", i);
        FUZZ_CHECK(a->data_len == b->data_len &&
                       (!a->data_len || !memcmp(a->data, b->data, a->data_len)),
                   "record %zu: other data in place", i);
        FUZZ_CHECK(strcmp(a->sequence_number ? a->sequence_number : "",
                          b->sequence_number ? b->sequence_number : "") == 0,
                   "record %zu: other sequence number in place", i);
        size_t len;
        const char *json = fanout_raw_json(b, &s_arena, &len);
        FUZZ_CHECK(json && len == a->json_len && !memcmp(json, a->json, len),
                   "record %zu: its JSON not as it was", i);
    }
    fanout_event_clean_up(&ip);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    struct fanout_event ev;
    char err[512];
    if (fanout_event_parse((const char *)data, size, &s_arena, &ev, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0], "event refused without a reason");
        char err1[512];
        FUZZ_CHECK(fanout_event_parse_opts((const char *)data, size, 1, &s_arena, &ev, err1,
                                           sizeof err1) != 0 &&
                       strcmp(err, err1) == 0,
                   "converting the images: another answer than \"%s\"", err);
        fanout_arena_reset(&s_arena);
        return 0;
    }
    size_t grouped = 0;
    for (size_t g = 0; g < ev.group_count; g++) {
        const struct fanout_source_group *grp = &ev.groups[g];
        grouped += grp->count;
        for (size_t i = 0; i < grp->count; i++) {
            const struct fanout_raw_record *r = grp->records[i];
            FUZZ_CHECK(r >= ev.records && r < ev.records + ev.count, "foreign record");
            FUZZ_CHECK(strcmp(r->source_arn ? r->source_arn : "", grp->source_arn) == 0,
                       "record in another source's group");
            FUZZ_CHECK(r->error || (r->source_arn && r->sequence_number),
                       "usable record without source or sequence number");
        }
    }
    FUZZ_CHECK(grouped == ev.count, "%zu records, %zu grouped", ev.count, grouped);
    static const struct fanout_decode_opts s_opts[] = {
        {1, 1, 1}, {0, 0, 0}, {1, 0, 0}, {0, 1, 1}};
    for (size_t g = 0; g < ev.group_count; g++)
        for (size_t o = 0; o < sizeof s_opts / sizeof s_opts[0]; o++) {
            struct fanout_decoded d;
            FUZZ_CHECK(fanout_decode_group(&ev.groups[g], s_opts[o], &s_arena, &d) == 0,
                       "decoding failed as a whole");
            s_check_decoded(&ev.groups[g], &d, s_opts[o]);
        }
    s_converted_alike((const char *)data, size, &ev);
    s_in_place_alike((const char *)data, size, &ev);
    fanout_event_clean_up(&ev);
    fanout_arena_reset(&s_arena);
    return 0;
}
