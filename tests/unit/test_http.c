/* Check suite for engine/aws/http.c: requests on libcurl against
 * tests/servers/chaos_server.py.
 *
 * Each test starts the chaos server on an ephemeral port (it prints the port
 * on its first stdout line) and stops it in the teardown. The server counts
 * the connections that carried requests and says on which connection each
 * request came (connectionId), which is how reuse is proven; it also counts
 * the requests in progress at once (maxInflight), which with the elapsed
 * time proves concurrency. Counters are read with a separate libcurl handle
 * of the test's own, on a connection the server does not count. */
#include <check.h>
#include <ctype.h>

#include "check_main.h"
#include "test_server.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "aws/http.h"
#include "aws/net.h"
#include "common/log.h"
#include "common/util.h"

extern char **environ;

#define PATH_LEN 512
#define MAX_BODY ((size_t)64 * 1024 * 1024) /* http.c's cap */
/* How long a request that is meant to succeed or fail on its own (TLS
 * refused, a bad status...), never by timing out, may take: libcurl and
 * libcrypto loading the system's CA bundle under valgrind, on a busy
 * machine, took more than 30 s in a CI run. */
#define S_OK_WAIT_MS (getenv("FANOUT_UNDER_VALGRIND") ? 180000 : 30000)

static const char *const s_env_vars[] = {
    "http_proxy",       "https_proxy",
    "HTTPS_PROXY",      "all_proxy",
    "ALL_PROXY",        "no_proxy",
    "NO_PROXY",         "HTTP_PROXY",
    "FANOUT_CA_BUNDLE", "FANOUT_TLS_INSECURE_HOSTS",
};

struct server {
    pid_t pid;
    int port;
};

static struct {
    char dir[PATH_LEN / 2];
    char log[PATH_LEN];
    char cert[PATH_LEN];
    char key[PATH_LEN];
    int log_fd;
    struct server plain;
    struct server tls;
} s_t;

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the server ------------------------------------------------------------ */

/* tls: 0 plain, 1 TLS (1.3), 2 TLS 1.2 at most */
static void s_server_start(struct server *sv, int tls)
{
    const char *dir = getenv("FANOUT_TESTS_DIR");
    char script[PATH_LEN], ppid[32];
    snprintf(script, sizeof script, "%s/servers/chaos_server.py",
             dir && *dir ? dir : "tests");
    snprintf(ppid, sizeof ppid, "%ld", (long)getpid());
    const char *argv[12] = {"/usr/bin/python3", script, "--parent-pid", ppid,
                            "--max-lifetime",   "120"};
    size_t argc = 6;
    if (tls) {
        argv[argc++] = "--tls";
        argv[argc++] = s_t.cert;
        argv[argc++] = s_t.key;
        if (tls == 2)
            argv[argc++] = "--tls12";
    }
    argv[argc] = NULL;

    sv->port = fanout_test_spawn_server(argv, &sv->pid, "the chaos server");
}

static void s_server_stop(struct server *sv)
{
    fanout_test_stop_server(&sv->pid);
}

/* Run a program to its end, its output discarded; returns its exit status. */
static int s_run(const char *const *argv)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A self-signed certificate for `cn`, valid for the subjectAltName `san`. */
static void s_make_cert_for(const char *key, const char *cert, const char *cn,
                            const char *san)
{
    char subj[128], ext[128];
    snprintf(subj, sizeof subj, "/CN=%s", cn);
    snprintf(ext, sizeof ext, "subjectAltName=%s", san);
    const char *argv[] = {"openssl",
                          "req",
                          "-x509",
                          "-newkey",
                          "ec",
                          "-pkeyopt",
                          "ec_paramgen_curve:prime256v1",
                          "-nodes",
                          "-keyout",
                          key,
                          "-out",
                          cert,
                          "-days",
                          "2",
                          "-subj",
                          subj,
                          "-addext",
                          ext,
                          NULL};
    ck_assert_int_eq(s_run(argv), 0);
}

/* A self-signed certificate for 127.0.0.1 and localhost. */
static void s_make_cert(const char *key, const char *cert)
{
    s_make_cert_for(key, cert, "127.0.0.1", "IP:127.0.0.1,DNS:localhost");
}

/* The server's certificate, then the TLS server. */
static void s_tls_start(void)
{
    s_make_cert(s_t.key, s_t.cert);
    s_server_start(&s_t.tls, 1);
}

/* GET `path` from a server with a libcurl handle of our own, on a new
 * connection; returns the JSON answer. */
static json_t *s_control(const struct server *sv, int tls, const char *path)
{
    char url[PATH_LEN];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", tls ? "https" : "http", sv->port,
             path);
    CURL *e = curl_easy_init();
    ck_assert_ptr_nonnull(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    /* the server offers h2 (ALPN) and speaks HTTP/1.1 only */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    char *text = NULL;
    size_t text_len = 0;
    FILE *mem = open_memstream(&text, &text_len);
    ck_assert_ptr_nonnull(mem);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, mem);
    CURLcode cc = curl_easy_perform(e);
    curl_easy_cleanup(e);
    fclose(mem);
    ck_assert_msg(cc == CURLE_OK, "%s: %s", path, curl_easy_strerror(cc));
    json_error_t jerr;
    json_t *doc = json_loadb(text, text_len, 0, &jerr);
    free(text);
    ck_assert_msg(doc != NULL, "%s: bad JSON: %s", path, jerr.text);
    return doc;
}

static json_int_t s_stat(const struct server *sv, int tls, const char *name)
{
    json_t *doc = s_control(sv, tls, "/stats");
    json_int_t v = json_integer_value(json_object_get(doc, name));
    json_decref(doc);
    return v;
}

static void s_reset_counters(const struct server *sv, int tls)
{
    json_decref(s_control(sv, tls, "/control/reset-counters"));
}

/* ---- fixtures ---------------------------------------------------------------- */

/* Files the CA store tests make in the test's directory. */
static const char *const s_tls_files[] = {"bundle.pem", "other.pem", "other-key.pem",
                                          "bad.pem"};

static char *s_tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", s_t.dir, name);
    return buf;
}

static void s_setup(void)
{
    memset(&s_t, 0, sizeof s_t);
    s_t.plain.pid = s_t.tls.pid = -1;
    for (size_t i = 0; i < sizeof s_env_vars / sizeof s_env_vars[0]; i++)
        unsetenv(s_env_vars[i]);
    const char *tmp = getenv("TMPDIR");
    snprintf(s_t.dir, sizeof s_t.dir, "%s/fanout-http-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(s_t.dir));
    snprintf(s_t.log, sizeof s_t.log, "%s/log.txt", s_t.dir);
    snprintf(s_t.cert, sizeof s_t.cert, "%s/cert.pem", s_t.dir);
    snprintf(s_t.key, sizeof s_t.key, "%s/key.pem", s_t.dir);
    s_t.log_fd = open(s_t.log, O_CREAT | O_WRONLY | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    ck_assert_int_ge(s_t.log_fd, 0);
    fanout_log_set(FANOUT_LOG_INFO, 0);
    fanout_log_set_fd(s_t.log_fd);
    ck_assert_int_eq(fanout_http_global_init(), 0);
    s_server_start(&s_t.plain, 0);
}

static void s_teardown(void)
{
    s_server_stop(&s_t.plain);
    s_server_stop(&s_t.tls);
    fanout_http_global_cleanup();
    fanout_log_set_fd(-1);
    fanout_log_set(FANOUT_LOG_INFO, 0);
    if (s_t.log_fd >= 0)
        close(s_t.log_fd);
    unlink(s_t.log);
    unlink(s_t.cert);
    unlink(s_t.key);
    for (size_t i = 0; i < sizeof s_tls_files / sizeof s_tls_files[0]; i++) {
        char path[PATH_LEN];
        unlink(s_tmp_path(path, sizeof path, s_tls_files[i]));
    }
    rmdir(s_t.dir);
    for (size_t i = 0; i < sizeof s_env_vars / sizeof s_env_vars[0]; i++)
        unsetenv(s_env_vars[i]);
}

/* Global state changes (environment) need a fresh init. */
static void s_reinit(void)
{
    fanout_http_global_cleanup();
    ck_assert_int_eq(fanout_http_global_init(), 0);
}

/* ---- helpers ---------------------------------------------------------------- */

static char *s_url(char *buf, size_t len, const struct server *sv, int tls,
                   const char *host, const char *path)
{
    snprintf(buf, len, "%s://%s:%d%s", tls ? "https" : "http", host, sv->port, path);
    return buf;
}

static void s_perform1(const struct fanout_http_request *q, struct fanout_http_response *r)
{
    const struct fanout_http_request *qs[1] = {q};
    struct fanout_http_response *rs[1] = {r};
    fanout_http_perform(qs, rs, 1);
}

/* GET http://127.0.0.1:port`path` */
static void s_get(const char *path, int64_t timeout_ms, struct fanout_http_response *r)
{
    char url[PATH_LEN];
    struct fanout_http_request q = {
        .method = "GET",
        .url = s_url(url, sizeof url, &s_t.plain, 0, "127.0.0.1", path),
        .timeout_ms = timeout_ms,
    };
    s_perform1(&q, r);
}

static json_t *s_body_json(const struct fanout_http_response *r)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)r->body.bytes, r->body.len, 0, &jerr);
    ck_assert_msg(doc != NULL, "bad JSON (%s): %.*s", jerr.text, (int)r->body.len,
                  r->body.bytes ? (const char *)r->body.bytes : "");
    return doc;
}

static const char *s_jstr(json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

static json_int_t s_jint(json_t *doc, const char *key)
{
    return json_integer_value(json_object_get(doc, key));
}

static const char *s_jheader(json_t *doc, const char *name)
{
    return json_string_value(json_object_get(json_object_get(doc, "headers"), name));
}

static void s_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    ck_assert_int_eq(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL), 1);
    for (unsigned i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static char *s_read_log(void)
{
    FILE *f = fopen(s_t.log, "r");
    ck_assert_ptr_nonnull(f);
    struct fanout_sbuf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fanout_sbuf_put(&b, chunk, n);
    fclose(f);
    fanout_sbuf_put(&b, "", 0);
    return (char *)b.bytes;
}

static void s_expect_error(const struct fanout_http_response *r, enum fanout_http_error e,
                           const char *what)
{
    ck_assert_msg(r->error == e, "%s: error %d (%s), want %d", what, (int)r->error,
                  r->error_text, (int)e);
    ck_assert_msg(r->status == 0, "%s: status %ld with an error", what, r->status);
    ck_assert_msg(r->error_text[0] != 0, "%s: no error text", what);
    ck_assert_uint_eq(r->body.len, 0);
    ck_assert_uint_eq(r->header_count, 0);
}

/* ---- round trips ------------------------------------------------------------ */

START_TEST(test_get_round_trip)
{
    struct fanout_http_header hs[] = {
        {"X-Custom", "value 1"},
        {"x-amz-target", "Kinesis_20131202.PutRecords"},
        {"X-Empty", ""},
        {"X-Blank", "  "},
    };
    char url[PATH_LEN];
    struct fanout_http_request q = {
        .method = "GET",
        .url = s_url(url, sizeof url, &s_t.plain, 0, "127.0.0.1", "/some/path?a=1&b=two"),
        .headers = hs,
        .header_count = 4,
        .timeout_ms = S_OK_WAIT_MS,
    };
    struct fanout_http_response r = {0};
    s_perform1(&q, &r);
    ck_assert_msg(r.error == FANOUT_HTTP_OK, "%s", r.error_text);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.error_text, "");
    json_t *doc = s_body_json(&r);
    ck_assert_str_eq(s_jstr(doc, "method"), "GET");
    ck_assert_str_eq(s_jstr(doc, "path"), "/some/path");
    ck_assert_str_eq(s_jstr(doc, "query"), "a=1&b=two");
    ck_assert_str_eq(s_jheader(doc, "x-custom"), "value 1");
    ck_assert_str_eq(s_jheader(doc, "x-amz-target"), "Kinesis_20131202.PutRecords");
    ck_assert_str_eq(s_jheader(doc, "x-empty"), "");
    ck_assert_str_eq(s_jheader(doc, "x-blank"), "");
    ck_assert_ptr_null(s_jheader(doc, "expect"));
    ck_assert_int_eq(s_jint(doc, "bodyLength"), 0);
    /* names as sent */
    json_t *list = json_object_get(doc, "headerList");
    int seen = 0;
    for (size_t i = 0; i < json_array_size(list); i++)
        seen |= strcmp(json_string_value(json_array_get(json_array_get(list, i), 0)),
                       "x-amz-target") == 0;
    ck_assert(seen);
    json_decref(doc);
    /* response headers, names as received */
    ck_assert_str_eq(fanout_http_response_header(&r, "content-type"), "application/json");
    ck_assert_str_eq(fanout_http_response_header(&r, "SERVER"), "chaos-server python");
    fanout_http_response_clean_up(&r);
    ck_assert_ptr_null(r.body.bytes);
    ck_assert_ptr_null(r.headers);
}
END_TEST

START_TEST(test_methods_and_bodies)
{
    /* binary with NULs, small and 5 MB */
    static const size_t big_len = 5 * 1000 * 1000;
    uint8_t small[300];
    for (size_t i = 0; i < sizeof small; i++)
        small[i] = (uint8_t)(i % 7 == 0 ? 0 : i * 31);
    uint8_t *big = malloc(big_len);
    ck_assert_ptr_nonnull(big);
    uint32_t x = 12345;
    for (size_t i = 0; i < big_len; i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (uint8_t)(i % 97 == 0 ? 0 : x >> 24);
    }
    char sha_small[65], sha_big[65];
    s_sha256_hex(small, sizeof small, sha_small);
    s_sha256_hex(big, big_len, sha_big);

    struct fanout_http_header json_type[] = {
        {"Content-Type", "application/x-amz-json-1.1"}};
    char u[6][PATH_LEN];
    struct fanout_http_request q[6] = {
        {.method = "POST",
         .url = s_url(u[0], PATH_LEN, &s_t.plain, 0, "127.0.0.1", "/echo-body"),
         .body = small,
         .body_len = sizeof small,
         .timeout_ms = 10000},
        {.method = "POST",
         .url = s_url(u[1], PATH_LEN, &s_t.plain, 0, "127.0.0.1", "/echo"),
         .headers = json_type,
         .header_count = 1,
         .body = big,
         .body_len = big_len,
         .timeout_ms = 20000},
        {.method = "PUT",
         .url = s_url(u[2], PATH_LEN, &s_t.plain, 0, "127.0.0.1", "/echo"),
         .body = small,
         .body_len = sizeof small,
         .timeout_ms = 10000},
        {.method = "DELETE",
         .url = s_url(u[3], PATH_LEN, &s_t.plain, 0, "127.0.0.1", "/echo"),
         .timeout_ms = 10000},
        {.method = "POST",
         .url = s_url(u[4], PATH_LEN, &s_t.plain, 0, "127.0.0.1", "/echo"),
         .timeout_ms = 10000}, /* POST, empty body */
        {.method = "HEAD",
         .url = s_url(u[5], PATH_LEN, &s_t.plain, 0, "127.0.0.1", "/echo"),
         .timeout_ms = 10000},
    };
    struct fanout_http_response r[6] = {0};
    const struct fanout_http_request *qs[6];
    struct fanout_http_response *rs[6];
    for (int i = 0; i < 6; i++) {
        qs[i] = &q[i];
        rs[i] = &r[i];
    }
    fanout_http_perform(qs, rs, 6);
    for (int i = 0; i < 6; i++) {
        ck_assert_msg(r[i].error == FANOUT_HTTP_OK, "%d: %s", i, r[i].error_text);
        ck_assert_int_eq(r[i].status, 200);
    }

    /* the body back, byte for byte */
    ck_assert_uint_eq(r[0].body.len, sizeof small);
    ck_assert_mem_eq(r[0].body.bytes, small, sizeof small);
    ck_assert_str_eq(fanout_http_response_header(&r[0], "x-body-sha256"), sha_small);

    json_t *d = s_body_json(&r[1]);
    ck_assert_str_eq(s_jstr(d, "method"), "POST");
    ck_assert_int_eq(s_jint(d, "bodyLength"), (json_int_t)big_len);
    ck_assert_str_eq(s_jstr(d, "bodySha256"), sha_big);
    ck_assert_str_eq(s_jheader(d, "content-type"), "application/x-amz-json-1.1");
    ck_assert_ptr_null(s_jheader(d, "expect")); /* no 100-continue */
    json_decref(d);

    d = s_body_json(&r[2]);
    ck_assert_str_eq(s_jstr(d, "method"), "PUT");
    ck_assert_str_eq(s_jstr(d, "bodySha256"), sha_small);
    ck_assert_ptr_null(s_jheader(d, "content-type")); /* not libcurl's form type */
    json_decref(d);

    d = s_body_json(&r[3]);
    ck_assert_str_eq(s_jstr(d, "method"), "DELETE");
    ck_assert_int_eq(s_jint(d, "bodyLength"), 0);
    json_decref(d);

    d = s_body_json(&r[4]);
    ck_assert_str_eq(s_jstr(d, "method"), "POST");
    ck_assert_int_eq(s_jint(d, "bodyLength"), 0);
    ck_assert_str_eq(s_jheader(d, "content-length"), "0");
    json_decref(d);

    /* HEAD: headers, no body, no wait for one */
    ck_assert_uint_eq(r[5].body.len, 0);
    ck_assert_ptr_nonnull(fanout_http_response_header(&r[5], "Content-Length"));

    for (int i = 0; i < 6; i++)
        fanout_http_response_clean_up(&r[i]);
    free(big);
}
END_TEST

/* One request at a time, so each takes the easy handle the one before gave
 * back: a POST after a POST sets only its own options on a handle kept set
 * up; nothing of one request (headers, body, timeout, method) reaches the
 * next, whatever the methods. */
static json_t *s_echo1(const char *method, const char *body, const char *header,
                       int64_t timeout_ms, const char *path, struct fanout_http_response *r)
{
    char url[PATH_LEN];
    struct fanout_http_header h[] = {{"X-Only-Here", (char *)header}};
    struct fanout_http_request q = {
        .method = method,
        .url = s_url(url, sizeof url, &s_t.plain, 0, "127.0.0.1", path),
        .headers = header ? h : NULL,
        .header_count = header ? 1 : 0,
        .body = (const uint8_t *)body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = timeout_ms,
    };
    s_perform1(&q, r);
    if (r->error != FANOUT_HTTP_OK || strcmp(method, "HEAD") == 0)
        return NULL;
    ck_assert_int_eq(r->status, 200);
    json_t *d = s_body_json(r);
    ck_assert_str_eq(s_jstr(d, "method"), method);
    char sha[65];
    s_sha256_hex(body ? body : "", body ? strlen(body) : 0, sha);
    ck_assert_str_eq(s_jstr(d, "bodySha256"), sha);
    if (header)
        ck_assert_str_eq(s_jheader(d, "x-only-here"), header);
    else
        ck_assert_ptr_null(s_jheader(d, "x-only-here"));
    return d;
}

START_TEST(test_handles_reused_between_requests)
{
    struct fanout_http_response r = {0};
    json_decref(s_echo1("POST", "first", "one", 10000, "/echo", &r));
    /* a short timeout on the reused handle, then none */
    s_echo1("POST", "slow", NULL, 200, "/stall/700", &r);
    s_expect_error(&r, FANOUT_HTTP_TIMEOUT, "POST with a 200 ms timeout");
    json_decref(s_echo1("POST", "slow again", NULL, 0, "/stall/400", &r));
    ck_assert_msg(r.error == FANOUT_HTTP_OK, "%s", r.error_text);
    json_decref(s_echo1("POST", "second", NULL, 10000, "/echo", &r));
    json_t *d = s_echo1("GET", NULL, "two", 10000, "/echo", &r);
    ck_assert_int_eq(s_jint(d, "bodyLength"), 0);
    json_decref(d);
    json_decref(s_echo1("POST", "third", NULL, 10000, "/echo", &r));
    s_echo1("HEAD", NULL, NULL, 10000, "/echo", &r);
    ck_assert_msg(r.error == FANOUT_HTTP_OK, "%s", r.error_text);
    ck_assert_uint_eq(r.body.len, 0);
    d = s_echo1("PUT", "fourth", NULL, 10000, "/echo", &r);
    json_decref(d);
    json_decref(s_echo1("POST", "fifth", "three", 10000, "/echo", &r));
    fanout_http_response_clean_up(&r);
}
END_TEST

START_TEST(test_big_response)
{
    static const char *const paths[] = {"/big/5000000", "/big/5000000?chunked=1"};
    for (int k = 0; k < 2; k++) {
        struct fanout_http_response r = {0};
        s_get(paths[k], 20000, &r);
        ck_assert_msg(r.error == FANOUT_HTTP_OK, "%s", r.error_text);
        ck_assert_int_eq(r.status, 200);
        ck_assert_uint_eq(r.body.len, 5000000);
        size_t bad = 0;
        for (size_t i = 0; i < r.body.len; i++)
            bad += r.body.bytes[i] != (uint8_t)(i % 251);
        ck_assert_uint_eq(bad, 0);
        ck_assert_uint_eq(r.body.bytes[r.body.len], 0); /* kept NUL-terminated */
        fanout_http_response_clean_up(&r);
    }
}
END_TEST

/* ---- concurrency and reuse ---------------------------------------------------- */

/* n GETs of /stall/300?i=<i> at once, on the plain server, each checked to
 * get its own answer. Returns how many came on raw connections (their
 * requests lack the Accept header libcurl adds) and the time taken. */
static int s_stalled_gets(int n, int64_t timeout_ms, int64_t *took)
{
    char(*urls)[PATH_LEN] = calloc((size_t)n, sizeof *urls);
    struct fanout_http_request *q = calloc((size_t)n, sizeof *q);
    struct fanout_http_response *r = calloc((size_t)n, sizeof *r);
    const struct fanout_http_request **qs = calloc((size_t)n, sizeof *qs);
    struct fanout_http_response **rs = calloc((size_t)n, sizeof *rs);
    ck_assert(urls && q && r && qs && rs);
    for (int i = 0; i < n; i++) {
        char path[64];
        snprintf(path, sizeof path, "/stall/300?i=%d", i);
        q[i] = (struct fanout_http_request){
            .method = "GET",
            .url = s_url(urls[i], PATH_LEN, &s_t.plain, 0, "127.0.0.1", path),
            .timeout_ms = timeout_ms,
        };
        qs[i] = &q[i];
        rs[i] = &r[i];
    }
    int64_t t0 = s_mono_ms();
    fanout_http_perform(qs, rs, (size_t)n);
    *took = s_mono_ms() - t0;
    int raw = 0;
    for (int i = 0; i < n; i++) {
        ck_assert_msg(r[i].error == FANOUT_HTTP_OK, "%d: %s", i, r[i].error_text);
        ck_assert_int_eq(r[i].status, 200);
        json_t *d = s_body_json(&r[i]);
        char want[32];
        snprintf(want, sizeof want, "i=%d", i);
        ck_assert_str_eq(s_jstr(d, "query"), want); /* each answer to its request */
        raw += json_object_get(json_object_get(d, "headers"), "accept") == NULL;
        json_decref(d);
        fanout_http_response_clean_up(&r[i]);
    }
    free(urls);
    free(q);
    free(r);
    free(qs);
    free(rs);
    return raw;
}

START_TEST(test_concurrent_requests)
{
    enum { N = 50 };
    int64_t took;
    s_stalled_gets(N, 20000, &took);
    /* one after the other: 15 s */
    ck_assert_msg(took < 5000, "50 requests of 300 ms took %lld ms", (long long)took);
    json_int_t most = s_stat(&s_t.plain, 0, "maxInflight");
    ck_assert_msg(most >= 10, "at most %lld requests at once", (long long)most);
    ck_assert_int_eq(s_stat(&s_t.plain, 0, "requests"), N);
}
END_TEST

/* Descriptors open in this process */
static int s_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own */
}

/* A raw connection holds three descriptors (its socket, its multi handle's
 * wake-up pair): with a descriptor limit of 256 the raw path takes at most
 * 32 requests at once (an eighth), the rest go on libcurl transfers (one
 * descriptor each), so 120 requests at once all succeed. Without the
 * budget, 120 raw connections need 360 descriptors and some fail to
 * connect. The libcurl transfers are told by the Accept header libcurl
 * adds and the raw path does not. */
START_TEST(test_raw_descriptor_budget)
{
    enum { N = 120, LIMIT = 256 };
    struct rlimit saved;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
    ck_assert_msg(saved.rlim_max >= LIMIT, "hard descriptor limit %llu",
                  (unsigned long long)saved.rlim_max);
    fanout_http_global_cleanup();
    struct rlimit low = {.rlim_cur = LIMIT, .rlim_max = saved.rlim_max};
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    ck_assert_int_eq(fanout_http_global_init(), 0); /* reads the limit */
    int64_t took;
    int raw = s_stalled_gets(N, S_OK_WAIT_MS, &took);
    ck_assert_msg(raw >= 1 && raw <= LIMIT / 8, "%d requests on raw connections", raw);
    /* the idle raw connections kept are within the budget too */
    ck_assert_msg(s_open_fds() < LIMIT, "%d descriptors open", s_open_fds());
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
}
END_TEST

static json_int_t s_conn_id(const struct fanout_http_response *r)
{
    ck_assert_msg(r->error == FANOUT_HTTP_OK && r->status == 200, "%ld %s", r->status,
                  r->error_text);
    json_t *d = s_body_json(r);
    json_int_t id = s_jint(d, "connectionId");
    json_decref(d);
    return id;
}

START_TEST(test_reuse_across_calls)
{
    struct fanout_http_response r = {0};
    s_get("/echo", 5000, &r);
    json_int_t first = s_conn_id(&r);
    for (int i = 0; i < 5; i++) {
        s_get("/echo", 5000, &r);
        ck_assert_int_eq(s_conn_id(&r), first);
    }
    fanout_http_response_clean_up(&r);
    ck_assert_int_eq(s_stat(&s_t.plain, 0, "connections"), 1);
    ck_assert_int_eq(s_stat(&s_t.plain, 0, "requests"), 6);

    /* a wide call opens connections; the next wide call reuses them all */
    enum { N = 10 };
    static char urls[N][PATH_LEN];
    struct fanout_http_request q[N];
    struct fanout_http_response rr[N];
    const struct fanout_http_request *qs[N];
    struct fanout_http_response *rs[N];
    for (int i = 0; i < N; i++) {
        q[i] = (struct fanout_http_request){
            .method = "GET",
            .url = s_url(urls[i], PATH_LEN, &s_t.plain, 0, "127.0.0.1", "/stall/100"),
            .timeout_ms = 10000,
        };
        memset(&rr[i], 0, sizeof rr[i]);
        qs[i] = &q[i];
        rs[i] = &rr[i];
    }
    for (int round = 0; round < 3; round++) {
        fanout_http_perform(qs, rs, N);
        for (int i = 0; i < N; i++) {
            ck_assert_msg(rr[i].error == FANOUT_HTTP_OK, "%s", rr[i].error_text);
            fanout_http_response_clean_up(&rr[i]);
        }
        if (round == 0) {
            /* the first connection and N-1 new ones */
            ck_assert_int_eq(s_stat(&s_t.plain, 0, "connections"), N);
            s_reset_counters(&s_t.plain, 0);
        }
    }
    /* two more wide calls, not one new connection */
    ck_assert_int_eq(s_stat(&s_t.plain, 0, "requests"), 2 * N);
    ck_assert_int_eq(s_stat(&s_t.plain, 0, "connections"), 0);
}
END_TEST

struct thread_job {
    int rounds;
    int width;
    int failures;
    int64_t wait_ms;    /* each request's timeouts; 0: 10 s */
    json_int_t conn_id; /* of the last answer */
    char url[PATH_LEN];
};

static void *s_thread_main(void *arg)
{
    struct thread_job *job = arg;
    enum { MAX_W = 4 };
    struct fanout_http_request q[MAX_W];
    struct fanout_http_response r[MAX_W];
    const struct fanout_http_request *qs[MAX_W];
    struct fanout_http_response *rs[MAX_W];
    for (int i = 0; i < job->width; i++) {
        q[i] = (struct fanout_http_request){
            .method = "GET",
            .url = job->url,
            .timeout_ms = job->wait_ms ? job->wait_ms : 10000,
            .connect_timeout_ms = job->wait_ms ? job->wait_ms : 0};
        memset(&r[i], 0, sizeof r[i]);
        qs[i] = &q[i];
        rs[i] = &r[i];
    }
    for (int k = 0; k < job->rounds; k++) {
        fanout_http_perform(qs, rs, (size_t)job->width);
        for (int i = 0; i < job->width; i++) {
            if (r[i].error != FANOUT_HTTP_OK || r[i].status != 200) {
                job->failures++;
            } else {
                json_t *d =
                    json_loadb((const char *)r[i].body.bytes, r[i].body.len, 0, NULL);
                job->conn_id = json_integer_value(json_object_get(d, "connectionId"));
                json_decref(d);
            }
            fanout_http_response_clean_up(&r[i]);
        }
    }
    return NULL;
}

START_TEST(test_reuse_across_threads)
{
    struct fanout_http_response r = {0};
    s_get("/echo", 5000, &r);
    json_int_t first = s_conn_id(&r);
    fanout_http_response_clean_up(&r);

    /* another thread, later: the same connection */
    struct thread_job one = {.rounds = 1, .width = 1};
    s_url(one.url, sizeof one.url, &s_t.plain, 0, "127.0.0.1", "/echo");
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, s_thread_main, &one), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(one.failures, 0);
    ck_assert_int_eq(one.conn_id, first);
    ck_assert_int_eq(s_stat(&s_t.plain, 0, "connections"), 1);

    /* threads at once: each call has its own connections, and they are
     * reused from call to call whichever thread makes it */
    enum { T = 4, ROUNDS = 15, WIDTH = 2 };
    struct thread_job jobs[T];
    pthread_t ts[T];
    for (int i = 0; i < T; i++) {
        jobs[i] = (struct thread_job){.rounds = ROUNDS, .width = WIDTH};
        s_url(jobs[i].url, sizeof jobs[i].url, &s_t.plain, 0, "127.0.0.1", "/stall/5");
        ck_assert_int_eq(pthread_create(&ts[i], NULL, s_thread_main, &jobs[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(ts[i], NULL);
        ck_assert_int_eq(jobs[i].failures, 0);
    }
    ck_assert_int_eq(s_stat(&s_t.plain, 0, "requests"), 2 + T * ROUNDS * WIDTH);
    json_int_t conns = s_stat(&s_t.plain, 0, "connections");
    ck_assert_msg(conns <= T * WIDTH, "%lld connections for %d requests", (long long)conns,
                  T * ROUNDS * WIDTH);
}
END_TEST

/* ---- errors ---------------------------------------------------------------- */

START_TEST(test_timeout)
{
    char u[3][PATH_LEN];
    struct fanout_http_request q[3] = {
        {.method = "GET",
         .url = s_url(u[0], PATH_LEN, &s_t.plain, 0, "127.0.0.1", "/stall/3000"),
         .timeout_ms = 300},
        {.method = "GET",
         .url = s_url(u[1], PATH_LEN, &s_t.plain, 0, "127.0.0.1", "/stall-body/3000"),
         .timeout_ms = 300},
        /* the same stall, well inside its own timeout */
        {.method = "GET",
         .url = s_url(u[2], PATH_LEN, &s_t.plain, 0, "127.0.0.1", "/stall/100"),
         .timeout_ms = 10000},
    };
    struct fanout_http_response r[3] = {0};
    const struct fanout_http_request *qs[3] = {&q[0], &q[1], &q[2]};
    struct fanout_http_response *rs[3] = {&r[0], &r[1], &r[2]};
    int64_t t0 = s_mono_ms();
    fanout_http_perform(qs, rs, 3);
    int64_t took = s_mono_ms() - t0;
    s_expect_error(&r[0], FANOUT_HTTP_TIMEOUT, "stalled answer");
    s_expect_error(&r[1], FANOUT_HTTP_TIMEOUT, "stalled body");
    ck_assert_ptr_nonnull(strstr(r[0].error_text, "timed out"));
    ck_assert_msg(r[2].error == FANOUT_HTTP_OK, "%s", r[2].error_text);
    ck_assert_int_eq(r[2].status, 200);
    ck_assert_msg(took < 2500, "took %lld ms", (long long)took);
    for (int i = 0; i < 3; i++)
        fanout_http_response_clean_up(&r[i]);
}
END_TEST

START_TEST(test_connect_errors)
{
    /* a port nobody listens on */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    char url[PATH_LEN];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", ntohs(sa.sin_port));
    struct fanout_http_request q = {
        .method = "GET", .url = url, .timeout_ms = S_OK_WAIT_MS};
    struct fanout_http_response r = {0};
    s_perform1(&q, &r);
    s_expect_error(&r, FANOUT_HTTP_CONNECT, "refused");
    ck_assert_msg(strstr(r.error_text, "127.0.0.1") && strstr(r.error_text, "refused"),
                  "%s", r.error_text);

    /* a name that cannot resolve (a label over 63 characters fails in the
     * resolver itself, with no DNS traffic) */
    snprintf(url, sizeof url, "http://%s.invalid/echo",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    s_perform1(&q, &r);
    s_expect_error(&r, FANOUT_HTTP_CONNECT, "unresolvable");
    /* the resolver's reason and the name */
    ck_assert_msg(strstr(r.error_text, "Could not resolve host: aaaa") &&
                      strstr(r.error_text, ".invalid ("),
                  "%s", r.error_text);
    fanout_http_response_clean_up(&r);
}
END_TEST

START_TEST(test_connect_timeout)
{
    /* a listener whose accept queue is full: new SYNs go unanswered */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(ls, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
    ck_assert_int_eq(listen(ls, 0), 0);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        ck_assert_int_ge(fill[i], 0);
        int rc = connect(fill[i], (struct sockaddr *)&sa, sizeof sa);
        ck_assert(rc == 0 || errno == EINPROGRESS);
    }
    usleep(50000);
    char url[PATH_LEN];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", ntohs(sa.sin_port));
    struct fanout_http_request q = {
        .method = "GET", .url = url, .timeout_ms = S_OK_WAIT_MS, .connect_timeout_ms = 300};
    struct fanout_http_response r = {0};
    int64_t t0 = s_mono_ms();
    s_perform1(&q, &r);
    int64_t took = s_mono_ms() - t0;
    s_expect_error(&r, FANOUT_HTTP_TIMEOUT, "connect timeout");
    ck_assert_msg(took < 2000, "took %lld ms", (long long)took);
    fanout_http_response_clean_up(&r);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(ls);
}
END_TEST

/* A dual-stack name whose IPv6 address drops the connection attempt (a
 * listener on [::1] whose queue is full: the kernel drops further SYNs,
 * as a route that blackholes IPv6 does), its IPv4 address the server:
 * the IPv4 address is tried after 200 ms, not after half of the connect
 * timeout; with the resolver's order of all IPv6 addresses first, too. */
START_TEST(test_connect_family_fallback)
{
    int ls = socket(AF_INET6, SOCK_STREAM, 0), one = 1;
    ck_assert_int_ge(ls, 0);
    ck_assert_int_eq(setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one), 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6,
                              .sin6_addr = IN6ADDR_LOOPBACK_INIT,
                              .sin6_port = htons((uint16_t)s_t.plain.port)};
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0) {
        /* no IPv6 loopback here: nothing to test against */
        ck_assert_int_eq(errno, EADDRNOTAVAIL);
        close(ls);
        return;
    }
    ck_assert_int_eq(listen(ls, 0), 0);
    int filler = socket(AF_INET6, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(filler, (struct sockaddr *)&sa, sizeof sa), 0);

    static const char *const orders[][3] = {{"::1", "127.0.0.1", NULL},
                                            {"::1", "::1", "127.0.0.1"}};
    for (size_t k = 0; k < 2; k++) {
        const char *const *addrs = orders[k];
        ck_assert_int_eq(fanout_net_test_resolved("dual.fanout.test", s_t.plain.port, addrs,
                                                  addrs[2] ? 3 : 2),
                         0);
        char url[PATH_LEN];
        struct fanout_http_request q = {
            .method = "GET",
            .url =
                s_url(url, sizeof url, &s_t.plain, 0, "dual.fanout.test", "/echo?close=1"),
            .timeout_ms = 20000,
            .connect_timeout_ms = 10000,
        };
        struct fanout_http_response r = {0};
        int64_t t0 = s_mono_ms();
        s_perform1(&q, &r);
        int64_t took = s_mono_ms() - t0;
        ck_assert_msg(r.error == FANOUT_HTTP_OK && r.status == 200, "order %zu: %s", k,
                      r.error_text);
        ck_assert_msg(took >= 190 && took < 2500, "order %zu: took %lld ms", k,
                      (long long)took);
        fanout_http_response_clean_up(&r);
    }
    close(filler);
    close(ls);
}
END_TEST

/* A listener that drops connection attempts until, 300 ms on, it makes
 * room (accepts the filler that filled its queue); then it answers one
 * request, or gives up after 8 s. */
struct s_late {
    int ls;
    pthread_t th;
    int served;
};

static void *s_late_main(void *arg)
{
    struct s_late *o = arg;
    usleep(300 * 1000);
    int filler = accept(o->ls, NULL, NULL);
    if (filler >= 0)
        close(filler);
    struct pollfd p = {.fd = o->ls, .events = POLLIN};
    if (poll(&p, 1, 8000) != 1)
        return NULL;
    int fd = accept(o->ls, NULL, NULL);
    if (fd < 0)
        return NULL;
    char buf[4096];
    size_t got = 0;
    p = (struct pollfd){.fd = fd, .events = POLLIN};
    while (got < sizeof buf - 1 && poll(&p, 1, 8000) == 1) {
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = 0;
        if (strstr(buf, "\r\n\r\n")) {
            static const char ok[] =
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            o->served = send(fd, ok, sizeof ok - 1, MSG_NOSIGNAL) == sizeof ok - 1;
            break;
        }
    }
    close(fd);
    return NULL;
}

/* A queue filled by one connection nobody accepts: the kernel drops
 * further SYNs (a route that drops packets). 0, or -1: cannot bind. */
static int s_full_listener(int family, int port, int *ls, int *filler)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        a->sin6_port = htons((uint16_t)port);
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->sin_port = htons((uint16_t)port);
        len = sizeof *a;
    }
    int one = 1;
    *ls = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(*ls, 0);
    if (family == AF_INET6)
        ck_assert_int_eq(setsockopt(*ls, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one), 0);
    if (bind(*ls, (struct sockaddr *)&ss, len) != 0) {
        close(*ls);
        return -1;
    }
    ck_assert_int_eq(getsockname(*ls, (struct sockaddr *)&ss, &len), 0);
    ck_assert_int_eq(listen(*ls, 0), 0);
    *filler = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(connect(*filler, (struct sockaddr *)&ss, len), 0);
    return ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                    : ((struct sockaddr_in *)&ss)->sin_port);
}

/* Happy eyeballs side by side (RFC 8305): the first address (IPv6) does
 * not answer within 200 ms, so the IPv4 address starts, and never
 * answers; the IPv6 attempt goes on and connects (its SYN sent again
 * after 1 s finds room): the request is served there. An attempt given
 * up when the next starts would leave the IPv4 one alone until the
 * connect timeout. */
START_TEST(test_connect_side_by_side)
{
    int ls4, filler4, ls6, filler6;
    int port = s_full_listener(AF_INET, 0, &ls4, &filler4);
    if (s_full_listener(AF_INET6, port, &ls6, &filler6) < 0) {
        /* no IPv6 loopback here (or the port taken): nothing to test */
        close(filler4);
        close(ls4);
        return;
    }
    struct s_late late = {.ls = ls6};
    ck_assert_int_eq(pthread_create(&late.th, NULL, s_late_main, &late), 0);
    static const char *const addrs[] = {"::1", "127.0.0.1"};
    ck_assert_int_eq(fanout_net_test_resolved("eyeballs.fanout.test", port, addrs, 2), 0);
    char url[PATH_LEN];
    snprintf(url, sizeof url, "http://eyeballs.fanout.test:%d/", port);
    struct fanout_http_request q = {
        .method = "GET", .url = url, .timeout_ms = 20000, .connect_timeout_ms = 6000};
    struct fanout_http_response r = {0};
    int64_t t0 = s_mono_ms();
    s_perform1(&q, &r);
    int64_t took = s_mono_ms() - t0;
    pthread_join(late.th, NULL);
    ck_assert_msg(r.error == FANOUT_HTTP_OK && r.status == 200, "took %lld ms: %s",
                  (long long)took, r.error_text);
    ck_assert_int_eq(late.served, 1);
    ck_assert_msg(took >= 250 && took < 4500, "took %lld ms", (long long)took);
    fanout_http_response_clean_up(&r);
    close(filler4);
    close(ls4);
    close(filler6);
    close(ls6);
}
END_TEST

/* A resolver that takes longer than the connect timeout: the request
 * fails when the timeout is up, in the resolver's words, while a request
 * of the same call to an address goes through; the lookup ends on its
 * own later (and its answer is cached). */
START_TEST(test_resolve_timeout)
{
    fanout_net_test_lookup_delay(3000);
    char url[2][PATH_LEN];
    struct fanout_http_request q[2] = {
        {.method = "GET",
         .url = s_url(url[0], sizeof url[0], &s_t.plain, 0, "localhost", "/echo"),
         .timeout_ms = 20000,
         .connect_timeout_ms = 300},
        {.method = "GET",
         .url = s_url(url[1], sizeof url[1], &s_t.plain, 0, "127.0.0.1", "/stall/100"),
         .timeout_ms = 20000,
         .connect_timeout_ms = 300},
    };
    struct fanout_http_response r[2] = {{0}};
    const struct fanout_http_request *qs[2] = {&q[0], &q[1]};
    struct fanout_http_response *rs[2] = {&r[0], &r[1]};
    int64_t t0 = s_mono_ms();
    fanout_http_perform(qs, rs, 2);
    int64_t took = s_mono_ms() - t0;
    ck_assert_int_eq(r[0].error, FANOUT_HTTP_TIMEOUT);
    ck_assert_msg(strstr(r[0].error_text, "Resolving localhost timed out after") != NULL,
                  "%s", r[0].error_text);
    ck_assert_msg(r[1].error == FANOUT_HTTP_OK && r[1].status == 200, "%s",
                  r[1].error_text);
    ck_assert_msg(took >= 290 && took < 2800, "took %lld ms", (long long)took);
    ck_assert_int_eq(fanout_net_test_lookups(), 1);
    fanout_net_test_lookup_delay(0);
    for (int i = 0; i < 1000 && fanout_net_test_lookups() > 0; i++)
        usleep(10000);
    ck_assert_int_eq(fanout_net_test_lookups(), 0);
    /* its answer was cached: no lookup now */
    s_perform1(&q[0], &r[0]);
    ck_assert_msg(r[0].error == FANOUT_HTTP_OK && r[0].status == 200, "%s",
                  r[0].error_text);
    ck_assert_int_eq(fanout_net_test_lookups(), 0);
    /* a name that does not resolve, on the lookup's thread */
    snprintf(url[0], sizeof url[0], "http://fanout-no-such-host.invalid:%d/",
             s_t.plain.port);
    q[0].connect_timeout_ms = S_OK_WAIT_MS;
    s_perform1(&q[0], &r[0]);
    ck_assert_int_eq(r[0].error, FANOUT_HTTP_CONNECT);
    ck_assert_msg(strstr(r[0].error_text,
                         "Could not resolve host: fanout-no-such-host.invalid") != NULL,
                  "%s", r[0].error_text);
    fanout_http_response_clean_up(&r[0]);
    fanout_http_response_clean_up(&r[1]);
}
END_TEST

/* n GETs of `url` in one call, each with its connect timeout; the time
 * the call took. */
static int64_t s_perform_same(const char *url, const int64_t *connect_timeout_ms, int n,
                              struct fanout_http_response *r)
{
    struct fanout_http_request q[16];
    const struct fanout_http_request *qs[16];
    struct fanout_http_response *rs[16];
    ck_assert_int_le(n, 16);
    for (int i = 0; i < n; i++) {
        q[i] = (struct fanout_http_request){.method = "GET",
                                            .url = url,
                                            .timeout_ms = S_OK_WAIT_MS,
                                            .connect_timeout_ms = connect_timeout_ms[i]};
        memset(&r[i], 0, sizeof r[i]);
        qs[i] = &q[i];
        rs[i] = &r[i];
    }
    int64_t t0 = s_mono_ms();
    fanout_http_perform(qs, rs, (size_t)n);
    return s_mono_ms() - t0;
}

/* r[0..n) all 200s; cleaned up */
static void s_expect_ok_all(struct fanout_http_response *r, int n)
{
    for (int i = 0; i < n; i++) {
        ck_assert_msg(r[i].error == FANOUT_HTTP_OK && r[i].status == 200, "%d: %s", i,
                      r[i].error_text);
        fanout_http_response_clean_up(&r[i]);
    }
}

/* The lookups of a name: when one runs, every connection that wants the
 * name waits for it (one resolver call, one thread, its answer cached
 * once); each waiter's own connect timeout still holds, whoever started
 * the lookup; a failure reaches them all (and is not cached). */
START_TEST(test_resolve_shared)
{
    char url[PATH_LEN];
    s_url(url, sizeof url, &s_t.plain, 0, "localhost", "/echo");
    struct fanout_http_response r[16];
    int64_t tmo[16];
    for (int i = 0; i < 16; i++)
        tmo[i] = S_OK_WAIT_MS;
    /* 16 connections at a cold start: one lookup */
    fanout_net_test_lookup_delay(300);
    int calls = fanout_net_test_resolver_calls();
    s_perform_same(url, tmo, 16, r);
    s_expect_ok_all(r, 16);
    ck_assert_int_eq(fanout_net_test_resolver_calls() - calls, 1);
    ck_assert_int_eq(fanout_net_test_lookups(), 0);

    /* a waiter's timeout fires on time, whether it started the lookup
     * (which goes on for the other) or joined it */
    fanout_net_test_lookup_delay(1000);
    for (int first = 0; first < 2; first++) {
        fanout_http_global_cleanup(); /* the cache emptied */
        ck_assert_int_eq(fanout_http_global_init(), 0);
        calls = fanout_net_test_resolver_calls();
        int64_t two[2] = {first ? 200 : S_OK_WAIT_MS, first ? S_OK_WAIT_MS : 200};
        int64_t took = s_perform_same(url, two, 2, r);
        struct fanout_http_response *quick = &r[first ? 0 : 1], *slow = &r[first ? 1 : 0];
        ck_assert_int_eq(quick->error, FANOUT_HTTP_TIMEOUT);
        long ms = -1;
        ck_assert_msg(sscanf(quick->error_text, "Resolving localhost timed out after %ld",
                             &ms) == 1 &&
                          ms >= 190 && ms < 900,
                      "%s", quick->error_text);
        ck_assert_msg(slow->error == FANOUT_HTTP_OK && slow->status == 200, "%s",
                      slow->error_text);
        ck_assert_msg(took >= 950, "took %lld ms", (long long)took);
        ck_assert_int_eq(fanout_net_test_resolver_calls() - calls, 1);
        fanout_http_response_clean_up(&r[0]);
        fanout_http_response_clean_up(&r[1]);
    }

    /* a failure reaches every waiter; the next connection asks again */
    fanout_net_test_lookup_delay(200);
    snprintf(url, sizeof url, "http://fanout-no-such-host.invalid:%d/", s_t.plain.port);
    calls = fanout_net_test_resolver_calls();
    s_perform_same(url, tmo, 4, r);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(r[i].error, FANOUT_HTTP_CONNECT);
        ck_assert_msg(strstr(r[i].error_text,
                             "Could not resolve host: fanout-no-such-host.invalid") != NULL,
                      "%d: %s", i, r[i].error_text);
        fanout_http_response_clean_up(&r[i]);
    }
    ck_assert_int_eq(fanout_net_test_resolver_calls() - calls, 1);
    s_perform_same(url, tmo, 1, r);
    ck_assert_int_eq(r[0].error, FANOUT_HTTP_CONNECT);
    fanout_http_response_clean_up(&r[0]);
    ck_assert_int_eq(fanout_net_test_resolver_calls() - calls, 2);

    /* no thread to be had: the first connection resolves on its own
     * thread (its lookup done at once), the others find the answer
     * cached */
    fanout_net_test_no_threads(1);
    fanout_net_test_lookup_delay(0);
    s_url(url, sizeof url, &s_t.plain, 0, "localhost", "/echo");
    fanout_http_global_cleanup();
    ck_assert_int_eq(fanout_http_global_init(), 0);
    calls = fanout_net_test_resolver_calls();
    s_perform_same(url, tmo, 3, r);
    s_expect_ok_all(r, 3);
    ck_assert_int_eq(fanout_net_test_resolver_calls() - calls, 1);
    fanout_net_test_no_threads(0);
}
END_TEST

START_TEST(test_resets)
{
    static const char *const paths[] = {"/reset", "/reset?mode=fin", "/reset-mid",
                                        "/reset-mid?mode=fin"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct fanout_http_response r = {0};
        s_get(paths[i], 5000, &r);
        s_expect_error(&r, FANOUT_HTTP_RESET, paths[i]);
        fanout_http_response_clean_up(&r);
    }
    /* and the next request is fine */
    struct fanout_http_response r = {0};
    s_get("/echo", 5000, &r);
    ck_assert_int_eq(r.status, 200);
    fanout_http_response_clean_up(&r);
}
END_TEST

START_TEST(test_statuses)
{
    struct fanout_http_response r = {0};
    s_get("/status/404?body=%7B%22__type%22%3A%22ResourceNotFoundException%22%7D"
          "&header=x-amzn-ErrorType:ResourceNotFoundException",
          5000, &r);
    ck_assert_int_eq(r.error, FANOUT_HTTP_OK);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq((const char *)r.body.bytes,
                     "{\"__type\":\"ResourceNotFoundException\"}");
    ck_assert_str_eq(fanout_http_response_header(&r, "X-Amzn-ErrorType"),
                     "ResourceNotFoundException");

    s_get("/status/503", 5000, &r);
    ck_assert_int_eq(r.error, FANOUT_HTTP_OK);
    ck_assert_int_eq(r.status, 503);
    s_get("/status/204", 5000, &r);
    ck_assert_int_eq(r.status, 204);
    ck_assert_uint_eq(r.body.len, 0);

    /* throttled twice, then through */
    for (int i = 0; i < 3; i++) {
        s_get("/throttle/2?key=t1", 5000, &r);
        ck_assert_int_eq(r.error, FANOUT_HTTP_OK);
        if (i < 2) {
            ck_assert_int_eq(r.status, 400);
            json_t *d = s_body_json(&r);
            ck_assert_str_eq(s_jstr(d, "__type"), "ThrottlingException");
            ck_assert_str_eq(s_jstr(d, "message"), "Rate exceeded");
            json_decref(d);
        } else {
            ck_assert_int_eq(r.status, 200);
        }
    }
    s_get("/throttle/1?key=t2&status=429", 5000, &r);
    ck_assert_int_eq(r.status, 429);
    s_get("/fail/1?key=f1", 5000, &r);
    ck_assert_int_eq(r.status, 500);
    s_get("/fail/1?key=f1", 5000, &r);
    ck_assert_int_eq(r.status, 200);
    fanout_http_response_clean_up(&r);
    /* all of that on one connection */
    ck_assert_int_eq(s_stat(&s_t.plain, 0, "connections"), 1);
}
END_TEST

START_TEST(test_response_headers)
{
    struct fanout_http_response r = {0};
    s_get("/status/200?header=X-Amzn-RequestId:abc-123&header=x-amz-crc32:42"
          "&header=X-Padded:%20%20padded%20value%20%20&header=X-Empty:",
          5000, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(fanout_http_response_header(&r, "x-amzn-requestid"), "abc-123");
    ck_assert_str_eq(fanout_http_response_header(&r, "X-AMZN-REQUESTID"), "abc-123");
    ck_assert_str_eq(fanout_http_response_header(&r, "X-Amz-Crc32"), "42");
    ck_assert_str_eq(fanout_http_response_header(&r, "x-padded"), "padded value");
    ck_assert_str_eq(fanout_http_response_header(&r, "x-empty"), "");
    ck_assert_ptr_null(fanout_http_response_header(&r, "x-absent"));
    ck_assert_ptr_null(fanout_http_response_header(NULL, "x-absent"));
    /* names as received; no status line among them */
    int found = 0;
    for (size_t i = 0; i < r.header_count; i++) {
        found |= strcmp(r.headers[i].name, "X-Amzn-RequestId") == 0;
        ck_assert_ptr_null(strstr(r.headers[i].name, "HTTP/"));
    }
    ck_assert(found);
    fanout_http_response_clean_up(&r);
}
END_TEST

/* The header names and values live in one block that moves as it grows:
 * 40 headers of 100 bytes (4 KiB) and an obsolete folded line continuing
 * a value (the continuation appends to the block's last text). */
START_TEST(test_response_headers_many)
{
    char path[8192] = "/status/200?header=X-Folded:first%0D%0A%20second%09part";
    size_t n = strlen(path);
    for (int i = 0; i < 40; i++) {
        n += (size_t)snprintf(path + n, sizeof path - n, "&header=X-H%02d:", i);
        for (int k = 0; k < 100; k++)
            path[n++] = (char)('a' + (i + k) % 26);
        path[n] = 0;
    }
    struct fanout_http_response r = {0};
    char url[sizeof path + 64];
    struct fanout_http_request q = {
        .method = "GET",
        .url = s_url(url, sizeof url, &s_t.plain, 0, "127.0.0.1", path),
        .timeout_ms = 5000,
    };
    s_perform1(&q, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(fanout_http_response_header(&r, "x-folded"), "first second\tpart");
    for (int i = 0; i < 40; i++) {
        char name[8], want[101];
        snprintf(name, sizeof name, "X-H%02d", i);
        for (int k = 0; k < 100; k++)
            want[k] = (char)('a' + (i + k) % 26);
        want[100] = 0;
        const char *got = fanout_http_response_header(&r, name);
        ck_assert_msg(got && strcmp(got, want) == 0, "%s: %s", name, got ? got : "(none)");
    }
    fanout_http_response_clean_up(&r);
    ck_assert_ptr_null(r.headers);
    ck_assert_ptr_null(r.header_text.p);
}
END_TEST

START_TEST(test_body_cap)
{
    char path[64];
    /* announced by Content-Length: refused before reading */
    struct fanout_http_response r = {0};
    snprintf(path, sizeof path, "/big/%zu", MAX_BODY + 1);
    s_get(path, 20000, &r);
    ck_assert_int_eq(r.error, FANOUT_HTTP_OTHER);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.error_text, "over"));
    ck_assert_uint_eq(r.body.len, 0);
    /* chunked: refused when it gets there */
    snprintf(path, sizeof path, "/big/%zu?chunked=1", MAX_BODY + 100000);
    s_get(path, 60000, &r);
    ck_assert_int_eq(r.error, FANOUT_HTTP_OTHER);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.error_text, "over"));
    ck_assert_uint_eq(r.body.len, 0);
    ck_assert_ptr_null(r.body.bytes);
    /* the connection was dropped, the next request is fine */
    s_get("/echo", 5000, &r);
    ck_assert_int_eq(r.status, 200);
    /* HEAD: the announced length is not a body */
    char url[PATH_LEN];
    snprintf(path, sizeof path, "/big/%zu", MAX_BODY + 1);
    struct fanout_http_request q = {
        .method = "HEAD",
        .url = s_url(url, sizeof url, &s_t.plain, 0, "127.0.0.1", path),
        .timeout_ms = S_OK_WAIT_MS,
    };
    s_perform1(&q, &r);
    ck_assert_msg(r.error == FANOUT_HTTP_OK, "%s", r.error_text);
    ck_assert_int_eq(r.status, 200);
    fanout_http_response_clean_up(&r);
}
END_TEST

/* Header names: every byte that is not an RFC 9110 tchar refuses the
 * request before it is sent; a name made of every tchar goes out. */
START_TEST(test_header_name_bytes)
{
    static const char tchars[] = "!#$%&'*+-.^_`|~0123456789"
                                 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    char good[PATH_LEN];
    s_url(good, sizeof good, &s_t.plain, 0, "127.0.0.1", "/echo");
    static char names[256][4];
    static struct fanout_http_header hs[256];
    static struct fanout_http_request q[256];
    static struct fanout_http_response r[256];
    const struct fanout_http_request *qs[256];
    struct fanout_http_response *rs[256];
    size_t n = 0;
    for (int c = 1; c < 256; c++) {
        if (strchr(tchars, c))
            continue;
        snprintf(names[n], sizeof names[n], "X%cY", c);
        hs[n] = (struct fanout_http_header){names[n], "v"};
        q[n] = (struct fanout_http_request){
            .method = "GET", .url = good, .headers = &hs[n], .header_count = 1};
        n++;
    }
    struct fanout_http_header all = {tchars, "v"};
    q[n] = (struct fanout_http_request){
        .method = "GET", .url = good, .headers = &all, .header_count = 1};
    for (size_t i = 0; i <= n; i++) {
        qs[i] = &q[i];
        rs[i] = &r[i];
    }
    fanout_http_perform(qs, rs, n + 1);
    for (size_t i = 0; i < n; i++) {
        s_expect_error(&r[i], FANOUT_HTTP_OTHER, names[i]);
        ck_assert_str_eq(r[i].error_text, "invalid request header");
    }
    ck_assert_int_eq(r[n].status, 200);
    json_t *d = s_body_json(&r[n]);
    char lower[sizeof tchars];
    for (size_t i = 0; i < sizeof tchars; i++)
        lower[i] = (char)tolower((unsigned char)tchars[i]);
    ck_assert_str_eq(s_jheader(d, lower), "v");
    json_decref(d);
    for (size_t i = 0; i <= n; i++)
        fanout_http_response_clean_up(&r[i]);
}
END_TEST

START_TEST(test_invalid_requests)
{
    char good[PATH_LEN];
    s_url(good, sizeof good, &s_t.plain, 0, "127.0.0.1", "/echo");
    struct fanout_http_header bad_value[] = {{"X-Bad", "a\r\nX-Injected: 1"}};
    struct fanout_http_header bad_name[] = {{"X Bad", "a"}};
    struct fanout_http_request q[6] = {
        {.method = "GET", .url = good, .headers = bad_value, .header_count = 1},
        {.method = "GET", .url = good, .headers = bad_name, .header_count = 1},
        {.method = "GET", .url = "not a url"},
        {.method = "GET", .url = "file:///etc/passwd"},
        {.method = "GET\r\nX", .url = good},
        {.method = "GET", .url = good, .timeout_ms = S_OK_WAIT_MS}, /* fine */
    };
    struct fanout_http_response r[6] = {0};
    const struct fanout_http_request *qs[6];
    struct fanout_http_response *rs[6];
    for (int i = 0; i < 6; i++) {
        qs[i] = &q[i];
        rs[i] = &r[i];
    }
    fanout_http_perform(qs, rs, 6);
    for (int i = 0; i < 5; i++)
        s_expect_error(&r[i], FANOUT_HTTP_OTHER, "invalid request");
    ck_assert_int_eq(r[5].status, 200);
    for (int i = 0; i < 6; i++)
        fanout_http_response_clean_up(&r[i]);
    ck_assert_int_eq(s_stat(&s_t.plain, 0, "requests"), 1);
    /* nothing to do */
    fanout_http_perform(NULL, NULL, 0);
}
END_TEST

/* A server may answer before it has read the request's body, and stop
 * reading (a front end refusing a body too large): the answer is the
 * request's, not a send failure or a timeout; the connection, with the
 * body half sent, is not reused even when the server drains the body. */
START_TEST(test_early_answer_to_big_body)
{
    /* more than the loopback connection's buffers take */
    const size_t big = (size_t)32 << 20;
    uint8_t *body = calloc(1, big);
    ck_assert_ptr_nonnull(body);
    static const char *const paths[] = {"/early/413", "/early/413?close=1",
                                        "/early/413?drain=1"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char url[PATH_LEN];
        struct fanout_http_request q = {
            .method = "POST",
            .url = s_url(url, sizeof url, &s_t.plain, 0, "127.0.0.1", paths[i]),
            .body = body,
            .body_len = big,
            .timeout_ms = S_OK_WAIT_MS,
        };
        struct fanout_http_response r = {0};
        s_perform1(&q, &r);
        ck_assert_msg(r.error == FANOUT_HTTP_OK, "%s: %s", paths[i], r.error_text);
        ck_assert_int_eq(r.status, 413);
        json_t *d = s_body_json(&r);
        ck_assert(json_is_true(json_object_get(d, "early")));
        json_decref(d);
        fanout_http_response_clean_up(&r);
        /* the next request: on a new connection, answered */
        s_get("/echo", S_OK_WAIT_MS, &r);
        ck_assert_msg(r.error == FANOUT_HTTP_OK, "%s, then /echo: %s", paths[i],
                      r.error_text);
        d = s_body_json(&r);
        ck_assert_int_eq(s_jint(d, "connectionRequest"), 1);
        json_decref(d);
        fanout_http_response_clean_up(&r);
    }
    free(body);
}
END_TEST

/* ---- TLS ---------------------------------------------------------------------- */

START_TEST(test_tls_verified_by_default)
{
    s_tls_start();
    char url[PATH_LEN];
    struct fanout_http_request q = {
        .method = "GET",
        .url = s_url(url, sizeof url, &s_t.tls, 1, "127.0.0.1", "/echo"),
        .timeout_ms = S_OK_WAIT_MS,
        .connect_timeout_ms = S_OK_WAIT_MS, /* libcurl counts the TLS handshake in it */
    };
    struct fanout_http_response r = {0};
    s_perform1(&q, &r);
    s_expect_error(&r, FANOUT_HTTP_TLS, "self-signed");
    ck_assert_msg(strstr(r.error_text, "certificate") != NULL, "%s", r.error_text);
    fanout_http_response_clean_up(&r);
}
END_TEST

START_TEST(test_tls_ca_bundle)
{
    s_tls_start();
    setenv("FANOUT_CA_BUNDLE", s_t.cert, 1);
    s_reinit();
    static const char *const hosts[] = {"127.0.0.1", "localhost", "127.0.0.1"};
    for (int i = 0; i < 3; i++) {
        char url[PATH_LEN];
        struct fanout_http_request q = {
            .method = "POST",
            .url = s_url(url, sizeof url, &s_t.tls, 1, hosts[i], "/echo"),
            .body = (const uint8_t *)"x\0y",
            .body_len = 3,
            .timeout_ms = S_OK_WAIT_MS,
            .connect_timeout_ms = S_OK_WAIT_MS, /* libcurl counts the TLS handshake in it */
        };
        struct fanout_http_response r = {0};
        s_perform1(&q, &r);
        ck_assert_msg(r.error == FANOUT_HTTP_OK, "%s: %s", hosts[i], r.error_text);
        ck_assert_int_eq(r.status, 200);
        json_t *d = s_body_json(&r);
        ck_assert(json_is_true(json_object_get(d, "tls")));
        ck_assert_int_eq(s_jint(d, "bodyLength"), 3);
        json_decref(d);
        fanout_http_response_clean_up(&r);
    }
    /* one connection per host name, the second 127.0.0.1 call reused its */
    ck_assert_int_eq(s_stat(&s_t.tls, 1, "connections"), 2);
    ck_assert_int_eq(s_stat(&s_t.tls, 1, "requests"), 3);
    /* the server offered h2 first: HTTP/1.1 was chosen */
    ck_assert_int_eq(s_stat(&s_t.tls, 1, "h2Connections"), 0);
}
END_TEST

static enum fanout_http_error s_tls_get(const char *host, char *text, size_t text_len)
{
    char url[PATH_LEN];
    struct fanout_http_request q = {
        .method = "GET",
        .url = s_url(url, sizeof url, &s_t.tls, 1, host, "/echo"),
        .timeout_ms = S_OK_WAIT_MS,
        .connect_timeout_ms = S_OK_WAIT_MS, /* libcurl counts the TLS handshake in it */
    };
    struct fanout_http_response r = {0};
    s_perform1(&q, &r);
    enum fanout_http_error e = r.error;
    if (e == FANOUT_HTTP_OK)
        ck_assert_int_eq(r.status, 200);
    fanout_strlcpy(text, r.error_text, text_len);
    fanout_http_response_clean_up(&r);
    return e;
}

START_TEST(test_tls_insecure_hosts)
{
    s_tls_start();
    char list[PATH_LEN], text[256];

    /* host:port */
    snprintf(list, sizeof list, "example.com, 127.0.0.1:%d", s_t.tls.port);
    setenv("FANOUT_TLS_INSECURE_HOSTS", list, 1);
    s_reinit();
    ck_assert_msg(s_tls_get("127.0.0.1", text, sizeof text) == FANOUT_HTTP_OK, "%s", text);
    ck_assert_msg(s_tls_get("localhost", text, sizeof text) == FANOUT_HTTP_TLS, "%s", text);

    /* another port: still verified */
    setenv("FANOUT_TLS_INSECURE_HOSTS", "127.0.0.1:1", 1);
    s_reinit();
    ck_assert_msg(s_tls_get("127.0.0.1", text, sizeof text) == FANOUT_HTTP_TLS, "%s", text);

    /* a host, any port, any case; read once at init */
    setenv("FANOUT_TLS_INSECURE_HOSTS", "LOCALHOST", 1);
    s_reinit();
    unsetenv("FANOUT_TLS_INSECURE_HOSTS");
    ck_assert_msg(s_tls_get("localhost", text, sizeof text) == FANOUT_HTTP_OK, "%s", text);
    ck_assert_msg(s_tls_get("127.0.0.1", text, sizeof text) == FANOUT_HTTP_TLS, "%s", text);

    /* the warning names the setting */
    char *log = s_read_log();
    ck_assert_ptr_nonnull(strstr(log, "FANOUT_TLS_INSECURE_HOSTS"));
    free(log);
}
END_TEST

/* ---- the CA store: one per process (aws/tls_store.c) ------------------------- */

/* Concatenate files into `out`. */
static void s_cat(const char *out, const char *const *in, size_t n)
{
    FILE *o = fopen(out, "w");
    ck_assert_ptr_nonnull(o);
    for (size_t i = 0; i < n; i++) {
        FILE *f = fopen(in[i], "r");
        ck_assert_msg(f != NULL, "%s: %s", in[i], strerror(errno));
        char chunk[4096];
        size_t got;
        while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
            ck_assert_uint_eq(fwrite(chunk, 1, got, o), got);
        fclose(f);
    }
    ck_assert_int_eq(fclose(o), 0);
}

static size_t s_count(const char *text, const char *what)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

START_TEST(test_tls_store_loaded_once)
{
    /* a bundle of two CAs, the server's second */
    s_tls_start();
    char bundle[PATH_LEN], other[PATH_LEN], other_key[PATH_LEN], text[256];
    s_make_cert(s_tmp_path(other_key, sizeof other_key, "other-key.pem"),
                s_tmp_path(other, sizeof other, "other.pem"));
    const char *parts[] = {other, s_t.cert};
    s_cat(s_tmp_path(bundle, sizeof bundle, "bundle.pem"), parts, 2);
    setenv("FANOUT_CA_BUNDLE", bundle, 1);
    fanout_log_set(FANOUT_LOG_DEBUG, 0);
    s_reinit();

    /* plain HTTP loads no CA */
    struct fanout_http_response r = {0};
    s_get("/echo", 5000, &r);
    ck_assert_int_eq(r.status, 200);
    fanout_http_response_clean_up(&r);
    char *log = s_read_log();
    ck_assert_msg(s_count(log, "CA store loaded") == 0, "%s", log);
    free(log);

    /* the first HTTPS request loads it */
    ck_assert_msg(s_tls_get("127.0.0.1", text, sizeof text) == FANOUT_HTTP_OK, "%s", text);
    s_reset_counters(&s_t.tls, 1);

    /* then the bundle is gone from disk: calls at once on other threads,
     * each on its own multi handle and new connections, verify with the
     * store loaded once (libcurl loading the bundle per multi handle would
     * fail them) */
    ck_assert_int_eq(unlink(bundle), 0);
    enum { T = 4, ROUNDS = 2, WIDTH = 2 };
    struct thread_job jobs[T];
    pthread_t ts[T];
    for (int i = 0; i < T; i++) {
        jobs[i] =
            (struct thread_job){.rounds = ROUNDS, .width = WIDTH, .wait_ms = S_OK_WAIT_MS};
        s_url(jobs[i].url, sizeof jobs[i].url, &s_t.tls, 1,
              i % 2 ? "localhost" : "127.0.0.1", "/stall/300");
        ck_assert_int_eq(pthread_create(&ts[i], NULL, s_thread_main, &jobs[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(ts[i], NULL);
        ck_assert_int_eq(jobs[i].failures, 0);
    }
    ck_assert_int_eq(s_stat(&s_t.tls, 1, "requests"), T * ROUNDS * WIDTH);
    /* calls overlapped, so more than one multi handle made connections */
    json_int_t inflight = s_stat(&s_t.tls, 1, "maxInflight");
    ck_assert_msg(inflight > WIDTH, "at most %lld requests at once", (long long)inflight);
    ck_assert_int_gt(s_stat(&s_t.tls, 1, "connections"), WIDTH);

    log = s_read_log();
    ck_assert_msg(
        s_count(log, "CA store loaded once for all connections: 2 certificates") == 1, "%s",
        log);
    free(log);
}
END_TEST

START_TEST(test_tls_store_other_ca_refused)
{
    s_tls_start();
    char other[PATH_LEN], other_key[PATH_LEN], text[256];
    s_make_cert(s_tmp_path(other_key, sizeof other_key, "other-key.pem"),
                s_tmp_path(other, sizeof other, "other.pem"));
    setenv("FANOUT_CA_BUNDLE", other, 1);
    s_reinit();
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(s_tls_get("127.0.0.1", text, sizeof text) == FANOUT_HTTP_TLS, "%s",
                      text);
        ck_assert_msg(strstr(text, "certificate") != NULL, "%s", text);
    }
}
END_TEST

START_TEST(test_tls_store_bad_bundle)
{
    s_tls_start();
    char path[PATH_LEN], text[256], list[PATH_LEN];
    /* missing: named, with the reason; an insecure endpoint still works,
     * and no request goes out unverified */
    s_tmp_path(path, sizeof path, "missing.pem");
    setenv("FANOUT_CA_BUNDLE", path, 1);
    snprintf(list, sizeof list, "127.0.0.1:%d", s_t.tls.port);
    setenv("FANOUT_TLS_INSECURE_HOSTS", list, 1);
    s_reinit();
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(s_tls_get("localhost", text, sizeof text) == FANOUT_HTTP_TLS, "%s",
                      text);
        ck_assert_msg(strstr(text, path) != NULL, "%s", text);
        ck_assert_msg(strstr(text, "FANOUT_CA_BUNDLE") != NULL, "%s", text);
        ck_assert_msg(strstr(text, "No such file") != NULL, "%s", text);
    }
    ck_assert_msg(s_tls_get("127.0.0.1", text, sizeof text) == FANOUT_HTTP_OK, "%s", text);
    ck_assert_int_eq(s_stat(&s_t.tls, 1, "requests"), 1);
    char *log = s_read_log();
    ck_assert_msg(s_count(log, "cannot load the CA bundle") == 1, "%s", log);
    free(log);

    /* there but no certificate in it */
    s_tmp_path(path, sizeof path, "bad.pem");
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not a certificate\n", f);
    fclose(f);
    setenv("FANOUT_CA_BUNDLE", path, 1);
    unsetenv("FANOUT_TLS_INSECURE_HOSTS");
    s_reinit();
    ck_assert_msg(s_tls_get("127.0.0.1", text, sizeof text) == FANOUT_HTTP_TLS, "%s", text);
    ck_assert_msg(strstr(text, path) != NULL, "%s", text);
    ck_assert_int_eq(s_stat(&s_t.tls, 1, "requests"), 1);
}
END_TEST

/* ---- the raw path's own TLS and connect (aws/net.c) -------------------------- */

/* The TLS server again, on a certificate made by `make` for it. */
static void s_tls_restart(void (*make)(const char *key, const char *cert, const char *arg),
                          const char *arg)
{
    s_server_stop(&s_t.tls);
    make(s_t.key, s_t.cert, arg);
    s_server_start(&s_t.tls, 1);
}

/* A self-signed certificate for the subjectAltName `san` only. */
static void s_make_cert_san(const char *key, const char *cert, const char *san)
{
    s_make_cert_for(key, cert, "fanout-other.test", san);
}

/* A certificate for 127.0.0.1 and localhost that expired yesterday (openssl
 * req cannot date one in the past: python3-cryptography, as the chaos
 * server's own dependencies). */
static void s_make_cert_expired(const char *key, const char *cert, const char *unused)
{
    (void)unused;
    const char *script =
        "import datetime, ipaddress, sys\n"
        "from cryptography import x509\n"
        "from cryptography.x509.oid import NameOID\n"
        "from cryptography.hazmat.primitives import hashes, serialization\n"
        "from cryptography.hazmat.primitives.asymmetric import ec\n"
        "k = ec.generate_private_key(ec.SECP256R1())\n"
        "n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, '127.0.0.1')])\n"
        "now = datetime.datetime.now(datetime.timezone.utc)\n"
        "c = (x509.CertificateBuilder().subject_name(n).issuer_name(n)\n"
        "     .public_key(k.public_key()).serial_number(x509.random_serial_number())\n"
        "     .not_valid_before(now - datetime.timedelta(days=3))\n"
        "     .not_valid_after(now - datetime.timedelta(days=1))\n"
        "     .add_extension(x509.SubjectAlternativeName([\n"
        "         x509.IPAddress(ipaddress.ip_address('127.0.0.1')),\n"
        "         x509.DNSName('localhost')]), critical=False)\n"
        "     .sign(k, hashes.SHA256()))\n"
        "open(sys.argv[1], 'wb').write(k.private_bytes(serialization.Encoding.PEM,\n"
        "    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))\n"
        "open(sys.argv[2], 'wb').write(c.public_bytes(serialization.Encoding.PEM))\n";
    const char *argv[] = {"/usr/bin/python3", "-c", script, key, cert, NULL};
    ck_assert_int_eq(s_run(argv), 0);
}

/* GET `path` from the TLS server at `host` (the URL's form), with
 * verification off for it alone when `no_verify`, and the headers h[0..n):
 * the response in *r. */
static void s_tls_request(const char *host, const char *path, int no_verify,
                          const struct fanout_http_header *h, size_t n,
                          struct fanout_http_response *r)
{
    char url[PATH_LEN];
    struct fanout_http_request q = {
        .method = "GET",
        .url = s_url(url, sizeof url, &s_t.tls, 1, host, path),
        .headers = h,
        .header_count = n,
        .timeout_ms = S_OK_WAIT_MS,
        .connect_timeout_ms = S_OK_WAIT_MS,
        .tls_no_verify = no_verify,
    };
    s_perform1(&q, r);
}

/* One request to `host` on the TLS server, with verification off for it
 * alone when `no_verify`; returns the error class, its words in `text`. */
static enum fanout_http_error s_tls_get2(const char *host, int no_verify, char *text,
                                         size_t text_len)
{
    struct fanout_http_response r = {0};
    s_tls_request(host, "/echo", no_verify, NULL, 0, &r);
    enum fanout_http_error e = r.error;
    if (e == FANOUT_HTTP_OK)
        ck_assert_int_eq(r.status, 200);
    else
        ck_assert_int_eq(r.status, 0);
    fanout_strlcpy(text, r.error_text, text_len);
    fanout_http_response_clean_up(&r);
    return e;
}

#define S_EXPECT_TLS(host, no_verify, words)                                               \
    do {                                                                                   \
        char t_[256];                                                                      \
        ck_assert_msg(s_tls_get2(host, no_verify, t_, sizeof t_) == FANOUT_HTTP_TLS,       \
                      "%s: %s", host, t_);                                                 \
        ck_assert_msg(strstr(t_, words) != NULL && strstr(t_, host) != NULL,               \
                      "%s: wanted \"%s\": %s", host, words, t_);                           \
    } while (0)

#define S_EXPECT_OK(host, no_verify)                                                       \
    do {                                                                                   \
        char t_[256];                                                                      \
        ck_assert_msg(s_tls_get2(host, no_verify, t_, sizeof t_) == FANOUT_HTTP_OK,        \
                      "%s: %s", host, t_);                                                 \
    } while (0)

START_TEST(test_tls_refusals_named)
{
    /* not trusted: the verification result's words and the host */
    s_tls_start();
    S_EXPECT_TLS("127.0.0.1", 0, "self-signed certificate");
    S_EXPECT_TLS("localhost", 0, "self-signed certificate");

    /* trusted, but for another name: the name and the address checked */
    s_tls_restart(s_make_cert_san, "DNS:fanout-other.test");
    setenv("FANOUT_CA_BUNDLE", s_t.cert, 1);
    s_reinit();
    S_EXPECT_TLS("localhost", 0, "hostname mismatch");
    S_EXPECT_TLS("127.0.0.1", 0, "IP address mismatch");
    /* the request's own opt-out (--no-verify-ssl) and the listed host's */
    S_EXPECT_OK("localhost", 1);
    S_EXPECT_OK("127.0.0.1", 1);
    char list[64];
    snprintf(list, sizeof list, "localhost:%d", s_t.tls.port);
    setenv("FANOUT_TLS_INSECURE_HOSTS", list, 1);
    s_reinit();
    S_EXPECT_OK("localhost", 0);
    S_EXPECT_TLS("127.0.0.1", 0, "IP address mismatch");
    unsetenv("FANOUT_TLS_INSECURE_HOSTS");

    /* a certificate for the address only: an IP literal verifies */
    s_tls_restart(s_make_cert_san, "IP:127.0.0.1");
    s_reinit();
    S_EXPECT_OK("127.0.0.1", 0);
    S_EXPECT_TLS("localhost", 0, "hostname mismatch");

    /* expired */
    s_tls_restart(s_make_cert_expired, NULL);
    s_reinit();
    S_EXPECT_TLS("127.0.0.1", 0, "certificate has expired");
    S_EXPECT_OK("127.0.0.1", 1);
    /* the server saw only the requests that were verified or let through */
    ck_assert_int_eq(s_stat(&s_t.tls, 1, "requests"), 1);
}
END_TEST

/* GET /echo from the TLS server at `host` (the URL's form), verified;
 * the echo's JSON, NULL with the words in `text` when it failed. */
static json_t *s_tls_echo(const char *host, char *text, size_t text_len)
{
    struct fanout_http_response r = {0};
    s_tls_request(host, "/echo", 0, NULL, 0, &r);
    fanout_strlcpy(text, r.error_text, text_len);
    json_t *doc = r.error == FANOUT_HTTP_OK && r.status == 200 ? s_body_json(&r) : NULL;
    fanout_http_response_clean_up(&r);
    return doc;
}

/* `name` resolves to 127.0.0.1 for the TLS server's port (the test hook:
 * the machine's resolver knows none of these names). */
static void s_resolves_to_loopback(const char *name)
{
    const char *lo[] = {"127.0.0.1"};
    ck_assert_int_eq(fanout_net_test_resolved(name, s_t.tls.port, lo, 1), 0);
}

START_TEST(test_tls_host_forms)
{
    /* a certificate for localhost and 127.0.0.1, trusted */
    s_tls_start();
    setenv("FANOUT_CA_BUNDLE", s_t.cert, 1);
    s_reinit();
    char text[256];
    /* an absolute name: resolved as written, verified and sent (SNI)
     * without its dot */
    s_resolves_to_loopback("localhost.");
    json_t *doc = s_tls_echo("localhost.", text, sizeof text);
    ck_assert_msg(doc != NULL, "localhost.: %s", text);
    ck_assert_str_eq(s_jstr(doc, "sni"), "localhost");
    ck_assert_msg(strncmp(s_jheader(doc, "host"), "localhost.:", 11) == 0, "Host: %s",
                  s_jheader(doc, "host"));
    json_decref(doc);
    /* upper case: verified, the name sent in lower case */
    doc = s_tls_echo("LocalHost", text, sizeof text);
    ck_assert_msg(doc != NULL, "LocalHost: %s", text);
    ck_assert_str_eq(s_jstr(doc, "sni"), "localhost");
    json_decref(doc);
    /* an address: no SNI, the address verified */
    doc = s_tls_echo("127.0.0.1", text, sizeof text);
    ck_assert_msg(doc != NULL, "127.0.0.1: %s", text);
    ck_assert_ptr_null(s_jstr(doc, "sni"));
    json_decref(doc);
    /* brackets hold an IPv6 address, not an IPv4 one (nor a name) */
    ck_assert_ptr_null(s_tls_echo("[127.0.0.1]", text, sizeof text));
    ck_assert_ptr_null(s_tls_echo("[localhost]", text, sizeof text));
    /* nothing but a dot */
    s_resolves_to_loopback(".");
    ck_assert_ptr_null(s_tls_echo(".", text, sizeof text));

    /* a wildcard matches a whole left-most label, not part of one */
    s_tls_restart(s_make_cert_san, "DNS:h*.fanout.test");
    s_reinit();
    s_resolves_to_loopback("host.fanout.test");
    S_EXPECT_TLS("host.fanout.test", 0, "hostname mismatch");
    s_tls_restart(s_make_cert_san, "DNS:*.fanout.test");
    s_reinit();
    s_resolves_to_loopback("host.fanout.test");
    S_EXPECT_OK("host.fanout.test", 0);
    /* the server saw only the requests that were verified */
    ck_assert_int_eq(s_stat(&s_t.tls, 1, "requests"), 1);
}
END_TEST

/* GET `path` from the TLS server at `host`, verified unless `no_verify`:
 * the echo's tlsResumed (-1: the request failed, its words in `text`).
 * The path "ask-close" asks with Connection: close: the server closes
 * after its answer, which does not say so (the connection goes back to
 * the pool, and is found closed when the next request checks it). */
static int s_tls_resumed(const char *host, const char *path, int no_verify, char *text,
                         size_t text_len)
{
    static const struct fanout_http_header ask_close = {"Connection", "close"};
    int ask = strcmp(path, "ask-close") == 0;
    struct fanout_http_response r = {0};
    s_tls_request(host, ask ? "/echo" : path, no_verify, &ask_close, ask ? 1 : 0, &r);
    fanout_strlcpy(text, r.error_text, text_len);
    int resumed = -1;
    if (r.error == FANOUT_HTTP_OK && r.status == 200) {
        json_t *doc = s_body_json(&r);
        resumed = json_is_true(json_object_get(doc, "tlsResumed"));
        json_decref(doc);
    }
    fanout_http_response_clean_up(&r);
    return resumed;
}

START_TEST(test_tls_session_resumed)
{
    s_tls_start();
    setenv("FANOUT_CA_BUNDLE", s_t.cert, 1);
    s_reinit();
    fanout_log_set(FANOUT_LOG_DEBUG, 0);
    char text[256];
    /* the first connection: a full handshake; the server closes it
     * (Connection: close), so the next request connects again, resuming
     * the session the first one was given */
    ck_assert_int_eq(s_tls_resumed("localhost", "/echo?close=1", 0, text, sizeof text), 0);
    ck_assert_int_eq(s_tls_resumed("localhost", "/echo?close=1", 0, text, sizeof text), 1);
    /* and again (a ticket is offered again, or a newer one) */
    ck_assert_int_eq(s_tls_resumed("localhost", "/echo?close=1", 0, text, sizeof text), 1);
    /* a connection the server closed while idle (no close_notify either
     * way) leaves its session resumable */
    ck_assert_int_eq(s_tls_resumed("localhost", "ask-close", 0, text, sizeof text), 1);
    ck_assert_int_eq(s_tls_resumed("localhost", "ask-close", 0, text, sizeof text), 1);
    ck_assert_int_eq(s_tls_resumed("localhost", "ask-close", 0, text, sizeof text), 1);
    /* another name for the same server: its own session */
    ck_assert_int_eq(s_tls_resumed("127.0.0.1", "/echo?close=1", 0, text, sizeof text), 0);
    ck_assert_int_eq(s_tls_resumed("127.0.0.1", "/echo?close=1", 0, text, sizeof text), 1);
    char *log = s_read_log();
    ck_assert_msg(strstr(log, "(new, TLS session resumed connection)") != NULL, "%s", log);
    free(log);
    fanout_log_set(FANOUT_LOG_INFO, 0);

    /* a session made without verification is never offered where the
     * peer is verified (a resumed handshake checks no certificate): the
     * CA store no longer trusts the server */
    unsetenv("FANOUT_CA_BUNDLE");
    s_reinit();
    ck_assert_int_eq(s_tls_resumed("localhost", "/echo?close=1", 1, text, sizeof text), 0);
    ck_assert_int_eq(s_tls_resumed("localhost", "/echo?close=1", 1, text, sizeof text), 1);
    ck_assert_int_eq(s_tls_resumed("localhost", "/echo?close=1", 0, text, sizeof text), -1);
    ck_assert_msg(strstr(text, "self-signed certificate") != NULL, "%s", text);
    /* a clean-up drops the sessions */
    s_reinit();
    ck_assert_int_eq(s_tls_resumed("localhost", "/echo?close=1", 1, text, sizeof text), 0);
}
END_TEST

/* GET /echo?close=1 from the TLS server at `host`, verified unless
 * `no_verify`: whether the handshake resumed (-1: failed) and its TLS
 * version, as the server saw them. */
static int s_tls_resumed_v(const char *host, int no_verify, char *version, size_t len)
{
    struct fanout_http_response r = {0};
    s_tls_request(host, "/echo?close=1", no_verify, NULL, 0, &r);
    int resumed = -1;
    version[0] = 0;
    if (r.error == FANOUT_HTTP_OK && r.status == 200) {
        json_t *doc = s_body_json(&r);
        resumed = json_is_true(json_object_get(doc, "tlsResumed"));
        const char *v = json_string_value(json_object_get(doc, "tlsVersion"));
        fanout_strlcpy(version, v ? v : "", len);
        json_decref(doc);
    }
    ck_assert_msg(resumed >= 0, "%s: %s", host, r.error_text);
    fanout_http_response_clean_up(&r);
    return resumed;
}

/* A server limited to TLS 1.2 (a session ID or ticket given at the
 * handshake's end, not TLS 1.3's tickets after it): the second connection
 * resumes; a session is never offered across verification settings (a
 * resumed handshake checks no certificate), nor to another name. */
START_TEST(test_tls12_session_resumed)
{
    s_make_cert(s_t.key, s_t.cert);
    s_server_start(&s_t.tls, 2);
    setenv("FANOUT_CA_BUNDLE", s_t.cert, 1);
    s_reinit();
    char v[32];
    ck_assert_int_eq(s_tls_resumed_v("localhost", 0, v, sizeof v), 0);
    ck_assert_str_eq(v, "TLSv1.2");
    ck_assert_int_eq(s_tls_resumed_v("localhost", 0, v, sizeof v), 1);
    ck_assert_str_eq(v, "TLSv1.2");
    ck_assert_int_eq(s_tls_resumed_v("localhost", 0, v, sizeof v), 1);
    /* verification off for the same place: its own full handshake */
    ck_assert_int_eq(s_tls_resumed_v("localhost", 1, v, sizeof v), 0);
    ck_assert_int_eq(s_tls_resumed_v("localhost", 1, v, sizeof v), 1);
    /* and the verified place kept its own */
    ck_assert_int_eq(s_tls_resumed_v("localhost", 0, v, sizeof v), 1);
    /* another name for the same server */
    ck_assert_int_eq(s_tls_resumed_v("127.0.0.1", 0, v, sizeof v), 0);
    ck_assert_int_eq(s_tls_resumed_v("127.0.0.1", 0, v, sizeof v), 1);

    /* a session made without verification is not offered once the peer
     * is verified and no longer trusted: the handshake checks and refuses */
    unsetenv("FANOUT_CA_BUNDLE");
    s_reinit();
    ck_assert_int_eq(s_tls_resumed_v("localhost", 1, v, sizeof v), 0);
    ck_assert_int_eq(s_tls_resumed_v("localhost", 1, v, sizeof v), 1);
    char text[256];
    ck_assert_int_eq(s_tls_resumed("localhost", "/echo?close=1", 0, text, sizeof text), -1);
    ck_assert_msg(strstr(text, "self-signed certificate") != NULL, "%s", text);
}
END_TEST

/* A close ends a body read to the close only when it is the server's own
 * word: over TLS close_notify first; a TCP close alone (a FIN anyone on the
 * path could send mid-body) fails the answer, naming the server, and so
 * does any close before a Content-Length or chunked body is whole. The TLS
 * session survives such a close. Plain HTTP keeps taking bodies read to
 * the close. */
struct s_cut_case {
    const char *path;
    const char *words; /* NULL: a 200 with "body to close" */
};

static void s_cut_cases(const struct server *sv, int tls, const struct s_cut_case *cases,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct s_cut_case *k = &cases[i];
        char url[PATH_LEN], want[128];
        struct fanout_http_request q = {
            .method = "GET",
            .url = s_url(url, sizeof url, sv, tls, "127.0.0.1", k->path),
            .timeout_ms = S_OK_WAIT_MS,
            .connect_timeout_ms = S_OK_WAIT_MS};
        struct fanout_http_response r = {0};
        s_perform1(&q, &r);
        if (!k->words) {
            ck_assert_msg(r.error == FANOUT_HTTP_OK && r.status == 200, "%s %s: %s",
                          tls ? "https" : "http", k->path, r.error_text);
            ck_assert_uint_eq(r.body.len, 13);
            ck_assert_int_eq(memcmp(r.body.bytes, "body to close", 13), 0);
        } else {
            s_expect_error(&r, FANOUT_HTTP_RESET, k->path);
            snprintf(want, sizeof want,
                     "answer from 127.0.0.1:%d: connection closed before the answer was "
                     "complete (",
                     sv->port);
            ck_assert_msg(strstr(r.error_text, want) && strstr(r.error_text, k->words),
                          "%s %s: %s", tls ? "https" : "http", k->path, r.error_text);
        }
        fanout_http_response_clean_up(&r);
    }
}

START_TEST(test_tls_truncation)
{
    static const struct s_cut_case tls_cases[] = {
        {"/raw/http10-notify", NULL},
        {"/raw/http10",
         "a body read to the close, 13 bytes, ended without TLS close_notify"},
        {"/raw/short", "91 of 100 body bytes missing"},
        {"/raw/chunk-short", "in its chunked body, 4 bytes read"},
        {"/reset-mid?mode=fin", "99000 of 100000 body bytes missing"},
        {"/raw/http10-notify", NULL},
    };
    static const struct s_cut_case plain_cases[] = {
        {"/raw/http10", NULL},
        {"/raw/http10-notify", NULL},
        {"/raw/short", "91 of 100 body bytes missing"},
        {"/raw/chunk-short", "in its chunked body, 4 bytes read"},
    };
    s_cut_cases(&s_t.plain, 0, plain_cases, sizeof plain_cases / sizeof plain_cases[0]);
    s_tls_start();
    setenv("FANOUT_CA_BUNDLE", s_t.cert, 1);
    s_reinit();
    s_cut_cases(&s_t.tls, 1, tls_cases, sizeof tls_cases / sizeof tls_cases[0]);
    /* a close without close_notify is no TLS failure: the session of the
     * place is still offered */
    char text[256];
    ck_assert_int_eq(s_tls_resumed("127.0.0.1", "/raw/http10", 0, text, sizeof text), -1);
    ck_assert_int_eq(s_tls_resumed("127.0.0.1", "/echo?close=1", 0, text, sizeof text), 1);
}
END_TEST

/* A server of one connection: it reads the client's first bytes, then
 * closes (S_CLOSE), or answers in plain text (S_GARBAGE), or says nothing
 * until the client goes (S_MUTE). */
enum s_oneshot_mode { S_CLOSE, S_GARBAGE, S_MUTE };
struct s_oneshot {
    int ls;
    enum s_oneshot_mode mode;
    pthread_t th;
};

static void *s_oneshot_main(void *arg)
{
    struct s_oneshot *o = arg;
    int fd = accept(o->ls, NULL, NULL);
    if (fd < 0)
        return NULL;
    char buf[4096];
    if (o->mode == S_MUTE) {
        while (recv(fd, buf, sizeof buf, 0) > 0)
            ;
    } else {
        (void)recv(fd, buf, sizeof buf, 0); /* the ClientHello */
        if (o->mode == S_GARBAGE) {
            static const char junk[] = "HTTP/1.1 400 Bad Request\r\n\r\nnot TLS at all";
            (void)send(fd, junk, sizeof junk - 1, MSG_NOSIGNAL);
        }
    }
    close(fd);
    return NULL;
}

static int s_oneshot_start(struct s_oneshot *o, enum s_oneshot_mode mode)
{
    o->mode = mode;
    o->ls = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(o->ls, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(o->ls, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(getsockname(o->ls, (struct sockaddr *)&sa, &sl), 0);
    ck_assert_int_eq(listen(o->ls, 4), 0);
    ck_assert_int_eq(pthread_create(&o->th, NULL, s_oneshot_main, o), 0);
    return ntohs(sa.sin_port);
}

static void s_oneshot_stop(struct s_oneshot *o)
{
    pthread_join(o->th, NULL);
    close(o->ls);
}

static void s_oneshot_get(int port, int64_t connect_timeout_ms,
                          struct fanout_http_response *r)
{
    char url[PATH_LEN];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/echo", port);
    struct fanout_http_request q = {.method = "GET",
                                    .url = url,
                                    .timeout_ms = S_OK_WAIT_MS,
                                    .connect_timeout_ms = connect_timeout_ms};
    s_perform1(&q, r);
}

START_TEST(test_tls_handshake_failures)
{
    struct fanout_http_response r = {0};
    /* closed mid-handshake */
    struct s_oneshot o;
    int port = s_oneshot_start(&o, S_CLOSE);
    s_oneshot_get(port, S_OK_WAIT_MS, &r);
    s_oneshot_stop(&o);
    s_expect_error(&r, FANOUT_HTTP_TLS, "closed mid-handshake");
    ck_assert_msg(strstr(r.error_text, "TLS handshake with 127.0.0.1") != NULL, "%s",
                  r.error_text);

    /* plain text where TLS was expected */
    port = s_oneshot_start(&o, S_GARBAGE);
    s_oneshot_get(port, S_OK_WAIT_MS, &r);
    s_oneshot_stop(&o);
    s_expect_error(&r, FANOUT_HTTP_TLS, "garbage");
    ck_assert_msg(strstr(r.error_text, "TLS handshake with 127.0.0.1") != NULL &&
                      strstr(r.error_text, "wrong version number") != NULL,
                  "%s", r.error_text);

    /* no answer to the ClientHello: the connect timeout covers the handshake */
    port = s_oneshot_start(&o, S_MUTE);
    int64_t t0 = s_mono_ms();
    s_oneshot_get(port, 300, &r);
    int64_t took = s_mono_ms() - t0;
    s_oneshot_stop(&o);
    s_expect_error(&r, FANOUT_HTTP_TIMEOUT, "silent handshake");
    ck_assert_msg(strstr(r.error_text, "TLS handshake") != NULL, "%s", r.error_text);
    ck_assert_msg(took >= 250 && took < 5000, "took %lld ms", (long long)took);
    fanout_http_response_clean_up(&r);
}
END_TEST

/* ---- environment, logging, lifecycle ------------------------------------------ */

/* A proxy that does not resolve: a request sent to it fails. */
#define S_DEAD_PROXY "http://fanout-dead-proxy.invalid:8080"

/* The chaos server's URL, as a proxy. */
static const char *s_proxy_url(char *buf, size_t len)
{
    snprintf(buf, len, "http://127.0.0.1:%d", s_t.plain.port);
    return buf;
}

/* `method` `url` after a fresh init (the environment is read there), the
 * chaos server's counters zeroed first. */
static void s_env_request(const char *method, const char *url,
                          struct fanout_http_response *r)
{
    s_reinit();
    s_reset_counters(&s_t.plain, 0);
    struct fanout_http_request q = {
        .method = method,
        .url = url,
        .body = (const uint8_t *)"{}",
        .body_len = strcmp(method, "POST") == 0 ? 2 : 0,
        .timeout_ms = S_OK_WAIT_MS,
    };
    if (!q.body_len)
        q.body = NULL;
    s_perform1(&q, r);
}

/* The request went through the chaos server as a proxy (an HTTP URL):
 * the answer is its echo of the absolute URL. */
static void s_expect_proxied(struct fanout_http_response *r, const char *url,
                             const char *what)
{
    ck_assert_msg(r->error == FANOUT_HTTP_OK, "%s: %s", what, r->error_text);
    ck_assert_int_eq(r->status, 200);
    json_t *d = s_body_json(r);
    ck_assert_msg(strcmp(s_jstr(d, "target"), url) == 0, "%s: target %s", what,
                  s_jstr(d, "target"));
    ck_assert_str_eq(s_jheader(d, "host"), "fanout-proxy-test.invalid");
    json_decref(d);
    fanout_http_response_clean_up(r);
}

/* The request went straight to its host, which does not resolve: the
 * chaos server saw neither a request nor a CONNECT. */
static void s_expect_direct(struct fanout_http_response *r, const char *what)
{
    s_expect_error(r, FANOUT_HTTP_CONNECT, what);
    ck_assert_msg(strstr(r->error_text, "fanout-proxy-test.invalid") != NULL, "%s: %s",
                  what, r->error_text);
    ck_assert_int_eq(s_stat(&s_t.plain, 0, "requests"), 0);
    ck_assert_int_eq(s_stat(&s_t.plain, 0, "connects"), 0);
    fanout_http_response_clean_up(r);
}

/* An HTTPS request asked the chaos server for a tunnel (refused). */
static void s_expect_tunnel(struct fanout_http_response *r, const char *what)
{
    ck_assert_msg(r->error != FANOUT_HTTP_OK && r->status == 0, "%s: status %ld", what,
                  r->status);
    ck_assert_int_eq(s_stat(&s_t.plain, 0, "connects"), 1);
    json_t *doc = s_control(&s_t.plain, 0, "/stats");
    ck_assert_str_eq(s_jstr(doc, "lastConnect"), "fanout-proxy-test.invalid:443");
    json_decref(doc);
    fanout_http_response_clean_up(r);
}

#define S_HTTP_URL  "http://fanout-proxy-test.invalid/via-proxy?x=1"
#define S_HTTPS_URL "https://fanout-proxy-test.invalid/via-proxy"

/* Proxy variables set one at a time, each followed (when `url` is set)
 * by a request after a fresh init and where it went. */
enum s_route { S_PROXIED, S_DIRECT, S_TUNNEL };
struct s_proxy_step {
    const char *name;
    const char *value; /* "@": the chaos server; "!": S_DEAD_PROXY; NULL: unset */
    const char *method, *url;
    enum s_route route;
    const char *what;
};

static void s_proxy_steps(const struct s_proxy_step *steps, size_t n)
{
    char proxy[64];
    s_proxy_url(proxy, sizeof proxy);
    for (size_t i = 0; i < n; i++) {
        const struct s_proxy_step *st = &steps[i];
        if (!st->value)
            unsetenv(st->name);
        else
            setenv(st->name,
                   strcmp(st->value, "@") == 0   ? proxy
                   : strcmp(st->value, "!") == 0 ? S_DEAD_PROXY
                                                 : st->value,
                   1);
        if (!st->url)
            continue;
        struct fanout_http_response r = {0};
        s_env_request(st->method, st->url, &r);
        if (st->route == S_PROXIED)
            s_expect_proxied(&r, st->url, st->what);
        else if (st->route == S_DIRECT)
            s_expect_direct(&r, st->what);
        else
            s_expect_tunnel(&r, st->what);
    }
}

START_TEST(test_proxy_from_environment)
{
    static const struct s_proxy_step steps[] = {
        {"http_proxy", "@", "GET", S_HTTP_URL, S_PROXIED, "http_proxy"},
        /* NO_PROXY: straight to a host that does not resolve */
        {"NO_PROXY", ".invalid", "GET", S_HTTP_URL, S_DIRECT, "NO_PROXY"},
        {"no_proxy", "other.example", "GET", S_HTTP_URL, S_PROXIED, "no_proxy first"},
        {"no_proxy", "*", "GET", S_HTTP_URL, S_DIRECT, "no_proxy *"},
    };
    s_proxy_steps(steps, sizeof steps / sizeof steps[0]);
}
END_TEST

/* libcurl's order for http: http_proxy (never HTTP_PROXY), all_proxy,
 * ALL_PROXY; an empty variable counts as unset. */
START_TEST(test_proxy_env_order_http)
{
    static const struct s_proxy_step steps[] = {
        {"HTTP_PROXY", "@", NULL, NULL, S_DIRECT, NULL},
        {"https_proxy", "@", "GET", S_HTTP_URL, S_DIRECT,
         "HTTP_PROXY, https_proxy for http"},
        {"ALL_PROXY", "@", "GET", S_HTTP_URL, S_PROXIED, "ALL_PROXY"},
        {"ALL_PROXY", "!", NULL, NULL, S_DIRECT, NULL},
        {"all_proxy", "@", "GET", S_HTTP_URL, S_PROXIED, "all_proxy before ALL_PROXY"},
        {"all_proxy", "!", NULL, NULL, S_DIRECT, NULL},
        {"http_proxy", "@", "POST", S_HTTP_URL, S_PROXIED, "http_proxy before all_proxy"},
        {"all_proxy", "@", NULL, NULL, S_DIRECT, NULL},
        {"http_proxy", "", "GET", S_HTTP_URL, S_PROXIED, "empty http_proxy"},
    };
    s_proxy_steps(steps, sizeof steps / sizeof steps[0]);
}
END_TEST

/* https: https_proxy, HTTPS_PROXY, then all_proxy, ALL_PROXY; the proxy is
 * asked for a tunnel. */
START_TEST(test_proxy_env_order_https)
{
    static const struct s_proxy_step steps[] = {
        {"http_proxy", "@", "GET", S_HTTPS_URL, S_DIRECT, "http_proxy for https"},
        {"HTTPS_PROXY", "@", "GET", S_HTTPS_URL, S_TUNNEL, "HTTPS_PROXY"},
        {"HTTPS_PROXY", "!", NULL, NULL, S_DIRECT, NULL},
        {"https_proxy", "@", "POST", S_HTTPS_URL, S_TUNNEL,
         "https_proxy before HTTPS_PROXY"},
        {"https_proxy", NULL, NULL, NULL, S_DIRECT, NULL},
        {"HTTPS_PROXY", NULL, NULL, NULL, S_DIRECT, NULL},
        {"ALL_PROXY", "@", "GET", S_HTTPS_URL, S_TUNNEL, "ALL_PROXY for https"},
        {"NO_PROXY", "fanout-proxy-test.invalid", "GET", S_HTTPS_URL, S_DIRECT,
         "NO_PROXY for https"},
    };
    s_proxy_steps(steps, sizeof steps / sizeof steps[0]);
}
END_TEST

/* A handle set up for POSTs to one scheme takes the other scheme's proxy
 * when it next posts to the other. */
START_TEST(test_proxy_per_scheme_on_reuse)
{
    char proxy[64];
    s_proxy_url(proxy, sizeof proxy);
    struct fanout_http_response r = {0};
    setenv("http_proxy", proxy, 1);
    s_env_request("POST", S_HTTP_URL, &r);
    s_expect_proxied(&r, S_HTTP_URL, "http first");
    struct fanout_http_request q = {.method = "POST",
                                    .url = S_HTTPS_URL,
                                    .body = (const uint8_t *)"{}",
                                    .body_len = 2,
                                    .timeout_ms = S_OK_WAIT_MS};
    s_reset_counters(&s_t.plain, 0);
    s_perform1(&q, &r);
    s_expect_direct(&r, "https after http");
    q.url = S_HTTP_URL;
    s_perform1(&q, &r);
    s_expect_proxied(&r, S_HTTP_URL, "http after https");

    unsetenv("http_proxy");
    setenv("https_proxy", proxy, 1);
    s_env_request("POST", S_HTTPS_URL, &r);
    s_expect_tunnel(&r, "https first");
    s_reset_counters(&s_t.plain, 0);
    s_perform1(&q, &r);
    s_expect_direct(&r, "http after https");
}
END_TEST

static const char *const s_secrets[] = {
    "AKIDSECRET1",  "SIGSECRET2",  "TOKENSECRET3",
    "QUERYSECRET4", "BODYSECRET5", "RESPSECRET6",
};

static void s_secret_traffic(void)
{
    struct fanout_http_header hs[] = {
        {"Authorization", "AWS4-HMAC-SHA256 Credential=AKIDSECRET1/20240101/us-east-1/"
                          "kinesis/aws4_request, SignedHeaders=host, Signature=SIGSECRET2"},
        {"X-Amz-Security-Token", "TOKENSECRET3"},
    };
    char u[4][PATH_LEN];
    struct fanout_http_request q[4] = {
        {.method = "POST",
         .url = s_url(u[0], PATH_LEN, &s_t.plain, 0, "127.0.0.1",
                      "/status/200?X-Amz-Signature=QUERYSECRET4&header=X-Resp:RESPSECRET6"),
         .headers = hs,
         .header_count = 2,
         .body = (const uint8_t *)"BODYSECRET5",
         .body_len = 11,
         .timeout_ms = S_OK_WAIT_MS},
        {.method = "POST",
         .url = s_url(u[1], PATH_LEN, &s_t.plain, 0, "127.0.0.1", "/reset-mid"),
         .headers = hs,
         .header_count = 2,
         .body = (const uint8_t *)"BODYSECRET5",
         .body_len = 11,
         .timeout_ms = S_OK_WAIT_MS},
        {.method = "GET",
         .url = s_url(u[2], PATH_LEN, &s_t.plain, 0, "127.0.0.1", "/stall/2000"),
         .headers = hs,
         .header_count = 2,
         .timeout_ms = 100},
        {.method = "GET",
         .url =
             s_url(u[3], PATH_LEN, &s_t.plain, 0, "127.0.0.1", "/echo?token=QUERYSECRET4"),
         .headers = hs,
         .header_count = 2,
         .timeout_ms = S_OK_WAIT_MS},
    };
    struct fanout_http_response r[4] = {0};
    const struct fanout_http_request *qs[4] = {&q[0], &q[1], &q[2], &q[3]};
    struct fanout_http_response *rs[4] = {&r[0], &r[1], &r[2], &r[3]};
    fanout_http_perform(qs, rs, 4);
    ck_assert_int_eq(r[0].status, 200);
    ck_assert_str_eq(fanout_http_response_header(&r[0], "x-resp"), "RESPSECRET6");
    ck_assert_int_eq(r[1].error, FANOUT_HTTP_RESET);
    ck_assert_int_eq(r[2].error, FANOUT_HTTP_TIMEOUT);
    ck_assert_int_eq(r[3].status, 200); /* the echo holds them all */
    for (int i = 0; i < 4; i++) {
        for (size_t k = 0; k < sizeof s_secrets / sizeof s_secrets[0]; k++)
            ck_assert_msg(strstr(r[i].error_text, s_secrets[k]) == NULL, "%s in error text",
                          s_secrets[k]);
        fanout_http_response_clean_up(&r[i]);
    }
}

START_TEST(test_no_secrets_logged)
{
    /* info: nothing with a secret (nothing at all, in fact) */
    s_secret_traffic();
    char *log = s_read_log();
    for (size_t k = 0; k < sizeof s_secrets / sizeof s_secrets[0]; k++)
        ck_assert_msg(strstr(log, s_secrets[k]) == NULL, "%s logged at info", s_secrets[k]);
    free(log);

    /* debug: method, host, path, status, timing; still no secret */
    fanout_log_set(FANOUT_LOG_DEBUG, 0);
    s_secret_traffic();
    log = s_read_log();
    for (size_t k = 0; k < sizeof s_secrets / sizeof s_secrets[0]; k++)
        ck_assert_msg(strstr(log, s_secrets[k]) == NULL, "%s logged at debug: %s",
                      s_secrets[k], log);
    ck_assert_msg(strstr(log, "POST 127.0.0.1:") && strstr(log, "/status/200 -> 200"), "%s",
                  log);
    ck_assert_msg(strstr(log, "/stall/2000 failed") && strstr(log, "timeout"), "%s", log);
    ck_assert_ptr_nonnull(strstr(log, "[http]"));
    free(log);
}
END_TEST

START_TEST(test_init_reference_counted)
{
    struct fanout_http_response r = {0};
    /* the fixture's init, and one more */
    ck_assert_int_eq(fanout_http_global_init(), 0);
    fanout_http_global_cleanup();
    s_get("/echo", 5000, &r);
    ck_assert_int_eq(r.status, 200);
    /* the last clean-up: calls fail cleanly, extra clean-ups are harmless */
    fanout_http_global_cleanup();
    fanout_http_global_cleanup();
    s_get("/echo", 5000, &r);
    s_expect_error(&r, FANOUT_HTTP_OTHER, "after clean-up");
    /* and it starts again */
    ck_assert_int_eq(fanout_http_global_init(), 0);
    s_get("/echo", 5000, &r);
    ck_assert_int_eq(r.status, 200);
    fanout_http_response_clean_up(&r);
    fanout_http_response_clean_up(NULL);
}
END_TEST

START_TEST(test_response_reused)
{
    /* a response passed again is emptied first, not leaked */
    struct fanout_http_response r = {0};
    s_get("/big/100000", 5000, &r);
    ck_assert_uint_eq(r.body.len, 100000);
    s_get("/status/200?header=X-Only:1&body=abc", 5000, &r);
    ck_assert_uint_eq(r.body.len, 3);
    ck_assert_str_eq(fanout_http_response_header(&r, "x-only"), "1");
    s_get("/reset", 5000, &r);
    s_expect_error(&r, FANOUT_HTTP_RESET, "reset");
    fanout_http_response_clean_up(&r);
}
END_TEST

/* ---- HTTP/1.1 framing on raw connections (chaos server /raw/<name>) ------------- */

struct s_raw_case {
    const char *name;
    enum fanout_http_error error; /* FANOUT_HTTP_OK: a 200 with `body` */
    const char *body;
    const char *header, *value; /* a header the answer has (or NULL) */
    const char *absent;         /* a header it must not have (or NULL) */
};

START_TEST(test_raw_framing)
{
    static const struct s_raw_case cases[] = {
        {"chunked-ext", FANOUT_HTTP_OK, "hello, world", "X-A", "1", "X-Trailer"},
        {"bytewise", FANOUT_HTTP_OK, "slow!", "X-Slow", "yes", NULL},
        {"continue", FANOUT_HTTP_OK, "ok", "X-Final", "1", "X-Interim"},
        {"cl-same", FANOUT_HTTP_OK, "ok", NULL, NULL, NULL},
        {"http10", FANOUT_HTTP_OK, "body to close", "Content-Type", "text/plain", NULL},
        {"switching", FANOUT_HTTP_OTHER, NULL, NULL, NULL, NULL},
        {"short", FANOUT_HTTP_RESET, NULL, NULL, NULL, NULL},
        {"cl-conflict", FANOUT_HTTP_OTHER, NULL, NULL, NULL, NULL},
        {"cl-sign", FANOUT_HTTP_OTHER, NULL, NULL, NULL, NULL},
        {"garbage", FANOUT_HTTP_OTHER, NULL, NULL, NULL, NULL},
        {"status-4", FANOUT_HTTP_OTHER, NULL, NULL, NULL, NULL},
        {"header-flood", FANOUT_HTTP_OTHER, NULL, NULL, NULL, NULL},
        {"chunk-overflow", FANOUT_HTTP_OTHER, NULL, NULL, NULL, NULL},
        {"chunk-bad-end", FANOUT_HTTP_RESET, NULL, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct s_raw_case *c = &cases[i];
        char path[64];
        snprintf(path, sizeof path, "/raw/%s", c->name);
        struct fanout_http_response r = {0};
        s_get(path, 5000, &r);
        if (c->error != FANOUT_HTTP_OK) {
            s_expect_error(&r, c->error, c->name);
        } else {
            ck_assert_msg(r.error == FANOUT_HTTP_OK && r.status == 200, "%s: %ld %s",
                          c->name, r.status, r.error_text);
            ck_assert_msg(r.body.len == strlen(c->body) &&
                              memcmp(r.body.bytes, c->body, r.body.len) == 0,
                          "%s: body %.*s", c->name, (int)r.body.len,
                          r.body.bytes ? (const char *)r.body.bytes : "");
            if (c->header)
                ck_assert_str_eq(fanout_http_response_header(&r, c->header), c->value);
            if (c->absent)
                ck_assert_ptr_null(fanout_http_response_header(&r, c->absent));
        }
        if (strcmp(c->name, "chunk-overflow") == 0)
            ck_assert_ptr_nonnull(strstr(r.error_text, "over"));
        fanout_http_response_clean_up(&r);
    }
    /* chunks of 1 to 40 bytes (upper-case hex) */
    struct fanout_http_response r = {0};
    s_get("/raw/chunk-sizes", 5000, &r);
    ck_assert_msg(r.error == FANOUT_HTTP_OK, "%s", r.error_text);
    ck_assert_uint_eq(r.body.len, 820);
    for (size_t i = 0; i < r.body.len; i++)
        ck_assert_uint_eq(r.body.bytes[i], i % 251);
    /* and the connection still carries an echo */
    s_get("/echo", 5000, &r);
    s_conn_id(&r);
    fanout_http_response_clean_up(&r);
}
END_TEST

/* An answer after which the connection must not carry another request
 * (or cannot): the next request is answered, by its own echo, on another
 * connection. */
START_TEST(test_raw_not_reused)
{
    static const char *const names[] = {"conn-close", "extra-same", "extra-later",
                                        "http10",     "idle-close", "drop-next"};
    struct fanout_http_response r = {0};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        s_get("/echo", 5000, &r);
        json_int_t before = s_conn_id(&r);
        char path[64];
        snprintf(path, sizeof path, "/raw/%s", names[i]);
        s_get(path, 5000, &r);
        ck_assert_msg(r.error == FANOUT_HTTP_OK && r.status == 200, "%s: %s", names[i],
                      r.error_text);
        usleep(150 * 1000); /* the late extra answer, the close, have come */
        s_get("/echo", 5000, &r);
        json_int_t after = s_conn_id(&r); /* the echo, not an answer left over */
        ck_assert_msg(after != before, "%s: the connection was reused", names[i]);
    }
    fanout_http_response_clean_up(&r);
}
END_TEST

/* A call of several requests checks its idle connections together (one
 * poll): one holding an answer nobody asked for, one the server closed,
 * one it said it would close and one whose unasked answer came in the same
 * write as a 1 KiB answer (over TLS: left in the TLS layer, the socket
 * quiet) are still not reused, and each request of the next call gets its
 * own answer. On the plain and the TLS server. */
static void s_not_reused_together(const struct server *sv, int tls)
{
    static const char *const first[] = {
        "/raw/extra-later", "/echo", "/raw/idle-close", "/echo",
        "/raw/conn-close",  "/echo", "/raw/extra-1k",   "/echo"};
    enum { N = sizeof first / sizeof first[0] };
    static char urls[N][PATH_LEN];
    struct fanout_http_request q[N];
    struct fanout_http_response r[N];
    const struct fanout_http_request *qs[N];
    struct fanout_http_response *rs[N];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            char path[64];
            snprintf(path, sizeof path, "%s?n=%d", round ? "/echo" : first[i], i);
            q[i] = (struct fanout_http_request){
                .method = "GET",
                .url = s_url(urls[i], PATH_LEN, sv, tls, "127.0.0.1", path),
                .timeout_ms = S_OK_WAIT_MS,
                .connect_timeout_ms = S_OK_WAIT_MS,
            };
            memset(&r[i], 0, sizeof r[i]);
            qs[i] = &q[i];
            rs[i] = &r[i];
        }
        fanout_http_perform(qs, rs, N);
        for (int i = 0; i < N; i++) {
            ck_assert_msg(r[i].error == FANOUT_HTTP_OK && r[i].status == 200,
                          "round %d, request %d: %ld %s", round, i, r[i].status,
                          r[i].error_text);
            if (round == 1) {
                /* its own echo, not an answer left on a connection */
                json_t *d = s_body_json(&r[i]);
                char want[16];
                snprintf(want, sizeof want, "n=%d", i);
                const char *got = json_string_value(json_object_get(d, "query"));
                ck_assert_msg(got && strcmp(got, want) == 0, "request %d: query %s", i,
                              got ? got : "(none)");
                json_decref(d);
            }
            fanout_http_response_clean_up(&r[i]);
        }
        if (round == 0) {
            usleep(150 * 1000); /* the late extra answer, the close, have come */
            s_reset_counters(sv, tls);
        }
    }
    /* the four good connections reused, four new for the bad ones */
    ck_assert_int_eq(s_stat(sv, tls, "connections"), 4);
}

START_TEST(test_raw_not_reused_together)
{
    s_not_reused_together(&s_t.plain, 0);
    s_tls_start();
    setenv("FANOUT_CA_BUNDLE", s_t.cert, 1);
    s_reinit();
    s_not_reused_together(&s_t.tls, 1);
}
END_TEST

/* The request head: the request line, Host, the headers as given, and
 * Content-Length when there is a body; nothing added unasked. */
START_TEST(test_raw_request_head)
{
    char url[PATH_LEN], host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", s_t.plain.port);
    struct fanout_http_header hs[] = {{"X-A", "1"}, {"x-empty", ""}};
    struct fanout_http_header post_hs[] = {{"Content-Type", "application/x-amz-json-1.0"}};
    struct fanout_http_header host_hs[] = {{"X-B", "2"}, {"Host", "signed.example:8443"}};
    struct fanout_http_request q[3] = {
        {.method = "GET",
         .url = s_url(url, sizeof url, &s_t.plain, 0, "127.0.0.1", "/echo?a=1"),
         .headers = hs,
         .header_count = 2,
         .timeout_ms = 5000},
        {.method = "POST",
         .url = url,
         .headers = post_hs,
         .header_count = 1,
         .body = (const uint8_t *)"abc",
         .body_len = 3,
         .timeout_ms = 5000},
        {.method = "GET",
         .url = url,
         .headers = host_hs,
         .header_count = 2,
         .timeout_ms = 5000},
    };
    const char *want[3][4][2] = {
        {{"Host", host}, {"X-A", "1"}, {"x-empty", ""}},
        {{"Host", host},
         {"Content-Type", "application/x-amz-json-1.0"},
         {"Content-Length", "3"}},
        {{"Host", "signed.example:8443"}, {"X-B", "2"}},
    };
    for (int k = 0; k < 3; k++) {
        struct fanout_http_response r = {0};
        s_perform1(&q[k], &r);
        ck_assert_msg(r.error == FANOUT_HTTP_OK, "%s", r.error_text);
        json_t *d = s_body_json(&r);
        json_t *list = json_object_get(d, "headerList");
        size_t n = 0;
        while (n < 4 && want[k][n][0])
            n++;
        ck_assert_msg(json_array_size(list) == n, "request %d: %zu headers sent", k,
                      json_array_size(list));
        for (size_t i = 0; i < n; i++) {
            json_t *h = json_array_get(list, i);
            ck_assert_str_eq(json_string_value(json_array_get(h, 0)), want[k][i][0]);
            ck_assert_str_eq(json_string_value(json_array_get(h, 1)), want[k][i][1]);
        }
        json_decref(d);
        fanout_http_response_clean_up(&r);
    }
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("http");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_get_round_trip);
    tcase_add_test(tc, test_methods_and_bodies);
    tcase_add_test(tc, test_handles_reused_between_requests);
    tcase_add_test(tc, test_big_response);
    tcase_add_test(tc, test_concurrent_requests);
    tcase_add_test(tc, test_raw_descriptor_budget);
    tcase_add_test(tc, test_reuse_across_calls);
    tcase_add_test(tc, test_reuse_across_threads);
    tcase_add_test(tc, test_timeout);
    tcase_add_test(tc, test_connect_errors);
    tcase_add_test(tc, test_connect_timeout);
    tcase_add_test(tc, test_connect_family_fallback);
    tcase_add_test(tc, test_connect_side_by_side);
    tcase_add_test(tc, test_resolve_timeout);
    tcase_add_test(tc, test_resolve_shared);
    tcase_add_test(tc, test_resets);
    tcase_add_test(tc, test_statuses);
    tcase_add_test(tc, test_response_headers);
    tcase_add_test(tc, test_response_headers_many);
    tcase_add_test(tc, test_body_cap);
    tcase_add_test(tc, test_invalid_requests);
    tcase_add_test(tc, test_header_name_bytes);
    tcase_add_test(tc, test_early_answer_to_big_body);
    tcase_add_test(tc, test_tls_verified_by_default);
    tcase_add_test(tc, test_tls_ca_bundle);
    tcase_add_test(tc, test_tls_insecure_hosts);
    tcase_add_test(tc, test_tls_store_loaded_once);
    tcase_add_test(tc, test_tls_store_other_ca_refused);
    tcase_add_test(tc, test_tls_store_bad_bundle);
    tcase_add_test(tc, test_tls_refusals_named);
    tcase_add_test(tc, test_tls_handshake_failures);
    tcase_add_test(tc, test_tls_host_forms);
    tcase_add_test(tc, test_tls_session_resumed);
    tcase_add_test(tc, test_tls_truncation);
    tcase_add_test(tc, test_tls12_session_resumed);
    tcase_add_test(tc, test_proxy_from_environment);
    tcase_add_test(tc, test_proxy_env_order_http);
    tcase_add_test(tc, test_proxy_env_order_https);
    tcase_add_test(tc, test_proxy_per_scheme_on_reuse);
    tcase_add_test(tc, test_no_secrets_logged);
    tcase_add_test(tc, test_init_reference_counted);
    tcase_add_test(tc, test_response_reused);
    tcase_add_test(tc, test_raw_framing);
    tcase_add_test(tc, test_raw_not_reused);
    tcase_add_test(tc, test_raw_not_reused_together);
    tcase_add_test(tc, test_raw_request_head);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fanout_check_run(s_suite());
}
