/* The maildrop directory (maildrop.h): made by root, written by users,
 * emptied by the spool's owner into the spool. */
#include "queue/maildrop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "msg/header.h"
#include "util/durable.h"
#include "util/id.h"
#include "util/log.h"

/* Drop files looked at per import: a user who floods the maildrop delays
 * the rest only until the next pass. */
#define MAILDROP_BATCH_MAX 10000

static enum queue_status sys_status(int err)
{
	return err == EACCES || err == EPERM || err == EROFS || err == ENOENT || err == ENOTDIR ||
	                       err == ELOOP
	               ? QUEUE_PERM
	               : QUEUE_TEMP;
}

static int drop_path(char *out, size_t outlen, const char *spool_dir)
{
	int n = snprintf(out, outlen, "%s/%s", spool_dir, QUEUE_MAILDROP_DIR);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

enum queue_status queue_maildrop_prepare(const char *spool_dir, uid_t uid, gid_t gid, char *why,
                                         size_t whylen)
{
	int dfd = open(spool_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		int err = errno;
		snprintf(why, whylen, "spool %s: %s", spool_dir, strerror(err));
		return sys_status(err);
	}
	bool made = false;
	int md = -1, err = 0;
	const char *step = "mkdir";
	if (durable_mkdir(dfd, QUEUE_MAILDROP_DIR, 0700, &made) == 0) {
		step = "open";
		md = openat(dfd, QUEUE_MAILDROP_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	/* chown first: it may clear the set-group-ID bit the mode sets. */
	if (md < 0 || (step = "chown", fchown(md, uid, gid) != 0) ||
	    (step = "chmod", fchmod(md, QUEUE_MAILDROP_MODE) != 0) ||
	    (step = "chmod of the spool", fchmod(dfd, 0711) != 0) ||
	    (step = "fsync of the spool", made && durable_dir_sync(dfd) != 0))
		err = errno;
	if (md >= 0)
		close(md);
	close(dfd);
	if (err) {
		snprintf(why, whylen, "spool %s: maildrop: %s: %s", spool_dir, step, strerror(err));
		return sys_status(err);
	}
	return QUEUE_OK;
}

bool queue_maildrop_usable(const char *spool_dir)
{
	char path[4200];
	struct stat st;
	return drop_path(path, sizeof(path), spool_dir) == 0 && stat(path, &st) == 0 &&
	       S_ISDIR(st.st_mode) && faccessat(AT_FDCWD, path, W_OK | X_OK, AT_EACCESS) == 0;
}

enum queue_status queue_maildrop_submit(const char *spool_dir, struct queue_envelope *env,
                                        const void *message, size_t len, char *name,
                                        char *why, size_t whylen)
{
	char path[4200], tmp[ID_LEN + 2];
	if (drop_path(path, sizeof(path), spool_dir) != 0) {
		snprintf(why, whylen, "maildrop: spool directory name too long");
		return QUEUE_PERM;
	}
	/* The drop's name is its envelope's id (the importer gives the
	 * entry a new one). */
	id_new(name);
	snprintf(env->id, sizeof(env->id), "%s", name);
	if (!env->created)
		env->created = (int64_t)time(NULL);
	struct buf file;
	buf_init(&file, QUEUE_MAILDROP_FILE_MAX);
	const char *ferr = "";
	if (queue_drop_format(env, message, len, &file, &ferr) != 0) {
		buf_free(&file);
		snprintf(why, whylen, "maildrop: %s", ferr);
		return QUEUE_TEMP;
	}
	/* O_PATH: the maildrop is not readable by users, only searchable. */
	int dfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int fd = -1, err = 0;
	const char *step = "open";
	snprintf(tmp, sizeof(tmp), ".%s", name);
	if (dfd >= 0)
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		            QUEUE_MAILDROP_FILE_MODE);
	bool renamed = false;
	/* The umask may have taken the group's read bit, which the spool's
	 * owner reads it by.  The data is durable before the name, the name
	 * once syncfs(2) returns: fsync of the directory needs it open for
	 * reading, which a user cannot do. */
	if (fd < 0 || (step = "chmod", fchmod(fd, QUEUE_MAILDROP_FILE_MODE) != 0) ||
	    (step = "write", durable_write_all(fd, file.data, file.len) != 0) ||
	    (step = "fsync", fsync(fd) != 0) ||
	    (step = "rename", renameat(dfd, tmp, dfd, name) != 0) ||
	    (renamed = true, step = "syncfs", syncfs(fd) != 0))
		err = errno;
	if (err && dfd >= 0)
		unlinkat(dfd, renamed ? name : tmp, 0);
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	buf_free(&file);
	if (err) {
		snprintf(why, whylen, "maildrop %s: %s: %s", path, step, strerror(err));
		return sys_status(err) == QUEUE_PERM && err != ENOENT ? QUEUE_PERM : QUEUE_TEMP;
	}
	return QUEUE_OK;
}

/* ---- import ---- */

struct importer {
	struct queue_spool *sp;
	int dfd, cfd;            /* maildrop/, corrupt/ */
	const char *hostname;
	int64_t now;
	struct queue_maildrop_counts *c;
	bool changed;            /* something was unlinked or moved */
};

/* Moves a drop file to corrupt/ID.drop (its own name is the user's
 * choice: any bytes, any length), or removes it when even that fails, so
 * the next import does not trip on it again. */
static void set_aside(struct importer *im, const char *name, long long uid, const char *reason)
{
	char id[ID_LEN + 1], to[ID_LEN + 8], qname[300];
	id_new(id);
	snprintf(to, sizeof(to), "%s.drop", id);
	log_quote(qname, sizeof(qname), name, strlen(name));
	bool moved = renameat(im->dfd, name, im->cfd, to) == 0;
	if (!moved && errno == ENOENT)
		return;   /* another importer took it */
	if (!moved)
		unlinkat(im->dfd, name, 0);
	im->changed = true;
	im->c->set_aside++;
	log_event(LOG_WARN, "maildrop_set_aside", "file=%s uid=%lld reason=\"%s\" %s%s", qname, uid,
	          reason, moved ? "moved_to=corrupt/" : "action=removed", moved ? to : "");
}

/* The user's name from the password database, when it is plain enough
 * for a header field. */
static const char *user_name(uid_t uid)
{
	struct passwd *pw = getpwuid(uid);
	if (!pw || !pw->pw_name || !pw->pw_name[0] || strlen(pw->pw_name) > 64)
		return NULL;
	for (const char *p = pw->pw_name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return NULL;
	return pw->pw_name;
}

/* Postfix's pickup writes "Received: by HOST (Postfix, from userid
 * UID)"; the user's name is added as a comment, as this is what a reader
 * of the header looks for. */
static int received_add(struct buf *out, const char *hostname, uid_t uid, int64_t now,
                        const char *eol)
{
	time_t t = (time_t)now;
	struct tm tm;
	char space[128];
	struct buf date = { space, 0, sizeof(space), sizeof(space) - 1 };
	struct msg_error err;
	/* "Date: " DATE CR LF, of which the date-time is taken. */
	if (!localtime_r(&t, &tm) ||
	    msg_header_write_date(&date, t, (int)(tm.tm_gmtoff / 60), &err) != 0 || date.len < 8)
		return -1;
	const char *user = user_name(uid);
	return buf_printf(out, "Received: by %s (rawmail, from userid %u%s%s%s);%s\t%.*s%s",
	                  hostname, (unsigned)uid, user ? " (" : "", user ? user : "",
	                  user ? ")" : "", eol, (int)(date.len - 8), date.data + 6, eol);
}

/* Reads the whole file (it may still grow under a hostile writer: at most
 * QUEUE_MAILDROP_FILE_MAX octets). */
static int read_all(int fd, struct buf *b)
{
	char chunk[65536];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		if (buf_append(b, chunk, (size_t)n) != 0) {
			errno = EFBIG;
			return -1;
		}
	}
}

static enum queue_status import_file(struct importer *im, int fd, const struct stat *st,
                                     const char *name, char *why, size_t whylen)
{
	struct buf data, msg;
	buf_init(&data, QUEUE_MAILDROP_FILE_MAX);
	buf_init(&msg, QUEUE_MAILDROP_FILE_MAX + 1024);
	struct queue_envelope env;
	memset(&env, 0, sizeof(env));
	enum queue_status out = QUEUE_OK;
	size_t off = 0;
	char perr[512];
	if (read_all(fd, &data) != 0) {
		int err = errno;
		if (err == EFBIG) {
			set_aside(im, name, st->st_uid, "larger than a drop file can be");
		} else {
			snprintf(why, whylen, "maildrop: read: %s", strerror(err));
			out = QUEUE_TEMP;
		}
		goto done;
	}
	if (queue_drop_parse(data.data ? data.data : "", data.len, &env, &off, perr,
	                     sizeof(perr)) != 0) {
		set_aside(im, name, st->st_uid, perr);
		goto done;
	}
	/* The header's line ends are the message's own (the sendmail entry
	 * queues LF; the engine sends CRLF either way). */
	const char *m = data.data + off, *nl = memchr(m, '\n', data.len - off);
	const char *eol = nl && nl > m && nl[-1] == '\r' ? "\r\n" : "\n";
	if (received_add(&msg, im->hostname, st->st_uid, im->now, eol) != 0 ||
	    buf_append(&msg, data.data + off, data.len - off) != 0) {
		snprintf(why, whylen, "maildrop: out of memory");
		out = QUEUE_TEMP;
		goto done;
	}
	char qwhy[512];
	out = queue_spool_enqueue(im->sp, &env, msg.data, msg.len, qwhy, sizeof(qwhy));
	if (out != QUEUE_OK) {
		snprintf(why, whylen, "maildrop: %s", qwhy);
		goto done;
	}
	/* Queued durably: only now may the drop file go (a crash in between
	 * brings a second copy, never none). */
	unlinkat(im->dfd, name, 0);
	im->changed = true;
	im->c->imported++;
	char qsender[600];
	log_event(LOG_INFO, "maildrop_import", "file=%s id=%s uid=%u from=<%s> rcpts=%zu size=%zu",
	          name, env.id, (unsigned)st->st_uid,
	          log_quote(qsender, sizeof(qsender), env.sender, strlen(env.sender)), env.nrcpts,
	          msg.len);
done:
	queue_envelope_free(&env);
	buf_free(&data);
	buf_free(&msg);
	return out;
}

/* A dot name is a drop file being written: left alone for a day, then
 * removed as a writer that died. */
static void tmp_file(struct importer *im, const char *name)
{
	struct stat st;
	if (fstatat(im->dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return;
	if (!S_ISREG(st.st_mode))
		set_aside(im, name, st.st_uid, "not a regular file");
	else if (im->now - (int64_t)st.st_mtime > QUEUE_TMP_MAX_AGE && unlinkat(im->dfd, name, 0) == 0)
		im->changed = true;
}

static enum queue_status import_one(struct importer *im, const char *name, char *why,
                                    size_t whylen)
{
	if (name[0] == '.') {
		tmp_file(im, name);
		return QUEUE_OK;
	}
	struct stat st;
	long long uid = -1;
	if (fstatat(im->dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		uid = st.st_uid;
	if (!queue_id_valid(name, strlen(name))) {
		set_aside(im, name, uid, "not a drop file's name");
		return QUEUE_OK;
	}
	/* O_NONBLOCK: a FIFO must not hang the importer before fstat says
	 * what it is. */
	int fd = openat(im->dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		if (err == ENOENT)
			return QUEUE_OK;
		if (err == EMFILE || err == ENFILE || err == ENOMEM) {
			snprintf(why, whylen, "maildrop: open: %s", strerror(err));
			return QUEUE_TEMP;
		}
		set_aside(im, name, uid,
		          err == ELOOP ? "a symbolic link" : err == EACCES ? "not readable" : strerror(err));
		return QUEUE_OK;
	}
	enum queue_status out = QUEUE_OK;
	if (fstat(fd, &st) != 0) {
		snprintf(why, whylen, "maildrop: fstat: %s", strerror(errno));
		out = QUEUE_TEMP;
	} else if (!S_ISREG(st.st_mode)) {
		set_aside(im, name, st.st_uid, "not a regular file");
	} else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		im->c->busy++;   /* another importer has it */
	} else if (fstat(fd, &st) != 0 || st.st_nlink == 0) {
		/* imported and removed by another importer meanwhile */
	} else if (st.st_nlink > 1) {
		/* Someone else's file linked in would be sent as theirs. */
		set_aside(im, name, st.st_uid, "a hard link");
	} else if ((uint64_t)st.st_size > QUEUE_MAILDROP_FILE_MAX) {
		set_aside(im, name, st.st_uid, "larger than a drop file can be");
	} else {
		out = import_file(im, fd, &st, name, why, whylen);
	}
	close(fd);
	return out;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum queue_status queue_maildrop_import(struct queue_spool *sp, const char *hostname, int64_t now,
                                        struct queue_maildrop_counts *counts, char *why,
                                        size_t whylen)
{
	*counts = (struct queue_maildrop_counts){ 0 };
	char path[4200], cpath[4200];
	const char *dir = queue_spool_dir(sp);
	if (drop_path(path, sizeof(path), dir) != 0 ||
	    snprintf(cpath, sizeof(cpath), "%s/corrupt", dir) >= (int)sizeof(cpath)) {
		snprintf(why, whylen, "maildrop: spool directory name too long");
		return QUEUE_PERM;
	}
	struct importer im = { .sp = sp, .hostname = hostname, .now = now, .c = counts };
	im.dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (im.dfd < 0 && errno == ENOENT)
		return QUEUE_OK;   /* no maildrop: nobody but the owner queues here */
	im.cfd = open(cpath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int lfd = im.dfd >= 0 ? dup(im.dfd) : -1;
	DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
	if (im.dfd < 0 || im.cfd < 0 || !d) {
		int err = errno;
		if (lfd >= 0 && !d)
			close(lfd);
		if (im.dfd >= 0)
			close(im.dfd);
		if (im.cfd >= 0)
			close(im.cfd);
		snprintf(why, whylen, "maildrop %s: %s", path, strerror(err));
		return sys_status(err);
	}
	/* The names first: the directory changes under readdir as files are
	 * moved out of it. */
	char **names = NULL;
	size_t n = 0, cap = 0;
	enum queue_status out = QUEUE_OK;
	struct dirent *e;
	while (n < MAILDROP_BATCH_MAX && (e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			char **nn = realloc(names, ncap * sizeof(*nn));
			if (!nn)
				break;
			names = nn;
			cap = ncap;
		}
		if (!(names[n] = strdup(e->d_name)))
			break;
		n++;
	}
	closedir(d);
	/* Ids sort by time: the oldest drop first. */
	if (n > 1)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n && out == QUEUE_OK; i++)
		out = import_one(&im, names[i], why, whylen);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	/* The unlinks durable too, so a crash does not import them twice. */
	if (im.changed)
		durable_dir_sync(im.dfd);
	close(im.dfd);
	close(im.cfd);
	return out;
}
