/*
 * A destination plugin driven through its own descriptor (fanout_plugin_v1,
 * linked into the test) against the fake host of tests/fuzz/reply_host.h:
 * init, validate and open one target, send, close and fini; and a table of
 * destinations checked by validate. Header-only; one includer per program.
 */
#ifndef FANOUT_TESTS_PLUGIN_HARNESS_H
#define FANOUT_TESTS_PLUGIN_HARNESS_H

#include <check.h>

#include "reply_host.h"

extern const struct fanout_plugin fanout_plugin_v1;

static const struct fanout_plugin *const plugin = &fanout_plugin_v1;
static void *harness_state, *harness_inst;

/* init with the fake host, then validate and open `t` (ck-fails when one
 * does), answering from `script` (n answers). */
static inline void harness_open(struct fanout_target t, const struct reply_answer *script,
                                size_t n)
{
    struct fanout_error err = {0};
    reply_host_script(script, n);
    t.struct_size = sizeof t;
    ck_assert_int_eq(plugin->init(&reply_host, &harness_state, &err), 0);
    ck_assert_msg(plugin->validate(&t, err.message, sizeof err.message) == 0, "%s",
                  err.message);
    ck_assert_msg(plugin->open(harness_state, &t, &harness_inst, &err) == 0, "%s",
                  err.message);
}

/* Send `b`; its n outcomes as letters (reply_letters) must be `want`. */
static inline void harness_send(struct reply_batch *b, size_t n, const char *want)
{
    char got[16];
    plugin->send(harness_inst, &b->batch, b->out);
    reply_letters(b->out, n, got);
    ck_assert_msg(strcmp(got, want) == 0, "got %s, want %s (%s)", got, want,
                  b->out[0].message);
}

static inline void harness_close(void)
{
    plugin->close(harness_inst);
    plugin->fini(harness_state);
    reply_host_script(NULL, 0);
}

/* A destination (and region) and what validate says: NULL when valid, else
 * a part of its message. */
struct harness_dest {
    const char *dest, *region, *says;
};

static inline void harness_destinations(const struct harness_dest *c, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        struct fanout_target t = {
            .struct_size = sizeof t, .destination = c[k].dest, .region = c[k].region};
        char err[256] = "";
        int rc = plugin->validate(&t, err, sizeof err);
        ck_assert_msg(rc == (c[k].says ? -1 : 0), "%.60s: %s", c[k].dest, err);
        if (c[k].says)
            ck_assert_msg(strstr(err, c[k].says), "%.60s: \"%s\"", c[k].dest, err);
    }
}

/* The value of header `name` in a request seen, or NULL. */
static inline const char *harness_header(const struct reply_seen *w, const char *name)
{
    for (size_t h = 0; h < w->header_count && h < 4; h++)
        if (strcmp(w->headers[h][0], name) == 0)
            return w->headers[h][1];
    return NULL;
}

#endif
