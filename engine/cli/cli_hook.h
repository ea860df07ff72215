/* hook, unhook, pause, resume: the function's event source mappings
 * (cli_hook.c; their decisions without the network in cli_hook_plan.h). */
#ifndef FANOUT_CLI_HOOK_H
#define FANOUT_CLI_HOOK_H

#include "cli/cli_cmd.h"

/* The four commands, told apart by cmd->name. */
cli_run_fn cli_hook_command;

#endif
