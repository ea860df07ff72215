/* Credentials: the base provider chain and STS AssumeRole, cached.
 *
 * The providers are static functions behind one small table (s_providers),
 * tried in the order of the AWS SDKs' default chain, as far as fanout
 * supports it: environment, (assume-role profile: refused), shared
 * credentials file, config file, container credentials.
 *
 * Out of scope: profiles that assume a role themselves (role_arn with
 * source_profile or credential_source). Meeting one is an error that says
 * so, rather than silently using other keys: give the role in the mapping
 * instead. Web identity, SSO, credential_process and IMDS are not
 * providers here either; the "no credentials" error mentions web identity
 * when its variables are set.
 *
 * Secrets (secret keys, session tokens, the Authorization header and the
 * container authorization token) never reach a log line or an error
 * string: server messages are scrubbed of every secret the request used,
 * and access key ids are shown cut to four characters. */
#include "credentials.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "endpoint.h"
#include "http.h"
#include "log.h"
#include "retry.h"
#include "sigv4.h"
#include "util.h"

#define LOG_SCOPE "credentials"

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

/* Replace every occurrence of `secret` in b with `with`. */
static void s_replace_all(struct fanout_buf *b, const char *secret, const char *with)
{
    size_t sl = secret ? strlen(secret) : 0;
    if (sl < 4 || !b->ptr)
        return;
    struct fanout_buf out = {0};
    const char *s = (const char *)b->ptr;
    const char *hit;
    while ((hit = strstr(s, secret)) != NULL) {
        fanout_buf_append(&out, s, (size_t)(hit - s));
        fanout_buf_append_str(&out, with);
        s = hit + sl;
    }
    if (s == (const char *)b->ptr)
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

/* A profile that assumes a role itself (role_arn with source_profile or
 * credential_source) comes before the static keys in the SDKs' chain.
 * fanout does not chain roles from the shared files: refuse it by name
 * rather than use other keys the user did not mean. */
static int s_role_profile_fetch(struct fanout_credentials *out, char *err, size_t err_len)
{
    (void)out;
    for (int cf = 1; cf >= 0; cf--) {
        char *role = fanout_aws_profile_value(cf, NULL, "role_arn");
        if (role) {
            s_set_err(
                err, err_len,
                "profile \"%s\" in %s assumes a role (role_arn %.200s with "
                "source_profile/credential_source): role chaining from the shared "
                "files is not supported; put base keys in the profile and the role in "
                "the mapping's \"role\"",
                s_profile_name(), s_file_name(cf), role);
            free(role);
            return S_ERROR;
        }
    }
    return S_NOT_FOUND;
}

static int s_profile_keys(int credentials_file, struct fanout_credentials *out, char *err,
                          size_t err_len)
{
    char *id = fanout_aws_profile_value(credentials_file, NULL, "aws_access_key_id");
    char *secret =
        fanout_aws_profile_value(credentials_file, NULL, "aws_secret_access_key");
    char *token = fanout_aws_profile_value(credentials_file, NULL, "aws_session_token");
    int rc = S_NOT_FOUND;
    if (id && secret && *id && *secret) {
        rc = s_fill(out, "profile", id, secret, token, err, err_len) ? S_ERROR : S_FOUND;
    } else if ((id && *id) || (secret && *secret)) {
        s_set_err(err, err_len, "profile \"%s\" in %s has %s but no %s", s_profile_name(),
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

static int s_shared_credentials_fetch(struct fanout_credentials *out, char *err,
                                      size_t err_len)
{
    return s_profile_keys(1, out, err, err_len);
}

static int s_config_file_fetch(struct fanout_credentials *out, char *err, size_t err_len)
{
    return s_profile_keys(0, out, err, err_len);
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
        unsigned delay = fanout_retry_delay_ms(&policy, attempt, &seed);
        if ((cls == FANOUT_RETRY_THROTTLE || cls == FANOUT_RETRY_TRANSIENT) &&
            attempt < policy.max_attempts && s_left_ms() > (int64_t)delay) {
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

static const struct cred_provider s_providers[] = {
    {"environment", s_env_fetch},
    {"assume-role profile", s_role_profile_fetch},
    {"shared credentials file", s_shared_credentials_fetch},
    {"config file", s_config_file_fetch},
    {"container", s_container_fetch},
};

static int s_chain_fetch(struct fanout_credentials *out, char *err, size_t err_len)
{
    for (size_t i = 0; i < sizeof s_providers / sizeof s_providers[0]; i++) {
        int rc = s_providers[i].fetch(out, err, err_len);
        if (rc == S_FOUND) {
            char hint[16];
            s_key_hint(out->access_key_id, hint);
            LOG_DEBUG(LOG_SCOPE, "credentials from the %s (key %s)", s_providers[i].name,
                      hint);
            return 0;
        }
        if (rc == S_ERROR)
            return -1;
    }
    s_set_err(err, err_len,
              "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
              "keys for profile \"%s\" in the shared files, or container credentials%s",
              s_profile_name(),
              s_env("AWS_WEB_IDENTITY_TOKEN_FILE")
                  ? " (AWS_WEB_IDENTITY_TOKEN_FILE is set: web identity is not supported)"
                  : "");
    return -1;
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

static int s_sts_parse(const char *xml, size_t n, const char *role_arn,
                       struct fanout_credentials *out, char *err, size_t err_len)
{
    const char *result = xml, *creds;
    size_t result_len = n, creds_len;
    const char *r;
    size_t rl;
    if (s_xml_find(xml, n, "AssumeRoleResult", &r, &rl)) {
        result = r;
        result_len = rl;
    }
    if (!s_xml_find(result, result_len, "Credentials", &creds, &creds_len)) {
        s_set_err(err, err_len, "AssumeRole %s: the reply has no Credentials", role_arn);
        return -1;
    }
    memset(out, 0, sizeof *out);
    fanout_strlcpy(out->source, "assume-role", sizeof out->source);
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
            s_set_err(err, err_len, "AssumeRole %s: the reply's Credentials %s %s",
                      role_arn, rc < 0 ? "has too long a" : "lack", s_names[i]);
            return -1;
        }
    }
    if (s_parse_iso8601(exp, &out->expires_ms)) {
        s_wipe(out, sizeof *out);
        s_set_err(err, err_len, "AssumeRole %s: Expiration \"%.40s\" is not ISO 8601",
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

static int s_assume_role(const char *role_arn, const char *external_id,
                         const char *region_in, struct fanout_credentials *out, char *err,
                         size_t err_len)
{
    long duration;
    struct fanout_retry_policy policy;
    char region[64], url[1024], scheme[16], host[512], base_path[512], path[520];
    if (strncmp(role_arn, "arn:", 4) != 0) {
        s_set_err(err, err_len, "AssumeRole: \"%.200s\" is not a role ARN", role_arn);
        return -1;
    }
    if (s_env_int("FANOUT_ASSUME_ROLE_SECONDS", DEFAULT_DURATION_S, MIN_DURATION_S,
                  MAX_DURATION_S, &duration, err, err_len) ||
        fanout_retry_policy_from_env(&policy, err, err_len) ||
        fanout_aws_region(region_in, region, sizeof region, err, err_len) ||
        fanout_aws_endpoint_url("sts", region, NULL, url, sizeof url, err, err_len))
        return -1;
    if (fanout_url_split(url, scheme, sizeof scheme, host, sizeof host, base_path,
                         sizeof base_path)) {
        s_set_err(err, err_len, "AssumeRole %s: bad STS endpoint %.300s", role_arn, url);
        return -1;
    }
    size_t bl = strlen(base_path);
    snprintf(path, sizeof path, "%s%s", base_path,
             bl && base_path[bl - 1] == '/' ? "" : "/");

    char session[SESSION_NAME_MAX + 1], dur[16];
    s_session_name(session);
    snprintf(dur, sizeof dur, "%ld", duration);
    struct fanout_buf body = {0};
    if (s_form_append(&body, "Action", "AssumeRole") ||
        s_form_append(&body, "Version", STS_VERSION) ||
        s_form_append(&body, "RoleArn", role_arn) ||
        s_form_append(&body, "RoleSessionName", session) ||
        s_form_append(&body, "DurationSeconds", dur) ||
        (external_id && s_form_append(&body, "ExternalId", external_id))) {
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
        if (s_get(NULL, NULL, NULL, base_forced == 1, &base, base_err, sizeof base_err)) {
            s_set_err(err, err_len, "AssumeRole %s: no base credentials: %s", role_arn,
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
        if (fanout_sigv4_sign(&sreq, &params, &sc, &sig)) {
            s_wipe(&base, sizeof base);
            s_set_err(err, err_len, "AssumeRole %s: signing failed", role_arn);
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
            .header_count = base.session_token[0] ? 5 : 4,
            .body = body.ptr,
            .body_len = body.len,
            .timeout_ms = s_timeout_ms(policy.request_timeout_ms),
        };
        struct fanout_http_response resp;
        s_perform(&req, &resp);

        if (resp.status >= 200 && resp.status < 300) {
            rc = s_sts_parse(resp.body.ptr ? (const char *)resp.body.ptr : "",
                             resp.body.len, role_arn, out, err, err_len);
            s_response_clean_up(&resp);
            s_wipe(&base, sizeof base);
            s_wipe(&sig, sizeof sig);
            break;
        }
        char code[128] = "", msg[SERVER_MESSAGE_MAX + 8] = "";
        const char *secrets[4] = {base.secret_access_key, base.session_token,
                                  sig.authorization, sig.signature};
        if (resp.status)
            s_sts_error(&resp, secrets, 4, base.access_key_id, code, sizeof code, msg,
                        sizeof msg);
        enum fanout_retry_class cls =
            fanout_retry_classify(resp.status, code[0] ? code : NULL, (int)resp.error);
        s_wipe(&base, sizeof base);
        s_wipe(&sig, sizeof sig);
        if (cls == FANOUT_RETRY_EXPIRED && base_forced == 0 &&
            attempt < policy.max_attempts) {
            /* The base credentials were refused as expired: fetch them
             * again, once, and retry at once. */
            LOG_WARN(LOG_SCOPE, "AssumeRole %s: %s; refreshing the base credentials",
                     role_arn, code);
            base_forced = 1;
            s_response_clean_up(&resp);
            continue;
        }
        unsigned delay = fanout_retry_delay_ms(&policy, attempt, &seed);
        if ((cls == FANOUT_RETRY_THROTTLE || cls == FANOUT_RETRY_TRANSIENT) &&
            attempt < policy.max_attempts && s_left_ms() > (int64_t)delay) {
            LOG_DEBUG(LOG_SCOPE, "AssumeRole %s: attempt %u: %s%s%s; retrying in %u ms",
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
            s_set_err(err, err_len, "AssumeRole %s failed%s: %s%s%s (HTTP %ld)", role_arn,
                      tries, code[0] ? code : "error", msg[0] ? ": " : "", msg,
                      resp.status);
        else
            s_set_err(err, err_len, "AssumeRole %s failed%s: no response from %s: %s",
                      role_arn, tries, host, resp.error_text);
        s_response_clean_up(&resp);
        break;
    }
    fanout_buf_free(&body);
    if (rc == 0) {
        char hint[16], until[32];
        s_key_hint(out->access_key_id, hint);
        s_format_time(out->expires_ms, until);
        LOG_DEBUG(LOG_SCOPE, "assumed %s%s (key %s) until %s", role_arn,
                  external_id ? " with an external id" : "", hint, until);
    }
    return rc;
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
