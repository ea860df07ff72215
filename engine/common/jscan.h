/* A small validating JSON parser into the per-invocation arena, for Lambda
 * events: it keeps each value's text span, so strings are unescaped only
 * when read and a record's JSON is available without printing it again.
 * Several times faster than building a jansson tree for a large event. */
#ifndef FANOUT_JSCAN_H
#define FANOUT_JSCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/util.h"
#include "fanout/swar.h"

#if FANOUT_HAVE_SSE2
#include <emmintrin.h>
#endif

enum fanout_jtype {
    FANOUT_J_OBJECT = 1,
    FANOUT_J_ARRAY,
    FANOUT_J_STRING,
    FANOUT_J_NUMBER,
    FANOUT_J_TRUE,
    FANOUT_J_FALSE,
    FANOUT_J_NULL,
};

enum {
    FANOUT_J_HAS_NUMBER = 1,       /* a number */
    FANOUT_J_HAS_ESCAPED_NAME = 2, /* a member name with a backslash escape */
};

/* 64 bytes: an event of 8,000 records has about 130,000 of these. */
struct fanout_jnode {
    enum fanout_jtype type;
    unsigned char escaped;     /* a string with backslash escapes */
    unsigned char key_escaped; /* the member name has backslash escapes */
    /* 1: the scan saw that no object in this value repeats a member name
     * (fanout_jdup then has nothing to look for); 0: not known */
    unsigned char distinct;
    /* a value fanout_jscan_each_skip scanned without nodes below it:
     * FANOUT_J_HAS_* found anywhere inside; else 0 */
    unsigned char inside;
    size_t count;     /* members or elements */
    const char *text; /* the value's text; for a string, inside the quotes */
    size_t len;
    const char *key; /* member name inside the quotes (raw), or NULL */
    size_t key_len;
    struct fanout_jnode *child; /* first member or element */
    struct fanout_jnode *next;  /* next sibling */
};

/* The first byte at or after `p` that is not JSON whitespace, or `end`.
 * Most tokens follow their separator at once or after one space (as
 * json.dumps and many writers put ", " and ": "): both without the loop.
 * Shared by the scanner and the DynamoDB converter's pass over an image. */
static inline const char *fanout_jws(const char *p, const char *end)
{
    if (p < end && (unsigned char)*p > ' ')
        return p;
    if (end - p >= 2 && *p == ' ' && (unsigned char)p[1] > ' ')
        return p + 1;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* The first '"' or '\\' at or after `q`, or `end`: 16 bytes at a time
 * with SSE2, else 8 (fanout_swar_quote). A string's end in text already
 * validated (its escapes stepped over by the caller). */
static inline const char *fanout_jquote(const char *q, const char *end)
{
#if FANOUT_HAVE_SSE2
    const __m128i quote16 = _mm_set1_epi8('"'), slash16 = _mm_set1_epi8('\\');
    while (end - q >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
        unsigned mask = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote16), _mm_cmpeq_epi8(v, slash16)));
        if (mask)
            return q + __builtin_ctz(mask);
        q += 16;
    }
#else
    while (end - q >= 8) {
        uint64_t v;
        memcpy(&v, q, 8);
        uint64_t marks = fanout_swar_quote(v);
        if (marks)
            return q + fanout_swar_first(marks);
        q += 8;
    }
#endif
    while (q < end && *q != '"' && *q != '\\')
        q++;
    return q;
}

/* The closing quote of a string of printable ASCII without escapes whose
 * text starts at `q`, or NULL for any other string (or one whose closing
 * quote is not in a whole block of 16 bytes before `end`: the same answer
 * in both modes): a fast path for text not validated yet, which the full
 * scan then reads. Shared by the scanner's quick pass over a DynamoDB image
 * and the converter's (fanout_ddb_image_shape). 16 bytes at a time with
 * SSE2, else as two words (fanout_swar_jstop), as arm64 builds it. */
static inline const char *fanout_jplain_end(const char *q, const char *end)
{
#if FANOUT_HAVE_SSE2
    while (end - q >= 16) {
        const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
        const __m128i stop =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                      _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                         _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
        unsigned mask = (unsigned)_mm_movemask_epi8(stop);
        if (mask) {
            q += __builtin_ctz(mask);
            return *q == '"' ? q : NULL;
        }
        q += 16;
    }
#else
    while (end - q >= 16) {
        uint64_t a, b;
        memcpy(&a, q, 8);
        memcpy(&b, q + 8, 8);
        const uint64_t stop_a = fanout_swar_jstop(a), stop_b = fanout_swar_jstop(b);
        if (stop_a | stop_b) {
            q += stop_a ? fanout_swar_first(stop_a) : 8 + fanout_swar_first(stop_b);
            return *q == '"' ? q : NULL;
        }
        q += 16;
    }
#endif
    return NULL;
}

/* Parse one JSON document (RFC 8259, whitespace around allowed). Returns the
 * root, or NULL with err giving line, column and what was expected. The
 * nodes point into `text`, which must outlive them. */
struct fanout_jnode *fanout_jscan(const char *text, size_t len, struct fanout_arena *arena,
                                  char *err, size_t err_len);

/* The same, validating the whole document, but with nodes only for the
 * values at most `keep_depth` levels down (the root is level 0): a deeper
 * container keeps its text, len and count, and child NULL (scan its text
 * again for its members). An event's records (level 2) are so scanned
 * one at a time into a scratch arena, not all at once. */
struct fanout_jnode *fanout_jscan_shallow(const char *text, size_t len, int keep_depth,
                                          struct fanout_arena *arena, char *err,
                                          size_t err_len);

/* fanout_jscan_shallow with keep_depth 2, in one pass: each element of
 * the array that is the root object's member `key` (as fanout_jget finds
 * it, the first one) gets its nodes in full in `scratch` (reset before
 * each) and is handed to `each` with its shallow node (child NULL, valid
 * during the call only: the array keeps its count, no node of its
 * elements) as soon as it is scanned, before the scan goes on. Validation and errors are
 * those of fanout_jscan_shallow: when it fails, elements before the error have been handed
 * over already. */
typedef void (*fanout_jeach_fn)(void *ctx, const struct fanout_jnode *kept,
                                const struct fanout_jnode *full);
struct fanout_jnode *fanout_jscan_each(const char *text, size_t len, const char *key,
                                       struct fanout_arena *arena,
                                       struct fanout_arena *scratch, fanout_jeach_fn each,
                                       void *ctx, char *err, size_t err_len);

/* fanout_jscan_each, but the members named in `skip_names` (NULL-terminated)
 * of an element's member `skip_in` (names as written, without escapes),
 * e.g. a DynamoDB record's dynamodb.NewImage, are validated (the same
 * errors) with no nodes below them: their own node keeps its text, count
 * and `distinct`, child NULL, and `inside` says whether they hold numbers
 * or escaped member names. fanout_jdup scans such a value again when its
 * names are not known to be distinct. */
struct fanout_jnode *
fanout_jscan_each_skip(const char *text, size_t len, const char *key, const char *skip_in,
                       const char *const *skip_names, struct fanout_arena *arena,
                       struct fanout_arena *scratch, fanout_jeach_fn each, void *ctx,
                       char *err, size_t err_len);

/* fanout_jscan_each_skip, but an object that is the value of one of
 * skip_names is offered to `shape` first, with that name's index in
 * skip_names (`which`), at its '{' (`end`: the end of the text): `shape` returns the end of
 * the object with its member count in *count when it accepts it, or NULL to have it scanned
 * as usual. It must accept only what the scan's own quick pass over a DynamoDB image
 * accepts (valid JSON, no number, no escape, no repeated name: the node
 * then says so), so that the scan's answer and its errors stay the same. */
typedef const char *(*fanout_jshape_fn)(void *ctx, int which, const char *p,
                                        const char *end, size_t *count);
struct fanout_jnode *
fanout_jscan_each_skip_shape(const char *text, size_t len, const char *key,
                             const char *skip_in, const char *const *skip_names,
                             fanout_jshape_fn shape, void *shape_ctx,
                             struct fanout_arena *arena, struct fanout_arena *scratch,
                             fanout_jeach_fn each, void *ctx, char *err, size_t err_len);

/* fanout_jscan of a part of a document fanout_jscan or fanout_jscan_shallow
 * accepted (a value's text span): its strings are not checked again (UTF-8,
 * escapes), only their ends found. Not for text from anywhere else. */
struct fanout_jnode *fanout_jscan_valid(const char *text, size_t len,
                                        struct fanout_arena *arena, char *err,
                                        size_t err_len);

/* The member `key` of an object (keys compared after unescaping), or NULL.
 * fanout_jget_n takes the key's length; fanout_jget of a string literal
 * has it counted at compile time. */
const struct fanout_jnode *fanout_jget(const struct fanout_jnode *obj, const char *key);
const struct fanout_jnode *fanout_jget_n(const struct fanout_jnode *obj, const char *key,
                                         size_t key_len);
#define fanout_jget(obj, key) fanout_jget_n((obj), (key), strlen(key))

/* A string's value, unescaped into the arena (NUL-terminated; *len set when
 * not NULL; embedded NULs possible). NULL when `n` is not a string. */
const char *fanout_jstr(const struct fanout_jnode *n, struct fanout_arena *arena,
                        size_t *len);

/* Duplicate member names: the first member name that appears twice in one
 * object, in `n` or anywhere inside it (names compared after unescaping).
 * Returns 1 with its path written to `path` (e.g. kinesis.data or
 * Records[2].kinesis), 0 when every object's names are distinct, -1 when
 * out of memory. Small objects are compared pairwise, larger ones hashed:
 * linear in the size of the value. */
int fanout_jdup(const struct fanout_jnode *n, struct fanout_arena *arena, char *path,
                size_t path_len);
/* The same for the members of `obj` only, not the objects inside it. */
int fanout_jdup_members(const struct fanout_jnode *obj, struct fanout_arena *arena,
                        char *name, size_t name_len);

#endif
