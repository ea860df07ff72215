/* The AWS Lambda Runtime API loop (custom runtime `bootstrap`), on its own
 * HTTP/1.1 client (rt_http.h). */
#ifndef FANOUT_RUNTIME_H
#define FANOUT_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct fanout_invocation {
    const char *request_id;
    const char *function_arn;
    const char *trace_id; /* also exported as _X_AMZN_TRACE_ID */
    int64_t deadline_ms;  /* Unix epoch ms, from Lambda-Runtime-Deadline-Ms */
    const char *event;    /* the event body, NUL-terminated */
    size_t event_len;
    /* `event` when the handler may change its text (the runtime's own
     * buffer, read again for the next invocation), else NULL */
    char *event_writable;
};

/* Handle one invocation. Return 0 and fill `response` (JSON) on success;
 * return -1 and fill `error_type` (e.g. "Fanout.DeliveryFailed") and
 * `error_message` to report an invocation error. */
typedef int(fanout_runtime_handler_fn)(void *ctx, const struct fanout_invocation *inv,
                                       struct fanout_sbuf *response, char *error_type,
                                       size_t error_type_len, char *error_message,
                                       size_t error_message_len);

struct fanout_runtime_options {
    const char *api; /* AWS_LAMBDA_RUNTIME_API: "host:port" */
    fanout_runtime_handler_fn *handler;
    void *ctx;
    /* Stop after this many invocations (tests); 0 = run until a fatal
     * error. */
    unsigned max_invocations;
};

/* Run the loop. Returns 0 when max_invocations were served, -1 on a fatal
 * error (the Runtime API unreachable or answering 500 to a post: the
 * runtime should exit). */
int fanout_runtime_run(const struct fanout_runtime_options *opts);

/* Report an initialisation failure (POST /runtime/init/error). */
int fanout_runtime_init_error(const char *api, const char *error_type,
                              const char *error_message);

/* The engine's deadline hook: ms left in the current invocation, INT64_MAX
 * outside one. */
int64_t fanout_runtime_remaining_ms(void);

#endif
