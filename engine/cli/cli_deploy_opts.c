/* The flags of deploy and destroy (declared in cli_deploy_opts.h): each
 * command's value flags from one table, the names they give (function,
 * table, role) checked, deploy's own checked (runtime, architecture,
 * memory, timeout, VPC, plugin types). */
#include "cli/cli_deploy_opts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fanout/helpers.h>

#define D_OPT(m) offsetof(struct d_opts, m)

static const struct {
    const char *name;
    size_t offset;
    unsigned commands;
} d_values[] = {
    {"function", D_OPT(function), D_BOTH},
    {"function-arn", D_OPT(function_arn), D_BOTH},
    {"table", D_OPT(table), D_BOTH},
    {"table-arn", D_OPT(table_arn), D_BOTH},
    {"exec-role", D_OPT(exec_role), D_BOTH},
    {"exec-role-arn", D_OPT(exec_role_arn), D_BOTH},
    {"memory", D_OPT(memory), D_DEPLOY},
    {"timeout", D_OPT(timeout), D_DEPLOY},
    {"arch", D_OPT(arch), D_DEPLOY},
    {"plugins", D_OPT(plugins), D_DEPLOY},
    {"package-dir", D_OPT(package_dir), D_DEPLOY},
    {"runtime", D_OPT(runtime), D_DEPLOY},
    {"subnet", D_OPT(subnets), D_DEPLOY},
    {"security-group", D_OPT(sgs), D_DEPLOY},
};

int d_usage(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fanout %s: %s\n(fanout %s --help lists the options, with examples)\n",
            cmd, msg, cmd);
    return CLI_USAGE;
}

/* --subnet a,b --subnet c: each id once, none empty. */
static int d_add_ids(const char *cmd, const char *flag, const char *value, json_t *ids)
{
    const char *p = value;
    for (;;) {
        size_t n = strcspn(p, ",");
        char id[256];
        if (n == 0 || n >= sizeof id)
            return d_usage(cmd, "--%s \"%s\": %s", flag, value,
                           n ? "an id is too long"
                             : "an empty id (ids are comma-separated)");
        memcpy(id, p, n);
        id[n] = 0;
        size_t i;
        json_t *v;
        int seen = 0;
        json_array_foreach (ids, i, v)
            seen |= !strcmp(json_string_value(v), id);
        if (!seen && json_array_append_new(ids, json_string(id)) != 0)
            return d_oom(cmd);
        if (!p[n])
            return CLI_OK;
        p += n + 1;
    }
}

static int d_long(const char *cmd, const char *flag, const char *v, long lo, long hi,
                  long *out)
{
    char *end;
    errno = 0;
    long n = v && *v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || n < lo || n > hi)
        return d_usage(cmd, "--%s expects a whole number from %ld to %ld, got \"%s\"", flag,
                       lo, hi, v ? v : "");
    *out = n;
    return CLI_OK;
}

static int d_parse(const char *cmd, unsigned which, int argc, char **argv, struct d_opts *o)
{
    memset(o, 0, sizeof *o);
    o->subnets = json_array();
    o->sgs = json_array();
    if (!o->subnets || !o->sgs)
        return d_oom(cmd);
    for (int i = 1; i < argc; i++) {
        char err[256];
        const char *a = argv[i];
        int rc = cli_aws_common_flag(&o->aws, argc, argv, &i, err, sizeof err);
        if (rc < 0)
            return d_usage(cmd, "%s", err);
        if (rc > 0)
            continue;
        for (size_t k = 0; k < sizeof d_values / sizeof *d_values && rc == 0; k++) {
            if (!(d_values[k].commands & which))
                continue;
            const char *v;
            rc = cli_aws_value_flag(argc, argv, &i, d_values[k].name, &v, err, sizeof err);
            if (rc < 0)
                return d_usage(cmd, "%s", err);
            if (rc == 0)
                continue;
            if (d_values[k].offset == D_OPT(subnets) || d_values[k].offset == D_OPT(sgs)) {
                json_t *ids = d_values[k].offset == D_OPT(subnets) ? o->subnets : o->sgs;
                int st = d_add_ids(cmd, d_values[k].name, v, ids);
                if (st != CLI_OK)
                    return st;
            } else {
                *(const char **)((char *)o + d_values[k].offset) = v;
            }
        }
        if (rc > 0)
            continue;
        if (which == D_DESTROY && !strcmp(a, "--yes"))
            o->yes = 1;
        else if (which == D_DESTROY && !strcmp(a, "--delete-table"))
            o->delete_table = 1;
        else if (!strncmp(a, "--", 2))
            return d_usage(cmd, "unknown option \"%s\"", a);
        else
            return d_usage(cmd, "unexpected argument \"%s\"", a);
    }
    return CLI_OK;
}

static int d_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > D_MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
            return 0;
    return 1;
}

/* The names the flags give: function (and its region, from an ARN),
 * table, role. */
static int d_names(const char *cmd, unsigned which, struct d_opts *o)
{
    if (o->function && o->function_arn)
        return d_usage(cmd,
                       "give the function once: --function NAME or --function-arn ARN");
    if (o->exec_role && o->exec_role_arn)
        return d_usage(cmd, "give the role once: --exec-role NAME or --exec-role-arn ARN");
    const char *name = o->function ? o->function : "fanout";
    static char region[64];
    if (o->function_arn) {
        /* arn:P:lambda:R:A:function:NAME */
        const char *f[7];
        const char *p = o->function_arn;
        int n = 0;
        for (; n < 7 && p; n++) {
            f[n] = p;
            p = strchr(p, ':');
            p = p ? p + 1 : NULL;
        }
        size_t rl = n == 7 ? (size_t)(f[4] - f[3] - 1) : 0;
        if (n != 7 || p || strncmp(o->function_arn, "arn:", 4) ||
            strncmp(f[2], "lambda:", 7) || strncmp(f[5], "function:", 9) || rl == 0 ||
            rl >= sizeof region)
            return d_usage(cmd,
                           "--function-arn expects arn:PARTITION:lambda:REGION:ACCOUNT:"
                           "function:NAME (unqualified), got \"%s\"",
                           o->function_arn);
        memcpy(region, f[3], rl);
        region[rl] = 0;
        name = f[6];
        if (o->aws.region && strcmp(o->aws.region, region) != 0)
            return d_usage(cmd, "--function-arn is in %s, --region says %s", region,
                           o->aws.region);
        o->aws.region = region;
    }
    if (!d_name_ok(name))
        return d_usage(cmd,
                       "\"%s\" is not a function name (1 to %d of A-Z, a-z, 0-9, - and _)",
                       name, D_MAX_NAME);
    fanout_strlcpy(o->name, name, sizeof o->name);
    if (!o->exec_role && !o->exec_role_arn && strlen(o->name) + 4 > D_MAX_NAME)
        return d_usage(cmd,
                       "the role name %sRole would be longer than %d characters: name the "
                       "role with --exec-role NAME",
                       o->name, D_MAX_NAME);
    if (o->exec_role &&
        (!*o->exec_role || strlen(o->exec_role) > D_MAX_NAME ||
         strspn(o->exec_role, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvw"
                              "xyz0123456789+=,.@_-") != strlen(o->exec_role)))
        return d_usage(cmd,
                       "--exec-role \"%s\" is not a role name (1 to %d of A-Z a-z 0-9 "
                       "+=,.@_-)",
                       o->exec_role, D_MAX_NAME);
    if (o->exec_role_arn &&
        (strncmp(o->exec_role_arn, "arn:", 4) || !strstr(o->exec_role_arn, ":iam::") ||
         !strstr(o->exec_role_arn, ":role/")))
        return d_usage(cmd,
                       "--exec-role-arn expects arn:PARTITION:iam::ACCOUNT:role/NAME, "
                       "got \"%s\"",
                       o->exec_role_arn);
    char err[512];
    if (cli_table(o->table, o->table_arn, o->name, NULL, o->table_name,
                  sizeof o->table_name, o->table_region, sizeof o->table_region, err,
                  sizeof err) < 0)
        return d_usage(cmd, "%s", err);
    if (o->table_arn && o->aws.region && o->table_region[0] &&
        strcmp(o->table_region, o->aws.region) != 0)
        return d_usage(cmd,
                       "--table-arn is in %s, but the function in %s: its table must be "
                       "in its region",
                       o->table_region, o->aws.region);
    if (o->table_arn && !o->aws.region && o->table_region[0])
        o->aws.region = o->table_region;
    (void)which;
    return CLI_OK;
}

static int d_deploy_opts(const char *cmd, struct d_opts *o)
{
    if (o->runtime && strcmp(o->runtime, D_RUNTIME) != 0)
        return d_usage(cmd,
                       "--runtime %s: fanout is a native custom runtime (the bootstrap "
                       "executable of fanout-function-ARCH.zip); the only runtime is %s",
                       o->runtime, D_RUNTIME);
    if (o->arch && strcmp(o->arch, "x86_64") != 0 && strcmp(o->arch, "arm64") != 0)
        return d_usage(cmd, "--arch expects x86_64 or arm64, got \"%s\"", o->arch);
    if (o->memory && d_long(cmd, "memory", o->memory, 128, 10240, &o->memory_mb) != CLI_OK)
        return CLI_USAGE;
    if (o->timeout && d_long(cmd, "timeout", o->timeout, 1, 900, &o->timeout_s) != CLI_OK)
        return CLI_USAGE;
    if (!o->memory)
        o->memory_mb = 128;
    if (!o->timeout)
        o->timeout_s = 30;
    if (!json_array_size(o->subnets) != !json_array_size(o->sgs))
        return d_usage(cmd,
                       "%s: a function in a VPC needs both --subnet and "
                       "--security-group",
                       json_array_size(o->subnets) ? "--subnet without --security-group"
                                                   : "--security-group without --subnet");
    if (o->package_dir && !*o->package_dir)
        return d_usage(cmd, "--package-dir must not be empty");
    if (!o->plugins)
        return CLI_OK;
    const char *p = o->plugins;
    for (;;) {
        size_t n = strcspn(p, ",");
        const char *type = NULL;
        for (const char *const *t = d_plugin_types; *t && n; t++)
            if (strlen(*t) == n && !strncmp(*t, p, n))
                type = *t;
        if (!type)
            return d_usage(cmd,
                           "--plugins \"%s\": \"%.*s\" is not a plugin type (es, file, "
                           "firehose, iot, kinesis, lambda, memcached, redis, sns, sqs)",
                           o->plugins, (int)n, p);
        int seen = 0;
        for (size_t i = 0; i < o->ntypes; i++)
            seen |= o->types[i] == type;
        if (!seen) {
            if (o->ntypes == D_MAX_LAYERS)
                return d_usage(cmd,
                               "--plugins: at most %d types (a function has at most %d "
                               "layers); leave --plugins out for the one layer with every "
                               "plugin",
                               D_MAX_LAYERS, D_MAX_LAYERS);
            o->types[o->ntypes++] = type;
        }
        if (!p[n])
            return CLI_OK;
        p += n + 1;
    }
}

int d_start(const char *cmd, unsigned which, int argc, char **argv, struct d_opts *o)
{
    int rc = d_parse(cmd, which, argc, argv, o);
    if (rc == CLI_OK)
        rc = d_names(cmd, which, o);
    if (rc == CLI_OK && which == D_DEPLOY)
        rc = d_deploy_opts(cmd, o);
    char err[512];
    if (rc == CLI_OK && cli_aws_setup(cmd, &o->aws, err, sizeof err) != 0)
        rc = d_usage(cmd, "%s", err);
    return rc;
}

void d_opts_free(struct d_opts *o)
{
    json_decref(o->subnets);
    json_decref(o->sgs);
}

int d_help(const struct cli_command *cmd, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cli_help(cmd, stdout);
            return 1;
        }
    return 0;
}
