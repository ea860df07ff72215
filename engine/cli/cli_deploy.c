/* The command deploy, natively against the AWS APIs (DynamoDB, IAM,
 * Lambda, STS through the AWS layer), with the names and order the
 * README's "Deploying" gives: the mapping table, the execution role and its
 * inline policy (cli_role.c), the plugin layers, the function. Its flags
 * are parsed in cli_deploy_opts.c; destroy is in cli_destroy.c; what hook
 * and unhook share with them is exported in cli_deploy.h. */
#include "cli/cli_deploy.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <fanout/helpers.h>

#include "cli/cli_aws.h"
#include "cli/cli_cmd.h"
#include "cli/cli_deploy_opts.h"
#include "cli/cli_deploy_util.h"

#ifndef FANOUT_VERSION
#define FANOUT_VERSION "dev"
#endif

#define D_HANDLER "bootstrap"
#define D_RBIF    "FANOUT_REPORT_BATCH_ITEM_FAILURES"
/* Lambda's limit on a direct upload's zip. */
#define D_MAX_ZIP_BYTES (50L * 1024 * 1024)

/* ---- packages ------------------------------------------------------------------ */

struct d_zip {
    char path[4096];
    char *b64;        /* the zip, base64 */
    char sha_hex[65]; /* sha256, hex */
    char sha_b64[64]; /* sha256, base64: Lambda's CodeSha256 */
    size_t size;
};

static void d_zip_free(struct d_zip *z)
{
    free(z->b64);
    z->b64 = NULL;
}

static int d_zip_read(const char *cmd, const char *dir, const char *file, const char *arch,
                      struct d_zip *z)
{
    memset(z, 0, sizeof *z);
    int n = snprintf(z->path, sizeof z->path, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= sizeof z->path)
        return d_usage(cmd, "--package-dir %s: path too long", dir);
    FILE *f = fopen(z->path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = f ? EISDIR : errno;
        if (f)
            fclose(f);
        fprintf(stderr,
                "fanout %s: %s: %s; `scripts/package.sh --arch %s` makes the packages (in "
                "dist/; --package-dir DIR names another directory)\n",
                cmd, z->path, strerror(e), arch);
        return CLI_USAGE;
    }
    if (st.st_size <= 0 || st.st_size > D_MAX_ZIP_BYTES) {
        fclose(f);
        fprintf(stderr,
                "fanout %s: %s: %lld bytes; Lambda takes a zip of 1 byte to %ld MB in a "
                "direct upload\n",
                cmd, z->path, (long long)st.st_size, D_MAX_ZIP_BYTES / (1024 * 1024));
        return CLI_USAGE;
    }
    size_t size = (size_t)st.st_size;
    unsigned char *data = malloc(size);
    if (!data) {
        fclose(f);
        return d_oom(cmd);
    }
    size_t got = fread(data, 1, size, f);
    fclose(f);
    if (got != size) {
        free(data);
        fprintf(stderr, "fanout %s: %s: read %zu of %zu bytes\n", cmd, z->path, got, size);
        return CLI_FAILED;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    struct fanout_sbuf b64 = {0}, sha = {0};
    int rc = EVP_Digest(data, size, md, &md_len, EVP_sha256(), NULL) == 1 && md_len == 32
                 ? 0
                 : -1;
    if (rc == 0)
        rc = fanout_sbuf_base64(&b64, data, size) | fanout_sbuf_base64(&sha, md, md_len);
    free(data);
    if (rc != 0 || !b64.p || !sha.p || sha.len >= sizeof z->sha_b64) {
        fanout_sbuf_free(&b64);
        fanout_sbuf_free(&sha);
        fprintf(stderr,
                "fanout %s: %s: cannot compute its sha256 and base64 (out of memory)\n",
                cmd, z->path);
        return CLI_FAILED;
    }
    for (unsigned i = 0; i < md_len; i++)
        snprintf(z->sha_hex + 2 * i, 3, "%02x", md[i]);
    memcpy(z->sha_b64, sha.p, sha.len + 1);
    fanout_sbuf_free(&sha);
    z->b64 = b64.p;
    z->size = size;
    return CLI_OK;
}

/* ---- deploy -------------------------------------------------------------------- */

struct d_run {
    const char *cmd;
    struct d_opts o;
    struct d_who who;
    json_t *current; /* the existing function's configuration, or NULL */
    const char *arch;
    struct d_zip fn_zip;
    struct d_zip layer_zip[D_MAX_LAYERS];
    char layer_name[D_MAX_LAYERS][160];
    size_t nlayers;
    char table_arn[D_ARN_MAX];
    char role_arn[D_ARN_MAX];
    json_t *layer_arns;
};

static int d_packages(struct d_run *d)
{
    const char *dir = d->o.package_dir ? d->o.package_dir : "./dist";
    char file[160];
    snprintf(file, sizeof file, "fanout-function-%s.zip", d->arch);
    int rc = d_zip_read(d->cmd, dir, file, d->arch, &d->fn_zip);
    if (d->o.ntypes == 0) {
        snprintf(file, sizeof file, "fanout-plugins-%s.zip", d->arch);
        snprintf(d->layer_name[0], sizeof d->layer_name[0], "%s-plugins", d->o.name);
        d->nlayers = 1;
        if (rc == CLI_OK)
            rc = d_zip_read(d->cmd, dir, file, d->arch, &d->layer_zip[0]);
    }
    for (size_t i = 0; i < d->o.ntypes; i++) {
        snprintf(file, sizeof file, "fanout-plugin-%s-%s.zip", d->o.types[i], d->arch);
        snprintf(d->layer_name[i], sizeof d->layer_name[i], "%s-plugin-%s", d->o.name,
                 d->o.types[i]);
        d->nlayers = i + 1;
        if (rc == CLI_OK)
            rc = d_zip_read(d->cmd, dir, file, d->arch, &d->layer_zip[i]);
    }
    return rc;
}

struct d_table_wait {
    const char *cmd, *table;
    char arn[D_ARN_MAX];
};

/* DescribeTable: 0 with the Table, 1 none, -1 failed (printed). */
static int d_table_get(const char *cmd, const char *table, json_t **out)
{
    struct cli_aws_reply r;
    json_t *body = json_pack("{s:s}", "TableName", table);
    *out = NULL;
    if (!body)
        return d_oom(cmd), -1;
    if (cli_aws_json("dynamodb", "1.0", "DynamoDB_20120810.DescribeTable", body, &r) != 0) {
        return d_gone_or_fail(cmd, &r, "dynamodb:DescribeTable", table, "reading table %s",
                              table);
    }
    *out = json_incref(json_object_get(r.json, "Table"));
    cli_aws_reply_free(&r);
    if (!*out) {
        fprintf(stderr, "fanout %s: table %s: the DescribeTable answer has no Table\n", cmd,
                table);
        return -1;
    }
    return 0;
}

static int d_table_probe(void *ctx, char *progress, size_t len)
{
    struct d_table_wait *w = ctx;
    json_t *t;
    if (d_probe_read(w->cmd, "table", w->table, d_table_get(w->cmd, w->table, &t)) != 0)
        return -1;
    const char *status = d_str(t, "TableStatus", NULL);
    const char *arn = d_str(t, "TableArn", NULL);
    fanout_strlcpy(w->arn, arn ? arn : "", sizeof w->arn);
    int done = status && !strcmp(status, "ACTIVE");
    if (!done)
        snprintf(progress, len, "TableStatus %s", status ? status : "-");
    json_decref(t);
    return done;
}

static int d_table(struct d_run *d)
{
    const char *cmd = d->cmd, *table = d->o.table_name;
    json_t *t;
    int rc = d_table_get(cmd, table, &t);
    if (rc < 0)
        return CLI_FAILED;
    const char *status = rc == 0 ? d_str(t, "TableStatus", NULL) : NULL;
    const char *state = "unchanged";
    if (rc == 1 && d->o.table_arn) {
        fprintf(
            stderr,
            "fanout %s: --table-arn %s: there is no such table (deploy creates the table "
            "only when it names it: --table NAME, or by default %sTargets)\n",
            cmd, d->o.table_arn, d->o.name);
        return CLI_FAILED;
    }
    if (rc == 1) {
        json_t *body = json_pack(
            "{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:[{s:s, s:s}, {s:s, s:s}], s:s, "
            "s:[{s:s, s:s}]}",
            "TableName", table, "AttributeDefinitions", "AttributeName", "sourceArn",
            "AttributeType", "S", "AttributeName", "id", "AttributeType", "S", "KeySchema",
            "AttributeName", "sourceArn", "KeyType", "HASH", "AttributeName", "id",
            "KeyType", "RANGE", "BillingMode", "PAY_PER_REQUEST", "Tags", "Key", D_TAG,
            "Value", d->o.name);
        struct cli_aws_reply r;
        if (!body)
            return d_oom(cmd);
        if (cli_aws_json("dynamodb", "1.0", "DynamoDB_20120810.CreateTable", body, &r) !=
            0) {
            char what[1100], res[D_ARN_MAX];
            snprintf(what, sizeof what, "creating table %s", table);
            snprintf(res, sizeof res, "arn:%s:dynamodb:%s:%s:table/%s", d->who.partition,
                     d->who.region, d->who.account, table);
            rc = cli_aws_fail(cmd, what, "dynamodb:CreateTable", res, &r);
            cli_aws_reply_free(&r);
            return rc;
        }
        cli_aws_reply_free(&r);
        state = "created";
    } else if (!status || strcmp(status, "ACTIVE") != 0) {
        state = "unchanged (was not ACTIVE yet)";
    } else {
        fanout_strlcpy(d->table_arn,
                       d_str(t, "TableArn", NULL) ? d_str(t, "TableArn", NULL) : "",
                       sizeof d->table_arn);
    }
    json_decref(t);
    if (!d->table_arn[0]) {
        struct d_table_wait w = {cmd, table, ""};
        char what[1100];
        snprintf(what, sizeof what, "table %s", table);
        if (cli_aws_wait(cmd, what, d_table_probe, &w) != 0)
            return CLI_FAILED;
        fanout_strlcpy(d->table_arn, w.arn, sizeof d->table_arn);
    }
    if (!d->table_arn[0])
        snprintf(d->table_arn, sizeof d->table_arn, "arn:%s:dynamodb:%s:%s:table/%s",
                 d->who.partition, d->who.region, d->who.account, table);
    d_line("table %s: %s", table, state);
    return CLI_OK;
}

/* The function is (or will be) in a VPC: subnets given, or already set. */
static int d_in_vpc(const struct d_run *d)
{
    if (json_array_size(d->o.subnets))
        return 1;
    const json_t *s =
        json_object_get(json_object_get(d->current, "VpcConfig"), "SubnetIds");
    return json_array_size(s) > 0;
}

static int d_role(struct d_run *d)
{
    const struct d_role_in in = {
        d->cmd,          &d->who,      d->o.name,  d->o.exec_role, d->o.exec_role_arn,
        d->o.table_name, d->table_arn, d_in_vpc(d)};
    return d_role_setup(&in, d->role_arn, sizeof d->role_arn);
}

/* ListLayerVersions' newest version of `layer`: its number (0: none) and
 * ARN. CLI_ status. */
static int d_layer_latest(const char *cmd, const char *layer, long long *version, char *arn,
                          size_t arn_len)
{
    struct cli_aws_reply r;
    *version = 0;
    if (d_lambda("GET", D_LAYERS, layer, "/versions", NULL, NULL, &r) != 0) {
        return d_gone_or_fail(cmd, &r, "lambda:ListLayerVersions", layer,
                              "listing the versions of layer %s", layer) > 0
                   ? CLI_OK
                   : CLI_FAILED;
    }
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(r.json, "LayerVersions"), i, v) {
        long long n = json_integer_value(json_object_get(v, "Version"));
        const char *a = d_str(v, "LayerVersionArn", NULL);
        if (n > *version && a && strlen(a) < arn_len) {
            *version = n;
            fanout_strlcpy(arn, a, arn_len);
        }
    }
    cli_aws_reply_free(&r);
    return CLI_OK;
}

static int d_layer_put(struct d_run *d, size_t i)
{
    const char *cmd = d->cmd, *layer = d->layer_name[i];
    const struct d_zip *z = &d->layer_zip[i];
    char arn[D_ARN_MAX] = "", suffix[64];
    long long version;
    struct cli_aws_reply r;
    if (d_layer_latest(cmd, layer, &version, arn, sizeof arn) != CLI_OK)
        return CLI_FAILED;
    if (version > 0) {
        snprintf(suffix, sizeof suffix, "/versions/%lld", version);
        if (d_lambda("GET", D_LAYERS, layer, suffix, NULL, NULL, &r) != 0) {
            char what[256];
            snprintf(what, sizeof what, "reading layer %s version %lld", layer, version);
            cli_aws_fail(cmd, what, "lambda:GetLayerVersion", arn, &r);
            cli_aws_reply_free(&r);
            return CLI_FAILED;
        }
        const char *sha = d_str(r.json, "Content", "CodeSha256");
        int same = sha && !strcmp(sha, z->sha_b64);
        cli_aws_reply_free(&r);
        if (same) {
            d_line("layer %s: unchanged (version %lld)", layer, version);
            return json_array_append_new(d->layer_arns, json_string(arn)) ? d_oom(cmd)
                                                                          : CLI_OK;
        }
    }
    char desc[256];
    snprintf(desc, sizeof desc, "fanout plugins %s sha256:%s",
             d->o.ntypes ? d->o.types[i] : "all", z->sha_hex);
    json_t *body =
        json_pack("{s:s, s:{s:s}, s:[s], s:[s], s:s}", "Description", desc, "Content",
                  "ZipFile", z->b64, "CompatibleRuntimes", D_RUNTIME,
                  "CompatibleArchitectures", d->arch, "LicenseInfo", "Apache-2.0");
    if (!body)
        return d_oom(cmd);
    if (d_lambda("POST", D_LAYERS, layer, "/versions", NULL, body, &r) != 0) {
        char what[256], res[D_ARN_MAX];
        snprintf(what, sizeof what, "publishing layer %s", layer);
        snprintf(res, sizeof res, "arn:%s:lambda:%s:%s:layer:%s", d->who.partition,
                 d->who.region, d->who.account, layer);
        cli_aws_fail(cmd, what, "lambda:PublishLayerVersion", res, &r);
        cli_aws_reply_free(&r);
        return CLI_FAILED;
    }
    const char *a = d_str(r.json, "LayerVersionArn", NULL);
    version = json_integer_value(json_object_get(r.json, "Version"));
    int rc = CLI_OK;
    if (!a) {
        fprintf(stderr,
                "fanout %s: layer %s: the PublishLayerVersion answer has no "
                "LayerVersionArn\n",
                cmd, layer);
        rc = CLI_FAILED;
    } else if (json_array_append_new(d->layer_arns, json_string(a)) != 0) {
        rc = d_oom(cmd);
    } else {
        d_line("layer %s: version %lld published (%zu bytes)", layer, version, z->size);
    }
    cli_aws_reply_free(&r);
    return rc;
}

/* Layer i, its zip released once it is no longer needed. */
static int d_layer(struct d_run *d, size_t i)
{
    int rc = d_layer_put(d, i);
    d_zip_free(&d->layer_zip[i]);
    return rc;
}

static char *d_description(void)
{
    static char desc[128];
    snprintf(desc, sizeof desc, "fanout stream fan-out (deployed by fanout %s)",
             FANOUT_VERSION);
    return desc;
}

/* The environment the function gets: its own variables kept, FANOUT_TABLE
 * set, FANOUT_REPORT_BATCH_ITEM_FAILURES "false" unless hook set it. */
static json_t *d_env(const struct d_run *d)
{
    json_t *vars = json_deep_copy(
        json_object_get(json_object_get(d->current, "Environment"), "Variables"));
    if (!vars)
        vars = json_object();
    if (!vars)
        return NULL;
    int rc = json_object_set_new(vars, "FANOUT_TABLE", json_string(d->o.table_name));
    if (!json_object_get(vars, D_RBIF))
        rc |= json_object_set_new(vars, D_RBIF, json_string("false"));
    if (rc) {
        json_decref(vars);
        return NULL;
    }
    return vars;
}

static int d_same_set(const json_t *a, const json_t *b)
{
    if (json_array_size(a) != json_array_size(b))
        return 0;
    size_t i, j;
    json_t *x, *y;
    json_array_foreach (a, i, x) {
        int found = 0;
        json_array_foreach (b, j, y)
            found |= json_equal(x, y);
        if (!found)
            return 0;
    }
    return 1;
}

static int d_create_function(struct d_run *d, char *fn_arn, size_t len)
{
    const char *cmd = d->cmd;
    json_t *env = d_env(d);
    json_t *body =
        env ? json_pack("{s:s, s:s, s:s, s:s, s:{s:s}, s:s, s:i, s:i, s:[s], s:O, "
                        "s:{s:o}, s:{s:s}}",
                        "FunctionName", d->o.name, "Runtime", D_RUNTIME, "Role",
                        d->role_arn, "Handler", D_HANDLER, "Code", "ZipFile", d->fn_zip.b64,
                        "Description", d_description(), "Timeout", (int)d->o.timeout_s,
                        "MemorySize", (int)d->o.memory_mb, "Architectures", d->arch,
                        "Layers", d->layer_arns, "Environment", "Variables", env, "Tags",
                        D_TAG, d->o.name)
            : NULL;
    if (body && json_array_size(d->o.subnets) &&
        json_object_set_new(body, "VpcConfig",
                            json_pack("{s:O, s:O}", "SubnetIds", d->o.subnets,
                                      "SecurityGroupIds", d->o.sgs)) != 0) {
        json_decref(body);
        body = NULL;
    }
    if (!body)
        return d_oom(cmd);
    char what[160], res[D_ARN_MAX];
    snprintf(what, sizeof what, "creating function %s", d->o.name);
    snprintf(res, sizeof res, "arn:%s:lambda:%s:%s:function:%s", d->who.partition,
             d->who.region, d->who.account, d->o.name);
    struct cli_aws_reply r;
    int rc = cli_lambda_write(cmd, what, "lambda:CreateFunction", res, "POST",
                              "/2015-03-31/functions", body, &r);
    json_decref(body);
    const char *arn = rc == 0 ? d_str(r.json, "FunctionArn", NULL) : NULL;
    fanout_strlcpy(fn_arn, arn ? arn : res, len);
    cli_aws_reply_free(&r);
    if (rc != 0)
        return CLI_FAILED;
    d_line("function %s: created", d->o.name);
    return cli_function_wait(cmd, d->o.name);
}

/* Wait while the function is being created or updated (Lambda refuses
 * another update meanwhile). A failed last update does not stop this one,
 * which may be its cure. */
static int d_ready(struct d_run *d)
{
    const char *state = d_str(d->current, "State", NULL);
    const char *last = d_str(d->current, "LastUpdateStatus", NULL);
    if (last && !strcmp(last, "Failed"))
        fprintf(stderr,
                "fanout %s: note: function %s: its last update failed (%s); updating "
                "it again\n",
                d->cmd, d->o.name,
                d_str(d->current, "LastUpdateStatusReason", NULL)
                    ? d_str(d->current, "LastUpdateStatusReason", NULL)
                    : "no reason given");
    if ((!state || strcmp(state, "Pending") != 0) &&
        (!last || strcmp(last, "InProgress") != 0))
        return CLI_OK;
    return cli_function_wait(d->cmd, d->o.name);
}

/* The configuration members that differ from the function's, into upd;
 * their names into `names`. */
static int d_config_diff(struct d_run *d, json_t *upd, char *names, size_t len)
{
    const json_t *cur = d->current;
    int rc = 0;
    /* after a failed update, everything is sent again */
    const char *last = d_str(cur, "LastUpdateStatus", NULL);
    int force = last && !strcmp(last, "Failed");
    names[0] = 0;
#define D_CHANGED(member, value)                                                           \
    do {                                                                                   \
        rc |= json_object_set_new(upd, member, value);                                     \
        if (names[0])                                                                      \
            strncat(names, ", ", len - strlen(names) - 1);                                 \
        strncat(names, member, len - strlen(names) - 1);                                   \
    } while (0)
    static const char *const strs[] = {"Role", "Handler", "Runtime", "Description"};
    const char *want[] = {d->role_arn, D_HANDLER, D_RUNTIME, d_description()};
    for (size_t i = 0; i < 4; i++) {
        const char *have = d_str(cur, strs[i], NULL);
        if (force || !have || strcmp(have, want[i]) != 0)
            D_CHANGED(strs[i], json_string(want[i]));
    }
    if (d->o.memory &&
        (force || json_integer_value(json_object_get(cur, "MemorySize")) != d->o.memory_mb))
        D_CHANGED("MemorySize", json_integer(d->o.memory_mb));
    if (d->o.timeout &&
        (force || json_integer_value(json_object_get(cur, "Timeout")) != d->o.timeout_s))
        D_CHANGED("Timeout", json_integer(d->o.timeout_s));
    json_t *have_layers = json_array();
    if (!have_layers)
        rc = -1;
    size_t i;
    json_t *l;
    json_array_foreach (json_object_get(cur, "Layers"), i, l)
        rc |= json_array_append_new(
            have_layers, json_string(d_str(l, "Arn", NULL) ? d_str(l, "Arn", NULL) : ""));
    if (force || !json_equal(have_layers, d->layer_arns))
        D_CHANGED("Layers", json_copy(d->layer_arns));
    json_decref(have_layers);
    json_t *env = d_env(d);
    const json_t *have_env =
        json_object_get(json_object_get(cur, "Environment"), "Variables");
    if (!env)
        rc = -1;
    else if (force || !json_equal(env, have_env))
        D_CHANGED("Environment", json_pack("{s:o}", "Variables", env));
    else
        json_decref(env);
    if (json_array_size(d->o.subnets)) {
        const json_t *vpc = json_object_get(cur, "VpcConfig");
        if (!d_same_set(json_object_get(vpc, "SubnetIds"), d->o.subnets) ||
            !d_same_set(json_object_get(vpc, "SecurityGroupIds"), d->o.sgs))
            D_CHANGED("VpcConfig", json_pack("{s:O, s:O}", "SubnetIds", d->o.subnets,
                                             "SecurityGroupIds", d->o.sgs));
    }
#undef D_CHANGED
    return rc ? -1 : 0;
}

static int d_update_function(struct d_run *d)
{
    const char *cmd = d->cmd, *name = d->o.name;
    int changed = 0;
    if (d_ready(d) != CLI_OK)
        return CLI_FAILED;
    const char *sha = d_str(d->current, "CodeSha256", NULL);
    const char *arch =
        json_string_value(json_array_get(json_object_get(d->current, "Architectures"), 0));
    struct cli_aws_reply r;
    char what[256];
    if (!sha || strcmp(sha, d->fn_zip.sha_b64) != 0 || (arch && strcmp(arch, d->arch))) {
        json_t *body =
            json_pack("{s:s, s:[s]}", "ZipFile", d->fn_zip.b64, "Architectures", d->arch);
        if (!body)
            return d_oom(cmd);
        if (d_lambda("PUT", D_FUNCTIONS, name, "/code", NULL, body, &r) != 0) {
            snprintf(what, sizeof what, "updating the code of function %s", name);
            cli_aws_fail(cmd, what, "lambda:UpdateFunctionCode",
                         d_str(d->current, "FunctionArn", NULL), &r);
            cli_aws_reply_free(&r);
            return CLI_FAILED;
        }
        cli_aws_reply_free(&r);
        d_line("function %s: code updated (sha256 %s)", name, d->fn_zip.sha_hex);
        changed = 1;
        if (cli_function_wait(cmd, name) != CLI_OK)
            return CLI_FAILED;
    }
    json_t *upd = json_object();
    char names[256];
    if (!upd || d_config_diff(d, upd, names, sizeof names) != 0) {
        json_decref(upd);
        return d_oom(cmd);
    }
    if (json_object_size(upd)) {
        char path[1024];
        snprintf(what, sizeof what, "updating the configuration of function %s", name);
        if (cli_function_path(name, "/configuration", path, sizeof path) != 0) {
            json_decref(upd);
            return d_oom(cmd);
        }
        int rc =
            cli_lambda_write(cmd, what, "lambda:UpdateFunctionConfiguration",
                             d_str(d->current, "FunctionArn", NULL), "PUT", path, upd, &r);
        cli_aws_reply_free(&r);
        json_decref(upd);
        if (rc != 0)
            return CLI_FAILED;
        d_line("function %s: configuration updated (%s)", name, names);
        changed = 1;
        if (cli_function_wait(cmd, name) != CLI_OK)
            return CLI_FAILED;
    } else {
        json_decref(upd);
    }
    if (!changed)
        d_line("function %s: unchanged", name);
    return CLI_OK;
}

static int d_deploy(struct d_run *d)
{
    /* the packages first when the flags name the architecture; else it is
     * the existing function's (x86_64 for a new one) */
    int rc = CLI_OK;
    if (d->o.arch) {
        d->arch = d->o.arch;
        rc = d_packages(d);
    }
    if (rc == CLI_OK)
        rc = d_identity(d->cmd, &d->who);
    if (rc == CLI_OK && d_function_read(d->cmd, d->o.name, 1, &d->current) < 0)
        rc = CLI_FAILED;
    if (rc == CLI_OK && !d->o.arch) {
        const char *have = json_string_value(
            json_array_get(json_object_get(d->current, "Architectures"), 0));
        d->arch = have && !strcmp(have, "arm64") ? "arm64" : "x86_64";
        rc = d_packages(d);
    }
    if (rc != CLI_OK)
        return rc;
    if ((rc = d_table(d)) != CLI_OK || (rc = d_role(d)) != CLI_OK)
        return rc;
    for (size_t i = 0; i < d->nlayers; i++)
        if ((rc = d_layer(d, i)) != CLI_OK)
            return rc;
    char fn_arn[D_ARN_MAX];
    if (!d->current) {
        rc = d_create_function(d, fn_arn, sizeof fn_arn);
    } else {
        const char *a = d_str(d->current, "FunctionArn", NULL);
        fanout_strlcpy(fn_arn, a ? a : d->o.name, sizeof fn_arn);
        rc = d_update_function(d);
    }
    if (rc == CLI_OK)
        d_line("%s", fn_arn);
    return rc;
}

int cli_deploy(const struct cli_command *cmd, int argc, char **argv)
{
    if (d_help(cmd, argc, argv))
        return CLI_OK;
    struct d_run d;
    memset(&d, 0, sizeof d);
    d.cmd = cmd->name;
    int rc = d_start(cmd->name, D_DEPLOY, argc, argv, &d.o);
    if (rc == CLI_OK && !(d.layer_arns = json_array()))
        rc = d_oom(cmd->name);
    if (rc == CLI_OK)
        rc = d_deploy(&d);
    d_zip_free(&d.fn_zip);
    for (size_t i = 0; i < D_MAX_LAYERS; i++)
        d_zip_free(&d.layer_zip[i]);
    json_decref(d.current);
    json_decref(d.layer_arns);
    d_opts_free(&d.o);
    return rc;
}
