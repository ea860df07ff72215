/* Per-target filters: event patterns in the syntax of Lambda event filtering
 * and EventBridge, compiled once per mapping load and matched against each
 * record's view (the shape Lambda's own filtering sees).
 *
 * The rules followed (AWS: "Control which events Lambda sends to your
 * function", "Content filtering in Amazon EventBridge event patterns",
 * "Comparison operators for use in event patterns"):
 *
 * - A pattern is a JSON object. Each member names a field of the record:
 *   an object value is a pattern for a nested object, an array value lists
 *   the alternatives for that field (one must match). Every member must
 *   match (and); "$or": [{...}, {...}] at any level matches when one of its
 *   patterns does.
 * - Alternatives: a string, number, true, false or null matches that value
 *   (numbers by value: 300, 300.0 and 3e2 are equal; "300" is a string, not
 *   a number); or an object with one operator:
 *     {"prefix": "us-"}, {"suffix": ".png"} (strings only), also
 *     {"prefix": {"equals-ignore-case": "eventb"}} and the same for suffix;
 *     {"equals-ignore-case": "alice"};
 *     {"wildcard": "img-*.png"}: '*' matches any run of characters (none
 *       too); "\\*" (JSON for \*) is a literal '*' and "\\\\" a literal
 *       backslash; any other backslash and two '*' in a row are errors;
 *     {"anything-but": "x"} / 123 / ["a", "b"] (strings only or numbers
 *       only) / {"prefix": "x"} / {"suffix": "x"} /
 *       {"equals-ignore-case": "x" or [...]} / {"wildcard": "x" or [...]}:
 *       a value present and not one of those (the operator forms consider
 *       strings only);
 *     {"numeric": [">", 0, "<=", 5]}: at most one lower bound (">", ">=")
 *       and one upper bound ("<", "<="), lower below upper, or ["=", x];
 *       bounds between -5e9 and 5e9 (EventBridge's limit); numbers only;
 *     {"exists": true|false}: the field is present with a value / absent;
 *     {"cidr": "10.0.0.0/24"} or an IPv6 prefix: strings holding an address
 *       of that family in the range (a bare address is a /32 or /128).
 *   Case folding (equals-ignore-case) is ASCII's; other bytes compare
 *   exactly.
 * - Values: when the record's value is an array, the field matches when one
 *   of its elements does (nested arrays are flattened). Objects are not
 *   values: operators work on leaves only, so {"exists": true} does not
 *   match an object and {"exists": false} does (EventBridge's rule).
 *   For a nested pattern on an array of objects, one element must match the
 *   whole nested pattern.
 * - A field that is missing (or holds no leaf value: an object, an empty
 *   array) matches only {"exists": false}; anything-but needs a value.
 * - Records whose `data` is not JSON never match a pattern that names
 *   "data" at its top level (or in a top-level "$or" branch): Lambda drops
 *   them too.
 *
 * Errors name the path of the offending part, e.g.
 *   data.temperature[0]: "numeric" expects an operator (<, <=, =, >, >=)
 *   at position 0, got a number
 */
#ifndef FANOUT_FILTER_H
#define FANOUT_FILTER_H

#include <stddef.h>

#include <jansson.h>

struct fanout_filter;
struct fanout_rec;

/* Compile a pattern (a JSON object). NULL with err (path: rule) when it is
 * not a valid pattern, or "out of memory". */
struct fanout_filter *fanout_filter_compile(const json_t *pattern, char *err,
                                            size_t err_len);
void fanout_filter_free(struct fanout_filter *f);

/* Whether the pattern names "data" at its top level (see above). */
int fanout_filter_names_data(const struct fanout_filter *f);

/* Whether a record view matches. `data_is_json` 0: the record's data is
 * not JSON (its view has no "data"): a pattern naming data fails. */
int fanout_filter_match(const struct fanout_filter *f, const json_t *view,
                        int data_is_json);

/* ---- record views, built once per record per invocation ----------------- */

/* The views of one event's records, built when a filter first asks.
 * Kinesis: the members of the record's "kinesis" object, with "data" the
 * decoded data parsed as JSON when it is JSON (else absent); a KPL user
 * record has its own partitionKey and data. DynamoDB Streams: the stream
 * record as received. SNS: the record as received. */
struct fanout_filter_views;

/* For an event of `count` records (the raw records' index space). */
struct fanout_filter_views *fanout_filter_views_new(size_t count);
void fanout_filter_views_free(struct fanout_filter_views *v);

/* Whether decoded record `r` (raw record number `raw_index` of the event)
 * passes filter `f`. -1 when out of memory. */
int fanout_filter_record(struct fanout_filter_views *v, const struct fanout_filter *f,
                         const struct fanout_rec *r, size_t raw_index);

#endif
