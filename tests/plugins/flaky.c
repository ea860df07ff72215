/*
 * A test destination that fails on demand, to exercise the engine's
 * retries, partial failures, ordering and concurrency.
 *
 * Destination: a log file. Per message, by the body's prefix:
 *   "fatal:"        permanent failure
 *   "retry:N:"      retryable failure for the first N attempts, then delivered
 *   "throttle:N:"   throttled for the first N attempts, then delivered
 *   "sleep:MS:"     delivered after sleeping MS ms (to observe concurrency)
 *   "queue:MS:"     delivered after MS ms of a server that serves one message
 *                   at a time: the others wait (answers slow down as calls
 *                   are added)
 *   anything else   delivered
 * Every message of every call is logged as one JSON line:
 *   {"attempt":A,"seq":"...","records":N,"status":S,"inflight":K,"body":"..."}
 * where inflight is the number of send calls in progress at that moment,
 * and "src" the first record's source JSON (FANOUT_PLUGIN_SOURCE_JSON).
 * Option "maxBytes" changes the per-message limit (target_limits).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <stddef.h>

#include <fanout/plugin.h>

struct flaky_options {
    int64_t max_bytes;
};

struct flaky {
    FILE *log;
    pthread_mutex_t lock;
};

static int s_inflight;
static pthread_mutex_t s_server = PTHREAD_MUTEX_INITIALIZER; /* "queue:" */

static int s_validate(const struct fanout_target *t, char *err, size_t n)
{
    if (!t->destination || t->destination[0] != '/') {
        snprintf(err, n, "expected an absolute path for the call log");
        return -1;
    }
    return 0;
}

static int s_open(void *state, const struct fanout_target *t, void **out,
                  struct fanout_error *err)
{
    (void)state;
    struct flaky *f = calloc(1, sizeof *f);
    if (!f || !(f->log = fopen(t->destination, "a"))) {
        snprintf(err->message, sizeof err->message, "cannot open %s", t->destination);
        free(f);
        return -1;
    }
    pthread_mutex_init(&f->lock, NULL);
    *out = f;
    return 0;
}

static unsigned s_num_after(const char *body, size_t len, size_t prefix)
{
    unsigned n = 0;
    for (size_t i = prefix; i < len && body[i] >= '0' && body[i] <= '9'; i++)
        n = n * 10 + (unsigned)(body[i] - '0');
    return n;
}

static int s_send(void *instance, const struct fanout_batch *b, struct fanout_outcome *out)
{
    struct flaky *f = instance;
    int inflight = __atomic_add_fetch(&s_inflight, 1, __ATOMIC_SEQ_CST);
    for (size_t i = 0; i < b->count; i++) {
        const struct fanout_message *m = b->messages[i];
        const char *body = (const char *)m->body;
        size_t len = m->body_len;
        int st = FANOUT_OK;
        if (len >= 6 && !memcmp(body, "fatal:", 6)) {
            fanout_outcome_set(&out[i], FANOUT_FATAL, "ValidationError", "refused: %.*s",
                               (int)(len < 40 ? len : 40), body);
        } else if (len >= 6 && !memcmp(body, "retry:", 6)) {
            if (b->attempt <= s_num_after(body, len, 6))
                fanout_outcome_set(&out[i], FANOUT_RETRY, "InternalFailure", "try again");
        } else if (len >= 9 && !memcmp(body, "throttle:", 9)) {
            if (b->attempt <= s_num_after(body, len, 9))
                fanout_outcome_set(&out[i], FANOUT_THROTTLED,
                                   "ProvisionedThroughputExceededException", "slow down");
        } else if (len >= 6 && (!memcmp(body, "sleep:", 6) || !memcmp(body, "queue:", 6))) {
            int queue = body[0] == 'q';
            unsigned ms = s_num_after(body, len, 6);
            struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
            if (queue)
                pthread_mutex_lock(&s_server);
            nanosleep(&ts, NULL);
            if (queue)
                pthread_mutex_unlock(&s_server);
        }
        st = out[i].status;
        pthread_mutex_lock(&f->lock);
        fprintf(f->log,
                "{\"attempt\":%u,\"seq\":\"%s\",\"records\":%zu,\"status\":%d,"
                "\"inflight\":%d,\"src\":",
                b->attempt, m->records[0]->sequence_number, m->record_count, st, inflight);
        /* the source JSON as received may span lines: keep one line */
        const struct fanout_record *r0 = m->records[0];
        if (!r0->source_json)
            fputs("null", f->log);
        for (size_t k = 0; r0->source_json && k < r0->source_json_len; k++)
            fputc(r0->source_json[k] == '\n' || r0->source_json[k] == '\r'
                      ? ' '
                      : r0->source_json[k],
                  f->log);
        fputs(",\"body\":\"", f->log);
        for (size_t k = 0; k < len; k++) {
            unsigned char c = (unsigned char)body[k];
            if (c == '"' || c == '\\')
                fprintf(f->log, "\\%c", c);
            else if (c < 0x20 || c >= 0x7f)
                fprintf(f->log, "\\u%04x", c);
            else
                fputc(c, f->log);
        }
        fputs("\"}\n", f->log);
        fflush(f->log);
        pthread_mutex_unlock(&f->lock);
    }
    __atomic_sub_fetch(&s_inflight, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void s_close(void *instance)
{
    struct flaky *f = instance;
    fclose(f->log);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static int s_limits(void *state, const struct fanout_target *t, struct fanout_limits *lim,
                    char *err, size_t n)
{
    (void)state;
    const struct flaky_options *o = t->options;
    if (o->max_bytes < 0) {
        snprintf(err, n, "maxBytes must not be negative");
        return -1;
    }
    if (o->max_bytes)
        lim->max_message_bytes = (uint64_t)o->max_bytes;
    return 0;
}

static const struct fanout_option s_options[] = {
    {.name = "maxBytes",
     .type = FANOUT_OPT_INT,
     .offset = offsetof(struct flaky_options, max_bytes),
     .min = -1,
     .max = 1 << 20,
     .description = "per-message limit instead of 64"},
    {.name = NULL},
};

FANOUT_PLUGIN_DEFINE(.name = "flaky", .version = "0.0.1",
                     .description = "test destination that fails on demand",
                     .destination_example = "/tmp/flaky.log",
                     .limits = {.max_messages_per_call = 2, .max_message_bytes = 64},
                     .collapse_modes = FANOUT_COLLAPSE_ALL,
                     .default_collapse = FANOUT_COLLAPSE_NONE, .validate = s_validate,
                     .open = s_open, .send = s_send, .close = s_close,
                     .flags = FANOUT_PLUGIN_SOURCE_JSON, .options = s_options,
                     .options_size = sizeof(struct flaky_options),
                     .target_limits = s_limits);
