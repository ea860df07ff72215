/* The command destroy: after a confirmation, the function's event source
 * mappings, the function, its layers NAME-plugin*, its role (when deploy
 * created it: cli_role.c) and, with --delete-table, its table, in that
 * order; what is already gone is said and skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <fanout/helpers.h>

#include "cli/cli_aws.h"
#include "cli/cli_cmd.h"
#include "cli/cli_deploy.h"
#include "cli/cli_deploy_opts.h"
#include "cli/cli_deploy_util.h"

struct d_esm_gone {
    const char *cmd, *uuid;
    int deleted;
};

static int d_esm_probe(void *ctx, char *progress, size_t len)
{
    struct d_esm_gone *g = ctx;
    struct cli_aws_reply r;
    char what[160];
    snprintf(what, sizeof what, "deleting event source mapping %s", g->uuid);
    int in_use = 0;
    if (!g->deleted) {
        if (d_lambda("DELETE", D_ESMS, g->uuid, "", NULL, NULL, &r) == 0 ||
            d_not_found(&r)) {
            g->deleted = 1;
        } else if (d_is(&r, "ResourceInUseException")) {
            in_use = 1; /* Creating, Updating...: deleted once settled */
        } else {
            cli_aws_fail(g->cmd, what, "lambda:DeleteEventSourceMapping", g->uuid, &r);
            cli_aws_reply_free(&r);
            return -1;
        }
        cli_aws_reply_free(&r);
    }
    if (d_lambda("GET", D_ESMS, g->uuid, "", NULL, NULL, &r) != 0) {
        return d_gone_or_fail(g->cmd, &r, "lambda:GetEventSourceMapping", g->uuid, "%s",
                              what);
    }
    snprintf(progress, len, "State %s%s",
             d_str(r.json, "State", NULL) ? d_str(r.json, "State", NULL) : "-",
             in_use ? " (it cannot be deleted in this state)" : "");
    cli_aws_reply_free(&r);
    return 0;
}

static int d_destroy_esms(const char *cmd, const char *function)
{
    json_t *esms = json_array();
    if (!esms)
        return d_oom(cmd);
    int rc = cli_esm_list(cmd, function, NULL, esms);
    size_t i;
    json_t *e;
    json_array_foreach (esms, i, e) {
        const char *uuid = d_str(e, "UUID", NULL), *src = d_str(e, "EventSourceArn", NULL);
        if (rc != CLI_OK || !uuid)
            continue;
        struct d_esm_gone g = {cmd, uuid, 0};
        char what[256];
        snprintf(what, sizeof what, "event source mapping %s", uuid);
        if (cli_aws_wait(cmd, what, d_esm_probe, &g) != 0)
            rc = CLI_FAILED;
        else
            d_line("event source mapping %s (%s): deleted", uuid, src ? src : "-");
    }
    if (rc == CLI_OK && json_array_size(esms) == 0)
        d_line("event source mappings of %s: none", function);
    json_decref(esms);
    return rc;
}

static int d_destroy_function(const char *cmd, const char *function)
{
    struct cli_aws_reply r;
    if (d_lambda("DELETE", D_FUNCTIONS, function, "", NULL, NULL, &r) != 0) {
        if (d_gone_or_fail(cmd, &r, "lambda:DeleteFunction", function,
                           "deleting function %s", function) < 0)
            return CLI_FAILED;
        d_line("function %s: not found", function);
        return CLI_OK;
    }
    cli_aws_reply_free(&r);
    d_line("function %s: deleted", function);
    return CLI_OK;
}

/* Is `layer` one of deploy's for the function: NAME-plugins, or
 * NAME-plugin-TYPE with a plugin type? */
static int d_our_layer(const char *function, const char *layer)
{
    size_t n = strlen(function);
    if (strncmp(layer, function, n) != 0)
        return 0;
    if (!strcmp(layer + n, "-plugins"))
        return 1;
    if (strncmp(layer + n, "-plugin-", 8) != 0)
        return 0;
    for (const char *const *t = d_plugin_types; *t; t++)
        if (!strcmp(layer + n + 8, *t))
            return 1;
    return 0;
}

struct d_layer {
    const char *cmd, *function, *layer;
    int count; /* versions deleted; layers of the function found */
};

/* One version of the layer: deleted (already gone is fine). */
static int d_delete_version(void *ctx, json_t *v)
{
    struct d_layer *l = ctx;
    char suffix[64];
    struct cli_aws_reply r;
    long long n = json_integer_value(json_object_get(v, "Version"));
    snprintf(suffix, sizeof suffix, "/versions/%lld", n);
    if (d_lambda("DELETE", D_LAYERS, l->layer, suffix, NULL, NULL, &r) != 0 &&
        !d_not_found(&r)) {
        char what[256];
        snprintf(what, sizeof what, "deleting layer %s version %lld", l->layer, n);
        cli_aws_fail(l->cmd, what, "lambda:DeleteLayerVersion",
                     d_str(v, "LayerVersionArn", NULL), &r);
        cli_aws_reply_free(&r);
        return -1;
    }
    cli_aws_reply_free(&r);
    l->count++;
    return 0;
}

/* Delete every version of `layer`. */
static int d_destroy_layer(const char *cmd, const char *layer)
{
    char path[1024], what[256];
    snprintf(what, sizeof what, "listing the versions of layer %s", layer);
    if (d_path(path, sizeof path, D_LAYERS, layer, "/versions") != 0) {
        fprintf(stderr, "fanout %s: %s: the name is too long for a request path\n", cmd,
                what);
        return CLI_FAILED;
    }
    struct d_layer ctx = {cmd, NULL, layer, 0};
    const struct d_listing l = {
        .cmd = cmd,
        .what = what,
        .action = "lambda:ListLayerVersions",
        .resource = layer,
        .path = path,
        .marker = "Marker",
        .next = "NextMarker",
        .list = "LayerVersions",
        .missing_ok = 1,
        .each = d_delete_version,
        .ctx = &ctx,
    };
    if (d_list(&l) < 0)
        return CLI_FAILED;
    d_line("layer %s: %d version%s deleted", layer, ctx.count, ctx.count == 1 ? "" : "s");
    return CLI_OK;
}

/* One layer of the account: its versions deleted when it is one of the
 * function's. */
static int d_destroy_if_ours(void *ctx, json_t *layer)
{
    struct d_layer *l = ctx;
    const char *name = d_str(layer, "LayerName", NULL);
    if (!name || !d_our_layer(l->function, name))
        return 0;
    l->count++;
    return d_destroy_layer(l->cmd, name) == CLI_OK ? 0 : -1;
}

static int d_destroy_layers(const char *cmd, const char *function)
{
    struct d_layer ctx = {cmd, function, NULL, 0};
    const struct d_listing l = {
        .cmd = cmd,
        .what = "listing the layers",
        .action = "lambda:ListLayers",
        .resource = "*",
        .path = "/2018-10-31/layers",
        .marker = "Marker",
        .next = "NextMarker",
        .list = "Layers",
        .each = d_destroy_if_ours,
        .ctx = &ctx,
    };
    if (d_list(&l) < 0)
        return CLI_FAILED;
    if (!ctx.count)
        d_line("layers %s-plugin*: none", function);
    return CLI_OK;
}

/* DeleteTable answers DELETING: the table is gone when DescribeTable says
 * it does not exist. */
struct d_table_gone {
    const char *cmd, *table;
};

static int d_table_gone_probe(void *ctx, char *progress, size_t len)
{
    struct d_table_gone *g = ctx;
    json_t *body = json_pack("{s:s}", "TableName", g->table);
    struct cli_aws_reply r;
    if (!body)
        return d_oom(g->cmd), -1;
    int done;
    if (cli_aws_json("dynamodb", "1.0", "DynamoDB_20120810.DescribeTable", body, &r) == 0) {
        snprintf(progress, len, "TableStatus %s",
                 d_str(json_object_get(r.json, "Table"), "TableStatus", "-"));
        done = 0;
    } else if (d_is(&r, "ResourceNotFoundException")) {
        done = 1;
    } else {
        char what[1100];
        snprintf(what, sizeof what, "waiting for table %s to be deleted", g->table);
        cli_aws_fail(g->cmd, what, "dynamodb:DescribeTable", g->table, &r);
        done = -1;
    }
    cli_aws_reply_free(&r);
    return done;
}

static int d_destroy_table(const char *cmd, const struct d_opts *o)
{
    if (!o->delete_table) {
        d_line("table %s: kept (--delete-table deletes it)", o->table_name);
        return CLI_OK;
    }
    json_t *body = json_pack("{s:s}", "TableName", o->table_name);
    struct cli_aws_reply r;
    if (!body)
        return d_oom(cmd);
    int rc = CLI_OK;
    if (cli_aws_json("dynamodb", "1.0", "DynamoDB_20120810.DeleteTable", body, &r) != 0) {
        if (d_is(&r, "ResourceNotFoundException")) {
            d_line("table %s: not found", o->table_name);
        } else {
            char what[1100];
            snprintf(what, sizeof what, "deleting table %s", o->table_name);
            rc = cli_aws_fail(cmd, what, "dynamodb:DeleteTable", o->table_name, &r);
        }
    } else {
        struct d_table_gone g = {cmd, o->table_name};
        char what[1100];
        snprintf(what, sizeof what, "table %s", o->table_name);
        rc = cli_aws_wait(cmd, what, d_table_gone_probe, &g) == 0 ? CLI_OK : CLI_FAILED;
        if (rc == CLI_OK)
            d_line("table %s: deleted", o->table_name);
    }
    cli_aws_reply_free(&r);
    return rc;
}

/* --yes, or "y" / "yes" typed on a terminal. */
static int d_confirm(const char *cmd, const struct d_opts *o)
{
    if (o->yes)
        return CLI_OK;
    if (!isatty(STDIN_FILENO)) {
        fprintf(stderr,
                "fanout %s: standard input is not a terminal, so nothing can be confirmed; "
                "pass --yes to delete function %s and what deploy created for it\n",
                cmd, o->name);
        return CLI_USAGE;
    }
    fprintf(
        stderr,
        "Delete function %s, its event source mappings, its layers %s-plugin*, its role "
        "(when deploy created it)%s%s? [y/N] ",
        o->name, o->name, o->delete_table ? " and table " : "",
        o->delete_table ? o->table_name : "");
    char line[32];
    if (!fgets(line, sizeof line, stdin))
        line[0] = 0;
    line[strcspn(line, "\r\n")] = 0;
    if (!strcasecmp(line, "y") || !strcasecmp(line, "yes"))
        return CLI_OK;
    fprintf(stderr, "fanout %s: not confirmed; nothing was deleted\n", cmd);
    return CLI_FAILED;
}

int cli_destroy(const struct cli_command *cmd, int argc, char **argv)
{
    if (d_help(cmd, argc, argv))
        return CLI_OK;
    const char *c = cmd->name;
    struct d_opts o;
    int rc = d_start(c, D_DESTROY, argc, argv, &o);
    if (rc == CLI_OK)
        rc = d_confirm(c, &o);
    json_t *cfg = NULL;
    if (rc == CLI_OK && d_function_read(c, o.name, 0, &cfg) < 0)
        rc = CLI_FAILED;
    char role_arn[D_ARN_MAX] = "";
    if (cfg && d_str(cfg, "Role", NULL))
        fanout_strlcpy(role_arn, d_str(cfg, "Role", NULL), sizeof role_arn);
    json_decref(cfg);
    if (rc == CLI_OK)
        rc = d_destroy_esms(c, o.name);
    if (rc == CLI_OK)
        rc = d_destroy_function(c, o.name);
    if (rc == CLI_OK)
        rc = d_destroy_layers(c, o.name);
    if (rc == CLI_OK)
        rc = d_role_destroy(c, o.name, o.exec_role, o.exec_role_arn,
                            role_arn[0] ? role_arn : NULL);
    if (rc == CLI_OK)
        rc = d_destroy_table(c, &o);
    d_opts_free(&o);
    return rc;
}
