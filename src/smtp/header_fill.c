/* Submission's missing Date and Message-ID, while streaming: see
 * header_fill.h for the rules.  The state machine looks at the header
 * section one octet at a time and at the body not at all.
 *
 * Emission order: octets of the current chunk that are decided (passed
 * through) accumulate as the slice data[run..i) and are emitted in one
 * call when something else must come out, or at the chunk's end.  While a
 * line's start is undecided (it may be a field name, or the body's first
 * line before which the fields must go), nothing from that line on is
 * emitted: its octets from earlier chunks are in f->hold, its octets from
 * this chunk start at `line`. */
#include "smtp/header_fill.h"

#include <string.h>

enum {
	HF_LINE_START,  /* at the start of a header-section line */
	HF_NAME,        /* in a name: not yet known to be a field */
	HF_NAME_WSP,    /* after the name, in SP/HTAB before a colon */
	HF_FIELD,       /* in a field line (or continuation): to its LF */
	HF_BODY,        /* after the header section: everything passes */
	HF_FINISHED,
};

/* The names looked for, lower case; bit k of f->match is names[k]. */
#define MATCH_DATE 1u
#define MATCH_MSGID 2u
static const char name_date[] = "date";
static const char name_msgid[] = "message-id";

static bool is_name_octet(unsigned char c)
{
	/* RFC 5322 §3.6.8: ftext is %d33-57 / %d59-126 */
	return c >= 33 && c <= 126 && c != ':';
}

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static void out(smtp_header_fill_emit_fn emit, void *arg, const char *p, size_t n)
{
	if (n)
		emit(arg, p, n);
}

static void out_inserted(struct smtp_header_fill *f, smtp_header_fill_emit_fn emit, void *arg,
                         const char *p, size_t n)
{
	out(emit, arg, p, n);
	f->inserted += n;
}

static bool fields_missing(const struct smtp_header_fill *f)
{
	return (!f->have_date && f->date_value) || (!f->have_msgid && f->msgid_value);
}

/* The missing fields; then an empty line when the section ends at a line
 * that is not a field (header_fill.h says why).  When none is missing,
 * nothing: a message with both fields is never changed. */
static void fields_emit(struct smtp_header_fill *f, bool separator, smtp_header_fill_emit_fn emit,
                        void *arg)
{
	f->header_done = true;
	if (!fields_missing(f))
		return;
	if (!f->have_date && f->date_value) {
		out_inserted(f, emit, arg, "Date: ", 6);
		out_inserted(f, emit, arg, f->date_value, strlen(f->date_value));
		out_inserted(f, emit, arg, "\n", 1);
	}
	if (!f->have_msgid && f->msgid_value) {
		out_inserted(f, emit, arg, "Message-ID: ", 12);
		out_inserted(f, emit, arg, f->msgid_value, strlen(f->msgid_value));
		out_inserted(f, emit, arg, "\n", 1);
	}
	if (separator)
		out_inserted(f, emit, arg, "\n", 1);
}

void smtp_header_fill_init(struct smtp_header_fill *f, const char *date_value,
                           const char *msgid_value)
{
	memset(f, 0, sizeof(*f));
	f->date_value = date_value;
	f->msgid_value = msgid_value;
	f->state = HF_LINE_START;
}

/* The name read so far is complete (a colon came): note what it named. */
static void field_name_end(struct smtp_header_fill *f)
{
	if ((f->match & MATCH_DATE) && f->name_len == sizeof(name_date) - 1)
		f->have_date = true;
	if ((f->match & MATCH_MSGID) && f->name_len == sizeof(name_msgid) - 1)
		f->have_msgid = true;
}

void smtp_header_fill_feed(struct smtp_header_fill *f, const char *data, size_t len,
                           smtp_header_fill_emit_fn emit, void *arg)
{
	if (f->state == HF_FINISHED)
		return;
	size_t run = 0;  /* data[run..i) decided, not yet emitted */
	size_t line = 0; /* where this chunk's part of an undecided line starts */
	size_t i = 0;
	while (i < len && f->state != HF_BODY) {
		unsigned char c = (unsigned char)data[i];
		switch (f->state) {
		case HF_LINE_START:
			if (c == '\n') {
				/* RFC 5322 §2.1: the empty line ends the header
				 * section; the fields go before it. */
				out(emit, arg, data + run, i - run);
				run = i;
				fields_emit(f, false, emit, arg);
				f->state = HF_BODY;
			} else if ((c == ' ' || c == '\t') && f->fields_seen) {
				/* RFC 5322 §2.2.3: a folded field continues */
				f->state = HF_FIELD;
				i++;
			} else if (is_name_octet(c)) {
				line = i;
				f->nhold = 0;
				f->name_len = 1;
				f->match = 0;
				if (lower(c) == name_date[0])
					f->match |= MATCH_DATE;
				if (lower(c) == name_msgid[0])
					f->match |= MATCH_MSGID;
				f->state = HF_NAME;
				i++;
			} else {
				/* Not a field: the section ends without its
				 * empty line. */
				out(emit, arg, data + run, i - run);
				run = i;
				fields_emit(f, true, emit, arg);
				f->state = HF_BODY;
			}
			break;
		case HF_NAME:
		case HF_NAME_WSP:
			if (c == ':') {
				field_name_end(f);
				f->fields_seen = true;
				f->state = HF_FIELD;
				/* Decided: held octets come out before this
				 * chunk's, which stay in the run. */
				out(emit, arg, f->hold, f->nhold);
				f->nhold = 0;
				i++;
				break;
			}
			if (f->nhold + (i - line) >= SMTP_HEADER_FILL_HOLD_MAX) {
				/* Too long to be anything but a field name:
				 * taken as a field (limits.h), matching none. */
				f->fields_seen = true;
				f->state = HF_FIELD;
				out(emit, arg, f->hold, f->nhold);
				f->nhold = 0;
				break; /* c is looked at again as a field octet */
			}
			if (c == ' ' || c == '\t') {
				f->state = HF_NAME_WSP;
				i++;
			} else if (f->state == HF_NAME && is_name_octet(c)) {
				size_t k = f->name_len++;
				if (k >= sizeof(name_date) - 1 || lower(c) != (unsigned char)name_date[k])
					f->match &= (unsigned char)~MATCH_DATE;
				if (k >= sizeof(name_msgid) - 1 || lower(c) != (unsigned char)name_msgid[k])
					f->match &= (unsigned char)~MATCH_MSGID;
				i++;
			} else {
				/* Not a field (no colon): the fields and an
				 * empty line go before this line. */
				out(emit, arg, data + run, line - run);
				fields_emit(f, true, emit, arg);
				out(emit, arg, f->hold, f->nhold);
				f->nhold = 0;
				run = line;
				f->state = HF_BODY;
			}
			break;
		case HF_FIELD: {
			const char *lf = memchr(data + i, '\n', len - i);
			if (!lf) {
				i = len;
			} else {
				i = (size_t)(lf - data) + 1;
				f->state = HF_LINE_START;
			}
			break;
		}
		}
	}
	if (f->state == HF_NAME || f->state == HF_NAME_WSP) {
		/* The line is still undecided: what came before it goes out,
		 * its octets wait (at most SMTP_HEADER_FILL_HOLD_MAX: the
		 * check above decided any longer one). */
		out(emit, arg, data + run, line - run);
		memcpy(f->hold + f->nhold, data + line, len - line);
		f->nhold += len - line;
		return;
	}
	out(emit, arg, data + run, len - run);
}

void smtp_header_fill_finish(struct smtp_header_fill *f, smtp_header_fill_emit_fn emit, void *arg)
{
	switch (f->state) {
	case HF_LINE_START:
		/* Ended in the header section after a whole line (or empty):
		 * a message of header fields only (RFC 5322 §3.5: the body is
		 * optional). */
		fields_emit(f, false, emit, arg);
		break;
	case HF_FIELD:
		/* The last field line had no LF: one first, so the fields
		 * are lines of their own. */
		if (fields_missing(f))
			out_inserted(f, emit, arg, "\n", 1);
		fields_emit(f, false, emit, arg);
		break;
	case HF_NAME:
	case HF_NAME_WSP:
		/* The last line, without LF or colon, is not a field. */
		fields_emit(f, true, emit, arg);
		out(emit, arg, f->hold, f->nhold);
		f->nhold = 0;
		break;
	default:
		break;
	}
	f->state = HF_FINISHED;
}
