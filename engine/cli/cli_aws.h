/* The management commands' AWS calls (deploy, destroy, hook, unhook, pause,
 * resume): one request through fanout_aws_call (retries, credentials,
 * SigV4), the answer parsed, a denied call explained; the common flags and
 * the waits. */
#ifndef FANOUT_CLI_AWS_H
#define FANOUT_CLI_AWS_H

#include <jansson.h>
#include <stddef.h>

struct cli_aws_reply {
    long status;  /* HTTP status, 0 when no answer */
    json_t *json; /* JSON answers (NULL for XML / empty bodies) */
    char *body;   /* the raw body, NUL-terminated (XML answers) */
    size_t len;
    char code[128];    /* error code ("AccessDenied", "ResourceNotFoundException"), "" on
                          success */
    char message[512]; /* the service's message */
};
void cli_aws_reply_free(struct cli_aws_reply *r);

/* Where a call goes when not to the service in the commands' region
 * (register's lookups: the destination's region, OpenSearch's
 * configuration host). NULL members: the commands' defaults. */
struct cli_aws_at {
    const char *region;   /* signed for and sent to this region as given */
    const char *endpoint; /* this URL instead of the service's endpoint */
};

/* JSON 1.0/1.1 (DynamoDB, Kinesis): POST / with X-Amz-Target; `body` stolen.
 * 0 on 2xx (a JSON object, or empty, in r->json), else -1 (r->code/message). */
int cli_aws_json(const char *service, const char *json_version, const char *target,
                 json_t *body, struct cli_aws_reply *r);
/* REST-JSON (Lambda): `path` already percent-encoded, `query` without '?' or
 * NULL, `body` stolen (NULL: no body). */
int cli_aws_rest(const char *service, const char *method, const char *path,
                 const char *query, json_t *body, struct cli_aws_reply *r);
/* Query (IAM, STS): Action, Version and NULL-terminated name/value pairs
 * (values form-encoded here); the XML answer in r->body. IAM goes to its
 * partition's global endpoint. */
int cli_aws_query(const char *service, const char *action, const char *version,
                  const char *const *params, struct cli_aws_reply *r);
/* The same, sent where `at` says (NULL: as above). */
int cli_aws_json_at(const struct cli_aws_at *at, const char *service,
                    const char *json_version, const char *target, json_t *body,
                    struct cli_aws_reply *r);
int cli_aws_rest_at(const struct cli_aws_at *at, const char *service, const char *method,
                    const char *path, const char *query, json_t *body,
                    struct cli_aws_reply *r);
int cli_aws_query_at(const struct cli_aws_at *at, const char *service, const char *action,
                     const char *version, const char *const *params,
                     struct cli_aws_reply *r);

/* `s` percent-encoded into b (the unreserved characters as they are): a
 * form value or a path segment. 0, or -1 when out of memory. */
struct fanout_sbuf;
int cli_aws_encode(struct fanout_sbuf *b, const char *s);

/* The text of the first element `name` of an XML answer (trimmed,
 * entities decoded): malloc'd, NULL when absent or out of memory. */
char *cli_aws_xml_text(const char *body, size_t len, const char *name);

/* A failed call, printed on stderr: "fanout <cmd>: <what>: <code>: <message>";
 * for AccessDenied/AccessDeniedException/UnauthorizedOperation the line
 * "fanout <cmd>: <what>: access denied: missing permission <action> on <resource>"
 * with action/resource parsed from the message (fallback: `action`,
 * `resource`), then the service's message. Returns CLI_FAILED. */
int cli_aws_fail(const char *cmd, const char *what, const char *action,
                 const char *resource, const struct cli_aws_reply *r);
/* 1 when `code` is a denied call's. */
int cli_aws_is_denied(const char *code);
/* "... is not authorized to perform: ACTION on resource: RESOURCE ...":
 * 1 with the action (and the resource, "" when the message names none), 0
 * when the message does not say. */
int cli_aws_parse_denied(const char *message, char *action, size_t action_len,
                         char *resource, size_t resource_len);

/* The caller's account and partition (STS GetCallerIdentity, cached). 0, or
 * -1 with err. */
int cli_aws_identity(char *account, size_t account_len, char *partition,
                     size_t partition_len, char *err, size_t err_len);
/* The region the commands use (--region, else the AWS layer's default);
 * NULL before cli_aws_setup succeeded. */
const char *cli_aws_region(void);

/* Common flags: --region, --profile, --endpoint-url (all services),
 * --no-verify-ssl, --debug; applied (cli_aws_setup) before the first call. */
struct cli_aws_flags {
    const char *region, *profile, *endpoint_url;
    int no_verify_ssl, debug;
};
/* Is argv[*i] the flag `name` ("--name VALUE" or "--name=VALUE")? 1 with
 * *value (and *i on the value's argument), 0 when it is another, -1 when
 * the value is missing (err). */
int cli_aws_value_flag(int argc, char **argv, int *i, const char *name, const char **value,
                       char *err, size_t err_len);
/* One of the common flags at argv[*i]: 1 taken (*i advanced past a value),
 * 0 not one of them, -1 with err (a value missing). */
int cli_aws_common_flag(struct cli_aws_flags *f, int argc, char **argv, int *i, char *err,
                        size_t err_len);
/* Apply the flags, and find the region. 0, or -1 with err (a flag's value,
 * no region). */
int cli_aws_setup(const char *cmd, const struct cli_aws_flags *f, char *err,
                  size_t err_len);
/* The common flags' lines for a command's --help. */
#define CLI_AWS_FLAGS_HELP                                                                 \
    "  --region REGION         the region (default: $AWS_REGION, the profile's)\n"         \
    "  --profile NAME          the profile of the shared AWS config files\n"               \
    "  --endpoint-url URL      send every AWS request of the command there (an\n"          \
    "                          emulator)\n"                                                \
    "  --no-verify-ssl         do not verify TLS certificates (warns; unsafe)\n"           \
    "  --debug                 log at debug level (AWS requests, retries)\n"

/* Poll `probe` until it returns 1 (done), -1 (failed: it printed why) or the
 * wait runs out (FANOUT_DEPLOY_WAIT_SECONDS, default 300): 0.5 s doubling to
 * 5 s, the `progress` the probe fills printed on stderr each poll ("fanout
 * <cmd>: waiting for <what>: <progress>..."). Returns 0 when done, -1
 * otherwise (printed). */
int cli_aws_wait(const char *cmd, const char *what,
                 int (*probe)(void *ctx, char *progress, size_t progress_len), void *ctx);
/* cli_aws_wait for at most `limit_s` seconds (and never longer than
 * FANOUT_DEPLOY_WAIT_SECONDS): a retry window, e.g. IAM role propagation. */
int cli_aws_wait_up_to(const char *cmd, const char *what, long limit_s,
                       int (*probe)(void *ctx, char *progress, size_t progress_len),
                       void *ctx);

#endif
