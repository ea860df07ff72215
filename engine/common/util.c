#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include <jansson.h>

#include "common/base64_simd.h"

/* Buffers, UTF-8 checks, JSON string escaping and the base64 encoder are the
 * SDK's (sdk/lib/buffer.c), shared with the plugins. */

static const char s_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t fanout_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

size_t fanout_base64_decoded_max(size_t n)
{
    return n / 4 * 3 + 3;
}

/* The value of each character (-1: not in the alphabet), and the same
 * shifted into place in a 24-bit group per position in a quad: an
 * invalid character sets the bits above 24. */
struct s_b64_tables {
    int8_t t[256];
    uint32_t shifted[4][256];
};

static const struct s_b64_tables *s_b64_tables(void)
{
    static struct s_b64_tables tables;
    static int ready;
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        struct s_b64_tables tmp;
        memset(tmp.t, -1, sizeof tmp.t);
        for (int i = 0; i < 64; i++)
            tmp.t[(uint8_t)s_b64[i]] = (int8_t)i;
        for (int c = 0; c < 256; c++)
            for (int k = 0; k < 4; k++)
                tmp.shifted[k][c] =
                    tmp.t[c] < 0 ? 0xFF000000u : (uint32_t)tmp.t[c] << (18 - 6 * k);
        memcpy(&tables, &tmp, sizeof tables);
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    return &tables;
}

long fanout_base64_decode(const char *in, size_t n, uint8_t *out, size_t *bad_at)
{
    const struct s_b64_tables *tb = s_b64_tables();
    const int8_t *t = tb->t;
    const uint8_t *s = (const uint8_t *)in;
    if (n % 4 != 0) {
        if (bad_at)
            *bad_at = n;
        return -1;
    }
    /* every quad but the last (which may have padding): one lookup per
     * character, one test per quad; a quad with an invalid character is left
     * to the loop below, which names it (the quads before it are valid) */
    size_t fast = n ? n - 4 : 0, i = 0;
    /* first the whole blocks of alphabet characters, with SIMD where the
     * CPU has it (it stops at the block of anything else) */
    if (fast >= 16)
        i = fanout_base64_decode_simd(s, fast, out);
    for (; i < fast; i += 4) {
        uint32_t v = tb->shifted[0][s[i]] | tb->shifted[1][s[i + 1]] |
                     tb->shifted[2][s[i + 2]] | tb->shifted[3][s[i + 3]];
        if (v >> 24)
            break;
        out[i / 4 * 3] = (uint8_t)(v >> 16);
        out[i / 4 * 3 + 1] = (uint8_t)(v >> 8);
        out[i / 4 * 3 + 2] = (uint8_t)v;
    }
    size_t o = i / 4 * 3;
    for (; i < n; i += 4) {
        int last = i + 4 == n;
        int a = t[s[i]], b = t[s[i + 1]];
        int c = t[s[i + 2]], d = t[s[i + 3]];
        if (a < 0 || b < 0) {
            if (bad_at)
                *bad_at = a < 0 ? i : i + 1;
            return -1;
        }
        if (last && s[i + 3] == '=') {
            if (s[i + 2] == '=') {
                if (b & 15) { /* non-canonical trailing bits */
                    if (bad_at)
                        *bad_at = i + 1;
                    return -1;
                }
                out[o++] = (uint8_t)(a << 2 | b >> 4);
                break;
            }
            if (c < 0 || (c & 3)) {
                if (bad_at)
                    *bad_at = i + 2;
                return -1;
            }
            out[o++] = (uint8_t)(a << 2 | b >> 4);
            out[o++] = (uint8_t)(b << 4 | c >> 2);
            break;
        }
        if (c < 0 || d < 0) {
            if (bad_at)
                *bad_at = c < 0 ? i + 2 : i + 3;
            return -1;
        }
        out[o++] = (uint8_t)(a << 2 | b >> 4);
        out[o++] = (uint8_t)(b << 4 | c >> 2);
        out[o++] = (uint8_t)(c << 6 | d);
    }
    return (long)o;
}

void fanout_base64_encode_back(char *text, size_t m)
{
    uint8_t *s = (uint8_t *)text;
    size_t groups = m / 3, tail = m % 3;
    /* the last group first, which may be short: "=" padded */
    if (tail) {
        uint32_t v = (uint32_t)s[groups * 3] << 16 |
                     (tail > 1 ? (uint32_t)s[groups * 3 + 1] << 8 : 0);
        char *o = text + groups * 4;
        o[0] = s_b64[v >> 18];
        o[1] = s_b64[v >> 12 & 63];
        o[2] = tail > 1 ? s_b64[v >> 6 & 63] : '=';
        o[3] = '=';
    }
    /* group k's 4 characters land at 4k, over bytes of groups k + 1 and
     * up (read already: backwards) and its own */
    for (size_t k = groups; k-- > 0;) {
        uint32_t v = (uint32_t)s[k * 3] << 16 | (uint32_t)s[k * 3 + 1] << 8 | s[k * 3 + 2];
        char *o = text + k * 4;
        o[0] = s_b64[v >> 18];
        o[1] = s_b64[v >> 12 & 63];
        o[2] = s_b64[v >> 6 & 63];
        o[3] = s_b64[v & 63];
    }
}

long fanout_base64_decode_in_place(char *text, size_t n, size_t *bad_at)
{
    size_t bad = n;
    long m = fanout_base64_decode(text, n, (uint8_t *)text, &bad);
    if (m < 0 && bad < n) {
        /* the quads before the bad one were decoded (and the SIMD part's
         * stores past them stay below that quad): encoded back */
        fanout_base64_encode_back(text, bad / 4 * 3);
    }
    if (bad_at)
        *bad_at = bad;
    return m;
}

/* ---- arena -------------------------------------------------------------- */

struct fanout_arena_chunk {
    struct fanout_arena_chunk *next;
    size_t size;
    size_t used;
    size_t map_len; /* mmap'd (map_len bytes in all) when not 0, else malloc'd */
    int one_off;    /* made for one large allocation: released by reset */
    int trimmed;    /* its unused tail given back once (fanout_arena_trim) */
    _Alignas(16) unsigned char data[];
};

/* The first chunk (ARENA_CHUNK, malloc'd: a small arena stays small); the
 * later ones ARENA_CHUNK_BIG, mapped at a 2 MiB boundary with
 * MADV_HUGEPAGE: where transparent huge pages are on for madvise (as on
 * Lambda's hosts and this project's machines), such a chunk arrives in one
 * page fault instead of 512. Each fault is dear in a VM (the hypervisor
 * takes one for each page the guest maps, populated or not): a 5 MB event's
 * records fill about 4 MB of arena, 1,000 faults of 4 KiB. Without huge
 * pages the chunk's pages arrive as touched, as malloc's would. */
#define ARENA_CHUNK     (64 * 1024)
#define ARENA_CHUNK_BIG (2 * 1024 * 1024)

void fanout_advise_huge(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t page = 4096;
    uintptr_t from = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t to = ((uintptr_t)p + n) & ~(page - 1);
    if (to > from)
        (void)madvise((void *)from, to - from, MADV_HUGEPAGE);
#else
    (void)p;
    (void)n;
#endif
}

/* `n` bytes (a multiple of ARENA_CHUNK_BIG) at an ARENA_CHUNK_BIG boundary,
 * huge pages asked for, or NULL. */
static void *s_map_huge(size_t n)
{
    size_t len = n + ARENA_CHUNK_BIG;
    uint8_t *p =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    size_t head = (ARENA_CHUNK_BIG - (uintptr_t)p % ARENA_CHUNK_BIG) % ARENA_CHUNK_BIG;
    if (head)
        munmap(p, head);
    munmap(p + head + n, len - head - n);
    fanout_advise_huge(p + head, n);
    return p + head;
}

static struct fanout_arena_chunk *s_chunk_new(size_t bytes, int one_off)
{
    struct fanout_arena_chunk *c = NULL;
    size_t map_len = 0;
    if (!one_off && bytes == ARENA_CHUNK_BIG && (c = s_map_huge(bytes)))
        map_len = bytes;
    if (!c) {
        c = malloc(bytes);
        if (!c)
            return NULL;
    }
    c->size = bytes - sizeof *c;
    c->map_len = map_len;
    c->one_off = one_off;
    c->trimmed = 0;
    return c;
}

static void s_chunk_free(struct fanout_arena_chunk *c)
{
    if (c->map_len)
        munmap(c, c->map_len);
    else
        free(c);
}

/* A spare chunk for `n` bytes, taken off the spare list: one where `n` is
 * small (a quarter at most), or, for a `big` block, any that holds it. */
static struct fanout_arena_chunk *s_spare_take(struct fanout_arena *a, size_t n, int big)
{
    for (struct fanout_arena_chunk **pp = &a->spare; *pp; pp = &(*pp)->next) {
        struct fanout_arena_chunk *c = *pp;
        if (n <= c->size / 4 || (big && n <= c->size)) {
            *pp = c->next;
            return c;
        }
    }
    return NULL;
}

/* A chunk in huge pages for a block too large for a chunk of its own
 * (the record array of a 10,000-record event: 1.2 MB), kept by reset like
 * the others: its pages arrive one fault per 2 MiB, where a malloc'd block
 * takes one per 4 KiB, and its rest serves the allocations that follow.
 * NULL when it cannot be mapped. */
static struct fanout_arena_chunk *s_chunk_big(size_t n)
{
    struct fanout_arena_chunk *c;
    if (n > SIZE_MAX - sizeof *c - ARENA_CHUNK_BIG)
        return NULL;
    size_t len = (sizeof *c + n + ARENA_CHUNK_BIG - 1) / ARENA_CHUNK_BIG * ARENA_CHUNK_BIG;
    c = s_map_huge(len);
    if (!c)
        return NULL;
    c->size = len - sizeof *c;
    c->map_len = len;
    c->one_off = 0;
    c->trimmed = 0;
    return c;
}

void *fanout_arena_alloc(struct fanout_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    struct fanout_arena_chunk *c = a->head;
    size_t at = c ? (c->used + 15) & ~(size_t)15 : 0; /* after fanout_arena_bytes */
    if (!c || at > c->size || c->size - at < n) {
        struct fanout_arena_chunk *nc = NULL;
        size_t left = c ? c->size - c->used : 0;
        int big = n > (ARENA_CHUNK_BIG - sizeof *nc) / 4 && left <= ARENA_CHUNK_BIG / 4;
        if ((nc = s_spare_take(a, n, big)) != NULL) {
            /* a chunk kept by reset */
        } else if (big && (nc = s_chunk_big(n)) != NULL) {
            /* a large block in huge pages, the chunk's rest for what follows */
        } else {
            /* the first chunk small, the others big */
            size_t next = c ? ARENA_CHUNK_BIG : ARENA_CHUNK;
            int one_off = n > (next - sizeof *nc) / 4;
            if (one_off && n > SIZE_MAX - sizeof *nc)
                return NULL;
            nc = s_chunk_new(one_off ? sizeof *nc + n : next, one_off);
            if (!nc)
                return NULL;
        }
        nc->used = 0;
        if (c && nc->one_off) {
            /* big one-off block: keep the current chunk at the head */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
        at = 0;
    }
    void *p = c->data + at;
    c->used = at + n;
    a->total += n;
    return p;
}

void *fanout_arena_bytes(struct fanout_arena *a, size_t n)
{
    struct fanout_arena_chunk *c = a->head;
    if (!c || c->size - c->used < n || n == 0)
        return fanout_arena_alloc(a, n);
    void *p = c->data + c->used;
    c->used += n;
    a->total += n;
    return p;
}

void *fanout_arena_calloc(struct fanout_arena *a, size_t n)
{
    void *p = fanout_arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *fanout_arena_memdup(struct fanout_arena *a, const void *p, size_t n)
{
    uint8_t *d = fanout_arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    if (n)
        memcpy(d, p, n);
    d[n] = 0;
    return d;
}

char *fanout_arena_strdup(struct fanout_arena *a, const char *s)
{
    return s ? fanout_arena_memdup(a, s, strlen(s)) : NULL;
}

char *fanout_arena_sprintf(struct fanout_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = n < 0 ? NULL : fanout_arena_alloc(a, (size_t)n + 1);
    if (p)
        vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

void fanout_arena_reset(struct fanout_arena *a)
{
    struct fanout_arena_chunk *c = a->head;
    if (c && !c->next && !c->one_off) {
        /* one chunk (a scratch arena reset for each record): used again
         * from its start, not through the spare list */
        c->used = 0;
        a->total = 0;
        return;
    }
    while (c) {
        struct fanout_arena_chunk *next = c->next;
        if (!c->one_off) {
            c->next = a->spare;
            a->spare = c;
        } else {
            s_chunk_free(c);
        }
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* The unused tail of a chunk given back when at least this large. */
#define ARENA_TRIM_MIN (64 * 1024)

void fanout_arena_trim(struct fanout_arena *a)
{
#ifdef MADV_DONTNEED
    for (struct fanout_arena_chunk *c = a->head; c; c = c->next) {
        /* once: a warm invocation that fills the tail again keeps it */
        if (!c->map_len || c->trimmed)
            continue;
        c->trimmed = 1;
        uintptr_t from = ((uintptr_t)(c->data + c->used) + 4095) & ~(uintptr_t)4095;
        uintptr_t to = (uintptr_t)c + c->map_len;
        if (to > from && to - from >= ARENA_TRIM_MIN) {
#ifdef MADV_NOHUGEPAGE
            /* kept small first: khugepaged collapses a huge-page range with
             * up to 511 of its 512 pages empty (max_ptes_none), which would
             * make the tail resident again, zeroed, in the middle of the
             * sends (e2e: +1.5 MB peak in about 1 run of 3); marked after
             * the pages went, it could do so in between */
            (void)madvise((void *)from, to - from, MADV_NOHUGEPAGE);
#endif
            (void)madvise((void *)from, to - from, MADV_DONTNEED);
        }
    }
#else
    (void)a;
#endif
}

static void s_chunks_free(struct fanout_arena_chunk *c)
{
    while (c) {
        struct fanout_arena_chunk *next = c->next;
        s_chunk_free(c);
        c = next;
    }
}

void fanout_arena_free(struct fanout_arena *a)
{
    s_chunks_free(a->head);
    s_chunks_free(a->spare);
    a->head = NULL;
    a->spare = NULL;
    a->total = 0;
}

/* ---- JSON validation ------------------------------------------------------ */

struct jv {
    const uint8_t *p, *end;
    int depth;
};

static void jv_ws(struct jv *v)
{
    while (v->p < v->end &&
           (*v->p == ' ' || *v->p == '\n' || *v->p == '\r' || *v->p == '\t'))
        v->p++;
}

static int jv_value(struct jv *v);

static int jv_string(struct jv *v)
{
    v->p++; /* opening quote */
    while (v->p < v->end) {
        uint8_t c = *v->p;
        if (c == '"') {
            v->p++;
            return 1;
        }
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            if (++v->p >= v->end)
                return 0;
            c = *v->p;
            if (c == 'u') {
                if (v->end - v->p < 5)
                    return 0;
                for (int i = 1; i <= 4; i++) {
                    uint8_t h = v->p[i];
                    if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') ||
                          (h >= 'A' && h <= 'F')))
                        return 0;
                }
                v->p += 5;
                continue;
            }
            if (!strchr("\"\\/bfnrt", c) || c == 0)
                return 0;
            v->p++;
            continue;
        }
        if (c < 0x80) {
            v->p++;
            continue;
        }
        size_t k = fanout_utf8_seq(v->p, (size_t)(v->end - v->p));
        if (!k)
            return 0;
        v->p += k;
    }
    return 0;
}

static int jv_digits(struct jv *v)
{
    const uint8_t *s = v->p;
    while (v->p < v->end && *v->p >= '0' && *v->p <= '9')
        v->p++;
    return v->p > s;
}

static int jv_number(struct jv *v)
{
    if (*v->p == '-')
        v->p++;
    if (v->p >= v->end)
        return 0;
    if (*v->p == '0')
        v->p++;
    else if (!jv_digits(v))
        return 0;
    if (v->p < v->end && *v->p == '.') {
        v->p++;
        if (!jv_digits(v))
            return 0;
    }
    if (v->p < v->end && (*v->p == 'e' || *v->p == 'E')) {
        v->p++;
        if (v->p < v->end && (*v->p == '+' || *v->p == '-'))
            v->p++;
        if (!jv_digits(v))
            return 0;
    }
    return 1;
}

static int jv_lit(struct jv *v, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(v->end - v->p) < n || memcmp(v->p, lit, n) != 0)
        return 0;
    v->p += n;
    return 1;
}

static int jv_container(struct jv *v, uint8_t close, int object)
{
    if (++v->depth > 512)
        return 0;
    v->p++;
    jv_ws(v);
    if (v->p < v->end && *v->p == close) {
        v->p++;
        v->depth--;
        return 1;
    }
    for (;;) {
        if (object) {
            jv_ws(v);
            if (v->p >= v->end || *v->p != '"' || !jv_string(v))
                return 0;
            jv_ws(v);
            if (v->p >= v->end || *v->p != ':')
                return 0;
            v->p++;
        }
        if (!jv_value(v))
            return 0;
        jv_ws(v);
        if (v->p >= v->end)
            return 0;
        if (*v->p == ',') {
            v->p++;
            continue;
        }
        if (*v->p == close) {
            v->p++;
            v->depth--;
            return 1;
        }
        return 0;
    }
}

static int jv_value(struct jv *v)
{
    jv_ws(v);
    if (v->p >= v->end)
        return 0;
    switch (*v->p) {
    case '{': return jv_container(v, '}', 1);
    case '[': return jv_container(v, ']', 0);
    case '"': return jv_string(v);
    case 't': return jv_lit(v, "true");
    case 'f': return jv_lit(v, "false");
    case 'n': return jv_lit(v, "null");
    default: return jv_number(v);
    }
}

int fanout_json_valid(const uint8_t *s, size_t n)
{
    struct jv v = {s, s + n, 0};
    if (!jv_value(&v))
        return 0;
    jv_ws(&v);
    return v.p == v.end;
}

/* ---- strings ------------------------------------------------------------ */

int fanout_list_has_token(const char *v, size_t n, const char *token)
{
    size_t t = strlen(token), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        size_t e = j;
        while (e > i && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - i == t && strncasecmp(v + i, token, t) == 0)
            return 1;
        i = j;
    }
    return 0;
}

char *fanout_strlcpy(char *dst, const char *src, size_t dst_len)
{
    if (!dst_len)
        return dst;
    size_t n = strlen(src);
    if (n >= dst_len)
        n = dst_len - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
    return dst;
}

const char *fanout_quote(char buf[FANOUT_QUOTE_SIZE], const char *s)
{
    if (!s)
        return "";
    size_t n = strnlen(s, FANOUT_QUOTE_MAX + 1);
    if (n <= FANOUT_QUOTE_MAX)
        return s;
    n = strlen(s);
    size_t k = FANOUT_QUOTE_MAX;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--; /* never cut a UTF-8 sequence */
    memcpy(buf, s, k);
    snprintf(buf + k, FANOUT_QUOTE_SIZE - k, "\xe2\x80\xa6(%zu bytes)", n);
    return buf;
}

int fanout_valid_type_name(const char *s)
{
    size_t n = 0;
    if (!s)
        return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
        if (n >= 64)
            return 0;
    }
    return n > 0;
}

static const char *s_own_env[4];

void fanout_env_set_own(const char *name, const char *value)
{
    size_t n = 0;
    while (n < sizeof s_own_env / sizeof *s_own_env && s_own_env[n])
        n++;
    if (n == sizeof s_own_env / sizeof *s_own_env || getenv(name))
        return;
    if (setenv(name, value, 0) == 0)
        s_own_env[n] = name;
}

char **fanout_child_env(void)
{
    extern char **environ;
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = malloc((n + 1) * sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int own = 0;
        for (size_t j = 0; j < sizeof s_own_env / sizeof *s_own_env && s_own_env[j]; j++) {
            size_t len = strlen(s_own_env[j]);
            own |= !strncmp(environ[i], s_own_env[j], len) && environ[i][len] == '=';
        }
        if (!own)
            env[k++] = environ[i];
    }
    env[k] = NULL;
    return env;
}

const char *fanout_json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}
