/*
 * libFuzzer target: the Firehose plugin's PutRecordBatch answer reader. The
 * input is one answer (byte 0: the HTTP status, see reply_host.h; the rest:
 * the body) to a PutRecordBatch of 3 records, read by
 * firehose_put_record_batch through a fake host. Beyond memory errors it
 * checks that no record counts as accepted unless the answer was HTTP 200
 * with a JSON object.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isdk/include
 *        -Iplugins/firehose -Itests/fuzz tests/fuzz/fuzz_firehose_reply.c
 *        plugins/firehose/firehose_api.c -ljansson
 */
#include <jansson.h>

#include "firehose.h"
#include "reply_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    long status = reply_host_status(data[0]);
    reply_host_answer(status, data + 1, size - 1);
    struct reply_batch b;
    reply_batch_init(&b, 3);
    struct firehose_target t = {
        .host = &reply_host, .id = "fuzz", .stream = "s", .append_newline = data[0] & 1};
    firehose_put_record_batch(&t, &b.batch, b.out);
    if (reply_batch_ok(&b, 3)) {
        json_t *j = json_loadb((const char *)data + 1, size - 1, 0, NULL);
        if (status != 200 || !json_is_object(j))
            __builtin_trap();
        json_decref(j);
    }
    for (size_t i = 0; i < 3; i++)
        if (b.out[i].status < FANOUT_OK || b.out[i].status > FANOUT_FATAL)
            __builtin_trap();
    return 0;
}
