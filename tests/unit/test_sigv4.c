/* SigV4: every case of AWS's test suite, stage by stage, plus the key cache,
 * large bodies, canonicalisation edge cases, bad input and secrecy. */
#include <check.h>

#include "check_main.h"
#include <dirent.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/log.h"
#include "aws/sigv4.h"
#include "common/util.h"

#define SUITE_DIR       "aws-sigv4-test-suite"
#define SUITE_MIN_CASES 38
#define MAX_CASES       256

static char s_suite_dir[4096];
static char *s_cases[MAX_CASES];
static size_t s_ncases;

/* ---- helpers ------------------------------------------------------------ */

static char *s_read_file(const char *dir, const char *name, size_t *len_out)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct fanout_sbuf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        ck_assert_int_eq(fanout_sbuf_put(&b, chunk, n), 0);
    fclose(f);
    if (!b.bytes)
        ck_assert_int_eq(fanout_sbuf_reserve(&b, 0), 0);
    b.bytes[b.len] = 0;
    if (len_out)
        *len_out = b.len;
    return (char *)b.bytes;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every folder of the suite that holds a request.txt, sorted. */
static void s_discover_cases(void)
{
    const char *data = getenv("FANOUT_TESTDATA");
    if (!data)
        return;
    snprintf(s_suite_dir, sizeof s_suite_dir, "%s/%s", data, SUITE_DIR);
    DIR *d = opendir(s_suite_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && s_ncases < MAX_CASES) {
        if (e->d_name[0] == '.')
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s/request.txt", s_suite_dir, e->d_name);
        if (access(path, R_OK) == 0)
            s_cases[s_ncases++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(s_cases, s_ncases, sizeof s_cases[0], s_cmp_str);
}

static void s_free_cases(void)
{
    for (size_t i = 0; i < s_ncases; i++)
        free(s_cases[i]);
    s_ncases = 0;
}

/* A request.txt: request line, headers (a line starting with whitespace
 * continues the previous header's value), blank line, body. */
struct parsed_request {
    char *raw;
    char *method;
    char *path;
    char *query;
    struct fanout_sigv4_header headers[64];
    char *values[64]; /* owned values (continuations joined) */
    size_t header_count;
    const uint8_t *body;
    size_t body_len;
};

static char *s_next_line(char **cursor, char *end)
{
    char *start = *cursor;
    if (start >= end)
        return NULL;
    char *nl = memchr(start, '\n', (size_t)(end - start));
    char *stop = nl ? nl : end;
    *cursor = nl ? nl + 1 : end;
    if (stop > start && stop[-1] == '\r')
        stop--;
    *stop = 0;
    return start;
}

static void s_parse_request(const char *dir, struct parsed_request *r)
{
    memset(r, 0, sizeof *r);
    size_t len;
    r->raw = s_read_file(dir, "request.txt", &len);
    ck_assert_msg(r->raw != NULL, "%s: no request.txt", dir);
    char *cur = r->raw, *end = r->raw + len;

    char *line = s_next_line(&cur, end);
    ck_assert_ptr_nonnull(line);
    char *sp = strchr(line, ' ');
    ck_assert_ptr_nonnull(sp);
    *sp = 0;
    r->method = line;
    char *target = sp + 1;
    /* the target may hold spaces ("/example space/"): cut at the last " HTTP/" */
    char *ver = NULL;
    for (char *p = strstr(target, " HTTP/"); p; p = strstr(p + 1, " HTTP/"))
        ver = p;
    if (ver)
        *ver = 0;
    char *q = strchr(target, '?');
    if (q) {
        *q = 0;
        r->query = q + 1;
    }
    r->path = target;

    while (cur < end) {
        char *hl = s_next_line(&cur, end);
        if (!hl || !*hl)
            break;
        if (*hl == ' ' || *hl == '\t') {
            ck_assert_uint_gt(r->header_count, 0);
            size_t k = r->header_count - 1;
            size_t a = strlen(r->values[k]), b = strlen(hl);
            char *v = realloc(r->values[k], a + b + 2);
            ck_assert_ptr_nonnull(v);
            v[a] = '\n';
            memcpy(v + a + 1, hl, b + 1);
            r->values[k] = v;
            r->headers[k].value = v;
            continue;
        }
        char *colon = strchr(hl, ':');
        ck_assert_msg(colon != NULL, "%s: bad header line '%s'", dir, hl);
        ck_assert_uint_lt(r->header_count, 64);
        *colon = 0;
        size_t k = r->header_count++;
        r->values[k] = strdup(colon + 1);
        r->headers[k].name = hl;
        r->headers[k].value = r->values[k];
    }
    r->body = (const uint8_t *)cur;
    r->body_len = (size_t)(end - cur);
}

static void s_free_request(struct parsed_request *r)
{
    for (size_t i = 0; i < r->header_count; i++)
        free(r->values[i]);
    free(r->raw);
}

static struct fanout_sigv4_request s_view(const struct parsed_request *r)
{
    struct fanout_sigv4_request req = {
        .method = r->method,
        .path = r->path,
        .query = r->query,
        .headers = r->headers,
        .header_count = r->header_count,
        .body = r->body,
        .body_len = r->body_len,
    };
    return req;
}

static time_t s_parse_time(const char *iso)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    ck_assert_msg(rest && !*rest, "bad timestamp %s", iso);
    return timegm(&tm);
}

static void s_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    ck_assert_uint_eq(strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm), 16);
}

/* The value of header `name` (case-insensitive) in a signed-request file. */
static const char *s_find_header(char *text, const char *name, char *value, size_t cap)
{
    size_t nlen = strlen(name);
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        size_t l = nl ? (size_t)(nl - line) : strlen(line);
        if (l > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
            size_t vl = l - nlen - 1;
            ck_assert_uint_lt(vl, cap);
            memcpy(value, line + nlen + 1, vl);
            value[vl] = 0;
            return value;
        }
        line = nl ? nl + 1 : NULL;
    }
    return NULL;
}

static void s_assert_bytes(const char *what, const char *casename, const void *got,
                           size_t got_len, const char *want, size_t want_len)
{
    ck_assert_msg(got_len == want_len && memcmp(got, want, want_len) == 0,
                  "%s: %s differs\n--- got\n%.*s\n--- want\n%.*s", casename, what,
                  (int)got_len, (const char *)got, (int)want_len, want);
}

/* ---- AWS's suite ---------------------------------------------------------- */

START_TEST(suite_is_there)
{
    ck_assert_msg(getenv("FANOUT_TESTDATA") != NULL, "FANOUT_TESTDATA is not set");
    ck_assert_msg(s_ncases >= SUITE_MIN_CASES, "%zu cases found in %s, want %d or more",
                  s_ncases, s_suite_dir, SUITE_MIN_CASES);
}
END_TEST

START_TEST(suite_case)
{
    const char *name = s_cases[_i];
    char dir[8192];
    snprintf(dir, sizeof dir, "%s/%s", s_suite_dir, name);

    json_error_t jerr;
    char ctx_path[8300];
    snprintf(ctx_path, sizeof ctx_path, "%s/context.json", dir);
    json_t *ctx = json_load_file(ctx_path, 0, &jerr);
    ck_assert_msg(ctx != NULL, "%s: context.json: %s", name, jerr.text);
    json_t *cred = json_object_get(ctx, "credentials");
    const char *akid = json_string_value(json_object_get(cred, "access_key_id"));
    const char *secret = json_string_value(json_object_get(cred, "secret_access_key"));
    const char *token = json_string_value(json_object_get(cred, "token"));
    ck_assert_ptr_nonnull(akid);
    ck_assert_ptr_nonnull(secret);
    /* omit_session_token: the token is sent but added after signing */
    int omit = json_is_true(json_object_get(ctx, "omit_session_token"));
    const char *signed_token = omit ? NULL : token;

    struct fanout_sigv4_params p = {
        .region = json_string_value(json_object_get(ctx, "region")),
        .service = json_string_value(json_object_get(ctx, "service")),
        .now = s_parse_time(json_string_value(json_object_get(ctx, "timestamp"))),
        .normalize_path = json_is_true(json_object_get(ctx, "normalize")),
        .content_sha256_header = json_is_true(json_object_get(ctx, "sign_body")),
    };
    char amz_date[17];
    s_amz_date(p.now, amz_date);

    struct parsed_request r;
    s_parse_request(dir, &r);
    struct fanout_sigv4_request req = s_view(&r);

    size_t want_len;
    char *want;

    /* 1. canonical request */
    struct fanout_sbuf creq = {0}, sh = {0}, sts = {0};
    ck_assert_int_eq(
        fanout_sigv4_canonical_request(&req, &p, amz_date, signed_token, &creq, &sh), 0);
    want = s_read_file(dir, "header-canonical-request.txt", &want_len);
    ck_assert_ptr_nonnull(want);
    s_assert_bytes("canonical request", name, creq.bytes, creq.len, want, want_len);
    free(want);

    /* 2. string to sign */
    ck_assert_int_eq(
        fanout_sigv4_string_to_sign((const char *)creq.bytes, creq.len, &p, amz_date, &sts),
        0);
    want = s_read_file(dir, "header-string-to-sign.txt", &want_len);
    ck_assert_ptr_nonnull(want);
    s_assert_bytes("string to sign", name, sts.bytes, sts.len, want, want_len);
    free(want);

    /* 3. signature */
    char sig[65];
    ck_assert_int_eq(
        fanout_sigv4_signature((const char *)sts.bytes, sts.len, &p, amz_date, secret, sig),
        0);
    want = s_read_file(dir, "header-signature.txt", &want_len);
    ck_assert_ptr_nonnull(want);
    s_assert_bytes("signature", name, sig, strlen(sig), want, want_len);
    free(want);

    /* 4. all stages, against the signed request */
    struct fanout_sigv4_credentials c = {akid, secret, signed_token};
    struct fanout_sigv4_result res;
    ck_assert_int_eq(fanout_sigv4_sign(&req, &p, &c, &res), 0);
    ck_assert_str_eq(res.signature, sig);
    char *signed_req = s_read_file(dir, "header-signed-request.txt", NULL);
    ck_assert_ptr_nonnull(signed_req);
    char value[2048];
    ck_assert_ptr_nonnull(s_find_header(signed_req, "Authorization", value, sizeof value));
    ck_assert_str_eq(res.authorization, value);
    ck_assert_ptr_nonnull(s_find_header(signed_req, "X-Amz-Date", value, sizeof value));
    ck_assert_str_eq(res.amz_date, value);
    if (token) {
        ck_assert_ptr_nonnull(
            s_find_header(signed_req, "X-Amz-Security-Token", value, sizeof value));
        ck_assert_str_eq(token, value);
    }
    if (p.content_sha256_header) {
        ck_assert_ptr_nonnull(
            s_find_header(signed_req, "X-Amz-Content-Sha256", value, sizeof value));
        ck_assert_str_eq(res.content_sha256, value);
    }
    ck_assert_ptr_null(strstr(res.authorization, secret));

    free(signed_req);
    fanout_sbuf_free(&creq);
    fanout_sbuf_free(&sh);
    fanout_sbuf_free(&sts);
    s_free_request(&r);
    json_decref(ctx);
}
END_TEST

/* ---- fixtures for the other tests ---------------------------------------- */

#define T_AKID   "AKIDEXAMPLE"
#define T_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define T_TOKEN  "FwoGZXIvYXdzEXAMPLEsessionTOKEN+/=="
/* 2015-08-30T12:36:00Z */
#define T_NOW ((time_t)1440938160)

static const struct fanout_sigv4_header s_kinesis_headers[] = {
    {"Host", "kinesis.us-east-1.amazonaws.com"},
    {"Content-Type", "application/x-amz-json-1.1"},
    {"X-Amz-Target", "Kinesis_20131202.PutRecords"},
};

static struct fanout_sigv4_request s_kinesis_request(const char *body)
{
    struct fanout_sigv4_request req = {
        .method = "POST",
        .path = "/",
        .headers = s_kinesis_headers,
        .header_count = 3,
        .body = (const uint8_t *)body,
        .body_len = strlen(body),
    };
    return req;
}

static struct fanout_sigv4_params s_params(void)
{
    struct fanout_sigv4_params p = {
        .region = "us-east-1",
        .service = "kinesis",
        .now = T_NOW,
        .normalize_path = 1,
    };
    return p;
}

/* The canonical request of `req` as a C string (caller frees). */
static char *s_canonical(const struct fanout_sigv4_request *req,
                         const struct fanout_sigv4_params *p, const char *token)
{
    struct fanout_sbuf out = {0}, sh = {0};
    ck_assert_int_eq(
        fanout_sigv4_canonical_request(req, p, "20150830T123600Z", token, &out, &sh), 0);
    fanout_sbuf_free(&sh);
    return (char *)out.bytes;
}

/* Line `n` (0-based) of a canonical request, copied into `out`. */
static const char *s_line(const char *text, int n, char *out, size_t cap)
{
    for (int i = 0; i < n && text; i++) {
        text = strchr(text, '\n');
        if (text)
            text++;
    }
    ck_assert_ptr_nonnull(text);
    size_t l = strcspn(text, "\n");
    ck_assert_uint_lt(l, cap);
    memcpy(out, text, l);
    out[l] = 0;
    return out;
}

/* ---- key derivation and its cache ---------------------------------------- */

static void s_hex(const uint8_t *k, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", k[i]);
}

START_TEST(signing_key_vector)
{
    /* AWS General Reference, "Examples of how to derive a signing key". */
    uint8_t key[32];
    char hex[65];
    ck_assert_int_eq(fanout_sigv4_test_signing_key(NULL, T_SECRET, "20120215", "us-east-1",
                                                   "iam", key, NULL),
                     0);
    s_hex(key, 32, hex);
    ck_assert_str_eq(hex,
                     "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}
END_TEST

/* The signing key as the specification derives it, with OpenSSL's HMAC(). */
static void t_ref_key(const char *secret, const char *date8, const char *region,
                      const char *service, uint8_t key[32])
{
    char k0[512];
    uint8_t a[32], b[32];
    unsigned n = 0;
    snprintf(k0, sizeof k0, "AWS4%s", secret);
    HMAC(EVP_sha256(), k0, (int)strlen(k0), (const uint8_t *)date8, 8, a, &n);
    HMAC(EVP_sha256(), a, 32, (const uint8_t *)region, strlen(region), b, &n);
    HMAC(EVP_sha256(), b, 32, (const uint8_t *)service, strlen(service), a, &n);
    HMAC(EVP_sha256(), a, 32, (const uint8_t *)"aws4_request", 12, key, &n);
    ck_assert_uint_eq(n, 32);
}

/* The signer's own HMAC-SHA256 gives HMAC()'s bytes, for a key shorter
 * than a SHA-256 block, of exactly one, and longer (hashed first). */
START_TEST(signing_key_as_openssl_hmac)
{
    char secret[300];
    for (size_t len = 1; len < sizeof secret - 1; len += len < 70 ? 1 : 37) {
        for (size_t i = 0; i < len; i++)
            secret[i] = (char)('!' + (i * 31 + len) % 90);
        secret[len] = 0;
        uint8_t mine[32], ref[32];
        ck_assert_int_eq(fanout_sigv4_test_signing_key(NULL, secret, "20150830",
                                                       "us-east-1", "service", mine, NULL),
                         0);
        t_ref_key(secret, "20150830", "us-east-1", "service", ref);
        ck_assert_msg(memcmp(mine, ref, 32) == 0, "secret of %zu bytes", len);
    }
}
END_TEST

/* A scope of the cache: what the signing key is cached under. */
struct t_scope {
    const char *key_id, *secret, *date, *region, *service;
};

static uint8_t *t_key(const struct t_scope *s, uint8_t key[32], int *hit)
{
    *hit = -1;
    ck_assert_int_eq(fanout_sigv4_test_signing_key(s->key_id, s->secret, s->date, s->region,
                                                   s->service, key, hit),
                     0);
    return key;
}

/* The cache gives a key back only for the same key id, secret, date,
 * region and service: changing any one of them misses and derives that
 * scope's own key, which then hits; the first scope stays cached, except
 * when the secret of its key id was rotated: that replaces it. */
START_TEST(key_cache)
{
    const struct t_scope base = {T_AKID, T_SECRET, "20120215", "us-east-1", "iam"};
    struct t_scope other[5];
    for (int i = 0; i < 5; i++)
        other[i] = base;
    other[0].key_id = "AKIDEXAMPLEOTHER";
    other[1].secret = "another-secret";
    other[2].date = "20120216";
    other[3].region = "eu-west-1";
    other[4].service = "sts";
    uint8_t k1[32], k2[32], ref[32];
    int hit;
    t_ref_key(base.secret, base.date, base.region, base.service, ref);
    for (int i = 0; i < 5; i++) {
        const struct t_scope *o = &other[i];
        fanout_sigv4_test_cache_clear();
        t_key(&base, k1, &hit);
        ck_assert_int_eq(hit, 0);
        ck_assert(memcmp(t_key(&base, k2, &hit), ref, 32) == 0);
        ck_assert_int_eq(hit, 1);

        uint8_t want[32];
        t_ref_key(o->secret, o->date, o->region, o->service, want);
        ck_assert(memcmp(t_key(o, k2, &hit), want, 32) == 0);
        ck_assert_msg(hit == 0, "scope %d took the first scope's key", i);
        ck_assert(i == 0 || memcmp(want, ref, 32) != 0); /* the key id is no input */
        ck_assert(memcmp(t_key(o, k2, &hit), want, 32) == 0);
        ck_assert_int_eq(hit, 1);

        ck_assert(memcmp(t_key(&base, k2, &hit), ref, 32) == 0);
        ck_assert_int_eq(hit, i == 1 ? 0 : 1);
    }
}
END_TEST

START_TEST(key_cache_eviction)
{
    fanout_sigv4_test_cache_clear();
    /* More scopes than slots: every key is still the right one. */
    for (int round = 0; round < 3; round++) {
        for (int d = 1; d <= 20; d++) {
            char date[9];
            snprintf(date, sizeof date, "201501%02d", d);
            uint8_t cached[32], direct[32];
            ck_assert_int_eq(fanout_sigv4_test_signing_key(
                                 T_AKID, T_SECRET, date, "us-east-1", "sqs", cached, NULL),
                             0);
            ck_assert_int_eq(fanout_sigv4_test_signing_key(
                                 NULL, T_SECRET, date, "us-east-1", "sqs", direct, NULL),
                             0);
            ck_assert(memcmp(cached, direct, 32) == 0);
        }
    }
}
END_TEST

START_TEST(sign_twice_same_result)
{
    fanout_sigv4_test_cache_clear();
    struct fanout_sigv4_request req = s_kinesis_request("{\"Records\":[]}");
    struct fanout_sigv4_params p = s_params();
    struct fanout_sigv4_credentials c = {T_AKID, T_SECRET, NULL};
    struct fanout_sigv4_result a, b, d;
    ck_assert_int_eq(fanout_sigv4_sign(&req, &p, &c, &a), 0); /* miss */
    ck_assert_int_eq(fanout_sigv4_sign(&req, &p, &c, &b), 0); /* hit */
    ck_assert_str_eq(a.authorization, b.authorization);
    ck_assert_str_eq(a.signature, b.signature);
    uint8_t k[32];
    int hit = 0;
    ck_assert_int_eq(fanout_sigv4_test_signing_key(T_AKID, T_SECRET, "20150830",
                                                   "us-east-1", "kinesis", k, &hit),
                     0);
    ck_assert_int_eq(hit, 1);

    /* the cached result equals the uncached stages */
    char *creq = s_canonical(&req, &p, NULL);
    struct fanout_sbuf sts = {0};
    ck_assert_int_eq(
        fanout_sigv4_string_to_sign(creq, strlen(creq), &p, "20150830T123600Z", &sts), 0);
    char sig[65];
    ck_assert_int_eq(fanout_sigv4_signature((const char *)sts.bytes, sts.len, &p,
                                            "20150830T123600Z", T_SECRET, sig),
                     0);
    ck_assert_str_eq(sig, a.signature);
    free(creq);
    fanout_sbuf_free(&sts);

    /* a day later: another date, another key, another signature */
    p.now += 86400;
    ck_assert_int_eq(fanout_sigv4_sign(&req, &p, &c, &d), 0);
    ck_assert_str_eq(d.amz_date, "20150831T123600Z");
    ck_assert_str_ne(d.signature, a.signature);
    ck_assert_ptr_nonnull(
        strstr(d.authorization, "/20150831/us-east-1/kinesis/aws4_request"));
}
END_TEST

START_TEST(amz_date_against_strftime)
{
    /* the date written by hand equals strftime's, over 1970 to 2100 (every
     * 11 days, 7 hours, 13 minutes, 17 seconds: all months, hours, minutes,
     * seconds, leap days) and at year ends */
    struct fanout_sigv4_request req = s_kinesis_request("{}");
    struct fanout_sigv4_params p = s_params();
    struct fanout_sigv4_credentials c = {T_AKID, T_SECRET, NULL};
    const time_t step = 11 * 86400 + 7 * 3600 + 13 * 60 + 17;
    for (time_t t = 0; t < (time_t)4102444800; t += step) {
        time_t at[] = {t, (t / 86400) * 86400 + 86399};
        for (int i = 0; i < 2; i++) {
            struct tm tm;
            char want[32];
            ck_assert_ptr_nonnull(gmtime_r(&at[i], &tm));
            ck_assert_uint_eq(strftime(want, sizeof want, "%Y%m%dT%H%M%SZ", &tm), 16);
            struct fanout_sigv4_result r;
            p.now = at[i];
            ck_assert_int_eq(fanout_sigv4_sign(&req, &p, &c, &r), 0);
            ck_assert_str_eq(r.amz_date, want);
        }
    }
}
END_TEST

struct thread_arg {
    const struct fanout_sigv4_result *want; /* [3] */
    int failures;
};

static void *s_thread(void *argp)
{
    struct thread_arg *arg = argp;
    struct fanout_sigv4_request req = s_kinesis_request("{\"Records\":[]}");
    struct fanout_sigv4_params p = s_params();
    struct fanout_sigv4_credentials c = {T_AKID, T_SECRET, T_TOKEN};
    for (int i = 0; i < 150; i++) {
        int k = i % 3;
        p.now = T_NOW + (time_t)k * 86400;
        struct fanout_sigv4_result r;
        if (fanout_sigv4_sign(&req, &p, &c, &r) != 0 ||
            strcmp(r.authorization, arg->want[k].authorization) != 0)
            arg->failures++;
    }
    return NULL;
}

START_TEST(sign_from_threads)
{
    fanout_sigv4_test_cache_clear();
    struct fanout_sigv4_request req = s_kinesis_request("{\"Records\":[]}");
    struct fanout_sigv4_params p = s_params();
    struct fanout_sigv4_credentials c = {T_AKID, T_SECRET, T_TOKEN};
    struct fanout_sigv4_result want[3];
    for (int k = 0; k < 3; k++) {
        p.now = T_NOW + (time_t)k * 86400;
        ck_assert_int_eq(fanout_sigv4_sign(&req, &p, &c, &want[k]), 0);
    }
    fanout_sigv4_test_cache_clear();
    pthread_t t[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i].want = want;
        args[i].failures = 0;
        ck_assert_int_eq(pthread_create(&t[i], NULL, s_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(args[i].failures, 0);
    }
}
END_TEST

/* ---- bodies -------------------------------------------------------------- */

START_TEST(large_body)
{
    /* FIPS 180-2 vector: SHA-256 of one million 'a'. */
    size_t n = 1000000;
    uint8_t *body = malloc(n);
    ck_assert_ptr_nonnull(body);
    memset(body, 'a', n);
    struct fanout_sigv4_request req = s_kinesis_request("");
    req.body = body;
    req.body_len = n;
    struct fanout_sigv4_params p = s_params();
    p.content_sha256_header = 1;
    struct fanout_sigv4_credentials c = {T_AKID, T_SECRET, NULL};
    struct fanout_sigv4_result r;
    ck_assert_int_eq(fanout_sigv4_sign(&req, &p, &c, &r), 0);
    const char *want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    ck_assert_str_eq(r.content_sha256, want);
    char *creq = s_canonical(&req, &p, NULL);
    char line[128];
    ck_assert_str_eq(s_line(creq, 10, line, sizeof line), want); /* payload hash */
    ck_assert_ptr_nonnull(strstr(creq, "\nx-amz-content-sha256:cdc76e5c"));
    free(creq);
    free(body);

    /* 10 MiB + 1 of binary (Kinesis's request limit), NULs included */
    n = 10 * 1024 * 1024 + 1;
    body = malloc(n);
    ck_assert_ptr_nonnull(body);
    for (size_t i = 0; i < n; i++)
        body[i] = (uint8_t)(i * 31u);
    req.body = body;
    req.body_len = n;
    ck_assert_int_eq(fanout_sigv4_sign(&req, &p, &c, &r), 0);
    char hex[65];
    fanout_sha256_hex(body, n, hex);
    ck_assert_str_eq(r.content_sha256, hex);
    ck_assert_uint_eq(strlen(r.signature), 64);
    free(body);
}
END_TEST

START_TEST(empty_body)
{
    char hex[65];
    fanout_sha256_hex(NULL, 0, hex);
    ck_assert_str_eq(hex,
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    fanout_sha256_hex((const uint8_t *)"abc", 3, hex);
    ck_assert_str_eq(hex,
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

/* ---- canonical URI, query and headers ------------------------------------ */

static void s_check_uri(const char *path, int normalize, const char *want)
{
    struct fanout_sigv4_request req = s_kinesis_request("");
    req.path = path;
    struct fanout_sigv4_params p = s_params();
    p.normalize_path = normalize;
    char *creq = s_canonical(&req, &p, NULL);
    char line[512];
    ck_assert_msg(strcmp(s_line(creq, 1, line, sizeof line), want) == 0,
                  "path '%s' (normalize %d): got '%s', want '%s'", path, normalize, line,
                  want);
    free(creq);
}

START_TEST(canonical_uri)
{
    s_check_uri("", 1, "/");
    s_check_uri("/", 1, "/");
    s_check_uri("/..", 1, "/");
    s_check_uri("/../../a", 1, "/a");
    s_check_uri("/a/./b/../c//d/", 1, "/a/c/d/");
    s_check_uri("/a/b/..", 1, "/a");
    s_check_uri("/a/b/../", 1, "/a/");
    s_check_uri("/index/_bulk", 1, "/index/_bulk");
    /* 15, 16 and 40 slashes: up to 16 segments go on the stack, more not */
    s_check_uri("/a/b/c/d/e/f/g/h/i/j/k/l/../n/", 1, "/a/b/c/d/e/f/g/h/i/j/k/n/");
    s_check_uri("/a/b/c/d/e/f/g/h/i/j/k/l/m/../n/o", 1, "/a/b/c/d/e/f/g/h/i/j/k/l/n/o");
    s_check_uri(
        "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18/19/20/./21/22/23/24/25/26/27/"
        "28/29/30/31/32/33/34/35/36/37/../38/39",
        1,
        "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18/19/20/21/22/23/24/25/26/27/28/"
        "29/30/31/32/33/34/35/36/38/39");
    /* already encoded: encoded once more (botocore, aws-c-auth) */
    s_check_uri("/2015-03-31/functions/my%3Afunc/invocations", 1,
                "/2015-03-31/functions/my%253Afunc/invocations");
    s_check_uri("/topics/a%2Fb", 1, "/topics/a%252Fb");
    s_check_uri("/\xc3\xbc/x y", 1, "/%C3%BC/x%20y");
    /* S3 style: as sent, escapes kept (hex in upper case) */
    s_check_uri("/a//b/../c%2fd e", 0, "/a//b/../c%2Fd%20e");
    s_check_uri("/100%", 0, "/100%25");
    s_check_uri("/%zz", 0, "/%25zz");
}
END_TEST

static void s_check_query(const char *query, const char *want)
{
    struct fanout_sigv4_request req = s_kinesis_request("");
    req.query = query;
    struct fanout_sigv4_params p = s_params();
    char *creq = s_canonical(&req, &p, NULL);
    char line[512];
    ck_assert_msg(strcmp(s_line(creq, 2, line, sizeof line), want) == 0,
                  "query '%s': got '%s', want '%s'", query ? query : "(null)", line, want);
    free(creq);
}

START_TEST(canonical_query)
{
    s_check_query(NULL, "");
    s_check_query("", "");
    s_check_query("qos=1", "qos=1");
    s_check_query("b=2&a=1&a=0&c", "a=0&a=1&b=2&c=");
    s_check_query("&&a=1&", "a=1");
    s_check_query("x=a+b&y=%7e&z=%zz&w=%2f", "w=%2F&x=a%2Bb&y=~&z=%25zz");
    s_check_query("k=a=b", "k=a%3Db");
    s_check_query("Action=Publish&Version=2010-03-31", "Action=Publish&Version=2010-03-31");
}
END_TEST

START_TEST(canonical_headers)
{
    const struct fanout_sigv4_header h[] = {
        {"Host", "example.amazonaws.com"},
        {"My-Header", "  a \t b  "},
        {"my-header", "c\r\n  d"},
        {"User-Agent", "fanout/0.1"},         /* never signed */
        {"X-Amzn-Trace-Id", "Root=1-abc"},    /* never signed */
        {"Authorization", "stale"},           /* replaced */
        {"X-Amz-Date", "19990101T000000Z"},   /* replaced */
        {"X-Amz-Content-Sha256", "UNSIGNED"}, /* kept: not asked to add one */
        {"Empty", ""},
    };
    struct fanout_sigv4_request req = {
        .method = "GET", .path = "/", .headers = h, .header_count = 9};
    struct fanout_sigv4_params p = s_params();
    char *creq = s_canonical(&req, &p, NULL);
    const char *want = "GET\n/\n\n"
                       "empty:\n"
                       "host:example.amazonaws.com\n"
                       "my-header:a b,c d\n"
                       "x-amz-content-sha256:UNSIGNED\n"
                       "x-amz-date:20150830T123600Z\n"
                       "\n"
                       "empty;host;my-header;x-amz-content-sha256;x-amz-date\n"
                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    ck_assert_str_eq(creq, want);
    free(creq);

    /* asked to add X-Amz-Content-Sha256: ours replaces the caller's */
    p.content_sha256_header = 1;
    creq = s_canonical(&req, &p, T_TOKEN);
    ck_assert_ptr_nonnull(strstr(creq, "\nx-amz-content-sha256:e3b0c442"));
    ck_assert_ptr_null(strstr(creq, "UNSIGNED"));
    ck_assert_ptr_nonnull(strstr(creq, "\nx-amz-security-token:" T_TOKEN "\n"));
    ck_assert_ptr_nonnull(strstr(
        creq,
        "\nempty;host;my-header;x-amz-content-sha256;x-amz-date;x-amz-security-token\n"));
    free(creq);
}
END_TEST

/* A header value canonicalised byte by byte (trimmed, runs of whitespace
 * made one space): the reference the signer's 8-bytes-at-a-time copy must
 * match. */
static void s_trim_ref(const char *v, char *out)
{
    size_t n = 0;
    int pending = 0;
    for (const char *c = v; *c; c++) {
        if (strchr(" \t\n\r\v\f", *c)) {
            pending = n > 0;
            continue;
        }
        if (pending)
            out[n++] = ' ';
        pending = 0;
        out[n++] = *c;
    }
    out[n] = 0;
}

START_TEST(header_values_at_every_offset)
{
    /* one special byte at every offset of values 1 to 40 bytes long, some
     * with a second one 1 to 9 bytes further, around the 8-byte blocks */
    static const char specials[] = {' ',  '\t', '\r', '\n', '\v',       '\f',      0x01,
                                    0x1f, 0x7f, '!',  '~',  (char)0x80, (char)0xff};
    struct fanout_sigv4_params p = s_params();
    for (size_t len = 1; len <= 40; len++)
        for (size_t at = 0; at < len; at++)
            for (size_t gap = 0; gap < 10; gap++)
                for (size_t k = 0; k < sizeof specials; k++) {
                    char v[48], want[64], got[128];
                    for (size_t i = 0; i < len; i++)
                        v[i] = (char)('a' + (i * 7 + at) % 26);
                    v[len] = 0;
                    v[at] = specials[k];
                    if (gap && at + gap < len)
                        v[at + gap] = specials[(k + gap) % sizeof specials];
                    int bad = 0;
                    for (size_t i = 0; i < len; i++) {
                        unsigned char c = (unsigned char)v[i];
                        bad |= (c < 0x20 && !strchr(" \t\n\r\v\f", c)) || c == 0x7f;
                    }
                    const struct fanout_sigv4_header h[] = {{"Host", "h.example"},
                                                            {"X-V", v}};
                    struct fanout_sigv4_request req = {
                        .method = "GET", .path = "/", .headers = h, .header_count = 2};
                    struct fanout_sbuf out = {0}, sh = {0};
                    int rc = fanout_sigv4_canonical_request(&req, &p, "20150830T123600Z",
                                                            NULL, &out, &sh);
                    ck_assert_msg(rc == (bad ? -1 : 0), "len %zu at %zu gap %zu byte %02x",
                                  len, at, gap, (unsigned char)specials[k]);
                    if (!bad) {
                        s_trim_ref(v, want);
                        ck_assert_str_eq(
                            s_line((const char *)out.bytes, 5, got, sizeof got) + 4, want);
                    }
                    fanout_sbuf_free(&out);
                    fanout_sbuf_free(&sh);
                }
}
END_TEST

START_TEST(session_token)
{
    struct fanout_sigv4_request req = s_kinesis_request("{}");
    struct fanout_sigv4_params p = s_params();
    struct fanout_sigv4_credentials c = {T_AKID, T_SECRET, T_TOKEN};
    struct fanout_sigv4_result with, without, empty;
    ck_assert_int_eq(fanout_sigv4_sign(&req, &p, &c, &with), 0);
    ck_assert_ptr_nonnull(strstr(with.authorization,
                                 "SignedHeaders=content-type;host;x-amz-date;"
                                 "x-amz-security-token;x-amz-target, "));
    c.session_token = NULL;
    ck_assert_int_eq(fanout_sigv4_sign(&req, &p, &c, &without), 0);
    ck_assert_ptr_nonnull(
        strstr(without.authorization,
               "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "));
    ck_assert_str_ne(with.signature, without.signature);
    c.session_token = ""; /* an empty token is no token */
    ck_assert_int_eq(fanout_sigv4_sign(&req, &p, &c, &empty), 0);
    ck_assert_str_eq(empty.authorization, without.authorization);
}
END_TEST

/* ---- bad input ------------------------------------------------------------ */

static int s_sign_with(const struct fanout_sigv4_request *req,
                       const struct fanout_sigv4_params *p,
                       const struct fanout_sigv4_credentials *c)
{
    struct fanout_sigv4_result r;
    memset(&r, 0x55, sizeof r);
    int rc = fanout_sigv4_sign(req, p, c, &r);
    if (rc != 0) {
        /* a failure leaves nothing usable behind */
        ck_assert_str_eq(r.authorization, "");
        ck_assert_str_eq(r.signature, "");
    }
    return rc;
}

START_TEST(bad_input)
{
    struct fanout_sigv4_request req = s_kinesis_request("{}");
    struct fanout_sigv4_params p = s_params();
    struct fanout_sigv4_credentials c = {T_AKID, T_SECRET, T_TOKEN};
    struct fanout_sigv4_result r;
    ck_assert_int_eq(s_sign_with(&req, &p, &c), 0);

    ck_assert_int_eq(fanout_sigv4_sign(NULL, &p, &c, &r), -1);
    ck_assert_int_eq(fanout_sigv4_sign(&req, NULL, &c, &r), -1);
    ck_assert_int_eq(fanout_sigv4_sign(&req, &p, NULL, &r), -1);
    ck_assert_int_eq(fanout_sigv4_sign(&req, &p, &c, NULL), -1);

    struct fanout_sigv4_request bad = req;
    bad.method = NULL;
    ck_assert_int_eq(s_sign_with(&bad, &p, &c), -1);
    bad.method = "PO ST";
    ck_assert_int_eq(s_sign_with(&bad, &p, &c), -1);
    bad = req;
    bad.path = "relative";
    ck_assert_int_eq(s_sign_with(&bad, &p, &c), -1);
    bad.path = "/a?b=c";
    ck_assert_int_eq(s_sign_with(&bad, &p, &c), -1);
    bad = req;
    bad.body = NULL; /* with body_len 2 */
    ck_assert_int_eq(s_sign_with(&bad, &p, &c), -1);
    bad = req;
    bad.header_count = 2;
    bad.headers = NULL;
    ck_assert_int_eq(s_sign_with(&bad, &p, &c), -1);

    /* no Host, bad names and values */
    const struct fanout_sigv4_header no_host[] = {{"Content-Type", "x"}};
    const struct fanout_sigv4_header bad_name[] = {{"Host", "h"}, {"Bad Name", "x"}};
    const struct fanout_sigv4_header colon_name[] = {{"Host", "h"}, {"a:b", "x"}};
    const struct fanout_sigv4_header empty_name[] = {{"Host", "h"}, {"", "x"}};
    const struct fanout_sigv4_header ctl_value[] = {{"Host", "h"}, {"A", "x\001y"}};
    const struct fanout_sigv4_header null_value[] = {{"Host", "h"}, {"A", NULL}};
    const struct fanout_sigv4_header *sets[] = {no_host,    bad_name,  colon_name,
                                                empty_name, ctl_value, null_value};
    const size_t counts[] = {1, 2, 2, 2, 2, 2};
    for (size_t i = 0; i < 6; i++) {
        bad = req;
        bad.headers = sets[i];
        bad.header_count = counts[i];
        ck_assert_msg(s_sign_with(&bad, &p, &c) == -1, "header set %zu accepted", i);
    }

    /* scope fields and credentials */
    struct fanout_sigv4_params bp = p;
    bp.region = "us east-1";
    ck_assert_int_eq(s_sign_with(&req, &bp, &c), -1);
    bp.region = NULL;
    ck_assert_int_eq(s_sign_with(&req, &bp, &c), -1);
    bp = p;
    bp.service = "kinesis/x";
    ck_assert_int_eq(s_sign_with(&req, &bp, &c), -1);
    bp.service = "";
    ck_assert_int_eq(s_sign_with(&req, &bp, &c), -1);
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    bp.service = longname;
    ck_assert_int_eq(s_sign_with(&req, &bp, &c), -1);
    bp = p;
    bp.now = (time_t)400000000000LL; /* year > 9999 */
    ck_assert_int_eq(s_sign_with(&req, &bp, &c), -1);

    struct fanout_sigv4_credentials bc = c;
    bc.access_key_id = "AKID/X";
    ck_assert_int_eq(s_sign_with(&req, &p, &bc), -1);
    bc.access_key_id = longname;
    ck_assert_int_eq(s_sign_with(&req, &p, &bc), -1);
    bc.access_key_id = NULL;
    ck_assert_int_eq(s_sign_with(&req, &p, &bc), -1);
    bc = c;
    bc.secret_access_key = NULL;
    ck_assert_int_eq(s_sign_with(&req, &p, &bc), -1);
    bc = c;
    bc.session_token = "tok\r\nX-Evil: 1";
    ck_assert_int_eq(s_sign_with(&req, &p, &bc), 0); /* folded whitespace: allowed */
    bc.session_token = "tok\001";
    ck_assert_int_eq(s_sign_with(&req, &p, &bc), -1);

    /* the stages check their input too */
    struct fanout_sbuf out = {0}, sh = {0};
    ck_assert_int_eq(
        fanout_sigv4_canonical_request(&req, &p, "2015-08-30", NULL, &out, &sh), -1);
    ck_assert_int_eq(fanout_sigv4_canonical_request(&req, &bp, NULL, NULL, &out, &sh), -1);
    ck_assert_int_eq(fanout_sigv4_string_to_sign("x", 1, &p, "nope", &out), -1);
    ck_assert_int_eq(fanout_sigv4_string_to_sign(NULL, 0, &p, "20150830T123600Z", &out),
                     -1);
    char sig[65];
    ck_assert_int_eq(fanout_sigv4_signature("x", 1, &p, "20150830T123600Z", NULL, sig), -1);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_uint_eq(sh.len, 0);
    fanout_sbuf_free(&out);
    fanout_sbuf_free(&sh);
}
END_TEST

START_TEST(authorization_too_long)
{
    /* Enough signed headers to overflow the 1024-byte Authorization: refused,
     * never truncated. */
    static struct fanout_sigv4_header h[60];
    static char names[60][32];
    h[0].name = "Host";
    h[0].value = "example.amazonaws.com";
    for (int i = 1; i < 60; i++) {
        snprintf(names[i], sizeof names[i], "x-fanout-header-%02d", i);
        h[i].name = names[i];
        h[i].value = "v";
    }
    struct fanout_sigv4_request req = {.method = "GET", .path = "/", .headers = h};
    struct fanout_sigv4_params p = s_params();
    struct fanout_sigv4_credentials c = {T_AKID, T_SECRET, NULL};
    req.header_count = 20;
    ck_assert_int_eq(s_sign_with(&req, &p, &c), 0);
    req.header_count = 60;
    ck_assert_int_eq(s_sign_with(&req, &p, &c), -1);
}
END_TEST

/* ---- secrecy -------------------------------------------------------------- */

START_TEST(secret_never_in_output)
{
    const char *secret = "SECRETsecretSECRETsecretSECRET0123456789";
    const char *token = "TOKENtokenTOKENtokenTOKEN";
    FILE *log = tmpfile();
    ck_assert_ptr_nonnull(log);
    fanout_log_set(FANOUT_LOG_DEBUG, 0);
    fanout_log_set_fd(fileno(log));

    struct fanout_sigv4_request req = s_kinesis_request("{\"Records\":[]}");
    struct fanout_sigv4_params p = s_params();
    struct fanout_sigv4_credentials c = {T_AKID, secret, token};
    struct fanout_sigv4_result r;
    ck_assert_int_eq(fanout_sigv4_sign(&req, &p, &c, &r), 0);
    ck_assert_ptr_null(memmem(&r, sizeof r, secret, strlen(secret)));
    ck_assert_ptr_null(memmem(&r, sizeof r, secret, 8));
    ck_assert_ptr_null(memmem(&r, sizeof r, token, strlen(token)));
    /* failures that log, with the secrets at hand */
    const struct fanout_sigv4_header bad[] = {{"Bad Name", token}};
    req.headers = bad;
    req.header_count = 1;
    ck_assert_int_eq(fanout_sigv4_sign(&req, &p, &c, &r), -1);
    req = s_kinesis_request("{}");
    req.path = "no-slash";
    ck_assert_int_eq(fanout_sigv4_sign(&req, &p, &c, &r), -1);

    fflush(log);
    fanout_log_set_fd(-1);
    fanout_log_set(FANOUT_LOG_INFO, 0);
    long size = ftell(log);
    ck_assert_int_ge(size, 0);
    char *text = calloc(1, (size_t)size + 1);
    ck_assert_ptr_nonnull(text);
    rewind(log);
    ck_assert_uint_eq(fread(text, 1, (size_t)size, log), (size_t)size);
    fclose(log);
    ck_assert_ptr_null(strstr(text, secret));
    ck_assert_ptr_null(strstr(text, token));
    free(text);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *s_suite(void)
{
    Suite *s = suite_create("sigv4");
    TCase *tc = tcase_create("aws-suite");
    tcase_add_test(tc, suite_is_there);
    tcase_add_loop_test(tc, suite_case, 0, (int)s_ncases);
    suite_add_tcase(s, tc);

    tc = tcase_create("key");
    tcase_add_test(tc, signing_key_vector);
    tcase_add_test(tc, signing_key_as_openssl_hmac);
    tcase_add_test(tc, key_cache);
    tcase_add_test(tc, key_cache_eviction);
    tcase_add_test(tc, sign_twice_same_result);
    tcase_add_test(tc, sign_from_threads);
    suite_add_tcase(s, tc);

    tc = tcase_create("canonical");
    tcase_add_test(tc, large_body);
    tcase_add_test(tc, empty_body);
    tcase_add_test(tc, canonical_uri);
    tcase_add_test(tc, canonical_query);
    tcase_add_test(tc, canonical_headers);
    tcase_add_test(tc, session_token);
    tcase_add_test(tc, header_values_at_every_offset);
    tcase_add_test(tc, amz_date_against_strftime);
    suite_add_tcase(s, tc);

    tc = tcase_create("robustness");
    tcase_add_test(tc, bad_input);
    tcase_add_test(tc, authorization_too_long);
    tcase_add_test(tc, secret_never_in_output);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    s_discover_cases();
    int rc = fanout_check_run(s_suite());
    s_free_cases();
    return rc;
}
