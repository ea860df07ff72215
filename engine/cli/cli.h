/* The management commands of the command line: register, list, update,
 * activate, deactivate, unregister (the mappings in DynamoDB). */
#ifndef FANOUT_CLI_H
#define FANOUT_CLI_H

#include <stddef.h>

/* Is `name` one of the commands below? */
int fanout_cli_has(const char *name);

/* Run command `name` with its arguments (argv[0] is the command name).
 * Returns the exit status: 0 done, 1 the AWS call failed (message on
 * stderr), 2 usage or validation error (unknown flag, missing value: a
 * clear message and the command's usage). `--help` prints the usage with
 * examples and returns 0. */
int fanout_cli_run(const char *name, int argc, char **argv);

/* The mapping table named by the flags, as aws-lambda-fanout's CLI names
 * it: --table-arn (or a --table that is an ARN) gives the table's name in
 * buf and its region in `region`; else --table; else --function-arn or
 * --function, <NAME>Targets. The table wins over the function. Returns 0,
 * 1 when no flag names the table (the caller's default), or -1 with err
 * (two flags for one thing, a malformed ARN). */
int fanout_cli_table(const char *table, const char *table_arn, const char *function,
                     const char *function_arn, char *buf, size_t len, char *region,
                     size_t region_len, char *err, size_t err_len);

#endif
