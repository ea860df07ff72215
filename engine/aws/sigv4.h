/* AWS Signature Version 4 (header signing), with its stages exposed so the
 * tests can compare each one with AWS's test suite. */
#ifndef FANOUT_SIGV4_H
#define FANOUT_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/util.h"

struct fanout_sigv4_credentials {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL for long-term keys */
};

struct fanout_sigv4_header {
    const char *name;
    const char *value;
};

/* The request as it will be sent. `path` and `query` are exactly what goes
 * on the request line (already URI-encoded by the caller; the signer
 * encodes them canonically). `headers` must include Host. */
struct fanout_sigv4_request {
    const char *method;
    const char *path;
    const char *query; /* without '?', or NULL */
    const struct fanout_sigv4_header *headers;
    size_t header_count;
    const uint8_t *body;
    size_t body_len;
};

struct fanout_sigv4_params {
    const char *region;
    const char *service; /* signing name */
    time_t now;          /* signing time (injected, for repeatable tests) */
    /* Normalise the path (remove dot segments, merge slashes): every
     * service but S3. */
    int normalize_path;
    /* Add X-Amz-Content-Sha256 (some services want it). */
    int content_sha256_header;
};

/* The headers to add to the request: X-Amz-Date, X-Amz-Security-Token (with
 * a session token), X-Amz-Content-Sha256 (when asked) and Authorization. */
struct fanout_sigv4_result {
    char amz_date[17];        /* YYYYMMDDTHHMMSSZ */
    char content_sha256[65];  /* hex SHA-256 of the body */
    char authorization[1024]; /* secret: never log it */
    char signature[65];
};

/* Stages (each appends to `out`). The string to sign takes the canonical
 * request; the signature takes the string to sign. */
int fanout_sigv4_canonical_request(const struct fanout_sigv4_request *req,
                                   const struct fanout_sigv4_params *p,
                                   const char *amz_date, const char *session_token,
                                   struct fanout_sbuf *out,
                                   struct fanout_sbuf *signed_headers);
int fanout_sigv4_string_to_sign(const char *canonical_request, size_t len,
                                const struct fanout_sigv4_params *p, const char *amz_date,
                                struct fanout_sbuf *out);
int fanout_sigv4_signature(const char *string_to_sign, size_t len,
                           const struct fanout_sigv4_params *p, const char *amz_date,
                           const char *secret_access_key, char hex_out[65]);

/* All stages: fill `out`. Returns 0, or -1 (out of memory, bad input). The
 * derived signing key (and its HMAC states) is cached per (key id, secret,
 * date, region, service). */
int fanout_sigv4_sign(const struct fanout_sigv4_request *req,
                      const struct fanout_sigv4_params *p,
                      const struct fanout_sigv4_credentials *c,
                      struct fanout_sigv4_result *out);

/* Hex SHA-256 of data. */
void fanout_sha256_hex(const uint8_t *data, size_t len, char out[65]);

#ifdef FANOUT_TESTING
/* Test hooks: the derived signing key (and whether it came from the
 * cache), and emptying the cache. */
int fanout_sigv4_test_signing_key(const char *key_id, const char *secret, const char *date8,
                                  const char *region, const char *service, uint8_t key[32],
                                  int *from_cache);
void fanout_sigv4_test_cache_clear(void);
#endif

#endif
