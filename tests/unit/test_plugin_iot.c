/*
 * The iot plugin (iot.c) through its descriptor, against a fake host whose
 * aws_call answers from a script (tests/fuzz/reply_host.h): the Publish
 * request of each message (endpoint, topic in the path, qos and retain,
 * region, role), each message's own answer, and destinations.
 */
#include <check.h>

#include "check_main.h"
#include "plugin_harness.h"

/* iot.c's options block, as the plugin declares it */
struct s_iot_options {
    int64_t qos;
    int retain;
};

static void s_open(const char *dest, const char *region, int64_t qos, int retain,
                   const struct reply_answer *script, size_t n)
{
    static struct s_iot_options o;
    o = (struct s_iot_options){qos, retain};
    harness_open((struct fanout_target){.id = "m1",
                                        .destination = dest,
                                        .region = region,
                                        .role = "arn:aws:iam::123456789012:role/r",
                                        .external_id = "ext-2",
                                        .parallel = 1,
                                        .options = &o},
                 script, n);
}

START_TEST(publish_requests)
{
    static const struct reply_answer ok[] = {{.status = 200}};
    s_open("a1b2c3-ats.iot.us-east-1.amazonaws.com#sensors/room 1/\xc3\xa9~x", NULL, 1, 1,
           ok, 1);
    struct reply_batch b;
    reply_batch_init(&b, 3);
    harness_send(&b, 3, "OOO");
    ck_assert_uint_eq(s_reply.seen_count, 3); /* one Publish per message */
    for (size_t i = 0; i < 3; i++) {
        const struct reply_seen *w = &s_reply.seen[i];
        ck_assert_str_eq(w->service, "iot_data_plane");
        ck_assert_str_eq(w->signing_name, "iotdata");
        ck_assert_str_eq(w->method, "POST");
        ck_assert_str_eq(w->endpoint, "https://a1b2c3-ats.iot.us-east-1.amazonaws.com");
        ck_assert_str_eq(w->region, "us-east-1");
        ck_assert_str_eq(w->role, "arn:aws:iam::123456789012:role/r");
        ck_assert_str_eq(w->external_id, "ext-2");
        ck_assert_str_eq(w->path, "/topics/sensors%2Froom%201%2F%C3%A9~x");
        ck_assert_str_eq(w->query, "qos=1&retain=true");
        ck_assert_str_eq(w->headers[0][1], "application/octet-stream");
        ck_assert_str_eq(w->body, (const char *)b.bodies[i]); /* in order */
    }
    harness_close();
}
END_TEST

START_TEST(url_endpoint_and_region)
{
    static const struct reply_answer ok[] = {{.status = 200}};
    s_open("http://127.0.0.1:8443#t", "eu-west-1", 0, 0, ok, 1);
    struct reply_batch b;
    reply_batch_init(&b, 1);
    plugin->send(harness_inst, &b.batch, b.out);
    ck_assert_int_eq(b.out[0].status, FANOUT_OK);
    ck_assert_str_eq(s_reply.seen[0].endpoint, "http://127.0.0.1:8443");
    ck_assert_str_eq(s_reply.seen[0].region, "eu-west-1");
    ck_assert_str_eq(s_reply.seen[0].query, "qos=0");
    ck_assert_str_eq(s_reply.seen[0].path, "/topics/t");
    harness_close();
}
END_TEST

/* Each message takes its own Publish's answer. */
START_TEST(publish_answers)
{
    static const struct reply_answer ans[] = {
        {.status = 200},
        {429, FANOUT_AWS_THROTTLED, "ThrottlingException", "Rate exceeded", NULL, NULL,
         NULL},
        {.status = 204},
        {403, FANOUT_AWS_FAILED, "ForbiddenException", "not allowed", NULL, NULL, NULL},
        {503, FANOUT_AWS_RETRYABLE, "ServiceUnavailableException", "", NULL, NULL, NULL},
        {413, FANOUT_AWS_FAILED, "", "", NULL, NULL, NULL},
        {.status = 200},
    };
    static const char *const codes[] = {"",
                                        "ThrottlingException",
                                        "UnexpectedResponse",
                                        "ForbiddenException",
                                        "ServiceUnavailableException",
                                        "PublishFailed",
                                        ""};
    s_open("a1b2c3-ats.iot.us-east-1.amazonaws.com#t", NULL, 0, 0, ans, 7);
    struct reply_batch b;
    reply_batch_init(&b, 7);
    harness_send(&b, 7, "OTRFRFO");
    for (size_t i = 0; i < 7; i++)
        ck_assert_msg(strcmp(b.out[i].code, codes[i]) == 0, "message %zu: code %s", i,
                      b.out[i].code);
    ck_assert_ptr_nonnull(strstr(b.out[3].message, "not allowed"));
    ck_assert_ptr_nonnull(strstr(b.out[2].message, "HTTP 204"));
    ck_assert_ptr_nonnull(strstr(b.out[5].message, "no detail"));
    harness_close();
}
END_TEST

START_TEST(ordered_is_one_per_call)
{
    struct fanout_limits lim = plugin->limits;
    struct fanout_target t = {.struct_size = sizeof t, .destination = "h#t", .parallel = 1};
    char err[64];
    ck_assert_int_eq(plugin->target_limits(NULL, &t, &lim, err, sizeof err), 0);
    ck_assert_uint_eq(lim.max_messages_per_call, 16);
    t.parallel = 0;
    ck_assert_int_eq(plugin->target_limits(NULL, &t, &lim, err, sizeof err), 0);
    ck_assert_uint_eq(lim.max_messages_per_call, 1);
}
END_TEST

START_TEST(destinations)
{
    static const struct harness_dest cases[] = {
        {"a1-ats.iot.us-east-1.amazonaws.com#a/b", NULL, NULL},
        {"a1-ats.iot.us-east-1.amazonaws.com#a/b", "us-east-1", NULL},
        {"https://127.0.0.1:8443/#a", NULL, NULL},
        {"$aws/rules/r/a/b/c/d/e/f/g/h", NULL, "no '#'"},
        {"h#$aws/rules/r/1/2/3/4/5/6/7/8", NULL, NULL},
        {"h#1/2/3/4/5/6/7/8/9", NULL, "more than AWS IoT's 7"},
        {"a1-ats.iot.us-east-1.amazonaws.com#a", "eu-west-1", "region us-east-1"},
        {"h#a/+/b", NULL, "wildcard '+'"},
        {"h#a/#", NULL, "wildcard '#'"},
        {"h#", NULL, "is empty"},
        {"#t", NULL, "is empty"},
        {"ftp://h#t", NULL, "not http"},
        {"http://h:0#t", NULL, "no valid port"},
        {"h/path#t", NULL, "not a host name"},
    };
    harness_destinations(cases, sizeof cases / sizeof *cases);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plugin_iot");
    TCase *tc = tcase_create("publish");
    tcase_add_test(tc, publish_requests);
    tcase_add_test(tc, url_endpoint_and_region);
    tcase_add_test(tc, publish_answers);
    tcase_add_test(tc, ordered_is_one_per_call);
    tcase_add_test(tc, destinations);
    suite_add_tcase(s, tc);
    return fanout_check_run(s);
}
