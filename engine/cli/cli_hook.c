/* hook, unhook, pause, resume: the function's event source mappings
 * through Lambda's API (2015-03-31), the sources looked up by name in
 * Kinesis and DynamoDB, the function's FANOUT_REPORT_BATCH_ITEM_FAILURES
 * kept safe for all its mappings (cli_hook_plan), and the role's policy rebuilt (by
 * deploy's cli_deploy_refresh_policy) when the sources change. What needs
 * no call is decided in cli_hook_plan.c. */
#include "cli/cli_hook.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_aws.h"
#include "cli/cli_deploy.h"
#include "cli/cli_hook_plan.h"
#include "common/util.h"

#define S_ESM_PATH "/2015-03-31/event-source-mappings/"

/* What every step of a command needs. */
struct s_ctx {
    const char *cmd; /* "hook"... */
    enum cli_hook_cmd which;
    struct cli_hook_args a;
    char function[512]; /* as FunctionName: a name or an ARN */
    char name[128];     /* the bare name */
    char *source_arn;   /* malloc'd */
};

static int s_oom(const struct s_ctx *c)
{
    fprintf(stderr, "fanout %s: out of memory\n", c->cmd);
    return CLI_FAILED;
}

static const char *s_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* arn:<partition>:<service>:<region>:<account>:<resource> for a fallback
 * in a denied call's message; the resource alone when the account cannot
 * be known. */
static void s_arn(char *buf, size_t len, const char *service, const char *resource)
{
    char account[32], partition[32], err[256];
    const char *region = cli_aws_region();
    if (cli_aws_identity(account, sizeof account, partition, sizeof partition, err,
                         sizeof err) == 0)
        snprintf(buf, len, "arn:%s:%s:%s:%s:%s", partition, service, region ? region : "",
                 account, resource);
    else
        snprintf(buf, len, "%s", resource);
}

/* ---- the source ------------------------------------------------------------- */

static int s_no_source(const struct s_ctx *c, const char *what,
                       const struct cli_aws_reply *r)
{
    fprintf(stderr,
            "fanout %s: --source %s: there is no %s \"%s\" in this account and "
            "region %s (%s%s%s)\n",
            c->cmd, c->a.source, what, c->a.source,
            cli_aws_region() ? cli_aws_region() : "", r->code, r->message[0] ? ": " : "",
            r->message);
    return CLI_FAILED;
}

/* How a source name becomes its stream's ARN. */
struct s_lookup {
    const char *service, *json_version, *target, *name_member;
    const char *what, *resource_prefix, *action;
    const char *result, *arn_member; /* where the answer has the ARN */
};

static const struct s_lookup s_kinesis = {
    .service = "kinesis",
    .json_version = "1.1",
    .target = "Kinesis_20131202.DescribeStreamSummary",
    .name_member = "StreamName",
    .what = "Kinesis stream",
    .resource_prefix = "stream/",
    .action = "kinesis:DescribeStreamSummary",
    .result = "StreamDescriptionSummary",
    .arn_member = "StreamARN",
};
static const struct s_lookup s_dynamodb = {
    .service = "dynamodb",
    .json_version = "1.0",
    .target = "DynamoDB_20120810.DescribeTable",
    .name_member = "TableName",
    .what = "DynamoDB table",
    .resource_prefix = "table/",
    .action = "dynamodb:DescribeTable",
    .result = "Table",
    .arn_member = "LatestStreamArn",
};

/* --source NAME: a Kinesis stream's ARN (DescribeStreamSummary), or a
 * DynamoDB table's stream (DescribeTable's LatestStreamArn), which must be
 * on. */
static int s_lookup_source(struct s_ctx *c, const struct s_lookup *l)
{
    const char *name = c->a.source;
    struct cli_aws_reply r;
    int rc = CLI_OK;
    if (cli_aws_json(l->service, l->json_version, l->target,
                     json_pack("{s:s}", l->name_member, name), &r) != 0) {
        if (!strcmp(r.code, "ResourceNotFoundException")) {
            rc = s_no_source(c, l->what, &r);
        } else {
            char what[320], res[512], resource[300];
            snprintf(what, sizeof what, "describing %s \"%s\"", l->what, name);
            snprintf(resource, sizeof resource, "%s%s", l->resource_prefix, name);
            s_arn(res, sizeof res, l->service, resource);
            rc = cli_aws_fail(c->cmd, what, l->action, res, &r);
        }
        cli_aws_reply_free(&r);
        return rc;
    }
    const json_t *obj = json_object_get(r.json, l->result);
    const char *arn = s_str(obj, l->arn_member);
    int on = !json_is_false(
        json_object_get(json_object_get(obj, "StreamSpecification"), "StreamEnabled"));
    if (l == &s_dynamodb && (!*arn || !on)) {
        fprintf(
            stderr,
            "fanout %s: --source %s: the DynamoDB table \"%s\" has %s stream; turn it "
            "on with\n  aws dynamodb update-table --table-name %s --stream-specification "
            "StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES\nthen hook again (or "
            "give a stream with --source-arn)\n",
            c->cmd, name, name, *arn ? "a disabled" : "no", name);
        rc = CLI_FAILED;
    } else if (!*arn) {
        fprintf(stderr, "fanout %s: --source %s: the answer to %s has no %s.%s\n", c->cmd,
                name, l->target, l->result, l->arn_member);
        rc = CLI_FAILED;
    } else if (!(c->source_arn = strdup(arn))) {
        rc = s_oom(c);
    }
    cli_aws_reply_free(&r);
    return rc;
}

static int s_source(struct s_ctx *c)
{
    if (c->a.source_arn)
        return (c->source_arn = strdup(c->a.source_arn)) ? CLI_OK : s_oom(c);
    return s_lookup_source(c, strcmp(c->a.source_type, "kinesis") == 0 ? &s_kinesis
                                                                       : &s_dynamodb);
}

/* ---- the mappings ------------------------------------------------------------- */

/* A mapping's ARN, for a denied call's message. */
static void s_esm_arn(const json_t *esm, char *buf, size_t len)
{
    const char *arn = s_str(esm, "EventSourceMappingArn");
    const char *fn = s_str(esm, "FunctionArn");
    const char *at = strstr(fn, ":function:");
    if (*arn)
        snprintf(buf, len, "%s", arn);
    else if (at)
        snprintf(buf, len, "%.*s:event-source-mapping:%s", (int)(at - fn), fn,
                 s_str(esm, "UUID"));
    else
        snprintf(buf, len, "event-source-mapping:%s", s_str(esm, "UUID"));
}

/* The function's mappings (of `source_arn` only, unless NULL), every page
 * of ListEventSourceMappings: a new array in *out. */
static int s_list(const struct s_ctx *c, const char *source_arn, json_t **out)
{
    json_t *all = json_array();
    int rc = all ? cli_esm_list(c->cmd, c->function, source_arn, all) : s_oom(c);
    if (rc != CLI_OK) {
        json_decref(all);
        all = NULL;
    }
    *out = all;
    return rc;
}

/* The function's mapping for the source in *out (a new reference), NULL
 * when there is none. */
static int s_find(const struct s_ctx *c, json_t **out)
{
    json_t *list;
    *out = NULL;
    int rc = s_list(c, c->source_arn, &list);
    size_t i;
    json_t *esm;
    json_array_foreach (list, i, esm)
        if (!*out && !strcmp(s_str(esm, "EventSourceArn"), c->source_arn))
            *out = json_incref(esm);
    json_decref(list);
    return rc;
}

static int s_no_mapping(const struct s_ctx *c)
{
    fprintf(stderr,
            "fanout %s: function %s has no event source mapping for %s (fanout hook "
            "creates one)\n",
            c->cmd, c->function, c->source_arn);
    return CLI_FAILED;
}

/* ---- waits ------------------------------------------------------------------- */

struct s_wait {
    const struct s_ctx *c;
    const json_t *esm;
    /* The state waited for: "Enabled", "Disabled", NULL for any settled
     * state, S_GONE for deleted. */
    const char *want;
    json_t *last; /* the last answer */
};

static const char S_GONE[] = "gone";

/* Lambda refuses to update or delete a mapping in any other state
 * (ResourceInUseException). */
static int s_settled(const char *state)
{
    return !strcmp(state, "Enabled") || !strcmp(state, "Disabled");
}

static int s_probe(void *ctx, char *progress, size_t progress_len)
{
    struct s_wait *w = ctx;
    const char *uuid = s_str(w->esm, "UUID");
    char path[256];
    snprintf(path, sizeof path, S_ESM_PATH "%s", uuid);
    struct cli_aws_reply r;
    int rc = 0;
    if (cli_aws_rest("lambda", "GET", path, NULL, NULL, &r) != 0) {
        if (w->want == S_GONE && !strcmp(r.code, "ResourceNotFoundException")) {
            rc = 1;
        } else {
            char what[128], res[512];
            snprintf(what, sizeof what, "reading event source mapping %s", uuid);
            s_esm_arn(w->esm, res, sizeof res);
            cli_aws_fail(w->c->cmd, what, "lambda:GetEventSourceMapping", res, &r);
            rc = -1;
        }
        cli_aws_reply_free(&r);
        return rc;
    }
    if (strcmp(s_str(r.json, "UUID"), uuid) != 0) {
        /* an answer to another request: what is done next (a delete, an
         * update) would act on that other mapping */
        fprintf(
            stderr,
            "fanout %s: reading event source mapping %s: the answer is for event source "
            "mapping \"%s\", expected %s; stopped\n",
            w->c->cmd, uuid, s_str(r.json, "UUID"), uuid);
        cli_aws_reply_free(&r);
        return -1;
    }
    json_decref(w->last);
    w->last = json_incref(r.json);
    const char *state = s_str(r.json, "State");
    if (w->want != S_GONE && (w->want ? !strcmp(state, w->want) : s_settled(state))) {
        rc = 1;
    } else {
        const char *why = s_str(r.json, "StateTransitionReason");
        snprintf(progress, progress_len, "State %s%s%s%s", *state ? state : "?",
                 *why ? " (" : "", why, *why ? ")" : "");
    }
    cli_aws_reply_free(&r);
    return rc;
}

/* Wait until the mapping is in state `want` (see struct s_wait); *last,
 * when not NULL, gets the mapping as last read (a new reference). */
static int s_wait_for(const struct s_ctx *c, const json_t *esm, const char *want,
                      json_t **last)
{
    struct s_wait w = {c, esm, want, NULL};
    char what[128];
    snprintf(what, sizeof what, "event source mapping %s", s_str(esm, "UUID"));
    int rc = cli_aws_wait(c->cmd, what, s_probe, &w) == 0 ? CLI_OK : CLI_FAILED;
    if (rc == CLI_OK && last)
        *last = w.last ? w.last : json_incref((json_t *)esm);
    else
        json_decref(w.last);
    return rc;
}

/* The mapping, settled (Enabled or Disabled), in *esm: waited for when it
 * is changing; refused when it is being deleted. */
static int s_settle(const struct s_ctx *c, json_t **esm)
{
    const char *state = s_str(*esm, "State");
    if (s_settled(state))
        return CLI_OK;
    if (!strcmp(state, "Deleting")) {
        fprintf(stderr, "fanout %s: event source mapping %s for %s is being deleted\n",
                c->cmd, s_str(*esm, "UUID"), c->source_arn);
        return CLI_FAILED;
    }
    json_t *now = NULL;
    int rc = s_wait_for(c, *esm, NULL, &now);
    if (rc == CLI_OK) {
        json_decref(*esm);
        *esm = now;
    }
    return rc;
}

/* ---- hook --------------------------------------------------------------------- */

/* Create the mapping, or update the one there is; wait until it settles. */
static int s_put_mapping(const struct s_ctx *c, const json_t *mine, int report,
                         const char *function_arn)
{
    const char *uuid = mine ? s_str(mine, "UUID") : NULL;
    int starting_ignored = 0;
    json_t *body = mine ? cli_hook_update_body(&c->a, mine, report, &starting_ignored)
                        : cli_hook_create_body(&c->a, c->function, c->source_arn, report);
    if (!body)
        return s_oom(c);
    if (starting_ignored)
        fprintf(stderr,
                "fanout %s: warning: --starting-position %s: event source mapping %s "
                "reads from %s; Lambda cannot change it (unhook and hook again to start "
                "elsewhere)\n",
                c->cmd, c->a.starting_position, uuid,
                s_str(mine, "StartingPosition")[0] ? s_str(mine, "StartingPosition") : "?");
    if (mine && json_object_size(body) == 0) {
        json_decref(body);
        printf("event source mapping %s for %s is up to date (State %s)\n", uuid,
               c->source_arn, s_str(mine, "State"));
        return CLI_OK;
    }
    char *changed = mine ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char path[256];
    snprintf(path, sizeof path, S_ESM_PATH "%s", mine ? uuid : "");
    struct cli_aws_reply r;
    int rc = CLI_OK;
    char what[640], res[512];
    snprintf(what, sizeof what, "%s the event source mapping of function %s for %s",
             mine ? "updating" : "creating", c->function, c->source_arn);
    /* a new mapping: any of the function's account and region */
    json_t *any =
        mine ? NULL : json_pack("{s:s, s:s}", "FunctionArn", function_arn, "UUID", "*");
    s_esm_arn(mine ? mine : any, res, sizeof res);
    json_decref(any);
    /* Lambda checks that the role reads the stream: the policy that says so
     * was just put, and IAM takes a moment to apply it everywhere */
    if (cli_lambda_write(c->cmd, what,
                         mine ? "lambda:UpdateEventSourceMapping"
                              : "lambda:CreateEventSourceMapping",
                         res, mine ? "PUT" : "POST", path, body, &r) != 0)
        rc = CLI_FAILED;
    json_decref(body);
    json_t *now = NULL;
    if (rc == CLI_OK)
        rc = s_wait_for(c, r.json, NULL, &now);
    const char *state = s_str(now, "State");
    if (rc == CLI_OK && mine)
        printf("updated event source mapping %s for %s: %s (State %s)\n", uuid,
               c->source_arn, changed ? changed : "", state);
    else if (rc == CLI_OK)
        printf("created event source mapping %s for %s (function %s, starting at %s): "
               "State %s\n",
               s_str(r.json, "UUID"), c->source_arn, c->function,
               s_str(r.json, "StartingPosition"), state);
    if (rc == CLI_OK && strcmp(state, "Enabled") != 0)
        fprintf(stderr,
                "fanout %s: note: the mapping is %s; fanout resume reads the source\n",
                c->cmd, state);
    free(changed);
    json_decref(now);
    cli_aws_reply_free(&r);
    return rc;
}

/* The function's mappings as the consistency rule reads them (the strings
 * stay `list`'s). */
static struct cli_hook_esm *s_esms(const json_t *list)
{
    size_t n = json_array_size(list), i;
    struct cli_hook_esm *v = calloc(n ? n : 1, sizeof *v);
    json_t *esm;
    json_array_foreach (list, i, esm) {
        if (!v)
            break;
        v[i].uuid = s_str(esm, "UUID");
        v[i].source_arn = s_str(esm, "EventSourceArn");
        v[i].report = cli_hook_esm_reports(esm);
    }
    return v;
}

static int s_hook(struct s_ctx *c)
{
    json_t *config = cli_function_config(c->cmd, c->function);
    if (!config)
        return CLI_FAILED;
    json_t *mine = NULL, *all = NULL;
    int rc = s_find(c, &mine);
    if (rc == CLI_OK && mine)
        rc = s_settle(c, &mine);
    if (rc == CLI_OK)
        rc = s_list(c, NULL, &all);
    struct cli_hook_esm *esms = rc == CLI_OK ? s_esms(all) : NULL;
    if (rc == CLI_OK && !esms)
        rc = s_oom(c);
    struct cli_hook_plan p;
    if (rc == CLI_OK) {
        /* the mapping found for the source is in `all` too, unless it was
         * created in between: count it once either way */
        const char *env = json_string_value(json_object_get(
            json_object_get(json_object_get(config, "Environment"), "Variables"),
            CLI_HOOK_ENV));
        struct cli_hook_esm self = {s_str(mine, "UUID"), c->source_arn,
                                    mine ? cli_hook_esm_reports(mine) : 0};
        size_t n = json_array_size(all), k;
        for (k = 0; k < n && strcmp(esms[k].source_arn, c->source_arn); k++)
            ;
        if (mine && k == n) {
            struct cli_hook_esm *v = realloc(esms, (n + 1) * sizeof *v);
            if (v) {
                esms = v;
                esms[n++] = self;
            }
        }
        cli_hook_plan(esms, n, c->source_arn, c->a.report, env, &p);
    }
    /* a new source: the role reads it before Lambda is asked to */
    if (rc == CLI_OK && !mine)
        rc = cli_deploy_refresh_policy(c->cmd, c->name, c->source_arn);
    const char *function_arn = s_str(config, "FunctionArn");
    for (size_t s = 0; rc == CLI_OK && s < p.step_count; s++) {
        if (p.steps[s] == CLI_HOOK_STEP_MAPPING) {
            rc = s_put_mapping(c, mine, p.report, function_arn);
        } else {
            /* it prints the line */
            rc = cli_function_set_env(c->cmd, c->function, CLI_HOOK_ENV, p.env_value);
        }
    }
    if (rc == CLI_OK && mine)
        rc = cli_deploy_refresh_policy(c->cmd, c->name, NULL);
    free(esms);
    json_decref(all);
    json_decref(mine);
    json_decref(config);
    return rc;
}

/* ---- unhook, pause, resume ------------------------------------------------------ */

/* The mapping gone: when every mapping left expects batchItemFailures,
 * the function may answer them again (it may not before: the one gone did
 * not expect them). */
static int s_env_after_unhook(struct s_ctx *c)
{
    json_t *config = cli_function_config(c->cmd, c->function);
    if (!config)
        return CLI_FAILED;
    json_t *all = NULL;
    int rc = s_list(c, NULL, &all);
    struct cli_hook_esm *esms = rc == CLI_OK ? s_esms(all) : NULL;
    if (rc == CLI_OK && !esms)
        rc = s_oom(c);
    if (rc == CLI_OK) {
        const char *env = json_string_value(json_object_get(
            json_object_get(json_object_get(config, "Environment"), "Variables"),
            CLI_HOOK_ENV));
        const char *v =
            cli_hook_env_after_unhook(esms, json_array_size(all), c->source_arn, env);
        if (v)
            rc = cli_function_set_env(c->cmd, c->function, CLI_HOOK_ENV, v);
    }
    free(esms);
    json_decref(all);
    json_decref(config);
    return rc;
}

static int s_unhook(struct s_ctx *c, json_t **esm)
{
    int rc = strcmp(s_str(*esm, "State"), "Deleting") ? s_settle(c, esm) : CLI_OK;
    /* read after s_settle, which replaces *esm (and frees the listing's) */
    const char *uuid = s_str(*esm, "UUID");
    char path[256];
    snprintf(path, sizeof path, S_ESM_PATH "%s", uuid);
    struct cli_aws_reply r = {0};
    /* deleted meanwhile: the wait below sees it gone */
    if (rc == CLI_OK && cli_aws_rest("lambda", "DELETE", path, NULL, NULL, &r) != 0 &&
        strcmp(r.code, "ResourceNotFoundException") != 0) {
        char what[640], res[512];
        snprintf(what, sizeof what, "deleting event source mapping %s for %s", uuid,
                 c->source_arn);
        s_esm_arn(*esm, res, sizeof res);
        rc = cli_aws_fail(c->cmd, what, "lambda:DeleteEventSourceMapping", res, &r);
    }
    cli_aws_reply_free(&r);
    if (rc == CLI_OK)
        rc = s_wait_for(c, *esm, S_GONE, NULL);
    if (rc == CLI_OK)
        printf("deleted event source mapping %s for %s (function %s)\n", uuid,
               c->source_arn, c->function);
    if (rc == CLI_OK)
        rc = s_env_after_unhook(c);
    return rc == CLI_OK ? cli_deploy_refresh_policy(c->cmd, c->name, NULL) : rc;
}

static int s_switch(struct s_ctx *c, json_t **esm, int enable)
{
    const char *want = enable ? "Enabled" : "Disabled";
    int rc = s_settle(c, esm);
    if (rc != CLI_OK)
        return rc;
    const char *uuid = s_str(*esm, "UUID");
    if (!strcmp(s_str(*esm, "State"), want)) {
        printf("event source mapping %s for %s is already %s (State %s)\n", uuid,
               c->source_arn, enable ? "enabled" : "paused", want);
        return CLI_OK;
    }
    char path[256];
    snprintf(path, sizeof path, S_ESM_PATH "%s", uuid);
    struct cli_aws_reply r;
    if (cli_aws_rest("lambda", "PUT", path, NULL, json_pack("{s:b}", "Enabled", enable),
                     &r) != 0) {
        char what[640], res[512];
        snprintf(what, sizeof what, "%s event source mapping %s for %s",
                 enable ? "enabling" : "disabling", uuid, c->source_arn);
        s_esm_arn(*esm, res, sizeof res);
        rc = cli_aws_fail(c->cmd, what, "lambda:UpdateEventSourceMapping", res, &r);
    }
    cli_aws_reply_free(&r);
    if (rc == CLI_OK)
        rc = s_wait_for(c, *esm, want, NULL);
    if (rc == CLI_OK)
        printf("%s event source mapping %s for %s: State %s\n",
               enable ? "resumed" : "paused", uuid, c->source_arn, want);
    return rc;
}

/* ---- the commands ---------------------------------------------------------------- */

static int s_usage(const struct cli_command *cmd, const char *err)
{
    fprintf(stderr, "fanout %s: %s\n(fanout %s --help lists the options, with examples)\n",
            cmd->name, err, cmd->name);
    return CLI_USAGE;
}

int cli_hook_command(const struct cli_command *cmd, int argc, char **argv)
{
    static const char *const names[] = {"hook", "unhook", "pause", "resume"};
    struct s_ctx c = {.cmd = cmd->name};
    while (c.which < CLI_HOOK_RESUME && strcmp(names[c.which], cmd->name) != 0)
        c.which++;
    char err[1024];
    int parsed = cli_hook_parse(c.which, argc, argv, &c.a, err, sizeof err);
    if (parsed > 0) {
        cli_help(cmd, stdout);
        return CLI_OK;
    }
    if (parsed < 0)
        return s_usage(cmd, err);
    char arn_region[64];
    cli_hook_function(&c.a, c.function, sizeof c.function, c.name, sizeof c.name,
                      arn_region, sizeof arn_region);
    /* a function ARN names its region */
    if (c.a.region && arn_region[0] && strcmp(c.a.region, arn_region) != 0) {
        snprintf(err, sizeof err,
                 "--region %s differs from the region of --function-arn (%s)", c.a.region,
                 arn_region);
        return s_usage(cmd, err);
    }
    const struct cli_aws_flags flags = {arn_region[0] ? arn_region : c.a.region,
                                        c.a.profile, c.a.endpoint_url, c.a.no_verify_ssl,
                                        c.a.debug};
    if (cli_aws_setup(cmd->name, &flags, err, sizeof err) != 0)
        return s_usage(cmd, err);
    int rc = s_source(&c);
    json_t *esm = NULL;
    if (rc == CLI_OK && c.which == CLI_HOOK_HOOK) {
        rc = s_hook(&c);
    } else if (rc == CLI_OK) {
        rc = s_find(&c, &esm);
        if (rc == CLI_OK && !esm)
            rc = s_no_mapping(&c);
        else if (rc == CLI_OK && c.which == CLI_HOOK_UNHOOK)
            rc = s_unhook(&c, &esm);
        else if (rc == CLI_OK)
            rc = s_switch(&c, &esm, c.which == CLI_HOOK_RESUME);
    }
    json_decref(esm);
    free(c.source_arn);
    return rc;
}
