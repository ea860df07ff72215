/* HTTP for the AWS layer. Where no proxy applies and the URL is plain,
 * requests go on raw connections that fanout opens itself (net.h: DNS,
 * TCP, TLS on libssl with verification, the connect timeout) and frames
 * with its own HTTP/1.1 (http1.c; see "raw connections" below): libcurl is
 * not loaded for them. The rest (proxies, URLs libcurl must parse or
 * refuse, requests over the raw connections' descriptor budget) goes on
 * libcurl transfers:
 *
 * libcurl's multi interface, driven through
 * curl_multi_socket_action with our own poll(2): told which socket is
 * ready, libcurl reads it without polling it again (curl_multi_perform
 * polls every transfer's socket on every pass), one system call less per
 * request.
 *
 * Where connections live. libcurl 7.88 documents sharing the connection
 * cache through a share object (CURL_LOCK_DATA_CONNECT) between concurrent
 * threads as unsupported (KNOWN_BUGS "A shared connection cache is not
 * thread-safe", curl issues #4544, #4915, #13840): a connection is touched
 * outside the share's lock after it went back to the cache. So the share
 * holds what is safe to share between threads (DNS cache, TLS sessions,
 * behind one mutex per kind) and the connections live in the connection
 * cache of multi handles kept in a pool. A call takes a multi handle from
 * the pool (the most recently returned, whose connections are the warmest),
 * runs all its requests on it and gives it back: connections are reused by
 * the next call on any thread, one call at a time per multi, with no
 * connection ever seen by two threads at once. Concurrent calls use
 * different multi handles, so the pool holds about as many multi handles as
 * calls ever ran at once. Easy handles are pooled too.
 *
 * libcurl is not linked: fanout_http_global_init only counts and reads the
 * environment, and the first request that takes a libcurl transfer loads
 * libcurl (curl_load.h) and sets up its globals and the share, so a
 * process whose requests all take raw connections never maps it. A libcurl
 * that cannot be loaded fails each such request with the library's name
 * and the loader's reason.
 *
 * Nothing but method, host, path, status and timing is logged, at debug
 * level: header values carry signatures and tokens, query strings may carry
 * presigned signatures, bodies carry records. */
#include "aws/http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include "aws/curl_load.h"
#include "aws/http1.h"
#include "aws/net.h"
#include "aws/tls_store.h"
#include "common/log.h"

#define HTTP_SCOPE "http"

/* Refuse response bodies over this size (no AWS API we call answers more
 * than a few MiB; a runaway answer must not take the function's memory). */
#define HTTP_MAX_BODY_BYTES ((size_t)FANOUT_HTTP_MAX_BODY_BYTES)
/* The most a response body's buffer takes at once from its Content-Length */
#define HTTP_BODY_PRESIZE       ((size_t)1 << 20)
#define HTTP_CONNECT_TIMEOUT_MS 3000L
/* Idle connections one multi handle keeps. libcurl's default is 4 per easy
 * handle added, which shrinks the cache after a wide call. A Lambda process
 * has 1024 descriptors: HTTP_IDLE_MULTIS * HTTP_MULTI_MAXCONNECTS (512) is
 * the most the pool can hold idle. */
#define HTTP_MULTI_MAXCONNECTS 64L
#define HTTP_IDLE_MULTIS       8
#define HTTP_IDLE_EASIES       128
#define HTTP_MAX_INSECURE      32
#define HTTP_HOST_LEN          256
/* TCP keep-alive on pooled connections (seconds): NAT gateways drop idle
 * flows after 350 s. */
#define HTTP_KEEPIDLE_S  60L
#define HTTP_KEEPINTVL_S 30L
/* CURLOPT_UPLOAD_BUFFERSIZE: libcurl's least (its default is 64 KiB) */
#define HTTP_UPLOAD_BUFFER (16L * 1024)

struct s_insecure_host {
    char host[HTTP_HOST_LEN];
    long port; /* 0: any */
};

/* A URL parsed for libcurl (CURLOPT_CURLU, which libcurl only reads) and
 * for our checks. It stays with the easy handle that sent it, and the next
 * request to the same URL on that handle uses it as it is: every request
 * of a target goes to one URL, and parsing it cost 15 K instructions. */
struct s_url {
    char *text; /* the URL parsed; NULL: none */
    CURLU *u;
    char host[HTTP_HOST_LEN];
    long port;
    int https;
};

/* s_lock guards the reference count and the pools; the rest is written
 * under it at the first init and read-only until the last clean-up. */
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned s_refs;
/* libcurl's globals and the share: set up by the first request after the
 * first init (s_curl_up), torn down by the last clean-up. */
static int s_curl_up;
static CURLSH *s_share;
static pthread_mutex_t s_share_locks[CURL_LOCK_DATA_LAST];
static CURLM *s_idle_multis[HTTP_IDLE_MULTIS];
static size_t s_idle_multi_count;
static CURL *s_idle_easies[HTTP_IDLE_EASIES];
/* Non-zero: that idle handle is set up for a verified POST with a body
 * to a URL of that scheme (S_POST_HTTP or S_POST_HTTPS: the options every
 * such request shares are set; the request's own are cleared), so the next
 * such request sets only its own (see s_prepare) */
static int s_idle_posts[HTTP_IDLE_EASIES];
static struct s_url s_idle_urls[HTTP_IDLE_EASIES];
static size_t s_idle_easy_count;
/* Idle raw connections (see "raw connections"), all hosts together, the
 * most recent last; when full, the oldest goes. */
#define HTTP_IDLE_CONNS 256
struct s_conn;
static struct s_conn *s_idle_conns[HTTP_IDLE_CONNS];
static size_t s_idle_conn_count;
/* The raw connections open at once, idle or not, are kept within a
 * budget of an eighth of the descriptor limit (128 of Lambda's 1,024; at
 * most HTTP_IDLE_CONNS), read at init: requests that would go over it take
 * libcurl transfers, and an idle connection is closed before a new one
 * opens over it. (A raw connection now holds one descriptor, its socket;
 * the budget was set when it also held a libcurl multi handle's two.) s_raw_busy (under
 * s_lock): requests on the raw path now; s_raw_open: raw connections alive. */
static size_t s_raw_budget = 16;
static size_t s_raw_busy;
static atomic_size_t s_raw_open;
static void s_conn_close(struct s_conn *c);
static char *s_ca_bundle;
/* The proxy each scheme ([0] http, [1] https) takes and the hosts that go
 * straight, read from the environment at init as libcurl 7.88 would per
 * transfer (detect_proxy and create_conn_helper_init_proxy in its url.c)
 * and set on each handle: libcurl then reads no variable (six getenv
 * calls and their copies a request). NULL: none. s_proxy_env: the
 * variables could not be copied; libcurl reads them itself. */
static char *s_proxy[2];
static char *s_no_proxy;
static int s_proxy_env;
static struct s_insecure_host s_insecure[HTTP_MAX_INSECURE];
static size_t s_insecure_count;

/* Requests of one call kept on the caller's stack (more: allocated) */
#define S_LOCAL_XFERS 4

/* One request of a call in flight. */
struct s_xfer {
    const struct fanout_http_request *req;
    struct fanout_http_response *resp;
    CURL *easy;
    struct s_url url; /* taken from and given back with `easy` */
    struct curl_slist *headers;
    size_t header_cap;
    int is_head; /* no body comes, whatever Content-Length says */
    int post;    /* a verified POST with a body: the handle goes back set up
                  * (S_POST_HTTP or S_POST_HTTPS), else 0 */
    int added;   /* in the multi handle */
    int done;    /* resp filled */
    int too_big; /* refused: body over HTTP_MAX_BODY_BYTES */
    int no_mem;
    char errbuf[CURL_ERROR_SIZE];
};

enum { S_POST_HTTP = 1, S_POST_HTTPS = 2 };

static void s_url_free(struct s_url *u)
{
    curl_url_cleanup(u->u);
    free(u->text);
    memset(u, 0, sizeof *u);
}

/* ---- share locks ------------------------------------------------------- */

static void s_share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    (void)h;
    (void)access;
    (void)ud;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&s_share_locks[data]);
}

static void s_share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    (void)h;
    (void)ud;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&s_share_locks[data]);
}

/* ---- configuration from the environment --------------------------------- */

/* One FANOUT_TLS_INSECURE_HOSTS entry: host, host:port, [v6], [v6]:port or
 * a bare v6 address. */
static int s_parse_insecure(const char *s, size_t n, struct s_insecure_host *out)
{
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (!n)
        return -1;
    const char *host = s, *port = NULL;
    size_t host_len = n;
    if (*s == '[') {
        const char *end = memchr(s, ']', n);
        if (!end)
            return -1;
        host = s + 1;
        host_len = (size_t)(end - host);
        size_t rest = n - (size_t)(end + 1 - s);
        if (rest) {
            if (end[1] != ':' || rest < 2)
                return -1;
            port = end + 2;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon && !memchr(colon + 1, ':', n - (size_t)(colon + 1 - s))) {
            host_len = (size_t)(colon - s);
            port = colon + 1;
        }
    }
    if (!host_len || host_len >= sizeof out->host)
        return -1;
    memcpy(out->host, host, host_len);
    out->host[host_len] = 0;
    out->port = 0;
    if (port) {
        long p = 0;
        for (const char *c = port; c < s + n; c++) {
            if (*c < '0' || *c > '9' || p > 65535)
                return -1;
            p = p * 10 + (*c - '0');
        }
        if (p < 1 || p > 65535)
            return -1;
        out->port = p;
    }
    return 0;
}

/* The first of the variables `names` (NULL-terminated) set to a non-empty
 * value, copied, as libcurl's curl_getenv reads one (an empty value counts
 * as unset); *no_mem is set when the copy failed. */
static char *s_env_first(const char *const *names, int *no_mem)
{
    for (; *names; names++) {
        const char *v = getenv(*names);
        if (v && *v) {
            char *c = strdup(v);
            if (!c)
                *no_mem = 1;
            return c;
        }
    }
    return NULL;
}

static void s_free_proxy(void)
{
    free(s_proxy[0]);
    free(s_proxy[1]);
    free(s_no_proxy);
    s_proxy[0] = s_proxy[1] = s_no_proxy = NULL;
    s_proxy_env = 0;
}

/* libcurl 7.88's order: <scheme>_proxy in lowercase, its uppercase form
 * but for http (HTTP_PROXY can be set by a CGI request's Proxy: header),
 * then all_proxy, ALL_PROXY; no_proxy, then NO_PROXY. */
static void s_read_proxy(void)
{
    static const char *const http[] = {"http_proxy", "all_proxy", "ALL_PROXY", NULL};
    static const char *const https[] = {"https_proxy", "HTTPS_PROXY", "all_proxy",
                                        "ALL_PROXY", NULL};
    static const char *const none[] = {"no_proxy", "NO_PROXY", NULL};
    int no_mem = 0;
    s_free_proxy();
    s_proxy[0] = s_env_first(http, &no_mem);
    s_proxy[1] = s_env_first(https, &no_mem);
    s_no_proxy = s_env_first(none, &no_mem);
    if (no_mem) {
        s_free_proxy();
        s_proxy_env = 1;
    }
}

/* s_raw_budget from the descriptor limit (see s_raw_open) */
static void s_read_fd_limit(void)
{
    struct rlimit rl;
    rlim_t fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
    rlim_t budget = fds == RLIM_INFINITY ? HTTP_IDLE_CONNS : fds / 8;
    s_raw_budget = budget < 4                 ? 4
                   : budget > HTTP_IDLE_CONNS ? HTTP_IDLE_CONNS
                                              : (size_t)budget;
}

static void s_read_env(void)
{
    s_read_fd_limit();
    const char *ca = getenv("FANOUT_CA_BUNDLE");
    free(s_ca_bundle);
    s_ca_bundle = ca && *ca ? strdup(ca) : NULL;
    s_read_proxy();
    fanout_tls_store_setup(s_ca_bundle);

    s_insecure_count = 0;
    const char *list = getenv("FANOUT_TLS_INSECURE_HOSTS");
    if (!list || !*list)
        return;
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        struct s_insecure_host h;
        if (s_parse_insecure(p, n, &h) == 0) {
            if (s_insecure_count < HTTP_MAX_INSECURE)
                s_insecure[s_insecure_count++] = h;
            else
                LOG_WARN(HTTP_SCOPE, "FANOUT_TLS_INSECURE_HOSTS: more than %d entries",
                         HTTP_MAX_INSECURE);
        } else if (n) {
            LOG_WARN(HTTP_SCOPE, "FANOUT_TLS_INSECURE_HOSTS: ignoring \"%.*s\"", (int)n, p);
        }
        p += n;
        if (*p == ',')
            p++;
    }
    if (s_insecure_count)
        LOG_WARN(HTTP_SCOPE,
                 "TLS certificate verification is off for %s (FANOUT_TLS_INSECURE_HOSTS)",
                 list);
}

static int s_is_insecure(const char *host, long port)
{
    for (size_t i = 0; i < s_insecure_count; i++)
        if (strcasecmp(s_insecure[i].host, host) == 0 &&
            (s_insecure[i].port == 0 || s_insecure[i].port == port))
            return 1;
    return 0;
}

/* ---- set-up and tear-down ---------------------------------------------- */

int fanout_http_global_init(void)
{
    pthread_mutex_lock(&s_lock);
    if (s_refs++ == 0)
        s_read_env();
    pthread_mutex_unlock(&s_lock);
    return 0;
}

/* Load libcurl and set up its globals and the share, once per init; called
 * with s_lock held. 0 when ready, else -1 with the reason in `err`. */
static int s_curl_start(char *err, size_t err_len)
{
    if (s_curl_up)
        return 0;
    if (fanout_curl_load(err, err_len) != 0)
        return -1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fanout_strlcpy(err, "curl_global_init failed", err_len);
        return -1;
    }
    CURLSH *sh = curl_share_init();
    CURLSHcode sc = sh ? CURLSHE_OK : CURLSHE_NOMEM;
    if (sc == CURLSHE_OK)
        sc = curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, s_share_lock);
    if (sc == CURLSHE_OK)
        sc = curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, s_share_unlock);
    if (sc == CURLSHE_OK)
        sc = curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    if (sc == CURLSHE_OK)
        sc = curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    if (sc != CURLSHE_OK) {
        snprintf(err, err_len, "curl share set-up failed: %s", curl_share_strerror(sc));
        if (sh)
            curl_share_cleanup(sh);
        curl_global_cleanup();
        return -1;
    }
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&s_share_locks[i], NULL);
    s_share = sh;
    fanout_tls_store_curl_setup();
    s_curl_up = 1;
    return 0;
}

void fanout_http_global_cleanup(void)
{
    pthread_mutex_lock(&s_lock);
    if (s_refs == 0 || --s_refs > 0) {
        pthread_mutex_unlock(&s_lock);
        return;
    }
    free(s_ca_bundle);
    s_ca_bundle = NULL;
    s_free_proxy();
    s_insecure_count = 0;
    for (size_t i = 0; i < s_idle_conn_count; i++)
        s_conn_close(s_idle_conns[i]);
    s_idle_conn_count = 0;
    fanout_net_cleanup();
    if (!s_curl_up) {
        fanout_tls_store_cleanup();
        pthread_mutex_unlock(&s_lock);
        return;
    }
    /* easy handles first: the share refuses to go while one uses it */
    for (size_t i = 0; i < s_idle_easy_count; i++) {
        curl_easy_cleanup(s_idle_easies[i]);
        s_url_free(&s_idle_urls[i]);
    }
    s_idle_easy_count = 0;
    for (size_t i = 0; i < s_idle_multi_count; i++)
        curl_multi_cleanup(s_idle_multis[i]);
    s_idle_multi_count = 0;
    fanout_tls_store_cleanup();
    if (curl_share_cleanup(s_share) != CURLSHE_OK)
        LOG_ERROR(HTTP_SCOPE, "curl share still in use at clean-up");
    s_share = NULL;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s_share_locks[i]);
    curl_global_cleanup();
    s_curl_up = 0;
    pthread_mutex_unlock(&s_lock);
}

/* ---- the event loop --------------------------------------------------- */

/* The sockets one call waits on, with the events libcurl wants (its
 * CURLMOPT_SOCKETFUNCTION); its timer is read with curl_multi_timeout. */
#define S_LOOP_FDS 8 /* sockets tracked without an allocation */
struct s_loop {
    struct pollfd *fds; /* `local`, or allocated when more are needed */
    size_t count, cap;
    int no_mem;
    struct pollfd local[S_LOOP_FDS];
};

static int s_on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp)
{
    (void)e;
    (void)sockp;
    struct s_loop *l = ud;
    if (!l) /* between calls (the multi idle in the pool) */
        return 0;
    size_t i = 0;
    while (i < l->count && l->fds[i].fd != fd)
        i++;
    if (what == CURL_POLL_REMOVE) {
        if (i < l->count)
            l->fds[i] = l->fds[--l->count];
        return 0;
    }
    if (i == l->count) {
        if (l->count == l->cap) {
            size_t cap = l->cap * 2;
            struct pollfd *f = malloc(cap * sizeof *f);
            if (!f) {
                l->no_mem = 1;
                return -1;
            }
            memcpy(f, l->fds, l->count * sizeof *f);
            if (l->fds != l->local)
                free(l->fds);
            l->fds = f;
            l->cap = cap;
        }
        l->count++;
    }
    l->fds[i].fd = fd;
    l->fds[i].events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0) |
                               ((what & CURL_POLL_OUT) ? POLLOUT : 0));
    l->fds[i].revents = 0;
    return 0;
}

/* ---- the pools ---------------------------------------------------------- */

static CURLM *s_take_multi(void)
{
    CURLM *m = NULL;
    pthread_mutex_lock(&s_lock);
    if (s_idle_multi_count)
        m = s_idle_multis[--s_idle_multi_count];
    pthread_mutex_unlock(&s_lock);
    if (m)
        return m;
    m = curl_multi_init();
    if (m) {
        curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, HTTP_MULTI_MAXCONNECTS);
        curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, s_on_socket);
    }
    return m;
}

static void s_give_multi(CURLM *m)
{
    pthread_mutex_lock(&s_lock);
    if (s_refs > 0 && s_idle_multi_count < HTTP_IDLE_MULTIS) {
        s_idle_multis[s_idle_multi_count++] = m;
        m = NULL;
    }
    pthread_mutex_unlock(&s_lock);
    if (m)
        curl_multi_cleanup(m); /* closes its connections */
}

/* An idle easy handle, or a new one; *post says whether it is set up for
 * a verified POST (s_idle_posts); *url gets the URL it sent last, if any. */
static CURL *s_take_easy(int *post, struct s_url *url)
{
    CURL *e = NULL;
    *post = 0;
    pthread_mutex_lock(&s_lock);
    if (s_idle_easy_count) {
        e = s_idle_easies[--s_idle_easy_count];
        *post = s_idle_posts[s_idle_easy_count];
        *url = s_idle_urls[s_idle_easy_count];
        memset(&s_idle_urls[s_idle_easy_count], 0, sizeof *url);
    }
    pthread_mutex_unlock(&s_lock);
    return e ? e : curl_easy_init();
}

/* `post`: the handle served a verified POST; it keeps the options such
 * requests share and forgets this one's pointers. Otherwise every option
 * is forgotten (curl_easy_reset: a fifth of libcurl's instructions per
 * request, which the POSTs of record sends skip). */
static void s_give_easy(CURL *e, int post, struct s_url *url)
{
    if (post) {
        curl_easy_setopt(e, CURLOPT_CURLU, (CURLU *)NULL);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const void *)NULL);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, (char *)NULL);
        curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)NULL);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)NULL);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)NULL);
    } else {
        curl_easy_reset(e);
    }
    pthread_mutex_lock(&s_lock);
    if (s_refs > 0 && s_idle_easy_count < HTTP_IDLE_EASIES) {
        s_idle_posts[s_idle_easy_count] = post;
        s_idle_urls[s_idle_easy_count] = *url;
        s_idle_easies[s_idle_easy_count++] = e;
        e = NULL;
    }
    pthread_mutex_unlock(&s_lock);
    if (e) {
        curl_easy_cleanup(e);
        s_url_free(url);
    }
    memset(url, 0, sizeof *url);
}

/* ---- responses ------------------------------------------------------------ */

static void s_free_headers(struct fanout_http_response *r)
{
    free(r->headers);
    fanout_sbuf_free(&r->header_text);
    r->headers = NULL;
    r->header_count = 0;
}

/* A failed request: no status, no body, no headers; the reason. */
static void s_fail(struct fanout_http_response *r, enum fanout_http_error e,
                   const char *text)
{
    s_free_headers(r);
    fanout_sbuf_free(&r->body);
    r->status = 0;
    r->error = e;
    fanout_strlcpy(r->error_text, text, sizeof r->error_text);
}

/* ---- libcurl callbacks ---------------------------------------------------- */

static int s_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t s_on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct s_xfer *x = ud;
    struct fanout_http_response *r = x->resp;
    size_t n = size * nmemb;
    /* a status line starts a response: keep only the last one's headers
     * (1xx interim answers come before) */
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        r->header_count = 0; /* the buffers stay */
        r->header_text.len = 0;
        return n;
    }
    const char *colon = memchr(p, ':', n);
    size_t name_len = colon ? (size_t)(colon - p) : 0;
    while (name_len && s_is_ws(p[name_len - 1]))
        name_len--;
    const char *value = colon ? colon + 1 : p;
    size_t value_len = n - (size_t)(value - p);
    while (value_len && s_is_ws(*value))
        value++, value_len--;
    while (value_len && s_is_ws(value[value_len - 1]))
        value_len--;

    if (!x->is_head && name_len == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
        /* refuse an announced oversized body before reading it; room for
         * an announced body at once (up to HTTP_BODY_PRESIZE: a server
         * that announces more than it sends takes no more than that) */
        char num[32];
        if (value_len < sizeof num) {
            memcpy(num, value, value_len);
            num[value_len] = 0;
            errno = 0;
            unsigned long long cl = strtoull(num, NULL, 10);
            if (errno == 0 && cl > HTTP_MAX_BODY_BYTES) {
                x->too_big = 1;
                return 0;
            }
            if (errno == 0 && cl && !r->body.len &&
                fanout_sbuf_reserve(&r->body,
                                    cl < HTTP_BODY_PRESIZE ? cl : HTTP_BODY_PRESIZE)) {
                x->no_mem = 1;
                return 0;
            }
        }
    }
    if (fanout_http1_store_header(r, &x->header_cap, p, n) != 0) {
        x->no_mem = 1;
        return 0;
    }
    return n;
}

static size_t s_on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct s_xfer *x = ud;
    struct fanout_sbuf *b = &x->resp->body;
    size_t n = size * nmemb;
    if (n > HTTP_MAX_BODY_BYTES - b->len) {
        x->too_big = 1;
        return 0;
    }
    if (fanout_sbuf_put(b, p, n) != 0) {
        x->no_mem = 1;
        return 0;
    }
    return n;
}

/* ---- one request ------------------------------------------------------- */

static int s_is_header_value(const char *s)
{
    return s[strcspn(s, "\r\n")] == 0;
}

/* The request's header lines, plus what turns libcurl's own additions
 * off, as a curl_slist in one allocation (libcurl only reads the list it
 * is given; curl_slist_append costs two allocations a line). Returns -1
 * with the reason in `why`. */
static int s_build_headers(struct s_xfer *x, int has_body, const char **why)
{
    const struct fanout_http_request *q = x->req;
    int has_type = 0, has_expect = 0;
    size_t text = 0;
    for (size_t i = 0; i < q->header_count; i++) {
        const struct fanout_http_header *h = &q->headers[i];
        if (!fanout_http1_is_token(h->name) || !h->value || !s_is_header_value(h->value)) {
            *why = "invalid request header";
            return -1;
        }
        has_type |= strcasecmp(h->name, "Content-Type") == 0;
        has_expect |= strcasecmp(h->name, "Expect") == 0;
        text += strlen(h->name) + 2 + strlen(h->value) + 1;
    }
    /* no 100-continue round trip before the body; with a body and no
     * type, libcurl would say form-urlencoded */
    const char *extra[2] = {has_expect ? NULL : "Expect:",
                            has_body && !has_type ? "Content-Type:" : NULL};
    size_t lines = q->header_count + (extra[0] != NULL) + (extra[1] != NULL);
    text += sizeof "Expect:" + sizeof "Content-Type:";
    if (!lines)
        return 0;
    struct curl_slist *l = malloc(lines * sizeof *l + text);
    if (!l) {
        *why = "out of memory";
        return -1;
    }
    char *o = (char *)(l + lines);
    size_t k = 0;
    for (size_t i = 0; i < q->header_count + 2; i++) {
        const char *fixed = i < q->header_count ? NULL : extra[i - q->header_count];
        if (i >= q->header_count && !fixed)
            continue;
        l[k].data = o;
        l[k].next = k + 1 < lines ? &l[k + 1] : NULL;
        k++;
        if (fixed) {
            size_t n = strlen(fixed) + 1;
            memcpy(o, fixed, n);
            o += n;
            continue;
        }
        const struct fanout_http_header *h = &q->headers[i];
        size_t nl = strlen(h->name), vl = strlen(h->value);
        memcpy(o, h->name, nl);
        o += nl;
        /* "Name:" (or blanks only) would remove the header; "Name;" sends
         * it empty */
        if (h->value[strspn(h->value, " \t")] == 0) {
            *o++ = ';';
        } else {
            *o++ = ':';
            *o++ = ' ';
            memcpy(o, h->value, vl);
            o += vl;
        }
        *o++ = 0;
    }
    x->headers = l;
    return 0;
}

/* Parse the URL once, for libcurl (CURLOPT_CURLU) and for our checks and
 * log lines, so both see the same host and port; the easy handle's last
 * URL when it is the same text. */
static int s_parse_url(struct s_xfer *x)
{
    struct s_url *p = &x->url;
    if (p->text && strcmp(p->text, x->req->url) == 0)
        return 0;
    s_url_free(p);
    p->u = curl_url();
    if (!p->u || curl_url_set(p->u, CURLUPART_URL, x->req->url, 0) != CURLUE_OK)
        return -1;
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;
    if (curl_url_get(p->u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(p->u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(p->u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        const char *h = host;
        size_t n = strlen(h);
        if (n >= 2 && h[0] == '[' && h[n - 1] == ']')
            h++, n -= 2; /* an IPv6 literal */
        if (n && n < sizeof p->host) {
            memcpy(p->host, h, n);
            p->host[n] = 0;
            p->port = strtol(port, NULL, 10);
            p->https = strcasecmp(scheme, "https") == 0;
            rc = 0;
        }
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    /* kept for the next request only when whole (no text: not reused) */
    if (rc == 0)
        p->text = strdup(x->req->url);
    return rc;
}

#define S_SET(opt, val)                                                                    \
    do {                                                                                   \
        if (cc == CURLE_OK)                                                                \
            cc = curl_easy_setopt(e, opt, val);                                            \
    } while (0)

/* Prepare x->easy for x->req. On failure, fills the response and marks the
 * request done. */
static int s_prepare(struct s_xfer *x)
{
    const struct fanout_http_request *q = x->req;
    const char *why = "out of memory";
    if (!q || !q->url) {
        s_fail(x->resp, FANOUT_HTTP_OTHER, "no URL");
        x->done = 1;
        return -1;
    }
    const char *method = q->method && *q->method ? q->method : "GET";
    int is_head = strcmp(method, "HEAD") == 0;
    x->is_head = is_head;
    int has_body = !is_head && (q->body_len > 0 || q->body || strcmp(method, "POST") == 0 ||
                                strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0);
    if (!fanout_http1_is_token(method)) {
        why = "invalid method";
        goto fail;
    }
    if (q->body_len > 0 && !q->body) {
        why = "request body length without a body";
        goto fail;
    }
    int was_post = 0;
    x->easy = s_take_easy(&was_post, &x->url);
    if (!x->easy)
        goto fail;
    if (s_parse_url(x) != 0) {
        why = "malformed URL";
        goto fail;
    }
    int https = x->url.https;
    if (s_build_headers(x, has_body, &why) != 0)
        goto fail;
    why = "out of memory";

    CURL *e = x->easy;
    CURLcode cc = CURLE_OK;
    x->errbuf[0] = 0;
    int insecure = https && (q->tls_no_verify || s_is_insecure(x->url.host, x->url.port));
    x->post = has_body && !insecure && strcmp(method, "POST") == 0
                  ? (https ? S_POST_HTTPS : S_POST_HTTP)
                  : 0;
    if (x->post && was_post == x->post) {
        /* set up by an earlier verified POST (s_give_easy): this
         * request's own options only, each one s_give_easy cleared or
         * that differs between requests */
        S_SET(CURLOPT_CURLU, x->url.u);
        S_SET(CURLOPT_PRIVATE, x);
        S_SET(CURLOPT_ERRORBUFFER, x->errbuf);
        S_SET(CURLOPT_HTTPHEADER, x->headers);
        S_SET(CURLOPT_HEADERDATA, x);
        S_SET(CURLOPT_WRITEDATA, x);
        S_SET(CURLOPT_CONNECTTIMEOUT_MS, q->connect_timeout_ms > 0
                                             ? (long)q->connect_timeout_ms
                                             : HTTP_CONNECT_TIMEOUT_MS);
        S_SET(CURLOPT_TIMEOUT_MS, q->timeout_ms > 0 ? (long)q->timeout_ms : 0L);
        S_SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
        S_SET(CURLOPT_POSTFIELDS, q->body ? (const void *)q->body : (const void *)"");
        if (cc != CURLE_OK) {
            why = curl_easy_strerror(cc);
            goto fail;
        }
        return 0;
    }
    if (was_post)
        curl_easy_reset(e);
    S_SET(CURLOPT_SHARE, s_share);
    S_SET(CURLOPT_CURLU, x->url.u);
    S_SET(CURLOPT_PROTOCOLS_STR, "http,https");
    S_SET(CURLOPT_NOSIGNAL, 1L);
    S_SET(CURLOPT_PRIVATE, x);
    S_SET(CURLOPT_ERRORBUFFER, x->errbuf);
    /* HTTP/1.1, as the AWS SDKs speak to these APIs: one request per
     * connection at a time, so a reset or a GOAWAY fails only its own */
    S_SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    S_SET(CURLOPT_HTTPHEADER, x->headers);
    S_SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    S_SET(CURLOPT_HEADERFUNCTION, s_on_header);
    S_SET(CURLOPT_HEADERDATA, x);
    S_SET(CURLOPT_WRITEFUNCTION, s_on_body);
    S_SET(CURLOPT_WRITEDATA, x);
    S_SET(CURLOPT_CONNECTTIMEOUT_MS, q->connect_timeout_ms > 0 ? (long)q->connect_timeout_ms
                                                               : HTTP_CONNECT_TIMEOUT_MS);
    if (q->timeout_ms > 0)
        S_SET(CURLOPT_TIMEOUT_MS, (long)q->timeout_ms);
    S_SET(CURLOPT_TCP_KEEPALIVE, 1L);
    S_SET(CURLOPT_TCP_KEEPIDLE, HTTP_KEEPIDLE_S);
    S_SET(CURLOPT_TCP_KEEPINTVL, HTTP_KEEPINTVL_S);
    /* a body over 64 KB goes out in slices copied into libcurl's upload
     * buffer (every body over TLS): 16 KiB slices, not 64, cost a few more
     * send calls where 16 parallel PutRecords kept 1 MB of copies (e2e peak
     * RSS -0.9 MB). The receive buffer stays at its 16 KiB: 4 KiB saved
     * nothing measurable. */
    S_SET(CURLOPT_UPLOAD_BUFFERSIZE, HTTP_UPLOAD_BUFFER);
    /* proxies: as read at init (s_read_proxy); "" is none, where libcurl
     * reads no variable */
    if (!s_proxy_env) {
        S_SET(CURLOPT_PROXY, s_proxy[https] ? s_proxy[https] : "");
        S_SET(CURLOPT_NOPROXY, s_no_proxy ? s_no_proxy : "");
    }
    S_SET(CURLOPT_SSL_VERIFYPEER, insecure ? 0L : 1L);
    S_SET(CURLOPT_SSL_VERIFYHOST, insecure ? 0L : 2L);
    if (cc == CURLE_OK && !insecure &&
        fanout_tls_store_apply(e, https, x->errbuf, sizeof x->errbuf) != 0) {
        /* the CA bundle's path and what is wrong with it: no retry helps,
         * as when libcurl failed to load it */
        x->post = 0;
        s_fail(x->resp, FANOUT_HTTP_TLS, x->errbuf);
        x->done = 1;
        return -1;
    }
    if (insecure && s_ca_bundle)
        S_SET(CURLOPT_CAINFO, s_ca_bundle);
    if (is_head) {
        S_SET(CURLOPT_NOBODY, 1L);
    } else if (has_body) {
        /* sent from memory, binary-safe: the size first */
        S_SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
        S_SET(CURLOPT_POSTFIELDS, q->body ? (const void *)q->body : (const void *)"");
        if (strcmp(method, "POST") != 0)
            S_SET(CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        S_SET(CURLOPT_CUSTOMREQUEST, method);
    }
    if (cc != CURLE_OK) {
        why = curl_easy_strerror(cc);
        goto fail;
    }
    return 0;
fail:
    x->post = 0; /* its options may be half set: reset when given back */
    s_fail(x->resp, FANOUT_HTTP_OTHER, why);
    x->done = 1;
    return -1;
}

#undef S_SET

static enum fanout_http_error s_map_error(CURLcode c)
{
    switch (c) {
    case CURLE_OK: return FANOUT_HTTP_OK;
    case CURLE_OPERATION_TIMEDOUT: return FANOUT_HTTP_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT: return FANOUT_HTTP_CONNECT;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: return FANOUT_HTTP_RESET;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION: /* = CURLE_SSL_CACERT */
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED: return FANOUT_HTTP_TLS;
    default: return FANOUT_HTTP_OTHER;
    }
}

static const char *s_error_name(enum fanout_http_error e)
{
    switch (e) {
    case FANOUT_HTTP_OK: return "ok";
    case FANOUT_HTTP_TIMEOUT: return "timeout";
    case FANOUT_HTTP_CONNECT: return "connect";
    case FANOUT_HTTP_RESET: return "reset";
    case FANOUT_HTTP_TLS: return "tls";
    default: return "other";
    }
}

static void s_finish(struct s_xfer *x, CURLcode cc)
{
    struct fanout_http_response *r = x->resp;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_OK) {
        r->status = status;
        r->error = FANOUT_HTTP_OK;
    } else if (x->too_big) {
        char text[128];
        snprintf(text, sizeof text, "response body over %zu bytes (HTTP %ld)",
                 HTTP_MAX_BODY_BYTES, status);
        s_fail(r, FANOUT_HTTP_OTHER, text);
    } else if (x->no_mem) {
        s_fail(r, FANOUT_HTTP_OTHER, "out of memory reading the response");
    } else {
        s_fail(r, s_map_error(cc), x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
    }
    x->done = 1;

    if (fanout_log_enabled(FANOUT_LOG_DEBUG)) {
        curl_off_t us = 0;
        long conns = 0;
        char *path = NULL;
        curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &us);
        curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &conns);
        /* the path only: a query may hold a presigned signature */
        curl_url_get(x->url.u, CURLUPART_PATH, &path, 0);
        const char *m = x->req->method && *x->req->method ? x->req->method : "GET";
        if (r->error == FANOUT_HTTP_OK)
            LOG_DEBUG(HTTP_SCOPE, "%s %s:%ld%s -> %ld in %.1f ms (%s connection)", m,
                      x->url.host, x->url.port, path ? path : "", r->status,
                      (double)us / 1000.0, conns ? "new" : "reused");
        else
            LOG_DEBUG(HTTP_SCOPE, "%s %s:%ld%s failed after %.1f ms: %s (%s)", m,
                      x->url.host, x->url.port, path ? path : "", (double)us / 1000.0,
                      s_error_name(r->error), r->error_text);
        curl_free(path);
    }
}

static void s_release(struct s_xfer *x, CURLM *m)
{
    if (x->added)
        curl_multi_remove_handle(m, x->easy);
    if (x->easy)
        s_give_easy(x->easy, x->post, &x->url);
    s_url_free(&x->url); /* when no handle took it back */
    free(x->headers);    /* one block (s_build_headers) */
}

/* ---- the call -------------------------------------------------------------- */

/* Ready for libcurl transfers: initialised, libcurl loaded and set up.
 * Else -1 with the reason in `err`. */
static int s_curl_ready(char *err, size_t err_len)
{
    pthread_mutex_lock(&s_lock);
    int rc = -1;
    if (s_refs == 0)
        fanout_strlcpy(err, "fanout_http_global_init was not called", err_len);
    else
        rc = s_curl_start(err, err_len);
    pthread_mutex_unlock(&s_lock);
    return rc;
}

/* Take the answers of the finished transfers. */
static void s_collect(CURLM *m, size_t *active)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        struct s_xfer *x = (struct s_xfer *)priv;
        if (x && !x->done) {
            s_finish(x, msg->data.result);
            (*active)--;
        }
    }
}

static int s_act(CURLM *m, curl_socket_t fd, int bits, size_t *active, int *running)
{
    CURLMcode mc = curl_multi_socket_action(m, fd, bits, running);
    if (mc != CURLM_OK) {
        LOG_ERROR(HTTP_SCOPE, "curl_multi_socket_action: %s", curl_multi_strerror(mc));
        return -1;
    }
    s_collect(m, active);
    return 0;
}

/* Run the transfers added to m until none is unanswered. Returns 0, or -1
 * when the loop broke (the multi handle is not reused then). */
static int s_run(CURLM *m, struct s_loop *l, size_t *active)
{
    int running = 0;
    if (*active && s_act(m, CURL_SOCKET_TIMEOUT, 0, active, &running) != 0)
        return -1;
    while (*active) {
        if (l->no_mem) {
            LOG_ERROR(HTTP_SCOPE, "out of memory tracking the sockets of a call");
            return -1;
        }
        if (!running) {
            LOG_ERROR(HTTP_SCOPE, "libcurl finished with %zu requests unanswered", *active);
            return -1;
        }
        long wait = -1;
        if (curl_multi_timeout(m, &wait) != CURLM_OK || wait < 0 || wait > 1000)
            wait = 1000;
        int ready = wait ? poll(l->fds, (nfds_t)l->count, (int)wait) : 0;
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0) {
            LOG_ERROR(HTTP_SCOPE, "poll: %s", strerror(errno));
            return -1;
        }
        if (ready == 0) {
            if (s_act(m, CURL_SOCKET_TIMEOUT, 0, active, &running) != 0)
                return -1;
            continue;
        }
        /* acting on one socket may change the set: take the ready ones
         * first (a call has at most a few dozen sockets) */
        struct pollfd due[64];
        size_t nd = 0;
        for (size_t i = 0; i < l->count && nd < sizeof due / sizeof due[0]; i++)
            if (l->fds[i].revents)
                due[nd++] = l->fds[i];
        for (size_t i = 0; i < nd; i++) {
            short r = due[i].revents;
            int bits = ((r & POLLIN) ? CURL_CSELECT_IN : 0) |
                       ((r & POLLOUT) ? CURL_CSELECT_OUT : 0) |
                       ((r & (POLLERR | POLLHUP | POLLNVAL)) ? CURL_CSELECT_ERR : 0);
            if (s_act(m, due[i].fd, bits, active, &running) != 0)
                return -1;
        }
    }
    return 0;
}

/* ---- raw connections ------------------------------------------------------ */

/* fanout opens the connection itself (net.h: DNS with a cache, a
 * non-blocking connect to each address in turn, TLS on libssl with
 * verification, the connect timeout over all of it), the request goes out
 * and the response comes in framed by http1.c, every connection of a call
 * waited on by one poll(2), connecting or not. libcurl is not loaded for
 * them (its dependency tree was 4 MB resident). libcurl's own transfer
 * cost ~85 K instructions a request (its header writer formats one byte
 * at a time) and two zero-timeout polls (a liveness check before reusing
 * a connection, a check after sending); here a request is one send, one
 * poll and one receive, plus one receive to check an idle connection
 * before its reuse. Used only when no proxy applies (with a proxy, the
 * libcurl transfers above). */

/* A body up to this size goes out with the head, in one send */
#define HTTP_INLINE_BODY ((size_t)16 * 1024)
#define HTTP_RECV_BUFFER ((size_t)16 * 1024)

struct s_conn {
    struct fanout_net_conn *net;
    int fd; /* once connected */
    char host[HTTP_HOST_LEN];
    long port;
    int https, insecure;
    int reused; /* came from the pool: it had carried a request */
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_conn_close(struct s_conn *c)
{
    if (!c)
        return;
    fanout_net_close(c->net);
    free(c);
    atomic_fetch_sub(&s_raw_open, 1);
}

/* The most recent idle connection to that place, out of the pool and not
 * checked yet (s_conn_quiet). NULL: none. */
static struct s_conn *s_conn_pick(const char *host, long port, int https, int insecure)
{
    struct s_conn *c = NULL;
    pthread_mutex_lock(&s_lock);
    for (size_t i = s_idle_conn_count; i-- > 0;) {
        struct s_conn *k = s_idle_conns[i];
        if (k->port == port && k->https == https && k->insecure == insecure &&
            strcasecmp(k->host, host) == 0) {
            c = k;
            memmove(&s_idle_conns[i], &s_idle_conns[i + 1],
                    (s_idle_conn_count - i - 1) * sizeof c);
            s_idle_conn_count--;
            break;
        }
    }
    pthread_mutex_unlock(&s_lock);
    return c;
}

/* An idle connection may carry a request when one non-blocking receive
 * finds nothing to read: anything read is an answer nobody asked for, or
 * the server's close. Else it is closed (0). */
static int s_conn_quiet(struct s_conn *c)
{
    char b;
    size_t got = 0;
    struct fanout_net_error err;
    if (fanout_net_recv(c->net, &b, 1, &got, &err) == FANOUT_NET_AGAIN) {
        c->reused = 1;
        return 1;
    }
    LOG_DEBUG(HTTP_SCOPE, "idle connection to %s:%ld %s: not reused", c->host, c->port,
              got ? "had unasked data" : "closed");
    s_conn_close(c);
    return 0;
}

/* Whether the TLS layer of an idle connection may hold bytes its socket no
 * longer shows (read from it, not handed out): then a quiet socket proves
 * nothing. 0 only when OpenSSL says it holds none. */
static int s_conn_tls_holds(struct s_conn *c)
{
    return fanout_net_pending(c->net);
}

/* The most recent idle connection to that place, checked (s_conn_quiet).
 * NULL: none. */
static struct s_conn *s_conn_take(const char *host, long port, int https, int insecure)
{
    struct s_conn *c;
    while ((c = s_conn_pick(host, port, https, insecure)) != NULL)
        if (s_conn_quiet(c))
            return c;
    return NULL;
}

static void s_conn_give(struct s_conn *c)
{
    struct s_conn *drop = NULL;
    pthread_mutex_lock(&s_lock);
    if (s_refs == 0) {
        drop = c;
    } else {
        if (s_idle_conn_count >= s_raw_budget) {
            drop = s_idle_conns[0];
            memmove(&s_idle_conns[0], &s_idle_conns[1], (s_idle_conn_count - 1) * sizeof c);
            s_idle_conn_count--;
        }
        s_idle_conns[s_idle_conn_count++] = c;
    }
    pthread_mutex_unlock(&s_lock);
    s_conn_close(drop);
}

/* Where a URL goes, when it is plain enough for the raw path: http or
 * https, a host name or address without user info, a port, and a path
 * and query of visible ASCII without dot segments (libcurl would change
 * those). Anything else takes the libcurl path, which refuses or
 * normalises it as before. */
struct s_target {
    int https;
    char host[HTTP_HOST_LEN];
    long port;
    char host_header[HTTP_HOST_LEN + 16];
    size_t host_header_len;
    const char *path; /* path and query, up to any fragment */
    size_t path_len;
    size_t log_len; /* the path without its query */
};

static int s_split_target(const char *url, struct s_target *t)
{
    const char *p;
    if (strncmp(url, "http://", 7) == 0) {
        t->https = 0;
        p = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        t->https = 1;
        p = url + 8;
    } else {
        return -1;
    }
    const char *auth = p;
    size_t an = strcspn(p, "/?#");
    const char *host = auth, *colon = NULL;
    size_t hn;
    if (an && *auth == '[') {
        const char *close = memchr(auth, ']', an);
        if (!close)
            return -1;
        host = auth + 1;
        hn = (size_t)(close - host);
        for (size_t i = 0; i < hn; i++)
            if (!strchr("0123456789abcdefABCDEF:.", host[i]))
                return -1;
        if (close + 1 < auth + an) {
            if (close[1] != ':')
                return -1;
            colon = close + 1;
        }
    } else {
        colon = memchr(auth, ':', an);
        hn = colon ? (size_t)(colon - auth) : an;
        for (size_t i = 0; i < hn; i++) {
            char c = host[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
                return -1;
        }
    }
    if (!hn || hn >= sizeof t->host)
        return -1;
    memcpy(t->host, host, hn);
    t->host[hn] = 0;
    /* "[...]" holds an IPv6 address, nothing else; a host of digits and
     * dots alone is an IPv4 address in its one plain form ("127.1",
     * "010.0.0.1" and "1.2.3.4." are libcurl's to read, or refuse): the
     * certificate is checked against the address, not against a name */
    unsigned char a6[16];
    if (host != auth
            ? inet_pton(AF_INET6, t->host, a6) != 1
            : strspn(t->host, "0123456789.") == hn && inet_pton(AF_INET, t->host, a6) != 1)
        return -1;
    long port = t->https ? 443 : 80;
    if (colon) {
        const char *d = colon + 1, *end = auth + an;
        if (d == end || *d == '0' || end - d > 5)
            return -1;
        port = 0;
        for (; d < end; d++) {
            if (*d < '0' || *d > '9')
                return -1;
            port = port * 10 + (*d - '0');
        }
        if (port > 65535)
            return -1;
    }
    t->port = port;
    /* Host as libcurl writes it: the port only when not the scheme's */
    size_t hostpart = colon ? (size_t)(colon - auth) : an;
    if (port == (t->https ? 443 : 80))
        t->host_header_len = (size_t)snprintf(t->host_header, sizeof t->host_header, "%.*s",
                                              (int)hostpart, auth);
    else
        t->host_header_len = (size_t)snprintf(t->host_header, sizeof t->host_header,
                                              "%.*s:%ld", (int)hostpart, auth, port);
    p = auth + an;
    if (*p != '/')
        return -1; /* "" or "?q": libcurl adds the "/" */
    size_t pn = strcspn(p, "#");
    size_t qn = strcspn(p, "?#");
    for (size_t i = 0; i < pn; i++)
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
            return -1;
    for (size_t i = 0; i + 1 < qn; i++)
        if (p[i] == '/' && p[i + 1] == '.')
            return -1;
    t->path = p;
    t->path_len = pn;
    t->log_len = qn;
    return 0;
}

enum s_phase { S_CONNECTING, S_SENDING, S_RECEIVING, S_FINISHED };

/* One request of a call on a raw connection */
struct s_raw {
    const struct fanout_http_request *req;
    struct fanout_http_response *resp;
    struct s_target t;
    const char *method;
    int is_head, insecure;
    struct s_conn *c;
    enum s_phase phase;
    struct fanout_sbuf out;  /* the head, and a small body */
    const uint8_t *body;     /* a big body, sent after `out` */
    size_t body_len, sent;   /* of out, then of body */
    int retried;             /* once, on a fresh connection */
    int fresh;               /* the connection was opened for this request */
    int resumed;             /* ... with a TLS session resumed */
    int64_t start, deadline; /* ms; deadline 0: none */
    struct fanout_http1_parser parser;
};

static void s_raw_log(struct s_raw *x)
{
    if (!fanout_log_enabled(FANOUT_LOG_DEBUG))
        return;
    struct fanout_http_response *r = x->resp;
    double ms = (double)(s_now_ms() - x->start);
    if (r->error == FANOUT_HTTP_OK)
        LOG_DEBUG(HTTP_SCOPE, "%s %s:%ld%.*s -> %ld in %.1f ms (%s connection)", x->method,
                  x->t.host, x->t.port, (int)x->t.log_len, x->t.path, r->status, ms,
                  !x->fresh    ? "reused"
                  : x->resumed ? "new, TLS session resumed"
                               : "new");
    else
        LOG_DEBUG(HTTP_SCOPE, "%s %s:%ld%.*s failed after %.1f ms: %s (%s)", x->method,
                  x->t.host, x->t.port, (int)x->t.log_len, x->t.path, ms,
                  s_error_name(r->error), r->error_text);
}

/* The request is over: its connection back to the pool when it may carry
 * another request, else closed. */
static void s_raw_end(struct s_raw *x, enum fanout_http_error e, const char *why, int keep)
{
    if (e != FANOUT_HTTP_OK) {
        s_fail(x->resp, e, why);
        keep = 0;
    }
    if (x->c) {
        if (keep)
            s_conn_give(x->c);
        else
            s_conn_close(x->c);
        x->c = NULL;
    }
    x->phase = S_FINISHED;
    s_raw_log(x);
}

/* A new connection for x, connecting (fanout_net_open). */
static int s_raw_connect(struct s_raw *x)
{
    /* over the budget: the least recently used idle connection goes */
    struct s_conn *old = NULL;
    pthread_mutex_lock(&s_lock);
    if (atomic_load(&s_raw_open) >= s_raw_budget && s_idle_conn_count) {
        old = s_idle_conns[0];
        memmove(&s_idle_conns[0], &s_idle_conns[1], (s_idle_conn_count - 1) * sizeof old);
        s_idle_conn_count--;
    }
    pthread_mutex_unlock(&s_lock);
    s_conn_close(old);
    struct s_conn *c = calloc(1, sizeof *c);
    if (!c) {
        s_raw_end(x, FANOUT_HTTP_OTHER, "out of memory", 0);
        return -1;
    }
    atomic_fetch_add(&s_raw_open, 1);
    x->c = c;
    x->fresh = 1;
    c->fd = -1;
    fanout_strlcpy(c->host, x->t.host, sizeof c->host);
    c->port = x->t.port;
    c->https = x->t.https;
    c->insecure = x->insecure;
    const struct fanout_http_request *q = x->req;
    struct fanout_net_error err;
    c->net = fanout_net_open(
        c->host, c->port, c->https, c->insecure,
        q->connect_timeout_ms > 0 ? q->connect_timeout_ms : HTTP_CONNECT_TIMEOUT_MS, &err);
    if (!c->net) {
        s_raw_end(x, err.kind, err.text, 0);
        return -1;
    }
    x->phase = S_CONNECTING;
    return 0;
}

/* Drive x's connect on the poll's events (0: the timer, or a first try). */
static void s_raw_act(struct s_raw *x, short revents)
{
    struct s_conn *c = x->c;
    struct fanout_net_error err;
    int rc = fanout_net_step(c->net, revents, &err);
    if (rc == FANOUT_NET_FAILED) {
        s_raw_end(x, err.kind, err.text, 0);
    } else if (rc == FANOUT_NET_OK) {
        c->fd = fanout_net_fd(c->net);
        x->resumed = fanout_net_resumed(c->net);
        x->phase = S_SENDING;
    }
}

static void s_raw_retry(struct s_raw *x);
static void s_raw_recv(struct s_raw *x);

/* Send what is left; on CURLE_AGAIN the poll says when to go on. */
static void s_raw_send(struct s_raw *x)
{
    for (;;) {
        const uint8_t *p;
        size_t left;
        if (x->sent < x->out.len) {
            p = x->out.bytes + x->sent;
            left = x->out.len - x->sent;
        } else if (x->sent - x->out.len < x->body_len) {
            p = x->body + (x->sent - x->out.len);
            left = x->body_len - (x->sent - x->out.len);
        } else {
            x->phase = S_RECEIVING;
            return;
        }
        size_t n = 0;
        struct fanout_net_error err;
        int rc = fanout_net_send(x->c->net, p, left, &n, &err);
        if (rc == FANOUT_NET_AGAIN)
            return;
        if (rc != FANOUT_NET_OK) {
            if (x->c->reused && !x->retried && !x->parser.got_bytes) {
                s_raw_retry(x);
                return;
            }
            /* a server may answer, then close, before reading all of the
             * request (a 413 to a big body): its whole answer is the
             * request's, as libcurl reads it */
            s_raw_recv(x);
            if (x->phase != S_FINISHED)
                s_raw_end(x, err.kind, err.text, 0);
            return;
        }
        x->sent += n;
    }
}

/* Read what came and frame it; stops at CURLE_AGAIN or the end. Also
 * while sending: a server may answer early (and stop reading). */
static void s_raw_recv(struct s_raw *x)
{
    uint8_t buf[HTTP_RECV_BUFFER];
    struct fanout_http1_parser *p = &x->parser;
    for (;;) {
        size_t n = 0;
        struct fanout_net_error err;
        int rc = fanout_net_recv(x->c->net, buf, sizeof buf, &n, &err);
        if (rc == FANOUT_NET_AGAIN)
            return;
        if (rc != FANOUT_NET_OK || n == 0) {
            if (x->c->reused && !p->got_bytes && !x->retried) {
                s_raw_retry(x); /* closed while idle: once more, fresh */
                return;
            }
            if (rc != FANOUT_NET_OK) {
                s_raw_end(x, err.kind, err.text, 0);
                return;
            }
            fanout_http1_eof(p, fanout_net_close_trusted(x->c->net));
            if (p->state == FANOUT_HTTP1_FAILED) {
                /* named: which server's answer was cut */
                char text[HTTP_HOST_LEN + sizeof p->why + 48]; /* s_fail cuts it */
                snprintf(text, sizeof text, "answer from %s:%ld: %s", x->c->host,
                         x->c->port, p->why);
                s_raw_end(x, p->error, text, 0);
                return;
            }
        } else {
            size_t used = fanout_http1_feed(p, buf, n);
            if (p->state == FANOUT_HTTP1_DONE && used < n)
                p->keep_alive = 0; /* more than the answer: never reused */
        }
        if (p->state == FANOUT_HTTP1_FAILED) {
            s_raw_end(x, p->error, p->why, 0);
            return;
        }
        if (p->state == FANOUT_HTTP1_DONE) {
            /* answered while sending: the rest of the request would be
             * read as the next one's start */
            s_raw_end(x, FANOUT_HTTP_OK, NULL, p->keep_alive && x->phase == S_RECEIVING);
            return;
        }
    }
}

static void s_raw_reset(struct s_raw *x)
{
    fanout_http1_parser_free(&x->parser);
    fanout_http1_parser_init(&x->parser, x->resp, x->is_head);
    x->sent = 0;
    x->fresh = 0;
    x->resumed = 0;
}

/* Start (or start again) on a connection: a checked idle one, else new. */
static void s_raw_start(struct s_raw *x, int fresh_only)
{
    s_raw_reset(x);
    x->c = fresh_only ? NULL : s_conn_take(x->t.host, x->t.port, x->t.https, x->insecure);
    if (x->c) {
        x->phase = S_SENDING;
        s_raw_send(x);
        return;
    }
    if (s_raw_connect(x) != 0)
        return;
    s_raw_act(x, 0);
    if (x->phase == S_SENDING) /* connected at once */
        s_raw_send(x);
}

static void s_raw_retry(struct s_raw *x)
{
    LOG_DEBUG(HTTP_SCOPE, "%s %s:%ld%.*s: the reused connection was closed, retrying",
              x->method, x->t.host, x->t.port, (int)x->t.log_len, x->t.path);
    s_conn_close(x->c);
    x->c = NULL;
    x->retried = 1;
    s_raw_start(x, 1);
}

/* Check and write x's request; 0 when it may go, else the response says why. */
static int s_raw_prepare(struct s_raw *x)
{
    const struct fanout_http_request *q = x->req;
    const char *method = q->method && *q->method ? q->method : "GET";
    const char *why = NULL;
    x->method = method;
    x->start = s_now_ms();
    x->deadline = q->timeout_ms > 0 ? x->start + q->timeout_ms : 0;
    x->is_head = strcmp(method, "HEAD") == 0;
    int has_body =
        !x->is_head && (q->body_len > 0 || q->body || strcmp(method, "POST") == 0 ||
                        strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0);
    if (!fanout_http1_is_token(method))
        why = "invalid method";
    else if (q->body_len > 0 && !q->body)
        why = "request body length without a body";
    else if (fanout_http1_write_head(&x->out, method, x->t.path, x->t.path_len,
                                     x->t.host_header, x->t.host_header_len, q->headers,
                                     q->header_count, has_body, q->body_len, &why) == 0) {
        if (!has_body || !q->body_len)
            return 0;
        if (q->body_len > HTTP_INLINE_BODY) {
            x->body = q->body;
            x->body_len = q->body_len;
            return 0;
        }
        if (fanout_sbuf_put(&x->out, q->body, q->body_len) == 0)
            return 0;
        why = "out of memory";
    }
    fanout_http_response_clean_up(x->resp);
    s_raw_end(x, FANOUT_HTTP_OTHER, why, 0);
    return -1;
}

/* The timeout's words, as libcurl's */
static void s_raw_timeout(struct s_raw *x)
{
    char text[128];
    snprintf(text, sizeof text,
             "Operation timed out after %lld milliseconds with %zu bytes received",
             (long long)(s_now_ms() - x->start), x->resp->body.len);
    s_raw_end(x, FANOUT_HTTP_TIMEOUT, text, 0);
}

/* Start the requests xs[0..n). Idle connections for them are checked
 * together: one poll(2) with no wait over their sockets finds those with
 * anything to read (an unasked answer, the server's close, a TLS record),
 * and only those, and those whose TLS layer may hold bytes, take
 * s_conn_quiet's receive: as strong a check as one receive each, in one
 * system call instead of one per request. */
static void s_raw_start_all(struct s_raw *xs, size_t n)
{
    struct pollfd local_fds[S_LOCAL_XFERS];
    size_t local_owner[S_LOCAL_XFERS];
    struct pollfd *fds = local_fds;
    size_t *owner = local_owner;
    if (n > S_LOCAL_XFERS) {
        fds = malloc(n * sizeof *fds);
        owner = malloc(n * sizeof *owner);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct s_raw *x = &xs[i];
        if (s_raw_prepare(x) != 0)
            continue;
        s_raw_reset(x);
        if (n > 1 && fds && owner) {
            x->c = s_conn_pick(x->t.host, x->t.port, x->t.https, x->insecure);
            if (x->c) {
                fds[k] = (struct pollfd){.fd = x->c->fd, .events = POLLIN};
                owner[k++] = i;
            }
        }
    }
    if (k > 0) {
        int ready = poll(fds, (nfds_t)k, 0);
        for (size_t j = 0; j < k; j++) {
            struct s_raw *x = &xs[owner[j]];
            if (ready == 0 || (ready > 0 && !fds[j].revents)) {
                if (!s_conn_tls_holds(x->c)) {
                    x->c->reused = 1;
                    continue;
                }
            }
            if (!s_conn_quiet(x->c))
                x->c = NULL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct s_raw *x = &xs[i];
        if (x->phase == S_FINISHED)
            continue;
        if (x->c) {
            x->phase = S_SENDING;
            s_raw_send(x);
        } else {
            s_raw_start(x, 0);
        }
    }
    if (fds != local_fds)
        free(fds);
    if (owner != local_owner)
        free(owner);
}

/* Run the raw requests xs[0..n) to the end. */
static void s_raw_run(struct s_raw *xs, size_t n)
{
    size_t cap = 0;
    struct pollfd *fds = NULL;
    size_t *owner = NULL;
    s_raw_start_all(xs, n);
    for (;;) {
        int64_t now = s_now_ms();
        int64_t wake = -1;
        size_t nf = 0, live = 0;
        for (size_t i = 0; i < n; i++) {
            struct s_raw *x = &xs[i];
            if (x->phase == S_FINISHED)
                continue;
            if (x->deadline && now >= x->deadline) {
                s_raw_timeout(x);
                continue;
            }
            if (x->phase == S_CONNECTING && now >= fanout_net_timer_ms(x->c->net)) {
                s_raw_act(x, 0);
                if (x->phase == S_SENDING)
                    s_raw_send(x);
                if (x->phase == S_FINISHED)
                    continue;
            }
            live++;
            size_t want = 1;
            if (nf + want > cap) {
                size_t ncap = (nf + want) * 2 + 16;
                struct pollfd *f = realloc(fds, ncap * sizeof *f);
                size_t *o = f ? realloc(owner, ncap * sizeof *o) : NULL;
                if (f)
                    fds = f;
                if (!o) {
                    s_raw_end(x, FANOUT_HTTP_OTHER, "out of memory", 0);
                    live--;
                    continue;
                }
                owner = o;
                cap = ncap;
            }
            /* TLS may need the socket writable to read, and the other
             * way round: the connection's own wish joins the phase's */
            short ev = fanout_net_events(x->c->net);
            fds[nf].fd = fanout_net_fd(x->c->net);
            fds[nf].events = x->phase == S_CONNECTING ? ev
                             : x->phase == S_SENDING  ? (short)(POLLOUT | POLLIN | ev)
                                                      : (short)(POLLIN | ev);
            fds[nf].revents = 0;
            owner[nf++] = i;
            if (x->phase == S_CONNECTING) {
                int64_t t = fanout_net_timer_ms(x->c->net);
                if (wake < 0 || t < wake)
                    wake = t;
            }
            if (x->deadline && (wake < 0 || x->deadline < wake))
                wake = x->deadline;
        }
        if (!live)
            break;
        int64_t wait = wake < 0 ? 1000 : wake - now;
        if (wait > 1000)
            wait = 1000;
        if (wait < 0)
            wait = 0;
        int ready = poll(fds, (nfds_t)nf, (int)wait);
        if (ready < 0 && errno != EINTR) {
            char text[96];
            snprintf(text, sizeof text, "poll: %s", strerror(errno));
            for (size_t i = 0; i < n; i++)
                if (xs[i].phase != S_FINISHED)
                    s_raw_end(&xs[i], FANOUT_HTTP_OTHER, text, 0);
            break;
        }
        for (size_t k = 0; ready > 0 && k < nf; k++) {
            short r = fds[k].revents;
            if (!r)
                continue;
            struct s_raw *x = &xs[owner[k]];
            if (x->phase == S_CONNECTING) {
                s_raw_act(x, r);
                if (x->phase == S_SENDING)
                    s_raw_send(x);
            } else if (x->phase == S_SENDING) {
                if (r & POLLIN)
                    s_raw_recv(x); /* an early answer */
                if (x->phase == S_SENDING)
                    s_raw_send(x);
            } else if (x->phase == S_RECEIVING) {
                s_raw_recv(x);
            }
        }
    }
    free(fds);
    free(owner);
}

/* The requests on libcurl transfers, all on one multi handle of the pool */
static void s_curl_perform(const struct fanout_http_request *const *reqs,
                           struct fanout_http_response *const *resps, size_t n)
{
    char why[sizeof resps[0]->error_text];
    if (s_curl_ready(why, sizeof why) != 0) {
        LOG_ERROR(HTTP_SCOPE, "%s", why);
        for (size_t i = 0; i < n; i++)
            s_fail(resps[i], FANOUT_HTTP_OTHER, why);
        return;
    }
    /* a call of a few requests keeps them on the stack */
    struct s_xfer local[S_LOCAL_XFERS];
    struct s_xfer *xs = n <= S_LOCAL_XFERS ? local : calloc(n, sizeof *xs);
    if (xs == local)
        memset(local, 0, n * sizeof *xs);
    CURLM *m = xs ? s_take_multi() : NULL;
    if (!m) {
        for (size_t i = 0; i < n; i++)
            s_fail(resps[i], FANOUT_HTTP_OTHER, "out of memory");
        if (xs != local)
            free(xs);
        return;
    }

    struct s_loop loop;
    loop.fds = loop.local;
    loop.count = 0;
    loop.cap = S_LOOP_FDS;
    loop.no_mem = 0;
    curl_multi_setopt(m, CURLMOPT_SOCKETDATA, &loop);
    size_t active = 0;
    for (size_t i = 0; i < n; i++) {
        struct s_xfer *x = &xs[i];
        x->req = reqs[i];
        x->resp = resps[i];
        if (s_prepare(x) != 0)
            continue;
        if (curl_multi_add_handle(m, x->easy) != CURLM_OK) {
            s_fail(x->resp, FANOUT_HTTP_OTHER, "curl_multi_add_handle failed");
            x->done = 1;
            continue;
        }
        x->added = 1;
        active++;
    }

    /* libcurl enforces each request's timeouts through its timer */
    int broken = s_run(m, &loop, &active) != 0;
    curl_multi_setopt(m, CURLMOPT_SOCKETDATA, NULL);
    if (loop.fds != loop.local)
        free(loop.fds);

    for (size_t i = 0; i < n; i++) {
        if (!xs[i].done)
            s_fail(xs[i].resp, FANOUT_HTTP_OTHER, "the transfer loop failed");
        s_release(&xs[i], m);
    }
    if (broken)
        curl_multi_cleanup(m);
    else
        s_give_multi(m);
    if (xs != local)
        free(xs);
}

void fanout_http_perform(const struct fanout_http_request *const *reqs,
                         struct fanout_http_response *const *resps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fanout_http_response_clean_up(resps[i]);
    if (!n)
        return;
    pthread_mutex_lock(&s_lock);
    int up = s_refs > 0;
    pthread_mutex_unlock(&s_lock);
    if (!up) {
        LOG_ERROR(HTTP_SCOPE, "fanout_http_global_init was not called");
        for (size_t i = 0; i < n; i++)
            s_fail(resps[i], FANOUT_HTTP_OTHER, "fanout_http_global_init was not called");
        return;
    }
    /* raw connections where no proxy applies and the URL is plain; the
     * rest (proxies, URLs libcurl must parse or refuse) on libcurl */
    struct s_raw local[S_LOCAL_XFERS];
    const struct fanout_http_request *local_q[S_LOCAL_XFERS];
    struct fanout_http_response *local_r[S_LOCAL_XFERS];
    struct s_raw *raw = local;
    const struct fanout_http_request **cq = local_q;
    struct fanout_http_response **cr = local_r;
    if (n > S_LOCAL_XFERS) {
        raw = malloc(n * sizeof *raw);
        cq = malloc(n * sizeof *cq);
        cr = malloc(n * sizeof *cr);
        if (!raw || !cq || !cr) {
            for (size_t i = 0; i < n; i++)
                s_fail(resps[i], FANOUT_HTTP_OTHER, "out of memory");
            free(raw);
            free(cq);
            free(cr);
            return;
        }
    }
    size_t nraw = 0, ncurl = 0;
    pthread_mutex_lock(&s_lock);
    for (size_t i = 0; i < n; i++) {
        const struct fanout_http_request *q = reqs[i];
        struct s_raw *x = &raw[nraw];
        memset(x, 0, sizeof *x);
        if (s_raw_busy < s_raw_budget && q && q->url && !s_proxy_env &&
            s_split_target(q->url, &x->t) == 0 && !s_proxy[x->t.https]) {
            s_raw_busy++;
            x->req = q;
            x->resp = resps[i];
            x->insecure =
                x->t.https && (q->tls_no_verify || s_is_insecure(x->t.host, x->t.port));
            nraw++;
        } else {
            cq[ncurl] = q;
            cr[ncurl++] = resps[i];
        }
    }
    pthread_mutex_unlock(&s_lock);
    if (nraw) {
        s_raw_run(raw, nraw);
        for (size_t i = 0; i < nraw; i++) {
            fanout_sbuf_free(&raw[i].out);
            fanout_http1_parser_free(&raw[i].parser);
        }
        pthread_mutex_lock(&s_lock);
        s_raw_busy -= nraw;
        pthread_mutex_unlock(&s_lock);
    }
    if (ncurl)
        s_curl_perform(cq, cr, ncurl);
    if (raw != local) {
        free(raw);
        free(cq);
        free(cr);
    }
}
