/* The function's execution role and its inline policy "fanout": GetRole,
 * CreateRole with the tag fanout:function, the policy built from the
 * function's mappings and put unless GetRolePolicy shows it unchanged
 * (cli_deploy_refresh_policy, for hook and unhook too), the managed VPC
 * policy attached or detached (deploy), and the role's deletion (destroy). */
#include "cli/cli_deploy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fanout/helpers.h>
#include <fanout/xml.h>

#include "cli/cli_aws.h"
#include "cli/cli_cmd.h"
#include "cli/cli_deploy_util.h"
#include "cli/cli_policy.h"
#include "core/ddb.h"
#include "core/ddb_table.h"

#define D_POLICY     "fanout"
#define D_VPC_POLICY "AWSLambdaVPCAccessExecutionRole"
#define D_TRUST                                                                            \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"      \
    "{\"Service\":\"lambda.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}"

struct d_scan {
    const char *cmd;
    json_t *out;
};

static int d_scan_item(void *ctx, const json_t *item)
{
    struct d_scan *s = ctx;
    struct fanout_sbuf b = {0};
    char err[256];
    if (fanout_ddb_image_to_json(item, 1, &b, err, sizeof err) != 0) {
        fprintf(stderr,
                "fanout %s: warning: a mapping item does not read (%s); no permission "
                "added for it\n",
                s->cmd, err);
        fanout_sbuf_free(&b);
        return 0;
    }
    json_t *j = b.p ? json_loadb(b.p, b.len, 0, NULL) : NULL;
    fanout_sbuf_free(&b);
    if (json_is_object(j))
        return json_array_append_new(s->out, j) ? -1 : 0;
    json_decref(j);
    return 0;
}

/* Every mapping of the table (active or not), as plain JSON. */
static int d_table_mappings(const char *cmd, const char *table, json_t *out)
{
    json_t *body = json_pack("{s:s}", "TableName", table);
    if (!body)
        return d_oom(cmd);
    struct d_scan s = {cmd, out};
    struct fanout_json_reply jr;
    memset(&jr, 0, sizeof jr);
    int rc = fanout_ddb_read_pages(cli_aws_region(), "Scan", body, 0, d_scan_item, &s, &jr);
    json_decref(body);
    json_decref(jr.json);
    if (rc == 0)
        return CLI_OK;
    if (rc == -2)
        return d_oom(cmd);
    struct cli_aws_reply r = {.status = jr.status};
    fanout_strlcpy(r.code, jr.code, sizeof r.code);
    fanout_strlcpy(r.message, jr.message, sizeof r.message);
    char what[320];
    snprintf(what, sizeof what, "reading the mappings of table %s", table);
    return cli_aws_fail(cmd, what, "dynamodb:Scan", table, &r);
}

/* Percent-decode `s` in place (IAM returns policy documents URL-encoded).
 * 0, or -1 when an escape is malformed. */
static int d_unescape(char *s)
{
    char *w = s;
    for (const char *p = s; *p; p++) {
        if (*p != '%') {
            *w++ = *p;
            continue;
        }
        unsigned v = 0;
        for (int k = 1; k <= 2; k++) {
            int d = fanout_hex_digit(p[k]);
            if (d < 0)
                return -1;
            v = v * 16 + (unsigned)d;
        }
        *w++ = (char)v;
        p += 2;
    }
    *w = 0;
    return 0;
}

/* 1 when the role's policy "fanout" is `doc` already (GetRolePolicy; any
 * doubt, an error included, is 0: the policy is put). */
static int d_policy_same(const char *role, const json_t *doc)
{
    const char *params[] = {"RoleName", role, "PolicyName", D_POLICY, NULL};
    struct cli_aws_reply r;
    int same = 0;
    if (d_iam("GetRolePolicy", params, &r) == 0) {
        char *text = cli_aws_xml_text(r.body, r.len, "PolicyDocument");
        if (text && d_unescape(text) == 0) {
            json_t *have = json_loads(text, 0, NULL);
            same = have && json_equal(have, doc);
            json_decref(have);
        }
        free(text);
    }
    cli_aws_reply_free(&r);
    return same;
}

/* Put the inline policy "fanout" of `role`. */
static int d_put_policy(const char *cmd, const struct d_who *w, const char *function,
                        const char *role, const char *table, const char *table_arn,
                        const char *also_source)
{
    json_t *sources = json_array(), *esms = json_array(), *mappings = json_array();
    int rc = sources && esms && mappings ? CLI_OK : d_oom(cmd);
    if (rc == CLI_OK)
        rc = cli_esm_list(cmd, function, NULL, esms);
    if (rc == CLI_OK)
        rc = d_table_mappings(cmd, table, mappings);
    size_t i;
    json_t *e;
    json_array_foreach (esms, i, e) {
        const char *src = d_str(e, "EventSourceArn", NULL);
        if (rc == CLI_OK && src && json_array_append_new(sources, json_string(src)) != 0)
            rc = d_oom(cmd);
    }
    if (rc == CLI_OK && also_source &&
        json_array_append_new(sources, json_string(also_source)) != 0)
        rc = d_oom(cmd);
    json_t *doc = NULL;
    char *text = NULL;
    if (rc == CLI_OK) {
        const struct cli_policy_in in = {w->partition, w->region, w->account, function,
                                         table_arn,    sources,   mappings};
        doc = cli_policy_build(&in, cmd, stderr);
        text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        if (!text)
            rc = d_oom(cmd);
    }
    if (rc == CLI_OK && d_policy_same(role, doc)) {
        d_line("role %s: policy %s unchanged (%zu statements: %zu sources, %zu mappings "
               "read)",
               role, D_POLICY, json_array_size(json_object_get(doc, "Statement")),
               json_array_size(sources), json_array_size(mappings));
    } else if (rc == CLI_OK) {
        const char *params[] = {"RoleName",       role, "PolicyName", D_POLICY,
                                "PolicyDocument", text, NULL};
        struct cli_aws_reply r;
        if (d_iam("PutRolePolicy", params, &r) != 0) {
            char what[160], res[D_ARN_MAX];
            snprintf(what, sizeof what, "role %s: putting its policy %s", role, D_POLICY);
            snprintf(res, sizeof res, "arn:%s:iam::%s:role/%s", w->partition, w->account,
                     role);
            rc = cli_aws_fail(cmd, what, "iam:PutRolePolicy", res, &r);
        } else {
            d_line(
                "role %s: policy %s put (%zu statements: %zu sources, %zu mappings read)",
                role, D_POLICY, json_array_size(json_object_get(doc, "Statement")),
                json_array_size(sources), json_array_size(mappings));
        }
        cli_aws_reply_free(&r);
    }
    free(text);
    json_decref(doc);
    json_decref(sources);
    json_decref(esms);
    json_decref(mappings);
    return rc;
}

/* The value of tag `key` in a GetRole answer (Role/Tags/member), or 0. */
static int d_role_tag(const char *body, size_t len, const char *key, char *out,
                      size_t out_len)
{
    struct fanout_xml_elem tags, m;
    if (!body || !fanout_xml_find(body, len, "Tags", 0, &tags) || !tags.closed)
        return 0;
    const char *p = tags.content;
    size_t n = tags.content_len;
    while (n && fanout_xml_find(p, n, "member", 0, &m) && m.closed) {
        char k[256];
        if (fanout_xml_field(m.content, m.content_len, "Key", 0, FANOUT_XML_TRIM, k,
                             sizeof k) >= 0 &&
            !strcmp(k, key) &&
            fanout_xml_field(m.content, m.content_len, "Value", 0, FANOUT_XML_TRIM, out,
                             out_len) >= 0)
            return 1;
        p += m.after;
        n -= m.after;
    }
    return 0;
}

/* The last part of a role ARN (arn:P:iam::A:role/path/NAME) into out. */
static int d_role_name(const char *arn, char *out, size_t len)
{
    const char *r = arn ? strstr(arn, ":role/") : NULL;
    const char *slash = r ? strrchr(r, '/') : NULL;
    if (!slash || !slash[1] || strlen(slash + 1) >= len)
        return 0;
    fanout_strlcpy(out, slash + 1, len);
    return 1;
}

/* GetRole: 0 with the answer, 1 no such role, -1 failed (printed). */
static int d_role_get(const char *cmd, const char *role, struct cli_aws_reply *r)
{
    const char *params[] = {"RoleName", role, NULL};
    if (d_iam("GetRole", params, r) == 0)
        return 0;
    if (d_is(r, "NoSuchEntity")) {
        cli_aws_reply_free(r);
        return 1;
    }
    char what[160];
    snprintf(what, sizeof what, "reading role %s", role);
    cli_aws_fail(cmd, what, "iam:GetRole", role, r);
    cli_aws_reply_free(r);
    return -1;
}

int cli_deploy_refresh_policy(const char *cmd, const char *function,
                              const char *also_source)
{
    struct d_who w;
    if (d_identity(cmd, &w) != CLI_OK)
        return CLI_FAILED;
    json_t *cfg = cli_function_config(cmd, function);
    if (!cfg)
        return CLI_FAILED;
    const char *name = d_str(cfg, "FunctionName", NULL);
    char fname[D_MAX_NAME + 1], role[D_MAX_NAME + 1], table[1024], tag[256];
    fanout_strlcpy(fname, name ? name : function, sizeof fname);
    const char *tv = json_string_value(json_object_get(
        json_object_get(json_object_get(cfg, "Environment"), "Variables"), "FANOUT_TABLE"));
    if (tv && *tv)
        fanout_strlcpy(table, tv, sizeof table);
    else
        snprintf(table, sizeof table, "%sTargets", fname);
    int have_role = d_role_name(d_str(cfg, "Role", NULL), role, sizeof role);
    json_decref(cfg);
    if (!have_role) {
        fprintf(stderr, "fanout %s: function %s: its configuration names no role ARN\n",
                cmd, fname);
        return CLI_FAILED;
    }
    struct cli_aws_reply r;
    int rc = d_role_get(cmd, role, &r);
    if (rc < 0)
        return CLI_FAILED;
    int ours =
        rc == 0 && d_role_tag(r.body, r.len, D_TAG, tag, sizeof tag) && !strcmp(tag, fname);
    cli_aws_reply_free(&r);
    if (!ours) {
        fprintf(
            stderr,
            "fanout %s: note: role %s is not deploy's (no tag %s=%s): its policy is left "
            "as it is; it must allow what the function's sources and targets need\n",
            cmd, role, D_TAG, fname);
        return CLI_OK;
    }
    json_t *body = json_pack("{s:s}", "TableName", table);
    if (!body)
        return d_oom(cmd);
    if (cli_aws_json("dynamodb", "1.0", "DynamoDB_20120810.DescribeTable", body, &r) != 0) {
        char what[1200];
        snprintf(what, sizeof what, "reading table %s (FANOUT_TABLE of function %s)", table,
                 fname);
        rc = cli_aws_fail(cmd, what, "dynamodb:DescribeTable", table, &r);
        cli_aws_reply_free(&r);
        return rc;
    }
    char table_arn[D_ARN_MAX];
    const char *arn = d_str(json_object_get(r.json, "Table"), "TableArn", NULL);
    fanout_strlcpy(table_arn, arn ? arn : table, sizeof table_arn);
    cli_aws_reply_free(&r);
    return d_put_policy(cmd, &w, fname, role, table, table_arn, also_source);
}

/* ---- deploy: the role ----------------------------------------------------------- */

/* The managed VPC policy attached to the role when the function is in a
 * VPC (`want`), detached otherwise; a role just created has none. */
static int d_vpc_policy(const char *cmd, const struct d_who *who, const char *role_name,
                        const char *role_arn, int created, int want)
{
    char policy[D_ARN_MAX];
    snprintf(policy, sizeof policy, "arn:%s:iam::aws:policy/service-role/%s",
             who->partition, D_VPC_POLICY);
    int attached = 0;
    struct cli_aws_reply r;
    if (!created) {
        const char *params[] = {"RoleName", role_name, NULL};
        if (d_iam("ListAttachedRolePolicies", params, &r) != 0) {
            char what[160];
            snprintf(what, sizeof what, "role %s: listing its managed policies", role_name);
            cli_aws_fail(cmd, what, "iam:ListAttachedRolePolicies", role_arn, &r);
            cli_aws_reply_free(&r);
            return CLI_FAILED;
        }
        attached = r.body && strstr(r.body, policy) != NULL;
        cli_aws_reply_free(&r);
    }
    if (want == attached)
        return CLI_OK;
    const char *action = want ? "AttachRolePolicy" : "DetachRolePolicy";
    const char *params[] = {"RoleName", role_name, "PolicyArn", policy, NULL};
    if (d_iam(action, params, &r) != 0 && !(!want && d_is(&r, "NoSuchEntity"))) {
        char what[256], perm[64];
        snprintf(what, sizeof what, "role %s: %s %s", role_name,
                 want ? "attaching" : "detaching", D_VPC_POLICY);
        snprintf(perm, sizeof perm, "iam:%s", action);
        cli_aws_fail(cmd, what, perm, role_arn, &r);
        cli_aws_reply_free(&r);
        return CLI_FAILED;
    }
    cli_aws_reply_free(&r);
    d_line("role %s: policy %s %s", role_name, D_VPC_POLICY,
           want ? "attached" : "detached");
    return CLI_OK;
}

/* The role deploy names: `exec_role`, else the last part of `role_arn`
 * (or NULL: the function's), else FUNCTIONRole; into `role`, then GetRole
 * as d_role_get (0, 1 none, -1 failed and printed). */
static int d_role_read(const char *cmd, const char *exec_role, const char *role_arn,
                       const char *function, char *role, size_t len,
                       struct cli_aws_reply *r)
{
    if (exec_role)
        fanout_strlcpy(role, exec_role, len);
    else if (!d_role_name(role_arn, role, len) &&
             snprintf(role, len, "%sRole", function) >= (int)len)
        return -1; /* d_parse refused such a name */
    return d_role_get(cmd, role, r);
}

int d_role_setup(const struct d_role_in *in, char *role_arn, size_t len)
{
    const char *cmd = in->cmd;
    if (in->exec_role_arn) {
        fanout_strlcpy(role_arn, in->exec_role_arn, len);
        d_line("role %s: given with --exec-role-arn, not changed (it must allow what the "
               "function reads and writes)",
               role_arn);
        return CLI_OK;
    }
    char role_name[D_MAX_NAME + 8];
    int created = 0;
    struct cli_aws_reply r;
    int rc = d_role_read(cmd, in->exec_role, NULL, in->function, role_name,
                         sizeof role_name, &r);
    if (rc < 0)
        return CLI_FAILED;
    if (rc == 1) {
        char desc[160];
        snprintf(desc, sizeof desc, "Execution role of the fanout function %s",
                 in->function);
        const char *params[] = {"RoleName",
                                role_name,
                                "Path",
                                "/",
                                "AssumeRolePolicyDocument",
                                D_TRUST,
                                "Description",
                                desc,
                                "Tags.member.1.Key",
                                D_TAG,
                                "Tags.member.1.Value",
                                in->function,
                                NULL};
        if (d_iam("CreateRole", params, &r) != 0) {
            char what[160], res[D_ARN_MAX];
            snprintf(what, sizeof what, "creating role %s", role_name);
            snprintf(res, sizeof res, "arn:%s:iam::%s:role/%s", in->who->partition,
                     in->who->account, role_name);
            rc = cli_aws_fail(cmd, what, "iam:CreateRole", res, &r);
            cli_aws_reply_free(&r);
            return rc;
        }
        created = 1;
    }
    char *arn = cli_aws_xml_text(r.body, r.len, "Arn");
    cli_aws_reply_free(&r);
    if (!arn || strncmp(arn, "arn:", 4) || strlen(arn) >= len) {
        free(arn);
        fprintf(stderr, "fanout %s: role %s: the %s answer has no Role Arn\n", cmd,
                role_name, created ? "CreateRole" : "GetRole");
        return CLI_FAILED;
    }
    fanout_strlcpy(role_arn, arn, len);
    free(arn);
    d_line("role %s: %s", role_name, created ? "created" : "unchanged");
    rc =
        d_put_policy(cmd, in->who, in->function, role_name, in->table, in->table_arn, NULL);
    return rc == CLI_OK
               ? d_vpc_policy(cmd, in->who, role_name, role_arn, created, in->in_vpc)
               : rc;
}

/* ---- destroy: the role ---------------------------------------------------------- */

/* IAM calls whose "no such entity" answer means done. */
static int d_iam_gone(const char *cmd, const char *action, const char *const *params,
                      const char *what, const char *resource)
{
    struct cli_aws_reply r;
    int rc = CLI_OK;
    if (d_iam(action, params, &r) != 0 && !d_is(&r, "NoSuchEntity")) {
        char perm[64];
        snprintf(perm, sizeof perm, "iam:%s", action);
        rc = cli_aws_fail(cmd, what, perm, resource, &r);
    }
    cli_aws_reply_free(&r);
    return rc;
}

int d_role_destroy(const char *cmd, const char *function, const char *exec_role,
                   const char *exec_role_arn, const char *role_arn)
{
    char role[D_MAX_NAME + 1], tag[256];
    if (exec_role_arn) {
        d_line("role %s: kept (given with --exec-role-arn)", exec_role_arn);
        return CLI_OK;
    }
    struct cli_aws_reply r;
    int rc = d_role_read(cmd, exec_role, role_arn, function, role, sizeof role, &r);
    if (rc < 0)
        return CLI_FAILED;
    if (rc == 1) {
        d_line("role %s: not found", role);
        return CLI_OK;
    }
    int ours = d_role_tag(r.body, r.len, D_TAG, tag, sizeof tag) && !strcmp(tag, function);
    char *arn = cli_aws_xml_text(r.body, r.len, "Arn");
    cli_aws_reply_free(&r);
    if (!ours) {
        d_line("role %s: kept (it has no tag %s=%s: deploy did not create it for this "
               "function)",
               role, D_TAG, function);
        free(arn);
        return CLI_OK;
    }
    char what[160], vpc[D_ARN_MAX], partition[32] = "aws";
    /* arn:PARTITION:iam::... */
    if (arn && !strncmp(arn, "arn:", 4) && strcspn(arn + 4, ":") < sizeof partition) {
        memcpy(partition, arn + 4, strcspn(arn + 4, ":"));
        partition[strcspn(arn + 4, ":")] = 0;
    }
    snprintf(vpc, sizeof vpc, "arn:%s:iam::aws:policy/service-role/%s", partition,
             D_VPC_POLICY);
    const char *pol[] = {"RoleName", role, "PolicyName", D_POLICY, NULL};
    const char *det[] = {"RoleName", role, "PolicyArn", vpc, NULL};
    const char *del[] = {"RoleName", role, NULL};
    snprintf(what, sizeof what, "role %s: deleting its policy %s", role, D_POLICY);
    rc = d_iam_gone(cmd, "DeleteRolePolicy", pol, what, arn);
    if (rc == CLI_OK) {
        snprintf(what, sizeof what, "role %s: detaching %s", role, D_VPC_POLICY);
        rc = d_iam_gone(cmd, "DetachRolePolicy", det, what, arn);
    }
    if (rc == CLI_OK) {
        snprintf(what, sizeof what, "deleting role %s", role);
        if (d_iam("DeleteRole", del, &r) != 0 && !d_is(&r, "NoSuchEntity")) {
            rc = cli_aws_fail(cmd, what, "iam:DeleteRole", arn, &r);
            if (d_is(&r, "DeleteConflict"))
                fprintf(stderr,
                        "fanout %s: role %s has policies or instance profiles that deploy "
                        "did not add: remove them, then run destroy again\n",
                        cmd, role);
        } else {
            d_line("role %s: deleted", role);
        }
        cli_aws_reply_free(&r);
    }
    free(arn);
    return rc;
}
