/*
 * libFuzzer target: the Kinesis plugin's PutRecords answer reader, through
 * fanout_stream_send (see stream_reply.h; the status byte's low bit makes
 * the target ordered).
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isdk/include
 *        -Iplugins/kinesis -Itests/fuzz tests/fuzz/fuzz_kinesis_reply.c
 *        plugins/kinesis/kinesis_api.c sdk/lib/batch.c sdk/lib/stream.c
 *        sdk/lib/stream_answer.c -ljansson -lcrypto
 */
#include "kinesis.h"
#include "stream_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_send(const struct fanout_batch *batch, struct fanout_outcome *out, int flag)
{
    struct kinesis_target t = {
        .s = {&kinesis_kind, &reply_host, .id = "fuzz", .name = "s", .ordered = flag}};
    fanout_stream_send(&t, batch, out);
    fanout_batch_spares_free(&t.s.spares); /* the bodies it kept */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return stream_reply_fuzz(data, size, s_send);
}
