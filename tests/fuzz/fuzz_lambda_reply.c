/*
 * libFuzzer target: the Lambda plugin's reading of an Invoke answer
 * (lambda_send through a fake host, 3 records in one Event invocation).
 * Byte 0 picks the HTTP status: below 0x80 202, below 0xC0 another 2xx
 * (reply_host_status), else one of 200, 202, 400, 404, 409, 413, 429,
 * 500... (the error path, whose JSON body is read for "Reason"); byte 1:
 * bit 0 adds X-Amz-Function-Error: Unhandled, bit 1 the "records" payload,
 * bit 2 parallel; the rest is the body. Beyond memory
 * errors it checks that no record counts as delivered unless the answer
 * was 202 without a function error.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isdk/include
 *        -Iplugins/lambda -Itests/fuzz tests/fuzz/fuzz_lambda_reply.c
 *        plugins/lambda/lambda_api.c -ljansson
 */
#include "lambda.h"
#include "reply_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long errors[] = {200, 202, 400, 404, 409, 413, 429, 500,
                                  502, 503, 504, 403, 202, 202, 201, 204};
    if (size < 2)
        return 0;
    long status = data[0] < 0x80   ? 202 /* the documented answer */
                  : data[0] < 0xC0 ? reply_host_status(0xF0 | data[0]) /* other 2xx */
                                   : errors[data[0] & 15];
    reply_host_answer(status, data + 2, size - 2);
    int fe = data[1] & 1;
    if (fe)
        reply_host_header("X-Amz-Function-Error", "Unhandled");
    struct reply_batch b;
    reply_batch_init(&b, 3);
    struct lambda_target t = {.aws = {.host = &reply_host,
                                      .id = "fuzz",
                                      .destination = "f",
                                      .path = "/2015-03-31/functions/f/invocations"},
                              .records_payload = data[1] & 2 ? 1 : 0,
                              .parallel = data[1] & 4 ? 1 : 0,
                              .max_payload = LAMBDA_EVENT_PAYLOAD_MAX};
    lambda_send(&t, &b.batch, b.out);
    for (size_t i = 0; i < 3; i++) {
        if (b.out[i].status < FANOUT_OK || b.out[i].status > FANOUT_FATAL)
            __builtin_trap();
        if (b.out[i].status == FANOUT_OK && (status != 202 || fe))
            __builtin_trap(); /* an event taken as queued on another answer */
    }
    return 0;
}
