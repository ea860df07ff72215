/*
 * The memcached wire: ElastiCache auto-discovery and the per-node writes,
 * both over small socket clients of our own (text protocol). Every reply is
 * parsed here, bounded, and matched to the command it answers; libmemcached
 * never sees a server's bytes (it asserts on some replies, e.g. `OK` or a
 * number to a set, which would abort the process).
 *
 * Auto-discovery (AWS, "Adding Auto Discovery to your client library"):
 *   config get cluster\r\n
 *   CONFIG cluster 0 <len>\r\n<version>\n<host|ip|port> <host|ip|port>...\n\r\nEND\r\n
 * Engines before 1.4.14 answer `get AmazonElastiCache:cluster` instead, with
 * the same body in a VALUE reply. A plain memcached answers the first with
 * ERROR (and keeps the connection) and the second with END (a miss).
 */
#include <errno.h>
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

#include "memcached.h"

/* ---- time ---- */

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int s_left_ms(int64_t deadline)
{
    int64_t left = deadline - s_mono_ms();
    return left > 0 ? (int)left : 0;
}

/* Non-zero when fd is ready for `events` before the deadline. */
static int s_ready(int fd, short events, int64_t deadline)
{
    struct pollfd pf = {.fd = fd, .events = events};
    return poll(&pf, 1, s_left_ms(deadline)) > 0;
}

/* A reply line for an error message: printable ASCII, the rest as '?'. */
static void s_printable(const char *s, size_t n, char *out, size_t out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n && s[i] != '\r' && s[i] != '\n' && o + 4 < out_len; i++)
        out[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (o + 4 >= out_len && o >= 3)
        memcpy(out + o - 3, "...", 3);
    out[o] = 0;
}

/* ---- the discovery client ---- */

static int s_connect(const struct mc_endpoint *ep, int64_t deadline, char *err, size_t n)
{
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)ep->port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(ep->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, n, "cannot resolve %s: %s", ep->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    snprintf(err, n, "cannot connect to %s:%u", ep->host, (unsigned)ep->port);
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0)
            continue;
        int e = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            e = errno;
            if (e == EINPROGRESS) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                int r = poll(&p, 1, s_left_ms(deadline));
                socklen_t len = sizeof e;
                if (r == 0)
                    e = ETIMEDOUT;
                else if (r < 0)
                    e = errno;
                else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
                    e = errno;
            }
        }
        if (e) {
            snprintf(err, n, "cannot connect to %s:%u: %s", ep->host, (unsigned)ep->port,
                     e == ETIMEDOUT ? "timed out" : strerror(e));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

static int s_send_all(int fd, const char *p, size_t len, int64_t deadline, char *err,
                      size_t n)
{
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (s_ready(fd, POLLOUT, deadline))
                continue;
            snprintf(err, n, "timed out sending the discovery command");
            return -1;
        }
        snprintf(err, n, "sending the discovery command: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static const char *s_find(const char *h, size_t hn, const char *needle)
{
    size_t nn = strlen(needle);
    for (size_t i = 0; i + nn <= hn; i++)
        if (memcmp(h + i, needle, nn) == 0)
            return h + i;
    return NULL;
}

long mc_discovery_complete(const char *b, size_t len)
{
    const char *eol = s_find(b, len, "\r\n");
    if (!eol)
        return len > 512 ? -1 : 0; /* no first line that long */
    size_t line = (size_t)(eol - b) + 2;
    if (!strncmp(b, "CONFIG ", 7) || !strncmp(b, "VALUE ", 6)) {
        /* The body cannot hold a CR (host names, addresses, numbers), so
         * the reply ends at the first "\r\nEND\r\n" after the header. A
         * header's <len> that disagrees with the body is tolerated. */
        const char *end = s_find(eol, len - (size_t)(eol - b), "\r\nEND\r\n");
        return end ? (long)(end - b) + 7 : 0;
    }
    return (long)line; /* ERROR, END, CLIENT_ERROR ..., SERVER_ERROR ... */
}

/* Send `cmd` and read one reply into *reply (NUL-terminated). */
static int s_ask(int fd, const char *cmd, int64_t deadline, char **reply, size_t *reply_len,
                 char *err, size_t n)
{
    *reply = NULL;
    if (s_send_all(fd, cmd, strlen(cmd), deadline, err, n) != 0)
        return -1;
    size_t cap = 4096, len = 0;
    char *b = malloc(cap + 1);
    if (!b) {
        snprintf(err, n, "out of memory");
        return -1;
    }
    for (;;) {
        long done = mc_discovery_complete(b, len);
        if (done > 0) {
            b[done] = 0;
            *reply = b;
            *reply_len = (size_t)done;
            return 0;
        }
        if (done < 0 || len >= MC_MAX_DISCOVERY_REPLY) {
            char first[80];
            s_printable(b, len, first, sizeof first);
            snprintf(err, n, "the reply to \"%.*s\" is not understood (starts \"%s\")",
                     (int)strcspn(cmd, "\r"), cmd, first);
            free(b);
            return -1;
        }
        if (len == cap) {
            cap *= 2;
            char *nb = realloc(b, cap + 1);
            if (!nb) {
                free(b);
                snprintf(err, n, "out of memory");
                return -1;
            }
            b = nb;
        }
        ssize_t r = recv(fd, b + len, cap - len, 0);
        if (r > 0) {
            len += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (s_ready(fd, POLLIN, deadline))
                continue;
            snprintf(err, n, "no complete reply to \"%.*s\" within the timeout",
                     (int)strcspn(cmd, "\r"), cmd);
        } else {
            snprintf(err, n, "the connection closed before the reply to \"%.*s\" ended%s%s",
                     (int)strcspn(cmd, "\r"), cmd, r < 0 ? ": " : "",
                     r < 0 ? strerror(errno) : "");
        }
        free(b);
        return -1;
    }
}

static int s_valid_host(const char *s, size_t n)
{
    if (n == 0 || n > MC_MAX_HOST)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == ':'))
            return 0;
    }
    return 1;
}

struct mc_config *mc_config_parse(const char *body, size_t len, char *err, size_t n)
{
    const char *nl = memchr(body, '\n', len);
    if (!nl) {
        snprintf(err, n, "the configuration has no version line");
        return NULL;
    }
    uint64_t version = 0;
    const char *p = body;
    while (p < nl && *p == ' ')
        p++;
    if (p == nl || *p < '0' || *p > '9') {
        snprintf(err, n, "the configuration's version is not a number");
        return NULL;
    }
    for (; p < nl && *p >= '0' && *p <= '9'; p++) {
        if (version > (UINT64_MAX - 9) / 10) {
            snprintf(err, n, "the configuration's version is too large");
            return NULL;
        }
        version = version * 10 + (uint64_t)(*p - '0');
    }
    while (p < nl && (*p == ' ' || *p == '\r'))
        p++;
    if (p != nl) {
        snprintf(err, n, "the configuration's version is not a number");
        return NULL;
    }
    struct mc_config *cfg = calloc(1, sizeof *cfg + MC_MAX_NODES * sizeof cfg->nodes[0]);
    if (!cfg) {
        snprintf(err, n, "out of memory");
        return NULL;
    }
    cfg->version = version;
    const char *end = body + len;
    p = nl + 1;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++;
        if (p == end)
            break;
        const char *tok = p;
        while (p < end && *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
            p++;
        size_t tlen = (size_t)(p - tok);
        const char *bar1 = memchr(tok, '|', tlen);
        const char *bar2 =
            bar1 ? memchr(bar1 + 1, '|', (size_t)(tok + tlen - bar1 - 1)) : NULL;
        size_t hlen = bar1 ? (size_t)(bar1 - tok) : 0;
        size_t iplen = bar2 ? (size_t)(bar2 - bar1 - 1) : 0;
        const char *port = bar2 ? bar2 + 1 : NULL;
        size_t plen = port ? (size_t)(tok + tlen - port) : 0;
        unsigned long pv = 0;
        int ok =
            bar2 && plen >= 1 && plen <= 5 && (hlen || iplen) &&
            (!hlen || s_valid_host(tok, hlen)) &&
            (!iplen || (iplen < sizeof cfg->nodes[0].ip && s_valid_host(bar1 + 1, iplen)));
        for (size_t i = 0; ok && i < plen; i++) {
            ok = port[i] >= '0' && port[i] <= '9';
            pv = pv * 10 + (unsigned long)(port[i] - '0');
        }
        if (!ok || pv == 0 || pv > 65535) {
            char shown[80];
            s_printable(tok, tlen, shown, sizeof shown);
            snprintf(err, n, "node \"%s\" is not host|ip|port", shown);
            free(cfg);
            return NULL;
        }
        if (cfg->count == MC_MAX_NODES) {
            snprintf(err, n, "the configuration lists more than %d nodes", MC_MAX_NODES);
            free(cfg);
            return NULL;
        }
        struct mc_node *nd = &cfg->nodes[cfg->count];
        /* ketama hashes the host name, as AWS's own libmemcached-based
         * cluster client does; the address only when there is no name. */
        const char *name = hlen ? tok : bar1 + 1;
        size_t nlen = hlen ? hlen : iplen;
        memcpy(nd->ep.host, name, nlen);
        nd->ep.host[nlen] = 0;
        memcpy(nd->ip, bar1 + 1, iplen);
        nd->ip[iplen] = 0;
        nd->ep.port = (uint16_t)pv;
        for (size_t i = 0; i < cfg->count; i++)
            if (cfg->nodes[i].ep.port == nd->ep.port &&
                strcmp(cfg->nodes[i].ep.host, nd->ep.host) == 0) {
                snprintf(err, n, "node %s:%u is listed twice", nd->ep.host,
                         (unsigned)nd->ep.port);
                free(cfg);
                return NULL;
            }
        cfg->count++;
    }
    if (!cfg->count) {
        snprintf(err, n, "the configuration (version %llu) lists no nodes",
                 (unsigned long long)version);
        free(cfg);
        return NULL;
    }
    return cfg;
}

/* The body of a CONFIG/VALUE reply, between the header line and END. */
struct mc_config *mc_discovery_parse(const char *reply, size_t len, char *err, size_t n)
{
    /* Checked again here (the fuzzer calls this directly): the reply ends
     * with "\r\nEND\r\n" after the header line's CRLF, or right at it for
     * an empty body. */
    const char *eol = s_find(reply, len, "\r\n");
    if (!eol || len < 7 || reply + len - 7 < eol ||
        memcmp(reply + len - 7, "\r\nEND\r\n", 7)) {
        snprintf(err, n, "the configuration reply does not end with END");
        return NULL;
    }
    const char *tail = reply + len - 7;
    const char *body = tail == eol ? tail : eol + 2;
    return mc_config_parse(body, (size_t)(tail - body), err, n);
}

enum mc_discovery mc_discover(const struct mc_endpoint *ep, int timeout_ms,
                              struct mc_config **out, char *err, size_t n)
{
    *out = NULL;
    int64_t deadline = s_mono_ms() + timeout_ms;
    int fd = s_connect(ep, deadline, err, n);
    if (fd < 0)
        return MC_FAILED;
    enum mc_discovery result = MC_FAILED;
    char *reply = NULL;
    size_t len = 0;
    char why[200];
    if (s_ask(fd, "config get cluster\r\n", deadline, &reply, &len, why, sizeof why) != 0)
        goto done;
    if (!strncmp(reply, "CONFIG ", 7)) {
        *out = mc_discovery_parse(reply, len, why, sizeof why);
        if (*out)
            result = MC_DISCOVERED;
        goto done;
    }
    if (strcmp(reply, "ERROR\r\n") != 0 && strncmp(reply, "CLIENT_ERROR", 12) != 0 &&
        strncmp(reply, "SERVER_ERROR", 12) != 0) {
        char first[80];
        s_printable(reply, len, first, sizeof first);
        snprintf(why, sizeof why, "unexpected reply to \"config get cluster\": \"%s\"",
                 first);
        goto done;
    }
    /* Not the 1.4.14+ command: an older ElastiCache engine, or plain memcached. */
    free(reply);
    reply = NULL;
    if (s_ask(fd, "get AmazonElastiCache:cluster\r\n", deadline, &reply, &len, why,
              sizeof why) != 0)
        goto done;
    if (!strncmp(reply, "VALUE ", 6)) {
        *out = mc_discovery_parse(reply, len, why, sizeof why);
        if (*out)
            result = MC_DISCOVERED;
    } else {
        result = MC_PLAIN; /* END (a miss), or an error: not a config endpoint */
    }
done:
    if (result == MC_FAILED)
        snprintf(err, n, "%s:%u: %s", ep->host, (unsigned)ep->port, why);
    free(reply);
    close(fd);
    return result;
}

/* ---- replies ---- */

static int s_is(const char *line, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len == n && memcmp(line, word, n) == 0;
}

/* "WORD" alone or "WORD <text>". */
static int s_starts(const char *line, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len >= n && memcmp(line, word, n) == 0 && (len == n || line[n] == ' ');
}

int mc_reply_next(const char *buf, size_t len, struct mc_reply *r, size_t *used)
{
    size_t max = len < MC_MAX_REPLY_LINE + 2 ? len : MC_MAX_REPLY_LINE + 2;
    size_t i = 0;
    while (i < max && buf[i] != '\r' && buf[i] != '\n')
        i++;
    if (i == max)
        return len >= MC_MAX_REPLY_LINE + 2 ? -1 : 0;
    if (buf[i] == '\n')
        return -1; /* a bare LF: not the protocol's CRLF */
    if (i + 1 == len)
        return 0; /* the CR came, the LF not yet */
    if (buf[i + 1] != '\n')
        return -1;
    r->line = buf;
    r->len = i;
    *used = i + 2;
    if (s_is(buf, i, "STORED"))
        r->kind = MC_REPLY_STORED;
    else if (s_is(buf, i, "NOT_STORED"))
        r->kind = MC_REPLY_NOT_STORED;
    else if (s_is(buf, i, "EXISTS"))
        r->kind = MC_REPLY_EXISTS;
    else if (s_is(buf, i, "NOT_FOUND"))
        r->kind = MC_REPLY_NOT_FOUND;
    else if (s_is(buf, i, "DELETED"))
        r->kind = MC_REPLY_DELETED;
    else if (s_is(buf, i, "ERROR"))
        r->kind = MC_REPLY_ERROR;
    else if (s_starts(buf, i, "CLIENT_ERROR"))
        r->kind = MC_REPLY_CLIENT_ERROR;
    else if (s_starts(buf, i, "SERVER_ERROR"))
        r->kind = MC_REPLY_SERVER_ERROR;
    else if (i > 8 && memcmp(buf, "VERSION ", 8) == 0)
        r->kind = MC_REPLY_VERSION;
    else
        r->kind = MC_REPLY_OTHER;
    return 1;
}

/* A reply line for a message: at most 80 printable characters. */
static void s_shown(const struct mc_reply *r, char *out, size_t n)
{
    if (r->len == 0) {
        snprintf(out, n, "(an empty line)");
        return;
    }
    char p[88];
    s_printable(r->line, r->len < 84 ? r->len : 84, p, sizeof p);
    snprintf(out, n, "\"%s%s\"", p, r->len > 84 ? "..." : "");
}

static void s_desync(struct mc_match *m, const char *fmt, ...) FANOUT_PRINTF(2, 3);
static void s_desync(struct mc_match *m, const char *fmt, ...)
{
    va_list ap;
    m->desync = 1;
    va_start(ap, fmt);
    vsnprintf(m->why, sizeof m->why, fmt, ap);
    va_end(ap);
}

/* The outcome of item `it` from its reply; 0, or -1 when the reply is not
 * one its command can get (out of step). */
static int s_judge(struct mc_match *m, struct mc_item *it, const struct mc_reply *r)
{
    const char *cmd = it->remove ? "delete" : "set";
    char shown[100];
    s_shown(r, shown, sizeof shown);
    switch (r->kind) {
    case MC_REPLY_STORED:
        if (it->remove)
            return -1;
        memset(it->outcome, 0, sizeof *it->outcome);
        return 0;
    case MC_REPLY_DELETED:
        if (!it->remove)
            return -1;
        memset(it->outcome, 0, sizeof *it->outcome);
        return 0;
    case MC_REPLY_NOT_FOUND:
        if (it->remove) { /* deleting a key that is not there */
            memset(it->outcome, 0, sizeof *it->outcome);
            return 0;
        }
        /* a set is confirmed by STORED only */
        __attribute__((fallthrough));
    case MC_REPLY_NOT_STORED:
    case MC_REPLY_EXISTS:
        if (it->remove && r->kind != MC_REPLY_NOT_FOUND)
            return -1; /* delete gets DELETED or NOT_FOUND */
        fanout_outcome_set(it->outcome, FANOUT_RETRY,
                           r->kind == MC_REPLY_EXISTS      ? "EXISTS"
                           : r->kind == MC_REPLY_NOT_FOUND ? "NOT_FOUND"
                                                           : "NOT_STORED",
                           "%s answered %s to the set of key \"%.64s\": not stored (only "
                           "STORED confirms a set)",
                           m->where, shown, it->key);
        return 0;
    case MC_REPLY_ERROR:
        /* The server did not take our command as one: it may read the data
         * block as commands next, so the connection is not reused. */
        m->drop = 1;
        fanout_outcome_set(it->outcome, FANOUT_RETRY, "ERROR",
                           "%s answered ERROR (unknown command) to the %s of key \"%.64s\"",
                           m->where, cmd, it->key);
        return 0;
    case MC_REPLY_CLIENT_ERROR:
        m->drop = 1;
        fanout_outcome_set(it->outcome, FANOUT_FATAL, "CLIENT_ERROR",
                           "%s refused the %s of key \"%.64s\": %s", m->where, cmd, it->key,
                           shown);
        return 0;
    case MC_REPLY_SERVER_ERROR:
        if (!it->remove && r->len >= 39 &&
            memcmp(r->line, "SERVER_ERROR object too large for cache", 39) == 0)
            fanout_outcome_set(
                it->outcome, FANOUT_FATAL, "SERVER_ERROR",
                "%s refused the item: \"SERVER_ERROR object too large for "
                "cache\" (key %zu + value %zu bytes; the server's item size "
                "limit, memcached -I / max_item_size, is below maxItemBytes)",
                m->where, it->key_len, it->value_len);
        else
            fanout_outcome_set(it->outcome, FANOUT_RETRY, "SERVER_ERROR",
                               "%s: %s to the %s of key \"%.64s\"", m->where, shown, cmd,
                               it->key);
        return 0;
    case MC_REPLY_VERSION:
    case MC_REPLY_OTHER: return -1;
    }
    return -1;
}

size_t mc_match_feed(struct mc_match *m, const char *buf, size_t len)
{
    size_t off = 0;
    while (!m->done && !m->desync) {
        struct mc_reply r;
        size_t used = 0;
        int k = mc_reply_next(buf + off, len - off, &r, &used);
        if (k == 0)
            break;
        if (k < 0) {
            char p[48];
            s_printable(buf + off, len - off < 40 ? len - off : 40, p, sizeof p);
            s_desync(m,
                     "%s sent reply %zu of %zu as no reply line (a line over %d bytes, or "
                     "without CRLF; starts \"%s\")",
                     m->where, m->got + 1, m->count + 1, MC_MAX_REPLY_LINE, p);
            break;
        }
        off += used;
        if (m->got == m->count) {
            if (r.kind != MC_REPLY_VERSION) {
                char shown[100];
                s_shown(&r, shown, sizeof shown);
                s_desync(m,
                         "%s answered %s where the reply to the closing \"version\" "
                         "(VERSION ...) was due: its replies are out of step with the "
                         "commands (an extra or missing reply)",
                         m->where, shown);
                break;
            }
            m->got++;
            m->done = 1;
            break;
        }
        struct mc_item *it = m->items[m->got];
        if (s_judge(m, it, &r) != 0) {
            char shown[100];
            s_shown(&r, shown, sizeof shown);
            s_desync(m,
                     "%s answered %s to the %s of key \"%.64s\" (reply %zu of %zu), which "
                     "that command cannot get: its replies are out of step with the "
                     "commands",
                     m->where, shown, it->remove ? "delete" : "set", it->key, m->got + 1,
                     m->count + 1);
            break;
        }
        m->got++;
    }
    return off;
}

void mc_match_end(struct mc_match *m, size_t extra)
{
    if (m->done && !m->desync && extra)
        s_desync(m,
                 "%s sent %zu byte(s) after the last reply of the exchange: more replies "
                 "than commands, so none is trusted",
                 m->where, extra);
}

/* ---- writes ---- */

struct mc_conn *mc_node_handle(const struct mc_endpoint *ep, int timeout_ms)
{
    (void)ep;
    (void)timeout_ms;
    struct mc_conn *c = calloc(1, sizeof *c);
    if (c)
        c->fd = -1;
    return c;
}

static void s_conn_close(struct mc_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->used = 0;
}

void mc_conn_free(struct mc_conn *c)
{
    if (!c)
        return;
    s_conn_close(c);
    free(c);
}

/* Non-zero when a kept connection has something to read (bytes nobody asked
 * for, or its EOF) or an error: it cannot carry a new exchange. */
static int s_pending(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) != 0;
}

/* The bytes of one item's command: header, value, CRLF. */
struct s_cursor {
    size_t item; /* == count: the marker */
    size_t off;  /* bytes of that command already written */
    char head[MC_MAX_KEY_BYTES + 64];
    size_t head_len;
};

static void s_head(struct s_cursor *w, const struct mc_item *it, time_t exp)
{
    int n = it->remove ? snprintf(w->head, sizeof w->head, "delete %s\r\n", it->key)
                       : snprintf(w->head, sizeof w->head, "set %s 0 %lld %zu\r\n", it->key,
                                  (long long)exp, it->value_len);
    w->head_len = n > 0 ? (size_t)n : 0;
}

static const char s_marker[] = "version\r\n";

/* Write what the socket takes. 1 when all is written, 0 when it would block,
 * -1 on an error (errno). */
static int s_write_some(int fd, struct s_cursor *w, struct mc_item *const *items,
                        size_t count, time_t exp, int *moved)
{
    for (;;) {
        struct iovec iov[3];
        int n = 0;
        size_t total;
        if (w->item == count) {
            total = sizeof s_marker - 1;
            iov[n++] = (struct iovec){(void *)s_marker, total};
        } else if (w->item > count) {
            return 1;
        } else {
            const struct mc_item *it = items[w->item];
            if (w->off == 0)
                s_head(w, it, exp);
            iov[n++] = (struct iovec){w->head, w->head_len};
            total = w->head_len;
            if (!it->remove) {
                iov[n++] = (struct iovec){(void *)it->value, it->value_len};
                iov[n++] = (struct iovec){(void *)"\r\n", 2};
                total += it->value_len + 2;
            }
        }
        /* skip what is written already */
        size_t skip = w->off;
        int first = 0;
        while (first < n && skip >= iov[first].iov_len) {
            skip -= iov[first].iov_len;
            first++;
        }
        iov[first].iov_base = (char *)iov[first].iov_base + skip;
        iov[first].iov_len -= skip;
        struct msghdr mh = {.msg_iov = iov + first, .msg_iovlen = (size_t)(n - first)};
        ssize_t k = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        w->off += (size_t)k;
        *moved = 1;
        if (w->off == total) {
            w->item++;
            w->off = 0;
        }
    }
}

enum s_end { S_DONE, S_LOST, S_TIMEOUT, S_DESYNC };

/* One exchange on node->mc: the items' commands, then `version`, written
 * while the replies are read and matched. */
static enum s_end s_exchange(struct mc_node *node, struct mc_item *const *items,
                             size_t count, time_t exp, int timeout_ms, int64_t deadline,
                             int by_invocation, struct mc_match *m, char *why,
                             size_t why_len)
{
    int fd = node->mc->fd;
    char in[MC_MAX_REPLY_LINE * 4];
    size_t in_len = 0;
    struct s_cursor w = {0};
    int64_t last = s_mono_ms();
    int written = 0;
    size_t received = 0;
    for (;;) {
        if (!written) {
            int moved = 0;
            int k = s_write_some(fd, &w, items, count, exp, &moved);
            if (k < 0) {
                snprintf(why, why_len, "sending to %s: %s", m->where, strerror(errno));
                return S_LOST;
            }
            written = k;
            if (moved)
                last = s_mono_ms();
        }
        ssize_t r = recv(fd, in + in_len, sizeof in - in_len, 0);
        if (r > 0) {
            in_len += (size_t)r;
            received += (size_t)r;
            size_t used = mc_match_feed(m, in, in_len);
            memmove(in, in + used, in_len - used);
            in_len -= used;
            /* A reply answers a command only once that command was written
             * entirely (commands 0 .. w.item-1): one that comes earlier was
             * not caused by it. */
            if (m->got > w.item) {
                s_desync(m,
                         "%s answered command %zu of %zu before it was sent entirely: a "
                         "reply nobody asked for",
                         m->where, w.item + 1, count + 1);
                return S_DESYNC;
            }
            if (m->desync)
                return S_DESYNC;
            if (m->done) {
                mc_match_end(m, in_len);
                return m->desync ? S_DESYNC : S_DONE;
            }
            if (in_len == sizeof in) { /* cannot happen: a line is shorter */
                s_desync(m, "%s sent an overlong reply", m->where);
                return S_DESYNC;
            }
            last = s_mono_ms();
            if (last < deadline)
                continue; /* (a steady stream still ends at the deadline) */
        } else if (r == 0) {
            snprintf(why, why_len,
                     "%s closed the connection after %zu of the %zu replies%s", m->where,
                     m->got, count + 1, in_len ? " (in the middle of one)" : "");
            return S_LOST;
        } else if (errno == EINTR) {
            continue;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            snprintf(why, why_len, "reading from %s after %zu of the %zu replies: %s",
                     m->where, m->got, count + 1, strerror(errno));
            return S_LOST;
        }
        int64_t now = s_mono_ms();
        int64_t until = last + timeout_ms < deadline ? last + timeout_ms : deadline;
        if (now >= until) {
            if (until == deadline && by_invocation && received == 0)
                snprintf(why, why_len, "%s: no reply before the invocation's deadline",
                         m->where);
            else if (until == deadline && received > 0)
                snprintf(why, why_len,
                         "%s: the exchange did not end in time (%zu of its %zu replies "
                         "came; the limit is timeoutMs plus 1 ms per 10 kB sent, within "
                         "the invocation's deadline)",
                         m->where, m->got, count + 1);
            else
                snprintf(why, why_len,
                         "%s: nothing received for %d ms (timeoutMs) after %zu of the %zu "
                         "replies",
                         m->where, timeout_ms, m->got, count + 1);
            return S_TIMEOUT;
        }
        struct pollfd p = {.fd = fd, .events = (short)(POLLIN | (written ? 0 : POLLOUT))};
        if (poll(&p, 1, (int)(until - now)) < 0 && errno != EINTR) {
            snprintf(why, why_len, "waiting for %s: %s", m->where, strerror(errno));
            return S_LOST;
        }
    }
}

/* Connect node->mc within the deadline; 0, or -1 with why. */
static int s_node_connect(struct mc_node *node, int64_t deadline, char *why, size_t why_len)
{
    int fd = s_connect(&node->ep, deadline, why, why_len);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    node->mc->fd = fd;
    node->mc->used = 0;
    return 0;
}

void mc_write_node(struct mc_node *node, struct mc_item *const *items, size_t count,
                   const struct mc_write_options *wo)
{
    char where[MC_MAX_HOST + 16];
    snprintf(where, sizeof where, "%s:%u", node->ep.host, (unsigned)node->ep.port);
    int64_t left = wo->host->remaining_ms();
    if (left < (int64_t)wo->timeout_ms + MC_DEADLINE_MARGIN_MS) {
        for (size_t j = 0; j < count; j++)
            fanout_outcome_set(items[j]->outcome, FANOUT_RETRY, "DeadlineNear",
                               "not sent to %s: too little time left before the "
                               "invocation's deadline",
                               where);
        return;
    }
    /* The whole exchange's limit: timeoutMs plus time for the bytes, and
     * never past the invocation's deadline (less the margin). */
    uint64_t bytes = 0;
    for (size_t i = 0; i < count; i++)
        bytes += items[i]->key_len + items[i]->value_len + 64;
    int64_t start = s_mono_ms();
    int64_t allow = (int64_t)wo->timeout_ms + (int64_t)(bytes / MC_BYTES_PER_MS);
    int by_invocation = 0;
    if (left != INT64_MAX && allow > left - MC_DEADLINE_MARGIN_MS) {
        allow = left - MC_DEADLINE_MARGIN_MS;
        by_invocation = 1;
    }
    int64_t deadline = start + allow;

    struct mc_match m = {0};
    enum s_end end = S_LOST;
    char why[320] = "";
    const char *code = "CONNECTION_FAILURE";
    for (int attempt = 0; attempt < 2; attempt++) {
        int reused = node->mc->fd >= 0 && node->mc->used;
        if (node->mc->fd >= 0 && s_pending(node->mc->fd)) {
            /* bytes nobody asked for (a late extra reply), or the EOF of a
             * connection closed while idle: never read them as answers */
            if (wo->host->log_enabled(FANOUT_LOG_DEBUG))
                wo->host->log(FANOUT_LOG_DEBUG, wo->scope,
                              "%s: the kept connection has unread bytes or was closed; "
                              "reconnecting",
                              where);
            s_conn_close(node->mc);
            reused = 0;
        }
        if (node->mc->fd < 0) {
            int64_t until = s_mono_ms() + wo->timeout_ms;
            if (s_node_connect(node, until < deadline ? until : deadline, why,
                               sizeof why) != 0) {
                code = "CONNECTION_FAILURE";
                end = S_LOST;
                break;
            }
        }
        m = (struct mc_match){.items = items, .count = count, .where = where};
        why[0] = 0;
        end = s_exchange(node, items, count, wo->expiration, wo->timeout_ms, deadline,
                         by_invocation, &m, why, sizeof why);
        node->mc->used = 1;
        if (end == S_DONE)
            break;
        s_conn_close(node->mc);
        code = end == S_TIMEOUT  ? "TIMEOUT"
               : end == S_DESYNC ? "PROTOCOL_ERROR"
                                 : "CONNECTION_FAILURE";
        /* A connection kept from an earlier invocation may have been closed
         * meanwhile: reconnect once when it failed before any reply (set and
         * delete are idempotent). */
        if (end == S_LOST && reused && m.got == 0 && attempt == 0 &&
            s_mono_ms() < deadline) {
            if (wo->host->log_enabled(FANOUT_LOG_DEBUG))
                wo->host->log(FANOUT_LOG_DEBUG, wo->scope, "%s; reconnecting once", why);
            continue;
        }
        break;
    }
    if (end == S_DONE) {
        if (m.drop)
            s_conn_close(node->mc);
    } else {
        /* Only the closing `version` reply, in its place, proves that the
         * replies before it answered these commands: out of step (an extra
         * reply shifts every one after it), or lost or late (a reply read
         * before the break may be a stray one that came before its command),
         * none of the exchange's replies is trusted. */
        size_t trusted = 0;
        const char *cause = end == S_DESYNC ? m.why : why;
        for (size_t j = trusted; j < count; j++)
            fanout_outcome_set(items[j]->outcome, FANOUT_RETRY, code,
                               "%s; no reply of the exchange is trusted (%zu of %zu came "
                               "before it ended)",
                               cause, m.got > count ? count : m.got, count);
        snprintf(node->last_code, sizeof node->last_code, "%s", code);
        snprintf(node->last_cause, sizeof node->last_cause, "%.150s", cause);
        wo->host->log(
            FANOUT_LOG_WARN, wo->scope,
            "%s: %s; %zu record(s) of this batch for it not confirmed (retryable)", code,
            cause, count - trusted);
    }
    /* Keys in order: after a record that will be sent again, a later one on
     * this node must not stay stored ahead of it (it could be the same key),
     * so it is sent again too. */
    size_t i = 0;
    while (i < count && items[i]->outcome->status != FANOUT_RETRY)
        i++;
    for (size_t k = i + 1; k < count; k++)
        if (items[k]->outcome->status == FANOUT_OK)
            fanout_outcome_set(items[k]->outcome, FANOUT_RETRY, "OrderKept",
                               "stored, but sent again after an earlier record for %s that "
                               "must be retried, to keep the order",
                               where);
}
