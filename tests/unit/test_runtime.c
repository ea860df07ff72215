/* Check suite for engine/core/runtime.c: the Lambda Runtime API loop.
 *
 * Each test starts tests/servers/runtime_emulator.py on an ephemeral port (it prints
 * the port on its first stdout line), runs fanout_runtime_run against it with
 * a recording handler, then reads what the emulator recorded (one JSON line
 * per request) to check what reached the API. The emulator exits on its own
 * when this process goes away, and after a lifetime backstop. */
#include <check.h>

#include "check_main.h"
#include "test_server.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "core/runtime.h"
#include "common/util.h"

extern char **environ;

#define PATH_LEN    512
#define MAX_CALLS   8
#define DEFAULT_ARN "arn:aws:lambda:us-east-1:123456789012:function:fanout-test"
#define TRACE_ID                                                                           \
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

/* ---- emulator ----------------------------------------------------------- */

static struct {
    char dir[PATH_LEN / 2];
    char events[PATH_LEN];
    char out[PATH_LEN];
    char log[PATH_LEN];
    char api[64];
    pid_t pid;
    int log_fd;
} s_emu;

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

static void s_setup(void)
{
    memset(&s_emu, 0, sizeof s_emu);
    s_emu.pid = -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(s_emu.dir, sizeof s_emu.dir, "%s/fanout-rt-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(s_emu.dir));
    snprintf(s_emu.events, sizeof s_emu.events, "%s/events.json", s_emu.dir);
    snprintf(s_emu.out, sizeof s_emu.out, "%s/out.jsonl", s_emu.dir);
    snprintf(s_emu.log, sizeof s_emu.log, "%s/log.txt", s_emu.dir);
    s_emu.log_fd =
        open(s_emu.log, O_CREAT | O_WRONLY | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    ck_assert_int_ge(s_emu.log_fd, 0);
    fanout_log_set(FANOUT_LOG_DEBUG, 0);
    fanout_log_set_fd(s_emu.log_fd);
    unsetenv("_X_AMZN_TRACE_ID");
}

static void s_emu_stop(void)
{
    fanout_test_stop_server(&s_emu.pid);
}

static void s_teardown(void)
{
    s_emu_stop();
    fanout_log_set_fd(-1);
    fanout_log_set(FANOUT_LOG_INFO, 0);
    if (s_emu.log_fd >= 0)
        close(s_emu.log_fd);
    unlink(s_emu.events);
    unlink(s_emu.out);
    unlink(s_emu.log);
    rmdir(s_emu.dir);
    unsetenv("_X_AMZN_TRACE_ID");
}

/* Start the emulator serving `events` (a reference is stolen) with extra
 * options (NULL-terminated); sets s_emu.api. */
static void s_emu_start(json_t *events, ...)
{
    ck_assert_ptr_nonnull(events);
    ck_assert_int_eq(json_dump_file(events, s_emu.events, JSON_COMPACT), 0);
    json_decref(events);

    const char *dir = getenv("FANOUT_TESTS_DIR");
    char script[PATH_LEN], ppid[32];
    snprintf(script, sizeof script, "%s/servers/runtime_emulator.py",
             dir && *dir ? dir : "tests");
    snprintf(ppid, sizeof ppid, "%ld", (long)getpid());
    const char *argv[32] = {"/usr/bin/python3", script,    "--events",     s_emu.events,
                            "--output",         s_emu.out, "--parent-pid", ppid,
                            "--max-lifetime",   "300"};
    size_t argc = 10;
    va_list ap;
    va_start(ap, events);
    const char *opt;
    while ((opt = va_arg(ap, const char *)) != NULL && argc < 31)
        argv[argc++] = opt;
    va_end(ap);
    argv[argc] = NULL;

    int port = fanout_test_spawn_server(argv, &s_emu.pid, "the emulator");
    snprintf(s_emu.api, sizeof s_emu.api, "127.0.0.1:%d", port);
}

/* The emulator's records of `kind` (all when NULL), in order. */
static json_t *s_records(const char *kind)
{
    FILE *f = fopen(s_emu.out, "r");
    ck_assert_msg(f != NULL, "cannot open %s", s_emu.out);
    json_t *all = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *rec = json_loadb(line, (size_t)len, 0, &jerr);
        ck_assert_msg(rec != NULL, "bad record: %s", jerr.text);
        const char *k = json_string_value(json_object_get(rec, "kind"));
        if (!kind || (k && strcmp(k, kind) == 0))
            json_array_append(all, rec);
        json_decref(rec);
    }
    free(line);
    fclose(f);
    return all;
}

static const char *s_rec_str(json_t *rec, const char *key)
{
    return json_string_value(json_object_get(rec, key));
}

static json_int_t s_rec_int(json_t *rec, const char *key)
{
    return json_integer_value(json_object_get(rec, key));
}

static const char *s_rec_header(json_t *rec, const char *name)
{
    return json_string_value(json_object_get(json_object_get(rec, "headers"), name));
}

static char *s_read_log(void)
{
    FILE *f = fopen(s_emu.log, "r");
    ck_assert_ptr_nonnull(f);
    struct fanout_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fanout_buf_append(&b, chunk, n);
    fclose(f);
    fanout_buf_append(&b, "", 0);
    return (char *)b.ptr;
}

static int s_log_contains(const char *needle)
{
    char *text = s_read_log();
    int found = strstr(text, needle) != NULL;
    free(text);
    return found;
}

static json_t *s_event(json_t *event)
{
    return json_pack("{s:o}", "event", event);
}

/* ---- the test handler --------------------------------------------------- */

struct seen {
    char id[256];
    char arn[256];
    char trace[256];
    char trace_env[256];
    int trace_env_set;
    int64_t deadline_ms;
    int64_t remaining_ms;
    size_t event_len;
    int event_matches;
};

struct th_ctx {
    unsigned calls;
    unsigned fail_mask;                /* bit i: call i fails */
    const char *error_type[MAX_CALLS]; /* NULL: leave it empty */
    const char *error_message[MAX_CALLS];
    const char *response[MAX_CALLS];     /* NULL: echo the event */
    size_t big_response[MAX_CALLS];      /* >0: a JSON string this long */
    const char *expect_event[MAX_CALLS]; /* checked byte for byte */
    size_t expect_len[MAX_CALLS];
    struct seen seen[MAX_CALLS];
};

static int s_handler(void *vctx, const struct fanout_invocation *inv,
                     struct fanout_buf *response, char *error_type, size_t error_type_len,
                     char *error_message, size_t error_message_len)
{
    struct th_ctx *ctx = vctx;
    unsigned i = ctx->calls++;
    if (i >= MAX_CALLS)
        return -1;
    struct seen *s = &ctx->seen[i];
    fanout_strlcpy(s->id, inv->request_id, sizeof s->id);
    fanout_strlcpy(s->arn, inv->function_arn ? inv->function_arn : "(null)", sizeof s->arn);
    fanout_strlcpy(s->trace, inv->trace_id ? inv->trace_id : "(null)", sizeof s->trace);
    const char *env = getenv("_X_AMZN_TRACE_ID");
    s->trace_env_set = env != NULL;
    fanout_strlcpy(s->trace_env, env ? env : "", sizeof s->trace_env);
    s->deadline_ms = inv->deadline_ms;
    s->remaining_ms = fanout_runtime_remaining_ms();
    s->event_len = inv->event_len;
    s->event_matches = ctx->expect_event[i] && inv->event_len == ctx->expect_len[i] &&
                       inv->event[inv->event_len] == 0 &&
                       memcmp(inv->event, ctx->expect_event[i], inv->event_len) == 0;

    if (ctx->fail_mask & (1u << i)) {
        if (ctx->error_type[i])
            fanout_strlcpy(error_type, ctx->error_type[i], error_type_len);
        if (ctx->error_message[i])
            fanout_strlcpy(error_message, ctx->error_message[i], error_message_len);
        return -1;
    }
    if (ctx->big_response[i]) {
        fanout_buf_append_byte(response, '"');
        for (size_t k = 0; k + 2 < ctx->big_response[i]; k++)
            fanout_buf_append_byte(response, (uint8_t)('a' + k % 26));
        fanout_buf_append_byte(response, '"');
    } else if (ctx->response[i]) {
        fanout_buf_append_str(response, ctx->response[i]);
    } else {
        fanout_buf_append(response, inv->event, inv->event_len);
    }
    return 0;
}

static int s_run(struct th_ctx *ctx, unsigned max_invocations)
{
    struct fanout_runtime_options o = {
        .api = s_emu.api,
        .handler = s_handler,
        .ctx = ctx,
        .max_invocations = max_invocations,
    };
    return fanout_runtime_run(&o);
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(test_responses_delivered)
{
    s_emu_start(json_pack("[o,o,{s:[i,i,i],s:s},o]", s_event(json_pack("{s:i}", "n", 1)),
                          s_event(json_pack("{s:i,s:s}", "n", 2, "s", "two")), "event", 1,
                          2, 3, "requestId", "req-0003", s_event(json_pack("{}"))),
                NULL);
    struct th_ctx ctx = {0};
    ctx.response[3] = ""; /* an empty response is a valid (null) result */
    ck_assert_int_eq(s_run(&ctx, 4), 0);
    ck_assert_uint_eq(ctx.calls, 4);

    json_t *nexts = s_records("next");
    json_t *resp = s_records("response");
    ck_assert_uint_eq(json_array_size(nexts), 4); /* no fifth /next */
    ck_assert_uint_eq(json_array_size(resp), 4);
    const char *bodies[] = {"{\"n\":1}", "{\"n\":2,\"s\":\"two\"}", "[1,2,3]", ""};
    for (size_t i = 0; i < 4; i++) {
        json_t *r = json_array_get(resp, i);
        ck_assert_str_eq(s_rec_str(r, "requestId"), ctx.seen[i].id);
        ck_assert_str_eq(s_rec_str(json_array_get(nexts, i), "requestId"), ctx.seen[i].id);
        char path[320];
        snprintf(path, sizeof path, "/2018-06-01/runtime/invocation/%s/response",
                 ctx.seen[i].id);
        ck_assert_str_eq(s_rec_str(r, "path"), path);
        ck_assert_int_eq(s_rec_int(r, "status"), 202);
        ck_assert_str_eq(s_rec_str(r, "body"), bodies[i]);
        ck_assert_str_eq(s_rec_header(r, "content-type"), "application/json");
        ck_assert_ptr_null(s_rec_header(r, "expect"));
        ck_assert_ptr_null(s_rec_header(r, "lambda-runtime-function-error-type"));
        ck_assert_str_eq(ctx.seen[i].arn, DEFAULT_ARN);
    }
    ck_assert_str_eq(ctx.seen[2].id, "req-0003");

    /* One kept-alive connection for the whole loop. */
    json_t *all = s_records(NULL);
    json_int_t port = s_rec_int(json_array_get(all, 0), "clientPort");
    for (size_t i = 0; i < json_array_size(all); i++)
        ck_assert_int_eq(s_rec_int(json_array_get(all, i), "clientPort"), port);
    json_decref(all);
    all = s_records("error");
    ck_assert_uint_eq(json_array_size(all), 0);
    json_decref(all);
    json_decref(nexts);
    json_decref(resp);
}
END_TEST

START_TEST(test_handler_error_posted)
{
    static const char type[] = "Fanout.DeliveryFailed";
    static const char msg[] = "sink \"kinesis-main\" failed:\n\tline 2 \\ back-slash, "
                              "caf\xc3\xa9 {\"json\":true}\r\nend";
    s_emu_start(json_pack("[o]", s_event(json_pack("{s:i}", "n", 1))), NULL);
    struct th_ctx ctx = {.fail_mask = 1};
    ctx.error_type[0] = type;
    ctx.error_message[0] = msg;
    ck_assert_int_eq(s_run(&ctx, 1), 0);

    json_t *errs = s_records("error");
    ck_assert_uint_eq(json_array_size(errs), 1);
    json_t *r = json_array_get(errs, 0);
    ck_assert_str_eq(s_rec_str(r, "requestId"), ctx.seen[0].id);
    ck_assert_int_eq(s_rec_int(r, "status"), 202);
    ck_assert_str_eq(s_rec_header(r, "lambda-runtime-function-error-type"), type);
    ck_assert_str_eq(s_rec_header(r, "content-type"), "application/json");

    json_error_t jerr;
    json_t *doc = json_loads(s_rec_str(r, "body"), 0, &jerr);
    ck_assert_msg(doc != NULL, "error body is not JSON: %s", jerr.text);
    ck_assert_uint_eq(json_object_size(doc), 3);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "errorMessage")), msg);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "errorType")), type);
    ck_assert(json_is_array(json_object_get(doc, "stackTrace")));
    ck_assert_uint_eq(json_array_size(json_object_get(doc, "stackTrace")), 0);
    json_decref(doc);

    json_t *resp = s_records("response");
    ck_assert_uint_eq(json_array_size(resp), 0);
    json_decref(resp);
    json_decref(errs);
}
END_TEST

/* A handler's error type cannot inject headers; invalid UTF-8 in a message
 * still makes valid JSON; an empty error gets a default type and message. */
START_TEST(test_handler_error_sanitised)
{
    s_emu_start(json_pack("[o,o]", s_event(json_pack("{}")), s_event(json_pack("{}"))),
                NULL);
    struct th_ctx ctx = {.fail_mask = 3};
    ctx.error_type[0] = "Bad\r\nX-Injected: yes";
    ctx.error_message[0] = "bad utf-8 \xff\xfe end";
    ck_assert_int_eq(s_run(&ctx, 2), 0);

    json_t *errs = s_records("error");
    ck_assert_uint_eq(json_array_size(errs), 2);
    json_t *r = json_array_get(errs, 0);
    ck_assert_ptr_null(s_rec_header(r, "x-injected"));
    const char *hdr = s_rec_header(r, "lambda-runtime-function-error-type");
    ck_assert_ptr_nonnull(hdr);
    ck_assert_ptr_null(strpbrk(hdr, "\r\n "));
    ck_assert_ptr_nonnull(strstr(hdr, "Bad"));
    json_t *doc = json_loads(s_rec_str(r, "body"), 0, NULL);
    ck_assert_ptr_nonnull(doc);
    const char *m = json_string_value(json_object_get(doc, "errorMessage"));
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(strstr(m, "bad utf-8 "));
    ck_assert_ptr_nonnull(strstr(m, "\xef\xbf\xbd")); /* U+FFFD */
    ck_assert_ptr_nonnull(strstr(m, " end"));
    ck_assert_str_eq(json_string_value(json_object_get(doc, "errorType")), hdr);
    json_decref(doc);

    r = json_array_get(errs, 1);
    ck_assert_str_eq(s_rec_header(r, "lambda-runtime-function-error-type"),
                     "Runtime.UnknownReason");
    doc = json_loads(s_rec_str(r, "body"), 0, NULL);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "errorType")),
                     "Runtime.UnknownReason");
    ck_assert_uint_gt(strlen(json_string_value(json_object_get(doc, "errorMessage"))), 0);
    json_decref(doc);
    json_decref(errs);
}
END_TEST

START_TEST(test_trace_id_exported)
{
    setenv("_X_AMZN_TRACE_ID", "stale", 1);
    s_emu_start(
        json_pack("[{s:{},s:s},o]", "event", "traceId", TRACE_ID, s_event(json_pack("{}"))),
        NULL);
    struct th_ctx ctx = {0};
    ck_assert_int_eq(s_run(&ctx, 2), 0);
    ck_assert_uint_eq(ctx.calls, 2);
    ck_assert_int_eq(ctx.seen[0].trace_env_set, 1);
    ck_assert_str_eq(ctx.seen[0].trace_env, TRACE_ID);
    ck_assert_str_eq(ctx.seen[0].trace, TRACE_ID);
    /* No header: the previous invocation's id must not linger. */
    ck_assert_int_eq(ctx.seen[1].trace_env_set, 0);
    ck_assert_str_eq(ctx.seen[1].trace, "");
}
END_TEST

START_TEST(test_headers_case_insensitive)
{
    int64_t deadline = s_wall_ms() + 20000;
    s_emu_start(json_pack("[{s:{},s:s,s:s,s:I}]", "event", "requestId", "Lower-Case-1",
                          "traceId", "Root=lower", "deadlineMs", (json_int_t)deadline),
                "--lowercase-headers", NULL);
    struct th_ctx ctx = {0};
    ck_assert_int_eq(s_run(&ctx, 1), 0);
    ck_assert_str_eq(ctx.seen[0].id, "Lower-Case-1");
    ck_assert_str_eq(ctx.seen[0].trace_env, "Root=lower");
    ck_assert_str_eq(ctx.seen[0].arn, DEFAULT_ARN);
    ck_assert_int_eq(ctx.seen[0].deadline_ms, deadline);
    json_t *resp = s_records("response");
    ck_assert_str_eq(s_rec_str(json_array_get(resp, 0), "requestId"), "Lower-Case-1");
    json_decref(resp);
}
END_TEST

START_TEST(test_remaining_ms)
{
    ck_assert_int_eq(fanout_runtime_remaining_ms(), INT64_MAX);
    int64_t now = s_wall_ms();
    s_emu_start(json_pack("[{s:{},s:I},{s:{},s:n},{s:{},s:I}]", "event", "deadlineMs",
                          (json_int_t)(now + 30000), "event", "deadlineMs", "event",
                          "deadlineMs", (json_int_t)(now - 1000)),
                NULL);
    struct th_ctx ctx = {0};
    ck_assert_int_eq(s_run(&ctx, 3), 0);
    ck_assert_int_eq(ctx.seen[0].deadline_ms, now + 30000);
    /* Generous lower bound: valgrind and a loaded machine are slow. */
    ck_assert_int_le(ctx.seen[0].remaining_ms, 30000);
    ck_assert_int_ge(ctx.seen[0].remaining_ms, 10000);
    /* No deadline header: no deadline. */
    ck_assert_int_eq(ctx.seen[1].deadline_ms, 0);
    ck_assert_int_eq(ctx.seen[1].remaining_ms, INT64_MAX);
    ck_assert(s_log_contains("deadline"));
    /* A deadline already past: nothing left, never negative. */
    ck_assert_int_eq(ctx.seen[2].remaining_ms, 0);
    ck_assert_int_eq(fanout_runtime_remaining_ms(), INT64_MAX);
}
END_TEST

/* A JSON document of exactly `size` bytes: {"data":"..."} with mixed ASCII
 * and two-byte UTF-8. */
static char *s_big_event(size_t size, unsigned seed)
{
    char *s = malloc(size + 1);
    ck_assert_ptr_nonnull(s);
    size_t head = strlen("{\"data\":\""), i = head;
    memcpy(s, "{\"data\":\"", head);
    uint32_t x = seed * 2654435761u + 1;
    while (i < size - 2) {
        x = x * 1103515245u + 12345u;
        unsigned r = (x >> 16) % 64;
        if (r == 0 && i + 2 <= size - 2) {
            s[i++] = (char)0xc3; /* é */
            s[i++] = (char)0xa9;
        } else {
            s[i++] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[r];
        }
    }
    s[size - 2] = '"';
    s[size - 1] = '}';
    s[size] = 0;
    return s;
}

START_TEST(test_large_events_round_trip)
{
    const size_t sizes[] = {(size_t)1 << 20, 6000000};
    char *events[2];
    json_t *list = json_array();
    for (size_t i = 0; i < 2; i++) {
        events[i] = s_big_event(sizes[i], (unsigned)i + 7);
        json_array_append_new(list, json_pack("{s:s}", "event", events[i]));
    }
    s_emu_start(list, NULL);
    struct th_ctx ctx = {0};
    for (size_t i = 0; i < 2; i++) {
        ctx.expect_event[i] = events[i];
        ctx.expect_len[i] = sizes[i];
    }
    ck_assert_int_eq(s_run(&ctx, 2), 0);

    json_t *resp = s_records("response");
    ck_assert_uint_eq(json_array_size(resp), 2);
    for (size_t i = 0; i < 2; i++) {
        ck_assert_uint_eq(ctx.seen[i].event_len, sizes[i]);
        ck_assert_msg(ctx.seen[i].event_matches, "event %zu differs", i);
        json_t *r = json_array_get(resp, i);
        ck_assert_int_eq(s_rec_int(r, "status"), 202);
        ck_assert_int_eq(s_rec_int(r, "bodyLength"), (json_int_t)sizes[i]);
        ck_assert_ptr_null(s_rec_header(r, "expect")); /* no 100-continue stall */
        const char *body = s_rec_str(r, "body");
        ck_assert_msg(body && strcmp(body, events[i]) == 0, "response %zu differs", i);
        free(events[i]);
    }
    json_decref(resp);
}
END_TEST

START_TEST(test_event_too_large)
{
    size_t size = ((size_t)16 << 20) + 1;
    char *big = s_big_event(size, 3);
    s_emu_start(json_pack("[{s:s},o]", "event", big, s_event(json_pack("{s:i}", "ok", 1))),
                NULL);
    free(big);
    struct th_ctx ctx = {0};
    ck_assert_int_eq(s_run(&ctx, 2), 0);
    ck_assert_uint_eq(ctx.calls, 1); /* only the second reached the handler */

    json_t *nexts = s_records("next");
    json_t *errs = s_records("error");
    json_t *resp = s_records("response");
    ck_assert_uint_eq(json_array_size(errs), 1);
    ck_assert_uint_eq(json_array_size(resp), 1);
    json_t *e = json_array_get(errs, 0);
    ck_assert_str_eq(s_rec_str(e, "requestId"),
                     s_rec_str(json_array_get(nexts, 0), "requestId"));
    ck_assert_str_eq(s_rec_header(e, "lambda-runtime-function-error-type"),
                     "Fanout.EventTooLarge");
    ck_assert_str_eq(s_rec_str(json_array_get(resp, 0), "requestId"), ctx.seen[0].id);
    json_decref(nexts);
    json_decref(errs);
    json_decref(resp);
}
END_TEST

START_TEST(test_init_error)
{
    static const char msg[] = "mapping \"orders\": unknown sink type\nsee docs";
    s_emu_start(json_array(), NULL);
    ck_assert_int_eq(fanout_runtime_init_error(s_emu.api, "Fanout.ConfigInvalid", msg), 0);

    json_t *recs = s_records("init_error");
    ck_assert_uint_eq(json_array_size(recs), 1);
    json_t *r = json_array_get(recs, 0);
    ck_assert_str_eq(s_rec_str(r, "path"), "/2018-06-01/runtime/init/error");
    ck_assert_str_eq(s_rec_header(r, "lambda-runtime-function-error-type"),
                     "Fanout.ConfigInvalid");
    json_t *doc = json_loads(s_rec_str(r, "body"), 0, NULL);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "errorMessage")), msg);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "errorType")),
                     "Fanout.ConfigInvalid");
    ck_assert_uint_eq(json_array_size(json_object_get(doc, "stackTrace")), 0);
    json_decref(doc);
    json_decref(recs);

    /* Not host:port: refused before any request. */
    ck_assert_int_eq(fanout_runtime_init_error("127.0.0.1:1/x?y", "T", "m"), -1);
    recs = s_records(NULL);
    ck_assert_uint_eq(json_array_size(recs), 1);
    json_decref(recs);
}
END_TEST

START_TEST(test_init_error_500)
{
    s_emu_start(json_array(), "--fail-posts", NULL);
    ck_assert_int_eq(fanout_runtime_init_error(s_emu.api, "Fanout.ConfigInvalid", "x"), -1);
    json_t *recs = s_records("init_error");
    ck_assert_uint_eq(json_array_size(recs), 1);
    ck_assert_int_eq(s_rec_int(json_array_get(recs, 0), "status"), 500);
    json_decref(recs);
}
END_TEST

START_TEST(test_post_500_fatal)
{
    s_emu_start(json_pack("[o,o]", s_event(json_pack("{}")), s_event(json_pack("{}"))),
                "--fail-posts", NULL);
    struct th_ctx ctx = {0};
    ck_assert_int_eq(s_run(&ctx, 2), -1);
    ck_assert_uint_eq(ctx.calls, 1);
    json_t *nexts = s_records("next");
    json_t *resp = s_records("response");
    ck_assert_uint_eq(json_array_size(nexts), 1);
    ck_assert_uint_eq(json_array_size(resp), 1);
    ck_assert_int_eq(s_rec_int(json_array_get(resp, 0), "status"), 500);
    ck_assert(s_log_contains("500"));
    ck_assert_int_eq(fanout_runtime_remaining_ms(), INT64_MAX);
    json_decref(nexts);
    json_decref(resp);
}
END_TEST

START_TEST(test_error_post_500_fatal)
{
    s_emu_start(json_pack("[o,o]", s_event(json_pack("{}")), s_event(json_pack("{}"))),
                "--fail-posts", NULL);
    struct th_ctx ctx = {.fail_mask = 3};
    ctx.error_type[0] = "Fanout.X";
    ck_assert_int_eq(s_run(&ctx, 2), -1);
    ck_assert_uint_eq(ctx.calls, 1);
    json_t *errs = s_records("error");
    ck_assert_uint_eq(json_array_size(errs), 1);
    json_decref(errs);
}
END_TEST

START_TEST(test_unreachable_api)
{
    /* A port nobody listens on: bind an ephemeral one, then close it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    snprintf(s_emu.api, sizeof s_emu.api, "127.0.0.1:%d", ntohs(sa.sin_port));

    struct th_ctx ctx = {0};
    int64_t t0 = s_mono_ms();
    ck_assert_int_eq(s_run(&ctx, 1), -1);
    ck_assert_int_lt(s_mono_ms() - t0, 5000);
    ck_assert_uint_eq(ctx.calls, 0);
    ck_assert(s_log_contains("unreachable"));

    ck_assert_int_eq(fanout_runtime_init_error(s_emu.api, "T", "m"), -1);

    /* No API configured at all. */
    struct fanout_runtime_options o = {.api = "", .handler = s_handler, .ctx = &ctx};
    ck_assert_int_eq(fanout_runtime_run(&o), -1);
}
END_TEST

/* The API goes away while we wait for the next event. */
START_TEST(test_api_exits)
{
    s_emu_start(json_pack("[o]", s_event(json_pack("{}"))), "--exit-when-empty", NULL);
    struct th_ctx ctx = {0};
    ck_assert_int_eq(s_run(&ctx, 0), -1);
    ck_assert_uint_eq(ctx.calls, 1);
    json_t *resp = s_records("response");
    json_t *ex = s_records("exit");
    ck_assert_uint_eq(json_array_size(resp), 1);
    ck_assert_uint_eq(json_array_size(ex), 1);
    json_decref(resp);
    json_decref(ex);
}
END_TEST

static const struct {
    const char *id; /* NULL: no header at all */
    size_t repeat;  /* > 0: the id is `id` repeated */
} s_bad_ids[] = {
    {"a/b", 0},
    {"../../runtime/init/error", 0},
    {"id with space", 0},
    {"id%2Fresponse", 0},
    {"id?x=1", 0},
    {"id#frag", 0},
    {"caf\xc3\xa9", 0},
    {"", 0},
    {NULL, 0},
    {"a", 200},
};

START_TEST(test_invalid_request_id)
{
    char id[512] = "";
    json_t *item = json_pack("{s:{s:s}}", "event", "marker", "x");
    if (!s_bad_ids[_i].id) {
        json_object_set_new(item, "requestId", json_null());
    } else {
        for (size_t k = 0; k < (s_bad_ids[_i].repeat ? s_bad_ids[_i].repeat : 1); k++)
            strncat(id, s_bad_ids[_i].id, sizeof id - strlen(id) - 1);
        json_object_set_new(item, "requestId", json_string(id));
    }
    s_emu_start(json_pack("[o]", item), NULL);
    struct th_ctx ctx = {0};
    ck_assert_int_eq(s_run(&ctx, 1), -1);
    ck_assert_uint_eq(ctx.calls, 0);

    /* Nothing but the /next: no post at all, so no URL with the id. */
    json_t *all = s_records(NULL);
    ck_assert_uint_eq(json_array_size(all), 1);
    ck_assert_str_eq(s_rec_str(json_array_get(all, 0), "kind"), "next");
    json_decref(all);
    ck_assert(s_log_contains("request id"));
    ck_assert_int_eq(fanout_runtime_remaining_ms(), INT64_MAX);
}
END_TEST

START_TEST(test_response_too_large)
{
    s_emu_start(json_pack("[o,o]", s_event(json_pack("{s:i}", "n", 1)),
                          s_event(json_pack("{s:i}", "n", 2))),
                "--max-response-bytes", "1000", NULL);
    struct th_ctx ctx = {0};
    ctx.big_response[0] = 200000;
    ck_assert_int_eq(s_run(&ctx, 2), 0);
    ck_assert_uint_eq(ctx.calls, 2);

    json_t *resp = s_records("response");
    json_t *errs = s_records("error");
    ck_assert_uint_eq(json_array_size(resp), 2);
    ck_assert_uint_eq(json_array_size(errs), 1);
    json_t *r0 = json_array_get(resp, 0);
    ck_assert_str_eq(s_rec_str(r0, "requestId"), ctx.seen[0].id);
    ck_assert_int_eq(s_rec_int(r0, "status"), 413);
    ck_assert_int_eq(s_rec_int(r0, "bodyLength"), 200000);

    json_t *e = json_array_get(errs, 0);
    ck_assert_str_eq(s_rec_str(e, "requestId"), ctx.seen[0].id);
    ck_assert_int_eq(s_rec_int(e, "status"), 202);
    ck_assert_str_eq(s_rec_header(e, "lambda-runtime-function-error-type"),
                     "Fanout.ResponseTooLarge");
    json_t *doc = json_loads(s_rec_str(e, "body"), 0, NULL);
    ck_assert_ptr_nonnull(doc);
    const char *m = json_string_value(json_object_get(doc, "errorMessage"));
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(strstr(m, "413"));
    json_decref(doc);

    /* ...and the loop went on. */
    json_t *r1 = json_array_get(resp, 1);
    ck_assert_str_eq(s_rec_str(r1, "requestId"), ctx.seen[1].id);
    ck_assert_int_eq(s_rec_int(r1, "status"), 202);
    ck_assert(s_log_contains("413"));
    json_decref(resp);
    json_decref(errs);
}
END_TEST

struct run_thread {
    struct th_ctx ctx;
    unsigned max;
    int rc;
    atomic_int done;
};

static void *s_run_thread(void *arg)
{
    struct run_thread *t = arg;
    t->rc = s_run(&t->ctx, t->max);
    atomic_store(&t->done, 1);
    return NULL;
}

/* With no event queued, /next waits (no timeout) and remaining_ms reads
 * INT64_MAX from another thread; killing the API ends the loop with -1. */
START_TEST(test_next_blocks_until_api_dies)
{
    s_emu_start(json_pack("[o]", s_event(json_pack("{}"))), NULL);
    struct run_thread t = {.max = 2};
    atomic_init(&t.done, 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, s_run_thread, &t), 0);

    /* Wait (bounded) for the second /next to be parked by the emulator. */
    int64_t until = s_mono_ms() + 30000;
    size_t parked = 0;
    while (!parked && s_mono_ms() < until && !atomic_load(&t.done)) {
        json_t *nexts = s_records("next");
        parked = json_array_size(nexts) == 2;
        json_decref(nexts);
        if (!parked)
            usleep(10000);
    }
    ck_assert_msg(parked, "the second /next never arrived");
    usleep(300000); /* long enough for a stray short timeout to show */
    ck_assert_int_eq(atomic_load(&t.done), 0);
    ck_assert_int_eq(fanout_runtime_remaining_ms(), INT64_MAX);

    s_emu_stop();
    until = s_mono_ms() + 10000;
    while (!atomic_load(&t.done) && s_mono_ms() < until)
        usleep(5000);
    ck_assert_msg(atomic_load(&t.done), "the loop did not notice the API going away");
    pthread_join(th, NULL);
    ck_assert_int_eq(t.rc, -1);
    ck_assert_uint_eq(t.ctx.calls, 1);
}
END_TEST

START_TEST(test_payload_not_logged)
{
    fanout_log_set(FANOUT_LOG_INFO, 0);
    s_emu_start(json_pack("[{s:{s:s}},{s:{s:s}}]", "event", "secret", "PAYLOAD-MARKER-42",
                          "event", "secret", "PAYLOAD-MARKER-42"),
                "--max-response-bytes", "10", NULL);
    struct th_ctx ctx = {.fail_mask = 1};
    ctx.error_type[0] = "Fanout.X";
    ctx.error_message[0] = "failed";
    ck_assert_int_eq(s_run(&ctx, 2), 0); /* an error, then a 413 */
    ck_assert(s_log_contains("413"));
    ck_assert(!s_log_contains("PAYLOAD-MARKER-42"));
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("runtime");
    TCase *tc = tcase_create("loop");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_responses_delivered);
    tcase_add_test(tc, test_handler_error_posted);
    tcase_add_test(tc, test_handler_error_sanitised);
    tcase_add_test(tc, test_trace_id_exported);
    tcase_add_test(tc, test_headers_case_insensitive);
    tcase_add_test(tc, test_remaining_ms);
    tcase_add_test(tc, test_large_events_round_trip);
    tcase_add_test(tc, test_event_too_large);
    tcase_add_test(tc, test_init_error);
    tcase_add_test(tc, test_init_error_500);
    tcase_add_test(tc, test_post_500_fatal);
    tcase_add_test(tc, test_error_post_500_fatal);
    tcase_add_test(tc, test_unreachable_api);
    tcase_add_test(tc, test_api_exits);
    tcase_add_loop_test(tc, test_invalid_request_id, 0,
                        (int)(sizeof s_bad_ids / sizeof s_bad_ids[0]));
    tcase_add_test(tc, test_response_too_large);
    tcase_add_test(tc, test_next_blocks_until_api_dies);
    tcase_add_test(tc, test_payload_not_logged);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* No curl_global_init here: the runtime's own init/cleanup pairs must
     * balance on their own (valgrind checks). */
    return fanout_check_run(s_suite());
}
