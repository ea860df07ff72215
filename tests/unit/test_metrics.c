/* The EMF documents of one invocation (core/metrics.c), read back with
 * jansson; the full validation against the specification is in
 * tests/integration/emf.py. */
#include <check.h>

#include "check_main.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"

static struct fanout_target_summary s_targets[2] = {
    {.source_arn = "arn:aws:kinesis:us-east-1:1:stream/s",
     .id = "out",
     .type = "file",
     .destination = "/tmp/o",
     .records = 3,
     .messages = 3,
     .calls = 2,
     .delivered = 2,
     .failed = 1,
     .retried = 4,
     .oldest_arrival_ms = 1700000000000},
    {.source_arn = "arn", .id = "", .type = "sqs", .destination = "q", .records = 1},
};

static json_t *s_docs(const struct fanout_metrics_context *ctx, size_t want)
{
    struct fanout_result res = {.records = 4,
                                .failed_records = 1,
                                .started_ms = 1700000001500,
                                .duration_ms = 12.25,
                                .oldest_arrival_ms = 1700000000000,
                                .target_count = 2,
                                .targets = s_targets};
    struct fanout_sbuf b = {0};
    ck_assert_int_eq(fanout_metrics_emf(&res, ctx, &b), 0);
    ck_assert_ptr_nonnull(b.bytes);
    json_t *all = json_array();
    char *text = strndup((const char *)b.bytes, b.len);
    size_t lines = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save), lines++) {
        json_error_t e;
        json_t *d = json_loads(line, 0, &e);
        ck_assert_msg(d, "%s: %s", e.text, line);
        json_array_append_new(all, d);
    }
    ck_assert_uint_eq(lines, want);
    ck_assert_int_eq(b.bytes[b.len - 1], '\n');
    free(text);
    fanout_sbuf_free(&b);
    return all;
}

START_TEST(documents)
{
    struct fanout_metrics_context ctx = {.ns = "FanOut",
                                         .request_id = "req-1",
                                         .function_name = "fn",
                                         .now_ms = 1700000002000};
    json_t *all = s_docs(&ctx, 3);
    json_t *t = json_array_get(all, 0);
    json_t *aws = json_object_get(t, "_aws");
    ck_assert_int_eq(json_integer_value(json_object_get(aws, "Timestamp")), 1700000002000);
    json_t *dir = json_array_get(json_object_get(aws, "CloudWatchMetrics"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(dir, "Namespace")), "FanOut");
    json_t *dims = json_array_get(json_object_get(dir, "Dimensions"), 0);
    ck_assert_uint_eq(json_array_size(dims), 2);
    ck_assert_str_eq(json_string_value(json_array_get(dims, 0)), "TargetId");
    ck_assert_str_eq(json_string_value(json_object_get(t, "TargetId")), "out");
    ck_assert_str_eq(json_string_value(json_object_get(t, "TargetType")), "file");
    ck_assert_str_eq(json_string_value(json_object_get(t, "requestId")), "req-1");
    static const char *const names[] = {"RecordsIn", "Delivered", "Failed", "Retried",
                                        "Requests"};
    static const long long values[] = {3, 2, 1, 4, 2};
    for (size_t i = 0; i < 5; i++) {
        json_t *v = json_object_get(t, names[i]);
        ck_assert_msg(json_is_integer(v), "%s", names[i]);
        ck_assert_int_eq(json_integer_value(v), values[i]);
    }
    ck_assert_uint_eq(json_array_size(json_object_get(dir, "Metrics")), 7);
    ck_assert(json_real_value(json_object_get(t, "Duration")) == 12.25);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "BatchAge")), 1500);
    /* no arrival time: no BatchAge, neither member nor definition; an empty
     * id is never an empty dimension value */
    t = json_array_get(all, 1);
    ck_assert_ptr_null(json_object_get(t, "BatchAge"));
    dir =
        json_array_get(json_object_get(json_object_get(t, "_aws"), "CloudWatchMetrics"), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(dir, "Metrics")), 6);
    ck_assert_str_eq(json_string_value(json_object_get(t, "TargetId")), "(none)");
    /* the invocation */
    t = json_array_get(all, 2);
    ck_assert_ptr_null(json_object_get(t, "TargetId"));
    ck_assert_str_eq(json_string_value(json_object_get(t, "FunctionName")), "fn");
    ck_assert_int_eq(json_integer_value(json_object_get(t, "Records")), 4);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "FailedRecords")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "Targets")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "BatchAge")), 1500);
    json_decref(all);

    /* outside Lambda: no request id, an empty dimension set */
    struct fanout_metrics_context local = {.ns = "A/b", .now_ms = 1};
    all = s_docs(&local, 3);
    t = json_array_get(all, 2);
    ck_assert_ptr_null(json_object_get(t, "requestId"));
    dir =
        json_array_get(json_object_get(json_object_get(t, "_aws"), "CloudWatchMetrics"), 0);
    dims = json_object_get(dir, "Dimensions");
    ck_assert_uint_eq(json_array_size(dims), 1);
    ck_assert_uint_eq(json_array_size(json_array_get(dims, 0)), 0);
    json_decref(all);
}
END_TEST

/* OnFailure: present (and defined) only when a record went there. */
START_TEST(on_failure_metric)
{
    struct fanout_metrics_context ctx = {.ns = "FanOut", .now_ms = 1};
    json_t *all = s_docs(&ctx, 3);
    ck_assert_ptr_null(json_object_get(json_array_get(all, 0), "OnFailure"));
    json_decref(all);
    s_targets[0].on_failure = 2;
    all = s_docs(&ctx, 3);
    s_targets[0].on_failure = 0;
    json_t *t = json_array_get(all, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "OnFailure")), 2);
    json_t *dir =
        json_array_get(json_object_get(json_object_get(t, "_aws"), "CloudWatchMetrics"), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(dir, "Metrics")), 8);
    json_decref(all);
}
END_TEST

/* Filtered: present only when the target's filter dropped records, next
 * to OnFailure when both are. */
START_TEST(filtered_metric)
{
    struct fanout_metrics_context ctx = {.ns = "FanOut", .now_ms = 1};
    json_t *all = s_docs(&ctx, 3);
    for (size_t i = 0; i < 2; i++)
        ck_assert_ptr_null(json_object_get(json_array_get(all, i), "Filtered"));
    json_decref(all);
    s_targets[1].filtered = 5;
    s_targets[1].on_failure = 1;
    all = s_docs(&ctx, 3);
    s_targets[1].filtered = 0;
    s_targets[1].on_failure = 0;
    ck_assert_ptr_null(json_object_get(json_array_get(all, 0), "Filtered"));
    json_t *t = json_array_get(all, 1);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "Filtered")), 5);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "OnFailure")), 1);
    json_t *metrics = json_object_get(
        json_array_get(json_object_get(json_object_get(t, "_aws"), "CloudWatchMetrics"), 0),
        "Metrics");
    int defined = 0;
    for (size_t i = 0; i < json_array_size(metrics); i++) {
        json_t *d = json_array_get(metrics, i);
        if (!strcmp(json_string_value(json_object_get(d, "Name")), "Filtered")) {
            ck_assert_str_eq(json_string_value(json_object_get(d, "Unit")), "Count");
            defined++;
        }
    }
    ck_assert_int_eq(defined, 1);
    json_decref(all);
}
END_TEST

START_TEST(settings)
{
    ck_assert(fanout_metrics_namespace_valid("FanOut"));
    ck_assert(fanout_metrics_namespace_valid("My App/fan-out_1.#:x"));
    ck_assert(!fanout_metrics_namespace_valid(""));
    ck_assert(!fanout_metrics_namespace_valid("AWS/Lambda"));
    ck_assert(!fanout_metrics_namespace_valid("caf\xc3\xa9"));
    ck_assert(!fanout_metrics_namespace_valid("a\"b"));
    char big[300];
    memset(big, 'n', sizeof big - 1);
    big[sizeof big - 1] = 0;
    ck_assert(!fanout_metrics_namespace_valid(big));
    big[255] = 0;
    ck_assert(fanout_metrics_namespace_valid(big));

    struct fanout_metrics_config c;
    char err[256];
    unsetenv("FANOUT_METRICS");
    unsetenv("FANOUT_METRICS_NAMESPACE");
    ck_assert_int_eq(fanout_metrics_config_from_env(&c, 1, err, sizeof err), 0);
    ck_assert(c.enabled);
    ck_assert_str_eq(c.ns, "FanOut");
    ck_assert_int_eq(fanout_metrics_config_from_env(&c, 0, err, sizeof err), 0);
    ck_assert(!c.enabled);
    setenv("FANOUT_METRICS", "OFF", 1);
    ck_assert_int_eq(fanout_metrics_config_from_env(&c, 1, err, sizeof err), 0);
    ck_assert(!c.enabled);
    setenv("FANOUT_METRICS", "emf", 1);
    setenv("FANOUT_METRICS_NAMESPACE", "Team/FanOut", 1);
    ck_assert_int_eq(fanout_metrics_config_from_env(&c, 0, err, sizeof err), 0);
    ck_assert(c.enabled);
    ck_assert_str_eq(c.ns, "Team/FanOut");
    setenv("FANOUT_METRICS", "sometimes", 1);
    ck_assert_int_eq(fanout_metrics_config_from_env(&c, 0, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "FANOUT_METRICS"));
    setenv("FANOUT_METRICS", "on", 1);
    setenv("FANOUT_METRICS_NAMESPACE", "AWS/X", 1);
    ck_assert_int_eq(fanout_metrics_config_from_env(&c, 0, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "FANOUT_METRICS_NAMESPACE"));
    unsetenv("FANOUT_METRICS");
    unsetenv("FANOUT_METRICS_NAMESPACE");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, documents);
    tcase_add_test(tc, settings);
    tcase_add_test(tc, on_failure_metric);
    tcase_add_test(tc, filtered_metric);
    suite_add_tcase(s, tc);
    return fanout_check_run(s);
}
