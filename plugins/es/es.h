/*
 * The es plugin's parts shared between es.c (lifecycle, options, send) and
 * es_api.c (destination, documents, the _bulk body and its answer). Not a
 * public header: the plugin is built with hidden visibility, so these names
 * stay inside es.so.
 */
#ifndef FANOUT_PLUGIN_ES_H
#define FANOUT_PLUGIN_ES_H

#include <stddef.h>
#include <stdint.h>

#include <fanout/helpers.h>
#include <fanout/plugin.h>

/* ---- limits ---- */

/* Index names: at most 255 bytes (OpenSearch MetadataCreateIndexService.
 * validateIndexOrAliasName, MAX_INDEX_NAME_BYTES). */
#define ES_MAX_INDEX_BYTES 255
/* Mapping types of the old index/type form: the same cap, as Elasticsearch
 * applies to type names. */
#define ES_MAX_TYPE_BYTES 255
/* Document _id: at most 512 bytes since OpenSearch 2.9 (Bulk API reference,
 * docs.opensearch.org/docs/latest/api-reference/document-apis/bulk/). */
#define ES_MAX_ID_BYTES 512

/* ---- a growable byte buffer ---- */

/* The SDK's buffer with a sticky out-of-memory flag, so a run of appends
 * needs one check at the end. */
struct es_buf {
    struct fanout_sbuf s;
    int oom; /* an append failed: the content is incomplete */
};

void es_buf_put(struct es_buf *b, const void *src, size_t n);
void es_buf_puts(struct es_buf *b, const char *s);
void es_buf_free(struct es_buf *b);

/* ---- destination ---- */

/* Mapping options (the plugin's options table, es.c). */
struct es_options {
    int64_t max_bulk_bytes;
    int64_t max_bulk_actions;
    const char *document_id;
    const char *id_field;
    const char *non_json;
    const char *signing_name;
};

struct es_dest {
    char *endpoint;     /* "https://host[:port][/path]", what the engine sends to */
    char *index;        /* the index name */
    char *doctype;      /* the mapping type of the old "index/type" form, or NULL */
    char *region;       /* the region the host name carries, or NULL */
    const char *signer; /* the SigV4 signing name the host implies: "es" or "aoss" */
    int aws_host;       /* the host is an OpenSearch Service / Serverless endpoint */
};

/* Parse "endpoint#index[/type]". 0, or -1 with what was wrong in err. */
int es_dest_parse(const char *destination, struct es_dest *out, char *err, size_t err_len);
void es_dest_free(struct es_dest *d);

/* "/<index>/_bulk" or "/<index>/<type>/_bulk", URI-encoded; NULL when out
 * of memory. */
char *es_bulk_path(const struct es_dest *d);

/* ---- documents ---- */

enum es_id_mode {
    ES_ID_SEQUENCE = 0, /* <sequence>-<sub-sequence>-<hash of source ARN and key> */
    ES_ID_KEY,          /* the record's key; a DynamoDB REMOVE deletes it */
    ES_ID_FIELD,        /* a top-level field of the document */
    ES_ID_NONE,         /* the service picks one (a resent record is a new document) */
};

struct es_doc_opts {
    enum es_id_mode id_mode;
    const char *id_field; /* for ES_ID_FIELD */
    int refuse_non_json;  /* 1: refuse data that is not a JSON object; 0: wrap it */
};

/*
 * Append the bulk entry of one message (collapse none: one record) to `b`:
 * the action line and, except for a delete, the document line, each ending
 * with '\n'. Returns 0 (and *is_delete), or -1 when the record cannot become
 * a document: then `o` says why (FANOUT_FATAL, or FANOUT_RETRY when out of
 * memory) and `b` is as it was.
 */
int es_entry_append(struct es_buf *b, const struct es_doc_opts *opts,
                    const struct fanout_message *m, int *is_delete,
                    struct fanout_outcome *o);

/*
 * Read the answer (HTTP `status`, `body`) to the _bulk request `req` of
 * `count` entries, whose outcomes are *outs[0..count). The actions and ids
 * the answer must match are read back from `req`. Fills the outcome of each
 * entry that did not succeed. Returns 0, or -1 when the answer is not a
 * _bulk answer for these entries or contradicts itself: then every outcome
 * is FANOUT_RETRY with the reason.
 */
int es_bulk_read(const uint8_t *req, size_t req_len, long status, const uint8_t *body,
                 size_t len, size_t count, struct fanout_outcome *const *outs);

#endif
