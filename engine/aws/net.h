/* The raw path's transport: a connection opened and driven by fanout
 * itself, without libcurl (http.c frames HTTP/1.1 on it).
 *
 * - Names resolve with getaddrinfo, cached per host and port for
 *   FANOUT_NET_DNS_TTL_MS (libcurl's default: 60 s) in a table of
 *   FANOUT_NET_DNS_ENTRIES (the least recently resolved goes); numeric
 *   hosts need no resolver. getaddrinfo blocks with no timeout of its
 *   own: a name not cached is resolved on a thread of its own (detached;
 *   the connection polls a socket pair for its end), so the connect
 *   timeout bounds the wait ("Resolving ... timed out") and the other
 *   requests of a call go on meanwhile; a lookup given up on ends on its
 *   own and caches what it found. The connections that want a name while
 *   it is being resolved (a cold start's many) wait for that one lookup,
 *   each within its own connect timeout, and all get its answer or its
 *   failure: one thread, one resolver call. (getaddrinfo_a would do the same with
 *   glibc's threads, but cannot be cancelled once running either.)
 * - The resolver is asked with AI_ADDRCONFIG (no IPv6 addresses on a host
 *   without IPv6). Each address (the resolver's order, IPv6 and IPv4
 *   alternating) is tried until one connects: a non-blocking connect,
 *   TCP_NODELAY and the keep-alive probes libcurl's transfers get. The
 *   next address starts after half of the time left, the second after
 *   200 ms when it is of the other family (an IPv6 route that drops
 *   packets costs 200 ms, as libcurl's happy eyeballs), or at once when
 *   every attempt running failed; an attempt is not given up when the
 *   next starts: they run side by side (one epoll set polled as one
 *   descriptor) until the first connects or the connect timeout (RFC
 *   8305).
 * - https: OpenSSL 3's libssl, loaded on the first HTTPS connection
 *   (ssl_load.h), one SSL_CTX per verification setting, the shared CA
 *   store (tls_store.h), TLS 1.2 or later, ALPN http/1.1 alone, SNI for
 *   names (not for IP literals), the peer's certificate checked against
 *   the name (SSL_set1_host; wildcards only as a whole left-most label)
 *   or the address (X509_VERIFY_PARAM_set1_ip_asc) unless verification is
 *   off for that endpoint. SNI and the check take the name in lower case
 *   without an absolute name's trailing dot ("example.com." is resolved
 *   as written, verified as "example.com"). The socket is reached
 *   through a BIO of ours that sends with MSG_NOSIGNAL: no SIGPIPE.
 * - A TCP close without TLS's close_notify reads as a close (a receive's
 *   0) but is not trusted to end an answer (fanout_net_close_trusted).
 * - TLS sessions are resumed, as libcurl's share did: the sessions (TLS
 *   1.2) and tickets (TLS 1.3) servers give are kept per name, port and
 *   verification setting, the last FANOUT_NET_TLS_SESSIONS places, and
 *   offered by every new connection to the same place until a newer one
 *   replaces it. A resumed handshake skips the certificate exchange and its
 *   check: a session is only ever offered where it was made with the
 *   same name checked the same way, and is dropped when a connection to
 *   its place fails in TLS (an alert, a bad record, a refused peer).
 * - The connect timeout covers resolving, connecting and the handshake,
 *   as libcurl's CURLOPT_CONNECTTIMEOUT_MS does.
 *
 * A connection is used by one thread at a time; the cache and the SSL_CTXs
 * are shared (their own lock). */
#ifndef FANOUT_AWS_NET_H
#define FANOUT_AWS_NET_H

#include <stddef.h>
#include <stdint.h>

#include "aws/http.h"

#define FANOUT_NET_DNS_TTL_MS   60000
#define FANOUT_NET_DNS_ENTRIES  32
#define FANOUT_NET_MAX_ADDRS    8
#define FANOUT_NET_TLS_SESSIONS 16

struct fanout_net_conn;

/* What went wrong: the class (FANOUT_HTTP_CONNECT, _TIMEOUT, _TLS, _RESET,
 * _OTHER) and the words, naming the host, never a secret. */
struct fanout_net_error {
    enum fanout_http_error kind;
    char text[256];
};

enum { FANOUT_NET_OK = 0, FANOUT_NET_AGAIN = 1, FANOUT_NET_FAILED = -1 };

/* Start a connection to host:port (`host` without brackets), TLS when
 * `https`, the peer verified unless `insecure`, within connect_timeout_ms
 * of now. NULL with *err filled when it cannot start (resolver, store,
 * libssl, descriptors); else connecting: call fanout_net_step. */
struct fanout_net_conn *fanout_net_open(const char *host, long port, int https,
                                        int insecure, int64_t connect_timeout_ms,
                                        struct fanout_net_error *err);

/* Drive the connect (and handshake) on `revents` from poll (0: the timer
 * or a first try): FANOUT_NET_OK connected, FANOUT_NET_AGAIN poll
 * fanout_net_fd for fanout_net_events until fanout_net_timer_ms, or
 * FANOUT_NET_FAILED with *err. */
int fanout_net_step(struct fanout_net_conn *c, short revents, struct fanout_net_error *err);

int fanout_net_fd(const struct fanout_net_conn *c);
/* POLLIN / POLLOUT: what the connection waits for (a TLS read may need
 * the socket writable and the other way round). */
short fanout_net_events(const struct fanout_net_conn *c);
/* While connecting: when fanout_net_step must run even without events
 * (CLOCK_MONOTONIC ms). */
int64_t fanout_net_timer_ms(const struct fanout_net_conn *c);

/* Send up to n bytes, non-blocking: FANOUT_NET_OK with *sent (> 0),
 * FANOUT_NET_AGAIN, or FANOUT_NET_FAILED with *err. */
int fanout_net_send(struct fanout_net_conn *c, const void *p, size_t n, size_t *sent,
                    struct fanout_net_error *err);

/* Receive up to n bytes, non-blocking: FANOUT_NET_OK with *got (0: the
 * peer closed), FANOUT_NET_AGAIN, or FANOUT_NET_FAILED with *err. */
int fanout_net_recv(struct fanout_net_conn *c, void *p, size_t n, size_t *got,
                    struct fanout_net_error *err);

/* After a receive's 0: whether the close is the peer's own word, so that
 * it may end an answer read to the close. TLS: only when close_notify
 * came first (a TCP FIN or reset alone is anyone's: one injected mid-body
 * would cut it unseen); plain TCP: 1 (a FIN is all it has). */
int fanout_net_close_trusted(const struct fanout_net_conn *c);

/* Whether the TLS layer holds bytes read from the socket and not handed
 * out (then a quiet socket proves nothing): 1 or 0; 0 for plain TCP. */
int fanout_net_pending(const struct fanout_net_conn *c);

/* Whether the connection's TLS handshake resumed a session: 1 or 0. */
int fanout_net_resumed(const struct fanout_net_conn *c);

/* Close: TLS says close_notify first (one send, not waited on) unless a
 * send or receive failed. NULL is ignored. */
void fanout_net_close(struct fanout_net_conn *c);

/* Drop the SSL_CTXs, the TLS sessions and the resolver cache (connections keep their
 * references); for the HTTP layer's last clean-up. */
void fanout_net_cleanup(void);

#ifdef FANOUT_TESTING
/* Test hook: host:port resolves to the numeric addresses addrs[0..n), as
 * if the resolver had said so, until the cache entry expires or is
 * dropped (fanout_net_cleanup). -1: an address is not numeric. */
int fanout_net_test_resolved(const char *host, long port, const char *const *addrs,
                             size_t n);
/* Test hooks: each lookup thread sleeps delay_ms before it resolves (a
 * slow resolver); the lookups still running; the resolver calls made
 * (getaddrinfo) since the process started. */
void fanout_net_test_lookup_delay(int delay_ms);
int fanout_net_test_lookups(void);
int fanout_net_test_resolver_calls(void);
/* Test hook: lookups cannot start a thread (as when pthread_create
 * fails): the connection that starts one resolves on its own thread. */
void fanout_net_test_no_threads(int on);
#endif

#endif
