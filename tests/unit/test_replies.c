/*
 * The answer readers of the HTTP plugins (kinesis, firehose, sns, sqs, es,
 * lambda, iot) against answers that are well formed, partial, and every
 * class of misbehaviour: a 2xx other than the documented one, a body that is
 * empty, not JSON/XML or truncated, counts that contradict the entries,
 * entries that say nothing or both things, Ids unknown, repeated, missing or
 * both successful and failed, an answer to another action, items out of
 * order or for another _id, an "errors" flag that lies. The plugins' real
 * code runs against a fake host (tests/fuzz/reply_host.h) that hands it the
 * answer as the engine would.
 *
 * Outcomes are written as one letter per record: O delivered, R retry,
 * T throttled, F fatal.
 */
#include <check.h>

#include "check_main.h"
#include "reply_host.h"

#include "es.h"
#include "firehose.h"
#include "kinesis.h"
#include "lambda.h"
#include "sns.h"
#include "sqs.h"

extern const struct fanout_plugin fanout_plugin_v1; /* iot.c */

static void s_letters(const struct fanout_outcome *out, size_t n, char *s)
{
    static const char l[] = "ORTF";
    for (size_t i = 0; i < n; i++)
        s[i] = out[i].status >= 0 && out[i].status <= 3 ? l[out[i].status] : '?';
    s[n] = 0;
}

struct s_case {
    long status;
    const char *body;
    const char *want;     /* letters */
    const char *log_part; /* a part of the first outcome's message, or NULL */
};

static void s_check(const struct s_case *c, const struct fanout_outcome *out, size_t n,
                    size_t k)
{
    char got[16];
    s_letters(out, n, got);
    ck_assert_msg(strcmp(got, c->want) == 0,
                  "case %zu (HTTP %ld, %.80s): got %s, want %s (%s)", k, c->status, c->body,
                  got, c->want, out[0].message);
    if (c->log_part)
        for (size_t i = 0; i < n; i++)
            if (out[i].status != FANOUT_OK)
                ck_assert_msg(strstr(out[i].message, c->log_part) != NULL,
                              "case %zu: outcome %zu \"%s\" does not say \"%s\"", k, i,
                              out[i].message, c->log_part);
}

#define SEQ "\"SequenceNumber\":\"4954346307654800757710509270303956035997522851839501\""
#define OK1 "{" SEQ ",\"ShardId\":\"shardId-000000000000\"}"
#define KTHR                                                                               \
    "{\"ErrorCode\":\"ProvisionedThroughputExceededException\",\"ErrorMessage\":\"Rate "   \
    "exceeded\"}"

START_TEST(kinesis_answers)
{
    static const struct s_case cases[] = {
        {200, "{\"FailedRecordCount\":0,\"Records\":[" OK1 "," OK1 "," OK1 "]}", "OOO",
         NULL},
        {200, "{\"FailedRecordCount\":1,\"Records\":[" OK1 "," KTHR "," OK1 "]}", "OTO",
         NULL},
        {200,
         "{\"FailedRecordCount\":1,\"Records\":[" OK1
         ",{\"ErrorCode\":\"InternalFailure\"}," OK1 "]}",
         "ORO", NULL},
        /* FailedRecordCount > 0 with no failed entry, and the reverse */
        {200, "{\"FailedRecordCount\":1,\"Records\":[" OK1 "," OK1 "," OK1 "]}", "RRR",
         "FailedRecordCount\" 1 but 0"},
        {200, "{\"FailedRecordCount\":0,\"Records\":[" OK1 "," KTHR "," OK1 "]}", "RRR",
         "FailedRecordCount\" 0 but 1"},
        /* FailedRecordCount missing, not a number, negative */
        {200, "{\"Records\":[" OK1 "," OK1 "," OK1 "]}", "RRR", "no \"FailedRecordCount\""},
        {200, "{\"FailedRecordCount\":\"0\",\"Records\":[" OK1 "," OK1 "," OK1 "]}", "RRR",
         "non-count"},
        {200, "{\"FailedRecordCount\":0.0,\"Records\":[" OK1 "," OK1 "," OK1 "]}", "RRR",
         NULL},
        {200, "{\"FailedRecordCount\":-1,\"Records\":[" OK1 "," OK1 "," OK1 "]}", "RRR",
         NULL},
        /* Records of another length */
        {200, "{\"FailedRecordCount\":0,\"Records\":[" OK1 "," OK1 "]}", "RRR",
         "2 entries"},
        {200, "{\"FailedRecordCount\":0,\"Records\":[" OK1 "," OK1 "," OK1 "," OK1 "]}",
         "RRR", "4 entries"},
        {200, "{\"FailedRecordCount\":0}", "RRR", "no \"Records\""},
        /* an entry with neither, with both, not an object, wrong types */
        {200, "{\"FailedRecordCount\":0,\"Records\":[" OK1 ",{}," OK1 "]}", "RRR",
         "neither"},
        {200,
         "{\"FailedRecordCount\":1,\"Records\":[" OK1 ",{" SEQ
         ",\"ErrorCode\":\"InternalFailure\"}," OK1 "]}",
         "RRR", "both"},
        {200, "{\"FailedRecordCount\":0,\"Records\":[" OK1 ",7," OK1 "]}", "RRR", NULL},
        {200,
         "{\"FailedRecordCount\":0,\"Records\":[" OK1 ",{\"SequenceNumber\":12}," OK1 "]}",
         "RRR", NULL},
        {200,
         "{\"FailedRecordCount\":0,\"Records\":[" OK1 ",{\"SequenceNumber\":\"\"}," OK1
         "]}",
         "RRR", NULL},
        /* a SequenceNumber that is not one */
        {200,
         "{\"FailedRecordCount\":0,\"Records\":[" OK1 ",{\"SequenceNumber\":\"ok\"}," OK1
         "]}",
         "RRR", "not one"},
        /* not JSON, empty, truncated, an array, another 2xx */
        {200, "<html>OK</html>", "RRR", "not JSON"},
        {200, "", "RRR", "empty body"},
        {200, "{\"FailedRecordCount\":0,\"Records\":[" OK1 "," OK1 ",{\"Seq", "RRR", NULL},
        {200, "[]", "RRR", NULL},
        /* a key given twice: which value is meant is unknown */
        {200,
         "{\"FailedRecordCount\":0,\"FailedRecordCount\":1,\"Records\":[" OK1 "," OK1
         "," OK1 "]}",
         "RRR", "duplicate"},
        {200, "{\"FailedRecordCount\":0,\"Records\":[" OK1 ",{" SEQ "," SEQ "}," OK1 "]}",
         "RRR", "duplicate"},
        {201, "{\"FailedRecordCount\":0,\"Records\":[" OK1 "," OK1 "," OK1 "]}", "RRR",
         "HTTP 201"},
        {204, "", "RRR", "HTTP 204"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        struct reply_batch b;
        reply_batch_init(&b, 3);
        reply_host_answer(cases[k].status, cases[k].body, strlen(cases[k].body));
        struct kinesis_target t = {
            .s = {&kinesis_kind, &reply_host, .id = "m", .name = "s"}};
        fanout_stream_send(&t, &b.batch, b.out);
        fanout_batch_spares_free(&t.s.spares); /* the bodies it kept */
        s_check(&cases[k], b.out, 3, k);
    }
}
END_TEST

/* The common answers are read without a jansson tree (stream_answer.c,
 * s_fast); the same answer with one escaped member goes through the tree.
 * Both must give the same outcomes and log line, byte for byte. */
START_TEST(kinesis_answers_both_readers)
{
    static const char *const bodies[] = {
        "{\"FailedRecordCount\":0,\"Records\":[" OK1 "," OK1 "," OK1 "]}",
        " {\n \"FailedRecordCount\" : 2 , \"Records\" : [ " OK1 " , " KTHR
        " , {\"ErrorCode\":\"InternalFailure\",\"ErrorMessage\":\"\"} ] }\r\n",
        "{\"Records\":[{\"ErrorCode\":\"KMSAccessDeniedException\",\"ErrorMessage\":null},"
        "{\"ErrorCode\":null," SEQ "},{\"ErrorCode\":\"AccessDeniedException\"}],"
        "\"FailedRecordCount\":2,\"EncryptionType\":\"KMS\",\"N\":null,\"B\":true}",
        /* an empty ErrorCode beside a sequence number: the tree decides */
        "{\"FailedRecordCount\":0,\"Records\":[" OK1 ",{\"ErrorCode\":\"\"," SEQ "}," OK1
        "]}",
        /* in doubt: count, length, both, neither, duplicates, 012, 1.0 */
        "{\"FailedRecordCount\":1,\"Records\":[" OK1 "," OK1 "," OK1 "]}",
        "{\"FailedRecordCount\":0,\"Records\":[" OK1 "," OK1 "]}",
        "{\"FailedRecordCount\":0,\"Records\":[" OK1 "," OK1 "," OK1 "," OK1 "]}",
        "{\"FailedRecordCount\":1,\"Records\":[" OK1 ",{" SEQ
        ",\"ErrorCode\":\"InternalFailure\"}," OK1 "]}",
        "{\"FailedRecordCount\":0,\"Records\":[" OK1 ",{\"ShardId\":\"x\"}," OK1 "]}",
        "{\"FailedRecordCount\":0,\"Records\":[" OK1 ",{" SEQ "," SEQ "}," OK1 "]}",
        "{\"FailedRecordCount\":012,\"Records\":[" OK1 "," OK1 "," OK1 "]}",
        "{\"FailedRecordCount\":0.0,\"Records\":[" OK1 "," OK1 "," OK1 "]}",
        "{\"FailedRecordCount\":0,\"Records\":[" OK1 "," OK1 "," OK1 "]} x",
    };
    for (size_t k = 0; k < sizeof bodies / sizeof *bodies; k++) {
        struct fanout_outcome got[2][3];
        char log[2][512];
        for (int v = 0; v < 2; v++) {
            /* v 1: one more member, escaped, at the end of the object */
            char body[1024];
            const char *end = strrchr(bodies[k], '}');
            int n = (int)(end - bodies[k]);
            snprintf(body, sizeof body, "%.*s%s%s", n, bodies[k],
                     v ? ",\"Y\":\"\\u0059\"" : "", end);
            struct reply_batch b;
            reply_batch_init(&b, 3);
            reply_host_answer(200, body, strlen(body));
            s_reply.last_log[0] = 0;
            struct kinesis_target t = {
                .s = {&kinesis_kind, &reply_host, .id = "m", .name = "s"}};
            fanout_stream_send(&t, &b.batch, b.out);
            fanout_batch_spares_free(&t.s.spares); /* the bodies it kept */
            memcpy(got[v], b.out, sizeof got[v]);
            memcpy(log[v], s_reply.last_log, sizeof log[v]);
        }
        for (size_t i = 0; i < 3; i++) {
            ck_assert_msg(got[0][i].status == got[1][i].status, "body %zu entry %zu", k, i);
            ck_assert_str_eq(got[0][i].code, got[1][i].code);
            ck_assert_str_eq(got[0][i].message, got[1][i].message);
        }
        ck_assert_str_eq(log[0], log[1]);
    }
}
END_TEST

#define RID "{\"RecordId\":\"4954346307654800757710509270303956035997522851839501\"}"
#define FTHR                                                                               \
    "{\"ErrorCode\":\"ServiceUnavailableException\",\"ErrorMessage\":\"Slow down.\"}"

START_TEST(firehose_answers)
{
    static const struct s_case cases[] = {
        {200,
         "{\"FailedPutCount\":0,\"Encrypted\":false,\"RequestResponses\":[" RID "," RID
         "," RID "]}",
         "OOO", NULL},
        {200, "{\"FailedPutCount\":1,\"RequestResponses\":[" RID "," FTHR "," RID "]}",
         "OTO", NULL},
        {200, "{\"FailedPutCount\":1,\"RequestResponses\":[" RID "," RID "," RID "]}",
         "RRR", "FailedPutCount\" 1 but 0"},
        {200, "{\"FailedPutCount\":0,\"RequestResponses\":[" RID "," FTHR "," RID "]}",
         "RRR", "FailedPutCount\" 0 but 1"},
        {200, "{\"RequestResponses\":[" RID "," RID "," RID "]}", "RRR",
         "no \"FailedPutCount\""},
        {200, "{\"FailedPutCount\":null,\"RequestResponses\":[" RID "," RID "," RID "]}",
         "RRR", NULL},
        {200, "{\"FailedPutCount\":0,\"RequestResponses\":[" RID "," RID "]}", "RRR",
         "2 entries"},
        {200, "{\"FailedPutCount\":0,\"RequestResponses\":[" RID ",{}," RID "]}", "RRR",
         "neither"},
        {200,
         "{\"FailedPutCount\":1,\"RequestResponses\":[" RID
         ",{\"RecordId\":\"x\",\"ErrorCode\":\"InternalFailure\"}," RID "]}",
         "RRR", "both"},
        {200,
         "{\"FailedPutCount\":0,\"RequestResponses\":[" RID ",{\"RecordId\":1}," RID "]}",
         "RRR", NULL},
        {200, "not json", "RRR", "not JSON"},
        {200,
         "{\"FailedPutCount\":0,\"RequestResponses\":[" RID "," RID "," RID
         "],\"FailedPutCount\":1}",
         "RRR", "duplicate"},
        {200, "", "RRR", "empty body"},
        {200, "{\"FailedPutCount\":0,\"RequestResponses\":[" RID, "RRR", NULL},
        {202, "{\"FailedPutCount\":0,\"RequestResponses\":[" RID "," RID "," RID "]}",
         "RRR", "HTTP 202"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        struct reply_batch b;
        reply_batch_init(&b, 3);
        reply_host_answer(cases[k].status, cases[k].body, strlen(cases[k].body));
        struct firehose_target t = {
            .s = {&firehose_kind, &reply_host, .id = "m", .name = "s"}};
        fanout_stream_send(&t, &b.batch, b.out);
        fanout_batch_spares_free(&t.s.spares); /* the bodies it kept */
        s_check(&cases[k], b.out, 3, k);
    }
}
END_TEST

#define PBR_HEAD                                                                           \
    "<?xml version=\"1.0\"?>\n<PublishBatchResponse "                                      \
    "xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishBatchResult>"
#define PBR_TAIL                                                                           \
    "</PublishBatchResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"   \
    "</PublishBatchResponse>"
#define SM(id) "<member><Id>" id "</Id><MessageId>m-" id "</MessageId></member>"
#define FM(id)                                                                             \
    "<member><Id>" id "</Id><Code>InternalError</Code><Message>Internal "                  \
    "Error</Message><SenderFault>false</SenderFault></member>"

/* One request of n entries (Ids 0..n-1) read by an sqs or sns reader, as
 * fanout_batch_send hands it the engine's answer. */
static void s_read_one(void (*read)(void *, const struct fanout_batch_request *,
                                    struct fanout_outcome *),
                       struct fanout_msg_entry *e, size_t n, struct fanout_outcome *out)
{
    void *ep[3] = {&e[0], &e[1], &e[2]};
    static const size_t idx[3] = {0, 1, 2};
    struct fanout_batch_request q = {.entries = ep, .indexes = idx, .count = n};
    reply_host_response(&q.resp);
    ck_assert_int_eq(q.resp.result, FANOUT_AWS_OK);
    read(NULL, &q, out);
    s_reply_clean_up(&q.resp);
}

START_TEST(sns_answers)
{
    static const struct s_case cases[] = {
        {200,
         PBR_HEAD "<Successful>" SM("0") SM("1") SM("2") "</Successful><Failed/>" PBR_TAIL,
         "OOO", NULL},
        {200,
         PBR_HEAD "<Successful>" SM("0")
             SM("2") "</Successful><Failed>" FM("1") "</Failed>" PBR_TAIL,
         "ORO", NULL},
        /* an entry left out: that one alone */
        {200, PBR_HEAD "<Successful>" SM("0") SM("1") "</Successful>" PBR_TAIL, "OOR",
         NULL},
        /* a Successful member without a MessageId: that one alone */
        {200,
         PBR_HEAD "<Successful>" SM("0") "<member><Id>1</Id></member>" SM(
             "2") "</Successful>" PBR_TAIL,
         "ORO", NULL},
        /* contradictions: everything in doubt */
        {200,
         PBR_HEAD "<Successful>" SM("0") SM("0") SM("1") SM("2") "</Successful>" PBR_TAIL,
         "RRR", "named twice"},
        {200,
         PBR_HEAD "<Successful>" SM("0") SM("1")
             SM("2") "</Successful><Failed>" FM("1") "</Failed>" PBR_TAIL,
         "RRR", "named twice"},
        {200,
         PBR_HEAD "<Successful>" SM("0") SM("1") SM("2") SM("3") "</Successful>" PBR_TAIL,
         "RRR", "not sent"},
        {200, PBR_HEAD "<Successful>" SM("0") SM("1") SM("x") "</Successful>" PBR_TAIL,
         "RRR", "not sent"},
        {200,
         PBR_HEAD "<Successful>" SM("0") "</Successful><Successful>" SM("1")
             SM("2") "</Successful>" PBR_TAIL,
         "RRR", "two <Successful>"},
        {200,
         PBR_HEAD "<Successful>" SM("0") "<member><MessageId>m</MessageId></member>" SM(
             "2") "</Successful>" PBR_TAIL,
         "RRR", "no Id"},
        /* truncated, another action's answer, an error document, not XML */
        {200, PBR_HEAD "<Successful>" SM("0") SM("1") SM("2") "</Successful>", "RRR",
         "no complete"},
        {200,
         "<PublishResponse><PublishResult><MessageId>m</MessageId></PublishResult>"
         "</PublishResponse>",
         "RRR", "PublishBatchResponse"},
        {200, "<ErrorResponse><Error><Code>InternalError</Code></Error></ErrorResponse>",
         "RRR", NULL},
        {200, "{\"Successful\":[]}", "RRR", NULL},
        /* a comment that hides members from a reader and shows them to another */
        {200,
         PBR_HEAD
         "<Successful>" SM("0") "<!-- " SM("1") " -->" SM("2") "</Successful>" PBR_TAIL,
         "RRR", "<!"},
        {200,
         PBR_HEAD "<Successful>" SM("0")
             SM("1") "<![CDATA[" SM("2") "]]></Successful>" PBR_TAIL,
         "RRR", "<!"},
        {200, "", "RRR", "empty body"},
        {204, PBR_HEAD "<Successful>" SM("0") SM("1") SM("2") "</Successful>" PBR_TAIL,
         "RRR", "HTTP 204"},
    };
    static const struct s_case single[] = {
        {200,
         "<PublishResponse "
         "xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult>"
         "<MessageId>567910cd-659e-55d4-8ccb-5aaf14679dc0</MessageId></PublishResult>"
         "</PublishResponse>",
         "O", NULL},
        {200, "<PublishResponse><PublishResult></PublishResult></PublishResponse>", "R",
         "MessageId"},
        {200,
         "<PublishResponse><PublishResult><MessageId> </MessageId></PublishResult>"
         "</PublishResponse>",
         "R", "empty MessageId"},
        {200,
         "<PublishResponse><PublishResult><MessageId>a</MessageId><MessageId>b</MessageId>"
         "</PublishResult></PublishResponse>",
         "R", NULL},
        {200, "<PublishResponse><PublishResult><MessageId>m</MessageId></PublishResult>",
         "R", "no complete"},
        {200, PBR_HEAD "<Successful>" SM("0") "</Successful>" PBR_TAIL, "R", NULL},
        {202,
         "<PublishResponse><PublishResult><MessageId>m</MessageId></PublishResult>"
         "</PublishResponse>",
         "R", "HTTP 202"},
    };
    struct fanout_msg_entry e[3];
    memset(e, 0, sizeof e);
    for (size_t i = 0; i < 3; i++) {
        e[i].body = (const uint8_t *)"x";
        e[i].body_len = 1;
    }
    for (size_t pass = 0; pass < 2; pass++) {
        const struct s_case *cs = pass ? single : cases;
        size_t nc = pass ? sizeof single / sizeof *single : sizeof cases / sizeof *cases;
        size_t n = pass ? 1 : 3;
        for (size_t k = 0; k < nc; k++) {
            struct fanout_outcome out[3];
            memset(out, 0, sizeof out);
            reply_host_answer(cs[k].status, cs[k].body, strlen(cs[k].body));
            s_read_one(sns_read, e, n, out);
            s_check(&cs[k], out, n, k);
        }
    }
}
END_TEST

/* MD5 of {"n":0}, {"n":1}, {"n":2} */
#define MD0 "4bb9e0de5005747b62cadb7fc69c584a"
#define MD1 "082c26c8a6bc75226a31da5495cc9292"
#define MD2 "fa3f212516c45c713781b9dae87824a9"
#define QS(id, md)                                                                         \
    "{\"Id\":\"" id "\",\"MessageId\":\"0a5231c7-" id "\",\"MD5OfMessageBody\":\"" md "\"" \
    "}"
#define QN(id) "{\"Id\":\"" id "\",\"MessageId\":\"0a5231c7-" id "\"}"
#define QF(id, sf)                                                                         \
    "{\"Id\":\"" id "\",\"SenderFault\":" sf                                               \
    ",\"Code\":\"InternalError\",\"Message\":\"x\"}"

START_TEST(sqs_answers)
{
    static const struct s_case cases[] = {
        {200, "{\"Successful\":[" QN("0") "," QN("1") "," QN("2") "],\"Failed\":[]}", "OOO",
         NULL},
        {200, "{\"Successful\":[" QS("0", MD0) "," QS("1", MD1) "," QS("2", MD2) "]}",
         "OOO", NULL},
        /* each MD5 is another entry's: none stored as sent */
        {200, "{\"Successful\":[" QS("0", MD1) "," QS("1", MD2) "," QS("2", MD0) "]}",
         "RRR", "MD5"},
        {200,
         "{\"Successful\":[" QN("0") "],\"Failed\":[" QF("1", "false") "," QF("2",
                                                                              "true") "]}",
         "ORF", NULL},
        /* a wrong MD5: that entry alone; a left-out entry: that one alone */
        {200,
         "{\"Successful\":[" QS("0", "00000000000000000000000000000000") "," QN("1") "," QN(
             "2") "]}",
         "ROO", "MD5"},
        {200, "{\"Successful\":[" QN("0") "," QN("2") "]}", "ORO", NULL},
        {200, "{\"Successful\":[" QN("0") ",{\"Id\":\"1\"}," QN("2") "]}", "ORO", NULL},
        {200,
         "{\"Successful\":[" QN("0") ",{\"Id\":\"1\",\"MessageId\":\"\"}," QN("2") "]}",
         "ORO", NULL},
        {200,
         "{\"Successful\":[{\"Id\":\"0\",\"MessageId\":\"m\",\"MD5OfMessageBody\":5}," QN(
             "1") "," QN("2") "]}",
         "ROO", "MD5"},
        /* contradictions: everything in doubt */
        {200, "{\"Successful\":[" QN("0") "," QN("0") "," QN("1") "," QN("2") "]}", "RRR",
         "named twice"},
        {200,
         "{\"Successful\":[" QN("0") "," QN("1") "," QN("2") "],\"Failed\":[" QF(
             "1", "false") "]}",
         "RRR", "named twice"},
        {200, "{\"Successful\":[" QN("0") "," QN("1") "," QN("2") "," QN("3") "]}", "RRR",
         "not sent"},
        {200, "{\"Successful\":[" QN("0") "," QN("1") ",{\"MessageId\":\"m\"}]}", "RRR",
         "without an Id"},
        {200, "{\"Successful\":{\"Id\":\"0\"}}", "RRR", "not a list"},
        {200, "{\"Successful\":[" QN("0") "," QN("1") "," QN("2") "]", "RRR", "not JSON"},
        {200, "<SendMessageBatchResponse/>", "RRR", "not JSON"},
        {200, "", "RRR", "empty body"},
        {200, "[1]", "RRR", "not an object"},
        {200, "{\"Successful\":[" QN("0") "," QN("1") "," QN("2") "],\"Successful\":[]}",
         "RRR", "duplicate"},
        {203, "{\"Successful\":[" QN("0") "," QN("1") "," QN("2") "]}", "RRR", "HTTP 203"},
    };
    static const char *bodies[] = {"{\"n\":0}", "{\"n\":1}", "{\"n\":2}"};
    struct fanout_msg_entry e[3];
    memset(e, 0, sizeof e);
    for (size_t i = 0; i < 3; i++) {
        e[i].body = (const uint8_t *)bodies[i];
        e[i].body_len = strlen(bodies[i]);
    }
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        struct fanout_outcome out[3];
        memset(out, 0, sizeof out);
        reply_host_answer(cases[k].status, cases[k].body, strlen(cases[k].body));
        s_read_one(sqs_read, e, 3, out);
        s_check(&cases[k], out, 3, k);
    }
    /* MD5OfMessageAttributes: of the base64 marker attribute (the value
     * local-aws-sqs returns too), and never for an entry sent without one */
#define QA(id, md)                                                                         \
    "{\"Id\":\"" id "\",\"MessageId\":\"m\",\"MD5OfMessageAttributes\":\"" md "\"}"
#define ATTR_MD5 "25a04cbc4dd7a1d0bd51ce25850c0b8c"
    static const struct s_case attrs[] = {
        {200, "{\"Successful\":[" QA("0", ATTR_MD5) "," QA("1", ATTR_MD5) "," QN("2") "]}",
         "ORO", "MD5OfMessageAttributes"},
        {200,
         "{\"Successful\":[" QA("0", "00000000000000000000000000000000") "," QN("1") "," QA(
             "2", ATTR_MD5) "]}",
         "ROO", "MD5OfMessageAttributes"},
    };
    uint8_t marker = 1;
    e[0].encoded = &marker; /* entries 0 and 2 carry the attribute, 1 does not */
    e[2].encoded = &marker;
    for (size_t k = 0; k < sizeof attrs / sizeof *attrs; k++) {
        struct fanout_outcome out[3];
        memset(out, 0, sizeof out);
        reply_host_answer(attrs[k].status, attrs[k].body, strlen(attrs[k].body));
        s_read_one(sqs_read, e, 3, out);
        s_check(&attrs[k], out, 3, k);
    }
    e[0].encoded = e[2].encoded = NULL;
    /* SendMessage: a MessageId, and the MD5 of what was sent when given */
    static const struct s_case single[] = {
        {200, "{\"MessageId\":\"5fea7756\"}", "O", NULL},
        {200, "{\"MD5OfMessageBody\":\"x\"}", "R", "no MessageId"},
        {200,
         "{\"MessageId\":\"m\",\"MD5OfMessageBody\":\"00000000000000000000000000000000\"}",
         "R", "MD5"},
        {200, "{\"MessageId\":\"m\"", "R", "not JSON"},
    };
    for (size_t k = 0; k < sizeof single / sizeof *single; k++) {
        struct fanout_outcome out[1];
        memset(out, 0, sizeof out);
        reply_host_answer(single[k].status, single[k].body, strlen(single[k].body));
        s_read_one(sqs_read, e, 1, out);
        s_check(&single[k], out, 1, k);
    }
}
END_TEST

/* The batch answers in which every entry succeeded are read without a
 * jansson tree (sqs_api.c, s_fast_batch); the same answer with one escaped
 * member goes through the tree. Both must give the same outcomes. */
START_TEST(sqs_answers_both_readers)
{
#define QA2(id, md)                                                                        \
    "{\"Id\":\"" id "\",\"MessageId\":\"m\",\"MD5OfMessageAttributes\":\"" md "\"}"
    static const char *const answers[] = {
        "{\"Successful\":[" QN("0") "," QN("1") "," QN("2") "],\"Failed\":[]}",
        " { \"Failed\" : [] ,\n\"Successful\" : [ " QS("2", MD2) " , " QS(
            "0", MD0) " , " QS("1", MD1) " ] } ",
        "{\"Successful\":[" QA2("0", "25a04cbc4dd7a1d0bd51ce25850c0b8c") "," QN(
            "1") "," QA2("2", "25A04CBC4DD7A1D0BD51CE25850C0B8C") "],\"X\":null}",
        "{\"Successful\":[" QA2("0", "25a04cbc4dd7a1d0bd51ce25850c0b8c") "," QA2(
            "1", "25a04cbc4dd7a1d0bd51ce25850c0b8c") "," QN("2") "]}",
        "{\"Successful\":[" QS("0", MD1) "," QS("1", MD2) "," QS("2", MD0) "]}",
        "{\"Successful\":[" QN("0") "],\"Failed\":[" QF("1", "false") "," QF("2",
                                                                             "true") "]}",
        "{\"Successful\":[" QN("0") "," QN("2") "]}",
        "{\"Successful\":[" QN("0") ",{\"Id\":\"1\",\"MessageId\":\"\"}," QN("2") "]}",
        "{\"Successful\":[{\"Id\":\"0\",\"MessageId\":\"m\",\"MD5OfMessageBody\":5}," QN(
            "1") "," QN("2") "]}",
        "{\"Successful\":[" QN("0") "," QN("0") "," QN("1") "," QN("2") "]}",
        "{\"Successful\":[" QN("0") "," QN("1") "," QN("2") "," QN("3") "]}",
        "{\"Successful\":[" QN("0") "," QN("1") "," QN("2") "],\"Successful\":[]}",
        "{\"Successful\":[" QN("0") "," QN("1") ",{\"Id\":\"02\",\"MessageId\":\"m\"}]}",
    };
    static const char *bodies[] = {"{\"n\":0}", "{\"n\":1}", "{\"n\":2}"};
    uint8_t marker = 1;
    struct fanout_msg_entry e[3];
    memset(e, 0, sizeof e);
    for (size_t i = 0; i < 3; i++) {
        e[i].body = (const uint8_t *)bodies[i];
        e[i].body_len = strlen(bodies[i]);
    }
    e[0].encoded = &marker;
    e[2].encoded = &marker;
    for (size_t k = 0; k < sizeof answers / sizeof *answers; k++) {
        struct fanout_outcome got[2][3];
        for (int v = 0; v < 2; v++) {
            /* v 1: one more member, escaped, at the end of the object */
            char body[1024];
            const char *end = strrchr(answers[k], '}');
            int n = (int)(end - answers[k]);
            snprintf(body, sizeof body, "%.*s%s%s", n, answers[k],
                     v ? ",\"Y\":\"\\u0059\"" : "", end);
            memset(got[v], 0, sizeof got[v]);
            reply_host_answer(200, body, strlen(body));
            s_read_one(sqs_read, e, 3, got[v]);
        }
        for (size_t i = 0; i < 3; i++) {
            ck_assert_msg(got[0][i].status == got[1][i].status, "answer %zu entry %zu", k,
                          i);
            ck_assert_str_eq(got[0][i].code, got[1][i].code);
            ck_assert_str_eq(got[0][i].message, got[1][i].message);
        }
    }
#undef QA2
}
END_TEST

/* The request: index _id "a", delete _id "b", index with no _id. */
#define ES_REQ                                                                             \
    "{\"index\":{\"_id\":\"a\"}}\n{\"x\":1}\n{\"delete\":{\"_id\":\"b\"}}\n"               \
    "{\"index\":{}}\n{\"y\":2}\n"
#define EI(act, id, st)                                                                    \
    "{\"" act "\":{\"_index\":\"i\",\"_id\":\"" id "\",\"status\":" st "}}"
#define EE(act, id, st, type)                                                              \
    "{\"" act "\":{\"_index\":\"i\",\"_id\":\"" id "\",\"status\":" st                     \
    ",\"error\":{\"type\":\"" type "\",\"reason\":\"r\"}}}"
#define ES_OK3                                                                             \
    EI("index", "a", "201") "," EI("delete", "b", "200") "," EI("index", "Hx7", "201")

START_TEST(es_answers)
{
    static const struct s_case cases[] = {
        {200, "{\"took\":3,\"errors\":false,\"items\":[" ES_OK3 "]}", "OOO", NULL},
        {200,
         "{\"errors\":false,\"items\":[" EI("index", "a", "200") "," EI(
             "delete", "b", "404") "," EI("index", "Hx7", "201") "]}",
         "OOO", NULL},
        {200,
         "{\"errors\":true,\"items\":[" EE(
             "index", "a", "400",
             "mapper_parsing_exception") "," EI("delete", "b",
                                                "200") "," EE("index", "Hx7", "429",
                                                              "rejected_execution_"
                                                              "exception") "]}",
         "FOT", NULL},
        /* the errors flag against the items, both ways */
        {200,
         "{\"errors\":false,\"items\":[" EE(
             "index", "a", "400",
             "mapper_parsing_exception") "," EI("delete", "b", "200") "," EI("index", "Hx7",
                                                                             "201") "]}",
         "RRR", "\"errors\": false"},
        {200, "{\"errors\":true,\"items\":[" ES_OK3 "]}", "RRR", "\"errors\": true"},
        {200, "{\"items\":[" ES_OK3 "]}", "RRR", "boolean \"errors\""},
        /* counts, order, actions, ids, statuses */
        {200,
         "{\"errors\":false,\"items\":[" EI("index", "a", "201") "," EI("delete", "b",
                                                                        "200") "]}",
         "RRR", "2 items"},
        {200,
         "{\"errors\":false,\"items\":[" EI("delete", "b", "200") "," EI(
             "index", "a", "201") "," EI("index", "Hx7", "201") "]}",
         "RRR", "not a \"index\""},
        {200,
         "{\"errors\":false,\"items\":[" EI("index", "z", "201") "," EI(
             "delete", "b", "200") "," EI("index", "Hx7", "201") "]}",
         "RRR", "another _id"},
        {200,
         "{\"errors\":false,\"items\":[" EI("create", "a", "201") "," EI(
             "delete", "b", "200") "," EI("index", "Hx7", "201") "]}",
         "RRR", NULL},
        {200,
         "{\"errors\":false,\"items\":[" EI("index", "a", "201") "," EI(
             "delete", "b", "200") ","
                                   "{\"index\":{\"_index\":\"i\",\"status\":201}}]}",
         "RRR", "no _id"},
        {200,
         "{\"errors\":false,\"items\":[" EI("index", "a", "202") "," EI(
             "delete", "b", "200") "," EI("index", "Hx7", "201") "]}",
         "RRR", "status 202"},
        {200,
         "{\"errors\":false,\"items\":[" EI("index", "a", "404") "," EI(
             "delete", "b", "200") "," EI("index", "Hx7", "201") "]}",
         "RRR", "status 404"},
        {200,
         "{\"errors\":true,\"items\":[" EE("index", "a", "201", "x") "," EI(
             "delete", "b", "200") "," EI("index", "Hx7", "201") "]}",
         "RRR", "and an error"},
        {200,
         "{\"errors\":false,\"items\":[{\"index\":{\"_id\":\"a\"}}," EI(
             "delete", "b", "200") "," EI("index", "Hx7", "201") "]}",
         "RRR", "without a status"},
        {200,
         "{\"errors\":false,\"items\":[" EI("index", "a", "201.5") "," EI(
             "delete", "b", "200") "," EI("index", "Hx7", "201") "]}",
         "RRR", "without a status"},
        /* truncated, empty, not JSON, another 2xx */
        {200, "{\"errors\":false,\"items\":[" ES_OK3, "RRR", "not JSON"},
        {200, "{\"errors\":true,\"errors\":false,\"items\":[" ES_OK3 "]}", "RRR",
         "duplicate"},
        {200, "", "RRR", "empty body"},
        {201, "{\"errors\":false,\"items\":[" ES_OK3 "]}", "RRR", "HTTP 201"},
    };
    static const char req[] = ES_REQ;
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        struct fanout_outcome out[3];
        struct fanout_outcome *outs[] = {&out[0], &out[1], &out[2]};
        memset(out, 0, sizeof out);
        int rc =
            es_bulk_read((const uint8_t *)req, sizeof req - 1, cases[k].status,
                         (const uint8_t *)cases[k].body, strlen(cases[k].body), 3, outs);
        s_check(&cases[k], out, 3, k);
        ck_assert_int_eq(rc, strcmp(cases[k].want, "RRR") == 0 ? -1 : 0);
    }
}
END_TEST

START_TEST(lambda_event_needs_202)
{
    static const struct {
        long status;
        const char *fe; /* X-Amz-Function-Error */
        const char *want;
    } cases[] = {
        {202, NULL, "OOO"}, {200, NULL, "RRR"},        {204, NULL, "RRR"},
        {201, NULL, "RRR"}, {202, "Unhandled", "RRR"}, {200, "Unhandled", "RRR"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        struct reply_batch b;
        reply_batch_init(&b, 3);
        reply_host_answer(cases[k].status, "", 0);
        if (cases[k].fe)
            reply_host_header("X-Amz-Function-Error", cases[k].fe);
        struct lambda_target t = {.aws = {.host = &reply_host,
                                          .id = "m",
                                          .destination = "f",
                                          .path = "/2015-03-31/functions/f/invocations"},
                                  .records_payload = 1,
                                  .parallel = 1,
                                  .max_payload = LAMBDA_EVENT_PAYLOAD_MAX};
        lambda_send(&t, &b.batch, b.out);
        char got[8];
        s_letters(b.out, 3, got);
        ck_assert_msg(strcmp(got, cases[k].want) == 0, "HTTP %ld %s: got %s (%s)",
                      cases[k].status, cases[k].fe ? cases[k].fe : "", got,
                      b.out[0].message);
        if (cases[k].want[0] == 'R')
            ck_assert_ptr_nonnull(strstr(b.out[0].message, "202"));
    }
}
END_TEST

/* iot.c's options block, as the plugin declares it */
struct s_iot_options {
    int64_t qos;
    int retain;
};

START_TEST(iot_publish_needs_200)
{
    static const struct {
        long status;
        const char *want;
    } cases[] = {{200, "OO"}, {202, "RR"}, {204, "RR"}, {201, "RR"}, {299, "RR"}};
    const struct fanout_plugin *p = &fanout_plugin_v1;
    void *state = NULL, *inst = NULL;
    struct fanout_error err = {0};
    ck_assert_int_eq(p->init(&reply_host, &state, &err), 0);
    struct s_iot_options o = {0, 0};
    struct fanout_target tg = {
        .struct_size = sizeof tg,
        .id = "m",
        .type = "iot",
        .destination = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com#sensors/room-1",
        .options = &o};
    ck_assert_msg(p->open(state, &tg, &inst, &err) == 0, "%s", err.message);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        struct reply_batch b;
        reply_batch_init(&b, 2);
        reply_host_answer(cases[k].status, "", 0);
        p->send(inst, &b.batch, b.out);
        char got[8];
        s_letters(b.out, 2, got);
        ck_assert_msg(strcmp(got, cases[k].want) == 0, "HTTP %ld: got %s (%s)",
                      cases[k].status, got, b.out[0].message);
    }
    p->close(inst);
    if (p->fini)
        p->fini(state);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("replies");
    TCase *tc = tcase_create("answers");
    tcase_add_test(tc, kinesis_answers);
    tcase_add_test(tc, kinesis_answers_both_readers);
    tcase_add_test(tc, firehose_answers);
    tcase_add_test(tc, sns_answers);
    tcase_add_test(tc, sqs_answers);
    tcase_add_test(tc, sqs_answers_both_readers);
    tcase_add_test(tc, es_answers);
    tcase_add_test(tc, lambda_event_needs_202);
    tcase_add_test(tc, iot_publish_needs_200);
    suite_add_tcase(s, tc);
    return fanout_check_run(s);
}
