#include "core/engine.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "aws/client.h"
#include "aws/retry.h"
#include "core/batch.h"
#include "core/conc.h"
#include "core/event.h"
#include "core/filter.h"
#include "core/onfailure.h"
#include "common/log.h"
#include "core/store_ddb.h"
#include "fanout/helpers.h"

/* A plugin instance for one target configuration, kept across invocations
 * so its connections stay warm. Owns copies of everything the plugin may
 * keep pointers to. */
struct s_instance {
    struct s_instance *next;
    char *key;
    const struct fanout_loaded_plugin *plugin;
    struct fanout_target target;
    char *strings[8];
    void *options;
    json_t *option_values; /* keeps option strings alive */
    void *handle;
    pthread_mutex_t send_lock;   /* for FANOUT_PLUGIN_SERIAL plugins */
    int64_t last_used_ms;        /* instances idle too long are closed */
    struct fanout_limits limits; /* the plugin's, adjusted for this target */
};

/* The threads that send a run's units, kept across invocations (a warm
 * invocation starts none) and joined at fanout_engine_destroy. One run at
 * a time is on the pool (`run`); the pool's lock is also that run's lock.
 * A thread joins a run only when it is handed a unit to send (s_recruit),
 * so no thread wakes to find nothing; s_dispatch explains why no wakeup is
 * lost. */
struct s_pool_thread;
struct s_pool {
    pthread_mutex_t lock;
    pthread_cond_t done; /* the run's last thread left it */
    struct s_pool_thread **threads;
    size_t count;
    struct s_pool_thread *idle; /* waiting for a unit, the last used first */
    struct s_run *run;          /* the run in progress, or NULL */
    int quit;
};

struct fanout_engine {
    struct fanout_engine_config cfg;
    struct s_pool pool;
    const struct fanout_host *host;
    struct fanout_loader *loader;
    struct fanout_store *store;
    struct s_instance *instances;
    struct fanout_arena arena;
    int64_t idle_ms; /* close instances unused this long (mapping gone) */
    /* the last DynamoDB records' targets converted no image: the next
     * event's images are not converted as it is scanned (event.h) */
    int no_image_converts;
};

/* ---- configuration ------------------------------------------------------ */

static int s_env_uint(const char *name, unsigned min, unsigned max, unsigned *out,
                      char *err, size_t err_len)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || *end || v[0] == '-' || n < min || n > max) {
        snprintf(err, err_len,
                 "environment variable %s=\"%s\": expected a whole number "
                 "from %u to %u",
                 name, v, min, max);
        return -1;
    }
    *out = (unsigned)n;
    return 0;
}

int fanout_engine_config_from_env(struct fanout_engine_config *cfg, char *err,
                                  size_t err_len)
{
    cfg->max_parallel = 16;
    cfg->retry_attempts = 4;
    cfg->retry_base_ms = 100;
    cfg->retry_cap_ms = 5000;
    cfg->deadline_margin_ms = 2000;
    cfg->retry_seed = 0;
    cfg->instance_idle_s = 900;
    if (s_env_uint("FANOUT_INSTANCE_IDLE_SECONDS", 0, 86400 * 7, &cfg->instance_idle_s, err,
                   err_len) ||
        s_env_uint("FANOUT_MAX_PARALLEL", 1, 1024, &cfg->max_parallel, err, err_len) ||
        s_env_uint("FANOUT_RETRY_ATTEMPTS", 1, 100, &cfg->retry_attempts, err, err_len) ||
        s_env_uint("FANOUT_RETRY_BASE_MS", 0, 60000, &cfg->retry_base_ms, err, err_len) ||
        s_env_uint("FANOUT_RETRY_CAP_MS", 0, 600000, &cfg->retry_cap_ms, err, err_len) ||
        s_env_uint("FANOUT_DEADLINE_MARGIN_MS", 0, 600000, &cfg->deadline_margin_ms, err,
                   err_len) ||
        s_env_uint("FANOUT_RETRY_SEED", 0, UINT_MAX, &cfg->retry_seed, err, err_len))
        return -1;
    cfg->skip_invalid_mappings = fanout_skip_invalid_mappings(err, err_len);
    if (cfg->skip_invalid_mappings < 0)
        return -1;
    return 0;
}

struct fanout_engine *fanout_engine_new(const struct fanout_engine_config *cfg,
                                        const struct fanout_host *host, char *err,
                                        size_t err_len)
{
    struct fanout_engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&e->pool.lock, NULL);
    pthread_cond_init(&e->pool.done, NULL);
    e->cfg = *cfg;
    e->idle_ms = (int64_t)cfg->instance_idle_s * 1000;
    if (!e->cfg.retry_attempts)
        e->cfg.retry_attempts = 1;
    if (!e->cfg.max_parallel)
        e->cfg.max_parallel = 1;
    e->host = host ? host : fanout_host_default();
    e->loader = fanout_loader_new(e->host, cfg->plugin_path);
    if (!e->loader) {
        snprintf(err, err_len, "cannot set up the plugin loader");
        free(e);
        return NULL;
    }
    if (cfg->config_path) {
        e->store = fanout_store_file_new(cfg->config_path, err, err_len);
    } else if (cfg->table) {
        e->store = fanout_store_ddb_new(cfg->table, NULL, err, err_len);
    } else {
        snprintf(err, err_len,
                 "no mapping store: give --config FILE (or FANOUT_CONFIG) for a mapping "
                 "file, or FANOUT_TABLE for a DynamoDB table");
        fanout_engine_destroy(e);
        return NULL;
    }
    if (!e->store) {
        fanout_engine_destroy(e);
        return NULL;
    }
    return e;
}

static void s_instance_free(struct s_instance *in)
{
    if (in->handle)
        in->plugin->desc.close(in->handle);
    pthread_mutex_destroy(&in->send_lock);
    for (size_t i = 0; i < sizeof in->strings / sizeof *in->strings; i++)
        free(in->strings[i]);
    free(in->options);
    json_decref(in->option_values);
    free(in->key);
    free(in);
}

/* Close the instances no mapping has used for a while: their mapping was
 * changed or removed, and their connections should not linger. */
static void s_instances_evict(struct fanout_engine *e, int64_t now)
{
    struct s_instance **link = &e->instances;
    while (*link) {
        struct s_instance *in = *link;
        if (now - in->last_used_ms >= e->idle_ms) {
            char qdest[FANOUT_QUOTE_SIZE];
            LOG_DEBUG(in->target.id, "closing the %s instance for %s: unused for %lld ms",
                      in->target.type, fanout_quote(qdest, in->target.destination),
                      (long long)(now - in->last_used_ms));
            *link = in->next;
            s_instance_free(in);
        } else {
            link = &in->next;
        }
    }
}

static void s_pool_stop(struct s_pool *p);

void fanout_engine_destroy(struct fanout_engine *e)
{
    if (!e)
        return;
    s_pool_stop(&e->pool);
    struct s_instance *in = e->instances;
    while (in) {
        struct s_instance *next = in->next;
        s_instance_free(in);
        in = next;
    }
    fanout_store_destroy(e->store);
    fanout_loader_destroy(e->loader);
    fanout_arena_free(&e->arena);
    free(e);
}

struct fanout_loader *fanout_engine_loader(struct fanout_engine *e)
{
    return e->loader;
}

struct fanout_store *fanout_engine_store(struct fanout_engine *e)
{
    return e->store;
}

/* ---- targets: plugin checks, options, instances -------------------------- */

static const char *s_option_type_name(enum fanout_option_type t)
{
    switch (t) {
    case FANOUT_OPT_STRING: return "a string";
    case FANOUT_OPT_INT: return "an integer";
    case FANOUT_OPT_BOOL: return "a boolean";
    }
    return "?";
}

/* Fill the plugin's options block from the mapping's extra fields. On
 * success *block (malloc'd, may be NULL when the plugin has no options) and
 * *values (the option values, keeping string options alive) belong to the
 * caller. */
static int s_options(const struct fanout_loaded_plugin *p, const struct fanout_mapping *m,
                     void **block, json_t **values, char *err, size_t err_len)
{
    const struct fanout_option *opts = p->desc.options;
    char qid[FANOUT_QUOTE_SIZE], qkey[FANOUT_QUOTE_SIZE];
    *block = NULL;
    *values = NULL;
    const char *key;
    json_t *val;
    json_object_foreach (m->extra, key, val) {
        int known = 0;
        for (const struct fanout_option *o = opts; o && o->name; o++)
            known |= strcmp(o->name, key) == 0;
        if (!known) {
            struct fanout_sbuf names = {0};
            for (const struct fanout_option *o = opts; o && o->name; o++)
                fanout_sbuf_printf(&names, "%s%s", names.len ? ", " : "", o->name);
            snprintf(err, err_len,
                     "mapping \"%s\": field \"%s\" is neither a mapping field nor an "
                     "option of plugin \"%s\" (its options: %s)",
                     fanout_quote(qid, m->id), fanout_quote(qkey, key), p->type,
                     names.len ? (char *)names.bytes : "none");
            fanout_sbuf_free(&names);
            return -1;
        }
    }
    if (!opts || !p->desc.options_size)
        return 0;
    uint8_t *b = calloc(1, p->desc.options_size);
    json_t *keep = json_object();
    if (!b || !keep) {
        free(b);
        json_decref(keep);
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    for (const struct fanout_option *o = opts; o->name; o++) {
        json_t *v = json_object_get(m->extra, o->name);
        if (v && json_is_null(v))
            v = NULL;
        switch (o->type) {
        case FANOUT_OPT_STRING: {
            const char *s = o->default_str;
            if (v) {
                if (!json_is_string(v))
                    goto type_error;
                json_object_set(keep, o->name, v);
                s = json_string_value(json_object_get(keep, o->name));
            }
            memcpy(b + o->offset, &s, sizeof s);
            break;
        }
        case FANOUT_OPT_INT: {
            int64_t n = o->default_int;
            if (v) {
                if (!json_is_integer(v))
                    goto type_error;
                n = json_integer_value(v);
                if (o->min != o->max && (n < o->min || n > o->max)) {
                    snprintf(err, err_len,
                             "mapping \"%s\": field \"%s\": %lld is out of range (plugin "
                             "\"%s\" accepts %lld to %lld)",
                             fanout_quote(qid, m->id), o->name, (long long)n, p->type,
                             (long long)o->min, (long long)o->max);
                    goto fail;
                }
            }
            memcpy(b + o->offset, &n, sizeof n);
            break;
        }
        case FANOUT_OPT_BOOL: {
            int n = (int)o->default_int;
            if (v) {
                if (!json_is_boolean(v))
                    goto type_error;
                n = json_is_true(v);
            }
            memcpy(b + o->offset, &n, sizeof n);
            break;
        }
        }
        continue;
    type_error:
        snprintf(err, err_len, "mapping \"%s\": field \"%s\": expected %s (%s)",
                 fanout_quote(qid, m->id), o->name, s_option_type_name(o->type),
                 o->description ? o->description : "an option of the plugin");
        goto fail;
    }
    *block = b;
    *values = keep;
    return 0;
fail:
    free(b);
    json_decref(keep);
    return -1;
}

static int s_collapse_of(const struct fanout_loaded_plugin *p,
                         const struct fanout_mapping *m)
{
    return m->collapse >= 0 ? m->collapse : (int)p->desc.default_collapse;
}

static void s_fill_target(struct fanout_target *t, const struct fanout_mapping *m,
                          const struct fanout_loaded_plugin *p, const void *options)
{
    memset(t, 0, sizeof *t);
    t->struct_size = sizeof *t;
    t->source_arn = m->source_arn;
    t->id = m->id;
    t->type = m->type;
    t->destination = m->destination;
    t->region = m->region;
    t->role = m->role;
    t->external_id = m->external_id;
    t->collapse = (enum fanout_collapse)s_collapse_of(p, m);
    t->parallel = m->parallel;
    t->options = options;
}

static int s_check(struct fanout_loader *l, const struct fanout_mapping *m,
                   const struct fanout_loaded_plugin **pp, void **block, json_t **values,
                   char *err, size_t err_len);

/* The on-failure destination is checked like a mapping; its messages name
 * our field: `mapping "<id>": field "onFailure": field "type": ...`. */
static int s_check_on_failure(struct fanout_loader *l, const struct fanout_mapping *m,
                              char *err, size_t err_len)
{
    const struct fanout_loaded_plugin *p;
    char why[1024], prefix[FANOUT_QUOTE_SIZE + 16], q[FANOUT_QUOTE_SIZE];
    if (!m->on_failure || s_check(l, m->on_failure, &p, NULL, NULL, why, sizeof why) == 0)
        return 0;
    int n = snprintf(prefix, sizeof prefix,
                     "mapping \"%s\": ", fanout_quote(q, m->on_failure->id));
    snprintf(err, err_len, "mapping \"%s\": field \"onFailure\": %s",
             fanout_quote(q, m->id), strncmp(why, prefix, (size_t)n) == 0 ? why + n : why);
    return -1;
}

/* Plugin-level checks of a mapping. On success *p is the plugin, and, when
 * block/values are given, the options are handed over. */
static int s_check(struct fanout_loader *l, const struct fanout_mapping *m,
                   const struct fanout_loaded_plugin **pp, void **block, json_t **values,
                   char *err, size_t err_len)
{
    char why[512], qid[FANOUT_QUOTE_SIZE];
    const char *id = fanout_quote(qid, m->id);
    const struct fanout_loaded_plugin *p = fanout_loader_get(l, m->type, why, sizeof why);
    if (!p) {
        snprintf(err, err_len, "mapping \"%s\": field \"type\": %s", id, why);
        return -1;
    }
    int mode = s_collapse_of(p, m);
    if (!(p->desc.collapse_modes & FANOUT_COLLAPSE_BIT(mode))) {
        struct fanout_sbuf names = {0};
        for (int i = 0; i < 4; i++)
            if (p->desc.collapse_modes & FANOUT_COLLAPSE_BIT(i))
                fanout_sbuf_printf(&names, "%s%s", names.len ? ", " : "",
                                   fanout_collapse_name(i));
        snprintf(err, err_len,
                 "mapping \"%s\": field \"collapse\": plugin \"%s\" does not accept \"%s\" "
                 "(it accepts: %s)",
                 id, m->type, fanout_collapse_name(mode),
                 names.len ? (char *)names.bytes : "none");
        fanout_sbuf_free(&names);
        return -1;
    }
    void *opt_block;
    json_t *opt_values;
    if (s_options(p, m, &opt_block, &opt_values, err, err_len) != 0)
        return -1;
    struct fanout_target t;
    s_fill_target(&t, m, p, opt_block);
    why[0] = 0;
    if (p->desc.validate(&t, why, sizeof why) != 0) {
        /* a plugin that names another field (an option, the region) says
         * so itself; anything else is about the destination */
        if (strncmp(why, "field \"", 7) == 0)
            snprintf(err, err_len, "mapping \"%s\": %s", id, why);
        else
            snprintf(err, err_len, "mapping \"%s\": field \"destination\": %s%s%s", id,
                     why[0] ? why : "refused by the plugin",
                     p->desc.destination_example ? "; expected e.g. " : "",
                     p->desc.destination_example ? p->desc.destination_example : "");
        free(opt_block);
        json_decref(opt_values);
        return -1;
    }
    /* the limits the plugin sets for this target are part of its verdict
     * (an option out of its range...): `validate` must see them too */
    if (p->desc.target_limits) {
        struct fanout_limits lim = p->desc.limits;
        why[0] = 0;
        if (p->desc.target_limits(p->state, &t, &lim, why, sizeof why) != 0) {
            snprintf(err, err_len, "mapping \"%s\": plugin \"%s\" refused its limits: %s",
                     id, m->type, why[0] ? why : "no reason given");
            free(opt_block);
            json_decref(opt_values);
            return -1;
        }
    }
    if (s_check_on_failure(l, m, err, err_len) != 0) {
        free(opt_block);
        json_decref(opt_values);
        return -1;
    }
    *pp = p;
    if (block) {
        *block = opt_block;
        *values = opt_values;
    } else {
        free(opt_block);
        json_decref(opt_values);
    }
    return 0;
}

int fanout_mapping_check_plugin(struct fanout_loader *l, const struct fanout_mapping *m,
                                char *err, size_t err_len)
{
    const struct fanout_loaded_plugin *p;
    return s_check(l, m, &p, NULL, NULL, err, err_len);
}

int fanout_engine_check_mapping(struct fanout_engine *e, const struct fanout_mapping *m,
                                char *err, size_t err_len)
{
    return fanout_mapping_check_plugin(e->loader, m, err, err_len);
}

static char *s_instance_key(const struct fanout_mapping *m, int collapse)
{
    char *extra = json_dumps(m->extra, JSON_COMPACT | JSON_SORT_KEYS);
    struct fanout_sbuf b = {0};
    fanout_sbuf_printf(&b, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%d\x1f%d\x1f%s", m->type,
                       m->destination, m->region ? m->region : "", m->role ? m->role : "",
                       m->external_id ? m->external_id : "", collapse, m->parallel,
                       extra ? extra : "");
    free(extra);
    return (char *)b.bytes;
}

static char *s_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The open instance for a mapping, from the cache or newly opened. */
static struct s_instance *s_instance_get(struct fanout_engine *e,
                                         const struct fanout_mapping *m, int *invalid,
                                         char *err, size_t err_len)
{
    const struct fanout_loaded_plugin *p;
    void *block;
    json_t *values;
    *invalid = 0;
    if (s_check(e->loader, m, &p, &block, &values, err, err_len) != 0) {
        *invalid = 1; /* what `fanout validate` reports too */
        return NULL;
    }
    char *key = s_instance_key(m, s_collapse_of(p, m));
    if (!key) {
        free(block);
        json_decref(values);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    int64_t now = e->host->now_ms();
    for (struct s_instance *in = e->instances; in; in = in->next)
        if (strcmp(in->key, key) == 0) {
            free(key);
            free(block);
            json_decref(values);
            in->last_used_ms = now;
            return in;
        }
    struct s_instance *in = calloc(1, sizeof *in);
    if (!in) {
        free(key);
        free(block);
        json_decref(values);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    in->key = key;
    in->last_used_ms = now;
    in->plugin = p;
    in->options = block;
    in->option_values = values;
    pthread_mutex_init(&in->send_lock, NULL);
    s_fill_target(&in->target, m, p, block);
    const char *src[] = {m->source_arn, m->id,   m->type,       m->destination,
                         m->region,     m->role, m->external_id};
    const char **dst[] = {&in->target.source_arn,  &in->target.id,     &in->target.type,
                          &in->target.destination, &in->target.region, &in->target.role,
                          &in->target.external_id};
    for (size_t i = 0; i < sizeof src / sizeof *src; i++) {
        in->strings[i] = s_dup(src[i]);
        *dst[i] = in->strings[i];
    }
    in->limits = p->desc.limits;
    if (p->desc.target_limits) {
        char why[256] = "";
        if (p->desc.target_limits(p->state, &in->target, &in->limits, why, sizeof why) !=
            0) {
            char qid[FANOUT_QUOTE_SIZE];
            snprintf(err, err_len, "mapping \"%s\": plugin \"%s\" refused its limits: %s",
                     fanout_quote(qid, m->id), m->type, why[0] ? why : "no reason given");
            s_instance_free(in);
            return NULL;
        }
    }
    struct fanout_error perr = {{0}, {0}};
    if (p->desc.open(p->state, &in->target, &in->handle, &perr) != 0) {
        char qid[FANOUT_QUOTE_SIZE], qdest[FANOUT_QUOTE_SIZE];
        snprintf(err, err_len, "mapping \"%s\": plugin \"%s\" could not open %s: %s%s%s",
                 fanout_quote(qid, m->id), m->type, fanout_quote(qdest, m->destination),
                 perr.code[0] ? perr.code : "", perr.code[0] ? ": " : "",
                 perr.message[0] ? perr.message : "no reason given");
        in->handle = NULL;
        in->next = NULL;
        /* not cached: the next invocation tries again */
        s_instance_free(in);
        return NULL;
    }
    in->next = e->instances;
    e->instances = in;
    char qdest[FANOUT_QUOTE_SIZE];
    LOG_DEBUG(m->id, "opened %s instance for %s", m->type,
              fanout_quote(qdest, m->destination));
    return in;
}

/* ---- one invocation ---------------------------------------------------- */

struct s_run;

/* One target of one invocation. Its summary is res->targets[sum_index]:
 * an index, never a pointer, since that array grows while targets are
 * added. */
struct s_target_run {
    struct s_run *run;
    size_t sum_index;
    struct s_instance *inst;
    const char *scope; /* the mapping id, for log lines (capped) */
    const char *dest;  /* the destination, for log lines (capped) */
    char scope_buf[FANOUT_QUOTE_SIZE];
    char dest_buf[FANOUT_QUOTE_SIZE];
    enum fanout_collapse collapse;
    struct fanout_plan plan;
    /* "onFailure": what this target could not deliver is kept in `of`
     * (NULL without one); `round` is set on the second round's target,
     * whose summary is `of->sum`, not one of the result's */
    struct fanout_onfailure *of;
    struct fanout_onfailure *round;
    struct s_target_run *of_next;
    /* the sending of its calls (s_take, s_work; under run->lock): the
     * next one to hand out, how many are in flight and may be (conc.h).
     * An ordered target is one unit: all its calls, one after the other. */
    int ordered;
    size_t next_call;
    unsigned in_flight; /* handed out, so under the limit */
    unsigned sending;   /* of those, started by their thread */
    unsigned peak;      /* the most sending at once */
    size_t full_count;  /* messages in the target's largest call */
    struct fanout_conc conc;
};

struct s_run {
    struct fanout_engine *e;
    struct fanout_event *ev;
    struct fanout_result *res;
    uint8_t *raw_failed; /* per ev->records entry */
    /* the targets with calls to send; s_dispatch sends them */
    struct s_target_run **sched;
    size_t sched_count, sched_cap;
    size_t left;  /* units not yet handed out (a call; an ordered target) */
    size_t taken; /* units handed out: each one's retry seed */
    /* the sending's lock: the pool's, or own_lock when the dispatching
     * thread sends every unit itself (pool NULL) */
    pthread_mutex_t *lock, own_lock;
    struct s_pool *pool;
    size_t active; /* pool threads in the run: each was handed a unit */
    unsigned seed;
    struct s_target_run *of_list;      /* the targets with an on-failure destination */
    struct fanout_filter_views *views; /* of the records, when a filter asks */
};

static struct fanout_target_summary *s_sum(const struct s_target_run *t)
{
    return t->round ? &t->round->sum : &t->run->res->targets[t->sum_index];
}

static void s_mark_failed(struct s_run *run, const struct fanout_raw_record *raw)
{
    size_t i = (size_t)(raw - run->ev->records);
    __atomic_store_n(&run->raw_failed[i], 1, __ATOMIC_RELAXED);
}

/* Report one record as not delivered to a target: logged with its source,
 * sequence number and the reason. */
static void s_fail_record(struct s_target_run *t, const struct fanout_record *r,
                          const struct fanout_raw_record *raw, const char *reason)
{
    if (t->round) { /* a document the on-failure destination did not take */
        fanout_onfailure_refused(t->round, r, reason);
        return;
    }
    s_mark_failed(t->run, raw);
    __atomic_fetch_add(&s_sum(t)->failed, 1, __ATOMIC_RELAXED);
    char sub[48] = "";
    if (r && r->aggregated)
        snprintf(sub, sizeof sub, " sub-sequence %llu",
                 (unsigned long long)r->sub_sequence_number);
    char qsrc[FANOUT_QUOTE_SIZE], qseq[FANOUT_QUOTE_SIZE];
    LOG_ERROR(
        t->scope, "record not delivered to %s %s: source %s, sequence number %s%s: %s",
        s_sum(t)->type, t->dest,
        raw->source_arn ? fanout_quote(qsrc, raw->source_arn) : "?",
        raw->sequence_number ? fanout_quote(qseq, raw->sequence_number) : "?", sub, reason);
}

static void s_fail_message(struct s_target_run *t, const struct fanout_message *m,
                           const char *reason)
{
    for (size_t i = 0; i < m->record_count; i++) {
        const struct fanout_rec *r = (const struct fanout_rec *)m->records[i];
        s_fail_record(t, &r->pub, r->raw, reason);
    }
}

/* A record the target refused or could not take after `attempts` (0: not
 * sent): kept for its on-failure destination when it has one, else failed.
 * Records merely not sent (deadline, order) fail as before: the source
 * retries them. */
static void s_refused(struct s_target_run *t, const struct fanout_record *r,
                      const struct fanout_raw_record *raw, const char *reason,
                      unsigned attempts)
{
    if (!t->of || fanout_onfailure_keep(t->of, r, raw, reason, attempts,
                                        t->run->e->host->now_ms()) != 0)
        s_fail_record(t, r, raw, reason);
}

static void s_refused_message(struct s_target_run *t, const struct fanout_message *m,
                              const char *reason, unsigned attempts)
{
    for (size_t i = 0; i < m->record_count; i++) {
        const struct fanout_rec *r = (const struct fanout_rec *)m->records[i];
        s_refused(t, &r->pub, r->raw, reason, attempts);
    }
}

static void s_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static const char *s_status_name(int st)
{
    switch (st) {
    case FANOUT_RETRY: return "retryable failure";
    case FANOUT_THROTTLED: return "throttled";
    case FANOUT_FATAL: return "failed";
    default: return "unknown status";
    }
}

/* Why a message failed for good. The engine's count of attempts is the
 * only one stated (the AWS client does not add its own): "failed: <code>:
 * <msg> (2 attempts)" for a permanent failure, "retryable failure: <code>:
 * <msg> (gave up after 4 attempts)" when retries ran out. `tail`, when
 * given, says why it gave up early. */
static void s_outcome_reason(char *out, size_t n, const struct fanout_outcome *o,
                             unsigned attempts, const char *tail)
{
    char code[sizeof o->code + 1], msg[sizeof o->message + 1];
    memcpy(code, o->code, sizeof o->code);
    code[sizeof o->code] = 0;
    memcpy(msg, o->message, sizeof o->message);
    msg[sizeof o->message] = 0;
    char count[160];
    int w;
    if (o->status == FANOUT_RETRY || o->status == FANOUT_THROTTLED)
        w = snprintf(count, sizeof count, "gave up after %u attempt%s%s%s", attempts,
                     attempts == 1 ? "" : "s", tail ? ": " : "", tail ? tail : "");
    else /* permanent: the attempt that got that answer was the last */
        w = snprintf(count, sizeof count, "%u attempt%s", attempts,
                     attempts == 1 ? "" : "s");
    (void)w;
    w = snprintf(out, n, "%s%s%s%s%s (%s)", s_status_name(o->status), code[0] ? ": " : "",
                 code, msg[0] ? ": " : "", msg, count);
    if (w >= (int)n && n > 4)
        memcpy(out + n - 4, "...", 4); /* cut: say so */
}

/* A call's outcomes, zeroed. A large array (1,000 messages of a file
 * target: 328 KB) is mapped on its own with every page read in at once
 * (MADV_POPULATE_READ): the engine reads every status, and what no plugin
 * wrote (a plugin writes what failed) is the kernel's zero page, in one
 * system call where a calloc'd block takes a fault per 4 KiB (about 7 us
 * each in a VM) and a reused one a memset. What a plugin writes takes
 * 4 KiB pages, as calloc's would. (Huge pages would read as the huge zero
 * page in one fault, but a plugin writing an entry, as some zero each one
 * again, would then take a whole 2 MiB page per call.) Without
 * MADV_POPULATE_READ (Linux < 5.14) the pages arrive as read. */
#define OUTCOMES_MAP_MIN (64 * 1024)

static struct fanout_outcome *s_outcomes_new(size_t n, size_t *mapped)
{
    *mapped = 0;
    size_t bytes = n * sizeof(struct fanout_outcome);
    if (bytes >= OUTCOMES_MAP_MIN) {
        void *p =
            mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
#ifdef MADV_POPULATE_READ
            (void)madvise(p, bytes, MADV_POPULATE_READ);
#endif
            *mapped = bytes;
            return p;
        }
    }
    return calloc(n ? n : 1, sizeof(struct fanout_outcome));
}

static void s_outcomes_free(struct fanout_outcome *o, size_t mapped)
{
    if (mapped)
        munmap(o, mapped);
    else
        free(o);
}

/* What a call's first attempt tells of the destination's pace (conc.h):
 * its answer time, whether some message was delivered (an answer to the
 * call itself: a call refused whole, or not connected, may come back
 * faster than any real answer), whether some was throttled. */
struct s_pace {
    int64_t rtt_us;
    int delivered, throttled;
};

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Send one call with retries of the messages that failed retryably.
 * Returns 0 when all were delivered, -1 when some failed for good. */
static int s_send_call(struct s_target_run *t, const struct fanout_call *c, unsigned *seed,
                       struct s_pace *pace)
{
    const struct fanout_engine_config *cfg = &t->run->e->cfg;
    const struct fanout_plugin *pd = &t->inst->plugin->desc;
    size_t n = c->count;
    struct fanout_message **pending = malloc(n * sizeof *pending);
    /* zeroed for the first attempt; `last` only when a retry needs it */
    size_t out_mapped;
    struct fanout_outcome *out = s_outcomes_new(n, &out_mapped);
    struct fanout_outcome *last = NULL;
    int rc = 0;
    *pace = (struct s_pace){0};
    if (!pending || !out) {
        for (size_t i = 0; i < n; i++)
            s_fail_message(t, c->messages[i], "out of memory");
        free(pending);
        s_outcomes_free(out, out_mapped);
        free(last);
        return -1;
    }
    memcpy(pending, c->messages, n * sizeof *pending);
    for (unsigned attempt = 1; n > 0; attempt++) {
        if (attempt == 1 && t->run->e->host->remaining_ms() <= 0) {
            /* retries check the time before they sleep (below) */
            for (size_t i = 0; i < n; i++)
                s_fail_message(t, pending[i],
                               "not sent: the invocation's deadline had passed (Lambda's, "
                               "or fanout invoke --timeout)");
            rc = -1;
            break;
        }
        struct fanout_batch batch = {
            .struct_size = sizeof batch,
            .collapse = t->collapse,
            .count = n,
            .messages = (const struct fanout_message *const *)pending,
            .attempt = attempt,
        };
        if (attempt > 1)
            memset(out, 0, n * sizeof *out);
        int serial = pd->flags & FANOUT_PLUGIN_SERIAL;
        int64_t t0 = attempt == 1 ? s_now_us() : 0;
        if (serial)
            pthread_mutex_lock(&t->inst->send_lock);
        pd->send(t->inst->handle, &batch, out);
        if (serial)
            pthread_mutex_unlock(&t->inst->send_lock);
        if (attempt == 1)
            pace->rtt_us = s_now_us() - t0;
        __atomic_fetch_add(&s_sum(t)->calls, 1, __ATOMIC_RELAXED);

        size_t again = 0;
        unsigned hint_ms = 0;
        for (size_t i = 0; !last && i < n; i++)
            if (out[i].status == FANOUT_RETRY || out[i].status == FANOUT_THROTTLED) {
                last = malloc(n * sizeof *last);
                if (!last) {
                    for (size_t j = 0; j < n; j++)
                        s_fail_message(t, pending[j], "out of memory");
                    rc = -1;
                    n = 0;
                }
            }
        if (!n)
            break;
        int throttled = 0;
        char reason[400];
        for (size_t i = 0; i < n; i++) {
            int st = out[i].status;
            if (st == FANOUT_OK) {
                pace->delivered |= attempt == 1;
                __atomic_fetch_add(&s_sum(t)->delivered, pending[i]->record_count,
                                   __ATOMIC_RELAXED);
            } else if (st == FANOUT_RETRY || st == FANOUT_THROTTLED) {
                throttled |= st == FANOUT_THROTTLED;
                if (out[i].retry_after_ms > hint_ms)
                    hint_ms = out[i].retry_after_ms;
                last[again] = out[i];
                pending[again++] = pending[i];
            } else {
                s_outcome_reason(reason, sizeof reason, &out[i], attempt, NULL);
                s_refused_message(t, pending[i], reason, attempt);
                rc = -1;
            }
        }
        pace->throttled |= attempt == 1 && throttled;
        n = again;
        if (!n)
            break;
        /* the one backoff (full jitter) of every retry loop */
        const struct fanout_retry_policy backoff = {.base_ms = cfg->retry_base_ms,
                                                    .cap_ms = cfg->retry_cap_ms};
        unsigned delay = fanout_retry_delay_ms(&backoff, attempt, seed);
        if (hint_ms > delay)
            delay = hint_ms;
        int64_t left = t->run->e->host->remaining_ms();
        int out_of_time = left < (int64_t)delay + cfg->deadline_margin_ms;
        if (attempt >= cfg->retry_attempts || out_of_time) {
            for (size_t i = 0; i < n; i++) {
                s_outcome_reason(reason, sizeof reason, &last[i], attempt,
                                 out_of_time && attempt < cfg->retry_attempts
                                     ? "no time left before the invocation's deadline "
                                       "(Lambda's, or fanout invoke --timeout) to retry"
                                     : NULL);
                s_refused_message(t, pending[i], reason, attempt);
            }
            rc = -1;
            break;
        }
        size_t resent = 0;
        for (size_t i = 0; i < n; i++)
            resent += pending[i]->record_count;
        __atomic_fetch_add(&s_sum(t)->retried, resent, __ATOMIC_RELAXED);
        LOG_WARN(t->scope,
                 "%zu of %zu messages to %s %s: %s; retrying in %u ms (attempt %u "
                 "of %u)",
                 n, c->count, s_sum(t)->type, t->dest,
                 throttled ? "throttled" : "retryable failure", delay, attempt + 1,
                 cfg->retry_attempts);
        s_sleep_ms(delay);
    }
    free(pending);
    s_outcomes_free(out, out_mapped);
    free(last);
    return rc;
}

/* One unit: call `call` of a parallel target, or every call of an ordered
 * one (call SIZE_MAX: its pace is not kept, it has no limit to set). */
static void s_run_unit(struct s_target_run *t, size_t call, unsigned seed,
                       struct s_pace *pace)
{
    if (call != SIZE_MAX) {
        s_send_call(t, &t->plan.calls[call], &seed, pace);
        return;
    }
    /* Ordered target: one call at a time; after a call fails for good, the
     * later ones are not sent, so the target never sees records out of
     * order (the source retries from the first failed record). */
    for (size_t i = 0; i < t->plan.call_count; i++) {
        if (s_send_call(t, &t->plan.calls[i], &seed, pace) == 0)
            continue;
        for (size_t j = i + 1; j < t->plan.call_count; j++)
            for (size_t k = 0; k < t->plan.calls[j].count; k++)
                s_fail_message(t, t->plan.calls[j].messages[k],
                               "not sent: an earlier batch of this ordered target "
                               "(parallel: false) failed, and sending later records "
                               "would break their order");
        break;
    }
    *pace = (struct s_pace){0};
}

static size_t s_units(const struct s_target_run *t)
{
    return t->ordered ? 1 : t->plan.call_count;
}

/* Add a target with calls to the run's sending (-1 when out of memory). */
static int s_sched_add(struct s_run *run, struct s_target_run *t, int ordered)
{
    if (!t->plan.call_count)
        return 0;
    if (run->sched_count == run->sched_cap) {
        size_t n = run->sched_cap ? 2 * run->sched_cap : 16;
        void *p = realloc(run->sched, n * sizeof *run->sched);
        if (!p)
            return -1;
        run->sched = p;
        run->sched_cap = n;
    }
    t->ordered = ordered;
    t->next_call = 0;
    t->in_flight = t->sending = t->peak = 0;
    t->full_count = 0;
    for (size_t c = 0; c < t->plan.call_count; c++)
        if (t->plan.calls[c].count > t->full_count)
            t->full_count = t->plan.calls[c].count;
    fanout_conc_init(&t->conc, run->e->cfg.max_parallel);
    run->sched[run->sched_count++] = t;
    run->left += s_units(t);
    return 0;
}

/* A unit handed out: call `call` of t, or every call of an ordered target
 * (SIZE_MAX), and the seed of its retries' backoff. */
struct s_unit {
    struct s_target_run *t;
    size_t call;
    unsigned seed;
};

/* The unit to send next into *u (run->lock held); 0 when none may start now.
 * An ordered target's (all its calls, the longest) first; then of the
 * targets under their limit, the one least far through its calls: call i
 * of n at (2i+1)/2n of the run. So every target is served from the start,
 * whatever the order of the mappings, and the calls in flight are a mix of
 * the targets' (16 Kinesis calls of 256 KB bodies do not go together).
 * A target whose calls are all handed out leaves the list. */
static int s_take(struct s_run *run, struct s_unit *u)
{
    struct s_target_run *best = NULL;
    size_t at = 0;
    for (size_t j = 0; j < run->sched_count; j++) {
        struct s_target_run *t = run->sched[j];
        if (t->in_flight >= (t->ordered ? 1 : t->conc.limit))
            continue;
        if (t->ordered || !best ||
            (2 * t->next_call + 1) * s_units(best) <
                (2 * best->next_call + 1) * s_units(t)) {
            best = t;
            at = j;
            if (t->ordered)
                break;
        }
    }
    if (!best)
        return 0;
    u->t = best;
    u->call = best->ordered ? SIZE_MAX : best->next_call;
    best->in_flight++;
    run->left--;
    run->taken++;
    u->seed = run->seed + (unsigned)run->taken * 2654435761u;
    if (++best->next_call == s_units(best))
        run->sched[at] = run->sched[--run->sched_count];
    return 1;
}

/* Whether a unit may start now (run->lock held). */
static int s_can_take(const struct s_run *run)
{
    for (size_t j = 0; j < run->sched_count; j++) {
        const struct s_target_run *t = run->sched[j];
        if (t->in_flight < (t->ordered ? 1 : t->conc.limit))
            return 1;
    }
    return 0;
}

/* A thread of the pool. Idle, it sleeps on its own condition until it is
 * handed a unit (`run` set) or the pool quits. */
struct s_pool_thread {
    pthread_t id;
    pthread_cond_t wake;
    struct s_pool *pool;
    struct s_run *run; /* NULL: idle */
    struct s_unit unit;
    struct s_pool_thread *next; /* on the pool's idle list */
};

static void *s_pool_main(void *arg);

/* One malloc arena per CPU, not glibc's eight: each pool thread would get
 * an arena of its own, and memory freed in one (a request body, libcurl's
 * buffers) is not reused by another, so 16 threads kept 16 arenas' free
 * space resident (e2e to Kinesis, SQS and Redis: peak RSS -1.5 to -2.3 MB,
 * 400 fewer page faults, CPU unchanged: the threads mostly wait for answers, so
 * no more than one per CPU allocates at a time). MALLOC_ARENA_MAX or a
 * glibc.malloc tunable in the environment is left to rule. */
static pthread_once_t s_arenas_once = PTHREAD_ONCE_INIT;

static void s_limit_arenas(void)
{
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
    const char *tunables = getenv("GLIBC_TUNABLES");
    if (getenv("MALLOC_ARENA_MAX") ||
        (tunables && strstr(tunables, "glibc.malloc.arena_max")))
        return;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    (void)mallopt(M_ARENA_MAX, cpus < 1 ? 1 : cpus > 64 ? 64 : (int)cpus);
#endif
}

/* An idle thread of the pool (p->lock held), the last used first (its
 * stack and caches are warm); else a new one (*fresh set), which waits for
 * p->lock, not for a signal; NULL when none can be made. */
static struct s_pool_thread *s_pool_get(struct s_pool *p, int *fresh)
{
    struct s_pool_thread *th = p->idle;
    *fresh = 0;
    if (th) {
        p->idle = th->next;
        return th;
    }
    pthread_once(&s_arenas_once, s_limit_arenas);
    struct s_pool_thread **all = realloc(p->threads, (p->count + 1) * sizeof *all);
    if (!all)
        return NULL;
    p->threads = all;
    if (!(th = calloc(1, sizeof *th)))
        return NULL;
    th->pool = p;
    pthread_cond_init(&th->wake, NULL);
    if (pthread_create(&th->id, NULL, s_pool_main, th) != 0) {
        pthread_cond_destroy(&th->wake);
        free(th);
        return NULL;
    }
    all[p->count++] = th;
    *fresh = 1;
    return th;
}

/* Idle recruits to wake once the lock is released: a thread woken while it
 * is held would wake only to wait for it (the first S_WAKE_LATER; any more
 * are woken at once). */
#define S_WAKE_LATER 4
struct s_wake {
    struct s_pool_thread *th[S_WAKE_LATER];
    size_t n;
};

/* With a pool, hand each unit that may start now to a thread of its own,
 * while fewer than max_parallel are in the run (run->lock, the pool's,
 * held); s_wake after the lock is released. */
static void s_recruit(struct s_run *run, struct s_wake *w)
{
    w->n = 0;
    while (run->pool && run->active < run->e->cfg.max_parallel && s_can_take(run)) {
        int fresh;
        struct s_pool_thread *th = s_pool_get(run->pool, &fresh);
        if (!th)
            return; /* the run's threads take the unit when their calls end */
        s_take(run, &th->unit);
        th->run = run;
        run->active++;
        if (fresh)
            continue; /* it sees its run before it would wait */
        if (w->n < S_WAKE_LATER)
            w->th[w->n++] = th;
        else
            pthread_cond_signal(&th->wake);
    }
}

/* The idle recruits of s_recruit (lock released). Each was waiting for
 * this signal, unless it woke spuriously: then it may have sent its unit
 * and be idle again, or recruited again, by now; it wakes, sees no run and
 * sleeps, or sees its new one. A thread is freed only at
 * fanout_engine_destroy, after the run. */
static void s_wake(const struct s_wake *w)
{
    for (size_t i = 0; i < w->n; i++)
        pthread_cond_signal(&w->th[i]->wake);
}

/* Send units until none may start now (run->lock held on entry and on
 * return): `u` first when set (the unit this thread was handed), then the
 * ones it takes; each further unit that may start meanwhile goes to a pool
 * thread (s_recruit). A thread that finds none leaves: when a unit may
 * start again, it is because a call ended, and the thread that sent it
 * takes that unit. */
static void s_work(struct s_run *run, struct s_unit u)
{
    while (u.t || s_take(run, &u)) {
        struct s_wake w;
        s_recruit(run, &w);
        if (++u.t->sending > u.t->peak)
            u.t->peak = u.t->sending;
        pthread_mutex_unlock(run->lock);
        s_wake(&w);
        struct s_pace pace;
        s_run_unit(u.t, u.call, u.seed, &pace);
        pthread_mutex_lock(run->lock);
        struct s_target_run *t = u.t;
        /* a small call (a target's last) says little of the pace; the
         * calls in flight with it are those sent, not those handed to a
         * recruit not yet started (a loaded CPU delays it, and the answers
         * meanwhile would seem as fast with more in flight) */
        if (pace.throttled)
            fanout_conc_throttled(&t->conc, u.call, t->next_call);
        else if (pace.delivered && 2 * t->plan.calls[u.call].count >= t->full_count)
            fanout_conc_sample(&t->conc, pace.rtt_us, t->sending, u.call, t->next_call);
        t->sending--;
        if (!--t->in_flight && t->next_call == s_units(t) && !t->ordered)
            LOG_DEBUG(t->scope,
                      "%zu calls to %s, up to %u in flight at once (limit %u, fastest "
                      "answer %lld us, smoothed %lld us)",
                      t->plan.call_count, t->dest, t->peak, t->conc.limit,
                      (long long)t->conc.min_us, (long long)t->conc.smooth_us);
        u.t = NULL;
    }
}

static void *s_pool_main(void *arg)
{
    struct s_pool_thread *th = arg;
    struct s_pool *p = th->pool;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!th->run && !p->quit)
            pthread_cond_wait(&th->wake, &p->lock);
        if (!th->run)
            break;
        struct s_run *run = th->run;
        s_work(run, th->unit);
        th->run = NULL;
        th->next = p->idle;
        p->idle = th;
        if (!--run->active)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void s_pool_stop(struct s_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->quit = 1;
    for (size_t i = 0; i < p->count; i++)
        pthread_cond_signal(&p->threads[i]->wake);
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < p->count; i++) {
        pthread_join(p->threads[i]->id, NULL);
        pthread_cond_destroy(&p->threads[i]->wake);
        free(p->threads[i]);
    }
    free(p->threads);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->lock);
}

/* The run's units on up to max_parallel threads of the pool, each recruited
 * with a unit to send; this thread waits (it sends nothing itself: its
 * memory, the event's, is then not grown and given back by the sends'
 * buffers). With one unit, max_parallel 1, no thread to be had, or a run
 * already in progress on the pool, this thread sends every unit itself.
 *
 * Why no wakeup is lost, and no thread wakes for nothing:
 * - An idle thread waits on its own condition, for `th->run` (or quit),
 *   under p->lock. A recruiter takes it off the idle list and sets its
 *   run and unit under that lock before the signal (given once the lock
 *   is released, s_wake; a new thread gets none): the one thread that can
 *   wait there is the one wanted, and if it is not waiting yet it sees its
 *   run before it would wait. (One condition for all, as before, let a
 *   signal wake a thread that had taken part and went back to sleep.)
 * - A thread is on the idle list exactly while its run is NULL: it puts
 *   itself back in the critical section where it leaves its run, so no
 *   unit is handed to a thread that is still sending.
 * - A recruit is handed its unit (taken for it, counted in flight), so it
 *   never finds the units gone when it wakes, and it is counted in
 *   `active` from then on: the run does not end, nor its memory go, before
 *   the recruit has left it.
 * - No thread waits inside a run. A unit may start only (1) here, at the
 *   start, where every one that may is recruited for, or (2) when a call
 *   ends (fewer in flight, or a higher limit): the thread that sent it
 *   takes one itself and recruits for the rest. A thread that finds none
 *   leaves. When max_parallel threads are in the run, each takes the next
 *   unit when its call ends; when no thread can be made, so does every
 *   thread in the run (there is one: the recruiter).
 * - So the run ends (active 0, signalled on p->done, where only this
 *   thread waits) with every unit sent: the last thread to leave found no
 *   unit that may start with nothing in flight, and a target with units
 *   left and none in flight may always start one (its limit is >= 1).
 * - fanout_engine_destroy sets quit and signals every thread's condition
 *   under p->lock; a thread in a run sees quit when it leaves it. */
static void s_dispatch(struct s_run *run)
{
    struct s_pool *p = &run->e->pool;
    struct s_wake w = {.n = 0};
    run->pool = NULL;
    run->active = 0;
    pthread_mutex_lock(&p->lock);
    if (run->e->cfg.max_parallel > 1 && run->left > 1 && !p->run) {
        run->pool = p;
        run->lock = &p->lock;
        s_recruit(run, &w);
    }
    if (run->active) {
        p->run = run;
        pthread_mutex_unlock(&p->lock);
        s_wake(&w);
        pthread_mutex_lock(&p->lock);
        while (run->active)
            pthread_cond_wait(&p->done, &p->lock);
        p->run = NULL;
        pthread_mutex_unlock(&p->lock);
    } else {
        pthread_mutex_unlock(&p->lock);
        run->pool = NULL;
        run->lock = &run->own_lock;
        pthread_mutex_init(run->lock, NULL);
        pthread_mutex_lock(run->lock);
        s_work(run, (struct s_unit){0});
        pthread_mutex_unlock(run->lock);
        pthread_mutex_destroy(run->lock);
    }
    run->sched_count = 0;
}

static char *s_strdup_or(const char *s, const char *dflt)
{
    return strdup(s ? s : dflt);
}

/* The records of `d` that pass filter `f`, into *out (the others count as
 * filtered). Each record's view is built once, for every target. */
static int s_filter_records(struct s_run *run, const struct fanout_filter *f,
                            const struct fanout_decoded *d, struct fanout_rec ***out,
                            size_t *count)
{
    if (!run->views && !(run->views = fanout_filter_views_new(run->ev->count)))
        return -1;
    struct fanout_rec **keep =
        fanout_arena_alloc(&run->e->arena, (d->count ? d->count : 1) * sizeof *keep);
    if (!keep)
        return -1;
    *count = 0;
    for (size_t i = 0; i < d->count; i++) {
        size_t raw = (size_t)(d->records[i]->raw - run->ev->records);
        int rc = fanout_filter_record(run->views, f, d->records[i], raw);
        if (rc < 0)
            return -1;
        if (rc)
            keep[(*count)++] = d->records[i];
    }
    *out = keep;
    return 0;
}

/* Fail a whole target: every record of its source group. */
static void s_fail_target(struct s_target_run *t, const struct fanout_source_group *g,
                          const char *why)
{
    struct fanout_target_summary *sum = s_sum(t);
    free(sum->error);
    sum->error = strdup(why);
    sum->records = g->count;
    char qsrc[FANOUT_QUOTE_SIZE], qfirst[FANOUT_QUOTE_SIZE], qlast[FANOUT_QUOTE_SIZE];
    const char *first = g->count ? g->records[0]->sequence_number : NULL;
    const char *last = g->count ? g->records[g->count - 1]->sequence_number : NULL;
    LOG_ERROR(t->scope,
              "target failed, %zu records of source %s not delivered (sequence numbers %s "
              "to %s): %s",
              g->count, fanout_quote(qsrc, g->source_arn),
              first ? fanout_quote(qfirst, first) : "?",
              last ? fanout_quote(qlast, last) : "?", why);
    for (size_t i = 0; i < g->count; i++) {
        s_mark_failed(t->run, g->records[i]);
        sum->failed++;
    }
}

/* A new target (summary and run state) for this invocation, or NULL when
 * out of memory. */
static struct s_target_run *s_target_add(struct s_run *run, size_t *cap,
                                         const struct fanout_source_group *g,
                                         const char *source_arn, const char *id,
                                         const char *type, const char *destination)
{
    struct fanout_result *res = run->res;
    if (res->target_count == *cap) {
        size_t n = *cap ? *cap * 2 : 8;
        void *q = realloc(res->targets, n * sizeof *res->targets);
        if (!q)
            return NULL;
        res->targets = q;
        *cap = n;
    }
    struct s_target_run *t = fanout_arena_calloc(&run->e->arena, sizeof *t);
    if (!t)
        return NULL;
    struct fanout_target_summary *sum = &res->targets[res->target_count];
    memset(sum, 0, sizeof *sum);
    sum->source_arn = s_strdup_or(source_arn, "");
    sum->oldest_arrival_ms = g->oldest_arrival_ms;
    sum->id = s_strdup_or(id, "");
    sum->type = s_strdup_or(type, "");
    sum->destination = s_strdup_or(destination, "");
    t->sum_index = res->target_count++;
    t->run = run;
    t->scope = fanout_quote(t->scope_buf, sum->id);
    t->dest = fanout_quote(t->dest_buf, sum->destination);
    return t;
}

/* The stream of a Kinesis enhanced fan-out consumer ARN,
 * arn:P:kinesis:R:A:stream/NAME/consumer/C:T, into `out`: 1, or 0 when
 * `arn` is not one (or does not fit). */
static int s_consumer_stream(const char *arn, char *out, size_t len)
{
    struct fanout_arn a;
    if (fanout_arn_split(arn, &a) != 0 || a.service_len != 7 ||
        memcmp(a.service, "kinesis", 7) != 0 || a.resource_len < 8 ||
        memcmp(a.resource, "stream/", 7) != 0)
        return 0;
    const char *name = a.resource + 7, *slash = strchr(name, '/');
    if (!slash || slash == name || strncmp(slash, "/consumer/", 10) != 0 || !slash[10])
        return 0;
    size_t n = (size_t)(slash - arn);
    if (n >= len)
        return 0;
    memcpy(out, arn, n);
    out[n] = 0;
    return 1;
}

/* An invalid mapping of this source: its records fail on it (the other
 * targets still get them), unless FANOUT_SKIP_INVALID_MAPPINGS. */
static int s_invalid_mapping(struct s_run *run, size_t *cap,
                             const struct fanout_source_group *g, const char *id,
                             const char *type, const char *destination, const char *why)
{
    char qsrc[FANOUT_QUOTE_SIZE], qid[FANOUT_QUOTE_SIZE];
    if (run->e->cfg.skip_invalid_mappings) {
        LOG_WARN(
            "mappings",
            "invalid mapping \"%s\" of %s SKIPPED (FANOUT_SKIP_INVALID_MAPPINGS=true): "
            "%zu records acknowledged without reaching it: %s",
            fanout_quote(qid, id ? id : "?"), fanout_quote(qsrc, g->source_arn), g->count,
            why);
        return 0;
    }
    struct s_target_run *t = s_target_add(run, cap, g, g->source_arn, id ? id : "",
                                          type ? type : "", destination ? destination : "");
    if (!t)
        return -1;
    char reason[1200];
    snprintf(reason, sizeof reason, "invalid mapping: %s", why);
    s_fail_target(t, g, reason);
    return 0;
}

/* The second round: each record a target could not deliver goes to that
 * target's on-failure destination as one document (its own instance,
 * collapse none, the same retries and deadline). A confirmed document
 * makes the record handled; otherwise it fails as before, with both
 * reasons. Returns -1 only when out of memory. */
static int s_on_failure_round(struct s_run *run)
{
    struct fanout_engine *e = run->e;
    run->sched_count = run->left = 0;
    for (struct s_target_run *t = run->of_list; t; t = t->of_next) {
        struct fanout_onfailure *of = t->of;
        if (!of->count)
            continue;
        struct s_target_run *t2 = fanout_arena_calloc(&e->arena, sizeof *t2);
        if (!t2 || fanout_onfailure_build(of, s_sum(t), &e->arena) != 0)
            return -1;
        t2->run = run;
        t2->round = of;
        char why[1024];
        int invalid;
        struct fanout_mapping *m = fanout_mapping_parse(of->mapping, 0, why, sizeof why);
        t2->inst = m ? s_instance_get(e, m, &invalid, why, sizeof why) : NULL;
        /* the summary owns its strings: copies in the run's arena */
        of->sum.type = fanout_arena_strdup(
            &e->arena, json_string_value(json_object_get(of->mapping, "type")));
        of->sum.destination = fanout_arena_strdup(
            &e->arena, json_string_value(json_object_get(of->mapping, "destination")));
        t2->scope = fanout_quote(t2->scope_buf, m ? m->id : t->scope);
        t2->dest = fanout_quote(t2->dest_buf, of->sum.destination);
        fanout_mapping_free(m);
        if (!t2->inst) {
            for (size_t i = 0; i < of->count; i++)
                fanout_onfailure_refused(of, &of->docs[i].pub, why);
            continue;
        }
        t2->collapse = t2->inst->target.collapse;
        if (fanout_plan_build(of->doc_ptrs, of->count, t2->collapse, &t2->inst->limits,
                              &e->arena, &t2->plan) != 0)
            return -1;
        for (size_t i = 0; i < t2->plan.rejected_count; i++)
            fanout_onfailure_refused(of, &t2->plan.rejected[i].rec->pub,
                                     t2->plan.rejected[i].reason);
        if (s_sched_add(run, t2, 0) != 0)
            return -1;
    }
    s_dispatch(run);
    for (struct s_target_run *t = run->of_list; t; t = t->of_next) {
        struct fanout_onfailure *of = t->of;
        for (size_t i = 0; i < of->count; i++) {
            const struct fanout_onfailure_entry *en = &of->entries[i];
            char qbuf[FANOUT_QUOTE_SIZE], both[2048];
            const char *qdest = fanout_quote(qbuf, of->sum.destination);
            if (en->refused) {
                snprintf(both, sizeof both,
                         "%s; its on-failure destination %s %s did not take it either: %s",
                         en->reason, of->sum.type, qdest,
                         en->second ? en->second : "out of memory");
                s_fail_record(t, &en->rec, en->raw, both);
                continue;
            }
            s_sum(t)->on_failure++;
            char qsrc[FANOUT_QUOTE_SIZE], qseq[FANOUT_QUOTE_SIZE], sub[48] = "";
            if (en->rec.aggregated)
                snprintf(sub, sizeof sub, " sub-sequence %llu",
                         (unsigned long long)en->rec.sub_sequence_number);
            LOG_WARN(t->scope,
                     "record not delivered to %s %s, handed to its on-failure destination "
                     "%s %s: source %s, sequence number %s%s: %s",
                     s_sum(t)->type, t->dest, of->sum.type, qdest,
                     fanout_quote(qsrc, en->raw->source_arn),
                     fanout_quote(qseq, en->raw->sequence_number), sub, en->reason);
        }
    }
    return 0;
}

static int s_invoke(struct fanout_engine *e, const char *event, char *writable, size_t len,
                    struct fanout_result *res, char *err, size_t err_len);

int fanout_engine_invoke(struct fanout_engine *e, const char *event, size_t len,
                         struct fanout_result *res, char *err, size_t err_len)
{
    return s_invoke(e, event, NULL, len, res, err, err_len);
}

int fanout_engine_invoke_in_place(struct fanout_engine *e, char *event, size_t len,
                                  struct fanout_result *res, char *err, size_t err_len)
{
    return s_invoke(e, event, event, len, res, err, err_len);
}

/* `writable`: `event` again when its text may be changed, else NULL */
static int s_invoke(struct fanout_engine *e, const char *event, char *writable, size_t len,
                    struct fanout_result *res, char *err, size_t err_len)
{
    memset(res, 0, sizeof *res);
    fanout_aws_begin_invocation(); /* endpoints resolved once per invocation */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    res->started_ms = e->host->now_ms();
    fanout_arena_reset(&e->arena);
    struct fanout_event ev;
    if ((writable ? fanout_event_parse_in_place(writable, len, !e->no_image_converts,
                                                &e->arena, &ev, err, err_len)
                  : fanout_event_parse_opts(event, len, !e->no_image_converts, &e->arena,
                                            &ev, err, err_len)) != 0)
        return -1;
    int ddb_seen = 0, image_converts = 0;
    res->oldest_arrival_ms = ev.oldest_arrival_ms;
    res->no_partial_response = ev.from_sns;

    struct s_run run = {.e = e, .ev = &ev, .res = res};
    run.raw_failed = calloc(ev.count ? ev.count : 1, 1);
    run.seed = e->cfg.retry_seed ? e->cfg.retry_seed : (unsigned)time(NULL);
    size_t target_cap = 0;
    int rc = -1;
    if (!run.raw_failed) {
        snprintf(err, err_len, "out of memory");
        goto out;
    }
    res->records = ev.count;
    if (e->cfg.skip_invalid_mappings)
        LOG_WARN("mappings",
                 "FANOUT_SKIP_INVALID_MAPPINGS=true: invalid mappings are skipped, so "
                 "records can be acknowledged without reaching the target such a mapping "
                 "was meant to add");

    /* Records the event itself got wrong fail once, whatever the targets. */
    for (size_t i = 0; i < ev.count; i++)
        if (ev.records[i].error) {
            run.raw_failed[i] = 1;
            LOG_ERROR("event", "%s", ev.records[i].error);
        }

    for (size_t gi = 0; gi < ev.group_count; gi++) {
        const struct fanout_source_group *g = &ev.groups[gi];
        struct fanout_mapping *const *maps;
        size_t nmaps, nbad;
        const size_t *bad;
        const struct fanout_mapping_set *bad_set;
        char why[1024], qsrc[FANOUT_QUOTE_SIZE];
        if (!*g->source_arn)
            continue; /* records without a source: failed above */
        int found = fanout_store_lookup_checked(e->store, g->source_arn, &maps, &nmaps,
                                                &bad, &nbad, &bad_set, why, sizeof why);
        char stream[2048];
        if (found == 0 && !nmaps && !nbad &&
            s_consumer_stream(g->source_arn, stream, sizeof stream)) {
            /* an enhanced fan-out consumer with no targets of its own: its
             * records are the stream's */
            char qs[FANOUT_QUOTE_SIZE];
            LOG_INFO("mappings",
                     "the records of the stream consumer %s go to the targets of its "
                     "stream %s",
                     fanout_quote(qsrc, g->source_arn), fanout_quote(qs, stream));
            found = fanout_store_lookup_checked(e->store, stream, &maps, &nmaps, &bad,
                                                &nbad, &bad_set, why, sizeof why);
        }
        if (found != 0) {
            LOG_ERROR("mappings",
                      "cannot look up the targets of %s: %s; its %zu records "
                      "are not delivered",
                      fanout_quote(qsrc, g->source_arn), why, g->count);
            for (size_t i = 0; i < g->count; i++)
                s_mark_failed(&run, g->records[i]);
            continue;
        }
        /* Invalid mappings that are (or may be) targets of this source. */
        for (size_t k = 0; k < nbad; k++) {
            const struct fanout_mapping_problem *d = &bad_set->details[bad[k]];
            const char *msg = bad_set->problems[bad[k]];
            char full[1024];
            snprintf(full, sizeof full, "%s%s", msg,
                     d->source_arn ? ""
                                   : " (its sourceArn cannot be read, so it may be a "
                                     "target of any source)");
            if (s_invalid_mapping(&run, &target_cap, g, d->id, "(invalid)", "(none)",
                                  full) != 0) {
                snprintf(err, err_len, "out of memory");
                goto out;
            }
        }
        if (!nmaps) {
            if (!nbad)
                LOG_INFO("mappings", "no active target for %s: %zu records not forwarded",
                         fanout_quote(qsrc, g->source_arn), g->count);
            continue;
        }
        struct fanout_decoded variants[32];
        int have[32] = {0};
        struct fanout_plan_share shares[32] = {0}; /* a variant's messages, collapse none */
        ddb_seen |= g->count && g->records[0]->kind == FANOUT_SRC_DYNAMODB;
        for (size_t mi = 0; mi < nmaps; mi++) {
            const struct fanout_mapping *m = maps[mi];
            image_converts |= m->convert_ddb && !m->whole_record;
            int invalid;
            struct s_instance *inst = s_instance_get(e, m, &invalid, why, sizeof why);
            if (!inst && invalid) {
                if (s_invalid_mapping(&run, &target_cap, g, m->id, m->type, m->destination,
                                      why) != 0) {
                    snprintf(err, err_len, "out of memory");
                    goto out;
                }
                continue;
            }
            struct s_target_run *t = s_target_add(&run, &target_cap, g, m->source_arn,
                                                  m->id, m->type, m->destination);
            if (!t) {
                snprintf(err, err_len, "out of memory");
                goto out;
            }
            t->inst = inst;
            if (m->on_failure) {
                if (!(t->of = fanout_onfailure_new(m->on_failure->json))) {
                    snprintf(err, err_len, "out of memory");
                    goto out;
                }
                t->of_next = run.of_list;
                run.of_list = t;
            }
            if (!t->inst && !t->of) {
                s_fail_target(t, g, why);
                continue;
            }
            if (!t->inst) { /* its records go to the on-failure destination */
                LOG_ERROR(t->scope, "target failed: %s", why);
                s_sum(t)->error = strdup(why);
            }
            t->collapse = t->inst ? t->inst->target.collapse : FANOUT_COLLAPSE_NONE;
            int want_json =
                t->inst && (t->inst->plugin->desc.flags & FANOUT_PLUGIN_SOURCE_JSON) != 0;
            int vi = (m->deaggregate ? 1 : 0) | (m->convert_ddb ? 2 : 0) |
                     (want_json ? 4 : 0) | (m->append_newlines ? 8 : 0) |
                     (m->whole_record ? 16 : 0);
            if (!have[vi]) {
                struct fanout_decode_opts o = {m->deaggregate, m->convert_ddb, want_json,
                                               m->append_newlines, m->whole_record};
                if (fanout_decode_group(g, o, &e->arena, &variants[vi]) != 0) {
                    snprintf(err, err_len, "out of memory");
                    goto out;
                }
                have[vi] = 1;
            }
            const struct fanout_decoded *d = &variants[vi];
            s_sum(t)->records = d->count + d->failed_count;
            for (size_t i = 0; i < d->failed_count; i++) {
                if (d->failures[i].raw->error) { /* logged once, above */
                    s_sum(t)->failed++;
                    continue;
                }
                s_refused(t, NULL, d->failures[i].raw, d->failures[i].reason, 0);
            }
            struct fanout_rec **recs = d->records;
            size_t nrecs = d->count;
            if (m->filter && s_filter_records(&run, m->filter, d, &recs, &nrecs) != 0) {
                snprintf(err, err_len, "out of memory");
                goto out;
            }
            s_sum(t)->filtered = d->count - nrecs;
            if (!t->inst) {
                for (size_t i = 0; i < nrecs; i++)
                    s_refused(t, &recs[i]->pub, recs[i]->raw, why, 0);
                continue;
            }
            if (fanout_plan_build_shared(recs, nrecs, t->collapse, &t->inst->limits,
                                         &e->arena, m->filter ? NULL : &shares[vi],
                                         &t->plan) != 0) {
                snprintf(err, err_len, "out of memory");
                goto out;
            }
            s_sum(t)->messages = t->plan.message_count;
            for (size_t i = 0; i < t->plan.rejected_count; i++)
                s_refused(t, &t->plan.rejected[i].rec->pub, t->plan.rejected[i].rec->raw,
                          t->plan.rejected[i].reason, 0);
            if (s_sched_add(&run, t, !m->parallel) != 0) {
                snprintf(err, err_len, "out of memory");
                goto out;
            }
        }
    }

    if (ddb_seen)
        e->no_image_converts = !image_converts;
    fanout_arena_trim(&e->arena); /* nothing more of it before the sends end */
    s_dispatch(&run);
    if (run.of_list && s_on_failure_round(&run) != 0) {
        snprintf(err, err_len, "out of memory");
        goto out;
    }

    size_t failed = 0;
    for (size_t i = 0; i < ev.count; i++)
        failed += run.raw_failed[i];
    res->failed_seqs = malloc((failed ? failed : 1) * sizeof *res->failed_seqs);
    if (!res->failed_seqs) {
        snprintf(err, err_len, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ev.count; i++) {
        if (!run.raw_failed[i])
            continue;
        res->failed_records++;
        /* One entry per source record; a record without a sequence number
         * gets an empty identifier, which Lambda reads as "retry the whole
         * batch": the safe answer when we cannot name it. */
        const char *seq =
            ev.records[i].sequence_number ? ev.records[i].sequence_number : "";
        res->failed_seqs[res->failed_seq_count++] = strdup(seq);
    }
    for (size_t i = 0; i < res->target_count; i++) {
        const struct fanout_target_summary *s = &res->targets[i];
        char qdest[FANOUT_QUOTE_SIZE];
        LOG_INFO(s->id,
                 "%s %s: %zu records, %zu messages, %zu calls, %zu delivered, %zu "
                 "failed, %zu on failure, %zu filtered",
                 s->type, fanout_quote(qdest, s->destination), s->records, s->messages,
                 s->calls, s->delivered, s->failed, s->on_failure, s->filtered);
    }
    rc = res->failed_records ? 1 : 0;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    res->duration_ms =
        (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    s_instances_evict(e, e->host->now_ms());
out:
    for (struct s_target_run *t = run.of_list; t; t = t->of_next)
        fanout_onfailure_free(t->of);
    free(run.raw_failed);
    free(run.sched);
    fanout_filter_views_free(run.views);
    fanout_event_clean_up(&ev);
    if (rc < 0)
        fanout_result_clean_up(res); /* the caller only cleans up a result */
    return rc;
}

void fanout_result_clean_up(struct fanout_result *res)
{
    for (size_t i = 0; i < res->target_count; i++) {
        struct fanout_target_summary *s = &res->targets[i];
        free(s->source_arn);
        free(s->id);
        free(s->type);
        free(s->destination);
        free(s->error);
    }
    free(res->targets);
    for (size_t i = 0; i < res->failed_seq_count; i++)
        free(res->failed_seqs[i]);
    free(res->failed_seqs);
    memset(res, 0, sizeof *res);
}

int fanout_result_response(const struct fanout_result *res, struct fanout_sbuf *out)
{
    int rc = fanout_sbuf_puts(out, "{\"batchItemFailures\":[");
    for (size_t i = 0; rc == 0 && i < res->failed_seq_count; i++) {
        rc |= fanout_sbuf_puts(out, i ? ",{\"itemIdentifier\":" : "{\"itemIdentifier\":");
        rc |= fanout_sbuf_json_str(out, (const uint8_t *)res->failed_seqs[i],
                                   strlen(res->failed_seqs[i]));
        rc |= fanout_sbuf_putc(out, '}');
    }
    rc |= fanout_sbuf_puts(out, "]}");
    return rc ? -1 : 0;
}
