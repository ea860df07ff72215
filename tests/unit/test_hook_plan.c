/* hook, unhook, pause, resume without the network (engine/cli/cli_hook_plan.c):
 * their flags, the stream ARNs, the consistency rule for batch item failures
 * and the order of its steps, the mapping requests' bodies. */
#include <check.h>

#include "check_main.h"
#include <stdarg.h>
#include <string.h>

#include "cli/cli_cmd.h"
#include "cli/cli_hook_plan.h"

#define KIN  "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
#define KIN2 "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"
#define DDB                                                                                \
    "arn:aws:dynamodb:us-east-1:123456789012:table/users/stream/2024-01-01T00:00:00.000"
#define FN "arn:aws:lambda:us-east-1:123456789012:function:fan"

/* Parse a NULL-terminated list of arguments after the command. */
static int s_parse(enum cli_hook_cmd cmd, struct cli_hook_args *a, char *err, size_t n, ...)
{
    char *argv[32] = {"cmd"};
    int argc = 1;
    va_list ap;
    va_start(ap, n);
    for (char *s; (s = va_arg(ap, char *)) != NULL && argc < 31;)
        argv[argc++] = s;
    va_end(ap);
    return cli_hook_parse(cmd, argc, argv, a, err, n);
}

/* The parse fails with a message containing `want`. */
#define REFUSED(cmd, want, ...)                                                            \
    do {                                                                                   \
        struct cli_hook_args a_;                                                           \
        char e_[512];                                                                      \
        ck_assert_int_eq(s_parse(cmd, &a_, e_, sizeof e_, __VA_ARGS__, NULL), -1);         \
        ck_assert_msg(strstr(e_, want) != NULL, "\"%s\" lacks \"%s\"", e_, want);          \
    } while (0)

START_TEST(hook_flags_parsed)
{
    struct cli_hook_args a;
    char err[512];
    ck_assert_int_eq(s_parse(CLI_HOOK_HOOK, &a, err, sizeof err, "--function", "fan",
                             "--source-type", "kinesis", "--source", "orders",
                             "--batch-size=500", "--starting-position", "TRIM_HORIZON",
                             "--parallelization-factor", "10", "--maximum-retry-attempts",
                             "-1", "--bisect-on-error", "--report-batch-item-failures",
                             "--table", "fanTargets", "--region", "eu-west-1", "--debug",
                             NULL),
                     0);
    ck_assert_str_eq(a.function, "fan");
    ck_assert_str_eq(a.source, "orders");
    ck_assert_str_eq(a.source_type, "kinesis");
    ck_assert_int_eq(a.batch_size, 500);
    ck_assert_str_eq(a.starting_position, "TRIM_HORIZON");
    ck_assert_int_eq(a.parallelization_factor, 10);
    ck_assert_int_eq(a.maximum_retry_attempts, -1);
    ck_assert_int_eq(a.bisect, 1);
    ck_assert_int_eq(a.report, 1);
    ck_assert_int_eq(a.debug, 1);
    ck_assert_int_eq(a.no_verify_ssl, 0);
    ck_assert_str_eq(a.table, "fanTargets");
    ck_assert_str_eq(a.region, "eu-west-1");
}
END_TEST

START_TEST(defaults_and_help)
{
    struct cli_hook_args a;
    char err[512];
    ck_assert_int_eq(
        s_parse(CLI_HOOK_PAUSE, &a, err, sizeof err, "--source-arn", DDB, NULL), 0);
    ck_assert_ptr_null(a.function);
    ck_assert_int_eq(a.batch_size, CLI_HOOK_UNSET);
    ck_assert_int_eq(a.maximum_retry_attempts, CLI_HOOK_UNSET);
    ck_assert_int_eq(a.bisect, -1);
    ck_assert_int_eq(a.report, -1);
    /* help wins over any other problem on the line */
    ck_assert_int_eq(
        s_parse(CLI_HOOK_UNHOOK, &a, err, sizeof err, "--bogus", "--help", NULL), 1);
    ck_assert_int_eq(s_parse(CLI_HOOK_HOOK, &a, err, sizeof err, "-h", NULL), 1);
}
END_TEST

START_TEST(ranges)
{
    REFUSED(CLI_HOOK_HOOK, "--batch-size expects a whole number from 1 to 10000, got \"0\"",
            "--source-arn", KIN, "--batch-size", "0");
    REFUSED(CLI_HOOK_HOOK, "from 1 to 10000, got \"10001\"", "--source-arn", KIN,
            "--batch-size", "10001");
    REFUSED(CLI_HOOK_HOOK, "got \"12x\"", "--source-arn", KIN, "--batch-size", "12x");
    REFUSED(CLI_HOOK_HOOK, "--parallelization-factor expects a whole number from 1 to 10",
            "--source-arn", KIN, "--parallelization-factor", "11");
    REFUSED(CLI_HOOK_HOOK,
            "--maximum-retry-attempts expects a whole number from -1 to 10000",
            "--source-arn", KIN, "--maximum-retry-attempts", "-2");
    REFUSED(CLI_HOOK_HOOK, "--starting-position expects LATEST or TRIM_HORIZON, got \"AT\"",
            "--source-arn", KIN, "--starting-position", "AT");
    struct cli_hook_args a;
    char err[512];
    ck_assert_int_eq(s_parse(CLI_HOOK_HOOK, &a, err, sizeof err, "--source-arn", KIN,
                             "--batch-size", "10000", "--maximum-retry-attempts", "10000",
                             "--parallelization-factor", "1", NULL),
                     0);
    ck_assert_int_eq(a.batch_size, 10000);
}
END_TEST

START_TEST(flag_misuse)
{
    REFUSED(CLI_HOOK_UNHOOK, "--batch-size is an option of hook, not of unhook",
            "--source-arn", KIN, "--batch-size", "5");
    REFUSED(CLI_HOOK_RESUME,
            "--report-batch-item-failures is an option of hook, not of resume",
            "--source-arn", KIN, "--report-batch-item-failures");
    REFUSED(CLI_HOOK_HOOK, "unknown option --bogus", "--source-arn", KIN, "--bogus");
    REFUSED(CLI_HOOK_HOOK, "unknown option --batch", "--source-arn", KIN, "--batch", "5");
    REFUSED(CLI_HOOK_HOOK, "unexpected argument \"extra\"", "--source-arn", KIN, "extra");
    REFUSED(CLI_HOOK_HOOK, "--source needs a value, got the option --batch-size",
            "--source-type", "kinesis", "--source", "--batch-size", "5");
    REFUSED(CLI_HOOK_HOOK, "--region needs a value", "--source-arn", KIN, "--region");
    REFUSED(CLI_HOOK_HOOK, "--function is given twice", "--source-arn", KIN, "--function",
            "a", "--function", "b");
    REFUSED(CLI_HOOK_HOOK, "--batch-size is given twice", "--source-arn", KIN,
            "--batch-size", "1", "--batch-size", "2");
    REFUSED(CLI_HOOK_HOOK, "--debug takes no value", "--source-arn", KIN, "--debug=1");
    REFUSED(CLI_HOOK_HOOK, "--debug is given twice", "--source-arn", KIN, "--debug",
            "--debug");
    REFUSED(
        CLI_HOOK_HOOK,
        "give --report-batch-item-failures or --no-report-batch-item-failures, not both",
        "--source-arn", KIN, "--no-report-batch-item-failures",
        "--report-batch-item-failures");
    REFUSED(CLI_HOOK_HOOK, "give --bisect-on-error or --no-bisect-on-error, not both",
            "--source-arn", KIN, "--bisect-on-error", "--no-bisect-on-error");
    REFUSED(CLI_HOOK_HOOK, "--region must not be empty", "--source-arn", KIN, "--region=");
    REFUSED(CLI_HOOK_HOOK,
            "--endpoint-url expects http(s)://host[:port], got \"localhost\"",
            "--source-arn", KIN, "--endpoint-url", "localhost");
    struct cli_hook_args a;
    char err[512];
    ck_assert_int_eq(s_parse(CLI_HOOK_HOOK, &a, err, sizeof err, "--source-arn", KIN,
                             "--no-report-batch-item-failures", "--no-bisect-on-error",
                             NULL),
                     0);
    ck_assert_int_eq(a.report, 0);
    ck_assert_int_eq(a.bisect, 0);
}
END_TEST

START_TEST(source_rules)
{
    REFUSED(CLI_HOOK_HOOK, "the source is required", "--function", "fan");
    REFUSED(CLI_HOOK_HOOK, "--source orders needs --source-type kinesis|dynamodb",
            "--source", "orders");
    REFUSED(CLI_HOOK_PAUSE, "--source-type expects kinesis or dynamodb, got \"sqs\"",
            "--source-type", "sqs", "--source", "q");
    REFUSED(CLI_HOOK_HOOK, "give the source once", "--source-type", "kinesis", "--source",
            "orders", "--source-arn", KIN);
    REFUSED(CLI_HOOK_HOOK,
            "--source-arn " KIN " is a kinesis stream, but --source-type says "
            "dynamodb",
            "--source-type", "dynamodb", "--source-arn", KIN);
    REFUSED(CLI_HOOK_HOOK, "is not a stream ARN", "--source-arn",
            "arn:aws:sqs:us-east-1:123456789012:q");
    REFUSED(CLI_HOOK_HOOK, "is not a stream ARN", "--source-arn",
            "arn:aws:dynamodb:us-east-1:123456789012:table/users");
    struct cli_hook_args a;
    char err[512];
    /* the type may come with the ARN, when it agrees */
    ck_assert_int_eq(s_parse(CLI_HOOK_HOOK, &a, err, sizeof err, "--source-type",
                             "dynamodb", "--source-arn", DDB, NULL),
                     0);
}
END_TEST

START_TEST(stream_arns)
{
    char err[512];
    ck_assert_str_eq(cli_hook_source_type(KIN, err, sizeof err), "kinesis");
    ck_assert_str_eq(cli_hook_source_type(DDB, err, sizeof err), "dynamodb");
    ck_assert_str_eq(
        cli_hook_source_type("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/a.b_c-d",
                             err, sizeof err),
        "kinesis");
    static const char *const bad[] = {
        "orders",
        "arn:aws:kinesis:us-east-1:123456789012:stream/",
        "arn:aws:kinesis:us-east-1:123456789012:stream/a/b",
        "arn:aws:kinesis:us-east-1::stream/orders",
        "arn:aws:kinesis::123456789012:stream/orders",
        "arn:aws:kinesis:us-east-1:123456789012:table/orders",
        "arn:aws:kinesisx:us-east-1:123456789012:stream/orders",
        "arn:aws:dynamodb:us-east-1:123456789012:table/users/stream/",
        "arn:aws:dynamodb:us-east-1:123456789012:table//stream/L",
        "arn:aws:dynamodb:us-east-1:123456789012:table/users/index/i",
        "arn:aws:dynamodb:us-east-1:123456789012:table/users/stream/L/x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        ck_assert_msg(cli_hook_source_type(bad[i], err, sizeof err) == NULL, "%s", bad[i]);
        ck_assert_ptr_nonnull(strstr(err, bad[i]));
    }
}
END_TEST

START_TEST(function_names)
{
    struct cli_hook_args a;
    char err[512], id[256], name[128], region[64];
    ck_assert_int_eq(s_parse(CLI_HOOK_HOOK, &a, err, sizeof err, "--source-arn", KIN, NULL),
                     0);
    cli_hook_function(&a, id, sizeof id, name, sizeof name, region, sizeof region);
    ck_assert_str_eq(id, "fanout");
    ck_assert_str_eq(name, "fanout");
    ck_assert_str_eq(region, "");
    ck_assert_int_eq(s_parse(CLI_HOOK_HOOK, &a, err, sizeof err, "--source-arn", KIN,
                             "--function-arn", FN ":live", NULL),
                     0);
    cli_hook_function(&a, id, sizeof id, name, sizeof name, region, sizeof region);
    ck_assert_str_eq(id, FN ":live");
    ck_assert_str_eq(name, "fan");
    ck_assert_str_eq(region, "us-east-1");
    REFUSED(CLI_HOOK_HOOK, "give the function once", "--source-arn", KIN, "--function", "f",
            "--function-arn", FN);
    REFUSED(CLI_HOOK_HOOK, "is not a Lambda function ARN", "--source-arn", KIN,
            "--function-arn", "arn:aws:lambda:us-east-1:123456789012:layer:x");
    REFUSED(CLI_HOOK_HOOK, "is not a Lambda function ARN", "--source-arn", KIN,
            "--function-arn", FN ":");
    REFUSED(CLI_HOOK_HOOK,
            "--function \"" FN "\" is not a function name (an ARN goes to "
            "--function-arn)",
            "--source-arn", KIN, "--function", FN);
}
END_TEST

/* ---- the consistency rule ---- */

START_TEST(new_mapping_alone)
{
    struct cli_hook_plan p;
    /* on: the mapping first, then the function */
    cli_hook_plan(NULL, 0, KIN, 1, NULL, &p);
    ck_assert_int_eq(p.report, 1);
    ck_assert_str_eq(p.env_value, "true");
    ck_assert_uint_eq(p.step_count, 2);
    ck_assert_int_eq(p.steps[0], CLI_HOOK_STEP_MAPPING);
    ck_assert_int_eq(p.steps[1], CLI_HOOK_STEP_ENV);
    /* not asked: off, and the variable made explicit first */
    cli_hook_plan(NULL, 0, KIN, -1, NULL, &p);
    ck_assert_int_eq(p.report, 0);
    ck_assert_str_eq(p.env_value, "false");
    ck_assert_uint_eq(p.step_count, 2);
    ck_assert_int_eq(p.steps[0], CLI_HOOK_STEP_ENV);
    ck_assert_int_eq(p.steps[1], CLI_HOOK_STEP_MAPPING);
    /* the variable already right: the mapping only */
    cli_hook_plan(NULL, 0, KIN, 0, "false", &p);
    ck_assert_uint_eq(p.step_count, 1);
    ck_assert_int_eq(p.steps[0], CLI_HOOK_STEP_MAPPING);
    cli_hook_plan(NULL, 0, KIN, 1, "true", &p);
    ck_assert_uint_eq(p.step_count, 1);
    ck_assert_int_eq(p.steps[0], CLI_HOOK_STEP_MAPPING);
    /* only "true" and "false" are the hook's values */
    cli_hook_plan(NULL, 0, KIN, 1, "TRUE", &p);
    ck_assert_uint_eq(p.step_count, 2);
}
END_TEST

START_TEST(existing_mapping_keeps_its_setting)
{
    struct cli_hook_esm all[] = {{"u-1", KIN, 1}};
    struct cli_hook_plan p;
    cli_hook_plan(all, 1, KIN, -1, "true", &p);
    ck_assert_int_eq(p.report, 1);
    ck_assert_uint_eq(p.step_count, 1);
    /* turned off: the function first, then the mapping */
    cli_hook_plan(all, 1, KIN, 0, "true", &p);
    ck_assert_int_eq(p.report, 0);
    ck_assert_uint_eq(p.step_count, 2);
    ck_assert_int_eq(p.steps[0], CLI_HOOK_STEP_ENV);
    ck_assert_int_eq(p.steps[1], CLI_HOOK_STEP_MAPPING);
    ck_assert_str_eq(p.env_value, "false");
}
END_TEST

START_TEST(mappings_may_differ)
{
    struct cli_hook_esm all[] = {{"u-1", KIN, 0}, {"u-2", KIN2, 1}, {"u-3", DDB, 1}};
    struct cli_hook_plan p;
    /* a new source without the flag, where the others report: the
     * function stops answering batchItemFailures first */
    cli_hook_plan(all + 1, 2, KIN, -1, "true", &p);
    ck_assert_int_eq(p.report, 0);
    ck_assert_str_eq(p.env_value, "false");
    ck_assert_uint_eq(p.step_count, 2);
    ck_assert_int_eq(p.steps[0], CLI_HOOK_STEP_ENV);
    ck_assert_int_eq(p.steps[1], CLI_HOOK_STEP_MAPPING);
    /* with it: all report, the variable already says so */
    cli_hook_plan(all + 1, 2, KIN, 1, "true", &p);
    ck_assert_uint_eq(p.step_count, 1);
    ck_assert_int_eq(p.steps[0], CLI_HOOK_STEP_MAPPING);
    /* turning off one of two that report: the function first */
    cli_hook_plan(all + 1, 2, DDB, 0, "true", &p);
    ck_assert_str_eq(p.env_value, "false");
    ck_assert_int_eq(p.steps[0], CLI_HOOK_STEP_ENV);
    ck_assert_int_eq(p.steps[1], CLI_HOOK_STEP_MAPPING);
    /* the last one that did not report turns it on: the function last */
    cli_hook_plan(all, 3, KIN, 1, "false", &p);
    ck_assert_str_eq(p.env_value, "true");
    ck_assert_uint_eq(p.step_count, 2);
    ck_assert_int_eq(p.steps[0], CLI_HOOK_STEP_MAPPING);
    ck_assert_int_eq(p.steps[1], CLI_HOOK_STEP_ENV);
    /* another still does not report: turning this one on keeps "false" */
    struct cli_hook_esm two[] = {{"u-1", KIN, 0}, {"u-2", KIN2, 0}};
    cli_hook_plan(two, 2, KIN, 1, "false", &p);
    ck_assert_str_eq(p.env_value, "false");
    ck_assert_uint_eq(p.step_count, 1);
    ck_assert_int_eq(p.steps[0], CLI_HOOK_STEP_MAPPING);
}
END_TEST

START_TEST(unhook_env)
{
    struct cli_hook_esm all[] = {{"u-1", KIN, 0}, {"u-2", KIN2, 1}, {"u-3", DDB, 1}};
    /* the one that did not report goes: the others all do */
    ck_assert_str_eq(cli_hook_env_after_unhook(all, 3, KIN, "false"), "true");
    ck_assert_ptr_null(cli_hook_env_after_unhook(all, 3, KIN, "true"));
    /* one that does not report stays */
    ck_assert_ptr_null(cli_hook_env_after_unhook(all, 3, DDB, "false"));
    /* none left: nothing to change */
    ck_assert_ptr_null(cli_hook_env_after_unhook(all + 1, 1, KIN2, "false"));
    ck_assert_ptr_null(cli_hook_env_after_unhook(NULL, 0, KIN, NULL));
}
END_TEST

/* ---- request bodies ---- */

static json_t *s_json(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    ck_assert_msg(j != NULL, "%s", je.text);
    return j;
}

static void s_assert_json(const json_t *got, const char *want)
{
    json_t *w = s_json(want);
    char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
    ck_assert_msg(json_equal((json_t *)got, w), "got %s, want %s", g, want);
    free(g);
    json_decref(w);
}

START_TEST(create_body)
{
    struct cli_hook_args a;
    char err[512];
    ck_assert_int_eq(s_parse(CLI_HOOK_HOOK, &a, err, sizeof err, "--source-arn", KIN, NULL),
                     0);
    json_t *b = cli_hook_create_body(&a, "fan", KIN, 0);
    s_assert_json(b, "{\"FunctionName\":\"fan\",\"EventSourceArn\":\"" KIN
                     "\",\"StartingPosition\":\"LATEST\",\"Enabled\":true}");
    json_decref(b);
    ck_assert_int_eq(s_parse(CLI_HOOK_HOOK, &a, err, sizeof err, "--source-arn", KIN,
                             "--batch-size", "7", "--parallelization-factor", "2",
                             "--maximum-retry-attempts", "0", "--bisect-on-error",
                             "--starting-position", "TRIM_HORIZON",
                             "--report-batch-item-failures", NULL),
                     0);
    b = cli_hook_create_body(&a, FN, KIN, 1);
    s_assert_json(b,
                  "{\"FunctionName\":\"" FN "\",\"EventSourceArn\":\"" KIN
                  "\",\"StartingPosition\":\"TRIM_HORIZON\",\"Enabled\":true,"
                  "\"BatchSize\":7,\"ParallelizationFactor\":2,\"MaximumRetryAttempts\":0,"
                  "\"BisectBatchOnFunctionError\":true,"
                  "\"FunctionResponseTypes\":[\"ReportBatchItemFailures\"]}");
    json_decref(b);
}
END_TEST

START_TEST(update_body)
{
    json_t *esm = s_json("{\"UUID\":\"u-1\",\"BatchSize\":100,\"MaximumRetryAttempts\":-1,"
                         "\"ParallelizationFactor\":1,\"BisectBatchOnFunctionError\":false,"
                         "\"StartingPosition\":\"LATEST\","
                         "\"FunctionResponseTypes\":[\"ReportBatchItemFailures\"]}");
    ck_assert_int_eq(cli_hook_esm_reports(esm), 1);
    struct cli_hook_args a;
    char err[512];
    int ignored = -1;
    /* nothing given, nothing changed */
    ck_assert_int_eq(s_parse(CLI_HOOK_HOOK, &a, err, sizeof err, "--source-arn", KIN, NULL),
                     0);
    json_t *b = cli_hook_update_body(&a, esm, 1, &ignored);
    s_assert_json(b, "{}");
    ck_assert_int_eq(ignored, 0);
    json_decref(b);
    /* the same values again: nothing either; the same starting position */
    ck_assert_int_eq(s_parse(CLI_HOOK_HOOK, &a, err, sizeof err, "--source-arn", KIN,
                             "--batch-size", "100", "--no-bisect-on-error",
                             "--starting-position", "LATEST", NULL),
                     0);
    b = cli_hook_update_body(&a, esm, 1, &ignored);
    s_assert_json(b, "{}");
    ck_assert_int_eq(ignored, 0);
    json_decref(b);
    /* changes, reports off (an empty list clears them), another start */
    ck_assert_int_eq(s_parse(CLI_HOOK_HOOK, &a, err, sizeof err, "--source-arn", KIN,
                             "--batch-size", "50", "--bisect-on-error",
                             "--maximum-retry-attempts", "3", "--starting-position",
                             "TRIM_HORIZON", NULL),
                     0);
    b = cli_hook_update_body(&a, esm, 0, &ignored);
    s_assert_json(b, "{\"BatchSize\":50,\"MaximumRetryAttempts\":3,"
                     "\"BisectBatchOnFunctionError\":true,\"FunctionResponseTypes\":[]}");
    ck_assert_int_eq(ignored, 1);
    json_decref(b);
    json_decref(esm);
    /* a mapping without the optional fields: an absent switch is Lambda's
     * default, off */
    esm = s_json("{\"UUID\":\"u-2\"}");
    ck_assert_int_eq(cli_hook_esm_reports(esm), 0);
    ck_assert_int_eq(s_parse(CLI_HOOK_HOOK, &a, err, sizeof err, "--source-arn", KIN,
                             "--no-bisect-on-error", "--report-batch-item-failures", NULL),
                     0);
    b = cli_hook_update_body(&a, esm, 1, &ignored);
    s_assert_json(b, "{\"FunctionResponseTypes\":[\"ReportBatchItemFailures\"]}");
    json_decref(b);
    ck_assert_int_eq(s_parse(CLI_HOOK_HOOK, &a, err, sizeof err, "--source-arn", KIN,
                             "--bisect-on-error", "--batch-size", "9", NULL),
                     0);
    b = cli_hook_update_body(&a, esm, 0, &ignored);
    s_assert_json(b, "{\"BisectBatchOnFunctionError\":true,\"BatchSize\":9}");
    json_decref(b);
    json_decref(esm);
}
END_TEST

/* ---- the flag table against the help texts (cli.c) ---------------------------- */

#define S_MAX_HELP_FLAGS 64

/* The flags a help text names, without "--" (--help left out): "--x",
 * "--x=", and "--[no-]x" as both x and no-x. Returns their count. */
static size_t s_help_flags(const char *text, char names[][64], size_t max)
{
    static const char name_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789-";
    size_t n = 0;
    for (const char *p = strstr(text, "--"); p; p = strstr(p, "--")) {
        p += 2;
        int both = strncmp(p, "[no-]", 5) == 0;
        if (both)
            p += 5;
        size_t len = strspn(p, name_chars);
        ck_assert_msg(len > 0 && len < 60, "a flag of unexpected shape in the help: %.20s",
                      p - 2);
        if (len == 4 && !strncmp(p, "help", 4))
            continue;
        for (int k = 0; k <= both; k++) {
            ck_assert_uint_lt(n, max);
            snprintf(names[n++], 64, "%s%.*s", k ? "no-" : "", (int)len, p);
        }
        p += len;
    }
    return n;
}

START_TEST(flag_table_matches_help)
{
    static const struct {
        const char *name;
        enum cli_hook_cmd cmd;
    } cmds[] = {{"hook", CLI_HOOK_HOOK},
                {"unhook", CLI_HOOK_UNHOOK},
                {"pause", CLI_HOOK_PAUSE},
                {"resume", CLI_HOOK_RESUME}};
    for (size_t c = 0; c < sizeof cmds / sizeof *cmds; c++) {
        const struct cli_command *cmd = cli_command_find(cmds[c].name);
        ck_assert_msg(cmd && cmd->usage, "no help text for %s in cli.c", cmds[c].name);
        char names[S_MAX_HELP_FLAGS][64];
        size_t n = s_help_flags(cmd->usage, names, S_MAX_HELP_FLAGS);
        /* every flag the command takes is in its help */
        int hook_only;
        size_t taken = 0;
        for (size_t i = 0; cli_hook_flag(i, &hook_only); i++) {
            const char *flag = cli_hook_flag(i, &hook_only);
            if (hook_only && cmds[c].cmd != CLI_HOOK_HOOK)
                continue;
            taken++;
            int found = 0;
            for (size_t j = 0; j < n && !found; j++)
                found = !strcmp(names[j], flag);
            ck_assert_msg(found, "fanout %s takes --%s, but its help does not name it",
                          cmds[c].name, flag);
        }
        ck_assert_uint_gt(taken, 10);
        /* every flag its help names is one the command takes */
        for (size_t j = 0; j < n; j++) {
            int found = 0;
            for (size_t i = 0; !found && cli_hook_flag(i, &hook_only); i++)
                found = !strcmp(cli_hook_flag(i, &hook_only), names[j]) &&
                        (!hook_only || cmds[c].cmd == CLI_HOOK_HOOK);
            ck_assert_msg(found, "the help of fanout %s names --%s, which it does not take",
                          cmds[c].name, names[j]);
        }
    }
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("hook_plan");
    TCase *tc = tcase_create("flags");
    tcase_add_test(tc, hook_flags_parsed);
    tcase_add_test(tc, defaults_and_help);
    tcase_add_test(tc, ranges);
    tcase_add_test(tc, flag_misuse);
    tcase_add_test(tc, source_rules);
    tcase_add_test(tc, stream_arns);
    tcase_add_test(tc, function_names);
    tcase_add_test(tc, flag_table_matches_help);
    suite_add_tcase(s, tc);
    tc = tcase_create("plan");
    tcase_add_test(tc, new_mapping_alone);
    tcase_add_test(tc, existing_mapping_keeps_its_setting);
    tcase_add_test(tc, mappings_may_differ);
    tcase_add_test(tc, unhook_env);
    tcase_add_test(tc, create_body);
    tcase_add_test(tc, update_body);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fanout_check_run(s_suite());
}
