/* sigv4_sign: sign requests with our SigV4 code, for tests/sigv4_botocore.py.
 *
 * stdin: one request as a JSON object, or an array of them:
 *   {"method": "POST", "path": "/", "query": "a=1" | null,
 *    "headers": [["Host", "kinesis.us-east-1.amazonaws.com"], ...],
 *    "body_base64": "...",                  (optional, default empty)
 *    "region": "us-east-1", "service": "kinesis", "time": <unix seconds>,
 *    "normalize_path": true, "content_sha256_header": false,
 *    "access_key_id": "...", "secret_access_key": "...",
 *    "session_token": "..." | null}
 * stdout: for each request, the headers the signer adds, as a JSON object
 *   {"X-Amz-Date": ..., "X-Amz-Security-Token": ..., "X-Amz-Content-Sha256": ...,
 *    "Authorization": ...}
 * (an array for an array). Exit status 1 when any request cannot be signed;
 * its entry is then {"error": "..."}. Test credentials only: the output
 * echoes the session token, as the request would carry it. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sigv4.h"
#include "common/util.h"

static const char *s_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_t *s_error(const char *msg)
{
    return json_pack("{s:s}", "error", msg);
}

static json_t *s_sign_one(json_t *in, int *failed)
{
    *failed = 1;
    if (!json_is_object(in))
        return s_error("request is not an object");

    json_t *hdrs = json_object_get(in, "headers");
    size_t count = json_array_size(hdrs);
    struct fanout_sigv4_header *h = calloc(count ? count : 1, sizeof *h);
    uint8_t *body = NULL;
    json_t *out = NULL;
    if (!h)
        return s_error("out of memory");
    for (size_t i = 0; i < count; i++) {
        json_t *pair = json_array_get(hdrs, i);
        h[i].name = json_string_value(json_array_get(pair, 0));
        h[i].value = json_string_value(json_array_get(pair, 1));
        if (json_array_size(pair) != 2 || !h[i].name || !h[i].value) {
            out = s_error("headers must be [name, value] pairs of strings");
            goto done;
        }
    }

    size_t body_len = 0;
    const char *b64 = s_str(in, "body_base64");
    if (b64) {
        size_t n = strlen(b64);
        body = malloc(fanout_base64_decoded_max(n) + 1);
        if (!body) {
            out = s_error("out of memory");
            goto done;
        }
        long m = fanout_base64_decode(b64, n, body, NULL);
        if (m < 0) {
            out = s_error("body_base64 is not base64");
            goto done;
        }
        body_len = (size_t)m;
    }

    json_t *t = json_object_get(in, "time");
    if (!json_is_integer(t)) {
        out = s_error("time must be an integer (unix seconds)");
        goto done;
    }
    struct fanout_sigv4_request req = {
        .method = s_str(in, "method"),
        .path = s_str(in, "path"),
        .query = s_str(in, "query"),
        .headers = h,
        .header_count = count,
        .body = body,
        .body_len = body_len,
    };
    struct fanout_sigv4_params p = {
        .region = s_str(in, "region"),
        .service = s_str(in, "service"),
        .now = (time_t)json_integer_value(t),
        .normalize_path = !json_is_false(json_object_get(in, "normalize_path")),
        .content_sha256_header = json_is_true(json_object_get(in, "content_sha256_header")),
    };
    struct fanout_sigv4_credentials c = {
        .access_key_id = s_str(in, "access_key_id"),
        .secret_access_key = s_str(in, "secret_access_key"),
        .session_token = s_str(in, "session_token"),
    };
    struct fanout_sigv4_result r;
    if (fanout_sigv4_sign(&req, &p, &c, &r) != 0) {
        out = s_error("fanout_sigv4_sign failed");
        goto done;
    }
    out = json_pack("{s:s}", "X-Amz-Date", r.amz_date);
    if (out && c.session_token && *c.session_token)
        json_object_set_new(out, "X-Amz-Security-Token", json_string(c.session_token));
    if (out && p.content_sha256_header)
        json_object_set_new(out, "X-Amz-Content-Sha256", json_string(r.content_sha256));
    if (out)
        json_object_set_new(out, "Authorization", json_string(r.authorization));
    *failed = out == NULL;
done:
    free(h);
    free(body);
    return out ? out : s_error("out of memory");
}

int main(void)
{
    json_error_t err;
    json_t *in = json_loadf(stdin, 0, &err);
    if (!in) {
        fprintf(stderr, "sigv4_sign: bad JSON on stdin: %s (line %d)\n", err.text,
                err.line);
        return 2;
    }
    int any_failed = 0, failed;
    json_t *out;
    if (json_is_array(in)) {
        out = json_array();
        size_t i;
        json_t *item;
        json_array_foreach (in, i, item) {
            json_array_append_new(out, s_sign_one(item, &failed));
            any_failed |= failed;
        }
    } else {
        out = s_sign_one(in, &failed);
        any_failed = failed;
    }
    json_decref(in);
    if (!out || json_dumpf(out, stdout, JSON_INDENT(1)) != 0) {
        json_decref(out);
        return 2;
    }
    fputc('\n', stdout);
    json_decref(out);
    return any_failed ? 1 : 0;
}
