/* Event patterns (engine/core/filter.c): the input's first line is a
 * pattern, the rest a record view; the pattern is compiled and, when valid,
 * matched against the view.
 *
 * Checks, beyond ASan and UBSan: a refused pattern says why, with a path
 * ("<path>: <rule>"); matching answers 0 or 1, the same twice; a pattern
 * that names "data" never matches a view whose data is not JSON; the same
 * pattern as the one branch of a "$or" compiles and answers the same. */
#include <string.h>

#include "fuzz.h"
#include "core/filter.h"

static int s_match(const struct fanout_filter *f, const json_t *view, int data_is_json)
{
    int r = fanout_filter_match(f, view, data_is_json);
    FUZZ_CHECK(r == 0 || r == 1, "match answered %d", r);
    FUZZ_CHECK(fanout_filter_match(f, view, data_is_json) == r, "match not repeatable");
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    const uint8_t *nl = memchr(data, '\n', size);
    size_t plen = nl ? (size_t)(nl - data) : size;
    json_t *pattern = json_loadb((const char *)data, plen, JSON_DECODE_ANY, NULL);
    if (!pattern)
        return 0;
    char err[512];
    err[0] = 0;
    struct fanout_filter *f = fanout_filter_compile(pattern, err, sizeof err);
    if (!f) {
        FUZZ_CHECK(err[0] && strstr(err, ": "), "refused without a path and a rule: %s",
                   err);
        json_decref(pattern);
        return 0;
    }
    json_t *view = NULL;
    if (nl)
        view = json_loadb((const char *)nl + 1, size - plen - 1,
                          JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    int r = s_match(f, view, 1);
    int r_raw = s_match(f, view, 0);
    if (fanout_filter_names_data(f))
        FUZZ_CHECK(r_raw == 0, "a pattern naming data matched non-JSON data");
    else
        FUZZ_CHECK(r_raw == r, "data_is_json changed a pattern without data");
    /* {"$or": [pattern]} is the same pattern, unless it nests too deep */
    json_t *wrapped = json_pack("{s:[O]}", "$or", pattern);
    struct fanout_filter *g =
        wrapped ? fanout_filter_compile(wrapped, err, sizeof err) : NULL;
    if (g) {
        FUZZ_CHECK(s_match(g, view, 1) == r, "$or of one branch answered otherwise");
        FUZZ_CHECK(fanout_filter_names_data(g) == fanout_filter_names_data(f),
                   "$or changed whether data is named");
    } else {
        FUZZ_CHECK(wrapped == NULL || strstr(err, "nested deeper"), "$or refused: %s", err);
    }
    fanout_filter_free(g);
    json_decref(wrapped);
    fanout_filter_free(f);
    json_decref(view);
    json_decref(pattern);
    return 0;
}
