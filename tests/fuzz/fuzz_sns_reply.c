/*
 * libFuzzer target: the SNS plugin's Publish / PublishBatch answer reader
 * (sns_read, XML), driven as msg_reply.h says. Beyond memory errors it
 * checks that no entry counts as published unless the answer was HTTP 200
 * and names a MessageId.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isdk/include
 *        -Iplugins/sns -Itests/fuzz tests/fuzz/fuzz_sns_reply.c
 *        plugins/sns/sns_api.c -lcrypto
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* memmem */
#endif
#include "msg_reply.h"
#include "sns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int s_believable(long status, const uint8_t *body, size_t len)
{
    return status == 200 && memmem(body, len, "MessageId>", 10) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return msg_reply_fuzz(data, size, sns_read, s_believable);
}
