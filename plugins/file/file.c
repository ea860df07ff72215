/*
 * The `file` destination: each message as one JSON line, appended to a file
 * or written to stdout (destination "-"). It is the default for local runs
 * and what the tests read back.
 *
 * One line per message:
 *   {"source":..., "key":..., "sequenceNumber":..., "subSequenceNumber":...,
 *    "action":..., "data":"<text>"}            (collapse none)
 * with "dataBase64" instead of "data" when the bytes are not valid UTF-8.
 * For collapsed messages, key and sequence numbers are the first record's,
 * "records" counts the records carried and "data" is the message body.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fanout/helpers.h>
#include <fanout/plugin.h>
#include <fanout/plugin_state.h>
#include <fanout/swar.h>

#if FANOUT_HAVE_SSE2
#include <emmintrin.h>
#endif
#if FANOUT_HAVE_X86_SIMD
#include <tmmintrin.h>
#endif

struct file_options {
    int fsync;
};

struct file_instance {
    const struct fanout_host *host;
    int fd;
    int owned; /* not stdout */
    int fsync;
    char *path;
    pthread_mutex_t lock;   /* keeps each call's lines together, in order */
    struct fanout_sbuf buf; /* the lines being written (under the lock) */
};

/* A call's lines are written in pieces of about S_FLUSH_BYTES (whole lines)
 * from the instance's one buffer, kept from call to call, rather than from
 * a buffer of the whole call's size made for each call: its fresh pages
 * cost a page fault each. A buffer a large message grew past S_KEEP_BYTES
 * is not kept. */
#define S_FLUSH_BYTES (64 * 1024)
#define S_KEEP_BYTES  (1024 * 1024)

/* ---- the line ---- */

/*
 * A JSON string, kept rather than fanout_sbuf_json_str: bytes >= 0x80 go
 * through as they are, where the SDK's turns invalid UTF-8 into U+FFFD.
 * The same for valid UTF-8 (data and key are checked first), but the
 * record's other strings are not re-checked here (an explicit hash key
 * comes from a KPL aggregate's protobuf), and the lines stay byte for byte.
 */
/* Past the escaped bytes, room is kept for a 16-byte store (a block is
 * stored before it is looked at). */
#define S_ESC_SLACK 16

/* The escaper, for the tests: `ssse3` 0 keeps to the SSE2 path (x86-64's
 * baseline), 1 takes the SSSE3 one when the CPU has it (as the plugin
 * does); without x86 SIMD (-Dsimd=false, arm64) both are the portable
 * path. */
int fanout_file_json_str(struct fanout_sbuf *b, const uint8_t *s, size_t n, int ssse3);

#if FANOUT_HAVE_SSE2
/* The bytes of `v` below 0x20, as 0xff bytes. */
static inline __m128i s_ctl16(__m128i v)
{
    return _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v); /* <= 0x1f */
}

/* The bytes of `v` that need an escape in a JSON string: '"', '\\' and
 * those below 0x20 (`ctl`, s_ctl16's), as bits. */
static inline unsigned s_stop16(__m128i v, __m128i ctl)
{
    __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                             _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                                ctl);
    return (unsigned)_mm_movemask_epi8(stop);
}
#endif

/* The escape of byte `c` (one that needs one) at `o`: its end. Out of line:
 * a control character is rare in text, a quote is not (s_escape_block). */
__attribute__((noinline)) static char *s_escape(char *o, uint8_t c)
{
    static const char hex[] = "0123456789abcdef";
    /* the byte after the backslash for the short escapes; 0: \u00XX */
    static const char named[0x60] = {
        ['"'] = '"', ['\\'] = '\\', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    *o++ = '\\';
    if (c < sizeof named && named[c]) {
        *o++ = named[c];
        return o;
    }
    memcpy(o, "u00", 3);
    o[3] = hex[c >> 4];
    o[4] = hex[c & 15];
    return o + 5;
}

/* s_room's slow part: the buffer grown to `need` bytes past `o`. */
__attribute__((noinline)) static char *s_grow(struct fanout_sbuf *b, char *o, size_t need)
{
    size_t used = (size_t)(o - b->p);
    b->len = used;
    if (fanout_sbuf_reserve(b, need) != 0)
        return NULL;
    return b->p + used;
}

/* Room for the escaping to go on: the escape of every one of the next
 * `block` bytes (6 bytes each at most), a 16-byte store past them, the
 * `rest` of the input after them, the quote, the NUL and `slack`. The
 * (possibly moved) write position, or NULL when out of memory. */
static inline char *s_room(struct fanout_sbuf *b, char *o, size_t block, size_t rest,
                           size_t slack)
{
    size_t need = block * 6 + 16 + rest + 1 + slack;
    return b->cap - (size_t)(o - b->p) > need ? o : s_grow(b, o, need);
}

#if FANOUT_HAVE_SSE2
/* The `len` bytes of `v` (16 at most; `mask`, not 0, flags those that need
 * an escape) at `o`, escaped; `rest` bytes of input follow them. Converted
 * DynamoDB images have a quote every few bytes: leaving the block at each
 * escape to load the input again cost twice what this does. Each flagged
 * byte costs one 16-byte copy of the bytes before it, from a copy of the
 * block, and its backslash: a '"' or '\\' itself is the first byte of the
 * next copy. The write position after the block, or NULL when out of
 * memory. */
static inline char *s_escape_block(struct fanout_sbuf *b, char *o, __m128i v, unsigned mask,
                                   size_t len, size_t rest, size_t slack)
{
    if (!(o = s_room(b, o, len, rest, slack)))
        return NULL;
    uint8_t blk[32];
    _mm_storeu_si128((__m128i *)(void *)blk, v);
    _mm_storeu_si128((__m128i *)(void *)(blk + 16), _mm_setzero_si128());
    unsigned pos = 0;
    do {
        unsigned k = (unsigned)__builtin_ctz(mask);
        _mm_storeu_si128((__m128i *)(void *)o,
                         _mm_loadu_si128((const __m128i *)(const void *)(blk + pos)));
        o += k - pos;
        uint8_t c = blk[k];
        if (c >= 0x20) {
            *o++ = '\\';
            pos = k;
        } else {
            o = s_escape(o, c);
            pos = k + 1;
        }
        mask &= mask - 1;
    } while (mask);
    _mm_storeu_si128((__m128i *)(void *)o,
                     _mm_loadu_si128((const __m128i *)(const void *)(blk + pos)));
    return o + (len - pos);
}
#endif

#if FANOUT_HAVE_X86_SIMD
/*
 * SSSE3 (chosen at run time): a block whose escapes are all '"' or '\\'
 * (a control character is rare: s_escape_block) written 8 bytes at a
 * time through a shuffle: the 8 bytes and 8 backslashes in one register,
 * s_exp[mask] (the 8 bytes' escape mask) picks a backslash before each
 * flagged byte, s_exp_len[mask] (8 and one per flagged byte) is the
 * length. A converted DynamoDB image has a quote every few bytes: about
 * 3 escapes a block, which cost s_escape_block a copy and a branch each.
 */
static uint8_t s_exp[256][16] __attribute__((aligned(16)));
static uint8_t s_exp_len[256];
static pthread_once_t s_exp_once = PTHREAD_ONCE_INIT;
static int s_exp_ssse3; /* 0: not known yet, 1: no SSSE3, 2: SSSE3 */

static void s_exp_init(void)
{
    for (unsigned m = 0; m < 256; m++) {
        unsigned k = 0;
        for (unsigned j = 0; j < 8; j++) {
            if (m >> j & 1)
                s_exp[m][k++] = 8; /* a backslash */
            s_exp[m][k++] = (uint8_t)j;
        }
        s_exp_len[m] = (uint8_t)k;
        for (; k < 16; k++)
            s_exp[m][k] = 0x80; /* zero: past the length */
    }
    __builtin_cpu_init();
    __atomic_store_n(&s_exp_ssse3, __builtin_cpu_supports("ssse3") ? 2 : 1,
                     __ATOMIC_RELEASE);
}

/* s_exp_ssse3 known (2: the CPU has SSSE3), the tables built. */
__attribute__((noinline)) static int s_exp_pick(void)
{
    pthread_once(&s_exp_once, s_exp_init);
    return __atomic_load_n(&s_exp_ssse3, __ATOMIC_ACQUIRE);
}

/* The SSSE3 path is taken (the tables built). */
static inline int s_use_ssse3(void)
{
    int have = __atomic_load_n(&s_exp_ssse3, __ATOMIC_ACQUIRE);
    return (have ? have : s_exp_pick()) == 2;
}

/* s_escape_block out of line, for the SSSE3 path's rare blocks with a
 * control character. */
__attribute__((noinline)) static char *s_escape_ctl(struct fanout_sbuf *b, char *o,
                                                    __m128i v, unsigned mask, size_t len,
                                                    size_t rest)
{
    return s_escape_block(b, o, v, mask, len, rest, S_ESC_SLACK);
}

/* The first `len` bytes of a 16-byte block `v` (the others zeros), whose
 * escapes, flagged in `mask`, are all '"' or '\\', escaped at `o`: the
 * end, 2 * len bytes past `o` at most. 32 bytes are stored from `o` on. */
__attribute__((target("ssse3"))) static inline char *s_expand16(char *o, __m128i v,
                                                                unsigned mask, size_t len)
{
    const __m128i bs = _mm_set1_epi8('\\');
    const __m128i *t = (const __m128i *)(const void *)s_exp;
    unsigned lo = mask & 255, hi = mask >> 8;
    _mm_storeu_si128((__m128i *)(void *)o,
                     _mm_shuffle_epi8(_mm_unpacklo_epi64(v, bs), t[lo]));
    _mm_storeu_si128((__m128i *)(void *)(o + s_exp_len[lo]),
                     _mm_shuffle_epi8(_mm_unpackhi_epi64(v, bs), t[hi]));
    return o + len + s_exp_len[lo] + s_exp_len[hi] - 16;
}

/* Input bytes the SSSE3 path makes room for at a time: twice as many in
 * the output (every byte a '"'), so that a block of quotes needs no check. */
#define S_CHUNK 1024

/* The `n` bytes of `p` (16 at least, the first block with an escape) with
 * SSSE3, written at `o` (room for n bytes, the quote, the NUL and the
 * slack): the end, NULL when out of memory. Whole 16-byte blocks, then
 * the last bytes, moved to the front of a register with zeros after them
 * (which the mask drops). */
__attribute__((target("ssse3"))) static char *s_body_ssse3(struct fanout_sbuf *b, char *o,
                                                           const uint8_t *p, size_t n)
{
    /* lane j of a register shifted down by k bytes: s_shift[k + j] */
    static const uint8_t s_shift[32] = {0,    1,    2,    3,    4,    5,    6,    7,
                                        8,    9,    10,   11,   12,   13,   14,   15,
                                        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
    const uint8_t *end = p + n;
    while (end - p >= 16) {
        /* from `o` on, room for the chunk's rest twice, the input's rest
         * after it, a 16-byte store, the quote, the NUL and the slack */
        size_t left = (size_t)(end - p);
        const uint8_t *stop = p + ((left < S_CHUNK ? left : S_CHUNK) & ~(size_t)15);
        if (!(o = s_room(b, o, 0, (size_t)(stop - p) + left, S_ESC_SLACK)))
            return NULL;
        for (; p < stop; p += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            _mm_storeu_si128((__m128i *)(void *)o, v);
            __m128i ctl = s_ctl16(v);
            unsigned mask = s_stop16(v, ctl);
            if (!mask)
                o += 16;
            else if (!_mm_movemask_epi8(ctl))
                o = s_expand16(o, v, mask, 16);
            else if (!(o = s_escape_ctl(b, o, v, mask, 16,
                                        (size_t)(end - p) - 16 + (size_t)(stop - p) - 16)))
                return NULL;
        }
    }
    size_t avail = (size_t)(end - p);
    if (!avail)
        return o;
    __m128i v = _mm_shuffle_epi8(
        _mm_loadu_si128((const __m128i *)(const void *)(end - 16)),
        _mm_loadu_si128((const __m128i *)(const void *)(s_shift + 16 - avail)));
    _mm_storeu_si128((__m128i *)(void *)o, v);
    __m128i ctl = s_ctl16(v);
    unsigned mask = s_stop16(v, ctl) & ((1u << avail) - 1);
    if (!mask)
        return o + avail;
    if (_mm_movemask_epi8(ctl) & (int)mask)
        return s_escape_ctl(b, o, v, mask, avail, 0);
    return (o = s_room(b, o, avail, 0, S_ESC_SLACK)) ? s_expand16(o, v, mask, avail) : NULL;
}
#endif

/* The escaper: fanout_file_json_str's. */
static inline int s_json_str_isa(struct fanout_sbuf *b, const uint8_t *s, size_t n,
                                 int ssse3)
{
    /* written in place: room for the quotes and the bytes as they are,
     * S_ESC_SLACK bytes more (a block is stored before it is looked at),
     * and more only when an escape needs it. From `o` on there is always
     * room for the input's rest, the quote, the NUL and the slack. */
    (void)ssse3; /* without x86 SIMD */
    if (fanout_sbuf_reserve(b, n + 2 + S_ESC_SLACK) != 0)
        return -1;
    char *o = b->p + b->len;
    *o++ = '"';
    size_t i = 0;
#if FANOUT_HAVE_SSE2
    /* sixteen bytes at a time with SSE2 (x86-64's baseline), the last ones
     * too (padded with bytes the mask then drops): stored as they are,
     * then tested for '"', '\\' or a byte below 0x20 (bytes of 0x80 and
     * above pass: the text was checked as UTF-8); a block with such bytes
     * is written again with their escapes (s_escape_block), or with the
     * CPU's SSSE3 from the first such block on (s_body_ssse3) */
    for (; n - i >= 16; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        _mm_storeu_si128((__m128i *)(void *)o, v);
        unsigned mask = s_stop16(v, s_ctl16(v));
        if (!mask) {
            o += 16;
            continue;
        }
#if FANOUT_HAVE_X86_SIMD
        if (ssse3 && s_use_ssse3()) {
            if (!(o = s_body_ssse3(b, o, s + i, n - i)))
                return -1;
            i = n;
            break;
        }
#endif
        if (!(o = s_escape_block(b, o, v, mask, 16, n - i - 16, S_ESC_SLACK)))
            return -1;
    }
    size_t avail = n - i;
    if (avail) {
        /* the rest, followed by zeros (which the mask drops): from the
         * last 16 bytes when the string has them, else byte by byte */
        uint8_t pad[32] = {0};
        if (n >= 16) {
            _mm_storeu_si128((__m128i *)(void *)pad,
                             _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16)));
        } else {
            for (size_t k = 0; k < avail; k++)
                pad[16 - avail + k] = s[i + k];
        }
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(pad + 16 - avail));
        _mm_storeu_si128((__m128i *)(void *)o, v);
        unsigned mask = s_stop16(v, s_ctl16(v)) & ((1u << avail) - 1);
        if (!mask)
            o += avail;
        else if (!(o = s_escape_block(b, o, v, mask, avail, 0, S_ESC_SLACK)))
            return -1;
    }
#else
    for (;;) {
        /* eight bytes at a time, stored as they are, up to the first byte
         * that needs an escape (exact marks: fanout_swar_jesc); the rest
         * one at a time */
        while (n - i >= 8) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            memcpy(o, &v, 8); /* room: the input's rest from `o` on */
            const uint64_t marks = fanout_swar_jesc(v);
            if (marks) {
                const size_t k = fanout_swar_first(marks);
                i += k;
                o += k;
                break;
            }
            i += 8;
            o += 8;
        }
        while (i < n && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
            *o++ = (char)s[i++];
        if (i >= n)
            break;
        if (!(o = s_room(b, o, 1, n - i - 1, S_ESC_SLACK)))
            return -1;
        const uint8_t c = s[i++];
        if (c == '"' || c == '\\') { /* the common escapes, without the call */
            o[0] = '\\';
            o[1] = (char)c;
            o += 2;
        } else {
            o = s_escape(o, c);
        }
    }
#endif
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    b->p[b->len] = 0;
    return 0;
}

int fanout_file_json_str(struct fanout_sbuf *b, const uint8_t *s, size_t n, int ssse3)
{
    return s_json_str_isa(b, s, n, ssse3);
}

static int s_json_str(struct fanout_sbuf *b, const uint8_t *s, size_t n)
{
    return s_json_str_isa(b, s, n, 1);
}

static int s_str(struct fanout_sbuf *b, const char *s)
{
    return s_json_str(b, (const uint8_t *)s, strlen(s));
}

/* Bytes as "data" (text) or "dataBase64": `text_key` and `b64_key` are the
 * member names with their comma, quotes and colon. */
static int s_bytes(struct fanout_sbuf *b, const char *text_key, const char *b64_key,
                   const uint8_t *p, size_t n)
{
    int text = fanout_utf8_check(p, n);
    int rc = fanout_sbuf_puts(b, text ? text_key : b64_key);
    if (text)
        return rc | s_json_str(b, p, n);
    rc |= fanout_sbuf_put(b, "\"", 1);
    rc |= fanout_sbuf_base64(b, p, n);
    return rc | fanout_sbuf_put(b, "\"", 1);
}

/* A count in decimal, without printf. */
static int s_uint(struct fanout_sbuf *b, unsigned long long v)
{
    char digits[24];
    size_t i = sizeof digits;
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return fanout_sbuf_put(b, digits + i, sizeof digits - i);
}

/* fanout_sbuf_puts of a string literal, its length counted at compile time */
#define S_PUTS(b, lit) fanout_sbuf_put((b), (lit), sizeof(lit) - 1)

static int s_line(struct fanout_sbuf *b, const struct fanout_message *m, int collapsed)
{
    const struct fanout_record *r = m->records[0];
    int rc = S_PUTS(b, "{\"source\":");
    rc |= s_str(b, r->source_arn);
    rc |= s_bytes(b, ",\"key\":", ",\"keyBase64\":", m->key, m->key_len);
    rc |= S_PUTS(b, ",\"sequenceNumber\":");
    rc |= s_str(b, r->sequence_number);
    rc |= S_PUTS(b, ",\"subSequenceNumber\":");
    rc |= s_uint(b, (unsigned long long)r->sub_sequence_number);
    if (r->explicit_hash_key) {
        rc |= S_PUTS(b, ",\"explicitHashKey\":");
        /* from the KPL protobuf, never checked as UTF-8: the SDK's
         * escaper keeps the line valid JSON whatever the bytes */
        rc |= fanout_sbuf_json_str(b, r->explicit_hash_key, strlen(r->explicit_hash_key));
    }
    if (collapsed) {
        rc |= S_PUTS(b, ",\"records\":");
        rc |= s_uint(b, (unsigned long long)m->record_count);
    } else {
        rc |= S_PUTS(b, ",\"action\":");
        rc |= s_str(b, r->action);
    }
    rc |= s_bytes(b, ",\"data\":", ",\"dataBase64\":", m->body, m->body_len);
    return rc | S_PUTS(b, "}\n");
}

/* ---- the plugin ---- */

/* Host and state (plugin.h): init keeps the host in a fanout_plugin_state;
 * open copies it into the instance. */
static int s_init(const struct fanout_host *host, void **state, struct fanout_error *err)
{
    return fanout_plugin_state_new(host, state, err);
}

static int s_validate(const struct fanout_target *t, char *err, size_t err_len)
{
    if (!t->destination || !*t->destination) {
        snprintf(err, err_len, "expected a file path or \"-\" for standard output");
        return -1;
    }
    if (t->role || t->region) {
        snprintf(err, err_len, "a file target has no AWS role or region; remove \"%s\"",
                 t->role ? "role" : "region");
        return -1;
    }
    return 0;
}

static int s_open(void *state, const struct fanout_target *t, void **out,
                  struct fanout_error *err)
{
    const struct fanout_plugin_state *s = state;
    const struct file_options *o = t->options;
    struct file_instance *in = calloc(1, sizeof *in);
    if (!in) {
        snprintf(err->message, sizeof err->message, "out of memory");
        return -1;
    }
    in->host = s->host;
    in->fsync = o && o->fsync;
    if (strcmp(t->destination, "-") == 0) {
        in->fd = STDOUT_FILENO;
    } else {
        in->fd = open(t->destination, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (in->fd < 0) {
            snprintf(err->code, sizeof err->code, "%s", "OpenFailed");
            snprintf(err->message, sizeof err->message, "cannot open %s for appending: %s",
                     t->destination, strerror(errno));
            free(in);
            return -1;
        }
        in->owned = 1;
    }
    in->path = strdup(t->destination);
    pthread_mutex_init(&in->lock, NULL);
    *out = in;
    return 0;
}

/* Writes p[0..n) whole: 0, or the errno of the write that failed. */
static int s_write_all(int fd, const char *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        done += (size_t)w;
    }
    return 0;
}

static int s_send(void *instance, const struct fanout_batch *batch,
                  struct fanout_outcome *outcomes)
{
    struct file_instance *in = instance;
    struct fanout_sbuf *b = &in->buf;
    int collapsed = batch->collapse != FANOUT_COLLAPSE_NONE;
    size_t written = 0; /* messages whose lines are in the file */
    int e = 0, oom = 0;
    pthread_mutex_lock(&in->lock);
    fanout_sbuf_reset(b);
    for (size_t i = 0; i < batch->count && !e; i++) {
        if (s_line(b, batch->messages[i], collapsed) != 0) {
            oom = 1;
            break;
        }
        if (b->len >= S_FLUSH_BYTES || i + 1 == batch->count) {
            e = s_write_all(in->fd, b->p, b->len);
            fanout_sbuf_reset(b);
            if (!e)
                written = i + 1;
        }
    }
    if (written && in->fsync && in->owned && fsync(in->fd) != 0) {
        e = errno;
        written = 0;
    }
    if (b->cap > S_KEEP_BYTES)
        fanout_sbuf_free(b);
    pthread_mutex_unlock(&in->lock);
    if (e) {
        /* A full or failing disk may recover; anything else will not. */
        int st = (e == ENOSPC || e == EIO || e == EAGAIN) ? FANOUT_RETRY : FANOUT_FATAL;
        for (size_t j = written; j < batch->count; j++)
            fanout_outcome_set(&outcomes[j], st, "WriteFailed", "writing %s: %s", in->path,
                               strerror(e));
        if (in->host)
            in->host->log(FANOUT_LOG_WARN, "file", "writing %s: %s", in->path, strerror(e));
        return -1;
    }
    if (oom) {
        for (size_t j = written; j < batch->count; j++)
            fanout_outcome_set(&outcomes[j], FANOUT_RETRY, "OutOfMemory",
                               "out of memory formatting the lines");
        return -1;
    }
    return 0;
}

static void s_close(void *instance)
{
    struct file_instance *in = instance;
    if (in->owned)
        close(in->fd);
    pthread_mutex_destroy(&in->lock);
    fanout_sbuf_free(&in->buf);
    free(in->path);
    free(in);
}

static const struct fanout_option s_options[] = {
    {.name = "fsync",
     .type = FANOUT_OPT_BOOL,
     .offset = offsetof(struct file_options, fsync),
     .default_int = 0,
     .description = "fsync the file after each batch"},
    {.name = NULL},
};

FANOUT_PLUGIN_DEFINE(.name = "file", .version = "1.0.0",
                     .description = "JSON Lines to a local file or stdout (-)",
                     .destination_example = "/tmp/out.jsonl (or - for stdout)",
                     .limits = {.max_messages_per_call = 1000,
                                .max_call_bytes = 16u << 20,
                                .per_message_overhead = 256},
                     .collapse_modes = FANOUT_COLLAPSE_ALL,
                     .default_collapse = FANOUT_COLLAPSE_NONE, .options = s_options,
                     .options_size = sizeof(struct file_options), .init = s_init,
                     .fini = fanout_plugin_state_free, .validate = s_validate,
                     .open = s_open, .send = s_send, .close = s_close);
