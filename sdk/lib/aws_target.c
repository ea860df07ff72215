/*
 * A target of an AWS plugin: its fields, its request path, and rounds of
 * requests through host->aws_call (fanout/aws_target.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fanout/aws_target.h>

int fanout_aws_plugin_init(const char *plugin, const struct fanout_host *host, void **state,
                           struct fanout_error *err)
{
    if (!FANOUT_HOST_HAS(host, aws_call) || !FANOUT_HOST_HAS(host, aws_response_clean_up) ||
        !FANOUT_HOST_HAS(host, aws_response_header) || !FANOUT_HOST_HAS(host, aws_endpoint))
        return fanout_error_set(err, "EngineTooOld",
                                "the %s plugin needs the engine's AWS services (plugin "
                                "ABI 1.1)",
                                plugin);
    return fanout_plugin_state_new(host, state, err);
}

/* A copy of s; NULL for NULL, and *ok cleared when out of memory. */
static char *s_dup(const char *s, int *ok)
{
    char *c = s ? strdup(s) : NULL;
    if (s && !c)
        *ok = 0;
    return c;
}

int fanout_aws_target_open(struct fanout_aws_target *a, const struct fanout_host *host,
                           const struct fanout_target *t, const char *name,
                           const char *region, const char *endpoint)
{
    int ok = 1;
    memset(a, 0, sizeof *a);
    a->host = host;
    a->id = s_dup(t->id ? t->id : name, &ok);
    a->destination = s_dup(t->destination, &ok);
    a->region = s_dup(region, &ok);
    a->role = s_dup(t->role, &ok);
    a->external_id = s_dup(t->external_id, &ok);
    a->endpoint = s_dup(endpoint, &ok);
    return ok ? 0 : -1;
}

void fanout_aws_target_clean_up(struct fanout_aws_target *a)
{
    free(a->id);
    free(a->destination);
    free(a->region);
    free(a->role);
    free(a->external_id);
    free(a->endpoint);
    free(a->path);
    free(a->query);
    memset(a, 0, sizeof *a);
}

char *fanout_aws_uri_join(const char *head, const char *s, size_t n, const char *tail)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t hl = strlen(head), tl = strlen(tail);
    char *out = malloc(hl + n * 3 + tl + 1);
    if (!out)
        return NULL;
    memcpy(out, head, hl);
    char *p = out + hl;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        /* ASCII ranges, not isalnum(): the locale must not widen them */
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    memcpy(p, tail, tl + 1);
    return out;
}

void fanout_aws_target_call(const struct fanout_aws_target *a,
                            const struct fanout_aws_call_spec *spec, size_t n,
                            fanout_aws_body_fn body, fanout_aws_judge_fn judge, void *ctx)
{
    struct fanout_aws_request req[FANOUT_AWS_ROUND];
    struct fanout_aws_response resp[FANOUT_AWS_ROUND];
    const struct fanout_aws_request *rp[FANOUT_AWS_ROUND];
    struct fanout_aws_response *sp[FANOUT_AWS_ROUND];
    for (size_t first = 0; first < n; first += FANOUT_AWS_ROUND) {
        size_t k = n - first < FANOUT_AWS_ROUND ? n - first : FANOUT_AWS_ROUND;
        for (size_t i = 0; i < k; i++) {
            req[i] = (struct fanout_aws_request){
                .struct_size = sizeof req[i],
                .service = spec->service,
                .signing_name = spec->signing_name,
                .region = a->region,
                .endpoint = a->endpoint,
                .role_arn = a->role,
                .external_id = a->external_id,
                .method = spec->method,
                .path = a->path,
                .query = a->query,
                .headers = spec->headers,
                .header_count = spec->header_count,
                .protocol = spec->protocol,
            };
            body(ctx, first + i, &req[i].body, &req[i].body_len);
            memset(&resp[i], 0, sizeof resp[i]);
            resp[i].struct_size = sizeof resp[i];
            rp[i] = &req[i];
            sp[i] = &resp[i];
        }
        a->host->aws_call(rp, sp, k);
        for (size_t i = 0; i < k; i++) {
            judge(ctx, first + i, &resp[i]);
            a->host->aws_response_clean_up(&resp[i]);
        }
    }
}
