/* Cutting a target's records into messages (collapse) and calls (limits). */
#ifndef FANOUT_BATCH_H
#define FANOUT_BATCH_H

#include <fanout/plugin.h>

#include "core/event.h"
#include "common/util.h"

/* One `send` call's worth of messages. */
struct fanout_call {
    size_t count;
    struct fanout_message **messages;
};

/* A record that cannot be sent to this target, and why (with its size and
 * the limit it exceeds). */
struct fanout_rejection {
    struct fanout_rec *rec;
    const char *reason;
};

struct fanout_plan {
    size_t call_count;
    struct fanout_call *calls;
    size_t message_count;
    size_t rejected_count;
    struct fanout_rejection *rejected;
};

/* The size a message counts for against the limits. */
size_t fanout_message_size(const struct fanout_message *m, const struct fanout_limits *lim);

/* Build the plan for `recs` (in order) under `mode` and `lim`. Messages and
 * their bodies come from `arena`. Every record ends up in exactly one
 * message or in `rejected`. Returns -1 only when out of memory. */
int fanout_plan_build(struct fanout_rec *const *recs, size_t n, enum fanout_collapse mode,
                      const struct fanout_limits *lim, struct fanout_arena *arena,
                      struct fanout_plan *out);

/* The messages of a plan of collapse `none` in which no record was
 * rejected: one per record, the same for every target (the record's key
 * and data), so the targets that take the same record array whole share
 * them (at 10,000 records, 640 KB per target more: a message, its place in
 * the list and its record slot). Zeroed before the first target. */
struct fanout_plan_share {
    struct fanout_rec *const *recs; /* the record array they were made of */
    size_t count;
    struct fanout_message **messages; /* count of them, or NULL: none yet */
};

/* fanout_plan_build; with collapse `none` and `share` (made of the same
 * `recs`), a target under whose limits every record fits takes the shared
 * messages, and the first plan without a rejection fills `share`. */
int fanout_plan_build_shared(struct fanout_rec *const *recs, size_t n,
                             enum fanout_collapse mode, const struct fanout_limits *lim,
                             struct fanout_arena *arena, struct fanout_plan_share *share,
                             struct fanout_plan *out);

#endif
