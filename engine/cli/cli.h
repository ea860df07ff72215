/* The command line: `fanout <command> ...`, and the Lambda runtime loop
 * (the `bootstrap`) that main.c starts when AWS_LAMBDA_RUNTIME_API is set
 * and no command is given. */
#ifndef FANOUT_CLI_H
#define FANOUT_CLI_H

#include <stdint.h>

/* Run the command named by argv[1] (help and --version included). Returns
 * the exit status: 0 done, 1 a delivery or AWS request failed, 2 usage or
 * configuration error. */
int fanout_cli_main(int argc, char **argv);

/* The Lambda Runtime API loop at `api` (host:port). Returns the exit
 * status. */
int fanout_cli_lambda(const char *api);

/* Time left for the work in progress (ms): the Lambda invocation's, or
 * `fanout invoke --timeout`'s, whichever ends first. The AWS layer's
 * deadline (fanout_aws_init). */
int64_t fanout_cli_remaining_ms(void);

#endif
