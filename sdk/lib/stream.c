/* Stream-like AWS destinations: names and ARNs, instances, requests
 * (fanout/stream.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fanout/aws_target.h"
#include "fanout/stream.h"

int fanout_stream_init(const struct fanout_stream_kind *kind,
                       const struct fanout_host *host, void **state,
                       struct fanout_error *err)
{
    *state = NULL;
    return fanout_aws_plugin_init(kind->plugin, host, state, err);
}

static int s_name_ok(const struct fanout_stream_kind *k, const char *s, size_t n)
{
    if (n < 1 || n > k->dest.max_name_len)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

struct s_dest {
    const char *name;
    size_t name_len;
    const char *region; /* the ARN's, or NULL when given a name */
    size_t region_len;
};

/* Parse a destination; on error write what was expected. */
static int s_parse(const struct fanout_stream_kind *k, const char *d, struct s_dest *out,
                   char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (!d || !*d) {
        snprintf(err, err_len, "expected a %s name or %s, got nothing", k->dest.label,
                 k->dest.arn_label);
        return -1;
    }
    if (strncmp(d, "arn:", 4) != 0) {
        if (s_name_ok(k, d, strlen(d))) {
            out->name = d;
            out->name_len = strlen(d);
            return 0;
        }
        snprintf(err, err_len,
                 "\"%.200s\"%s is not a %s name ([a-zA-Z0-9_.-], 1 to %zu characters) nor "
                 "a %s (arn:<partition>:%s:<region>:<account>:%s<name>)",
                 d, strstr(d, "://") ? " (a URL is not a stream)" : "", k->dest.label,
                 k->dest.max_name_len, k->dest.arn_label, k->dest.service,
                 k->dest.resource);
        return -1;
    }
    struct fanout_arn a;
    size_t plen = strlen(k->dest.resource);
    if (fanout_arn_split(d, &a) != 0)
        goto bad_arn;
    if (a.service_len != strlen(k->dest.service) ||
        strncmp(a.service, k->dest.service, a.service_len)) {
        snprintf(err, err_len,
                 "\"%.200s\" is an ARN of service \"%.*s\", not a %s ARN "
                 "(arn:<partition>:%s:<region>:<account>:%s<name>)",
                 d, (int)(a.service_len > 40 ? 40 : a.service_len), a.service,
                 k->dest.label, k->dest.service, k->dest.resource);
        return -1;
    }
    if (!fanout_aws_partition_name_ok(a.partition, a.partition_len) ||
        !fanout_aws_region_name_ok(a.region, a.region_len) || a.account_len != 12 ||
        strspn(a.account, "0123456789") < 12 || a.resource_len <= plen ||
        strncmp(a.resource, k->dest.resource, plen) != 0 ||
        !s_name_ok(k, a.resource + plen, a.resource_len - plen))
        goto bad_arn;
    out->name = a.resource + plen;
    out->name_len = a.resource_len - plen;
    out->region = a.region;
    out->region_len = a.region_len;
    return 0;
bad_arn:
    snprintf(err, err_len,
             "\"%.200s\" is not a %s ARN: expected arn:<partition>:%s:<region>:<12-digit "
             "account>:%s<name> with a name of [a-zA-Z0-9_.-], 1 to %zu characters",
             d, k->dest.label, k->dest.service, k->dest.resource, k->dest.max_name_len);
    return -1;
}

/* The destination, and its region against the mapping's. */
static int s_check(const struct fanout_stream_kind *k, const struct fanout_target *t,
                   struct s_dest *d, char *err, size_t err_len)
{
    if (s_parse(k, t->destination, d, err, err_len) != 0)
        return -1;
    if (d->region && t->region &&
        (strlen(t->region) != d->region_len ||
         strncmp(t->region, d->region, d->region_len) != 0)) {
        snprintf(err, err_len,
                 "the %s is in region %.*s but the mapping's \"region\" is %s; drop "
                 "\"region\" or make them agree",
                 k->dest.arn_label, (int)d->region_len, d->region, t->region);
        return -1;
    }
    return 0;
}

int fanout_stream_check(const struct fanout_stream_kind *kind,
                        const struct fanout_target *t, char *err, size_t err_len)
{
    struct s_dest d;
    return s_check(kind, t, &d, err, err_len);
}

void fanout_stream_close(void *instance)
{
    struct fanout_stream *s = instance;
    if (!s)
        return;
    free(s->id);
    free(s->name);
    free(s->arn);
    free(s->region);
    free(s->role);
    free(s->external_id);
    fanout_batch_spares_free(&s->spares);
    free(s);
}

/* A copy of s, or of NULL. Returns 0, or -1 when out of memory. */
static int s_dup(char **to, const char *s, size_t n)
{
    *to = s ? fanout_strndup(s, n) : NULL;
    return s && !*to ? -1 : 0;
}

void *fanout_stream_open(const struct fanout_stream_kind *kind, void *state,
                         const struct fanout_target *t, size_t size,
                         struct fanout_error *err)
{
    struct s_dest d;
    if (s_check(kind, t, &d, err->message, sizeof err->message) != 0) {
        snprintf(err->code, sizeof err->code, "%s", "InvalidDestination");
        return NULL;
    }
    const char *id = t->id ? t->id : kind->plugin;
    const char *region = t->region ? t->region : d.region;
    size_t region_len = t->region ? strlen(t->region) : d.region_len;
    struct fanout_stream *s = calloc(1, size < sizeof *s ? sizeof *s : size);
    if (s && fanout_batch_spares_init(&s->spares) != 0) {
        free(s);
        s = NULL;
    }
    int rc = s ? 0 : -1;
    if (s) {
        s->kind = kind;
        s->host = ((const struct fanout_plugin_state *)state)->host;
        rc = s_dup(&s->id, id, strlen(id)) | s_dup(&s->name, d.name, d.name_len) |
             s_dup(&s->arn, d.region ? t->destination : NULL, strlen(t->destination)) |
             s_dup(&s->region, region, region_len) |
             s_dup(&s->role, t->role, t->role ? strlen(t->role) : 0) |
             s_dup(&s->external_id, t->external_id,
                   t->external_id ? strlen(t->external_id) : 0);
    }
    if (rc != 0) {
        fanout_stream_close(s);
        snprintf(err->code, sizeof err->code, "%s", "OutOfMemory");
        snprintf(err->message, sizeof err->message, "out of memory");
        return NULL;
    }
    return s;
}

int fanout_stream_send(void *instance, const struct fanout_batch *batch,
                       struct fanout_outcome *outcomes)
{
    struct fanout_stream *s = instance;
    const struct fanout_batch_target t = {
        .host = s->host, .target_id = s->id, .destination = s->name, .ordered = s->ordered};
    return fanout_batch_send_kept(&s->kind->batch, &t, &s->spares, instance, batch,
                                  outcomes);
}

int fanout_stream_build_begin(const struct fanout_stream *s, struct fanout_batch_request *r,
                              size_t need)
{
    const struct fanout_stream_kind *kind = s->kind;
    int by_arn = kind->request.arn_field && s->arn;
    const char *name = by_arn ? s->arn : s->name;
    r->operation = kind->request.operation;
    r->headers[0] =
        (struct fanout_aws_header){"Content-Type", "application/x-amz-json-1.1"};
    r->headers[1] = (struct fanout_aws_header){"X-Amz-Target", kind->request.amz_target};
    r->req.service = kind->dest.service;
    r->req.region = s->region;
    r->req.role_arn = s->role;
    r->req.external_id = s->external_id;
    r->req.method = "POST";
    r->req.path = "/";
    r->req.headers = r->headers;
    r->req.header_count = 2;
    r->req.protocol = FANOUT_AWS_JSON;
    /* no character to escape in a name or an ARN (checked at open) */
    return fanout_sbuf_reserve(&r->body,
                               32 + strlen(name) + strlen(kind->request.entries) + need) |
           fanout_sbuf_printf(&r->body, "{\"%s\":\"%s\",\"%s\":[",
                              by_arn ? kind->request.arn_field : kind->request.name_field,
                              name, kind->request.entries);
}

int fanout_stream_build_end(struct fanout_batch_request *r)
{
    int rc = fanout_sbuf_puts(&r->body, "]}");
    r->req.body = (const uint8_t *)r->body.p;
    r->req.body_len = r->body.len;
    return rc;
}
