/*
 * Regions, partitions, service endpoints and the shared config files.
 *
 * Sources:
 * - Partitions, DNS suffixes and region-name patterns: the SDK's table
 *   (sdk/lib/aws_partitions.c, from botocore's partitions.json).
 * - Host exceptions: each service's endpoint-rule-set-1.json in botocore
 *   (commit cd9207757d459bba9c524475b601e59f55760a3a).
 * - Endpoint override precedence: AWS SDKs and Tools reference guide,
 *   "Service-specific endpoints" (sdkref/latest/guide/feature-ss-endpoints)
 *   and botocore/configprovider.py.
 * - Shared file format: sdkref "Shared config and credentials files" and
 *   the SDKs' common profile-parser test suite (smithy-lang/smithy-rs,
 *   aws/rust-runtime/aws-config/test-data/profile-parser-tests.json).
 */
#include "aws/endpoint.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fanout/aws_partitions.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* ---- services ---- */

static const struct fanout_aws_service s_services[] = {
    {"kinesis", "KINESIS", "kinesis", "kinesis"},
    {"firehose", "FIREHOSE", "firehose", "firehose"},
    {"sqs", "SQS", "sqs", "sqs"},
    {"sns", "SNS", "sns", "sns"},
    {"lambda", "LAMBDA", "lambda", "lambda"},
    /* The default is the ATS data endpoint; the account-specific one
     * (xxxx-ats.iot.<region>...) comes from the destination. */
    {"iot_data_plane", "IOT_DATA_PLANE", "data-ats.iot", "iotdata"},
    {"dynamodb", "DYNAMODB", "dynamodb", "dynamodb"},
    {"dynamodb_streams", "DYNAMODB_STREAMS", "streams.dynamodb", "dynamodb"},
    /* Regional, as the SDKs now default to (sts_regional_endpoints). */
    {"sts", "STS", "sts", "sts"},
    /* The IAM Identity Center portal (GetRoleCredentials; bearer token). */
    {"sso", "SSO", "portal.sso", "awsssoportal"},
    {"cloudwatch_logs", "CLOUDWATCH_LOGS", "logs", "logs"},
    {"eventbridge", "EVENTBRIDGE", "events", "events"},
    /* An OpenSearch domain has its own host: no default. */
    {"es", "ES", NULL, "es"},
    /* Control plane, for the management commands' name lookups. */
    {"iot", "IOT", "iot", "execute-api"},
    {"elasticache", "ELASTICACHE", "elasticache", "elasticache"},
    /* Global: one endpoint per partition, signed for the partition's IAM
     * region (fanout_aws_signing_region). For the deployment commands. */
    {"iam", "IAM", "iam", "iam"},
};

const struct fanout_aws_service *fanout_aws_service_find(const char *id)
{
    if (!id)
        return NULL;
    for (size_t i = 0; i < sizeof s_services / sizeof *s_services; i++)
        if (strcmp(s_services[i].id, id) == 0)
            return &s_services[i];
    return NULL;
}

/* ---- partitions ---- */

/* The partitions (id, DNS suffix, region patterns) are the SDK's table
 * (fanout/aws_partitions.h), which the plugins that read AWS hosts use
 * too. */

/* Hosts that do not follow <prefix>.<region>.<suffix>, from the services'
 * endpoint rule sets (FIPS and dual-stack variants left out). */
struct s_host_exception {
    const char *service;
    const char *region;
    const char *host;
};

static const struct s_host_exception s_host_exceptions[] = {
    /* iot-data/2015-05-28/endpoint-rule-set-1.json */
    {"iot_data_plane", "cn-north-1", "data.ats.iot.cn-north-1.amazonaws.com.cn"},
    /* sts/2011-06-15/endpoint-rule-set-1.json: the global pseudo-region */
    {"sts", "aws-global", "sts.amazonaws.com"},
    /* iam/2010-05-08/endpoint-rule-set-1.json: the partitions' global
     * endpoints (aws-cn's is iam.cn-north-1.amazonaws.com.cn, the usual
     * form) */
    {"iam", "us-east-1", "iam.amazonaws.com"},
    {"iam", "us-gov-west-1", "iam.us-gov.amazonaws.com"},
};

/* Global services: the region a request is signed for (and its host
 * chosen by) in each partition. */
static const struct {
    const char *service, *partition, *region;
} s_global_regions[] = {
    {"iam", "aws", "us-east-1"},
    {"iam", "aws-cn", "cn-north-1"},
    {"iam", "aws-us-gov", "us-gov-west-1"},
};

const char *fanout_aws_signing_region(const char *service, const char *region)
{
    const char *partition = fanout_aws_partition(region);
    for (size_t i = 0; service && i < sizeof s_global_regions / sizeof *s_global_regions;
         i++)
        if (!strcmp(s_global_regions[i].service, service) &&
            !strcmp(s_global_regions[i].partition, partition))
            return s_global_regions[i].region;
    return region;
}

const char *fanout_aws_partition(const char *region)
{
    return fanout_aws_partition_of(region)->id;
}

const char *fanout_aws_dns_suffix(const char *region)
{
    return fanout_aws_partition_of(region)->dns_suffix;
}

/* ---- small helpers ---- */

static void s_err(char *err, size_t err_len, const char *fmt, ...) FANOUT_FMT(3, 4);

static void s_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* An environment variable, or NULL when unset or empty (as the SDKs read
 * them). */
static const char *s_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* A printable copy of an untrusted value for an error message. */
static const char *s_shown(const char *s, char *buf, size_t len)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    buf[i] = '\0';
    return buf;
}

/* Region names go into host names and the signing scope: [a-z0-9-],
 * starting and ending with a letter or digit. */
static int s_region_valid(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > 64 || r[0] == '-' || r[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
            return 0;
    return 1;
}

/* ---- shared config files (INI) ---- */

/* Larger files are not AWS config files; reading stops there. */
#define S_MAX_FILE_BYTES (4u << 20)

struct s_slice {
    const char *p;
    size_t n;
};

static int s_ws(char c)
{
    return c == ' ' || c == '\t';
}

static struct s_slice s_trim(const char *p, size_t n)
{
    while (n && (s_ws(*p) || *p == '\r')) {
        p++;
        n--;
    }
    while (n && (s_ws(p[n - 1]) || p[n - 1] == '\r'))
        n--;
    struct s_slice s = {p, n};
    return s;
}

static int s_eq(struct s_slice s, const char *z)
{
    return strlen(z) == s.n && memcmp(s.p, z, s.n) == 0;
}

/* Property names are case-insensitive (parser test suite). */
static int s_ieq(struct s_slice s, const char *z)
{
    return strlen(z) == s.n && strncasecmp(s.p, z, s.n) == 0;
}

/* Profile and services names: letters, digits and - / . % @ _ : + */
static int s_name_valid(struct s_slice s)
{
    if (s.n == 0)
        return 0;
    for (size_t i = 0; i < s.n; i++)
        if (!isalnum((unsigned char)s.p[i]) && !strchr("-/.%@_:+", s.p[i]))
            return 0;
    return 1;
}

/* "value ; comment" and "value # comment": a comment starts at '#' or ';'
 * after whitespace; "value#x" keeps its '#'. */
static struct s_slice s_strip_comment(struct s_slice v)
{
    for (size_t i = 1; i < v.n; i++)
        if ((v.p[i] == '#' || v.p[i] == ';') && s_ws(v.p[i - 1]))
            return s_trim(v.p, i);
    return v;
}

enum s_section {
    S_SEC_NONE,
    S_SEC_PROFILE,      /* [profile name], [name] in the credentials file */
    S_SEC_BARE_DEFAULT, /* [default] in the config file */
    S_SEC_SERVICES,     /* [services name] */
    S_SEC_SSO_SESSION,  /* [sso-session name] */
};

/* `inner` is what stands between the brackets. */
static enum s_section s_header(int credentials, struct s_slice inner, struct s_slice *name)
{
    inner = s_trim(inner.p, inner.n);
    if (credentials) {
        /* "[profile foo]" is not a credentials-file profile: the space
         * makes it an invalid name. */
        *name = inner;
        return s_name_valid(inner) ? S_SEC_PROFILE : S_SEC_NONE;
    }
    if (s_eq(inner, "default")) {
        *name = inner;
        return S_SEC_BARE_DEFAULT;
    }
    static const struct {
        const char *word;
        enum s_section kind;
    } kinds[] = {{"profile", S_SEC_PROFILE},
                 {"services", S_SEC_SERVICES},
                 {"sso-session", S_SEC_SSO_SESSION}};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        size_t w = strlen(kinds[i].word);
        if (inner.n > w && memcmp(inner.p, kinds[i].word, w) == 0 && s_ws(inner.p[w])) {
            *name = s_trim(inner.p + w, inner.n - w);
            return s_name_valid(*name) ? kinds[i].kind : S_SEC_NONE;
        }
    }
    return S_SEC_NONE;
}

struct s_query {
    int credentials;
    enum s_section kind;
    const char *name;
    const char *key;
    const char *sub; /* sub-property of `key`, or NULL */
};

struct s_result {
    int section_seen;
    char *value;
};

static void s_set(struct s_result *r, struct s_slice v)
{
    char *c = malloc(v.n + 1);
    if (!c)
        return;
    memcpy(c, v.p, v.n);
    c[v.n] = '\0';
    free(r->value);
    r->value = c;
}

static void s_clear(struct s_result *r)
{
    free(r->value);
    r->value = NULL;
}

/* "name = value\n  more" reads "value\nmore". */
static void s_continue(struct s_result *r, struct s_slice t)
{
    if (!r->value)
        return;
    size_t n = strlen(r->value);
    char *c = realloc(r->value, n + 1 + t.n + 1);
    if (!c)
        return;
    c[n] = '\n';
    memcpy(c + n + 1, t.p, t.n);
    c[n + 1 + t.n] = '\0';
    r->value = c;
}

/* One pass over the file. The last definition wins, and sections of the
 * same name merge, as in the SDKs. Lines that do not parse are skipped
 * rather than failing the whole file. */
static void s_scan(const char *text, size_t len, const struct s_query *q,
                   struct s_result *r)
{
    int in_target = 0, have_prop = 0, prop_match = 0, prop_empty = 0;
    size_t i = 0;
    while (i < len) {
        const char *line = text + i;
        const char *nl = memchr(line, '\n', len - i);
        size_t n = nl ? (size_t)(nl - line) : len - i;
        i += n + (nl ? 1 : 0);
        struct s_slice t = s_trim(line, n);
        if (t.n == 0 || t.p[0] == '#' || t.p[0] == ';')
            continue; /* blank lines and comments keep the property open */
        if (s_ws(line[0])) {
            /* A sub-property (the property's value was empty) or a
             * continuation of the value. */
            if (!in_target || !have_prop || !prop_match)
                continue;
            if (prop_empty) {
                const char *eq = memchr(t.p, '=', t.n);
                if (!q->sub || !eq)
                    continue;
                struct s_slice k = s_trim(t.p, (size_t)(eq - t.p));
                if (s_ieq(k, q->sub))
                    s_set(r, s_trim(eq + 1, (size_t)(t.p + t.n - eq - 1)));
            } else if (!q->sub) {
                s_continue(r, t);
            }
            continue;
        }
        have_prop = 0;
        if (line[0] == '[') {
            in_target = 0;
            const char *close = memchr(line, ']', n);
            if (!close)
                continue;
            struct s_slice after = s_trim(close + 1, (size_t)(line + n - close - 1));
            if (after.n && after.p[0] != '#' && after.p[0] != ';')
                continue;
            struct s_slice inner = {line + 1, (size_t)(close - line - 1)};
            struct s_slice name = {NULL, 0};
            enum s_section kind = s_header(q->credentials, inner, &name);
            if (kind == q->kind && s_eq(name, q->name)) {
                in_target = 1;
                r->section_seen = 1;
            }
            continue;
        }
        if (!in_target)
            continue;
        const char *eq = memchr(line, '=', n);
        if (!eq)
            continue;
        struct s_slice k = s_trim(line, (size_t)(eq - line));
        if (k.n == 0)
            continue;
        struct s_slice v = s_strip_comment(s_trim(eq + 1, (size_t)(line + n - eq - 1)));
        have_prop = 1;
        prop_match = s_ieq(k, q->key);
        prop_empty = v.n == 0;
        if (prop_match) {
            if (q->sub)
                s_clear(r); /* a new definition replaces the old block */
            else
                s_set(r, v);
        }
    }
}

/* A property of a profile. In the config file "[profile default]" wins
 * over "[default]" when both exist (parser test suite). */
static char *s_profile_get(const char *text, size_t len, int credentials,
                           const char *profile, const char *key, const char *sub)
{
    struct s_query q = {credentials, S_SEC_PROFILE, profile, key, sub};
    struct s_result r = {0, NULL};
    s_scan(text, len, &q, &r);
    if (!credentials && !r.section_seen && strcmp(profile, "default") == 0) {
        q.kind = S_SEC_BARE_DEFAULT;
        s_scan(text, len, &q, &r);
    }
    return r.value;
}

static char *s_services_get(const char *text, size_t len, const char *services,
                            const char *key, const char *sub)
{
    struct s_query q = {0, S_SEC_SERVICES, services, key, sub};
    struct s_result r = {0, NULL};
    s_scan(text, len, &q, &r);
    return r.value;
}

static char *s_file_path(int credentials)
{
    const char *env =
        s_env(credentials ? "AWS_SHARED_CREDENTIALS_FILE" : "AWS_CONFIG_FILE");
    const char *home = s_env("HOME");
    struct fanout_sbuf b = {0};
    int rc;
    if (env && env[0] == '~' && (env[1] == '/' || env[1] == '\0')) {
        if (!home)
            return NULL;
        rc = fanout_sbuf_printf(&b, "%s%s", home, env + 1);
    } else if (env) {
        rc = fanout_sbuf_puts(&b, env);
    } else {
        if (!home)
            return NULL;
        rc = fanout_sbuf_printf(&b, "%s/.aws/%s", home,
                                credentials ? "credentials" : "config");
    }
    if (rc != 0) {
        fanout_sbuf_free(&b);
        return NULL;
    }
    return (char *)b.bytes;
}

/* The whole file, or NULL when it is missing, unreadable or too large. */
static char *s_read_file(int credentials, size_t *len)
{
    char *path = s_file_path(credentials);
    if (!path)
        return NULL;
    /* open(2), not fopen: every AWS request looks for the config file,
     * which usually does not exist, and a FILE is an allocation */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        free(path);
        return NULL;
    }
    struct fanout_sbuf b = {0};
    char chunk[8192];
    int ok = 1;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ok = n == 0;
            break;
        }
        if (b.len + (size_t)n > S_MAX_FILE_BYTES ||
            fanout_sbuf_put(&b, chunk, (size_t)n) != 0) {
            ok = 0;
            break;
        }
    }
    close(fd);
    if (!ok) {
        LOG_WARN("aws", "%s: not read (unreadable, or larger than %u bytes)", path,
                 S_MAX_FILE_BYTES);
        free(path);
        fanout_sbuf_free(&b);
        return NULL;
    }
    free(path);
    *len = b.len;
    return b.bytes ? (char *)b.bytes : strdup("");
}

static const char *s_profile_name(const char *profile)
{
    if (profile && *profile)
        return profile;
    const char *env = s_env("AWS_PROFILE");
    return env ? env : "default";
}

/* `key` is "name" or "name.sub". In the config file, "name.sub" is first
 * looked up in the "[services X]" section that the profile's `services = X`
 * names (where endpoint_url lives), then in the profile itself. */
static char *s_lookup(const char *text, size_t len, int credentials, const char *profile,
                      const char *key)
{
    char *k = strdup(key);
    if (!k)
        return NULL;
    char *sub = strchr(k, '.');
    if (sub)
        *sub++ = '\0';
    char *v = NULL;
    if (sub && !credentials) {
        char *services = s_profile_get(text, len, 0, profile, "services", NULL);
        if (services && *services)
            v = s_services_get(text, len, services, k, sub);
        free(services);
    }
    if (!v)
        v = s_profile_get(text, len, credentials, profile, k, sub);
    free(k);
    return v;
}

char *fanout_aws_profile_value(int credentials_file, const char *profile, const char *key)
{
    if (!key || !*key)
        return NULL;
    size_t len = 0;
    char *text = s_read_file(credentials_file, &len);
    if (!text)
        return NULL;
    char *v = s_lookup(text, len, credentials_file, s_profile_name(profile), key);
    free(text);
    return v;
}

char *fanout_aws_sso_session_value(const char *session, const char *key)
{
    if (!session || !*session || !key || !*key)
        return NULL;
    size_t len = 0;
    char *text = s_read_file(0, &len);
    if (!text)
        return NULL;
    struct s_query q = {0, S_SEC_SSO_SESSION, session, key, NULL};
    struct s_result r = {0, NULL};
    s_scan(text, len, &q, &r);
    free(text);
    if (!r.value && r.section_seen)
        return strdup(""); /* the section exists, without that key */
    return r.value;
}

/* ---- region ---- */

int fanout_aws_region(const char *explicit_region, char *out, size_t out_len, char *err,
                      size_t err_len)
{
    const char *value = NULL, *source = NULL;
    char *owned = NULL;
    if (explicit_region && *explicit_region) {
        value = explicit_region;
        source = "region";
    } else if ((value = s_env("AWS_REGION"))) {
        source = "AWS_REGION";
    } else if ((value = s_env("AWS_DEFAULT_REGION"))) {
        source = "AWS_DEFAULT_REGION";
    } else {
        owned = fanout_aws_profile_value(0, NULL, "region");
        if (owned && *owned) {
            value = owned;
            source = "the config file's region";
        }
    }
    int rc = -1;
    char shown[72];
    if (!value)
        s_err(err, err_len,
              "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or region in the "
              "profile of the config file)");
    else if (!s_region_valid(value))
        s_err(err, err_len, "%s: \"%s\" is not a region name (a-z, 0-9 and '-' only)",
              source, s_shown(value, shown, sizeof shown));
    else if (strlen(value) >= out_len)
        s_err(err, err_len, "%s: region name too long", source);
    else {
        memcpy(out, value, strlen(value) + 1);
        rc = 0;
    }
    free(owned);
    return rc;
}

/* ---- URLs ---- */

static void s_lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static int s_copy(char *dst, size_t dst_len, const char *src, size_t n)
{
    if (!dst)
        return 0;
    if (n >= dst_len)
        return -1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

int fanout_url_split(const char *url, char *scheme, size_t scheme_len, char *host_port,
                     size_t host_len, char *path, size_t path_len)
{
    if (!url)
        return -1;
    const char *sep = strstr(url, "://");
    if (!sep)
        return -1;
    size_t sn = (size_t)(sep - url);
    int https;
    if (sn == 5 && strncasecmp(url, "https", 5) == 0)
        https = 1;
    else if (sn == 4 && strncasecmp(url, "http", 4) == 0)
        https = 0;
    else
        return -1;

    const char *a = sep + 3;
    size_t an = strcspn(a, "/");
    const char *rest = a + an;
    /* Only scheme, host, port and path: no user info, query or fragment,
     * no whitespace or control characters anywhere. */
    for (const char *c = a; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == '?' || *c == '#' || *c == '\\')
            return -1;
    if (memchr(a, '@', an))
        return -1;

    const char *host = a, *port = NULL;
    size_t hn;
    if (an && a[0] == '[') { /* IPv6 literal */
        const char *end = memchr(a, ']', an);
        if (!end || end == a + 1)
            return -1;
        for (const char *c = a + 1; c < end; c++)
            if (!isxdigit((unsigned char)*c) && *c != ':' && *c != '.')
                return -1;
        hn = (size_t)(end - a) + 1;
        if (hn < an) {
            if (a[hn] != ':')
                return -1;
            port = a + hn + 1;
        }
    } else {
        const char *colon = memchr(a, ':', an);
        hn = colon ? (size_t)(colon - a) : an;
        if (colon)
            port = colon + 1;
        for (size_t i = 0; i < hn; i++)
            if (!isalnum((unsigned char)a[i]) && a[i] != '.' && a[i] != '-' && a[i] != '_')
                return -1;
    }
    if (hn == 0)
        return -1;

    long port_no = -1;
    if (port) {
        size_t pn = (size_t)(a + an - port);
        if (pn == 0 || pn > 5)
            return -1;
        port_no = 0;
        for (size_t i = 0; i < pn; i++) {
            if (!isdigit((unsigned char)port[i]))
                return -1;
            port_no = port_no * 10 + (port[i] - '0');
        }
        if (port_no < 1 || port_no > 65535)
            return -1;
        if (port_no == (https ? 443 : 80))
            port_no = -1;
    }

    size_t pn = strlen(rest);
    while (pn && rest[pn - 1] == '/')
        pn--;

    char hp[300];
    if (hn + 7 > sizeof hp)
        return -1;
    memcpy(hp, host, hn);
    hp[hn] = '\0';
    s_lower(hp);
    if (port_no > 0)
        snprintf(hp + hn, sizeof hp - hn, ":%ld", port_no);

    if (s_copy(scheme, scheme_len, https ? "https" : "http", https ? 5 : 4) != 0 ||
        s_copy(host_port, host_len, hp, strlen(hp)) != 0 ||
        s_copy(path, path_len, rest, pn) != 0)
        return -1;
    return 0;
}

/* ---- endpoint ---- */

/* A configured URL, checked and normalised into `url`. */
static int s_emit(const char *service, const char *value, const char *source, char *url,
                  size_t url_len, char *err, size_t err_len)
{
    char scheme[8], host[300], path[1024];
    char shown[128];
    if (fanout_url_split(value, scheme, sizeof scheme, host, sizeof host, path,
                         sizeof path) != 0) {
        s_err(err, err_len, "%s: \"%s\" is not an http(s)://host[:port][/path] URL", source,
              s_shown(value, shown, sizeof shown));
        return -1;
    }
    int n = snprintf(url, url_len, "%s://%s%s", scheme, host, path);
    if (n < 0 || (size_t)n >= url_len) {
        s_err(err, err_len, "%s: URL too long", source);
        return -1;
    }
    LOG_DEBUG("aws", "%s endpoint %s from %s", service, url, source);
    return 0;
}

static int s_true(const char *v)
{
    return v && strcasecmp(v, "true") == 0;
}

int fanout_aws_endpoint_url(const char *service, const char *region,
                            const char *user_endpoint, char *url, size_t url_len, char *err,
                            size_t err_len)
{
    char shown[72];
    const struct fanout_aws_service *svc = fanout_aws_service_find(service);
    if (!svc) {
        s_err(err, err_len, "unknown AWS service \"%s\"",
              s_shown(service ? service : "(null)", shown, sizeof shown));
        return -1;
    }
    if (!url || url_len == 0) {
        s_err(err, err_len, "%s: no room for the endpoint URL", svc->id);
        return -1;
    }
    if (region && *region && !s_region_valid(region)) {
        s_err(err, err_len, "\"%s\" is not a region name (a-z, 0-9 and '-' only)",
              s_shown(region, shown, sizeof shown));
        return -1;
    }

    /* The environment variable, when set, decides alone; else the profile's
     * ignore_configured_endpoint_urls (configprovider.py). */
    size_t len = 0;
    char *text = NULL;
    int loaded = 0;
    const char *ignore_env = s_env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    int ignore = s_true(ignore_env);
    const char *profile = s_profile_name(NULL);
    if (!ignore_env) {
        text = s_read_file(0, &len);
        loaded = 1;
        if (text) {
            char *v = s_lookup(text, len, 0, profile, "ignore_configured_endpoint_urls");
            ignore = s_true(v);
            free(v);
        }
    }

    int rc = 1; /* 1: not decided yet */
    if (!ignore) {
        char name[64];
        snprintf(name, sizeof name, "AWS_ENDPOINT_URL_%s", svc->env_suffix);
        const char *v = s_env(name);
        if (v)
            rc = s_emit(svc->id, v, name, url, url_len, err, err_len);
        else if ((v = s_env("AWS_ENDPOINT_URL")))
            rc = s_emit(svc->id, v, "AWS_ENDPOINT_URL", url, url_len, err, err_len);
        if (rc == 1) {
            if (!loaded)
                text = s_read_file(0, &len);
            if (text) {
                char key[64], source[128];
                snprintf(key, sizeof key, "%s.endpoint_url", svc->id);
                char *c = s_lookup(text, len, 0, profile, key);
                if (c && *c) {
                    snprintf(source, sizeof source, "the config file (%s)", key);
                    rc = s_emit(svc->id, c, source, url, url_len, err, err_len);
                }
                free(c);
                if (rc == 1) {
                    c = s_lookup(text, len, 0, profile, "endpoint_url");
                    if (c && *c)
                        rc = s_emit(svc->id, c, "the config file (endpoint_url)", url,
                                    url_len, err, err_len);
                    free(c);
                }
            }
        }
    }
    free(text);
    if (rc != 1)
        return rc;

    if (user_endpoint && *user_endpoint)
        return s_emit(svc->id, user_endpoint, "the destination's endpoint", url, url_len,
                      err, err_len);
    if (!svc->host_prefix) {
        s_err(err, err_len,
              "%s has no default endpoint: give the destination's endpoint (or set "
              "AWS_ENDPOINT_URL_%s)",
              svc->id, svc->env_suffix);
        return -1;
    }
    if (!region || !*region) {
        s_err(err, err_len, "%s: no region to build the endpoint from", svc->id);
        return -1;
    }
    const char *host = NULL;
    for (size_t i = 0; i < sizeof s_host_exceptions / sizeof *s_host_exceptions; i++)
        if (strcmp(s_host_exceptions[i].service, svc->id) == 0 &&
            strcmp(s_host_exceptions[i].region, region) == 0)
            host = s_host_exceptions[i].host;
    int n = host ? snprintf(url, url_len, "https://%s", host)
                 : snprintf(url, url_len, "https://%s.%s.%s", svc->host_prefix, region,
                            fanout_aws_dns_suffix(region));
    if (n < 0 || (size_t)n >= url_len) {
        s_err(err, err_len, "%s: endpoint URL too long", svc->id);
        return -1;
    }
    return 0;
}
