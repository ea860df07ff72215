/* Differential check of the DynamoDB conversion: see ddb_diff.c. */
#ifndef FANOUT_TESTS_DDB_DIFF_H
#define FANOUT_TESTS_DDB_DIFF_H

#include <stddef.h>

/* Returns 1 when both conversions agree on `text` (taken as an image and as
 * a Keys object), 0 when the scanner refuses it (the event reader never
 * gets that far), -1 with `why` when they differ. */
int ddb_diff(const char *text, size_t len, char *why, size_t why_len);

/* Whether [text, end) is one JSON object of `count` members, no name
 * repeated: what the event scan's quick pass takes of an image, and so
 * all fanout_ddb_image_seen may take reading only (its numbers' texts
 * strings like any other, not checked as fanout_ddb_image_shape checks
 * them). */
int ddb_diff_object(const char *text, const char *end, size_t count);

#endif
