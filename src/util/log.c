#include "util/log.h"
#include "util/text.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Lines waiting for a full pipe to drain; past this they are dropped. */
#define LOG_PENDING_MAX (64 * 1024)

static const char *log_proc = "rawmail";
static enum log_level log_min = LOG_INFO;
static char log_pending[LOG_PENDING_MAX];
static size_t log_pending_len;
static unsigned long log_dropped;
/* The MQTT bridge logs from Paho's thread as well as its main one (issue
 * 12): the pending buffer is shared.  Uncontended everywhere else. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static void (*log_kick)(void *arg);
static void *log_kick_arg;
static bool log_kicked;     /* a write of the kept lines is arranged */

void log_init(const char *proc, enum log_level min)
{
	log_proc = proc;
	log_min = min;
}

void log_set_nonblocking(void)
{
	struct stat st;
	if (fstat(STDERR_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
		int fl = fcntl(STDERR_FILENO, F_GETFL);
		if (fl >= 0)
			fcntl(STDERR_FILENO, F_SETFL, fl | O_NONBLOCK);
	}
}

/* Writes as much of the pending buffer as stderr takes now. */
static void log_drain(void)
{
	size_t off = 0;
	while (off < log_pending_len) {
		ssize_t n = write(STDERR_FILENO, log_pending + off, log_pending_len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	memmove(log_pending, log_pending + off, log_pending_len - off);
	log_pending_len -= off;
}

static void log_append(const char *line, size_t len)
{
	if (len > sizeof(log_pending) - log_pending_len) {
		log_dropped++;
		return;
	}
	memcpy(log_pending + log_pending_len, line, len);
	log_pending_len += len;
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
	if (level > log_min)
		return;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s level=%s event=%s",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                 tm.tm_sec, ts.tv_nsec / 1000000, log_proc, level_names[level], event);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	if (fmt && *fmt && len + 1 < sizeof(line)) {
		line[len++] = ' ';
		va_list ap;
		va_start(ap, fmt);
		int m = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
		va_end(ap);
		if (m > 0)
			len += (size_t)m < sizeof(line) - len ? (size_t)m : sizeof(line) - len - 1;
	}
	pthread_mutex_lock(&log_lock);
	if (log_dropped && len + 40 < sizeof(line)) {
		int m = snprintf(line + len, sizeof(line) - len, " log_dropped=%lu", log_dropped);
		if (m > 0)
			len += (size_t)m;
		log_dropped = 0;
	}
	line[len++] = '\n';
	log_append(line, len);
	if (!log_kick || log_pending_len > LOG_PENDING_MAX / 2) {
		log_drain();
	} else if (!log_kicked) {
		log_kicked = true;
		log_kick(log_kick_arg);
	}
	pthread_mutex_unlock(&log_lock);
}

void log_defer(void (*kick)(void *arg), void *arg)
{
	pthread_mutex_lock(&log_lock);
	log_kick = kick;
	log_kick_arg = arg;
	log_kicked = false;
	if (!kick)
		log_drain();
	pthread_mutex_unlock(&log_lock);
}

void log_write_pending(void)
{
	pthread_mutex_lock(&log_lock);
	log_kicked = false;
	log_drain();
	pthread_mutex_unlock(&log_lock);
}

const char *log_quote(char *dst, size_t dstlen, const char *src, size_t len)
{
	size_t i;
	int plain = len > 0;
	for (i = 0; i < len && plain; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '=')
			plain = 0;
	}
	if (dstlen < 8) {
		if (dstlen)
			dst[0] = '\0';
		return dst;
	}
	if (plain) {
		size_t n = len < dstlen - 1 ? len : dstlen - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
		if (n < len)
			memcpy(dst + n - 3, "...", 3);
		return dst;
	}
	/* The one escaper (util/text.h): C0, DEL, C1 in both forms and broken
	 * UTF-8 escaped, valid UTF-8 kept; room kept for "..." and the
	 * closing quote. */
	dst[0] = '"';
	size_t used = text_escape(dst + 1, dstlen - 5, src, len, TEXT_ESCAPE_QUOTES);
	size_t o = 1 + strlen(dst + 1);
	if (used < len) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o++] = '"';
	dst[o] = '\0';
	return dst;
}

void log_flush(void)
{
	pthread_mutex_lock(&log_lock);
	int fl = fcntl(STDERR_FILENO, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(STDERR_FILENO, F_SETFL, fl & ~O_NONBLOCK);
	log_drain();
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(STDERR_FILENO, F_SETFL, fl);
	pthread_mutex_unlock(&log_lock);
}
