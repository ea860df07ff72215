/* A plugin's state and errors (fanout/plugin_state.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <fanout/plugin_state.h>

int fanout_plugin_state_new(const struct fanout_host *host, void **state,
                            struct fanout_error *err)
{
    struct fanout_plugin_state *s = calloc(1, sizeof *s);
    if (!s)
        return fanout_error_set(err, "OutOfMemory", "out of memory");
    s->host = host;
    *state = s;
    return 0;
}

void fanout_plugin_state_free(void *state)
{
    free(state);
}

int fanout_error_set(struct fanout_error *err, const char *code, const char *fmt, ...)
{
    va_list ap;
    snprintf(err->code, sizeof err->code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}
