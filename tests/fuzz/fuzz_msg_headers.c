/* libFuzzer harness for raw messages (src/msg/raw.c) and -t address lists
 * (src/msg/address_list.c): arbitrary bytes must never crash them, the
 * output stays bounded, extracted addresses hold no CR, LF or other
 * control octet, a message taken holds no NUL (one with a NUL is refused
 * with MSG_ERR_NUL), and a prepared message is a fixed point (preparing it
 * again changes nothing: nothing left to add, no Bcc left).
 *
 * The first octet selects: bit 0 -t (read recipients), bit 1 also parse
 * the rest directly as one address list, bit 2 an origin (addresses
 * qualified), bit 3 long lines mended (the sendmail entry: then no output
 * line is over 998 octets).  Seeds come from
 * tests/unit/test_msg_headers.c (RAWMAIL_SEED_DIR). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msg/raw.h"
#include "util/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)
#define RECIPIENTS_MAX 64
/* What the additions (From, Date, Message-ID, one separator) can add. */
#define ADDED_MAX 1024

static void check_recipients(const struct msg_recipients *r)
{
	CHECK(r->count <= RECIPIENTS_MAX);
	for (size_t i = 0; i < r->count; i++) {
		size_t n = strlen(r->addrs[i]);
		CHECK(n > 0 && n <= SMTP_PATH_MAX);
		for (size_t k = 0; k < n; k++)
			CHECK((unsigned char)r->addrs[i][k] >= 32 && r->addrs[i][k] != 127);
	}
}

static void check_error(const struct msg_error *err)
{
	CHECK(err->status == MSG_ERR_LINE_TOO_LONG || err->status == MSG_ERR_NUL ||
	      err->status == MSG_ERR_ADDRESS || err->status == MSG_ERR_TOO_BIG);
	CHECK(memchr(err->text, '\0', sizeof(err->text)) != NULL);
	CHECK(strpbrk(err->text, "\r\n") == NULL);
}

/* No Bcc field is left in the header section (up to the first empty
 * line; raw.c inserts one before a body line that had none). */
static void check_no_bcc(const char *p, size_t len)
{
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(p + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - p) : len;
		if (end == pos || (end == pos + 1 && p[pos] == '\r'))
			return;
		if (end - pos >= 3 && strncasecmp(p + pos, "bcc", 3) == 0) {
			size_t i = pos + 3;
			while (i < end && (p[i] == ' ' || p[i] == '\t'))
				i++;
			CHECK(i == end || p[i] != ':');
		}
		pos = end + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t sel = data[0];
	const char *in = (const char *)data + 1;
	size_t len = size - 1;

	struct msg_raw opt = {
		.from = "sender@host.example",
		.from_name = "Fuzz Sender",
		.stamp = { .date = 1739437445, .tz_minutes = 60, .hostname = "host.example" },
		.extract_recipients = sel & 1,
		.origin = sel & 4 ? "o.t" : NULL,
		.mend_long_lines = sel & 8,
	};
	/* "@o.t" after an addr-spec of one octet and a comma; quoted-printable
	 * and its soft breaks: both within four times the input. */
	size_t max = (sel & 12 ? 4 * len : len) + ADDED_MAX;
	struct msg_error err;
	memset(&err, 0, sizeof(err));

	if (sel & 2) {
		struct msg_recipients r;
		msg_recipients_init(&r, RECIPIENTS_MAX);
		if (msg_address_list_parse(in, len, &r, &err) < 0)
			check_error(&err);
		check_recipients(&r);
		msg_recipients_free(&r);
	}

	struct buf out;
	buf_init(&out, max);
	struct msg_recipients r1;
	msg_recipients_init(&r1, RECIPIENTS_MAX);
	int rc = msg_raw_prepare(&opt, in, len, &out, &r1, &err);
	check_recipients(&r1);
	if (rc < 0) {
		check_error(&err);
		CHECK(err.status != MSG_ERR_TOO_BIG);   /* ADDED_MAX is enough */
	} else {
		CHECK(out.len <= max);
		if (sel & 8)
			CHECK(!msg_raw_has_long_line(out.data, out.len));
		/* RFC 5322 §2.3: a message that is taken holds no NUL. */
		CHECK(memchr(out.data, '\0', out.len) == NULL);
		check_no_bcc(out.data, out.len);

		struct buf again;
		buf_init(&again, max);
		struct msg_recipients r2;
		msg_recipients_init(&r2, RECIPIENTS_MAX);
		/* With an origin, -t is not read again: an address read the
		 * first time may be over 256 octets with "@o.t" added. */
		struct msg_raw opt2 = opt;
		if (sel & 4)
			opt2.extract_recipients = false;
		CHECK(msg_raw_prepare(&opt2, out.data, out.len, &again, &r2, &err) == 0);
		CHECK(again.len == out.len && memcmp(again.data, out.data, out.len) == 0);
		/* Without the Bcc fields, -t finds a subset of the first run
		 * (with an origin, of the addresses now qualified). */
		for (size_t i = 0; i < r2.count && !(sel & 4); i++) {
			bool found = false;
			for (size_t k = 0; k < r1.count && !found; k++)
				found = strcmp(r2.addrs[i], r1.addrs[k]) == 0;
			CHECK(found);
		}
		msg_recipients_free(&r2);
		buf_free(&again);
	}
	msg_recipients_free(&r1);
	buf_free(&out);
	return 0;
}
