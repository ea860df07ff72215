/* The plugin loader against the fixture plugins of tests/fixtures (built
 * into $FANOUT_LOADER_FIXTURES): every refusal rule, the 1.0 plugin that
 * must keep loading, the type-name rule, caching, scanning and the SDK
 * example (hello). */
#include <check.h>

#include "check_main.h"
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/loader.h"
#include "common/log.h"
#include "common/util.h"

/* ---- a host table that records what plugins log ------------------------- */

static pthread_mutex_t s_log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fanout_sbuf s_plugin_log; /* "LEVEL [scope] message\n" lines */

static void s_host_vlog(enum fanout_log_level level, const char *scope, const char *fmt,
                        va_list ap) FANOUT_FMT(3, 0);
static void s_host_vlog(enum fanout_log_level level, const char *scope, const char *fmt,
                        va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    pthread_mutex_lock(&s_log_lock);
    fanout_sbuf_printf(&s_plugin_log, "%d [%s] %s\n", (int)level, scope ? scope : "-", msg);
    pthread_mutex_unlock(&s_log_lock);
}

static void s_host_log(enum fanout_log_level level, const char *scope, const char *fmt, ...)
    FANOUT_FMT(3, 4);
static void s_host_log(enum fanout_log_level level, const char *scope, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_host_vlog(level, scope, fmt, ap);
    va_end(ap);
}

static int s_host_log_enabled(enum fanout_log_level level)
{
    (void)level;
    return 1;
}

static int64_t s_host_now_ms(void)
{
    return 1700000000000;
}

static int64_t s_host_remaining_ms(void)
{
    return INT64_MAX;
}

static const struct fanout_host s_host = {
    .abi_major = FANOUT_ABI_MAJOR,
    .abi_minor = FANOUT_ABI_MINOR,
    .struct_size = sizeof(struct fanout_host),
    .log = s_host_log,
    .vlog = s_host_vlog,
    .log_enabled = s_host_log_enabled,
    .now_ms = s_host_now_ms,
    .remaining_ms = s_host_remaining_ms,
};

/* How many plugin log lines contain `needle`. */
static int s_plugin_log_count(const char *needle)
{
    int n = 0;
    pthread_mutex_lock(&s_log_lock);
    const char *p = s_plugin_log.bytes ? (const char *)s_plugin_log.bytes : "";
    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p += strlen(needle);
    }
    pthread_mutex_unlock(&s_log_lock);
    return n;
}

/* The engine's own log (the loader writes there) goes to a file per test. */
static FILE *s_engine_log;

static char *s_engine_log_text(void)
{
    fflush(s_engine_log);
    long n = ftell(s_engine_log);
    char *s = calloc(1, (size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(pread(fileno(s_engine_log), s, (size_t)n, 0), n);
    return s;
}

static void s_setup(void)
{
    fanout_sbuf_free(&s_plugin_log);
    s_engine_log = tmpfile();
    ck_assert_ptr_nonnull(s_engine_log);
    fanout_log_set(FANOUT_LOG_INFO, 0);
    fanout_log_set_fd(fileno(s_engine_log));
}

static void s_teardown(void)
{
    fanout_log_set_fd(-1);
    fclose(s_engine_log);
    s_engine_log = NULL;
    fanout_sbuf_free(&s_plugin_log);
}

/* ---- helpers ------------------------------------------------------------ */

static const char *s_fixtures(void)
{
    const char *d = getenv("FANOUT_LOADER_FIXTURES");
    ck_assert_msg(d && *d, "FANOUT_LOADER_FIXTURES is not set (run through meson test)");
    return d;
}

static char *s_fixture_path(const char *type)
{
    char *p = NULL;
    ck_assert_int_gt(asprintf(&p, "%s/%s.so", s_fixtures(), type), 0);
    return p;
}

/* Non-zero while `path` is mapped in this process. */
static int s_is_mapped(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (!h)
        return 0;
    dlclose(h);
    return 1;
}

static void s_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static char *s_read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    struct fanout_sbuf b = {0};
    char chunk[512];
    size_t n;
    fanout_sbuf_puts(&b, "");
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fanout_sbuf_put(&b, chunk, n);
    fclose(f);
    return (char *)b.bytes;
}

/* A scratch directory, removed (with what tests put in it) by s_rm_tree. */
static char *s_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char *d = NULL;
    ck_assert_int_gt(asprintf(&d, "%s/fanout-loader-XXXXXX", base ? base : "/tmp"), 0);
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

static void s_rm_tree(const char *dir)
{
    char *cmd = NULL;
    ck_assert_int_gt(asprintf(&cmd, "rm -rf '%s'", dir), 0);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
}

/* ---- the good 1.0 plugin ------------------------------------------------ */

START_TEST(test_good_plugin_loads_intact)
{
    struct fanout_loader *l = fanout_loader_new(&s_host, s_fixtures());
    ck_assert_ptr_nonnull(l);
    char err[1024] = "";
    const struct fanout_loaded_plugin *p = fanout_loader_get(l, "good", err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    char *path = s_fixture_path("good");
    ck_assert_str_eq(p->type, "good");
    ck_assert_str_eq(p->path, path);

    const struct fanout_plugin *d = &p->desc;
    ck_assert_uint_eq(d->abi_major, 1);
    ck_assert_uint_eq(d->abi_minor, 0);
    ck_assert_uint_eq(d->struct_size, FANOUT_PLUGIN_SIZE_1_0);
    ck_assert_uint_eq(d->flags, FANOUT_PLUGIN_SERIAL);
    ck_assert_str_eq(d->signature, FANOUT_ABI_SIGNATURE);
    ck_assert_str_eq(d->name, "good");
    ck_assert_str_eq(d->version, "1.2.3");
    ck_assert_str_eq(d->description, "a 1.0 plugin that follows every rule");
    ck_assert_str_eq(d->destination_example, "good:queue");
    ck_assert_uint_eq(d->limits.max_messages_per_call, 500);
    ck_assert_uint_eq(d->limits.max_message_bytes, 1048576);
    ck_assert_uint_eq(d->limits.max_call_bytes, 5242880);
    ck_assert_uint_eq(d->limits.per_message_overhead, 3);
    ck_assert_uint_eq(d->limits.per_call_overhead, 2);
    ck_assert_uint_eq(d->limits.key_counts, 1);
    ck_assert_uint_eq(d->collapse_modes, FANOUT_COLLAPSE_BIT(FANOUT_COLLAPSE_NONE) |
                                             FANOUT_COLLAPSE_BIT(FANOUT_COLLAPSE_JSON));
    ck_assert_int_eq(d->default_collapse, FANOUT_COLLAPSE_JSON);

    ck_assert_ptr_nonnull(d->options);
    ck_assert_uint_eq(d->options_size, 24); /* pointer, int64_t, int + padding */
    ck_assert_str_eq(d->options[0].name, "prefix");
    ck_assert_int_eq(d->options[0].type, FANOUT_OPT_STRING);
    ck_assert_str_eq(d->options[0].default_str, "p-");
    ck_assert_str_eq(d->options[1].name, "ttlSeconds");
    ck_assert_int_eq(d->options[1].type, FANOUT_OPT_INT);
    ck_assert_int_eq(d->options[1].default_int, 60);
    ck_assert_int_eq(d->options[1].min, 1);
    ck_assert_int_eq(d->options[1].max, 3600);
    ck_assert_str_eq(d->options[2].name, "verbose");
    ck_assert_int_eq(d->options[2].type, FANOUT_OPT_BOOL);
    ck_assert_ptr_null(d->options[3].name);

    /* init ran once, with our host; its state is handed back. */
    ck_assert_ptr_nonnull(p->state);
    ck_assert_int_eq(s_plugin_log_count("[good] init"), 1);

    /* The callbacks work through the copy. */
    struct fanout_target t = {
        .struct_size = sizeof t, .id = "t1", .type = "good", .destination = "elsewhere"};
    ck_assert_int_eq(d->validate(&t, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "e.g. good:queue"));
    t.destination = "good:queue";
    ck_assert_int_eq(d->validate(&t, err, sizeof err), 0);
    void *inst = NULL;
    struct fanout_error ferr = {{0}};
    ck_assert_int_eq(d->open(p->state, &t, &inst, &ferr), 0);
    struct fanout_message m = {.key = (const uint8_t *)"k", .key_len = 1};
    const struct fanout_message *ms[3] = {&m, &m, &m};
    struct fanout_batch b = {
        .struct_size = sizeof b, .count = 3, .messages = ms, .attempt = 1};
    struct fanout_outcome out[3];
    memset(out, 0, sizeof out);
    ck_assert_int_eq(d->send(inst, &b, out), 0);
    ck_assert_int_eq(out[0].status, FANOUT_OK);
    ck_assert_int_eq(out[1].status, FANOUT_THROTTLED);
    ck_assert_str_eq(out[1].code, "SlowDown");
    ck_assert_int_eq(out[2].status, FANOUT_OK);
    d->close(inst);

    char *log = s_engine_log_text();
    ck_assert_ptr_nonnull(strstr(log, "loaded plugin \"good\" 1.2.3 (ABI 1.0)"));
    free(log);

    ck_assert(s_is_mapped(path));
    fanout_loader_destroy(l);
    /* fini ran once and the object is unmapped. */
    ck_assert_int_eq(s_plugin_log_count("[good] fini"), 1);
    ck_assert(!s_is_mapped(path));
    free(path);
}
END_TEST

/* A descriptor larger than ours: accepted, the known part copied. */
START_TEST(test_bigger_descriptor_loads)
{
    struct fanout_loader *l = fanout_loader_new(&s_host, s_fixtures());
    char err[1024] = "";
    const struct fanout_loaded_plugin *p = fanout_loader_get(l, "bigger", err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_uint_gt(p->desc.struct_size, sizeof(struct fanout_plugin));
    ck_assert_str_eq(p->desc.version, "0.0.1");
    ck_assert_ptr_nonnull(p->desc.send);
    ck_assert_ptr_null(p->desc.init);
    ck_assert_ptr_null(p->state);
    fanout_loader_destroy(l);
}
END_TEST

/* ---- refusals ----------------------------------------------------------- */

struct refusal_case {
    const char *type;
    const char *words[3]; /* each must appear in the message */
    const char *absent;   /* must not appear, or NULL */
};

/* The newerminor fixture declares FANOUT_ABI_MINOR + 7, as a literal here. */
#define S_NEWER_MINOR 8
_Static_assert(S_NEWER_MINOR == FANOUT_ABI_MINOR + 7, "update S_NEWER_MINOR");

static const struct refusal_case s_refusals[] = {
    {"wrongmajor", {"has ABI major 2", "this engine speaks 1"}, NULL},
    {"newerminor",
     {"built for ABI 1." FANOUT_STR(S_NEWER_MINOR),
      "newer than this engine's 1." FANOUT_STR(FANOUT_ABI_MINOR)},
     NULL},
    {"shortstruct", {"struct_size", "smaller than the ABI 1.0 descriptor"}, NULL},
    {"oversize", {"declares struct_size", "is only 32 bytes"}, NULL},
    {"badsig",
     {"not binary compatible", "\"fanout-abi-1:p4:l4:z4\"", FANOUT_ABI_SIGNATURE},
     NULL},
    {"nosymbol", {"does not export fanout_plugin_v1", "FANOUT_PLUGIN_DEFINE"}, NULL},
    /* its library's descriptor is not its own */
    {"borrowed", {"does not define fanout_plugin_v1 itself", "borrowdep.so.1"}, NULL},
    {"namemismatch", {"declares name \"other\"", "file's type \"namemismatch\""}, NULL},
    {"nosend", {"lacks required callback", ": send"}, "validate"},
    {"badcollapse", {"invalid collapse mask 0x1f", "only bits 0xf"}, NULL},
    {"baddefault", {"default collapse none", "not among its collapse modes (JSON)"}, NULL},
    {"badflags", {"unknown flags 0x80"}, NULL},
    {"failinit", {"init failed", "cannot reach the moon from here", "(NoMoon)"}, NULL},
    {"badoptions", {"option \"count\"", "does not fit in options_size 24"}, NULL},
    {"badopt-type", {"option \"count\"", "unknown type 7"}, NULL},
    {"badopt-name", {"option #2", "invalid name \"\""}, NULL},
    {"badopt-dup", {"option \"label\" twice"}, NULL},
    {"badopt-align", {"option \"count\"", "not aligned to 8 bytes"}, NULL},
    {"badopt-default", {"option \"count\"", "default 100 outside its range [1, 10]"}, NULL},
    {"badopt-field", {"option \"region\"", "mapping field"}, NULL},
    {"notelf", {"cannot load", "invalid ELF header"}, NULL},
};

START_TEST(test_refusal)
{
    const struct refusal_case *c = &s_refusals[_i];
    struct fanout_loader *l = fanout_loader_new(&s_host, s_fixtures());
    char err[1024] = "";
    const struct fanout_loaded_plugin *p = fanout_loader_get(l, c->type, err, sizeof err);
    ck_assert_msg(p == NULL, "%s loaded", c->type);

    /* The message names the type, the path and the rule. */
    char *path = s_fixture_path(c->type);
    char *prefix = NULL;
    ck_assert_int_gt(asprintf(&prefix, "plugin \"%s\": ", c->type), 0);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "%s: %s", c->type, err);
    ck_assert_msg(strstr(err, path) != NULL, "%s: no path in: %s", c->type, err);
    for (size_t i = 0; i < 3 && c->words[i]; i++)
        ck_assert_msg(strstr(err, c->words[i]) != NULL, "%s: \"%s\" not in: %s", c->type,
                      c->words[i], err);
    if (c->absent)
        ck_assert_msg(strstr(err, c->absent) == NULL, "%s: \"%s\" in: %s", c->type,
                      c->absent, err);
    /* The path is said once: glibc's own prefix is dropped. */
    ck_assert_ptr_null(strstr(strstr(err, path) + strlen(path), path));

    /* A refused plugin is closed at once. */
    ck_assert_msg(!s_is_mapped(path), "%s is still mapped", path);

    /* The refusal is cached: same text, logged once, not re-opened. */
    char err2[1024] = "";
    ck_assert_ptr_null(fanout_loader_get(l, c->type, err2, sizeof err2));
    ck_assert_str_eq(err, err2);
    char *log = s_engine_log_text();
    const char *first = strstr(log, err);
    ck_assert_msg(first != NULL, "refusal not logged: %s", log);
    ck_assert_ptr_null(strstr(first + 1, err));
    free(log);
    if (strcmp(c->type, "failinit") == 0)
        ck_assert_int_eq(s_plugin_log_count("[failinit] init called"), 1);

    fanout_loader_destroy(l); /* failinit's fini aborts if it is called */
    free(prefix);
    free(path);
}
END_TEST

/* A short error buffer gets a cut, terminated message; none gets nothing. */
START_TEST(test_refusal_short_buffer)
{
    struct fanout_loader *l = fanout_loader_new(&s_host, s_fixtures());
    char err[16];
    memset(err, 'x', sizeof err);
    ck_assert_ptr_null(fanout_loader_get(l, "wrongmajor", err, sizeof err));
    ck_assert_str_eq(err, "plugin \"wrongma");
    ck_assert_ptr_null(fanout_loader_get(l, "wrongmajor", NULL, 0));
    ck_assert_ptr_nonnull(fanout_loader_get(l, "good", NULL, 0));
    fanout_loader_destroy(l);
}
END_TEST

/* ---- type names --------------------------------------------------------- */

START_TEST(test_path_like_types_never_touch_the_filesystem)
{
    /* Files are planted where each bad name would lead if it were spliced
     * into a path: a loader that touched them would say "cannot load". */
    char *tmp = s_mkdtemp();
    char *sub = NULL, *p = NULL;
    char long65[66];
    memset(long65, 'a', 65);
    long65[65] = 0;
    ck_assert_int_gt(asprintf(&sub, "%s/sub", tmp), 0);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    const char *const planted[] = {"../x.so",  "a/b.so",  "x.so.so", ".so",
                                   "UPPER.so", "Good.so", "a b.so"};
    ck_assert_int_gt(asprintf(&p, "%s/a", sub), 0);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    free(p);
    for (size_t i = 0; i < sizeof planted / sizeof *planted; i++) {
        ck_assert_int_gt(asprintf(&p, "%s/%s", sub, planted[i]), 0);
        s_write_file(p, "not a plugin\n");
        free(p);
    }
    ck_assert_int_gt(asprintf(&p, "%s/%s.so", sub, long65), 0);
    s_write_file(p, "not a plugin\n");
    free(p);

    struct fanout_loader *l = fanout_loader_new(&s_host, sub);
    const char *const bad[] = {"../x",
                               "a/b",
                               "x.so",
                               "",
                               "UPPER",
                               "Good",
                               "a b",
                               long65,
                               "/etc/passwd",
                               "good\n",
                               "\xc3\xa9t\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char err[1024] = "";
        ck_assert_ptr_null(fanout_loader_get(l, bad[i], err, sizeof err));
        ck_assert_msg(strstr(err, "is not a valid name: use [a-z0-9_-]{1,64}") != NULL,
                      "%s", err);
        ck_assert_msg(strncmp(err, "plugin type \"", 13) == 0, "%s", err);
        ck_assert_msg(strstr(err, tmp) == NULL, "touched the filesystem: %s", err);
        ck_assert_msg(strstr(err, "\n") == NULL, "raw control byte in: %s", err);
    }
    char err[1024] = "";
    ck_assert_ptr_null(fanout_loader_get(l, "../x", err, sizeof err));
    ck_assert_str_eq(err, "plugin type \"../x\" is not a valid name: use [a-z0-9_-]{1,64}");
    ck_assert_ptr_null(fanout_loader_get(l, NULL, err, sizeof err));
    ck_assert_str_eq(err,
                     "plugin type \"(null)\" is not a valid name: use [a-z0-9_-]{1,64}");

    /* 64 characters is still a name: it is looked up (and not found). */
    ck_assert_ptr_null(fanout_loader_get(l, long65 + 1, err, sizeof err));
    ck_assert_msg(strstr(err, "not found in") != NULL, "%s", err);

    fanout_loader_destroy(l);
    s_rm_tree(tmp);
    free(sub);
    free(tmp);
}
END_TEST

/* ---- search path -------------------------------------------------------- */

START_TEST(test_not_found_lists_searched_dirs)
{
    struct fanout_loader *l =
        fanout_loader_new(&s_host, "/nonexistent/a::/nonexistent/b/:/nonexistent/a");
    ck_assert_str_eq(fanout_loader_search_path(l), "/nonexistent/a:/nonexistent/b");
    char err[1024] = "";
    ck_assert_ptr_null(fanout_loader_get(l, "sns", err, sizeof err));
    ck_assert_str_eq(err, "plugin \"sns\" not found in /nonexistent/a:/nonexistent/b "
                          "(looked for sns.so)");
    fanout_loader_destroy(l);

    l = fanout_loader_new(&s_host, "");
    ck_assert_str_eq(fanout_loader_search_path(l), "");
    ck_assert_ptr_null(fanout_loader_get(l, "sns", err, sizeof err));
    ck_assert_str_eq(err,
                     "plugin \"sns\" not found in (no directories) (looked for sns.so)");
    fanout_loader_destroy(l);
}
END_TEST

START_TEST(test_default_search_path)
{
    char *saved =
        getenv("FANOUT_PLUGIN_PATH") ? strdup(getenv("FANOUT_PLUGIN_PATH")) : NULL;

    setenv("FANOUT_PLUGIN_PATH", "/x::/y/:/opt/fanout/plugins", 1);
    struct fanout_loader *l = fanout_loader_new(&s_host, NULL);
    ck_assert_str_eq(fanout_loader_search_path(l),
                     "/x:/y:/opt/fanout/plugins:" FANOUT_PLUGIN_DIR);
    fanout_loader_destroy(l);

    unsetenv("FANOUT_PLUGIN_PATH");
    l = fanout_loader_new(&s_host, NULL);
    ck_assert_str_eq(fanout_loader_search_path(l),
                     "/opt/fanout/plugins:" FANOUT_PLUGIN_DIR);
    char err[2048] = "";
    ck_assert_ptr_null(fanout_loader_get(l, "no-such-plugin-here", err, sizeof err));
    ck_assert_ptr_nonnull(
        strstr(err, "not found in /opt/fanout/plugins:" FANOUT_PLUGIN_DIR));
    fanout_loader_destroy(l);

    /* The given string replaces the default entirely. */
    setenv("FANOUT_PLUGIN_PATH", "/x", 1);
    l = fanout_loader_new(&s_host, "/only");
    ck_assert_str_eq(fanout_loader_search_path(l), "/only");
    fanout_loader_destroy(l);

    if (saved)
        setenv("FANOUT_PLUGIN_PATH", saved, 1);
    else
        unsetenv("FANOUT_PLUGIN_PATH");
    free(saved);
}
END_TEST

START_TEST(test_first_directory_wins)
{
    char *tmp = s_mkdtemp();
    char *shadow = NULL, *path = NULL;
    ck_assert_int_gt(asprintf(&shadow, "%s/good.so", tmp), 0);
    s_write_file(shadow, "a broken good.so that shadows the real one, and is long "
                         "enough to be read as an ELF header by dlopen\n");

    ck_assert_int_gt(asprintf(&path, "%s:%s", tmp, s_fixtures()), 0);
    struct fanout_loader *l = fanout_loader_new(&s_host, path);
    char err[1024] = "";
    ck_assert_ptr_null(fanout_loader_get(l, "good", err, sizeof err));
    ck_assert_msg(strstr(err, shadow) && strstr(err, "invalid ELF header"), "%s", err);
    fanout_loader_destroy(l);
    free(path);

    ck_assert_int_gt(asprintf(&path, "%s:%s", s_fixtures(), tmp), 0);
    l = fanout_loader_new(&s_host, path);
    const struct fanout_loaded_plugin *p = fanout_loader_get(l, "good", err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    char *real = s_fixture_path("good");
    ck_assert_str_eq(p->path, real);
    fanout_loader_destroy(l);

    free(real);
    free(path);
    free(shadow);
    s_rm_tree(tmp);
    free(tmp);
}
END_TEST

/* ---- caching and threads ------------------------------------------------ */

START_TEST(test_cache_returns_same_pointer)
{
    struct fanout_loader *l = fanout_loader_new(&s_host, s_fixtures());
    char err[1024] = "";
    const struct fanout_loaded_plugin *a = fanout_loader_get(l, "good", err, sizeof err);
    const struct fanout_loaded_plugin *b = fanout_loader_get(l, "good", err, sizeof err);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_eq(a, b);
    ck_assert_int_eq(s_plugin_log_count("[good] init"), 1);

    /* A not-found result is cached too. */
    ck_assert_ptr_null(fanout_loader_get(l, "missing", err, sizeof err));
    char *log = s_engine_log_text();
    ck_assert_ptr_nonnull(strstr(log, "plugin \"missing\" not found"));
    free(log);
    ck_assert_ptr_null(fanout_loader_get(l, "missing", err, sizeof err));
    log = s_engine_log_text();
    const char *first = strstr(log, "plugin \"missing\" not found");
    ck_assert_ptr_null(strstr(first + 1, "plugin \"missing\" not found"));
    free(log);

    /* Another loader is another cache, with its own init. */
    struct fanout_loader *l2 = fanout_loader_new(&s_host, s_fixtures());
    const struct fanout_loaded_plugin *c = fanout_loader_get(l2, "good", err, sizeof err);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_ne(a, c);
    ck_assert_int_eq(s_plugin_log_count("[good] init"), 2);
    fanout_loader_destroy(l2);
    ck_assert_int_eq(s_plugin_log_count("[good] fini"), 1);
    /* ... and destroying it leaves the first one's plugin working. */
    ck_assert_str_eq(a->desc.name, "good");
    fanout_loader_destroy(l);
    ck_assert_int_eq(s_plugin_log_count("[good] fini"), 2);
}
END_TEST

#define THREADS 8

struct thread_arg {
    struct fanout_loader *l;
    const struct fanout_loaded_plugin *good;
    int mismatches;
    int refused;
};

static void *s_thread(void *p)
{
    struct thread_arg *a = p;
    char err[1024];
    for (int i = 0; i < 50; i++) {
        const struct fanout_loaded_plugin *g =
            fanout_loader_get(a->l, "good", err, sizeof err);
        if (!a->good)
            a->good = g;
        else if (a->good != g)
            a->mismatches++;
        if (!fanout_loader_get(a->l, "wrongmajor", err, sizeof err))
            a->refused++;
    }
    return NULL;
}

START_TEST(test_concurrent_get)
{
    struct fanout_loader *l = fanout_loader_new(&s_host, s_fixtures());
    pthread_t th[THREADS];
    struct thread_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct thread_arg){.l = l};
        ck_assert_int_eq(pthread_create(&th[i], NULL, s_thread, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < THREADS; i++) {
        ck_assert_ptr_nonnull(args[i].good);
        ck_assert_ptr_eq(args[i].good, args[0].good);
        ck_assert_int_eq(args[i].mismatches, 0);
        ck_assert_int_eq(args[i].refused, 50);
    }
    ck_assert_int_eq(s_plugin_log_count("[good] init"), 1);
    fanout_loader_destroy(l);
    ck_assert_int_eq(s_plugin_log_count("[good] fini"), 1);
}
END_TEST

/* ---- scan --------------------------------------------------------------- */

struct scan_row {
    char type[80];
    char path[1024];
    const struct fanout_loaded_plugin *p;
    char refusal[1024];
};

struct scan_result {
    struct scan_row rows[64];
    size_t n;
};

static void s_scan_cb(void *ctx, const char *type, const char *path,
                      const struct fanout_loaded_plugin *p, const char *refusal)
{
    struct scan_result *r = ctx;
    ck_assert_uint_lt(r->n, 64);
    struct scan_row *row = &r->rows[r->n++];
    fanout_strlcpy(row->type, type, sizeof row->type);
    fanout_strlcpy(row->path, path, sizeof row->path);
    row->p = p;
    ck_assert_msg((p == NULL) == (refusal != NULL), "%s: exactly one of p and refusal",
                  type);
    fanout_strlcpy(row->refusal, refusal ? refusal : "", sizeof row->refusal);
}

static const struct scan_row *s_row(const struct scan_result *r, const char *type)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->rows[i].type, type) == 0)
            return &r->rows[i];
    ck_abort_msg("scan did not list %s", type);
    return NULL;
}

START_TEST(test_scan_lists_every_fixture)
{
    struct fanout_loader *l = fanout_loader_new(&s_host, s_fixtures());
    struct scan_result *r = calloc(1, sizeof *r);
    fanout_loader_scan(l, s_scan_cb, r);

    const char *const loaded[] = {"bigger", "good", "hello"};
    ck_assert_uint_eq(r->n, sizeof s_refusals / sizeof *s_refusals + 3 + 1);
    for (size_t i = 1; i < r->n; i++)
        ck_assert_msg(strcmp(r->rows[i - 1].type, r->rows[i].type) < 0, "not sorted: %s %s",
                      r->rows[i - 1].type, r->rows[i].type);
    for (size_t i = 0; i < sizeof loaded / sizeof *loaded; i++) {
        const struct scan_row *row = s_row(r, loaded[i]);
        ck_assert_msg(row->p != NULL, "%s: %s", loaded[i], row->refusal);
        ck_assert_str_eq(row->p->desc.name, loaded[i]);
        char *path = s_fixture_path(loaded[i]);
        ck_assert_str_eq(row->path, path);
        free(path);
    }
    for (size_t i = 0; i < sizeof s_refusals / sizeof *s_refusals; i++) {
        const struct scan_row *row = s_row(r, s_refusals[i].type);
        ck_assert_ptr_null(row->p);
        ck_assert_msg(strstr(row->refusal, s_refusals[i].words[0]) != NULL, "%s: %s",
                      row->type, row->refusal);
        char *path = s_fixture_path(s_refusals[i].type);
        ck_assert_str_eq(row->path, path);
        free(path);
    }
    /* A name that breaks the rule is reported, never opened. */
    const struct scan_row *bad = s_row(r, "Invalid_Name");
    ck_assert_ptr_null(bad->p);
    ck_assert_str_eq(
        bad->refusal,
        "plugin type \"Invalid_Name\" is not a valid name: use [a-z0-9_-]{1,64}");
    char *bad_path = s_fixture_path("Invalid_Name");
    ck_assert_str_eq(bad->path, bad_path);
    free(bad_path);

    /* Scan and get share the cache. */
    char err[1024];
    ck_assert_ptr_eq(fanout_loader_get(l, "good", err, sizeof err), s_row(r, "good")->p);
    ck_assert_int_eq(s_plugin_log_count("[good] init"), 1);

    /* A second directory: its good.so is shadowed, its other.so is new. */
    fanout_loader_destroy(l);
    char *tmp = s_mkdtemp(), *p = NULL, *path = NULL;
    ck_assert_int_gt(asprintf(&p, "%s/good.so", tmp), 0);
    s_write_file(p, "shadowed\n");
    free(p);
    ck_assert_int_gt(asprintf(&p, "%s/zzz.so", tmp), 0);
    s_write_file(p, "not a plugin either, but long enough for dlopen to read a header\n");
    ck_assert_int_gt(asprintf(&path, "%s:%s", s_fixtures(), tmp), 0);
    l = fanout_loader_new(&s_host, path);
    memset(r, 0, sizeof *r);
    fanout_loader_scan(l, s_scan_cb, r);
    ck_assert_uint_eq(r->n, sizeof s_refusals / sizeof *s_refusals + 3 + 2);
    ck_assert_ptr_nonnull(s_row(r, "good")->p);
    const struct scan_row *zzz = s_row(r, "zzz");
    ck_assert_str_eq(zzz->path, p);
    ck_assert_ptr_nonnull(strstr(zzz->refusal, "invalid ELF header"));
    fanout_loader_destroy(l);
    free(p);
    free(path);
    s_rm_tree(tmp);
    free(tmp);
    free(r);
}
END_TEST

START_TEST(test_scan_missing_dirs)
{
    struct fanout_loader *l = fanout_loader_new(&s_host, "/nonexistent/a:/nonexistent/b");
    struct scan_result *r = calloc(1, sizeof *r);
    fanout_loader_scan(l, s_scan_cb, r);
    ck_assert_uint_eq(r->n, 0);
    free(r);
    fanout_loader_destroy(l);
}
END_TEST

START_TEST(test_new_needs_a_host)
{
    ck_assert_ptr_null(fanout_loader_new(NULL, "/x"));
    fanout_loader_destroy(NULL);
}
END_TEST

/* ---- file permissions --------------------------------------------------- */

#define NOBODY 65534

static void s_copy_file(const char *from, const char *to, mode_t mode)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(in >= 0, "%s: %s", from, strerror(errno));
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ck_assert_msg(out >= 0, "%s: %s", to, strerror(errno));
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        ck_assert_int_eq(write(out, buf, (size_t)n), n);
    ck_assert_int_eq(n, 0);
    close(in);
    ck_assert_int_eq(fchmod(out, mode), 0);
    close(out);
}

static char *s_join(const char *a, const char *b)
{
    char *p = NULL;
    ck_assert_int_gt(asprintf(&p, "%s/%s", a, b), 0);
    return p;
}

static char *s_mkdir_in(const char *parent, const char *name, mode_t mode)
{
    char *d = s_join(parent, name);
    ck_assert_msg(mkdir(d, 0700) == 0, "%s: %s", d, strerror(errno));
    ck_assert_int_eq(chmod(d, mode), 0); /* umask aside */
    return d;
}

/* A copy of the good fixture as DIR/good.so with `mode`. */
static char *s_plant(const char *dir, mode_t mode)
{
    char *src = s_fixture_path("good");
    char *dst = s_join(dir, "good.so");
    s_copy_file(src, dst, mode);
    free(src);
    return dst;
}

/* Loads "good" from `dir` with a fresh loader: NULL when it loaded, else
 * the refusal (allocated). */
static char *s_try_load(const char *dir)
{
    struct fanout_loader *l = fanout_loader_new(&s_host, dir);
    ck_assert_ptr_nonnull(l);
    char err[2048] = "";
    const struct fanout_loaded_plugin *p = fanout_loader_get(l, "good", err, sizeof err);
    char *r = p ? NULL : strdup(err);
    if (p)
        ck_assert_str_eq(p->desc.name, "good");
    fanout_loader_destroy(l);
    return r;
}

#define ck_refused(dir, ...)                                                               \
    do {                                                                                   \
        char *why_ = s_try_load(dir);                                                      \
        ck_assert_msg(why_ != NULL, "%s: loaded, should be refused", dir);                 \
        const char *want_[] = {__VA_ARGS__, NULL};                                         \
        for (size_t i_ = 0; want_[i_]; i_++)                                               \
            ck_assert_msg(strstr(why_, want_[i_]), "want \"%s\" in: %s", want_[i_], why_); \
        ck_assert_msg(strstr(why_, "FANOUT_ALLOW_INSECURE_PLUGINS=1"), "%s", why_);        \
        free(why_);                                                                        \
    } while (0)

#define ck_loads(dir)                                                                      \
    do {                                                                                   \
        char *why_ = s_try_load(dir);                                                      \
        ck_assert_msg(why_ == NULL, "%s: refused: %s", dir, why_ ? why_ : "");             \
    } while (0)

/* A scratch tree whose own directories pass: mode 0755, ours. */
static char *s_secure_tmp(void)
{
    char *t = s_mkdtemp();
    ck_assert_int_eq(chmod(t, 0755), 0);
    return t;
}

START_TEST(test_perm_file_modes)
{
    unsetenv("FANOUT_ALLOW_INSECURE_PLUGINS");
    char *tmp = s_secure_tmp();
    char *d = s_mkdir_in(tmp, "p", 0755);
    char *f = s_plant(d, 0644);
    ck_loads(d);
    ck_assert_int_eq(chmod(f, 0755), 0);
    ck_loads(d);
    ck_assert_int_eq(chmod(f, 0400), 0);
    ck_loads(d);

    char want[1024];
    ck_assert_int_eq(chmod(f, 0664), 0);
    snprintf(want, sizeof want, "file %s is writable by group (mode 0664)", f);
    ck_refused(d, "plugin \"good\": ", " is refused: ", want,
               "runs with fanout's credentials");
    ck_assert_int_eq(chmod(f, 0646), 0);
    snprintf(want, sizeof want, "file %s is writable by others (mode 0646)", f);
    ck_refused(d, want);
    ck_assert_int_eq(chmod(f, 0777), 0);
    snprintf(want, sizeof want, "file %s is writable by group and others (mode 0777)", f);
    ck_refused(d, want);
    /* The sticky bit excuses directories only. */
    ck_assert_int_eq(chmod(f, 01666), 0);
    ck_refused(d, "is writable by group and others (mode 1666)");

    /* The refusal is also the target's reason, and logged as a warning. */
    char *log = s_engine_log_text();
    ck_assert_msg(strstr(log, want), "%s", log);
    free(log);
    free(f);
    free(d);
    s_rm_tree(tmp);
    free(tmp);
}
END_TEST

START_TEST(test_perm_directories)
{
    unsetenv("FANOUT_ALLOW_INSECURE_PLUGINS");
    char *tmp = s_secure_tmp();
    char want[1024];

    /* The directory holding the plugin. */
    char *d = s_mkdir_in(tmp, "open", 0777);
    free(s_plant(d, 0644));
    snprintf(want, sizeof want,
             "directory %s is writable by group and others (mode 0777, "
             "no sticky bit)",
             d);
    ck_refused(d, want);
    ck_assert_int_eq(chmod(d, 0775), 0);
    ck_refused(d, "is writable by group (mode 0775, no sticky bit)");
    /* Sticky, like /tmp: others cannot replace our file there. */
    ck_assert_int_eq(chmod(d, 01777), 0);
    ck_loads(d);
    free(d);

    /* An ancestor: tmp/up/mid/leaf/good.so with `up` writable. */
    char *up = s_mkdir_in(tmp, "up", 0755);
    char *mid = s_mkdir_in(up, "mid", 0755);
    char *leaf = s_mkdir_in(mid, "leaf", 0755);
    free(s_plant(leaf, 0644));
    ck_loads(leaf);
    ck_assert_int_eq(chmod(up, 0757), 0);
    snprintf(want, sizeof want,
             "directory %s is writable by others (mode 0757, no sticky "
             "bit)",
             up);
    ck_refused(leaf, want);
    /* Every broken rule is named, top down. */
    ck_assert_int_eq(chmod(leaf, 0777), 0);
    char *why = s_try_load(leaf);
    ck_assert_ptr_nonnull(why);
    char *a = strstr(why, up), *b = strstr(why, "directory "), *c = NULL;
    snprintf(want, sizeof want, "directory %s is writable", leaf);
    c = strstr(why, want);
    ck_assert_msg(a && b && c && b < c, "%s", why);
    free(why);
    ck_assert_int_eq(chmod(up, 0755), 0);
    ck_assert_int_eq(chmod(leaf, 0755), 0);
    ck_loads(leaf);

    /* The search path names a symlink: its target is what is checked. A
     * link in an open directory to a sound tree loads; a link in a sound
     * directory into an open one does not. */
    char *open_dir = s_mkdir_in(tmp, "open2", 0777);
    char *link = s_join(open_dir, "link");
    ck_assert_int_eq(symlink(leaf, link), 0);
    ck_loads(link);
    free(link);
    char *sound = s_mkdir_in(tmp, "sound", 0755);
    char *target = s_mkdir_in(open_dir, "plugins", 0755);
    free(s_plant(target, 0644));
    link = s_join(sound, "link");
    ck_assert_int_eq(symlink(target, link), 0);
    snprintf(want, sizeof want, "directory %s is writable by group and others", open_dir);
    ck_refused(link, want);
    /* A plugin file that is a symlink: likewise. */
    char *fl = s_join(sound, "good.so");
    char *tf = s_join(target, "good.so");
    ck_assert_int_eq(symlink(tf, fl), 0);
    ck_refused(sound, want);
    ck_assert_int_eq(unlink(fl), 0);
    free(tf);
    tf = s_join(leaf, "good.so");
    ck_assert_int_eq(symlink(tf, fl), 0);
    ck_loads(sound);

    free(tf);
    free(fl);
    free(link);
    free(target);
    free(sound);
    free(open_dir);
    free(leaf);
    free(mid);
    free(up);
    s_rm_tree(tmp);
    free(tmp);
}
END_TEST

START_TEST(test_perm_owners)
{
    unsetenv("FANOUT_ALLOW_INSECURE_PLUGINS");
    if (geteuid() != 0) {
        /* chown to another user needs root: the modes are tested above. */
        fprintf(stderr, "test_perm_owners: not root, owner rules not tested\n");
        return;
    }
    char *tmp = s_secure_tmp();
    char want[1024];

    char *d = s_mkdir_in(tmp, "p", 0755);
    char *f = s_plant(d, 0644);
    ck_assert_int_eq(chown(f, NOBODY, NOBODY), 0);
    ck_assert_int_eq(chmod(f, 0644), 0);
    snprintf(want, sizeof want,
             "file %s is owned by uid %d, not by root or uid 0 that runs "
             "fanout",
             f, NOBODY);
    ck_refused(d, want);
    /* In a sticky directory the file must still be ours. */
    ck_assert_int_eq(chmod(d, 01777), 0);
    ck_refused(d, want);
    ck_assert_int_eq(chown(f, 0, 0), 0);
    ck_loads(d);
    ck_assert_int_eq(chmod(d, 0755), 0);

    /* A directory owned by someone else, even with a sound mode. */
    ck_assert_int_eq(chown(d, NOBODY, NOBODY), 0);
    snprintf(want, sizeof want, "directory %s is owned by uid %d", d, NOBODY);
    ck_refused(d, want);
    /* ... or above it. */
    ck_assert_int_eq(chown(d, 0, 0), 0);
    ck_loads(d);
    ck_assert_int_eq(chown(tmp, NOBODY, NOBODY), 0);
    snprintf(want, sizeof want, "directory %s is owned by uid %d", tmp, NOBODY);
    ck_refused(d, want);
    ck_assert_int_eq(chown(tmp, 0, 0), 0);

    free(f);
    free(d);
    s_rm_tree(tmp);
    free(tmp);
}
END_TEST

START_TEST(test_perm_opt_out)
{
    char *tmp = s_secure_tmp();
    char *d = s_mkdir_in(tmp, "open", 0777);
    char *f = s_plant(d, 0666);

    /* Only "1" opts out. */
    setenv("FANOUT_ALLOW_INSECURE_PLUGINS", "yes", 1);
    ck_refused(d, "is writable by group and others");
    setenv("FANOUT_ALLOW_INSECURE_PLUGINS", "0", 1);
    ck_refused(d, "is writable by group and others");

    setenv("FANOUT_ALLOW_INSECURE_PLUGINS", "1", 1);
    ck_loads(d);
    ck_loads(d);
    /* Each load that relied on it is logged, naming every broken rule. */
    char *log = s_engine_log_text();
    int n = 0;
    for (const char *p = log; (p = strstr(p, "loading it although")) != NULL; p++)
        n++;
    ck_assert_msg(n == 2, "%d warnings in: %s", n, log);
    char want[1024];
    snprintf(want, sizeof want, "WARN");
    ck_assert_msg(strstr(log, want) && strstr(log, "FANOUT_ALLOW_INSECURE_PLUGINS=1") &&
                      strstr(log, "directory ") && strstr(log, "file "),
                  "%s", log);
    free(log);

    /* A sound plugin never mentions it. */
    ck_assert_int_eq(chmod(d, 0755), 0);
    ck_assert_int_eq(chmod(f, 0644), 0);
    ck_assert_int_eq(ftruncate(fileno(s_engine_log), 0), 0);
    rewind(s_engine_log);
    ck_loads(d);
    log = s_engine_log_text();
    ck_assert_msg(!strstr(log, "although"), "%s", log);
    free(log);
    unsetenv("FANOUT_ALLOW_INSECURE_PLUGINS");

    free(f);
    free(d);
    s_rm_tree(tmp);
    free(tmp);
}
END_TEST

/* On a read-only mount nobody can change a plugin, whatever its mode and
 * owner say (a Lambda layer's zip may carry 0777): it loads. */
START_TEST(test_perm_read_only_mount)
{
    unsetenv("FANOUT_ALLOW_INSECURE_PLUGINS");
    char *tmp = s_secure_tmp();
    char *d = s_mkdir_in(tmp, "layer", 0755);
    if (mount("fanout-test", d, "tmpfs", 0, "mode=0777,size=16m") != 0) {
        fprintf(stderr,
                "test_perm_read_only_mount: cannot mount a tmpfs (%s): not tested\n",
                strerror(errno));
        s_rm_tree(tmp);
        free(d);
        free(tmp);
        return;
    }
    char *f = s_plant(d, 0666);
    if (geteuid() == 0)
        ck_assert_int_eq(chown(f, NOBODY, NOBODY), 0);
    /* writable: refused */
    ck_refused(d, "is writable by group and others (mode 0666)",
               "is writable by group and others (mode 0777, no sticky bit)");
    ck_assert_msg(mount("fanout-test", d, "tmpfs", MS_REMOUNT | MS_RDONLY, "") == 0, "%s",
                  strerror(errno));
    ck_loads(d);
    ck_assert_int_eq(umount2(d, MNT_DETACH), 0);
    free(f);
    free(d);
    s_rm_tree(tmp);
    free(tmp);
}
END_TEST

/* `fanout plugins` lists the refusal with the rest. */
START_TEST(test_perm_scan)
{
    unsetenv("FANOUT_ALLOW_INSECURE_PLUGINS");
    char *tmp = s_secure_tmp();
    char *d = s_mkdir_in(tmp, "p", 0755);
    char *f = s_plant(d, 0620);
    struct fanout_loader *l = fanout_loader_new(&s_host, d);
    struct scan_result *r = calloc(1, sizeof *r);
    fanout_loader_scan(l, s_scan_cb, r);
    ck_assert_uint_eq(r->n, 1);
    const struct scan_row *row = s_row(r, "good");
    ck_assert_ptr_null(row->p);
    ck_assert_msg(strstr(row->refusal, "is writable by group (mode 0620)"), "%s",
                  row->refusal);
    fanout_loader_destroy(l);
    free(r);
    free(f);
    free(d);
    s_rm_tree(tmp);
    free(tmp);
}
END_TEST

/* The library loaded is the file checked, and its descriptor is not
 * reused while it is mapped: two plugins loaded one after the other, each
 * through /proc/self/fd/N, stay two. */
START_TEST(test_perm_loads_what_was_checked)
{
    unsetenv("FANOUT_ALLOW_INSECURE_PLUGINS");
    char *tmp = s_secure_tmp();
    char *path = NULL;
    ck_assert_int_gt(asprintf(&path, "%s:%s", tmp, s_fixtures()), 0);
    char *f = s_plant(tmp, 0644);
    struct fanout_loader *l = fanout_loader_new(&s_host, path);
    char err[1024];
    const struct fanout_loaded_plugin *g = fanout_loader_get(l, "good", err, sizeof err);
    ck_assert_msg(g != NULL, "%s", err);
    ck_assert_str_eq(g->path, f);
    const struct fanout_loaded_plugin *b = fanout_loader_get(l, "bigger", err, sizeof err);
    ck_assert_msg(b != NULL, "%s", err);
    ck_assert_str_eq(b->desc.name, "bigger");
    ck_assert_str_eq(g->desc.name, "good");
    ck_assert_ptr_ne(g->desc.send, b->desc.send);
    fanout_loader_destroy(l);
    free(f);
    free(path);
    s_rm_tree(tmp);
    free(tmp);
}
END_TEST

/* ---- the SDK example ---------------------------------------------------- */

struct hello_options {
    const char *prefix;
};

START_TEST(test_hello_example)
{
    struct fanout_loader *l = fanout_loader_new(&s_host, s_fixtures());
    char err[1024] = "";
    const struct fanout_loaded_plugin *p = fanout_loader_get(l, "hello", err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    const struct fanout_plugin *d = &p->desc;
    ck_assert_uint_eq(d->flags, FANOUT_PLUGIN_SERIAL);
    ck_assert_uint_gt(d->limits.max_messages_per_call, 0);
    ck_assert_uint_gt(d->limits.max_message_bytes, 0);
    ck_assert_str_eq(d->options[0].name, "prefix");
    ck_assert_int_eq(d->options[0].type, FANOUT_OPT_STRING);
    ck_assert_ptr_null(d->options[1].name);
    ck_assert_uint_eq(d->options_size, sizeof(struct hello_options));
    ck_assert_str_eq(d->destination_example, "/tmp/fanout-hello.tsv");

    char *tmp = s_mkdtemp(), *file = NULL;
    ck_assert_int_gt(asprintf(&file, "%s/out.tsv", tmp), 0);
    struct hello_options opts = {.prefix = "p:"};
    struct fanout_target t = {.struct_size = sizeof t,
                              .id = "demo",
                              .type = "hello",
                              .destination = "out.tsv",
                              .options = &opts};
    ck_assert_int_eq(d->validate(&t, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "absolute") && strstr(err, "e.g. /tmp/fanout-hello.tsv"),
                  "%s", err);
    t.destination = "/tmp/";
    ck_assert_int_eq(d->validate(&t, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "directory"));
    t.destination = file;
    opts.prefix = "a\tb";
    ck_assert_int_eq(d->validate(&t, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "prefix"));
    opts.prefix = "p:";
    ck_assert_int_eq(d->validate(&t, err, sizeof err), 0);

    void *inst = NULL;
    struct fanout_error ferr;
    memset(&ferr, 0, sizeof ferr);
    ck_assert_int_eq(d->open(p->state, &t, &inst, &ferr), 0);
    ck_assert_int_eq(s_plugin_log_count("[hello:demo] appending to"), 1);

    struct fanout_record r1 = {.sequence_number = "4950"};
    struct fanout_record r2 = {.sequence_number = "51"};
    struct fanout_record r3 = {.sequence_number = "60"}, r4 = {.sequence_number = "61"};
    const struct fanout_record *rs1[] = {&r1}, *rs2[] = {&r2}, *rs3[] = {&r3, &r4};
    struct fanout_message m1 = {.key = (const uint8_t *)"k1",
                                .key_len = 2,
                                .body = (const uint8_t *)"hello",
                                .body_len = 5,
                                .record_count = 1,
                                .records = rs1};
    struct fanout_message m2 = {.key = (const uint8_t *)"a\tb\\",
                                .key_len = 4,
                                .body = (const uint8_t *)"",
                                .body_len = 0,
                                .record_count = 1,
                                .records = rs2};
    struct fanout_message m3 = {.key = (const uint8_t *)"k3",
                                .key_len = 2,
                                .body = (const uint8_t *)"[1,2]xx",
                                .body_len = 7,
                                .record_count = 2,
                                .records = rs3};
    struct fanout_message m4 = {.key = (const uint8_t *)"", .key_len = 0};
    const struct fanout_message *ms[] = {&m1, &m2, &m3, &m4};
    struct fanout_batch b = {.struct_size = sizeof b,
                             .collapse = FANOUT_COLLAPSE_NONE,
                             .count = 4,
                             .messages = ms,
                             .attempt = 1};
    struct fanout_outcome out[4];
    memset(out, 0, sizeof out);
    ck_assert_int_eq(d->send(inst, &b, out), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(out[i].status, FANOUT_OK);
    b.count = 1;
    ck_assert_int_eq(d->send(inst, &b, out), 0);
    d->close(inst);

    char *text = s_read_file(file);
    ck_assert_str_eq(text, "p:k1\t5\t4950\n"
                           "p:a\\x09b\\x5c\t0\t51\n"
                           "p:k3\t7\t60\n"
                           "p:\t0\t-\n"
                           "p:k1\t5\t4950\n");
    free(text);

    /* A file it cannot open: an error with a code, no instance. */
    char *bad = NULL;
    ck_assert_int_gt(asprintf(&bad, "%s/missing-dir/out.tsv", tmp), 0);
    t.destination = bad;
    inst = NULL;
    ck_assert_int_eq(d->open(p->state, &t, &inst, &ferr), -1);
    ck_assert_str_eq(ferr.code, "OpenFailed");
    ck_assert_ptr_nonnull(strstr(ferr.message, "missing-dir"));
    ck_assert_ptr_null(inst);

    fanout_loader_destroy(l);
    free(bad);
    free(file);
    s_rm_tree(tmp);
    free(tmp);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("loader");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_good_plugin_loads_intact);
    tcase_add_test(tc, test_bigger_descriptor_loads);
    tcase_add_loop_test(tc, test_refusal, 0, (int)(sizeof s_refusals / sizeof *s_refusals));
    tcase_add_test(tc, test_refusal_short_buffer);
    tcase_add_test(tc, test_path_like_types_never_touch_the_filesystem);
    tcase_add_test(tc, test_not_found_lists_searched_dirs);
    tcase_add_test(tc, test_default_search_path);
    tcase_add_test(tc, test_first_directory_wins);
    tcase_add_test(tc, test_cache_returns_same_pointer);
    tcase_add_test(tc, test_concurrent_get);
    tcase_add_test(tc, test_scan_lists_every_fixture);
    tcase_add_test(tc, test_scan_missing_dirs);
    tcase_add_test(tc, test_new_needs_a_host);
    tcase_add_test(tc, test_hello_example);
    tcase_add_test(tc, test_perm_file_modes);
    tcase_add_test(tc, test_perm_directories);
    tcase_add_test(tc, test_perm_owners);
    tcase_add_test(tc, test_perm_opt_out);
    tcase_add_test(tc, test_perm_read_only_mount);
    tcase_add_test(tc, test_perm_scan);
    tcase_add_test(tc, test_perm_loads_what_was_checked);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fanout_check_run(s_suite());
}
