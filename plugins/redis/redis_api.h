/*
 * The wire side of the redis plugin: destinations, one transport (a plain
 * TCP socket or OpenSSL over it), and a small client that uses only
 * hiredis's command formatter and reply reader on top of that transport, so
 * plain and TLS connections run the same code.
 *
 * Why not hiredis's own connection: Debian's hiredis 0.14 has no TLS, and
 * ElastiCache needs TLS for AUTH. Its formatter and reader work on any byte
 * stream.
 *
 * Internal to the plugin (hidden visibility): nothing here is exported.
 */
#ifndef FANOUT_REDIS_API_H
#define FANOUT_REDIS_API_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>

#include <fanout/plugin.h>

/* Longest host name (RFC 1035: 253 characters) plus room for a literal. */
#define REDIS_HOST_MAX 256

struct redis_endpoint {
    char host[REDIS_HOST_MAX]; /* a name or an address, without brackets */
    unsigned port;
    char display[REDIS_HOST_MAX + 8]; /* host:port or [v6]:port, for messages */
};

/* Parse `host:port`, `a.b.c.d:port` or `[v6]:port`. No I/O. Returns 0, or
 * -1 with what is wrong in err. */
int redis_parse_destination(const char *dest, struct redis_endpoint *ep, char *err,
                            size_t err_len);

/* Non-zero when s is an IPv4 or IPv6 address literal. */
int redis_is_ip_literal(const char *s);

/* What went wrong with a connection or a command. */
struct redis_failure {
    int status; /* FANOUT_RETRY or FANOUT_FATAL */
    char code[64];
    char message[256];
};

/* Classify an error reply ("OOM ...", "MOVED ...") into a failure; *drop is
 * set when the connection should not be reused (READONLY: it reaches a
 * replica, a failover moved the primary). */
void redis_classify_error(const char *text, size_t len, struct redis_failure *f, int *drop);

/* A TLS client context: verification on, the system's CAs or only those in
 * ca_file (FANOUT_CA_BUNDLE) when given. NULL with err on failure. */
SSL_CTX *redis_tls_context_new(const char *ca_file, char *err, size_t err_len);

struct redis_conn_config {
    const struct fanout_host *host; /* for log lines */
    const char *scope;              /* the target id */
    const struct redis_endpoint *ep;
    SSL_CTX *tls;         /* NULL: plain TCP */
    const char *tls_name; /* name to verify (and SNI); NULL: ep->host */
    const char *username; /* NULL: AUTH with the password only */
    const char *password; /* NULL: no AUTH */
    size_t password_len;
    const char *password_from; /* the variable it came from, for messages */
    int64_t database;          /* SELECT when non-zero */
    int timeout_ms;
};

struct redis_conn;

/* Monotonic milliseconds. */
int64_t redis_now_ms(void);

/* Connect (TCP, TLS, AUTH, SELECT) within min(timeout, deadline). NULL with
 * f filled on failure. */
struct redis_conn *redis_conn_open(const struct redis_conn_config *cfg, int64_t deadline_ms,
                                   struct redis_failure *f);

/* Non-zero when a kept connection still looks usable: nothing to read (an
 * EOF or unexpected bytes mean the server closed it or it is out of
 * step). No waiting. */
int redis_conn_alive(struct redis_conn *c);

typedef void (*redis_reply_fn)(void *ud, size_t index, const redisReply *reply);

/*
 * Write `len` bytes of formatted commands and read `want` replies, calling
 * fn for each in order; writing and reading are interleaved, so a long
 * pipeline cannot deadlock on full socket buffers. Waits at most
 * timeout_ms without progress, and never past deadline_ms. Returns 0 when
 * every reply came; -1 when the connection failed (f filled, *got replies
 * were delivered to fn; the connection must be closed).
 */
int redis_conn_exchange(struct redis_conn *c, const char *buf, size_t len, size_t want,
                        redis_reply_fn fn, void *ud, int timeout_ms, int64_t deadline_ms,
                        size_t *got, struct redis_failure *f);

void redis_conn_close(struct redis_conn *c);

#endif
