/* DynamoDB Streams AttributeValue JSON to plain JSON, and record keys.
 *
 * Read from the event's own scanner nodes (common/jscan.h) and written by
 * hand into the caller's buffer: no jansson tree is built for a record (10
 * to 20 times the cost of the scan), and N strings keep every digit (jansson
 * would read them into a double or an int64, and DynamoDB numbers carry up
 * to 38 digits). The output is byte for byte what the former jansson-based
 * conversion wrote, its quirks included (pass-through strings escaped its
 * way, JSON numbers printed its way); tests/unit/ddb_ref.c keeps that
 * conversion and tests/unit/ddb_diff.c compares the two. */
#include "core/ddb.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jscan.h"

#if FANOUT_HAVE_SSE2
#include <emmintrin.h>
#endif

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
    const char *what;          /* "attribute" or "key attribute" */
    struct fanout_arena arena; /* unescaped strings and names, freed at the end */
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

/* An integer in JSON's grammar: no fraction, no exponent (jansson, which
 * read the images before, made the same distinction). */
static int s_is_integer(const struct fanout_jnode *v)
{
    for (size_t i = 0; i < v->len; i++)
        if (v->text[i] == '.' || v->text[i] == 'e' || v->text[i] == 'E')
            return 0;
    return 1;
}

/* A JSON value's kind, for "expected X, got Y". */
static const char *s_kind(const struct fanout_jnode *v)
{
    if (!v)
        return "nothing";
    switch (v->type) {
    case FANOUT_J_OBJECT: return "an object";
    case FANOUT_J_ARRAY: return "an array";
    case FANOUT_J_STRING: return "a string";
    case FANOUT_J_NUMBER: return s_is_integer(v) ? "an integer" : "a real number";
    case FANOUT_J_TRUE: return "true";
    case FANOUT_J_FALSE: return "false";
    case FANOUT_J_NULL: return "null";
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

/* ---- scanner nodes ------------------------------------------------------ */

/* A string node's value, unescaped (into the context's arena only when it
 * has escapes). NULL when out of memory. */
static const char *s_text_of(struct s_ctx *c, const char *raw, size_t raw_len, int escaped,
                             size_t *len)
{
    if (!escaped) {
        *len = raw_len;
        return raw;
    }
    struct fanout_jnode k = {
        .type = FANOUT_J_STRING, .escaped = 1, .text = raw, .len = raw_len};
    return fanout_jstr(&k, &c->arena, len);
}

static const char *s_value_text(struct s_ctx *c, const struct fanout_jnode *v, size_t *len)
{
    return s_text_of(c, v->text, v->len, v->escaped, len);
}

static const char *s_key_text(struct s_ctx *c, const struct fanout_jnode *m, size_t *len)
{
    return s_text_of(c, m->key, m->key_len, m->key_escaped, len);
}

static int s_type_is(const char *type, size_t type_len, const char *name)
{
    return type_len == strlen(name) && memcmp(type, name, type_len) == 0;
}

/* Check that av is an AttributeValue (an object with exactly one type key)
 * and return its type and value. */
static int s_unwrap(struct s_ctx *c, const struct fanout_jnode *av,
                    const struct s_path *path, const char **type, size_t *type_len,
                    const struct fanout_jnode **val)
{
    if (!av || av->type != FANOUT_J_OBJECT)
        return s_fail(c, path,
                      "expected an AttributeValue object such as {\"S\": \"text\"}, got %s",
                      s_kind(av));
    size_t n = av->count;
    if (n == 0)
        return s_fail(
            c, path,
            "empty AttributeValue (expected exactly one type key, one of " DDB_TYPES ")");
    const struct fanout_jnode *it = av->child;
    if (n > 1) {
        const struct fanout_jnode *it2 = it->next;
        size_t l1, l2;
        const char *k1 = s_key_text(c, it, &l1), *k2 = s_key_text(c, it2, &l2);
        if (!k1 || !k2)
            return s_oom(c);
        char q1[DDB_QUOTE_MAX + 8], q2[DDB_QUOTE_MAX + 8];
        return s_fail(
            c, path,
            "AttributeValue has %zu type keys (\"%s\", \"%s\"%s); expected exactly one", n,
            s_quoted(q1, sizeof q1, k1, l1), s_quoted(q2, sizeof q2, k2, l2),
            n > 2 ? ", ..." : "");
    }
    *type = s_key_text(c, it, type_len);
    if (!*type)
        return s_oom(c);
    *val = it;
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

/* ---- writing strings ---------------------------------------------------- */

/* A string with no escapes in the event (valid JSON text: no quote,
 * backslash or control character, valid UTF-8), quoted again as it is:
 * the bytes both escapers below would write for it. */
static int s_put_raw_string(struct fanout_sbuf *out, const char *raw, size_t n)
{
    if (fanout_sbuf_reserve(out, n + 2) != 0)
        return -1;
    uint8_t *o = out->bytes + out->len;
    o[0] = '"';
    memcpy(o + 1, raw, n);
    o[n + 1] = '"';
    out->len += n + 2;
    out->bytes[out->len] = 0;
    return 0;
}

/* A string as jansson's json_dump (no flags) writes it, for the
 * pass-through mode: '"', '\\' and control characters escaped, those
 * without a short form as \u00XX in upper case; the rest as it is. */
static int s_put_dump_string(struct fanout_sbuf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (fanout_sbuf_reserve(out, n * 6 + 2) != 0)
        return -1;
    uint8_t *o = out->bytes + out->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = (uint8_t)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') {
            *o++ = ch;
            continue;
        }
        *o++ = '\\';
        switch (ch) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            memcpy(o, "u00", 3);
            o[3] = (uint8_t)hex[ch >> 4];
            o[4] = (uint8_t)hex[ch & 15];
            o += 5;
        }
    }
    *o++ = '"';
    out->len = (size_t)(o - out->bytes);
    out->bytes[out->len] = 0;
    return 0;
}

/* A string value or member name: raw its text in the event, s its value.
 * `dump` picks jansson's escaping (pass-through mode), else
 * fanout_sbuf_json_str's (converted images). */
static int s_put_string(struct s_ctx *c, const char *raw, size_t raw_len, int escaped,
                        const char *s, size_t n, int dump)
{
    int rc = !escaped ? s_put_raw_string(c->out, raw, raw_len)
             : dump   ? s_put_dump_string(c->out, s, n)
                      : fanout_sbuf_json_str(c->out, s, n);
    return rc == 0 ? 0 : s_oom(c);
}

/* ---- JSON numbers (not N values) ---------------------------------------- */

/* jansson's number limits, which the images were read through before:
 * an integer is a long long, anything else a finite double. Returns 0 with
 * the value, or -1 when outside them (or out of memory). */
static int s_json_number(const struct fanout_jnode *v, int *is_int, long long *i, double *d)
{
    char small[64], *text = small;
    if (v->len >= sizeof small && !(text = malloc(v->len + 1)))
        return -1;
    memcpy(text, v->text, v->len);
    text[v->len] = 0;
    int rc = 0;
    *is_int = s_is_integer(v);
    errno = 0;
    if (*is_int) {
        *i = strtoll(text, NULL, 10);
        rc = errno == ERANGE ? -1 : 0;
    } else {
        *d = strtod(text, NULL);
        rc = (*d == HUGE_VAL || *d == -HUGE_VAL) && errno == ERANGE ? -1 : 0;
    }
    if (text != small)
        free(text);
    return rc;
}

/* A double as jansson writes it: "%.17g", with ".0" when that has neither
 * '.' nor 'e', and the exponent without '+' or leading zeros. */
static int s_put_real(struct fanout_sbuf *out, double d)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf - 3, "%.17g", d);
    if (n < 0 || (size_t)n >= sizeof buf - 3)
        return -1;
    if (!strchr(buf, '.') && !strchr(buf, 'e')) {
        memcpy(buf + n, ".0", 3);
        n += 2;
    }
    char *e = strchr(buf, 'e');
    if (e) {
        char *start = e + 1, *end = e + 2;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, (size_t)(buf + n - end) + 1);
            n -= (int)(end - start);
        }
    }
    return fanout_sbuf_put(out, buf, (size_t)n);
}

/* ---- pass-through ------------------------------------------------------- */

/* The image as DynamoDB JSON, compact, as jansson dumped it before: member
 * order kept, strings escaped its way, numbers (never in a well-formed
 * image) as jansson prints them. */
static int s_dump(struct s_ctx *c, const struct fanout_jnode *v)
{
    struct fanout_sbuf *out = c->out;
    switch (v->type) {
    case FANOUT_J_OBJECT:
    case FANOUT_J_ARRAY: {
        int obj = v->type == FANOUT_J_OBJECT;
        if (fanout_sbuf_putc(out, obj ? '{' : '[') != 0)
            return -1;
        for (const struct fanout_jnode *m = v->child; m; m = m->next) {
            if (m != v->child && fanout_sbuf_putc(out, ',') != 0)
                return -1;
            if (obj) {
                size_t kl;
                const char *k = s_key_text(c, m, &kl);
                if (!k ||
                    s_put_string(c, m->key, m->key_len, m->key_escaped, k, kl, 1) != 0 ||
                    fanout_sbuf_putc(out, ':') != 0)
                    return -1;
            }
            if (s_dump(c, m) != 0)
                return -1;
        }
        return fanout_sbuf_putc(out, obj ? '}' : ']');
    }
    case FANOUT_J_STRING: {
        size_t n;
        const char *s = s_value_text(c, v, &n);
        return s ? s_put_string(c, v->text, v->len, v->escaped, s, n, 1) : -1;
    }
    case FANOUT_J_NUMBER: {
        int is_int;
        long long i;
        double d;
        if (s_json_number(v, &is_int, &i, &d) != 0)
            return -1;
        return is_int ? fanout_sbuf_printf(out, "%lld", i) : s_put_real(out, d);
    }
    case FANOUT_J_TRUE: return fanout_sbuf_puts(out, "true");
    case FANOUT_J_FALSE: return fanout_sbuf_puts(out, "false");
    case FANOUT_J_NULL: return fanout_sbuf_puts(out, "null");
    }
    return -1;
}

/* ---- plain JSON --------------------------------------------------------- */

static int s_emit_value(struct s_ctx *c, const struct fanout_jnode *av,
                        const struct s_path *path, int depth);

/* One scalar of type S, N or B (also the members of SS, NS, BS). */
static int s_emit_scalar(struct s_ctx *c, char type, const struct fanout_jnode *v,
                         const struct s_path *path, const char *what)
{
    if (v->type != FANOUT_J_STRING)
        return s_fail(c, path, "%s value must be a string, got %s", what, s_kind(v));
    size_t n;
    const char *s = s_value_text(c, v, &n);
    if (!s)
        return s_oom(c);
    if (type == 'N') {
        struct s_num num;
        if (s_number_check(c, path, what, s, n, &num) != 0)
            return -1;
        return s_number_emit(c, s, n, &num);
    }
    if (type == 'B' && s_base64_validate(c, path, what, s, n) != 0)
        return -1;
    return s_put_string(c, v->text, v->len, v->escaped, s, n, 0);
}

static int s_emit_set(struct s_ctx *c, char type, const char *what,
                      const struct fanout_jnode *v, const struct s_path *path)
{
    if (v->type != FANOUT_J_ARRAY)
        return s_fail(c, path, "%s value must be an array, got %s", what, s_kind(v));
    /* the member's own kind, for messages about it */
    const char *member = type == 'S'   ? "SS member"
                         : type == 'N' ? "NS member"
                                       : "BS member";
    if (fanout_sbuf_putc(c->out, '[') != 0)
        return s_oom(c);
    size_t i = 0;
    for (const struct fanout_jnode *e = v->child; e; e = e->next, i++) {
        struct s_path p = {path, NULL, 0, i};
        if (i && fanout_sbuf_putc(c->out, ',') != 0)
            return s_oom(c);
        if (s_emit_scalar(c, type, e, &p, member) != 0)
            return -1;
    }
    if (fanout_sbuf_putc(c->out, ']') != 0)
        return s_oom(c);
    return 0;
}

/* The members of an M value, or the attributes of an image. */
static int s_emit_map(struct s_ctx *c, const struct fanout_jnode *m,
                      const struct s_path *path, int depth)
{
    if (fanout_sbuf_putc(c->out, '{') != 0)
        return s_oom(c);
    for (const struct fanout_jnode *it = m->child; it; it = it->next) {
        size_t key_len;
        const char *key = s_key_text(c, it, &key_len);
        if (!key)
            return s_oom(c);
        struct s_path p = {path, key, key_len, 0};
        if (it != m->child && fanout_sbuf_putc(c->out, ',') != 0)
            return s_oom(c);
        if (s_put_string(c, it->key, it->key_len, it->key_escaped, key, key_len, 0) != 0)
            return -1;
        if (fanout_sbuf_putc(c->out, ':') != 0)
            return s_oom(c);
        if (s_emit_value(c, it, &p, depth) != 0)
            return -1;
    }
    if (fanout_sbuf_putc(c->out, '}') != 0)
        return s_oom(c);
    return 0;
}

/* depth: how many M and L values enclose av. */
static int s_emit_value(struct s_ctx *c, const struct fanout_jnode *av,
                        const struct s_path *path, int depth)
{
    const char *type;
    size_t tl;
    const struct fanout_jnode *v;
    if (s_unwrap(c, av, path, &type, &tl, &v) != 0)
        return -1;

    if (s_type_is(type, tl, "S"))
        return s_emit_scalar(c, 'S', v, path, "S");
    if (s_type_is(type, tl, "N"))
        return s_emit_scalar(c, 'N', v, path, "N");
    if (s_type_is(type, tl, "B"))
        return s_emit_scalar(c, 'B', v, path, "B");
    if (s_type_is(type, tl, "BOOL")) {
        if (v->type != FANOUT_J_TRUE && v->type != FANOUT_J_FALSE)
            return s_fail(c, path, "BOOL value must be true or false, got %s", s_kind(v));
        if (fanout_sbuf_puts(c->out, v->type == FANOUT_J_TRUE ? "true" : "false") != 0)
            return s_oom(c);
        return 0;
    }
    if (s_type_is(type, tl, "NULL")) {
        /* DynamoDB only ever sends {"NULL": true}. */
        if (v->type != FANOUT_J_TRUE)
            return s_fail(c, path, "NULL value must be true, got %s", s_kind(v));
        if (fanout_sbuf_puts(c->out, "null") != 0)
            return s_oom(c);
        return 0;
    }
    if (s_type_is(type, tl, "M") || s_type_is(type, tl, "L")) {
        int is_map = type[0] == 'M';
        if (v->type != (is_map ? FANOUT_J_OBJECT : FANOUT_J_ARRAY))
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
        size_t i = 0;
        for (const struct fanout_jnode *e = v->child; e; e = e->next, i++) {
            struct s_path p = {path, NULL, 0, i};
            if (i && fanout_sbuf_putc(c->out, ',') != 0)
                return s_oom(c);
            if (s_emit_value(c, e, &p, depth + 1) != 0)
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

static void s_restore(struct fanout_sbuf *out, size_t len)
{
    out->len = len;
    if (out->bytes)
        out->bytes[len] = 0;
}

/* ---- plain JSON in one pass over the text ------------------------------ */

/* The same conversion as s_emit_map and s_emit_value, read straight from
 * the image's text in the event (valid JSON, as the event's scan accepted
 * it), with no nodes built: each value is met once, checked and written.
 * It writes only what s_emit_* would write and gives up (-1) on anything
 * else: a value of the wrong kind, an unknown or escaped type name, a bad N
 * or B, too deep, out of memory. The caller then converts the image from
 * its nodes, which fails the same way with the precise message. */
struct s_fast {
    struct s_ctx *c; /* err NULL: the checks below report nothing */
    const char *p, *end;
};

static inline void s_fast_ws(struct s_fast *f)
{
    f->p = fanout_jws(f->p, f->end);
}

/* A byte into a buffer with room for it (reserved by the caller). */
static int s_fast_putc(struct s_fast *f, char ch)
{
    struct fanout_sbuf *out = f->c->out;
    if (out->len + 2 > out->cap && fanout_sbuf_reserve(out, 1) != 0)
        return -1;
    out->bytes[out->len++] = (uint8_t)ch;
    out->bytes[out->len] = 0;
    return 0;
}

/* At a string's opening quote: its raw text (inside the quotes). */
static int s_fast_string(struct s_fast *f, const char **raw, size_t *len, int *escaped)
{
    s_fast_ws(f);
    if (f->p >= f->end || *f->p != '"')
        return -1;
    const char *b = ++f->p;
    *escaped = 0;
    for (;;) {
        f->p = fanout_jquote(f->p, f->end);
        if (f->p >= f->end)
            return -1;
        if (*f->p == '"')
            break;
        if (f->end - f->p < 2)
            return -1;
        *escaped = 1;
        f->p += 2; /* the escaped character is never the closing quote */
    }
    *raw = b;
    *len = (size_t)(f->p++ - b);
    return 0;
}

/* Expect `ch` (after whitespace) and step over it. */
static int s_fast_expect(struct s_fast *f, char ch)
{
    s_fast_ws(f);
    if (f->p >= f->end || *f->p != ch)
        return -1;
    f->p++;
    return 0;
}

/* A string read from the text: raw (inside the quotes) and its value. */
struct s_fast_str {
    const char *raw, *s;
    size_t raw_len, n;
    int escaped;
};

static int s_fast_text(struct s_fast *f, struct s_fast_str *t)
{
    if (s_fast_string(f, &t->raw, &t->raw_len, &t->escaped) != 0)
        return -1;
    t->s = s_text_of(f->c, t->raw, t->raw_len, t->escaped, &t->n);
    return t->s ? 0 : -1;
}

static int s_fast_put(struct s_fast *f, const struct s_fast_str *t)
{
    /* a short string without escapes, with room after it: copied 16 bytes
     * at once (a fixed-size memcpy: one load and store on x86-64 and
     * arm64; the bytes past its closing quote, inside the image's text,
     * are overwritten by what follows or lie past the end) */
    struct fanout_sbuf *out = f->c->out;
    if (!t->escaped && t->raw_len <= 14 && f->end - t->raw >= 16 &&
        out->cap - out->len >= 19) {
        uint8_t *o = out->bytes + out->len;
        o[0] = '"';
        memcpy(o + 1, t->raw, 16);
        o[t->raw_len + 1] = '"';
        out->len += t->raw_len + 2;
        out->bytes[out->len] = 0;
        return 0;
    }
    return s_put_string(f->c, t->raw, t->raw_len, t->escaped, t->s, t->n, 0);
}

/* An N string that is JSON as it is: [-]digits[.digits] without a leading
 * zero (but "0" itself), at most DDB_NUMBER_MAX_DIGITS bytes (within
 * DynamoDB's range whatever the digits). s_number_check accepts it and
 * s_number_emit would write it unchanged, so it is copied. */
static int s_number_plain(const char *s, size_t n)
{
    if (!n || n > DDB_NUMBER_MAX_DIGITS)
        return 0;
    size_t i = s[0] == '-', d0 = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == d0 || (i - d0 > 1 && s[d0] == '0'))
        return 0;
    if (i < n && s[i] == '.') {
        size_t f0 = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f0)
            return 0;
    }
    return i == n;
}

#if FANOUT_HAVE_SSE2
/* s_number_plain of the `n` bytes (1 to 16) at `s`, whose first 16 bytes
 * are `v`: its digits and dots as bit masks. */
static inline int s_number_plain_v(__m128i v, const char *s, size_t n)
{
    const unsigned all = (1u << n) - 1, d0 = s[0] == '-';
    const unsigned digit = (unsigned)_mm_movemask_epi8(
                               _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                             _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)))) &
                           all;
    const unsigned dot =
        (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('.'))) & all;
    /* after the sign, digits and at most one dot */
    if ((digit | dot | d0) != all || (dot & (dot - 1)))
        return 0;
    /* the integer part: at least one digit, no leading zero; a dot has a
     * digit after it */
    const unsigned int_end = dot ? (unsigned)__builtin_ctz(dot) : (unsigned)n;
    return int_end > d0 && (int_end - d0 == 1 || s[d0] != '0') && int_end + 1 != n;
}
#endif

/* s_number_plain for a string with 16 bytes readable from `s` on (before
 * `end`, the end of the text it is in): one of at most 16 bytes is read
 * in one SSE2 pass (s_number_plain_v); any other by s_number_plain. The
 * same answer either way. */
static inline int s_number_plain_in(const char *s, size_t n, const char *end)
{
#if FANOUT_HAVE_SSE2
    if (n && n <= 16 && end - s >= 16)
        return s_number_plain_v(_mm_loadu_si128((const __m128i *)(const void *)s), s, n);
#else
    (void)end; /* without SSE2 (arm64): the scalar check alone */
#endif
    return s_number_plain(s, n);
}

/* One scalar of type S, N or B: s_emit_scalar. */
static int s_fast_scalar(struct s_fast *f, char type)
{
    struct s_fast_str t;
    if (s_fast_text(f, &t) != 0)
        return -1;
    if (type == 'N') {
        if (s_number_plain(t.s, t.n))
            return fanout_sbuf_put(f->c->out, t.s, t.n);
        struct s_num num;
        return s_number_check(f->c, NULL, "N", t.s, t.n, &num) == 0
                   ? s_number_emit(f->c, t.s, t.n, &num)
                   : -1;
    }
    size_t bad;
    if (type == 'B' && s_base64_check(t.s, t.n, &bad) != 0)
        return -1;
    return s_fast_put(f, &t);
}

static int s_fast_value(struct s_fast *f, int depth);

/* At a container's `open`: writes it; 1 when `close` follows at once
 * (written too), 0 when members follow, -1 else. */
static int s_fast_open(struct s_fast *f, char open, char close)
{
    if (s_fast_expect(f, open) != 0 || s_fast_putc(f, open) != 0)
        return -1;
    s_fast_ws(f);
    if (f->p >= f->end || *f->p != close)
        return 0;
    f->p++;
    return s_fast_putc(f, close) == 0 ? 1 : -1;
}

/* After a member or element: copies the ',' (0: more follow) or `close`
 * (1); -1 else. */
static int s_fast_next(struct s_fast *f, char close)
{
    s_fast_ws(f);
    if (f->p >= f->end || (*f->p != ',' && *f->p != close))
        return -1;
    char ch = *f->p++;
    return s_fast_putc(f, ch) != 0 ? -1 : ch == close;
}

/* An array of values (L, depth set) or of scalars (a set: `set` S, N, B). */
static int s_fast_array(struct s_fast *f, char set, int depth)
{
    int rc = s_fast_open(f, '[', ']');
    while (rc == 0) {
        if ((set ? s_fast_scalar(f, set) : s_fast_value(f, depth)) != 0)
            return -1;
        rc = s_fast_next(f, ']');
    }
    return rc < 0 ? -1 : 0;
}

/* The members of an M value, or an image's attributes: s_emit_map. */
static int s_fast_map(struct s_fast *f, int depth)
{
    int rc = s_fast_open(f, '{', '}');
    while (rc == 0) {
        struct s_fast_str name;
        if (s_fast_text(f, &name) != 0 || s_fast_put(f, &name) != 0 ||
            s_fast_expect(f, ':') != 0 || s_fast_putc(f, ':') != 0 ||
            s_fast_value(f, depth) != 0)
            return -1;
        rc = s_fast_next(f, '}');
    }
    return rc < 0 ? -1 : 0;
}

/* An AttributeValue: s_emit_value. */
static int s_fast_value(struct s_fast *f, int depth)
{
    const char *type;
    size_t tl;
    int esc;
    if (s_fast_expect(f, '{') != 0 || s_fast_string(f, &type, &tl, &esc) != 0 || esc ||
        s_fast_expect(f, ':') != 0)
        return -1;
    s_fast_ws(f);
    int rc = -1;
    if (tl == 1 && (type[0] == 'S' || type[0] == 'N' || type[0] == 'B')) {
        rc = s_fast_scalar(f, type[0]);
    } else if (s_type_is(type, tl, "BOOL") || s_type_is(type, tl, "NULL")) {
        int is_bool = type[0] == 'B';
        if (f->end - f->p >= 4 && memcmp(f->p, "true", 4) == 0) {
            f->p += 4;
            rc = fanout_sbuf_puts(f->c->out, is_bool ? "true" : "null");
        } else if (is_bool && f->end - f->p >= 5 && memcmp(f->p, "false", 5) == 0) {
            f->p += 5;
            rc = fanout_sbuf_puts(f->c->out, "false");
        }
    } else if (tl == 1 && (type[0] == 'M' || type[0] == 'L')) {
        if (depth < DDB_MAX_DEPTH)
            rc = type[0] == 'M' ? s_fast_map(f, depth + 1) : s_fast_array(f, 0, depth + 1);
    } else if (tl == 2 && type[1] == 'S' &&
               (type[0] == 'S' || type[0] == 'N' || type[0] == 'B')) {
        rc = s_fast_array(f, type[0], depth);
    }
    /* exactly one type key */
    return rc == 0 ? s_fast_expect(f, '}') : -1;
}

/* ---- the common shapes in one tight pass ------------------------------ */

/* s_fast_map for the shapes DynamoDB Streams carry most, with the output
 * written through a pointer and no check per byte: attribute and member
 * names without escapes, S and N values without escapes (N as
 * s_number_plain copies it), BOOL, NULL, M and L. Other scalars (B, an
 * escaped S, an N to normalise) and the sets go to s_fast_scalar and
 * s_fast_array, with the buffer's length brought up to date around the
 * call. Anything else (an escaped name or type, a value of the wrong kind,
 * too deep) gives up: s_fast_map then converts the image from its start,
 * writing the same bytes or giving up the same way.
 *
 * Room: each piece of output is no longer than the input read for it ('{',
 * '[', ',', ':' and names as they are, values shorter than their
 * AttributeValue), so after `S_TURBO_SLACK` bytes more than the input left
 * are reserved, a value's 16-byte store never passes the room. */
#define S_TURBO_SLACK 40

struct s_turbo {
    const char *q, *end;
    char *o;
    struct s_fast f; /* for the scalars and sets handed over */
    /* fanout_ddb_image_shape: the text is not validated yet, so strings
     * must be printable ASCII without escapes (fanout_jplain_end), names
     * distinct, nothing handed over */
    int strict;
    /* fanout_ddb_image_seen: where the S and N values went, or NULL */
    struct s_seen_note *note;
};

/* The S, N and BOOL values of an image converted by s_turbo_map (strict):
 * each value's text in the image and its offset in the output (type 'S',
 * 'N', or 'T' for a BOOL's true or false). */
#define S_SEEN_VALUES 64
struct s_seen_note {
    const char *base; /* the output's start */
    size_t n;         /* values noted; more than S_SEEN_VALUES: too many */
    const char *in[S_SEEN_VALUES];
    size_t len[S_SEEN_VALUES], out[S_SEEN_VALUES];
    char type[S_SEEN_VALUES];
};

/* Note the value `v` (`n` bytes, type S, N, T or, in Keys, B) about to be
 * written `at` bytes into the output. */
static inline void s_seen_add(struct s_seen_note *note, const char *v, size_t n, size_t at,
                              char type)
{
    size_t i = note->n++;
    if (i >= S_SEEN_VALUES)
        return;
    note->in[i] = v;
    note->len[i] = n;
    note->out[i] = at;
    note->type[i] = type;
}

/* The closing quote of a string whose text starts at `q`, or NULL when a
 * backslash (an escape) comes first. */
static inline const char *s_turbo_str_end(const char *q, const char *end)
{
    q = fanout_jquote(q, end);
    return q < end && *q == '"' ? q : NULL;
}

/* A string's closing quote as s_turbo_str_end, or, `strict`, as
 * fanout_jplain_end finds it. */
static inline const char *s_turbo_end(const struct s_turbo *t, const char *q)
{
    return t->strict ? fanout_jplain_end(q, t->end) : s_turbo_str_end(q, t->end);
}

/* `n` bytes of the image's text at `src` (in text ending at `end`) to the
 * output at `o`, quoted (`quote`) or not: the write position after them.
 * The position is a local of the caller's, not t->o: a byte stored
 * through t->o could be t->o itself (a char may alias anything), so each
 * store would reload it. */
static inline char *s_turbo_put(char *o, const char *src, size_t n, const char *end,
                                int quote)
{
    if (quote)
        *o++ = '"';
    if (n <= 16 && end - src >= 16)
        memcpy(o, src, 16); /* one load and store, not a call */
    else
        memcpy(o, src, n);
    o += n;
    if (quote)
        *o++ = '"';
    return o;
}

/* Hand the value at t->q to s_fast_scalar (`set` 0) or s_fast_array. */
static int s_turbo_hand_over(struct s_turbo *t, char type, int set, int depth)
{
    struct fanout_sbuf *out = t->f.c->out;
    if (t->strict)
        return -1;
    out->len = (size_t)(t->o - out->p);
    t->f.p = t->q;
    if ((set ? s_fast_array(&t->f, type, depth) : s_fast_scalar(&t->f, type)) != 0)
        return -1;
    t->q = t->f.p;
    if (fanout_sbuf_reserve(out, (size_t)(t->end - t->q) + S_TURBO_SLACK) != 0)
        return -1;
    t->o = out->p + out->len;
    return 0;
}

static int s_turbo_map(struct s_turbo *t, int depth, size_t *count);
static int s_turbo_array(struct s_turbo *t, int depth);

/* An AttributeValue: s_fast_value. */
static int s_turbo_value(struct s_turbo *t, int depth)
{
    const char *q = fanout_jws(t->q, t->end), *end = t->end;
    if (q >= end || *q != '{')
        return -1;
    q = fanout_jws(q + 1, end);
    if (q >= end || *q != '"')
        return -1;
    /* a one-letter type (S, N, M, L, B) ends at once */
    const char *type = q + 1,
               *type_end = end - q >= 3 && q[2] == '"' && q[1] >= 'A' && q[1] <= 'Z'
                               ? q + 2
                               : s_turbo_end(t, type);
    if (!type_end)
        return -1;
    size_t tl = (size_t)(type_end - type);
    q = type_end + 1;
    if (q >= end || *q != ':') {
        q = fanout_jws(q, end);
        if (q >= end || *q != ':')
            return -1;
    }
    q = fanout_jws(q + 1, end);
    if (q >= end)
        return -1;
    t->q = q;
    if (tl == 1 && (type[0] == 'S' || type[0] == 'N')) {
        const char *v = q + 1, *v_end = *q == '"' ? s_turbo_end(t, v) : NULL;
        size_t n = v_end ? (size_t)(v_end - v) : 0;
        if (v_end && type[0] == 'S') {
            if (t->note)
                s_seen_add(t->note, v, n, (size_t)(t->o + 1 - t->note->base), 'S');
            t->o = s_turbo_put(t->o, v, n, end, 1);
            t->q = v_end + 1;
        } else if (v_end && s_number_plain_in(v, n, end)) {
            if (t->note)
                s_seen_add(t->note, v, n, (size_t)(t->o - t->note->base), 'N');
            t->o = s_turbo_put(t->o, v, n, end, 0);
            t->q = v_end + 1;
        } else if (s_turbo_hand_over(t, type[0], 0, depth) != 0) {
            return -1;
        }
    } else if (tl == 4 && (memcmp(type, "BOOL", 4) == 0 || memcmp(type, "NULL", 4) == 0)) {
        int is_bool = type[0] == 'B';
        size_t lit_len = end - q >= 4 && memcmp(q, "true", 4) == 0               ? 4
                         : is_bool && end - q >= 5 && memcmp(q, "false", 5) == 0 ? 5
                                                                                 : 0;
        if (t->note && is_bool && lit_len)
            s_seen_add(t->note, q, lit_len, (size_t)(t->o - t->note->base), 'T');
        if (lit_len == 4) {
            memcpy(t->o, is_bool ? "true" : "null", 4);
            t->o += 4;
            t->q = q + 4;
        } else if (lit_len == 5) {
            memcpy(t->o, "false", 5);
            t->o += 5;
            t->q = q + 5;
        } else {
            return -1;
        }
    } else if (tl == 1 && (type[0] == 'M' || type[0] == 'L')) {
        size_t count;
        if (depth >= DDB_MAX_DEPTH || (type[0] == 'M' ? s_turbo_map(t, depth + 1, &count)
                                                      : s_turbo_array(t, depth + 1)) != 0)
            return -1;
    } else if (tl == 1 && type[0] == 'B') {
        if (s_turbo_hand_over(t, 'B', 0, depth) != 0)
            return -1;
    } else if (tl == 2 && type[1] == 'S' &&
               (type[0] == 'S' || type[0] == 'N' || type[0] == 'B')) {
        if (s_turbo_hand_over(t, type[0], 1, depth) != 0)
            return -1;
    } else {
        return -1;
    }
    /* exactly one type key */
    q = t->q;
    if (q >= end || *q != '}') {
        q = fanout_jws(q, end);
        if (q >= end || *q != '}')
            return -1;
    }
    t->q = q + 1;
    return 0;
}

/* The head of an S or N AttributeValue as writers put it, {"S":" or
 * {"S": " (or N), at `q`, read 8 bytes at once: the value's first byte,
 * and its type in *type; NULL for any other text (s_turbo_plain then
 * reads it a token at a time, to the same end). */
static inline const char *s_turbo_av_head(const char *q, const char *end, char *type)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (end - q < 8)
        return NULL;
    uint64_t w;
    memcpy(&w, q, 8);
    /* {"?": " and {"?":" little-endian, the type's byte and those after
     * the head left out */
    const uint64_t spaced = 0x0022203A2200227BULL, compact = 0x0000223A2200227BULL,
                   spaced_mask = 0x00FFFFFFFF00FFFFULL,
                   compact_mask = 0x0000FFFFFF00FFFFULL;
    char c = (char)(w >> 16);
    if (c != 'S' && c != 'N')
        return NULL;
    *type = c;
    if ((w & spaced_mask) == spaced)
        return q + 7;
    if ((w & compact_mask) == compact)
        return q + 6;
#else
    (void)q;
    (void)end;
    (void)type;
#endif
    return NULL;
}

/* `c` at `q` or after whitespace: where it is, or NULL. */
static inline const char *s_turbo_at(const char *q, const char *end, char c)
{
    if (q >= end || *q != c) {
        q = fanout_jws(q, end);
        if (q >= end || *q != c)
            return NULL;
    }
    return q;
}

/* s_turbo_plain's {"BOOL": true}, {"BOOL": false} and {"NULL": true}, at
 * the type's opening quote `q`: written as s_turbo_value writes them, 1;
 * anything else 0, with nothing read or written. */
static inline int s_turbo_literal(struct s_turbo *t, const char *q)
{
    const char *end = t->end;
    int is_bool = memcmp(q + 1, "BOOL", 4) == 0;
    if (!is_bool && memcmp(q + 1, "NULL", 4) != 0)
        return 0;
    if (!(q = s_turbo_at(q + 6, end, ':')))
        return 0;
    q = fanout_jws(q + 1, end);
    const char *lit, *at = q;
    size_t n;
    if (end - q >= 4 && memcmp(q, "true", 4) == 0) {
        lit = is_bool ? "true" : "null";
        n = 4;
    } else if (is_bool && end - q >= 5 && memcmp(q, "false", 5) == 0) {
        lit = "false";
        n = 5;
    } else {
        return 0;
    }
    if (!(q = s_turbo_at(q + n, end, '}')))
        return 0;
    if (t->note && is_bool)
        s_seen_add(t->note, at, n, (size_t)(t->o - t->note->base), 'T');
    memcpy(t->o, lit, n);
    t->o += n;
    t->q = q + 1;
    return 1;
}

/* s_turbo_value's commonest case, inlined where members and elements are
 * read: {"S": "text"} or {"N": "number"} with a value s_turbo_value copies
 * as it is (no escape; N as s_number_plain takes it), or a BOOL or NULL
 * (s_turbo_literal). Written, 1; anything else 0, with nothing read or
 * written: s_turbo_value then reads it, so the output is the same either
 * way. */
__attribute__((always_inline)) static inline int s_turbo_plain(struct s_turbo *t)
{
    const char *q = fanout_jws(t->q, t->end), *end = t->end;
    char type;
    const char *v = s_turbo_av_head(q, end, &type);
    if (!v) {
        if (q >= end || *q != '{')
            return 0;
        q = fanout_jws(q + 1, end);
        if (end - q >= 6 && q[0] == '"' && q[2] != '"' && q[5] == '"')
            return s_turbo_literal(t, q);
        if (end - q < 3 || q[0] != '"' || q[2] != '"' || (q[1] != 'S' && q[1] != 'N'))
            return 0;
        type = q[1];
        if (!(q = s_turbo_at(q + 3, end, ':')))
            return 0;
        q = fanout_jws(q + 1, end);
        if (q >= end || *q != '"')
            return 0;
        v = q + 1;
    }
    const char *v_end = s_turbo_end(t, v);
    if (!v_end)
        return 0;
    size_t n = (size_t)(v_end - v);
    if (!(q = s_turbo_at(v_end + 1, end, '}')))
        return 0;
    int quote = type == 'S';
    if (!quote && !s_number_plain_in(v, n, end))
        return 0;
    if (t->note)
        s_seen_add(t->note, v, n, (size_t)(t->o + quote - t->note->base), type);
    t->o = s_turbo_put(t->o, v, n, end, quote);
    t->q = q + 1;
    return 1;
}

/* After a member or element: the ',' (0) or `close` (1) copied; -1 else. */
static inline int s_turbo_next(struct s_turbo *t, char close)
{
    const char *q = t->q;
    if (q >= t->end || (*q != ',' && *q != close)) {
        q = fanout_jws(q, t->end);
        if (q >= t->end || (*q != ',' && *q != close))
            return -1;
    }
    *t->o++ = *q;
    t->q = q + 1;
    return *q == close;
}

/* At a container's `open` (after whitespace): copied; 1 when `close`
 * follows (copied too), 0 when members follow, -1 else. */
static inline int s_turbo_open(struct s_turbo *t, char open, char close)
{
    const char *q = fanout_jws(t->q, t->end);
    if (q >= t->end || *q != open)
        return -1;
    *t->o++ = open;
    q = fanout_jws(q + 1, t->end);
    t->q = q;
    if (q < t->end && *q == close) {
        *t->o++ = close;
        t->q = q + 1;
        return 1;
    }
    return 0;
}

/* A bit for a member name (its length, first and last byte). */
static inline uint64_t s_turbo_name_bit(const char *name, size_t n)
{
    uint64_t g =
        n ? (uint64_t)n << 16 | (uint64_t)(uint8_t)name[0] << 8 | (uint8_t)name[n - 1] : 0;
    return 1ULL << ((g * 0x9E3779B97F4A7C15ULL) >> 58);
}

/* Names an object may have in s_turbo_map's `strict` mode (as many as the
 * scan's quick pass compares). */
#define S_TURBO_NAMES 32

/* An M value's members, or an image's attributes: s_fast_map. `strict`:
 * a repeated name, or more than S_TURBO_NAMES, gives up; *count set. */
static int s_turbo_map(struct s_turbo *t, int depth, size_t *count)
{
    struct {
        const char *s;
        size_t n;
    } names[S_TURBO_NAMES];
    uint64_t seen = 0;
    size_t n = 0;
    int rc = s_turbo_open(t, '{', '}');
    while (rc == 0) {
        const char *q = fanout_jws(t->q, t->end);
        if (q >= t->end || *q != '"')
            return -1;
        const char *name = q + 1, *name_end = s_turbo_end(t, name);
        if (!name_end)
            return -1;
        if (t->strict) {
            size_t len = (size_t)(name_end - name);
            uint64_t bit = s_turbo_name_bit(name, len);
            if (n == S_TURBO_NAMES)
                return -1;
            if (seen & bit)
                for (size_t i = 0; i < n; i++)
                    if (names[i].n == len && memcmp(names[i].s, name, len) == 0)
                        return -1;
            seen |= bit;
            names[n].s = name;
            names[n++].n = len;
        }
        char *o = s_turbo_put(t->o, name, (size_t)(name_end - name), t->end, 1);
        q = name_end + 1;
        if (q >= t->end || *q != ':') {
            q = fanout_jws(q, t->end);
            if (q >= t->end || *q != ':')
                return -1;
        }
        *o = ':';
        t->o = o + 1;
        t->q = q + 1;
        if (!s_turbo_plain(t) && s_turbo_value(t, depth) != 0)
            return -1;
        rc = s_turbo_next(t, '}');
    }
    *count = n;
    return rc < 0 ? -1 : 0;
}

/* An L value's elements: s_fast_array without a set. */
static int s_turbo_array(struct s_turbo *t, int depth)
{
    int rc = s_turbo_open(t, '[', ']');
    while (rc == 0) {
        if (!s_turbo_plain(t) && s_turbo_value(t, depth) != 0)
            return -1;
        rc = s_turbo_next(t, ']');
    }
    return rc < 0 ? -1 : 0;
}

/* An image by s_turbo_map: 0, or -1 with the buffer's length as it was. */
static int s_turbo_image(struct s_fast *f)
{
    struct fanout_sbuf *out = f->c->out;
    size_t start = out->len;
    struct s_turbo t = {f->p, f->end, NULL, *f, 0, NULL};
    size_t count;
    if (fanout_sbuf_reserve(out, (size_t)(f->end - f->p) + S_TURBO_SLACK) != 0)
        return -1;
    t.o = out->p + out->len;
    if (s_turbo_map(&t, 0, &count) != 0 || fanout_jws(t.q, t.end) != t.end) {
        s_restore(out, start);
        return -1;
    }
    out->len = (size_t)(t.o - out->p);
    out->p[out->len] = 0;
    return 0;
}

/* Convert an image from its text; -1 (the buffer as it was) when s_emit_map
 * must do it. */
static int s_fast_image(struct s_ctx *c, const char *text, size_t len)
{
    struct s_ctx quiet = {c->out, NULL, 0, c->what, {0}};
    struct s_fast f = {&quiet, text, text + len};
    size_t start = c->out->len;
    if (s_turbo_image(&f) == 0) {
        fanout_arena_free(&quiet.arena);
        return 0;
    }
    int rc = fanout_sbuf_reserve(c->out, len) == 0 ? s_fast_map(&f, 0) : -1;
    if (rc == 0) {
        s_fast_ws(&f);
        rc = f.p == f.end ? 0 : -1;
    }
    if (rc != 0)
        s_restore(c->out, start);
    fanout_arena_free(&quiet.arena);
    return rc;
}

/* ---- entry points ------------------------------------------------------- */

int fanout_ddb_image_write(const struct fanout_jnode *image, int convert,
                           struct fanout_sbuf *out, char *err, size_t err_len)
{
    struct s_ctx c = {out, err, err_len, "attribute", {0}};
    size_t start = out->len;
    int rc;
    if (err && err_len)
        err[0] = 0;

    if (!image) {
        rc = fanout_sbuf_puts(out, "{}") == 0 ? 0 : s_oom(&c);
    } else if (image->type != FANOUT_J_OBJECT) {
        rc = s_fail(&c, NULL, "image: expected an object of attributes, got %s",
                    s_kind(image));
    } else if (!convert) {
        /* DynamoDB JSON as it came. Attribute values are not checked in
         * this mode. */
        rc = s_dump(&c, image);
        if (rc != 0)
            rc = s_fail(&c, NULL, "image: cannot be written as JSON (out of memory?)");
    } else {
        rc = s_emit_map(&c, image, NULL, 0);
    }
    if (rc != 0)
        s_restore(out, start);
    fanout_arena_free(&c.arena);
    return rc;
}

int fanout_ddb_key_write(const struct fanout_jnode *keys, struct fanout_sbuf *out,
                         char *err, size_t err_len)
{
    struct s_ctx c = {out, err, err_len, "key attribute", {0}};
    size_t start = out->len;
    if (err && err_len)
        err[0] = 0;

    if (!keys || keys->type != FANOUT_J_OBJECT) {
        s_fail(&c, NULL, "Keys: expected an object of key attributes, got %s",
               s_kind(keys));
        goto fail;
    }
    if (keys->count == 0) {
        s_fail(&c, NULL, "Keys: empty object (expected at least one key attribute)");
        goto fail;
    }
    for (const struct fanout_jnode *it = keys->child; it; it = it->next) {
        size_t name_len;
        const char *name = s_key_text(&c, it, &name_len);
        if (!name) {
            s_oom(&c);
            goto fail;
        }
        struct s_path p = {NULL, name, name_len, 0};
        const char *type;
        size_t tl;
        const struct fanout_jnode *v;
        if (s_unwrap(&c, it, &p, &type, &tl, &v) != 0)
            goto fail;
        if (!s_type_is(type, tl, "S") && !s_type_is(type, tl, "N") &&
            !s_type_is(type, tl, "B")) {
            char q[DDB_QUOTE_MAX + 8];
            s_fail(&c, &p, "type \"%s\" cannot be a key (expected S, N or B)",
                   s_quoted(q, sizeof q, type, tl));
            goto fail;
        }
        if (v->type != FANOUT_J_STRING) {
            s_fail(&c, &p, "%c value must be a string, got %s", type[0], s_kind(v));
            goto fail;
        }
        size_t n;
        const char *s = s_value_text(&c, v, &n);
        if (!s) {
            s_oom(&c);
            goto fail;
        }
        struct s_num num;
        /* N keys are checked but kept as sent: the key is text, not JSON.
         * A plain one is valid as it is (s_number_plain). */
        if (type[0] == 'N' && !s_number_plain(s, n) &&
            s_number_check(&c, &p, "N", s, n, &num) != 0)
            goto fail;
        if (type[0] == 'B' && s_base64_validate(&c, &p, "B", s, n) != 0)
            goto fail;
        if ((it != keys->child && fanout_sbuf_putc(out, '|') != 0) ||
            fanout_sbuf_put(out, s, n) != 0) {
            s_oom(&c);
            goto fail;
        }
    }
    fanout_arena_free(&c.arena);
    return 0;

fail:
    s_restore(out, start);
    fanout_arena_free(&c.arena);
    return -1;
}

int fanout_ddb_image_text(const char *text, size_t len, int convert,
                          struct fanout_arena *nodes, struct fanout_sbuf *out, char *err,
                          size_t err_len)
{
    if (text && convert) {
        struct s_ctx c = {out, err, err_len, "attribute", {0}};
        if (s_fast_image(&c, text, len) == 0) {
            if (err && err_len)
                err[0] = 0;
            return 0;
        }
    }
    const struct fanout_jnode *img = NULL;
    if (text && !(img = fanout_jscan_valid(text, len, nodes, err, err_len)))
        return -2;
    return fanout_ddb_image_write(img, convert, out, err, err_len) == 0 ? 0 : -1;
}

const char *fanout_ddb_image_shape(const char *p, const char *end, size_t *count,
                                   struct fanout_sbuf *out)
{
    struct s_ctx quiet = {out, NULL, 0, "attribute", {0}};
    struct s_turbo t = {p, end, NULL, {&quiet, p, end}, 1, NULL};
    fanout_sbuf_reset(out);
    if (p >= end || *p != '{' ||
        fanout_sbuf_reserve(out, (size_t)(end - p) + S_TURBO_SLACK) != 0)
        return NULL;
    t.o = out->p;
    if (s_turbo_map(&t, 0, count) != 0)
        return NULL;
    out->len = (size_t)(t.o - out->p);
    out->p[out->len] = 0;
    return t.q;
}

/* ---- images of a shape met before ---------------------------------- */

/* An image fanout_ddb_image_shape took, as pieces of text between its S,
 * N and BOOL values: in[0] v0 in[1] v1 ... in[n], written out[0] v0 out[1]
 * ... out[n] (each value as it is; an S value's quotes are in the
 * pieces). Another image made of the same pieces, with values that pass
 * the same checks (a string's end as fanout_jplain_end finds it, an N as
 * s_number_plain_in takes it, a BOOL true or false), is read by
 * s_turbo_map the same way, step for step: it takes it, and writes the
 * same pieces and values. */
#define S_SEEN_BYTES 2048 /* of the pieces of one image, each way */
#define S_SEEN_PAD   32   /* read past the last piece by 16-byte loads */

/* A piece (at `in_at` in the shape's `in`, `out_at` in its `out`) and
 * the value after it (none after the last piece). */
struct s_seen_step {
    uint16_t in_at, in_len, out_at, out_len;
    uint16_t want; /* the piece's bytes in its last block of 16 (a bit each) */
    char type;     /* the value's: 'S', 'N', 'T' (BOOL) or, in Keys, 'B' */
};

struct s_seen_shape {
    size_t n; /* values; 0 with `count` 0: an empty slot */
    size_t count;
    struct s_seen_step step[S_SEEN_VALUES + 1];
    char in[S_SEEN_BYTES + S_SEEN_PAD], out[S_SEEN_BYTES + S_SEEN_PAD];
    int used;
};

/* A stream whose images seldom repeat a shape would pay for the tries
 * and for keeping shapes: a match earns a credit (up to S_SEEN_CREDIT), a
 * miss costs two; at none, images are converted as before, and only one
 * in S_SEEN_PROBE is tried (a match then gives half the credit back). */
#define S_SEEN_CREDIT 16
#define S_SEEN_PROBE  32

struct s_seen_credit {
    int credit;
    unsigned skipped; /* texts not tried since the credit ran out */
};

struct fanout_ddb_seen {
    struct s_seen_shape shape[2];
    unsigned last; /* the shape that matched last */
    struct s_seen_credit images;
    struct s_seen_shape keys; /* of the Keys read last */
    struct s_seen_credit keys_credit;
};

struct fanout_ddb_seen *fanout_ddb_seen_new(void)
{
    struct fanout_ddb_seen *seen = calloc(1, sizeof *seen);
    if (seen)
        seen->images.credit = seen->keys_credit.credit = S_SEEN_CREDIT / 2;
    return seen;
}

/* Whether to try the shapes kept for the next text. */
static inline int s_seen_try(struct s_seen_credit *c)
{
    return c->credit > 0 || ++c->skipped % S_SEEN_PROBE == 0;
}

/* A text tried: it matched a shape (`hit`) or not. */
static inline void s_seen_tried(struct s_seen_credit *c, int hit)
{
    if (hit)
        c->credit =
            c->credit > 0 ? c->credit + (c->credit < S_SEEN_CREDIT) : S_SEEN_CREDIT / 2;
    else if (c->credit > 0)
        c->credit -= 2;
}

void fanout_ddb_seen_free(struct fanout_ddb_seen *seen)
{
    free(seen);
}

#if !FANOUT_HAVE_SSE2
/* The bits that differ between the 8 bytes at `a` and those at `b`. */
static inline uint64_t s_word_diff(const char *a, const char *b)
{
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    return x ^ y;
}

/* `len` bytes at `q` (text ending at `end`) equal the piece at `piece`
 * (readable 16 bytes at a time: S_SEEN_PAD), without SSE2. */
static inline int s_seen_same(const char *q, const char *end, const char *piece, size_t len)
{
    if ((size_t)(end - q) < len)
        return 0;
    if (len - 8 <= 24) {
        /* 8 to 32 bytes as words: the first 8 and the last 8, and the 8
         * after the first and before the last from 16 bytes on */
        uint64_t diff = s_word_diff(q, piece) | s_word_diff(q + len - 8, piece + len - 8);
        if (len >= 16)
            diff |=
                s_word_diff(q + 8, piece + 8) | s_word_diff(q + len - 16, piece + len - 16);
        return diff == 0;
    }
    return memcmp(q, piece, len) == 0;
}
#endif

/* A piece (readable 32 bytes at a time: S_SEEN_PAD) to `o`, which has
 * room for 32 bytes more: the write position after it. */
static inline char *s_seen_put(char *o, const char *piece, size_t len)
{
    /* up to 32 bytes in two loads and stores, without a test */
    memcpy(o, piece, 16);
    memcpy(o + 16, piece + 16, 16);
    for (size_t i = 32; i < len; i += 16)
        memcpy(o + i, piece + i, 16);
    return o + len;
}

#if FANOUT_HAVE_SSE2
/* The bytes alike among the 16 at `a` and the 16 at `b`, a bit each. */
static inline unsigned s_eq16(const char *a, const char *b)
{
    return (unsigned)_mm_movemask_epi8(
        _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)a),
                       _mm_loadu_si128((const __m128i *)(const void *)b)));
}
#endif

/* The piece of `len` bytes at `piece` (its last block's bytes `want`)
 * at `q`: s_seen_same, 16 bytes at a time with SSE2 when the text has 16
 * bytes more than the piece from `q` on (a text without them holds no
 * image that matches: a value or 16 bytes follow each piece). */
static inline int s_seen_piece(const char *q, const char *end, const char *piece,
                               size_t len, unsigned want)
{
#if FANOUT_HAVE_SSE2
    if ((size_t)(end - q) < len + 16)
        return 0;
    if (len - 17 < 16) /* 17 to 32 bytes: the first 16 and the last 16 */
        return (s_eq16(q, piece) & s_eq16(q + len - 16, piece + len - 16)) == 0xFFFF;
    size_t b = 0;
    for (; len - b > 16; b += 16)
        if (s_eq16(q + b, piece + b) != 0xFFFF)
            return 0;
    return (s_eq16(q + b, piece + b) & want) == want;
#else
    (void)want;
    return s_seen_same(q, end, piece, len);
#endif
}

/* The end of the value of type `type` ('S', 'N', 'T' or 'B') at `q`, as
 * s_turbo_map reads it: a string's closing quote as fanout_jplain_end
 * finds it, an N as s_number_plain_in takes it, B valid base64, a BOOL
 * true or false; NULL for any other. With SSE2 a string's first 16 bytes
 * are loaded once, for its end and an N's digits. `read_only`: an N's
 * text is a string like any other, as the scan's quick pass over an image
 * reads it (an OldImage is not converted: its numbers are not checked). */
static inline const char *s_seen_value(const char *q, const char *end, char type,
                                       int read_only)
{
    if (read_only && type == 'N')
        type = 'S';
    /* fanout_jplain_end's answer; a BOOL has a piece and 16 bytes after it */
    if (end - q < 16)
        return NULL;
    if (type == 'T')
        return memcmp(q, "true", 4) == 0    ? q + 4
               : memcmp(q, "false", 5) == 0 ? q + 5
                                            : NULL;
    const char *v_end;
    size_t n, bad;
#if FANOUT_HAVE_SSE2
    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
    const unsigned stop = (unsigned)_mm_movemask_epi8(
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                  _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                     _mm_cmplt_epi8(v, _mm_set1_epi8(0x20))));
    if (stop) {
        n = (unsigned)__builtin_ctz(stop);
        if (q[n] != '"')
            return NULL;
        if (type == 'N')
            return n && s_number_plain_v(v, q, n) ? q + n : NULL;
        v_end = q + n;
    } else {
        /* the first 16 bytes whole, without a stop: the same answer */
        v_end = fanout_jplain_end(q + 16, end);
        if (!v_end)
            return NULL;
        n = (size_t)(v_end - q);
    }
#else
    v_end = fanout_jplain_end(q, end);
    if (!v_end)
        return NULL;
    n = (size_t)(v_end - q);
#endif
    if ((type == 'N' && !s_number_plain_in(q, n, end)) ||
        (type == 'B' && s_base64_check(q, n, &bad) != 0))
        return NULL;
    return v_end;
}

/* The image at `p` made of the pieces of `k`: its end, written at `o`
 * (NULL: not written; *o_end the write position after it); NULL when it
 * is not. */
__attribute__((always_inline)) static inline const char *
s_seen_match(const struct s_seen_shape *k, const char *p, const char *end, char *o,
             char **o_end)
{
    const char *q = p;
    const struct s_seen_step *s = k->step, *last = k->step + k->n;
    for (;; s++) {
        if (!s_seen_piece(q, end, k->in + s->in_at, s->in_len, s->want))
            return NULL;
        q += s->in_len;
        if (o)
            o = s_seen_put(o, k->out + s->out_at, s->out_len);
        if (s == last)
            break;
        const char *v_end = s_seen_value(q, end, s->type, !o);
        if (!v_end)
            return NULL;
        if (o)
            o = s_turbo_put(o, q, (size_t)(v_end - q), end, 0);
        q = v_end;
    }
    /* s_turbo_map finds no string's end within 16 bytes of the text's end
     * (fanout_jplain_end): 16 bytes after the image, and it would have
     * found each of this one's */
    if (end - q < 16)
        return NULL;
    if (o_end)
        *o_end = o;
    return q;
}

/* Keep the image [p, q) written as [base, o), whose values `note` has,
 * in `k`; nothing when it has too many values or bytes of pieces. */
static void s_seen_learn(struct s_seen_shape *k, const struct s_seen_note *note,
                         const char *p, const char *q, const char *o, size_t count)
{
    size_t n = note->n, in_len = 0, out_len = 0;
    if (n > S_SEEN_VALUES)
        return;
    const char *in_from = p;
    size_t out_from = 0;
    k->used = 0;
    for (size_t i = 0; i <= n; i++) {
        /* the piece before value i, or after the last */
        const char *in_to = i < n ? note->in[i] : q;
        size_t out_to = i < n ? note->out[i] : (size_t)(o - note->base);
        size_t a = (size_t)(in_to - in_from), b = out_to - out_from;
        if (in_len + a > S_SEEN_BYTES || out_len + b > S_SEEN_BYTES)
            return;
        struct s_seen_step *st = &k->step[i];
        st->in_at = (uint16_t)in_len;
        st->in_len = (uint16_t)a;
        st->out_at = (uint16_t)out_len;
        st->out_len = (uint16_t)b;
        st->want = a ? (uint16_t)(0xFFFFu >> (16 - (a - (a - 1) / 16 * 16))) : 0;
        st->type = i < n ? note->type[i] : 0;
        memcpy(k->in + in_len, in_from, a);
        memcpy(k->out + out_len, note->base + out_from, b);
        in_len += a;
        out_len += b;
        if (i < n) {
            in_from = note->in[i] + note->len[i];
            out_from = note->out[i] + note->len[i];
        }
    }
    k->n = n;
    k->count = count;
    k->used = 1;
}

/* `out` reset and with room for the text from `p` on (to `end`) and
 * S_TURBO_SLACK bytes, when `p` is at a '{': 0, else -1. The calls only
 * when the buffer is short (once per event, the text not growing). */
static inline int s_seen_out(struct fanout_sbuf *out, const char *p, const char *end)
{
    out->len = 0;
    if (p < end && *p == '{') {
        size_t need = (size_t)(end - p) + S_TURBO_SLACK;
        if (need < out->cap || fanout_sbuf_reserve(out, need) == 0) {
            out->p[0] = 0;
            return 0;
        }
    }
    if (out->p) /* empty, as fanout_sbuf_reset leaves it */
        out->p[0] = 0;
    return -1;
}

const char *fanout_ddb_image_seen(struct fanout_ddb_seen *seen, const char *p,
                                  const char *end, size_t *count, struct fanout_sbuf *out)
{
    if (out && s_seen_out(out, p, end) != 0)
        return NULL;
    int try = s_seen_try(&seen->images);
    for (unsigned t = 0; try && t < 2; t++) {
        unsigned i = seen->last ^ t;
        const struct s_seen_shape *k = &seen->shape[i];
        char *o_end = NULL;
        const char *q;
        /* apart, so that each has its `o` known: written, or not */
        if (!k->used || !(q = out ? s_seen_match(k, p, end, out->p, &o_end)
                                  : s_seen_match(k, p, end, NULL, NULL)))
            continue;
        seen->last = i;
        s_seen_tried(&seen->images, 1);
        *count = k->count;
        if (out) {
            out->len = (size_t)(o_end - out->p);
            out->p[out->len] = 0;
        }
        return q;
    }
    if (try)
        s_seen_tried(&seen->images, 0);
    if (!out)
        return NULL;
    /* converted as fanout_ddb_image_shape does, and, when tried, kept in
     * place of the shape that did not match last (the two last shapes are
     * kept) */
    struct s_ctx quiet = {out, NULL, 0, "attribute", {0}};
    struct s_seen_note note = {.base = out->p};
    struct s_turbo t = {p, end, out->p, {&quiet, p, end}, 1, try ? &note : NULL};
    if (s_turbo_map(&t, 0, count) != 0)
        return NULL;
    if (try) {
        seen->last ^= 1;
        s_seen_learn(&seen->shape[seen->last], &note, p, t.q, t.o, *count);
    }
    out->len = (size_t)(t.o - out->p);
    out->p[out->len] = 0;
    return t.q;
}

/* fanout_ddb_key_write from the text for Keys of the common shape: each
 * key attribute {"S"|"N"|"B": "value"} with names and values without
 * escapes, N plain (s_number_plain), B valid base64. The end of the object
 * (after its '}'), its member count in *count; NULL (the buffer's length
 * restored by the caller) for anything else. `strict`, for text not
 * validated yet (fanout_ddb_keys_shape): strings as fanout_jplain_end
 * finds them, names distinct. */
static const char *s_turbo_keys(const char *q, const char *end, int strict, size_t *count,
                                struct fanout_sbuf *out, struct s_seen_note *note)
{
    struct {
        const char *s;
        size_t n;
    } names[S_TURBO_NAMES];
    size_t n_names = 0;
    q = fanout_jws(q, end);
    if (q >= end || *q != '{')
        return NULL;
    q = fanout_jws(q + 1, end);
    if (q < end && *q == '}')
        return NULL; /* empty: fanout_ddb_key_write says so */
    for (int first = 1;; first = 0) {
        const char *name = q + 1, *name_end = NULL;
        if (q < end && *q == '"')
            name_end = strict ? fanout_jplain_end(name, end) : s_turbo_str_end(name, end);
        if (!name_end)
            return NULL;
        if (strict) {
            size_t len = (size_t)(name_end - name);
            if (n_names == S_TURBO_NAMES)
                return NULL;
            for (size_t i = 0; i < n_names; i++)
                if (names[i].n == len && memcmp(names[i].s, name, len) == 0)
                    return NULL;
            names[n_names].s = name;
            names[n_names].n = len;
        }
        n_names++;
        q = fanout_jws(name_end + 1, end);
        if (q >= end || *q != ':')
            return NULL;
        q = fanout_jws(q + 1, end);
        char type;
        const char *v = s_turbo_av_head(q, end, &type);
        if (!v) {
            if (q >= end || *q != '{')
                return NULL;
            q = fanout_jws(q + 1, end);
            if (end - q < 3 || q[0] != '"' || q[2] != '"' ||
                (q[1] != 'S' && q[1] != 'N' && q[1] != 'B'))
                return NULL;
            type = q[1];
            q = fanout_jws(q + 3, end);
            if (q >= end || *q != ':')
                return NULL;
            q = fanout_jws(q + 1, end);
            if (q >= end || *q != '"')
                return NULL;
            v = q + 1;
        }
        const char *v_end = strict ? fanout_jplain_end(v, end) : s_turbo_str_end(v, end);
        if (!v_end)
            return NULL;
        size_t n = (size_t)(v_end - v), bad;
        if ((type == 'N' && !s_number_plain_in(v, n, end)) ||
            (type == 'B' && s_base64_check(v, n, &bad) != 0))
            return NULL;
        if (note) /* its offset in the output: the values and '|' before it */
            s_seen_add(note, v, n, out->len + !first, type);
        /* '|' and the value, written in place */
        if (out->cap - out->len <= n + 1 && fanout_sbuf_reserve(out, n + 1) != 0)
            return NULL;
        char *o = out->p + out->len;
        if (!first)
            *o++ = '|';
        memcpy(o, v, n);
        o[n] = 0;
        out->len = (size_t)(o + n - out->p);
        q = fanout_jws(v_end + 1, end);
        if (q >= end || *q != '}')
            return NULL;
        q = fanout_jws(q + 1, end);
        if (q < end && *q == '}') {
            *count = n_names;
            return q + 1;
        }
        if (q >= end || *q != ',')
            return NULL;
        q = fanout_jws(q + 1, end);
    }
}

const char *fanout_ddb_keys_shape(const char *p, const char *end, size_t *count,
                                  struct fanout_sbuf *out)
{
    fanout_sbuf_reset(out);
    const char *q = p < end && *p == '{' ? s_turbo_keys(p, end, 1, count, out, NULL) : NULL;
    if (!q)
        fanout_sbuf_reset(out);
    return q;
}

const char *fanout_ddb_keys_seen(struct fanout_ddb_seen *seen, const char *p,
                                 const char *end, size_t *count, struct fanout_sbuf *out)
{
    if (s_seen_out(out, p, end) != 0)
        return NULL;
    int try = s_seen_try(&seen->keys_credit);
    char *o_end = NULL;
    const char *q =
        try && seen->keys.used ? s_seen_match(&seen->keys, p, end, out->p, &o_end) : NULL;
    if (try)
        s_seen_tried(&seen->keys_credit, q != NULL);
    if (q) {
        *count = seen->keys.count;
        out->len = (size_t)(o_end - out->p);
        out->p[out->len] = 0;
        return q;
    }
    /* read as fanout_ddb_keys_shape reads them, and, when tried, kept:
     * their pieces written as "", "|" ... "" around the values */
    struct s_seen_note note = {0};
    q = s_turbo_keys(p, end, 1, count, out, try ? &note : NULL);
    if (!q) {
        fanout_sbuf_reset(out);
        return NULL;
    }
    if (try) {
        note.base = out->p;
        s_seen_learn(&seen->keys, &note, p, q, out->p + out->len, *count);
    }
    return q;
}

int fanout_ddb_key_text(const char *text, size_t len, struct fanout_arena *nodes,
                        struct fanout_sbuf *out, char *err, size_t err_len)
{
    size_t start = out->len;
    if (err && err_len)
        err[0] = 0;
    size_t count;
    const char *q = s_turbo_keys(text, text + len, 0, &count, out, NULL);
    if (q && fanout_jws(q, text + len) == text + len)
        return 0;
    s_restore(out, start);
    const struct fanout_jnode *keys = fanout_jscan_valid(text, len, nodes, err, err_len);
    if (!keys)
        return -2;
    return fanout_ddb_key_write(keys, out, err, err_len) == 0 ? 0 : -1;
}

/* A member of a whole record: an image or Keys (`image`), else a scalar
 * as it came (a number's text as it is, a string as s_dump writes it). */
static int s_record_member(struct s_ctx *c, const struct fanout_jnode *v, int image,
                           int convert)
{
    if (!image)
        return v->type == FANOUT_J_NUMBER
                   ? (fanout_sbuf_put(c->out, v->text, v->len) == 0 ? 0 : s_oom(c))
                   : (s_dump(c, v) == 0 ? 0 : s_oom(c));
    if (v->type != FANOUT_J_OBJECT)
        return s_fail(c, NULL, "expected an object of attributes, got %s", s_kind(v));
    if (!convert)
        return s_dump(c, v) == 0
                   ? 0
                   : s_fail(c, NULL, "cannot be written as JSON (out of memory?)");
    if (s_fast_image(c, v->text, v->len) == 0)
        return 0;
    return s_emit_map(c, v, NULL, 0);
}

int fanout_ddb_record_write(const struct fanout_jnode *record, int convert,
                            struct fanout_sbuf *out, char *err, size_t err_len)
{
    static const struct {
        const char *name;
        int in_dynamodb, image;
    } members[] = {
        {"eventName", 0, 0},
        {"eventID", 0, 0},
        {"Keys", 1, 1},
        {"OldImage", 1, 1},
        {"NewImage", 1, 1},
        {"SequenceNumber", 1, 0},
        {"ApproximateCreationDateTime", 1, 0},
    };
    struct s_ctx c = {out, NULL, 0, "attribute", {0}};
    size_t start = out->len;
    char why[384];
    if (err && err_len)
        err[0] = 0;
    const struct fanout_jnode *d = fanout_jget(record, "dynamodb");
    int rc = fanout_sbuf_putc(out, '{');
    size_t written = 0;
    for (size_t i = 0; rc == 0 && i < sizeof members / sizeof members[0]; i++) {
        const struct fanout_jnode *v =
            fanout_jget(members[i].in_dynamodb ? d : record, members[i].name);
        if (!v)
            continue;
        if ((written++ && fanout_sbuf_putc(out, ',') != 0) ||
            fanout_sbuf_printf(out, "\"%s\":", members[i].name) != 0) {
            rc = -1;
            break;
        }
        c.err = why;
        c.err_len = sizeof why;
        rc = s_record_member(&c, v, members[i].image, convert);
        if (rc != 0)
            snprintf(err, err_len, "field \"%s%s\": %s",
                     members[i].in_dynamodb ? "dynamodb." : "", members[i].name, why);
    }
    if (rc == 0 && fanout_sbuf_putc(out, '}') != 0)
        rc = -1;
    if (rc != 0 && err && err_len && !err[0])
        snprintf(err, err_len, "out of memory");
    if (rc != 0)
        s_restore(out, start);
    fanout_arena_free(&c.arena);
    return rc;
}

/* A \u0000 escape in a member name's text. */
static int s_name_has_nul(const char *raw, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (raw[i] != '\\')
            continue;
        if (raw[i + 1] == 'u' && memcmp(raw + i + 2, "0000", 4) == 0)
            return 1;
        i += raw[i + 1] == 'u' ? 5 : 1;
    }
    return 0;
}

static int s_readable(const struct fanout_jnode *v)
{
    if (v->type == FANOUT_J_NUMBER) {
        int is_int;
        long long i;
        double d;
        return s_json_number(v, &is_int, &i, &d) == 0;
    }
    for (const struct fanout_jnode *m = v->child; m; m = m->next) {
        if (m->key_escaped && s_name_has_nul(m->key, m->key_len))
            return 0;
        if (!s_readable(m))
            return 0;
    }
    return 1;
}

int fanout_ddb_readable(const struct fanout_jnode *v)
{
    /* jansson read an object or an array only */
    return (v->type == FANOUT_J_OBJECT || v->type == FANOUT_J_ARRAY) && s_readable(v);
}

/* ---- jansson trees ------------------------------------------------------ */

/* jansson's iterator functions take a non-const object but do not modify it. */
static void *s_iter(const json_t *o)
{
    return json_object_iter((json_t *)o);
}

static void *s_iter_next(const json_t *o, void *it)
{
    return json_object_iter_next((json_t *)o, it);
}

/* A string's text as the scanner keeps it: as it is when JSON needs no
 * escape in it, else escaped (and *escaped set). -1 when out of memory. */
static int s_scan_text(const char *s, size_t n, struct fanout_arena *a,
                       struct fanout_sbuf *tmp, const char **text, size_t *len,
                       unsigned char *escaped)
{
    fanout_sbuf_reset(tmp);
    if (fanout_sbuf_json_str(tmp, s, n) != 0)
        return -1;
    const char *enc = (const char *)tmp->bytes + 1;
    size_t enc_len = tmp->len - 2;
    *escaped = !(enc_len == n && memcmp(enc, s, n) == 0);
    *text = *escaped ? fanout_arena_memdup(a, enc, enc_len) : s;
    *len = *escaped ? enc_len : n;
    return *text ? 0 : -1;
}

/* A jansson value as scanner nodes (into `a`, strings pointing into the
 * tree), built directly: a tree can be deeper than the scanner reads, and
 * the conversion refuses what is too deep itself. NULL when out of memory. */
static struct fanout_jnode *s_nodes(const json_t *j, struct fanout_arena *a,
                                    struct fanout_sbuf *tmp)
{
    struct fanout_jnode *n = fanout_arena_calloc(a, sizeof *n);
    if (!n)
        return NULL;
    struct fanout_jnode **link = &n->child;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        n->type = FANOUT_J_OBJECT;
        for (void *it = s_iter(j); it; it = s_iter_next(j, it), n->count++) {
            struct fanout_jnode *m = s_nodes(json_object_iter_value(it), a, tmp);
            if (!m || s_scan_text(json_object_iter_key(it), json_object_iter_key_len(it), a,
                                  tmp, &m->key, &m->key_len, &m->key_escaped) != 0)
                return NULL;
            *link = m;
            link = &m->next;
        }
        return n;
    case JSON_ARRAY:
        n->type = FANOUT_J_ARRAY;
        for (; n->count < json_array_size(j); n->count++) {
            struct fanout_jnode *e = s_nodes(json_array_get(j, n->count), a, tmp);
            if (!e)
                return NULL;
            *link = e;
            link = &e->next;
        }
        return n;
    case JSON_STRING:
        n->type = FANOUT_J_STRING;
        return s_scan_text(json_string_value(j), json_string_length(j), a, tmp, &n->text,
                           &n->len, &n->escaped) == 0
                   ? n
                   : NULL;
    case JSON_INTEGER:
    case JSON_REAL:
        n->type = FANOUT_J_NUMBER;
        fanout_sbuf_reset(tmp);
        if ((json_is_integer(j)
                 ? fanout_sbuf_printf(tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(j))
                 : s_put_real(tmp, json_real_value(j))) != 0)
            return NULL;
        n->len = tmp->len;
        n->text = fanout_arena_memdup(a, tmp->bytes, tmp->len);
        return n->text ? n : NULL;
    case JSON_TRUE: n->type = FANOUT_J_TRUE; return n;
    case JSON_FALSE: n->type = FANOUT_J_FALSE; return n;
    case JSON_NULL: n->type = FANOUT_J_NULL; return n;
    }
    return NULL;
}

int fanout_ddb_image_to_json(const json_t *image, int convert, struct fanout_sbuf *out,
                             char *err, size_t err_len)
{
    if (!image)
        return fanout_ddb_image_write(NULL, convert, out, err, err_len);
    struct fanout_sbuf text = {0};
    struct fanout_arena a = {0};
    const struct fanout_jnode *n = s_nodes(image, &a, &text);
    int rc;
    if (n) {
        rc = fanout_ddb_image_write(n, convert, out, err, err_len);
    } else {
        struct s_ctx c = {out, err, err_len, "attribute", {0}};
        rc = s_oom(&c);
    }
    fanout_sbuf_free(&text);
    fanout_arena_free(&a);
    return rc;
}

int fanout_ddb_key(const json_t *keys, struct fanout_sbuf *out, char *err, size_t err_len)
{
    if (!keys)
        return fanout_ddb_key_write(NULL, out, err, err_len);
    struct fanout_sbuf text = {0};
    struct fanout_arena a = {0};
    const struct fanout_jnode *n = s_nodes(keys, &a, &text);
    int rc;
    if (n) {
        rc = fanout_ddb_key_write(n, out, err, err_len);
    } else {
        struct s_ctx c = {out, err, err_len, "key attribute", {0}};
        rc = s_oom(&c);
    }
    fanout_sbuf_free(&text);
    fanout_arena_free(&a);
    return rc;
}
