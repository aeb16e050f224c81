/* The relay's password file (cli/delivery.h): its first line is the
 * password, as Postfix's and msmtp's users keep a secret out of the
 * command line and the settings file (a process's arguments are visible
 * to every user; rawmail.conf is often world-readable). */
#include "cli/delivery.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_delivery_password_load(struct cli_delivery *d, char *err, size_t errlen, char *warn,
                               size_t warnlen)
{
	if (warnlen)
		warn[0] = '\0';
	cli_delivery_password_wipe(d);
	if (!d->auth_user)
		return 0;
	const char *path = d->auth_password_file;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errlen, "--auth-password-file %s: cannot read: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "--auth-password-file %s: not a regular file", path);
		close(fd);
		return -1;
	}
	/* One line at most this long, plus its end: anything longer is not a
	 * password file. */
	char buf[SMTP_AUTH_PASSWORD_MAX + 3];
	size_t len = 0;
	while (len < sizeof(buf)) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "--auth-password-file %s: cannot read: %s", path,
			         strerror(errno));
			explicit_bzero(buf, sizeof(buf));
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (memchr(buf, '\n', len))
			break;
	}
	close(fd);
	char *nl = memchr(buf, '\n', len);
	size_t plen = nl ? (size_t)(nl - buf) : len;
	if (plen > 0 && buf[plen - 1] == '\r')
		plen--;   /* a file written on Windows */
	int rc = 0;
	if (plen == 0) {
		snprintf(err, errlen, "--auth-password-file %s: the first line is empty (it must hold "
		                      "the password)", path);
		rc = -1;
	} else if (plen > SMTP_AUTH_PASSWORD_MAX) {
		snprintf(err, errlen, "--auth-password-file %s: the password is longer than %d octets",
		         path, SMTP_AUTH_PASSWORD_MAX);
		rc = -1;
	} else if (memchr(buf, '\0', plen)) {
		snprintf(err, errlen, "--auth-password-file %s: the password holds a NUL octet", path);
		rc = -1;
	} else {
		memcpy(d->auth_password, buf, plen);
		d->auth_password[plen] = '\0';
		if ((st.st_mode & 077) && warnlen)
			snprintf(warn, warnlen, "--auth-password-file %s may be read by other users "
			                        "(mode %04o): chmod 600 it", path,
			         (unsigned)(st.st_mode & 07777));
	}
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

void cli_delivery_password_wipe(struct cli_delivery *d)
{
	explicit_bzero(d->auth_password, sizeof(d->auth_password));
}
