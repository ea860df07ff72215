/*
 * The SNS wire protocol: Query (botocore's sns service-2.json lists no
 * other; aws-facts §3). A form-encoded POST / with Action=Publish or
 * Action=PublishBatch and Version=2010-03-31; XML answers:
 *
 *   <PublishResponse><PublishResult><MessageId>..</MessageId>
 *     [<SequenceNumber>..</SequenceNumber>]</PublishResult>..
 *   <PublishBatchResponse><PublishBatchResult>
 *     <Successful><member><Id/><MessageId/>[<SequenceNumber/>]</member>..</Successful>
 *     <Failed><member><Id/><Code/><Message/><SenderFault/></member>..</Failed>
 *   </PublishBatchResult>..
 *
 * The answers are read with a small scanner that looks for the elements it
 * needs and takes attributes, white space, self-closed empty lists and
 * unknown elements in its stride; errors (non-2xx) are the engine's to
 * parse. A PublishBatch answer is HTTP 200 even when entries failed; an
 * entry the answer does not mention is not taken as delivered.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <fanout/aws_codes.h>

#include "sns.h"

/* ---- form encoding ---- */

/* Percent-encoding of a form value: everything but the unreserved
 * characters, as the AWS SDKs' Query serializers do. */
static int s_form_value(struct fanout_sbuf *b, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    size_t run = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint8_t c = s[i];
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            continue;
        rc |= fanout_sbuf_put(b, s + run, i - run);
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
        rc |= fanout_sbuf_put(b, esc, 3);
        run = i + 1;
    }
    return rc | fanout_sbuf_put(b, s + run, n - run);
}

/* "&<prefix><name>=<value>" */
static int s_param(struct fanout_sbuf *b, const char *prefix, const char *name,
                   const uint8_t *value, size_t len)
{
    int rc = fanout_sbuf_puts(b, "&");
    rc |= fanout_sbuf_puts(b, prefix);
    rc |= fanout_sbuf_puts(b, name);
    rc |= fanout_sbuf_puts(b, "=");
    return rc | s_form_value(b, value, len);
}

static int s_param_str(struct fanout_sbuf *b, const char *prefix, const char *name,
                       const char *value)
{
    return s_param(b, prefix, name, (const uint8_t *)value, strlen(value));
}

/* ---- text ---- */

size_t sns_utf8_check(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = fanout_utf8_seq(s + i, n - i);
        if (!k)
            return i;
        i += k;
    }
    return n;
}

/* ---- digests and FIFO ids ---- */

int sns_sha256_hex(const void *const *parts, const size_t *lens, size_t count, char out[65])
{
    static const char hex[] = "0123456789abcdef";
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
    for (unsigned i = 0; i < len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * len] = '\0';
    return 0;
}

int sns_group_id(const uint8_t *key, size_t key_len, char out[SNS_MAX_ID_CHARS + 1])
{
    /* alphanumeric and punctuation: the printable ASCII but space */
    int ok = key_len > 0 && key_len <= SNS_MAX_ID_CHARS;
    for (size_t i = 0; ok && i < key_len; i++)
        ok = key[i] > 0x20 && key[i] < 0x7F;
    if (ok) {
        memcpy(out, key, key_len);
        out[key_len] = '\0';
        return 0;
    }
    const void *parts[] = {key ? (const void *)key : ""};
    size_t lens[] = {key ? key_len : 0};
    return sns_sha256_hex(parts, lens, 1, out);
}

int sns_dedup_id(const char *target_id, const struct fanout_message *m,
                 char out[SNS_MAX_ID_CHARS + 1])
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
    return sns_sha256_hex(parts, lens, sizeof lens / sizeof *lens, out);
}

/* ---- requests ---- */

static int s_entry_params(struct fanout_sbuf *b, const char *prefix,
                          const struct sns_entry *e)
{
    int rc = s_param(b, prefix, "Message", e->body, e->body_len);
    if (e->fifo) {
        rc |= s_param_str(b, prefix, "MessageGroupId", e->group_id);
        rc |= s_param_str(b, prefix, "MessageDeduplicationId", e->dedup_id);
    }
    if (e->encoded) {
        rc |= s_param_str(b, prefix, "MessageAttributes.entry.1.Name", SNS_B64_ATTR_NAME);
        rc |= s_param_str(b, prefix, "MessageAttributes.entry.1.Value.DataType",
                          SNS_B64_ATTR_TYPE);
        rc |= s_param_str(b, prefix, "MessageAttributes.entry.1.Value.StringValue",
                          SNS_B64_ATTR_VALUE);
    }
    return rc;
}

int sns_request_body(struct fanout_sbuf *b, const char *topic_arn,
                     struct sns_entry *const *entries, size_t count, int batch)
{
    int rc = fanout_sbuf_puts(b, batch ? "Action=PublishBatch" : "Action=Publish");
    rc |= s_param_str(b, "", "Version", SNS_API_VERSION);
    rc |= s_param_str(b, "", "TopicArn", topic_arn);
    if (!batch)
        return rc | s_entry_params(b, "", entries[0]);
    for (size_t i = 0; i < count && rc == 0; i++) {
        char prefix[64], id[32];
        snprintf(prefix, sizeof prefix, "PublishBatchRequestEntries.member.%zu.", i + 1);
        snprintf(id, sizeof id, "%zu", entries[i]->index);
        rc |= s_param_str(b, prefix, "Id", id);
        rc |= s_entry_params(b, prefix, entries[i]);
    }
    return rc;
}

/* ---- a tolerant XML scanner ---- */

static int s_name_end(char c)
{
    return c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The first element `name` in [p, p + n): its content and where the
 * scan goes on after it. <name/> is found with empty content; an element
 * whose end tag is missing is not found. Returns 1 when found. */
static int s_xml_elem(const char *p, size_t n, const char *name, const char **content,
                      size_t *content_len, size_t *after)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl + 2 <= n; i++) {
        if (p[i] != '<' || memcmp(p + i + 1, name, nl) != 0 || !s_name_end(p[i + 1 + nl]))
            continue;
        const char *gt = memchr(p + i + 1 + nl, '>', n - (i + 1 + nl));
        if (!gt)
            return 0;
        size_t start = (size_t)(gt - p) + 1;
        if (gt[-1] == '/') {
            *content = p + start;
            *content_len = 0;
            *after = start;
            return 1;
        }
        for (size_t k = start; k + nl + 3 <= n; k++) {
            if (p[k] == '<' && p[k + 1] == '/' && memcmp(p + k + 2, name, nl) == 0 &&
                (p[k + 2 + nl] == '>' || isspace((unsigned char)p[k + 2 + nl]))) {
                *content = p + start;
                *content_len = k - start;
                *after = k + 2 + nl;
                return 1;
            }
        }
        return 0;
    }
    return 0;
}

/* An element's text into out: trimmed, the five entities and numeric
 * references decoded (ASCII only; others as '?'), control characters as
 * spaces. */
static void s_xml_text(const char *p, size_t n, char *out, size_t out_len)
{
    static const struct {
        const char *ent;
        char c;
    } ents[] = {
        {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    while (n && isspace((unsigned char)*p)) {
        p++;
        n--;
    }
    while (n && isspace((unsigned char)p[n - 1]))
        n--;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < out_len;) {
        char c = p[i];
        size_t used = 1;
        if (c == '&') {
            int done = 0;
            for (size_t e = 0; e < sizeof ents / sizeof *ents && !done; e++) {
                size_t el = strlen(ents[e].ent);
                if (i + el <= n && memcmp(p + i, ents[e].ent, el) == 0) {
                    c = ents[e].c;
                    used = el;
                    done = 1;
                }
            }
            const char *semi = memchr(p + i, ';', n - i);
            if (!done && i + 2 < n && p[i + 1] == '#' && semi && semi - (p + i) < 12) {
                int hexa = p[i + 2] == 'x' || p[i + 2] == 'X';
                unsigned long v = strtoul(p + i + (hexa ? 3 : 2), NULL, hexa ? 16 : 10);
                c = v >= 0x20 && v < 0x7F ? (char)v : v == '\n' || v == '\t' ? ' ' : '?';
                used = (size_t)(semi - (p + i)) + 1;
            }
        }
        if ((unsigned char)c < 0x20 || c == 0x7F)
            c = ' ';
        out[k++] = c;
        i += used;
    }
    if (out_len)
        out[k] = '\0';
}

/* The text of child `name` of [p, p + n) into out ("" when absent). */
static void s_xml_child(const char *p, size_t n, const char *name, char *out,
                        size_t out_len)
{
    const char *c;
    size_t cl, after;
    if (s_xml_elem(p, n, name, &c, &cl, &after))
        s_xml_text(c, cl, out, out_len);
    else if (out_len)
        out[0] = '\0';
}

/* ---- responses ---- */

/* SNS's throttling codes (Throttled is ThrottledException's code,
 * KMSThrottling KMSThrottlingException's) and the generic ones. */
static int s_throttling(const char *code)
{
    return fanout_aws_code_is_throttling(code);
}

static void s_all(struct sns_entry *const *entries, size_t count,
                  struct fanout_outcome *out, int status, const char *code, const char *msg)
{
    for (size_t i = 0; i < count; i++)
        fanout_outcome_set(&out[entries[i]->index], status, code, "%s", msg);
}

/* The position in the request of the entry with this Id, or `count`. */
static size_t s_find(struct sns_entry *const *entries, size_t count, const char *id)
{
    for (size_t i = 0; i < count; i++) {
        char mine[32];
        snprintf(mine, sizeof mine, "%zu", entries[i]->index);
        if (strcmp(mine, id) == 0)
            return i;
    }
    return count;
}

/* The one element `name` of [p, p + n): 1 with its content, 0 when absent,
 * -1 when there are two or more. */
static int s_xml_only(const char *p, size_t n, const char *name, const char **content,
                      size_t *content_len)
{
    size_t after, after2, l2;
    const char *c2;
    if (!s_xml_elem(p, n, name, content, content_len, &after))
        return 0;
    if (s_xml_elem(p + after, n - after, name, &c2, &l2, &after2))
        return -1;
    return 1;
}

/* One member of Successful or Failed: checks its Id against the request's
 * and the ones already seen. Returns the entry's position, or `count` with
 * `why` filled. */
static size_t s_member(struct sns_entry *const *entries, size_t count, const char *m,
                       size_t ml, char *seen, const char *list, char *id, size_t id_len,
                       char *why, size_t why_len)
{
    const char *c;
    size_t cl;
    int k = s_xml_only(m, ml, "Id", &c, &cl);
    if (k != 1) {
        snprintf(why, why_len, "a member of %s with %s Id", list,
                 k ? "more than one" : "no");
        return count;
    }
    s_xml_text(c, cl, id, id_len);
    size_t at = s_find(entries, count, id);
    if (at == count) {
        snprintf(why, why_len, "%s names Id \"%.24s\", which was not sent", list, id);
        return count;
    }
    if (seen[at]) {
        snprintf(why, why_len, "Id %s named twice", id);
        return count;
    }
    seen[at] = 1;
    return at;
}

/*
 * Read the answer to one Publish or PublishBatch. It counts only when it is
 * the one the API documents: HTTP 200, a complete <PublishResponse> (with
 * one non-empty MessageId) or <PublishBatchResponse> whose Successful and
 * Failed name no Id twice and none that was not sent. Anything else
 * (truncated XML, an answer to the other action, an Id unknown, repeated or
 * both successful and failed) contradicts itself or answers another
 * request: nothing in it is believed and every entry is retried (a
 * duplicate is what at-least-once allows; an entry wrongly taken as
 * published is a loss). An entry the answer leaves out, or a Successful
 * member without a MessageId, leaves that entry alone in doubt: retried.
 */
void sns_read_response(const struct fanout_aws_response *r,
                       struct sns_entry *const *entries, size_t count, int batch,
                       struct fanout_outcome *out)
{
    const char *op = batch ? "PublishBatch" : "Publish";
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
    const char *body = r->body ? (const char *)r->body : "";
    size_t len = r->body ? r->body_len : 0;
    const char *c, *res;
    size_t cl, resl;
    char why[160] = "", msg[256];
    char *seen = NULL;
    if (r->status != 200) {
        snprintf(why, sizeof why, "HTTP %ld, not the 200 %s answers with", r->status, op);
        goto doubt;
    }
    /* comments, CDATA and declarations are not in SNS's answers, and a
     * scanner that skips none of them could be shown an Id that is not */
    for (const char *lt = memchr(body, '<', len); lt && (size_t)(lt - body) + 1 < len;
         lt = memchr(lt + 1, '<', len - (size_t)(lt - body) - 1))
        if (lt[1] == '!') {
            snprintf(why, sizeof why, "XML comments, CDATA or declarations (\"<!\")");
            goto doubt;
        }
    const char *root = batch ? "PublishBatchResponse" : "PublishResponse";
    const char *result = batch ? "PublishBatchResult" : "PublishResult";
    if (s_xml_only(body, len, root, &c, &cl) != 1 ||
        s_xml_only(c, cl, result, &res, &resl) != 1) {
        if (len)
            snprintf(why, sizeof why, "no complete <%s> with one <%s>", root, result);
        else
            snprintf(why, sizeof why, "an empty body");
        goto doubt;
    }
    if (!batch) {
        char mid[128];
        if (s_xml_only(res, resl, "MessageId", &c, &cl) != 1) {
            snprintf(why, sizeof why, "no single MessageId");
            goto doubt;
        }
        s_xml_text(c, cl, mid, sizeof mid);
        if (!mid[0]) {
            snprintf(why, sizeof why, "an empty MessageId");
            goto doubt;
        }
        return;
    }
    seen = calloc(count ? count : 1, 1);
    if (!seen) {
        s_all(entries, count, out, FANOUT_RETRY, "OutOfMemory",
              "out of memory reading the answer: delivery unknown");
        return;
    }
    int ks = s_xml_only(res, resl, "Successful", &c, &cl);
    if (ks < 0) {
        snprintf(why, sizeof why, "two <Successful> lists");
        goto doubt;
    }
    for (size_t pos = 0, next, ml; ks && pos < cl;) {
        const char *m;
        if (!s_xml_elem(c + pos, cl - pos, "member", &m, &ml, &next))
            break;
        pos += next;
        char id[64], mid[128];
        size_t at = s_member(entries, count, m, ml, seen, "Successful", id, sizeof id, why,
                             sizeof why);
        if (at == count)
            goto doubt;
        const char *mc;
        size_t mcl;
        mid[0] = 0;
        if (s_xml_only(m, ml, "MessageId", &mc, &mcl) == 1)
            s_xml_text(mc, mcl, mid, sizeof mid);
        /* incomplete, not contradictory: this entry alone is in doubt */
        if (!mid[0])
            fanout_outcome_set(&out[entries[at]->index], FANOUT_RETRY, "InvalidResponse",
                               "PublishBatch entry %s: no MessageId: delivery unknown", id);
    }
    int kf = s_xml_only(res, resl, "Failed", &c, &cl);
    if (kf < 0) {
        snprintf(why, sizeof why, "two <Failed> lists");
        goto doubt;
    }
    for (size_t pos = 0, next, ml; kf && pos < cl;) {
        const char *m;
        if (!s_xml_elem(c + pos, cl - pos, "member", &m, &ml, &next))
            break;
        pos += next;
        char id[64];
        if (s_member(entries, count, m, ml, seen, "Failed", id, sizeof id, why,
                     sizeof why) == count)
            goto doubt;
    }
    /* an entry not mentioned leaves the answer incomplete, not contradictory:
     * that entry alone is in doubt */
    for (size_t j = 0; j < count; j++)
        if (!seen[j])
            fanout_outcome_set(&out[entries[j]->index], FANOUT_RETRY, "InvalidResponse",
                               "PublishBatch answer names entry %zu neither in Successful "
                               "nor in Failed: delivery unknown",
                               entries[j]->index);
    /* the answer holds together: the failed entries' outcomes */
    for (size_t pos = 0, next, ml; kf && pos < cl;) {
        const char *m;
        if (!s_xml_elem(c + pos, cl - pos, "member", &m, &ml, &next))
            break;
        pos += next;
        char id[64], code[64], text[200], sender[16];
        s_xml_child(m, ml, "Id", id, sizeof id);
        s_xml_child(m, ml, "Code", code, sizeof code);
        s_xml_child(m, ml, "Message", text, sizeof text);
        s_xml_child(m, ml, "SenderFault", sender, sizeof sender);
        size_t at = s_find(entries, count, id);
        int sf = strcmp(sender, "true") == 0;
        /* throttling is retried whoever is at fault; otherwise the
         * sender's fault will not pass on a resend */
        int st = s_throttling(code) ? FANOUT_THROTTLED : sf ? FANOUT_FATAL : FANOUT_RETRY;
        fanout_outcome_set(&out[entries[at]->index], st, code[0] ? code : "UnknownError",
                           "PublishBatch entry %s failed (%s fault): %s", id,
                           sf ? "sender" : "service", text[0] ? text : "no message");
    }
    free(seen);
    return;
doubt:
    snprintf(msg, sizeof msg, "%s answered with %s; delivery of the %zu entr%s unknown", op,
             why, count, count == 1 ? "y is" : "ies is");
    s_all(entries, count, out, FANOUT_RETRY, "InvalidResponse", msg);
    free(seen);
}
