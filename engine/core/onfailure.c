#include "core/onfailure.h"

#include "common/jscan.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int s_str_or_null(struct fanout_sbuf *b, const char *s)
{
    if (!s)
        return fanout_sbuf_puts(b, "null");
    return fanout_sbuf_json_str(b, s, strlen(s));
}

int fanout_onfailure_document(const struct fanout_onfailure_doc *d, struct fanout_sbuf *out)
{
    time_t secs = (time_t)(d->failed_ms / 1000);
    struct tm tm;
    char when[80] = "";
    if (gmtime_r(&secs, &tm))
        snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, (int)(d->failed_ms % 1000));
    int rc = fanout_sbuf_puts(out, "{\"reason\":");
    rc |= s_str_or_null(out, d->reason);
    rc |= fanout_sbuf_puts(out, ",\"targetId\":");
    rc |= s_str_or_null(out, d->target_id);
    rc |= fanout_sbuf_puts(out, ",\"targetType\":");
    rc |= s_str_or_null(out, d->target_type);
    rc |= fanout_sbuf_puts(out, ",\"destination\":");
    rc |= s_str_or_null(out, d->destination);
    rc |= fanout_sbuf_puts(out, ",\"sourceArn\":");
    rc |= s_str_or_null(out, d->source_arn);
    rc |= fanout_sbuf_puts(out, ",\"sequenceNumber\":");
    rc |= s_str_or_null(out, d->sequence_number);
    if (d->aggregated)
        rc |= fanout_sbuf_printf(out, ",\"subSequenceNumber\":%" PRIu64,
                                 d->sub_sequence_number);
    else
        rc |= fanout_sbuf_puts(out, ",\"subSequenceNumber\":null");
    rc |= fanout_sbuf_printf(out, ",\"attempts\":%u,\"timestamp\":", d->attempts);
    rc |= s_str_or_null(out, when[0] ? when : NULL);
    rc |= fanout_sbuf_puts(out, ",\"partitionKey\":");
    rc |= fanout_sbuf_json_str(out, d->key ? d->key : (const uint8_t *)"", d->key_len);
    const uint8_t *data = d->data ? d->data : (const uint8_t *)"";
    if (fanout_utf8_check(data, d->data_len)) {
        rc |= fanout_sbuf_puts(out, ",\"data\":");
        rc |= fanout_sbuf_json_str(out, data, d->data_len);
    } else {
        rc |= fanout_sbuf_puts(out, ",\"dataEncoding\":\"base64\",\"data\":\"");
        rc |= fanout_sbuf_base64(out, data, d->data_len);
        rc |= fanout_sbuf_putc(out, '"');
    }
    rc |= fanout_sbuf_putc(out, '}');
    return rc ? -1 : 0;
}

struct fanout_onfailure *fanout_onfailure_new(json_t *mapping)
{
    struct fanout_onfailure *of = calloc(1, sizeof *of);
    if (!of)
        return NULL;
    of->mapping = json_incref(mapping);
    pthread_mutex_init(&of->lock, NULL);
    return of;
}

void fanout_onfailure_free(struct fanout_onfailure *of)
{
    if (!of)
        return;
    for (size_t i = 0; i < of->count; i++) {
        free(of->entries[i].reason);
        free(of->entries[i].second);
    }
    free(of->entries);
    pthread_mutex_destroy(&of->lock);
    json_decref(of->mapping);
    free(of);
}

int fanout_onfailure_keep(struct fanout_onfailure *of, const struct fanout_record *r,
                          const struct fanout_raw_record *raw, const char *reason,
                          unsigned attempts, int64_t now_ms)
{
    struct fanout_onfailure_entry e = {
        .raw = raw, .attempts = attempts, .failed_ms = now_ms};
    if (r) {
        e.rec = *r;
    } else {
        /* not decoded for this target: the record as received */
        e.rec.key = raw->key;
        e.rec.key_len = raw->key_len;
        e.rec.data = raw->data; /* DynamoDB: the NewImage's text */
        e.rec.data_len = raw->data_len;
        e.rec.sequence_number = raw->sequence_number;
        e.rec.action = raw->action;
        e.rec.source_arn = raw->source_arn;
        e.rec.region = raw->region;
    }
    if (!(e.reason = strdup(reason ? reason : "")))
        return -1;
    int rc = 0;
    pthread_mutex_lock(&of->lock);
    if (of->count == of->cap) {
        size_t cap = of->cap ? of->cap * 2 : 16;
        void *p = realloc(of->entries, cap * sizeof *of->entries);
        if (p) {
            of->entries = p;
            of->cap = cap;
        }
    }
    if (of->count < of->cap)
        of->entries[of->count++] = e;
    else
        rc = -1;
    pthread_mutex_unlock(&of->lock);
    if (rc)
        free(e.reason);
    return rc;
}

int fanout_onfailure_build(struct fanout_onfailure *of,
                           const struct fanout_target_summary *target,
                           struct fanout_arena *arena)
{
    size_t n = of->count;
    of->docs = fanout_arena_calloc(arena, (n ? n : 1) * sizeof *of->docs);
    of->doc_ptrs = fanout_arena_calloc(arena, (n ? n : 1) * sizeof *of->doc_ptrs);
    if (!of->docs || !of->doc_ptrs)
        return -1;
    struct fanout_sbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        const struct fanout_onfailure_entry *e = &of->entries[i];
        const struct fanout_onfailure_doc d = {
            .reason = e->reason,
            .target_id = target->id,
            .target_type = target->type,
            .destination = target->destination,
            .source_arn = e->raw->source_arn,
            .sequence_number = e->raw->sequence_number,
            .aggregated = e->rec.aggregated,
            .sub_sequence_number = e->rec.sub_sequence_number,
            .attempts = e->attempts,
            .failed_ms = e->failed_ms,
            .key = e->rec.key,
            .key_len = e->rec.key_len,
            .data = e->rec.data,
            .data_len = e->rec.data_len,
        };
        fanout_sbuf_reset(&b);
        uint8_t *body = NULL;
        if (fanout_onfailure_document(&d, &b) == 0)
            body = fanout_arena_memdup(arena, b.bytes, b.len);
        if (!body) {
            fanout_sbuf_free(&b);
            return -1;
        }
        struct fanout_rec *doc = &of->docs[i];
        doc->pub = e->rec;
        doc->pub.data = body;
        doc->pub.data_len = b.len;
        /* the text as the event had it (its data maybe decoded in place) */
        doc->pub.source_json = e->raw->json ? fanout_raw_json_keep(e->raw, arena) : NULL;
        doc->pub.source_json_len = doc->pub.source_json ? e->raw->json_len : 0;
        if (e->raw->json && !doc->pub.source_json) {
            fanout_sbuf_free(&b);
            return -1;
        }
        doc->raw = e->raw;
        of->doc_ptrs[i] = doc;
    }
    fanout_sbuf_free(&b);
    return 0;
}

void fanout_onfailure_refused(struct fanout_onfailure *of, const struct fanout_record *r,
                              const char *reason)
{
    size_t i = (size_t)((const struct fanout_rec *)(const void *)r - of->docs);
    if (i >= of->count)
        return;
    char *s = strdup(reason ? reason : "");
    pthread_mutex_lock(&of->lock);
    if (!of->entries[i].refused) {
        of->entries[i].refused = 1;
        of->entries[i].second = s;
        s = NULL;
    }
    pthread_mutex_unlock(&of->lock);
    free(s);
}
