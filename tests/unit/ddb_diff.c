/* The conversion from the event's scanner nodes (engine/core/ddb.c) against
 * the former one through jansson trees (ddb_ref.c), on the same JSON text
 * and as the event reader feeds them: the old reader loaded Keys and the
 * NewImage with json_loadb(JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES), the
 * new one scans them, refuses repeated names (fanout_jdup) and what jansson
 * could not read (fanout_ddb_readable). Both must accept the same texts and
 * then write the same bytes and the same errors: images in both modes,
 * keys, and the jansson-tree entry points too. */
#include "ddb_diff.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/ddb.h"
#include "common/jscan.h"
#include "common/util.h"
#include "ddb_ref.h"

int ddb_diff_object(const char *text, const char *end, size_t count)
{
    json_t *j = json_loadb(text, (size_t)(end - text), JSON_REJECT_DUPLICATES, NULL);
    int ok = json_is_object(j) && json_object_size(j) == count;
    json_decref(j);
    return ok;
}

static int s_differ(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_differ(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    return -1;
}

/* One conversion both ways: rc, bytes and error text equal. */
static int s_same(const char *what, int rc_old, const struct fanout_sbuf *old,
                  const char *err_old, int rc_new, const struct fanout_sbuf *new,
                  const char *err_new, char *why, size_t why_len)
{
    if (rc_old != rc_new)
        return s_differ(why, why_len, "%s: rc %d before, %d now (errors \"%s\" / \"%s\")",
                        what, rc_old, rc_new, err_old, err_new);
    if (strcmp(err_old, err_new) != 0)
        return s_differ(why, why_len, "%s: error \"%s\" before, \"%s\" now", what, err_old,
                        err_new);
    if (old->len != new->len || (old->len && memcmp(old->bytes, new->bytes, old->len) != 0))
        return s_differ(why, why_len, "%s: \"%.*s\" before, \"%.*s\" now", what,
                        (int)(old->len > 300 ? 300 : old->len),
                        old->bytes ? (const char *)old->bytes : "",
                        (int)(new->len > 300 ? 300 : new->len),
                        new->bytes ? (const char *)new->bytes : "");
    return 0;
}

/* Text an event has after an image or Keys (the rest of the record and
 * more): the strict readers find no string's end within 16 bytes of the
 * text's end, and a shape seen before is matched only with 16 bytes after
 * the image, so at the very end of the text they always give up. */
#define S_TAIL "}}]}                "

/* `text` (`len` bytes) with each S, N (and `keys`, B) value of an
 * AttributeValue replaced by a plain one ("v", "1", "QQ==") and each
 * BOOL's true and false swapped, into `out`, S_TAIL after it: an image or
 * Keys of the same shape with other values, so that one kept from it is
 * met by `text` and read piece by piece. */
static void s_variant_of(const struct fanout_jnode *v, int keys, const char **from,
                         struct fanout_sbuf *out)
{
    if (v->type != FANOUT_J_OBJECT && v->type != FANOUT_J_ARRAY)
        return;
    const struct fanout_jnode *c = v->child;
    if (v->type == FANOUT_J_OBJECT && v->count == 1 && !c->key_escaped && c->key_len &&
        c->key_len <= 4) {
        const char *with = NULL;
        if (c->type == FANOUT_J_STRING && c->key_len == 1)
            with = c->key[0] == 'S'           ? "v"
                   : c->key[0] == 'N'         ? "1"
                   : keys && c->key[0] == 'B' ? "QQ=="
                                              : NULL;
        else if ((c->type == FANOUT_J_TRUE || c->type == FANOUT_J_FALSE) &&
                 c->key_len == 4 && memcmp(c->key, "BOOL", 4) == 0)
            with = c->type == FANOUT_J_TRUE ? "false" : "true";
        if (with) {
            fanout_sbuf_put(out, *from, (size_t)(c->text - *from));
            fanout_sbuf_puts(out, with);
            *from = c->text + c->len;
            return;
        }
    }
    for (; c; c = c->next)
        s_variant_of(c, keys, from, out);
}

static void s_variant(const struct fanout_jnode *root, int keys, struct fanout_sbuf *out)
{
    const char *from = root->text;
    fanout_sbuf_reset(out);
    s_variant_of(root, keys, &from, out);
    fanout_sbuf_put(out, from, (size_t)(root->text + root->len - from));
    fanout_sbuf_puts(out, S_TAIL);
}

/* A piece-by-piece reading (`round` 0, 1: with the shapes of the texts
 * before kept, 2, 3: with the variant's) that wrote `f`, not `e`. */
static int s_seen_differ(char *why, size_t why_len, const char *what, int round,
                         const struct fanout_sbuf *f, const struct fanout_sbuf *e,
                         int end_right)
{
    return s_differ(
        why, why_len, "%s (a shape seen before%s): \"%.*s\" (end %s), not \"%.*s\"", what,
        round < 2 ? "" : ", its variant's", (int)(f->len > 300 ? 300 : f->len),
        f->bytes ? (const char *)f->bytes : "", end_right ? "right" : "wrong",
        (int)(e->len > 300 ? 300 : e->len), e->bytes ? (const char *)e->bytes : "");
}

/* The scan's strict conversion (fanout_jscan_each_skip_shape's hook in the
 * event reader): when it takes the image, the same bytes as the reference
 * after its "p:" prefix, to the image's end, with its attribute count.
 * `tail`: the image followed by S_TAIL, as in an event. */
static int s_same_shape_at(int ra, const struct fanout_sbuf *a,
                           const struct fanout_jnode *root, const char *text,
                           const char *end, char *why, size_t why_len)
{
    struct fanout_sbuf e = {0};
    size_t count = 0;
    const char *image_end = text + root->len;
    const char *q = fanout_ddb_image_shape(text, end, &count, &e);
    int rc = 0;
    if (q && (ra != 0 || q != image_end || count != root->count || e.len + 2 != a->len ||
              memcmp(e.bytes, a->bytes + 2, e.len) != 0))
        rc = s_differ(
            why, why_len,
            "image (strict shape%s): \"%.*s\" (end %s, count %zu of %zu), "
            "reference rc %d \"%.*s\"",
            end == image_end ? "" : ", text after it", (int)(e.len > 300 ? 300 : e.len),
            e.bytes ? (const char *)e.bytes : "", q == image_end ? "right" : "wrong", count,
            root->count, ra, (int)(a->len > 300 ? 300 : a->len), (const char *)a->bytes);
    /* fanout_ddb_image_seen, with the shapes of the texts before kept (so
     * texts of one shape with other values, as a fuzzer makes them, meet
     * one) and then with the shape of this text's variant kept (its own
     * values read piece by piece): the same answer, reading only and
     * converting, before and after this text's shape is kept. The first
     * kept for the process: still reachable at its end, not a leak. */
    static struct fanout_ddb_seen *kept;
    if (!kept)
        kept = fanout_ddb_seen_new();
    struct fanout_ddb_seen *fresh = fanout_ddb_seen_new();
    struct fanout_sbuf f = {0}, v = {0};
    if (fresh && end != image_end) {
        s_variant(root, 0, &v);
        size_t c;
        fanout_ddb_image_seen(fresh, v.p, v.p + v.len, &c, &f);
    }
    for (int round = 0; rc == 0 && kept && fresh && round < 4; round++) {
        struct fanout_ddb_seen *seen = round < 2 ? kept : fresh;
        size_t c1 = 0;
        const char *r = fanout_ddb_image_seen(seen, text, end, &c1, NULL);
        /* reading only, an image whose numbers fanout_ddb_image_shape
         * refuses may be taken: then as the scan takes it */
        if (r && (q ? r != q || c1 != count : !ddb_diff_object(text, r, c1)))
            rc = s_differ(why, why_len, "image (a shape seen before, read only): end %s",
                          r == q ? "right, count wrong" : "wrong");
        r = fanout_ddb_image_seen(seen, text, end, &c1, &f);
        if (rc == 0 && (r != q || (q && (c1 != count || f.len != e.len ||
                                         memcmp(f.bytes, e.bytes, e.len) != 0))))
            rc = s_seen_differ(why, why_len, "image", round, &f, &e, r == q);
    }
    fanout_ddb_seen_free(fresh);
    fanout_sbuf_free(&f);
    fanout_sbuf_free(&v);
    fanout_sbuf_free(&e);
    return rc;
}

/* fanout_ddb_keys_seen against fanout_ddb_keys_shape and the reference
 * key (`ra`, `a` after its "p:" prefix), with the shape of the Keys
 * before kept and then that of this text's variant (as s_same_shape_at
 * does for images). */
static int s_same_keys_at(int ra, const struct fanout_sbuf *a,
                          const struct fanout_jnode *root, const char *text,
                          const char *end, char *why, size_t why_len)
{
    static struct fanout_ddb_seen *kept;
    if (!kept)
        kept = fanout_ddb_seen_new();
    struct fanout_ddb_seen *fresh = fanout_ddb_seen_new();
    struct fanout_sbuf e = {0}, f = {0}, v = {0};
    size_t c0 = 0, c1 = 0;
    const char *q = fanout_ddb_keys_shape(text, end, &c0, &e);
    int rc = 0;
    if (q && (ra != 0 || q != text + root->len || c0 != root->count ||
              e.len + 2 != a->len || memcmp(e.bytes, a->bytes + 2, e.len) != 0))
        rc =
            s_differ(why, why_len,
                     "keys (strict shape): \"%.*s\" (end %s), reference rc %d \"%.*s\"",
                     (int)(e.len > 300 ? 300 : e.len), e.bytes ? (const char *)e.bytes : "",
                     q == text + root->len ? "right" : "wrong", ra,
                     (int)(a->len > 300 ? 300 : a->len), (const char *)a->bytes);
    if (fresh && end != text + root->len) {
        s_variant(root, 1, &v);
        fanout_ddb_keys_seen(fresh, v.p, v.p + v.len, &c1, &f);
    }
    for (int round = 0; rc == 0 && kept && fresh && round < 4; round++) {
        const char *r = fanout_ddb_keys_seen(round < 2 ? kept : fresh, text, end, &c1, &f);
        if (r != q ||
            (q && (c1 != c0 || f.len != e.len || memcmp(f.bytes, e.bytes, e.len))))
            rc = s_seen_differ(why, why_len, "keys", round, &f, &e, r == q);
        else if (!q && f.len)
            rc = s_differ(why, why_len,
                          "keys (a shape seen before): refused, %zu bytes left", f.len);
    }
    fanout_ddb_seen_free(fresh);
    fanout_sbuf_free(&e);
    fanout_sbuf_free(&f);
    fanout_sbuf_free(&v);
    return rc;
}

/* s_same_shape_at (images) or s_same_keys_at (`keys`) on the text as it
 * is, then followed by S_TAIL. */
static int s_same_strict(int keys, int ra, const struct fanout_sbuf *a,
                         const struct fanout_jnode *root, char *why, size_t why_len)
{
    int (*same)(int, const struct fanout_sbuf *, const struct fanout_jnode *, const char *,
                const char *, char *, size_t) = keys ? s_same_keys_at : s_same_shape_at;
    int rc = same(ra, a, root, root->text, root->text + root->len, why, why_len);
    struct fanout_sbuf t = {0};
    if (rc == 0 && fanout_sbuf_put(&t, root->text, root->len) == 0 &&
        fanout_sbuf_puts(&t, S_TAIL) == 0)
        rc = same(ra, a, root, t.p, t.p + t.len, why, why_len);
    fanout_sbuf_free(&t);
    return rc;
}

static int s_compare(const json_t *j, const struct fanout_jnode *root, char *why,
                     size_t why_len)
{
    static const char *const names[] = {"image (pass-through)", "image (convertDDB)",
                                        "key"};
    for (int k = 0; k < 3; k++) {
        struct fanout_sbuf a = {0}, b = {0}, c = {0}, d = {0};
        char ea[512], eb[512], ec[512], ed[512];
        /* a prefix: what is appended goes after it, and a failure keeps it */
        fanout_sbuf_puts(&a, "p:");
        fanout_sbuf_puts(&b, "p:");
        fanout_sbuf_puts(&c, "p:");
        fanout_sbuf_puts(&d, "p:");
        int ra, rb, rc, rd = 0;
        ed[0] = 0;
        if (k < 2) {
            struct fanout_arena nodes = {0};
            ra = fanout_ddb_ref_image_to_json(j, k, &a, ea, sizeof ea);
            rb = fanout_ddb_image_write(root, k, &b, eb, sizeof eb);
            rc = fanout_ddb_image_to_json(j, k, &c, ec, sizeof ec);
            /* as the event reader converts: from the image's text */
            rd = fanout_ddb_image_text(root->text, root->len, k, &nodes, &d, ed, sizeof ed);
            fanout_arena_free(&nodes);
        } else {
            ra = fanout_ddb_ref_key(j, &a, ea, sizeof ea);
            rb = fanout_ddb_key_write(root, &b, eb, sizeof eb);
            rc = fanout_ddb_key(j, &c, ec, sizeof ec);
            /* as the event reader writes the key: from the text of Keys */
            if (root->type == FANOUT_J_OBJECT && root->count) {
                struct fanout_arena nodes = {0};
                rd = fanout_ddb_key_text(root->text, root->len, &nodes, &d, ed, sizeof ed);
                fanout_arena_free(&nodes);
            } else {
                rd = fanout_ddb_key_write(root, &d, ed, sizeof ed);
            }
        }
        char what[64];
        snprintf(what, sizeof what, "%s from nodes", names[k]);
        int same = s_same(what, ra, &a, ea, rb, &b, eb, why, why_len);
        snprintf(what, sizeof what, "%s from a jansson tree", names[k]);
        if (same == 0)
            same = s_same(what, ra, &a, ea, rc, &c, ec, why, why_len);
        snprintf(what, sizeof what, "%s from the text", names[k]);
        if (same == 0)
            same = s_same(what, ra, &a, ea, rd, &d, ed, why, why_len);
        if (same == 0 && k >= 1)
            same = s_same_strict(k == 2, ra, &a, root, why, why_len);
        fanout_sbuf_free(&a);
        fanout_sbuf_free(&b);
        fanout_sbuf_free(&c);
        fanout_sbuf_free(&d);
        if (same != 0)
            return -1;
    }
    return 0;
}

int ddb_diff(const char *text, size_t len, char *why, size_t why_len)
{
    struct fanout_arena arena = {0};
    char err[256], path[160];
    int result = 0;
    const struct fanout_jnode *root = fanout_jscan(text, len, &arena, err, sizeof err);
    json_t *j = json_loadb(text, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
    if (root) {
        int dup = fanout_jdup(root, &arena, path, sizeof path);
        int reads = dup == 0 && fanout_ddb_readable(root);
        if (reads != (j != NULL))
            result = s_differ(why, why_len,
                              "jansson %s it, the scanner %s it (repeated name: %d)",
                              j ? "reads" : "refuses", reads ? "reads" : "refuses", dup);
        else if (j)
            result = s_compare(j, root, why, why_len) == 0 ? 1 : -1;
        else
            result = 1; /* both refuse: the record fails the same way */
    }
    json_decref(j);
    fanout_arena_free(&arena);
    return result;
}
