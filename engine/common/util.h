/* Small engine utilities: growable buffers, a per-invocation arena, base64,
 * UTF-8 and JSON string helpers. */
#ifndef FANOUT_UTIL_H
#define FANOUT_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <fanout/helpers.h>

#if defined(__GNUC__)
#define FANOUT_FMT(a, b) __attribute__((format(printf, a, b)))
#else
#define FANOUT_FMT(a, b)
#endif

/* Buffers (struct fanout_sbuf), UTF-8 checks, JSON string escaping and the
 * base64 encoder are the SDK's: <fanout/helpers.h>, sdk/lib/buffer.c. */

/* A bump allocator for per-invocation data: records, keys, message bodies.
 * Everything it gave out is released at once by reset or free. */
struct fanout_arena_chunk;
struct fanout_arena {
    struct fanout_arena_chunk *head;
    size_t total;                     /* bytes handed out since the last reset */
    struct fanout_arena_chunk *spare; /* chunks kept by reset, used again first */
};

void *fanout_arena_alloc(struct fanout_arena *a, size_t n); /* 16-aligned */
void *fanout_arena_calloc(struct fanout_arena *a, size_t n);
/* `n` bytes with no alignment (strings, byte strings): no rounding up */
void *fanout_arena_bytes(struct fanout_arena *a, size_t n);
char *fanout_arena_strdup(struct fanout_arena *a, const char *s);
void *fanout_arena_memdup(struct fanout_arena *a, const void *p, size_t n);
char *fanout_arena_sprintf(struct fanout_arena *a, const char *fmt, ...) FANOUT_FMT(2, 3);
/* Keeps the chunks (a warm invocation reuses them: no malloc, no page
 * faults); blocks made for one large allocation are released. */
void fanout_arena_reset(struct fanout_arena *a);
void fanout_arena_free(struct fanout_arena *a);
/* Gives back the pages of the chunks' unused tails (64 KiB or more), once
 * a chunk: one in a huge page is resident whole, 2 MiB, however little of
 * it the arena used (the last of a 10,000-record event's: 0.9 MB). For when
 * the arena stops growing for a while (the engine's sends); what is
 * allocated there later arrives in 4 KiB pages, zeroed, and stays (a warm
 * invocation that fills the tail again keeps it). The tail is kept out of
 * huge pages, or khugepaged would fill it back in whole. */
void fanout_arena_trim(struct fanout_arena *a);

/* Transparent huge pages asked for on the whole 4 KiB pages of [p, p + n),
 * where the kernel has them for madvise: a large buffer then arrives in a
 * few page faults instead of hundreds, each dear in a VM. A hint only:
 * refused or unsupported, the pages stay 4 KiB. */
void fanout_advise_huge(void *p, size_t n);

/* base64 (RFC 4648, standard alphabet). Decoding is strict: padding must be
 * correct, no characters outside the alphabet (whitespace is refused).
 * Returns the decoded length, or -1 with `*bad_at` set to the offset of the
 * first offending character (or `n` for a bad length). `out` must hold
 * fanout_base64_decoded_max(n) bytes. */
size_t fanout_base64_encoded_len(size_t n);
size_t fanout_base64_decoded_max(size_t n);
long fanout_base64_decode(const char *in, size_t n, uint8_t *out, size_t *bad_at);
/* fanout_base64_decode with `out` == `text` (the decoded bytes are fewer:
 * each quad's are written after it is read, SIMD stores included). On
 * failure the text is as it was (the quads decoded before the bad one are
 * encoded back). */
long fanout_base64_decode_in_place(char *text, size_t n, size_t *bad_at);
/* The base64 of text[0..m) (bytes) written over it, in place, from its end:
 * fanout_base64_encoded_len(m) characters from `text`, padded, with no NUL.
 * `text` must hold as many. */
void fanout_base64_encode_back(char *text, size_t m);

/* Non-zero when s[0..n) is exactly one JSON value (RFC 8259), optionally
 * surrounded by whitespace. Does not allocate. */
int fanout_json_valid(const uint8_t *s, size_t n);

/* The value of a hexadecimal digit of either case, or -1. */
static inline int fanout_hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Non-zero when the comma-separated list v[0..n) (an HTTP header value such
 * as Connection's) holds `token`, in any case, blanks around it ignored. */
int fanout_list_has_token(const char *v, size_t n, const char *token);

/* Copy at most dst_len-1 bytes and NUL-terminate; returns dst. */
char *fanout_strlcpy(char *dst, const char *src, size_t dst_len);

/* Quoting user-controlled strings (ids, destinations, keys, sequence
 * numbers) in log lines and messages: `s` itself when it has at most
 * FANOUT_QUOTE_MAX bytes, else its first bytes (cut on a UTF-8 character
 * boundary) written to `buf` followed by "…(N bytes)". NULL reads as "".
 * Control characters are left to the log's escaping. */
#define FANOUT_QUOTE_MAX  200
#define FANOUT_QUOTE_SIZE (FANOUT_QUOTE_MAX + 40)
const char *fanout_quote(char buf[FANOUT_QUOTE_SIZE], const char *s);

/* What a JSON value is, for messages: "an object", "a string", "null"... */
struct json_t;
const char *fanout_json_type_name(const struct json_t *v);

/* Type names are [a-z0-9_-]{1,64}: never a path. */
int fanout_valid_type_name(const char *s);

/* Sets name=value in this process's environment unless name is already
 * set, for fanout's own libraries only: the processes fanout starts get
 * fanout_child_env(), without it. Call before any thread starts (setenv
 * races with getenv). At most four names. */
void fanout_env_set_own(const char *name, const char *value);

/* The environment without the variables fanout_env_set_own added: a
 * NULL-terminated copy of `environ`'s pointers to free() (not the strings),
 * NULL when out of memory. */
char **fanout_child_env(void);

#endif
