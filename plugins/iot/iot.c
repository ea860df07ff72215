/*
 * The `iot` destination: publishes each message to an AWS IoT Core MQTT
 * topic through the data plane's HTTPS Publish:
 *
 *   POST /topics/{topic}?qos=0|1[&retain=true]     body: the payload -> 200
 *
 * signed for service "iotdata" against the account's data endpoint
 * (IoT Data Plane API reference, Publish; botocore
 * iot-data/2015-05-28/service-2.json; IoT Developer Guide, "HTTPS
 * publish").
 *
 * Destination "ENDPOINT#TOPIC":
 *   ENDPOINT  the account's data endpoint, a bare host
 *             (a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com, over https),
 *             or a URL with scheme and port (http://127.0.0.1:8443: test
 *             servers, proxies);
 *   TOPIC     the MQTT topic: not empty, no wildcard ('+', '#'), at most 256
 *             bytes of UTF-8 and 7 '/' (basic ingest's "$aws/rules/NAME/"
 *             prefix not counted), '/' allowed.
 * The region is the host's (".iot.<region>.amazonaws.com"); a mapping
 * `region` that differs is refused. A host that names none (a URL, a custom
 * domain) takes the mapping's `region`, else AWS_REGION and the rest of the
 * default chain; with none of them the target cannot be opened.
 *
 * The topic goes in the path with every byte but RFC 3986's unreserved
 * characters percent-encoded, '/' included ("%2F"): the SDKs serialize the
 * {topic} label so (botocore's serializer, a label without '+'), and no
 * "." or ".." level of a topic can then be taken for a path segment.
 *
 * Collapse: all modes; JSON by default (the seed design). One request per
 * message; the messages of one call are published concurrently, or one call
 * per message, in order, with `parallel: false`.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fanout/aws.h>
#include <fanout/aws_target.h>
#include <fanout/helpers.h>
#include <fanout/plugin.h>

/* AWS IoT Core quotas (docs.aws.amazon.com/general/latest/gr/iot-core.html,
 * "Message broker and protocol limits and quotas"): a publish request's
 * payload is at most 128 KB (131,072 bytes; larger fails with
 * PAYLOAD_LIMIT_EXCEEDED / 413), a topic at most 256 bytes of UTF-8 with at
 * most 7 forward slashes, both not counting the 3 mandatory levels of a
 * basic ingest topic ($aws/rules/rule-name/). shared/aws-facts.md 3. */
#define IOT_PAYLOAD_MAX      131072u
#define IOT_TOPIC_MAX_BYTES  256u
#define IOT_TOPIC_MAX_SLASH  7u
#define IOT_BASIC_INGEST     "$aws/rules/"
#define IOT_BASIC_INGEST_LEN (sizeof IOT_BASIC_INGEST - 1)
/* Publish requests in flight at once for one call (ours: bounds the memory
 * and connections of one call; the account's publish rate is far above). */
#define IOT_MESSAGES_PER_CALL FANOUT_AWS_ROUND
/* Longest region name we take from a host (ours). */
#define IOT_REGION_MAX 32u

struct iot_options {
    int64_t qos;
    int retain;
};

/* A destination, as slices of the mapping's string. */
struct iot_dest {
    const char *endpoint; /* host or URL */
    size_t endpoint_len;
    int is_url;
    const char *topic;
    size_t topic_len;
    char region[IOT_REGION_MAX + 1]; /* from the host, or "" */
};

static const char s_form[] =
    "expected ENDPOINT#TOPIC: the account's IoT data endpoint (a host such as "
    "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com, or a URL such as "
    "https://127.0.0.1:8443), '#', and an MQTT topic without wildcards";

/* ---- destination ---- */

static int s_topic_check(const char *topic, size_t n, char *err, size_t err_len)
{
    if (n == 0) {
        snprintf(err, err_len, "the topic after '#' is empty; %s", s_form);
        return -1;
    }
    for (size_t i = 0; i < n;) {
        size_t k = fanout_utf8_seq((const uint8_t *)topic + i, n - i);
        if (!k) {
            snprintf(err, err_len, "the topic is not valid UTF-8 (byte %zu)", i);
            return -1;
        }
        if (k == 1 && (unsigned char)topic[i] < 0x20) {
            snprintf(err, err_len, "the topic has a control character (byte %zu)", i);
            return -1;
        }
        if (topic[i] == '+' || topic[i] == '#') {
            snprintf(err, err_len,
                     "the topic \"%.*s\" has the wildcard '%c' (byte %zu): a "
                     "message is published to one topic, wildcards are for subscribing",
                     (int)(n > 120 ? 120 : n), topic, topic[i], i);
            return -1;
        }
        i += k;
    }
    size_t skip = 0;
    if (n > IOT_BASIC_INGEST_LEN &&
        memcmp(topic, IOT_BASIC_INGEST, IOT_BASIC_INGEST_LEN) == 0) {
        const char *slash =
            memchr(topic + IOT_BASIC_INGEST_LEN, '/', n - IOT_BASIC_INGEST_LEN);
        if (slash)
            skip = (size_t)(slash - topic) + 1;
    }
    if (n - skip > IOT_TOPIC_MAX_BYTES) {
        snprintf(err, err_len, "the topic is %zu bytes, more than AWS IoT's %u", n - skip,
                 IOT_TOPIC_MAX_BYTES);
        return -1;
    }
    unsigned slashes = 0;
    for (size_t i = skip; i < n; i++)
        slashes += topic[i] == '/';
    if (slashes > IOT_TOPIC_MAX_SLASH) {
        snprintf(err, err_len, "the topic has %u '/', more than AWS IoT's %u levels allow",
                 slashes, IOT_TOPIC_MAX_SLASH);
        return -1;
    }
    return 0;
}

static int s_host_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

/* "....iot.<region>.amazonaws.com[.cn]" (or iot-fips) -> region. */
static void s_host_region(const char *host, size_t n, char *region)
{
    region[0] = 0;
    for (size_t i = 0; i + 5 < n; i++) {
        size_t tag = 0;
        if (host[i] == '.' && n - i > 5 && memcmp(host + i, ".iot.", 5) == 0)
            tag = 5;
        else if (host[i] == '.' && n - i > 10 && memcmp(host + i, ".iot-fips.", 10) == 0)
            tag = 10;
        if (!tag)
            continue;
        const char *r = host + i + tag;
        const char *dot = memchr(r, '.', (size_t)(host + n - r));
        if (!dot || dot == r || (size_t)(dot - r) > IOT_REGION_MAX)
            continue;
        size_t rest = (size_t)(host + n - dot);
        if (rest < 10 || memcmp(dot, ".amazonaws", 10) != 0)
            continue;
        memcpy(region, r, (size_t)(dot - r));
        region[dot - r] = 0;
        for (char *c = region; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        return;
    }
}

static int s_endpoint_check(struct iot_dest *d, char *err, size_t err_len)
{
    const char *e = d->endpoint;
    size_t n = d->endpoint_len;
    if (n == 0) {
        snprintf(err, err_len, "the endpoint before '#' is empty; %s", s_form);
        return -1;
    }
    const char *host = e;
    size_t host_len = n;
    const char *sep = memchr(e, ':', n);
    if (n > 3 && sep && (size_t)(e + n - sep) >= 3 && memcmp(sep, "://", 3) == 0) {
        size_t scheme = (size_t)(sep - e);
        if (!((scheme == 4 && memcmp(e, "http", 4) == 0) ||
              (scheme == 5 && memcmp(e, "https", 5) == 0))) {
            snprintf(err, err_len,
                     "the endpoint \"%.*s\" is a URL but not http:// or "
                     "https://",
                     (int)(n > 100 ? 100 : n), e);
            return -1;
        }
        d->is_url = 1;
        host = sep + 3;
        host_len = (size_t)(e + n - host);
        if (host_len && host[host_len - 1] == '/')
            host_len--;
        const char *colon = memchr(host, ':', host_len);
        if (colon) {
            size_t pl = (size_t)(host + host_len - colon - 1);
            long port = 0;
            for (size_t i = 1; i <= pl; i++)
                port = isdigit((unsigned char)colon[i]) && port < 70000
                           ? port * 10 + (colon[i] - '0')
                           : 70000;
            if (pl == 0 || port < 1 || port > 65535) {
                snprintf(err, err_len, "the endpoint \"%.*s\" has no valid port (1-65535)",
                         (int)(n > 100 ? 100 : n), e);
                return -1;
            }
            host_len = (size_t)(colon - host);
        }
    }
    int ok = host_len > 0;
    for (size_t i = 0; ok && i < host_len; i++)
        ok = s_host_char(host[i]);
    if (!ok) {
        snprintf(err, err_len,
                 "the endpoint \"%.*s\" is not a host name%s (a path, a query "
                 "or a user is not taken); %s",
                 (int)(n > 100 ? 100 : n), e,
                 d->is_url ? " after the scheme, with an optional port" : "", s_form);
        return -1;
    }
    s_host_region(host, host_len, d->region);
    return 0;
}

static int s_parse(const char *dest, struct iot_dest *d, char *err, size_t err_len)
{
    memset(d, 0, sizeof *d);
    const char *hash = dest ? strchr(dest, '#') : NULL;
    if (!hash) {
        snprintf(err, err_len, "\"%.120s\" has no '#' between endpoint and topic; %s",
                 dest ? dest : "", s_form);
        return -1;
    }
    d->endpoint = dest;
    d->endpoint_len = (size_t)(hash - dest);
    d->topic = hash + 1;
    d->topic_len = strlen(hash + 1);
    if (s_endpoint_check(d, err, err_len) != 0)
        return -1;
    return s_topic_check(d->topic, d->topic_len, err, err_len);
}

/* ---- the plugin ---- */

/* Host and state (plugin.h): init keeps the host in a fanout_plugin_state; an
 * instance is a fanout_aws_target, which carries it. */
static int s_init(const struct fanout_host *host, void **state, struct fanout_error *err)
{
    return fanout_aws_plugin_init("iot", host, state, err);
}

static int s_validate(const struct fanout_target *t, char *err, size_t err_len)
{
    struct iot_dest d;
    if (s_parse(t->destination, &d, err, err_len) != 0)
        return -1;
    if (d.region[0] && t->region && strcmp(d.region, t->region) != 0) {
        snprintf(err, err_len,
                 "the endpoint is in region %s but the mapping's \"region\" "
                 "is \"%.40s\": drop \"region\" (the endpoint's is used) or give that "
                 "region's endpoint",
                 d.region, t->region);
        return -1;
    }
    return 0;
}

static int s_limits(void *state, const struct fanout_target *t, struct fanout_limits *lim,
                    char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    /* Ordered: one message per call, so the engine sends them one after the
     * other and stops after one that failed for good. */
    if (!t->parallel)
        lim->max_messages_per_call = 1;
    return 0;
}

static void s_close(void *instance)
{
    struct fanout_aws_target *t = instance;
    if (!t)
        return;
    fanout_aws_target_clean_up(t);
    free(t);
}

static int s_open(void *state, const struct fanout_target *target, void **out,
                  struct fanout_error *err)
{
    const struct fanout_plugin_state *s = state;
    struct iot_dest d;
    char why[256];
    if (s_parse(target->destination, &d, why, sizeof why) != 0)
        return fanout_error_set(err, "InvalidDestination", "%s", why);
    const char *region = d.region[0] ? d.region : target->region;
    if (!region) {
        /* No region in the endpoint or the mapping: the default must exist,
         * or every publish would fail the same way. */
        char url[256];
        if (s->host->aws_endpoint("iot_data_plane", NULL, url, sizeof url, why,
                                  sizeof why) != 0)
            return fanout_error_set(
                err, "NoRegion",
                "the endpoint names no region: set the mapping's \"region\" (%.190s)", why);
    }
    const struct iot_options *o = target->options;
    struct fanout_aws_target *t = calloc(1, sizeof *t);
    size_t el = d.endpoint_len + 16;
    char *endpoint = malloc(el);
    int rc = t && endpoint ? 0 : -1;
    if (rc == 0) {
        snprintf(endpoint, el, "%s%.*s", d.is_url ? "" : "https://", (int)d.endpoint_len,
                 d.endpoint);
        rc = fanout_aws_target_open(t, s->host, target, "iot", region, endpoint);
        t->path = fanout_aws_uri_join("/topics/", d.topic, d.topic_len, "");
        t->query = malloc(32);
        if (t->query)
            snprintf(t->query, 32, "qos=%d%s", o && o->qos ? 1 : 0,
                     o && o->retain ? "&retain=true" : "");
        rc = rc == 0 && t->path && t->query ? 0 : -1;
    }
    free(endpoint);
    if (rc != 0) {
        s_close(t);
        return fanout_error_set(err, "OutOfMemory", "out of memory");
    }
    if (s->host->log_enabled(FANOUT_LOG_DEBUG))
        s->host->log(FANOUT_LOG_DEBUG, t->id, "iot: publishing to %s%s?%s in %s",
                     t->endpoint, t->path, t->query,
                     t->region ? t->region : "the default region");
    *out = t;
    return 0;
}

/* Publish's errors (botocore iot-data model, Publish): ThrottlingException
 * (429) -> throttled; InternalFailureException (500) and
 * ServiceUnavailableException (503) -> retried; InvalidRequestException
 * (400), UnauthorizedException (401), ForbiddenException (403),
 * MethodNotAllowedException (405) and RequestEntityTooLargeException (413)
 * -> permanent. The engine's AWS layer has classified and retried them. */
static void s_judge(const struct fanout_aws_target *t, const struct fanout_aws_response *r,
                    struct fanout_outcome *o)
{
    /* The SDK's mapping of the AWS layer's result; our code and message. */
    int st = fanout_aws_outcome(r, o);
    if (st == FANOUT_OK) {
        /* Publish documents one success: HTTP 200 (botocore iot-data
         * model: Publish has no other 2xx, its output is empty). Another
         * 2xx (a 202 or 204 from something in between) says nothing of the
         * broker: resend, a second copy is what at-least-once allows. */
        if (r->status == 200)
            return;
        fanout_outcome_set(o, FANOUT_RETRY, "UnexpectedResponse",
                           "publishing to %s: HTTP %ld where Publish answers 200; the "
                           "message is not known published",
                           t->destination, r->status);
        t->host->log(FANOUT_LOG_WARN, t->id, "%s", o->message);
        return;
    }
    fanout_outcome_set(o, st, r->error_code[0] ? r->error_code : "PublishFailed",
                       "publishing to %s: %s", t->destination,
                       r->error_message[0] ? r->error_message : "no detail");
}

/* One call: the target, the batch and its outcomes. */
struct s_call {
    const struct fanout_aws_target *t;
    const struct fanout_batch *b;
    struct fanout_outcome *out;
};

static void s_body(void *ctx, size_t i, const uint8_t **body, size_t *len)
{
    const struct s_call *c = ctx;
    *body = c->b->messages[i]->body;
    *len = c->b->messages[i]->body_len;
}

static void s_read(void *ctx, size_t i, const struct fanout_aws_response *r)
{
    const struct s_call *c = ctx;
    s_judge(c->t, r, &c->out[i]);
}

static int s_send(void *instance, const struct fanout_batch *b, struct fanout_outcome *out)
{
    static const struct fanout_aws_header headers[] = {
        {"Content-Type", "application/octet-stream"},
    };
    static const struct fanout_aws_call_spec spec = {
        .service = "iot_data_plane",
        .signing_name = "iotdata",
        .method = "POST",
        .headers = headers,
        .header_count = sizeof headers / sizeof *headers,
        .protocol = FANOUT_AWS_JSON,
    };
    struct s_call c = {instance, b, out};
    fanout_aws_target_call(instance, &spec, b->count, s_body, s_read, &c);
    return 0;
}

static const struct fanout_option s_options[] = {
    {.name = "qos",
     .type = FANOUT_OPT_INT,
     .offset = offsetof(struct iot_options, qos),
     .default_int = 0,
     .min = 0,
     .max = 1,
     .description = "MQTT quality of service of the published messages: 0 or 1"},
    {.name = "retain",
     .type = FANOUT_OPT_BOOL,
     .offset = offsetof(struct iot_options, retain),
     .default_int = 0,
     .description = "set the MQTT RETAIN flag (the topic keeps the last message)"},
    {.name = NULL},
};

FANOUT_PLUGIN_DEFINE(.name = "iot", .version = "1.0.0",
                     .description = "AWS IoT Core: HTTPS Publish to an MQTT topic",
                     .destination_example =
                         "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com#sensors/room-1",
                     .limits = {.max_messages_per_call = IOT_MESSAGES_PER_CALL,
                                .max_message_bytes = IOT_PAYLOAD_MAX},
                     .collapse_modes = FANOUT_COLLAPSE_ALL,
                     .default_collapse = FANOUT_COLLAPSE_JSON, .options = s_options,
                     .options_size = sizeof(struct iot_options), .init = s_init,
                     .fini = fanout_plugin_state_free, .validate = s_validate,
                     .open = s_open, .send = s_send, .close = s_close,
                     .target_limits = s_limits);
