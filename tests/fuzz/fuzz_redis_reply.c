/*
 * libFuzzer target: the redis plugin's reply parser and matcher
 * (plugins/redis/redis_api.c: redis_reply_next, redis_match_feed,
 * redis_match_end, redis_classify_error), fed the bytes as a server's answer
 * to one exchange.
 *
 * The first byte shapes the exchange: 1-8 commands (bits 0-2), with or
 * without the closing PING (bit 3), and the size of the reads (bits 4-7:
 * 1-16 bytes, or all at once for 0). The rest are the server's bytes. Each
 * input is matched three times: every command a SET (+OK), every command a
 * DEL (:0 or :1, deleteOnRemove), and the two alternating. The
 * bytes are fed as the plugin's exchange loop feeds them (a bounded buffer,
 * complete replies consumed, the rest kept), and once in one piece; both
 * must reach the same verdict, and the verdict must be consistent (no more
 * replies than commands, every reply delivered once and in order, a
 * finished exchange has all its replies).
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isdk/include
 *   -Iplugins/redis -I/usr/include/hiredis tests/fuzz/fuzz_redis_reply.c
 *   plugins/redis/redis_api.c -lhiredis -lssl -lcrypto
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis_api.h"
#include "reply_feed.h"

struct s_seen {
    size_t calls;
    int bad;
};

static void s_on_reply(void *ud, size_t index, int is_error, const char *text, size_t len)
{
    struct s_seen *s = ud;
    if (index != s->calls++ || text[len] != 0 || len > REDIS_MAX_REPLY_LINE)
        s->bad = 1;
    if (is_error) {
        /* what the plugin does with an error reply */
        struct redis_failure f;
        int drop = 0;
        redis_classify_error(text, len, &f, &drop);
        if (f.status != FANOUT_RETRY && f.status != FANOUT_FATAL)
            s->bad = 1;
    }
}

struct s_verdict {
    size_t got;
    int done;
    int desync;
    size_t calls;
};

static struct s_verdict s_run(const uint8_t *data, size_t size, size_t want, int marker,
                              size_t step, const unsigned char *expect)
{
    static struct redis_match m; /* large: not on the stack */
    struct s_seen seen = {0};
    m = (struct redis_match){.want = want,
                             .expect = expect,
                             .marker = marker,
                             .where = "fuzz:1",
                             .fn = s_on_reply,
                             .ud = &seen};
    char in[REDIS_MAX_REPLY_LINE * 2 + 16];
    size_t total = want + (marker ? 1 : 0);
    reply_feed(data, size, step, in, sizeof in, reply_feed_redis, &m);
    if (seen.bad || m.got > total || (m.done && m.got != total) ||
        (m.done && m.desync == 0 && seen.calls != want))
        abort();
    if (m.desync && m.why[0] == 0)
        abort();
    return (struct s_verdict){m.got, m.done, m.desync, seen.calls};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t want = (size_t)(data[0] & 7) + 1;
    int marker = (data[0] >> 3) & 1;
    size_t step = (size_t)(data[0] >> 4);
    static const unsigned char dels[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    static const unsigned char mixed[8] = {0, 1, 0, 1, 0, 1, 0, 1};
    const unsigned char *expect[3] = {NULL, dels, mixed};
    for (size_t k = 0; k < 3; k++) {
        struct s_verdict a = s_run(data + 1, size - 1, want, marker, step, expect[k]);
        struct s_verdict b = s_run(data + 1, size - 1, want, marker, 0, expect[k]);
        if (a.got != b.got || a.done != b.done || a.desync != b.desync ||
            a.calls != b.calls)
            abort(); /* the verdict must not depend on how the bytes arrive */
    }
    return 0;
}
