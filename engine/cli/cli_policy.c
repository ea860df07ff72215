/* The inline policy "fanout" of the function's role, from what the
 * function reads and writes: its logs, its mapping table, its sources' read
 * APIs and each mapping's target, as ARNs built the way the plugins read
 * the destinations (README's mapping table). */
#include "cli/cli_policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ARNs longer than this are not AWS ARNs (2048 is IAM's resource limit). */
#define S_ARN_MAX 2048

/* What a statement holds: actions and resources, each once, in order. */
struct s_stmt {
    json_t *actions, *resources;
};

static int s_add(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach (arr, i, v)
        if (!strcmp(json_string_value(v), s))
            return 0;
    return json_array_append_new(arr, json_string(s));
}

static int s_add_actions(struct s_stmt *st, const char *const *actions)
{
    int rc = 0;
    for (; *actions; actions++)
        rc |= s_add(st->actions, *actions);
    return rc;
}

/* "arn:" and at least partition:service:region:account:resource. */
static int s_is_arn(const char *s)
{
    if (strncmp(s, "arn:", 4) != 0)
        return 0;
    int colons = 0;
    for (const char *p = s + 4; *p; p++)
        colons += *p == ':';
    return colons >= 4;
}

static int s_fmt(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int s_fmt(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, S_ARN_MAX, fmt, ap);
    va_end(ap);
    return n > 0 && n < S_ARN_MAX;
}

/* The host of `endpoint` (a host, or a URL with scheme, port and path)
 * into out; 1 when there is one. */
static int s_host(const char *endpoint, char *out, size_t len)
{
    const char *h = strstr(endpoint, "://");
    h = h ? h + 3 : endpoint;
    size_t n = strcspn(h, ":/#?");
    if (n == 0 || n >= len)
        return 0;
    memcpy(out, h, n);
    out[n] = 0;
    return 1;
}

/* The label after `marker` in `host` ("sqs." in sqs.eu-west-1.amazonaws.com)
 * into out. */
static int s_label_after(const char *host, const char *marker, char *out, size_t len)
{
    const char *p = strstr(host, marker);
    if (!p)
        return 0;
    p += strlen(marker);
    size_t n = strcspn(p, ".");
    if (n == 0 || n >= len || p[n] != '.')
        return 0;
    memcpy(out, p, n);
    out[n] = 0;
    return 1;
}

/* An SQS queue URL: https://sqs.R.<suffix>/A/Q, https://R.queue.<suffix>/A/Q,
 * https://queue.amazonaws.com/A/Q (us-east-1), or an emulator's
 * http://host:port/A/Q (the mapping's region). */
static int s_sqs_arn(const struct cli_policy_in *in, const char *url, const char *region,
                     char *out)
{
    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
        return 0;
    char host[256], r[64];
    if (!s_host(url, host, sizeof host))
        return 0;
    if (s_label_after(host, "sqs.", r, sizeof r) && !strncmp(host, "sqs.", 4))
        region = r;
    else if (!strcmp(host, "queue.amazonaws.com"))
        region = "us-east-1";
    else if (strstr(host, ".queue.") && s_label_after(host, "", r, sizeof r))
        region = r;
    const char *path = strchr(strstr(url, "://") + 3, '/');
    if (!path)
        return 0;
    char account[64], queue[256];
    const char *a = path + 1;
    size_t an = strcspn(a, "/");
    const char *q = a[an] == '/' ? a + an + 1 : NULL;
    size_t qn = q ? strcspn(q, "/?#") : 0;
    if (an == 0 || an >= sizeof account || !q || qn == 0 || qn >= sizeof queue ||
        (q[qn] && strcmp(q + qn, "/") != 0))
        return 0;
    memcpy(account, a, an);
    account[an] = 0;
    memcpy(queue, q, qn);
    queue[qn] = 0;
    return s_fmt(out, "arn:%s:sqs:%s:%s:%s", in->partition, region, account, queue);
}

/* A Lambda function: ARN, partial ARN (A:function:NAME[:Q]) or NAME[:Q]. */
static int s_lambda_arn(const struct cli_policy_in *in, const char *d, const char *region,
                        char *out)
{
    if (!strncmp(d, "arn:", 4))
        return s_is_arn(d) && s_fmt(out, "%s", d);
    const char *f = strstr(d, ":function:");
    if (f)
        return s_fmt(out, "arn:%s:lambda:%s:%.*s:function:%s", in->partition, region,
                     (int)(f - d), d, f + 10);
    return !strchr(d, '/') && s_fmt(out, "arn:%s:lambda:%s:%s:function:%s", in->partition,
                                    region, in->account, d);
}

/* An OpenSearch domain endpoint (search-DOMAIN-ID.R.es.<suffix>, or vpc-):
 * arn:P:es:R:A:domain/DOMAIN/'*'. */
static int s_es_arn(const struct cli_policy_in *in, const char *d, char *out)
{
    const char *hash = strchr(d, '#');
    char endpoint[512], host[256], region[64];
    size_t n = hash ? (size_t)(hash - d) : strlen(d);
    if (n == 0 || n >= sizeof endpoint)
        return 0;
    memcpy(endpoint, d, n);
    endpoint[n] = 0;
    if (!s_host(endpoint, host, sizeof host))
        return 0;
    const char *label = !strncmp(host, "search-", 7) ? host + 7
                        : !strncmp(host, "vpc-", 4)  ? host + 4
                                                     : NULL;
    const char *dot = label ? strchr(label, '.') : NULL;
    if (!dot || !s_label_after(dot, ".", region, sizeof region) ||
        !strstr(dot + 1 + strlen(region), ".es."))
        return 0;
    /* DOMAIN-ID: the id is the last '-' part */
    const char *dash = NULL;
    for (const char *p = label; p < dot; p++)
        if (*p == '-')
            dash = p;
    if (!dash || dash == label)
        return 0;
    return s_fmt(out, "arn:%s:es:%s:%s:domain/%.*s/*", in->partition, region, in->account,
                 (int)(dash - label), label);
}

/* An IoT "endpoint#topic": arn:P:iot:R:A:topic/TOPIC (the region of an
 * xxx-ats.iot.R.<suffix> endpoint, else the mapping's). */
static int s_iot_arn(const struct cli_policy_in *in, const char *d, const char *region,
                     char *out)
{
    const char *hash = strchr(d, '#');
    if (!hash || !hash[1])
        return 0;
    char endpoint[512], host[256], r[64];
    size_t n = (size_t)(hash - d);
    if (n < sizeof endpoint) {
        memcpy(endpoint, d, n);
        endpoint[n] = 0;
        if (s_host(endpoint, host, sizeof host) &&
            s_label_after(host, ".iot.", r, sizeof r))
            region = r;
    }
    return s_fmt(out, "arn:%s:iot:%s:%s:topic/%s", in->partition, region, in->account,
                 hash + 1);
}

static const char *s_str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && *s ? s : NULL;
}

/* The target statements, one per service (an action only ever applies to
 * its own service's resources; one statement each says so plainly), with
 * the Sids of deploy/template.yaml. */
enum s_kind {
    K_SNS,
    K_SQS,
    K_KINESIS,
    K_FIREHOSE,
    K_LAMBDA,
    K_IOT,
    K_ES,
    K_ROLES,
    K_COUNT
};

static const struct s_kind_def {
    const char *type; /* the mapping's type */
    const char *sid;
    const char *const actions[3];
} s_kinds[K_COUNT] = {
    [K_SNS] = {"sns", "TargetsSns", {"sns:Publish"}},
    [K_SQS] = {"sqs", "TargetsSqs", {"sqs:SendMessage"}},
    [K_KINESIS] = {"kinesis",
                   "TargetsKinesis",
                   {"kinesis:PutRecords", "kinesis:PutRecord"}},
    [K_FIREHOSE] = {"firehose",
                    "TargetsFirehose",
                    {"firehose:PutRecordBatch", "firehose:PutRecord"}},
    [K_LAMBDA] = {"lambda", "TargetsLambda", {"lambda:InvokeFunction"}},
    [K_IOT] = {"iot", "TargetsIot", {"iot:Publish"}},
    [K_ES] = {"es", "TargetsEs", {"es:ESHttpPost", "es:ESHttpPut"}},
    /* a target reached through a role: the role holds the service's
     * permission */
    [K_ROLES] = {NULL, "TargetsRoles", {"sts:AssumeRole"}},
};

/* A mapping's destination as the ARN its permission names, for `kind`. */
static int s_target_arn(const struct cli_policy_in *in, enum s_kind kind, const char *d,
                        const char *region, char *arn)
{
    switch (kind) {
    case K_SNS: return s_is_arn(d) && s_fmt(arn, "%s", d);
    case K_SQS: return s_is_arn(d) ? s_fmt(arn, "%s", d) : s_sqs_arn(in, d, region, arn);
    case K_KINESIS:
        return s_is_arn(d) ? s_fmt(arn, "%s", d)
                           : !strchr(d, '/') && !strchr(d, ':') &&
                                 s_fmt(arn, "arn:%s:kinesis:%s:%s:stream/%s", in->partition,
                                       region, in->account, d);
    case K_FIREHOSE:
        return s_is_arn(d) ? s_fmt(arn, "%s", d)
                           : !strchr(d, '/') && !strchr(d, ':') &&
                                 s_fmt(arn, "arn:%s:firehose:%s:%s:deliverystream/%s",
                                       in->partition, region, in->account, d);
    case K_LAMBDA: return s_lambda_arn(in, d, region, arn);
    case K_IOT: return s_iot_arn(in, d, region, arn);
    case K_ES: return s_es_arn(in, d, arn);
    default: return 0;
    }
}

/* One mapping's permission into its service's statement (`st`, K_COUNT
 * of them); 0, 1 warned (nothing added), -1 out of memory. */
static int s_target(const struct cli_policy_in *in, const json_t *m, struct s_stmt *st,
                    const char *cmd, FILE *warn)
{
    const char *type = s_str(m, "type"), *d = s_str(m, "destination");
    const char *id = s_str(m, "id"), *role = s_str(m, "role");
    const char *region = s_str(m, "region");
    if (!region)
        region = in->region;
    if (!type)
        type = "";
    if (!strcmp(type, "memcached") || !strcmp(type, "redis") || !strcmp(type, "file"))
        return 0; /* the network, or the local file system: no IAM action */
    if (role && s_is_arn(role)) {
        struct s_stmt *r = &st[K_ROLES];
        return s_add_actions(r, s_kinds[K_ROLES].actions) | s_add(r->resources, role) ? -1
                                                                                      : 0;
    }
    enum s_kind kind = K_SNS;
    while (kind < K_ROLES && strcmp(type, s_kinds[kind].type) != 0)
        kind++;
    if (kind == K_ROLES) {
        fprintf(warn,
                "fanout %s: warning: mapping %s: plugin type \"%s\" has no known IAM "
                "permissions; add what it needs to the role yourself\n",
                cmd, id ? id : "(no id)", type);
        return 1;
    }
    char arn[S_ARN_MAX] = "";
    if (!d || !s_target_arn(in, kind, d, region, arn)) {
        fprintf(warn,
                "fanout %s: warning: mapping %s: the %s destination \"%s\" is not an ARN "
                "and cannot be turned into one; no permission added for it\n",
                cmd, id ? id : "(no id)", type, d ? d : "");
        return 1;
    }
    struct s_stmt *t = &st[kind];
    return s_add_actions(t, s_kinds[kind].actions) | s_add(t->resources, arn) ? -1 : 0;
}

static json_t *s_statement(const char *sid, json_t *actions, json_t *resources)
{
    return json_pack("{s:s, s:s, s:o, s:o}", "Sid", sid, "Effect", "Allow", "Action",
                     actions, "Resource", resources);
}

/* The sources' read actions and streams. */
static int s_sources(const struct cli_policy_in *in, json_t *stmts)
{
    static const char *const kinesis[] = {"kinesis:DescribeStream",
                                          "kinesis:DescribeStreamSummary",
                                          "kinesis:GetRecords",
                                          "kinesis:GetShardIterator",
                                          "kinesis:ListShards",
                                          "kinesis:SubscribeToShard",
                                          NULL};
    static const char *const ddb[] = {"dynamodb:DescribeStream", "dynamodb:GetRecords",
                                      "dynamodb:GetShardIterator", NULL};
    struct s_stmt st = {json_array(), json_array()};
    json_t *list = json_array();
    int rc = !st.actions || !st.resources || !list ? -1 : 0;
    size_t i;
    json_t *v;
    json_array_foreach (in->sources, i, v) {
        const char *arn = json_string_value(v);
        if (rc || !arn)
            continue;
        int is_kinesis = strstr(arn, ":kinesis:") != NULL;
        rc |= s_add_actions(&st, is_kinesis ? kinesis : ddb);
        rc |= s_add(list, is_kinesis ? "kinesis:ListStreams" : "dynamodb:ListStreams");
        rc |= s_add(st.resources, arn);
    }
    if (!rc && json_array_size(st.resources)) {
        rc |=
            json_array_append_new(stmts, s_statement("Sources", st.actions, st.resources));
        rc |= json_array_append_new(
            stmts, s_statement("SourcesList", list, json_pack("[s]", "*")));
        return rc ? -1 : 0;
    }
    json_decref(st.actions);
    json_decref(st.resources);
    json_decref(list);
    return rc ? -1 : 0;
}

json_t *cli_policy_build(const struct cli_policy_in *in, const char *cmd, FILE *warn)
{
    json_t *stmts = json_array();
    char group[S_ARN_MAX], streams[S_ARN_MAX];
    int rc = !stmts ||
             !s_fmt(group, "arn:%s:logs:%s:%s:log-group:/aws/lambda/%s", in->partition,
                    in->region, in->account, in->function) ||
             !s_fmt(streams, "%s:*", group);
    if (!rc) {
        rc |= json_array_append_new(
            stmts, s_statement("Logs",
                               json_pack("[s,s,s]", "logs:CreateLogGroup",
                                         "logs:CreateLogStream", "logs:PutLogEvents"),
                               json_pack("[s,s]", group, streams)));
        rc |= json_array_append_new(
            stmts, s_statement("Table",
                               json_pack("[s,s,s,s]", "dynamodb:Query", "dynamodb:GetItem",
                                         "dynamodb:Scan", "dynamodb:DescribeTable"),
                               json_pack("[s]", in->table_arn)));
        rc |= s_sources(in, stmts);
    }
    struct s_stmt st[K_COUNT];
    for (int k = 0; k < K_COUNT; k++) {
        st[k].actions = json_array();
        st[k].resources = json_array();
        rc |= !st[k].actions || !st[k].resources;
    }
    size_t i;
    json_t *m;
    json_array_foreach (in->mappings, i, m) {
        if (!rc && json_is_object(m))
            rc |= s_target(in, m, st, cmd, warn) < 0;
    }
    for (int k = 0; k < K_COUNT; k++) {
        if (!rc && json_array_size(st[k].resources)) {
            rc |= json_array_append_new(
                stmts, s_statement(s_kinds[k].sid, st[k].actions, st[k].resources));
        } else {
            json_decref(st[k].actions);
            json_decref(st[k].resources);
        }
    }
    if (rc) {
        json_decref(stmts);
        return NULL;
    }
    return json_pack("{s:s, s:o}", "Version", "2012-10-17", "Statement", stmts);
}
