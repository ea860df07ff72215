/* The DynamoDB mapping store, and the mapping <-> DynamoDB item codec that
 * the store and the management commands share. */
#ifndef FANOUT_STORE_DDB_H
#define FANOUT_STORE_DDB_H

#include <jansson.h>

#include "core/mapping.h"

/* A mapping from a DynamoDB item (an object of AttributeValue JSON, as in a
 * Query reply's "Items"). Types are read strictly: "active" must be
 * {"BOOL": ...} ({"S":"true"} is a validation message naming the mapping,
 * the field, the type found and the type expected), strings {"S": ...}.
 * Then the same validation as the file store (fanout_mapping_parse).
 * Returns NULL with err. */
struct fanout_mapping *fanout_mapping_from_item(const json_t *item, size_t index, char *err,
                                                size_t err_len);

/* The text of an item's string attribute `name` ({"S": "..."}), or NULL
 * when it has none or it is of another type. */
const char *fanout_ddb_item_text(const json_t *item, const char *name);

/* The DynamoDB item for a mapping (strings as S, booleans as BOOL, plugin
 * option fields as their JSON types: string S, integer N, boolean BOOL).
 * New reference, or NULL when out of memory. */
json_t *fanout_mapping_to_item(const struct fanout_mapping *m);

/* The table to use: FANOUT_TABLE when set, else
 * "<AWS_LAMBDA_FUNCTION_NAME>Targets". Returns buf, or NULL (with err) when
 * neither is known. */
const char *fanout_store_ddb_table_name(char *buf, size_t len, char *err, size_t err_len);

/* The DynamoDB store over `table` (hash key sourceArn, range key id) in
 * `region` (NULL: the default). Lookups Query by source ARN for active
 * mappings, following LastEvaluatedKey to the last page, and cache the
 * result per source for FANOUT_MAPPING_REFRESH_SECONDS (default 60). A
 * failed refresh keeps serving the last good mappings for at most
 * FANOUT_MAPPING_STALE_SECONDS (default 900) and logs why; after that, or
 * with nothing cached, the lookup fails. Requests go through the AWS layer
 * (fanout_aws_call: AWS_ENDPOINT_URL_DYNAMODB points it at dynalite). */
struct fanout_store *fanout_store_ddb_new(const char *table, const char *region, char *err,
                                          size_t err_len);

#endif
