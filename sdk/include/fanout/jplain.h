/*
 * fanout plain-JSON reader: the common answers of the AWS JSON services
 * read straight from the text, without a tree. It accepts only a subset of
 * JSON whose values need no decoding: strings of printable ASCII without
 * escapes (a string's value is then its text), null, true, false, and
 * integers 0|[1-9][0-9]{0,17}; objects whose member names are such strings
 * and all distinct. Anything else (an escape, a byte outside printable
 * ASCII, a fraction, a nested value where a plain one is read) is "not
 * plain": the caller then reads the answer with its full parser, so that
 * for every text this reader accepts, the result is the full parser's.
 * Nothing is read past `end`; nothing is allocated.
 *
 * Part of the SDK library (fanout-sdk).
 */
#ifndef FANOUT_JPLAIN_H
#define FANOUT_JPLAIN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum fanout_jplain_type {
    FANOUT_JPLAIN_STRING = 1,
    FANOUT_JPLAIN_NULL,
    FANOUT_JPLAIN_TRUE,
    FANOUT_JPLAIN_FALSE,
    FANOUT_JPLAIN_INT,
};

/* A plain value; for a string, its text inside the quotes. */
struct fanout_jplain {
    enum fanout_jplain_type type;
    const char *p;
    size_t n;
    long long num; /* FANOUT_JPLAIN_INT */
};

/* One member of an object read by fanout_jplain_object. */
struct fanout_jplain_member {
    const char *name;
    size_t name_len;
    struct fanout_jplain value;
};

/* The first position at or after p that is not JSON whitespace. */
const char *fanout_jplain_ws(const char *p, const char *end);

/* A plain string at p (its opening quote): the position after it, or NULL. */
const char *fanout_jplain_string(const char *p, const char *end, const char **s, size_t *n);

/* A plain value at p: the position after it, or NULL. */
const char *fanout_jplain_value(const char *p, const char *end, struct fanout_jplain *v);

/* A member name and its colon at p (whitespace around skipped): the
 * position of the value, or NULL. */
const char *fanout_jplain_name(const char *p, const char *end, const char **name,
                               size_t *name_len);

/* After a member or an element at p: 1 and *p past a comma (and the
 * whitespace after it) when another follows, 0 and *p past `close` when
 * the container ends, -1 otherwise. */
int fanout_jplain_next(const char **p, const char *end, char close);

/* An object at p of at most `max` members with plain values and distinct
 * names: the position after it with m[0..*count) its members, or NULL. */
const char *fanout_jplain_object(const char *p, const char *end,
                                 struct fanout_jplain_member *m, size_t max, size_t *count);

/* Whether `name` (name_len bytes) is the NUL-terminated `s`. */
int fanout_jplain_is(const char *name, size_t name_len, const char *s);

/* Whether `name` is among m[0..count) (names compared as bytes); used to
 * refuse a name given twice. */
int fanout_jplain_seen(const struct fanout_jplain_member *m, size_t count, const char *name,
                       size_t name_len);

#ifdef __cplusplus
}
#endif

#endif
