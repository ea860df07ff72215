/*
 * The stream plugins' protocol (kinesis PutRecords, firehose PutRecordBatch)
 * and the SDK's stream helpers (fanout/stream.h) through fanout_batch_send,
 * against a fake host whose aws_call answers from a script and keeps what
 * was sent: the request (service, region, role, target, body), the split
 * into requests, order, partial and whole-call failures, explicit hash keys,
 * long partition keys, oversize records, the destination checks.
 *
 * Outcomes are written as one letter per message: O delivered, R retry,
 * T throttled, F fatal. The answer readers' strictness against malformed
 * answers is in test_replies.c (kinesis_answers, firehose_answers).
 */
#include <check.h>
#include <openssl/evp.h>

#include "check_main.h"
#include "reply_host.h"

#include "firehose.h"
#include "kinesis.h"

/* ---- the scripted host ---- */

struct s_script {
    enum fanout_aws_result result;
    long status;
    const char *body; /* the answer (a 2xx), or NULL */
    const char *code; /* a failed call's error */
    const char *message;
};

#define S_MAX 8

static struct {
    struct s_script script[S_MAX];
    size_t nscript, next;
    unsigned rounds;          /* aws_call calls */
    size_t round_size[S_MAX]; /* requests in each */
    size_t nsent;
    struct fanout_aws_request req[S_MAX]; /* as sent: its strings, not body or headers */
    char *body[S_MAX];                    /* each request's body, copied */
    char target[S_MAX][64];               /* its X-Amz-Target */
    char ctype[S_MAX][64];                /* its Content-Type */
    char log[1 << 16];                    /* every log line */
    size_t log_len;
} S;

static void s_vlog(enum fanout_log_level level, const char *scope, const char *fmt,
                   va_list ap)
{
    (void)level;
    (void)scope;
    if (S.log_len >= sizeof S.log - 2)
        return;
    int n = vsnprintf(S.log + S.log_len, sizeof S.log - S.log_len - 1, fmt, ap);
    S.log_len += n > 0 ? (size_t)n : 0;
    if (S.log_len > sizeof S.log - 2)
        S.log_len = sizeof S.log - 2;
    S.log[S.log_len++] = '\n';
    S.log[S.log_len] = 0;
}

static void s_log(enum fanout_log_level level, const char *scope, const char *fmt, ...)
    FANOUT_PRINTF(3, 4);
static void s_log(enum fanout_log_level level, const char *scope, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vlog(level, scope, fmt, ap);
    va_end(ap);
}

/* Each request is answered by the next line of the script (the last one
 * again when the script runs out), through reply_host's aws_call. */
static int s_call(const struct fanout_aws_request *const *rq,
                  struct fanout_aws_response *const *rs, size_t n)
{
    ck_assert_uint_lt(S.rounds, S_MAX);
    S.round_size[S.rounds++] = n;
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_lt(S.nsent, S_MAX);
        size_t k = S.nsent++;
        S.req[k] = *rq[i];
        S.body[k] = fanout_strndup((const char *)rq[i]->body, rq[i]->body_len);
        for (size_t h = 0; h < rq[i]->header_count; h++)
            if (strcmp(rq[i]->headers[h].name, "X-Amz-Target") == 0)
                snprintf(S.target[k], sizeof S.target[k], "%s", rq[i]->headers[h].value);
            else if (strcmp(rq[i]->headers[h].name, "Content-Type") == 0)
                snprintf(S.ctype[k], sizeof S.ctype[k], "%s", rq[i]->headers[h].value);
        ck_assert_uint_gt(S.nscript, 0);
        const struct s_script *a = &S.script[S.next < S.nscript ? S.next++ : S.nscript - 1];
        const char *body = a->body ? a->body : "";
        reply_host_answer(a->status ? a->status : 200, body, strlen(body));
        const struct fanout_aws_request *one_rq[] = {rq[i]};
        struct fanout_aws_response *one_rs[] = {rs[i]};
        reply_host.aws_call(one_rq, one_rs, 1);
        if (a->result != FANOUT_AWS_OK) {
            rs[i]->result = a->result;
            snprintf(rs[i]->error_code, sizeof rs[i]->error_code, "%s", a->code);
            snprintf(rs[i]->error_message, sizeof rs[i]->error_message, "%s", a->message);
        }
    }
    return 0;
}

static struct fanout_host s_host;

static void s_setup(void)
{
    memset(&S, 0, sizeof S);
    s_host = reply_host;
    s_host.aws_call = s_call;
    s_host.log = s_log;
    s_host.vlog = s_vlog;
}

static void s_teardown(void)
{
    for (size_t k = 0; k < S.nsent; k++)
        free(S.body[k]);
}

static void s_answer(size_t i, const char *body)
{
    S.script[i] = (struct s_script){.result = FANOUT_AWS_OK, .status = 200, .body = body};
    if (S.nscript <= i)
        S.nscript = i + 1;
}

static void s_fail(enum fanout_aws_result result, const char *code, const char *message)
{
    S.script[0] = (struct s_script){result, 500, NULL, code, message};
    S.nscript = 1;
}

/* ---- batches and targets ---- */

/* n messages: message i with key "k<i>" and body {"n":<i>}, one record
 * each, unless set otherwise. */
struct s_batch {
    size_t n;
    char (*keys)[24];
    char (*bodies)[24];
    struct fanout_record *recs;
    const struct fanout_record **rp;
    struct fanout_message *msgs;
    const struct fanout_message **mp;
    struct fanout_outcome *out;
    struct fanout_batch batch;
};

static void s_batch(struct s_batch *b, size_t n)
{
    b->n = n;
    b->keys = calloc(n, sizeof *b->keys);
    b->bodies = calloc(n, sizeof *b->bodies);
    b->recs = calloc(n, sizeof *b->recs);
    b->rp = calloc(n, sizeof *b->rp);
    b->msgs = calloc(n, sizeof *b->msgs);
    b->mp = calloc(n, sizeof *b->mp);
    b->out = calloc(n, sizeof *b->out);
    for (size_t i = 0; i < n; i++) {
        snprintf(b->keys[i], sizeof b->keys[i], "k%zu", i);
        snprintf(b->bodies[i], sizeof b->bodies[i], "{\"n\":%u}", (unsigned)i);
        b->rp[i] = &b->recs[i];
        b->msgs[i] = (struct fanout_message){
            .key = (const uint8_t *)b->keys[i],
            .key_len = strlen(b->keys[i]),
            .body = (const uint8_t *)b->bodies[i],
            .body_len = strlen(b->bodies[i]),
            .record_count = 1,
            .records = &b->rp[i],
        };
        b->mp[i] = &b->msgs[i];
    }
    b->batch = (struct fanout_batch){.struct_size = sizeof b->batch,
                                     .collapse = FANOUT_COLLAPSE_NONE,
                                     .count = n,
                                     .messages = b->mp,
                                     .attempt = 1};
}

static void s_batch_free(struct s_batch *b)
{
    free(b->keys);
    free(b->bodies);
    free(b->recs);
    free(b->rp);
    free(b->msgs);
    free(b->mp);
    free(b->out);
}

static void s_key(struct s_batch *b, size_t i, const void *key, size_t len)
{
    b->msgs[i].key = key;
    b->msgs[i].key_len = len;
}

static void s_body(struct s_batch *b, size_t i, const void *body, size_t len)
{
    b->msgs[i].body = body;
    b->msgs[i].body_len = len;
}

/* An instance of `kind` for `destination` (and `region`, or NULL), made by
 * the SDK's open as the plugin makes it. */
static void *s_open(const struct fanout_stream_kind *kind, const char *destination,
                    const char *region, size_t size)
{
    struct fanout_target t = {.struct_size = sizeof t,
                              .id = "m",
                              .destination = destination,
                              .region = region,
                              .role = "arn:aws:iam::123456789012:role/r",
                              .external_id = "ext",
                              .parallel = 1};
    struct fanout_error err = {0};
    struct fanout_plugin_state state = {.host = &s_host};
    void *inst = fanout_stream_open(kind, &state, &t, size, &err);
    ck_assert_msg(inst != NULL, "%s: %s", err.code, err.message);
    return inst;
}

static struct kinesis_target *s_kinesis(const char *destination, const char *region)
{
    struct kinesis_target *k =
        s_open(&kinesis_kind, destination, region, sizeof(struct kinesis_target));
    k->hash_long_keys = 1;
    k->explicit_hashes = 1;
    return k;
}

static struct firehose_target *s_firehose(const char *destination, const char *region)
{
    return s_open(&firehose_kind, destination, region, sizeof(struct firehose_target));
}

/* The outcomes of messages [0, strlen(want)) against letters. */
static void s_expect(const struct fanout_outcome *out, const char *want)
{
    static const char letters[] = "ORTF";
    for (size_t i = 0; want[i]; i++) {
        int st = out[i].status;
        ck_assert_msg(st >= 0 && st <= 3 && letters[st] == want[i],
                      "message %zu: %c, want %c (%s: %s)", i,
                      st >= 0 && st <= 3 ? letters[st] : '?', want[i], out[i].code,
                      out[i].message);
    }
}

static void s_expect_all(const struct fanout_outcome *out, size_t from, size_t to,
                         int status, const char *code)
{
    for (size_t i = from; i < to; i++) {
        ck_assert_msg(out[i].status == status, "message %zu: status %d, want %d (%s)", i,
                      out[i].status, status, out[i].message);
        if (code)
            ck_assert_str_eq(out[i].code, code);
    }
}

/* Entries in a request body: its "Data" fields. */
static size_t s_entries(const char *body)
{
    size_t n = 0;
    for (const char *p = body; (p = strstr(p, "{\"Data\":")) != NULL; p++)
        n++;
    return n;
}

/* A successful answer of n entries (malloc'ed): `field` and `ok` repeated. */
static char *s_all_ok(const char *count_field, const char *list, const char *entry,
                      size_t n)
{
    struct fanout_sbuf b = {0};
    fanout_sbuf_printf(&b, "{\"%s\":0,\"%s\":[", count_field, list);
    for (size_t i = 0; i < n; i++)
        fanout_sbuf_printf(&b, "%s%s", i ? "," : "", entry);
    fanout_sbuf_puts(&b, "]}");
    return b.p;
}

/* Request k: a JSON 1.1 POST / of `service` with X-Amz-Target `target`,
 * signed for `region` with the role and external id s_open gives. */
static void s_expect_request(size_t k, const char *service, const char *target,
                             const char *region)
{
    ck_assert_str_eq(S.req[k].service, service);
    ck_assert_str_eq(S.target[k], target);
    ck_assert_str_eq(S.req[k].method, "POST");
    ck_assert_str_eq(S.req[k].path, "/");
    ck_assert_int_eq(S.req[k].protocol, FANOUT_AWS_JSON);
    ck_assert_str_eq(S.ctype[k], "application/x-amz-json-1.1");
    ck_assert_str_eq(S.req[k].region, region);
    ck_assert_str_eq(S.req[k].role_arn, "arn:aws:iam::123456789012:role/r");
    ck_assert_str_eq(S.req[k].external_id, "ext");
}

/* 501 messages go as 500 + 1 (the script reset first); `count`, `list` and
 * `entry` make the answers. */
static void s_split_501(void *inst, const char *count, const char *list, const char *entry)
{
    s_teardown();
    s_setup();
    struct s_batch m;
    s_batch(&m, 501);
    char *ok500 = s_all_ok(count, list, entry, 500);
    char *ok1 = s_all_ok(count, list, entry, 1);
    s_answer(0, ok500);
    s_answer(1, ok1);
    fanout_stream_send(inst, &m.batch, m.out);
    s_expect_all(m.out, 0, 501, FANOUT_OK, NULL);
    ck_assert_uint_eq(S.nsent, 2);
    ck_assert_uint_eq(s_entries(S.body[0]), 500);
    ck_assert_uint_eq(s_entries(S.body[1]), 1);
    free(ok500);
    free(ok1);
    s_batch_free(&m);
}

#define SEQ "{\"SequenceNumber\":\"4954346307654800757710509270303956035997522851839501\"}"
#define KTHR                                                                               \
    "{\"ErrorCode\":\"ProvisionedThroughputExceededException\",\"ErrorMessage\":\"Rate "   \
    "exceeded\"}"
#define RID "{\"RecordId\":\"r1\"}"
#define FTHR                                                                               \
    "{\"ErrorCode\":\"ServiceUnavailableException\",\"ErrorMessage\":\"Slow down.\"}"

/* ---- kinesis ---- */

START_TEST(kinesis_request)
{
    struct s_batch b;
    s_batch(&b, 3);
    struct kinesis_target *k = s_kinesis("s", "eu-west-1");
    s_answer(0, "{\"FailedRecordCount\":0,\"Records\":[" SEQ "," SEQ "," SEQ "]}");
    ck_assert_int_eq(fanout_stream_send(k, &b.batch, b.out), 0);
    s_expect(b.out, "OOO");
    ck_assert_uint_eq(S.nsent, 1);
    ck_assert_str_eq(S.body[0], "{\"StreamName\":\"s\",\"Records\":["
                                "{\"Data\":\"eyJuIjowfQ==\",\"PartitionKey\":\"k0\"},"
                                "{\"Data\":\"eyJuIjoxfQ==\",\"PartitionKey\":\"k1\"},"
                                "{\"Data\":\"eyJuIjoyfQ==\",\"PartitionKey\":\"k2\"}]}");
    s_expect_request(0, "kinesis", "Kinesis_20131202.PutRecords", "eu-west-1");
    ck_assert_ptr_nonnull(
        strstr(S.log, "PutRecords to s: 3 messages, 27 bytes (attempt 1)"));
    ck_assert_ptr_nonnull(strstr(S.log, "PutRecords to s: 3 records written"));
    fanout_stream_close(k);
    s_batch_free(&b);
}
END_TEST

/* A stream ARN: the request names it by StreamARN, signed for its region;
 * the log lines name the stream. Keys are JSON-escaped. */
START_TEST(kinesis_request_by_arn)
{
    struct s_batch b;
    s_batch(&b, 1);
    s_key(&b, 0, "a\"b\\\xc3\xa9", 6);
    struct kinesis_target *k =
        s_kinesis("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s2", NULL);
    s_answer(0, "{\"FailedRecordCount\":0,\"Records\":[" SEQ "]}");
    fanout_stream_send(k, &b.batch, b.out);
    s_expect(b.out, "O");
    ck_assert_str_eq(S.body[0],
                     "{\"StreamARN\":\"arn:aws-cn:kinesis:cn-north-1:123456789012:"
                     "stream/s2\",\"Records\":[{\"Data\":\"eyJuIjowfQ==\","
                     "\"PartitionKey\":\"a\\\"b\\\\\xc3\xa9\"}]}");
    ck_assert_str_eq(S.req[0].region, "cn-north-1");
    ck_assert_ptr_nonnull(strstr(S.log, "PutRecords to s2: 1 message, 13 bytes"));
    fanout_stream_close(k);
    s_batch_free(&b);
}
END_TEST

/* KPL explicit hash keys go as ExplicitHashKey with collapse none; one out
 * of range fails for good, alone; without explicit_hashes none is sent. */
START_TEST(kinesis_explicit_hash_keys)
{
    struct s_batch b;
    s_batch(&b, 3);
    b.recs[0].explicit_hash_key = "340282366920938463463374607431768211455";
    b.recs[1].explicit_hash_key = "340282366920938463463374607431768211456";
    b.recs[2].explicit_hash_key = NULL;
    struct kinesis_target *k = s_kinesis("s", NULL);
    s_answer(0, "{\"FailedRecordCount\":0,\"Records\":[" SEQ "," SEQ "]}");
    fanout_stream_send(k, &b.batch, b.out);
    s_expect(b.out, "OFO");
    ck_assert_str_eq(b.out[1].code, "InvalidExplicitHashKey");
    ck_assert_str_eq(
        S.body[0],
        "{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"eyJuIjowfQ==\","
        "\"PartitionKey\":\"k0\",\"ExplicitHashKey\":"
        "\"340282366920938463463374607431768211455\"},{\"Data\":\"eyJuIjoyfQ==\","
        "\"PartitionKey\":\"k2\"}]}");
    /* 012 is not a decimal as Kinesis writes them */
    b.recs[1].explicit_hash_key = "012";
    memset(b.out, 0, 3 * sizeof *b.out);
    fanout_stream_send(k, &b.batch, b.out);
    s_expect(b.out, "OFO");
    /* collapse other than none: the key is not the record's */
    k->explicit_hashes = 0;
    s_answer(0, "{\"FailedRecordCount\":0,\"Records\":[" SEQ "," SEQ "," SEQ "]}");
    memset(b.out, 0, 3 * sizeof *b.out);
    fanout_stream_send(k, &b.batch, b.out);
    s_expect(b.out, "OOO");
    ck_assert_ptr_null(strstr(S.body[2], "ExplicitHashKey"));
    ck_assert_uint_eq(s_entries(S.body[2]), 3);
    fanout_stream_close(k);
    s_batch_free(&b);
}
END_TEST

static void s_sha256_key(const void *key, size_t len, char *out)
{
    unsigned char md[32];
    unsigned int md_len = 0;
    EVP_Digest(key, len, md, &md_len, EVP_sha256(), NULL);
    strcpy(out, "sha256:");
    for (unsigned i = 0; i < 32; i++)
        sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

/* Partition keys of 1..256 UTF-16 units go as they are; longer ones and
 * keys not UTF-8 as "sha256:<hex>" (or fail, hashLongPartitionKeys off);
 * an empty key fails. */
START_TEST(kinesis_long_keys)
{
    static char long_key[300], e256[512 + 1], e257[514 + 1];
    memset(long_key, 'a', sizeof long_key);
    for (size_t i = 0; i < 257; i++)
        memcpy(e257 + 2 * i, "\xc3\xa9", 2);
    memcpy(e256, e257, 512);
    struct s_batch b;
    s_batch(&b, 5);
    s_key(&b, 0, long_key, sizeof long_key);
    s_key(&b, 1, e256, 512);
    s_key(&b, 2, e257, 514);
    s_key(&b, 3, "\xff", 1);
    s_key(&b, 4, "", 0);
    struct kinesis_target *k = s_kinesis("s", NULL);
    s_answer(0, "{\"FailedRecordCount\":0,\"Records\":[" SEQ "," SEQ "," SEQ "," SEQ "]}");
    fanout_stream_send(k, &b.batch, b.out);
    s_expect(b.out, "OOOOF");
    ck_assert_str_eq(b.out[4].code, "InvalidPartitionKey");
    char want[80];
    s_sha256_key(long_key, sizeof long_key, want);
    ck_assert_ptr_nonnull(strstr(S.body[0], want));
    s_sha256_key(e257, 514, want);
    ck_assert_ptr_nonnull(strstr(S.body[0], want));
    s_sha256_key("\xff", 1, want);
    ck_assert_ptr_nonnull(strstr(S.body[0], want));
    ck_assert_ptr_nonnull(strstr(S.body[0], e256)); /* 256 units: as it is */
    /* the hashed keys count 71 bytes: 300 + 512 + 514 + 1 would be more */
    ck_assert_ptr_nonnull(strstr(S.log, "4 messages, 753 bytes"));
    k->hash_long_keys = 0;
    memset(b.out, 0, 5 * sizeof *b.out);
    s_answer(0, "{\"FailedRecordCount\":0,\"Records\":[" SEQ "]}");
    fanout_stream_send(k, &b.batch, b.out);
    s_expect(b.out, "FOFFF");
    ck_assert_ptr_nonnull(strstr(b.out[0].message, "has 300 characters"));
    ck_assert_ptr_nonnull(strstr(b.out[2].message, "has 257 characters"));
    ck_assert_ptr_nonnull(strstr(b.out[3].message, "not valid UTF-8"));
    fanout_stream_close(k);
    s_batch_free(&b);
}
END_TEST

/* FailedRecordCount with mixed entries: each its own outcome and code. */
START_TEST(kinesis_partial_failure)
{
    struct s_batch b;
    s_batch(&b, 5);
    struct kinesis_target *k = s_kinesis("s", NULL);
    s_answer(0, "{\"FailedRecordCount\":4,\"Records\":[" SEQ "," KTHR
                ",{\"ErrorCode\":\"InternalFailure\",\"ErrorMessage\":\"oops\"},"
                "{\"ErrorCode\":\"KMSThrottlingException\"},"
                "{\"ErrorCode\":\"KMSAccessDeniedException\",\"ErrorMessage\":\"no\"}]}");
    fanout_stream_send(k, &b.batch, b.out);
    s_expect(b.out, "OTRTF");
    ck_assert_str_eq(b.out[1].code, "ProvisionedThroughputExceededException");
    ck_assert_str_eq(b.out[1].message, "Rate exceeded");
    ck_assert_str_eq(b.out[2].code, "InternalFailure");
    ck_assert_str_eq(b.out[4].code, "KMSAccessDeniedException");
    ck_assert_str_eq(b.out[4].message, "no");
    ck_assert_ptr_nonnull(
        strstr(S.log, "PutRecords to s: 4 of 5 records failed (2 throttled)"));
    /* the same answer whose count lies: nothing believed */
    s_answer(0, "{\"FailedRecordCount\":2,\"Records\":[" SEQ "," KTHR
                ",{\"ErrorCode\":\"InternalFailure\",\"ErrorMessage\":\"oops\"}," SEQ
                ",{\"ErrorCode\":\"KMSAccessDeniedException\",\"ErrorMessage\":\"no\"}]}");
    memset(b.out, 0, 5 * sizeof *b.out);
    fanout_stream_send(k, &b.batch, b.out);
    s_expect_all(b.out, 0, 5, FANOUT_RETRY, "ProtocolError");
    ck_assert_ptr_nonnull(strstr(b.out[0].message, "\"FailedRecordCount\" 2 but 3 failed"));
    ck_assert_ptr_nonnull(strstr(b.out[0].message, "nothing is known written"));
    fanout_stream_close(k);
    s_batch_free(&b);
}
END_TEST

/* 600 messages: two requests (500 + 100). Unordered, both in one aws_call
 * whatever the first answers; ordered (parallel: false), one at a time, and
 * after a request with a failure the next is not sent (NotSent). */
START_TEST(kinesis_ordered)
{
    struct s_batch b;
    s_batch(&b, 600);
    char *ok500 = s_all_ok("FailedRecordCount", "Records", SEQ, 500);
    char *ok100 = s_all_ok("FailedRecordCount", "Records", SEQ, 100);
    /* entry 7 of the first request throttled */
    char *part500 = s_all_ok("FailedRecordCount", "Records", SEQ, 500);
    char *at = strstr(part500, "\"FailedRecordCount\":0");
    at[strlen("\"FailedRecordCount\":")] = '1';
    struct fanout_sbuf p = {0};
    const char *e = part500;
    for (int i = 0; i < 8; i++)
        e = strstr(e + 1, "{\"Seq");
    fanout_sbuf_put(&p, part500, (size_t)(e - part500));
    fanout_sbuf_puts(&p, KTHR);
    fanout_sbuf_puts(&p, e + strlen(SEQ));
    struct kinesis_target *k = s_kinesis("s", NULL);

    s_answer(0, p.p);
    s_answer(1, ok100);
    fanout_stream_send(k, &b.batch, b.out);
    ck_assert_uint_eq(S.rounds, 1);
    ck_assert_uint_eq(S.round_size[0], 2);
    ck_assert_uint_eq(s_entries(S.body[0]), 500);
    ck_assert_uint_eq(s_entries(S.body[1]), 100);
    s_expect_all(b.out, 7, 8, FANOUT_THROTTLED, NULL);
    s_expect_all(b.out, 8, 600, FANOUT_OK, NULL);

    k->s.ordered = 1;
    s_teardown();
    s_setup();
    memset(b.out, 0, 600 * sizeof *b.out);
    s_answer(0, p.p);
    s_answer(1, ok100);
    fanout_stream_send(k, &b.batch, b.out);
    ck_assert_uint_eq(S.rounds, 1);
    ck_assert_uint_eq(S.round_size[0], 1);
    s_expect_all(b.out, 0, 7, FANOUT_OK, NULL);
    s_expect_all(b.out, 7, 8, FANOUT_THROTTLED, NULL);
    s_expect_all(b.out, 500, 600, FANOUT_RETRY, "NotSent");

    s_teardown();
    s_setup();
    memset(b.out, 0, 600 * sizeof *b.out);
    s_answer(0, ok500);
    s_answer(1, ok100);
    fanout_stream_send(k, &b.batch, b.out);
    ck_assert_uint_eq(S.rounds, 2);
    ck_assert_uint_eq(S.round_size[0], 1);
    ck_assert_uint_eq(S.round_size[1], 1);
    s_expect_all(b.out, 0, 600, FANOUT_OK, NULL);
    ck_assert_ptr_nonnull(strstr(S.body[1], "{\"Data\":\"eyJuIjo1MDB9\",\"PartitionKey\""
                                            ":\"k500\"}"));

    free(ok500);
    free(ok100);
    free(part500);
    fanout_sbuf_free(&p);
    fanout_stream_close(k);
    s_batch_free(&b);
}
END_TEST

/* Ordered: a failed record of a key that a later record wrote is resent
 * out of order; that is logged as a warning naming the key. */
START_TEST(kinesis_reorder_warning)
{
    static const char *const warn =
        "a record of partition key \"same\" failed "
        "(ProvisionedThroughputExceededException) after a later "
        "record of that key was written";
    struct s_batch b;
    s_batch(&b, 3);
    s_key(&b, 0, "same", 4);
    s_key(&b, 1, "same", 4);
    struct kinesis_target *k = s_kinesis("s", NULL);
    k->s.ordered = 1;
    s_answer(0, "{\"FailedRecordCount\":1,\"Records\":[" KTHR "," SEQ "," SEQ "]}");
    fanout_stream_send(k, &b.batch, b.out);
    s_expect(b.out, "TOO");
    ck_assert_ptr_nonnull(strstr(S.log, warn));
    /* not ordered: no promise, no warning */
    k->s.ordered = 0;
    S.log_len = 0;
    S.log[0] = 0;
    memset(b.out, 0, 3 * sizeof *b.out);
    fanout_stream_send(k, &b.batch, b.out);
    s_expect(b.out, "TOO");
    ck_assert_ptr_null(strstr(S.log, "partition key \"same\""));
    /* ordered, the failure last of its key: nothing overtook it */
    k->s.ordered = 1;
    s_answer(0, "{\"FailedRecordCount\":1,\"Records\":[" SEQ "," KTHR "," SEQ "]}");
    memset(b.out, 0, 3 * sizeof *b.out);
    fanout_stream_send(k, &b.batch, b.out);
    s_expect(b.out, "OTO");
    ck_assert_ptr_null(strstr(S.log, "partition key \"same\""));
    fanout_stream_close(k);
    s_batch_free(&b);
}
END_TEST

/* Requests of at most 500 records and 10 MiB (key + data); a record over
 * that alone. */
START_TEST(kinesis_oversize)
{
    size_t big = 4u << 20;
    char *data = malloc(11u << 20);
    memset(data, 'x', 11u << 20);
    struct s_batch b;
    s_batch(&b, 4);
    for (size_t i = 0; i < 3; i++)
        s_body(&b, i, data, big - 2); /* + "k<i>": 4 MiB each */
    struct kinesis_target *k = s_kinesis("s", NULL);
    s_answer(0, "{\"FailedRecordCount\":0,\"Records\":[" SEQ "," SEQ "]}");
    s_answer(1, "{\"FailedRecordCount\":0,\"Records\":[" SEQ "," SEQ "]}");
    fanout_stream_send(k, &b.batch, b.out);
    s_expect(b.out, "OOOO");
    ck_assert_uint_eq(S.nsent, 2);
    ck_assert_uint_eq(s_entries(S.body[0]), 2);
    ck_assert_uint_eq(s_entries(S.body[1]), 2);
    ck_assert_ptr_nonnull(strstr(S.log, "2 messages, 8388608 bytes"));

    s_teardown();
    s_setup();
    s_body(&b, 1, data, 11u << 20);
    memset(b.out, 0, 4 * sizeof *b.out);
    s_answer(0, "{\"FailedRecordCount\":0,\"Records\":[" SEQ "]}");
    fanout_stream_send(k, &b.batch, b.out);
    /* [0], [1] alone, [2 3]; an answer of one entry to the last is doubted */
    s_expect(b.out, "OORR");
    ck_assert_uint_eq(S.nsent, 3);
    ck_assert_uint_eq(s_entries(S.body[1]), 1);
    ck_assert_uint_eq(S.req[1].body_len,
                      strlen("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"\","
                             "\"PartitionKey\":\"k1\"}]}") +
                          ((11u << 20) + 2) / 3 * 4);
    free(data);
    s_split_501(k, "FailedRecordCount", "Records", SEQ);
    fanout_stream_close(k);
    s_batch_free(&b);
}
END_TEST

/* ---- firehose ---- */

START_TEST(firehose_request)
{
    struct s_batch b;
    s_batch(&b, 3);
    struct firehose_target *f = s_firehose("s", "eu-west-1");
    s_answer(0, "{\"FailedPutCount\":0,\"RequestResponses\":[" RID "," RID "," RID "]}");
    fanout_stream_send(f, &b.batch, b.out);
    s_expect(b.out, "OOO");
    ck_assert_str_eq(S.body[0], "{\"DeliveryStreamName\":\"s\",\"Records\":["
                                "{\"Data\":\"eyJuIjowfQ==\"},{\"Data\":\"eyJuIjoxfQ==\"},"
                                "{\"Data\":\"eyJuIjoyfQ==\"}]}");
    s_expect_request(0, "firehose", "Firehose_20150804.PutRecordBatch", "eu-west-1");
    /* the body's entries, counted as sent: 3 x (12 + 12) */
    ck_assert_ptr_nonnull(
        strstr(S.log, "PutRecordBatch to s: 3 messages, 72 bytes (attempt 1)"));
    ck_assert_ptr_nonnull(strstr(S.log, "PutRecordBatch to s: 3 records accepted"));
    fanout_stream_close(f);
    s_batch_free(&b);
}
END_TEST

/* appendNewline: the newline inside each record's base64; an ARN gives the
 * name (the API takes no ARN) and the region. */
START_TEST(firehose_newline_and_arn)
{
    struct s_batch b;
    s_batch(&b, 4);
    s_body(&b, 0, "", 0);
    s_body(&b, 1, "a", 1);
    s_body(&b, 2, "ab", 2);
    s_body(&b, 3, "abc", 3);
    struct firehose_target *f =
        s_firehose("arn:aws:firehose:ap-south-1:123456789012:deliverystream/s2", NULL);
    f->append_newline = 1;
    s_answer(0, "{\"FailedPutCount\":0,\"RequestResponses\":[" RID "," RID "," RID "," RID
                "]}");
    fanout_stream_send(f, &b.batch, b.out);
    s_expect(b.out, "OOOO");
    ck_assert_str_eq(S.body[0],
                     "{\"DeliveryStreamName\":\"s2\",\"Records\":["
                     "{\"Data\":\"Cg==\"},{\"Data\":\"YQo=\"},{\"Data\":\"YWIK\"},"
                     "{\"Data\":\"YWJjCg==\"}]}");
    ck_assert_str_eq(S.req[0].region, "ap-south-1");
    f->append_newline = 0;
    memset(b.out, 0, 4 * sizeof *b.out);
    fanout_stream_send(f, &b.batch, b.out);
    ck_assert_str_eq(S.body[1], "{\"DeliveryStreamName\":\"s2\",\"Records\":["
                                "{\"Data\":\"\"},{\"Data\":\"YQ==\"},{\"Data\":\"YWI=\"},"
                                "{\"Data\":\"YWJj\"}]}");
    fanout_stream_close(f);
    s_batch_free(&b);
}
END_TEST

START_TEST(firehose_partial_failure)
{
    struct s_batch b;
    s_batch(&b, 6);
    struct firehose_target *f = s_firehose("s", NULL);
    s_answer(
        0, "{\"FailedPutCount\":5,\"RequestResponses\":[" FTHR "," RID
           ",{\"ErrorCode\":\"InternalFailure\",\"ErrorMessage\":\"oops\"},"
           "{\"ErrorCode\":\"SomethingPermanent\"},{\"ErrorCode\":\"ThrottlingException\"},"
           "{\"ErrorCode\":\"ServiceUnavailable\"}]}");
    fanout_stream_send(f, &b.batch, b.out);
    s_expect(b.out, "TORFTR");
    ck_assert_str_eq(b.out[0].code, "ServiceUnavailableException");
    ck_assert_str_eq(b.out[0].message, "Slow down.");
    ck_assert_str_eq(b.out[3].message, "(no message)");
    ck_assert_ptr_nonnull(strstr(S.log, "5 of 6 records failed (2 throttled)"));
    /* a count that lies */
    s_answer(0, "{\"FailedPutCount\":0,\"RequestResponses\":[" FTHR "," RID "," RID "," RID
                "," RID "," RID "]}");
    memset(b.out, 0, 6 * sizeof *b.out);
    fanout_stream_send(f, &b.batch, b.out);
    s_expect_all(b.out, 0, 6, FANOUT_RETRY, "ProtocolError");
    ck_assert_ptr_nonnull(strstr(b.out[0].message, "\"FailedPutCount\" 0 but 1"));
    ck_assert_ptr_nonnull(strstr(b.out[0].message, "nothing is known accepted"));
    fanout_stream_close(f);
    s_batch_free(&b);
}
END_TEST

/* A call the AWS layer gave up on: every message gets the status and the
 * service's code, the message "<operation>: <the service's message>".
 * Firehose's "slow down" comes as a 5xx the AWS layer calls retryable: it is
 * throttling all the same (not for Kinesis). */
START_TEST(whole_calls)
{
    static const struct {
        const struct fanout_stream_kind *kind;
        enum fanout_aws_result result;
        const char *code;
        int status;
    } cases[] = {
        {&kinesis_kind, FANOUT_AWS_THROTTLED, "ProvisionedThroughputExceededException",
         FANOUT_THROTTLED},
        {&kinesis_kind, FANOUT_AWS_RETRYABLE, "InternalFailure", FANOUT_RETRY},
        {&kinesis_kind, FANOUT_AWS_RETRYABLE, "ServiceUnavailableException", FANOUT_RETRY},
        {&kinesis_kind, FANOUT_AWS_FAILED, "ResourceNotFoundException", FANOUT_FATAL},
        {&firehose_kind, FANOUT_AWS_RETRYABLE, "ServiceUnavailableException",
         FANOUT_THROTTLED},
        {&firehose_kind, FANOUT_AWS_RETRYABLE, "InternalFailure", FANOUT_RETRY},
        {&firehose_kind, FANOUT_AWS_THROTTLED, "ThrottlingException", FANOUT_THROTTLED},
        {&firehose_kind, FANOUT_AWS_FAILED, "ResourceNotFoundException", FANOUT_FATAL},
    };
    struct s_batch b;
    s_batch(&b, 3);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        void *inst = s_open(cases[c].kind, "s", NULL,
                            sizeof(struct kinesis_target) + sizeof(struct firehose_target));
        char want[64];
        snprintf(want, sizeof want, "%s: it went wrong", cases[c].kind->request.operation);
        s_fail(cases[c].result, cases[c].code, "it went wrong");
        memset(b.out, 0, 3 * sizeof *b.out);
        fanout_stream_send(inst, &b.batch, b.out);
        s_expect_all(b.out, 0, 3, cases[c].status, cases[c].code);
        ck_assert_str_eq(b.out[2].message, want);
        fanout_stream_close(inst);
    }
    s_batch_free(&b);
}
END_TEST

/* Requests within 500 records and 4 MiB of body, base64 included: four
 * records of 1,000,000 bytes go as 3 + 1; 501 small ones as 500 + 1. */
START_TEST(firehose_oversize)
{
    char *data = malloc(1000000);
    memset(data, 'x', 1000000);
    struct s_batch b;
    s_batch(&b, 4);
    for (size_t i = 0; i < 4; i++)
        s_body(&b, i, data, 1000000);
    struct firehose_target *f = s_firehose("s", NULL);
    s_answer(0, "{\"FailedPutCount\":0,\"RequestResponses\":[" RID "," RID "," RID "]}");
    s_answer(1, "{\"FailedPutCount\":0,\"RequestResponses\":[" RID "]}");
    fanout_stream_send(f, &b.batch, b.out);
    s_expect(b.out, "OOOO");
    ck_assert_uint_eq(S.nsent, 2);
    ck_assert_uint_eq(s_entries(S.body[0]), 3);
    ck_assert_uint_eq(s_entries(S.body[1]), 1);
    ck_assert_uint_le(S.req[0].body_len, 4u << 20);
    ck_assert_uint_gt(S.req[0].body_len, 3u << 20);
    ck_assert_ptr_null(strstr(S.log, "over the"));
    free(data);
    s_split_501(f, "FailedPutCount", "RequestResponses", RID);
    fanout_stream_close(f);
    s_batch_free(&b);
}
END_TEST

/* ---- destinations (fanout_stream_check, fanout_stream_init) ---- */

START_TEST(destinations)
{
    static const struct {
        const struct fanout_stream_kind *kind;
        const char *destination, *region;
        const char *want; /* part of the error, or NULL: accepted */
    } cases[] = {
        {&kinesis_kind, "my_stream.1-2", NULL, NULL},
        {&kinesis_kind, "arn:aws:kinesis:us-east-1:123456789012:stream/s", "us-east-1",
         NULL},
        {&kinesis_kind, "", NULL,
         "expected a Kinesis stream name or stream ARN, got nothing"},
        {&kinesis_kind, "bad name!", NULL,
         "is not a Kinesis stream name ([a-zA-Z0-9_.-], 1 to 128"},
        {&kinesis_kind, "https://kinesis/s", NULL, "(a URL is not a stream)"},
        {&kinesis_kind, "arn:aws:sqs:us-east-1:123456789012:q", NULL,
         "is an ARN of service \"sqs\", not a Kinesis stream ARN"},
        {&kinesis_kind, "arn:aws:kinesis:us-east-1:12345:stream/s", NULL,
         "is not a Kinesis stream ARN: expected"},
        {&kinesis_kind, "arn:aws:kinesis:us-east-1:123456789012:table/s", NULL,
         "is not a Kinesis stream ARN"},
        {&kinesis_kind, "arn:aws:kinesis:us-east-1:123456789012:stream/", NULL,
         "is not a Kinesis stream ARN"},
        {&kinesis_kind, "arn:aws:kinesis:useast1:123456789012:stream/s", NULL,
         "is not a Kinesis stream ARN"},
        {&kinesis_kind, "arn:aws:kinesis:eu-west-1:123456789012:stream/s", "us-east-1",
         "the stream ARN is in region eu-west-1 but the mapping's \"region\" is us-east-1"},
        {&firehose_kind, "arn:aws:firehose:us-east-1:123456789012:deliverystream/s", NULL,
         NULL},
        {&firehose_kind, "arn:aws:firehose:us-east-1:123456789012:stream/s", NULL,
         "is not a Firehose stream ARN"},
        {&firehose_kind, "arn:aws:kinesis:us-east-1:123456789012:stream/s", NULL,
         "not a Firehose stream ARN (arn:<partition>:firehose:<region>:<account>:"
         "deliverystream/<name>)"},
        {&firehose_kind, "bad name!", NULL,
         "nor a Firehose stream ARN (arn:<partition>:firehose:"},
        {&firehose_kind, "arn:aws:firehose:eu-west-1:123456789012:deliverystream/s",
         "us-east-1", "the Firehose stream ARN is in region eu-west-1"},
    };
    char name129[130], name65[66];
    memset(name129, 'x', 129);
    name129[129] = 0;
    memcpy(name65, name129, 65);
    name65[65] = 0;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        struct fanout_target t = {.struct_size = sizeof t,
                                  .destination = cases[c].destination,
                                  .region = cases[c].region};
        char err[512] = "";
        int rc = fanout_stream_check(cases[c].kind, &t, err, sizeof err);
        if (!cases[c].want)
            ck_assert_msg(rc == 0, "case %zu: %s", c, err);
        else
            ck_assert_msg(rc == -1 && strstr(err, cases[c].want), "case %zu: %d %s", c, rc,
                          err);
    }
    struct fanout_target t = {.struct_size = sizeof t, .destination = name129};
    char err[512];
    ck_assert_int_eq(fanout_stream_check(&kinesis_kind, &t, err, sizeof err), -1);
    t.destination = name129 + 1;
    ck_assert_int_eq(fanout_stream_check(&kinesis_kind, &t, err, sizeof err), 0);
    t.destination = name65;
    ck_assert_int_eq(fanout_stream_check(&firehose_kind, &t, err, sizeof err), -1);
    t.destination = name65 + 1;
    ck_assert_int_eq(fanout_stream_check(&firehose_kind, &t, err, sizeof err), 0);

    /* open: the ARN's region unless the mapping gives one; an error code */
    struct fanout_error e = {0};
    t = (struct fanout_target){.struct_size = sizeof t, .destination = "bad name!"};
    ck_assert_ptr_null(fanout_stream_open(&kinesis_kind, &s_host, &t, 0, &e));
    ck_assert_str_eq(e.code, "InvalidDestination");
    t.destination = "arn:aws:kinesis:us-east-1:123456789012:stream/s";
    struct fanout_stream *s = fanout_stream_open(&kinesis_kind, &s_host, &t, 0, &e);
    ck_assert_str_eq(s->region, "us-east-1");
    ck_assert_str_eq(s->name, "s");
    ck_assert_str_eq(s->arn, t.destination);
    ck_assert_str_eq(s->id, "kinesis");
    ck_assert_ptr_null(s->role);
    fanout_stream_close(s);
    t.destination = "s";
    s = fanout_stream_open(&firehose_kind, &s_host, &t, 0, &e);
    ck_assert_ptr_null(s->region);
    ck_assert_ptr_null(s->arn);
    fanout_stream_close(s);
}
END_TEST

START_TEST(init_needs_aws_services)
{
    struct fanout_host old = reply_host;
    old.abi_minor = 0;
    old.struct_size = offsetof(struct fanout_host, aws_call);
    void *state = &old;
    struct fanout_error err = {0};
    ck_assert_int_eq(fanout_stream_init(&firehose_kind, &old, &state, &err), -1);
    ck_assert_ptr_null(state);
    ck_assert_str_eq(err.code, "EngineTooOld");
    ck_assert_ptr_nonnull(strstr(err.message, "the firehose plugin needs the engine's AWS "
                                              "services"));
    ck_assert_int_eq(fanout_stream_init(&kinesis_kind, &reply_host, &state, &err), 0);
    ck_assert_ptr_eq(((struct fanout_plugin_state *)state)->host, &reply_host);
    fanout_plugin_state_free(state);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("streams");
    TCase *tc = tcase_create("kinesis and firehose");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, kinesis_request);
    tcase_add_test(tc, kinesis_request_by_arn);
    tcase_add_test(tc, kinesis_explicit_hash_keys);
    tcase_add_test(tc, kinesis_long_keys);
    tcase_add_test(tc, kinesis_partial_failure);
    tcase_add_test(tc, kinesis_ordered);
    tcase_add_test(tc, kinesis_reorder_warning);
    tcase_add_test(tc, kinesis_oversize);
    tcase_add_test(tc, firehose_request);
    tcase_add_test(tc, firehose_newline_and_arn);
    tcase_add_test(tc, firehose_partial_failure);
    tcase_add_test(tc, whole_calls);
    tcase_add_test(tc, firehose_oversize);
    tcase_add_test(tc, destinations);
    tcase_add_test(tc, init_needs_aws_services);
    suite_add_tcase(s, tc);
    return fanout_check_run(s);
}
