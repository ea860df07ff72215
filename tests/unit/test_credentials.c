/* Check suite for engine/aws/credentials.c: the base chain, STS AssumeRole and
 * the cache.
 *
 * Tests that talk to a server start tests/servers/sts_server.py on an
 * ephemeral port (it prints the port first), point AWS_ENDPOINT_URL_STS (or
 * the container variables) at it, and read its /stats afterwards. The server
 * checks every AssumeRole signature with botocore, so a success proves the
 * signing end to end. It exits when this process goes away. Every test
 * captures the log, and shared files and ~/.aws are kept out of reach. */
#include <check.h>

#include "check_main.h"
#include "test_server.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "aws/credentials.h"
#include "aws/credentials/provider.h"
#include "aws/http.h"
#include "common/log.h"
#include "aws/sigv4.h"
#include "common/util.h"

extern char **environ;

#define PATH_LEN     512
#define REGION       "us-east-1"
#define ACCOUNT_ROLE "arn:aws:iam::123456789012:role/"

/* What the server knows as signers: a Lambda-like key with a session
 * token, and a long-term key. */
#define BASE_AKID   "AKIDFANOUTTESTBASE01"
#define BASE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYbaseSECRET"
#define BASE_TOKEN  "IQoJb3JpZ2luX2VjEBASEtoken+/=fanoutBaseSessionToken0123456789abcdef"
#define LT_AKID     "AKIDFANOUTLONGTERM01"
#define LT_SECRET   "longTermSecretKeyValue/0123456789+abcdefg"
#define CT_TOKEN    "Bearer fanout-container-auth-token-0123456789"
#define EXTERNAL_ID "fanout+ext:id/=,.@-1" /* the server's default */

static struct {
    char dir[PATH_LEN / 2];
    char log[PATH_LEN];
    int log_fd;
    pid_t pid;
    int port;
    char url[64];
} s_t;

static const char *const s_env_vars[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_DEFAULT_REGION",
    "AWS_LAMBDA_FUNCTION_NAME",
    "FANOUT_ASSUME_ROLE_SECONDS",
    "FANOUT_CREDENTIALS_REFRESH_SECONDS",
    "FANOUT_AWS_MAX_ATTEMPTS",
    "FANOUT_AWS_RETRY_BASE_MS",
    "FANOUT_AWS_RETRY_CAP_MS",
    "FANOUT_AWS_TIMEOUT_MS",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_SSO",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_METADATA_SERVICE_TIMEOUT",
    "AWS_METADATA_SERVICE_NUM_ATTEMPTS",
    "FANOUT_CREDENTIAL_PROCESS_TIMEOUT_SECONDS",
    "MODE",
};

/* The SSO portal / IMDS test endpoint (sso_imds_server.py). */
static struct {
    pid_t pid;
    char url[64];
} s_aux = {-1, ""};

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_sleep_ms(int64_t ms)
{
    if (ms > 0)
        usleep((useconds_t)(ms * 1000));
}

static void s_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", s_t.dir, name);
}

static void s_write_file(const char *name, const char *text)
{
    char p[PATH_LEN];
    s_path(p, sizeof p, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void s_setup(void)
{
    memset(&s_t, 0, sizeof s_t);
    s_t.pid = -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(s_t.dir, sizeof s_t.dir, "%s/fanout-cred-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(s_t.dir));
    s_path(s_t.log, sizeof s_t.log, "log.txt");
    s_t.log_fd = open(s_t.log, O_CREAT | O_WRONLY | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    ck_assert_int_ge(s_t.log_fd, 0);
    fanout_log_set(FANOUT_LOG_DEBUG, 0);
    fanout_log_set_fd(s_t.log_fd);

    for (size_t i = 0; i < sizeof s_env_vars / sizeof s_env_vars[0]; i++)
        unsetenv(s_env_vars[i]);
    /* Never the developer's ~/.aws: files that do not exist. */
    char p[PATH_LEN];
    s_path(p, sizeof p, "no-credentials");
    setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
    s_path(p, sizeof p, "no-config");
    setenv("AWS_CONFIG_FILE", p, 1);
    setenv("AWS_REGION", REGION, 1);
    setenv("FANOUT_AWS_RETRY_BASE_MS", "20", 1);
    setenv("FANOUT_AWS_RETRY_CAP_MS", "200", 1);
    setenv("FANOUT_AWS_TIMEOUT_MS", "5000", 1);
    /* Never the real instance metadata service, never the real ~/.aws. */
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("HOME", s_t.dir, 1);
    s_aux.pid = -1;
    fanout_credentials_reset();
}

static void s_server_stop(void)
{
    fanout_test_stop_server(&s_t.pid);
}

static void s_teardown(void)
{
    fanout_credentials_reset();
    s_server_stop();
    fanout_test_stop_server(&s_aux.pid);
    fanout_log_set_fd(-1);
    fanout_log_set(FANOUT_LOG_INFO, 0);
    if (s_t.log_fd >= 0)
        close(s_t.log_fd);
    static const char *const files[] = {"log.txt", "credentials", "config",
                                        "token",   "proc.sh",     "args.txt"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[PATH_LEN];
        s_path(p, sizeof p, files[i]);
        unlink(p);
    }
    char cmd[PATH_LEN + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/home'", s_t.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s/home\n", s_t.dir);
    rmdir(s_t.dir);
}

/* Start sts_server.py with extra options (NULL-terminated); sets s_t.url
 * and AWS_ENDPOINT_URL_STS. */
static void s_server_start(const char *opt, ...)
{
    const char *dir = getenv("FANOUT_TESTS_DIR");
    char script[PATH_LEN], ppid[32];
    snprintf(script, sizeof script, "%s/servers/sts_server.py",
             dir && *dir ? dir : "tests");
    snprintf(ppid, sizeof ppid, "%ld", (long)getpid());
    const char *argv[40] = {"/usr/bin/python3",  script,
                            "--base-key",        BASE_AKID ":" BASE_SECRET ":" BASE_TOKEN,
                            "--base-key",        LT_AKID ":" LT_SECRET,
                            "--container-token", CT_TOKEN,
                            "--parent-pid",      ppid,
                            "--max-lifetime",    "120"};
    size_t argc = 12;
    va_list ap;
    va_start(ap, opt);
    for (const char *o = opt; o && argc < 39; o = va_arg(ap, const char *))
        argv[argc++] = o;
    va_end(ap);
    argv[argc] = NULL;

    s_t.port = fanout_test_spawn_server(argv, &s_t.pid, "sts_server.py");
    snprintf(s_t.url, sizeof s_t.url, "http://127.0.0.1:%d", s_t.port);
    setenv("AWS_ENDPOINT_URL_STS", s_t.url, 1);
}

/* ---- talking to the server ---------------------------------------------- */

static long s_http(const char *method, const char *path, const char *body, char **out)
{
    char url[128];
    snprintf(url, sizeof url, "%s%s", s_t.url, path);
    char hn[] = "Content-Type", hv[] = "application/json";
    struct fanout_http_header h = {hn, hv};
    struct fanout_http_request req = {.method = method,
                                      .url = url,
                                      .headers = body ? &h : NULL,
                                      .header_count = body ? 1 : 0,
                                      .body = (const uint8_t *)body,
                                      .body_len = body ? strlen(body) : 0,
                                      .timeout_ms = 10000};
    struct fanout_http_response resp;
    memset(&resp, 0, sizeof resp);
    const struct fanout_http_request *rq[1] = {&req};
    struct fanout_http_response *rs[1] = {&resp};
    fanout_http_perform(rq, rs, 1);
    long status = resp.status;
    if (out)
        *out = strdup(resp.body.bytes ? (const char *)resp.body.bytes : "");
    fanout_http_response_clean_up(&resp);
    return status;
}

static json_t *s_stats(void)
{
    char *body;
    ck_assert_int_eq(s_http("GET", "/stats", NULL, &body), 200);
    json_error_t jerr;
    json_t *j = json_loads(body, 0, &jerr);
    free(body);
    ck_assert_msg(j != NULL, "bad /stats: %s", jerr.text);
    return j;
}

static long s_role_stat(const char *arn, const char *field)
{
    json_t *j = s_stats();
    json_t *r = json_object_get(json_object_get(j, "roles"), arn);
    long v = r ? (long)json_integer_value(json_object_get(r, field)) : 0;
    json_decref(j);
    return v;
}

static long s_stat(const char *group, const char *field)
{
    json_t *j = s_stats();
    long v = (long)json_integer_value(json_object_get(json_object_get(j, group), field));
    json_decref(j);
    return v;
}

/* A field of the role's last AssumeRole request, as a string ("" for null,
 * the number in decimal). */
static void s_role_last(const char *arn, const char *field, char *out, size_t len)
{
    json_t *j = s_stats();
    json_t *v = json_object_get(
        json_object_get(json_object_get(json_object_get(j, "roles"), arn), "last"), field);
    if (json_is_string(v))
        snprintf(out, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, len, "%lld", (long long)json_integer_value(v));
    else
        snprintf(out, len, "%s", "");
    json_decref(j);
}

static void s_control(const char *arn, const char *mode, int count)
{
    char body[512];
    snprintf(body, sizeof body, "{\"role\":\"%s\",\"mode\":\"%s\",\"count\":%d}", arn, mode,
             count);
    ck_assert_int_eq(s_http("POST", "/control", body, NULL), 200);
}

/* POST /service signed with `c`: the status, and the error type in `type`. */
static long s_service_call(const struct fanout_credentials *c, char *type, size_t type_len)
{
    char host[64], url[128];
    snprintf(host, sizeof host, "127.0.0.1:%d", s_t.port);
    snprintf(url, sizeof url, "%s/service", s_t.url);
    const char *body = "{}";
    const struct fanout_sigv4_header sh[] = {
        {"Host", host},
        {"Content-Type", "application/x-amz-json-1.1"},
        {"X-Amz-Target", "Kinesis_20131202.ListStreams"}};
    struct fanout_sigv4_request sreq = {.method = "POST",
                                        .path = "/service",
                                        .headers = sh,
                                        .header_count = 3,
                                        .body = (const uint8_t *)body,
                                        .body_len = 2};
    struct fanout_sigv4_params p = {
        .region = REGION, .service = "kinesis", .now = time(NULL), .normalize_path = 1};
    struct fanout_sigv4_credentials sc = {c->access_key_id, c->secret_access_key,
                                          c->session_token[0] ? c->session_token : NULL};
    struct fanout_sigv4_result sig;
    ck_assert_int_eq(fanout_sigv4_sign(&sreq, &p, &sc, &sig), 0);
    char n0[] = "Host", n1[] = "Content-Type", n2[] = "X-Amz-Target", n3[] = "X-Amz-Date",
         n4[] = "Authorization", n5[] = "X-Amz-Security-Token";
    char v1[] = "application/x-amz-json-1.1", v2[] = "Kinesis_20131202.ListStreams";
    char token[sizeof c->session_token];
    snprintf(token, sizeof token, "%s", c->session_token);
    struct fanout_http_header hs[] = {
        {n0, host}, {n1, v1}, {n2, v2}, {n3, sig.amz_date}, {n4, sig.authorization},
        {n5, token}};
    struct fanout_http_request req = {.method = "POST",
                                      .url = url,
                                      .headers = hs,
                                      .header_count = c->session_token[0] ? 6 : 5,
                                      .body = (const uint8_t *)body,
                                      .body_len = 2,
                                      .timeout_ms = 10000};
    struct fanout_http_response resp;
    memset(&resp, 0, sizeof resp);
    const struct fanout_http_request *rq[1] = {&req};
    struct fanout_http_response *rs[1] = {&resp};
    fanout_http_perform(rq, rs, 1);
    long status = resp.status;
    json_t *j = resp.body.bytes ? json_loads((const char *)resp.body.bytes, 0, NULL) : NULL;
    const char *t = json_string_value(json_object_get(j, "__type"));
    snprintf(type, type_len, "%s", t ? t : "");
    json_decref(j);
    fanout_http_response_clean_up(&resp);
    return status;
}

/* ---- helpers ------------------------------------------------------------ */

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

static int s_log_contains(const char *needle)
{
    char *text = s_read_log();
    int found = strstr(text, needle) != NULL;
    free(text);
    return found;
}

static void s_set_base_env(int with_token)
{
    setenv("AWS_ACCESS_KEY_ID", with_token ? BASE_AKID : LT_AKID, 1);
    setenv("AWS_SECRET_ACCESS_KEY", with_token ? BASE_SECRET : LT_SECRET, 1);
    if (with_token)
        setenv("AWS_SESSION_TOKEN", BASE_TOKEN, 1);
    else
        unsetenv("AWS_SESSION_TOKEN");
}

static const char *s_role(const char *name)
{
    static char arn[256];
    snprintf(arn, sizeof arn, ACCOUNT_ROLE "%s", name);
    return arn;
}

static int s_get(const char *role, const char *ext, int force, struct fanout_credentials *c,
                 char *err, size_t err_len)
{
    err[0] = 0;
    return fanout_credentials_get(role, ext, REGION, force, c, err, err_len);
}

#define ck_assert_get_ok(role, ext, force, c)                                              \
    do {                                                                                   \
        char err_[512];                                                                    \
        int rc_ = s_get(role, ext, force, c, err_, sizeof err_);                           \
        ck_assert_msg(rc_ == 0, "get failed: %s", err_);                                   \
    } while (0)

static void s_check_issued(const struct fanout_credentials *c, const char *source)
{
    ck_assert_str_eq(c->source, source);
    ck_assert_msg(strncmp(c->access_key_id, "ASIA", 4) == 0, "key %.4s...",
                  c->access_key_id);
    ck_assert_uint_eq(strlen(c->secret_access_key), 40);
    ck_assert_uint_gt(strlen(c->session_token), 100);
    ck_assert_int_gt(c->expires_ms, s_wall_ms());
}

/* ---- environment -------------------------------------------------------- */

START_TEST(test_env_credentials)
{
    struct fanout_credentials c;
    s_set_base_env(1);
    ck_assert_get_ok(NULL, NULL, 0, &c);
    ck_assert_str_eq(c.source, "environment");
    ck_assert_str_eq(c.access_key_id, BASE_AKID);
    ck_assert_str_eq(c.secret_access_key, BASE_SECRET);
    ck_assert_str_eq(c.session_token, BASE_TOKEN);
    ck_assert_int_eq(c.expires_ms, 0);

    /* Long-term keys: no token. An empty role is the base chain too. */
    fanout_credentials_reset();
    s_set_base_env(0);
    char err[512];
    ck_assert_int_eq(fanout_credentials_get("", NULL, NULL, 0, &c, err, sizeof err), 0);
    ck_assert_str_eq(c.access_key_id, LT_AKID);
    ck_assert_str_eq(c.session_token, "");

    /* AWS_CREDENTIAL_EXPIRATION, as botocore reads it. */
    fanout_credentials_reset();
    setenv("AWS_CREDENTIAL_EXPIRATION", "2030-01-02T03:04:05Z", 1);
    ck_assert_get_ok(NULL, NULL, 0, &c);
    ck_assert_int_eq(c.expires_ms, 1893553445000LL);
    fanout_credentials_reset();
    setenv("AWS_CREDENTIAL_EXPIRATION", "tomorrow", 1);
    ck_assert_int_eq(s_get(NULL, NULL, 0, &c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "AWS_CREDENTIAL_EXPIRATION"));
}
END_TEST

START_TEST(test_env_half_set)
{
    struct fanout_credentials c;
    char err[512];
    setenv("AWS_ACCESS_KEY_ID", BASE_AKID, 1);
    ck_assert_int_eq(s_get(NULL, NULL, 0, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "AWS_SECRET_ACCESS_KEY is set") == NULL &&
                      strstr(err, "AWS_SECRET_ACCESS_KEY is not") != NULL,
                  "%s", err);
    ck_assert_str_eq(c.access_key_id, "");

    fanout_credentials_reset();
    unsetenv("AWS_ACCESS_KEY_ID");
    setenv("AWS_SECRET_ACCESS_KEY", BASE_SECRET, 1);
    ck_assert_int_eq(s_get(NULL, NULL, 0, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "AWS_ACCESS_KEY_ID is not") != NULL, "%s", err);
    ck_assert_ptr_null(strstr(err, BASE_SECRET));

    /* Nothing at all: says what to set. */
    fanout_credentials_reset();
    unsetenv("AWS_SECRET_ACCESS_KEY");
    ck_assert_int_eq(s_get(NULL, NULL, 0, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no AWS credentials") != NULL, "%s", err);
}
END_TEST

/* ---- shared files ------------------------------------------------------- */

START_TEST(test_profile_credentials)
{
    char p[PATH_LEN];
    s_write_file("credentials", "[default]\n"
                                "aws_access_key_id = AKIDPROFILEDEFAULT01\n"
                                "aws_secret_access_key = profileDefaultSecret/0123456789\n"
                                "\n"
                                "[other]\n"
                                "aws_access_key_id=AKIDPROFILEOTHER0001\n"
                                "aws_secret_access_key=profileOtherSecret+0123456789\n"
                                "aws_session_token=profileOtherToken/+=0123456789\n"
                                "\n"
                                "[both]\n"
                                "aws_access_key_id=AKIDFROMCREDENTIALS1\n"
                                "aws_secret_access_key=fromCredentialsFileSecret\n"
                                "\n"
                                "[half]\n"
                                "aws_access_key_id=AKIDHALFPROFILE00001\n");
    s_write_file("config", "[default]\n"
                           "region = us-west-2\n"
                           "\n"
                           "[profile cfgonly]\n"
                           "aws_access_key_id = AKIDCONFIGFILEONLY01\n"
                           "aws_secret_access_key = configOnlySecret0123456789\n"
                           "\n"
                           "[profile both]\n"
                           "aws_access_key_id = AKIDFROMCONFIGFILE01\n"
                           "aws_secret_access_key = fromConfigFileSecret\n");
    s_path(p, sizeof p, "credentials");
    setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
    s_path(p, sizeof p, "config");
    setenv("AWS_CONFIG_FILE", p, 1);

    struct fanout_credentials c;
    char err[512];
    ck_assert_get_ok(NULL, NULL, 0, &c);
    ck_assert_str_eq(c.source, "profile");
    ck_assert_str_eq(c.access_key_id, "AKIDPROFILEDEFAULT01");
    ck_assert_str_eq(c.secret_access_key, "profileDefaultSecret/0123456789");
    ck_assert_str_eq(c.session_token, "");

    fanout_credentials_reset();
    setenv("AWS_PROFILE", "other", 1);
    ck_assert_get_ok(NULL, NULL, 0, &c);
    ck_assert_str_eq(c.access_key_id, "AKIDPROFILEOTHER0001");
    ck_assert_str_eq(c.session_token, "profileOtherToken/+=0123456789");

    fanout_credentials_reset();
    setenv("AWS_PROFILE", "cfgonly", 1);
    ck_assert_get_ok(NULL, NULL, 0, &c);
    ck_assert_str_eq(c.access_key_id, "AKIDCONFIGFILEONLY01");

    /* The credentials file comes before the config file. */
    fanout_credentials_reset();
    setenv("AWS_PROFILE", "both", 1);
    ck_assert_get_ok(NULL, NULL, 0, &c);
    ck_assert_str_eq(c.access_key_id, "AKIDFROMCREDENTIALS1");

    /* The environment comes before both. */
    fanout_credentials_reset();
    s_set_base_env(0);
    ck_assert_get_ok(NULL, NULL, 0, &c);
    ck_assert_str_eq(c.source, "environment");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");

    /* Half a profile is an error naming what is missing. */
    fanout_credentials_reset();
    setenv("AWS_PROFILE", "half", 1);
    ck_assert_int_eq(s_get(NULL, NULL, 0, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "\"half\"") && strstr(err, "no aws_secret_access_key"), "%s",
                  err);

    /* A profile that is not there: nothing found. */
    fanout_credentials_reset();
    setenv("AWS_PROFILE", "missing", 1);
    ck_assert_int_eq(s_get(NULL, NULL, 0, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no AWS credentials") && strstr(err, "\"missing\""), "%s",
                  err);
}
END_TEST

/* ---- container credentials ---------------------------------------------- */

static void s_container_env(const char *host_path)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", s_t.url, host_path);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
}

START_TEST(test_container_full_uri)
{
    s_server_start(NULL);
    s_container_env("/container/credentials");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CT_TOKEN, 1);
    struct fanout_credentials c;
    ck_assert_get_ok(NULL, NULL, 0, &c);
    s_check_issued(&c, "container");
    ck_assert_int_gt(c.expires_ms, s_wall_ms() + 3500 * 1000LL);
    ck_assert_int_eq(s_stat("container", "issued"), 1);

    /* The base credentials sign AssumeRole: container credentials work. */
    const char *arn = s_role("from-container");
    struct fanout_credentials r;
    ck_assert_get_ok(arn, NULL, 0, &r);
    s_check_issued(&r, "assume-role");
    char signer[64];
    s_role_last(arn, "signer", signer, sizeof signer);
    ck_assert_str_eq(signer, "container");
    ck_assert_int_eq(s_stat("container", "issued"), 1); /* the base was cached */
}
END_TEST

START_TEST(test_container_retried)
{
    s_server_start("--container-fail-first", "2", NULL);
    s_container_env("/container/credentials");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CT_TOKEN, 1);
    struct fanout_credentials c;
    ck_assert_get_ok(NULL, NULL, 0, &c);
    s_check_issued(&c, "container");
    ck_assert_int_eq(s_stat("container", "requests"), 3);

    /* Out of attempts: the agent's message. */
    fanout_credentials_reset();
    s_server_stop();
    s_server_start("--container-fail-first", "9", NULL);
    s_container_env("/container/credentials");
    setenv("FANOUT_AWS_MAX_ATTEMPTS", "2", 1);
    char err[512];
    ck_assert_int_eq(s_get(NULL, NULL, 0, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "after 2 attempts: HTTP 500: agent busy"), "%s", err);
}
END_TEST

START_TEST(test_container_token_file)
{
    s_server_start(NULL);
    s_container_env("/container/credentials");
    char p[PATH_LEN];
    s_path(p, sizeof p, "token");
    struct fanout_credentials c;
    char err[512];

    /* The file wins over the variable (a trailing newline is tolerated). */
    s_write_file("token", CT_TOKEN "\n");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", p, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer wrong-token-in-the-environment", 1);
    ck_assert_get_ok(NULL, NULL, 0, &c);
    s_check_issued(&c, "container");

    /* And the other way round: a wrong file is not rescued by the variable. */
    fanout_credentials_reset();
    s_write_file("token", "Bearer wrong-token-in-the-file");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CT_TOKEN, 1);
    ck_assert_int_eq(s_get(NULL, NULL, 0, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "HTTP 401"), "%s", err);
    ck_assert_ptr_null(strstr(err, "wrong-token"));
    ck_assert_ptr_null(strstr(err, "/container/credentials")); /* the path is not shown */
    ck_assert_int_eq(s_stat("container", "unauthorized"), 1);

    /* A token file that cannot be read. */
    fanout_credentials_reset();
    unlink(p);
    ck_assert_int_eq(s_get(NULL, NULL, 0, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"), "%s", err);

    /* No token at all: the server refuses. */
    fanout_credentials_reset();
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    ck_assert_int_eq(s_get(NULL, NULL, 0, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "HTTP 401"), "%s", err);
}
END_TEST

/* An Expiration that is there but not a time string (a number of seconds,
 * an object) is not "no expiry": such credentials would be kept past their
 * end. Only an absent or null Expiration means long-term keys. */
START_TEST(test_container_parse_expiration)
{
    struct fanout_credentials c;
    char err[512];
    static const char *const bad[] = {"1733600000", "1733600000.5", "true", "{}",
                                      "[\"2099-01-02T03:04:05Z\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"AccessKeyId\": \"AKIDC\", \"SecretAccessKey\": \"s\", "
                 "\"Token\": \"t\", \"Expiration\": %s}",
                 bad[i]);
        err[0] = 0;
        memset(&c, 0, sizeof c);
        ck_assert_msg(cred_container_parse((const uint8_t *)body, strlen(body),
                                           "http://127.0.0.1", &c, err, sizeof err) == -1,
                      "Expiration %s taken", bad[i]);
        ck_assert_msg(strstr(err, "Expiration") && strstr(err, "http://127.0.0.1") &&
                          strstr(err, "not a string"),
                      "%s: %s", bad[i], err);
        ck_assert_str_eq(c.access_key_id, ""); /* not filled */
    }
    static const char *const good[] = {
        "{\"AccessKeyId\": \"AKIDC\", \"SecretAccessKey\": \"s\"}",
        "{\"AccessKeyId\": \"AKIDC\", \"SecretAccessKey\": \"s\", \"Expiration\": null}",
        "{\"AccessKeyId\": \"AKIDC\", \"SecretAccessKey\": \"s\", \"Expiration\": "
        "\"2099-01-02T03:04:05Z\"}"};
    static const int64_t good_exp[] = {0, 0, 4071006245000LL};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ck_assert_msg(cred_container_parse((const uint8_t *)good[i], strlen(good[i]),
                                           "http://127.0.0.1", &c, err, sizeof err) == 0,
                      "%s: %s", good[i], err);
        ck_assert_int_eq(c.expires_ms, good_exp[i]);
    }
}
END_TEST

START_TEST(test_container_hosts)
{
    s_server_start(NULL);
    struct fanout_credentials c;
    char err[512];
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CT_TOKEN, 1);
    setenv("FANOUT_AWS_MAX_ATTEMPTS", "1", 1);
    static const char *const refused[] = {
        "http://example.com/creds",    "http://169.254.170.3/creds",
        "http://10.0.0.1:8080/creds",  "http://127.0.0.1@example.com/creds",
        "http://[fd00:ec2::24]/creds", "ftp://127.0.0.1/creds",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        fanout_credentials_reset();
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", refused[i], 1);
        ck_assert_int_eq(s_get(NULL, NULL, 0, &c, err, sizeof err), -1);
        ck_assert_msg(strstr(err, "AWS_CONTAINER_CREDENTIALS_FULL_URI"), "%s: %s",
                      refused[i], err);
    }
    ck_assert_int_eq(s_stat("container", "requests"), 0); /* none was asked */

    /* Allowed hosts pass the check (and then fail to connect, or fail TLS
     * against a plain-HTTP server). */
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/container/credentials", s_t.port);
    const char *allowed[] = {url, "http://127.0.0.2:1/creds", "http://[::1]:1/creds"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        fanout_credentials_reset();
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", allowed[i], 1);
        ck_assert_int_eq(s_get(NULL, NULL, 0, &c, err, sizeof err), -1);
        /* not the host check's refusal (which names the variable); the
         * connection's own "Connection refused" is fine */
        ck_assert_msg(strstr(err, "FULL_URI") == NULL && strstr(err, "no response"),
                      "%s: %s", allowed[i], err);
    }

    /* The relative URI goes to the ECS host (169.254.170.2); tests never
     * leave loopback, so the host is pointed at a closed loopback port and
     * only the message is checked. */
    fanout_credentials_reset();
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/some-id", 1);
    setenv("FANOUT_TEST_CONTAINER_HOST", "http://127.0.0.1:9", 1);
    setenv("FANOUT_AWS_TIMEOUT_MS", "300", 1);
    ck_assert_int_eq(s_get(NULL, NULL, 0, &c, err, sizeof err), -1);
    unsetenv("FANOUT_TEST_CONTAINER_HOST");
    ck_assert_msg(strstr(err, "http://127.0.0.1:9") && !strstr(err, "some-id"), "%s", err);
}
END_TEST

/* ---- AssumeRole --------------------------------------------------------- */

START_TEST(test_assume_role)
{
    s_server_start(NULL);
    s_set_base_env(1);
    const char *arn = s_role("target");
    struct fanout_credentials c;
    ck_assert_get_ok(arn, NULL, 0, &c);
    s_check_issued(&c, "assume-role");
    int64_t left = c.expires_ms - s_wall_ms();
    ck_assert_msg(left > 3500 * 1000LL && left <= 3600 * 1000LL, "left %lld",
                  (long long)left);

    ck_assert_int_eq(s_role_stat(arn, "requests"), 1);
    ck_assert_int_eq(s_role_stat(arn, "issued"), 1);
    ck_assert_int_eq(s_stat("sts", "signature_failures"), 0);
    char v[128], want[128];
    s_role_last(arn, "RoleSessionName", v, sizeof v);
    snprintf(want, sizeof want, "fanout-local-%ld", (long)getpid());
    ck_assert_str_eq(v, want);
    s_role_last(arn, "DurationSeconds", v, sizeof v);
    ck_assert_str_eq(v, "3600");
    s_role_last(arn, "ExternalId", v, sizeof v);
    ck_assert_str_eq(v, "");
    s_role_last(arn, "signer", v, sizeof v);
    ck_assert_str_eq(v, "base");
    s_role_last(arn, "SigningRegion", v, sizeof v);
    ck_assert_str_eq(v, REGION);
    s_role_last(arn, "ContentType", v, sizeof v);
    ck_assert_str_eq(v, "application/x-www-form-urlencoded; charset=utf-8");

    /* The issued credentials sign requests the "service" accepts. */
    char type[64];
    ck_assert_int_eq(s_service_call(&c, type, sizeof type), 200);

    /* A role with a path, and the region from AWS_REGION (NULL). */
    const char *pathed = s_role("team/sub/pathed-role");
    char err[512];
    ck_assert_int_eq(fanout_credentials_get(pathed, NULL, NULL, 0, &c, err, sizeof err), 0);
    ck_assert_int_eq(s_role_stat(pathed, "issued"), 1);
}
END_TEST

START_TEST(test_assume_role_external_id)
{
    s_server_start(NULL);
    s_set_base_env(0); /* long-term keys: no security token */
    const char *arn = s_role("ext-partner");
    struct fanout_credentials c, d;
    char err[512], v[128];

    /* Special characters: the form encoding must carry them exactly. */
    ck_assert_get_ok(arn, EXTERNAL_ID, 0, &c);
    s_check_issued(&c, "assume-role");
    s_role_last(arn, "ExternalId", v, sizeof v);
    ck_assert_str_eq(v, EXTERNAL_ID);
    s_role_last(arn, "signer", v, sizeof v);
    ck_assert_str_eq(v, "base");

    /* Without it, or with another: AccessDenied, and a separate cache
     * entry (the good one is not handed out). */
    ck_assert_int_eq(s_get(arn, NULL, 0, &d, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "AccessDenied"), "%s", err);
    ck_assert_int_eq(s_get(arn, "some-other-id", 0, &d, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "AccessDenied"), "%s", err);
    ck_assert_int_eq(s_role_stat(arn, "denied"), 2);

    /* The good one is still cached. */
    ck_assert_get_ok(arn, EXTERNAL_ID, 0, &d);
    ck_assert_str_eq(d.access_key_id, c.access_key_id);
    ck_assert_int_eq(s_role_stat(arn, "issued"), 1);
}
END_TEST

START_TEST(test_session_name_and_duration)
{
    s_server_start(NULL);
    s_set_base_env(1);
    setenv("AWS_LAMBDA_FUNCTION_NAME",
           "my function/with*odd chars and a name far longer than sixty-four characters",
           1);
    setenv("FANOUT_ASSUME_ROLE_SECONDS", "900", 1);
    const char *arn = s_role("named");
    struct fanout_credentials c;
    ck_assert_get_ok(arn, NULL, 0, &c);
    char v[128], pid[32];
    s_role_last(arn, "RoleSessionName", v, sizeof v);
    snprintf(pid, sizeof pid, "-%ld", (long)getpid());
    ck_assert_uint_le(strlen(v), 64);
    ck_assert_msg(strncmp(v, "fanout-my-function-with-odd-chars", 33) == 0, "%s", v);
    ck_assert_str_eq(v + strlen(v) - strlen(pid), pid);
    s_role_last(arn, "DurationSeconds", v, sizeof v);
    ck_assert_str_eq(v, "900");
    int64_t left = c.expires_ms - s_wall_ms();
    ck_assert_msg(left > 800 * 1000LL && left <= 900 * 1000LL, "left %lld",
                  (long long)left);

    /* Out of range: refused before any request. */
    static const char *const bad[] = {"899", "43201", "1h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[512];
        fanout_credentials_reset();
        setenv("FANOUT_ASSUME_ROLE_SECONDS", bad[i], 1);
        ck_assert_int_eq(s_get(arn, NULL, 0, &c, err, sizeof err), -1);
        ck_assert_msg(strstr(err, "FANOUT_ASSUME_ROLE_SECONDS"), "%s", err);
    }
    ck_assert_int_eq(s_role_stat(arn, "requests"), 1);
}
END_TEST

START_TEST(test_cache_hit)
{
    s_server_start(NULL);
    s_set_base_env(1);
    const char *arn = s_role("cached");
    struct fanout_credentials first, c;
    ck_assert_get_ok(arn, NULL, 0, &first);
    for (int i = 0; i < 50; i++) {
        ck_assert_get_ok(arn, NULL, 0, &c);
        ck_assert_str_eq(c.access_key_id, first.access_key_id);
        ck_assert_str_eq(c.session_token, first.session_token);
        ck_assert_int_eq(c.expires_ms, first.expires_ms);
    }
    ck_assert_int_eq(s_role_stat(arn, "requests"), 1);
    /* Another region is another entry. */
    char err[512];
    ck_assert_int_eq(fanout_credentials_get(arn, NULL, "eu-west-1", 0, &c, err, sizeof err),
                     0);
    ck_assert_str_ne(c.access_key_id, first.access_key_id);
    ck_assert_int_eq(s_role_stat(arn, "requests"), 2);
    char v[64];
    s_role_last(arn, "SigningRegion", v, sizeof v);
    ck_assert_str_eq(v, "eu-west-1");
}
END_TEST

START_TEST(test_force)
{
    s_server_start(NULL);
    s_set_base_env(1);
    const char *arn = s_role("forced");
    struct fanout_credentials a, b, c;
    ck_assert_get_ok(arn, NULL, 0, &a);
    ck_assert_get_ok(arn, NULL, 1, &b);
    ck_assert_str_ne(a.access_key_id, b.access_key_id);
    ck_assert_get_ok(arn, NULL, 0, &c);
    ck_assert_str_eq(c.access_key_id, b.access_key_id);
    ck_assert_int_eq(s_role_stat(arn, "issued"), 2);

    /* A forced refresh that fails is an error (the caller was told the
     * current ones are bad), and the current ones stay for others. */
    s_control(arn, "deny", 1);
    char err[512];
    ck_assert_int_eq(s_get(arn, NULL, 1, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "AccessDenied"), "%s", err);
    ck_assert_get_ok(arn, NULL, 0, &c);
    ck_assert_str_eq(c.access_key_id, b.access_key_id);
}
END_TEST

/* Lifetime 6 s: the margin is a quarter of it (1.5 s), so the credentials
 * are replaced about 4.5 s after issue, never handed out expired. */
START_TEST(test_refresh_before_expiry)
{
    s_server_start("--lifetime-seconds", "6", NULL);
    s_set_base_env(1);
    const char *arn = s_role("short-lived");
    struct fanout_credentials first, prev, c;
    ck_assert_get_ok(arn, NULL, 0, &first);
    int64_t left = first.expires_ms - s_wall_ms();
    ck_assert_msg(left > 4000 && left <= 6000, "left %lld", (long long)left);
    prev = first;
    int changes = 0;
    int64_t until = s_mono_ms() + 7000;
    while (s_mono_ms() < until) {
        ck_assert_get_ok(arn, NULL, 0, &c);
        int64_t now = s_wall_ms();
        ck_assert_msg(c.expires_ms - now > 1000, "credentials with %lld ms left handed out",
                      (long long)(c.expires_ms - now));
        if (strcmp(c.access_key_id, prev.access_key_id) != 0) {
            ck_assert_msg(prev.expires_ms > now, "replaced only after they expired");
            ck_assert_int_gt(c.expires_ms, prev.expires_ms);
            ck_assert_str_ne(c.session_token, prev.session_token);
            changes++;
            prev = c;
        } else {
            ck_assert_str_eq(c.session_token, prev.session_token);
        }
        s_sleep_ms(50);
    }
    ck_assert_int_ge(changes, 1);
    ck_assert_int_eq(s_role_stat(arn, "issued"), changes + 1);
    ck_assert_int_eq(s_role_stat(arn, "requests"), changes + 1);

    /* The "service" refuses the first credentials, now expired, with
     * ExpiredTokenException, and takes the current ones. */
    ck_assert_int_lt(first.expires_ms, s_wall_ms());
    char type[64];
    ck_assert_int_eq(s_service_call(&first, type, sizeof type), 400);
    ck_assert_str_eq(type, "ExpiredTokenException");
    ck_assert_int_eq(s_service_call(&c, type, sizeof type), 200);
}
END_TEST

/* A refresh that fails while the current credentials are still good for a
 * while: keep them and warn; once they are (nearly) expired: the error. */
START_TEST(test_refresh_failure_keeps_current)
{
    /* 12 s credentials: a 3 s refresh margin (a quarter of the lifetime);
     * kept after a failed refresh while more than 750 ms are left (a
     * quarter of the margin), asked again no sooner than a quarter of what
     * is left. The steps below leave over a second of slack each way, for
     * a loaded machine (6 s credentials left 0.5 s, which a CI run under
     * load once overran). */
    s_server_start("--lifetime-seconds", "12", NULL);
    s_set_base_env(1);
    const char *arn = s_role("flaky");
    struct fanout_credentials a, b;
    char err[512];
    ck_assert_get_ok(arn, NULL, 0, &a);
    s_control(arn, "deny", 100);

    /* Due (under the 3 s margin) but still good for ~2 s. */
    s_sleep_ms(a.expires_ms - s_wall_ms() - 1900);
    ck_assert_get_ok(arn, NULL, 0, &b);
    ck_assert_str_eq(b.access_key_id, a.access_key_id);
    ck_assert_int_eq(s_role_stat(arn, "requests"), 2);
    ck_assert(s_log_contains("using the current ones"));
    ck_assert(s_log_contains("AccessDenied"));
    /* Not asked again at once. */
    ck_assert_get_ok(arn, NULL, 0, &b);
    ck_assert_str_eq(b.access_key_id, a.access_key_id);
    ck_assert_int_eq(s_role_stat(arn, "requests"), 2);

    /* Nearly expired: the error, not the old credentials. */
    s_sleep_ms(a.expires_ms - s_wall_ms() - 300);
    ck_assert_int_eq(s_get(arn, NULL, 0, &b, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "AccessDenied"), "%s", err);
    ck_assert_str_eq(b.access_key_id, "");
}
END_TEST

struct th_arg {
    pthread_barrier_t *barrier;
    const char *role;
    int rc;
    char err[256];
    struct fanout_credentials c;
};

static void *s_thread(void *p)
{
    struct th_arg *a = p;
    pthread_barrier_wait(a->barrier);
    a->rc = fanout_credentials_get(a->role, NULL, REGION, 0, &a->c, a->err, sizeof a->err);
    return NULL;
}

#define THREADS 8

START_TEST(test_concurrent_single_fetch)
{
    s_server_start(NULL);
    s_set_base_env(1);
    /* slow-: the server answers after 500 ms, so all callers pile up. */
    const char *arn = s_role("slow-concurrent");
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, THREADS);
    static struct th_arg args[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].barrier = &barrier;
        args[i].role = arn;
        ck_assert_int_eq(pthread_create(&th[i], NULL, s_thread, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < THREADS; i++) {
        ck_assert_msg(args[i].rc == 0, "thread %d: %s", i, args[i].err);
        ck_assert_str_eq(args[i].c.access_key_id, args[0].c.access_key_id);
    }
    ck_assert_int_eq(s_role_stat(arn, "requests"), 1);

    /* Concurrent callers of a failing role share one failure too. */
    const char *denied = s_role("slow-deny");
    s_control(denied, "deny", 100);
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].barrier = &barrier;
        args[i].role = denied;
        ck_assert_int_eq(pthread_create(&th[i], NULL, s_thread, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < THREADS; i++) {
        ck_assert_int_eq(args[i].rc, -1);
        ck_assert_msg(strstr(args[i].err, "AccessDenied"), "%s", args[i].err);
    }
    ck_assert_int_eq(s_role_stat(denied, "requests"), 1);
}
END_TEST

START_TEST(test_sts_errors)
{
    s_server_start(NULL);
    s_set_base_env(1);
    setenv("FANOUT_AWS_MAX_ATTEMPTS", "3", 1);
    struct fanout_credentials c;
    char err[512], want[512];

    const char *denied = s_role("deny-me");
    ck_assert_int_eq(s_get(denied, NULL, 0, &c, err, sizeof err), -1);
    snprintf(want, sizeof want, "AssumeRole %s failed: AccessDenied: User: ", denied);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
    ck_assert_msg(strstr(err, "is not authorized to perform: sts:AssumeRole"), "%s", err);
    ck_assert_msg(strstr(err, "(HTTP 403)"), "%s", err);
    ck_assert_int_eq(s_role_stat(denied, "requests"), 1); /* not retried */

    /* 500 every time: retried up to the policy, then the error. */
    const char *failing = s_role("fail99-always");
    ck_assert_int_eq(s_get(failing, NULL, 0, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "after 3 attempts") && strstr(err, "InternalError") &&
                      strstr(err, "(HTTP 500)"),
                  "%s", err);
    ck_assert_int_eq(s_role_stat(failing, "requests"), 3);

    /* 500 twice, then good. */
    const char *flaky = s_role("fail2-then-ok");
    ck_assert_get_ok(flaky, NULL, 0, &c);
    ck_assert_int_eq(s_role_stat(flaky, "requests"), 3);

    /* STS's own validation. */
    ck_assert_int_eq(
        s_get("arn:aws:iam::123:role/short-account", NULL, 0, &c, err, sizeof err), -1);
    /* (the quotes come as &apos; entities) */
    ck_assert_msg(strstr(err, "ValidationError: 1 validation error detected: Value "
                              "'arn:aws:iam::123:role/short-account' at 'roleArn'"),
                  "%s", err);
    ck_assert_int_eq(s_get("not-an-arn", NULL, 0, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "not a role ARN"), "%s", err);

    /* No base credentials: said, with the role. */
    fanout_credentials_reset();
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    ck_assert_int_eq(s_get(s_role("any"), NULL, 0, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no base credentials") && strstr(err, "no AWS credentials"),
                  "%s", err);

    /* No STS at all. */
    fanout_credentials_reset();
    s_set_base_env(1);
    setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1", 1);
    ck_assert_int_eq(s_get(s_role("unreachable"), NULL, 0, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no response from 127.0.0.1:1"), "%s", err);
}
END_TEST

/* An STS answer whose AssumedRoleUser is another role's (an answer to
 * another request, a caching proxy): its credentials would write as that
 * role. Refused, named; the role's path is not in the assumed-role ARN, and
 * an answer without AssumedRoleUser (AssumeRoleWithWebIdentity of some
 * servers) cannot be checked. */
#define STS_ANSWER(user)                                                                   \
    "<AssumeRoleResponse><AssumeRoleResult>" user "<Credentials><AccessKeyId>ASIAX</"      \
    "AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken>"       \
    "<Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult></"     \
    "AssumeRoleResponse>"
#define STS_USER(arn) "<AssumedRoleUser><Arn>" arn "</Arn></AssumedRoleUser>"
START_TEST(test_sts_answer_for_another_role)
{
    static const struct {
        const char *role, *xml;
        int ok;
    } cases[] = {
        {"arn:aws:iam::123456789012:role/writer",
         STS_ANSWER(STS_USER("arn:aws:sts::123456789012:assumed-role/writer/fanout-1")), 1},
        {"arn:aws:iam::123456789012:role/a/b/writer",
         STS_ANSWER(STS_USER("arn:aws:sts::123456789012:assumed-role/writer/fanout-1")), 1},
        {"arn:aws:iam::123456789012:role/writer", STS_ANSWER(""), 1},
        {"arn:aws:iam::123456789012:role/writer",
         STS_ANSWER(STS_USER("arn:aws:sts::123456789012:assumed-role/reader/fanout-1")), 0},
        {"arn:aws:iam::123456789012:role/writer",
         STS_ANSWER(STS_USER("arn:aws:sts::123456789012:assumed-role/writer2/fanout-1")),
         0},
        {"arn:aws:iam::123456789012:role/writer",
         STS_ANSWER(STS_USER("arn:aws:iam::123456789012:user/writer")), 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct fanout_credentials c;
        char err[512] = "";
        int rc = cred_sts_parse(cases[i].xml, strlen(cases[i].xml), "AssumeRole",
                                cases[i].role, &c, err, sizeof err);
        ck_assert_msg(rc == (cases[i].ok ? 0 : -1), "case %zu: %d %s", i, rc, err);
        if (cases[i].ok) {
            ck_assert_str_eq(c.access_key_id, "ASIAX");
            continue;
        }
        char want[256];
        snprintf(want, sizeof want, "AssumeRole %s: the reply's AssumedRoleUser.Arn \"",
                 cases[i].role);
        ck_assert_msg(strstr(err, want) && strstr(err, "is not a session of that role"),
                      "case %zu: %s", i, err);
        ck_assert_str_eq(c.access_key_id, "");
    }
}
END_TEST

START_TEST(test_throttling_retried)
{
    s_server_start(NULL);
    s_set_base_env(1);
    const char *arn = s_role("throttle2-busy");
    struct fanout_credentials c;
    ck_assert_get_ok(arn, NULL, 0, &c);
    s_check_issued(&c, "assume-role");
    ck_assert_int_eq(s_role_stat(arn, "throttled"), 2);
    ck_assert_int_eq(s_role_stat(arn, "requests"), 3);
    ck_assert_int_eq(s_role_stat(arn, "issued"), 1);

    /* Still throttled when the attempts run out: the code says so. */
    const char *busy = s_role("throttle9-busier");
    setenv("FANOUT_AWS_MAX_ATTEMPTS", "2", 1);
    char err[512];
    ck_assert_int_eq(s_get(busy, NULL, 0, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "Throttling: Rate exceeded"), "%s", err);
    ck_assert_int_eq(s_role_stat(busy, "requests"), 2);
}
END_TEST

/* The invocation's deadline bounds AssumeRole's retries. */
static int64_t s_deadline_at;
static int64_t s_deadline_left(void)
{
    return s_deadline_at - s_mono_ms();
}

START_TEST(test_deadline_bounds_retries)
{
    s_server_start(NULL);
    s_set_base_env(1);
    setenv("FANOUT_AWS_RETRY_BASE_MS", "300", 1);
    setenv("FANOUT_AWS_RETRY_CAP_MS", "300", 1);
    setenv("FANOUT_AWS_MAX_ATTEMPTS", "20", 1);
    const char *busy = s_role("throttle99-deadline");
    /* 1200 ms left, 500 of them kept as margin: about two attempts fit */
    s_deadline_at = s_mono_ms() + 1200;
    fanout_credentials_set_deadline(s_deadline_left);
    struct fanout_credentials c;
    char err[512];
    int64_t t0 = s_mono_ms();
    ck_assert_int_eq(s_get(busy, NULL, 0, &c, err, sizeof err), -1);
    int64_t took = s_mono_ms() - t0;
    fanout_credentials_set_deadline(NULL);
    ck_assert_msg(strstr(err, "Throttling"), "%s", err);
    ck_assert_msg(took < 1200, "took %lld ms", (long long)took);
    long n = s_role_stat(busy, "requests");
    ck_assert_msg(n >= 1 && n < 20, "%ld requests", n);
}
END_TEST

/* A fetch that failed with nothing to fall back on is not repeated by
 * every caller: one bounded burst of STS requests, the same error to the
 * callers that come within the hold, and a new burst after it. */
START_TEST(test_failure_held_not_multiplied)
{
    s_server_start(NULL);
    s_set_base_env(1);
    setenv("FANOUT_AWS_MAX_ATTEMPTS", "3", 1);
    char busy[256];
    snprintf(busy, sizeof busy, "%s", s_role("throttle999-held"));
    struct fanout_credentials c;
    char err[512];
    ck_assert_int_eq(s_get(busy, NULL, 0, &c, err, sizeof err), -1);
    int64_t t0 = s_mono_ms(); /* the hold began a little before */
    ck_assert_msg(strstr(err, "Throttling") && strstr(err, "after 3 attempts"), "%s", err);
    ck_assert_int_eq(s_role_stat(busy, "requests"), 3);
    /* Ten more callers (an engine retrying, other batches, other targets
     * with this role), a forced refresh among them: no new request. */
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(s_get(busy, NULL, i == 5, &c, err, sizeof err), -1);
        ck_assert_msg(strstr(err, "Throttling") && strstr(err, "not asked again"), "%s",
                      err);
    }
    ck_assert_msg(s_mono_ms() - t0 < 4000, "the hold is 5 s: this test is too slow");
    ck_assert_int_eq(s_role_stat(busy, "requests"), 3);
    /* Another role is not held by this one's failure. */
    const char *other = s_role("fine-meanwhile");
    ck_assert_get_ok(other, NULL, 0, &c);
    /* After the hold: asked again, one more burst. */
    s_sleep_ms(5100 - (s_mono_ms() - t0));
    ck_assert_int_eq(s_get(busy, NULL, 0, &c, err, sizeof err), -1);
    ck_assert_msg(!strstr(err, "not asked again"), "%s", err);
    ck_assert_int_eq(s_role_stat(busy, "requests"), 6);
}
END_TEST

/* ---- secrets ------------------------------------------------------------ */

static void s_assert_clean(const char *what, const char *text, const char *const *secrets,
                           size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (secrets[i] && *secrets[i])
            ck_assert_msg(strstr(text, secrets[i]) == NULL, "%s contains secret #%zu: %s",
                          what, i, text);
    ck_assert_msg(strstr(text, "Signature=") == NULL, "%s contains a signature", what);
    ck_assert_msg(strstr(text, "AWS4-HMAC-SHA256 Credential") == NULL,
                  "%s contains an Authorization header", what);
}

START_TEST(test_no_secrets_in_logs_or_errors)
{
    s_server_start(NULL);
    struct fanout_credentials c, issued;
    char errs[8][512];
    memset(errs, 0, sizeof errs);
    int e = 0;

    /* Successes, so the debug lines are there too. */
    s_set_base_env(1);
    ck_assert_get_ok(s_role("quiet"), NULL, 0, &issued);

    /* A wrong secret for a known key: SignatureDoesNotMatch, whose message
     * carries the canonical request with the security token. */
    fanout_credentials_reset();
    setenv("AWS_SECRET_ACCESS_KEY", "wrongSecretWrongSecretWrongSecret0123456", 1);
    ck_assert_int_eq(s_get(s_role("quiet"), NULL, 0, &c, errs[e], sizeof errs[e]), -1);
    ck_assert_msg(strstr(errs[e], "SignatureDoesNotMatch"), "%s", errs[e]);
    ck_assert_msg(strstr(errs[e], "***"), "the token was not scrubbed: %s", errs[e]);
    ck_assert_int_eq(s_stat("sts", "signature_failures"), 1);
    e++;

    /* AccessDenied, and an unknown key. */
    fanout_credentials_reset();
    s_set_base_env(1);
    ck_assert_int_eq(s_get(s_role("deny-secret"), NULL, 0, &c, errs[e], sizeof errs[e]),
                     -1);
    e++;
    fanout_credentials_reset();
    setenv("AWS_ACCESS_KEY_ID", "AKIDUNKNOWNTOTHESRV1", 1);
    ck_assert_int_eq(s_get(s_role("quiet"), NULL, 0, &c, errs[e], sizeof errs[e]), -1);
    ck_assert_msg(strstr(errs[e], "InvalidClientTokenId"), "%s", errs[e]);
    e++;

    /* Half-set environment; a container with a wrong token. */
    fanout_credentials_reset();
    unsetenv("AWS_ACCESS_KEY_ID");
    ck_assert_int_eq(s_get(NULL, NULL, 0, &c, errs[e], sizeof errs[e]), -1);
    e++;
    fanout_credentials_reset();
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    s_container_env("/container/credentials");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer not-the-right-one-0123456789", 1);
    ck_assert_int_eq(s_get(NULL, NULL, 0, &c, errs[e], sizeof errs[e]), -1);
    e++;

    const char *const secrets[] = {BASE_SECRET, BASE_TOKEN, LT_SECRET,
                                   "wrongSecretWrongSecretWrongSecret0123456", CT_TOKEN,
                                   "not-the-right-one-0123456789", issued.secret_access_key,
                                   issued.session_token,
                                   /* key ids only cut short */
                                   BASE_AKID, "AKIDUNKNOWNTOTHESRV1", issued.access_key_id};
    size_t n = sizeof secrets / sizeof secrets[0];
    for (int i = 0; i < e; i++) {
        ck_assert_msg(errs[i][0] != 0, "error %d is empty", i);
        s_assert_clean("an error", errs[i], secrets, n);
    }
    char *log = s_read_log();
    ck_assert_msg(strstr(log, "AKID"
                              "\xe2\x80\xa6") ||
                      strstr(log, "ASIA"
                                  "\xe2\x80\xa6"),
                  "expected a cut key id in the debug log: %s", log);
    s_assert_clean("the log", log, secrets, n);
    free(log);
}
END_TEST

/* ---- profiles, web identity, SSO, credential_process, IMDS -------------- */

/* Keys the SSO portal and IMDS test endpoint hand out; sts_server.py knows
 * them as signers, so roles assumed with them verify. */
#define SSO_KEY     "ASIAFANOUTSSOKEY0001"
#define SSO_SECRET  "ssoSecret/0123456789abcdef"
#define SSO_TOKEN   "ssoSessionTokenFromThePortal0123456789"
#define SSO_BEARER  "fanout-sso-bearer-access-token-0123456789"
#define IMDS_KEY    "ASIAFANOUTIMDSKEY001"
#define IMDS_SECRET "imdsSecret/0123456789abcdef"
#define IMDS_TOKEN  "imdsSessionTokenFromTheInstance0123456789"
#define WEB_TOKEN   "eyJhbGciOiJSUzI1NiJ9.fanoutWebIdentityToken.signature0123456789"
#define START_URL   "https://fanout-test.awsapps.com/start"

/* Shared files in the test directory, AWS_PROFILE, and HOME there too (the
 * SSO token cache is ~/.aws/sso/cache). */
static void s_profiles(const char *credentials, const char *config, const char *profile)
{
    char p[PATH_LEN];
    if (credentials) {
        s_write_file("credentials", credentials);
        s_path(p, sizeof p, "credentials");
        setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
    }
    if (config) {
        s_write_file("config", config);
        s_path(p, sizeof p, "config");
        setenv("AWS_CONFIG_FILE", p, 1);
    }
    if (profile)
        setenv("AWS_PROFILE", profile, 1);
    else
        unsetenv("AWS_PROFILE");
}

/* sso_imds_server.py, with extra options (NULL-terminated). */
static void s_aux_start(const char *opt, ...)
{
    const char *dir = getenv("FANOUT_TESTS_DIR");
    char script[PATH_LEN], ppid[32];
    snprintf(script, sizeof script, "%s/servers/sso_imds_server.py",
             dir && *dir ? dir : "tests");
    snprintf(ppid, sizeof ppid, "%ld", (long)getpid());
    const char *argv[24] = {"/usr/bin/python3", script,
                            "--sso-token",      SSO_BEARER,
                            "--sso-key",        SSO_KEY ":" SSO_SECRET ":" SSO_TOKEN,
                            "--imds-key",       IMDS_KEY ":" IMDS_SECRET ":" IMDS_TOKEN,
                            "--parent-pid",     ppid,
                            "--max-lifetime",   "120"};
    size_t argc = 12;
    va_list ap;
    va_start(ap, opt);
    for (const char *o = opt; o && argc < 23; o = va_arg(ap, const char *))
        argv[argc++] = o;
    va_end(ap);
    argv[argc] = NULL;
    int port = fanout_test_spawn_server(argv, &s_aux.pid, "sso_imds_server.py");
    snprintf(s_aux.url, sizeof s_aux.url, "http://127.0.0.1:%d", port);
    setenv("AWS_ENDPOINT_URL_SSO", s_aux.url, 1);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", s_aux.url, 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");
}

static long s_aux_stat(const char *group, const char *field)
{
    char saved[64];
    snprintf(saved, sizeof saved, "%s", s_t.url);
    snprintf(s_t.url, sizeof s_t.url, "%s", s_aux.url);
    char *body;
    long st = s_http("GET", "/stats", NULL, &body);
    snprintf(s_t.url, sizeof s_t.url, "%s", saved);
    ck_assert_int_eq(st, 200);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    json_t *v = json_object_get(json_object_get(j, group), field);
    long n = json_is_integer(v) ? (long)json_integer_value(v) : -1;
    json_decref(j);
    return n;
}

static int s_get_base(struct fanout_credentials *c, char *err, size_t err_len)
{
    fanout_credentials_reset();
    return s_get(NULL, NULL, 0, c, err, err_len);
}

#define ck_assert_fails_with(c, ...)                                                       \
    do {                                                                                   \
        char err_[512];                                                                    \
        ck_assert_int_eq(s_get_base(c, err_, sizeof err_), -1);                            \
        const char *const want_[] = {__VA_ARGS__};                                         \
        for (size_t i_ = 0; i_ < sizeof want_ / sizeof want_[0]; i_++)                     \
            ck_assert_msg(strstr(err_, want_[i_]), "\"%s\" not in: %s", want_[i_], err_);  \
    } while (0)

START_TEST(test_profile_role_chain)
{
    s_server_start(NULL);
    s_profiles("[base]\n"
               "aws_access_key_id = " LT_AKID "\n"
               "aws_secret_access_key = " LT_SECRET "\n",
               "[profile mid]\n"
               "role_arn = " ACCOUNT_ROLE "mid\n"
               "source_profile = base\n"
               "[profile top]\n"
               "role_arn = " ACCOUNT_ROLE "top\n"
               "source_profile = mid\n"
               "external_id = " EXTERNAL_ID "\n"
               "role_session_name = my-session@fanout\n"
               "duration_seconds = 1800\n",
               "top");
    struct fanout_credentials c;
    char err[512], v[256];
    ck_assert_msg(s_get_base(&c, err, sizeof err) == 0, "%s", err);
    s_check_issued(&c, "assume-role");
    /* mid was assumed with the base profile's keys, top with mid's. */
    s_role_last(ACCOUNT_ROLE "mid", "signer", v, sizeof v);
    ck_assert_str_eq(v, "base");
    s_role_last(ACCOUNT_ROLE "top", "signer", v, sizeof v);
    ck_assert_str_eq(v, "assume-role:" ACCOUNT_ROLE "mid");
    s_role_last(ACCOUNT_ROLE "top", "ExternalId", v, sizeof v);
    ck_assert_str_eq(v, EXTERNAL_ID);
    s_role_last(ACCOUNT_ROLE "top", "RoleSessionName", v, sizeof v);
    ck_assert_str_eq(v, "my-session@fanout");
    s_role_last(ACCOUNT_ROLE "top", "DurationSeconds", v, sizeof v);
    ck_assert_str_eq(v, "1800");
    s_role_last(ACCOUNT_ROLE "mid", "ExternalId", v, sizeof v);
    ck_assert_str_eq(v, "");
    char type[64];
    ck_assert_int_eq(s_service_call(&c, type, sizeof type), 200);
    /* Cached: the next callers get the same keys without STS. */
    struct fanout_credentials again;
    ck_assert_get_ok(NULL, NULL, 0, &again);
    ck_assert_str_eq(again.access_key_id, c.access_key_id);
    ck_assert_int_eq(s_role_stat(ACCOUNT_ROLE "top", "requests"), 1);
    ck_assert_int_eq(s_role_stat(ACCOUNT_ROLE "mid", "requests"), 1);

    /* The credentials file's role_arn counts too, and a profile may name
     * itself as source when it has keys (botocore allows it). */
    s_profiles("[self]\n"
               "aws_access_key_id = " LT_AKID "\n"
               "aws_secret_access_key = " LT_SECRET "\n"
               "role_arn = " ACCOUNT_ROLE "self\n"
               "source_profile = self\n",
               "", "self");
    ck_assert_msg(s_get_base(&c, err, sizeof err) == 0, "%s", err);
    s_check_issued(&c, "assume-role");
    ck_assert_int_eq(s_role_stat(ACCOUNT_ROLE "self", "issued"), 1);

    /* A role the server denies: its error, naming the role. */
    s_profiles("[base]\n"
               "aws_access_key_id = " LT_AKID "\n"
               "aws_secret_access_key = " LT_SECRET "\n",
               "[profile d]\nrole_arn = " ACCOUNT_ROLE "deny-me\nsource_profile = base\n",
               "d");
    ck_assert_fails_with(&c, "AccessDenied", ACCOUNT_ROLE "deny-me");
}
END_TEST

START_TEST(test_profile_role_errors)
{
    struct fanout_credentials c;
    s_server_start(NULL);
    /* A loop: a -> b -> a. */
    s_profiles("",
               "[profile a]\nrole_arn = " ACCOUNT_ROLE "a\nsource_profile = b\n"
               "[profile b]\nrole_arn = " ACCOUNT_ROLE "b\nsource_profile = a\n",
               "a");
    ck_assert_fails_with(&c, "Infinite loop", "a -> b");
    /* Self-reference without keys is a loop too. */
    s_profiles("", "[profile s]\nrole_arn = " ACCOUNT_ROLE "s\nsource_profile = s\n", "s");
    ck_assert_fails_with(&c, "Infinite loop");
    /* mfa_serial: refused, fanout cannot prompt. */
    s_profiles("[base]\naws_access_key_id = " LT_AKID "\naws_secret_access_key = " LT_SECRET
               "\n",
               "[profile m]\nrole_arn = " ACCOUNT_ROLE "m\nsource_profile = base\n"
               "mfa_serial = arn:aws:iam::123456789012:mfa/me\n",
               "m");
    ck_assert_fails_with(&c, "mfa_serial", "cannot ask for an MFA code", "\"m\"");
    /* Both sources; neither; an unknown credential_source. */
    s_profiles(NULL,
               "[profile x]\nrole_arn = " ACCOUNT_ROLE "x\nsource_profile = base\n"
               "credential_source = Environment\n",
               "x");
    ck_assert_fails_with(&c, "both source_profile and credential_source");
    s_profiles(NULL, "[profile x]\nrole_arn = " ACCOUNT_ROLE "x\n", "x");
    ck_assert_fails_with(&c, "neither source_profile nor credential_source");
    s_profiles(NULL, "[profile x]\nrole_arn = " ACCOUNT_ROLE "x\ncredential_source = Ec2\n",
               "x");
    ck_assert_fails_with(&c, "credential source \"Ec2\"", "not valid");
    /* A source profile without credentials; Environment with none set. */
    s_profiles(NULL,
               "[profile x]\nrole_arn = " ACCOUNT_ROLE "x\nsource_profile = empty\n"
               "[profile empty]\nregion = us-east-1\n",
               "x");
    ck_assert_fails_with(&c, "source profile \"empty\"", "must have credentials");
    s_profiles(NULL,
               "[profile x]\nrole_arn = " ACCOUNT_ROLE "x\n"
               "credential_source = Environment\n",
               "x");
    ck_assert_fails_with(&c, "No credentials found in credential_source Environment");
    /* Environment keys come first in the chain, as for the aws command:
     * AWS_PROFILE does not hide them. */
    s_set_base_env(0);
    char err[512];
    ck_assert_msg(s_get_base(&c, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.source, "environment");
    ck_assert_str_eq(c.access_key_id, LT_AKID);
    ck_assert_int_eq(s_stat("sts", "requests"), 0);
}
END_TEST

START_TEST(test_credential_source)
{
    s_server_start("--base-key", IMDS_KEY ":" IMDS_SECRET ":" IMDS_TOKEN, NULL);
    s_aux_start(NULL);
    struct fanout_credentials c;
    char err[512], v[256];
    s_profiles(NULL,
               "[profile ec2]\nrole_arn = " ACCOUNT_ROLE "from-ec2\n"
               "credential_source = Ec2InstanceMetadata\n",
               "ec2");
    ck_assert_msg(s_get_base(&c, err, sizeof err) == 0, "%s", err);
    s_check_issued(&c, "assume-role");
    s_role_last(ACCOUNT_ROLE "from-ec2", "signer", v, sizeof v);
    ck_assert_str_eq(v, "base"); /* the IMDS key, a --base-key of the STS */
    ck_assert_int_eq(s_aux_stat("imds", "token_requests"), 1);

    /* EcsContainer: the container endpoint's key signs AssumeRole. */
    s_container_env("/container/credentials");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CT_TOKEN, 1);
    s_profiles(NULL,
               "[profile ecs]\nrole_arn = " ACCOUNT_ROLE "from-ecs\n"
               "credential_source = EcsContainer\n",
               "ecs");
    ck_assert_msg(s_get_base(&c, err, sizeof err) == 0, "%s", err);
    s_check_issued(&c, "assume-role");
    s_role_last(ACCOUNT_ROLE "from-ecs", "signer", v, sizeof v);
    ck_assert_str_eq(v, "container");
}
END_TEST

START_TEST(test_web_identity)
{
    s_server_start("--web-token", WEB_TOKEN, NULL);
    char tok[PATH_LEN];
    s_write_file("token", WEB_TOKEN "\n");
    s_path(tok, sizeof tok, "token");
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tok, 1);
    setenv("AWS_ROLE_ARN", ACCOUNT_ROLE "web", 1);
    setenv("AWS_ROLE_SESSION_NAME", "web-session", 1);
    struct fanout_credentials c;
    char err[512], v[256];
    ck_assert_msg(s_get_base(&c, err, sizeof err) == 0, "%s", err);
    s_check_issued(&c, "web-identity");
    s_role_last(ACCOUNT_ROLE "web", "Action", v, sizeof v);
    ck_assert_str_eq(v, "AssumeRoleWithWebIdentity");
    s_role_last(ACCOUNT_ROLE "web", "RoleSessionName", v, sizeof v);
    ck_assert_str_eq(v, "web-session");
    char type[64];
    ck_assert_int_eq(s_service_call(&c, type, sizeof type), 200);

    /* From the profile: web_identity_token_file and role_arn. */
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    unsetenv("AWS_ROLE_ARN");
    unsetenv("AWS_ROLE_SESSION_NAME");
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "[profile w]\nweb_identity_token_file = %s\nrole_arn = " ACCOUNT_ROLE
             "web-profile\n",
             tok);
    s_profiles(NULL, cfg, "w");
    ck_assert_msg(s_get_base(&c, err, sizeof err) == 0, "%s", err);
    s_check_issued(&c, "web-identity");
    ck_assert_int_eq(s_role_stat(ACCOUNT_ROLE "web-profile", "issued"), 1);

    /* A token STS refuses: its error, without the token. */
    s_write_file("token", "eyJrefusedTokenRefusedToken.0123456789abcdefghijkl");
    ck_assert_fails_with(&c, "InvalidIdentityToken", ACCOUNT_ROLE "web-profile");
    {
        char e2[512];
        ck_assert_int_eq(s_get_base(&c, e2, sizeof e2), -1);
        ck_assert_msg(!strstr(e2, "RefusedToken"), "token in the error: %s", e2);
    }
    /* A token file without a role. */
    s_profiles(NULL, "", NULL);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tok, 1);
    ck_assert_fails_with(&c, "no role", "AWS_ROLE_ARN");
    char *log = s_read_log();
    ck_assert_msg(!strstr(log, WEB_TOKEN) && !strstr(log, "RefusedToken"),
                  "token in the log");
    free(log);
}
END_TEST

static void s_sha1_hex(const char *text, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(text, strlen(text), md, &n, EVP_sha1(), NULL);
    for (unsigned i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* HOME in the test directory, with the token `aws sso login` would have
 * cached for `key` (the sso-session name or the start URL). */
static void s_sso_cache(const char *key, const char *token, int64_t expires_in_s)
{
    char home[PATH_LEN], p[PATH_LEN + 80], sha[41];
    s_path(home, sizeof home, "home");
    setenv("HOME", home, 1);
    snprintf(p, sizeof p, "%s/.aws/sso/cache", home);
    char cmd[PATH_LEN + 100];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
    ck_assert_int_eq(system(cmd), 0);
    s_sha1_hex(key, sha);
    snprintf(p + strlen(p), sizeof p - strlen(p), "/%s.json", sha);
    char when[40];
    time_t t = time(NULL) + expires_in_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"startUrl\": \"" START_URL "\", \"region\": \"us-east-1\", "
            "\"accessToken\": \"%s\", \"expiresAt\": \"%s\"}",
            token, when);
    fclose(f);
}

START_TEST(test_sso)
{
    s_server_start("--base-key", SSO_KEY ":" SSO_SECRET ":" SSO_TOKEN, NULL);
    s_aux_start(NULL);
    struct fanout_credentials c;
    char err[512];
    /* Legacy profile: the cache key is the start URL. */
    s_sso_cache(START_URL, SSO_BEARER, 3600);
    s_profiles(NULL,
               "[profile legacy]\nsso_start_url = " START_URL "\n"
               "sso_region = us-east-1\nsso_account_id = 111122223333\n"
               "sso_role_name = ReadOnly\n",
               "legacy");
    ck_assert_msg(s_get_base(&c, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.source, "sso");
    ck_assert_str_eq(c.access_key_id, SSO_KEY);
    ck_assert_str_eq(c.session_token, SSO_TOKEN);
    ck_assert_int_gt(c.expires_ms, s_wall_ms() + 3000 * 1000);
    ck_assert_int_eq(s_aux_stat("sso", "requests"), 1);

    /* sso-session: the cache key is the session's name. */
    s_sso_cache("my-sso", SSO_BEARER, 3600);
    s_profiles(NULL,
               "[profile dev]\nsso_session = my-sso\nsso_account_id = 111122223333\n"
               "sso_role_name = Dev\n"
               "[sso-session my-sso]\nsso_start_url = https://other.awsapps.com/start\n"
               "sso_region = eu-west-1\nsso_registration_scopes = sso:account:access\n",
               "dev");
    ck_assert_msg(s_get_base(&c, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.access_key_id, SSO_KEY);

    /* An SSO profile as the source of a role. */
    s_profiles(NULL,
               "[profile dev]\nsso_session = my-sso\nsso_account_id = 111122223333\n"
               "sso_role_name = Dev\n"
               "[sso-session my-sso]\nsso_start_url = https://other.awsapps.com/start\n"
               "sso_region = eu-west-1\n"
               "[profile admin]\nrole_arn = " ACCOUNT_ROLE "admin\nsource_profile = dev\n",
               "admin");
    ck_assert_msg(s_get_base(&c, err, sizeof err) == 0, "%s", err);
    s_check_issued(&c, "assume-role");

    /* Expired token; a token the portal refuses; missing settings; a
     * session that does not exist; no cached token. */
    s_profiles(NULL,
               "[profile dev]\nsso_session = my-sso\nsso_account_id = 111122223333\n"
               "sso_role_name = Dev\n"
               "[sso-session my-sso]\nsso_start_url = https://other.awsapps.com/start\n"
               "sso_region = eu-west-1\n",
               "dev");
    s_sso_cache("my-sso", SSO_BEARER, -60);
    ck_assert_fails_with(&c, "expired", "aws sso login");
    s_sso_cache("my-sso", "not-the-portal-token-0123456789", 3600);
    ck_assert_fails_with(&c, "HTTP 401", "aws sso login");
    s_profiles(NULL, "[profile dev]\nsso_start_url = " START_URL "\nsso_account_id = 1\n",
               "dev");
    ck_assert_fails_with(&c, "missing required configuration", "sso_role_name",
                         "sso_region");
    s_profiles(NULL,
               "[profile dev]\nsso_session = nope\nsso_account_id = 1\n"
               "sso_role_name = R\n",
               "dev");
    ck_assert_fails_with(&c, "sso-session does not exist", "nope");
    s_profiles(NULL,
               "[profile dev]\nsso_start_url = https://never.example/start\n"
               "sso_region = us-east-1\nsso_account_id = 1\nsso_role_name = R\n",
               "dev");
    ck_assert_fails_with(&c, "no cached token", "aws sso login --profile dev");
    char *log = s_read_log();
    ck_assert_msg(!strstr(log, SSO_BEARER) && !strstr(log, SSO_SECRET) &&
                      !strstr(log, "not-the-portal-token"),
                  "a secret in the log");
    free(log);
}
END_TEST

START_TEST(test_credential_process)
{
    struct fanout_credentials c;
    char err[512], script[PATH_LEN], cfg[2048], args[PATH_LEN];
    s_path(script, sizeof script, "proc.sh");
    s_path(args, sizeof args, "args.txt");
    /* The script records its arguments, then prints what $MODE says. */
    char text[2048];
    snprintf(text, sizeof text,
             "printf '%%s|' \"$@\" > '%s'\n"
             "case \"$MODE\" in\n"
             "ok) printf '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROCESS000000001\", "
             "\"SecretAccessKey\": \"processSecret/0123\", \"SessionToken\": \"procTok\", "
             "\"Expiration\": \"2099-01-02T03:04:05Z\"}' ;;\n"
             "v2) echo '{\"Version\": 2, \"AccessKeyId\": \"A\", \"SecretAccessKey\": "
             "\"S\"}' ;;\n"
             "nokey) echo '{\"Version\": 1, \"AccessKeyId\": \"A\"}' ;;\n"
             "numexp) echo '{\"Version\": 1, \"AccessKeyId\": \"A\", \"SecretAccessKey\": "
             "\"S\", \"SessionToken\": \"T\", \"Expiration\": 1733600000}' ;;\n"
             "fail) echo oops >&2; exit 3 ;;\n"
             "slow) sleep 30 ;;\n"
             "big) head -c 200000 /dev/zero | tr '\\\\0' x ;;\n"
             "esac\n",
             args);
    s_write_file("proc.sh", text);
    snprintf(cfg, sizeof cfg,
             "[profile p]\ncredential_process = /bin/sh \"%s\" 'one two' three\\ four "
             "\"five \\\"six\\\"\"\n",
             script);
    s_profiles(NULL, cfg, "p");
    setenv("MODE", "ok", 1);
    ck_assert_msg(s_get_base(&c, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.source, "process");
    ck_assert_str_eq(c.access_key_id, "AKIDPROCESS000000001");
    ck_assert_str_eq(c.secret_access_key, "processSecret/0123");
    ck_assert_str_eq(c.session_token, "procTok");
    ck_assert_int_eq(c.expires_ms, 4071006245000LL);
    FILE *f = fopen(args, "r");
    ck_assert_ptr_nonnull(f);
    char got[256] = "";
    ck_assert_ptr_nonnull(fgets(got, sizeof got, f));
    fclose(f);
    ck_assert_str_eq(got, "one two|three four|five \"six\"|");

    setenv("MODE", "v2", 1);
    ck_assert_fails_with(&c, "Version", "\"p\"");
    setenv("MODE", "nokey", 1);
    ck_assert_fails_with(&c, "lacks SecretAccessKey");
    /* an Expiration that is not a time string: not "never expires" */
    setenv("MODE", "numexp", 1);
    ck_assert_fails_with(&c, "Expiration", "not a string", "\"p\"");
    setenv("MODE", "fail", 1);
    ck_assert_fails_with(&c, "exited with status 3");
    setenv("MODE", "big", 1);
    ck_assert_fails_with(&c, "more than 64 KiB");
    setenv("MODE", "slow", 1);
    setenv("FANOUT_CREDENTIAL_PROCESS_TIMEOUT_SECONDS", "1", 1);
    int64_t t0 = s_mono_ms();
    ck_assert_fails_with(&c, "timed out");
    ck_assert_int_lt(s_mono_ms() - t0, 5000);
    unsetenv("FANOUT_CREDENTIAL_PROCESS_TIMEOUT_SECONDS");
    /* A command that does not exist; a bad quote. */
    s_profiles(NULL, "[profile p]\ncredential_process = /nonexistent/fanout-helper --x\n",
               "p");
    ck_assert_fails_with(&c, "cannot run", "/nonexistent/fanout-helper");
    s_profiles(NULL, "[profile p]\ncredential_process = /bin/echo 'unclosed\n", "p");
    ck_assert_fails_with(&c, "No closing quotation");
    unsetenv("MODE");
}
END_TEST

START_TEST(test_imds)
{
    s_aux_start(NULL);
    struct fanout_credentials c;
    char err[512];
    ck_assert_msg(s_get_base(&c, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.source, "instance-metadata");
    ck_assert_str_eq(c.access_key_id, IMDS_KEY);
    ck_assert_str_eq(c.session_token, IMDS_TOKEN);
    ck_assert_int_gt(c.expires_ms, s_wall_ms());
    ck_assert_int_eq(s_aux_stat("imds", "token_requests"), 1);
    ck_assert_int_eq(s_aux_stat("imds", "tokens_seen"), 2);
    ck_assert_int_eq(s_aux_stat("imds", "unauthorized"), 0);

    /* Last in the chain: a profile's keys win over it. */
    s_profiles("[default]\naws_access_key_id = " LT_AKID
               "\naws_secret_access_key = " LT_SECRET "\n",
               NULL, NULL);
    ck_assert_msg(s_get_base(&c, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.source, "profile");
    ck_assert_int_eq(s_aux_stat("imds", "token_requests"), 1);

    /* Disabled: not asked. */
    s_profiles("", NULL, NULL);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    ck_assert_fails_with(&c, "no AWS credentials found");
    ck_assert_int_eq(s_aux_stat("imds", "token_requests"), 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");

    /* Nothing listening: no credentials, quickly. */
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
    int64_t t0 = s_mono_ms();
    ck_assert_fails_with(&c, "no AWS credentials found");
    ck_assert_int_lt(s_mono_ms() - t0, 3000);
    s_server_stop();
}
END_TEST

START_TEST(test_imds_variants)
{
    struct fanout_credentials c;
    char err[512];
    /* IMDSv1 only (the token PUT answered 404): on without a token. */
    s_aux_start("--imds-v1-only", NULL);
    ck_assert_msg(s_get_base(&c, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.access_key_id, IMDS_KEY);
    ck_assert_int_eq(s_aux_stat("imds", "tokens_seen"), 0);
    fanout_test_stop_server(&s_aux.pid);
    /* No role attached: no credentials. */
    s_aux_start("--imds-no-role", NULL);
    ck_assert_fails_with(&c, "no AWS credentials found");
    ck_assert_int_eq(s_aux_stat("imds", "requests"), 1);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("credentials");
    TCase *tc = tcase_create("credentials");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_env_credentials);
    tcase_add_test(tc, test_env_half_set);
    tcase_add_test(tc, test_profile_credentials);
    tcase_add_test(tc, test_container_full_uri);
    tcase_add_test(tc, test_container_retried);
    tcase_add_test(tc, test_container_token_file);
    tcase_add_test(tc, test_container_hosts);
    tcase_add_test(tc, test_container_parse_expiration);
    tcase_add_test(tc, test_assume_role);
    tcase_add_test(tc, test_assume_role_external_id);
    tcase_add_test(tc, test_session_name_and_duration);
    tcase_add_test(tc, test_cache_hit);
    tcase_add_test(tc, test_force);
    tcase_add_test(tc, test_refresh_before_expiry);
    tcase_add_test(tc, test_refresh_failure_keeps_current);
    tcase_add_test(tc, test_concurrent_single_fetch);
    tcase_add_test(tc, test_sts_errors);
    tcase_add_test(tc, test_sts_answer_for_another_role);
    tcase_add_test(tc, test_throttling_retried);
    tcase_add_test(tc, test_deadline_bounds_retries);
    tcase_add_test(tc, test_failure_held_not_multiplied);
    tcase_add_test(tc, test_no_secrets_in_logs_or_errors);
    tcase_add_test(tc, test_profile_role_chain);
    tcase_add_test(tc, test_profile_role_errors);
    tcase_add_test(tc, test_credential_source);
    tcase_add_test(tc, test_web_identity);
    tcase_add_test(tc, test_sso);
    tcase_add_test(tc, test_credential_process);
    tcase_add_test(tc, test_imds);
    tcase_add_test(tc, test_imds_variants);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (fanout_http_global_init() != 0)
        return EXIT_FAILURE;
    int rc = fanout_check_run(s_suite());
    fanout_http_global_cleanup();
    return rc;
}
