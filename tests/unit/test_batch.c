#include <check.h>

#include "check_main.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"

static struct fanout_arena s_arena;
static struct fanout_rec s_recs[2000];
static struct fanout_rec *s_ptrs[2000];
static char s_seqs[2000][24];

static void s_setup(void)
{
    memset(&s_arena, 0, sizeof s_arena);
}

static void s_teardown(void)
{
    fanout_arena_free(&s_arena);
}

/* Record i with the given key and data (not copied: literals or static). */
static void s_rec(size_t i, const char *key, const void *data, size_t len)
{
    struct fanout_rec *r = &s_recs[i];
    memset(r, 0, sizeof *r);
    snprintf(s_seqs[i], sizeof s_seqs[i], "%zu", i);
    r->pub.key = (const uint8_t *)key;
    r->pub.key_len = strlen(key);
    r->pub.data = data;
    r->pub.data_len = len;
    r->pub.sequence_number = s_seqs[i];
    r->pub.action = "PUT";
    s_ptrs[i] = r;
}

static char s_blob[1 << 16];

/* n records of `size` bytes of 'x' (keys "k<i>"). */
static void s_fill(size_t n, size_t size)
{
    static char keys[2000][24];
    memset(s_blob, 'x', sizeof s_blob);
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "k%zu", i);
        s_rec(i, keys[i], s_blob, size);
    }
}

/* Every record in exactly one message or rejected, in source order. */
static void s_check_complete(const struct fanout_plan *p, size_t n)
{
    size_t next = 0, rej = 0;
    for (size_t c = 0; c < p->call_count; c++)
        for (size_t m = 0; m < p->calls[c].count; m++) {
            const struct fanout_message *msg = p->calls[c].messages[m];
            for (size_t r = 0; r < msg->record_count; r++) {
                while (rej < p->rejected_count && p->rejected[rej].rec == s_ptrs[next]) {
                    rej++;
                    next++;
                }
                ck_assert_ptr_eq(msg->records[r], &s_ptrs[next]->pub);
                next++;
            }
        }
    while (rej < p->rejected_count && p->rejected[rej].rec == s_ptrs[next]) {
        rej++;
        next++;
    }
    ck_assert_uint_eq(next, n);
    ck_assert_uint_eq(rej, p->rejected_count);
}

START_TEST(none_counts_per_call)
{
    s_fill(7, 10);
    struct fanout_limits lim = {.max_messages_per_call = 3};
    struct fanout_plan p;
    ck_assert_int_eq(fanout_plan_build(s_ptrs, 7, FANOUT_COLLAPSE_NONE, &lim, &s_arena, &p),
                     0);
    ck_assert_uint_eq(p.call_count, 3);
    ck_assert_uint_eq(p.calls[0].count, 3);
    ck_assert_uint_eq(p.calls[1].count, 3);
    ck_assert_uint_eq(p.calls[2].count, 1);
    ck_assert_uint_eq(p.message_count, 7);
    ck_assert_uint_eq(p.rejected_count, 0);
    /* a message is the record itself: no copy */
    ck_assert_ptr_eq(p.calls[0].messages[1]->body, s_recs[1].pub.data);
    ck_assert_uint_eq(p.calls[0].messages[1]->key_len, 2);
    s_check_complete(&p, 7);
}
END_TEST

START_TEST(none_bytes_per_call_exact_fit)
{
    /* 10 + 3 * (20 + 5) = 85 <= 85; a fourth would make 110 */
    s_fill(7, 20);
    struct fanout_limits lim = {
        .max_call_bytes = 85, .per_call_overhead = 10, .per_message_overhead = 5};
    struct fanout_plan p;
    ck_assert_int_eq(fanout_plan_build(s_ptrs, 7, FANOUT_COLLAPSE_NONE, &lim, &s_arena, &p),
                     0);
    ck_assert_uint_eq(p.call_count, 3);
    ck_assert_uint_eq(p.calls[0].count, 3);
    /* one byte less: two per call */
    lim.max_call_bytes = 84;
    ck_assert_int_eq(fanout_plan_build(s_ptrs, 7, FANOUT_COLLAPSE_NONE, &lim, &s_arena, &p),
                     0);
    ck_assert_uint_eq(p.calls[0].count, 2);
    ck_assert_uint_eq(p.call_count, 4);
    s_check_complete(&p, 7);
}
END_TEST

START_TEST(none_oversized_reported_not_dropped)
{
    s_fill(3, 50);
    s_rec(1, "key", s_blob, 51);
    struct fanout_limits lim = {.max_message_bytes = 50};
    struct fanout_plan p;
    ck_assert_int_eq(fanout_plan_build(s_ptrs, 3, FANOUT_COLLAPSE_NONE, &lim, &s_arena, &p),
                     0);
    ck_assert_uint_eq(p.message_count, 2);
    ck_assert_uint_eq(p.rejected_count, 1);
    ck_assert_ptr_eq(p.rejected[0].rec, &s_recs[1]);
    ck_assert_msg(strstr(p.rejected[0].reason, "51 bytes") &&
                      strstr(p.rejected[0].reason, "limit of 50 bytes"),
                  "reason: %s", p.rejected[0].reason);
    s_check_complete(&p, 3);
}
END_TEST

START_TEST(none_key_counts_toward_size)
{
    s_fill(2, 45);
    s_rec(0, "123456", s_blob, 45); /* 45 + 6 = 51 > 50 */
    s_rec(1, "12345", s_blob, 45);  /* 45 + 5 = 50 fits */
    struct fanout_limits lim = {.max_message_bytes = 50, .key_counts = 1};
    struct fanout_plan p;
    ck_assert_int_eq(fanout_plan_build(s_ptrs, 2, FANOUT_COLLAPSE_NONE, &lim, &s_arena, &p),
                     0);
    ck_assert_uint_eq(p.rejected_count, 1);
    ck_assert_ptr_eq(p.rejected[0].rec, &s_recs[0]);
    ck_assert_msg(strstr(p.rejected[0].reason, "data 45 + partition key 6"), "reason: %s",
                  p.rejected[0].reason);
    /* a record that fits its own limit is never called too large */
    ck_assert_uint_eq(p.message_count, 1);
}
END_TEST

START_TEST(call_limit_caps_message_size)
{
    /* no per-message limit, but a call of 100 with 10 overhead: a 91-byte
     * record cannot be sent at all, a 90-byte one can */
    s_fill(2, 90);
    s_rec(1, "k", s_blob, 91);
    struct fanout_limits lim = {.max_call_bytes = 100, .per_call_overhead = 10};
    struct fanout_plan p;
    ck_assert_int_eq(fanout_plan_build(s_ptrs, 2, FANOUT_COLLAPSE_NONE, &lim, &s_arena, &p),
                     0);
    ck_assert_uint_eq(p.message_count, 1);
    ck_assert_uint_eq(p.rejected_count, 1);
    ck_assert_ptr_eq(p.rejected[0].rec, &s_recs[1]);
}
END_TEST

START_TEST(json_collapse_body)
{
    s_rec(0, "a", "{\"a\":1}", 7);
    s_rec(1, "b", "plain text \"quoted\"", 19);
    s_rec(2, "c", "\x00\x00\xff", 3);
    s_rec(3, "d", " [1, 2.50] ", 11);
    struct fanout_limits lim = {0};
    struct fanout_plan p;
    ck_assert_int_eq(fanout_plan_build(s_ptrs, 4, FANOUT_COLLAPSE_JSON, &lim, &s_arena, &p),
                     0);
    ck_assert_uint_eq(p.message_count, 1);
    const struct fanout_message *m = p.calls[0].messages[0];
    ck_assert_uint_eq(m->record_count, 4);
    ck_assert_str_eq((const char *)m->key, "a");
    const char *want =
        "{\"Records\":[{\"a\":1},\"plain text \\\"quoted\\\"\",\"AAD/\", [1, 2.50] ]}";
    ck_assert_uint_eq(m->body_len, strlen(want));
    ck_assert(memcmp(m->body, want, m->body_len) == 0);
    json_t *j = json_loadb((const char *)m->body, m->body_len, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "Records")), 4);
    json_decref(j);
}
END_TEST

START_TEST(json_collapse_boundary)
{
    /* two records {"i":1} (7 bytes): {"Records":[ (12) + 7 + , + 7 + ]} = 29 */
    s_rec(0, "a", "{\"i\":1}", 7);
    s_rec(1, "b", "{\"i\":2}", 7);
    s_rec(2, "c", "{\"i\":3}", 7);
    struct fanout_limits lim = {.max_message_bytes = 29};
    struct fanout_plan p;
    ck_assert_int_eq(fanout_plan_build(s_ptrs, 3, FANOUT_COLLAPSE_JSON, &lim, &s_arena, &p),
                     0);
    ck_assert_uint_eq(p.message_count, 2);
    ck_assert_uint_eq(p.calls[0].messages[0]->record_count, 2);
    ck_assert_uint_eq(p.calls[0].messages[0]->body_len, 29);
    ck_assert_str_eq((const char *)p.calls[0].messages[1]->key, "c");
    lim.max_message_bytes = 28;
    ck_assert_int_eq(fanout_plan_build(s_ptrs, 3, FANOUT_COLLAPSE_JSON, &lim, &s_arena, &p),
                     0);
    ck_assert_uint_eq(p.message_count, 3);
    /* a record that does not fit even alone: 14 + 7 = 21 > 20 */
    lim.max_message_bytes = 20;
    ck_assert_int_eq(fanout_plan_build(s_ptrs, 3, FANOUT_COLLAPSE_JSON, &lim, &s_arena, &p),
                     0);
    ck_assert_uint_eq(p.message_count, 0);
    ck_assert_uint_eq(p.rejected_count, 3);
    ck_assert_msg(strstr(p.rejected[0].reason, "21 bytes in a JSON message"), "reason: %s",
                  p.rejected[0].reason);
    s_check_complete(&p, 3);
}
END_TEST

START_TEST(concat_and_b64)
{
    s_rec(0, "a", "abc", 3);
    s_rec(1, "b", "def", 3);
    s_rec(2, "c", "g", 1);
    struct fanout_limits lim = {.max_message_bytes = 6};
    struct fanout_plan p;
    ck_assert_int_eq(
        fanout_plan_build(s_ptrs, 3, FANOUT_COLLAPSE_CONCAT, &lim, &s_arena, &p), 0);
    ck_assert_uint_eq(p.message_count, 2);
    ck_assert_uint_eq(p.calls[0].messages[0]->body_len, 6);
    ck_assert(memcmp(p.calls[0].messages[0]->body, "abcdef", 6) == 0);
    ck_assert(memcmp(p.calls[0].messages[1]->body, "g", 1) == 0);

    /* base64 of "abcdef" is 8 bytes: with a limit of 8 it fits; "abcdefg"
     * would be 12 */
    lim.max_message_bytes = 8;
    ck_assert_int_eq(
        fanout_plan_build(s_ptrs, 3, FANOUT_COLLAPSE_CONCAT_B64, &lim, &s_arena, &p), 0);
    ck_assert_uint_eq(p.message_count, 2);
    ck_assert_uint_eq(p.calls[0].messages[0]->body_len, 8);
    ck_assert(memcmp(p.calls[0].messages[0]->body, "YWJjZGVm", 8) == 0);
    ck_assert(memcmp(p.calls[0].messages[1]->body, "Zw==", 4) == 0);
    s_check_complete(&p, 3);
}
END_TEST

START_TEST(collapsed_messages_grouped_into_calls)
{
    s_fill(100, 10);
    struct fanout_limits lim = {.max_message_bytes = 100, .max_messages_per_call = 2};
    struct fanout_plan p;
    ck_assert_int_eq(
        fanout_plan_build(s_ptrs, 100, FANOUT_COLLAPSE_CONCAT, &lim, &s_arena, &p), 0);
    ck_assert_uint_eq(p.message_count, 10);
    ck_assert_uint_eq(p.call_count, 5);
    s_check_complete(&p, 100);
}
END_TEST

START_TEST(random_sizes_keep_every_record_in_order)
{
    unsigned seed = 12345;
    static char keys[2000][8];
    for (size_t i = 0; i < 2000; i++) {
        snprintf(keys[i], sizeof keys[i], "%zu", i % 97);
        s_rec(i, keys[i], s_blob, (size_t)rand_r(&seed) % 700);
    }
    memset(s_blob, '7', sizeof s_blob); /* "777..." is valid JSON */
    struct fanout_limits lim = {.max_messages_per_call = 10,
                                .max_message_bytes = 600,
                                .max_call_bytes = 3000,
                                .per_message_overhead = 20,
                                .per_call_overhead = 15,
                                .key_counts = 1};
    for (int mode = 0; mode < 4; mode++) {
        struct fanout_plan p;
        ck_assert_int_eq(
            fanout_plan_build(s_ptrs, 2000, (enum fanout_collapse)mode, &lim, &s_arena, &p),
            0);
        s_check_complete(&p, 2000);
        ck_assert_uint_gt(p.rejected_count, 0);
        for (size_t c = 0; c < p.call_count; c++) {
            uint64_t bytes = lim.per_call_overhead;
            ck_assert_uint_le(p.calls[c].count, 10);
            for (size_t m = 0; m < p.calls[c].count; m++) {
                size_t sz = fanout_message_size(p.calls[c].messages[m], &lim);
                ck_assert_uint_le(sz, 600);
                bytes += sz + lim.per_message_overhead;
            }
            ck_assert_uint_le(bytes, 3000);
        }
        fanout_arena_reset(&s_arena);
    }
}
END_TEST

/* Targets of collapse none that take the same records share the messages:
 * only their calls differ; a target under whose limit a record does not fit
 * makes its own (with the rejection), and so does one of other records. */
START_TEST(none_messages_shared_by_targets)
{
    s_fill(30, 100);
    s_recs[7].pub.data_len = 300;
    struct fanout_limits big = {.max_messages_per_call = 500, .key_counts = 1};
    struct fanout_limits ten = {.max_messages_per_call = 10};
    struct fanout_limits small = {.max_messages_per_call = 4, .max_message_bytes = 200};
    struct fanout_plan_share share = {0};
    struct fanout_plan a, b, c, d;
    ck_assert_int_eq(fanout_plan_build_shared(s_ptrs, 30, FANOUT_COLLAPSE_NONE, &small,
                                              &s_arena, &share, &c),
                     0);
    ck_assert_uint_eq(c.rejected_count, 1);
    ck_assert_ptr_null(share.messages); /* a plan with a rejection is not shared */
    ck_assert_int_eq(fanout_plan_build_shared(s_ptrs, 30, FANOUT_COLLAPSE_NONE, &big,
                                              &s_arena, &share, &a),
                     0);
    ck_assert_ptr_eq(share.messages, a.calls[0].messages);
    ck_assert_int_eq(fanout_plan_build_shared(s_ptrs, 30, FANOUT_COLLAPSE_NONE, &ten,
                                              &s_arena, &share, &b),
                     0);
    s_check_complete(&a, 30);
    s_check_complete(&b, 30);
    ck_assert_uint_eq(a.call_count, 1);
    ck_assert_uint_eq(b.call_count, 3);
    ck_assert_uint_eq(b.message_count, 30);
    for (size_t k = 0; k < 3; k++) {
        ck_assert_uint_eq(b.calls[k].count, 10);
        ck_assert_ptr_eq(b.calls[k].messages, share.messages + 10 * k);
    }
    ck_assert_ptr_eq(b.calls[0].messages[7]->body, s_recs[7].pub.data);
    ck_assert_uint_eq(b.calls[0].messages[7]->body_len, 300);
    /* the small target again: its own messages and its rejection */
    ck_assert_int_eq(fanout_plan_build_shared(s_ptrs, 30, FANOUT_COLLAPSE_NONE, &small,
                                              &s_arena, &share, &c),
                     0);
    ck_assert_uint_eq(c.rejected_count, 1);
    ck_assert_ptr_eq(c.rejected[0].rec, s_ptrs[7]);
    ck_assert_ptr_ne(c.calls[0].messages, share.messages);
    s_check_complete(&c, 30);
    /* other records (the first 20 of them), or another collapse mode */
    ck_assert_int_eq(fanout_plan_build_shared(s_ptrs, 20, FANOUT_COLLAPSE_NONE, &ten,
                                              &s_arena, &share, &d),
                     0);
    ck_assert_ptr_ne(d.calls[0].messages, share.messages);
    s_check_complete(&d, 20);
    ck_assert_int_eq(fanout_plan_build_shared(s_ptrs, 30, FANOUT_COLLAPSE_CONCAT, &big,
                                              &s_arena, &share, &d),
                     0);
    ck_assert_uint_eq(d.message_count, 1);
    ck_assert_ptr_ne(d.calls[0].messages, share.messages);
}
END_TEST

START_TEST(empty_input)
{
    struct fanout_limits lim = {0};
    struct fanout_plan p;
    ck_assert_int_eq(fanout_plan_build(s_ptrs, 0, FANOUT_COLLAPSE_JSON, &lim, &s_arena, &p),
                     0);
    ck_assert_uint_eq(p.call_count, 0);
    ck_assert_uint_eq(p.message_count, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("plan");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, none_counts_per_call);
    tcase_add_test(tc, none_bytes_per_call_exact_fit);
    tcase_add_test(tc, none_oversized_reported_not_dropped);
    tcase_add_test(tc, none_key_counts_toward_size);
    tcase_add_test(tc, call_limit_caps_message_size);
    tcase_add_test(tc, json_collapse_body);
    tcase_add_test(tc, json_collapse_boundary);
    tcase_add_test(tc, concat_and_b64);
    tcase_add_test(tc, collapsed_messages_grouped_into_calls);
    tcase_add_test(tc, random_sizes_keep_every_record_in_order);
    tcase_add_test(tc, none_messages_shared_by_targets);
    tcase_add_test(tc, empty_input);
    suite_add_tcase(s, tc);
    return fanout_check_run(s);
}
