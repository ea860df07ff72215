/*
 * What the sqs and sns answer-reader fuzz targets share: the input's byte
 * 0 picks the HTTP status (reply_host.h) and, by its lowest bit, a request
 * of one entry (1) or of 3 entries with Ids 0, 1, 2 and bodies {"n":0}..
 * (0); the rest is the body. The reader runs as fanout_batch_send runs it
 * (only on an answer the AWS layer took: FANOUT_AWS_OK); `believable` says
 * whether an answer may count any entry as sent, else the target traps.
 */
#ifndef FANOUT_TESTS_MSG_REPLY_H
#define FANOUT_TESTS_MSG_REPLY_H

#include <fanout/batch.h>

#include "reply_host.h"

typedef void msg_reply_read_fn(void *ctx, const struct fanout_batch_request *r,
                               struct fanout_outcome *out);

static inline int msg_reply_fuzz(const uint8_t *data, size_t size, msg_reply_read_fn *read,
                                 int (*believable)(long status, const uint8_t *body,
                                                   size_t len))
{
    if (size < 1)
        return 0;
    long status = reply_host_status(data[0]);
    size_t count = data[0] & 1 ? 1 : 3;
    reply_host_answer(status, data + 1, size - 1);
    static const char *bodies[] = {"{\"n\":0}", "{\"n\":1}", "{\"n\":2}"};
    static const size_t idx[3] = {0, 1, 2};
    struct fanout_msg_entry e[3];
    void *ep[3];
    memset(e, 0, sizeof e);
    for (size_t i = 0; i < 3; i++) {
        e[i].body = (const uint8_t *)bodies[i];
        e[i].body_len = strlen(bodies[i]);
        ep[i] = &e[i];
    }
    struct fanout_outcome out[3];
    memset(out, 0, sizeof out);
    struct fanout_batch_request q = {.entries = ep, .indexes = idx, .count = count};
    reply_host_response(&q.resp);
    if (q.resp.result == FANOUT_AWS_OK) {
        read(NULL, &q, out);
        size_t ok = 0;
        for (size_t i = 0; i < count; i++) {
            ok += out[i].status == FANOUT_OK;
            if (out[i].status < FANOUT_OK || out[i].status > FANOUT_FATAL)
                __builtin_trap();
        }
        if (ok && !believable(status, data + 1, size - 1))
            __builtin_trap(); /* sent on a doubtful answer */
    }
    s_reply_clean_up(&q.resp);
    return 0;
}

#endif
