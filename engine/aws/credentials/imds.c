/* The EC2 instance metadata provider (IMDSv2): the instance profile's
 * credentials. */
#include "aws/credentials/provider.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

#define LOG_SCOPE "credentials"

#define IMDS_HOST      "http://169.254.169.254"
#define IMDS_TOKEN_TTL "21600"
#define IMDS_TIMEOUT_S 1
#define IMDS_BODY_MAX  (64 * 1024)

/* ---- EC2 instance metadata (IMDSv2) ---- */

static void s_imds_get(const char *url, const char *token, int64_t timeout_ms,
                       struct fanout_http_response *resp)
{
    char h_tok[] = "X-aws-ec2-metadata-token";
    struct fanout_http_header headers[1] = {{h_tok, (char *)token}};
    struct fanout_http_request req = {
        .method = "GET",
        .url = url,
        .headers = headers,
        .header_count = token ? 1 : 0,
        .timeout_ms = cred_timeout_ms(timeout_ms),
        .connect_timeout_ms = timeout_ms,
    };
    cred_perform(&req, resp);
}

/* The instance profile's credentials: PUT /latest/api/token, then
 * /latest/meta-data/iam/security-credentials/ and /<role>. Unreachable, or
 * no role attached: CRED_NOT_FOUND (it is last in the chain, and must not slow
 * down a machine without it: 1 s per request, 1 attempt, as botocore's
 * AWS_METADATA_SERVICE_TIMEOUT / AWS_METADATA_SERVICE_NUM_ATTEMPTS). */
static int s_fetch(const struct cred_scope *scope, struct fanout_credentials *out,
                   char *err, size_t err_len)
{
    (void)scope;
    const char *off = cred_env("AWS_EC2_METADATA_DISABLED");
    if (off && strcasecmp(off, "true") == 0)
        return CRED_NOT_FOUND;
    long timeout_s, attempts;
    if (cred_env_int("AWS_METADATA_SERVICE_TIMEOUT", IMDS_TIMEOUT_S, 1, 60, &timeout_s, err,
                     err_len) ||
        cred_env_int("AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1, 1, 10, &attempts, err,
                     err_len))
        return CRED_ERROR;
    const char *host = cred_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (!host)
        host = IMDS_HOST;
    size_t hl = strlen(host);
    while (hl > 0 && host[hl - 1] == '/')
        hl--;
    if (hl > 512 ||
        (strncasecmp(host, "http://", 7) != 0 && strncasecmp(host, "https://", 8) != 0)) {
        cred_set_err(
            err, err_len,
            "AWS_EC2_METADATA_SERVICE_ENDPOINT must be an http(s) URL of at most 512 "
            "bytes");
        return CRED_ERROR;
    }
    int64_t tmo = (int64_t)timeout_s * 1000;
    char url[1200];
    char *token = NULL;
    struct fanout_http_response resp;
    int rc = CRED_NOT_FOUND;
    char role[256] = "";
    for (long attempt = 1; attempt <= attempts; attempt++) {
        snprintf(url, sizeof url, "%.*s/latest/api/token", (int)hl, host);
        char h_ttl[] = "X-aws-ec2-metadata-token-ttl-seconds", v_ttl[] = IMDS_TOKEN_TTL;
        struct fanout_http_header th[1] = {{h_ttl, v_ttl}};
        struct fanout_http_request treq = {
            .method = "PUT",
            .url = url,
            .headers = th,
            .header_count = 1,
            .timeout_ms = cred_timeout_ms(tmo),
            .connect_timeout_ms = tmo,
        };
        cred_perform(&treq, &resp);
        if (resp.status == 200 && resp.body.len > 0 && resp.body.len < 4096 &&
            !memchr(resp.body.ptr, '\n', resp.body.len) &&
            !memchr(resp.body.ptr, '\r', resp.body.len)) {
            free(token);
            token = strndup((const char *)resp.body.ptr, resp.body.len);
        } else if (resp.status == 0 || resp.status >= 500) {
            LOG_DEBUG(LOG_SCOPE, "instance metadata %.*s: %s", (int)hl, host,
                      resp.status ? "server error" : resp.error_text);
            cred_response_clean_up(&resp);
            continue;
        } else if (resp.status != 403 && resp.status != 404 && resp.status != 405) {
            cred_set_err(err, err_len,
                         "instance metadata %.*s: token request answered HTTP %ld", (int)hl,
                         host, resp.status);
            cred_response_clean_up(&resp);
            rc = CRED_ERROR;
            break;
        } /* else IMDSv1: no token */
        cred_response_clean_up(&resp);

        snprintf(url, sizeof url, "%.*s/latest/meta-data/iam/security-credentials/",
                 (int)hl, host);
        s_imds_get(url, token, tmo, &resp);
        if (resp.status == 404) {
            LOG_DEBUG(LOG_SCOPE, "instance metadata %.*s: no role attached", (int)hl, host);
            cred_response_clean_up(&resp);
            break;
        }
        if (resp.status != 200) {
            LOG_DEBUG(LOG_SCOPE, "instance metadata %.*s: role list: HTTP %ld %s", (int)hl,
                      host, resp.status, resp.status ? "" : resp.error_text);
            cred_response_clean_up(&resp);
            continue;
        }
        size_t rl = 0;
        const char *b = resp.body.ptr ? (const char *)resp.body.ptr : "";
        while (rl < resp.body.len && b[rl] != '\n' && b[rl] != '\r')
            rl++;
        if (rl == 0 || rl >= sizeof role || memchr(b, '/', rl) || memchr(b, '?', rl) ||
            memchr(b, '#', rl)) {
            cred_set_err(err, err_len, "instance metadata %.*s: the role name is %s",
                         (int)hl, host, rl == 0 ? "empty" : "not a role name");
            cred_response_clean_up(&resp);
            rc = CRED_ERROR;
            break;
        }
        memcpy(role, b, rl);
        role[rl] = 0;
        cred_response_clean_up(&resp);

        snprintf(url, sizeof url, "%.*s/latest/meta-data/iam/security-credentials/%s",
                 (int)hl, host, role);
        s_imds_get(url, token, tmo, &resp);
        if (resp.status != 200) {
            LOG_DEBUG(LOG_SCOPE, "instance metadata %.*s: credentials of %s: HTTP %ld %s",
                      (int)hl, host, role, resp.status, resp.status ? "" : resp.error_text);
            cred_response_clean_up(&resp);
            continue;
        }
        json_t *j = json_loadb(resp.body.ptr ? (const char *)resp.body.ptr : "",
                               resp.body.len, 0, NULL);
        const char *code = json_string_value(json_object_get(j, "Code"));
        const char *id = json_string_value(json_object_get(j, "AccessKeyId"));
        const char *secret = json_string_value(json_object_get(j, "SecretAccessKey"));
        const char *tok = json_string_value(json_object_get(j, "Token"));
        const char *exp = json_string_value(json_object_get(j, "Expiration"));
        rc = CRED_ERROR;
        if (code && strcmp(code, "Success") != 0) {
            cred_set_err(err, err_len, "instance metadata %.*s: role %s: Code %.64s",
                         (int)hl, host, role, code);
        } else if (!id || !*id || !secret || !*secret || !tok || !*tok || !exp) {
            cred_set_err(err, err_len,
                         "instance metadata %.*s: role %s: the reply lacks AccessKeyId, "
                         "SecretAccessKey, Token or Expiration",
                         (int)hl, host, role);
        } else if (cred_fill(out, "instance-metadata", id, secret, tok, err, err_len) ==
                   0) {
            if (cred_parse_iso8601(exp, &out->expires_ms)) {
                cred_wipe(out, sizeof *out);
                cred_set_err(err, err_len,
                             "instance metadata %.*s: Expiration \"%.40s\" is not ISO 8601",
                             (int)hl, host, exp);
            } else {
                rc = CRED_FOUND;
            }
        }
        if (j)
            json_object_clear(j);
        json_decref(j);
        cred_response_clean_up(&resp);
        break;
    }
    cred_free_secret(token);
    return rc;
}

const struct cred_provider cred_imds_provider = {"instance metadata", s_fetch};
