/* Unit tests for the MIME encoders (src/msg/qp.c, base64.c, word.c):
 * known vectors (RFC 4648 §10 for base64, RFC 2045 / RFC 2047 rules), and
 * round trips through decoders written here from the RFCs, with the
 * line-length and character rules checked on every output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msg/mime.h"

#define S(lit) lit, sizeof(lit) - 1

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;   /* RFC 2045 §6.7: upper case only */
}

/* ---- quoted-printable ------------------------------------------------- */

/* RFC 2045 §6.7 decoding; also checks rules 1-5 on the encoded form. */
static size_t qp_decode(const char *in, size_t len, char *out)
{
	size_t n = 0;
	size_t col = 0;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == '\r') {
			assert_true(i + 1 < len && in[i + 1] == '\n');
			assert_true(col <= 76);
			/* Rule 3: no white space before a line break. */
			if (i > 0)
				assert_true(in[i - 1] != ' ' && in[i - 1] != '\t');
			out[n++] = '\r';
			out[n++] = '\n';
			i++;
			col = 0;
			continue;
		}
		if (c == '=') {
			assert_true(i + 2 < len);
			if (in[i + 1] == '\r') {   /* soft line break */
				assert_true(in[i + 2] == '\n');
				assert_true(col + 1 <= 76);
				i += 2;
				col = 0;
				continue;
			}
			int hi = hex_value(in[i + 1]);
			int lo = hex_value(in[i + 2]);
			assert_true(hi >= 0 && lo >= 0);
			out[n++] = (char)(hi * 16 + lo);
			i += 2;
			col += 3;
			continue;
		}
		/* Rule 2: literal octets are printable ASCII, space, tab. */
		assert_true((c >= 33 && c <= 126) || c == ' ' || c == '\t');
		out[n++] = c;
		col++;
	}
	assert_int_equal(col, 0);   /* ends with a line break */
	return n;
}

/* What a text body becomes: LF and CR LF are CR LF, and it ends with one. */
static size_t text_normalize(const char *in, size_t len, char *out)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
			continue;
		if (in[i] == '\n')
			out[n++] = '\r';
		out[n++] = in[i];
	}
	if (len && in[len - 1] != '\n') {
		out[n++] = '\r';
		out[n++] = '\n';
	}
	return n;
}

struct qp_case {
	const char *name;
	const char *in;
	size_t len;
	const char *want;    /* NULL: round trip only */
};

static char qp_long[300];
static char qp_eq[200];
static char qp_76[77];

static struct qp_case qp_cases[] = {
	{ "empty", S(""), "" },
	{ "plain", S("hello\n"), "hello\r\n" },
	{ "no_newline", S("hello"), "hello\r\n" },
	{ "equals", S("a=b\n"), "a=3Db\r\n" },
	{ "utf8", S("\xc3\xa9t\xc3\xa9\n"), "=C3=A9t=C3=A9\r\n" },
	{ "trailing_space", S("a \nb\t\n"), "a=20\r\nb=09\r\n" },
	{ "trailing_space_at_end", S("a "), "a=20\r\n" },
	{ "inner_space", S("a b\n"), "a b\r\n" },
	{ "crlf", S("a\r\nb\r\n"), "a\r\nb\r\n" },
	{ "lone_cr", S("a\rb"), "a=0Db\r\n" },
	{ "cr_at_end", S("a\r"), "a=0D\r\n" },
	{ "nul", S("\0"), "=00\r\n" },
	{ "empty_lines", S("\n\n"), "\r\n\r\n" },
	{ "dot_line", S(".\n"), ".\r\n" },
	{ "long", qp_long, sizeof(qp_long), NULL },
	{ "long_equals", qp_eq, sizeof(qp_eq), NULL },
	{ "exactly_76", qp_76, 76, NULL },
	{ "exactly_77", qp_76, 77, NULL },
};

static void test_qp_case(void **state)
{
	const struct qp_case *tc = *state;
	struct buf out;
	buf_init(&out, 1 << 20);
	assert_int_equal(msg_mime_qp_encode(&out, tc->in, tc->len), 0);
	const char *enc = out.data ? out.data : "";
	if (tc->want)
		assert_string_equal(enc, tc->want);
	char *dec = malloc(out.len + 1);
	char *norm = malloc(2 * tc->len + 3);
	size_t dn = qp_decode(enc, out.len, dec);
	size_t nn = text_normalize(tc->in, tc->len, norm);
	assert_int_equal(dn, nn);
	assert_memory_equal(dec, norm, nn);
	free(dec);
	free(norm);
	buf_free(&out);
}

/* Every octet value at every column: the decoder's checks (76 columns,
 * no trailing white space) hold and the text reads back. */
static void test_qp_all_octets(void **state)
{
	(void)state;
	char in[256 * 3];
	for (size_t shift = 0; shift < 80; shift += 7) {
		size_t n = 0;
		for (size_t i = 0; i < shift; i++)
			in[n++] = 'x';
		for (int c = 0; c < 256; c++)
			if (c != '\n' && c != '\r')
				in[n++] = (char)c;
		in[n++] = ' ';
		struct buf out;
		buf_init(&out, 1 << 20);
		assert_int_equal(msg_mime_qp_encode(&out, in, n), 0);
		char dec[4096];
		char norm[4096];
		size_t dn = qp_decode(out.data, out.len, dec);
		size_t nn = text_normalize(in, n, norm);
		assert_int_equal(dn, nn);
		assert_memory_equal(dec, norm, nn);
		buf_free(&out);
	}
}

/* ---- base64 ----------------------------------------------------------- */

static int b64_value(char c)
{
	const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(a, c) : NULL;
	return p ? (int)(p - a) : -1;
}

/* RFC 4648 §4 decoding of one unbroken run (length a multiple of 4). */
static size_t b64_decode_run(const char *in, size_t len, unsigned char *out)
{
	size_t n = 0;
	assert_int_equal(len % 4, 0);
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++)
			v[k] = in[i + k] == '=' ? 0 : b64_value(in[i + k]);
		for (int k = 0; k < 4; k++)
			assert_true(v[k] >= 0);
		out[n++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (in[i + 2] != '=')
			out[n++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		if (in[i + 3] != '=')
			out[n++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
	}
	return n;
}

static void test_base64_vectors(void **state)
{
	(void)state;
	/* RFC 4648 §10. */
	static const char *const v[][2] = {
		{ "", "" }, { "f", "Zg==\r\n" }, { "fo", "Zm8=\r\n" }, { "foo", "Zm9v\r\n" },
		{ "foob", "Zm9vYg==\r\n" }, { "fooba", "Zm9vYmE=\r\n" }, { "foobar", "Zm9vYmFy\r\n" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct buf out;
		buf_init(&out, 1024);
		assert_int_equal(msg_mime_base64_encode(&out, v[i][0], strlen(v[i][0])), 0);
		assert_string_equal(out.data ? out.data : "", v[i][1]);
		buf_free(&out);
	}
}

/* Lengths around the 57-octet line: 76 characters per line (RFC 2045
 * §6.8), every line but the last full, and the data reads back. */
static void test_base64_round_trip(void **state)
{
	(void)state;
	unsigned char data[1000];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof(data); i++) {
		x = x * 1103515245u + 12345u;
		data[i] = (unsigned char)(x >> 16);
	}
	for (size_t len = 0; len < sizeof(data); len += (len < 130 ? 1 : 97)) {
		struct buf out;
		buf_init(&out, 1 << 20);
		assert_int_equal(msg_mime_base64_encode(&out, data, len), 0);
		unsigned char dec[1000];
		size_t dn = 0;
		size_t start = 0;
		for (size_t i = 0; i < out.len; i++) {
			if (out.data[i] != '\r')
				continue;
			assert_true(out.data[i + 1] == '\n');
			size_t line = i - start;
			assert_true(line <= 76);
			if (i + 2 < out.len)
				assert_int_equal(line, 76);
			dn += b64_decode_run(out.data + start, line, dec + dn);
			start = i + 2;
		}
		assert_int_equal(start, out.len);
		assert_int_equal(dn, len);
		assert_memory_equal(dec, data, len);
		buf_free(&out);
	}
}

/* ---- encoded words ---------------------------------------------------- */

/* RFC 2047 decoding of a field body made only of encoded words (as
 * msg_mime_words_encode writes it): unfold, drop the white space between
 * words (§6.2), decode Q (§4.2) and B (§4.1).  Checks §2 (word ≤ 75,
 * line ≤ 76) and §5(3) for phrases. */
static size_t words_decode(const char *in, size_t len, size_t col0, enum msg_word_context ctx,
                           char *out)
{
	size_t n = 0;
	size_t col = col0;
	size_t i = 0;
	while (i < len) {
		if (in[i] == '\r') {
			assert_true(in[i + 1] == '\n' && in[i + 2] == ' ');
			i += 2;
			col = 0;
			continue;
		}
		if (in[i] == ' ') {
			i++;
			col++;
			continue;
		}
		assert_memory_equal(in + i, "=?UTF-8?", 8);
		char kind = in[i + 8];
		assert_true(kind == 'Q' || kind == 'B');
		assert_true(in[i + 9] == '?');
		const char *end = strstr(in + i + 10, "?=");
		assert_non_null(end);
		size_t wlen = (size_t)(end + 2 - (in + i));
		assert_true(wlen <= 75);
		col += wlen;
		assert_true(col <= 76);
		const char *p = in + i + 10;
		size_t plen = (size_t)(end - p);
		if (kind == 'B') {
			n += b64_decode_run(p, plen, (unsigned char *)out + n);
		} else {
			for (size_t k = 0; k < plen; k++) {
				char c = p[k];
				if (c == '_') {
					out[n++] = ' ';
				} else if (c == '=') {
					int hi = hex_value(p[k + 1]);
					int lo = hex_value(p[k + 2]);
					assert_true(hi >= 0 && lo >= 0);
					out[n++] = (char)(hi * 16 + lo);
					k += 2;
				} else {
					assert_true(c > 32 && c < 127 && c != '?');
					if (ctx == MSG_WORD_PHRASE)
						assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz"
						                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
						                       "0123456789!*+-/", c));
					out[n++] = c;
				}
			}
		}
		i += wlen;
	}
	return n;
}

struct word_case {
	const char *name;
	const char *in;
	enum msg_word_context ctx;
	size_t col;
	const char *want;   /* NULL: round trip only */
};

static char word_long_euro[3 * 200 + 1];
static char word_long_mixed[1000];

static struct word_case word_cases[] = {
	/* RFC 2047 §8's examples, in UTF-8. */
	{ "rfc_keith", "Keith Moore", MSG_WORD_PHRASE, 5, " =?UTF-8?Q?Keith_Moore?=" },
	{ "rfc_andre", "Andr\xc3\xa9 Pirard", MSG_WORD_PHRASE, 5, " =?UTF-8?Q?Andr=C3=A9_Pirard?=" },
	{ "specials_text", "a_b=c?d", MSG_WORD_TEXT, 8, " =?UTF-8?B?YV9iPWM/ZA==?=" },
	{ "specials_text_q", "text with a_b=c?d", MSG_WORD_TEXT, 8,
	  " =?UTF-8?Q?text_with_a=5Fb=3Dc=3Fd?=" },
	{ "specials_phrase", "a,b.c", MSG_WORD_PHRASE, 5, " =?UTF-8?B?YSxiLmM=?=" },
	{ "cjk", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", MSG_WORD_TEXT, 8, " =?UTF-8?B?5pel5pys6Kqe?=" },
	{ "empty", "", MSG_WORD_TEXT, 8, "" },
	{ "late_column", "\xc3\xa9", MSG_WORD_TEXT, 60, "\r\n =?UTF-8?B?w6k=?=" },
	{ "long_euro", word_long_euro, MSG_WORD_TEXT, 8, NULL },
	{ "long_euro_phrase", word_long_euro, MSG_WORD_PHRASE, 30, NULL },
	{ "long_mixed", word_long_mixed, MSG_WORD_TEXT, 8, NULL },
	{ "long_mixed_phrase", word_long_mixed, MSG_WORD_PHRASE, 70, NULL },
	{ "bad_utf8", "\x80\x80\x80\x80\x80\x80\xff\xfe", MSG_WORD_TEXT, 8, NULL },
};

static void test_word_case(void **state)
{
	const struct word_case *tc = *state;
	size_t len = strlen(tc->in);
	struct buf out;
	buf_init(&out, 1 << 20);
	size_t col = tc->col;
	assert_int_equal(msg_mime_words_encode(&out, &col, tc->in, len, tc->ctx), 0);
	const char *enc = out.data ? out.data : "";
	if (tc->want)
		assert_string_equal(enc, tc->want);
	char *dec = malloc(len + 1);
	size_t dn = words_decode(enc, out.len, tc->col, tc->ctx, dec);
	assert_int_equal(dn, len);
	assert_memory_equal(dec, tc->in, len);
	/* Cut only between characters: each word decodes to whole UTF-8
	 * characters (for valid input). */
	if (strcmp(tc->name, "bad_utf8") != 0) {
		const char *p = enc;
		while ((p = strstr(p, "=?UTF-8?"))) {
			char one[256];
			const char *e = strstr(p, "?=") + 2;
			size_t n = words_decode(p, (size_t)(e - p), 0, tc->ctx, one);
			assert_true(n > 0);
			assert_true(((unsigned char)one[0] & 0xC0) != 0x80);
			p = e;
		}
	}
	free(dec);
	buf_free(&out);
}

int main(void)
{
	for (size_t i = 0; i < sizeof(qp_long); i++)
		qp_long[i] = (char)('a' + i % 26);
	memset(qp_eq, '=', sizeof(qp_eq));
	memset(qp_76, 'b', sizeof(qp_76));
	for (size_t i = 0; i < 200; i++)
		memcpy(word_long_euro + 3 * i, "\xe2\x82\xac", 3);
	size_t n = 0;
	while (n + 12 < sizeof(word_long_mixed)) {
		memcpy(word_long_mixed + n, "ab c_\xf0\x9f\x98\x80" "d", 10);
		n += 10;
	}

	struct CMUnitTest tests[64];
	size_t t = 0;
	for (size_t i = 0; i < sizeof(qp_cases) / sizeof(qp_cases[0]); i++)
		tests[t++] = (struct CMUnitTest){ .name = qp_cases[i].name, .test_func = test_qp_case,
		                                  .initial_state = &qp_cases[i] };
	for (size_t i = 0; i < sizeof(word_cases) / sizeof(word_cases[0]); i++)
		tests[t++] = (struct CMUnitTest){ .name = word_cases[i].name,
		                                  .test_func = test_word_case,
		                                  .initial_state = &word_cases[i] };
	tests[t++] = (struct CMUnitTest)cmocka_unit_test(test_qp_all_octets);
	tests[t++] = (struct CMUnitTest)cmocka_unit_test(test_base64_vectors);
	tests[t++] = (struct CMUnitTest)cmocka_unit_test(test_base64_round_trip);
	return _cmocka_run_group_tests("msg_mime", tests, t, NULL, NULL);
}
