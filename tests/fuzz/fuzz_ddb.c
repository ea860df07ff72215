/* DynamoDB JSON conversion (engine/core/ddb.c): the input, read by jansson as the
 * engine reads a record's "dynamodb" object, is taken as an image and as a
 * Keys object. Checks, beyond ASan and UBSan: on success the appended text
 * is valid JSON (both modes); on failure the buffer is back to its length
 * at entry and err says why; converting the unconverted output again gives
 * the same result as converting the input (nothing lost or reordered by
 * the pass-through mode); and the input, scanned as the event reader scans
 * it, gives the same acceptance, bytes and errors as the former conversion
 * through jansson trees (tests/unit/ddb_diff.c). */
#include <string.h>

#include <jansson.h>

#include "../unit/ddb_diff.h"
#include "common/jscan.h"
#include "core/ddb.h"
#include "fuzz.h"
#include "common/util.h"

#define PREFIX "prefix:"

static int s_convert(const json_t *image, int convert, struct fanout_sbuf *out)
{
    char err[512];
    fanout_sbuf_reset(out);
    FUZZ_CHECK(fanout_sbuf_puts(out, PREFIX) == 0, "out of memory");
    size_t start = out->len;
    int rc = fanout_ddb_image_to_json(image, convert, out, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(rc == -1, "rc %d", rc);
        FUZZ_CHECK(out->len == start && out->bytes[start] == 0,
                   "failure left %zu bytes in the buffer", out->len - start);
        FUZZ_CHECK(err[0], "failure without a reason");
        FUZZ_CHECK(strlen(err) < sizeof err, "err not terminated");
    } else {
        FUZZ_CHECK(fanout_json_valid(out->bytes + start, out->len - start),
                   "convert %d wrote invalid JSON: %.*s", convert,
                   (int)(out->len - start > 400 ? 400 : out->len - start),
                   (const char *)out->bytes + start);
    }
    return rc;
}

/* fanout_ddb_image_shape on text not validated: what it accepts is JSON
 * the scanner accepts, converted as fanout_ddb_image_text converts it. */
static void s_shape(const char *data, size_t size)
{
    static struct fanout_arena nodes;
    struct fanout_sbuf text = {0}, got = {0}, want = {0};
    /* the image followed by the rest of an event (its quick string scan
     * reads 16 bytes at a time) */
    FUZZ_CHECK(fanout_sbuf_put(&text, data, size) == 0 &&
                   fanout_sbuf_puts(&text, "}}]}                ") == 0,
               "out of memory");
    size_t count;
    const char *end = fanout_ddb_image_shape(text.p, text.p + text.len, &count, &got);
    if (end) {
        size_t n = (size_t)(end - text.p);
        char err[512];
        const struct fanout_jnode *img = fanout_jscan(text.p, n, &nodes, err, sizeof err);
        FUZZ_CHECK(img && img->type == FANOUT_J_OBJECT && img->count == count,
                   "accepted what the scanner refuses: %s", img ? "count" : err);
        FUZZ_CHECK(fanout_ddb_image_text(text.p, n, 1, &nodes, &want, err, sizeof err) == 0,
                   "accepted what the converter refuses: %s", err);
        FUZZ_CHECK(got.len == want.len && memcmp(got.p, want.p, got.len) == 0,
                   "converted otherwise: %s / %s", got.p, want.p);
    }
    fanout_arena_reset(&nodes);
    fanout_sbuf_free(&text);
    fanout_sbuf_free(&got);
    fanout_sbuf_free(&want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    char why[1024];
    FUZZ_CHECK(ddb_diff((const char *)data, size, why, sizeof why) >= 0, "%s", why);
    s_shape((const char *)data, size);
    json_t *root =
        json_loadb((const char *)data, size, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    if (!root)
        return 0;
    struct fanout_sbuf raw = {0}, plain = {0}, again = {0}, key = {0};

    int rc_plain = s_convert(root, 1, &plain);
    if (s_convert(root, 0, &raw) == 0 && json_is_object(root)) {
        /* pass-through output read back, then converted: same answer */
        json_t *back = json_loadb((const char *)raw.bytes + strlen(PREFIX),
                                  raw.len - strlen(PREFIX), JSON_ALLOW_NUL, NULL);
        FUZZ_CHECK(back != NULL, "pass-through output not readable by jansson");
        int rc_again = s_convert(back, 1, &again);
        FUZZ_CHECK(rc_again == rc_plain,
                   "converting the pass-through output: rc %d, not %d", rc_again, rc_plain);
        if (rc_plain == 0)
            FUZZ_CHECK(again.len == plain.len &&
                           memcmp(again.bytes, plain.bytes, plain.len) == 0,
                       "converting the pass-through output gives other JSON");
        json_decref(back);
    }

    char err[512];
    FUZZ_CHECK(fanout_sbuf_puts(&key, PREFIX) == 0, "out of memory");
    size_t start = key.len;
    if (fanout_ddb_key(root, &key, err, sizeof err) != 0) {
        FUZZ_CHECK(key.len == start, "failed key left bytes in the buffer");
        FUZZ_CHECK(err[0], "key failure without a reason");
    }
    fanout_sbuf_free(&raw);
    fanout_sbuf_free(&plain);
    fanout_sbuf_free(&again);
    fanout_sbuf_free(&key);
    json_decref(root);
    return 0;
}
