/* Check suite for engine/core/rt_http.c, the Runtime API's HTTP/1.1 client,
 * against a scripted server thread on loopback: each accepted connection
 * answers its requests with the given raw replies, written in pieces of a
 * given size (split reads), then closes. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_main.h"
#include "core/rt_http.h"

#define MAX_CONNS   4
#define MAX_REPLIES 4

/* ---- the scripted server ------------------------------------------------------ */

struct srv {
    int listen_fd;
    int port;
    pthread_t thread;
    /* replies[c][i]: the i-th reply on the c-th connection; NULL ends it */
    const char *replies[MAX_CONNS][MAX_REPLIES + 1];
    size_t piece; /* write size; 0: whole replies */
    int accepts;
    char last_request[8192];
    size_t last_request_len;
};

static struct srv s_srv;

/* One request (head and Content-Length body) into last_request; 0 at the
 * end of the connection. */
static int s_read_request(int fd)
{
    char *buf = s_srv.last_request;
    size_t len = 0, want = 0;
    for (;;) {
        if (!want) {
            char *end = memmem(buf, len, "\r\n\r\n", 4);
            if (end) {
                size_t head = (size_t)(end - buf) + 4;
                const char *cl = memmem(buf, head, "Content-Length: ", 16);
                want = head + (cl ? strtoul(cl + 16, NULL, 10) : 0);
            }
        }
        if (want && len >= want)
            break;
        ssize_t r = read(fd, buf + len, sizeof s_srv.last_request - 1 - len);
        if (r <= 0)
            return 0;
        len += (size_t)r;
    }
    buf[len] = 0;
    s_srv.last_request_len = len;
    return 1;
}

static void s_write(int fd, const char *s)
{
    size_t n = strlen(s), off = 0;
    while (off < n) {
        size_t k = s_srv.piece && s_srv.piece < n - off ? s_srv.piece : n - off;
        ssize_t w = send(fd, s + off, k, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        off += (size_t)w;
        if (s_srv.piece)
            usleep(200); /* the client sees the pieces one by one */
    }
}

static void *s_serve(void *arg)
{
    (void)arg;
    for (int c = 0; c < MAX_CONNS && s_srv.replies[c][0]; c++) {
        int fd = accept(s_srv.listen_fd, NULL, NULL);
        if (fd < 0)
            break;
        s_srv.accepts++;
        for (int i = 0; s_srv.replies[c][i]; i++) {
            if (!s_read_request(fd))
                break;
            s_write(fd, s_srv.replies[c][i]);
        }
        close(fd);
    }
    return NULL;
}

static void s_srv_start(size_t piece)
{
    s_srv.piece = piece;
    s_srv.accepts = 0;
    s_srv.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(s_srv.listen_fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    ck_assert_int_eq(bind(s_srv.listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(s_srv.listen_fd, 4), 0);
    ck_assert_int_eq(getsockname(s_srv.listen_fd, (struct sockaddr *)&a, &alen), 0);
    s_srv.port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&s_srv.thread, NULL, s_serve, NULL), 0);
}

static void s_srv_stop(void)
{
    shutdown(s_srv.listen_fd, SHUT_RDWR); /* wakes a pending accept */
    pthread_join(s_srv.thread, NULL);
    close(s_srv.listen_fd);
    memset(&s_srv, 0, sizeof s_srv);
}

/* ---- the client side --------------------------------------------------------------- */

struct got {
    char body[70000];
    size_t body_len;
    char request_id[64];
    int headers;
    int refuse_body; /* abort at the first body bytes */
};

static int s_on_header(void *ud, const char *name, size_t name_len, const char *v,
                       size_t vn)
{
    struct got *g = ud;
    g->headers++;
    if (name_len == 29 && strncasecmp(name, "Lambda-Runtime-Aws-Request-Id", 29) == 0)
        snprintf(g->request_id, sizeof g->request_id, "%.*s", (int)vn, v);
    return 0;
}

static int s_on_body(void *ud, const char *data, size_t n)
{
    struct got *g = ud;
    if (g->refuse_body || n > sizeof g->body - g->body_len)
        return -1;
    memcpy(g->body + g->body_len, data, n);
    g->body_len += n;
    return 0;
}

static struct fanout_rt_http s_c;
static struct got s_got;
static char s_err[512];

static void s_open(void)
{
    char api[64];
    snprintf(api, sizeof api, "127.0.0.1:%d", s_srv.port);
    ck_assert_int_eq(fanout_rt_http_init(&s_c, api, 2000, s_err, sizeof s_err), 0);
}

static int s_get(void)
{
    memset(&s_got, 0, sizeof s_got);
    s_err[0] = 0;
    struct fanout_rt_http_request req = {.method = "GET", .path = "/2018-06-01/next"};
    struct fanout_rt_http_sink sink = {s_on_header, s_on_body, &s_got};
    return fanout_rt_http_exchange(&s_c, &req, &sink, s_err, sizeof s_err);
}

static void s_done(void)
{
    fanout_rt_http_close(&s_c);
    s_srv_stop();
}

#define OK_REPLY(body)                                                                     \
    "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: id-1\r\nContent-Length: "           \
    "" #body "\r\n\r\n"

START_TEST(test_content_length_keep_alive)
{
    s_srv.replies[0][0] = "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: id-1\r\n"
                          "Content-Length: 5\r\n\r\nhello";
    s_srv.replies[0][1] = "HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}";
    s_srv_start(0);
    s_open();
    ck_assert_int_eq(s_get(), 200);
    ck_assert_str_eq(s_got.request_id, "id-1");
    ck_assert_uint_eq(s_got.body_len, 5);
    ck_assert(memcmp(s_got.body, "hello", 5) == 0);

    memset(&s_got, 0, sizeof s_got);
    struct fanout_rt_http_request post = {
        .method = "POST",
        .path = "/2018-06-01/runtime/invocation/id-1/response",
        .headers = "Content-Type: application/json\r\n",
        .body = "[1,2]",
        .body_len = 5};
    struct fanout_rt_http_sink sink = {s_on_header, s_on_body, &s_got};
    ck_assert_int_eq(fanout_rt_http_exchange(&s_c, &post, &sink, s_err, sizeof s_err), 202);
    ck_assert_uint_eq(s_got.body_len, 2);
    ck_assert_int_eq(s_srv.accepts, 1); /* one kept-alive connection */
    const char *r = s_srv.last_request;
    ck_assert_msg(strncmp(r,
                          "POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\n",
                          59) == 0,
                  "request line: %s", r);
    ck_assert_ptr_nonnull(strstr(r, "\r\nHost: 127.0.0.1:"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nContent-Length: 5\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nContent-Type: application/json\r\n"));
    ck_assert_ptr_null(strstr(r, "Expect"));
    ck_assert(strcmp(r + s_srv.last_request_len - 9, "\r\n\r\n[1,2]") == 0);
    s_done();
}
END_TEST

START_TEST(test_chunked_split_reads)
{
    /* chunk extensions, upper-case hex, a trailer; written 3 bytes at a time */
    s_srv.replies[0][0] =
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        "Lambda-Runtime-Aws-Request-Id: id-2\r\n\r\n"
        "5;ext=1\r\nhello\r\nA\r\n, chunked!\r\n0\r\nX-Trailer: t\r\n\r\n";
    s_srv.replies[0][1] = OK_REPLY(2) "ok";
    s_srv_start(3);
    s_open();
    ck_assert_int_eq(s_get(), 200);
    ck_assert_str_eq(s_got.request_id, "id-2");
    ck_assert_uint_eq(s_got.body_len, 15);
    ck_assert(memcmp(s_got.body, "hello, chunked!", 15) == 0);
    ck_assert_int_eq(s_got.headers, 2); /* the interim reply's are not passed on */
    ck_assert_int_eq(s_get(), 200);     /* the connection is still in step */
    ck_assert_uint_eq(s_got.body_len, 2);
    ck_assert_int_eq(s_srv.accepts, 1);
    s_done();
}
END_TEST

START_TEST(test_large_body_split)
{
    static char reply[80000];
    int n =
        snprintf(reply, sizeof reply, "HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n");
    for (int i = 0; i < 65536; i++)
        reply[n + i] = (char)('a' + i % 26);
    reply[n + 65536] = 0;
    s_srv.replies[0][0] = reply;
    s_srv_start(4093);
    s_open();
    ck_assert_int_eq(s_get(), 200);
    ck_assert_uint_eq(s_got.body_len, 65536);
    ck_assert(memcmp(s_got.body, reply + n, 65536) == 0);
    s_done();
}
END_TEST

START_TEST(test_oversized_header)
{
    static char reply[12000];
    int n = snprintf(reply, sizeof reply, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(reply + n, 'x', 9000);
    strcpy(reply + n + 9000, "\r\nContent-Length: 0\r\n\r\n");
    s_srv.replies[0][0] = reply;
    s_srv_start(0);
    s_open();
    ck_assert_int_eq(s_get(), -1);
    ck_assert_msg(strstr(s_err, "header line is longer than 8192 bytes"), "%s", s_err);
    s_done();
}
END_TEST

START_TEST(test_too_many_headers)
{
    static char reply[4000];
    int n = snprintf(reply, sizeof reply, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i <= FANOUT_RT_HTTP_MAX_HEADERS; i++)
        n += snprintf(reply + n, sizeof reply - (size_t)n, "X-%d: v\r\n", i);
    snprintf(reply + n, sizeof reply - (size_t)n, "Content-Length: 0\r\n\r\n");
    s_srv.replies[0][0] = reply;
    s_srv_start(0);
    s_open();
    ck_assert_int_eq(s_get(), -1);
    ck_assert_msg(strstr(s_err, "more than 100 header lines"), "%s", s_err);
    s_done();
}
END_TEST

START_TEST(test_closed_in_body)
{
    s_srv.replies[0][0] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
    s_srv_start(0);
    s_open();
    ck_assert_int_eq(s_get(), -1);
    ck_assert_msg(strstr(s_err,
                         "closed the connection 90 bytes before the end of the reply "
                         "body"),
                  "%s", s_err);
    ck_assert_int_eq(s_c.status, 200); /* the status came */
    s_done();
}
END_TEST

START_TEST(test_closed_in_head)
{
    s_srv.replies[0][0] = "HTTP/1.1 200 OK\r\nContent-Le";
    s_srv_start(0);
    s_open();
    ck_assert_int_eq(s_get(), -1);
    ck_assert_msg(strstr(s_err, "closed the connection in the middle of a header line"),
                  "%s", s_err);
    s_done();
}
END_TEST

START_TEST(test_closed_in_chunk)
{
    s_srv.replies[0][0] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc";
    s_srv_start(0);
    s_open();
    ck_assert_int_eq(s_get(), -1);
    ck_assert_msg(strstr(s_err, "closed the connection 13 bytes before the end"), "%s",
                  s_err);
    s_done();
}
END_TEST

START_TEST(test_stale_connection_retried)
{
    /* the first connection closes after one reply, without saying so */
    s_srv.replies[0][0] = OK_REPLY(1) "a";
    s_srv.replies[1][0] = OK_REPLY(1) "b";
    s_srv_start(0);
    s_open();
    ck_assert_int_eq(s_get(), 200);
    usleep(20000); /* the server has closed it */
    ck_assert_int_eq(s_get(), 200);
    ck_assert_uint_eq(s_got.body_len, 1);
    ck_assert_int_eq(s_got.body[0], 'b');
    ck_assert_int_eq(s_srv.accepts, 2);
    s_done();
}
END_TEST

START_TEST(test_connection_close_and_eof_body)
{
    /* an HTTP/1.0 reply without a length: the body runs to the end */
    s_srv.replies[0][0] = "HTTP/1.0 200 OK\r\n\r\nuntil the end";
    s_srv.replies[1][0] =
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nc";
    s_srv.replies[2][0] = OK_REPLY(1) "d";
    s_srv_start(0);
    s_open();
    ck_assert_int_eq(s_get(), 200);
    ck_assert_uint_eq(s_got.body_len, 13);
    ck_assert_int_eq(s_c.fd, -1);
    ck_assert_int_eq(s_get(), 200);
    ck_assert_int_eq(s_c.fd, -1); /* Connection: close */
    ck_assert_int_eq(s_get(), 200);
    ck_assert_int_eq(s_got.body[0], 'd');
    ck_assert_int_eq(s_srv.accepts, 3);
    s_done();
}
END_TEST

static const struct {
    const char *reply;
    const char *error;
} s_bad[] = {
    {"HTP/1.1 200 OK\r\n\r\n", "does not start with an HTTP/1.x status line"},
    {"HTTP/1.1 20 OK\r\n\r\n", "does not start with an HTTP/1.x status line"},
    {"HTTP/2 200\r\n\r\n", "does not start with an HTTP/1.x status line"},
    {"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", "bad Content-Length"},
    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
     "bad Content-Length"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "not supported"},
    {"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n", "not \"name: value\""},
    {"HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n", "not \"name: value\""},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size line"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
     "longer than its size line"},
    {"HTTP/1.1 101 Switching\r\n\r\n", "switched protocols"},
};

START_TEST(test_bad_replies)
{
    s_srv.replies[0][0] = s_bad[_i].reply;
    s_srv_start(0);
    s_open();
    ck_assert_int_eq(s_get(), -1);
    ck_assert_msg(strstr(s_err, s_bad[_i].error), "reply %d: %s", _i, s_err);
    s_done();
}
END_TEST

START_TEST(test_receiver_aborts)
{
    s_srv.replies[0][0] = OK_REPLY(3) "abc";
    s_srv.replies[1][0] = OK_REPLY(3) "def";
    s_srv_start(0);
    s_open();
    memset(&s_got, 0, sizeof s_got);
    s_got.refuse_body = 1;
    struct fanout_rt_http_request req = {.method = "GET", .path = "/"};
    struct fanout_rt_http_sink sink = {s_on_header, s_on_body, &s_got};
    ck_assert_int_eq(fanout_rt_http_exchange(&s_c, &req, &sink, s_err, sizeof s_err), -1);
    ck_assert_int_eq(s_c.status, 200);
    ck_assert_int_eq(s_c.fd, -1); /* out of step: closed */
    ck_assert_int_eq(s_get(), 200);
    ck_assert_int_eq(s_got.body[0], 'd');
    s_done();
}
END_TEST

START_TEST(test_connect_refused)
{
    s_srv_start(0);
    char api[64];
    snprintf(api, sizeof api, "127.0.0.1:%d", s_srv.port);
    s_done(); /* nobody listens there now */
    ck_assert_int_eq(fanout_rt_http_init(&s_c, api, 2000, s_err, sizeof s_err), 0);
    ck_assert_int_eq(s_get(), -1);
    ck_assert_msg(strstr(s_err, "connect to 127.0.0.1:") && strstr(s_err, "refused"), "%s",
                  s_err);
    fanout_rt_http_close(&s_c);
}
END_TEST

START_TEST(test_api_addresses)
{
    ck_assert_int_eq(fanout_rt_http_init(&s_c, "[::1]:9001", 1, s_err, sizeof s_err), 0);
    ck_assert_str_eq(s_c.node, "::1");
    ck_assert_str_eq(s_c.port, "9001");
    ck_assert_str_eq(s_c.host, "[::1]:9001");
    ck_assert_int_eq(fanout_rt_http_init(&s_c, "localhost", 1, s_err, sizeof s_err), 0);
    ck_assert_str_eq(s_c.port, "80");
    const char *bad[] = {"",      "::1:9001", "host:0", "host:65536",
                         "host:", ":80",      "[::1",   "[::1]x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(fanout_rt_http_init(&s_c, bad[i], 1, s_err, sizeof s_err) == -1,
                      "\"%s\" accepted", bad[i]);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("rt_http");
    TCase *tc = tcase_create("client");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_content_length_keep_alive);
    tcase_add_test(tc, test_chunked_split_reads);
    tcase_add_test(tc, test_large_body_split);
    tcase_add_test(tc, test_oversized_header);
    tcase_add_test(tc, test_too_many_headers);
    tcase_add_test(tc, test_closed_in_body);
    tcase_add_test(tc, test_closed_in_head);
    tcase_add_test(tc, test_closed_in_chunk);
    tcase_add_test(tc, test_stale_connection_retried);
    tcase_add_test(tc, test_connection_close_and_eof_body);
    tcase_add_loop_test(tc, test_bad_replies, 0, (int)(sizeof s_bad / sizeof s_bad[0]));
    tcase_add_test(tc, test_receiver_aborts);
    tcase_add_test(tc, test_connect_refused);
    tcase_add_test(tc, test_api_addresses);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fanout_check_run(s_suite());
}
