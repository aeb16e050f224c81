/* libFuzzer harness for delivery status notifications (src/msg/dsn.c):
 * whatever the host name, sender, original message, addresses, statuses
 * and replies, msg_dsn_build either refuses with MSG_ERR_USAGE or
 * MSG_ERR_INJECTION (a bad host name, a null, control-laden or non-UTF-8
 * sender, a recipient without an address) or makes a DSN that dsn_check_message
 * (tests/unit/dsn_check.h) accepts: every line at most 998 octets and
 * ending CR LF, no NUL, 7-bit but for a UTF-8 To, header sections that
 * parse, the boundary only in its delimiter lines, one delivery-status
 * block per recipient.  And the same input always gives the same bytes.
 *
 * Input: a selector octet (bit i: recipient i is delayed, i < 6; bit 6:
 * zone -0530; bit 7: no arrival date), then fields separated by "\xff\x1e":
 * host, sender, original message, then per recipient (at most 8) final
 * recipient, original recipient, status, remote MTA, reply, reason.  An
 * empty optional field is NULL; string fields end at a NUL (C strings),
 * the original and the reply keep every octet.  Seeds come from
 * tests/unit/test_msg_dsn.c (RAWMAIL_SEED_DIR). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/dsn_check.h"
#include "msg/dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)
#define FUZZ_RCPTS_MAX 8
#define FUZZ_FIELDS_MAX (3 + 6 * FUZZ_RCPTS_MAX)

struct field {
	const char *p;
	size_t len;
	char *str;   /* NUL-terminated copy */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t sel = data[0];
	const char *in = (const char *)data + 1;
	size_t len = size - 1;

	struct field f[FUZZ_FIELDS_MAX];
	size_t nf = 0, start = 0;
	for (size_t i = 0; i <= len && nf < FUZZ_FIELDS_MAX; i++) {
		bool sep = i + 1 < len && (unsigned char)in[i] == 0xff && in[i + 1] == 0x1e;
		if (!sep && i < len)
			continue;
		f[nf].p = in + start;
		f[nf].len = i - start;
		f[nf].str = malloc(f[nf].len + 1);
		CHECK(f[nf].str);
		memcpy(f[nf].str, f[nf].p, f[nf].len);
		f[nf].str[f[nf].len] = '\0';
		nf++;
		start = i + 2;
		i++;
	}
	if (nf < 4)
		goto out;

	struct msg_dsn_recipient r[FUZZ_RCPTS_MAX];
	memset(r, 0, sizeof(r));
	size_t nr = 0;
	for (size_t k = 3; k < nf && nr < FUZZ_RCPTS_MAX; k += 6, nr++) {
		struct field *g = &f[k];
		size_t have = nf - k;
		r[nr].final_recipient = g[0].str;
		r[nr].original_recipient = have > 1 && g[1].len ? g[1].str : NULL;
		r[nr].status = have > 2 && g[2].len ? g[2].str : NULL;
		r[nr].remote_mta = have > 3 && g[3].len ? g[3].str : NULL;
		if (have > 4 && g[4].len) {
			r[nr].diagnostic = g[4].p;
			r[nr].diagnostic_len = g[4].len;
		}
		r[nr].reason = have > 5 && g[5].len ? g[5].str : NULL;
		r[nr].action = nr < 6 && (sel >> nr & 1) ? MSG_DSN_DELAYED : MSG_DSN_FAILED;
		r[nr].last_attempt = 1739437000 + (time_t)nr;
		r[nr].will_retry_until = 1739869445;
	}
	struct msg_dsn d = {
		.reporting_mta = f[0].str,
		.sender = f[1].str,
		.arrival = sel & 0x80 ? 0 : 1739430000,
		.original = f[2].p,
		.original_len = f[2].len,
		.rcpts = r,
		.rcpt_count = nr,
	};
	d.stamp.date = 1739437445;
	d.stamp.tz_minutes = sel & 0x40 ? -330 : 60;
	for (size_t i = 0; i < MSG_RANDOM_LEN; i++)
		d.stamp.random[i] = (unsigned char)i;

	struct buf out;
	buf_init(&out, 64u << 20);
	struct msg_error err;
	memset(&err, 0, sizeof(err));
	int rc = msg_dsn_build(&d, &out, &err);
	if (rc < 0) {
		CHECK(err.status == MSG_ERR_USAGE || err.status == MSG_ERR_INJECTION);
		CHECK(out.len == 0);
		CHECK(memchr(err.text, '\0', sizeof(err.text)) != NULL);
	} else {
		CHECK(dsn_check_message(out.data, out.len, nr) == NULL);
		/* Bounded: the headers cap (quoted-printable may triple it),
		 * the replies' cap, the addresses escaped (at most 10 octets
		 * for one) in three places, fixed text. */
		CHECK(out.len < 4 * DSN_HEADERS_MAX + nr * 16 * DSN_DIAGNOSTIC_MAX +
		                32 * len + 65536);
		struct buf again;
		buf_init(&again, 64u << 20);
		CHECK(msg_dsn_build(&d, &again, &err) == 0);
		CHECK(again.len == out.len && memcmp(again.data, out.data, out.len) == 0);
		buf_free(&again);
	}
	buf_free(&out);
out:
	for (size_t i = 0; i < nf; i++)
		free(f[i].str);
	return 0;
}
