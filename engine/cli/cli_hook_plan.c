/* hook, unhook, pause, resume: the decisions that need no AWS call (see
 * cli_hook_plan.h). Flags by exact name only, as in cli.c: a prefix that a
 * later flag makes ambiguous would break a script. */
#include "cli/cli_hook_plan.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

enum h_kind {
    H_TEXT, /* --flag VALUE or --flag=VALUE */
    H_NUM,  /* a number in [min, max] */
    H_ON,   /* a switch: the int becomes 1 */
    H_OFF,  /* the --no- of a switch pair: the int becomes 0 */
};

struct h_flag {
    const char *name; /* without "--" */
    enum h_kind kind;
    size_t offset; /* in struct cli_hook_args */
    int hook_only;
    long min, max;
};

#define H_ARG(m) offsetof(struct cli_hook_args, m)

static const struct h_flag h_flags[] = {
    {"function", H_TEXT, H_ARG(function), 0, 0, 0},
    {"function-arn", H_TEXT, H_ARG(function_arn), 0, 0, 0},
    {"source-type", H_TEXT, H_ARG(source_type), 0, 0, 0},
    {"source", H_TEXT, H_ARG(source), 0, 0, 0},
    {"source-arn", H_TEXT, H_ARG(source_arn), 0, 0, 0},
    {"table", H_TEXT, H_ARG(table), 0, 0, 0},
    {"table-arn", H_TEXT, H_ARG(table_arn), 0, 0, 0},
    {"region", H_TEXT, H_ARG(region), 0, 0, 0},
    {"profile", H_TEXT, H_ARG(profile), 0, 0, 0},
    {"endpoint-url", H_TEXT, H_ARG(endpoint_url), 0, 0, 0},
    {"debug", H_ON, H_ARG(debug), 0, 0, 0},
    {"no-verify-ssl", H_ON, H_ARG(no_verify_ssl), 0, 0, 0},
    {"batch-size", H_NUM, H_ARG(batch_size), 1, CLI_HOOK_BATCH_MIN, CLI_HOOK_BATCH_MAX},
    {"starting-position", H_TEXT, H_ARG(starting_position), 1, 0, 0},
    {"parallelization-factor", H_NUM, H_ARG(parallelization_factor), 1,
     CLI_HOOK_PARALLEL_MIN, CLI_HOOK_PARALLEL_MAX},
    {"maximum-retry-attempts", H_NUM, H_ARG(maximum_retry_attempts), 1,
     CLI_HOOK_RETRIES_MIN, CLI_HOOK_RETRIES_MAX},
    {"bisect-on-error", H_ON, H_ARG(bisect), 1, 0, 0},
    {"no-bisect-on-error", H_OFF, H_ARG(bisect), 1, 0, 0},
    {"report-batch-item-failures", H_ON, H_ARG(report), 1, 0, 0},
    {"no-report-batch-item-failures", H_OFF, H_ARG(report), 1, 0, 0},
};

#define H_FLAG_COUNT (sizeof h_flags / sizeof *h_flags)

static const char *const h_names[] = {"hook", "unhook", "pause", "resume"};

const char *cli_hook_flag(size_t i, int *hook_only)
{
    if (i >= H_FLAG_COUNT)
        return NULL;
    *hook_only = h_flags[i].hook_only;
    return h_flags[i].name;
}

static int h_err(char *err, size_t err_len, const char *fmt, ...) FANOUT_FMT(3, 4);
static int h_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return -1;
}

static const struct h_flag *h_find(const char *name, size_t len)
{
    for (size_t i = 0; i < H_FLAG_COUNT; i++)
        if (strlen(h_flags[i].name) == len && strncmp(h_flags[i].name, name, len) == 0)
            return &h_flags[i];
    return NULL;
}

/* One flag's value into its slot. */
static int h_set(const struct h_flag *f, const char *value, struct cli_hook_args *a,
                 char *err, size_t err_len)
{
    void *slot = (char *)a + f->offset;
    if (f->kind == H_TEXT) {
        const char **s = slot;
        if (*s)
            return h_err(err, err_len, "--%s is given twice", f->name);
        if (!*value)
            return h_err(err, err_len, "--%s must not be empty", f->name);
        *s = value;
        return 0;
    }
    long *n = slot;
    if (*n != CLI_HOOK_UNSET)
        return h_err(err, err_len, "--%s is given twice", f->name);
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < f->min || v > f->max)
        return h_err(err, err_len,
                     "--%s expects a whole number from %ld to %ld, got \"%s\"", f->name,
                     f->min, f->max, value);
    *n = v;
    return 0;
}

/* A switch, or the --no- of a pair: given once, and not with its other
 * half. */
static int h_switch(const struct h_flag *f, struct cli_hook_args *a, char *err,
                    size_t err_len)
{
    int *b = (int *)(void *)((char *)a + f->offset);
    int on = f->kind == H_ON;
    int pair = f->offset == H_ARG(bisect) || f->offset == H_ARG(report);
    if (*b == on)
        return h_err(err, err_len, "--%s is given twice", f->name);
    if (pair && *b == !on)
        return h_err(err, err_len, "give --%s or --no-%s, not both",
                     on ? f->name : f->name + 3, on ? f->name : f->name + 3);
    *b = on;
    return 0;
}

static int h_parse_flags(enum cli_hook_cmd cmd, int argc, char **argv,
                         struct cli_hook_args *a, char *err, size_t err_len)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || !arg[2])
            return h_err(err, err_len, "unexpected argument \"%s\"", arg);
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct h_flag *f = h_find(name, len);
        if (!f)
            return h_err(err, err_len, "unknown option --%.*s", (int)len, name);
        if (f->hook_only && cmd != CLI_HOOK_HOOK)
            return h_err(err, err_len, "--%s is an option of hook, not of %s", f->name,
                         h_names[cmd]);
        if (f->kind == H_ON || f->kind == H_OFF) {
            if (eq)
                return h_err(err, err_len, "--%s takes no value", f->name);
            if (h_switch(f, a, err, err_len) != 0)
                return -1;
            continue;
        }
        const char *value = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        /* `--source --batch-size 5`: the value was forgotten */
        if (!value || (!eq && value[0] == '-' && value[1] == '-' && value[2]))
            return h_err(err, err_len, "--%s needs a value%s%s", f->name,
                         value ? ", got the option " : "", value ? value : "");
        if (h_set(f, value, a, err, err_len) != 0)
            return -1;
    }
    return 0;
}

/* arn:<partition>:<service>:<region>:<account>:<resource>: the resource,
 * when the service is `service` and no part is empty (as in a stream's or a
 * function's ARN). */
static const char *h_arn_resource(const char *arn, const char *service)
{
    if (strncmp(arn, "arn:", 4) != 0)
        return NULL;
    const char *p = arn + 4, *svc = NULL;
    for (int k = 0; k < 4; k++) {
        const char *c = strchr(p, ':');
        if (!c || c == p)
            return NULL;
        if (k == 1)
            svc = p;
        p = c + 1;
    }
    size_t sl = strlen(service);
    return strncmp(svc, service, sl) == 0 && svc[sl] == ':' && *p ? p : NULL;
}

/* s[0..n) is not empty and all [A-Za-z0-9_.-]. */
static int h_name_ok(const char *s, size_t n)
{
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
                    s[i]))
            return 0;
    return 1;
}

const char *cli_hook_source_type(const char *arn, char *err, size_t err_len)
{
    const char *r = h_arn_resource(arn, "kinesis");
    if (r && !strncmp(r, "stream/", 7) && h_name_ok(r + 7, strlen(r + 7)))
        return "kinesis";
    r = h_arn_resource(arn, "dynamodb");
    const char *s = r && !strncmp(r, "table/", 6) ? strstr(r + 6, "/stream/") : NULL;
    if (s && h_name_ok(r + 6, (size_t)(s - r - 6)) && s[8] && !strchr(s + 8, '/'))
        return "dynamodb";
    h_err(err, err_len,
          "\"%s\" is not a stream ARN: a Kinesis stream (arn:aws:kinesis:REGION:ACCOUNT:"
          "stream/NAME) or a DynamoDB stream (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/"
          "stream/LABEL)",
          arn);
    return NULL;
}

/* The function's name in an ARN arn:P:lambda:R:A:function:NAME[:QUALIFIER];
 * its length, 0 when it is not one. */
static size_t h_function_name(const char *arn, const char **name)
{
    const char *r = h_arn_resource(arn, "lambda");
    if (!r || strncmp(r, "function:", 9) != 0)
        return 0;
    *name = r + 9;
    size_t n = strcspn(*name, ":");
    return h_name_ok(*name, n) && (!(*name)[n] || (*name)[n + 1]) ? n : 0;
}

static int h_check_source(const struct cli_hook_args *a, char *err, size_t err_len)
{
    const char *t = a->source_type;
    if (t && strcmp(t, "kinesis") != 0 && strcmp(t, "dynamodb") != 0)
        return h_err(err, err_len, "--source-type expects kinesis or dynamodb, got \"%s\"",
                     t);
    if (a->source && a->source_arn)
        return h_err(err, err_len,
                     "give the source once: --source NAME --source-type kinesis|dynamodb, "
                     "or --source-arn ARN");
    if (a->source && !t)
        return h_err(err, err_len, "--source %s needs --source-type kinesis|dynamodb",
                     a->source);
    if (a->source_arn) {
        const char *type = cli_hook_source_type(a->source_arn, err, err_len);
        if (!type)
            return -1;
        if (t && strcmp(t, type) != 0)
            return h_err(err, err_len,
                         "--source-arn %s is a %s stream, but --source-type says %s",
                         a->source_arn, type, t);
        return 0;
    }
    if (!a->source)
        return h_err(err, err_len,
                     "the source is required: --source NAME --source-type "
                     "kinesis|dynamodb, or --source-arn ARN");
    return 0;
}

static int h_check(const struct cli_hook_args *a, char *err, size_t err_len)
{
    const char *name;
    if (a->function && a->function_arn)
        return h_err(err, err_len,
                     "give the function once: --function NAME or --function-arn ARN");
    if (a->function_arn && !h_function_name(a->function_arn, &name))
        return h_err(err, err_len,
                     "--function-arn \"%s\" is not a Lambda function ARN "
                     "(arn:aws:lambda:REGION:ACCOUNT:function:NAME)",
                     a->function_arn);
    if (a->function && !h_name_ok(a->function, strlen(a->function)))
        return h_err(err, err_len,
                     "--function \"%s\" is not a function name (an ARN goes to "
                     "--function-arn)",
                     a->function);
    if (a->starting_position && strcmp(a->starting_position, "LATEST") != 0 &&
        strcmp(a->starting_position, "TRIM_HORIZON") != 0)
        return h_err(err, err_len,
                     "--starting-position expects LATEST or TRIM_HORIZON, got "
                     "\"%s\"",
                     a->starting_position);
    if (a->endpoint_url && strncmp(a->endpoint_url, "http://", 7) != 0 &&
        strncmp(a->endpoint_url, "https://", 8) != 0)
        return h_err(err, err_len,
                     "--endpoint-url expects http(s)://host[:port], got \"%s\"",
                     a->endpoint_url);
    return h_check_source(a, err, err_len);
}

int cli_hook_parse(enum cli_hook_cmd cmd, int argc, char **argv, struct cli_hook_args *a,
                   char *err, size_t err_len)
{
    memset(a, 0, sizeof *a);
    a->batch_size = a->parallelization_factor = a->maximum_retry_attempts = CLI_HOOK_UNSET;
    a->bisect = a->report = -1;
    err[0] = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    if (h_parse_flags(cmd, argc, argv, a, err, err_len) != 0)
        return -1;
    return h_check(a, err, err_len);
}

void cli_hook_function(const struct cli_hook_args *a, char *id, size_t id_len, char *name,
                       size_t name_len, char *region, size_t region_len)
{
    const char *n = a->function ? a->function : "fanout";
    size_t len = a->function_arn ? h_function_name(a->function_arn, &n) : strlen(n);
    snprintf(id, id_len, "%s", a->function_arn ? a->function_arn : n);
    snprintf(name, name_len, "%.*s", (int)len, n);
    region[0] = 0;
    if (a->function_arn) {
        /* arn:P:lambda:REGION:..., checked by cli_hook_parse */
        const char *r = strchr(strchr(a->function_arn + 4, ':') + 1, ':') + 1;
        snprintf(region, region_len, "%.*s", (int)strcspn(r, ":"), r);
    }
}

/* ---- the batch item failures -------------------------------------------- */

int cli_hook_esm_reports(const json_t *esm)
{
    size_t i;
    const json_t *t;
    json_array_foreach (json_object_get(esm, "FunctionResponseTypes"), i, t)
        if (!strcmp(json_string_value(t) ? json_string_value(t) : "",
                    "ReportBatchItemFailures"))
            return 1;
    return 0;
}

void cli_hook_plan(const struct cli_hook_esm *all, size_t n, const char *source_arn,
                   int requested, const char *env, struct cli_hook_plan *p)
{
    memset(p, 0, sizeof *p);
    const struct cli_hook_esm *mine = NULL;
    for (size_t i = 0; i < n && !mine; i++)
        if (!strcmp(all[i].source_arn, source_arn))
            mine = &all[i];
    p->report = requested >= 0 ? requested : mine ? mine->report : 0;
    /* The function answers batchItemFailures only when every one of its
     * mappings expects them: a mapping without ReportBatchItemFailures
     * reads such an answer as success and drops the failed records, while
     * a failed invocation is safe under both (the whole batch is retried). */
    int all_report = p->report;
    for (size_t i = 0; i < n; i++)
        if (&all[i] != mine && !all[i].report)
            all_report = 0;
    p->env_value = all_report ? "true" : "false";
    int env_differs = !env || strcmp(env, p->env_value) != 0;
    /* The safe order: the function stops answering batchItemFailures
     * before a mapping stops expecting them, and starts after the last
     * mapping expects them. */
    if (!all_report && env_differs)
        p->steps[p->step_count++] = CLI_HOOK_STEP_ENV;
    p->steps[p->step_count++] = CLI_HOOK_STEP_MAPPING;
    if (all_report && env_differs)
        p->steps[p->step_count++] = CLI_HOOK_STEP_ENV;
}

const char *cli_hook_env_after_unhook(const struct cli_hook_esm *all, size_t n,
                                      const char *source_arn, const char *env)
{
    size_t left = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(all[i].source_arn, source_arn))
            continue;
        if (!all[i].report)
            return NULL; /* stays "false": one left does not expect them */
        left++;
    }
    if (!left || (env && !strcmp(env, "true")))
        return NULL;
    return "true";
}

/* ---- request bodies --------------------------------------------------------- */

/* The flags that map one to one on the mapping's fields. */
struct h_field {
    const char *member;
    size_t offset; /* a long in struct cli_hook_args */
};

static const struct h_field h_numbers[] = {
    {"BatchSize", H_ARG(batch_size)},
    {"ParallelizationFactor", H_ARG(parallelization_factor)},
    {"MaximumRetryAttempts", H_ARG(maximum_retry_attempts)},
};

static long h_long(const struct cli_hook_args *a, size_t offset)
{
    return *(const long *)(const void *)((const char *)a + offset);
}

/* Set in `body` the flags' values that differ from `esm` (all of them
 * when esm is NULL) and the response types for `report`. */
static int h_fields(const struct cli_hook_args *a, const json_t *esm, int report,
                    json_t *body)
{
    int rc = 0;
    for (size_t i = 0; i < sizeof h_numbers / sizeof *h_numbers; i++) {
        long v = h_long(a, h_numbers[i].offset);
        const json_t *cur = json_object_get(esm, h_numbers[i].member);
        if (v != CLI_HOOK_UNSET && !(json_is_integer(cur) && json_integer_value(cur) == v))
            rc |= json_object_set_new(body, h_numbers[i].member, json_integer(v));
    }
    const json_t *bisect = json_object_get(esm, "BisectBatchOnFunctionError");
    if (a->bisect >= 0 && (!esm || json_is_true(bisect) != a->bisect))
        rc |= json_object_set_new(body, "BisectBatchOnFunctionError",
                                  json_boolean(a->bisect));
    /* an empty list clears ReportBatchItemFailures on an update */
    if (esm ? cli_hook_esm_reports(esm) != report : report)
        rc |= json_object_set_new(body, "FunctionResponseTypes",
                                  report ? json_pack("[s]", "ReportBatchItemFailures")
                                         : json_array());
    return rc;
}

json_t *cli_hook_create_body(const struct cli_hook_args *a, const char *function,
                             const char *source_arn, int report)
{
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:b}", "FunctionName", function, "EventSourceArn",
                  source_arn, "StartingPosition",
                  a->starting_position ? a->starting_position : "LATEST", "Enabled", 1);
    if (body && h_fields(a, NULL, report, body) != 0) {
        json_decref(body);
        return NULL;
    }
    return body;
}

json_t *cli_hook_update_body(const struct cli_hook_args *a, const json_t *esm, int report,
                             int *starting_ignored)
{
    const char *pos = json_string_value(json_object_get(esm, "StartingPosition"));
    *starting_ignored = a->starting_position && (!pos || strcmp(pos, a->starting_position));
    json_t *body = json_object();
    if (body && h_fields(a, esm, report, body) != 0) {
        json_decref(body);
        return NULL;
    }
    return body;
}
