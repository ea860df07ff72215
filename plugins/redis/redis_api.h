/*
 * The wire side of the redis plugin: destinations, one transport (a plain
 * TCP socket or OpenSSL over it), and a small client that uses only
 * hiredis's command formatter (replies are parsed here, bounded) on top of that transport,
 * so plain and TLS connections run the same code.
 *
 * Why not hiredis's own connection: Debian's hiredis 0.14 has no TLS, and
 * ElastiCache needs TLS for AUTH. Its formatter works on any byte stream;
 * its reply reader is not used (it buffers a bulk string of any announced
 * size): the replies our commands can get are two line types, parsed here.
 *
 * Internal to the plugin (hidden visibility): nothing here is exported.
 * The reply parser (redis_reply_next, redis_match_*) touches no socket, so
 * tests/fuzz/fuzz_redis_reply.c runs it on arbitrary bytes.
 */
#ifndef FANOUT_REDIS_API_H
#define FANOUT_REDIS_API_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

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

/* ---- replies: plain functions over bytes (no I/O), fuzzed ---- */

/* The longest reply line accepted. Every command the plugin sends (AUTH,
 * SELECT, SET, MSET, DEL, PING) is answered by a simple string (+OK, +PONG),
 * an integer (DEL: :0 or :1) or an error line; Redis's error texts are well
 * under 1 KiB. Anything longer is a protocol error, never buffered further. */
#define REDIS_MAX_REPLY_LINE 4096
/* One exchange (a call's pipeline on one connection) must end within
 * timeoutMs plus 1 ms per this many bytes sent (at least 10 MB/s on average;
 * a VPC link moves 100 times that): a server that drips its replies cannot
 * hold a call longer, whatever the inactivity timer says. */
#define REDIS_BYTES_PER_MS 10000

/* One reply at buf[0..len): 1 with *used bytes (CRLF included), *type '+',
 * '-' or ':' and the text after the type byte (len *text_len, not
 * NUL-terminated); 0 when more bytes are needed; -1 when the bytes cannot
 * start a reply any command of ours can get (another RESP type: a bulk
 * string, an array, a RESP3 type; a line over REDIS_MAX_REPLY_LINE; a CR
 * without LF or a bare LF). Which line type a command may get is the
 * matcher's business (an integer answers only a DEL). No reply type is
 * buffered beyond its first line: a "$2000000000" header is refused at once. */
int redis_reply_next(const char *buf, size_t len, char *type, const char **text,
                     size_t *text_len, size_t *used);

/* What a command of an exchange can be answered by, besides an error. */
enum redis_expect {
    REDIS_EXPECT_OK = 0,  /* AUTH, SELECT, SET (no NX/XX/GET), MSET: exactly +OK */
    REDIS_EXPECT_DEL = 1, /* DEL of one key: exactly :0 (not there) or :1 */
};

/* Called for the reply to command `index` of an exchange: is_error, and
 * the text after '+', ':' or '-' (NUL-terminated, at most
 * REDIS_MAX_REPLY_LINE). A reply that is not an error is the one its
 * command expects (+OK, or :0 / :1 for a DEL): anything else puts the
 * exchange out of step and never reaches fn. */
typedef void (*redis_reply_fn)(void *ud, size_t index, int is_error, const char *text,
                               size_t len);

/*
 * The replies of one exchange: `want` commands, each answered by an error
 * or by what `expect[i]` says (+OK for all when expect is NULL), then (when
 * `marker`) the closing PING, answered by +PONG. Every
 * reply must answer exactly the next command with a reply that command can
 * get; anything else (another type, +PONG before the marker, +OK at the
 * marker) puts the exchange out of step, and none of its replies is trusted
 * (an extra reply shifts all those after it). An error at the marker (PING
 * refused: NOAUTH, BUSY...) ends the exchange too; -NOPERM (a user who may
 * not run PING) sets marker_refused.
 */
struct redis_match {
    size_t want;
    const unsigned char *expect; /* enum redis_expect per command, or NULL */
    int marker;
    const char *where; /* "host:port", for messages */
    redis_reply_fn fn;
    void *ud;
    size_t got; /* replies matched (the marker's included) */
    int done;
    int desync;
    int marker_refused;
    char why[224];
    char text[REDIS_MAX_REPLY_LINE + 1];
};

/* Match the complete replies at buf[0..len), calling fn for each command's;
 * stops when done or out of step. Returns the bytes used. */
size_t redis_match_feed(struct redis_match *m, const char *buf, size_t len);

/* After the last reply, `extra` bytes left unread put the exchange out of
 * step too (more replies than commands). */
void redis_match_end(struct redis_match *m, size_t extra);

/*
 * Write the formatted commands, `nsegs` pieces back to back (plain TCP
 * sends them from where they are; TLS gathers them into records), then the
 * PING marker (unless the connection's user may not run it), and read their
 * `want` replies, calling fn for each in order (expect: as in struct
 * redis_match). Command i ends ends[i] bytes into the pieces: its reply may
 * not come before it is written entirely (a reply that does was not caused
 * by it, and puts the exchange out of step). Writing and reading are
 * interleaved, so a long pipeline cannot deadlock on full socket buffers.
 * Waits at most timeout_ms without progress, at most timeout_ms + bytes /
 * REDIS_BYTES_PER_MS in all, and never past deadline_ms (the invocation's).
 * Returns 0 when every reply came in step; -1 when the connection failed (f
 * filled; *got replies were delivered to fn and stand) or the replies were
 * out of step (f->code "ProtocolError", *got = 0: no reply delivered to fn
 * is to be trusted). Either way the connection must be closed.
 */
int redis_conn_exchange(struct redis_conn *c, const struct iovec *segs, size_t nsegs,
                        const size_t *ends, const unsigned char *expect, size_t want,
                        redis_reply_fn fn, void *ud, int timeout_ms, int64_t deadline_ms,
                        size_t *got, struct redis_failure *f);

void redis_conn_close(struct redis_conn *c);

#endif
