/* The environment provider: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN (what Lambda sets for the function's role). */
#include "aws/credentials/provider.h"

#include <string.h>

#define LOG_SCOPE "credentials"

/* AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN: what
 * Lambda sets for the function's role. */
static int s_fetch(const struct cred_scope *scope, struct fanout_credentials *out,
                   char *err, size_t err_len)
{
    (void)scope;
    const char *id = cred_env("AWS_ACCESS_KEY_ID");
    const char *secret = cred_env("AWS_SECRET_ACCESS_KEY");
    const char *token = cred_env("AWS_SESSION_TOKEN");
    if (!token)
        token = cred_env("AWS_SECURITY_TOKEN"); /* the older name, as botocore reads it */
    if (!id && !secret)
        return CRED_NOT_FOUND;
    if (!id || !secret) {
        cred_set_err(
            err, err_len,
            "environment credentials are half set: %s is set but %s is not (set both, "
            "or neither)",
            id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
            id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return CRED_ERROR;
    }
    if (cred_fill(out, "environment", id, secret, token, err, err_len))
        return CRED_ERROR;
    const char *exp = cred_env("AWS_CREDENTIAL_EXPIRATION");
    if (exp && cred_parse_iso8601(exp, &out->expires_ms)) {
        cred_wipe(out, sizeof *out);
        cred_set_err(err, err_len,
                     "AWS_CREDENTIAL_EXPIRATION is not an ISO 8601 time (\"%.40s\")", exp);
        return CRED_ERROR;
    }
    return CRED_FOUND;
}

const struct cred_provider cred_env_provider = {"environment", s_fetch};
