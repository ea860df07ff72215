/* The management commands: register, list, update, activate, deactivate,
 * unregister. They edit the mapping table in DynamoDB (hash key sourceArn,
 * range key id, one item per mapping) through the AWS layer, and take the
 * seed design's flag names so its users' scripts keep working.
 *
 * Flags are parsed here rather than with getopt_long: exact names only
 * (getopt_long would accept any unambiguous prefix, which a later flag can
 * make ambiguous and so break a script), and our own messages for unknown
 * flags and missing values. */
#include "cli/cli.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/cli_resolve.h"
#include "aws/client.h"
#include "core/ddb.h"
#include "core/engine.h"
#include "common/log.h"
#include "core/mapping.h"
#include "core/store_ddb.h"
#include "common/util.h"

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* DynamoDB's rule for table names; an ARN of a table is accepted as well. */
#define S_TABLE_MIN 3
#define S_TABLE_MAX 255
/* Query/Scan Limit accepted from FANOUT_DDB_PAGE_LIMIT (as the store). */
#define S_PAGE_LIMIT_MAX 100000
/* Where the flags' descriptions start in --help. */
#define S_HELP_COLUMN 24

/* The commands, as bits so that each flag can say where it applies. */
enum {
    S_REGISTER = 1u << 0,
    S_LIST = 1u << 1,
    S_UPDATE = 1u << 2,
    S_ACTIVATE = 1u << 3,
    S_DEACTIVATE = 1u << 4,
    S_UNREGISTER = 1u << 5,
    S_ALL = 0x3fu,
    S_EDIT = S_REGISTER | S_UPDATE,
    S_KEYED = S_UPDATE | S_ACTIVATE | S_DEACTIVATE | S_UNREGISTER,
};

/* The command line, as given. Booleans are -1 when not given. */
struct s_args {
    const char *type; /* register's positional <type> */
    const char *table;
    const char *function;
    const char *source_arn;
    const char *source;
    const char *source_type;
    const char *id;
    const char *destination;
    const char *role;
    const char *external_id;
    const char *dest_region;
    const char *collapse;
    int active;
    int parallel;
    int convert_ddb;
    int deaggregate;
    int append_newlines;
    const char *index;
    const char *region;
    const char *profile;
    const char *endpoint_url;
    const char *table_arn;
    const char *function_arn;
    int json;
    int debug;
    int no_verify_ssl;
};

enum s_kind {
    S_VALUE,  /* --flag VALUE or --flag=VALUE */
    S_BOOL,   /* --flag true|false */
    S_SWITCH, /* --flag */
};

struct s_flag {
    const char *name; /* without the leading "--" */
    enum s_kind kind;
    size_t offset; /* of the const char * or int in struct s_args */
    unsigned commands;
    /* The mapping field it sets (register, update), or NULL. */
    const char *field;
    /* An optional field: an empty value leaves it out (register) or
     * removes it (update). */
    int optional;
    const char *metavar;
    const char *help;
};

#define S_ARG(member) offsetof(struct s_args, member)

static const struct s_flag s_flags[] = {
    {"source-arn", S_VALUE, S_ARG(source_arn), S_ALL, NULL, 0, "ARN",
     "the source: a Kinesis stream ARN, or a DynamoDB\n"
     "stream ARN (.../table/NAME/stream/LABEL)"},
    {"source", S_VALUE, S_ARG(source), S_ALL, NULL, 0, "NAME",
     "the source by name, with --source-type: a Kinesis\n"
     "stream, or a DynamoDB table (its LatestStreamArn)"},
    {"source-type", S_VALUE, S_ARG(source_type), S_ALL, NULL, 0, "kinesis|dynamodb",
     "what --source names"},
    {"id", S_VALUE, S_ARG(id), S_REGISTER | S_KEYED, NULL, 0, "ID",
     "the mapping's name, unique per source"},
    {"destination", S_VALUE, S_ARG(destination), S_EDIT, "destination", 0, "DEST",
     "where the records go, in the plugin's form\n"
     "(see the README's mapping table)"},
    {"active", S_BOOL, S_ARG(active), S_EDIT, "active", 0, "true|false",
     "whether the engine uses the mapping\n"
     "(register: default false)"},
    {"destination-role-arn", S_VALUE, S_ARG(role), S_EDIT, "role", 1, "ARN",
     "IAM role to assume for a cross-account destination"},
    {"external-id", S_VALUE, S_ARG(external_id), S_EDIT, "externalId", 1, "ID",
     "external id for that AssumeRole"},
    {"destination-region", S_VALUE, S_ARG(dest_region), S_EDIT, "region", 1, "REGION",
     "the destination's region (cross-region)"},
    {"collapse", S_VALUE, S_ARG(collapse), S_EDIT, "collapse", 1, "MODE",
     "none, JSON, concat or concat-b64: how records\n"
     "become messages (SNS, SQS, IoT)"},
    {"parallel", S_BOOL, S_ARG(parallel), S_EDIT, "parallel", 0, "true|false",
     "send batches concurrently (default true);\n"
     "false keeps the order"},
    {"convert-ddb", S_BOOL, S_ARG(convert_ddb), S_EDIT, "convertDDB", 0, "true|false",
     "DynamoDB Streams images as plain JSON"},
    {"deaggregate", S_BOOL, S_ARG(deaggregate), S_EDIT, "deaggregate", 0, "true|false",
     "expand KPL aggregated records"},
    {"append-newlines", S_BOOL, S_ARG(append_newlines), S_EDIT, "appendNewlines", 0,
     "true|false", "a newline after each record's data"},
    {"index", S_VALUE, S_ARG(index), S_REGISTER, NULL, 0, "INDEX",
     "es: the index, when --destination is a domain\n"
     "name (stored as <domain endpoint>#INDEX)"},
    {"json", S_SWITCH, S_ARG(json), S_LIST, NULL, 0, NULL,
     "a JSON array of mappings: a file for --config"},
    {"table", S_VALUE, S_ARG(table), S_ALL, NULL, 0, "NAME",
     "the mapping table (default: $FANOUT_TABLE, else\n"
     "${AWS_LAMBDA_FUNCTION_NAME}Targets)"},
    {"table-arn", S_VALUE, S_ARG(table_arn), S_ALL, NULL, 0, "ARN",
     "the mapping table by ARN (its region, unless\n"
     "--region)"},
    {"function", S_VALUE, S_ARG(function), S_ALL, NULL, 0, "NAME",
     "the fanout function: the table <NAME>Targets\n"
     "(default: fanout, when nothing names the table)"},
    {"function-arn", S_VALUE, S_ARG(function_arn), S_ALL, NULL, 0, "ARN",
     "the fanout function by ARN: <NAME>Targets"},
    {"region", S_VALUE, S_ARG(region), S_ALL, NULL, 0, "REGION",
     "region of the table and the source\n"
     "(default: $AWS_REGION, the profile's)"},
    {"profile", S_VALUE, S_ARG(profile), S_ALL, NULL, 0, "NAME",
     "the profile of the shared AWS config files"},
    {"endpoint-url", S_VALUE, S_ARG(endpoint_url), S_ALL, NULL, 0, "URL",
     "send the DynamoDB and Kinesis requests there\n"
     "(an emulator)"},
    {"debug", S_SWITCH, S_ARG(debug), S_ALL, NULL, 0, NULL,
     "log at debug level (AWS retries, name lookups)"},
    {"no-verify-ssl", S_SWITCH, S_ARG(no_verify_ssl), S_ALL, NULL, 0, NULL,
     "do not verify TLS certificates for this\n"
     "command's AWS requests (warns; unsafe)"},
};

#define S_FLAG_COUNT (sizeof s_flags / sizeof *s_flags)

struct s_command;
typedef int(s_run_fn)(const struct s_command *cmd, const struct s_args *a);

struct s_command {
    const char *name;
    unsigned bit;
    s_run_fn *run;
    const char *synopsis; /* after "usage: fanout " */
    const char *about;
    const char *examples;
};

/* ---- messages ------------------------------------------------------------ */

static void s_print_synopsis(FILE *f, const struct s_command *cmd)
{
    fprintf(f, "usage: fanout %s\n", cmd->synopsis);
}

static void s_print_help(const struct s_command *cmd)
{
    s_print_synopsis(stdout, cmd);
    printf("\n%s\nOptions:\n", cmd->about);
    for (size_t i = 0; i < S_FLAG_COUNT; i++) {
        const struct s_flag *f = &s_flags[i];
        if (!(f->commands & cmd->bit))
            continue;
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", f->name, f->metavar ? " " : "",
                 f->metavar ? f->metavar : "");
        /* a long flag gets its own line; continuation lines are indented */
        if (strlen(left) > S_HELP_COLUMN)
            printf("  %s\n  %-*s ", left, S_HELP_COLUMN, "");
        else
            printf("  %-*s ", S_HELP_COLUMN, left);
        for (const char *p = f->help; *p; p++) {
            putchar(*p);
            if (*p == '\n')
                printf("  %-*s ", S_HELP_COLUMN, "");
        }
        putchar('\n');
    }
    printf("  %-*s %s\n", S_HELP_COLUMN, "--help", "this help");
    printf("\nExit status: 0 done, 1 an AWS request failed or the mapping or source was\n"
           "not as the command needs (the message says why), 2 usage or validation\n"
           "error.\n\nExamples:\n%s",
           cmd->examples);
}

static int s_usage_error(const struct s_command *cmd, const char *fmt, ...)
    FANOUT_FMT(2, 3);
static int s_usage_error(const struct s_command *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fanout %s: %s\n", cmd->name, msg);
    s_print_synopsis(stderr, cmd);
    fprintf(stderr, "(fanout %s --help lists the options, with examples)\n", cmd->name);
    return CLI_USAGE;
}

/* ---- flags --------------------------------------------------------------- */

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

static int s_parse(const struct s_command *cmd, int argc, char **argv, struct s_args *a)
{
    memset(a, 0, sizeof *a);
    a->active = a->parallel = a->convert_ddb = a->deaggregate = a->append_newlines = -1;
    int options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && !strcmp(arg, "--")) {
            options_done = 1;
            continue;
        }
        if (options_done || arg[0] != '-' || arg[1] == 0) {
            if (cmd->bit == S_REGISTER && !a->type) {
                a->type = arg;
                continue;
            }
            return s_usage_error(cmd, "unexpected argument \"%s\"", arg);
        }
        if (arg[1] != '-')
            return s_usage_error(cmd, "unknown option \"%s\"", arg);
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct s_flag *f = s_flag_find(name, len);
        if (!f)
            return s_usage_error(cmd, "unknown option --%.*s", (int)len, name);
        if (!(f->commands & cmd->bit))
            return s_usage_error(cmd, "--%s is not an option of %s", f->name, cmd->name);
        char *slot = (char *)a + f->offset;
        if (f->kind == S_SWITCH) {
            if (eq)
                return s_usage_error(cmd, "--%s takes no value", f->name);
            *(int *)(void *)slot = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
        /* `--id --destination x`: the value was forgotten; taking
         * "--destination" as the id would hide that */
        if (!value || (!eq && value[0] == '-' && value[1] == '-' && value[2]))
            return s_usage_error(cmd, "--%s needs a value (%s)%s%s", f->name, f->metavar,
                                 value ? ", got the option " : "", value ? value : "");
        if (!eq)
            i++;
        if (f->kind == S_BOOL) {
            int *b = (int *)(void *)slot;
            if (*b != -1)
                return s_usage_error(cmd, "--%s is given twice", f->name);
            if (!strcmp(value, "true"))
                *b = 1;
            else if (!strcmp(value, "false"))
                *b = 0;
            else
                return s_usage_error(cmd, "--%s expects true or false, got \"%s\"", f->name,
                                     value);
        } else {
            const char **s = (const char **)(void *)slot;
            if (*s)
                return s_usage_error(cmd, "--%s is given twice", f->name);
            *s = value;
        }
    }
    return CLI_OK;
}

static int s_bool_of(const struct s_args *a, const struct s_flag *f)
{
    return *(const int *)(const void *)((const char *)a + f->offset);
}

static const char *s_string_of(const struct s_args *a, const struct s_flag *f)
{
    return *(const char *const *)(const void *)((const char *)a + f->offset);
}

/* ---- the AWS side --------------------------------------------------------- */

/* What every request of a command needs. */
struct s_ctx {
    const struct s_command *cmd;
    const char *table;
    const char *region; /* --region, or NULL for the default */
};

struct s_reply {
    json_t *json; /* the answer (an object), on success */
    char code[128];
    char message[512];
};

/* One JSON-protocol request: DynamoDB (JSON 1.0) or Kinesis (JSON 1.1).
 * Returns 0 with r->json, or -1 with r->code and r->message. */
static int s_call(const struct s_ctx *c, const char *service, const char *op,
                  const json_t *body, struct s_reply *r)
{
    memset(r, 0, sizeof *r);
    int ddb = strcmp(service, "dynamodb") == 0;
    char target[96];
    snprintf(target, sizeof target, "%s.%s", ddb ? "DynamoDB_20120810" : "Kinesis_20131202",
             op);
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text) {
        fanout_strlcpy(r->code, "OutOfMemory", sizeof r->code);
        return -1;
    }
    const struct fanout_aws_header headers[] = {
        {"Content-Type", ddb ? "application/x-amz-json-1.0" : "application/x-amz-json-1.1"},
        {"X-Amz-Target", target},
    };
    const struct fanout_aws_request req = {
        .struct_size = sizeof req,
        .service = service,
        .region = c->region,
        .method = "POST",
        .path = "/",
        .headers = headers,
        .header_count = sizeof headers / sizeof *headers,
        .body = (const uint8_t *)text,
        .body_len = strlen(text),
        .protocol = FANOUT_AWS_JSON,
    };
    struct fanout_aws_response resp = {.struct_size = sizeof resp};
    const struct fanout_aws_request *reqs[] = {&req};
    struct fanout_aws_response *resps[] = {&resp};
    fanout_aws_call(reqs, resps, 1);
    free(text);
    int rc = -1;
    if (resp.result == FANOUT_AWS_OK) {
        json_error_t je;
        r->json =
            json_loadb(resp.body ? (const char *)resp.body : "", resp.body_len, 0, &je);
        if (json_is_object(r->json)) {
            rc = 0;
        } else {
            json_decref(r->json);
            r->json = NULL;
            fanout_strlcpy(r->code, "InvalidResponse", sizeof r->code);
            snprintf(r->message, sizeof r->message, "the answer is not a JSON object: %s",
                     je.text);
        }
    } else {
        fanout_strlcpy(r->code, resp.error_code[0] ? resp.error_code : "RequestFailed",
                       sizeof r->code);
        fanout_strlcpy(r->message, resp.error_message, sizeof r->message);
    }
    fanout_aws_response_clean_up(&resp);
    return rc;
}

static int s_is(const struct s_reply *r, const char *code)
{
    return strcmp(r->code, code) == 0;
}

/* A failed request: what was asked, and the service's own code and message. */
static int s_failed(const struct s_ctx *c, const char *what, const struct s_reply *r)
{
    if (s_is(r, "ResourceNotFoundException") && c->table)
        fprintf(stderr,
                "fanout %s: %s: the table \"%s\" does not exist (%s%s%s); create it with "
                "hash key sourceArn (S) and range key id (S), or name another with "
                "--table or --function\n",
                c->cmd->name, what, c->table, r->code, r->message[0] ? ": " : "",
                r->message);
    else
        fprintf(stderr, "fanout %s: %s failed: %s%s%s\n", c->cmd->name, what, r->code,
                r->message[0] ? ": " : "", r->message);
    return CLI_FAILED;
}

static json_t *s_key(const char *source_arn, const char *id)
{
    return json_pack("{s:{s:s}, s:{s:s}}", "sourceArn", "S", source_arn, "id", "S", id);
}

/* ---- source --------------------------------------------------------------- */

/* The service of an ARN (arn:partition:service:...), in `out`. */
static void s_arn_service(const char *arn, char *out, size_t len)
{
    out[0] = 0;
    if (strncmp(arn, "arn:", 4) != 0)
        return;
    const char *p = strchr(arn + 4, ':');
    const char *q = p ? strchr(p + 1, ':') : NULL;
    if (q && (size_t)(q - p - 1) < len)
        snprintf(out, len, "%.*s", (int)(q - p - 1), p + 1);
}

static int s_resolve_kinesis(const struct s_ctx *c, const char *name, char **out)
{
    *out = NULL;
    json_t *body = json_pack("{s:s}", "StreamName", name);
    struct s_reply r;
    int rc = body ? s_call(c, "kinesis", "DescribeStreamSummary", body, &r) : -1;
    json_decref(body);
    if (!body) {
        fprintf(stderr, "fanout %s: out of memory\n", c->cmd->name);
        return CLI_FAILED;
    }
    if (rc != 0) {
        if (s_is(&r, "ResourceNotFoundException")) {
            fprintf(stderr,
                    "fanout %s: --source %s: there is no Kinesis stream \"%s\" in this "
                    "account and region (%s)\n",
                    c->cmd->name, name, name, r.message[0] ? r.message : r.code);
            return CLI_FAILED;
        }
        char what[320];
        snprintf(what, sizeof what, "--source %s: Kinesis DescribeStreamSummary", name);
        return s_failed(&(struct s_ctx){c->cmd, NULL, c->region}, what, &r);
    }
    const char *arn = json_string_value(
        json_object_get(json_object_get(r.json, "StreamDescriptionSummary"), "StreamARN"));
    if (arn && *arn) {
        if (!(*out = strdup(arn)))
            fprintf(stderr, "fanout %s: out of memory\n", c->cmd->name);
    } else {
        fprintf(stderr,
                "fanout %s: --source %s: the DescribeStreamSummary answer has no "
                "StreamDescriptionSummary.StreamARN\n",
                c->cmd->name, name);
    }
    json_decref(r.json);
    return *out ? CLI_OK : CLI_FAILED;
}

static int s_resolve_dynamodb(const struct s_ctx *c, const char *name, char **out)
{
    *out = NULL;
    json_t *body = json_pack("{s:s}", "TableName", name);
    struct s_reply r;
    int rc = body ? s_call(c, "dynamodb", "DescribeTable", body, &r) : -1;
    json_decref(body);
    if (!body) {
        fprintf(stderr, "fanout %s: out of memory\n", c->cmd->name);
        return CLI_FAILED;
    }
    if (rc != 0) {
        if (s_is(&r, "ResourceNotFoundException")) {
            fprintf(stderr,
                    "fanout %s: --source %s: there is no DynamoDB table \"%s\" in this "
                    "account and region (%s)\n",
                    c->cmd->name, name, name, r.message[0] ? r.message : r.code);
            return CLI_FAILED;
        }
        char what[320];
        snprintf(what, sizeof what, "--source %s: DynamoDB DescribeTable", name);
        return s_failed(&(struct s_ctx){c->cmd, NULL, c->region}, what, &r);
    }
    const json_t *t = json_object_get(r.json, "Table");
    const json_t *enabled =
        json_object_get(json_object_get(t, "StreamSpecification"), "StreamEnabled");
    const char *arn = json_string_value(json_object_get(t, "LatestStreamArn"));
    if (arn && *arn && !json_is_false(enabled)) {
        if (!(*out = strdup(arn)))
            fprintf(stderr, "fanout %s: out of memory\n", c->cmd->name);
    } else {
        fprintf(stderr,
                "fanout %s: --source %s: the DynamoDB table \"%s\" has %s stream; enable "
                "DynamoDB Streams on it (StreamEnabled true, StreamViewType NEW_IMAGE or "
                "NEW_AND_OLD_IMAGES), or give the stream with --source-arn\n",
                c->cmd->name, name, name, arn && *arn ? "a disabled" : "no");
    }
    json_decref(r.json);
    return *out ? CLI_OK : CLI_FAILED;
}

/* The source ARN from --source-arn, or --source with --source-type (asking
 * Kinesis or DynamoDB). *out is NULL when no source was given and none is
 * `required`; otherwise malloc'd. Returns a CLI_ status, with the message
 * printed. */
static int s_source(const struct s_ctx *c, const struct s_args *a, int required, char **out)
{
    const struct s_command *cmd = c->cmd;
    *out = NULL;
    if (a->source_arn && a->source)
        return s_usage_error(cmd,
                             "give the source once: --source-arn ARN, or --source NAME "
                             "--source-type kinesis|dynamodb");
    if (a->source_type && strcmp(a->source_type, "kinesis") != 0 &&
        strcmp(a->source_type, "dynamodb") != 0)
        return s_usage_error(cmd, "--source-type expects kinesis or dynamodb, got \"%s\"",
                             a->source_type);
    if (a->source_arn) {
        /* seed scripts pass --source-type with --source-arn too: it must agree */
        char service[32];
        s_arn_service(a->source_arn, service, sizeof service);
        if (a->source_type && strcmp(service, a->source_type) != 0)
            return s_usage_error(
                cmd, "--source-arn %s is not a %s ARN (--source-type %s)", a->source_arn,
                strcmp(a->source_type, "kinesis") ? "DynamoDB stream" : "Kinesis stream",
                a->source_type);
        *out = strdup(a->source_arn);
        return *out ? CLI_OK : CLI_FAILED;
    }
    if (a->source) {
        if (!a->source_type)
            return s_usage_error(cmd, "--source %s needs --source-type kinesis|dynamodb",
                                 a->source);
        if (!*a->source)
            return s_usage_error(cmd, "--source must not be empty");
        return strcmp(a->source_type, "kinesis") == 0
                   ? s_resolve_kinesis(c, a->source, out)
                   : s_resolve_dynamodb(c, a->source, out);
    }
    if (a->source_type)
        return s_usage_error(cmd, "--source-type goes with --source NAME");
    if (required)
        return s_usage_error(cmd, "the source is required: --source-arn ARN, or --source "
                                  "NAME --source-type kinesis|dynamodb");
    return CLI_OK;
}

/* ---- setup ---------------------------------------------------------------- */

static int s_table_ok(const char *t)
{
    size_t n = strlen(t);
    if (strncmp(t, "arn:", 4) == 0)
        return n <= 1024 && strstr(t, ":table/") != NULL;
    if (n < S_TABLE_MIN || n > S_TABLE_MAX)
        return 0;
    for (; *t; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') ||
              (*t >= '0' && *t <= '9') || *t == '_' || *t == '.' || *t == '-'))
            return 0;
    return 1;
}

/* arn:<partition>:<service>:<region>:<account>:<prefix><name>: the name
 * (up to the next ':' when `colon_ends`) and the region. */
static int s_arn_name(const char *arn, const char *service, const char *prefix,
                      int colon_ends, char *name, size_t name_len, char *region,
                      size_t region_len)
{
    char svc[32];
    s_arn_service(arn, svc, sizeof svc);
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

int fanout_cli_table(const char *table, const char *table_arn, const char *function,
                     const char *function_arn, char *buf, size_t len, char *region,
                     size_t region_len, char *err, size_t err_len)
{
    char name[S_TABLE_MAX + 16];
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
    if (arn) {
        if (s_arn_name(arn, "dynamodb", "table/", 0, name, sizeof name, region,
                       region_len) != 0) {
            snprintf(err, err_len,
                     "\"%s\" is not a DynamoDB table ARN "
                     "(arn:aws:dynamodb:REGION:ACCOUNT:table/NAME)",
                     arn);
            return -1;
        }
        snprintf(buf, len, "%s", name);
        return 0;
    }
    /* the table wins over the function, as with aws-lambda-fanout */
    if (table) {
        snprintf(buf, len, "%s", table);
        return 0;
    }
    if (function_arn) {
        char fregion[64];
        if (s_arn_name(function_arn, "lambda", "function:", 1, name, sizeof name, fregion,
                       sizeof fregion) != 0) {
            snprintf(err, err_len,
                     "\"%s\" is not a Lambda function ARN "
                     "(arn:aws:lambda:REGION:ACCOUNT:function:NAME)",
                     function_arn);
            return -1;
        }
        snprintf(buf, len, "%sTargets", name);
        return 0;
    }
    if (function) {
        snprintf(buf, len, "%sTargets", function);
        return 0;
    }
    return 1;
}

/* The table (in buf; the region of a table ARN in `region`), and the AWS
 * layer pointed where the flags say. */
static int s_setup(const struct s_command *cmd, const struct s_args *a, char *buf,
                   size_t len, char *region, size_t region_len)
{
    char err[512];
    int t = fanout_cli_table(a->table, a->table_arn, a->function, a->function_arn, buf, len,
                             region, region_len, err, sizeof err);
    if (t < 0)
        return s_usage_error(cmd, "%s", err);
    if (t > 0 && !fanout_store_ddb_table_name(buf, len, err, sizeof err)) {
        /* aws-lambda-fanout's default, and its words */
        snprintf(buf, len, "fanoutTargets");
        fprintf(stderr,
                "fanout %s: no function name provided, using default name 'fanout' (table "
                "fanoutTargets)\n",
                cmd->name);
    }
    if (a->debug) {
        setenv("FANOUT_LOG_LEVEL", "debug", 1);
        fanout_log_init();
    }
    if (a->no_verify_ssl) {
        fprintf(stderr,
                "fanout %s: warning: --no-verify-ssl: TLS certificates are not "
                "verified for this command's AWS requests; anyone on the network path "
                "can read and change them\n",
                cmd->name);
        fanout_aws_set_tls_no_verify(1);
    }
    if (!s_table_ok(buf))
        return s_usage_error(cmd,
                             "\"%s\" is not a DynamoDB table name (%d to %d of "
                             "[A-Za-z0-9_.-]) or table ARN",
                             buf, S_TABLE_MIN, S_TABLE_MAX);
    if (a->region && !*a->region)
        return s_usage_error(cmd, "--region must not be empty");
    if (a->profile) {
        if (!*a->profile)
            return s_usage_error(cmd, "--profile must not be empty");
        setenv("AWS_PROFILE", a->profile, 1);
    }
    if (a->endpoint_url) {
        if (strncmp(a->endpoint_url, "http://", 7) != 0 &&
            strncmp(a->endpoint_url, "https://", 8) != 0)
            return s_usage_error(cmd,
                                 "--endpoint-url expects http(s)://host[:port], got "
                                 "\"%s\"",
                                 a->endpoint_url);
        /* The services' own variables, not AWS_ENDPOINT_URL: the flag must
         * win over AWS_ENDPOINT_URL_<SERVICE> from the environment, and STS
         * (a profile's role) keeps its endpoint, as with the AWS CLI. */
        setenv("AWS_ENDPOINT_URL_DYNAMODB", a->endpoint_url, 1);
        setenv("AWS_ENDPOINT_URL_KINESIS", a->endpoint_url, 1);
        unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    }
    return CLI_OK;
}

/* ---- mappings --------------------------------------------------------------- */

/* A mapping object in the schema's order, then the plugin options sorted:
 * what `list` shows and what a mapping file holds. New reference. */
static int s_cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static json_t *s_ordered(const json_t *obj)
{
    json_t *o = json_object();
    size_t n = json_object_size(obj), extra = 0;
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    if (!o || !keys) {
        json_decref(o);
        free(keys);
        return NULL;
    }
    for (const char *const *f = fanout_mapping_fields; *f; f++) {
        json_t *v = json_object_get(obj, *f);
        if (v)
            json_object_set(o, *f, v);
    }
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)obj, key, v) {
        if (!json_object_get(o, key))
            keys[extra++] = key;
    }
    qsort(keys, extra, sizeof *keys, s_cmp_str);
    for (size_t i = 0; i < extra; i++)
        json_object_set(o, keys[i], json_object_get(obj, keys[i]));
    free(keys);
    return o;
}

/* An item as plain JSON whatever its types, so that a mapping stored with
 * the wrong types can still be listed and repaired with `update`. */
static json_t *s_item_plain(const json_t *item, char *err, size_t err_len)
{
    struct fanout_buf b = {0};
    if (fanout_ddb_image_to_json(item, 1, &b, err, err_len) != 0) {
        fanout_buf_free(&b);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(b.ptr ? (const char *)b.ptr : "", b.len, 0, &je);
    fanout_buf_free(&b);
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(err, err_len, "the item does not read as a JSON object: %s", je.text);
        return NULL;
    }
    return j;
}

/* A throwaway engine over an empty mapping document, to run its plugin
 * checks (fanout_engine_check_mapping needs an engine, and an engine a
 * mapping store). The document is in memory, never on disk. */
static struct fanout_engine *s_check_engine(char *err, size_t err_len)
{
    struct fanout_engine_config cfg;
    if (fanout_engine_config_from_env(&cfg, err, err_len) != 0)
        return NULL;
    int fd = memfd_create("fanout-no-mappings", MFD_CLOEXEC);
    if (fd < 0 || write(fd, "[]", 2) != 2) {
        snprintf(err, err_len, "memfd_create: %m");
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    cfg.config_path = path;
    cfg.plugin_path = NULL;
    struct fanout_engine *e = fanout_engine_new(&cfg, NULL, err, err_len);
    close(fd);
    return e;
}

/* The checks the engine runs on a mapping with its plugin: collapse mode,
 * options, the plugin's destination validator. A plugin not installed here
 * (or refused) is a warning: the engine's own may differ. Returns CLI_OK or
 * CLI_USAGE (message printed). */
static int s_plugin_check(const struct s_command *cmd, const struct fanout_mapping *m)
{
    /* the loader's own log lines would repeat what is printed here */
    int devnull = -1;
    if (!fanout_log_enabled(FANOUT_LOG_DEBUG)) {
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull >= 0)
            fanout_log_set_fd(devnull);
    }
    char err[1024], why[512];
    int rc = CLI_OK;
    struct fanout_engine *e = s_check_engine(err, sizeof err);
    if (!e)
        fprintf(stderr,
                "fanout %s: warning: cannot load plugins to check mapping \"%s\" (%s); it "
                "was checked against the mapping schema only\n",
                cmd->name, m->id, err);
    else if (!fanout_loader_get(fanout_engine_loader(e), m->type, why, sizeof why))
        fprintf(stderr,
                "fanout %s: warning: %s; mapping \"%s\" was checked against the mapping "
                "schema only, not by the plugin\n",
                cmd->name, why, m->id);
    else if (fanout_engine_check_mapping(e, m, err, sizeof err) != 0) {
        fprintf(stderr, "fanout %s: %s\n", cmd->name, err);
        rc = CLI_USAGE;
    }
    /* settings aws-lambda-fanout ignored for this type: invoke ignores them
     * too, and says so */
    if (rc == CLI_OK && m->ignored)
        fprintf(stderr, "fanout %s: warning: %s\n", cmd->name, m->ignored);
    fanout_engine_destroy(e);
    if (devnull >= 0) {
        fanout_log_set_fd(-1);
        close(devnull);
    }
    return rc;
}

/* How many mapping fields the flags give. */
static size_t s_count_fields(const struct s_args *a)
{
    size_t n = 0;
    for (size_t i = 0; i < S_FLAG_COUNT; i++) {
        const struct s_flag *f = &s_flags[i];
        if (f->field)
            n += f->kind == S_BOOL ? s_bool_of(a, f) >= 0 : s_string_of(a, f) != NULL;
    }
    return n;
}

/* Set (or, for an empty value of an optional field, remove) the mapping
 * fields the flags give. */
static void s_apply_fields(const struct s_args *a, json_t *obj)
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
            if (!*s && f->optional)
                json_object_del(obj, f->field);
            else
                json_object_set_new(obj, f->field, json_string(s));
        }
    }
}

/* Validate `obj` as the engine will, then write it: PutItem under
 * `condition`. On a failed condition, `conflict` is printed. */
static int s_put(const struct s_ctx *c, const json_t *obj, const char *condition,
                 const char *conflict, const char *what)
{
    char err[1024];
    struct fanout_mapping *m = fanout_mapping_parse(obj, 0, err, sizeof err);
    if (!m) {
        fprintf(stderr, "fanout %s: %s; nothing was written\n", c->cmd->name, err);
        return CLI_USAGE;
    }
    int rc = s_plugin_check(c->cmd, m);
    json_t *item = rc == CLI_OK ? fanout_mapping_to_item(m) : NULL;
    if (rc == CLI_OK && !item) {
        fprintf(stderr, "fanout %s: out of memory\n", c->cmd->name);
        rc = CLI_FAILED;
    }
    if (rc == CLI_OK) {
        json_t *body = json_pack("{s:s, s:O, s:s}", "TableName", c->table, "Item", item,
                                 "ConditionExpression", condition);
        struct s_reply r;
        if (!body) {
            fprintf(stderr, "fanout %s: out of memory\n", c->cmd->name);
            rc = CLI_FAILED;
        } else if (s_call(c, "dynamodb", "PutItem", body, &r) != 0) {
            if (s_is(&r, "ConditionalCheckFailedException")) {
                fprintf(stderr, "fanout %s: %s\n", c->cmd->name, conflict);
                rc = CLI_FAILED;
            } else {
                rc = s_failed(c, what, &r);
            }
        } else {
            json_decref(r.json);
        }
        json_decref(body);
    }
    json_decref(item);
    fanout_mapping_free(m);
    return rc;
}

/* ---- commands -------------------------------------------------------------- */

/* Flags, table, AWS setup and source, common to the commands. */
struct s_prepared {
    struct s_ctx ctx;
    char table[1100];
    char table_region[64]; /* of --table-arn, when --region is not given */
    char *source_arn;
};

static int s_prepare(const struct s_command *cmd, const struct s_args *a, int need_source,
                     struct s_prepared *p)
{
    memset(p, 0, sizeof *p);
    p->ctx.cmd = cmd;
    p->ctx.region = a->region;
    int rc =
        s_setup(cmd, a, p->table, sizeof p->table, p->table_region, sizeof p->table_region);
    if (rc != CLI_OK)
        return rc;
    if (!a->region && p->table_region[0])
        p->ctx.region = p->table_region;
    p->ctx.table = p->table;
    if ((cmd->bit & (S_REGISTER | S_KEYED)) && !a->id)
        return s_usage_error(cmd, "--id ID is required");
    if (a->id && !*a->id)
        return s_usage_error(cmd, "--id must not be empty");
    return s_source(&p->ctx, a, need_source, &p->source_arn);
}

static int s_cmd_register(const struct s_command *cmd, const struct s_args *a)
{
    if (!a->type)
        return s_usage_error(cmd, "the plugin type is required: fanout register <type> "
                                  "... (e.g. sqs, kinesis, file)");
    if (!a->destination)
        return s_usage_error(cmd, "--destination DEST is required");
    struct s_prepared p;
    int rc = s_prepare(cmd, a, 1, &p);
    if (rc != CLI_OK) {
        free(p.source_arn);
        return rc;
    }
    /* the engine matches records by their stream's ARN: a table's own ARN
     * would never match */
    char service[32];
    s_arn_service(p.source_arn, service, sizeof service);
    if (!strcmp(service, "dynamodb") && !strstr(p.source_arn, "/stream/")) {
        rc = s_usage_error(cmd,
                           "--source-arn %s is a DynamoDB table, not its stream: give the "
                           "stream ARN (.../table/NAME/stream/LABEL), or --source NAME "
                           "--source-type dynamodb",
                           p.source_arn);
        free(p.source_arn);
        return rc;
    }
    /* a short name (queue, topic, domain, cluster...) becomes what the
     * original CLI stored, looked up as it did */
    char *dest = NULL;
    const struct fanout_cli_dest d = {cmd->name,          a->type,        a->destination,
                                      a->index,           a->dest_region, a->region,
                                      a->role && *a->role};
    rc = fanout_cli_resolve_destination(&d, &dest);
    if (rc != CLI_OK) {
        free(p.source_arn);
        return rc;
    }
    json_t *obj = json_pack("{s:s, s:s, s:s}", "sourceArn", p.source_arn, "id", a->id,
                            "type", a->type);
    if (!obj) {
        free(dest);
        free(p.source_arn);
        fprintf(stderr, "fanout register: out of memory\n");
        return CLI_FAILED;
    }
    /* aws-lambda-fanout's register wrote collapse "none" when --collapse
     * was not given: the same command makes the same mapping */
    if (!a->collapse)
        json_object_set_new(obj, "collapse", json_string("none"));
    s_apply_fields(a, obj);
    json_object_set_new(obj, "destination", json_string(dest));
    free(dest);
    if (!json_object_get(obj, "active"))
        json_object_set_new(obj, "active", json_false());
    char conflict[1536];
    snprintf(conflict, sizeof conflict,
             "mapping \"%s\" already exists for %s in table \"%s\"; change it with "
             "fanout update, or unregister it first",
             a->id, p.source_arn, p.table);
    rc = s_put(&p.ctx, obj, "attribute_not_exists(id)", conflict, "DynamoDB PutItem");
    if (rc == CLI_OK)
        printf("registered mapping \"%s\" (%s) for %s in table \"%s\" (%s)\n", a->id,
               a->type, p.source_arn, p.table,
               json_is_true(json_object_get(obj, "active")) ? "active" : "inactive");
    json_decref(obj);
    free(p.source_arn);
    return rc;
}

static void s_print_missing(const struct s_prepared *p, const char *id)
{
    fprintf(stderr,
            "fanout %s: there is no mapping \"%s\" for %s in table \"%s\" (fanout list "
            "shows the mappings; fanout register creates one)\n",
            p->ctx.cmd->name, id, p->source_arn, p->table);
}

static int s_cmd_update(const struct s_command *cmd, const struct s_args *a)
{
    if (!s_count_fields(a))
        return s_usage_error(cmd, "nothing to change: give at least one of --destination, "
                                  "--active, --destination-role-arn, --external-id, "
                                  "--destination-region, --collapse, --parallel, "
                                  "--convert-ddb, --deaggregate, --append-newlines");
    struct s_prepared p;
    int rc = s_prepare(cmd, a, 1, &p);
    if (rc != CLI_OK) {
        free(p.source_arn);
        return rc;
    }
    json_t *body = json_pack("{s:s, s:o, s:b}", "TableName", p.table, "Key",
                             s_key(p.source_arn, a->id), "ConsistentRead", 1);
    struct s_reply r = {0};
    if (!body) {
        fprintf(stderr, "fanout update: out of memory\n");
        rc = CLI_FAILED;
    } else if (s_call(&p.ctx, "dynamodb", "GetItem", body, &r) != 0) {
        rc = s_failed(&p.ctx, "DynamoDB GetItem", &r);
    }
    json_decref(body);
    const json_t *item = r.json ? json_object_get(r.json, "Item") : NULL;
    if (rc == CLI_OK && !item) {
        s_print_missing(&p, a->id);
        rc = CLI_FAILED;
    }
    json_t *obj = NULL;
    if (rc == CLI_OK) {
        char err[512];
        obj = s_item_plain(item, err, sizeof err);
        if (!obj) {
            fprintf(stderr,
                    "fanout update: mapping \"%s\" in table \"%s\" cannot be read: %s\n",
                    a->id, p.table, err);
            rc = CLI_FAILED;
        }
    }
    if (rc == CLI_OK && a->destination) {
        /* a new destination by short name: looked up as register does */
        const char *type = json_string_value(json_object_get(obj, "type"));
        const json_t *role = json_object_get(obj, "role");
        char *dest = NULL;
        const struct fanout_cli_dest d = {
            cmd->name,
            type ? type : "",
            a->destination,
            NULL,
            a->dest_region ? a->dest_region
                           : json_string_value(json_object_get(obj, "region")),
            a->region,
            a->role ? *a->role != 0 : json_is_string(role)};
        rc = fanout_cli_resolve_destination(&d, &dest);
        if (rc == CLI_OK) {
            s_apply_fields(a, obj);
            json_object_set_new(obj, "destination", json_string(dest));
        }
        free(dest);
    } else if (rc == CLI_OK) {
        s_apply_fields(a, obj);
    }
    if (rc == CLI_OK) {
        char conflict[1536];
        snprintf(conflict, sizeof conflict,
                 "mapping \"%s\" for %s was unregistered while it was being updated", a->id,
                 p.source_arn);
        rc = s_put(&p.ctx, obj, "attribute_exists(id)", conflict, "DynamoDB PutItem");
        if (rc == CLI_OK)
            printf("updated mapping \"%s\" for %s in table \"%s\"\n", a->id, p.source_arn,
                   p.table);
    }
    json_decref(obj);
    json_decref(r.json);
    free(p.source_arn);
    return rc;
}

static int s_cmd_set_active(const struct s_command *cmd, const struct s_args *a)
{
    int active = cmd->bit == S_ACTIVATE;
    struct s_prepared p;
    int rc = s_prepare(cmd, a, 1, &p);
    if (rc != CLI_OK) {
        free(p.source_arn);
        return rc;
    }
    json_t *body =
        json_pack("{s:s, s:o, s:s, s:s, s:{s:{s:b}}}", "TableName", p.table, "Key",
                  s_key(p.source_arn, a->id), "UpdateExpression", "SET active = :active",
                  "ConditionExpression", "attribute_exists(id)",
                  "ExpressionAttributeValues", ":active", "BOOL", active);
    struct s_reply r;
    if (!body) {
        fprintf(stderr, "fanout %s: out of memory\n", cmd->name);
        rc = CLI_FAILED;
    } else if (s_call(&p.ctx, "dynamodb", "UpdateItem", body, &r) != 0) {
        if (s_is(&r, "ConditionalCheckFailedException")) {
            s_print_missing(&p, a->id);
            rc = CLI_FAILED;
        } else {
            rc = s_failed(&p.ctx, "DynamoDB UpdateItem", &r);
        }
    } else {
        json_decref(r.json);
        printf("mapping \"%s\" for %s is now %s\n", a->id, p.source_arn,
               active ? "active" : "inactive");
    }
    json_decref(body);
    free(p.source_arn);
    return rc;
}

static int s_cmd_unregister(const struct s_command *cmd, const struct s_args *a)
{
    struct s_prepared p;
    int rc = s_prepare(cmd, a, 1, &p);
    if (rc != CLI_OK) {
        free(p.source_arn);
        return rc;
    }
    json_t *body = json_pack("{s:s, s:o, s:s}", "TableName", p.table, "Key",
                             s_key(p.source_arn, a->id), "ConditionExpression",
                             "attribute_exists(id)");
    struct s_reply r;
    if (!body) {
        fprintf(stderr, "fanout unregister: out of memory\n");
        rc = CLI_FAILED;
    } else if (s_call(&p.ctx, "dynamodb", "DeleteItem", body, &r) != 0) {
        if (s_is(&r, "ConditionalCheckFailedException")) {
            s_print_missing(&p, a->id);
            rc = CLI_FAILED;
        } else {
            rc = s_failed(&p.ctx, "DynamoDB DeleteItem", &r);
        }
    } else {
        json_decref(r.json);
        printf("unregistered mapping \"%s\" for %s from table \"%s\"\n", a->id,
               p.source_arn, p.table);
    }
    json_decref(body);
    free(p.source_arn);
    return rc;
}

/* ---- list ------------------------------------------------------------------ */

struct s_row {
    json_t *obj;   /* the mapping, in the schema's order */
    char *problem; /* why it is invalid, or NULL */
    char *note;    /* settings ignored, or why the plugin did not check it */
};

struct s_rows {
    struct s_row *v;
    size_t count;
    size_t cap;
    size_t unreadable;
    /* the plugin checks `invoke` runs (s_check_engine), when it loads */
    struct fanout_engine *e;
    int e_tried;
    char e_err[512];
};

/* The verdict of `invoke` on a mapping that passed the schema: its plugin's
 * checks (problem), or a note when they cannot run here. */
static void s_rows_check(struct s_rows *rows, const struct fanout_mapping *m, char *problem,
                         size_t problem_len, struct fanout_buf *note)
{
    char why[512], qid[FANOUT_QUOTE_SIZE];
    const char *id = fanout_quote(qid, m->id);
    /* the loader's own log lines would repeat what is printed here */
    int devnull = -1;
    if (!fanout_log_enabled(FANOUT_LOG_DEBUG)) {
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull >= 0)
            fanout_log_set_fd(devnull);
    }
    if (!rows->e_tried) {
        rows->e_tried = 1;
        rows->e = s_check_engine(rows->e_err, sizeof rows->e_err);
    }
    if (!rows->e)
        fanout_buf_appendf(note,
                           "%smapping \"%s\": not checked by its plugin: plugins cannot be "
                           "loaded here (%s); checked against the mapping schema only",
                           note->len ? "; " : "", id, rows->e_err);
    else if (!fanout_loader_get(fanout_engine_loader(rows->e), m->type, why, sizeof why))
        fanout_buf_appendf(note,
                           "%smapping \"%s\": not checked by its plugin: plugin \"%s\" is "
                           "not installed here (%s); checked against the mapping schema "
                           "only (invoke refuses it where the plugin is missing too)",
                           note->len ? "; " : "", id, m->type, why);
    else if (fanout_engine_check_mapping(rows->e, m, problem, problem_len) != 0 &&
             !problem[0])
        snprintf(problem, problem_len, "mapping \"%s\": refused by its plugin", id);
    if (devnull >= 0) {
        fanout_log_set_fd(-1);
        close(devnull);
    }
}

static int s_rows_add(struct s_rows *rows, const json_t *item, size_t index)
{
    char problem[1024] = "";
    struct fanout_buf note = {0};
    struct fanout_mapping *m =
        fanout_mapping_from_item(item, index, problem, sizeof problem);
    int valid = m != NULL;
    json_t *plain;
    if (valid) {
        if (m->ignored)
            fanout_buf_appendf(&note, "%s", m->ignored);
        s_rows_check(rows, m, problem, sizeof problem, &note);
        valid = problem[0] == 0;
        plain = json_incref(m->json);
        fanout_mapping_free(m);
    } else {
        char why[512];
        plain = s_item_plain(item, why, sizeof why);
        if (!plain) {
            /* not even loosely readable: say so, list the others */
            fprintf(stderr, "fanout list: invalid: %s (and the item cannot be shown: %s)\n",
                    problem, why);
            rows->unreadable++;
            return 0;
        }
    }
    json_t *obj = s_ordered(plain);
    json_decref(plain);
    if (obj && rows->count == rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 64;
        void *v = realloc(rows->v, cap * sizeof *rows->v);
        if (!v) {
            json_decref(obj);
            return -1;
        }
        rows->v = v;
        rows->cap = cap;
    }
    if (!obj) {
        fanout_buf_free(&note);
        return -1;
    }
    rows->v[rows->count].obj = obj;
    rows->v[rows->count].problem = valid ? NULL : strdup(problem);
    rows->v[rows->count].note = note.len ? (char *)note.ptr : NULL;
    if (!note.len)
        fanout_buf_free(&note);
    if (!valid && !rows->v[rows->count].problem) {
        json_decref(obj);
        free(rows->v[rows->count].note);
        return -1;
    }
    rows->count++;
    return 0;
}

static void s_rows_free(struct s_rows *rows)
{
    for (size_t i = 0; i < rows->count; i++) {
        json_decref(rows->v[i].obj);
        free(rows->v[i].problem);
        free(rows->v[i].note);
    }
    free(rows->v);
    fanout_engine_destroy(rows->e);
}

static const char *s_str_or_empty(const json_t *obj, const char *field)
{
    const char *s = json_string_value(json_object_get(obj, field));
    return s ? s : "";
}

static int s_cmp_rows(const void *x, const void *y)
{
    const struct s_row *a = x, *b = y;
    int c =
        strcmp(s_str_or_empty(a->obj, "sourceArn"), s_str_or_empty(b->obj, "sourceArn"));
    return c ? c : strcmp(s_str_or_empty(a->obj, "id"), s_str_or_empty(b->obj, "id"));
}

/* A value as a table cell: strings as they are, the rest as compact JSON. */
static char *s_cell(const json_t *v)
{
    if (!v)
        return strdup("-");
    if (json_is_string(v))
        return strdup(json_string_value(v));
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return s ? s : strdup("?");
}

enum {
    S_COL_ID,
    S_COL_TYPE,
    S_COL_ACTIVE,
    S_COL_DEST,
    S_COL_SOURCE,
    S_COL_OPTIONS,
    S_COLS
};

static void s_print_row(const char *const *row, const size_t *width)
{
    for (int k = 0; k < S_COLS - 1; k++)
        printf("%-*s  ", (int)width[k], row[k]);
    printf("%s\n", row[S_COLS - 1]);
}

static int s_print_table(const struct s_rows *rows)
{
    static const char *const heads[S_COLS] = {"ID",          "TYPE",   "ACTIVE",
                                              "DESTINATION", "SOURCE", "OPTIONS"};
    static const char *const fields[S_COL_OPTIONS] = {"id", "type", "active", "destination",
                                                      "sourceArn"};
    size_t n = rows->count;
    char **cells = calloc(n * S_COLS + 1, sizeof *cells);
    size_t width[S_COLS];
    if (!cells)
        return -1;
    for (int k = 0; k < S_COLS; k++)
        width[k] = strlen(heads[k]);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const json_t *obj = rows->v[i].obj;
        char **row = cells + i * S_COLS;
        for (int k = 0; k < S_COL_OPTIONS; k++)
            row[k] = k == S_COL_ACTIVE && rows->v[i].problem
                         ? strdup("INVALID")
                         : s_cell(json_object_get(obj, fields[k]));
        /* the options set: every field after the five columns */
        struct fanout_buf b = {0};
        const char *key;
        json_t *v;
        json_object_foreach ((json_t *)obj, key, v) {
            int shown = 0;
            for (int k = 0; k < S_COL_OPTIONS; k++)
                shown |= strcmp(key, fields[k]) == 0;
            if (shown)
                continue;
            char *c = s_cell(v);
            fanout_buf_appendf(&b, "%s%s=%s", b.len ? " " : "", key, c ? c : "?");
            free(c);
        }
        row[S_COL_OPTIONS] = b.len ? (char *)b.ptr : strdup("-");
        if (!b.len)
            fanout_buf_free(&b);
        for (int k = 0; k < S_COLS; k++) {
            if (!row[k]) {
                rc = -1;
                break;
            }
            size_t w = strlen(row[k]);
            width[k] = w > width[k] ? w : width[k];
        }
    }
    if (rc == 0) {
        s_print_row(heads, width);
        for (size_t i = 0; i < n; i++)
            s_print_row((const char *const *)cells + i * S_COLS, width);
    }
    for (size_t i = 0; i < n * S_COLS; i++)
        free(cells[i]);
    free(cells);
    return rc;
}

static int s_page_limit(const struct s_command *cmd, long *out)
{
    const char *v = getenv("FANOUT_DDB_PAGE_LIMIT");
    *out = 0;
    if (!v || !*v)
        return CLI_OK;
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < 1 || n > S_PAGE_LIMIT_MAX)
        return s_usage_error(cmd,
                             "FANOUT_DDB_PAGE_LIMIT: expected items per page from 1 to %d, "
                             "got \"%s\"",
                             S_PAGE_LIMIT_MAX, v);
    *out = n;
    return CLI_OK;
}

/* Every item of the table (Scan) or of one source (Query), page by page. */
static int s_read_rows(const struct s_prepared *p, long limit, struct s_rows *rows)
{
    const char *op = p->source_arn ? "Query" : "Scan";
    json_t *start = NULL;
    int rc = CLI_OK;
    for (;;) {
        json_t *body = json_pack("{s:s, s:b}", "TableName", p->table, "ConsistentRead", 1);
        if (body && p->source_arn) {
            json_object_set_new(body, "KeyConditionExpression",
                                json_string("sourceArn = :source"));
            json_object_set_new(body, "ExpressionAttributeValues",
                                json_pack("{s:{s:s}}", ":source", "S", p->source_arn));
        }
        if (body && limit)
            json_object_set_new(body, "Limit", json_integer(limit));
        if (body && start)
            json_object_set(body, "ExclusiveStartKey", start);
        struct s_reply r;
        if (!body) {
            fprintf(stderr, "fanout list: out of memory\n");
            rc = CLI_FAILED;
            break;
        }
        int failed = s_call(&p->ctx, "dynamodb", op, body, &r);
        json_decref(body);
        if (failed) {
            char what[64];
            snprintf(what, sizeof what, "DynamoDB %s", op);
            rc = s_failed(&p->ctx, what, &r);
            break;
        }
        size_t i;
        json_t *item;
        json_array_foreach (json_object_get(r.json, "Items"), i, item) {
            if (s_rows_add(rows, item, rows->count + rows->unreadable) != 0) {
                fprintf(stderr, "fanout list: out of memory\n");
                rc = CLI_FAILED;
                break;
            }
        }
        json_t *next = json_object_get(r.json, "LastEvaluatedKey");
        if (rc != CLI_OK || !json_is_object(next) || json_object_size(next) == 0) {
            json_decref(r.json);
            break;
        }
        if (start && json_equal(start, next)) {
            fprintf(stderr,
                    "fanout list: DynamoDB %s returned the same LastEvaluatedKey twice; "
                    "stopping\n",
                    op);
            json_decref(r.json);
            rc = CLI_FAILED;
            break;
        }
        json_decref(start);
        start = json_incref(next);
        json_decref(r.json);
    }
    json_decref(start);
    return rc;
}

static int s_cmd_list(const struct s_command *cmd, const struct s_args *a)
{
    long limit;
    int rc = s_page_limit(cmd, &limit);
    if (rc != CLI_OK)
        return rc;
    struct s_prepared p;
    rc = s_prepare(cmd, a, 0, &p);
    if (rc != CLI_OK) {
        free(p.source_arn);
        return rc;
    }
    struct s_rows rows = {0};
    rc = s_read_rows(&p, limit, &rows);
    if (rc == CLI_OK) {
        if (rows.count)
            qsort(rows.v, rows.count, sizeof *rows.v, s_cmp_rows);
        size_t active = 0, invalid = 0;
        for (size_t i = 0; i < rows.count; i++) {
            invalid += rows.v[i].problem != NULL;
            active += !rows.v[i].problem &&
                      json_is_true(json_object_get(rows.v[i].obj, "active"));
        }
        if (a->json) {
            json_t *arr = json_array();
            for (size_t i = 0; arr && i < rows.count; i++)
                json_array_append(arr, rows.v[i].obj);
            char *text = arr ? json_dumps(arr, JSON_INDENT(2)) : NULL;
            if (text)
                printf("%s\n", text);
            else
                rc = CLI_FAILED;
            free(text);
            json_decref(arr);
        } else if (rows.count && s_print_table(&rows) != 0) {
            rc = CLI_FAILED;
        }
        if (rc == CLI_FAILED)
            fprintf(stderr, "fanout list: out of memory\n");
        else if (!a->json)
            printf("%s%zu mapping%s (%zu active%s) in table \"%s\"%s%s\n",
                   rows.count ? "\n" : "", rows.count, rows.count == 1 ? "" : "s", active,
                   invalid ? ", some invalid" : "", p.table, p.source_arn ? " for " : "",
                   p.source_arn ? p.source_arn : "");
        for (size_t i = 0; i < rows.count; i++) {
            const json_t *act = json_object_get(rows.v[i].obj, "active");
            if (rows.v[i].problem && json_is_false(act))
                fprintf(stderr,
                        "fanout list: invalid: %s (inactive, so invoke does not use it; "
                        "fix it with fanout update before activating it)\n",
                        rows.v[i].problem);
            else if (rows.v[i].problem)
                fprintf(stderr,
                        "fanout list: invalid: %s (invoke reports every record of its "
                        "source failed until it is fixed with fanout update or "
                        "deactivated; the other targets still get them; with "
                        "FANOUT_SKIP_INVALID_MAPPINGS=true it is skipped instead)\n",
                        rows.v[i].problem);
            if (rows.v[i].note)
                fprintf(stderr, "fanout list: warning: %s\n", rows.v[i].note);
        }
    }
    s_rows_free(&rows);
    free(p.source_arn);
    return rc;
}

/* ---- dispatch ---------------------------------------------------------------- */

#define S_WHERE "(--source-arn ARN | --source NAME --source-type kinesis|dynamodb)"
#define S_GLOBAL                                                                           \
    "           [--table NAME | --table-arn ARN | --function NAME |\n"                     \
    "            --function-arn ARN] [--region REGION] [--profile NAME]\n"                 \
    "           [--endpoint-url URL] [--debug] [--no-verify-ssl]"
#define S_TARGET                                                                           \
    "           [--destination-role-arn ARN [--external-id ID]]\n"                         \
    "           [--destination-region REGION] [--collapse MODE]\n"                         \
    "           [--parallel true|false] [--convert-ddb true|false]\n"                      \
    "           [--deaggregate true|false] [--append-newlines true|false]\n"
#define S_ORDERS "arn:aws:kinesis:us-east-1:123456789012:stream/orders"

static const struct s_command s_commands[] = {
    {"register", S_REGISTER, s_cmd_register,
     "register <type> --id ID --destination DEST\n"
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
     "exist is an error (status 2). Full forms are stored without a lookup.\n",
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
     "      --external-id s3cr3t --parallel false\n"},
    {"list", S_LIST, s_cmd_list,
     "list [--json]\n"
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
    {"update", S_UPDATE, s_cmd_update,
     "update --id ID\n"
     "           " S_WHERE "\n"
     "           [--destination DEST] [--active true|false]\n" S_TARGET S_GLOBAL,
     "Change the given fields of a mapping and keep the others. The result is\n"
     "checked as register checks a new mapping before it is written. An empty\n"
     "value removes an option (e.g. --destination-region \"\").\n",
     "  fanout update --function fanout --source-type kinesis --source orders \\\n"
     "      --id audit --collapse none --parallel false\n"
     "  fanout update --function fanout \\\n"
     "      --source-arn " S_ORDERS " \\\n"
     "      --id replica --destination-role-arn \"\" --external-id \"\"\n"},
    {"activate", S_ACTIVATE, s_cmd_set_active,
     "activate --id ID\n"
     "           " S_WHERE "\n" S_GLOBAL,
     "Make a mapping active: the engine sends the source's records to it (after\n"
     "its mapping cache refreshes, FANOUT_MAPPING_REFRESH_SECONDS).\n",
     "  fanout activate --function fanout --source-type kinesis --source orders \\\n"
     "      --id audit\n"},
    {"deactivate", S_DEACTIVATE, s_cmd_set_active,
     "deactivate --id ID\n"
     "           " S_WHERE "\n" S_GLOBAL,
     "Make a mapping inactive: the engine ignores it, and it stays in the table.\n",
     "  fanout deactivate --function fanout --source-type kinesis --source orders \\\n"
     "      --id audit\n"},
    {"unregister", S_UNREGISTER, s_cmd_unregister,
     "unregister --id ID\n"
     "           " S_WHERE "\n" S_GLOBAL,
     "Delete a mapping from the table.\n",
     "  fanout unregister --function fanout \\\n"
     "      --source-arn " S_ORDERS " \\\n"
     "      --id audit\n"},
};

static const struct s_command *s_find(const char *name)
{
    for (size_t i = 0; i < sizeof s_commands / sizeof *s_commands; i++)
        if (name && strcmp(s_commands[i].name, name) == 0)
            return &s_commands[i];
    return NULL;
}

int fanout_cli_has(const char *name)
{
    return s_find(name) != NULL;
}

int fanout_cli_run(const char *name, int argc, char **argv)
{
    const struct s_command *cmd = s_find(name);
    if (!cmd) {
        fprintf(stderr, "fanout: \"%s\" is not a management command\n", name ? name : "");
        return CLI_USAGE;
    }
    if (s_wants_help(argc, argv)) {
        s_print_help(cmd);
        return CLI_OK;
    }
    struct s_args a;
    int rc = s_parse(cmd, argc, argv, &a);
    return rc != CLI_OK ? rc : cmd->run(cmd, &a);
}
