/* The runner every Check suite ends with. */
#ifndef FANOUT_CHECK_MAIN_H
#define FANOUT_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

/* Run `s` (Check's default fork mode unless CK_FORK=no) and return the exit
 * status: failure when any test failed. */
static inline int fanout_check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
