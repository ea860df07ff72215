/* The plugin loader. A plugin is refused (and the refusal cached) unless its
 * descriptor passes every rule of sdk/include/fanout/plugin.h; the checks run
 * in the order that makes each one safe to do: nothing past the header is
 * read before the major and the size say the layout is the one we know. */
#include "core/loader.h"
#include "core/mapping.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#ifndef FANOUT_PLUGIN_DIR
#error "FANOUT_PLUGIN_DIR must be set by the build (the plugin install directory)"
#endif

#define LAYER_PLUGIN_DIR "/opt/fanout/plugins"
#define TYPE_RULE        "[a-z0-9_-]{1,64}"

/* A walk over an options table stops here: a table without its NULL-named
 * terminator would otherwise be read until the process faults. */
#define MAX_OPTIONS 256
/* The engine allocates options_size bytes per target. */
#define MAX_OPTIONS_SIZE 65536

/* The header fields: readable whatever else the plugin got wrong. */
#define HEADER_SIZE (offsetof(struct fanout_plugin, struct_size) + sizeof(uint32_t))

#define KNOWN_FLAGS (FANOUT_PLUGIN_SERIAL | FANOUT_PLUGIN_SOURCE_JSON)

struct loader_entry {
    struct fanout_loaded_plugin pub;
    struct loader_entry *next;
    void *handle;    /* NULL when refused */
    char *type_copy; /* owned; pub.type points here */
    char *path_copy; /* owned, NULL when not found; pub.path points here */
    char *refusal;   /* owned, NULL when loaded */
    /* The checked file, held open while its library may be mapped: the
     * library was opened as /proc/self/fd/N, and glibc matches later
     * dlopen calls by that name, so N must not be reused meanwhile. */
    int fd;
};

struct fanout_loader {
    const struct fanout_host *host;
    char **dirs;
    size_t ndirs;
    char *search_path; /* dirs joined with ':' */
    pthread_mutex_t lock;
    struct loader_entry *entries; /* newest first */
};

/* ---- small helpers ----------------------------------------------------- */

static void s_set_err(char *err, size_t err_len, const char *msg)
{
    if (err && err_len)
        fanout_strlcpy(err, msg, err_len);
}

/* Text from a plugin or a caller, made safe to put inside quotes in a log
 * line: printable ASCII only, cut to a length that keeps messages short. */
static void s_printable(char *out, size_t out_len, const char *s)
{
    if (!s) {
        fanout_strlcpy(out, "(null)", out_len);
        return;
    }
    size_t o = 0, i = 0;
    for (; s[i] && o + 4 < out_len; i++) {
        unsigned char c = (unsigned char)s[i];
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    if (s[i] && out_len >= 4) {
        o = o > out_len - 4 ? out_len - 4 : o;
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
}

static char *s_vformat(const char *fmt, va_list ap) FANOUT_FMT(1, 0);
static char *s_vformat(const char *fmt, va_list ap)
{
    struct fanout_sbuf b = {0};
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || fanout_sbuf_reserve(&b, (size_t)n) != 0)
        return NULL;
    vsnprintf((char *)b.bytes, (size_t)n + 1, fmt, ap);
    return (char *)b.bytes;
}

static char *s_format(const char *fmt, ...) FANOUT_FMT(1, 2);
static char *s_format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = s_vformat(fmt, ap);
    va_end(ap);
    return s;
}

static const char *s_collapse_name(unsigned mode)
{
    switch (mode) {
    case FANOUT_COLLAPSE_NONE: return "none";
    case FANOUT_COLLAPSE_JSON: return "JSON";
    case FANOUT_COLLAPSE_CONCAT: return "concat";
    case FANOUT_COLLAPSE_CONCAT_B64: return "concat-b64";
    }
    return "?";
}

/* ---- search path ------------------------------------------------------- */

static int s_add_dir(struct fanout_loader *l, const char *s, size_t n)
{
    while (n > 1 && s[n - 1] == '/')
        n--;
    if (n == 0)
        return 0; /* empty entries are skipped, as in $PATH */
    for (size_t i = 0; i < l->ndirs; i++)
        if (strlen(l->dirs[i]) == n && memcmp(l->dirs[i], s, n) == 0)
            return 0;
    char **dirs = realloc(l->dirs, (l->ndirs + 1) * sizeof *dirs);
    if (!dirs)
        return -1;
    l->dirs = dirs;
    char *d = malloc(n + 1);
    if (!d)
        return -1;
    memcpy(d, s, n);
    d[n] = 0;
    l->dirs[l->ndirs++] = d;
    return 0;
}

static int s_add_path(struct fanout_loader *l, const char *path)
{
    const char *p = path;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        if (s_add_dir(l, p, n) != 0)
            return -1;
        if (!colon)
            return 0;
        p = colon + 1;
    }
}

static int s_build_search_path(struct fanout_loader *l, const char *search_path)
{
    if (search_path) {
        if (s_add_path(l, search_path) != 0)
            return -1;
    } else {
        const char *env = getenv("FANOUT_PLUGIN_PATH");
        if (env && s_add_path(l, env) != 0)
            return -1;
        if (s_add_path(l, LAYER_PLUGIN_DIR) != 0 || s_add_path(l, FANOUT_PLUGIN_DIR) != 0)
            return -1;
    }
    struct fanout_sbuf b = {0};
    if (fanout_sbuf_puts(&b, "") != 0)
        return -1;
    for (size_t i = 0; i < l->ndirs; i++) {
        if ((i && fanout_sbuf_putc(&b, ':') != 0) ||
            fanout_sbuf_puts(&b, l->dirs[i]) != 0) {
            fanout_sbuf_free(&b);
            return -1;
        }
    }
    l->search_path = (char *)b.bytes;
    return 0;
}

/* ---- descriptor checks -------------------------------------------------- */

static int s_valid_option_name(const char *s)
{
    size_t n = 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
        if (n >= 64)
            return 0;
    }
    return 1;
}

/* Checks the options table; returns NULL when valid, else the rule broken
 * (allocated). `where` is `plugin "T": PATH` for the message. */
static char *s_check_options(const struct fanout_plugin *d, const char *where)
{
    if (!d->options)
        return NULL;
    if (d->options_size > MAX_OPTIONS_SIZE)
        return s_format("%s has options_size %zu, more than the %d bytes allowed", where,
                        d->options_size, MAX_OPTIONS_SIZE);
    for (size_t i = 0;; i++) {
        const struct fanout_option *o = &d->options[i];
        if (!o->name)
            return NULL;
        if (i >= MAX_OPTIONS)
            return s_format("%s has more than %d options (is the table missing its "
                            "NULL-named terminator?)",
                            where, MAX_OPTIONS);
        char name[80];
        s_printable(name, sizeof name, o->name);
        if (!s_valid_option_name(o->name))
            return s_format("%s option #%zu has invalid name \"%s\": use a letter then "
                            "[A-Za-z0-9_-], at most 64",
                            where, i + 1, name);
        /* an option may not shadow a field of the mapping schema */
        for (size_t f = 0; fanout_mapping_fields[f]; f++)
            if (strcmp(o->name, fanout_mapping_fields[f]) == 0)
                return s_format("%s option \"%s\" is a mapping field of the schema and "
                                "cannot be redeclared",
                                where, name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(d->options[j].name, o->name) == 0)
                return s_format("%s declares option \"%s\" twice", where, name);
        size_t size, align;
        switch (o->type) {
        case FANOUT_OPT_STRING:
            size = sizeof(const char *);
            align = _Alignof(const char *);
            break;
        case FANOUT_OPT_INT:
            size = sizeof(int64_t);
            align = _Alignof(int64_t);
            break;
        case FANOUT_OPT_BOOL:
            size = sizeof(int);
            align = _Alignof(int);
            break;
        default:
            return s_format("%s option \"%s\" has unknown type %d", where, name,
                            (int)o->type);
        }
        if (o->offset > d->options_size || size > d->options_size - o->offset)
            return s_format("%s option \"%s\" at offset %zu (%zu bytes) does not fit in "
                            "options_size %zu",
                            where, name, o->offset, size, d->options_size);
        if (o->offset % align)
            return s_format("%s option \"%s\" at offset %zu is not aligned to %zu bytes",
                            where, name, o->offset, align);
        if (o->type == FANOUT_OPT_INT && o->min != o->max &&
            (o->min > o->max || o->default_int < o->min || o->default_int > o->max))
            return s_format("%s option \"%s\" has default %lld outside its range "
                            "[%lld, %lld]",
                            where, name, (long long)o->default_int, (long long)o->min,
                            (long long)o->max);
        if (o->type == FANOUT_OPT_BOOL && o->default_int != 0 && o->default_int != 1)
            return s_format("%s option \"%s\" is a bool with default %lld (use 0 or 1)",
                            where, name, (long long)o->default_int);
    }
}

/* The rules after the layout is known: metadata, callbacks, collapse modes,
 * options. `d` is our zero-padded copy. */
static char *s_check_desc(const struct fanout_plugin *d, const char *type,
                          const char *where)
{
    char buf[96], want[96];
    if (!d->signature || strcmp(d->signature, FANOUT_ABI_SIGNATURE) != 0) {
        s_printable(buf, sizeof buf, d->signature);
        return s_format("%s is not binary compatible: its signature is \"%s\", this "
                        "engine's is \"%s\"",
                        where, buf, FANOUT_ABI_SIGNATURE);
    }
    if (!d->name || strcmp(d->name, type) != 0) {
        s_printable(buf, sizeof buf, d->name);
        return s_format("%s declares name \"%s\": a plugin's name must equal its file's "
                        "type \"%s\"",
                        where, buf, type);
    }
    if (d->flags & ~KNOWN_FLAGS)
        return s_format("%s sets unknown flags 0x%x", where, d->flags & ~KNOWN_FLAGS);

    struct {
        const char *name;
        int present;
    } required[] = {
        {"validate", d->validate != NULL},
        {"open", d->open != NULL},
        {"send", d->send != NULL},
        {"close", d->close != NULL},
    };
    want[0] = 0;
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        if (!required[i].present) {
            if (want[0])
                strcat(want, ", ");
            strcat(want, required[i].name);
        }
    }
    if (want[0])
        return s_format("%s lacks required callback(s): %s", where, want);

    if (d->collapse_modes == 0)
        return s_format("%s declares no collapse modes (collapse_modes is 0)", where);
    if (d->collapse_modes & ~(uint32_t)FANOUT_COLLAPSE_ALL)
        return s_format("%s has an invalid collapse mask 0x%x: only bits 0x%x "
                        "(none, JSON, concat, concat-b64) exist",
                        where, d->collapse_modes, (unsigned)FANOUT_COLLAPSE_ALL);
    unsigned def = (unsigned)d->default_collapse;
    if (def > FANOUT_COLLAPSE_CONCAT_B64 ||
        !(d->collapse_modes & FANOUT_COLLAPSE_BIT(def))) {
        want[0] = 0;
        for (unsigned m = 0; m <= FANOUT_COLLAPSE_CONCAT_B64; m++) {
            if (d->collapse_modes & FANOUT_COLLAPSE_BIT(m)) {
                if (want[0])
                    strcat(want, ", ");
                strcat(want, s_collapse_name(m));
            }
        }
        return s_format("%s has default collapse %s (%u), which is not among its "
                        "collapse modes (%s)",
                        where, s_collapse_name(def), def, want);
    }
    return s_check_options(d, where);
}

/* Size of the object behind `sym` as the ELF symbol table says (0 when
 * unknown), and the object that defines it when that is not `handle`'s own
 * file but a library it links (NULL when it is its own). */
static size_t s_symbol_size(void *handle, const void *sym, const char **other)
{
    Dl_info info;
    const ElfW(Sym) *es = NULL;
    struct link_map *sym_map = NULL, *handle_map = NULL;
    size_t size = 0;
    *other = NULL;
    if (dladdr1(sym, &info, (void **)&es, RTLD_DL_SYMENT) && es)
        size = (size_t)es->st_size;
    if (dladdr1(sym, &info, (void **)&sym_map, RTLD_DL_LINKMAP) && sym_map &&
        dlinfo(handle, RTLD_DI_LINKMAP, &handle_map) == 0 && handle_map &&
        sym_map != handle_map)
        *other = sym_map->l_name && sym_map->l_name[0] ? sym_map->l_name : "another object";
    return size;
}

/* ---- file permissions --------------------------------------------------- */

/* Code in a plugin runs with fanout's credentials, so whoever can change
 * which code a plugin file holds must be someone fanout already trusts:
 * root or the effective user running it. As OpenSSH's StrictModes
 * (safe_path) and sudo do for their files, the file and every directory
 * from / down to it (on its resolved path: a symlink is followed and its
 * target checked) must be owned by root or the effective user and not be
 * writable by group or others. A directory with the sticky bit (/tmp) may
 * be writable by others: there nobody but a file's owner can rename or
 * remove it, so the file's own rules still protect it. Nor do the rules
 * apply on a read-only mount (fstatvfs ST_RDONLY): nobody can change what
 * is there.
 *
 * The walk goes down from / with O_PATH|O_NOFOLLOW descriptors, each
 * directory checked with fstat before the next component is opened under
 * it, and the file is opened under the last one: what is checked is what
 * is opened, whatever happens to the names meanwhile, and the library is
 * then loaded from that descriptor (/proc/self/fd/N). */

#define INSECURE_ENV "FANOUT_ALLOW_INSECURE_PLUGINS"

static int s_trusted_uid(uid_t uid)
{
    return uid == 0 || uid == geteuid();
}

/* Appends to `why` what is wrong with the object at `path`, open as `fd`
 * (`st` its fstat). On a read-only mount nobody can change it, whatever its
 * owner and mode say (a Lambda layer under /opt, whose zip may carry any
 * mode): no rule applies there. */
static void s_judge_stat(struct fanout_sbuf *why, const char *path, int fd,
                         const struct stat *st, int is_dir)
{
    struct statvfs vfs;
    if (fstatvfs(fd, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
        return;
    const char *what = is_dir ? "directory" : "file";
    if (!s_trusted_uid(st->st_uid))
        fanout_sbuf_printf(why,
                           "%s%s %s is owned by uid %lu, not by root or uid %lu "
                           "that runs fanout",
                           why->len ? "; " : "", what, path, (unsigned long)st->st_uid,
                           (unsigned long)geteuid());
    mode_t w = st->st_mode & (S_IWGRP | S_IWOTH);
    if (w && !(is_dir && (st->st_mode & S_ISVTX)))
        fanout_sbuf_printf(why, "%s%s %s is writable by %s (mode %04o%s)",
                           why->len ? "; " : "", what, path,
                           w == (S_IWGRP | S_IWOTH) ? "group and others"
                           : w == S_IWGRP           ? "group"
                                                    : "others",
                           (unsigned)(st->st_mode & 07777),
                           is_dir ? ", no sticky bit" : "");
}

/* Opens `real` (absolute, no symlinks: realpath's output) for loading.
 * Returns the descriptor, with the broken rules in `why` (empty when none);
 * or -1 with the reason in `why` when it cannot be opened at all. */
static int s_open_checked(const char *real, struct fanout_sbuf *why)
{
    struct stat st;
    int dfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fstat(dfd, &st) != 0) {
        fanout_sbuf_printf(why, "cannot open /: %s", strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    s_judge_stat(why, "/", dfd, &st, 1);
    const char *p = real;
    while (*p == '/')
        p++;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash)
            break;
        char *name = strndup(p, (size_t)(slash - p));
        char *shown = strndup(real, (size_t)(slash - real));
        int nfd =
            name ? openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
        int saved = errno;
        close(dfd);
        dfd = nfd;
        if (dfd < 0 || fstat(dfd, &st) != 0) {
            fanout_sbuf_printf(why, "%scannot open directory %s: %s", why->len ? "; " : "",
                               shown ? shown : real,
                               strerror(dfd < 0 ? (name ? saved : ENOMEM) : errno));
            free(name);
            free(shown);
            if (dfd >= 0)
                close(dfd);
            return -1;
        }
        s_judge_stat(why, shown ? shown : real, dfd, &st, 1);
        free(name);
        free(shown);
        p = slash + 1;
        while (*p == '/')
            p++;
    }
    /* Not a FIFO or a device: look before opening, then check again. */
    if (fstatat(dfd, p, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        fanout_sbuf_printf(why, "%scannot stat %s: %s", why->len ? "; " : "", real,
                           strerror(errno));
        close(dfd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        fanout_sbuf_printf(why, "%s%s is not a regular file", why->len ? "; " : "", real);
        close(dfd);
        return -1;
    }
    int fd = openat(dfd, p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int saved = errno;
    close(dfd);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fanout_sbuf_printf(why, "%scannot open %s: %s", why->len ? "; " : "", real,
                           fd < 0 ? strerror(saved) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    s_judge_stat(why, real, fd, &st, 0);
    return fd;
}

/* The opt-out, read at each load so that each use is logged. */
static int s_insecure_allowed(void)
{
    const char *v = getenv(INSECURE_ENV);
    return v && strcmp(v, "1") == 0;
}

/* Closes the descriptor a library was loaded from, unless that library
 * is still mapped (dlclose does not unmap a library marked NODELETE, or
 * one with unique symbols): then its name must stay unique, and the
 * descriptor is kept for the life of the process. */
static void s_release_fd(int fd, const char *load_path)
{
    if (fd < 0)
        return;
    if (strncmp(load_path, "/proc/self/fd/", 14) == 0) {
        void *still = dlopen(load_path, RTLD_NOW | RTLD_NOLOAD);
        if (still) {
            dlclose(still);
            return;
        }
    }
    close(fd);
}

/* ---- loading ----------------------------------------------------------- */

/* Opens and checks `path`; fills e->handle and e->pub, or e->refusal. */
static void s_load(struct fanout_loader *l, struct loader_entry *e)
{
    const char *type = e->type_copy, *path = e->path_copy;
    char where[4096 + 128];
    snprintf(where, sizeof where, "plugin \"%s\": %s", type, path);

    char *real = realpath(path, NULL);
    if (!real) {
        e->refusal = s_format("%s: cannot resolve its path: %s", where, strerror(errno));
        return;
    }
    struct fanout_sbuf bad = {0};
    int fd = s_open_checked(real, &bad);
    if (fd < 0 || bad.len) {
        if (fd < 0)
            e->refusal = s_format("%s: cannot check who may change it: %s", where,
                                  bad.bytes ? (const char *)bad.bytes : "?");
        else if (!s_insecure_allowed())
            e->refusal = s_format(
                "%s is refused: %s (code in a plugin runs with fanout's credentials, so "
                "only root or uid %lu that runs fanout may be able to change the file or "
                "a directory above it; fix the owner or mode, or set " INSECURE_ENV
                "=1 for development)",
                where, (const char *)bad.bytes, (unsigned long)geteuid());
        if (e->refusal) {
            if (fd >= 0)
                close(fd);
            fanout_sbuf_free(&bad);
            free(real);
            return;
        }
        fanout_log(FANOUT_LOG_WARN, "loader",
                   "%s: loading it although %s (" INSECURE_ENV "=1: for development only; "
                   "anyone who can change it runs code with fanout's credentials)",
                   where, (const char *)bad.bytes);
    }
    fanout_sbuf_free(&bad);

    /* Load what was checked: through the descriptor, when /proc is there;
     * else by the resolved name, and compare the file loaded with it. */
    char load_path[64];
    snprintf(load_path, sizeof load_path, "/proc/self/fd/%d", fd);
    int by_fd = access(load_path, F_OK) == 0;
    dlerror();
    void *h = dlopen(by_fd ? load_path : real, RTLD_NOW | RTLD_LOCAL);
    if (h && !by_fd) {
        struct stat a, b;
        if (fstat(fd, &a) != 0 || stat(real, &b) != 0 || a.st_dev != b.st_dev ||
            a.st_ino != b.st_ino) {
            dlclose(h);
            e->refusal = s_format("%s: %s changed while it was loaded", where, real);
            close(fd);
            free(real);
            return;
        }
    }
    if (!h) {
        const char *why = dlerror();
        /* glibc prefixes its message with the name opened: say it once. */
        const char *names[] = {load_path, real, path};
        for (size_t i = 0; why && i < sizeof names / sizeof *names; i++) {
            size_t plen = strlen(names[i]);
            if (strncmp(why, names[i], plen) == 0 && strncmp(why + plen, ": ", 2) == 0) {
                why += plen + 2;
                break;
            }
        }
        e->refusal = s_format("plugin \"%s\": cannot load %s: %s", type, path,
                              why ? why : "dlopen failed");
        s_release_fd(fd, by_fd ? load_path : real);
        free(real);
        return;
    }
    free(real);

    dlerror();
    const struct fanout_plugin *d = dlsym(h, FANOUT_PLUGIN_SYMBOL);
    const char *other = NULL;
    size_t obj_size = d ? s_symbol_size(h, d, &other) : 0;
    if (!d) {
        e->refusal = s_format("%s does not export %s (declare the plugin with "
                              "FANOUT_PLUGIN_DEFINE)",
                              where, FANOUT_PLUGIN_SYMBOL);
    } else if (other) {
        e->refusal = s_format("%s does not define %s itself: the one found is in %s, "
                              "a library it links",
                              where, FANOUT_PLUGIN_SYMBOL, other);
    } else if (obj_size && obj_size < HEADER_SIZE) {
        e->refusal = s_format("%s: its %s is %zu bytes, too small to be a plugin "
                              "descriptor",
                              where, FANOUT_PLUGIN_SYMBOL, obj_size);
    } else if (d->abi_major != FANOUT_ABI_MAJOR) {
        e->refusal = s_format("%s has ABI major %u, this engine speaks %d", where,
                              d->abi_major, FANOUT_ABI_MAJOR);
    } else if (d->abi_minor > FANOUT_ABI_MINOR) {
        e->refusal =
            s_format("%s was built for ABI %u.%u, newer than this engine's "
                     "%d.%d: upgrade the engine",
                     where, d->abi_major, d->abi_minor, FANOUT_ABI_MAJOR, FANOUT_ABI_MINOR);
    } else if (d->struct_size < FANOUT_PLUGIN_SIZE_1_0) {
        e->refusal = s_format("%s has struct_size %u, smaller than the ABI 1.0 "
                              "descriptor (%zu bytes)",
                              where, d->struct_size, (size_t)FANOUT_PLUGIN_SIZE_1_0);
    } else if (obj_size && obj_size < d->struct_size) {
        e->refusal = s_format("%s declares struct_size %u but its %s is only %zu bytes",
                              where, d->struct_size, FANOUT_PLUGIN_SYMBOL, obj_size);
    } else {
        size_t n =
            d->struct_size < sizeof e->pub.desc ? d->struct_size : sizeof e->pub.desc;
        memcpy(&e->pub.desc, d, n);
        e->refusal = s_check_desc(&e->pub.desc, type, where);
        if (!e->refusal && e->pub.desc.init) {
            struct fanout_error ferr;
            memset(&ferr, 0, sizeof ferr);
            void *state = NULL;
            if (e->pub.desc.init(l->host, &state, &ferr) != 0) {
                ferr.code[sizeof ferr.code - 1] = 0;
                ferr.message[sizeof ferr.message - 1] = 0;
                e->refusal =
                    s_format("%s: init failed: %s%s%s%s", where,
                             ferr.message[0] ? ferr.message : "no reason given",
                             ferr.code[0] ? " (" : "", ferr.code, ferr.code[0] ? ")" : "");
            } else {
                e->pub.state = state;
            }
        }
        if (!e->refusal) {
            e->handle = h;
            e->fd = by_fd ? fd : -1;
            if (!by_fd)
                close(fd);
            fanout_log(FANOUT_LOG_INFO, "loader",
                       "loaded plugin \"%s\" %s (ABI %u.%u) from %s", type,
                       e->pub.desc.version ? e->pub.desc.version : "(no version)",
                       e->pub.desc.abi_major, e->pub.desc.abi_minor, path);
            return;
        }
    }
    if (!e->refusal)
        e->refusal = s_format("%s: out of memory", where);
    /* Nothing of a refused plugin may stay reachable once it is closed. */
    memset(&e->pub.desc, 0, sizeof e->pub.desc);
    e->pub.state = NULL;
    dlclose(h);
    s_release_fd(by_fd ? fd : -1, load_path);
    if (!by_fd)
        close(fd);
}

static struct loader_entry *s_find(struct fanout_loader *l, const char *type)
{
    for (struct loader_entry *e = l->entries; e; e = e->next)
        if (strcmp(e->type_copy, type) == 0)
            return e;
    return NULL;
}

/* Finds or loads `type` (already checked against the type rule); caller
 * holds the lock. NULL only when out of memory. */
static struct loader_entry *s_get_locked(struct fanout_loader *l, const char *type)
{
    struct loader_entry *e = s_find(l, type);
    if (e)
        return e;
    e = calloc(1, sizeof *e);
    if (!e || !(e->type_copy = strdup(type))) {
        free(e);
        return NULL;
    }
    e->pub.type = e->type_copy;
    e->fd = -1;

    for (size_t i = 0; i < l->ndirs && !e->path_copy; i++) {
        char *path = s_format("%s/%s.so", l->dirs[i], type);
        struct stat st;
        if (!path) {
            free(e->type_copy);
            free(e);
            return NULL;
        }
        if (stat(path, &st) == 0)
            e->path_copy = path;
        else
            free(path);
    }
    e->pub.path = e->path_copy;

    if (!e->path_copy)
        e->refusal = s_format("plugin \"%s\" not found in %s (looked for %s.so)", type,
                              l->ndirs ? l->search_path : "(no directories)", type);
    else
        s_load(l, e);

    if (!e->refusal && !e->handle) {
        free(e->path_copy);
        free(e->type_copy);
        free(e);
        return NULL;
    }
    if (e->refusal)
        fanout_log(FANOUT_LOG_WARN, "loader", "%s", e->refusal);
    e->next = l->entries;
    l->entries = e;
    return e;
}

static char *s_invalid_type_message(const char *type)
{
    char buf[96];
    s_printable(buf, sizeof buf, type);
    return s_format("plugin type \"%s\" is not a valid name: use " TYPE_RULE, buf);
}

/* ---- public ------------------------------------------------------------ */

struct fanout_loader *fanout_loader_new(const struct fanout_host *host,
                                        const char *search_path)
{
    if (!host) {
        fanout_log(FANOUT_LOG_ERROR, "loader", "fanout_loader_new: no host table");
        return NULL;
    }
    struct fanout_loader *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->host = host;
    if (pthread_mutex_init(&l->lock, NULL) != 0) {
        free(l);
        return NULL;
    }
    if (s_build_search_path(l, search_path) != 0) {
        fanout_loader_destroy(l);
        return NULL;
    }
    return l;
}

void fanout_loader_destroy(struct fanout_loader *l)
{
    if (!l)
        return;
    /* Newest first: the reverse of loading order. */
    struct loader_entry *e = l->entries;
    while (e) {
        struct loader_entry *next = e->next;
        if (e->handle) {
            if (e->pub.desc.fini)
                e->pub.desc.fini(e->pub.state);
            dlclose(e->handle);
            if (e->fd >= 0) {
                char load_path[64];
                snprintf(load_path, sizeof load_path, "/proc/self/fd/%d", e->fd);
                s_release_fd(e->fd, load_path);
            }
        }
        free(e->refusal);
        free(e->path_copy);
        free(e->type_copy);
        free(e);
        e = next;
    }
    for (size_t i = 0; i < l->ndirs; i++)
        free(l->dirs[i]);
    free(l->dirs);
    free(l->search_path);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

const struct fanout_loaded_plugin *
fanout_loader_get(struct fanout_loader *l, const char *type, char *err, size_t err_len)
{
    /* The name is checked before anything touches the filesystem: it is
     * spliced into a path. */
    if (!fanout_valid_type_name(type)) {
        char *msg = s_invalid_type_message(type);
        s_set_err(err, err_len, msg ? msg : "plugin type is not a valid name");
        free(msg);
        return NULL;
    }
    pthread_mutex_lock(&l->lock);
    struct loader_entry *e = s_get_locked(l, type);
    pthread_mutex_unlock(&l->lock);
    if (!e) {
        s_set_err(err, err_len, "plugin loader: out of memory");
        return NULL;
    }
    if (e->refusal) {
        s_set_err(err, err_len, e->refusal);
        return NULL;
    }
    return &e->pub;
}

struct scan_item {
    char *type;
    char *path;
};

static int s_scan_cmp(const void *a, const void *b)
{
    return strcmp(((const struct scan_item *)a)->type, ((const struct scan_item *)b)->type);
}

void fanout_loader_scan(struct fanout_loader *l, fanout_loader_scan_fn *fn, void *ctx)
{
    struct scan_item *items = NULL;
    size_t n = 0, cap = 0;

    for (size_t i = 0; i < l->ndirs; i++) {
        DIR *dir = opendir(l->dirs[i]);
        if (!dir)
            continue; /* a missing directory is normal (no layer, not installed) */
        struct dirent *de;
        while ((de = readdir(dir)) != NULL) {
            size_t len = strlen(de->d_name);
            if (len < 3 || strcmp(de->d_name + len - 3, ".so") != 0)
                continue;
            char *type = strndup(de->d_name, len - 3);
            if (!type)
                break;
            int seen = 0;
            for (size_t j = 0; j < n && !seen; j++)
                seen = strcmp(items[j].type, type) == 0;
            if (seen) {
                free(type); /* the first of each name wins, as in lookup */
                continue;
            }
            char *path = s_format("%s/%s", l->dirs[i], de->d_name);
            if (path && n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                struct scan_item *grown = realloc(items, ncap * sizeof *items);
                if (grown) {
                    items = grown;
                    cap = ncap;
                }
            }
            if (!path || n == cap) {
                free(type);
                free(path);
                break;
            }
            items[n].type = type;
            items[n].path = path;
            n++;
        }
        closedir(dir);
    }
    if (n)
        qsort(items, n, sizeof *items, s_scan_cmp);

    for (size_t i = 0; i < n; i++) {
        const char *type = items[i].type;
        if (!fanout_valid_type_name(type)) {
            char *msg = s_invalid_type_message(type);
            fn(ctx, type, items[i].path, NULL, msg ? msg : "not a valid plugin name");
            free(msg);
            continue;
        }
        pthread_mutex_lock(&l->lock);
        struct loader_entry *e = s_get_locked(l, type);
        pthread_mutex_unlock(&l->lock);
        if (!e)
            fn(ctx, type, items[i].path, NULL, "plugin loader: out of memory");
        else
            fn(ctx, type, e->path_copy ? e->path_copy : items[i].path,
               e->refusal ? NULL : &e->pub, e->refusal);
    }
    for (size_t i = 0; i < n; i++) {
        free(items[i].type);
        free(items[i].path);
    }
    free(items);
}

const char *fanout_loader_search_path(const struct fanout_loader *l)
{
    return l->search_path;
}
