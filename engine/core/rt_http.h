/* A small, strict HTTP/1.1 client for the Lambda Runtime API: plain HTTP on
 * a local address, one request at a time on one kept-alive connection.
 * libcurl would cost a cold start more than the event does (curl_load.h),
 * and the Runtime API needs none of it.
 *
 * What it accepts: a status line "HTTP/1.x nnn", header lines up to
 * FANOUT_RT_HTTP_MAX_LINE bytes, FANOUT_RT_HTTP_MAX_HEADERS of them (no
 * obsolete line folding), a body by Content-Length, chunked or up to the
 * end of the connection; interim 1xx replies are skipped. Anything else
 * is an error that says what was wrong. No timeout but the connect's: the
 * process may be frozen for hours inside GET /next. */
#ifndef FANOUT_RT_HTTP_H
#define FANOUT_RT_HTTP_H

#include <stddef.h>

#define FANOUT_RT_HTTP_MAX_LINE    8192 /* one header line, a chunk size line */
#define FANOUT_RT_HTTP_MAX_HEADERS 100
#define FANOUT_RT_HTTP_HOST_LEN    256

/* The receiver of a reply: every header of the final reply, then the body
 * in pieces. Returning non-zero aborts the exchange (and closes the
 * connection, whose state is then unknown). */
struct fanout_rt_http_sink {
    int (*on_header)(void *ud, const char *name, size_t name_len, const char *value,
                     size_t value_len);
    int (*on_body)(void *ud, const char *data, size_t len);
    void *ud;
};

struct fanout_rt_http {
    int fd;   /* -1 when not connected */
    int used; /* an exchange completed on this connection */
    int connect_timeout_ms;
    int status; /* the last exchange's final status, also when its body failed; 0: none */
    char host[FANOUT_RT_HTTP_HOST_LEN]; /* as given, for Host: */
    char node[FANOUT_RT_HTTP_HOST_LEN]; /* without [] */
    char port[8];
    size_t in_off, in_len; /* unread bytes in `in` */
    char in[16384];
};

/* `api` is "host:port" or "[v6]:port". No connection yet. 0, or -1 with
 * the reason in `err`. */
int fanout_rt_http_init(struct fanout_rt_http *c, const char *api, int connect_timeout_ms,
                        char *err, size_t err_len);
void fanout_rt_http_close(struct fanout_rt_http *c);

struct fanout_rt_http_request {
    const char *method;  /* "GET", "POST" */
    const char *path;    /* origin form: "/2018-06-01/..." */
    const char *headers; /* more header lines, each ending "\r\n", or NULL */
    const void *body;    /* sent with Content-Length when not NULL */
    size_t body_len;
};

/* Send the request and read the reply into `sink`. Returns the status
 * (100..999), or -1 with the reason in `err` (a transport or protocol
 * error, or the sink's abort). A request on a kept-alive connection that
 * the peer closed in between is retried once on a new one. */
int fanout_rt_http_exchange(struct fanout_rt_http *c,
                            const struct fanout_rt_http_request *req,
                            const struct fanout_rt_http_sink *sink, char *err,
                            size_t err_len);

#endif
