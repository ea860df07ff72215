/* The adaptive concurrency of a parallel target (core/conc.h), fed the
 * answers of simulated destinations: one that answers as fast however
 * many calls are in flight (AWS's services), one that serves one call at
 * a time (each call waits for those ahead of it), and a throttling one. */
#include <check.h>

#include "check_main.h"

#include "core/conc.h"

/* Calls always waiting, as the engine keeps them: the answers come oldest
 * first, and after each one calls start until the limit is reached. */
struct s_sim {
    struct fanout_conc c;
    size_t sent, done;
    unsigned queued[4096]; /* calls in flight when call i started (itself included) */
    unsigned peak;
};

static void s_start(struct s_sim *s)
{
    while (s->sent - s->done < s->c.limit) {
        s->queued[s->sent % 4096] = (unsigned)(s->sent - s->done + 1);
        s->sent++;
    }
    if (s->c.limit > s->peak)
        s->peak = s->c.limit;
}

static void s_init(struct s_sim *s, unsigned cap)
{
    memset(s, 0, sizeof *s);
    fanout_conc_init(&s->c, cap);
    s_start(s);
}

/* `n` answers; rtt_us(queued) is a call's answer time from the calls in
 * flight when it started; `throttled`: the destination throttled them. */
static void s_answers(struct s_sim *s, unsigned n, int64_t (*rtt_us)(unsigned),
                      int throttled)
{
    for (unsigned i = 0; i < n; i++) {
        unsigned in_flight = (unsigned)(s->sent - s->done);
        size_t call = s->done++;
        if (throttled)
            fanout_conc_throttled(&s->c, call, s->sent);
        else
            fanout_conc_sample(&s->c, rtt_us(s->queued[call % 4096]), in_flight, call,
                               s->sent);
        s_start(s);
    }
}

static int64_t s_flat(unsigned queued)
{
    (void)queued;
    return 30000; /* 30 ms, whatever the load */
}

static int64_t s_serial(unsigned queued)
{
    return 5000 * (int64_t)queued; /* 5 ms per call, one at a time */
}

static int64_t s_slower(unsigned queued)
{
    (void)queued;
    static int64_t t = 10000;
    return t += 10000; /* every answer slower than the last */
}

START_TEST(flat_destination_gets_the_cap)
{
    static struct s_sim s;
    s_init(&s, 16);
    ck_assert_uint_eq(s.c.limit, FANOUT_CONC_START);
    /* one more per answer while the limit is reached: 2, 4, 8, 16 */
    s_answers(&s, 2 + 4 + 8, s_flat, 0);
    ck_assert_uint_eq(s.c.limit, 16);
    s_answers(&s, 1000, s_flat, 0);
    ck_assert_uint_eq(s.c.limit, 16);
}
END_TEST

START_TEST(serial_destination_stays_low)
{
    static struct s_sim s;
    s_init(&s, 16);
    s_answers(&s, 1000, s_serial, 0);
    ck_assert_uint_le(s.peak, 3);
    ck_assert_uint_ge(s.c.limit, 1);
    ck_assert_uint_le(s.c.limit, 2);
}
END_TEST

/* Steps of answers, each followed by the limit it must leave. */
struct s_step {
    unsigned answers;
    int64_t (*rtt_us)(unsigned);
    int throttled;
    unsigned limit;
};

static void s_steps(struct s_sim *s, const struct s_step *st, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s_answers(s, st[i].answers, st[i].rtt_us, st[i].throttled);
        ck_assert_msg(s->c.limit == st[i].limit, "step %zu: limit %u, expected %u", i,
                      s->c.limit, st[i].limit);
    }
}

START_TEST(cap_and_floor)
{
    static struct s_sim s;
    s_init(&s, 1);
    ck_assert_uint_eq(s.c.limit, 1);
    s_answers(&s, 10, s_flat, 0);
    ck_assert_uint_eq(s.c.limit, 1);
    s_init(&s, 0); /* a cap of 0 is read as 1 */
    ck_assert_uint_eq(s.c.limit, 1);
    s_init(&s, 16);
    const struct s_step steps[] = {{14, s_flat, 0, 16}, {500, s_slower, 0, 1}};
    s_steps(&s, steps, 2);
}
END_TEST

/* Answers within the slack count as fast, whatever their ratio: a 100 us
 * call that takes 400 us is scheduling noise, not a queue. */
START_TEST(slack_for_fast_calls)
{
    struct fanout_conc c;
    fanout_conc_init(&c, 8);
    fanout_conc_sample(&c, 100, 2, 0, 2);
    for (size_t i = 1; i < 50; i++)
        fanout_conc_sample(&c, 400, c.limit, i, i + c.limit);
    ck_assert_uint_eq(c.limit, 8);
}
END_TEST

START_TEST(throttled_halves_once_per_round)
{
    static struct s_sim s;
    s_init(&s, 16);
    const struct s_step steps[] = {
        {100, s_flat, 0, 16},
        /* the 16 calls in flight come back throttled: one halving, not four */
        {16, s_flat, 1, 8},
        /* the next round, started after the cut: halved again */
        {1, s_flat, 1, 4},
        {200, s_flat, 1, 1},
        /* served again, as fast as before: back up to the cap */
        {100, s_flat, 0, 16},
    };
    s_steps(&s, steps, sizeof steps / sizeof *steps);
}
END_TEST

/* A limit that was not reached is not raised: answers with 1 call in
 * flight say nothing of 3. */
START_TEST(unreached_limit_kept)
{
    struct fanout_conc c;
    fanout_conc_init(&c, 16);
    for (size_t i = 0; i < 20; i++)
        fanout_conc_sample(&c, 30000, 1, i, i + 1);
    ck_assert_uint_eq(c.limit, FANOUT_CONC_START);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conc");
    TCase *tc = tcase_create("conc");
    tcase_add_test(tc, flat_destination_gets_the_cap);
    tcase_add_test(tc, serial_destination_stays_low);
    tcase_add_test(tc, cap_and_floor);
    tcase_add_test(tc, slack_for_fast_calls);
    tcase_add_test(tc, throttled_halves_once_per_round);
    tcase_add_test(tc, unreached_limit_kept);
    suite_add_tcase(s, tc);
    return fanout_check_run(s);
}
