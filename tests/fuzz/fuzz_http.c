/* HTTP answers as libcurl hands them over (engine/aws/http.c, included here:
 * its callbacks are static): header lines, one call each, with interim
 * 1xx answers, folded lines and oversized Content-Length, then the body in
 * pieces.
 *
 * Input: byte 0 bit 0 makes it the answer to a HEAD request; then the
 * header block (lines up to the first empty line), then the body.
 *
 * Checks, beyond ASan and UBSan: a callback refuses a line or a piece of
 * body only with a reason (too big, out of memory); an announced body over
 * the limit is refused (not for HEAD); kept headers have a name without
 * ':' or trailing space, a value without trailing white space, and are
 * found by name; only the last answer's headers are kept; the body is
 * the bytes given. */
#include "aws/http.c"

#include "fuzz.h"

static size_t s_call(size_t (*cb)(char *, size_t, size_t, void *), const uint8_t *p,
                     size_t n, struct s_xfer *x)
{
    char *copy = malloc(n ? n : 1); /* exact size, as libcurl's own buffer */
    FUZZ_CHECK(copy != NULL, "out of memory");
    memcpy(copy, p, n);
    size_t rc = cb(copy, 1, n, x);
    free(copy);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    if (size < 1)
        return 0;
    struct fanout_http_response resp;
    memset(&resp, 0, sizeof resp);
    struct s_xfer x;
    memset(&x, 0, sizeof x);
    x.resp = &resp;
    x.is_head = data[0] & 1;
    const uint8_t *p = data + 1, *end = data + size;
    int refused = 0, too_big_announced = 0, nul = 0;
    size_t since_status = 0; /* header lines since the last status line */
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        int blank = n == 1 || (n == 2 && p[0] == '\r');
        nul |= memchr(p, 0, n) != NULL;
        size_t rc = s_call(s_on_header, p, n, &x);
        if (rc != n) {
            FUZZ_CHECK(rc == 0 && (x.too_big || x.no_mem),
                       "header line refused (%zu of %zu)", rc, n);
            refused = 1;
            break;
        }
        if (n >= 5 && memcmp(p, "HTTP/", 5) == 0)
            since_status = 0;
        else
            since_status++;
        /* an oversized Content-Length must have been refused (http.c reads
         * values of up to 31 bytes: a longer one is left to the body's
         * own bound) */
        if (!x.is_head && n > 15 &&
            strncasecmp((const char *)p, "Content-Length:", 15) == 0) {
            char num[32];
            size_t k = 15, e = n;
            while (k < n && s_is_ws((char)p[k]))
                k++;
            while (e > k && s_is_ws((char)p[e - 1]))
                e--;
            if (e - k >= sizeof num)
                k = n;
            size_t m = 0;
            while (k < n && p[k] >= '0' && p[k] <= '9' && m + 1 < sizeof num)
                num[m++] = (char)p[k++];
            num[m] = 0;
            too_big_announced |=
                m > 0 && m < 20 && strtoull(num, NULL, 10) > HTTP_MAX_BODY_BYTES;
        }
        p += n;
        if (blank)
            break;
    }
    FUZZ_CHECK(!too_big_announced || refused, "oversized Content-Length accepted");
    FUZZ_CHECK(resp.header_count <= since_status,
               "%zu headers kept, %zu lines since the "
               "last status line",
               resp.header_count, since_status);
    /* (libcurl refuses a header line with a NUL byte: not checked) */
    for (size_t i = 0; !nul && i < resp.header_count; i++) {
        const char *nm = resp.headers[i].name, *v = resp.headers[i].value;
        size_t nl = strlen(nm), vl = strlen(v);
        FUZZ_CHECK(nl > 0 && !s_is_ws(nm[nl - 1]) && !strchr(nm, ':'), "name \"%s\"", nm);
        FUZZ_CHECK(vl == 0 || !s_is_ws(v[vl - 1]), "value \"%s\" of %s", v, nm);
        FUZZ_CHECK(fanout_http_response_header(&resp, nm) != NULL, "%s not found", nm);
    }
    if (!refused && p < end) {
        /* the body, in two pieces */
        size_t n = (size_t)(end - p), half = n / 2;
        FUZZ_CHECK(s_call(s_on_body, p, half, &x) == half, "body refused");
        FUZZ_CHECK(s_call(s_on_body, p + half, n - half, &x) == n - half, "body refused");
        FUZZ_CHECK(resp.body.len == n && memcmp(resp.body.bytes, p, n) == 0,
                   "body differs");
    }
    fanout_http_response_clean_up(&resp);
    return 0;
}
