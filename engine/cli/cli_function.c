/* What deploy, destroy, hook and unhook share about the function (declared
 * in cli_deploy.h): its configuration, its environment, its waits, its
 * request paths, a Lambda write retried while IAM propagates the role
 * (cli_lambda_write), and its event source mappings (cli_esm_list). */
#include "cli/cli_deploy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fanout/helpers.h>

#include "cli/cli_aws.h"
#include "cli/cli_cmd.h"
#include "cli/cli_deploy_util.h"

/* How long a new role may take to become usable by Lambda. */
#define D_ROLE_WINDOW_S 60

int d_function_read(const char *cmd, const char *function, int whole, json_t **cfg)
{
    struct cli_aws_reply r;
    *cfg = NULL;
    if (d_lambda("GET", D_FUNCTIONS, function, whole ? "" : "/configuration", NULL, NULL,
                 &r) != 0) {
        return d_gone_or_fail(
            cmd, &r, whole ? "lambda:GetFunction" : "lambda:GetFunctionConfiguration",
            function, "reading function %s", function);
    }
    json_t *c = whole ? json_object_get(r.json, "Configuration") : r.json;
    *cfg = c ? json_incref(c) : json_object();
    cli_aws_reply_free(&r);
    return *cfg ? 0 : (d_oom(cmd), -1);
}

static int d_function_get(const char *cmd, const char *function, json_t **cfg)
{
    return d_function_read(cmd, function, 0, cfg);
}

json_t *cli_function_config(const char *cmd, const char *function)
{
    json_t *cfg;
    int rc = d_function_get(cmd, function, &cfg);
    if (rc == 1)
        fprintf(stderr,
                "fanout %s: there is no function %s in this account and region (fanout "
                "deploy --function %s creates it)\n",
                cmd, function, function);
    return rc == 0 ? cfg : NULL;
}

struct d_fn_wait {
    const char *cmd, *function;
};

static int d_fn_probe(void *ctx, char *progress, size_t len)
{
    const struct d_fn_wait *w = ctx;
    json_t *cfg;
    if (d_probe_read(w->cmd, "function", w->function,
                     d_function_get(w->cmd, w->function, &cfg)) != 0)
        return -1;
    const char *state = d_str(cfg, "State", NULL);
    const char *last = d_str(cfg, "LastUpdateStatus", NULL);
    int done = -1;
    if (state && !strcmp(state, "Failed")) {
        fprintf(
            stderr, "fanout %s: function %s: State Failed: %s: %s\n", w->cmd, w->function,
            d_str(cfg, "StateReasonCode", NULL) ? d_str(cfg, "StateReasonCode", NULL) : "-",
            d_str(cfg, "StateReason", NULL) ? d_str(cfg, "StateReason", NULL)
                                            : "no reason given");
    } else if (last && !strcmp(last, "Failed")) {
        fprintf(stderr, "fanout %s: function %s: its last update failed: %s: %s\n", w->cmd,
                w->function,
                d_str(cfg, "LastUpdateStatusReasonCode", NULL)
                    ? d_str(cfg, "LastUpdateStatusReasonCode", NULL)
                    : "-",
                d_str(cfg, "LastUpdateStatusReason", NULL)
                    ? d_str(cfg, "LastUpdateStatusReason", NULL)
                    : "no reason given");
    } else if ((!state || !strcmp(state, "Active") || !strcmp(state, "Inactive")) &&
               (!last || !strcmp(last, "Successful"))) {
        done = 1;
    } else {
        snprintf(progress, len, "State %s (LastUpdateStatus %s)", state ? state : "-",
                 last ? last : "-");
        done = 0;
    }
    json_decref(cfg);
    return done;
}

int cli_function_wait(const char *cmd, const char *function)
{
    struct d_fn_wait w = {cmd, function};
    char what[160];
    snprintf(what, sizeof what, "function %s", function);
    return cli_aws_wait(cmd, what, d_fn_probe, &w) == 0 ? CLI_OK : CLI_FAILED;
}

/* A Lambda write retried while the new role cannot be assumed yet (IAM
 * propagates a role in seconds); the answer in `r`. */
struct d_retry {
    const char *cmd, *what, *action, *resource;
    const char *method, *path;
    json_t *body; /* kept: sent again on each try */
    struct cli_aws_reply r;
};

static int d_role_not_ready(const struct cli_aws_reply *r)
{
    return d_is(r, "InvalidParameterValueException") &&
           (strstr(r->message, "cannot be assumed by Lambda") ||
            strstr(r->message,
                   "does not have permissions to call CreateNetworkInterface") ||
            /* CreateEventSourceMapping before the role's new policy reads
             * the stream everywhere */
            strstr(r->message, "Please ensure the role can perform"));
}

static int d_retry_probe(void *ctx, char *progress, size_t len)
{
    struct d_retry *c = ctx;
    cli_aws_reply_free(&c->r);
    if (cli_aws_rest("lambda", c->method, c->path, NULL, json_incref(c->body), &c->r) == 0)
        return 1;
    if (d_role_not_ready(&c->r)) {
        snprintf(progress, len, "Lambda answers: %s", c->r.message);
        return 0;
    }
    cli_aws_fail(c->cmd, c->what, c->action, c->resource, &c->r);
    return -1;
}

/* Send `body` (kept by the caller); 0 with c->r, or -1 printed. */
static int d_retry_role(struct d_retry *c)
{
    memset(&c->r, 0, sizeof c->r);
    char wait_what[256];
    snprintf(wait_what, sizeof wait_what, "IAM role propagation (%s)", c->what);
    return cli_aws_wait_up_to(c->cmd, wait_what, D_ROLE_WINDOW_S, d_retry_probe, c);
}

int cli_lambda_write(const char *cmd, const char *what, const char *action,
                     const char *resource, const char *method, const char *path,
                     json_t *body, struct cli_aws_reply *r)
{
    struct d_retry c = {cmd, what, action, resource, method, path, body};
    int rc = d_retry_role(&c);
    *r = c.r;
    return rc;
}

int cli_function_set_env(const char *cmd, const char *function, const char *name,
                         const char *value)
{
    if (cli_function_wait(cmd, function) != CLI_OK)
        return CLI_FAILED;
    json_t *cfg = cli_function_config(cmd, function);
    if (!cfg)
        return CLI_FAILED;
    json_t *vars =
        json_deep_copy(json_object_get(json_object_get(cfg, "Environment"), "Variables"));
    json_decref(cfg);
    if (!vars && !(vars = json_object()))
        return d_oom(cmd);
    const char *cur = json_string_value(json_object_get(vars, name));
    if (value ? cur && !strcmp(cur, value) : !cur) {
        json_decref(vars);
        return CLI_OK;
    }
    int rc = value ? json_object_set_new(vars, name, json_string(value))
                   : json_object_del(vars, name);
    json_t *body = rc ? NULL : json_pack("{s:{s:o}}", "Environment", "Variables", vars);
    if (!body)
        return rc ? (json_decref(vars), d_oom(cmd)) : d_oom(cmd);
    struct cli_aws_reply r;
    if (d_lambda("PUT", D_FUNCTIONS, function, "/configuration", NULL, body, &r) != 0) {
        char what[256];
        snprintf(what, sizeof what, "function %s: setting %s", function, name);
        cli_aws_fail(cmd, what, "lambda:UpdateFunctionConfiguration", function, &r);
        cli_aws_reply_free(&r);
        return CLI_FAILED;
    }
    cli_aws_reply_free(&r);
    if (value)
        d_line("function %s: environment %s=%s", function, name, value);
    else
        d_line("function %s: environment %s removed", function, name);
    return cli_function_wait(cmd, function);
}

int cli_function_path(const char *function, const char *suffix, char *out, size_t len)
{
    return d_path(out, len, D_FUNCTIONS, function, suffix);
}

/* ---- event source mappings ------------------------------------------------------ */

struct d_esm_keep {
    const char *cmd, *what, *function, *source_arn;
    json_t *out;
};

/* Is `arn` (a mapping's FunctionArn) the function's: its ARN when the
 * function is named by ARN, else one whose name part is the function's
 * name; either may go on with ":QUALIFIER" (a version's or an alias's
 * mapping). */
static int d_esm_function_is(const char *arn, const char *function)
{
    size_t n;
    if (!strncmp(function, "arn:", 4)) {
        n = strlen(function);
        return !strncmp(arn, function, n) && (!arn[n] || arn[n] == ':');
    }
    const char *at = strstr(arn, ":function:");
    if (!at || strncmp(arn, "arn:", 4) != 0)
        return 0;
    at += strlen(":function:");
    n = strlen(function);
    return !strncmp(at, function, n) && (!at[n] || at[n] == ':');
}

/* One mapping of the listing, kept when it is the function's (and the
 * source's, when the listing asked for one): a mapping of another function
 * in the answer (an answer to another request, a filter dropped) fails the
 * listing, so that nothing of another function is updated or deleted. */
static int d_esm_keep(void *ctx, json_t *esm)
{
    const struct d_esm_keep *k = ctx;
    const char *uuid = d_str(esm, "UUID", NULL), *fn = d_str(esm, "FunctionArn", NULL),
               *src = d_str(esm, "EventSourceArn", NULL);
    if (!fn || !d_esm_function_is(fn, k->function)) {
        fprintf(stderr,
                "fanout %s: %s: the answer holds event source mapping %s of function %s, "
                "expected one of function %s; stopped, nothing of it changed\n",
                k->cmd, k->what, uuid ? uuid : "(no UUID)", fn ? fn : "(no FunctionArn)",
                k->function);
        return -1;
    }
    if (k->source_arn && (!src || strcmp(src, k->source_arn) != 0)) {
        fprintf(stderr,
                "fanout %s: %s: the answer holds event source mapping %s of source %s, "
                "expected one of source %s; stopped, nothing of it changed\n",
                k->cmd, k->what, uuid ? uuid : "(no UUID)",
                src ? src : "(no EventSourceArn)", k->source_arn);
        return -1;
    }
    return json_array_append(k->out, esm) == 0 ? 0 : (d_oom(k->cmd), -1);
}

int cli_esm_list(const char *cmd, const char *function, const char *source_arn, json_t *out)
{
    char what[160];
    snprintf(what, sizeof what, "listing the event source mappings of %s", function);
    const char *pairs[] = {"EventSourceArn", source_arn, "FunctionName", function, NULL};
    struct d_esm_keep keep = {cmd, what, function, source_arn, out};
    const struct d_listing l = {
        .cmd = cmd,
        .what = what,
        .action = "lambda:ListEventSourceMappings",
        .resource = function,
        .path = D_ESMS,
        .pairs = pairs,
        .marker = "Marker",
        .next = "NextMarker",
        .list = "EventSourceMappings",
        .missing_ok = 1,
        .each = d_esm_keep,
        .ctx = &keep,
    };
    return d_list(&l) >= 0 ? CLI_OK : CLI_FAILED;
}
