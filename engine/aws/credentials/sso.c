/* The IAM Identity Center (SSO) provider: the token `aws sso login`
 * cached, exchanged with the portal's GetRoleCredentials. */
#include "aws/credentials/provider.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/endpoint.h"

#define LOG_SCOPE "credentials"

#define SSO_CACHE_MAX (1024 * 1024)

/* ---- IAM Identity Center (SSO) ---- */

static void s_sha1_hex(const char *text, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdl = 0;
    EVP_Digest(text, strlen(text), md, &mdl, EVP_sha1(), NULL);
    for (unsigned i = 0; i < mdl && i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[40] = 0;
}

/* The access token `aws sso login` cached for `key` (the sso-session name,
 * or the legacy profile's start URL) in ~/.aws/sso/cache/<sha1>.json. Not
 * refreshed here: an expired token is an error asking for `aws sso login`. */
static char *s_sso_token(const char *profile, const char *key, char *err, size_t err_len)
{
    const char *home = cred_env("HOME");
    if (!home) {
        cred_set_err(err, err_len,
                     "SSO profile \"%s\": HOME is not set (the token cache is "
                     "~/.aws/sso/cache)",
                     profile);
        return NULL;
    }
    char sha[41], path[1024];
    s_sha1_hex(key, sha);
    snprintf(path, sizeof path, "%s/.aws/sso/cache/%s.json", home, sha);
    char rerr[ERR_LEN];
    size_t n = 0;
    char *text =
        cred_slurp(path, SSO_CACHE_MAX, "the SSO token cache", &n, rerr, sizeof rerr);
    if (!text) {
        cred_set_err(
            err, err_len,
            "SSO profile \"%s\": no cached token (%s); run `aws sso login --profile "
            "%s`",
            profile, rerr, profile);
        return NULL;
    }
    json_t *j = json_loadb(text, n, 0, NULL);
    cred_free_secret(text);
    const char *tok = json_string_value(json_object_get(j, "accessToken"));
    const char *exp = json_string_value(json_object_get(j, "expiresAt"));
    char *res = NULL;
    int64_t exp_ms = 0;
    if (!tok || !*tok || !exp) {
        cred_set_err(
            err, err_len,
            "SSO profile \"%s\": the token cache %s lacks accessToken or expiresAt; "
            "run `aws sso login --profile %s`",
            profile, path, profile);
    } else if (cred_parse_iso8601(exp, &exp_ms)) {
        cred_set_err(err, err_len,
                     "SSO profile \"%s\": expiresAt \"%.40s\" in %s is not ISO 8601",
                     profile, exp, path);
    } else if (exp_ms <= cred_now_ms()) {
        cred_set_err(
            err, err_len,
            "SSO profile \"%s\": the SSO session expired at %.40s; run `aws sso login "
            "--profile %s`",
            profile, exp, profile);
    } else if (strpbrk(tok, "\r\n")) {
        cred_set_err(err, err_len, "SSO profile \"%s\": the cached token has a line break",
                     profile);
    } else {
        res = strdup(tok);
        if (!res)
            cred_set_err(err, err_len, "out of memory");
    }
    if (tok)
        cred_wipe((void *)tok, strlen(tok));
    json_decref(j);
    return res;
}

static int s_sso_parse(const struct fanout_http_response *resp, const char *profile,
                       struct fanout_credentials *out, char *err, size_t err_len)
{
    json_t *j = json_loadb(resp->body.ptr ? (const char *)resp->body.ptr : "",
                           resp->body.len, 0, NULL);
    json_t *rc_obj = json_object_get(j, "roleCredentials");
    const char *id = json_string_value(json_object_get(rc_obj, "accessKeyId"));
    const char *secret = json_string_value(json_object_get(rc_obj, "secretAccessKey"));
    const char *token = json_string_value(json_object_get(rc_obj, "sessionToken"));
    json_t *exp = json_object_get(rc_obj, "expiration");
    int rc = -1;
    if (!id || !*id || !secret || !*secret || !token || !*token || !json_is_integer(exp) ||
        json_integer_value(exp) <= 0) {
        cred_set_err(err, err_len,
                     "SSO profile \"%s\": GetRoleCredentials' reply lacks roleCredentials "
                     "(accessKeyId, secretAccessKey, sessionToken, expiration in ms)",
                     profile);
    } else if (cred_fill(out, "sso", id, secret, token, err, err_len) == 0) {
        out->expires_ms = (int64_t)json_integer_value(exp);
        rc = 0;
    }
    if (j && resp->body.ptr)
        json_object_clear(j);
    json_decref(j);
    return rc;
}

/* A profile with sso_account_id / sso_role_name: its start URL and region
 * from the profile (legacy) or its sso-session section, the token from the
 * cache, then the portal's GetRoleCredentials. */
static int s_fetch(const struct cred_scope *scope, struct fanout_credentials *out,
                   char *err, size_t err_len)
{
    const char *profile = scope->profile;
    char *account = cred_pv(profile, "sso_account_id");
    char *role = cred_pv(profile, "sso_role_name");
    if (!account && !role)
        return CRED_NOT_FOUND;
    char *session = cred_pv(profile, "sso_session");
    char *start = cred_pv(profile, "sso_start_url");
    char *region = cred_pv(profile, "sso_region");
    char *token = NULL;
    int rc = CRED_ERROR;
    if (session) {
        char *s_start = fanout_aws_sso_session_value(session, "sso_start_url");
        char *s_region = fanout_aws_sso_session_value(session, "sso_region");
        if (!s_start) {
            cred_set_err(err, err_len,
                         "The specified sso-session does not exist: \"%.100s\" "
                         "(profile \"%s\"; no [sso-session %.100s] in %s)",
                         session, profile, session, cred_file_name(0));
            free(s_region);
            goto done;
        }
        const char *names[2] = {"sso_start_url", "sso_region"};
        char **mine[2] = {&start, &region};
        char *theirs[2] = {s_start, s_region};
        for (int i = 0; i < 2; i++) {
            if (theirs[i] && *theirs[i] && *mine[i] && strcmp(*mine[i], theirs[i]) != 0) {
                cred_set_err(
                    err, err_len,
                    "The value for %s is inconsistent between profile (%.200s) and "
                    "sso-session (%.200s) (profile \"%s\")",
                    names[i], *mine[i], theirs[i], profile);
                free(s_start);
                free(s_region);
                goto done;
            }
            if (theirs[i] && *theirs[i] && !*mine[i]) {
                *mine[i] = theirs[i];
                theirs[i] = NULL;
            }
        }
        free(theirs[0]);
        free(theirs[1]);
    }
    char missing[128] = "";
    const char *req[4] = {"sso_role_name", "sso_account_id", "sso_start_url", "sso_region"};
    const char *val[4] = {role, account, start, region};
    for (int i = 0; i < 4; i++)
        if (!val[i] || !*val[i])
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%s",
                     missing[0] ? ", " : "", req[i]);
    if (missing[0]) {
        cred_set_err(err, err_len,
                     "The profile \"%s\" is configured to use SSO but is missing required "
                     "configuration: %s",
                     profile, missing);
        goto done;
    }
    token = s_sso_token(profile, session ? session : start, err, err_len);
    if (!token)
        goto done;
    char base[1024];
    if (fanout_aws_endpoint_url("sso", region, NULL, base, sizeof base, err, err_len))
        goto done;
    struct fanout_buf query = {0}, url = {0};
    if (cred_form_append(&query, "account_id", account) ||
        cred_form_append(&query, "role_name", role) || fanout_buf_append(&query, "", 0) ||
        fanout_buf_appendf(&url, "%s/federation/credentials?%s", base,
                           (const char *)query.ptr) ||
        fanout_buf_append(&url, "", 0)) {
        fanout_buf_free(&query);
        fanout_buf_free(&url);
        cred_set_err(err, err_len, "out of memory");
        goto done;
    }
    fanout_buf_free(&query);
    struct fanout_retry_policy policy;
    if (fanout_retry_policy_from_env(&policy, err, err_len)) {
        fanout_buf_free(&url);
        goto done;
    }
    char h_tok[] = "x-amz-sso_bearer_token", h_acc[] = "Accept",
         v_acc[] = "application/json";
    struct fanout_http_header headers[2] = {{h_tok, token}, {h_acc, v_acc}};
    struct fanout_http_request hreq = {
        .method = "GET",
        .url = (const char *)url.ptr,
        .headers = headers,
        .header_count = 2,
        .timeout_ms = cred_timeout_ms(policy.request_timeout_ms),
    };
    struct fanout_http_response resp;
    unsigned attempts;
    cred_get_retried(&hreq, &policy, &resp, &attempts);
    if (resp.status == 200) {
        rc = s_sso_parse(&resp, profile, out, err, err_len) ? CRED_ERROR : CRED_FOUND;
    } else if (resp.status) {
        char said[SERVER_MESSAGE_MAX + 8];
        cred_json_message(&resp, token, said, sizeof said);
        cred_set_err(err, err_len,
                     "SSO profile \"%s\": GetRoleCredentials (account %.20s, role %.64s) "
                     "failed: HTTP %ld%s%s%s",
                     profile, account, role, resp.status, said[0] ? ": " : "", said,
                     resp.status == 401 || resp.status == 403
                         ? "; the SSO session may have ended: run `aws sso login`"
                         : "");
    } else {
        cred_set_err(err, err_len,
                     "SSO profile \"%s\": GetRoleCredentials: no response after %u "
                     "attempt%s: %s",
                     profile, attempts, attempts == 1 ? "" : "s", resp.error_text);
    }
    cred_response_clean_up(&resp);
    fanout_buf_free(&url);
done:
    cred_free_secret(token);
    free(account);
    free(role);
    free(session);
    free(start);
    free(region);
    return rc;
}

const struct cred_provider cred_sso_provider = {"SSO", s_fetch};
