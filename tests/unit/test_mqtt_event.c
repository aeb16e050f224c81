/* Unit tests for the MQTT event builder (src/mqtt/event*.c) and what it
 * reads messages with (src/msg/decode*.c, mime_read.c, mime_param.c,
 * mime_walk.c): every event is parsed back with jansson and its fields
 * compared exactly.  Plain text, RFC 2047 subjects, charsets, camera
 * mails with and without published attachments, alternatives, nesting,
 * broken MIME, invalid UTF-8, 10,000 parts, a 1 MiB header, no message,
 * the 64 KiB text cap, topic levels.
 *
 * With RAWMAIL_SEED_DIR set, main() first writes the messages below as
 * seeds for tests/fuzz/fuzz_mqtt_event.c (selector octet, then the
 * message). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "mqtt/event.h"
#include "msg/decode.h"
#include "testutil.h"
#include "util/limits.h"

static const char *const rcpts[] = { "cam@home.example", "Alarm+x@home.example" };

static const struct outbox_event ev0 = {
	.id = "0KX3F2A7B",
	.mailbox = "cam",
	.path = "cam/new/1733500000.M1P2Q3.host,S=1234,W=1260",
	.from = "camera@lan.example",
	.to = rcpts,
	.nto = 2,
	.client_ip = "192.168.1.20",
	.helo = "ipcam",
	.size = 1234,
	.time = 1733500000,
};

/* Builds, checks the payload is one JSON object, parses it back.  out is
 * left for the caller (attachments' bytes). */
static json_t *build_out(const struct outbox_event *ev, const char *msg, size_t len,
                         const char *topic, size_t max, struct mqtt_event_out *out)
{
	struct mqtt_event_in in = {
		.ev = ev, .msg = msg, .len = len, .attach_topic = topic, .max_attachment = max,
	};
	assert_int_equal(mqtt_event_build(&in, out), 0);
	assert_non_null(out->json);
	assert_int_equal(strlen(out->json), out->json_len);
	json_error_t err;
	json_t *j = json_loadb(out->json, out->json_len, JSON_ALLOW_NUL, &err);
	if (!j)
		print_error("bad JSON: %s\n", err.text);
	assert_non_null(j);
	assert_true(json_is_object(j));
	return j;
}

static json_t *build_len(const char *msg, size_t len)
{
	struct mqtt_event_out out;
	json_t *j = build_out(&ev0, msg, len, NULL, 0, &out);
	mqtt_event_free(&out);
	return j;
}

static json_t *build(const char *msg)
{
	return build_len(msg, strlen(msg));
}

static void check_str(json_t *o, const char *key, const char *want, size_t want_len)
{
	json_t *v = json_object_get(o, key);
	if (!v || !json_is_string(v))
		print_error("%s: not a string\n", key);
	assert_non_null(v);
	assert_true(json_is_string(v));
	if (json_string_length(v) != want_len || memcmp(json_string_value(v), want, want_len) != 0) {
		print_error("%s: got \"", key);
		test_print_escaped(json_string_value(v), json_string_length(v));
		print_error("\" want \"");
		test_print_escaped(want, want_len);
		print_error("\"\n");
		fail();
	}
}

#define CHECK_STR(o, key, lit) check_str((o), (key), (lit), sizeof(lit) - 1)

static void check_null(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	assert_non_null(v);
	assert_true(json_is_null(v));
}

static void check_int(json_t *o, const char *key, json_int_t want)
{
	json_t *v = json_object_get(o, key);
	assert_non_null(v);
	assert_true(json_is_integer(v));
	assert_int_equal(json_integer_value(v), want);
}

static void check_bool(json_t *o, const char *key, bool want)
{
	json_t *v = json_object_get(o, key);
	assert_non_null(v);
	assert_true(json_is_boolean(v));
	assert_int_equal(json_is_true(v), want);
}

static json_t *attachments(json_t *j, size_t n)
{
	json_t *a = json_object_get(j, "attachments");
	assert_non_null(a);
	assert_true(json_is_array(a));
	assert_int_equal(json_array_size(a), n);
	return a;
}

/* ---- the messages (also the fuzzer's seeds) ---------------------------- */

static const char plain_msg[] =
	"Return-Path: <camera@lan.example>\r\n"
	"Received: from ipcam ([192.168.1.20]) by host id 0KX3F2A7B; Fri, 6 Dec 2024 10:00:00 +0000\r\n"
	"From: Front Door <camera@lan.example>\r\n"
	"To: cam@home.example\r\n"
	"Subject: Motion\r\n"
	"\tdetected\r\n"
	"Date: Fri, 6 Dec 2024 10:00:00 +0100\r\n"
	"Message-ID: <1@lan.example>\r\n"
	"\r\n"
	"Hello\r\nworld\r\n";

static const char camera_jpeg[] = "\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\xFF\xD9";
/* base64 of camera_jpeg (14 octets), split over two lines. */
static const char camera_msg[] =
	"From: ipcam@lan.example\n"
	"Subject: =?UTF-8?B?QmV3ZWd1bmcgZXJrYW5udA==?=\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/mixed; boundary=\"----=_snap\"\n"
	"\n"
	"This is a multi-part message in MIME format.\n"
	"------=_snap\n"
	"Content-Type: text/plain; charset=us-ascii\n"
	"\n"
	"Motion at 10:00\n"
	"------=_snap\n"
	"Content-Type: image/jpeg; name=\"snap.jpg\"\n"
	"Content-Transfer-Encoding: base64\n"
	"Content-Disposition: attachment; filename=\"snap.jpg\"\n"
	"\n"
	"/9j/4AAQSkZJRgAB\n"
	"/9k=\n"
	"------=_snap--\n"
	"epilogue\n";

static const char alternative_msg[] =
	"From: a@b.example\r\n"
	"Content-Type: multipart/alternative; boundary=alt\r\n"
	"\r\n"
	"--alt\r\n"
	"Content-Type: text/html; charset=utf-8\r\n"
	"\r\n"
	"<p>HTML</p>\r\n"
	"--alt\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Plain caf=C3=A9 =\r\n"
	"soft\r\n"
	"--alt--\r\n";

static const char nested_msg[] =
	"Content-Type: multipart/mixed; boundary=\"outer\"\n"
	"\n"
	"preamble --outer not a delimiter\n"
	"--outer  \t\n"
	"Content-Type: multipart/alternative; boundary=inner\n"
	"\n"
	"--inner\n"
	"Content-Type: text/plain\n"
	"\n"
	"inner text\n"
	"--inner\n"
	"Content-Type: text/html\n"
	"\n"
	"<b>x</b>\n"
	"--inner--\n"
	"--outer\n"
	"Content-Type: application/pdf;\n"
	" name*0*=UTF-8''R%C3%A9sum;\n"
	" name*1=\"\xC3\xA9 2024.pdf\"\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"JVBERi0=\n"
	"--outer\n"
	"Content-Type: message/rfc822\n"
	"\n"
	"Subject: inner message\n"
	"Content-Type: image/png; name=hidden.png\n"
	"\n"
	"not descended\n"
	"--outerX\n"
	"--outer\n"
	"Content-Type: image/gif\n"
	"Content-Disposition: inline\n"
	"\n"
	"GIF89a\n"
	"--outer--\n";

static const char unclosed_msg[] =
	"Content-Type: multipart/mixed; boundary=b1\n"
	"\n"
	"--b1\n"
	"\n"
	"first\n"
	"--b1\n"
	"Content-Type: application/octet-stream; name==?UTF-8?Q?d=C3=A4ta.bin?=\n"
	"\n"
	"0123456789";

static const char broken_b64_msg[] =
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: BASE64\n"
	"\n"
	"SGVs*bG8g!d29y\n"
	"bGQ=*** ==\n"
	"Q";

static const char latin1_msg[] =
	"Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= aus =?iso-8859-15?q?=A4?=\n"
	"Content-Type: text/plain; charset=\"ISO-8859-1\"\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"Gr\xFC\xDF" "e\n";

static const char cp1252_msg[] =
	"Content-Type: text/plain; charset=windows-1252\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"=80 =93quoted=94 =81\n";

static const char bad_utf8_msg[] =
	"From: \xFF\xFE <x@y.example>\n"
	"Subject: a\xC3(b \xE2\x82 caf\xC3\xA9 Gr\xFC\xDF" "e \xED\xA0\x80 \xF4\x90\x80\x80\n"
	"Date: \x80\n"
	"\n"
	"body \xC0\xAF\n";

static const char *const seeds[] = {
	plain_msg, camera_msg, alternative_msg, nested_msg, unclosed_msg,
	broken_b64_msg, latin1_msg, cp1252_msg, bad_utf8_msg,
};

/* ---- tests ------------------------------------------------------------ */

static void test_plain(void **state)
{
	json_t *j = build(plain_msg);
	CHECK_STR(j, "id", "0KX3F2A7B");
	CHECK_STR(j, "mailbox", "cam");
	CHECK_STR(j, "from", "camera@lan.example");
	json_t *to = json_object_get(j, "to");
	assert_true(json_is_array(to));
	assert_int_equal(json_array_size(to), 2);
	assert_string_equal(json_string_value(json_array_get(to, 0)), "cam@home.example");
	assert_string_equal(json_string_value(json_array_get(to, 1)), "Alarm+x@home.example");
	CHECK_STR(j, "client_ip", "192.168.1.20");
	CHECK_STR(j, "helo", "ipcam");
	CHECK_STR(j, "header_from", "Front Door <camera@lan.example>");
	CHECK_STR(j, "subject", "Motion\tdetected");   /* unfolded */
	CHECK_STR(j, "date", "Fri, 6 Dec 2024 10:00:00 +0100");
	CHECK_STR(j, "message_id", "<1@lan.example>");
	check_int(j, "size", 1234);
	CHECK_STR(j, "path", "cam/new/1733500000.M1P2Q3.host,S=1234,W=1260");
	CHECK_STR(j, "text", "Hello\nworld\n");   /* line endings as LF */
	check_bool(j, "text_truncated", false);
	attachments(j, 0);
	assert_int_equal(json_object_size(j), 15);
	json_decref(j);

	/* The exact payload: compact, in this order. */
	struct mqtt_event_out out;
	const char *m = "Subject: s\n\nx";
	struct mqtt_event_in in = { .ev = &ev0, .msg = m, .len = strlen(m) };
	assert_int_equal(mqtt_event_build(&in, &out), 0);
	assert_string_equal(out.json,
	                    "{\"id\":\"0KX3F2A7B\",\"mailbox\":\"cam\",\"from\":\"camera@lan.example\","
	                    "\"to\":[\"cam@home.example\",\"Alarm+x@home.example\"],"
	                    "\"client_ip\":\"192.168.1.20\",\"helo\":\"ipcam\",\"header_from\":null,"
	                    "\"subject\":\"s\",\"date\":null,\"message_id\":null,\"size\":1234,"
	                    "\"path\":\"cam/new/1733500000.M1P2Q3.host,S=1234,W=1260\","
	                    "\"text\":\"x\",\"text_truncated\":false,\"attachments\":[]}");
	mqtt_event_free(&out);
}

static void test_subject_encoded_words(void **state)
{
	static const struct {
		const char *subject;
		const char *want;
	} cases[] = {
		{ "=?UTF-8?Q?Caf=C3=A9_ouvert?=", "Caf\xC3\xA9 ouvert" },
		{ "=?utf-8?b?w6l0w6k=?=", "\xC3\xA9t\xC3\xA9" },
		/* §6.2: white space between encoded words goes, folds too. */
		{ "=?UTF-8?Q?a?= =?UTF-8?Q?b?=\r\n =?UTF-8?B?Yw==?=", "abc" },
		/* ... but not between a word and text. */
		{ "=?UTF-8?Q?a?= b =?UTF-8?Q?c?=", "a b c" },
		/* A character split across two words (a broken encoder). */
		{ "=?UTF-8?B?4oI=?= =?UTF-8?B?rA==?=", "\xE2\x82\xAC" },
		{ "=?ISO-8859-1?Q?Gr=FC=DFe?=", "Gr\xC3\xBC\xC3\x9F" "e" },
		{ "=?utf-8*en?Q?lang?=", "lang" },   /* RFC 2231 §5 */
		{ "=?UTF-8?X?nope?= =?UTF-8?Q?no end", "=?UTF-8?X?nope?= =?UTF-8?Q?no end" },
		{ "=?UTF-8?Q?a=ZZb?=", "a=ZZb" },
		{ "=?unknown-charset?Q?ok=C3=A9?=", "ok\xC3\xA9" },
		{ "=?UTF-8?Q?" "?=", "" },
		{ "plain text", "plain text" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char m[512];
		snprintf(m, sizeof(m), "Subject: %s\r\n\r\n", cases[i].subject);
		json_t *j = build(m);
		check_str(j, "subject", cases[i].want, strlen(cases[i].want));
		json_decref(j);
	}
	json_t *j = build(latin1_msg);
	CHECK_STR(j, "subject", "Gr\xC3\xBC\xC3\x9F" "e aus \xE2\x82\xAC");
	json_decref(j);
	j = build(camera_msg);
	CHECK_STR(j, "subject", "Bewegung erkannt");
	json_decref(j);
	/* header_from is decoded too. */
	j = build("From: =?UTF-8?Q?J=C3=B6rg?= <j@x.example>\n\n");
	CHECK_STR(j, "header_from", "J\xC3\xB6rg <j@x.example>");
	json_decref(j);
}

static void test_charsets(void **state)
{
	json_t *j = build(latin1_msg);
	CHECK_STR(j, "text", "Gr\xC3\xBC\xC3\x9F" "e\n");
	json_decref(j);
	j = build(cp1252_msg);
	/* 0x81 is unassigned in Windows-1252. */
	CHECK_STR(j, "text", "\xE2\x82\xAC \xE2\x80\x9Cquoted\xE2\x80\x9D \xEF\xBF\xBD\n");
	json_decref(j);
	j = build("Content-Type: text/plain; charset=iso-8859-15\n\n\xA4\xBD\xE9");
	CHECK_STR(j, "text", "\xE2\x82\xAC\xC5\x93\xC3\xA9");
	json_decref(j);
	/* No charset: read as UTF-8, invalid octets replaced. */
	j = build("\nok \xC3\xA9 \xE9");
	CHECK_STR(j, "text", "ok \xC3\xA9 \xEF\xBF\xBD");
	json_decref(j);
	/* A charset name of 500 octets: unknown, read as UTF-8. */
	char m[1024];
	char name[501];
	memset(name, 'k', 500);
	name[500] = '\0';
	snprintf(m, sizeof(m), "Content-Type: text/plain; charset=%s\n\nabc \xC3\xA9", name);
	j = build(m);
	CHECK_STR(j, "text", "abc \xC3\xA9");
	json_decref(j);
	/* A name with '/' never reaches iconv (iconv reads "//" suffixes). */
	j = build("Content-Type: text/plain; charset=\"utf-8//TRANSLIT\"\n\nab\xFF");
	CHECK_STR(j, "text", "ab\xEF\xBF\xBD");
	json_decref(j);
}

/* KOI8-R through iconv when this system's iconv has it. */
static void test_charset_iconv(void **state)
{
	struct buf b;
	buf_init(&b, 1024);
	assert_int_equal(msg_decode_charset(&b, "KOI8-R", 6, "\xF0\xD2\xC9", 3), 0);
	if (strcmp(b.data, "\xD0\x9F\xD1\x80\xD0\xB8") != 0) {
		/* No gconv module here: read as UTF-8, each octet replaced. */
		assert_string_equal(b.data, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
	}
	buf_reset(&b);
	/* UTF-16 through iconv, with a truncated last unit. */
	assert_int_equal(msg_decode_charset(&b, "UTF-16LE", 8, "h\0i\0!", 5), 0);
	if (strncmp(b.data, "hi", 2) == 0)
		assert_string_equal(b.data, "hi\xEF\xBF\xBD");
	buf_free(&b);
}

static void test_camera(void **state)
{
	/* Listed, not published. */
	json_t *j = build(camera_msg);
	CHECK_STR(j, "header_from", "ipcam@lan.example");
	CHECK_STR(j, "text", "Motion at 10:00");   /* the break is the delimiter's */
	json_t *a = attachments(j, 1);
	json_t *a0 = json_array_get(a, 0);
	CHECK_STR(a0, "name", "snap.jpg");
	CHECK_STR(a0, "type", "image/jpeg");
	check_int(a0, "size", 14);
	assert_null(json_object_get(a0, "topic"));
	assert_null(json_object_get(a0, "skipped"));
	json_decref(j);

	/* Published: the topic listed, the bytes handed out. */
	struct mqtt_event_out out;
	j = build_out(&ev0, camera_msg, strlen(camera_msg), "rawmail/received/cam/0KX3F2A7B", 14,
	              &out);
	a0 = json_array_get(attachments(j, 1), 0);
	CHECK_STR(a0, "topic", "rawmail/received/cam/0KX3F2A7B/1");
	check_int(a0, "size", 14);
	assert_int_equal(out.natt, 1);
	assert_string_equal(out.att[0].name, "snap.jpg");
	assert_string_equal(out.att[0].type, "image/jpeg");
	assert_string_equal(out.att[0].topic, "rawmail/received/cam/0KX3F2A7B/1");
	assert_int_equal(out.att[0].size, 14);
	assert_memory_equal(out.att[0].data, camera_jpeg, 14);
	json_decref(j);
	mqtt_event_free(&out);

	/* Over the limit: listed without a topic, no bytes. */
	j = build_out(&ev0, camera_msg, strlen(camera_msg), "rawmail/received/cam/0KX3F2A7B", 13,
	              &out);
	a0 = json_array_get(attachments(j, 1), 0);
	assert_null(json_object_get(a0, "topic"));
	CHECK_STR(a0, "skipped", "larger than the attachment limit");
	check_int(a0, "size", 14);
	assert_int_equal(out.natt, 1);
	assert_null(out.att[0].topic);
	assert_null(out.att[0].data);
	json_decref(j);
	mqtt_event_free(&out);

	/* An inline image without a name (many cameras): an attachment;
	 * the whole message an image: an attachment, no text. */
	j = build("Content-Type: multipart/related; boundary=r\n\n--r\n"
	          "Content-Type: text/plain\n\nsee image\n--r\n"
	          "Content-Type: IMAGE/JPEG\nContent-Transfer-Encoding: base64\n\n"
	          "/9j/\n--r--\n");
	CHECK_STR(j, "text", "see image");
	a0 = json_array_get(attachments(j, 1), 0);
	CHECK_STR(a0, "name", "");
	CHECK_STR(a0, "type", "image/jpeg");
	check_int(a0, "size", 3);
	json_decref(j);
	j = build("Content-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORw==\n");
	check_null(j, "text");
	a0 = json_array_get(attachments(j, 1), 0);
	CHECK_STR(a0, "type", "image/png");
	check_int(a0, "size", 4);
	json_decref(j);
}

static void test_alternative(void **state)
{
	json_t *j = build(alternative_msg);
	CHECK_STR(j, "text", "Plain caf\xC3\xA9 soft");
	attachments(j, 0);
	json_decref(j);
}

static void test_nested(void **state)
{
	json_t *j = build(nested_msg);
	CHECK_STR(j, "text", "inner text");
	json_t *a = attachments(j, 3);
	json_t *pdf = json_array_get(a, 0);
	CHECK_STR(pdf, "name", "R\xC3\xA9sum\xC3\xA9 2024.pdf");
	CHECK_STR(pdf, "type", "application/pdf");
	check_int(pdf, "size", 5);
	json_t *msg = json_array_get(a, 1);
	CHECK_STR(msg, "name", "");
	CHECK_STR(msg, "type", "message/rfc822");
	/* "--outerX" is not a delimiter: it stays in the message part. */
	check_int(msg, "size", strlen("Subject: inner message\n"
	                              "Content-Type: image/png; name=hidden.png\n\n"
	                              "not descended\n--outerX"));
	json_t *gif = json_array_get(a, 2);
	CHECK_STR(gif, "type", "image/gif");
	check_int(gif, "size", 6);
	json_decref(j);

	/* RFC 2231 extended filename wins over name=; a quoted-pair. */
	j = build("Content-Type: multipart/mixed; boundary=x\n\n--x\n"
	          "Content-Type: application/zip; name=\"fallback.zip\"\n"
	          "Content-Disposition: attachment;\n filename*=iso-8859-1'de'%FCber%20%22.zip\n\n"
	          "PK\n--x\nContent-Type: text/plain; name=\"a\\\"b.txt\"\n\nx\n--x\n"
	          "Content-Type: text/plain\nContent-Disposition: attachment\n\nnot the text\n--x--\n");
	check_null(j, "text");
	a = attachments(j, 3);
	CHECK_STR(json_array_get(a, 0), "name", "\xC3\xBC" "ber \".zip");
	CHECK_STR(json_array_get(a, 1), "name", "a\"b.txt");
	CHECK_STR(json_array_get(a, 2), "name", "");
	CHECK_STR(json_array_get(a, 2), "type", "text/plain");
	json_decref(j);

	/* A digest: parts are messages by default (RFC 2046 §5.1.5). */
	j = build("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nx\n--d--\n");
	CHECK_STR(json_array_get(attachments(j, 1), 0), "type", "message/rfc822");
	json_decref(j);
}

static void test_broken_mime(void **state)
{
	/* No close delimiter: the last part runs to the end. */
	json_t *j = build(unclosed_msg);
	CHECK_STR(j, "text", "first");
	json_t *a0 = json_array_get(attachments(j, 1), 0);
	CHECK_STR(a0, "name", "d\xC3\xA4ta.bin");
	check_int(a0, "size", 10);
	json_decref(j);

	/* Broken base64: junk skipped, decoding goes on after "=". */
	j = build(broken_b64_msg);
	CHECK_STR(j, "text", "Hello world");
	json_decref(j);

	/* A multipart without boundary, or without any delimiter line. */
	j = build("Content-Type: multipart/mixed\n\nno parts");
	check_null(j, "text");
	attachments(j, 0);
	json_decref(j);
	j = build("Content-Type: multipart/mixed; boundary=zz\n\nno parts\n");
	check_null(j, "text");
	attachments(j, 0);
	json_decref(j);

	/* No header section end, a header with no colon, a bad type. */
	j = build("Subject: only a header\r\nno colon here");
	CHECK_STR(j, "subject", "only a header");
	CHECK_STR(j, "text", "");
	json_decref(j);
	j = build("Content-Type: /broken\n\ntext anyway");
	CHECK_STR(j, "text", "text anyway");
	json_decref(j);

	/* Deeper than MIME_DEPTH_MAX: the innermost parts are not seen. */
	char deep[8192];
	size_t n = 0;
	for (int d = 0; d < MIME_DEPTH_MAX + 4; d++)
		n += (size_t)snprintf(deep + n, sizeof(deep) - n,
		                      "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", d, d);
	n += (size_t)snprintf(deep + n, sizeof(deep) - n, "\ndeep text\n");
	j = build_len(deep, n);
	check_null(j, "text");
	json_decref(j);
}

static void test_invalid_utf8(void **state)
{
	json_t *j = build(bad_utf8_msg);
	CHECK_STR(j, "header_from", "\xEF\xBF\xBD\xEF\xBF\xBD <x@y.example>");
	/* Each maximal invalid subpart is one U+FFFD; valid UTF-8 stays. */
	CHECK_STR(j, "subject",
	          "a\xEF\xBF\xBD(b \xEF\xBF\xBD caf\xC3\xA9 Gr\xEF\xBF\xBD\xEF\xBF\xBD"
	          "e \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
	          "\xEF\xBF\xBD");
	CHECK_STR(j, "date", "\xEF\xBF\xBD");
	CHECK_STR(j, "text", "body \xEF\xBF\xBD\xEF\xBF\xBD\n");
	json_decref(j);

	/* Envelope fields too (a HELO of raw octets). */
	struct outbox_event ev = ev0;
	const char *const to[] = { "a\xFF@x" };
	ev.helo = "bad\xC0helo";
	ev.to = to;
	ev.nto = 1;
	struct mqtt_event_out out;
	j = build_out(&ev, "", 0, NULL, 0, &out);
	CHECK_STR(j, "helo", "bad\xEF\xBF\xBDhelo");
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "to"), 0)),
	                    "a\xEF\xBF\xBD@x");
	json_decref(j);
	mqtt_event_free(&out);

	/* A NUL in a header value is a character like any other. */
	j = build_len("Subject: a\0b\n\n", 14);
	check_str(j, "subject", "a\0b", 3);
	json_decref(j);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* 10,000 parts: MIME_PARTS_MAX visited (the multipart itself is one). */
static void test_many_parts(void **state)
{
	struct buf m;
	buf_init(&m, 64u << 20);
	assert_int_equal(buf_append_str(&m, "Content-Type: multipart/mixed; boundary=p\n\n"), 0);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(buf_printf(&m, "--p\nContent-Type: image/jpeg; name=\"%d.jpg\"\n"
		                                "Content-Transfer-Encoding: base64\n\n/9j/\n", i), 0);
	assert_int_equal(buf_append_str(&m, "--p--\n"), 0);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct mqtt_event_out out;
	json_t *j = build_out(&ev0, m.data, m.len, "t", 1000, &out);
	double s = seconds_since(&t0);
	json_t *a = attachments(j, MIME_PARTS_MAX - 1);
	CHECK_STR(json_array_get(a, 998), "name", "998.jpg");
	CHECK_STR(json_array_get(a, 998), "topic", "t/999");
	print_message("10,000 parts: %.3f s\n", s);
	assert_true(s < 5.0);   /* linear: milliseconds; generous for valgrind */
	json_decref(j);
	mqtt_event_free(&out);

	/* 10,000 parts nested 16 deep, each level a multipart. */
	buf_reset(&m);
	for (int d = 0; d < MIME_DEPTH_MAX; d++)
		assert_int_equal(buf_printf(&m, "Content-Type: multipart/mixed; boundary=q%d\n\n--q%d\n",
		                            d, d), 0);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(buf_append_str(&m, "Content-Type: text/plain\n\nx\n--q15\n"), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	j = build_len(m.data, m.len);
	s = seconds_since(&t0);
	CHECK_STR(j, "text", "x");
	print_message("10,000 parts 16 deep: %.3f s\n", s);
	assert_true(s < 5.0);
	json_decref(j);
	buf_free(&m);
}

/* A header section of 1 MiB: one Subject of 1 MiB (cut to
 * MQTT_EVENT_FIELD_MAX), and 1 MiB of "=?" that are no encoded words. */
static void test_huge_header(void **state)
{
	size_t big = 1024u * 1024u;
	struct buf m;
	buf_init(&m, 8u << 20);
	assert_int_equal(buf_append_str(&m, "Subject: "), 0);
	for (size_t i = 0; i < big / 64; i++)
		assert_int_equal(buf_append_str(&m, "=?UTF-8?Q?=C3=A9?= abcdefghijklmnopqrstuvwxyz0123456789ab\r\n "), 0);
	assert_int_equal(buf_append_str(&m, "end\r\nFrom: "), 0);
	for (size_t i = 0; i < big / 2; i++)
		assert_int_equal(buf_append(&m, "=?", 2), 0);
	assert_int_equal(buf_append_str(&m, "\r\n\r\nbody\r\n"), 0);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	json_t *j = build_len(m.data, m.len);
	double s = seconds_since(&t0);
	print_message("2 MiB header: %.3f s\n", s);
	assert_true(s < 5.0);
	json_t *subject = json_object_get(j, "subject");
	assert_true(json_is_string(subject));
	assert_true(json_string_length(subject) <= MQTT_EVENT_FIELD_MAX);
	assert_true(json_string_length(subject) > MQTT_EVENT_FIELD_MAX - 64);
	assert_memory_equal(json_string_value(subject), "\xC3\xA9 abcdef", 9);
	json_t *from = json_object_get(j, "header_from");
	assert_int_equal(json_string_length(from), MQTT_EVENT_FIELD_MAX);
	assert_memory_equal(json_string_value(from), "=?=?=?", 6);
	CHECK_STR(j, "text", "body\n");
	json_decref(j);
	buf_free(&m);
}

static void test_no_message(void **state)
{
	struct mqtt_event_out out;
	struct mqtt_event_in in = { .ev = &ev0, .msg = NULL, .len = 0, .attach_topic = "t" };
	assert_int_equal(mqtt_event_build(&in, &out), 0);
	json_t *j = json_loads(out.json, 0, NULL);
	assert_non_null(j);
	CHECK_STR(j, "id", "0KX3F2A7B");
	check_int(j, "size", 1234);
	check_null(j, "header_from");
	check_null(j, "subject");
	check_null(j, "date");
	check_null(j, "message_id");
	check_null(j, "text");
	check_bool(j, "text_truncated", false);
	check_null(j, "attachments");
	assert_int_equal(out.natt, 0);
	json_decref(j);
	mqtt_event_free(&out);
	/* An empty message: fields absent, an empty text. */
	j = build("");
	check_null(j, "subject");
	CHECK_STR(j, "text", "");
	attachments(j, 0);
	json_decref(j);
}

/* The 64 KiB cap falls inside a two-octet character: the text stops
 * before it. */
static void test_truncation(void **state)
{
	struct buf m;
	buf_init(&m, 1u << 20);
	assert_int_equal(buf_append_str(&m, "Content-Type: text/plain; charset=utf-8\r\n\r\na"), 0);
	for (int i = 0; i < 40000; i++)
		assert_int_equal(buf_append(&m, "\xC3\xA9", 2), 0);
	json_t *j = build_len(m.data, m.len);
	json_t *t = json_object_get(j, "text");
	assert_int_equal(json_string_length(t), MQTT_EVENT_TEXT_MAX - 1);
	assert_memory_equal(json_string_value(t), "a\xC3\xA9", 3);
	assert_memory_equal(json_string_value(t) + MQTT_EVENT_TEXT_MAX - 3, "\xC3\xA9", 2);
	check_bool(j, "text_truncated", true);
	json_decref(j);

	/* Exactly 64 KiB (after CR LF became LF): not cut. */
	buf_reset(&m);
	assert_int_equal(buf_append_str(&m, "\r\n"), 0);
	for (int i = 0; i < MQTT_EVENT_TEXT_MAX / 4; i++)
		assert_int_equal(buf_append(&m, "abc\r\n", 5), 0);
	j = build_len(m.data, m.len);
	assert_int_equal(json_string_length(json_object_get(j, "text")), MQTT_EVENT_TEXT_MAX);
	check_bool(j, "text_truncated", false);
	json_decref(j);
	buf_free(&m);
}

static void test_topic_level(void **state)
{
	char out[64];
	assert_int_equal(mqtt_topic_level("a+b#c/d%e\0f", 11, out, sizeof(out)), 21);
	assert_string_equal(out, "a%2Bb%23c%2Fd%25e%00f");
	assert_int_equal(mqtt_topic_level("cam", 3, out, sizeof(out)), 3);
	assert_string_equal(out, "cam");
	/* UTF-8 names stay as they are (topic names are UTF-8). */
	assert_int_equal(mqtt_topic_level("\xC3\xA9t\xC3\xA9", 5, out, sizeof(out)), 5);
	/* Room for the NUL: 3 octets need 4. */
	assert_int_equal(mqtt_topic_level("cam", 3, out, 3), 0);
	assert_int_equal(mqtt_topic_level("cam", 3, out, 4), 3);
	assert_int_equal(mqtt_topic_level("+", 1, out, 3), 0);
	assert_int_equal(mqtt_topic_level("+", 1, out, 4), 3);
	assert_string_equal(out, "%2B");
	assert_int_equal(mqtt_topic_level("x", 1, out, 0), 0);
	/* The inverse, for the address level of PREFIX/send/ADDR. */
	assert_int_equal(mqtt_topic_level_decode("a%2Bb%23c%2Fd%25e", out, sizeof(out)), 9);
	assert_string_equal(out, "a+b#c/d%e");
	assert_int_equal(mqtt_topic_level_decode("bob%40dest.test", out, sizeof(out)), 13);
	assert_string_equal(out, "bob@dest.test");
	assert_int_equal(mqtt_topic_level_decode("%2b", out, sizeof(out)), 1);
	assert_string_equal(out, "+");
	assert_int_equal(mqtt_topic_level_decode("", out, sizeof(out)), 0);       /* empty */
	assert_int_equal(mqtt_topic_level_decode("a%00b", out, sizeof(out)), 0);  /* NUL */
	assert_int_equal(mqtt_topic_level_decode("a%2", out, sizeof(out)), 0);    /* cut */
	assert_int_equal(mqtt_topic_level_decode("a%", out, sizeof(out)), 0);
	assert_int_equal(mqtt_topic_level_decode("a%zz", out, sizeof(out)), 0);   /* not hex */
	assert_int_equal(mqtt_topic_level_decode("a%2zb", out, sizeof(out)), 0);
	assert_int_equal(mqtt_topic_level_decode("abc", out, 3), 0);              /* no room */
	assert_int_equal(mqtt_topic_level_decode("abc", out, 4), 3);
}

/* The decoders' edges, directly. */
static void test_decoders(void **state)
{
	struct buf b;
	buf_init(&b, 1024);
	const char *qp = "a=3D=3d \t\r\nb=\r\nc= \nd=4";
	assert_int_equal(msg_decode_qp(&b, qp, strlen(qp)), 0);
	assert_int_equal(b.len, strlen("a==\r\nbcd=4"));
	assert_string_equal(b.data, "a==\r\nbcd=4");
	buf_reset(&b);
	assert_int_equal(msg_decode_base64(&b, "YQ==YmM=ZA", 10), 0);
	assert_string_equal(b.data, "abcd");
	assert_int_equal(msg_decode_utf8_cut("ab\xE2\x82\xAC", 5, 4), 2);
	assert_int_equal(msg_decode_utf8_cut("ab\xE2\x82\xAC", 5, 5), 5);
	assert_int_equal(msg_decode_utf8_cut("ab\xE2\x82\xAC", 5, 2), 2);
	buf_free(&b);
}

int main(void)
{
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	if (seed_dir) {
		for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
			/* Selector 0: no attachments published; 1: published. */
			if (test_seed_write(seed_dir, "event", i, "plain", 0, seeds[i],
			                    strlen(seeds[i])) < 0 ||
			    test_seed_write(seed_dir, "event", i, "attach", 1, seeds[i],
			                    strlen(seeds[i])) < 0)
				return 1;
		}
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_subject_encoded_words),
		cmocka_unit_test(test_charsets),
		cmocka_unit_test(test_charset_iconv),
		cmocka_unit_test(test_camera),
		cmocka_unit_test(test_alternative),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_broken_mime),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_many_parts),
		cmocka_unit_test(test_huge_header),
		cmocka_unit_test(test_no_message),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_topic_level),
		cmocka_unit_test(test_decoders),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
