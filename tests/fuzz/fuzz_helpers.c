/* The plugin helpers (sdk/include/fanout/helpers.h: what plugins use to
 * put record bytes into requests) against the engine's own (engine/common/util.c)
 * and jansson, on any bytes.
 *
 * Checks, beyond ASan and UBSan: the two UTF-8 validators agree; both JSON
 * string writers give valid JSON that jansson reads back as the input (as
 * valid UTF-8: invalid bytes become U+FFFD); both base64 writers give the
 * same text, which the strict decoder turns back into the input; a split
 * ARN's parts put together again give the ARN. */
#include <fanout/helpers.h>
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "common/util.h"

static json_t *s_read_string(const uint8_t *p, size_t n)
{
    FUZZ_CHECK(fanout_json_valid(p, n), "not valid JSON: %.*s", (int)(n > 200 ? 200 : n),
               (const char *)p);
    json_t *j = json_loadb((const char *)p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    FUZZ_CHECK(json_is_string(j), "jansson cannot read %.*s", (int)(n > 200 ? 200 : n),
               (const char *)p);
    return j;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    int valid = fanout_utf8_check(data, size);
    FUZZ_CHECK(valid == !!fanout_utf8_valid(data, size), "UTF-8 validators disagree");

    struct fanout_sbuf sb = {0};
    struct fanout_buf eb = {0};
    FUZZ_CHECK(fanout_sbuf_json_str(&sb, data, size) == 0, "out of memory");
    FUZZ_CHECK(fanout_buf_append_json_string(&eb, data, size) == 0, "out of memory");
    json_t *a = s_read_string((const uint8_t *)sb.p, sb.len);
    json_t *b = s_read_string(eb.ptr, eb.len);
    FUZZ_CHECK(
        json_string_length(a) == json_string_length(b) &&
            memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0,
        "the helpers' and the engine's JSON strings differ");
    if (valid)
        FUZZ_CHECK(json_string_length(a) == size &&
                       memcmp(json_string_value(a), data, size) == 0,
                   "valid UTF-8 not kept as is");
    json_decref(a);
    json_decref(b);
    fanout_sbuf_free(&sb);
    fanout_buf_free(&eb);

    FUZZ_CHECK(fanout_sbuf_base64(&sb, data, size) == 0, "out of memory");
    FUZZ_CHECK(fanout_buf_append_base64(&eb, data, size) == 0, "out of memory");
    FUZZ_CHECK(sb.len == eb.len && (size == 0 || memcmp(sb.p, eb.ptr, sb.len) == 0),
               "base64 writers differ");
    FUZZ_CHECK(sb.len == fanout_base64_encoded_len(size), "base64 length");
    uint8_t *back = malloc(fanout_base64_decoded_max(sb.len) + 1);
    FUZZ_CHECK(back != NULL, "out of memory");
    size_t bad = 0;
    long m = fanout_base64_decode(sb.p ? sb.p : "", sb.len, back, &bad);
    FUZZ_CHECK(m == (long)size && (size == 0 || memcmp(back, data, size) == 0),
               "base64 does not decode back (%ld of %zu, bad at %zu)", m, size, bad);
    free(back);
    fanout_sbuf_free(&sb);
    fanout_buf_free(&eb);

    char *arn = fuzz_dup(data, size);
    struct fanout_arn parts;
    if (fanout_arn_split(arn, &parts) == 0) {
        struct fanout_buf j = {0};
        FUZZ_CHECK(
            fanout_buf_appendf(&j, "arn:%.*s:%.*s:%.*s:%.*s:%.*s", (int)parts.partition_len,
                               parts.partition, (int)parts.service_len, parts.service,
                               (int)parts.region_len, parts.region, (int)parts.account_len,
                               parts.account, (int)parts.resource_len, parts.resource) == 0,
            "out of memory");
        FUZZ_CHECK(strcmp((const char *)j.ptr, arn) == 0, "ARN parts give %s", j.ptr);
        fanout_buf_free(&j);
    }
    free(arn);
    return 0;
}
