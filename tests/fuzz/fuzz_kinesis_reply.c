/*
 * libFuzzer target: the Kinesis plugin's PutRecords answer reader. The input
 * is one answer (byte 0: the HTTP status, see reply_host.h; the rest: the
 * body) to a PutRecords of 3 records, read by kinesis_put_records through a
 * fake host. Beyond memory errors it checks the promise: no record counts
 * as written unless the answer was HTTP 200 with a JSON body.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isdk/include
 *        -Iplugins/kinesis -Itests/fuzz tests/fuzz/fuzz_kinesis_reply.c
 *        plugins/kinesis/kinesis_api.c -ljansson -lcrypto
 */
#include <jansson.h>

#include "kinesis.h"
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
    struct kinesis_target t = {
        .host = &reply_host, .id = "fuzz", .stream = "s", .ordered = data[0] & 1};
    kinesis_put_records(&t, &b.batch, b.out);
    size_t ok = reply_batch_ok(&b, 3);
    if (ok) {
        json_t *j = json_loadb((const char *)data + 1, size - 1, 0, NULL);
        if (status != 200 || !json_is_object(j))
            __builtin_trap(); /* a record taken as written on a doubtful answer */
        json_decref(j);
    }
    for (size_t i = 0; i < 3; i++)
        if (b.out[i].status < FANOUT_OK || b.out[i].status > FANOUT_FATAL)
            __builtin_trap();
    return 0;
}
