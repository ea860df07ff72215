/* The credentials providers' shared helpers: errors, time, the
 * environment, secrets kept out of messages, the profile files, and the
 * one rule for retrying a credentials request inside the deadline. */
#include "aws/credentials/provider.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws/endpoint.h"

#define LOG_SCOPE "credentials"

/* ---- small helpers ------------------------------------------------------ */

void cred_set_err(char *err, size_t err_len, const char *fmt, ...) FANOUT_FMT(3, 4);

void cred_set_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

int64_t cred_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *cred_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

void cred_wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}

void cred_free_secret(char *s)
{
    if (s) {
        cred_wipe(s, strlen(s));
        free(s);
    }
}

/* "AKIA…": enough to tell keys apart in a message, not to use one. */
void cred_key_hint(const char *key_id, char out[16])
{
    snprintf(out, 16, "%.4s" ELLIPSIS, key_id ? key_id : "");
}

const char *cred_profile_name(void)
{
    const char *p = cred_env("AWS_PROFILE");
    return p ? p : "default";
}

/* An integer from the environment in [min, max], or `def` when unset. */
int cred_env_int(const char *name, long def, long min, long max, long *out, char *err,
                 size_t err_len)
{
    const char *v = cred_env(name);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        cred_set_err(err, err_len, "%s must be an integer from %ld to %ld (got \"%.32s\")",
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
int cred_parse_iso8601(const char *s, int64_t *out_ms)
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

int cred_expiration_not_string(const json_t *exp)
{
    return exp && !json_is_null(exp) && !json_is_string(exp);
}

void cred_format_time(int64_t ms, char out[32])
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
static void s_replace_all(struct fanout_sbuf *b, const char *secret, const char *with)
{
    size_t sl = secret ? strlen(secret) : 0;
    if (sl < 4 || !b->bytes)
        return;
    size_t key = sl < SECRET_PREFIX_MIN ? sl : SECRET_PREFIX_MIN;
    struct fanout_sbuf out = {0};
    const char *s = (const char *)b->bytes;
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
        fanout_sbuf_put(&out, s, (size_t)(hit - s));
        fanout_sbuf_puts(&out, with);
        s = hit + m;
        any = 1;
    }
    if (!any)
        return;
    fanout_sbuf_puts(&out, s);
    cred_wipe(b->bytes, b->len);
    fanout_sbuf_free(b);
    *b = out;
}

/* Words from a server (an error message), made safe for a message of ours:
 * no control characters, bounded, and none of the request's secrets. */
void cred_server_text(const char *text, size_t n, const char *const *secrets,
                      size_t secret_count, const char *key_id, char *out, size_t out_len)
{
    struct fanout_sbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        fanout_sbuf_putc(&b, c < 0x20 || c == 0x7f ? ' ' : c);
    }
    fanout_sbuf_put(&b, "", 0);
    for (size_t i = 0; i < secret_count; i++)
        s_replace_all(&b, secrets[i], "***");
    if (key_id && *key_id) {
        char hint[16];
        cred_key_hint(key_id, hint);
        s_replace_all(&b, key_id, hint);
    }
    /* Collapse runs of spaces (AWS messages carry blank lines). */
    size_t w = 0;
    const char *s = b.bytes ? (const char *)b.bytes : "";
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
    cred_wipe(b.bytes, b.len);
    fanout_sbuf_free(&b);
}

int cred_copy_field(char *dst, size_t dst_len, const char *src, size_t n, const char *what,
                    const char *source, char *err, size_t err_len)
{
    if (n >= dst_len) {
        cred_set_err(err, err_len, "%s from %s is too long (%zu bytes, at most %zu)", what,
                     source, n, dst_len - 1);
        return -1;
    }
    memcpy(dst, src, n);
    dst[n] = 0;
    return 0;
}

/* ---- HTTP --------------------------------------------------------------- */

void cred_response_clean_up(struct fanout_http_response *r)
{
    cred_wipe(r->body.bytes, r->body.len); /* may hold credentials */
    fanout_http_response_clean_up(r);
}

void cred_perform(const struct fanout_http_request *req, struct fanout_http_response *resp)
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

int64_t cred_remaining_ms(void)
{
    return s_remaining_ms ? s_remaining_ms() : INT64_MAX;
}

int64_t cred_left_ms(void)
{
    return s_remaining_ms ? s_remaining_ms() - S_DEADLINE_MARGIN_MS : INT64_MAX;
}

/* A request's time limit: the policy's, cut to what is left. */
int64_t cred_timeout_ms(int64_t wanted)
{
    int64_t left = cred_left_ms();
    return left < wanted ? (left > 1 ? left : 1) : wanted;
}

void cred_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static unsigned s_seed(void)
{
    unsigned seed = (unsigned)cred_now_ms() ^ ((unsigned)getpid() << 16);
    seed ^= (unsigned)(uintptr_t)&seed;
    return seed;
}

void cred_get_retried(const struct fanout_http_request *req,
                      const struct fanout_retry_policy *policy,
                      struct fanout_http_response *resp, unsigned *attempts)
{
    unsigned seed = s_seed();
    for (unsigned attempt = 1;; attempt++) {
        cred_perform(req, resp);
        *attempts = attempt;
        if (resp->status == 200)
            return;
        /* A throttling or transient answer, attempts left in the policy,
         * and time left for the backoff before the deadline. */
        enum fanout_retry_class cls =
            fanout_retry_classify(resp->status, NULL, (int)resp->error);
        unsigned delay = fanout_retry_delay_ms(policy, attempt, &seed);
        if (!(cls == FANOUT_RETRY_THROTTLE || cls == FANOUT_RETRY_TRANSIENT) ||
            attempt >= policy->max_attempts || cred_left_ms() <= (int64_t)delay)
            return;
        cred_response_clean_up(resp);
        cred_sleep_ms(delay);
    }
}

void cred_json_message(const struct fanout_http_response *resp, const char *secret,
                       char *out, size_t out_len)
{
    if (out_len)
        out[0] = 0;
    json_t *j = json_loadb(resp->body.bytes ? (const char *)resp->body.bytes : "",
                           resp->body.len, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (!msg)
        msg = json_string_value(json_object_get(j, "Message"));
    const char *secrets[1] = {secret};
    if (msg)
        cred_server_text(msg, strlen(msg), secrets, secret ? 1 : 0, NULL, out, out_len);
    json_decref(j);
}
int cred_form_append(struct fanout_sbuf *b, const char *name, const char *value)
{
    static const char s_hex[] = "0123456789ABCDEF";
    int rc = fanout_sbuf_printf(b, "%s%s=", b->len ? "&" : "", name);
    for (const unsigned char *p = (const unsigned char *)value; *p && rc == 0; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
            (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            rc = fanout_sbuf_putc(b, *p);
        } else {
            char enc[3] = {'%', s_hex[*p >> 4], s_hex[*p & 15]};
            rc = fanout_sbuf_put(b, enc, 3);
        }
    }
    return rc;
}

int cred_fill(struct fanout_credentials *out, const char *source, const char *id,
              const char *secret, const char *token, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    fanout_strlcpy(out->source, source, sizeof out->source);
    if (cred_copy_field(out->access_key_id, sizeof out->access_key_id, id, strlen(id),
                        "the access key id", source, err, err_len) ||
        cred_copy_field(out->secret_access_key, sizeof out->secret_access_key, secret,
                        strlen(secret), "the secret access key", source, err, err_len) ||
        (token &&
         cred_copy_field(out->session_token, sizeof out->session_token, token,
                         strlen(token), "the session token", source, err, err_len))) {
        cred_wipe(out, sizeof *out);
        return -1;
    }
    return 0;
}

const char *cred_file_name(int credentials_file)
{
    const char *f =
        cred_env(credentials_file ? "AWS_SHARED_CREDENTIALS_FILE" : "AWS_CONFIG_FILE");
    return f ? f : credentials_file ? "~/.aws/credentials" : "~/.aws/config";
}

char *cred_pv(const char *profile, const char *key)
{
    char *v = fanout_aws_profile_value(1, profile, key);
    return v ? v : fanout_aws_profile_value(0, profile, key);
}

int cred_has(const char *profile, const char *key)
{
    char *v = cred_pv(profile, key);
    int has = v != NULL;
    cred_free_secret(v);
    return has;
}

int cred_has_static(const char *profile)
{
    return cred_has(profile, "aws_access_key_id") ||
           cred_has(profile, "aws_secret_access_key");
}

int cred_has_role(const char *profile)
{
    return cred_has(profile, "role_arn") && !cred_has(profile, "web_identity_token_file");
}

/* A whole small file, NUL-terminated, or NULL with err. */
char *cred_slurp(const char *path, size_t max, const char *what, size_t *len, char *err,
                 size_t err_len)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        cred_set_err(err, err_len, "cannot read %s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    char *buf = calloc(1, max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int bad = buf && (ferror(f) || n > max);
    fclose(f);
    if (!buf || bad) {
        cred_free_secret(buf);
        cred_set_err(err, err_len, "cannot read %s %s: %s", what, path,
                     buf ? "unreadable or larger than the limit" : "out of memory");
        return NULL;
    }
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}
