/* AWS Signature Version 4, header signing.
 *
 * The stages follow the SigV4 specification and are checked byte for byte
 * against AWS's test suite (tests/data/aws-sigv4-test-suite) and against
 * botocore's signer (tests/sigv4_botocore.py). Where the specification leaves
 * a choice, we do what botocore and aws-c-auth do, and say so.
 *
 * Nothing here logs a credential, a token, a derived key or a canonical
 * request (which carries the session token). Buffers that held one are
 * cleansed before they are freed. */
#include "aws/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fanout/swar.h"

#define S_ALGORITHM  "AWS4-HMAC-SHA256"
#define S_TERMINATOR "aws4_request"
#define S_KEY_LEN    32
/* Limits on the scope fields: they go into fixed cache slots and the
 * Authorization header (1024 bytes in struct fanout_sigv4_result). */
#define S_MAX_KEY_ID  128
#define S_MAX_SCOPE   64
#define S_CACHE_SLOTS 8
#define S_MAX_HEADERS 4096
/* Path segments and headers up to this many are indexed on the stack, not
 * in two callocs each per request. */
#define S_STACK_ITEMS 16

static const char s_hex[] = "0123456789abcdef";
static const char s_hex_upper[] = "0123456789ABCDEF";

/* ---- small helpers ------------------------------------------------------ */

static void s_to_hex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = s_hex[in[i] >> 4];
        out[2 * i + 1] = s_hex[in[i] & 15];
    }
    out[2 * n] = 0;
}

/* SHA-256 fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm
 * up again at every digest, and HMAC() fetches a MAC and builds its
 * context at every call. */
static pthread_once_t s_md_once = PTHREAD_ONCE_INIT;
static EVP_MD *s_md_fetched;

static void s_md_fetch(void)
{
    s_md_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *s_md(void)
{
    pthread_once(&s_md_once, s_md_fetch);
    return s_md_fetched ? s_md_fetched : EVP_sha256();
}

/* The two SHA-256 contexts of one signing, kept for all its digests: a
 * context builds its provider state at its first init and only resets it
 * at the next, where a context per digest allocates and frees one each
 * (five per request). Two, because an HMAC runs an inner and an outer
 * digest. Freeing a context cleanses its state. */
struct s_sha {
    EVP_MD_CTX *in;
    EVP_MD_CTX *out;
};

static int s_sha_open(struct s_sha *s)
{
    s->in = EVP_MD_CTX_new();
    s->out = EVP_MD_CTX_new();
    return s->in && s->out ? 0 : -1;
}

static void s_sha_close(struct s_sha *s)
{
    EVP_MD_CTX_free(s->in);
    EVP_MD_CTX_free(s->out);
    s->in = s->out = NULL;
}

/* SHA-256 of the concatenation of two parts (the second may be empty), on
 * a kept context. */
static int s_sha256_on(EVP_MD_CTX *ctx, const void *a, size_t a_len, const void *b,
                       size_t b_len, uint8_t out[32])
{
    unsigned int n = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, s_md(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, a, a_len) == 1 &&
             (!b_len || EVP_DigestUpdate(ctx, b, b_len) == 1) &&
             EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == 32;
    return ok ? 0 : -1;
}

static int s_sha256_hex_on(EVP_MD_CTX *ctx, const void *data, size_t len, char out[65])
{
    uint8_t md[32];
    if (s_sha256_on(ctx, len ? data : "", len, NULL, 0, md) != 0) {
        out[0] = 0;
        return -1;
    }
    s_to_hex(md, sizeof md, out);
    return 0;
}

/* HMAC-SHA256 (RFC 2104) on the fetched digest, the same bytes as HMAC(),
 * in two halves. The pads leave `inner` having absorbed key ^ ipad and
 * `outer` key ^ opad: a cached signing key keeps these two states, so a
 * request's HMAC starts from copies of them instead of from the key. */
#define S_SHA256_BLOCK 64
static int s_hmac_pads(const void *key, size_t key_len, EVP_MD_CTX *inner,
                       EVP_MD_CTX *outer)
{
    uint8_t k[S_SHA256_BLOCK] = {0}, pad[S_SHA256_BLOCK];
    int rc = -1;
    if (key_len > S_SHA256_BLOCK) {
        if (s_sha256_on(inner, key, key_len, NULL, 0, k) != 0)
            goto done;
    } else if (key_len) {
        memcpy(k, key, key_len);
    }
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x36;
    if (EVP_DigestInit_ex(inner, s_md(), NULL) != 1 ||
        EVP_DigestUpdate(inner, pad, sizeof pad) != 1)
        goto done;
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x5c;
    if (EVP_DigestInit_ex(outer, s_md(), NULL) != 1 ||
        EVP_DigestUpdate(outer, pad, sizeof pad) != 1)
        goto done;
    rc = 0;
done:
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
    return rc;
}

/* The HMAC of msg from the states s_hmac_pads left (both are used up). */
static int s_hmac_finish(EVP_MD_CTX *inner, EVP_MD_CTX *outer, const void *msg,
                         size_t msg_len, uint8_t out[32])
{
    uint8_t mid[32];
    unsigned int n = 0, m = 0;
    int ok = (!msg_len || EVP_DigestUpdate(inner, msg, msg_len) == 1) &&
             EVP_DigestFinal_ex(inner, mid, &n) == 1 && n == 32 &&
             EVP_DigestUpdate(outer, mid, sizeof mid) == 1 &&
             EVP_DigestFinal_ex(outer, out, &m) == 1 && m == 32;
    OPENSSL_cleanse(mid, sizeof mid);
    return ok ? 0 : -1;
}

static int s_hmac(struct s_sha *s, const void *key, size_t key_len, const void *msg,
                  size_t msg_len, uint8_t out[32])
{
    if (s_hmac_pads(key, key_len, s->in, s->out) != 0)
        return -1;
    return s_hmac_finish(s->in, s->out, msg, msg_len, out);
}

void fanout_sha256_hex(const uint8_t *data, size_t len, char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    s_sha256_hex_on(ctx, data, len, out);
    EVP_MD_CTX_free(ctx);
}

static void s_buf_wipe(struct fanout_sbuf *b)
{
    if (b->bytes)
        OPENSSL_cleanse(b->bytes, b->cap);
    fanout_sbuf_free(b);
}

static int s_is_unreserved(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '~';
}

static int s_hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static uint8_t s_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* Whitespace as botocore's str.split() sees it in ASCII. */
static int s_is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Whether the 8 bytes at p are all "plain": none below 0x21 (no control
 * character, no whitespace) and none 0x7f. Such bytes are accepted and
 * copied as they are, 8 at a time: a session token (about 1 KB, in every
 * Lambda request) cost 16 instructions a byte one byte at a time. */
static int s_plain8(const char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return !(fanout_swar_below(w, 0x21) | fanout_swar_eq(w, 0x7f));
}

/* RFC 9110 token characters: header names and methods. */
static int s_is_tchar(uint8_t c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int s_valid_token(const char *s)
{
    if (!s || !*s)
        return 0;
    for (const uint8_t *p = (const uint8_t *)s; *p; p++)
        if (!s_is_tchar(*p))
            return 0;
    return 1;
}

/* Region and signing name: [A-Za-z0-9._-]{1,63}. They are part of the
 * credential scope and the Authorization header. */
static int s_valid_scope_field(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n == 0 || n >= S_MAX_SCOPE)
        return 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (!s_is_unreserved(c) || c == '~')
            return 0;
    }
    return 1;
}

/* An access key id is printable ASCII without the separators of the
 * Authorization header. */
static int s_valid_key_id(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n == 0 || n >= S_MAX_KEY_ID)
        return 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == ',' || c == ';' || c == '=')
            return 0;
    }
    return 1;
}

/* Header values (and the session token) may hold whitespace, folded lines
 * included, but no other control character. */
static int s_valid_header_value(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s), i = 0;
    while (i + 8 <= n && s_plain8(s + i))
        i += 8;
    for (const uint8_t *p = (const uint8_t *)s + i; *p; p++)
        if ((*p < 0x20 && !s_is_space(*p)) || *p == 0x7f)
            return 0;
    return 1;
}

/* YYYYMMDDTHHMMSSZ */
static int s_valid_amz_date(const char *d)
{
    if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
        return 0;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9'))
            return 0;
    return 1;
}

static int s_valid_params(const struct fanout_sigv4_params *p, const char *amz_date)
{
    return p && s_valid_scope_field(p->region) && s_valid_scope_field(p->service) &&
           s_valid_amz_date(amz_date);
}

static int s_format_amz_date(time_t now, char out[17])
{
    struct tm tm;
    if (!gmtime_r(&now, &tm))
        return -1;
    if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        return -1;
    /* YYYYMMDDTHHMMSSZ by hand: strftime goes through the locale machinery
     * at every request */
    const int fields[] = {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                          tm.tm_hour,        tm.tm_min,     tm.tm_sec};
    char *o = out;
    for (int f = 0; f < 6; f++) {
        if (f == 3)
            *o++ = 'T';
        for (int d = f ? 1 : 3, v = fields[f]; d >= 0; d--, v /= 10)
            o[d] = (char)('0' + v % 10);
        o += f ? 2 : 4;
    }
    *o++ = 'Z';
    *o = 0;
    return 0;
}

/* ---- canonical URI ------------------------------------------------------ */

/* Remove dot segments and empty segments, as botocore's remove_dot_segments
 * does: "//a/./b/../c/" -> "/a/c/". A trailing slash is kept when something
 * is left; nothing left gives "/". Appends the result to `out`. */
static int s_normalize_path(const char *path, size_t len, struct fanout_sbuf *out)
{
    size_t max_segs = 1;
    for (size_t i = 0; i < len; i++)
        max_segs += path[i] == '/';
    size_t stack[2 * S_STACK_ITEMS];
    size_t *start = max_segs <= S_STACK_ITEMS ? stack : calloc(max_segs, 2 * sizeof *start);
    size_t *slen = start ? start + max_segs : NULL;
    int rc = -1;
    if (!start)
        goto done;

    size_t n = 0;
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        size_t l = j - i;
        if (l == 0 || (l == 1 && path[i] == '.')) {
            /* empty or "." */
        } else if (l == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (n)
                n--;
        } else {
            start[n] = i;
            slen[n] = l;
            n++;
        }
        i = j + 1;
    }

    if (fanout_sbuf_putc(out, '/') != 0)
        goto done;
    for (size_t k = 0; k < n; k++) {
        if (k && fanout_sbuf_putc(out, '/') != 0)
            goto done;
        if (fanout_sbuf_put(out, path + start[k], slen[k]) != 0)
            goto done;
    }
    if (n && len && path[len - 1] == '/' && fanout_sbuf_putc(out, '/') != 0)
        goto done;
    rc = 0;
done:
    if (start != stack)
        free(start);
    return rc;
}

/* URI-encode s[0..n), keeping unreserved characters and '/'. With
 * `keep_escapes`, a valid %XX escape is kept (hex upper-cased) instead of
 * its '%' being encoded again. */
static int s_encode_path(const uint8_t *s, size_t n, int keep_escapes,
                         struct fanout_sbuf *out)
{
    if (n > (SIZE_MAX - 1) / 3 || fanout_sbuf_reserve(out, 3 * n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (s_is_unreserved(c) || c == '/') {
            out->bytes[out->len++] = c;
        } else if (keep_escapes && c == '%' && i + 2 < n && s_hexval(s[i + 1]) >= 0 &&
                   s_hexval(s[i + 2]) >= 0) {
            out->bytes[out->len++] = '%';
            out->bytes[out->len++] = (uint8_t)s_hex_upper[s_hexval(s[i + 1])];
            out->bytes[out->len++] = (uint8_t)s_hex_upper[s_hexval(s[i + 2])];
            i += 2;
        } else {
            out->bytes[out->len++] = '%';
            out->bytes[out->len++] = (uint8_t)s_hex_upper[c >> 4];
            out->bytes[out->len++] = (uint8_t)s_hex_upper[c & 15];
        }
    }
    out->bytes[out->len] = 0;
    return 0;
}

/* The request path is what goes on the request line, so already encoded.
 * Every service but S3 wants the normalised path encoded once more (a '%'
 * becomes "%25"); S3 (normalize_path = 0) wants it as sent, so there we only
 * encode what is not valid in an encoded path and keep the escapes. */
static int s_canonical_uri(const char *path, int normalize, struct fanout_sbuf *out)
{
    if (!path || !*path)
        path = "/";
    size_t len = strlen(path);
    if (path[0] != '/' || strpbrk(path, "?#"))
        return -1;
    if (!normalize)
        return s_encode_path((const uint8_t *)path, len, 1, out);

    struct fanout_sbuf norm = {0};
    int rc = s_normalize_path(path, len, &norm);
    if (rc == 0)
        rc = s_encode_path(norm.bytes, norm.len, 0, out);
    fanout_sbuf_free(&norm);
    return rc;
}

/* ---- canonical query string --------------------------------------------- */

/* Percent-decode s[0..n) (only valid %XX escapes; '+' stays '+'), then
 * encode with the unreserved set. */
static int s_reencode_query_part(const char *s, size_t n, struct fanout_sbuf *out)
{
    if (n > (SIZE_MAX - 1) / 3 || fanout_sbuf_reserve(out, 3 * n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c == '%' && i + 2 < n && s_hexval((uint8_t)s[i + 1]) >= 0 &&
            s_hexval((uint8_t)s[i + 2]) >= 0) {
            c = (uint8_t)(s_hexval((uint8_t)s[i + 1]) << 4 | s_hexval((uint8_t)s[i + 2]));
            i += 2;
        }
        if (s_is_unreserved(c)) {
            out->bytes[out->len++] = c;
        } else {
            out->bytes[out->len++] = '%';
            out->bytes[out->len++] = (uint8_t)s_hex_upper[c >> 4];
            out->bytes[out->len++] = (uint8_t)s_hex_upper[c & 15];
        }
    }
    out->bytes[out->len] = 0;
    return 0;
}

struct s_param {
    const uint8_t *name;
    size_t name_len;
    const uint8_t *value;
    size_t value_len;
};

static int s_cmp_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

static int s_cmp_param(const void *a, const void *b)
{
    const struct s_param *x = a, *y = b;
    int c = s_cmp_bytes(x->name, x->name_len, y->name, y->name_len);
    return c ? c : s_cmp_bytes(x->value, x->value_len, y->value, y->value_len);
}

/* Parameters sorted by encoded name, then encoded value; "name=" for a
 * parameter without a value. */
static int s_canonical_query(const char *query, struct fanout_sbuf *out)
{
    if (!query || !*query)
        return 0;
    size_t qlen = strlen(query);
    size_t max_params = 1;
    for (size_t i = 0; i < qlen; i++)
        max_params += query[i] == '&';

    struct fanout_sbuf scratch = {0};
    size_t *offs = calloc(max_params, 4 * sizeof *offs);
    struct s_param *params = calloc(max_params, sizeof *params);
    int rc = -1;
    if (!offs || !params)
        goto done;

    size_t n = 0;
    for (size_t i = 0; i <= qlen;) {
        size_t j = i;
        while (j < qlen && query[j] != '&')
            j++;
        if (j > i) {
            const char *eq = memchr(query + i, '=', j - i);
            size_t name_end = eq ? (size_t)(eq - query) : j;
            size_t value_start = eq ? name_end + 1 : j;
            offs[4 * n] = scratch.len;
            if (s_reencode_query_part(query + i, name_end - i, &scratch) != 0)
                goto done;
            offs[4 * n + 1] = scratch.len - offs[4 * n];
            offs[4 * n + 2] = scratch.len;
            if (s_reencode_query_part(query + value_start, j - value_start, &scratch) != 0)
                goto done;
            offs[4 * n + 3] = scratch.len - offs[4 * n + 2];
            n++;
        }
        i = j + 1;
    }
    for (size_t k = 0; k < n; k++) {
        params[k].name = scratch.bytes + offs[4 * k];
        params[k].name_len = offs[4 * k + 1];
        params[k].value = scratch.bytes + offs[4 * k + 2];
        params[k].value_len = offs[4 * k + 3];
    }
    qsort(params, n, sizeof *params, s_cmp_param);
    for (size_t k = 0; k < n; k++) {
        if ((k && fanout_sbuf_putc(out, '&') != 0) ||
            fanout_sbuf_put(out, params[k].name, params[k].name_len) != 0 ||
            fanout_sbuf_putc(out, '=') != 0 ||
            fanout_sbuf_put(out, params[k].value, params[k].value_len) != 0)
            goto done;
    }
    rc = 0;
done:
    free(offs);
    free(params);
    fanout_sbuf_free(&scratch);
    return rc;
}

/* ---- canonical headers -------------------------------------------------- */

struct s_header {
    const char *name;  /* lower case, in the scratch buffer */
    const char *value; /* trimmed, runs of whitespace made one space */
    size_t order;      /* position in the request, for duplicates */
};

static int s_cmp_header(const void *a, const void *b)
{
    const struct s_header *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Headers we never sign, as botocore and aws-c-auth: proxies may change or
 * add them. Authorization and the headers the signer adds itself are left
 * out of the caller's list: ours replace them. */
static int s_skip_header(const char *lname, int content_sha256_header)
{
    static const char *const skip[] = {"authorization", "user-agent",
                                       "expect",        "x-amzn-trace-id",
                                       "x-amz-date",    "x-amz-security-token"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (strcmp(lname, skip[i]) == 0)
            return 1;
    return content_sha256_header && strcmp(lname, "x-amz-content-sha256") == 0;
}

/* Append NUL-terminated `name` lower-cased, then `value` trimmed with inner
 * whitespace (folded lines included) collapsed to one space. Records the
 * offsets of both. */
static int s_add_header(struct fanout_sbuf *scratch, const char *name, const char *value,
                        size_t *name_off, size_t *value_off)
{
    size_t nlen = strlen(name);
    size_t vlen = strlen(value);
    if (fanout_sbuf_reserve(scratch, nlen + vlen + 2) != 0)
        return -1;
    *name_off = scratch->len;
    for (size_t i = 0; i < nlen; i++)
        scratch->bytes[scratch->len++] = s_lower((uint8_t)name[i]);
    scratch->bytes[scratch->len++] = 0;
    *value_off = scratch->len;
    int pending_space = 0;
    for (size_t i = 0; i < vlen; i++) {
        if (i + 8 <= vlen && s_plain8(value + i)) {
            if (pending_space)
                scratch->bytes[scratch->len++] = ' ';
            pending_space = 0;
            memcpy(scratch->bytes + scratch->len, value + i, 8);
            scratch->len += 8;
            i += 7;
            continue;
        }
        uint8_t c = (uint8_t)value[i];
        if (s_is_space(c)) {
            pending_space = scratch->len > *value_off;
            continue;
        }
        if (pending_space)
            scratch->bytes[scratch->len++] = ' ';
        pending_space = 0;
        scratch->bytes[scratch->len++] = c;
    }
    scratch->bytes[scratch->len++] = 0;
    scratch->bytes[scratch->len] = 0;
    return 0;
}

static int s_canonical_headers(const struct fanout_sigv4_request *req,
                               const struct fanout_sigv4_params *p, const char *amz_date,
                               const char *session_token, const char *payload_hash,
                               struct fanout_sbuf *out, struct fanout_sbuf *signed_headers)
{
    if (req->header_count > S_MAX_HEADERS || (req->header_count && !req->headers))
        return -1;
    size_t max = req->header_count + 3;
    struct s_header h_stack[S_STACK_ITEMS];
    size_t offs_stack[2 * S_STACK_ITEMS];
    int on_stack = max <= S_STACK_ITEMS;
    struct s_header *h = on_stack ? h_stack : calloc(max, sizeof *h);
    size_t *offs = on_stack ? offs_stack : calloc(max, 2 * sizeof *offs);
    struct fanout_sbuf scratch = {0};
    int rc = -1;
    int have_host = 0;
    size_t n = 0;
    if (!h || !offs)
        goto done;

    for (size_t i = 0; i < req->header_count; i++) {
        const struct fanout_sigv4_header *src = &req->headers[i];
        if (!s_valid_token(src->name) || !s_valid_header_value(src->value)) {
            LOG_DEBUG("sigv4", "header %zu: invalid name or value", i);
            goto done;
        }
        if (s_add_header(&scratch, src->name, src->value, &offs[2 * n], &offs[2 * n + 1]))
            goto done;
        const char *lname = (const char *)scratch.bytes + offs[2 * n];
        if (s_skip_header(lname, p->content_sha256_header)) {
            scratch.len = offs[2 * n]; /* drop it */
            continue;
        }
        have_host |= strcmp(lname, "host") == 0;
        n++;
    }
    if (!have_host) {
        LOG_DEBUG("sigv4", "the request has no Host header");
        goto done;
    }
    if (s_add_header(&scratch, "x-amz-date", amz_date, &offs[2 * n], &offs[2 * n + 1]))
        goto done;
    n++;
    if (session_token && *session_token) {
        if (!s_valid_header_value(session_token))
            goto done;
        if (s_add_header(&scratch, "x-amz-security-token", session_token, &offs[2 * n],
                         &offs[2 * n + 1]))
            goto done;
        n++;
    }
    if (p->content_sha256_header) {
        if (s_add_header(&scratch, "x-amz-content-sha256", payload_hash, &offs[2 * n],
                         &offs[2 * n + 1]))
            goto done;
        n++;
    }

    /* The scratch buffer no longer moves: take pointers, sort, emit. */
    for (size_t k = 0; k < n; k++) {
        h[k].name = (const char *)scratch.bytes + offs[2 * k];
        h[k].value = (const char *)scratch.bytes + offs[2 * k + 1];
        h[k].order = k;
    }
    qsort(h, n, sizeof *h, s_cmp_header);
    for (size_t k = 0; k < n; k++) {
        int first = k == 0 || strcmp(h[k].name, h[k - 1].name) != 0;
        int last = k + 1 == n || strcmp(h[k].name, h[k + 1].name) != 0;
        if (first) {
            if (fanout_sbuf_puts(out, h[k].name) != 0 || fanout_sbuf_putc(out, ':') != 0)
                goto done;
            if ((k && fanout_sbuf_putc(signed_headers, ';') != 0) ||
                fanout_sbuf_puts(signed_headers, h[k].name) != 0)
                goto done;
        } else if (fanout_sbuf_putc(out, ',') != 0) {
            goto done;
        }
        if (fanout_sbuf_puts(out, h[k].value) != 0)
            goto done;
        if (last && fanout_sbuf_putc(out, '\n') != 0)
            goto done;
    }
    rc = 0;
done:
    if (!on_stack) {
        free(h);
        free(offs);
    }
    s_buf_wipe(&scratch); /* may hold the session token */
    return rc;
}

/* ---- stages ------------------------------------------------------------- */

static int s_canonical_request(const struct fanout_sigv4_request *req,
                               const struct fanout_sigv4_params *p, const char *amz_date,
                               const char *session_token, const char *payload_hash,
                               struct fanout_sbuf *out, struct fanout_sbuf *signed_headers)
{
    if (!req || !out || !signed_headers || !s_valid_params(p, amz_date) ||
        !s_valid_token(req->method) || (req->body_len && !req->body))
        return -1;
    size_t out_len = out->len, sh_len = signed_headers->len;
    struct fanout_sbuf sh = {0};
    int rc = -1;
    if (fanout_sbuf_puts(out, req->method) != 0 || fanout_sbuf_putc(out, '\n'))
        goto done;
    if (s_canonical_uri(req->path, p->normalize_path, out) != 0) {
        LOG_DEBUG("sigv4", "invalid request path");
        goto done;
    }
    if (fanout_sbuf_putc(out, '\n') != 0 || s_canonical_query(req->query, out) != 0 ||
        fanout_sbuf_putc(out, '\n') != 0)
        goto done;
    if (s_canonical_headers(req, p, amz_date, session_token, payload_hash, out, &sh) != 0)
        goto done;
    if (fanout_sbuf_putc(out, '\n') != 0 || fanout_sbuf_put(out, sh.bytes, sh.len) ||
        fanout_sbuf_putc(out, '\n') != 0 || fanout_sbuf_puts(out, payload_hash))
        goto done;
    if (fanout_sbuf_put(signed_headers, sh.bytes, sh.len) != 0)
        goto done;
    rc = 0;
done:
    fanout_sbuf_free(&sh);
    if (rc != 0) {
        /* leave both as they were (but never a partial token behind) */
        if (out->bytes) {
            OPENSSL_cleanse(out->bytes + out_len, out->cap - out_len);
            out->len = out_len;
        }
        if (signed_headers->bytes) {
            signed_headers->len = sh_len;
            signed_headers->bytes[sh_len] = 0;
        }
    }
    return rc;
}

int fanout_sigv4_canonical_request(const struct fanout_sigv4_request *req,
                                   const struct fanout_sigv4_params *p,
                                   const char *amz_date, const char *session_token,
                                   struct fanout_sbuf *out,
                                   struct fanout_sbuf *signed_headers)
{
    if (!req || (req->body_len && !req->body))
        return -1;
    char payload_hash[65];
    fanout_sha256_hex(req->body, req->body_len, payload_hash);
    if (!payload_hash[0])
        return -1;
    return s_canonical_request(req, p, amz_date, session_token, payload_hash, out,
                               signed_headers);
}

static int s_string_to_sign(EVP_MD_CTX *ctx, const char *canonical_request, size_t len,
                            const struct fanout_sigv4_params *p, const char *amz_date,
                            struct fanout_sbuf *out)
{
    if (!canonical_request || !out || !s_valid_params(p, amz_date))
        return -1;
    char hex[65];
    if (s_sha256_hex_on(ctx, canonical_request, len, hex) != 0)
        return -1;
    /* "AWS4-HMAC-SHA256\n<amz date>\n<date>/<region>/<service>/aws4_request\n<hex>",
     * put piece by piece: a printf costs as much as the HMAC after it */
    int rc = fanout_sbuf_puts(out, S_ALGORITHM "\n");
    rc |= fanout_sbuf_put(out, amz_date, 16);
    rc |= fanout_sbuf_putc(out, '\n');
    rc |= fanout_sbuf_put(out, amz_date, 8);
    rc |= fanout_sbuf_putc(out, '/');
    rc |= fanout_sbuf_puts(out, p->region);
    rc |= fanout_sbuf_putc(out, '/');
    rc |= fanout_sbuf_puts(out, p->service);
    rc |= fanout_sbuf_puts(out, "/" S_TERMINATOR "\n");
    rc |= fanout_sbuf_put(out, hex, 64);
    return rc ? -1 : 0;
}

int fanout_sigv4_string_to_sign(const char *canonical_request, size_t len,
                                const struct fanout_sigv4_params *p, const char *amz_date,
                                struct fanout_sbuf *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = s_string_to_sign(ctx, canonical_request, len, p, amz_date, out);
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* ---- signing key and its cache ------------------------------------------ */

static int s_derive_key(struct s_sha *s, const char *secret, const char *date8,
                        const char *region, const char *service, uint8_t key[S_KEY_LEN])
{
    struct fanout_sbuf k0 = {0};
    uint8_t a[S_KEY_LEN], b[S_KEY_LEN];
    int rc = -1;
    if (fanout_sbuf_puts(&k0, "AWS4") != 0 || fanout_sbuf_puts(&k0, secret) != 0)
        goto done;
    if (s_hmac(s, k0.bytes, k0.len, date8, 8, a) != 0 ||
        s_hmac(s, a, sizeof a, region, strlen(region), b) != 0 ||
        s_hmac(s, b, sizeof b, service, strlen(service), a) != 0 ||
        s_hmac(s, a, sizeof a, S_TERMINATOR, strlen(S_TERMINATOR), key) != 0)
        goto done;
    rc = 0;
done:
    OPENSSL_cleanse(a, sizeof a);
    OPENSSL_cleanse(b, sizeof b);
    s_buf_wipe(&k0);
    return rc;
}

/* Derived keys live for a day per (key id, secret, region, service). A slot
 * holds the secret it was derived from, compared in constant time, so a
 * rotated secret under the same key id misses instead of signing with a
 * stale key (hashing the secret instead cost a digest per request); and
 * the key's HMAC states, from which every request's signature starts. A
 * slot is cleansed, its states freed (which cleanses them), when it is
 * replaced or the cache emptied. Secrets of S_MAX_SECRET bytes or more
 * (AWS's have 40) are not cached. */
#define S_MAX_SECRET 256
struct s_cache_slot {
    int used;
    uint64_t last_use;
    char key_id[S_MAX_KEY_ID];
    char secret[S_MAX_SECRET];
    size_t secret_len;
    char date[9];
    char region[S_MAX_SCOPE];
    char service[S_MAX_SCOPE];
    uint8_t key[S_KEY_LEN];
    EVP_MD_CTX *inner; /* s_hmac_pads of key */
    EVP_MD_CTX *outer;
};

static pthread_mutex_t s_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct s_cache_slot s_cache[S_CACHE_SLOTS];
static uint64_t s_cache_clock;

static void s_slot_clear(struct s_cache_slot *s)
{
    EVP_MD_CTX_free(s->inner);
    EVP_MD_CTX_free(s->outer);
    OPENSSL_cleanse(s, sizeof *s);
}

static int s_same_scope(const struct s_cache_slot *s, const char *key_id, const char *date8,
                        const char *region, const char *service)
{
    return s->used && strcmp(s->key_id, key_id) == 0 && memcmp(s->date, date8, 8) == 0 &&
           strcmp(s->region, region) == 0 && strcmp(s->service, service) == 0;
}

static int s_same_secret(const struct s_cache_slot *s, const char *secret, size_t len)
{
    return s->secret_len == len && CRYPTO_memcmp(s->secret, secret, len) == 0;
}

/* Called with s_cache_lock held: the slot of the scope, derived into the
 * least recently used slot on a miss (or into the slot of the same scope
 * whose secret was rotated, so the old secret goes at once). NULL when the
 * derivation failed. `s` is the caller's scratch. */
static struct s_cache_slot *s_slot_locked(struct s_sha *s, const char *key_id,
                                          const char *secret, size_t secret_len,
                                          const char *date8, const char *region,
                                          const char *service, int *from_cache)
{
    struct s_cache_slot *victim = &s_cache[0];
    for (size_t i = 0; i < S_CACHE_SLOTS; i++) {
        struct s_cache_slot *c = &s_cache[i];
        if (s_same_scope(c, key_id, date8, region, service)) {
            if (s_same_secret(c, secret, secret_len)) {
                c->last_use = ++s_cache_clock;
                *from_cache = 1;
                return c;
            }
            victim = c;
            break;
        }
        if (!c->used || (victim->used && c->last_use < victim->last_use))
            victim = c;
    }
    /* Derive under the lock: five HMACs, once a day per scope. */
    uint8_t key[S_KEY_LEN];
    EVP_MD_CTX *inner = EVP_MD_CTX_new(), *outer = EVP_MD_CTX_new();
    int rc = inner && outer ? s_derive_key(s, secret, date8, region, service, key) : -1;
    if (rc == 0)
        rc = s_hmac_pads(key, sizeof key, inner, outer);
    if (rc != 0) {
        EVP_MD_CTX_free(inner);
        EVP_MD_CTX_free(outer);
        OPENSSL_cleanse(key, sizeof key);
        return NULL;
    }
    s_slot_clear(victim);
    fanout_strlcpy(victim->key_id, key_id, sizeof victim->key_id);
    memcpy(victim->secret, secret, secret_len);
    victim->secret_len = secret_len;
    memcpy(victim->date, date8, 8);
    victim->date[8] = 0;
    fanout_strlcpy(victim->region, region, sizeof victim->region);
    fanout_strlcpy(victim->service, service, sizeof victim->service);
    memcpy(victim->key, key, S_KEY_LEN);
    victim->inner = inner;
    victim->outer = outer;
    victim->last_use = ++s_cache_clock;
    victim->used = 1;
    OPENSSL_cleanse(key, sizeof key);
    return victim;
}

static int s_cacheable(const char *key_id, size_t secret_len)
{
    return key_id && secret_len < S_MAX_SECRET;
}

/* Leave s->in and s->out as s_hmac_pads leaves them for the scope's signing
 * key: copies of the cached states, or derived now. */
static int s_sign_pads(struct s_sha *s, const char *key_id, const char *secret,
                       const char *date8, const char *region, const char *service)
{
    size_t secret_len = strlen(secret);
    if (s_cacheable(key_id, secret_len)) {
        int hit = 0;
        pthread_mutex_lock(&s_cache_lock);
        struct s_cache_slot *slot =
            s_slot_locked(s, key_id, secret, secret_len, date8, region, service, &hit);
        int ok = slot && EVP_MD_CTX_copy_ex(s->in, slot->inner) == 1 &&
                 EVP_MD_CTX_copy_ex(s->out, slot->outer) == 1;
        pthread_mutex_unlock(&s_cache_lock);
        return ok ? 0 : -1;
    }
    uint8_t key[S_KEY_LEN];
    int rc = s_derive_key(s, secret, date8, region, service, key);
    if (rc == 0)
        rc = s_hmac_pads(key, sizeof key, s->in, s->out);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

static int s_signature(struct s_sha *s, const char *string_to_sign, size_t len,
                       const struct fanout_sigv4_params *p, const char *amz_date,
                       const char *key_id, const char *secret, char hex_out[65])
{
    hex_out[0] = 0;
    if (!string_to_sign || !secret || !s_valid_params(p, amz_date))
        return -1;
    uint8_t sig[32];
    if (s_sign_pads(s, key_id, secret, amz_date, p->region, p->service) != 0 ||
        s_hmac_finish(s->in, s->out, string_to_sign, len, sig) != 0)
        return -1;
    s_to_hex(sig, sizeof sig, hex_out);
    return 0;
}

int fanout_sigv4_signature(const char *string_to_sign, size_t len,
                           const struct fanout_sigv4_params *p, const char *amz_date,
                           const char *secret_access_key, char hex_out[65])
{
    if (!hex_out)
        return -1;
    struct s_sha s;
    int rc = s_sha_open(&s) == 0 ? s_signature(&s, string_to_sign, len, p, amz_date, NULL,
                                               secret_access_key, hex_out)
                                 : -1;
    s_sha_close(&s);
    return rc;
}

#ifdef FANOUT_TESTING
/* For the unit tests only: the (cached) signing key of a scope, and a way
 * to start from an empty cache. */
int fanout_sigv4_test_signing_key(const char *key_id, const char *secret, const char *date8,
                                  const char *region, const char *service, uint8_t key[32],
                                  int *from_cache);
void fanout_sigv4_test_cache_clear(void);

/* The signing key for the scope; from the cache when `key_id` is given.
 * `*from_cache` says whether it was a hit. (Signing goes through
 * s_sign_pads, which needs only the key's HMAC states.) */
static int s_signing_key(const char *key_id, const char *secret, const char *date8,
                         const char *region, const char *service, uint8_t key[S_KEY_LEN],
                         int *from_cache)
{
    struct s_sha s;
    size_t secret_len = strlen(secret);
    int rc = -1;
    *from_cache = 0;
    if (s_sha_open(&s) != 0)
        goto done;
    if (!s_cacheable(key_id, secret_len)) {
        rc = s_derive_key(&s, secret, date8, region, service, key);
        goto done;
    }
    pthread_mutex_lock(&s_cache_lock);
    struct s_cache_slot *slot =
        s_slot_locked(&s, key_id, secret, secret_len, date8, region, service, from_cache);
    if (slot) {
        memcpy(key, slot->key, S_KEY_LEN);
        rc = 0;
    }
    pthread_mutex_unlock(&s_cache_lock);
done:
    s_sha_close(&s);
    return rc;
}

int fanout_sigv4_test_signing_key(const char *key_id, const char *secret, const char *date8,
                                  const char *region, const char *service, uint8_t key[32],
                                  int *from_cache)
{
    int hit = 0;
    int rc = s_signing_key(key_id, secret, date8, region, service, key, &hit);
    if (from_cache)
        *from_cache = hit;
    return rc;
}

void fanout_sigv4_test_cache_clear(void)
{
    pthread_mutex_lock(&s_cache_lock);
    for (size_t i = 0; i < S_CACHE_SLOTS; i++)
        s_slot_clear(&s_cache[i]);
    pthread_mutex_unlock(&s_cache_lock);
}
#endif

/* ---- all stages --------------------------------------------------------- */

/* Append s[0..n) at *at in dst[cap], kept NUL-terminated: 1, or 0 when it
 * does not fit. */
static int s_cat(char *dst, size_t cap, size_t *at, const char *s, size_t n)
{
    if (n >= cap - *at)
        return 0;
    memcpy(dst + *at, s, n);
    *at += n;
    dst[*at] = 0;
    return 1;
}

int fanout_sigv4_sign(const struct fanout_sigv4_request *req,
                      const struct fanout_sigv4_params *p,
                      const struct fanout_sigv4_credentials *c,
                      struct fanout_sigv4_result *out)
{
    if (!out)
        return -1;
    memset(out, 0, sizeof *out);
    if (!req || !p || !c || !s_valid_key_id(c->access_key_id) || !c->secret_access_key ||
        (req->body_len && !req->body))
        return -1;

    struct fanout_sbuf creq = {0}, signed_headers = {0}, sts = {0};
    struct s_sha s;
    char amz_date[17], payload_hash[65], signature[65];
    int rc = -1;
    if (s_sha_open(&s) != 0 || s_format_amz_date(p->now, amz_date) != 0)
        goto done;
    if (s_sha256_hex_on(s.in, req->body, req->body_len, payload_hash) != 0)
        goto done;
    if (s_canonical_request(req, p, amz_date, c->session_token, payload_hash, &creq,
                            &signed_headers) != 0)
        goto done;
    if (s_string_to_sign(s.in, (const char *)creq.bytes, creq.len, p, amz_date, &sts))
        goto done;
    if (s_signature(&s, (const char *)sts.bytes, sts.len, p, amz_date, c->access_key_id,
                    c->secret_access_key, signature) != 0)
        goto done;
    /* S_ALGORITHM " Credential=<key id>/<date>/<region>/<service>/"
     * S_TERMINATOR ", SignedHeaders=<names>, Signature=<hex>" */
    char date8[9];
    memcpy(date8, amz_date, 8);
    date8[8] = 0;
    const char *const parts[] = {S_ALGORITHM " Credential=",
                                 c->access_key_id,
                                 "/",
                                 date8,
                                 "/",
                                 p->region,
                                 "/",
                                 p->service,
                                 "/" S_TERMINATOR ", SignedHeaders=",
                                 (const char *)signed_headers.bytes,
                                 ", Signature=",
                                 signature};
    size_t at = 0;
    int fits = 1;
    for (size_t i = 0; i < sizeof parts / sizeof *parts && fits; i++)
        fits = s_cat(out->authorization, sizeof out->authorization, &at, parts[i],
                     strlen(parts[i]));
    if (!fits) {
        LOG_DEBUG("sigv4", "Authorization header longer than %zu bytes",
                  sizeof out->authorization - 1);
        goto done;
    }
    memcpy(out->amz_date, amz_date, sizeof out->amz_date);
    memcpy(out->content_sha256, payload_hash, sizeof out->content_sha256);
    memcpy(out->signature, signature, sizeof out->signature);
    rc = 0;
done:
    if (rc != 0)
        memset(out, 0, sizeof *out);
    s_sha_close(&s);
    s_buf_wipe(&creq); /* holds the session token */
    fanout_sbuf_free(&signed_headers);
    fanout_sbuf_free(&sts);
    return rc;
}
