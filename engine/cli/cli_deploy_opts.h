/* The flags of deploy and destroy: parsed, checked and applied (the AWS
 * layer set up) by d_start; internal to cli_deploy.c and cli_destroy.c. */
#ifndef FANOUT_CLI_DEPLOY_OPTS_H
#define FANOUT_CLI_DEPLOY_OPTS_H

#include <jansson.h>
#include <stddef.h>

#include "cli/cli_aws.h"
#include "cli/cli_cmd.h"
#include "cli/cli_deploy_util.h"

enum { D_DEPLOY = 1, D_DESTROY = 2, D_BOTH = 3 };

struct d_opts {
    const char *function, *function_arn, *table, *table_arn, *exec_role, *exec_role_arn;
    const char *memory, *timeout, *arch, *plugins, *package_dir, *runtime;
    json_t *subnets, *sgs;
    struct cli_aws_flags aws;
    int yes, delete_table;
    /* derived */
    char name[D_MAX_NAME + 1];
    char table_name[1024], table_region[64];
    long memory_mb, timeout_s;
    const char *types[D_MAX_LAYERS];
    size_t ntypes;
};

/* Parse, check and apply a command's flags (`which`: D_DEPLOY or
 * D_DESTROY) into *o (d_opts_free it, whatever the answer). CLI_ status
 * (printed). */
int d_start(const char *cmd, unsigned which, int argc, char **argv, struct d_opts *o);
void d_opts_free(struct d_opts *o);

/* "fanout <cmd>: <message>" and where the help is, on stderr; CLI_USAGE. */
int d_usage(const char *cmd, const char *fmt, ...) FANOUT_FMT(2, 3);

/* --help (or -h) anywhere: the help on stdout, 1. */
int d_help(const struct cli_command *cmd, int argc, char **argv);

#endif
