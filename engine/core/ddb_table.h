/* The requests to a mapping table in DynamoDB (hash key sourceArn, range
 * key id, one item per mapping), shared by the store and the management
 * commands, over the AWS layer's JSON protocol. */
#ifndef FANOUT_DDB_TABLE_H
#define FANOUT_DDB_TABLE_H

#include <jansson.h>

/* DynamoDB's rule for table names: 3 to 255 of [A-Za-z0-9_.-]. */
#define FANOUT_DDB_TABLE_MIN 3
#define FANOUT_DDB_TABLE_MAX 255

/* Is `t` a table name by that rule, or a table's ARN? */
int fanout_ddb_table_ok(const char *t);

/* The items per Query or Scan page from FANOUT_DDB_PAGE_LIMIT (1 to
 * 100000), 0 when unset (DynamoDB's own pages). -1 with err when malformed. */
int fanout_ddb_page_limit(long *out, char *err, size_t err_len);

/* The answer of one request. On failure `code` is the service's error code
 * ("" when it gave none; "InvalidResponse" when the answer cannot be read,
 * "OutOfMemory") and `message` its message. */
struct fanout_json_reply {
    json_t *json; /* on success: the answer, a JSON object (the caller's) */
    long status;  /* on failure: the HTTP status, 0 when there was none */
    unsigned attempts;
    char code[128];
    char message[512];
};

/* One request of a JSON-protocol service: POST / with X-Amz-Target `target`
 * (e.g. "Kinesis_20131202.DescribeStreamSummary") and Content-Type
 * application/x-amz-json-<json_version> ("1.0" for DynamoDB, "1.1" for
 * Kinesis). `region` NULL: the default. Returns 0 with r->json, or -1. */
int fanout_json_call(const char *service, const char *json_version, const char *target,
                     const char *region, const json_t *body, struct fanout_json_reply *r);

/* A DynamoDB request: `op` is the action (GetItem, Query...). */
int fanout_ddb_call(const char *region, const char *op, const json_t *body,
                    struct fanout_json_reply *r);

/* The key of a mapping item. New reference, NULL when out of memory. */
json_t *fanout_ddb_item_key(const char *source_arn, const char *id);

/* GetItem of one mapping: on success r->json's "Item" is the item, absent
 * when there is none. */
int fanout_ddb_get_item(const char *region, const char *table, const char *source_arn,
                        const char *id, int consistent, struct fanout_json_reply *r);

/* PutItem under `condition` (NULL: none). */
int fanout_ddb_put_item(const char *region, const char *table, const json_t *item,
                        const char *condition, struct fanout_json_reply *r);

/* UpdateItem SET active, only if the mapping exists (else the code
 * ConditionalCheckFailedException). */
int fanout_ddb_set_active(const char *region, const char *table, const char *source_arn,
                          const char *id, int active, struct fanout_json_reply *r);

/* DeleteItem, only if the mapping exists (as above). */
int fanout_ddb_delete_item(const char *region, const char *table, const char *source_arn,
                           const char *id, struct fanout_json_reply *r);

/* DescribeTable of `table`: r->json's "Table". */
int fanout_ddb_describe_table(const char *region, const char *table,
                              struct fanout_json_reply *r);

/* Called with each item read; non-zero stops the read. */
typedef int(fanout_ddb_item_fn)(void *ctx, const json_t *item);

/* Every item of a Query or Scan (`op`), page after page: `body` holds the
 * table and the conditions; Limit `limit` (0: DynamoDB's own pages) and
 * ExclusiveStartKey are set here. Only the absence of LastEvaluatedKey ends
 * the read (pages can be empty and not be the last). Returns 0; -1 with r
 * (a failed request, an answer without "Items", a LastEvaluatedKey met
 * before in this read: a cycle); or -2 when `fn` stopped it. */
int fanout_ddb_read_pages(const char *region, const char *op, json_t *body, long limit,
                          fanout_ddb_item_fn *fn, void *ctx, struct fanout_json_reply *r);

#endif
