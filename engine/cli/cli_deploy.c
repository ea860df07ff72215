/* The deployment commands (deploy, destroy, hook, unhook, pause, resume):
 * named in the command table so that scripts get a clear answer, not
 * available in this build yet. */
#include <stdio.h>

#include "cli/cli_cmd.h"

int cli_not_yet(const struct cli_command *cmd, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr,
            "fanout %s: not available in this build yet; it comes with the "
            "deployment commands\n",
            cmd->name);
    return CLI_USAGE;
}
