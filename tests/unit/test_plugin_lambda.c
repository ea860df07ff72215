/*
 * The lambda plugin (lambda.c, lambda_api.c) through its descriptor, against
 * a fake host whose aws_call answers from a script (tests/fuzz/reply_host.h):
 * the Invoke requests it makes (function, qualifier, region, role, the
 * event), how it reads each answer (202 and only 202 without a function
 * error is delivered; throttles, the error codes' own classes, Retry-After),
 * and how the outcomes of the events reach each message (events split by
 * size, an ordered target stopping after a failure, a record too large).
 */
#include <check.h>

#include "check_main.h"
#include "plugin_harness.h"

#include "lambda.h"

/* Open `dest` with the options, answering from `script`. */
static void s_open(const char *dest, const char *payload, int64_t max_payload, int parallel,
                   const struct reply_answer *script, size_t n)
{
    static struct lambda_options o;
    o = (struct lambda_options){payload, max_payload};
    harness_open((struct fanout_target){.id = "m1",
                                        .destination = dest,
                                        .role = "arn:aws:iam::123456789012:role/r",
                                        .external_id = "ext-1",
                                        .parallel = parallel,
                                        .options = &o},
                 script, n);
}

START_TEST(invoke_request)
{
    static const struct reply_answer ok[] = {{.status = 202}};
    s_open("arn:aws:lambda:eu-west-1:123456789012:function:my-fn:live", "records", 0, 1, ok,
           1);
    struct reply_batch b;
    reply_batch_init(&b, 3);
    harness_send(&b, 3, "OOO");
    ck_assert_uint_eq(s_reply.seen_count, 1); /* the three records in one event */
    const struct reply_seen *w = &s_reply.seen[0];
    ck_assert_str_eq(w->service, "lambda");
    ck_assert_str_eq(w->method, "POST");
    ck_assert_str_eq(w->region, "eu-west-1");
    ck_assert_str_eq(w->endpoint, "");
    ck_assert_str_eq(w->role, "arn:aws:iam::123456789012:role/r");
    ck_assert_str_eq(w->external_id, "ext-1");
    ck_assert_str_eq(w->path,
                     "/2015-03-31/functions/"
                     "arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Amy-"
                     "fn/invocations");
    ck_assert_str_eq(w->query, "Qualifier=live");
    ck_assert_str_eq(harness_header(w, "X-Amz-Invocation-Type"), "Event");
    ck_assert_str_eq(harness_header(w, "Content-Type"), "application/json");
    /* the event: the decoded records, in order */
    ck_assert_msg(strncmp(w->body, "{\"Records\":[{", 13) == 0, "%s", w->body);
    const char *a = strstr(w->body, "\"data\":\"{\\\"n\\\":0}\"");
    const char *c = strstr(w->body, "\"data\":\"{\\\"n\\\":2}\"");
    ck_assert_msg(a && c && a < c, "%s", w->body);
    ck_assert_str_eq(w->body + w->body_len - 2, "]}");
    harness_close();
}
END_TEST

START_TEST(source_records_once)
{
    /* the user records of one KPL aggregate share their source record:
     * the event carries it once */
    static const struct reply_answer ok[] = {{.status = 202}};
    s_open("my-fn", "source", 0, 1, ok, 1);
    struct reply_batch b;
    reply_batch_init(&b, 3);
    static const char agg[] = "{\"kinesis\":{\"data\":\"agg\"}}", one[] = "{\"b\":2}";
    const char *src[] = {agg, agg, one};
    for (size_t i = 0; i < 3; i++) {
        b.recs[i].source_json = src[i];
        b.recs[i].source_json_len = strlen(src[i]);
    }
    harness_send(&b, 3, "OOO");
    ck_assert_uint_eq(s_reply.seen_count, 1);
    ck_assert_str_eq(s_reply.seen[0].body,
                     "{\"Records\":[{\"kinesis\":{\"data\":\"agg\"}},{\"b\":2}]}");
    ck_assert_str_eq(s_reply.seen[0].path, "/2015-03-31/functions/my-fn/invocations");
    ck_assert_str_eq(s_reply.seen[0].query, "");
    harness_close();
}
END_TEST

START_TEST(no_source_record)
{
    static const struct reply_answer ok[] = {{.status = 202}};
    s_open("my-fn", "source", 0, 1, ok, 1);
    struct reply_batch b;
    reply_batch_init(&b, 2);
    plugin->send(harness_inst, &b.batch, b.out);
    for (size_t i = 0; i < 2; i++) {
        ck_assert_int_eq(b.out[i].status, FANOUT_FATAL);
        ck_assert_str_eq(b.out[i].code, "NoSourceRecord");
    }
    ck_assert_uint_eq(s_reply.seen_count, 0);
    harness_close();
}
END_TEST

/* One answer for an event of three messages: every message gets its
 * outcome. */
START_TEST(invoke_answers)
{
    static const struct {
        struct reply_answer a;
        char want;
        const char *code;
        uint32_t retry_after_ms;
        const char *says; /* a part of the message */
    } cases[] = {
        {{.status = 202}, 'O', "", 0, NULL},
        /* 200 answers a RequestResponse invocation, not ours */
        {{.status = 200}, 'R', "UnexpectedResponse", 0, "HTTP 200"},
        {{.status = 200,
          .header_name = "X-Amz-Function-Error",
          .header_value = "Unhandled"},
         'R',
         "UnexpectedResponse",
         0,
         "X-Amz-Function-Error \"Unhandled\""},
        {{.status = 202, .header_name = "X-Amz-Function-Error", .header_value = "Handled"},
         'R',
         "UnexpectedResponse",
         0,
         "\"Handled\""},
        {{.status = 204}, 'R', "UnexpectedResponse", 0, "202 Accepted"},
        /* throttles: the Reason named, Retry-After kept (capped at 5 s) */
        {{429, FANOUT_AWS_THROTTLED, "TooManyRequestsException", "Rate exceeded",
          "Retry-After", "2",
          "{\"Reason\":\"ConcurrentInvocationLimitExceeded\",\"Type\":\"User\"}"},
         'T',
         "TooManyRequestsException",
         2000,
         "(Reason: ConcurrentInvocationLimitExceeded)"},
        {{429, FANOUT_AWS_THROTTLED, "TooManyRequestsException", "Rate exceeded",
          "Retry-After", "60", NULL},
         'T',
         "TooManyRequestsException",
         5000,
         "Rate exceeded"},
        /* seconds whose milliseconds overflow 64 bits (to 384): the cap */
        {{429, FANOUT_AWS_THROTTLED, "TooManyRequestsException", "Rate exceeded",
          "Retry-After", "18446744073709552", NULL},
         'T',
         "TooManyRequestsException",
         5000,
         "Rate exceeded"},
        {{502, FANOUT_AWS_THROTTLED, "EC2ThrottledException", "x", "Retry-After", "soon",
          NULL},
         'T',
         "EC2ThrottledException",
         0,
         NULL},
        /* the code's class wins over the HTTP layer's */
        {{502, FANOUT_AWS_RETRYABLE, "KMSAccessDeniedException", "key", NULL, NULL, NULL},
         'F',
         "KMSAccessDeniedException",
         0,
         "key"},
        {{409, FANOUT_AWS_FAILED, "ResourceConflictException", "updating", NULL, NULL,
          NULL},
         'R',
         "ResourceConflictException",
         0,
         "updating"},
        {{500, FANOUT_AWS_RETRYABLE, "ServiceException", "", NULL, NULL, NULL},
         'R',
         "ServiceException",
         0,
         "no detail"},
        {{404, FANOUT_AWS_FAILED, "ResourceNotFoundException", "Function not found", NULL,
          NULL, NULL},
         'F',
         "ResourceNotFoundException",
         0,
         "Function not found"},
        {{413, FANOUT_AWS_FAILED, "RequestEntityTooLargeException", "", NULL, NULL, NULL},
         'F',
         "RequestEntityTooLargeException",
         0,
         NULL},
        /* unknown codes: the AWS layer's class */
        {{400, FANOUT_AWS_FAILED, "SomethingNew", "", NULL, NULL, NULL},
         'F',
         "SomethingNew",
         0,
         NULL},
        {{503, FANOUT_AWS_RETRYABLE, "", "", NULL, NULL, NULL},
         'R',
         "InvokeFailed",
         0,
         NULL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        s_open("my-fn", "records", 0, 1, &cases[k].a, 1);
        struct reply_batch b;
        reply_batch_init(&b, 3);
        plugin->send(harness_inst, &b.batch, b.out);
        for (size_t i = 0; i < 3; i++) {
            const struct fanout_outcome *o = &b.out[i];
            ck_assert_msg("ORTF"[o->status] == cases[k].want,
                          "case %zu, message %zu: got %c, want %c (%s)", k, i,
                          "ORTF"[o->status], cases[k].want, o->message);
            ck_assert_msg(strcmp(o->code, cases[k].code) == 0, "case %zu: code %s", k,
                          o->code);
            ck_assert_msg(o->retry_after_ms == cases[k].retry_after_ms,
                          "case %zu: retry after %u", k, o->retry_after_ms);
            if (cases[k].says)
                ck_assert_msg(strstr(o->message, cases[k].says), "case %zu: \"%s\"", k,
                              o->message);
        }
        ck_assert_uint_eq(s_reply.seen_count, 1);
        harness_close();
    }
}
END_TEST

/* Three messages of ~700-byte records: one event each under a 1024-byte
 * limit, so each message takes its own event's outcome. */
static void s_big_batch(struct reply_batch *b, size_t n, char data[][700])
{
    reply_batch_init(b, n);
    for (size_t i = 0; i < n; i++) {
        memset(data[i], 'a' + (int)i, 699);
        data[i][699] = 0;
        b->recs[i].data = (const uint8_t *)data[i];
        b->recs[i].data_len = 699;
        b->msgs[i].body = b->recs[i].data;
        b->msgs[i].body_len = 699;
    }
}

START_TEST(events_parallel_and_ordered)
{
    static const struct reply_answer ans[] = {
        {.status = 202},
        {429, FANOUT_AWS_THROTTLED, "TooManyRequestsException", "slow down", NULL, NULL,
         NULL},
        {.status = 202},
    };
    static const struct reply_answer fatal[] = {
        {.status = 202},
        {404, FANOUT_AWS_FAILED, "ResourceNotFoundException", "gone", NULL, NULL, NULL},
        {.status = 202},
    };
    static const struct {
        const struct reply_answer *script;
        int parallel;
        const char *want;
        size_t requests;
        const char *last_code;
    } cases[] = {
        {ans, 1, "OTO", 3, ""},
        /* ordered: nothing after the failed event */
        {ans, 0, "OTR", 2, "NotSent"},
        {fatal, 0, "OFF", 2, "NotSent"},
        {fatal, 1, "OFO", 3, ""},
    };
    static char data[3][700];
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        s_open("my-fn", "records", 1024, cases[k].parallel, cases[k].script, 3);
        struct reply_batch b;
        s_big_batch(&b, 3, data);
        harness_send(&b, 3, cases[k].want);
        ck_assert_uint_eq(s_reply.seen_count, cases[k].requests);
        ck_assert_str_eq(b.out[2].code, cases[k].last_code);
        /* each event carries its own record */
        for (size_t i = 0; i < s_reply.seen_count; i++)
            ck_assert_ptr_nonnull(strstr(s_reply.seen[i].body, data[i]));
        harness_close();
    }
}
END_TEST

START_TEST(event_too_large)
{
    static const struct reply_answer ok[] = {{.status = 202}};
    static char data[3][700];
    s_open("my-fn", "records", 1024, 1, ok, 1);
    struct reply_batch b;
    s_big_batch(&b, 3, data);
    static char big[1200];
    memset(big, 'z', sizeof big - 1);
    b.recs[1].data = (const uint8_t *)big;
    b.recs[1].data_len = sizeof big - 1;
    harness_send(&b, 3, "OFO");
    ck_assert_str_eq(b.out[1].code, "EventTooLarge");
    ck_assert_ptr_nonnull(strstr(b.out[1].message, "limit of 1024 bytes"));
    ck_assert_uint_eq(s_reply.seen_count, 2);
    harness_close();
}
END_TEST

START_TEST(destinations)
{
    static const struct harness_dest cases[] = {
        {"my-fn", NULL, NULL},
        {"my-fn:$LATEST", NULL, NULL},
        {"123456789012:function:my-fn:7", NULL, NULL},
        {"arn:aws:lambda:us-east-1:123456789012:function:f", "us-east-1", NULL},
        {"arn:aws:lambda:us-east-1:123456789012:function:f", "eu-west-1",
         "in region us-east-1"},
        {"arn:aws:sqs:us-east-1:123456789012:function:f", NULL, "of service \"sqs\""},
        {"my fn", NULL, "contains a space"},
        {"", NULL, "is empty"},
        {"a:b:c:d:e", NULL, "neither a name nor a partial ARN"},
        {"my-fn:al!as", NULL, "not an alias or a version"},
    };
    harness_destinations(cases, sizeof cases / sizeof *cases);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plugin_lambda");
    TCase *tc = tcase_create("invoke");
    tcase_add_test(tc, invoke_request);
    tcase_add_test(tc, source_records_once);
    tcase_add_test(tc, no_source_record);
    tcase_add_test(tc, invoke_answers);
    tcase_add_test(tc, events_parallel_and_ordered);
    tcase_add_test(tc, event_too_large);
    tcase_add_test(tc, destinations);
    suite_add_tcase(s, tc);
    return fanout_check_run(s);
}
