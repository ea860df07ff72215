/* What deploy shares with hook, unhook, pause and resume: the function's
 * configuration, its environment, its waits (cli_function.c) and its
 * role's policy (cli_role.c). The commands have called cli_aws_setup
 * first. */
#ifndef FANOUT_CLI_DEPLOY_H
#define FANOUT_CLI_DEPLOY_H

#include <jansson.h>

/* Rebuild and put the function's inline policy "fanout" (sources from its
 * event source mappings, targets from its table); no-op with a note when
 * the role is the user's (--exec-role-arn at deploy: the function's role has
 * no fanout:function tag for NAME). `also_source` (or NULL): a stream to
 * read besides the mappings' (hook, before it creates the mapping: Lambda
 * checks that the role can read the stream). Returns CLI_OK or CLI_FAILED
 * (printed). */
int cli_deploy_refresh_policy(const char *cmd, const char *function,
                              const char *also_source);

/* A Lambda write (`body` kept by the caller) retried for up to a minute
 * while IAM has not yet propagated the function's new role or its new
 * policy (Lambda answers that it cannot assume the role or read the
 * stream). 0 with the answer in *r (cli_aws_reply_free it), or -1 printed
 * with `what`, `action` and `resource`. */
struct cli_aws_reply;
int cli_lambda_write(const char *cmd, const char *what, const char *action,
                     const char *resource, const char *method, const char *path,
                     json_t *body, struct cli_aws_reply *r);

/* The function's event source mappings (of `source_arn` only, unless
 * NULL), every page followed (a repeated marker or too many pages stop
 * it), appended to the array `out`; none when the function does not
 * exist. An answer without the list is a failure, not "none". CLI_OK or
 * CLI_FAILED (printed). */
int cli_esm_list(const char *cmd, const char *function, const char *source_arn,
                 json_t *out);

/* The function's configuration (GetFunctionConfiguration) as JSON; NULL
 * printed. */
json_t *cli_function_config(const char *cmd, const char *function);

/* Set (value != NULL) or remove environment variable `name` of the
 * function, keeping the others; waits for LastUpdateStatus Successful.
 * Returns CLI_OK or CLI_FAILED (printed). */
int cli_function_set_env(const char *cmd, const char *function, const char *name,
                         const char *value);

/* Wait until the function is Active and its last update Successful.
 * Returns CLI_OK or CLI_FAILED (printed). */
int cli_function_wait(const char *cmd, const char *function);

/* The Lambda API path /2015-03-31/functions/<function, encoded><suffix>
 * into out (`suffix` "" or "/configuration"...). 0, or -1 when too long. */
int cli_function_path(const char *function, const char *suffix, char *out, size_t len);

#endif
