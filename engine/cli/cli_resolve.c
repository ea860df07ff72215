/* register's short destination names, resolved as the original
 * aws-lambda-fanout CLI resolved them (its `fanout` script asked the aws
 * command; here the same API calls go through the AWS layer, signed, with
 * the endpoint overrides AWS_ENDPOINT_URL_<SERVICE>). What is stored is
 * what the original stored, so that its engine still reads the table. */
#include "cli/cli_resolve.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fanout/xml.h>

#include "aws/endpoint.h"
#include "cli/cli_aws.h"
#include "common/log.h"
#include "common/util.h"

enum { R_OK = 0, R_FAILED = 1, R_USAGE = 2 };

/* ListTopics answers 100 topics a page: 1,000 pages is 100,000 topics,
 * the most an account can have. */
#define R_MAX_TOPIC_PAGES 1000
#define R_MAX_NAME        1024

static const char *r_str(const json_t *obj, const char *a, const char *b)
{
    const json_t *v = json_object_get(obj, a);
    if (b)
        v = json_object_get(v, b);
    const char *s = json_string_value(v);
    return s && *s ? s : NULL;
}

/* ---- Query answers (SNS, ElastiCache): the SDK's XML reader -------------- */

/* The first closed element `name` in [p, p+n). 1 when found. */
static int r_xml_find(const char *p, size_t n, const char *name, struct fanout_xml_elem *el)
{
    return fanout_xml_find(p, n, name, 0, el) && el->closed;
}

/* The trimmed text of an element's content: malloc'd, or NULL. */
static char *r_xml_text(const struct fanout_xml_elem *el)
{
    char *out = malloc(el->content_len + 1);
    if (out)
        fanout_xml_text(el->content, el->content_len, FANOUT_XML_TRIM, out,
                        el->content_len + 1);
    return out;
}

/* The text of element `name` inside [p, p+n): malloc'd, or NULL. */
static char *r_xml_field(const char *p, size_t n, const char *name)
{
    struct fanout_xml_elem el;
    return r_xml_find(p, n, name, &el) ? r_xml_text(&el) : NULL;
}

/* ---- messages --------------------------------------------------------------- */

static const char *r_service_name(const char *type)
{
    static const struct {
        const char *type, *what;
    } names[] = {
        {"sqs", "Amazon SQS queue"},
        {"sns", "Amazon SNS topic"},
        {"kinesis", "Amazon Kinesis stream"},
        {"firehose", "Amazon Data Firehose delivery stream"},
        {"lambda", "AWS Lambda function"},
        {"es", "Amazon OpenSearch Service (Elasticsearch) domain"},
        {"iot", "AWS IoT endpoint"},
        {"memcached", "Amazon ElastiCache Memcached cluster"},
        {"redis", "Amazon ElastiCache Redis replication group"},
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(names[i].type, type))
            return names[i].what;
    return type;
}

/* The service answered that the resource does not exist (exit 2), or the
 * request failed (exit 1). */
static int r_lookup_failed(const struct fanout_cli_dest *d, const char *op,
                           const struct cli_aws_reply *r,
                           const char *const *not_found_codes)
{
    int missing = 0;
    for (const char *const *c = not_found_codes; *c; c++)
        missing |= strcmp(r->code, *c) == 0;
    fprintf(stderr,
            missing ? "fanout %s: %s: there is no %s \"%s\" in this account and region (%s "
                      "answered %s%s%s); give an existing name, or the full form\n"
                    : "fanout %s: %s: looking up the %s \"%s\" failed: %s %s%s%s; nothing "
                      "was written\n",
            d->command, d->type, r_service_name(d->type), d->destination, op, r->code,
            r->message[0] ? ": " : "", r->message);
    return missing ? R_USAGE : R_FAILED;
}

static int r_oom(const struct fanout_cli_dest *d)
{
    fprintf(stderr, "fanout %s: out of memory\n", d->command);
    return R_FAILED;
}

/* The value to store, made by `fmt`; shown at debug level. */
static int r_done(const struct fanout_cli_dest *d, const char *op, char **out,
                  const char *fmt, ...) FANOUT_FMT(4, 5);
static int r_done(const struct fanout_cli_dest *d, const char *op, char **out,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(out, fmt, ap);
    va_end(ap);
    if (n < 0) {
        *out = NULL;
        return r_oom(d);
    }
    if (fanout_log_enabled(FANOUT_LOG_DEBUG))
        fprintf(stderr, "fanout %s: %s \"%s\" is %s (%s)\n", d->command, d->type,
                d->destination, *out, op);
    return R_OK;
}

/* The region the lookups go to: the destination's, else --region, else
 * the default. */
static const char *r_region(const struct fanout_cli_dest *d)
{
    return d->dest_region && *d->dest_region ? d->dest_region : d->region;
}

/* ---- the requests -------------------------------------------------------------- */

static int r_no_memory(struct cli_aws_reply *r)
{
    memset(r, 0, sizeof *r);
    fanout_strlcpy(r->code, "OutOfMemory", sizeof r->code);
    return -1;
}

/* Where the lookups go: the destination's region (r_region). */
static struct cli_aws_at r_at(const struct fanout_cli_dest *d)
{
    return (struct cli_aws_at){.region = r_region(d)};
}

/* GET `path` (REST JSON) where `at` says; a path ending in '/' gets the
 * destination's name, percent-encoded. */
static int r_get(const struct fanout_cli_dest *d, const char *service,
                 const struct cli_aws_at *at, const char *path, const char *query,
                 struct cli_aws_reply *r)
{
    struct fanout_sbuf p = {0};
    fanout_sbuf_puts(&p, path);
    if (path[strlen(path) - 1] == '/')
        cli_aws_encode(&p, d->destination);
    fanout_sbuf_putc(&p, 0);
    if (!p.bytes)
        return r_no_memory(r);
    int rc = cli_aws_rest_at(at, service, "GET", (const char *)p.bytes, query, NULL, r);
    fanout_sbuf_free(&p);
    return rc;
}

/* ---- the lookups -------------------------------------------------------------- */

static const char *const r_not_found[] = {"ResourceNotFoundException", NULL};
static const char *const r_none[] = {NULL};
static const char *const r_no_queue[] = {"QueueDoesNotExist",
                                         "AWS.SimpleQueueService.NonExistentQueue", NULL};

/* What a lookup stores. */
enum r_store {
    R_STORE_NAME,  /* the name as given: the answer shows that it exists */
    R_STORE_VALUE, /* the answer's value */
    R_STORE_TOPIC, /* "<the answer's value>#<the name>" */
};

/* A lookup with a JSON answer: by X-Amz-Target (`target`, the name in
 * member `member`) or by GET `path`; the answer's a[.b] is the value. */
struct r_lookup {
    const char *type;
    const char *op;
    const char *service;
    const char *target, *json_version, *member;
    const char *path, *query;
    const char *a, *b;
    enum r_store store;
    const char *const *missing; /* the error codes for "no such resource" */
};

static const struct r_lookup r_lookups[] = {
    {"sqs", "SQS GetQueueUrl", "sqs", "AmazonSQS.GetQueueUrl", "1.0", "QueueName", NULL,
     NULL, "QueueUrl", NULL, R_STORE_VALUE, r_no_queue},
    {"kinesis", "Kinesis DescribeStream", "kinesis", "Kinesis_20131202.DescribeStream",
     "1.1", "StreamName", NULL, NULL, "StreamDescription", "StreamARN", R_STORE_NAME,
     r_not_found},
    {"firehose", "Firehose DescribeDeliveryStream", "firehose",
     "Firehose_20150804.DescribeDeliveryStream", "1.1", "DeliveryStreamName", NULL, NULL,
     "DeliveryStreamDescription", "DeliveryStreamARN", R_STORE_NAME, r_not_found},
    {"lambda", "Lambda GetFunction", "lambda", NULL, NULL, NULL, "/2015-03-31/functions/",
     NULL, "Configuration", "FunctionArn", R_STORE_NAME, r_not_found},
    {"iot", "IoT DescribeEndpoint", "iot", NULL, NULL, NULL, "/endpoint",
     "endpointType=iot%3AData-ATS", "endpointAddress", NULL, R_STORE_TOPIC, r_none},
};

/* Whether `url` is a queue URL (http or https, a host, no query or
 * fragment) whose path ends in "/<name>": a GetQueueUrl answer naming
 * another queue (an answer to another request) would have the target send
 * there. */
static int r_queue_url_of(const char *url, const char *name)
{
    const char *host = !strncmp(url, "https://", 8)  ? url + 8
                       : !strncmp(url, "http://", 7) ? url + 7
                                                     : NULL;
    if (!host || *host == '/')
        return 0;
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == '?' || *c == '#')
            return 0;
    const char *path = strchr(host, '/');
    return path && strcmp(strrchr(path, '/') + 1, name) == 0;
}

static int r_lookup(const struct fanout_cli_dest *d, const struct r_lookup *l, char **out)
{
    struct cli_aws_reply r;
    const struct cli_aws_at at = r_at(d);
    int failed;
    if (l->target) {
        json_t *body = json_pack("{s:s}", l->member, d->destination);
        /* DescribeStream: the stream, not its shards */
        if (body && !strcmp(l->type, "kinesis"))
            json_object_set_new(body, "Limit", json_integer(1));
        failed =
            body ? cli_aws_json_at(&at, l->service, l->json_version, l->target, body, &r)
                 : r_no_memory(&r);
    } else {
        failed = r_get(d, l->service, &at, l->path, l->query, &r);
    }
    if (failed) {
        int rc = r_lookup_failed(d, l->op, &r, l->missing);
        cli_aws_reply_free(&r);
        return rc;
    }
    const char *v = r_str(r.json, l->a, l->b);
    int rc;
    if (!v) {
        fanout_strlcpy(r.code, "InvalidResponse", sizeof r.code);
        snprintf(r.message, sizeof r.message, "the answer has no %s%s%s", l->a,
                 l->b ? "." : "", l->b ? l->b : "");
        rc = r_lookup_failed(d, l->op, &r, l->missing);
    } else if (!strcmp(l->type, "sqs") && !r_queue_url_of(v, d->destination)) {
        char q[FANOUT_QUOTE_SIZE];
        fanout_strlcpy(r.code, "InvalidResponse", sizeof r.code);
        snprintf(r.message, sizeof r.message,
                 "the answer's QueueUrl \"%s\" is not the URL of queue \"%s\"",
                 fanout_quote(q, v), d->destination);
        rc = r_lookup_failed(d, l->op, &r, l->missing);
    } else if (l->store == R_STORE_VALUE) {
        rc = r_done(d, l->op, out, "%s", v);
    } else if (l->store == R_STORE_TOPIC) {
        rc = r_done(d, l->op, out, "%s#%s", v, d->destination);
    } else {
        rc = r_done(d, l->op, out, "%s", d->destination);
    }
    cli_aws_reply_free(&r);
    return rc;
}

static int r_sns(const struct fanout_cli_dest *d, char **out)
{
    size_t nl = strlen(d->destination);
    const struct cli_aws_at at = r_at(d);
    char *token = NULL, *found = NULL;
    int rc = R_OK;
    for (int page = 0; rc == R_OK && !found; page++) {
        if (page == R_MAX_TOPIC_PAGES) {
            fprintf(stderr,
                    "fanout %s: sns: SNS ListTopics gave more than %d pages; "
                    "give the topic ARN\n",
                    d->command, R_MAX_TOPIC_PAGES);
            rc = R_FAILED;
            break;
        }
        const char *params[] = {"NextToken", token, NULL};
        struct cli_aws_reply r;
        if (cli_aws_query_at(&at, "sns", "ListTopics", "2010-03-31", params, &r) != 0) {
            rc = r_lookup_failed(d, "SNS ListTopics", &r, r_none);
            cli_aws_reply_free(&r);
            break;
        }
        struct fanout_xml_elem result;
        if (!r_xml_find(r.body, r.len, "ListTopicsResult", &result)) {
            fanout_strlcpy(r.code, "InvalidResponse", sizeof r.code);
            snprintf(r.message, sizeof r.message, "the answer has no ListTopicsResult");
            rc = r_lookup_failed(d, "SNS ListTopics", &r, r_none);
            cli_aws_reply_free(&r);
            break;
        }
        /* every TopicArn of the page: the one ending ":<name>" */
        const char *res = result.content, *p = res;
        size_t res_len = result.content_len, left = res_len;
        struct fanout_xml_elem el;
        while (!found && r_xml_find(p, left, "TopicArn", &el)) {
            char *arn = r_xml_text(&el);
            size_t al = arn ? strlen(arn) : 0;
            if (arn && al > nl && arn[al - nl - 1] == ':' &&
                strcmp(arn + al - nl, d->destination) == 0)
                found = arn;
            else
                free(arn);
            left -= el.after;
            p += el.after;
        }
        char *next = found ? NULL : r_xml_field(res, res_len, "NextToken");
        if (next && !*next) {
            free(next);
            next = NULL;
        }
        if (next && token && strcmp(next, token) == 0) {
            fprintf(stderr,
                    "fanout %s: sns: SNS ListTopics returned the same NextToken twice; "
                    "stopping\n",
                    d->command);
            free(next);
            next = NULL;
            rc = R_FAILED;
        }
        free(token);
        token = next;
        cli_aws_reply_free(&r);
        if (!found && !token && rc == R_OK) {
            fprintf(stderr,
                    "fanout %s: sns: there is no %s \"%s\" in this account and region (SNS "
                    "ListTopics lists no topic ARN ending \":%s\"); give an existing name, "
                    "or the topic ARN\n",
                    d->command, r_service_name("sns"), d->destination, d->destination);
            rc = R_USAGE;
        }
    }
    free(token);
    if (found) {
        rc = r_done(d, "SNS ListTopics", out, "%s", found);
        free(found);
    }
    return rc;
}

static int r_es(const struct fanout_cli_dest *d, char **out)
{
    if (!d->index || !*d->index) {
        fprintf(stderr,
                "fanout %s: es: --destination %s is a domain name: give --index INDEX too "
                "(or the full form endpoint#index)\n",
                d->command, d->destination);
        return R_USAGE;
    }
    /* the configuration API's host: es.<region>.<suffix>, unless
     * AWS_ENDPOINT_URL_ES says otherwise */
    char region[64], err[256], endpoint[256];
    if (fanout_aws_region(r_region(d), region, sizeof region, err, sizeof err) != 0) {
        fprintf(stderr, "fanout %s: es: %s\n", d->command, err);
        return R_USAGE;
    }
    snprintf(endpoint, sizeof endpoint, "https://es.%s.%s", region,
             fanout_aws_dns_suffix(region));
    const struct cli_aws_at at = {.region = region, .endpoint = endpoint};
    struct cli_aws_reply r;
    if (r_get(d, "es", &at, "/2015-01-01/es/domain/", NULL, &r) != 0) {
        int rc = r_lookup_failed(d, "DescribeElasticsearchDomain", &r, r_not_found);
        cli_aws_reply_free(&r);
        return rc;
    }
    const json_t *st = json_object_get(r.json, "DomainStatus");
    const char *host = r_str(st, "Endpoint", NULL);
    if (!host) /* a domain in a VPC */
        host = r_str(st, "Endpoints", "vpc");
    int rc;
    if (host) {
        rc = r_done(d, "DescribeElasticsearchDomain", out, "%s#%s", host, d->index);
    } else {
        fanout_strlcpy(r.code, "NoEndpoint", sizeof r.code);
        snprintf(r.message, sizeof r.message,
                 "the domain has no endpoint yet (DomainStatus.Endpoint / Endpoints.vpc); "
                 "wait until it is created");
        rc = r_lookup_failed(d, "DescribeElasticsearchDomain", &r, r_not_found);
    }
    cli_aws_reply_free(&r);
    return rc;
}

/* memcached: DescribeCacheClusters, ConfigurationEndpoint; redis:
 * DescribeReplicationGroups, the first node group's PrimaryEndpoint. */
static int r_elasticache(const struct fanout_cli_dest *d, char **out)
{
    int memcached = strcmp(d->type, "memcached") == 0;
    const char *action = memcached ? "DescribeCacheClusters" : "DescribeReplicationGroups";
    static const char *const missing[] = {"CacheClusterNotFound",
                                          "CacheClusterNotFoundFault",
                                          "ReplicationGroupNotFoundFault", NULL};
    char op[64];
    snprintf(op, sizeof op, "ElastiCache %s", action);
    const char *params[] = {memcached ? "CacheClusterId" : "ReplicationGroupId",
                            d->destination, NULL};
    const struct cli_aws_at at = r_at(d);
    struct cli_aws_reply r;
    if (cli_aws_query_at(&at, "elasticache", action, "2015-02-02", params, &r) != 0) {
        int rc = r_lookup_failed(d, op, &r, missing);
        cli_aws_reply_free(&r);
        return rc;
    }
    struct fanout_xml_elem ep;
    const char *block = memcached ? "ConfigurationEndpoint" : "PrimaryEndpoint";
    char *addr = NULL, *port = NULL;
    if (r_xml_find(r.body, r.len, block, &ep)) {
        addr = r_xml_field(ep.content, ep.content_len, "Address");
        port = r_xml_field(ep.content, ep.content_len, "Port");
    }
    int rc;
    if (addr && port && *addr && *port && strspn(port, "0123456789") == strlen(port)) {
        rc = r_done(d, op, out, "%s:%s", addr, port);
    } else {
        fanout_strlcpy(r.code, "NoEndpoint", sizeof r.code);
        snprintf(r.message, sizeof r.message,
                 memcached
                     ? "the answer has no ConfigurationEndpoint Address and Port (a "
                       "Redis cluster, or not available yet?)"
                     : "the answer has no node group PrimaryEndpoint Address and Port "
                       "(a cluster-mode group, which fanout does not support, or not "
                       "available yet?)");
        rc = r_lookup_failed(d, op, &r, missing);
    }
    free(addr);
    free(port);
    cli_aws_reply_free(&r);
    return rc;
}

/* ---- full forms ------------------------------------------------------------- */

/* arn:<partition>:<service>:<region>:<account>:<resource>: the fields, or
 * 0 when `s` is not an ARN of `service`. */
static int r_arn(const char *s, const char *service, char *region, size_t region_len,
                 const char **resource)
{
    if (strncmp(s, "arn:", 4) != 0)
        return 0;
    const char *f[5];
    const char *p = s + 4;
    f[0] = p;
    for (int i = 1; i < 5; i++) {
        p = strchr(p, ':');
        if (!p)
            return 0;
        f[i] = ++p;
    }
    size_t sl = strlen(service);
    if ((size_t)(f[2] - f[1] - 1) != sl || strncmp(f[1], service, sl) != 0)
        return 0;
    size_t rl = (size_t)(f[3] - f[2] - 1);
    if (rl >= region_len)
        return 0;
    memcpy(region, f[2], rl);
    region[rl] = 0;
    *resource = f[4];
    return 1;
}

/* An ARN of kinesis / firehose / lambda: the name the original stored.
 * Returns 1 (name in *out), 0 (not an ARN of that service) or a negative
 * R_ status already printed. */
static int r_arn_to_name(const struct fanout_cli_dest *d, char **out, int *status)
{
    static const struct {
        const char *type, *service, *prefix;
    } forms[] = {{"kinesis", "kinesis", "stream/"},
                 {"firehose", "firehose", "deliverystream/"},
                 {"lambda", "lambda", "function:"}};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        if (strcmp(d->type, forms[i].type) != 0)
            continue;
        char region[64];
        const char *res;
        if (!r_arn(d->destination, forms[i].service, region, sizeof region, &res))
            return 0;
        size_t pl = strlen(forms[i].prefix);
        const char *name = strncmp(res, forms[i].prefix, pl) == 0 ? res + pl : NULL;
        if (!name || !*name || strchr(name, ':') || strchr(name, '/')) {
            /* a qualified Lambda ARN, or a form the original did not read:
             * kept as given, for the plugin to check */
            *status = r_done(d, "kept as given", out, "%s", d->destination);
            return 1;
        }
        /* the name alone loses the ARN's region: it must be the mapping's */
        char want[64], err[256];
        const char *mine = d->dest_region && *d->dest_region ? d->dest_region : NULL;
        if (!mine && fanout_aws_region(d->region, want, sizeof want, err, sizeof err) == 0)
            mine = want;
        if (mine && strcmp(mine, region) != 0) {
            fprintf(stderr,
                    "fanout %s: %s: --destination %s is in %s, but the mapping's region is "
                    "%s: add --destination-region %s (the table stores the name, as "
                    "aws-lambda-fanout did)\n",
                    d->command, d->type, d->destination, region, mine, region);
            *status = R_USAGE;
            return 1;
        }
        *status = r_done(d, "the name of the ARN", out, "%s", name);
        return 1;
    }
    return 0;
}

int fanout_cli_resolve_destination(const struct fanout_cli_dest *d, char **out)
{
    *out = NULL;
    const char *t = d->type, *dest = d->destination;
    int es = strcmp(t, "es") == 0;
    if (d->index && !es) {
        fprintf(stderr, "fanout %s: --index is only for es destinations (the type is %s)\n",
                d->command, t);
        return R_USAGE;
    }
    if (d->index && !*d->index) {
        fprintf(stderr, "fanout %s: --index must not be empty\n", d->command);
        return R_USAGE;
    }
    if (!*dest || strlen(dest) > R_MAX_NAME * 4)
        return r_done(d, "kept as given", out, "%s", dest); /* the schema says why */
    int status;
    if (r_arn_to_name(d, out, &status))
        return status;

    /* full forms: no lookup */
    int full;
    if (!strcmp(t, "sqs"))
        full = strncmp(dest, "https://", 8) == 0 || strncmp(dest, "http://", 7) == 0 ||
               strncmp(dest, "arn:", 4) == 0;
    else if (!strcmp(t, "sns"))
        full = strncmp(dest, "arn:", 4) == 0;
    else if (es || !strcmp(t, "iot"))
        full = strchr(dest, '#') != NULL;
    else if (!strcmp(t, "memcached") || !strcmp(t, "redis"))
        full = strchr(dest, ':') != NULL || strchr(dest, ',') != NULL;
    else if (!strcmp(t, "kinesis") || !strcmp(t, "firehose") || !strcmp(t, "lambda"))
        full = strncmp(dest, "arn:", 4) == 0;
    else
        full = 1; /* file, and plugins the original did not have */
    if (full) {
        if (es && d->index)
            fprintf(stderr,
                    "fanout %s: warning: --index %s is ignored: --destination %s already "
                    "names the index (endpoint#index)\n",
                    d->command, d->index, dest);
        return r_done(d, "kept as given", out, "%s", dest);
    }

    /* a short name, looked up in this account: with a role, the
     * destination is in another account, where this lookup cannot see */
    if (d->has_role) {
        if (!strcmp(t, "kinesis") || !strcmp(t, "firehose") || !strcmp(t, "lambda"))
            return r_done(d, "kept as given (another account)", out, "%s", dest);
        fprintf(stderr,
                "fanout %s: %s: --destination %s is a name, and with "
                "--destination-role-arn the %s is in another account, where names are "
                "not looked up: give the full form (%s)\n",
                d->command, t, dest, r_service_name(t),
                !strcmp(t, "sqs")   ? "the queue URL"
                : !strcmp(t, "sns") ? "the topic ARN"
                : es                ? "endpoint#index"
                : !strcmp(t, "iot") ? "<account endpoint>#topic"
                                    : "host:port");
        return R_USAGE;
    }
    for (size_t i = 0; i < sizeof r_lookups / sizeof *r_lookups; i++)
        if (!strcmp(t, r_lookups[i].type))
            return r_lookup(d, &r_lookups[i], out);
    if (!strcmp(t, "sns"))
        return r_sns(d, out);
    if (es)
        return r_es(d, out);
    return r_elasticache(d, out);
}
