/* The event scanner (engine/jscan.c) on any bytes. Checks, beyond ASan and
 * UBSan: every node's text and key lie inside the input; a container's
 * count is its number of children; fanout_jget finds each member by its
 * unescaped name; strings unescape to valid UTF-8 of at most their raw
 * length; and the scanner never accepts what the plain validator
 * (fanout_json_valid) refuses. */
#include <string.h>

#include "fuzz.h"
#include "jscan.h"
#include "util.h"

static struct fanout_arena s_arena;

static void s_walk(const struct fanout_jnode *n, const struct fanout_jnode *parent,
                   const uint8_t *data, size_t size, int depth)
{
    const char *lo = (const char *)data, *hi = lo + size;
    FUZZ_CHECK(depth <= 1024, "nesting deeper than the scanner allows");
    FUZZ_CHECK(n->text >= lo && n->text <= hi && n->len <= (size_t)(hi - n->text),
               "node text outside the input");
    if (n->key) {
        FUZZ_CHECK(n->key >= lo && n->key_len <= (size_t)(hi - n->key),
                   "key outside the input");
        struct fanout_jnode k = {.type = FANOUT_J_STRING,
                                 .escaped = n->key_escaped,
                                 .text = n->key,
                                 .len = n->key_len};
        size_t kl = 0;
        const char *key = fanout_jstr(&k, &s_arena, &kl);
        FUZZ_CHECK(key != NULL, "key not unescaped");
        FUZZ_CHECK(fanout_utf8_valid((const uint8_t *)key, kl), "key not UTF-8");
        /* a key with an embedded NUL cannot be asked for by C string;
         * fanout_jget compares escaped keys of up to 255 raw bytes (the
         * names the engine asks for are short) */
        if (parent && strlen(key) == kl && (!n->key_escaped || n->key_len < 256))
            FUZZ_CHECK(fanout_jget(parent, key) != NULL, "member \"%s\" not found", key);
    }
    if (n->type == FANOUT_J_STRING) {
        size_t len = 0;
        const char *s = fanout_jstr(n, &s_arena, &len);
        FUZZ_CHECK(s != NULL, "string not unescaped");
        FUZZ_CHECK(len <= n->len, "unescaped string longer than its text");
        FUZZ_CHECK(s[len] == '\0', "unescaped string not terminated");
        FUZZ_CHECK(fanout_utf8_valid((const uint8_t *)s, len), "string not UTF-8");
        if (!n->escaped)
            FUZZ_CHECK(len == n->len && memcmp(s, n->text, len) == 0,
                       "unescaped plain string differs from its text");
    } else {
        FUZZ_CHECK(fanout_jstr(n, &s_arena, NULL) == NULL, "non-string read as string");
    }
    size_t count = 0;
    for (const struct fanout_jnode *c = n->child; c; c = c->next) {
        count++;
        FUZZ_CHECK(n->type == FANOUT_J_OBJECT || n->type == FANOUT_J_ARRAY,
                   "children under a scalar");
        FUZZ_CHECK((c->key != NULL) == (n->type == FANOUT_J_OBJECT),
                   "member without key or element with one");
        s_walk(c, n->type == FANOUT_J_OBJECT ? n : NULL, data, size, depth + 1);
    }
    FUZZ_CHECK(count == n->count, "count %zu, %zu children", n->count, count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    char err[256];
    err[0] = 0;
    const struct fanout_jnode *root =
        fanout_jscan((const char *)data, size, &s_arena, err, sizeof err);
    if (root) {
        FUZZ_CHECK(fanout_json_valid(data, size), "the scanner accepted invalid JSON");
        s_walk(root, NULL, data, size, 0);
    } else {
        FUZZ_CHECK(err[0] != 0, "refused without a reason");
    }
    /* a small error buffer is truncated, never overrun */
    char tiny[8];
    (void)fanout_jscan((const char *)data, size, &s_arena, tiny, sizeof tiny);
    fanout_arena_reset(&s_arena);
    return 0;
}
