/* STS: AssumeRole (a target's role, a profile's role) and
 * AssumeRoleWithWebIdentity, and the reading of their replies. */
#include "aws/credentials/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <fanout/xml.h>

#include "aws/client.h"
#include "aws/endpoint.h"
#include "common/log.h"

#define LOG_SCOPE "credentials"

#define DEFAULT_DURATION_S 3600
#define MIN_DURATION_S     900
#define SESSION_NAME_MAX   64
#define STS_VERSION        "2011-06-15"
#define FORM_CONTENT_TYPE  "application/x-www-form-urlencoded; charset=utf-8"

/* ---- STS AssumeRole ----------------------------------------------------- */

/* fanout-<function name or "local">-<pid>, in RoleSessionName's alphabet
 * [\w+=,.@-] and at most 64 characters; the name is cut, not the pid, so
 * sessions of concurrent environments stay apart in CloudTrail. */
static void s_session_name(char out[SESSION_NAME_MAX + 1])
{
    const char *fn = cred_env("AWS_LAMBDA_FUNCTION_NAME");
    if (!fn)
        fn = "local";
    char pid[24];
    snprintf(pid, sizeof pid, "-%ld", (long)getpid());
    int room = SESSION_NAME_MAX - (int)strlen("fanout-") - (int)strlen(pid);
    snprintf(out, SESSION_NAME_MAX + 1, "fanout-%.*s%s", room, fn, pid);
    for (char *p = out; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              strchr("_+=,.@-", c)))
            *p = '-';
    }
}

int cred_sts_parse(const char *xml, size_t n, const char *action, const char *role_arn,
                   struct fanout_credentials *out, char *err, size_t err_len)
{
    const char *result = xml;
    size_t result_len = n;
    struct fanout_xml_elem r, creds;
    char result_name[64];
    snprintf(result_name, sizeof result_name, "%sResult", action);
    if (fanout_xml_find(xml, n, result_name, FANOUT_XML_ANY_PREFIX, &r) && r.closed) {
        result = r.content;
        result_len = r.content_len;
    }
    if (!fanout_xml_find(result, result_len, "Credentials", FANOUT_XML_ANY_PREFIX,
                         &creds) ||
        !creds.closed) {
        cred_set_err(err, err_len, "%s %s: the reply has no Credentials", action, role_arn);
        return -1;
    }
    memset(out, 0, sizeof *out);
    fanout_strlcpy(out->source,
                   strcmp(action, "AssumeRole") == 0 ? "assume-role" : "web-identity",
                   sizeof out->source);
    char exp[64] = "";
    static const char *const s_names[] = {"AccessKeyId", "SecretAccessKey", "SessionToken",
                                          "Expiration"};
    char *dst[] = {out->access_key_id, out->secret_access_key, out->session_token, exp};
    size_t cap[] = {sizeof out->access_key_id, sizeof out->secret_access_key,
                    sizeof out->session_token, sizeof exp};
    for (size_t i = 0; i < 4; i++) {
        long len = fanout_xml_field(creds.content, creds.content_len, s_names[i],
                                    FANOUT_XML_ANY_PREFIX, FANOUT_XML_TRIM, dst[i], cap[i]);
        if (len < 0 || (size_t)len >= cap[i] || !*dst[i]) {
            int too_long = len > 0 && (size_t)len >= cap[i];
            cred_wipe(out, sizeof *out);
            cred_set_err(err, err_len, "%s %s: the reply's Credentials %s %s", action,
                         role_arn, too_long ? "has too long a" : "lack", s_names[i]);
            return -1;
        }
    }
    if (cred_parse_iso8601(exp, &out->expires_ms)) {
        cred_wipe(out, sizeof *out);
        cred_set_err(err, err_len, "%s %s: Expiration \"%.40s\" is not ISO 8601", action,
                     role_arn, exp);
        return -1;
    }
    /* the session the answer names (arn:...:assumed-role/NAME/SESSION,
     * NAME without the role's path) must be of the role asked for: else the
     * answer is another request's, and its credentials another role's */
    char user[512] = "";
    long ul = -1;
    struct fanout_xml_elem au;
    if (fanout_xml_find(result, result_len, "AssumedRoleUser", FANOUT_XML_ANY_PREFIX,
                        &au) &&
        au.closed)
        ul = fanout_xml_field(au.content, au.content_len, "Arn", FANOUT_XML_ANY_PREFIX,
                              FANOUT_XML_TRIM, user, sizeof user);
    if (ul >= 0) {
        const char *name = strrchr(role_arn, '/');
        name = name ? name + 1 : role_arn;
        static const char mark[] = ":assumed-role/";
        const char *at = (size_t)ul < sizeof user ? strstr(user, mark) : NULL;
        size_t nl = strlen(name);
        if (at)
            at += sizeof mark - 1;
        if (!at || strncasecmp(at, name, nl) != 0 || at[nl] != '/') {
            cred_wipe(out, sizeof *out);
            cred_set_err(
                err, err_len,
                "%s %s: the reply's AssumedRoleUser.Arn \"%.200s\" is not a session "
                "of that role (arn:...:assumed-role/%s/...): an answer to another "
                "request, so its credentials are not used",
                action, role_arn, user, name);
            return -1;
        }
    }
    return 0;
}

/* The error of an STS reply: <Error><Code>, <Message>. */
void cred_sts_error(const uint8_t *body, size_t len, const char *const *secrets,
                    size_t secret_count, const char *key_id, char *code, size_t code_len,
                    char *msg, size_t msg_len)
{
    const char *xml = body ? (const char *)body : "";
    size_t n = body ? len : 0;
    struct fanout_xml_elem e;
    *code = *msg = 0;
    if (fanout_xml_find(xml, n, "Error", FANOUT_XML_ANY_PREFIX, &e) && e.closed) {
        xml = e.content;
        n = e.content_len;
    }
    char raw_code[128];
    long cl = fanout_xml_field(xml, n, "Code", FANOUT_XML_ANY_PREFIX, FANOUT_XML_TRIM,
                               raw_code, sizeof raw_code);
    if (cl >= 0 && (size_t)cl < sizeof raw_code)
        cred_server_text(raw_code, (size_t)cl, secrets, secret_count, key_id, code,
                         code_len);
    if (fanout_xml_find(xml, n, "Message", FANOUT_XML_ANY_PREFIX, &e) && e.closed) {
        char *text = malloc(e.content_len + 1);
        if (text) {
            size_t tl = fanout_xml_text(e.content, e.content_len, FANOUT_XML_TRIM, text,
                                        e.content_len + 1);
            cred_server_text(text, tl, secrets, secret_count, key_id, msg, msg_len);
            cred_wipe(text, tl);
            free(text);
        }
    }
}

/* What went wrong with an STS call that got no 2xx answer, into err: the
 * service's code and message (scrubbed of the secrets the request used),
 * or the transport's words. */
static void s_sts_failure(const struct cred_sts_call *c, const char *action,
                          const struct fanout_aws_response *resp, const char *host,
                          char *err, size_t err_len)
{
    const char *role_arn = c->role_arn;
    char tries[48] = "";
    if (resp->attempts > 1)
        snprintf(tries, sizeof tries, " after %u attempts", (unsigned)resp->attempts);
    if (resp->status) {
        /* the secrets of the request: the base credentials the call used
         * (the cached ones when not given) and the web identity token */
        struct fanout_credentials base;
        char ignored[ERR_LEN];
        memset(&base, 0, sizeof base);
        if (c->base)
            base = *c->base;
        else if (!c->web_token)
            (void)cred_base_get(0, &base, ignored, sizeof ignored);
        const char *secrets[3] = {base.secret_access_key, base.session_token,
                                  c->web_token ? c->web_token : ""};
        char code[128] = "", msg[SERVER_MESSAGE_MAX + 8] = "";
        cred_sts_error(resp->body, resp->body_len, secrets, 3, base.access_key_id, code,
                       sizeof code, msg, sizeof msg);
        cred_wipe(&base, sizeof base);
        cred_set_err(err, err_len, "%s %s failed%s: %s%s%s (HTTP %ld)", action, role_arn,
                     tries, code[0] ? code : "error", msg[0] ? ": " : "", msg,
                     resp->status);
    } else if (strcmp(resp->error_code, "CredentialsError") == 0) {
        cred_set_err(err, err_len, "%s %s: no base credentials: %s", action, role_arn,
                     resp->error_message);
    } else {
        const char *said = fanout_aws_response_transport_error(resp);
        cred_set_err(err, err_len, "%s %s failed%s: no response from %s: %s", action,
                     role_arn, tries, host, said ? said : resp->error_message);
    }
}

/* One STS call, through the layer's signed-call path (client.c) with this
 * call's retry policy (FANOUT_AWS_* as they are now) and the credentials'
 * deadline: AssumeRole signed with c->base, or with the cached base chain
 * (refreshed once after an expired-token answer), or
 * AssumeRoleWithWebIdentity, unsigned. Retried there within the deadline:
 * nothing above retries credentials. */
int cred_sts_call(const struct cred_sts_call *c, struct fanout_credentials *out, char *err,
                  size_t err_len)
{
    const char *role_arn = c->role_arn, *external_id = c->external_id;
    const char *action = c->web_token ? "AssumeRoleWithWebIdentity" : "AssumeRole";
    long duration = c->duration_s;
    struct fanout_retry_policy policy;
    char region[64], url[1024], scheme[16], host[512], base_path[512];
    if (strncmp(role_arn, "arn:", 4) != 0) {
        cred_set_err(err, err_len, "AssumeRole: \"%.200s\" is not a role ARN", role_arn);
        return -1;
    }
    if ((!duration &&
         cred_env_int("FANOUT_ASSUME_ROLE_SECONDS", DEFAULT_DURATION_S, MIN_DURATION_S,
                      MAX_DURATION_S, &duration, err, err_len)) ||
        fanout_retry_policy_from_env(&policy, err, err_len))
        return -1;
    if (fanout_aws_region(c->region, region, sizeof region, err, err_len)) {
        if (!c->region_fallback)
            return -1;
        /* No region configured: the global endpoint's region, as the aws
         * command does for the profile's STS calls. */
        fanout_strlcpy(region, "us-east-1", sizeof region);
    }
    /* the host, for messages (the call resolves the endpoint the same way) */
    if (fanout_aws_endpoint_url("sts", region, NULL, url, sizeof url, err, err_len))
        return -1;
    if (fanout_url_split(url, scheme, sizeof scheme, host, sizeof host, base_path,
                         sizeof base_path)) {
        cred_set_err(err, err_len, "%s %s: bad STS endpoint %.300s", action, role_arn, url);
        return -1;
    }

    char session[SESSION_NAME_MAX + 1], dur[16];
    if (c->session_name)
        fanout_strlcpy(session, c->session_name, sizeof session);
    else
        s_session_name(session);
    snprintf(dur, sizeof dur, "%ld", duration);
    struct fanout_sbuf body = {0};
    if (cred_form_append(&body, "Action", action) ||
        cred_form_append(&body, "Version", STS_VERSION) ||
        cred_form_append(&body, "RoleArn", role_arn) ||
        cred_form_append(&body, "RoleSessionName", session) ||
        cred_form_append(&body, "DurationSeconds", dur) ||
        (external_id && cred_form_append(&body, "ExternalId", external_id)) ||
        (c->web_token && cred_form_append(&body, "WebIdentityToken", c->web_token))) {
        cred_wipe(body.bytes, body.len);
        fanout_sbuf_free(&body);
        cred_set_err(err, err_len, "out of memory");
        return -1;
    }

    const struct fanout_aws_header headers[] = {{"Content-Type", FORM_CONTENT_TYPE}};
    const struct fanout_aws_request req = {
        .struct_size = sizeof req,
        .service = "sts",
        .region = region,
        .method = "POST",
        .path = "/",
        .headers = headers,
        .header_count = 1,
        .body = body.bytes,
        .body_len = body.len,
        .protocol = FANOUT_AWS_QUERY,
    };
    const struct fanout_aws_call_opts opts = {
        .policy = &policy,
        .remaining_ms = cred_remaining_ms,
        .creds = c->base,
        .unsigned_request = c->web_token != NULL,
    };
    struct fanout_aws_response resp = {.struct_size = sizeof resp};
    fanout_aws_call_with(&req, &resp, &opts);
    cred_wipe(body.bytes, body.len); /* the web identity token */
    fanout_sbuf_free(&body);
    int rc = -1;
    if (resp.result == FANOUT_AWS_OK)
        rc = cred_sts_parse(resp.body ? (const char *)resp.body : "", resp.body_len, action,
                            role_arn, out, err, err_len);
    else
        s_sts_failure(c, action, &resp, host, err, err_len);
    cred_wipe(resp.body, resp.body_len); /* the credentials */
    fanout_aws_response_clean_up(&resp);
    if (rc == 0) {
        char hint[16], until[32];
        cred_key_hint(out->access_key_id, hint);
        cred_format_time(out->expires_ms, until);
        LOG_DEBUG(LOG_SCOPE, "%s: assumed %s%s (key %s) until %s", action, role_arn,
                  external_id ? " with an external id" : "", hint, until);
    }
    return rc;
}

int cred_assume_role(const char *role_arn, const char *external_id, const char *region_in,
                     struct fanout_credentials *out, char *err, size_t err_len)
{
    struct cred_sts_call c = {
        .role_arn = role_arn, .external_id = external_id, .region = region_in};
    return cred_sts_call(&c, out, err, err_len);
}
