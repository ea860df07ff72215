/*
 * Lambda Invoke for the `lambda` destination: the events, the requests and
 * the errors.
 *
 * The engine hands `send` one message per record (collapse none). The
 * messages' elements (the source record, once per source record: the user
 * records of one KPL aggregate share theirs; or the decoded record) are
 * packed in order into as few events {"Records":[...]} of at most the
 * payload limit as will hold them, and each event is one asynchronous
 * invocation:
 *
 *   POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=...]
 *   X-Amz-Invocation-Type: Event          -> 202 Accepted
 *
 * (Invoke API reference, docs.aws.amazon.com/lambda/latest/api/
 * API_Invoke.html; botocore lambda/2015-03-31/service-2.json.) The
 * invocations of one call go out together through host->aws_call; with
 * `parallel: false` one at a time, in order, the later ones not sent once
 * one failed. A message's outcome is that of the invocation that carried
 * its element, so the engine resends only the records of a failed
 * invocation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fanout/aws_codes.h>

#include "lambda.h"

/* Invocations in flight at once for one call (ours: bounds the connections
 * and the memory of one call, not a service limit). */
#define S_REQUESTS_PER_ROUND FANOUT_AWS_ROUND
/* A Retry-After hint longer than this is not waited for (ours). */
#define S_RETRY_AFTER_CAP_MS 5000u

/* ---- errors of Invoke ---- */

/*
 * How an error code is retried, whatever the HTTP status says. From the
 * Errors of the Invoke API reference (the same in botocore's model):
 *   - the function's configuration needs a person: KMS keys (KMSAccessDenied,
 *     KMSDisabled, KMSInvalidState, KMSNotFound: "Check the Lambda
 *     function's KMS key settings"), VPC settings (EC2AccessDenied,
 *     InvalidSubnetID, InvalidSecurityGroupID), the package or runtime
 *     (InvalidZipFile, InvalidRuntime), an EFS mount's permissions
 *     (EFSMountFailure). All 502 but the last, which the engine's AWS layer
 *     has already retried as server errors: they are permanent.
 *   - capacity or state that clears by itself: EC2Throttled (throttled),
 *     EC2Unexpected, ENILimitReached, SubnetIPAddressLimitReached,
 *     ResourceNotReady ("Wait for the VPC connection to reestablish and try
 *     again"), ResourceConflict (409: the function is being created or
 *     updated, functions-states.html), SnapStartNotReady (409: "You can
 *     invoke the function when the function state becomes Active"),
 *     SnapStartTimeout, EFSMountConnectivity, EFSMountTimeout (408).
 *   - ServiceException (500) and TooManyRequestsException (429): retried.
 *   - RequestTooLargeException (413; the service names it
 *     RequestEntityTooLargeException on the wire, and
 *     SerializedRequestEntityTooLargeException when the serialized request
 *     is too large), ResourceNotFoundException (404), InvalidParameterValue,
 *     InvalidRequestContent, UnsupportedMediaType, RecursiveInvocation,
 *     access errors: permanent (the AWS layer's FAILED).
 */
static const struct {
    const char *code;
    int status;
} s_codes[] = {
    {"KMSAccessDeniedException", FANOUT_FATAL},
    {"KMSDisabledException", FANOUT_FATAL},
    {"KMSInvalidStateException", FANOUT_FATAL},
    {"KMSNotFoundException", FANOUT_FATAL},
    {"EC2AccessDeniedException", FANOUT_FATAL},
    {"InvalidSubnetIDException", FANOUT_FATAL},
    {"InvalidSecurityGroupIDException", FANOUT_FATAL},
    {"InvalidZipFileException", FANOUT_FATAL},
    {"InvalidRuntimeException", FANOUT_FATAL},
    {"EFSMountFailureException", FANOUT_FATAL},
    {"RequestTooLargeException", FANOUT_FATAL},
    {"RequestEntityTooLargeException", FANOUT_FATAL},
    {"SerializedRequestEntityTooLargeException", FANOUT_FATAL},
    {"ResourceNotFoundException", FANOUT_FATAL},
    {"EC2UnexpectedException", FANOUT_RETRY},
    {"ENILimitReachedException", FANOUT_RETRY},
    {"SubnetIPAddressLimitReachedException", FANOUT_RETRY},
    {"ResourceNotReadyException", FANOUT_RETRY},
    {"ResourceConflictException", FANOUT_RETRY},
    {"SnapStartNotReadyException", FANOUT_RETRY},
    {"SnapStartTimeoutException", FANOUT_RETRY},
    {"EFSMountConnectivityException", FANOUT_RETRY},
    {"EFSMountTimeoutException", FANOUT_RETRY},
    {"ServiceException", FANOUT_RETRY},
};

static int s_code_status(const char *code, int fallback)
{
    for (size_t i = 0; code && i < sizeof s_codes / sizeof *s_codes; i++)
        if (strcmp(s_codes[i].code, code) == 0)
            return s_codes[i].status;
    if (fanout_aws_code_is_throttling(code)) /* TooManyRequests, EC2Throttled */
        return FANOUT_THROTTLED;
    return fallback;
}

/* ---- records payload ---- */

/* obj[text_key] = the bytes as a string when they are UTF-8, else
 * obj[b64_key] = their base64. */
static int s_set_bytes(json_t *obj, const char *text_key, const char *b64_key,
                       const uint8_t *p, size_t n)
{
    json_t *v = json_stringn((const char *)(p ? p : (const uint8_t *)""), n);
    if (v)
        return json_object_set_new(obj, text_key, v);
    struct fanout_sbuf enc = {0};
    int rc = fanout_sbuf_base64(&enc, p, n) == 0
                 ? json_object_set_new(obj, b64_key, json_string(enc.p))
                 : -1;
    fanout_sbuf_free(&enc);
    return rc;
}

/* The decoded record as an event element (the `file` plugin's fields). */
static char *s_record_json(const struct fanout_record *r, size_t *len)
{
    json_t *o = json_object();
    int rc = o ? 0 : -1;
    if (rc == 0 && r->source_arn)
        rc = json_object_set_new(o, "source", json_string(r->source_arn));
    if (rc == 0)
        rc = s_set_bytes(o, "key", "keyBase64", r->key, r->key_len);
    if (rc == 0)
        rc = json_object_set_new(o, "sequenceNumber",
                                 json_string(r->sequence_number ? r->sequence_number : ""));
    if (rc == 0)
        rc = json_object_set_new(o, "subSequenceNumber",
                                 json_integer((json_int_t)r->sub_sequence_number));
    if (rc == 0 && r->explicit_hash_key)
        rc = json_object_set_new(o, "explicitHashKey", json_string(r->explicit_hash_key));
    if (rc == 0 && r->action)
        rc = json_object_set_new(o, "action", json_string(r->action));
    if (rc == 0)
        rc = s_set_bytes(o, "data", "dataBase64", r->data, r->data_len);
    char *text = rc == 0 ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    *len = text ? strlen(text) : 0;
    return text;
}

/* ---- packing ---- */

/* One element of an event: a source record, or a decoded record. */
struct s_item {
    const char *text;
    size_t len;
    char *owned;    /* records payload: the element's JSON */
    size_t payload; /* the event carrying it; SIZE_MAX: not sent */
    int problem;    /* 1: too large for any event; 2: no text (see lambda_send) */
};

struct s_payload {
    size_t first, count; /* items */
    size_t bytes;
    uint8_t *body;
    struct fanout_outcome outcome;
};

struct s_pack {
    struct s_item *items;
    size_t item_count;
    size_t *refs; /* message i's items: refs[ref_first[i] .. + ref_count[i]] */
    size_t *ref_first, *ref_count;
    struct s_payload *payloads;
    size_t payload_count;
};

/* Open addressing on the source record's address: the user records of a KPL
 * aggregate point at the same text (plugin.h, source_json). */
struct s_seen {
    const char **keys;
    size_t *items;
    size_t mask;
};

static size_t s_hash(const void *p)
{
    uintptr_t v = (uintptr_t)p;
    v ^= v >> 17;
    v *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(v ^ (v >> 29));
}

static size_t *s_seen_slot(struct s_seen *s, const char *key)
{
    size_t i = s_hash(key) & s->mask;
    while (s->keys[i] && s->keys[i] != key)
        i = (i + 1) & s->mask;
    if (!s->keys[i]) {
        s->keys[i] = key;
        s->items[i] = SIZE_MAX;
    }
    return &s->items[i];
}

static void s_pack_free(struct s_pack *k)
{
    for (size_t i = 0; k->items && i < k->item_count; i++)
        free(k->items[i].owned);
    for (size_t i = 0; k->payloads && i < k->payload_count; i++)
        free(k->payloads[i].body);
    free(k->items);
    free(k->refs);
    free(k->ref_first);
    free(k->ref_count);
    free(k->payloads);
}

/* The elements of the batch's records, each source record once. */
static int s_collect(const struct lambda_target *t, const struct fanout_batch *b,
                     struct s_pack *k)
{
    size_t records = 0;
    for (size_t i = 0; i < b->count; i++)
        records += b->messages[i]->record_count;
    size_t cap = 16;
    while (cap < records * 2)
        cap *= 2;
    struct s_seen seen = {calloc(cap, sizeof *seen.keys), calloc(cap, sizeof *seen.items),
                          cap - 1};
    k->items = calloc(records ? records : 1, sizeof *k->items);
    k->refs = calloc(records ? records : 1, sizeof *k->refs);
    k->ref_first = calloc(b->count ? b->count : 1, sizeof *k->ref_first);
    k->ref_count = calloc(b->count ? b->count : 1, sizeof *k->ref_count);
    int rc = seen.keys && seen.items && k->items && k->refs && k->ref_first && k->ref_count
                 ? 0
                 : -1;
    size_t nref = 0;
    for (size_t i = 0; rc == 0 && i < b->count; i++) {
        const struct fanout_message *m = b->messages[i];
        k->ref_first[i] = nref;
        k->ref_count[i] = m->record_count;
        for (size_t j = 0; j < m->record_count; j++) {
            const struct fanout_record *r = m->records[j];
            size_t *slot = NULL;
            if (!t->records_payload && r->source_json) {
                slot = s_seen_slot(&seen, r->source_json);
                if (*slot != SIZE_MAX) {
                    k->refs[nref++] = *slot;
                    continue;
                }
            }
            struct s_item *it = &k->items[k->item_count];
            it->payload = SIZE_MAX;
            if (t->records_payload) {
                it->owned = s_record_json(r, &it->len);
                it->text = it->owned;
            } else {
                it->text = r->source_json;
                it->len = r->source_json_len;
            }
            if (!it->text)
                it->problem = 2;
            if (slot)
                *slot = k->item_count;
            k->refs[nref++] = k->item_count++;
        }
    }
    free(seen.keys);
    free(seen.items);
    return rc;
}

/* Cut the elements, in order, into events of at most t->max_payload. */
static int s_cut(const struct lambda_target *t, struct s_pack *k)
{
    k->payloads = calloc(k->item_count ? k->item_count : 1, sizeof *k->payloads);
    if (!k->payloads)
        return -1;
    struct s_payload *cur = NULL;
    for (size_t i = 0; i < k->item_count; i++) {
        struct s_item *it = &k->items[i];
        if (it->problem)
            continue;
        if (LAMBDA_ENVELOPE_LEN + it->len > t->max_payload) {
            it->problem = 1;
            continue;
        }
        if (!cur || cur->bytes + 1 + it->len > t->max_payload) {
            cur = &k->payloads[k->payload_count++];
            cur->first = i;
            cur->bytes = LAMBDA_ENVELOPE_LEN + it->len;
        } else {
            cur->bytes += 1 + it->len;
        }
        cur->count++;
        it->payload = (size_t)(cur - k->payloads);
    }
    /* the bodies; a problem item inside a payload's range is skipped */
    for (size_t p = 0; p < k->payload_count; p++) {
        struct s_payload *pl = &k->payloads[p];
        uint8_t *o = pl->body = malloc(pl->bytes);
        if (!o)
            return -1;
        memcpy(o, LAMBDA_ENVELOPE_HEAD, LAMBDA_ENVELOPE_HEAD_LEN);
        o += LAMBDA_ENVELOPE_HEAD_LEN;
        size_t done = 0;
        for (size_t i = pl->first; done < pl->count; i++) {
            const struct s_item *it = &k->items[i];
            if (it->payload != p)
                continue;
            if (done++)
                *o++ = ',';
            memcpy(o, it->text, it->len);
            o += it->len;
        }
        memcpy(o, LAMBDA_ENVELOPE_TAIL, LAMBDA_ENVELOPE_TAIL_LEN);
    }
    return 0;
}

/* ---- invoking ---- */

static void s_judge(const struct lambda_target *t, const struct fanout_aws_response *r,
                    struct s_payload *p)
{
    const struct fanout_host *host = t->aws.host;
    struct fanout_outcome *o = &p->outcome;
    /* The SDK's mapping of the AWS layer's result; the error code's status,
     * code and message (ours) are set below. */
    int fallback = fanout_aws_outcome(r, o);
    if (fallback == FANOUT_OK) {
        /* An Event invocation is accepted with 202 and only 202 (API_Invoke:
         * "For asynchronous invocation, Lambda adds events to a queue before
         * sending them to your function ... the status code is 202"). A 200
         * answers a RequestResponse invocation, so it is not the answer to
         * ours; any other 2xx is undocumented; a function error cannot come
         * with a queued event. None of them says the event was queued:
         * resend (a second copy is what at-least-once allows). */
        const char *fe = host->aws_response_header(r, "X-Amz-Function-Error");
        if (r->status == 202 && !fe)
            return;
        fanout_outcome_set(
            o, FANOUT_RETRY, "UnexpectedResponse",
            "invoking %s: HTTP %ld%s%.40s%s to an Event invocation, which is "
            "answered 202 Accepted; the event is not known queued",
            t->aws.destination, r->status, fe ? " with X-Amz-Function-Error \"" : "",
            fe ? fe : "", fe ? "\"" : "");
        host->log(FANOUT_LOG_WARN, t->aws.id, "%s", o->message);
        return;
    }
    int status = s_code_status(r->error_code, fallback);
    /* TooManyRequestsException names which limit in "Reason" (API_Invoke:
     * ConcurrentInvocationLimitExceeded, ReservedFunction..., CallerRate...). */
    char reason[96] = "";
    if (r->body && r->body_len && r->status >= 400) {
        json_t *j = json_loadb((const char *)r->body, r->body_len, 0, NULL);
        const char *why = json_string_value(json_object_get(j, "Reason"));
        if (why)
            snprintf(reason, sizeof reason, " (Reason: %.64s)", why);
        json_decref(j);
    }
    fanout_outcome_set(o, status, r->error_code[0] ? r->error_code : "InvokeFailed",
                       "invoking %s: %s%s", t->aws.destination,
                       r->error_message[0] ? r->error_message : "no detail", reason);
    if (status == FANOUT_THROTTLED || status == FANOUT_RETRY) {
        const char *ra = host->aws_response_header(r, "Retry-After");
        if (ra) {
            char *end;
            unsigned long s = strtoul(ra, &end, 10);
            /* compared in seconds: a huge value's milliseconds would wrap */
            if (end != ra && *end == 0)
                o->retry_after_ms = s > S_RETRY_AFTER_CAP_MS / 1000 ? S_RETRY_AFTER_CAP_MS
                                                                    : (uint32_t)s * 1000;
        }
    }
}

/* The events of one round. */
struct s_round {
    const struct lambda_target *t;
    struct s_payload *pls;
};

static void s_body(void *ctx, size_t i, const uint8_t **body, size_t *len)
{
    const struct s_round *r = ctx;
    *body = r->pls[i].body;
    *len = r->pls[i].bytes;
}

static void s_read(void *ctx, size_t i, const struct fanout_aws_response *resp)
{
    const struct s_round *r = ctx;
    s_judge(r->t, resp, &r->pls[i]);
}

static void s_invoke(const struct lambda_target *t, struct s_payload *pls, size_t n)
{
    static const struct fanout_aws_header headers[] = {
        {"Content-Type", "application/json"},
        {"X-Amz-Invocation-Type", "Event"},
    };
    static const struct fanout_aws_call_spec spec = {
        .service = "lambda",
        .method = "POST",
        .headers = headers,
        .header_count = sizeof headers / sizeof *headers,
        .protocol = FANOUT_AWS_JSON,
    };
    struct s_round r = {t, pls};
    fanout_aws_target_call(&t->aws, &spec, n, s_body, s_read, &r);
}

/* Worse first: a message carried by several events takes the worst. */
static int s_rank(int status)
{
    switch (status) {
    case FANOUT_FATAL: return 3;
    case FANOUT_RETRY: return 2;
    case FANOUT_THROTTLED: return 1;
    default: return 0;
    }
}

int lambda_send(const struct lambda_target *t, const struct fanout_batch *b,
                struct fanout_outcome *out)
{
    const struct fanout_host *host = t->aws.host;
    struct s_pack k = {0};
    if (s_collect(t, b, &k) != 0 || s_cut(t, &k) != 0) {
        for (size_t i = 0; i < b->count; i++)
            fanout_outcome_set(&out[i], FANOUT_RETRY, "OutOfMemory",
                               "out of memory building the invocations");
        s_pack_free(&k);
        return -1;
    }
    if (host->log_enabled(FANOUT_LOG_DEBUG))
        host->log(FANOUT_LOG_DEBUG, t->aws.id,
                  "lambda %s: %zu messages, %zu events to invoke (attempt %u)",
                  t->aws.destination, b->count, k.payload_count, b->attempt);
    size_t round = t->parallel ? S_REQUESTS_PER_ROUND : 1;
    for (size_t p = 0; p < k.payload_count; p += round) {
        size_t n = k.payload_count - p < round ? k.payload_count - p : round;
        s_invoke(t, &k.payloads[p], n);
        if (t->parallel || k.payloads[p].outcome.status == FANOUT_OK)
            continue;
        /* Ordered target: nothing after a failed event, so the function
         * never sees a record before an earlier one; retried in order (or
         * reported, after a permanent failure). */
        const struct fanout_outcome *f = &k.payloads[p].outcome;
        int st = f->status == FANOUT_FATAL ? FANOUT_FATAL : FANOUT_RETRY;
        for (size_t q = p + 1; q < k.payload_count; q++)
            fanout_outcome_set(&k.payloads[q].outcome, st, "NotSent",
                               "not sent: an earlier invocation of this ordered target "
                               "(parallel: false) failed (%s)",
                               f->code);
        break;
    }
    for (size_t i = 0; i < b->count; i++) {
        const struct fanout_outcome *worst = NULL;
        for (size_t j = 0; j < k.ref_count[i]; j++) {
            const struct s_item *it = &k.items[k.refs[k.ref_first[i] + j]];
            if (it->problem == 1) {
                fanout_outcome_set(&out[i], FANOUT_FATAL, "EventTooLarge",
                                   "%s of %zu bytes makes an event of %zu bytes, larger "
                                   "than the limit of %llu bytes per asynchronous "
                                   "invocation",
                                   t->records_payload ? "record" : "source record", it->len,
                                   it->len + LAMBDA_ENVELOPE_LEN,
                                   (unsigned long long)t->max_payload);
                worst = NULL;
                break;
            }
            if (it->problem == 2) {
                if (t->records_payload)
                    fanout_outcome_set(&out[i], FANOUT_RETRY, "OutOfMemory",
                                       "out of memory building the record's JSON");
                else
                    fanout_outcome_set(&out[i], FANOUT_FATAL, "NoSourceRecord",
                                       "the engine gave no source record JSON for this "
                                       "record");
                worst = NULL;
                break;
            }
            const struct fanout_outcome *o = &k.payloads[it->payload].outcome;
            if (!worst || s_rank(o->status) > s_rank(worst->status))
                worst = o;
        }
        if (worst && worst->status != FANOUT_OK)
            out[i] = *worst;
    }
    s_pack_free(&k);
    return 0;
}
