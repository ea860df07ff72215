/* The container provider: ECS task roles (AWS_CONTAINER_CREDENTIALS_
 * RELATIVE_URI) and EKS Pod Identity or local agents (..._FULL_URI). */
#include "aws/credentials/provider.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

#define LOG_SCOPE "credentials"

#define CONTAINER_HOST           "http://169.254.170.2"
#define CONTAINER_TIMEOUT_MS     5000
#define CONTAINER_CONNECT_MS     1000
#define CONTAINER_TOKEN_FILE_MAX 16384

/* http is allowed only to loopback and the container agents' link-local
 * addresses; https anywhere. `host` is the URL's host (brackets removed). */
int cred_container_host_allowed(const char *host)
{
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1) {
        uint32_t h = ntohl(a4.s_addr);
        return (h >> 24) == 127 || h == 0xa9feaa02u /* 169.254.170.2 */ ||
               h == 0xa9feaa17u /* 169.254.170.23 */;
    }
    struct in6_addr a6, eks;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        inet_pton(AF_INET6, "fd00:ec2::23", &eks);
        return IN6_IS_ADDR_LOOPBACK(&a6) || memcmp(&a6, &eks, sizeof a6) == 0;
    }
    return 0;
}

/* Check AWS_CONTAINER_CREDENTIALS_FULL_URI; `shown` gets scheme://host for
 * messages (the path can carry an id: left out). */
int cred_container_check_url(const char *url, char *shown, size_t shown_len, char *err,
                             size_t err_len)
{
    int https = strncasecmp(url, "https://", 8) == 0;
    if (!https && strncasecmp(url, "http://", 7) != 0) {
        cred_set_err(err, err_len,
                     "AWS_CONTAINER_CREDENTIALS_FULL_URI must be an http(s) URL");
        return -1;
    }
    const char *auth = url + (https ? 8 : 7);
    size_t alen = strcspn(auth, "/?#");
    if (memchr(auth, '@', alen) || alen == 0 || alen > 255) {
        cred_set_err(
            err, err_len,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI has no usable host (user info is not "
            "allowed)");
        return -1;
    }
    char host[256];
    if (auth[0] == '[') {
        const char *close = memchr(auth, ']', alen);
        if (!close) {
            cred_set_err(err, err_len, "AWS_CONTAINER_CREDENTIALS_FULL_URI: bad IPv6 host");
            return -1;
        }
        size_t hl = (size_t)(close - auth - 1);
        memcpy(host, auth + 1, hl);
        host[hl] = 0;
    } else {
        size_t hl = strcspn(auth, ":/?#");
        if (hl > alen)
            hl = alen;
        memcpy(host, auth, hl);
        host[hl] = 0;
    }
    snprintf(shown, shown_len, "%s://%.*s", https ? "https" : "http", (int)alen, auth);
    if (!https && !cred_container_host_allowed(host)) {
        cred_set_err(
            err, err_len,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI %s refused: http is allowed only to a "
            "loopback address, 169.254.170.2, 169.254.170.23 or [fd00:ec2::23]; use "
            "https for any other host",
            shown);
        return -1;
    }
    return 0;
}

/* The Authorization value: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read on
 * every fetch: EKS rotates it) wins over AWS_CONTAINER_AUTHORIZATION_TOKEN.
 * Returns a malloc'd string, NULL with *none set when there is none, or
 * NULL with err. */
static char *s_container_token(int *none, char *err, size_t err_len)
{
    *none = 0;
    const char *file = cred_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    char *tok = NULL;
    if (file) {
        FILE *f = fopen(file, "re");
        if (!f) {
            cred_set_err(err, err_len,
                         "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s", file,
                         strerror(errno));
            return NULL;
        }
        tok = calloc(1, CONTAINER_TOKEN_FILE_MAX + 1);
        size_t n = tok ? fread(tok, 1, CONTAINER_TOKEN_FILE_MAX + 1, f) : 0;
        int bad = tok && (ferror(f) || n > CONTAINER_TOKEN_FILE_MAX);
        fclose(f);
        if (!tok || bad) {
            cred_free_secret(tok);
            cred_set_err(err, err_len,
                         "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s", file,
                         tok ? "unreadable or larger than 16 KiB" : "out of memory");
            return NULL;
        }
        tok[n] = 0;
        /* A trailing newline is an editor's, not the token's. */
        while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ' ||
                         tok[n - 1] == '\t'))
            tok[--n] = 0;
    } else {
        const char *v = cred_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
        if (!v) {
            *none = 1;
            return NULL;
        }
        tok = strdup(v);
        if (!tok) {
            cred_set_err(err, err_len, "out of memory");
            return NULL;
        }
    }
    if (strpbrk(tok, "\r\n")) {
        cred_free_secret(tok);
        cred_set_err(err, err_len,
                     "the container authorization token (%s) contains a line break",
                     file ? "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
                          : "AWS_CONTAINER_AUTHORIZATION_TOKEN");
        return NULL;
    }
    return tok;
}

int cred_container_parse(const uint8_t *body, size_t len, const char *shown,
                         struct fanout_credentials *out, char *err, size_t err_len)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)body, len, 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        cred_set_err(err, err_len,
                     "container credentials from %s: the reply is not a JSON object",
                     shown);
        return -1;
    }
    const char *id = json_string_value(json_object_get(root, "AccessKeyId"));
    const char *secret = json_string_value(json_object_get(root, "SecretAccessKey"));
    const char *token = json_string_value(json_object_get(root, "Token"));
    json_t *jexp = json_object_get(root, "Expiration");
    const char *exp = json_string_value(jexp);
    int rc = -1;
    if (!id || !*id || !secret || !*secret) {
        cred_set_err(err, err_len,
                     "container credentials from %s: the reply lacks AccessKeyId or "
                     "SecretAccessKey",
                     shown);
    } else if (cred_expiration_not_string(jexp)) {
        /* a number or an object is no "never expires": such credentials
         * would be used past their end */
        cred_set_err(err, err_len,
                     "container credentials from %s: Expiration is %s, not a string (an "
                     "ISO 8601 time)",
                     shown, fanout_json_type_name(jexp));
    } else if (cred_fill(out, "container", id, secret, token, err, err_len) == 0) {
        if (exp && cred_parse_iso8601(exp, &out->expires_ms)) {
            cred_wipe(out, sizeof *out);
            cred_set_err(
                err, err_len,
                "container credentials from %s: Expiration \"%.40s\" is not ISO 8601",
                shown, exp);
        } else {
            rc = 0;
        }
    }
    json_decref(root);
    return rc;
}

/* AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (ECS) against 169.254.170.2, or
 * AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity, local agents). */
static int s_fetch(const struct cred_scope *scope, struct fanout_credentials *out,
                   char *err, size_t err_len)
{
    (void)scope;
    const char *rel = cred_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = cred_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!rel && !full)
        return CRED_NOT_FOUND;
    char url[2048], shown[300];
    if (rel) {
        const char *host = CONTAINER_HOST;
#ifdef FANOUT_TESTING
        /* tests never leave loopback: they point the ECS host elsewhere */
        if (getenv("FANOUT_TEST_CONTAINER_HOST"))
            host = getenv("FANOUT_TEST_CONTAINER_HOST");
#endif
        snprintf(url, sizeof url, "%s%s%s", host, rel[0] == '/' ? "" : "/", rel);
        snprintf(shown, sizeof shown, "%s", host);
    } else {
        if (cred_container_check_url(full, shown, sizeof shown, err, err_len))
            return CRED_ERROR;
        if (strlen(full) >= sizeof url) {
            cred_set_err(err, err_len, "AWS_CONTAINER_CREDENTIALS_FULL_URI is too long");
            return CRED_ERROR;
        }
        snprintf(url, sizeof url, "%s", full);
    }
    struct fanout_retry_policy policy;
    if (fanout_retry_policy_from_env(&policy, err, err_len))
        return CRED_ERROR;
    int none;
    char *token = s_container_token(&none, err, err_len);
    if (!token && !none)
        return CRED_ERROR;

    char h_accept[] = "Accept", v_accept[] = "application/json", h_auth[] = "Authorization";
    struct fanout_http_header headers[2] = {{h_accept, v_accept}, {h_auth, token}};
    struct fanout_http_request req = {
        .method = "GET",
        .url = url,
        .headers = headers,
        .header_count = token ? 2 : 1,
        .timeout_ms = cred_timeout_ms(policy.request_timeout_ms < CONTAINER_TIMEOUT_MS
                                          ? policy.request_timeout_ms
                                          : CONTAINER_TIMEOUT_MS),
        .connect_timeout_ms = CONTAINER_CONNECT_MS,
    };
    struct fanout_http_response resp;
    unsigned attempts;
    cred_get_retried(&req, &policy, &resp, &attempts);
    int rc = CRED_ERROR;
    if (resp.status == 200) {
        rc = cred_container_parse(resp.body.bytes, resp.body.len, shown, out, err, err_len)
                 ? CRED_ERROR
                 : CRED_FOUND;
    } else if (resp.status) {
        /* The agents answer {"code","message"} (EKS) or text (ECS). */
        char said[SERVER_MESSAGE_MAX + 8], tries[48] = "";
        cred_json_message(&resp, token, said, sizeof said);
        if (attempts > 1)
            snprintf(tries, sizeof tries, " after %u attempts", attempts);
        cred_set_err(err, err_len, "container credentials from %s%s: HTTP %ld%s%s", shown,
                     tries, resp.status, *said ? ": " : "", said);
    } else {
        cred_set_err(err, err_len,
                     "container credentials from %s: no response after %u attempt%s: %s",
                     shown, attempts, attempts == 1 ? "" : "s", resp.error_text);
    }
    cred_response_clean_up(&resp);
    cred_free_secret(token);
    return rc;
}

const struct cred_provider cred_container_provider = {"container", s_fetch};
