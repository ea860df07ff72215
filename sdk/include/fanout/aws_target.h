/*
 * What the plugins for an AWS service reached through host->aws_call keep of
 * a target and how they send to it: the mapping id and destination (for log
 * lines and messages), region, role and external id, base URL, and the
 * request path and query, opened once per instance; then rounds of
 * concurrent requests, each judged by the plugin.
 *
 * Part of the SDK's static library (link `fanout-sdk`), not of the ABI: it
 * is compiled into the plugin, with hidden visibility, and needs only the
 * host's services.
 */
#ifndef FANOUT_AWS_TARGET_H
#define FANOUT_AWS_TARGET_H

#include <stddef.h>
#include <stdint.h>

#include "aws.h"
#include "plugin.h"
#include "plugin_state.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Requests of one target in flight at once (bounds the memory and the
 * connections of one call; not a service limit). */
#define FANOUT_AWS_ROUND 16u

/* init for a plugin that calls AWS: checks that the engine has the AWS
 * services of plugin ABI 1.1 (else EngineTooOld naming `plugin`) and
 * returns a struct fanout_plugin_state in `*state` (free it with
 * fanout_plugin_state_free). */
int fanout_aws_plugin_init(const char *plugin, const struct fanout_host *host, void **state,
                           struct fanout_error *err);

/* What an instance keeps of its target. Every string is its own copy. */
struct fanout_aws_target {
    const struct fanout_host *host;
    char *id;          /* the mapping id (or the plugin's name): log scope */
    char *destination; /* as the mapping names it, for messages */
    char *region;      /* NULL: the default */
    char *role;
    char *external_id;
    char *endpoint; /* base URL, or NULL: the service's for the region */
    char *path;     /* already URI-encoded */
    char *query;    /* without '?', or NULL */
};

/* Fill `a` from the target: host, id (else `name`), destination, role and
 * external id, and the given region and endpoint (either may be NULL).
 * Returns 0, or -1 when out of memory (then `a` holds what was copied:
 * release it with fanout_aws_target_clean_up). */
int fanout_aws_target_open(struct fanout_aws_target *a, const struct fanout_host *host,
                           const struct fanout_target *t, const char *name,
                           const char *region, const char *endpoint);
void fanout_aws_target_clean_up(struct fanout_aws_target *a);

/* head + s[0..n) with every byte but RFC 3986's unreserved characters
 * percent-encoded ('/' included) + tail, malloc'ed; NULL when out of
 * memory. */
char *fanout_aws_uri_join(const char *head, const char *s, size_t n, const char *tail);

/* How a target's requests are made, besides the target's own fields. */
struct fanout_aws_call_spec {
    const char *service;      /* fanout_aws_request.service */
    const char *signing_name; /* or NULL */
    const char *method;
    const struct fanout_aws_header *headers;
    size_t header_count;
    int protocol; /* enum fanout_aws_protocol */
};

/* The body of request i. */
typedef void (*fanout_aws_body_fn)(void *ctx, size_t i, const uint8_t **body,
                                   size_t *body_len);
/* Read the response of request i (released after this returns). */
typedef void (*fanout_aws_judge_fn)(void *ctx, size_t i,
                                    const struct fanout_aws_response *r);

/* Send n requests to the target, FANOUT_AWS_ROUND at once through
 * host->aws_call, each built from `a`, `spec` and body(ctx, i); judge(ctx, i,
 * response) reads each answer. */
void fanout_aws_target_call(const struct fanout_aws_target *a,
                            const struct fanout_aws_call_spec *spec, size_t n,
                            fanout_aws_body_fn body, fanout_aws_judge_fn judge, void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* FANOUT_AWS_TARGET_H */
