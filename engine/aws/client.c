/* One AWS call: endpoint, region, credentials, SigV4, HTTP and error
 * parsing. Requests of one call go out together (one multi transfer per
 * round).
 *
 * Who retries (see client.h): fanout_aws_call, for the engine's own calls
 * (mapping store, management commands), sends again the requests that fail
 * retryably, in the next round after a full-jitter backoff, inside the
 * invocation's deadline. fanout_aws_call_once, the host table's aws_call
 * that plugins send records with, makes one attempt and returns the
 * throttled or retryable outcome: the engine owns the retries of record
 * sends, so a throttled send goes out FANOUT_RETRY_ATTEMPTS times, not
 * that many times FANOUT_AWS_MAX_ATTEMPTS. */
#include "aws/client.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aws/credentials.h"
#include "aws/endpoint.h"
#include "aws/http.h"
#include "common/log.h"
#include "aws/retry.h"
#include "aws/sigv4.h"

static int64_t s_forever(void)
{
    return INT64_MAX;
}

static int64_t (*s_remaining_ms)(void) = s_forever;
static struct fanout_retry_policy s_policy = {5, 50, 5000, 10000};
static int64_t s_margin_ms = 500;
/* A retry is not started with less time than this left for it after its
 * backoff: an attempt squeezed to a few ms only times out, and its
 * "timed out" would hide the service's own last answer (Throttling...). */
#define S_MIN_ATTEMPT_MS 100
static int s_tls_no_verify;

void fanout_aws_set_tls_no_verify(int on)
{
    s_tls_no_verify = on != 0;
}

int fanout_aws_init(int64_t (*remaining_ms)(void), char *err, size_t err_len)
{
    s_remaining_ms = remaining_ms ? remaining_ms : s_forever;
    fanout_credentials_set_deadline(remaining_ms);
    return fanout_retry_policy_from_env(&s_policy, err, err_len);
}

const struct fanout_retry_policy *fanout_aws_policy(void)
{
    return &s_policy;
}

static const struct fanout_aws_call_opts s_no_opts;

/* Endpoints resolved in this invocation (fanout_aws_begin_invocation): the
 * config file is read once per service, region and plugin endpoint, not
 * by every request. s_epoch 0: no invocation started, no reuse. */
#define S_ENDPOINTS 16
struct s_endpoint {
    unsigned epoch;
    char service[32];
    char want_region[64]; /* the request's region, "" for none */
    char user[512];       /* the request's endpoint, "" for none */
    char region[64];
    char base[512];
    char host[300];
    char base_path[256];
};
static pthread_mutex_t s_ep_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned s_epoch;
static struct s_endpoint s_endpoints[S_ENDPOINTS];
static size_t s_endpoint_next;

void fanout_aws_begin_invocation(void)
{
    pthread_mutex_lock(&s_ep_lock);
    if (++s_epoch == 0)
        s_epoch = 1;
    pthread_mutex_unlock(&s_ep_lock);
}

/* Per-request state across rounds. */
struct s_call {
    const struct fanout_aws_request *req;
    struct fanout_aws_response *resp;
    const struct fanout_aws_call_opts *opts;
    const struct fanout_retry_policy *policy; /* opts' or s_policy */
    int64_t (*remaining_ms)(void);            /* opts' or the fanout_aws_init hook */
    const struct fanout_aws_service *svc;
    char region[64];
    char base[512];      /* scheme://host[:port] + base path */
    char host[300];      /* host[:port] for the Host header */
    char base_path[256]; /* a path prefix of the endpoint URL, or "" */
    const char *signing_name;
    int done;
    unsigned max_attempts; /* 1 for record sends: the engine retries them */
    int refreshed;         /* credentials refreshed after an expired-token error */
    unsigned delay_ms;
    int64_t started_ms;
    /* this round */
    struct fanout_http_request http;
    struct fanout_http_response hresp;
    struct fanout_http_header *headers;
    size_t header_count;
    struct fanout_sbuf htext; /* the values the signer adds, one block */
    struct fanout_sbuf urlbuf;
    const char *url;
};

static int s_endpoint_key(const struct fanout_aws_request *r, struct s_endpoint *k)
{
    const char *reg = r->region ? r->region : "";
    const char *user = r->endpoint ? r->endpoint : "";
    if (strlen(r->service) >= sizeof k->service || strlen(reg) >= sizeof k->want_region ||
        strlen(user) >= sizeof k->user)
        return -1;
    strcpy(k->service, r->service);
    strcpy(k->want_region, reg);
    strcpy(k->user, user);
    return 0;
}

static int s_endpoint_same(const struct s_endpoint *a, const struct s_endpoint *b)
{
    return strcmp(a->service, b->service) == 0 &&
           strcmp(a->want_region, b->want_region) == 0 && strcmp(a->user, b->user) == 0;
}

/* 1 when this invocation resolved the request's endpoint already (copied
 * into c), else 0 with *key ready for s_endpoint_keep. */
static int s_endpoint_find(struct s_call *c, struct s_endpoint *key)
{
    int found = 0;
    pthread_mutex_lock(&s_ep_lock);
    key->epoch = s_epoch;
    if (key->epoch && s_endpoint_key(c->req, key) == 0) {
        for (size_t i = 0; i < S_ENDPOINTS && !found; i++) {
            const struct s_endpoint *e = &s_endpoints[i];
            if (e->epoch == key->epoch && s_endpoint_same(e, key)) {
                memcpy(c->region, e->region, sizeof c->region);
                memcpy(c->base, e->base, sizeof c->base);
                memcpy(c->host, e->host, sizeof c->host);
                memcpy(c->base_path, e->base_path, sizeof c->base_path);
                found = 1;
            }
        }
    } else {
        key->epoch = 0;
    }
    pthread_mutex_unlock(&s_ep_lock);
    return found;
}

static void s_endpoint_keep(const struct s_call *c, struct s_endpoint *key)
{
    if (!key->epoch)
        return;
    memcpy(key->region, c->region, sizeof key->region);
    memcpy(key->base, c->base, sizeof key->base);
    memcpy(key->host, c->host, sizeof key->host);
    memcpy(key->base_path, c->base_path, sizeof key->base_path);
    pthread_mutex_lock(&s_ep_lock);
    /* resolved under an invocation that is over: not kept */
    if (key->epoch == s_epoch) {
        s_endpoints[s_endpoint_next] = *key;
        s_endpoint_next = (s_endpoint_next + 1) % S_ENDPOINTS;
    }
    pthread_mutex_unlock(&s_ep_lock);
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_finish(struct s_call *c, enum fanout_aws_result result, const char *code,
                     const char *fmt, ...) FANOUT_FMT(4, 5);
static void s_finish(struct s_call *c, enum fanout_aws_result result, const char *code,
                     const char *fmt, ...)
{
    c->done = 1;
    c->resp->result = result;
    fanout_strlcpy(c->resp->error_code, code ? code : "", sizeof c->resp->error_code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->resp->error_message, sizeof c->resp->error_message, fmt, ap);
    va_end(ap);
}

static void s_free_round(struct s_call *c)
{
    free(c->headers); /* the names and values point into the request and htext */
    c->headers = NULL;
    c->header_count = 0;
    if (c->htext.p) /* X-Amz-Security-Token and Authorization */
        explicit_bzero(c->htext.p, c->htext.cap);
    fanout_sbuf_free(&c->htext);
    fanout_sbuf_free(&c->urlbuf);
    c->url = NULL;
}

/* Resolve what does not change between attempts. */
static int s_prepare(struct s_call *c)
{
    const struct fanout_aws_request *r = c->req;
    char err[512];
    if (!r ||
        r->struct_size < offsetof(struct fanout_aws_request, protocol) + sizeof(int)) {
        s_finish(c, FANOUT_AWS_FAILED, "InvalidRequest",
                 "request struct_size %u is smaller than the 1.1 request",
                 r ? r->struct_size : 0);
        return -1;
    }
    if (!r->service || !r->method || !r->path || r->path[0] != '/') {
        s_finish(c, FANOUT_AWS_FAILED, "InvalidRequest",
                 "a request needs service, method and a path starting with '/'");
        return -1;
    }
    c->svc = fanout_aws_service_find(r->service);
    if (!c->svc) {
        s_finish(c, FANOUT_AWS_FAILED, "InvalidRequest", "unknown AWS service \"%s\"",
                 r->service);
        return -1;
    }
    c->signing_name = r->signing_name ? r->signing_name : c->svc->signing_name;
    c->started_ms = s_now_ms();
    struct s_endpoint key;
    if (s_endpoint_find(c, &key))
        return 0;
    if (fanout_aws_region(r->region, c->region, sizeof c->region, err, sizeof err) != 0) {
        s_finish(c, FANOUT_AWS_FAILED, "NoRegion", "%s", err);
        return -1;
    }
    if (fanout_aws_endpoint_url(r->service, c->region, r->endpoint, c->base, sizeof c->base,
                                err, sizeof err) != 0) {
        s_finish(c, FANOUT_AWS_FAILED, "InvalidEndpoint", "%s", err);
        return -1;
    }
    char scheme[16];
    if (fanout_url_split(c->base, scheme, sizeof scheme, c->host, sizeof c->host,
                         c->base_path, sizeof c->base_path) != 0) {
        s_finish(c, FANOUT_AWS_FAILED, "InvalidEndpoint",
                 "endpoint \"%s\" is not http(s)://host[:port][/path]", c->base);
        return -1;
    }
    /* the base path is sent (and signed) in front of the request's path */
    size_t bl = strlen(c->base_path);
    while (bl && c->base_path[bl - 1] == '/')
        c->base_path[--bl] = 0;
    s_endpoint_keep(c, &key);
    return 0;
}

/* Build and sign this attempt. -1 when the request is finished (failed). */
static int s_build(struct s_call *c, int force_refresh)
{
    const struct fanout_aws_request *r = c->req;
    char err[512];
    struct fanout_credentials *cr = malloc(sizeof *cr);
    if (!cr) {
        s_finish(c, FANOUT_AWS_FAILED, "OutOfMemory", "out of memory");
        return -1;
    }
    if (c->opts->creds) {
        *cr = *c->opts->creds;
    } else if (c->opts->unsigned_request) {
        memset(cr, 0, sizeof *cr);
    } else if (fanout_credentials_get(r->role_arn, r->external_id, c->region, force_refresh,
                                      cr, err, sizeof err) != 0) {
        s_finish(c, FANOUT_AWS_FAILED, "CredentialsError", "%s", err);
        free(cr);
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s%s", c->base_path, r->path);
    struct fanout_sbuf *url = &c->urlbuf;
    const char *sep = strstr(c->base, "://");
    size_t scheme_len = sep ? (size_t)(sep - c->base) + 3 : 0;
    int rc = fanout_sbuf_reserve(url, scheme_len + strlen(c->host) + strlen(path) + 1 +
                                          (r->query ? strlen(r->query) : 0));
    rc |= fanout_sbuf_put(url, c->base, scheme_len);
    rc |= fanout_sbuf_puts(url, c->host);
    rc |= fanout_sbuf_puts(url, path);
    if (r->query && *r->query) {
        rc |= fanout_sbuf_putc(url, '?');
        rc |= fanout_sbuf_puts(url, r->query);
    }
    c->url = url->p;

    /* headers to sign: Host + the plugin's */
    size_t nh = r->header_count + 1;
    struct fanout_sigv4_header few[8];
    struct fanout_sigv4_header *sh = nh <= 8 ? few : calloc(nh, sizeof *sh);
    /* the plugin's headers as they are (they outlive the call), then
     * X-Amz-Date, X-Amz-Security-Token and Authorization */
    c->headers = calloc(nh + 2, sizeof *c->headers);
    if (rc == 0 && sh && c->headers) {
        sh[0] = (struct fanout_sigv4_header){"Host", c->host};
        for (size_t i = 0; i < r->header_count; i++) {
            sh[i + 1] =
                (struct fanout_sigv4_header){r->headers[i].name, r->headers[i].value};
            c->headers[i] =
                (struct fanout_http_header){r->headers[i].name, r->headers[i].value};
        }
        c->header_count = r->header_count;
        struct fanout_sigv4_request sreq = {r->method, path,    r->query,   sh,
                                            nh,        r->body, r->body_len};
        struct fanout_sigv4_params p = {c->region, c->signing_name, time(NULL), 1, 0};
        struct fanout_sigv4_credentials sc = {cr->access_key_id, cr->secret_access_key,
                                              cr->session_token[0] ? cr->session_token
                                                                   : NULL};
        struct fanout_sigv4_result sig;
        int sign = !c->opts->unsigned_request;
        rc = sign ? fanout_sigv4_sign(&sreq, &p, &sc, &sig) : 0;
        if (rc == 0 && sign) {
            /* the values in one block reserved at once: nothing moves */
            size_t dl = strlen(sig.amz_date), al = strlen(sig.authorization);
            size_t tl = sc.session_token ? strlen(sc.session_token) : 0;
            struct fanout_sbuf *t = &c->htext;
            rc = fanout_sbuf_reserve(t, dl + tl + al + 3);
            rc |= fanout_sbuf_put(t, sig.amz_date, dl + 1);
            rc |= sc.session_token ? fanout_sbuf_put(t, sc.session_token, tl + 1) : 0;
            rc |= fanout_sbuf_put(t, sig.authorization, al + 1);
            if (rc == 0) {
                const char *v = t->p;
                c->headers[c->header_count++] =
                    (struct fanout_http_header){"X-Amz-Date", v};
                v += dl + 1;
                if (sc.session_token) {
                    c->headers[c->header_count++] =
                        (struct fanout_http_header){"X-Amz-Security-Token", v};
                    v += tl + 1;
                }
                c->headers[c->header_count++] =
                    (struct fanout_http_header){"Authorization", v};
            }
        }
        /* libcurl adds Host itself from the URL, the same value */
        memset(&sig, 0, sizeof sig);
    } else {
        rc = -1;
    }
    if (sh != few)
        free(sh);
    memset(cr, 0, sizeof *cr);
    free(cr);
    if (rc != 0) {
        s_finish(c, FANOUT_AWS_FAILED, "SigningFailed", "could not sign the request");
        return -1;
    }
    int64_t left = c->remaining_ms() - s_margin_ms;
    int64_t timeout = c->policy->request_timeout_ms;
    if (r->timeout_ms > 0) {
        int64_t own = r->timeout_ms - (s_now_ms() - c->started_ms);
        if (own < timeout)
            timeout = own;
    }
    if (left < timeout)
        timeout = left;
    if (timeout < 1) {
        s_finish(c, FANOUT_AWS_RETRYABLE, "Timeout",
                 "no time left before the deadline to send the request");
        return -1;
    }
    c->http = (struct fanout_http_request){
        .method = r->method,
        .url = c->url,
        .headers = c->headers,
        .header_count = c->header_count,
        .body = r->body,
        .body_len = r->body_len,
        .timeout_ms = timeout,
        .tls_no_verify = s_tls_no_verify,
    };
    memset(&c->hresp, 0, sizeof c->hresp);
    return 0;
}

static const char *s_transport_code(enum fanout_http_error e)
{
    switch (e) {
    case FANOUT_HTTP_TIMEOUT: return "Timeout";
    case FANOUT_HTTP_CONNECT: return "ConnectionFailed";
    case FANOUT_HTTP_RESET: return "ConnectionReset";
    case FANOUT_HTTP_TLS: return "TLSError";
    default: return "TransportError";
    }
}

/* Look at this attempt's answer: finish, or schedule a retry. */
static void s_judge(struct s_call *c, unsigned *seed)
{
    struct fanout_http_response *h = &c->hresp;
    char code[128] = "", msg[512] = "";
    c->resp->attempts++;
    c->resp->status = h->status;
    if (h->status == 0) {
        fanout_strlcpy(code, s_transport_code(h->error), sizeof code);
        fanout_strlcpy(msg, h->error_text, sizeof msg);
    } else if (h->status >= 300) {
        fanout_aws_parse_error(
            c->req->protocol, fanout_http_response_header(h, "x-amzn-ErrorType"),
            h->body.bytes, h->body.len, code, sizeof code, msg, sizeof msg);
    }
    enum fanout_retry_class k =
        fanout_retry_classify(h->status, code[0] ? code : NULL, (int)h->error);
    if (k == FANOUT_RETRY_NONE) {
        c->done = 1;
        c->resp->result = FANOUT_AWS_OK;
        return;
    }
    /* credentials given by the caller cannot be refreshed here */
    int own_creds = c->opts->creds || c->opts->unsigned_request;
    if (k == FANOUT_RETRY_EXPIRED && !c->refreshed && !own_creds) {
        /* credentials expired under us: refresh and go again, once */
        c->refreshed = 1;
        c->delay_ms = 0;
        LOG_WARN("aws", "%s %s: %s; refreshing credentials and retrying once",
                 c->req->service, c->host, code);
        return;
    }
    if (k == FANOUT_RETRY_FATAL || k == FANOUT_RETRY_EXPIRED) {
        s_finish(c, FANOUT_AWS_FAILED, code[0] ? code : "HttpError", "%s%s(HTTP %ld)", msg,
                 msg[0] ? " " : "", h->status);
        return;
    }
    enum fanout_aws_result res =
        k == FANOUT_RETRY_THROTTLE ? FANOUT_AWS_THROTTLED : FANOUT_AWS_RETRYABLE;
    if (c->max_attempts == 1) {
        /* A record send: the engine retries it and counts the attempts. */
        if (h->status)
            s_finish(c, res, code, "%s%s(HTTP %ld)", msg, msg[0] ? " " : "", h->status);
        else
            s_finish(c, res, code, "no response: %s", msg[0] ? msg : "?");
        return;
    }
    unsigned delay = fanout_retry_delay_ms(c->policy, c->resp->attempts, seed);
    int64_t elapsed = s_now_ms() - c->started_ms;
    int out_of_time = c->remaining_ms() - s_margin_ms < (int64_t)delay + S_MIN_ATTEMPT_MS ||
                      (c->req->timeout_ms > 0 && elapsed + delay >= c->req->timeout_ms);
    if (c->resp->attempts >= c->max_attempts || out_of_time) {
        if (h->status)
            s_finish(c, res, code, "%s%s(HTTP %ld, %u attempt%s)", msg, msg[0] ? " " : "",
                     h->status, c->resp->attempts, c->resp->attempts == 1 ? "" : "s");
        else
            s_finish(c, res, code, "no response after %u attempt%s: %s", c->resp->attempts,
                     c->resp->attempts == 1 ? "" : "s", msg[0] ? msg : "?");
        return;
    }
    c->delay_ms = delay;
    LOG_DEBUG("aws", "%s %s: %s (%s), attempt %u of %u; retrying in %u ms", c->req->service,
              c->host, k == FANOUT_RETRY_THROTTLE ? "throttled" : "transient failure",
              code[0] ? code : "?", c->resp->attempts, c->max_attempts, delay);
}

static void s_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int s_call(const struct fanout_aws_request *const *reqs,
                  struct fanout_aws_response *const *resps, size_t n, unsigned max_attempts,
                  const struct fanout_aws_call_opts *opts)
{
    struct s_call *calls = calloc(n ? n : 1, sizeof *calls);
    const struct fanout_http_request **hr = calloc(n ? n : 1, sizeof *hr);
    struct fanout_http_response **hs = calloc(n ? n : 1, sizeof *hs);
    size_t *idx = calloc(n ? n : 1, sizeof *idx);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct fanout_aws_response *r = resps[i];
        uint32_t size = r->struct_size;
        memset(r, 0, size < sizeof *r ? size : sizeof *r);
        r->struct_size = size;
    }
    if (!calls || !hr || !hs || !idx) {
        for (size_t i = 0; i < n; i++) {
            resps[i]->result = FANOUT_AWS_RETRYABLE;
            fanout_strlcpy(resps[i]->error_code, "OutOfMemory",
                           sizeof resps[i]->error_code);
        }
        free(calls);
        free(hr);
        free(hs);
        free(idx);
        return -1;
    }
    unsigned seed = (unsigned)s_now_ms() ^ (unsigned)(uintptr_t)&seed;
    for (size_t i = 0; i < n; i++) {
        calls[i].req = reqs[i];
        calls[i].resp = resps[i];
        calls[i].max_attempts = max_attempts;
        calls[i].opts = opts;
        calls[i].policy = opts->policy ? opts->policy : &s_policy;
        calls[i].remaining_ms = opts->remaining_ms ? opts->remaining_ms : s_remaining_ms;
        if (s_prepare(&calls[i]) != 0)
            rc = -1;
    }
    for (;;) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            struct s_call *c = &calls[i];
            if (c->done)
                continue;
            /* refreshed == 1: an expired-token answer asked for new
             * credentials; 2: that one refresh is spent */
            if (s_build(c, c->refreshed == 1) != 0) {
                s_free_round(c);
                continue;
            }
            if (c->refreshed == 1)
                c->refreshed = 2;
            hr[m] = &c->http;
            hs[m] = &c->hresp;
            idx[m++] = i;
        }
        if (!m)
            break;
        fanout_http_perform(hr, hs, m);
        unsigned wait = 0;
        for (size_t k = 0; k < m; k++) {
            struct s_call *c = &calls[idx[k]];
            s_judge(c, &seed);
            if (c->done) {
                /* the response keeps the body and the headers */
                struct fanout_http_response *keep = malloc(sizeof *keep);
                if (keep) {
                    *keep = c->hresp;
                    c->resp->body = keep->body.bytes;
                    c->resp->body_len = keep->body.len;
                    keep->body = (struct fanout_sbuf){0};
                    c->resp->internal = keep;
                } else {
                    fanout_http_response_clean_up(&c->hresp);
                }
            } else {
                fanout_http_response_clean_up(&c->hresp);
                if (c->delay_ms > wait)
                    wait = c->delay_ms;
            }
            s_free_round(c);
        }
        if (wait)
            s_sleep_ms(wait);
    }
    free(calls);
    free(hr);
    free(hs);
    free(idx);
    return rc;
}

int fanout_aws_call(const struct fanout_aws_request *const *reqs,
                    struct fanout_aws_response *const *resps, size_t n)
{
    return s_call(reqs, resps, n, s_policy.max_attempts, &s_no_opts);
}

int fanout_aws_call_with(const struct fanout_aws_request *req,
                         struct fanout_aws_response *resp,
                         const struct fanout_aws_call_opts *opts)
{
    if (!opts)
        opts = &s_no_opts;
    const struct fanout_retry_policy *p = opts->policy ? opts->policy : &s_policy;
    return s_call(&req, &resp, 1, p->max_attempts, opts);
}

int fanout_aws_call_once(const struct fanout_aws_request *const *reqs,
                         struct fanout_aws_response *const *resps, size_t n)
{
    return s_call(reqs, resps, n, 1, &s_no_opts);
}

void fanout_aws_response_clean_up(struct fanout_aws_response *r)
{
    if (!r)
        return;
    struct fanout_http_response *h = r->internal;
    if (h) {
        fanout_http_response_clean_up(h);
        free(h);
    }
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    r->internal = NULL;
}

const char *fanout_aws_response_transport_error(const struct fanout_aws_response *r)
{
    const struct fanout_http_response *h = r ? r->internal : NULL;
    return h && h->error != FANOUT_HTTP_OK ? h->error_text : NULL;
}

const char *fanout_aws_response_header(const struct fanout_aws_response *r,
                                       const char *name)
{
    return r && r->internal ? fanout_http_response_header(r->internal, name) : NULL;
}

int fanout_aws_endpoint(const char *service, const char *region, char *url, size_t url_len,
                        char *err, size_t err_len)
{
    char reg[64];
    if (fanout_aws_region(region, reg, sizeof reg, err, err_len) != 0)
        return -1;
    return fanout_aws_endpoint_url(service, reg, NULL, url, url_len, err, err_len);
}
