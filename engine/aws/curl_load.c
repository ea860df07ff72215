/* libcurl on first use: curl_load.h. Each forward below has libcurl's own
 * prototype (the parentheses around the names keep curl.h's type-checking
 * macros out), so http.c calls them as it would call libcurl.
 *
 * The variadic setters take one argument whose type libcurl derives from
 * the option number (CURLOPTTYPE_* ranges; for the share object, the
 * option itself): read here the same way and passed on with that type. */
#include "aws/curl_load.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "common/dlopen_note.h"
#include "common/util.h"

FANOUT_DLOPEN_NOTE(s_dlopen_note, "aws-http", "HTTP for AWS calls", FANOUT_CURL_LIBRARY);

/* The functions fanout calls: name, return type, parameters. */
#define S_CURL_FUNCTIONS(X)                                                                \
    X(global_init, CURLcode, (long))                                                       \
    X(global_cleanup, void, (void))                                                        \
    X(easy_init, CURL *, (void))                                                           \
    X(easy_cleanup, void, (CURL *))                                                        \
    X(easy_reset, void, (CURL *))                                                          \
    X(easy_setopt, CURLcode, (CURL *, CURLoption, ...))                                    \
    X(easy_getinfo, CURLcode, (CURL *, CURLINFO, ...))                                     \
    X(easy_strerror, const char *, (CURLcode))                                             \
    X(easy_send, CURLcode, (CURL *, const void *, size_t, size_t *))                       \
    X(easy_recv, CURLcode, (CURL *, void *, size_t, size_t *))                             \
    X(free, void, (void *))                                                                \
    X(multi_init, CURLM *, (void))                                                         \
    X(multi_cleanup, CURLMcode, (CURLM *))                                                 \
    X(multi_add_handle, CURLMcode, (CURLM *, CURL *))                                      \
    X(multi_remove_handle, CURLMcode, (CURLM *, CURL *))                                   \
    X(multi_socket_action, CURLMcode, (CURLM *, curl_socket_t, int, int *))                \
    X(multi_timeout, CURLMcode, (CURLM *, long *))                                         \
    X(multi_info_read, CURLMsg *, (CURLM *, int *))                                        \
    X(multi_setopt, CURLMcode, (CURLM *, CURLMoption, ...))                                \
    X(multi_strerror, const char *, (CURLMcode))                                           \
    X(share_init, CURLSH *, (void))                                                        \
    X(share_cleanup, CURLSHcode, (CURLSH *))                                               \
    X(share_setopt, CURLSHcode, (CURLSH *, CURLSHoption, ...))                             \
    X(share_strerror, const char *, (CURLSHcode))                                          \
    X(slist_append, struct curl_slist *, (struct curl_slist *, const char *))              \
    X(slist_free_all, void, (struct curl_slist *))                                         \
    X(url, CURLU *, (void))                                                                \
    X(url_cleanup, void, (CURLU *))                                                        \
    X(url_get, CURLUcode, (CURLU *, CURLUPart, char **, unsigned))                         \
    X(url_set, CURLUcode, (CURLU *, CURLUPart, const char *, unsigned))                    \
    X(version_info, curl_version_info_data *, (CURLversion))

static struct {
#define S_FIELD(name, ret, params) ret(*name) params;
    S_CURL_FUNCTIONS(S_FIELD)
#undef S_FIELD
} s_fn;

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static int s_loaded; /* written once under s_once */
static char s_error[512];

static void s_load(void)
{
    /* RTLD_LOCAL: libcurl's dependencies stay out of the plugins' way. */
    void *lib = dlopen(FANOUT_CURL_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(s_error, sizeof s_error,
                 "cannot load %s (libcurl, needed for HTTP to AWS): %s",
                 FANOUT_CURL_LIBRARY, why ? why : "unknown error");
        return;
    }
    void *sym;
#define S_RESOLVE(name, ret, params)                                                       \
    sym = dlsym(lib, "curl_" #name);                                                       \
    if (!sym) {                                                                            \
        snprintf(s_error, sizeof s_error,                                                  \
                 "%s has no function curl_" #name " (libcurl "                             \
                 "7.83 or later is needed)",                                               \
                 FANOUT_CURL_LIBRARY);                                                     \
        return;                                                                            \
    }                                                                                      \
    *(void **)&s_fn.name = sym;
    S_CURL_FUNCTIONS(S_RESOLVE)
#undef S_RESOLVE
    s_loaded = 1;
}

int fanout_curl_load(char *err, size_t err_len)
{
    pthread_once(&s_once, s_load);
    if (s_loaded)
        return 0;
    if (err && err_len)
        fanout_strlcpy(err, s_error, err_len);
    return -1;
}

static int s_ready(void)
{
    pthread_once(&s_once, s_load);
    return s_loaded;
}

/* ---- the forwards --------------------------------------------------------- */

/* rc = fn(handle, opt, <the one argument in ap>), its type from the option
 * number's CURLOPTTYPE_* range: long, curl_off_t, else a pointer (object,
 * function, blob). */
#define S_PASS_OPTION(rc, fn, handle, opt, ap)                                             \
    do {                                                                                   \
        if ((opt) < CURLOPTTYPE_OBJECTPOINT)                                               \
            rc = fn(handle, opt, va_arg(ap, long));                                        \
        else if ((opt) >= CURLOPTTYPE_OFF_T && (opt) < CURLOPTTYPE_BLOB)                   \
            rc = fn(handle, opt, va_arg(ap, curl_off_t));                                  \
        else                                                                               \
            rc = fn(handle, opt, va_arg(ap, void *));                                      \
    } while (0)

/* getinfo: always a pointer to the value's type. */
#define S_PASS_POINTER(rc, fn, handle, opt, ap) rc = fn(handle, opt, va_arg(ap, void *))

/* The share object: CURLSHOPT_SHARE / UNSHARE take a curl_lock_data (an
 * int), the others (lock functions, user data) a pointer. */
#define S_PASS_SHARE(rc, fn, handle, opt, ap)                                              \
    do {                                                                                   \
        if ((opt) == CURLSHOPT_SHARE || (opt) == CURLSHOPT_UNSHARE)                        \
            rc = fn(handle, opt, va_arg(ap, int));                                         \
        else                                                                               \
            rc = fn(handle, opt, va_arg(ap, void *));                                      \
    } while (0)

/* A variadic forward, defined with libcurl's prototype (curl.h's
 * declaration checks it): `fail` before libcurl is loaded, else the one
 * argument after `opt` read by `pass` and handed to s_fn.name with its
 * type. */
#define S_VARIADIC(ret, name, handle_t, opt_t, fail, pass)                                 \
    ret(curl_##name)(handle_t h, opt_t opt, ...)                                           \
    {                                                                                      \
        if (!s_ready())                                                                    \
            return fail;                                                                   \
        va_list ap;                                                                        \
        va_start(ap, opt);                                                                 \
        ret rc;                                                                            \
        pass(rc, s_fn.name, h, opt, ap);                                                   \
        va_end(ap);                                                                        \
        return rc;                                                                         \
    }

S_VARIADIC(CURLcode, easy_setopt, CURL *, CURLoption, CURLE_FAILED_INIT, S_PASS_OPTION)
S_VARIADIC(CURLcode, easy_getinfo, CURL *, CURLINFO, CURLE_FAILED_INIT, S_PASS_POINTER)
S_VARIADIC(CURLMcode, multi_setopt, CURLM *, CURLMoption, CURLM_INTERNAL_ERROR,
           S_PASS_OPTION)
S_VARIADIC(CURLSHcode, share_setopt, CURLSH *, CURLSHoption, CURLSHE_NOT_BUILT_IN,
           S_PASS_SHARE)

CURLcode(curl_global_init)(long flags)
{
    return s_ready() ? s_fn.global_init(flags) : CURLE_FAILED_INIT;
}

void(curl_global_cleanup)(void)
{
    if (s_ready())
        s_fn.global_cleanup();
}

CURL *(curl_easy_init)(void)
{
    return s_ready() ? s_fn.easy_init() : NULL;
}

void(curl_easy_cleanup)(CURL *h)
{
    if (s_ready())
        s_fn.easy_cleanup(h);
}

void(curl_easy_reset)(CURL *h)
{
    if (s_ready())
        s_fn.easy_reset(h);
}

const char *(curl_easy_strerror)(CURLcode c)
{
    return s_ready() ? s_fn.easy_strerror(c) : s_error;
}

CURLcode(curl_easy_send)(CURL *h, const void *buf, size_t len, size_t *n)
{
    return s_ready() ? s_fn.easy_send(h, buf, len, n) : CURLE_FAILED_INIT;
}

CURLcode(curl_easy_recv)(CURL *h, void *buf, size_t len, size_t *n)
{
    return s_ready() ? s_fn.easy_recv(h, buf, len, n) : CURLE_FAILED_INIT;
}

void(curl_free)(void *p)
{
    if (s_ready())
        s_fn.free(p);
}

CURLM *(curl_multi_init)(void)
{
    return s_ready() ? s_fn.multi_init() : NULL;
}

CURLMcode(curl_multi_cleanup)(CURLM *m)
{
    return s_ready() ? s_fn.multi_cleanup(m) : CURLM_INTERNAL_ERROR;
}

CURLMcode(curl_multi_add_handle)(CURLM *m, CURL *h)
{
    return s_ready() ? s_fn.multi_add_handle(m, h) : CURLM_INTERNAL_ERROR;
}

CURLMcode(curl_multi_remove_handle)(CURLM *m, CURL *h)
{
    return s_ready() ? s_fn.multi_remove_handle(m, h) : CURLM_INTERNAL_ERROR;
}

CURLMcode(curl_multi_socket_action)(CURLM *m, curl_socket_t s, int ev_bitmask, int *running)
{
    return s_ready() ? s_fn.multi_socket_action(m, s, ev_bitmask, running)
                     : CURLM_INTERNAL_ERROR;
}

CURLMcode(curl_multi_timeout)(CURLM *m, long *timeout_ms)
{
    return s_ready() ? s_fn.multi_timeout(m, timeout_ms) : CURLM_INTERNAL_ERROR;
}

CURLMsg *(curl_multi_info_read)(CURLM *m, int *left)
{
    return s_ready() ? s_fn.multi_info_read(m, left) : NULL;
}

const char *(curl_multi_strerror)(CURLMcode c)
{
    return s_ready() ? s_fn.multi_strerror(c) : s_error;
}

CURLSH *(curl_share_init)(void)
{
    return s_ready() ? s_fn.share_init() : NULL;
}

CURLSHcode(curl_share_cleanup)(CURLSH *sh)
{
    return s_ready() ? s_fn.share_cleanup(sh) : CURLSHE_NOT_BUILT_IN;
}

const char *(curl_share_strerror)(CURLSHcode c)
{
    return s_ready() ? s_fn.share_strerror(c) : s_error;
}

curl_version_info_data *(curl_version_info)(CURLversion v)
{
    return s_ready() ? s_fn.version_info(v) : NULL;
}

struct curl_slist *(curl_slist_append)(struct curl_slist *list, const char *s)
{
    return s_ready() ? s_fn.slist_append(list, s) : NULL;
}

void(curl_slist_free_all)(struct curl_slist *list)
{
    if (s_ready())
        s_fn.slist_free_all(list);
}

CURLU *(curl_url)(void)
{
    return s_ready() ? s_fn.url() : NULL;
}

void(curl_url_cleanup)(CURLU *u)
{
    if (s_ready())
        s_fn.url_cleanup(u);
}

CURLUcode(curl_url_get)(CURLU *u, CURLUPart what, char **part, unsigned flags)
{
    return s_ready() ? s_fn.url_get(u, what, part, flags) : CURLUE_OUT_OF_MEMORY;
}

CURLUcode(curl_url_set)(CURLU *u, CURLUPart what, const char *part, unsigned flags)
{
    return s_ready() ? s_fn.url_set(u, what, part, flags) : CURLUE_OUT_OF_MEMORY;
}
