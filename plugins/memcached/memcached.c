/*
 * The `memcached` destination: each record stored under its key (Kinesis
 * partition key, DynamoDB key values joined by '|') with its data as the
 * value, in Memcached nodes reached directly from the function's VPC
 * (ElastiCache for Memcached, or any memcached).
 *
 * Destination: one `host:port` (an ElastiCache configuration endpoint, whose
 * nodes are discovered and refreshed, or a plain memcached used as the only
 * node), or a node list `host:port,host:port,...` used as is. Keys go to the
 * nodes by libmemcached's weighted ketama (MD5, 160 points per server, as
 * MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED builds it), so readers with the same
 * setting find them. See README.md for the decisions.
 *
 * Lifecycle and mapping options here; the wire in memcached_api.c.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libmemcached/memcached.h>
#include <openssl/evp.h>

#include <fanout/plugin_state.h>

#include "memcached.h"

enum s_mode {
    S_MODE_NONE,    /* nothing discovered yet */
    S_MODE_STATIC,  /* the destination's node list */
    S_MODE_CLUSTER, /* nodes from the configuration endpoint */
    S_MODE_PLAIN,   /* the endpoint is a plain memcached: it is the one node */
};

struct mc_instance {
    const struct fanout_host *host;
    char scope[96];
    struct mc_options opt;
    char *key_prefix;
    size_t key_prefix_len;
    struct mc_endpoint *seeds;
    size_t seed_count;
    int discover;
    /* The nodes and the ketama ring over them (a handle that never
     * connects: it only maps keys to node indexes). */
    struct mc_node *nodes;
    size_t node_count;
    memcached_st *ring;
    enum s_mode mode;
    uint64_t version;
    int64_t next_discovery_ms;
    char last_error[320];
};

#define S_LOG(level, in, ...)                                                              \
    do {                                                                                   \
        if ((in)->host)                                                                    \
            (in)->host->log(level, (in)->scope, __VA_ARGS__);                              \
    } while (0)

/* ---- destination ---- */

static int s_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

/* "host:port[,host:port...]" with "[v6]:port" for IPv6 addresses, into
 * eps (MC_MAX_NODES of them). Returns their number, or -1 with err. */
static long s_parse_destination(const char *dest, struct mc_endpoint *eps, char *err,
                                size_t n)
{
    if (!dest || !*dest) {
        snprintf(err, n, "the destination is empty");
        return -1;
    }
    if (strstr(dest, "://")) {
        snprintf(err, n, "\"%.64s\" is a URL: give host:port without a scheme", dest);
        return -1;
    }
    long count = 0;
    const char *p = dest;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *host = p, *colon;
        size_t hlen;
        if (len == 0) {
            snprintf(err, n, "node %ld of the list is empty (a stray comma?)", count + 1);
            return -1;
        }
        if (*p == '[') {
            const char *close = memchr(p, ']', len);
            if (!close || close + 1 >= p + len || close[1] != ':') {
                snprintf(err, n, "\"%.*s\": expected [IPv6 address]:port", (int)len, p);
                return -1;
            }
            host = p + 1;
            hlen = (size_t)(close - host);
            colon = close + 1;
            for (size_t i = 0; i < hlen; i++)
                if (!(s_host_char(host[i]) || host[i] == ':')) {
                    hlen = 0;
                    break;
                }
        } else {
            colon = memchr(p, ':', len);
            if (!colon) {
                snprintf(err, n,
                         "\"%.*s\" has no port: expected host:port, e.g. %.*s:11211",
                         (int)len, p, (int)len, p);
                return -1;
            }
            hlen = (size_t)(colon - p);
            for (size_t i = 0; i < hlen; i++)
                if (!s_host_char(p[i])) {
                    hlen = 0;
                    break;
                }
        }
        if (hlen == 0 || hlen > MC_MAX_HOST) {
            snprintf(err, n,
                     "\"%.*s\": the host is not a DNS name or IP address (letters, digits, "
                     "'.', '-', '_'; IPv6 in brackets)",
                     (int)len, p);
            return -1;
        }
        const char *port = colon + 1;
        size_t plen = (size_t)(p + len - port);
        unsigned long pv = 0;
        int ok = plen >= 1 && plen <= 5;
        for (size_t i = 0; ok && i < plen; i++) {
            ok = port[i] >= '0' && port[i] <= '9';
            pv = pv * 10 + (unsigned long)(port[i] - '0');
        }
        if (!ok || pv == 0 || pv > 65535) {
            snprintf(err, n, "\"%.*s\": the port must be a number from 1 to 65535",
                     (int)len, p);
            return -1;
        }
        if (count == MC_MAX_NODES) {
            snprintf(err, n, "more than %d nodes", MC_MAX_NODES);
            return -1;
        }
        memcpy(eps[count].host, host, hlen);
        eps[count].host[hlen] = 0;
        eps[count].port = (uint16_t)pv;
        for (long i = 0; i < count; i++)
            if (eps[i].port == eps[count].port && !strcmp(eps[i].host, eps[count].host)) {
                snprintf(err, n, "node %.*s is listed twice", (int)len, p);
                return -1;
            }
        count++;
        if (!end)
            break;
        p = end + 1;
    }
    return count;
}

/* ---- keys ---- */

/* Why `key` (with the prefix) cannot be a memcached text-protocol key, or
 * NULL when it can. */
static const char *s_key_problem(const uint8_t *key, size_t len, size_t prefix_len,
                                 char *why, size_t n)
{
    if (len == 0)
        return "it is empty";
    if (len + prefix_len > MC_MAX_KEY_BYTES) {
        snprintf(why, n, "it is %zu bytes%s, more than memcached's %d", len + prefix_len,
                 prefix_len ? " with keyPrefix" : "", MC_MAX_KEY_BYTES);
        return why;
    }
    for (size_t i = 0; i < len; i++) {
        if (key[i] == ' ') {
            snprintf(why, n, "it has a space at byte %zu", i);
            return why;
        }
        if (key[i] < 0x20 || key[i] == 0x7f) {
            snprintf(why, n, "it has the control character 0x%02x at byte %zu", key[i], i);
            return why;
        }
    }
    return NULL;
}

/* A key for a message: keyPrefix + the record's key, or, for keys that do
 * not fit and hashLongKeys, keyPrefix + "sha256:" + hex SHA-256 of the key. */
static int s_make_key(const struct mc_instance *in, const struct fanout_message *m,
                      struct mc_item *it, char *err, size_t n)
{
    char why[96];
    const char *problem =
        s_key_problem(m->key, m->key_len, in->key_prefix_len, why, sizeof why);
    memcpy(it->key, in->key_prefix, in->key_prefix_len);
    if (!problem) {
        memcpy(it->key + in->key_prefix_len, m->key, m->key_len);
        it->key_len = in->key_prefix_len + m->key_len;
        it->key[it->key_len] = 0;
        return 0;
    }
    if (!in->opt.hash_long_keys) {
        char shown[48];
        size_t o = 0, i = 0;
        for (; i < m->key_len && o < 40; i++) {
            uint8_t c = m->key[i];
            if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
                shown[o++] = (char)c;
            else
                o += (size_t)snprintf(shown + o, sizeof shown - o, "\\x%02x", c);
        }
        shown[o] = 0;
        snprintf(err, n,
                 "key \"%s%s\" is not a memcached key: %s (keys are 1-%d bytes without "
                 "spaces or control characters; hashLongKeys stores such records under "
                 "sha256:<hex>)",
                 shown, i < m->key_len ? "..." : "", problem, MC_MAX_KEY_BYTES);
        return -1;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(m->key, m->key_len, md, &md_len, EVP_sha256(), NULL) || md_len != 32) {
        snprintf(err, n, "cannot compute the SHA-256 of the key");
        return -1;
    }
    static const char hex[] = "0123456789abcdef";
    char *o = it->key + in->key_prefix_len;
    memcpy(o, MC_HASHED_KEY_PREFIX, sizeof MC_HASHED_KEY_PREFIX - 1);
    o += sizeof MC_HASHED_KEY_PREFIX - 1;
    for (unsigned i = 0; i < md_len; i++) {
        *o++ = hex[md[i] >> 4];
        *o++ = hex[md[i] & 15];
    }
    *o = 0;
    it->key_len = (size_t)(o - it->key);
    return 0;
}

/* ---- nodes ---- */

static void s_free_nodes(struct mc_node *nodes, size_t count)
{
    for (size_t i = 0; i < count; i++)
        mc_conn_free(nodes[i].mc);
    free(nodes);
}

/* Make `list` the instance's nodes: a new ring, and the handles of nodes
 * that stay kept (with their connections). */
static int s_apply(struct mc_instance *in, const struct mc_node *list, size_t count,
                   char *err, size_t n)
{
    struct mc_node *nodes = calloc(count, sizeof *nodes);
    memcached_st *ring = memcached_create(NULL);
    memcached_return_t rc = MEMCACHED_SUCCESS;
    if (!nodes || !ring) {
        snprintf(err, n, "out of memory");
        goto fail;
    }
    /* libketama-compatible consistent hashing: MD5 key hash, 160 points per
     * server (40 MD5s of "host:port-i" split in 4), as
     * MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED sets it up; the hashes are named
     * explicitly so a change of libmemcached's defaults cannot move keys. */
    if ((rc = memcached_behavior_set(ring, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1)) !=
            MEMCACHED_SUCCESS ||
        (rc = memcached_behavior_set(ring, MEMCACHED_BEHAVIOR_HASH, MEMCACHED_HASH_MD5)) !=
            MEMCACHED_SUCCESS ||
        (rc = memcached_behavior_set(ring, MEMCACHED_BEHAVIOR_KETAMA_HASH,
                                     MEMCACHED_HASH_MD5)) != MEMCACHED_SUCCESS) {
        snprintf(err, n, "setting up ketama: %s", memcached_strerror(ring, rc));
        goto fail;
    }
    for (size_t i = 0; i < count; i++) {
        nodes[i].ep = list[i].ep;
        memcpy(nodes[i].ip, list[i].ip, sizeof nodes[i].ip);
        for (size_t j = 0; j < in->node_count; j++)
            if (in->nodes[j].mc && in->nodes[j].ep.port == list[i].ep.port &&
                !strcmp(in->nodes[j].ep.host, list[i].ep.host)) {
                nodes[i].mc = in->nodes[j].mc;
                nodes[i].used = in->nodes[j].used;
                memcpy(nodes[i].last_code, in->nodes[j].last_code,
                       sizeof nodes[i].last_code);
                memcpy(nodes[i].last_cause, in->nodes[j].last_cause,
                       sizeof nodes[i].last_cause);
                in->nodes[j].mc = NULL;
                break;
            }
        if (!nodes[i].mc)
            nodes[i].mc = mc_node_handle(&list[i].ep, (int)in->opt.timeout_ms);
        if (!nodes[i].mc) {
            snprintf(err, n, "out of memory setting up node %s:%u", list[i].ep.host,
                     (unsigned)list[i].ep.port);
            goto fail;
        }
        if ((rc = memcached_server_add(ring, list[i].ep.host, list[i].ep.port)) !=
            MEMCACHED_SUCCESS) {
            snprintf(err, n, "adding %s:%u: %s", list[i].ep.host, (unsigned)list[i].ep.port,
                     memcached_strerror(ring, rc));
            goto fail;
        }
    }
    s_free_nodes(in->nodes, in->node_count);
    if (in->ring)
        memcached_free(in->ring);
    in->nodes = nodes;
    in->node_count = count;
    in->ring = ring;
    return 0;
fail:
    /* handles taken from the current nodes go back */
    for (size_t i = 0; nodes && i < count; i++)
        for (size_t j = 0; nodes[i].mc && j < in->node_count; j++)
            if (!in->nodes[j].mc && in->nodes[j].ep.port == nodes[i].ep.port &&
                !strcmp(in->nodes[j].ep.host, nodes[i].ep.host)) {
                in->nodes[j].mc = nodes[i].mc;
                nodes[i].mc = NULL;
            }
    if (nodes)
        s_free_nodes(nodes, count);
    if (ring)
        memcached_free(ring);
    return -1;
}

static void s_node_names(const struct mc_instance *in, char *out, size_t n)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < in->node_count && o + 1 < n; i++) {
        int w = snprintf(out + o, n - o, "%s%s:%u", i ? ", " : "", in->nodes[i].ep.host,
                         (unsigned)in->nodes[i].ep.port);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    if (o + 1 >= n && n > 4)
        memcpy(out + n - 4, "...", 4);
}

/* Ask the configuration endpoint again when the interval has passed (or
 * when there are no nodes yet). A changed version rebuilds the node list;
 * a failed refresh keeps the nodes there are. */
static void s_refresh(struct mc_instance *in)
{
    int64_t now = in->host->now_ms();
    if (in->node_count && now < in->next_discovery_ms)
        return;
    in->next_discovery_ms = now + in->opt.discovery_interval_seconds * 1000;
    const struct mc_endpoint *ep = &in->seeds[0];
    struct mc_config *cfg = NULL;
    char err[256], names[512];
    enum mc_discovery r = mc_discover(ep, (int)in->opt.timeout_ms, &cfg, err, sizeof err);
    if (r == MC_DISCOVERED) {
        if (in->mode == S_MODE_CLUSTER && cfg->version == in->version) {
            free(cfg);
            return;
        }
        if (s_apply(in, cfg->nodes, cfg->count, err, sizeof err) == 0) {
            s_node_names(in, names, sizeof names);
            if (in->mode == S_MODE_CLUSTER)
                S_LOG(FANOUT_LOG_INFO, in,
                      "cluster configuration version %llu (was %llu) from %s:%u: %zu "
                      "node(s): %s",
                      (unsigned long long)cfg->version, (unsigned long long)in->version,
                      ep->host, (unsigned)ep->port, in->node_count, names);
            else
                S_LOG(FANOUT_LOG_INFO, in,
                      "cluster configuration version %llu from %s:%u: %zu node(s): %s",
                      (unsigned long long)cfg->version, ep->host, (unsigned)ep->port,
                      in->node_count, names);
            in->mode = S_MODE_CLUSTER;
            in->version = cfg->version;
            free(cfg);
            return;
        }
        free(cfg);
    } else if (r == MC_PLAIN) {
        if (in->mode == S_MODE_PLAIN)
            return;
        struct mc_node self = {.ep = *ep};
        if (s_apply(in, &self, 1, err, sizeof err) == 0) {
            S_LOG(FANOUT_LOG_INFO, in,
                  "%s:%u answers neither \"config get cluster\" nor \"get "
                  "AmazonElastiCache:cluster\": a plain memcached, not an ElastiCache "
                  "configuration endpoint; using it as the only node",
                  ep->host, (unsigned)ep->port);
            in->mode = S_MODE_PLAIN;
            return;
        }
    }
    snprintf(in->last_error, sizeof in->last_error, "cluster discovery failed: %s", err);
    if (in->node_count) {
        s_node_names(in, names, sizeof names);
        S_LOG(FANOUT_LOG_WARN, in, "%s; keeping the %zu node(s) known: %s", in->last_error,
              in->node_count, names);
    } else {
        S_LOG(FANOUT_LOG_WARN, in, "%s", in->last_error);
        in->next_discovery_ms = now; /* try again at the next send */
    }
}

/* ---- the plugin ---- */

/* Host and state (plugin.h): init keeps the host in a fanout_plugin_state;
 * open copies it into the instance. */
static int s_init(const struct fanout_host *host, void **state, struct fanout_error *err)
{
    return fanout_plugin_state_new(host, state, err);
}

static int s_validate(const struct fanout_target *t, char *err, size_t n)
{
    if (t->role || t->region) {
        snprintf(err, n,
                 "a memcached target is reached directly in the function's VPC: it has no "
                 "AWS role or region (remove \"%s\")",
                 t->role ? "role" : "region");
        return -1;
    }
    if (t->external_id) {
        snprintf(err, n, "a memcached target has no AWS role, so no externalId either");
        return -1;
    }
    struct mc_endpoint *eps = calloc(MC_MAX_NODES, sizeof *eps);
    if (!eps) {
        snprintf(err, n, "out of memory");
        return -1;
    }
    long count = s_parse_destination(t->destination, eps, err, n);
    free(eps);
    if (count < 0)
        return -1;
    const struct mc_options *o = t->options;
    if (o && o->key_prefix) {
        size_t len = strlen(o->key_prefix);
        char why[96];
        const char *problem =
            s_key_problem((const uint8_t *)o->key_prefix, len, 0, why, sizeof why);
        if (len && problem) {
            snprintf(err, n, "keyPrefix: %s", problem);
            return -1;
        }
        if (len > MC_MAX_KEY_BYTES - MC_HASHED_KEY_BYTES) {
            snprintf(err, n,
                     "keyPrefix is %zu bytes; at most %zu leave room for a hashed key "
                     "(memcached keys are at most %d bytes)",
                     len, (size_t)(MC_MAX_KEY_BYTES - MC_HASHED_KEY_BYTES),
                     MC_MAX_KEY_BYTES);
            return -1;
        }
    }
    return 0;
}

static int s_limits(void *state, const struct fanout_target *t, struct fanout_limits *lim,
                    char *err, size_t n)
{
    (void)state;
    const struct mc_options *o = t->options;
    int64_t item = o ? o->max_item_bytes : MC_DEFAULT_ITEM_BYTES;
    size_t prefix = o && o->key_prefix ? strlen(o->key_prefix) : 0;
    if (item < MC_MIN_ITEM_BYTES) {
        snprintf(err, n, "maxItemBytes must be at least %d", MC_MIN_ITEM_BYTES);
        return -1;
    }
    /* key + value + the server's per-item bytes must fit in the item size */
    lim->max_message_bytes = (uint64_t)item - MC_ITEM_OVERHEAD - prefix;
    lim->key_counts = 1;
    return 0;
}

static int s_open(void *state, const struct fanout_target *t, void **out,
                  struct fanout_error *err)
{
    const struct fanout_plugin_state *s = state;
    struct mc_instance *in = calloc(1, sizeof *in);
    if (!in) {
        snprintf(err->message, sizeof err->message, "out of memory");
        return -1;
    }
    in->host = s->host;
    snprintf(in->scope, sizeof in->scope, "memcached:%s", t->id ? t->id : "?");
    if (t->options)
        in->opt = *(const struct mc_options *)t->options;
    else
        in->opt = (struct mc_options){.max_item_bytes = MC_DEFAULT_ITEM_BYTES,
                                      .auto_discovery = 1,
                                      .discovery_interval_seconds = 60,
                                      .timeout_ms = 1000};
    in->key_prefix = strdup(in->opt.key_prefix ? in->opt.key_prefix : "");
    in->opt.key_prefix = NULL; /* engine-owned; ours is key_prefix */
    in->seeds = calloc(MC_MAX_NODES, sizeof *in->seeds);
    long count = in->key_prefix && in->seeds
                     ? s_parse_destination(t->destination, in->seeds, err->message,
                                           sizeof err->message)
                     : -1;
    if (count <= 0) {
        if (!in->key_prefix || !in->seeds)
            snprintf(err->message, sizeof err->message, "out of memory");
        snprintf(err->code, sizeof err->code, "InvalidDestination");
        free(in->key_prefix);
        free(in->seeds);
        free(in);
        return -1;
    }
    in->key_prefix_len = strlen(in->key_prefix);
    in->seed_count = (size_t)count;
    in->discover = count == 1 && in->opt.auto_discovery;
    if (!in->discover) {
        struct mc_node *list = calloc(in->seed_count, sizeof *list);
        for (size_t i = 0; list && i < in->seed_count; i++)
            list[i].ep = in->seeds[i];
        if (!list || s_apply(in, list, in->seed_count, err->message, sizeof err->message)) {
            if (!list)
                snprintf(err->message, sizeof err->message, "out of memory");
            free(list);
            free(in->key_prefix);
            free(in->seeds);
            free(in);
            return -1;
        }
        free(list);
        in->mode = S_MODE_STATIC;
    }
    *out = in;
    return 0;
}

struct s_job {
    struct mc_node *node;
    struct mc_item **items;
    size_t count;
    const struct mc_write_options *wo;
};

static void *s_job_run(void *arg)
{
    struct s_job *j = arg;
    mc_write_node(j->node, j->items, j->count, j->wo);
    return NULL;
}

static void s_fail_all(const struct fanout_batch *b, struct fanout_outcome *out, int status,
                       const char *code, const char *msg)
{
    for (size_t i = 0; i < b->count; i++)
        fanout_outcome_set(&out[i], status, code, "%s", msg);
}

static int s_send(void *instance, const struct fanout_batch *b, struct fanout_outcome *out)
{
    struct mc_instance *in = instance;
    if (b->count == 0)
        return 0;
    if (in->discover)
        s_refresh(in);
    if (!in->node_count) {
        s_fail_all(b, out, FANOUT_RETRY, "DiscoveryFailed", in->last_error);
        return -1;
    }
    struct mc_item *items = calloc(b->count, sizeof *items);
    struct mc_item **by_node = calloc(b->count, sizeof *by_node);
    struct s_job *jobs = calloc(in->node_count, sizeof *jobs);
    pthread_t *tids = calloc(in->node_count, sizeof *tids);
    size_t *counts = calloc(in->node_count, sizeof *counts);
    int *made = calloc(in->node_count, sizeof *made);
    if (!items || !by_node || !jobs || !tids || !counts || !made) {
        free(made);
        free(items);
        free(by_node);
        free(jobs);
        free(tids);
        free(counts);
        s_fail_all(b, out, FANOUT_RETRY, "OutOfMemory",
                   "out of memory preparing the batch");
        return -1;
    }
    for (size_t i = 0; i < b->count; i++) {
        const struct fanout_message *m = b->messages[i];
        struct mc_item *it = &items[i];
        it->outcome = &out[i];
        it->node = UINT32_MAX;
        char why[256];
        if (s_make_key(in, m, it, why, sizeof why) != 0) {
            fanout_outcome_set(&out[i], FANOUT_FATAL, "InvalidKey", "%s", why);
            continue;
        }
        it->value = m->body;
        it->value_len = m->body_len;
        const char *action = m->record_count ? m->records[0]->action : NULL;
        it->remove = in->opt.delete_on_remove && action && !strcmp(action, "REMOVE");
        it->node = in->node_count == 1
                       ? 0
                       : memcached_generate_hash(in->ring, it->key, it->key_len);
        if (it->node >= in->node_count) {
            fanout_outcome_set(&out[i], FANOUT_RETRY, "NoServer",
                               "libmemcached mapped the key to no node");
            it->node = UINT32_MAX;
            continue;
        }
        counts[it->node]++;
        if (in->host->log_enabled(FANOUT_LOG_DEBUG))
            S_LOG(FANOUT_LOG_DEBUG, in, "key \"%s\" -> node %s:%u", it->key,
                  in->nodes[it->node].ep.host, (unsigned)in->nodes[it->node].ep.port);
    }
    /* Each node's items, in batch order. */
    size_t at = 0, njobs = 0;
    for (size_t k = 0; k < in->node_count; k++) {
        jobs[k].items = by_node + at;
        at += counts[k];
    }
    for (size_t i = 0; i < b->count; i++)
        if (items[i].node != UINT32_MAX) {
            struct s_job *j = &jobs[items[i].node];
            j->items[j->count++] = &items[i];
        }
    time_t exp = (time_t)in->opt.expiration_seconds;
    if (exp > MC_RELATIVE_EXPIRY_MAX)
        exp += (time_t)(in->host->now_ms() / 1000);
    struct mc_write_options wo = {.expiration = exp,
                                  .timeout_ms = (int)in->opt.timeout_ms,
                                  .host = in->host,
                                  .scope = in->scope};
    /* The nodes are written concurrently, each by one thread with its own
     * handle; the last node with work runs on this thread. */
    struct s_job *active[MC_MAX_NODES];
    for (size_t k = 0; k < in->node_count; k++)
        if (jobs[k].count) {
            jobs[k].node = &in->nodes[k];
            jobs[k].wo = &wo;
            active[njobs++] = &jobs[k];
        }
    for (size_t k = 0; k + 1 < njobs; k++)
        made[k] = pthread_create(&tids[k], NULL, s_job_run, active[k]) == 0;
    if (njobs)
        s_job_run(active[njobs - 1]);
    for (size_t k = 0; k + 1 < njobs; k++) {
        if (made[k])
            pthread_join(tids[k], NULL);
        else
            s_job_run(active[k]); /* no thread could be made: do it here */
    }
    free(made);
    free(items);
    free(by_node);
    free(jobs);
    free(tids);
    free(counts);
    return 0;
}

static void s_close(void *instance)
{
    struct mc_instance *in = instance;
    s_free_nodes(in->nodes, in->node_count);
    if (in->ring)
        memcached_free(in->ring);
    free(in->seeds);
    free(in->key_prefix);
    free(in);
}

static const struct fanout_option s_options[] = {
    {.name = "expirationSeconds",
     .type = FANOUT_OPT_INT,
     .offset = offsetof(struct mc_options, expiration_seconds),
     .default_int = 0,
     .min = 0,
     .max = 10 * 365 * 86400,
     .description = "item expiration in seconds, 0 = none (over 30 days: sent as now + n)"},
    {.name = "hashLongKeys",
     .type = FANOUT_OPT_BOOL,
     .offset = offsetof(struct mc_options, hash_long_keys),
     .default_int = 0,
     .description = "store records whose key is over 250 bytes or has spaces/control "
                    "characters under sha256:<hex of the key> (else: permanent failure)"},
    {.name = "keyPrefix",
     .type = FANOUT_OPT_STRING,
     .offset = offsetof(struct mc_options, key_prefix),
     .description = "prepended to every key (counts toward the 250 bytes)"},
    {.name = "maxItemBytes",
     .type = FANOUT_OPT_INT,
     .offset = offsetof(struct mc_options, max_item_bytes),
     .default_int = MC_DEFAULT_ITEM_BYTES,
     .min = MC_MIN_ITEM_BYTES,
     .max = MC_MAX_ITEM_BYTES,
     .description =
         "the servers' item size limit (memcached -I, ElastiCache max_item_size)"},
    {.name = "autoDiscovery",
     .type = FANOUT_OPT_BOOL,
     .offset = offsetof(struct mc_options, auto_discovery),
     .default_int = 1,
     .description = "for a single host:port, ask it for the ElastiCache node list "
                    "(a plain memcached is then the only node)"},
    {.name = "discoveryIntervalSeconds",
     .type = FANOUT_OPT_INT,
     .offset = offsetof(struct mc_options, discovery_interval_seconds),
     .default_int = 60,
     .min = 1,
     .max = 86400,
     .description = "ask the configuration endpoint again at the first send after this"},
    {.name = "timeoutMs",
     .type = FANOUT_OPT_INT,
     .offset = offsetof(struct mc_options, timeout_ms),
     .default_int = 1000,
     .min = 10,
     .max = 60000,
     .description = "connect and I/O timeout per node and for discovery"},
    {.name = "deleteOnRemove",
     .type = FANOUT_OPT_BOOL,
     .offset = offsetof(struct mc_options, delete_on_remove),
     .default_int = 0,
     .description = "DynamoDB REMOVE records delete their key instead of storing {}"},
    {.name = NULL},
};

FANOUT_PLUGIN_DEFINE(
        .name = "memcached", .version = "1.0.0",
        .description = "ElastiCache for Memcached / memcached: each record under its key",
        .destination_example =
            "my-cache.abc123.cfg.use1.cache.amazonaws.com:11211 (a "
            "configuration endpoint) or 10.0.1.5:11211,10.0.2.7:11211 (nodes)",
        .flags = FANOUT_PLUGIN_SERIAL,
        .limits = {.max_messages_per_call = MC_MAX_MESSAGES_PER_CALL,
                   .max_message_bytes = MC_DEFAULT_ITEM_BYTES - MC_ITEM_OVERHEAD,
                   .key_counts = 1},
        .collapse_modes = FANOUT_COLLAPSE_BIT(FANOUT_COLLAPSE_NONE),
        .default_collapse = FANOUT_COLLAPSE_NONE, .options = s_options,
        .options_size = sizeof(struct mc_options), .init = s_init,
        .fini = fanout_plugin_state_free, .validate = s_validate, .open = s_open,
        .send = s_send, .close = s_close, .target_limits = s_limits);
