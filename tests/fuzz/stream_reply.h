/*
 * What the fuzz targets of the stream plugins' answer readers share
 * (fuzz_kinesis_reply.c, fuzz_firehose_reply.c): one answer to a batch of 3
 * messages, read by the plugin's real code (fanout_batch_send and
 * fanout_stream_read) through the fake host of reply_host.h. Beyond memory
 * errors it checks the promise: no message counts as delivered unless the
 * answer was HTTP 200 with a JSON object, and every outcome is a status.
 */
#ifndef FANOUT_TESTS_STREAM_REPLY_H
#define FANOUT_TESTS_STREAM_REPLY_H

#include <jansson.h>

#include "reply_host.h"

/* Send `batch` to the plugin; `flag` (the status byte's low bit) picks a
 * variant of the target (ordered, a newline appended...). */
typedef void (*stream_reply_send_fn)(const struct fanout_batch *batch,
                                     struct fanout_outcome *out, int flag);

static inline int stream_reply_fuzz(const uint8_t *data, size_t size,
                                    stream_reply_send_fn send)
{
    if (size < 1)
        return 0;
    long status = reply_host_status(data[0]);
    reply_host_answer(status, data + 1, size - 1);
    struct reply_batch b;
    reply_batch_init(&b, 3);
    send(&b.batch, b.out, data[0] & 1);
    if (reply_batch_ok(&b, 3)) {
        json_t *j = json_loadb((const char *)data + 1, size - 1, 0, NULL);
        if (status != 200 || !json_is_object(j))
            __builtin_trap(); /* a message taken as delivered on a doubtful answer */
        json_decref(j);
    }
    for (size_t i = 0; i < 3; i++)
        if (b.out[i].status < FANOUT_OK || b.out[i].status > FANOUT_FATAL)
            __builtin_trap();
    return 0;
}

#endif
