#include "core/filter.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jscan.h"
#include "common/util.h"
#include "core/event.h"
#include "core/mapping.h"

/* Nesting deeper than this is refused (the matcher recurses). */
#define S_DEPTH_MAX 32
/* EventBridge's bounds for numeric matching. */
#define S_NUMERIC_MAX 5.0e9

enum s_op {
    S_EQ_STR,
    S_EQ_NUM,
    S_TRUE,
    S_FALSE,
    S_NULL,
    S_PREFIX,
    S_SUFFIX,
    S_EQ_IC,
    S_PREFIX_IC,
    S_SUFFIX_IC,
    S_WILDCARD,
    S_NUMERIC,
    S_EXISTS,
    S_CIDR,
    S_ANYTHING_BUT,
};

struct s_leaf {
    enum s_op op;
    const char *s; /* strings; a wildcard's text with escapes resolved */
    size_t len;
    const uint8_t *star; /* wildcard: 1 where s[i] is a '*' that matches runs */
    double num;
    double lo, hi; /* numeric */
    unsigned char has_lo, has_hi, lo_incl, hi_incl;
    int exists;
    int family, bits; /* cidr: AF_INET or AF_INET6, prefix length */
    uint8_t addr[16];
    /* anything-but: the values it excludes; strings_only for its operator
     * forms, which consider string values only */
    struct s_leaf *but;
    size_t but_count;
    int strings_only;
};

struct s_node;

struct s_field {
    const char *name;
    size_t name_len;
    struct s_node *nested; /* an object pattern, or NULL */
    struct s_leaf *leaves;
    size_t count;
};

struct s_node {
    struct s_field *fields;
    size_t count;
    struct s_node *ors; /* "$or": one of these must match, too */
    size_t or_count;
};

struct fanout_filter {
    struct fanout_arena arena; /* everything below */
    struct s_node root;
    int names_data;
};

/* ---- compiling ----------------------------------------------------------- */

struct s_comp {
    struct fanout_arena *a;
    char *err;
    size_t err_len;
    char path[256];
    int oom;
};

static const char *s_type(const json_t *v)
{
    return fanout_json_type_name(v);
}

static int s_fail(struct s_comp *c, const char *fmt, ...) FANOUT_FMT(2, 3);
static int s_fail(struct s_comp *c, const char *fmt, ...)
{
    char rule[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rule, sizeof rule, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->err_len, "%s: %s", c->path[0] ? c->path : "the pattern", rule);
    return -1;
}

static int s_oom(struct s_comp *c)
{
    c->oom = 1;
    snprintf(c->err, c->err_len, "out of memory");
    return -1;
}

/* Append ".name" or "[i]" to the path; returns the old length to restore. */
static size_t s_push_key(struct s_comp *c, const char *key)
{
    size_t n = strlen(c->path);
    snprintf(c->path + n, sizeof c->path - n, "%s%s", n ? "." : "", key);
    return n;
}

static size_t s_push_index(struct s_comp *c, size_t i)
{
    size_t n = strlen(c->path);
    snprintf(c->path + n, sizeof c->path - n, "[%zu]", i);
    return n;
}

static const char *s_dup(struct s_comp *c, const json_t *str, size_t *len)
{
    *len = json_string_length(str);
    return fanout_arena_memdup(c->a, json_string_value(str), *len);
}

/* A string operand of operator `op`. */
static int s_string_of(struct s_comp *c, const char *op, const json_t *v, struct s_leaf *l)
{
    if (!json_is_string(v))
        return s_fail(c, "\"%s\" expects a string, got %s", op, s_type(v));
    if (!(l->s = s_dup(c, v, &l->len)))
        return s_oom(c);
    return 0;
}

/* {"wildcard": "..."}: escapes resolved, '*' marked. */
static int s_wildcard(struct s_comp *c, const json_t *v, struct s_leaf *l)
{
    if (!json_is_string(v))
        return s_fail(c, "\"wildcard\" expects a string, got %s", s_type(v));
    const char *p = json_string_value(v);
    size_t n = json_string_length(v), k = 0;
    char *s = fanout_arena_alloc(c->a, n + 1);
    uint8_t *star = fanout_arena_calloc(c->a, n + 1);
    if (!s || !star)
        return s_oom(c);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\') {
            if (i + 1 < n && (p[i + 1] == '*' || p[i + 1] == '\\')) {
                s[k++] = p[++i];
                continue;
            }
            return s_fail(c,
                          "\"wildcard\": a backslash at offset %zu escapes neither '*' nor "
                          "'\\' (write \\\\* for a literal '*', \\\\\\\\ for a backslash)",
                          i);
        }
        if (p[i] == '*') {
            if (k && star[k - 1])
                return s_fail(
                    c,
                    "\"wildcard\": consecutive '*' at offset %zu (one '*' already "
                    "matches any run of characters)",
                    i);
            star[k] = 1;
        }
        s[k++] = p[i];
    }
    l->op = S_WILDCARD;
    l->s = s;
    l->len = k;
    l->star = star;
    return 0;
}

/* {"cidr": "10.0.0.0/24"} or an IPv6 prefix. */
static int s_cidr(struct s_comp *c, const json_t *v, struct s_leaf *l)
{
    if (!json_is_string(v))
        return s_fail(c, "\"cidr\" expects a string like \"10.0.0.0/24\", got %s",
                      s_type(v));
    char buf[64];
    const char *text = json_string_value(v);
    size_t n = json_string_length(v);
    const char *slash = memchr(text, '/', n);
    size_t alen = slash ? (size_t)(slash - text) : n;
    if (alen >= sizeof buf || strlen(text) != n)
        goto bad;
    memcpy(buf, text, alen);
    buf[alen] = 0;
    if (inet_pton(AF_INET, buf, l->addr) == 1)
        l->family = AF_INET;
    else if (inet_pton(AF_INET6, buf, l->addr) == 1)
        l->family = AF_INET6;
    else
        goto bad;
    int max = l->family == AF_INET ? 32 : 128;
    l->bits = max;
    if (slash) {
        const char *b = slash + 1;
        if (!*b || strlen(b) > 3)
            goto bad;
        int bits = 0;
        for (; *b; b++) {
            if (!isdigit((unsigned char)*b))
                goto bad;
            bits = bits * 10 + (*b - '0');
        }
        if (bits > max)
            goto bad;
        l->bits = bits;
    }
    l->op = S_CIDR;
    return 0;
bad:
    return s_fail(c,
                  "\"cidr\" expects an IPv4 or IPv6 address with an optional prefix "
                  "length, like \"10.0.0.0/24\" or \"2001:db8::/32\", got \"%.*s\"",
                  (int)(n > 64 ? 64 : n), text);
}

/* {"numeric": [">", 0, "<=", 5]} */
static int s_numeric(struct s_comp *c, const json_t *v, struct s_leaf *l)
{
    static const char *const want =
        "\"numeric\" expects [\"<op>\", <number>] pairs: one lower bound (\">\" or "
        "\">=\") and/or one upper bound (\"<\" or \"<=\"), or [\"=\", <number>]";
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n == 0 || n % 2 || n > 4)
        return s_fail(c, "%s, got %s%s", want, json_is_array(v) ? "" : s_type(v),
                      json_is_array(v) ? "an array of another length" : "");
    l->op = S_NUMERIC;
    for (size_t i = 0; i < n; i += 2) {
        const json_t *o = json_array_get(v, i), *x = json_array_get(v, i + 1);
        if (!json_is_string(o))
            return s_fail(c,
                          "\"numeric\" expects an operator (<, <=, =, >, >=) at position "
                          "%zu, got %s",
                          i, s_type(o));
        if (!json_is_number(x))
            return s_fail(c, "\"numeric\" expects a number at position %zu, got %s", i + 1,
                          s_type(x));
        double d = json_number_value(x);
        if (!(d >= -S_NUMERIC_MAX && d <= S_NUMERIC_MAX))
            return s_fail(c,
                          "\"numeric\": %g at position %zu is out of range (numeric "
                          "matching works from -5e9 to 5e9)",
                          d, i + 1);
        const char *op = json_string_value(o);
        int lower = !strcmp(op, ">") || !strcmp(op, ">=");
        int upper = !strcmp(op, "<") || !strcmp(op, "<=");
        if (!strcmp(op, "=")) {
            if (n != 2)
                return s_fail(c, "\"numeric\": \"=\" takes no other bound");
            l->has_lo = l->has_hi = l->lo_incl = l->hi_incl = 1;
            l->lo = l->hi = d;
        } else if (lower && !l->has_lo) {
            l->has_lo = 1;
            l->lo_incl = op[1] == '=';
            l->lo = d;
        } else if (upper && !l->has_hi) {
            l->has_hi = 1;
            l->hi_incl = op[1] == '=';
            l->hi = d;
        } else if (lower || upper) {
            return s_fail(c, "\"numeric\": a second %s bound at position %zu",
                          lower ? "lower" : "upper", i);
        } else {
            char q[FANOUT_QUOTE_SIZE];
            return s_fail(c,
                          "\"numeric\": unknown operator \"%s\" at position %zu (expected "
                          "<, <=, =, >, >=)",
                          fanout_quote(q, op), i);
        }
    }
    if (l->has_lo && l->has_hi && !(l->lo < l->hi || (l->lo == l->hi && l->lo_incl)))
        return s_fail(c, "\"numeric\": the lower bound %g is not below the upper bound %g",
                      l->lo, l->hi);
    return 0;
}

static int s_value(struct s_comp *c, const json_t *v, struct s_leaf *l);

/* {"anything-but": ...} */
static int s_anything_but(struct s_comp *c, const json_t *v, struct s_leaf *l)
{
    l->op = S_ANYTHING_BUT;
    if (json_is_string(v) || json_is_number(v)) {
        l->but_count = 1;
        l->but = fanout_arena_calloc(c->a, sizeof *l->but);
        return l->but ? s_value(c, v, l->but) : s_oom(c);
    }
    if (json_is_array(v)) {
        size_t n = json_array_size(v), strings = 0;
        for (size_t i = 0; i < n; i++) {
            const json_t *x = json_array_get(v, i);
            if (!json_is_string(x) && !json_is_number(x))
                return s_fail(c,
                              "\"anything-but\" expects a list of strings or of numbers, "
                              "got %s at position %zu",
                              s_type(x), i);
            strings += json_is_string(x);
        }
        if (!n || (strings && strings != n))
            return s_fail(c, "\"anything-but\" expects a non-empty list of strings only or "
                             "numbers only");
        l->but_count = n;
        l->but = fanout_arena_calloc(c->a, n * sizeof *l->but);
        if (!l->but)
            return s_oom(c);
        for (size_t i = 0; i < n; i++)
            if (s_value(c, json_array_get(v, i), &l->but[i]) != 0)
                return -1;
        return 0;
    }
    const char *key = json_is_object(v) && json_object_size(v) == 1
                          ? json_object_iter_key(json_object_iter((json_t *)v))
                          : "";
    const json_t *x = json_object_get(v, key);
    enum s_op op;
    if (!strcmp(key, "prefix"))
        op = S_PREFIX;
    else if (!strcmp(key, "suffix"))
        op = S_SUFFIX;
    else if (!strcmp(key, "equals-ignore-case"))
        op = S_EQ_IC;
    else if (!strcmp(key, "wildcard"))
        op = S_WILDCARD;
    else
        return s_fail(c,
                      "\"anything-but\" expects a string, a number, a list of either, or "
                      "an object with one of prefix, suffix, equals-ignore-case, "
                      "wildcard; got %s",
                      s_type(v));
    l->strings_only = 1;
    /* prefix and suffix take one string; the others a string or a list */
    size_t n =
        json_is_array(x) && op != S_PREFIX && op != S_SUFFIX ? json_array_size(x) : 1;
    if (!n)
        return s_fail(c, "\"anything-but\": \"%s\" expects a non-empty list", key);
    l->but_count = n;
    l->but = fanout_arena_calloc(c->a, n * sizeof *l->but);
    if (!l->but)
        return s_oom(c);
    for (size_t i = 0; i < n; i++) {
        const json_t *s = n > 1 || (json_is_array(x) && op != S_PREFIX && op != S_SUFFIX)
                              ? json_array_get(x, i)
                              : x;
        l->but[i].op = op;
        if (op == S_WILDCARD ? s_wildcard(c, s, &l->but[i]) != 0
                             : s_string_of(c, key, s, &l->but[i]) != 0)
            return -1;
    }
    return 0;
}

/* prefix / suffix: a string, or {"equals-ignore-case": "..."} */
static int s_affix(struct s_comp *c, const char *op, const json_t *v, struct s_leaf *l)
{
    int prefix = op[0] == 'p';
    if (json_is_object(v)) {
        const json_t *x = json_object_get(v, "equals-ignore-case");
        if (!x || json_object_size(v) != 1)
            return s_fail(c,
                          "\"%s\" expects a string or {\"equals-ignore-case\": "
                          "\"...\"}",
                          op);
        l->op = prefix ? S_PREFIX_IC : S_SUFFIX_IC;
        return s_string_of(c, op, x, l);
    }
    l->op = prefix ? S_PREFIX : S_SUFFIX;
    return s_string_of(c, op, v, l);
}

/* One alternative of a field: a value, or an object with one operator. */
static int s_value(struct s_comp *c, const json_t *v, struct s_leaf *l)
{
    switch (json_typeof(v)) {
    case JSON_STRING: l->op = S_EQ_STR; return (l->s = s_dup(c, v, &l->len)) ? 0 : s_oom(c);
    case JSON_INTEGER:
    case JSON_REAL:
        l->op = S_EQ_NUM;
        l->num = json_number_value(v);
        return 0;
    case JSON_TRUE: l->op = S_TRUE; return 0;
    case JSON_FALSE: l->op = S_FALSE; return 0;
    case JSON_NULL: l->op = S_NULL; return 0;
    case JSON_ARRAY:
        return s_fail(c, "expected a value or an operator object, got an array (a field "
                         "lists its alternatives in one array, not nested)");
    case JSON_OBJECT: break;
    }
    if (json_object_size(v) != 1)
        return s_fail(c,
                      "an operator object has exactly one member (e.g. {\"prefix\": "
                      "\"us-\"}), got %zu",
                      json_object_size(v));
    const char *op = json_object_iter_key(json_object_iter((json_t *)v));
    const json_t *x = json_object_get(v, op);
    if (!strcmp(op, "prefix") || !strcmp(op, "suffix"))
        return s_affix(c, op, x, l);
    if (!strcmp(op, "equals-ignore-case")) {
        l->op = S_EQ_IC;
        return s_string_of(c, op, x, l);
    }
    if (!strcmp(op, "wildcard"))
        return s_wildcard(c, x, l);
    if (!strcmp(op, "anything-but"))
        return s_anything_but(c, x, l);
    if (!strcmp(op, "numeric"))
        return s_numeric(c, x, l);
    if (!strcmp(op, "cidr"))
        return s_cidr(c, x, l);
    if (!strcmp(op, "exists")) {
        if (!json_is_boolean(x))
            return s_fail(c, "\"exists\" expects true or false, got %s", s_type(x));
        l->op = S_EXISTS;
        l->exists = json_is_true(x);
        return 0;
    }
    char q[FANOUT_QUOTE_SIZE];
    return s_fail(c,
                  "\"%s\" is not an operator (expected one of prefix, suffix, "
                  "equals-ignore-case, wildcard, anything-but, numeric, exists, cidr)",
                  fanout_quote(q, op));
}

static int s_node(struct s_comp *c, const json_t *obj, struct s_node *node, int depth);

static int s_or(struct s_comp *c, const json_t *v, struct s_node *node, int depth)
{
    size_t n = json_array_size(v);
    if (!json_is_array(v) || !n)
        return s_fail(c, "expected a non-empty array of patterns (objects), got %s",
                      json_is_array(v) ? "an empty array" : s_type(v));
    node->or_count = n;
    node->ors = fanout_arena_calloc(c->a, n * sizeof *node->ors);
    if (!node->ors)
        return s_oom(c);
    for (size_t i = 0; i < n; i++) {
        size_t back = s_push_index(c, i);
        if (s_node(c, json_array_get(v, i), &node->ors[i], depth + 1) != 0)
            return -1;
        c->path[back] = 0;
    }
    return 0;
}

static int s_node(struct s_comp *c, const json_t *obj, struct s_node *node, int depth)
{
    if (depth > S_DEPTH_MAX)
        return s_fail(c, "nested deeper than %d levels", S_DEPTH_MAX);
    if (!json_is_object(obj))
        return s_fail(c, "expected a pattern object, got %s", s_type(obj));
    if (!json_object_size(obj))
        return s_fail(c, "an empty pattern object names no field to match");
    node->fields = fanout_arena_calloc(c->a, json_object_size(obj) * sizeof *node->fields);
    if (!node->fields)
        return s_oom(c);
    const char *key;
    const json_t *v;
    json_object_foreach ((json_t *)obj, key, v) {
        size_t back = s_push_key(c, key);
        if (!strcmp(key, "$or")) {
            if (s_or(c, v, node, depth) != 0)
                return -1;
            c->path[back] = 0;
            continue;
        }
        struct s_field *f = &node->fields[node->count++];
        f->name_len = strlen(key);
        if (!(f->name = fanout_arena_memdup(c->a, key, f->name_len)))
            return s_oom(c);
        if (json_is_object(v)) {
            if (!(f->nested = fanout_arena_calloc(c->a, sizeof *f->nested)))
                return s_oom(c);
            if (s_node(c, v, f->nested, depth + 1) != 0)
                return -1;
        } else if (json_is_array(v) && json_array_size(v)) {
            f->count = json_array_size(v);
            if (!(f->leaves = fanout_arena_calloc(c->a, f->count * sizeof *f->leaves)))
                return s_oom(c);
            for (size_t i = 0; i < f->count; i++) {
                size_t b = s_push_index(c, i);
                if (s_value(c, json_array_get(v, i), &f->leaves[i]) != 0)
                    return -1;
                c->path[b] = 0;
            }
        } else {
            return s_fail(c,
                          "expected an array of values to match (e.g. [\"INSERT\"]) or an "
                          "object of nested fields, got %s",
                          json_is_array(v) ? "an empty array" : s_type(v));
        }
        c->path[back] = 0;
    }
    return 0;
}

/* Whether `node` names "data", directly or through its "$or". */
static int s_names(const struct s_node *node, const char *name)
{
    for (size_t i = 0; i < node->count; i++)
        if (!strcmp(node->fields[i].name, name))
            return 1;
    for (size_t i = 0; i < node->or_count; i++)
        if (s_names(&node->ors[i], name))
            return 1;
    return 0;
}

struct fanout_filter *fanout_filter_compile(const json_t *pattern, char *err,
                                            size_t err_len)
{
    struct fanout_filter *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    struct s_comp c = {.a = &f->arena, .err = err, .err_len = err_len};
    if (s_node(&c, pattern, &f->root, 0) != 0) {
        fanout_filter_free(f);
        return NULL;
    }
    f->names_data = s_names(&f->root, "data");
    return f;
}

void fanout_filter_free(struct fanout_filter *f)
{
    if (!f)
        return;
    fanout_arena_free(&f->arena);
    free(f);
}

int fanout_filter_names_data(const struct fanout_filter *f)
{
    return f->names_data;
}

/* ---- matching ------------------------------------------------------------ */

static int s_eq_ic(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* '*' runs only: the classic backtracking to the last star is exact. */
static int s_glob(const struct s_leaf *l, const char *t, size_t tn)
{
    size_t p = 0, i = 0, star = SIZE_MAX, mark = 0;
    while (i < tn) {
        if (p < l->len && l->star[p]) {
            star = p++;
            mark = i;
        } else if (p < l->len && l->s[p] == t[i]) {
            p++;
            i++;
        } else if (star != SIZE_MAX) {
            p = star + 1;
            i = ++mark;
        } else {
            return 0;
        }
    }
    while (p < l->len && l->star[p])
        p++;
    return p == l->len;
}

static int s_in_cidr(const struct s_leaf *l, const char *s, size_t n)
{
    char buf[64];
    uint8_t a[16];
    if (n >= sizeof buf)
        return 0;
    memcpy(buf, s, n);
    buf[n] = 0;
    if (inet_pton(l->family, buf, a) != 1)
        return 0;
    int full = l->bits / 8, rest = l->bits % 8;
    if (memcmp(a, l->addr, (size_t)full) != 0)
        return 0;
    if (!rest)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (l->addr[full] & mask);
}

/* Whether leaf value `x` (never an object or array) satisfies `l`. */
static int s_leaf_match(const struct s_leaf *l, const json_t *x)
{
    const char *s = json_is_string(x) ? json_string_value(x) : NULL;
    size_t n = s ? json_string_length(x) : 0;
    switch (l->op) {
    case S_EQ_STR: return s && n == l->len && memcmp(s, l->s, n) == 0;
    case S_EQ_NUM: return json_is_number(x) && json_number_value(x) == l->num;
    case S_TRUE: return json_is_true(x);
    case S_FALSE: return json_is_false(x);
    case S_NULL: return json_is_null(x);
    case S_PREFIX: return s && n >= l->len && memcmp(s, l->s, l->len) == 0;
    case S_SUFFIX: return s && n >= l->len && memcmp(s + n - l->len, l->s, l->len) == 0;
    case S_EQ_IC: return s && n == l->len && s_eq_ic(s, l->s, n);
    case S_PREFIX_IC: return s && n >= l->len && s_eq_ic(s, l->s, l->len);
    case S_SUFFIX_IC: return s && n >= l->len && s_eq_ic(s + n - l->len, l->s, l->len);
    case S_WILDCARD: return s && s_glob(l, s, n);
    case S_CIDR: return s && s_in_cidr(l, s, n);
    case S_NUMERIC: {
        if (!json_is_number(x))
            return 0;
        double d = json_number_value(x);
        if (l->has_lo && !(l->lo_incl ? d >= l->lo : d > l->lo))
            return 0;
        return !l->has_hi || (l->hi_incl ? d <= l->hi : d < l->hi);
    }
    case S_EXISTS: return l->exists;
    case S_ANYTHING_BUT:
        if (l->strings_only && !s)
            return 0;
        for (size_t i = 0; i < l->but_count; i++)
            if (s_leaf_match(&l->but[i], x))
                return 0;
        return 1;
    }
    return 0;
}

/* Over the leaf values of `v` (array elements, flattened; objects are not
 * values): whether one satisfies one of the field's alternatives. *seen
 * counts the values. */
static int s_values_match(const struct s_field *f, const json_t *v, size_t *seen)
{
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (s_values_match(f, json_array_get(v, i), seen))
                return 1;
        return 0;
    }
    if (!v || json_is_object(v))
        return 0;
    (*seen)++;
    for (size_t i = 0; i < f->count; i++)
        if (s_leaf_match(&f->leaves[i], v))
            return 1;
    return 0;
}

static int s_node_match(const struct s_node *node, const json_t *obj);

/* A nested pattern against `v`: an object, one element of an array, or
 * (anything else, or nothing) as if absent. */
static int s_nested_match(const struct s_node *node, const json_t *v)
{
    if (json_is_object(v))
        return s_node_match(node, v);
    if (json_is_array(v) && json_array_size(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (s_nested_match(node, json_array_get(v, i)))
                return 1;
        return 0;
    }
    return s_node_match(node, NULL);
}

static int s_field_match(const struct s_field *f, const json_t *obj)
{
    const json_t *v = obj ? json_object_getn(obj, f->name, f->name_len) : NULL;
    if (f->nested)
        return s_nested_match(f->nested, v);
    size_t seen = 0;
    if (s_values_match(f, v, &seen))
        return 1;
    if (seen)
        return 0;
    for (size_t i = 0; i < f->count; i++) /* no value: only exists:false */
        if (f->leaves[i].op == S_EXISTS && !f->leaves[i].exists)
            return 1;
    return 0;
}

/* `obj` NULL: the object is absent. */
static int s_node_match(const struct s_node *node, const json_t *obj)
{
    for (size_t i = 0; i < node->count; i++)
        if (!s_field_match(&node->fields[i], obj))
            return 0;
    if (!node->or_count)
        return 1;
    for (size_t i = 0; i < node->or_count; i++)
        if (s_node_match(&node->ors[i], obj))
            return 1;
    return 0;
}

int fanout_filter_match(const struct fanout_filter *f, const json_t *view, int data_is_json)
{
    if (!data_is_json && f->names_data)
        return 0;
    return s_node_match(&f->root, json_is_object(view) ? view : NULL);
}

/* ---- record views -------------------------------------------------------- */

struct s_view {
    json_t *json; /* NULL until built */
    int data_is_json;
};

struct fanout_filter_views {
    size_t count;
    struct s_view *raw;  /* per raw record */
    struct s_view **kpl; /* per raw record: its user records' views, or NULL */
    size_t *kpl_count;
    struct fanout_arena scratch; /* the nodes of one record at a time */
};

struct fanout_filter_views *fanout_filter_views_new(size_t count)
{
    struct fanout_filter_views *v = calloc(1, sizeof *v);
    size_t n = count ? count : 1;
    if (!v || !(v->raw = calloc(n, sizeof *v->raw)) ||
        !(v->kpl = calloc(n, sizeof *v->kpl)) ||
        !(v->kpl_count = calloc(n, sizeof *v->kpl_count))) {
        fanout_filter_views_free(v);
        return NULL;
    }
    v->count = count;
    return v;
}

void fanout_filter_views_free(struct fanout_filter_views *v)
{
    if (!v)
        return;
    for (size_t i = 0; v->raw && i < v->count; i++) {
        json_decref(v->raw[i].json);
        for (size_t k = 0; v->kpl && v->kpl[i] && k < v->kpl_count[i]; k++)
            json_decref(v->kpl[i][k].json);
        if (v->kpl)
            free(v->kpl[i]);
    }
    free(v->raw);
    free(v->kpl);
    free(v->kpl_count);
    fanout_arena_free(&v->scratch);
    free(v);
}

/* Numbers read as doubles: a big integer is still JSON, and values are
 * compared as numbers anyway. */
#define S_JSON_FLAGS (JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL)

/* A member's name, unescaped when it has escapes (into `a`). NULL when out
 * of memory. */
static const char *s_member_name(const struct fanout_jnode *m, struct fanout_arena *a,
                                 size_t *len)
{
    *len = m->key_len;
    if (!m->key_escaped)
        return m->key;
    struct fanout_jnode k = {
        .type = FANOUT_J_STRING, .escaped = 1, .text = m->key, .len = m->key_len};
    return fanout_jstr(&k, a, len);
}

/* A scanned JSON value as a jansson value, as jansson would read it but for
 * numbers beyond a double (1e400 is JSON, RFC 8259 sets no range; jansson
 * refuses it): they become the largest double of their sign, which every
 * numeric bound (at most 5e9) orders as the number itself. NULL when out of
 * memory (or a string jansson cannot hold). */
static json_t *s_node_json(const struct fanout_jnode *n, struct fanout_arena *a)
{
    size_t len;
    const char *str;
    switch (n->type) {
    case FANOUT_J_STRING:
        str = fanout_jstr(n, a, &len);
        return str ? json_stringn(str, len) : NULL;
    case FANOUT_J_NUMBER: {
        char *num = fanout_arena_memdup(a, n->text, n->len); /* NUL-terminated */
        if (!num)
            return NULL;
        double d = strtod(num, NULL);
        if (isinf(d))
            d = d > 0 ? DBL_MAX : -DBL_MAX;
        return json_real(d);
    }
    case FANOUT_J_TRUE: return json_true();
    case FANOUT_J_FALSE: return json_false();
    case FANOUT_J_NULL: return json_null();
    case FANOUT_J_ARRAY: {
        json_t *arr = json_array();
        for (const struct fanout_jnode *m = arr ? n->child : NULL; m; m = m->next)
            if (json_array_append_new(arr, s_node_json(m, a)) != 0) {
                json_decref(arr);
                return NULL;
            }
        return arr;
    }
    case FANOUT_J_OBJECT: {
        json_t *obj = json_object();
        for (const struct fanout_jnode *m = obj ? n->child : NULL; m; m = m->next) {
            size_t key_len;
            const char *key = s_member_name(m, a, &key_len);
            if (!key || json_object_setn_new(obj, key, key_len, s_node_json(m, a)) != 0) {
                json_decref(obj);
                return NULL;
            }
        }
        return obj;
    }
    }
    return NULL;
}

/* A text as JSON: jansson, or when it refuses the text for a number beyond
 * a double, the scanner. NULL when the text is not JSON (or out of memory:
 * *oom set). */
static json_t *s_text_json(const char *text, size_t len, struct fanout_arena *a, int *oom)
{
    json_error_t jerr;
    json_t *v = json_loadb(text, len, S_JSON_FLAGS, &jerr);
    if (v || json_error_code(&jerr) != json_error_numeric_overflow)
        return v;
    char err[8];
    const struct fanout_jnode *n = fanout_jscan(text, len, a, err, sizeof err);
    if (n && !(v = s_node_json(n, a)))
        *oom = 1;
    return v;
}

/* The members of a Kinesis record's "kinesis" object but "data", from the
 * event's text (scanned again: only the record's own span). NULL when out
 * of memory. */
static json_t *s_kinesis_members(const struct fanout_raw_record *raw,
                                 struct fanout_arena *a)
{
    char err[8];
    size_t len;
    const char *json = fanout_raw_json(raw, a, &len); /* data decoded in place */
    const struct fanout_jnode *rec =
        json ? fanout_jscan_valid(json, len, a, err, sizeof err) : NULL;
    const struct fanout_jnode *k = fanout_jget(rec, "kinesis");
    json_t *obj = k && k->type == FANOUT_J_OBJECT ? json_object() : NULL;
    for (const struct fanout_jnode *m = obj ? k->child : NULL; m; m = m->next) {
        size_t key_len;
        const char *key = s_member_name(m, a, &key_len);
        if (key && key_len == 4 && !memcmp(key, "data", 4))
            continue;
        json_t *v = key ? s_node_json(m, a) : NULL;
        if (!v || json_object_setn_new(obj, key, key_len, v) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

/* Build the view of `r` into `out` (`a`: scratch). -1 when out of memory. */
static int s_view_build(const struct fanout_rec *r, struct s_view *out,
                        struct fanout_arena *a)
{
    const struct fanout_raw_record *raw = r->raw;
    out->data_is_json = 1;
    fanout_arena_reset(a);
    int oom = 0;
    if (raw->kind != FANOUT_SRC_KINESIS) {
        out->json = s_text_json(raw->json, raw->json_len, a, &oom);
        return out->json ? 0 : -1; /* the event parsed: only memory can fail */
    }
    json_t *k = s_kinesis_members(raw, a);
    if (!k)
        return -1;
    if (r->pub.aggregated &&
        json_object_set_new(k, "partitionKey",
                            json_stringn((const char *)r->pub.key, r->pub.key_len)) != 0) {
        json_decref(k);
        return -1;
    }
    json_t *data = s_text_json((const char *)r->pub.data, r->pub.data_len, a, &oom);
    if (oom) {
        json_decref(k);
        return -1;
    }
    out->data_is_json = data != NULL;
    if (data && json_object_set_new(k, "data", data) != 0) {
        json_decref(k);
        return -1;
    }
    out->json = k;
    return 0;
}

int fanout_filter_record(struct fanout_filter_views *v, const struct fanout_filter *f,
                         const struct fanout_rec *r, size_t raw_index)
{
    struct s_view *view = &v->raw[raw_index];
    if (r->pub.aggregated) {
        /* user records of one aggregate, numbered by sub-sequence number */
        size_t sub = (size_t)r->pub.sub_sequence_number;
        if (sub >= v->kpl_count[raw_index]) {
            size_t n = sub + 1 > v->kpl_count[raw_index] * 2 ? sub + 1
                                                             : v->kpl_count[raw_index] * 2;
            struct s_view *p = realloc(v->kpl[raw_index], n * sizeof *p);
            if (!p)
                return -1;
            memset(p + v->kpl_count[raw_index], 0,
                   (n - v->kpl_count[raw_index]) * sizeof *p);
            v->kpl[raw_index] = p;
            v->kpl_count[raw_index] = n;
        }
        view = &v->kpl[raw_index][sub];
    }
    if (!view->json && s_view_build(r, view, &v->scratch) != 0)
        return -1;
    return fanout_filter_match(f, view->json, view->data_is_json);
}
