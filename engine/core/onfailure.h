/* On-failure destinations ("onFailure" in a mapping): the records a target
 * could not deliver, kept during dispatch, and the JSON document each one
 * becomes for the second round (engine.c sends it, through the on-failure
 * destination's own plugin instance). */
#ifndef FANOUT_ONFAILURE_H
#define FANOUT_ONFAILURE_H

#include <pthread.h>

#include <jansson.h>

#include "core/engine.h"
#include "core/event.h"
#include "common/util.h"

/* What one document says. Strings may be NULL (written as null). */
struct fanout_onfailure_doc {
    const char *reason;
    const char *target_id;
    const char *target_type;
    const char *destination; /* the failing target's */
    const char *source_arn;
    const char *sequence_number;
    int aggregated; /* a KPL user record: subSequenceNumber is a number */
    uint64_t sub_sequence_number;
    unsigned attempts; /* 0: never sent (refused before a call) */
    int64_t failed_ms; /* Unix epoch ms */
    const uint8_t *key;
    size_t key_len;
    const uint8_t *data;
    size_t data_len;
};

/* Append the document: {"reason", "targetId", "targetType", "destination",
 * "sourceArn", "sequenceNumber", "subSequenceNumber" (null unless KPL),
 * "attempts", "timestamp" (ISO 8601 UTC, ms), "partitionKey", then "data"
 * as a string when the data is UTF-8, else "dataEncoding": "base64" and
 * its base64}. Returns -1 when out of memory. */
int fanout_onfailure_document(const struct fanout_onfailure_doc *d,
                              struct fanout_sbuf *out);

/* One record kept for the on-failure destination. */
struct fanout_onfailure_entry {
    const struct fanout_raw_record *raw;
    struct fanout_record rec; /* the decoded record, or one made from raw */
    char *reason;             /* why the target did not take it */
    unsigned attempts;
    int64_t failed_ms;
    int refused;  /* the on-failure destination did not take it either */
    char *second; /* why (NULL when out of memory) */
};

/* The state of one target with an on-failure destination, per invocation. */
struct fanout_onfailure {
    json_t *mapping; /* the on-failure mapping's JSON (a reference) */
    pthread_mutex_t lock;
    size_t count, cap;
    struct fanout_onfailure_entry *entries;
    /* the second round's records: docs[i] carries entries[i]'s document */
    struct fanout_rec *docs;
    struct fanout_rec **doc_ptrs;
    /* the second round's calls and retries (not a target of the result) */
    struct fanout_target_summary sum;
};

/* NULL when out of memory. Takes a reference to `mapping`. */
struct fanout_onfailure *fanout_onfailure_new(json_t *mapping);
void fanout_onfailure_free(struct fanout_onfailure *of);

/* Keep a record (thread-safe). `r` may be NULL when the record was not
 * decoded for the target: its key and data then come from `raw`. Returns
 * -1 when out of memory (the caller fails the record as before). */
int fanout_onfailure_keep(struct fanout_onfailure *of, const struct fanout_record *r,
                          const struct fanout_raw_record *raw, const char *reason,
                          unsigned attempts, int64_t now_ms);

/* Build docs[] from the entries, in `arena`, for the failing target
 * `target`. Returns -1 when out of memory. */
int fanout_onfailure_build(struct fanout_onfailure *of,
                           const struct fanout_target_summary *target,
                           struct fanout_arena *arena);

/* The on-failure destination did not take the document of `r` (one of
 * docs[]). Thread-safe; the first reason is kept. */
void fanout_onfailure_refused(struct fanout_onfailure *of, const struct fanout_record *r,
                              const char *reason);

#endif
