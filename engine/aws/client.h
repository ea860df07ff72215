/* The AWS layer as plugins see it (fanout/aws.h): endpoint, region,
 * credentials, SigV4, HTTP, retries and error parsing, in one call. */
#ifndef FANOUT_CLIENT_H
#define FANOUT_CLIENT_H

#include <fanout/aws.h>
#include <stdint.h>

#include "aws/retry.h"

/* Set up the layer once at start: the deadline hook (ms left in the
 * invocation; NULL = no deadline) and the retry policy from the
 * environment. Returns -1 with err for a malformed FANOUT_AWS_* value. */
int fanout_aws_init(int64_t (*remaining_ms)(void), char *err, size_t err_len);
const struct fanout_retry_policy *fanout_aws_policy(void);

/* Who retries an AWS request (one owner per request, never two nested):
 *
 * - Record sends: the engine. Plugins reach AWS through the host table's
 *   aws_call, which is fanout_aws_call_once: one attempt per request, and
 *   a throttled or retryable answer comes back at once as
 *   FANOUT_AWS_THROTTLED / FANOUT_AWS_RETRYABLE, with the service's headers
 *   (Retry-After...) readable through aws_response_header. The plugin
 *   turns it into a per-message outcome and the engine resends, up to
 *   FANOUT_RETRY_ATTEMPTS in all, inside the deadline, knowing which
 *   records are still due and in which order. The message carries no
 *   attempt count: the engine reports it. One exception: an expired-token
 *   answer refreshes the credentials and sends once more inside the same
 *   attempt (the engine could not cure it by waiting).
 * - Everything else, which nothing above retries: fanout_aws_call (the
 *   DynamoDB mapping store, the management commands) tries up to
 *   FANOUT_AWS_MAX_ATTEMPTS times with full-jitter backoff inside the
 *   deadline. The credentials providers (aws/credentials/) send their STS
 *   calls through the same path (fanout_aws_call_with, with the policy read
 *   at the call and the credentials' deadline) and retry the container and
 *   SSO requests with the same backoff, once per refresh shared by all
 *   callers, a failure being remembered for a while rather than fetched
 *   again by every send (see credentials.h). */
/* The layer's own signed calls (STS from the credentials providers): what
 * fanout_aws_call takes from the process-wide settings, given per call. */
struct fanout_credentials;
struct fanout_aws_call_opts {
    const struct fanout_retry_policy *policy; /* NULL: fanout_aws_policy() */
    int64_t (*remaining_ms)(void);            /* NULL: fanout_aws_init's hook */
    /* Sign with these (not refreshed on an expired-token answer); NULL:
     * fanout_credentials_get for the request's role. */
    const struct fanout_credentials *creds;
    int unsigned_request; /* send without a signature (AssumeRoleWithWebIdentity) */
};

/* Start an invocation: the endpoints of record sends are resolved again
 * (environment, config file) at their first request from now on, then
 * reused by every request of the invocation to the same service, region
 * and plugin endpoint. Until the first call, every request resolves its
 * own. Thread-safe. */
void fanout_aws_begin_invocation(void);

/* Skip TLS verification for the requests sent from now on (on != 0), or
 * verify again (0). For the management commands' --no-verify-ssl, which
 * warn when they set it; the engine never does. Not thread-safe: set it
 * before the requests start. */
void fanout_aws_set_tls_no_verify(int on);

int fanout_aws_call(const struct fanout_aws_request *const *reqs,
                    struct fanout_aws_response *const *resps, size_t n);
int fanout_aws_call_once(const struct fanout_aws_request *const *reqs,
                         struct fanout_aws_response *const *resps, size_t n);
/* fanout_aws_call for one request, with `opts` (NULL: none). */
int fanout_aws_call_with(const struct fanout_aws_request *req,
                         struct fanout_aws_response *resp,
                         const struct fanout_aws_call_opts *opts);
void fanout_aws_response_clean_up(struct fanout_aws_response *r);
/* The transport's words when no response arrived (status 0), else NULL. */
const char *fanout_aws_response_transport_error(const struct fanout_aws_response *r);
const char *fanout_aws_response_header(const struct fanout_aws_response *r,
                                       const char *name);
int fanout_aws_endpoint(const char *service, const char *region, char *url, size_t url_len,
                        char *err, size_t err_len);

/* Parse a service error body: JSON ({"__type": "...#Code", "message"}),
 * REST-JSON (x-amzn-ErrorType header + {"Message"}), Query XML
 * (<Error><Code>..</Code><Message>..</Message></Error>), OpenSearch
 * ({"error":{"type","reason"}}). Fills code and message (possibly empty). */
void fanout_aws_parse_error(int protocol, const char *error_type_header,
                            const uint8_t *body, size_t len, char *code, size_t code_len,
                            char *message, size_t message_len);

#endif
