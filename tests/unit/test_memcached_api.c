/* The memcached plugin's reply parser and matcher
 * (plugins/memcached/memcached_api.c): only STORED confirms a set, every
 * reply matched to its command, any shift detected, lines bounded; and the
 * auto-discovery reply parser. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"

#include "memcached.h"
#include "reply_feed.h"

static struct mc_item items[4];
static struct mc_item *ptrs[4];
static struct fanout_outcome out[4];
static struct mc_match m;

/* `count` items (deletes where `removes` has a bit), outcomes "unanswered",
 * fed `bytes` at once. */
static void s_feed(const char *bytes, size_t count, unsigned removes)
{
    memset(items, 0, sizeof items);
    for (size_t i = 0; i < count; i++) {
        items[i].key_len = (size_t)snprintf(items[i].key, sizeof items[i].key, "k%zu", i);
        items[i].remove = (removes >> i) & 1;
        fanout_outcome_set(&out[i], FANOUT_RETRY, "Unanswered", "-");
        items[i].outcome = &out[i];
        ptrs[i] = &items[i];
    }
    m = (struct mc_match){.items = ptrs, .count = count, .where = "h:1"};
    size_t len = strlen(bytes);
    size_t used = mc_match_feed(&m, bytes, len);
    if (m.done)
        mc_match_end(&m, len - used);
}

START_TEST(only_stored_confirms_a_set)
{
    s_feed("STORED\r\nNOT_FOUND\r\nNOT_STORED\r\nEXISTS\r\nVERSION 1.6.21\r\n", 4, 0);
    ck_assert(m.done && !m.desync);
    ck_assert_int_eq(out[0].status, FANOUT_OK);
    for (int i = 1; i < 4; i++)
        ck_assert_int_eq(out[i].status, FANOUT_RETRY);
    ck_assert_str_eq(out[1].code, "NOT_FOUND");
    ck_assert_ptr_nonnull(strstr(out[1].message, "only STORED confirms a set"));
    s_feed("SERVER_ERROR object too large for cache\r\nSERVER_ERROR out of memory storing "
           "object\r\nCLIENT_ERROR bad data chunk\r\nERROR\r\nVERSION 1\r\n",
           4, 0);
    ck_assert(m.done && !m.desync && m.drop);
    ck_assert_int_eq(out[0].status, FANOUT_FATAL);
    ck_assert_int_eq(out[1].status, FANOUT_RETRY);
    ck_assert_int_eq(out[2].status, FANOUT_FATAL);
    ck_assert_int_eq(out[3].status, FANOUT_RETRY);
}
END_TEST

START_TEST(delete_replies)
{
    s_feed("DELETED\r\nNOT_FOUND\r\nVERSION 1\r\n", 2, 3);
    ck_assert(m.done && !m.desync);
    ck_assert_int_eq(out[0].status, FANOUT_OK);
    ck_assert_int_eq(out[1].status, FANOUT_OK);
    const char *bad[] = {"STORED\r\n", "NOT_STORED\r\n", "EXISTS\r\n"};
    for (size_t i = 0; i < 3; i++) {
        s_feed(bad[i], 1, 1);
        ck_assert_msg(m.desync, "%s", bad[i]);
    }
}
END_TEST

/* deleteOnRemove: only DELETED or NOT_FOUND, exactly, in its place,
 * confirms a delete; an error class fails that record; anything else puts
 * the exchange out of step, with no outcome written. */
START_TEST(delete_wrong_answers)
{
    const char *bad[] = {"OK\r\n",          "END\r\n",     "42\r\n",         "\r\n",
                         "VERSION 1\r\n",   "deleted\r\n", "DELETED \r\n",   "DELETED\n",
                         "NOT_FOUND x\r\n", "TOUCHED\r\n", "VALUE k 0 1\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s_feed(bad[i], 1, 1);
        ck_assert_msg(m.desync, "%s", bad[i]);
        ck_assert_str_eq(out[0].code, "Unanswered");
    }
    /* missing, extra and trailing replies of a delete */
    s_feed("DELETED\r\nVERSION 1\r\n", 2, 3);
    ck_assert(m.desync);
    s_feed("DELETED\r\nNOT_FOUND\r\nVERSION 1\r\n", 1, 1);
    ck_assert(m.desync);
    s_feed("NOT_FOUND\r\nVERSION 1\r\nDELETED\r\n", 1, 1);
    ck_assert(m.desync);
    /* a set's STORED and a delete's DELETED are not interchangeable */
    s_feed("DELETED\r\nSTORED\r\nVERSION 1\r\n", 2, 2);
    ck_assert(m.desync);
    /* error classes fail the delete only: retryable or not as for a set */
    s_feed("SERVER_ERROR object too large for cache\r\nCLIENT_ERROR bad\r\nERROR\r\n"
           "DELETED\r\nVERSION 1\r\n",
           4, 0xf);
    ck_assert(m.done && !m.desync && m.drop);
    ck_assert_int_eq(out[0].status, FANOUT_RETRY); /* no item size for a delete */
    ck_assert_int_eq(out[1].status, FANOUT_FATAL);
    ck_assert_int_eq(out[2].status, FANOUT_RETRY);
    ck_assert_int_eq(out[3].status, FANOUT_OK);
    ck_assert_ptr_nonnull(strstr(out[1].message, "delete of key"));
}
END_TEST

START_TEST(replies_a_set_cannot_get)
{
    /* what made libmemcached assert, and more */
    const char *bad[] = {"OK\r\n",      "END\r\n",         "DELETED\r\n",   "42\r\n",
                         "\r\n",        "VALUE k 0 1\r\n", "VERSION 1\r\n", "stored\r\n",
                         "STORED \r\n", "STORED\n",        "TOUCHED\r\n",   "MN\r\n",
                         "STORED\rX"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s_feed(bad[i], 1, 0);
        ck_assert_msg(m.desync, "%s", bad[i]);
        ck_assert_str_eq(out[0].code, "Unanswered");
    }
}
END_TEST

START_TEST(shifts_are_detected)
{
    s_feed("STORED\r\nSTORED\r\nVERSION 1\r\n", 1, 0); /* extra */
    ck_assert(m.desync);
    ck_assert_ptr_nonnull(strstr(m.why, "closing \"version\""));
    s_feed("STORED\r\nVERSION 1\r\n", 2, 0); /* missing */
    ck_assert(m.desync);
    s_feed("STORED\r\nVERSION 1\r\nSTORED\r\n", 1, 0); /* trailing */
    ck_assert(m.desync);
    ck_assert_ptr_nonnull(strstr(m.why, "after the last reply"));
}
END_TEST

/* Each item gets its own reply's outcome, whatever the reads' sizes. */
START_TEST(outcomes_per_item)
{
    const char *all = "STORED\r\nSERVER_ERROR out of memory storing object\r\nDELETED\r\n"
                      "CLIENT_ERROR bad data chunk\r\nVERSION 1.6\r\n";
    static const int want[] = {FANOUT_OK, FANOUT_RETRY, FANOUT_OK, FANOUT_FATAL};
    for (size_t step = 1; step <= strlen(all); step++) {
        s_feed("", 4, 1u << 2); /* item 2 is a delete */
        char in[256];
        reply_feed((const uint8_t *)all, strlen(all), step, in, sizeof in,
                   reply_feed_memcached, &m);
        ck_assert_msg(m.done && !m.desync, "step %zu: %s", step, m.why);
        for (size_t i = 0; i < 4; i++)
            ck_assert_msg(out[i].status == want[i], "step %zu, item %zu: %d (%s)", step, i,
                          out[i].status, out[i].message);
        ck_assert_str_eq(out[3].code, "CLIENT_ERROR");
    }
}
END_TEST

START_TEST(lines_are_bounded)
{
    struct mc_reply r;
    size_t used;
    static char big[MC_MAX_REPLY_LINE + 8];
    memset(big, 'x', sizeof big);
    memcpy(big, "SERVER_ERROR ", 13);
    ck_assert_int_eq(mc_reply_next(big, MC_MAX_REPLY_LINE + 1, &r, &used), 0);
    ck_assert_int_eq(mc_reply_next(big, MC_MAX_REPLY_LINE + 2, &r, &used), -1);
    memcpy(big + MC_MAX_REPLY_LINE, "\r\n", 2);
    ck_assert_int_eq(mc_reply_next(big, MC_MAX_REPLY_LINE + 2, &r, &used), 1);
    ck_assert_int_eq(r.kind, MC_REPLY_SERVER_ERROR);
    ck_assert_int_eq(mc_reply_next("STORED\r", 7, &r, &used), 0);
}
END_TEST

START_TEST(discovery_replies)
{
    const char *ok = "CONFIG cluster 0 93\r\n12\nnode1.example.com|10.0.0.1|11211 "
                     "|10.0.0.2|11212\n\r\nEND\r\n";
    long n = mc_discovery_complete(ok, strlen(ok));
    ck_assert_int_eq(n, (long)strlen(ok));
    char err[256];
    struct mc_config *cfg = mc_discovery_parse(ok, (size_t)n, err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_uint_eq(cfg->version, 12);
    ck_assert_uint_eq(cfg->count, 2);
    ck_assert_str_eq(cfg->nodes[0].ep.host, "node1.example.com");
    ck_assert_str_eq(cfg->nodes[1].ep.host, "10.0.0.2");
    free(cfg);
    ck_assert_int_eq(mc_discovery_complete("CONFIG cluster 0 9\r\n1\n", 22), 0);
    ck_assert_int_eq(mc_discovery_complete("ERROR\r\n", 7), 7);
    /* not a complete block: refused by the parser itself */
    ck_assert_ptr_null(mc_discovery_parse("CONFIG x\r\n1\nh|i|1\n", 18, err, sizeof err));
    const char *bad = "CONFIG cluster 0 5\r\n1\nh|i\n\r\nEND\r\n";
    ck_assert_ptr_null(mc_discovery_parse(bad, strlen(bad), err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "is not host|ip|port"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("memcached_api");
    TCase *tc = tcase_create("replies");
    tcase_add_test(tc, only_stored_confirms_a_set);
    tcase_add_test(tc, delete_replies);
    tcase_add_test(tc, delete_wrong_answers);
    tcase_add_test(tc, replies_a_set_cannot_get);
    tcase_add_test(tc, shifts_are_detected);
    tcase_add_test(tc, outcomes_per_item);
    tcase_add_test(tc, lines_are_bounded);
    tcase_add_test(tc, discovery_replies);
    suite_add_tcase(s, tc);
    return fanout_check_run(s);
}
