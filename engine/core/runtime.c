/* The Lambda Runtime API loop on its own small HTTP/1.1 client (rt_http.h):
 * the runtime talks to the API over one kept-alive TCP connection, and a
 * function whose targets make no AWS call never loads libcurl.
 *
 * Error policy (runtime.h): the API unreachable, a non-200 to /next, a
 * reply to /next we cannot attribute (no or invalid request id) and any 5xx
 * to a post are fatal: the loop returns -1 and the process should exit, which
 * Lambda records as a runtime failure and answers by resetting the sandbox.
 * A 4xx to a post is logged; a rejected response is replaced by an error
 * post so the invocation still ends, and the loop goes on. */
#include "core/runtime.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "core/rt_http.h"

#define RT_SCOPE       "runtime"
#define RT_API_VERSION "2018-06-01"

#ifndef FANOUT_VERSION
#define FANOUT_VERSION "dev"
#endif

/* Lambda's synchronous payload limit is 6 MB; refuse anything far beyond it
 * rather than let a broken peer grow the buffer without bound. */
#define RT_MAX_EVENT_BYTES ((size_t)16 << 20)
/* We keep only this much of a post's reply (an error document at most). */
#define RT_MAX_REPLY_BYTES ((size_t)64 << 10)
/* The API is local; a connect that takes longer is not coming. */
#define RT_CONNECT_TIMEOUT_MS 5000L
/* Request ids are UUIDs in practice; anything this long is not one. */
#define RT_MAX_REQUEST_ID     128
#define RT_MAX_API_LEN        255
#define RT_ERROR_TYPE_LEN     128
#define RT_ERROR_MESSAGE_LEN  8192
#define RT_DEFAULT_ERROR_TYPE "Runtime.UnknownReason"

/* Deadline of the invocation in progress (Unix epoch ms), INT64_MAX between
 * invocations. Written by the loop thread, read by any thread. */
static _Atomic int64_t s_deadline_ms = INT64_MAX;

/* One HTTP exchange's reply: status, body and the /next headers. */
struct rt_reply {
    long status;
    struct fanout_sbuf body;
    size_t body_limit;
    int abort_over_limit; /* /next: fail the transfer; posts: truncate */
    int over_limit;
    int oom;
    char *request_id;
    size_t request_id_len; /* as received, to catch embedded NULs */
    char *deadline;
    char *function_arn;
    char *trace_id;
};

struct rt_client {
    struct fanout_rt_http http;
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fanout_runtime_remaining_ms(void)
{
    int64_t deadline = atomic_load_explicit(&s_deadline_ms, memory_order_relaxed);
    if (deadline == INT64_MAX)
        return INT64_MAX;
    int64_t left = deadline - s_now_ms();
    return left > 0 ? left : 0;
}

/* Copy `s` for a log line: printable ASCII kept, the rest as \xNN, cut at
 * `out_len` with "...". Ids and API replies are untrusted. */
static const char *s_printable(const char *s, size_t n, char *out, size_t out_len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;
        if (o + need + 4 > out_len) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (need == 1) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = 0;
    return out;
}

/* "host:port" (or "[v6]:port"): never anything that could change the URL's
 * scheme, path or credentials. */
static int s_valid_api(const char *api)
{
    if (!api || !*api || strlen(api) > RT_MAX_API_LEN)
        return 0;
    for (const char *p = api; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_'))
            return 0;
    }
    return 1;
}

/* The request id goes into a URL path: [A-Za-z0-9-] only. */
static int s_valid_request_id(const char *id, size_t received_len)
{
    size_t n = strlen(id);
    if (n == 0 || n != received_len || n > RT_MAX_REQUEST_ID)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* ---- replies ------------------------------------------------------------ */

static void s_reply_clear_headers(struct rt_reply *r)
{
    free(r->request_id);
    free(r->deadline);
    free(r->function_arn);
    free(r->trace_id);
    r->request_id = r->deadline = r->function_arn = r->trace_id = NULL;
    r->request_id_len = 0;
}

/* Ready for the next exchange; keeps the body's storage. */
static void s_reply_reset(struct rt_reply *r, size_t limit, int abort_over_limit)
{
    s_reply_clear_headers(r);
    fanout_sbuf_reset(&r->body);
    r->status = 0;
    r->body_limit = limit;
    r->abort_over_limit = abort_over_limit;
    r->over_limit = 0;
    r->oom = 0;
}

static void s_reply_free(struct rt_reply *r)
{
    s_reply_clear_headers(r);
    fanout_sbuf_free(&r->body);
}

/* 0 to go on, -1 to abort the exchange (rt_http.h). */
static int s_on_body(void *userdata, const char *data, size_t n)
{
    struct rt_reply *r = userdata;
    if (r->over_limit || n > r->body_limit - r->body.len) {
        size_t room = r->over_limit ? 0 : r->body_limit - r->body.len;
        r->over_limit = 1;
        if (r->abort_over_limit)
            return -1;
        if (room && fanout_sbuf_put(&r->body, data, room) != 0)
            r->oom = 1;
        return 0;
    }
    if (fanout_sbuf_put(&r->body, data, n) != 0) {
        r->oom = 1;
        return -1;
    }
    return 0;
}

static int s_header_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

static int s_on_header(void *userdata, const char *data, size_t name_len, const char *v,
                       size_t vlen)
{
    struct rt_reply *r = userdata;
    char **slot = NULL;
    if (s_header_is(data, name_len, "Lambda-Runtime-Aws-Request-Id"))
        slot = &r->request_id;
    else if (s_header_is(data, name_len, "Lambda-Runtime-Deadline-Ms"))
        slot = &r->deadline;
    else if (s_header_is(data, name_len, "Lambda-Runtime-Invoked-Function-Arn"))
        slot = &r->function_arn;
    else if (s_header_is(data, name_len, "Lambda-Runtime-Trace-Id"))
        slot = &r->trace_id;
    else if (s_header_is(data, name_len, "Content-Length")) {
        /* Size the buffer once for a large event, or refuse it early. */
        char num[32];
        if (vlen == 0 || vlen >= sizeof num)
            return 0;
        memcpy(num, v, vlen);
        num[vlen] = 0;
        char *end;
        errno = 0;
        unsigned long long len = strtoull(num, &end, 10);
        if (errno || *end)
            return 0;
        /* Over the limit: s_on_body stops it, once all the headers (the
         * request id among them) are in. A failed reserve is retried by
         * the appends. */
        /* A large body buffer (kept across invocations) in huge pages, as
         * the engine's arena: the 2 MiB aligned parts of an 8 MB event
         * arrive in a few page faults instead of 2,000. */
        if (len <= r->body_limit && fanout_sbuf_reserve(&r->body, (size_t)len) == 0 &&
            r->body.cap >= 4u << 20)
            fanout_advise_huge(r->body.bytes, r->body.cap);
        return 0;
    }
    if (!slot)
        return 0;
    free(*slot);
    *slot = strndup(v, vlen);
    if (!*slot) {
        r->oom = 1;
        return -1;
    }
    if (slot == &r->request_id)
        r->request_id_len = vlen;
    return 0;
}

/* ---- client ------------------------------------------------------------- */

static int s_client_init(struct rt_client *c, const char *api)
{
    char err[256];
    if (fanout_rt_http_init(&c->http, api, RT_CONNECT_TIMEOUT_MS, err, sizeof err) != 0) {
        LOG_ERROR(RT_SCOPE, "%s", err);
        return -1;
    }
    return 0;
}

static void s_client_free(struct rt_client *c)
{
    fanout_rt_http_close(&c->http);
}

/* One exchange. `body` NULL means GET; `headers` are more header lines,
 * each ending in CR LF. Returns 0 when a reply arrived (r->status set), -1
 * on a transport failure (logged unless it was our own size limit or an
 * allocation failure, which the caller reports). Only a connect timeout:
 * the process can be frozen for hours inside GET /next, and a post's
 * duration is Lambda's business. No proxy: the function's own HTTP(S)_PROXY
 * must not capture the Runtime API. */
static int s_exchange(struct rt_client *c, const char *path, const void *body,
                      size_t body_len, const char *headers, struct rt_reply *r)
{
    char full[sizeof "/" RT_API_VERSION + 64 + RT_MAX_REQUEST_ID];
    snprintf(full, sizeof full, "/" RT_API_VERSION "%s", path);
    struct fanout_rt_http_request req = {
        .method = body ? "POST" : "GET",
        .path = full,
        .headers = headers,
        .body = body,
        .body_len = body_len,
    };
    struct fanout_rt_http_sink sink = {
        .on_header = s_on_header, .on_body = s_on_body, .ud = r};
    char err[512];
    /* a new status line starts a new header set */
    s_reply_clear_headers(r);
    int status = fanout_rt_http_exchange(&c->http, &req, &sink, err, sizeof err);
    r->status = c->http.status; /* also when the body failed */
    if (status < 0) {
        if (!r->over_limit && !r->oom)
            LOG_ERROR(RT_SCOPE, "%s %s: %s", req.method, path, err);
        return -1;
    }
    return 0;
}

/* A short description of an API error reply for logs and error messages:
 * its errorType and errorMessage when it is the usual JSON document. */
static const char *s_describe_reply(const struct rt_reply *r, char *out, size_t out_len)
{
    out[0] = 0;
    if (!r->body.len)
        return out;
    json_t *doc = json_loadb((const char *)r->body.bytes, r->body.len, 0, NULL);
    const char *type = doc ? json_string_value(json_object_get(doc, "errorType")) : NULL;
    const char *msg = doc ? json_string_value(json_object_get(doc, "errorMessage")) : NULL;
    if (type || msg) {
        char t[128], m[512];
        snprintf(out, out_len, "%s: %s",
                 type ? s_printable(type, strlen(type), t, sizeof t) : "?",
                 msg ? s_printable(msg, strlen(msg), m, sizeof m) : "");
    } else {
        s_printable((const char *)r->body.bytes, r->body.len, out, out_len);
    }
    json_decref(doc);
    return out;
}

/* ---- error documents ---------------------------------------------------- */

/* A jansson string for arbitrary bytes: invalid UTF-8 becomes U+FFFD rather
 * than losing the message. */
static json_t *s_json_text(const char *s)
{
    size_t n = strlen(s);
    if (fanout_utf8_check((const uint8_t *)s, n))
        return json_stringn(s, n);
    struct fanout_sbuf lit = {0};
    json_t *v = NULL;
    if (fanout_sbuf_json_str(&lit, (const uint8_t *)s, n) == 0)
        v = json_loadb((const char *)lit.bytes, lit.len, JSON_DECODE_ANY, NULL);
    fanout_sbuf_free(&lit);
    return v;
}

/* The error type travels in a header: printable ASCII only, so a handler's
 * "\r\n" cannot add headers. */
static void s_clean_error_type(const char *in, char *out, size_t out_len)
{
    size_t o = 0;
    for (const char *p = in; *p && o + 1 < out_len; p++) {
        unsigned char c = (unsigned char)*p;
        out[o++] = (c > 0x20 && c < 0x7f) ? (char)c : '_';
    }
    out[o] = 0;
    if (o == 0)
        fanout_strlcpy(out, RT_DEFAULT_ERROR_TYPE, out_len);
}

/* {"errorMessage":...,"errorType":...,"stackTrace":[]} */
static char *s_error_document(const char *error_type, const char *message)
{
    json_t *doc = json_object();
    json_t *msg = s_json_text(message);
    json_t *type = s_json_text(error_type);
    char *out = NULL;
    if (doc && msg && type && json_object_set(doc, "errorMessage", msg) == 0 &&
        json_object_set(doc, "errorType", type) == 0 &&
        json_object_set_new(doc, "stackTrace", json_array()) == 0)
        out = json_dumps(doc, JSON_COMPACT);
    json_decref(msg);
    json_decref(type);
    json_decref(doc);
    return out;
}

enum rt_post_result {
    RT_POST_FATAL = -1,
    RT_POST_ACCEPTED = 0,
    RT_POST_REJECTED = 1, /* a 4xx (or other non-2xx below 500) */
};

/* POST and classify the answer; logs everything but acceptance. */
static enum rt_post_result s_post(struct rt_client *c, const char *path, const void *body,
                                  size_t body_len, const char *error_type,
                                  struct rt_reply *reply)
{
    /* No Expect: 100-continue: it would add a round trip to every large
     * response. */
    char hdrs[sizeof "Content-Type: application/json\r\n"
                     "Lambda-Runtime-Function-Error-Type: \r\n" +
              RT_ERROR_TYPE_LEN];
    snprintf(hdrs, sizeof hdrs, "Content-Type: application/json\r\n%s%s%s",
             error_type ? "Lambda-Runtime-Function-Error-Type: " : "",
             error_type ? error_type : "", error_type ? "\r\n" : "");

    s_reply_reset(reply, RT_MAX_REPLY_BYTES, 0);
    int rc = s_exchange(c, path, body ? body : "", body_len, hdrs, reply);
    if (rc != 0) {
        if (reply->oom)
            LOG_ERROR(RT_SCOPE, "POST %s: out of memory", path);
        return RT_POST_FATAL;
    }
    if (reply->status >= 200 && reply->status < 300)
        return RT_POST_ACCEPTED;
    char why[768];
    s_describe_reply(reply, why, sizeof why);
    if (reply->status >= 500) {
        LOG_ERROR(RT_SCOPE, "POST %s: HTTP %ld %s; the Runtime API is unusable, stopping",
                  path, reply->status, why);
        return RT_POST_FATAL;
    }
    LOG_WARN(RT_SCOPE, "POST %s: HTTP %ld %s", path, reply->status, why);
    return RT_POST_REJECTED;
}

static enum rt_post_result s_post_error(struct rt_client *c, const char *path,
                                        const char *error_type, const char *message,
                                        struct rt_reply *reply)
{
    char type[RT_ERROR_TYPE_LEN];
    s_clean_error_type(error_type, type, sizeof type);
    char *doc = s_error_document(type, message);
    if (!doc) {
        LOG_ERROR(RT_SCOPE, "POST %s: cannot build the error document", path);
        return RT_POST_FATAL;
    }
    enum rt_post_result res = s_post(c, path, doc, strlen(doc), type, reply);
    free(doc);
    return res;
}

/* ---- the loop ----------------------------------------------------------- */

struct rt_loop {
    const struct fanout_runtime_options *opts;
    struct rt_client client;
    struct rt_reply next; /* the event and its headers */
    struct rt_reply post; /* replies to posts */
    struct fanout_sbuf response;
};

/* The handler's answer is in; deliver it. 0 when the invocation ended (even
 * as a rejected error post), -1 when fatal. */
static int s_finish(struct rt_loop *l, const char *id, int ok, const char *error_type,
                    const char *error_message)
{
    char path[64 + RT_MAX_REQUEST_ID];
    enum rt_post_result res;
    if (ok) {
        snprintf(path, sizeof path, "/runtime/invocation/%s/response", id);
        res = s_post(&l->client, path, l->response.bytes, l->response.len, NULL, &l->post);
        if (res != RT_POST_REJECTED)
            return res == RT_POST_ACCEPTED ? 0 : -1;
        /* Rejected (413 for a response over the limit, typically): end the
         * invocation with an error instead, so the caller learns why. */
        char why[768], msg[1024];
        s_describe_reply(&l->post, why, sizeof why);
        snprintf(msg, sizeof msg,
                 "the Runtime API rejected a %zu-byte response: HTTP %ld %s",
                 l->response.len, l->post.status, why);
        error_type =
            l->post.status == 413 ? "Fanout.ResponseTooLarge" : "Fanout.ResponseRejected";
        error_message = msg;
        snprintf(path, sizeof path, "/runtime/invocation/%s/error", id);
        res = s_post_error(&l->client, path, error_type, error_message, &l->post);
    } else {
        snprintf(path, sizeof path, "/runtime/invocation/%s/error", id);
        res = s_post_error(&l->client, path, error_type, error_message, &l->post);
    }
    if (res == RT_POST_REJECTED)
        LOG_ERROR(RT_SCOPE, "invocation %s: the error report was rejected too", id);
    return res == RT_POST_FATAL ? -1 : 0;
}

static void s_export_trace_id(const char *trace_id)
{
    if (trace_id && *trace_id)
        setenv("_X_AMZN_TRACE_ID", trace_id, 1);
    else
        unsetenv("_X_AMZN_TRACE_ID");
}

static int64_t s_parse_deadline(const char *s)
{
    if (!s || !*s)
        return -1;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

/* One invocation: 0 when it ended, -1 when fatal. */
static int s_invoke_once(struct rt_loop *l)
{
    struct rt_reply *next = &l->next;
    s_reply_reset(next, RT_MAX_EVENT_BYTES, 1);
    int rc = s_exchange(&l->client, "/runtime/invocation/next", NULL, 0, NULL, next);
    int unreadable = rc != 0 && (next->over_limit || next->oom);
    if (rc != 0 && !unreadable) {
        LOG_ERROR(RT_SCOPE, "the Runtime API is unreachable, stopping");
        return -1;
    }
    if (next->status != 200) {
        char why[768];
        LOG_ERROR(RT_SCOPE, "GET /runtime/invocation/next: HTTP %ld %s, stopping",
                  next->status, s_describe_reply(next, why, sizeof why));
        return -1;
    }
    /* Without a usable id the invocation can be neither answered nor
     * failed; exiting is the only way Lambda learns of it. */
    if (!next->request_id || !*next->request_id) {
        LOG_ERROR(RT_SCOPE, "GET /runtime/invocation/next: no request id in the reply, "
                            "stopping");
        return -1;
    }
    const char *id = next->request_id;
    if (!s_valid_request_id(id, next->request_id_len)) {
        char shown[96];
        LOG_ERROR(RT_SCOPE, "invalid request id \"%s\" (want [A-Za-z0-9-]{1,%d}), stopping",
                  s_printable(id, next->request_id_len, shown, sizeof shown),
                  RT_MAX_REQUEST_ID);
        return -1;
    }

    int64_t deadline = s_parse_deadline(next->deadline);
    if (deadline < 0) {
        char shown[64];
        const char *d = next->deadline ? next->deadline : "";
        LOG_WARN(RT_SCOPE, "invocation %s: missing or bad deadline \"%s\"", id,
                 s_printable(d, strlen(d), shown, sizeof shown));
    }
    s_export_trace_id(next->trace_id);
    atomic_store_explicit(&s_deadline_ms, deadline < 0 ? INT64_MAX : deadline,
                          memory_order_relaxed);
    fanout_log_set_request_id(id); /* JSON log lines carry it */

    if (unreadable) {
        char msg[160];
        if (next->oom)
            snprintf(msg, sizeof msg, "out of memory reading the event");
        else
            snprintf(msg, sizeof msg, "the event is larger than %zu bytes",
                     RT_MAX_EVENT_BYTES);
        LOG_ERROR(RT_SCOPE, "invocation %s: %s", id, msg);
        rc = s_finish(l, id, 0, next->oom ? "Fanout.OutOfMemory" : "Fanout.EventTooLarge",
                      msg);
        atomic_store_explicit(&s_deadline_ms, INT64_MAX, memory_order_relaxed);
        fanout_log_set_request_id(NULL);
        return rc;
    }

    LOG_DEBUG(RT_SCOPE, "invocation %s: %zu-byte event, %" PRId64 " ms left", id,
              next->body.len, fanout_runtime_remaining_ms());
    struct fanout_invocation inv = {
        .request_id = id,
        .function_arn = next->function_arn ? next->function_arn : "",
        .trace_id = next->trace_id ? next->trace_id : "",
        .deadline_ms = deadline < 0 ? 0 : deadline,
        .event = next->body.bytes ? (const char *)next->body.bytes : "",
        .event_len = next->body.len,
        .event_writable = next->body.bytes ? (char *)next->body.bytes : NULL,
    };
    char error_type[RT_ERROR_TYPE_LEN] = {0};
    char error_message[RT_ERROR_MESSAGE_LEN] = {0};
    fanout_sbuf_reset(&l->response);
    int hrc = l->opts->handler(l->opts->ctx, &inv, &l->response, error_type,
                               sizeof error_type, error_message, sizeof error_message);
    error_type[sizeof error_type - 1] = 0;
    error_message[sizeof error_message - 1] = 0;
    if (hrc != 0) {
        if (!error_message[0])
            fanout_strlcpy(error_message, "the handler failed without a message",
                           sizeof error_message);
        char shown[RT_ERROR_TYPE_LEN * 4];
        LOG_INFO(RT_SCOPE, "invocation %s failed: %s", id,
                 s_printable(error_type, strlen(error_type), shown, sizeof shown));
    }
    rc = s_finish(l, id, hrc == 0, error_type, error_message);
    atomic_store_explicit(&s_deadline_ms, INT64_MAX, memory_order_relaxed);
    fanout_log_set_request_id(NULL);
    return rc;
}

int fanout_runtime_run(const struct fanout_runtime_options *opts)
{
    if (!opts || !opts->handler) {
        LOG_ERROR(RT_SCOPE, "fanout_runtime_run: no handler");
        return -1;
    }
    const char *api = opts->api ? opts->api : getenv("AWS_LAMBDA_RUNTIME_API");
    if (!s_valid_api(api)) {
        LOG_ERROR(RT_SCOPE, "AWS_LAMBDA_RUNTIME_API is missing or not host:port");
        return -1;
    }
    struct rt_loop l = {.opts = opts};
    int rc = s_client_init(&l.client, api);
    unsigned served = 0;
    while (rc == 0 && (opts->max_invocations == 0 || served < opts->max_invocations)) {
        rc = s_invoke_once(&l);
        if (rc == 0)
            served++;
    }
    atomic_store_explicit(&s_deadline_ms, INT64_MAX, memory_order_relaxed);
    s_reply_free(&l.next);
    s_reply_free(&l.post);
    fanout_sbuf_free(&l.response);
    s_client_free(&l.client);
    return rc == 0 ? 0 : -1;
}

int fanout_runtime_init_error(const char *api, const char *error_type,
                              const char *error_message)
{
    if (!api)
        api = getenv("AWS_LAMBDA_RUNTIME_API");
    if (!s_valid_api(api)) {
        LOG_ERROR(RT_SCOPE, "AWS_LAMBDA_RUNTIME_API is missing or not host:port");
        return -1;
    }
    struct rt_client c;
    struct rt_reply reply = {0};
    int rc = -1;
    if (s_client_init(&c, api) == 0) {
        enum rt_post_result res = s_post_error(
            &c, "/runtime/init/error", error_type ? error_type : "",
            error_message && *error_message ? error_message : "initialisation failed",
            &reply);
        rc = res == RT_POST_ACCEPTED ? 0 : -1;
    }
    s_reply_free(&reply);
    s_client_free(&c);
    return rc;
}
