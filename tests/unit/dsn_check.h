/* What every delivery status notification from msg_dsn_build must be,
 * whatever its input: checked by tests/unit/test_msg_dsn.c on each case and
 * by tests/fuzz/fuzz_msg_dsn.c on each input.  Header-only, for tests.
 *
 * - RFC 5322 §2.1.1 / §2.3: CR LF line ends only, no line over 998
 *   octets, no NUL;
 * - the header section parses: every line a field ("name:" with §3.6.8
 *   ftext names) or a continuation; From, To, Subject, Date, Message-ID,
 *   Auto-Submitted, MIME-Version and Content-Type once each; no 8-bit
 *   octet outside To (a UTF-8 sender);
 * - the body is 7-bit; the boundary of Content-Type occurs only in the
 *   three delimiter lines and the close delimiter, which ends the message
 *   (RFC 2046 §5.1.1);
 * - the parts are text/plain, message/delivery-status and
 *   text/rfc822-headers, each with a header section that parses;
 * - the delivery-status part is 1 + rcpts blocks of fields (RFC 3464
 *   §2.1), each recipient block with one Final-Recipient, Action and
 *   Status, the first with Reporting-MTA. */
#ifndef RAWMAIL_TESTS_DSN_CHECK_H
#define RAWMAIL_TESTS_DSN_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct dsn_check_line {
	const char *p;
	size_t len;   /* without CR LF */
};

static inline bool dsn_check_is_field(const struct dsn_check_line *l)
{
	size_t i = 0;
	while (i < l->len && l->p[i] != ':') {
		unsigned char c = (unsigned char)l->p[i];
		if (c < 33 || c > 126)
			return false;
		i++;
	}
	return i > 0 && i < l->len;
}

static inline bool dsn_check_is_name(const struct dsn_check_line *l, const char *name)
{
	size_t n = strlen(name);
	return l->len > n && l->p[n] == ':' && strncasecmp(l->p, name, n) == 0;
}

/* Lines [from, to) form a header section (fields and continuations). */
static inline bool dsn_check_fields(const struct dsn_check_line *lines, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		const struct dsn_check_line *l = &lines[i];
		bool cont = l->len > 0 && (l->p[0] == ' ' || l->p[0] == '\t');
		if (cont ? i == from : !dsn_check_is_field(l))
			return false;
	}
	return true;
}

static inline size_t dsn_check_count(const struct dsn_check_line *lines, size_t from, size_t to,
                                     const char *name)
{
	size_t n = 0;
	for (size_t i = from; i < to; i++)
		n += dsn_check_is_name(&lines[i], name);
	return n;
}

/* The Content-Type of a part's header section [from, to), unfolded, as a
 * pointer into a static buffer (NULL when absent). */
static inline const char *dsn_check_unfold(const struct dsn_check_line *lines, size_t from,
                                           size_t to, const char *name)
{
	static char v[4096];
	for (size_t i = from; i < to; i++) {
		if (!dsn_check_is_name(&lines[i], name))
			continue;
		size_t o = 0, n = strlen(name) + 1;
		for (size_t k = i; k < to && (k == i || lines[k].p[0] == ' ' || lines[k].p[0] == '\t');
		     k++) {
			for (size_t c = k == i ? n : 0; c < lines[k].len && o + 1 < sizeof(v); c++)
				v[o++] = lines[k].p[c];
		}
		v[o] = '\0';
		return v;
	}
	return NULL;
}

static inline bool dsn_check_starts(const char *v, const char *prefix)
{
	while (*v == ' ' || *v == '\t')
		v++;
	return strncasecmp(v, prefix, strlen(prefix)) == 0;
}

/* NULL when msg[0..len) is a good DSN with rcpts recipients, else what is
 * wrong. */
static inline const char *dsn_check_message(const char *msg, size_t len, size_t rcpts)
{
	const char *why = NULL;
	size_t nlines = 0;
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\0')
			return "NUL octet";
		if (msg[i] == '\r' && (i + 1 == len || msg[i + 1] != '\n'))
			return "bare CR";
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			return "bare LF";
		nlines += msg[i] == '\n';
	}
	if (len < 2 || msg[len - 1] != '\n')
		return "does not end with CR LF";
	struct dsn_check_line *lines = calloc(nlines, sizeof(*lines));
	if (!lines)
		return "out of memory";
	size_t n = 0, start = 0;
	for (size_t i = 0; i < len; i++) {
		if (msg[i] != '\n')
			continue;
		lines[n].p = msg + start;
		lines[n].len = i - 1 - start;
		if (lines[n].len > 998) {
			why = "line over 998 octets";
			goto out;
		}
		n++;
		start = i + 1;
	}

	/* The message's header section. */
	size_t h = 0;
	while (h < n && lines[h].len > 0)
		h++;
	if (h == n) {
		why = "no end of header section";
		goto out;
	}
	if (!dsn_check_fields(lines, 0, h)) {
		why = "header section does not parse";
		goto out;
	}
	static const char *const once[] = { "From", "To", "Subject", "Date", "Message-ID",
	                                    "Auto-Submitted", "MIME-Version", "Content-Type" };
	for (size_t k = 0; k < sizeof(once) / sizeof(once[0]); k++)
		if (dsn_check_count(lines, 0, h, once[k]) != 1) {
			why = "a required header field is missing or repeated";
			goto out;
		}
	bool in_to = false;
	for (size_t i = 0; i < h; i++) {
		if (lines[i].p[0] != ' ' && lines[i].p[0] != '\t')
			in_to = dsn_check_is_name(&lines[i], "To");
		for (size_t c = 0; c < lines[i].len && !in_to; c++)
			if ((unsigned char)lines[i].p[c] > 126) {
				why = "8-bit octet in the header section outside To";
				goto out;
			}
	}
	const char *ct = dsn_check_unfold(lines, 0, h, "Content-Type");
	if (!ct || !dsn_check_starts(ct, "multipart/report;") ||
	    !strstr(ct, "report-type=delivery-status")) {
		why = "not multipart/report; report-type=delivery-status";
		goto out;
	}
	const char *bq = strstr(ct, "boundary=\"");
	if (!bq) {
		why = "no quoted boundary";
		goto out;
	}
	char b[80];
	size_t blen = 0;
	for (bq += 10; *bq && *bq != '"' && blen + 1 < sizeof(b); bq++)
		b[blen++] = *bq;
	b[blen] = '\0';
	if (*bq != '"' || blen == 0 || blen > 70) {
		why = "bad boundary";
		goto out;
	}

	/* The body: 7-bit, the boundary only in delimiter lines. */
	const char *body = lines[h].p + 2;
	size_t body_len = (size_t)(msg + len - body);
	for (size_t i = 0; i < body_len; i++)
		if ((unsigned char)body[i] > 126) {
			why = "8-bit octet in the body";
			goto out;
		}
	size_t occurrences = 0;
	for (const char *p = body; (p = memmem(p, (size_t)(msg + len - p), b, blen)) != NULL; p++)
		occurrences++;
	if (occurrences != 4) {
		why = "boundary appears other than in its 4 delimiter lines";
		goto out;
	}
	size_t delim[4], nd = 0;
	for (size_t i = h + 1; i < n; i++) {
		if (lines[i].len >= 2 + blen && lines[i].p[0] == '-' && lines[i].p[1] == '-' &&
		    memcmp(lines[i].p + 2, b, blen) == 0) {
			bool close = lines[i].len == 4 + blen && lines[i].p[2 + blen] == '-' &&
			             lines[i].p[3 + blen] == '-';
			if (lines[i].len != 2 + blen && !close) {
				why = "delimiter line with trailing text";
				goto out;
			}
			if (nd == 4 || close != (nd == 3)) {
				why = "delimiters out of order";
				goto out;
			}
			delim[nd++] = i;
		}
	}
	if (nd != 4 || delim[3] != n - 1) {
		why = "not three parts and a close delimiter at the end";
		goto out;
	}
	static const char *const types[] = { "text/plain", "message/delivery-status",
	                                     "text/rfc822-headers" };
	for (size_t part = 0; part < 3; part++) {
		size_t from = delim[part] + 1, to = delim[part + 1];
		size_t ph = from;
		while (ph < to && lines[ph].len > 0)
			ph++;
		if (ph == to || !dsn_check_fields(lines, from, ph)) {
			why = "part header section does not parse";
			goto out;
		}
		const char *pct = dsn_check_unfold(lines, from, ph, "Content-Type");
		if (!pct || !dsn_check_starts(pct, types[part])) {
			why = "part of the wrong type";
			goto out;
		}
		/* The CR LF before a delimiter belongs to it (RFC 2046
		 * §5.1.1): the part's last line is that empty line. */
		if (to - 1 <= ph || lines[to - 1].len != 0) {
			if (!(to - 1 == ph && part == 2)) {
				why = "part does not end with a line break before its delimiter";
				goto out;
			}
		}
		if (part != 1)
			continue;
		/* message/delivery-status: blocks of fields. */
		size_t blocks = 0;
		for (size_t i = ph + 1; i < to - 1;) {
			size_t e = i;
			while (e < to - 1 && lines[e].len > 0)
				e++;
			if (e == i || !dsn_check_fields(lines, i, e)) {
				why = "delivery-status block does not parse";
				goto out;
			}
			if (blocks == 0 ? dsn_check_count(lines, i, e, "Reporting-MTA") != 1
			                : dsn_check_count(lines, i, e, "Final-Recipient") != 1 ||
			                          dsn_check_count(lines, i, e, "Action") != 1 ||
			                          dsn_check_count(lines, i, e, "Status") != 1) {
				why = "delivery-status block without its required fields";
				goto out;
			}
			blocks++;
			i = e + 1;
		}
		if (blocks != 1 + rcpts) {
			why = "delivery-status blocks do not match the recipients";
			goto out;
		}
	}
out:
	free(lines);
	return why;
}

#endif
