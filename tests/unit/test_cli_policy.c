/* The function's inline policy "fanout": mapping JSON in, policy document
 * out, and the warnings for destinations that are not ARNs. */
#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_policy.h"

#define TABLE "arn:aws:dynamodb:us-east-1:123456789012:table/fanoutTargets"

static char *s_warned;
static size_t s_warned_len;

/* The policy for `mappings` (JSON text) and `sources` (JSON text, NULL: []);
 * the warnings in s_warned. */
static json_t *s_build(const char *mappings, const char *sources)
{
    json_error_t je;
    json_t *m = json_loads(mappings, 0, &je);
    ck_assert_msg(m != NULL, "mappings: %s", je.text);
    json_t *s = json_loads(sources ? sources : "[]", 0, &je);
    ck_assert_msg(s != NULL, "sources: %s", je.text);
    const struct cli_policy_in in = {"aws", "us-east-1", "123456789012", "fanout", TABLE, s,
                                     m};
    free(s_warned);
    s_warned = NULL;
    FILE *w = open_memstream(&s_warned, &s_warned_len);
    ck_assert_ptr_nonnull(w);
    json_t *doc = cli_policy_build(&in, "deploy", w);
    fclose(w);
    json_decref(m);
    json_decref(s);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "Version")), "2012-10-17");
    return doc;
}

static const json_t *s_stmt(const json_t *doc, const char *sid)
{
    size_t i;
    json_t *st;
    json_array_foreach (json_object_get(doc, "Statement"), i, st)
        if (!strcmp(json_string_value(json_object_get(st, "Sid")), sid))
            return st;
    return NULL;
}

/* The statement's member `key` as compact JSON equals `want`. */
static void s_member_is(const json_t *doc, const char *sid, const char *key,
                        const char *want)
{
    const json_t *st = s_stmt(doc, sid);
    ck_assert_msg(st != NULL, "no statement %s", sid);
    ck_assert_str_eq(json_string_value(json_object_get(st, "Effect")), "Allow");
    char *got = json_dumps(json_object_get(st, key), JSON_COMPACT);
    ck_assert_str_eq(got, want);
    free(got);
}

START_TEST(no_mappings_no_sources)
{
    json_t *doc = s_build("[]", NULL);
    ck_assert_int_eq(json_array_size(json_object_get(doc, "Statement")), 2);
    s_member_is(doc, "Logs", "Action",
                "[\"logs:CreateLogGroup\",\"logs:CreateLogStream\",\"logs:PutLogEvents\"]");
    s_member_is(doc, "Logs", "Resource",
                "[\"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fanout\","
                "\"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fanout:*\"]");
    s_member_is(doc, "Table", "Action",
                "[\"dynamodb:Query\",\"dynamodb:GetItem\",\"dynamodb:Scan\","
                "\"dynamodb:DescribeTable\"]");
    s_member_is(doc, "Table", "Resource", "[\"" TABLE "\"]");
    ck_assert_int_eq(json_array_size(json_object_get(doc, "Statement")), 2);
    ck_assert_ptr_null(s_stmt(doc, "Sources"));
    ck_assert_str_eq(s_warned, "");
    json_decref(doc);
}
END_TEST

START_TEST(sources_kinesis_and_dynamodb)
{
    json_t *doc = s_build("[]", "[\"arn:aws:kinesis:us-east-1:123456789012:stream/in\","
                                "\"arn:aws:dynamodb:us-east-1:123456789012:table/users/"
                                "stream/2026-01-01T00:00:00.000\"]");
    s_member_is(
        doc, "Sources", "Action",
        "[\"kinesis:DescribeStream\",\"kinesis:DescribeStreamSummary\","
        "\"kinesis:GetRecords\",\"kinesis:GetShardIterator\",\"kinesis:ListShards\","
        "\"kinesis:SubscribeToShard\",\"dynamodb:DescribeStream\","
        "\"dynamodb:GetRecords\",\"dynamodb:GetShardIterator\"]");
    s_member_is(doc, "Sources", "Resource",
                "[\"arn:aws:kinesis:us-east-1:123456789012:stream/in\","
                "\"arn:aws:dynamodb:us-east-1:123456789012:table/users/stream/"
                "2026-01-01T00:00:00.000\"]");
    s_member_is(doc, "SourcesList", "Action",
                "[\"kinesis:ListStreams\",\"dynamodb:ListStreams\"]");
    s_member_is(doc, "SourcesList", "Resource", "[\"*\"]");
    json_decref(doc);
}
END_TEST

START_TEST(targets_each_service)
{
    json_t *doc = s_build(
        "[{\"id\":\"t1\",\"type\":\"sns\",\"destination\":"
        "\"arn:aws:sns:us-east-1:123456789012:topic\"},"
        "{\"id\":\"t2\",\"type\":\"sqs\",\"destination\":"
        "\"https://sqs.eu-west-1.amazonaws.com/123456789012/q\",\"active\":false},"
        "{\"id\":\"t3\",\"type\":\"kinesis\",\"destination\":\"out\"},"
        "{\"id\":\"t4\",\"type\":\"firehose\",\"destination\":\"ds\",\"region\":\"eu-west-"
        "2\"},"
        "{\"id\":\"t5\",\"type\":\"lambda\",\"destination\":\"target:live\"},"
        "{\"id\":\"t6\",\"type\":\"iot\",\"destination\":"
        "\"abc-ats.iot.eu-central-1.amazonaws.com#a/b\"},"
        "{\"id\":\"t7\",\"type\":\"es\",\"destination\":"
        "\"https://search-logs-abcdefghijklmnopqrstuvwxyz.us-west-2.es.amazonaws.com#i\"},"
        "{\"id\":\"t8\",\"type\":\"memcached\",\"destination\":\"h:11211\"},"
        "{\"id\":\"t9\",\"type\":\"redis\",\"destination\":\"h:6379\"}]",
        NULL);
    /* one statement per service, as deploy/template.yaml has them */
    s_member_is(doc, "TargetsSns", "Action", "[\"sns:Publish\"]");
    s_member_is(doc, "TargetsSns", "Resource",
                "[\"arn:aws:sns:us-east-1:123456789012:topic\"]");
    s_member_is(doc, "TargetsSqs", "Action", "[\"sqs:SendMessage\"]");
    s_member_is(doc, "TargetsSqs", "Resource",
                "[\"arn:aws:sqs:eu-west-1:123456789012:q\"]");
    s_member_is(doc, "TargetsKinesis", "Action",
                "[\"kinesis:PutRecords\",\"kinesis:PutRecord\"]");
    s_member_is(doc, "TargetsKinesis", "Resource",
                "[\"arn:aws:kinesis:us-east-1:123456789012:stream/out\"]");
    s_member_is(doc, "TargetsFirehose", "Action",
                "[\"firehose:PutRecordBatch\",\"firehose:PutRecord\"]");
    s_member_is(doc, "TargetsFirehose", "Resource",
                "[\"arn:aws:firehose:eu-west-2:123456789012:deliverystream/ds\"]");
    s_member_is(doc, "TargetsLambda", "Action", "[\"lambda:InvokeFunction\"]");
    s_member_is(doc, "TargetsLambda", "Resource",
                "[\"arn:aws:lambda:us-east-1:123456789012:function:target:live\"]");
    s_member_is(doc, "TargetsIot", "Action", "[\"iot:Publish\"]");
    s_member_is(doc, "TargetsIot", "Resource",
                "[\"arn:aws:iot:eu-central-1:123456789012:topic/a/b\"]");
    s_member_is(doc, "TargetsEs", "Action", "[\"es:ESHttpPost\",\"es:ESHttpPut\"]");
    s_member_is(doc, "TargetsEs", "Resource",
                "[\"arn:aws:es:us-west-2:123456789012:domain/logs/*\"]");
    /* Logs, Table and the seven services; none for memcached and redis */
    ck_assert_int_eq(json_array_size(json_object_get(doc, "Statement")), 9);
    ck_assert_str_eq(s_warned, "");
    json_decref(doc);
}
END_TEST

START_TEST(sqs_url_forms)
{
    json_t *doc =
        s_build("[{\"id\":\"a\",\"type\":\"sqs\",\"destination\":"
                "\"https://queue.amazonaws.com/111111111111/old\"},"
                "{\"id\":\"b\",\"type\":\"sqs\",\"destination\":"
                "\"https://ap-south-1.queue.amazonaws.com/222222222222/legacy\"},"
                "{\"id\":\"c\",\"type\":\"sqs\",\"destination\":"
                "\"http://127.0.0.1:4566/000000000000/local\",\"region\":\"eu-north-1\"},"
                "{\"id\":\"d\",\"type\":\"sqs\",\"destination\":"
                "\"arn:aws:sqs:us-east-2:333333333333:byarn\"},"
                "{\"id\":\"e\",\"type\":\"sqs\",\"destination\":\"just-a-name\"}]",
                NULL);
    s_member_is(doc, "TargetsSqs", "Resource",
                "[\"arn:aws:sqs:us-east-1:111111111111:old\","
                "\"arn:aws:sqs:ap-south-1:222222222222:legacy\","
                "\"arn:aws:sqs:eu-north-1:000000000000:local\","
                "\"arn:aws:sqs:us-east-2:333333333333:byarn\"]");
    ck_assert_ptr_nonnull(strstr(s_warned, "fanout deploy: warning: mapping e: the sqs "
                                           "destination \"just-a-name\" is not an ARN"));
    json_decref(doc);
}
END_TEST

START_TEST(role_means_assume_role)
{
    json_t *doc = s_build("[{\"id\":\"x\",\"type\":\"kinesis\",\"destination\":\"other\","
                          "\"role\":\"arn:aws:iam::210987654321:role/fanout-writer\"}]",
                          NULL);
    s_member_is(doc, "TargetsRoles", "Action", "[\"sts:AssumeRole\"]");
    s_member_is(doc, "TargetsRoles", "Resource",
                "[\"arn:aws:iam::210987654321:role/fanout-writer\"]");
    ck_assert_ptr_null(s_stmt(doc, "TargetsKinesis"));
    json_decref(doc);
}
END_TEST

START_TEST(not_an_arn_warns)
{
    json_t *doc =
        s_build("[{\"id\":\"topic1\",\"type\":\"sns\",\"destination\":\"mytopic\"},"
                "{\"id\":\"search\",\"type\":\"es\",\"destination\":"
                "\"localhost:9200#idx\"},"
                "{\"id\":\"p\",\"type\":\"myplugin\",\"destination\":\"x\"}]",
                NULL);
    ck_assert_int_eq(json_array_size(json_object_get(doc, "Statement")), 2);
    ck_assert_ptr_nonnull(strstr(s_warned, "mapping topic1: the sns destination "
                                           "\"mytopic\" is not an ARN and cannot be turned "
                                           "into one"));
    ck_assert_ptr_nonnull(strstr(s_warned, "mapping search: the es destination"));
    ck_assert_ptr_nonnull(strstr(s_warned, "mapping p: plugin type \"myplugin\""));
    json_decref(doc);
}
END_TEST

START_TEST(duplicates_once)
{
    json_t *doc = s_build("[{\"id\":\"a\",\"type\":\"kinesis\",\"destination\":\"out\"},"
                          "{\"id\":\"b\",\"type\":\"kinesis\",\"destination\":"
                          "\"arn:aws:kinesis:us-east-1:123456789012:stream/out\"}]",
                          NULL);
    s_member_is(doc, "TargetsKinesis", "Action",
                "[\"kinesis:PutRecords\",\"kinesis:PutRecord\"]");
    s_member_is(doc, "TargetsKinesis", "Resource",
                "[\"arn:aws:kinesis:us-east-1:123456789012:stream/out\"]");
    json_decref(doc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli_policy");
    TCase *t = tcase_create("policy");
    tcase_add_test(t, no_mappings_no_sources);
    tcase_add_test(t, sources_kinesis_and_dynamodb);
    tcase_add_test(t, targets_each_service);
    tcase_add_test(t, sqs_url_forms);
    tcase_add_test(t, role_means_assume_role);
    tcase_add_test(t, not_an_arn_warns);
    tcase_add_test(t, duplicates_once);
    suite_add_tcase(s, t);
    int rc = fanout_check_run(s);
    free(s_warned);
    return rc;
}
