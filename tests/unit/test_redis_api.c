/* The redis plugin's reply parser and matcher (plugins/redis/redis_api.c):
 * bounded lines, only +OK/-error for commands (:0/:1/-error for a DEL) and
 * +PONG for the marker, and any shift of the replies detected. */
#include <check.h>
#include <string.h>

#include "check_main.h"

#include "redis_api.h"
#include "reply_feed.h"

struct s_seen {
    size_t n;
    int err[16];
    char text[16][64];
};

static void s_on(void *ud, size_t i, int is_error, const char *text, size_t len)
{
    struct s_seen *s = ud;
    ck_assert_uint_eq(i, s->n);
    ck_assert_uint_lt(i, 16);
    s->err[i] = is_error;
    snprintf(s->text[i], sizeof s->text[i], "%.*s", (int)len, text);
    s->n++;
}

static struct redis_match m;
static struct s_seen seen;

/* Feed `bytes` (all at once) for `want` commands with the marker; command
 * i is a DEL when bit i of `dels` is set. */
static unsigned char s_expect[16];

static size_t s_feed_dels(const char *bytes, size_t want, int marker, unsigned dels)
{
    memset(&seen, 0, sizeof seen);
    for (size_t i = 0; i < 16; i++)
        s_expect[i] = (dels >> i) & 1 ? REDIS_EXPECT_DEL : REDIS_EXPECT_OK;
    m = (struct redis_match){.want = want,
                             .expect = dels ? s_expect : NULL,
                             .marker = marker,
                             .where = "h:1",
                             .fn = s_on,
                             .ud = &seen};
    size_t len = strlen(bytes);
    size_t used = redis_match_feed(&m, bytes, len);
    if (m.done)
        redis_match_end(&m, len - used);
    return used;
}

static size_t s_feed(const char *bytes, size_t want, int marker)
{
    return s_feed_dels(bytes, want, marker, 0);
}

START_TEST(line_parser_bounds)
{
    char type;
    const char *text;
    size_t tlen, used;
    ck_assert_int_eq(redis_reply_next("+OK\r\n", 5, &type, &text, &tlen, &used), 1);
    ck_assert_int_eq(type, '+');
    ck_assert_uint_eq(tlen, 2);
    ck_assert_uint_eq(used, 5);
    ck_assert_int_eq(redis_reply_next("+OK\r", 4, &type, &text, &tlen, &used), 0);
    ck_assert_int_eq(redis_reply_next("+O", 2, &type, &text, &tlen, &used), 0);
    ck_assert_int_eq(redis_reply_next("", 0, &type, &text, &tlen, &used), 0);
    ck_assert_int_eq(redis_reply_next("+OK\n", 4, &type, &text, &tlen, &used), -1);
    ck_assert_int_eq(redis_reply_next("+OK\rX", 5, &type, &text, &tlen, &used), -1);
    /* an integer is a line too (only a DEL may get one: the matcher's rule) */
    ck_assert_int_eq(redis_reply_next(":1\r\n", 4, &type, &text, &tlen, &used), 1);
    ck_assert_int_eq(type, ':');
    ck_assert_uint_eq(tlen, 1);
    ck_assert_int_eq(text[0], '1');
    ck_assert_int_eq(redis_reply_next(":1\n", 3, &type, &text, &tlen, &used), -1);
    /* other types are refused at their first byte, whatever follows */
    const char *types = "$*_,#!=%~>(|x\r";
    for (const char *t = types; *t; t++)
        ck_assert_int_eq(redis_reply_next(t, 1, &type, &text, &tlen, &used), -1);
    ck_assert_int_eq(redis_reply_next("$2000000000\r\n", 13, &type, &text, &tlen, &used),
                     -1);
    /* a line at the bound is read; one byte more is refused */
    static char big[REDIS_MAX_REPLY_LINE + 8];
    memset(big, 'e', sizeof big);
    big[0] = '-';
    memcpy(big + REDIS_MAX_REPLY_LINE, "\r\n", 2);
    ck_assert_int_eq(
        redis_reply_next(big, REDIS_MAX_REPLY_LINE + 2, &type, &text, &tlen, &used), 1);
    ck_assert_uint_eq(tlen, REDIS_MAX_REPLY_LINE - 1);
    memset(big, 'e', sizeof big);
    big[0] = '-';
    ck_assert_int_eq(
        redis_reply_next(big, REDIS_MAX_REPLY_LINE + 1, &type, &text, &tlen, &used), 0);
    ck_assert_int_eq(
        redis_reply_next(big, REDIS_MAX_REPLY_LINE + 2, &type, &text, &tlen, &used), -1);
}
END_TEST

START_TEST(in_step_exchange)
{
    s_feed("+OK\r\n-OOM no memory\r\n+OK\r\n+PONG\r\n", 3, 1);
    ck_assert(m.done);
    ck_assert(!m.desync);
    ck_assert_uint_eq(seen.n, 3);
    ck_assert_int_eq(seen.err[1], 1);
    ck_assert_str_eq(seen.text[1], "OOM no memory");
    /* no marker: done at the last reply */
    s_feed("+OK\r\n", 1, 0);
    ck_assert(m.done && !m.desync);
    /* PING refused: NOPERM marks the marker refused, any error ends it */
    s_feed("+OK\r\n-NOPERM no ping\r\n", 1, 1);
    ck_assert(m.done && !m.desync && m.marker_refused);
    s_feed("-NOAUTH Authentication required.\r\n-NOAUTH Authentication required.\r\n", 1,
           1);
    ck_assert(m.done && !m.desync && !m.marker_refused);
}
END_TEST

START_TEST(out_of_step_is_detected)
{
    /* an extra reply: +OK where +PONG was due */
    s_feed("+OK\r\n+OK\r\n+PONG\r\n", 1, 1);
    ck_assert(m.desync);
    ck_assert_ptr_nonnull(strstr(m.why, "closing PING"));
    /* a missing reply: +PONG where +OK was due */
    s_feed("+OK\r\n+PONG\r\n", 2, 1);
    ck_assert(m.desync);
    /* bytes after the last reply */
    s_feed("+OK\r\n+PONG\r\n+OK\r\n", 1, 1);
    ck_assert(m.desync);
    ck_assert_ptr_nonnull(strstr(m.why, "after the last reply"));
    s_feed("+OK\r\n+OK\r\n", 1, 0);
    ck_assert(m.desync);
    /* a status a SET cannot get, and other types */
    const char *bad[] = {"+QUEUED\r\n+PONG\r\n",  "+ok\r\n+PONG\r\n", ":1\r\n+PONG\r\n",
                         "$2\r\nOK\r\n+PONG\r\n", "$-1\r\n+PONG\r\n", "*0\r\n+PONG\r\n",
                         "_\r\n+PONG\r\n",        "\r\n+PONG\r\n",    "+OK\n+PONG\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s_feed(bad[i], 1, 1);
        ck_assert_msg(m.desync, "%s", bad[i]);
        ck_assert_uint_eq(seen.n, 0);
    }
}
END_TEST

/* DEL of one key: :1 (deleted) and :0 (not there) confirm it, an error
 * fails that record only, next to SETs answered +OK. */
START_TEST(del_replies_confirm)
{
    s_feed_dels("+OK\r\n:1\r\n:0\r\n-OOM no memory\r\n+OK\r\n+PONG\r\n", 5, 1, 0xeu);
    ck_assert(m.done && !m.desync);
    ck_assert_uint_eq(seen.n, 5);
    static const int want_err[] = {0, 0, 0, 1, 0};
    static const char *const want_text[] = {"OK", "1", "0", "OOM no memory", "OK"};
    for (size_t i = 0; i < 5; i++) {
        ck_assert_int_eq(seen.err[i], want_err[i]);
        ck_assert_str_eq(seen.text[i], want_text[i]);
    }
    /* the same bytes, whatever the reads' sizes */
    const char *all = ":1\r\n+OK\r\n:0\r\n+PONG\r\n";
    for (size_t step = 1; step <= strlen(all); step++) {
        memset(&seen, 0, sizeof seen);
        s_expect[0] = s_expect[2] = REDIS_EXPECT_DEL;
        s_expect[1] = REDIS_EXPECT_OK;
        m = (struct redis_match){.want = 3,
                                 .expect = s_expect,
                                 .marker = 1,
                                 .where = "h:1",
                                 .fn = s_on,
                                 .ud = &seen};
        char in[64];
        reply_feed((const uint8_t *)all, strlen(all), step, in, sizeof in, reply_feed_redis,
                   &m);
        ck_assert_msg(m.done && !m.desync, "step %zu", step);
        ck_assert_uint_eq(seen.n, 3);
    }
}
END_TEST

/* Every answer a DEL of one key cannot get puts the exchange out of step:
 * none of its replies reaches the callback, so no record counts as done. */
START_TEST(del_wrong_answers_are_not_delivered)
{
    const char *bad[] = {
        "+OK\r\n+PONG\r\n",     /* a status */
        "+QUEUED\r\n+PONG\r\n", /* another status */
        ":2\r\n+PONG\r\n",      /* a count a one-key DEL cannot reach */
        ":-1\r\n+PONG\r\n",
        ":01\r\n+PONG\r\n",
        ":10\r\n+PONG\r\n",
        ":\r\n+PONG\r\n",
        ": 1\r\n+PONG\r\n",
        ":1 \r\n+PONG\r\n",
        "$1\r\n1\r\n+PONG\r\n", /* a bulk string */
        "$-1\r\n+PONG\r\n",
        "*1\r\n:1\r\n+PONG\r\n",
        "_\r\n+PONG\r\n",
        "#t\r\n+PONG\r\n",
        ",1\r\n+PONG\r\n",
        ":1\n+PONG\r\n",         /* no CR */
        "+PONG\r\n",             /* the DEL's reply missing */
        ":1\r\n:1\r\n+PONG\r\n", /* an extra reply */
        ":1\r\n:PONG\r\n",       /* an integer where +PONG is due */
        ":1\r\n+PONG\r\n:0\r\n", /* bytes after the marker */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s_feed_dels(bad[i], 1, 1, 1);
        ck_assert_msg(m.desync, "%s", bad[i]);
        ck_assert_msg(m.why[0], "%s", bad[i]);
        /* (an extra or misplaced reply may come after good ones: the
         * exchange is then refused as a whole, its replies all untrusted) */
    }
    /* a count other than 0/1 names what a DEL can get */
    s_feed_dels(":2\r\n+PONG\r\n", 1, 1, 1);
    ck_assert_ptr_nonnull(strstr(m.why, "a DEL of one key"));
    ck_assert_ptr_nonnull(strstr(m.why, ":0, :1"));
    ck_assert_uint_eq(seen.n, 0);
    /* an integer never answers a SET, even where a DEL sits next to it */
    s_feed_dels(":1\r\n:1\r\n+PONG\r\n", 2, 1, 2);
    ck_assert(m.desync);
    ck_assert_uint_eq(seen.n, 0);
    ck_assert_ptr_nonnull(strstr(m.why, "can only get +OK"));
    /* a DEL's +OK is refused in a longer pipeline too, after good replies */
    s_feed_dels("+OK\r\n:1\r\n+OK\r\n+PONG\r\n", 3, 1, 6);
    ck_assert(m.desync);
    ck_assert_uint_eq(seen.n, 2);
    /* without the marker (NOPERM on PING), the type is still checked */
    s_feed_dels("+OK\r\n", 1, 0, 1);
    ck_assert(m.desync);
    s_feed_dels(":0\r\n", 1, 0, 1);
    ck_assert(m.done && !m.desync);
}
END_TEST

START_TEST(partial_replies_wait)
{
    const char *all = "+OK\r\n+OK\r\n+PONG\r\n";
    for (size_t cut = 0; cut < strlen(all); cut++) {
        memset(&seen, 0, sizeof seen);
        m = (struct redis_match){
            .want = 2, .marker = 1, .where = "h:1", .fn = s_on, .ud = &seen};
        size_t used = redis_match_feed(&m, all, cut);
        ck_assert(!m.done && !m.desync);
        char rest[64];
        snprintf(rest, sizeof rest, "%.*s%s", (int)(cut - used), all + used, all + cut);
        redis_match_feed(&m, rest, strlen(rest));
        ck_assert(m.done && !m.desync);
        ck_assert_uint_eq(seen.n, 2);
    }
}
END_TEST

START_TEST(error_classes)
{
    struct redis_failure f;
    int drop;
    redis_classify_error("OOM x", 5, &f, &drop);
    ck_assert_int_eq(f.status, FANOUT_RETRY);
    redis_classify_error("READONLY x", 10, &f, &drop);
    ck_assert_int_eq(drop, 1);
    redis_classify_error("ERR unknown command 'SET', with args beginning with: 'secret'",
                         61, &f, &drop);
    ck_assert_int_eq(f.status, FANOUT_FATAL);
    ck_assert_ptr_null(strstr(f.message, "secret"));
}
END_TEST

/* Every class of error reply: status, code, whether the connection is
 * dropped, and a part of the message. */
START_TEST(error_table)
{
    static const struct {
        const char *reply;
        int status;
        const char *code;
        int drop;
        const char *says;
    } cases[] = {
        {"OOM command not allowed", FANOUT_RETRY, "OOM", 0, "OOM command not allowed"},
        {"LOADING Redis is loading", FANOUT_RETRY, "LOADING", 0, "loading"},
        {"BUSY script", FANOUT_RETRY, "BUSY", 0, NULL},
        {"TRYAGAIN", FANOUT_RETRY, "TRYAGAIN", 0, NULL},
        {"MASTERDOWN link down", FANOUT_RETRY, "MASTERDOWN", 0, NULL},
        {"CLUSTERDOWN", FANOUT_RETRY, "CLUSTERDOWN", 0, NULL},
        {"MISCONF cannot persist", FANOUT_RETRY, "MISCONF", 0, NULL},
        {"NOREPLICAS", FANOUT_RETRY, "NOREPLICAS", 0, NULL},
        {"READONLY replica", FANOUT_RETRY, "READONLY", 1, "after a failover"},
        {"MOVED 3999 10.0.0.1:6379", FANOUT_FATAL, "MOVED", 0, "cluster mode is not"},
        {"ASK 3999 10.0.0.1:6379", FANOUT_FATAL, "ASK", 0, "cluster mode is not"},
        {"NOAUTH Authentication required.", FANOUT_FATAL, "NOAUTH", 0, "passwordEnv"},
        {"WRONGTYPE Operation", FANOUT_FATAL, "WRONGTYPE", 0, "WRONGTYPE Operation"},
        {"OOMX not a class", FANOUT_FATAL, "OOMX", 0, NULL},
        {" leading space", FANOUT_FATAL, "ERR", 0, NULL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        struct redis_failure f;
        int drop = -1;
        redis_classify_error(cases[k].reply, strlen(cases[k].reply), &f, &drop);
        ck_assert_msg(f.status == cases[k].status, "%s: status %d", cases[k].reply,
                      f.status);
        ck_assert_msg(strcmp(f.code, cases[k].code) == 0, "%s: code %s", cases[k].reply,
                      f.code);
        ck_assert_msg(drop == cases[k].drop, "%s: drop %d", cases[k].reply, drop);
        if (cases[k].says)
            ck_assert_msg(strstr(f.message, cases[k].says), "%s: \"%s\"", cases[k].reply,
                          f.message);
    }
}
END_TEST

/* Replies reach the callback in command order, each once, whatever the
 * reads' sizes. */
START_TEST(replies_in_order_per_command)
{
    const char *all = "+OK\r\n-OOM a\r\n+OK\r\n-ERR b\r\n+OK\r\n+PONG\r\n";
    static const int want_err[] = {0, 1, 0, 1, 0};
    static const char *const want_text[] = {"OK", "OOM a", "OK", "ERR b", "OK"};
    for (size_t step = 1; step <= strlen(all); step++) {
        memset(&seen, 0, sizeof seen);
        m = (struct redis_match){
            .want = 5, .marker = 1, .where = "h:1", .fn = s_on, .ud = &seen};
        char in[64];
        reply_feed((const uint8_t *)all, strlen(all), step, in, sizeof in, reply_feed_redis,
                   &m);
        ck_assert_msg(m.done && !m.desync, "step %zu", step);
        ck_assert_uint_eq(seen.n, 5);
        for (size_t i = 0; i < 5; i++) {
            ck_assert_int_eq(seen.err[i], want_err[i]);
            ck_assert_str_eq(seen.text[i], want_text[i]);
        }
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("redis_api");
    TCase *tc = tcase_create("replies");
    tcase_add_test(tc, line_parser_bounds);
    tcase_add_test(tc, in_step_exchange);
    tcase_add_test(tc, out_of_step_is_detected);
    tcase_add_test(tc, partial_replies_wait);
    tcase_add_test(tc, del_replies_confirm);
    tcase_add_test(tc, del_wrong_answers_are_not_delivered);
    tcase_add_test(tc, error_classes);
    tcase_add_test(tc, error_table);
    tcase_add_test(tc, replies_in_order_per_command);
    suite_add_tcase(s, tc);
    return fanout_check_run(s);
}
