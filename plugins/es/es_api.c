/*
 * The OpenSearch / Elasticsearch side of the es plugin: the destination,
 * one bulk entry per record, and the _bulk answer.
 *
 * Wire format (OpenSearch Bulk API, docs.opensearch.org/docs/latest/
 * api-reference/document-apis/bulk/; Elasticsearch 6.0 reference,
 * docs-bulk.html): POST /<index>/_bulk, or /<index>/<type>/_bulk for the
 * mapping types of Elasticsearch before 7 (the index and type in the path
 * stand for "_index" and "_type" in every action), with a newline-delimited
 * JSON body: an action line, then the document line for index, each line
 * ending with '\n', the last one included. The answer is 200 even when
 * entries fail: {"took", "errors", "items": [{"<action>": {"_index", "_id",
 * "status", "error"?}}]}, one item per action, in request order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "es.h"

/* Deeper JSON is sent wrapped as text: OpenSearch's parser refuses such
 * documents anyway (Jackson's StreamReadConstraints allow 1000 levels, and
 * index.mapping.depth.limit defaults to 20). */
#define S_MAX_DEPTH 1000

/* ---- buffer ---- */

void es_buf_put(struct es_buf *b, const void *src, size_t n)
{
    if (!b->oom && n && fanout_sbuf_put(&b->s, src, n) != 0)
        b->oom = 1;
}

void es_buf_puts(struct es_buf *b, const char *s)
{
    es_buf_put(b, s, strlen(s));
}

void es_buf_free(struct es_buf *b)
{
    fanout_sbuf_free(&b->s);
    b->oom = 0;
}

/* ---- text helpers ---- */

/* Valid UTF-8 text as a JSON string (callers check it is UTF-8 first, so
 * the SDK's replacement of invalid sequences never applies). */
static void s_json_str(struct es_buf *b, const uint8_t *s, size_t n)
{
    if (!b->oom && fanout_sbuf_json_str(&b->s, s, n) != 0)
        b->oom = 1;
}

static void s_b64_str(struct es_buf *b, const uint8_t *p, size_t n)
{
    es_buf_put(b, "\"", 1);
    if (!b->oom && fanout_sbuf_base64(&b->s, p, n) != 0)
        b->oom = 1;
    es_buf_put(b, "\"", 1);
}

/* ---- destination ---- */

static int s_err(char *err, size_t err_len, const char *fmt, ...) FANOUT_PRINTF(3, 4);
static int s_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return -1;
}

/* A name as shown in a message: cut, control bytes as '?'. */
static const char *s_shown(const char *s, size_t n, char *out, size_t out_len)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < out_len; i++)
        out[k++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    if (k < n && k + 4 <= out_len) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = 0;
    return out;
}

/* What index names and mapping types have in common: not empty (`what`
 * after `sep`), at most `max` bytes, UTF-8. `shown` (80 bytes) gets the
 * name as shown in messages. */
static int s_name_check(const char *what, const char *sep, int max, const char *s, size_t n,
                        char shown[80], char *err, size_t err_len)
{
    s_shown(s, n, shown, 80);
    if (n == 0)
        return s_err(err, err_len, "the %s after %s is empty", what, sep);
    if (n > (size_t)max)
        return s_err(err, err_len, "%s \"%s\" is %zu bytes; the limit is %d bytes", what,
                     shown, n, max);
    if (!fanout_utf8_check((const uint8_t *)s, n))
        return s_err(err, err_len, "%s \"%s\" is not valid UTF-8", what, shown);
    return 0;
}

/* OpenSearch's rules for index names (MetadataCreateIndexService.
 * validateIndexOrAliasName plus the lowercase check; the same as
 * Elasticsearch 7+), with control characters refused as well. */
static int s_index_check(const char *s, size_t n, char *err, size_t err_len)
{
    char shown[80];
    if (s_name_check("index name", "'#'", ES_MAX_INDEX_BYTES, s, n, shown, err, err_len))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            return s_err(err, err_len, "index name \"%s\" must be lowercase", shown);
        if (c < 0x20 || c == 0x7f)
            return s_err(err, err_len, "index name \"%s\" contains a control character",
                         shown);
        if (strchr("\\/*?\"<>| ,#:", c))
            return s_err(err, err_len,
                         "index name \"%s\" must not contain '%c' (nor any of \\ / * ? \" "
                         "< > | , # : or a space)",
                         shown, c);
    }
    if (s[0] == '_' || s[0] == '-' || s[0] == '+')
        return s_err(err, err_len, "index name \"%s\" must not start with '_', '-' or '+'",
                     shown);
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return s_err(err, err_len, "index name must not be \".\" or \"..\"");
    return 0;
}

/* Mapping types (Elasticsearch before 7): no leading '_' except "_doc". */
static int s_type_check(const char *s, size_t n, char *err, size_t err_len)
{
    char shown[80];
    if (s_name_check("document type", "'/'", ES_MAX_TYPE_BYTES, s, n, shown, err, err_len))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == '/' || c == '#' || c == ',')
            return s_err(err, err_len,
                         "document type \"%s\" must not contain '/', '#', ',', spaces or "
                         "control characters",
                         shown);
    }
    if (s[0] == '_' && !(n == 4 && memcmp(s, "_doc", 4) == 0))
        return s_err(err, err_len,
                     "document type \"%s\" must not start with '_' (except \"_doc\")",
                     shown);
    return 0;
}

static int s_region_label(const char *s, size_t n)
{
    int dash = 0, digit = 0;
    if (n < 4 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '-')
            dash = 1;
        else if (s[i] >= '0' && s[i] <= '9')
            digit = 1;
        else if (!(s[i] >= 'a' && s[i] <= 'z'))
            return 0;
    }
    return dash && digit;
}

static int s_ends_with(const char *s, size_t n, const char *suffix, size_t *at)
{
    size_t k = strlen(suffix);
    if (n <= k || strncmp(s + n - k, suffix, k) != 0)
        return 0;
    *at = n - k;
    return 1;
}

/* The region and signing name an AWS host name carries:
 *   <domain>.<region>.es.amazonaws.com[.cn]   OpenSearch Service, "es"
 *   <collection>.<region>.aoss.amazonaws.com  OpenSearch Serverless, "aoss"
 *   <collection>.aoss.<region>.on.aws          OpenSearch Serverless NextGen
 *                                               endpoints, "aoss" (UNCONFIRMED)
 * (managedomains-signing-service-requests.html: domain endpoints are
 * domain-id.region.es.amazonaws.com; serverless-collection-endpoints.html
 * for the collection endpoints.) The signing name "aoss" is what AWS's own
 * OpenSearch clients use for collections (opensearch-py AWSV4SignerAuth,
 * the Go and Java clients); the fact sheet marks it UNCONFIRMED. */
static void s_host_facts(const char *host, size_t n, struct es_dest *d)
{
    char low[300];
    if (n >= sizeof low)
        return;
    for (size_t i = 0; i < n; i++)
        low[i] = (host[i] >= 'A' && host[i] <= 'Z') ? (char)(host[i] - 'A' + 'a') : host[i];
    low[n] = 0;
    static const struct {
        const char *suffix;
        const char *signer;
    } tails[] = {{".es.amazonaws.com", "es"},
                 {".es.amazonaws.com.cn", "es"},
                 {".aoss.amazonaws.com", "aoss"}};
    size_t at;
    for (size_t t = 0; t < sizeof tails / sizeof *tails; t++) {
        if (!s_ends_with(low, n, tails[t].suffix, &at))
            continue;
        /* the region is the label just before the suffix, and something
         * (the domain or collection) comes before it */
        size_t r = at;
        while (r > 0 && low[r - 1] != '.')
            r--;
        if (r < 2 || !s_region_label(low + r, at - r))
            return;
        d->region = fanout_strndup(low + r, at - r);
        d->signer = tails[t].signer;
        d->aws_host = 1;
        return;
    }
    if (s_ends_with(low, n, ".on.aws", &at)) {
        size_t r = at;
        while (r > 0 && low[r - 1] != '.')
            r--;
        if (r >= 6 && memcmp(low + r - 6, ".aoss.", 6) == 0 && r - 6 > 0 &&
            s_region_label(low + r, at - r)) {
            d->region = fanout_strndup(low + r, at - r);
            d->signer = "aoss";
            d->aws_host = 1;
        }
    }
}

static int s_port_ok(const char *s, size_t n)
{
    unsigned long v = 0;
    if (n == 0 || n > 5)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

static int s_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.';
}

/* host[:port] (or [v6]:port): 0 with the host part's length, or -1. */
static int s_host_port(const char *s, size_t n, size_t *host_len, char *err, size_t err_len)
{
    char shown[80];
    size_t h = 0;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return s_err(err, err_len, "unclosed '[' in the endpoint's host");
        h = (size_t)(close - s) + 1;
    } else {
        while (h < n && s_host_char(s[h]))
            h++;
    }
    if (h == 0)
        return s_err(err, err_len, "the endpoint has no host name");
    if (h < n && (s[h] != ':' || !s_port_ok(s + h + 1, n - h - 1)))
        return s_err(
            err, err_len,
            "endpoint \"%s\": expected a host name (letters, digits, '-' and '.'), "
            "optionally with :port",
            s_shown(s, n, shown, sizeof shown));
    *host_len = h;
    return 0;
}

int es_dest_parse(const char *destination, struct es_dest *d, char *err, size_t err_len)
{
    memset(d, 0, sizeof *d);
    d->signer = "es";
    if (!destination || !*destination)
        return s_err(err, err_len, "the destination is empty: expected <endpoint>#<index>");
    const char *hash = strchr(destination, '#');
    if (!hash)
        return s_err(err, err_len,
                     "no '#' in the destination: expected <endpoint>#<index> or "
                     "<endpoint>#<index>/<type>, the domain endpoint, '#', and the index");
    size_t elen = (size_t)(hash - destination);
    const char *target = hash + 1;
    if (elen == 0)
        return s_err(err, err_len, "nothing before '#': the domain endpoint is missing");
    if (!*target)
        return s_err(err, err_len, "nothing after '#': the index name is missing");

    const char *slash = strchr(target, '/');
    size_t ilen = slash ? (size_t)(slash - target) : strlen(target);
    if (s_index_check(target, ilen, err, err_len) != 0)
        return -1;
    if (slash && s_type_check(slash + 1, strlen(slash + 1), err, err_len) != 0)
        return -1;

    /* the endpoint: a URL, or a bare host name for https */
    const char *ep = destination, *sep = NULL;
    for (size_t i = 0; i + 2 < elen; i++)
        if (ep[i] == ':' && ep[i + 1] == '/' && ep[i + 2] == '/') {
            sep = ep + i;
            break;
        }
    const char *hostp;
    size_t hostn, rest;
    if (sep) {
        size_t sl = (size_t)(sep - ep);
        if (!((sl == 4 && strncasecmp(ep, "http", 4) == 0) ||
              (sl == 5 && strncasecmp(ep, "https", 5) == 0)))
            return s_err(err, err_len, "the endpoint's scheme must be http or https");
        hostp = sep + 3;
        size_t after = elen - (size_t)(hostp - ep);
        const char *path = memchr(hostp, '/', after);
        size_t hp = path ? (size_t)(path - hostp) : after;
        if (s_host_port(hostp, hp, &hostn, err, err_len) != 0)
            return -1;
        /* a path prefix (a proxy in front of the domain) is kept; no query
         * or fragment */
        for (size_t i = 0; path && i < after - hp; i++) {
            unsigned char c = (unsigned char)path[i];
            if (c <= 0x20 || c == 0x7f || c == '?')
                return s_err(err, err_len,
                             "the endpoint URL's path must have no query, spaces or "
                             "control characters");
        }
        rest = elen;
        while (rest > 0 && ep[rest - 1] == '/')
            rest--;
        d->endpoint = fanout_strndup(ep, rest);
    } else {
        if (s_host_port(ep, elen, &hostn, err, err_len) != 0)
            return -1;
        hostp = ep;
        d->endpoint = malloc(elen + 9);
        if (d->endpoint) {
            memcpy(d->endpoint, "https://", 8);
            memcpy(d->endpoint + 8, ep, elen);
            d->endpoint[elen + 8] = 0;
        }
    }
    d->index = fanout_strndup(target, ilen);
    if (slash)
        d->doctype = strdup(slash + 1);
    if (!d->endpoint || !d->index || (slash && !d->doctype)) {
        es_dest_free(d);
        return s_err(err, err_len, "out of memory");
    }
    s_host_facts(hostp, hostn, d);
    return 0;
}

void es_dest_free(struct es_dest *d)
{
    free(d->endpoint);
    free(d->index);
    free(d->doctype);
    free(d->region);
    memset(d, 0, sizeof *d);
}

/* RFC 3986 unreserved characters stay, everything else is %XX: what SigV4
 * canonical URIs expect, so the path is signed as it is sent. */
static void s_uri_segment(struct es_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            es_buf_put(b, s, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            es_buf_put(b, e, 3);
        }
    }
}

char *es_bulk_path(const struct es_dest *d)
{
    struct es_buf b = {0};
    es_buf_put(&b, "/", 1);
    s_uri_segment(&b, d->index);
    if (d->doctype) {
        es_buf_put(&b, "/", 1);
        s_uri_segment(&b, d->doctype);
    }
    es_buf_puts(&b, "/_bulk"); /* the buffer keeps a NUL after it */
    if (b.oom) {
        es_buf_free(&b);
        return NULL;
    }
    return b.s.p;
}

/* ---- JSON: checking a document without building it ---- */

/* What the scan found for the id field. */
enum s_id_kind { S_ID_ABSENT = 0, S_ID_STRING, S_ID_NUMBER, S_ID_OTHER };

struct s_scan {
    const char *field; /* the top-level member looked for, or NULL */
    size_t field_len;
    enum s_id_kind kind;
    size_t vstart, vlen; /* the value's token (quotes included for a string) */
};

static size_t s_ws(const uint8_t *p, size_t n, size_t i)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

static int s_hex(uint8_t c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A string token at p[i] == '"': the index after its closing quote, or 0. */
static size_t s_string(const uint8_t *p, size_t n, size_t i)
{
    i++;
    while (i < n) {
        uint8_t c = p[i];
        if (c == '"')
            return i + 1;
        if (c == '\\') {
            if (i + 1 >= n)
                return 0;
            uint8_t e = p[i + 1];
            if (e == 'u') {
                if (i + 5 >= n)
                    return 0;
                for (size_t k = 2; k < 6; k++)
                    if (s_hex(p[i + k]) < 0)
                        return 0;
                i += 6;
            } else if (strchr("\"\\/bfnrt", e) && e) {
                i += 2;
            } else {
                return 0;
            }
        } else if (c < 0x20) {
            return 0;
        } else if (c < 0x80) {
            i++;
        } else {
            size_t k = fanout_utf8_seq(p + i, n - i);
            if (!k)
                return 0;
            i += k;
        }
    }
    return 0;
}

static size_t s_number(const uint8_t *p, size_t n, size_t i)
{
    size_t s = i;
    if (i < n && p[i] == '-')
        i++;
    if (i < n && p[i] == '0') {
        i++;
    } else if (i < n && p[i] >= '1' && p[i] <= '9') {
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < n && p[i] == '.') {
        size_t d = ++i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        size_t d = i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    return i > s ? i : 0;
}

/* Decode a string token's content (without its quotes) into UTF-8. */
static void s_unescape(const uint8_t *p, size_t n, struct es_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\') {
            es_buf_put(out, p + i, 1);
            continue;
        }
        uint8_t e = p[++i];
        const char *simple = NULL;
        switch (e) {
        case 'b': simple = "\b"; break;
        case 'f': simple = "\f"; break;
        case 'n': simple = "\n"; break;
        case 'r': simple = "\r"; break;
        case 't': simple = "\t"; break;
        case 'u': break;
        default: es_buf_put(out, &e, 1); continue;
        }
        if (simple) {
            es_buf_puts(out, simple);
            continue;
        }
        uint32_t cp = 0;
        for (size_t k = 1; k <= 4; k++)
            cp = cp << 4 | (uint32_t)s_hex(p[i + k]);
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < n && p[i + 1] == '\\' &&
            p[i + 2] == 'u') {
            uint32_t lo = 0;
            for (size_t k = 3; k <= 6; k++)
                lo = lo << 4 | (uint32_t)s_hex(p[i + k]);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
        }
        uint8_t u[4];
        size_t k;
        if (cp < 0x80) {
            u[0] = (uint8_t)cp;
            k = 1;
        } else if (cp < 0x800) {
            u[0] = (uint8_t)(0xC0 | cp >> 6);
            u[1] = (uint8_t)(0x80 | (cp & 63));
            k = 2;
        } else if (cp < 0x10000) {
            u[0] = (uint8_t)(0xE0 | cp >> 12);
            u[1] = (uint8_t)(0x80 | ((cp >> 6) & 63));
            u[2] = (uint8_t)(0x80 | (cp & 63));
            k = 3;
        } else {
            u[0] = (uint8_t)(0xF0 | cp >> 18);
            u[1] = (uint8_t)(0x80 | ((cp >> 12) & 63));
            u[2] = (uint8_t)(0x80 | ((cp >> 6) & 63));
            u[3] = (uint8_t)(0x80 | (cp & 63));
            k = 4;
        }
        es_buf_put(out, u, k);
    }
}

/* Is the key token p[s..e) (quotes included) the field looked for? */
static int s_key_is(const uint8_t *p, size_t s, size_t e, const struct s_scan *sc)
{
    const uint8_t *q = p + s + 1;
    size_t n = e - s - 2;
    if (!memchr(q, '\\', n))
        return n == sc->field_len && memcmp(q, sc->field, n) == 0;
    struct es_buf b = {0};
    s_unescape(q, n, &b);
    int same = !b.oom && b.s.len == sc->field_len && memcmp(b.s.p, sc->field, b.s.len) == 0;
    es_buf_free(&b);
    return same;
}

/*
 * Is p[0..n) exactly one JSON object (RFC 8259; surrounding white space
 * allowed), in valid UTF-8? When sc->field is set, also find that top-level
 * member (the first one, if repeated). Iterative, so a deep document cannot
 * exhaust the stack.
 */
static int s_scan_object(const uint8_t *p, size_t n, struct s_scan *sc)
{
    char stack[S_MAX_DEPTH]; /* '{' or '[' per open container */
    size_t depth = 0;
    size_t i = s_ws(p, n, 0);
    enum { VALUE, KEY, AFTER } state = VALUE;
    int want = 0, capture = 0;
    enum s_id_kind kind = S_ID_ABSENT;
    if (i >= n || p[i] != '{')
        return 0;
    for (;;) {
        if (state == VALUE) {
            i = s_ws(p, n, i);
            if (i >= n)
                return 0;
            uint8_t c = p[i];
            size_t start = i;
            if (want) {
                want = 0;
                if (c == '"' || c == '-' || (c >= '0' && c <= '9')) {
                    capture = 1;
                    kind = c == '"' ? S_ID_STRING : S_ID_NUMBER;
                    sc->vstart = i;
                } else if (sc->kind == S_ID_ABSENT) {
                    sc->kind = S_ID_OTHER;
                }
            }
            if (c == '{' || c == '[') {
                if (depth == S_MAX_DEPTH)
                    return 0;
                stack[depth++] = (char)c;
                i = s_ws(p, n, i + 1);
                if (i < n && p[i] == (c == '{' ? '}' : ']')) {
                    depth--;
                    i++;
                    state = AFTER;
                } else {
                    state = c == '{' ? KEY : VALUE;
                }
                continue;
            }
            if (c == '"')
                i = s_string(p, n, i);
            else if (c == '-' || (c >= '0' && c <= '9'))
                i = s_number(p, n, i);
            else if (n - i >= 4 && memcmp(p + i, "true", 4) == 0)
                i += 4;
            else if (n - i >= 5 && memcmp(p + i, "false", 5) == 0)
                i += 5;
            else if (n - i >= 4 && memcmp(p + i, "null", 4) == 0)
                i += 4;
            else
                return 0;
            if (i == 0)
                return 0;
            if (capture) {
                capture = 0;
                if (sc->kind == S_ID_ABSENT) {
                    sc->kind = kind;
                    sc->vlen = i - start;
                }
            }
            state = AFTER;
        } else if (state == KEY) {
            i = s_ws(p, n, i);
            if (i >= n || p[i] != '"')
                return 0;
            size_t ks = i;
            i = s_string(p, n, i);
            if (i == 0)
                return 0;
            if (sc->field && depth == 1 && sc->kind == S_ID_ABSENT)
                want = s_key_is(p, ks, i, sc);
            i = s_ws(p, n, i);
            if (i >= n || p[i] != ':')
                return 0;
            i++;
            state = VALUE;
        } else { /* AFTER a value */
            i = s_ws(p, n, i);
            if (depth == 0)
                return i == n;
            if (i >= n)
                return 0;
            char top = stack[depth - 1];
            if (p[i] == ',') {
                i++;
                state = top == '{' ? KEY : VALUE;
            } else if ((p[i] == '}' && top == '{') || (p[i] == ']' && top == '[')) {
                depth--;
                i++;
            } else {
                return 0;
            }
        }
    }
}

/* ---- bulk entries ---- */

/* FNV-1a, 64 bits: a stable fingerprint of the source stream and the
 * record's key in default ids. Never change it: ids must stay the same
 * across versions, or a record resent after an upgrade is a new document. */
static uint64_t s_fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void s_copy_object(struct es_buf *b, const uint8_t *p, size_t n)
{
    /* In valid JSON a CR or LF can only be white space between tokens (a
     * string holds them escaped), so a space keeps the document the same
     * while keeping it on one NDJSON line. */
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n' && p[i] != '\r')
            continue;
        es_buf_put(b, p + run, i - run);
        es_buf_put(b, " ", 1);
        run = i + 1;
    }
    es_buf_put(b, p + run, n - run);
}

int es_entry_append(struct es_buf *b, const struct es_doc_opts *opts,
                    const struct fanout_message *m, int *is_delete,
                    struct fanout_outcome *o)
{
    const struct fanout_record *r = m->record_count ? m->records[0] : NULL;
    const uint8_t *data = m->body;
    size_t n = m->body_len;
    struct s_scan sc = {0};
    if (opts->id_mode == ES_ID_FIELD) {
        sc.field = opts->id_field;
        sc.field_len = strlen(opts->id_field);
    }
    int del =
        opts->id_mode == ES_ID_KEY && r && r->action && strcmp(r->action, "REMOVE") == 0;
    int object = s_scan_object(data, n, &sc);
    if (!object && !del && opts->refuse_non_json) {
        fanout_outcome_set(o, FANOUT_FATAL, "NotJsonObject",
                           "the record's data (%zu bytes) is not a JSON object, and the "
                           "mapping says nonJson \"refuse\"",
                           n);
        return -1;
    }

    /* the id, as a JSON string token */
    struct es_buf id = {0};
    switch (opts->id_mode) {
    case ES_ID_SEQUENCE: {
        char tail[64];
        uint64_t h = 0xcbf29ce484222325ULL;
        const char *arn = r && r->source_arn ? r->source_arn : "";
        h = s_fnv1a(h, arn, strlen(arn) + 1); /* with the NUL as separator */
        h = s_fnv1a(h, m->key, m->key_len);
        snprintf(tail, sizeof tail, "-%llu-%016llx",
                 (unsigned long long)(r ? r->sub_sequence_number : 0),
                 (unsigned long long)h);
        struct es_buf raw = {0};
        es_buf_puts(&raw, r && r->sequence_number ? r->sequence_number : "");
        es_buf_puts(&raw, tail);
        if (!raw.oom && (raw.s.len > ES_MAX_ID_BYTES ||
                         !fanout_utf8_check((uint8_t *)raw.s.p, raw.s.len))) {
            fanout_outcome_set(o, FANOUT_FATAL, "InvalidDocumentId",
                               "the id made from the sequence number is %zu bytes or not "
                               "UTF-8; OpenSearch takes ids of at most %d bytes",
                               raw.s.len, ES_MAX_ID_BYTES);
            es_buf_free(&raw);
            return -1;
        }
        if (!raw.oom)
            s_json_str(&id, (uint8_t *)raw.s.p, raw.s.len);
        id.oom |= raw.oom;
        es_buf_free(&raw);
        break;
    }
    case ES_ID_KEY:
        if (m->key_len == 0 || m->key_len > ES_MAX_ID_BYTES ||
            !fanout_utf8_check(m->key, m->key_len)) {
            fanout_outcome_set(
                o, FANOUT_FATAL, "InvalidDocumentId",
                "documentId \"key\": the record's key is %zu bytes%s; an id "
                "is 1 to %d bytes of UTF-8",
                m->key_len, fanout_utf8_check(m->key, m->key_len) ? "" : " and not UTF-8",
                ES_MAX_ID_BYTES);
            return -1;
        }
        s_json_str(&id, m->key, m->key_len);
        break;
    case ES_ID_FIELD: {
        if (!object || sc.kind == S_ID_ABSENT || sc.kind == S_ID_OTHER) {
            fanout_outcome_set(o, FANOUT_FATAL, "MissingDocumentId",
                               "idField \"%.64s\": %s", opts->id_field,
                               !object ? "the record's data is not a JSON object"
                               : sc.kind == S_ID_ABSENT
                                   ? "the document has no such top-level field"
                                   : "the field is not a string or a number");
            return -1;
        }
        const uint8_t *v = data + sc.vstart;
        size_t bytes = sc.vlen;
        if (sc.kind == S_ID_STRING) {
            struct es_buf dec = {0};
            s_unescape(v + 1, sc.vlen - 2, &dec);
            bytes = dec.s.len;
            es_buf_free(&dec);
        }
        if (bytes == 0 || bytes > ES_MAX_ID_BYTES) {
            fanout_outcome_set(o, FANOUT_FATAL, "InvalidDocumentId",
                               "idField \"%.64s\" is %zu bytes; an id is 1 to %d bytes",
                               opts->id_field, bytes, ES_MAX_ID_BYTES);
            return -1;
        }
        if (sc.kind == S_ID_STRING) {
            es_buf_put(&id, v, sc.vlen); /* already a JSON string token */
        } else {
            es_buf_put(&id, "\"", 1);
            es_buf_put(&id, v, sc.vlen);
            es_buf_put(&id, "\"", 1);
        }
        break;
    }
    case ES_ID_NONE: break;
    }

    size_t start = b->s.len;
    int oom_before = b->oom;
    es_buf_puts(b, del ? "{\"delete\":{" : "{\"index\":{");
    if (id.s.len) {
        es_buf_puts(b, "\"_id\":");
        es_buf_put(b, id.s.p, id.s.len);
    }
    es_buf_puts(b, "}}\n");
    if (!del) {
        if (object) {
            s_copy_object(b, data, n);
        } else if (fanout_utf8_check(data, n)) {
            es_buf_puts(b, "{\"data\":");
            s_json_str(b, data, n);
            es_buf_puts(b, "}");
        } else {
            es_buf_puts(b, "{\"dataBase64\":");
            s_b64_str(b, data, n);
            es_buf_puts(b, "}");
        }
        es_buf_put(b, "\n", 1);
    }
    int oom = id.oom || (b->oom && !oom_before);
    es_buf_free(&id);
    if (oom) {
        b->s.len = start;
        if (b->s.p)
            b->s.p[start] = 0;
        b->oom = oom_before;
        fanout_outcome_set(o, FANOUT_RETRY, "OutOfMemory",
                           "out of memory building the request");
        return -1;
    }
    *is_delete = del;
    return 0;
}

/* ---- the answer ---- */

/* An item's reason without what could quote the document: mapper errors
 * append "Preview of field's value: '...'" (OpenSearch DocumentParser). */
static void s_reason(const char *reason, char *out, size_t out_len)
{
    const char *cut = reason ? strstr(reason, "Preview of field's value") : NULL;
    size_t n = reason ? (cut ? (size_t)(cut - reason) : strlen(reason)) : 0;
    while (n && (reason[n - 1] == ' ' || reason[n - 1] == '.'))
        n--;
    if (n >= out_len)
        n = out_len - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = ((unsigned char)reason[i] < 0x20) ? ' ' : reason[i];
    out[n] = 0;
}

static void s_all(struct fanout_outcome *const *outs, size_t count, int status,
                  const char *code, const char *msg)
{
    for (size_t k = 0; k < count; k++)
        fanout_outcome_set(outs[k], status, code, "%s", msg);
}

/* What one action of the request asked: its action name and its _id (NULL
 * when the service picks one), read back from the request's action line. */
struct s_action {
    json_t *line; /* owns what follows */
    const char *name;
    const char *id;
};

/* The actions of the `count` entries of an ndjson _bulk request. Returns 0,
 * or -1 when the request is not what es_entry_append writes. */
static int s_actions(const uint8_t *req, size_t req_len, size_t count, struct s_action *a)
{
    size_t pos = 0;
    for (size_t k = 0; k < count; k++) {
        const uint8_t *nl = pos < req_len ? memchr(req + pos, '\n', req_len - pos) : NULL;
        if (!nl)
            return -1;
        size_t end = (size_t)(nl - req);
        a[k].line = json_loadb((const char *)req + pos, end - pos, 0, NULL);
        void *it = json_is_object(a[k].line) ? json_object_iter(a[k].line) : NULL;
        if (!it || json_object_size(a[k].line) != 1)
            return -1;
        a[k].name = json_object_iter_key(it);
        a[k].id = json_string_value(json_object_get(json_object_iter_value(it), "_id"));
        pos = end + 1;
        if (strcmp(a[k].name, "delete") != 0) { /* the document line */
            nl = pos < req_len ? memchr(req + pos, '\n', req_len - pos) : NULL;
            if (!nl)
                return -1;
            pos = (size_t)(nl - req) + 1;
        }
    }
    return pos == req_len ? 0 : -1;
}

/* The status of item k if it is an integral number, else 0. */
static long s_item_status(json_t *res)
{
    json_t *st = json_object_get(res, "status");
    if (!json_is_number(st))
        return 0;
    double v = json_number_value(st);
    return v >= 100 && v <= 599 && v == (double)(long)v ? (long)v : 0;
}

/*
 * Check that the answer holds together before believing any of it: HTTP
 * 200; an object with a boolean "errors" and one item per action; item k
 * names action k, has a status, the _id that action k sent (or some _id when
 * it sent none), a success status the Bulk API documents for that action
 * (index: 200 updated / 201 created; delete: 200, or 404 not_found without
 * an error), or an error with a 4xx/5xx status; and "errors" is true exactly
 * when an item has an error. Returns 0, or -1 with `why`.
 */
static int s_bulk_check(long status, json_t *root, size_t count, const struct s_action *a,
                        char *why, size_t why_len)
{
    json_t *items = json_object_get(root, "items");
    if (status != 200) {
        snprintf(why, why_len, "HTTP %ld where _bulk answers 200", status);
        return -1;
    }
    if (!json_is_object(root) || !json_is_array(items)) {
        snprintf(why, why_len, "no \"items\" list");
        return -1;
    }
    if (json_array_size(items) != count) {
        snprintf(why, why_len, "%zu items for the %zu actions sent", json_array_size(items),
                 count);
        return -1;
    }
    json_t *errors = json_object_get(root, "errors");
    if (!json_is_boolean(errors)) {
        snprintf(why, why_len, "no boolean \"errors\"");
        return -1;
    }
    int any_error = 0;
    for (size_t k = 0; k < count; k++) {
        json_t *item = json_array_get(items, k);
        void *it = json_is_object(item) ? json_object_iter(item) : NULL;
        json_t *res = it ? json_object_iter_value(it) : NULL;
        if (!it || json_object_size(item) != 1 || !json_is_object(res) ||
            strcmp(json_object_iter_key(it), a[k].name) != 0) {
            snprintf(why, why_len, "item %zu not a \"%s\" result", k, a[k].name);
            return -1;
        }
        long st = s_item_status(res);
        if (!st) {
            snprintf(why, why_len, "item %zu without a status", k);
            return -1;
        }
        json_t *err = json_object_get(res, "error");
        int failed = err && !json_is_null(err);
        const char *id = json_string_value(json_object_get(res, "_id"));
        if (a[k].id ? (id && strcmp(id, a[k].id) != 0) || (!failed && !id)
                    : !failed && (!id || !*id)) {
            snprintf(why, why_len, "item %zu with %s _id than action %zu sent", k,
                     id ? "another" : "no", k);
            return -1;
        }
        int del = strcmp(a[k].name, "delete") == 0;
        int ok_status = del ? st == 200 || st == 404 : st == 200 || st == 201;
        if (failed ? st < 400 : !ok_status) {
            snprintf(why, why_len, "item %zu with status %ld%s", k, st,
                     failed ? " and an error" : ", not a success of this action");
            return -1;
        }
        any_error |= failed;
    }
    if (json_is_true(errors) != any_error) {
        snprintf(why, why_len, "\"errors\": %s but %s item with an error",
                 json_is_true(errors) ? "true" : "false", any_error ? "an" : "no");
        return -1;
    }
    return 0;
}

int es_bulk_read(const uint8_t *req, size_t req_len, long status, const uint8_t *body,
                 size_t len, size_t count, struct fanout_outcome *const *outs)
{
    char msg[512], why[160];
    json_error_t je;
    struct s_action *a = calloc(count ? count : 1, sizeof *a);
    json_t *root = body && len
                       ? json_loadb((const char *)body, len,
                                    JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES, &je)
                       : NULL;
    int rc = -1;
    if (!a) {
        s_all(outs, count, FANOUT_RETRY, "OutOfMemory",
              "out of memory reading the _bulk answer");
        goto out;
    }
    if (s_actions(req, req_len, count, a) != 0) {
        s_all(outs, count, FANOUT_RETRY, "BulkRequestUnreadable",
              "the _bulk request sent could not be read back to check its answer");
        goto out;
    }
    if (!root || s_bulk_check(status, root, count, a, why, sizeof why) != 0) {
        if (!root && len)
            snprintf(why, sizeof why, "a body that is not JSON (%.60s)", je.text);
        else if (!root)
            snprintf(why, sizeof why, "an empty body");
        snprintf(msg, sizeof msg,
                 "the _bulk answer (%zu bytes) has %s; which documents were stored is "
                 "unknown, so all %zu are resent",
                 len, why, count);
        s_all(outs, count, FANOUT_RETRY, "BulkResponseMismatch", msg);
        goto out;
    }
    json_t *items = json_object_get(root, "items");
    for (size_t k = 0; k < count; k++) {
        json_t *res = json_object_iter_value(json_object_iter(json_array_get(items, k)));
        long st = s_item_status(res);
        json_t *error = json_object_get(res, "error");
        if (!error || json_is_null(error))
            continue; /* stored (or, for a delete, already gone) */
        const char *type = json_string_value(json_object_get(error, "type"));
        const char *reason = json_is_string(error)
                                 ? json_string_value(error)
                                 : json_string_value(json_object_get(error, "reason"));
        char text[200];
        s_reason(reason, text, sizeof text);
        char code[64];
        if (type)
            snprintf(code, sizeof code, "%s", type);
        else
            snprintf(code, sizeof code, "HTTP%ld", st);
        int kind = st == 429                ? FANOUT_THROTTLED
                   : st >= 500 || st == 408 ? FANOUT_RETRY
                                            : FANOUT_FATAL;
        fanout_outcome_set(outs[k], kind, code, "%s (HTTP %ld)%s%s",
                           kind == FANOUT_THROTTLED ? "throttled by the domain"
                           : kind == FANOUT_RETRY   ? "the domain failed this document"
                                                    : "the domain refused this document",
                           st, text[0] ? ": " : "", text);
    }
    rc = 0;
out:
    for (size_t k = 0; a && k < count; k++)
        json_decref(a[k].line);
    free(a);
    json_decref(root);
    return rc;
}
