/* hook, unhook, pause, resume without the network: their command line,
 * the source ARN's shape, the consistency rule for the function's
 * FANOUT_REPORT_BATCH_ITEM_FAILURES and the order of the steps that keep
 * it, and the Create/UpdateEventSourceMapping bodies. cli_hook.c makes
 * the calls; the unit suite test_hook_plan checks what is decided here. */
#ifndef FANOUT_CLI_HOOK_PLAN_H
#define FANOUT_CLI_HOOK_PLAN_H

#include <jansson.h>
#include <limits.h>
#include <stddef.h>

enum cli_hook_cmd { CLI_HOOK_HOOK, CLI_HOOK_UNHOOK, CLI_HOOK_PAUSE, CLI_HOOK_RESUME };

/* Lambda's limits for stream sources (CreateEventSourceMapping). */
#define CLI_HOOK_BATCH_MIN    1
#define CLI_HOOK_BATCH_MAX    10000
#define CLI_HOOK_PARALLEL_MIN 1
#define CLI_HOOK_PARALLEL_MAX 10
#define CLI_HOOK_RETRIES_MIN  (-1) /* -1: retry until the record expires */
#define CLI_HOOK_RETRIES_MAX  10000
/* A number flag not given. */
#define CLI_HOOK_UNSET LONG_MIN

/* The environment variable hook keeps equal to the mappings' setting. */
#define CLI_HOOK_ENV "FANOUT_REPORT_BATCH_ITEM_FAILURES"

/* The command line as given. Switch pairs (--x / --no-x) are -1 when
 * neither was given. */
struct cli_hook_args {
    const char *function, *function_arn;
    const char *source_type, *source, *source_arn;
    const char *table, *table_arn; /* the original's scripts pass them: unused */
    const char *region, *profile, *endpoint_url;
    int debug, no_verify_ssl;
    /* hook only */
    long batch_size, parallelization_factor, maximum_retry_attempts;
    const char *starting_position;
    int bisect, report;
};

/* Parse argv (argv[0] is the command). 0 parsed and checked (flags that
 * go together, ranges, the ARNs' forms), 1 when --help was asked (it wins
 * over other problems), -1 a usage error in err. */
int cli_hook_parse(enum cli_hook_cmd cmd, int argc, char **argv, struct cli_hook_args *a,
                   char *err, size_t err_len);

/* The flag table, for the unit test that holds it to the commands' help
 * in cli.c: the i-th flag's name without "--", NULL past the last;
 * *hook_only when only hook takes it. */
const char *cli_hook_flag(size_t i, int *hook_only);

/* The function as Lambda's FunctionName takes it (--function-arn, else
 * --function, else "fanout") in `id`, its bare name in `name` (the ARN's
 * name, without a qualifier), and the region of its ARN in `region` (""
 * without --function-arn). */
void cli_hook_function(const struct cli_hook_args *a, char *id, size_t id_len, char *name,
                       size_t name_len, char *region, size_t region_len);

/* The source type of a stream ARN: "kinesis" (arn:P:kinesis:R:A:stream/NAME)
 * or "dynamodb" (arn:P:dynamodb:R:A:table/T/stream/LABEL); NULL with err
 * when it is neither. */
const char *cli_hook_source_type(const char *arn, char *err, size_t err_len);

/* One event source mapping of the function, as ListEventSourceMappings
 * answers it. */
struct cli_hook_esm {
    const char *uuid;
    const char *source_arn;
    int report; /* FunctionResponseTypes has ReportBatchItemFailures */
};

/* 1 when a mapping object's FunctionResponseTypes has
 * ReportBatchItemFailures. */
int cli_hook_esm_reports(const json_t *esm);

enum cli_hook_step {
    CLI_HOOK_STEP_ENV,     /* set CLI_HOOK_ENV to plan.env_value (waited for) */
    CLI_HOOK_STEP_MAPPING, /* create or update the mapping */
};

/* What hook does for a source, decided from all the function's mappings
 * (`all`, this source's included when it exists), --report-batch-item-
 * failures (`requested`: -1 not given, 0, 1) and the function's current
 * value of CLI_HOOK_ENV (`env`, NULL when unset). The mappings may differ;
 * the function reports batchItemFailures ("true") only when all of them
 * expect it, else it fails the invocation ("false"), which is safe under
 * every mapping. */
struct cli_hook_plan {
    /* The mapping's ReportBatchItemFailures after the hook: the flag, else
     * the existing mapping's, else off. */
    int report;
    /* The steps, in order: the variable turning "false" goes first, the
     * variable turning "true" goes last (after the last mapping learnt to
     * expect the answer). The env step is left out when the variable
     * already holds env_value. */
    enum cli_hook_step steps[2];
    size_t step_count;
    const char *env_value; /* "true" or "false" */
};
void cli_hook_plan(const struct cli_hook_esm *all, size_t n, const char *source_arn,
                   int requested, const char *env, struct cli_hook_plan *p);
/* After unhooking `source_arn`: "true" when the mappings left (at least
 * one) all report and the variable (`env`) is not "true" yet, to be set
 * once the mapping is gone; NULL when nothing changes. */
const char *cli_hook_env_after_unhook(const struct cli_hook_esm *all, size_t n,
                                      const char *source_arn, const char *env);
/* CreateEventSourceMapping's body for `function` and `source_arn`: the
 * starting position (default LATEST), Enabled, the flags given, and the
 * response types for `report`. New reference, NULL when out of memory. */
json_t *cli_hook_create_body(const struct cli_hook_args *a, const char *function,
                             const char *source_arn, int report);

/* UpdateEventSourceMapping's body for the existing mapping `esm`: only what
 * the flags and `report` change (an empty object: nothing to do).
 * *starting_ignored is set when --starting-position differs from the
 * mapping's, which Lambda cannot change. New reference, NULL when out of
 * memory. */
json_t *cli_hook_update_body(const struct cli_hook_args *a, const json_t *esm, int report,
                             int *starting_ignored);

#endif
