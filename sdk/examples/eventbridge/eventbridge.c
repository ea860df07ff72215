/*
 * eventbridge: an example AWS destination built on fanout_batch_send.
 *
 * Each message (a JSON object) becomes one event on the EventBridge bus the
 * destination names ("default", a bus name or its ARN), with the mapping's
 * "eventSource" and "detailType": PutEvents, JSON 1.1, up to 10 entries and
 * 1 MiB per request, 256 KiB per entry (Source + DetailType + Detail).
 * The plugin keeps only the protocol: make an entry, build a request, read
 * an answer; libfanout-sdk splits, sends, logs, reports and cleans up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fanout/batch.h>
#include <jansson.h>

#define EB_MAX_ENTRIES       10
#define EB_MAX_REQUEST_BYTES 1048576
#define EB_MAX_ENTRY_BYTES   262144

struct eb_options {
    const char *source, *detail_type;
};

/* The host table outlives the plugin; an instance is its target, which
 * outlives the instance. */
static const struct fanout_host *s_host;

static int s_init(const struct fanout_host *host, void **state, struct fanout_error *err)
{
    (void)state;
    s_host = host;
    if (FANOUT_HOST_HAS(host, aws_call))
        return 0;
    snprintf(err->message, sizeof err->message, "eventbridge needs plugin ABI 1.1");
    return -1;
}

static int s_validate(const struct fanout_target *t, char *err, size_t err_len)
{
    const char *d = t->destination;
    if (d && *d && strlen(d) <= 1600 && !strpbrk(d, " \t\r\n\"\\"))
        return 0;
    snprintf(err, err_len, "expected an event bus name or ARN, e.g. \"default\"");
    return -1;
}

static int s_open(void *state, const struct fanout_target *t, void **out,
                  struct fanout_error *err)
{
    (void)state;
    (void)err;
    *out = (void *)t;
    return 0;
}

static void s_close(void *instance)
{
    (void)instance;
}

/* Detail is the message itself, which must be a JSON object. */
static int s_prepare(void *ctx, const struct fanout_message *m, size_t i, void *entry,
                     uint64_t *size, struct fanout_outcome *out)
{
    const struct eb_options *o = ((const struct fanout_target *)ctx)->options;
    (void)i;
    json_t *j = json_loadb((const char *)m->body, m->body_len, 0, NULL);
    int object = json_is_object(j);
    json_decref(j);
    if (!object) {
        fanout_outcome_set(out, FANOUT_FATAL, "MalformedDetail",
                           "message of %zu bytes is not a JSON object (an event's Detail)",
                           m->body_len);
        return -1;
    }
    *(const struct fanout_message **)entry = m;
    *size = strlen(o->source) + strlen(o->detail_type) + m->body_len;
    return 0;
}

static int s_build(void *ctx, struct fanout_batch_request *r)
{
    const struct fanout_target *t = ctx;
    const struct eb_options *o = t->options;
    json_t *list = json_array();
    for (size_t j = 0; j < r->count; j++) {
        const struct fanout_message *m =
            *(const struct fanout_message *const *)r->entries[j];
        json_array_append_new(list,
                              json_pack("{s:s,s:s,s:s%,s:s}", "Source", o->source,
                                        "DetailType", o->detail_type, "Detail", m->body,
                                        m->body_len, "EventBusName", t->destination));
    }
    size_t n = json_array_size(list);
    json_t *root = json_pack("{s:o}", "Entries", list);
    char *text = n == r->count ? json_dumps(root, JSON_COMPACT) : NULL;
    int rc = !text || fanout_sbuf_puts(&r->body, text);
    json_decref(root);
    free(text);
    if (rc)
        return -1;
    r->operation = "PutEvents";
    r->headers[0] =
        (struct fanout_aws_header){"Content-Type", "application/x-amz-json-1.1"};
    r->headers[1] = (struct fanout_aws_header){"X-Amz-Target", "AWSEvents.PutEvents"};
    r->req = (struct fanout_aws_request){.struct_size = sizeof r->req,
                                         .service = "eventbridge",
                                         .region = t->region,
                                         .role_arn = t->role,
                                         .external_id = t->external_id,
                                         .method = "POST",
                                         .path = "/",
                                         .headers = r->headers,
                                         .header_count = 2,
                                         .body = (const uint8_t *)r->body.p,
                                         .body_len = r->body.len,
                                         .protocol = FANOUT_AWS_JSON};
    return 0;
}

/* Believed only whole: HTTP 200, one entry per entry sent, each with an
 * EventId or an ErrorCode, as many errors as FailedEntryCount says. */
static void s_read(void *ctx, const struct fanout_batch_request *r,
                   struct fanout_outcome *out)
{
    (void)ctx;
    json_t *root = r->resp.status == 200 && r->resp.body
                       ? json_loadb((const char *)r->resp.body, r->resp.body_len, 0, NULL)
                       : NULL;
    json_t *list = json_object_get(root, "Entries"), *e;
    json_int_t failed = json_integer_value(json_object_get(root, "FailedEntryCount"));
    int ok = json_is_integer(json_object_get(root, "FailedEntryCount")) &&
             json_array_size(list) == r->count;
    size_t j;
    json_array_foreach (list, j, e) {
        const char *id = json_string_value(json_object_get(e, "EventId"));
        const char *code = json_string_value(json_object_get(e, "ErrorCode"));
        ok = ok && json_is_object(e) && (id && *id) != (code && *code);
        failed -= code && *code;
    }
    for (j = 0; j < r->count; j++) {
        struct fanout_outcome *o = &out[r->indexes[j]];
        e = json_array_get(list, j);
        const char *code = json_string_value(json_object_get(e, "ErrorCode"));
        const char *msg = json_string_value(json_object_get(e, "ErrorMessage"));
        if (!ok || failed != 0)
            fanout_outcome_set(
                o, FANOUT_RETRY, "InvalidResponse",
                "PutEvents answer does not match the request: delivery unknown");
        else if (code && *code)
            fanout_outcome_set(o,
                               strstr(code, "Throttl")           ? FANOUT_THROTTLED
                               : strcmp(code, "InternalFailure") ? FANOUT_FATAL
                                                                 : FANOUT_RETRY,
                               code, "PutEvents entry failed: %s",
                               msg ? msg : "no message");
    }
    json_decref(root);
}

static int s_send(void *instance, const struct fanout_batch *batch,
                  struct fanout_outcome *outcomes)
{
    const struct fanout_target *in = instance;
    static const struct fanout_batch_api api = {.entry_size =
                                                    sizeof(const struct fanout_message *),
                                                .max_entries = EB_MAX_ENTRIES,
                                                .max_request_bytes = EB_MAX_REQUEST_BYTES,
                                                .prepare = s_prepare,
                                                .build = s_build,
                                                .read = s_read};
    const struct fanout_batch_target bt = {s_host, in->id, in->destination, 0, NULL};
    return fanout_batch_send(&api, &bt, instance, batch, outcomes);
}

static const struct fanout_option s_options[] = {
    {.name = "eventSource",
     .type = FANOUT_OPT_STRING,
     .default_str = "fanout",
     .offset = offsetof(struct eb_options, source),
     .description = "the events' Source"},
    {.name = "detailType",
     .type = FANOUT_OPT_STRING,
     .default_str = "fanout message",
     .offset = offsetof(struct eb_options, detail_type),
     .description = "the events' DetailType"},
    {.name = NULL},
};

FANOUT_PLUGIN_DEFINE(.name = "eventbridge", .version = "1.0.0",
                     .description = "Amazon EventBridge buses (PutEvents; an example)",
                     .destination_example = "default",
                     .limits = {.max_messages_per_call = EB_MAX_ENTRIES,
                                .max_message_bytes = EB_MAX_ENTRY_BYTES,
                                .max_call_bytes = EB_MAX_REQUEST_BYTES},
                     .collapse_modes = FANOUT_COLLAPSE_BIT(FANOUT_COLLAPSE_NONE),
                     .default_collapse = FANOUT_COLLAPSE_NONE, .options = s_options,
                     .options_size = sizeof(struct eb_options), .init = s_init,
                     .validate = s_validate, .open = s_open, .send = s_send,
                     .close = s_close);
