#include "common/jscan.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "fanout/swar.h"

#if FANOUT_HAVE_SSE2
#include <emmintrin.h>
#endif

#define MAX_DEPTH 512
#define S_BLOCK   32
#define S_NAMES   32 /* member names an object's scan compares */

/* Skipped member names whose lengths fanout_jscan_each_skip_shape notes. */
#define S_SKIP_LENS 8

struct s_p {
    const char *p, *end, *start;
    struct fanout_arena *arena;
    char *err;
    size_t err_len;
    int failed;
    int keep_depth;            /* values deeper than this get no node of their own */
    int trusted;               /* text fanout_jscan accepted before: see s_string_trusted */
    struct fanout_jnode dummy; /* what they get instead (never linked) */
    /* nodes are taken from blocks of S_BLOCK in `arena` (one allocation
     * per block, not per node) */
    struct fanout_jnode *block;
    size_t block_left;
    /* fanout_jscan_each: the member whose elements are handed over */
    const char *each_key;
    fanout_jeach_fn each;
    void *each_ctx;
    struct fanout_arena *scratch;
    int each_state; /* 0 not met yet, 1 its value is next, 2 met */
    /* objects so far whose member names the scan could not prove distinct
     * (an escaped name, many members, two names alike): a container is
     * `distinct` when the count did not grow while it was scanned */
    size_t doubt;
    /* fanout_jscan_each_skip: the members named skip_names of an element's
     * member skip_in get no nodes below them (s_skip_member) */
    const char *skip_in;
    size_t skip_in_len;
    const char *const *skip_names;
    /* their first bytes (a bit per byte mod 64) and lengths (a bit per
     * length below 64): a name with neither is not among them */
    uint64_t skip_firsts, skip_lens;
    /* the lengths of the first S_SKIP_LENS names (a name after them:
     * strlen) */
    size_t skip_len[S_SKIP_LENS];
    int skip_open;  /* the depth-3 object is skip_in's value */
    int skip_which; /* the index in skip_names of the member skipped */
    /* fanout_jscan_each_skip_shape: offered a skipped member's object first */
    fanout_jshape_fn shape;
    void *shape_ctx;
    unsigned char inside; /* FANOUT_J_HAS_* met by the s_skip_* functions */
    struct s_name *names; /* their objects' member names, a stack */
    size_t names_top;
};

static void s_fail(struct s_p *s, const char *what)
{
    if (s->failed)
        return;
    s->failed = 1;
    size_t line = 1, col = 1;
    for (const char *q = s->start; q < s->p && q < s->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    if (s->p >= s->end)
        snprintf(s->err, s->err_len, "line %zu, column %zu: unexpected end of input (%s)",
                 line, col, what);
    else
        snprintf(s->err, s->err_len, "line %zu, column %zu: %s", line, col, what);
}

/* A node for a value at `depth`: zeroed from the arena, or the dummy. */
static struct fanout_jnode *s_node(struct s_p *s, int depth)
{
    if (depth > s->keep_depth) {
        s->dummy.next = NULL;
        return &s->dummy;
    }
    if (!s->block_left) {
        s->block = fanout_arena_alloc(s->arena, S_BLOCK * sizeof *s->block);
        if (!s->block) {
            s_fail(s, "out of memory");
            return NULL;
        }
        s->block_left = S_BLOCK;
    }
    s->block_left--;
    struct fanout_jnode *n = s->block++;
    *n = (struct fanout_jnode){0};
    return n;
}

static inline void s_ws(struct s_p *s)
{
    s->p = fanout_jws(s->p, s->end);
}

/* s_ws, then whether the next byte is `c`: one test when it follows at
 * once (':' after a member name, ',' after a value, as most writers put
 * them). s->p is where s_ws leaves it either way. */
static inline int s_ws_is(struct s_p *s, char c)
{
    if (s->p < s->end && *s->p == c)
        return 1;
    s_ws(s);
    return s->p < s->end && *s->p == c;
}

static int s_hex4(const char *q, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = q[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* s_string for text already validated (fanout_jscan_valid): only the
 * closing quote is looked for, and whether there are escapes. */
static int s_string_trusted(struct s_p *s, const char **text, size_t *len, int *escaped)
{
    const char *q = s->p + 1, *end = s->end;
    *escaped = 0;
    for (;;) {
        q = fanout_jquote(q, end);
        if (q >= end || (*q == '\\' && end - q < 2)) {
            s->p = q;
            s_fail(s, "unterminated string");
            return -1;
        }
        if (*q == '"')
            break;
        *escaped = 1;
        q += 2; /* the escaped character is never the closing quote */
    }
    *text = s->p + 1;
    *len = (size_t)(q - s->p - 1);
    s->p = q + 1;
    return 0;
}

/* A string starting at the opening quote: sets text/len (inside the quotes)
 * and escaped. Validates escapes (surrogates paired), control characters
 * and UTF-8. */
static int s_string(struct s_p *s, const char **text, size_t *len, int *escaped)
{
    if (s->trusted)
        return s_string_trusted(s, text, len, escaped);
    const uint8_t *q = (const uint8_t *)s->p + 1, *end = (const uint8_t *)s->end;
    *escaped = 0;
    for (;;) {
        /* plain printable ASCII: the common case, 32 then 16 bytes at a
         * time with SSE2 (x86-64's baseline), else 8 (a word has a byte
         * that needs a look when it is '"', '\\', below 0x20 or
         * non-ASCII); at the first such byte, straight to its case */
#if FANOUT_HAVE_SSE2
        const __m128i quote16 = _mm_set1_epi8('"'), slash16 = _mm_set1_epi8('\\'),
                      space16 = _mm_set1_epi8(0x20);
/* signed: below 0x20, and 0x80 and above, compare less */
#define S_STOP16(v)                                                                        \
    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote16), _mm_cmpeq_epi8(v, slash16)),     \
                 _mm_cmplt_epi8(v, space16))
        while (end - q >= 32) {
            __m128i a = _mm_loadu_si128((const __m128i *)(const void *)q);
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(q + 16));
            unsigned mask = (unsigned)_mm_movemask_epi8(S_STOP16(a)) |
                            (unsigned)_mm_movemask_epi8(S_STOP16(b)) << 16;
            if (mask) {
                q += __builtin_ctz(mask);
                goto stop;
            }
            q += 32;
        }
        if (end - q >= 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(const void *)q);
            unsigned mask = (unsigned)_mm_movemask_epi8(S_STOP16(a));
            if (mask) {
                q += __builtin_ctz(mask);
                goto stop;
            }
            q += 16;
        }
#undef S_STOP16
#endif
        while (end - q >= 8) {
            uint64_t v;
            memcpy(&v, q, 8);
            const uint64_t stop = fanout_swar_jstop(v);
            if (stop) {
                q += fanout_swar_first(stop);
                break;
            }
            q += 8;
        }
        while (q < end && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\')
            q++;
#if FANOUT_HAVE_SSE2
    stop:
#endif
        if (q >= end) {
            s->p = (const char *)q;
            s_fail(s, "unterminated string");
            return -1;
        }
        uint8_t c = *q;
        if (c == '"')
            break;
        if (c < 0x20) {
            s->p = (const char *)q;
            s_fail(s, "control character in a string (expected it escaped)");
            return -1;
        }
        if (c == '\\') {
            *escaped = 1;
            if (q + 1 >= end) {
                s->p = (const char *)q;
                s_fail(s, "unterminated escape");
                return -1;
            }
            uint8_t e = q[1];
            if (e == 'u') {
                unsigned cp;
                if (end - q < 6 || s_hex4((const char *)q + 2, &cp) != 0) {
                    s->p = (const char *)q;
                    s_fail(s, "bad \\u escape (expected 4 hex digits)");
                    return -1;
                }
                q += 6;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (end - q < 6 || q[0] != '\\' || q[1] != 'u' ||
                        s_hex4((const char *)q + 2, &lo) != 0 || lo < 0xDC00 ||
                        lo > 0xDFFF) {
                        s->p = (const char *)q;
                        s_fail(s, "lone high surrogate in a \\u escape");
                        return -1;
                    }
                    q += 6;
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    s->p = (const char *)q;
                    s_fail(s, "lone low surrogate in a \\u escape");
                    return -1;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == 0) {
                s->p = (const char *)q;
                s_fail(s, "bad escape in a string");
                return -1;
            }
            q += 2;
            continue;
        }
        /* non-ASCII: one UTF-8 sequence */
        size_t k = 0;
        if (c >= 0xC2 && c <= 0xDF)
            k = 2;
        else if (c >= 0xE0 && c <= 0xEF)
            k = 3;
        else if (c >= 0xF0 && c <= 0xF4)
            k = 4;
        if (!k || (size_t)(end - q) < k || !fanout_utf8_check(q, k)) {
            s->p = (const char *)q;
            s_fail(s, "invalid UTF-8 in a string");
            return -1;
        }
        q += k;
    }
    *text = s->p + 1;
    *len = (size_t)((const char *)q - s->p - 1);
    s->p = (const char *)q + 1;
    return 0;
}

/* s_string for a string of printable ASCII without escapes (member names,
 * identifiers, base64: nearly every string of an event), 16 bytes at a
 * time (fanout_jplain_end): done here, without the call. At the first
 * byte that needs a look other than the closing quote, s_string reads the
 * string again from its start. The same result in both modes. */
static inline int s_string_short(struct s_p *s, const char **text, size_t *len,
                                 int *escaped)
{
    const char *open = s->p, *q = fanout_jplain_end(open + 1, s->end);
    if (!q)
        return s_string(s, text, len, escaped);
    *text = open + 1;
    *len = (size_t)(q - open - 1);
    *escaped = 0;
    s->p = q + 1;
    return 0;
}

static int s_digits(struct s_p *s)
{
    const char *b = s->p, *p = s->p, *end = s->end;
    /* 8 digits at a time (a time's 10): every byte's high nibble 3, and
     * still 3 with 6 added (no byte above '9') */
    const uint64_t ones = 0x0101010101010101ULL, high = 0xF0F0F0F0F0F0F0F0ULL;
    while (end - p >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        if ((v & high) != ones * 0x30 || ((v + ones * 6) & high) != ones * 0x30)
            break;
        p += 8;
    }
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    s->p = p;
    return p > b;
}

static inline int s_number(struct s_p *s)
{
    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!s_digits(s))
        return -1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!s_digits(s))
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!s_digits(s))
            return -1;
    }
    return 0;
}

static struct fanout_jnode *s_value(struct s_p *s, int depth);

/* A string value at the opening quote: s_value's case, which s_container
 * takes without the call for a member's value. */
static inline struct fanout_jnode *s_string_value(struct s_p *s, int depth)
{
    struct fanout_jnode *n = s_node(s, depth);
    if (!n)
        return NULL;
    n->type = FANOUT_J_STRING;
    int escaped;
    if (s_string_short(s, &n->text, &n->len, &escaped) != 0)
        return NULL;
    n->escaped = (unsigned char)escaped;
    return n;
}
static size_t s_unescape(const char *in, size_t len, char *out);

/* The member name is fanout_jscan_each's key (compared as fanout_jget). */
static int s_is_each_key(const struct s_p *s, const char *key, size_t key_len, int escaped)
{
    size_t kl = strlen(s->each_key);
    if (!escaped)
        return key_len == kl && memcmp(key, s->each_key, kl) == 0;
    char buf[256];
    return key_len >= kl && key_len < sizeof buf && s_unescape(key, key_len, buf) == kl &&
           memcmp(buf, s->each_key, kl) == 0;
}

static struct fanout_jnode *s_each_element(struct s_p *s, int depth);

/* Member names: s_container proves an object's names distinct as it
 * reads them, with a bit per name (a hash of its length, first and last
 * byte) and, when the bit was set before, a look at the names before it
 * (its nodes). An escaped name, more than S_NAMES names, or a bit seen
 * before when the names before are not at hand leave the object in doubt:
 * fanout_jdup then compares its names after unescaping, as before. */
static inline uint64_t s_name_bit(const char *key, size_t key_len)
{
    uint64_t g = key_len ? (uint64_t)key_len << 16 | (uint64_t)(uint8_t)key[0] << 8 |
                               (uint8_t)key[key_len - 1]
                         : 0;
    return 1ULL << ((g * 0x9E3779B97F4A7C15ULL) >> 58);
}

/* A name among the (unescaped) names of the members `c` and after. */
static int s_name_among(const struct fanout_jnode *c, const char *key, size_t key_len)
{
    for (; c; c = c->next)
        if (c->key_len == key_len && memcmp(c->key, key, key_len) == 0)
            return 1;
    return 0;
}

/* ---- values validated without nodes below them ---------------------- */

/* fanout_jscan_each_skip: the values of an element's member skip_in (an
 * object at depth 3) whose names are among skip_names are scanned by the
 * functions below: validated and checked for repeated member names as
 * s_value does, with the same errors at the same places, but with no node
 * for anything inside them. */

#define S_SKIP_NAMES 256 /* member names on the stack of s_skip_container */

struct s_name {
    const char *key;
    size_t len;
};

/* Whether the member `key` of the object at `depth` is to be skipped (at
 * depth 2, an element's member: notes whether it is skip_in). Names with
 * escapes never match: their values get nodes, as before. */
static int s_skip_here(struct s_p *s, int depth, const char *key, size_t key_len,
                       int escaped)
{
    if (depth == 2) {
        s->skip_open = !escaped && key_len == s->skip_in_len && key_len &&
                       key[0] == s->skip_in[0] && memcmp(key, s->skip_in, key_len) == 0;
        return 0;
    }
    if (!s->skip_open || escaped || !key_len ||
        !(s->skip_firsts >> ((uint8_t)key[0] & 63) & 1) ||
        (key_len < 64 && !(s->skip_lens >> key_len & 1)))
        return 0;
    for (size_t i = 0; s->skip_names[i]; i++) {
        const char *n = s->skip_names[i];
        if (key[0] == n[0] && (i < S_SKIP_LENS ? s->skip_len[i] : strlen(n)) == key_len &&
            memcmp(key, n, key_len) == 0) {
            s->skip_which = (int)i;
            return 1;
        }
    }
    return 0;
}

/* A name among the names from `from` on the stack. */
static int s_skip_among(const struct s_p *s, size_t from, const char *key, size_t key_len)
{
    for (size_t i = from; i < s->names_top; i++)
        if (s->names[i].len == key_len && memcmp(s->names[i].key, key, key_len) == 0)
            return 1;
    return 0;
}

/* A string of printable ASCII without escapes: fanout_jplain_end. */
static inline const char *s_plain_end(const char *q, const char *end)
{
    return fanout_jplain_end(q, end);
}

/* A string at its opening quote `p`: the end of its text (at the closing
 * quote) and whether it has escapes, or NULL after s_fail. A string of
 * printable ASCII without escapes is read here; any other through
 * s_string, from its start (the same errors). */
static inline const char *s_skip_string(struct s_p *s, const char *p, int *escaped)
{
    const char *q = s_plain_end(p + 1, s->end);
    if (q) {
        *escaped = 0;
        return q;
    }
    const char *text;
    size_t len;
    s->p = p;
    if (s_string_short(s, &text, &len, escaped) != 0)
        return NULL;
    return text + len;
}

/* An object of one member whose name is a plain string and whose value a
 * plain string or a literal, as DynamoDB writes an attribute value
 * ({"S": "text"}, {"BOOL": true}), at its '{' `p`: the end of the
 * object, or NULL for any other text (which s_skip_container then reads).
 * Nothing to count: one name, no number. */
static inline const char *s_skip_pair(const char *p, const char *end)
{
    if (end - p < 4 || p[1] != '"')
        return NULL;
    /* a one-letter name (S, N, M, L...) ends at once */
    const char *q =
        p[3] == '"' && p[2] >= 'A' && p[2] <= 'Z' ? p + 3 : s_plain_end(p + 2, end);
    if (!q || end - q < 8 || q[1] != ':')
        return NULL;
    q += 2;
    if (*q == ' ')
        q++;
    if (*q == '"') {
        q = s_plain_end(q + 1, end);
        if (!q || end - q < 2)
            return NULL;
        q++;
    } else if (memcmp(q, "true", 4) == 0 || memcmp(q, "null", 4) == 0) {
        q += 4;
    } else if (memcmp(q, "false", 5) == 0) {
        q += 5;
    } else {
        return NULL;
    }
    return q < end && *q == '}' ? q + 1 : NULL;
}

/* ---- the shape of a DynamoDB image, in one quick pass ---------------- */

/* s_skip_member's fast path for a value of the shape DynamoDB images
 * have: an object whose members are objects of one member (an
 * AttributeValue) holding a string, a literal, such an object again (M)
 * or an array (L, and the sets) of those or of strings; every string
 * printable ASCII without escapes (s_plain_end), no number, at most
 * S_NAMES names per object, none repeated, at most S_SHAPE_DEPTH levels.
 * Each function returns the end of what it read, or NULL for anything
 * else, valid or not: s_skip_container then reads the value from its
 * start, with its errors, its doubts and its `inside` flags. Whatever is
 * read here is valid JSON with distinct names and nothing to flag. */
#define S_SHAPE_DEPTH 40

static const char *s_shape_map(const char *p, const char *end, int depth, size_t *count);
static const char *s_shape_list(const char *p, const char *end, int depth);

/* An AttributeValue at its '{'. */
static const char *s_shape_av(const char *p, const char *end, int depth)
{
    const char *q = s_skip_pair(p, end);
    if (q)
        return q;
    if (depth >= S_SHAPE_DEPTH)
        return NULL;
    q = fanout_jws(p + 1, end);
    if (q >= end || *q != '"' || !(q = s_plain_end(q + 1, end)))
        return NULL;
    q = fanout_jws(q + 1, end);
    if (q >= end || *q != ':')
        return NULL;
    q = fanout_jws(q + 1, end);
    size_t count;
    if (q < end && *q == '{')
        q = s_shape_map(q, end, depth + 1, &count);
    else if (q < end && *q == '[')
        q = s_shape_list(q, end, depth + 1);
    else
        return NULL;
    if (!q)
        return NULL;
    q = fanout_jws(q, end);
    return q < end && *q == '}' ? q + 1 : NULL;
}

/* An array of AttributeValues or strings at its '['. */
static const char *s_shape_list(const char *p, const char *end, int depth)
{
    const char *q = fanout_jws(p + 1, end);
    if (q < end && *q == ']')
        return q + 1;
    for (;;) {
        if (q < end && *q == '{') {
            q = s_shape_av(q, end, depth);
        } else if (q < end && *q == '"') {
            q = s_plain_end(q + 1, end);
            q = q ? q + 1 : NULL;
        } else {
            return NULL;
        }
        if (!q)
            return NULL;
        if (q >= end || (*q != ',' && *q != ']'))
            q = fanout_jws(q, end);
        if (q < end && *q == ']')
            return q + 1;
        if (q >= end || *q != ',')
            return NULL;
        q = fanout_jws(q + 1, end);
    }
}

/* An object of AttributeValues at its '{': its members counted. */
static const char *s_shape_map(const char *p, const char *end, int depth, size_t *count)
{
    struct s_name names[S_NAMES];
    uint64_t seen = 0;
    size_t n = 0;
    const char *q = fanout_jws(p + 1, end);
    if (q < end && *q == '}') {
        *count = 0;
        return q + 1;
    }
    for (;;) {
        if (q >= end || *q != '"' || n == S_NAMES)
            return NULL;
        const char *key = q + 1, *key_end = s_plain_end(key, end);
        if (!key_end)
            return NULL;
        size_t key_len = (size_t)(key_end - key);
        uint64_t bit = s_name_bit(key, key_len);
        if (seen & bit)
            for (size_t i = 0; i < n; i++)
                if (names[i].len == key_len && memcmp(names[i].key, key, key_len) == 0)
                    return NULL; /* a repeated name: reported by the full scan */
        seen |= bit;
        names[n++] = (struct s_name){key, key_len};
        q = key_end + 1;
        if (q >= end || *q != ':') {
            q = fanout_jws(q, end);
            if (q >= end || *q != ':')
                return NULL;
        }
        q = fanout_jws(q + 1, end);
        if (q >= end || *q != '{' || !(q = s_shape_av(q, end, depth)))
            return NULL;
        if (q >= end || (*q != ',' && *q != '}'))
            q = fanout_jws(q, end);
        if (q < end && *q == '}') {
            *count = n;
            return q + 1;
        }
        if (q >= end || *q != ',')
            return NULL;
        q = fanout_jws(q + 1, end);
    }
}

/* s_container without nodes: validated and checked for repeated names as
 * s_value does (the same errors at the same places), the members counted
 * into *count. The value of a member is read here, but for a container:
 * one call per container, not per token. */
static int s_skip_container(struct s_p *s, int depth, int object, size_t *count)
{
    const char *p = s->p + 1, *end = s->end;
    const char close = object ? '}' : ']';
    size_t n = 0;
    p = fanout_jws(p, end);
    if (p < end && *p == close) {
        s->p = p + 1;
        *count = 0;
        return 0;
    }
    size_t base = s->names_top;
    uint64_t seen = 0;
    int in_doubt = 0, listed = 1; /* listed: every name so far is on the stack */
    const char *first = NULL;     /* the first name: on the stack at the second */
    size_t first_len = 0;
    int rc = -1;
    for (;;) {
        if (object) {
            int key_escaped;
            p = fanout_jws(p, end);
            if (p >= end || *p != '"') {
                s->p = p;
                s_fail(s, "expected a member name in double quotes");
                break;
            }
            const char *key = p + 1, *key_end = s_skip_string(s, p, &key_escaped);
            if (!key_end)
                break;
            size_t key_len = (size_t)(key_end - key);
            p = key_end + 1;
            if (p >= end || *p != ':') {
                p = fanout_jws(p, end);
                if (p >= end || *p != ':') {
                    s->p = p;
                    s_fail(s, "expected ':' after a member name");
                    break;
                }
            }
            p++;
            if (key_escaped)
                s->inside |= FANOUT_J_HAS_ESCAPED_NAME;
            if (!in_doubt) {
                if (n == 1) { /* the first name, as it would have been at once */
                    seen = s_name_bit(first, first_len);
                    if (s->names_top < S_SKIP_NAMES)
                        s->names[s->names_top++] = (struct s_name){first, first_len};
                    else
                        listed = 0;
                }
                if (n == 0 && !key_escaped) {
                    first = key;
                    first_len = key_len;
                } else {
                    uint64_t bit = s_name_bit(key, key_len);
                    in_doubt =
                        key_escaped || n >= S_NAMES ||
                        ((seen & bit) && (!listed || s_skip_among(s, base, key, key_len)));
                    seen |= bit;
                    s->doubt += (size_t)in_doubt;
                    if (s->names_top < S_SKIP_NAMES)
                        s->names[s->names_top++] = (struct s_name){key, key_len};
                    else
                        listed = 0;
                }
            }
        }
        /* the value: s_value without nodes */
        p = fanout_jws(p, end);
        if (p >= end) {
            s->p = p;
            s_fail(s, "expected a value");
            break;
        }
        if (depth + 1 > MAX_DEPTH) {
            s->p = p;
            s_fail(s, "nested too deeply");
            break;
        }
        char c = *p;
        if (c == '"') {
            int escaped;
            const char *q = s_skip_string(s, p, &escaped);
            if (!q)
                break;
            p = q + 1;
        } else if (c == '{' || c == '[') {
            const char *pair =
                c == '{' && depth + 2 <= MAX_DEPTH ? s_skip_pair(p, end) : NULL;
            if (pair) {
                p = pair;
            } else {
                size_t inner;
                s->p = p;
                if (s_skip_container(s, depth + 1, c == '{', &inner) != 0)
                    break;
                p = s->p;
            }
        } else if (c == 't' || c == 'f' || c == 'n') {
            const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
            size_t lit_len = c == 'f' ? 5 : 4;
            if ((size_t)(end - p) < lit_len || memcmp(p, lit, lit_len) != 0) {
                s->p = p;
                s_fail(s, "invalid literal (expected true, false or null)");
                break;
            }
            p += lit_len;
        } else {
            s->p = p;
            if ((c != '-' && (c < '0' || c > '9')) || s_number(s) != 0) {
                s_fail(s, "expected a value (object, array, string, number, true, false "
                          "or null)");
                break;
            }
            p = s->p;
            s->inside |= FANOUT_J_HAS_NUMBER;
        }
        n++;
        /* ',' or the close at once, else after whitespace */
        if (p >= end || (*p != ',' && *p != close))
            p = fanout_jws(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == close) {
            s->p = p + 1;
            rc = 0;
            break;
        }
        s->p = p;
        s_fail(s, object ? "expected ',' or '}'" : "expected ',' or ']'");
        break;
    }
    s->names_top = base;
    *count = n;
    return rc;
}

/* A skipped member's value: a node of its own (count, text, distinct and
 * `inside` set, child NULL), nothing below. */
__attribute__((noinline)) static struct fanout_jnode *s_skip_member(struct s_p *s,
                                                                    int depth)
{
    s->p = fanout_jws(s->p, s->end);
    if (s->p >= s->end || (*s->p != '{' && *s->p != '[') || depth > MAX_DEPTH)
        return s_value(s, depth);
    struct fanout_jnode *n = s_node(s, depth);
    if (!n)
        return NULL;
    int object = *s->p == '{';
    n->type = object ? FANOUT_J_OBJECT : FANOUT_J_ARRAY;
    n->text = s->p;
    const char *shape = object && s->shape
                            ? s->shape(s->shape_ctx, s->skip_which, s->p, s->end, &n->count)
                            : NULL;
    if (object && !shape)
        shape = s_shape_map(s->p, s->end, 0, &n->count);
    if (shape) { /* nothing inside to flag, no name repeated */
        s->p = shape;
        n->len = (size_t)(s->p - n->text);
        n->distinct = 1;
        return n;
    }
    size_t doubt = s->doubt;
    unsigned char inside = s->inside;
    s->inside = 0;
    if (s_skip_container(s, depth, object, &n->count) != 0)
        return NULL;
    n->len = (size_t)(s->p - n->text);
    n->distinct = s->doubt == doubt;
    n->inside = s->inside;
    s->inside |= inside;
    return n;
}

/* ---- an element's fast path ------------------------------------------ */

/* Levels of objects below an element that s_fast_object reads. */
#define S_FAST_LEVELS 8

/* A node of the arena's block, not zeroed (the caller writes it whole), or
 * NULL when out of memory, without s_fail: the full scan then says so. */
static inline struct fanout_jnode *s_fast_node(struct s_p *s)
{
    if (!s->block_left) {
        s->block = fanout_arena_alloc(s->arena, S_BLOCK * sizeof *s->block);
        if (!s->block)
            return NULL;
        s->block_left = S_BLOCK;
    }
    s->block_left--;
    return s->block++;
}

/* fanout_jws after a ':' or ',' of the fast path: the one space most
 * writers put there stepped over without a test of its own. */
static inline const char *s_fast_ws(const char *p, const char *end)
{
    if (end - p >= 2) {
        p += *p == ' ';
        if ((unsigned char)*p > ' ')
            return p;
    }
    return fanout_jws(p, end);
}

/* s_container for an object at its '{' (`depth` below the root, `levels`
 * below the element), as the records of an event have them: member names
 * of printable ASCII without escapes (fanout_jplain_end), none repeated,
 * at most S_NAMES; values strings alike, numbers, literals or such objects
 * again; the members of fanout_jscan_each_skip read by s_skip_member as
 * s_container does. Its nodes are those s_container makes. NULL for
 * anything else, valid or not (an array, an escape, a repeated name, an
 * error): the element is then scanned again by s_value, with its errors
 * and doubts; or NULL with s->failed when s_skip_member failed (as it
 * would in that scan, at the same place). */
static struct fanout_jnode *s_fast_object(struct s_p *s, int depth, int levels)
{
    const char *p = s->p, *open = p, *end = s->end;
    struct fanout_jnode *n = s_fast_node(s);
    if (!n)
        return NULL;
    *n = (struct fanout_jnode){.type = FANOUT_J_OBJECT, .text = open};
    p = s_fast_ws(p + 1, end);
    if (p < end && *p == '}') {
        s->p = p + 1;
        n->len = (size_t)(s->p - open);
        n->distinct = 1;
        return n;
    }
    size_t doubt = s->doubt;
    uint64_t seen = 0;
    /* fanout_jscan_each_skip: skip_in's value, whose members s_skip_here
     * looks at (at depth 2, it notes whether an object is skip_in's) */
    int skip_check = s->skip_names && depth == 3 && s->skip_open;
    struct fanout_jnode **link = &n->child;
    for (;;) {
        if (p >= end || *p != '"' || n->count >= S_NAMES)
            return NULL;
        const char *key = p + 1, *key_end = fanout_jplain_end(key, end);
        if (!key_end)
            return NULL;
        size_t key_len = (size_t)(key_end - key);
        /* a bit per name (its length, first and last byte: the quote
         * when empty); a bit seen before has the names before compared */
        uint64_t bit =
            1ULL << (((uint8_t)key[0] ^ (uint8_t)key_end[-1] << 1 ^ key_len << 3) & 63);
        if ((seen & bit) && s_name_among(n->child, key, key_len))
            return NULL;
        seen |= bit;
        p = key_end + 1;
        if (p >= end || *p != ':') {
            p = fanout_jws(p, end);
            if (p >= end || *p != ':')
                return NULL;
        }
        p = s_fast_ws(p + 1, end);
        if (p >= end)
            return NULL;
        struct fanout_jnode *c;
        char ch = *p;
        /* s_skip_here, its names' first bytes and lengths looked at here */
        if (skip_check && key_len && (s->skip_firsts >> ((uint8_t)key[0] & 63) & 1) &&
            (key_len >= 64 || (s->skip_lens >> key_len & 1)) &&
            s_skip_here(s, depth, key, key_len, 0)) {
            s->p = p;
            if (!(c = s_skip_member(s, depth + 1)))
                return NULL;
            p = s->p;
        } else if (ch == '"') {
            const char *q = fanout_jplain_end(p + 1, end);
            if (!q || !(c = s_fast_node(s)))
                return NULL;
            *c = (struct fanout_jnode){
                .type = FANOUT_J_STRING, .text = p + 1, .len = (size_t)(q - p - 1)};
            p = q + 1;
        } else if (ch == '{') {
            if (depth == 2 && s->skip_names)
                s_skip_here(s, depth, key, key_len, 0);
            s->p = p;
            if (levels >= S_FAST_LEVELS || !(c = s_fast_object(s, depth + 1, levels + 1)))
                return NULL;
            p = s->p;
        } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
            s->p = p;
            if (s_number(s) != 0 || !(c = s_fast_node(s)))
                return NULL;
            *c = (struct fanout_jnode){
                .type = FANOUT_J_NUMBER, .text = p, .len = (size_t)(s->p - p)};
            p = s->p;
        } else {
            enum fanout_jtype t = ch == 't'   ? FANOUT_J_TRUE
                                  : ch == 'f' ? FANOUT_J_FALSE
                                              : FANOUT_J_NULL;
            const char *lit = ch == 't' ? "true" : ch == 'f' ? "false" : "null";
            size_t lit_len = ch == 'f' ? 5 : 4;
            if ((ch != 't' && ch != 'f' && ch != 'n') || (size_t)(end - p) < lit_len ||
                memcmp(p, lit, lit_len) != 0 || !(c = s_fast_node(s)))
                return NULL;
            *c = (struct fanout_jnode){.type = t, .text = p, .len = lit_len};
            p += lit_len;
        }
        c->key = key;
        c->key_len = key_len;
        *link = c;
        link = &c->next;
        n->count++;
        if (p >= end || (*p != ',' && *p != '}'))
            p = fanout_jws(p, end);
        if (p < end && *p == ',') {
            p = s_fast_ws(p + 1, end);
            continue;
        }
        if (p >= end || *p != '}')
            return NULL;
        s->p = p + 1;
        n->len = (size_t)(s->p - open);
        n->distinct = s->doubt == doubt;
        return n;
    }
}

/* An element of fanout_jscan_each's array: scanned in full into the
 * scratch arena (s_fast_object, else s_value from its start) and handed
 * over with a shallow node, which the array does not keep (the dummy: it
 * counts its elements only). */
static struct fanout_jnode *s_each_element(struct s_p *s, int depth)
{
    struct fanout_arena *arena = s->arena;
    struct fanout_jnode *block = s->block;
    size_t block_left = s->block_left;
    int keep_depth = s->keep_depth;
    fanout_arena_reset(s->scratch);
    s->skip_open = 0;
    s->arena = s->scratch;
    s->block_left = 0;
    s->keep_depth = INT_MAX;
    s_ws(s);
    struct fanout_jnode *full = NULL;
    if (s->p < s->end && *s->p == '{') {
        const char *start = s->p;
        size_t doubt = s->doubt;
        unsigned char inside = s->inside;
        full = s_fast_object(s, depth, 0);
        if (!full && !s->failed) { /* from its start, as if not tried */
            fanout_arena_reset(s->scratch);
            s->block_left = 0;
            s->p = start;
            s->doubt = doubt;
            s->inside = inside;
            s->skip_open = 0;
        }
    }
    if (!full && !s->failed)
        full = s_value(s, depth);
    s->arena = arena;
    s->block = block;
    s->block_left = block_left;
    s->keep_depth = keep_depth;
    if (!full)
        return NULL;
    struct fanout_jnode *kept = &s->dummy;
    *kept = *full;
    kept->child = NULL;
    kept->next = NULL;
    s->each(s->each_ctx, kept, full);
    return kept;
}

static struct fanout_jnode *s_container(struct s_p *s, int depth, int object)
{
    struct fanout_jnode *n = s_node(s, depth);
    if (!n)
        return NULL;
    int each_here = !object && depth == 1 && s->each_state == 1;
    if (each_here)
        s->each_state = 2;
    n->type = object ? FANOUT_J_OBJECT : FANOUT_J_ARRAY;
    n->text = s->p;
    char close = object ? '}' : ']';
    s->p++;
    s_ws(s);
    struct fanout_jnode **link = &n->child;
    if (s->p < s->end && *s->p == close) {
        s->p++;
        n->len = (size_t)(s->p - n->text);
        n->distinct = 1;
        return n;
    }
    size_t doubt = s->doubt;
    uint64_t seen = 0;                       /* the names' bits */
    int in_doubt = 0;                        /* counted in s->doubt */
    int listed = depth + 1 <= s->keep_depth; /* the members have nodes */
    /* fanout_jscan_each_skip: an element, or skip_in's value */
    int skip_check =
        s->skip_names && object && (depth == 2 || (depth == 3 && s->skip_open));
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        int key_escaped = 0;
        if (object) {
            s_ws(s);
            if (s->p >= s->end || *s->p != '"') {
                s_fail(s, "expected a member name in double quotes");
                return NULL;
            }
            if (s_string_short(s, &key, &key_len, &key_escaped) != 0)
                return NULL;
            if (!s_ws_is(s, ':')) {
                s_fail(s, "expected ':' after a member name");
                return NULL;
            }
            s->p++;
            if (depth == 0 && s->each && s->each_state == 0 &&
                s_is_each_key(s, key, key_len, key_escaped))
                s->each_state = 1;
            if (!in_doubt) {
                uint64_t bit = s_name_bit(key, key_len);
                in_doubt =
                    key_escaped || n->count >= S_NAMES ||
                    ((seen & bit) && (!listed || s_name_among(n->child, key, key_len)));
                seen |= bit;
                s->doubt += (size_t)in_doubt;
            }
        }
        struct fanout_jnode *c;
        if (each_here) {
            c = s_each_element(s, depth + 1);
        } else if (skip_check && s_skip_here(s, depth, key, key_len, key_escaped)) {
            c = s_skip_member(s, depth + 1);
        } else {
            s_ws(s);
            c = s->p < s->end && *s->p == '"' && depth < MAX_DEPTH
                    ? s_string_value(s, depth + 1)
                    : s_value(s, depth + 1);
        }
        if (!c)
            return NULL;
        if (s->each_state == 1) /* the member's value was not an array */
            s->each_state = 2;
        if (c != &s->dummy) {
            c->key = key;
            c->key_len = key_len;
            c->key_escaped = (unsigned char)key_escaped;
            *link = c;
            link = &c->next;
        }
        n->count++;
        if (s_ws_is(s, ',')) {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == close) {
            s->p++;
            n->len = (size_t)(s->p - n->text);
            n->distinct = s->doubt == doubt;
            return n;
        }
        s_fail(s, object ? "expected ',' or '}'" : "expected ',' or ']'");
        return NULL;
    }
}

static struct fanout_jnode *s_literal(struct s_p *s, int depth, const char *lit,
                                      enum fanout_jtype t)
{
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) {
        s_fail(s, "invalid literal (expected true, false or null)");
        return NULL;
    }
    struct fanout_jnode *node = s_node(s, depth);
    if (!node)
        return NULL;
    node->type = t;
    node->text = s->p;
    node->len = n;
    s->p += n;
    return node;
}

static struct fanout_jnode *s_value(struct s_p *s, int depth)
{
    s_ws(s);
    if (s->p >= s->end) {
        s_fail(s, "expected a value");
        return NULL;
    }
    if (depth > MAX_DEPTH) {
        s_fail(s, "nested too deeply");
        return NULL;
    }
    switch (*s->p) {
    case '{': return s_container(s, depth, 1);
    case '[': return s_container(s, depth, 0);
    case '"': return s_string_value(s, depth);
    case 't': return s_literal(s, depth, "true", FANOUT_J_TRUE);
    case 'f': return s_literal(s, depth, "false", FANOUT_J_FALSE);
    case 'n': return s_literal(s, depth, "null", FANOUT_J_NULL);
    default: {
        const char *b = s->p;
        if ((*b != '-' && (*b < '0' || *b > '9')) || s_number(s) != 0) {
            s_fail(s, "expected a value (object, array, string, number, true, false or "
                      "null)");
            return NULL;
        }
        struct fanout_jnode *n = s_node(s, depth);
        if (!n)
            return NULL;
        n->type = FANOUT_J_NUMBER;
        n->text = b;
        n->len = (size_t)(s->p - b);
        return n;
    }
    }
}

struct fanout_jnode *fanout_jscan(const char *text, size_t len, struct fanout_arena *arena,
                                  char *err, size_t err_len)
{
    return fanout_jscan_shallow(text, len, INT_MAX, arena, err, err_len);
}

/* Scan with `s`'s mode fields set by the caller. */
static struct fanout_jnode *s_scan(struct s_p *s, const char *text, size_t len,
                                   struct fanout_arena *arena, char *err, size_t err_len)
{
    s->p = s->start = text;
    s->end = text + len;
    s->arena = arena;
    s->err = err;
    s->err_len = err_len;
    struct fanout_jnode *root = s_value(s, 0);
    if (!root)
        return NULL;
    s_ws(s);
    if (s->p != s->end) {
        s_fail(s, "unexpected text after the JSON value");
        return NULL;
    }
    return root;
}

struct fanout_jnode *fanout_jscan_shallow(const char *text, size_t len, int keep_depth,
                                          struct fanout_arena *arena, char *err,
                                          size_t err_len)
{
    struct s_p s = {.keep_depth = keep_depth};
    return s_scan(&s, text, len, arena, err, err_len);
}

struct fanout_jnode *fanout_jscan_each(const char *text, size_t len, const char *key,
                                       struct fanout_arena *arena,
                                       struct fanout_arena *scratch, fanout_jeach_fn each,
                                       void *ctx, char *err, size_t err_len)
{
    return fanout_jscan_each_skip(text, len, key, NULL, NULL, arena, scratch, each, ctx,
                                  err, err_len);
}

struct fanout_jnode *
fanout_jscan_each_skip(const char *text, size_t len, const char *key, const char *skip_in,
                       const char *const *skip_names, struct fanout_arena *arena,
                       struct fanout_arena *scratch, fanout_jeach_fn each, void *ctx,
                       char *err, size_t err_len)
{
    return fanout_jscan_each_skip_shape(text, len, key, skip_in, skip_names, NULL, NULL,
                                        arena, scratch, each, ctx, err, err_len);
}

struct fanout_jnode *
fanout_jscan_each_skip_shape(const char *text, size_t len, const char *key,
                             const char *skip_in, const char *const *skip_names,
                             fanout_jshape_fn shape, void *shape_ctx,
                             struct fanout_arena *arena, struct fanout_arena *scratch,
                             fanout_jeach_fn each, void *ctx, char *err, size_t err_len)
{
    struct s_name names[S_SKIP_NAMES]; /* s_skip_container's stack: not zeroed */
    struct s_p s = {.keep_depth = 2,
                    .each_key = key,
                    .each = each,
                    .each_ctx = ctx,
                    .scratch = scratch,
                    .skip_in = skip_in,
                    .skip_in_len = skip_in ? strlen(skip_in) : 0,
                    .skip_names = skip_in ? skip_names : NULL,
                    .shape = shape,
                    .shape_ctx = shape_ctx,
                    .names = names};
    for (const char *const *n = s.skip_names; n && *n; n++) {
        size_t n_len = strlen(*n);
        if (n - s.skip_names < S_SKIP_LENS)
            s.skip_len[n - s.skip_names] = n_len;
        s.skip_firsts |= n_len ? 1ULL << ((uint8_t)(*n)[0] & 63) : 0;
        s.skip_lens |= n_len < 64 ? 1ULL << n_len : 0;
    }
    return s_scan(&s, text, len, arena, err, err_len);
}

struct fanout_jnode *fanout_jscan_valid(const char *text, size_t len,
                                        struct fanout_arena *arena, char *err,
                                        size_t err_len)
{
    struct s_p s = {.keep_depth = INT_MAX, .trusted = 1};
    return s_scan(&s, text, len, arena, err, err_len);
}

/* Unescape a validated string span into out (room for len+1 bytes: an
 * escape never grows). Returns the length. */
static size_t s_unescape(const char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        char c = in[i];
        if (c != '\\') {
            out[o++] = c;
            i++;
            continue;
        }
        char e = in[i + 1];
        i += 2;
        switch (e) {
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            /* s_hex4 sets them on validated text (gcc -O3 cannot tell) */
            unsigned cp = 0, lo = 0;
            s_hex4(in + i, &cp);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                s_hex4(in + i + 2, &lo);
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp < 0x80) {
                out[o++] = (char)cp;
            } else if (cp < 0x800) {
                out[o++] = (char)(0xC0 | (cp >> 6));
                out[o++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                out[o++] = (char)(0xE0 | (cp >> 12));
                out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[o++] = (char)(0x80 | (cp & 0x3F));
            } else {
                out[o++] = (char)(0xF0 | (cp >> 18));
                out[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[o++] = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default: out[o++] = e; break; /* \" \\ \/ */
        }
    }
    out[o] = 0;
    return o;
}

const char *fanout_jstr(const struct fanout_jnode *n, struct fanout_arena *arena,
                        size_t *len)
{
    if (!n || n->type != FANOUT_J_STRING)
        return NULL;
    char *out = fanout_arena_alloc(arena, n->len + 1);
    if (!out)
        return NULL;
    size_t l;
    if (!n->escaped) {
        memcpy(out, n->text, n->len);
        out[n->len] = 0;
        l = n->len;
    } else {
        l = s_unescape(n->text, n->len, out);
    }
    if (len)
        *len = l;
    return out;
}

const struct fanout_jnode *fanout_jget_n(const struct fanout_jnode *obj, const char *key,
                                         size_t kl)
{
    if (!obj || obj->type != FANOUT_J_OBJECT)
        return NULL;
    for (const struct fanout_jnode *c = obj->child; c; c = c->next) {
        if (!c->key_escaped) {
            if (c->key_len == kl && (!kl || c->key[0] == key[0]) &&
                memcmp(c->key, key, kl) == 0)
                return c;
        } else if (c->key_len >= kl) {
            char buf[256];
            if (c->key_len < sizeof buf && s_unescape(c->key, c->key_len, buf) == kl &&
                memcmp(buf, key, kl) == 0)
                return c;
        }
    }
    return NULL;
}

#undef fanout_jget
const struct fanout_jnode *fanout_jget(const struct fanout_jnode *obj, const char *key)
{
    return fanout_jget_n(obj, key, strlen(key));
}

/* ---- duplicate member names ------------------------------------------- */

struct s_key {
    const char *p;
    size_t len;
};

static int s_key_of(const struct fanout_jnode *c, struct fanout_arena *a, struct s_key *k)
{
    k->p = c->key;
    k->len = c->key_len;
    if (!c->key_escaped)
        return 0;
    char *out = fanout_arena_alloc(a, c->key_len + 1);
    if (!out)
        return -1;
    k->len = s_unescape(c->key, c->key_len, out);
    k->p = out;
    return 0;
}

static int s_key_eq(const struct s_key *a, const struct s_key *b)
{
    return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

/* Append a member name (".name", no dot first) or an element index
 * ("[i]") to the path at `at`; returns the new end (kept within bounds). */
static size_t s_path_add(char *path, size_t path_len, size_t at, const char *key,
                         size_t key_len, size_t index)
{
    char tmp[96];
    size_t n;
    if (key) {
        size_t k = key_len > 64 ? 64 : key_len;
        n = 0;
        if (at)
            tmp[n++] = '.';
        memcpy(tmp + n, key, k);
        n += k;
    } else {
        int w = snprintf(tmp, sizeof tmp, "[%zu]", index);
        n = w > 0 ? (size_t)w : 0;
    }
    if (at + n >= path_len)
        n = at < path_len ? path_len - 1 - at : 0;
    memcpy(path + at, tmp, n);
    path[at + n] = 0;
    return at + n;
}

#define S_PAIRWISE_MAX 16
/* a name's signature: its length, first and last byte */
#define S_SIG(k)                                                                           \
    ((k).len ? (uint64_t)(k).len << 16 | (uint64_t)(uint8_t)(k).p[0] << 8 |                \
                   (uint8_t)(k).p[(k).len - 1]                                             \
             : 0)

static int s_dup_in(const struct fanout_jnode *obj, struct fanout_arena *a,
                    const struct fanout_jnode **dup)
{
    size_t n = obj->count;
    if (n < 2)
        return 0;
    if (n <= S_PAIRWISE_MAX) {
        /* raw spans first: equal raw names are equal; different raw names
         * can only be equal when one of them has an escape. A signature
         * (length, first and last byte) rules most pairs out at once. */
        struct s_key keys[S_PAIRWISE_MAX];
        uint64_t sig[S_PAIRWISE_MAX];
        int any_escaped = 0;
        size_t i = 0;
        for (const struct fanout_jnode *c = obj->child; c; c = c->next, i++) {
            any_escaped |= c->key_escaped;
            keys[i].p = c->key;
            keys[i].len = c->key_len;
            if (any_escaped)
                continue;
            /* no escape so far: compared with the names before it as read */
            sig[i] = S_SIG(keys[i]);
            for (size_t j = 0; j < i; j++)
                if (sig[i] == sig[j] && s_key_eq(&keys[i], &keys[j])) {
                    *dup = c;
                    return 1;
                }
        }
        if (!any_escaped)
            return 0;
        i = 0;
        for (const struct fanout_jnode *c = obj->child; c; c = c->next, i++)
            if (s_key_of(c, a, &keys[i]) != 0)
                return -1;
        for (i = 0; i < n; i++)
            sig[i] = S_SIG(keys[i]);
        i = 0;
        for (const struct fanout_jnode *c = obj->child; c; c = c->next, i++)
            for (size_t j = 0; j < i; j++)
                if (sig[i] == sig[j] && s_key_eq(&keys[i], &keys[j])) {
                    *dup = c;
                    return 1;
                }
        return 0;
    }
    /* open addressing over FNV-1a hashes of the unescaped names */
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    struct s_key *slots = fanout_arena_calloc(a, cap * sizeof *slots);
    if (!slots)
        return -1;
    for (const struct fanout_jnode *c = obj->child; c; c = c->next) {
        struct s_key k;
        if (s_key_of(c, a, &k) != 0)
            return -1;
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; i < k.len; i++)
            h = (h ^ (uint8_t)k.p[i]) * 1099511628211ULL;
        for (size_t i = (size_t)h & (cap - 1);; i = (i + 1) & (cap - 1)) {
            if (!slots[i].p) {
                slots[i] = k;
                break;
            }
            if (s_key_eq(&slots[i], &k)) {
                *dup = c;
                return 1;
            }
        }
    }
    return 0;
}

/* The way down to the value being checked: rendered into a path only when
 * a repeated name is found, not for every value on the way. */
struct s_dup_up {
    const struct s_dup_up *up;
    const struct fanout_jnode *in, *node; /* node: a member or element of `in` */
    size_t index;
};

static size_t s_dup_path(const struct s_dup_up *u, char *path, size_t path_len)
{
    if (!u)
        return 0;
    size_t at = s_dup_path(u->up, path, path_len);
    return u->in->type == FANOUT_J_OBJECT
               ? s_path_add(path, path_len, at, u->node->key, u->node->key_len, 0)
               : s_path_add(path, path_len, at, NULL, 0, u->index);
}

/* A value scanned without nodes below it (fanout_jscan_each_skip), with
 * its nodes: its text scanned again. NULL when out of memory. */
static const struct fanout_jnode *s_rescan(const struct fanout_jnode *n,
                                           struct fanout_arena *a)
{
    char err[8];
    return fanout_jscan_valid(n->text, n->len, a, err, sizeof err);
}

static int s_dup_walk(const struct fanout_jnode *n, struct fanout_arena *a,
                      const struct s_dup_up *up, char *path, size_t path_len)
{
    if (n->type == FANOUT_J_OBJECT) {
        const struct fanout_jnode *dup = NULL;
        int rc = s_dup_in(n, a, &dup);
        if (rc > 0)
            s_path_add(path, path_len, s_dup_path(up, path, path_len), dup->key,
                       dup->key_len, 0);
        if (rc != 0)
            return rc;
    }
    size_t i = 0;
    for (const struct fanout_jnode *c = n->child; c; c = c->next, i++) {
        if ((c->type != FANOUT_J_OBJECT && c->type != FANOUT_J_ARRAY) || c->distinct)
            continue;
        struct s_dup_up u = {up, n, c, i};
        const struct fanout_jnode *full = c->child || !c->count ? c : s_rescan(c, a);
        if (!full)
            return -1;
        int rc = s_dup_walk(full, a, &u, path, path_len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int fanout_jdup(const struct fanout_jnode *n, struct fanout_arena *arena, char *path,
                size_t path_len)
{
    if (!path_len)
        return -1;
    path[0] = 0;
    if (!n || (n->type != FANOUT_J_OBJECT && n->type != FANOUT_J_ARRAY) || n->distinct)
        return 0;
    const struct fanout_jnode *full = n->child || !n->count ? n : s_rescan(n, arena);
    return full ? s_dup_walk(full, arena, NULL, path, path_len) : -1;
}

int fanout_jdup_members(const struct fanout_jnode *obj, struct fanout_arena *arena,
                        char *name, size_t name_len)
{
    if (!name_len)
        return -1;
    name[0] = 0;
    const struct fanout_jnode *dup = NULL;
    if (!obj || obj->type != FANOUT_J_OBJECT || obj->distinct)
        return 0;
    int rc = s_dup_in(obj, arena, &dup);
    if (rc > 0)
        s_path_add(name, name_len, 0, dup->key, dup->key_len, 0);
    return rc;
}
