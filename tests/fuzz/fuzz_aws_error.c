/* Service error answers (engine/aws/errors.c): JSON 1.0/1.1, REST-JSON with
 * x-amzn-ErrorType, Query XML, EC2 and S3 XML, OpenSearch, and anything
 * else a proxy may send; the code read is then classified for retries.
 *
 * Input: byte 0 the protocol (low 2 bits; bit 2: an x-amzn-ErrorType
 * header is given, as the first line of what follows), byte 1 and byte 2
 * the sizes of the code and message buffers, then the body.
 *
 * Checks, beyond ASan and UBSan: both outputs NUL-terminated inside their
 * buffers; the code is printable ASCII without spaces; the message is
 * valid UTF-8 without control characters, not ending with a space. */
#include <string.h>

#include "aws/client.h"
#include "fuzz.h"
#include "aws/retry.h"
#include "common/util.h"

static void s_check(const char *code, size_t code_len, const char *msg, size_t msg_len)
{
    if (code_len) {
        size_t n = strnlen(code, code_len);
        FUZZ_CHECK(n < code_len, "code not terminated in %zu bytes", code_len);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(code[i] > 0x20 && code[i] < 0x7f, "code byte 0x%02x",
                       (unsigned char)code[i]);
    }
    if (msg_len) {
        size_t n = strnlen(msg, msg_len);
        FUZZ_CHECK(n < msg_len, "message not terminated in %zu bytes", msg_len);
        FUZZ_CHECK(fanout_utf8_check((const uint8_t *)msg, n), "message not UTF-8: %s",
                   msg);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK((unsigned char)msg[i] >= 0x20 && msg[i] != 0x7f,
                       "control character 0x%02x in the message", (unsigned char)msg[i]);
        /* (a control character at the start becomes a leading space: harmless,
         * not checked) */
        FUZZ_CHECK(n == 0 || msg[n - 1] != ' ', "message \"%s\" ends with a space", msg);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    if (size < 3)
        return 0;
    int protocol = data[0] & 3; /* 3: a value the layer does not know */
    size_t code_len = data[1] == 0 ? 0 : (size_t)data[1] % 130 + 1;
    size_t msg_len = data[2] == 0 ? 0 : (size_t)data[2] * 5 + 1;
    const uint8_t *body = data + 3;
    size_t n = size - 3;
    char *header = NULL;
    if (data[0] & 4) {
        const uint8_t *nl = memchr(body, '\n', n);
        size_t hl = nl ? (size_t)(nl - body) : n;
        header = fuzz_dup(body, hl);
        body += nl ? hl + 1 : hl;
        n -= nl ? hl + 1 : hl;
    }
    /* exact-size buffers, so ASan sees a write past either; a canary when
     * a buffer is absent */
    char *code = code_len ? malloc(code_len) : NULL;
    char *msg = msg_len ? malloc(msg_len) : NULL;
    FUZZ_CHECK((!code_len || code) && (!msg_len || msg), "out of memory");
    if (code)
        memset(code, 'C', code_len);
    if (msg)
        memset(msg, 'M', msg_len);
    uint8_t *copy = n ? malloc(n) : NULL;
    if (n) {
        FUZZ_CHECK(copy != NULL, "out of memory");
        memcpy(copy, body, n);
    }
    fanout_aws_parse_error(protocol, header, copy, n, code, code_len, msg, msg_len);
    s_check(code, code_len, msg, msg_len);
    enum fanout_retry_class cls = fanout_retry_classify(400, code_len ? code : NULL, 0);
    FUZZ_CHECK(cls >= FANOUT_RETRY_NONE && cls <= FANOUT_RETRY_FATAL, "class %d", (int)cls);
    cls = fanout_retry_classify(503, code_len ? code : NULL, 0);
    FUZZ_CHECK(cls != FANOUT_RETRY_NONE, "503 classified as success");
    /* a body given without its pointer is read as empty */
    if (code_len && msg_len) {
        fanout_aws_parse_error(protocol, header, NULL, n, code, code_len, msg, msg_len);
        s_check(code, code_len, msg, msg_len);
    }
    free(copy);
    free(code);
    free(msg);
    free(header);
    return 0;
}
