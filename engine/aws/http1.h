/* HTTP/1.1 on the wire, for the connections http.c opens through libcurl
 * and drives itself: the request head it writes and the response parser
 * that reads what any server sends back. No I/O here: bytes in, bytes out,
 * so the parser can be fuzzed alone (tests/fuzz/fuzz_http1.c).
 *
 * The parser is strict where framing is concerned (what decides where a
 * response ends decides what the next request on the connection reads):
 * an HTTP/1.x status line with a 3-digit status; header lines ending in
 * LF (CR LF or a bare LF), no NUL, the whole header block bounded; a
 * Content-Length of digits only, duplicates agreeing, never over the body
 * cap; chunked transfer coding with hex sizes, extensions and trailers;
 * without either, the body runs to the close (over TLS, a close with
 * close_notify: fanout_http1_eof). Interim 1xx answers are
 * skipped (101 is an error: nothing here switches protocols). */
#ifndef FANOUT_AWS_HTTP1_H
#define FANOUT_AWS_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "aws/http.h"

/* The most header bytes one response may take (status lines, header lines
 * and trailers of the response and its interim answers) and the most
 * header fields kept. */
#define FANOUT_HTTP1_MAX_HEADER_BYTES ((size_t)64 << 10)
#define FANOUT_HTTP1_MAX_HEADERS      512
/* The longest chunk-size line (size, extensions) */
#define FANOUT_HTTP1_MAX_CHUNK_LINE 4096

/* ---- requests ------------------------------------------------------------ */

/* Append the request head to `out`: "METHOD target HTTP/1.1", Host (the
 * caller's Host header in its place when given, else `host`), the headers
 * as given, then Content-Length: body_len when `has_body` (unless given),
 * and the blank line. A header with an empty or blank value goes out
 * empty. Names must be RFC 9110 tokens and values free of CR and LF, the
 * method a token, the target visible ASCII: else -1 with the reason in
 * *why and `out` unchanged in length. -1 "out of memory" too. */
int fanout_http1_write_head(struct fanout_sbuf *out, const char *method, const char *target,
                            size_t target_len, const char *host, size_t host_len,
                            const struct fanout_http_header *headers, size_t header_count,
                            int has_body, size_t body_len, const char **why);

/* An RFC 9110 token (methods, header names) */
int fanout_http1_is_token(const char *s);

/* ---- responses ----------------------------------------------------------- */

/* Add one header line (without its line end) to the response's header list
 * and text: "Name: value" with the name as received and the value without
 * surrounding white space; a line starting with a blank continues the
 * previous value (obsolete folding); a line without a colon or name is
 * ignored. *cap is the capacity of r->headers. 0, or -1 out of memory. */
int fanout_http1_store_header(struct fanout_http_response *r, size_t *cap, const char *p,
                              size_t n);

enum fanout_http1_state {
    FANOUT_HTTP1_STATUS = 0,
    FANOUT_HTTP1_HEADERS,
    FANOUT_HTTP1_BODY_LENGTH,
    FANOUT_HTTP1_BODY_CLOSE,
    FANOUT_HTTP1_CHUNK_SIZE,
    FANOUT_HTTP1_CHUNK_DATA,
    FANOUT_HTTP1_CHUNK_END,
    FANOUT_HTTP1_TRAILERS,
    FANOUT_HTTP1_DONE,
    FANOUT_HTTP1_FAILED,
};

struct fanout_http1_parser {
    struct fanout_http_response *resp; /* filled as bytes come */
    size_t header_cap;                 /* of resp->headers */
    enum fanout_http1_state state;
    int is_head;    /* the answer to a HEAD: no body */
    int keep_alive; /* when DONE: the connection may carry another request */
    int got_bytes;  /* a byte of the response came */
    int minor;      /* HTTP/1.<minor> */
    int chunked;
    int has_length;
    int conn_close;    /* Connection: close */
    int body_presized; /* the body buffer was sized from Content-Length */
    uint64_t length;   /* Content-Length */
    uint64_t left;     /* bytes left of the body or the chunk */
    size_t header_bytes;
    struct fanout_sbuf line;      /* a line split across reads */
    enum fanout_http_error error; /* when FAILED */
    char why[160];
};

/* Start reading a response into `r` (emptied first). */
void fanout_http1_parser_init(struct fanout_http1_parser *p, struct fanout_http_response *r,
                              int is_head);
/* Free what the parser holds (not the response). */
void fanout_http1_parser_free(struct fanout_http1_parser *p);

/* Feed bytes read from the connection. Returns how many were taken: all of
 * them, or fewer when the response completed (state DONE: the rest is not
 * part of it) or failed (state FAILED: error and why say how). */
size_t fanout_http1_feed(struct fanout_http1_parser *p, const uint8_t *data, size_t n);

/* The connection closed (EOF). Completes a body read to the close when
 * `close_trusted` (the close is the server's own word: TLS's close_notify
 * came first, or plain TCP, where a FIN is all there is); else, and for
 * any other unfinished response (a Content-Length or chunked body cut
 * short, a head), the response fails (FANOUT_HTTP_RESET, "connection
 * closed before the answer was complete" and what was missing). */
void fanout_http1_eof(struct fanout_http1_parser *p, int close_trusted);

#endif
