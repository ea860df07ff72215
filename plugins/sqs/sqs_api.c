/*
 * The SQS wire protocol: JSON 1.0 (Content-Type application/x-amz-json-1.0,
 * X-Amz-Target AmazonSQS.SendMessage / AmazonSQS.SendMessageBatch, the
 * QueueUrl in the body), as in botocore's sqs service-2.json (aws-facts §3).
 *
 * A SendMessageBatch answer is HTTP 200 even when entries failed:
 *   {"Successful":[{"Id","MessageId","MD5OfMessageBody",...}],
 *    "Failed":[{"Id","SenderFault","Code","Message"}]}
 * Each entry is judged on its own; an entry the answer does not mention,
 * or whose MD5OfMessageBody is not the MD5 of what was sent (the check the
 * AWS SDKs make), is not taken as delivered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>

#include <fanout/aws_codes.h>
#include <fanout/jplain.h>

#include "sqs.h"

/* ---- text and digests ---- */

int sqs_char(uint32_t c)
{
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

/* MD5 hex of a body, or "" when MD5 is not available (a FIPS provider):
 * then the check is skipped. */
/* MD5 fetched once per instance (or per answer, sqs_read) and handed down: EVP_md5() in
 * EVP_Digest looks the algorithm up again on every call, a third of the
 * cost of the digest of a small message. NULL: not available (no check). */
struct s_md5 {
    const EVP_MD *alg; /* NULL: not available, no check */
    EVP_MD_CTX *ctx;   /* one per answer, reset per digest (an EVP_Digest
                        * builds and frees a context for each message) */
};

static void s_md5_hex(struct s_md5 *alg, const uint8_t *p, size_t n, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    out[0] = '\0';
    int ok = alg->alg && (alg->ctx ? EVP_DigestInit_ex(alg->ctx, alg->alg, NULL) == 1 &&
                                         EVP_DigestUpdate(alg->ctx, p, n) == 1 &&
                                         EVP_DigestFinal_ex(alg->ctx, md, &len) == 1
                                   : EVP_Digest(p, n, md, &len, alg->alg, NULL) == 1);
    if (ok && len == 16) {
        for (unsigned i = 0; i < len; i++) {
            out[2 * i] = hex[md[i] >> 4];
            out[2 * i + 1] = hex[md[i] & 15];
        }
        out[32] = '\0';
    }
}

/* ---- requests ---- */

static int s_entry_fields(struct fanout_sbuf *b, const struct fanout_msg_entry *e)
{
    int rc = fanout_sbuf_puts(b, "\"MessageBody\":");
    rc |= fanout_sbuf_json_str(b, e->body, e->body_len);
    if (e->fifo) {
        rc |= fanout_sbuf_puts(b, ",\"MessageGroupId\":");
        rc |= fanout_sbuf_json_str(b, e->group_id, strlen(e->group_id));
        rc |= fanout_sbuf_puts(b, ",\"MessageDeduplicationId\":");
        rc |= fanout_sbuf_json_str(b, e->dedup_id, strlen(e->dedup_id));
    }
    if (e->encoded)
        rc |= fanout_sbuf_puts(b, ",\"MessageAttributes\":{\"" FANOUT_B64_ATTR_NAME
                                  "\":{\"DataType\":\"" FANOUT_B64_ATTR_TYPE
                                  "\",\"StringValue\":\"" FANOUT_B64_ATTR_VALUE "\"}}");
    return rc;
}

int sqs_build(void *ctx, struct fanout_batch_request *r)
{
    const struct sqs_instance *in = ctx;
    struct fanout_msg_entry *const *entries = (struct fanout_msg_entry *const *)r->entries;
    int batch = r->count > 1;
    struct fanout_sbuf *b = &r->body;
    /* room for the usual body at once (JSON escapes may still grow it) */
    size_t need = 64 + strlen(in->queue_url);
    for (size_t i = 0; i < r->count; i++)
        need += 64 + entries[i]->body_len +
                (entries[i]->fifo ? 2 * FANOUT_FIFO_ID_MAX : 0) +
                (entries[i]->encoded ? 96 : 0);
    int rc = fanout_sbuf_reserve(b, need);
    rc |= fanout_sbuf_puts(b, "{\"QueueUrl\":");
    rc |= fanout_sbuf_json_str(b, in->queue_url, strlen(in->queue_url));
    if (!batch) {
        rc |= fanout_sbuf_puts(b, ",");
        rc |= s_entry_fields(b, entries[0]);
        rc |= fanout_sbuf_puts(b, "}");
    } else {
        rc |= fanout_sbuf_puts(b, ",\"Entries\":[");
        for (size_t i = 0; i < r->count && rc == 0; i++) {
            char id[FANOUT_DECIMAL_MAX];
            rc |= fanout_sbuf_puts(b, i ? ",{\"Id\":\"" : "{\"Id\":\"");
            rc |= fanout_sbuf_put(b, id, fanout_decimal(id, r->indexes[i]));
            rc |= fanout_sbuf_puts(b, "\",");
            rc |= s_entry_fields(b, entries[i]);
            rc |= fanout_sbuf_puts(b, "}");
        }
        rc |= fanout_sbuf_puts(b, "]}");
    }
    if (rc != 0)
        return -1;
    r->operation = batch ? "SendMessageBatch" : "SendMessage";
    r->headers[0] =
        (struct fanout_aws_header){"Content-Type", "application/x-amz-json-1.0"};
    r->headers[1] = (struct fanout_aws_header){
        "X-Amz-Target", batch ? "AmazonSQS.SendMessageBatch" : "AmazonSQS.SendMessage"};
    r->req = (struct fanout_aws_request){
        .struct_size = sizeof r->req,
        .service = "sqs",
        .region = in->region[0] ? in->region : NULL,
        .endpoint = in->endpoint[0] ? in->endpoint : NULL,
        .role_arn = in->role,
        .external_id = in->external_id,
        .method = "POST",
        .path = "/",
        .headers = r->headers,
        .header_count = 2,
        .body = (const uint8_t *)b->p,
        .body_len = b->len,
        .protocol = FANOUT_AWS_JSON,
    };
    return 0;
}

/* ---- responses ---- */

/* Throttling codes of SQS (RequestThrottled; KmsThrottled, whose Query
 * code is KMS.ThrottlingException) and the generic ones. */
static int s_throttling(const char *code)
{
    const char *prefix = "AWS.SimpleQueueService.";
    if (strncmp(code, prefix, strlen(prefix)) == 0)
        code += strlen(prefix);
    return fanout_aws_code_is_throttling(code);
}

int sqs_failed_status(void *ctx, const struct fanout_aws_response *resp, int status)
{
    (void)ctx;
    return status == FANOUT_FATAL && s_throttling(resp->error_code) ? FANOUT_THROTTLED
                                                                    : status;
}

/* The outcome of one failed entry: throttling is retried whoever is at
 * fault; otherwise the sender's fault will not pass on a resend, and the
 * service's own fault may. */
static int s_entry_status(const char *code, int sender_fault)
{
    if (s_throttling(code))
        return FANOUT_THROTTLED;
    return sender_fault ? FANOUT_FATAL : FANOUT_RETRY;
}

static void s_all(const struct fanout_batch_request *r, struct fanout_outcome *out,
                  int status, const char *code, const char *msg)
{
    for (size_t i = 0; i < r->count; i++)
        fanout_outcome_set(&out[r->indexes[i]], status, code, "%s", msg);
}

/* MD5OfMessageBody as the service computed it against what was sent: 1
 * when it matches or is absent (nothing to check), 0 when it differs or is
 * not a string. */
static int s_md5_matches(struct s_md5 *alg, json_t *obj, const struct fanout_msg_entry *e)
{
    json_t *j = json_object_get(obj, "MD5OfMessageBody");
    if (!j || json_is_null(j))
        return 1;
    const char *md5 = json_string_value(j);
    if (!md5)
        return 0;
    char mine[33];
    s_md5_hex(alg, e->body, e->body_len, mine);
    return !mine[0] || strcasecmp(md5, mine) == 0;
}

/* MD5OfMessageAttributes of the one attribute a base64 entry carries, as
 * SQS digests attributes (the AWS SDKs' check, e.g. the Java SDK's
 * MessageMD5ChecksumHandler): for each attribute in name order, the name,
 * the data type, transport byte 1 (String), the value, each string as a
 * 4-byte big-endian length and its bytes. */
static void s_attr_md5(struct s_md5 *alg, char out[33])
{
    static const char *const parts[] = {FANOUT_B64_ATTR_NAME, FANOUT_B64_ATTR_TYPE, NULL,
                                        FANOUT_B64_ATTR_VALUE};
    uint8_t buf[128];
    size_t n = 0;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        if (!parts[i]) {
            buf[n++] = 1;
            continue;
        }
        size_t l = strlen(parts[i]);
        buf[n++] = (uint8_t)(l >> 24);
        buf[n++] = (uint8_t)(l >> 16);
        buf[n++] = (uint8_t)(l >> 8);
        buf[n++] = (uint8_t)l;
        memcpy(buf + n, parts[i], l);
        n += l;
    }
    s_md5_hex(alg, buf, n, out);
}

/* MD5OfMessageAttributes against the attributes sent: 1 when it matches or
 * is absent, 0 when it differs, is not a string, or digests attributes
 * that were not sent. */
static int s_attr_md5_matches(struct s_md5 *alg, json_t *obj,
                              const struct fanout_msg_entry *e)
{
    json_t *j = json_object_get(obj, "MD5OfMessageAttributes");
    if (!j || json_is_null(j))
        return 1;
    const char *md5 = json_string_value(j);
    if (!md5 || !e->encoded)
        return 0;
    char mine[33];
    s_attr_md5(alg, mine);
    return !mine[0] || strcasecmp(md5, mine) == 0;
}

/* The position in the request of the entry with this Id, or `count`. */
static size_t s_find(const struct fanout_batch_request *r, const char *id)
{
    for (size_t i = 0; id && i < r->count; i++) {
        char mine[32];
        snprintf(mine, sizeof mine, "%zu", r->indexes[i]);
        if (strcmp(mine, id) == 0)
            return i;
    }
    return r->count;
}

/* A non-empty string member of obj, or NULL. */
static const char *s_str(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v && *v ? v : NULL;
}

/* Checks the members of list `name` (absent or an array of objects, each
 * with an Id sent and not yet seen). Returns 0, or -1 with `why`. */
static int s_check_list(json_t *root, const char *name,
                        const struct fanout_batch_request *r, char *seen, char *why,
                        size_t why_len)
{
    json_t *list = json_object_get(root, name);
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_array(list)) {
        snprintf(why, why_len, "\"%s\" that is not a list", name);
        return -1;
    }
    size_t i;
    json_t *item;
    json_array_foreach (list, i, item) {
        const char *id = s_str(item, "Id");
        size_t at = s_find(r, id);
        if (!json_is_object(item) || !id) {
            snprintf(why, why_len, "member %zu of %s without an Id", i, name);
            return -1;
        }
        if (at == r->count) {
            snprintf(why, why_len, "%s names Id \"%.24s\", which was not sent", name, id);
            return -1;
        }
        if (seen[at]) {
            snprintf(why, why_len, "Id %s named twice", id);
            return -1;
        }
        seen[at] = 1;
    }
    return 0;
}

/* ---- the common batch answer without a tree ----
 *
 * A SendMessageBatch answer in which every entry succeeded, of the usual
 * shape (fanout/jplain.h: plain strings, distinct names, Failed empty or
 * absent), is read straight from the text: each Successful member names an
 * entry sent, once, with a MessageId and MD5s that match; every entry is
 * named. Then nothing is to be said: the outcomes stay OK. Any other
 * answer goes through the jansson tree below, which says what is wrong. */

/* MD5OfMessageBody / MD5OfMessageAttributes member v against mine, as
 * s_md5_matches does: absent or null matches, a string must equal. */
static int s_fast_md5(const struct fanout_jplain *v, int present, const char *mine)
{
    if (!present || v->type == FANOUT_JPLAIN_NULL)
        return 1;
    if (v->type != FANOUT_JPLAIN_STRING)
        return 0;
    return !mine[0] || (v->n == strlen(mine) && strncasecmp(v->p, mine, v->n) == 0);
}

/* One Successful member m; 0 when it names an unseen entry, has a
 * MessageId, and its MD5s match. */
static int s_fast_item(struct s_md5 *alg, const struct fanout_batch_request *r,
                       const struct fanout_jplain_member *m, size_t count, char (*ids)[24],
                       char *seen)
{
    const struct fanout_jplain *id = NULL, *mid = NULL, *md5 = NULL, *amd5 = NULL;
    for (size_t i = 0; i < count; i++) {
        const char *n = m[i].name;
        size_t l = m[i].name_len;
        if (fanout_jplain_is(n, l, "Id"))
            id = &m[i].value;
        else if (fanout_jplain_is(n, l, "MessageId"))
            mid = &m[i].value;
        else if (fanout_jplain_is(n, l, "MD5OfMessageBody"))
            md5 = &m[i].value;
        else if (fanout_jplain_is(n, l, "MD5OfMessageAttributes"))
            amd5 = &m[i].value;
    }
    if (!id || id->type != FANOUT_JPLAIN_STRING || !id->n || !mid ||
        mid->type != FANOUT_JPLAIN_STRING || !mid->n)
        return -1;
    size_t at = 0;
    while (at < r->count && !fanout_jplain_is(id->p, id->n, ids[at]))
        at++;
    if (at == r->count || seen[at])
        return -1;
    seen[at] = 1;
    const struct fanout_msg_entry *e = ((struct fanout_msg_entry *const *)r->entries)[at];
    char mine[33];
    if (md5) {
        s_md5_hex(alg, e->body, e->body_len, mine);
        if (!s_fast_md5(md5, 1, mine))
            return -1;
    }
    if (amd5 && amd5->type != FANOUT_JPLAIN_NULL) {
        if (!e->encoded)
            return -1;
        s_attr_md5(alg, mine);
        if (!s_fast_md5(amd5, 1, mine))
            return -1;
    }
    return 0;
}

/* The Successful array at p: the position after it, or NULL. */
static const char *s_fast_list(struct s_md5 *alg, const struct fanout_batch_request *r,
                               const char *p, const char *end, char (*ids)[24], char *seen)
{
    if (p >= end || *p != '[')
        return NULL;
    p = fanout_jplain_ws(p + 1, end);
    if (p < end && *p == ']')
        return p + 1;
    for (;;) {
        struct fanout_jplain_member m[8];
        size_t count;
        if (!(p = fanout_jplain_object(p, end, m, 8, &count)) ||
            s_fast_item(alg, r, m, count, ids, seen) != 0)
            return NULL;
        int more = fanout_jplain_next(&p, end, ']');
        if (more < 0)
            return NULL;
        if (!more)
            return p;
    }
}

/* 0 when the answer says every entry of r was sent, as checked above. */
static int s_fast_batch(struct s_md5 *alg, const struct fanout_batch_request *r)
{
    const char *p = (const char *)r->resp.body, *end = p + r->resp.body_len;
    char ids[SQS_MAX_ENTRIES][24], seen[SQS_MAX_ENTRIES] = {0};
    struct fanout_jplain_member names[8];
    size_t nnames = 0;
    int more = 1;
    if (r->count > SQS_MAX_ENTRIES)
        return -1;
    for (size_t i = 0; i < r->count; i++)
        ids[i][fanout_decimal(ids[i], r->indexes[i])] = 0; /* snprintf: a tenth of a read */
    p = fanout_jplain_ws(p, end);
    if (p >= end || *p != '{')
        return -1;
    p++;
    while (more > 0) {
        struct fanout_jplain_member *x = &names[nnames];
        if (nnames == 8 || !(p = fanout_jplain_name(p, end, &x->name, &x->name_len)) ||
            fanout_jplain_seen(names, nnames, x->name, x->name_len))
            return -1;
        nnames++;
        if (fanout_jplain_is(x->name, x->name_len, "Successful"))
            p = s_fast_list(alg, r, p, end, ids, seen);
        else if (fanout_jplain_is(x->name, x->name_len, "Failed"))
            p = end - p >= 2 && p[0] == '[' && p[1] == ']' ? p + 2 : NULL;
        else
            p = fanout_jplain_value(p, end, &x->value);
        if (!p || (more = fanout_jplain_next(&p, end, '}')) < 0)
            return -1;
    }
    if (fanout_jplain_ws(p, end) != end)
        return -1;
    for (size_t i = 0; i < r->count; i++)
        if (!seen[i])
            return -1;
    return 0;
}

/*
 * Read the answer to one SendMessage or SendMessageBatch. It counts only
 * when it is the one the API documents: HTTP 200, a JSON object with a
 * MessageId (SendMessage) or whose Successful and Failed are lists that
 * name no Id twice and none that was not sent. Anything else (not JSON,
 * truncated, an Id unknown, repeated or both successful and failed)
 * contradicts itself or answers another request: nothing in it is believed
 * and every entry is retried. An entry the answer leaves out, a Successful
 * member without a MessageId, or one whose MD5OfMessageBody is not the MD5
 * of what was sent, leaves that entry alone in doubt: retried.
 */
static void s_read_answer(struct s_md5 *alg, const struct fanout_batch_request *r,
                          struct fanout_outcome *out)
{
    struct fanout_msg_entry *const *entries = (struct fanout_msg_entry *const *)r->entries;
    size_t count = r->count;
    int batch = count > 1;
    const char *op = batch ? "SendMessageBatch" : "SendMessage";
    const struct fanout_aws_response *resp = &r->resp;
    char why[160] = "", msg[256];
    char *seen = NULL;
    json_t *root = NULL;
    json_error_t je;
    if (resp->status != 200) {
        snprintf(why, sizeof why, "HTTP %ld, not the 200 %s answers with", resp->status,
                 op);
        goto doubt;
    }
    if (batch && resp->body && s_fast_batch(alg, r) == 0)
        return;
    root = resp->body && resp->body_len
               ? json_loadb((const char *)resp->body, resp->body_len,
                            JSON_REJECT_DUPLICATES, &je)
               : NULL;
    if (!json_is_object(root)) {
        if (root)
            snprintf(why, sizeof why, "a JSON body that is not an object");
        else if (resp->body_len)
            snprintf(why, sizeof why, "a body that is not JSON (%.60s)", je.text);
        else
            snprintf(why, sizeof why, "an empty body");
        goto doubt;
    }
    if (!batch) {
        if (!s_str(root, "MessageId")) {
            snprintf(why, sizeof why, "no MessageId");
            goto doubt;
        }
        if (!s_md5_matches(alg, root, entries[0]))
            s_all(r, out, FANOUT_RETRY, "MD5Mismatch",
                  "MD5OfMessageBody differs from the MD5 of the body sent: the message "
                  "was altered on the way");
        else if (!s_attr_md5_matches(alg, root, entries[0]))
            s_all(r, out, FANOUT_RETRY, "MD5Mismatch",
                  "MD5OfMessageAttributes differs from the MD5 of the attributes sent: the "
                  "message was altered on the way");
        json_decref(root);
        return;
    }
    seen = calloc(count ? count : 1, 1);
    if (!seen) {
        json_decref(root);
        s_all(r, out, FANOUT_RETRY, "OutOfMemory",
              "out of memory reading the answer: delivery unknown");
        return;
    }
    if (s_check_list(root, "Successful", r, seen, why, sizeof why) != 0 ||
        s_check_list(root, "Failed", r, seen, why, sizeof why) != 0)
        goto doubt;
    /* the answer holds together: judge each entry */
    size_t i;
    json_t *item;
    json_array_foreach (json_object_get(root, "Successful"), i, item) {
        const char *id = s_str(item, "Id");
        size_t at = s_find(r, id);
        const struct fanout_msg_entry *e = entries[at];
        if (!s_str(item, "MessageId"))
            fanout_outcome_set(&out[r->indexes[at]], FANOUT_RETRY, "InvalidResponse",
                               "SendMessageBatch entry %s: no MessageId: delivery unknown",
                               id);
        else if (!s_md5_matches(alg, item, e))
            fanout_outcome_set(&out[r->indexes[at]], FANOUT_RETRY, "MD5Mismatch",
                               "SendMessageBatch entry %s: MD5OfMessageBody differs from "
                               "the MD5 of the body sent",
                               id);
        else if (!s_attr_md5_matches(alg, item, e))
            fanout_outcome_set(&out[r->indexes[at]], FANOUT_RETRY, "MD5Mismatch",
                               "SendMessageBatch entry %s: MD5OfMessageAttributes differs "
                               "from the MD5 of the attributes sent",
                               id);
    }
    json_array_foreach (json_object_get(root, "Failed"), i, item) {
        const char *id = s_str(item, "Id");
        size_t at = s_find(r, id);
        const char *code = json_string_value(json_object_get(item, "Code"));
        const char *text = json_string_value(json_object_get(item, "Message"));
        json_t *sf = json_object_get(item, "SenderFault");
        /* a string "true" from a Query-minded server reads the same */
        int sender = json_is_true(sf) ||
                     (json_is_string(sf) && strcmp(json_string_value(sf), "true") == 0);
        code = code && *code ? code : "UnknownError";
        fanout_outcome_set(&out[r->indexes[at]], s_entry_status(code, sender), code,
                           "SendMessageBatch entry %s failed (%s fault): %s", id,
                           sender ? "sender" : "service",
                           text && *text ? text : "no message");
    }
    /* an entry not mentioned leaves the answer incomplete, not contradictory:
     * that entry alone is in doubt */
    for (size_t j = 0; j < count; j++)
        if (!seen[j])
            fanout_outcome_set(&out[r->indexes[j]], FANOUT_RETRY, "InvalidResponse",
                               "SendMessageBatch answer names entry %zu neither in "
                               "Successful nor in Failed: delivery unknown",
                               r->indexes[j]);
    free(seen);
    json_decref(root);
    return;
doubt:
    snprintf(msg, sizeof msg, "%s answered with %s; delivery of the %zu entr%s unknown", op,
             why, count, count == 1 ? "y is" : "ies is");
    s_all(r, out, FANOUT_RETRY, "InvalidResponse", msg);
    free(seen);
    json_decref(root);
}

void sqs_read(void *ctx, const struct fanout_batch_request *r, struct fanout_outcome *out)
{
    const struct sqs_instance *in = ctx;
    EVP_MD *fetched = in && in->md5 ? NULL : EVP_MD_fetch(NULL, "MD5", NULL);
    struct s_md5 md5 = {fetched ? fetched : in ? in->md5 : NULL, EVP_MD_CTX_new()};
    s_read_answer(&md5, r, out);
    EVP_MD_CTX_free(md5.ctx);
    EVP_MD_free(fetched);
}
