/* The Runtime API's HTTP/1.1 client: rt_http.h. Blocking I/O on one
 * socket; the reply is read through a 16 KiB buffer that header lines and
 * chunk size lines must fit in, and the body goes to the sink as it comes,
 * without a copy of its own. */
#include "core/rt_http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/util.h"

#ifndef FANOUT_VERSION
#define FANOUT_VERSION "dev"
#endif

/* s_exchange_once's outcome when the peer had closed a kept-alive
 * connection before the request: nothing of a reply came, so the request
 * can be sent again on a new connection. */
#define S_STALE (-2)
/* A Content-Length beyond any reply we could hold. */
#define S_MAX_CONTENT_LENGTH ((unsigned long long)1 << 48)

/* ---- connection ------------------------------------------------------------ */

static int s_port_ok(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 5 || strspn(p, "0123456789") != n)
        return 0;
    long v = strtol(p, NULL, 10);
    return v >= 1 && v <= 65535;
}

int fanout_rt_http_init(struct fanout_rt_http *c, const char *api, int connect_timeout_ms,
                        char *err, size_t err_len)
{
    c->fd = -1;
    c->used = 0;
    c->in_off = c->in_len = 0;
    c->connect_timeout_ms = connect_timeout_ms;
    c->status = 0;
    size_t n = api ? strlen(api) : 0;
    if (n == 0 || n >= sizeof c->host) {
        snprintf(err, err_len, "the Runtime API address is empty or longer than %zu bytes",
                 sizeof c->host - 1);
        return -1;
    }
    memcpy(c->host, api, n + 1);
    const char *port = NULL;
    size_t node_len;
    if (api[0] == '[') {
        const char *close = strchr(api, ']');
        if (!close || (close[1] != 0 && close[1] != ':')) {
            snprintf(err, err_len, "the Runtime API address \"%s\" is not [v6]:port", api);
            return -1;
        }
        node_len = (size_t)(close - api - 1);
        memcpy(c->node, api + 1, node_len);
        port = close[1] == ':' ? close + 2 : NULL;
    } else {
        const char *colon = strchr(api, ':');
        if (colon && strchr(colon + 1, ':')) {
            snprintf(err, err_len,
                     "the Runtime API address \"%s\": an IPv6 address needs brackets", api);
            return -1;
        }
        node_len = colon ? (size_t)(colon - api) : n;
        memcpy(c->node, api, node_len);
        port = colon ? colon + 1 : NULL;
    }
    c->node[node_len] = 0;
    if (node_len == 0 || (port && !s_port_ok(port))) {
        snprintf(err, err_len,
                 "the Runtime API address \"%s\" is not host:port (port 1-65535)", api);
        return -1;
    }
    fanout_strlcpy(c->port, port ? port : "80", sizeof c->port);
    return 0;
}

void fanout_rt_http_close(struct fanout_rt_http *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->used = 0;
    c->in_off = c->in_len = 0;
}

/* One address: 0 with *fd_out set, else an errno. */
static int s_connect_one(const struct addrinfo *ai, int timeout_ms, int *fd_out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    if (fd < 0)
        return errno;
    int e = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        e = errno;
        if (e == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int r;
            while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
                ;
            socklen_t len = sizeof e;
            if (r == 0)
                e = ETIMEDOUT;
            else if (r < 0)
                e = errno;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
                e = errno;
        }
    }
    int flags = fcntl(fd, F_GETFL);
    if (!e && (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0))
        e = errno;
    if (e) {
        close(fd);
        return e;
    }
    int one = 1; /* a request goes out in one write: no need to wait for acks */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *fd_out = fd;
    return 0;
}

static int s_connect(struct fanout_rt_http *c, char *err, size_t err_len)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(c->node, c->port, &hints, &res);
    if (g != 0) {
        snprintf(err, err_len, "cannot resolve the Runtime API host \"%s\": %s", c->node,
                 g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
        return -1;
    }
    int e = ENOENT, fd = -1;
    for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        e = s_connect_one(ai, c->connect_timeout_ms, &fd);
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, err_len, "connect to %s: %s", c->host, strerror(e));
        return -1;
    }
    c->fd = fd;
    c->used = 0;
    c->in_off = c->in_len = 0;
    return 0;
}

/* ---- sending ------------------------------------------------------------------- */

/* All of iov out: 0, or an errno. */
static int s_send_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* ---- receiving ----------------------------------------------------------------- */

/* Per-reply reading state. */
struct s_rx {
    struct fanout_rt_http *c;
    int got_bytes; /* any byte of the reply arrived */
    int eof;
    int error; /* errno of a failed recv */
};

/* More bytes into the buffer: >0 read, 0 at the end of the connection,
 * -1 on an error (rx->error). */
static ssize_t s_fill(struct s_rx *rx)
{
    struct fanout_rt_http *c = rx->c;
    if (c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    ssize_t r;
    do
        r = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
    while (r < 0 && errno == EINTR);
    if (r > 0) {
        c->in_len += (size_t)r;
        rx->got_bytes = 1;
    } else if (r == 0) {
        rx->eof = 1;
    } else {
        rx->error = errno;
    }
    return r;
}

/* Printable copy of untrusted bytes for an error message. */
static const char *s_shown(const char *s, size_t n, char *out, size_t out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < out_len; i++)
        out[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (o + 4 >= out_len && n > o) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
    return out;
}

/* What ended a read early, for an error message. */
static void s_rx_error(const struct s_rx *rx, const char *what, char *err, size_t err_len)
{
    if (rx->eof)
        snprintf(err, err_len, "the Runtime API closed the connection %s", what);
    else
        snprintf(err, err_len, "reading the reply %s: %s", what, strerror(rx->error));
}

/* One line without its CR LF (a bare LF is taken too), pointing into the
 * buffer until the next read. 0, or -1 with `err` set. */
static int s_line(struct s_rx *rx, const char **line, size_t *len, const char *what,
                  char *err, size_t err_len)
{
    struct fanout_rt_http *c = rx->c;
    for (;;) {
        char *start = c->in + c->in_off;
        size_t avail = c->in_len - c->in_off;
        char *nl = memchr(start, '\n', avail);
        size_t n = nl ? (size_t)(nl - start) : avail;
        if (n > FANOUT_RT_HTTP_MAX_LINE) {
            snprintf(err, err_len, "a reply %s is longer than %d bytes", what,
                     FANOUT_RT_HTTP_MAX_LINE);
            return -1;
        }
        if (nl) {
            c->in_off += n + 1;
            if (n && start[n - 1] == '\r')
                n--;
            *line = start;
            *len = n;
            return 0;
        }
        if (s_fill(rx) <= 0) {
            char where[64];
            snprintf(where, sizeof where, "in the middle of a %s", what);
            s_rx_error(rx, where, err, err_len);
            return -1;
        }
    }
}

static int s_is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* The reply's framing, from its headers. */
struct s_frame {
    int minor; /* HTTP/1.minor */
    int status;
    int chunked;
    int has_length;
    unsigned long long length;
    int close;      /* Connection: close */
    int keep_alive; /* Connection: keep-alive (HTTP/1.0) */
};

/* "HTTP/1.x nnn[ reason]" */
static int s_status_line(const char *l, size_t n, struct s_frame *f, char *err,
                         size_t err_len)
{
    if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || l[7] < '0' || l[7] > '9' || l[8] != ' ' ||
        l[9] < '1' || l[9] > '9' || l[10] < '0' || l[10] > '9' || l[11] < '0' ||
        l[11] > '9' || (n > 12 && l[12] != ' ')) {
        char shown[64];
        snprintf(err, err_len,
                 "the Runtime API's reply does not start with an HTTP/1.x "
                 "status line: \"%s\"",
                 s_shown(l, n, shown, sizeof shown));
        return -1;
    }
    f->minor = l[7] - '0';
    f->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    return 0;
}

/* One header line of a reply. `sink` is NULL for an interim reply. */
static int s_header(const char *l, size_t n, struct s_frame *f,
                    const struct fanout_rt_http_sink *sink, char *err, size_t err_len)
{
    char shown[64];
    const char *colon = memchr(l, ':', n);
    size_t name_len = colon ? (size_t)(colon - l) : 0;
    for (size_t i = 0; i < name_len; i++)
        if (!s_is_tchar(l[i]))
            name_len = 0;
    if (name_len == 0) {
        /* a line starting with a space is an obsolete continuation */
        snprintf(err, err_len, "a reply header line is not \"name: value\": \"%s\"",
                 s_shown(l, n, shown, sizeof shown));
        return -1;
    }
    const char *v = colon + 1;
    size_t vn = n - name_len - 1;
    while (vn && (*v == ' ' || *v == '\t')) {
        v++;
        vn--;
    }
    while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
        vn--;
    if (memchr(v, 0, vn)) {
        snprintf(err, err_len, "the reply header %.*s holds a NUL byte", (int)name_len, l);
        return -1;
    }

    if (name_len == 14 && strncasecmp(l, "Content-Length", 14) == 0) {
        unsigned long long len = 0;
        size_t i = 0;
        for (; i < vn && v[i] >= '0' && v[i] <= '9' && len <= S_MAX_CONTENT_LENGTH; i++)
            len = len * 10 + (unsigned)(v[i] - '0');
        if (vn == 0 || i != vn || len > S_MAX_CONTENT_LENGTH ||
            (f->has_length && f->length != len)) {
            snprintf(err, err_len, "bad Content-Length in the reply: \"%s\"",
                     s_shown(v, vn, shown, sizeof shown));
            return -1;
        }
        f->has_length = 1;
        f->length = len;
    } else if (name_len == 17 && strncasecmp(l, "Transfer-Encoding", 17) == 0) {
        if (!(vn == 7 && strncasecmp(v, "chunked", 7) == 0)) {
            snprintf(err, err_len,
                     "the reply's Transfer-Encoding \"%s\" is not supported (only chunked)",
                     s_shown(v, vn, shown, sizeof shown));
            return -1;
        }
        f->chunked = 1;
    } else if (name_len == 10 && strncasecmp(l, "Connection", 10) == 0) {
        f->close |= fanout_list_has_token(v, vn, "close");
        f->keep_alive |= fanout_list_has_token(v, vn, "keep-alive");
    }
    if (sink && sink->on_header && sink->on_header(sink->ud, l, name_len, v, vn) != 0) {
        snprintf(err, err_len, "the reply was refused at its %.*s header", (int)name_len,
                 l);
        return -1;
    }
    return 0;
}

/* The status line and headers of the final reply (interim 1xx skipped). */
static int s_head(struct s_rx *rx, const struct fanout_rt_http_sink *sink,
                  struct s_frame *f, char *err, size_t err_len)
{
    for (;;) {
        const char *l;
        size_t n;
        memset(f, 0, sizeof *f);
        if (s_line(rx, &l, &n, "status line", err, err_len) != 0)
            return -1;
        if (s_status_line(l, n, f, err, err_len) != 0)
            return -1;
        int interim = f->status < 200 && f->status != 101;
        for (int count = 0;; count++) {
            if (s_line(rx, &l, &n, "header line", err, err_len) != 0)
                return -1;
            if (n == 0)
                break;
            if (count == FANOUT_RT_HTTP_MAX_HEADERS) {
                snprintf(err, err_len, "the reply has more than %d header lines",
                         FANOUT_RT_HTTP_MAX_HEADERS);
                return -1;
            }
            if (s_header(l, n, f, interim ? NULL : sink, err, err_len) != 0)
                return -1;
        }
        if (f->status == 101) {
            snprintf(err, err_len, "the Runtime API switched protocols (HTTP 101)");
            return -1;
        }
        if (!interim)
            return 0;
    }
}

/* `len` body bytes to the sink, or up to the end of the connection when
 * `to_eof`. */
static int s_body(struct s_rx *rx, unsigned long long len, int to_eof,
                  const struct fanout_rt_http_sink *sink, char *err, size_t err_len)
{
    struct fanout_rt_http *c = rx->c;
    for (;;) {
        size_t avail = c->in_len - c->in_off;
        size_t take = (!to_eof && avail > len) ? (size_t)len : avail;
        if (take) {
            if (sink && sink->on_body &&
                sink->on_body(sink->ud, c->in + c->in_off, take) != 0) {
                snprintf(err, err_len, "the reply body was refused by its reader");
                return -1;
            }
            c->in_off += take;
            len -= take;
        }
        if (!to_eof && len == 0)
            return 0;
        c->in_off = c->in_len = 0; /* all delivered: read into the whole buffer */
        if (s_fill(rx) <= 0) {
            if (to_eof && rx->eof)
                return 0;
            char where[96];
            if (to_eof)
                snprintf(where, sizeof where, "in the reply body");
            else
                snprintf(where, sizeof where, "%llu bytes before the end of the reply body",
                         len);
            s_rx_error(rx, where, err, err_len);
            return -1;
        }
    }
}

static int s_chunked_body(struct s_rx *rx, const struct fanout_rt_http_sink *sink,
                          char *err, size_t err_len)
{
    for (;;) {
        const char *l;
        size_t n;
        if (s_line(rx, &l, &n, "chunk size line", err, err_len) != 0)
            return -1;
        unsigned long long size = 0;
        size_t i = 0;
        for (; i < n && i < 13; i++) {
            char ch = l[i];
            int d = (ch >= '0' && ch <= '9')   ? ch - '0'
                    : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
                    : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10
                                               : -1;
            if (d < 0)
                break;
            size = size * 16 + (unsigned)d;
        }
        if (i == 0 || (i < n && l[i] != ';' && l[i] != ' ' && l[i] != '\t')) {
            char shown[64];
            snprintf(err, err_len, "bad chunk size line in the reply: \"%s\"",
                     s_shown(l, n, shown, sizeof shown));
            return -1;
        }
        if (size == 0)
            break;
        if (s_body(rx, size, 0, sink, err, err_len) != 0)
            return -1;
        if (s_line(rx, &l, &n, "chunk end", err, err_len) != 0)
            return -1;
        if (n != 0) {
            snprintf(err, err_len,
                     "a chunk of the reply is longer than its size line says");
            return -1;
        }
    }
    /* trailer fields, ignored, up to the empty line */
    for (int count = 0;; count++) {
        const char *l;
        size_t n;
        if (s_line(rx, &l, &n, "trailer line", err, err_len) != 0)
            return -1;
        if (n == 0)
            return 0;
        if (count == FANOUT_RT_HTTP_MAX_HEADERS) {
            snprintf(err, err_len, "the reply has more than %d trailer lines",
                     FANOUT_RT_HTTP_MAX_HEADERS);
            return -1;
        }
    }
}

/* ---- one exchange ------------------------------------------------------------------ */

static int s_exchange_once(struct fanout_rt_http *c,
                           const struct fanout_rt_http_request *req,
                           const struct fanout_rt_http_sink *sink, char *err,
                           size_t err_len)
{
    char head[2048];
    int n = snprintf(
        head, sizeof head, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fanout/%s\r\n%s",
        req->method, req->path, c->host, FANOUT_VERSION, req->headers ? req->headers : "");
    if (n > 0 && (size_t)n < sizeof head && req->body)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n",
                      req->body_len);
    if (n > 0 && (size_t)n < sizeof head)
        n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    if (n <= 0 || (size_t)n >= sizeof head) {
        snprintf(err, err_len, "%s %s: the request head is longer than %zu bytes",
                 req->method, req->path, sizeof head - 1);
        return -1;
    }
    struct iovec iov[2] = {{head, (size_t)n}, {(void *)req->body, req->body_len}};
    int e = s_send_all(c->fd, iov, req->body && req->body_len ? 2 : 1);
    if (e) {
        snprintf(err, err_len, "sending %s %s: %s", req->method, req->path, strerror(e));
        return e == EPIPE || e == ECONNRESET ? S_STALE : -1;
    }

    struct s_rx rx = {.c = c};
    struct s_frame f;
    if (s_head(&rx, sink, &f, err, err_len) != 0)
        return !rx.got_bytes && (rx.eof || rx.error == ECONNRESET) ? S_STALE : -1;
    c->status = f.status;
    int rc = 0;
    int keep = f.minor >= 1 ? !f.close : f.keep_alive && !f.close;
    if (strcmp(req->method, "HEAD") == 0 || f.status == 204 || f.status == 304) {
        /* no body */
    } else if (f.chunked) {
        rc = s_chunked_body(&rx, sink, err, err_len);
        keep = keep && !f.has_length; /* both framings: trust neither again */
    } else if (f.has_length) {
        rc = s_body(&rx, f.length, 0, sink, err, err_len);
    } else {
        rc = s_body(&rx, 0, 1, sink, err, err_len);
        keep = 0;
    }
    if (rc != 0)
        return -1;
    if (c->in_off != c->in_len)
        keep = 0; /* bytes nobody asked for: the connection is out of step */
    if (!keep)
        fanout_rt_http_close(c);
    else
        c->used = 1;
    return f.status;
}

int fanout_rt_http_exchange(struct fanout_rt_http *c,
                            const struct fanout_rt_http_request *req,
                            const struct fanout_rt_http_sink *sink, char *err,
                            size_t err_len)
{
    for (int attempt = 0;; attempt++) {
        int reused = c->fd >= 0 && c->used;
        if (c->fd < 0 && s_connect(c, err, err_len) != 0)
            return -1;
        c->in_off = c->in_len = 0;
        c->status = 0;
        int rc = s_exchange_once(c, req, sink, err, err_len);
        if (rc >= 0)
            return rc;
        fanout_rt_http_close(c);
        /* the peer closed the idle connection: once more on a new one */
        if (rc == S_STALE && reused && attempt == 0)
            continue;
        return -1;
    }
}
