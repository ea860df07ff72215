/* Check suite for on-failure destinations ("onFailure"): the document
 * builder (engine/core/onfailure.c), the mapping field in a file and in a
 * DynamoDB item (mapping.c, store_ddb.c), and the engine's decisions
 * (engine.c), through fanout_engine_invoke with the `file` plugin and the
 * `flaky` test plugin (tests/plugins/flaky.c). */
#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/log.h"
#include "core/engine.h"
#include "core/kpl.h"
#include "core/kpl.pb-c.h"
#include "core/mapping.h"
#include "core/onfailure.h"
#include "core/store_ddb.h"

#define SRC "arn:aws:kinesis:us-east-1:123456789012:stream/s"

/* ---- the document ---------------------------------------------------------- */

static json_t *s_doc(const struct fanout_onfailure_doc *d)
{
    struct fanout_sbuf b = {0};
    ck_assert_int_eq(fanout_onfailure_document(d, &b), 0);
    json_error_t je;
    json_t *j = json_loadb(b.p, b.len, 0, &je);
    ck_assert_msg(j != NULL, "not JSON (%s): %s", je.text, b.p);
    fanout_sbuf_free(&b);
    return j;
}

static const char *s_str(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    ck_assert_msg(json_is_string(v), "member %s is not a string", k);
    return json_string_value(v);
}

START_TEST(document_fields)
{
    const char data[] = "{\"n\":1}";
    struct fanout_onfailure_doc d = {
        .reason = "failed: \"quoted\"\nnext line",
        .target_id = "to-kinesis",
        .target_type = "kinesis",
        .destination = "arn:aws:kinesis:us-east-1:1:stream/out",
        .source_arn = SRC,
        .sequence_number = "4959",
        .attempts = 4,
        .failed_ms = 1700000000123,
        .key = (const uint8_t *)"pk-1",
        .key_len = 4,
        .data = (const uint8_t *)data,
        .data_len = sizeof data - 1,
    };
    json_t *j = s_doc(&d);
    ck_assert_str_eq(s_str(j, "reason"), "failed: \"quoted\"\nnext line");
    ck_assert_str_eq(s_str(j, "targetId"), "to-kinesis");
    ck_assert_str_eq(s_str(j, "targetType"), "kinesis");
    ck_assert_str_eq(s_str(j, "destination"), "arn:aws:kinesis:us-east-1:1:stream/out");
    ck_assert_str_eq(s_str(j, "sourceArn"), SRC);
    ck_assert_str_eq(s_str(j, "sequenceNumber"), "4959");
    ck_assert(json_is_null(json_object_get(j, "subSequenceNumber")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "attempts")), 4);
    ck_assert_str_eq(s_str(j, "timestamp"), "2023-11-14T22:13:20.123Z");
    ck_assert_str_eq(s_str(j, "partitionKey"), "pk-1");
    ck_assert_str_eq(s_str(j, "data"), data);
    ck_assert_ptr_null(json_object_get(j, "dataEncoding"));
    ck_assert_uint_eq(json_object_size(j), 11);
    json_decref(j);
}
END_TEST

START_TEST(document_binary_data_and_kpl)
{
    const uint8_t data[] = {0xff, 0x00, 'a'};
    struct fanout_onfailure_doc d = {
        .reason = "too large",
        .aggregated = 1,
        .sub_sequence_number = 3,
        .failed_ms = 0,
        .data = data,
        .data_len = sizeof data,
    };
    json_t *j = s_doc(&d);
    ck_assert_str_eq(s_str(j, "dataEncoding"), "base64");
    ck_assert_str_eq(s_str(j, "data"), "/wBh");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "subSequenceNumber")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "attempts")), 0);
    ck_assert(json_is_null(json_object_get(j, "sequenceNumber")));
    ck_assert(json_is_null(json_object_get(j, "targetId")));
    ck_assert_str_eq(s_str(j, "partitionKey"), "");
    ck_assert_str_eq(s_str(j, "timestamp"), "1970-01-01T00:00:00.000Z");
    json_decref(j);
    /* empty data is UTF-8 */
    d.data = NULL;
    d.data_len = 0;
    j = s_doc(&d);
    ck_assert_str_eq(s_str(j, "data"), "");
    ck_assert_ptr_null(json_object_get(j, "dataEncoding"));
    json_decref(j);
}
END_TEST

/* ---- the mapping field ----------------------------------------------------- */

static struct fanout_mapping *s_parse(const char *on_failure, char *err, size_t n)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"sourceArn\":\"" SRC "\",\"id\":\"t\",\"type\":\"file\","
             "\"destination\":\"/tmp/x\",\"active\":true,\"onFailure\":%s}",
             on_failure);
    json_error_t je;
    json_t *obj = json_loads(text, 0, &je);
    ck_assert_msg(obj != NULL, "test JSON: %s", je.text);
    err[0] = 0;
    struct fanout_mapping *m = fanout_mapping_parse(obj, 3, err, n);
    json_decref(obj);
    return m;
}

static void s_check_child(const struct fanout_mapping *m)
{
    const struct fanout_mapping *c = m->on_failure;
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->source_arn, SRC);
    ck_assert_str_eq(c->id, "t:onFailure");
    ck_assert_str_eq(c->type, "sqs");
    ck_assert_str_eq(c->destination, "https://sqs.eu-west-1.amazonaws.com/1/dlq");
    ck_assert_str_eq(c->region, "eu-west-1");
    ck_assert_str_eq(c->role, "arn:aws:iam::210987654321:role/dlq");
    ck_assert_int_eq(c->collapse, FANOUT_COLLAPSE_NONE);
    ck_assert_int_eq(c->active, 1);
    ck_assert_ptr_null(c->on_failure);
    ck_assert_uint_eq(json_object_size(c->extra), 1); /* a plugin option */
    ck_assert_int_eq(json_integer_value(json_object_get(c->extra, "delaySeconds")), 5);
}

#define DLQ                                                                                \
    "{\"type\":\"sqs\",\"destination\":\"https://sqs.eu-west-1.amazonaws.com/1/dlq\","     \
    "\"region\":\"eu-west-1\",\"role\":\"arn:aws:iam::210987654321:role/dlq\","            \
    "\"delaySeconds\":5}"

START_TEST(field_object_and_string)
{
    char err[768];
    struct fanout_mapping *m = s_parse(DLQ, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    s_check_child(m);
    /* the field is not a plugin option of the mapping itself */
    ck_assert_ptr_null(json_object_get(m->extra, "onFailure"));
    fanout_mapping_free(m);

    json_t *s = json_string(DLQ);
    char *quoted = json_dumps(s, JSON_ENCODE_ANY);
    m = s_parse(quoted, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    s_check_child(m);
    fanout_mapping_free(m);
    free(quoted);
    json_decref(s);

    m = s_parse("null", err, sizeof err);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(m->on_failure);
    fanout_mapping_free(m);
}
END_TEST

START_TEST(field_problems_named)
{
    static const struct {
        const char *value, *message;
    } cases[] = {
        {"3", "mapping \"t\" (#3): field \"onFailure\": expected a destination object like "
              "{\"type\": \"sqs\", \"destination\": \"https://sqs...\"}, got a number"},
        {"\"[1,\"", "mapping \"t\" (#3): field \"onFailure\": expected a destination "
                    "object or a string holding one, got a string that is not JSON"},
        {"\"[1]\"", "field \"onFailure\": expected a destination object like"},
        {"{\"type\":\"file\"}",
         "mapping \"t\" (#3): field \"onFailure\": field \"destination\": required, "
         "missing"},
        {"{\"destination\":\"/x\"}",
         "mapping \"t\" (#3): field \"onFailure\": field \"type\": required, missing"},
        {"{\"type\":\"file\",\"destination\":\"/x\",\"onFailure\":{}}",
         "mapping \"t\" (#3): field \"onFailure\": field \"onFailure\": not accepted in an "
         "on-failure destination"},
        {"{\"type\":\"file\",\"destination\":\"/x\",\"collapse\":\"JSON\"}",
         "field \"onFailure\": field \"collapse\": not accepted"},
        {"{\"type\":\"file\",\"destination\":\"/x\",\"sourceArn\":\"" SRC "\"}",
         "field \"onFailure\": field \"sourceArn\": not accepted"},
        {"{\"type\":\"file\",\"destination\":\"/x\",\"region\":\"nowhere\"}",
         "mapping \"t\" (#3): field \"onFailure\": field \"region\": expected an AWS "
         "region"},
        {"{\"type\":\"../file\",\"destination\":\"/x\"}",
         "field \"onFailure\": field \"type\": \"../file\" is not a plugin name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[768];
        struct fanout_mapping *m = s_parse(cases[i].value, err, sizeof err);
        ck_assert_msg(m == NULL, "case %zu accepted", i);
        ck_assert_msg(strstr(err, cases[i].message) != NULL, "case %zu: %s", i, err);
    }
}
END_TEST

/* In the table, the field is a string holding the JSON (DynamoDB S). */
START_TEST(table_item_string)
{
    json_t *dlq = json_string(DLQ);
    json_t *item =
        json_pack("{s:{s:s},s:{s:s},s:{s:s},s:{s:s},s:{s:b},s:{s:O}}", "sourceArn", "S",
                  SRC, "id", "S", "t", "type", "S", "file", "destination", "S", "/tmp/x",
                  "active", "BOOL", 1, "onFailure", "S", dlq);
    char err[768];
    struct fanout_mapping *m = fanout_mapping_from_item(item, 0, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    s_check_child(m);
    /* written back: a string again, read back the same */
    json_t *back = fanout_mapping_to_item(m);
    ck_assert_ptr_nonnull(back);
    ck_assert(json_is_string(json_object_get(json_object_get(back, "onFailure"), "S")));
    fanout_mapping_free(m);
    m = fanout_mapping_from_item(back, 0, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    s_check_child(m);
    fanout_mapping_free(m);
    json_decref(back);

    /* from a mapping file (an object), stored as a string */
    m = s_parse(DLQ, err, sizeof err);
    back = fanout_mapping_to_item(m);
    ck_assert(json_is_string(json_object_get(json_object_get(back, "onFailure"), "S")));
    fanout_mapping_free(m);
    m = fanout_mapping_from_item(back, 0, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    s_check_child(m);
    fanout_mapping_free(m);
    json_decref(back);

    /* a DynamoDB map is not the table's form */
    json_object_set_new(item, "onFailure",
                        json_pack("{s:{s:{s:s}}}", "M", "type", "S", "file"));
    m = fanout_mapping_from_item(item, 0, err, sizeof err);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err, "field \"onFailure\": expected a string (DynamoDB S)"), "%s",
                  err);
    json_decref(item);
    json_decref(dlq);
}
END_TEST

/* ---- the engine ------------------------------------------------------------ */

static char s_dir[256];

static void s_setup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/fanout-onfailure-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s_dir));
}

static void s_teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static char *s_path(const char *name)
{
    static char buf[4][400];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 400, "%s/%s", s_dir, name);
    return p;
}

/* A mapping file of one flaky target (destination `target`, or
 * <dir>/target.log when NULL; extra JSON members `more`) whose onFailure
 * is {"type": of_type, "destination": of_dest, <of_more>}, and the engine
 * on it. */
static struct fanout_engine *s_engine(const char *target, const char *more,
                                      const char *of_type, const char *of_dest,
                                      const char *of_more)
{
    FILE *f = fopen(s_path("mappings.json"), "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "[{\"sourceArn\":\"" SRC "\",\"id\":\"t\",\"type\":\"flaky\","
            "\"destination\":\"%s\",\"active\":true%s,\"onFailure\":{\"type\":\"%s\","
            "\"destination\":\"%s\"%s}}]",
            target ? target : s_path("target.log"), more, of_type, of_dest, of_more);
    fclose(f);
    const char *build = getenv("FANOUT_BUILD_DIR");
    char plugins[1024];
    snprintf(plugins, sizeof plugins, "%s/plugins/file:%s/tests/plugins",
             build ? build : "build", build ? build : "build");
    char err[512];
    struct fanout_engine_config cfg = {0};
    ck_assert_int_eq(fanout_engine_config_from_env(&cfg, err, sizeof err), 0);
    cfg.config_path = s_path("mappings.json");
    cfg.plugin_path = plugins;
    cfg.retry_attempts = 2;
    cfg.retry_base_ms = 1;
    cfg.retry_cap_ms = 2;
    cfg.retry_seed = 7;
    cfg.max_parallel = 2;
    struct fanout_engine *e = fanout_engine_new(&cfg, NULL, err, sizeof err);
    ck_assert_msg(e != NULL, "%s", err);
    return e;
}

/* A Kinesis event: records as (key, data, data length), sequence numbers
 * 100, 101, ... */
struct s_in {
    const char *key;
    const void *data;
    size_t len;
};

static char *s_event(const struct s_in *in, size_t n)
{
    struct fanout_sbuf b = {0};
    fanout_sbuf_puts(&b, "{\"Records\":[");
    for (size_t i = 0; i < n; i++) {
        fanout_sbuf_printf(&b,
                           "%s{\"eventSource\":\"aws:kinesis\",\"eventSourceARN\":\"" SRC
                           "\",\"awsRegion\":\"us-east-1\",\"kinesis\":{\"partitionKey\":"
                           "\"%s\",\"sequenceNumber\":\"%zu\",\"data\":\"",
                           i ? "," : "", in[i].key, 100 + i);
        fanout_sbuf_base64(&b, in[i].data, in[i].len);
        fanout_sbuf_puts(&b, "\"}}");
    }
    fanout_sbuf_puts(&b, "]}");
    return b.p;
}

static int s_invoke(struct fanout_engine *e, const struct s_in *in, size_t n,
                    struct fanout_result *res)
{
    char *ev = s_event(in, n);
    char err[512];
    int rc = fanout_engine_invoke(e, ev, strlen(ev), res, err, sizeof err);
    ck_assert_msg(rc >= 0, "%s", err);
    free(ev);
    return rc;
}

/* The documents the `file` on-failure destination got, by sequence number
 * (an object: "<seq>" or "<seq>/<sub>" -> document). */
static json_t *s_documents(const char *name)
{
    json_t *out = json_object();
    FILE *f = fopen(s_path(name), "r");
    if (!f)
        return out;
    char line[65536];
    while (fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *l = json_loads(line, 0, &je);
        ck_assert_msg(l != NULL, "%s: %s", je.text, line);
        json_t *doc = json_loads(s_str(l, "data"), 0, &je);
        ck_assert_msg(doc != NULL, "document: %s", je.text);
        char k[128];
        const json_t *sub = json_object_get(doc, "subSequenceNumber");
        if (json_is_integer(sub))
            snprintf(k, sizeof k, "%s/%lld", s_str(doc, "sequenceNumber"),
                     (long long)json_integer_value(sub));
        else
            snprintf(k, sizeof k, "%s", s_str(doc, "sequenceNumber"));
        ck_assert_msg(!json_object_get(out, k), "two documents for %s", k);
        json_object_set_new(out, k, doc);
        json_decref(l);
    }
    fclose(f);
    return out;
}

static const char *s_failed_seqs(const struct fanout_result *res, char *buf, size_t n)
{
    buf[0] = 0;
    for (size_t i = 0; i < res->failed_seq_count; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", i ? "," : "",
                 res->failed_seqs[i]);
    return buf;
}

/* The outcome: the sequence numbers reported failed, and the target's
 * delivered, failed and on-failure counts. */
static void s_expect(const struct fanout_result *res, const char *failed_seqs,
                     size_t delivered, size_t failed, size_t on_failure)
{
    char seqs[256];
    ck_assert_str_eq(s_failed_seqs(res, seqs, sizeof seqs), failed_seqs);
    ck_assert_uint_eq(res->target_count, 1);
    ck_assert_uint_eq(res->targets[0].delivered, delivered);
    ck_assert_uint_eq(res->targets[0].failed, failed);
    ck_assert_uint_eq(res->targets[0].on_failure, on_failure);
}

static const char s_big[] =
    "this record is longer than the 64 bytes the flaky plugin takes "
    "in one message";

/* Refused, given up on, too large: each one document at the on-failure
 * destination, handled; the rest delivered. */
START_TEST(refused_records_handed_over)
{
    char target[400];
    snprintf(target, sizeof target, "%s", s_path("target.log"));
    struct fanout_engine *e = s_engine(NULL, "", "file", s_path("dlq.jsonl"), "");
    const struct s_in in[] = {
        {"a", "ok", 2},        {"b", "fatal:\xff\xfe", 8},
        {"c", "retry:9:y", 9}, {"d", s_big, sizeof s_big - 1},
        {"e", "fine", 4},
    };
    struct fanout_result res;
    ck_assert_int_eq(s_invoke(e, in, 5, &res), 0);
    s_expect(&res, "", 2, 0, 3);
    json_t *docs = s_documents("dlq.jsonl");
    ck_assert_uint_eq(json_object_size(docs), 3);
    const json_t *d = json_object_get(docs, "101");
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(s_str(d, "reason"),
                     "failed: ValidationError: refused: fatal:\xef\xbf\xbd"
                     "\xef\xbf\xbd (1 attempt)");
    ck_assert_str_eq(s_str(d, "targetId"), "t");
    ck_assert_str_eq(s_str(d, "targetType"), "flaky");
    ck_assert_str_eq(s_str(d, "destination"), target);
    ck_assert_str_eq(s_str(d, "sourceArn"), SRC);
    ck_assert_str_eq(s_str(d, "partitionKey"), "b");
    ck_assert_str_eq(s_str(d, "dataEncoding"), "base64");
    ck_assert_str_eq(s_str(d, "data"), "ZmF0YWw6//4=");
    ck_assert_int_eq(json_integer_value(json_object_get(d, "attempts")), 1);
    d = json_object_get(docs, "102");
    ck_assert_ptr_nonnull(d);
    ck_assert_msg(strstr(s_str(d, "reason"), "gave up after 2 attempts"), "%s",
                  s_str(d, "reason"));
    ck_assert_int_eq(json_integer_value(json_object_get(d, "attempts")), 2);
    ck_assert_str_eq(s_str(d, "data"), "retry:9:y");
    d = json_object_get(docs, "103");
    ck_assert_ptr_nonnull(d);
    ck_assert_msg(strstr(s_str(d, "reason"), "64"), "%s", s_str(d, "reason"));
    ck_assert_int_eq(json_integer_value(json_object_get(d, "attempts")), 0);
    ck_assert_str_eq(s_str(d, "data"), s_big);
    json_decref(docs);
    fanout_result_clean_up(&res);
    fanout_engine_destroy(e);
}
END_TEST

/* The on-failure destination cannot be opened: the records fail as they
 * would without one, with both reasons. */
START_TEST(on_failure_destination_fails_too)
{
    struct fanout_engine *e =
        s_engine(NULL, "", "flaky", "/nonexistent/fanout/dlq.log", "");
    const struct s_in in[] = {{"a", "ok", 2}, {"b", "fatal:x", 7}, {"c", "fatal:y", 7}};
    struct fanout_result res;
    ck_assert_int_eq(s_invoke(e, in, 3, &res), 1);
    s_expect(&res, "101,102", 1, 2, 0);
    fanout_result_clean_up(&res);
    fanout_engine_destroy(e);
}
END_TEST

/* Documents too large for the on-failure destination fail; the others are
 * handled (maxBytes of the flaky plugin as on-failure destination). */
START_TEST(document_refused_by_its_limits)
{
    struct fanout_engine *e =
        s_engine(NULL, "", "flaky", s_path("dlq.log"), ",\"maxBytes\":420");
    char longer[200];
    memset(longer, 'z', sizeof longer);
    memcpy(longer, "fatal:", 6);
    const struct s_in in[] = {{"a", "fatal:x", 7}, {"b", longer, sizeof longer}};
    struct fanout_result res;
    ck_assert_int_eq(s_invoke(e, in, 2, &res), 1);
    s_expect(&res, "101", 0, 1, 1);
    fanout_result_clean_up(&res);
    fanout_engine_destroy(e);
}
END_TEST

/* The target's instance cannot be opened at run time: every record goes
 * to the on-failure destination, never sent (0 attempts). */
START_TEST(target_not_opened)
{
    struct fanout_engine *e =
        s_engine("/nonexistent/fanout/target.log", "", "file", s_path("dlq.jsonl"), "");
    const struct s_in in[] = {{"a", "one", 3}, {"b", "two", 3}};
    struct fanout_result res;
    ck_assert_int_eq(s_invoke(e, in, 2, &res), 0);
    s_expect(&res, "", 0, 0, 2);
    ck_assert_ptr_nonnull(res.targets[0].error);
    json_t *docs = s_documents("dlq.jsonl");
    ck_assert_uint_eq(json_object_size(docs), 2);
    const json_t *d = json_object_get(docs, "100");
    ck_assert_ptr_nonnull(d);
    ck_assert_msg(strstr(s_str(d, "reason"), "could not open"), "%s", s_str(d, "reason"));
    ck_assert_int_eq(json_integer_value(json_object_get(d, "attempts")), 0);
    ck_assert_str_eq(s_str(d, "data"), "one");
    json_decref(docs);
    fanout_result_clean_up(&res);
    fanout_engine_destroy(e);
}
END_TEST

/* An invalid on-failure destination makes the mapping invalid: its records
 * fail, and nothing reaches either destination. */
START_TEST(invalid_on_failure_never_used)
{
    struct fanout_engine *e = s_engine(NULL, "", "nosuch", s_path("dlq.jsonl"), "");
    const struct s_in in[] = {{"a", "fatal:x", 7}, {"b", "ok", 2}};
    struct fanout_result res;
    ck_assert_int_eq(s_invoke(e, in, 2, &res), 1);
    s_expect(&res, "100,101", 0, 2, 0);
    ck_assert_msg(strstr(res.targets[0].error,
                         "field \"onFailure\": field \"type\": plugin "
                         "\"nosuch\" not found"),
                  "%s", res.targets[0].error);
    ck_assert_int_ne(access(s_path("target.log"), F_OK), 0);
    ck_assert_int_ne(access(s_path("dlq.jsonl"), F_OK), 0);
    fanout_result_clean_up(&res);

    /* the same check as `fanout validate` */
    struct fanout_store *st = fanout_engine_store(e);
    const struct fanout_mapping_set *set;
    char err[768];
    ck_assert_int_eq(st->ops->all(st, &set, err, sizeof err), 0);
    ck_assert_uint_eq(set->count, 1);
    ck_assert_int_ne(fanout_engine_check_mapping(e, set->items[0], err, sizeof err), 0);
    ck_assert_msg(
        strncmp(err, "mapping \"t\": field \"onFailure\": field \"type\": ", 45) == 0, "%s",
        err);
    fanout_engine_destroy(e);
}
END_TEST

/* KPL: an aggregate is handled only when each of its failed user records
 * was confirmed by the on-failure destination. */
static void s_aggregate(const char *const *datas, size_t n, struct fanout_sbuf *out)
{
    ProtobufCBinaryData key = {2, (uint8_t *)"uk"};
    Record r[4], *recs[4];
    for (size_t i = 0; i < n; i++) {
        record__init(&r[i]);
        r[i].data = (ProtobufCBinaryData){strlen(datas[i]), (uint8_t *)datas[i]};
        recs[i] = &r[i];
    }
    AggregatedRecord agg = AGGREGATED_RECORD__INIT;
    agg.n_partition_key_table = 1;
    agg.partition_key_table = &key;
    agg.n_records = n;
    agg.records = recs;
    size_t len = aggregated_record__get_packed_size(&agg);
    uint8_t *pb = malloc(len);
    ck_assert_uint_eq(aggregated_record__pack(&agg, pb), len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    ck_assert(EVP_Digest(pb, len, md, &md_len, EVP_md5(), NULL));
    fanout_sbuf_reset(out);
    fanout_sbuf_put(out, FANOUT_KPL_MAGIC, FANOUT_KPL_MAGIC_LEN);
    fanout_sbuf_put(out, pb, len);
    fanout_sbuf_put(out, md, md_len);
    free(pb);
}

START_TEST(kpl_aggregate_handled_when_each_user_record_is)
{
    struct fanout_engine *e = s_engine(NULL, ",\"deaggregate\":true", "flaky",
                                       s_path("dlq.log"), ",\"maxBytes\":420");
    char longer[201];
    memset(longer, 'z', 200);
    memcpy(longer, "fatal:", 6);
    longer[200] = 0;
    const char *a[] = {"fatal:a", longer}; /* the second one's document is too large */
    const char *b[] = {"fatal:b", "ok"};
    struct fanout_sbuf ab = {0}, bb = {0};
    s_aggregate(a, 2, &ab);
    s_aggregate(b, 2, &bb);
    const struct s_in in[] = {{"pa", ab.bytes, ab.len}, {"pb", bb.bytes, bb.len}};
    struct fanout_result res;
    ck_assert_int_eq(s_invoke(e, in, 2, &res), 1);
    s_expect(&res, "100", 1, 1, 2);
    fanout_sbuf_free(&ab);
    fanout_sbuf_free(&bb);
    fanout_result_clean_up(&res);
    fanout_engine_destroy(e);
}
END_TEST

int main(void)
{
    fanout_log_set(FANOUT_LOG_ERROR, 0);
    Suite *s = suite_create("onfailure");
    TCase *tc = tcase_create("document");
    tcase_add_test(tc, document_fields);
    tcase_add_test(tc, document_binary_data_and_kpl);
    suite_add_tcase(s, tc);
    tc = tcase_create("mapping");
    tcase_add_test(tc, field_object_and_string);
    tcase_add_test(tc, field_problems_named);
    tcase_add_test(tc, table_item_string);
    suite_add_tcase(s, tc);
    tc = tcase_create("engine");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, refused_records_handed_over);
    tcase_add_test(tc, on_failure_destination_fails_too);
    tcase_add_test(tc, document_refused_by_its_limits);
    tcase_add_test(tc, target_not_opened);
    tcase_add_test(tc, invalid_on_failure_never_used);
    tcase_add_test(tc, kpl_aggregate_handled_when_each_user_record_is);
    suite_add_tcase(s, tc);
    return fanout_check_run(s);
}
