/*
 * The `lambda` destination, shared between lambda.c (lifecycle,
 * destination, options) and lambda_api.c (events, Invoke, errors). Nothing
 * here is exported: the plugin is built with hidden visibility and only
 * its descriptor leaves the object.
 */
#ifndef FANOUT_PLUGIN_LAMBDA_H
#define FANOUT_PLUGIN_LAMBDA_H

#include <stddef.h>
#include <stdint.h>

#include <fanout/aws.h>
#include <fanout/aws_target.h>
#include <fanout/helpers.h>
#include <fanout/plugin.h>

/*
 * Payload limit of an asynchronous (Event) invocation: 1 MB since October
 * 2025, 256 KB (262,144 bytes) before. AWS Lambda Invoke API reference
 * (docs.aws.amazon.com/lambda/latest/api/API_Invoke.html) and "More room
 * to build: serverless services now support payloads up to 1 MB"
 * (aws.amazon.com/blogs/compute, 29 Jan 2026); shared/aws-facts.md 3.
 * Counted as 1,048,576 bytes, what the service's 413 message names.
 */
#define LAMBDA_EVENT_PAYLOAD_MAX 1048576u
/* The smallest `maxPayloadBytes` (the option lowers the limit, e.g. to the
 * former 262,144 where that still applies). */
#define LAMBDA_PAYLOAD_OPTION_MIN 1024u

/* The event the function receives: {"Records":[e1,e2,...]}. */
#define LAMBDA_ENVELOPE_HEAD     "{\"Records\":["
#define LAMBDA_ENVELOPE_TAIL     "]}"
#define LAMBDA_ENVELOPE_HEAD_LEN (sizeof LAMBDA_ENVELOPE_HEAD - 1)
#define LAMBDA_ENVELOPE_TAIL_LEN (sizeof LAMBDA_ENVELOPE_TAIL - 1)
#define LAMBDA_ENVELOPE_LEN      (LAMBDA_ENVELOPE_HEAD_LEN + LAMBDA_ENVELOPE_TAIL_LEN)

/* Mapping options (the plugin's options table). */
struct lambda_options {
    const char *payload;       /* "source" (default) or "records" */
    int64_t max_payload_bytes; /* 0 or LAMBDA_EVENT_PAYLOAD_MAX: the service's */
};

/* A destination, as slices of the mapping's string. */
struct lambda_dest {
    /* The FunctionName sent: the destination without its qualifier (a name,
     * "account:function:name" or a function ARN). */
    const char *function;
    size_t function_len;
    const char *name; /* the function's own name */
    size_t name_len;
    const char *qualifier; /* alias or version, or NULL */
    size_t qualifier_len;
    const char *region; /* from a function ARN, or NULL */
    size_t region_len;
};

/* One open target. */
struct lambda_target {
    /* The host; region: the ARN's or the mapping's, or NULL for the
     * default; path: /2015-03-31/functions/<FunctionName>/invocations;
     * query: Qualifier=<alias or version>, or NULL. */
    struct fanout_aws_target aws;
    int records_payload;
    int parallel;
    uint64_t max_payload;
};

/* Parse a destination; -1 with what is wrong in err. No I/O. */
int lambda_parse_destination(const char *dest, struct lambda_dest *out, char *err,
                             size_t err_len);

/* Deliver a batch (lambda_api.c). */
int lambda_send(const struct lambda_target *t, const struct fanout_batch *batch,
                struct fanout_outcome *outcomes);

#endif
