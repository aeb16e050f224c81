/* rawmail passwd --users FILE [--senders LIST] USER: adds USER to the
 * users file of authenticated submission (auth/users.h), or changes the
 * password of USER, with a new yescrypt hash.
 *
 * Every other line, comments and blank lines included, and USER's own
 * senders field unless --senders is given, is kept octet for octet: the
 * file is the admin's.  The file is checked before the password is
 * asked (a bad file is refused, 78, naming FILE:LINE), read again under
 * an flock of its directory once the password is known (two runs at once
 * do not lose either change), and replaced durably: a temporary file in
 * the same directory with the old file's mode and owner (0640 for a new
 * one), written, fsynced, renamed over, directory fsynced.
 *
 * The password is read twice from the terminal with echo off (/dev/tty,
 * as passwd(1)), or when standard input is not a terminal as two lines
 * from it (for scripts).  It is read with read(2) into buffers on the
 * stack that are wiped before return; it never reaches stdio, the
 * environment or the command line. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "auth/users.h"
#include "auth/verify.h"
#include "cli/cli.h"
#include "util/durable.h"
#include "util/limits.h"

#define PASSWD_EXIT_DATAERR 65
#define PASSWD_EXIT_NOINPUT 66
#define PASSWD_EXIT_SOFTWARE 70
#define PASSWD_EXIT_CANTCREAT 73
#define PASSWD_EXIT_CONFIG 78

static const char passwd_help[] =
	"usage: rawmail passwd --users FILE [--senders LIST] USER\n"
	"\n"
	"Adds USER to the users file of authenticated submission, or changes USER's\n"
	"password, with a new yescrypt hash.  The password is asked twice on the\n"
	"terminal (not shown); when standard input is not a terminal it is read as two\n"
	"lines from it.  Every other line of FILE is kept as it is.\n"
	"\n"
	"  --users FILE     the users file (created with mode 0640 if missing)\n"
	"  --senders LIST   the sender addresses USER may use: addresses and @domains,\n"
	"                   comma-separated (default: keep USER's, or any sender)\n"
	"  -h, --help       this text\n"
	"\n"
	"Exit status: 0 done, 64 usage, 65 the passwords differ or are empty or longer\n"
	"than 255 octets, 66 FILE unreadable, 73 FILE cannot be written, 78 FILE is not\n"
	"a valid users file (FILE:LINE says why).\n";

/* The terminal whose echo is off, for the signal handler to restore. */
static int tty_fd = -1;
static struct termios tty_saved;
static volatile sig_atomic_t tty_echo_off;

static void tty_restore_and_die(int sig)
{
	if (tty_echo_off)
		tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* One line from fd into buf (cap octets, NUL-terminated, without its
 * "\n" or "\r\n").  0 with *len, or -1: read error (errno), or end of
 * input before any octet (*eof).  A line longer than cap - 1 is read to
 * its end and reported as *len = cap (the caller refuses it). */
static int line_read(int fd, char *buf, size_t cap, size_t *len, bool *eof)
{
	size_t n = 0;
	bool any = false, over = false, failed = false;
	char c = 0;
	*eof = false;
	for (;;) {
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			failed = r < 0;
			*eof = r == 0 && !any;
			break;
		}
		any = true;
		if (c == '\n')
			break;
		if (n + 1 < cap)
			buf[n++] = c;
		else
			over = true;
	}
	/* The last octet read may be the password's. */
	explicit_bzero(&c, sizeof(c));
	if (failed || *eof)
		return -1;
	if (n > 0 && buf[n - 1] == '\r' && !over)
		n--;
	buf[n] = '\0';
	*len = over ? cap : n;
	return 0;
}

/* The password and its confirmation. */
struct passwords {
	char first[AUTH_PASSWORD_MAX + 2];
	char second[AUTH_PASSWORD_MAX + 2];
	size_t len1, len2;
};

/* Reads one password from the terminal fd with echo off (the newline
 * still echoed, so the next prompt starts a line).  As line_read. */
static int tty_password_read(int fd, const char *prompt, char *buf, size_t cap, size_t *len,
                             bool *eof)
{
	struct termios t;
	if (tcgetattr(fd, &tty_saved) != 0)
		return -1;
	t = tty_saved;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
	t.c_lflag |= ECHONL;
	tty_fd = fd;
	tty_echo_off = 1;
	if (tcsetattr(fd, TCSAFLUSH, &t) != 0) {
		tty_echo_off = 0;
		return -1;
	}
	/* The prompt only once echo is off: what is typed after it is never
	 * shown. */
	(void)!write(fd, prompt, strlen(prompt));
	int rc = line_read(fd, buf, cap, len, eof);
	int saved = errno;
	tcsetattr(fd, TCSAFLUSH, &tty_saved);
	tty_echo_off = 0;
	errno = saved;
	return rc;
}

/* Both passwords, from the terminal or standard input.  0, or an exit
 * status after saying why. */
static int passwords_read(const char *user, struct passwords *p)
{
	bool eof = false;
	int rc;
	if (isatty(STDIN_FILENO)) {
		int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			fprintf(stderr, "rawmail passwd: /dev/tty: %s\n", strerror(errno));
			return PASSWD_EXIT_NOINPUT;
		}
		/* Killed while echo is off: the terminal gets it back. */
		int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
		struct sigaction sa = { .sa_handler = tty_restore_and_die };
		sigemptyset(&sa.sa_mask);
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			sigaction(sigs[i], &sa, NULL);
		char prompt[AUTH_USER_NAME_MAX + 64];
		snprintf(prompt, sizeof(prompt), "New password for %s: ", user);
		rc = tty_password_read(fd, prompt, p->first, sizeof(p->first), &p->len1, &eof);
		if (rc == 0 && p->len1 > 0)
			rc = tty_password_read(fd, "Retype the new password: ", p->second,
			                       sizeof(p->second), &p->len2, &eof);
		else
			p->len2 = p->len1;
		close(fd);
	} else {
		rc = line_read(STDIN_FILENO, p->first, sizeof(p->first), &p->len1, &eof);
		if (rc == 0 && p->len1 > 0)
			rc = line_read(STDIN_FILENO, p->second, sizeof(p->second), &p->len2, &eof);
		else
			p->len2 = p->len1;
	}
	if (rc != 0 && eof) {
		fputs("rawmail passwd: the password must be given twice (two lines on standard "
		      "input)\n", stderr);
		return PASSWD_EXIT_DATAERR;
	}
	if (rc != 0) {
		fprintf(stderr, "rawmail passwd: reading the password: %s\n", strerror(errno));
		return PASSWD_EXIT_NOINPUT;
	}
	if (p->len1 == 0) {
		fputs("rawmail passwd: an empty password is refused\n", stderr);
		return PASSWD_EXIT_DATAERR;
	}
	if (p->len1 > AUTH_PASSWORD_MAX) {
		/* RFC 4616 §2: AUTH PLAIN servers need take no more. */
		fprintf(stderr, "rawmail passwd: a password longer than %d octets is refused\n",
		        AUTH_PASSWORD_MAX);
		return PASSWD_EXIT_DATAERR;
	}
	if (memchr(p->first, '\0', p->len1)) {
		fputs("rawmail passwd: a password holding a NUL octet is refused\n", stderr);
		return PASSWD_EXIT_DATAERR;
	}
	if (p->len1 != p->len2 || memcmp(p->first, p->second, p->len1) != 0) {
		fputs("rawmail passwd: passwords do not match\n", stderr);
		return PASSWD_EXIT_DATAERR;
	}
	return 0;
}

/* The users file: its directory, its name there, what it holds. */
struct users_file {
	const char *path;
	int dirfd;
	char base[256];
	bool exists;
	struct stat st;
	char *text;
	size_t len;
	struct auth_users users;
};

/* Reads and parses the file (missing: empty).  0, or an exit status
 * after saying why. */
static int users_file_load(struct users_file *f)
{
	free(f->text);
	f->text = NULL;
	f->len = 0;
	auth_users_free(&f->users);
	int fd = openat(f->dirfd, f->base, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		f->exists = false;
		return 0;
	}
	if (fd < 0) {
		fprintf(stderr, "rawmail passwd: %s: %s%s\n", f->path, strerror(errno),
		        errno == ELOOP ? " (a symbolic link: give the file it leads to)" : "");
		return PASSWD_EXIT_NOINPUT;
	}
	if (fstat(fd, &f->st) != 0 || !S_ISREG(f->st.st_mode)) {
		fprintf(stderr, "rawmail passwd: %s: not a regular file\n", f->path);
		close(fd);
		return PASSWD_EXIT_NOINPUT;
	}
	f->exists = true;
	size_t cap = AUTH_USERS_FILE_MAX + 1;
	if (!(f->text = malloc(cap))) {
		close(fd);
		fprintf(stderr, "rawmail passwd: out of memory\n");
		return PASSWD_EXIT_SOFTWARE;
	}
	for (;;) {
		ssize_t r = read(fd, f->text + f->len, cap - f->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "rawmail passwd: %s: %s\n", f->path, strerror(errno));
			close(fd);
			return PASSWD_EXIT_NOINPUT;
		}
		if (r == 0 || (f->len += (size_t)r) == cap)
			break;
	}
	close(fd);
	size_t line;
	char why[256];
	if (auth_users_parse(f->text, f->len, &f->users, &line, why, sizeof(why)) != 0) {
		if (line)
			fprintf(stderr, "rawmail passwd: %s:%zu: %s\n", f->path, line, why);
		else
			fprintf(stderr, "rawmail passwd: %s: %s\n", f->path, why);
		return PASSWD_EXIT_CONFIG;
	}
	return 0;
}

/* The file's new text with user's line set to "user:hash[:senders]"
 * (senders NULL: the old line's, if any).  NULL when out of memory. */
static char *users_file_edit(const struct users_file *f, const char *user, const char *hash,
                             const char *senders, size_t *outlen)
{
	const struct auth_user *e = auth_users_find(&f->users, user);
	const char *keep = NULL;
	size_t keeplen = 0;
	if (e && !senders) {
		const char *line = f->text + e->offset;
		const char *c1 = memchr(line, ':', e->len);
		const char *c2 = memchr(c1 + 1, ':', e->len - (size_t)(c1 + 1 - line));
		if (c2) {
			keep = c2 + 1;
			keeplen = e->len - (size_t)(keep - line);
		}
	} else if (senders) {
		keep = senders;
		keeplen = strlen(senders);
	}
	size_t cap = f->len + strlen(user) + strlen(hash) + keeplen + 8;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	size_t n = 0;
	size_t before = e ? e->offset : f->len;
	if (before)
		memcpy(out, f->text, before);
	n = before;
	if (!e && n > 0 && out[n - 1] != '\n')
		out[n++] = '\n';
	int w = snprintf(out + n, cap - n, "%s:%s%s%.*s", user, hash, keep ? ":" : "",
	                 (int)keeplen, keep ? keep : "");
	n += (size_t)w;
	if (e) {
		size_t after = e->offset + e->len;
		memcpy(out + n, f->text + after, f->len - after);
		n += f->len - after;
	} else {
		out[n++] = '\n';
	}
	*outlen = n;
	return out;
}

/* Replaces the file with text: temporary file, owner and mode, fsync,
 * rename, directory fsync.  0, or an exit status after saying why. */
static int users_file_write(const struct users_file *f, const char *text, size_t len)
{
	char tmp[320];
	snprintf(tmp, sizeof(tmp), ".%s.passwd.%ld", f->base, (long)getpid());
	int fd = openat(f->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST && unlinkat(f->dirfd, tmp, 0) == 0)
		fd = openat(f->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "rawmail passwd: cannot create a file next to %s: %s\n", f->path,
		        strerror(errno));
		return PASSWD_EXIT_CANTCREAT;
	}
	const char *step = "chown";
	struct stat now;
	bool ok = fstat(fd, &now) == 0;
	/* The old file's owner and mode (an auth process may read it by
	 * group), or 0640 for a new one. */
	if (ok && f->exists && (now.st_uid != f->st.st_uid || now.st_gid != f->st.st_gid))
		ok = fchown(fd, f->st.st_uid, f->st.st_gid) == 0;
	if (ok && !(ok = fchmod(fd, f->exists ? f->st.st_mode & 07777 : 0640) == 0))
		step = "chmod";
	if (ok && !(ok = durable_write_all(fd, text, len) == 0))
		step = "write";
	if (ok && !(ok = fsync(fd) == 0))
		step = "fsync";
	int saved = errno;
	if (close(fd) != 0 && ok) {
		ok = false;
		step = "close";
		saved = errno;
	}
	if (ok && !(ok = renameat(f->dirfd, tmp, f->dirfd, f->base) == 0)) {
		step = "rename";
		saved = errno;
	}
	if (!ok) {
		unlinkat(f->dirfd, tmp, 0);
		fprintf(stderr, "rawmail passwd: %s: %s: %s\n", f->path, step, strerror(saved));
		return PASSWD_EXIT_CANTCREAT;
	}
	if (durable_dir_sync(f->dirfd) != 0) {
		fprintf(stderr, "rawmail passwd: %s: fsync of its directory: %s\n", f->path,
		        strerror(errno));
		return PASSWD_EXIT_CANTCREAT;
	}
	return 0;
}

/* Opens FILE's directory and keeps its name in it.  0, or an exit
 * status after saying why. */
static int users_file_open(struct users_file *f, const char *path)
{
	f->path = path;
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..") ||
	    strlen(base) >= sizeof(f->base)) {
		fprintf(stderr, "rawmail passwd: --users %s: not a file name\n", path);
		return EXIT_USAGE;
	}
	snprintf(f->base, sizeof(f->base), "%s", base);
	char dir[4096];
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	f->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->dirfd < 0) {
		fprintf(stderr, "rawmail passwd: %s: %s\n", dir, strerror(errno));
		return PASSWD_EXIT_CANTCREAT;
	}
	return 0;
}

static int passwd_run(const char *path, const char *user, const char *senders)
{
	struct users_file f = { .dirfd = -1 };
	struct passwords p;
	char setting[128], hash[AUTH_HASH_MAX + 1];
	char *text = NULL;
	size_t len = 0;
	int rc;
	/* A bad file is said before the password is asked. */
	if ((rc = users_file_open(&f, path)) != 0 || (rc = users_file_load(&f)) != 0)
		goto out;
	if ((rc = passwords_read(user, &p)) != 0)
		goto out;
	if (auth_setting_new(setting, sizeof(setting)) != 0 ||
	    auth_hash_make(p.first, setting, hash, sizeof(hash)) != 0) {
		fprintf(stderr, "rawmail passwd: libcrypt cannot make a yescrypt hash: %s\n",
		        strerror(errno));
		rc = PASSWD_EXIT_SOFTWARE;
		goto out;
	}
	/* Read again under the lock: another run may have changed it. */
	if (flock(f.dirfd, LOCK_EX) != 0) {
		fprintf(stderr, "rawmail passwd: locking the directory of %s: %s\n", path,
		        strerror(errno));
		rc = PASSWD_EXIT_CANTCREAT;
		goto out;
	}
	if ((rc = users_file_load(&f)) != 0)
		goto out;
	bool existed = auth_users_find(&f.users, user) != NULL;
	if (!(text = users_file_edit(&f, user, hash, senders, &len))) {
		fprintf(stderr, "rawmail passwd: out of memory\n");
		rc = PASSWD_EXIT_SOFTWARE;
		goto out;
	}
	/* What is written must be what the auth process will accept. */
	struct auth_users check;
	size_t line;
	char why[256];
	if (auth_users_parse(text, len, &check, &line, why, sizeof(why)) != 0) {
		fprintf(stderr, "rawmail passwd: the new file would be refused (line %zu: %s); "
		        "left as it was\n", line, why);
		rc = PASSWD_EXIT_SOFTWARE;
		goto out;
	}
	auth_users_free(&check);
	if ((rc = users_file_write(&f, text, len)) != 0)
		goto out;
	printf("rawmail passwd: %s %s %s\n", user, existed ? "changed in" : "added to", path);
out:
	explicit_bzero(&p, sizeof(p));
	explicit_bzero(setting, sizeof(setting));
	explicit_bzero(hash, sizeof(hash));
	free(text);
	free(f.text);
	auth_users_free(&f.users);
	if (f.dirfd >= 0)
		close(f.dirfd);
	return rc;
}

int cli_passwd(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "users", required_argument, NULL, 'u' },
		{ "senders", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *users = NULL, *senders = NULL;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (c == 'u') {
			users = optarg;
		} else if (c == 's') {
			senders = optarg;
		} else if (c == 'h') {
			fputs(passwd_help, stdout);
			return 0;
		} else {
			fputs(passwd_help, stderr);
			return EXIT_USAGE;
		}
	}
	if (!users || optind + 1 != argc) {
		fprintf(stderr, "rawmail passwd: %s (try rawmail passwd --help)\n",
		        !users ? "--users FILE is required" : "give one USER");
		return EXIT_USAGE;
	}
	const char *user = argv[optind], *why;
	if ((why = auth_user_name_check(user, strlen(user)))) {
		fprintf(stderr, "rawmail passwd: %s: %s\n", user, why);
		return EXIT_USAGE;
	}
	if (senders && (why = auth_senders_check(senders, strlen(senders)))) {
		fprintf(stderr, "rawmail passwd: --senders: %s\n", why);
		return EXIT_USAGE;
	}
	return passwd_run(users, user, senders);
}
