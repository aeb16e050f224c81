/* `rawmail queue list` (also `mailq` and `sendmail -bp`, as in Postfix),
 * `rawmail queue show ID` and `rawmail queue delete ID...` (issue 9): what
 * is queued, for people.  Everything printed from an envelope or a
 * message goes through util/text.h's escaper: a last reply comes from a
 * peer, an address or a header from whoever sent the message.
 *
 * Exit statuses (sysexits(3)): 0 done; 64 usage; 65 an entry damaged
 * (show); 66 no such entry (show, delete: like a named input file that
 * does not exist, EX_NOINPUT); 74 the spool cannot be read; 75 an entry
 * busy (delete: a runner is delivering it; try again later, EX_TEMPFAIL). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/send.h"
#include "queue/spool.h"
#include "util/text.h"

#define EXIT_DATAERR 65
#define EXIT_NOINPUT 66
#define EXIT_IOERR 74
#define EXIT_TEMPFAIL 75

/* The header section `show` prints, at most. */
#define SHOW_HEADERS_MAX (64u * 1024u)

enum { OPT_QUEUE_SPOOL = 1, OPT_JSON, OPT_CONFIG_FILE };
static const struct option queue_long_opts[] = {
	{ "spool", required_argument, NULL, OPT_QUEUE_SPOOL },
	{ "config", required_argument, NULL, OPT_CONFIG_FILE },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct queue_args {
	const char *prog;     /* for messages: "rawmail queue list", "mailq" */
	const char *spool;    /* --spool, or NULL */
	const char *config;   /* -c, --config, or NULL */
	bool json;
	char dir[4096];
};

/* How much of text[0..len) to escape in one go into a buffer of
 * room octets: 4 output octets per input octet at most, plus the NUL, and
 * never a cut inside a UTF-8 sequence (the escaper would take its halves
 * for invalid octets). */
static size_t chunk_len(const char *text, size_t len, size_t room)
{
	size_t take = (room - 1) / 4;
	if (len <= take)
		return len;
	for (int back = 0; back < 3 && ((unsigned char)text[take] & 0xc0) == 0x80; back++)
		take--;
	return take;
}

/* Escapes text[0..len) for a terminal (no line breaks kept) and writes it. */
static void put_safe(FILE *out, const char *text, size_t len)
{
	char esc[4096];
	while (len > 0) {
		size_t take = chunk_len(text, len, sizeof(esc));
		size_t used = text_escape(esc, sizeof(esc), text, take, 0);
		fputs(esc, out);
		if (used == 0)
			break;   /* cannot happen: one unit always fits */
		text += used;
		len -= used;
	}
}

static void put_safe_str(FILE *out, const char *s)
{
	put_safe(out, s, strlen(s));
}

/* Escaped, then as a JSON string: the escaper leaves no control octet but
 * LF and no invalid UTF-8, so only LF, '"' and '\' remain to be escaped
 * (RFC 8259 §7). */
static void put_json_str(FILE *out, const char *s)
{
	char esc[4096];
	size_t len = strlen(s);
	fputc('"', out);
	while (len > 0) {
		size_t take = chunk_len(s, len, sizeof(esc));
		size_t used = text_escape(esc, sizeof(esc), s, take, TEXT_KEEP_NEWLINE);
		for (const char *p = esc; *p; p++) {
			if (*p == '\n') {
				fputs("\\n", out);   /* a multi-line reply's line break */
				continue;
			}
			if (*p == '"' || *p == '\\')
				fputc('\\', out);
			fputc(*p, out);
		}
		if (used == 0)
			break;
		s += used;
		len -= used;
	}
	fputc('"', out);
}

/* "2026-12-06 11:55:26 +0100", local time; the last one is remembered
 * (a listing's entries arrive in the same seconds). */
static const char *when(int64_t epoch)
{
	static char text[64];
	static int64_t cached = -1;
	if (epoch == cached)
		return text;
	time_t t = (time_t)epoch;
	struct tm tm;
	if (!localtime_r(&t, &tm) || strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S %z", &tm) == 0)
		snprintf(text, sizeof(text), "@%" PRId64, epoch);
	cached = epoch;
	return text;
}

static void put_sender(FILE *out, const char *sender)
{
	fputc('<', out);
	put_safe_str(out, sender);
	fputc('>', out);
}

/* Each line of a (multi-line) reply on its own line, the first after
 * label, the rest under it. */
static void put_reply(FILE *out, const char *label, const char *indent, const char *reply)
{
	fputs(label, out);
	for (;;) {
		const char *nl = strchr(reply, '\n');
		size_t len = nl ? (size_t)(nl - reply) : strlen(reply);
		if (len > 0 && reply[len - 1] == '\r')
			len--;
		put_safe(out, reply, len);
		fputc('\n', out);
		if (!nl || nl[1] == '\0')
			return;
		reply = nl + 1;
		fputs(indent, out);
	}
}

static const char *flag_names(unsigned flags, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s%s%s%s%s",
	         flags & QUEUE_FLAG_SMTPUTF8 ? "smtputf8" : "",
	         (flags & QUEUE_FLAG_SMTPUTF8) && (flags & (QUEUE_FLAG_BOUNCE | QUEUE_FLAG_WARNED)) ? "," : "",
	         flags & QUEUE_FLAG_BOUNCE ? "bounce" : "",
	         (flags & QUEUE_FLAG_BOUNCE) && (flags & QUEUE_FLAG_WARNED) ? "," : "",
	         flags & QUEUE_FLAG_WARNED ? "warned" : "");
	return out[0] ? out : "-";
}

static const char *origin_name(enum queue_origin o)
{
	switch (o) {
	case QUEUE_ORIGIN_SEND: return "send";
	case QUEUE_ORIGIN_SENDMAIL: return "sendmail";
	case QUEUE_ORIGIN_SUBMISSION: return "submission";
	case QUEUE_ORIGIN_BOUNCE: return "bounce";
	case QUEUE_ORIGIN_LOCAL: return "local";
	case QUEUE_ORIGIN_MQTT: return "mqtt";
	}
	return "?";
}

/* One message's block:
 *   ID  SIZE octets  queued TIME  from <SENDER>
 *     STATE      ADDR  (N attempts; next TIME)
 *                last: REPLY */
static void list_block(FILE *out, const struct queue_envelope *env)
{
	fprintf(out, "%s  %" PRIu64 " octets  queued %s  from ", env->id, env->size,
	        when(env->created));
	put_sender(out, env->sender);
	if (env->flags & QUEUE_FLAG_BOUNCE)
		fputs("  (a bounce)", out);
	fputc('\n', out);
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		fprintf(out, "  %-9s  ", queue_rcpt_state_name(r->state));
		put_safe_str(out, r->addr);
		if (r->attempts == 0)
			fputs("  (no attempt yet", out);
		else
			fprintf(out, "  (%" PRIu32 " attempt%s", r->attempts, r->attempts == 1 ? "" : "s");
		if (r->state == QUEUE_RCPT_QUEUED) {
			if (r->next == 0)
				fputs("; next now", out);
			else
				fprintf(out, "; next %s", when(r->next));
		}
		fputs(")\n", out);
		if (r->last)
			put_reply(out, "             last: ", "                   ", r->last);
	}
	fputc('\n', out);
}

/* One message as one JSON object on one line (as Postfix's postqueue -j). */
static void list_json(FILE *out, const struct queue_envelope *env)
{
	char flags[64];
	fputs("{\"id\":", out);
	put_json_str(out, env->id);
	fprintf(out, ",\"arrival_time\":%" PRId64 ",\"size\":%" PRIu64 ",\"sender\":", env->created,
	        env->size);
	put_json_str(out, env->sender);
	fprintf(out, ",\"origin\":\"%s\",\"flags\":\"%s\",\"recipients\":[", origin_name(env->origin),
	        flag_names(env->flags, flags, sizeof(flags)));
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		fputs(i ? ",{\"address\":" : "{\"address\":", out);
		put_json_str(out, r->addr);
		if (r->orcpt) {
			fputs(",\"original\":", out);
			put_json_str(out, r->orcpt);
		}
		fprintf(out,
		        ",\"state\":\"%s\",\"attempts\":%" PRIu32 ",\"next_attempt\":%" PRId64
		        ",\"last_attempt\":%" PRId64,
		        queue_rcpt_state_name(r->state), r->attempts, r->next, r->last_attempt);
		if (r->last) {
			fputs(",\"last_reply\":", out);
			put_json_str(out, r->last);
		}
		fputc('}', out);
	}
	fputs("]}\n", out);
}

static void usage(FILE *out, const char *what)
{
	if (!strcmp(what, "show"))
		fputs("usage: rawmail queue show [--spool DIR] ID\n"
		      "The envelope of a queued message in full, and the message's header.\n", out);
	else if (!strcmp(what, "delete"))
		fputs("usage: rawmail queue delete [--spool DIR] ID...\n"
		      "Removes queued messages (no bounce is sent).  A message being delivered\n"
		      "right now is left alone (exit 75).\n", out);
	else
		fputs("usage: rawmail queue list [--spool DIR] [--json]   (also: mailq, sendmail -bp)\n"
		      "What is queued: per message its id, size, arrival time and sender; per\n"
		      "recipient its state, attempts, next attempt and the last reply.\n"
		      "  --json   one JSON object per message and line\n", out);
	fputs("  --spool DIR   the spool (default: spool in the settings file, else\n"
	      "                /var/spool/rawmail for root, else $XDG_STATE_HOME/rawmail/spool\n"
	      "                or ~/.local/state/rawmail/spool)\n"
	      "  -c, --config FILE  the settings file (default $RAWMAIL_CONF, /etc/rawmail.conf)\n",
	      out);
}

/* Options of the three subcommands.  -1: go on; else the exit status. */
static int parse_args(int argc, char **argv, const char *what, const char *prog, bool json_ok,
                      struct queue_args *a)
{
	memset(a, 0, sizeof(*a));
	a->prog = prog;
	int c;
	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "+hc:", queue_long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_QUEUE_SPOOL:
			a->spool = optarg;
			break;
		case 'c':
		case OPT_CONFIG_FILE:
			a->config = optarg;
			break;
		case OPT_JSON:
			if (!json_ok) {
				fprintf(stderr, "%s: --json is an option of queue list\n", a->prog);
				return EXIT_USAGE;
			}
			a->json = true;
			break;
		case 'h':
			usage(stdout, what);
			return 0;
		default:
			usage(stderr, what);
			return EXIT_USAGE;
		}
	}
	/* Without --spool, the settings file's spool ([send], else [queue]:
	 * the one sendmail and send queue into), else the default. */
	struct send_opts so;
	send_opts_init(&so, a->prog);
	int rc = a->spool ? 0 : send_config_load(&so, a->config);
	char why[512];
	if (rc == 0 && !cli_spool_dir(a->spool ? a->spool : so.spool, a->dir, sizeof(a->dir), why,
	                              sizeof(why))) {
		fprintf(stderr, "%s: %s\n", a->prog, why);
		rc = EXIT_USAGE;
	}
	send_opts_free(&so);
	return rc ? rc : -1;
}

/* Opens the spool to read.  QUEUE_OK; QUEUE_GONE when it does not exist
 * (nothing was ever queued there); else said why, *rc the exit status. */
static enum queue_status open_spool(const struct queue_args *a, struct queue_spool **sp, int *rc)
{
	struct stat st;
	if (stat(a->dir, &st) < 0 && errno == ENOENT)
		return QUEUE_GONE;
	char why[512];
	enum queue_status s = queue_spool_open(a->dir, 0, sp, why, sizeof(why));
	if (s != QUEUE_OK) {
		fprintf(stderr, "%s: %s\n", a->prog, why);
		*rc = s == QUEUE_TEMP ? EXIT_TEMPFAIL : EXIT_IOERR;
	}
	return s;
}

int cli_queue_list(int argc, char **argv)
{
	struct queue_args a;
	const char *name = argc > 0 && argv[0] ? argv[0] : "list";
	int rc = parse_args(argc, argv, "list", strcmp(name, "list") ? name : "rawmail queue list",
	                    true, &a);
	if (rc >= 0)
		return rc;
	/* A listing of 100,000 entries is a few MB of text: written in large
	 * blocks, not line by line to a terminal or a pipe. */
	static char obuf[1 << 16];
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	struct queue_spool *sp = NULL;
	enum queue_status st = open_spool(&a, &sp, &rc);
	if (st == QUEUE_GONE) {
		if (!a.json)
			printf("queue is empty (no spool at %s yet)\n", a.dir);
		return 0;
	}
	if (st != QUEUE_OK)
		return rc;
	struct queue_spool_list *l;
	char why[512];
	if (queue_spool_list_open(sp, &l, why, sizeof(why)) != QUEUE_OK) {
		fprintf(stderr, "%s: %s\n", a.prog, why);
		queue_spool_close(sp);
		return EXIT_IOERR;
	}
	size_t messages = 0, rcpts = 0, pending = 0, bad = 0;
	struct queue_envelope env;
	const char *id;
	int r;
	while ((r = queue_spool_list_next(l, &env, &id, why, sizeof(why))) != 0) {
		if (r < 0) {
			/* Said and passed over: the rest of the queue is listed. */
			bad++;
			if (a.json) {
				fputs("{\"id\":", stdout);
				put_json_str(stdout, id);
				fputs(",\"error\":", stdout);
				put_json_str(stdout, why);
				fputs("}\n", stdout);
			} else {
				printf("%s  unreadable: ", id);
				put_safe_str(stdout, why);
				fputs("\n\n", stdout);
			}
			continue;
		}
		messages++;
		rcpts += env.nrcpts;
		for (size_t i = 0; i < env.nrcpts; i++)
			pending += env.rcpts[i].state == QUEUE_RCPT_QUEUED;
		if (a.json)
			list_json(stdout, &env);
		else
			list_block(stdout, &env);
		queue_envelope_free(&env);
	}
	queue_spool_list_close(l);
	queue_spool_close(sp);
	if (!a.json) {
		if (messages == 0 && bad == 0)
			puts("queue is empty");
		else {
			printf("%zu message%s, %zu recipient%s (%zu to deliver)", messages,
			       messages == 1 ? "" : "s", rcpts, rcpts == 1 ? "" : "s", pending);
			if (bad)
				printf(", %zu entr%s unreadable", bad, bad == 1 ? "y" : "ies");
			putchar('\n');
		}
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: writing the listing: %s\n", a.prog, strerror(errno));
		return EXIT_IOERR;
	}
	return 0;
}

static void show_envelope(FILE *out, const struct queue_envelope *env)
{
	char flags[64], hex[2 * QUEUE_SHA256_LEN + 1];
	for (size_t i = 0; i < QUEUE_SHA256_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", env->sha256[i]);
	fprintf(out, "id:       %s\nqueued:   %s (%" PRId64 ")\nsize:     %" PRIu64
	             " octets\nsha256:   %s\nsender:   ",
	        env->id, when(env->created), env->created, env->size, hex);
	put_sender(out, env->sender);
	fprintf(out, "\norigin:   %s\nflags:    %s\n", origin_name(env->origin),
	        flag_names(env->flags, flags, sizeof(flags)));
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		fputs("recipient ", out);
		put_safe_str(out, r->addr);
		fputc('\n', out);
		if (r->orcpt) {
			fputs("  given as:      ", out);
			put_safe_str(out, r->orcpt);
			fputc('\n', out);
		}
		fprintf(out, "  state:         %s\n  attempts:      %" PRIu32 "\n",
		        queue_rcpt_state_name(r->state), r->attempts);
		if (r->last_attempt)
			fprintf(out, "  last attempt:  %s\n", when(r->last_attempt));
		if (r->state == QUEUE_RCPT_QUEUED)
			fprintf(out, "  next attempt:  %s\n", r->next ? when(r->next) : "now");
		if (r->last)
			put_reply(out, "  last reply:    ", "                 ", r->last);
	}
}

int cli_queue_show(int argc, char **argv)
{
	struct queue_args a;
	int rc = parse_args(argc, argv, "show", "rawmail queue show", false, &a);
	if (rc >= 0)
		return rc;
	if (argc - optind != 1) {
		usage(stderr, "show");
		return EXIT_USAGE;
	}
	const char *id = argv[optind];
	struct queue_spool *sp = NULL;
	enum queue_status st = open_spool(&a, &sp, &rc);
	if (st == QUEUE_GONE) {
		fprintf(stderr, "%s: ", a.prog);
		put_safe_str(stderr, id);
		fprintf(stderr, ": not in the queue (no spool at %s)\n", a.dir);
		return EXIT_NOINPUT;
	}
	if (st != QUEUE_OK)
		return rc;
	struct queue_envelope env;
	struct buf head;
	buf_init(&head, SHOW_HEADERS_MAX + 1);
	char why[512];
	st = queue_spool_peek(sp, id, &env, &head, SHOW_HEADERS_MAX, why, sizeof(why));
	queue_spool_close(sp);
	if (st != QUEUE_OK) {
		buf_free(&head);
		fprintf(stderr, "%s: ", a.prog);
		if (st == QUEUE_GONE && !queue_id_valid(id, strlen(id))) {
			put_safe_str(stderr, id);
			fputs(": not a queue id\n", stderr);
			return EXIT_USAGE;
		}
		put_safe_str(stderr, why);
		fputc('\n', stderr);
		return st == QUEUE_GONE ? EXIT_NOINPUT : st == QUEUE_CORRUPT ? EXIT_DATAERR
		                                                                : EXIT_TEMPFAIL;
	}
	show_envelope(stdout, &env);
	queue_envelope_free(&env);
	fputs("header:\n", stdout);
	const char *p = head.data ? head.data : "";
	const char *end = p + head.len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		size_t shown = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
		if (shown > 0 || nl == NULL) {
			/* A folded line's TAB is shown as one (harmless on a
			 * terminal); everything else goes through the escaper. */
			fputs("  ", stdout);
			const char *q = p, *qend = p + shown;
			while (q < qend) {
				const char *tab = memchr(q, '\t', (size_t)(qend - q));
				size_t seg = tab ? (size_t)(tab - q) : (size_t)(qend - q);
				put_safe(stdout, q, seg);
				if (tab)
					fputc('\t', stdout);
				q += seg + (tab != NULL);
			}
			fputc('\n', stdout);
		}
		p += len + (nl != NULL);
	}
	if (head.len >= SHOW_HEADERS_MAX)
		printf("  (the header is longer: cut at %u octets)\n", SHOW_HEADERS_MAX);
	buf_free(&head);
	return fflush(stdout) == 0 ? 0 : EXIT_IOERR;
}

int cli_queue_delete(int argc, char **argv)
{
	struct queue_args a;
	int rc = parse_args(argc, argv, "delete", "rawmail queue delete", false, &a);
	if (rc >= 0)
		return rc;
	if (argc - optind < 1) {
		usage(stderr, "delete");
		return EXIT_USAGE;
	}
	struct queue_spool *sp = NULL;
	enum queue_status st = open_spool(&a, &sp, &rc);
	if (st == QUEUE_GONE) {
		fprintf(stderr, "%s: nothing is queued (no spool at %s)\n", a.prog, a.dir);
		return EXIT_NOINPUT;
	}
	if (st != QUEUE_OK)
		return rc;
	rc = 0;
	for (int i = optind; i < argc; i++) {
		const char *id = argv[i];
		char why[512];
		int this_rc = 0;
		if (!queue_id_valid(id, strlen(id))) {
			fprintf(stderr, "%s: ", a.prog);
			put_safe_str(stderr, id);
			fputs(": not a queue id\n", stderr);
			this_rc = EXIT_USAGE;
		} else {
			struct queue_lock lk;
			/* Under the entry's lock: a runner delivering it right now
			 * holds it, and removing the files under it would make that
			 * delivery's result unrecordable. */
			st = queue_spool_lock(sp, id, &lk, why, sizeof(why));
			if (st == QUEUE_OK) {
				st = queue_spool_remove(sp, id, why, sizeof(why));
				queue_spool_unlock(&lk);
			}
			switch (st) {
			case QUEUE_OK:
				printf("%s: deleted\n", id);
				break;
			case QUEUE_BUSY:
				fprintf(stderr, "%s: %s: being delivered right now (a runner holds it); "
				                "not deleted, try again in a moment\n",
				        a.prog, id);
				this_rc = EXIT_TEMPFAIL;
				break;
			case QUEUE_GONE:
				fprintf(stderr, "%s: %s: not in the queue (spool %s)\n", a.prog, id, a.dir);
				this_rc = EXIT_NOINPUT;
				break;
			case QUEUE_CORRUPT:
				/* Out of the queue all the same. */
				fprintf(stderr, "%s: ", a.prog);
				put_safe_str(stderr, why);
				fputc('\n', stderr);
				break;
			default:
				fprintf(stderr, "%s: ", a.prog);
				put_safe_str(stderr, why);
				fputc('\n', stderr);
				this_rc = st == QUEUE_TEMP ? EXIT_TEMPFAIL : EXIT_IOERR;
				break;
			}
		}
		if (rc == 0)
			rc = this_rc;
	}
	queue_spool_close(sp);
	if (fflush(stdout) != 0 && rc == 0)
		rc = EXIT_IOERR;
	return rc;
}
