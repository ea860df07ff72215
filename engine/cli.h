/* The management commands of the command line: register, list, update,
 * activate, deactivate, unregister (the mappings in DynamoDB). */
#ifndef FANOUT_CLI_H
#define FANOUT_CLI_H

/* Is `name` one of the commands below? */
int fanout_cli_has(const char *name);

/* Run command `name` with its arguments (argv[0] is the command name).
 * Returns the exit status: 0 done, 1 the AWS call failed (message on
 * stderr), 2 usage or validation error (unknown flag, missing value: a
 * clear message and the command's usage). `--help` prints the usage with
 * examples and returns 0. */
int fanout_cli_run(const char *name, int argc, char **argv);

#endif
