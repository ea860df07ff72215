/* DynamoDB Streams attribute values (AttributeValue JSON) to plain JSON, and
 * the record key string. */
#ifndef FANOUT_DDB_H
#define FANOUT_DDB_H

#include <jansson.h>

#include "common/util.h"

struct fanout_jnode;

/* Append an image (a map of attribute name -> AttributeValue) as JSON.
 * With `convert` 0, the image is written as DynamoDB JSON (compact, order
 * kept). With `convert` non-zero, as plain JSON: S -> string, N -> JSON
 * number with exactly the digits DynamoDB sent (validated, never rounded
 * through a double), B -> its base64 string, BOOL -> true/false, NULL ->
 * null, M -> object, L -> array, SS/NS/BS -> arrays of those. `image` NULL
 * appends {}. Returns 0, or -1 with err naming the attribute path and what
 * was expected, e.g. `attribute "nested.l[2]": unknown DynamoDB type "X"
 * (expected one of S, N, B, BOOL, NULL, M, L, SS, NS, BS)`. On failure the
 * buffer is restored to its length at entry. */
int fanout_ddb_image_write(const struct fanout_jnode *image, int convert,
                           struct fanout_sbuf *out, char *err, size_t err_len);

/* fanout_ddb_image_write for an image given as its text in the event (an
 * object the event's scan accepted; NULL for none): with `convert`, written
 * in one pass over the text, checked as it goes; the image's nodes are
 * scanned into `nodes` only when that pass gives up (pass-through mode, a
 * value in error: the message is then fanout_ddb_image_write's). Returns 0,
 * -1 with err as fanout_ddb_image_write, -2 when out of memory. */
int fanout_ddb_image_text(const char *text, size_t len, int convert,
                          struct fanout_arena *nodes, struct fanout_sbuf *out, char *err,
                          size_t err_len);

/* An image in an event's text that is not validated yet, at its '{'
 * (`end`: the end of the text), converted to plain JSON in one pass that
 * checks what the event's scan would: written into `out` (reset first),
 * the same bytes as fanout_ddb_image_text with `convert`, when the image
 * has DynamoDB's common shape read strictly (S, plain N, BOOL, NULL, M and
 * L values only; every string printable ASCII without escapes; at most 32
 * names per object, none repeated). Returns the end of the image's text,
 * with its attribute count in *count; NULL for anything else, valid or not
 * (out's contents then undefined): the scan then reads the image as
 * before. What it accepts, the scan's quick pass over an image accepts too
 * (fanout_jscan_each_skip_shape). */
const char *fanout_ddb_image_shape(const char *p, const char *end, size_t *count,
                                   struct fanout_sbuf *out);

/* Images of the shapes met last (the same attributes in the same order,
 * the same BOOL and NULL values, lists as long), for
 * fanout_ddb_image_seen: one per event read. NULL when out of memory. */
struct fanout_ddb_seen;
struct fanout_ddb_seen *fanout_ddb_seen_new(void);
void fanout_ddb_seen_free(struct fanout_ddb_seen *seen);

/* fanout_ddb_image_shape, the same answer, but an image of a shape `seen`
 * has (the text between its S and N values the same as that of an image
 * taken before) is read piece by piece: the pieces compared, the values
 * checked as fanout_ddb_image_shape checks them. An image it takes in
 * full is kept in `seen`. `out` NULL: the image only read (taken only
 * when of a shape kept), as the scan reads an OldImage: checked as the
 * scan's quick pass over an image checks it (fanout_jscan_each_skip_shape:
 * an N's text a string like any other), so that an image taken so the
 * quick pass takes too, with the same end and count. */
const char *fanout_ddb_image_seen(struct fanout_ddb_seen *seen, const char *p,
                                  const char *end, size_t *count, struct fanout_sbuf *out);

/* Keys in an event's text that are not validated yet, at its '{' (`end`:
 * the end of the text), read in one pass that checks what the event's scan
 * would: their key string written into `out` (reset first), the same bytes
 * as fanout_ddb_key_text writes, when each key attribute is an S, plain N
 * or valid B string of printable ASCII without escapes (at most 32 names,
 * none repeated). Returns the end of the object with its member count in
 * *count; NULL for anything else (out then empty): the scan reads Keys as
 * before and fanout_ddb_key_text makes the key. What it accepts, the scan's
 * quick pass accepts too (fanout_jscan_each_skip_shape). */
const char *fanout_ddb_keys_shape(const char *p, const char *end, size_t *count,
                                  struct fanout_sbuf *out);

/* fanout_ddb_keys_shape, the same answer, but Keys of the shape of those
 * read last (the same text between their values) are read piece by
 * piece, as fanout_ddb_image_seen reads images. */
const char *fanout_ddb_keys_seen(struct fanout_ddb_seen *seen, const char *p,
                                 const char *end, size_t *count, struct fanout_sbuf *out);

/* Append a DynamoDB Streams record as one object ("wholeRecord"): its
 * members eventName, eventID, dynamodb.Keys, .OldImage, .NewImage,
 * .SequenceNumber, .ApproximateCreationDateTime in that order, those
 * present only. Keys and images as fanout_ddb_image_write writes them
 * (plain JSON with `convert`, else DynamoDB JSON), the others as they came.
 * Returns 0, or -1 with err naming the field, e.g. `field
 * "dynamodb.OldImage": attribute "a": unknown DynamoDB type "X" (...)`,
 * the buffer as it was. */
int fanout_ddb_record_write(const struct fanout_jnode *record, int convert,
                            struct fanout_sbuf *out, char *err, size_t err_len);

/* Append the key string of a record's `Keys`: each key attribute's value in
 * the order of the object, joined by '|'; S and N as their text, B as its
 * base64 text. Returns 0, or -1 with err (a key attribute of another type,
 * an empty Keys object, a malformed value). */
int fanout_ddb_key_write(const struct fanout_jnode *keys, struct fanout_sbuf *out,
                         char *err, size_t err_len);

/* fanout_ddb_key_write for Keys given as its text in the event (an object
 * the event's scan accepted): the common shape read straight from the
 * text, anything else from its nodes, scanned into `nodes` (the errors
 * are fanout_ddb_key_write's). Returns 0, -1 with err, -2 when out of
 * memory. */
int fanout_ddb_key_text(const char *text, size_t len, struct fanout_arena *nodes,
                        struct fanout_sbuf *out, char *err, size_t err_len);

/* Zero when `v` (Keys or an image, as scanned) is what jansson, which read
 * them before, refused: neither an object nor an array, or holding a member
 * name with U+0000, an integer beyond 64 bits, a number beyond a double's
 * range. The event reader keeps those records failing as they did
 * ("cannot be read"). */
int fanout_ddb_readable(const struct fanout_jnode *v);

/* The same two conversions from jansson trees (the CLI reads DynamoDB
 * items so): the tree is turned into nodes, then converted as above. */
int fanout_ddb_image_to_json(const json_t *image, int convert, struct fanout_sbuf *out,
                             char *err, size_t err_len);
int fanout_ddb_key(const json_t *keys, struct fanout_sbuf *out, char *err, size_t err_len);

#endif
