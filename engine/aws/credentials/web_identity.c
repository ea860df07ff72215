/* The web identity provider: a token file (AWS_WEB_IDENTITY_TOKEN_FILE or
 * the profile's web_identity_token_file) exchanged for a role's
 * credentials with AssumeRoleWithWebIdentity. */
#include "aws/credentials/provider.h"

#include <stdlib.h>
#include <string.h>

#define LOG_SCOPE "credentials"

#define WEB_TOKEN_MAX (64 * 1024)

/* AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN / AWS_ROLE_SESSION_NAME (each
 * before its profile key web_identity_token_file / role_arn /
 * role_session_name, unless `use_env` is 0: a source profile), then STS
 * AssumeRoleWithWebIdentity, unsigned. */
static int s_fetch(const struct cred_scope *scope, struct fanout_credentials *out,
                   char *err, size_t err_len)
{
    const char *profile = scope->profile;
    int use_env = scope->use_env;
    char *file = NULL, *role = NULL, *session = NULL;
    const char *v;
    if (use_env && (v = cred_env("AWS_WEB_IDENTITY_TOKEN_FILE")) != NULL)
        file = strdup(v);
    else
        file = cred_pv(profile, "web_identity_token_file");
    if (!file || !*file) {
        free(file);
        return CRED_NOT_FOUND;
    }
    if (use_env && (v = cred_env("AWS_ROLE_ARN")) != NULL)
        role = strdup(v);
    else
        role = cred_pv(profile, "role_arn");
    if (use_env && (v = cred_env("AWS_ROLE_SESSION_NAME")) != NULL)
        session = strdup(v);
    else
        session = cred_pv(profile, "role_session_name");
    int rc = CRED_ERROR;
    char *token = NULL;
    if (!role || !*role) {
        cred_set_err(
            err, err_len,
            "web identity: a token file is set (%.200s) but no role: set AWS_ROLE_ARN "
            "or role_arn in profile \"%s\"",
            file, profile);
        goto done;
    }
    size_t n = 0;
    token =
        cred_slurp(file, WEB_TOKEN_MAX, "the web identity token file", &n, err, err_len);
    if (!token)
        goto done;
    while (n > 0 && strchr("\r\n \t", token[n - 1]))
        token[--n] = 0;
    if (n == 0) {
        cred_set_err(err, err_len, "web identity token file %.200s is empty", file);
        goto done;
    }
    struct cred_sts_call c = {.role_arn = role,
                              .session_name = session && *session ? session : NULL,
                              .web_token = token,
                              .region_fallback = 1};
    rc = cred_sts_call(&c, out, err, err_len) ? CRED_ERROR : CRED_FOUND;
done:
    cred_free_secret(token);
    free(file);
    free(role);
    free(session);
    return rc;
}

const struct cred_provider cred_web_identity_provider = {"web identity", s_fetch};
