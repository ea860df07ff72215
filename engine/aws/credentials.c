/* Credentials: the base provider chain and STS AssumeRole, cached.
 *
 * The base chain is the aws command's (botocore's create_credential_
 * resolver), tried in order (s_providers): environment; the profile
 * (AWS_PROFILE or "default"): a role it assumes (role_arn with
 * source_profile, chained through profiles that assume roles themselves,
 * or credential_source Environment / Ec2InstanceMetadata / EcsContainer;
 * external_id, role_session_name, duration_seconds; mfa_serial refused:
 * nothing can prompt), else web identity (AWS_WEB_IDENTITY_TOKEN_FILE /
 * AWS_ROLE_ARN or the profile's keys), IAM Identity Center (legacy sso_*
 * keys or an sso-session section; the token `aws sso login` cached),
 * the credentials file's keys, credential_process, the config file's keys;
 * then container credentials; then the EC2 instance metadata service
 * (IMDSv2, 1 s timeouts). The whole chain's answer is one cache entry, so
 * every step of it (STS calls of a role chain included) runs once per
 * refresh for all callers.
 *
 * Not done: refreshing an expired SSO token with its refresh token (the
 * error asks for `aws sso login`); MFA prompts.
 *
 * Secrets (secret keys, session tokens, the Authorization header and the
 * container authorization token) never reach a log line or an error
 * string: server messages are scrubbed of every secret the request used,
 * and access key ids are shown cut to four characters. */
#include "aws/credentials.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aws/endpoint.h"
#include "aws/http.h"
#include "common/log.h"
#include "aws/retry.h"
#include "aws/sigv4.h"
#include "common/util.h"

#define LOG_SCOPE "credentials"

extern char **environ;

#define ERR_LEN 512
/* Refresh margin: FANOUT_CREDENTIALS_REFRESH_SECONDS, or a quarter of the
 * lifetime at issue when that is shorter. */
#define DEFAULT_REFRESH_S 300
#define MAX_REFRESH_S     86400
/* After a failed refresh, the old credentials are used while they have
 * more than this left (or a quarter of the margin, for lifetimes under a
 * minute or two: test credentials). */
#define MIN_VALID_MS 5000
/* And the refresh is tried again no sooner than this (or a quarter of what
 * is left), so a failing STS is not asked on every call. */
#define RETRY_AFTER_MS 10000
/* A fetch that failed with nothing usable to fall back on is not tried
 * again before this: its error is the answer meanwhile. So a throttled or
 * failing STS sees one bounded burst of attempts (FANOUT_AWS_MAX_ATTEMPTS)
 * per this period, however many sends, batches, targets or engine retries
 * ask for the same credentials. */
#define FAILURE_HOLD_MS 5000
/* STS AssumeRole limits [aws-facts 3]. */
#define DEFAULT_DURATION_S 3600
#define MIN_DURATION_S     900
#define MAX_DURATION_S     43200
#define SESSION_NAME_MAX   64
#define STS_VERSION        "2011-06-15"
#define FORM_CONTENT_TYPE  "application/x-www-form-urlencoded; charset=utf-8"
/* Container credentials [aws-facts 5]. */
#define CONTAINER_HOST           "http://169.254.170.2"
#define CONTAINER_TIMEOUT_MS     5000
#define CONTAINER_CONNECT_MS     1000
#define CONTAINER_TOKEN_FILE_MAX 16384
#define SERVER_MESSAGE_MAX       400
#define ELLIPSIS                 "\xe2\x80\xa6"

/* ---- small helpers ------------------------------------------------------ */

static void s_set_err(char *err, size_t err_len, const char *fmt, ...) FANOUT_FMT(3, 4);

static void s_set_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *s_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static void s_wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}

static void s_free_secret(char *s)
{
    if (s) {
        s_wipe(s, strlen(s));
        free(s);
    }
}

/* "AKIA…": enough to tell keys apart in a message, not to use one. */
static void s_key_hint(const char *key_id, char out[16])
{
    snprintf(out, 16, "%.4s" ELLIPSIS, key_id ? key_id : "");
}

static const char *s_profile_name(void)
{
    const char *p = s_env("AWS_PROFILE");
    return p ? p : "default";
}

/* An integer from the environment in [min, max], or `def` when unset. */
static int s_env_int(const char *name, long def, long min, long max, long *out, char *err,
                     size_t err_len)
{
    const char *v = s_env(name);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        s_set_err(err, err_len, "%s must be an integer from %ld to %ld (got \"%.32s\")",
                  name, min, max, v);
        return -1;
    }
    *out = n;
    return 0;
}

static int s_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* ISO 8601 as AWS writes it: YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM|-HH:MM]. */
static int s_parse_iso8601(const char *s, int64_t *out_ms)
{
    int y, mo, d, h, mi, sec;
    if (strlen(s) < 19 || s_digits(s, 4, &y) || s[4] != '-' || s_digits(s + 5, 2, &mo) ||
        s[7] != '-' || s_digits(s + 8, 2, &d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s_digits(s + 11, 2, &h) ||
        s[13] != ':' || s_digits(s + 14, 2, &mi) || s[16] != ':' ||
        s_digits(s + 17, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    const char *p = s + 19;
    int64_t frac_ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            frac_ms *= 10;
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        int sign = *p == '-' ? -1 : 1;
        p++;
        if (s_digits(p, 2, &oh))
            return -1;
        p += 2;
        if (*p == ':')
            p++;
        if (s_digits(p, 2, &om))
            return -1;
        p += 2;
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        return -1; /* no zone: refuse rather than guess */
    }
    if (*p)
        return -1;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out_ms = ((int64_t)t - offset_s) * 1000 + frac_ms;
    return 0;
}

static void s_format_time(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Replace every occurrence of `secret` in b with `with`, and of its first
 * SECRET_PREFIX_MIN characters or more (a server that quotes a secret cut
 * short, as STS does with a refused web identity token). */
#define SECRET_PREFIX_MIN 16
static void s_replace_all(struct fanout_buf *b, const char *secret, const char *with)
{
    size_t sl = secret ? strlen(secret) : 0;
    if (sl < 4 || !b->ptr)
        return;
    size_t key = sl < SECRET_PREFIX_MIN ? sl : SECRET_PREFIX_MIN;
    struct fanout_buf out = {0};
    const char *s = (const char *)b->ptr;
    const char *hit;
    int any = 0;
    while ((hit = strstr(s, secret)) != NULL ||
           (key < sl && (hit = memmem(s, strlen(s), secret, key)) != NULL)) {
        /* The earliest of the two kinds of match. */
        const char *part = key < sl ? memmem(s, strlen(s), secret, key) : NULL;
        if (part && part < hit)
            hit = part;
        size_t m = 0;
        while (m < sl && hit[m] == secret[m])
            m++;
        fanout_buf_append(&out, s, (size_t)(hit - s));
        fanout_buf_append_str(&out, with);
        s = hit + m;
        any = 1;
    }
    if (!any)
        return;
    fanout_buf_append_str(&out, s);
    s_wipe(b->ptr, b->len);
    fanout_buf_free(b);
    *b = out;
}

/* Words from a server (an error message), made safe for a message of ours:
 * no control characters, bounded, and none of the request's secrets. */
static void s_server_text(const char *text, size_t n, const char *const *secrets,
                          size_t secret_count, const char *key_id, char *out,
                          size_t out_len)
{
    struct fanout_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        fanout_buf_append_byte(&b, c < 0x20 || c == 0x7f ? ' ' : c);
    }
    fanout_buf_append(&b, "", 0);
    for (size_t i = 0; i < secret_count; i++)
        s_replace_all(&b, secrets[i], "***");
    if (key_id && *key_id) {
        char hint[16];
        s_key_hint(key_id, hint);
        s_replace_all(&b, key_id, hint);
    }
    /* Collapse runs of spaces (AWS messages carry blank lines). */
    size_t w = 0;
    const char *s = b.ptr ? (const char *)b.ptr : "";
    for (size_t r = 0; s[r] && w + 1 < out_len; r++) {
        if (s[r] == ' ' && (w == 0 || out[w - 1] == ' '))
            continue;
        out[w++] = s[r];
    }
    while (w > 0 && out[w - 1] == ' ')
        w--;
    /* Bound it, at a UTF-8 boundary. */
    if (w > SERVER_MESSAGE_MAX) {
        w = SERVER_MESSAGE_MAX;
        while (w > 0 && ((unsigned char)out[w] & 0xc0) == 0x80)
            w--;
    }
    if (out_len)
        out[w < out_len ? w : out_len - 1] = 0;
    s_wipe(b.ptr, b.len);
    fanout_buf_free(&b);
}

static int s_copy_field(char *dst, size_t dst_len, const char *src, size_t n,
                        const char *what, const char *source, char *err, size_t err_len)
{
    if (n >= dst_len) {
        s_set_err(err, err_len, "%s from %s is too long (%zu bytes, at most %zu)", what,
                  source, n, dst_len - 1);
        return -1;
    }
    memcpy(dst, src, n);
    dst[n] = 0;
    return 0;
}

/* ---- HTTP --------------------------------------------------------------- */

static void s_response_clean_up(struct fanout_http_response *r)
{
    s_wipe(r->body.ptr, r->body.len); /* may hold credentials */
    fanout_http_response_clean_up(r);
}

static void s_perform(const struct fanout_http_request *req,
                      struct fanout_http_response *resp)
{
    memset(resp, 0, sizeof *resp);
    const struct fanout_http_request *reqs[1] = {req};
    struct fanout_http_response *resps[1] = {resp};
    fanout_http_perform(reqs, resps, 1);
}

/* The invocation's deadline: requests are cut to it and not retried past
 * it (a margin is kept for the engine to report). */
#define S_DEADLINE_MARGIN_MS 500
static int64_t (*s_remaining_ms)(void);

void fanout_credentials_set_deadline(int64_t (*remaining_ms)(void))
{
    s_remaining_ms = remaining_ms;
}

static int64_t s_left_ms(void)
{
    return s_remaining_ms ? s_remaining_ms() - S_DEADLINE_MARGIN_MS : INT64_MAX;
}

/* A request's time limit: the policy's, cut to what is left. */
static int64_t s_timeout_ms(int64_t wanted)
{
    int64_t left = s_left_ms();
    return left < wanted ? (left > 1 ? left : 1) : wanted;
}

static void s_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Whether a failed attempt of a credentials call may be tried again: a
 * throttling or transient answer, attempts left in the policy, and time left
 * for the backoff (*delay_ms) before the deadline. The one rule for the
 * container, STS and SSO calls. */
static int s_may_retry(const struct fanout_retry_policy *policy,
                       enum fanout_retry_class cls, unsigned attempt, unsigned *seed,
                       unsigned *delay_ms)
{
    *delay_ms = fanout_retry_delay_ms(policy, attempt, seed);
    return (cls == FANOUT_RETRY_THROTTLE || cls == FANOUT_RETRY_TRANSIENT) &&
           attempt < policy->max_attempts && s_left_ms() > (int64_t)*delay_ms;
}

static unsigned s_seed(void)
{
    unsigned seed = (unsigned)s_now_ms() ^ ((unsigned)getpid() << 16);
    seed ^= (unsigned)(uintptr_t)&seed;
    return seed;
}

/* ---- a small, tolerant XML scanner (STS replies) ------------------------ */

/* The content of the first element whose local name is `name` (any
 * namespace prefix, any attributes) in s[0..n). */
static int s_xml_find(const char *s, size_t n, const char *name, const char **content,
                      size_t *content_len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '<' || s[i + 1] == '/' || s[i + 1] == '?' || s[i + 1] == '!')
            continue;
        size_t q = i + 1, k = q;
        while (k < n && s[k] != '>' && s[k] != '/' && s[k] != ' ' && s[k] != '\t' &&
               s[k] != '\r' && s[k] != '\n')
            k++;
        size_t local = q;
        for (size_t t = q; t < k; t++)
            if (s[t] == ':')
                local = t + 1;
        if (k - local != nl || memcmp(s + local, name, nl) != 0)
            continue;
        /* End of the start tag, skipping quoted attribute values. */
        size_t gt = k;
        char quote = 0;
        for (; gt < n; gt++) {
            if (quote) {
                if (s[gt] == quote)
                    quote = 0;
            } else if (s[gt] == '"' || s[gt] == '\'') {
                quote = s[gt];
            } else if (s[gt] == '>') {
                break;
            }
        }
        if (gt >= n)
            return 0;
        if (s[gt - 1] == '/') { /* <Name/> */
            *content = s + gt + 1;
            *content_len = 0;
            return 1;
        }
        size_t start = gt + 1, qn = k - q;
        for (size_t e = start; e + 2 + qn < n + 1; e++) {
            if (s[e] == '<' && e + 1 < n && s[e + 1] == '/' && e + 2 + qn <= n &&
                memcmp(s + e + 2, s + q, qn) == 0) {
                size_t after = e + 2 + qn;
                while (after < n && (s[after] == ' ' || s[after] == '\t' ||
                                     s[after] == '\r' || s[after] == '\n'))
                    after++;
                if (after < n && s[after] == '>') {
                    *content = s + start;
                    *content_len = e - start;
                    return 1;
                }
            }
        }
        return 0; /* unterminated */
    }
    return 0;
}

static void s_utf8_put(struct fanout_buf *b, unsigned long cp)
{
    if (cp < 0x80) {
        fanout_buf_append_byte(b, (uint8_t)cp);
    } else if (cp < 0x800) {
        fanout_buf_append_byte(b, (uint8_t)(0xc0 | (cp >> 6)));
        fanout_buf_append_byte(b, (uint8_t)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        fanout_buf_append_byte(b, (uint8_t)(0xe0 | (cp >> 12)));
        fanout_buf_append_byte(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
        fanout_buf_append_byte(b, (uint8_t)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x110000) {
        fanout_buf_append_byte(b, (uint8_t)(0xf0 | (cp >> 18)));
        fanout_buf_append_byte(b, (uint8_t)(0x80 | ((cp >> 12) & 0x3f)));
        fanout_buf_append_byte(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
        fanout_buf_append_byte(b, (uint8_t)(0x80 | (cp & 0x3f)));
    }
}

/* The text of an element's content: CDATA taken as is, entities decoded,
 * surrounding whitespace trimmed. Appended to b (NUL-terminated). */
static void s_xml_text(const char *s, size_t n, struct fanout_buf *b)
{
    while (n && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
        s++, n--;
    while (n &&
           (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    if (n >= 12 && memcmp(s, "<![CDATA[", 9) == 0 && memcmp(s + n - 3, "]]>", 3) == 0) {
        fanout_buf_append(b, s + 9, n - 12);
        fanout_buf_append(b, "", 0);
        return;
    }
    static const struct {
        const char *name;
        char c;
    } s_entities[] = {
        {"lt", '<'}, {"gt", '>'}, {"amp", '&'}, {"quot", '"'}, {"apos", '\''}};
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '&') {
            fanout_buf_append_byte(b, (uint8_t)s[i]);
            continue;
        }
        const char *semi = memchr(s + i, ';', n - i < 12 ? n - i : 12);
        int done = 0;
        if (semi) {
            size_t el = (size_t)(semi - (s + i + 1));
            const char *ent = s + i + 1;
            if (el >= 2 && ent[0] == '#') {
                char tmp[12];
                memcpy(tmp, ent + 1, el - 1);
                tmp[el - 1] = 0;
                char *end;
                int hex = tmp[0] == 'x' || tmp[0] == 'X';
                unsigned long cp = strtoul(tmp + hex, &end, hex ? 16 : 10);
                if (*end == 0 && end != tmp + hex && cp > 0 && cp < 0x110000) {
                    s_utf8_put(b, cp);
                    done = 1;
                }
            } else {
                for (size_t e = 0; e < sizeof s_entities / sizeof s_entities[0]; e++)
                    if (strlen(s_entities[e].name) == el &&
                        memcmp(ent, s_entities[e].name, el) == 0) {
                        fanout_buf_append_byte(b, (uint8_t)s_entities[e].c);
                        done = 1;
                    }
            }
            if (done)
                i += el + 1;
        }
        if (!done)
            fanout_buf_append_byte(b, '&');
    }
    fanout_buf_append(b, "", 0);
}

/* Find `name` inside s[0..n) and copy its text into dst. 0, 1 when absent,
 * -1 when too long. */
static int s_xml_field(const char *s, size_t n, const char *name, char *dst, size_t dst_len)
{
    const char *c;
    size_t cl;
    if (!s_xml_find(s, n, name, &c, &cl))
        return 1;
    struct fanout_buf b = {0};
    s_xml_text(c, cl, &b);
    int rc = 0;
    if (!b.ptr || b.len >= dst_len)
        rc = b.ptr ? -1 : 1;
    else
        memcpy(dst, b.ptr, b.len + 1);
    s_wipe(b.ptr, b.len);
    fanout_buf_free(&b);
    return rc;
}

/* ---- providers ---------------------------------------------------------- */

enum { S_NOT_FOUND = 0, S_FOUND = 1, S_ERROR = -1 };

struct cred_provider {
    const char *name;
    /* S_FOUND with `out` filled, S_NOT_FOUND to try the next provider,
     * S_ERROR with err (the chain stops: a broken configuration is not
     * skipped silently). */
    int (*fetch)(struct fanout_credentials *out, char *err, size_t err_len);
};

static int s_fill(struct fanout_credentials *out, const char *source, const char *id,
                  const char *secret, const char *token, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    fanout_strlcpy(out->source, source, sizeof out->source);
    if (s_copy_field(out->access_key_id, sizeof out->access_key_id, id, strlen(id),
                     "the access key id", source, err, err_len) ||
        s_copy_field(out->secret_access_key, sizeof out->secret_access_key, secret,
                     strlen(secret), "the secret access key", source, err, err_len) ||
        (token && s_copy_field(out->session_token, sizeof out->session_token, token,
                               strlen(token), "the session token", source, err, err_len))) {
        s_wipe(out, sizeof *out);
        return -1;
    }
    return 0;
}

/* AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN: what
 * Lambda sets for the function's role. */
static int s_env_fetch(struct fanout_credentials *out, char *err, size_t err_len)
{
    const char *id = s_env("AWS_ACCESS_KEY_ID");
    const char *secret = s_env("AWS_SECRET_ACCESS_KEY");
    const char *token = s_env("AWS_SESSION_TOKEN");
    if (!token)
        token = s_env("AWS_SECURITY_TOKEN"); /* the older name, as botocore reads it */
    if (!id && !secret)
        return S_NOT_FOUND;
    if (!id || !secret) {
        s_set_err(
            err, err_len,
            "environment credentials are half set: %s is set but %s is not (set both, "
            "or neither)",
            id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
            id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return S_ERROR;
    }
    if (s_fill(out, "environment", id, secret, token, err, err_len))
        return S_ERROR;
    const char *exp = s_env("AWS_CREDENTIAL_EXPIRATION");
    if (exp && s_parse_iso8601(exp, &out->expires_ms)) {
        s_wipe(out, sizeof *out);
        s_set_err(err, err_len,
                  "AWS_CREDENTIAL_EXPIRATION is not an ISO 8601 time (\"%.40s\")", exp);
        return S_ERROR;
    }
    return S_FOUND;
}

static const char *s_file_name(int credentials_file)
{
    const char *f =
        s_env(credentials_file ? "AWS_SHARED_CREDENTIALS_FILE" : "AWS_CONFIG_FILE");
    return f ? f : credentials_file ? "~/.aws/credentials" : "~/.aws/config";
}

/* The keys of `profile` in the credentials file (1) or the config file (0). */
static int s_profile_keys(int credentials_file, const char *profile,
                          struct fanout_credentials *out, char *err, size_t err_len)
{
    char *id = fanout_aws_profile_value(credentials_file, profile, "aws_access_key_id");
    char *secret =
        fanout_aws_profile_value(credentials_file, profile, "aws_secret_access_key");
    char *token = fanout_aws_profile_value(credentials_file, profile, "aws_session_token");
    int rc = S_NOT_FOUND;
    if (id && secret && *id && *secret) {
        rc = s_fill(out, "profile", id, secret, token, err, err_len) ? S_ERROR : S_FOUND;
    } else if ((id && *id) || (secret && *secret)) {
        s_set_err(err, err_len, "profile \"%s\" in %s has %s but no %s", profile,
                  s_file_name(credentials_file),
                  id && *id ? "aws_access_key_id" : "aws_secret_access_key",
                  id && *id ? "aws_secret_access_key" : "aws_access_key_id");
        rc = S_ERROR;
    }
    s_free_secret(id);
    s_free_secret(secret);
    s_free_secret(token);
    return rc;
}

/* http is allowed only to loopback and the container agents' link-local
 * addresses; https anywhere. `host` is the URL's host (brackets removed). */
static int s_container_host_allowed(const char *host)
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
static int s_container_check_url(const char *url, char *shown, size_t shown_len, char *err,
                                 size_t err_len)
{
    int https = strncasecmp(url, "https://", 8) == 0;
    if (!https && strncasecmp(url, "http://", 7) != 0) {
        s_set_err(err, err_len,
                  "AWS_CONTAINER_CREDENTIALS_FULL_URI must be an http(s) URL");
        return -1;
    }
    const char *auth = url + (https ? 8 : 7);
    size_t alen = strcspn(auth, "/?#");
    if (memchr(auth, '@', alen) || alen == 0 || alen > 255) {
        s_set_err(err, err_len,
                  "AWS_CONTAINER_CREDENTIALS_FULL_URI has no usable host (user info is not "
                  "allowed)");
        return -1;
    }
    char host[256];
    if (auth[0] == '[') {
        const char *close = memchr(auth, ']', alen);
        if (!close) {
            s_set_err(err, err_len, "AWS_CONTAINER_CREDENTIALS_FULL_URI: bad IPv6 host");
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
    if (!https && !s_container_host_allowed(host)) {
        s_set_err(
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
    const char *file = s_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    char *tok = NULL;
    if (file) {
        FILE *f = fopen(file, "re");
        if (!f) {
            s_set_err(err, err_len,
                      "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s", file,
                      strerror(errno));
            return NULL;
        }
        tok = calloc(1, CONTAINER_TOKEN_FILE_MAX + 1);
        size_t n = tok ? fread(tok, 1, CONTAINER_TOKEN_FILE_MAX + 1, f) : 0;
        int bad = tok && (ferror(f) || n > CONTAINER_TOKEN_FILE_MAX);
        fclose(f);
        if (!tok || bad) {
            s_free_secret(tok);
            s_set_err(err, err_len,
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
        const char *v = s_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
        if (!v) {
            *none = 1;
            return NULL;
        }
        tok = strdup(v);
        if (!tok) {
            s_set_err(err, err_len, "out of memory");
            return NULL;
        }
    }
    if (strpbrk(tok, "\r\n")) {
        s_free_secret(tok);
        s_set_err(err, err_len,
                  "the container authorization token (%s) contains a line break",
                  file ? "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
                       : "AWS_CONTAINER_AUTHORIZATION_TOKEN");
        return NULL;
    }
    return tok;
}

static int s_container_parse(const uint8_t *body, size_t len, const char *shown,
                             struct fanout_credentials *out, char *err, size_t err_len)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)body, len, 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        s_set_err(err, err_len,
                  "container credentials from %s: the reply is not a JSON object", shown);
        return -1;
    }
    const char *id = json_string_value(json_object_get(root, "AccessKeyId"));
    const char *secret = json_string_value(json_object_get(root, "SecretAccessKey"));
    const char *token = json_string_value(json_object_get(root, "Token"));
    const char *exp = json_string_value(json_object_get(root, "Expiration"));
    int rc = -1;
    if (!id || !*id || !secret || !*secret) {
        s_set_err(err, err_len,
                  "container credentials from %s: the reply lacks AccessKeyId or "
                  "SecretAccessKey",
                  shown);
    } else if (s_fill(out, "container", id, secret, token, err, err_len) == 0) {
        if (exp && s_parse_iso8601(exp, &out->expires_ms)) {
            s_wipe(out, sizeof *out);
            s_set_err(err, err_len,
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
static int s_container_fetch(struct fanout_credentials *out, char *err, size_t err_len)
{
    const char *rel = s_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = s_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!rel && !full)
        return S_NOT_FOUND;
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
        if (s_container_check_url(full, shown, sizeof shown, err, err_len))
            return S_ERROR;
        if (strlen(full) >= sizeof url) {
            s_set_err(err, err_len, "AWS_CONTAINER_CREDENTIALS_FULL_URI is too long");
            return S_ERROR;
        }
        snprintf(url, sizeof url, "%s", full);
    }
    struct fanout_retry_policy policy;
    if (fanout_retry_policy_from_env(&policy, err, err_len))
        return S_ERROR;
    int none;
    char *token = s_container_token(&none, err, err_len);
    if (!token && !none)
        return S_ERROR;

    char h_accept[] = "Accept", v_accept[] = "application/json", h_auth[] = "Authorization";
    struct fanout_http_header headers[2] = {{h_accept, v_accept}, {h_auth, token}};
    struct fanout_http_request req = {
        .method = "GET",
        .url = url,
        .headers = headers,
        .header_count = token ? 2 : 1,
        .timeout_ms = s_timeout_ms(policy.request_timeout_ms < CONTAINER_TIMEOUT_MS
                                       ? policy.request_timeout_ms
                                       : CONTAINER_TIMEOUT_MS),
        .connect_timeout_ms = CONTAINER_CONNECT_MS,
    };
    unsigned seed = s_seed();
    int rc = S_ERROR;
    for (unsigned attempt = 1;; attempt++) {
        struct fanout_http_response resp;
        s_perform(&req, &resp);
        if (resp.status == 200) {
            rc = s_container_parse(resp.body.ptr, resp.body.len, shown, out, err, err_len)
                     ? S_ERROR
                     : S_FOUND;
            s_response_clean_up(&resp);
            break;
        }
        enum fanout_retry_class cls =
            fanout_retry_classify(resp.status, NULL, (int)resp.error);
        unsigned delay;
        if (s_may_retry(&policy, cls, attempt, &seed, &delay)) {
            s_response_clean_up(&resp);
            s_sleep_ms(delay);
            continue;
        }
        if (resp.status) {
            /* The agents answer {"code","message"} (EKS) or text (ECS). */
            char said[SERVER_MESSAGE_MAX + 8] = "";
            json_t *j = json_loadb((const char *)resp.body.ptr, resp.body.len, 0, NULL);
            const char *msg = json_string_value(json_object_get(j, "message"));
            if (!msg)
                msg = json_string_value(json_object_get(j, "Message"));
            const char *secrets[1] = {token};
            if (msg)
                s_server_text(msg, strlen(msg), secrets, token ? 1 : 0, NULL, said,
                              sizeof said);
            json_decref(j);
            char tries[48] = "";
            if (attempt > 1)
                snprintf(tries, sizeof tries, " after %u attempts", attempt);
            s_set_err(err, err_len, "container credentials from %s%s: HTTP %ld%s%s", shown,
                      tries, resp.status, *said ? ": " : "", said);
        } else {
            s_set_err(err, err_len,
                      "container credentials from %s: no response after %u "
                      "attempt%s: %s",
                      shown, attempt, attempt == 1 ? "" : "s", resp.error_text);
        }
        s_response_clean_up(&resp);
        break;
    }
    s_free_secret(token);
    return rc;
}

/* ---- the cache ---------------------------------------------------------- */

struct cred_entry {
    struct cred_entry *next;
    /* The key; NULL role: the base chain. Immutable once added. */
    char *role_arn;
    char *external_id;
    char *region;
    struct fanout_credentials creds;
    int have;               /* creds hold what the last good fetch gave */
    int64_t fetched_ms;     /* when */
    int64_t margin_ms;      /* refresh when less than this is left */
    int refreshing;         /* one caller is fetching (outside the lock) */
    uint64_t refreshes;     /* fetches finished, good or bad */
    int last_failed;        /* the last fetch failed ... */
    char last_err[ERR_LEN]; /* ... with this */
    int64_t retry_after_ms; /* no new early refresh before this */
    int64_t failed_ms;      /* when the last fetch failed with nothing usable */
};

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_done = PTHREAD_COND_INITIALIZER;
static struct cred_entry *s_entries;

static int s_str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void s_entry_free(struct cred_entry *e)
{
    free(e->role_arn);
    free(e->external_id);
    free(e->region);
    s_wipe(e, sizeof *e);
    free(e);
}

/* Under s_lock. */
static struct cred_entry *s_entry_get(const char *role_arn, const char *external_id,
                                      const char *region)
{
    for (struct cred_entry *e = s_entries; e; e = e->next)
        if (s_str_eq(e->role_arn, role_arn) && s_str_eq(e->external_id, external_id) &&
            s_str_eq(e->region, region))
            return e;
    struct cred_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->role_arn = role_arn ? strdup(role_arn) : NULL;
    e->external_id = external_id ? strdup(external_id) : NULL;
    e->region = region ? strdup(region) : NULL;
    if ((role_arn && !e->role_arn) || (external_id && !e->external_id) ||
        (region && !e->region)) {
        s_entry_free(e);
        return NULL;
    }
    e->next = s_entries;
    s_entries = e;
    return e;
}

/* Refresh when less than the margin is left; long-term keys never. */
static int s_due(const struct cred_entry *e, int64_t now)
{
    return !e->have || (e->creds.expires_ms && e->creds.expires_ms - now < e->margin_ms);
}

/* Good enough to hand out while a refresh is failing or under way. */
static int s_usable(const struct cred_entry *e, int64_t now)
{
    if (!e->have)
        return 0;
    if (!e->creds.expires_ms)
        return 1;
    int64_t min_valid = e->margin_ms / 4 < MIN_VALID_MS ? e->margin_ms / 4 : MIN_VALID_MS;
    return e->creds.expires_ms - now > min_valid;
}

static int s_get(const char *role_arn, const char *external_id, const char *region,
                 int force, struct fanout_credentials *out, char *err, size_t err_len);

struct sts_call {
    const char *role_arn;
    const char *external_id;
    const char *region;       /* NULL: the configured one */
    int region_fallback;      /* no region configured: us-east-1 (profile roles) */
    const char *session_name; /* NULL: fanout-<function>-<pid> */
    long duration_s;          /* 0: FANOUT_ASSUME_ROLE_SECONDS */
    const struct fanout_credentials *base; /* NULL: the cached base chain */
    const char *web_token;                 /* AssumeRoleWithWebIdentity (unsigned) */
};

/* ---- STS AssumeRole ----------------------------------------------------- */

static int s_form_append(struct fanout_buf *b, const char *name, const char *value)
{
    static const char s_hex[] = "0123456789ABCDEF";
    int rc = fanout_buf_appendf(b, "%s%s=", b->len ? "&" : "", name);
    for (const unsigned char *p = (const unsigned char *)value; *p && rc == 0; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
            (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            rc = fanout_buf_append_byte(b, *p);
        } else {
            char enc[3] = {'%', s_hex[*p >> 4], s_hex[*p & 15]};
            rc = fanout_buf_append(b, enc, 3);
        }
    }
    return rc;
}

/* fanout-<function name or "local">-<pid>, in RoleSessionName's alphabet
 * [\w+=,.@-] and at most 64 characters; the name is cut, not the pid, so
 * sessions of concurrent environments stay apart in CloudTrail. */
static void s_session_name(char out[SESSION_NAME_MAX + 1])
{
    const char *fn = s_env("AWS_LAMBDA_FUNCTION_NAME");
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

static int s_sts_parse(const char *xml, size_t n, const char *action, const char *role_arn,
                       struct fanout_credentials *out, char *err, size_t err_len)
{
    const char *result = xml, *creds;
    size_t result_len = n, creds_len;
    const char *r;
    size_t rl;
    char result_name[64];
    snprintf(result_name, sizeof result_name, "%sResult", action);
    if (s_xml_find(xml, n, result_name, &r, &rl)) {
        result = r;
        result_len = rl;
    }
    if (!s_xml_find(result, result_len, "Credentials", &creds, &creds_len)) {
        s_set_err(err, err_len, "%s %s: the reply has no Credentials", action, role_arn);
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
        int rc = s_xml_field(creds, creds_len, s_names[i], dst[i], cap[i]);
        if (rc != 0 || !*dst[i]) {
            s_wipe(out, sizeof *out);
            s_set_err(err, err_len, "%s %s: the reply's Credentials %s %s", action,
                      role_arn, rc < 0 ? "has too long a" : "lack", s_names[i]);
            return -1;
        }
    }
    if (s_parse_iso8601(exp, &out->expires_ms)) {
        s_wipe(out, sizeof *out);
        s_set_err(err, err_len, "%s %s: Expiration \"%.40s\" is not ISO 8601", action,
                  role_arn, exp);
        return -1;
    }
    return 0;
}

/* The error of an STS reply: <Error><Code>, <Message>. */
static void s_sts_error(const struct fanout_http_response *resp, const char *const *secrets,
                        size_t secret_count, const char *key_id, char *code,
                        size_t code_len, char *msg, size_t msg_len)
{
    const char *xml = resp->body.ptr ? (const char *)resp->body.ptr : "";
    size_t n = resp->body.len;
    const char *e;
    size_t el;
    *code = *msg = 0;
    if (!s_xml_find(xml, n, "Error", &e, &el)) {
        e = xml;
        el = n;
    }
    char raw_code[128] = "";
    if (s_xml_field(e, el, "Code", raw_code, sizeof raw_code) == 0)
        s_server_text(raw_code, strlen(raw_code), secrets, secret_count, key_id, code,
                      code_len);
    const char *m;
    size_t ml;
    if (s_xml_find(e, el, "Message", &m, &ml)) {
        struct fanout_buf b = {0};
        s_xml_text(m, ml, &b);
        if (b.ptr)
            s_server_text((const char *)b.ptr, b.len, secrets, secret_count, key_id, msg,
                          msg_len);
        s_wipe(b.ptr, b.len);
        fanout_buf_free(&b);
    }
}

/* One STS call: AssumeRole signed with the base credentials (c->base, or
 * the cached base chain), or AssumeRoleWithWebIdentity (unsigned, with
 * c->web_token). Retried here within the deadline (nothing above retries
 * credentials). */
static int s_sts_call(const struct sts_call *c, struct fanout_credentials *out, char *err,
                      size_t err_len)
{
    const char *role_arn = c->role_arn, *external_id = c->external_id;
    const char *action = c->web_token ? "AssumeRoleWithWebIdentity" : "AssumeRole";
    long duration = c->duration_s;
    struct fanout_retry_policy policy;
    char region[64], url[1024], scheme[16], host[512], base_path[512], path[520];
    if (strncmp(role_arn, "arn:", 4) != 0) {
        s_set_err(err, err_len, "AssumeRole: \"%.200s\" is not a role ARN", role_arn);
        return -1;
    }
    if ((!duration && s_env_int("FANOUT_ASSUME_ROLE_SECONDS", DEFAULT_DURATION_S,
                                MIN_DURATION_S, MAX_DURATION_S, &duration, err, err_len)) ||
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
        s_set_err(err, err_len, "%s %s: bad STS endpoint %.300s", action, role_arn, url);
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
    if (s_form_append(&body, "Action", action) ||
        s_form_append(&body, "Version", STS_VERSION) ||
        s_form_append(&body, "RoleArn", role_arn) ||
        s_form_append(&body, "RoleSessionName", session) ||
        s_form_append(&body, "DurationSeconds", dur) ||
        (external_id && s_form_append(&body, "ExternalId", external_id)) ||
        (c->web_token && s_form_append(&body, "WebIdentityToken", c->web_token))) {
        fanout_buf_free(&body);
        s_set_err(err, err_len, "out of memory");
        return -1;
    }

    unsigned seed = s_seed();
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
        } else if (s_get(NULL, NULL, NULL, base_forced == 1, &base, base_err,
                         sizeof base_err)) {
            s_set_err(err, err_len, "%s %s: no base credentials: %s", action, role_arn,
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
            s_wipe(&base, sizeof base);
            s_set_err(err, err_len, "%s %s: signing failed", action, role_arn);
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
            .timeout_ms = s_timeout_ms(policy.request_timeout_ms),
        };
        struct fanout_http_response resp;
        s_perform(&req, &resp);

        if (resp.status >= 200 && resp.status < 300) {
            rc = s_sts_parse(resp.body.ptr ? (const char *)resp.body.ptr : "",
                             resp.body.len, action, role_arn, out, err, err_len);
            s_response_clean_up(&resp);
            s_wipe(&base, sizeof base);
            s_wipe(&sig, sizeof sig);
            break;
        }
        char code[128] = "", msg[SERVER_MESSAGE_MAX + 8] = "";
        const char *secrets[5] = {base.secret_access_key, base.session_token,
                                  sig.authorization, sig.signature,
                                  c->web_token ? c->web_token : ""};
        if (resp.status)
            s_sts_error(&resp, secrets, 5, base.access_key_id, code, sizeof code, msg,
                        sizeof msg);
        enum fanout_retry_class cls =
            fanout_retry_classify(resp.status, code[0] ? code : NULL, (int)resp.error);
        s_wipe(&base, sizeof base);
        s_wipe(&sig, sizeof sig);
        if (cls == FANOUT_RETRY_EXPIRED && base_forced == 0 && !c->base && !c->web_token &&
            attempt < policy.max_attempts) {
            /* The base credentials were refused as expired: fetch them
             * again, once, and retry at once. */
            LOG_WARN(LOG_SCOPE, "%s %s: %s; refreshing the base credentials", action,
                     role_arn, code);
            base_forced = 1;
            s_response_clean_up(&resp);
            continue;
        }
        unsigned delay;
        if (s_may_retry(&policy, cls, attempt, &seed, &delay)) {
            LOG_DEBUG(LOG_SCOPE, "%s %s: attempt %u: %s%s%s; retrying in %u ms", action,
                      role_arn, attempt,
                      resp.status ? (code[0] ? code : "error") : "no response",
                      resp.status ? "" : ": ", resp.status ? "" : resp.error_text, delay);
            s_response_clean_up(&resp);
            s_sleep_ms(delay);
            continue;
        }
        char tries[48] = "";
        if (attempt > 1)
            snprintf(tries, sizeof tries, " after %u attempts", attempt);
        if (resp.status)
            s_set_err(err, err_len, "%s %s failed%s: %s%s%s (HTTP %ld)", action, role_arn,
                      tries, code[0] ? code : "error", msg[0] ? ": " : "", msg,
                      resp.status);
        else
            s_set_err(err, err_len, "%s %s failed%s: no response from %s: %s", action,
                      role_arn, tries, host, resp.error_text);
        s_response_clean_up(&resp);
        break;
    }
    fanout_buf_free(&body);
    if (rc == 0) {
        char hint[16], until[32];
        s_key_hint(out->access_key_id, hint);
        s_format_time(out->expires_ms, until);
        LOG_DEBUG(LOG_SCOPE, "%s: assumed %s%s (key %s) until %s", action, role_arn,
                  external_id ? " with an external id" : "", hint, until);
    }
    return rc;
}

static int s_assume_role(const char *role_arn, const char *external_id,
                         const char *region_in, struct fanout_credentials *out, char *err,
                         size_t err_len)
{
    struct sts_call c = {
        .role_arn = role_arn, .external_id = external_id, .region = region_in};
    return s_sts_call(&c, out, err, err_len);
}

/* ---- profiles: assume role, web identity, SSO, credential_process ------- */

/* The aws command's precedence (botocore's create_credential_resolver):
 * environment; the profile's role (role_arn with source_profile or
 * credential_source, unless it has web_identity_token_file); then the
 * profile's own providers: web identity, IAM Identity Center (SSO), the
 * shared credentials file's keys, credential_process, the config file's
 * keys; then container credentials; then the EC2 instance metadata
 * service. A profile's keys are looked up in the credentials file first,
 * then in the config file (the credentials file's values win). */

#define MAX_CHAIN          16
#define WEB_TOKEN_MAX      (64 * 1024)
#define SSO_CACHE_MAX      (1024 * 1024)
#define PROCESS_OUTPUT_MAX (64 * 1024)
#define PROCESS_TIMEOUT_S  60
#define IMDS_HOST          "http://169.254.169.254"
#define IMDS_TOKEN_TTL     "21600"
#define IMDS_TIMEOUT_S     1
#define IMDS_BODY_MAX      (64 * 1024)

struct chain_ctx {
    const char *visited[MAX_CHAIN];
    size_t n;
};

static int s_imds_fetch(struct fanout_credentials *out, char *err, size_t err_len);

static char *s_pv(const char *profile, const char *key)
{
    char *v = fanout_aws_profile_value(1, profile, key);
    return v ? v : fanout_aws_profile_value(0, profile, key);
}

static int s_has(const char *profile, const char *key)
{
    char *v = s_pv(profile, key);
    int has = v != NULL;
    s_free_secret(v);
    return has;
}

static int s_has_static(const char *profile)
{
    return s_has(profile, "aws_access_key_id") || s_has(profile, "aws_secret_access_key");
}

static int s_has_role(const char *profile)
{
    return s_has(profile, "role_arn") && !s_has(profile, "web_identity_token_file");
}

/* A whole small file, NUL-terminated, or NULL with err. */
static char *s_slurp(const char *path, size_t max, const char *what, size_t *len, char *err,
                     size_t err_len)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        s_set_err(err, err_len, "cannot read %s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    char *buf = calloc(1, max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int bad = buf && (ferror(f) || n > max);
    fclose(f);
    if (!buf || bad) {
        s_free_secret(buf);
        s_set_err(err, err_len, "cannot read %s %s: %s", what, path,
                  buf ? "unreadable or larger than the limit" : "out of memory");
        return NULL;
    }
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

/* AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN / AWS_ROLE_SESSION_NAME (each
 * before its profile key web_identity_token_file / role_arn /
 * role_session_name, unless `use_env` is 0: a source profile), then STS
 * AssumeRoleWithWebIdentity, unsigned. */
static int s_web_identity_fetch(const char *profile, int use_env,
                                struct fanout_credentials *out, char *err, size_t err_len)
{
    char *file = NULL, *role = NULL, *session = NULL;
    const char *v;
    if (use_env && (v = s_env("AWS_WEB_IDENTITY_TOKEN_FILE")) != NULL)
        file = strdup(v);
    else
        file = s_pv(profile, "web_identity_token_file");
    if (!file || !*file) {
        free(file);
        return S_NOT_FOUND;
    }
    if (use_env && (v = s_env("AWS_ROLE_ARN")) != NULL)
        role = strdup(v);
    else
        role = s_pv(profile, "role_arn");
    if (use_env && (v = s_env("AWS_ROLE_SESSION_NAME")) != NULL)
        session = strdup(v);
    else
        session = s_pv(profile, "role_session_name");
    int rc = S_ERROR;
    char *token = NULL;
    if (!role || !*role) {
        s_set_err(
            err, err_len,
            "web identity: a token file is set (%.200s) but no role: set AWS_ROLE_ARN "
            "or role_arn in profile \"%s\"",
            file, profile);
        goto done;
    }
    size_t n = 0;
    token = s_slurp(file, WEB_TOKEN_MAX, "the web identity token file", &n, err, err_len);
    if (!token)
        goto done;
    while (n > 0 && strchr("\r\n \t", token[n - 1]))
        token[--n] = 0;
    if (n == 0) {
        s_set_err(err, err_len, "web identity token file %.200s is empty", file);
        goto done;
    }
    struct sts_call c = {.role_arn = role,
                         .session_name = session && *session ? session : NULL,
                         .web_token = token,
                         .region_fallback = 1};
    rc = s_sts_call(&c, out, err, err_len) ? S_ERROR : S_FOUND;
done:
    s_free_secret(token);
    free(file);
    free(role);
    free(session);
    return rc;
}

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
    const char *home = s_env("HOME");
    if (!home) {
        s_set_err(err, err_len,
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
    char *text = s_slurp(path, SSO_CACHE_MAX, "the SSO token cache", &n, rerr, sizeof rerr);
    if (!text) {
        s_set_err(err, err_len,
                  "SSO profile \"%s\": no cached token (%s); run `aws sso login --profile "
                  "%s`",
                  profile, rerr, profile);
        return NULL;
    }
    json_t *j = json_loadb(text, n, 0, NULL);
    s_free_secret(text);
    const char *tok = json_string_value(json_object_get(j, "accessToken"));
    const char *exp = json_string_value(json_object_get(j, "expiresAt"));
    char *res = NULL;
    int64_t exp_ms = 0;
    if (!tok || !*tok || !exp) {
        s_set_err(err, err_len,
                  "SSO profile \"%s\": the token cache %s lacks accessToken or expiresAt; "
                  "run `aws sso login --profile %s`",
                  profile, path, profile);
    } else if (s_parse_iso8601(exp, &exp_ms)) {
        s_set_err(err, err_len,
                  "SSO profile \"%s\": expiresAt \"%.40s\" in %s is not ISO 8601", profile,
                  exp, path);
    } else if (exp_ms <= s_now_ms()) {
        s_set_err(
            err, err_len,
            "SSO profile \"%s\": the SSO session expired at %.40s; run `aws sso login "
            "--profile %s`",
            profile, exp, profile);
    } else if (strpbrk(tok, "\r\n")) {
        s_set_err(err, err_len, "SSO profile \"%s\": the cached token has a line break",
                  profile);
    } else {
        res = strdup(tok);
        if (!res)
            s_set_err(err, err_len, "out of memory");
    }
    if (tok)
        s_wipe((void *)tok, strlen(tok));
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
        s_set_err(err, err_len,
                  "SSO profile \"%s\": GetRoleCredentials' reply lacks roleCredentials "
                  "(accessKeyId, secretAccessKey, sessionToken, expiration in ms)",
                  profile);
    } else if (s_fill(out, "sso", id, secret, token, err, err_len) == 0) {
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
static int s_sso_fetch(const char *profile, struct fanout_credentials *out, char *err,
                       size_t err_len)
{
    char *account = s_pv(profile, "sso_account_id");
    char *role = s_pv(profile, "sso_role_name");
    if (!account && !role)
        return S_NOT_FOUND;
    char *session = s_pv(profile, "sso_session");
    char *start = s_pv(profile, "sso_start_url");
    char *region = s_pv(profile, "sso_region");
    char *token = NULL;
    int rc = S_ERROR;
    if (session) {
        char *s_start = fanout_aws_sso_session_value(session, "sso_start_url");
        char *s_region = fanout_aws_sso_session_value(session, "sso_region");
        if (!s_start) {
            s_set_err(err, err_len,
                      "The specified sso-session does not exist: \"%.100s\" "
                      "(profile \"%s\"; no [sso-session %.100s] in %s)",
                      session, profile, session, s_file_name(0));
            free(s_region);
            goto done;
        }
        const char *names[2] = {"sso_start_url", "sso_region"};
        char **mine[2] = {&start, &region};
        char *theirs[2] = {s_start, s_region};
        for (int i = 0; i < 2; i++) {
            if (theirs[i] && *theirs[i] && *mine[i] && strcmp(*mine[i], theirs[i]) != 0) {
                s_set_err(err, err_len,
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
        s_set_err(err, err_len,
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
    if (s_form_append(&query, "account_id", account) ||
        s_form_append(&query, "role_name", role) || fanout_buf_append(&query, "", 0) ||
        fanout_buf_appendf(&url, "%s/federation/credentials?%s", base,
                           (const char *)query.ptr) ||
        fanout_buf_append(&url, "", 0)) {
        fanout_buf_free(&query);
        fanout_buf_free(&url);
        s_set_err(err, err_len, "out of memory");
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
        .timeout_ms = s_timeout_ms(policy.request_timeout_ms),
    };
    unsigned seed = s_seed();
    for (unsigned attempt = 1;; attempt++) {
        struct fanout_http_response resp;
        s_perform(&hreq, &resp);
        if (resp.status == 200) {
            rc = s_sso_parse(&resp, profile, out, err, err_len) ? S_ERROR : S_FOUND;
            s_response_clean_up(&resp);
            break;
        }
        enum fanout_retry_class cls =
            fanout_retry_classify(resp.status, NULL, (int)resp.error);
        unsigned delay;
        if (s_may_retry(&policy, cls, attempt, &seed, &delay)) {
            s_response_clean_up(&resp);
            s_sleep_ms(delay);
            continue;
        }
        if (resp.status) {
            char said[SERVER_MESSAGE_MAX + 8] = "";
            json_t *j = json_loadb(resp.body.ptr ? (const char *)resp.body.ptr : "",
                                   resp.body.len, 0, NULL);
            const char *msg = json_string_value(json_object_get(j, "message"));
            const char *secrets[1] = {token};
            if (msg)
                s_server_text(msg, strlen(msg), secrets, 1, NULL, said, sizeof said);
            json_decref(j);
            s_set_err(err, err_len,
                      "SSO profile \"%s\": GetRoleCredentials (account %.20s, role %.64s) "
                      "failed: HTTP %ld%s%s%s",
                      profile, account, role, resp.status, said[0] ? ": " : "", said,
                      resp.status == 401 || resp.status == 403
                          ? "; the SSO session may have ended: run `aws sso login`"
                          : "");
        } else {
            s_set_err(err, err_len,
                      "SSO profile \"%s\": GetRoleCredentials: no response after %u "
                      "attempt%s: %s",
                      profile, attempt, attempt == 1 ? "" : "s", resp.error_text);
        }
        s_response_clean_up(&resp);
        break;
    }
    fanout_buf_free(&url);
done:
    s_free_secret(token);
    free(account);
    free(role);
    free(session);
    free(start);
    free(region);
    return rc;
}

/* ---- credential_process ---- */

/* Python's shlex.split (POSIX mode, no comments), as botocore splits the
 * command: words separated by blanks, '...' literal, "..." with \" and \\
 * escapes, \ escaping any character outside quotes. NULL with err. */
static char **s_shell_split(const char *cmd, char *err, size_t err_len)
{
    size_t cap = 8, n = 0;
    char **argv = calloc(cap, sizeof *argv);
    char *word = malloc(strlen(cmd) + 1);
    if (!argv || !word)
        goto oom;
    const char *p = cmd;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p)
            break;
        size_t w = 0;
        while (*p && !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
            if (*p == '\\') {
                if (!p[1]) {
                    s_set_err(err, err_len, "credential_process: No escaped character");
                    goto fail;
                }
                word[w++] = p[1];
                p += 2;
            } else if (*p == '\'') {
                const char *close = strchr(p + 1, '\'');
                if (!close) {
                    s_set_err(err, err_len, "credential_process: No closing quotation");
                    goto fail;
                }
                memcpy(word + w, p + 1, (size_t)(close - p - 1));
                w += (size_t)(close - p - 1);
                p = close + 1;
            } else if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                        p++;
                    word[w++] = *p++;
                }
                if (*p != '"') {
                    s_set_err(err, err_len, "credential_process: No closing quotation");
                    goto fail;
                }
                p++;
            } else {
                word[w++] = *p++;
            }
        }
        if (n + 2 > cap) {
            char **g = realloc(argv, 2 * cap * sizeof *argv);
            if (!g)
                goto oom;
            argv = g;
            cap *= 2;
        }
        argv[n] = malloc(w + 1);
        if (!argv[n])
            goto oom;
        memcpy(argv[n], word, w);
        argv[n][w] = 0;
        argv[++n] = NULL;
    }
    free(word);
    if (n == 0) {
        s_set_err(err, err_len, "credential_process is empty");
        free(argv);
        return NULL;
    }
    return argv;
oom:
    s_set_err(err, err_len, "out of memory");
fail:
    free(word);
    if (argv)
        for (size_t i = 0; i < n; i++)
            free(argv[i]);
    free(argv);
    return NULL;
}

static void s_argv_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether `cmd` names an executable file (searched in PATH when it has no
 * '/', as execvp does), so that a wrong command is said as such rather than
 * as the child's exit status 127. */
static int s_executable(const char *cmd)
{
    struct stat st;
    if (strchr(cmd, '/'))
        return stat(cmd, &st) == 0 && S_ISREG(st.st_mode) && access(cmd, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char full[4096];
    for (const char *p = path;; p++) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        snprintf(full, sizeof full, "%.*s/%s", (int)n, n ? p : ".", cmd);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
            return 1;
        if (!end)
            return 0;
        p = end;
    }
}

/* Run argv (no shell, PATH searched) with stdout on a pipe; stdin and
 * stderr are ours. Reads at most PROCESS_OUTPUT_MAX bytes within
 * timeout_ms; the process is killed when it overruns either. */
static int s_run(char **argv, int64_t timeout_ms, struct fanout_buf *outb, int *status,
                 char *err, size_t err_len)
{
    if (!s_executable(argv[0])) {
        s_set_err(err, err_len, "credential_process: cannot run %.200s: %s", argv[0],
                  strchr(argv[0], '/') ? "not an executable file" : "not found in PATH");
        return -1;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC)) {
        s_set_err(err, err_len, "credential_process: pipe: %s", strerror(errno));
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        s_set_err(err, err_len, "credential_process: cannot run %.200s: %s", argv[0],
                  strerror(rc));
        return -1;
    }
    int64_t until = s_mono_ms() + timeout_ms;
    const char *why = NULL;
    for (;;) {
        int64_t left = until - s_mono_ms();
        if (left <= 0) {
            why = "timed out";
            break;
        }
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        char chunk[4096];
        ssize_t r = read(fds[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (outb->len + (size_t)r > PROCESS_OUTPUT_MAX) {
            why = "wrote more than 64 KiB";
            break;
        }
        if (fanout_buf_append(outb, chunk, (size_t)r)) {
            why = "out of memory";
            break;
        }
    }
    close(fds[0]);
    if (why)
        kill(pid, SIGKILL);
    /* Its stdout is closed: wait for the exit within the time left. */
    int st = 0;
    pid_t w;
    while ((w = waitpid(pid, &st, WNOHANG)) == 0) {
        if (!why && s_mono_ms() > until) {
            why = "timed out";
            kill(pid, SIGKILL);
        }
        s_sleep_ms(2);
    }
    if (why) {
        s_set_err(err, err_len, "credential_process %.200s %s (limit %" PRId64 " ms)",
                  argv[0], why, timeout_ms);
        return -1;
    }
    *status = st;
    return 0;
}

static int s_process_fetch(const char *profile, struct fanout_credentials *out, char *err,
                           size_t err_len)
{
    char *cmd = s_pv(profile, "credential_process");
    if (!cmd)
        return S_NOT_FOUND;
    long timeout_s;
    char **argv = NULL;
    if (s_env_int("FANOUT_CREDENTIAL_PROCESS_TIMEOUT_SECONDS", PROCESS_TIMEOUT_S, 1, 3600,
                  &timeout_s, err, err_len) ||
        !(argv = s_shell_split(cmd, err, err_len))) {
        free(cmd);
        return S_ERROR;
    }
    free(cmd);
    struct fanout_buf outb = {0};
    int status = 0, rc = S_ERROR;
    if (s_run(argv, s_timeout_ms((int64_t)timeout_s * 1000), &outb, &status, err,
              err_len) == 0) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            s_set_err(err, err_len, "credential_process %.200s (profile \"%s\") %s %d",
                      argv[0], profile,
                      WIFEXITED(status) ? "exited with status" : "was killed by signal",
                      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        } else {
            json_t *j =
                json_loadb(outb.ptr ? (const char *)outb.ptr : "", outb.len, 0, NULL);
            json_t *ver = json_object_get(j, "Version");
            const char *id = json_string_value(json_object_get(j, "AccessKeyId"));
            const char *secret = json_string_value(json_object_get(j, "SecretAccessKey"));
            const char *token = json_string_value(json_object_get(j, "SessionToken"));
            const char *exp = json_string_value(json_object_get(j, "Expiration"));
            if (!json_is_object(j)) {
                s_set_err(err, err_len,
                          "credential_process %.200s (profile \"%s\"): the output is not a "
                          "JSON object",
                          argv[0], profile);
            } else if (!json_is_integer(ver) || json_integer_value(ver) != 1) {
                s_set_err(err, err_len,
                          "credential_process %.200s (profile \"%s\"): Unsupported version "
                          "for credential process provider; expected \"Version\": 1",
                          argv[0], profile);
            } else if (!id || !*id || !secret || !*secret) {
                s_set_err(err, err_len,
                          "credential_process %.200s (profile \"%s\"): the output lacks %s",
                          argv[0], profile,
                          !id || !*id ? "AccessKeyId" : "SecretAccessKey");
            } else if (s_fill(out, "process", id, secret, token && *token ? token : NULL,
                              err, err_len) == 0) {
                if (exp && s_parse_iso8601(exp, &out->expires_ms)) {
                    s_wipe(out, sizeof *out);
                    s_set_err(err, err_len,
                              "credential_process %.200s (profile \"%s\"): Expiration "
                              "\"%.40s\" is not ISO 8601",
                              argv[0], profile, exp);
                } else {
                    rc = S_FOUND;
                }
            }
            if (j)
                json_object_clear(j);
            json_decref(j);
        }
    }
    s_wipe(outb.ptr, outb.len);
    fanout_buf_free(&outb);
    s_argv_free(argv);
    return rc;
}

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
        .timeout_ms = s_timeout_ms(timeout_ms),
        .connect_timeout_ms = timeout_ms,
    };
    s_perform(&req, resp);
}

/* The instance profile's credentials: PUT /latest/api/token, then
 * /latest/meta-data/iam/security-credentials/ and /<role>. Unreachable, or
 * no role attached: S_NOT_FOUND (it is last in the chain, and must not slow
 * down a machine without it: 1 s per request, 1 attempt, as botocore's
 * AWS_METADATA_SERVICE_TIMEOUT / AWS_METADATA_SERVICE_NUM_ATTEMPTS). */
static int s_imds_fetch(struct fanout_credentials *out, char *err, size_t err_len)
{
    const char *off = s_env("AWS_EC2_METADATA_DISABLED");
    if (off && strcasecmp(off, "true") == 0)
        return S_NOT_FOUND;
    long timeout_s, attempts;
    if (s_env_int("AWS_METADATA_SERVICE_TIMEOUT", IMDS_TIMEOUT_S, 1, 60, &timeout_s, err,
                  err_len) ||
        s_env_int("AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1, 1, 10, &attempts, err, err_len))
        return S_ERROR;
    const char *host = s_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (!host)
        host = IMDS_HOST;
    size_t hl = strlen(host);
    while (hl > 0 && host[hl - 1] == '/')
        hl--;
    if (hl > 512 ||
        (strncasecmp(host, "http://", 7) != 0 && strncasecmp(host, "https://", 8) != 0)) {
        s_set_err(err, err_len,
                  "AWS_EC2_METADATA_SERVICE_ENDPOINT must be an http(s) URL of at most 512 "
                  "bytes");
        return S_ERROR;
    }
    int64_t tmo = (int64_t)timeout_s * 1000;
    char url[1200];
    char *token = NULL;
    struct fanout_http_response resp;
    int rc = S_NOT_FOUND;
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
            .timeout_ms = s_timeout_ms(tmo),
            .connect_timeout_ms = tmo,
        };
        s_perform(&treq, &resp);
        if (resp.status == 200 && resp.body.len > 0 && resp.body.len < 4096 &&
            !memchr(resp.body.ptr, '\n', resp.body.len) &&
            !memchr(resp.body.ptr, '\r', resp.body.len)) {
            free(token);
            token = strndup((const char *)resp.body.ptr, resp.body.len);
        } else if (resp.status == 0 || resp.status >= 500) {
            LOG_DEBUG(LOG_SCOPE, "instance metadata %.*s: %s", (int)hl, host,
                      resp.status ? "server error" : resp.error_text);
            s_response_clean_up(&resp);
            continue;
        } else if (resp.status != 403 && resp.status != 404 && resp.status != 405) {
            s_set_err(err, err_len,
                      "instance metadata %.*s: token request answered HTTP %ld", (int)hl,
                      host, resp.status);
            s_response_clean_up(&resp);
            rc = S_ERROR;
            break;
        } /* else IMDSv1: no token */
        s_response_clean_up(&resp);

        snprintf(url, sizeof url, "%.*s/latest/meta-data/iam/security-credentials/",
                 (int)hl, host);
        s_imds_get(url, token, tmo, &resp);
        if (resp.status == 404) {
            LOG_DEBUG(LOG_SCOPE, "instance metadata %.*s: no role attached", (int)hl, host);
            s_response_clean_up(&resp);
            break;
        }
        if (resp.status != 200) {
            LOG_DEBUG(LOG_SCOPE, "instance metadata %.*s: role list: HTTP %ld %s", (int)hl,
                      host, resp.status, resp.status ? "" : resp.error_text);
            s_response_clean_up(&resp);
            continue;
        }
        size_t rl = 0;
        const char *b = resp.body.ptr ? (const char *)resp.body.ptr : "";
        while (rl < resp.body.len && b[rl] != '\n' && b[rl] != '\r')
            rl++;
        if (rl == 0 || rl >= sizeof role || memchr(b, '/', rl) || memchr(b, '?', rl) ||
            memchr(b, '#', rl)) {
            s_set_err(err, err_len, "instance metadata %.*s: the role name is %s", (int)hl,
                      host, rl == 0 ? "empty" : "not a role name");
            s_response_clean_up(&resp);
            rc = S_ERROR;
            break;
        }
        memcpy(role, b, rl);
        role[rl] = 0;
        s_response_clean_up(&resp);

        snprintf(url, sizeof url, "%.*s/latest/meta-data/iam/security-credentials/%s",
                 (int)hl, host, role);
        s_imds_get(url, token, tmo, &resp);
        if (resp.status != 200) {
            LOG_DEBUG(LOG_SCOPE, "instance metadata %.*s: credentials of %s: HTTP %ld %s",
                      (int)hl, host, role, resp.status, resp.status ? "" : resp.error_text);
            s_response_clean_up(&resp);
            continue;
        }
        json_t *j = json_loadb(resp.body.ptr ? (const char *)resp.body.ptr : "",
                               resp.body.len, 0, NULL);
        const char *code = json_string_value(json_object_get(j, "Code"));
        const char *id = json_string_value(json_object_get(j, "AccessKeyId"));
        const char *secret = json_string_value(json_object_get(j, "SecretAccessKey"));
        const char *tok = json_string_value(json_object_get(j, "Token"));
        const char *exp = json_string_value(json_object_get(j, "Expiration"));
        rc = S_ERROR;
        if (code && strcmp(code, "Success") != 0) {
            s_set_err(err, err_len, "instance metadata %.*s: role %s: Code %.64s", (int)hl,
                      host, role, code);
        } else if (!id || !*id || !secret || !*secret || !tok || !*tok || !exp) {
            s_set_err(err, err_len,
                      "instance metadata %.*s: role %s: the reply lacks AccessKeyId, "
                      "SecretAccessKey, Token or Expiration",
                      (int)hl, host, role);
        } else if (s_fill(out, "instance-metadata", id, secret, tok, err, err_len) == 0) {
            if (s_parse_iso8601(exp, &out->expires_ms)) {
                s_wipe(out, sizeof *out);
                s_set_err(err, err_len,
                          "instance metadata %.*s: Expiration \"%.40s\" is not ISO 8601",
                          (int)hl, host, exp);
            } else {
                rc = S_FOUND;
            }
        }
        if (j)
            json_object_clear(j);
        json_decref(j);
        s_response_clean_up(&resp);
        break;
    }
    s_free_secret(token);
    return rc;
}

/* ---- the profile chain ---- */

/* botocore's ProfileProviderBuilder: the providers that read one profile. */
static int s_profile_providers(const char *profile, int use_env,
                               struct fanout_credentials *out, char *err, size_t err_len)
{
    int rc = s_web_identity_fetch(profile, use_env, out, err, err_len);
    if (rc == S_NOT_FOUND)
        rc = s_sso_fetch(profile, out, err, err_len);
    if (rc == S_NOT_FOUND)
        rc = s_profile_keys(1, profile, out, err, err_len);
    if (rc == S_NOT_FOUND)
        rc = s_process_fetch(profile, out, err, err_len);
    if (rc == S_NOT_FOUND)
        rc = s_profile_keys(0, profile, out, err, err_len);
    return rc;
}

static void s_visited_text(const struct chain_ctx *ctx, char *out, size_t len)
{
    out[0] = 0;
    for (size_t i = 0; i < ctx->n; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s%.64s", i ? " -> " : "",
                 ctx->visited[i]);
}

/* A profile with role_arn (and no web_identity_token_file): its source
 * credentials (credential_source, or source_profile: keys, its own
 * providers, or a role it assumes in turn), then STS AssumeRole. */
static int s_role_profile(const char *profile, struct chain_ctx *ctx,
                          struct fanout_credentials *out, char *err, size_t err_len)
{
    char *role = s_pv(profile, "role_arn");
    char *mfa = s_pv(profile, "mfa_serial");
    char *sp = s_pv(profile, "source_profile");
    char *cs = s_pv(profile, "credential_source");
    char *ext = s_pv(profile, "external_id");
    char *session = s_pv(profile, "role_session_name");
    char *dur = s_pv(profile, "duration_seconds");
    struct fanout_credentials base;
    memset(&base, 0, sizeof base);
    int rc = S_ERROR;
    if (mfa) {
        s_set_err(err, err_len,
                  "profile \"%s\" assumes %.200s with mfa_serial %.200s: fanout cannot ask "
                  "for an MFA code; use a profile without mfa_serial (or export the "
                  "credentials of `aws sts assume-role ... --serial-number --token-code` "
                  "in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN)",
                  profile, role, mfa);
        goto done;
    }
    if (sp && cs) {
        s_set_err(err, err_len,
                  "The profile \"%s\" contains both source_profile and credential_source.",
                  profile);
        goto done;
    }
    if (!sp && !cs) {
        s_set_err(err, err_len,
                  "profile \"%s\" has role_arn %.200s but neither source_profile nor "
                  "credential_source",
                  profile, role);
        goto done;
    }
    int src;
    if (cs) {
        if (strcmp(cs, "Environment") == 0)
            src = s_env_fetch(&base, err, err_len);
        else if (strcmp(cs, "Ec2InstanceMetadata") == 0)
            src = s_imds_fetch(&base, err, err_len);
        else if (strcmp(cs, "EcsContainer") == 0)
            src = s_container_fetch(&base, err, err_len);
        else {
            s_set_err(err, err_len,
                      "The credential source \"%.64s\" referenced in profile \"%s\" is not "
                      "valid (Environment, Ec2InstanceMetadata or EcsContainer)",
                      cs, profile);
            goto done;
        }
        if (src == S_NOT_FOUND)
            s_set_err(err, err_len,
                      "No credentials found in credential_source %s referenced in profile "
                      "\"%s\"",
                      cs, profile);
    } else {
        int seen = 0;
        for (size_t i = 0; i < ctx->n; i++)
            seen |= strcmp(ctx->visited[i], sp) == 0;
        if (seen && (strcmp(sp, profile) != 0 || !s_has_static(sp))) {
            char path[600];
            s_visited_text(ctx, path, sizeof path);
            s_set_err(err, err_len,
                      "Infinite loop in credential configuration detected. Attempting to "
                      "load from profile %.64s which has already been visited. Visited "
                      "profiles: %s",
                      sp, path);
            goto done;
        }
        if (ctx->n >= MAX_CHAIN) {
            s_set_err(err, err_len, "profile \"%s\": more than %d roles chained", profile,
                      MAX_CHAIN);
            goto done;
        }
        ctx->visited[ctx->n++] = sp;
        if (s_has_static(sp) || !s_has_role(sp))
            src = s_profile_providers(sp, 0, &base, err, err_len);
        else
            src = s_role_profile(sp, ctx, &base, err, err_len);
        if (src == S_NOT_FOUND)
            s_set_err(err, err_len,
                      "The source profile \"%.64s\" (of profile \"%s\") must have "
                      "credentials.",
                      sp, profile);
    }
    if (src != S_FOUND)
        goto done;
    long duration = 0;
    if (dur) {
        char *end;
        errno = 0;
        long d = strtol(dur, &end, 10);
        if (errno || end == dur || *end || d <= 0 || d > MAX_DURATION_S * 10)
            LOG_WARN(LOG_SCOPE,
                     "profile \"%s\": duration_seconds \"%.32s\" is not a number: ignored "
                     "(as the aws command does)",
                     profile, dur);
        else
            duration = d;
    }
    struct sts_call c = {
        .role_arn = role,
        .external_id = ext,
        .session_name = session && *session ? session : NULL,
        .duration_s = duration,
        .region_fallback = 1,
        .base = &base,
    };
    rc = s_sts_call(&c, out, err, err_len) ? S_ERROR : S_FOUND;
    if (rc == S_FOUND) {
        char hint[16];
        s_key_hint(base.access_key_id, hint);
        LOG_DEBUG(LOG_SCOPE, "profile \"%s\": assumed %s with the %s credentials (key %s)",
                  profile, role, base.source, hint);
    }
done:
    s_wipe(&base, sizeof base);
    free(role);
    free(mfa);
    free(sp);
    free(cs);
    s_free_secret(ext);
    free(session);
    free(dur);
    return rc;
}

static int s_env_provider(struct fanout_credentials *out, char *err, size_t err_len)
{
    return s_env_fetch(out, err, err_len);
}

static int s_profile_provider(struct fanout_credentials *out, char *err, size_t err_len)
{
    const char *profile = s_profile_name();
    if (s_has_role(profile)) {
        struct chain_ctx ctx = {{profile}, 1};
        return s_role_profile(profile, &ctx, out, err, err_len);
    }
    return s_profile_providers(profile, 1, out, err, err_len);
}

static int s_container_provider(struct fanout_credentials *out, char *err, size_t err_len)
{
    return s_container_fetch(out, err, err_len);
}

static const struct cred_provider s_providers[] = {
    {"environment", s_env_provider},
    {"profile", s_profile_provider},
    {"container", s_container_provider},
    {"instance metadata", s_imds_fetch},
};

static int s_chain_fetch(struct fanout_credentials *out, char *err, size_t err_len)
{
    for (size_t i = 0; i < sizeof s_providers / sizeof s_providers[0]; i++) {
        int rc = s_providers[i].fetch(out, err, err_len);
        if (rc == S_FOUND) {
            char hint[16];
            s_key_hint(out->access_key_id, hint);
            LOG_DEBUG(LOG_SCOPE, "credentials from the %s (%s, key %s)",
                      s_providers[i].name, out->source, hint);
            return 0;
        }
        if (rc == S_ERROR)
            return -1;
    }
    s_set_err(
        err, err_len,
        "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
        "or configure profile \"%s\" in %s or %s (keys, role_arn, sso, "
        "credential_process), web identity, container credentials, or run on EC2 with "
        "an instance profile",
        s_profile_name(), s_file_name(0), s_file_name(1));
    return -1;
}

/* ---- get ---------------------------------------------------------------- */

static int s_fetch(const struct cred_entry *e, struct fanout_credentials *out,
                   int64_t *margin, char *err, size_t err_len)
{
    long refresh_s;
    if (s_env_int("FANOUT_CREDENTIALS_REFRESH_SECONDS", DEFAULT_REFRESH_S, 0, MAX_REFRESH_S,
                  &refresh_s, err, err_len))
        return -1;
    int64_t now = s_now_ms();
    int rc = e->role_arn
                 ? s_assume_role(e->role_arn, e->external_id, e->region, out, err, err_len)
                 : s_chain_fetch(out, err, err_len);
    if (rc)
        return -1;
    if (out->expires_ms && out->expires_ms <= s_now_ms()) {
        char when[32];
        s_format_time(out->expires_ms, when);
        s_set_err(err, err_len, "credentials from %s%s%s expired at %s", out->source,
                  e->role_arn ? " for " : "", e->role_arn ? e->role_arn : "", when);
        s_wipe(out, sizeof *out);
        return -1;
    }
    *margin = (int64_t)refresh_s * 1000;
    if (out->expires_ms && (out->expires_ms - now) / 4 < *margin)
        *margin = (out->expires_ms - now) / 4;
    return 0;
}

static int s_get(const char *role_arn, const char *external_id, const char *region,
                 int force, struct fanout_credentials *out, char *err, size_t err_len)
{
    pthread_mutex_lock(&s_lock);
    struct cred_entry *e = s_entry_get(role_arn, external_id, region);
    if (!e) {
        pthread_mutex_unlock(&s_lock);
        s_set_err(err, err_len, "out of memory");
        return -1;
    }
    int64_t now = s_now_ms();
    if (!force && !s_due(e, now)) {
        *out = e->creds;
        pthread_mutex_unlock(&s_lock);
        return 0;
    }
    if (e->refreshing) {
        /* Someone is fetching: early, so keep using these; else wait and
         * take what the fetch gave (one fetch for all). */
        if (!force && s_usable(e, now)) {
            *out = e->creds;
            pthread_mutex_unlock(&s_lock);
            return 0;
        }
        uint64_t seen = e->refreshes;
        while (e->refreshing && e->refreshes == seen)
            pthread_cond_wait(&s_done, &s_lock);
        int rc = 0;
        if (!e->last_failed || (!force && s_usable(e, s_now_ms()))) {
            *out = e->creds;
        } else {
            s_set_err(err, err_len, "%s", e->last_err);
            rc = -1;
        }
        pthread_mutex_unlock(&s_lock);
        return rc;
    }
    if (e->last_failed && !s_usable(e, now) && now >= e->failed_ms &&
        now - e->failed_ms < FAILURE_HOLD_MS) {
        /* It failed a moment ago, and asking again at once would only
         * multiply the requests: the same answer, until the hold is over
         * (even for `force`: that fetch is as fresh as one can be). */
        s_set_err(err, err_len, "%s (failed %" PRId64 " ms ago; not asked again for %d s)",
                  e->last_err, now - e->failed_ms, FAILURE_HOLD_MS / 1000);
        pthread_mutex_unlock(&s_lock);
        return -1;
    }
    if (!force && s_usable(e, now) && now < e->retry_after_ms) {
        /* An early refresh failed a moment ago: not again yet. */
        *out = e->creds;
        pthread_mutex_unlock(&s_lock);
        return 0;
    }
    e->refreshing = 1;
    pthread_mutex_unlock(&s_lock);

    /* Fetch outside the lock: other keys are not held up, and callers of
     * this one wait on s_done. The key fields of `e` never change. */
    struct fanout_credentials fresh;
    char ferr[ERR_LEN] = "";
    int64_t margin = 0;
    int frc = s_fetch(e, &fresh, &margin, ferr, sizeof ferr);

    pthread_mutex_lock(&s_lock);
    now = s_now_ms();
    int rc = 0;
    e->refreshing = 0;
    e->refreshes++;
    if (frc == 0) {
        e->creds = fresh;
        e->have = 1;
        e->fetched_ms = now;
        e->margin_ms = margin;
        e->last_failed = 0;
        e->last_err[0] = 0;
        e->retry_after_ms = 0;
        *out = e->creds;
    } else {
        e->last_failed = 1;
        fanout_strlcpy(e->last_err, ferr, sizeof e->last_err);
        if (!force && s_usable(e, now)) {
            int64_t left = e->creds.expires_ms - now;
            e->retry_after_ms =
                now + (left / 4 < RETRY_AFTER_MS ? left / 4 : RETRY_AFTER_MS);
            LOG_WARN(LOG_SCOPE,
                     "refreshing %s%s credentials failed; using the current ones (%" PRId64
                     " s left): %s",
                     e->role_arn ? "the role's " : "the base",
                     e->role_arn ? e->role_arn : "", left / 1000, ferr);
            *out = e->creds;
        } else {
            e->failed_ms = now;
            s_set_err(err, err_len, "%s", ferr);
            rc = -1;
        }
    }
    pthread_cond_broadcast(&s_done);
    pthread_mutex_unlock(&s_lock);
    s_wipe(&fresh, sizeof fresh);
    return rc;
}

int fanout_credentials_get(const char *role_arn, const char *external_id,
                           const char *region, int force, struct fanout_credentials *out,
                           char *err, size_t err_len)
{
    if (!out) {
        s_set_err(err, err_len, "no output for credentials");
        return -1;
    }
    if (role_arn && !*role_arn)
        role_arn = NULL;
    if (!role_arn)
        external_id = region = NULL; /* the base chain has one entry */
    if (external_id && !*external_id)
        external_id = NULL;
    if (region && !*region)
        region = NULL;
    int rc = s_get(role_arn, external_id, region, force, out, err, err_len);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

void fanout_credentials_reset(void)
{
    pthread_mutex_lock(&s_lock);
    for (;;) {
        int busy = 0;
        for (struct cred_entry *e = s_entries; e; e = e->next)
            busy |= e->refreshing;
        if (!busy)
            break;
        pthread_cond_wait(&s_done, &s_lock);
    }
    while (s_entries) {
        struct cred_entry *e = s_entries;
        s_entries = e->next;
        s_entry_free(e);
    }
    pthread_mutex_unlock(&s_lock);
}
