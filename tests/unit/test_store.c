/* The mapping stores against one suite: the same cases run on the file
 * store and on the DynamoDB store over dynalite (tests/node, started here
 * on a free loopback port for each test); then what only the DynamoDB store
 * has (stale bound, table name, item codec). */
#include <check.h>

#include "check_main.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aws/client.h"
#include "aws/credentials.h"
#include "aws/http.h"
#include "common/log.h"
#include "core/filter.h"
#include "core/mapping.h"
#include "core/store_ddb.h"

#define SRC "arn:aws:kinesis:us-east-1:123456789012:stream/s"
#define OTHER                                                                              \
    "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"
#define TABLE "fanout-mappings"

/* A mapping as plain JSON, the way the file store holds it. */
#define MAP(src, id, active)                                                               \
    "{\"sourceArn\":\"" src "\",\"id\":\"" id "\",\"type\":\"file\","                      \
    "\"destination\":\"/tmp/" id "\",\"active\":" active "}"

enum s_kind { S_FILE, S_DDB };

static enum s_kind s_kind;
/* file store: the document, rewritten on every change */
static char s_path[64];
static json_t *s_doc;
/* DynamoDB store: dynalite */
static pid_t s_dynalite = -1;
static char s_endpoint[64];
/* log lines of the code under test */
static int s_log_fd = -1;

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static char *s_log_text(void)
{
    off_t n = lseek(s_log_fd, 0, SEEK_END);
    char *buf = calloc(1, (size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pread(s_log_fd, buf, (size_t)n, 0), n);
    return buf;
}

static void s_log_clear(void)
{
    ck_assert_int_eq(ftruncate(s_log_fd, 0), 0);
}

/* ck_assert that the log holds every one of `want` (NULL-terminated). */
static void s_log_has(const char *const *want)
{
    char *log = s_log_text();
    for (; *want; want++)
        ck_assert_msg(strstr(log, *want), "\"%s\" not logged; log:\n%s", *want, log);
    free(log);
}

/* ---- dynalite ------------------------------------------------------------- */

static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int s_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void s_dynalite_start(void)
{
    int port = s_free_port();
    char bin[1024], portstr[16];
    const char *dir = getenv("FANOUT_TESTS_DIR");
    snprintf(bin, sizeof bin, "%s/node/node_modules/.bin/dynalite", dir ? dir : "tests");
    snprintf(portstr, sizeof portstr, "%d", port);
    ck_assert_msg(access(bin, X_OK) == 0, "%s: not installed (scripts/setup.sh --test)",
                  bin);
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* never outlive the test, even when it dies on a failed assertion */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        execl(bin, "dynalite", "--port", portstr, "--createTableMs", "0", "--deleteTableMs",
              "0", "--updateTableMs", "0", (char *)NULL);
        _exit(127);
    }
    s_dynalite = pid;
    int64_t end = s_mono_ms() + 30000;
    while (!s_port_open(port)) {
        int status;
        ck_assert_msg(waitpid(pid, &status, WNOHANG) == 0, "dynalite exited at start");
        ck_assert_msg(s_mono_ms() < end, "dynalite is not listening on %d", port);
        s_sleep_ms(20);
    }
    snprintf(s_endpoint, sizeof s_endpoint, "http://127.0.0.1:%d", port);
    setenv("AWS_ENDPOINT_URL_DYNAMODB", s_endpoint, 1);
}

static void s_dynalite_stop(void)
{
    if (s_dynalite > 0) {
        kill(s_dynalite, SIGKILL);
        waitpid(s_dynalite, NULL, 0);
    }
    s_dynalite = -1;
}

/* One DynamoDB call that must succeed; the reply (new reference). */
static json_t *s_ddb(const char *op, json_t *body)
{
    char target[64];
    snprintf(target, sizeof target, "DynamoDB_20120810.%s", op);
    const struct fanout_aws_header hdrs[] = {
        {"Content-Type", "application/x-amz-json-1.0"},
        {"X-Amz-Target", target},
    };
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    ck_assert_ptr_nonnull(text);
    struct fanout_aws_request req = {.struct_size = sizeof req,
                                     .service = "dynamodb",
                                     .method = "POST",
                                     .path = "/",
                                     .headers = hdrs,
                                     .header_count = 2,
                                     .body = (const uint8_t *)text,
                                     .body_len = strlen(text),
                                     .protocol = FANOUT_AWS_JSON};
    struct fanout_aws_response resp = {.struct_size = sizeof resp};
    const struct fanout_aws_request *reqs[] = {&req};
    struct fanout_aws_response *resps[] = {&resp};
    fanout_aws_call(reqs, resps, 1);
    free(text);
    ck_assert_msg(resp.result == FANOUT_AWS_OK, "%s: %s: %s", op, resp.error_code,
                  resp.error_message);
    json_t *reply = json_loadb((const char *)resp.body, resp.body_len, 0, NULL);
    fanout_aws_response_clean_up(&resp);
    ck_assert_ptr_nonnull(reply);
    return reply;
}

static void s_create_table(void)
{
    json_decref(s_ddb(
        "CreateTable",
        json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:[{s:s, s:s}, {s:s, s:s}],"
                  " s:{s:i, s:i}}",
                  "TableName", TABLE, "AttributeDefinitions", "AttributeName", "sourceArn",
                  "AttributeType", "S", "AttributeName", "id", "AttributeType", "S",
                  "KeySchema", "AttributeName", "sourceArn", "KeyType", "HASH",
                  "AttributeName", "id", "KeyType", "RANGE", "ProvisionedThroughput",
                  "ReadCapacityUnits", 5, "WriteCapacityUnits", 5)));
    for (int i = 0; i < 500; i++) {
        json_t *d = s_ddb("DescribeTable", json_pack("{s:s}", "TableName", TABLE));
        const char *status =
            json_string_value(json_object_get(json_object_get(d, "Table"), "TableStatus"));
        int active = status && strcmp(status, "ACTIVE") == 0;
        json_decref(d);
        if (active)
            return;
        s_sleep_ms(10);
    }
    ck_abort_msg("table %s never became ACTIVE", TABLE);
}

/* Plain JSON as an AttributeValue, written here independently of the
 * store's codec: strings S, booleans BOOL, numbers N, objects M, arrays L. */
static json_t *s_attr(const json_t *v)
{
    char n[64];
    switch (json_typeof(v)) {
    case JSON_STRING: return json_pack("{s:O}", "S", v);
    case JSON_TRUE:
    case JSON_FALSE: return json_pack("{s:O}", "BOOL", v);
    case JSON_INTEGER:
        snprintf(n, sizeof n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return json_pack("{s:s}", "N", n);
    case JSON_REAL:
        snprintf(n, sizeof n, "%.17g", json_real_value(v));
        return json_pack("{s:s}", "N", n);
    case JSON_NULL: return json_pack("{s:b}", "NULL", 1);
    case JSON_OBJECT: {
        json_t *m = json_object();
        const char *k;
        json_t *x;
        json_object_foreach ((json_t *)v, k, x)
            json_object_set_new(m, k, s_attr(x));
        return json_pack("{s:o}", "M", m);
    }
    case JSON_ARRAY: {
        json_t *l = json_array();
        size_t i;
        json_t *x;
        json_array_foreach (v, i, x)
            json_array_append_new(l, s_attr(x));
        return json_pack("{s:o}", "L", l);
    }
    }
    return NULL;
}

static void s_ddb_put_item(json_t *item)
{
    json_decref(
        s_ddb("PutItem", json_pack("{s:s, s:o}", "TableName", TABLE, "Item", item)));
}

/* ---- the two stores behind one set of verbs -------------------------------- */

static void s_write_doc(void)
{
    ck_assert_int_eq(json_dump_file(s_doc, s_path, JSON_COMPACT), 0);
}

/* Add or replace (same sourceArn and id) a mapping given as plain JSON. */
static void s_put(const char *mapping_json)
{
    json_error_t je;
    json_t *m = json_loads(mapping_json, 0, &je);
    ck_assert_msg(m != NULL, "test JSON: %s", je.text);
    if (s_kind == S_DDB) {
        json_t *item = json_object();
        const char *k;
        json_t *v;
        json_object_foreach (m, k, v)
            json_object_set_new(item, k, s_attr(v));
        json_decref(m);
        s_ddb_put_item(item);
        return;
    }
    size_t i;
    json_t *old;
    json_array_foreach (s_doc, i, old) {
        if (json_equal(json_object_get(old, "sourceArn"),
                       json_object_get(m, "sourceArn")) &&
            json_equal(json_object_get(old, "id"), json_object_get(m, "id"))) {
            json_array_set_new(s_doc, i, m);
            s_write_doc();
            return;
        }
    }
    json_array_append_new(s_doc, m);
    s_write_doc();
}

static struct fanout_store *s_store(void)
{
    char err[1024] = "";
    struct fanout_store *st = s_kind == S_DDB
                                  ? fanout_store_ddb_new(TABLE, NULL, err, sizeof err)
                                  : fanout_store_file_new(s_path, err, sizeof err);
    ck_assert_msg(st != NULL, "%s", err);
    return st;
}

/* The store loses its backing: the file is deleted, dynalite dies. */
static void s_break(void)
{
    if (s_kind == S_DDB)
        s_dynalite_stop();
    else
        ck_assert_int_eq(unlink(s_path), 0);
}

/* The ids found for `source`, sorted, joined by ','. */
static void s_lookup_ids(struct fanout_store *st, const char *source, char *out, size_t len)
{
    struct fanout_mapping *const *found;
    size_t n;
    char err[1024] = "";
    ck_assert_msg(fanout_store_lookup(st, source, &found, &n, err, sizeof err) == 0, "%s",
                  err);
    const char *ids[64];
    ck_assert_uint_le(n, 64);
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(found[i]->source_arn, source);
        ck_assert_int_eq(found[i]->active, 1);
        ids[i] = found[i]->id;
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(ids[j - 1], ids[j]) > 0; j--) {
            const char *t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    out[0] = 0;
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? "," : "", ids[i]);
}

#define ASSERT_IDS(st, source, want)                                                       \
    do {                                                                                   \
        char ids_[1024];                                                                   \
        s_lookup_ids(st, source, ids_, sizeof ids_);                                       \
        ck_assert_str_eq(ids_, want);                                                      \
    } while (0)

static void s_env_clean(void)
{
    unsetenv("FANOUT_MAPPING_REFRESH_SECONDS");
    unsetenv("FANOUT_MAPPING_STALE_SECONDS");
    unsetenv("FANOUT_DDB_PAGE_LIMIT");
    unsetenv("FANOUT_TABLE");
    unsetenv("AWS_LAMBDA_FUNCTION_NAME");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_DYNAMODB");
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDFANOUTTEST000001", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "fanout-test-secret-key-0000000000000000", 1);
    setenv("FANOUT_AWS_RETRY_BASE_MS", "1", 1);
    setenv("FANOUT_AWS_RETRY_CAP_MS", "5", 1);
}

static void s_common_setup(void)
{
    s_env_clean();
    char err[256];
    ck_assert_int_eq(fanout_http_global_init(), 0);
    ck_assert_msg(fanout_aws_init(NULL, err, sizeof err) == 0, "%s", err);
    fanout_credentials_reset();
    char log[] = "/tmp/fanout-store-log-XXXXXX";
    s_log_fd = mkstemp(log);
    ck_assert_int_ge(s_log_fd, 0);
    unlink(log);
    fanout_log_set(FANOUT_LOG_WARN, 0);
    fanout_log_set_fd(s_log_fd);
}

static void s_file_setup(void)
{
    s_common_setup();
    s_kind = S_FILE;
    snprintf(s_path, sizeof s_path, "/tmp/fanout-store-XXXXXX");
    int fd = mkstemp(s_path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    s_doc = json_array();
    s_write_doc();
}

static void s_ddb_setup(void)
{
    s_common_setup();
    s_kind = S_DDB;
    s_dynalite_start();
    s_create_table();
}

static void s_teardown(void)
{
    fanout_log_set_fd(-1);
    if (s_log_fd >= 0)
        close(s_log_fd);
    s_log_fd = -1;
    if (s_kind == S_FILE) {
        unlink(s_path);
        json_decref(s_doc);
        s_doc = NULL;
    }
    s_dynalite_stop();
    fanout_credentials_reset();
    fanout_http_global_cleanup();
}

/* ---- the shared cases ----------------------------------------------------- */

START_TEST(active_mappings_by_source)
{
    s_put(MAP(SRC, "a", "true"));
    s_put(MAP(SRC, "b", "false"));
    s_put(MAP(OTHER, "c", "true"));
    s_put(MAP(SRC, "d", "true"));
    struct fanout_store *st = s_store();
    ASSERT_IDS(st, SRC, "a,d");
    ASSERT_IDS(st, OTHER, "c");
    ASSERT_IDS(st, "arn:aws:kinesis:us-east-1:123456789012:stream/none", "");
    /* asked again: the same answer (from the cache, for DynamoDB) */
    ASSERT_IDS(st, SRC, "a,d");
    struct fanout_mapping *const *found;
    size_t n;
    char err[512];
    ck_assert_int_eq(fanout_store_lookup(st, OTHER, &found, &n, err, sizeof err), 0);
    ck_assert_str_eq(found[0]->type, "file");
    ck_assert_str_eq(found[0]->destination, "/tmp/c");
    fanout_store_destroy(st);
}
END_TEST

START_TEST(invalid_mapping_reported_others_work)
{
    s_put(MAP(SRC, "good", "true"));
    s_put("{\"sourceArn\":\"" SRC "\",\"id\":\"evil\",\"type\":\"../evil\","
          "\"destination\":\"x\",\"active\":true}");
    s_put("{\"sourceArn\":\"" SRC
          "\",\"id\":\"no-dest\",\"type\":\"file\",\"active\":true}");
    s_put("{\"sourceArn\":\"" SRC "\",\"id\":\"bad-region\",\"type\":\"file\","
          "\"destination\":\"x\",\"active\":true,\"region\":\"mars\"}");
    /* inactive: never fails anything; unreadable "active": may be active */
    s_put("{\"sourceArn\":\"" SRC "\",\"id\":\"off-bad\",\"type\":\"file\","
          "\"destination\":\"x\",\"active\":false,\"region\":\"mars\"}");
    s_put("{\"sourceArn\":\"" SRC "\",\"id\":\"maybe\",\"type\":\"file\","
          "\"destination\":\"x\",\"active\":\"yes\"}");
    struct fanout_store *st = s_store();
    ASSERT_IDS(st, SRC, "good");
    s_log_has((const char *const[]){
        "mapping \"evil\"", "field \"type\"", "never a path", "mapping \"no-dest\"",
        "field \"destination\"", "required, missing", "mapping \"bad-region\"",
        "field \"region\"", "\"mars\"", "the records of", "reported failed", NULL});
    /* the invalid mappings that fail this source's records: by id */
    struct fanout_mapping *const *found;
    const size_t *bad;
    const struct fanout_mapping_set *bset;
    size_t n, nbad;
    char err[512];
    ck_assert_int_eq(fanout_store_lookup_checked(st, SRC, &found, &n, &bad, &nbad, &bset,
                                                 err, sizeof err),
                     0);
    ck_assert_uint_eq(nbad, 4);
    int seen = 0;
    for (size_t i = 0; i < nbad; i++) {
        const struct fanout_mapping_problem *d = &bset->details[bad[i]];
        ck_assert_ptr_nonnull(d->id);
        ck_assert_str_eq(d->source_arn, SRC);
        ck_assert_str_ne(d->id, "off-bad");
        seen |= (strcmp(d->id, "evil") == 0) | (strcmp(d->id, "no-dest") == 0) << 1 |
                (strcmp(d->id, "bad-region") == 0) << 2 |
                (strcmp(d->id, "maybe") == 0) << 3;
        if (!strcmp(d->id, "maybe"))
            ck_assert_int_eq(d->active, -1);
    }
    ck_assert_int_eq(seen, 15);
    /* once per load: a lookup served from the cache (or an unchanged file)
     * says nothing again */
    s_log_clear();
    ASSERT_IDS(st, SRC, "good");
    char *log = s_log_text();
    ck_assert_msg(!strstr(log, "evil"), "logged again:\n%s", log);
    free(log);
    fanout_store_destroy(st);
}
END_TEST

START_TEST(strict_attribute_types)
{
    s_put(MAP(SRC, "good", "true"));
    s_put(MAP(SRC, "string-true", "\"true\""));
    s_put("{\"sourceArn\":\"" SRC "\",\"id\":\"number-parallel\",\"type\":\"file\","
          "\"destination\":\"x\",\"active\":true,\"parallel\":1}");
    s_put("{\"sourceArn\":\"" SRC "\",\"id\":\"number-type\",\"type\":7,"
          "\"destination\":\"x\",\"active\":true}");
    struct fanout_store *st = s_store();
    /* a "true" string is a validation message, never a silent true or false */
    ASSERT_IDS(st, SRC, "good");
    if (s_kind == S_DDB)
        s_log_has((const char *const[]){
            "mapping \"string-true\" (#",
            "field \"active\": expected a boolean (DynamoDB BOOL", "got S \"true\"",
            "mapping \"number-parallel\"",
            "field \"parallel\": expected a boolean (DynamoDB BOOL", "got N 1",
            "mapping \"number-type\"",
            "field \"type\": expected a string (DynamoDB S), got N 7", NULL});
    else
        s_log_has((const char *const[]){
            "mapping \"string-true\" (#", "field \"active\": expected a boolean",
            "got a string \"true\"", "mapping \"number-parallel\"",
            "field \"parallel\": expected a boolean", "got a number",
            "mapping \"number-type\"", "field \"type\": expected a string, got a number",
            NULL});
    fanout_store_destroy(st);
}
END_TEST

START_TEST(all_lists_every_mapping_and_the_problems)
{
    s_put(MAP(SRC, "a", "true"));
    s_put(MAP(SRC, "b", "false"));
    s_put(MAP(OTHER, "a", "true"));
    s_put(MAP(OTHER, "broken", "\"yes\""));
    struct fanout_store *st = s_store();
    const struct fanout_mapping_set *set;
    char err[512];
    ck_assert_msg(st->ops->all(st, &set, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(set->count, 3);
    int seen = 0;
    for (size_t i = 0; i < set->count; i++) {
        const struct fanout_mapping *m = set->items[i];
        if (!strcmp(m->source_arn, SRC) && !strcmp(m->id, "a") && m->active)
            seen |= 1;
        if (!strcmp(m->source_arn, SRC) && !strcmp(m->id, "b") && !m->active)
            seen |= 2;
        if (!strcmp(m->source_arn, OTHER) && !strcmp(m->id, "a"))
            seen |= 4;
    }
    ck_assert_int_eq(seen, 7);
    ck_assert_uint_eq(set->problem_count, 1);
    ck_assert_msg(strstr(set->problems[0], "mapping \"broken\"") &&
                      strstr(set->problems[0], "field \"active\"") &&
                      strstr(set->problems[0], "\"yes\""),
                  "%s", set->problems[0]);
    fanout_store_destroy(st);
}
END_TEST

/* More items than fit a page, with a first page that holds no active
 * mapping at all: reading stops only at the last page. */
START_TEST(pages_followed_to_the_last)
{
    setenv("FANOUT_DDB_PAGE_LIMIT", "2", 1);
    s_put(MAP(SRC, "p0", "false"));
    s_put(MAP(SRC, "p1", "false"));
    s_put(MAP(SRC, "p2", "true"));
    s_put(MAP(SRC, "p3", "false"));
    s_put(MAP(SRC, "p4", "true"));
    s_put(MAP(SRC, "p5", "true"));
    s_put(MAP(SRC, "p6", "true"));
    s_put(MAP(OTHER, "o0", "true"));
    s_put(MAP(OTHER, "o1", "false"));
    struct fanout_store *st = s_store();
    ASSERT_IDS(st, SRC, "p2,p4,p5,p6");
    ASSERT_IDS(st, OTHER, "o0");
    const struct fanout_mapping_set *set;
    char err[512];
    ck_assert_msg(st->ops->all(st, &set, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(set->count, 9);
    ck_assert_uint_eq(set->problem_count, 0);
    fanout_store_destroy(st);
}
END_TEST

/* DynamoDB's own page size: 1 MB, whatever the Limit. */
#define BIG_ITEM_BYTES (300 * 1024)
START_TEST(pages_of_one_megabyte_followed)
{
    char *pad = malloc(BIG_ITEM_BYTES + 1);
    ck_assert_ptr_nonnull(pad);
    memset(pad, 'x', BIG_ITEM_BYTES);
    pad[BIG_ITEM_BYTES] = 0;
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "big%d", i);
        json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "sourceArn", SRC, "id", id,
                              "type", "file", "destination", "-", "active", 1, "pad", pad);
        char *text = json_dumps(m, JSON_COMPACT);
        s_put(text);
        free(text);
        json_decref(m);
    }
    free(pad);
    if (s_kind == S_DDB) {
        /* the emulator does cut the first page short */
        json_t *r = s_ddb("Query", json_pack("{s:s, s:s, s:{s:{s:s}}}", "TableName", TABLE,
                                             "KeyConditionExpression", "sourceArn = :s",
                                             "ExpressionAttributeValues", ":s", "S", SRC));
        ck_assert_uint_lt(json_array_size(json_object_get(r, "Items")), 5);
        ck_assert_ptr_nonnull(json_object_get(r, "LastEvaluatedKey"));
        json_decref(r);
    }
    struct fanout_store *st = s_store();
    ASSERT_IDS(st, SRC, "big0,big1,big2,big3,big4");
    struct fanout_mapping *const *found;
    size_t n;
    char err[512];
    ck_assert_int_eq(fanout_store_lookup(st, SRC, &found, &n, err, sizeof err), 0);
    ck_assert_uint_eq(json_string_length(json_object_get(found[0]->extra, "pad")),
                      BIG_ITEM_BYTES);
    fanout_store_destroy(st);
}
END_TEST

/* A change shows after the refresh interval, not before. (The file store
 * re-reads as soon as the file changes: for it, "not before" is moot.) */
START_TEST(changes_show_after_the_refresh_interval)
{
    const int64_t refresh_ms = 2000;
    setenv("FANOUT_MAPPING_REFRESH_SECONDS", "2", 1);
    s_put(MAP(SRC, "a", "true"));
    s_put(MAP(SRC, "b", "false"));
    struct fanout_store *st = s_store();
    ASSERT_IDS(st, SRC, "a");
    int64_t read_ms = s_mono_ms();
    s_put(MAP(SRC, "a", "false"));
    s_put(MAP(SRC, "b", "true"));
    if (s_kind == S_DDB) {
        ASSERT_IDS(st, SRC, "a");
        ck_assert_msg(s_mono_ms() - read_ms < refresh_ms,
                      "too slow to tell: the refresh interval passed already");
    }
    s_sleep_ms(read_ms + refresh_ms + 100 - s_mono_ms());
    ASSERT_IDS(st, SRC, "b");
    fanout_store_destroy(st);
}
END_TEST

/* The backing store goes away: the last good mappings are still served,
 * and the log says why. */
START_TEST(failed_refresh_serves_the_last_good_mappings)
{
    setenv("FANOUT_MAPPING_REFRESH_SECONDS", "0.2", 1);
    s_put(MAP(SRC, "a", "true"));
    struct fanout_store *st = s_store();
    ASSERT_IDS(st, SRC, "a");
    s_break();
    s_sleep_ms(300);
    s_log_clear();
    ASSERT_IDS(st, SRC, "a");
    if (s_kind == S_DDB)
        s_log_has((const char *const[]){
            "WARN", "cannot refresh the mappings of " SRC, "table " TABLE,
            "serving the 1 active mappings read", "FANOUT_MAPPING_STALE_SECONDS", NULL});
    else
        s_log_has(
            (const char *const[]){"WARN", "keeping the 1 mappings loaded before", NULL});
    fanout_store_destroy(st);
}
END_TEST

static size_t s_log_count(const char *what)
{
    char *log = s_log_text();
    size_t n = 0;
    for (const char *p = log; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    free(log);
    return n;
}

/* A mapping as aws-lambda-fanout's CLI writes it: appendNewlines is read,
 * the settings the original ignored for the type are dropped with one
 * warning per load of the mappings, not one per lookup. */
START_TEST(original_cli_mapping_read_and_warned_once_per_load)
{
    setenv("FANOUT_MAPPING_REFRESH_SECONDS", "0.2", 1);
    s_put("{\"sourceArn\":\"" SRC "\",\"id\":\"r\",\"type\":\"redis\","
          "\"destination\":\"cache.example:6379\",\"active\":true,\"collapse\":\"JSON\","
          "\"region\":\"eu-west-1\",\"parallel\":true,\"appendNewlines\":true}");
    s_put(MAP(SRC, "f", "true"));
    s_log_clear();
    struct fanout_store *st = s_store();
    for (int i = 0; i < 3; i++) {
        struct fanout_mapping *const *found;
        size_t n;
        char err[1024] = "";
        ck_assert_msg(fanout_store_lookup(st, SRC, &found, &n, err, sizeof err) == 0, "%s",
                      err);
        ck_assert_uint_eq(n, 2);
        for (size_t k = 0; k < n; k++) {
            int redis = strcmp(found[k]->id, "r") == 0;
            ck_assert_int_eq(found[k]->append_newlines, redis);
            if (redis) {
                ck_assert_int_eq(found[k]->collapse, -1);
                ck_assert_ptr_null(found[k]->region);
            }
        }
    }
    ck_assert_uint_eq(s_log_count("ignored for type"), 1);
    s_log_has(
        (const char *const[]){"WARN", "mapping \"r\"",
                              "field \"collapse\" (\"JSON\"), field "
                              "\"region\" (\"eu-west-1\"): ignored for type \"redis\"",
                              NULL});
    /* a new load (the file changed, the refresh interval passed) warns
     * again, once */
    s_sleep_ms(300);
    s_put(MAP(SRC, "g", "true"));
    ASSERT_IDS(st, SRC, "f,g,r");
    ASSERT_IDS(st, SRC, "f,g,r");
    ck_assert_uint_eq(s_log_count("ignored for type"), 2);
    fanout_store_destroy(st);
}
END_TEST

/* ---- DynamoDB only -------------------------------------------------------- */

/* Past FANOUT_MAPPING_STALE_SECONDS the last good mappings are no longer
 * served: the lookup fails and says why. */
START_TEST(stale_bound_then_failure)
{
    setenv("FANOUT_MAPPING_REFRESH_SECONDS", "0.5", 1);
    setenv("FANOUT_MAPPING_STALE_SECONDS", "1.5", 1);
    s_put(MAP(SRC, "a", "true"));
    struct fanout_store *st = s_store();
    ASSERT_IDS(st, SRC, "a");
    int64_t read_ms = s_mono_ms();
    s_break();
    /* a failed refresh within the bound: served, with a warning (each
     * failed attempt, one per refresh interval, is logged) */
    s_sleep_ms(600);
    ASSERT_IDS(st, SRC, "a");
    ck_assert_int_lt(s_mono_ms() - read_ms, 1500);
    s_log_has((const char *const[]){"cannot refresh the mappings", NULL});
    /* served without another attempt until the next refresh is due */
    s_log_clear();
    ASSERT_IDS(st, SRC, "a");
    char *log = s_log_text();
    ck_assert_msg(!*log, "unexpected:\n%s", log);
    free(log);
    s_sleep_ms(read_ms + 1700 - s_mono_ms());
    struct fanout_mapping *const *found;
    size_t n;
    char err[1024] = "";
    ck_assert_int_eq(fanout_store_lookup(st, SRC, &found, &n, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "cannot read the mappings of " SRC) &&
                      strstr(err, "table " TABLE) &&
                      strstr(err, "older than FANOUT_MAPPING_STALE_SECONDS (1.5 s)") &&
                      strstr(err, "no longer used"),
                  "%s", err);
    /* and again on the next lookup: nothing stale comes back */
    ck_assert_int_eq(fanout_store_lookup(st, SRC, &found, &n, err, sizeof err), -1);
    fanout_store_destroy(st);
}
END_TEST

START_TEST(nothing_read_yet_fails)
{
    struct fanout_store *st = s_store();
    s_break();
    struct fanout_mapping *const *found;
    size_t n;
    char err[1024] = "";
    ck_assert_int_eq(fanout_store_lookup(st, SRC, &found, &n, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "cannot read the mappings of " SRC) &&
                      strstr(err, "DynamoDB Query failed"),
                  "%s", err);
    const struct fanout_mapping_set *set;
    ck_assert_int_eq(st->ops->all(st, &set, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "DynamoDB Scan failed"), "%s", err);
    fanout_store_destroy(st);
}
END_TEST

START_TEST(missing_table_named)
{
    char err[1024] = "";
    struct fanout_store *st = fanout_store_ddb_new("no-such-table", NULL, err, sizeof err);
    ck_assert_msg(st != NULL, "%s", err);
    struct fanout_mapping *const *found;
    size_t n;
    ck_assert_int_eq(fanout_store_lookup(st, SRC, &found, &n, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "table no-such-table") &&
                      strstr(err, "ResourceNotFoundException") &&
                      strstr(err, "FANOUT_TABLE"),
                  "%s", err);
    fanout_store_destroy(st);
}
END_TEST

/* The cache holds at most 1,024 sources, the least recently looked up
 * going first: events can name any number of sources (an SNS message
 * unwrapped names its own), and each one looked up used to stay for the
 * process's life. Seen through a change: SRC, cached, is read again once
 * 1,024 other sources pushed it out (before, its cached mappings were
 * served until the refresh interval, here an hour). */
START_TEST(cache_of_sources_bounded)
{
    setenv("FANOUT_MAPPING_REFRESH_SECONDS", "3600", 1);
    s_put(MAP(SRC, "a", "true"));
    struct fanout_store *st = s_store();
    ASSERT_IDS(st, SRC, "a");
    s_put(MAP(SRC, "b", "true"));
    ASSERT_IDS(st, SRC, "a"); /* cached */
    for (int i = 0; i < 1024; i++) {
        char src[128];
        snprintf(src, sizeof src, "arn:aws:kinesis:us-east-1:123456789012:stream/n%d", i);
        ASSERT_IDS(st, src, "");
        if (i == 511)
            ASSERT_IDS(st, SRC, "a"); /* looked up again: the most recent */
    }
    ASSERT_IDS(st, SRC, "a"); /* 1,023 sources since: still cached */
    for (int i = 1024; i < 2048; i++) {
        char src[128];
        snprintf(src, sizeof src, "arn:aws:kinesis:us-east-1:123456789012:stream/n%d", i);
        ASSERT_IDS(st, src, "");
    }
    ASSERT_IDS(st, SRC, "a,b"); /* pushed out, read again */
    fanout_store_destroy(st);
}
END_TEST

/* The item shapes of the seed design, written as raw DynamoDB items. */
START_TEST(seed_design_items)
{
    json_error_t je;
    json_t *item = json_loads(
        "{\"sourceArn\":{\"S\":\"" SRC "\"},\"id\":{\"S\":\"seed\"},"
        "\"type\":{\"S\":\"sqs\"},\"destination\":{\"S\":\"https://sqs.us-east-1."
        "amazonaws.com/123456789012/q\"},\"active\":{\"BOOL\":true},"
        "\"collapse\":{\"S\":\"concat-b64\"},\"parallel\":{\"BOOL\":false},"
        "\"convertDDB\":{\"BOOL\":true},\"deaggregate\":{\"BOOL\":false},"
        "\"role\":{\"NULL\":true},\"maxBatch\":{\"N\":\"10\"}}",
        0, &je);
    ck_assert_msg(item != NULL, "%s", je.text);
    s_ddb_put_item(item);
    struct fanout_store *st = s_store();
    struct fanout_mapping *const *found;
    size_t n;
    char err[512];
    ck_assert_int_eq(fanout_store_lookup(st, SRC, &found, &n, err, sizeof err), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(found[0]->collapse, FANOUT_COLLAPSE_CONCAT_B64);
    ck_assert_int_eq(found[0]->parallel, 0);
    ck_assert_int_eq(found[0]->convert_ddb, 1);
    ck_assert_ptr_null(found[0]->role);
    ck_assert_int_eq(json_integer_value(json_object_get(found[0]->extra, "maxBatch")), 10);
    fanout_store_destroy(st);
}
END_TEST

START_TEST(settings_checked)
{
    char err[512];
    static const char *const bad[][3] = {
        {"FANOUT_MAPPING_REFRESH_SECONDS", "soon", "FANOUT_MAPPING_REFRESH_SECONDS"},
        {"FANOUT_MAPPING_REFRESH_SECONDS", "-1", "from 0 to"},
        {"FANOUT_MAPPING_STALE_SECONDS", "1e9", "FANOUT_MAPPING_STALE_SECONDS"},
        {"FANOUT_DDB_PAGE_LIMIT", "0", "FANOUT_DDB_PAGE_LIMIT"},
        {"FANOUT_DDB_PAGE_LIMIT", "2x", "got \"2x\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s_env_clean();
        setenv(bad[i][0], bad[i][1], 1);
        err[0] = 0;
        ck_assert_ptr_null(fanout_store_ddb_new(TABLE, NULL, err, sizeof err));
        ck_assert_msg(strstr(err, bad[i][2]), "%s=%s: %s", bad[i][0], bad[i][1], err);
    }
    s_env_clean();
    ck_assert_ptr_null(fanout_store_ddb_new("a b", NULL, err, sizeof err));
    ck_assert_msg(strstr(err, "\"a b\"") && strstr(err, "[A-Za-z0-9_.-]"), "%s", err);
    ck_assert_ptr_null(fanout_store_ddb_new("ab", NULL, err, sizeof err));
    ck_assert_ptr_null(fanout_store_ddb_new(NULL, NULL, err, sizeof err));
    struct fanout_store *st =
        fanout_store_ddb_new("arn:aws:dynamodb:us-east-1:123456789012:table/fanoutTargets",
                             "eu-west-1", err, sizeof err);
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_str_eq(st->ops->kind, "dynamodb");
    fanout_store_destroy(st);
}
END_TEST

START_TEST(table_name_from_environment)
{
    char buf[300], err[512];
    s_env_clean();
    ck_assert_ptr_null(fanout_store_ddb_table_name(buf, sizeof buf, err, sizeof err));
    ck_assert_msg(strstr(err, "FANOUT_TABLE") && strstr(err, "--config") &&
                      strstr(err, "<function name>Targets"),
                  "%s", err);
    setenv("AWS_LAMBDA_FUNCTION_NAME", "fanout", 1);
    ck_assert_str_eq(fanout_store_ddb_table_name(buf, sizeof buf, err, sizeof err),
                     "fanoutTargets");
    setenv("FANOUT_TABLE", "mappings", 1);
    ck_assert_str_eq(fanout_store_ddb_table_name(buf, sizeof buf, err, sizeof err),
                     "mappings");
    setenv("FANOUT_TABLE", "", 1);
    ck_assert_str_eq(fanout_store_ddb_table_name(buf, sizeof buf, err, sizeof err),
                     "fanoutTargets");
    char small[8];
    ck_assert_ptr_null(fanout_store_ddb_table_name(small, sizeof small, err, sizeof err));
    ck_assert_msg(strstr(err, "too long"), "%s", err);
}
END_TEST

/* ---- the item codec (no server) ------------------------------------------- */

static struct fanout_mapping *s_from_item(const char *item_json, char *err, size_t len)
{
    json_error_t je;
    json_t *item = json_loads(item_json, 0, &je);
    ck_assert_msg(item != NULL, "test JSON: %s", je.text);
    struct fanout_mapping *m = fanout_mapping_from_item(item, 3, err, len);
    json_decref(item);
    return m;
}

#define ITEM_BASE                                                                          \
    "\"sourceArn\":{\"S\":\"" SRC "\"},\"id\":{\"S\":\"t\"},\"type\":{\"S\":\"sqs\"},"     \
    "\"destination\":{\"S\":\"q\"}"

START_TEST(item_types_read)
{
    char err[512] = "";
    struct fanout_mapping *m = s_from_item(
        "{" ITEM_BASE ",\"active\":{\"BOOL\":false},\"region\":{\"S\":\"eu-west-1\"},"
        "\"externalId\":{\"NULL\":true},\"count\":{\"N\":\"-42\"},"
        "\"ratio\":{\"N\":\"0.25\"},\"huge\":{\"N\":\"1e400\"},"
        "\"big\":{\"N\":\"123456789012345678901234567890\"},\"on\":{\"BOOL\":true},"
        "\"blob\":{\"B\":\"AAEC\"},\"tags\":{\"SS\":[\"x\",\"y\"]},"
        "\"sizes\":{\"NS\":[\"1\",\"2.5\"]},\"raw\":{\"BS\":[\"AA==\"]},"
        "\"nested\":{\"M\":{\"l\":{\"L\":[{\"S\":\"s\"},{\"NULL\":true},"
        "{\"M\":{}}]}}}}",
        err, sizeof err);
    ck_assert_ptr_null(m); /* 1e400 is out of range */
    ck_assert_msg(
        strstr(err, "mapping \"t\" (#3): field \"huge\": N 1e400 is out of range"), "%s",
        err);
    m = s_from_item("{" ITEM_BASE
                    ",\"active\":{\"BOOL\":false},\"region\":{\"S\":\"eu-west-"
                    "1\"},\"externalId\":{\"NULL\":true},\"count\":{\"N\":\"-42\"},"
                    "\"ratio\":{\"N\":\"0.25\"},"
                    "\"big\":{\"N\":\"123456789012345678901234567890\"},"
                    "\"on\":{\"BOOL\":true},\"blob\":{\"B\":\"AAEC\"},"
                    "\"tags\":{\"SS\":[\"x\",\"y\"]},\"sizes\":{\"NS\":[\"1\",\"2.5\"]},"
                    "\"raw\":{\"BS\":[\"AA==\"]},\"nested\":{\"M\":{\"l\":{\"L\":"
                    "[{\"S\":\"s\"},{\"NULL\":true},{\"M\":{}}]}}}}",
                    err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert_int_eq(m->active, 0);
    ck_assert_str_eq(m->region, "eu-west-1");
    ck_assert_ptr_null(m->external_id);
    json_error_t je;
    json_t *want = json_loads(
        "{\"count\":-42,\"ratio\":0.25,\"big\":1.2345678901234568e29,\"on\":true,"
        "\"blob\":\"AAEC\",\"tags\":[\"x\",\"y\"],\"sizes\":[1,2.5],\"raw\":[\"AA==\"],"
        "\"nested\":{\"l\":[\"s\",null,{}]}}",
        0, &je);
    ck_assert_ptr_nonnull(want);
    char *got = json_dumps(m->extra, JSON_SORT_KEYS);
    ck_assert_msg(json_equal(m->extra, want), "%s", got);
    free(got);
    ck_assert(json_is_integer(json_object_get(m->extra, "count")));
    json_decref(want);
    fanout_mapping_free(m);
}
END_TEST

struct s_bad_item {
    const char *fields; /* after ITEM_BASE */
    const char *expect[2];
};

static const struct s_bad_item s_bad_items[] = {
    {",\"active\":{\"S\":\"true\"}",
     {"mapping \"t\" (#3): field \"active\": expected a boolean (DynamoDB BOOL: true or "
      "false), got S \"true\"",
      NULL}},
    {",\"active\":{\"N\":\"1\"}", {"field \"active\"", "got N 1"}},
    {",\"active\":{\"BOOL\":\"true\"}", {"field \"active\"", "got BOOL"}},
    {",\"active\":true", {"field \"active\"", "not a DynamoDB attribute value"}},
    {",\"active\":{\"NULL\":true}", {"field \"active\"", "required, missing"}},
    {"", {"field \"active\"", "required, missing"}},
    {",\"active\":{\"BOOL\":true},\"parallel\":{\"S\":\"false\"}",
     {"field \"parallel\"", "got S \"false\""}},
    {",\"active\":{\"BOOL\":true},\"region\":{\"SS\":[\"us-east-1\"]}",
     {"field \"region\": expected a string (DynamoDB S), got SS", NULL}},
    {",\"active\":{\"BOOL\":true},\"role\":{\"S\":\"x\",\"N\":\"1\"}",
     {"field \"role\"", "not a DynamoDB attribute value"}},
    {",\"active\":{\"BOOL\":true},\"limit\":{\"N\":\"ten\"}",
     {"field \"limit\"", "N \"ten\" is not a number"}},
    {",\"active\":{\"BOOL\":true},\"limit\":{\"X\":\"1\"}",
     {"field \"limit\"", "unknown or malformed DynamoDB attribute value of type \"X\""}},
    {",\"active\":{\"BOOL\":true},\"l\":{\"L\":[{\"N\":\"1\"},{\"Q\":1}]}",
     {"field \"l\"", "\"Q\""}},
    {",\"active\":{\"BOOL\":true},\"collapse\":{\"S\":\"zip\"}",
     {"field \"collapse\"", "none, JSON, concat, concat-b64"}},
    {",\"active\":{\"BOOL\":true},\"type\":{\"S\":\"../x\"}", {"field \"type\"", "path"}},
    /* the original CLI writes it as a BOOL; that only */
    {",\"active\":{\"BOOL\":true},\"appendNewlines\":{\"S\":\"true\"}",
     {"field \"appendNewlines\": expected a boolean (DynamoDB BOOL", "got S \"true\""}},
    /* a filter is a string holding the pattern's JSON */
    {",\"active\":{\"BOOL\":true},\"filter\":{\"M\":{\"a\":{\"L\":[{\"S\":\"x\"}]}}}",
     {"field \"filter\": expected a string (DynamoDB S), got M", NULL}},
    {",\"active\":{\"BOOL\":true},\"filter\":{\"S\":\"{\\\"a\\\":{\\\"b\\\":[{"
     "\\\"numeric\\\":"
     "[\\\">\\\",\\\"1\\\"]}]}}\"}",
     {"field \"filter\": a.b[0]: \"numeric\" expects a number at position 1, got a string",
      NULL}},
};

START_TEST(item_invalid_fields_named)
{
    const struct s_bad_item *c = &s_bad_items[_i];
    char json[1024], err[512] = "";
    /* jansson keeps the last of duplicate keys: later fields override */
    snprintf(json, sizeof json, "{" ITEM_BASE "%s}", c->fields);
    struct fanout_mapping *m = s_from_item(json, err, sizeof err);
    ck_assert_msg(m == NULL, "accepted: %s", c->fields);
    for (int k = 0; k < 2 && c->expect[k]; k++)
        ck_assert_msg(strstr(err, c->expect[k]), "case %s: \"%s\" not in: %s", c->fields,
                      c->expect[k], err);
    ck_assert_msg(strstr(err, "mapping \"t\" (#3)"), "%s", err);
}
END_TEST

START_TEST(item_not_an_object)
{
    char err[512];
    ck_assert_ptr_null(s_from_item("[1]", err, sizeof err));
    ck_assert_msg(strstr(err, "mapping #3: expected a DynamoDB item"), "%s", err);
    /* no usable id: the mapping is named by its position */
    ck_assert_ptr_null(s_from_item("{}", err, sizeof err));
    ck_assert_msg(strstr(err, "mapping #3: field \"sourceArn\": required"), "%s", err);
    ck_assert_ptr_null(s_from_item(
        "{\"sourceArn\":{\"S\":\"" SRC "\"},\"id\":{\"N\":\"1\"}}", err, sizeof err));
    ck_assert_msg(strstr(err, "mapping #3: field \"id\": expected a string (DynamoDB S), "
                              "got N 1"),
                  "%s", err);
}
END_TEST

/* A mapping written as an item reads back as the same mapping. */
START_TEST(item_round_trip)
{
    json_error_t je;
    json_t *obj = json_loads(
        "{\"sourceArn\":\"" SRC "\",\"id\":\"r\",\"type\":\"sqs\",\"destination\":\"q\","
        "\"active\":true,\"role\":\"arn:aws:iam::123456789012:role/r\","
        "\"externalId\":\"ext-1\",\"region\":\"eu-west-1\",\"collapse\":\"none\","
        "\"parallel\":false,\"convertDDB\":true,\"deaggregate\":false,"
        "\"batch\":25,\"ratio\":0.5,\"on\":true,\"name\":\"n\",\"opts\":{\"a\":[1,\"b\"]}}",
        0, &je);
    ck_assert_msg(obj != NULL, "%s", je.text);
    char err[512];
    struct fanout_mapping *m = fanout_mapping_parse(obj, 0, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    json_t *item = fanout_mapping_to_item(m);
    ck_assert_ptr_nonnull(item);
    ck_assert(json_is_true(json_object_get(json_object_get(item, "active"), "BOOL")));
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(item, "batch"), "N")), "25");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(item, "id"), "S")),
                     "r");
    struct fanout_mapping *back = fanout_mapping_from_item(item, 0, err, sizeof err);
    ck_assert_msg(back != NULL, "%s", err);
    ck_assert_msg(json_equal(back->json, obj), "round trip changed the mapping");
    fanout_mapping_free(back);
    fanout_mapping_free(m);
    json_decref(item);
    json_decref(obj);
}
END_TEST

/* "filter": read from a string (S); a mapping whose filter is an object
 * is written with the pattern's JSON in a string, and reads back to the
 * same pattern. */
START_TEST(item_filter_string)
{
    char err[512] = "";
    json_t *view = json_loads("{\"data\":{\"type\":\"order\"}}", 0, NULL);
    json_t *other = json_loads("{\"data\":{\"type\":\"refund\"}}", 0, NULL);
    struct fanout_mapping *m =
        s_from_item("{" ITEM_BASE ",\"active\":{\"BOOL\":true},\"filter\":{\"S\":"
                    "\"{\\\"data\\\":{\\\"type\\\":[\\\"order\\\"]}}\"}}",
                    err, sizeof err);
    ck_assert_msg(m && m->filter, "%s", err);
    ck_assert_int_eq(fanout_filter_match(m->filter, view, 1), 1);
    ck_assert_int_eq(fanout_filter_match(m->filter, other, 1), 0);
    ck_assert_ptr_null(json_object_get(m->extra, "filter"));
    fanout_mapping_free(m);

    json_t *obj = json_loads("{\"sourceArn\":\"" SRC "\",\"id\":\"r\",\"type\":\"sqs\","
                             "\"destination\":\"q\",\"active\":true,\"filter\":{\"data\":"
                             "{\"type\":[\"order\"]}},\"opts\":{\"a\":1}}",
                             0, NULL);
    m = fanout_mapping_parse(obj, 0, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    json_t *item = fanout_mapping_to_item(m);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(item, "filter"), "S")),
        "{\"data\":{\"type\":[\"order\"]}}");
    /* plugin options keep their DynamoDB types */
    ck_assert_ptr_nonnull(json_object_get(json_object_get(item, "opts"), "M"));
    struct fanout_mapping *back = fanout_mapping_from_item(item, 0, err, sizeof err);
    ck_assert_msg(back && back->filter, "%s", err);
    ck_assert_int_eq(fanout_filter_match(back->filter, view, 1), 1);
    ck_assert_int_eq(fanout_filter_match(back->filter, other, 1), 0);
    fanout_mapping_free(back);
    fanout_mapping_free(m);
    json_decref(item);
    json_decref(obj);
    json_decref(view);
    json_decref(other);
}
END_TEST

static void s_codec_setup(void)
{
    fanout_log_set(FANOUT_LOG_ERROR, 0);
}

static void s_add_shared(TCase *tc)
{
    tcase_add_test(tc, active_mappings_by_source);
    tcase_add_test(tc, invalid_mapping_reported_others_work);
    tcase_add_test(tc, strict_attribute_types);
    tcase_add_test(tc, all_lists_every_mapping_and_the_problems);
    tcase_add_test(tc, pages_followed_to_the_last);
    tcase_add_test(tc, pages_of_one_megabyte_followed);
    tcase_add_test(tc, changes_show_after_the_refresh_interval);
    tcase_add_test(tc, failed_refresh_serves_the_last_good_mappings);
    tcase_add_test(tc, original_cli_mapping_read_and_warned_once_per_load);
}

int main(void)
{
    Suite *s = suite_create("store");
    TCase *file = tcase_create("file-store");
    tcase_add_checked_fixture(file, s_file_setup, s_teardown);
    s_add_shared(file);
    suite_add_tcase(s, file);

    TCase *ddb = tcase_create("dynamodb-store");
    tcase_add_checked_fixture(ddb, s_ddb_setup, s_teardown);
    tcase_set_timeout(ddb, 120);
    s_add_shared(ddb);
    tcase_add_test(ddb, stale_bound_then_failure);
    tcase_add_test(ddb, nothing_read_yet_fails);
    tcase_add_test(ddb, missing_table_named);
    tcase_add_test(ddb, seed_design_items);
    tcase_add_test(ddb, cache_of_sources_bounded);
    suite_add_tcase(s, ddb);

    TCase *codec = tcase_create("dynamodb-items");
    tcase_add_checked_fixture(codec, s_codec_setup, NULL);
    tcase_add_test(codec, settings_checked);
    tcase_add_test(codec, table_name_from_environment);
    tcase_add_test(codec, item_types_read);
    tcase_add_loop_test(codec, item_invalid_fields_named, 0,
                        (int)(sizeof s_bad_items / sizeof *s_bad_items));
    tcase_add_test(codec, item_not_an_object);
    tcase_add_test(codec, item_round_trip);
    tcase_add_test(codec, item_filter_string);
    suite_add_tcase(s, codec);
    return fanout_check_run(s);
}
