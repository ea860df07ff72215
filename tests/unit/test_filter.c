/* Event patterns (engine/core/filter.c): the semantics checked case by case
 * against the examples of the AWS documentation ("Control which events
 * Lambda sends to your function", "Using event filtering with a Kinesis
 * event source", "... with a DynamoDB event source", EventBridge's
 * "Content filtering in Amazon EventBridge event patterns" and "Comparison
 * operators for use in event patterns"), then numbers, nesting, arrays,
 * missing fields, non-JSON data, each compile error with its path, and the
 * record views built from real events. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "common/util.h"
#include "core/event.h"
#include "core/filter.h"
#include "core/mapping.h"

static struct fanout_filter *s_compile(const char *pattern, char *err, size_t len)
{
    json_error_t je;
    json_t *p = json_loads(pattern, JSON_DECODE_ANY, &je);
    ck_assert_msg(p, "test pattern not JSON: %s: %s", pattern, je.text);
    struct fanout_filter *f = fanout_filter_compile(p, err, len);
    json_decref(p);
    return f;
}

/* 1 when `event` (JSON) matches `pattern`, 0 when not. */
static int s_match(const char *pattern, const char *event)
{
    char err[512] = "";
    struct fanout_filter *f = s_compile(pattern, err, sizeof err);
    ck_assert_msg(f, "pattern refused: %s: %s", pattern, err);
    json_error_t je;
    json_t *e = json_loads(event, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &je);
    ck_assert_msg(e, "test event not JSON: %s: %s", event, je.text);
    int r = fanout_filter_match(f, e, 1);
    json_decref(e);
    fanout_filter_free(f);
    return r;
}

#define MATCH(p, e)    ck_assert_msg(s_match(p, e) == 1, "%s should match %s", p, e)
#define NO_MATCH(p, e) ck_assert_msg(s_match(p, e) == 0, "%s should not match %s", p, e)

/* The pattern is refused with exactly `want`. */
static void s_refused(const char *pattern, const char *want)
{
    char err[512] = "";
    struct fanout_filter *f = s_compile(pattern, err, sizeof err);
    ck_assert_msg(!f, "pattern accepted: %s", pattern);
    ck_assert_str_eq(err, want);
}

/* ---- the AWS documentation's examples ----------------------------------- */

START_TEST(doc_kinesis_data_order_type)
{
    /* Lambda, Kinesis: records {"record": 12345, "order": {"type": "buy",
     * "stock": "ANYCO", "quantity": 1000}} and the pattern
     * { "data" : { "order" : { "type" : [ "buy" ] } } } */
    const char *p = "{ \"data\" : { \"order\" : { \"type\" : [ \"buy\" ] } } }";
    MATCH(p,
          "{\"partitionKey\":\"1\",\"data\":{\"record\":12345,\"order\":{\"type\":\"buy\","
          "\"stock\":\"ANYCO\",\"quantity\":1000}}}");
    NO_MATCH(p, "{\"partitionKey\":\"1\",\"data\":{\"record\":12345,\"order\":{\"type\":"
                "\"sell\",\"stock\":\"ANYCO\",\"quantity\":1000}}}");
}
END_TEST

START_TEST(doc_dynamodb_keys_and_event_name)
{
    /* Lambda, DynamoDB: { "dynamodb": { "Keys": { "CustomerName": { "S": [
     * "AnyCompany Industries" ] } } } } and { "eventName": ["INSERT"] } */
    const char *rec = "{\"eventName\":\"INSERT\",\"dynamodb\":{\"Keys\":{\"CustomerName\":"
                      "{\"S\":\"AnyCompany Industries\"}},\"NewImage\":{\"AccountManager\":"
                      "{\"S\":\"Pat Candella\"},\"PaymentTerms\":{\"S\":\"60 days\"}}}}";
    MATCH("{ \"dynamodb\": { \"Keys\": { \"CustomerName\": { \"S\": [ \"AnyCompany "
          "Industries\" ] } } } }",
          rec);
    MATCH("{ \"eventName\": [\"INSERT\"] }", rec);
    NO_MATCH("{ \"eventName\": [\"REMOVE\"] }", rec);
    /* { "dynamodb": { "NewImage": { "AccountManager": { "S": [ { "exists":
     * false } ] } } } }: absent attributes only */
    NO_MATCH(
        "{\"dynamodb\":{\"NewImage\":{\"AccountManager\":{\"S\":[{\"exists\":false}]}}}}",
        rec);
    MATCH("{\"dynamodb\":{\"NewImage\":{\"Phone\":{\"S\":[{\"exists\":false}]}}}}", rec);
}
END_TEST

START_TEST(doc_rule_syntax_table)
{
    /* Lambda's "Filter rule syntax" table, one row each. */
    /* Null: "UserID": [ null ] */
    MATCH("{\"UserID\":[null]}", "{\"UserID\":null}");
    NO_MATCH("{\"UserID\":[null]}", "{\"UserID\":\"\"}");
    NO_MATCH("{\"UserID\":[null]}", "{}");
    /* Empty: "LastName": [""] */
    MATCH("{\"LastName\":[\"\"]}", "{\"LastName\":\"\"}");
    NO_MATCH("{\"LastName\":[\"\"]}", "{\"LastName\":null}");
    /* Equals: "Name": [ "Alice" ] */
    MATCH("{\"Name\":[\"Alice\"]}", "{\"Name\":\"Alice\"}");
    NO_MATCH("{\"Name\":[\"Alice\"]}", "{\"Name\":\"alice\"}");
    /* Equals (ignore case): "Name": [ { "equals-ignore-case": "alice" } ] */
    MATCH("{\"Name\":[{\"equals-ignore-case\":\"alice\"}]}", "{\"Name\":\"ALICE\"}");
    NO_MATCH("{\"Name\":[{\"equals-ignore-case\":\"alice\"}]}", "{\"Name\":\"alicia\"}");
    /* And: "Location": [ "New York" ], "Day": ["Monday"] */
    const char *and = "{\"Location\":[\"New York\"],\"Day\":[\"Monday\"]}";
    MATCH(and, "{\"Location\":\"New York\",\"Day\":\"Monday\"}");
    NO_MATCH(and, "{\"Location\":\"New York\",\"Day\":\"Tuesday\"}");
    /* Or: "PaymentType": [ "Credit", "Debit"] */
    MATCH("{\"PaymentType\":[\"Credit\",\"Debit\"]}", "{\"PaymentType\":\"Debit\"}");
    NO_MATCH("{\"PaymentType\":[\"Credit\",\"Debit\"]}", "{\"PaymentType\":\"Cash\"}");
    /* Or (multiple fields): "$or": [ { "Location": [ "New York" ] }, {
     * "Day": [ "Monday" ] } ] */
    const char * or = "{\"$or\":[{\"Location\":[\"New York\"]},{\"Day\":[\"Monday\"]}]}";
    MATCH(or, "{\"Location\":\"New York\",\"Day\":\"Sunday\"}");
    MATCH(or, "{\"Location\":\"Boston\",\"Day\":\"Monday\"}");
    NO_MATCH(or, "{\"Location\":\"Boston\",\"Day\":\"Sunday\"}");
    /* Not: "Weather": [ { "anything-but": [ "Raining" ] } ] */
    MATCH("{\"Weather\":[{\"anything-but\":[\"Raining\"]}]}", "{\"Weather\":\"Sunny\"}");
    NO_MATCH("{\"Weather\":[{\"anything-but\":[\"Raining\"]}]}",
             "{\"Weather\":\"Raining\"}");
    /* Numeric (equals): "Price": [ { "numeric": [ "=", 100 ] } ] */
    MATCH("{\"Price\":[{\"numeric\":[\"=\",100]}]}", "{\"Price\":100}");
    NO_MATCH("{\"Price\":[{\"numeric\":[\"=\",100]}]}", "{\"Price\":100.5}");
    /* Numeric (range): "Price": [ { "numeric": [ ">", 10, "<=", 20 ] } ] */
    const char *range = "{\"Price\":[{\"numeric\":[\">\",10,\"<=\",20]}]}";
    NO_MATCH(range, "{\"Price\":10}");
    MATCH(range, "{\"Price\":10.000001}");
    MATCH(range, "{\"Price\":20}");
    NO_MATCH(range, "{\"Price\":20.5}");
    /* Exists: "ProductName": [ { "exists": true } ] */
    MATCH("{\"ProductName\":[{\"exists\":true}]}", "{\"ProductName\":\"x\"}");
    NO_MATCH("{\"ProductName\":[{\"exists\":true}]}", "{\"Other\":\"x\"}");
    /* Does not exist: "ProductName": [ { "exists": false } ] */
    MATCH("{\"ProductName\":[{\"exists\":false}]}", "{\"Other\":\"x\"}");
    NO_MATCH("{\"ProductName\":[{\"exists\":false}]}", "{\"ProductName\":\"x\"}");
    /* Begins with: "Region": [ {"prefix": "us-" } ] */
    MATCH("{\"Region\":[{\"prefix\":\"us-\"}]}", "{\"Region\":\"us-east-1\"}");
    NO_MATCH("{\"Region\":[{\"prefix\":\"us-\"}]}", "{\"Region\":\"eu-west-1\"}");
    /* Ends with: "FileName": [ { "suffix": ".png" } ] */
    MATCH("{\"FileName\":[{\"suffix\":\".png\"}]}", "{\"FileName\":\"a/b.png\"}");
    NO_MATCH("{\"FileName\":[{\"suffix\":\".png\"}]}", "{\"FileName\":\"a/b.PNG\"}");
}
END_TEST

START_TEST(doc_eventbridge_string_operators)
{
    /* {"service" : [{ "prefix": { "equals-ignore-case": "eventb" }}]}: "EventB",
     * "EVENTB", "eventb" */
    const char *pic = "{\"service\":[{\"prefix\":{\"equals-ignore-case\":\"eventb\"}}]}";
    MATCH(pic, "{\"service\":\"EventBridge\"}");
    MATCH(pic, "{\"service\":\"EVENTBRIDGE\"}");
    NO_MATCH(pic, "{\"service\":\"Event\"}");
    /* {"service" : [{ "suffix": { "equals-ignore-case": "tbridge" }}]} */
    const char *sic = "{\"service\":[{\"suffix\":{\"equals-ignore-case\":\"tbridge\"}}]}";
    MATCH(sic, "{\"service\":\"EventBridge\"}");
    MATCH(sic, "{\"service\":\"TBRIDGE\"}");
    NO_MATCH(sic, "{\"service\":\"bridge\"}");
    /* "time": [ { "prefix": "2017-10-02" } ] matches "2017-10-02T18:43:48Z" */
    MATCH("{\"time\":[{\"prefix\":\"2017-10-02\"}]}",
          "{\"time\":\"2017-10-02T18:43:48Z\"}");
    /* prefix and suffix are for strings */
    NO_MATCH("{\"n\":[{\"prefix\":\"1\"}]}", "{\"n\":12}");
}
END_TEST

START_TEST(doc_eventbridge_anything_but)
{
    /* { "detail": { "state": [ { "anything-but": "initializing" } ] } } */
    const char *s = "{\"detail\":{\"state\":[{\"anything-but\":\"initializing\"}]}}";
    MATCH(s, "{\"detail\":{\"state\":\"running\"}}");
    NO_MATCH(s, "{\"detail\":{\"state\":\"initializing\"}}");
    /* anything-but needs a value: a missing field does not match */
    NO_MATCH(s, "{\"detail\":{}}");
    /* { "detail": { "x-limit": [ { "anything-but": 123 } ] } } */
    const char *n = "{\"detail\":{\"x-limit\":[{\"anything-but\":123}]}}";
    MATCH(n, "{\"detail\":{\"x-limit\":124}}");
    NO_MATCH(n, "{\"detail\":{\"x-limit\":123}}");
    NO_MATCH(n, "{\"detail\":{\"x-limit\":1.23e2}}");
    /* { "detail": { "state": [ { "anything-but": [ "stopped", "overloaded" ] } ] } } */
    const char *l =
        "{\"detail\":{\"state\":[{\"anything-but\":[\"stopped\",\"overloaded\"]}]}}";
    MATCH(l, "{\"detail\":{\"state\":\"running\"}}");
    NO_MATCH(l, "{\"detail\":{\"state\":\"overloaded\"}}");
    /* { "detail": { "x-limit": [ { "anything-but": [ 100, 200, 300 ] } ] } } */
    const char *ln = "{\"detail\":{\"x-limit\":[{\"anything-but\":[100,200,300]}]}}";
    MATCH(ln, "{\"detail\":{\"x-limit\":250}}");
    NO_MATCH(ln, "{\"detail\":{\"x-limit\":200}}");
    /* { "detail": { "state": [ { "anything-but": { "prefix": "init" } } ] } } */
    const char *ap = "{\"detail\":{\"state\":[{\"anything-but\":{\"prefix\":\"init\"}}]}}";
    MATCH(ap, "{\"detail\":{\"state\":\"running\"}}");
    NO_MATCH(ap, "{\"detail\":{\"state\":\"initializing\"}}");
    /* "FileName": [ { "anything-but": { "suffix": ".png" } } ] */
    const char *as = "{\"FileName\":[{\"anything-but\":{\"suffix\":\".png\"}}]}";
    MATCH(as, "{\"FileName\":\"a.jpg\"}");
    NO_MATCH(as, "{\"FileName\":\"a.png\"}");
    /* "state": [{ "anything-but": { "equals-ignore-case": "initializing" }}] */
    const char *ai =
        "{\"state\":[{\"anything-but\":{\"equals-ignore-case\":\"initializing\"}}]}";
    MATCH(ai, "{\"state\":\"running\"}");
    NO_MATCH(ai, "{\"state\":\"INITIALIZING\"}");
    MATCH("{\"s\":[{\"anything-but\":{\"equals-ignore-case\":[\"a\",\"b\"]}}]}",
          "{\"s\":\"c\"}");
    NO_MATCH("{\"s\":[{\"anything-but\":{\"equals-ignore-case\":[\"a\",\"b\"]}}]}",
             "{\"s\":\"B\"}");
    /* "FilePath" : [{ "anything-but": { "wildcard": "<star>/lib/<star>" }}]
     * (<star>: '*') */
    const char *aw = "{\"FilePath\":[{\"anything-but\":{\"wildcard\":\"*/lib/*\"}}]}";
    MATCH(aw, "{\"FilePath\":\"/usr/bin/ls\"}");
    NO_MATCH(aw, "{\"FilePath\":\"/usr/lib/libc.so\"}");
    /* the operator forms consider strings only */
    NO_MATCH(ap, "{\"detail\":{\"state\":5}}");
}
END_TEST

START_TEST(doc_eventbridge_numeric)
{
    /* { "detail": { "c-count": [ { "numeric": [ ">", 0, "<=", 5 ] } ],
     * "d-count": [ { "numeric": [ "<", 10 ] } ], "x-limit": [ { "numeric": [
     * "=", 3.018e2 ] } ] } } matches c-count 5, d-count 7, x-limit 301.8 */
    const char *p = "{\"detail\":{\"c-count\":[{\"numeric\":[\">\",0,\"<=\",5]}],"
                    "\"d-count\":[{\"numeric\":[\"<\",10]}],"
                    "\"x-limit\":[{\"numeric\":[\"=\",3.018e2]}]}}";
    MATCH(p, "{\"detail\":{\"c-count\":5,\"d-count\":7,\"x-limit\":301.8}}");
    NO_MATCH(p, "{\"detail\":{\"c-count\":0,\"d-count\":7,\"x-limit\":301.8}}");
    NO_MATCH(p, "{\"detail\":{\"c-count\":5,\"d-count\":10,\"x-limit\":301.8}}");
    NO_MATCH(p, "{\"detail\":{\"c-count\":5,\"d-count\":7,\"x-limit\":301.9}}");
    /* numeric matching is for JSON numbers: a string is not one */
    NO_MATCH(p, "{\"detail\":{\"c-count\":\"5\",\"d-count\":7,\"x-limit\":301.8}}");
}
END_TEST

START_TEST(doc_eventbridge_exists_cidr_wildcard)
{
    /* "detail": { "state": [ { "exists": false } ] }: events without a state */
    MATCH("{\"detail\":{\"state\":[{\"exists\":false}]}}", "{\"detail\":{\"c\":1}}");
    /* exists only works on leaf nodes: an object is not a value */
    NO_MATCH("{\"detail\":[{\"exists\":true}]}", "{\"detail\":{\"state\":\"x\"}}");
    MATCH("{\"detail\":[{\"exists\":false}]}", "{\"detail\":{\"state\":\"x\"}}");
    /* "detail": { "sourceIPAddress": [ { "cidr": "10.0.0.0/24" } ] } */
    const char *c = "{\"detail\":{\"sourceIPAddress\":[{\"cidr\":\"10.0.0.0/24\"}]}}";
    MATCH(c, "{\"detail\":{\"sourceIPAddress\":\"10.0.0.255\"}}");
    NO_MATCH(c, "{\"detail\":{\"sourceIPAddress\":\"10.0.1.0\"}}");
    NO_MATCH(c, "{\"detail\":{\"sourceIPAddress\":\"not an address\"}}");
    NO_MATCH(c, "{\"detail\":{\"sourceIPAddress\":\"::ffff:10.0.0.1\"}}");
    /* IPv6 prefixes, and prefixes that end inside a byte */
    const char *c6 = "{\"ip\":[{\"cidr\":\"2001:db8::/32\"}]}";
    MATCH(c6, "{\"ip\":\"2001:db8:1234::1\"}");
    NO_MATCH(c6, "{\"ip\":\"2001:db9::1\"}");
    NO_MATCH(c6, "{\"ip\":\"10.0.0.1\"}");
    const char *c12 = "{\"ip\":[{\"cidr\":\"172.16.0.0/12\"}]}";
    MATCH(c12, "{\"ip\":\"172.31.255.255\"}");
    NO_MATCH(c12, "{\"ip\":\"172.32.0.0\"}");
    MATCH("{\"ip\":[{\"cidr\":\"192.0.2.7\"}]}", "{\"ip\":\"192.0.2.7\"}");
    NO_MATCH("{\"ip\":[{\"cidr\":\"192.0.2.7\"}]}", "{\"ip\":\"192.0.2.8\"}");
    /* "EventBusArn": [ { "wildcard":
     * "arn:aws:events:us-east-1:<star>:event-bus/<star>" } ] (<star>: '*') */
    const char *w =
        "{\"EventBusArn\":[{\"wildcard\":\"arn:aws:events:us-east-1:*:event-bus/*\"}]}";
    MATCH(w,
          "{\"EventBusArn\":\"arn:aws:events:us-east-1:123456789012:event-bus/default\"}");
    NO_MATCH(w, "{\"EventBusArn\":\"arn:aws:events:us-west-2:123456789012:event-bus/x\"}");
    /* "FileName": [ { "wildcard": "dir/<star>.png" } ] (<star>: '*') */
    const char *wd = "{\"FileName\":[{\"wildcard\":\"dir/*.png\"}]}";
    MATCH(wd, "{\"FileName\":\"dir/a.png\"}");
    MATCH(wd, "{\"FileName\":\"dir/.png\"}");
    MATCH(wd, "{\"FileName\":\"dir/a/b.png.png\"}");
    NO_MATCH(wd, "{\"FileName\":\"dir/a.png.txt\"}");
    NO_MATCH(wd, "{\"FileName\":\"other/a.png\"}");
}
END_TEST

/* ---- beyond the examples ------------------------------------------------- */

START_TEST(wildcard_escapes)
{
    /* \* is a literal star (JSON "\\*"), \\ a literal backslash */
    const char *lit = "{\"s\":[{\"wildcard\":\"a\\\\*b*\"}]}";
    MATCH(lit, "{\"s\":\"a*bzz\"}");
    NO_MATCH(lit, "{\"s\":\"axbzz\"}");
    const char *bs = "{\"s\":[{\"wildcard\":\"a\\\\\\\\*\"}]}";
    MATCH(bs, "{\"s\":\"a\\\\tail\"}");
    NO_MATCH(bs, "{\"s\":\"atail\"}");
    MATCH("{\"s\":[{\"wildcard\":\"*\"}]}", "{\"s\":\"\"}");
    MATCH("{\"s\":[{\"wildcard\":\"*a*b*a*\"}]}", "{\"s\":\"xxabxxbxa\"}");
    NO_MATCH("{\"s\":[{\"wildcard\":\"*a*b*a*\"}]}", "{\"s\":\"xxabxxb\"}");
    NO_MATCH("{\"s\":[{\"wildcard\":\"abc\"}]}", "{\"s\":\"abcd\"}");
}
END_TEST

START_TEST(numbers_by_value)
{
    /* int, float and exponent forms are one value */
    MATCH("{\"n\":[300]}", "{\"n\":300.0}");
    MATCH("{\"n\":[300]}", "{\"n\":3e2}");
    MATCH("{\"n\":[3.0e2]}", "{\"n\":300}");
    MATCH("{\"n\":[-0.5]}", "{\"n\":-5E-1}");
    NO_MATCH("{\"n\":[300]}", "{\"n\":\"300\"}");
    NO_MATCH("{\"n\":[\"300\"]}", "{\"n\":300}");
    /* range edges */
    const char *ge = "{\"n\":[{\"numeric\":[\">=\",0,\"<\",5]}]}";
    MATCH(ge, "{\"n\":0}");
    MATCH(ge, "{\"n\":-0.0}");
    MATCH(ge, "{\"n\":4.999999}");
    NO_MATCH(ge, "{\"n\":5}");
    NO_MATCH(ge, "{\"n\":-1e-9}");
    MATCH("{\"n\":[{\"numeric\":[\"<\",10]}]}", "{\"n\":-4e9}");
    MATCH("{\"n\":[{\"numeric\":[\">\",-5e9]}]}", "{\"n\":1e300}");
    MATCH("{\"n\":[{\"numeric\":[\">=\",1,\"<=\",1]}]}", "{\"n\":1}");
    /* an integer beyond 64 bits is still a number (read as a double) */
    MATCH("{\"n\":[{\"numeric\":[\">\",1e9]}]}", "{\"n\":123456789012345678901234567890}");
    /* booleans are not numbers */
    NO_MATCH("{\"n\":[1]}", "{\"n\":true}");
    MATCH("{\"b\":[true]}", "{\"b\":true}");
    NO_MATCH("{\"b\":[true]}", "{\"b\":\"true\"}");
    MATCH("{\"b\":[false]}", "{\"b\":false}");
}
END_TEST

START_TEST(nesting_and_or)
{
    const char *p = "{\"a\":{\"b\":{\"c\":[\"x\"]}}}";
    MATCH(p, "{\"a\":{\"b\":{\"c\":\"x\",\"d\":1}}}");
    NO_MATCH(p, "{\"a\":{\"b\":{\"c\":\"y\"}}}");
    NO_MATCH(p, "{\"a\":{\"b\":\"c\"}}");
    NO_MATCH(p, "{\"a\":\"x\"}");
    /* $or inside a nested object, and $or with fields beside it */
    const char *o =
        "{\"k\":[\"v\"],\"a\":{\"$or\":[{\"x\":[1]},{\"y\":[{\"prefix\":\"q\"}]}]}}";
    MATCH(o, "{\"k\":\"v\",\"a\":{\"x\":1}}");
    MATCH(o, "{\"k\":\"v\",\"a\":{\"y\":\"qq\"}}");
    NO_MATCH(o, "{\"k\":\"w\",\"a\":{\"x\":1}}");
    NO_MATCH(o, "{\"k\":\"v\",\"a\":{\"x\":2,\"y\":\"z\"}}");
    /* nested $or */
    const char *oo = "{\"$or\":[{\"a\":[1]},{\"$or\":[{\"b\":[2]},{\"c\":[3]}]}]}";
    MATCH(oo, "{\"c\":3}");
    NO_MATCH(oo, "{\"c\":4}");
}
END_TEST

START_TEST(arrays_any_element)
{
    /* EventBridge: the pattern matches when a value of the event's array
     * matches one of the pattern's ("resources" example) */
    const char *r =
        "{\"resources\":[\"arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f\","
        "\"arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f\"]}";
    MATCH(r, "{\"resources\":[\"arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f\","
             "\"arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f\"]}");
    NO_MATCH(r, "{\"resources\":[\"arn:aws:ec2:us-east-1:444455556666:instance/i-x\"]}");
    MATCH("{\"n\":[{\"numeric\":[\">\",10]}]}", "{\"n\":[1,2,[3,[40]]]}");
    /* anything-but: one value that is not excluded is enough (SNS's
     * example: [100, 50] matches anything-but [100, 500]) */
    MATCH("{\"price\":[{\"anything-but\":[100,500]}]}", "{\"price\":[100,50]}");
    NO_MATCH("{\"price\":[{\"anything-but\":[100,500]}]}", "{\"price\":[100,500]}");
    /* an array of objects: one element matches the whole nested pattern */
    const char *o = "{\"items\":{\"type\":[\"a\"],\"n\":[1]}}";
    MATCH(o, "{\"items\":[{\"type\":\"b\",\"n\":1},{\"type\":\"a\",\"n\":1}]}");
    NO_MATCH(o, "{\"items\":[{\"type\":\"b\",\"n\":1},{\"type\":\"a\",\"n\":2}]}");
    /* an empty array holds no value */
    NO_MATCH("{\"a\":[{\"exists\":true}]}", "{\"a\":[]}");
    MATCH("{\"a\":[{\"exists\":false}]}", "{\"a\":[]}");
    MATCH("{\"a\":[{\"exists\":true}]}", "{\"a\":[null]}");
}
END_TEST

START_TEST(missing_fields)
{
    /* only exists:false matches a field that is not there, also when a
     * whole parent object is missing */
    NO_MATCH("{\"a\":[\"x\"]}", "{}");
    NO_MATCH("{\"a\":[{\"prefix\":\"\"}]}", "{}");
    NO_MATCH("{\"a\":[{\"anything-but\":\"x\"}]}", "{}");
    NO_MATCH("{\"a\":[{\"numeric\":[\">\",0]}]}", "{}");
    MATCH("{\"a\":[{\"exists\":false}]}", "{}");
    MATCH("{\"a\":{\"b\":[{\"exists\":false}]}}", "{}");
    NO_MATCH("{\"a\":{\"b\":[{\"exists\":false}],\"c\":[1]}}", "{}");
    MATCH("{\"a\":[\"x\",{\"exists\":false}]}", "{}");
    MATCH("{\"a\":[\"x\",{\"exists\":false}]}", "{\"a\":\"x\"}");
    NO_MATCH("{\"a\":[\"x\",{\"exists\":false}]}", "{\"a\":\"y\"}");
    /* a view that is not an object: every field is missing */
    MATCH("{\"a\":[{\"exists\":false}]}", "5");
}
END_TEST

START_TEST(non_json_data)
{
    char err[256];
    const char *pats[] = {
        "{\"data\":{\"type\":[\"order\"]}}",
        "{\"data\":[{\"exists\":false}]}",
        "{\"$or\":[{\"data\":{\"x\":[{\"exists\":false}]}},{\"partitionKey\":[\"k\"]}]}",
    };
    json_t *view = json_pack("{s:s}", "partitionKey", "k");
    for (size_t i = 0; i < sizeof pats / sizeof *pats; i++) {
        struct fanout_filter *f = s_compile(pats[i], err, sizeof err);
        ck_assert_msg(f, "%s", err);
        ck_assert(fanout_filter_names_data(f));
        ck_assert_int_eq(fanout_filter_match(f, view, 0), 0);
        fanout_filter_free(f);
    }
    /* a pattern without data is not concerned */
    struct fanout_filter *f = s_compile("{\"partitionKey\":[\"k\"]}", err, sizeof err);
    ck_assert(!fanout_filter_names_data(f));
    ck_assert_int_eq(fanout_filter_match(f, view, 0), 1);
    fanout_filter_free(f);
    /* nested "data" is just a field */
    f = s_compile("{\"x\":{\"data\":[{\"exists\":false}]}}", err, sizeof err);
    ck_assert(!fanout_filter_names_data(f));
    fanout_filter_free(f);
    json_decref(view);
}
END_TEST

START_TEST(compile_errors_with_paths)
{
    s_refused("[1]", "the pattern: expected a pattern object, got an array");
    s_refused("{}", "the pattern: an empty pattern object names no field to match");
    s_refused("{\"a\":{}}", "a: an empty pattern object names no field to match");
    s_refused("{\"a\":\"x\"}",
              "a: expected an array of values to match (e.g. [\"INSERT\"]) or an object of "
              "nested fields, got a string");
    s_refused("{\"a\":[]}",
              "a: expected an array of values to match (e.g. [\"INSERT\"]) or an object of "
              "nested fields, got an empty array");
    s_refused("{\"a\":[[1]]}",
              "a[0]: expected a value or an operator object, got an array (a field lists "
              "its alternatives in one array, not nested)");
    s_refused("{\"data\":{\"temperature\":[{\"numeric\":[5,\"<\"]}]}}",
              "data.temperature[0]: \"numeric\" expects an operator (<, <=, =, >, >=) at "
              "position 0, got a number");
    s_refused("{\"t\":[1,{\"numeric\":[\">\",\"5\"]}]}",
              "t[1]: \"numeric\" expects a number at position 1, got a string");
    s_refused("{\"t\":[{\"numeric\":[\">\",1,\">=\",2]}]}",
              "t[0]: \"numeric\": a second lower bound at position 2");
    s_refused("{\"t\":[{\"numeric\":[\"=\",1,\"<\",2]}]}",
              "t[0]: \"numeric\": \"=\" takes no other bound");
    s_refused(
        "{\"t\":[{\"numeric\":[\"!=\",1]}]}",
        "t[0]: \"numeric\": unknown operator \"!=\" at position 0 (expected <, <=, =, "
        ">, >=)");
    s_refused("{\"t\":[{\"numeric\":[\">\",5,\"<\",5]}]}",
              "t[0]: \"numeric\": the lower bound 5 is not below the upper bound 5");
    s_refused("{\"t\":[{\"numeric\":[\"<\",6e9]}]}",
              "t[0]: \"numeric\": 6e+09 at position 1 is out of range (numeric matching "
              "works from -5e9 to 5e9)");
    s_refused(
        "{\"t\":[{\"numeric\":[\"<\"]}]}",
        "t[0]: \"numeric\" expects [\"<op>\", <number>] pairs: one lower bound (\">\" or "
        "\">=\") and/or one upper bound (\"<\" or \"<=\"), or [\"=\", <number>], got an "
        "array of another length");
    s_refused("{\"a\":{\"b\":[{\"prefix\":1}]}}",
              "a.b[0]: \"prefix\" expects a string, got a number");
    s_refused("{\"a\":[{\"suffix\":{\"x\":\"y\"}}]}",
              "a[0]: \"suffix\" expects a string or {\"equals-ignore-case\": \"...\"}");
    s_refused("{\"a\":[{\"equals-ignore-case\":[\"x\"]}]}",
              "a[0]: \"equals-ignore-case\" expects a string, got an array");
    s_refused("{\"a\":[{\"foo\":1}]}",
              "a[0]: \"foo\" is not an operator (expected one of prefix, suffix, "
              "equals-ignore-case, wildcard, anything-but, numeric, exists, cidr)");
    s_refused(
        "{\"a\":[{\"prefix\":\"x\",\"suffix\":\"y\"}]}",
        "a[0]: an operator object has exactly one member (e.g. {\"prefix\": \"us-\"}), "
        "got 2");
    s_refused("{\"a\":[{\"exists\":\"true\"}]}",
              "a[0]: \"exists\" expects true or false, got a string");
    s_refused(
        "{\"a\":[{\"wildcard\":\"a**b\"}]}",
        "a[0]: \"wildcard\": consecutive '*' at offset 2 (one '*' already matches any "
        "run of characters)");
    s_refused("{\"a\":[{\"wildcard\":\"a\\\\b\"}]}",
              "a[0]: \"wildcard\": a backslash at offset 1 escapes neither '*' nor '\\' "
              "(write \\\\* for a literal '*', \\\\\\\\ for a backslash)");
    s_refused(
        "{\"a\":[{\"cidr\":\"10.0.0.0/33\"}]}",
        "a[0]: \"cidr\" expects an IPv4 or IPv6 address with an optional prefix length, "
        "like \"10.0.0.0/24\" or \"2001:db8::/32\", got \"10.0.0.0/33\"");
    s_refused(
        "{\"a\":[{\"cidr\":\"10.0.0/8\"}]}",
        "a[0]: \"cidr\" expects an IPv4 or IPv6 address with an optional prefix length, "
        "like \"10.0.0.0/24\" or \"2001:db8::/32\", got \"10.0.0/8\"");
    s_refused("{\"a\":[{\"anything-but\":[\"x\",1]}]}",
              "a[0]: \"anything-but\" expects a non-empty list of strings only or numbers "
              "only");
    s_refused("{\"a\":[{\"anything-but\":[]}]}",
              "a[0]: \"anything-but\" expects a non-empty list of strings only or numbers "
              "only");
    s_refused("{\"a\":[{\"anything-but\":[null]}]}",
              "a[0]: \"anything-but\" expects a list of strings or of numbers, got null at "
              "position 0");
    s_refused("{\"a\":[{\"anything-but\":{\"numeric\":[\">\",1]}}]}",
              "a[0]: \"anything-but\" expects a string, a number, a list of either, or an "
              "object with one of prefix, suffix, equals-ignore-case, wildcard; got an "
              "object");
    s_refused("{\"a\":[{\"anything-but\":{\"prefix\":[\"x\"]}}]}",
              "a[0]: \"prefix\" expects a string, got an array");
    s_refused(
        "{\"a\":[{\"anything-but\":{\"wildcard\":[\"x**\"]}}]}",
        "a[0]: \"wildcard\": consecutive '*' at offset 2 (one '*' already matches any "
        "run of characters)");
    s_refused("{\"$or\":{\"a\":[1]}}",
              "$or: expected a non-empty array of patterns (objects), got an object");
    s_refused("{\"$or\":[]}",
              "$or: expected a non-empty array of patterns (objects), got an "
              "empty array");
    s_refused("{\"x\":{\"$or\":[{\"a\":[1]},\"b\"]}}",
              "x.$or[1]: expected a pattern object, got a string");
    /* depth */
    char deep[400] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "{\"a\":");
    strcat(deep, "[1]");
    for (int i = 0; i < 40; i++)
        strcat(deep, "}");
    char err[512];
    struct fanout_filter *f = s_compile(deep, err, sizeof err);
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(err, ": nested deeper than 32 levels"), "%s", err);
}
END_TEST

/* ---- record views from real events ---------------------------------------- */

static struct fanout_arena s_arena;

static void s_setup(void)
{
    memset(&s_arena, 0, sizeof s_arena);
}

static void s_teardown(void)
{
    fanout_arena_free(&s_arena);
}

/* How many records of `event` pass `pattern`, decoded with `opts`. */
static size_t s_count(const char *event, const char *pattern,
                      struct fanout_decode_opts opts)
{
    struct fanout_event ev;
    char err[512];
    char *text = fanout_arena_strdup(&s_arena, event);
    ck_assert_msg(fanout_event_parse(text, strlen(text), &s_arena, &ev, err, sizeof err) ==
                      0,
                  "%s", err);
    struct fanout_decoded d;
    ck_assert_int_eq(fanout_decode_group(&ev.groups[0], opts, &s_arena, &d), 0);
    struct fanout_filter *f = s_compile(pattern, err, sizeof err);
    ck_assert_msg(f, "%s", err);
    struct fanout_filter_views *v = fanout_filter_views_new(ev.count);
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) /* the second from the views built */
        for (size_t i = 0; i < d.count; i++) {
            int rc = fanout_filter_record(v, f, d.records[i],
                                          (size_t)(d.records[i]->raw - ev.records));
            ck_assert_int_ge(rc, 0);
            n += pass == 1 && rc;
        }
    fanout_filter_views_free(v);
    fanout_filter_free(f);
    fanout_event_clean_up(&ev);
    return n;
}

#define KREC(pk, b64)                                                                      \
    "{\"eventSource\":\"aws:kinesis\",\"eventSourceARN\":\"arn:aws:kinesis:us-east-1:1:"   \
    "stream/s\",\"awsRegion\":\"us-east-1\",\"kinesis\":{\"kinesisSchemaVersion\":"        \
    "\"1.0\",\"partitionKey\":\"" pk "\",\"sequenceNumber\":\"49\",\"approximateArrival"   \
    "Timestamp\":1545084650.987,\"data\":\"" b64 "\"}}"

START_TEST(kinesis_view)
{
    /* {"type":"order","n":5} / {"type":"refund","n":50} / not JSON "hello" */
    const char *ev =
        "{\"Records\":[" KREC("p1", "eyJ0eXBlIjoib3JkZXIiLCJuIjo1fQ==") "," KREC(
            "p2", "eyJ0eXBlIjoicmVmdW5kIiwibiI6NTB9") "," KREC("p3", "aGVsbG8=") "]}";
    struct fanout_decode_opts o = {0};
    ck_assert_uint_eq(s_count(ev, "{\"data\":{\"type\":[\"order\"]}}", o), 1);
    ck_assert_uint_eq(s_count(ev, "{\"data\":{\"n\":[{\"numeric\":[\">\",1]}]}}", o), 2);
    ck_assert_uint_eq(s_count(ev, "{\"partitionKey\":[{\"prefix\":\"p\"}]}", o), 3);
    ck_assert_uint_eq(s_count(ev, "{\"kinesisSchemaVersion\":[\"1.0\"]}", o), 3);
    ck_assert_uint_eq(s_count(ev,
                              "{\"approximateArrivalTimestamp\":[{\"numeric\":[\">\","
                              "1545084650]}]}",
                              o),
                      3);
    /* the non-JSON record never matches a pattern naming data */
    ck_assert_uint_eq(s_count(ev, "{\"data\":{\"type\":[{\"exists\":false}]}}", o), 0);
    /* (an object is not a value: exists:false holds for the JSON ones) */
    ck_assert_uint_eq(s_count(ev, "{\"data\":[{\"exists\":false}]}", o), 2);
    /* the view is the kinesis object: eventSource is not in it */
    ck_assert_uint_eq(s_count(ev, "{\"eventSource\":[{\"exists\":false}]}", o), 3);
    /* escaped names and values read as their text */
    const char *esc =
        "{\"Records\":[{\"eventSource\":\"aws:kinesis\",\"eventSourceARN\":\"arn:aws:"
        "kinesis:us-east-1:1:stream/s\",\"kinesis\":{\"kinesisSchemaVersio\\u006e\":\"1."
        "\\u0030\",\"partitionKey\":\"p\\/1\",\"sequenceNumber\":\"49\",\"data\":\"e30=\"}}"
        "]}";
    ck_assert_uint_eq(s_count(esc, "{\"kinesisSchemaVersion\":[\"1.0\"]}", o), 1);
    ck_assert_uint_eq(s_count(esc,
                              "{\"partitionKey\":[\"p/1\"],\"data\":[{\"exists\":"
                              "false}]}",
                              o),
                      1);
    const char *val = "{\"Records\":[" KREC("p\\/2", "e30=") "]}";
    ck_assert_uint_eq(s_count(val, "{\"partitionKey\":[\"p/2\"]}", o), 1);
    /* appendNewlines leaves the data JSON */
    struct fanout_decode_opts nl = {.append_newline = 1};
    ck_assert_uint_eq(s_count(ev, "{\"data\":{\"type\":[\"refund\"]}}", nl), 1);
}
END_TEST

/* A file of tests/data, opened for reading. */
static FILE *s_open_data(const char *name)
{
    char path[1024];
    const char *dir = getenv("FANOUT_TESTDATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", name);
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "%s", path);
    return fp;
}

/* Its whole text, NUL-terminated, in the arena. */
static char *s_read_data(const char *name)
{
    FILE *fp = s_open_data(name);
    struct fanout_sbuf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        ck_assert_int_eq(fanout_sbuf_put(&b, chunk, n), 0);
    fclose(fp);
    char *text = fanout_arena_alloc(&s_arena, b.len + 1);
    memcpy(text, b.bytes, b.len);
    text[b.len] = 0;
    fanout_sbuf_free(&b);
    return text;
}

START_TEST(dynamodb_view)
{
    /* tests/data/events/dynamodb.json: 6 records, INSERT MODIFY REMOVE
     * twice, Keys {"hash": {"S": "h1002-<i>"}, "range": {"N": "<i>"}}, no
     * NewImage on REMOVE */
    const char *text = s_read_data("events/dynamodb.json");
    struct fanout_decode_opts o = {.convert_ddb = 1};
    ck_assert_uint_eq(s_count(text, "{\"eventName\":[\"INSERT\"]}", o), 2);
    ck_assert_uint_eq(s_count(text, "{\"eventName\":[{\"anything-but\":\"INSERT\"}]}", o),
                      4);
    ck_assert_uint_eq(s_count(text, "{\"eventSource\":[\"aws:dynamodb\"]}", o), 6);
    /* DynamoDB JSON as received, whatever convertDDB does for the target */
    ck_assert_uint_eq(
        s_count(text, "{\"dynamodb\":{\"Keys\":{\"range\":{\"N\":[\"3\"]}}}}", o), 1);
    ck_assert_uint_eq(
        s_count(text, "{\"dynamodb\":{\"Keys\":{\"hash\":{\"S\":[{\"suffix\":\"-4\"}]}}}}",
                o),
        1);
    /* REMOVE has no NewImage: an object is not a value, so exists:false
     * also matches an image that is there; a leaf inside it tells */
    ck_assert_uint_eq(
        s_count(text, "{\"dynamodb\":{\"NewImage\":[{\"exists\":false}]}}", o), 6);
    ck_assert_uint_eq(
        s_count(text,
                "{\"dynamodb\":{\"StreamViewType\":[{\"exists\":true}],\"$or\":[{"
                "\"Keys\":{\"range\":{\"N\":[\"0\",\"5\"]}}}]}}",
                o),
        2);
}
END_TEST

START_TEST(kpl_user_record_views)
{
    /* tests/data/events/kpl-aggregated.json deaggregated: each user record
     * has its own partitionKey and data; the expected user records (from
     * the .expected.jsonl beside it) say how many should match */
    const char *text = s_read_data("events/kpl-aggregated.json");
    FILE *fp = s_open_data("events/kpl-aggregated.expected.jsonl");
    char line[4096];
    size_t want_pk = 0, want_m1 = 0, users = 0;
    while (fgets(line, sizeof line, fp)) {
        json_t *o = json_loads(line, 0, NULL);
        ck_assert_ptr_nonnull(o);
        const char *key = json_string_value(json_object_get(o, "key"));
        const char *b64 = json_string_value(json_object_get(o, "dataB64"));
        if (key && b64) {
            users++;
            want_pk += strncmp(key, "pk-", 3) == 0;
            uint8_t data[4096];
            size_t bad;
            long len = fanout_base64_decode(b64, strlen(b64), data, &bad);
            ck_assert_int_ge(len, 0);
            json_t *d = json_loadb((const char *)data, (size_t)len, 0, NULL);
            json_t *m = json_object_get(d, "m");
            want_m1 += json_is_number(m) && json_number_value(m) == 1;
            json_decref(d);
        }
        json_decref(o);
    }
    fclose(fp);
    ck_assert_uint_gt(want_pk, 0);
    ck_assert_uint_lt(want_pk, users);
    ck_assert_uint_gt(want_m1, 0);
    struct fanout_decode_opts o = {.deaggregate = 1};
    ck_assert_uint_eq(s_count(text, "{\"partitionKey\":[{\"prefix\":\"pk-\"}]}", o),
                      want_pk);
    ck_assert_uint_eq(s_count(text, "{\"data\":{\"m\":[1]}}", o), want_m1);
    /* not deaggregated: an aggregate's data is not JSON, so only the plain
     * JSON records ("plain-<n>") match a pattern on data */
    struct fanout_decode_opts whole = {0};
    size_t plain = s_count(text, "{\"partitionKey\":[{\"prefix\":\"plain-\"}]}", whole);
    ck_assert_uint_gt(plain, 0);
    ck_assert_uint_eq(s_count(text, "{\"data\":{\"m\":[{\"exists\":false}]}}", whole),
                      plain);
    ck_assert_uint_eq(s_count(text, "{\"data\":[{\"exists\":false}]}", whole), plain);
}
END_TEST

/* ---- the mapping field ---------------------------------------------------- */

#define MAPPING(filter)                                                                    \
    "{\"sourceArn\":\"arn:aws:kinesis:us-east-1:123456789012:stream/s\",\"id\":\"t\","     \
    "\"type\":\"file\",\"destination\":\"-\",\"active\":true" filter "}"

static struct fanout_mapping *s_mapping(const char *json, char *err, size_t n)
{
    json_t *obj = json_loads(json, 0, NULL);
    ck_assert_msg(obj != NULL, "test JSON: %s", json);
    struct fanout_mapping *m = fanout_mapping_parse(obj, 2, err, n);
    json_decref(obj);
    return m;
}

START_TEST(mapping_field)
{
    char err[768] = "";
    json_t *view = json_loads("{\"data\":{\"type\":\"order\"}}", 0, NULL);
    /* none, null: every record */
    struct fanout_mapping *m = s_mapping(MAPPING(""), err, sizeof err);
    ck_assert_msg(m && !m->filter, "%s", err);
    fanout_mapping_free(m);
    m = s_mapping(MAPPING(",\"filter\":null"), err, sizeof err);
    ck_assert_msg(m && !m->filter, "%s", err);
    fanout_mapping_free(m);
    /* an object (a mapping file), a string holding one (the table) */
    const char *forms[] = {",\"filter\":{\"data\":{\"type\":[\"order\"]}}",
                           ",\"filter\":\"{\\\"data\\\":{\\\"type\\\":[\\\"order\\\"]}}\""};
    for (size_t i = 0; i < 2; i++) {
        char json[512];
        snprintf(json, sizeof json, MAPPING("%s"), forms[i]);
        m = s_mapping(json, err, sizeof err);
        ck_assert_msg(m && m->filter, "%s: %s", json, err);
        ck_assert_int_eq(fanout_filter_match(m->filter, view, 1), 1);
        /* a schema field, not a plugin option */
        ck_assert_ptr_null(json_object_get(m->extra, "filter"));
        fanout_mapping_free(m);
    }
    json_decref(view);
    /* refused, each with the field and the path */
    const struct {
        const char *filter, *want;
    } bad[] = {
        {",\"filter\":5",
         "mapping \"t\" (#2): field \"filter\": expected an event pattern: "
         "a JSON object, or a string holding one, got a number"},
        {",\"filter\":[]",
         "mapping \"t\" (#2): field \"filter\": expected an event pattern: "
         "a JSON object, or a string holding one, got an array"},
        {",\"filter\":\"{\\\"a\\\":\"",
         /* then jansson's words, which differ between its versions */
         "mapping \"t\" (#2): field \"filter\": the string is not an event pattern in "
         "JSON: "
         "line 1, column 5: "},
        {",\"filter\":\"[1]\"", "mapping \"t\" (#2): field \"filter\": the pattern: "
                                "expected a pattern object, got "
                                "an array"},
        {",\"filter\":\"{\\\"a\\\":[1],\\\"b\\\":{\\\"c\\\":[1],\\\"c\\\":[2]}}\"",
         "mapping \"t\" (#2): field \"filter\": b.c: appears more than once (a name may "
         "appear once per object)"},
        {",\"filter\":{\"data\":{\"temperature\":[{\"numeric\":[\"<\"]}]}}",
         "mapping \"t\" (#2): field \"filter\": data.temperature[0]: \"numeric\" expects "
         "[\"<op>\", <number>] pairs: one lower bound (\">\" or \">=\") and/or one upper "
         "bound "
         "(\"<\" or \"<=\"), or [\"=\", <number>], got an array of another length"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char json[512];
        snprintf(json, sizeof json, MAPPING("%s"), bad[i].filter);
        m = s_mapping(json, err, sizeof err);
        ck_assert_msg(!m, "accepted: %s", json);
        if (i == 2)
            ck_assert_msg(strncmp(err, bad[i].want, strlen(bad[i].want)) == 0, "%s", err);
        else
            ck_assert_str_eq(err, bad[i].want);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("filter");
    TCase *doc = tcase_create("aws-doc-examples");
    tcase_add_test(doc, doc_kinesis_data_order_type);
    tcase_add_test(doc, doc_dynamodb_keys_and_event_name);
    tcase_add_test(doc, doc_rule_syntax_table);
    tcase_add_test(doc, doc_eventbridge_string_operators);
    tcase_add_test(doc, doc_eventbridge_anything_but);
    tcase_add_test(doc, doc_eventbridge_numeric);
    tcase_add_test(doc, doc_eventbridge_exists_cidr_wildcard);
    suite_add_tcase(s, doc);
    TCase *sem = tcase_create("semantics");
    tcase_add_test(sem, wildcard_escapes);
    tcase_add_test(sem, numbers_by_value);
    tcase_add_test(sem, nesting_and_or);
    tcase_add_test(sem, arrays_any_element);
    tcase_add_test(sem, missing_fields);
    tcase_add_test(sem, non_json_data);
    tcase_add_test(sem, compile_errors_with_paths);
    tcase_add_test(sem, mapping_field);
    suite_add_tcase(s, sem);
    TCase *views = tcase_create("views");
    tcase_add_checked_fixture(views, s_setup, s_teardown);
    tcase_add_test(views, kinesis_view);
    tcase_add_test(views, dynamodb_view);
    tcase_add_test(views, kpl_user_record_views);
    suite_add_tcase(s, views);
    return fanout_check_run(s);
}
