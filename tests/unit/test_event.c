#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "common/jscan.h"
#include "common/log.h"
#include "fanout/swar.h"

static struct fanout_arena s_arena;

static void s_setup(void)
{
    memset(&s_arena, 0, sizeof s_arena);
}

static void s_teardown(void)
{
    fanout_arena_free(&s_arena);
}

static char *s_slurp(const char *name, size_t *len)
{
    char path[1024];
    const char *dir = getenv("FANOUT_TESTDATA");
    snprintf(path, sizeof path, "%s/events/%s", dir ? dir : "tests/data", name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s (set FANOUT_TESTDATA)", path);
    struct fanout_sbuf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fanout_sbuf_put(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return (char *)b.bytes;
}

static void s_parse_file(const char *name, struct fanout_event *ev)
{
    size_t len;
    char *file = s_slurp(name, &len);
    /* kept as long as the records: they point into the event's text */
    char *text = fanout_arena_memdup(&s_arena, file, len);
    free(file);
    char err[512];
    ck_assert_msg(fanout_event_parse(text, len, &s_arena, ev, err, sizeof err) == 0, "%s",
                  err);
}

static void s_parse_text(const char *text, struct fanout_event *ev)
{
    char err[512];
    ck_assert_msg(fanout_event_parse(text, strlen(text), &s_arena, ev, err, sizeof err) ==
                      0,
                  "%s", err);
}

START_TEST(kinesis_sample)
{
    struct fanout_event ev;
    s_parse_file("kinesis.json", &ev);
    ck_assert_uint_eq(ev.count, 5);
    ck_assert_uint_eq(ev.group_count, 1);
    ck_assert_str_eq(ev.groups[0].source_arn,
                     "arn:aws:kinesis:us-east-1:123456789012:stream/example-stream");
    const struct fanout_raw_record *r = &ev.records[0];
    ck_assert_ptr_null(r->error);
    ck_assert_int_eq(r->kind, FANOUT_SRC_KINESIS);
    /* the key is read by its length (it points into the event's text) */
    ck_assert_uint_eq(r->key_len, strlen("pk-1001-894"));
    ck_assert(memcmp(r->key, "pk-1001-894", r->key_len) == 0);
    ck_assert_str_eq(r->sequence_number,
                     "49590338271490256608559692538361571095921575989136588898");
    ck_assert_str_eq(r->region, "us-east-1");
    ck_assert(r->data_len > 10 && memcmp(r->data, "{\"id\": 0, \"seed\": 1001", 22) == 0);

    struct fanout_decoded d;
    ck_assert_int_eq(
        fanout_decode_group(&ev.groups[0], (struct fanout_decode_opts){1, 1}, &s_arena, &d),
        0);
    ck_assert_uint_eq(d.count, 5);
    ck_assert_uint_eq(d.failed_count, 0);
    ck_assert_ptr_eq(d.records[0]->pub.data, r->data);
    ck_assert_str_eq(d.records[4]->pub.action, "PUT");
    fanout_event_clean_up(&ev);
}
END_TEST

START_TEST(dynamodb_sample)
{
    struct fanout_event ev;
    s_parse_file("dynamodb.json", &ev);
    ck_assert_uint_eq(ev.group_count, 1);
    ck_assert_uint_gt(ev.count, 2);
    const struct fanout_raw_record *r = &ev.records[0];
    ck_assert_ptr_null(r->error);
    ck_assert_str_eq((const char *)r->key, "h1002-0|0");
    ck_assert_str_eq(r->action, "INSERT");
    ck_assert_str_eq(r->sequence_number, "111");

    struct fanout_decoded raw, plain;
    ck_assert_int_eq(fanout_decode_group(&ev.groups[0], (struct fanout_decode_opts){0, 0},
                                         &s_arena, &raw),
                     0);
    ck_assert_int_eq(fanout_decode_group(&ev.groups[0], (struct fanout_decode_opts){0, 1},
                                         &s_arena, &plain),
                     0);
    ck_assert_uint_eq(raw.count, ev.count);
    ck_assert_uint_eq(plain.count, ev.count);
    const char *dj = (const char *)raw.records[0]->pub.data;
    ck_assert_msg(strstr(dj, "\"price\":{\"N\":\"655072485368.431\"}"), "%s", dj);
    const char *pj = (const char *)plain.records[0]->pub.data;
    ck_assert_msg(strstr(pj, "\"price\":655072485368.431"), "%s", pj);
    ck_assert_msg(strstr(pj, "\"big\":12345678901234567890123456789.5"), "%s", pj);
    ck_assert(
        fanout_json_valid(plain.records[0]->pub.data, plain.records[0]->pub.data_len));
    /* a REMOVE has no NewImage: {} */
    for (size_t i = 0; i < ev.count; i++)
        if (!strcmp(ev.records[i].action, "REMOVE"))
            ck_assert_str_eq((const char *)plain.records[i]->pub.data, "{}");
    fanout_event_clean_up(&ev);
}
END_TEST

/* The stream arrival times (for the batch age metric): per record, the
 * oldest per source and per event; absent or implausible ones are 0. */
START_TEST(arrival_times)
{
    struct fanout_event ev;
    s_parse_text(
        "{\"Records\":["
        "{\"eventSource\":\"aws:kinesis\",\"eventSourceARN\":\"arn:aws:kinesis:r:1:stream/"
        "a\","
        "\"kinesis\":{\"partitionKey\":\"k\",\"sequenceNumber\":\"1\",\"data\":\"YQ==\","
        "\"approximateArrivalTimestamp\":1700000005.25}},"
        "{\"eventSource\":\"aws:kinesis\",\"eventSourceARN\":\"arn:aws:kinesis:r:1:stream/"
        "a\","
        "\"kinesis\":{\"partitionKey\":\"k\",\"sequenceNumber\":\"2\",\"data\":\"YQ==\","
        "\"approximateArrivalTimestamp\":1700000001.5}},"
        "{\"eventSource\":\"aws:kinesis\",\"eventSourceARN\":\"arn:aws:kinesis:r:1:stream/"
        "a\","
        "\"kinesis\":{\"partitionKey\":\"k\",\"sequenceNumber\":\"3\",\"data\":\"YQ==\","
        "\"approximateArrivalTimestamp\":\"1600000000\"}},"
        "{\"eventSource\":\"aws:kinesis\",\"eventSourceARN\":\"arn:aws:kinesis:r:1:stream/"
        "a\","
        "\"kinesis\":{\"partitionKey\":\"k\",\"sequenceNumber\":\"4\",\"data\":\"YQ==\","
        "\"approximateArrivalTimestamp\":-5}},"
        "{\"eventSource\":\"aws:dynamodb\",\"eventName\":\"INSERT\","
        "\"eventSourceARN\":\"arn:aws:dynamodb:r:1:table/t/stream/x\",\"dynamodb\":{"
        "\"ApproximateCreationDateTime\":1699999999,\"Keys\":{\"id\":{\"S\":\"a\"}},"
        "\"SequenceNumber\":\"9\",\"NewImage\":{\"id\":{\"S\":\"a\"}}}},"
        "{\"eventSource\":\"aws:sns\",\"EventSource\":\"aws:sns\",\"Sns\":{"
        "\"MessageId\":\"m\",\"TopicArn\":\"arn:aws:sns:r:1:t\",\"Message\":\"hi\"}}]}",
        &ev);
    ck_assert_uint_eq(ev.count, 6);
    ck_assert_int_eq(ev.records[0].arrival_ms, 1700000005250);
    ck_assert_int_eq(ev.records[1].arrival_ms, 1700000001500);
    ck_assert_int_eq(ev.records[2].arrival_ms, 0); /* a string: not a time */
    ck_assert_int_eq(ev.records[3].arrival_ms, 0);
    ck_assert_int_eq(ev.records[4].arrival_ms, 1699999999000);
    ck_assert_int_eq(ev.records[5].arrival_ms, 0);
    ck_assert_uint_eq(ev.group_count, 3);
    ck_assert_int_eq(ev.groups[0].oldest_arrival_ms, 1700000001500);
    ck_assert_int_eq(ev.groups[1].oldest_arrival_ms, 1699999999000);
    ck_assert_int_eq(ev.groups[2].oldest_arrival_ms, 0);
    ck_assert_int_eq(ev.oldest_arrival_ms, 1699999999000);
    fanout_event_clean_up(&ev);
}
END_TEST

/* Times as Lambda writes them (up to 3 decimals) are read in integers,
 * others through strtod: every one gives what strtod's seconds * 1000
 * rounded give (0 outside 2000..2100), and escaped member names are found
 * as fanout_jget finds them. */
START_TEST(arrival_times_match_strtod)
{
    static const char *const times[] = {"1545084650.987",
                                        "1545084650.99",
                                        "1545084650.9",
                                        "1545084650",
                                        "1545084651.0370002",
                                        "1545084650.9875",
                                        "1545084650.98751",
                                        "1700000005.125",
                                        "1700000005.001",
                                        "946684800",
                                        "946684799.999",
                                        "946684800.0",
                                        "946684800.001",
                                        "4102444800",
                                        "4102444800.000",
                                        "4102444800.001",
                                        "4102444801",
                                        "0",
                                        "0.5",
                                        "-1545084650.987",
                                        "1545084650.987e0",
                                        "1.545084650987E9",
                                        "154508465098.7",
                                        "999999999999.999",
                                        "9999999999999999",
                                        "123456789012345.6",
                                        "1545084650.0005",
                                        "1545084650.9995",
                                        "1234567890.123456789",
                                        "1545084650.98749999",
                                        "1545084650.987500001",
                                        "1545084650.9874999999",
                                        "946684799.9999999999",
                                        "946684799.999999999",
                                        "946684800.0009999",
                                        "4102444799.9995",
                                        "4102444799.99849",
                                        "4102444800.0004",
                                        "1545084650.0000000001",
                                        "1545084650.999999999",
                                        "1545084650.1234567"};
    size_t n = sizeof times / sizeof *times;
    struct fanout_sbuf b = {0};
    fanout_sbuf_puts(&b, "{\"Records\":[");
    for (size_t i = 0; i < n; i++) {
        char rec[512];
        /* every other record with its member names escaped, "kinesis"
         * after an escaped name that is not one of them */
        snprintf(
            rec, sizeof rec,
            i % 2 ? "%s{\"event\\u0053ource\":\"aws:kinesis\",\"x\\u0079\":1,"
                    "\"kinesis\":{\"partition\\u004bey\":\"k\",\"sequenceNumber\":"
                    "\"%zu\",\"d\\u0061ta\":\"YQ==\",\"approximateArrivalTimestamp\":%s},"
                    "\"aws\\u0052egion\":\"r%zu\",\"eventSourceARN\":\"arn:aws:kinesis:"
                    "r:1:stream/a\"}"
                  : "%s{\"eventSource\":\"aws:kinesis\",\"eventSourceARN\":\"arn:aws:"
                    "kinesis:r:1:stream/a\",\"kinesis\":{\"partitionKey\":\"k\","
                    "\"sequenceNumber\":\"%zu\",\"data\":\"YQ==\","
                    "\"approximateArrivalTimestamp\":%s},\"awsRegion\":\"r%zu\"}",
            i ? "," : "", i, times[i], i);
        fanout_sbuf_puts(&b, rec);
    }
    fanout_sbuf_puts(&b, "]}");
    char *text = fanout_arena_memdup(&s_arena, b.bytes, b.len);
    fanout_sbuf_free(&b);
    struct fanout_event ev;
    s_parse_text(text, &ev);
    ck_assert_uint_eq(ev.count, n);
    for (size_t i = 0; i < n; i++) {
        const struct fanout_raw_record *r = &ev.records[i];
        ck_assert_msg(r->error == NULL, "%s", r->error);
        double secs = strtod(times[i], NULL);
        int64_t want =
            secs < 946684800.0 || secs > 4102444800.0 ? 0 : (int64_t)(secs * 1000.0 + 0.5);
        ck_assert_msg(r->arrival_ms == want, "%s: %lld, expected %lld", times[i],
                      (long long)r->arrival_ms, (long long)want);
        char seq[32], region[32];
        snprintf(seq, sizeof seq, "%zu", i);
        snprintf(region, sizeof region, "r%zu", i);
        ck_assert_str_eq(r->sequence_number, seq);
        ck_assert_str_eq(r->region, region);
        ck_assert_str_eq(r->source_arn, "arn:aws:kinesis:r:1:stream/a");
        ck_assert_uint_eq(r->key_len, 1);
        ck_assert(r->key[0] == 'k');
        ck_assert_uint_eq(r->data_len, 1);
        ck_assert(r->data[0] == 'a');
    }
    fanout_event_clean_up(&ev);
}
END_TEST

/* appendNewlines: each record's data (Kinesis, KPL user record, DynamoDB
 * image) gets a '\n', in a copy: the other variants keep theirs. */
START_TEST(append_newline_per_record_in_a_copy)
{
    static const char *const files[] = {"kinesis.json", "kpl-aggregated.json",
                                        "dynamodb.json"};
    for (size_t f = 0; f < 3; f++) {
        struct fanout_event ev;
        s_parse_file(files[f], &ev);
        struct fanout_decode_opts plain_opts = {1, 1, 0, 0}, nl_opts = {1, 1, 0, 1};
        struct fanout_decoded plain, nl;
        ck_assert_int_eq(fanout_decode_group(&ev.groups[0], plain_opts, &s_arena, &plain),
                         0);
        ck_assert_int_eq(fanout_decode_group(&ev.groups[0], nl_opts, &s_arena, &nl), 0);
        ck_assert_uint_eq(nl.count, plain.count);
        ck_assert_uint_eq(nl.failed_count, plain.failed_count);
        ck_assert_uint_gt(nl.count, 1);
        for (size_t i = 0; i < nl.count; i++) {
            const struct fanout_record *a = &plain.records[i]->pub,
                                       *b = &nl.records[i]->pub;
            ck_assert_uint_eq(b->data_len, a->data_len + 1);
            ck_assert(memcmp(a->data, b->data, a->data_len) == 0);
            ck_assert_int_eq(b->data[a->data_len], '\n');
            ck_assert_int_eq(b->data[b->data_len], 0);
            ck_assert_ptr_ne(a->data, b->data);
            ck_assert_uint_eq(b->key_len, a->key_len);
            ck_assert_uint_eq(b->sub_sequence_number, a->sub_sequence_number);
        }
        /* the source's own data is untouched */
        const struct fanout_raw_record *r = &ev.records[0];
        if (r->kind == FANOUT_SRC_KINESIS && !plain.records[0]->pub.aggregated)
            ck_assert_ptr_eq(plain.records[0]->pub.data, r->data);
        fanout_event_clean_up(&ev);
    }
}
END_TEST

/* The KPL sample: user records in order, plain records passed through, the
 * corrupt last record reported with its sequence number. */
START_TEST(kpl_sample_deaggregated)
{
    struct fanout_event ev;
    s_parse_file("kpl-aggregated.json", &ev);
    struct fanout_decoded d;
    ck_assert_int_eq(
        fanout_decode_group(&ev.groups[0], (struct fanout_decode_opts){1, 0}, &s_arena, &d),
        0);
    size_t len;
    char *expected = s_slurp("kpl-aggregated.expected.jsonl", &len);
    size_t i = 0;
    for (char *line = strtok(expected, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        ck_assert_ptr_nonnull(j);
        const char *corrupt = json_string_value(json_object_get(j, "corrupt"));
        if (corrupt) {
            ck_assert_uint_eq(d.failed_count, 1);
            ck_assert_str_eq(d.failures[0].raw->sequence_number, corrupt);
            ck_assert_msg(strstr(d.failures[0].reason, corrupt) &&
                              strstr(d.failures[0].reason, "digest"),
                          "%s", d.failures[0].reason);
        } else {
            const char *key = json_string_value(json_object_get(j, "key"));
            const char *b64 = json_string_value(json_object_get(j, "dataB64"));
            ck_assert_uint_lt(i, d.count);
            const struct fanout_record *r = &d.records[i]->pub;
            ck_assert_uint_eq(r->key_len, strlen(key));
            ck_assert(memcmp(r->key, key, r->key_len) == 0);
            struct fanout_sbuf enc = {0};
            fanout_sbuf_base64(&enc, r->data, r->data_len);
            ck_assert_str_eq(enc.bytes ? (char *)enc.bytes : "", b64);
            fanout_sbuf_free(&enc);
            i++;
        }
        json_decref(j);
    }
    ck_assert_uint_eq(i, d.count);
    free(expected);

    /* without deaggregate, every Kinesis record passes through as is */
    struct fanout_decoded pass;
    ck_assert_int_eq(fanout_decode_group(&ev.groups[0], (struct fanout_decode_opts){0, 0},
                                         &s_arena, &pass),
                     0);
    ck_assert_uint_eq(pass.count, ev.count);
    ck_assert_uint_eq(pass.failed_count, 0);
    fanout_event_clean_up(&ev);
}
END_TEST

START_TEST(event_level_errors)
{
    struct fanout_event ev;
    char err[512];
    ck_assert_int_eq(
        fanout_event_parse("{\"Records\": [", 13, &s_arena, &ev, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "event is not valid JSON: line 1"), "%s", err);
    ck_assert_int_eq(
        fanout_event_parse("{\"records\":[]}", 14, &s_arena, &ev, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no \"Records\" array"), "%s", err);
    ck_assert_int_eq(fanout_event_parse("[1,2]", 5, &s_arena, &ev, err, sizeof err), -1);
    ck_assert_int_eq(fanout_event_parse("", 0, &s_arena, &ev, err, sizeof err), -1);
}
END_TEST

#define KREC(pk, seq, data)                                                                \
    "{\"eventSource\":\"aws:kinesis\",\"eventSourceARN\":\"arn:aws:kinesis:eu-west-1:1:"   \
    "stream/s\",\"kinesis\":{\"partitionKey\":\"" pk "\",\"sequenceNumber\":\"" seq        \
    "\",\"data\":\"" data "\"}}"

/* SNS records: the members read as text (EventSource, Sns.TopicArn, the
 * source; Sns.MessageId, the sequence number and key) that hold a NUL fail
 * their record, as the Kinesis and DynamoDB ones do: read up to the NUL,
 * "topic\u0000x" is the topic's ARN (its targets get the message). */
#define SREC(src, topic, id)                                                               \
    "{\"EventSource\":\"" src "\",\"Sns\":{\"MessageId\":\"" id "\",\"TopicArn\":\"" topic \
    "\",\"Message\":\"m\"}}"
START_TEST(sns_text_members_with_nul_fail)
{
    struct fanout_event ev;
    s_parse_text(
        "{\"Records\":[" SREC("aws:sns", "arn:aws:sns:eu-west-1:1:t\\u0000x", "1") "," SREC(
            "aws:sns\\u0000x", "arn:aws:sns:eu-west-1:1:t",
            "2") "," SREC("aws:sns", "arn:aws:sns:eu-west-1:1:t",
                          "3\\u0000y") "," SREC("aws:sns", "arn:aws:sns:eu-west-1:1:t",
                                                "4") "]}",
        &ev);
    ck_assert_uint_eq(ev.count, 4);
    static const char *const want[] = {
        "\"Sns.TopicArn\": holds a NUL character (\\u0000)",
        "\"EventSource\": holds a NUL character (\\u0000)",
        "\"Sns.MessageId\": holds a NUL character (\\u0000)",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        ck_assert_msg(ev.records[i].error && strstr(ev.records[i].error, want[i]),
                      "record %zu: %s", i, ev.records[i].error);
    ck_assert_msg(!ev.records[3].error, "record 3: %s", ev.records[3].error);
    ck_assert_str_eq(ev.records[3].source_arn, "arn:aws:sns:eu-west-1:1:t");
}
END_TEST

/* A member read as text that holds a NUL (\u0000) fails its record, named:
 * read up to the NUL, "REMOVE\u0000x" would be REMOVE and an ARN another
 * stream's. Escapes without a NUL read as before. */
#define DREC(name, seq)                                                                    \
    "{\"eventSource\":\"aws:dynamodb\",\"eventSourceARN\":\"arn:aws:dynamodb:eu-west-1:1:" \
    "table/t/stream/x\",\"eventName\":\"" name "\",\"dynamodb\":{\"Keys\":{\"k\":{\"S\":"  \
    "\"a\"}},\"SequenceNumber\":\"" seq "\"}}"
START_TEST(text_members_with_nul_fail)
{
    struct fanout_event ev;
    s_parse_text(
        "{\"Records\":["
        "{\"eventSource\":\"aws:kinesis\",\"eventSourceARN\":\"arn:aws:kinesis:eu-west-1:1:"
        "stream/s\\u0000x\",\"kinesis\":{\"partitionKey\":\"a\",\"sequenceNumber\":\"1\","
        "\"data\":\"\"}},"
        "{\"eventSource\":\"aws:kinesis\\u0000\",\"eventSourceARN\":\"arn:aws:kinesis:eu-"
        "west-1:1:stream/s\",\"kinesis\":{\"partitionKey\":\"a\",\"sequenceNumber\":\"2\","
        "\"data\":\"\"}},"
        "{\"eventSource\":\"aws:kinesis\",\"awsRegion\":\"eu-west-1\\u0000\","
        "\"eventSourceARN\":\"arn:aws:kinesis:eu-west-1:1:stream/s\",\"kinesis\":{"
        "\"partitionKey\":\"a\",\"sequenceNumber\":\"3\",\"data\":\"\"}}," KREC(
            "a", "4\\u00005",
            "") "," DREC("REMOVE\\u0000x",
                         "6") "," DREC("INSERT",
                                       "7\\u0000") "," KREC("a", "8",
                                                            "aGVsbG8=") ","
                                                                        "{\"eventSource\":"
                                                                        "\"aws:kinesis\","
                                                                        "\"eventSourceARN\""
                                                                        ":\"arn:aws:"
                                                                        "kinesis:eu-west-1:"
                                                                        "1:"
                                                                        "stream\\/"
                                                                        "s\",\"kinesis\":{"
                                                                        "\"partitionKey\":"
                                                                        "\"a\\u0000b\","
                                                                        "\"sequenceNumber\""
                                                                        ":\"9\","
                                                                        "\"data\":\"\"}}"
                                                                        "," DREC(
                                                                            "REM\\u004fVE",
                                                                            "10") "]}",
        &ev);
    ck_assert_uint_eq(ev.count, 9);
    static const char *const want[] = {
        "\"eventSourceARN\": holds a NUL character (\\u0000)",
        "\"eventSource\": holds a NUL character (\\u0000)",
        "\"awsRegion\": holds a NUL character (\\u0000)",
        "\"kinesis.sequenceNumber\": holds a NUL character (\\u0000)",
        "\"eventName\": holds a NUL character (\\u0000) (expected INSERT, MODIFY or "
        "REMOVE)",
        "\"dynamodb.SequenceNumber\": holds a NUL character (\\u0000)",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        ck_assert_msg(ev.records[i].error && strstr(ev.records[i].error, want[i]),
                      "record %zu: %s", i, ev.records[i].error);
    ck_assert_ptr_null(ev.records[0].source_arn); /* never grouped as stream/s */
    /* escapes without a NUL, and a partition key (read by its length) */
    for (size_t i = 6; i < 9; i++)
        ck_assert_msg(!ev.records[i].error, "record %zu: %s", i, ev.records[i].error);
    ck_assert_str_eq(ev.records[7].source_arn, "arn:aws:kinesis:eu-west-1:1:stream/s");
    ck_assert_uint_eq(ev.records[7].key_len, 3);
    ck_assert_int_eq(memcmp(ev.records[7].key, "a\0b", 3), 0);
    ck_assert_str_eq(ev.records[8].action, "REMOVE");
}
END_TEST

START_TEST(bad_records_named_rest_go_on)
{
    struct fanout_event ev;
    s_parse_text(
        "{\"Records\":[" KREC("a", "1", "aGVsbG8=") "," KREC("b", "2", "aGVsbG8") "," KREC(
            "c", "3",
            "aGV$bG8=") ","
                        "{\"eventSource\":\"aws:kinesis\",\"eventSourceARN\":\"arn:aws:"
                        "kinesis:eu-west-1:"
                        "1:stream/"
                        "s\",\"kinesis\":{\"sequenceNumber\":\"4\",\"data\":\"\"}},"
                        "{\"eventSource\":\"aws:sqs\",\"eventSourceARN\":\"arn:aws:sqs:x:1:"
                        "q\"},"
                        "{\"eventSource\":\"aws:kinesis\",\"kinesis\":{\"partitionKey\":"
                        "\"f\","
                        "\"sequenceNumber\":\"6\",\"data\":\"\"}},"
                        "7," KREC("h", "8", "") "]}",
        &ev);
    ck_assert_uint_eq(ev.count, 8);
    ck_assert_ptr_null(ev.records[0].error);
    ck_assert_uint_eq(ev.records[0].data_len, 5);
    ck_assert_msg(strstr(ev.records[1].error, "record 1 (sequence number 2)") &&
                      strstr(ev.records[1].error, "length 7 is not a multiple of 4"),
                  "%s", ev.records[1].error);
    ck_assert_msg(
        strstr(ev.records[2].error, "\"kinesis.data\": not valid base64 at offset 3"), "%s",
        ev.records[2].error);
    ck_assert_msg(strstr(ev.records[3].error, "\"kinesis.partitionKey\": missing"), "%s",
                  ev.records[3].error);
    ck_assert_msg(strstr(ev.records[4].error, "unknown source \"aws:sqs\""), "%s",
                  ev.records[4].error);
    ck_assert_msg(strstr(ev.records[5].error, "\"eventSourceARN\": missing"), "%s",
                  ev.records[5].error);
    ck_assert_msg(strstr(ev.records[6].error, "record 6: not an object"), "%s",
                  ev.records[6].error);
    ck_assert_ptr_null(ev.records[7].error);
    ck_assert_uint_eq(ev.records[7].data_len, 0);

    /* decoding lists the bad ones as failures and keeps the good ones */
    const struct fanout_source_group *g = NULL;
    for (size_t i = 0; i < ev.group_count; i++)
        if (!strcmp(ev.groups[i].source_arn, "arn:aws:kinesis:eu-west-1:1:stream/s"))
            g = &ev.groups[i];
    ck_assert_ptr_nonnull(g);
    struct fanout_decoded d;
    ck_assert_int_eq(
        fanout_decode_group(g, (struct fanout_decode_opts){1, 0}, &s_arena, &d), 0);
    ck_assert_uint_eq(d.count, 2);
    ck_assert_uint_eq(d.failed_count, 3);
    fanout_event_clean_up(&ev);
}
END_TEST

START_TEST(groups_in_first_seen_order)
{
    struct fanout_event ev;
    const char *b = "{\"eventSource\":\"aws:kinesis\",\"eventSourceARN\":\"arn:aws:kinesis:"
                    "us-east-1:1:stream/B\",\"kinesis\":{\"partitionKey\":\"k\","
                    "\"sequenceNumber\":\"9\",\"data\":\"\"}}";
    char text[2048];
    snprintf(text, sizeof text, "{\"Records\":[%s,%s,%s,%s]}", b, KREC("a", "1", ""), b,
             KREC("a", "2", ""));
    s_parse_text(text, &ev);
    ck_assert_uint_eq(ev.group_count, 2);
    ck_assert_str_eq(ev.groups[0].source_arn, "arn:aws:kinesis:us-east-1:1:stream/B");
    ck_assert_uint_eq(ev.groups[0].count, 2);
    ck_assert_uint_eq(ev.groups[1].count, 2);
    ck_assert_str_eq(ev.groups[1].records[1]->sequence_number, "2");
    fanout_event_clean_up(&ev);
}
END_TEST

START_TEST(sns_wrapped_and_plain)
{
    struct fanout_event ev;
    /* an SNS message that carries a Kinesis event is unwrapped; a plain one
     * is a record of the topic */
    s_parse_text(
        "{\"Records\":[{\"EventSource\":\"aws:sns\",\"Sns\":{\"MessageId\":\"m1\","
        "\"TopicArn\":\"arn:aws:sns:us-east-1:1:t\",\"Message\":\"{\\\"Records\\\":["
        "{\\\"eventSource\\\":\\\"aws:kinesis\\\",\\\"eventSourceARN\\\":"
        "\\\"arn:aws:kinesis:us-east-1:1:stream/"
        "s\\\",\\\"kinesis\\\":{\\\"partitionKey\\\":"
        "\\\"p\\\",\\\"sequenceNumber\\\":\\\"5\\\",\\\"data\\\":\\\"eA==\\\"}},"
        "{\\\"eventSource\\\":\\\"aws:kinesis\\\",\\\"eventSourceARN\\\":"
        "\\\"arn:aws:kinesis:us-east-1:1:stream/"
        "s\\\",\\\"kinesis\\\":{\\\"partitionKey\\\":"
        "\\\"q\\\",\\\"sequenceNumber\\\":\\\"6\\\",\\\"data\\\":\\\"eQ==\\\"}}]}\"}},"
        "{\"EventSource\":\"aws:sns\",\"Sns\":{\"MessageId\":\"m2\","
        "\"TopicArn\":\"arn:aws:sns:us-east-1:1:t\",\"Message\":\"hello\"}}]}",
        &ev);
    ck_assert_uint_eq(ev.count, 3);
    ck_assert_ptr_null(ev.records[0].error);
    ck_assert_str_eq(ev.records[0].source_arn, "arn:aws:kinesis:us-east-1:1:stream/s");
    ck_assert_str_eq(ev.records[1].sequence_number, "6");
    ck_assert(ev.records[1].data_len == 1 && ev.records[1].data[0] == 'y');
    ck_assert_uint_eq(ev.records[1].index, 0); /* the wrapper's position */
    ck_assert_int_eq(ev.records[2].kind, FANOUT_SRC_SNS);
    ck_assert_str_eq(ev.records[2].source_arn, "arn:aws:sns:us-east-1:1:t");
    ck_assert_str_eq(ev.records[2].sequence_number, "m2");
    ck_assert_uint_eq(ev.records[2].data_len, 5);
    ck_assert_uint_eq(ev.group_count, 2);
    fanout_event_clean_up(&ev);
}
END_TEST

START_TEST(dynamodb_bad_image_fails_one_record)
{
    struct fanout_event ev;
    s_parse_text(
        "{\"Records\":[{\"eventSource\":\"aws:dynamodb\",\"eventName\":\"INSERT\","
        "\"eventSourceARN\":\"arn:aws:dynamodb:us-east-1:1:table/t/stream/x\","
        "\"dynamodb\":{\"Keys\":{\"id\":{\"S\":\"a\"}},\"SequenceNumber\":\"1\","
        "\"NewImage\":{\"id\":{\"S\":\"a\"},\"v\":{\"X\":\"?\"}}}},"
        "{\"eventSource\":\"aws:dynamodb\",\"eventName\":\"INSERT\","
        "\"eventSourceARN\":\"arn:aws:dynamodb:us-east-1:1:table/t/stream/x\","
        "\"dynamodb\":{\"Keys\":{\"id\":{\"S\":\"b\"},\"n\":{\"N\":\"7\"}},"
        "\"SequenceNumber\":\"2\",\"NewImage\":{\"id\":{\"S\":\"b\"}}}},"
        "{\"eventSource\":\"aws:dynamodb\",\"eventName\":\"INSERT\","
        "\"eventSourceARN\":\"arn:aws:dynamodb:us-east-1:1:table/t/stream/x\","
        "\"dynamodb\":{\"Keys\":{\"id\":{\"BOOL\":true}},\"SequenceNumber\":\"3\"}}]}",
        &ev);
    ck_assert_str_eq((const char *)ev.records[1].key, "b|7");
    ck_assert_msg(ev.records[2].error && strstr(ev.records[2].error, "\"dynamodb.Keys\""),
                  "%s", ev.records[2].error ? ev.records[2].error : "(none)");
    struct fanout_decoded d;
    ck_assert_int_eq(
        fanout_decode_group(&ev.groups[0], (struct fanout_decode_opts){0, 1}, &s_arena, &d),
        0);
    ck_assert_uint_eq(d.count, 1);
    ck_assert_uint_eq(d.failed_count, 2);
    ck_assert_msg(strstr(d.failures[0].reason, "record 0 (sequence number 1)") &&
                      strstr(d.failures[0].reason, "\"X\""),
                  "%s", d.failures[0].reason);
    fanout_event_clean_up(&ev);
}
END_TEST

/* Keys made into the key as the scan meets them (plain ones) or from their
 * text afterwards (the others), record after record: each record gets its
 * own key, a repeated name or a second Keys still refuses the record. */
#define S_KS_REC(seq, keys)                                                                \
    "{\"eventSource\":\"aws:dynamodb\",\"eventName\":\"INSERT\","                          \
    "\"eventSourceARN\":\"arn:aws:dynamodb:us-east-1:1:table/t/stream/x\","                \
    "\"dynamodb\":{" keys ",\"SequenceNumber\":\"" seq "\"}}"
/* a plain Keys; an escaped value; a repeated name; a second Keys; B and an
 * N of another shape, which the scan leaves to the text */
#define S_KS_1 S_KS_REC("1", "\"Keys\":{\"id\":{\"S\":\"a\"},\"n\":{\"N\":\"7\"}}")
#define S_KS_2 S_KS_REC("2", "\"Keys\":{\"id\":{\"S\":\"caf\\u00e9\"}}")
#define S_KS_3 S_KS_REC("3", "\"Keys\":{\"id\":{\"S\":\"c\"},\"id\":{\"S\":\"d\"}}")
#define S_KS_4                                                                             \
    S_KS_REC("4", "\"Keys\":{\"id\":{\"S\":\"e\"}},\"Keys\":{\"id\":{\"S\":\"f\"}}")
#define S_KS_5 S_KS_REC("5", "\"Keys\":{\"id\":{\"B\":\"AAD/\"}}")
#define S_KS_6 S_KS_REC("6", "\"Keys\":{\"id\":{\"N\":\"+7\"}}")
START_TEST(dynamodb_keys_as_scanned)
{
    static const char text[] =
        "{\"Records\":[" S_KS_1 "," S_KS_2 "," S_KS_3 "," S_KS_4 "," S_KS_5 "," S_KS_6 "]}";
    for (int convert = 0; convert <= 1; convert++) {
        struct fanout_event ev;
        char err[512];
        ck_assert_msg(fanout_event_parse_opts(text, strlen(text), convert, &s_arena, &ev,
                                              err, sizeof err) == 0,
                      "%s", err);
        ck_assert_uint_eq(ev.count, 6);
        ck_assert_str_eq((const char *)ev.records[0].key, "a|7");
        ck_assert_str_eq((const char *)ev.records[1].key, "caf\xc3\xa9");
        for (int i = 2; i <= 3; i++)
            ck_assert_msg(
                ev.records[i].error && strstr(ev.records[i].error, "duplicate key"),
                "record %d: %s", i, ev.records[i].error ? ev.records[i].error : "(none)");
        ck_assert_str_eq((const char *)ev.records[4].key, "AAD/");
        ck_assert_str_eq((const char *)ev.records[5].key, "+7");
        for (int i = 0; i < 6; i++)
            if (i != 2 && i != 3)
                ck_assert_ptr_null(ev.records[i].error);
        fanout_event_clean_up(&ev);
    }
}
END_TEST

/* fanout_event_parse_opts with convert_images: NewImages of the common
 * shape converted as the event is scanned, the others as before; the same
 * records, errors and decoded data either way. */
#define S_CV_REC(seq, dynamodb)                                                            \
    "{\"eventSource\":\"aws:dynamodb\",\"eventName\":\"MODIFY\",\"eventSourceARN\":"       \
    "\"arn:aws:dynamodb:us-east-1:1:table/t/stream/x\",\"dynamodb\":{\"SequenceNumber\":"  \
    "\"" seq "\"," dynamodb "}}"
static const char
    s_converted_event[] = "{\"Records\":[" S_CV_REC("1", "\"Keys\":{\"id\":{\"S\":\"a\"}},"
                                                         "\"NewImage\":{\"id\":{"
                                                         "\"S\":\"a\"},\"n\":{\"N\":\"-1."
                                                         "5\"},\"m\":{\"M\":{\"l\":{"
                                                         "\"L\":[{\"BOOL\":true},{\"NULL\":"
                                                         "true}]}}}}") "," S_CV_REC("2", "\"Keys\":{\"id\":{\"S\":\"b\"}},\"NewImage\":{\"id\":{\"S\":\"caf\xc3\xa9\"},"
                                                                                         "\"b\":{\"B\":\"AAD/\"},\"e\":{\"S\":\"x\\\"y\"}}") "," S_CV_REC("3",
                                                                                                                                                          "\"Keys\":{\"id\":{\"S\":\"c\"}},\"NewImage\":{\"v\":{\"X\":\"?\"}}") "," S_CV_REC("4", "\"Keys\":{\"id\":{\"S\":\"d\"}},\"NewImage\":{\"v\":{\"S\":\"1\"},"
                                                                                                                                                                                                                                                  "\"v\":{\"S\":\"2\"}}") "," S_CV_REC("5", "\"Keys\":{\"id\":{\"BOOL\":true}},\"NewImage\":{\"v\":{\"S\":\"1\"}}") "," S_CV_REC("6", "\"Keys\":{\"id\":{\"S\":\"f\"}},\"NewImage\":{\"v\":{\"N\":\"01\"}},"
                                                                                                                                                                                                                                                                                                                                                                                      "\"OldImage\":{\"v\":{\"S\":\"old\"}}") "," S_CV_REC("7", "\"Keys\":{\"id\":{\"S\":\"g\"}},\"NewImage\":{\"v\":{\"S\":\"1\"}},"
                                                                                                                                                                                                                                                                                                                                                                                                                                                "\"NewImage\":{\"v\":{\"S\":\"2\"}}") "," S_CV_REC("8", "\"Keys\":{\"id\":{\"S\":\"h\"}},\"NewImage\":{}") "," S_CV_REC("9",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                        "\"Keys\":{\"id\":{\"S\":\"i\"}}") "]}";

START_TEST(dynamodb_converted_while_scanned)
{
    struct fanout_event ev[2];
    char err[512];
    for (int c = 0; c < 2; c++)
        ck_assert_msg(fanout_event_parse_opts(s_converted_event, strlen(s_converted_event),
                                              c, &s_arena, &ev[c], err, sizeof err) == 0,
                      "%s", err);
    ck_assert_uint_eq(ev[0].count, 9);
    ck_assert_uint_eq(ev[1].count, 9);
    for (size_t i = 0; i < ev[0].count; i++) {
        const struct fanout_raw_record *a = &ev[0].records[i], *b = &ev[1].records[i];
        ck_assert_ptr_null(a->converted);
        if (a->error || b->error)
            ck_assert_str_eq(a->error ? a->error : "(none)",
                             b->error ? b->error : "(none)");
        ck_assert_uint_eq(a->key_len, b->key_len);
        if (a->key_len)
            ck_assert_mem_eq(a->key, b->key, a->key_len);
    }
    /* converted as scanned: the common shape, in a record read without error */
    static const int scanned[9] = {1, 0, 0, 0, 0, 0, 0, 1, 0};
    for (size_t i = 0; i < 9; i++)
        ck_assert_msg((ev[1].records[i].converted != NULL) == scanned[i], "record %zu", i);
    ck_assert_str_eq(ev[1].records[0].converted,
                     "{\"id\":\"a\",\"n\":-1.5,\"m\":{\"l\":[true,null]}}");
    ck_assert_msg(ev[1].records[3].error && strstr(ev[1].records[3].error, "duplicate key"),
                  "%s", ev[1].records[3].error ? ev[1].records[3].error : "(none)");
    ck_assert_ptr_nonnull(ev[1].records[6].error); /* NewImage twice */
    /* decoded: the same whatever the scan did, with each target's options */
    static const struct fanout_decode_opts opts[] = {{0, 1, 0, 0, 0},
                                                     {0, 0, 0, 0, 0},
                                                     {0, 1, 0, 1, 0},
                                                     {0, 1, 0, 0, 1},
                                                     {0, 0, 0, 0, 1}};
    for (size_t o = 0; o < sizeof opts / sizeof *opts; o++) {
        struct fanout_decoded d[2];
        for (int c = 0; c < 2; c++)
            ck_assert_int_eq(
                fanout_decode_group(&ev[c].groups[0], opts[o], &s_arena, &d[c]), 0);
        ck_assert_uint_eq(d[0].count, d[1].count);
        ck_assert_uint_eq(d[0].failed_count, d[1].failed_count);
        for (size_t i = 0; i < d[0].failed_count; i++)
            ck_assert_str_eq(d[0].failures[i].reason, d[1].failures[i].reason);
        for (size_t i = 0; i < d[0].count; i++) {
            ck_assert_uint_eq(d[0].records[i]->pub.data_len, d[1].records[i]->pub.data_len);
            ck_assert_mem_eq(d[0].records[i]->pub.data, d[1].records[i]->pub.data,
                             d[0].records[i]->pub.data_len);
        }
        if (o == 0) /* records 0 (converted), 1 (B, escapes), 5 (N normalised), 7 ({}), 8 */
            ck_assert_uint_eq(d[1].count, 5);
    }
    fanout_event_clean_up(&ev[0]);
    fanout_event_clean_up(&ev[1]);

    /* a NewImage that is not valid JSON: the same event error either way */
    static const char bad[] = "{\"Records\":[" S_CV_REC(
        "1", "\"Keys\":{\"id\":{\"S\":\"a\"}},\"NewImage\":{\"id\":{\"S\":\"a\tb\"}}") "]}";
    char err1[512];
    ck_assert_int_eq(
        fanout_event_parse_opts(bad, strlen(bad), 0, &s_arena, &ev[0], err, sizeof err),
        -1);
    ck_assert_int_eq(
        fanout_event_parse_opts(bad, strlen(bad), 1, &s_arena, &ev[1], err1, sizeof err1),
        -1);
    ck_assert_str_eq(err, err1);
}
END_TEST

/* ---- DynamoDB records of shapes seen before ---------------------------- */

/* Record `i` of `ev` as a target with `o` gets it: "data:...", "fail:..." */
static void s_decoded_as(const struct fanout_event *ev, const struct fanout_raw_record *r,
                         struct fanout_decode_opts o, struct fanout_sbuf *out)
{
    fanout_sbuf_reset(out);
    for (size_t g = 0; g < ev->group_count; g++) {
        struct fanout_decoded d;
        ck_assert_int_eq(fanout_decode_group(&ev->groups[g], o, &s_arena, &d), 0);
        for (size_t i = 0; i < d.count; i++)
            if (d.records[i]->raw == r) {
                fanout_sbuf_puts(out, "data:");
                fanout_sbuf_put(out, d.records[i]->pub.data, d.records[i]->pub.data_len);
                fanout_sbuf_puts(out, " key:");
                fanout_sbuf_put(out, d.records[i]->pub.key, d.records[i]->pub.key_len);
            }
        for (size_t i = 0; i < d.failed_count; i++)
            if (d.failures[i].raw == r) {
                fanout_sbuf_puts(out, "fail:");
                fanout_sbuf_puts(out, d.failures[i].reason);
            }
    }
}

/* The records of `records` (`n` texts) in one event, each against itself
 * alone (after as many records of no source, so its index and the errors
 * naming it are the same), where no shape was kept before it: the same
 * error, key, action and conversion, and the same data for targets that
 * convert images, whole records or neither. Returns the event's result. */
static int s_records_alike(const char *const *records, size_t n)
{
    struct fanout_sbuf text = {0}, alone = {0}, a = {0}, b = {0};
    fanout_sbuf_puts(&text, "{\"Records\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            fanout_sbuf_putc(&text, ',');
        fanout_sbuf_puts(&text, records[i]);
    }
    fanout_sbuf_puts(&text, "]}");
    struct fanout_event ev[2];
    char err[2][512];
    int rc[2];
    for (int c = 0; c < 2; c++)
        rc[c] = fanout_event_parse_opts(text.p, text.len, c, &s_arena, &ev[c], err[c],
                                        sizeof err[c]);
    ck_assert_int_eq(rc[0], rc[1]);
    if (rc[0] != 0) {
        ck_assert_str_eq(err[0], err[1]);
        fanout_sbuf_free(&text);
        return rc[0];
    }
    ck_assert_uint_eq(ev[1].count, n);
    static const struct fanout_decode_opts opts[] = {
        {0, 1, 0, 0, 0}, {0, 0, 0, 0, 0}, {0, 1, 0, 0, 1}, {0, 0, 0, 0, 1}};
    for (size_t i = 0; i < n; i++) {
        fanout_sbuf_reset(&alone);
        fanout_sbuf_puts(&alone, "{\"Records\":[");
        for (size_t k = 0; k < i; k++)
            fanout_sbuf_puts(&alone, "{},");
        fanout_sbuf_puts(&alone, records[i]);
        fanout_sbuf_puts(&alone, "]}");
        struct fanout_event one;
        char err1[512];
        ck_assert_msg(fanout_event_parse_opts(alone.p, alone.len, 1, &s_arena, &one, err1,
                                              sizeof err1) == 0,
                      "%s", err1);
        const struct fanout_raw_record *x = &ev[1].records[i], *y = &one.records[i];
        ck_assert_msg(!strcmp(x->error ? x->error : "", y->error ? y->error : ""),
                      "record %zu: \"%s\", alone \"%s\"", i, x->error ? x->error : "",
                      y->error ? y->error : "");
        ck_assert_uint_eq(x->key_len, y->key_len);
        if (x->key_len)
            ck_assert_mem_eq(x->key, y->key, x->key_len);
        ck_assert_str_eq(x->action ? x->action : "", y->action ? y->action : "");
        ck_assert_int_eq(!x->converted, !y->converted);
        if (x->converted)
            ck_assert_str_eq(x->converted, y->converted);
        for (size_t o = 0; o < sizeof opts / sizeof *opts; o++) {
            s_decoded_as(&ev[1], x, opts[o], &a);
            s_decoded_as(&one, y, opts[o], &b);
            ck_assert_msg(a.len == b.len && memcmp(a.p, b.p, a.len) == 0,
                          "record %zu, options %zu: %s\nalone: %s", i, o, a.p, b.p);
            s_decoded_as(&ev[0], &ev[0].records[i], opts[o], &b);
            ck_assert_msg(a.len == b.len && memcmp(a.p, b.p, a.len) == 0,
                          "record %zu, options %zu: %s\nnot converted as scanned: %s", i, o,
                          a.p, b.p);
        }
        fanout_event_clean_up(&one);
    }
    fanout_event_clean_up(&ev[0]);
    fanout_event_clean_up(&ev[1]);
    fanout_sbuf_free(&text);
    fanout_sbuf_free(&alone);
    fanout_sbuf_free(&a);
    fanout_sbuf_free(&b);
    return 0;
}

#define S_SH_T1 "\"eventSourceARN\":\"arn:aws:dynamodb:us-east-1:1:table/t1/stream/x\""
#define S_SH_T2 "\"eventSourceARN\":\"arn:aws:dynamodb:eu-west-1:2:table/t2/stream/y\""
#define S_SH_REC(src, name, arn, keys, img)                                                \
    "{\"eventSource\":" src "," name arn ",\"dynamodb\":{\"Keys\":{\"pk\":{\"S\":\"" keys  \
    "\"}},\"NewImage\":{\"pk\":{\"S\":\"" img "\"},\"n\":{\"N\":\"12\"},\"b\":{\"BOOL\":"  \
    "true}},\"OldImage\":{\"pk\":{\"S\":\"" img                                            \
    "\"},\"n\":{\"N\":\"12\"},\"b\":{\"BOOL\":"                                            \
    "true}},\"SequenceNumber\":\"7\"}}"
#define S_SH(keys, img)                                                                    \
    S_SH_REC("\"aws:dynamodb\"", "\"eventName\":\"MODIFY\",", S_SH_T1, keys, img)

/* One shape of Keys, NewImage and OldImage in records of two tables, with
 * values the piece-by-piece reading must refuse or read otherwise
 * (escapes, bytes not ASCII, text like the next piece), other eventSource
 * and eventName values, Kinesis records with a "dynamodb" member: each
 * record as it is alone. */
START_TEST(dynamodb_shapes_across_records)
{
    static const char *const records[] = {
        S_SH("a", "a"),
        S_SH_REC("\"aws:dynamodb\"", "\"eventName\":\"INSERT\",", S_SH_T2, "b", "b"),
        S_SH("x\\\"y", "x\\\"y"),
        S_SH("\\u0041", "\\ud83d\\ude00"),
        S_SH("caf\xc3\xa9", "caf\xc3\xa9"),
        S_SH("\\\\", "a\\\\"),
        S_SH("x\\\"}},\\\"NewImage\\\":{\\\"pk\\\":{\\\"S\\\":\\\"y", "0123456789abcdef"),
        S_SH("0123456789abcde", "0123456789abcdefg"),
        S_SH_REC("\"aws:dynamo\\u0064b\"", "\"eventName\":\"INS\\u0045RT\",", S_SH_T2, "c",
                 "c"),
        S_SH_REC("\"aws:dynamodb\"", "\"eventName\":\"insert\",", S_SH_T1, "d", "d"),
        S_SH_REC("\"aws:dynamodb\"", "\"eventName\":5,", S_SH_T1, "e", "e"),
        S_SH_REC("\"aws:dynamodb\"", "", S_SH_T2, "f", "f"),
        S_SH_REC("\"aws:kinesis\"", "\"eventName\":\"MODIFY\",", S_SH_T1, "g", "g"),
        S_SH_REC("\"aws:dynamodbx\"", "\"eventName\":\"MODIFY\",", S_SH_T1, "h", "h"),
        S_SH_REC("\"aws:dynamodb\"", "\"eventName\":\"REMOVE\",", S_SH_T2, "i", "i"),
        /* the same text between the values, numbers and BOOLs otherwise */
        "{\"eventSource\":\"aws:dynamodb\",\"eventName\":\"MODIFY\"," S_SH_T1
        ",\"dynamodb\":{\"Keys\":{\"pk\":{\"S\":\"j\"}},\"NewImage\":{\"pk\":{\"S\":\"j\"},"
        "\"n\":{\"N\":\"007\"},\"b\":{\"BOOL\":false}},\"OldImage\":{\"pk\":{\"S\":\"j\"},"
        "\"n\":{\"N\":\"1e5\"},\"b\":{\"BOOL\":false}},\"SequenceNumber\":\"8\"}}",
        "{\"eventSource\":\"aws:dynamodb\",\"eventName\":\"MODIFY\"," S_SH_T1
        ",\"dynamodb\":{\"Keys\":{\"pk\":{\"S\":\"k\"}},\"NewImage\":{\"pk\":{\"S\":\"k\"},"
        "\"n\":{\"N\":\"-0.5\"},\"b\":{\"BOOL\":true}},\"OldImage\":{\"pk\":{\"S\":\"k\"},"
        "\"n\":{\"N\":\"x\"},\"b\":{\"BOOL\":true}},\"SequenceNumber\":\"9\"}}",
        S_SH("l", "l"),
    };
    ck_assert_int_eq(s_records_alike(records, sizeof records / sizeof *records), 0);
    /* what event.c made of the sources and names */
    struct fanout_event ev;
    struct fanout_sbuf text = {0};
    fanout_sbuf_puts(&text, "{\"Records\":[");
    for (size_t i = 0; i < sizeof records / sizeof *records; i++) {
        if (i)
            fanout_sbuf_putc(&text, ',');
        fanout_sbuf_puts(&text, records[i]);
    }
    fanout_sbuf_puts(&text, "]}");
    char err[512];
    ck_assert_int_eq(
        fanout_event_parse_opts(text.p, text.len, 1, &s_arena, &ev, err, sizeof err), 0);
    ck_assert_str_eq(ev.records[8].action, "INSERT");
    ck_assert_ptr_null(ev.records[8].error);
    ck_assert_str_eq(ev.records[9].action, "insert");
    ck_assert_ptr_null(ev.records[9].error);
    ck_assert_str_eq(ev.records[0].action, "MODIFY");
    ck_assert_str_eq(ev.records[14].action, "REMOVE");
    for (int i = 10; i <= 13; i++)
        ck_assert_msg(ev.records[i].error != NULL, "record %d", i);
    ck_assert_ptr_nonnull(strstr(ev.records[10].error, "eventName"));
    ck_assert_ptr_nonnull(strstr(ev.records[11].error, "eventName"));
    ck_assert_ptr_nonnull(strstr(ev.records[13].error, "unknown source \"aws:dynamodbx\""));
    /* read piece by piece: the plain ones converted as scanned, with the
     * full converter's bytes */
    ck_assert_str_eq(ev.records[1].converted, "{\"pk\":\"b\",\"n\":12,\"b\":true}");
    ck_assert_str_eq(ev.records[17].converted, "{\"pk\":\"l\",\"n\":12,\"b\":true}");
    ck_assert_str_eq(ev.records[16].converted, "{\"pk\":\"k\",\"n\":-0.5,\"b\":true}");
    ck_assert_str_eq((const char *)ev.records[7].key, "0123456789abcde");
    fanout_event_clean_up(&ev);
    fanout_sbuf_free(&text);
}
END_TEST

/* An OldImage read with the shape of a NewImage before it, its text not
 * valid JSON where a value is (a control byte, a bad escape, a byte that
 * is not UTF-8, a number for a string): the event refused as it is without
 * the shapes (not converting), with the same error. */
START_TEST(dynamodb_old_image_of_a_shape_invalid)
{
    static const char *const bad[] = {"a\tb", "a\\qb", "a\xff", "a\\ud800", "\xc3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct fanout_sbuf old = {0};
        fanout_sbuf_puts(&old, S_SH("a", "a") ",");
        fanout_sbuf_puts(
            &old, "{\"eventSource\":\"aws:dynamodb\",\"eventName\":\"MODIFY\"," S_SH_T1
                  ",\"dynamodb\":{\"Keys\":{\"pk\":{\"S\":\"b\"}},\"NewImage\":{"
                  "\"pk\":{\"S\":\"b\"},\"n\":{\"N\":\"12\"},\"b\":{\"BOOL\":true}},"
                  "\"OldImage\":{\"pk\":{\"S\":\"");
        fanout_sbuf_puts(&old, bad[i]);
        fanout_sbuf_puts(&old, "\"},\"n\":{\"N\":\"12\"},\"b\":{\"BOOL\":true}},"
                               "\"SequenceNumber\":\"8\"}}");
        const char *records[] = {old.p};
        /* the same error converting or not (s_records_alike) */
        ck_assert_int_eq(s_records_alike(records, 1), -1);
        fanout_sbuf_free(&old);
    }
}
END_TEST

/* "wholeRecord": the data is the stream record's members that are there,
 * in a fixed order; Keys and images plain JSON with convertDDB, else the
 * DynamoDB JSON as a NewImage is passed through (compact, escapes
 * undone). */
#define S_WR_ARN "\"eventSourceARN\":\"arn:aws:dynamodb:us-east-1:1:table/t/stream/x\""
START_TEST(whole_record_insert_modify_remove)
{
    struct fanout_event ev;
    s_parse_text(
        "{\"Records\":["
        "{\"eventID\":\"e1\",\"eventName\":\"INSERT\",\"eventSource\":\"aws:"
        "dynamodb\"," S_WR_ARN ",\"dynamodb\":{\"ApproximateCreationDateTime\":1767225600,"
        "\"Keys\":{\"id\":{\"S\":\"a\"}},\"NewImage\":{\"id\":{\"S\":\"a\"}, \"n\": {\"N\":"
        "\"12345678901234567890.50\"}},\"SequenceNumber\":\"1\",\"SizeBytes\":9,"
        "\"StreamViewType\":\"NEW_AND_OLD_IMAGES\"}},"
        "{\"eventID\":\"e2\",\"eventName\":\"MODIFY\",\"eventSource\":\"aws:"
        "dynamodb\"," S_WR_ARN ",\"dynamodb\":{\"Keys\":{\"id\":{\"S\":\"a\"}},"
        "\"NewImage\":{\"id\":{\"S\":\"a\"},\"l\":{\"L\":[{\"BOOL\":true},{\"NULL\":true}]}"
        "},"
        "\"OldImage\":{\"id\":{\"S\":\"a\"},\"l\":{\"SS\":[\"x\",\"y\"]}},"
        "\"SequenceNumber\":\"2\"}},"
        "{\"eventName\":\"REMOVE\",\"eventSource\":\"aws:dynamodb\"," S_WR_ARN
        ",\"dynamodb\":{\"ApproximateCreationDateTime\":1767225600.5,"
        "\"Keys\":{\"id\":{\"S\":\"a\"},\"k\":{\"N\":\"+7\"}},"
        "\"OldImage\":{\"id\":{\"S\":\"a\\u00e9\"}},\"SequenceNumber\":\"3\"}}]}",
        &ev);
    static const char *const want[2][3] = {
        {"{\"eventName\":\"INSERT\",\"eventID\":\"e1\",\"Keys\":{\"id\":{\"S\":\"a\"}},"
         "\"NewImage\":{\"id\":{\"S\":\"a\"},\"n\":{\"N\":\"12345678901234567890.50\"}},"
         "\"SequenceNumber\":\"1\",\"ApproximateCreationDateTime\":1767225600}",
         "{\"eventName\":\"MODIFY\",\"eventID\":\"e2\",\"Keys\":{\"id\":{\"S\":\"a\"}},"
         "\"OldImage\":{\"id\":{\"S\":\"a\"},\"l\":{\"SS\":[\"x\",\"y\"]}},"
         "\"NewImage\":{\"id\":{\"S\":\"a\"},\"l\":{\"L\":[{\"BOOL\":true},{\"NULL\":true}]"
         "}},"
         "\"SequenceNumber\":\"2\"}",
         "{\"eventName\":\"REMOVE\",\"Keys\":{\"id\":{\"S\":\"a\"},\"k\":{\"N\":\"+7\"}},"
         "\"OldImage\":{\"id\":{\"S\":\"a\xc3\xa9\"}},\"SequenceNumber\":\"3\","
         "\"ApproximateCreationDateTime\":1767225600.5}"},
        {"{\"eventName\":\"INSERT\",\"eventID\":\"e1\",\"Keys\":{\"id\":\"a\"},"
         "\"NewImage\":{\"id\":\"a\",\"n\":12345678901234567890.50},"
         "\"SequenceNumber\":\"1\",\"ApproximateCreationDateTime\":1767225600}",
         "{\"eventName\":\"MODIFY\",\"eventID\":\"e2\",\"Keys\":{\"id\":\"a\"},"
         "\"OldImage\":{\"id\":\"a\",\"l\":[\"x\",\"y\"]},"
         "\"NewImage\":{\"id\":\"a\",\"l\":[true,null]},\"SequenceNumber\":\"2\"}",
         "{\"eventName\":\"REMOVE\",\"Keys\":{\"id\":\"a\",\"k\":7},"
         "\"OldImage\":{\"id\":\"a\xc3\xa9\"},\"SequenceNumber\":\"3\","
         "\"ApproximateCreationDateTime\":1767225600.5}"},
    };
    for (int convert = 0; convert < 2; convert++) {
        struct fanout_decoded d;
        ck_assert_int_eq(
            fanout_decode_group(&ev.groups[0],
                                (struct fanout_decode_opts){0, convert, 0, 0, 1}, &s_arena,
                                &d),
            0);
        ck_assert_uint_eq(d.failed_count, 0);
        ck_assert_uint_eq(d.count, 3);
        for (size_t i = 0; i < 3; i++) {
            ck_assert_str_eq((const char *)d.records[i]->pub.data, want[convert][i]);
            ck_assert_uint_eq(d.records[i]->pub.data_len, strlen(want[convert][i]));
        }
    }
    /* without it, the NewImage only ({} for a REMOVE) */
    struct fanout_decoded d;
    ck_assert_int_eq(
        fanout_decode_group(&ev.groups[0], (struct fanout_decode_opts){0, 1}, &s_arena, &d),
        0);
    ck_assert_str_eq((const char *)d.records[1]->pub.data,
                     "{\"id\":\"a\",\"l\":[true,null]}");
    ck_assert_str_eq((const char *)d.records[2]->pub.data, "{}");
    fanout_event_clean_up(&ev);
}
END_TEST

/* A bad OldImage fails the record with wholeRecord only (it is not sent
 * otherwise), and the message names the field and the attribute. */
START_TEST(whole_record_bad_old_image)
{
    struct fanout_event ev;
    s_parse_text(
        "{\"Records\":[{\"eventName\":\"MODIFY\",\"eventSource\":\"aws:dynamodb\"," S_WR_ARN
        ",\"dynamodb\":{\"Keys\":{\"id\":{\"S\":\"a\"}},\"SequenceNumber\":\"9\","
        "\"NewImage\":{\"id\":{\"S\":\"a\"}},"
        "\"OldImage\":{\"id\":{\"S\":\"a\"},\"m\":{\"M\":{\"x\":{\"N\":\"1e\"}}}}}}]}",
        &ev);
    struct fanout_decoded d;
    ck_assert_int_eq(fanout_decode_group(&ev.groups[0],
                                         (struct fanout_decode_opts){0, 1, 0, 0, 1},
                                         &s_arena, &d),
                     0);
    ck_assert_uint_eq(d.count, 0);
    ck_assert_uint_eq(d.failed_count, 1);
    ck_assert_str_eq(d.failures[0].reason,
                     "record 0 (sequence number 9): field \"dynamodb.OldImage\": attribute "
                     "\"m.x\": N value \"1e\" is not a number (expected "
                     "[+-]digits[.digits][e[+-]digits])");
    /* pass-through: sent as received */
    ck_assert_int_eq(fanout_decode_group(&ev.groups[0],
                                         (struct fanout_decode_opts){0, 0, 0, 0, 1},
                                         &s_arena, &d),
                     0);
    ck_assert_uint_eq(d.count, 1);
    ck_assert_msg(strstr((const char *)d.records[0]->pub.data, "{\"N\":\"1e\"}"), "%s",
                  (const char *)d.records[0]->pub.data);
    /* NewImage alone converts */
    ck_assert_int_eq(
        fanout_decode_group(&ev.groups[0], (struct fanout_decode_opts){0, 1}, &s_arena, &d),
        0);
    ck_assert_uint_eq(d.count, 1);
    fanout_event_clean_up(&ev);
}
END_TEST

START_TEST(jscan_shallow_then_valid)
{
    char err[256];
    const char *text =
        "{\"Records\":[{\"a\":{\"b\":\"q\\\"\\u00e9\"}},[1,[2]],{}],\"x\":{\"y\":1}}";
    const struct fanout_jnode *root =
        fanout_jscan_shallow(text, strlen(text), 2, &s_arena, err, sizeof err);
    ck_assert_msg(root != NULL, "%s", err);
    const struct fanout_jnode *recs = fanout_jget(root, "Records");
    ck_assert_uint_eq(recs->count, 3);
    /* level 2: the records keep their text and count, not their members */
    const struct fanout_jnode *r0 = recs->child;
    ck_assert_int_eq(r0->type, FANOUT_J_OBJECT);
    ck_assert_uint_eq(r0->count, 1);
    ck_assert_ptr_null(r0->child);
    ck_assert_uint_eq(recs->child->next->count, 2);
    ck_assert_ptr_null(recs->child->next->child);
    ck_assert_int_eq(fanout_jget(root, "x")->child->type, FANOUT_J_NUMBER); /* level 2 */
    /* read again, trusted: the same members and escapes */
    const struct fanout_jnode *full =
        fanout_jscan_valid(r0->text, r0->len, &s_arena, err, sizeof err);
    ck_assert_msg(full != NULL, "%s", err);
    const struct fanout_jnode *b = fanout_jget(fanout_jget(full, "a"), "b");
    ck_assert_int_eq(b->escaped, 1);
    ck_assert_str_eq(fanout_jstr(b, &s_arena, NULL), "q\"\xc3\xa9");
    /* deeper errors are still found by the shallow scan */
    const char *bad = "{\"Records\":[{\"a\":{\"b\":\"\x01\"}}]}";
    ck_assert_ptr_null(
        fanout_jscan_shallow(bad, strlen(bad), 2, &s_arena, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "control character"));
}
END_TEST

/* fanout_jscan_each's callback: the elements it was handed, in order. */
struct s_each_seen {
    size_t count;
    enum fanout_jtype type[8]; /* of the shallow node handed over */
    const char *member_a[8];   /* the full node's member "a", unescaped */
};

static void s_each_note(void *ctx, const struct fanout_jnode *kept,
                        const struct fanout_jnode *full)
{
    struct s_each_seen *seen = ctx;
    ck_assert_ptr_null(kept->child);
    ck_assert_uint_eq(kept->count, full->count);
    ck_assert_ptr_eq(kept->text, full->text);
    ck_assert_uint_eq(kept->len, full->len);
    if (seen->count < 8) {
        seen->type[seen->count] = kept->type;
        seen->member_a[seen->count] =
            fanout_jstr(fanout_jget(full, "a"), &s_arena, NULL); /* s_arena outlives */
    }
    seen->count++;
}

START_TEST(jscan_each_hands_over_the_records)
{
    char err[256];
    struct fanout_arena scratch = {0};
    /* the first "Records" only, its name maybe escaped; not the deeper
     * arrays, nor another member's */
    const char *text =
        "{\"x\":[{\"a\":\"no\"}],\"R\\u0065cords\":[{\"a\":\"q\\u00e9\","
        "\"b\":[1,{\"c\":2}]},7,[{\"a\":\"no\"}]],\"Records\":[{\"a\":\"no\"}],"
        "\"y\":{\"Records\":[{\"a\":\"no\"}]}}";
    struct s_each_seen seen = {0};
    const struct fanout_jnode *root =
        fanout_jscan_each(text, strlen(text), "Records", &s_arena, &scratch, s_each_note,
                          &seen, err, sizeof err);
    ck_assert_msg(root != NULL, "%s", err);
    ck_assert_uint_eq(seen.count, 3);
    ck_assert_str_eq(seen.member_a[0], "q\xc3\xa9");
    ck_assert_ptr_null(seen.member_a[1]);
    ck_assert_ptr_null(seen.member_a[2]);
    /* what the array keeps: its count, no node of its elements */
    const struct fanout_jnode *recs = fanout_jget(root, "Records");
    ck_assert_ptr_null(recs->child);
    ck_assert_uint_eq(recs->count, 3);
    ck_assert_int_eq(seen.type[0], FANOUT_J_OBJECT);
    ck_assert_int_eq(seen.type[1], FANOUT_J_NUMBER);
    ck_assert_int_eq(seen.type[2], FANOUT_J_ARRAY);
    ck_assert_uint_eq(fanout_jget(root, "x")->count, 1);

    /* "Records" not an array: nothing handed over */
    seen.count = 0;
    const char *str = "{\"Records\":\"[{}]\",\"z\":[[{}]]}";
    ck_assert_ptr_nonnull(fanout_jscan_each(str, strlen(str), "Records", &s_arena, &scratch,
                                            s_each_note, &seen, err, sizeof err));
    ck_assert_uint_eq(seen.count, 0);

    /* an error after some records: the same error as the shallow scan's,
     * the records before it handed over already */
    seen.count = 0;
    const char *bad = "{\"Records\":[{\"a\":\"1\"},{\"a\":\"2\"},{\"a\":\"\x01\"}]}";
    char want[256];
    ck_assert_ptr_null(
        fanout_jscan_shallow(bad, strlen(bad), 2, &s_arena, want, sizeof want));
    ck_assert_ptr_null(fanout_jscan_each(bad, strlen(bad), "Records", &s_arena, &scratch,
                                         s_each_note, &seen, err, sizeof err));
    ck_assert_str_eq(err, want);
    ck_assert_uint_eq(seen.count, 2);
    fanout_arena_free(&scratch);

    /* the event's records read before such an error go with it */
    const char *late =
        "{\"Records\":[{\"eventSource\":\"aws:kinesis\",\"eventSourceARN\":"
        "\"arn:aws:kinesis:eu-west-1:1:stream/s\",\"kinesis\":{"
        "\"sequenceNumber\":\"1\",\"partitionKey\":\"k\",\"data\":\"eA==\"}},"
        "{\"a\":\"\x01\"}]}";
    struct fanout_event ev;
    ck_assert_int_eq(fanout_event_parse(late, strlen(late), &s_arena, &ev, err, sizeof err),
                     -1);
    ck_assert_msg(strstr(err, "event is not valid JSON: line 1, column 171: control "
                              "character"),
                  "%s", err);
    ck_assert_uint_eq(ev.count, 0);
    ck_assert_ptr_null(ev.records);
}
END_TEST

/* fanout_jscan_each_skip's callback: the full node of the first element. */
static void s_each_keep_first(void *ctx, const struct fanout_jnode *kept,
                              const struct fanout_jnode *full)
{
    (void)kept;
    const struct fanout_jnode **first = ctx;
    if (!*first)
        *first = full;
}

static const char *const s_images[] = {"NewImage", "OldImage", NULL};

START_TEST(jscan_each_skip_validates_without_nodes)
{
    char err[256], want[256];
    struct fanout_arena scratch = {0};
    const struct fanout_jnode *full = NULL;
    const char *text =
        "{\"Records\":[{\"NewImage\":{\"x\":{\"S\":\"1\"}},\"dynamodb\":{\"Keys\":{\"k\":"
        "{\"S\":\"a\"}},\"NewImage\":{\"a\":{\"S\":\"x\"}, \"b\" : {\"L\":[{\"N\":\"1\"},"
        "{\"NULL\":true}]}},\"OldImage\":{\"c\":7},\"New\\u0049mage\":{\"d\":{}}}}]}";
    ck_assert_ptr_nonnull(fanout_jscan_each_skip(
        text, strlen(text), "Records", "dynamodb", s_images, &s_arena, &scratch,
        s_each_keep_first, &full, err, sizeof err));
    ck_assert_ptr_nonnull(full);
    const struct fanout_jnode *d = fanout_jget(full, "dynamodb");
    const struct fanout_jnode *img = fanout_jget(d, "NewImage");
    /* skipped: its own node, nothing below */
    ck_assert_ptr_null(img->child);
    ck_assert_uint_eq(img->count, 2);
    ck_assert_int_eq(img->distinct, 1);
    ck_assert_int_eq(img->inside, 0);
    ck_assert_str_eq(
        fanout_arena_memdup(&s_arena, img->text, img->len),
        "{\"a\":{\"S\":\"x\"}, \"b\" : {\"L\":[{\"N\":\"1\"},{\"NULL\":true}]}}");
    const struct fanout_jnode *old = fanout_jget(d, "OldImage");
    ck_assert_ptr_null(old->child);
    ck_assert_int_eq(old->inside, FANOUT_J_HAS_NUMBER);
    /* the rest has its nodes: Keys, another member's NewImage, a name
     * with an escape */
    ck_assert_ptr_nonnull(fanout_jget(d, "Keys")->child);
    ck_assert_ptr_nonnull(fanout_jget(full, "NewImage")->child);
    ck_assert_ptr_nonnull(fanout_jget(d, "NewImage")->next->next->child);

    /* repeated names: found by fanout_jdup at the same path as in the
     * full scan, whatever proves them (an escape, names alike) */
    static const char *const dups[] = {
        "{\"NewImage\":{\"a\":{\"S\":\"x\"},\"\\u0061\":{\"S\":\"y\"}}}",
        "{\"NewImage\":{\"a\":{\"M\":{\"p\":{\"S\":\"1\"},\"q\":{\"S\":\"2\"},\"p\":{}}}}}",
        "{\"OldImage\":{\"ab\":1,\"ab\":2}}",
        "{\"OldImage\":[{\"ab\":1,\"cb\":2,\"ab\":3}]}",
    };
    for (size_t i = 0; i < sizeof dups / sizeof dups[0]; i++) {
        char ev[512], path[160], path_full[160];
        snprintf(ev, sizeof ev, "{\"Records\":[{\"dynamodb\":%s}]}", dups[i]);
        full = NULL;
        ck_assert_ptr_nonnull(fanout_jscan_each_skip(
            ev, strlen(ev), "Records", "dynamodb", s_images, &s_arena, &scratch,
            s_each_keep_first, &full, err, sizeof err));
        const struct fanout_jnode *whole =
            fanout_jscan_valid(full->text, full->len, &s_arena, err, sizeof err);
        ck_assert_int_eq(fanout_jdup(whole, &s_arena, path_full, sizeof path_full), 1);
        ck_assert_int_eq(fanout_jdup(full, &s_arena, path, sizeof path), 1);
        ck_assert_str_eq(path, path_full);
    }
    /* many distinct names (beyond what the scan proves): none found */
    char many[4096] = "{\"Records\":[{\"dynamodb\":{\"NewImage\":{";
    for (int i = 0; i < 60; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s\"n%d\":{\"S\":\"v\"}",
                 i ? "," : "", i);
    strcat(many, "}}}]}");
    full = NULL;
    ck_assert_ptr_nonnull(fanout_jscan_each_skip(
        many, strlen(many), "Records", "dynamodb", s_images, &s_arena, &scratch,
        s_each_keep_first, &full, err, sizeof err));
    char path[160];
    ck_assert_int_eq(fanout_jdup(full, &s_arena, path, sizeof path), 0);

    /* errors inside a skipped value: those of the scan with nodes, at the
     * same line and column */
    static const char *const bad[] = {
        "{\"a\":{\"S\":\"\x01\"}}",
        "{\"a\":{\"S\":\"\\x\"}}",
        "{\"a\" {\"S\":\"x\"}}",
        "{\"a\":{\"S\":\"x\"} \"b\":1}",
        "{\"a\":{\"S\":\"x\"},}",
        "{\"a\":[1,]}",
        "{\"a\":tru}",
        "{\"a\":01}",
        "{\"a\":-}",
        "{\"a\":\"\xc3\"}",
        "{a:1}",
        "{\"a\":[1 2]}",
        "{\"a\":{\"S\":\"x\"}",
        "{\"a\":\n[",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":1.}",
        "{\"a\":[}",
        "{\"a\":\"x\"]",
        "[1,2}",
        "{\"a\":nul}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char ev[512];
        snprintf(ev, sizeof ev, "{\"Records\":[{\"dynamodb\":{\"NewImage\":%s}}]}", bad[i]);
        ck_assert_ptr_null(
            fanout_jscan_shallow(ev, strlen(ev), 2, &s_arena, want, sizeof want));
        ck_assert_ptr_null(fanout_jscan_each_skip(
            ev, strlen(ev), "Records", "dynamodb", s_images, &s_arena, &scratch,
            s_each_keep_first, &full, err, sizeof err));
        ck_assert_str_eq(err, want);
    }
    /* nested too deeply */
    char deep[1400] = "{\"Records\":[{\"dynamodb\":{\"OldImage\":";
    for (int i = 0; i < 600; i++)
        strcat(deep, "[");
    ck_assert_ptr_null(
        fanout_jscan_shallow(deep, strlen(deep), 2, &s_arena, want, sizeof want));
    ck_assert_ptr_null(fanout_jscan_each_skip(deep, strlen(deep), "Records", "dynamodb",
                                              s_images, &s_arena, &scratch,
                                              s_each_keep_first, &full, err, sizeof err));
    ck_assert_str_eq(err, want);
    ck_assert_ptr_nonnull(strstr(err, "nested too deeply"));
    fanout_arena_free(&scratch);
}
END_TEST

/* fanout_jscan_each's fast path for an element (s_fast_object) and the
 * scan it falls back on make the same nodes: each element handed over is
 * compared with the node fanout_jscan made of it (the same text). */
struct s_same {
    const struct fanout_jnode *want; /* fanout_jscan's node of the next element */
    size_t skipped;                  /* members handed over without nodes below */
};

static void s_same_tree(struct s_same *same, const struct fanout_jnode *a,
                        const struct fanout_jnode *b)
{
    ck_assert_msg(a->type == b->type && a->text == b->text && a->len == b->len &&
                      a->count == b->count && a->key == b->key &&
                      a->key_len == b->key_len && a->key_escaped == b->key_escaped &&
                      a->escaped == b->escaped,
                  "node differs: %.*s", (int)a->len, a->text);
    if (a->child && !b->child) { /* skipped by fanout_jscan_each_skip */
        same->skipped++;
        return;
    }
    ck_assert_msg(a->distinct == b->distinct && a->inside == b->inside,
                  "distinct/inside differ: %.*s", (int)a->len, a->text);
    const struct fanout_jnode *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next)
        s_same_tree(same, x, y);
    ck_assert_msg(!x && !y, "children differ: %.*s", (int)a->len, a->text);
}

static void s_each_same(void *ctx, const struct fanout_jnode *kept,
                        const struct fanout_jnode *full)
{
    struct s_same *same = ctx;
    ck_assert_ptr_nonnull(same->want);
    ck_assert_ptr_eq(kept->text, full->text);
    s_same_tree(same, same->want, full);
    same->want = same->want->next;
}

START_TEST(jscan_each_fast_path_same_nodes)
{
    char err[256], want[256];
    struct fanout_arena scratch = {0};
    char many[2048] = "{", deep[512] = "{\"a\":";
    for (int i = 0; i < 40; i++) /* beyond the names the scan proves distinct */
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s\"n%d\":\"v\"",
                 i ? "," : "", i);
    strcat(many, "}");
    for (int i = 0; i < 12; i++) /* beyond the levels of the fast path */
        strcat(deep, "{\"b\":");
    strcat(deep, "1");
    for (int i = 0; i < 13; i++)
        strcat(deep, "}");
    const char *elements[] = {
        /* read by the fast path */
        "{\"a\":\"x\",\"b\":{\"c\":1.5e3,\"d\":true,\"e\":false,\"f\":null,\"g\":{}},"
        "\"h\":-0,\"i\":\"\"}",
        "{ \"a\" : \"x\" ,\n\t\"b\" :{ } , \"\":2,  \"c\": \n1 , "
        "\r\"d\":\t{\"e\"\n:\"\"}\n}",
        "{\"abc\":\"1\",\"axc\":\"2\",\"kinesis\":{\"data\":\"eA==\"}}",
        "{\"dynamodb\":{\"Keys\":{\"k\":{\"S\":\"a\"}},\"NewImage\":{\"a\":{\"N\":\"1\"}},"
        "\"X\":{\"NewImage\":{\"b\":1}}},\"NewImage\":{\"c\":{\"S\":\"x\"}}}",
        "{\"dynamodb\":{\"NewImage\":7,\"Keys\":{\"k\":{\"S\":\"a\",\"S\":\"b\"}}}}",
        /* valid, but read again by the full scan */
        "{\"a\":\"x\",\"a\":\"y\"}",
        "{\"b\":{\"c\":1,\"c\":2},\"d\":\"x\"}",
        "{\"\\u0061\":\"x\",\"a\":\"y\"}",
        "{\"a\":\"\\u00e9\",\"b\":\"y\"}",
        "{\"a\":\"\xc3\xa9\"}",
        "{\"a\":[1,{\"b\":2}],\"c\":\"x\"}",
        many,
        deep,
        "7",
        "\"s\"",
        "[{\"a\":1}]",
        "{}",
    };
    static const char *const skip[] = {"NewImage", "Keys", NULL};
    for (size_t i = 0; i < sizeof elements / sizeof elements[0]; i++) {
        for (int pad = 0; pad < 2; pad++) { /* near the end of the text, or not */
            for (int skipping = 0; skipping < 2; skipping++) {
                char ev[4096];
                snprintf(ev, sizeof ev, "{\"Records\":[%s, %s]%s}", elements[i],
                         elements[i],
                         pad ? ",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"" : "");
                const struct fanout_jnode *root =
                    fanout_jscan(ev, strlen(ev), &s_arena, err, sizeof err);
                ck_assert_msg(root != NULL, "%s: %s", ev, err);
                struct s_same same = {fanout_jget(root, "Records")->child, 0};
                const struct fanout_jnode *got =
                    skipping
                        ? fanout_jscan_each_skip(ev, strlen(ev), "Records", "dynamodb",
                                                 skip, &s_arena, &scratch, s_each_same,
                                                 &same, err, sizeof err)
                        : fanout_jscan_each(ev, strlen(ev), "Records", &s_arena, &scratch,
                                            s_each_same, &same, err, sizeof err);
                ck_assert_msg(got != NULL, "%s: %s", ev, err);
                ck_assert_ptr_null(same.want);
                /* skipped: dynamodb's Keys and NewImage objects, not the others */
                ck_assert_uint_eq(same.skipped, skipping && i == 3   ? 4
                                                : skipping && i == 4 ? 2
                                                                     : 0);
            }
        }
    }

    /* errors after what the fast path read: the full scan's, at the same place */
    static const char *const bad[] = {
        "{\"a\":\"x\" \"b\":1}",
        "{\"a\":\"x\",}",
        "{\"a\":01}",
        "{\"a\":tru}",
        "{\"a\":{\"b\":1,}}",
        "{\"a\":\"\x01\"}",
        "{\"a\":{\"b\":\"x\"}",
        "{\"a\":-}",
        "{\"a\":1.}",
        "{\"a\" 1}",
        "{a:1}",
        "{\"a\":\"x\",\"a\":}",
        "{\"a\":nul}",
        "{\"a\":{\"b\":[}}",
        "{\"a\":\"x\"]",
        "{\"dynamodb\":{\"NewImage\":{\"a\":{\"S\":\"\x02\"}}}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char ev[512];
        snprintf(
            ev, sizeof ev,
            "{\"Records\":[{\"ok\":\"y\"},%s],\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
            bad[i]);
        ck_assert_ptr_null(
            fanout_jscan_shallow(ev, strlen(ev), 2, &s_arena, want, sizeof want));
        for (int skipping = 0; skipping < 2; skipping++) {
            const struct fanout_jnode *full = NULL;
            ck_assert_ptr_null(
                skipping ? fanout_jscan_each_skip(ev, strlen(ev), "Records", "dynamodb",
                                                  skip, &s_arena, &scratch,
                                                  s_each_keep_first, &full, err, sizeof err)
                         : fanout_jscan_each(ev, strlen(ev), "Records", &s_arena, &scratch,
                                             s_each_keep_first, &full, err, sizeof err));
            ck_assert_msg(strcmp(err, want) == 0, "%s: %s, not %s", ev, err, want);
        }
    }
    fanout_arena_free(&scratch);
}
END_TEST

/* A NewImage jansson could not read (as the images were read before) fails
 * its record; one with an ordinary number is read. */
START_TEST(dynamodb_image_unreadable)
{
    static const struct {
        const char *image;
        int readable;
    } cases[] = {
        {"{\"a\":{\"N\":\"1\"},\"b\":5}", 1},
        {"{\"a\":{\"S\":\"x\"},\"b\":1e999}", 0},
        {"{\"a\":{\"L\":[99999999999999999999]}}", 0},
        {"{\"a\\u0000\":{\"S\":\"x\"}}", 0},
        {"{\"a\\u0062\":{\"S\":\"x\"}}", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024], err[256];
        snprintf(text, sizeof text,
                 "{\"Records\":[{\"eventSource\":\"aws:dynamodb\",\"eventName\":\"INSERT\","
                 "\"eventSourceARN\":\"arn:aws:dynamodb:eu-west-1:1:table/t/stream/s\","
                 "\"dynamodb\":{\"SequenceNumber\":\"7\",\"Keys\":{\"k\":{\"S\":\"a\"}},"
                 "\"NewImage\":%s}}]}",
                 cases[i].image);
        struct fanout_event ev;
        ck_assert_int_eq(
            fanout_event_parse(text, strlen(text), &s_arena, &ev, err, sizeof err), 0);
        ck_assert_uint_eq(ev.count, 1);
        if (cases[i].readable)
            ck_assert_msg(!ev.records[0].error, "%s: %s", cases[i].image,
                          ev.records[0].error);
        else
            ck_assert_str_eq(ev.records[0].error,
                             "record 0 (sequence number 7): field \"dynamodb\": cannot be "
                             "read (out of memory?)");
    }
}
END_TEST

/* A byte that ends a run of plain JSON string text. */
static int s_is_stop(unsigned c)
{
    return c < 0x20 || c >= 0x80 || c == '"' || c == '\\';
}

/* fanout_swar_jstop, fanout_swar_jesc and fanout_swar_quote mark exactly the bytes they
 * name, at every place in a word, and fanout_swar_first finds the first
 * in memory, whatever the bytes around it: every byte value at every
 * place among plain bytes, then words of random bytes. */
START_TEST(swar_marks_exact)
{
    for (unsigned c = 0; c < 256; c++) {
        for (unsigned at = 0; at < 8; at++) {
            unsigned char w[8];
            memset(w, 'a', sizeof w);
            w[at] = (unsigned char)c;
            uint64_t v;
            memcpy(&v, w, 8);
            uint64_t stop = fanout_swar_jstop(v), quote = fanout_swar_quote(v);
            ck_assert_msg(!!stop == s_is_stop(c), "byte 0x%02x at %u", c, at);
            ck_assert_msg(!!quote == (c == '"' || c == '\\'), "byte 0x%02x at %u", c, at);
            uint64_t esc = fanout_swar_jesc(v);
            ck_assert_msg(!!esc == (s_is_stop(c) && c < 0x80), "byte 0x%02x at %u", c, at);
            if (esc)
                ck_assert_uint_eq(fanout_swar_first(esc), at);
            if (stop)
                ck_assert_uint_eq(fanout_swar_first(stop), at);
            if (quote)
                ck_assert_uint_eq(fanout_swar_first(quote), at);
        }
    }
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned char w[8];
        memcpy(w, &x, 8);
        /* a few plain bytes, so that the first stop moves about */
        for (int k = 0; k < 8; k++)
            if ((x >> (k * 3 + 40)) & 1)
                w[k] = 'A' + (unsigned char)k;
        uint64_t v;
        memcpy(&v, w, 8);
        int first_stop = -1, first_quote = -1;
        for (int k = 7; k >= 0; k--) {
            if (s_is_stop(w[k]))
                first_stop = k;
            if (w[k] == '"' || w[k] == '\\')
                first_quote = k;
        }
        uint64_t stop = fanout_swar_jstop(v), quote = fanout_swar_quote(v),
                 esc = fanout_swar_jesc(v);
        ck_assert_int_eq(stop ? (int)fanout_swar_first(stop) : -1, first_stop);
        ck_assert_int_eq(quote ? (int)fanout_swar_first(quote) : -1, first_quote);
        for (int k = 0; k < 8; k++) { /* each mark, not only the first */
            unsigned char m[8];
            memcpy(m, &stop, 8);
            ck_assert_msg(!!(m[k] & 0x80) == s_is_stop(w[k]), "word %d byte %d", i, k);
            memcpy(m, &esc, 8);
            ck_assert_msg(!!(m[k] & 0x80) == (s_is_stop(w[k]) && w[k] < 0x80),
                          "word %d byte %d", i, k);
            memcpy(m, &quote, 8);
            ck_assert_msg(!!(m[k] & 0x80) == (w[k] == '"' || w[k] == '\\'),
                          "word %d byte %d", i, k);
        }
    }
}
END_TEST

/* fanout_jplain_end finds the closing quote of a plain string when it is
 * in a whole block of 16 bytes before the end, at every place in the
 * block, in both modes (SSE2, and the words arm64 reads: a -Dsimd=false
 * build runs this too); NULL after any other stop byte, or near the end.
 * fanout_jquote finds the first '"' or '\\' wherever it is. */
START_TEST(jscan_plain_end_every_place)
{
    char text[80];
    for (int at = 0; at < 48; at++) {
        for (unsigned c = 0; c < 256; c++) {
            memset(text, 'x', sizeof text);
            text[at] = (char)c;
            const char *end = text + sizeof text;
            const char *r = fanout_jplain_end(text, end);
            if (c == '"')
                ck_assert_ptr_eq(r, text + at);
            else if (s_is_stop(c))
                ck_assert_msg(r == NULL, "byte 0x%02x at %d", c, at);
            else
                ck_assert_ptr_null(r); /* no quote before the last 16 bytes */
            const char *q = fanout_jquote(text, end);
            ck_assert_ptr_eq(q, c == '"' || c == '\\' ? text + at : end);
            /* the quote after the stop byte: the stop decides */
            text[at + 1] = '"';
            r = fanout_jplain_end(text, end);
            ck_assert_ptr_eq(r, c == '"' ? text + at : s_is_stop(c) ? NULL : text + at + 1);
        }
    }
    /* near the end: a closing quote in the last 15 bytes, or in a block
     * that does not fit, is not looked for */
    memset(text, 'x', sizeof text);
    for (int n = 1; n < 16; n++) {
        text[n - 1] = '"';
        ck_assert_ptr_null(fanout_jplain_end(text, text + n));
        ck_assert_ptr_eq(fanout_jquote(text, text + n), text + n - 1);
        text[n - 1] = 'x';
    }
    text[20] = '"';
    ck_assert_ptr_null(fanout_jplain_end(text, text + 24)); /* bytes 16..23: no block */
    ck_assert_ptr_eq(fanout_jplain_end(text, text + 32), text + 20);
}
END_TEST

START_TEST(jscan_values_and_escapes)
{
    char err[256];
    const char *text = " {\"a\\u0062\":\"x\\ny\\u00e9\\ud83d\\ude00\\/\", \"n\": -1.5e3,"
                       " \"l\": [true, false, null, {}, []]} ";
    const struct fanout_jnode *root =
        fanout_jscan(text, strlen(text), &s_arena, err, sizeof err);
    ck_assert_msg(root != NULL, "%s", err);
    ck_assert_int_eq(root->type, FANOUT_J_OBJECT);
    ck_assert_uint_eq(root->count, 3);
    size_t len;
    const char *v = fanout_jstr(fanout_jget(root, "ab"), &s_arena, &len); /* escaped key */
    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(v, "x\ny\xc3\xa9\xf0\x9f\x98\x80/");
    const struct fanout_jnode *n = fanout_jget(root, "n");
    ck_assert_int_eq(n->type, FANOUT_J_NUMBER);
    ck_assert(n->len == 6 && memcmp(n->text, "-1.5e3", 6) == 0);
    const struct fanout_jnode *l = fanout_jget(root, "l");
    ck_assert_uint_eq(l->count, 5);
    ck_assert_int_eq(l->child->next->next->type, FANOUT_J_NULL);
    ck_assert_ptr_null(fanout_jget(root, "missing"));
    /* the text span of a value is its JSON */
    ck_assert(l->len == 27 && l->text[0] == '[' && l->text[26] == ']');
}
END_TEST

START_TEST(jscan_errors_located)
{
    static const char *const bad[][2] = {
        {"{\"a\":1,}", "column 8"},
        {"{\"a\" 1}", "expected ':'"},
        {"[1,\n 2,\n x]", "line 3, column 2"},
        {"\"\\ud800\"", "lone high surrogate"},
        {"\"\\udc00\"", "lone low surrogate"},
        {"\"a\tb\"", "control character"},
        {"\"\xff\"", "invalid UTF-8"},
        {"[1] 2", "unexpected text after"},
        {"{\"a\":", "unexpected end of input"},
        {"01", "unexpected text after"},
        {"", "unexpected end"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char err[256] = "";
        ck_assert_msg(
            fanout_jscan(bad[i][0], strlen(bad[i][0]), &s_arena, err, sizeof err) == NULL,
            "accepted %s", bad[i][0]);
        ck_assert_msg(strstr(err, bad[i][1]), "%s: %s", bad[i][0], err);
    }
    size_t depth = 100000;
    char *deep = malloc(depth);
    memset(deep, '[', depth);
    char err[256];
    ck_assert_ptr_null(fanout_jscan(deep, depth, &s_arena, err, sizeof err));
    ck_assert_msg(strstr(err, "nested too deeply"), "%s", err);
    free(deep);
}
END_TEST

START_TEST(escaped_base64_data)
{
    /* a JSON writer may escape '/' in base64 as "\/" */
    struct fanout_event ev;
    s_parse_text("{\"Records\":[" KREC("a", "1", "AAD\\/") "]}", &ev);
    ck_assert_ptr_null(ev.records[0].error);
    ck_assert_uint_eq(ev.records[0].data_len, 3);
    ck_assert(memcmp(ev.records[0].data, "\x00\x00\xff", 3) == 0);
    fanout_event_clean_up(&ev);
}

/* ---- decoding in place (fanout_event_parse_in_place) ---- */

static int s_same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static int s_same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (!alen || memcmp(a, b, alen) == 0);
}

/* `text` parsed from a copy as it is and from one decoded in place: the same
 * records, the same decoding for every option, each record's JSON as the
 * event had it (fanout_raw_json, source_json), and a record with an error
 * left as it was in the changed text. Returns how many Kinesis records'
 * data were decoded in the event's text. */
static size_t s_twin(const char *text, size_t len)
{
    char *keep = fanout_arena_memdup(&s_arena, text, len);
    char *mut = malloc(len + 1);
    ck_assert_ptr_nonnull(mut);
    memcpy(mut, text, len + 1);
    struct fanout_event a, b;
    char err[512];
    ck_assert_msg(fanout_event_parse(keep, len, &s_arena, &a, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_msg(fanout_event_parse_in_place(mut, len, 0, &s_arena, &b, err, sizeof err) ==
                      0,
                  "%s", err);
    ck_assert_uint_eq(a.count, b.count);
    ck_assert_uint_eq(a.group_count, b.group_count);
    size_t in_place = 0;
    for (size_t i = 0; i < a.count; i++) {
        const struct fanout_raw_record *x = &a.records[i], *y = &b.records[i];
        ck_assert_msg(s_same_str(x->error, y->error), "record %zu: %s / %s", i, x->error,
                      y->error);
        ck_assert_int_eq(x->kind, y->kind);
        ck_assert_uint_eq(x->index, y->index);
        ck_assert(s_same_bytes(x->key, x->key_len, y->key, y->key_len));
        ck_assert_msg(s_same_bytes(x->data, x->data_len, y->data, y->data_len),
                      "record %zu", i);
        if (y->data && !y->error && y->kind != FANOUT_SRC_DYNAMODB)
            ck_assert_uint_eq(y->data[y->data_len], 0); /* NUL-terminated, as before */
        ck_assert(s_same_str(x->sequence_number, y->sequence_number));
        ck_assert(s_same_str(x->source_arn, y->source_arn));
        ck_assert(s_same_str(x->region, y->region));
        ck_assert(s_same_str(x->action, y->action));
        ck_assert_int_eq(x->arrival_ms, y->arrival_ms);
        size_t jl;
        const char *j = fanout_raw_json(y, &s_arena, &jl);
        ck_assert_msg(s_same_bytes(x->json, x->json_len, j, jl), "record %zu: %.*s", i,
                      (int)jl, j);
        /* decoded in the event's text */
        in_place += y->kind == FANOUT_SRC_KINESIS && y->data_len &&
                    (const char *)y->data >= mut && (const char *)y->data < mut + len;
        /* a record with an error: its text as it was, but for the NUL over
         * its sequence number's closing quote */
        for (size_t c = 0;
             y->error && y->json >= mut && y->json < mut + len && c < y->json_len; c++) {
            const char *seq = y->sequence_number;
            int nul = seq && seq >= y->json && seq < y->json + y->json_len &&
                      c == (size_t)(seq - y->json) + strlen(seq);
            ck_assert_msg(y->json[c] == (nul ? 0 : x->json[c]), "record %zu at %zu", i, c);
        }
    }
    for (int o = 0; o < 8; o++) {
        struct fanout_decode_opts opts = {.deaggregate = o & 1,
                                          .source_json = (o >> 1) & 1,
                                          .append_newline = (o >> 2) & 1};
        for (size_t g = 0; g < a.group_count; g++) {
            struct fanout_decoded da, db;
            ck_assert_int_eq(fanout_decode_group(&a.groups[g], opts, &s_arena, &da), 0);
            ck_assert_int_eq(fanout_decode_group(&b.groups[g], opts, &s_arena, &db), 0);
            ck_assert_uint_eq(da.count, db.count);
            ck_assert_uint_eq(da.failed_count, db.failed_count);
            for (size_t i = 0; i < da.failed_count; i++)
                ck_assert_str_eq(da.failures[i].reason, db.failures[i].reason);
            for (size_t i = 0; i < da.count; i++) {
                const struct fanout_record *x = &da.records[i]->pub,
                                           *y = &db.records[i]->pub;
                ck_assert(s_same_bytes(x->key, x->key_len, y->key, y->key_len));
                ck_assert(s_same_bytes(x->data, x->data_len, y->data, y->data_len));
                ck_assert(s_same_bytes(x->source_json, x->source_json_len, y->source_json,
                                       y->source_json_len));
                ck_assert_int_eq(x->aggregated, y->aggregated);
                ck_assert_uint_eq(x->sub_sequence_number, y->sub_sequence_number);
                /* one text per source record: a KPL aggregate's user records share it */
                if (i && db.records[i]->raw == db.records[i - 1]->raw)
                    ck_assert_ptr_eq(y->source_json, db.records[i - 1]->pub.source_json);
            }
        }
    }
    /* the records handed over (no error): their JSON made once and kept */
    for (size_t i = 0; i < b.count; i++) {
        if (b.records[i].error)
            continue;
        size_t jl;
        ck_assert_ptr_eq(fanout_raw_json(&b.records[i], &s_arena, &jl), b.records[i].json);
    }
    fanout_event_clean_up(&a);
    fanout_event_clean_up(&b);
    free(mut);
    return in_place;
}

static size_t s_twin_file(const char *name)
{
    size_t len;
    char *text = s_slurp(name, &len);
    size_t n = s_twin(text, len);
    free(text);
    return n;
}

START_TEST(in_place_same_as_copied)
{
    ck_assert_uint_gt(s_twin_file("kinesis.json"), 0);
    ck_assert_uint_gt(s_twin_file("kpl-aggregated.json"), 0);
    ck_assert_uint_eq(s_twin_file("dynamodb.json"), 0); /* no base64 */
    /* data of 0 to 80 bytes (every padding, SIMD blocks and the quads after
     * them), between records whose base64 is bad at several places */
    struct fanout_sbuf ev = {0};
    fanout_sbuf_puts(&ev, "{\"Records\":[");
    uint8_t bytes[80];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i * 59 + 11);
    static const char *const bad[] = {
        "aGVsbG8",
        "aGV$bG8=",
        "aGVsbG8=aGVs",
        "aR==",
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo!",
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU2Nzg5K-8="};
    for (size_t n = 0; n <= sizeof bytes; n++) {
        char rec[600];
        struct fanout_sbuf b64 = {0};
        fanout_sbuf_base64(&b64, bytes, n);
        snprintf(rec, sizeof rec, "%s" KREC("k%zu", "%zu", "%s"), n ? "," : "", n, n,
                 b64.bytes ? (char *)b64.bytes : "");
        fanout_sbuf_puts(&ev, rec);
        fanout_sbuf_free(&b64);
        if (n % 13 == 0) {
            snprintf(rec, sizeof rec, "," KREC("bad", "9%zu", "%s"), n,
                     bad[n / 13 % (sizeof bad / sizeof *bad)]);
            fanout_sbuf_puts(&ev, rec);
        }
    }
    /* an escaped '/' (decoded in its unescaped copy), and an SNS message
     * holding a Kinesis event (decoded in the arena's copy) */
    fanout_sbuf_puts(&ev, "," KREC("esc", "100", "AAD\\/") ",");
    fanout_sbuf_puts(
        &ev, "{\"EventSource\":\"aws:sns\",\"Sns\":{\"MessageId\":\"m1\","
             "\"TopicArn\":\"arn:aws:sns:us-east-1:1:t\",\"Message\":\"{\\\"Records\\\":["
             "{\\\"eventSource\\\":\\\"aws:kinesis\\\",\\\"eventSourceARN\\\":"
             "\\\"arn:aws:kinesis:us-east-1:1:stream/s\\\",\\\"kinesis\\\":"
             "{\\\"partitionKey\\\":\\\"p\\\",\\\"sequenceNumber\\\":\\\"5\\\","
             "\\\"data\\\":\\\"eHl6dw==\\\"}}]}\"}}]}");
    /* the 81 good records but the empty one (not the escaped one: in its
     * own copy; nor the one in the SNS message: in the message's copy) */
    ck_assert_uint_eq(s_twin((const char *)ev.bytes, ev.len), 81 - 1);
    fanout_sbuf_free(&ev);
}
END_TEST

/* ---- duplicate member names (issue 9) ---- */

static int s_dup(const char *json, char *path, size_t path_len)
{
    char err[256];
    const struct fanout_jnode *n =
        fanout_jscan(json, strlen(json), &s_arena, err, sizeof err);
    ck_assert_msg(n != NULL, "%s", err);
    return fanout_jdup(n, &s_arena, path, path_len);
}

START_TEST(jdup_finds_repeated_names)
{
    char path[128];
    ck_assert_int_eq(
        s_dup("{\"a\":1,\"b\":{\"c\":[1,{\"d\":2,\"e\":3}]}}", path, sizeof path), 0);
    ck_assert_int_eq(s_dup("{\"a\":1,\"a\":2}", path, sizeof path), 1);
    ck_assert_str_eq(path, "a");
    /* equal after unescaping */
    ck_assert_int_eq(s_dup("{\"ab\":1,\"\\u0061b\":2}", path, sizeof path), 1);
    ck_assert_int_eq(s_dup("{\"x\":{\"k\":[0,{\"q\":1,\"q\":1}]}}", path, sizeof path), 1);
    ck_assert_str_eq(path, "x.k[1].q");
    /* different names that look alike raw are not duplicates */
    ck_assert_int_eq(s_dup("{\"a\\\\\":1,\"a\\\\\\\\\":2}", path, sizeof path), 0);
    /* 16 names, compared pairwise: distinct ones pass, an escaped repeat
     * of the first is found */
    struct fanout_sbuf b = {0};
    fanout_sbuf_puts(&b, "{");
    for (int i = 0; i < 15; i++)
        fanout_sbuf_printf(&b, "%s\"a%d\":%d", i ? "," : "", i, i);
    fanout_sbuf_puts(&b, "}");
    ck_assert_int_eq(s_dup((const char *)b.bytes, path, sizeof path), 0);
    b.len--;
    fanout_sbuf_puts(&b, ",\"a\\u0030\":0}");
    ck_assert_int_eq(s_dup((const char *)b.bytes, path, sizeof path), 1);
    ck_assert_str_eq(path, "a\\u0030");
    fanout_sbuf_reset(&b);
    /* a large object (hashed): distinct names pass, one repeat is found */
    fanout_sbuf_puts(&b, "{");
    for (int i = 0; i < 1000; i++)
        fanout_sbuf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i, i);
    fanout_sbuf_puts(&b, "}");
    ck_assert_int_eq(s_dup((const char *)b.bytes, path, sizeof path), 0);
    b.len--;
    fanout_sbuf_puts(&b, ",\"k\\u0035\\u0030\\u0030\":0}"); /* k500, escaped */
    ck_assert_int_eq(s_dup((const char *)b.bytes, path, sizeof path), 1);
    ck_assert_str_eq(path, "k\\u0035\\u0030\\u0030");
    fanout_sbuf_free(&b);
}
END_TEST

/* The scan marks values whose objects it saw with distinct names
 * (fanout_jdup skips them); anything it could not prove stays unmarked. */
START_TEST(scan_marks_distinct_values)
{
    char err[256];
    const char *json = "{\"a\":{\"axb\":1,\"ayb\":[{\"q\":1,\"q\":2}]},"
                       "\"b\":{\"x\":{},\"y\":[1,\"s\"]},\"c\":{\"\\u0063\":1},"
                       "\"d\":{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,"
                       "\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"ka\":10,\"kb\":11,"
                       "\"kc\":12,\"kd\":13,\"ke\":14,\"kf\":15,\"kg\":16}}";
    const struct fanout_jnode *root =
        fanout_jscan(json, strlen(json), &s_arena, err, sizeof err);
    ck_assert_msg(root != NULL, "%s", err);
    ck_assert(!root->distinct);
    const struct fanout_jnode *a = fanout_jget(root, "a");
    ck_assert(!a->distinct);                     /* axb, ayb differ; the repeat is inside */
    ck_assert(!fanout_jget(a, "ayb")->distinct); /* [{"q":1,"q":2}] */
    ck_assert(fanout_jget(root, "b")->distinct); /* plain distinct names */
    ck_assert(fanout_jget(fanout_jget(root, "b"), "x")->distinct);
    ck_assert(!fanout_jget(root, "c")->distinct); /* an escaped name */
    ck_assert(fanout_jget(root, "d")->distinct);  /* 17 names, alike in bits */
    /* more names than the scan compares: left to fanout_jdup */
    struct fanout_sbuf b = {0};
    fanout_sbuf_puts(&b, "{");
    for (int i = 0; i < 40; i++)
        fanout_sbuf_printf(&b, "%s\"n%d\":%d", i ? "," : "", i, i);
    fanout_sbuf_puts(&b, "}");
    const struct fanout_jnode *big =
        fanout_jscan((const char *)b.bytes, b.len, &s_arena, err, sizeof err);
    ck_assert_msg(big != NULL, "%s", err);
    ck_assert(!big->distinct);
    char path[64];
    ck_assert_int_eq(fanout_jdup(big, &s_arena, path, sizeof path), 0);
    fanout_sbuf_free(&b);
    ck_assert_int_eq(fanout_jdup(root, &s_arena, path, sizeof path), 1);
    ck_assert_str_eq(path, "a.ayb[0].q");
    ck_assert_int_eq(fanout_jdup(fanout_jget(root, "b"), &s_arena, path, sizeof path), 0);
    ck_assert_int_eq(fanout_jdup(fanout_jget(root, "d"), &s_arena, path, sizeof path), 0);
}
END_TEST

START_TEST(duplicate_key_fails_that_record_only)
{
    struct fanout_event ev;
    /* record 1 repeats kinesis.data: neither value is taken */
    s_parse_text(
        "{\"Records\":[" KREC(
            "a", "1",
            "aGVsbG8=") ","
                        "{\"eventSource\":\"aws:kinesis\",\"eventSourceARN\":\"arn:aws:"
                        "kinesis:eu-west-1:1:"
                        "stream/"
                        "s\",\"kinesis\":{\"partitionKey\":\"b\",\"sequenceNumber\":\"2\","
                        "\"data\":\"aGVsbG8=\",\"data\":\"d29ybGQ=\"}},"
                        "{\"eventSource\":\"aws:kinesis\",\"eventSource\":\"aws:dynamodb\","
                        "\"eventSourceARN\":\"arn:aws:kinesis:eu-west-1:1:stream/"
                        "s\",\"kinesis\":{"
                        "\"partitionKey\":\"c\",\"sequenceNumber\":\"3\",\"data\":"
                        "\"aGVsbG8=\"}},"
                        "{\"eventSource\":\"aws:kinesis\",\"eventSourceARN\":\"arn:aws:"
                        "kinesis:eu-west-1:1:"
                        "stream/"
                        "s\",\"kinesis\":{\"partitionKey\":\"d\",\"sequenceNumber\":\"4\","
                        "\"sequenceNumber\":\"5\",\"data\":\"aGVsbG8=\"}}]}",
        &ev);
    ck_assert_uint_eq(ev.count, 4);
    ck_assert_ptr_null(ev.records[0].error);
    ck_assert_ptr_nonnull(ev.records[1].error);
    ck_assert_msg(strstr(ev.records[1].error, "record 1 (sequence number 2): duplicate key "
                                              "\"kinesis.data\""),
                  "%s", ev.records[1].error);
    ck_assert_msg(strstr(ev.records[2].error, "record 2 (sequence number 3): duplicate key "
                                              "\"eventSource\""),
                  "%s", ev.records[2].error);
    /* the identifier itself repeated: not trusted, the record has none */
    ck_assert_msg(strstr(ev.records[3].error, "record 3: duplicate key "
                                              "\"kinesis.sequenceNumber\""),
                  "%s", ev.records[3].error);
    ck_assert_ptr_null(ev.records[3].sequence_number);
    fanout_event_clean_up(&ev);

    char err[512];
    const char *top = "{\"Records\":[],\"Records\":[]}";
    ck_assert_int_eq(fanout_event_parse(top, strlen(top), &s_arena, &ev, err, sizeof err),
                     -1);
    ck_assert_msg(strstr(err, "repeats the key \"Records\""), "%s", err);
}
END_TEST

START_TEST(duplicate_key_in_dynamodb_and_sns)
{
    struct fanout_event ev;
    s_parse_text(
        "{\"Records\":[{\"eventSource\":\"aws:dynamodb\",\"eventName\":\"INSERT\","
        "\"eventSourceARN\":\"arn:aws:dynamodb:eu-west-1:1:table/t/stream/x\","
        "\"dynamodb\":{\"SequenceNumber\":\"7\",\"Keys\":{\"id\":{\"S\":\"1\"}},"
        "\"NewImage\":{\"id\":{\"S\":\"1\"},\"v\":{\"N\":\"1\"},\"v\":{\"N\":\"2\"}}}},"
        "{\"EventSource\":\"aws:sns\",\"Sns\":{\"MessageId\":\"m1\",\"TopicArn\":"
        "\"arn:aws:sns:eu-west-1:1:t\",\"Message\":\"x\",\"Message\":\"y\"}}]}",
        &ev);
    ck_assert_uint_eq(ev.count, 2);
    ck_assert_msg(ev.records[0].error &&
                      strstr(ev.records[0].error, "duplicate key \"dynamodb.NewImage.v\""),
                  "%s", ev.records[0].error);
    ck_assert_msg(
        ev.records[1].error &&
            strstr(ev.records[1].error,
                   "record 1 (sequence number m1): duplicate key \"Sns.Message\""),
        "%s", ev.records[1].error);
    fanout_event_clean_up(&ev);
}
END_TEST
END_TEST

int main(void)
{
    fanout_log_set(FANOUT_LOG_ERROR, 0);
    Suite *s = suite_create("event");
    TCase *tc = tcase_create("decode");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, kinesis_sample);
    tcase_add_test(tc, dynamodb_sample);
    tcase_add_test(tc, append_newline_per_record_in_a_copy);
    tcase_add_test(tc, kpl_sample_deaggregated);
    tcase_add_test(tc, event_level_errors);
    tcase_add_test(tc, bad_records_named_rest_go_on);
    tcase_add_test(tc, groups_in_first_seen_order);
    tcase_add_test(tc, sns_wrapped_and_plain);
    tcase_add_test(tc, dynamodb_bad_image_fails_one_record);
    tcase_add_test(tc, dynamodb_keys_as_scanned);
    tcase_add_test(tc, dynamodb_converted_while_scanned);
    tcase_add_test(tc, jscan_values_and_escapes);
    tcase_add_test(tc, swar_marks_exact);
    tcase_add_test(tc, jscan_plain_end_every_place);
    tcase_add_test(tc, jscan_shallow_then_valid);
    tcase_add_test(tc, jscan_each_hands_over_the_records);
    tcase_add_test(tc, jscan_errors_located);
    tcase_add_test(tc, escaped_base64_data);
    tcase_add_test(tc, in_place_same_as_copied);
    tcase_add_test(tc, jdup_finds_repeated_names);
    tcase_add_test(tc, scan_marks_distinct_values);
    tcase_add_test(tc, duplicate_key_fails_that_record_only);
    tcase_add_test(tc, duplicate_key_in_dynamodb_and_sns);
    tcase_add_test(tc, arrival_times);
    tcase_add_test(tc, arrival_times_match_strtod);
    tcase_add_test(tc, jscan_each_skip_validates_without_nodes);
    tcase_add_test(tc, jscan_each_fast_path_same_nodes);
    tcase_add_test(tc, dynamodb_image_unreadable);
    tcase_add_test(tc, whole_record_insert_modify_remove);
    tcase_add_test(tc, whole_record_bad_old_image);
    tcase_add_test(tc, dynamodb_shapes_across_records);
    tcase_add_test(tc, text_members_with_nul_fail);
    tcase_add_test(tc, sns_text_members_with_nul_fail);
    tcase_add_test(tc, dynamodb_old_image_of_a_shape_invalid);
    suite_add_tcase(s, tc);
    return fanout_check_run(s);
}
