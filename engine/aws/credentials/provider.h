/* Inside the credentials layer (not for the rest of the engine, which uses
 * aws/credentials.h): the provider interface, the STS call, and the
 * helpers the providers share.
 *
 * Files: chain.c (the base chain's order and the cache, with the public
 * API), one file per provider (env.c, profile.c, web_identity.c, sso.c,
 * process.c, container.c, imds.c), sts.c (AssumeRole and
 * AssumeRoleWithWebIdentity), util.c (the helpers below).
 *
 * Secrets (secret keys, session tokens, the Authorization header, the
 * container authorization token, web identity tokens) never reach a log
 * line or an error string: server messages go through cred_server_text,
 * and access key ids are shown cut to four characters (cred_key_hint). */
#ifndef FANOUT_CRED_PROVIDER_H
#define FANOUT_CRED_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/retry.h"
#include "common/util.h"

#define ERR_LEN            512
#define SERVER_MESSAGE_MAX 400
#define ELLIPSIS           "\xe2\x80\xa6"
/* STS AssumeRole limits [aws-facts 3]. */
#define MAX_DURATION_S 43200

/* ---- the provider interface ---- */

/* What a fetch returns: found (`out` filled), not configured here (the
 * chain tries the next provider), or an error with err (the chain stops: a
 * broken configuration is not skipped silently). */
enum { CRED_NOT_FOUND = 0, CRED_FOUND = 1, CRED_ERROR = -1 };

/* Where a provider looks: the profile it reads, and whether the environment
 * variables come before the profile's keys (1 for the chosen profile, 0 for
 * a source profile). Providers that read neither ignore it. */
struct cred_scope {
    const char *profile;
    int use_env;
};

struct cred_provider {
    const char *name; /* for messages: "environment", "container"... */
    int (*fetch)(const struct cred_scope *scope, struct fanout_credentials *out, char *err,
                 size_t err_len);
};

extern const struct cred_provider cred_env_provider;          /* env.c */
extern const struct cred_provider cred_profile_provider;      /* profile.c */
extern const struct cred_provider cred_web_identity_provider; /* web_identity.c */
extern const struct cred_provider cred_sso_provider;          /* sso.c */
extern const struct cred_provider cred_process_provider;      /* process.c */
extern const struct cred_provider cred_container_provider;    /* container.c */
extern const struct cred_provider cred_imds_provider;         /* imds.c */

/* ---- STS (sts.c) ---- */

struct cred_sts_call {
    const char *role_arn;
    const char *external_id;
    const char *region;       /* NULL: the configured one */
    int region_fallback;      /* no region configured: us-east-1 (profile roles) */
    const char *session_name; /* NULL: fanout-<function>-<pid> */
    long duration_s;          /* 0: FANOUT_ASSUME_ROLE_SECONDS */
    const struct fanout_credentials *base; /* NULL: the cached base chain */
    const char *web_token;                 /* AssumeRoleWithWebIdentity (unsigned) */
};

/* AssumeRole signed with c->base (or the cached base chain), or
 * AssumeRoleWithWebIdentity with c->web_token. 0, or -1 with err. */
int cred_sts_call(const struct cred_sts_call *c, struct fanout_credentials *out, char *err,
                  size_t err_len);
/* A target's role: AssumeRole with the base chain. */
int cred_assume_role(const char *role_arn, const char *external_id, const char *region,
                     struct fanout_credentials *out, char *err, size_t err_len);
/* The readers of STS replies (exposed for the fuzz target). */
int cred_sts_parse(const char *xml, size_t n, const char *action, const char *role_arn,
                   struct fanout_credentials *out, char *err, size_t err_len);
void cred_sts_error(const uint8_t *body, size_t len, const char *const *secrets,
                    size_t secret_count, const char *key_id, char *code, size_t code_len,
                    char *msg, size_t msg_len);

/* ---- what the fuzz target reaches in container.c ---- */

int cred_container_host_allowed(const char *host);
int cred_container_check_url(const char *url, char *shown, size_t shown_len, char *err,
                             size_t err_len);
int cred_container_parse(const uint8_t *body, size_t len, const char *shown,
                         struct fanout_credentials *out, char *err, size_t err_len);

/* ---- the base chain (chain.c) ---- */

/* The base chain's credentials, through the cache (force: fetch again). */
int cred_base_get(int force, struct fanout_credentials *out, char *err, size_t err_len);

/* ---- helpers (util.c) ---- */

void cred_set_err(char *err, size_t err_len, const char *fmt, ...) FANOUT_FMT(3, 4);
int64_t cred_now_ms(void);
/* A variable's value, NULL when unset or empty. */
const char *cred_env(const char *name);
void cred_wipe(void *p, size_t n);
void cred_free_secret(char *s);
/* "AKIA…": enough to tell keys apart in a message, not to use one. */
void cred_key_hint(const char *key_id, char out[16]);
/* AWS_PROFILE, or "default". */
const char *cred_profile_name(void);
/* An integer from the environment in [min, max], or `def` when unset. */
int cred_env_int(const char *name, long def, long min, long max, long *out, char *err,
                 size_t err_len);
/* ISO 8601 as AWS writes it: YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM|-HH:MM]. */
int cred_parse_iso8601(const char *s, int64_t *out_ms);
/* Whether a JSON answer's Expiration is there but not a string: absent or
 * null means keys that do not expire; a number or an object is no time. */
struct json_t;
int cred_expiration_not_string(const struct json_t *exp);
void cred_format_time(int64_t ms, char out[32]);
/* Words from a server, made safe for a message of ours: no control
 * characters, bounded, and none of the request's secrets. */
void cred_server_text(const char *text, size_t n, const char *const *secrets,
                      size_t secret_count, const char *key_id, char *out, size_t out_len);
int cred_copy_field(char *dst, size_t dst_len, const char *src, size_t n, const char *what,
                    const char *source, char *err, size_t err_len);
int cred_fill(struct fanout_credentials *out, const char *source, const char *id,
              const char *secret, const char *token, char *err, size_t err_len);
/* name=value, form-encoded, appended after a '&' unless b is empty. */
int cred_form_append(struct fanout_sbuf *b, const char *name, const char *value);

/* The shared files: the config file (0) or the credentials file (1) as
 * named in messages; a profile's key from the credentials file, else the
 * config file (malloc'd, NULL when absent). */
const char *cred_file_name(int credentials_file);
char *cred_pv(const char *profile, const char *key);
int cred_has(const char *profile, const char *key);
int cred_has_static(const char *profile);
int cred_has_role(const char *profile);
/* A whole small file, NUL-terminated, or NULL with err. */
char *cred_slurp(const char *path, size_t max, const char *what, size_t *len, char *err,
                 size_t err_len);

/* HTTP for the unsigned requests (container, SSO, instance metadata). */
void cred_perform(const struct fanout_http_request *req, struct fanout_http_response *resp);
void cred_response_clean_up(struct fanout_http_response *r); /* wipes the body */

/* The invocation's deadline (fanout_credentials_set_deadline): ms left
 * before it, less the margin kept for the engine to report. */
int64_t cred_left_ms(void);
/* The same without the margin (INT64_MAX with no deadline), as the
 * signed-call path (client.c) takes it. */
int64_t cred_remaining_ms(void);
/* A request's time limit: `wanted`, cut to what is left (at least 1). */
int64_t cred_timeout_ms(int64_t wanted);
void cred_sleep_ms(unsigned ms);
/* An unsigned credentials request (the container agent, the SSO portal),
 * sent again after a throttling or transient answer while the policy has
 * attempts and the deadline time for the backoff (fanout_retry_delay_ms,
 * the one backoff). *resp is the last answer (200, or what stopped it; the
 * caller cleans it up with cred_response_clean_up), *attempts how many
 * were sent. */
void cred_get_retried(const struct fanout_http_request *req,
                      const struct fanout_retry_policy *policy,
                      struct fanout_http_response *resp, unsigned *attempts);
/* The "message" (or "Message") of a JSON error body, made safe by
 * cred_server_text with `secret` (may be NULL) scrubbed; "" when none. */
void cred_json_message(const struct fanout_http_response *resp, const char *secret,
                       char *out, size_t out_len);

#endif
