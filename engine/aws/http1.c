/* HTTP/1.1 request heads and response parsing (see http1.h). */
#include "aws/http1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_MAX_BODY ((uint64_t)FANOUT_HTTP_MAX_BODY_BYTES)
/* The most a response body's buffer takes at once from its Content-Length */
#define S_BODY_PRESIZE ((size_t)1 << 20)

/* ---- requests ------------------------------------------------------------ */

/* A tchar is 0x21..0x7E but DQUOTE and (),/:;<=>?@[\]{}: one bit per
 * character below 128. */
static const uint64_t s_tchar[2] = {0x03ff6cfa00000000u, 0x57ffffffc7fffffeu};

static int s_tchar_at(unsigned char c)
{
    return c < 128 && (s_tchar[c >> 6] >> (c & 63) & 1);
}

int fanout_http1_is_token(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!s_tchar_at((unsigned char)*s))
            return 0;
    return 1;
}

static int s_blank(const char *v)
{
    return v[strspn(v, " \t")] == 0;
}

int fanout_http1_write_head(struct fanout_sbuf *out, const char *method, const char *target,
                            size_t target_len, const char *host, size_t host_len,
                            const struct fanout_http_header *headers, size_t header_count,
                            int has_body, size_t body_len, const char **why)
{
    if (!fanout_http1_is_token(method)) {
        *why = "invalid method";
        return -1;
    }
    for (size_t i = 0; i < target_len; i++)
        if ((unsigned char)target[i] <= 0x20 || (unsigned char)target[i] >= 0x7f) {
            *why = "malformed URL";
            return -1;
        }
    size_t given_host = header_count; /* the caller's Host header: at */
    int given_length = 0;
    /* the fixed text, Content-Length's digits and the blank line fit in 64 */
    size_t need = strlen(method) + target_len + host_len + 64;
    for (size_t i = 0; i < header_count; i++) {
        const struct fanout_http_header *h = &headers[i];
        if (!fanout_http1_is_token(h->name) || !h->value ||
            h->value[strcspn(h->value, "\r\n")] != 0) {
            *why = "invalid request header";
            return -1;
        }
        if (given_host == header_count && strcasecmp(h->name, "Host") == 0)
            given_host = i;
        given_length |= strcasecmp(h->name, "Content-Length") == 0;
        need += strlen(h->name) + strlen(h->value) + 4;
    }
    if (fanout_sbuf_reserve(out, need) != 0) {
        *why = "out of memory";
        return -1;
    }
    /* room reserved: the puts below cannot fail */
    char *o = out->p + out->len;
    size_t n = strlen(method);
    memcpy(o, method, n);
    o += n;
    *o++ = ' ';
    memcpy(o, target, target_len);
    o += target_len;
    memcpy(o, " HTTP/1.1\r\nHost:", 16);
    o += 16;
    if (given_host < header_count) {
        const char *v = headers[given_host].value;
        if (!s_blank(v)) {
            *o++ = ' ';
            n = strlen(v);
            memcpy(o, v, n);
            o += n;
        }
    } else {
        *o++ = ' ';
        memcpy(o, host, host_len);
        o += host_len;
    }
    *o++ = '\r';
    *o++ = '\n';
    for (size_t i = 0; i < header_count; i++) {
        const struct fanout_http_header *h = &headers[i];
        if (i == given_host)
            continue; /* sent in Host's place */
        n = strlen(h->name);
        memcpy(o, h->name, n);
        o += n;
        *o++ = ':';
        if (!s_blank(h->value)) {
            *o++ = ' ';
            n = strlen(h->value);
            memcpy(o, h->value, n);
            o += n;
        }
        *o++ = '\r';
        *o++ = '\n';
    }
    if (has_body && !given_length) {
        /* the digits backwards, then in order (a printf was a quarter of
         * the head's instructions) */
        char digits[24];
        size_t nd = 0;
        do {
            digits[nd++] = (char)('0' + body_len % 10);
            body_len /= 10;
        } while (body_len);
        memcpy(o, "Content-Length: ", 16);
        o += 16;
        while (nd)
            *o++ = digits[--nd];
        *o++ = '\r';
        *o++ = '\n';
    }
    *o++ = '\r';
    *o++ = '\n';
    out->len = (size_t)(o - out->p);
    return 0;
}

/* ---- header storage ------------------------------------------------------ */

static int s_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Append n bytes and a NUL to the response's header text, where every
 * header name and value lives (one block, not two allocations a header);
 * moving it moves the pointers into it. The copy, or NULL. */
static char *s_text_put(struct fanout_http_response *r, const char *p, size_t n)
{
    struct fanout_sbuf *t = &r->header_text;
    if (n + 1 > t->cap - t->len) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap - t->len < n + 1)
            cap *= 2;
        char *old = t->p, *nb = malloc(cap);
        if (!nb)
            return NULL;
        if (t->len)
            memcpy(nb, old, t->len);
        for (size_t i = 0; i < r->header_count; i++) {
            r->headers[i].name = nb + (r->headers[i].name - old);
            r->headers[i].value = nb + (r->headers[i].value - old);
        }
        free(old);
        t->p = nb;
        t->cap = cap;
    }
    char *o = t->p + t->len;
    memcpy(o, p, n);
    o[n] = 0;
    t->len += n + 1;
    return o;
}

int fanout_http1_store_header(struct fanout_http_response *r, size_t *cap, const char *p,
                              size_t n)
{
    size_t len = n;
    while (len && s_is_ws(p[len - 1]))
        len--;
    if (!len)
        return 0;
    if (p[0] == ' ' || p[0] == '\t') {
        /* obsolete line folding: continues the previous value, the last
         * text of the block: its NUL becomes the space */
        if (!r->header_count)
            return 0;
        size_t start = 0;
        while (start < len && s_is_ws(p[start]))
            start++;
        r->header_text.len--;
        /* a space between, unless the value was empty */
        if (*r->headers[r->header_count - 1].value) {
            if (!s_text_put(r, " ", 1)) {
                r->header_text.len++;
                return -1;
            }
            r->header_text.len--;
        }
        if (!s_text_put(r, p + start, len - start)) {
            r->header_text.len++;
            return -1;
        }
        return 0;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon)
        return 0;
    size_t name_len = (size_t)(colon - p);
    while (name_len && s_is_ws(p[name_len - 1]))
        name_len--;
    if (!name_len)
        return 0;
    const char *value = colon + 1;
    size_t value_len = len - (size_t)(value - p);
    while (value_len && s_is_ws(*value))
        value++, value_len--;
    if (r->header_count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct fanout_http_header *h = realloc(r->headers, ncap * sizeof *h);
        if (!h)
            return -1;
        r->headers = h;
        *cap = ncap;
    }
    size_t at = r->header_text.len; /* the value may move the name */
    char *vl = s_text_put(r, p, name_len) ? s_text_put(r, value, value_len) : NULL;
    if (!vl)
        return -1;
    r->headers[r->header_count++] = (struct fanout_http_header){r->header_text.p + at, vl};
    return 0;
}

/* ---- responses (http.h) ---------------------------------------------------- */

void fanout_http_response_clean_up(struct fanout_http_response *r)
{
    if (!r)
        return;
    free(r->headers);
    fanout_sbuf_free(&r->header_text);
    fanout_sbuf_free(&r->body);
    memset(r, 0, sizeof *r);
}

const char *fanout_http_response_header(const struct fanout_http_response *r,
                                        const char *name)
{
    if (!r || !name)
        return NULL;
    for (size_t i = 0; i < r->header_count; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* ---- the response parser --------------------------------------------------- */

void fanout_http1_parser_init(struct fanout_http1_parser *p, struct fanout_http_response *r,
                              int is_head)
{
    fanout_http_response_clean_up(r);
    memset(p, 0, sizeof *p);
    p->resp = r;
    p->is_head = is_head;
}

void fanout_http1_parser_free(struct fanout_http1_parser *p)
{
    fanout_sbuf_free(&p->line);
}

static void s_failed(struct fanout_http1_parser *p, enum fanout_http_error e,
                     const char *why)
{
    p->state = FANOUT_HTTP1_FAILED;
    p->error = e;
    p->keep_alive = 0;
    snprintf(p->why, sizeof p->why, "%s", why);
}

static void s_too_big(struct fanout_http1_parser *p)
{
    char text[96];
    snprintf(text, sizeof text, "response body over %zu bytes (HTTP %ld)",
             (size_t)S_MAX_BODY, p->resp->status);
    s_failed(p, FANOUT_HTTP_OTHER, text);
}

/* A body is read after the headers of the final answer */
static int s_has_body(const struct fanout_http1_parser *p)
{
    long s = p->resp->status;
    return !p->is_head && s != 204 && s != 304;
}

static int s_status_line(struct fanout_http1_parser *p, const char *l, size_t n)
{
    /* HTTP/1.x SP 3DIGIT [SP reason] */
    if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || l[7] < '0' || l[7] > '9' || l[8] != ' ' ||
        l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' ||
        l[11] > '9' || (n > 12 && l[12] != ' ')) {
        s_failed(p, FANOUT_HTTP_OTHER, "malformed HTTP status line from the server");
        return -1;
    }
    long status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (status == 101) {
        s_failed(p, FANOUT_HTTP_OTHER,
                 "unexpected 101 Switching Protocols from the server");
        return -1;
    }
    p->minor = l[7] - '0';
    p->resp->status = status;
    p->state = FANOUT_HTTP1_HEADERS;
    return 0;
}

/* digits only; saturates */
static int s_parse_length(const char *v, size_t n, uint64_t *out)
{
    if (!n)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        if (x > (UINT64_MAX - 9) / 10)
            x = UINT64_MAX;
        else
            x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}

/* The end of a header block: of an interim answer (wait for the next), of
 * the final answer (the body's framing) or of the trailers. */
static void s_headers_end(struct fanout_http1_parser *p)
{
    struct fanout_http_response *r = p->resp;
    if (r->status < 200) {
        /* interim: its headers are not the answer's */
        r->header_count = 0;
        r->header_text.len = 0;
        p->has_length = p->chunked = p->conn_close = 0;
        p->state = FANOUT_HTTP1_STATUS;
        return;
    }
    p->keep_alive = p->minor >= 1 && !p->conn_close;
    if (!s_has_body(p)) {
        p->state = FANOUT_HTTP1_DONE;
        return;
    }
    if (p->chunked) {
        /* a length beside chunked is a smuggling attempt or a broken
         * server: the chunks decide, and the connection is not reused */
        if (p->has_length)
            p->keep_alive = 0;
        p->state = FANOUT_HTTP1_CHUNK_SIZE;
        return;
    }
    if (p->has_length) {
        if (p->length > S_MAX_BODY) {
            s_too_big(p);
            return;
        }
        if (p->length && !r->body.len &&
            fanout_sbuf_reserve(&r->body, p->length < S_BODY_PRESIZE ? (size_t)p->length
                                                                     : S_BODY_PRESIZE)) {
            s_failed(p, FANOUT_HTTP_OTHER, "out of memory reading the response");
            return;
        }
        p->left = p->length;
        p->state = p->length ? FANOUT_HTTP1_BODY_LENGTH : FANOUT_HTTP1_DONE;
        return;
    }
    p->keep_alive = 0; /* the close ends the body */
    p->state = FANOUT_HTTP1_BODY_CLOSE;
}

static int s_header_line(struct fanout_http1_parser *p, const char *l, size_t n)
{
    if (!n) {
        s_headers_end(p);
        return 0;
    }
    if (memchr(l, 0, n) || memchr(l, '\r', n)) {
        s_failed(p, FANOUT_HTTP_OTHER, "NUL or bare CR in a response header");
        return -1;
    }
    struct fanout_http_response *r = p->resp;
    if (r->status < 200)
        return 0; /* an interim answer's headers: skipped */
    if (l[0] == ' ' || l[0] == '\t') {
        if (p->chunked || p->has_length || p->conn_close) {
            /* the framing headers must stay as first read; a fold after
             * one of them could continue it */
            const struct fanout_http_header *last =
                r->header_count ? &r->headers[r->header_count - 1] : NULL;
            if (last && (strcasecmp(last->name, "Content-Length") == 0 ||
                         strcasecmp(last->name, "Transfer-Encoding") == 0)) {
                s_failed(p, FANOUT_HTTP_OTHER, "folded framing header in the response");
                return -1;
            }
        }
    } else {
        const char *colon = memchr(l, ':', n);
        if (colon && colon > l && (colon[-1] == ' ' || colon[-1] == '\t')) {
            s_failed(p, FANOUT_HTTP_OTHER,
                     "white space before a colon in a response header");
            return -1;
        }
        if (colon) {
            size_t nl = (size_t)(colon - l);
            const char *v = colon + 1;
            size_t vn = n - nl - 1;
            while (vn && (*v == ' ' || *v == '\t'))
                v++, vn--;
            while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t' || v[vn - 1] == '\r'))
                vn--;
            if (nl == 14 && strncasecmp(l, "Content-Length", 14) == 0) {
                uint64_t len = 0;
                if (s_parse_length(v, vn, &len) != 0) {
                    s_failed(p, FANOUT_HTTP_OTHER,
                             "malformed Content-Length in the response");
                    return -1;
                }
                if (p->has_length && len != p->length) {
                    s_failed(p, FANOUT_HTTP_OTHER,
                             "conflicting Content-Length headers in the response");
                    return -1;
                }
                p->has_length = 1;
                p->length = len;
                if (len > S_MAX_BODY && s_has_body(p)) {
                    s_too_big(p); /* refused before reading */
                    return -1;
                }
            } else if (nl == 17 && strncasecmp(l, "Transfer-Encoding", 17) == 0) {
                if (p->chunked || vn != 7 || strncasecmp(v, "chunked", 7) != 0) {
                    s_failed(
                        p, FANOUT_HTTP_OTHER,
                        "unsupported Transfer-Encoding in the response (only chunked)");
                    return -1;
                }
                p->chunked = 1;
            } else if (nl == 10 && strncasecmp(l, "Connection", 10) == 0) {
                p->conn_close |= fanout_list_has_token(v, vn, "close");
            }
        }
        if (r->header_count >= FANOUT_HTTP1_MAX_HEADERS) {
            s_failed(p, FANOUT_HTTP_OTHER, "too many response headers");
            return -1;
        }
    }
    if (fanout_http1_store_header(r, &p->header_cap, l, n) != 0) {
        s_failed(p, FANOUT_HTTP_OTHER, "out of memory reading the response");
        return -1;
    }
    return 0;
}

static void s_chunk_size(struct fanout_http1_parser *p, const char *l, size_t n)
{
    size_t i = 0;
    uint64_t size = 0;
    while (i < n) {
        int d = fanout_hex_digit(l[i]);
        if (d < 0)
            break;
        if (size > S_MAX_BODY) {
            s_too_big(p);
            return;
        }
        size = size * 16 + (uint64_t)d;
        i++;
    }
    size_t digits = i;
    while (i < n && (l[i] == ' ' || l[i] == '\t'))
        i++;
    if (!digits || (i < n && l[i] != ';')) {
        s_failed(p, FANOUT_HTTP_RESET, "malformed chunk size in the response");
        return;
    }
    if (size > S_MAX_BODY - p->resp->body.len) {
        s_too_big(p);
        return;
    }
    p->left = size;
    p->state = size ? FANOUT_HTTP1_CHUNK_DATA : FANOUT_HTTP1_TRAILERS;
}

static void s_line(struct fanout_http1_parser *p, const char *l, size_t n)
{
    switch (p->state) {
    case FANOUT_HTTP1_STATUS: s_status_line(p, l, n); break;
    case FANOUT_HTTP1_HEADERS: s_header_line(p, l, n); break;
    case FANOUT_HTTP1_CHUNK_SIZE: s_chunk_size(p, l, n); break;
    case FANOUT_HTTP1_CHUNK_END:
        if (n)
            s_failed(p, FANOUT_HTTP_RESET, "malformed chunk end in the response");
        else
            p->state = FANOUT_HTTP1_CHUNK_SIZE;
        break;
    case FANOUT_HTTP1_TRAILERS:
        /* trailers are read and dropped: the headers are the answer's */
        if (!n)
            p->state = FANOUT_HTTP1_DONE;
        else if (memchr(l, 0, n))
            s_failed(p, FANOUT_HTTP_OTHER, "NUL byte in a response trailer");
        break;
    default: break;
    }
}

static int s_line_state(enum fanout_http1_state s)
{
    return s == FANOUT_HTTP1_STATUS || s == FANOUT_HTTP1_HEADERS ||
           s == FANOUT_HTTP1_CHUNK_SIZE || s == FANOUT_HTTP1_CHUNK_END ||
           s == FANOUT_HTTP1_TRAILERS;
}

/* Body bytes to the response */
static size_t s_body(struct fanout_http1_parser *p, const uint8_t *d, size_t n)
{
    struct fanout_sbuf *b = &p->resp->body;
    if (n > S_MAX_BODY - b->len) {
        s_too_big(p);
        return 0;
    }
    if (fanout_sbuf_put(b, d, n) != 0) {
        s_failed(p, FANOUT_HTTP_OTHER, "out of memory reading the response");
        return 0;
    }
    return n;
}

size_t fanout_http1_feed(struct fanout_http1_parser *p, const uint8_t *data, size_t n)
{
    size_t i = 0;
    if (n)
        p->got_bytes = 1;
    while (i < n && p->state != FANOUT_HTTP1_DONE && p->state != FANOUT_HTTP1_FAILED) {
        enum fanout_http1_state st = p->state;
        if (s_line_state(st)) {
            const uint8_t *nl = memchr(data + i, '\n', n - i);
            size_t take = nl ? (size_t)(nl - (data + i)) + 1 : n - i;
            int head = st == FANOUT_HTTP1_STATUS || st == FANOUT_HTTP1_HEADERS ||
                       st == FANOUT_HTTP1_TRAILERS;
            if (head) {
                p->header_bytes += take;
                if (p->header_bytes > FANOUT_HTTP1_MAX_HEADER_BYTES) {
                    s_failed(p, FANOUT_HTTP_OTHER,
                             "response header block over 65536 bytes");
                    break;
                }
            } else if (p->line.len + take > FANOUT_HTTP1_MAX_CHUNK_LINE) {
                s_failed(p, FANOUT_HTTP_RESET,
                         "chunk size line over 4096 bytes in the response");
                break;
            }
            if (!nl || p->line.len) {
                if (fanout_sbuf_put(&p->line, data + i, take) != 0) {
                    s_failed(p, FANOUT_HTTP_OTHER, "out of memory reading the response");
                    break;
                }
            }
            i += take;
            if (!nl) {
                /* not HTTP at all: no need to wait for the line's end */
                size_t k = p->line.len < 7 ? p->line.len : 7;
                if (st == FANOUT_HTTP1_STATUS && memcmp(p->line.p, "HTTP/1.", k) != 0)
                    s_failed(p, FANOUT_HTTP_OTHER,
                             "malformed HTTP status line from the server");
                break;
            }
            const char *l = p->line.len ? p->line.p : (const char *)nl + 1 - take;
            size_t len = p->line.len ? p->line.len : take;
            len--; /* LF */
            if (len && l[len - 1] == '\r')
                len--;
            s_line(p, l, len);
            p->line.len = 0;
            continue;
        }
        size_t take = n - i;
        if (st != FANOUT_HTTP1_BODY_CLOSE && take > p->left)
            take = (size_t)p->left;
        if (s_body(p, data + i, take) != take)
            break;
        i += take;
        if (st == FANOUT_HTTP1_BODY_CLOSE)
            continue;
        p->left -= take;
        if (!p->left)
            p->state =
                st == FANOUT_HTTP1_CHUNK_DATA ? FANOUT_HTTP1_CHUNK_END : FANOUT_HTTP1_DONE;
    }
    return i;
}

void fanout_http1_eof(struct fanout_http1_parser *p, int close_trusted)
{
    char text[sizeof p->why];
    switch (p->state) {
    case FANOUT_HTTP1_DONE:
    case FANOUT_HTTP1_FAILED: return;
    case FANOUT_HTTP1_BODY_CLOSE:
        if (close_trusted) {
            p->keep_alive = 0;
            p->state = FANOUT_HTTP1_DONE;
            return;
        }
        /* a TCP close without TLS's close_notify may be anyone's (an
         * injected FIN or reset), mid-body: nothing proves the end */
        snprintf(text, sizeof text,
                 "connection closed before the answer was complete (a body read to the "
                 "close, %zu bytes, ended without TLS close_notify)",
                 p->resp->body.len);
        break;
    case FANOUT_HTTP1_BODY_LENGTH:
        snprintf(text, sizeof text,
                 "connection closed before the answer was complete (%llu of %llu body "
                 "bytes missing)",
                 (unsigned long long)p->left, (unsigned long long)p->length);
        break;
    case FANOUT_HTTP1_CHUNK_SIZE:
    case FANOUT_HTTP1_CHUNK_DATA:
    case FANOUT_HTTP1_CHUNK_END:
    case FANOUT_HTTP1_TRAILERS:
        snprintf(text, sizeof text,
                 "connection closed before the answer was complete (in its chunked body, "
                 "%zu bytes read)",
                 p->resp->body.len);
        break;
    default:
        snprintf(text, sizeof text, "%s",
                 p->got_bytes ? "connection closed before the answer was complete (in its "
                                "head)"
                              : "Empty reply from server");
    }
    s_failed(p, FANOUT_HTTP_RESET, text);
}
