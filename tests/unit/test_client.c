/* The AWS call as plugins see it: signing, retries, error parsing, the
 * deadline, against the chaos server (tests/servers/chaos_server.py). */
#include <check.h>

#include "check_main.h"
#include "test_server.h"

#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aws/client.h"
#include "aws/credentials.h"
#include "aws/http.h"
#include "common/log.h"

#define AKID   "AKIDEXAMPLECLIENT01"
#define SECRET "client-test-secret-do-not-log-0123456789"
#define TOKEN  "client-test-session-token-do-not-log"

static pid_t s_server;
static char s_base[64];

/* Start a test server script (it prints its port first); fills `base`. */
static pid_t s_start(const char *script_name, const char *const *extra, char *base,
                     size_t base_len)
{
    char script[1024], ppid[32];
    const char *dir = getenv("FANOUT_TESTS_DIR");
    snprintf(script, sizeof script, "%s/servers/%s", dir ? dir : "tests", script_name);
    snprintf(ppid, sizeof ppid, "%d", (int)getpid());
    const char *argv[16] = {"/usr/bin/python3", script, "--parent-pid", ppid,
                            "--max-lifetime",   "120"};
    int k = 6;
    for (; extra && *extra && k < 15; extra++)
        argv[k++] = *extra;
    argv[k] = NULL;
    pid_t pid;
    int port = fanout_test_spawn_server(argv, &pid, script_name);
    snprintf(base, base_len, "http://127.0.0.1:%d", port);
    return pid;
}

static void s_start_server(void)
{
    s_server = s_start("chaos_server.py", NULL, s_base, sizeof s_base);
}

/* The invocation's deadline: INT64_MAX for none, else an absolute time. */
static int64_t s_deadline_ms = INT64_MAX;

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t s_left(void)
{
    return s_deadline_ms == INT64_MAX ? INT64_MAX : s_deadline_ms - s_mono_ms();
}

static void s_setup(void)
{
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_KINESIS");
    unsetenv("AWS_PROFILE");
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_REGION", "eu-west-1", 1);
    setenv("AWS_ACCESS_KEY_ID", AKID, 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    setenv("AWS_SESSION_TOKEN", TOKEN, 1);
    setenv("FANOUT_AWS_RETRY_BASE_MS", "1", 1);
    setenv("FANOUT_AWS_RETRY_CAP_MS", "5", 1);
    s_deadline_ms = INT64_MAX;
    char err[256];
    ck_assert_int_eq(fanout_http_global_init(), 0);
    ck_assert_msg(fanout_aws_init(s_left, err, sizeof err) == 0, "%s", err);
    fanout_credentials_reset();
    s_start_server();
}

static void s_teardown(void)
{
    fanout_test_stop_server(&s_server);
    fanout_credentials_reset();
    fanout_http_global_cleanup();
}

/* One kinesis-shaped request to `path` on the chaos server. */
static void s_request(struct fanout_aws_request *r, const char *path, const char *query)
{
    static const struct fanout_aws_header hdrs[] = {
        {"Content-Type", "application/x-amz-json-1.1"},
        {"X-Amz-Target", "Kinesis_20131202.PutRecords"},
    };
    memset(r, 0, sizeof *r);
    r->struct_size = sizeof *r;
    r->service = "kinesis";
    r->endpoint = s_base;
    r->method = "POST";
    r->path = path;
    r->query = query;
    r->headers = hdrs;
    r->header_count = 2;
    r->body = (const uint8_t *)"{\"Records\":[]}";
    r->body_len = 14;
    r->protocol = FANOUT_AWS_JSON;
}

static void s_call1(struct fanout_aws_request *r, struct fanout_aws_response *out)
{
    const struct fanout_aws_request *rs[] = {r};
    struct fanout_aws_response *os[] = {out};
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    fanout_aws_call(rs, os, 1);
}

START_TEST(signed_request_reaches_the_server)
{
    struct fanout_aws_request r;
    struct fanout_aws_response out;
    s_request(&r, "/echo", NULL);
    s_call1(&r, &out);
    ck_assert_msg(out.result == FANOUT_AWS_OK, "%s: %s", out.error_code, out.error_message);
    ck_assert_int_eq(out.status, 200);
    ck_assert_uint_eq(out.attempts, 1);
    json_t *echo = json_loadb((const char *)out.body, out.body_len, 0, NULL);
    ck_assert_ptr_nonnull(echo);
    json_t *h = json_object_get(echo, "headers");
    const char *auth = json_string_value(json_object_get(h, "authorization"));
    ck_assert_ptr_nonnull(auth);
    ck_assert_msg(strstr(auth, "AWS4-HMAC-SHA256 Credential=" AKID "/") &&
                      strstr(auth, "/eu-west-1/kinesis/aws4_request") &&
                      strstr(auth, "SignedHeaders=content-type;host;x-amz-date;"
                                   "x-amz-security-token;x-amz-target"),
                  "%s", auth);
    ck_assert_str_eq(json_string_value(json_object_get(h, "x-amz-security-token")), TOKEN);
    ck_assert_str_eq(json_string_value(json_object_get(h, "x-amz-target")),
                     "Kinesis_20131202.PutRecords");
    ck_assert_int_eq(json_integer_value(json_object_get(echo, "bodyLength")), 14);
    /* headers of the answer are readable */
    ck_assert_ptr_nonnull(fanout_aws_response_header(&out, "content-length"));
    json_decref(echo);
    fanout_aws_response_clean_up(&out);
}
END_TEST

START_TEST(throttled_then_delivered)
{
    struct fanout_aws_request r;
    struct fanout_aws_response out;
    s_request(&r, "/throttle/2", "key=t1");
    s_call1(&r, &out);
    ck_assert_msg(out.result == FANOUT_AWS_OK, "%s: %s", out.error_code, out.error_message);
    ck_assert_uint_eq(out.attempts, 3);
    fanout_aws_response_clean_up(&out);
}
END_TEST

START_TEST(throttled_until_attempts_run_out)
{
    char err[256];
    setenv("FANOUT_AWS_MAX_ATTEMPTS", "3", 1);
    ck_assert_int_eq(fanout_aws_init(s_left, err, sizeof err), 0);
    struct fanout_aws_request r;
    struct fanout_aws_response out;
    s_request(&r, "/throttle/50", "key=t2");
    s_call1(&r, &out);
    unsetenv("FANOUT_AWS_MAX_ATTEMPTS");
    ck_assert_int_eq(out.result, FANOUT_AWS_THROTTLED);
    ck_assert_uint_eq(out.attempts, 3);
    ck_assert_str_eq(out.error_code, "ThrottlingException");
    /* the engine's own calls (store, commands): this layer counts */
    ck_assert_str_eq(out.error_message, "Rate exceeded (HTTP 400, 3 attempts)");
    fanout_aws_response_clean_up(&out);
}
END_TEST

START_TEST(server_errors_retried)
{
    struct fanout_aws_request r;
    struct fanout_aws_response out;
    s_request(&r, "/fail/1", "key=f1");
    s_call1(&r, &out);
    ck_assert_int_eq(out.result, FANOUT_AWS_OK);
    ck_assert_uint_eq(out.attempts, 2);
    fanout_aws_response_clean_up(&out);
    s_request(&r, "/fail/99", "key=f2");
    s_call1(&r, &out);
    ck_assert_int_eq(out.result, FANOUT_AWS_RETRYABLE);
    ck_assert_int_eq(out.status, 500);
    ck_assert_uint_eq(out.attempts, 5); /* the default policy */
    fanout_aws_response_clean_up(&out);
}
END_TEST

START_TEST(validation_error_not_retried)
{
    struct fanout_aws_request r;
    struct fanout_aws_response out;
    s_request(&r, "/status/400",
              "body=%7B%22__type%22%3A%22com.amazonaws.kinesis%23ValidationException%22%2C"
              "%22message%22%3A%22bad%20stream%22%7D");
    s_call1(&r, &out);
    ck_assert_int_eq(out.result, FANOUT_AWS_FAILED);
    ck_assert_uint_eq(out.attempts, 1);
    ck_assert_str_eq(out.error_code, "ValidationException");
    ck_assert_msg(strstr(out.error_message, "bad stream"), "%s", out.error_message);
    fanout_aws_response_clean_up(&out);
}
END_TEST

START_TEST(reset_and_timeout)
{
    struct fanout_aws_request r;
    struct fanout_aws_response out;
    s_request(&r, "/reset", NULL);
    s_call1(&r, &out);
    ck_assert_int_eq(out.result, FANOUT_AWS_RETRYABLE);
    ck_assert_str_eq(out.error_code, "ConnectionReset");
    ck_assert_int_eq(out.status, 0);
    fanout_aws_response_clean_up(&out);

    /* a stalled server is cut by the request's own time limit */
    s_request(&r, "/stall/3000", NULL);
    r.timeout_ms = 400;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    s_call1(&r, &out);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_int_eq(out.result, FANOUT_AWS_RETRYABLE);
    ck_assert_str_eq(out.error_code, "Timeout");
    ck_assert_msg(s < 2.5, "took %.2f s", s);
    fanout_aws_response_clean_up(&out);
}
END_TEST

START_TEST(deadline_respected)
{
    /* 800 ms left in the invocation, 500 of them kept as margin: a stalled
     * request is cut at about 300 ms and not retried past the deadline */
    s_deadline_ms = s_mono_ms() + 800;
    struct fanout_aws_request r;
    struct fanout_aws_response out;
    s_request(&r, "/stall/3000", NULL);
    s_call1(&r, &out);
    ck_assert_int_eq(out.result, FANOUT_AWS_RETRYABLE);
    ck_assert_uint_eq(out.attempts, 1);
    fanout_aws_response_clean_up(&out);
    s_deadline_ms = s_mono_ms() + 100; /* below the margin: nothing is sent */
    s_request(&r, "/echo", NULL);
    s_call1(&r, &out);
    ck_assert_int_eq(out.result, FANOUT_AWS_RETRYABLE);
    ck_assert_uint_eq(out.attempts, 0);
    ck_assert_msg(strstr(out.error_message, "deadline"), "%s", out.error_message);
    fanout_aws_response_clean_up(&out);
}
END_TEST

START_TEST(retry_needs_the_minimum_attempt_time)
{
    /* A retry is started only with S_MIN_ATTEMPT_MS (100) left after its
     * backoff (at most 5 ms here) and the 500 ms margin. 595 ms left at
     * the start leave less than 95 once the first answer is in: a throttled
     * call ends after one attempt, though the backoff alone would fit. */
    struct fanout_aws_request r;
    struct fanout_aws_response out;
    s_request(&r, "/echo", NULL); /* the connection made, so the attempts are quick */
    s_call1(&r, &out);
    ck_assert_int_eq(out.result, FANOUT_AWS_OK);
    fanout_aws_response_clean_up(&out);
    s_deadline_ms = s_mono_ms() + 500 + 95;
    s_request(&r, "/throttle/50", "key=min1");
    s_call1(&r, &out);
    ck_assert_msg(out.result == FANOUT_AWS_THROTTLED, "%s: %s", out.error_code,
                  out.error_message);
    ck_assert_uint_eq(out.attempts, 1);
    fanout_aws_response_clean_up(&out);
    /* with room for a minimal attempt after the backoff: retried */
    s_deadline_ms = s_mono_ms() + 500 + 100 + 5 + 400;
    s_request(&r, "/throttle/1", "key=min2");
    s_call1(&r, &out);
    ck_assert_msg(out.result == FANOUT_AWS_OK, "%s: %s", out.error_code, out.error_message);
    ck_assert_uint_eq(out.attempts, 2);
    fanout_aws_response_clean_up(&out);
}
END_TEST

START_TEST(many_at_once_each_judged)
{
    enum { N = 24 };
    struct fanout_aws_request r[N];
    struct fanout_aws_response out[N];
    const struct fanout_aws_request *rs[N];
    struct fanout_aws_response *os[N];
    char keys[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "key=m%d", i);
        s_request(&r[i],
                  i % 3 == 0   ? "/throttle/1"
                  : i % 3 == 1 ? "/stall/200"
                               : "/echo",
                  keys[i]);
        rs[i] = &r[i];
        out[i].struct_size = sizeof out[i];
        os[i] = &out[i];
    }
    r[5].service = "nosuchservice";
    ck_assert_int_eq(fanout_aws_call(rs, os, N), -1); /* one unusable request */
    for (int i = 0; i < N; i++) {
        if (i == 5) {
            ck_assert_int_eq(out[i].result, FANOUT_AWS_FAILED);
            ck_assert_msg(strstr(out[i].error_message, "nosuchservice"), "%s",
                          out[i].error_message);
        } else {
            ck_assert_msg(out[i].result == FANOUT_AWS_OK, "%d: %s %s", i, out[i].error_code,
                          out[i].error_message);
            ck_assert_uint_eq(out[i].attempts, i % 3 == 0 ? 2 : 1);
        }
        fanout_aws_response_clean_up(&out[i]);
    }
}
END_TEST

START_TEST(no_region_no_credentials)
{
    struct fanout_aws_request r;
    struct fanout_aws_response out;
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    s_request(&r, "/echo", NULL);
    s_call1(&r, &out);
    ck_assert_int_eq(out.result, FANOUT_AWS_FAILED);
    ck_assert_str_eq(out.error_code, "NoRegion");
    fanout_aws_response_clean_up(&out);
    r.region = "us-west-2";
    unsetenv("AWS_SECRET_ACCESS_KEY");
    fanout_credentials_reset();
    s_call1(&r, &out);
    ck_assert_int_eq(out.result, FANOUT_AWS_FAILED);
    ck_assert_str_eq(out.error_code, "CredentialsError");
    ck_assert_msg(strstr(out.error_message, "AWS_SECRET_ACCESS_KEY"), "%s",
                  out.error_message);
    fanout_aws_response_clean_up(&out);
}
END_TEST

START_TEST(secrets_never_logged)
{
    char path[] = "/tmp/fanout-client-log-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    fanout_log_set(FANOUT_LOG_DEBUG, 1);
    fanout_log_set_fd(fd);
    struct fanout_aws_request r;
    struct fanout_aws_response out;
    s_request(&r, "/throttle/1", "key=s1");
    s_call1(&r, &out);
    fanout_aws_response_clean_up(&out);
    s_request(
        &r, "/status/403",
        "body=%7B%22__type%22%3A%22AccessDeniedException%22%2C%22message%22%3A%22no%22%7D");
    s_call1(&r, &out);
    ck_assert_int_eq(out.result, FANOUT_AWS_FAILED);
    ck_assert(strstr(out.error_message, SECRET) == NULL);
    ck_assert(strstr(out.error_message, TOKEN) == NULL);
    fanout_aws_response_clean_up(&out);
    fanout_log_set_fd(-1);
    fanout_log_set(FANOUT_LOG_ERROR, 0);
    char buf[65536];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    ck_assert_int_ge(n, 0);
    buf[n] = 0;
    ck_assert_msg(strstr(buf, "throttled") != NULL, "nothing logged: %s", buf);
    ck_assert(strstr(buf, SECRET) == NULL);
    ck_assert(strstr(buf, TOKEN) == NULL);
    ck_assert(strstr(buf, "Signature=") == NULL);
}
END_TEST

/* Credentials that expire under a client that still believes them valid:
 * the answer ExpiredTokenException refreshes them (AssumeRole again) and
 * the request goes once more. */
START_TEST(expired_token_refreshed_and_retried_once)
{
    char sts[64];
    const char *extra[] = {"--base-key", AKID ":" SECRET ":" TOKEN,
                           "--service-expires-after", "1", NULL};
    pid_t pid = s_start("sts_server.py", extra, sts, sizeof sts);
    setenv("AWS_ENDPOINT_URL_STS", sts, 1);
    struct fanout_aws_request r;
    struct fanout_aws_response out;
    s_request(&r, "/service", NULL);
    r.endpoint = sts;
    r.role_arn = "arn:aws:iam::123456789012:role/target";
    s_call1(&r, &out);
    ck_assert_msg(out.result == FANOUT_AWS_OK, "%s: %s", out.error_code, out.error_message);
    ck_assert_uint_eq(out.attempts, 1);
    char first[64] = "";
    json_t *j = json_loadb((const char *)out.body, out.body_len, 0, NULL);
    fanout_strlcpy(first, json_string_value(json_object_get(j, "accessKeyId")),
                   sizeof first);
    json_decref(j);
    fanout_aws_response_clean_up(&out);
    usleep(1200 * 1000);
    s_call1(&r, &out);
    ck_assert_msg(out.result == FANOUT_AWS_OK, "%s: %s", out.error_code, out.error_message);
    ck_assert_uint_eq(out.attempts, 2);
    j = json_loadb((const char *)out.body, out.body_len, 0, NULL);
    ck_assert_str_ne(json_string_value(json_object_get(j, "accessKeyId")), first);
    json_decref(j);
    fanout_aws_response_clean_up(&out);
    /* A record send (one attempt) is cured the same way: the refresh and
     * the resend are part of that attempt. */
    usleep(1200 * 1000);
    const struct fanout_aws_request *rs[] = {&r};
    struct fanout_aws_response *os[] = {&out};
    memset(&out, 0, sizeof out);
    out.struct_size = sizeof out;
    fanout_aws_call_once(rs, os, 1);
    ck_assert_msg(out.result == FANOUT_AWS_OK, "%s: %s", out.error_code, out.error_message);
    ck_assert_uint_eq(out.attempts, 2);
    fanout_aws_response_clean_up(&out);
    unsetenv("AWS_ENDPOINT_URL_STS");
    fanout_test_stop_server(&pid);
}
END_TEST

/* Record sends (the host table's aws_call): one attempt, the outcome
 * returned at once for the engine to retry; no attempt count in the
 * message, the engine reports it. */
static void s_call1_once(struct fanout_aws_request *r, struct fanout_aws_response *out)
{
    const struct fanout_aws_request *rs[] = {r};
    struct fanout_aws_response *os[] = {out};
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    fanout_aws_call_once(rs, os, 1);
}

static long s_key_count(const char *key)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s/stats", s_base);
    struct fanout_http_request hr = {.method = "GET", .url = cmd, .timeout_ms = 5000};
    struct fanout_http_response hs;
    memset(&hs, 0, sizeof hs);
    const struct fanout_http_request *hrs[] = {&hr};
    struct fanout_http_response *hss[] = {&hs};
    fanout_http_perform(hrs, hss, 1);
    ck_assert_int_eq(hs.status, 200);
    json_t *j = json_loadb((const char *)hs.body.bytes, hs.body.len, 0, NULL);
    ck_assert_ptr_nonnull(j);
    long n = (long)json_integer_value(json_object_get(json_object_get(j, "keys"), key));
    json_decref(j);
    fanout_http_response_clean_up(&hs);
    return n;
}

START_TEST(record_send_makes_one_attempt)
{
    char err[256];
    setenv("FANOUT_AWS_MAX_ATTEMPTS", "5", 1);
    ck_assert_int_eq(fanout_aws_init(s_left, err, sizeof err), 0);
    unsetenv("FANOUT_AWS_MAX_ATTEMPTS");
    struct fanout_aws_request r;
    struct fanout_aws_response out;

    s_request(&r, "/throttle/50", "key=once-t");
    s_call1_once(&r, &out);
    ck_assert_int_eq(out.result, FANOUT_AWS_THROTTLED);
    ck_assert_uint_eq(out.attempts, 1);
    ck_assert_int_eq(out.status, 400);
    ck_assert_str_eq(out.error_code, "ThrottlingException");
    ck_assert_str_eq(out.error_message, "Rate exceeded (HTTP 400)");
    /* the answer's headers stay readable (a Retry-After for the engine) */
    ck_assert_ptr_nonnull(fanout_aws_response_header(&out, "Content-Type"));
    fanout_aws_response_clean_up(&out);
    ck_assert_int_eq(s_key_count("once-t"), 1);

    s_request(&r, "/fail/50", "key=once-f");
    s_call1_once(&r, &out);
    ck_assert_int_eq(out.result, FANOUT_AWS_RETRYABLE);
    ck_assert_uint_eq(out.attempts, 1);
    ck_assert_int_eq(out.status, 500);
    ck_assert_msg(!strstr(out.error_message, "attempt"), "%s", out.error_message);
    ck_assert_msg(strstr(out.error_message, "(HTTP 500)"), "%s", out.error_message);
    fanout_aws_response_clean_up(&out);
    ck_assert_int_eq(s_key_count("once-f"), 1);

    s_request(&r, "/reset", NULL);
    s_call1_once(&r, &out);
    ck_assert_int_eq(out.result, FANOUT_AWS_RETRYABLE);
    ck_assert_uint_eq(out.attempts, 1);
    ck_assert_int_eq(out.status, 0);
    ck_assert_str_eq(out.error_code, "ConnectionReset");
    ck_assert_msg(strncmp(out.error_message, "no response: ", 13) == 0 &&
                      !strstr(out.error_message, "attempt"),
                  "%s", out.error_message);
    fanout_aws_response_clean_up(&out);

    /* Success and permanent errors are what they were. */
    s_request(&r, "/echo", NULL);
    s_call1_once(&r, &out);
    ck_assert_int_eq(out.result, FANOUT_AWS_OK);
    ck_assert_uint_eq(out.attempts, 1);
    fanout_aws_response_clean_up(&out);
}
END_TEST

START_TEST(endpoint_resolution_exposed)
{
    char url[256], err[256];
    ck_assert_int_eq(
        fanout_aws_endpoint("kinesis", "cn-north-1", url, sizeof url, err, sizeof err), 0);
    ck_assert_str_eq(url, "https://kinesis.cn-north-1.amazonaws.com.cn");
    ck_assert_int_eq(fanout_aws_endpoint("sqs", NULL, url, sizeof url, err, sizeof err), 0);
    ck_assert_str_eq(url, "https://sqs.eu-west-1.amazonaws.com");
    setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9324", 1);
    ck_assert_int_eq(fanout_aws_endpoint("sqs", NULL, url, sizeof url, err, sizeof err), 0);
    ck_assert_str_eq(url, "http://127.0.0.1:9324");
    unsetenv("AWS_ENDPOINT_URL_SQS");
    ck_assert_int_eq(fanout_aws_endpoint("nope", NULL, url, sizeof url, err, sizeof err),
                     -1);
}
END_TEST

int main(void)
{
    fanout_log_set(FANOUT_LOG_ERROR, 0);
    Suite *s = suite_create("client");
    TCase *tc = tcase_create("call");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, signed_request_reaches_the_server);
    tcase_add_test(tc, throttled_then_delivered);
    tcase_add_test(tc, throttled_until_attempts_run_out);
    tcase_add_test(tc, server_errors_retried);
    tcase_add_test(tc, validation_error_not_retried);
    tcase_add_test(tc, reset_and_timeout);
    tcase_add_test(tc, deadline_respected);
    tcase_add_test(tc, retry_needs_the_minimum_attempt_time);
    tcase_add_test(tc, many_at_once_each_judged);
    tcase_add_test(tc, no_region_no_credentials);
    tcase_add_test(tc, secrets_never_logged);
    tcase_add_test(tc, expired_token_refreshed_and_retried_once);
    tcase_add_test(tc, endpoint_resolution_exposed);
    tcase_add_test(tc, record_send_makes_one_attempt);
    suite_add_tcase(s, tc);
    return fanout_check_run(s);
}
