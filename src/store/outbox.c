/* The outbox record format (outbox.h).  A file is records one after
 * another, each
 *
 *     "@" LEN " " CRC LF BODY
 *
 * LEN the body's length in octets (decimal, no leading zero, at most
 * OUTBOX_RECORD_MAX), CRC the CRC-32 (IEEE 802.3, zlib's and Python's
 * zlib.crc32) of the body as 8 lower-case hex digits.  The body is one
 * line per field, in this order, each NAME SP VALUE LF:
 *
 *     id, mailbox, path, from, to (once per recipient, 0 or more), ip,
 *     helo, size, time
 *
 * Every value is percent-encoded: an octet outside 0x21..0x7e, and '%'
 * itself, is "%" and two upper-case hex digits; nothing else is.  So no
 * value holds a space, a line feed or a NUL whatever an address or a HELO
 * argument carries (SMTPUTF8 addresses, spaces, control octets through a
 * bug elsewhere), a body line never starts with '@', and "LF @" is found
 * only where a record starts: a reader that meets a damaged record (a bad
 * header, a CRC or LEN that does not match, a body that breaks these
 * rules) looks for the next "LF @" and goes on there.  A record cut short
 * (the tail of a file a crash truncated) fails its length or its CRC the
 * same way.  Python reads it with zlib.crc32 and
 * urllib.parse.unquote_to_bytes (tests/integration/test_store_outbox.py). */
#include "store/outbox.h"

#include <stdlib.h>
#include <string.h>

/* A record's body: the recipients dominate (FRAME_RCPTS_MAX addresses of
 * up to FRAME_ADDRESS_MAX octets, three octets each when all escaped, is
 * 30 MB); past this a length is damage, not a record. */
#define OUTBOX_RECORD_MAX (64u * 1024u * 1024u)
#define OUTBOX_LEN_DIGITS 8 /* OUTBOX_RECORD_MAX has 8 digits */

static const char hexu[] = "0123456789ABCDEF";
static const char hexl[] = "0123456789abcdef";

static uint32_t crc_table[256];
static bool crc_ready;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
	crc_ready = true;
}

static uint32_t crc32_ieee(const char *p, size_t len)
{
	if (!crc_ready)
		crc_init();
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < len; i++)
		c = crc_table[(c ^ (uint8_t)p[i]) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

static bool octet_plain(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '%';
}

/* ---- writing ---- */

static int put_field(struct buf *b, const char *name, const char *value)
{
	if (buf_append_str(b, name) < 0 || buf_append(b, " ", 1) < 0)
		return -1;
	const unsigned char *v = (const unsigned char *)value;
	while (*v) {
		size_t run = 0;
		while (v[run] && octet_plain(v[run]))
			run++;
		if (run && buf_append(b, v, run) < 0)
			return -1;
		v += run;
		if (!*v)
			break;
		char esc[3] = { '%', hexu[*v >> 4], hexu[*v & 15] };
		if (buf_append(b, esc, 3) < 0)
			return -1;
		v++;
	}
	return buf_append(b, "\n", 1);
}

static int put_number(struct buf *b, const char *name, uint64_t n)
{
	char digits[24];
	size_t k = sizeof(digits);
	digits[--k] = '\0';
	do {
		digits[--k] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	return put_field(b, name, digits + k);
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

int outbox_record_append(struct buf *b, const struct outbox_event *ev)
{
	size_t start = b->len;
	/* The header's room, filled once the body's length is known:
	 * "@" + digits + " " + 8 + LF, the digits written as needed below. */
	char head[1 + OUTBOX_LEN_DIGITS + 1 + 8 + 1] = { 0 };
	if (buf_append(b, head, sizeof(head)) < 0)
		return -1;
	size_t body = b->len;
	int rc = put_field(b, "id", or_empty(ev->id)) < 0 ||
	         put_field(b, "mailbox", or_empty(ev->mailbox)) < 0 ||
	         put_field(b, "path", or_empty(ev->path)) < 0 ||
	         put_field(b, "from", or_empty(ev->from)) < 0;
	for (size_t i = 0; i < ev->nto && !rc; i++)
		rc = put_field(b, "to", or_empty(ev->to[i])) < 0;
	rc = rc || put_field(b, "ip", or_empty(ev->client_ip)) < 0 ||
	     put_field(b, "helo", or_empty(ev->helo)) < 0 || put_number(b, "size", ev->size) < 0 ||
	     put_number(b, "time", ev->time < 0 ? 0 : (uint64_t)ev->time) < 0;
	size_t len = b->len - body;
	if (rc != 0 || len > OUTBOX_RECORD_MAX) {
		b->len = start;
		if (b->data)
			b->data[start] = '\0';
		return -1;
	}
	uint32_t crc = crc32_ieee(b->data + body, len);
	/* The header, then the body moved up against it. */
	size_t k = 0;
	head[k++] = '@';
	char digits[OUTBOX_LEN_DIGITS];
	size_t nd = 0;
	do {
		digits[nd++] = (char)('0' + len % 10);
		len /= 10;
	} while (len);
	while (nd)
		head[k++] = digits[--nd];
	head[k++] = ' ';
	for (int i = 7; i >= 0; i--)
		head[k++] = hexl[(crc >> (i * 4)) & 15];
	head[k++] = '\n';
	memmove(b->data + start + k, b->data + body, b->len - body);
	memcpy(b->data + start, head, k);
	b->len -= sizeof(head) - k;
	b->data[b->len] = '\0';
	return 0;
}

/* ---- reading ---- */

static const char *const field_names[] = { "id", "mailbox", "path", "from", "to",
	                                   "ip", "helo", "size", "time" };
enum { F_ID, F_MAILBOX, F_PATH, F_FROM, F_TO, F_IP, F_HELO, F_SIZE, F_TIME, F_COUNT };

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes v[0..n) into out (NUL-terminated): false for a raw octet that
 * should have been escaped, an escape that is not "%" and two upper-case
 * hex digits, or one that is not needed, or a NUL. */
static bool value_decode(const char *v, size_t n, char *out)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c != '%') {
			if (!octet_plain(c))
				return false;
			out[k++] = (char)c;
			continue;
		}
		if (n - i < 3)
			return false;
		int hi = hex_value(v[i + 1]), lo = hex_value(v[i + 2]);
		if (hi < 0 || lo < 0)
			return false;
		unsigned char d = (unsigned char)(hi << 4 | lo);
		/* One spelling per value: a plain octet escaped is damage. */
		if (d == 0 || octet_plain(d))
			return false;
		out[k++] = (char)d;
		i += 2;
	}
	out[k] = '\0';
	return true;
}

static bool number_decode(const char *s, uint64_t max, uint64_t *out)
{
	if (!*s || (s[0] == '0' && s[1]))
		return false;
	uint64_t n = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned d = (unsigned)(*s - '0');
		if (n > (max - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*out = n;
	return true;
}

/* Parses a body (CRC already checked) into ev, decoding into copy (len + 1
 * octets) and to (room for every line's pointer).  false if it breaks the
 * format. */
static bool body_parse(const char *p, size_t len, char *copy, const char **to,
                       struct outbox_event *ev)
{
	const char *values[F_COUNT] = { 0 };
	size_t nto = 0;
	int next = F_ID; /* the lowest field that may come */
	const char *end = p + len;
	char *out = copy;
	if (len == 0 || p[len - 1] != '\n')
		return false;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *sp = memchr(p, ' ', (size_t)(nl - p));
		if (!sp)
			return false;
		size_t nlen = (size_t)(sp - p);
		int f = next;
		while (f < F_COUNT &&
		       !(strlen(field_names[f]) == nlen && memcmp(field_names[f], p, nlen) == 0))
			f++;
		if (f == F_COUNT)
			return false;
		/* Every field but to exactly once, and in order. */
		for (int skipped = next; skipped < f; skipped++)
			if (skipped != F_TO)
				return false;
		if (!value_decode(sp + 1, (size_t)(nl - sp - 1), out))
			return false;
		if (f == F_TO)
			to[nto++] = out;
		else
			values[f] = out;
		out += strlen(out) + 1;
		next = f == F_TO ? F_TO : f + 1;
		p = nl + 1;
	}
	if (next != F_COUNT)
		return false;
	uint64_t size, time;
	if (!number_decode(values[F_SIZE], UINT64_MAX, &size) ||
	    !number_decode(values[F_TIME], INT64_MAX, &time))
		return false;
	*ev = (struct outbox_event){
		.id = values[F_ID], .mailbox = values[F_MAILBOX], .path = values[F_PATH],
		.from = values[F_FROM], .to = to, .nto = nto, .client_ip = values[F_IP],
		.helo = values[F_HELO], .size = size, .time = (int64_t)time,
	};
	return true;
}

/* The header at data[0..len): true with the body's offset and length when
 * it is well formed and the body is all there. */
static bool header_parse(const char *data, size_t len, size_t *body, size_t *blen,
                         uint32_t *crc)
{
	size_t i = 1, n = 0;
	if (len < 1 || data[0] != '@')
		return false;
	size_t d0 = i;
	while (i < len && data[i] >= '0' && data[i] <= '9' && i - d0 < OUTBOX_LEN_DIGITS)
		n = n * 10 + (size_t)(data[i++] - '0');
	if (i == d0 || (data[d0] == '0') || n > OUTBOX_RECORD_MAX)
		return false;
	if (i >= len || data[i++] != ' ')
		return false;
	uint32_t c = 0;
	for (int k = 0; k < 8; k++, i++) {
		if (i >= len)
			return false;
		const char *h = memchr(hexl, data[i], 16);
		if (!h || !data[i])
			return false;
		c = c << 4 | (uint32_t)(h - hexl);
	}
	if (i >= len || data[i++] != '\n')
		return false;
	if (len - i < n)
		return false; /* cut short */
	*body = i;
	*blen = n;
	*crc = c;
	return true;
}

size_t outbox_parse(const char *data, size_t len, outbox_each_fn each, void *arg, size_t *bad)
{
	size_t pos = 0, count = 0;
	*bad = 0;
	while (pos < len) {
		size_t body, blen;
		uint32_t crc;
		bool ok = header_parse(data + pos, len - pos, &body, &blen, &crc) &&
		          crc32_ieee(data + pos + body, blen) == crc;
		if (ok) {
			/* Each value shrinks or keeps its length when decoded, and
			 * takes a NUL for its LF; at most one to per two octets. */
			char *copy = malloc(blen + 1);
			const char **to = malloc((blen / 2 + 1) * sizeof(*to));
			struct outbox_event ev;
			ok = copy && to && body_parse(data + pos + body, blen, copy, to, &ev);
			bool more = true;
			if (ok) {
				count++;
				more = each(&ev, arg);
			}
			free(copy);
			free(to);
			if (ok) {
				pos += body + blen;
				if (!more)
					break;
				continue;
			}
		}
		/* Damaged: on to the next record's start, if any: where its
		 * header says it ends, when a record starts there (a damaged
		 * last LF leaves no "LF @" before the next), else after the
		 * next "LF @". */
		++*bad;
		const char *next = NULL;
		size_t claimed;
		if (header_parse(data + pos, len - pos, &body, &blen, &crc) &&
		    (claimed = pos + body + blen) < len && data[claimed] == '@') {
			pos = claimed;
			continue;
		}
		for (size_t i = pos + 1; i + 1 < len && !next; i++) {
			const char *nl = memchr(data + i, '\n', len - i - 1);
			if (!nl)
				break;
			if (nl[1] == '@')
				next = nl + 1;
			i = (size_t)(nl - data);
		}
		if (!next)
			break;
		pos = (size_t)(next - data);
	}
	return count;
}

bool outbox_name_ok(const char *name)
{
	/* 16 lower-case hex digits (CLOCK_REALTIME in ns), '-', the writer's
	 * pid in decimal: what outbox_name_format writes. */
	for (int i = 0; i < 16; i++)
		if (!name[i] || !memchr(hexl, name[i], 16))
			return false;
	if (name[16] != '-')
		return false;
	const char *p = name + 17;
	size_t n = 0;
	if (*p == '0')
		return false;
	while (p[n] >= '0' && p[n] <= '9' && n < 10)
		n++;
	return n > 0 && p[n] == '\0';
}

void outbox_name_format(char out[OUTBOX_NAME_MAX], uint64_t ns, long pid, bool tmp)
{
	size_t k = 0;
	for (int i = 15; i >= 0; i--)
		out[k++] = hexl[(ns >> (i * 4)) & 15];
	out[k++] = '-';
	char digits[24];
	size_t nd = 0;
	unsigned long v = pid > 0 ? (unsigned long)pid : 1;
	do {
		digits[nd++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (nd)
		out[k++] = digits[--nd];
	if (tmp) {
		memcpy(out + k, ".tmp", 4);
		k += 4;
	}
	out[k] = '\0';
}

long outbox_tmp_pid(const char *name)
{
	size_t n = strlen(name);
	if (n < 4 || n - 4 >= OUTBOX_NAME_MAX || memcmp(name + n - 4, ".tmp", 4) != 0)
		return 0;
	char final[OUTBOX_NAME_MAX];
	memcpy(final, name, n - 4);
	final[n - 4] = '\0';
	if (!outbox_name_ok(final))
		return 0;
	long pid = 0;
	for (const char *p = final + 17; *p; p++)
		pid = pid * 10 + (*p - '0');
	return pid;
}
