/* The fanout function's inline policy "fanout": least privilege from its
 * table, its sources (event source mappings) and its mappings' targets.
 * Pure: no request; the commands gather the inputs. */
#ifndef FANOUT_CLI_POLICY_H
#define FANOUT_CLI_POLICY_H

#include <jansson.h>
#include <stdio.h>

struct cli_policy_in {
    const char *partition, *region, *account; /* the function's */
    const char *function;                     /* its name */
    const char *table_arn;                    /* the mapping table's ARN */
    const json_t *sources;  /* array of source ARNs (Kinesis, DynamoDB streams) */
    const json_t *mappings; /* array of mapping objects (active or not) */
};

/* The policy document: statements Logs, Table, then Sources and
 * SourcesList (when there are sources) and Targets (when some mapping needs
 * a permission). A destination that cannot be turned into an ARN gets a
 * warning line on `warn` ("fanout <cmd>: warning: mapping ID ...") and no
 * statement. New reference; NULL when out of memory. */
json_t *cli_policy_build(const struct cli_policy_in *in, const char *cmd, FILE *warn);

#endif
