/*
 * The `redis` destination (ElastiCache for Redis OSS / Valkey with cluster
 * mode disabled, or any Redis server): each record is stored under its key
 * (Kinesis partition key, or the DynamoDB key string) with its data as the
 * value, by pipelined SET commands (optionally with EX) or one MSET per
 * call. With deleteOnRemove, a DynamoDB REMOVE record is a DEL of its key
 * in the same pipeline, so the cache mirrors the table.
 *
 * Destination: host:port, a.b.c.d:port or [v6]:port. Options: database,
 * passwordEnv, username, ttlSeconds, command, tls, tlsServerName, timeoutMs,
 * deleteOnRemove (see s_options). The password comes from the environment, never from the
 * mapping, and is never logged.
 *
 * Concurrency: `send` may run on several threads for one instance; each call
 * takes a connection from the instance's pool of idle connections (or opens
 * one) and gives it back afterwards, so concurrent calls never share a
 * connection, and connections stay open across invocations. An ordered
 * target (parallel: false) gets one call at a time from the engine, and
 * one call's pipeline is written and answered in order on one connection.
 *
 * The wire side (transport, TLS, AUTH/SELECT, replies) is in redis_api.c.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <fanout/helpers.h>
#include <fanout/plugin.h>
#include <fanout/plugin_state.h>

#include "redis_api.h"

/* Redis strings (keys and values) are at most 512 MB (proto-max-bulk-len;
 * https://redis.io/docs/latest/develop/data-types/strings/). The key counts
 * too, so the limit holds for key + value together, conservatively. */
#define REDIS_MAX_MESSAGE_BYTES (512ull << 20)
/* Commands per pipeline: Redis queues the replies of a pipeline in memory,
 * and its documentation advises batches of a reasonable size ("for instance
 * 10k commands", https://redis.io/docs/latest/develop/use/pipelining/). A
 * Kinesis batch is at most 10,000 records; 1000 keeps one call short on a
 * single-threaded server. */
#define REDIS_MAX_COMMANDS_PER_CALL 1000
/* With deleteOnRemove: a whole Lambda batch of a stream (at most 10,000
 * records, https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html) in
 * one call, so that a parallel target never splits one key's SET and DEL
 * over calls running at once (the order within a call is the pipeline's).
 * Still the "10k commands" Redis's guide calls a reasonable batch. */
#define REDIS_MAX_COMMANDS_PER_MIRROR_CALL 10000
/* Bytes per call: our bound on the pipeline buffer we build (Redis itself
 * accepts a 1 GB query buffer, client-query-buffer-limit). */
#define REDIS_MAX_CALL_BYTES (64ull << 20)
/* RESP framing of "SET key value EX ttl" beyond key and value. */
#define REDIS_PER_COMMAND_OVERHEAD 64
/* Idle connections kept per instance: the engine's default
 * FANOUT_MAX_PARALLEL; more are closed when given back. */
#define REDIS_MAX_IDLE_CONNECTIONS 16
#define REDIS_DEFAULT_TIMEOUT_MS   2000
/* Stop this long before the invocation's deadline, so the engine can still
 * report the outcome (the same margin as the engine's AWS calls). */
#define REDIS_DEADLINE_MARGIN_MS 500
/* One exchange (a call's pipeline on one connection) must end within
 * timeoutMs plus 1 ms per this many bytes sent (at least 10 MB/s on average;
 * a VPC link moves 100 times that): a server that drips its replies cannot
 * hold a call for longer. */
#define REDIS_BYTES_PER_MS         10000
#define REDIS_DEFAULT_PASSWORD_ENV "FANOUT_REDIS_PASSWORD"

struct redis_options {
    int64_t database;
    const char *password_env;
    const char *username;
    int64_t ttl_seconds;
    const char *command;
    int tls;
    const char *tls_server_name;
    int64_t timeout_ms;
    int delete_on_remove;
};

struct redis_instance {
    char *id;
    struct redis_endpoint ep;
    struct redis_conn_config cfg;
    int mset;
    int ordered;
    int del_on_remove; /* deleteOnRemove: REMOVE records are DEL key */
    char ttl[24];      /* "" when no TTL */
    char *username;
    char *password;
    size_t password_len;
    char *password_from;
    char *tls_name;
    SSL_CTX *tls;
    pthread_mutex_t lock; /* guards idle[] */
    struct redis_conn *idle[REDIS_MAX_IDLE_CONNECTIONS];
    size_t idle_count;
};

/* ---- options and validation -------------------------------------------- */

static int s_env_name_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 255 || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static int s_is_mset(const struct redis_options *o)
{
    return o && o->command && strcasecmp(o->command, "MSET") == 0;
}

/* arn:<partition>:dynamodb:<region>:<account>:table/<name>/stream/<label> */
static int s_is_ddb_stream(const char *arn)
{
    const char *p = arn ? strchr(arn, ':') : NULL;
    p = p ? strchr(p + 1, ':') : NULL;
    return p && strncmp(p, ":dynamodb:", 10) == 0 && strstr(p, ":table/") &&
           strstr(p, "/stream/");
}

/* deleteOnRemove needs one record per command, on its own key, from a
 * source that has REMOVE records. */
static int s_validate_delete(const struct fanout_target *t, const struct redis_options *o,
                             char *err, size_t err_len)
{
    if (s_is_mset(o)) {
        snprintf(err, err_len,
                 "field \"deleteOnRemove\": cannot be used with \"command\": \"MSET\" (one "
                 "MSET per call stores every record, it cannot delete a key); use \"SET\"");
        return -1;
    }
    if (t->collapse != FANOUT_COLLAPSE_NONE) {
        snprintf(err, err_len,
                 "field \"deleteOnRemove\": needs \"collapse\": \"none\" (a collapsed "
                 "message carries several records, not one key to delete)");
        return -1;
    }
    if (!s_is_ddb_stream(t->source_arn)) {
        snprintf(err, err_len,
                 "field \"deleteOnRemove\": applies only to a DynamoDB Streams source "
                 "(arn:aws:dynamodb:...:table/NAME/stream/LABEL), whose REMOVE records it "
                 "turns into DEL; this mapping's sourceArn is not one");
        return -1;
    }
    return 0;
}

static int s_validate(const struct fanout_target *t, char *err, size_t err_len)
{
    const struct redis_options *o = t->options;
    struct redis_endpoint ep;
    if (t->role || t->region || t->external_id) {
        const char *f = t->role ? "role" : t->region ? "region" : "externalId";
        snprintf(
            err, err_len,
            "\"%s\" does not apply to a redis target: Redis is reached directly in the "
            "function's VPC, with no IAM role or AWS region; remove \"%s\"",
            f, f);
        return -1;
    }
    if (redis_parse_destination(t->destination, &ep, err, err_len) != 0)
        return -1;
    if (!o)
        return 0;
    if (o->command && !s_is_mset(o) && strcasecmp(o->command, "SET") != 0) {
        snprintf(err, err_len, "\"command\" must be \"SET\" or \"MSET\"");
        return -1;
    }
    if (o->delete_on_remove && s_validate_delete(t, o, err, err_len) != 0)
        return -1;
    if (s_is_mset(o) && o->ttl_seconds > 0) {
        snprintf(err, err_len,
                 "\"ttlSeconds\" cannot be used with \"command\": \"MSET\" (MSET sets no "
                 "expiry); use \"SET\" for a TTL");
        return -1;
    }
    if (o->password_env && !s_env_name_ok(o->password_env)) {
        /* The value is not echoed: someone may have put the password here. */
        snprintf(
            err, err_len,
            "\"passwordEnv\" must be the NAME of an environment variable that holds the "
            "password ([A-Za-z_][A-Za-z0-9_]*), never the password itself (the value "
            "given is not shown)");
        return -1;
    }
    if (o->username) {
        int ok = *o->username && strlen(o->username) < 256;
        for (const char *p = o->username; ok && *p; p++)
            ok = (unsigned char)*p > ' ' && *p != 0x7f;
        if (!ok) {
            snprintf(err, err_len, "\"username\" must be a non-empty name without spaces");
            return -1;
        }
    }
    if (o->tls_server_name) {
        if (!o->tls) {
            snprintf(err, err_len, "\"tlsServerName\" needs \"tls\": true");
            return -1;
        }
        /* Checked as a host name (or address): borrow the destination parser. */
        char probe[REDIS_HOST_MAX + 8];
        struct redis_endpoint tmp;
        int bracket = strchr(o->tls_server_name, ':') != NULL;
        snprintf(probe, sizeof probe, bracket ? "[%s]:1" : "%s:1", o->tls_server_name);
        if (strlen(o->tls_server_name) >= REDIS_HOST_MAX ||
            redis_parse_destination(probe, &tmp, err, err_len) != 0) {
            snprintf(err, err_len,
                     "\"tlsServerName\" must be a host name (or address) to verify the "
                     "server's certificate against");
            return -1;
        }
    }
    return 0;
}

/* ---- instances ---------------------------------------------------------- */

static int s_limits(void *state, const struct fanout_target *t, struct fanout_limits *lim,
                    char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    const struct redis_options *o = t->options;
    if (o && o->delete_on_remove)
        lim->max_messages_per_call = REDIS_MAX_COMMANDS_PER_MIRROR_CALL;
    return 0;
}

/* Host and state (plugin.h): init keeps the host in a fanout_plugin_state;
 * open copies it into the instance's connection settings (in->cfg.host). */
static int s_init(const struct fanout_host *host, void **state, struct fanout_error *err)
{
    return fanout_plugin_state_new(host, state, err);
}

static void s_close(void *instance)
{
    struct redis_instance *in = instance;
    for (size_t i = 0; i < in->idle_count; i++)
        redis_conn_close(in->idle[i]);
    if (in->tls)
        SSL_CTX_free(in->tls);
    if (in->password) {
        explicit_bzero(in->password, in->password_len);
        free(in->password);
    }
    pthread_mutex_destroy(&in->lock);
    free(in->password_from);
    free(in->username);
    free(in->tls_name);
    free(in->id);
    free(in);
}

static int s_open(void *state, const struct fanout_target *t, void **out,
                  struct fanout_error *err)
{
    const struct fanout_plugin_state *s = state;
    const struct redis_options *o = t->options;
    char why[256];
    struct redis_instance *in = calloc(1, sizeof *in);
    if (!in) {
        snprintf(err->message, sizeof err->message, "out of memory");
        return -1;
    }
    pthread_mutex_init(&in->lock, NULL);
    if (redis_parse_destination(t->destination, &in->ep, why, sizeof why) != 0) {
        snprintf(err->code, sizeof err->code, "InvalidDestination");
        snprintf(err->message, sizeof err->message, "%s", why);
        goto fail;
    }
    in->id = strdup(t->id ? t->id : "redis");
    in->mset = s_is_mset(o);
    in->ordered = !t->parallel;
    in->del_on_remove = o && o->delete_on_remove && !in->mset;
    if (o && o->ttl_seconds > 0)
        snprintf(in->ttl, sizeof in->ttl, "%lld", (long long)o->ttl_seconds);

    /* The password: the variable the mapping names, else the default one. */
    const char *var = o && o->password_env ? o->password_env : REDIS_DEFAULT_PASSWORD_ENV;
    const char *pw = getenv(var);
    if (o && o->password_env && (!pw || !*pw)) {
        snprintf(err->code, sizeof err->code, "PasswordNotSet");
        snprintf(err->message, sizeof err->message,
                 "\"passwordEnv\" names %s, which is not set (or empty) in the environment",
                 var);
        goto fail;
    }
    if (pw && *pw) {
        in->password_len = strlen(pw);
        in->password = malloc(in->password_len + 1);
        if (in->password)
            memcpy(in->password, pw, in->password_len + 1);
        in->password_from = strdup(var);
    }
    if (o && o->username) {
        if (!in->password) {
            snprintf(err->code, sizeof err->code, "PasswordNotSet");
            snprintf(err->message, sizeof err->message,
                     "\"username\" is set but there is no password: set %s%s", var,
                     o->password_env ? ""
                                     : " or name another variable with \"passwordEnv\"");
            goto fail;
        }
        in->username = strdup(o->username);
    }
    if (o && o->tls) {
        const char *ca = getenv("FANOUT_CA_BUNDLE");
        in->tls = redis_tls_context_new(ca && *ca ? ca : NULL, why, sizeof why);
        if (!in->tls) {
            snprintf(err->code, sizeof err->code, "TLSSetupFailed");
            snprintf(err->message, sizeof err->message, "%s", why);
            goto fail;
        }
        if (o->tls_server_name)
            in->tls_name = strdup(o->tls_server_name);
    }
    if (!in->id || (pw && *pw && (!in->password || !in->password_from)) ||
        (o && o->username && !in->username) || (o && o->tls_server_name && !in->tls_name)) {
        snprintf(err->message, sizeof err->message, "out of memory");
        goto fail;
    }
    in->cfg = (struct redis_conn_config){
        .host = s->host,
        .scope = in->id,
        .ep = &in->ep,
        .tls = in->tls,
        .tls_name = in->tls_name,
        .username = in->username,
        .password = in->password,
        .password_len = in->password_len,
        .password_from = in->password_from,
        .database = o ? o->database : 0,
        .timeout_ms =
            o && o->timeout_ms > 0 ? (int)o->timeout_ms : REDIS_DEFAULT_TIMEOUT_MS,
    };
    *out = in;
    return 0;
fail:
    s_close(in);
    return -1;
}

/* An idle connection that still works, or NULL (the caller opens one). */
static struct redis_conn *s_take(struct redis_instance *in)
{
    for (;;) {
        pthread_mutex_lock(&in->lock);
        struct redis_conn *c = in->idle_count ? in->idle[--in->idle_count] : NULL;
        pthread_mutex_unlock(&in->lock);
        if (!c || redis_conn_alive(c))
            return c;
        /* Closed while idle (a server restart, a failover, an idle
         * timeout), or bytes nobody asked for arrived (a late extra reply):
         * never read as the answer to the next commands. */
        in->cfg.host->log(FANOUT_LOG_INFO, in->id,
                          "the connection to %s was closed since it was last used, or has "
                          "unread bytes; reconnecting",
                          in->ep.display);
        redis_conn_close(c);
    }
}

static void s_give(struct redis_instance *in, struct redis_conn *c)
{
    pthread_mutex_lock(&in->lock);
    if (in->idle_count < REDIS_MAX_IDLE_CONNECTIONS) {
        in->idle[in->idle_count++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&in->lock);
    redis_conn_close(c);
}

/* ---- send ----------------------------------------------------------------- */

/* Arguments up to this many bytes are copied next to their framing; longer
 * ones (the records' values) are sent from where they are: a call's
 * pipeline is then framing and pointers, not a copy of every value. */
#define REDIS_INLINE_ARG 32

/* The formatted commands of one call: `nsegs` pieces back to back, `len`
 * bytes. The pieces point into `small` (the RESP framing, short arguments)
 * and into the messages (longer arguments). */
struct s_cmds {
    struct fanout_sbuf small; /* reserved once: pieces point into it */
    struct iovec *segs;
    size_t nsegs;
    size_t len;
    size_t *off;           /* where command i starts, in bytes */
    unsigned char *expect; /* enum redis_expect of command i (deleteOnRemove), or NULL */
    size_t count;
};

/* Decimal digits of v. */
static size_t s_digits(size_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* The RESP size of one bulk string of n bytes: $<n>\r\n<bytes>\r\n */
static size_t s_bulk_size(size_t n)
{
    return 1 + s_digits(n) + 2 + n + 2;
}

/* What one argument of n bytes adds to `small` and to the pieces. */
static void s_measure_arg(size_t n, size_t *small, size_t *segs)
{
    *small += s_bulk_size(n) - (n > REDIS_INLINE_ARG ? n : 0);
    *segs += n > REDIS_INLINE_ARG ? 2 : 0;
}

/* <tag><v in decimal>\r\n */
static uint8_t *s_put_len(uint8_t *o, char tag, size_t v)
{
    *o++ = (uint8_t)tag;
    o += fanout_decimal((char *)o, v);
    *o++ = '\r';
    *o++ = '\n';
    return o;
}

/* The piece of `small` from `from` to its end, unless empty. */
static void s_close_run(struct s_cmds *c, size_t from)
{
    if (c->small.len > from)
        c->segs[c->nsegs++] = (struct iovec){.iov_base = c->small.bytes + from,
                                             .iov_len = c->small.len - from};
}

/* One command in RESP, as hiredis's redisFormatCommandArgv writes it: its
 * framing and short arguments into `small`, which s_build reserved for all
 * of them (a piece already made points into it: it must not move), and a
 * piece of their own for longer arguments. Framing runs on across
 * commands: one piece holds a value's CRLF and the next command's head. */
static int s_append(struct s_cmds *c, int argc, const char **argv, const size_t *lens)
{
    size_t n = 1 + s_digits((size_t)argc) + 2, sent_as_is = 0;
    for (int i = 0; i < argc; i++) {
        n += s_bulk_size(lens[i]);
        sent_as_is += lens[i] > REDIS_INLINE_ARG ? lens[i] : 0;
    }
    if (c->small.cap - c->small.len <= n - sent_as_is)
        return -1; /* s_build's reservation was short: never moved */
    size_t run = c->small.len;
    if (c->nsegs > 0) { /* the last piece, when it is framing up to here, runs on */
        const struct iovec *last = &c->segs[c->nsegs - 1];
        uintptr_t p = (uintptr_t)last->iov_base, lo = (uintptr_t)c->small.bytes;
        if (p >= lo && p < lo + c->small.cap && p + last->iov_len == lo + c->small.len) {
            run = (size_t)(p - lo);
            c->nsegs--;
        }
    }
    c->off[c->count++] = c->len;
    uint8_t *o = s_put_len(c->small.bytes + c->small.len, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        o = s_put_len(o, '$', lens[i]);
        if (lens[i] <= REDIS_INLINE_ARG) {
            if (lens[i])
                memcpy(o, argv[i], lens[i]);
            o += lens[i];
        } else {
            c->small.len = (size_t)(o - c->small.bytes);
            s_close_run(c, run);
            c->segs[c->nsegs++] =
                (struct iovec){.iov_base = (void *)argv[i], .iov_len = lens[i]};
            run = c->small.len;
        }
        *o++ = '\r';
        *o++ = '\n';
    }
    c->small.len = (size_t)(o - c->small.bytes);
    c->small.bytes[c->small.len] = 0;
    s_close_run(c, run);
    c->len += n;
    return 0;
}

/* Engine pointers may be NULL for empty keys or bodies. */
static const char *s_bytes(const uint8_t *p)
{
    return p ? (const char *)p : "";
}

/* A DynamoDB REMOVE (collapse none: one record per message). */
static int s_is_remove(const struct fanout_message *m)
{
    const char *action = m->record_count ? m->records[0]->action : NULL;
    return action && strcmp(action, "REMOVE") == 0;
}

/* Message m's command (SET, or DEL with deleteOnRemove): its argc. */
static int s_command(const struct redis_instance *in, const struct fanout_message *m,
                     const char *argv[5], size_t lens[5])
{
    argv[1] = s_bytes(m->key);
    lens[1] = m->key_len;
    if (in->del_on_remove && s_is_remove(m)) {
        argv[0] = "DEL";
        lens[0] = 3;
        return 2;
    }
    argv[0] = "SET";
    lens[0] = 3;
    argv[2] = s_bytes(m->body);
    lens[2] = m->body_len;
    argv[3] = "EX";
    lens[3] = 2;
    argv[4] = in->ttl;
    lens[4] = strlen(in->ttl);
    return in->ttl[0] ? 5 : 3;
}

static int s_build(const struct redis_instance *in, const struct fanout_batch *b,
                   struct s_cmds *c)
{
    memset(c, 0, sizeof *c);
    c->off = malloc((b->count + 1) * sizeof *c->off);
    if (!c->off)
        return -1;
    if (in->del_on_remove && !(c->expect = malloc(b->count)))
        return -1;
    /* framing and pieces, sized beforehand: pieces point into `small` */
    size_t small = 0, segs = 0;
    if (in->mset) {
        small = 1 + s_digits(1 + 2 * b->count) + 2 + s_bulk_size(4);
        segs = 1;
    }
    for (size_t i = 0; i < b->count; i++) {
        const struct fanout_message *m = b->messages[i];
        if (in->mset) {
            s_measure_arg(m->key_len, &small, &segs);
            s_measure_arg(m->body_len, &small, &segs);
            continue;
        }
        const char *argv[5];
        size_t lens[5];
        int argc = s_command(in, m, argv, lens);
        small += 1 + s_digits((size_t)argc) + 2;
        segs++;
        for (int k = 0; k < argc; k++)
            s_measure_arg(lens[k], &small, &segs);
    }
    if (fanout_sbuf_reserve(&c->small, small) != 0 ||
        !(c->segs = malloc((segs ? segs : 1) * sizeof *c->segs)))
        return -1;
    if (in->mset) {
        size_t argc = 1 + 2 * b->count;
        const char **argv = malloc(argc * sizeof *argv);
        size_t *lens = malloc(argc * sizeof *lens);
        int rc = -1;
        if (argv && lens && argc <= INT32_MAX) {
            argv[0] = "MSET";
            lens[0] = 4;
            for (size_t i = 0; i < b->count; i++) {
                const struct fanout_message *m = b->messages[i];
                argv[1 + 2 * i] = s_bytes(m->key);
                lens[1 + 2 * i] = m->key_len;
                argv[2 + 2 * i] = s_bytes(m->body);
                lens[2 + 2 * i] = m->body_len;
            }
            rc = s_append(c, (int)argc, argv, lens);
        }
        free(argv);
        free(lens);
        return rc;
    }
    for (size_t i = 0; i < b->count; i++) {
        const char *argv[5];
        size_t lens[5];
        int argc = s_command(in, b->messages[i], argv, lens);
        if (c->expect)
            c->expect[c->count] = argc == 2 ? REDIS_EXPECT_DEL : REDIS_EXPECT_OK;
        if (s_append(c, argc, argv, lens) != 0)
            return -1;
    }
    return 0;
}

static void s_cmds_free(struct s_cmds *c)
{
    fanout_sbuf_free(&c->small);
    free(c->segs);
    free(c->off);
    free(c->expect);
}

struct s_call {
    const struct redis_instance *in;
    const struct fanout_batch *batch;
    struct fanout_outcome *out;
    int drop; /* do not reuse the connection */
};

static void s_set_outcome(struct fanout_outcome *o, const struct redis_failure *f)
{
    fanout_outcome_set(o, f->status, f->code, "%s", f->message);
}

/* The reply to command i: +OK, or :0 / :1 for a DEL (the exchange
 * checked that it is exactly what its command can get), or an error. Every
 * reply writes its outcome, so a resend after an exchange out of step
 * replaces what the untrusted one wrote. */
static void s_on_reply(void *ud, size_t i, int is_error, const char *text, size_t len)
{
    struct s_call *c = ud;
    struct redis_failure f;
    if (!is_error) {
        /* Outcomes arrive zeroed (FANOUT_OK); only a failure written by an
         * exchange that was then sent again needs clearing. Writing the
         * others would turn the engine's untouched zero pages into page
         * faults: 3 MB for a batch of 10,000. */
        size_t from = c->in->mset ? 0 : i, to = c->in->mset ? c->batch->count : i + 1;
        for (size_t k = from; k < to; k++)
            if (c->out[k].status != FANOUT_OK)
                memset(&c->out[k], 0, sizeof c->out[k]);
        return;
    }
    int drop = 0;
    redis_classify_error(text, len, &f, &drop);
    c->drop |= drop;
    if (c->in->mset) {
        for (size_t k = 0; k < c->batch->count; k++)
            s_set_outcome(&c->out[k], &f);
    } else {
        s_set_outcome(&c->out[i], &f);
    }
}

/* No reply proves any command: every message gets the failure. */
static void s_fail_all(const struct fanout_batch *b, struct fanout_outcome *out,
                       const struct redis_failure *f)
{
    for (size_t i = 0; i < b->count; i++)
        s_set_outcome(&out[i], f);
}

/*
 * An ordered target: the engine resends the messages that failed
 * retryably, after the others. A later message already stored would then
 * be overwritten by an earlier one on the same key. So every message after
 * the first retryable failure is resent too, in order; SET being
 * idempotent, storing it again is harmless.
 */
static void s_keep_order(const struct fanout_batch *b, struct fanout_outcome *out)
{
    size_t i = 0;
    while (i < b->count && out[i].status != FANOUT_RETRY &&
           out[i].status != FANOUT_THROTTLED)
        i++;
    for (size_t k = i + 1; k < b->count; k++)
        if (out[k].status == FANOUT_OK)
            fanout_outcome_set(
                &out[k], FANOUT_RETRY, "OrderKept",
                "stored, but sent again after an earlier record that must be "
                "retried, to keep the order (parallel: false)");
}

static int s_resent(const struct fanout_outcome *o)
{
    return o->status == FANOUT_RETRY || o->status == FANOUT_THROTTLED;
}

static uint64_t s_key_hash(const struct fanout_message *m)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < m->key_len; i++)
        h = (h ^ m->key[i]) * 0x100000001b3ull;
    return h;
}

/*
 * deleteOnRemove on a parallel target: the engine resends the messages
 * that failed retryably, after the others. A later SET or DEL of the same
 * key that went through would then be undone by the earlier one (a DEL
 * resent after the INSERT that followed it would delete a live item). So a
 * later message on the key of a message to be resent is resent too, after
 * it, in order. Keys of resent messages go in an open-addressing table of
 * message indexes: one pass, whatever the batch.
 */
static void s_keep_key_order(const struct fanout_batch *b, struct fanout_outcome *out)
{
    size_t first = 0, ok_after = 0;
    while (first < b->count && !s_resent(&out[first]))
        first++;
    for (size_t k = first + 1; k < b->count; k++)
        ok_after += out[k].status == FANOUT_OK;
    if (!ok_after)
        return;
    size_t cap = 16;
    while (cap < 2 * b->count)
        cap *= 2;
    size_t *slot = malloc(cap * sizeof *slot);
    if (!slot) {
        s_keep_order(b, out); /* the coarser rule needs no memory */
        return;
    }
    for (size_t k = 0; k < cap; k++)
        slot[k] = SIZE_MAX;
    for (size_t k = first; k < b->count; k++) {
        const struct fanout_message *m = b->messages[k];
        int resent = s_resent(&out[k]);
        if (!resent && out[k].status != FANOUT_OK)
            continue;
        size_t h = (size_t)s_key_hash(m) & (cap - 1);
        while (slot[h] != SIZE_MAX) {
            const struct fanout_message *o = b->messages[slot[h]];
            if (o->key_len == m->key_len &&
                (!m->key_len || !memcmp(o->key, m->key, m->key_len)))
                break;
            h = (h + 1) & (cap - 1);
        }
        if (slot[h] != SIZE_MAX && !resent) {
            fanout_outcome_set(
                &out[k], FANOUT_RETRY, "OrderKept",
                "written, but sent again after an earlier record of the same "
                "key that must be retried, to keep the key's order");
            continue;
        }
        if (resent && slot[h] == SIZE_MAX)
            slot[h] = k;
    }
    free(slot);
}

static int s_send(void *instance, const struct fanout_batch *b, struct fanout_outcome *out)
{
    struct redis_instance *in = instance;
    struct redis_failure f;
    if (b->count == 0)
        return 0;
    int64_t left = in->cfg.host->remaining_ms();
    if (left != INT64_MAX)
        left -= REDIS_DEADLINE_MARGIN_MS;
    if (left <= 0) {
        f = (struct redis_failure){.status = FANOUT_RETRY};
        snprintf(f.code, sizeof f.code, "Timeout");
        snprintf(f.message, sizeof f.message,
                 "no time left before the invocation's deadline");
        s_fail_all(b, out, &f);
        return -1;
    }
    int64_t now = redis_now_ms();
    int64_t deadline = left > INT64_MAX - now ? INT64_MAX : now + left;
    struct s_cmds cmds;
    if (s_build(in, b, &cmds) != 0) {
        s_cmds_free(&cmds);
        for (size_t i = 0; i < b->count; i++)
            fanout_outcome_set(&out[i], FANOUT_RETRY, "OutOfMemory",
                               "out of memory formatting the commands");
        return -1;
    }
    size_t *ends = malloc(cmds.count * sizeof *ends);
    if (!ends) {
        s_cmds_free(&cmds);
        for (size_t i = 0; i < b->count; i++)
            fanout_outcome_set(&out[i], FANOUT_RETRY, "OutOfMemory",
                               "out of memory formatting the commands");
        return -1;
    }
    /* where each command ends, from the first byte sent: every exchange
     * sends all the commands, from the first */
    for (size_t i = 0; i < cmds.count; i++)
        ends[i] = i + 1 < cmds.count ? cmds.off[i + 1] : cmds.len;
    struct s_call call = {.in = in, .batch = b, .out = out};
    struct redis_conn *conn = s_take(in);
    int reconnects = 1;
    for (;;) {
        if (!conn) {
            conn = redis_conn_open(&in->cfg, deadline, &f);
            if (!conn) {
                s_fail_all(b, out, &f);
                break;
            }
        }
        size_t got = 0;
        if (redis_conn_exchange(conn, cmds.segs, cmds.nsegs, ends, cmds.expect, cmds.count,
                                s_on_reply, &call, in->cfg.timeout_ms, deadline, &got,
                                &f) == 0)
            break;
        /* The exchange did not end with its marker's reply in place, so no
         * reply of it is proven to answer its command: the connection broke
         * (a reply read before the break may have been a stray one, sent
         * before the command it seems to answer), or the replies were out of
         * step. Every command of the exchange is sent again on a new
         * connection (SET, MSET and DEL are idempotent); the resend's replies
         * overwrite the outcomes, and if it fails too, every command of the
         * exchange is reported unconfirmed. */
        redis_conn_close(conn);
        conn = NULL;
        call.drop = 0;
        if (!reconnects-- || redis_now_ms() >= deadline) {
            s_fail_all(b, out, &f);
            break;
        }
        in->cfg.host->log(
            FANOUT_LOG_WARN, in->id,
            "%s: %s; reconnecting and sending again the %zu command%s of that "
            "exchange (%zu of them had a reply, but an exchange whose marker "
            "reply did not come in place proves none)",
            f.code, f.message, cmds.count, cmds.count == 1 ? "" : "s", got);
    }
    if (conn && call.drop)
        redis_conn_close(conn);
    else if (conn)
        s_give(in, conn);
    if (in->ordered)
        s_keep_order(b, out);
    else if (in->del_on_remove)
        s_keep_key_order(b, out);
    free(ends);
    s_cmds_free(&cmds);
    return 0;
}

static const struct fanout_option s_options[] = {
    {.name = "database",
     .type = FANOUT_OPT_INT,
     .offset = offsetof(struct redis_options, database),
     .default_int = 0,
     .min = 0,
     .max = INT32_MAX,
     .description = "database number, selected after connecting (SELECT; default 0)"},
    {.name = "passwordEnv",
     .type = FANOUT_OPT_STRING,
     .offset = offsetof(struct redis_options, password_env),
     .description = "NAME of the environment variable holding the AUTH password (default "
                    "FANOUT_REDIS_PASSWORD, when set)"},
    {.name = "username",
     .type = FANOUT_OPT_STRING,
     .offset = offsetof(struct redis_options, username),
     .description = "ACL/RBAC user for AUTH (needs a password)"},
    {.name = "ttlSeconds",
     .type = FANOUT_OPT_INT,
     .offset = offsetof(struct redis_options, ttl_seconds),
     .default_int = 0,
     .min = 0,
     .max = INT32_MAX,
     .description = "expiry of each key in seconds (SET ... EX); 0 = none"},
    {.name = "command",
     .type = FANOUT_OPT_STRING,
     .offset = offsetof(struct redis_options, command),
     .default_str = "SET",
     .description =
         "\"SET\" (pipelined, one per record) or \"MSET\" (one per call, no TTL)"},
    {.name = "tls",
     .type = FANOUT_OPT_BOOL,
     .offset = offsetof(struct redis_options, tls),
     .default_int = 0,
     .description = "TLS with certificate verification (system CAs, or FANOUT_CA_BUNDLE)"},
    {.name = "tlsServerName",
     .type = FANOUT_OPT_STRING,
     .offset = offsetof(struct redis_options, tls_server_name),
     .description = "name to verify and send as SNI instead of the destination's host"},
    {.name = "timeoutMs",
     .type = FANOUT_OPT_INT,
     .offset = offsetof(struct redis_options, timeout_ms),
     .default_int = REDIS_DEFAULT_TIMEOUT_MS,
     .min = 1,
     .max = 600000,
     .description = "connect and reply timeout in ms (default 2000), within the deadline"},
    {.name = "deleteOnRemove",
     .type = FANOUT_OPT_BOOL,
     .offset = offsetof(struct redis_options, delete_on_remove),
     .default_int = 0,
     .description = "DynamoDB REMOVE records delete their key (DEL) instead of storing "
                    "{}; a call then takes up to 10,000 commands (a whole stream batch)"},
    {.name = NULL},
};

FANOUT_PLUGIN_DEFINE(
        .name = "redis", .version = "1.0.0",
        .description =
            "ElastiCache Redis OSS / Valkey (cluster mode disabled) "
            "or any Redis: SET key data (DEL on REMOVE with deleteOnRemove), pipelined",
        .destination_example = "my-cache.abc123.ng.0001.use1.cache.amazonaws.com:6379 (or "
                               "10.0.0.5:6379, [2001:db8::5]:6379)",
        .limits = {.max_messages_per_call = REDIS_MAX_COMMANDS_PER_CALL,
                   .max_message_bytes = REDIS_MAX_MESSAGE_BYTES,
                   .max_call_bytes = REDIS_MAX_CALL_BYTES,
                   .per_message_overhead = REDIS_PER_COMMAND_OVERHEAD,
                   .key_counts = 1},
        .collapse_modes = FANOUT_COLLAPSE_BIT(FANOUT_COLLAPSE_NONE),
        .default_collapse = FANOUT_COLLAPSE_NONE, .options = s_options,
        .options_size = sizeof(struct redis_options), .init = s_init,
        .fini = fanout_plugin_state_free, .validate = s_validate, .open = s_open,
        .send = s_send, .close = s_close, .target_limits = s_limits);
