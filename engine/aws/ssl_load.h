/* libssl, loaded on the first HTTPS connection.
 *
 * The raw path (http.c) opens its own TLS connections with OpenSSL 3's
 * libssl. The binary does not link it: like libcrypto (common/crypto_load.c)
 * and libcurl (curl_load.h) it is dlopen'ed once (pthread_once) by the
 * first fanout_ssl_load(), and its functions are reached through the table
 * returned, never by name, so a plugin that links another libssl is not
 * disturbed. The libcrypto functions a connection needs (the verification
 * result's words, the error queue, IP address checks) are looked up
 * through the same handle: the libcrypto that libssl itself uses. */
#ifndef FANOUT_AWS_SSL_LOAD_H
#define FANOUT_AWS_SSL_LOAD_H

#include <openssl/ssl.h>
#include <stddef.h>

/* The library loaded: its SONAME, found on the usual search path. */
#define FANOUT_SSL_LIBRARY "libssl.so.3"

struct fanout_ssl_fns {
    const SSL_METHOD *(*client_method)(void);
    SSL_CTX *(*ctx_new)(const SSL_METHOD *);
    void (*ctx_free)(SSL_CTX *);
    long (*ctx_ctrl)(SSL_CTX *, int, long, void *);
    uint64_t (*ctx_set_options)(SSL_CTX *, uint64_t);
    void (*ctx_set_verify)(SSL_CTX *, int, SSL_verify_cb);
    void (*ctx_set1_cert_store)(SSL_CTX *, X509_STORE *);
    int (*ctx_set_alpn_protos)(SSL_CTX *, const unsigned char *, unsigned int);
    SSL *(*ssl_new)(SSL_CTX *);
    void (*ssl_free)(SSL *);
    int (*set_fd)(SSL *, int);
    long (*ctrl)(SSL *, int, long, void *);
    int (*set1_host)(SSL *, const char *);
    void (*set_hostflags)(SSL *, unsigned int);
    X509_VERIFY_PARAM *(*get0_param)(SSL *);
    int (*param_set1_ip_asc)(X509_VERIFY_PARAM *, const char *);
    int (*connect)(SSL *);
    int (*shutdown)(SSL *);
    int (*get_error)(const SSL *, int);
    int (*read)(SSL *, void *, int);
    int (*write)(SSL *, const void *, int);
    int (*has_pending)(const SSL *);
    long (*get_verify_result)(const SSL *);
    const char *(*verify_string)(long);
    unsigned long (*err_get)(void);
    void (*err_string)(unsigned long, char *, size_t);
    void (*err_clear)(void);
    /* a BIO of fanout's own over the socket (send with MSG_NOSIGNAL) */
    int (*bio_new_index)(void);
    BIO_METHOD *(*bio_meth_new)(int, const char *);
    int (*bio_meth_set_write)(BIO_METHOD *, int (*)(BIO *, const char *, int));
    int (*bio_meth_set_read)(BIO_METHOD *, int (*)(BIO *, char *, int));
    int (*bio_meth_set_ctrl)(BIO_METHOD *, long (*)(BIO *, int, long, void *));
    BIO *(*bio_new)(const BIO_METHOD *);
    void (*bio_set_data)(BIO *, void *);
    void *(*bio_get_data)(BIO *);
    void (*bio_set_init)(BIO *, int);
    void (*bio_set_flags)(BIO *, int);
    void (*bio_clear_flags)(BIO *, int);
    void (*set_bio)(SSL *, BIO *, BIO *);
    /* TLS session resumption (net.c's session cache) */
    void (*ctx_sess_set_new_cb)(SSL_CTX *, int (*)(SSL *, SSL_SESSION *));
    int (*set_ex_data)(SSL *, int, void *);
    void *(*get_ex_data)(const SSL *, int);
    int (*set_session)(SSL *, SSL_SESSION *);
    int (*session_reused)(const SSL *);
    int (*session_is_resumable)(const SSL_SESSION *);
    SSL_SESSION *(*session_dup)(const SSL_SESSION *);
    void (*session_free)(SSL_SESSION *);
};

/* Load libssl and resolve the functions, once per process. The table when
 * usable; NULL with the reason (the library's name and the loader's
 * message, or the missing function) in `err`, the same on every later
 * call. Thread-safe. */
const struct fanout_ssl_fns *fanout_ssl_load(char *err, size_t err_len);

#endif
