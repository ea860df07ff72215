/*
 * libFuzzer target: the Firehose plugin's PutRecordBatch answer reader,
 * through fanout_stream_send (see stream_reply.h; the status byte's
 * low bit sets appendNewline).
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isdk/include
 *        -Iplugins/firehose -Itests/fuzz tests/fuzz/fuzz_firehose_reply.c
 *        plugins/firehose/firehose_api.c sdk/lib/batch.c sdk/lib/stream.c
 *        sdk/lib/stream_answer.c -ljansson
 */
#include "firehose.h"
#include "stream_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_send(const struct fanout_batch *batch, struct fanout_outcome *out, int flag)
{
    struct firehose_target t = {
        .s = {&firehose_kind, &reply_host, .id = "fuzz", .name = "s"},
        .append_newline = flag};
    fanout_stream_send(&t, batch, out);
    fanout_batch_spares_free(&t.s.spares); /* the bodies it kept */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return stream_reply_fuzz(data, size, s_send);
}
