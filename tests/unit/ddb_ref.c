/* The DynamoDB conversion as it was before it read the event's scanner
 * nodes (engine/core/ddb.c at main 91e2563, through jansson trees), kept
 * unchanged as the reference of the differential checks (ddb_diff.c): only
 * the two entry points are renamed. Not built into fanout. */
#include "ddb_ref.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Limits from the DynamoDB Developer Guide: "Data types" (Number: up to 38
 * digits of precision, positive and negative magnitudes from 1E-130 to
 * 9.9999999999999999999999999999999999999E+125) and "Quotas" (nested
 * attribute depth: 32 levels). */
#define DDB_MAX_DEPTH         32
#define DDB_NUMBER_MAX_DIGITS 38
#define DDB_NUMBER_MAX_EXP    125
#define DDB_NUMBER_MIN_EXP    (-130)

#define DDB_TYPES "S, N, B, BOOL, NULL, M, L, SS, NS, BS"

/* Error text quotes at most this many bytes of a value from the event. */
#define DDB_QUOTE_MAX 64
/* Base64 is validated in chunks of this many characters (a multiple of 4),
 * so checking a large B value needs no allocation. */
#define DDB_B64_CHUNK 4096

/* Where a value sits in the image, kept on the stack while recursing and only
 * rendered (`a.b[2].c`) when an error is reported. */
struct s_path {
    const struct s_path *up;
    const char *key; /* NULL for a list or set index */
    size_t key_len;
    size_t index;
};

struct s_ctx {
    struct fanout_sbuf *out;
    char *err;
    size_t err_len;
    const char *what; /* "attribute" or "key attribute" */
};

/* The parts of a validated N string, as offsets into it. */
struct s_num {
    size_t int_start, int_len;   /* digits before the '.' */
    size_t frac_start, frac_len; /* digits after it */
    size_t exp_start;            /* the 'e' or 'E'; the string's length when absent */
};

/* ---- error text --------------------------------------------------------- */

/* Bounded appender for error text. */
struct s_text {
    char *p;
    size_t len, cap;
};

static void s_text_put(struct s_text *t, const char *s, size_t n)
{
    if (t->cap == 0)
        return;
    size_t room = t->cap - 1 - t->len;
    if (n > room)
        n = room;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}

/* Copy event text for an error message: control characters become '?', so a
 * message stays one printable line, and long text is cut (at a UTF-8
 * character boundary) with "...". */
static void s_text_quote(struct s_text *t, const char *s, size_t n)
{
    size_t take = n;
    if (take > DDB_QUOTE_MAX) {
        take = DDB_QUOTE_MAX;
        while (take > 0 && ((unsigned char)s[take] & 0xC0) == 0x80)
            take--;
    }
    for (size_t i = 0; i < take; i++) {
        char c = s[i];
        if ((unsigned char)c < 0x20 || c == 0x7f)
            c = '?';
        s_text_put(t, &c, 1);
    }
    if (take < n)
        s_text_put(t, "...", 3);
}

static void s_path_render(struct s_text *t, const struct s_path *p)
{
    if (!p)
        return;
    s_path_render(t, p->up);
    if (p->key) {
        if (p->up)
            s_text_put(t, ".", 1);
        s_text_quote(t, p->key, p->key_len);
    } else {
        char idx[32];
        int n = snprintf(idx, sizeof idx, "[%zu]", p->index);
        s_text_put(t, idx, (size_t)n);
    }
}

static int s_fail(struct s_ctx *c, const struct s_path *path, const char *fmt, ...)
    FANOUT_FMT(3, 4);

/* Write `<what> "<path>": <message>` to the caller's err; returns -1. */
static int s_fail(struct s_ctx *c, const struct s_path *path, const char *fmt, ...)
{
    if (!c->err || c->err_len == 0)
        return -1;
    struct s_text t = {c->err, 0, c->err_len};
    c->err[0] = 0;
    if (path) {
        s_text_put(&t, c->what, strlen(c->what));
        s_text_put(&t, " \"", 2);
        s_path_render(&t, path);
        s_text_put(&t, "\": ", 3);
    }
    if (t.len + 1 < t.cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t.p + t.len, t.cap - t.len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int s_oom(struct s_ctx *c)
{
    return s_fail(c, NULL, "out of memory");
}

/* A JSON value's kind, for "expected X, got Y". */
static const char *s_kind(const json_t *v)
{
    if (!v)
        return "nothing";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "an unknown value";
}

/* Quote up to DDB_QUOTE_MAX bytes of s into dst (for format arguments). */
static const char *s_quoted(char *dst, size_t dst_len, const char *s, size_t n)
{
    struct s_text t = {dst, 0, dst_len};
    dst[0] = 0;
    s_text_quote(&t, s, n);
    return dst;
}

/* ---- jansson helpers ---------------------------------------------------- */

/* jansson's iterator functions take a non-const object but do not modify it. */
static void *s_iter(const json_t *o)
{
    return json_object_iter((json_t *)o);
}

static void *s_iter_next(const json_t *o, void *it)
{
    return json_object_iter_next((json_t *)o, it);
}

static int s_type_is(const char *type, size_t type_len, const char *name)
{
    return type_len == strlen(name) && memcmp(type, name, type_len) == 0;
}

/* Check that av is an AttributeValue (an object with exactly one type key)
 * and return its type and value. */
static int s_unwrap(struct s_ctx *c, const json_t *av, const struct s_path *path,
                    const char **type, size_t *type_len, const json_t **val)
{
    if (!json_is_object(av))
        return s_fail(c, path,
                      "expected an AttributeValue object such as {\"S\": \"text\"}, got %s",
                      s_kind(av));
    size_t n = json_object_size(av);
    if (n == 0)
        return s_fail(
            c, path,
            "empty AttributeValue (expected exactly one type key, one of " DDB_TYPES ")");
    void *it = s_iter(av);
    if (n > 1) {
        void *it2 = s_iter_next(av, it);
        char q1[DDB_QUOTE_MAX + 8], q2[DDB_QUOTE_MAX + 8];
        return s_fail(
            c, path,
            "AttributeValue has %zu type keys (\"%s\", \"%s\"%s); expected exactly one", n,
            s_quoted(q1, sizeof q1, json_object_iter_key(it), json_object_iter_key_len(it)),
            s_quoted(q2, sizeof q2, json_object_iter_key(it2),
                     json_object_iter_key_len(it2)),
            n > 2 ? ", ..." : "");
    }
    *type = json_object_iter_key(it);
    *type_len = json_object_iter_key_len(it);
    *val = json_object_iter_value(it);
    return 0;
}

/* ---- numbers ------------------------------------------------------------ */

/* The grammar accepted is DynamoDB's own (what its API accepts on input):
 *
 *     [+-] ( digits [ "." [digits] ] | "." digits ) [ (e|E) [+-] digits ]
 *
 * with at most 38 significant digits (leading and trailing zeros do not
 * count) and, unless the value is zero, a magnitude from 1E-130 to
 * 9.99...E+125. DynamoDB accepts "+5", "5.", ".5", "0001.23", "1e+5", "0e1000"
 * (ScyllaDB's Alternator test_number.py and dynoxide's number tests, both
 * captured against real DynamoDB) and rejects "NaN", "Infinity", "1e",
 * "+e2", "1.2.3", "++5" and surrounding spaces. Streams normally carry the
 * stored, normalised form ("5", "0.5", "7"), but events built by hand, by
 * tests or by emulators may carry the input forms, and they mean the same
 * number, so we accept them too. */
static int s_number_check(struct s_ctx *c, const struct s_path *path, const char *what,
                          const char *s, size_t n, struct s_num *num)
{
    char q[DDB_QUOTE_MAX + 8];
    size_t i = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    num->int_start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    num->int_len = i - num->int_start;
    num->frac_start = i;
    num->frac_len = 0;
    if (i < n && s[i] == '.') {
        i++;
        num->frac_start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        num->frac_len = i - num->frac_start;
    }
    int ok = num->int_len + num->frac_len > 0;
    long long exp = 0;
    num->exp_start = n;
    if (ok && i < n && (s[i] == 'e' || s[i] == 'E')) {
        num->exp_start = i++;
        int neg = 0;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            neg = s[i++] == '-';
        size_t d0 = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (exp < 1000000000LL) /* saturate: far outside the range anyway */
                exp = exp * 10 + (s[i] - '0');
            i++;
        }
        ok = i > d0;
        if (neg)
            exp = -exp;
    }
    if (!ok || i != n)
        return s_fail(
            c, path,
            "%s value \"%s\" is not a number (expected [+-]digits[.digits][e[+-]digits])",
            what, s_quoted(q, sizeof q, s, n));

    /* Significant digits: from the first non-zero digit to the last one,
     * across the '.'. */
    size_t total = num->int_len + num->frac_len;
    size_t first = total, last = 0;
    for (size_t k = 0; k < total; k++) {
        char d = k < num->int_len ? s[num->int_start + k]
                                  : s[num->frac_start + (k - num->int_len)];
        if (d != '0') {
            if (first == total)
                first = k;
            last = k;
        }
    }
    if (first == total)
        return 0; /* zero, whatever its exponent */
    size_t digits = last - first + 1;
    if (digits > DDB_NUMBER_MAX_DIGITS)
        return s_fail(
            c, path,
            "%s value \"%s\" has %zu significant digits (DynamoDB allows at most %d)", what,
            s_quoted(q, sizeof q, s, n), digits, DDB_NUMBER_MAX_DIGITS);
    /* The exponent of the first significant digit in scientific notation. */
    long long adjusted = (long long)num->int_len - 1 - (long long)first + exp;
    if (adjusted > DDB_NUMBER_MAX_EXP)
        return s_fail(c, path,
                      "%s value \"%s\" is too large (DynamoDB's largest magnitude is "
                      "9.9999999999999999999999999999999999999E+125)",
                      what, s_quoted(q, sizeof q, s, n));
    if (adjusted < DDB_NUMBER_MIN_EXP)
        return s_fail(
            c, path,
            "%s value \"%s\" is too small (DynamoDB's smallest non-zero magnitude is "
            "1E-130)",
            what, s_quoted(q, sizeof q, s, n));
    return 0;
}

/* Write a checked N string as a JSON number, changing only what JSON does not
 * allow, so every digit DynamoDB sent is kept:
 *   - a leading '+' is dropped                       "+5"   -> "5"
 *   - leading zeros of the integer part are dropped,
 *     keeping one before the '.'                     "007"  -> "7", "00.5" -> "0.5"
 *   - a missing integer part becomes "0"             ".5"   -> "0.5"
 *   - a '.' with no digits after it is dropped       "5."   -> "5"
 * Trailing zeros ("1.50"), "-0", and the exponent exactly as sent ("1E+05")
 * are valid JSON and kept. */
static int s_number_emit(struct s_ctx *c, const char *s, size_t n, const struct s_num *num)
{
    struct fanout_sbuf *out = c->out;
    if (s[0] == '-' && fanout_sbuf_putc(out, '-') != 0)
        return s_oom(c);
    size_t skip = 0;
    while (skip + 1 < num->int_len && s[num->int_start + skip] == '0')
        skip++;
    int rc = num->int_len
                 ? fanout_sbuf_put(out, s + num->int_start + skip, num->int_len - skip)
                 : fanout_sbuf_putc(out, '0');
    if (rc == 0 && num->frac_len) {
        rc = fanout_sbuf_putc(out, '.');
        if (rc == 0)
            rc = fanout_sbuf_put(out, s + num->frac_start, num->frac_len);
    }
    if (rc == 0 && num->exp_start < n)
        rc = fanout_sbuf_put(out, s + num->exp_start, n - num->exp_start);
    return rc == 0 ? 0 : s_oom(c);
}

/* ---- base64 ------------------------------------------------------------- */

/* Strict base64 check (util's decoder), chunk by chunk. Returns 0, or -1 with
 * *bad_at the offset of the first bad character (n for a bad length). */
static int s_base64_check(const char *s, size_t n, size_t *bad_at)
{
    uint8_t tmp[DDB_B64_CHUNK / 4 * 3 + 3];
    if (n % 4 != 0) {
        *bad_at = n;
        return -1;
    }
    for (size_t off = 0; off < n; off += DDB_B64_CHUNK) {
        size_t len = n - off < DDB_B64_CHUNK ? n - off : DDB_B64_CHUNK;
        if (off + len < n && s[off + len - 1] == '=') {
            /* padding is only allowed at the very end of the value */
            *bad_at = off + len - (s[off + len - 2] == '=' ? 2 : 1);
            return -1;
        }
        size_t bad = 0;
        if (fanout_base64_decode(s + off, len, tmp, &bad) < 0) {
            *bad_at = off + bad;
            return -1;
        }
    }
    return 0;
}

static int s_base64_validate(struct s_ctx *c, const struct s_path *path, const char *what,
                             const char *s, size_t n)
{
    size_t bad = 0;
    if (s_base64_check(s, n, &bad) == 0)
        return 0;
    if (bad >= n)
        return s_fail(c, path,
                      "%s value is not valid base64: length %zu is not a multiple of 4",
                      what, n);
    char ch[8];
    unsigned char b = (unsigned char)s[bad];
    if (b >= 0x20 && b < 0x7f)
        snprintf(ch, sizeof ch, "'%c'", b);
    else
        snprintf(ch, sizeof ch, "0x%02x", b);
    return s_fail(c, path, "%s value is not valid base64: unexpected %s at offset %zu",
                  what, ch, bad);
}

/* ---- plain JSON --------------------------------------------------------- */

static int s_emit_value(struct s_ctx *c, const json_t *av, const struct s_path *path,
                        int depth);

static int s_emit_string(struct s_ctx *c, const json_t *v)
{
    if (fanout_sbuf_json_str(c->out, (const uint8_t *)json_string_value(v),
                             json_string_length(v)) != 0)
        return s_oom(c);
    return 0;
}

/* One scalar of type S, N or B (also the members of SS, NS, BS). */
static int s_emit_scalar(struct s_ctx *c, char type, const json_t *v,
                         const struct s_path *path, const char *what)
{
    if (!json_is_string(v))
        return s_fail(c, path, "%s value must be a string, got %s", what, s_kind(v));
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (type == 'N') {
        struct s_num num;
        if (s_number_check(c, path, what, s, n, &num) != 0)
            return -1;
        return s_number_emit(c, s, n, &num);
    }
    if (type == 'B' && s_base64_validate(c, path, what, s, n) != 0)
        return -1;
    return s_emit_string(c, v);
}

static int s_emit_set(struct s_ctx *c, char type, const char *what, const json_t *v,
                      const struct s_path *path)
{
    if (!json_is_array(v))
        return s_fail(c, path, "%s value must be an array, got %s", what, s_kind(v));
    /* the member's own kind, for messages about it */
    const char *member = type == 'S'   ? "SS member"
                         : type == 'N' ? "NS member"
                                       : "BS member";
    if (fanout_sbuf_putc(c->out, '[') != 0)
        return s_oom(c);
    size_t n = json_array_size(v);
    for (size_t i = 0; i < n; i++) {
        struct s_path p = {path, NULL, 0, i};
        if (i && fanout_sbuf_putc(c->out, ',') != 0)
            return s_oom(c);
        if (s_emit_scalar(c, type, json_array_get(v, i), &p, member) != 0)
            return -1;
    }
    if (fanout_sbuf_putc(c->out, ']') != 0)
        return s_oom(c);
    return 0;
}

/* The members of an M value, or the attributes of an image. */
static int s_emit_map(struct s_ctx *c, const json_t *m, const struct s_path *path,
                      int depth)
{
    if (fanout_sbuf_putc(c->out, '{') != 0)
        return s_oom(c);
    int first = 1;
    for (void *it = s_iter(m); it; it = s_iter_next(m, it)) {
        const char *key = json_object_iter_key(it);
        size_t key_len = json_object_iter_key_len(it);
        struct s_path p = {path, key, key_len, 0};
        if (!first && fanout_sbuf_putc(c->out, ',') != 0)
            return s_oom(c);
        first = 0;
        if (fanout_sbuf_json_str(c->out, (const uint8_t *)key, key_len) != 0 ||
            fanout_sbuf_putc(c->out, ':') != 0)
            return s_oom(c);
        if (s_emit_value(c, json_object_iter_value(it), &p, depth) != 0)
            return -1;
    }
    if (fanout_sbuf_putc(c->out, '}') != 0)
        return s_oom(c);
    return 0;
}

/* depth: how many M and L values enclose av. */
static int s_emit_value(struct s_ctx *c, const json_t *av, const struct s_path *path,
                        int depth)
{
    const char *type;
    size_t tl;
    const json_t *v;
    if (s_unwrap(c, av, path, &type, &tl, &v) != 0)
        return -1;

    if (s_type_is(type, tl, "S"))
        return s_emit_scalar(c, 'S', v, path, "S");
    if (s_type_is(type, tl, "N"))
        return s_emit_scalar(c, 'N', v, path, "N");
    if (s_type_is(type, tl, "B"))
        return s_emit_scalar(c, 'B', v, path, "B");
    if (s_type_is(type, tl, "BOOL")) {
        if (!json_is_boolean(v))
            return s_fail(c, path, "BOOL value must be true or false, got %s", s_kind(v));
        if (fanout_sbuf_puts(c->out, json_is_true(v) ? "true" : "false") != 0)
            return s_oom(c);
        return 0;
    }
    if (s_type_is(type, tl, "NULL")) {
        /* DynamoDB only ever sends {"NULL": true}. */
        if (!json_is_true(v))
            return s_fail(c, path, "NULL value must be true, got %s", s_kind(v));
        if (fanout_sbuf_puts(c->out, "null") != 0)
            return s_oom(c);
        return 0;
    }
    if (s_type_is(type, tl, "M") || s_type_is(type, tl, "L")) {
        int is_map = type[0] == 'M';
        if (is_map ? !json_is_object(v) : !json_is_array(v))
            return s_fail(c, path, "%s value must be %s, got %s", is_map ? "M" : "L",
                          is_map ? "an object" : "an array", s_kind(v));
        if (depth >= DDB_MAX_DEPTH)
            return s_fail(
                c, path,
                "M and L values nested more than %d levels deep (DynamoDB's limit)",
                DDB_MAX_DEPTH);
        if (is_map)
            return s_emit_map(c, v, path, depth + 1);
        if (fanout_sbuf_putc(c->out, '[') != 0)
            return s_oom(c);
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            struct s_path p = {path, NULL, 0, i};
            if (i && fanout_sbuf_putc(c->out, ',') != 0)
                return s_oom(c);
            if (s_emit_value(c, json_array_get(v, i), &p, depth + 1) != 0)
                return -1;
        }
        if (fanout_sbuf_putc(c->out, ']') != 0)
            return s_oom(c);
        return 0;
    }
    if (s_type_is(type, tl, "SS"))
        return s_emit_set(c, 'S', "SS", v, path);
    if (s_type_is(type, tl, "NS"))
        return s_emit_set(c, 'N', "NS", v, path);
    if (s_type_is(type, tl, "BS"))
        return s_emit_set(c, 'B', "BS", v, path);

    char q[DDB_QUOTE_MAX + 8];
    return s_fail(c, path, "unknown DynamoDB type \"%s\" (expected one of " DDB_TYPES ")",
                  s_quoted(q, sizeof q, type, tl));
}

/* ---- entry points ------------------------------------------------------- */

static int s_dump_to_buf(const char *buffer, size_t size, void *data)
{
    return fanout_sbuf_put(data, buffer, size);
}

static void s_restore(struct fanout_sbuf *out, size_t len)
{
    out->len = len;
    if (out->bytes)
        out->bytes[len] = 0;
}

int fanout_ddb_ref_image_to_json(const json_t *image, int convert, struct fanout_sbuf *out,
                                 char *err, size_t err_len)
{
    struct s_ctx c = {out, err, err_len, "attribute"};
    size_t start = out->len;
    int rc;
    if (err && err_len)
        err[0] = 0;

    if (!image) {
        rc = fanout_sbuf_puts(out, "{}") == 0 ? 0 : s_oom(&c);
    } else if (!json_is_object(image)) {
        rc = s_fail(&c, NULL, "image: expected an object of attributes, got %s",
                    s_kind(image));
    } else if (!convert) {
        /* DynamoDB JSON as it came: N values are strings, so jansson does not
         * reformat them. Attribute values are not checked in this mode. */
        rc = json_dump_callback(image, s_dump_to_buf, out,
                                JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (rc != 0)
            rc = s_fail(&c, NULL, "image: cannot be written as JSON (out of memory?)");
    } else {
        rc = s_emit_map(&c, image, NULL, 0);
    }
    if (rc != 0)
        s_restore(out, start);
    return rc;
}

int fanout_ddb_ref_key(const json_t *keys, struct fanout_sbuf *out, char *err,
                       size_t err_len)
{
    struct s_ctx c = {out, err, err_len, "key attribute"};
    size_t start = out->len;
    if (err && err_len)
        err[0] = 0;

    if (!json_is_object(keys)) {
        s_fail(&c, NULL, "Keys: expected an object of key attributes, got %s",
               s_kind(keys));
        goto fail;
    }
    if (json_object_size(keys) == 0) {
        s_fail(&c, NULL, "Keys: empty object (expected at least one key attribute)");
        goto fail;
    }
    int first = 1;
    for (void *it = s_iter(keys); it; it = s_iter_next(keys, it)) {
        struct s_path p = {NULL, json_object_iter_key(it), json_object_iter_key_len(it), 0};
        const char *type;
        size_t tl;
        const json_t *v;
        if (s_unwrap(&c, json_object_iter_value(it), &p, &type, &tl, &v) != 0)
            goto fail;
        if (!s_type_is(type, tl, "S") && !s_type_is(type, tl, "N") &&
            !s_type_is(type, tl, "B")) {
            char q[DDB_QUOTE_MAX + 8];
            s_fail(&c, &p, "type \"%s\" cannot be a key (expected S, N or B)",
                   s_quoted(q, sizeof q, type, tl));
            goto fail;
        }
        if (!json_is_string(v)) {
            s_fail(&c, &p, "%s value must be a string, got %s", type, s_kind(v));
            goto fail;
        }
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        struct s_num num;
        /* N keys are checked but kept as sent: the key is text, not JSON. */
        if (type[0] == 'N' && s_number_check(&c, &p, "N", s, n, &num) != 0)
            goto fail;
        if (type[0] == 'B' && s_base64_validate(&c, &p, "B", s, n) != 0)
            goto fail;
        if ((!first && fanout_sbuf_putc(out, '|') != 0) ||
            fanout_sbuf_put(out, s, n) != 0) {
            s_oom(&c);
            goto fail;
        }
        first = 0;
    }
    return 0;

fail:
    s_restore(out, start);
    return -1;
}
