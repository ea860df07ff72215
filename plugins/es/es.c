/*
 * The `es` destination: records indexed into an Amazon OpenSearch Service
 * (or Elasticsearch) domain, or an OpenSearch Serverless collection, with
 * the _bulk API, signed with SigV4 through the engine's AWS layer.
 *
 * Destination: `<endpoint>#<index>` or `<endpoint>#<index>/<type>` (the
 * mapping type of Elasticsearch before 7). The endpoint is a host name
 * (https), e.g. search-mydomain-abc123.us-east-1.es.amazonaws.com, or a URL
 * with scheme and port, e.g. http://127.0.0.1:9200. The region comes from
 * the mapping's `region`, else from the host name (<x>.<region>.es.
 * amazonaws.com, <x>.<region>.aoss.amazonaws.com), else from the
 * environment (AWS_REGION...). The signing name is "es", or "aoss" for a
 * Serverless collection host, unless `signingName` says otherwise.
 * AWS_ENDPOINT_URL_ES replaces the endpoint (tests).
 *
 * One record is one bulk action (collapse `none` only). The document is
 * the record's data when it is a JSON object (DynamoDB images: plain JSON
 * with convertDDB, DynamoDB JSON without); other data (text, arrays,
 * scalars, binary) becomes {"data": "<text>"}, or {"dataBase64": "..."}
 * when it is not UTF-8, unless `nonJson: "refuse"` makes it a permanent
 * failure. Document ids (`documentId`, `idField`):
 *   sequence (default)  <sequence number>-<sub-sequence>-<16 hex digits of
 *                       FNV-1a over source ARN and key>: the same record
 *                       always has the same id, so a resent record replaces
 *                       itself instead of being indexed twice
 *   key                 the record's key (Kinesis partition key, DynamoDB key
 *                       values joined by '|'): the index keeps the latest
 *                       version per key, and a DynamoDB REMOVE deletes it.
 *                       When a change fails, later changes of the same key
 *                       in that call are resent with it, so the newest lands
 *                       last (use parallel: false for order across calls)
 *   none                the service picks an id; a resent record is a new
 *                       document (what Serverless time series and vector
 *                       collections require)
 *   idField: "name"     the document's top-level field (string or number)
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include <fanout/aws.h>
#include <fanout/aws_target.h>
#include <fanout/plugin.h>

#include "es.h"

/* Bulk size. Amazon OpenSearch Service recommends starting with bulk
 * requests of 5-15 MiB and tuning from there (developerguide/bp.html,
 * "Optimize bulk request size and compression"; Well-Architected
 * OpenSearch lens AOSPERF06-BP02); a domain refuses larger HTTP payloads
 * than 10 MiB on small instance types and 100 MiB on larger ones
 * (developerguide/limits.html, "Network quotas"; http.max_content_length
 * cannot be changed on the service). 5 MiB is the safe start. */
#define ES_DEFAULT_BULK_BYTES (5u * 1024 * 1024)
#define ES_MAX_BULK_BYTES     (100u * 1024 * 1024)
#define ES_MIN_BULK_BYTES     1024
/* Actions per _bulk call: a common client default (opensearch-py's
 * helpers.bulk chunk_size is 500); `maxBulkActions` changes it. */
#define ES_DEFAULT_BULK_ACTIONS 500
#define ES_MAX_BULK_ACTIONS     10000
/* What a bulk entry adds to the document: the action line
 * {"index":{"_id":"..."}}\n and the document's own '\n', by id form (an
 * estimate for the engine's batching; the request is re-cut on the real
 * sizes). */
#define ES_ENTRY_OVERHEAD    24
#define ES_SEQ_ID_ESTIMATE   100
#define ES_KEY_ID_ESTIMATE   256
#define ES_FIELD_ID_ESTIMATE 128

struct es_instance {
    const struct fanout_host *host;
    char *scope; /* the mapping id, for log lines */
    struct es_dest dest;
    char *path;
    const char *region; /* the mapping's, else the host's, else NULL */
    const char *signer;
    const char *role, *external_id; /* the target's (it outlives us) */
    struct es_doc_opts doc;
    uint64_t max_bulk_bytes;
};

static const struct fanout_option s_options[] = {
    {.name = "maxBulkBytes",
     .type = FANOUT_OPT_INT,
     .offset = offsetof(struct es_options, max_bulk_bytes),
     .default_int = ES_DEFAULT_BULK_BYTES,
     .min = ES_MIN_BULK_BYTES,
     .max = ES_MAX_BULK_BYTES,
     .description = "bytes per _bulk request (default 5 MiB; domains take 10 MiB on small "
                    "instance types, 100 MiB on larger); also the largest document"},
    {.name = "maxBulkActions",
     .type = FANOUT_OPT_INT,
     .offset = offsetof(struct es_options, max_bulk_actions),
     .default_int = ES_DEFAULT_BULK_ACTIONS,
     .min = 1,
     .max = ES_MAX_BULK_ACTIONS,
     .description = "documents per _bulk request (default 500)"},
    {.name = "documentId",
     .type = FANOUT_OPT_STRING,
     .offset = offsetof(struct es_options, document_id),
     .description = "\"sequence\" (default: from the record, resends replace), \"key\" "
                    "(latest per key, DynamoDB REMOVE deletes) or \"none\" (service ids)"},
    {.name = "idField",
     .type = FANOUT_OPT_STRING,
     .offset = offsetof(struct es_options, id_field),
     .description = "take the document id from this top-level field of the document"},
    {.name = "nonJson",
     .type = FANOUT_OPT_STRING,
     .offset = offsetof(struct es_options, non_json),
     .description =
         "data that is not a JSON object: \"wrap\" (default: {\"data\": text} or "
         "{\"dataBase64\": ...}) or \"refuse\""},
    {.name = "signingName",
     .type = FANOUT_OPT_STRING,
     .offset = offsetof(struct es_options, signing_name),
     .description =
         "SigV4 signing name: \"es\" (domains) or \"aoss\" (Serverless); default "
         "from the host name, else \"es\""},
    {.name = NULL},
};

/* Host and state (plugin.h): init keeps the host in a fanout_plugin_state;
 * open copies it into the instance. */
static int s_init(const struct fanout_host *host, void **state, struct fanout_error *err)
{
    return fanout_aws_plugin_init("es", host, state, err);
}

static int s_one_of(const char *v, const char *a, const char *b, const char *c)
{
    return strcmp(v, a) == 0 || strcmp(v, b) == 0 || (c && strcmp(v, c) == 0);
}

static int s_check_options(const struct es_options *o, char *err, size_t n)
{
    if (!o)
        return 0;
    if (o->document_id && !s_one_of(o->document_id, "sequence", "key", "none")) {
        snprintf(err, n,
                 "option \"documentId\" is \"%.40s\": expected \"sequence\", \"key\" or "
                 "\"none\" (or set idField instead)",
                 o->document_id);
        return -1;
    }
    if (o->id_field && (!*o->id_field || strlen(o->id_field) > 256)) {
        snprintf(err, n, "option \"idField\" must name a top-level field (1 to 256 bytes)");
        return -1;
    }
    if (o->id_field && o->document_id) {
        snprintf(err, n,
                 "options \"idField\" and \"documentId\" both choose the document id: keep "
                 "one");
        return -1;
    }
    if (o->non_json && !s_one_of(o->non_json, "wrap", "refuse", NULL)) {
        snprintf(err, n, "option \"nonJson\" is \"%.40s\": expected \"wrap\" or \"refuse\"",
                 o->non_json);
        return -1;
    }
    if (o->signing_name && !s_one_of(o->signing_name, "es", "aoss", NULL)) {
        snprintf(err, n, "option \"signingName\" is \"%.40s\": expected \"es\" or \"aoss\"",
                 o->signing_name);
        return -1;
    }
    return 0;
}

static int s_validate(const struct fanout_target *t, char *err, size_t err_len)
{
    struct es_dest d;
    if (es_dest_parse(t->destination, &d, err, err_len) != 0)
        return -1;
    es_dest_free(&d);
    if (t->region) {
        const char *r = t->region;
        size_t k = strspn(r, "abcdefghijklmnopqrstuvwxyz0123456789-");
        if (!*r || r[k]) {
            snprintf(err, err_len, "region \"%.40s\" is not a region name (e.g. us-east-1)",
                     r);
            return -1;
        }
    }
    return s_check_options(t->options, err, err_len);
}

static void s_doc_opts(const struct es_options *o, struct es_doc_opts *d)
{
    memset(d, 0, sizeof *d);
    if (o && o->id_field) {
        d->id_mode = ES_ID_FIELD;
        d->id_field = o->id_field;
    } else if (o && o->document_id && strcmp(o->document_id, "key") == 0) {
        d->id_mode = ES_ID_KEY;
    } else if (o && o->document_id && strcmp(o->document_id, "none") == 0) {
        d->id_mode = ES_ID_NONE;
    }
    d->refuse_non_json = o && o->non_json && strcmp(o->non_json, "refuse") == 0;
}

static int s_limits(void *state, const struct fanout_target *t, struct fanout_limits *lim,
                    char *err, size_t err_len)
{
    (void)state;
    const struct es_options *o = t->options;
    if (s_check_options(o, err, err_len) != 0)
        return -1;
    struct es_doc_opts d;
    s_doc_opts(o, &d);
    if (o) {
        lim->max_call_bytes = (uint64_t)o->max_bulk_bytes;
        lim->max_messages_per_call = (uint32_t)o->max_bulk_actions;
    }
    lim->per_message_overhead =
        ES_ENTRY_OVERHEAD + (d.id_mode == ES_ID_SEQUENCE ? ES_SEQ_ID_ESTIMATE
                             : d.id_mode == ES_ID_KEY    ? ES_KEY_ID_ESTIMATE
                             : d.id_mode == ES_ID_FIELD  ? ES_FIELD_ID_ESTIMATE
                                                         : 0);
    return 0;
}

static void s_close(void *instance)
{
    struct es_instance *in = instance;
    if (!in)
        return;
    es_dest_free(&in->dest);
    free(in->path);
    free(in->scope);
    free(in);
}

static int s_open(void *state, const struct fanout_target *t, void **out,
                  struct fanout_error *err)
{
    const struct fanout_plugin_state *s = state;
    const struct es_options *o = t->options;
    struct es_instance *in = calloc(1, sizeof *in);
    if (!in)
        return fanout_error_set(err, "OutOfMemory", "out of memory");
    char why[256];
    if (es_dest_parse(t->destination, &in->dest, why, sizeof why) != 0) {
        s_close(in);
        return fanout_error_set(err, "InvalidDestination", "%s", why);
    }
    in->host = s->host;
    in->path = es_bulk_path(&in->dest);
    in->scope = strdup(t->id ? t->id : "es");
    if (!in->path || !in->scope) {
        s_close(in);
        return fanout_error_set(err, "OutOfMemory", "out of memory");
    }
    in->region = t->region ? t->region : in->dest.region;
    in->signer = o && o->signing_name ? o->signing_name : in->dest.signer;
    in->role = t->role;
    in->external_id = t->external_id;
    s_doc_opts(o, &in->doc);
    in->max_bulk_bytes = o ? (uint64_t)o->max_bulk_bytes : ES_DEFAULT_BULK_BYTES;
    if (in->host->log_enabled(FANOUT_LOG_DEBUG))
        in->host->log(FANOUT_LOG_DEBUG, in->scope,
                      "es: %s%s index %s%s%s, region %s, signing %s", in->dest.endpoint,
                      in->path, in->dest.index, in->dest.doctype ? " type " : "",
                      in->dest.doctype ? in->dest.doctype : "",
                      in->region ? in->region : "(from the environment)", in->signer);
    *out = in;
    return 0;
}

/* One _bulk request of the call: the sent entries [first, first + count). */
struct s_chunk {
    size_t first, count;
    const uint8_t *body;
    size_t body_len;
    char sha[65];
    struct fanout_aws_header headers[2];
    struct fanout_aws_request req;
    struct fanout_aws_response resp;
};

static void s_hex_sha256(const uint8_t *p, size_t n, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(p, n, md);
    for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = 0;
}

/* Whole-request outcomes (the engine already retried throttling and 5xx). */
static void s_request_failed(const struct es_instance *in, const struct s_chunk *c,
                             struct fanout_outcome *const *outs)
{
    const struct fanout_aws_response *r = &c->resp;
    int st = r->result == FANOUT_AWS_THROTTLED   ? FANOUT_THROTTLED
             : r->result == FANOUT_AWS_RETRYABLE ? FANOUT_RETRY
                                                 : FANOUT_FATAL;
    for (size_t k = 0; k < c->count; k++) {
        if (r->status == 413)
            fanout_outcome_set(outs[k], FANOUT_FATAL, "RequestEntityTooLarge",
                               "the domain refused a _bulk request of %zu bytes (%zu "
                               "document%s) as too large (HTTP 413); OpenSearch Service "
                               "takes 10 MiB on small instance types, 100 MiB on larger: "
                               "lower maxBulkBytes (now %llu)",
                               c->body_len, c->count, c->count == 1 ? "" : "s",
                               (unsigned long long)in->max_bulk_bytes);
        else if (strcmp(r->error_code, "NoRegion") == 0)
            fanout_outcome_set(outs[k], FANOUT_FATAL, "NoRegion",
                               "no region to sign for: the endpoint %s does not name one; "
                               "set the mapping's \"region\" (or AWS_REGION)",
                               in->dest.endpoint);
        else
            fanout_outcome_set(outs[k], st, r->error_code[0] ? r->error_code : "HttpError",
                               "%s",
                               r->error_message[0] ? r->error_message : "request failed");
    }
}

static int s_send(void *instance, const struct fanout_batch *batch,
                  struct fanout_outcome *outcomes)
{
    struct es_instance *in = instance;
    size_t n = batch->count;
    if (n == 0)
        return 0;
    struct es_buf body = {0};
    size_t *off = calloc(n + 1, sizeof *off);
    struct fanout_outcome **outs = calloc(n, sizeof *outs);
    struct s_chunk *chunks = calloc(n, sizeof *chunks);
    const struct fanout_aws_request **reqs = calloc(n, sizeof *reqs);
    struct fanout_aws_response **resps = calloc(n, sizeof *resps);
    if (!off || !outs || !chunks || !reqs || !resps) {
        for (size_t i = 0; i < n; i++)
            fanout_outcome_set(&outcomes[i], FANOUT_RETRY, "OutOfMemory", "out of memory");
        free(off);
        free(outs);
        free(chunks);
        free(reqs);
        free(resps);
        return -1;
    }

    /* the entries, one after the other in one buffer; those that cannot be
     * documents already have their outcome and take no room */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        size_t before = body.s.len;
        int is_del = 0;
        if (es_entry_append(&body, &in->doc, batch->messages[i], &is_del, &outcomes[i]) !=
            0)
            continue;
        off[m] = before;
        outs[m] = &outcomes[i];
        m++;
    }
    off[m] = body.s.len;

    /* cut into requests on the real sizes: the engine's batch was cut on an
     * estimate, and wrapped text or base64 grows */
    size_t nc = 0;
    for (size_t j = 0; j < m; j++) {
        size_t size = off[j + 1] - off[j];
        struct s_chunk *c = nc ? &chunks[nc - 1] : NULL;
        if (!c || c->body_len + size > in->max_bulk_bytes) {
            c = &chunks[nc++];
            c->first = j;
            c->body = (const uint8_t *)body.s.p + off[j];
        }
        c->count++;
        c->body_len += size;
    }
    for (size_t k = 0; k < nc; k++) {
        struct s_chunk *c = &chunks[k];
        size_t nh = 0;
        c->headers[nh++] =
            (struct fanout_aws_header){"Content-Type", "application/x-ndjson"};
        /* Serverless wants the payload hash as a header (what AWS's own
         * OpenSearch clients send for "aoss"; UNCONFIRMED in the fact
         * sheet); signed with the rest */
        if (strcmp(in->signer, "aoss") == 0) {
            s_hex_sha256(c->body, c->body_len, c->sha);
            c->headers[nh++] = (struct fanout_aws_header){"X-Amz-Content-Sha256", c->sha};
        }
        c->req = (struct fanout_aws_request){
            .struct_size = sizeof c->req,
            .service = "es",
            .signing_name = in->signer,
            .region = in->region,
            .endpoint = in->dest.endpoint,
            .role_arn = in->role,
            .external_id = in->external_id,
            .method = "POST",
            .path = in->path,
            .headers = c->headers,
            .header_count = nh,
            .body = c->body,
            .body_len = c->body_len,
            .protocol = FANOUT_AWS_REST,
        };
        c->resp.struct_size = sizeof c->resp;
        reqs[k] = &c->req;
        resps[k] = &c->resp;
    }
    if (nc)
        in->host->aws_call(reqs, resps, nc);

    for (size_t k = 0; k < nc; k++) {
        struct s_chunk *c = &chunks[k];
        struct fanout_outcome *const *co = outs + c->first;
        if (c->resp.result == FANOUT_AWS_OK) {
            if (es_bulk_read(c->body, c->body_len, c->resp.status, c->resp.body,
                             c->resp.body_len, c->count, co) != 0)
                in->host->log(FANOUT_LOG_WARN, in->scope,
                              "es: unreadable _bulk answer (HTTP %ld, %zu bytes) for %zu "
                              "documents: %s",
                              c->resp.status, c->resp.body_len, c->count, co[0]->message);
        } else {
            s_request_failed(in, c, co);
        }
        in->host->aws_response_clean_up(&c->resp);
    }

    /* documentId "key": a change that failed and will be resent must not
     * land after a later change of the same document that succeeded, so
     * the later ones are resent with it, in order */
    if (in->doc.id_mode == ES_ID_KEY) {
        for (size_t i = 0; i < n; i++) {
            int st = outcomes[i].status;
            if (st != FANOUT_RETRY && st != FANOUT_THROTTLED)
                continue;
            const struct fanout_message *a = batch->messages[i];
            for (size_t j = i + 1; j < n; j++) {
                const struct fanout_message *b = batch->messages[j];
                if (outcomes[j].status == FANOUT_OK && b->key_len == a->key_len &&
                    memcmp(b->key, a->key, a->key_len) == 0)
                    fanout_outcome_set(&outcomes[j], FANOUT_RETRY,
                                       "ResentAfterEarlierChange",
                                       "resent after an earlier change of the same key "
                                       "failed, so that the newest change lands last");
            }
        }
    }

    es_buf_free(&body);
    free(off);
    free(outs);
    free(chunks);
    free(reqs);
    free(resps);
    return 0;
}

FANOUT_PLUGIN_DEFINE(
        .name = "es", .version = "1.0.0",
        .description = "Amazon OpenSearch Service / Elasticsearch / OpenSearch Serverless "
                       "(_bulk, one document per record, SigV4)",
        .destination_example = "search-mydomain-abc123.us-east-1.es.amazonaws.com#my-index "
                               "(or http://127.0.0.1:9200#my-index, or ...#index/doctype)",
        .limits = {.max_messages_per_call = ES_DEFAULT_BULK_ACTIONS,
                   .max_call_bytes = ES_DEFAULT_BULK_BYTES,
                   .per_message_overhead = ES_ENTRY_OVERHEAD + ES_SEQ_ID_ESTIMATE},
        .collapse_modes = FANOUT_COLLAPSE_BIT(FANOUT_COLLAPSE_NONE),
        .default_collapse = FANOUT_COLLAPSE_NONE, .options = s_options,
        .options_size = sizeof(struct es_options), .init = s_init,
        .fini = fanout_plugin_state_free, .validate = s_validate, .open = s_open,
        .send = s_send, .close = s_close, .target_limits = s_limits);
