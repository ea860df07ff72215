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

#include "sqs.h"

/* ---- text ---- */

/* Decode one UTF-8 sequence (no overlongs, no surrogates, <= U+10FFFF):
 * its length, or 0 when invalid. */
static size_t s_utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
    size_t k = fanout_utf8_seq(s, n);
    if (!k)
        return 0;
    uint8_t c = s[0];
    uint32_t v = k == 1 ? c : k == 2 ? c & 0x1Fu : k == 3 ? c & 0x0Fu : c & 0x07u;
    for (size_t i = 1; i < k; i++)
        v = (v << 6) | (s[i] & 0x3Fu);
    *cp = v;
    return k;
}

static int s_sqs_char(uint32_t c)
{
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

size_t sqs_text_check(const uint8_t *s, size_t n, char *what, size_t what_len)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        size_t k = s_utf8_next(s + i, n - i, &cp);
        if (!k) {
            snprintf(what, what_len, "invalid UTF-8 (byte 0x%02X)", s[i]);
            return i;
        }
        if (!s_sqs_char(cp)) {
            snprintf(what, what_len, "character U+%04X", (unsigned)cp);
            return i;
        }
        i += k;
    }
    if (what_len)
        what[0] = '\0';
    return n;
}

/* ---- digests ---- */

static void s_hex(const unsigned char *md, unsigned len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * len] = '\0';
}

int sqs_sha256_hex(const void *const *parts, const size_t *lens, size_t count, char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    for (size_t i = 0; ok && i < count; i++)
        ok = EVP_DigestUpdate(ctx, parts[i], lens[i]) == 1;
    ok = ok && EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    s_hex(md, len, out);
    return 0;
}

/* MD5 hex of a body, or "" when MD5 is not available (a FIPS provider):
 * then the check is skipped. */
static void s_md5_hex(const uint8_t *p, size_t n, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    out[0] = '\0';
    if (EVP_Digest(p, n, md, &len, EVP_md5(), NULL) == 1 && len == 16)
        s_hex(md, len, out);
}

/* ---- FIFO ids ---- */

static int s_id_char(uint8_t c)
{
    /* alphanumeric and punctuation: the printable ASCII but space */
    return c > 0x20 && c < 0x7F;
}

int sqs_group_id(const uint8_t *key, size_t key_len, char out[SQS_MAX_ID_CHARS + 1])
{
    int ok = key_len > 0 && key_len <= SQS_MAX_ID_CHARS;
    for (size_t i = 0; ok && i < key_len; i++)
        ok = s_id_char(key[i]);
    if (ok) {
        memcpy(out, key, key_len);
        out[key_len] = '\0';
        return 0;
    }
    const void *parts[] = {key ? (const void *)key : ""};
    size_t lens[] = {key ? key_len : 0};
    return sqs_sha256_hex(parts, lens, 1, out);
}

int sqs_dedup_id(const char *target_id, const struct fanout_message *m,
                 char out[SQS_MAX_ID_CHARS + 1])
{
    const struct fanout_record *first = m->records[0];
    const struct fanout_record *last = m->records[m->record_count - 1];
    char subs[96];
    int n = snprintf(subs, sizeof subs, "%llu:%llu:%zu",
                     (unsigned long long)first->sub_sequence_number,
                     (unsigned long long)last->sub_sequence_number, m->record_count);
    const char *src = first->source_arn ? first->source_arn : "";
    /* NUL-terminated parts, so ("ab","c") and ("a","bc") differ */
    const void *parts[] = {"fanout-dedup-1",      target_id, src, first->sequence_number,
                           last->sequence_number, subs};
    size_t lens[] = {sizeof "fanout-dedup-1",
                     strlen(target_id) + 1,
                     strlen(src) + 1,
                     strlen(first->sequence_number) + 1,
                     strlen(last->sequence_number) + 1,
                     (size_t)(n > 0 ? n : 0)};
    return sqs_sha256_hex(parts, lens, sizeof lens / sizeof *lens, out);
}

/* ---- requests ---- */

static int s_entry_fields(struct fanout_sbuf *b, const struct sqs_entry *e)
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
        rc |= fanout_sbuf_puts(b, ",\"MessageAttributes\":{\"" SQS_B64_ATTR_NAME
                                  "\":{\"DataType\":\"" SQS_B64_ATTR_TYPE
                                  "\",\"StringValue\":\"" SQS_B64_ATTR_VALUE "\"}}");
    return rc;
}

int sqs_request_body(struct fanout_sbuf *b, const char *queue_url,
                     struct sqs_entry *const *entries, size_t count, int batch)
{
    int rc = fanout_sbuf_puts(b, "{\"QueueUrl\":");
    rc |= fanout_sbuf_json_str(b, queue_url, strlen(queue_url));
    if (!batch) {
        rc |= fanout_sbuf_puts(b, ",");
        rc |= s_entry_fields(b, entries[0]);
        return rc | fanout_sbuf_puts(b, "}");
    }
    rc |= fanout_sbuf_puts(b, ",\"Entries\":[");
    for (size_t i = 0; i < count && rc == 0; i++) {
        rc |= fanout_sbuf_printf(b, "%s{\"Id\":\"%zu\",", i ? "," : "", entries[i]->index);
        rc |= s_entry_fields(b, entries[i]);
        rc |= fanout_sbuf_puts(b, "}");
    }
    return rc | fanout_sbuf_puts(b, "]}");
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

/* The outcome of one failed entry: throttling is retried whoever is at
 * fault; otherwise the sender's fault will not pass on a resend, and the
 * service's own fault may. */
static int s_entry_status(const char *code, int sender_fault)
{
    if (s_throttling(code))
        return FANOUT_THROTTLED;
    return sender_fault ? FANOUT_FATAL : FANOUT_RETRY;
}

static void s_all(struct sqs_entry *const *entries, size_t count,
                  struct fanout_outcome *out, int status, const char *code, const char *msg)
{
    for (size_t i = 0; i < count; i++)
        fanout_outcome_set(&out[entries[i]->index], status, code, "%s", msg);
}

/* MD5OfMessageBody as the service computed it against what was sent: 1
 * when it matches or is absent (nothing to check), 0 when it differs or is
 * not a string. */
static int s_md5_matches(json_t *obj, const struct sqs_entry *e)
{
    json_t *j = json_object_get(obj, "MD5OfMessageBody");
    if (!j || json_is_null(j))
        return 1;
    const char *md5 = json_string_value(j);
    if (!md5)
        return 0;
    char mine[33];
    s_md5_hex(e->body, e->body_len, mine);
    return !mine[0] || strcasecmp(md5, mine) == 0;
}

/* MD5OfMessageAttributes of the one attribute a base64 entry carries, as
 * SQS digests attributes (the AWS SDKs' check, e.g. the Java SDK's
 * MessageMD5ChecksumHandler): for each attribute in name order, the name,
 * the data type, transport byte 1 (String), the value, each string as a
 * 4-byte big-endian length and its bytes. */
static void s_attr_md5(char out[33])
{
    static const char *const parts[] = {SQS_B64_ATTR_NAME, SQS_B64_ATTR_TYPE, NULL,
                                        SQS_B64_ATTR_VALUE};
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
    s_md5_hex(buf, n, out);
}

/* MD5OfMessageAttributes against the attributes sent: 1 when it matches or
 * is absent, 0 when it differs, is not a string, or digests attributes
 * that were not sent. */
static int s_attr_md5_matches(json_t *obj, const struct sqs_entry *e)
{
    json_t *j = json_object_get(obj, "MD5OfMessageAttributes");
    if (!j || json_is_null(j))
        return 1;
    const char *md5 = json_string_value(j);
    if (!md5 || !e->encoded)
        return 0;
    char mine[33];
    s_attr_md5(mine);
    return !mine[0] || strcasecmp(md5, mine) == 0;
}

/* The position in the request of the entry with this Id, or `count`. */
static size_t s_find(struct sqs_entry *const *entries, size_t count, const char *id)
{
    for (size_t i = 0; id && i < count; i++) {
        char mine[32];
        snprintf(mine, sizeof mine, "%zu", entries[i]->index);
        if (strcmp(mine, id) == 0)
            return i;
    }
    return count;
}

/* A non-empty string member of obj, or NULL. */
static const char *s_str(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v && *v ? v : NULL;
}

/* Checks the members of list `name` (absent or an array of objects, each
 * with an Id sent and not yet seen). Returns 0, or -1 with `why`. */
static int s_check_list(json_t *root, const char *name, struct sqs_entry *const *entries,
                        size_t count, char *seen, char *why, size_t why_len)
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
        size_t at = s_find(entries, count, id);
        if (!json_is_object(item) || !id) {
            snprintf(why, why_len, "member %zu of %s without an Id", i, name);
            return -1;
        }
        if (at == count) {
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
void sqs_read_response(const struct fanout_aws_response *r,
                       struct sqs_entry *const *entries, size_t count, int batch,
                       struct fanout_outcome *out)
{
    const char *op = batch ? "SendMessageBatch" : "SendMessage";
    if (r->result != FANOUT_AWS_OK) {
        const char *code = r->error_code[0] ? r->error_code : "RequestFailed";
        int st = r->result == FANOUT_AWS_THROTTLED   ? FANOUT_THROTTLED
                 : r->result == FANOUT_AWS_RETRYABLE ? FANOUT_RETRY
                 : s_throttling(code)                ? FANOUT_THROTTLED
                                                     : FANOUT_FATAL;
        char msg[600];
        snprintf(msg, sizeof msg, "%s: %s", op,
                 r->error_message[0] ? r->error_message : "no reason given");
        s_all(entries, count, out, st, code, msg);
        return;
    }
    char why[160] = "", msg[256];
    char *seen = NULL;
    json_t *root = NULL;
    json_error_t je;
    if (r->status != 200) {
        snprintf(why, sizeof why, "HTTP %ld, not the 200 %s answers with", r->status, op);
        goto doubt;
    }
    root = r->body && r->body_len
               ? json_loadb((const char *)r->body, r->body_len, JSON_REJECT_DUPLICATES, &je)
               : NULL;
    if (!json_is_object(root)) {
        if (root)
            snprintf(why, sizeof why, "a JSON body that is not an object");
        else if (r->body_len)
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
        if (!s_md5_matches(root, entries[0]))
            s_all(entries, count, out, FANOUT_RETRY, "MD5Mismatch",
                  "MD5OfMessageBody differs from the MD5 of the body sent: the message "
                  "was altered on the way");
        else if (!s_attr_md5_matches(root, entries[0]))
            s_all(entries, count, out, FANOUT_RETRY, "MD5Mismatch",
                  "MD5OfMessageAttributes differs from the MD5 of the attributes sent: the "
                  "message was altered on the way");
        json_decref(root);
        return;
    }
    seen = calloc(count ? count : 1, 1);
    if (!seen) {
        json_decref(root);
        s_all(entries, count, out, FANOUT_RETRY, "OutOfMemory",
              "out of memory reading the answer: delivery unknown");
        return;
    }
    if (s_check_list(root, "Successful", entries, count, seen, why, sizeof why) != 0 ||
        s_check_list(root, "Failed", entries, count, seen, why, sizeof why) != 0)
        goto doubt;
    /* the answer holds together: judge each entry */
    size_t i;
    json_t *item;
    json_array_foreach (json_object_get(root, "Successful"), i, item) {
        const char *id = s_str(item, "Id");
        struct sqs_entry *e = entries[s_find(entries, count, id)];
        if (!s_str(item, "MessageId"))
            fanout_outcome_set(&out[e->index], FANOUT_RETRY, "InvalidResponse",
                               "SendMessageBatch entry %s: no MessageId: delivery unknown",
                               id);
        else if (!s_md5_matches(item, e))
            fanout_outcome_set(&out[e->index], FANOUT_RETRY, "MD5Mismatch",
                               "SendMessageBatch entry %s: MD5OfMessageBody differs from "
                               "the MD5 of the body sent",
                               id);
        else if (!s_attr_md5_matches(item, e))
            fanout_outcome_set(&out[e->index], FANOUT_RETRY, "MD5Mismatch",
                               "SendMessageBatch entry %s: MD5OfMessageAttributes differs "
                               "from the MD5 of the attributes sent",
                               id);
    }
    json_array_foreach (json_object_get(root, "Failed"), i, item) {
        const char *id = s_str(item, "Id");
        struct sqs_entry *e = entries[s_find(entries, count, id)];
        const char *code = json_string_value(json_object_get(item, "Code"));
        const char *text = json_string_value(json_object_get(item, "Message"));
        json_t *sf = json_object_get(item, "SenderFault");
        /* a string "true" from a Query-minded server reads the same */
        int sender = json_is_true(sf) ||
                     (json_is_string(sf) && strcmp(json_string_value(sf), "true") == 0);
        code = code && *code ? code : "UnknownError";
        fanout_outcome_set(&out[e->index], s_entry_status(code, sender), code,
                           "SendMessageBatch entry %s failed (%s fault): %s", id,
                           sender ? "sender" : "service",
                           text && *text ? text : "no message");
    }
    /* an entry not mentioned leaves the answer incomplete, not contradictory:
     * that entry alone is in doubt */
    for (size_t j = 0; j < count; j++)
        if (!seen[j])
            fanout_outcome_set(&out[entries[j]->index], FANOUT_RETRY, "InvalidResponse",
                               "SendMessageBatch answer names entry %zu neither in "
                               "Successful nor in Failed: delivery unknown",
                               entries[j]->index);
    free(seen);
    json_decref(root);
    return;
doubt:
    snprintf(msg, sizeof msg, "%s answered with %s; delivery of the %zu entr%s unknown", op,
             why, count, count == 1 ? "y is" : "ies is");
    s_all(entries, count, out, FANOUT_RETRY, "InvalidResponse", msg);
    free(seen);
    json_decref(root);
}
