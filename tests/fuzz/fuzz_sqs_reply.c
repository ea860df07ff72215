/*
 * libFuzzer target: the SQS plugin's SendMessage / SendMessageBatch answer
 * reader (sqs_read, JSON 1.0), driven as msg_reply.h says. Beyond memory
 * errors it checks that no entry counts as sent unless the answer was HTTP
 * 200 with a JSON object.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isdk/include
 *        -Iplugins/sqs -Itests/fuzz tests/fuzz/fuzz_sqs_reply.c
 *        plugins/sqs/sqs_api.c -ljansson -lcrypto
 */
#include <jansson.h>

#include "msg_reply.h"
#include "sqs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int s_believable(long status, const uint8_t *body, size_t len)
{
    json_t *j = json_loadb((const char *)body, len, 0, NULL);
    int ok = status == 200 && json_is_object(j);
    json_decref(j);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return msg_reply_fuzz(data, size, sqs_read, s_believable);
}
