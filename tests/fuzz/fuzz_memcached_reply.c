/*
 * libFuzzer target: the memcached plugin's reply parsers
 * (plugins/memcached/memcached_api.c), fed the bytes as a server's answer.
 *
 * First byte, bit 7 clear: one write exchange (mc_reply_next,
 * mc_match_feed, mc_match_end): 1-8 items (bits 0-2), which of them are
 * deletes (the second byte's bits), the size of the reads (bits 3-6: 1-15
 * bytes, or all at once for 0), then the server's bytes. Fed as the
 * plugin's exchange loop feeds them (a bounded buffer) and in one piece:
 * both must reach the same verdict, and it must be consistent (no more
 * replies than commands; a finished exchange has every item answered; an
 * item counted OK only when its reply was STORED, DELETED, or NOT_FOUND to
 * a delete).
 *
 * Bit 7 set: an ElastiCache auto-discovery reply (mc_discovery_complete,
 * then mc_discovery_parse on a complete CONFIG/VALUE block).
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isdk/include
 *   -Iplugins/memcached tests/fuzz/fuzz_memcached_reply.c
 *   plugins/memcached/memcached_api.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "memcached.h"
#include "reply_feed.h"

#define S_MAX_ITEMS 8

struct s_verdict {
    size_t got;
    int done;
    int desync;
    int drop;
    int status[S_MAX_ITEMS];
};

static struct s_verdict s_run(const uint8_t *data, size_t size, size_t count,
                              unsigned removes, size_t step)
{
    struct mc_item items[S_MAX_ITEMS];
    struct fanout_outcome out[S_MAX_ITEMS];
    struct mc_item *ptrs[S_MAX_ITEMS];
    memset(items, 0, sizeof items);
    for (size_t i = 0; i < count; i++) {
        items[i].key_len =
            (size_t)snprintf(items[i].key, sizeof items[i].key, "key-%zu", i);
        items[i].value = (const uint8_t *)"v";
        items[i].value_len = 1;
        items[i].remove = (removes >> i) & 1;
        /* as the engine hands them: zeroed, i.e. OK; a reply must set each */
        fanout_outcome_set(&out[i], FANOUT_RETRY, "Unanswered", "no reply yet");
        items[i].outcome = &out[i];
        ptrs[i] = &items[i];
    }
    struct mc_match m = {.items = ptrs, .count = count, .where = "fuzz:1"};
    char in[MC_MAX_REPLY_LINE * 4];
    reply_feed(data, size, step, in, sizeof in, reply_feed_memcached, &m);
    if (m.got > count + 1 || (m.done && m.got != count + 1) || (m.desync && !m.why[0]))
        abort();
    struct s_verdict v = {m.got, m.done, m.desync, m.drop, {0}};
    for (size_t i = 0; i < count; i++) {
        v.status[i] = out[i].status;
        /* answered items were judged; the others keep "no reply yet" */
        if (i < m.got && strcmp(out[i].code, "Unanswered") == 0)
            abort();
        if (i >= m.got && strcmp(out[i].code, "Unanswered") != 0 && !m.desync)
            abort();
    }
    return v;
}

static void s_discovery(const uint8_t *data, size_t size)
{
    const char *b = (const char *)data;
    long n = mc_discovery_complete(b, size);
    if (n > (long)size)
        abort();
    if (n > 0 &&
        ((size_t)n >= 7 && (!strncmp(b, "CONFIG ", 7) || !strncmp(b, "VALUE ", 6)))) {
        char err[256] = "";
        struct mc_config *cfg = mc_discovery_parse(b, (size_t)n, err, sizeof err);
        if (!cfg && !err[0])
            abort();
        if (cfg && (cfg->count == 0 || cfg->count > MC_MAX_NODES))
            abort();
        free(cfg);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (data[0] & 0x80) {
        s_discovery(data + 1, size - 1);
        return 0;
    }
    size_t count = (size_t)(data[0] & 7) + 1;
    size_t step = (size_t)((data[0] >> 3) & 15);
    unsigned removes = data[1];
    struct s_verdict a = s_run(data + 2, size - 2, count, removes, step);
    struct s_verdict b = s_run(data + 2, size - 2, count, removes, 0);
    /* the verdict must not depend on how the bytes arrive */
    if (a.got != b.got || a.done != b.done || a.desync != b.desync || a.drop != b.drop ||
        memcmp(a.status, b.status, sizeof a.status) != 0)
        abort();
    return 0;
}
