/* Inside the command line: the command table's entries, the exit
 * statuses, and what the command families share. */
#ifndef FANOUT_CLI_CMD_H
#define FANOUT_CLI_CMD_H

#include <stddef.h>
#include <stdio.h>

#include "common/util.h"
#include "core/engine.h"

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* The mapping commands, as bits: each of their flags says where it
 * applies (cli.c's flag table). */
enum {
    CLI_REGISTER = 1u << 0,
    CLI_LIST = 1u << 1,
    CLI_UPDATE = 1u << 2,
    CLI_ACTIVATE = 1u << 3,
    CLI_DEACTIVATE = 1u << 4,
    CLI_UNREGISTER = 1u << 5,
    CLI_ALL = 0x3fu,
    CLI_EDIT = CLI_REGISTER | CLI_UPDATE,
    CLI_KEYED = CLI_UPDATE | CLI_ACTIVATE | CLI_DEACTIVATE | CLI_UNREGISTER,
};

struct cli_command;
struct cli_args;
/* A command: argv[0] is its name. Returns the exit status. */
typedef int(cli_run_fn)(const struct cli_command *cmd, int argc, char **argv);
/* A mapping command, its flags parsed (cli_parse_args). */
typedef int(cli_mapping_fn)(const struct cli_command *cmd, const struct cli_args *a);

/* One entry of the command table (cli.c). */
struct cli_command {
    const char *name;
    const char *summary; /* its line in `fanout help` */
    cli_run_fn *run;     /* or, for a mapping command: */
    cli_mapping_fn *mapping;
    /* The mapping commands (bit != 0): the synopsis after "usage: fanout ",
     * the description and the examples; their options come from the flag
     * table. The others: `usage` is the whole help text. */
    unsigned bit;
    const char *usage;
    const char *about;
    const char *examples;
};

/* The command table's entry `name` (cli.c), or NULL. */
const struct cli_command *cli_command_find(const char *name);

/* The command's help (--help: stdout; after a usage error: stderr). */
void cli_help(const struct cli_command *cmd, FILE *f);

/* An argument left at argv[first], after the options: the message and the
 * help, CLI_USAGE; else CLI_OK. */
int cli_no_extra_args(const struct cli_command *cmd, int argc, char **argv, int first);

/* A usage error of a mapping command: "fanout <cmd>: <message>", its
 * synopsis and where the help is. Returns CLI_USAGE. */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...) FANOUT_FMT(2, 3);

/* Log lines muted (written to /dev/null) unless at debug level: the
 * loader's refusals, which a command prints in its own words. */
int cli_mute_log(void);
void cli_unmute_log(int fd);

/* The mapping commands' command line, as given. Booleans are -1 when not
 * given. */
struct cli_args {
    const char *type; /* register's positional <type> */
    /* the table */
    const char *table, *table_arn, *function, *function_arn;
    /* the mapping's key */
    const char *source_arn, *source, *source_type, *id;
    /* the mapping's fields */
    const char *destination, *role, *external_id, *dest_region, *collapse, *index;
    const char *filter, *on_failure; /* JSON objects, as given */
    int active, parallel, convert_ddb, deaggregate, append_newlines, whole_record;
    /* output and the AWS requests */
    int json, debug, no_verify_ssl;
    const char *region, *profile, *endpoint_url;
};

/* How many mapping fields the flags give. */
size_t cli_count_fields(const struct cli_args *a);

/* Set (or, for an empty value of an optional field, remove) the mapping
 * fields the flags give. */
void cli_apply_fields(const struct cli_args *a, json_t *obj);

/* The service of an ARN (arn:partition:service:...) in `out`, "" when it
 * is not one. */
void cli_arn_service(const char *arn, char *out, size_t len);

/* The mapping table named by the flags, as aws-lambda-fanout's CLI names
 * it: --table-arn (or a --table that is an ARN) gives the table's name in
 * buf and its region in `region`; else --table; else --function-arn or
 * --function, <NAME>Targets. The table wins over the function. Returns 0,
 * 1 when no flag names the table (the caller's default), or -1 with err
 * (two flags for one thing, a malformed ARN). */
int cli_table(const char *table, const char *table_arn, const char *function,
              const char *function_arn, char *buf, size_t len, char *region,
              size_t region_len, char *err, size_t err_len);

/* An engine over the mapping file `config` (NULL: $FANOUT_CONFIG, else the
 * DynamoDB table of FANOUT_TABLE) with the plugins of `plugin_path`, under
 * the deadline of fanout_cli_remaining_ms. CLI_OK, or CLI_USAGE (printed). */
int cli_engine(const char *config, const char *plugin_path, struct fanout_engine **out);

/* The command families (cli_invoke.c, cli_local.c, cli_mappings.c,
 * cli_deploy.c, cli_destroy.c). */
cli_run_fn cli_invoke;
cli_run_fn cli_plugins;
cli_run_fn cli_validate;
cli_mapping_fn cli_register;
cli_mapping_fn cli_list;
cli_mapping_fn cli_update;
cli_mapping_fn cli_set_active;
cli_mapping_fn cli_unregister;
cli_run_fn cli_deploy;
cli_run_fn cli_destroy;

#endif
