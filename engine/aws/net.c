/* The raw path's transport: net.h. */
#include "aws/net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "aws/ssl_load.h"
#include "aws/tls_store.h"
#include "common/log.h"
#include "common/util.h"

#define NET_SCOPE "http"
/* TCP keep-alive (seconds), as on libcurl's transfers: NAT gateways drop
 * idle flows after 350 s. */
#define NET_KEEPIDLE_S  60
#define NET_KEEPINTVL_S 30
#define NET_HOST_LEN    256
/* How long the first address of a family waits before the other family's
 * first address is tried (libcurl's happy eyeballs timeout, RFC 8305's
 * Connection Attempt Delay): an IPv6 route that drops packets costs 200
 * ms, not half of the connect timeout. */
#define NET_FAMILY_FALLBACK_MS 200

struct s_addrs {
    size_t n;
    struct sockaddr_storage sa[FANOUT_NET_MAX_ADDRS];
    socklen_t len[FANOUT_NET_MAX_ADDRS];
};

struct s_dns_entry {
    char host[NET_HOST_LEN]; /* "": free */
    long port;
    int64_t expires_ms;
    struct s_addrs addrs;
};

enum s_state { S_DNS, S_TCP, S_TLS, S_UP };

struct fanout_net_conn {
    int fd;
    enum s_state state;
    short events;
    int https, insecure, ip_literal;
    long port;
    char host[NET_HOST_LEN]; /* as given: resolved, and named in errors */
    char name[NET_HOST_LEN]; /* TLS's: SNI and the name or address verified */
    int64_t started_ms, deadline_ms, attempt_ms; /* attempt: the next address's start */
    size_t next;                                 /* the next address to try */
    struct s_addrs addrs;
    int att[FANOUT_NET_MAX_ADDRS]; /* S_TCP: the connects in progress */
    size_t natt;
    int ep;         /* S_TCP, more than one connect started: an epoll set of them */
    int last_errno; /* of the last failed attempt */
    int broken;     /* a send or receive failed: no close_notify */
    int notified;   /* TLS: the peer's close_notify came */
    int tcp_eof;    /* TLS: the BIO read the socket's end (BIO_eof) */
    SSL *ssl;
    const struct fanout_ssl_fns *f;
    struct s_lookup *lookup; /* S_DNS: the name being resolved */
};

/* A TLS session to resume: per name (c->name), port and verification
 * setting, so a session is only offered where its peer was checked as
 * this connection would check it (a resumed handshake checks no
 * certificate). */
struct s_session {
    char name[NET_HOST_LEN]; /* "": free */
    long port;
    int insecure;
    uint64_t stored; /* s_session_clock when stored: the oldest goes */
    SSL_SESSION *sess;
};

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static struct s_dns_entry s_dns[FANOUT_NET_DNS_ENTRIES];
static struct s_session s_sessions[FANOUT_NET_TLS_SESSIONS];
static uint64_t s_session_clock;
static SSL_CTX *s_ctx[2]; /* [0] verified, [1] not: freed by fanout_net_cleanup */
static BIO_METHOD *s_bio; /* once per process: BIOs of old connections use it */

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_err(struct fanout_net_error *e, enum fanout_http_error kind, const char *fmt,
                  ...) __attribute__((format(printf, 3, 4)));
static void s_err(struct fanout_net_error *e, enum fanout_http_error kind, const char *fmt,
                  ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof e->text, fmt, ap);
    va_end(ap);
    e->kind = kind;
}

/* ---- resolving ---------------------------------------------------------- */

/* A numeric host: its one address, no resolver. */
static int s_numeric(const char *host, long port, struct s_addrs *out)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->sa[0];
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->sa[0];
    memset(&out->sa[0], 0, sizeof out->sa[0]);
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        out->len[0] = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        out->len[0] = sizeof *v6;
    } else {
        return -1;
    }
    out->n = 1;
    return 0;
}

/* Cache host:port's addresses: in a free or expired entry, else in the
 * one that expires first. */
static void s_dns_put(const char *host, long port, const struct s_addrs *addrs)
{
    int64_t now = s_now_ms();
    pthread_mutex_lock(&s_lock);
    struct s_dns_entry *slot = &s_dns[0];
    for (size_t i = 0; i < FANOUT_NET_DNS_ENTRIES; i++) {
        struct s_dns_entry *d = &s_dns[i];
        if (!d->host[0] || d->expires_ms <= now) {
            slot = d;
            break;
        }
        if (d->expires_ms < slot->expires_ms)
            slot = d;
    }
    fanout_strlcpy(slot->host, host, sizeof slot->host);
    slot->port = port;
    slot->expires_ms = now + FANOUT_NET_DNS_TTL_MS;
    slot->addrs = *addrs;
    pthread_mutex_unlock(&s_lock);
}

/* The addresses in the resolver's order, the families alternating (RFC
 * 8305, 4: the first family first), so that one family's addresses
 * cannot all come before the other's is tried. */
static void s_interleave(struct s_addrs *a)
{
    struct s_addrs in = *a;
    int used[FANOUT_NET_MAX_ADDRS] = {0};
    sa_family_t want = in.n ? in.sa[0].ss_family : AF_UNSPEC;
    for (a->n = 0; a->n < in.n;) {
        size_t pick = in.n;
        for (size_t i = 0; i < in.n && pick == in.n; i++)
            if (!used[i] && in.sa[i].ss_family == want)
                pick = i;
        for (size_t i = 0; i < in.n && pick == in.n; i++)
            if (!used[i]) /* none of that family left */
                pick = i;
        used[pick] = 1;
        a->sa[a->n] = in.sa[pick];
        a->len[a->n++] = in.len[pick];
        want = in.sa[pick].ss_family == AF_INET6 ? AF_INET : AF_INET6;
    }
}

/* host:port's addresses from the cache (the caller holds s_lock): 1,
 * else 0. */
static int s_dns_get_locked(const char *host, long port, struct s_addrs *out)
{
    int64_t now = s_now_ms();
    int found = 0;
    for (size_t i = 0; i < FANOUT_NET_DNS_ENTRIES && !found; i++) {
        struct s_dns_entry *d = &s_dns[i];
        if (d->host[0] && d->port == port && now < d->expires_ms &&
            strcasecmp(d->host, host) == 0) {
            *out = d->addrs;
            found = 1;
        }
    }
    return found;
}

#ifdef FANOUT_TESTING
static atomic_int s_test_lookup_delay_ms;
static atomic_int s_test_no_threads;
#endif

/* A name resolved on a thread of its own (getaddrinfo blocks, with no
 * timeout of its own: the resolver's retries can take tens of seconds),
 * so the connect timeout bounds it and the other requests of the call go
 * on meanwhile. One lookup per host and port at a time: the connections
 * that want the name while it is being resolved (a cold start opens many
 * at once) wait for the same lookup, each until its own connect timeout,
 * and all get its answer or its failure. Each polls the read end of the
 * lookup's socket pair; the thread writes one byte on the other end when
 * done and nobody reads it, so the end stays readable for every waiter.
 * Shared by the thread and the waiters until the last lets go (closing
 * both ends). */
struct s_lookup {
    int refs;      /* under s_lock */
    int done;      /* under s_lock; then rc, sys_errno and addrs are set */
    int rc;        /* getaddrinfo's, -1: no IPv4 or IPv6 address */
    int sys_errno; /* for EAI_SYSTEM */
    int rfd, wfd;  /* the waiters' end, the thread's */
    long port;
    struct s_addrs addrs;
    char host[NET_HOST_LEN];
    struct s_lookup *next; /* in s_pending while not done */
};

static struct s_lookup *s_pending; /* the lookups running, under s_lock */
static int s_lookups;              /* how many (for the tests), under s_lock */
#ifdef FANOUT_TESTING
static atomic_int s_resolver_calls;
#endif

/* getaddrinfo, its addresses cached: 0, else getaddrinfo's code (or -1:
 * none of IPv4 or IPv6) and errno for EAI_SYSTEM in *sys_errno. */
static int s_getaddrinfo(const char *host, long port, struct s_addrs *out, int *sys_errno)
{
    char service[16];
    snprintf(service, sizeof service, "%ld", port);
    /* AI_ADDRCONFIG: no IPv6 address for a host with no IPv6 address of
     * its own (loopback aside), none to try and time out on */
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
#ifdef FANOUT_TESTING
    atomic_fetch_add(&s_resolver_calls, 1);
#endif
    int rc = getaddrinfo(host, service, &hints, &res);
    *sys_errno = errno;
    if (rc != 0)
        return rc;
    out->n = 0;
    for (struct addrinfo *a = res; a && out->n < FANOUT_NET_MAX_ADDRS; a = a->ai_next) {
        if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
            a->ai_addrlen > sizeof out->sa[0])
            continue;
        memcpy(&out->sa[out->n], a->ai_addr, a->ai_addrlen);
        out->len[out->n++] = a->ai_addrlen;
    }
    freeaddrinfo(res);
    if (!out->n)
        return -1;
    s_interleave(out);
    s_dns_put(host, port, out);
    return 0;
}

static void s_resolve_failed(struct fanout_net_error *err, const char *host, int rc,
                             int sys_errno)
{
    s_err(err, FANOUT_HTTP_CONNECT, "Could not resolve host: %s (%s)", host,
          rc == -1           ? "no IPv4 or IPv6 address"
          : rc == EAI_SYSTEM ? strerror(sys_errno)
                             : gai_strerror(rc));
}

static void s_lookup_unref(struct s_lookup *l)
{
    pthread_mutex_lock(&s_lock);
    int last = --l->refs == 0;
    pthread_mutex_unlock(&s_lock);
    if (last) {
        close(l->rfd);
        close(l->wfd);
        free(l);
    }
}

/* The lookup running for host:port (the caller holds s_lock), or NULL */
static struct s_lookup *s_pending_find(const char *host, long port)
{
    for (struct s_lookup *l = s_pending; l; l = l->next)
        if (l->port == port && strcasecmp(l->host, host) == 0)
            return l;
    return NULL;
}

static void *s_lookup_main(void *arg)
{
    struct s_lookup *l = arg;
#ifdef FANOUT_TESTING
    int delay_ms = atomic_load(&s_test_lookup_delay_ms);
    if (delay_ms > 0)
        nanosleep(&(struct timespec){delay_ms / 1000, (long)(delay_ms % 1000) * 1000000},
                  NULL);
#endif
    int rc = s_getaddrinfo(l->host, l->port, &l->addrs, &l->sys_errno);
    pthread_mutex_lock(&s_lock);
    l->rc = rc;
    l->done = 1;
    /* out of s_pending: a connection from now on finds the cache (the
     * addresses went there first) or, after a failure, asks again */
    for (struct s_lookup **pp = &s_pending; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    s_lookups--;
    pthread_mutex_unlock(&s_lock);
    (void)send(l->wfd, "", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    s_lookup_unref(l);
    return NULL;
}

/* c waits for l (the caller holds s_lock and took a reference for c) */
static void s_lookup_wait(struct fanout_net_conn *c, struct s_lookup *l)
{
    c->lookup = l;
    c->fd = l->rfd;
    c->events = POLLIN;
    c->state = S_DNS;
}

/* host:port from the cache (1), or c waits for the lookup running for it
 * (2), else 0; the caller holds s_lock. */
static int s_resolve_locked(struct fanout_net_conn *c)
{
    if (s_dns_get_locked(c->host, c->port, &c->addrs))
        return 1;
    struct s_lookup *l = s_pending_find(c->host, c->port);
    if (!l)
        return 0;
    l->refs++;
    s_lookup_wait(c, l);
    return 2;
}

/* A lookup of c's name, waited for by c, in s_pending (the caller holds
 * s_lock: the other connections that want the name meanwhile wait those
 * few microseconds, then join it), its thread not started; NULL when no
 * socket pair can be had. */
static struct s_lookup *s_lookup_new_locked(struct fanout_net_conn *c)
{
    int sv[2] = {-1, -1};
    struct s_lookup *l = calloc(1, sizeof *l);
    if (!l || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) {
        free(l);
        return NULL;
    }
    fanout_strlcpy(l->host, c->host, sizeof l->host);
    l->port = c->port;
    l->rfd = sv[0];
    l->wfd = sv[1];
    l->refs = 2; /* the thread's, c's */
    l->next = s_pending;
    s_pending = l;
    s_lookups++;
    s_lookup_wait(c, l);
    return l;
}

/* c's addresses: from the cache (S_TCP), else from a lookup, the one
 * running for the name or one started (S_DNS, c->fd its socket), else,
 * when no socket pair can be had, from getaddrinfo on this thread. -1
 * with *err: none. */
static int s_resolve(struct fanout_net_conn *c, struct fanout_net_error *err)
{
    c->state = S_TCP;
    struct s_lookup *l = NULL;
    pthread_mutex_lock(&s_lock);
    int found = s_resolve_locked(c);
    if (!found)
        l = s_lookup_new_locked(c);
    pthread_mutex_unlock(&s_lock);
    if (found)
        return 0;
    if (l) {
        pthread_attr_t attr;
        pthread_t th;
        int ok = pthread_attr_init(&attr) == 0;
#ifdef FANOUT_TESTING
        if (atomic_load(&s_test_no_threads) && ok) {
            pthread_attr_destroy(&attr);
            ok = 0;
        }
#endif
        if (ok) {
            (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            ok = pthread_create(&th, &attr, s_lookup_main, l) == 0;
            pthread_attr_destroy(&attr);
        }
        if (!ok) /* no thread: resolved here, for the waiters too */
            (void)s_lookup_main(l);
        return 0;
    }
    int sys_errno = 0;
    int rc = s_getaddrinfo(c->host, c->port, &c->addrs, &sys_errno);
    if (rc != 0)
        s_resolve_failed(err, c->host, rc, sys_errno);
    return rc != 0 ? -1 : 0;
}

/* c waits no more: the lookup's socket is not c's to close */
static void s_lookup_leave(struct fanout_net_conn *c)
{
    c->fd = -1;
    s_lookup_unref(c->lookup); /* the last one (the thread) frees it */
    c->lookup = NULL;
}

/* The lookup's end: its addresses taken (S_TCP), or the resolver's
 * words (-1), or 1: not done yet. */
static int s_lookup_take(struct fanout_net_conn *c, struct fanout_net_error *err)
{
    struct s_lookup *l = c->lookup;
    pthread_mutex_lock(&s_lock);
    int done = l->done;
    pthread_mutex_unlock(&s_lock);
    if (!done)
        return 1;
    int rc = l->rc;
    if (rc == 0)
        c->addrs = l->addrs;
    else
        s_resolve_failed(err, c->host, rc, l->sys_errno);
    s_lookup_leave(c);
    c->state = S_TCP;
    return rc == 0 ? 0 : -1;
}

#ifdef FANOUT_TESTING
void fanout_net_test_lookup_delay(int delay_ms)
{
    atomic_store(&s_test_lookup_delay_ms, delay_ms);
}

void fanout_net_test_no_threads(int on)
{
    atomic_store(&s_test_no_threads, on);
}

int fanout_net_test_resolver_calls(void)
{
    return atomic_load(&s_resolver_calls);
}

int fanout_net_test_lookups(void)
{
    pthread_mutex_lock(&s_lock);
    int n = s_lookups;
    pthread_mutex_unlock(&s_lock);
    return n;
}

int fanout_net_test_resolved(const char *host, long port, const char *const *addrs,
                             size_t n)
{
    struct s_addrs a = {0};
    for (size_t i = 0; i < n && i < FANOUT_NET_MAX_ADDRS; i++) {
        struct s_addrs one;
        if (s_numeric(addrs[i], port, &one) != 0)
            return -1;
        a.sa[a.n] = one.sa[0];
        a.len[a.n++] = one.len[0];
    }
    s_interleave(&a);
    s_dns_put(host, port, &a);
    return 0;
}
#endif

/* ---- TLS ------------------------------------------------------------------ */

/* The BIO: the connection's socket (its data: the connection), written
 * with MSG_NOSIGNAL (a peer's close must not raise SIGPIPE in a process
 * that did not ignore it); it says when the socket's end was read
 * (BIO_CTRL_EOF), so that OpenSSL tells a TCP close without close_notify
 * (SSL_R_UNEXPECTED_EOF_WHILE_READING) from a failed read. */
static int s_bio_write(BIO *b, const char *p, int n)
{
    const struct fanout_ssl_fns *f = fanout_ssl_load(NULL, 0);
    const struct fanout_net_conn *c = f->bio_get_data(b);
    f->bio_clear_flags(b, BIO_FLAGS_RWS | BIO_FLAGS_SHOULD_RETRY);
    ssize_t w = send(c->fd, p, (size_t)n, MSG_NOSIGNAL);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        f->bio_set_flags(b, BIO_FLAGS_WRITE | BIO_FLAGS_SHOULD_RETRY);
    return (int)w;
}

static int s_bio_read(BIO *b, char *p, int n)
{
    const struct fanout_ssl_fns *f = fanout_ssl_load(NULL, 0);
    struct fanout_net_conn *c = f->bio_get_data(b);
    f->bio_clear_flags(b, BIO_FLAGS_RWS | BIO_FLAGS_SHOULD_RETRY);
    ssize_t r = recv(c->fd, p, (size_t)n, 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        f->bio_set_flags(b, BIO_FLAGS_READ | BIO_FLAGS_SHOULD_RETRY);
    if (r == 0 && n > 0)
        c->tcp_eof = 1;
    return (int)r;
}

static long s_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    if (cmd == BIO_CTRL_EOF) {
        const struct fanout_net_conn *c = fanout_ssl_load(NULL, 0)->bio_get_data(b);
        return c->tcp_eof;
    }
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

/* The session kept for c's place (the caller holds s_lock), NULL: none */
static struct s_session *s_session_at(const struct fanout_net_conn *c)
{
    for (size_t i = 0; i < FANOUT_NET_TLS_SESSIONS; i++) {
        struct s_session *k = &s_sessions[i];
        if (k->name[0] && k->port == c->port && k->insecure == c->insecure &&
            strcmp(k->name, c->name) == 0)
            return k;
    }
    return NULL;
}

/* OpenSSL's new-session callback (a TLS 1.2 handshake's end, each TLS
 * 1.3 ticket): a copy of the session kept for the connection's place,
 * replacing the one there or the oldest. A copy: OpenSSL marks the
 * connection's own session not resumable when it is freed without
 * close_notify sent (ssl_clear_bad_session), as an idle connection the
 * server closed or reset is; here a session goes only when its place's
 * connection fails in TLS itself (s_session_forget). 0: OpenSSL keeps
 * its reference. */
static int s_session_new(SSL *ssl, SSL_SESSION *sess)
{
    const struct fanout_ssl_fns *f = fanout_ssl_load(NULL, 0);
    const struct fanout_net_conn *c = f->get_ex_data(ssl, 0);
    if (!c || !f->session_is_resumable(sess) || !(sess = f->session_dup(sess)))
        return 0;
    SSL_SESSION *old;
    pthread_mutex_lock(&s_lock);
    struct s_session *slot = s_session_at(c);
    if (!slot) { /* a free one, else the oldest */
        slot = &s_sessions[0];
        for (size_t i = 0; i < FANOUT_NET_TLS_SESSIONS && slot->name[0]; i++) {
            struct s_session *k = &s_sessions[i];
            if (!k->name[0] || k->stored < slot->stored)
                slot = k;
        }
    }
    old = slot->sess;
    fanout_strlcpy(slot->name, c->name, sizeof slot->name);
    slot->port = c->port;
    slot->insecure = c->insecure;
    slot->stored = ++s_session_clock;
    slot->sess = sess;
    pthread_mutex_unlock(&s_lock);
    if (old)
        f->session_free(old);
    return 0;
}

/* A TLS failure on c (an alert, a record that does not decrypt, a
 * refused certificate): its place's session is not offered again. */
static void s_session_forget(const struct fanout_net_conn *c)
{
    SSL_SESSION *drop = NULL;
    pthread_mutex_lock(&s_lock);
    struct s_session *k = s_session_at(c);
    if (k) {
        drop = k->sess;
        k->sess = NULL;
        k->name[0] = 0;
    }
    pthread_mutex_unlock(&s_lock);
    if (drop)
        c->f->session_free(drop);
}

/* Offer the session kept for c's place, if any (SSL_set_session takes
 * its own reference, under the lock: a new session may replace and free
 * it at any time). As libcurl's share, a session (a TLS 1.3 ticket too)
 * is offered by every new connection to its place until a newer one
 * replaces it: the connections a call opens at once all resume. RFC
 * 8446 (C.4) would have a ticket used once, so that observers cannot
 * link connections; a fan-out to AWS endpoints has no such secret, and
 * servers take a ticket again (they keep no state for it). */
static void s_session_offer(struct fanout_net_conn *c)
{
    pthread_mutex_lock(&s_lock);
    const struct s_session *k = s_session_at(c);
    if (k)
        (void)c->f->set_session(c->ssl, k->sess);
    pthread_mutex_unlock(&s_lock);
}

/* The SSL_CTX of that verification setting, made on first use; NULL with
 * *err (the CA store or libssl could not be had). */
static SSL_CTX *s_get_ctx(const struct fanout_ssl_fns *f, int insecure,
                          struct fanout_net_error *err)
{
    pthread_mutex_lock(&s_lock);
    SSL_CTX *ctx = s_ctx[insecure];
    if (ctx) {
        pthread_mutex_unlock(&s_lock);
        return ctx;
    }
    X509_STORE *store = NULL;
    if (!insecure) {
        char why[sizeof err->text];
        store = fanout_tls_store_get(why, sizeof why);
        if (!store) {
            pthread_mutex_unlock(&s_lock);
            s_err(err, FANOUT_HTTP_TLS, "%s", why);
            return NULL;
        }
    }
    if (!s_bio) {
        BIO_METHOD *m =
            f->bio_meth_new(f->bio_new_index() | BIO_TYPE_SOURCE_SINK, "fanout socket");
        if (m && f->bio_meth_set_write(m, s_bio_write) &&
            f->bio_meth_set_read(m, s_bio_read) && f->bio_meth_set_ctrl(m, s_bio_ctrl))
            s_bio = m;
    }
    ctx = s_bio ? f->ctx_new(f->client_method()) : NULL;
    if (!ctx) {
        pthread_mutex_unlock(&s_lock);
        s_err(err, FANOUT_HTTP_TLS, "cannot create a TLS context: out of memory");
        return NULL;
    }
    static const unsigned char alpn[] = "\x08http/1.1";
    f->ctx_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL);
    f->ctx_ctrl(ctx, SSL_CTRL_MODE,
                SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, NULL);
    /* no SSL_OP_IGNORE_UNEXPECTED_EOF: a TCP close without close_notify
     * must not read as close_notify (s_tls_io_result tells them apart), or
     * a FIN injected mid-body would end a body read to the close */
    /* ALPN offers http/1.1 alone: a server that is offered h2 (AWS
     * endpoints) may take it, and would read no HTTP/1.1 text */
    if (f->ctx_set_alpn_protos(ctx, alpn, sizeof alpn - 1) != 0) {
        f->ctx_free(ctx);
        pthread_mutex_unlock(&s_lock);
        s_err(err, FANOUT_HTTP_TLS, "cannot set up ALPN: out of memory");
        return NULL;
    }
    /* sessions kept by us (s_session_new), not in OpenSSL's cache */
    f->ctx_ctrl(ctx, SSL_CTRL_SET_SESS_CACHE_MODE,
                SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE, NULL);
    f->ctx_sess_set_new_cb(ctx, s_session_new);
    if (insecure) {
        f->ctx_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        f->ctx_set1_cert_store(ctx, store);
        f->ctx_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    s_ctx[insecure] = ctx;
    pthread_mutex_unlock(&s_lock);
    return ctx;
}

static int s_tls_start(struct fanout_net_conn *c, struct fanout_net_error *err)
{
    char why[sizeof err->text];
    const struct fanout_ssl_fns *f = fanout_ssl_load(why, sizeof why);
    if (!f) {
        s_err(err, FANOUT_HTTP_TLS, "%s", why);
        return -1;
    }
    c->f = f;
    SSL_CTX *ctx = s_get_ctx(f, c->insecure, err);
    if (!ctx)
        return -1;
    f->err_clear();
    c->ssl = f->ssl_new(ctx);
    BIO *bio = c->ssl ? f->bio_new(s_bio) : NULL;
    if (!bio) {
        s_err(err, FANOUT_HTTP_TLS, "cannot start TLS with %s: out of memory", c->host);
        return -1;
    }
    f->bio_set_data(bio, c); /* c outlives its SSL (s_sock_close) */
    f->bio_set_init(bio, 1);
    f->set_bio(c->ssl, bio, bio); /* the SSL owns it */
    int ok = 1;
    if (!c->ip_literal) /* SNI: names only (RFC 6066) */
        ok = f->ctrl(c->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     c->name) == 1;
    if (ok && !c->insecure && c->ip_literal) {
        ok = f->param_set1_ip_asc(f->get0_param(c->ssl), c->name) == 1;
    } else if (ok && !c->insecure) {
        /* a wildcard only as a whole left-most label ("*.example.com",
         * not "f*.example.com"), as libcurl's own host check */
        f->set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = f->set1_host(c->ssl, c->name) == 1;
    }
    if (ok)
        ok = f->set_ex_data(c->ssl, 0, c) == 1; /* for s_session_new */
    if (!ok) {
        s_err(err, FANOUT_HTTP_TLS, "cannot set up TLS for %s: out of memory", c->host);
        return -1;
    }
    s_session_offer(c);
    c->state = S_TLS;
    return 0;
}

/* Whether an error queue entry says the peer closed the TCP connection
 * without close_notify (OpenSSL 3 without SSL_OP_IGNORE_UNEXPECTED_EOF) */
static int s_unexpected_eof(unsigned long q)
{
    return ERR_GET_LIB(q) == ERR_LIB_SSL &&
           ERR_GET_REASON(q) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

/* OpenSSL's reason for the last failure (`q`, the error queue's first
 * entry, and SSL_get_error's `e`), else the system's, else `fallback`;
 * the error queue emptied. */
static void s_tls_why(const struct fanout_ssl_fns *f, unsigned long q, int e,
                      const char *fallback, char *why, size_t len)
{
    if (q && !s_unexpected_eof(q))
        f->err_string(q, why, len);
    else
        fanout_strlcpy(why, e == SSL_ERROR_SYSCALL && errno ? strerror(errno) : fallback,
                       len);
    f->err_clear();
}

/* The handshake's failure in words: the verification result when the
 * peer was refused, else OpenSSL's reason. */
static void s_tls_failed(struct fanout_net_conn *c, int rc, struct fanout_net_error *err)
{
    const struct fanout_ssl_fns *f = c->f;
    int e = f->get_error(c->ssl, rc);
    long v = c->insecure ? X509_V_OK : f->get_verify_result(c->ssl);
    unsigned long q = f->err_get();
    /* a close is no fault of the session's */
    if (e == SSL_ERROR_SSL && !s_unexpected_eof(q))
        s_session_forget(c);
    char why[160];
    s_tls_why(f, q, e, "the server closed the connection", why, sizeof why);
    if (v != X509_V_OK)
        s_err(err, FANOUT_HTTP_TLS, "TLS certificate of %s:%ld not accepted: %s", c->host,
              c->port, f->verify_string(v));
    else
        s_err(err, FANOUT_HTTP_TLS, "TLS handshake with %s:%ld failed: %s", c->host,
              c->port, why);
}

static int s_tls_step(struct fanout_net_conn *c, struct fanout_net_error *err)
{
    const struct fanout_ssl_fns *f = c->f;
    errno = 0;
    int rc = f->connect(c->ssl);
    if (rc == 1) {
        c->state = S_UP;
        c->events = POLLIN;
        return FANOUT_NET_OK;
    }
    int e = f->get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        c->events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        return FANOUT_NET_AGAIN;
    }
    s_tls_failed(c, rc, err);
    return FANOUT_NET_FAILED;
}

/* ---- connecting ----------------------------------------------------------- */

static void s_sock_close(struct fanout_net_conn *c)
{
    if (c->ssl) {
        c->f->ssl_free(c->ssl); /* frees its BIO */
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Close the connects in progress and their epoll set */
static void s_attempts_close(struct fanout_net_conn *c)
{
    for (size_t i = 0; i < c->natt; i++)
        close(c->att[i]);
    c->natt = 0;
    if (c->ep >= 0)
        close(c->ep);
    c->ep = -1;
}

/* A connect in progress beside others: all of them in one epoll set, the
 * descriptor the caller polls (its POLLIN: one of them is done). 0, or
 * -1 when no set can be had. */
static int s_attempt_watch(struct fanout_net_conn *c, int fd)
{
    if (c->ep < 0) {
        c->ep = epoll_create1(EPOLL_CLOEXEC);
        if (c->ep < 0)
            return -1;
        for (size_t i = 0; i < c->natt; i++)
            if (epoll_ctl(c->ep, EPOLL_CTL_ADD, c->att[i],
                          &(struct epoll_event){.events = EPOLLOUT}) != 0)
                return -1;
    }
    return epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &(struct epoll_event){.events = EPOLLOUT});
}

/* Start connecting to the next address, beside the connects in progress
 * (RFC 8305: an earlier attempt is not given up when the next starts; the
 * first to connect wins): FANOUT_NET_AGAIN started (c->attempt_ms: when
 * the one after may start), FANOUT_NET_OK connected at once (c->fd), or
 * FANOUT_NET_FAILED: no address left to start. */
static int s_try_next(struct fanout_net_conn *c, int64_t now)
{
    while (c->next < c->addrs.n) {
        size_t i = c->next++;
        const struct sockaddr *sa = (const struct sockaddr *)&c->addrs.sa[i];
        int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            c->last_errno = errno;
            continue;
        }
        int one = 1, idle = NET_KEEPIDLE_S, intvl = NET_KEEPINTVL_S;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        if (connect(fd, sa, c->addrs.len[i]) == 0) {
            c->fd = fd;
            return FANOUT_NET_OK;
        }
        if (errno != EINPROGRESS) {
            c->last_errno = errno;
            close(fd);
            continue;
        }
        if (c->natt && s_attempt_watch(c, fd) != 0) {
            /* no epoll set: the earlier attempts are given up, as before
             * RFC 8305 */
            s_attempts_close(c);
        }
        c->att[c->natt++] = fd;
        /* the next address starts after half of the time left, or after
         * NET_FAMILY_FALLBACK_MS when this is the first address and the
         * next the first of the other family (an IPv6 route that drops
         * packets costs 200 ms), or sooner when every attempt fails */
        int64_t left = c->deadline_ms - now;
        c->attempt_ms = c->deadline_ms;
        if (c->next < c->addrs.n) {
            int64_t slice = left / 2;
            if (c->next == 1 && c->addrs.sa[1].ss_family != c->addrs.sa[0].ss_family &&
                slice > NET_FAMILY_FALLBACK_MS)
                slice = NET_FAMILY_FALLBACK_MS;
            c->attempt_ms = now + slice;
        }
        return FANOUT_NET_AGAIN;
    }
    return FANOUT_NET_FAILED;
}

/* The connects in progress that ended (`revents`: the poll's, for the one
 * socket polled alone): 1 when one connected (c->fd; the others closed);
 * those that failed closed (c->last_errno); else 0. */
static int s_attempts_check(struct fanout_net_conn *c, short revents)
{
    struct pollfd p[FANOUT_NET_MAX_ADDRS];
    for (size_t i = 0; i < c->natt; i++)
        p[i] = (struct pollfd){.fd = c->att[i], .events = POLLOUT, .revents = revents};
    if (!c->natt || (c->ep >= 0 && poll(p, (nfds_t)c->natt, 0) <= 0))
        return 0;
    size_t kept = 0;
    int won = -1;
    for (size_t i = 0; i < c->natt; i++) {
        int fd = c->att[i];
        if (won < 0 && (p[i].revents & (POLLOUT | POLLERR | POLLHUP))) {
            int so = 0;
            socklen_t sl = sizeof so;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) != 0)
                so = errno;
            if (so == 0) {
                won = fd;
                continue;
            }
            c->last_errno = so;
            close(fd); /* out of the epoll set too */
            continue;
        }
        c->att[kept++] = fd;
    }
    c->natt = kept;
    if (won < 0)
        return 0;
    s_attempts_close(c);
    c->fd = won;
    return 1;
}

/* The words of a connect that found no address to take it */
static void s_connect_failed(struct fanout_net_conn *c, int64_t now,
                             struct fanout_net_error *err)
{
    int timed_out = c->last_errno == ETIMEDOUT && now >= c->deadline_ms;
    s_err(err, timed_out ? FANOUT_HTTP_TIMEOUT : FANOUT_HTTP_CONNECT,
          "Failed to connect to %s port %ld after %lld ms: %s", c->host, c->port,
          (long long)(now - c->started_ms),
          timed_out ? "Connection timed out"
                    : strerror(c->last_errno ? c->last_errno : EIO));
}

/* TCP is up: TLS starts, or the connection is ready. */
static int s_connected(struct fanout_net_conn *c, struct fanout_net_error *err)
{
    if (!c->https) {
        c->state = S_UP;
        c->events = POLLIN;
        return FANOUT_NET_OK;
    }
    if (s_tls_start(c, err) != 0)
        return FANOUT_NET_FAILED;
    return s_tls_step(c, err);
}

/* The name TLS sends (SNI) and verifies: `host` in lower case, without
 * the trailing dot of an absolute name ("example.com."), which RFC 6066
 * keeps out of SNI and certificates do not carry (libcurl strips it
 * too); the resolver still gets the name as written. An address written
 * so ("127.0.0.1.") is then an address. -1: no name left ("", ".",
 * "a..") or too long. */
static int s_tls_name(const char *host, char *out, size_t len)
{
    size_t n = strlen(host);
    if (n && host[n - 1] == '.')
        n--;
    if (!n || n >= len || host[n - 1] == '.')
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)host[i]);
    out[n] = 0;
    return 0;
}

struct fanout_net_conn *fanout_net_open(const char *host, long port, int https,
                                        int insecure, int64_t connect_timeout_ms,
                                        struct fanout_net_error *err)
{
    struct fanout_net_conn *c = calloc(1, sizeof *c);
    if (!c) {
        s_err(err, FANOUT_HTTP_OTHER, "out of memory");
        return NULL;
    }
    c->fd = -1;
    c->ep = -1;
    c->https = https;
    c->insecure = insecure;
    c->port = port;
    c->started_ms = s_now_ms();
    c->deadline_ms = c->started_ms + connect_timeout_ms;
    fanout_strlcpy(c->host, host, sizeof c->host);
    if (s_tls_name(host, c->name, sizeof c->name) != 0) {
        s_err(err, FANOUT_HTTP_CONNECT, "Could not resolve host: %s (not a host name)",
              host);
        free(c);
        return NULL;
    }
    c->ip_literal = s_numeric(c->name, port, &c->addrs) == 0;
    c->state = S_TCP;
    if (!c->ip_literal && s_resolve(c, err) != 0) {
        free(c);
        return NULL;
    }
    c->attempt_ms = c->deadline_ms;
    return c;
}

int fanout_net_step(struct fanout_net_conn *c, short revents, struct fanout_net_error *err)
{
    int64_t now = s_now_ms();
    if (c->state == S_TLS) {
        if (now >= c->deadline_ms) {
            s_err(err, FANOUT_HTTP_TIMEOUT,
                  "TLS handshake with %s:%ld timed out after %lld ms", c->host, c->port,
                  (long long)(now - c->started_ms));
            return FANOUT_NET_FAILED;
        }
        return s_tls_step(c, err);
    }
    if (c->state == S_UP)
        return FANOUT_NET_OK;
    if (c->state == S_DNS) {
        int rc = s_lookup_take(c, err);
        if (rc < 0)
            return FANOUT_NET_FAILED;
        if (rc > 0 && now >= c->deadline_ms) {
            s_err(err, FANOUT_HTTP_TIMEOUT,
                  "Resolving %s timed out after %lld milliseconds", c->host,
                  (long long)(now - c->started_ms));
            return FANOUT_NET_FAILED;
        }
        if (rc > 0)
            return FANOUT_NET_AGAIN;
        revents = 0; /* those were the lookup's */
    }
    if (s_attempts_check(c, revents))
        return s_connected(c, err);
    for (;;) {
        if (now >= c->deadline_ms && (c->natt || c->next > 0)) {
            c->last_errno = ETIMEDOUT;
            s_attempts_close(c);
            s_connect_failed(c, now, err);
            return FANOUT_NET_FAILED;
        }
        if (c->natt && now < c->attempt_ms)
            break; /* the next address starts later, if none connects */
        int rc = s_try_next(c, now);
        if (rc == FANOUT_NET_OK) {
            s_attempts_close(c);
            return s_connected(c, err);
        }
        if (rc == FANOUT_NET_FAILED) {
            if (c->natt) { /* none left to start: those running have until the end */
                c->attempt_ms = c->deadline_ms;
                break;
            }
            s_connect_failed(c, now, err);
            return FANOUT_NET_FAILED;
        }
    }
    c->events = c->ep >= 0 ? POLLIN : POLLOUT;
    return FANOUT_NET_AGAIN;
}

int fanout_net_fd(const struct fanout_net_conn *c)
{
    if (c->state == S_TCP) /* the connects: one, or their epoll set */
        return c->ep >= 0 ? c->ep : c->natt ? c->att[0] : -1;
    return c->fd;
}

short fanout_net_events(const struct fanout_net_conn *c)
{
    return c->events;
}

int64_t fanout_net_timer_ms(const struct fanout_net_conn *c)
{
    return c->state == S_TCP ? c->attempt_ms : c->deadline_ms;
}

/* A TLS read or write that did not complete: again (and what to wait
 * for), the peer's close, or a failure. */
static int s_tls_io_result(struct fanout_net_conn *c, int rc, int writing,
                           struct fanout_net_error *err)
{
    const struct fanout_ssl_fns *f = c->f;
    int e = f->get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        /* what the layer needs, and what the caller waits for anyway */
        c->events = (short)((e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT) |
                            (writing ? POLLOUT : POLLIN));
        return FANOUT_NET_AGAIN;
    }
    if (e == SSL_ERROR_ZERO_RETURN && !writing) {
        c->notified = 1;
        return FANOUT_NET_OK; /* *got 0: closed, close_notify first */
    }
    unsigned long q = f->err_get();
    /* the socket's end, without close_notify: OpenSSL 3 says so with
     * SSL_R_UNEXPECTED_EOF_WHILE_READING (a library that says nothing,
     * SSL_ERROR_SYSCALL, is read the same way) */
    if (!writing && c->tcp_eof && (e == SSL_ERROR_SSL || e == SSL_ERROR_SYSCALL) &&
        (!q || s_unexpected_eof(q))) {
        /* *got 0: closed, without close_notify (fanout_net_close_trusted
         * says so); the session stays: a server that closes an idle
         * connection so did nothing wrong in TLS */
        f->err_clear();
        c->broken = 1; /* the SSL is in error: no close_notify of ours */
        return FANOUT_NET_OK;
    }
    if (e == SSL_ERROR_SSL)
        s_session_forget(c);
    char why[160];
    s_tls_why(f, q, e, "connection lost", why, sizeof why);
    s_err(err, FANOUT_HTTP_RESET, "TLS %s %s:%ld failed: %s",
          writing ? "send to" : "receive from", c->host, c->port, why);
    return FANOUT_NET_FAILED;
}

/* One send (`out`) or receive (`in`) of up to n bytes: *done bytes moved
 * (a receive's 0: the peer closed), or again, or failed. */
static int s_io(struct fanout_net_conn *c, const void *out, void *in, size_t n,
                size_t *done, struct fanout_net_error *err)
{
    *done = 0;
    if (n > (size_t)1 << 30)
        n = (size_t)1 << 30;
    if (c->ssl) {
        errno = 0;
        int rc = out ? c->f->write(c->ssl, out, (int)n) : c->f->read(c->ssl, in, (int)n);
        if (rc <= 0) {
            rc = s_tls_io_result(c, rc, out != NULL, err);
            c->broken |= rc == FANOUT_NET_FAILED;
            return rc;
        }
        *done = (size_t)rc;
        c->events = POLLIN;
        return FANOUT_NET_OK;
    }
    ssize_t r = out ? send(c->fd, out, n, MSG_NOSIGNAL) : recv(c->fd, in, n, 0);
    if (r >= 0) {
        *done = (size_t)r;
        return FANOUT_NET_OK;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return FANOUT_NET_AGAIN;
    s_err(err, FANOUT_HTTP_RESET, "%s failure with %s:%ld: %s", out ? "Send" : "Recv",
          c->host, c->port, strerror(errno));
    return FANOUT_NET_FAILED;
}

int fanout_net_send(struct fanout_net_conn *c, const void *p, size_t n, size_t *sent,
                    struct fanout_net_error *err)
{
    return s_io(c, p, NULL, n, sent, err);
}

int fanout_net_recv(struct fanout_net_conn *c, void *p, size_t n, size_t *got,
                    struct fanout_net_error *err)
{
    return s_io(c, NULL, p, n, got, err);
}

int fanout_net_resumed(const struct fanout_net_conn *c)
{
    return c->ssl && c->state == S_UP && c->f->session_reused(c->ssl) ? 1 : 0;
}

int fanout_net_close_trusted(const struct fanout_net_conn *c)
{
    return !c->https || c->notified;
}

int fanout_net_pending(const struct fanout_net_conn *c)
{
    return c->ssl && c->f->has_pending(c->ssl) ? 1 : 0;
}

void fanout_net_close(struct fanout_net_conn *c)
{
    if (!c)
        return;
    /* close_notify (one send, not waited on) from a sound connection, as
     * libcurl says it: the server reads our close as a close, not as a
     * truncation */
    if (c->ssl && c->state == S_UP && !c->broken)
        (void)c->f->shutdown(c->ssl);
    if (c->lookup)
        s_lookup_leave(c);
    s_attempts_close(c);
    s_sock_close(c);
    free(c);
}

void fanout_net_cleanup(void)
{
    pthread_mutex_lock(&s_lock);
    const struct fanout_ssl_fns *f = s_ctx[0] || s_ctx[1] ? fanout_ssl_load(NULL, 0) : NULL;
    for (int i = 0; i < 2; i++) {
        if (s_ctx[i])
            f->ctx_free(s_ctx[i]); /* connections hold their own reference */
        s_ctx[i] = NULL;
    }
    for (size_t i = 0; i < FANOUT_NET_DNS_ENTRIES; i++)
        s_dns[i].host[0] = 0;
    for (size_t i = 0; i < FANOUT_NET_TLS_SESSIONS; i++) {
        struct s_session *k = &s_sessions[i];
        if (k->sess)
            fanout_ssl_load(NULL, 0)->session_free(k->sess);
        k->sess = NULL;
        k->name[0] = 0;
    }
    pthread_mutex_unlock(&s_lock);
}
