/* libssl on first use: ssl_load.h. */
#include "aws/ssl_load.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "common/dlopen_note.h"
#include "common/util.h"

FANOUT_DLOPEN_NOTE(s_dlopen_note, "aws-tls", "TLS for AWS calls", FANOUT_SSL_LIBRARY);

static struct fanout_ssl_fns s_fn;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static int s_loaded; /* written once under s_once */
static char s_error[320];

static void s_load(void)
{
    /* RTLD_LOCAL: its symbols stay out of the plugins' way */
    void *lib = dlopen(FANOUT_SSL_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(s_error, sizeof s_error,
                 "cannot load %s (OpenSSL 3's libssl, needed for HTTPS to AWS): %s",
                 FANOUT_SSL_LIBRARY, why ? why : "unknown error");
        return;
    }
    static const char *const names[] = {"TLS_client_method",
                                        "SSL_CTX_new",
                                        "SSL_CTX_free",
                                        "SSL_CTX_ctrl",
                                        "SSL_CTX_set_options",
                                        "SSL_CTX_set_verify",
                                        "SSL_CTX_set1_cert_store",
                                        "SSL_CTX_set_alpn_protos",
                                        "SSL_new",
                                        "SSL_free",
                                        "SSL_set_fd",
                                        "SSL_ctrl",
                                        "SSL_set1_host",
                                        "SSL_set_hostflags",
                                        "SSL_get0_param",
                                        "X509_VERIFY_PARAM_set1_ip_asc",
                                        "SSL_connect",
                                        "SSL_shutdown",
                                        "SSL_get_error",
                                        "SSL_read",
                                        "SSL_write",
                                        "SSL_has_pending",
                                        "SSL_get_verify_result",
                                        "X509_verify_cert_error_string",
                                        "ERR_get_error",
                                        "ERR_error_string_n",
                                        "ERR_clear_error",
                                        "BIO_get_new_index",
                                        "BIO_meth_new",
                                        "BIO_meth_set_write",
                                        "BIO_meth_set_read",
                                        "BIO_meth_set_ctrl",
                                        "BIO_new",
                                        "BIO_set_data",
                                        "BIO_get_data",
                                        "BIO_set_init",
                                        "BIO_set_flags",
                                        "BIO_clear_flags",
                                        "SSL_set_bio",
                                        "SSL_CTX_sess_set_new_cb",
                                        "SSL_set_ex_data",
                                        "SSL_get_ex_data",
                                        "SSL_set_session",
                                        "SSL_session_reused",
                                        "SSL_SESSION_is_resumable",
                                        "SSL_SESSION_dup",
                                        "SSL_SESSION_free"};
    void **slots[] = {(void **)&s_fn.client_method,
                      (void **)&s_fn.ctx_new,
                      (void **)&s_fn.ctx_free,
                      (void **)&s_fn.ctx_ctrl,
                      (void **)&s_fn.ctx_set_options,
                      (void **)&s_fn.ctx_set_verify,
                      (void **)&s_fn.ctx_set1_cert_store,
                      (void **)&s_fn.ctx_set_alpn_protos,
                      (void **)&s_fn.ssl_new,
                      (void **)&s_fn.ssl_free,
                      (void **)&s_fn.set_fd,
                      (void **)&s_fn.ctrl,
                      (void **)&s_fn.set1_host,
                      (void **)&s_fn.set_hostflags,
                      (void **)&s_fn.get0_param,
                      (void **)&s_fn.param_set1_ip_asc,
                      (void **)&s_fn.connect,
                      (void **)&s_fn.shutdown,
                      (void **)&s_fn.get_error,
                      (void **)&s_fn.read,
                      (void **)&s_fn.write,
                      (void **)&s_fn.has_pending,
                      (void **)&s_fn.get_verify_result,
                      (void **)&s_fn.verify_string,
                      (void **)&s_fn.err_get,
                      (void **)&s_fn.err_string,
                      (void **)&s_fn.err_clear,
                      (void **)&s_fn.bio_new_index,
                      (void **)&s_fn.bio_meth_new,
                      (void **)&s_fn.bio_meth_set_write,
                      (void **)&s_fn.bio_meth_set_read,
                      (void **)&s_fn.bio_meth_set_ctrl,
                      (void **)&s_fn.bio_new,
                      (void **)&s_fn.bio_set_data,
                      (void **)&s_fn.bio_get_data,
                      (void **)&s_fn.bio_set_init,
                      (void **)&s_fn.bio_set_flags,
                      (void **)&s_fn.bio_clear_flags,
                      (void **)&s_fn.set_bio,
                      (void **)&s_fn.ctx_sess_set_new_cb,
                      (void **)&s_fn.set_ex_data,
                      (void **)&s_fn.get_ex_data,
                      (void **)&s_fn.set_session,
                      (void **)&s_fn.session_reused,
                      (void **)&s_fn.session_is_resumable,
                      (void **)&s_fn.session_dup,
                      (void **)&s_fn.session_free};
    _Static_assert(sizeof names / sizeof names[0] == sizeof slots / sizeof slots[0],
                   "one slot per name");
    _Static_assert(sizeof slots / sizeof slots[0] == sizeof s_fn / sizeof(void (*)(void)),
                   "every function of the table resolved");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        /* a handle's lookup covers the object's dependencies: libcrypto */
        *slots[i] = dlsym(lib, names[i]);
        if (!*slots[i]) {
            snprintf(s_error, sizeof s_error, "%s has no function %s (OpenSSL 3 is needed)",
                     FANOUT_SSL_LIBRARY, names[i]);
            return;
        }
    }
    s_loaded = 1;
}

const struct fanout_ssl_fns *fanout_ssl_load(char *err, size_t err_len)
{
    pthread_once(&s_once, s_load);
    if (s_loaded)
        return &s_fn;
    if (err && err_len)
        fanout_strlcpy(err, s_error, err_len);
    return NULL;
}
