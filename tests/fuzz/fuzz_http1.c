/* The HTTP/1.1 response parser (engine/aws/http1.c) on any bytes, split
 * anywhere.
 *
 * Input: byte 0: bit 0 makes it the answer to a HEAD request, bit 1 says
 * the connection closes after the bytes, bit 2 that the close is not
 * trusted (TLS without close_notify); byte 1 seeds where the bytes are
 * split; the rest is what the server sent.
 *
 * The bytes are parsed twice: in one piece, and in pieces of 1 to 64
 * bytes. Checks, beyond ASan and UBSan: both parses agree (state, error
 * kind, status, headers, body, reuse, bytes taken): where reads split a
 * response never changes what it says; a completed answer is final
 * (200..599), has no body when it may not (HEAD, 204, 304) and none over
 * the cap, is not one read to an untrusted close, keeps headers with a
 * name free of ':' and white space at its ends and no CR or LF anywhere;
 * a failure has a kind and words. */
#include <string.h>

#include "aws/http1.h"
#include "fuzz.h"

struct parse {
    struct fanout_http_response r;
    struct fanout_http1_parser p;
    size_t taken;
    int done_before_eof;
};

static void s_parse(struct parse *x, const uint8_t *d, size_t n, int is_head, int eof,
                    int trusted, uint32_t seed)
{
    memset(&x->r, 0, sizeof x->r);
    fanout_http1_parser_init(&x->p, &x->r, is_head);
    x->taken = 0;
    size_t at = 0;
    while (at < n && x->p.state != FANOUT_HTTP1_DONE && x->p.state != FANOUT_HTTP1_FAILED) {
        size_t k = n - at;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t piece = 1 + (seed >> 16) % 64;
            if (piece < k)
                k = piece;
        }
        /* an exact-size copy: a read past the piece is caught */
        uint8_t *copy = malloc(k);
        FUZZ_CHECK(copy != NULL, "out of memory");
        memcpy(copy, d + at, k);
        size_t used = fanout_http1_feed(&x->p, copy, k);
        free(copy);
        FUZZ_CHECK(used <= k, "took %zu of %zu", used, k);
        FUZZ_CHECK(used == k || x->p.state == FANOUT_HTTP1_DONE ||
                       x->p.state == FANOUT_HTTP1_FAILED,
                   "took %zu of %zu and wants more", used, k);
        x->taken += used;
        at += k;
    }
    x->done_before_eof = x->p.state == FANOUT_HTTP1_DONE;
    if (eof)
        fanout_http1_eof(&x->p, trusted);
}

static int s_ws(char c)
{
    return c == ' ' || c == '\t';
}

static void s_check_one(const struct parse *x, int is_head, int eof, int trusted)
{
    const struct fanout_http_response *r = &x->r;
    const struct fanout_http1_parser *p = &x->p;
    FUZZ_CHECK(r->body.len <= FANOUT_HTTP_MAX_BODY_BYTES, "body %zu", r->body.len);
    if (r->body.len)
        FUZZ_CHECK(r->body.bytes[r->body.len] == 0, "body not NUL-terminated");
    if (p->state == FANOUT_HTTP1_FAILED) {
        FUZZ_CHECK(p->error != FANOUT_HTTP_OK && p->why[0], "failure without a reason");
        FUZZ_CHECK(!p->keep_alive, "failed, yet reusable");
    }
    if (p->state == FANOUT_HTTP1_DONE) {
        FUZZ_CHECK(r->status >= 200 && r->status <= 599, "final status %ld", r->status);
        if (is_head || r->status == 204 || r->status == 304)
            FUZZ_CHECK(r->body.len == 0, "a body where none may be");
        if (p->keep_alive)
            FUZZ_CHECK(p->minor >= 1 && !p->conn_close, "reusable after HTTP/1.0 or close");
        if (eof && !trusted)
            FUZZ_CHECK(x->done_before_eof, "completed by an untrusted close");
    }
    FUZZ_CHECK(r->header_count <= FANOUT_HTTP1_MAX_HEADERS, "%zu headers", r->header_count);
    for (size_t i = 0; i < r->header_count; i++) {
        const char *name = r->headers[i].name, *value = r->headers[i].value;
        size_t nl = strlen(name), vl = strlen(value);
        FUZZ_CHECK(nl > 0 && !strchr(name, ':') && !s_ws(name[0]) && !s_ws(name[nl - 1]),
                   "header name \"%s\"", name);
        FUZZ_CHECK(!vl || (!s_ws(value[0]) && !s_ws(value[vl - 1])), "value \"%s\"", value);
        FUZZ_CHECK(!strpbrk(name, "\r\n") && !strpbrk(value, "\r\n"),
                   "CR or LF in a header");
        FUZZ_CHECK(fanout_http_response_header(r, name) != NULL, "%s not found", name);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    if (size < 2)
        return 0;
    int is_head = data[0] & 1, eof = (data[0] >> 1) & 1, trusted = !((data[0] >> 2) & 1);
    uint32_t seed = data[1] | 0x100u; /* never 0: 0 means one piece */
    const uint8_t *d = data + 2;
    size_t n = size - 2;
    struct parse *a = calloc(2, sizeof *a), *b = a + 1;
    FUZZ_CHECK(a != NULL, "out of memory");
    s_parse(a, d, n, is_head, eof, trusted, 0);
    s_parse(b, d, n, is_head, eof, trusted, seed);
    s_check_one(a, is_head, eof, trusted);
    s_check_one(b, is_head, eof, trusted);
    FUZZ_CHECK(a->p.state == b->p.state, "state %d vs %d split", a->p.state, b->p.state);
    FUZZ_CHECK(a->p.error == b->p.error, "error %d vs %d split", a->p.error, b->p.error);
    FUZZ_CHECK(a->p.keep_alive == b->p.keep_alive, "reuse differs when split");
    if (a->p.state == FANOUT_HTTP1_DONE) {
        FUZZ_CHECK(a->taken == b->taken, "took %zu vs %zu split", a->taken, b->taken);
        FUZZ_CHECK(a->r.status == b->r.status, "status differs when split");
        FUZZ_CHECK(a->r.body.len == b->r.body.len &&
                       (!a->r.body.len ||
                        !memcmp(a->r.body.bytes, b->r.body.bytes, a->r.body.len)),
                   "body differs when split");
        FUZZ_CHECK(a->r.header_count == b->r.header_count,
                   "header count differs when split");
        for (size_t i = 0; i < a->r.header_count; i++)
            FUZZ_CHECK(!strcmp(a->r.headers[i].name, b->r.headers[i].name) &&
                           !strcmp(a->r.headers[i].value, b->r.headers[i].value),
                       "header %zu differs when split", i);
    }
    for (int k = 0; k < 2; k++) {
        fanout_http1_parser_free(&a[k].p);
        fanout_http_response_clean_up(&a[k].r);
    }
    free(a);
    return 0;
}
