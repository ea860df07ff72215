/*
 * fanout plugin ABI, version 1.
 *
 * A destination plugin is a shared object named `<type>.so` that exports one
 * symbol, FANOUT_PLUGIN_SYMBOL, a `const struct fanout_plugin`. Use
 * FANOUT_PLUGIN_DEFINE() to emit it: the macro fills the header fields (ABI
 * version, struct size, build signature) so they cannot be got wrong.
 *
 * The engine hands the plugin a `const struct fanout_host` of services
 * (logging, clock, deadline; AWS services are appended in later minors). A
 * plugin needs only this header to build and no engine symbol at link time:
 * build it with -Wl,-z,defs and hidden visibility.
 *
 * Compatibility rules
 *   - Structs that cross the ABI start with their version and size and are
 *     only ever appended to. Each appended field names the minor that added
 *     it. A reader checks `struct_size` before reading a newer field.
 *   - The engine refuses a plugin whose major differs from its own, whose
 *     minor is newer than its own, whose struct is smaller than the 1.0 size,
 *     whose signature differs, or whose name is not the file's type.
 *   - Arrays passed across the ABI are arrays of pointers, so a struct can
 *     grow without changing the stride a plugin walks with. The exceptions
 *     are FROZEN for major 1 (never changed, never grown): `struct
 *     fanout_outcome` and `struct fanout_option` (arrays walked by stride),
 *     and `struct fanout_limits` (embedded by value in `fanout_plugin`; a
 *     new limit is appended to `fanout_plugin` itself).
 *
 * Threads
 *   `send` may be called from several threads at once for one instance unless
 *   the plugin sets FANOUT_PLUGIN_SERIAL in `flags`; then the engine never
 *   calls `send` on the same instance concurrently (different instances may
 *   still run at once). `open`/`close` are never concurrent with `send` on
 *   the same instance. `init` runs once, on whichever thread first needs the
 *   plugin (loading is lazy), and `fini` once when the engine unloads it;
 *   never concurrently with anything else of the plugin. `fini` is not
 *   called after a failed `init`; without `init` it gets a NULL state.
 *
 * Ownership
 *   Everything the engine passes in (host, target, batch, records) is owned
 *   by the engine. Host and plugin-state outlive every instance; a target
 *   outlives its instance; a batch and its records are valid only during the
 *   `send` call. Whatever the plugin allocates it frees in `close`/`fini`.
 */
#ifndef FANOUT_PLUGIN_H
#define FANOUT_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FANOUT_ABI_MAJOR 1
#define FANOUT_ABI_MINOR 1

/* The exported symbol the loader looks up with dlsym(). */
#define FANOUT_PLUGIN_SYMBOL "fanout_plugin_v1"

/*
 * Binary-compatibility signature: the sizes of the types the ABI relies on.
 * A plugin built for another data model (say a 32-bit build) is refused with
 * "not binary compatible" rather than crashing.
 */
#define FANOUT_STR_(x) #x
#define FANOUT_STR(x)  FANOUT_STR_(x)
#define FANOUT_ABI_SIGNATURE                                                               \
    "fanout-abi-1:p" FANOUT_STR(__SIZEOF_POINTER__) ":l" FANOUT_STR(                       \
        __SIZEOF_LONG__) ":z" FANOUT_STR(__SIZEOF_SIZE_T__) ":i" FANOUT_STR(__SIZEOF_INT__)

#if defined(__GNUC__)
#define FANOUT_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define FANOUT_EXPORT            __attribute__((visibility("default")))
#else
#define FANOUT_PRINTF(fmt, args)
#define FANOUT_EXPORT
#endif

/* ------------------------------------------------------------------------ */
/* Collapse modes                                                            */

/*
 * How the engine turns a target's records into messages before `send`:
 *   NONE        one message per record; the body is the record's data.
 *   JSON        {"Records":[d1,d2,...]} where each di is the record's data
 *               when it is JSON, else a JSON string (the text when it is
 *               valid UTF-8, else its base64).
 *   CONCAT      the records' data concatenated.
 *   CONCAT_B64  the base64 of that concatenation.
 * A plugin lists the modes it accepts in `collapse_modes` (a mask of
 * FANOUT_COLLAPSE_BIT(mode)) and picks its default in `default_collapse`.
 */
enum fanout_collapse {
    FANOUT_COLLAPSE_NONE = 0,
    FANOUT_COLLAPSE_JSON = 1,
    FANOUT_COLLAPSE_CONCAT = 2,
    FANOUT_COLLAPSE_CONCAT_B64 = 3,
};
#define FANOUT_COLLAPSE_BIT(mode) (1u << (unsigned)(mode))
#define FANOUT_COLLAPSE_ALL                                                                \
    (FANOUT_COLLAPSE_BIT(FANOUT_COLLAPSE_NONE) |                                           \
     FANOUT_COLLAPSE_BIT(FANOUT_COLLAPSE_JSON) |                                           \
     FANOUT_COLLAPSE_BIT(FANOUT_COLLAPSE_CONCAT) |                                         \
     FANOUT_COLLAPSE_BIT(FANOUT_COLLAPSE_CONCAT_B64))

/* ------------------------------------------------------------------------ */
/* Limits                                                                    */

/*
 * What one call of `send` may carry. The engine cuts batches so that none is
 * exceeded; a single message that cannot fit is reported as a permanent
 * failure with its size and the limit, never truncated. Zero means "no
 * limit" for every field.
 *
 * Sizes are counted on the message as the plugin receives it (body bytes,
 * plus the key when `key_counts` is set), before any encoding the plugin's
 * wire protocol adds; the overheads let a plugin account for envelopes.
 */
struct fanout_limits { /* FROZEN for major 1 */
    /* Messages (entries) per `send` call. */
    uint32_t max_messages_per_call;
    /* Largest single message: body bytes (+ key bytes when key_counts). */
    uint64_t max_message_bytes;
    /* Sum over a call of (message size + per_message_overhead), plus
     * per_call_overhead. */
    uint64_t max_call_bytes;
    /* Bytes each message adds to a call beyond its own size. */
    uint32_t per_message_overhead;
    /* Bytes one call adds once. */
    uint32_t per_call_overhead;
    /* Non-zero when the service counts the partition key in the message
     * size (Kinesis counts partition key + data). */
    uint32_t key_counts;
};

/* ------------------------------------------------------------------------ */
/* Records, messages and batches (engine-owned, valid during `send`)         */

/* A decoded source record. */
struct fanout_record {
    /* Kinesis partition key (of the user record, for KPL), or for DynamoDB
     * the key attributes' values joined by '|' (binary values in base64). */
    const uint8_t *key;
    size_t key_len;
    /* The payload: Kinesis data after base64 (and KPL) decoding, or the
     * DynamoDB NewImage as JSON (plain JSON with convertDDB). */
    const uint8_t *data;
    size_t data_len;
    /* Source sequence number, NUL-terminated. */
    const char *sequence_number;
    /* KPL user record index within its aggregate; 0 for plain records. */
    uint64_t sub_sequence_number;
    /* Non-zero when the record came out of a KPL aggregate. */
    int aggregated;
    /* KPL explicit hash key, or NULL. */
    const char *explicit_hash_key;
    /* "PUT" for Kinesis, the eventName (INSERT, MODIFY, REMOVE) for
     * DynamoDB, "PUBLISH" for SNS. */
    const char *action;
    /* eventSourceARN and awsRegion of the source record. */
    const char *source_arn;
    const char *region;
    /* since 1.1: the source record as it came in the event (one element of
     * its "Records", its JSON text as received; for KPL user records, the aggregate's
     * record). `source_json_len` bytes, NOT NUL-terminated. Set only for
     * plugins that ask with FANOUT_PLUGIN_SOURCE_JSON, else NULL. */
    const char *source_json;
    size_t source_json_len;
};

/* What one `send` entry carries: one record (collapse NONE) or several. */
struct fanout_message {
    /* The partition key to send with: the record's key, or the first
     * record's key in a collapsed message. */
    const uint8_t *key;
    size_t key_len;
    /* The message body, after collapse. */
    const uint8_t *body;
    size_t body_len;
    /* The records the body carries, in source order. */
    size_t record_count;
    const struct fanout_record *const *records;
};

struct fanout_batch {
    uint32_t struct_size;
    /* The collapse mode the messages were built with. */
    enum fanout_collapse collapse;
    size_t count;
    const struct fanout_message *const *messages;
    /* 1-based attempt number for these messages: > 1 on a retry. */
    uint32_t attempt;
};

/* ------------------------------------------------------------------------ */
/* Outcomes                                                                  */

enum fanout_status {
    FANOUT_OK = 0,        /* delivered */
    FANOUT_RETRY = 1,     /* transient failure: the engine may resend */
    FANOUT_THROTTLED = 2, /* the service throttled: resend after backoff */
    FANOUT_FATAL = 3,     /* permanent failure: resending will not help */
};

/*
 * One outcome per message of a batch. FROZEN for ABI major 1: the engine
 * passes an array of `count` of these, zeroed (status FANOUT_OK), and the
 * plugin fills the entries of messages that did not succeed.
 * Strings are NUL-terminated and may be cut to fit; never put credentials,
 * signatures or payloads in them.
 */
struct fanout_outcome {
    int32_t status;          /* enum fanout_status */
    uint32_t retry_after_ms; /* a hint from the service, 0 when none */
    char code[64];           /* the service's own error code, e.g.
                                "ProvisionedThroughputExceededException" */
    char message[256];       /* human readable reason */
};

/* A plugin-level error (from `open`), same rules as fanout_outcome. */
struct fanout_error {
    char code[64];
    char message[256];
};

/* ------------------------------------------------------------------------ */
/* Per-mapping options                                                       */

/*
 * A plugin may declare extra mapping fields it understands (the mapping
 * table's own fields are fixed; see the README). The engine checks each
 * declared field's type, applies defaults, and fills a zeroed block of
 * `options_size` bytes at each `offset`, handed to `open` as
 * `target->options`. Mapping fields that neither the schema nor the plugin
 * declares are refused by validation, naming the field.
 */
enum fanout_option_type {
    FANOUT_OPT_STRING = 1, /* const char * (engine-owned, NULL if unset) */
    FANOUT_OPT_INT = 2,    /* int64_t */
    FANOUT_OPT_BOOL = 3,   /* int (0/1) */
};

struct fanout_option { /* FROZEN for major 1 */
    const char *name;  /* the mapping field, e.g. "ttlSeconds" */
    enum fanout_option_type type;
    size_t offset;           /* offsetof(your struct, member) */
    const char *default_str; /* default for STRING, or NULL */
    int64_t default_int;     /* default for INT and BOOL */
    int64_t min, max;        /* inclusive range for INT; ignored if equal */
    const char *description; /* one line, shown by `fanout plugins` */
};

/* ------------------------------------------------------------------------ */
/* Target                                                                    */

/* One mapping as the plugin sees it. */
struct fanout_target {
    uint32_t struct_size;
    const char *source_arn;
    const char *id;
    const char *type;
    const char *destination;
    const char *region;      /* target region or NULL for the default */
    const char *role;        /* role ARN to assume, or NULL */
    const char *external_id; /* external id for that role, or NULL */
    enum fanout_collapse collapse;
    int parallel;
    /* The block described by the plugin's `options` table, or NULL when
     * the plugin declares none. */
    const void *options;
};

/* ------------------------------------------------------------------------ */
/* Host services                                                             */

struct fanout_aws_request;  /* fanout/aws.h */
struct fanout_aws_response; /* fanout/aws.h */

enum fanout_log_level {
    FANOUT_LOG_ERROR = 0,
    FANOUT_LOG_WARN = 1,
    FANOUT_LOG_INFO = 2,
    FANOUT_LOG_DEBUG = 3,
};

struct fanout_host {
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t struct_size;
    uint32_t reserved;

    /* since 1.0: one log line. `scope` is shown as the line's prefix
     * (use the target id, or NULL). Never log credentials; log payloads
     * only at FANOUT_LOG_DEBUG. */
    void (*log)(enum fanout_log_level level, const char *scope, const char *fmt, ...)
        FANOUT_PRINTF(3, 4);
    void (*vlog)(enum fanout_log_level level, const char *scope, const char *fmt,
                 va_list ap);
    /* since 1.0: non-zero when a line at `level` would be written. */
    int (*log_enabled)(enum fanout_log_level level);
    /* since 1.0: wall clock, ms since the Unix epoch. */
    int64_t (*now_ms)(void);
    /* since 1.0: ms left before the invocation's deadline (Lambda), or
     * INT64_MAX locally. Plugins size their timeouts with it. */
    int64_t (*remaining_ms)(void);

    /* since 1.1: AWS requests (fanout/aws.h). Sends the `n` requests
     * concurrently, each signed for its service, region and role, one
     * attempt each (the engine retries what the plugin reports throttled
     * or retryable: it owns the retry budget), and waits for all. Every
     * response is filled, whatever its outcome; release each with
     * aws_response_clean_up.
     * Returns 0, or -1 when an argument is unusable (then each response
     * says why). Callable from several threads at once. */
    int (*aws_call)(const struct fanout_aws_request *const *requests,
                    struct fanout_aws_response *const *responses, size_t n);
    /* since 1.1: free what the engine put in a response. */
    void (*aws_response_clean_up)(struct fanout_aws_response *response);
    /* since 1.1: a response header (case-insensitive name), or NULL. */
    const char *(*aws_response_header)(const struct fanout_aws_response *response,
                                       const char *name);
    /* since 1.1: the base URL the engine would use for `service` in
     * `region` (NULL: the default region), overrides applied. Returns 0, or
     * -1 with err (an unknown service, no region configured). */
    int (*aws_endpoint)(const char *service, const char *region, char *url, size_t url_len,
                        char *err, size_t err_len);
};

/* Does `host` provide the service `field` (added in a later minor)? */
#define FANOUT_HOST_HAS(host, field)                                                       \
    ((host)->struct_size >= offsetof(struct fanout_host, field) + sizeof((host)->field) && \
     (host)->field != NULL)

/* ------------------------------------------------------------------------ */
/* The plugin descriptor                                                     */

/* `flags` */
/* never call send concurrently on one instance */
#define FANOUT_PLUGIN_SERIAL 0x1u
/* since 1.1: fill fanout_record.source_json (e.g. to hand a target the
 * source event itself) */
#define FANOUT_PLUGIN_SOURCE_JSON 0x2u

struct fanout_plugin {
    /* Header, filled by FANOUT_PLUGIN_DEFINE. */
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t struct_size;
    uint32_t flags;
    const char *signature; /* FANOUT_ABI_SIGNATURE */

    /* Metadata. `name` must equal the file's type ([a-z0-9_-]{1,64}). */
    const char *name;
    const char *version;
    const char *description;
    /* A destination example shown in validation errors, e.g.
     * "arn:aws:sns:us-east-1:123456789012:my-topic". */
    const char *destination_example;
    struct fanout_limits limits;
    uint32_t collapse_modes; /* mask of FANOUT_COLLAPSE_BIT() */
    enum fanout_collapse default_collapse;
    /* Extra mapping fields, terminated by an entry whose name is NULL;
     * may be NULL. */
    const struct fanout_option *options;
    size_t options_size;

    /*
     * Host and state (the convention of fanout's own plugins): no
     * file-static variable holds the host. `init` returns in `*state` a
     * struct whose member `host` is the host, with whatever else the
     * instances share (fanout/plugin_state.h has one for plugins that share
     * nothing else), and `fini` frees it. `open` copies the host from the
     * state into the instance it makes; `send`, `close` and the plugin's
     * own functions reach the host through the instance.
     * sdk/examples/hello does so.
     */
    /* Optional: once after loading. `*state` is passed to `open`. Return 0
     * on success; on failure write a reason into `err`. */
    int (*init)(const struct fanout_host *host, void **state, struct fanout_error *err);
    /* Optional: once before unloading. */
    void (*fini)(void *state);
    /* Required: check a target's destination (and options). Return 0 when
     * valid; otherwise write into `err` what is wrong and what was expected
     * (an example of the right form), and return -1. Must not do I/O. A
     * message about another field than the destination starts with
     * `field "<name>": ` so the engine names that field. */
    int (*validate)(const struct fanout_target *target, char *err, size_t err_len);
    /* Required: make an instance for a target. Instances are cached by the
     * engine and reused across invocations; keep connections in them. */
    int (*open)(void *state, const struct fanout_target *target, void **instance,
                struct fanout_error *err);
    /* Required: deliver a batch; fill `outcomes[i]` for message i that was
     * not delivered (entries start zeroed = FANOUT_OK). The return value is
     * informational: 0 when the call itself ran, -1 when it could not run at
     * all (then the plugin should still mark every message). */
    int (*send)(void *instance, const struct fanout_batch *batch,
                struct fanout_outcome *outcomes);
    /* Required: release an instance. */
    void (*close)(void *instance);

    /* since 1.1, optional: the limits for one target, when they depend on
     * it (a stream raised to 10 MiB records, a topic's own maximum, a
     * mapping option). `limits` comes filled with the plugin's declared
     * ones; adjust it and return 0, or return -1 with err to refuse the
     * target. No I/O. */
    int (*target_limits)(void *state, const struct fanout_target *target,
                         struct fanout_limits *limits, char *err, size_t err_len);
};

/* The size of the 1.0 struct: the smallest the loader accepts. */
#define FANOUT_PLUGIN_SIZE_1_0                                                             \
    (offsetof(struct fanout_plugin, close) + sizeof(void (*)(void *)))

/*
 * Emit the plugin's exported descriptor (C; from C++ write the struct out
 * by hand inside extern "C", fields in declaration order). Use once per
 * plugin:
 *
 *   FANOUT_PLUGIN_DEFINE(
 *       .name = "example", .version = "1.0.0", .description = "...",
 *       .limits = {.max_messages_per_call = 10},
 *       .collapse_modes = FANOUT_COLLAPSE_ALL,
 *       .validate = s_validate, .open = s_open, .send = s_send,
 *       .close = s_close);
 */
#ifdef __cplusplus
#define FANOUT_LINKAGE extern "C"
#else
#define FANOUT_LINKAGE
#endif
#define FANOUT_PLUGIN_DEFINE(...)                                                          \
    FANOUT_LINKAGE FANOUT_EXPORT const struct fanout_plugin fanout_plugin_v1 = {           \
        .abi_major = FANOUT_ABI_MAJOR,                                                     \
        .abi_minor = FANOUT_ABI_MINOR,                                                     \
        .struct_size = (uint32_t)sizeof(struct fanout_plugin),                             \
        .signature = FANOUT_ABI_SIGNATURE,                                                 \
        __VA_ARGS__}

/* Helpers for plugins. */

/* Fill an outcome: status, service code (or NULL) and a printf message. */
static inline void fanout_outcome_set(struct fanout_outcome *o, int status,
                                      const char *code, const char *fmt, ...)
    FANOUT_PRINTF(4, 5);
static inline void fanout_outcome_set(struct fanout_outcome *o, int status,
                                      const char *code, const char *fmt, ...)
{
    va_list ap;
    o->status = status;
    snprintf(o->code, sizeof o->code, "%s", code ? code : "");
    va_start(ap, fmt);
    vsnprintf(o->message, sizeof o->message, fmt, ap);
    va_end(ap);
}

#ifdef __cplusplus
}
#endif

#endif /* FANOUT_PLUGIN_H */
