/* fanout_batch_send: the send loop of the AWS batch plugins (fanout/batch.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fanout/batch.h"

/* Everything one call allocates, freed in one place. */
struct s_call {
    unsigned char *entries; /* n * entry_size */
    void **ready;           /* the prepared entries, in message order */
    size_t *indexes;        /* ready[k] is message indexes[k] */
    uint64_t *sizes;        /* ready[k]'s size */
    size_t nready;
    struct fanout_batch_request *reqs; /* nalloc of them, zeroed */
    size_t nalloc;
    size_t nreq;
    const struct fanout_aws_request **rq;
    struct fanout_aws_response **rs;
};

static void s_mark(const struct fanout_batch_request *reqs, size_t from, size_t to,
                   struct fanout_outcome *out, int status, const char *code,
                   const char *msg)
{
    for (size_t k = from; k < to; k++)
        for (size_t j = 0; j < reqs[k].count; j++)
            fanout_outcome_set(&out[reqs[k].indexes[j]], status, code, "%s", msg);
}

static void s_log_request(const struct fanout_batch_target *t,
                          const struct fanout_batch_request *r, unsigned attempt)
{
    if (!t->host->log_enabled(FANOUT_LOG_DEBUG))
        return;
    t->host->log(FANOUT_LOG_DEBUG, t->target_id,
                 "%s to %s: %zu message%s, %llu bytes (attempt %u)", r->operation,
                 t->destination, r->count, r->count == 1 ? "" : "s",
                 (unsigned long long)r->bytes, attempt);
}

/* Entries that did not go, at debug level: the engine logs only the final
 * outcome, and a retried entry's first reason helps. */
static void s_log_failures(const struct fanout_batch_target *t,
                           const struct fanout_batch_request *r,
                           const struct fanout_outcome *out, unsigned attempt)
{
    if (!t->host->log_enabled(FANOUT_LOG_DEBUG))
        return;
    static const char *const names[] = {"ok", "retry", "throttled", "fatal"};
    for (size_t j = 0; j < r->count; j++) {
        const struct fanout_outcome *o = &out[r->indexes[j]];
        if (o->status == FANOUT_OK)
            continue;
        t->host->log(FANOUT_LOG_DEBUG, t->target_id,
                     "message %zu (attempt %u): %s: %.64s: %.256s", r->indexes[j], attempt,
                     o->status >= 0 && o->status <= 3 ? names[o->status] : "?", o->code,
                     o->message);
    }
}

/* The answer to one request: the plugin reads a successful one; a request
 * the AWS layer gave up on is every entry's outcome. Returns non-zero when
 * the request failed as a whole or in part. */
static int s_answer(const struct fanout_batch_api *api, const struct fanout_batch_target *t,
                    void *ctx, struct fanout_batch_request *r, struct fanout_outcome *out,
                    unsigned attempt)
{
    const struct fanout_aws_response *resp = &r->resp;
    if (resp->result == FANOUT_AWS_OK) {
        api->read(ctx, r, out);
    } else {
        struct fanout_outcome o = {0};
        int st = fanout_aws_outcome(resp, &o);
        if (api->failed_status)
            st = api->failed_status(ctx, resp, st);
        for (size_t j = 0; j < r->count; j++)
            fanout_outcome_set(&out[r->indexes[j]], st, o.code, "%s: %s", r->operation,
                               resp->error_message[0] ? resp->error_message
                                                      : "no reason given");
    }
    s_log_failures(t, r, out, attempt);
    int failed = 0;
    for (size_t j = 0; j < r->count; j++)
        failed |= out[r->indexes[j]].status != FANOUT_OK;
    return failed;
}

/* Requests in message order, each up to max_entries entries and
 * max_request_bytes bytes (an entry larger than that alone). With c->reqs
 * NULL only counts them. Returns the number of requests. */
static size_t s_split(const struct fanout_batch_api *api, struct s_call *c)
{
    size_t nreq = 0;
    for (size_t i = 0; i < c->nready; nreq++) {
        size_t from = i, count = 0;
        uint64_t bytes = 0;
        while (i < c->nready && (api->max_entries == 0 || count < api->max_entries) &&
               (count == 0 || api->max_request_bytes == 0 ||
                bytes + c->sizes[i] <= api->max_request_bytes)) {
            bytes += c->sizes[i];
            count++;
            i++;
        }
        if (c->reqs) {
            struct fanout_batch_request *r = &c->reqs[nreq];
            r->entries = &c->ready[from];
            r->indexes = &c->indexes[from];
            r->count = count;
            r->bytes = bytes;
        }
    }
    return nreq;
}

int fanout_batch_spares_init(struct fanout_batch_spares *s)
{
    memset(s, 0, sizeof *s);
    return pthread_mutex_init(&s->lock, NULL) == 0 ? 0 : -1;
}

void fanout_batch_spares_free(struct fanout_batch_spares *s)
{
    for (size_t k = 0; k < s->count; k++)
        fanout_sbuf_free(&s->bufs[k]);
    s->count = 0;
    pthread_mutex_destroy(&s->lock);
}

/* A kept body for `b` (empty), if any. */
static void s_spare_take(struct fanout_batch_spares *s, struct fanout_sbuf *b)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    if (s->count > 0)
        *b = s->bufs[--s->count];
    pthread_mutex_unlock(&s->lock);
    fanout_sbuf_reset(b);
}

/* Keep `b` for a later call when there is room and it is not too large,
 * else free it. */
static void s_spare_give(struct fanout_batch_spares *s, struct fanout_sbuf *b)
{
    if (s && b->bytes && b->cap <= FANOUT_BATCH_SPARE_MAX) {
        pthread_mutex_lock(&s->lock);
        int kept = s->count < FANOUT_BATCH_SPARES;
        if (kept)
            s->bufs[s->count++] = *b;
        pthread_mutex_unlock(&s->lock);
        if (kept) {
            *b = (struct fanout_sbuf){0};
            return;
        }
    }
    fanout_sbuf_free(b);
}

static void s_free(const struct fanout_batch_api *api, struct fanout_batch_spares *spares,
                   void *ctx, struct s_call *c, size_t n)
{
    /* every request's body, built or half-built (reqs is zeroed); each
     * answer was cleaned up right after it was read */
    for (size_t k = 0; c->reqs && k < c->nalloc; k++)
        s_spare_give(spares, &c->reqs[k].body);
    if (api->release && c->entries)
        for (size_t i = 0; i < n; i++)
            api->release(ctx, c->entries + i * api->entry_size);
    free(c->entries);
    free(c->ready);
    free(c->indexes);
    free(c->sizes);
    free(c->reqs);
    free(c->rq);
    free(c->rs);
}

int fanout_batch_send(const struct fanout_batch_api *api,
                      const struct fanout_batch_target *t, void *ctx,
                      const struct fanout_batch *batch, struct fanout_outcome *outcomes)
{
    return fanout_batch_send_kept(api, t, NULL, ctx, batch, outcomes);
}

int fanout_batch_send_kept(const struct fanout_batch_api *api,
                           const struct fanout_batch_target *t,
                           struct fanout_batch_spares *spares, void *ctx,
                           const struct fanout_batch *batch,
                           struct fanout_outcome *outcomes)
{
    size_t n = batch->count, alloc = n ? n : 1;
    /* the requests are allocated once their number is known: a request is
     * large (its answer's error text), one per message would be megabytes */
    struct s_call c = {
        .entries = calloc(alloc, api->entry_size ? api->entry_size : 1),
        .ready = calloc(alloc, sizeof(void *)),
        .indexes = calloc(alloc, sizeof(size_t)),
        .sizes = calloc(alloc, sizeof(uint64_t)),
    };
    int rc = 0;
    if (!c.entries || !c.ready || !c.indexes || !c.sizes) {
        for (size_t i = 0; i < n; i++)
            fanout_outcome_set(&outcomes[i], FANOUT_RETRY, "OutOfMemory", "out of memory");
        s_free(api, spares, ctx, &c, 0);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        void *e = c.entries + i * api->entry_size;
        uint64_t size = 0;
        if (api->prepare(ctx, batch->messages[i], i, e, &size, &outcomes[i]) != 0)
            continue;
        c.ready[c.nready] = e;
        c.indexes[c.nready] = i;
        c.sizes[c.nready++] = size;
    }
    size_t nreq = s_split(api, &c), ralloc = nreq ? nreq : 1;
    c.reqs = calloc(ralloc, sizeof(struct fanout_batch_request));
    c.rq = calloc(ralloc, sizeof(struct fanout_aws_request *));
    c.rs = calloc(ralloc, sizeof(struct fanout_aws_response *));
    if (!c.reqs || !c.rq || !c.rs) {
        for (size_t k = 0; k < c.nready; k++)
            fanout_outcome_set(&outcomes[c.indexes[k]], FANOUT_RETRY, "OutOfMemory",
                               "out of memory");
        s_free(api, spares, ctx, &c, n);
        return -1;
    }
    c.nalloc = ralloc;
    c.nreq = s_split(api, &c);
    for (size_t k = 0; k < c.nreq; k++) {
        struct fanout_batch_request *r = &c.reqs[k];
        r->req.struct_size = sizeof r->req;
        r->resp.struct_size = sizeof r->resp;
        r->operation = "request";
        s_spare_take(spares, &r->body);
        if (api->build(ctx, r) != 0) {
            s_mark(c.reqs, k, c.nreq, outcomes, FANOUT_RETRY, "OutOfMemory",
                   "out of memory building the request");
            c.nreq = k;
            rc = -1;
            break;
        }
    }
    /* Unordered: every request in one aws_call (the host sends them
     * together). Ordered: one at a time; after one that failed, the later
     * ones wait for the retry. */
    size_t step = t->ordered ? 1 : c.nreq;
    for (size_t k = 0; k < c.nreq; k += step) {
        size_t m = k + step <= c.nreq ? step : c.nreq - k;
        for (size_t j = 0; j < m; j++) {
            c.rq[j] = &c.reqs[k + j].req;
            c.rs[j] = &c.reqs[k + j].resp;
            s_log_request(t, &c.reqs[k + j], batch->attempt);
        }
        t->host->aws_call(c.rq, c.rs, m);
        int failed = 0;
        for (size_t j = 0; j < m; j++) {
            struct fanout_batch_request *r = &c.reqs[k + j];
            failed |= s_answer(api, t, ctx, r, outcomes, batch->attempt);
            t->host->aws_response_clean_up(&r->resp);
        }
        if (t->ordered && failed && k + m < c.nreq) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "not sent yet: an earlier request to this %s failed, and order "
                     "comes first",
                     t->order_scope ? t->order_scope : "destination");
            s_mark(c.reqs, k + m, c.nreq, outcomes, FANOUT_RETRY, "NotSent", msg);
            break;
        }
    }
    s_free(api, spares, ctx, &c, n);
    return rc;
}
