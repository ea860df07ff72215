/*
 * fanout AWS services for plugins (plugin ABI 1.1).
 *
 * The engine's AWS layer resolves the endpoint and region, finds
 * credentials (environment, shared files, container credentials, STS
 * AssumeRole for a target's role with its external id, cached and refreshed
 * before they expire), signs with SigV4, sends over kept-alive HTTPS
 * connections (many requests of one call in flight at once), and reads the
 * service's errors. A plugin describes requests and reads responses; it
 * needs nothing else to talk to an AWS service.
 *
 * Retries: the engine owns the retry budget of record sends. aws_call makes
 * one attempt per request (plus one re-signed resend when the service says
 * the credentials expired) and returns a throttled or retryable outcome at
 * once; report it in the message's outcome (FANOUT_THROTTLED, FANOUT_RETRY,
 * with retry_after_ms from a Retry-After header if you like) and the engine
 * resends, FANOUT_RETRY_ATTEMPTS in all. Do not loop on aws_call yourself:
 * that would multiply the engine's attempts. Credentials (STS AssumeRole)
 * are fetched and retried once for all callers, inside the deadline.
 *
 * Reach these through `struct fanout_host` (plugin.h), after checking
 * FANOUT_HOST_HAS(host, aws_call): an engine older than 1.1 lacks them.
 *
 * Credentials, signatures and tokens never appear in log lines or in the
 * messages these functions return.
 */
#ifndef FANOUT_AWS_H
#define FANOUT_AWS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One header: name and value, NUL-terminated. */
struct fanout_aws_header {
    const char *name;
    const char *value;
};

/*
 * A request. Set `struct_size = sizeof(struct fanout_aws_request)`; fields
 * are only ever appended, and the engine reads a newer field only when the
 * size says it is there.
 */
struct fanout_aws_request {
    uint32_t struct_size;
    /* The service, as in the endpoint variables AWS_ENDPOINT_URL_<ID>:
     * "kinesis", "firehose", "sqs", "sns", "lambda", "iot_data_plane",
     * "dynamodb", "dynamodb_streams", "sts", "cloudwatch_logs", "es". Picks
     * the default host, the endpoint override and the signing name. */
    const char *service;
    /* SigV4 signing name when it differs from the service's default
     * ("iotdata", "es", "aoss"...), else NULL. */
    const char *signing_name;
    /* Region; NULL for the function's (AWS_REGION, AWS_DEFAULT_REGION,
     * the profile's). */
    const char *region;
    /* Base URL ("https://host[:port]"), for services whose endpoint is the
     * user's (OpenSearch domain, IoT account endpoint, an SQS queue URL's
     * host); NULL to resolve it from service and region. The
     * AWS_ENDPOINT_URL_<SERVICE> / AWS_ENDPOINT_URL variables still win. */
    const char *endpoint;
    /* Cross-account: the role to assume and its external id, or NULL. */
    const char *role_arn;
    const char *external_id;
    const char *method; /* "POST", "GET"... */
    /* The path as sent, already URI-encoded ("/", "/2015-03-31/functions/
     * f/invocations"), and the query without '?' or NULL. */
    const char *path;
    const char *query;
    /* Extra headers (Content-Type, X-Amz-Target...), `header_count` of
     * them. Host, X-Amz-Date, Authorization and the security token are
     * added by the engine. */
    const struct fanout_aws_header *headers;
    size_t header_count;
    const uint8_t *body;
    size_t body_len;
    /* Longest time for this request, all attempts included, in ms; 0 for
     * the engine's default. The invocation's deadline always applies. */
    int64_t timeout_ms;
    /* The protocol, so the engine can read the service's errors:
     * FANOUT_AWS_JSON (JSON 1.0/1.1 and REST-JSON), FANOUT_AWS_QUERY (XML
     * errors), FANOUT_AWS_REST (other bodies, e.g. OpenSearch). */
    int protocol;
};

enum fanout_aws_protocol {
    FANOUT_AWS_JSON = 0,
    FANOUT_AWS_QUERY = 1,
    FANOUT_AWS_REST = 2,
};

/* How a request ended. aws_call makes one attempt: THROTTLED and
 * RETRYABLE are for the engine to retry (see above). */
enum fanout_aws_result {
    FANOUT_AWS_OK = 0,        /* 2xx */
    FANOUT_AWS_THROTTLED = 1, /* throttled: resend after backoff */
    FANOUT_AWS_RETRYABLE = 2, /* 5xx, timeout, reset: may be resent */
    FANOUT_AWS_FAILED = 3,    /* validation, access, not found...: do not
                                 retry */
};

/*
 * A response, filled by the engine. Set `struct_size` before the call.
 * Release with host->aws_response_clean_up().
 */
struct fanout_aws_response {
    uint32_t struct_size;
    enum fanout_aws_result result;
    long status;   /* HTTP status, 0 when no response arrived */
    uint8_t *body; /* NUL-terminated; owned by the engine */
    size_t body_len;
    /* The service's own error code and message ("ThrottlingException",
     * "AccessDenied"...) or, with no response, the transport's ("Timeout",
     * "ConnectionReset"...). Empty on success. */
    char error_code[128];
    char error_message[512];
    uint32_t attempts; /* requests sent: 1, or 2 after an expired token */
    /* Internal to the engine: response headers. Read them with
     * host->aws_response_header(). */
    void *internal;
};

#ifdef __cplusplus
}
#endif

#endif /* FANOUT_AWS_H */
