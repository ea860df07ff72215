/* The Runtime API's HTTP/1.1 client (engine/core/rt_http.c) reading a reply
 * that is the input, whole, from the other end of a socket pair closed
 * after it: status lines, interim replies, headers, every body framing.
 *
 * Checks, beyond ASan and UBSan: the result is -1 with a reason or a status
 * in 100..999, which the client also keeps; every header handed over has a
 * non-empty token name and a value without surrounding blanks; the body
 * handed over is no longer than the input; after an error the connection
 * is closed. */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/rt_http.h"
#include "fuzz.h"

struct seen {
    size_t body;
};

static int s_on_header(void *ud, const char *name, size_t name_len, const char *v,
                       size_t vn)
{
    (void)ud;
    FUZZ_CHECK(name_len > 0, "empty header name");
    for (size_t i = 0; i < name_len; i++)
        FUZZ_CHECK(name[i] > 0x20 && name[i] < 0x7f && name[i] != ':', "bad name byte");
    FUZZ_CHECK(vn == 0 ||
                   (v[0] != ' ' && v[0] != '\t' && v[vn - 1] != ' ' && v[vn - 1] != '\t'),
               "value not trimmed");
    return 0;
}

static int s_on_body(void *ud, const char *data, size_t n)
{
    (void)data;
    ((struct seen *)ud)->body += n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) /* fits a socket pair's buffer: written before reading */
        return 0;
    int sv[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(sv[1], data + off, size - off);
        FUZZ_CHECK(w > 0, "write");
        off += (size_t)w;
    }
    shutdown(sv[1], SHUT_WR);

    struct fanout_rt_http c;
    char err[512];
    FUZZ_CHECK(fanout_rt_http_init(&c, "127.0.0.1:9001", 1000, err, sizeof err) == 0,
               "init");
    c.fd = sv[0]; /* connected: a new connection, so no retry */
    struct seen seen = {0};
    struct fanout_rt_http_request req = {.method = "GET",
                                         .path = "/2018-06-01/runtime/invocation/next"};
    struct fanout_rt_http_sink sink = {s_on_header, s_on_body, &seen};
    err[0] = 0;
    int rc = fanout_rt_http_exchange(&c, &req, &sink, err, sizeof err);
    if (rc < 0) {
        FUZZ_CHECK(rc == -1 && err[0], "an error without a reason");
        FUZZ_CHECK(c.fd == -1, "the connection stays open after an error");
    } else {
        FUZZ_CHECK(rc >= 100 && rc <= 999 && c.status == rc, "bad status");
    }
    FUZZ_CHECK(seen.body <= size, "more body than input");
    fanout_rt_http_close(&c);
    close(sv[1]);
    return 0;
}
