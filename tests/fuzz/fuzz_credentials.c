/* Credential answers (engine/aws/credentials/: sts.c, container.c and
 * util.c, through their internal header): the STS AssumeRole reply and error reader, the
 * container credentials JSON, ISO 8601 expirations and the container URL check, all on the
 * same input.
 *
 * Checks, beyond ASan and UBSan: parsed credentials are non-empty and
 * terminated inside their fields; a failure says why; the STS error's code
 * and message never contain a secret of the request nor the full access
 * key id, and have no control characters; an http:// container URL the
 * check lets through has, as libcurl reads it, a loopback or agent host. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/credentials/provider.h"

#include "fuzz.h"

#define KEY_ID "AKIDEXAMPLE12345"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN  "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW"

static void s_check_creds(const struct fanout_credentials *c, int need_token)
{
    size_t a = strnlen(c->access_key_id, sizeof c->access_key_id);
    size_t s = strnlen(c->secret_access_key, sizeof c->secret_access_key);
    size_t t = strnlen(c->session_token, sizeof c->session_token);
    FUZZ_CHECK(a > 0 && a < sizeof c->access_key_id, "access key id length %zu", a);
    FUZZ_CHECK(s > 0 && s < sizeof c->secret_access_key, "secret length %zu", s);
    FUZZ_CHECK(t < sizeof c->session_token, "token not terminated");
    FUZZ_CHECK(!need_token || t > 0, "no session token");
    FUZZ_CHECK(strnlen(c->source, sizeof c->source) < sizeof c->source, "source");
}

static void s_check_said(const char *what, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    FUZZ_CHECK(n < cap, "%s not terminated", what);
    FUZZ_CHECK(n <= SERVER_MESSAGE_MAX, "%s of %zu bytes", what, n);
    FUZZ_CHECK(!strstr(s, SECRET) && !strstr(s, TOKEN) && !strstr(s, KEY_ID),
               "%s shows a secret: %s", what, s);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f,
                   "%s has control character 0x%02x", what, (unsigned char)s[i]);
}

static void s_check_url(const char *url)
{
    char shown[300], err[ERR_LEN];
    err[0] = 0;
    if (cred_container_check_url(url, shown, sizeof shown, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0], "URL refused without a reason");
        return;
    }
    if (strncasecmp(url, "http://", 7) != 0)
        return;
    CURLU *u = curl_url();
    FUZZ_CHECK(u != NULL, "out of memory");
    char *host = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host) {
        char h[300];
        size_t n = strlen(host);
        if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
            snprintf(h, sizeof h, "%.*s", (int)(n - 2), host + 1);
        else
            snprintf(h, sizeof h, "%s", host);
        /* an IPv6 zone id ("%25eth0") is not part of the address */
        char *zone = strchr(h, '%');
        if (zone && strchr(h, ':'))
            *zone = 0;
        FUZZ_CHECK(cred_container_host_allowed(h),
                   "http URL \"%s\" accepted, but libcurl would connect to \"%s\"", url,
                   host);
    }
    curl_free(host);
    curl_url_cleanup(u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    char *text = fuzz_dup(data, size); /* NUL-terminated, for the C-string readers */
    uint8_t *body = malloc(size ? size : 1);
    FUZZ_CHECK(body != NULL, "out of memory");
    memcpy(body, data, size);
    struct fanout_credentials c;
    char err[ERR_LEN];

    err[0] = 0;
    if (cred_sts_parse((const char *)body, size,
                       size % 2 ? "AssumeRoleWithWebIdentity" : "AssumeRole",
                       "arn:aws:iam::123456789012:role/r", &c, err, sizeof err) == 0)
        s_check_creds(&c, 1);
    else
        FUZZ_CHECK(err[0], "STS reply refused without a reason");

    err[0] = 0;
    if (cred_container_parse(body, size, "http://127.0.0.1", &c, err, sizeof err) == 0)
        s_check_creds(&c, 0);
    else
        FUZZ_CHECK(err[0], "container reply refused without a reason");

    const char *secrets[] = {SECRET, TOKEN};
    char code[64], msg[SERVER_MESSAGE_MAX + 8];
    cred_sts_error(body, size, secrets, 2, KEY_ID, code, sizeof code, msg, sizeof msg);
    s_check_said("code", code, sizeof code);
    s_check_said("message", msg, sizeof msg);

    int64_t ms = 0;
    (void)cred_parse_iso8601(text, &ms);
    if (size < 4096)
        s_check_url(text);

    free(body);
    free(text);
    return 0;
}
