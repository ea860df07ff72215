/*
 * The memcached destination, shared between memcached.c (lifecycle, mapping
 * options, keys, the send loop) and memcached_api.c (ElastiCache
 * auto-discovery and the per-node writes, both over sockets of our own:
 * the text protocol is written and every reply parsed and checked here;
 * libmemcached only computes the ketama ring, where no server reply can
 * reach it). Internal to the plugin: everything here has hidden
 * visibility; the only exported symbol is the plugin descriptor.
 */
#ifndef FANOUT_MEMCACHED_H
#define FANOUT_MEMCACHED_H

#include <stddef.h>
#include <stdint.h>

#include <time.h>

#include <fanout/plugin.h>

/* ---- limits, with their sources ---- */

/* memcached protocol.txt: "the key must not include control characters or
 * whitespace" and "currently the length limit of a key is set at 250
 * characters"; libmemcached's MEMCACHED_MAX_KEY is 251 with the NUL. */
#define MC_MAX_KEY_BYTES 250
/* memcached -h: "-I, --max-item-size=<num> adjusts max item size (default:
 * 1m, min: 1k, max: 1024m)". ElastiCache's `max_item_size` parameter has the
 * same 1 MiB default. */
#define MC_DEFAULT_ITEM_BYTES (1024 * 1024)
#define MC_MIN_ITEM_BYTES     1024
#define MC_MAX_ITEM_BYTES     (1024 * 1024 * 1024)
/* What an item costs the server beyond key and value (memcached 1.6
 * items.c/proto_text.c: a 48-byte item header, the 8-byte CAS, the key's
 * NUL and the value's CRLF are counted against -I: 59 bytes), rounded up. */
#define MC_ITEM_OVERHEAD 64
/* memcached protocol.txt: an exptime above 30 days (2592000 s) is read as an
 * absolute Unix time, so longer relative expirations are sent as now + n. */
#define MC_RELATIVE_EXPIRY_MAX 2592000
/* A hashed key: "sha256:" and 64 hex digits. */
#define MC_HASHED_KEY_PREFIX "sha256:"
#define MC_HASHED_KEY_BYTES  (sizeof MC_HASHED_KEY_PREFIX - 1 + 64)
/* One `send` carries up to a whole Lambda batch (an event source mapping's
 * BatchSize is at most 10,000), so the per-node work of a batch runs
 * concurrently; bigger (KPL-expanded) batches are cut into several calls. */
#define MC_MAX_MESSAGES_PER_CALL 10000
/* An ElastiCache Memcached cluster has at most 60 nodes (the default quota
 * is 20 per cluster, raisable); anything much bigger is a malformed reply. */
#define MC_MAX_NODES 256
/* A discovery reply for MC_MAX_NODES nodes of ~100 bytes each fits. */
#define MC_MAX_DISCOVERY_REPLY (64 * 1024)
/* DNS names are at most 253 characters. */
#define MC_MAX_HOST 253
/* No write is started with less than the I/O timeout plus this margin left
 * before the invocation's deadline: it is reported retryable instead. */
#define MC_DEADLINE_MARGIN_MS 200
/* The longest reply line accepted to a set, delete or version (protocol.txt:
 * STORED, NOT_STORED, EXISTS, NOT_FOUND, DELETED, ERROR, CLIENT_ERROR <msg>,
 * SERVER_ERROR <msg>, VERSION <v>; memcached's own error texts are under
 * 100 bytes). A longer line is a protocol error, never buffered further. */
#define MC_MAX_REPLY_LINE 1024
/* A node's exchange (one call's records for it) must end within timeoutMs
 * plus this much per byte sent: 1 ms per 10 kB, i.e. it must move at least
 * 10 MB/s on average (a VPC link moves 100 times that). The invocation's
 * deadline caps it too. */
#define MC_BYTES_PER_MS 10000

/* ---- mapping options (the engine fills this block) ---- */

struct mc_options {
    int64_t expiration_seconds;
    int hash_long_keys;
    const char *key_prefix;
    int64_t max_item_bytes;
    int auto_discovery;
    int64_t discovery_interval_seconds;
    int64_t timeout_ms;
    int delete_on_remove;
};

/* ---- endpoints and nodes ---- */

struct mc_endpoint {
    char host[MC_MAX_HOST + 1]; /* a name, an IPv4 address or a bare IPv6 one */
    uint16_t port;
};

/* A node's connection, kept across calls and invocations. Used by one
 * thread at a time (the send's thread for that node). */
struct mc_conn {
    int fd;   /* -1: not connected */
    int used; /* has carried an exchange (it may have gone stale since) */
};

/* One node of the cluster, with its own connection, so that the nodes of a
 * batch can be written concurrently. */
struct mc_node {
    struct mc_endpoint ep; /* the name ketama hashes: the discovered host
                              name, else its IP address */
    char ip[64];           /* from discovery, may be empty */
    struct mc_conn *mc;
    int used;           /* unused (kept for the layout of mc_config) */
    char last_code[64]; /* the last retryable failure's code and cause */
    char last_cause[160];
};

/* What a discovery reply says. */
struct mc_config {
    uint64_t version;
    size_t count;
    struct mc_node nodes[]; /* only ep and ip filled */
};

enum mc_discovery {
    MC_DISCOVERED = 0, /* *out is the cluster's configuration */
    MC_PLAIN = 1,      /* a memcached that knows neither command */
    MC_FAILED = -1,    /* err says why */
};

/* Ask host:port for its cluster configuration: `config get cluster`, then on
 * ERROR the pre-1.4.14 `get AmazonElastiCache:cluster`. */
enum mc_discovery mc_discover(const struct mc_endpoint *ep, int timeout_ms,
                              struct mc_config **out, char *err, size_t err_len);

/* Parse the body of a CONFIG or VALUE reply ("<version>\n<host|ip|port>
 * ...\n"). Returns NULL with err on a malformed body. */
struct mc_config *mc_config_parse(const char *body, size_t len, char *err, size_t err_len);

/* ---- writes ---- */

/* One message to write, prepared by memcached.c. */
struct mc_item {
    char key[MC_MAX_KEY_BYTES + 1];
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    int remove; /* delete the key instead of setting it */
    uint32_t node;
    struct fanout_outcome *outcome;
};

struct mc_write_options {
    time_t expiration; /* as memcached reads it: relative, or absolute */
    int timeout_ms;
    const struct fanout_host *host;
    const char *scope;
};

/* Write `count` items (all for `node`) in order, filling the outcomes of
 * those not stored. The first retryable failure ends the node's part: the
 * rest are marked retryable without being sent, so that no later record of
 * a key can overtake an earlier one that is to be resent. */
void mc_write_node(struct mc_node *node, struct mc_item *const *items, size_t count,
                   const struct mc_write_options *wo);

/* A node's connection state (not connected yet), and its release. */
struct mc_conn *mc_node_handle(const struct mc_endpoint *ep, int timeout_ms);
void mc_conn_free(struct mc_conn *c);

/* ---- replies: plain functions over bytes (no I/O), fuzzed ---- */

enum mc_reply_kind {
    MC_REPLY_STORED,
    MC_REPLY_NOT_STORED,
    MC_REPLY_EXISTS,
    MC_REPLY_NOT_FOUND,
    MC_REPLY_DELETED,
    MC_REPLY_ERROR,
    MC_REPLY_CLIENT_ERROR,
    MC_REPLY_SERVER_ERROR,
    MC_REPLY_VERSION,
    MC_REPLY_OTHER, /* a line that is none of those (OK, END, a number...) */
};

struct mc_reply {
    enum mc_reply_kind kind;
    const char *line; /* the whole line, without its CRLF (not NUL-terminated) */
    size_t len;
};

/* One reply line at buf[0..len): 1 with *used bytes (CRLF included), 0 when
 * more bytes are needed, -1 when buf cannot start a reply line (a line over
 * MC_MAX_REPLY_LINE, a bare LF or CR): the stream is out of step. */
int mc_reply_next(const char *buf, size_t len, struct mc_reply *r, size_t *used);

/* The replies of one exchange: `count` items, then the `version` marker.
 * Every reply must answer exactly the next command with a reply that
 * command can get; anything else (a reply kind the command cannot get, a
 * VERSION before the marker, a set reply at the marker, bytes after the
 * marker's reply) puts the exchange out of step: none of its replies is
 * trusted. */
struct mc_match {
    struct mc_item *const *items;
    size_t count;
    const char *where; /* "host:port", for messages */
    size_t got;        /* replies matched so far (the marker's included) */
    int done;          /* the marker's reply came: every item has its answer */
    int desync;        /* out of step: why[] says how */
    int drop;          /* do not reuse the connection (ERROR, CLIENT_ERROR) */
    char why[224];
};

/* Match the complete replies at buf[0..len) to the next commands, filling
 * the items' outcomes (a reply that does not confirm its command fails its
 * item with the reply); stops at the marker's reply or out of step.
 * Returns the bytes used; bytes left after the marker's reply are the
 * caller's to judge (mc_match_end). */
size_t mc_match_feed(struct mc_match *m, const char *buf, size_t len);

/* After the marker's reply, `extra` bytes left unread put the exchange out
 * of step too. */
void mc_match_end(struct mc_match *m, size_t extra);

/* How much of `b` is one complete discovery reply (CONFIG/VALUE block, or
 * one line): > 0 its length, 0 not yet, -1 never will be. */
long mc_discovery_complete(const char *b, size_t len);

/* The mc_config of a complete discovery reply (a CONFIG or VALUE block), or
 * NULL with err. */
struct mc_config *mc_discovery_parse(const char *reply, size_t len, char *err, size_t n);

#endif /* FANOUT_MEMCACHED_H */
