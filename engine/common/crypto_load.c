/* libcrypto on first use, as libcurl (aws/curl_load.h): the fanout binary
 * calls a few libcrypto functions (SigV4's SHA-256 on a digest fetched
 * once, its context calls and copies of its HMAC states, KPL's MD5, the
 * SSO cache's SHA-1, cleansing and constant-time compares) and the few
 * that build the one CA store every TLS connection shares
 * (aws/tls_store.c; libssl itself is loaded by aws/ssl_load.c), defined
 * here with OpenSSL's prototypes as forwards to the library, dlopen'ed
 * once (pthread_once) by the first of them. Loading and relocating
 * libcrypto at start costs more CPU than an empty event; a `file` or `redis` target
 * never needs it. The link keeps libcrypto for the unit tests and plugins,
 * and --as-needed drops it from the binary as long as every libcrypto
 * function it calls is forwarded here (tests/package/elf_check.py and
 * the `lean-start` test check the binary's DT_NEEDED list).
 *
 * When the library cannot be loaded, the failure is logged once with its
 * name and the loader's reason; digests and HMAC then fail as OpenSSL's do
 * (NULL, 0), cleansing and compares fall back to local code. */
#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>
#include <string.h>

#include "common/dlopen_note.h"
#include "common/log.h"

#define S_LIBRARY "libcrypto.so.3"

FANOUT_DLOPEN_NOTE(s_dlopen_note, "crypto", "SHA-256, HMAC, MD5 for AWS calls and KPL",
                   S_LIBRARY);

static struct {
    const EVP_MD *(*md5)(void);
    const EVP_MD *(*sha1)(void);
    const EVP_MD *(*sha256)(void);
    int (*digest)(const void *, size_t, unsigned char *, unsigned int *, const EVP_MD *,
                  ENGINE *);
    unsigned char *(*hmac)(const EVP_MD *, const void *, int, const unsigned char *, size_t,
                           unsigned char *, unsigned int *);
    int (*memcmp)(const void *, const void *, size_t);
    void (*cleanse)(void *, size_t);
    EVP_MD *(*md_fetch)(OSSL_LIB_CTX *, const char *, const char *);
    EVP_MD_CTX *(*ctx_new)(void);
    void (*ctx_free)(EVP_MD_CTX *);
    int (*init_ex)(EVP_MD_CTX *, const EVP_MD *, ENGINE *);
    int (*update)(EVP_MD_CTX *, const void *, size_t);
    int (*final_ex)(EVP_MD_CTX *, unsigned char *, unsigned int *);
    int (*ctx_copy_ex)(EVP_MD_CTX *, const EVP_MD_CTX *);
    unsigned long (*version_num)(void);
    X509_STORE *(*store_new)(void);
    void (*store_free)(X509_STORE *);
    int (*store_load_file)(X509_STORE *, const char *);
    int (*store_load_path)(X509_STORE *, const char *);
    int (*store_default_paths)(X509_STORE *);
    int (*store_set_flags)(X509_STORE *, unsigned long);
    STACK_OF(X509_OBJECT) * (*store_objects)(const X509_STORE *);
    int (*sk_num)(const OPENSSL_STACK *);
    unsigned long (*err_peek)(void);
    void (*err_string)(unsigned long, char *, size_t);
    void (*err_clear)(void);
} s_fn;

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static int s_loaded;

static void s_load(void)
{
    void *lib = dlopen(S_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    const char *missing = NULL;
    if (lib) {
        static const char *const names[] = {"EVP_md5",
                                            "EVP_sha1",
                                            "EVP_sha256",
                                            "EVP_Digest",
                                            "HMAC",
                                            "CRYPTO_memcmp",
                                            "OPENSSL_cleanse",
                                            "EVP_MD_fetch",
                                            "EVP_MD_CTX_new",
                                            "EVP_MD_CTX_free",
                                            "EVP_DigestInit_ex",
                                            "EVP_DigestUpdate",
                                            "EVP_DigestFinal_ex",
                                            "EVP_MD_CTX_copy_ex",
                                            "OpenSSL_version_num",
                                            "X509_STORE_new",
                                            "X509_STORE_free",
                                            "X509_STORE_load_file",
                                            "X509_STORE_load_path",
                                            "X509_STORE_set_default_paths",
                                            "X509_STORE_set_flags",
                                            "X509_STORE_get0_objects",
                                            "OPENSSL_sk_num",
                                            "ERR_peek_error",
                                            "ERR_error_string_n",
                                            "ERR_clear_error"};
        void **slots[] = {(void **)&s_fn.md5,
                          (void **)&s_fn.sha1,
                          (void **)&s_fn.sha256,
                          (void **)&s_fn.digest,
                          (void **)&s_fn.hmac,
                          (void **)&s_fn.memcmp,
                          (void **)&s_fn.cleanse,
                          (void **)&s_fn.md_fetch,
                          (void **)&s_fn.ctx_new,
                          (void **)&s_fn.ctx_free,
                          (void **)&s_fn.init_ex,
                          (void **)&s_fn.update,
                          (void **)&s_fn.final_ex,
                          (void **)&s_fn.ctx_copy_ex,
                          (void **)&s_fn.version_num,
                          (void **)&s_fn.store_new,
                          (void **)&s_fn.store_free,
                          (void **)&s_fn.store_load_file,
                          (void **)&s_fn.store_load_path,
                          (void **)&s_fn.store_default_paths,
                          (void **)&s_fn.store_set_flags,
                          (void **)&s_fn.store_objects,
                          (void **)&s_fn.sk_num,
                          (void **)&s_fn.err_peek,
                          (void **)&s_fn.err_string,
                          (void **)&s_fn.err_clear};
        for (size_t i = 0; i < sizeof names / sizeof names[0] && !missing; i++)
            if (!(*slots[i] = dlsym(lib, names[i])))
                missing = names[i];
        if (!missing) {
            s_loaded = 1;
            return;
        }
        LOG_ERROR("crypto", "cannot use %s (OpenSSL 3's libcrypto): it has no %s",
                  S_LIBRARY, missing);
        return;
    }
    const char *why = dlerror();
    LOG_ERROR("crypto",
              "cannot load %s (OpenSSL 3's libcrypto, needed for SigV4 and KPL): %s",
              S_LIBRARY, why ? why : "unknown error");
}

static int s_ready(void)
{
    pthread_once(&s_once, s_load);
    return s_loaded;
}

const EVP_MD *(EVP_md5)(void)
{
    return s_ready() ? s_fn.md5() : NULL;
}

const EVP_MD *(EVP_sha1)(void)
{
    return s_ready() ? s_fn.sha1() : NULL;
}

const EVP_MD *(EVP_sha256)(void)
{
    return s_ready() ? s_fn.sha256() : NULL;
}

int(EVP_Digest)(const void *data, size_t count, unsigned char *md, unsigned int *size,
                const EVP_MD *type, ENGINE *impl)
{
    return s_ready() && type ? s_fn.digest(data, count, md, size, type, impl) : 0;
}

unsigned char *(HMAC)(const EVP_MD *evp_md, const void *key, int key_len,
                      const unsigned char *data, size_t data_len, unsigned char *md,
                      unsigned int *md_len)
{
    return s_ready() && evp_md ? s_fn.hmac(evp_md, key, key_len, data, data_len, md, md_len)
                               : NULL;
}

int(CRYPTO_memcmp)(const void *a, const void *b, size_t len)
{
    if (s_ready())
        return s_fn.memcmp(a, b, len);
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < len; i++)
        d |= x[i] ^ y[i];
    return d != 0;
}

void(OPENSSL_cleanse)(void *p, size_t len)
{
    if (s_ready())
        s_fn.cleanse(p, len);
    else
        explicit_bzero(p, len);
}

EVP_MD *(EVP_MD_fetch)(OSSL_LIB_CTX *ctx, const char *algorithm, const char *properties)
{
    return s_ready() ? s_fn.md_fetch(ctx, algorithm, properties) : NULL;
}

EVP_MD_CTX *(EVP_MD_CTX_new)(void)
{
    return s_ready() ? s_fn.ctx_new() : NULL;
}

void(EVP_MD_CTX_free)(EVP_MD_CTX *ctx)
{
    if (ctx && s_ready())
        s_fn.ctx_free(ctx);
}

int(EVP_DigestInit_ex)(EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl)
{
    return s_ready() && ctx && type ? s_fn.init_ex(ctx, type, impl) : 0;
}

int(EVP_DigestUpdate)(EVP_MD_CTX *ctx, const void *d, size_t cnt)
{
    return s_ready() && ctx ? s_fn.update(ctx, d, cnt) : 0;
}

int(EVP_DigestFinal_ex)(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s)
{
    return s_ready() && ctx ? s_fn.final_ex(ctx, md, s) : 0;
}

int(EVP_MD_CTX_copy_ex)(EVP_MD_CTX *out, const EVP_MD_CTX *in)
{
    return s_ready() && out && in ? s_fn.ctx_copy_ex(out, in) : 0;
}

/* ---- the CA store (aws/tls_store.c) -------------------------------------- */

unsigned long(OpenSSL_version_num)(void)
{
    return s_ready() ? s_fn.version_num() : 0;
}

X509_STORE *(X509_STORE_new)(void)
{
    return s_ready() ? s_fn.store_new() : NULL;
}

void(X509_STORE_free)(X509_STORE *v)
{
    if (v && s_ready())
        s_fn.store_free(v);
}

int(X509_STORE_load_file)(X509_STORE *ctx, const char *file)
{
    return s_ready() && ctx ? s_fn.store_load_file(ctx, file) : 0;
}

int(X509_STORE_load_path)(X509_STORE *ctx, const char *path)
{
    return s_ready() && ctx ? s_fn.store_load_path(ctx, path) : 0;
}

int(X509_STORE_set_default_paths)(X509_STORE *ctx)
{
    return s_ready() && ctx ? s_fn.store_default_paths(ctx) : 0;
}

int(X509_STORE_set_flags)(X509_STORE *ctx, unsigned long flags)
{
    return s_ready() && ctx ? s_fn.store_set_flags(ctx, flags) : 0;
}

STACK_OF(X509_OBJECT) * (X509_STORE_get0_objects)(const X509_STORE *v)
{
    return s_ready() && v ? s_fn.store_objects(v) : NULL;
}

int(OPENSSL_sk_num)(const OPENSSL_STACK *st)
{
    return s_ready() ? s_fn.sk_num(st) : -1;
}

unsigned long(ERR_peek_error)(void)
{
    return s_ready() ? s_fn.err_peek() : 0;
}

void(ERR_error_string_n)(unsigned long e, char *buf, size_t len)
{
    if (s_ready())
        s_fn.err_string(e, buf, len);
    else if (len)
        buf[0] = 0;
}

void(ERR_clear_error)(void)
{
    if (s_ready())
        s_fn.err_clear();
}
