/*
 * libFuzzer target: the SQS plugin's SendMessage / SendMessageBatch answer
 * reader (sqs_read, JSON 1.0). The input is one answer: byte 0
 * picks the HTTP status (reply_host.h) and, by its lowest bit, a
 * SendMessage of one entry (1) or a SendMessageBatch of 3 entries with Ids
 * 0, 1, 2 and bodies {"n":0}.. (0); the rest is the body. Beyond memory
 * errors it checks that no entry counts as sent unless the answer was HTTP
 * 200 with a JSON object.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isdk/include
 *        -Iplugins/sqs -Itests/fuzz tests/fuzz/fuzz_sqs_reply.c
 *        plugins/sqs/sqs_api.c -ljansson -lcrypto
 */
#include <jansson.h>

#include "reply_host.h"
#include "sqs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    long status = reply_host_status(data[0]);
    int batch = !(data[0] & 1);
    size_t count = batch ? 3 : 1;
    reply_host_answer(status, data + 1, size - 1);
    struct fanout_msg_entry e[3];
    void *ep[3];
    static const size_t idx[3] = {0, 1, 2};
    static const char *bodies[] = {"{\"n\":0}", "{\"n\":1}", "{\"n\":2}"};
    memset(e, 0, sizeof e);
    for (size_t i = 0; i < 3; i++) {
        e[i].body = (const uint8_t *)bodies[i];
        e[i].body_len = strlen(bodies[i]);
        ep[i] = &e[i];
    }
    struct fanout_outcome out[3];
    memset(out, 0, sizeof out);
    struct fanout_batch_request q = {.entries = ep, .indexes = idx, .count = count};
    struct fanout_aws_response *r = &q.resp;
    reply_host_response(r);
    if (r->result != FANOUT_AWS_OK) {
        /* fanout_batch_send's to report, not the reader's */
        s_reply_clean_up(r);
        return 0;
    }
    sqs_read(NULL, &q, out);
    size_t ok = 0;
    for (size_t i = 0; i < count; i++) {
        ok += out[i].status == FANOUT_OK;
        if (out[i].status < FANOUT_OK || out[i].status > FANOUT_FATAL)
            __builtin_trap();
    }
    if (ok) {
        json_t *j = json_loadb((const char *)data + 1, size - 1, 0, NULL);
        if (status != 200 || !json_is_object(j))
            __builtin_trap();
        json_decref(j);
    }
    s_reply_clean_up(r);
    return 0;
}
