/* A growable byte buffer with a hard maximum set at creation (curl's dynbuf
 * idea): every buffer fed by the network is bounded. */
#ifndef RAWMAIL_UTIL_BUF_H
#define RAWMAIL_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;  /* NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
	size_t max;  /* len never exceeds max */
};

void buf_init(struct buf *b, size_t max);
/* 0 on success; -1 if the result would exceed b->max or memory ran out (the
 * buffer is left unchanged). */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void buf_reset(struct buf *b);          /* len = 0, memory kept */
void buf_free(struct buf *b);           /* releases memory; buf stays usable */
/* Hands the memory to the caller (who frees it) and empties the buffer. */
char *buf_release(struct buf *b, size_t *len);

#endif
