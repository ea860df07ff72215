/*
 * libFuzzer target: the es plugin's _bulk answer reader (es_bulk_read).
 * The input is one answer (byte 0: the HTTP status, see reply_host.h; the
 * rest: the body) to a _bulk request of 3 actions: index with _id "a",
 * delete of _id "b", index with no _id. Beyond memory errors it checks that
 * no document counts as stored unless the answer was HTTP 200 with a JSON
 * object.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isdk/include
 *        -Iplugins/es -Itests/fuzz tests/fuzz/fuzz_es_reply.c
 *        plugins/es/es_api.c -ljansson
 */
#include <jansson.h>

#include "es.h"
#include "reply_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char req[] = "{\"index\":{\"_id\":\"a\"}}\n{\"x\":1}\n"
                              "{\"delete\":{\"_id\":\"b\"}}\n"
                              "{\"index\":{}}\n{\"y\":2}\n";
    if (size < 1)
        return 0;
    long status = reply_host_status(data[0]);
    /* the body in its own allocation, as the engine hands it */
    uint8_t *body = malloc(size);
    if (!body)
        return 0;
    memcpy(body, data + 1, size - 1);
    body[size - 1] = 0;
    struct fanout_outcome out[3];
    struct fanout_outcome *outs[] = {&out[0], &out[1], &out[2]};
    memset(out, 0, sizeof out);
    int rc =
        es_bulk_read((const uint8_t *)req, sizeof req - 1, status, body, size - 1, 3, outs);
    size_t ok = 0;
    for (size_t i = 0; i < 3; i++) {
        ok += out[i].status == FANOUT_OK;
        if (out[i].status < FANOUT_OK || out[i].status > FANOUT_FATAL)
            __builtin_trap();
    }
    if (ok) {
        /* read as the plugin reads it: big integers as reals */
        json_t *j = json_loadb((const char *)body, size - 1, JSON_DECODE_INT_AS_REAL, NULL);
        if (rc != 0 || status != 200 || !json_is_object(j))
            __builtin_trap();
        json_decref(j);
    }
    free(body);
    return 0;
}
