/* Mappings (targets) and the mapping stores behind one interface. */
#ifndef FANOUT_MAPPING_H
#define FANOUT_MAPPING_H

#include <stdarg.h>

#include <fanout/plugin.h>
#include <jansson.h>

struct fanout_filter;

/* One validated mapping. Strings point into `json`, which it owns. */
struct fanout_mapping {
    const char *source_arn;
    const char *id;
    const char *type;
    const char *destination;
    const char *region;      /* NULL: the function's region */
    const char *role;        /* NULL: no AssumeRole */
    const char *external_id; /* NULL unless role */
    int active;
    int collapse; /* enum fanout_collapse, or -1 for the plugin's default */
    int parallel;
    int convert_ddb;
    int deaggregate;
    int append_newlines; /* "appendNewlines": a '\n' after each record's data */
    int whole_record;    /* "wholeRecord": DynamoDB records sent whole, not the NewImage */
    /* "filter": the compiled event pattern (core/filter.h); NULL: every
     * record goes to the target */
    struct fanout_filter *filter;
    /* Settings that aws-lambda-fanout accepted and ignored for this type
     * (collapse on lambda, es, memcached, redis; role, region, externalId on
     * memcached, redis): cleared above, and named here for the one warning
     * per load ("mapping \"id\" (#n): ignored, as aws-lambda-fanout did:
     * ..."). NULL when nothing is ignored. */
    char *ignored;
    /* "onFailure": where the records this target could not deliver go, as
     * a mapping of the same source with id "<id>:onFailure" (collapse none,
     * no onFailure of its own); NULL when not set. */
    struct fanout_mapping *on_failure;
    json_t *json;  /* the whole mapping object */
    json_t *extra; /* the fields beyond the schema: plugin options */
};

/* The schema's field names, in the order of the README's table. */
extern const char *const fanout_mapping_fields[];

/* The message of a mapping refused for one field, the same wherever the
 * mapping came from: `mapping "<id>" (#<index>): field "<field>": <rule>`
 * (id NULL: `mapping #<index>: ...`) into err. Returns -1. */
int fanout_mapping_vproblem(char *err, size_t err_len, size_t index, const char *id,
                            const char *field, const char *fmt, va_list ap)
    FANOUT_PRINTF(6, 0);

/* Validate one mapping object (`index` is its position, for messages).
 * Returns the mapping, or NULL with err naming the mapping (id when it has
 * one, else its position), the field and the rule, e.g.
 *   mapping "to-sqs" (#2): field "active": expected a boolean (true or
 *   false), got a string */
struct fanout_mapping *fanout_mapping_parse(const json_t *obj, size_t index, char *err,
                                            size_t err_len);
void fanout_mapping_free(struct fanout_mapping *m);

/* "none", "JSON", "concat", "concat-b64" (case-insensitive) -> mode; -1 if
 * unknown. */
int fanout_collapse_parse(const char *s);
const char *fanout_collapse_name(int mode);

/* What is known of an invalid mapping, to decide whose records it fails
 * (see "Invalid mappings" in the README). */
struct fanout_mapping_problem {
    char *source_arn; /* its "sourceArn" when a non-empty string, else NULL:
                         it may belong to any source */
    char *id;         /* its "id" when a non-empty string, else NULL */
    int active;       /* 1, 0, or -1 when unreadable (counts as active) */
};

/* A loaded list: the valid mappings and a message per invalid one, with
 * what is known of it (details[i] goes with problems[i]). */
struct fanout_mapping_set {
    size_t count;
    struct fanout_mapping **items;
    size_t problem_count;
    char **problems;
    struct fanout_mapping_problem *details;
};

/* Add an invalid mapping to `set` (`problems` and `details` must have room
 * for one more). Strings are copied; returns -1 when out of memory. */
int fanout_mapping_set_add_problem(struct fanout_mapping_set *set, const char *message,
                                   const char *source_arn, const char *id, int active);

/* Whether an invalid mapping fails the records of `source_arn`: it is, or
 * may be, active, and its sourceArn is that string or unreadable. */
int fanout_mapping_problem_applies(const struct fanout_mapping_problem *p,
                                   const char *source_arn);

/* FANOUT_SKIP_INVALID_MAPPINGS=true: invalid mappings are skipped instead
 * of failing their source's records. -1 (with err) for another value. */
int fanout_skip_invalid_mappings(char *err, size_t err_len);

/* Parse a mapping document: a JSON array of mapping objects. Returns -1
 * with err only when the document itself is unusable; invalid mappings go
 * to `problems` and the valid ones are kept. Duplicate (sourceArn, id)
 * pairs are problems too (the first one wins). */
int fanout_mapping_set_parse(const char *text, size_t len, const char *origin,
                             struct fanout_mapping_set *set, char *err, size_t err_len);
void fanout_mapping_set_clean_up(struct fanout_mapping_set *set);

/* ---- stores ---- */

struct fanout_store;

struct fanout_store_ops {
    const char *kind;
    /* The active mappings of `source_arn`, and (when `bad` is not NULL)
     * the problems of its invalid mappings that may be active (see
     * fanout_mapping_problem_applies), with their messages. Borrowed: valid
     * until the next lookup. Returns 0, or -1 with err when the store cannot
     * answer. */
    int (*lookup)(struct fanout_store *s, const char *source_arn,
                  struct fanout_mapping *const **out, size_t *count, const size_t **bad,
                  size_t *bad_count, const struct fanout_mapping_set **bad_set, char *err,
                  size_t err_len);
    /* Every mapping of the store, active or not, and the problems found
     * (for `fanout validate`). Borrowed like lookup. */
    int (*all)(struct fanout_store *s, const struct fanout_mapping_set **out, char *err,
               size_t err_len);
    void (*destroy)(struct fanout_store *s);
};

struct fanout_store {
    const struct fanout_store_ops *ops;
};

/* The local JSON file store. The file is read now (failing when it cannot
 * be read or is not a JSON array) and re-read when its modification time or
 * size changes; a re-read that fails keeps the last good mappings and logs
 * why. Invalid mappings are logged once per load. */
struct fanout_store *fanout_store_file_new(const char *path, char *err, size_t err_len);

static inline int fanout_store_lookup(struct fanout_store *s, const char *source_arn,
                                      struct fanout_mapping *const **out, size_t *count,
                                      char *err, size_t err_len)
{
    return s->ops->lookup(s, source_arn, out, count, NULL, NULL, NULL, err, err_len);
}

/* The lookup with the invalid mappings of the source: bad[0..bad_count)
 * are indexes into (*bad_set)->problems and ->details. */
static inline int fanout_store_lookup_checked(
    struct fanout_store *s, const char *source_arn, struct fanout_mapping *const **out,
    size_t *count, const size_t **bad, size_t *bad_count,
    const struct fanout_mapping_set **bad_set, char *err, size_t err_len)
{
    return s->ops->lookup(s, source_arn, out, count, bad, bad_count, bad_set, err, err_len);
}

static inline void fanout_store_destroy(struct fanout_store *s)
{
    if (s)
        s->ops->destroy(s);
}

#endif
