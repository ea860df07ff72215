/* The command line: one table of the commands (name, summary, handler,
 * help with examples) that `fanout help`, `fanout <command> --help`,
 * dispatch and the unknown-command error all read; the mapping commands'
 * flags (one table: where each applies, the mapping field it sets, its
 * help) and their parser; what the command families share.
 *
 * The mapping commands' flags are parsed here rather than with
 * getopt_long: exact names only (getopt_long would accept any unambiguous
 * prefix, which a later flag can make ambiguous and so break a script),
 * and our own messages for unknown flags and missing values. */
#include "cli/cli.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_aws.h"
#include "cli/cli_cmd.h"
#include "cli/cli_hook.h"
#include "common/log.h"
#include "core/ddb_table.h"

#ifndef FANOUT_VERSION
#define FANOUT_VERSION "dev"
#endif

/* Where the flags' descriptions start in --help. */
#define S_HELP_COLUMN 24
/* Where the summaries start in `fanout help`. */
#define S_SUMMARY_COLUMN 13

/* ---- the mapping commands' flags ------------------------------------------- */

enum s_kind {
    S_VALUE,  /* --flag VALUE or --flag=VALUE */
    S_BOOL,   /* --flag true|false */
    S_SWITCH, /* --flag */
    S_JSON,   /* --flag JSON: an object field (stored as a string holding it) */
};

struct s_flag {
    const char *name; /* without the leading "--" */
    enum s_kind kind;
    size_t offset; /* of the const char * or int in struct cli_args */
    unsigned commands;
    /* The mapping field it sets (register, update), or NULL. */
    const char *field;
    /* An optional field: an empty value leaves it out (register) or
     * removes it (update). */
    int optional;
    const char *metavar;
    const char *help;
};

#define CLI_ARG(member) offsetof(struct cli_args, member)

static const struct s_flag s_flags[] = {
    {"source-arn", S_VALUE, CLI_ARG(source_arn), CLI_ALL, NULL, 0, "ARN",
     "the source: a Kinesis stream ARN, or a DynamoDB\n"
     "stream ARN (.../table/NAME/stream/LABEL)"},
    {"source", S_VALUE, CLI_ARG(source), CLI_ALL, NULL, 0, "NAME",
     "the source by name, with --source-type: a Kinesis\n"
     "stream, or a DynamoDB table (its LatestStreamArn)"},
    {"source-type", S_VALUE, CLI_ARG(source_type), CLI_ALL, NULL, 0, "kinesis|dynamodb",
     "what --source names"},
    {"id", S_VALUE, CLI_ARG(id), CLI_REGISTER | CLI_KEYED, NULL, 0, "ID",
     "the mapping's name, unique per source"},
    {"destination", S_VALUE, CLI_ARG(destination), CLI_EDIT, "destination", 0, "DEST",
     "where the records go, in the plugin's form\n"
     "(see the README's mapping table)"},
    {"active", S_BOOL, CLI_ARG(active), CLI_EDIT, "active", 0, "true|false",
     "whether the engine uses the mapping\n"
     "(register: default false)"},
    {"destination-role-arn", S_VALUE, CLI_ARG(role), CLI_EDIT, "role", 1, "ARN",
     "IAM role to assume for a cross-account destination"},
    {"external-id", S_VALUE, CLI_ARG(external_id), CLI_EDIT, "externalId", 1, "ID",
     "external id for that AssumeRole"},
    {"destination-region", S_VALUE, CLI_ARG(dest_region), CLI_EDIT, "region", 1, "REGION",
     "the destination's region (cross-region)"},
    {"collapse", S_VALUE, CLI_ARG(collapse), CLI_EDIT, "collapse", 1, "MODE",
     "none, JSON, concat or concat-b64: how records\n"
     "become messages (SNS, SQS, IoT)"},
    {"parallel", S_BOOL, CLI_ARG(parallel), CLI_EDIT, "parallel", 0, "true|false",
     "send batches concurrently (default true);\n"
     "false keeps the order"},
    {"convert-ddb", S_BOOL, CLI_ARG(convert_ddb), CLI_EDIT, "convertDDB", 0, "true|false",
     "DynamoDB Streams images as plain JSON"},
    {"deaggregate", S_BOOL, CLI_ARG(deaggregate), CLI_EDIT, "deaggregate", 0, "true|false",
     "expand KPL aggregated records"},
    {"append-newlines", S_BOOL, CLI_ARG(append_newlines), CLI_EDIT, "appendNewlines", 0,
     "true|false", "a newline after each record's data"},
    {"filter", S_JSON, CLI_ARG(filter), CLI_EDIT, "filter", 1, "JSON",
     "an event pattern (Lambda event filtering syntax):\n"
     "only the records it matches are sent, e.g.\n"
     "'{\"data\": {\"type\": [\"order\"]}}'"},
    {"on-failure", S_JSON, CLI_ARG(on_failure), CLI_EDIT, "onFailure", 1, "JSON",
     "where the records this target could not deliver\n"
     "go: a destination object, e.g. '{\"type\": \"sqs\",\n"
     "\"destination\": \"https://sqs.REGION.amazonaws.com/\n"
     "ACCOUNT/dlq\"}' (a string of JSON in the table)"},
    {"whole-record", S_BOOL, CLI_ARG(whole_record), CLI_EDIT, "wholeRecord", 0,
     "true|false",
     "DynamoDB Streams: send Keys, OldImage, NewImage\n"
     "and eventName, not only the NewImage"},
    {"index", S_VALUE, CLI_ARG(index), CLI_REGISTER, NULL, 0, "INDEX",
     "es: the index, when --destination is a domain\n"
     "name (stored as <domain endpoint>#INDEX)"},
    {"json", S_SWITCH, CLI_ARG(json), CLI_LIST, NULL, 0, NULL,
     "a JSON array of mappings: a file for --config"},
    {"table", S_VALUE, CLI_ARG(table), CLI_ALL, NULL, 0, "NAME",
     "the mapping table (default: $FANOUT_TABLE, else\n"
     "${AWS_LAMBDA_FUNCTION_NAME}Targets)"},
    {"table-arn", S_VALUE, CLI_ARG(table_arn), CLI_ALL, NULL, 0, "ARN",
     "the mapping table by ARN (its region, unless\n"
     "--region)"},
    {"function", S_VALUE, CLI_ARG(function), CLI_ALL, NULL, 0, "NAME",
     "the fanout function: the table <NAME>Targets\n"
     "(default: fanout, when nothing names the table)"},
    {"function-arn", S_VALUE, CLI_ARG(function_arn), CLI_ALL, NULL, 0, "ARN",
     "the fanout function by ARN: <NAME>Targets"},
    {"region", S_VALUE, CLI_ARG(region), CLI_ALL, NULL, 0, "REGION",
     "region of the table and the source\n"
     "(default: $AWS_REGION, the profile's)"},
    {"profile", S_VALUE, CLI_ARG(profile), CLI_ALL, NULL, 0, "NAME",
     "the profile of the shared AWS config files"},
    {"endpoint-url", S_VALUE, CLI_ARG(endpoint_url), CLI_ALL, NULL, 0, "URL",
     "send the DynamoDB and Kinesis requests there\n"
     "(an emulator)"},
    {"debug", S_SWITCH, CLI_ARG(debug), CLI_ALL, NULL, 0, NULL,
     "log at debug level (AWS retries, name lookups)"},
    {"no-verify-ssl", S_SWITCH, CLI_ARG(no_verify_ssl), CLI_ALL, NULL, 0, NULL,
     "do not verify TLS certificates for this\n"
     "command's AWS requests (warns; unsafe)"},
};

#define S_FLAG_COUNT (sizeof s_flags / sizeof *s_flags)

/* ---- the commands ----------------------------------------------------------- */

#define S_WHERE "(--source-arn ARN | --source NAME --source-type kinesis|dynamodb)"
#define S_GLOBAL                                                                           \
    "           [--table NAME | --table-arn ARN | --function NAME |\n"                     \
    "            --function-arn ARN] [--region REGION] [--profile NAME]\n"                 \
    "           [--endpoint-url URL] [--debug] [--no-verify-ssl]"
#define S_TARGET                                                                           \
    "           [--destination-role-arn ARN [--external-id ID]]\n"                         \
    "           [--destination-region REGION] [--collapse MODE]\n"                         \
    "           [--parallel true|false] [--convert-ddb true|false]\n"                      \
    "           [--deaggregate true|false] [--append-newlines true|false]\n"               \
    "           [--filter JSON] [--on-failure JSON] [--whole-record true|false]\n"
#define S_ORDERS "arn:aws:kinesis:us-east-1:123456789012:stream/orders"

/* hook, unhook, pause, resume (cli_hook.c): what they share in their help. */
#define S_HOOK_WHERE                                                                       \
    "[--function NAME | --function-arn ARN]\n"                                             \
    "           (--source-type kinesis|dynamodb --source NAME | --source-arn ARN)\n"       \
    "           [--region REGION] [--profile NAME] [--endpoint-url URL]\n"                 \
    "           [--no-verify-ssl] [--debug]"
#define S_HOOK_OPTIONS                                                                     \
    "  --function NAME         the function (default: fanout)\n"                           \
    "  --function-arn ARN      the function by ARN (a qualifier is kept)\n"                \
    "  --source-type kinesis|dynamodb\n"                                                   \
    "                          what --source names\n"                                      \
    "  --source NAME           a Kinesis stream (its StreamARN), or a DynamoDB table\n"    \
    "                          (its LatestStreamArn: the table's stream must be on)\n"     \
    "  --source-arn ARN        the stream: arn:aws:kinesis:REGION:ACCOUNT:stream/NAME\n"   \
    "                          or arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/L\n"   \
    "                          (with --source-type, they must agree)\n"                    \
    "  --table NAME, --table-arn ARN\n"                                                    \
    "                          accepted for aws-lambda-fanout's scripts; not "             \
    "used\n" CLI_AWS_FLAGS_HELP
#define S_HOOK_END                                                                         \
    "  --help                  this help\n"                                                \
    "\n"                                                                                   \
    "Prints one line per thing done. Exit status: 0 done, 1 an AWS request failed or\n"    \
    "was denied (the missing permission is named), or the source or mapping is not\n"      \
    "as the command needs (the message says why), 2 usage error.\n"                        \
    "\n"                                                                                   \
    "Examples:\n"

static const struct cli_command s_commands[] = {
    {
        .name = "invoke",
        .summary = "run one event locally (--config FILE --event FILE|-)",
        .run = cli_invoke,
        .usage =
            "usage: fanout invoke [--config FILE] [--event FILE|-] [--response FILE]\n"
            "                     [--plugin-path DIRS] [--verbose|--quiet]\n"
            "\n"
            "Run one Lambda event (Kinesis, DynamoDB Streams or SNS) through the\n"
            "engine: every record goes to every active target of its source.\n"
            "\n"
            "  --config FILE       mapping file (default: $FANOUT_CONFIG)\n"
            "  --event FILE|-      the event; - or no --event reads standard input\n"
            "  --response FILE     write the Lambda response (batchItemFailures) there\n"
            "  --plugin-path DIRS  colon-separated plugin directories, searched before\n"
            "                      /opt/fanout/plugins and the install directory\n"
            "  --verbose, --quiet  log at debug level, or warnings and errors only\n"
            "  --repeat N          run the event N times in this process (warm engine,\n"
            "                      for benchmarks); prints each run's time on stderr\n"
            "  --timeout SECONDS   total time for the invocation, like Lambda's timeout\n"
            "                      (default $FANOUT_INVOKE_TIMEOUT_SECONDS, else 900):\n"
            "                      sends and retries stop there and the records not\n"
            "                      delivered by then are reported failed\n"
            "  --metrics           print the invocation's metrics on standard output in\n"
            "                      CloudWatch Embedded Metric Format, one JSON document\n"
            "                      a line (also FANOUT_METRICS=emf)\n"
            "\n"
            "Exit status: 0 every record reached every active target, 1 some record\n"
            "failed (each is logged with its source, sequence number and reason),\n"
            "2 usage or configuration error, or an event that cannot be read at all\n"
            "(not JSON, no \"Records\" array): then no record is acknowledged.\n"
            "\n"
            "Example:\n"
            "  fanout invoke --config examples/mappings.json --event "
            "examples/events/kinesis.json\n",
    },
    {
        .name = "plugins",
        .summary = "list the plugins on the search path, and the refused ones",
        .run = cli_plugins,
        .usage = "usage: fanout plugins [--json] [--plugin-path DIRS]\n"
                 "\n"
                 "List the plugins found on the search path ($FANOUT_PLUGIN_PATH,\n"
                 "/opt/fanout/plugins, then the install directory) with their ABI,\n"
                 "description, limits and collapse modes, and the ones refused with\n"
                 "the reason. Exit status 1 when some plugin was refused.\n",
    },
    {
        .name = "validate",
        .summary = "check the mappings against the schema and the plugins",
        .run = cli_validate,
        .usage =
            "usage: fanout validate [--config FILE] [--plugin-path DIRS]\n"
            "                       [--table NAME | --table-arn ARN | --function NAME |\n"
            "                        --function-arn ARN]\n"
            "\n"
            "Check the mappings (a file with --config or FANOUT_CONFIG, else the\n"
            "DynamoDB table named by --table, --table-arn, --function (<NAME>Targets),\n"
            "--function-arn, or FANOUT_TABLE): the schema of every mapping, then each "
            "mapping\n"
            "against its plugin (installed, collapse mode accepted, options,\n"
            "destination form). Prints one line per problem. Exit status 0 when\n"
            "all mappings are valid, 2 otherwise.\n"
            "\n"
            "Example:\n"
            "  fanout validate --config examples/mappings.json\n",
    },
    {.name = "register",
     .summary = "create a mapping: a source's records to a destination",
     .mapping = cli_register,
     .bit = CLI_REGISTER,
     .usage = "register <type> --id ID --destination DEST\n"
              "           " S_WHERE "\n"
              "           [--active true|false] [--index INDEX]\n" S_TARGET S_GLOBAL,
     "Create a mapping: records of the source go to DEST through the plugin\n"
     "<type> (sns, sqs, kinesis, firehose, lambda, iot, es, memcached, redis, file\n"
     "or any installed plugin). The mapping is checked as the engine checks it,\n"
     "including the plugin's own destination check when the plugin is installed\n"
     "here (when it is not, a warning says so), and written only if no mapping\n"
     "with this id exists for the source (else use update). New mappings are\n"
     "inactive unless --active true. An empty value leaves an option out.\n"
     "DEST may be a short name, looked up in the destination's region as\n"
     "aws-lambda-fanout did: a queue name (sqs: its URL), a topic name (sns: its\n"
     "ARN), a stream, delivery stream or function name (checked), a domain name\n"
     "with --index (es: endpoint#INDEX), an MQTT topic (iot: the account's ATS\n"
     "endpoint#topic), a cluster id (memcached: its configuration endpoint) or a\n"
     "replication group id (redis: its primary endpoint). A name that does not\n"
     "exist is an error (status 2). Full forms are stored without a lookup.\n"
     "--filter and --on-failure take a JSON object (the README's mapping table),\n"
     "stored in the table as a string holding it; a pattern or destination the\n"
     "engine would refuse is refused here, with the field and the path of the\n"
     "offending part.\n",
     "  fanout register lambda --function fanout --source-type kinesis \\\n"
     "      --source inputStream --id target1 --destination targetFunction\n"
     "  fanout register es --source-type kinesis --source orders --id search \\\n"
     "      --destination logs --index orders/doc --active true\n"
     "  fanout register sqs --function fanout --source-type kinesis --source orders \\\n"
     "      --id audit --collapse JSON --active true \\\n"
     "      --destination https://sqs.us-east-1.amazonaws.com/123456789012/audit\n"
     "  fanout register kinesis --table fanoutTargets \\\n"
     "      --source-arn " S_ORDERS " \\\n"
     "      --id replica --destination orders-copy --destination-region eu-west-1 \\\n"
     "      --destination-role-arn arn:aws:iam::210987654321:role/fanout-writer \\\n"
     "      --external-id s3cr3t --parallel false\n"
     "  fanout register file --source-type kinesis --source orders \\\n"
     "      --id big-orders --destination /tmp/big.jsonl --active true \\\n"
     "      --filter '{\"data\": {\"type\": [\"order\"], \"amount\":\n"
     "          [{\"numeric\": [\">=\", 100]}]}}'\n"
     "  fanout register kinesis --source-type kinesis --source orders --id copy \\\n"
     "      --destination orders-copy --active true \\\n"
     "      --on-failure '{\"type\": \"sqs\", \"destination\":\n"
     "          \"https://sqs.us-east-1.amazonaws.com/123456789012/dlq\"}'\n"
     "  fanout register sqs --source-type dynamodb --source users --id changes \\\n"
     "      --destination users-changes --whole-record true --convert-ddb true\n"},
    {.name = "list",
     .summary = "list the mappings of the table, or of one source",
     .mapping = cli_list,
     .bit = CLI_LIST,
     .usage = "list [--json]\n"
              "           [--source-arn ARN | --source NAME --source-type "
              "kinesis|dynamodb]\n" S_GLOBAL,
     "List the mappings of the table, or of one source, sorted by source and id:\n"
     "a table of id, type, active, destination, source and the options set, or\n"
     "with --json the mapping objects as a mapping file holds them, so that\n"
     "`fanout list --json > mappings.json` gives a file for --config. Each item\n"
     "gets the checks invoke runs, its plugin's too when the plugin is installed\n"
     "here (FANOUT_PLUGIN_PATH; when it is not, a warning says so). Invalid\n"
     "mappings are listed (ACTIVE shows INVALID) and explained on standard error,\n"
     "with what invoke does with them; so are settings that invoke ignores.\n"
     "FANOUT_DDB_PAGE_LIMIT sets the items per request (pages are followed).\n",
     "  fanout list --function fanout\n"
     "  fanout list --function fanout --source-type dynamodb --source users\n"
     "  fanout list --table fanoutTargets --json > mappings.json\n"},
    {.name = "update",
     .summary = "change some fields of a mapping",
     .mapping = cli_update,
     .bit = CLI_UPDATE,
     .usage = "update --id ID\n"
              "           " S_WHERE "\n"
              "           [--destination DEST] [--active true|false]\n" S_TARGET S_GLOBAL,
     "Change the given fields of a mapping and keep the others. The result is\n"
     "checked as register checks a new mapping before it is written. An empty\n"
     "value removes an option (e.g. --destination-region \"\", --filter \"\").\n",
     "  fanout update --function fanout --source-type kinesis --source orders \\\n"
     "      --id audit --collapse none --parallel false\n"
     "  fanout update --function fanout \\\n"
     "      --source-arn " S_ORDERS " \\\n"
     "      --id replica --destination-role-arn \"\" --external-id \"\"\n"
     "  fanout update --function fanout --source-type kinesis --source orders \\\n"
     "      --id audit --filter '{\"partitionKey\": [{\"prefix\": \"eu-\"}]}'\n"
     "  fanout update --function fanout --source-type kinesis --source orders \\\n"
     "      --id copy --on-failure \"\" --filter \"\"\n"
     "  fanout update --function fanout --source-type dynamodb --source users \\\n"
     "      --id changes --whole-record false\n"},
    {.name = "activate",
     .summary = "make a mapping active",
     .mapping = cli_set_active,
     .bit = CLI_ACTIVATE,
     .usage = "activate --id ID\n"
              "           " S_WHERE "\n" S_GLOBAL,
     "Make a mapping active: the engine sends the source's records to it (after\n"
     "its mapping cache refreshes, FANOUT_MAPPING_REFRESH_SECONDS).\n",
     "  fanout activate --function fanout --source-type kinesis --source orders \\\n"
     "      --id audit\n"},
    {.name = "deactivate",
     .summary = "make a mapping inactive (kept in the table)",
     .mapping = cli_set_active,
     .bit = CLI_DEACTIVATE,
     .usage = "deactivate --id ID\n"
              "           " S_WHERE "\n" S_GLOBAL,
     "Make a mapping inactive: the engine ignores it, and it stays in the table.\n",
     "  fanout deactivate --function fanout --source-type kinesis --source orders \\\n"
     "      --id audit\n"},
    {.name = "unregister",
     .summary = "delete a mapping from the table",
     .mapping = cli_unregister,
     .bit = CLI_UNREGISTER,
     .usage = "unregister --id ID\n"
              "           " S_WHERE "\n" S_GLOBAL,
     "Delete a mapping from the table.\n",
     "  fanout unregister --function fanout \\\n"
     "      --source-arn " S_ORDERS " \\\n"
     "      --id audit\n"},
    {
        .name = "deploy",
        .summary = "create or update the function, its table, role and layers",
        .run = cli_deploy,
        .usage =
            "usage: fanout deploy [--function NAME | --function-arn ARN] [--arch "
            "x86_64|arm64]\n"
            "                     [--memory MB] [--timeout SECONDS] [--plugins TYPES]\n"
            "                     [--subnet ID ... --security-group ID ...]\n"
            "                     [--exec-role NAME | --exec-role-arn ARN]\n"
            "                     [--table NAME | --table-arn ARN] [--package-dir DIR]\n"
            "                     [--runtime provided.al2023] [--region REGION]\n"
            "                     [--profile NAME] [--endpoint-url URL] [--no-verify-ssl]\n"
            "                     [--debug]\n"
            "\n"
            "Create or update, idempotently and in this order: the mapping table\n"
            "<NAME>Targets (on demand; hash key sourceArn, range key id), the execution\n"
            "role <NAME>Role (trust policy for Lambda, tag fanout:function=NAME; inline\n"
            "policy \"fanout\": its logs, the table, the sources of the function's event\n"
            "source mappings and the targets of the table's mappings; the managed policy\n"
            "AWSLambdaVPCAccessExecutionRole while the function is in a VPC), the plugin\n"
            "layer(s) (a new version only when the zip changed), and the function\n"
            "(provided.al2023, the bootstrap zip, the layers, FANOUT_TABLE; the other\n"
            "environment variables it has are kept). Waits until the function is Active\n"
            "and its last update Successful, printing progress on standard error. Prints\n"
            "one line per resource (created, updated, unchanged), the function's ARN "
            "last.\n"
            "The code comes from the packages `scripts/package.sh --arch ARCH` writes to\n"
            "dist/. On an existing function, flags not given keep its current values.\n"
            "\n"
            "  --function NAME         the function (default fanout); --function-arn ARN\n"
            "                          names it by ARN (and its region)\n"
            "  --table NAME            the mapping table (default <NAME>Targets; created\n"
            "                          when missing); --table-arn ARN: an existing one\n"
            "  --exec-role NAME        the role to create or update (default <NAME>Role);\n"
            "                          --exec-role-arn ARN: yours, used as it is\n"
            "  --arch x86_64|arm64     the architecture (default x86_64)\n"
            "  --memory MB             128 to 10240 (default 128)\n"
            "  --timeout SECONDS       1 to 900 (default 30)\n"
            "  --subnet ID             a subnet of the VPC (repeat, or comma-separated);\n"
            "                          for ElastiCache targets, with --security-group\n"
            "  --security-group ID     a security group (repeat, or comma-separated)\n"
            "  --plugins TYPES         one layer per plugin type (comma-separated, at "
            "most\n"
            "                          5: <NAME>-plugin-<type>) instead of the one layer\n"
            "                          <NAME>-plugins with every plugin\n"
            "  --package-dir DIR       where the zips are (default ./dist)\n"
            "  --runtime RUNTIME       provided.al2023, the only one (a native "
            "runtime)\n" CLI_AWS_FLAGS_HELP "\n"
            "Exit status: 0 done, 1 an AWS request failed (a denied one names the missing\n"
            "permission) or a wait ran out (FANOUT_DEPLOY_WAIT_SECONDS, default 300),\n"
            "2 usage error or missing packages.\n"
            "\n"
            "Examples:\n"
            "  scripts/package.sh --arch arm64 && fanout deploy --function fanout --arch "
            "arm64\n"
            "  fanout deploy --function fanout --memory 256 --timeout 60 --plugins "
            "sqs,kinesis\n"
            "  fanout deploy --function fanout --subnet subnet-0a1b2c3d,subnet-4e5f6a7b "
            "\\\n"
            "      --security-group sg-0123456789abcdef0\n"
            "  fanout deploy --function fanout \\\n"
            "      --exec-role-arn arn:aws:iam::123456789012:role/my-fanout-role\n",
    },
    {
        .name = "destroy",
        .summary = "remove what deploy created (asks first, unless --yes)",
        .run = cli_destroy,
        .usage =
            "usage: fanout destroy [--function NAME | --function-arn ARN] [--yes]\n"
            "                      [--delete-table] [--table NAME | --table-arn ARN]\n"
            "                      [--exec-role NAME | --exec-role-arn ARN]\n"
            "                      [--region REGION] [--profile NAME] [--endpoint-url "
            "URL]\n"
            "                      [--no-verify-ssl] [--debug]\n"
            "\n"
            "Remove what deploy created, in this order: the function's event source\n"
            "mappings (waiting until they are gone), the function, every version of its\n"
            "layers <NAME>-plugins and <NAME>-plugin-<type>, its role when the role\n"
            "carries the tag fanout:function=NAME (never a role given with\n"
            "--exec-role-arn), and the mapping table only with --delete-table. What is\n"
            "already gone is skipped, so destroy can run again. Asks for confirmation\n"
            "on the terminal unless --yes; without a terminal, --yes is required.\n"
            "\n"
            "  --function NAME         the function (default fanout); --function-arn ARN\n"
            "  --yes                   do not ask\n"
            "  --delete-table          delete the mapping table too (its mappings are "
            "lost)\n"
            "  --table NAME            the table --delete-table deletes (default\n"
            "                          <NAME>Targets); --table-arn ARN\n"
            "  --exec-role NAME        the role, when deploy was given "
            "--exec-role\n" CLI_AWS_FLAGS_HELP "\n"
            "Exit status: 0 done, 1 an AWS request failed or not confirmed, 2 usage error\n"
            "(or no terminal and no --yes).\n"
            "\n"
            "Examples:\n"
            "  fanout destroy --function fanout\n"
            "  fanout destroy --function fanout --yes --delete-table\n",
    },
    {.name = "hook",
     .summary = "connect a source to the function (event source mapping)",
     .run = cli_hook_command,
     .usage = "usage: fanout hook " S_HOOK_WHERE "\n"
              "           [--batch-size N] [--starting-position LATEST|TRIM_HORIZON]\n"
              "           [--parallelization-factor N] [--maximum-retry-attempts N]\n"
              "           [--[no-]bisect-on-error] [--[no-]report-batch-item-failures]\n"
              "\n"
              "Create the event source mapping that makes Lambda call the function with\n"
              "the source's records, or update the one that exists for that source (the\n"
              "flags given change it, the others keep their values). The function's\n"
              "FANOUT_REPORT_BATCH_ITEM_FAILURES is one setting for all its mappings:\n"
              "hook makes it \"true\" only when every mapping has\n"
              "--report-batch-item-failures, else \"false\" (the function then fails\n"
              "the invocation on a failed record, which every mapping retries). It\n"
              "turns \"false\" before a mapping stops expecting batchItemFailures, and\n"
              "\"true\" after the last one expects them, so the function never answers\n"
              "batchItemFailures to a mapping that would read them as success. Before\n"
              "a new mapping, the role's inline policy \"fanout\" is rebuilt to read\n"
              "the source (Lambda checks it), retried while IAM propagates it.\n"
              "\n"
              "Options:\n" S_HOOK_OPTIONS
              "  --batch-size N          records per invocation, 1 to 10000 (Lambda's\n"
              "                          default: 100)\n"
              "  --starting-position LATEST|TRIM_HORIZON\n"
              "                          where a new mapping starts reading (default\n"
              "                          LATEST); an existing mapping's cannot change\n"
              "  --parallelization-factor N\n"
              "                          concurrent batches per shard, 1 to 10\n"
              "  --maximum-retry-attempts N\n"
              "                          retries of a failed batch, -1 (until the\n"
              "                          records expire) to 10000\n"
              "  --bisect-on-error       split a failed batch in two and retry the\n"
              "                          halves (--no-bisect-on-error: do not)\n"
              "  --report-batch-item-failures\n"
              "                          the function reports the failed records only\n"
              "                          (ReportBatchItemFailures), so Lambda retries\n"
              "                          from the first of them;\n"
              "                          --no-report-batch-item-failures turns it "
              "off\n" S_HOOK_END
              "  fanout hook --function fanout --source-type kinesis --source inputStream\n"
              "  fanout hook --source-type dynamodb --source users --batch-size 500 \\\n"
              "      --starting-position TRIM_HORIZON --report-batch-item-failures\n"
              "  fanout hook --source-arn " S_ORDERS " \\\n"
              "      --parallelization-factor 4 --maximum-retry-attempts 10 "
              "--bisect-on-error\n"},
    {.name = "unhook",
     .summary = "disconnect a source from the function",
     .run = cli_hook_command,
     .usage =
         "usage: fanout unhook " S_HOOK_WHERE "\n"
         "\n"
         "Delete the function's event source mapping for the source, wait until it\n"
         "is gone, and rebuild the role's inline policy \"fanout\" without the\n"
         "source. Nothing else changes (the mapping table keeps the source's\n"
         "targets). Status 1 when the function has no mapping for the source.\n"
         "\n"
         "Options:\n" S_HOOK_OPTIONS S_HOOK_END
         "  fanout unhook --function fanout --source-type kinesis --source inputStream\n"
         "  fanout unhook --source-arn " S_ORDERS "\n"},
    {.name = "pause",
     .summary = "stop reading a source (kept hooked)",
     .run = cli_hook_command,
     .usage =
         "usage: fanout pause " S_HOOK_WHERE "\n"
         "\n"
         "Disable the function's event source mapping for the source and wait\n"
         "until it is Disabled: Lambda stops reading the source and keeps its\n"
         "position; resume reads on from there (within the stream's retention).\n"
         "A mapping already paused is left as it is (status 0).\n"
         "\n"
         "Options:\n" S_HOOK_OPTIONS S_HOOK_END
         "  fanout pause --function fanout --source-type kinesis --source inputStream\n"},
    {.name = "resume",
     .summary = "read a paused source again",
     .run = cli_hook_command,
     .usage = "usage: fanout resume " S_HOOK_WHERE "\n"
              "\n"
              "Enable the function's event source mapping for the source again and wait\n"
              "until it is Enabled. A mapping already enabled is left as it is\n"
              "(status 0).\n"
              "\n"
              "Options:\n" S_HOOK_OPTIONS S_HOOK_END
              "  fanout resume --function fanout --source-type dynamodb --source users\n"},
};

/* ---- help and messages -------------------------------------------------------- */

/* A mapping command's help: its options from the flag table. */
static void s_mapping_help(const struct cli_command *cmd, FILE *out)
{
    fprintf(out, "usage: fanout %s\n\n%s\nOptions:\n", cmd->usage, cmd->about);
    for (size_t i = 0; i < S_FLAG_COUNT; i++) {
        const struct s_flag *f = &s_flags[i];
        if (!(f->commands & cmd->bit))
            continue;
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", f->name, f->metavar ? " " : "",
                 f->metavar ? f->metavar : "");
        /* a long flag gets its own line; continuation lines are indented */
        if (strlen(left) > S_HELP_COLUMN)
            fprintf(out, "  %s\n  %-*s ", left, S_HELP_COLUMN, "");
        else
            fprintf(out, "  %-*s ", S_HELP_COLUMN, left);
        for (const char *p = f->help; *p; p++) {
            fputc(*p, out);
            if (*p == '\n')
                fprintf(out, "  %-*s ", S_HELP_COLUMN, "");
        }
        fputc('\n', out);
    }
    fprintf(out, "  %-*s %s\n", S_HELP_COLUMN, "--help", "this help");
    fprintf(out,
            "\nExit status: 0 done, 1 an AWS request failed or the mapping or source was\n"
            "not as the command needs (the message says why), 2 usage or validation\n"
            "error.\n\nExamples:\n%s",
            cmd->examples);
}

void cli_help(const struct cli_command *cmd, FILE *f)
{
    if (cmd->bit)
        s_mapping_help(cmd, f);
    else
        fputs(cmd->usage, f);
}

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fanout %s: %s\nusage: fanout %s\n", cmd->name, msg, cmd->usage);
    fprintf(stderr, "(fanout %s --help lists the options, with examples)\n", cmd->name);
    return CLI_USAGE;
}

int cli_no_extra_args(const struct cli_command *cmd, int argc, char **argv, int first)
{
    if (first >= argc)
        return CLI_OK;
    fprintf(stderr, "fanout %s: unexpected argument \"%s\"\n", cmd->name, argv[first]);
    cli_help(cmd, stderr);
    return CLI_USAGE;
}

int cli_mute_log(void)
{
    if (fanout_log_enabled(FANOUT_LOG_DEBUG))
        return -1;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd >= 0)
        fanout_log_set_fd(fd);
    return fd;
}

void cli_unmute_log(int fd)
{
    if (fd < 0)
        return;
    fanout_log_set_fd(-1);
    close(fd);
}

/* ---- the flags' parser ------------------------------------------------------------ */

static const struct s_flag *s_flag_find(const char *name, size_t len)
{
    for (size_t i = 0; i < S_FLAG_COUNT; i++)
        if (strlen(s_flags[i].name) == len && strncmp(s_flags[i].name, name, len) == 0)
            return &s_flags[i];
    return NULL;
}

static int s_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

static int s_parse(const struct cli_command *cmd, int argc, char **argv, struct cli_args *a)
{
    memset(a, 0, sizeof *a);
    a->active = a->parallel = a->convert_ddb = a->deaggregate = a->append_newlines =
        a->whole_record = -1;
    int options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && !strcmp(arg, "--")) {
            options_done = 1;
            continue;
        }
        if (options_done || arg[0] != '-' || arg[1] == 0) {
            if (cmd->bit == CLI_REGISTER && !a->type) {
                a->type = arg;
                continue;
            }
            return cli_usage_error(cmd, "unexpected argument \"%s\"", arg);
        }
        if (arg[1] != '-')
            return cli_usage_error(cmd, "unknown option \"%s\"", arg);
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct s_flag *f = s_flag_find(name, len);
        if (!f)
            return cli_usage_error(cmd, "unknown option --%.*s", (int)len, name);
        if (!(f->commands & cmd->bit))
            return cli_usage_error(cmd, "--%s is not an option of %s", f->name, cmd->name);
        char *slot = (char *)a + f->offset;
        if (f->kind == S_SWITCH) {
            if (eq)
                return cli_usage_error(cmd, "--%s takes no value", f->name);
            *(int *)(void *)slot = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
        /* `--id --destination x`: the value was forgotten; taking
         * "--destination" as the id would hide that */
        if (!value || (!eq && value[0] == '-' && value[1] == '-' && value[2]))
            return cli_usage_error(cmd, "--%s needs a value (%s)%s%s", f->name, f->metavar,
                                   value ? ", got the option " : "", value ? value : "");
        if (!eq)
            i++;
        if (f->kind == S_BOOL) {
            int *b = (int *)(void *)slot;
            if (*b != -1)
                return cli_usage_error(cmd, "--%s is given twice", f->name);
            if (!strcmp(value, "true"))
                *b = 1;
            else if (!strcmp(value, "false"))
                *b = 0;
            else
                return cli_usage_error(cmd, "--%s expects true or false, got \"%s\"",
                                       f->name, value);
        } else {
            const char **s = (const char **)(void *)slot;
            if (*s)
                return cli_usage_error(cmd, "--%s is given twice", f->name);
            *s = value;
        }
    }
    return CLI_OK;
}

static int s_bool_of(const struct cli_args *a, const struct s_flag *f)
{
    return *(const int *)(const void *)((const char *)a + f->offset);
}

static const char *s_string_of(const struct cli_args *a, const struct s_flag *f)
{
    return *(const char *const *)(const void *)((const char *)a + f->offset);
}

size_t cli_count_fields(const struct cli_args *a)
{
    size_t n = 0;
    for (size_t i = 0; i < S_FLAG_COUNT; i++) {
        const struct s_flag *f = &s_flags[i];
        if (f->field)
            n += f->kind == S_BOOL ? s_bool_of(a, f) >= 0 : s_string_of(a, f) != NULL;
    }
    return n;
}

void cli_apply_fields(const struct cli_args *a, json_t *obj)
{
    for (size_t i = 0; i < S_FLAG_COUNT; i++) {
        const struct s_flag *f = &s_flags[i];
        if (!f->field)
            continue;
        if (f->kind == S_BOOL) {
            int b = s_bool_of(a, f);
            if (b < 0)
                continue;
            json_object_set_new(obj, f->field, json_boolean(b));
        } else {
            const char *s = s_string_of(a, f);
            if (!s)
                continue;
            json_t *v = NULL;
            if (f->kind == S_JSON && *s) {
                /* an object is stored as the table's string (compact); any
                 * other text is kept as given, and the mapping's check says
                 * what is wrong with it, where */
                v = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
                if (!json_is_object(v)) {
                    json_decref(v);
                    v = NULL;
                }
            }
            if (!*s && f->optional)
                json_object_del(obj, f->field);
            else
                json_object_set_new(obj, f->field, v ? v : json_string(s));
        }
    }
}

/* ---- the table of a command ------------------------------------------------------ */

void cli_arn_service(const char *arn, char *out, size_t len)
{
    out[0] = 0;
    if (strncmp(arn, "arn:", 4) != 0)
        return;
    const char *p = strchr(arn + 4, ':');
    const char *q = p ? strchr(p + 1, ':') : NULL;
    if (q && (size_t)(q - p - 1) < len)
        snprintf(out, len, "%.*s", (int)(q - p - 1), p + 1);
}

/* arn:<partition>:<service>:<region>:<account>:<prefix><name>: the name
 * (up to the next ':' when `colon_ends`) and the region. */
static int s_arn_name(const char *arn, const char *service, const char *prefix,
                      int colon_ends, char *name, size_t name_len, char *region,
                      size_t region_len)
{
    char svc[32];
    cli_arn_service(arn, svc, sizeof svc);
    if (strcmp(svc, service) != 0)
        return -1;
    const char *r = strchr(strchr(arn + 4, ':') + 1, ':') + 1; /* after service: */
    const char *acct = strchr(r, ':');
    const char *res = acct ? strchr(acct + 1, ':') : NULL;
    if (!acct || !res || acct == r || (size_t)(acct - r) >= region_len)
        return -1;
    res++;
    size_t pl = strlen(prefix);
    if (strncmp(res, prefix, pl) != 0)
        return -1;
    const char *n = res + pl;
    size_t nl = colon_ends ? strcspn(n, ":") : strlen(n);
    if (nl == 0 || nl >= name_len || strchr(n, '/'))
        return -1;
    snprintf(name, name_len, "%.*s", (int)nl, n);
    snprintf(region, region_len, "%.*s", (int)(acct - r), r);
    return 0;
}

static int s_not_arn(char *err, size_t err_len, const char *arn, const char *form)
{
    snprintf(err, err_len, "\"%s\" is not a %s", arn, form);
    return -1;
}

int cli_table(const char *table, const char *table_arn, const char *function,
              const char *function_arn, char *buf, size_t len, char *region,
              size_t region_len, char *err, size_t err_len)
{
    char name[FANOUT_DDB_TABLE_MAX + 16];
    region[0] = 0;
    if (table && table_arn) {
        snprintf(err, err_len, "give the table once: --table NAME or --table-arn ARN");
        return -1;
    }
    if (function && function_arn) {
        snprintf(err, err_len,
                 "give the function once: --function NAME or --function-arn ARN");
        return -1;
    }
    /* a table ARN, by either flag: its name, and its region */
    const char *arn = table_arn                             ? table_arn
                      : table && !strncmp(table, "arn:", 4) ? table
                                                            : NULL;
    if (arn && s_arn_name(arn, "dynamodb", "table/", 0, name, sizeof name, region,
                          region_len) != 0)
        return s_not_arn(err, err_len, arn,
                         "DynamoDB table ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME)");
    /* the table wins over the function, as with aws-lambda-fanout */
    if (arn || table) {
        snprintf(buf, len, "%s", arn ? name : table);
        return 0;
    }
    char fregion[64];
    if (function_arn && s_arn_name(function_arn, "lambda", "function:", 1, name,
                                   sizeof name, fregion, sizeof fregion) != 0)
        return s_not_arn(
            err, err_len, function_arn,
            "Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)");
    if (function_arn || function) {
        snprintf(buf, len, "%sTargets", function_arn ? name : function);
        return 0;
    }
    return 1;
}

#define S_COMMAND_COUNT (sizeof s_commands / sizeof *s_commands)

static void s_usage(FILE *f)
{
    fprintf(f, "usage: fanout <command> [options]      (fanout <command> --help for more)\n"
               "\n"
               "Stream fan-out: forwards Kinesis and DynamoDB Streams records to many\n"
               "targets through destination plugins.\n"
               "\n"
               "Commands:\n");
    for (size_t i = 0; i < S_COMMAND_COUNT; i++)
        fprintf(f, "  %-*s %s\n", S_SUMMARY_COLUMN - 1, s_commands[i].name,
                s_commands[i].summary);
    fprintf(f, "\n"
               "As an AWS Lambda custom runtime (bootstrap), fanout runs the Runtime API\n"
               "loop when AWS_LAMBDA_RUNTIME_API is set and no command is given.\n"
               "\n"
               "Environment: FANOUT_CONFIG or FANOUT_TABLE, FANOUT_PLUGIN_PATH,\n"
               "FANOUT_MAX_PARALLEL, FANOUT_RETRY_*, FANOUT_AWS_*, FANOUT_LOG_LEVEL,\n"
               "FANOUT_INVOKE_TIMEOUT_SECONDS, FANOUT_SKIP_INVALID_MAPPINGS,\n"
               "FANOUT_LOG_FORMAT, FANOUT_REPORT_BATCH_ITEM_FAILURES, FANOUT_METRICS,\n"
               "FANOUT_METRICS_NAMESPACE, AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_LOG_LEVEL,\n"
               "and the AWS SDKs'\n"
               "AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL[_<SERVICE>] (see the README).\n");
}

const struct cli_command *cli_command_find(const char *name)
{
    for (size_t i = 0; i < S_COMMAND_COUNT; i++)
        if (strcmp(s_commands[i].name, name) == 0)
            return &s_commands[i];
    return NULL;
}

int fanout_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        s_usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("fanout %s (plugin ABI %d.%d)\n", FANOUT_VERSION, FANOUT_ABI_MAJOR,
               FANOUT_ABI_MINOR);
        return CLI_OK;
    }
    const struct cli_command *cmd = cli_command_find(argv[1]);
    if (!cmd) {
        fprintf(stderr, "fanout: unknown command \"%s\"\n\n", argv[1]);
        s_usage(stderr);
        return CLI_USAGE;
    }
    argc--;
    argv++;
    if (!cmd->mapping)
        return cmd->run(cmd, argc, argv);
    /* help wins over other problems on the line */
    if (s_wants_help(argc, argv)) {
        cli_help(cmd, stdout);
        return CLI_OK;
    }
    struct cli_args a;
    int rc = s_parse(cmd, argc, argv, &a);
    return rc != CLI_OK ? rc : cmd->mapping(cmd, &a);
}
