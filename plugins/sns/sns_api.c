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
 * The answers are read with the SDK's XML reader (fanout/xml.h), which
 * takes attributes, white space, self-closed empty lists and unknown
 * elements in its stride; errors (non-2xx) are the engine's to parse. A PublishBatch answer
 * is HTTP 200 even when entries failed; an entry the answer does not mention is not taken
 * as delivered.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fanout/aws_codes.h>
#include <fanout/xml.h>

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

/* ---- requests ---- */

static int s_entry_params(struct fanout_sbuf *b, const char *prefix,
                          const struct fanout_msg_entry *e)
{
    int rc = s_param(b, prefix, "Message", e->body, e->body_len);
    if (e->fifo) {
        rc |= s_param_str(b, prefix, "MessageGroupId", e->group_id);
        rc |= s_param_str(b, prefix, "MessageDeduplicationId", e->dedup_id);
    }
    if (e->encoded) {
        rc |=
            s_param_str(b, prefix, "MessageAttributes.entry.1.Name", FANOUT_B64_ATTR_NAME);
        rc |= s_param_str(b, prefix, "MessageAttributes.entry.1.Value.DataType",
                          FANOUT_B64_ATTR_TYPE);
        rc |= s_param_str(b, prefix, "MessageAttributes.entry.1.Value.StringValue",
                          FANOUT_B64_ATTR_VALUE);
    }
    return rc;
}

int sns_build(void *ctx, struct fanout_batch_request *r)
{
    const struct sns_instance *in = ctx;
    struct fanout_msg_entry *const *entries = (struct fanout_msg_entry *const *)r->entries;
    int batch = r->count > 1;
    struct fanout_sbuf *b = &r->body;
    int rc = fanout_sbuf_puts(b, batch ? "Action=PublishBatch" : "Action=Publish");
    rc |= s_param_str(b, "", "Version", SNS_API_VERSION);
    rc |= s_param_str(b, "", "TopicArn", in->topic_arn);
    if (!batch)
        rc |= s_entry_params(b, "", entries[0]);
    for (size_t i = 0; batch && i < r->count && rc == 0; i++) {
        char prefix[64], id[32];
        snprintf(prefix, sizeof prefix, "PublishBatchRequestEntries.member.%zu.", i + 1);
        snprintf(id, sizeof id, "%zu", r->indexes[i]);
        rc |= s_param_str(b, prefix, "Id", id);
        rc |= s_entry_params(b, prefix, entries[i]);
    }
    if (rc != 0)
        return -1;
    r->operation = batch ? "PublishBatch" : "Publish";
    r->headers[0] = (struct fanout_aws_header){
        "Content-Type", "application/x-www-form-urlencoded; charset=utf-8"};
    r->req = (struct fanout_aws_request){
        .struct_size = sizeof r->req,
        .service = "sns",
        .region = in->region,
        .role_arn = in->role,
        .external_id = in->external_id,
        .method = "POST",
        .path = "/",
        .headers = r->headers,
        .header_count = 1,
        .body = (const uint8_t *)b->p,
        .body_len = b->len,
        .protocol = FANOUT_AWS_QUERY,
    };
    return 0;
}

/* ---- responses ---- */

/* SNS's throttling codes (Throttled is ThrottledException's code,
 * KMSThrottling KMSThrottlingException's) and the generic ones. */
static int s_throttling(const char *code)
{
    return fanout_aws_code_is_throttling(code);
}

static void s_all(const struct fanout_batch_request *r, struct fanout_outcome *out,
                  int status, const char *code, const char *msg)
{
    for (size_t i = 0; i < r->count; i++)
        fanout_outcome_set(&out[r->indexes[i]], status, code, "%s", msg);
}

/* The position in the request of the entry with this Id, or `count`. */
static size_t s_find(const struct fanout_batch_request *r, const char *id)
{
    for (size_t i = 0; i < r->count; i++) {
        char mine[32];
        snprintf(mine, sizeof mine, "%zu", r->indexes[i]);
        if (strcmp(mine, id) == 0)
            return i;
    }
    return r->count;
}

/* The one element `name` of [p, p + n) with its end tag: 1 with it in el,
 * 0 when absent (or cut off), -1 when there are two or more. */
static int s_xml_only(const char *p, size_t n, const char *name, struct fanout_xml_elem *el)
{
    struct fanout_xml_elem next;
    if (!fanout_xml_find(p, n, name, 0, el) || !el->closed)
        return 0;
    return fanout_xml_find(p + el->after, n - el->after, name, 0, &next) && next.closed ? -1
                                                                                        : 1;
}

/* The next member (with its end tag) of the list el from *pos on; 0 when
 * there is none. */
static int s_next_member(const struct fanout_xml_elem *list, size_t *pos,
                         struct fanout_xml_elem *m)
{
    if (*pos >= list->content_len ||
        !fanout_xml_find(list->content + *pos, list->content_len - *pos, "member", 0, m) ||
        !m->closed)
        return 0;
    *pos += m->after;
    return 1;
}

/* An element's trimmed text into out. */
static void s_text(const struct fanout_xml_elem *el, char *out, size_t out_len)
{
    fanout_xml_text(el->content, el->content_len, FANOUT_XML_TRIM, out, out_len);
}

/* The trimmed text of child `name` of el into out ("" when absent). */
static void s_child(const struct fanout_xml_elem *el, const char *name, char *out,
                    size_t out_len)
{
    fanout_xml_field(el->content, el->content_len, name, 0, FANOUT_XML_TRIM, out, out_len);
}

/* One member of Successful or Failed: checks its Id against the request's
 * and the ones already seen. Returns the entry's position, or `count` with
 * `why` filled. */
static size_t s_member(const struct fanout_batch_request *r,
                       const struct fanout_xml_elem *m, char *seen, const char *list,
                       char *id, size_t id_len, char *why, size_t why_len)
{
    struct fanout_xml_elem el;
    int k = s_xml_only(m->content, m->content_len, "Id", &el);
    if (k != 1) {
        snprintf(why, why_len, "a member of %s with %s Id", list,
                 k ? "more than one" : "no");
        return r->count;
    }
    s_text(&el, id, id_len);
    size_t at = s_find(r, id);
    if (at == r->count) {
        snprintf(why, why_len, "%s names Id \"%.24s\", which was not sent", list, id);
        return r->count;
    }
    if (seen[at]) {
        snprintf(why, why_len, "Id %s named twice", id);
        return r->count;
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
void sns_read(void *ctx, const struct fanout_batch_request *q, struct fanout_outcome *out)
{
    (void)ctx;
    size_t count = q->count;
    int batch = count > 1;
    const char *op = batch ? "PublishBatch" : "Publish";
    const struct fanout_aws_response *r = &q->resp;
    const char *body = r->body ? (const char *)r->body : "";
    size_t len = r->body ? r->body_len : 0;
    struct fanout_xml_elem top, res, el, list, m;
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
    if (s_xml_only(body, len, root, &top) != 1 ||
        s_xml_only(top.content, top.content_len, result, &res) != 1) {
        if (len)
            snprintf(why, sizeof why, "no complete <%s> with one <%s>", root, result);
        else
            snprintf(why, sizeof why, "an empty body");
        goto doubt;
    }
    if (!batch) {
        char mid[128];
        if (s_xml_only(res.content, res.content_len, "MessageId", &el) != 1) {
            snprintf(why, sizeof why, "no single MessageId");
            goto doubt;
        }
        s_text(&el, mid, sizeof mid);
        if (!mid[0]) {
            snprintf(why, sizeof why, "an empty MessageId");
            goto doubt;
        }
        return;
    }
    seen = calloc(count ? count : 1, 1);
    if (!seen) {
        s_all(q, out, FANOUT_RETRY, "OutOfMemory",
              "out of memory reading the answer: delivery unknown");
        return;
    }
    int ks = s_xml_only(res.content, res.content_len, "Successful", &list);
    if (ks < 0) {
        snprintf(why, sizeof why, "two <Successful> lists");
        goto doubt;
    }
    for (size_t pos = 0; ks && s_next_member(&list, &pos, &m);) {
        char id[64], mid[128];
        size_t at = s_member(q, &m, seen, "Successful", id, sizeof id, why, sizeof why);
        if (at == count)
            goto doubt;
        mid[0] = 0;
        if (s_xml_only(m.content, m.content_len, "MessageId", &el) == 1)
            s_text(&el, mid, sizeof mid);
        /* incomplete, not contradictory: this entry alone is in doubt */
        if (!mid[0])
            fanout_outcome_set(&out[q->indexes[at]], FANOUT_RETRY, "InvalidResponse",
                               "PublishBatch entry %s: no MessageId: delivery unknown", id);
    }
    int kf = s_xml_only(res.content, res.content_len, "Failed", &list);
    if (kf < 0) {
        snprintf(why, sizeof why, "two <Failed> lists");
        goto doubt;
    }
    for (size_t pos = 0; kf && s_next_member(&list, &pos, &m);) {
        char id[64];
        if (s_member(q, &m, seen, "Failed", id, sizeof id, why, sizeof why) == count)
            goto doubt;
    }
    /* an entry not mentioned leaves the answer incomplete, not contradictory:
     * that entry alone is in doubt */
    for (size_t j = 0; j < count; j++)
        if (!seen[j])
            fanout_outcome_set(&out[q->indexes[j]], FANOUT_RETRY, "InvalidResponse",
                               "PublishBatch answer names entry %zu neither in Successful "
                               "nor in Failed: delivery unknown",
                               q->indexes[j]);
    /* the answer holds together: the failed entries' outcomes */
    for (size_t pos = 0; kf && s_next_member(&list, &pos, &m);) {
        char id[64], code[64], text[200], sender[16];
        s_child(&m, "Id", id, sizeof id);
        s_child(&m, "Code", code, sizeof code);
        s_child(&m, "Message", text, sizeof text);
        s_child(&m, "SenderFault", sender, sizeof sender);
        size_t at = s_find(q, id);
        int sf = strcmp(sender, "true") == 0;
        /* throttling is retried whoever is at fault; otherwise the
         * sender's fault will not pass on a resend */
        int st = s_throttling(code) ? FANOUT_THROTTLED : sf ? FANOUT_FATAL : FANOUT_RETRY;
        fanout_outcome_set(&out[q->indexes[at]], st, code[0] ? code : "UnknownError",
                           "PublishBatch entry %s failed (%s fault): %s", id,
                           sf ? "sender" : "service", text[0] ? text : "no message");
    }
    free(seen);
    return;
doubt:
    snprintf(msg, sizeof msg, "%s answered with %s; delivery of the %zu entr%s unknown", op,
             why, count, count == 1 ? "y is" : "ies is");
    s_all(q, out, FANOUT_RETRY, "InvalidResponse", msg);
    free(seen);
}
