/* STS: AssumeRole (a target's role, a profile's role) and
 * AssumeRoleWithWebIdentity, and the reading of their replies. */
#include "aws/credentials/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fanout/xml.h>

#include "aws/endpoint.h"
#include "aws/sigv4.h"
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

/* One STS call: AssumeRole signed with the base credentials (c->base, or
 * the cached base chain), or AssumeRoleWithWebIdentity (unsigned, with
 * c->web_token). Retried here within the deadline (nothing above retries
 * credentials). */
int cred_sts_call(const struct cred_sts_call *c, struct fanout_credentials *out, char *err,
                  size_t err_len)
{
    const char *role_arn = c->role_arn, *external_id = c->external_id;
    const char *action = c->web_token ? "AssumeRoleWithWebIdentity" : "AssumeRole";
    long duration = c->duration_s;
    struct fanout_retry_policy policy;
    char region[64], url[1024], scheme[16], host[512], base_path[512], path[520];
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
    if (fanout_aws_endpoint_url("sts", region, NULL, url, sizeof url, err, err_len))
        return -1;
    if (fanout_url_split(url, scheme, sizeof scheme, host, sizeof host, base_path,
                         sizeof base_path)) {
        cred_set_err(err, err_len, "%s %s: bad STS endpoint %.300s", action, role_arn, url);
        return -1;
    }
    size_t bl = strlen(base_path);
    snprintf(path, sizeof path, "%s%s", base_path,
             bl && base_path[bl - 1] == '/' ? "" : "/");

    char session[SESSION_NAME_MAX + 1], dur[16];
    if (c->session_name)
        fanout_strlcpy(session, c->session_name, sizeof session);
    else
        s_session_name(session);
    snprintf(dur, sizeof dur, "%ld", duration);
    struct fanout_buf body = {0};
    if (cred_form_append(&body, "Action", action) ||
        cred_form_append(&body, "Version", STS_VERSION) ||
        cred_form_append(&body, "RoleArn", role_arn) ||
        cred_form_append(&body, "RoleSessionName", session) ||
        cred_form_append(&body, "DurationSeconds", dur) ||
        (external_id && cred_form_append(&body, "ExternalId", external_id)) ||
        (c->web_token && cred_form_append(&body, "WebIdentityToken", c->web_token))) {
        fanout_buf_free(&body);
        cred_set_err(err, err_len, "out of memory");
        return -1;
    }

    unsigned seed = cred_seed();
    int rc = -1, base_forced = 0;
    char h_host[] = "Host", h_ctype[] = "Content-Type", v_ctype[] = FORM_CONTENT_TYPE,
         h_date[] = "X-Amz-Date", h_token[] = "X-Amz-Security-Token",
         h_auth[] = "Authorization";
    for (unsigned attempt = 1;; attempt++) {
        struct fanout_credentials base;
        char base_err[ERR_LEN];
        memset(&base, 0, sizeof base);
        if (c->base) {
            base = *c->base;
        } else if (c->web_token) {
            /* unsigned */
        } else if (cred_base_get(base_forced == 1, &base, base_err, sizeof base_err)) {
            cred_set_err(err, err_len, "%s %s: no base credentials: %s", action, role_arn,
                         base_err);
            break;
        }
        if (base_forced == 1)
            base_forced = 2;
        const struct fanout_sigv4_header sign_headers[] = {
            {"Host", host}, {"Content-Type", FORM_CONTENT_TYPE}};
        struct fanout_sigv4_request sreq = {
            .method = "POST",
            .path = path,
            .query = NULL,
            .headers = sign_headers,
            .header_count = 2,
            .body = body.ptr,
            .body_len = body.len,
        };
        struct fanout_sigv4_params params = {
            .region = region,
            .service = "sts",
            .now = time(NULL),
            .normalize_path = 1,
            .content_sha256_header = 0,
        };
        struct fanout_sigv4_credentials sc = {
            .access_key_id = base.access_key_id,
            .secret_access_key = base.secret_access_key,
            .session_token = base.session_token[0] ? base.session_token : NULL,
        };
        struct fanout_sigv4_result sig;
        memset(&sig, 0, sizeof sig);
        if (!c->web_token && fanout_sigv4_sign(&sreq, &params, &sc, &sig)) {
            cred_wipe(&base, sizeof base);
            cred_set_err(err, err_len, "%s %s: signing failed", action, role_arn);
            break;
        }
        struct fanout_http_header headers[5] = {
            {h_host, host},
            {h_ctype, v_ctype},
            {h_date, sig.amz_date},
            {h_auth, sig.authorization},
            {h_token, base.session_token},
        };
        struct fanout_http_request req = {
            .method = "POST",
            .url = url,
            .headers = headers,
            .header_count = c->web_token            ? 2
                            : base.session_token[0] ? 5
                                                    : 4,
            .body = body.ptr,
            .body_len = body.len,
            .timeout_ms = cred_timeout_ms(policy.request_timeout_ms),
        };
        struct fanout_http_response resp;
        cred_perform(&req, &resp);

        if (resp.status >= 200 && resp.status < 300) {
            rc = cred_sts_parse(resp.body.ptr ? (const char *)resp.body.ptr : "",
                                resp.body.len, action, role_arn, out, err, err_len);
            cred_response_clean_up(&resp);
            cred_wipe(&base, sizeof base);
            cred_wipe(&sig, sizeof sig);
            break;
        }
        char code[128] = "", msg[SERVER_MESSAGE_MAX + 8] = "";
        const char *secrets[5] = {base.secret_access_key, base.session_token,
                                  sig.authorization, sig.signature,
                                  c->web_token ? c->web_token : ""};
        if (resp.status)
            cred_sts_error(resp.body.ptr, resp.body.len, secrets, 5, base.access_key_id,
                           code, sizeof code, msg, sizeof msg);
        enum fanout_retry_class cls =
            fanout_retry_classify(resp.status, code[0] ? code : NULL, (int)resp.error);
        cred_wipe(&base, sizeof base);
        cred_wipe(&sig, sizeof sig);
        if (cls == FANOUT_RETRY_EXPIRED && base_forced == 0 && !c->base && !c->web_token &&
            attempt < policy.max_attempts) {
            /* The base credentials were refused as expired: fetch them
             * again, once, and retry at once. */
            LOG_WARN(LOG_SCOPE, "%s %s: %s; refreshing the base credentials", action,
                     role_arn, code);
            base_forced = 1;
            cred_response_clean_up(&resp);
            continue;
        }
        unsigned delay;
        if (cred_may_retry(&policy, cls, attempt, &seed, &delay)) {
            LOG_DEBUG(LOG_SCOPE, "%s %s: attempt %u: %s%s%s; retrying in %u ms", action,
                      role_arn, attempt,
                      resp.status ? (code[0] ? code : "error") : "no response",
                      resp.status ? "" : ": ", resp.status ? "" : resp.error_text, delay);
            cred_response_clean_up(&resp);
            cred_sleep_ms(delay);
            continue;
        }
        char tries[48] = "";
        if (attempt > 1)
            snprintf(tries, sizeof tries, " after %u attempts", attempt);
        if (resp.status)
            cred_set_err(err, err_len, "%s %s failed%s: %s%s%s (HTTP %ld)", action,
                         role_arn, tries, code[0] ? code : "error", msg[0] ? ": " : "", msg,
                         resp.status);
        else
            cred_set_err(err, err_len, "%s %s failed%s: no response from %s: %s", action,
                         role_arn, tries, host, resp.error_text);
        cred_response_clean_up(&resp);
        break;
    }
    fanout_buf_free(&body);
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
