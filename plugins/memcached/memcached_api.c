/*
 * The memcached wire: ElastiCache auto-discovery over a small socket client
 * of our own, and the per-node writes through libmemcached.
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
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

/* How much of `b` is one complete reply: 0 not yet, -1 never will be. */
static long s_complete(const char *b, size_t len)
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
        long done = s_complete(b, len);
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
static struct mc_config *s_parse_reply(const char *reply, size_t len, char *err, size_t n)
{
    /* s_complete() made sure the reply ends with "\r\nEND\r\n" after the
     * header line's CRLF, or right at it for an empty body. */
    const char *eol = strstr(reply, "\r\n");
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
        *out = s_parse_reply(reply, len, why, sizeof why);
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
        *out = s_parse_reply(reply, len, why, sizeof why);
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

/* ---- writes through libmemcached ---- */

memcached_st *mc_node_handle(const struct mc_endpoint *ep, int timeout_ms)
{
    memcached_st *mc = memcached_create(NULL);
    if (!mc)
        return NULL;
    /* Text protocol, one reply per request: noreply and buffered requests
     * both lose the per-key result (libmemcached assumes success for
     * noreply, and memcached_purge() drops the replies of buffered
     * requests), so neither is used. No key checks of libmemcached's own
     * (its isgraph() test refuses UTF-8 keys the server accepts); ours run
     * before. A failed server is retried after the next second
     * (RETRY_TIMEOUT 0) rather than 2 s, and never ejected: there is only
     * this server in the handle, and keys must not move to another node
     * behind the readers' backs. */
    memcached_return_t rc = MEMCACHED_SUCCESS;
    const struct {
        memcached_behavior_t b;
        uint64_t v;
    } behaviours[] = {
        {MEMCACHED_BEHAVIOR_TCP_NODELAY, 1},
        {MEMCACHED_BEHAVIOR_TCP_KEEPALIVE, 1},
        {MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, (uint64_t)timeout_ms},
        {MEMCACHED_BEHAVIOR_POLL_TIMEOUT, (uint64_t)timeout_ms},
        {MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 0},
        {MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 0},
        {MEMCACHED_BEHAVIOR_NOREPLY, 0},
        {MEMCACHED_BEHAVIOR_BUFFER_REQUESTS, 0},
        {MEMCACHED_BEHAVIOR_VERIFY_KEY, 0},
    };
    for (size_t i = 0;
         i < sizeof behaviours / sizeof *behaviours && rc == MEMCACHED_SUCCESS; i++)
        rc = memcached_behavior_set(mc, behaviours[i].b, behaviours[i].v);
    if (rc == MEMCACHED_SUCCESS)
        rc = memcached_server_add(mc, ep->host, ep->port);
    if (rc != MEMCACHED_SUCCESS) {
        memcached_free(mc);
        return NULL;
    }
    return mc;
}

enum s_class { S_OK, S_FATAL, S_RETRY };

static enum s_class s_classify(memcached_return_t rc)
{
    switch (rc) {
    case MEMCACHED_SUCCESS:
    case MEMCACHED_STORED:
    case MEMCACHED_DELETED:
    case MEMCACHED_NOTFOUND: /* deleting a key that is not there */ return S_OK;
    case MEMCACHED_E2BIG:        /* SERVER_ERROR object too large for cache */
    case MEMCACHED_CLIENT_ERROR: /* the server refused the request itself */
    case MEMCACHED_BAD_KEY_PROVIDED:
    case MEMCACHED_KEY_TOO_BIG:
    case MEMCACHED_NOTSTORED: /* a set is never NOT_STORED; do not loop on it */
        return S_FATAL;
    default:
        /* connection, timeout, read/write failures, a disabled server,
         * SERVER_ERROR out of memory and other server-side errors, and
         * anything unknown: retryable, never dropped */
        return S_RETRY;
    }
}

/* Errors where a stale connection (closed while the function was frozen)
 * is the likely cause, worth one immediate reconnect. */
static int s_connection_error(memcached_return_t rc)
{
    return rc == MEMCACHED_CONNECTION_FAILURE || rc == MEMCACHED_WRITE_FAILURE ||
           rc == MEMCACHED_READ_FAILURE || rc == MEMCACHED_UNKNOWN_READ_FAILURE ||
           rc == MEMCACHED_PARTIAL_READ || rc == MEMCACHED_ERRNO;
}

/* The protocol's own word for an error (the server's SERVER_ERROR or
 * CLIENT_ERROR, else libmemcached's return code), as the outcome's code. */
static void s_code(memcached_st *mc, memcached_return_t rc, char *out, size_t n)
{
    static const struct {
        memcached_return_t rc;
        const char *name;
    } names[] = {
        {MEMCACHED_E2BIG, "SERVER_ERROR"},
        {MEMCACHED_SERVER_ERROR, "SERVER_ERROR"},
        {MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE, "SERVER_ERROR"},
        {MEMCACHED_CLIENT_ERROR, "CLIENT_ERROR"},
        {MEMCACHED_NOTSTORED, "NOT_STORED"},
        {MEMCACHED_CONNECTION_FAILURE, "CONNECTION_FAILURE"},
        {MEMCACHED_CONNECTION_SOCKET_CREATE_FAILURE, "CONNECTION_FAILURE"},
        {MEMCACHED_HOST_LOOKUP_FAILURE, "HOST_LOOKUP_FAILURE"},
        {MEMCACHED_WRITE_FAILURE, "WRITE_FAILURE"},
        {MEMCACHED_READ_FAILURE, "READ_FAILURE"},
        {MEMCACHED_UNKNOWN_READ_FAILURE, "READ_FAILURE"},
        {MEMCACHED_PARTIAL_READ, "READ_FAILURE"},
        {MEMCACHED_TIMEOUT, "TIMEOUT"},
        {MEMCACHED_ERRNO, "SYSTEM_ERROR"},
        {MEMCACHED_SERVER_TEMPORARILY_DISABLED, "SERVER_TEMPORARILY_DISABLED"},
        {MEMCACHED_SERVER_MARKED_DEAD, "SERVER_MARKED_DEAD"},
    };
    const char *c = NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names && !c; i++)
        if (names[i].rc == rc)
            c = names[i].name;
    if (!c)
        c = memcached_strerror(mc, rc);
    size_t i = 0;
    for (; c[i] && i + 1 < n; i++)
        out[i] = c[i] == ' ' ? '_' : c[i];
    out[i] = 0;
}

/* What libmemcached knows beyond its return code: the system error, or the
 * text of a SERVER_ERROR/CLIENT_ERROR line (its message reads "(0x...)
 * <what>, <text> -> file:line"; only <text> is kept). */
static void s_detail(memcached_st *mc, memcached_return_t rc, char *out, size_t n)
{
    out[0] = 0;
    if (memcached_last_error_errno(mc)) {
        snprintf(out, n, "%s", strerror(memcached_last_error_errno(mc)));
        return;
    }
    const char *m = memcached_last_error_message(mc);
    if (!m || (rc != MEMCACHED_SERVER_ERROR && rc != MEMCACHED_CLIENT_ERROR))
        return;
    const char *start = strstr(m, ", ");
    start = start ? start + 2 : m;
    const char *end = strstr(start, " -> ");
    size_t len = end ? (size_t)(end - start) : strlen(start);
    snprintf(out, n, "%.*s", (int)len, start);
}

static memcached_return_t s_write(struct mc_node *node, const struct mc_item *it,
                                  const struct mc_write_options *wo)
{
    if (it->remove)
        return memcached_delete(node->mc, it->key, it->key_len, 0);
    return memcached_set(node->mc, it->key, it->key_len, (const char *)it->value,
                         it->value_len, wo->expiration, 0);
}

static void s_fail(struct mc_node *node, const struct mc_item *it, memcached_return_t rc,
                   int status)
{
    char code[64], detail[160];
    s_code(node->mc, rc, code, sizeof code);
    const char *ep = node->ep.host;
    unsigned port = node->ep.port;
    if (rc == MEMCACHED_E2BIG) {
        fanout_outcome_set(it->outcome, status, code,
                           "%s:%u refused the item: \"SERVER_ERROR object too large for "
                           "cache\" (key %zu + value %zu bytes; the server's item size "
                           "limit, memcached -I / max_item_size, is below maxItemBytes)",
                           ep, port, it->key_len, it->value_len);
        return;
    }
    if (rc == MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE) {
        fanout_outcome_set(it->outcome, status, code,
                           "%s:%u: \"SERVER_ERROR out of memory storing object\"", ep,
                           port);
        return;
    }
    if (rc == MEMCACHED_SERVER_TEMPORARILY_DISABLED && node->last_cause[0]) {
        /* libmemcached reports a server that failed before and fails
         * again this way, hiding the new cause: name the last one seen */
        fanout_outcome_set(it->outcome, status, node->last_code,
                           "%s:%u: still failing when tried again (%s)", ep, port,
                           node->last_cause);
        return;
    }
    s_detail(node->mc, rc, detail, sizeof detail);
    fanout_outcome_set(it->outcome, status, code, "%s:%u: %s%s%s", ep, port,
                       memcached_strerror(node->mc, rc), detail[0] ? ": " : "", detail);
    if (status == FANOUT_RETRY) {
        snprintf(node->last_code, sizeof node->last_code, "%s", code);
        snprintf(node->last_cause, sizeof node->last_cause, "%s%s%s",
                 memcached_strerror(node->mc, rc), detail[0] ? ": " : "", detail);
    }
}

void mc_write_node(struct mc_node *node, struct mc_item *const *items, size_t count,
                   const struct mc_write_options *wo)
{
    /* libmemcached keeps a failed server disabled until the next whole
     * second after its RETRY_TIMEOUT; the engine's backoff paces our
     * retries instead, so every send tries the node (once: the first
     * retryable failure ends the node's part). */
    const memcached_instance_st *server =
        memcached_server_instance_by_position(node->mc, 0);
    if (server)
        memcached_instance_next_retry(server, 0);
    for (size_t i = 0; i < count; i++) {
        struct mc_item *it = items[i];
        if (wo->host->remaining_ms() < (int64_t)wo->timeout_ms + MC_DEADLINE_MARGIN_MS) {
            for (size_t j = i; j < count; j++)
                fanout_outcome_set(items[j]->outcome, FANOUT_RETRY, "DeadlineNear",
                                   "not sent to %s:%u: too little time left before the "
                                   "invocation's deadline",
                                   node->ep.host, (unsigned)node->ep.port);
            return;
        }
        memcached_return_t rc = s_write(node, it, wo);
        if (s_classify(rc) == S_RETRY && i == 0 && node->used && s_connection_error(rc)) {
            /* The connection kept from an earlier invocation may have been
             * closed meanwhile: reconnect once before giving up on the node
             * (a set is idempotent). */
            if (wo->host->log_enabled(FANOUT_LOG_DEBUG))
                wo->host->log(FANOUT_LOG_DEBUG, wo->scope, "%s:%u: %s; reconnecting once",
                              node->ep.host, (unsigned)node->ep.port,
                              memcached_strerror(node->mc, rc));
            if (server)
                memcached_instance_next_retry(server, 0);
            rc = s_write(node, it, wo);
        }
        node->used = 1;
        switch (s_classify(rc)) {
        case S_OK: break;
        case S_FATAL: s_fail(node, it, rc, FANOUT_FATAL); break;
        case S_RETRY:
            s_fail(node, it, rc, FANOUT_RETRY);
            for (size_t j = i + 1; j < count; j++)
                fanout_outcome_set(items[j]->outcome, FANOUT_RETRY, it->outcome->code,
                                   "not sent: node %s:%u failed earlier in this batch (%s)",
                                   node->ep.host, (unsigned)node->ep.port,
                                   it->outcome->message);
            wo->host->log(FANOUT_LOG_WARN, wo->scope,
                          "node %s; %zu record(s) of this batch for it not stored "
                          "(retryable)",
                          it->outcome->message, count - i);
            return;
        }
    }
}
