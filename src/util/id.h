/* Session and queue ids: unique across processes, restarts and clock steps
 * (time + per-process counter + per-process random), sortable by time,
 * safe in file names and log values. */
#ifndef RAWMAIL_UTIL_ID_H
#define RAWMAIL_UTIL_ID_H

#include <stddef.h>

#define ID_LEN 22  /* characters, without the NUL */

/* Call once per process (after fork): mixes the pid and fresh randomness. */
void id_init(void);
/* Writes a new id into out (at least ID_LEN + 1 bytes). */
void id_new(char *out);

#endif
