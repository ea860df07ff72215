/* The plugin loader: finds `<type>.so` on the search path, checks it and
 * keeps it loaded for the life of the process. */
#ifndef FANOUT_LOADER_H
#define FANOUT_LOADER_H

#include <fanout/plugin.h>

struct fanout_loaded_plugin {
    /* The plugin's descriptor, copied into a zeroed struct of this engine's
     * size so that fields an older plugin lacks read as 0/NULL. */
    struct fanout_plugin desc;
    const char *type;
    const char *path;
    void *state; /* from desc.init */
};

struct fanout_loader;

/* `search_path`: colon-separated directories; NULL means the default:
 * $FANOUT_PLUGIN_PATH, then /opt/fanout/plugins, then the install directory
 * (FANOUT_PLUGIN_DIR, set at build time). `host` must outlive the loader. */
struct fanout_loader *fanout_loader_new(const struct fanout_host *host,
                                        const char *search_path);
void fanout_loader_destroy(struct fanout_loader *l);

/* The plugin for `type`, loaded on first use and cached; NULL when refused,
 * with the reason in err (also cached, so a broken plugin is not re-opened
 * on every invocation). Reasons name the type, the path and the rule, e.g.
 * `plugin "sns": /opt/fanout/plugins/sns.so has ABI major 2, this engine
 * speaks 1`, `plugin type "../x" is not a valid name: use [a-z0-9_-]{1,64}`,
 * `plugin "foo" not found in /a:/opt/fanout/plugins:/usr/lib/fanout/plugins`.
 * Thread-safe. */
const struct fanout_loaded_plugin *
fanout_loader_get(struct fanout_loader *l, const char *type, char *err, size_t err_len);

/* Every `*.so` on the search path (the first of each name wins, as in
 * lookup): `p` is the loaded plugin, or NULL and `refusal` says why. */
typedef void(fanout_loader_scan_fn)(void *ctx, const char *type, const char *path,
                                    const struct fanout_loaded_plugin *p,
                                    const char *refusal);
void fanout_loader_scan(struct fanout_loader *l, fanout_loader_scan_fn *fn, void *ctx);

/* The directories searched, in order (for messages). */
const char *fanout_loader_search_path(const struct fanout_loader *l);

#endif
