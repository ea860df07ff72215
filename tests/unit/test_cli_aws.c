/* The deployment commands' AWS helpers without a network: the denied-call
 * message parser, the denied codes, the form encoding, the common flags
 * and the wait loop. */
#include <check.h>

#include "check_main.h"
#include <stdlib.h>
#include <string.h>

#include <fanout/helpers.h>

#include "cli/cli_aws.h"

static void s_denied_is(const char *msg, const char *action, const char *resource)
{
    char a[128] = "x", r[256] = "x";
    ck_assert_msg(cli_aws_parse_denied(msg, a, sizeof a, r, sizeof r) == 1,
                  "not parsed: %s", msg);
    ck_assert_str_eq(a, action);
    ck_assert_str_eq(r, resource);
}

START_TEST(denied_iam_message)
{
    s_denied_is("User: arn:aws:iam::123456789012:user/dev is not authorized to perform: "
                "iam:CreateRole on resource: arn:aws:iam::123456789012:role/fanoutRole "
                "because no identity-based policy allows the iam:CreateRole action",
                "iam:CreateRole", "arn:aws:iam::123456789012:role/fanoutRole");
}
END_TEST

START_TEST(denied_explicit_deny_and_end_of_sentence)
{
    s_denied_is("User: arn:aws:sts::123456789012:assumed-role/ci/x is not authorized to "
                "perform: lambda:GetFunction on resource: "
                "arn:aws:lambda:us-east-1:123456789012:function:fanout with an explicit "
                "deny in an identity-based policy",
                "lambda:GetFunction",
                "arn:aws:lambda:us-east-1:123456789012:function:fanout");
    s_denied_is("User: arn:aws:iam::1:user/d is not authorized to perform: "
                "dynamodb:DescribeTable on resource: "
                "arn:aws:dynamodb:eu-west-1:1:table/fanoutTargets.",
                "dynamodb:DescribeTable",
                "arn:aws:dynamodb:eu-west-1:1:table/fanoutTargets");
}
END_TEST

START_TEST(denied_without_resource)
{
    s_denied_is("User: arn:aws:iam::1:user/d is not authorized to perform: "
                "sts:GetCallerIdentity",
                "sts:GetCallerIdentity", "");
    s_denied_is("User: arn:aws:iam::1:user/d is not authorized to perform: "
                "lambda:ListLayerVersions because no identity-based policy allows it",
                "lambda:ListLayerVersions", "");
}
END_TEST

START_TEST(denied_other_messages_not_parsed)
{
    char a[64] = "x", r[64] = "x";
    ck_assert_int_eq(cli_aws_parse_denied("Access Denied", a, sizeof a, r, sizeof r), 0);
    ck_assert_str_eq(a, "");
    ck_assert_int_eq(cli_aws_parse_denied("", a, sizeof a, r, sizeof r), 0);
    ck_assert_int_eq(cli_aws_parse_denied(NULL, a, sizeof a, r, sizeof r), 0);
    ck_assert_int_eq(
        cli_aws_parse_denied("is not authorized to perform:   ", a, sizeof a, r, sizeof r),
        0);
    /* an action longer than the buffer is not cut into a wrong one */
    char tiny[8];
    ck_assert_int_eq(cli_aws_parse_denied("x is not authorized to perform: iam:CreateRole",
                                          tiny, sizeof tiny, r, sizeof r),
                     0);
}
END_TEST

START_TEST(denied_codes)
{
    ck_assert_int_eq(cli_aws_is_denied("AccessDenied"), 1);
    ck_assert_int_eq(cli_aws_is_denied("AccessDeniedException"), 1);
    ck_assert_int_eq(cli_aws_is_denied("UnauthorizedOperation"), 1);
    ck_assert_int_eq(cli_aws_is_denied("ResourceNotFoundException"), 0);
    ck_assert_int_eq(cli_aws_is_denied(""), 0);
}
END_TEST

START_TEST(encode_form_values)
{
    struct fanout_sbuf b = {0};
    ck_assert_int_eq(cli_aws_encode(&b, "a b/c:{\"x\"}~-_.é"), 0);
    ck_assert_str_eq(b.p, "a%20b%2Fc%3A%7B%22x%22%7D~-_.%C3%A9");
    fanout_sbuf_free(&b);
}
END_TEST

START_TEST(common_flags)
{
    char *argv[] = {"deploy",          "--region", "eu-west-1", "--profile=dev", "--debug",
                    "--no-verify-ssl", "--memory", "256",       "--region"};
    int argc = 9;
    struct cli_aws_flags f = {0};
    char err[128] = "";
    int i = 1;
    ck_assert_int_eq(cli_aws_common_flag(&f, argc, argv, &i, err, sizeof err), 1);
    ck_assert_int_eq(i, 2);
    ck_assert_str_eq(f.region, "eu-west-1");
    i = 3;
    ck_assert_int_eq(cli_aws_common_flag(&f, argc, argv, &i, err, sizeof err), 1);
    ck_assert_str_eq(f.profile, "dev");
    i = 4;
    ck_assert_int_eq(cli_aws_common_flag(&f, argc, argv, &i, err, sizeof err), 1);
    i = 5;
    ck_assert_int_eq(cli_aws_common_flag(&f, argc, argv, &i, err, sizeof err), 1);
    ck_assert_int_eq(f.debug, 1);
    ck_assert_int_eq(f.no_verify_ssl, 1);
    i = 6;
    ck_assert_int_eq(cli_aws_common_flag(&f, argc, argv, &i, err, sizeof err), 0);
    const char *v = NULL;
    ck_assert_int_eq(cli_aws_value_flag(argc, argv, &i, "memory", &v, err, sizeof err), 1);
    ck_assert_str_eq(v, "256");
    ck_assert_int_eq(i, 7);
    /* a prefix is not the flag */
    i = 6;
    ck_assert_int_eq(cli_aws_value_flag(argc, argv, &i, "mem", &v, err, sizeof err), 0);
    i = 8;
    ck_assert_int_eq(cli_aws_common_flag(&f, argc, argv, &i, err, sizeof err), -1);
    ck_assert_str_eq(err, "--region needs a value");
}
END_TEST

static int s_polls;

static int s_probe(void *ctx, char *progress, size_t len)
{
    int *done_at = ctx;
    snprintf(progress, len, "State Pending (poll %d)", s_polls);
    return ++s_polls >= *done_at ? *done_at < 0 ? -1 : 1 : 0;
}

START_TEST(wait_until_done)
{
    setenv("FANOUT_DEPLOY_WAIT_SECONDS", "10", 1);
    s_polls = 0;
    int done_at = 2;
    ck_assert_int_eq(cli_aws_wait("deploy", "function f", s_probe, &done_at), 0);
    ck_assert_int_eq(s_polls, 2);
}
END_TEST

START_TEST(wait_runs_out)
{
    setenv("FANOUT_DEPLOY_WAIT_SECONDS", "1", 1);
    s_polls = 0;
    int never = 1000;
    ck_assert_int_eq(cli_aws_wait("deploy", "function f", s_probe, &never), -1);
    /* 0.5 s, then what is left of the second: 3 polls */
    ck_assert_int_eq(s_polls, 3);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli_aws");
    TCase *t = tcase_create("denied");
    tcase_add_test(t, denied_iam_message);
    tcase_add_test(t, denied_explicit_deny_and_end_of_sentence);
    tcase_add_test(t, denied_without_resource);
    tcase_add_test(t, denied_other_messages_not_parsed);
    tcase_add_test(t, denied_codes);
    suite_add_tcase(s, t);
    t = tcase_create("helpers");
    tcase_add_test(t, encode_form_values);
    tcase_add_test(t, common_flags);
    tcase_add_test(t, wait_until_done);
    tcase_add_test(t, wait_runs_out);
    suite_add_tcase(s, t);
    return fanout_check_run(s);
}
