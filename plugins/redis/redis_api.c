/*
 * The redis plugin's wire side: destination parsing, the transport (TCP or
 * OpenSSL over TCP, non-blocking, with timeouts), AUTH/SELECT, pipelined
 * exchanges whose replies are parsed here (bounded, each matched to its
 * command, closed by a PING marker), and error-reply classes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem; meson defines it, a standalone fuzz build may not */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "redis_api.h"

struct redis_conn {
    int fd;
    SSL *ssl;                        /* NULL for plain TCP */
    const struct redis_endpoint *ep; /* owned by the instance, which outlives us */
    const struct fanout_host *host;  /* for log lines */
    const char *scope;
    uint64_t replies; /* replies read on this connection so far */
    int marker;       /* close each exchange with PING (0: the user may not) */
    /* TLS: the commands' pieces gathered into one record's worth (a piece
     * each would be a record each); [stage_off, stage_len) not yet taken
     * by SSL_write */
    char *stage;
    size_t stage_off, stage_len;
};

/* Bytes gathered per SSL_write: one TLS record's payload. */
#define REDIS_TLS_STAGE 16384
/* Pieces per sendmsg (Linux's UIO_MAXIOV). */
#define REDIS_IOV_MAX 1024

/* The marker that closes every exchange: its +PONG must be the reply right
 * after the last command's, which proves no reply was added or lost. */
static const char s_ping[] = "*1\r\n$4\r\nPING\r\n";

int64_t redis_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_fail(struct redis_failure *f, int status, const char *code, const char *fmt,
                   ...) FANOUT_PRINTF(4, 5);
static void s_fail(struct redis_failure *f, int status, const char *code, const char *fmt,
                   ...)
{
    va_list ap;
    f->status = status;
    snprintf(f->code, sizeof f->code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
}

/* Replace the message only (vsnprintf: cut to fit, by design). */
static void s_msgf(struct redis_failure *f, const char *fmt, ...) FANOUT_PRINTF(2, 3);
static void s_msgf(struct redis_failure *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
}

/* ---- destinations ------------------------------------------------------ */

int redis_is_ip_literal(const char *s)
{
    unsigned char a[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static int s_host_name_ok(const char *h, size_t n)
{
    /* RFC 1123 labels; '_' is tolerated (some private zones use it). */
    if (n == 0 || n > 253)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (c == '.') {
            if (label == 0 || h[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok || (label == 0 && c == '-') || ++label > 63)
            return 0;
    }
    return h[n - 1] != '-';
}

int redis_parse_destination(const char *d, struct redis_endpoint *ep, char *err,
                            size_t err_len)
{
    memset(ep, 0, sizeof *ep);
    if (!d || !*d) {
        snprintf(err, err_len, "the destination is empty");
        return -1;
    }
    if (strstr(d, "://")) {
        snprintf(err, err_len,
                 "a URL is not accepted: give host:port (for rediss:// set \"tls\": true; "
                 "for a database number set \"database\")");
        return -1;
    }
    for (const char *p = d; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            snprintf(err, err_len, "the destination contains a space or control character");
            return -1;
        }
    const char *host, *colon;
    size_t host_len;
    int v6 = 0;
    if (d[0] == '[') {
        const char *close = strchr(d, ']');
        if (!close) {
            snprintf(err, err_len,
                     "\"[\" without \"]\": an IPv6 address is written [v6]:port");
            return -1;
        }
        host = d + 1;
        host_len = (size_t)(close - host);
        if (close[1] != ':') {
            snprintf(err, err_len, "missing the port after \"]\"");
            return -1;
        }
        colon = close + 1;
        v6 = 1;
    } else {
        colon = strrchr(d, ':');
        if (!colon) {
            snprintf(err, err_len, "missing the port (Redis listens on 6379 by default)");
            return -1;
        }
        host = d;
        host_len = (size_t)(colon - d);
        if (memchr(host, ':', host_len)) {
            snprintf(err, err_len, "an IPv6 address needs brackets: [v6]:port");
            return -1;
        }
    }
    if (host_len == 0 || host_len >= sizeof ep->host) {
        snprintf(err, err_len, "the host is %s", host_len ? "too long" : "empty");
        return -1;
    }
    memcpy(ep->host, host, host_len);
    ep->host[host_len] = 0;
    const char *port = colon + 1;
    unsigned long pn = 0;
    size_t digits = 0;
    for (const char *p = port; *p; p++, digits++) {
        if (*p < '0' || *p > '9' || digits >= 5) {
            snprintf(err, err_len, "the port must be a number from 1 to 65535");
            return -1;
        }
        pn = pn * 10 + (unsigned long)(*p - '0');
    }
    if (digits == 0 || pn < 1 || pn > 65535) {
        snprintf(err, err_len, "the port must be a number from 1 to 65535");
        return -1;
    }
    ep->port = (unsigned)pn;
    unsigned char addr[sizeof(struct in6_addr)];
    if (v6) {
        if (inet_pton(AF_INET6, ep->host, addr) != 1) {
            snprintf(err, err_len, "\"%s\" inside brackets is not an IPv6 address",
                     ep->host);
            return -1;
        }
    } else if (strspn(ep->host, "0123456789.") == host_len) {
        if (inet_pton(AF_INET, ep->host, addr) != 1) {
            snprintf(err, err_len, "\"%s\" is not an IPv4 address", ep->host);
            return -1;
        }
    } else if (!s_host_name_ok(ep->host, host_len)) {
        snprintf(err, err_len, "\"%s\" is not a valid host name", ep->host);
        return -1;
    }
    snprintf(ep->display, sizeof ep->display, v6 ? "[%s]:%u" : "%s:%u", ep->host, ep->port);
    return 0;
}

/* ---- error replies ----------------------------------------------------- */

void redis_classify_error(const char *text, size_t len, struct redis_failure *f, int *drop)
{
    /* Redis echoes the arguments of an unknown command after this phrase:
     * that would be payload, which must not reach a log. */
    static const char echo[] = " with args beginning with";
    const char *cut = memmem(text, len, echo, sizeof echo - 1);
    int mlen = (int)(cut ? (size_t)(cut - text) : len);
    if (mlen > (int)sizeof f->message)
        mlen = (int)sizeof f->message;
    size_t w = 0;
    while (w < len && w < sizeof f->code - 1 && text[w] != ' ')
        w++;
    char code[64];
    memcpy(code, text, w);
    code[w] = 0;

    /* Transient states of a healthy server: resending later can succeed. */
    static const char *const transient[] = {
        "OOM",         /* maxmemory reached; eviction or expiry may make room */
        "LOADING",     /* loading its dataset after a restart */
        "BUSY",        /* a script or function is running */
        "TRYAGAIN",    /* multi-key operation during resharding */
        "MASTERDOWN",  /* replica lost its primary */
        "CLUSTERDOWN", /* cluster not (yet) serving */
        "MISCONF",     /* cannot persist, refuses writes until it can */
        "NOREPLICAS",  /* min-replicas-to-write not met */
        "READONLY",    /* a replica: the primary moved in a failover */
    };
    *drop = 0;
    for (size_t i = 0; i < sizeof transient / sizeof *transient; i++)
        if (strcmp(code, transient[i]) == 0) {
            *drop = strcmp(code, "READONLY") == 0;
            s_fail(f, FANOUT_RETRY, code, "%.*s%s", mlen, text,
                   *drop ? " (the connection reaches a replica, probably after a failover: "
                           "reconnecting)"
                         : "");
            return;
        }
    if (strcmp(code, "MOVED") == 0 || strcmp(code, "ASK") == 0)
        s_fail(f, FANOUT_FATAL, code,
               "cluster mode is not supported: the server answered \"%.*s\"; use a cache "
               "with cluster mode disabled (its primary endpoint)",
               mlen, text);
    else if (strcmp(code, "NOAUTH") == 0)
        s_fail(f, FANOUT_FATAL, code,
               "%.*s (the server requires a password: set FANOUT_REDIS_PASSWORD, or name "
               "another variable with the mapping's \"passwordEnv\")",
               mlen, text);
    else
        s_fail(f, FANOUT_FATAL, code[0] ? code : "ERR", "%.*s", mlen, text);
}

/* ---- TLS ------------------------------------------------------------- */

SSL_CTX *redis_tls_context_new(const char *ca_file, char *err, size_t err_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, err_len, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* Partial writes into a buffer that moves on: the exchange loop writes
     * whatever the socket takes and goes on reading replies. */
    SSL_CTX_set_mode(ctx,
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    ERR_clear_error();
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        unsigned long e = ERR_peek_last_error();
        const char *why = ERR_reason_error_string(e);
        if (ca_file)
            snprintf(err, err_len, "cannot load the CA file %s (FANOUT_CA_BUNDLE): %s",
                     ca_file, why ? why : "unknown error");
        else
            snprintf(err, err_len, "cannot load the system's CA certificates: %s",
                     why ? why : "unknown error");
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void s_ssl_reason(char *out, size_t n)
{
    unsigned long e = ERR_peek_last_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    snprintf(out, n, "%s", why ? why : e ? "TLS error" : "TLS error (no detail)");
    ERR_clear_error();
}

/* ---- transport --------------------------------------------------------- */

/* Wait for events on fd until `until_ms`: 1 ready, 0 timed out, -1 error. */
static int s_wait(int fd, short events, int64_t until_ms)
{
    for (;;) {
        int64_t left = until_ms - redis_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (r > 0)
            return 1;
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

enum { IO_CLOSED = -1, IO_FAILED = -2 };

/* Plain TCP: send `wmsg`, or (NULL) receive up to n bytes into rbuf. As
 * s_io returns. */
static ssize_t s_plain_io(struct redis_conn *c, const struct msghdr *wmsg, char *rbuf,
                          size_t n, short *ev, char *why, size_t why_len)
{
    for (;;) {
        ssize_t r = wmsg ? sendmsg(c->fd, wmsg, MSG_NOSIGNAL) : recv(c->fd, rbuf, n, 0);
        if (r > 0)
            return r;
        if (r == 0)
            return wmsg ? 0 : IO_CLOSED;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *ev = wmsg ? POLLOUT : POLLIN;
            return 0;
        }
        snprintf(why, why_len, "%s", strerror(errno));
        return IO_FAILED;
    }
}

/*
 * Move bytes: > 0 moved, 0 would block (*ev says what to wait for),
 * IO_CLOSED the peer closed the connection, IO_FAILED with why.
 * The fanout engine ignores SIGPIPE (engine/main.c): OpenSSL's socket BIO
 * writes with write(), which would raise it on a closed connection.
 */
static ssize_t s_io(struct redis_conn *c, int writing, const char *wbuf, char *rbuf,
                    size_t n, short *ev, char *why, size_t why_len)
{
    if (n > INT_MAX)
        n = INT_MAX;
    if (!c->ssl) {
        struct iovec v = {.iov_base = (void *)wbuf, .iov_len = n};
        struct msghdr mh = {.msg_iov = &v, .msg_iovlen = 1};
        return s_plain_io(c, writing ? &mh : NULL, rbuf, n, ev, why, why_len);
    }
    ERR_clear_error();
    errno = 0;
    int r = writing ? SSL_write(c->ssl, wbuf, (int)n) : SSL_read(c->ssl, rbuf, (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(c->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ: *ev = POLLIN; return 0;
    case SSL_ERROR_WANT_WRITE: *ev = POLLOUT; return 0;
    case SSL_ERROR_ZERO_RETURN: return IO_CLOSED;
    case SSL_ERROR_SYSCALL:
        if (errno == 0) {
            ERR_clear_error();
            return IO_CLOSED;
        }
        snprintf(why, why_len, "%s", strerror(errno));
        ERR_clear_error();
        return IO_FAILED;
    default:
        if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            return IO_CLOSED;
        }
        s_ssl_reason(why, why_len);
        return IO_FAILED;
    }
}

static int s_lost(struct redis_conn *c, struct redis_failure *f, ssize_t kind,
                  const char *why)
{
    /* A TLS-only server drops a plain connection at its first bytes. */
    const char *hint =
        c->replies == 0 && !c->ssl
            ? " before any reply (if the server accepts only TLS, set \"tls\": "
              "true)"
            : "";
    if (kind == IO_CLOSED)
        s_fail(f, FANOUT_RETRY, "ConnectionClosed",
               "connection to %s closed by the server%s", c->ep->display, hint);
    else
        s_fail(f, FANOUT_RETRY, "ConnectionLost", "connection to %s failed: %s%s",
               c->ep->display, why, hint);
    return -1;
}

/* ---- replies ------------------------------------------------------------ */

int redis_reply_next(const char *buf, size_t len, char *type, const char **text,
                     size_t *text_len, size_t *used)
{
    if (len == 0)
        return 0;
    if (buf[0] != '+' && buf[0] != '-' && buf[0] != ':')
        return -1;
    size_t max = len < REDIS_MAX_REPLY_LINE + 2 ? len : REDIS_MAX_REPLY_LINE + 2;
    size_t i = 1;
    while (i < max && buf[i] != '\r' && buf[i] != '\n')
        i++;
    if (i == max)
        return len >= REDIS_MAX_REPLY_LINE + 2 ? -1 : 0;
    if (buf[i] == '\n')
        return -1;
    if (i + 1 == len)
        return 0;
    if (buf[i + 1] != '\n')
        return -1;
    *type = buf[0];
    *text = buf + 1;
    *text_len = i - 1;
    *used = i + 2;
    return 1;
}

/* Up to 60 bytes of a reply for a message, printable. */
static void s_shown(const char *p, size_t n, char *out, size_t out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < 60 && o + 5 < out_len; i++)
        out[o++] = (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"') ? p[i] : '?';
    if (n > 60 && o + 4 < out_len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
}

static const char *s_type_name(char t)
{
    switch (t) {
    case '$': return "a bulk string";
    case '*': return "an array";
    case ':': return "an integer";
    case '_': return "a RESP3 null";
    case ',': return "a RESP3 double";
    case '#': return "a RESP3 boolean";
    case '!': return "a RESP3 blob error";
    case '=': return "a RESP3 verbatim string";
    case '%': return "a RESP3 map";
    case '~': return "a RESP3 set";
    case '>': return "a RESP3 push";
    case '(': return "a RESP3 big number";
    case '|': return "a RESP3 attribute";
    default: return "no RESP type";
    }
}

static void s_desync(struct redis_match *m, const char *fmt, ...) FANOUT_PRINTF(2, 3);
static void s_desync(struct redis_match *m, const char *fmt, ...)
{
    va_list ap;
    m->desync = 1;
    va_start(ap, fmt);
    vsnprintf(m->why, sizeof m->why, fmt, ap);
    va_end(ap);
}

size_t redis_match_feed(struct redis_match *m, const char *buf, size_t len)
{
    size_t off = 0;
    size_t total = m->want + (m->marker ? 1 : 0);
    while (!m->done && !m->desync) {
        char type = 0;
        const char *text = NULL;
        size_t tlen = 0, used = 0;
        int k = redis_reply_next(buf + off, len - off, &type, &text, &tlen, &used);
        if (k == 0)
            break;
        if (k < 0) {
            char shown[80];
            s_shown(buf + off, len - off, shown, sizeof shown);
            if (buf[off] == '+' || buf[off] == '-' || buf[off] == ':')
                s_desync(m,
                         "%s sent reply %zu of %zu as a line over %d bytes or without CRLF "
                         "(starts \"%s\")",
                         m->where, m->got + 1, total, REDIS_MAX_REPLY_LINE, shown);
            else
                s_desync(m,
                         "%s sent %s ('%c') as reply %zu of %zu, where only +OK, :0 or :1 "
                         "(DEL), +PONG or an error can come (starts \"%s\")",
                         m->where, s_type_name(buf[off]),
                         buf[off] >= 0x20 && buf[off] < 0x7f ? buf[off] : '?', m->got + 1,
                         total, shown);
            break;
        }
        off += used;
        int is_error = type == '-';
        int at_marker = m->marker && m->got == m->want;
        if (at_marker) {
            if (is_error) {
                /* PING refused (NOAUTH, BUSY, NOPERM...): still the reply
                 * to PING, not an OK shifted into its place */
                m->marker_refused = tlen >= 6 && memcmp(text, "NOPERM", 6) == 0;
            } else if (type != '+' || tlen != 4 || memcmp(text, "PONG", 4) != 0) {
                char shown[80];
                s_shown(text, tlen, shown, sizeof shown);
                s_desync(m,
                         "%s answered \"%c%s\" where the closing PING's +PONG was due: its "
                         "replies are out of step with the commands (an extra or missing "
                         "reply)",
                         m->where, type, shown);
                break;
            }
            m->got++;
            m->done = 1;
            break;
        }
        int del = m->expect && m->expect[m->got] == REDIS_EXPECT_DEL;
        /* A DEL of one key counts 0 or 1 keys removed; SET and the others
         * say +OK. Any other answer is not this command's. */
        int expected = del ? type == ':' && tlen == 1 && (text[0] == '0' || text[0] == '1')
                           : type == '+' && tlen == 2 && memcmp(text, "OK", 2) == 0;
        if (!is_error && !expected) {
            char shown[80];
            s_shown(text, tlen, shown, sizeof shown);
            s_desync(m,
                     "%s answered \"%c%s\" to command %zu of %zu%s or an error: its "
                     "replies are out of step with the commands",
                     m->where, type, shown, m->got + 1, m->want,
                     del ? " (a DEL of one key), which can only get :0, :1"
                         : ", which can only get +OK");
            break;
        }
        memcpy(m->text, text, tlen);
        m->text[tlen] = 0;
        m->fn(m->ud, m->got, is_error, m->text, tlen);
        m->got++;
        if (!m->marker && m->got == m->want)
            m->done = 1;
    }
    return off;
}

void redis_match_end(struct redis_match *m, size_t extra)
{
    if (m->done && !m->desync && extra)
        s_desync(m,
                 "%s sent %zu byte(s) after the last reply of the exchange: more replies "
                 "than commands, so none is trusted",
                 m->where, extra);
}

/* Where the writer is: piece k of the exchange (the caller's pieces, then
 * the marker's PING when `marker`), `at` bytes into it. */
struct s_cursor {
    const struct iovec *segs;
    size_t nsegs;
    int marker;
    size_t k, at;
};

static struct iovec s_piece(const struct s_cursor *w, size_t k)
{
    if (k < w->nsegs)
        return w->segs[k];
    return (struct iovec){.iov_base = (void *)s_ping, .iov_len = sizeof s_ping - 1};
}

static void s_advance(struct s_cursor *w, size_t n)
{
    size_t total = w->nsegs + (w->marker ? 1 : 0);
    while (w->k < total) {
        size_t left = s_piece(w, w->k).iov_len - w->at;
        if (n < left) {
            w->at += n;
            return;
        }
        n -= left;
        w->k++;
        w->at = 0;
    }
}

/* Write from the cursor: plain TCP hands the kernel the pieces where they
 * are (the records' bytes are never copied); TLS gathers them into the
 * connection's stage first. Bytes moved (> 0), 0, or an IO_ error. */
static ssize_t s_write_pieces(struct redis_conn *c, struct s_cursor *w, short *ev,
                              char *why, size_t why_len)
{
    size_t total = w->nsegs + (w->marker ? 1 : 0);
    if (c->ssl) {
        if (c->stage_off == c->stage_len) {
            c->stage_off = c->stage_len = 0;
            while (w->k < total && c->stage_len < REDIS_TLS_STAGE) {
                struct iovec p = s_piece(w, w->k);
                size_t n = p.iov_len - w->at;
                if (n > REDIS_TLS_STAGE - c->stage_len)
                    n = REDIS_TLS_STAGE - c->stage_len;
                memcpy(c->stage + c->stage_len, (const char *)p.iov_base + w->at, n);
                c->stage_len += n;
                s_advance(w, n);
            }
        }
        ssize_t r = s_io(c, 1, c->stage + c->stage_off, NULL, c->stage_len - c->stage_off,
                         ev, why, why_len);
        if (r > 0)
            c->stage_off += (size_t)r;
        return r;
    }
    struct iovec v[REDIS_IOV_MAX];
    size_t n = 0;
    for (size_t k = w->k, at = w->at; k < total && n < REDIS_IOV_MAX; k++, at = 0) {
        struct iovec p = s_piece(w, k);
        if (p.iov_len > at)
            v[n++] = (struct iovec){(char *)p.iov_base + at, p.iov_len - at};
    }
    struct msghdr mh = {.msg_iov = v, .msg_iovlen = n};
    ssize_t r = s_plain_io(c, &mh, NULL, 0, ev, why, why_len);
    if (r > 0)
        s_advance(w, (size_t)r);
    return r;
}

int redis_conn_exchange(struct redis_conn *c, const struct iovec *segs, size_t nsegs,
                        const size_t *ends, const unsigned char *expect, size_t want,
                        redis_reply_fn fn, void *ud, int timeout_ms, int64_t deadline_ms,
                        size_t *got, struct redis_failure *f)
{
    size_t sent = 0; /* commands written entirely (the marker's included) */
    char in[REDIS_MAX_REPLY_LINE * 2 + 16];
    size_t in_len = 0;
    char why[160] = "";
    size_t off = 0;
    size_t len = 0;
    for (size_t k = 0; k < nsegs; k++)
        len += segs[k].iov_len;
    struct s_cursor w = {.segs = segs, .nsegs = nsegs, .marker = c->marker};
    size_t out_len = len + (c->marker ? sizeof s_ping - 1 : 0);
    if (c->ssl && !c->stage && !(c->stage = malloc(REDIS_TLS_STAGE))) {
        s_fail(f, FANOUT_RETRY, "OutOfMemory", "out of memory");
        *got = 0;
        return -1;
    }
    c->stage_off = c->stage_len = 0;
    int64_t last = redis_now_ms();
    int64_t total = last + timeout_ms + (int64_t)(len / REDIS_BYTES_PER_MS);
    int by_invocation = deadline_ms <= total;
    if (by_invocation)
        total = deadline_ms;
    size_t received = 0;
    struct redis_match *m = malloc(sizeof *m);
    if (!m) {
        s_fail(f, FANOUT_RETRY, "OutOfMemory", "out of memory");
        *got = 0;
        return -1;
    }
    *m = (struct redis_match){.want = want,
                              .expect = expect,
                              .marker = c->marker,
                              .where = c->ep->display,
                              .fn = fn,
                              .ud = ud};
    int rc = -1;
    *got = 0;
    for (;;) {
        short ev = 0;
        int progress = 0;
        if (off < out_len) {
            short wev = 0;
            ssize_t wr = s_write_pieces(c, &w, &wev, why, sizeof why);
            if (wr < 0) {
                *got = m->got > want ? want : m->got;
                rc = s_lost(c, f, wr, why);
                goto out;
            }
            if (wr > 0) {
                off += (size_t)wr;
                progress = 1;
            }
            ev |= wev;
        }
        short rev = 0;
        ssize_t r =
            s_io(c, 0, NULL, in + in_len, sizeof in - in_len, &rev, why, sizeof why);
        if (r < 0) {
            *got = m->got > want ? want : m->got;
            rc = s_lost(c, f, r, why);
            goto out;
        }
        if (r > 0) {
            in_len += (size_t)r;
            received += (size_t)r;
            size_t before = m->got;
            while (sent < want && ends[sent] <= off)
                sent++;
            if (sent == want && off == out_len)
                sent = want + 1;
            size_t used = redis_match_feed(m, in, in_len);
            c->replies += m->got - before;
            memmove(in, in + used, in_len - used);
            in_len -= used;
            /* A reply answers a command only once that command was written
             * entirely: one that comes earlier was not caused by it. */
            if (m->got > sent && !m->desync)
                s_desync(m,
                         "%s answered command %zu of %zu before it was sent entirely: a "
                         "reply nobody asked for",
                         c->ep->display, sent + 1, want + (c->marker ? 1 : 0));
            if (m->done)
                redis_match_end(m, in_len);
            if (m->desync) {
                *got = 0;
                s_fail(f, FANOUT_RETRY, "ProtocolError", "%s", m->why);
                goto out;
            }
            if (m->done) {
                if (m->marker_refused) {
                    c->marker = 0;
                    if (c->host)
                        c->host->log(FANOUT_LOG_WARN, c->scope,
                                     "%s refuses PING to this user (NOPERM): replies on "
                                     "this connection are matched by count only; grant "
                                     "+ping (or +@connection) to check them fully",
                                     c->ep->display);
                }
                *got = want;
                rc = 0;
                goto out;
            }
            progress = 1;
        }
        ev |= rev;
        int64_t now = redis_now_ms();
        if (progress) {
            last = now;
            if (now < total)
                continue; /* (a steady stream still ends at the limit) */
        }
        int64_t until = last + timeout_ms;
        int by_total = until >= total;
        if (by_total)
            until = total;
        int ready = s_wait(c->fd, ev ? ev : POLLIN, until);
        if (ready == 0) {
            *got = m->got > want ? want : m->got;
            if (by_total && by_invocation && received == 0)
                s_fail(f, FANOUT_RETRY, "Timeout",
                       "no reply from %s before the invocation's deadline", c->ep->display);
            else if (by_total && received > 0)
                s_fail(f, FANOUT_RETRY, "Timeout",
                       "the exchange with %s did not end in time (%zu of %zu replies, %zu "
                       "bytes received; the limit is timeoutMs plus 1 ms per 10 kB sent%s)",
                       c->ep->display, m->got, want + (c->marker ? 1 : 0), received,
                       by_invocation ? ", cut by the invocation's deadline" : "");
            else
                s_fail(f, FANOUT_RETRY, "Timeout",
                       "no reply from %s within %d ms (timeoutMs)", c->ep->display,
                       timeout_ms);
            goto out;
        }
        if (ready < 0) {
            *got = m->got > want ? want : m->got;
            rc = s_lost(c, f, IO_FAILED, strerror(errno));
            goto out;
        }
    }
out:
    free(m);
    return rc;
}

static int s_tcp_connect(const struct redis_conn_config *cfg, int64_t until,
                         struct redis_failure *f)
{
    const struct redis_endpoint *ep = cfg->ep;
    char port[8];
    snprintf(port, sizeof port, "%u", ep->port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    /* Resolved again on every connect: after a failover, ElastiCache points
     * the primary endpoint's name at the new primary. */
    int rc = getaddrinfo(ep->host, port, &hints, &res);
    if (rc != 0) {
        int fatal = rc == EAI_NONAME;
        s_fail(f, fatal ? FANOUT_FATAL : FANOUT_RETRY, "NameNotResolved",
               "cannot resolve %s: %s", ep->host,
               rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    int fd = -1, last_err = 0, timed_out = 0;
    for (struct addrinfo *ai = res; ai && !timed_out; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            last_err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            int w = s_wait(fd, POLLOUT, until);
            if (w > 0) {
                int soerr = 0;
                socklen_t sl = sizeof soerr;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                    break;
                last_err = soerr ? soerr : errno;
            } else if (w == 0) {
                timed_out = 1;
            } else {
                last_err = errno;
            }
        } else {
            last_err = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        if (timed_out)
            s_fail(f, FANOUT_RETRY, "ConnectTimeout", "no connection to %s within %d ms%s",
                   ep->display, cfg->timeout_ms,
                   " (timeoutMs, or the invocation's deadline)");
        else
            s_fail(f, FANOUT_RETRY, "ConnectFailed", "cannot connect to %s: %s",
                   ep->display, strerror(last_err));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    return fd;
}

static int s_tls_handshake(struct redis_conn *c, const struct redis_conn_config *cfg,
                           int64_t until, struct redis_failure *f)
{
    const char *name = cfg->tls_name ? cfg->tls_name : cfg->ep->host;
    c->ssl = SSL_new(cfg->tls);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        s_fail(f, FANOUT_RETRY, "TLSSetupFailed", "cannot set up TLS for %s",
               cfg->ep->display);
        return -1;
    }
    int named;
    if (redis_is_ip_literal(name)) {
        /* No SNI for an address (RFC 6066); verify it against the
         * certificate's IP addresses. */
        named = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name) == 1;
    } else {
        named =
            SSL_set_tlsext_host_name(c->ssl, name) == 1 && SSL_set1_host(c->ssl, name) == 1;
    }
    if (!named) {
        ERR_clear_error();
        s_fail(f, FANOUT_FATAL, "TLSSetupFailed", "cannot verify the TLS name \"%s\"",
               name);
        return -1;
    }
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(c->ssl, r);
        short ev = e == SSL_ERROR_WANT_READ    ? POLLIN
                   : e == SSL_ERROR_WANT_WRITE ? POLLOUT
                                               : 0;
        if (ev) {
            int w = s_wait(c->fd, ev, until);
            if (w > 0)
                continue;
            s_fail(f, FANOUT_RETRY, "TLSHandshakeFailed",
                   w == 0
                       ? "no TLS handshake with %s within %d ms (timeoutMs, or the "
                         "invocation's deadline; does the server accept TLS on this port?)"
                       : "TLS handshake with %s failed while waiting (%d ms)",
                   cfg->ep->display, cfg->timeout_ms);
            return -1;
        }
        long v = SSL_get_verify_result(c->ssl);
        if (v != X509_V_OK) {
            ERR_clear_error();
            s_fail(f, FANOUT_FATAL, "TLSVerifyFailed",
                   "the TLS certificate of %s was refused: %s (name checked: \"%s\"; a "
                   "private CA is trusted with FANOUT_CA_BUNDLE, another name is set with "
                   "\"tlsServerName\")",
                   cfg->ep->display, X509_verify_cert_error_string(v), name);
            return -1;
        }
        char why[160];
        if (e == SSL_ERROR_SYSCALL) {
            snprintf(why, sizeof why, "%s",
                     errno ? strerror(errno) : "the server closed the connection");
            ERR_clear_error();
        } else {
            s_ssl_reason(why, sizeof why);
        }
        /* A protocol error (no TLS on that port, no shared version) will not
         * go away by itself; a reset might. */
        s_fail(
            f, e == SSL_ERROR_SSL ? FANOUT_FATAL : FANOUT_RETRY, "TLSHandshakeFailed",
            "TLS handshake with %s failed: %s (does the server accept TLS on this port?)",
            cfg->ep->display, why);
        return -1;
    }
}

/* ---- AUTH and SELECT --------------------------------------------------- */

struct s_login {
    const struct redis_conn_config *cfg;
    int auth; /* reply 0 answers AUTH */
    int failed;
    struct redis_failure *f;
};

static int s_no_password_set(const char *text)
{
    /* Redis 6+ and 5 wording when AUTH meets a server without a password. */
    return strstr(text, "without any password configured") != NULL ||
           strstr(text, "no password is set") != NULL;
}

static void s_login_reply(void *ud, size_t i, int is_error, const char *text, size_t len)
{
    struct s_login *l = ud;
    const struct redis_conn_config *cfg = l->cfg;
    int is_auth = l->auth && i == 0;
    if (l->failed || !is_error)
        return;
    if (is_auth && s_no_password_set(text)) {
        cfg->host->log(FANOUT_LOG_WARN, cfg->scope,
                       "%s has no password, but one was given (from %s): connected without "
                       "AUTH",
                       cfg->ep->display, cfg->password_from);
        return;
    }
    int drop;
    redis_classify_error(text, len, l->f, &drop);
    char said[sizeof l->f->message];
    snprintf(said, sizeof said, "%s", l->f->message);
    if (is_auth)
        s_msgf(l->f, "AUTH refused by %s%s%s%s: %s (password from %s)", cfg->ep->display,
               cfg->username ? " for user \"" : "", cfg->username ? cfg->username : "",
               cfg->username ? "\"" : "", said, cfg->password_from);
    else
        s_msgf(l->f, "SELECT %lld (\"database\") refused by %s: %s",
               (long long)cfg->database, cfg->ep->display, said);
    l->failed = 1;
}

static int s_login(struct redis_conn *c, const struct redis_conn_config *cfg, int64_t until,
                   struct redis_failure *f)
{
    char *auth = NULL, *sel = NULL, *buf = NULL;
    int alen = 0, slen = 0, rc = -1;
    if (cfg->password) {
        const char *argv[3] = {"AUTH"};
        size_t lens[3] = {4};
        int argc = 1;
        if (cfg->username) {
            argv[argc] = cfg->username;
            lens[argc++] = strlen(cfg->username);
        }
        argv[argc] = cfg->password;
        lens[argc++] = cfg->password_len;
        alen = redisFormatCommandArgv(&auth, argc, argv, lens);
    }
    if (cfg->database) {
        char db[24];
        snprintf(db, sizeof db, "%lld", (long long)cfg->database);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, strlen(db)};
        slen = redisFormatCommandArgv(&sel, 2, argv, lens);
    }
    if (alen < 0 || slen < 0 || (cfg->password && !auth) || (cfg->database && !sel) ||
        !(buf = malloc((size_t)alen + (size_t)slen + 1))) {
        s_fail(f, FANOUT_RETRY, "OutOfMemory", "out of memory");
        goto out;
    }
    if (alen)
        memcpy(buf, auth, (size_t)alen);
    if (slen)
        memcpy(buf + alen, sel, (size_t)slen);
    struct s_login l = {.cfg = cfg, .auth = cfg->password != NULL, .f = f};
    size_t got;
    size_t want = (size_t)(alen > 0) + (size_t)(slen > 0);
    if (want == 0) {
        /* Nothing to log in with. A server that sends bytes on connect is
         * caught by the first exchange's closing PING. */
        rc = 0;
        goto out;
    }
    size_t ends[2] = {(size_t)(alen > 0 ? alen : alen + slen), (size_t)(alen + slen)};
    struct iovec seg = {.iov_base = buf, .iov_len = (size_t)(alen + slen)};
    if (redis_conn_exchange(c, &seg, 1, ends, NULL, want, s_login_reply, &l,
                            cfg->timeout_ms, until, &got, f) != 0) {
        /* `until` is the connect limit, not necessarily the deadline. */
        if (strcmp(f->code, "Timeout") == 0)
            s_msgf(f,
                   "no reply to %s from %s within %d ms (timeoutMs, or the invocation's "
                   "deadline)",
                   cfg->password ? "AUTH" : "SELECT", cfg->ep->display, cfg->timeout_ms);
        goto out;
    }
    rc = l.failed ? -1 : 0;
out:
    /* The password does not linger in freed memory. */
    if (auth)
        explicit_bzero(auth, (size_t)alen);
    if (buf)
        explicit_bzero(buf, (size_t)alen);
    redisFreeCommand(auth);
    redisFreeCommand(sel);
    free(buf);
    return rc;
}

/* ---- connections ------------------------------------------------------- */

struct redis_conn *redis_conn_open(const struct redis_conn_config *cfg, int64_t deadline_ms,
                                   struct redis_failure *f)
{
    int64_t until = redis_now_ms() + cfg->timeout_ms;
    if (until > deadline_ms)
        until = deadline_ms;
    struct redis_conn *c = calloc(1, sizeof *c);
    if (!c) {
        s_fail(f, FANOUT_RETRY, "OutOfMemory", "out of memory");
        return NULL;
    }
    c->ep = cfg->ep;
    c->host = cfg->host;
    c->scope = cfg->scope;
    c->marker = 1;
    c->fd = s_tcp_connect(cfg, until, f);
    if (c->fd < 0)
        goto fail;
    if (cfg->tls && s_tls_handshake(c, cfg, until, f) != 0)
        goto fail;
    if (s_login(c, cfg, until, f) != 0)
        goto fail;
    return c;
fail:
    redis_conn_close(c);
    return NULL;
}

int redis_conn_alive(struct redis_conn *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int r = poll(&p, 1, 0);
    if (r == 0)
        return 1;
    if (r < 0 || (p.revents & (POLLERR | POLLHUP | POLLNVAL)) || !c->ssl)
        return 0; /* an EOF, a reset, or bytes nobody asked for */
    /* TLS: the bytes may be a post-handshake message (a TLS 1.3 session
     * ticket); let OpenSSL consume it and see whether data follows. */
    char b;
    ERR_clear_error();
    int n = SSL_peek(c->ssl, &b, 1);
    int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, n);
    ERR_clear_error();
    return n <= 0 && e == SSL_ERROR_WANT_READ;
}

void redis_conn_close(struct redis_conn *c)
{
    if (!c)
        return;
    if (c->ssl) {
        /* No close_notify: the connection is being dropped, often because
         * it is already broken, and waiting for the peer helps nobody. */
        SSL_free(c->ssl);
        ERR_clear_error();
    }
    if (c->fd >= 0)
        close(c->fd);
    if (c->stage) /* AUTH's password may have passed through it */
        explicit_bzero(c->stage, REDIS_TLS_STAGE);
    free(c->stage);
    free(c);
}
