/*
 * A fake `struct fanout_host` for the answer readers of the HTTP plugins:
 * every aws_call is answered with the status, header and body set by
 * reply_host_answer(), as the engine's AWS layer would hand them to the
 * plugin (result FANOUT_AWS_OK for a 2xx; the body in its own allocation of
 * exactly body_len + 1 bytes, NUL-terminated, so a read past it is caught
 * by ASan). Used by the fuzz targets tests/fuzz/fuzz_<plugin>_reply.c and by
 * tests/unit/test_replies.c. Header-only; one includer per program.
 *
 * reply_host_script() answers each request from a script instead and keeps
 * what the requests said, for the unit suites of the plugins.
 *
 * The fuzz input format shared by the targets: byte 0 picks the HTTP status
 * (reply_host_status), the rest is the body.
 */
#ifndef FANOUT_TESTS_REPLY_HOST_H
#define FANOUT_TESTS_REPLY_HOST_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <fanout/aws.h>
#include <fanout/plugin.h>

/* A scripted answer (reply_host_script): what the engine's AWS layer hands
 * the plugin for one request. */
struct reply_answer {
    long status;
    enum fanout_aws_result result;
    const char *code;                       /* error_code, or NULL */
    const char *message;                    /* error_message, or NULL */
    const char *header_name, *header_value; /* one header, or NULL */
    const char *body;                       /* or NULL */
};

/* A request as the plugin made it (reply_host_script): its strings and up
 * to 4 headers copied. */
#define REPLY_MAX_SEEN 32
struct reply_seen {
    char service[32], signing_name[16], region[32], endpoint[96], role[96], external_id[64];
    char method[8], path[256], query[64];
    char headers[4][2][64];
    size_t header_count;
    char *body; /* NUL-terminated copy */
    size_t body_len;
};

static struct {
    /* scripted: answer k to the k-th request; past the end, the last */
    const struct reply_answer *script;
    size_t script_len;
    struct reply_seen seen[REPLY_MAX_SEEN];
    size_t seen_count;
    long status;
    const uint8_t *body;
    size_t body_len;
    const char *header_name; /* one response header, or NULL */
    const char *header_value;
    unsigned calls;  /* aws_call requests answered */
    int log_enabled; /* print log lines to stderr */
    char last_log[512];
} s_reply;

/* The status byte 0 of a fuzz input stands for: mostly 200 (so most inputs
 * reach the body reader), else one of the other 2xx an AWS layer passes on
 * as success. */
static inline long reply_host_status(uint8_t b)
{
    static const long others[] = {201, 202, 203, 204, 206, 299, 200, 100};
    return b < 0xF0 ? 200 : others[b & 7];
}

static inline void reply_host_answer(long status, const void *body, size_t len)
{
    s_reply.status = status;
    s_reply.body = (const uint8_t *)body;
    s_reply.body_len = len;
    s_reply.header_name = NULL;
    s_reply.header_value = NULL;
}

static inline void reply_host_header(const char *name, const char *value)
{
    s_reply.header_name = name;
    s_reply.header_value = value;
}

static void s_reply_vlog(enum fanout_log_level level, const char *scope, const char *fmt,
                         va_list ap)
{
    (void)level;
    vsnprintf(s_reply.last_log, sizeof s_reply.last_log, fmt, ap);
    if (s_reply.log_enabled)
        fprintf(stderr, "[%s] %s\n", scope ? scope : "-", s_reply.last_log);
}

static void s_reply_log(enum fanout_log_level level, const char *scope, const char *fmt,
                        ...) FANOUT_PRINTF(3, 4);
static void s_reply_log(enum fanout_log_level level, const char *scope, const char *fmt,
                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_reply_vlog(level, scope, fmt, ap);
    va_end(ap);
}

static int s_reply_log_enabled(enum fanout_log_level level)
{
    (void)level;
    return 1; /* every line formatted: the fuzzer reaches the log code too */
}

static int64_t s_reply_now_ms(void)
{
    return 1700000000000;
}

static int64_t s_reply_remaining_ms(void)
{
    return INT64_MAX;
}

static void s_reply_copy(char *to, size_t n, const char *s)
{
    snprintf(to, n, "%s", s ? s : "");
}

/* Keep what request q says, and answer r from the script. */
static void s_reply_scripted(const struct fanout_aws_request *q,
                             struct fanout_aws_response *r)
{
    if (s_reply.seen_count < REPLY_MAX_SEEN) {
        struct reply_seen *w = &s_reply.seen[s_reply.seen_count++];
        s_reply_copy(w->service, sizeof w->service, q->service);
        s_reply_copy(w->signing_name, sizeof w->signing_name, q->signing_name);
        s_reply_copy(w->region, sizeof w->region, q->region);
        s_reply_copy(w->endpoint, sizeof w->endpoint, q->endpoint);
        s_reply_copy(w->role, sizeof w->role, q->role_arn);
        s_reply_copy(w->external_id, sizeof w->external_id, q->external_id);
        s_reply_copy(w->method, sizeof w->method, q->method);
        s_reply_copy(w->path, sizeof w->path, q->path);
        s_reply_copy(w->query, sizeof w->query, q->query);
        for (size_t h = 0; h < q->header_count && h < 4; h++) {
            s_reply_copy(w->headers[h][0], sizeof w->headers[h][0], q->headers[h].name);
            s_reply_copy(w->headers[h][1], sizeof w->headers[h][1], q->headers[h].value);
        }
        w->header_count = q->header_count;
        w->body = (char *)malloc(q->body_len + 1);
        if (!w->body)
            abort();
        if (q->body_len)
            memcpy(w->body, q->body, q->body_len);
        w->body[q->body_len] = 0;
        w->body_len = q->body_len;
    }
    size_t k = s_reply.calls < s_reply.script_len ? s_reply.calls : s_reply.script_len - 1;
    const struct reply_answer *a = &s_reply.script[k];
    r->status = a->status;
    r->result = a->result;
    s_reply_copy(r->error_code, sizeof r->error_code, a->code);
    s_reply_copy(r->error_message, sizeof r->error_message, a->message);
    size_t len = a->body ? strlen(a->body) : 0;
    r->body = (uint8_t *)malloc(len + 1);
    if (!r->body)
        abort();
    memcpy(r->body, a->body ? a->body : "", len + 1);
    r->body_len = len;
    r->attempts = 1;
    r->internal = (void *)a; /* what aws_response_header reads */
}

static int s_reply_aws_call(const struct fanout_aws_request *const *requests,
                            struct fanout_aws_response *const *responses, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct fanout_aws_response *r = responses[i];
        if (s_reply.script_len) {
            s_reply_scripted(requests[i], r);
            s_reply.calls++;
            continue;
        }
        s_reply.calls++;
        r->status = s_reply.status;
        r->attempts = 1;
        r->error_code[0] = r->error_message[0] = 0;
        r->result = s_reply.status >= 200 && s_reply.status < 300 ? FANOUT_AWS_OK
                                                                  : FANOUT_AWS_FAILED;
        r->body = (uint8_t *)malloc(s_reply.body_len + 1);
        if (!r->body)
            abort();
        if (s_reply.body_len)
            memcpy(r->body, s_reply.body, s_reply.body_len);
        r->body[s_reply.body_len] = 0;
        r->body_len = s_reply.body_len;
        r->internal = &s_reply; /* what aws_response_header reads */
    }
    return 0;
}

static void s_reply_clean_up(struct fanout_aws_response *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    r->internal = NULL;
}

static const char *s_reply_header(const struct fanout_aws_response *r, const char *name)
{
    if (r->internal && r->internal != (void *)&s_reply) {
        const struct reply_answer *a = (const struct reply_answer *)r->internal;
        return a->header_name && strcasecmp(name, a->header_name) == 0 ? a->header_value
                                                                       : NULL;
    }
    if (!r->internal || !s_reply.header_name || strcasecmp(name, s_reply.header_name) != 0)
        return NULL;
    return s_reply.header_value;
}

static int s_reply_endpoint(const char *service, const char *region, char *url,
                            size_t url_len, char *err, size_t err_len)
{
    (void)service;
    (void)region;
    (void)err;
    (void)err_len;
    snprintf(url, url_len, "https://127.0.0.1:1");
    return 0;
}

static const struct fanout_host reply_host = {
    .abi_major = FANOUT_ABI_MAJOR,
    .abi_minor = FANOUT_ABI_MINOR,
    .struct_size = sizeof(struct fanout_host),
    .log = s_reply_log,
    .vlog = s_reply_vlog,
    .log_enabled = s_reply_log_enabled,
    .now_ms = s_reply_now_ms,
    .remaining_ms = s_reply_remaining_ms,
    .aws_call = s_reply_aws_call,
    .aws_response_clean_up = s_reply_clean_up,
    .aws_response_header = s_reply_header,
    .aws_endpoint = s_reply_endpoint,
};

/* Answer the next requests from `answers` (n > 0; past the last, the last
 * again), keeping what each request says in s_reply.seen; n = 0 goes back
 * to reply_host_answer's single answer. Clears what was seen before. */
static inline void reply_host_script(const struct reply_answer *answers, size_t n)
{
    for (size_t i = 0; i < s_reply.seen_count; i++)
        free(s_reply.seen[i].body);
    memset(s_reply.seen, 0, sizeof s_reply.seen);
    s_reply.seen_count = 0;
    s_reply.calls = 0;
    s_reply.script = answers;
    s_reply.script_len = n;
}

/* A response as the engine hands it for an OK call, for the readers that
 * take one directly (sns_read_response, sqs_read_response). Release with
 * s_reply_clean_up. */
static inline void reply_host_response(struct fanout_aws_response *r)
{
    const struct fanout_aws_request *rq[] = {NULL};
    struct fanout_aws_response *rs[] = {r};
    memset(r, 0, sizeof *r);
    r->struct_size = sizeof *r;
    s_reply_aws_call(rq, rs, 1);
}

/* Records and messages for a representative batch: n messages, message i
 * with key "k<i>" and body {"n":<i>}. */
struct reply_batch {
    char keys[8][24];
    char bodies[8][32];
    struct fanout_record recs[8];
    const struct fanout_record *rec_ptrs[8];
    struct fanout_message msgs[8];
    const struct fanout_message *msg_ptrs[8];
    struct fanout_batch batch;
    struct fanout_outcome out[8];
};

static inline void reply_batch_init(struct reply_batch *b, size_t n)
{
    memset(b, 0, sizeof *b);
    if (n > 8)
        n = 8;
    for (size_t i = 0; i < n; i++) {
        snprintf(b->keys[i], sizeof b->keys[i], "k%zu", i);
        snprintf(b->bodies[i], sizeof b->bodies[i], "{\"n\":%zu}", i);
        struct fanout_record *r = &b->recs[i];
        r->key = (const uint8_t *)b->keys[i];
        r->key_len = strlen(b->keys[i]);
        r->data = (const uint8_t *)b->bodies[i];
        r->data_len = strlen(b->bodies[i]);
        r->sequence_number = "49590338271490256608559692538361571095921575989136588898";
        r->sub_sequence_number = i;
        r->action = "PUT";
        r->source_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/src";
        r->region = "us-east-1";
        b->rec_ptrs[i] = r;
        b->msgs[i].key = r->key;
        b->msgs[i].key_len = r->key_len;
        b->msgs[i].body = r->data;
        b->msgs[i].body_len = r->data_len;
        b->msgs[i].record_count = 1;
        b->msgs[i].records = &b->rec_ptrs[i];
        b->msg_ptrs[i] = &b->msgs[i];
    }
    b->batch.struct_size = sizeof b->batch;
    b->batch.collapse = FANOUT_COLLAPSE_NONE;
    b->batch.count = n;
    b->batch.messages = b->msg_ptrs;
    b->batch.attempt = 1;
}

/* The n outcomes as letters: O delivered, R retry, T throttled, F fatal. */
static inline void reply_letters(const struct fanout_outcome *out, size_t n, char *s)
{
    static const char l[] = "ORTF";
    for (size_t i = 0; i < n; i++)
        s[i] = out[i].status >= 0 && out[i].status <= 3 ? l[out[i].status] : '?';
    s[n] = 0;
}

/* How many of the n outcomes say delivered. */
static inline size_t reply_batch_ok(const struct reply_batch *b, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += b->out[i].status == FANOUT_OK;
    return k;
}

#endif
