/*
 * The service's error code and message from an error response.
 *
 * Shapes (botocore/parsers.py, aws-sdk-js-v3 loadRestJsonErrorCode):
 * - JSON 1.0/1.1: {"__type": "com.amazonaws.kinesis#ThrottlingException",
 *   "message": "..."}; the code is what follows the last '#', without
 *   anything after a ':' ("Code:http://internal.amazon.com/...").
 * - REST-JSON: the x-amzn-ErrorType header (same clean-up, and the first
 *   of a comma-separated list), or "code"/"Code" in the body, then
 *   "message"/"Message".
 * - Query: <ErrorResponse><Error><Code>..</Code><Message>..</Message>
 *   </Error></ErrorResponse>, or <Response><Errors><Error>.. (EC2 style),
 *   or a bare <Error> (S3 style).
 * - OpenSearch: {"error":{"type":..,"reason":..},"status":N} or
 *   {"error":"text"}.
 *
 * The body decides the parser (a '{' or a '<' first), so a proxy's or an
 * emulator's answer in another shape is still read. The body is untrusted:
 * nothing is read past `len`, and code and message are cleaned (no control
 * characters, valid UTF-8). When nothing can be read, the message is the
 * start of the body, so an HTML error page from a load balancer still says
 * something.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <fanout/xml.h>
#include <jansson.h>

#include "aws/client.h"
#include "common/util.h"

/* How much of an unreadable body goes into the message. */
#define S_SNIPPET_MAX 200

struct s_out {
    char *code;
    size_t code_len;
    char *message;
    size_t message_len;
};

static int s_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* A service error code: the first of a comma-separated list, before any
 * ':', after the last '#', trimmed; printable ASCII without spaces.
 * Returns the length written. */
static size_t s_put_code(const char *s, size_t n, char *dst, size_t dst_len)
{
    if (!dst_len)
        return 0;
    const char *c = memchr(s, ',', n);
    if (c)
        n = (size_t)(c - s);
    c = memchr(s, ':', n);
    if (c)
        n = (size_t)(c - s);
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] == '#') {
            s += i;
            n -= i;
            break;
        }
    while (n && s_space((unsigned char)*s)) {
        s++;
        n--;
    }
    size_t k = 0;
    while (k < n && k + 1 < dst_len && s[k] > 0x20 && s[k] < 0x7f) {
        dst[k] = s[k];
        k++;
    }
    /* A code cut short or stopped at a space is still the code's start;
     * one with stray bytes after it is not a code. */
    if (k < n && k + 1 < dst_len && !s_space((unsigned char)s[k]))
        k = 0;
    dst[k] = '\0';
    return k;
}

/* Text for a message: trimmed, control characters as spaces (runs of
 * white space folded into one when `fold`), cut on a UTF-8 boundary, and
 * bytes of invalid UTF-8 shown as '?'. Returns the length written. */
static size_t s_put_text(const char *s, size_t n, char *dst, size_t dst_len, int fold)
{
    if (!dst_len)
        return 0;
    while (n && s_space((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && s_space((unsigned char)s[n - 1]))
        n--;
    size_t k = 0, i = 0;
    for (; i < n && k + 1 < dst_len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            c = ' ';
        if (fold && c == ' ' && k > 0 && dst[k - 1] == ' ')
            continue;
        dst[k++] = (char)c;
    }
    /* Cut short inside a multi-byte sequence: drop its first bytes. */
    if (i < n && k > 0) {
        size_t j = k;
        while (j > 0 && k - j < 3 && ((unsigned char)dst[j - 1] & 0xC0) == 0x80)
            j--;
        if (j > 0) {
            unsigned char lead = (unsigned char)dst[j - 1];
            size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            if (k - (j - 1) < want)
                k = j - 1;
        }
    }
    while (k > 0 && dst[k - 1] == ' ') /* a control character at the end */
        k--;
    dst[k] = '\0';
    if (!fanout_utf8_valid((const uint8_t *)dst, k))
        for (size_t b = 0; b < k; b++)
            if ((unsigned char)dst[b] >= 0x80)
                dst[b] = '?';
    return k;
}

/* ---- JSON ---- */

static const char *s_json_str(json_t *obj, const char *key, size_t *n)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return NULL;
    *n = json_string_length(v);
    return json_string_value(v);
}

static int s_code_from(json_t *obj, const char *key, struct s_out *o)
{
    size_t n;
    const char *s = s_json_str(obj, key, &n);
    return s && s_put_code(s, n, o->code, o->code_len) > 0;
}

static int s_message_from(json_t *obj, const char *key, struct s_out *o)
{
    size_t n;
    const char *s = s_json_str(obj, key, &n);
    return s && s_put_text(s, n, o->message, o->message_len, 0) > 0;
}

static int s_header_code(const char *header, struct s_out *o)
{
    return header && *header &&
           s_put_code(header, strlen(header), o->code, o->code_len) > 0;
}

/* Returns 0 when the body was a JSON object that said something. */
static int s_parse_json(int protocol, const char *header, const uint8_t *body, size_t len,
                        struct s_out *o)
{
    json_error_t je;
    json_t *root = json_loadb((const char *)body, len, 0, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        return -1;
    }
    json_t *error = json_object_get(root, "error");
    /* The code: OpenSearch's error type, then (except for the Query
     * protocol, whose code is in the body) the header, then the body. */
    int have = json_is_object(error) && s_code_from(error, "type", o);
    if (!have && protocol != FANOUT_AWS_QUERY)
        have = s_header_code(header, o);
    if (!have)
        have = s_code_from(root, "code", o) || s_code_from(root, "Code", o) ||
               s_code_from(root, "__type", o);
    int said = have;
    if (json_is_object(error))
        said |= s_message_from(error, "reason", o);
    else if (json_is_string(error))
        said |= s_message_from(root, "error", o);
    if (!o->message_len || !o->message[0])
        said |= s_message_from(root, "message", o) || s_message_from(root, "Message", o);
    json_decref(root);
    return said ? 0 : -1;
}

/* ---- XML ---- */

/* The text of an element (fanout/xml.h), malloc'd: never longer than its
 * content. */
static char *s_xml_text(const struct fanout_xml_elem *e, size_t *out_len)
{
    char *out = malloc(e->content_len + 1);
    if (out)
        *out_len = fanout_xml_text(e->content, e->content_len, 0, out, e->content_len + 1);
    return out;
}

static int s_parse_xml(const char *header, const uint8_t *body, size_t len, struct s_out *o)
{
    const char *p = (const char *)body;
    size_t n = len;
    struct fanout_xml_elem e;
    /* Inside the first <Error> when there is one (cut off or not), else the
     * whole body. */
    if (fanout_xml_find(p, n, "Error", 0, &e)) {
        p = e.content;
        n = e.content_len;
    }
    int said = 0;
    size_t tn;
    /* A code cut off by the end of the body may be another code's start:
     * only a closed <Code> counts. A cut message is still worth showing. */
    if (fanout_xml_find(p, n, "Code", 0, &e) && e.closed) {
        char *t = s_xml_text(&e, &tn);
        if (t)
            said |= s_put_code(t, tn, o->code, o->code_len) > 0;
        free(t);
    }
    if (fanout_xml_find(p, n, "Message", 0, &e)) {
        char *t = s_xml_text(&e, &tn);
        if (t)
            said |= s_put_text(t, tn, o->message, o->message_len, 0) > 0;
        free(t);
    }
    if (o->code_len && !o->code[0])
        s_header_code(header, o);
    return said ? 0 : -1;
}

/* ---- entry ---- */

void fanout_aws_parse_error(int protocol, const char *error_type_header,
                            const uint8_t *body, size_t len, char *code, size_t code_len,
                            char *message, size_t message_len)
{
    struct s_out o = {code, code ? code_len : 0, message, message ? message_len : 0};
    if (o.code_len)
        o.code[0] = '\0';
    if (o.message_len)
        o.message[0] = '\0';
    if (!body)
        len = 0;
    size_t i = 0;
    while (i < len && s_space(body[i]))
        i++;
    int read = -1;
    if (i < len && body[i] == '{')
        read = s_parse_json(protocol, error_type_header, body, len, &o);
    else if (i < len && body[i] == '<')
        read = s_parse_xml(error_type_header, body, len, &o);
    if (o.code_len && !o.code[0])
        s_header_code(error_type_header, &o);
    if (read != 0 && o.message_len && !o.message[0] && len > i) {
        size_t cap = o.message_len < S_SNIPPET_MAX + 1 ? o.message_len : S_SNIPPET_MAX + 1;
        size_t take = len - i < 4 * S_SNIPPET_MAX ? len - i : 4 * S_SNIPPET_MAX;
        s_put_text((const char *)body + i, take, o.message, cap, 1);
    }
}
