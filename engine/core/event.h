/* Lambda events in: Kinesis, DynamoDB Streams and SNS-wrapped records,
 * grouped by source, then decoded per target (KPL, DynamoDB conversion). */
#ifndef FANOUT_EVENT_H
#define FANOUT_EVENT_H

#include <fanout/plugin.h>
#include <jansson.h>

#include "common/util.h"

enum fanout_source_kind {
    FANOUT_SRC_KINESIS = 1,
    FANOUT_SRC_DYNAMODB = 2,
    FANOUT_SRC_SNS = 3,
};

struct fanout_raw_record;

/* A decoded record: the plugin-facing view first, then bookkeeping. */
struct fanout_rec {
    struct fanout_record pub;
    const struct fanout_raw_record *raw;
};

/* One record as received, with what every target shares already done
 * (base64 decoding, DynamoDB key). */
struct fanout_raw_record {
    /* The record as a target that changes nothing in it gets it (a Kinesis
     * or SNS record: no KPL user records, no "appendNewlines", no source
     * JSON), shared by all such targets: rec.pub.key is `key` and so on,
     * rec.raw this record (set when the event is parsed in full). */
    union {
        struct fanout_rec rec;
        struct {                /* rec.pub's members by their names (checked in event.c) */
            const uint8_t *key; /* key_len bytes; Kinesis: maybe in the event's
                                   text, not NUL-terminated */
            size_t key_len;
            /* Kinesis and SNS: the payload. DynamoDB: the NewImage's text
             * (not NUL-terminated), or NULL: encoded per target. */
            const uint8_t *data;
            size_t data_len;
            const char *sequence_number;
            uint64_t sub_sequence_number_;  /* 0 */
            int aggregated_;                /* 0 */
            const char *explicit_hash_key_; /* NULL */
            const char *action;
            const char *source_arn;
            const char *region;
        };
    };
    size_t index; /* position in the event's Records (SNS-wrapped: the
                     wrapper's position) */
    enum fanout_source_kind kind;
    /* the record's JSON in the event's text (json_len bytes, not
     * NUL-terminated); a Kinesis record's data decoded there
     * (fanout_event_parse_in_place) changed it: read by fanout_raw_json */
    const char *json;
    size_t json_len;
    /* Non-NULL when the record cannot be decoded: what is wrong. Such a
     * record fails on every target it would have gone to. */
    const char *error;
    /* When the stream got it (Unix epoch ms), 0 when unknown: Kinesis'
     * approximateArrivalTimestamp, DynamoDB's ApproximateCreationDateTime
     * (both seconds, maybe with a fraction). */
    int64_t arrival_ms;
    /* DynamoDB: the NewImage as plain JSON ("convertDDB"), converted while
     * the event was scanned (fanout_event_parse_opts), NUL-terminated; NULL
     * when not (converted per target then) */
    const char *converted;
    size_t converted_len;
};

struct fanout_source_group {
    const char *source_arn;
    size_t count;
    struct fanout_raw_record **records;
    int64_t oldest_arrival_ms; /* of its records; 0 when none is known */
};

struct fanout_jnode;

struct fanout_event {
    size_t count;
    struct fanout_raw_record *records;
    size_t group_count;
    struct fanout_source_group *groups;
    int64_t oldest_arrival_ms; /* of every record; 0 when none is known */
    /* Some record is an SNS message (or was unwrapped from one): SNS
     * invokes asynchronously, so no answer can name failed records. */
    int from_sns;
};

/* Parse a Lambda event. Returns 0, or -1 with err when the event as a whole
 * is unusable (not JSON, no "Records" array). Per-record problems (missing
 * fields, bad base64, unknown source) leave `error` set on that record and
 * the rest go on. Strings and buffers come from `arena`. `json` must outlive
 * the event and what is decoded from it: records point into it (their
 * source JSON, DynamoDB images). */
int fanout_event_parse(const char *json, size_t len, struct fanout_arena *arena,
                       struct fanout_event *ev, char *err, size_t err_len);
/* fanout_event_parse; with `convert_images` (some target converts DynamoDB
 * images), a NewImage of DynamoDB's common shape is converted to plain JSON
 * in the pass that validates it (raw->converted), not validated then
 * converted per target. The event's records and errors are the same. */
int fanout_event_parse_opts(const char *json, size_t len, int convert_images,
                            struct fanout_arena *arena, struct fanout_event *ev, char *err,
                            size_t err_len);
/* fanout_event_parse_opts on a text it may change: a Kinesis record's data
 * is decoded where its base64 was (the bytes are fewer), and its sequence
 * number NUL-terminated over its closing quote, not copied. Its JSON as it
 * was is then fanout_raw_json's. A record whose base64 is bad keeps its
 * base64 as it was. */
int fanout_event_parse_in_place(char *json, size_t len, int convert_images,
                                struct fanout_arena *arena, struct fanout_event *ev,
                                char *err, size_t err_len);
void fanout_event_clean_up(struct fanout_event *ev);

/* The record's JSON as the event had it (`*len` bytes, json_len): `raw->json`,
 * or, when its data or sequence number were made in place, that text with
 * the base64 encoded back and the quote put back, in `a` (NUL-terminated).
 * NULL when out of memory. */
const char *fanout_raw_json(const struct fanout_raw_record *raw, struct fanout_arena *a,
                            size_t *len);
/* fanout_raw_json, kept: `raw->json` is the text from then on, so every
 * reader gets the same pointer (the user records of one KPL aggregate) and
 * it is made once. Changes the record: only where the engine's records are
 * read by one thread (decoding, filters, the on-failure round). */
const char *fanout_raw_json_keep(const struct fanout_raw_record *raw,
                                 struct fanout_arena *a);

/* ---- per-target decoding ---- */

struct fanout_decode_opts {
    int deaggregate;
    int convert_ddb;
    int source_json;    /* fill fanout_record.source_json */
    int append_newline; /* "appendNewlines": a '\n' after each record's data */
    int whole_record;   /* "wholeRecord": a DynamoDB record's data is the record */
};

/* A record that could not be decoded for a target. */
struct fanout_failure {
    const struct fanout_raw_record *raw;
    const char *reason;
};

struct fanout_decoded {
    size_t count;
    struct fanout_rec **records;
    size_t failed_count;
    struct fanout_failure *failures;
};

/* Decode a group's records as a target asks. Records that fail (bad KPL
 * digest, bad DynamoDB image...) are listed in failures with why; the others
 * go on. Returns -1 only when out of memory. */
int fanout_decode_group(const struct fanout_source_group *g, struct fanout_decode_opts opts,
                        struct fanout_arena *arena, struct fanout_decoded *out);

#endif
