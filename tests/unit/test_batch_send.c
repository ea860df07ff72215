/*
 * fanout_batch_send (sdk/lib/batch.c) against a fake host whose aws_call
 * answers from a script: how it splits a batch (count, bytes, an oversize
 * entry alone), prepare refusals, whole requests throttled, retryable or
 * failed, ordered sends stopping after a failed request, a build failure,
 * release for every entry, and its log line. Then the sqs and sns plugins
 * (their built .so, dlopen'd) through it: requests as they go on the wire,
 * partial failures, FIFO order, MD5 checks, errors.
 *
 * Outcomes are written as one letter per message: O delivered, R retry,
 * T throttled, F fatal.
 */
#include <check.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fanout/batch.h>

#include "check_main.h"

#define T_MAX 40

struct t_answer {
    int result; /* FANOUT_AWS_* */
    long status;
    const char *code;
    const char *message;
    const char *body;
};

/* The fake host's script and what it saw. */
static struct {
    const struct t_answer *answers; /* one per request, in order; then the last */
    size_t nanswers, next;
    size_t calls, per_call[T_MAX]; /* requests per aws_call */
    size_t nreq;
    char body[T_MAX][2048]; /* each request's body and first header value */
    char header[T_MAX][64];
    char logs[4096];
} H;

static void t_vlog(enum fanout_log_level level, const char *scope, const char *fmt,
                   va_list ap)
{
    (void)level;
    (void)scope;
    size_t n = strlen(H.logs);
    if (n + 2 < sizeof H.logs) {
        vsnprintf(H.logs + n, sizeof H.logs - n - 1, fmt, ap);
        strcat(H.logs, "\n");
    }
}

static void t_log(enum fanout_log_level level, const char *scope, const char *fmt, ...)
    FANOUT_PRINTF(3, 4);
static void t_log(enum fanout_log_level level, const char *scope, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    t_vlog(level, scope, fmt, ap);
    va_end(ap);
}

static int t_log_enabled(enum fanout_log_level level)
{
    (void)level;
    return 1;
}

static int t_aws_call(const struct fanout_aws_request *const *rq,
                      struct fanout_aws_response *const *rs, size_t n)
{
    ck_assert_uint_lt(H.calls, T_MAX);
    H.per_call[H.calls++] = n;
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_lt(H.nreq, T_MAX);
        snprintf(H.body[H.nreq], sizeof H.body[0], "%.*s", (int)rq[i]->body_len,
                 (const char *)rq[i]->body);
        snprintf(H.header[H.nreq], sizeof H.header[0], "%s",
                 rq[i]->header_count ? rq[i]->headers[rq[i]->header_count - 1].value : "");
        H.nreq++;
        const struct t_answer *a =
            &H.answers[H.next < H.nanswers ? H.next++ : H.nanswers - 1];
        struct fanout_aws_response *r = rs[i];
        r->result = a->result;
        r->status = a->status;
        snprintf(r->error_code, sizeof r->error_code, "%s", a->code ? a->code : "");
        snprintf(r->error_message, sizeof r->error_message, "%s",
                 a->message ? a->message : "");
        size_t len = a->body ? strlen(a->body) : 0;
        r->body = malloc(len + 1);
        ck_assert_ptr_nonnull(r->body);
        memcpy(r->body, a->body ? a->body : "", len + 1);
        r->body_len = len;
    }
    return 0;
}

static void t_clean_up(struct fanout_aws_response *r)
{
    free(r->body);
    r->body = NULL;
}

static const char *t_header(const struct fanout_aws_response *r, const char *name)
{
    (void)r;
    (void)name;
    return NULL;
}

static int t_endpoint(const char *service, const char *region, char *url, size_t url_len,
                      char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    snprintf(url, url_len, "https://%s.%s.amazonaws.com", service, region ? region : "x");
    return 0;
}

static const struct fanout_host t_host = {
    .abi_major = FANOUT_ABI_MAJOR,
    .abi_minor = FANOUT_ABI_MINOR,
    .struct_size = sizeof(struct fanout_host),
    .log = t_log,
    .vlog = t_vlog,
    .log_enabled = t_log_enabled,
    .aws_call = t_aws_call,
    .aws_response_clean_up = t_clean_up,
    .aws_response_header = t_header,
    .aws_endpoint = t_endpoint,
};

static void t_script(const struct t_answer *answers, size_t n)
{
    memset(&H, 0, sizeof H);
    H.answers = answers;
    H.nanswers = n;
}

static const struct t_answer t_ok = {FANOUT_AWS_OK, 200, NULL, NULL, ""};

/* ---- a batch of n messages: message i has key "k<i>" and body {"n":<i>} ---- */

struct t_batch {
    char keys[T_MAX][16], bodies[T_MAX][96];
    struct fanout_record recs[T_MAX];
    const struct fanout_record *rec_ptrs[T_MAX];
    struct fanout_message msgs[T_MAX];
    const struct fanout_message *msg_ptrs[T_MAX];
    struct fanout_batch batch;
    struct fanout_outcome out[T_MAX];
};

static struct t_batch *t_batch(size_t n)
{
    struct t_batch *b = calloc(1, sizeof *b);
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < n; i++) {
        snprintf(b->keys[i], sizeof b->keys[i], "k%u", (unsigned)i);
        snprintf(b->bodies[i], sizeof b->bodies[i], "{\"n\":%zu}", i);
        b->recs[i] = (struct fanout_record){
            .sequence_number = "4959033827149025660855969253836157109592157598913658889",
            .sub_sequence_number = i,
            .source_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/src"};
        b->rec_ptrs[i] = &b->recs[i];
        b->msgs[i] = (struct fanout_message){.key = (const uint8_t *)b->keys[i],
                                             .key_len = strlen(b->keys[i]),
                                             .body = (const uint8_t *)b->bodies[i],
                                             .body_len = strlen(b->bodies[i]),
                                             .record_count = 1,
                                             .records = &b->rec_ptrs[i]};
        b->msg_ptrs[i] = &b->msgs[i];
    }
    b->batch = (struct fanout_batch){
        .struct_size = sizeof b->batch, .count = n, .messages = b->msg_ptrs, .attempt = 1};
    return b;
}

static const char *t_letters(const struct fanout_outcome *out, size_t n)
{
    static char s[T_MAX + 1];
    for (size_t i = 0; i < n; i++)
        s[i] = "ORTF"[out[i].status >= 0 && out[i].status <= 3 ? out[i].status : 0];
    s[n] = 0;
    return s;
}

/* ---- a plugin of the test's own: entry sizes from a table ---- */

struct t_entry {
    size_t index;
    char *owned; /* allocated by prepare, freed by release */
};

static struct {
    uint64_t sizes[T_MAX]; /* 0: 10 bytes; UINT64_MAX: refused */
    size_t fail_build_at;  /* build request k fails (0: never; k is 1-based) */
    size_t pad;            /* bytes of padding after each body's entries */
    size_t builds, releases, reads;
} P;

static int p_prepare(void *ctx, const struct fanout_message *m, size_t i, void *entry,
                     uint64_t *size, struct fanout_outcome *out)
{
    (void)ctx;
    (void)m;
    struct t_entry *e = entry;
    e->owned = malloc(8); /* before a refusal too: release must see it */
    ck_assert_ptr_nonnull(e->owned);
    if (P.sizes[i] == UINT64_MAX) {
        fanout_outcome_set(out, FANOUT_FATAL, "Refused", "message %zu refused", i);
        return -1;
    }
    e->index = i;
    *size = P.sizes[i] ? P.sizes[i] : 10;
    return 0;
}

static int p_build(void *ctx, struct fanout_batch_request *r)
{
    (void)ctx;
    if (++P.builds == P.fail_build_at)
        return -1;
    for (size_t j = 0; j < r->count; j++) {
        const struct t_entry *e = r->entries[j];
        ck_assert_uint_eq(e->index, r->indexes[j]);
        if (fanout_sbuf_printf(&r->body, "%s%zu", j ? "," : "", e->index) != 0)
            return -1;
    }
    for (size_t k = 0; k < P.pad; k++)
        if (fanout_sbuf_putc(&r->body, ' ') != 0)
            return -1;
    r->operation = "PutThings";
    r->headers[0] = (struct fanout_aws_header){"X-Test", "put"};
    r->req.headers = r->headers;
    r->req.header_count = 1;
    r->req.body = (const uint8_t *)r->body.p;
    r->req.body_len = r->body.len;
    return 0;
}

/* The answer's body lists the failed messages: "F3;F7;" */
static void p_read(void *ctx, const struct fanout_batch_request *r,
                   struct fanout_outcome *out)
{
    (void)ctx;
    P.reads++;
    for (size_t j = 0; j < r->count; j++) {
        char tag[32];
        snprintf(tag, sizeof tag, "F%zu;", r->indexes[j]);
        if (strstr((const char *)r->resp.body, tag))
            fanout_outcome_set(&out[r->indexes[j]], FANOUT_RETRY, "EntryFailed", "failed");
    }
}

static void p_release(void *ctx, void *entry)
{
    (void)ctx;
    struct t_entry *e = entry;
    free(e->owned);
    e->owned = NULL;
    P.releases++;
}

static int p_failed_status(void *ctx, const struct fanout_aws_response *resp, int status)
{
    (void)ctx;
    return status == FANOUT_FATAL && strcmp(resp->error_code, "SlowDownPlease") == 0
               ? FANOUT_THROTTLED
               : status;
}

static struct fanout_batch_api p_api = {
    .entry_size = sizeof(struct t_entry),
    .max_entries = 10,
    .max_request_bytes = 1000,
    .prepare = p_prepare,
    .build = p_build,
    .read = p_read,
    .release = p_release,
};

static int p_send(struct t_batch *b, int ordered)
{
    const struct fanout_batch_target t = {
        .host = &t_host, .target_id = "m", .destination = "dest", .ordered = ordered};
    int rc = fanout_batch_send(&p_api, &t, NULL, &b->batch, b->out);
    ck_assert_uint_eq(P.releases, b->batch.count);
    return rc;
}

static void p_reset(void)
{
    memset(&P, 0, sizeof P);
    p_api.failed_status = NULL;
}

START_TEST(split_by_count_in_one_call)
{
    p_reset();
    t_script(&t_ok, 1);
    struct t_batch *b = t_batch(25);
    ck_assert_int_eq(p_send(b, 0), 0);
    ck_assert_uint_eq(H.calls, 1);
    ck_assert_uint_eq(H.per_call[0], 3);
    ck_assert_str_eq(H.body[0], "0,1,2,3,4,5,6,7,8,9");
    ck_assert_str_eq(H.body[2], "20,21,22,23,24");
    ck_assert_str_eq(H.header[1], "put");
    ck_assert_str_eq(t_letters(b->out, 25), "OOOOOOOOOOOOOOOOOOOOOOOOO");
    ck_assert_ptr_nonnull(
        strstr(H.logs, "PutThings to dest: 10 messages, 100 bytes (attempt 1)"));
    ck_assert_ptr_nonnull(
        strstr(H.logs, "PutThings to dest: 5 messages, 50 bytes (attempt 1)"));
    free(b);
}
END_TEST

START_TEST(split_by_bytes_and_oversize_alone)
{
    p_reset();
    t_script(&t_ok, 1);
    /* 500+500 fill a request exactly; 1 opens the next; 5000 goes alone */
    uint64_t sizes[] = {500, 500, 1, 5000, 2, 998};
    memcpy(P.sizes, sizes, sizeof sizes);
    struct t_batch *b = t_batch(6);
    ck_assert_int_eq(p_send(b, 0), 0);
    ck_assert_uint_eq(H.nreq, 4);
    ck_assert_str_eq(H.body[0], "0,1");
    ck_assert_str_eq(H.body[1], "2");
    ck_assert_str_eq(H.body[2], "3");
    ck_assert_str_eq(H.body[3], "4,5");
    ck_assert_str_eq(t_letters(b->out, 6), "OOOOOO");
    free(b);
}
END_TEST

START_TEST(refusals_keep_their_outcome)
{
    p_reset();
    static const struct t_answer a = {FANOUT_AWS_OK, 200, NULL, NULL, "F4;"};
    t_script(&a, 1);
    P.sizes[1] = P.sizes[3] = UINT64_MAX;
    struct t_batch *b = t_batch(5);
    ck_assert_int_eq(p_send(b, 0), 0);
    ck_assert_uint_eq(H.nreq, 1);
    ck_assert_str_eq(H.body[0], "0,2,4");
    ck_assert_str_eq(t_letters(b->out, 5), "OFOFR");
    ck_assert_str_eq(b->out[3].code, "Refused");
    ck_assert_str_eq(b->out[3].message, "message 3 refused");
    ck_assert_ptr_nonnull(strstr(H.logs, "message 4 (attempt 1): retry: EntryFailed"));
    /* all refused: nothing sent */
    p_reset();
    t_script(&a, 1);
    for (size_t i = 0; i < 3; i++)
        P.sizes[i] = UINT64_MAX;
    struct t_batch *c = t_batch(3);
    ck_assert_int_eq(p_send(c, 0), 0);
    ck_assert_uint_eq(H.calls, 0);
    ck_assert_str_eq(t_letters(c->out, 3), "FFF");
    free(b);
    free(c);
}
END_TEST

START_TEST(whole_request_failures)
{
    static const struct {
        struct t_answer a;
        int hook;
        const char *want, *code, *message;
    } cases[] = {
        {{FANOUT_AWS_THROTTLED, 400, "ThrottlingException", "Rate exceeded", NULL},
         0,
         "TT",
         "ThrottlingException",
         "PutThings: Rate exceeded"},
        {{FANOUT_AWS_RETRYABLE, 503, "ServiceUnavailable", "", NULL},
         0,
         "RR",
         "ServiceUnavailable",
         "PutThings: no reason given"},
        {{FANOUT_AWS_FAILED, 400, "ValidationException", "bad", NULL},
         0,
         "FF",
         "ValidationException",
         "PutThings: bad"},
        {{FANOUT_AWS_FAILED, 403, "", "denied", NULL},
         0,
         "FF",
         "RequestFailed",
         "PutThings: denied"},
        /* a throttling code the AWS layer did not know, and the hook that does */
        {{FANOUT_AWS_FAILED, 403, "SlowDownPlease", "slow", NULL},
         0,
         "FF",
         "SlowDownPlease",
         "PutThings: slow"},
        {{FANOUT_AWS_FAILED, 403, "SlowDownPlease", "slow", NULL},
         1,
         "TT",
         "SlowDownPlease",
         "PutThings: slow"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        p_reset();
        p_api.failed_status = cases[k].hook ? p_failed_status : NULL;
        t_script(&cases[k].a, 1);
        struct t_batch *b = t_batch(2);
        ck_assert_int_eq(p_send(b, 0), 0);
        ck_assert_uint_eq(P.reads, 0); /* read sees only answers that came */
        ck_assert_msg(strcmp(t_letters(b->out, 2), cases[k].want) == 0, "case %zu: %s", k,
                      t_letters(b->out, 2));
        for (size_t i = 0; i < 2; i++) {
            ck_assert_str_eq(b->out[i].code, cases[k].code);
            ck_assert_str_eq(b->out[i].message, cases[k].message);
        }
        free(b);
    }
    p_api.failed_status = NULL;
}
END_TEST

START_TEST(ordered_stops_after_a_failed_request)
{
    p_reset();
    static const struct t_answer a[] = {
        {FANOUT_AWS_OK, 200, NULL, NULL, ""},
        {FANOUT_AWS_RETRYABLE, 500, "InternalError", "oops", NULL},
        {FANOUT_AWS_OK, 200, NULL, NULL, ""},
    };
    t_script(a, 3);
    struct t_batch *b = t_batch(35);
    ck_assert_int_eq(p_send(b, 1), 0);
    /* one request per call; the third and fourth never went */
    ck_assert_uint_eq(H.calls, 2);
    ck_assert_uint_eq(H.per_call[0], 1);
    ck_assert_uint_eq(H.per_call[1], 1);
    ck_assert_str_eq(t_letters(b->out, 35), "OOOOOOOOOORRRRRRRRRRRRRRRRRRRRRRRRR");
    ck_assert_str_eq(b->out[10].code, "InternalError");
    ck_assert_str_eq(b->out[20].code, "NotSent");
    ck_assert_str_eq(b->out[34].message, "not sent yet: an earlier request to this "
                                         "destination failed, and order comes first");
    free(b);
    /* one entry an answer refused stops the next request too; unordered,
     * nothing stops */
    p_reset();
    static const struct t_answer partial = {FANOUT_AWS_OK, 200, NULL, NULL, "F3;"};
    t_script(&partial, 1);
    b = t_batch(15);
    ck_assert_int_eq(p_send(b, 1), 0);
    ck_assert_uint_eq(H.calls, 1);
    ck_assert_str_eq(t_letters(b->out, 15), "OOOROOOOOORRRRR");
    ck_assert_str_eq(b->out[14].code, "NotSent");
    p_reset();
    t_script(&partial, 1);
    memset(b->out, 0, sizeof b->out);
    ck_assert_int_eq(p_send(b, 0), 0);
    ck_assert_uint_eq(H.nreq, 2);
    ck_assert_str_eq(t_letters(b->out, 15), "OOOROOOOOOOOOOO");
    free(b);
}
END_TEST

START_TEST(build_failure)
{
    p_reset();
    t_script(&t_ok, 1);
    P.fail_build_at = 2;
    struct t_batch *b = t_batch(25);
    ck_assert_int_eq(p_send(b, 0), -1);
    /* the request built before goes; the rest wait for a retry */
    ck_assert_uint_eq(H.nreq, 1);
    ck_assert_str_eq(t_letters(b->out, 25), "OOOOOOOOOORRRRRRRRRRRRRRR");
    ck_assert_str_eq(b->out[24].code, "OutOfMemory");
    free(b);
}
END_TEST

START_TEST(empty_batch)
{
    p_reset();
    t_script(&t_ok, 1);
    struct t_batch *b = t_batch(0);
    ck_assert_int_eq(p_send(b, 1), 0);
    ck_assert_uint_eq(H.calls, 0);
    free(b);
}
END_TEST

/* Is b one of the kept bodies? */
static int t_kept(const struct fanout_batch_spares *s, const char *b)
{
    for (size_t k = 0; k < s->count; k++)
        if (s->bufs[k].p == b)
            return 1;
    return 0;
}

START_TEST(spares_reuse_bodies_and_give_back_giants)
{
    p_reset();
    t_script(&t_ok, 1);
    struct fanout_batch_spares sp;
    ck_assert_int_eq(fanout_batch_spares_init(&sp), 0);
    const struct fanout_batch_target t = {
        .host = &t_host, .target_id = "m", .destination = "dest"};
    struct t_batch *b = t_batch(25);
    ck_assert_int_eq(fanout_batch_send_kept(&p_api, &t, &sp, NULL, &b->batch, b->out), 0);
    ck_assert_uint_eq(sp.count, 3); /* the three requests' bodies */
    const char *kept[3] = {sp.bufs[0].p, sp.bufs[1].p, sp.bufs[2].p};
    /* the next call writes into them: same bodies as without spares */
    ck_assert_int_eq(fanout_batch_send_kept(&p_api, &t, &sp, NULL, &b->batch, b->out), 0);
    ck_assert_str_eq(H.body[3], "0,1,2,3,4,5,6,7,8,9");
    ck_assert_str_eq(H.body[5], "20,21,22,23,24");
    ck_assert_uint_eq(sp.count, 3);
    for (size_t k = 0; k < 3; k++)
        ck_assert(t_kept(&sp, kept[k]));
    ck_assert_str_eq(t_letters(b->out, 25), "OOOOOOOOOOOOOOOOOOOOOOOOO");
    free(b);
    /* twenty requests (two 500-byte entries each): four kept at most */
    b = t_batch(40);
    for (size_t i = 0; i < 40; i++)
        P.sizes[i] = 500;
    t_script(&t_ok, 1);
    ck_assert_int_eq(fanout_batch_send_kept(&p_api, &t, &sp, NULL, &b->batch, b->out), 0);
    ck_assert_uint_eq(sp.count, FANOUT_BATCH_SPARES);
    /* bodies grown past FANOUT_BATCH_SPARE_MAX are given back */
    P.pad = FANOUT_BATCH_SPARE_MAX;
    t_script(&t_ok, 1);
    ck_assert_int_eq(fanout_batch_send_kept(&p_api, &t, &sp, NULL, &b->batch, b->out), 0);
    ck_assert_uint_eq(sp.count, 0);
    P.pad = 0;
    t_script(&t_ok, 1);
    ck_assert_int_eq(fanout_batch_send_kept(&p_api, &t, &sp, NULL, &b->batch, b->out), 0);
    ck_assert_uint_eq(sp.count, FANOUT_BATCH_SPARES);
    ck_assert_str_eq(H.body[H.nreq - 1], "38,39");
    for (size_t k = 0; k < sp.count; k++)
        ck_assert_uint_le(sp.bufs[k].cap, FANOUT_BATCH_SPARE_MAX);
    free(b);
    fanout_batch_spares_free(&sp);
    ck_assert_uint_eq(sp.count, 0);
}
END_TEST

/* ---- the sqs and sns plugins through the helper ---- */

static const struct fanout_plugin *t_plugin(const char *path)
{
    void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(so != NULL, "%s", dlerror());
    const struct fanout_plugin *p = dlsym(so, "fanout_plugin_v1");
    ck_assert_ptr_nonnull(p);
    return p; /* left open: the process ends soon */
}

/* Send n messages (or batch b) through plugin `path` to `dest`. */
static void t_plugin_send(const char *path, const char *dest, struct t_batch *b)
{
    const struct fanout_plugin *p = t_plugin(path);
    void *state = NULL, *in = NULL;
    struct fanout_error err = {0};
    ck_assert_int_eq(p->init(&t_host, &state, &err), 0);
    struct fanout_target t = {.struct_size = sizeof t,
                              .id = "m1",
                              .type = p->name,
                              .destination = dest,
                              .collapse = FANOUT_COLLAPSE_NONE,
                              .parallel = 1};
    ck_assert_msg(p->open(state, &t, &in, &err) == 0, "%s", err.message);
    ck_assert_int_eq(p->send(in, &b->batch, b->out), 0);
    p->close(in);
    if (p->fini)
        p->fini(state);
}

#define QURL "https://sqs.us-east-1.amazonaws.com/123456789012/"
#define MD0  "4bb9e0de5005747b62cadb7fc69c584a" /* MD5 of {"n":0} */

START_TEST(sqs_requests_and_answers)
{
    static const struct t_answer a[] = {
        {FANOUT_AWS_OK, 200, NULL, NULL,
         "{\"Successful\":[{\"Id\":\"0\",\"MessageId\":\"a\",\"MD5OfMessageBody\":\"" MD0
         "\"},{\"Id\":\"1\",\"MessageId\":\"b\",\"MD5OfMessageBody\":\"" MD0 "\"}],"
         "\"Failed\":[{\"Id\":\"2\",\"SenderFault\":true,\"Code\":"
         "\"InvalidParameterValue\","
         "\"Message\":\"no\"},{\"Id\":\"3\",\"SenderFault\":false,\"Code\":"
         "\"InternalError\"}]}"},
        {FANOUT_AWS_FAILED, 403, "AWS.SimpleQueueService.RequestThrottled", "slow", NULL},
    };
    t_script(a, 2);
    struct t_batch *b = t_batch(12);
    t_plugin_send(SQS_SO, QURL "q", b);
    /* 10 + 2, together; entry 1's MD5 is entry 0's: in doubt; 4..9 left out */
    ck_assert_uint_eq(H.calls, 1);
    ck_assert_uint_eq(H.nreq, 2);
    ck_assert_str_eq(H.header[0], "AmazonSQS.SendMessageBatch");
    ck_assert_ptr_nonnull(strstr(H.body[0],
                                 "{\"QueueUrl\":\"" QURL "q\",\"Entries\":[{\"Id\":"
                                 "\"0\",\"MessageBody\":\"{\\\"n\\\":0}\"}"));
    ck_assert_ptr_nonnull(strstr(H.body[1], "{\"Id\":\"11\",\"MessageBody\":"));
    ck_assert_str_eq(t_letters(b->out, 12), "ORFRRRRRRRTT");
    ck_assert_str_eq(b->out[1].code, "MD5Mismatch");
    ck_assert_str_eq(b->out[2].code, "InvalidParameterValue");
    ck_assert_str_eq(b->out[3].code, "InternalError");
    ck_assert_str_eq(b->out[11].message, "SendMessageBatch: slow");
    ck_assert_ptr_nonnull(strstr(H.logs, "SendMessageBatch to " QURL "q: 10 messages"));
    free(b);
    /* one message: SendMessage */
    static const struct t_answer one = {FANOUT_AWS_OK, 200, NULL, NULL,
                                        "{\"MessageId\":\"x\",\"MD5OfMessageBody\":\"" MD0
                                        "\"}"};
    t_script(&one, 1);
    b = t_batch(1);
    t_plugin_send(SQS_SO, QURL "q", b);
    ck_assert_str_eq(H.header[0], "AmazonSQS.SendMessage");
    ck_assert_str_eq(H.body[0],
                     "{\"QueueUrl\":\"" QURL "q\",\"MessageBody\":\"{\\\"n\\\":0}\"}");
    ck_assert_str_eq(t_letters(b->out, 1), "O");
    free(b);
}
END_TEST

#define Q(id) "{\"Id\":\"" id "\",\"MessageId\":\"m" id "\"}"

START_TEST(sqs_fifo_in_order)
{
    static const struct t_answer a[] = {
        {FANOUT_AWS_OK, 200, NULL, NULL,
         "{\"Successful\":[" Q("1") "," Q("2") "," Q("3") "," Q("4") "," Q("5") "," Q(
             "6") "," Q("7") "," Q("8") "," Q("9") "," Q("10") "]}"},
        {FANOUT_AWS_RETRYABLE, 500, "InternalError", "down", NULL},
    };
    t_script(a, 2);
    struct t_batch *b = t_batch(25);
    b->msgs[0].body = (const uint8_t *)""; /* refused, not sent */
    b->msgs[0].body_len = 0;
    t_plugin_send(SQS_SO, QURL "q.fifo", b);
    /* one request at a time; after the failed second, the third waits */
    ck_assert_uint_eq(H.calls, 2);
    ck_assert_ptr_nonnull(strstr(H.body[0],
                                 "{\"Id\":\"1\",\"MessageBody\":\"{\\\"n\\\":1}\","
                                 "\"MessageGroupId\":\"k1\","
                                 "\"MessageDeduplicationId\":\""));
    ck_assert_ptr_nonnull(strstr(H.body[1], "{\"Id\":\"11\","));
    ck_assert_str_eq(t_letters(b->out, 25), "FOOOOOOOOOORRRRRRRRRRRRRR");
    ck_assert_str_eq(b->out[0].code, "MissingParameter");
    ck_assert_str_eq(b->out[11].code, "InternalError");
    ck_assert_str_eq(b->out[21].code, "NotSent");
    ck_assert_ptr_nonnull(strstr(b->out[21].message, "this FIFO queue failed"));
    free(b);
}
END_TEST

#define TOPIC "arn:aws:sns:us-east-1:123456789012:t"
#define SNS_OK(ids)                                                                        \
    "<PublishBatchResponse><PublishBatchResult><Successful>" ids                           \
    "</Successful><Failed><member><Id>1</Id><Code>InvalidParameter</Code><Message>no"      \
    "</Message><SenderFault>true</SenderFault></member><member><Id>2</Id><Code>Throttled"  \
    "</Code><SenderFault>false</SenderFault></member></Failed></PublishBatchResult>"       \
    "</PublishBatchResponse>"

START_TEST(sns_requests_and_answers)
{
    static const struct t_answer a[] = {
        {FANOUT_AWS_OK, 200, NULL, NULL,
         SNS_OK("<member><Id>0</Id><MessageId>m</MessageId></member>"
                "<member><Id>3</Id></member>")},
    };
    t_script(a, 1);
    struct t_batch *b = t_batch(5);
    b->msgs[4].body = (const uint8_t *)"\xff\xfe"; /* not UTF-8: refused */
    b->msgs[4].body_len = 2;
    t_plugin_send(SNS_SO, TOPIC, b);
    ck_assert_uint_eq(H.nreq, 1);
    ck_assert_ptr_nonnull(strstr(H.body[0],
                                 "Action=PublishBatch&Version=2010-03-31&TopicArn="
                                 "arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At"
                                 "&PublishBatchRequestEntries.member.1.Id=0&"
                                 "PublishBatchRequestEntries.member.1.Message="
                                 "%7B%22n%22%3A0%7D"));
    ck_assert_ptr_null(strstr(H.body[0], "member.5."));
    /* 3 has no MessageId: in doubt */
    ck_assert_str_eq(t_letters(b->out, 5), "OFTRF");
    ck_assert_ptr_nonnull(strstr(
        b->out[4].message, "not text SNS accepts: invalid UTF-8 (byte 0xFF) at byte 0"));
    ck_assert_ptr_nonnull(strstr(H.logs, "PublishBatch to " TOPIC ": 4 messages"));
    free(b);
    /* a truncated answer: everything in doubt; an error: the service's code */
    static const struct t_answer bad[] = {
        {FANOUT_AWS_OK, 200, NULL, NULL, "<PublishBatchResponse><PublishBatchResult>"},
        {FANOUT_AWS_FAILED, 404, "NotFound", "Topic does not exist", NULL},
    };
    for (size_t k = 0; k < 2; k++) {
        t_script(&bad[k], 1);
        b = t_batch(3);
        t_plugin_send(SNS_SO, TOPIC, b);
        ck_assert_str_eq(t_letters(b->out, 3), k ? "FFF" : "RRR");
        ck_assert_str_eq(b->out[2].code, k ? "NotFound" : "InvalidResponse");
        free(b);
    }
}
END_TEST

START_TEST(sns_fifo_ids_and_order)
{
    static const struct t_answer a = {FANOUT_AWS_THROTTLED, 400, "Throttled", "slow", NULL};
    t_script(&a, 1);
    struct t_batch *b = t_batch(12);
    /* a key SNS would refuse as a group id: its SHA-256 instead */
    b->msgs[0].key = (const uint8_t *)"a key";
    b->msgs[0].key_len = 5;
    t_plugin_send(SNS_SO, TOPIC ".fifo", b);
    ck_assert_uint_eq(H.calls, 1);
    ck_assert_ptr_nonnull(strstr(H.body[0], "member.1.MessageGroupId="
                                            "8fa3aab2faa9b79e0a0398da5b5abd07"
                                            "80142442a5be80b9a64608d718cb1fcd"));
    ck_assert_ptr_nonnull(strstr(H.body[0], "member.2.MessageGroupId=k1&"));
    ck_assert_str_eq(t_letters(b->out, 12), "TTTTTTTTTTRR");
    ck_assert_str_eq(b->out[11].code, "NotSent");
    ck_assert_ptr_nonnull(strstr(b->out[11].message, "this FIFO topic failed"));
    free(b);
}
END_TEST

/* ---- fanout_text_check against a byte-by-byte reference ---- */

static int t_accept_sqs(uint32_t c)
{
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

static int t_accept_no_x(uint32_t c)
{
    return c != 'x';
}

/* every printable ASCII character, no control character, no DEL */
static int t_accept_no_del(uint32_t c)
{
    return c >= 0x20 && c != 0x7F;
}

/* The check as it was: each character decoded and asked. */
static size_t t_text_ref(const uint8_t *s, size_t n, int (*accept)(uint32_t), char *what,
                         size_t what_len)
{
    for (size_t i = 0; i < n;) {
        size_t k = fanout_utf8_seq(s + i, n - i);
        if (!k) {
            snprintf(what, what_len, "invalid UTF-8 (byte 0x%02X)", s[i]);
            return i;
        }
        uint32_t cp = k == 1 ? s[i] : s[i] & (0x7Fu >> k);
        for (size_t j = 1; j < k; j++)
            cp = (cp << 6) | (s[i + j] & 0x3Fu);
        if (accept && !accept(cp)) {
            snprintf(what, what_len, "character U+%04X", (unsigned)cp);
            return i;
        }
        i += k;
    }
    what[0] = 0;
    return n;
}

START_TEST(text_check_as_byte_by_byte)
{
    /* printable runs longer than a word, with one odd character at every
     * offset: controls, DEL, 'x', UTF-8 of 2, 3 and 4 bytes, invalid bytes */
    static const char *const odd[] = {"\x01",        "\x1f",         "\t",
                                      "\n",          "\x7f",         "x",
                                      "\xc3\xa9",    "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                      "\xff",        "\xc3",         "\xed\xa0\x80",
                                      "\xef\xbf\xbe"};
    int (*const fns[])(uint32_t) = {t_accept_sqs, t_accept_no_x, t_accept_no_del, NULL,
                                    t_accept_sqs};
    uint8_t buf[200];
    size_t checked = 0;
    for (size_t f = 0; f < sizeof fns / sizeof *fns; f++)
        for (size_t o = 0; o < sizeof odd / sizeof *odd; o++)
            for (size_t len = 1; len <= 90; len += 7)
                for (size_t at = 0; at <= len; at += 3) {
                    size_t ol = strlen(odd[o]), n = 0;
                    for (size_t i = 0; i < at; i++)
                        buf[n++] = (uint8_t)(' ' + (i * 7) % 95);
                    memcpy(buf + n, odd[o], ol);
                    n += ol;
                    for (size_t i = at; i < len; i++)
                        buf[n++] = (uint8_t)('A' + i % 26);
                    char w1[64], w2[64];
                    size_t a = fanout_text_check(buf, n, fns[f], w1, sizeof w1);
                    size_t b = t_text_ref(buf, n, fns[f], w2, sizeof w2);
                    ck_assert_uint_eq(a, b);
                    ck_assert_str_eq(w1, w2);
                    checked++;
                }
    ck_assert_uint_gt(checked, 1000);
    /* a function that refuses a printable character, then one that does
     * not, in the same thread: each is asked about itself */
    const uint8_t text[] = "a long enough text of printable characters, with an x in it, "
                           "to be read a word at a time";
    char w[64];
    ck_assert_uint_eq(fanout_text_check(text, sizeof text - 1, t_accept_no_x, w, sizeof w),
                      (size_t)(strchr((const char *)text, 'x') - (const char *)text));
    ck_assert_str_eq(w, "character U+0078");
    ck_assert_uint_eq(fanout_text_check(text, sizeof text - 1, t_accept_sqs, w, sizeof w),
                      sizeof text - 1);
    ck_assert_uint_eq(fanout_text_check(text, sizeof text - 1, t_accept_no_x, w, sizeof w),
                      (size_t)(strchr((const char *)text, 'x') - (const char *)text));
}
END_TEST

static Suite *t_suite(void)
{
    Suite *s = suite_create("batch_send");
    TCase *tc = tcase_create("helper");
    tcase_add_test(tc, split_by_count_in_one_call);
    tcase_add_test(tc, split_by_bytes_and_oversize_alone);
    tcase_add_test(tc, refusals_keep_their_outcome);
    tcase_add_test(tc, whole_request_failures);
    tcase_add_test(tc, ordered_stops_after_a_failed_request);
    tcase_add_test(tc, build_failure);
    tcase_add_test(tc, empty_batch);
    tcase_add_test(tc, spares_reuse_bodies_and_give_back_giants);
    tcase_add_test(tc, text_check_as_byte_by_byte);
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("plugins");
    tcase_add_test(tp, sqs_requests_and_answers);
    tcase_add_test(tp, sqs_fifo_in_order);
    tcase_add_test(tp, sns_requests_and_answers);
    tcase_add_test(tp, sns_fifo_ids_and_order);
    suite_add_tcase(s, tp);
    return s;
}

int main(void)
{
    return fanout_check_run(t_suite());
}
