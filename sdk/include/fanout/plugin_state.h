/*
 * The state a plugin's init returns when its instances share nothing but
 * the host (plugin.h, "Host and state"), and a plugin error's setter.
 *
 * Part of the SDK's static library (link `fanout-sdk`), not of the ABI: it
 * is compiled into the plugin, with hidden visibility.
 */
#ifndef FANOUT_PLUGIN_STATE_H
#define FANOUT_PLUGIN_STATE_H

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fanout_plugin_state {
    const struct fanout_host *host;
};

/* For `init`: a struct fanout_plugin_state holding `host` in `*state`.
 * Returns 0, or -1 with err when out of memory. */
int fanout_plugin_state_new(const struct fanout_host *host, void **state,
                            struct fanout_error *err);
/* For `fini`. */
void fanout_plugin_state_free(void *state);

/* Fill a plugin error: code and printf message. Returns -1. */
int fanout_error_set(struct fanout_error *err, const char *code, const char *fmt, ...)
    FANOUT_PRINTF(3, 4);

#ifdef __cplusplus
}
#endif

#endif /* FANOUT_PLUGIN_STATE_H */
