/* A record's JSON as the event had it, when its data was decoded in place
 * and its sequence number NUL-terminated there (fanout_event_parse_in_place):
 * apart from event.c, for the readers that link no decoding (filters). */
#include <string.h>

#include "core/event.h"

/* Whether `p` is in `raw`'s JSON (a Kinesis record's data or sequence
 * number made where it was in a text that may be changed). */
static int s_in_json(const struct fanout_raw_record *raw, const void *p)
{
    const char *c = p;
    return raw->kind == FANOUT_SRC_KINESIS && raw->json && c && c >= raw->json &&
           c < raw->json + raw->json_len;
}

const char *fanout_raw_json(const struct fanout_raw_record *raw, struct fanout_arena *a,
                            size_t *len)
{
    *len = raw->json_len;
    int data = raw->data_len && s_in_json(raw, raw->data);
    int seq = s_in_json(raw, raw->sequence_number);
    if (!data && !seq)
        return raw->json;
    char *copy = fanout_arena_bytes(a, raw->json_len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, raw->json, raw->json_len);
    copy[raw->json_len] = 0;
    if (data) {
        /* strict base64 has one text per byte string, the data's: encoded
         * back over a copy of it where it was */
        size_t at = (size_t)((const char *)raw->data - raw->json);
        memcpy(copy + at, raw->data, raw->data_len);
        fanout_base64_encode_back(copy + at, raw->data_len);
    }
    if (seq) /* NUL-terminated over its closing quote */
        copy[raw->sequence_number - raw->json + strlen(raw->sequence_number)] = '"';
    return copy;
}

const char *fanout_raw_json_keep(const struct fanout_raw_record *raw,
                                 struct fanout_arena *a)
{
    size_t len;
    const char *json = fanout_raw_json(raw, a, &len);
    if (json)
        ((struct fanout_raw_record *)raw)->json = json; /* the event's own record */
    return json;
}
