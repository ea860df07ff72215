/* The former DynamoDB conversion (jansson trees), the reference of the
 * differential checks: see ddb_ref.c. */
#ifndef FANOUT_TESTS_DDB_REF_H
#define FANOUT_TESTS_DDB_REF_H

#include <jansson.h>

#include "common/util.h"

int fanout_ddb_ref_image_to_json(const json_t *image, int convert, struct fanout_sbuf *out,
                                 char *err, size_t err_len);
int fanout_ddb_ref_key(const json_t *keys, struct fanout_sbuf *out, char *err,
                       size_t err_len);

#endif
