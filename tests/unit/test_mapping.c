#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "core/mapping.h"

#define SRC "arn:aws:kinesis:us-east-1:123456789012:stream/s"

static struct fanout_mapping *s_parse(const char *json, char *err, size_t n)
{
    json_error_t je;
    json_t *obj = json_loads(json, 0, &je);
    ck_assert_msg(obj != NULL, "test JSON: %s", je.text);
    struct fanout_mapping *m = fanout_mapping_parse(obj, 3, err, n);
    json_decref(obj);
    return m;
}

START_TEST(full_mapping)
{
    char err[512] = "";
    struct fanout_mapping *m = s_parse(
        "{\"sourceArn\":\"" SRC "\",\"id\":\"t1\",\"type\":\"sqs\","
        "\"destination\":\"https://sqs.eu-west-1.amazonaws.com/1/q\",\"active\":true,"
        "\"role\":\"arn:aws:iam::210987654321:role/fanout\",\"externalId\":\"ext-1\","
        "\"region\":\"eu-west-1\",\"collapse\":\"concat-b64\",\"parallel\":false,"
        "\"convertDDB\":true,\"deaggregate\":true,\"ttlSeconds\":30}",
        err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert_str_eq(m->source_arn, SRC);
    ck_assert_str_eq(m->id, "t1");
    ck_assert_str_eq(m->type, "sqs");
    ck_assert_str_eq(m->role, "arn:aws:iam::210987654321:role/fanout");
    ck_assert_str_eq(m->external_id, "ext-1");
    ck_assert_str_eq(m->region, "eu-west-1");
    ck_assert_int_eq(m->collapse, FANOUT_COLLAPSE_CONCAT_B64);
    ck_assert_int_eq(m->active, 1);
    ck_assert_int_eq(m->parallel, 0);
    ck_assert_int_eq(m->convert_ddb, 1);
    ck_assert_int_eq(m->deaggregate, 1);
    ck_assert_uint_eq(json_object_size(m->extra), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(m->extra, "ttlSeconds")), 30);
    fanout_mapping_free(m);
}
END_TEST

START_TEST(defaults)
{
    char err[512];
    struct fanout_mapping *m =
        s_parse("{\"sourceArn\":\"" SRC "\",\"id\":\"t\",\"type\":\"file\","
                "\"destination\":\"-\",\"active\":false}",
                err, sizeof err);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(m->collapse, -1);
    ck_assert_int_eq(m->parallel, 1);
    ck_assert_int_eq(m->convert_ddb, 0);
    ck_assert_int_eq(m->deaggregate, 0);
    ck_assert_ptr_null(m->role);
    ck_assert_ptr_null(m->region);
    fanout_mapping_free(m);
}
END_TEST

struct bad_case {
    const char *fields; /* appended to a valid mapping, overriding */
    const char *expect[3];
};

static const struct bad_case s_bad[] = {
    {"\"active\":\"true\"",
     {"mapping \"t\" (#3)", "field \"active\"", "got a string \"true\""}},
    {"\"active\":null", {"field \"active\"", "required", NULL}},
    {"\"type\":\"../evil\"", {"field \"type\"", "[a-z0-9_-]", "never a path"}},
    {"\"type\":\"SQS\"", {"field \"type\"", "\"SQS\"", NULL}},
    {"\"type\":5", {"field \"type\"", "expected a string, got a number", NULL}},
    {"\"destination\":\"\"", {"field \"destination\"", "must not be empty", NULL}},
    {"\"sourceArn\":\"my-stream\"", {"field \"sourceArn\"", "arn:aws:kinesis", NULL}},
    {"\"role\":\"admin\"", {"field \"role\"", "arn:aws:iam::123456789012:role/", NULL}},
    {"\"externalId\":\"abc\"", {"field \"externalId\"", "without \"role\"", NULL}},
    {"\"role\":\"arn:aws:iam::123456789012:role/r\",\"externalId\":\"a b\"",
     {"field \"externalId\"", "2 to 1224", NULL}},
    {"\"region\":\"mars\"", {"field \"region\"", "us-east-1", NULL}},
    {"\"collapse\":\"zip\"",
     {"field \"collapse\"", "none, JSON, concat, concat-b64", NULL}},
    {"\"parallel\":1", {"field \"parallel\"", "expected a boolean", "got a number"}},
    {"\"convertDDB\":\"yes\"", {"field \"convertDDB\"", NULL, NULL}},
    {"\"deaggregate\":[]", {"field \"deaggregate\"", "got an array", NULL}},
    {"\"appendNewlines\":\"true\"",
     {"field \"appendNewlines\"", "expected a boolean", "got a string \"true\""}},
    {"\"appendNewlines\":1", {"field \"appendNewlines\"", "got a number", NULL}},
    {"\"wholeRecord\":\"yes\"", {"field \"wholeRecord\"", "expected a boolean", NULL}},
    /* a Kinesis source (SRC) has no stream records to send whole */
    {"\"wholeRecord\":true",
     {"mapping \"t\" (#3): field \"wholeRecord\": only for DynamoDB Streams sources",
      "got sourceArn \"" SRC "\"", NULL}},
    /* the original's ignored settings are checked all the same */
    {"\"type\":\"lambda\",\"collapse\":\"zip\"", {"field \"collapse\"", "\"zip\"", NULL}},
    {"\"type\":\"redis\",\"region\":\"mars\"", {"field \"region\"", NULL, NULL}},
    {"\"type\":\"memcached\",\"role\":\"admin\"", {"field \"role\"", NULL, NULL}},
    {"\"type\":\"redis\",\"externalId\":\"abc\"", {"field \"externalId\"", NULL, NULL}},
};

START_TEST(invalid_fields_named)
{
    const struct bad_case *c = &s_bad[_i];
    char json[1024], err[512] = "";
    snprintf(json, sizeof json,
             "{\"sourceArn\":\"" SRC "\",\"id\":\"t\",\"type\":\"sqs\","
             "\"destination\":\"q\",\"active\":true,%s}",
             c->fields);
    /* later duplicates of a key win in jansson's parser */
    struct fanout_mapping *m = s_parse(json, err, sizeof err);
    ck_assert_msg(m == NULL, "accepted: %s", c->fields);
    for (int k = 0; k < 3 && c->expect[k]; k++)
        ck_assert_msg(strstr(err, c->expect[k]), "case %s: \"%s\" not in: %s", c->fields,
                      c->expect[k], err);
}
END_TEST

START_TEST(append_newlines)
{
    char err[512] = "";
    struct fanout_mapping *m = s_parse("{\"sourceArn\":\"" SRC "\",\"id\":\"t\",\"type\":"
                                       "\"file\",\"destination\":\"-\",\"active\":true,"
                                       "\"appendNewlines\":true}",
                                       err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert_int_eq(m->append_newlines, 1);
    /* a mapping field, not a plugin option */
    ck_assert_uint_eq(json_object_size(m->extra), 0);
    ck_assert_ptr_null(m->ignored);
    fanout_mapping_free(m);
    m = s_parse("{\"sourceArn\":\"" SRC "\",\"id\":\"t\",\"type\":\"file\","
                "\"destination\":\"-\",\"active\":true,\"appendNewlines\":false}",
                err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert_int_eq(m->append_newlines, 0);
    fanout_mapping_free(m);
    m = s_parse("{\"sourceArn\":\"" SRC "\",\"id\":\"t\",\"type\":\"file\","
                "\"destination\":\"-\",\"active\":true}",
                err, sizeof err);
    ck_assert_int_eq(m->append_newlines, 0);
    fanout_mapping_free(m);
}
END_TEST

/* What aws-lambda-fanout accepted and dropped: cleared, and named once. */
struct legacy_case {
    const char *type, *fields;
    int ignored;                     /* expect m->ignored */
    const char *expect[3];           /* in m->ignored */
    int collapse, role, region, ext; /* expected after parsing (1: kept) */
};

#define ROLE "\"role\":\"arn:aws:iam::123456789012:role/r\""
static const struct legacy_case s_legacy[] = {
    {"lambda",
     "\"collapse\":\"JSON\"",
     1,
     {"mapping \"t\" (#3)", "field \"collapse\" (\"JSON\")", "type \"lambda\""},
     -1,
     0,
     0,
     0},
    {"es",
     "\"collapse\":\"concat\"",
     1,
     {"field \"collapse\" (\"concat\")", NULL, NULL},
     -1,
     0,
     0,
     0},
    /* "none" is what these plugins do: nothing to warn about */
    {"lambda", "\"collapse\":\"none\"", 0, {NULL}, FANOUT_COLLAPSE_NONE, 0, 0, 0},
    /* role and region stay for lambda and es: the original used them */
    {"lambda", ROLE ",\"region\":\"eu-west-1\"", 0, {NULL}, -1, 1, 1, 0},
    {"es", ROLE ",\"region\":\"eu-west-1\"", 0, {NULL}, -1, 1, 1, 0},
    {"memcached",
     "\"collapse\":\"concat-b64\"",
     1,
     {"\"collapse\"", NULL, NULL},
     -1,
     0,
     0,
     0},
    {"redis",
     ROLE ",\"externalId\":\"ext-1\",\"region\":\"eu-west-1\",\"collapse\":\"JSON\"",
     1,
     {"field \"collapse\" (\"JSON\"), field \"role\" "
      "(\"arn:aws:iam::123456789012:role/r\"), "
      "field \"externalId\" (\"ext-1\"), field \"region\" (\"eu-west-1\")",
      "ignored them", NULL},
     -1,
     0,
     0,
     0},
    {"memcached",
     "\"region\":\"eu-west-1\"",
     1,
     {"field \"region\"", "ignored it", NULL},
     -1,
     0,
     0,
     0},
    /* collapse is used by the other types, role and region too */
    {"sqs",
     ROLE ",\"region\":\"eu-west-1\",\"collapse\":\"concat\"",
     0,
     {NULL},
     FANOUT_COLLAPSE_CONCAT,
     1,
     1,
     0},
    {"kinesis", "\"collapse\":\"JSON\"", 0, {NULL}, FANOUT_COLLAPSE_JSON, 0, 0, 0},
    {"file", "\"collapse\":\"JSON\"", 0, {NULL}, FANOUT_COLLAPSE_JSON, 0, 0, 0},
    /* a plugin merely named like one: only the exact type names */
    {"redis2", "\"region\":\"eu-west-1\"", 0, {NULL}, -1, 0, 1, 0},
};
#undef ROLE

START_TEST(legacy_settings_ignored)
{
    const struct legacy_case *c = &s_legacy[_i];
    char json[1024], err[512] = "";
    snprintf(json, sizeof json,
             "{\"sourceArn\":\"" SRC "\",\"id\":\"t\",\"type\":\"%s\","
             "\"destination\":\"d\",\"active\":true,%s}",
             c->type, c->fields);
    struct fanout_mapping *m = s_parse(json, err, sizeof err);
    ck_assert_msg(m != NULL, "%s %s: %s", c->type, c->fields, err);
    if (c->ignored) {
        ck_assert_msg(m->ignored != NULL, "%s %s: nothing ignored", c->type, c->fields);
        for (int k = 0; k < 3 && c->expect[k]; k++)
            ck_assert_msg(strstr(m->ignored, c->expect[k]), "%s: \"%s\" not in: %s",
                          c->fields, c->expect[k], m->ignored);
    } else {
        ck_assert_msg(m->ignored == NULL, "%s %s: %s", c->type, c->fields, m->ignored);
    }
    ck_assert_int_eq(m->collapse, c->collapse);
    ck_assert_int_eq(m->role != NULL, c->role);
    ck_assert_int_eq(m->region != NULL, c->region);
    ck_assert_int_eq(m->external_id != NULL, c->ext);
    /* the stored mapping is unchanged: list shows what the table holds */
    json_error_t je;
    json_t *in = json_loads(json, 0, &je);
    ck_assert(json_equal(in, m->json));
    json_decref(in);
    fanout_mapping_free(m);
}
END_TEST

/* "wholeRecord": DynamoDB stream sources only, false by default. */
START_TEST(whole_record)
{
    char err[512] = "";
    const char *ddb = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/"
                      "2026-01-01T00:00:00.000";
    char json[512];
    snprintf(json, sizeof json,
             "{\"sourceArn\":\"%s\",\"id\":\"t\",\"type\":\"file\",\"destination\":\"-\","
             "\"active\":true,\"wholeRecord\":true}",
             ddb);
    struct fanout_mapping *m = s_parse(json, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert_int_eq(m->whole_record, 1);
    ck_assert_uint_eq(json_object_size(m->extra), 0); /* not a plugin option */
    fanout_mapping_free(m);
    m = s_parse("{\"sourceArn\":\"" SRC "\",\"id\":\"t\",\"type\":\"file\","
                "\"destination\":\"-\",\"active\":true,\"wholeRecord\":false}",
                err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert_int_eq(m->whole_record, 0);
    fanout_mapping_free(m);
    /* a table ARN without /stream/ is not a stream */
    m = s_parse("{\"sourceArn\":\"arn:aws:dynamodb:us-east-1:1:table/t\",\"id\":\"t\","
                "\"type\":\"file\",\"destination\":\"-\",\"active\":true,"
                "\"wholeRecord\":true}",
                err, sizeof err);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err, "field \"wholeRecord\""), "%s", err);
}
END_TEST

START_TEST(missing_id_named_by_position)
{
    char err[512];
    ck_assert_ptr_null(
        s_parse("{\"sourceArn\":\"" SRC "\",\"type\":\"sqs\"}", err, sizeof err));
    ck_assert_msg(strstr(err, "mapping #3: field \"id\": required"), "%s", err);
    json_t *arr = json_array();
    ck_assert_ptr_null(fanout_mapping_parse(arr, 0, err, sizeof err));
    ck_assert_msg(strstr(err, "mapping #0: expected an object, got an array"), "%s", err);
    json_decref(arr);
}
END_TEST

START_TEST(collapse_names)
{
    ck_assert_int_eq(fanout_collapse_parse("none"), FANOUT_COLLAPSE_NONE);
    ck_assert_int_eq(fanout_collapse_parse("JSON"), FANOUT_COLLAPSE_JSON);
    ck_assert_int_eq(fanout_collapse_parse("json"), FANOUT_COLLAPSE_JSON);
    ck_assert_int_eq(fanout_collapse_parse("concat"), FANOUT_COLLAPSE_CONCAT);
    ck_assert_int_eq(fanout_collapse_parse("concat-b64"), FANOUT_COLLAPSE_CONCAT_B64);
    ck_assert_int_eq(fanout_collapse_parse("b64"), -1);
    ck_assert_int_eq(fanout_collapse_parse(NULL), -1);
    ck_assert_str_eq(fanout_collapse_name(FANOUT_COLLAPSE_JSON), "JSON");
}
END_TEST

#define GOOD(id, active)                                                                   \
    "{\"sourceArn\":\"" SRC "\",\"id\":\"" id "\",\"type\":\"file\","                      \
    "\"destination\":\"-\",\"active\":" active "}"

START_TEST(set_keeps_valid_reports_invalid)
{
    const char *doc = "[" GOOD("a", "true") ",{\"id\":\"broken\"}," GOOD(
        "b", "false") "," GOOD("a", "true") ",42]";
    struct fanout_mapping_set set;
    char err[512];
    ck_assert_int_eq(
        fanout_mapping_set_parse(doc, strlen(doc), "m.json", &set, err, sizeof err), 0);
    ck_assert_uint_eq(set.count, 2);
    ck_assert_str_eq(set.items[0]->id, "a");
    ck_assert_str_eq(set.items[1]->id, "b");
    ck_assert_uint_eq(set.problem_count, 3);
    ck_assert_msg(strstr(set.problems[0], "mapping \"broken\" (#1): field \"sourceArn\""),
                  "%s", set.problems[0]);
    ck_assert_msg(strstr(set.problems[1], "mapping \"a\" (#3)") &&
                      strstr(set.problems[1], "duplicate"),
                  "%s", set.problems[1]);
    ck_assert_msg(strstr(set.problems[2], "mapping #4: expected an object"), "%s",
                  set.problems[2]);
    fanout_mapping_set_clean_up(&set);
}
END_TEST

START_TEST(set_document_errors)
{
    struct fanout_mapping_set set;
    char err[512];
    ck_assert_int_eq(
        fanout_mapping_set_parse("{\"a\":1}", 7, "m.json", &set, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "m.json: expected a JSON array of mappings"), "%s", err);
    ck_assert_int_eq(fanout_mapping_set_parse("[\n{,", 4, "m.json", &set, err, sizeof err),
                     -1);
    ck_assert_msg(strstr(err, "m.json: not valid JSON: line 2"), "%s", err);
    ck_assert_int_eq(fanout_mapping_set_parse("[]", 2, "m.json", &set, err, sizeof err), 0);
    ck_assert_uint_eq(set.count, 0);
    fanout_mapping_set_clean_up(&set);
}
END_TEST

START_TEST(set_refuses_repeated_names_per_mapping)
{
    /* jansson alone keeps the last "active": false -> the mapping would be
     * silently inactive; both values are distrusted instead */
    const char *doc = "[" GOOD(
        "a", "true") ",{\"sourceArn\":\"" SRC "\",\"id\":\"twice\",\"type\":"
                     "\"file\",\"destination\":\"-\",\"active\":true,\"active\":false},"
                     "{\"sourceArn\":\"" SRC
                     "\",\"sourceArn\":\"arn:aws:kinesis:x:1:stream/o\","
                     "\"type\":\"file\",\"destination\":\"-\",\"active\":true},"
                     "{\"sourceArn\":\"" SRC
                     "\",\"id\":\"opt\",\"type\":\"file\",\"destination\":"
                     "\"-\",\"active\":true,\"o\":{\"k\":1,\"k\":2}}]";
    struct fanout_mapping_set set;
    char err[512];
    ck_assert_int_eq(
        fanout_mapping_set_parse(doc, strlen(doc), "m.json", &set, err, sizeof err), 0);
    ck_assert_uint_eq(set.count, 1);
    ck_assert_uint_eq(set.problem_count, 3);
    ck_assert_msg(strstr(set.problems[0], "mapping \"twice\" (#1): field \"active\": "
                                          "appears more than once"),
                  "%s", set.problems[0]);
    ck_assert_int_eq(set.details[0].active, -1);
    ck_assert_str_eq(set.details[0].source_arn, SRC);
    ck_assert_msg(strstr(set.problems[1], "mapping #2: field \"sourceArn\": appears more"),
                  "%s", set.problems[1]);
    ck_assert_ptr_null(set.details[1].source_arn); /* any source's */
    ck_assert_msg(strstr(set.problems[2], "mapping \"opt\" (#3): field \"o.k\""), "%s",
                  set.problems[2]);
    for (size_t i = 0; i < 3; i++)
        ck_assert(fanout_mapping_problem_applies(&set.details[i], SRC));
    ck_assert(
        fanout_mapping_problem_applies(&set.details[1], "arn:aws:kinesis:x:1:stream/z"));
    ck_assert(
        !fanout_mapping_problem_applies(&set.details[0], "arn:aws:kinesis:x:1:stream/z"));
    fanout_mapping_set_clean_up(&set);
}
END_TEST

START_TEST(long_id_is_capped_in_messages)
{
    /* a 1 MB id: the message still says which field and why */
    size_t n = 1 << 20;
    struct fanout_sbuf b = {0};
    fanout_sbuf_puts(&b, "[{\"sourceArn\":\"" SRC "\",\"id\":\"");
    for (size_t i = 0; i < n; i++)
        fanout_sbuf_putc(&b, 'x');
    fanout_sbuf_puts(&b, "\",\"type\":\"file\",\"destination\":\"-\",\"active\":1}]");
    struct fanout_mapping_set set;
    char err[512];
    ck_assert_int_eq(fanout_mapping_set_parse((const char *)b.bytes, b.len, "m.json", &set,
                                              err, sizeof err),
                     0);
    ck_assert_uint_eq(set.problem_count, 1);
    ck_assert_msg(
        strstr(set.problems[0], "\xe2\x80\xa6(1048576 bytes)\" (#0): field \"active\""),
        "%s", set.problems[0]);
    ck_assert_uint_lt(strlen(set.problems[0]), 600);
    fanout_mapping_set_clean_up(&set);
    fanout_sbuf_free(&b);
}
END_TEST

static void s_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(file_store_lookup_and_reload)
{
    char path[] = "/tmp/fanout-mapping-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    s_write(path, "[" GOOD("a", "true") "," GOOD("b", "false") "]");
    char err[512];
    struct fanout_store *st = fanout_store_file_new(path, err, sizeof err);
    ck_assert_msg(st != NULL, "%s", err);
    struct fanout_mapping *const *found;
    size_t n;
    ck_assert_int_eq(fanout_store_lookup(st, SRC, &found, &n, err, sizeof err), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(found[0]->id, "a");
    ck_assert_int_eq(fanout_store_lookup(st, "arn:aws:kinesis:x:1:stream/other", &found, &n,
                                         err, sizeof err),
                     0);
    ck_assert_uint_eq(n, 0);

    /* the file changes (size differs): re-read */
    s_write(path, "[" GOOD("a", "true") "," GOOD("b", "true") "," GOOD("c", "true") "]");
    ck_assert_int_eq(fanout_store_lookup(st, SRC, &found, &n, err, sizeof err), 0);
    ck_assert_uint_eq(n, 3);

    /* a broken edit keeps the last good mappings */
    s_write(path, "[{ broken");
    ck_assert_int_eq(fanout_store_lookup(st, SRC, &found, &n, err, sizeof err), 0);
    ck_assert_uint_eq(n, 3);
    /* and so does a deleted file */
    unlink(path);
    ck_assert_int_eq(fanout_store_lookup(st, SRC, &found, &n, err, sizeof err), 0);
    ck_assert_uint_eq(n, 3);
    fanout_store_destroy(st);
}
END_TEST

START_TEST(file_store_open_errors)
{
    char err[512];
    ck_assert_ptr_null(fanout_store_file_new("/nonexistent/m.json", err, sizeof err));
    ck_assert_msg(strstr(err, "/nonexistent/m.json: cannot read"), "%s", err);
    char path[] = "/tmp/fanout-mapping-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    s_write(path, "\"not a list\"");
    ck_assert_ptr_null(fanout_store_file_new(path, err, sizeof err));
    ck_assert_msg(strstr(err, "expected a JSON array"), "%s", err);
    unlink(path);
}
END_TEST

int main(void)
{
    fanout_log_set(FANOUT_LOG_ERROR, 0);
    Suite *s = suite_create("mapping");
    TCase *tc = tcase_create("schema");
    tcase_add_test(tc, full_mapping);
    tcase_add_test(tc, defaults);
    tcase_add_loop_test(tc, invalid_fields_named, 0, (int)(sizeof s_bad / sizeof *s_bad));
    tcase_add_test(tc, missing_id_named_by_position);
    tcase_add_test(tc, append_newlines);
    tcase_add_test(tc, whole_record);
    tcase_add_loop_test(tc, legacy_settings_ignored, 0,
                        (int)(sizeof s_legacy / sizeof *s_legacy));
    tcase_add_test(tc, collapse_names);
    tcase_add_test(tc, set_keeps_valid_reports_invalid);
    tcase_add_test(tc, set_document_errors);
    tcase_add_test(tc, set_refuses_repeated_names_per_mapping);
    tcase_add_test(tc, long_id_is_capped_in_messages);
    suite_add_tcase(s, tc);
    TCase *st = tcase_create("file-store");
    tcase_add_test(st, file_store_lookup_and_reload);
    tcase_add_test(st, file_store_open_errors);
    suite_add_tcase(s, st);
    return fanout_check_run(s);
}
