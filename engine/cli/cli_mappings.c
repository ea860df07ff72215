/* The mapping commands: register, list, update, activate, deactivate,
 * unregister. They edit the mapping table in DynamoDB (hash key sourceArn,
 * range key id, one item per mapping) with the store's own requests
 * (core/ddb_table.h), check a mapping as the engine does before writing it,
 * and take the seed design's flag names so its users' scripts keep
 * working. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "cli/cli_cmd.h"
#include "cli/cli_resolve.h"
#include "common/log.h"
#include "core/ddb.h"
#include "core/ddb_table.h"
#include "core/engine.h"
#include "core/mapping.h"
#include "core/store_ddb.h"

/* ---- requests --------------------------------------------------------------- */

/* What every request of a command needs. */
struct s_ctx {
    const struct cli_command *cmd;
    const char *table;
    const char *region; /* --region, or NULL for the default */
};

static int s_is(const struct fanout_json_reply *r, const char *code)
{
    return strcmp(r->code, code) == 0;
}

static int s_oom(const struct cli_command *cmd)
{
    fprintf(stderr, "fanout %s: out of memory\n", cmd->name);
    return CLI_FAILED;
}

/* A failed request: what was asked, and the service's own code and message. */
static int s_failed(const struct s_ctx *c, const char *what,
                    const struct fanout_json_reply *r)
{
    const char *code = r->code[0] ? r->code : "RequestFailed";
    if (s_is(r, "OutOfMemory"))
        return s_oom(c->cmd);
    if (s_is(r, "ResourceNotFoundException") && c->table)
        fprintf(stderr,
                "fanout %s: %s: the table \"%s\" does not exist (%s%s%s); create it with "
                "hash key sourceArn (S) and range key id (S), or name another with "
                "--table or --function\n",
                c->cmd->name, what, c->table, code, r->message[0] ? ": " : "", r->message);
    else
        fprintf(stderr, "fanout %s: %s failed: %s%s%s\n", c->cmd->name, what, code,
                r->message[0] ? ": " : "", r->message);
    return CLI_FAILED;
}

/* ---- source --------------------------------------------------------------- */

/* The stream of --source NAME: a Kinesis stream's ARN, or a DynamoDB
 * table's LatestStreamArn (its stream must be enabled). */
static int s_resolve_source(const struct s_ctx *c, const char *type, const char *name,
                            char **out)
{
    const char *cmd = c->cmd->name;
    int kinesis = strcmp(type, "kinesis") == 0;
    const char *op = kinesis ? "Kinesis DescribeStreamSummary" : "DynamoDB DescribeTable";
    struct fanout_json_reply r;
    int rc;
    *out = NULL;
    if (kinesis) {
        json_t *body = json_pack("{s:s}", "StreamName", name);
        rc = fanout_json_call("kinesis", "1.1", "Kinesis_20131202.DescribeStreamSummary",
                              c->region, body, &r);
        json_decref(body);
    } else {
        rc = fanout_ddb_describe_table(c->region, name, &r);
    }
    if (rc != 0 && s_is(&r, "ResourceNotFoundException")) {
        fprintf(stderr,
                "fanout %s: --source %s: there is no %s \"%s\" in this account and region "
                "(%s)\n",
                cmd, name, kinesis ? "Kinesis stream" : "DynamoDB table", name,
                r.message[0] ? r.message : r.code);
        return CLI_FAILED;
    }
    if (rc != 0) {
        char what[320];
        snprintf(what, sizeof what, "--source %s: %s", name, op);
        return s_failed(&(struct s_ctx){c->cmd, NULL, c->region}, what, &r);
    }
    const json_t *t =
        json_object_get(r.json, kinesis ? "StreamDescriptionSummary" : "Table");
    const char *arn =
        json_string_value(json_object_get(t, kinesis ? "StreamARN" : "LatestStreamArn"));
    int enabled =
        kinesis || !json_is_false(json_object_get(json_object_get(t, "StreamSpecification"),
                                                  "StreamEnabled"));
    if (arn && *arn && enabled) {
        if (!(*out = strdup(arn)))
            s_oom(c->cmd);
    } else if (kinesis) {
        fprintf(stderr,
                "fanout %s: --source %s: the DescribeStreamSummary answer has no "
                "StreamDescriptionSummary.StreamARN\n",
                cmd, name);
    } else {
        fprintf(stderr,
                "fanout %s: --source %s: the DynamoDB table \"%s\" has %s stream; enable "
                "DynamoDB Streams on it (StreamEnabled true, StreamViewType NEW_IMAGE or "
                "NEW_AND_OLD_IMAGES), or give the stream with --source-arn\n",
                cmd, name, name, arn && *arn ? "a disabled" : "no");
    }
    json_decref(r.json);
    return *out ? CLI_OK : CLI_FAILED;
}

/* The source ARN from --source-arn, or --source with --source-type (asking
 * Kinesis or DynamoDB). *out is NULL when no source was given and none is
 * `required`; otherwise malloc'd. Returns a CLI_ status, with the message
 * printed. */
static int s_source(const struct s_ctx *c, const struct cli_args *a, int required,
                    char **out)
{
    const struct cli_command *cmd = c->cmd;
    *out = NULL;
    if (a->source_arn && a->source)
        return cli_usage_error(cmd,
                               "give the source once: --source-arn ARN, or --source NAME "
                               "--source-type kinesis|dynamodb");
    if (a->source_type && strcmp(a->source_type, "kinesis") != 0 &&
        strcmp(a->source_type, "dynamodb") != 0)
        return cli_usage_error(cmd, "--source-type expects kinesis or dynamodb, got \"%s\"",
                               a->source_type);
    if (a->source_arn) {
        /* seed scripts pass --source-type with --source-arn too: it must agree */
        char service[32];
        cli_arn_service(a->source_arn, service, sizeof service);
        if (a->source_type && strcmp(service, a->source_type) != 0)
            return cli_usage_error(
                cmd, "--source-arn %s is not a %s ARN (--source-type %s)", a->source_arn,
                strcmp(a->source_type, "kinesis") ? "DynamoDB stream" : "Kinesis stream",
                a->source_type);
        *out = strdup(a->source_arn);
        return *out ? CLI_OK : CLI_FAILED;
    }
    if (a->source) {
        if (!a->source_type)
            return cli_usage_error(cmd, "--source %s needs --source-type kinesis|dynamodb",
                                   a->source);
        if (!*a->source)
            return cli_usage_error(cmd, "--source must not be empty");
        return s_resolve_source(c, a->source_type, a->source, out);
    }
    if (a->source_type)
        return cli_usage_error(cmd, "--source-type goes with --source NAME");
    if (required)
        return cli_usage_error(cmd, "the source is required: --source-arn ARN, or --source "
                                    "NAME --source-type kinesis|dynamodb");
    return CLI_OK;
}

/* ---- setup ---------------------------------------------------------------- */

/* The table (in buf; the region of a table ARN in `region`), and the AWS
 * layer pointed where the flags say. */
static int s_setup(const struct cli_command *cmd, const struct cli_args *a, char *buf,
                   size_t len, char *region, size_t region_len)
{
    char err[512];
    int t = cli_table(a->table, a->table_arn, a->function, a->function_arn, buf, len,
                      region, region_len, err, sizeof err);
    if (t < 0)
        return cli_usage_error(cmd, "%s", err);
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
    if (!fanout_ddb_table_ok(buf))
        return cli_usage_error(cmd,
                               "\"%s\" is not a DynamoDB table name (%d to %d of "
                               "[A-Za-z0-9_.-]) or table ARN",
                               buf, FANOUT_DDB_TABLE_MIN, FANOUT_DDB_TABLE_MAX);
    if (a->region && !*a->region)
        return cli_usage_error(cmd, "--region must not be empty");
    if (a->profile) {
        if (!*a->profile)
            return cli_usage_error(cmd, "--profile must not be empty");
        setenv("AWS_PROFILE", a->profile, 1);
    }
    if (a->endpoint_url) {
        if (strncmp(a->endpoint_url, "http://", 7) != 0 &&
            strncmp(a->endpoint_url, "https://", 8) != 0)
            return cli_usage_error(cmd,
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
    struct fanout_sbuf b = {0};
    if (fanout_ddb_image_to_json(item, 1, &b, err, err_len) != 0) {
        fanout_sbuf_free(&b);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(b.bytes ? (const char *)b.bytes : "", b.len, 0, &je);
    fanout_sbuf_free(&b);
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(err, err_len, "the item does not read as a JSON object: %s", je.text);
        return NULL;
    }
    return j;
}

/* The checks invoke runs on a mapping with its plugin (collapse mode,
 * options, the plugin's destination validator), with the plugins
 * installed here, loaded once per command. */
struct s_checker {
    struct fanout_loader *loader;
    int tried;
    char err[512]; /* why there is no loader */
};

enum s_verdict {
    S_CHECKED,   /* the plugin accepts the mapping */
    S_REFUSED,   /* it does not: why */
    S_NO_LOADER, /* plugins cannot be loaded here: why */
    S_NO_PLUGIN, /* this one is not installed (or refused): why */
};

static enum s_verdict s_check(struct s_checker *k, const struct fanout_mapping *m,
                              char *why, size_t why_len)
{
    /* the loader's own log lines would repeat what the command prints */
    int muted = cli_mute_log();
    if (!k->tried) {
        k->tried = 1;
        /* where invoke would not start, nothing is checked as it would be */
        struct fanout_engine_config cfg;
        if (fanout_engine_config_from_env(&cfg, k->err, sizeof k->err) == 0 &&
            !(k->loader = fanout_loader_new(fanout_host_default(), NULL)))
            snprintf(k->err, sizeof k->err, "cannot set up the plugin loader");
    }
    enum s_verdict v = S_CHECKED;
    why[0] = 0;
    if (!k->loader) {
        snprintf(why, why_len, "%s", k->err);
        v = S_NO_LOADER;
    } else if (!fanout_loader_get(k->loader, m->type, why, why_len)) {
        v = S_NO_PLUGIN;
    } else if (fanout_mapping_check_plugin(k->loader, m, why, why_len) != 0) {
        v = S_REFUSED;
    }
    cli_unmute_log(muted);
    return v;
}

static void s_checker_clean_up(struct s_checker *k)
{
    int muted = cli_mute_log();
    if (k->loader)
        fanout_loader_destroy(k->loader);
    cli_unmute_log(muted);
}

/* Validate `obj` as the engine will (the schema, then the plugin; a plugin
 * not installed here is a warning: the engine's own may differ), then
 * write it: PutItem under `condition`. On a failed condition, `conflict`
 * is printed. */
static int s_put(const struct s_ctx *c, const json_t *obj, const char *condition,
                 const char *conflict)
{
    const char *cmd = c->cmd->name;
    char err[1024];
    struct fanout_mapping *m = fanout_mapping_parse(obj, 0, err, sizeof err);
    if (!m) {
        fprintf(stderr, "fanout %s: %s; nothing was written\n", cmd, err);
        return CLI_USAGE;
    }
    struct s_checker k = {0};
    int rc = CLI_OK;
    switch (s_check(&k, m, err, sizeof err)) {
    case S_NO_LOADER:
        fprintf(stderr,
                "fanout %s: warning: cannot load plugins to check mapping \"%s\" (%s); it "
                "was checked against the mapping schema only\n",
                cmd, m->id, err);
        break;
    case S_NO_PLUGIN:
        fprintf(stderr,
                "fanout %s: warning: %s; mapping \"%s\" was checked against the mapping "
                "schema only, not by the plugin\n",
                cmd, err, m->id);
        break;
    case S_REFUSED:
        fprintf(stderr, "fanout %s: %s\n", cmd, err);
        rc = CLI_USAGE;
        break;
    case S_CHECKED: break;
    }
    s_checker_clean_up(&k);
    /* settings aws-lambda-fanout ignored for this type: invoke ignores them
     * too, and says so */
    if (rc == CLI_OK && m->ignored)
        fprintf(stderr, "fanout %s: warning: %s\n", cmd, m->ignored);
    json_t *item = rc == CLI_OK ? fanout_mapping_to_item(m) : NULL;
    fanout_mapping_free(m);
    if (rc != CLI_OK)
        return rc;
    if (!item)
        return s_oom(c->cmd);
    struct fanout_json_reply r;
    if (fanout_ddb_put_item(c->region, c->table, item, condition, &r) == 0) {
        json_decref(r.json);
    } else if (s_is(&r, "ConditionalCheckFailedException")) {
        fprintf(stderr, "fanout %s: %s\n", cmd, conflict);
        rc = CLI_FAILED;
    } else {
        rc = s_failed(c, "DynamoDB PutItem", &r);
    }
    json_decref(item);
    return rc;
}

/* ---- commands -------------------------------------------------------------- */

/* Flags, table, AWS setup and source, common to the commands. On failure
 * (printed) there is nothing to free. */
struct s_prepared {
    struct s_ctx ctx;
    char table[1100];
    char table_region[64]; /* of --table-arn, when --region is not given */
    char *source_arn;
};

static int s_prepare(const struct cli_command *cmd, const struct cli_args *a,
                     int need_source, struct s_prepared *p)
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
    if ((cmd->bit & (CLI_REGISTER | CLI_KEYED)) && !a->id)
        return cli_usage_error(cmd, "--id ID is required");
    if (a->id && !*a->id)
        return cli_usage_error(cmd, "--id must not be empty");
    rc = s_source(&p->ctx, a, need_source, &p->source_arn);
    if (rc != CLI_OK) {
        free(p->source_arn);
        p->source_arn = NULL;
    }
    return rc;
}

int cli_register(const struct cli_command *cmd, const struct cli_args *a)
{
    if (!a->type)
        return cli_usage_error(cmd, "the plugin type is required: fanout register <type> "
                                    "... (e.g. sqs, kinesis, file)");
    if (!a->destination)
        return cli_usage_error(cmd, "--destination DEST is required");
    struct s_prepared p;
    int rc = s_prepare(cmd, a, 1, &p);
    if (rc != CLI_OK)
        return rc;
    /* the engine matches records by their stream's ARN: a table's own ARN
     * would never match */
    char service[32];
    cli_arn_service(p.source_arn, service, sizeof service);
    if (!strcmp(service, "dynamodb") && !strstr(p.source_arn, "/stream/")) {
        rc =
            cli_usage_error(cmd,
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
        return s_oom(cmd);
    }
    /* aws-lambda-fanout's register wrote collapse "none" when --collapse
     * was not given: the same command makes the same mapping */
    if (!a->collapse)
        json_object_set_new(obj, "collapse", json_string("none"));
    cli_apply_fields(a, obj);
    json_object_set_new(obj, "destination", json_string(dest));
    free(dest);
    if (!json_object_get(obj, "active"))
        json_object_set_new(obj, "active", json_false());
    char conflict[1536];
    snprintf(conflict, sizeof conflict,
             "mapping \"%s\" already exists for %s in table \"%s\"; change it with "
             "fanout update, or unregister it first",
             a->id, p.source_arn, p.table);
    rc = s_put(&p.ctx, obj, "attribute_not_exists(id)", conflict);
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

/* Whether GetItem's `item` is another key's (an answer to another request:
 * changed and put back, it would overwrite that item); says so. */
static int s_other_item(const json_t *item, const struct s_prepared *p, const char *id)
{
    const char *src = fanout_ddb_item_text(item, "sourceArn"),
               *iid = fanout_ddb_item_text(item, "id");
    if (src && iid && !strcmp(src, p->source_arn) && !strcmp(iid, id))
        return 0;
    char qs[FANOUT_QUOTE_SIZE], qi[FANOUT_QUOTE_SIZE];
    fprintf(stderr,
            "fanout update: DynamoDB GetItem of mapping \"%s\" for %s in table \"%s\" "
            "answered with the item of sourceArn \"%s\", id \"%s\": not the one asked for, "
            "so nothing is written\n",
            id, p->source_arn, p->table, src ? fanout_quote(qs, src) : "(none)",
            iid ? fanout_quote(qi, iid) : "(none)");
    return 1;
}

int cli_update(const struct cli_command *cmd, const struct cli_args *a)
{
    if (!cli_count_fields(a))
        return cli_usage_error(cmd,
                               "nothing to change: give at least one of --destination, "
                               "--active, --destination-role-arn, --external-id, "
                               "--destination-region, --collapse, --parallel, "
                               "--convert-ddb, --deaggregate, --append-newlines, "
                               "--filter, --on-failure, --whole-record");
    struct s_prepared p;
    int rc = s_prepare(cmd, a, 1, &p);
    if (rc != CLI_OK)
        return rc;
    struct fanout_json_reply r;
    if (fanout_ddb_get_item(p.ctx.region, p.table, p.source_arn, a->id, 1, &r) != 0)
        rc = s_failed(&p.ctx, "DynamoDB GetItem", &r);
    const json_t *item = r.json ? json_object_get(r.json, "Item") : NULL;
    if (rc == CLI_OK && !item) {
        s_print_missing(&p, a->id);
        rc = CLI_FAILED;
    }
    if (rc == CLI_OK && s_other_item(item, &p, a->id))
        rc = CLI_FAILED;
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
            cli_apply_fields(a, obj);
            json_object_set_new(obj, "destination", json_string(dest));
        }
        free(dest);
    } else if (rc == CLI_OK) {
        cli_apply_fields(a, obj);
    }
    if (rc == CLI_OK) {
        char conflict[1536];
        snprintf(conflict, sizeof conflict,
                 "mapping \"%s\" for %s was unregistered while it was being updated", a->id,
                 p.source_arn);
        rc = s_put(&p.ctx, obj, "attribute_exists(id)", conflict);
        if (rc == CLI_OK)
            printf("updated mapping \"%s\" for %s in table \"%s\"\n", a->id, p.source_arn,
                   p.table);
    }
    json_decref(obj);
    json_decref(r.json);
    free(p.source_arn);
    return rc;
}

/* activate, deactivate (active 1 or 0) and unregister (-1): one request
 * on an existing mapping. */
static int s_keyed(const struct cli_command *cmd, const struct cli_args *a, int active)
{
    struct s_prepared p;
    int rc = s_prepare(cmd, a, 1, &p);
    if (rc != CLI_OK)
        return rc;
    struct fanout_json_reply r;
    if ((active < 0 ? fanout_ddb_delete_item(p.ctx.region, p.table, p.source_arn, a->id, &r)
                    : fanout_ddb_set_active(p.ctx.region, p.table, p.source_arn, a->id,
                                            active, &r)) == 0) {
        json_decref(r.json);
        if (active < 0)
            printf("unregistered mapping \"%s\" for %s from table \"%s\"\n", a->id,
                   p.source_arn, p.table);
        else
            printf("mapping \"%s\" for %s is now %s\n", a->id, p.source_arn,
                   active ? "active" : "inactive");
    } else if (s_is(&r, "ConditionalCheckFailedException")) {
        s_print_missing(&p, a->id);
        rc = CLI_FAILED;
    } else {
        rc = s_failed(&p.ctx, active < 0 ? "DynamoDB DeleteItem" : "DynamoDB UpdateItem",
                      &r);
    }
    free(p.source_arn);
    return rc;
}

int cli_set_active(const struct cli_command *cmd, const struct cli_args *a)
{
    return s_keyed(cmd, a, cmd->bit == CLI_ACTIVATE);
}

int cli_unregister(const struct cli_command *cmd, const struct cli_args *a)
{
    return s_keyed(cmd, a, -1);
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
    struct s_checker checker; /* the plugin checks `invoke` runs */
};

/* The verdict of `invoke` on a mapping that passed the schema: its plugin's
 * checks (problem), or a note when they cannot run here. */
static void s_rows_check(struct s_rows *rows, const struct fanout_mapping *m, char *problem,
                         size_t problem_len, struct fanout_sbuf *note)
{
    char why[1024], qid[FANOUT_QUOTE_SIZE];
    const char *id = fanout_quote(qid, m->id);
    switch (s_check(&rows->checker, m, why, sizeof why)) {
    case S_NO_LOADER:
        fanout_sbuf_printf(note,
                           "%smapping \"%s\": not checked by its plugin: plugins cannot be "
                           "loaded here (%s); checked against the mapping schema only",
                           note->len ? "; " : "", id, why);
        break;
    case S_NO_PLUGIN:
        fanout_sbuf_printf(note,
                           "%smapping \"%s\": not checked by its plugin: plugin \"%s\" is "
                           "not installed here (%s); checked against the mapping schema "
                           "only (invoke refuses it where the plugin is missing too)",
                           note->len ? "; " : "", id, m->type, why);
        break;
    case S_REFUSED:
        if (why[0])
            snprintf(problem, problem_len, "%s", why);
        else
            snprintf(problem, problem_len, "mapping \"%s\": refused by its plugin", id);
        break;
    case S_CHECKED: break;
    }
}

/* The fields the table stores as a string holding a JSON object, shown as
 * the object (a mapping file's form) once the mapping has passed its checks. */
static void s_unstring_objects(json_t *obj)
{
    static const char *const fields[] = {"filter", "onFailure"};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        json_t *v = json_object_get(obj, fields[i]);
        json_t *o = json_is_string(v) ? json_loads(json_string_value(v), 0, NULL) : NULL;
        if (json_is_object(o))
            json_object_set(obj, fields[i], o);
        json_decref(o);
    }
}

static int s_rows_add(struct s_rows *rows, const json_t *item, size_t index)
{
    char problem[1024] = "";
    struct fanout_sbuf note = {0};
    struct fanout_mapping *m =
        fanout_mapping_from_item(item, index, problem, sizeof problem);
    int valid = m != NULL;
    json_t *plain;
    if (valid) {
        if (m->ignored)
            fanout_sbuf_printf(&note, "%s", m->ignored);
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
    if (obj && valid)
        s_unstring_objects(obj);
    if (obj && rows->count == rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 64;
        void *v = realloc(rows->v, cap * sizeof *rows->v);
        if (!v) {
            json_decref(obj);
            fanout_sbuf_free(&note);
            return -1;
        }
        rows->v = v;
        rows->cap = cap;
    }
    if (!obj) {
        fanout_sbuf_free(&note);
        return -1;
    }
    rows->v[rows->count].obj = obj;
    rows->v[rows->count].problem = valid ? NULL : strdup(problem);
    rows->v[rows->count].note = note.len ? (char *)note.bytes : NULL;
    if (!note.len)
        fanout_sbuf_free(&note);
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
    s_checker_clean_up(&rows->checker);
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
        struct fanout_sbuf b = {0};
        const char *key;
        json_t *v;
        json_object_foreach ((json_t *)obj, key, v) {
            int shown = 0;
            for (int k = 0; k < S_COL_OPTIONS; k++)
                shown |= strcmp(key, fields[k]) == 0;
            if (shown)
                continue;
            char *c = s_cell(v);
            fanout_sbuf_printf(&b, "%s%s=%s", b.len ? " " : "", key, c ? c : "?");
            free(c);
        }
        row[S_COL_OPTIONS] = b.len ? (char *)b.bytes : strdup("-");
        if (!b.len)
            fanout_sbuf_free(&b);
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

static int s_row_read(void *ctx, const json_t *item)
{
    struct s_rows *rows = ctx;
    return s_rows_add(rows, item, rows->count + rows->unreadable);
}

/* Every item of the table (Scan) or of one source (Query), page by page. */
static int s_read_rows(const struct s_prepared *p, long limit, struct s_rows *rows)
{
    const char *op = p->source_arn ? "Query" : "Scan";
    json_t *body = json_pack("{s:s, s:b}", "TableName", p->table, "ConsistentRead", 1);
    if (body && p->source_arn &&
        (json_object_set_new(body, "KeyConditionExpression",
                             json_string("sourceArn = :source")) != 0 ||
         json_object_set_new(body, "ExpressionAttributeValues",
                             json_pack("{s:{s:s}}", ":source", "S", p->source_arn)) != 0)) {
        json_decref(body);
        body = NULL;
    }
    struct fanout_json_reply r;
    int rc =
        body ? fanout_ddb_read_pages(p->ctx.region, op, body, limit, s_row_read, rows, &r)
             : -2;
    json_decref(body);
    if (rc == -2)
        return s_oom(p->ctx.cmd);
    if (rc != 0) {
        char what[64];
        snprintf(what, sizeof what, "DynamoDB %s", op);
        return s_failed(&p->ctx, what, &r);
    }
    return CLI_OK;
}

int cli_list(const struct cli_command *cmd, const struct cli_args *a)
{
    long limit;
    char err[256];
    if (fanout_ddb_page_limit(&limit, err, sizeof err) != 0)
        return cli_usage_error(cmd, "%s", err);
    struct s_prepared p;
    int rc = s_prepare(cmd, a, 0, &p);
    if (rc != CLI_OK)
        return rc;
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
