/* Adaptive concurrency of a parallel target (conc.h). */
#include "conc.h"

void fanout_conc_init(struct fanout_conc *c, unsigned cap)
{
    c->cap = cap ? cap : 1;
    c->limit = c->cap < FANOUT_CONC_START ? c->cap : FANOUT_CONC_START;
    c->cut = 0;
    c->min_us = 0;
    c->smooth_us = 0;
}

void fanout_conc_sample(struct fanout_conc *c, int64_t rtt_us, unsigned in_flight,
                        size_t call, size_t started)
{
    if (rtt_us < 1)
        rtt_us = 1;
    if (!c->min_us || rtt_us < c->min_us)
        c->min_us = rtt_us;
    c->smooth_us = c->smooth_us ? (3 * c->smooth_us + rtt_us) / 4 : rtt_us;
    int64_t base = c->min_us, fast = base + base / 2 + FANOUT_CONC_SLACK_US;
    if (rtt_us <= fast && c->smooth_us <= fast) {
        if (in_flight >= c->limit && c->limit < c->cap)
            c->limit++;
    } else if (c->smooth_us > 2 * base + base / 2 + FANOUT_CONC_SLACK_US && c->limit > 1 &&
               call >= c->cut) {
        c->limit--;
        c->cut = started;
    }
}

void fanout_conc_throttled(struct fanout_conc *c, size_t call, size_t started)
{
    if (c->limit > 1 && call >= c->cut) {
        c->limit = (c->limit + 1) / 2;
        c->cut = started;
    }
}
