/*
 * The es plugin (es.c, es_api.c) through its descriptor, against a fake
 * host whose aws_call answers from a script (tests/fuzz/reply_host.h): the
 * _bulk request (path, signing, the action and document lines in order),
 * per-document outcomes from the items (partial failures), whole-request
 * failures, a call cut into several requests by maxBulkBytes, and
 * documentId "key" resending the later changes of a key whose earlier
 * change failed.
 */
#include <check.h>

#include "check_main.h"
#include "plugin_harness.h"

#include "es.h"

static void s_open(const char *dest, int64_t max_bulk_bytes,
                   const struct reply_answer *script, size_t n)
{
    static struct es_options o;
    o = (struct es_options){max_bulk_bytes, 500, "key", NULL, NULL, NULL};
    harness_open((struct fanout_target){.id = "m1",
                                        .destination = dest,
                                        .role = "arn:aws:iam::123456789012:role/r",
                                        .parallel = 1,
                                        .options = &o},
                 script, n);
}

#define ITEM(id, st) "{\"index\":{\"_index\":\"idx\",\"_id\":\"" id "\",\"status\":" st "}}"
#define ERR(id, st, type)                                                                  \
    "{\"index\":{\"_index\":\"idx\",\"_id\":\"" id "\",\"status\":" st                     \
    ",\"error\":{\"type\":\"" type "\",\"reason\":\"r\"}}}"

START_TEST(bulk_request)
{
    static const struct reply_answer ok[] = {
        {.status = 200,
         .body = "{\"took\":1,\"errors\":false,\"items\":[" ITEM("k0", "201") "," ITEM(
             "k1", "200") "," ITEM("k2", "201") "]}"}};
    s_open("https://search-d.us-west-2.es.amazonaws.com#idx", 5 << 20, ok, 1);
    struct reply_batch b;
    reply_batch_init(&b, 3);
    harness_send(&b, 3, "OOO");
    ck_assert_uint_eq(s_reply.seen_count, 1);
    const struct reply_seen *w = &s_reply.seen[0];
    ck_assert_str_eq(w->service, "es");
    ck_assert_str_eq(w->signing_name, "es");
    ck_assert_str_eq(w->region, "us-west-2");
    ck_assert_str_eq(w->endpoint, "https://search-d.us-west-2.es.amazonaws.com");
    ck_assert_str_eq(w->role, "arn:aws:iam::123456789012:role/r");
    ck_assert_str_eq(w->path, "/idx/_bulk");
    ck_assert_str_eq(w->headers[0][1], "application/x-ndjson");
    ck_assert_str_eq(w->body, "{\"index\":{\"_id\":\"k0\"}}\n{\"n\":0}\n"
                              "{\"index\":{\"_id\":\"k1\"}}\n{\"n\":1}\n"
                              "{\"index\":{\"_id\":\"k2\"}}\n{\"n\":2}\n");
    harness_close();
}
END_TEST

/* One _bulk answer for four documents k0..k3: each takes its item's. */
START_TEST(bulk_answers)
{
    static const struct {
        struct reply_answer a;
        const char *want;
        const char *codes[4];
    } cases[] = {
        {{.status = 200,
          .body = "{\"errors\":true,\"items\":[" ITEM("k0", "201") "," ERR(
              "k1", "429",
              "es_rejected_execution_exception") "," ERR("k2", "400",
                                                         "mapper_parsing_"
                                                         "exception") "," ITEM("k3",
                                                                               "20"
                                                                               "1") "]}"},
         "OTFO",
         {"", "es_rejected_execution_exception", "mapper_parsing_exception", ""}},
        {{.status = 200,
          .body = "{\"errors\":true,\"items\":[" ERR(
              "k0", "503",
              "unavailable_shards_exception") "," ITEM("k1",
                                                       "201") "," ITEM("k2",
                                                                       "201") "," ITEM("k3",
                                                                                       "20"
                                                                                       "1") "]}"},
         "ROOO",
         {"unavailable_shards_exception", "", "", ""}},
        /* items out of order: nothing can be trusted */
        {{.status = 200,
          .body = "{\"errors\":false,\"items\":[" ITEM("k1", "201") "," ITEM(
              "k0", "201") "," ITEM("k2", "201") "," ITEM("k3", "201") "]}"},
         "RRRR",
         {NULL}},
        /* whole-request failures */
        {{429, FANOUT_AWS_THROTTLED, "TooManyRequests", "slow", NULL, NULL, NULL},
         "TTTT",
         {"TooManyRequests", "TooManyRequests", "TooManyRequests", "TooManyRequests"}},
        {{413, FANOUT_AWS_FAILED, "", "", NULL, NULL, NULL},
         "FFFF",
         {"RequestEntityTooLarge", "RequestEntityTooLarge", "RequestEntityTooLarge",
          "RequestEntityTooLarge"}},
        {{0, FANOUT_AWS_RETRYABLE, "Timeout", "no answer", NULL, NULL, NULL},
         "RRRR",
         {"Timeout", "Timeout", "Timeout", "Timeout"}},
        {{403, FANOUT_AWS_FAILED, "", "", NULL, NULL, NULL},
         "FFFF",
         {"HttpError", "HttpError", "HttpError", "HttpError"}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        s_open("https://search-d.us-west-2.es.amazonaws.com#idx", 5 << 20, &cases[k].a, 1);
        struct reply_batch b;
        reply_batch_init(&b, 4);
        harness_send(&b, 4, cases[k].want);
        for (size_t i = 0; i < 4 && cases[k].codes[0]; i++)
            ck_assert_msg(strcmp(b.out[i].code, cases[k].codes[i]) == 0,
                          "case %zu, document %zu: code %s", k, i, b.out[i].code);
        harness_close();
    }
}
END_TEST

/* maxBulkBytes 1024: documents of ~400 bytes go two per request, each
 * request answered on its own. */
START_TEST(bulk_cut_by_size)
{
    static const struct reply_answer ans[] = {
        {.status = 200,
         .body = "{\"errors\":true,\"items\":[" ITEM("k0", "201") "," ERR("k1", "400",
                                                                          "x") "]}"},
        {503, FANOUT_AWS_RETRYABLE, "ServiceUnavailable", "", NULL, NULL, NULL},
        {.status = 200, .body = "{\"errors\":false,\"items\":[" ITEM("k4", "201") "]}"},
    };
    s_open("http://127.0.0.1:9200#idx", 1024, ans, 3);
    struct reply_batch b;
    reply_batch_init(&b, 5);
    static char docs[5][400];
    for (size_t i = 0; i < 5; i++) {
        snprintf(docs[i], sizeof docs[i], "{\"n\":%zu,\"pad\":\"%0370d\"}", i, 0);
        b.msgs[i].body = (const uint8_t *)docs[i];
        b.msgs[i].body_len = strlen(docs[i]);
    }
    harness_send(&b, 5, "OFRRO");
    ck_assert_uint_eq(s_reply.seen_count, 3);
    ck_assert_ptr_nonnull(strstr(s_reply.seen[0].body, "\"k1\""));
    ck_assert_ptr_nonnull(strstr(s_reply.seen[1].body, "\"k2\""));
    ck_assert_ptr_nonnull(strstr(s_reply.seen[1].body, "\"k3\""));
    ck_assert_ptr_nonnull(strstr(s_reply.seen[2].body, "\"k4\""));
    ck_assert_str_eq(s_reply.seen[0].region, ""); /* none in the endpoint */
    harness_close();
}
END_TEST

/* documentId "key": k1 failed (to be resent), so the later change of k1
 * that succeeded is resent after it, and nothing else. */
START_TEST(key_changes_stay_in_order)
{
    static const struct reply_answer ans[] = {
        {.status = 200,
         .body = "{\"errors\":true,\"items\":[" ITEM("k0", "201") "," ERR(
             "k1", "429",
             "es_rejected_execution_exception") "," ITEM("k1", "200") "," ITEM("k0",
                                                                               "200") "]}"},
    };
    s_open("https://search-d.us-west-2.es.amazonaws.com#idx", 5 << 20, ans, 1);
    struct reply_batch b;
    reply_batch_init(&b, 4);
    /* keys k0 k1 k1 k0 */
    b.msgs[2].key = (const uint8_t *)b.keys[1];
    b.msgs[3].key = (const uint8_t *)b.keys[0];
    harness_send(&b, 4, "OTRO");
    ck_assert_str_eq(b.out[2].code, "ResentAfterEarlierChange");
    harness_close();
}
END_TEST

START_TEST(destinations)
{
    static char long_index[300];
    memset(long_index, 0, sizeof long_index);
    memcpy(long_index, "h#", 2);
    memset(long_index + 2, 'a', 256);
    static const struct harness_dest cases[] = {
        {"https://h:9200#logs", NULL, NULL},
        {"h#logs/_doc", NULL, NULL},
        {"h#", NULL, "the index name is missing"},
        {"h#logs/", NULL, "the document type after '/' is empty"},
        {"h#Logs", NULL, "index name \"Logs\" must be lowercase"},
        {"h#lo\xffgs", NULL, "gs\" is not valid UTF-8"},
        {"h#logs/t\xc3", NULL, "document type \"t"},
        {"h#logs/_x", NULL, "must not start with '_'"},
        {long_index, NULL, "is 256 bytes; the limit is 255 bytes"},
    };
    harness_destinations(cases, sizeof cases / sizeof *cases);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plugin_es");
    TCase *tc = tcase_create("bulk");
    tcase_add_test(tc, bulk_request);
    tcase_add_test(tc, bulk_answers);
    tcase_add_test(tc, bulk_cut_by_size);
    tcase_add_test(tc, key_changes_stay_in_order);
    tcase_add_test(tc, destinations);
    suite_add_tcase(s, tc);
    return fanout_check_run(s);
}
