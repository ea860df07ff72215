#include "core/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/log.h"

int fanout_metrics_namespace_valid(const char *ns)
{
    size_t n = ns ? strlen(ns) : 0;
    if (n < 1 || n > FANOUT_METRICS_NAMESPACE_MAX || strncmp(ns, "AWS/", 4) == 0)
        return 0;
    return strspn(ns, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                      ".-_/#: ") == n;
}

int fanout_metrics_config_from_env(struct fanout_metrics_config *c, int default_on,
                                   char *err, size_t err_len)
{
    memset(c, 0, sizeof *c);
    c->enabled = default_on;
    const char *v = getenv("FANOUT_METRICS");
    if (v && *v) {
        static const char *const on[] = {"emf", "on", "true", "1"};
        static const char *const off[] = {"off", "false", "0", "none"};
        int known = 0;
        for (size_t i = 0; i < 4; i++) {
            if (!strcasecmp(v, on[i]))
                known = c->enabled = 1;
            if (!strcasecmp(v, off[i])) {
                known = 1;
                c->enabled = 0;
            }
        }
        if (!known) {
            snprintf(err, err_len, "FANOUT_METRICS \"%.32s\": expected emf or off", v);
            return -1;
        }
    }
    const char *ns = getenv("FANOUT_METRICS_NAMESPACE");
    if (!ns || !*ns)
        ns = FANOUT_METRICS_NAMESPACE_DEFAULT;
    if (!fanout_metrics_namespace_valid(ns)) {
        snprintf(
            err, err_len,
            "FANOUT_METRICS_NAMESPACE \"%.64s\": expected 1 to %d of A-Z a-z 0-9 . - _ "
            "/ # : and space, not starting with AWS/",
            ns, FANOUT_METRICS_NAMESPACE_MAX);
        return -1;
    }
    fanout_strlcpy(c->ns, ns, sizeof c->ns);
    return 0;
}

/* One metric: its definition in the directive, its value at the root. */
struct s_metric {
    const char *name;
    const char *unit;
    double value;
    int present;
};

static int s_str(struct fanout_sbuf *b, const char *s)
{
    return fanout_sbuf_json_str(b, (const uint8_t *)s, strlen(s));
}

/* A dimension value: never empty (CloudWatch drops those), capped. */
static int s_dim_value(struct fanout_sbuf *b, const char *s)
{
    char q[FANOUT_QUOTE_SIZE];
    return s_str(b, s && *s ? fanout_quote(q, s) : "(none)");
}

/* {"_aws":{...directive...}, the dimension members (written by the
 * caller in `dims_json`, "" or ",\"K\":\"V\"..."), the metrics}. */
static int s_document(struct fanout_sbuf *b, const struct fanout_metrics_context *ctx,
                      const char *const *dim_names, size_t ndims,
                      const struct fanout_sbuf *members, const struct s_metric *m,
                      size_t nm)
{
    int rc = fanout_sbuf_printf(b, "{\"_aws\":{\"Timestamp\":%lld,\"CloudWatchMetrics\":[{",
                                (long long)ctx->now_ms);
    rc |= fanout_sbuf_puts(b, "\"Namespace\":");
    rc |= s_str(b, ctx->ns);
    rc |= fanout_sbuf_puts(b, ",\"Dimensions\":[[");
    for (size_t i = 0; i < ndims; i++) {
        if (i)
            rc |= fanout_sbuf_putc(b, ',');
        rc |= s_str(b, dim_names[i]);
    }
    rc |= fanout_sbuf_puts(b, "]],\"Metrics\":[");
    int first = 1;
    for (size_t i = 0; i < nm; i++) {
        if (!m[i].present)
            continue;
        rc |= fanout_sbuf_printf(b, "%s{\"Name\":\"%s\",\"Unit\":\"%s\"}", first ? "" : ",",
                                 m[i].name, m[i].unit);
        first = 0;
    }
    rc |= fanout_sbuf_puts(b, "]}]}");
    if (members->len)
        rc |= fanout_sbuf_put(b, members->bytes, members->len);
    if (ctx->request_id) {
        rc |= fanout_sbuf_puts(b, ",\"requestId\":");
        rc |= s_str(b, ctx->request_id);
    }
    for (size_t i = 0; i < nm; i++) {
        if (!m[i].present)
            continue;
        double v = m[i].value;
        if (v == (double)(int64_t)v)
            rc |= fanout_sbuf_printf(b, ",\"%s\":%lld", m[i].name, (long long)v);
        else
            rc |= fanout_sbuf_printf(b, ",\"%s\":%.3f", m[i].name, v);
    }
    rc |= fanout_sbuf_puts(b, "}\n");
    return rc ? -1 : 0;
}

static int64_t s_age_ms(int64_t started_ms, int64_t arrival_ms)
{
    return started_ms > arrival_ms ? started_ms - arrival_ms : 0;
}

int fanout_metrics_emf(const struct fanout_result *res,
                       const struct fanout_metrics_context *ctx, struct fanout_sbuf *out)
{
    static const char *const target_dims[] = {"TargetId", "TargetType"};
    static const char *const fn_dims[] = {"FunctionName"};
    struct fanout_sbuf members = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < res->target_count; i++) {
        const struct fanout_target_summary *s = &res->targets[i];
        fanout_sbuf_reset(&members);
        rc |= fanout_sbuf_puts(&members, ",\"TargetId\":");
        rc |= s_dim_value(&members, s->id);
        rc |= fanout_sbuf_puts(&members, ",\"TargetType\":");
        rc |= s_dim_value(&members, s->type);
        char q[FANOUT_QUOTE_SIZE];
        rc |= fanout_sbuf_puts(&members, ",\"SourceArn\":");
        rc |= s_str(&members, fanout_quote(q, s->source_arn ? s->source_arn : ""));
        rc |= fanout_sbuf_puts(&members, ",\"Destination\":");
        rc |= s_str(&members, fanout_quote(q, s->destination ? s->destination : ""));
        const struct s_metric m[] = {
            {"RecordsIn", "Count", (double)s->records, 1},
            {"Delivered", "Count", (double)s->delivered, 1},
            {"Failed", "Count", (double)s->failed, 1},
            {"Retried", "Count", (double)s->retried, 1},
            {"Requests", "Count", (double)s->calls, 1},
            /* only from a target that used its on-failure destination: no
             * custom metric for every target without one */
            {"OnFailure", "Count", (double)s->on_failure, s->on_failure != 0},
            /* only from a target whose filter dropped records */
            {"Filtered", "Count", (double)s->filtered, s->filtered != 0},
            {"Duration", "Milliseconds", res->duration_ms, 1},
            {"BatchAge", "Milliseconds",
             (double)s_age_ms(res->started_ms, s->oldest_arrival_ms),
             s->oldest_arrival_ms != 0},
        };
        if (rc == 0)
            rc = s_document(out, ctx, target_dims, 2, &members, m, sizeof m / sizeof *m);
    }
    if (rc == 0) {
        fanout_sbuf_reset(&members);
        if (ctx->function_name) {
            rc |= fanout_sbuf_puts(&members, ",\"FunctionName\":");
            rc |= s_dim_value(&members, ctx->function_name);
        }
        const struct s_metric m[] = {
            {"Records", "Count", (double)res->records, 1},
            {"FailedRecords", "Count", (double)res->failed_records, 1},
            {"Targets", "Count", (double)res->target_count, 1},
            {"Duration", "Milliseconds", res->duration_ms, 1},
            {"BatchAge", "Milliseconds",
             (double)s_age_ms(res->started_ms, res->oldest_arrival_ms),
             res->oldest_arrival_ms != 0},
        };
        if (rc == 0)
            rc = s_document(out, ctx, fn_dims, ctx->function_name ? 1 : 0, &members, m,
                            sizeof m / sizeof *m);
    }
    fanout_sbuf_free(&members);
    return rc ? -1 : 0;
}

void fanout_metrics_emit(const struct fanout_metrics_config *c,
                         const struct fanout_result *res, const char *request_id, int fd)
{
    if (!c->enabled)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    const char *fn = getenv("AWS_LAMBDA_FUNCTION_NAME");
    struct fanout_metrics_context ctx = {
        .ns = c->ns,
        .request_id = request_id,
        .function_name = fn && *fn ? fn : NULL,
        .now_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000,
    };
    struct fanout_sbuf b = {0};
    if (fanout_metrics_emf(res, &ctx, &b) != 0) {
        LOG_ERROR("metrics", "out of memory building the metrics documents");
        fanout_sbuf_free(&b);
        return;
    }
    size_t off = 0;
    while (off < b.len) {
        ssize_t w = write(fd, b.bytes + off, b.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            LOG_ERROR("metrics", "cannot write the metrics documents: %s",
                      w < 0 ? strerror(errno) : "short write");
            break;
        }
        off += (size_t)w;
    }
    fanout_sbuf_free(&b);
}
