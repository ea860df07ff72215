#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/endpoint.h"
#include "common/log.h"

/* Every variable the module reads: cleared before each test so the
 * machine's environment and ~/.aws never leak in. */
static const char *const s_vars[] = {
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_ENDPOINT_URL_KINESIS",
    "AWS_ENDPOINT_URL_FIREHOSE",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_SNS",
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_ENDPOINT_URL_IOT_DATA_PLANE",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
    "AWS_ENDPOINT_URL_ES",
};

static char s_home[64];
static char s_files[4][64];
static int s_nfiles;

static void s_setup(void)
{
    for (size_t i = 0; i < sizeof s_vars / sizeof *s_vars; i++)
        unsetenv(s_vars[i]);
    snprintf(s_home, sizeof s_home, "/tmp/fanout-ep-home-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s_home));
    setenv("HOME", s_home, 1);
    s_nfiles = 0;
}

static void s_teardown(void)
{
    for (int i = 0; i < s_nfiles; i++)
        unlink(s_files[i]);
    char p[128];
    snprintf(p, sizeof p, "%s/.aws/config", s_home);
    unlink(p);
    snprintf(p, sizeof p, "%s/.aws/credentials", s_home);
    unlink(p);
    snprintf(p, sizeof p, "%s/.aws", s_home);
    rmdir(p);
    rmdir(s_home);
}

/* A temporary file with `text`, named by `var` when given. */
static const char *s_file(const char *var, const char *text)
{
    ck_assert_int_lt(s_nfiles, 4);
    char *path = s_files[s_nfiles++];
    snprintf(path, 64, "/tmp/fanout-ep-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(text);
    ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
    if (var)
        setenv(var, path, 1);
    return path;
}

static const char *s_config(const char *text)
{
    return s_file("AWS_CONFIG_FILE", text);
}

/* fanout_aws_profile_value of the config file, compared and freed. */
static void s_expect(int credentials, const char *profile, const char *key,
                     const char *want)
{
    char *v = fanout_aws_profile_value(credentials, profile, key);
    const char *k = key ? key : "(null)";
    if (!want)
        ck_assert_msg(v == NULL, "%s: expected nothing, got \"%s\"", k, v ? v : "");
    else {
        ck_assert_msg(v != NULL, "%s: expected \"%s\", got nothing", k, want);
        ck_assert_str_eq(v, want);
    }
    free(v);
}

static void s_url_is(const char *service, const char *region, const char *user,
                     const char *want)
{
    char url[256], err[256] = "";
    int rc =
        fanout_aws_endpoint_url(service, region, user, url, sizeof url, err, sizeof err);
    ck_assert_msg(rc == 0, "%s/%s: %s", service, region ? region : "-", err);
    ck_assert_str_eq(url, want);
}

static void s_url_fails(const char *service, const char *region, const char *user,
                        const char *err_part)
{
    char url[256] = "", err[256] = "";
    int rc =
        fanout_aws_endpoint_url(service, region, user, url, sizeof url, err, sizeof err);
    ck_assert_msg(rc == -1, "%s: expected an error, got %s", service, url);
    ck_assert_msg(strstr(err, err_part), "error \"%s\" lacks \"%s\"", err, err_part);
}

/* ---- service table ---- */

START_TEST(service_table)
{
    static const struct {
        const char *id, *env, *host, *sign;
    } want[] = {
        {"kinesis", "KINESIS", "kinesis", "kinesis"},
        {"firehose", "FIREHOSE", "firehose", "firehose"},
        {"sqs", "SQS", "sqs", "sqs"},
        {"sns", "SNS", "sns", "sns"},
        {"lambda", "LAMBDA", "lambda", "lambda"},
        {"iot_data_plane", "IOT_DATA_PLANE", "data-ats.iot", "iotdata"},
        {"dynamodb", "DYNAMODB", "dynamodb", "dynamodb"},
        {"dynamodb_streams", "DYNAMODB_STREAMS", "streams.dynamodb", "dynamodb"},
        {"sts", "STS", "sts", "sts"},
        {"cloudwatch_logs", "CLOUDWATCH_LOGS", "logs", "logs"},
        {"es", "ES", NULL, "es"},
        {"iam", "IAM", "iam", "iam"},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const struct fanout_aws_service *s = fanout_aws_service_find(want[i].id);
        ck_assert_msg(s != NULL, "%s missing", want[i].id);
        ck_assert_str_eq(s->id, want[i].id);
        ck_assert_str_eq(s->env_suffix, want[i].env);
        if (want[i].host)
            ck_assert_str_eq(s->host_prefix, want[i].host);
        else
            ck_assert_ptr_null(s->host_prefix);
        ck_assert_str_eq(s->signing_name, want[i].sign);
    }
    ck_assert_ptr_null(fanout_aws_service_find("s3"));
    ck_assert_ptr_null(fanout_aws_service_find("KINESIS"));
    ck_assert_ptr_null(fanout_aws_service_find(""));
    ck_assert_ptr_null(fanout_aws_service_find(NULL));
}
END_TEST

/* ---- partitions ---- */

static const struct {
    const char *region, *partition, *suffix;
} s_part_cases[] = {
    {"us-east-1", "aws", "amazonaws.com"},
    {"eu-west-1", "aws", "amazonaws.com"},
    {"ap-southeast-7", "aws", "amazonaws.com"},
    {"mx-central-1", "aws", "amazonaws.com"},
    {"il-central-1", "aws", "amazonaws.com"},
    {"cn-north-1", "aws-cn", "amazonaws.com.cn"},
    {"cn-northwest-1", "aws-cn", "amazonaws.com.cn"},
    {"us-gov-west-1", "aws-us-gov", "amazonaws.com"},
    {"us-iso-east-1", "aws-iso", "c2s.ic.gov"},
    {"us-isob-east-1", "aws-iso-b", "sc2s.sgov.gov"},
    {"eu-isoe-west-1", "aws-iso-e", "cloud.adc-e.uk"},
    {"us-isof-south-1", "aws-iso-f", "csp.hci.ic.gov"},
    {"eusc-de-east-1", "aws-eusc", "amazonaws.eu"},
    {"aws-us-gov-global", "aws-us-gov", "amazonaws.com"},
    {"aws-cn-global", "aws-cn", "amazonaws.com.cn"},
    /* matching no pattern: "aws", as the SDKs' aws.partition does */
    {"xx-north-1", "aws", "amazonaws.com"},
    {"local", "aws", "amazonaws.com"},
    {"us-east", "aws", "amazonaws.com"},
    {"cn-north-1a", "aws", "amazonaws.com"},
    {"eusc-fr-east-1", "aws", "amazonaws.com"},
};

START_TEST(partition_of_region)
{
    const char *r = s_part_cases[_i].region;
    ck_assert_str_eq(fanout_aws_partition(r), s_part_cases[_i].partition);
    ck_assert_str_eq(fanout_aws_dns_suffix(r), s_part_cases[_i].suffix);
}
END_TEST

START_TEST(default_endpoints)
{
    s_url_is("kinesis", "us-east-1", NULL, "https://kinesis.us-east-1.amazonaws.com");
    s_url_is("firehose", "cn-north-1", NULL,
             "https://firehose.cn-north-1.amazonaws.com.cn");
    s_url_is("sqs", "us-gov-west-1", NULL, "https://sqs.us-gov-west-1.amazonaws.com");
    s_url_is("sns", "us-iso-east-1", NULL, "https://sns.us-iso-east-1.c2s.ic.gov");
    s_url_is("lambda", "us-isob-east-1", NULL,
             "https://lambda.us-isob-east-1.sc2s.sgov.gov");
    s_url_is("dynamodb", "eu-isoe-west-1", NULL,
             "https://dynamodb.eu-isoe-west-1.cloud.adc-e.uk");
    s_url_is("dynamodb_streams", "us-east-2", NULL,
             "https://streams.dynamodb.us-east-2.amazonaws.com");
    s_url_is("cloudwatch_logs", "us-isof-south-1", NULL,
             "https://logs.us-isof-south-1.csp.hci.ic.gov");
    s_url_is("sts", "us-east-1", NULL, "https://sts.us-east-1.amazonaws.com");
    s_url_is("sts", "eusc-de-east-1", NULL, "https://sts.eusc-de-east-1.amazonaws.eu");
    s_url_is("sts", "aws-global", NULL, "https://sts.amazonaws.com");
    s_url_is("iot_data_plane", "eu-west-1", NULL,
             "https://data-ats.iot.eu-west-1.amazonaws.com");
    /* IAM: one endpoint per partition, at the partition's signing region */
    s_url_is("iam", fanout_aws_signing_region("iam", "eu-west-1"), NULL,
             "https://iam.amazonaws.com");
    s_url_is("iam", fanout_aws_signing_region("iam", "cn-northwest-1"), NULL,
             "https://iam.cn-north-1.amazonaws.com.cn");
    s_url_is("iam", fanout_aws_signing_region("iam", "us-gov-east-1"), NULL,
             "https://iam.us-gov.amazonaws.com");
    ck_assert_str_eq(fanout_aws_signing_region("iam", "ap-south-1"), "us-east-1");
    ck_assert_str_eq(fanout_aws_signing_region("iam", "cn-north-1"), "cn-north-1");
    ck_assert_str_eq(fanout_aws_signing_region("iam", "us-gov-east-1"), "us-gov-west-1");
    ck_assert_str_eq(fanout_aws_signing_region("lambda", "eu-west-1"), "eu-west-1");
    s_url_is("iot_data_plane", "cn-north-1", NULL,
             "https://data.ats.iot.cn-north-1.amazonaws.com.cn");
    s_url_is("iot_data_plane", "cn-northwest-1", NULL,
             "https://data-ats.iot.cn-northwest-1.amazonaws.com.cn");
    /* the destination's endpoint, normalised */
    s_url_is("es", "eu-west-1", "https://search-d-abc.eu-west-1.es.amazonaws.com/",
             "https://search-d-abc.eu-west-1.es.amazonaws.com");
    s_url_is("iot_data_plane", "eu-west-1",
             "https://a1b2-ats.iot.eu-west-1.amazonaws.com:443",
             "https://a1b2-ats.iot.eu-west-1.amazonaws.com");
    s_url_fails("es", "eu-west-1", NULL, "AWS_ENDPOINT_URL_ES");
    s_url_fails("kinesis", NULL, NULL, "no region");
    s_url_fails("kinesis", "", NULL, "no region");
    s_url_fails("s3", "us-east-1", NULL, "unknown AWS service");
    s_url_fails(NULL, "us-east-1", NULL, "unknown AWS service");
    s_url_fails("kinesis", "us-east-1", "ftp://example.com", "destination's endpoint");
}
END_TEST

START_TEST(endpoint_bad_region_refused)
{
    static const char *const bad[] = {"us-east-1.evil.com", "evil.com/x",  "US-EAST-1",
                                      "us-east-1 ",         "-us-east-1",  "us-east-1-",
                                      "us_east_1",          "us-east-1\n", "us-east-1@x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        s_url_fails("kinesis", bad[i], NULL, "not a region name");
    /* a URL too long for the buffer */
    char url[16], err[128];
    ck_assert_int_eq(fanout_aws_endpoint_url("kinesis", "us-east-1", NULL, url, sizeof url,
                                             err, sizeof err),
                     -1);
    ck_assert_msg(strstr(err, "too long"), "%s", err);
}
END_TEST

/* ---- region ---- */

static void s_region_is(const char *explicit_region, const char *want)
{
    char out[64], err[256] = "";
    int rc = fanout_aws_region(explicit_region, out, sizeof out, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_str_eq(out, want);
}

START_TEST(region_resolution_order)
{
    char out[64], err[256];
    /* nothing anywhere: an error naming what to set */
    ck_assert_int_eq(fanout_aws_region(NULL, out, sizeof out, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "AWS_REGION"), "%s", err);

    s_config("[default]\nregion = eu-central-1\n[profile other]\nregion = ap-south-1\n");
    s_region_is(NULL, "eu-central-1");
    setenv("AWS_PROFILE", "other", 1);
    s_region_is(NULL, "ap-south-1");
    setenv("AWS_PROFILE", "missing", 1);
    ck_assert_int_eq(fanout_aws_region(NULL, out, sizeof out, err, sizeof err), -1);
    unsetenv("AWS_PROFILE");

    setenv("AWS_DEFAULT_REGION", "us-west-1", 1);
    s_region_is(NULL, "us-west-1");
    setenv("AWS_REGION", "us-west-2", 1);
    s_region_is(NULL, "us-west-2");
    s_region_is("", "us-west-2"); /* empty means unset */
    s_region_is("ca-central-1", "ca-central-1");
    /* an empty variable counts as unset */
    setenv("AWS_REGION", "", 1);
    s_region_is(NULL, "us-west-1");
}
END_TEST

START_TEST(region_refused)
{
    char out[64], err[256];
    setenv("AWS_REGION", "us-east-1.attacker.example", 1);
    ck_assert_int_eq(fanout_aws_region(NULL, out, sizeof out, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "AWS_REGION") && strstr(err, "not a region name"), "%s", err);
    /* a bad value is not skipped over for the next source */
    setenv("AWS_DEFAULT_REGION", "us-east-1", 1);
    ck_assert_int_eq(fanout_aws_region(NULL, out, sizeof out, err, sizeof err), -1);
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    ck_assert_int_eq(
        fanout_aws_region("eu-west-1\r\nX: y", out, sizeof out, err, sizeof err), -1);
    ck_assert_msg(!strchr(err, '\n') && !strchr(err, '\r'), "control characters in: %s",
                  err);
    s_config("[default]\nregion = Eu-West-1\n");
    ck_assert_int_eq(fanout_aws_region(NULL, out, sizeof out, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "config file"), "%s", err);
    /* the output buffer too small */
    char small[4];
    ck_assert_int_eq(fanout_aws_region("us-east-1", small, sizeof small, err, sizeof err),
                     -1);
}
END_TEST

/* ---- overrides ---- */

static const char s_override_config[] = "[default]\n"
                                        "endpoint_url = http://global.config:1000\n"
                                        "services = local\n"
                                        "\n"
                                        "[services local]\n"
                                        "kinesis =\n"
                                        "  endpoint_url = http://kinesis.config:2000/\n"
                                        "sqs =\n"
                                        "  region = ignored\n";

START_TEST(override_levels)
{
    const char *user = "https://user.example.com";
    /* level 5: the default host; level 4: the destination's endpoint */
    s_url_is("kinesis", "eu-west-1", NULL, "https://kinesis.eu-west-1.amazonaws.com");
    s_url_is("kinesis", "eu-west-1", user, user);

    /* config: global endpoint_url; the services section wins for kinesis */
    s_config(s_override_config);
    s_url_is("sqs", "eu-west-1", user, "http://global.config:1000");
    s_url_is("kinesis", "eu-west-1", user, "http://kinesis.config:2000");

    /* AWS_ENDPOINT_URL beats the config file */
    setenv("AWS_ENDPOINT_URL", "http://localhost:4566/", 1);
    s_url_is("kinesis", "eu-west-1", user, "http://localhost:4566");
    s_url_is("sqs", "eu-west-1", NULL, "http://localhost:4566");

    /* the service's own variable beats the global one, for that service */
    setenv("AWS_ENDPOINT_URL_KINESIS", "http://127.0.0.1:4567", 1);
    s_url_is("kinesis", "eu-west-1", user, "http://127.0.0.1:4567");
    s_url_is("sqs", "eu-west-1", NULL, "http://localhost:4566");
    setenv("AWS_ENDPOINT_URL_IOT_DATA_PLANE", "https://iot.local", 1);
    s_url_is("iot_data_plane", "eu-west-1", NULL, "https://iot.local");
    setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "http://ddb.local:8000", 1);
    s_url_is("dynamodb_streams", "eu-west-1", NULL, "http://ddb.local:8000");
    s_url_is("dynamodb", "eu-west-1", NULL, "http://localhost:4566");
    /* es has no default host, but the overrides still apply */
    s_url_is("es", "eu-west-1", NULL, "http://localhost:4566");

    /* an empty variable is unset */
    setenv("AWS_ENDPOINT_URL_KINESIS", "", 1);
    s_url_is("kinesis", "eu-west-1", NULL, "http://localhost:4566");
}
END_TEST

START_TEST(override_ignore_switch)
{
    const char *user = "https://user.example.com";
    s_config(s_override_config);
    setenv("AWS_ENDPOINT_URL", "http://localhost:4566", 1);
    setenv("AWS_ENDPOINT_URL_KINESIS", "http://localhost:4567", 1);
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    s_url_is("kinesis", "eu-west-1", NULL, "https://kinesis.eu-west-1.amazonaws.com");
    s_url_is("sqs", "eu-west-1", user, user); /* the destination's own still counts */
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE", 1);
    s_url_is("kinesis", "eu-west-1", NULL, "https://kinesis.eu-west-1.amazonaws.com");
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false", 1);
    s_url_is("kinesis", "eu-west-1", NULL, "http://localhost:4567");
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_KINESIS");

    /* the same switch in the profile, when the variable is unset */
    s_config("[default]\nendpoint_url = http://global.config\n"
             "ignore_configured_endpoint_urls = true\n");
    s_url_is("sqs", "eu-west-1", NULL, "https://sqs.eu-west-1.amazonaws.com");
    setenv("AWS_ENDPOINT_URL", "http://localhost:4566", 1);
    s_url_is("sqs", "eu-west-1", NULL, "https://sqs.eu-west-1.amazonaws.com");
    /* the variable, when set, decides over the profile */
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false", 1);
    s_url_is("sqs", "eu-west-1", NULL, "http://localhost:4566");
}
END_TEST

START_TEST(override_profile_and_bad_values)
{
    s_config("[default]\nendpoint_url = http://default.config\n"
             "[profile test]\nservices = test-svc\n"
             "[services test-svc]\nsqs =\n  endpoint_url = http://sqs.test:9324\n"
             "[services other]\nkinesis =\n  endpoint_url = http://wrong\n");
    s_url_is("sqs", "eu-west-1", NULL, "http://default.config");
    setenv("AWS_PROFILE", "test", 1);
    s_url_is("sqs", "eu-west-1", NULL, "http://sqs.test:9324");
    /* the profile names no services section for kinesis, nor a global URL */
    s_url_is("kinesis", "eu-west-1", NULL, "https://kinesis.eu-west-1.amazonaws.com");
    unsetenv("AWS_PROFILE");

    setenv("AWS_ENDPOINT_URL_SQS", "ftp://example.com", 1);
    s_url_fails("sqs", "eu-west-1", NULL, "AWS_ENDPOINT_URL_SQS");
    setenv("AWS_ENDPOINT_URL_SQS", "http://user:secret@example.com", 1);
    s_url_fails("sqs", "eu-west-1", NULL, "AWS_ENDPOINT_URL_SQS");
    setenv("AWS_ENDPOINT_URL_SQS", "localhost:4566", 1);
    s_url_fails("sqs", "eu-west-1", NULL, "not an http(s)");
    unsetenv("AWS_ENDPOINT_URL_SQS");
    s_config("[default]\nendpoint_url = not a url\n");
    s_url_fails("sqs", "eu-west-1", NULL, "config file");
}
END_TEST

/* ---- URL split ---- */

static const struct {
    const char *url;
    int rc;
    const char *scheme, *host, *path;
} s_split_cases[] = {
    {"https://kinesis.us-east-1.amazonaws.com", 0, "https",
     "kinesis.us-east-1.amazonaws.com", ""},
    {"https://kinesis.us-east-1.amazonaws.com/", 0, "https",
     "kinesis.us-east-1.amazonaws.com", ""},
    {"HTTP://LocalHost:4566", 0, "http", "localhost:4566", ""},
    {"http://localhost:80/", 0, "http", "localhost", ""},
    {"https://example.com:443/base//", 0, "https", "example.com", "/base"},
    {"https://example.com:8443/a/b", 0, "https", "example.com:8443", "/a/b"},
    {"http://example.com:0443", 0, "http", "example.com:443", ""},
    {"http://[::1]:4566/x", 0, "http", "[::1]:4566", "/x"},
    {"http://[fd00:ec2::23]", 0, "http", "[fd00:ec2::23]", ""},
    {"http://local_stack:4566", 0, "http", "local_stack:4566", ""},
    {"http://10.0.0.1:9200/es/", 0, "http", "10.0.0.1:9200", "/es"},
    {"ftp://example.com", -1, NULL, NULL, NULL},
    {"example.com", -1, NULL, NULL, NULL},
    {"https://", -1, NULL, NULL, NULL},
    {"https:///path", -1, NULL, NULL, NULL},
    {"https://:443", -1, NULL, NULL, NULL},
    {"https://host:", -1, NULL, NULL, NULL},
    {"https://host:0", -1, NULL, NULL, NULL},
    {"https://host:65536", -1, NULL, NULL, NULL},
    {"https://host:123456", -1, NULL, NULL, NULL},
    {"https://host:12a", -1, NULL, NULL, NULL},
    {"https://user:pw@host", -1, NULL, NULL, NULL},
    {"https://host/path?x=1", -1, NULL, NULL, NULL},
    {"https://host/#frag", -1, NULL, NULL, NULL},
    {"https://ho st", -1, NULL, NULL, NULL},
    {"https://host/pa th", -1, NULL, NULL, NULL},
    {"https://host\r\nX-Injected: 1", -1, NULL, NULL, NULL},
    {"https://[::1", -1, NULL, NULL, NULL},
    {"https://[]", -1, NULL, NULL, NULL},
    {"https://[::1]x", -1, NULL, NULL, NULL},
    {"https://[zz::1]", -1, NULL, NULL, NULL},
    {"https://host!/", -1, NULL, NULL, NULL},
    {"https:/host", -1, NULL, NULL, NULL},
    {"", -1, NULL, NULL, NULL},
};

START_TEST(url_split_cases)
{
    char scheme[8] = "?", host[128] = "?", path[128] = "?";
    int rc = fanout_url_split(s_split_cases[_i].url, scheme, sizeof scheme, host,
                              sizeof host, path, sizeof path);
    ck_assert_msg(rc == s_split_cases[_i].rc, "%s: rc %d", s_split_cases[_i].url, rc);
    if (rc == 0) {
        ck_assert_str_eq(scheme, s_split_cases[_i].scheme);
        ck_assert_str_eq(host, s_split_cases[_i].host);
        ck_assert_str_eq(path, s_split_cases[_i].path);
    }
}
END_TEST

START_TEST(url_split_limits)
{
    char scheme[8], host[8], path[4];
    ck_assert_int_eq(fanout_url_split(NULL, scheme, 8, host, 8, path, 4), -1);
    /* buffers too small */
    ck_assert_int_eq(fanout_url_split("http://a.example", scheme, 8, host, 8, path, 4), -1);
    ck_assert_int_eq(fanout_url_split("https://a/b", scheme, 5, host, 8, path, 4), -1);
    ck_assert_int_eq(fanout_url_split("https://a/bcde", scheme, 8, host, 8, path, 4), -1);
    ck_assert_int_eq(fanout_url_split("https://a/bcd", scheme, 8, host, 8, path, 4), -1);
    ck_assert_int_eq(fanout_url_split("https://a/bc/", scheme, 8, host, 8, path, 4), 0);
    ck_assert_str_eq(path, "/bc");
    /* outputs not wanted */
    ck_assert_int_eq(fanout_url_split("https://a:1/b", NULL, 0, host, 8, NULL, 0), 0);
    ck_assert_str_eq(host, "a:1");
    /* a host longer than any DNS name */
    char big[400] = "https://";
    memset(big + 8, 'a', 380);
    big[388] = '\0';
    char hbig[512];
    ck_assert_int_eq(fanout_url_split(big, scheme, 8, hbig, sizeof hbig, NULL, 0), -1);
}
END_TEST

/* ---- INI ---- */

START_TEST(ini_comments_and_spaces)
{
    s_config("# a comment\n"
             "; another\n"
             "ignored = before any section\n"
             "[default] # comment after the header\n"
             "region=eu-west-1\n"
             "  \t\n"
             "output \t=  \tjson \t\n"
             "inline = value # comment\n"
             "inline2 = value ; comment\n"
             "adjacent = value#kept\n"
             "adjacent2 = value;kept\n"
             "equals = a=b=c\n"
             "empty =\n"
             "Mixed_Case = yes\n"
             "no equals sign here\n"
             "   ; indented comment\n"
             "crlf = dos\r\n"
             "[   profile   spaced   ]\r\n"
             "key = spaced\r\n"
             "[profile\ttabbed]\n"
             "key = tabbed\n"
             "[profile bad name]\n"
             "key = never\n"
             "[profile unterminated\n"
             "key = never2\n"
             "[profile junk]x\n"
             "key = never3\n"
             "[profile semi];c\n"
             "key = semi\n");
    s_expect(0, NULL, "region", "eu-west-1");
    s_expect(0, NULL, "output", "json");
    s_expect(0, NULL, "inline", "value");
    s_expect(0, NULL, "inline2", "value");
    s_expect(0, NULL, "adjacent", "value#kept");
    s_expect(0, NULL, "adjacent2", "value;kept");
    s_expect(0, NULL, "equals", "a=b=c");
    s_expect(0, NULL, "empty", "");
    s_expect(0, NULL, "mixed_case", "yes");
    s_expect(0, NULL, "MIXED_CASE", "yes");
    s_expect(0, NULL, "crlf", "dos");
    s_expect(0, NULL, "ignored", NULL);
    s_expect(0, NULL, "no equals sign here", NULL);
    s_expect(0, "spaced", "key", "spaced");
    s_expect(0, "tabbed", "key", "tabbed");
    s_expect(0, "bad name", "key", NULL);
    s_expect(0, "unterminated", "key", NULL);
    s_expect(0, "junk", "key", NULL);
    s_expect(0, "semi", "key", "semi");
    s_expect(0, NULL, "missing", NULL);
    s_expect(0, "nope", "region", NULL);
    s_expect(0, NULL, "", NULL);
    s_expect(0, NULL, NULL, NULL);
}
END_TEST

START_TEST(ini_profiles_and_duplicates)
{
    s_config("[default]\nregion = bare\nonly_bare = 1\n"
             "[foo]\nregion = not-a-config-profile\n"
             "[profile foo]\nregion = r1\nkey = first\n"
             "[profile bar]\nregion = r2\n"
             "[profile foo]\nkey = second\nKEY = third\n"
             "[sso-session foo]\nregion = sso\n");
    /* [profile default] absent: [default] is read */
    s_expect(0, NULL, "region", "bare");
    s_expect(0, "default", "only_bare", "1");
    /* [foo] in the config file is not a profile; sections merge; the last
     * definition wins, case-insensitively */
    s_expect(0, "foo", "region", "r1");
    s_expect(0, "foo", "key", "third");
    s_expect(0, "bar", "region", "r2");
    setenv("AWS_PROFILE", "bar", 1);
    s_expect(0, NULL, "region", "r2");
    s_expect(0, "foo", "region", "r1"); /* the argument wins over AWS_PROFILE */
    unsetenv("AWS_PROFILE");

    /* [profile default] wins over [default] wherever it stands */
    s_config(
        "[default]\nregion = bare\nonly_bare = 1\n[profile default]\nregion = prefixed\n");
    s_expect(0, NULL, "region", "prefixed");
    s_expect(0, NULL, "only_bare", NULL);
}
END_TEST

START_TEST(ini_continuations_and_sub_properties)
{
    s_config("[default]\n"
             "multi = first\n"
             "  second line  \n"
             "\tthird # kept\n"
             "s3 =\n"
             "  max_concurrent_requests = 20\n"
             "\n"
             "  Addressing_Style = path\n"
             "  not a pair\n"
             "plain = x\n"
             "  continued\n"
             "[profile p]\n"
             "  orphan = continuation without a property\n");
    s_expect(0, NULL, "multi", "first\nsecond line\nthird # kept");
    s_expect(0, NULL, "s3", "");
    s_expect(0, NULL, "s3.max_concurrent_requests", "20");
    s_expect(0, NULL, "s3.addressing_style", "path");
    s_expect(0, NULL, "s3.missing", NULL);
    s_expect(0, NULL, "plain", "x\ncontinued");
    s_expect(0, NULL, "plain.continued", NULL);
    s_expect(0, "p", "orphan", NULL);

    /* a redefinition replaces the whole sub-property block */
    s_config("[default]\ns3 =\n  a = 1\ns3 =\n  b = 2\n");
    s_expect(0, NULL, "s3.a", NULL);
    s_expect(0, NULL, "s3.b", "2");
}
END_TEST

START_TEST(ini_services_section)
{
    s_config("[profile dev]\n"
             "services = local-stack   # shared by profiles\n"
             "region = us-east-1\n"
             "[services local-stack]\n"
             "kinesis =\n"
             "    endpoint_url = http://localhost:4566\n"
             "dynamodb =\n"
             "    endpoint_url = http://localhost:8000 ; comment kept in sub-property\n"
             "[services unused]\n"
             "kinesis =\n"
             "    endpoint_url = http://wrong\n"
             "[profile nested]\n"
             "kinesis =\n"
             "    endpoint_url = http://nested\n"
             "[profile both]\n"
             "services = local-stack\n"
             "kinesis =\n"
             "    endpoint_url = http://nested-loses\n"
             "sqs =\n"
             "    endpoint_url = http://nested-sqs\n");
    s_expect(0, "dev", "services", "local-stack");
    s_expect(0, "dev", "kinesis.endpoint_url", "http://localhost:4566");
    s_expect(0, "dev", "dynamodb.endpoint_url",
             "http://localhost:8000 ; comment kept in sub-property");
    s_expect(0, "dev", "sqs.endpoint_url", NULL);
    /* without a services key, a sub-property of the profile itself */
    s_expect(0, "nested", "kinesis.endpoint_url", "http://nested");
    /* the services section first, then the profile */
    s_expect(0, "both", "kinesis.endpoint_url", "http://localhost:4566");
    s_expect(0, "both", "sqs.endpoint_url", "http://nested-sqs");
    /* a services section is not a profile */
    s_expect(0, "local-stack", "kinesis.endpoint_url", NULL);
}
END_TEST

START_TEST(ini_credentials_file)
{
    s_file("AWS_SHARED_CREDENTIALS_FILE", "[default]\n"
                                          "aws_access_key_id = AKIDEXAMPLE\n"
                                          "[work]\n"
                                          "aws_access_key_id = AKIDWORK\n"
                                          "[profile prefixed]\n"
                                          "aws_access_key_id = never\n"
                                          "[services s]\nkinesis =\n  endpoint_url = x\n");
    s_expect(1, NULL, "aws_access_key_id", "AKIDEXAMPLE");
    s_expect(1, "work", "aws_access_key_id", "AKIDWORK");
    s_expect(1, "prefixed", "aws_access_key_id", NULL);
    s_expect(1, "profile prefixed", "aws_access_key_id", NULL);
    /* the config file is another file */
    s_expect(0, NULL, "aws_access_key_id", NULL);
}
END_TEST

START_TEST(ini_file_locations)
{
    /* missing files */
    setenv("AWS_CONFIG_FILE", "/nonexistent/fanout/config", 1);
    s_expect(0, NULL, "region", NULL);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/fanout/credentials", 1);
    s_expect(1, NULL, "aws_access_key_id", NULL);
    /* a directory is not a file */
    setenv("AWS_CONFIG_FILE", "/tmp", 1);
    s_expect(0, NULL, "region", NULL);
    /* an empty file */
    s_config("");
    s_expect(0, NULL, "region", NULL);

    /* the defaults under $HOME, and "~/" in the variables */
    unsetenv("AWS_CONFIG_FILE");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    char p[128];
    snprintf(p, sizeof p, "%s/.aws", s_home);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/.aws/config", s_home);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("[default]\nregion = home-region-1\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/.aws/credentials", s_home);
    f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("[default]\naws_access_key_id = HOMEKEY\n", f);
    fclose(f);
    s_expect(0, NULL, "region", "home-region-1");
    s_expect(1, NULL, "aws_access_key_id", "HOMEKEY");
    setenv("AWS_CONFIG_FILE", "~/.aws/credentials", 1);
    s_expect(0, NULL, "region", NULL); /* [default] has no region there */
    setenv("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials", 1);
    s_expect(1, NULL, "aws_access_key_id", "HOMEKEY");
    /* no HOME: no default location */
    unsetenv("AWS_CONFIG_FILE");
    unsetenv("HOME");
    s_expect(0, NULL, "region", NULL);
    setenv("HOME", s_home, 1);
}
END_TEST

START_TEST(ini_binary_garbage)
{
    /* NUL bytes and invalid UTF-8 do not derail the reader */
    char path[] = "/tmp/fanout-ep-bin-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    static const char data[] = "\xff\xfe[x\0y]\n[default]\nregion = ok-1\n\0\n[\n]\n=\n";
    ck_assert_int_eq(write(fd, data, sizeof data - 1), (ssize_t)(sizeof data - 1));
    close(fd);
    setenv("AWS_CONFIG_FILE", path, 1);
    s_expect(0, NULL, "region", "ok-1");
    unlink(path);
}
END_TEST

int main(void)
{
    fanout_log_set(FANOUT_LOG_ERROR, 0);
    Suite *s = suite_create("endpoint");

    TCase *t = tcase_create("services");
    tcase_add_checked_fixture(t, s_setup, s_teardown);
    tcase_add_test(t, service_table);
    tcase_add_loop_test(t, partition_of_region, 0,
                        (int)(sizeof s_part_cases / sizeof *s_part_cases));
    tcase_add_test(t, default_endpoints);
    tcase_add_test(t, endpoint_bad_region_refused);
    suite_add_tcase(s, t);

    t = tcase_create("region");
    tcase_add_checked_fixture(t, s_setup, s_teardown);
    tcase_add_test(t, region_resolution_order);
    tcase_add_test(t, region_refused);
    suite_add_tcase(s, t);

    t = tcase_create("overrides");
    tcase_add_checked_fixture(t, s_setup, s_teardown);
    tcase_add_test(t, override_levels);
    tcase_add_test(t, override_ignore_switch);
    tcase_add_test(t, override_profile_and_bad_values);
    suite_add_tcase(s, t);

    t = tcase_create("url");
    tcase_add_loop_test(t, url_split_cases, 0,
                        (int)(sizeof s_split_cases / sizeof *s_split_cases));
    tcase_add_test(t, url_split_limits);
    suite_add_tcase(s, t);

    t = tcase_create("ini");
    tcase_add_checked_fixture(t, s_setup, s_teardown);
    tcase_add_test(t, ini_comments_and_spaces);
    tcase_add_test(t, ini_profiles_and_duplicates);
    tcase_add_test(t, ini_continuations_and_sub_properties);
    tcase_add_test(t, ini_services_section);
    tcase_add_test(t, ini_credentials_file);
    tcase_add_test(t, ini_file_locations);
    tcase_add_test(t, ini_binary_garbage);
    suite_add_tcase(s, t);

    return fanout_check_run(s);
}
