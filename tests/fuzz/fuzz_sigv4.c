/* SigV4 (engine/aws/sigv4.c): requests built from the input, canonicalised and
 * signed with fixed keys and time.
 *
 * Input: one flags byte, then a request as in AWS's test suite
 * (request.txt): "METHOD target HTTP/1.1", header lines "Name:value" (a
 * line starting with a space or tab continues the previous value), a blank
 * line, the body. The target is split at the first '?' into path and
 * query. Flags: bit 0 normalise the path, bit 1 add X-Amz-Content-Sha256,
 * bit 2 sign with a session token, bit 3 take "region/service" from the
 * first line instead of the fixed ones.
 *
 * Checks, beyond ASan and UBSan: the stages (canonical request, string to
 * sign, uncached signature) agree with fanout_sigv4_sign, which signs the
 * same way twice (key cache); the canonical request has exactly one line
 * per signed header (no line break from a value, path or query gets in);
 * signed headers are lower case, sorted, unique, with host and x-amz-date;
 * the Authorization header is well formed and the body hash is right. */
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "aws/sigv4.h"
#include "common/util.h"

#define MAX_HEADERS 80
#define KEY_ID      "AKIDEXAMPLE"
#define SECRET      "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN       "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW"

static char *s_line(char **cur, char *end)
{
    char *start = *cur;
    if (start >= end)
        return NULL;
    char *nl = memchr(start, '\n', (size_t)(end - start));
    char *stop = nl ? nl : end;
    *cur = nl ? nl + 1 : end;
    if (stop > start && stop[-1] == '\r')
        stop--;
    *stop = 0;
    return start;
}

static int s_is_hex64(const char *s)
{
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[64] == 0;
}

static void s_check_signed_headers(const char *sh)
{
    int host = 0, date = 0;
    const char *prev = NULL;
    size_t prev_len = 0;
    for (const char *p = sh;;) {
        const char *semi = strchr(p, ';');
        size_t n = semi ? (size_t)(semi - p) : strlen(p);
        FUZZ_CHECK(n > 0, "empty name in signed headers \"%s\"", sh);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(!(p[i] >= 'A' && p[i] <= 'Z'), "upper case in \"%s\"", sh);
        if (prev) {
            size_t m = n < prev_len ? n : prev_len;
            int c = memcmp(prev, p, m);
            FUZZ_CHECK(c < 0 || (c == 0 && prev_len < n), "not sorted/unique: \"%s\"", sh);
        }
        host |= n == 4 && memcmp(p, "host", 4) == 0;
        date |= n == 10 && memcmp(p, "x-amz-date", 10) == 0;
        prev = p;
        prev_len = n;
        if (!semi)
            break;
        p = semi + 1;
    }
    FUZZ_CHECK(host && date, "host or x-amz-date not signed: \"%s\"", sh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    if (size < 1)
        return 0;
    unsigned flags = data[0];
    char *raw = fuzz_dup(data + 1, size - 1);
    char *cur = raw, *end = raw + size - 1;
    struct fanout_sigv4_params p = {
        .region = "us-east-1",
        .service = "service",
        .now = 1440938160, /* 2015-08-30T12:36:00Z, as the test suite */
        .normalize_path = flags & 1,
        .content_sha256_header = (flags >> 1) & 1,
    };
    struct fanout_sigv4_credentials c = {KEY_ID, SECRET, (flags & 4) ? TOKEN : NULL};
    struct fanout_sigv4_header headers[MAX_HEADERS];
    char *values[MAX_HEADERS];
    size_t nh = 0;
    struct fanout_sigv4_request req = {0};
    char *line;

    if (flags & 8) {
        line = s_line(&cur, end);
        char *slash = line ? strchr(line, '/') : NULL;
        if (!slash)
            goto out;
        *slash = 0;
        p.region = line;
        p.service = slash + 1;
    }
    line = s_line(&cur, end);
    if (!line)
        goto out;
    char *sp = strchr(line, ' ');
    if (!sp)
        goto out;
    *sp = 0;
    req.method = line;
    char *target = sp + 1, *ver = NULL;
    for (char *v = strstr(target, " HTTP/"); v; v = strstr(v + 1, " HTTP/"))
        ver = v;
    if (ver)
        *ver = 0;
    char *q = strchr(target, '?');
    if (q) {
        *q = 0;
        req.query = q + 1;
    }
    req.path = target;
    while (cur < end && (line = s_line(&cur, end)) && *line) {
        if (*line == ' ' || *line == '\t') {
            if (!nh)
                goto out;
            size_t a = strlen(values[nh - 1]), b = strlen(line);
            char *v = realloc(values[nh - 1], a + b + 2);
            FUZZ_CHECK(v != NULL, "out of memory");
            v[a] = '\n';
            memcpy(v + a + 1, line, b + 1);
            values[nh - 1] = v;
            headers[nh - 1].value = v;
            continue;
        }
        char *colon = strchr(line, ':');
        if (!colon || nh == MAX_HEADERS)
            goto out;
        *colon = 0;
        values[nh] = strdup(colon + 1);
        FUZZ_CHECK(values[nh] != NULL, "out of memory");
        headers[nh].name = line;
        headers[nh].value = values[nh];
        nh++;
    }
    req.headers = headers;
    req.header_count = nh;
    req.body = (const uint8_t *)cur;
    req.body_len = (size_t)(end - cur);

    /* stage by stage */
    struct fanout_sigv4_result r;
    const char *amz_date = "20150830T123600Z";
    struct fanout_sbuf creq = {0}, sh = {0}, sts = {0};
    char sig[65] = "";
    int staged = fanout_sigv4_canonical_request(&req, &p, amz_date, c.session_token, &creq,
                                                &sh) == 0 &&
                 fanout_sigv4_string_to_sign((const char *)creq.bytes, creq.len, &p,
                                             amz_date, &sts) == 0 &&
                 fanout_sigv4_signature((const char *)sts.bytes, sts.len, &p, amz_date,
                                        SECRET, sig) == 0;
    int rc = fanout_sigv4_sign(&req, &p, &c, &r);
    if (staged) {
        size_t lines = 0, semis = 0;
        for (size_t i = 0; i < creq.len; i++)
            lines += creq.bytes[i] == '\n';
        for (size_t i = 0; i < sh.len; i++)
            semis += sh.bytes[i] == ';';
        FUZZ_CHECK(strlen((const char *)creq.bytes) == creq.len,
                   "NUL in the canonical request");
        FUZZ_CHECK(lines == semis + 1 + 5,
                   "canonical request has %zu line breaks for %zu signed headers", lines,
                   semis + 1);
        s_check_signed_headers((const char *)sh.bytes);
        FUZZ_CHECK(s_is_hex64(sig), "signature \"%s\"", sig);
    }
    if (rc == 0) {
        FUZZ_CHECK(staged, "signed, but the stages failed");
        FUZZ_CHECK(strcmp(r.signature, sig) == 0, "signature %s, stages give %s",
                   r.signature, sig);
        FUZZ_CHECK(strcmp(r.amz_date, amz_date) == 0, "date %s", r.amz_date);
        char hash[65];
        fanout_sha256_hex(req.body, req.body_len, hash);
        FUZZ_CHECK(strcmp(r.content_sha256, hash) == 0, "body hash");
        struct fanout_sbuf want = {0};
        FUZZ_CHECK(fanout_sbuf_printf(&want,
                                      "AWS4-HMAC-SHA256 Credential=" KEY_ID
                                      "/20150830/%s/%s/aws4_request, SignedHeaders=%s, "
                                      "Signature=%s",
                                      p.region, p.service, (const char *)sh.bytes,
                                      sig) == 0,
                   "out of memory");
        FUZZ_CHECK(strcmp(r.authorization, (const char *)want.bytes) == 0,
                   "Authorization \"%s\"", r.authorization);
        fanout_sbuf_free(&want);
        struct fanout_sigv4_result again;
        FUZZ_CHECK(fanout_sigv4_sign(&req, &p, &c, &again) == 0, "second signing failed");
        FUZZ_CHECK(strcmp(again.signature, r.signature) == 0, "cached key signs otherwise");
    } else if (staged) {
        /* the one reason to refuse what the stages accept: too long */
        size_t auth =
            strlen("AWS4-HMAC-SHA256 Credential=" KEY_ID "/20150830///aws4_request, "
                   "SignedHeaders=, Signature=") +
            strlen(p.region) + strlen(p.service) + sh.len + 64;
        FUZZ_CHECK(auth >= sizeof r.authorization,
                   "stages succeed, signing fails (Authorization %zu bytes)", auth);
        FUZZ_CHECK(r.signature[0] == 0 && r.authorization[0] == 0, "failure left output");
    }
    fanout_sbuf_free(&creq);
    fanout_sbuf_free(&sh);
    fanout_sbuf_free(&sts);
out:
    for (size_t i = 0; i < nh; i++)
        free(values[i]);
    free(raw);
    return 0;
}
