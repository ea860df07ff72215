/* The SDK's helpers (sdk/include/fanout/helpers.h, sdk/lib/buffer.c: what
 * plugins and the engine use to put record bytes into requests) against
 * jansson and the engine's strict base64 decoder, on any bytes.
 *
 * Checks, beyond ASan and UBSan: the UTF-8 validator agrees with jansson;
 * the JSON string writer gives valid JSON that jansson reads back as the
 * input (as valid UTF-8: invalid bytes become U+FFFD); the base64 writer's
 * text has the expected length and the strict decoder turns it back into
 * the input; a split ARN's parts put together again give the ARN. */
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
    /* json_stringn checks UTF-8 (and allows NUL): it must agree */
    json_t *u = json_stringn((const char *)data, size);
    FUZZ_CHECK(!!u == !!valid, "UTF-8 check says %d, jansson %s", valid,
               u ? "valid" : "invalid");
    json_decref(u);

    struct fanout_sbuf sb = {0};
    FUZZ_CHECK(fanout_sbuf_json_str(&sb, data, size) == 0, "out of memory");
    json_t *a = s_read_string(sb.bytes, sb.len);
    if (valid)
        FUZZ_CHECK(json_string_length(a) == size &&
                       memcmp(json_string_value(a), data, size) == 0,
                   "valid UTF-8 not kept as is");
    json_decref(a);
    fanout_sbuf_free(&sb);

    FUZZ_CHECK(fanout_sbuf_base64(&sb, data, size) == 0, "out of memory");
    FUZZ_CHECK(sb.len == fanout_base64_encoded_len(size), "base64 length");
    uint8_t *back = malloc(fanout_base64_decoded_max(sb.len) + 1);
    FUZZ_CHECK(back != NULL, "out of memory");
    size_t bad = 0;
    long m = fanout_base64_decode(sb.p ? sb.p : "", sb.len, back, &bad);
    FUZZ_CHECK(m == (long)size && (size == 0 || memcmp(back, data, size) == 0),
               "base64 does not decode back (%ld of %zu, bad at %zu)", m, size, bad);
    free(back);
    fanout_sbuf_free(&sb);

    char *arn = fuzz_dup(data, size);
    struct fanout_arn parts;
    if (fanout_arn_split(arn, &parts) == 0) {
        struct fanout_sbuf j = {0};
        FUZZ_CHECK(
            fanout_sbuf_printf(&j, "arn:%.*s:%.*s:%.*s:%.*s:%.*s", (int)parts.partition_len,
                               parts.partition, (int)parts.service_len, parts.service,
                               (int)parts.region_len, parts.region, (int)parts.account_len,
                               parts.account, (int)parts.resource_len, parts.resource) == 0,
            "out of memory");
        FUZZ_CHECK(strcmp((const char *)j.bytes, arn) == 0, "ARN parts give %s", j.bytes);
        fanout_sbuf_free(&j);
    }
    free(arn);
    return 0;
}
