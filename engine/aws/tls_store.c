/* One CA store for every TLS connection: tls_store.h.
 *
 * The raw path's connections (http.c, on libssl loaded by ssl_load.c) take
 * the store with SSL_CTX_set1_cert_store on their SSL_CTX. libcurl's
 * transfers (proxies) take it too when libcurl's TLS is the same OpenSSL:
 * how libcurl 7.88 (lib/vtls/openssl.c) sets up a connection: a new
 * SSL_CTX, then its X509_STORE filled from CURLOPT_CAINFO / CURLOPT_CAPATH
 * (or taken from the multi handle's CA cache), the verification flags set,
 * and only then the application's CURLOPT_SSL_CTX_FUNCTION. With both
 * locations NULL libcurl loads nothing (its store stays empty, and cheap
 * to cache); the callback then swaps in the shared store with
 * SSL_CTX_set1_cert_store, which takes a reference, so a connection
 * outlives a clean-up here. OpenSSL locks an X509_STORE itself: many
 * connections on many threads use one store at once, as libcurl's own
 * cache does.
 *
 * The libcrypto functions come from common/crypto_load.c (the binary does
 * not link libcrypto); for libcurl's connections SSL_CTX_set1_cert_store
 * is looked up in libcurl's own dependency tree (dlsym on libcurl's
 * handle), so it is the libssl libcurl uses, never another one a plugin
 * may have loaded (the raw path's libssl.so.3 is the same object). */
#include "aws/tls_store.h"

#include <dlfcn.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws/curl_load.h"
#include "common/log.h"
#include "common/util.h"

#define TLS_SCOPE "tls"

enum s_state { S_NOT_LOADED = 0, S_LOADED = 1, S_FAILED = -1 };

/* Written by fanout_tls_store_setup (and s_set1_cert_store by
 * fanout_tls_store_curl_setup), read-only until the clean-up. */
static void (*s_set1_cert_store)(SSL_CTX *, X509_STORE *); /* NULL: not used */
static char *s_ca_bundle;                                  /* FANOUT_CA_BUNDLE, a copy */
static const char *s_file, *s_path, *s_source;

/* s_lock serialises the load; s_state is read without it (acquire) once
 * it is no longer S_NOT_LOADED, and s_store and s_error are then fixed. */
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static int s_state;
static X509_STORE *s_store;
static char s_error[256];

/* Is libcurl's TLS the OpenSSL 3 the engine's libcrypto is? Its version
 * string says "OpenSSL/3.0.22"; a libcurl built with another backend, or
 * against another OpenSSL, keeps loading its CA itself. */
static int s_same_openssl(const curl_version_info_data *v)
{
    unsigned major, minor, patch;
    if (!v || !v->ssl_version ||
        sscanf(v->ssl_version, "OpenSSL/%u.%u.%u", &major, &minor, &patch) != 3) {
        LOG_DEBUG(TLS_SCOPE, "libcurl's TLS is %s: it loads its CA itself",
                  v && v->ssl_version ? v->ssl_version : "unknown");
        return 0;
    }
    unsigned long n = OpenSSL_version_num(); /* 0xMNN00PP0 */
    if (major < 3 || (n >> 28 & 0xf) != major || (n >> 20 & 0xff) != minor ||
        (n >> 4 & 0xff) != patch) {
        LOG_DEBUG(
            TLS_SCOPE,
            "libcurl's TLS is %s, libcrypto is version %#lx: libcurl loads its CA itself",
            v->ssl_version, n);
        return 0;
    }
    return 1;
}

void fanout_tls_store_setup(const char *ca_bundle)
{
    s_set1_cert_store = NULL;
    s_ca_bundle = ca_bundle ? strdup(ca_bundle) : NULL;
    if (ca_bundle && !s_ca_bundle) { /* verified requests fail, never unverified */
        fanout_strlcpy(s_error, "out of memory copying FANOUT_CA_BUNDLE", sizeof s_error);
        __atomic_store_n(&s_state, S_FAILED, __ATOMIC_RELEASE);
        return;
    }
    /* what libcurl would load: FANOUT_CA_BUNDLE or its built-in bundle,
     * and its built-in directory either way (recorded at build time from
     * the libcurl built against: FANOUT_CURL_CAINFO, FANOUT_CURL_CAPATH;
     * whether they exist here is seen at the load, s_defaults) */
    s_path = FANOUT_CURL_CAPATH[0] ? FANOUT_CURL_CAPATH : NULL;
    s_file = s_ca_bundle ? s_ca_bundle : FANOUT_CURL_CAINFO[0] ? FANOUT_CURL_CAINFO : NULL;
    s_source = ca_bundle ? "FANOUT_CA_BUNDLE" : "libcurl's default";
}

void fanout_tls_store_curl_setup(void)
{
    s_set1_cert_store = NULL;
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    if (!s_same_openssl(v))
        return;
    void *curl = dlopen(FANOUT_CURL_LIBRARY, RTLD_NOW | RTLD_NOLOAD);
    void *sym = curl ? dlsym(curl, "SSL_CTX_set1_cert_store") : NULL;
    if (curl)
        dlclose(curl); /* curl_load.c's handle keeps it loaded */
    if (!sym) {
        LOG_DEBUG(TLS_SCOPE,
                  "no SSL_CTX_set1_cert_store in %s's libssl: it loads its CA itself",
                  FANOUT_CURL_LIBRARY);
        return;
    }
    *(void **)&s_set1_cert_store = sym;
}

/* The reason of the last libcrypto failure, or the file's own. */
static void s_reason(const char *file, char *out, size_t out_len)
{
    if (file && access(file, R_OK) != 0) {
        fanout_strlcpy(out, strerror(errno), out_len);
        return;
    }
    unsigned long e = ERR_peek_error();
    if (e)
        ERR_error_string_n(e, out, out_len);
    else
        fanout_strlcpy(out, "no certificate loaded", out_len);
}

/* Without FANOUT_CA_BUNDLE: libcurl's built-in bundle is the build
 * machine's. Where it is not on this machine (a binary built on Debian
 * runs on Lambda's Amazon Linux, whose libcurl has another), OpenSSL's
 * default paths are this machine's OpenSSL's, the system store libcurl
 * would read here too. */
static void s_defaults(void)
{
    if (s_ca_bundle || !s_file || access(s_file, R_OK) == 0)
        return;
    LOG_DEBUG(TLS_SCOPE,
              "no %s here (libcurl's default at build time): OpenSSL's default paths",
              s_file);
    s_file = s_path = NULL;
}

/* Fill a new store; called once, with s_lock held. */
static void s_load(void)
{
    s_defaults();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char why[160];
    ERR_clear_error();
    X509_STORE *st = X509_STORE_new();
    if (!st) {
        snprintf(s_error, sizeof s_error, "cannot create the CA store: out of memory");
        goto fail;
    }
    if (s_file && !X509_STORE_load_file(st, s_file)) {
        s_reason(s_file, why, sizeof why);
        snprintf(s_error, sizeof s_error, "cannot load the CA bundle %s (%s): %s", s_file,
                 s_source, why);
        goto fail;
    }
    if (s_path && !X509_STORE_load_path(st, s_path)) {
        s_reason(s_path, why, sizeof why);
        snprintf(s_error, sizeof s_error, "cannot use the CA directory %s (%s): %s", s_path,
                 "libcurl's default", why);
        goto fail;
    }
    if (!s_file && !s_path && !X509_STORE_set_default_paths(st)) {
        s_reason(NULL, why, sizeof why);
        snprintf(s_error, sizeof s_error,
                 "cannot load OpenSSL's default CA paths (SSL_CERT_FILE, SSL_CERT_DIR): %s",
                 why);
        goto fail;
    }
    /* as libcurl sets them on its own store for a verified peer */
    X509_STORE_set_flags(st, X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_PARTIAL_CHAIN);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    LOG_DEBUG(
        TLS_SCOPE,
        "CA store loaded once for all connections: %d certificates from %s in %.1f ms",
        sk_X509_OBJECT_num(X509_STORE_get0_objects(st)),
        s_file   ? s_file
        : s_path ? s_path
                 : "OpenSSL's default paths",
        (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    s_store = st;
    __atomic_store_n(&s_state, S_LOADED, __ATOMIC_RELEASE);
    return;
fail:
    ERR_clear_error();
    X509_STORE_free(st);
    LOG_ERROR(TLS_SCOPE, "%s", s_error);
    __atomic_store_n(&s_state, S_FAILED, __ATOMIC_RELEASE);
}

/* The store, loaded on first use; NULL when it could not be (s_error). */
static X509_STORE *s_get(void)
{
    int st = __atomic_load_n(&s_state, __ATOMIC_ACQUIRE);
    if (st == S_NOT_LOADED) {
        pthread_mutex_lock(&s_lock);
        if (s_state == S_NOT_LOADED)
            s_load();
        st = s_state;
        pthread_mutex_unlock(&s_lock);
    }
    return st == S_LOADED ? s_store : NULL;
}

/* CURLOPT_SSL_CTX_FUNCTION: every new connection takes the shared store. */
static CURLcode s_on_ssl_ctx(CURL *e, void *ssl_ctx, void *ud)
{
    (void)e;
    (void)ud;
    X509_STORE *st = s_get();
    if (!st)
        return CURLE_SSL_CACERT_BADFILE; /* logged by s_load */
    s_set1_cert_store((SSL_CTX *)ssl_ctx, st);
    return CURLE_OK;
}

int fanout_tls_store_apply(CURL *e, int https, char *err, size_t err_len)
{
    CURLcode cc = CURLE_OK;
    if (s_set1_cert_store) {
        if (https && !s_get()) {
            fanout_strlcpy(err, s_error, err_len);
            return -1;
        }
        /* the callback first: without it, libcurl keeps its own CA */
        if (curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, s_on_ssl_ctx) == CURLE_OK) {
            cc = curl_easy_setopt(e, CURLOPT_CAINFO, (const char *)NULL);
            if (cc == CURLE_OK)
                cc = curl_easy_setopt(e, CURLOPT_CAPATH, (const char *)NULL);
            goto done;
        }
    }
    if (__atomic_load_n(&s_state, __ATOMIC_ACQUIRE) == S_FAILED) {
        fanout_strlcpy(err, s_error, err_len);
        return -1;
    }
    if (s_ca_bundle)
        cc = curl_easy_setopt(e, CURLOPT_CAINFO, s_ca_bundle);
done:
    if (cc != CURLE_OK) {
        fanout_strlcpy(err, curl_easy_strerror(cc), err_len);
        return -1;
    }
    return 0;
}

X509_STORE *fanout_tls_store_get(char *err, size_t err_len)
{
    X509_STORE *st = s_get();
    if (!st)
        fanout_strlcpy(err, s_error, err_len);
    return st;
}

void fanout_tls_store_cleanup(void)
{
    pthread_mutex_lock(&s_lock);
    X509_STORE_free(s_store);
    s_store = NULL;
    s_error[0] = 0;
    __atomic_store_n(&s_state, S_NOT_LOADED, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s_lock);
    s_set1_cert_store = NULL;
    free(s_ca_bundle);
    s_ca_bundle = NULL;
    s_file = s_path = s_source = NULL;
}
