/*
 * The file plugin (file.c) through its descriptor: each message one JSON
 * line, in order, with its record's fields ("dataBase64"/"keyBase64" for
 * bytes that are not UTF-8, "records" for a collapsed message), appended
 * across calls; destinations and an open that fails.
 */
#include <check.h>
#include <unistd.h>

#include "check_main.h"
#include "reply_host.h"

extern const struct fanout_plugin fanout_plugin_v1;

static const struct fanout_plugin *const p = &fanout_plugin_v1;

static char s_path[64];

static void *s_open(const char *dest, void **state, struct fanout_error *err)
{
    void *inst = NULL;
    ck_assert_int_eq(p->init(&reply_host, state, err), 0);
    struct fanout_target t = {.struct_size = sizeof t, .id = "f", .destination = dest};
    if (p->open(*state, &t, &inst, err) != 0)
        return NULL;
    return inst;
}

/* The file's lines, in a buffer of `cap` bytes. */
static size_t s_lines(char *buf, size_t cap, char *lines[], size_t max)
{
    FILE *f = fopen(s_path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, cap - 1, f), k = 0;
    fclose(f);
    buf[n] = 0;
    for (char *s = buf, *nl; k < max && (nl = strchr(s, '\n')); s = nl + 1) {
        *nl = 0;
        lines[k++] = s;
    }
    return k;
}

START_TEST(lines_in_order)
{
    snprintf(s_path, sizeof s_path, "/tmp/fanout-test-file-%d.jsonl", (int)getpid());
    unlink(s_path);
    void *state = NULL;
    struct fanout_error err = {0};
    void *inst = s_open(s_path, &state, &err);
    ck_assert_msg(inst != NULL, "%s", err.message);
    struct reply_batch b;
    reply_batch_init(&b, 3);
    static const uint8_t bin[] = {0xff, 0x00, 'a'};
    b.msgs[1].body = bin;
    b.msgs[1].body_len = sizeof bin;
    b.msgs[2].key = bin;
    b.msgs[2].key_len = sizeof bin;
    ck_assert_int_eq(p->send(inst, &b.batch, b.out), 0);
    ck_assert_uint_eq(reply_batch_ok(&b, 3), 3);
    /* a second call appends; a collapsed message says how many records */
    struct reply_batch c;
    reply_batch_init(&c, 2);
    c.msgs[0].record_count = 2;
    c.batch.count = 1;
    c.batch.collapse = FANOUT_COLLAPSE_JSON;
    ck_assert_int_eq(p->send(inst, &c.batch, c.out), 0);
    p->close(inst);
    p->fini(state);

    char buf[4096], *l[8];
    ck_assert_uint_eq(s_lines(buf, sizeof buf, l, 8), 4);
    ck_assert_str_eq(l[0],
                     "{\"source\":\"arn:aws:kinesis:us-east-1:123456789012:stream/src\","
                     "\"key\":\"k0\",\"sequenceNumber\":"
                     "\"49590338271490256608559692538361571095921575989136588898\","
                     "\"subSequenceNumber\":0,\"action\":\"PUT\",\"data\":\"{\\\"n\\\":"
                     "0}\"}");
    ck_assert_msg(strstr(l[1], "\"key\":\"k1\"") &&
                      strstr(l[1], "\"dataBase64\":\"/wBh\"") && !strstr(l[1], "\"data\":"),
                  "%s", l[1]);
    ck_assert_msg(strstr(l[2], "\"keyBase64\":\"/wBh\"") &&
                      strstr(l[2], "\"subSequenceNumber\":2") &&
                      strstr(l[2], "\"data\":\"{\\\"n\\\":2}\""),
                  "%s", l[2]);
    ck_assert_msg(strstr(l[3], "\"records\":2") && !strstr(l[3], "\"action\""), "%s", l[3]);
    unlink(s_path);
}
END_TEST

START_TEST(open_fails)
{
    void *state = NULL;
    struct fanout_error err = {0};
    ck_assert_ptr_null(s_open("/nonexistent-dir/x/y.jsonl", &state, &err));
    ck_assert_str_eq(err.code, "OpenFailed");
    ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent-dir/x/y.jsonl"));
    p->fini(state);
}
END_TEST

START_TEST(destinations)
{
    char err[128];
    struct fanout_target t = {.struct_size = sizeof t, .destination = "/tmp/x.jsonl"};
    ck_assert_int_eq(p->validate(&t, err, sizeof err), 0);
    t.destination = "-";
    ck_assert_int_eq(p->validate(&t, err, sizeof err), 0);
    t.destination = "";
    ck_assert_int_eq(p->validate(&t, err, sizeof err), -1);
    t.destination = "/tmp/x.jsonl";
    t.region = "us-east-1";
    ck_assert_int_eq(p->validate(&t, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "\"region\""));
    t.region = NULL;
    t.role = "arn:aws:iam::123456789012:role/r";
    ck_assert_int_eq(p->validate(&t, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "\"role\""));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plugin_file");
    TCase *tc = tcase_create("lines");
    tcase_add_test(tc, lines_in_order);
    tcase_add_test(tc, open_fails);
    tcase_add_test(tc, destinations);
    suite_add_tcase(s, tc);
    return fanout_check_run(s);
}
