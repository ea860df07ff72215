/*
 * The `lambda` destination: invokes an AWS Lambda function asynchronously
 * (Invoke with X-Amz-Invocation-Type: Event) with the source event of the
 * records, {"Records":[<source record>...]}, as the function would have
 * received it from the stream; or, with option payload "records", with the
 * decoded records. Lifecycle, destination and options here; the events,
 * the Invoke requests and the errors in lambda_api.c.
 *
 * Destination (Invoke API reference, FunctionName "Name formats"):
 *   my-function                                         a name
 *   123456789012:function:my-function                   a partial ARN
 *   arn:aws:lambda:us-east-1:123456789012:function:my-function
 * each optionally followed by ":alias" or ":version". The qualifier is sent
 * as Invoke's Qualifier query parameter, so the FunctionName stays within
 * its 170 characters whatever the alias's length. A function ARN gives the
 * region (a different mapping `region` is refused); otherwise the mapping's
 * `region`, else the function's own.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lambda.h"

/* CreateFunction's FunctionName: letters, digits, '-' and '_', at most 64
 * characters for a bare name (Invoke API reference, FunctionName). */
#define LAMBDA_NAME_MAX 64
/* Alias names (CreateAlias Name, [a-zA-Z0-9-_]+, 1-128) and versions
 * ([0-9]+, or $LATEST): Invoke's Qualifier, 1-128 characters. */
#define LAMBDA_QUALIFIER_MAX 128
#define LAMBDA_ACCOUNT_LEN   12

static const char s_forms[] =
    "expected a function name ([a-zA-Z0-9-_]{1,64}), a partial ARN "
    "(123456789012:function:NAME) or a function ARN "
    "(arn:PARTITION:lambda:REGION:123456789012:function:NAME), each optionally followed "
    "by :ALIAS or :VERSION";

/* ---- destination ---- */

static int s_name_char(int c)
{
    return isalnum(c) || c == '-' || c == '_';
}

static int s_all(const char *s, size_t n, int (*ok)(int))
{
    for (size_t i = 0; i < n; i++)
        if (!ok((unsigned char)s[i]))
            return 0;
    return n > 0;
}

static int s_name_ok(const char *s, size_t n)
{
    return n <= LAMBDA_NAME_MAX && s_all(s, n, s_name_char);
}

static int s_qualifier_ok(const char *s, size_t n)
{
    if (n == 7 && memcmp(s, "$LATEST", 7) == 0)
        return 1;
    return n <= LAMBDA_QUALIFIER_MAX && s_all(s, n, s_name_char);
}

/* "us-east-1", "us-gov-west-1", "cn-north-1", "eusc-de-east-1": lower-case
 * letters and digits in '-'-separated parts, the first starting with a
 * letter, the last a number. */
static int s_region_ok(const char *s, size_t n)
{
    if (n < 4 || n > 32 || !islower((unsigned char)s[0]) ||
        !isdigit((unsigned char)s[n - 1]))
        return 0;
    int dashes = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '-') {
            if (s[i + 1] == '-')
                return 0;
            dashes++;
        } else if (!islower((unsigned char)c) && !isdigit((unsigned char)c)) {
            return 0;
        }
    }
    return dashes > 0;
}

/* aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-eusc... */
static int s_partition_ok(const char *s, size_t n)
{
    if (n < 3 || memcmp(s, "aws", 3) != 0)
        return 0;
    for (size_t i = 3; i < n; i++)
        if (!isalpha((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

#define S_MAX_PARTS 9

int lambda_parse_destination(const char *dest, struct lambda_dest *out, char *err,
                             size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (!dest || !*dest) {
        snprintf(err, err_len, "the destination is empty; %s", s_forms);
        return -1;
    }
    for (const char *c = dest; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
            snprintf(err, err_len,
                     "\"%.80s\" contains a space or a character that no "
                     "function name has; %s",
                     dest, s_forms);
            return -1;
        }
    const char *part[S_MAX_PARTS];
    size_t len[S_MAX_PARTS], n = 0;
    for (const char *p = dest;;) {
        const char *colon = strchr(p, ':');
        size_t l = colon ? (size_t)(colon - p) : strlen(p);
        if (n == S_MAX_PARTS) {
            snprintf(err, err_len, "\"%.120s\" has too many ':'-separated parts; %s", dest,
                     s_forms);
            return -1;
        }
        part[n] = p;
        len[n++] = l;
        if (!colon)
            break;
        p = colon + 1;
    }
    for (size_t i = 0; i < n; i++)
        if (len[i] == 0) {
            snprintf(err, err_len, "\"%.120s\" has an empty ':'-separated part; %s", dest,
                     s_forms);
            return -1;
        }
    size_t name_at, qual_at = 0;
    if (len[0] == 3 && memcmp(part[0], "arn", 3) == 0) {
        /* arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER] */
        if (n != 7 && n != 8) {
            snprintf(err, err_len,
                     "\"%.120s\" is not a function ARN "
                     "(arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER])",
                     dest);
            return -1;
        }
        if (!s_partition_ok(part[1], len[1])) {
            snprintf(err, err_len,
                     "\"%.120s\": \"%.*s\" is not an AWS partition (aws, "
                     "aws-cn, aws-us-gov...)",
                     dest, (int)len[1], part[1]);
            return -1;
        }
        if (len[2] != 6 || memcmp(part[2], "lambda", 6) != 0) {
            snprintf(err, err_len,
                     "\"%.120s\" is an ARN of service \"%.*s\", not of a "
                     "Lambda function",
                     dest, (int)len[2], part[2]);
            return -1;
        }
        if (!s_region_ok(part[3], len[3])) {
            snprintf(err, err_len, "\"%.120s\": \"%.*s\" is not a region (e.g. us-east-1)",
                     dest, (int)len[3], part[3]);
            return -1;
        }
        if (len[4] != LAMBDA_ACCOUNT_LEN || !s_all(part[4], len[4], isdigit)) {
            snprintf(err, err_len, "\"%.120s\": the account \"%.*s\" is not 12 digits",
                     dest, (int)len[4], part[4]);
            return -1;
        }
        if (len[5] != 8 || memcmp(part[5], "function", 8) != 0) {
            snprintf(err, err_len,
                     "\"%.120s\" is a Lambda ARN of a \"%.*s\", not of a "
                     "function (arn:...:function:NAME)",
                     dest, (int)len[5], part[5]);
            return -1;
        }
        out->region = part[3];
        out->region_len = len[3];
        name_at = 6;
        qual_at = n == 8 ? 7 : 0;
    } else if (n >= 3) {
        /* ACCOUNT:function:NAME[:QUALIFIER] */
        if (n > 4 || len[0] != LAMBDA_ACCOUNT_LEN || !s_all(part[0], len[0], isdigit) ||
            len[1] != 8 || memcmp(part[1], "function", 8) != 0) {
            snprintf(err, err_len, "\"%.120s\" is neither a name nor a partial ARN; %s",
                     dest, s_forms);
            return -1;
        }
        name_at = 2;
        qual_at = n == 4 ? 3 : 0;
    } else {
        /* NAME[:QUALIFIER] */
        name_at = 0;
        qual_at = n == 2 ? 1 : 0;
    }
    if (!s_name_ok(part[name_at], len[name_at])) {
        snprintf(err, err_len,
                 "\"%.*s\" is not a function name: 1 to %d letters, digits, "
                 "'-' or '_' (%s)",
                 (int)(len[name_at] > 100 ? 100 : len[name_at]), part[name_at],
                 LAMBDA_NAME_MAX, s_forms);
        return -1;
    }
    if (qual_at && !s_qualifier_ok(part[qual_at], len[qual_at])) {
        snprintf(err, err_len,
                 "\"%.*s\" is not an alias or a version: $LATEST, a version "
                 "number or an alias name of 1 to %d letters, digits, '-' or '_'",
                 (int)(len[qual_at] > 140 ? 140 : len[qual_at]), part[qual_at],
                 LAMBDA_QUALIFIER_MAX);
        return -1;
    }
    out->function = dest;
    out->function_len = (size_t)(part[name_at] + len[name_at] - dest);
    out->name = part[name_at];
    out->name_len = len[name_at];
    if (qual_at) {
        out->qualifier = part[qual_at];
        out->qualifier_len = len[qual_at];
    }
    return 0;
}

/* ---- options ---- */

static int s_check_options(const struct fanout_target *t, char *err, size_t err_len)
{
    const struct lambda_options *o = t->options;
    if (!o)
        return 0;
    if (o->payload && strcmp(o->payload, "source") != 0 &&
        strcmp(o->payload, "records") != 0) {
        snprintf(err, err_len,
                 "option \"payload\": \"%.60s\" is neither \"source\" (the "
                 "source event of the records) nor \"records\" (the decoded records)",
                 o->payload);
        return -1;
    }
    return 0;
}

static uint64_t s_max_payload(const struct fanout_target *t)
{
    const struct lambda_options *o = t->options;
    if (o && o->max_payload_bytes > 0 &&
        (uint64_t)o->max_payload_bytes < LAMBDA_EVENT_PAYLOAD_MAX)
        return (uint64_t)o->max_payload_bytes;
    return LAMBDA_EVENT_PAYLOAD_MAX;
}

/* ---- the plugin ---- */

/* Host and state (plugin.h): init keeps the host in a fanout_plugin_state;
 * open copies it into the instance's fanout_aws_target. */
static int s_init(const struct fanout_host *host, void **state, struct fanout_error *err)
{
    return fanout_aws_plugin_init("lambda", host, state, err);
}

static int s_validate(const struct fanout_target *t, char *err, size_t err_len)
{
    struct lambda_dest d;
    if (lambda_parse_destination(t->destination, &d, err, err_len) != 0)
        return -1;
    if (d.region && t->region &&
        (strlen(t->region) != d.region_len || memcmp(t->region, d.region, d.region_len))) {
        snprintf(err, err_len,
                 "the function ARN is in region %.*s but the mapping's "
                 "\"region\" is \"%.40s\": drop \"region\" (the ARN's is used) or name "
                 "the function of that region",
                 (int)d.region_len, d.region, t->region);
        return -1;
    }
    return s_check_options(t, err, err_len);
}

static int s_limits(void *state, const struct fanout_target *t, struct fanout_limits *lim,
                    char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    /* The engine checks the decoded data against this; lambda_send checks
     * what is really sent (the source record, larger than its data). */
    lim->max_message_bytes = s_max_payload(t) - LAMBDA_ENVELOPE_LEN;
    return 0;
}

static void s_close(void *instance)
{
    struct lambda_target *t = instance;
    if (!t)
        return;
    fanout_aws_target_clean_up(&t->aws);
    free(t);
}

static int s_open(void *state, const struct fanout_target *target, void **out,
                  struct fanout_error *err)
{
    const struct fanout_plugin_state *s = state;
    struct lambda_dest d;
    char why[256];
    if (lambda_parse_destination(target->destination, &d, why, sizeof why) != 0)
        return fanout_error_set(err, "InvalidDestination", "%s", why);
    char region[40]; /* the ARN's: s_region_ok took at most 32 */
    snprintf(region, sizeof region, "%.*s", (int)d.region_len, d.region ? d.region : "");
    const struct lambda_options *o = target->options;
    struct lambda_target *t = calloc(1, sizeof *t);
    if (!t)
        return fanout_error_set(err, "OutOfMemory", "out of memory");
    struct fanout_aws_target *a = &t->aws;
    int rc = fanout_aws_target_open(a, s->host, target, "lambda",
                                    d.region ? region : target->region, NULL);
    t->records_payload = o && o->payload && strcmp(o->payload, "records") == 0;
    t->parallel = target->parallel;
    t->max_payload = s_max_payload(target);
    a->path = fanout_aws_uri_join("/2015-03-31/functions/", d.function, d.function_len,
                                  "/invocations");
    if (d.qualifier)
        a->query = fanout_aws_uri_join("Qualifier=", d.qualifier, d.qualifier_len, "");
    if (rc != 0 || !a->path || (d.qualifier && !a->query)) {
        s_close(t);
        return fanout_error_set(err, "OutOfMemory", "out of memory");
    }
    if (s->host->log_enabled(FANOUT_LOG_DEBUG))
        s->host->log(FANOUT_LOG_DEBUG, a->id, "lambda: invoking %s%s%s in %s, %s payload",
                     a->path, a->query ? "?" : "", a->query ? a->query : "",
                     a->region ? a->region : "the default region",
                     t->records_payload ? "records" : "source event");
    *out = t;
    return 0;
}

static int s_send(void *instance, const struct fanout_batch *batch,
                  struct fanout_outcome *outcomes)
{
    return lambda_send(instance, batch, outcomes);
}

static const struct fanout_option s_options[] = {
    {.name = "payload",
     .type = FANOUT_OPT_STRING,
     .offset = offsetof(struct lambda_options, payload),
     .default_str = "source",
     .description = "\"source\": the records' source event {\"Records\":[...]} as the "
                    "stream delivered it; \"records\": the decoded records (key, "
                    "sequenceNumber, data or dataBase64...)"},
    {.name = "maxPayloadBytes",
     .type = FANOUT_OPT_INT,
     .offset = offsetof(struct lambda_options, max_payload_bytes),
     .default_int = LAMBDA_EVENT_PAYLOAD_MAX,
     .min = LAMBDA_PAYLOAD_OPTION_MIN,
     .max = LAMBDA_EVENT_PAYLOAD_MAX,
     .description = "largest event per invocation (default and most 1048576, the "
                    "asynchronous invocation limit; 262144 where the former limit "
                    "applies)"},
    {.name = NULL},
};

FANOUT_PLUGIN_DEFINE(
        .name = "lambda", .version = "1.0.0",
        .description = "AWS Lambda: asynchronous Invoke with the records' source event",
        .destination_example =
            "my-function, my-function:live, 123456789012:function:my-function "
            "or arn:aws:lambda:us-east-1:123456789012:function:my-function",
        .limits = {.max_message_bytes = LAMBDA_EVENT_PAYLOAD_MAX - LAMBDA_ENVELOPE_LEN},
        .collapse_modes = FANOUT_COLLAPSE_BIT(FANOUT_COLLAPSE_NONE),
        .default_collapse = FANOUT_COLLAPSE_NONE, .flags = FANOUT_PLUGIN_SOURCE_JSON,
        .options = s_options, .options_size = sizeof(struct lambda_options), .init = s_init,
        .fini = fanout_plugin_state_free, .validate = s_validate, .open = s_open,
        .send = s_send, .close = s_close, .target_limits = s_limits);
