/* The event scanner (engine/common/jscan.c) on any bytes. Checks, beyond ASan and
 * UBSan: every node's text and key lie inside the input; a container's
 * count is its number of children; fanout_jget finds each member by its
 * unescaped name; strings unescape to valid UTF-8 of at most their raw
 * length; the scanner never accepts what the plain validator
 * (fanout_json_valid) refuses; and, against jansson: what jansson reads
 * (not too deep) the scanner reads too, to the same values (strings
 * unescaped to the same bytes, same members and elements). The shallow
 * scan accepts and refuses the same inputs, with the same nodes down to its
 * depth; fanout_jscan_valid of an accepted value's text (the records of an
 * event are so read again) gives the same tree as the full scan. */
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "common/jscan.h"
#include "common/util.h"

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
        FUZZ_CHECK(fanout_utf8_check((const uint8_t *)key, kl), "key not UTF-8");
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
        FUZZ_CHECK(fanout_utf8_check((const uint8_t *)s, len), "string not UTF-8");
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

/* Same value as jansson's (objects with duplicate keys: jansson keeps one
 * of them, so only their sizes are compared). */
static void s_same(const struct fanout_jnode *n, const json_t *j)
{
    switch (n->type) {
    case FANOUT_J_OBJECT: {
        FUZZ_CHECK(json_is_object(j), "object, jansson %d", (int)json_typeof(j));
        FUZZ_CHECK(json_object_size(j) <= n->count, "jansson has more members");
        if (json_object_size(j) != n->count)
            return; /* duplicates */
        for (const struct fanout_jnode *c = n->child; c; c = c->next) {
            struct fanout_jnode k = {.type = FANOUT_J_STRING,
                                     .escaped = c->key_escaped,
                                     .text = c->key,
                                     .len = c->key_len};
            size_t kl = 0;
            const char *key = fanout_jstr(&k, &s_arena, &kl);
            const json_t *v = json_object_getn(j, key, kl);
            FUZZ_CHECK(v != NULL, "member \"%s\" unknown to jansson", key);
            s_same(c, v);
        }
        return;
    }
    case FANOUT_J_ARRAY: {
        FUZZ_CHECK(json_is_array(j) && json_array_size(j) == n->count, "array");
        size_t i = 0;
        for (const struct fanout_jnode *c = n->child; c; c = c->next)
            s_same(c, json_array_get(j, i++));
        return;
    }
    case FANOUT_J_STRING: {
        size_t len = 0;
        const char *s = fanout_jstr(n, &s_arena, &len);
        FUZZ_CHECK(json_is_string(j) && json_string_length(j) == len &&
                       memcmp(json_string_value(j), s, len) == 0,
                   "string \"%s\" unescaped otherwise than by jansson", s);
        return;
    }
    case FANOUT_J_NUMBER: FUZZ_CHECK(json_is_number(j), "number"); return;
    case FANOUT_J_TRUE: FUZZ_CHECK(json_is_true(j), "true"); return;
    case FANOUT_J_FALSE: FUZZ_CHECK(json_is_false(j), "false"); return;
    case FANOUT_J_NULL: FUZZ_CHECK(json_is_null(j), "null"); return;
    }
    FUZZ_CHECK(0, "node type %d", (int)n->type);
}

/* The same tree (types, spans, keys, counts), down to `depth` levels when
 * `b` is a shallow scan (its deeper containers have no children). */
static void s_same_tree(const struct fanout_jnode *a, const struct fanout_jnode *b,
                        int depth)
{
    FUZZ_CHECK(a->type == b->type && a->text == b->text && a->len == b->len &&
                   a->count == b->count && a->escaped == b->escaped,
               "nodes differ (type %d/%d, len %zu/%zu)", (int)a->type, (int)b->type, a->len,
               b->len);
    FUZZ_CHECK(a->key == b->key && a->key_len == b->key_len &&
                   a->key_escaped == b->key_escaped,
               "keys differ");
    if (depth == 0) {
        FUZZ_CHECK(b->child == NULL, "a shallow node has children");
        return;
    }
    const struct fanout_jnode *c = a->child, *d = b->child;
    for (; c && d; c = c->next, d = d->next)
        s_same_tree(c, d, depth - 1);
    FUZZ_CHECK(!c && !d, "children differ in number");
}

/* Every object and array of an accepted document read again with
 * fanout_jscan_valid (as the event parser reads each record). */
static void s_rescan(const struct fanout_jnode *n)
{
    char err[64];
    const struct fanout_jnode *again =
        fanout_jscan_valid(n->text, n->len, &s_arena, err, sizeof err);
    FUZZ_CHECK(again != NULL, "fanout_jscan_valid refused an accepted value: %s", err);
    FUZZ_CHECK(again->type == n->type && again->len == n->len && again->count == n->count,
               "fanout_jscan_valid read another value");
    const struct fanout_jnode *c = n->child, *d = again->child;
    for (; c && d; c = c->next, d = d->next)
        s_same_tree(c, d, 1 << 20);
    FUZZ_CHECK(!c && !d, "fanout_jscan_valid: children differ in number");
    for (c = n->child; c; c = c->next)
        if (c->type == FANOUT_J_OBJECT || c->type == FANOUT_J_ARRAY)
            s_rescan(c);
}

/* The deepest nesting of brackets outside strings (an upper bound for
 * what both parsers see). */
static size_t s_depth(const uint8_t *p, size_t n)
{
    size_t d = 0, max = 0;
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        if (in_str) {
            if (p[i] == '\\')
                i++;
            else if (p[i] == '"')
                in_str = 0;
        } else if (p[i] == '"') {
            in_str = 1;
        } else if (p[i] == '[' || p[i] == '{') {
            if (++d > max)
                max = d;
        } else if ((p[i] == ']' || p[i] == '}') && d) {
            d--;
        }
    }
    return max;
}

/* The FANOUT_J_HAS_* of the nodes below `n` (a full scan's). */
static unsigned char s_inside(const struct fanout_jnode *n)
{
    unsigned char in = 0;
    for (const struct fanout_jnode *c = n->child; c; c = c->next)
        in |=
            (unsigned char)((c->type == FANOUT_J_NUMBER ? FANOUT_J_HAS_NUMBER : 0) |
                            (c->key_escaped ? FANOUT_J_HAS_ESCAPED_NAME : 0) | s_inside(c));
    return in;
}

/* fanout_jscan_each_skip's callback: each element's full nodes against
 * those of a scan with nodes everywhere: the same repeated name at the same
 * path (fanout_jdup scans the skipped values again when in doubt), and a
 * skipped value proved distinct holds no repeated name. */
static void s_skip_each(void *ctx, const struct fanout_jnode *kept,
                        const struct fanout_jnode *full)
{
    (void)ctx;
    char err[64], p1[160], p2[160];
    if (kept->type != FANOUT_J_OBJECT && kept->type != FANOUT_J_ARRAY)
        return; /* a string's text is inside its quotes */
    const struct fanout_jnode *all =
        fanout_jscan_valid(kept->text, kept->len, &s_arena, err, sizeof err);
    FUZZ_CHECK(all != NULL, "fanout_jscan_valid refused an element: %s", err);
    int r1 = fanout_jdup(full, &s_arena, p1, sizeof p1);
    int r2 = fanout_jdup(all, &s_arena, p2, sizeof p2);
    FUZZ_CHECK(r1 == r2 && (r1 != 1 || strcmp(p1, p2) == 0),
               "skip mode: repeated name %d \"%s\", with nodes %d \"%s\"", r1, p1, r2, p2);
    const struct fanout_jnode *d = fanout_jget(full, "dynamodb");
    for (const struct fanout_jnode *m = d && d->type == FANOUT_J_OBJECT ? d->child : NULL;
         m; m = m->next) {
        if (m->child || !m->count)
            continue;
        const struct fanout_jnode *again =
            fanout_jscan_valid(m->text, m->len, &s_arena, err, sizeof err);
        FUZZ_CHECK(again && again->count == m->count && s_inside(again) == m->inside,
                   "skipped value scanned again differs");
        if (m->distinct)
            FUZZ_CHECK(fanout_jdup(again, &s_arena, p1, sizeof p1) == 0,
                       "skipped value proved distinct repeats \"%s\"", p1);
    }
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
        if (size < 4096 && (root->type == FANOUT_J_OBJECT || root->type == FANOUT_J_ARRAY))
            s_rescan(root);
    } else {
        FUZZ_CHECK(err[0] != 0, "refused without a reason");
    }
    for (int depth = 0; depth < 3; depth++) {
        char err2[256];
        const struct fanout_jnode *shallow = fanout_jscan_shallow(
            (const char *)data, size, depth, &s_arena, err2, sizeof err2);
        FUZZ_CHECK((shallow != NULL) == (root != NULL),
                   "the shallow scan (depth %d) %s what the full scan %s", depth,
                   shallow ? "accepts" : "refuses", root ? "accepts" : "refuses");
        if (root)
            s_same_tree(root, shallow, depth);
        else
            FUZZ_CHECK(strcmp(err, err2) == 0, "the shallow scan's error differs: %s / %s",
                       err, err2);
    }
    /* the skip mode of fanout_jscan_each: the same inputs accepted, the same
     * errors */
    {
        static const char *const images[] = {"NewImage", "OldImage", NULL};
        static struct fanout_arena scratch;
        char err3[256];
        const struct fanout_jnode *skipped = fanout_jscan_each_skip(
            (const char *)data, size, "Records", "dynamodb", images, &s_arena, &scratch,
            s_skip_each, NULL, err3, sizeof err3);
        FUZZ_CHECK((skipped != NULL) == (root != NULL),
                   "the skip scan %s what the full scan %s",
                   skipped ? "accepts" : "refuses", root ? "accepts" : "refuses");
        if (!root)
            FUZZ_CHECK(strcmp(err, err3) == 0, "the skip scan's error differs: %s / %s",
                       err, err3);
        fanout_arena_reset(&scratch);
    }
    /* jansson stops reading at a NUL byte ("null\0x" is null to it): no
     * comparison then */
    json_t *j = NULL;
    if (!memchr(data, 0, size))
        j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (j && s_depth(data, size) < 500) {
        FUZZ_CHECK(root != NULL, "jansson reads it, the scanner refuses: %s", err);
        s_same(root, j);
    }
    json_decref(j);
    /* a small error buffer is truncated, never overrun */
    char tiny[8];
    (void)fanout_jscan((const char *)data, size, &s_arena, tiny, sizeof tiny);
    fanout_arena_reset(&s_arena);
    return 0;
}
