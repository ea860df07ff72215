/* How many calls of one parallel target are in flight at once: a limit
 * between 1 and a cap (FANOUT_MAX_PARALLEL), set from the answer times of
 * the target's own calls, as TCP Vegas sets its window.
 *
 * A destination that answers as fast with more calls in flight (AWS's
 * services, which scale out) soon gets the cap; one whose answers slow
 * down as calls are added is queueing them (a single-threaded server, a
 * throttled or overloaded one, or this process short of CPU, as a Lambda
 * function at 128 MB is) and gets fewer: the calls then wait here instead
 * of there, and the threads, connections and buffers they would hold are
 * not used. Every target keeps its own limit, so a slow destination does
 * not take the threads the others need.
 *
 * Not thread-safe: the engine calls it under its run's lock. */
#ifndef FANOUT_CORE_CONC_H
#define FANOUT_CORE_CONC_H

#include <stddef.h>
#include <stdint.h>

/* Calls start at this many in flight (or the cap, when lower). */
#define FANOUT_CONC_START 2
/* Answer-time slack, so that sub-millisecond calls (loopback, a cache)
 * are not judged by their scheduling noise. */
#define FANOUT_CONC_SLACK_US 500

struct fanout_conc {
    unsigned limit;
    unsigned cap;
    size_t cut;        /* calls started when the limit was last lowered */
    int64_t min_us;    /* the fastest answer seen; 0: none yet */
    int64_t smooth_us; /* answer times smoothed, a quarter per sample */
};

void fanout_conc_init(struct fanout_conc *c, unsigned cap);

/* One call's answer time, rtt_us, with in_flight of the target's calls in
 * flight as it ended (itself included); `call` is its place in the order
 * the target's calls started (0 first), `started` how many have started
 * by now. Only calls that say something of the destination's pace count:
 * sent once, answered for every message, and of a usual size for the
 * target (the engine leaves out retried, failed and small calls). Then:
 * - this time and the smoothed one within 1.5 x the fastest (+ slack),
 *   and the limit was reached: one more call may be in flight (so it
 *   doubles per round of answers, up to the cap);
 * - smoothed time over 2.5 x the fastest (+ slack): one fewer, down to 1,
 *   unless the call had started before the limit was last lowered (its
 *   time is the old limit's doing: once per round, as TCP cuts its
 *   window once per window of data);
 * - in between: kept. */
void fanout_conc_sample(struct fanout_conc *c, int64_t rtt_us, unsigned in_flight,
                        size_t call, size_t started);

/* A call some of whose messages the destination throttled: half as many in
 * flight (at least 1), unless the call had started before the limit was
 * last lowered. */
void fanout_conc_throttled(struct fanout_conc *c, size_t call, size_t started);

#endif
