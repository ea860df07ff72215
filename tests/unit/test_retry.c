#include <check.h>

#include "check_main.h"
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "aws/http.h"
#include "common/log.h"
#include "aws/retry.h"

/* ---- classification ---- */

static const struct {
    long status;
    const char *code;
    int transport;
    enum fanout_retry_class want;
} s_classes[] = {
    /* success */
    {200, NULL, 0, FANOUT_RETRY_NONE},
    {202, "", 0, FANOUT_RETRY_NONE},
    {204, NULL, 0, FANOUT_RETRY_NONE},
    /* throttling codes, with the statuses services send them with */
    {400, "ProvisionedThroughputExceededException", 0, FANOUT_RETRY_THROTTLE},
    {400, "ThrottlingException", 0, FANOUT_RETRY_THROTTLE},
    {400, "Throttling", 0, FANOUT_RETRY_THROTTLE},
    {400, "ThrottledException", 0, FANOUT_RETRY_THROTTLE},
    {503, "RequestLimitExceeded", 0, FANOUT_RETRY_THROTTLE},
    {429, "TooManyRequestsException", 0, FANOUT_RETRY_THROTTLE},
    {403, "RequestThrottled", 0, FANOUT_RETRY_THROTTLE},
    {400, "RequestThrottledException", 0, FANOUT_RETRY_THROTTLE},
    {503, "SlowDown", 0, FANOUT_RETRY_THROTTLE},
    {400, "LimitExceededException", 0, FANOUT_RETRY_THROTTLE},
    {400, "KMSThrottlingException", 0, FANOUT_RETRY_THROTTLE},
    {400, "KMSThrottling", 0, FANOUT_RETRY_THROTTLE},
    {429, "Throttled", 0, FANOUT_RETRY_THROTTLE},
    {502, "EC2ThrottledException", 0, FANOUT_RETRY_THROTTLE},
    {400, "TransactionInProgressException", 0, FANOUT_RETRY_THROTTLE},
    {509, "BandwidthLimitExceeded", 0, FANOUT_RETRY_THROTTLE},
    /* throttling by status alone */
    {429, NULL, 0, FANOUT_RETRY_THROTTLE},
    {429, "es_rejected_execution_exception", 0, FANOUT_RETRY_THROTTLE},
    {509, NULL, 0, FANOUT_RETRY_THROTTLE},
    /* per-record codes arrive with the batch's 200, or with no status */
    {200, "ProvisionedThroughputExceededException", 0, FANOUT_RETRY_THROTTLE},
    {200, "InternalFailure", 0, FANOUT_RETRY_TRANSIENT},
    {200, "ServiceUnavailableException", 0, FANOUT_RETRY_TRANSIENT},
    {0, "ProvisionedThroughputExceededException", 0, FANOUT_RETRY_THROTTLE},
    {200, "InvalidParameterValue", 0, FANOUT_RETRY_FATAL},
    {0, "InvalidParameterValue", 0, FANOUT_RETRY_FATAL},
    /* transient */
    {500, NULL, 0, FANOUT_RETRY_TRANSIENT},
    {502, NULL, 0, FANOUT_RETRY_TRANSIENT},
    {503, NULL, 0, FANOUT_RETRY_TRANSIENT},
    {504, NULL, 0, FANOUT_RETRY_TRANSIENT},
    {501, NULL, 0, FANOUT_RETRY_TRANSIENT},
    {599, "SomethingNew", 0, FANOUT_RETRY_TRANSIENT},
    {500, "InternalFailure", 0, FANOUT_RETRY_TRANSIENT},
    {500, "InternalError", 0, FANOUT_RETRY_TRANSIENT},
    {503, "ServiceUnavailable", 0, FANOUT_RETRY_TRANSIENT},
    {503, "ServiceUnavailableException", 0, FANOUT_RETRY_TRANSIENT},
    {400, "RequestTimeout", 0, FANOUT_RETRY_TRANSIENT},
    {408, "RequestTimeoutException", 0, FANOUT_RETRY_TRANSIENT},
    {408, NULL, 0, FANOUT_RETRY_TRANSIENT},
    {400, "PriorRequestNotComplete", 0, FANOUT_RETRY_TRANSIENT},
    {400, "IDPCommunicationError", 0, FANOUT_RETRY_TRANSIENT},
    /* transport errors, whatever the status */
    {0, NULL, FANOUT_HTTP_TIMEOUT, FANOUT_RETRY_TRANSIENT},
    {0, NULL, FANOUT_HTTP_CONNECT, FANOUT_RETRY_TRANSIENT},
    {0, NULL, FANOUT_HTTP_RESET, FANOUT_RETRY_TRANSIENT},
    {200, NULL, FANOUT_HTTP_RESET, FANOUT_RETRY_TRANSIENT},
    {0, NULL, FANOUT_HTTP_OTHER, FANOUT_RETRY_TRANSIENT},
    {0, "Timeout", FANOUT_HTTP_TIMEOUT, FANOUT_RETRY_TRANSIENT},
    {0, NULL, FANOUT_HTTP_TLS, FANOUT_RETRY_FATAL},
    {0, NULL, 42, FANOUT_RETRY_TRANSIENT},
    {0, NULL, 0, FANOUT_RETRY_TRANSIENT},
    /* expired credentials or request */
    {400, "ExpiredToken", 0, FANOUT_RETRY_EXPIRED},
    {403, "ExpiredToken", 0, FANOUT_RETRY_EXPIRED},
    {400, "ExpiredTokenException", 0, FANOUT_RETRY_EXPIRED},
    {403, "RequestExpired", 0, FANOUT_RETRY_EXPIRED},
    /* unknown key, bad signature, access: fatal */
    {403, "InvalidClientTokenId", 0, FANOUT_RETRY_FATAL},
    {400, "UnrecognizedClientException", 0, FANOUT_RETRY_FATAL},
    {403, "InvalidSignatureException", 0, FANOUT_RETRY_FATAL},
    {403, "SignatureDoesNotMatch", 0, FANOUT_RETRY_FATAL},
    {403, "AccessDenied", 0, FANOUT_RETRY_FATAL},
    {400, "AccessDeniedException", 0, FANOUT_RETRY_FATAL},
    /* everything else 4xx, and others */
    {400, "ValidationException", 0, FANOUT_RETRY_FATAL},
    {400, "ResourceNotFoundException", 0, FANOUT_RETRY_FATAL},
    {404, NULL, 0, FANOUT_RETRY_FATAL},
    {413, "RequestEntityTooLargeException", 0, FANOUT_RETRY_FATAL},
    {400, NULL, 0, FANOUT_RETRY_FATAL},
    {400, "", 0, FANOUT_RETRY_FATAL},
    {301, NULL, 0, FANOUT_RETRY_FATAL},
    {100, NULL, 0, FANOUT_RETRY_FATAL},
    {600, NULL, 0, FANOUT_RETRY_FATAL},
    {-1, NULL, 0, FANOUT_RETRY_FATAL},
    /* codes are case-sensitive */
    {400, "throttlingexception", 0, FANOUT_RETRY_FATAL},
};

START_TEST(classify_table)
{
    enum fanout_retry_class got = fanout_retry_classify(
        s_classes[_i].status, s_classes[_i].code, s_classes[_i].transport);
    ck_assert_msg(got == s_classes[_i].want,
                  "status %ld code %s transport %d: got %d, want %d", s_classes[_i].status,
                  s_classes[_i].code ? s_classes[_i].code : "(null)",
                  s_classes[_i].transport, (int)got, (int)s_classes[_i].want);
}
END_TEST

/* ---- delay ---- */

static uint64_t s_ceiling(const struct fanout_retry_policy *p, unsigned attempt)
{
    uint64_t c = p->base_ms;
    for (unsigned i = 1; i < attempt && c < p->cap_ms; i++)
        c *= 2;
    return c < p->cap_ms ? c : p->cap_ms;
}

START_TEST(delay_bounds_many_seeds)
{
    struct fanout_retry_policy p = {5, 50, 5000, 10000};
    for (unsigned attempt = 1; attempt <= 40; attempt++) {
        uint64_t ceiling = s_ceiling(&p, attempt);
        unsigned lo = ~0u, hi = 0;
        for (unsigned s = 1; s <= 2000; s++) {
            unsigned seed = s * 2654435761u;
            unsigned d = fanout_retry_delay_ms(&p, attempt, &seed);
            ck_assert_msg(d <= ceiling, "attempt %u: %u > %llu", attempt, d,
                          (unsigned long long)ceiling);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* full jitter: the whole range is used */
        ck_assert_msg(lo <= ceiling / 20, "attempt %u: lowest %u", attempt, lo);
        ck_assert_msg(hi >= ceiling - ceiling / 20, "attempt %u: highest %u", attempt, hi);
    }
}
END_TEST

START_TEST(delay_cap_and_overflow)
{
    struct fanout_retry_policy p = {5, 100, 250, 10000};
    unsigned seed = 7;
    for (int i = 0; i < 1000; i++) {
        ck_assert_uint_le(fanout_retry_delay_ms(&p, 1, &seed), 100);
        ck_assert_uint_le(fanout_retry_delay_ms(&p, 2, &seed), 200);
        ck_assert_uint_le(fanout_retry_delay_ms(&p, 3, &seed), 250);
        ck_assert_uint_le(fanout_retry_delay_ms(&p, 64, &seed), 250);
        ck_assert_uint_le(fanout_retry_delay_ms(&p, ~0u, &seed), 250);
    }
    /* doubling a large base does not wrap around */
    struct fanout_retry_policy big = {5, 0x80000000u, ~0u, 10000};
    int above = 0;
    for (unsigned a = 1; a <= 40; a++) {
        unsigned d = fanout_retry_delay_ms(&big, a, &seed);
        above += d > 0x80000000u;
    }
    ck_assert_int_gt(above, 0);
    /* attempt 0 counts as the first */
    ck_assert_uint_le(fanout_retry_delay_ms(&p, 0, &seed), 100);
    /* zero base or cap: no delay */
    struct fanout_retry_policy zero = {5, 0, 0, 10000};
    ck_assert_uint_eq(fanout_retry_delay_ms(&zero, 3, &seed), 0);
    ck_assert_uint_eq(fanout_retry_delay_ms(NULL, 3, &seed), 0);
    /* no seed: the middle of the range */
    ck_assert_uint_eq(fanout_retry_delay_ms(&p, 2, NULL), 100);
}
END_TEST

START_TEST(delay_repeatable)
{
    struct fanout_retry_policy p = {5, 50, 5000, 10000};
    unsigned a = 12345, b = 12345;
    for (unsigned i = 1; i <= 20; i++)
        ck_assert_uint_eq(fanout_retry_delay_ms(&p, i, &a),
                          fanout_retry_delay_ms(&p, i, &b));
}
END_TEST

/* ---- environment ---- */

static const char *const s_env_vars[] = {
    "FANOUT_AWS_MAX_ATTEMPTS", "FANOUT_AWS_RETRY_BASE_MS", "FANOUT_AWS_RETRY_CAP_MS",
    "FANOUT_AWS_TIMEOUT_MS"};

static void s_env_clear(void)
{
    for (size_t i = 0; i < sizeof s_env_vars / sizeof *s_env_vars; i++)
        unsetenv(s_env_vars[i]);
}

START_TEST(env_defaults_and_values)
{
    struct fanout_retry_policy p;
    char err[256] = "";
    ck_assert_int_eq(fanout_retry_policy_from_env(&p, err, sizeof err), 0);
    ck_assert_uint_eq(p.max_attempts, 5);
    ck_assert_uint_eq(p.base_ms, 50);
    ck_assert_uint_eq(p.cap_ms, 5000);
    ck_assert_uint_eq(p.request_timeout_ms, 10000);

    setenv("FANOUT_AWS_MAX_ATTEMPTS", "20", 1);
    setenv("FANOUT_AWS_RETRY_BASE_MS", "0", 1);
    setenv("FANOUT_AWS_RETRY_CAP_MS", "300000", 1);
    setenv("FANOUT_AWS_TIMEOUT_MS", "250", 1);
    ck_assert_int_eq(fanout_retry_policy_from_env(&p, err, sizeof err), 0);
    ck_assert_uint_eq(p.max_attempts, 20);
    ck_assert_uint_eq(p.base_ms, 0);
    ck_assert_uint_eq(p.cap_ms, 300000);
    ck_assert_uint_eq(p.request_timeout_ms, 250);

    /* an empty variable is unset */
    setenv("FANOUT_AWS_MAX_ATTEMPTS", "", 1);
    ck_assert_int_eq(fanout_retry_policy_from_env(&p, err, sizeof err), 0);
    ck_assert_uint_eq(p.max_attempts, 5);
    setenv("FANOUT_AWS_MAX_ATTEMPTS", "1", 1);
    ck_assert_int_eq(fanout_retry_policy_from_env(&p, err, sizeof err), 0);
    ck_assert_uint_eq(p.max_attempts, 1);
}
END_TEST

static const struct {
    const char *var, *value, *range;
} s_bad_env[] = {
    {"FANOUT_AWS_MAX_ATTEMPTS", "0", "from 1 to 20"},
    {"FANOUT_AWS_MAX_ATTEMPTS", "21", "from 1 to 20"},
    {"FANOUT_AWS_MAX_ATTEMPTS", "-1", "from 1 to 20"},
    {"FANOUT_AWS_MAX_ATTEMPTS", "five", "from 1 to 20"},
    {"FANOUT_AWS_MAX_ATTEMPTS", " 5", "from 1 to 20"},
    {"FANOUT_AWS_MAX_ATTEMPTS", "5 ", "from 1 to 20"},
    {"FANOUT_AWS_MAX_ATTEMPTS", "+5", "from 1 to 20"},
    {"FANOUT_AWS_MAX_ATTEMPTS", "5.0", "from 1 to 20"},
    {"FANOUT_AWS_MAX_ATTEMPTS", "0x5", "from 1 to 20"},
    {"FANOUT_AWS_MAX_ATTEMPTS", "99999999999999999999999", "from 1 to 20"},
    {"FANOUT_AWS_RETRY_BASE_MS", "1e3", "from 0 to 60000"},
    {"FANOUT_AWS_RETRY_BASE_MS", "60001", "from 0 to 60000"},
    {"FANOUT_AWS_RETRY_CAP_MS", "300001", "from 0 to 300000"},
    {"FANOUT_AWS_RETRY_CAP_MS", "4294967296", "from 0 to 300000"},
    {"FANOUT_AWS_TIMEOUT_MS", "99", "from 100 to 900000"},
    {"FANOUT_AWS_TIMEOUT_MS", "10s", "from 100 to 900000"},
};

START_TEST(env_errors_named)
{
    struct fanout_retry_policy p;
    char err[256] = "";
    setenv(s_bad_env[_i].var, s_bad_env[_i].value, 1);
    ck_assert_int_eq(fanout_retry_policy_from_env(&p, err, sizeof err), -1);
    ck_assert_msg(strstr(err, s_bad_env[_i].var) && strstr(err, s_bad_env[_i].range),
                  "%s=%s: %s", s_bad_env[_i].var, s_bad_env[_i].value, err);
}
END_TEST

START_TEST(env_cap_below_base)
{
    struct fanout_retry_policy p;
    char err[256] = "";
    setenv("FANOUT_AWS_RETRY_BASE_MS", "500", 1);
    setenv("FANOUT_AWS_RETRY_CAP_MS", "100", 1);
    ck_assert_int_eq(fanout_retry_policy_from_env(&p, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "FANOUT_AWS_RETRY_CAP_MS") && strstr(err, "BASE"), "%s", err);
    /* a value shown in the message is cut and made printable */
    setenv("FANOUT_AWS_RETRY_BASE_MS", "12\n34567890123456789012345678901234567890", 1);
    ck_assert_int_eq(fanout_retry_policy_from_env(&p, err, sizeof err), -1);
    ck_assert_msg(!strchr(err, '\n') && strstr(err, "..."), "%s", err);
    /* no room for a message */
    ck_assert_int_eq(fanout_retry_policy_from_env(&p, NULL, 0), -1);
}
END_TEST

/* ---- error bodies ---- */

struct s_parsed {
    char code[128];
    char message[512];
};

/* The body is copied to a buffer of exactly `len` bytes with no NUL after
 * it, so a read past the end shows under valgrind and ASan. */
static struct s_parsed s_parse_n(int protocol, const char *header, const char *body,
                                 size_t len)
{
    struct s_parsed r;
    memset(&r, 'X', sizeof r);
    uint8_t *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    if (len)
        memcpy(copy, body, len);
    fanout_aws_parse_error(protocol, header, body ? copy : NULL, len, r.code, sizeof r.code,
                           r.message, sizeof r.message);
    free(copy);
    return r;
}

static struct s_parsed s_parse(int protocol, const char *header, const char *body)
{
    return s_parse_n(protocol, header, body, body ? strlen(body) : 0);
}

#define EXPECT(r, c, m)                                                                    \
    do {                                                                                   \
        ck_assert_str_eq((r).code, c);                                                     \
        ck_assert_str_eq((r).message, m);                                                  \
    } while (0)

START_TEST(json_error_shapes)
{
    struct s_parsed r;
    r = s_parse(FANOUT_AWS_JSON, NULL,
                "{\"__type\":\"com.amazonaws.kinesis.v20131202#"
                "ProvisionedThroughputExceededException\",\"message\":\"Rate exceeded\"}");
    EXPECT(r, "ProvisionedThroughputExceededException", "Rate exceeded");
    r = s_parse(
        FANOUT_AWS_JSON, NULL,
        "{\"__type\":\"ResourceNotFoundException\",\"Message\":\"Stream x not found\"}");
    EXPECT(r, "ResourceNotFoundException", "Stream x not found");
    /* anything after ':' goes, before and after a '#' */
    r = s_parse(FANOUT_AWS_JSON, NULL,
                "{\"__type\":\"ValidationException:http://internal.amazon.com/coral/\"}");
    EXPECT(r, "ValidationException", "");
    r = s_parse(
        FANOUT_AWS_JSON, NULL,
        "{\"__type\":\"com.amazon.coral.validate#ValidationException:http://x#y\"}");
    EXPECT(r, "ValidationException", "");
    /* "message" is preferred to "Message" */
    r = s_parse(FANOUT_AWS_JSON, NULL,
                "{\"__type\":\"A\",\"Message\":\"upper\",\"message\":\"lower\"}");
    EXPECT(r, "A", "lower");
    /* code / Code in the body */
    r = s_parse(FANOUT_AWS_JSON, NULL,
                "{\"code\":\"AccessDeniedException\",\"message\":\"m\"}");
    EXPECT(r, "AccessDeniedException", "m");
    r = s_parse(FANOUT_AWS_JSON, NULL, "{\"Code\":\"Throttling\"}");
    EXPECT(r, "Throttling", "");
    /* SQS over JSON */
    r = s_parse(FANOUT_AWS_JSON, NULL,
                " \n{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\","
                "\"message\":\"The specified queue does not exist.\"}\n");
    EXPECT(r, "QueueDoesNotExist", "The specified queue does not exist.");
    /* a non-string code is not a code */
    r = s_parse(FANOUT_AWS_JSON, NULL, "{\"__type\":42,\"message\":\"m\"}");
    EXPECT(r, "", "m");
    /* an empty code after clean-up */
    r = s_parse(FANOUT_AWS_JSON, NULL, "{\"__type\":\"ns#\",\"message\":\"m\"}");
    EXPECT(r, "", "m");
}
END_TEST

START_TEST(rest_json_header)
{
    struct s_parsed r;
    /* the header wins for JSON protocols, cleaned the same way */
    r = s_parse(
        FANOUT_AWS_JSON,
        "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazon.coral/",
        "{\"Type\":\"User\",\"Message\":\"Function not found: arn:aws:lambda:x\"}");
    EXPECT(r, "ResourceNotFoundException", "Function not found: arn:aws:lambda:x");
    r = s_parse(FANOUT_AWS_JSON, "aws.protocoltests#FooError,Other",
                "{\"__type\":\"Ignored\",\"message\":\"m\"}");
    EXPECT(r, "FooError", "m");
    r = s_parse(FANOUT_AWS_JSON, "  TooManyRequestsException  ", "{\"message\":\"Rate\"}");
    EXPECT(r, "TooManyRequestsException", "Rate");
    /* an empty header gives way to the body */
    r = s_parse(FANOUT_AWS_JSON, "", "{\"__type\":\"X#Body\"}");
    EXPECT(r, "Body", "");
    /* no body at all: the header alone */
    r = s_parse(FANOUT_AWS_JSON, "ServiceUnavailableException", NULL);
    EXPECT(r, "ServiceUnavailableException", "");
    r = s_parse(FANOUT_AWS_JSON, "ServiceUnavailableException", "");
    EXPECT(r, "ServiceUnavailableException", "");
    /* a header with stray bytes is not a code */
    r = s_parse(FANOUT_AWS_JSON, "Bad\x01Code", NULL);
    EXPECT(r, "", "");
}
END_TEST

START_TEST(query_xml_shapes)
{
    struct s_parsed r;
    r = s_parse(FANOUT_AWS_QUERY, NULL,
                "<?xml version=\"1.0\"?>\n"
                "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\n"
                "  <Error>\n    <Type>Sender</Type>\n    <Code>Throttled</Code>\n"
                "    <Message>Rate exceeded</Message>\n  </Error>\n"
                "  <RequestId>abc</RequestId>\n</ErrorResponse>\n");
    EXPECT(r, "Throttled", "Rate exceeded");
    /* EC2 style: <Errors><Error> */
    r = s_parse(FANOUT_AWS_QUERY, NULL,
                "<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
                "<Message>Request limit exceeded.</Message></Error></Errors>"
                "<RequestID>x</RequestID></Response>");
    EXPECT(r, "RequestLimitExceeded", "Request limit exceeded.");
    /* S3 style, attributes on Error, entities */
    r = s_parse(
        FANOUT_AWS_QUERY, NULL,
        "<Error id=\"1\"><Code>SlowDown</Code><Message>a &amp; b &lt;c&gt; "
        "&quot;d&quot; &apos;e&apos; &#65;&#x42; &#x20AC; &bogus; &#xD800; &</Message>"
        "</Error>");
    EXPECT(r, "SlowDown", "a & b <c> \"d\" 'e' AB \xe2\x82\xac &bogus; ? &");
    /* CDATA and markup inside the text */
    r = s_parse(
        FANOUT_AWS_QUERY, NULL,
        "<ErrorResponse><Error><Code> ExpiredToken </Code><Message><![CDATA[x < y]]>"
        " and <b>bold</b></Message></Error></ErrorResponse>");
    EXPECT(r, "ExpiredToken", "x < y and bold");
    /* the first Error only; Code outside an Error element is found too */
    r = s_parse(FANOUT_AWS_QUERY, NULL,
                "<Other><Code>Outer</Code><Message>m</Message></Other>");
    EXPECT(r, "Outer", "m");
    /* empty elements */
    r = s_parse(FANOUT_AWS_QUERY, "HeaderCode", "<Error><Code/><Message/></Error>");
    EXPECT(r, "HeaderCode", "<Error><Code/><Message/></Error>");
    /* the body's code wins over the header for Query */
    r = s_parse(FANOUT_AWS_QUERY, "HeaderCode", "<Error><Code>BodyCode</Code></Error>");
    EXPECT(r, "BodyCode", "");
    /* <Errors> alone is not an <Error> */
    r = s_parse(FANOUT_AWS_QUERY, NULL, "<Errors><Code>C</Code></Errors>");
    EXPECT(r, "C", "");
    /* control characters in the message become spaces */
    r = s_parse(FANOUT_AWS_QUERY, NULL,
                "<Error><Code>C</Code><Message>line1\nline2\tend&#7;</Message></Error>");
    EXPECT(r, "C", "line1 line2 end");
}
END_TEST

START_TEST(opensearch_shapes)
{
    struct s_parsed r;
    r = s_parse(
        FANOUT_AWS_REST, NULL,
        "{\"error\":{\"root_cause\":[{\"type\":\"x\",\"reason\":\"y\"}],"
        "\"type\":\"mapper_parsing_exception\",\"reason\":\"failed to parse field\"},"
        "\"status\":400}");
    EXPECT(r, "mapper_parsing_exception", "failed to parse field");
    r = s_parse(FANOUT_AWS_REST, NULL,
                "{\"error\":\"IndexMissingException[[logs] missing]\",\"status\":404}");
    EXPECT(r, "", "IndexMissingException[[logs] missing]");
    /* the service front's own errors */
    r = s_parse(FANOUT_AWS_REST, "AccessDeniedException",
                "{\"Message\":\"User: anonymous is not authorized\"}");
    EXPECT(r, "AccessDeniedException", "User: anonymous is not authorized");
    r = s_parse(FANOUT_AWS_REST, NULL,
                "{\"message\":\"The security token included in the "
                "request is expired\"}");
    EXPECT(r, "", "The security token included in the request is expired");
    /* an error object without a type */
    r = s_parse(FANOUT_AWS_REST, "H", "{\"error\":{\"reason\":\"r\"}}");
    EXPECT(r, "H", "r");
    /* not an object */
    r = s_parse(FANOUT_AWS_REST, NULL, "{\"error\":[1,2]}");
    EXPECT(r, "", "{\"error\":[1,2]}");
}
END_TEST

START_TEST(malformed_bodies)
{
    struct s_parsed r;
    /* truncated JSON: the header's code, and the start of the body */
    r = s_parse(FANOUT_AWS_JSON, "ThrottlingException",
                "{\"__type\":\"com.amazon#Throttling");
    EXPECT(r, "ThrottlingException", "{\"__type\":\"com.amazon#Throttling");
    r = s_parse(FANOUT_AWS_JSON, NULL, "{");
    EXPECT(r, "", "{");
    r = s_parse(FANOUT_AWS_JSON, NULL, "[\"not\",\"an\",\"object\"]");
    EXPECT(r, "", "[\"not\",\"an\",\"object\"]");
    r = s_parse(FANOUT_AWS_JSON, NULL, "{\"a\":1} trailing");
    EXPECT(r, "", "{\"a\":1} trailing");
    r = s_parse(FANOUT_AWS_JSON, NULL, "{\"other\":1}");
    EXPECT(r, "", "{\"other\":1}");
    /* an HTML page from a load balancer: white space folded */
    r = s_parse(FANOUT_AWS_JSON, NULL,
                "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n\r\n</html>\r\n");
    EXPECT(r, "", "<html> <head><title>502 Bad Gateway</title></head> </html>");
    /* plain text */
    r = s_parse(FANOUT_AWS_REST, NULL, "  Forbidden\n");
    EXPECT(r, "", "Forbidden");
    /* truncated XML: a cut code is not used, a cut message is */
    r = s_parse(FANOUT_AWS_QUERY, "Fallback", "<ErrorResponse><Error><Code>Throttl");
    EXPECT(r, "Fallback", "<ErrorResponse><Error><Code>Throttl");
    r = s_parse(FANOUT_AWS_QUERY, NULL,
                "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exc");
    EXPECT(r, "Throttling", "Rate exc");
    r = s_parse(FANOUT_AWS_QUERY, NULL, "<Error");
    EXPECT(r, "", "<Error");
    r = s_parse(FANOUT_AWS_QUERY, NULL, "<Error><Code");
    EXPECT(r, "", "<Error><Code");
    r = s_parse(FANOUT_AWS_QUERY, NULL, "<Error><Code>A</Code");
    EXPECT(r, "", "<Error><Code>A</Code");
    r = s_parse(FANOUT_AWS_QUERY, NULL, "<Error><Message>&#x1");
    EXPECT(r, "", "&#x1");
    r = s_parse(FANOUT_AWS_QUERY, NULL, "<Error><Message><![CDATA[abc");
    EXPECT(r, "", "abc");
    /* nothing */
    r = s_parse(FANOUT_AWS_JSON, NULL, NULL);
    EXPECT(r, "", "");
    r = s_parse(FANOUT_AWS_JSON, NULL, "   \n ");
    EXPECT(r, "", "");
    /* an unknown protocol reads like the others */
    r = s_parse(99, NULL, "{\"__type\":\"A#B\"}");
    EXPECT(r, "B", "");
}
END_TEST

START_TEST(never_past_len)
{
    /* the length, not a NUL, ends the body */
    const char *body = "{\"__type\":\"Short\"}{\"__type\":\"Long\"}";
    struct s_parsed r = s_parse_n(FANOUT_AWS_JSON, NULL, body, 18);
    EXPECT(r, "Short", "");
    const char *xml = "<Error><Code>AB</Code><Message>xyz</Message></Error>";
    r = s_parse_n(FANOUT_AWS_QUERY, NULL, xml, 22);
    EXPECT(r, "AB", "");
    /* every prefix of several bodies: no crash, no read past the end */
    static const char *const bodies[] = {
        "{\"error\":{\"type\":\"t\",\"reason\":\"r\"},\"status\":400}",
        "<ErrorResponse><Error><Code>C&amp;</Code><Message>M&#x20AC;&#65;<![CDATA[z]]>"
        "</Message></Error></ErrorResponse>",
        "{\"__type\":\"a#b:c\",\"message\":\"\\u00e9\\ud83d\\ude00\"}",
    };
    for (size_t b = 0; b < sizeof bodies / sizeof *bodies; b++)
        for (size_t n = 0; n <= strlen(bodies[b]); n++) {
            r = s_parse_n(FANOUT_AWS_JSON, NULL, bodies[b], n);
            ck_assert(memchr(r.code, '\0', sizeof r.code));
            ck_assert(memchr(r.message, '\0', sizeof r.message));
            r = s_parse_n(FANOUT_AWS_QUERY, "H", bodies[b], n);
            ck_assert(memchr(r.message, '\0', sizeof r.message));
        }
}
END_TEST

START_TEST(small_buffers_and_utf8)
{
    char code[6], message[8];
    const char *body =
        "{\"__type\":\"ThrottlingException\",\"message\":\"abc\\u00e9\\u00e9\"}";
    fanout_aws_parse_error(FANOUT_AWS_JSON, NULL, (const uint8_t *)body, strlen(body), code,
                           sizeof code, message, sizeof message);
    ck_assert_str_eq(code, "Throt");
    /* "abcéé" is 7 bytes; 7 fit, but "abcé" + half an é would not be UTF-8 */
    ck_assert_str_eq(message, "abc\xc3\xa9\xc3\xa9");
    char m6[6];
    fanout_aws_parse_error(FANOUT_AWS_JSON, NULL, (const uint8_t *)body, strlen(body), code,
                           sizeof code, m6, sizeof m6);
    ck_assert_str_eq(m6, "abc\xc3\xa9");
    char m5[5];
    fanout_aws_parse_error(FANOUT_AWS_JSON, NULL, (const uint8_t *)body, strlen(body), code,
                           sizeof code, m5, sizeof m5);
    ck_assert_str_eq(m5, "abc");
    /* a 4-byte character cut after 2 bytes */
    const char *emoji = "{\"message\":\"ab\\ud83d\\ude00\"}";
    fanout_aws_parse_error(FANOUT_AWS_JSON, NULL, (const uint8_t *)emoji, strlen(emoji),
                           code, sizeof code, m5, sizeof m5);
    ck_assert_str_eq(m5, "ab");
    /* zero-length or missing outputs are left alone */
    fanout_aws_parse_error(FANOUT_AWS_JSON, "H", (const uint8_t *)body, strlen(body), NULL,
                           0, NULL, 0);
    char one[1] = {'Z'};
    fanout_aws_parse_error(FANOUT_AWS_JSON, "H", (const uint8_t *)body, strlen(body), one,
                           1, one, 0);
    ck_assert_int_eq(one[0], '\0');
    /* invalid UTF-8 in an XML message shows as '?' */
    struct s_parsed r = s_parse(FANOUT_AWS_QUERY, NULL,
                                "<Error><Message>bad \xff\xfe bytes</Message></Error>");
    EXPECT(r, "", "bad ?? bytes");
    /* a long unreadable body: a bounded snippet */
    char big[3000];
    memset(big, 'x', sizeof big);
    r = s_parse_n(FANOUT_AWS_REST, NULL, big, sizeof big);
    ck_assert_uint_eq(strlen(r.message), 200);
}
END_TEST

int main(void)
{
    fanout_log_set(FANOUT_LOG_ERROR, 0);
    Suite *s = suite_create("retry");

    TCase *t = tcase_create("classify");
    tcase_add_loop_test(t, classify_table, 0, (int)(sizeof s_classes / sizeof *s_classes));
    suite_add_tcase(s, t);

    t = tcase_create("delay");
    tcase_add_test(t, delay_bounds_many_seeds);
    tcase_add_test(t, delay_cap_and_overflow);
    tcase_add_test(t, delay_repeatable);
    suite_add_tcase(s, t);

    t = tcase_create("env");
    tcase_add_checked_fixture(t, s_env_clear, s_env_clear);
    tcase_add_test(t, env_defaults_and_values);
    tcase_add_loop_test(t, env_errors_named, 0,
                        (int)(sizeof s_bad_env / sizeof *s_bad_env));
    tcase_add_test(t, env_cap_below_base);
    suite_add_tcase(s, t);

    t = tcase_create("errors");
    tcase_add_test(t, json_error_shapes);
    tcase_add_test(t, rest_json_header);
    tcase_add_test(t, query_xml_shapes);
    tcase_add_test(t, opensearch_shapes);
    tcase_add_test(t, malformed_bodies);
    tcase_add_test(t, never_past_len);
    tcase_add_test(t, small_buffers_and_utf8);
    suite_add_tcase(s, t);

    return fanout_check_run(s);
}
