/* The requests to a mapping table in DynamoDB, for the store and the
 * management commands alike. */
#include "core/ddb_table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "common/util.h"

#define S_DDB_JSON_VERSION "1.0"
/* Query/Scan Limit: a positive integer (larger pages are cut at 1 MB anyway). */
#define S_PAGE_LIMIT_MAX 100000

int fanout_ddb_table_ok(const char *t)
{
    size_t n = strlen(t);
    if (strncmp(t, "arn:", 4) == 0)
        return n <= 1024 && strstr(t, ":table/") != NULL;
    if (n < FANOUT_DDB_TABLE_MIN || n > FANOUT_DDB_TABLE_MAX)
        return 0;
    for (; *t; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') ||
              (*t >= '0' && *t <= '9') || *t == '_' || *t == '.' || *t == '-'))
            return 0;
    return 1;
}

int fanout_ddb_page_limit(long *out, char *err, size_t err_len)
{
    const char *v = getenv("FANOUT_DDB_PAGE_LIMIT");
    *out = 0;
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < 1 || n > S_PAGE_LIMIT_MAX) {
        snprintf(err, err_len,
                 "FANOUT_DDB_PAGE_LIMIT: expected items per page from 1 to %d, got \"%s\"",
                 S_PAGE_LIMIT_MAX, v);
        return -1;
    }
    *out = n;
    return 0;
}

static int s_invalid(struct fanout_json_reply *r, const char *fmt, const char *what)
{
    fanout_strlcpy(r->code, "InvalidResponse", sizeof r->code);
    snprintf(r->message, sizeof r->message, fmt, what);
    return -1;
}

int fanout_json_call(const char *service, const char *json_version, const char *target,
                     const char *region, const json_t *body, struct fanout_json_reply *r)
{
    memset(r, 0, sizeof *r);
    char content_type[64];
    snprintf(content_type, sizeof content_type, "application/x-amz-json-%s", json_version);
    const struct fanout_aws_header headers[] = {
        {"Content-Type", content_type},
        {"X-Amz-Target", target},
    };
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (!text) {
        fanout_strlcpy(r->code, "OutOfMemory", sizeof r->code);
        fanout_strlcpy(r->message, "out of memory", sizeof r->message);
        return -1;
    }
    const struct fanout_aws_request req = {
        .struct_size = sizeof req,
        .service = service,
        .region = region,
        .method = "POST",
        .path = "/",
        .headers = headers,
        .header_count = sizeof headers / sizeof *headers,
        .body = (const uint8_t *)text,
        .body_len = strlen(text),
        .protocol = FANOUT_AWS_JSON,
    };
    struct fanout_aws_response resp = {.struct_size = sizeof resp};
    const struct fanout_aws_request *reqs[] = {&req};
    struct fanout_aws_response *resps[] = {&resp};
    fanout_aws_call(reqs, resps, 1);
    free(text);
    int rc = -1;
    if (resp.result != FANOUT_AWS_OK) {
        r->status = resp.status;
        r->attempts = resp.attempts;
        fanout_strlcpy(r->code, resp.error_code, sizeof r->code);
        fanout_strlcpy(r->message, resp.error_message, sizeof r->message);
    } else {
        json_error_t je;
        r->json = json_loadb(resp.body ? (const char *)resp.body : "", resp.body_len,
                             JSON_REJECT_DUPLICATES, &je);
        if (json_is_object(r->json)) {
            rc = 0;
        } else {
            s_invalid(r, "the reply is not a JSON object: %s",
                      r->json ? "another JSON value" : je.text);
            json_decref(r->json);
            r->json = NULL;
        }
    }
    fanout_aws_response_clean_up(&resp);
    return rc;
}

int fanout_ddb_call(const char *region, const char *op, const json_t *body,
                    struct fanout_json_reply *r)
{
    char target[64];
    snprintf(target, sizeof target, "DynamoDB_20120810.%s", op);
    return fanout_json_call("dynamodb", S_DDB_JSON_VERSION, target, region, body, r);
}

json_t *fanout_ddb_item_key(const char *source_arn, const char *id)
{
    return json_pack("{s:{s:s}, s:{s:s}}", "sourceArn", "S", source_arn, "id", "S", id);
}

/* Send `body` (stolen; NULL: out of memory). */
static int s_send(const char *region, const char *op, json_t *body,
                  struct fanout_json_reply *r)
{
    int rc = fanout_ddb_call(region, op, body, r);
    json_decref(body);
    return rc;
}

int fanout_ddb_get_item(const char *region, const char *table, const char *source_arn,
                        const char *id, int consistent, struct fanout_json_reply *r)
{
    return s_send(region, "GetItem",
                  json_pack("{s:s, s:o, s:b}", "TableName", table, "Key",
                            fanout_ddb_item_key(source_arn, id), "ConsistentRead",
                            consistent),
                  r);
}

int fanout_ddb_put_item(const char *region, const char *table, const json_t *item,
                        const char *condition, struct fanout_json_reply *r)
{
    json_t *body = json_pack("{s:s, s:O}", "TableName", table, "Item", item);
    if (body && condition &&
        json_object_set_new(body, "ConditionExpression", json_string(condition)) != 0) {
        json_decref(body);
        body = NULL;
    }
    return s_send(region, "PutItem", body, r);
}

int fanout_ddb_set_active(const char *region, const char *table, const char *source_arn,
                          const char *id, int active, struct fanout_json_reply *r)
{
    return s_send(region, "UpdateItem",
                  json_pack("{s:s, s:o, s:s, s:s, s:{s:{s:b}}}", "TableName", table, "Key",
                            fanout_ddb_item_key(source_arn, id), "UpdateExpression",
                            "SET active = :active", "ConditionExpression",
                            "attribute_exists(id)", "ExpressionAttributeValues", ":active",
                            "BOOL", active),
                  r);
}

int fanout_ddb_delete_item(const char *region, const char *table, const char *source_arn,
                           const char *id, struct fanout_json_reply *r)
{
    return s_send(region, "DeleteItem",
                  json_pack("{s:s, s:o, s:s}", "TableName", table, "Key",
                            fanout_ddb_item_key(source_arn, id), "ConditionExpression",
                            "attribute_exists(id)"),
                  r);
}

int fanout_ddb_describe_table(const char *region, const char *table,
                              struct fanout_json_reply *r)
{
    return s_send(region, "DescribeTable", json_pack("{s:s}", "TableName", table), r);
}

int fanout_ddb_read_pages(const char *region, const char *op, json_t *body, long limit,
                          fanout_ddb_item_fn *fn, void *ctx, struct fanout_json_reply *r)
{
    memset(r, 0, sizeof *r);
    if (limit && json_object_set_new(body, "Limit", json_integer(limit)) != 0)
        return fanout_ddb_call(region, op, NULL, r); /* out of memory */
    json_t *start = NULL;
    /* every LastEvaluatedKey met, by its sorted compact text: a key met
     * again sends the pages round a cycle, each adding its items */
    json_t *seen = json_object();
    int rc = seen ? 0 : fanout_ddb_call(region, op, NULL, r);
    while (rc == 0) {
        if (start && json_object_set(body, "ExclusiveStartKey", start) != 0) {
            rc = fanout_ddb_call(region, op, NULL, r);
            break;
        }
        if (fanout_ddb_call(region, op, body, r) != 0) {
            rc = -1;
            break;
        }
        json_t *reply = r->json, *items = json_object_get(reply, "Items");
        r->json = NULL;
        if (!json_is_array(items)) {
            json_decref(reply);
            rc = s_invalid(r, "the reply has no \"%s\" list", "Items");
            break;
        }
        size_t i;
        json_t *item;
        json_array_foreach (items, i, item) {
            if (fn(ctx, item) != 0) {
                rc = -2;
                break;
            }
        }
        json_t *next = json_object_get(reply, "LastEvaluatedKey");
        if (rc != 0 || !json_is_object(next) || json_object_size(next) == 0) {
            json_decref(reply);
            break;
        }
        char *text = json_dumps(next, JSON_COMPACT | JSON_SORT_KEYS);
        if (text && json_object_get(seen, text)) {
            char q[FANOUT_QUOTE_SIZE];
            rc = s_invalid(r,
                           "it returned the LastEvaluatedKey %s a second time (its pages "
                           "go round in a cycle)",
                           fanout_quote(q, text));
        } else if (!text || json_object_set_new(seen, text, json_true()) != 0) {
            rc = fanout_ddb_call(region, op, NULL, r); /* out of memory */
        }
        free(text);
        if (rc != 0) {
            json_decref(reply);
            break;
        }
        json_decref(start);
        start = json_incref(next);
        json_decref(reply);
    }
    json_decref(start);
    json_decref(seen);
    return rc;
}
