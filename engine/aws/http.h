/* HTTP for the AWS layer: kept-alive connections shared across threads and
 * invocations, many requests of one call in flight at once; fanout's own
 * connections (TCP, TLS on libssl) where no proxy applies, libcurl
 * transfers where one does. */
#ifndef FANOUT_HTTP_H
#define FANOUT_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct fanout_http_header {
    const char *name;
    const char *value;
};

struct fanout_http_request {
    const char *method;
    const char *url;
    const struct fanout_http_header *headers; /* sent as given */
    size_t header_count;
    const uint8_t *body;
    size_t body_len;
    int64_t timeout_ms;         /* whole request; 0 = no limit */
    int64_t connect_timeout_ms; /* 0 = the default (3000) */
    /* Skip TLS certificate and host name verification for this request
     * only (the management commands' --no-verify-ssl). */
    int tls_no_verify;
};

/* Transport outcomes when no HTTP status arrived. */
enum fanout_http_error {
    FANOUT_HTTP_OK = 0,
    FANOUT_HTTP_TIMEOUT = 1,
    FANOUT_HTTP_CONNECT = 2, /* refused, unreachable, DNS */
    FANOUT_HTTP_RESET = 3,   /* reset / closed mid-response */
    FANOUT_HTTP_TLS = 4,     /* handshake or verification failed */
    FANOUT_HTTP_OTHER = 5,
};

struct fanout_http_response {
    long status; /* 0 when no response */
    enum fanout_http_error error;
    char error_text[256]; /* the transport's words (or libcurl's), no secrets */
    struct fanout_sbuf body;
    size_t header_count;
    struct fanout_http_header *headers; /* names as received */
    /* where the headers' names and values live (one block) */
    struct fanout_sbuf header_text;
};

/* Process-wide set-up (call once before threads start) and tear-down
 * (reference-counted; never while a perform is in progress). */
int fanout_http_global_init(void);
void fanout_http_global_cleanup(void);

/* The largest response body read; a larger one is a FANOUT_HTTP_OTHER error. */
#define FANOUT_HTTP_MAX_BODY_BYTES (64u << 20)

/* Perform the requests concurrently and wait for all. Thread-safe.
 * Each response is replaced (it may be zeroed or reused); on a transport
 * error `status` is 0 with an empty body and no headers.
 * Connections are reused across calls and threads. TLS verification is on;
 * hosts listed in FANOUT_TLS_INSECURE_HOSTS (comma-separated host[:port])
 * skip it (test servers only); FANOUT_CA_BUNDLE names a CA file to trust
 * instead of the system's. Proxies follow the standard variables as
 * libcurl reads them (http_proxy; https_proxy or HTTPS_PROXY; all_proxy or
 * ALL_PROXY; no_proxy or NO_PROXY), read like the others by the first
 * fanout_http_global_init. */
void fanout_http_perform(const struct fanout_http_request *const *reqs,
                         struct fanout_http_response *const *resps, size_t n);

/* The first header of that name (case-insensitive), or NULL. */
const char *fanout_http_response_header(const struct fanout_http_response *r,
                                        const char *name);
void fanout_http_response_clean_up(struct fanout_http_response *r);

#endif
