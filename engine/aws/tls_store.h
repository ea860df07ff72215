/* One CA store for every TLS connection of the process.
 *
 * libcurl 7.88 with OpenSSL loads the CA bundle into an X509_STORE once per
 * multi handle (its CA cache lives there), and http.c keeps a pool of multi
 * handles, one per call in flight: a cold start with 16 parallel targets
 * parsed the 146 certificates of the system bundle 16 times (bench/tls_first,
 * 16 first requests at once: 514 ms of CPU and 28.4 MB peak RSS; 82 ms
 * and 15.7 MB with one store). Here the bundle is loaded once, on the
 * first verified HTTPS request, into one store that every connection's
 * SSL_CTX takes a reference to: the raw path's own SSL_CTX (http.c), and
 * libcurl's through CURLOPT_SSL_CTX_FUNCTION, libcurl then told to load
 * nothing itself (CURLOPT_CAINFO and CURLOPT_CAPATH NULL).
 *
 * The store holds what libcurl would have loaded: FANOUT_CA_BUNDLE when
 * set, else libcurl's built-in bundle, and its built-in directory either
 * way (both read from the libcurl fanout is built against, at build time:
 * the raw path does not load libcurl to ask it), else OpenSSL's default
 * paths (SSL_CERT_FILE, SSL_CERT_DIR), with the verification flags
 * libcurl sets on its own store. A bundle that cannot be loaded fails
 * every verified request with its path and the reason, never a connection
 * without verification.
 *
 * libcurl's transfers take the store only when libcurl's TLS backend is
 * the OpenSSL 3 whose libcrypto the engine uses (crypto_load.c) and
 * SSL_CTX_set1_cert_store is found in libcurl's libssl; otherwise libcurl
 * loads its CA as before. */
#ifndef FANOUT_AWS_TLS_STORE_H
#define FANOUT_AWS_TLS_STORE_H

#include <curl/curl.h>
#include <openssl/x509_vfy.h>
#include <stddef.h>

/* Decide from where the store will load: `ca_bundle` is FANOUT_CA_BUNDLE
 * (NULL: libcurl's default). Nothing is read from disk yet. Called by the
 * HTTP layer's set-up, before any request; not thread-safe with the
 * others. */
void fanout_tls_store_setup(const char *ca_bundle);

/* Once libcurl is loaded: whether its transfers can take the store. Called
 * with the HTTP layer's lock held, before libcurl's first transfer. */
void fanout_tls_store_curl_setup(void);

/* The store for a verified connection, loaded now if not yet; NULL with
 * the reason, naming the bundle, in `err` when it cannot be. Thread-safe. */
X509_STORE *fanout_tls_store_get(char *err, size_t err_len);

/* Set up easy handle `e` for a request that verifies its peer. With the
 * shared store, the handle takes it (loaded now when `https` and not yet
 * loaded); without it, libcurl loads `ca_bundle` (NULL: its default) as
 * before. 0 when set up; -1 with the reason, naming the bundle, in `err`
 * when the store cannot be loaded. Thread-safe. */
int fanout_tls_store_apply(CURL *e, int https, char *err, size_t err_len);

/* Drop the store (connections that hold it keep their reference) and the
 * set-up; the next fanout_tls_store_setup starts over. */
void fanout_tls_store_cleanup(void);

#endif
