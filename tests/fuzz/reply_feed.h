/*
 * The read loop of the cache plugins' exchanges, for their fuzz targets
 * (fuzz_redis_reply.c, fuzz_memcached_reply.c): the server's bytes arrive
 * `step` at a time (all at once for 0) into a bounded buffer, the matcher
 * takes the complete replies at its start, and the rest is kept for the
 * next read. Header-only; also used by the unit suites test_redis_api.c
 * and test_memcached_api.c.
 */
#ifndef FANOUT_TESTS_REPLY_FEED_H
#define FANOUT_TESTS_REPLY_FEED_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Hand the matcher in[0..n): returns the bytes it took (at most n). When
 * the exchange is over after them, it ends it (`rest`: the bytes still
 * buffered and not yet read) and sets *stop; it sets *stop as well when
 * the matcher gave up. */
typedef size_t (*reply_feed_fn)(void *ctx, const char *in, size_t n, size_t rest,
                                int *stop);

static inline void reply_feed(const uint8_t *data, size_t size, size_t step, char *in,
                              size_t cap, reply_feed_fn feed, void *ctx)
{
    size_t in_len = 0, off = 0;
    int stop = 0;
    while (!stop && off < size) {
        size_t n = step ? step : size - off;
        if (n > size - off)
            n = size - off;
        if (n > cap - in_len)
            n = cap - in_len;
        if (n == 0)
            abort(); /* the buffer is full yet no reply could be taken */
        memcpy(in + in_len, data + off, n);
        in_len += n;
        off += n;
        size_t used = feed(ctx, in, in_len, size - off, &stop);
        if (used > in_len)
            abort();
        memmove(in, in + used, in_len - used);
        in_len -= used;
    }
}

/* The feed functions of the two matchers, for the includer of their
 * header (redis_api.h, memcached.h): ctx is the struct redis_match or
 * struct mc_match. */
#ifdef FANOUT_REDIS_API_H
static inline size_t reply_feed_redis(void *ctx, const char *in, size_t n, size_t rest,
                                      int *stop)
{
    struct redis_match *m = (struct redis_match *)ctx;
    size_t used = redis_match_feed(m, in, n);
    if (m->done && used <= n)
        redis_match_end(m, n - used + rest);
    *stop = m->done || m->desync;
    return used;
}
#endif

#ifdef FANOUT_MEMCACHED_H
static inline size_t reply_feed_memcached(void *ctx, const char *in, size_t n, size_t rest,
                                          int *stop)
{
    struct mc_match *m = (struct mc_match *)ctx;
    size_t used = mc_match_feed(m, in, n);
    if (m->done && used <= n)
        mc_match_end(m, n - used + rest);
    *stop = m->done || m->desync;
    return used;
}
#endif

#endif
