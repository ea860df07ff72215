/* libcurl, loaded on first use.
 *
 * The fanout binary does not link libcurl: loading it and its dependency
 * tree (TLS, LDAP, Kerberos, SSH...) costs a cold start more than the rest
 * of an event with non-AWS targets, and 4 MB resident. Requests where no
 * proxy applies take fanout's own connections (net.h) and never load it:
 * only a libcurl transfer (a proxy, a URL the raw path does not take, a
 * request over its descriptor budget) does. curl_load.c defines the libcurl
 * functions fanout calls (same names and prototypes as <curl/curl.h>) as
 * forwards to the library, dlopen'ed once (pthread_once) the first time
 * fanout_curl_load() is called. Call it, and check it, before any curl_*
 * function: until it succeeded they fail (NULL, CURLE_FAILED_INIT...). */
#ifndef FANOUT_CURL_LOAD_H
#define FANOUT_CURL_LOAD_H

#include <stddef.h>

/* The library loaded: its SONAME, found on the usual search path
 * (LD_LIBRARY_PATH: /var/task/lib, /opt/lib on Lambda). */
#define FANOUT_CURL_LIBRARY "libcurl.so.4"

/* Load libcurl and resolve the functions fanout uses, once per process.
 * 0 when usable; -1 with the reason in `err` (the library's name and the
 * loader's message), the same on every later call. Thread-safe. */
int fanout_curl_load(char *err, size_t err_len);

#endif
