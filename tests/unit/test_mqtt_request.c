/* Unit tests for MQTT send requests (src/mqtt/request*.c, issue 12):
 * JSON requests composed into messages (one recipient, several, html,
 * attachments), raw RFC 5322 messages (topic address, To/Cc/Bcc), every
 * refusal with its sentence and the id it still carries, the allow
 * patterns, the strict base64 decoder the attachments use, and result
 * objects as exact JSON.  With RAWMAIL_SEED_DIR set, main() first writes
 * every payload as a seed for tests/fuzz/fuzz_mqtt_request.c (selector
 * octet: bit 0 = the topic gives bob@example.org). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msg/attach.h"
#include "msg/mime.h"
#include "mqtt/request.h"
#include "testutil.h"

static const char *const allow[] = { "bob@example.org", "@example.net", "@[192.0.2.1]",
                                     "@Bücher.example" };
static unsigned char random_octets[MQTT_REQUEST_RANDOM_LEN];

static struct mqtt_request_policy policy_base(void)
{
	for (size_t i = 0; i < sizeof(random_octets); i++)
		random_octets[i] = (unsigned char)i;
	return (struct mqtt_request_policy){
		.allow = allow,
		.nallow = sizeof(allow) / sizeof(allow[0]),
		.from = "rawmail@home.example",
		.max_size = 1 << 20,
		.hostname = "home.example",
		.now = 1780000000,   /* Thu, 28 May 2026 20:26:40 +0000 */
		.random = random_octets,
	};
}

#define HEAD_FROM "From: rawmail@home.example\r\n"
#define HEAD_STAMP "Date: Thu, 28 May 2026 20:26:40 +0000\r\n" \
	"Message-ID: <20260528202640.000102030405060708090a0b@home.example>\r\n"
#define MIXED "=_rawmail_0c0d0e0f1011121314151617"
#define ALT "=_rawmail_alt_0c0d0e0f1011121314151617"

/* Every line of m ends CR LF, none is over 998 octets, no bare CR. */
static void check_crlf(const char *m, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (m[i] == '\r')
			assert_true(i + 1 < len && m[i + 1] == '\n');
		if (m[i] != '\n')
			continue;
		assert_true(i > start && m[i - 1] == '\r');
		assert_true(i - 1 - start <= 998);
		start = i + 1;
	}
	assert_int_equal(start, len);
}

static void parse_ok(const struct mqtt_request_policy *p, const char *topic, const char *payload,
                     struct mqtt_request *r)
{
	char reason[512];
	bool ok = mqtt_request_parse(topic, payload, strlen(payload), p, r, reason, sizeof(reason));
	if (!ok)
		print_error("refused: %s\n", reason);
	assert_true(ok);
	assert_string_equal(r->from, "rawmail@home.example");
	assert_int_equal(strlen(r->message), r->message_len);
	check_crlf(r->message, r->message_len);
}

static void test_mqtt_json_one(void **state)
{
	(void)state;
	struct mqtt_request_policy p = policy_base();
	struct mqtt_request r;
	parse_ok(&p, NULL, " {\"to\": \"bob@example.org\", \"subject\": \"Motion\", "
	                   "\"text\": \"Garage door\\n\", \"id\": \"r1\"}", &r);
	assert_string_equal(r.id, "r1");
	assert_int_equal(r.nto, 1);
	assert_string_equal(r.to[0], "bob@example.org");
	assert_string_equal(r.message,
		HEAD_FROM "To: bob@example.org\r\nSubject: Motion\r\n" HEAD_STAMP
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
		"Content-Transfer-Encoding: 7bit\r\n\r\nGarage door\r\n");
	mqtt_request_free(&r);
	assert_null(r.message);
	mqtt_request_free(&r);   /* twice is harmless */

	/* Only "to" given: an empty subject and text; a number id kept as
	 * JSON writes it; unknown fields ignored; null is absent. */
	parse_ok(&p, NULL, "{\"to\":[\"bob@example.org\"],\"id\":42,\"topic\":\"x\","
	                   "\"_msgid\":\"a1\",\"html\":null,\"from\":null}", &r);
	assert_string_equal(r.id, "42");
	assert_non_null(strstr(r.message, "\r\nSubject:\r\n"));
	assert_non_null(strstr(r.message, "7bit\r\n\r\n"));
	mqtt_request_free(&r);
	parse_ok(&p, NULL, "{\"to\":\"bob@example.org\",\"id\":1.5}", &r);
	assert_string_equal(r.id, "1.5");
	mqtt_request_free(&r);
	/* "from" may name the configured sender (its domain in any case). */
	parse_ok(&p, NULL, "{\"to\":\"bob@example.org\",\"from\":\"rawmail@HOME.example\"}", &r);
	assert_null(r.id);
	assert_non_null(strstr(r.message, HEAD_FROM));
	mqtt_request_free(&r);
}

static void test_mqtt_json_several(void **state)
{
	(void)state;
	struct mqtt_request_policy p = policy_base();
	struct mqtt_request r;
	/* Normalised as send does (domain lower case, A-labels, literals as
	 * inet_ntop writes them), then duplicates dropped. */
	parse_ok(&p, NULL, "{\"to\": [\"bob@example.org\", \"carol@Example.NET\", "
	                   "\"carol@example.net\", \"<bob@EXAMPLE.org>\", \"x@[192.0.2.1]\", "
	                   "\"\\\"d e\\\"@example.net\", \"f@bücher.example\"], \"subject\": \"ä\"}",
	         &r);
	assert_int_equal(r.nto, 5);
	assert_string_equal(r.to[0], "bob@example.org");
	assert_string_equal(r.to[1], "carol@example.net");
	assert_string_equal(r.to[2], "x@[192.0.2.1]");
	assert_string_equal(r.to[3], "\"d e\"@example.net");
	assert_string_equal(r.to[4], "f@xn--bcher-kva.example");
	assert_non_null(strstr(r.message, "To: bob@example.org, carol@example.net,"));
	assert_non_null(strstr(r.message, "Subject: =?UTF-8?"));
	mqtt_request_free(&r);
}

static void test_mqtt_json_html(void **state)
{
	(void)state;
	struct mqtt_request_policy p = policy_base();
	struct mqtt_request r;
	parse_ok(&p, NULL, "{\"to\":\"bob@example.org\",\"subject\":\"s\",\"text\":\"plain\","
	                   "\"html\":\"<p>caf\\u00e9</p>\"}", &r);
	const char *body = strstr(r.message, "MIME-Version: 1.0\r\n");
	assert_non_null(body);
	assert_string_equal(body,
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/alternative; boundary=\"" ALT "\"\r\n\r\n"
		"--" ALT "\r\nContent-Type: text/plain; charset=UTF-8\r\n"
		"Content-Transfer-Encoding: 7bit\r\n\r\nplain\r\n"
		"\r\n--" ALT "\r\nContent-Type: text/html; charset=UTF-8\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>caf=C3=A9</p>\r\n"
		"\r\n--" ALT "--\r\n");
	mqtt_request_free(&r);
}

static void test_mqtt_json_attachments(void **state)
{
	(void)state;
	struct mqtt_request_policy p = policy_base();
	struct mqtt_request r;
	/* "/9j/4A==" is FF D8 FF E0, a JPEG's first octets; the second
	 * attachment's type comes from its name, its data wrapped as the
	 * base64 command wraps it. */
	parse_ok(&p, NULL, "{\"to\":\"bob@example.org\",\"subject\":\"Camera\",\"text\":\"See.\","
	                   "\"attachments\":[{\"name\":\"snap.bin\",\"type\":\"image/jpeg\","
	                   "\"data\":\"/9j/4A==\"},{\"name\":\"../etc/r.pdf\",\"data\":\"aGVs\\nbG8=\"}"
	                   "]}", &r);
	const char *body = strstr(r.message, "MIME-Version: 1.0\r\n");
	assert_non_null(body);
	assert_string_equal(body,
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=\"" MIXED "\"\r\n\r\n"
		"This is a MIME message.\r\n\r\n"
		"--" MIXED "\r\nContent-Type: text/plain; charset=UTF-8\r\n"
		"Content-Transfer-Encoding: 7bit\r\n\r\nSee.\r\n"
		"\r\n--" MIXED "\r\nContent-Type: image/jpeg\r\n"
		"Content-Disposition: attachment;\r\n filename=\"snap.bin\"\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n/9j/4A==\r\n"
		"\r\n--" MIXED "\r\nContent-Type: application/pdf\r\n"
		"Content-Disposition: attachment;\r\n filename=\"r.pdf\"\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"
		"\r\n--" MIXED "--\r\n");
	mqtt_request_free(&r);

	/* html and an attachment: the alternative is the mixed one's first
	 * part. */
	parse_ok(&p, NULL, "{\"to\":\"bob@example.org\",\"text\":\"t\",\"html\":\"<b>h</b>\","
	                   "\"attachments\":[{\"name\":\"a.txt\",\"data\":\"\"}]}", &r);
	body = strstr(r.message, "MIME-Version: 1.0\r\n");
	assert_string_equal(body,
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=\"" MIXED "\"\r\n\r\n"
		"This is a MIME message.\r\n\r\n"
		"--" MIXED "\r\n"
		"Content-Type: multipart/alternative; boundary=\"" ALT "\"\r\n\r\n"
		"--" ALT "\r\nContent-Type: text/plain; charset=UTF-8\r\n"
		"Content-Transfer-Encoding: 7bit\r\n\r\nt\r\n"
		"\r\n--" ALT "\r\nContent-Type: text/html; charset=UTF-8\r\n"
		"Content-Transfer-Encoding: 7bit\r\n\r\n<b>h</b>\r\n"
		"\r\n--" ALT "--\r\n"
		"\r\n--" MIXED "\r\nContent-Type: text/plain\r\n"
		"Content-Disposition: attachment;\r\n filename=\"a.txt\"\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n"
		"\r\n--" MIXED "--\r\n");
	mqtt_request_free(&r);
}

static void test_mqtt_raw_topic(void **state)
{
	(void)state;
	struct mqtt_request_policy p = policy_base();
	struct mqtt_request r;
	/* LF endings become CR LF; From, Date and Message-ID are added;
	 * Bcc is removed; the topic alone gives the recipient. */
	parse_ok(&p, "bob@example.org", "Subject: hi\nTo: someone@else.example\n"
	                                "Bcc: carol@example.net,\n dave@example.net\n\nbody\n",
	         &r);
	assert_int_equal(r.nto, 1);
	assert_string_equal(r.to[0], "bob@example.org");
	assert_string_equal(r.message, "Subject: hi\r\nTo: someone@else.example\r\n" HEAD_FROM
	                               HEAD_STAMP "\r\nbody\r\n");
	mqtt_request_free(&r);

	/* CR LF kept; a last line without a line break gets one; a From
	 * naming the configured sender with a display name is kept. */
	parse_ok(&p, "bob@example.org", "From: \"Garage\" <rawmail@home.example>\r\n"
	                                "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	                                "Message-ID: <a@b>\r\n\r\nno line break", &r);
	assert_string_equal(r.message, "From: \"Garage\" <rawmail@home.example>\r\n"
	                               "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	                               "Message-ID: <a@b>\r\n\r\nno line break\r\n");
	mqtt_request_free(&r);
}

static void test_mqtt_raw_to_cc(void **state)
{
	(void)state;
	struct mqtt_request_policy p = policy_base();
	struct mqtt_request r;
	parse_ok(&p, NULL, "To: Bob <bob@example.org>, carol@EXAMPLE.net\n"
	                   "Cc: (team) dave@example.net\nBcc: erin@example.net\n"
	                   "Subject: s\n\nhello\n", &r);
	assert_int_equal(r.nto, 4);
	assert_string_equal(r.to[0], "bob@example.org");
	assert_string_equal(r.to[1], "carol@example.net");
	assert_string_equal(r.to[2], "dave@example.net");
	assert_string_equal(r.to[3], "erin@example.net");
	assert_null(strstr(r.message, "Bcc"));
	assert_null(strstr(r.message, "erin"));
	assert_non_null(strstr(r.message, "Subject: s\r\n" HEAD_FROM HEAD_STAMP "\r\nhello\r\n"));
	mqtt_request_free(&r);
}

struct refusal {
	const char *name;
	const char *topic;
	const char *payload;
	const char *reason;     /* exact */
	const char *id;         /* what out->id must be */
};

static const struct refusal refusals[] = {
	{ "bad_json", NULL, "{\"to\": }",
	  "bad JSON at line 1 column 8: unexpected token near '}'", NULL },
	{ "bad_json_eof", NULL, "{\"id\":\"r\",\"to\":\"x\"",
	  "bad JSON at line 1 column 18: '}' expected near end of file", NULL },
	{ "duplicate_key", NULL, "{\"to\":\"bob@example.org\",\"to\":\"eve@example.com\"}",
	  "bad JSON at line 1 column 28: duplicate object key near '\"to\"'", NULL },
	{ "json_nul", NULL, "{\"subject\":\"\\u0000\"}",
	  "bad JSON at line 1 column 19: \\u0000 is not allowed without JSON_ALLOW_NUL near "
	  "'\"\\u0000\"'", NULL },
	{ "not_object", NULL, "{\"to\":\"bob@example.org\"} [",
	  "bad JSON at line 1 column 26: end of file expected near '['", NULL },
	{ "missing_to", NULL, "{\"id\":\"r2\",\"subject\":\"s\"}",
	  "no recipient: give \"to\", an address or an array of addresses", "r2" },
	{ "null_to", NULL, "{\"id\":\"r2\",\"to\":null}",
	  "no recipient: give \"to\", an address or an array of addresses", "r2" },
	{ "empty_to", NULL, "{\"id\":\"r3\",\"to\":[]}", "no recipient: \"to\" is an empty array",
	  "r3" },
	{ "disallowed", NULL, "{\"id\":\"r4\",\"to\":[\"bob@example.org\",\"eve@Example.COM\"]}",
	  "recipient eve@example.com is not allowed: add --mqtt-send-allow eve@example.com or "
	  "@example.com", "r4" },
	{ "local_part_case", NULL, "{\"id\":7,\"to\":\"Bob@example.org\"}",
	  "recipient Bob@example.org is not allowed: add --mqtt-send-allow Bob@example.org or "
	  "@example.org", "7" },
	{ "no_subdomain", NULL, "{\"to\":\"a@sub.example.net\"}",
	  "recipient a@sub.example.net is not allowed: add --mqtt-send-allow a@sub.example.net or "
	  "@sub.example.net", NULL },
	{ "bad_address", NULL, "{\"id\":\"r5\",\"to\":\"bob@@example.org\"}",
	  "recipient 'bob@@example.org' is not a valid address: syntax error in address", "r5" },
	{ "no_at", NULL, "{\"to\":\"bob\"}",
	  "recipient 'bob' is not an address (bob@example.org)", NULL },
	{ "comma_list", NULL, "{\"to\":\"bob@example.org, carol@example.net\"}",
	  "recipient 'bob@example.org, carol@example.net' is not one address: give several as a "
	  "JSON array, [\"a@example.org\", \"b@example.org\"]", NULL },
	{ "address_crlf", NULL, "{\"to\":\"bob@example.org\\r\\nBcc: eve@example.com\"}",
	  "recipient 'bob@example.org\\x0d\\x0aBcc: eve@example.com' holds a line break or control "
	  "character", NULL },
	{ "general_literal", NULL, "{\"to\":\"a@[x-tag:abc]\"}",
	  "recipient 'a@[x-tag:abc]' cannot be delivered to: only IPv4 and IPv6 literals can be "
	  "delivered to ([IPv6:2001:db8::1])", NULL },
	{ "subject_crlf", NULL,
	  "{\"id\":\"r6\",\"to\":\"bob@example.org\",\"subject\":\"hi\\r\\nBcc: eve@example.com\"}",
	  "\"subject\" holds a line break: a subject is one line (a line break there would add "
	  "header fields)", "r6" },
	{ "subject_lf", NULL, "{\"to\":\"bob@example.org\",\"subject\":\"hi\\nX: y\"}",
	  "\"subject\" holds a line break: a subject is one line (a line break there would add "
	  "header fields)", NULL },
	{ "subject_control", NULL, "{\"to\":\"bob@example.org\",\"subject\":\"a\\u001bb\"}",
	  "\"subject\" holds a control character (U+001B)", NULL },
	{ "subject_c1", NULL, "{\"to\":\"bob@example.org\",\"subject\":\"a\\u009bb\"}",
	  "\"subject\" holds a control character (U+009B)", NULL },
	{ "to_number", NULL, "{\"id\":\"r7\",\"to\":5}",
	  "\"to\" must be an address or an array of addresses, not a number", "r7" },
	{ "to_item", NULL, "{\"to\":[\"bob@example.org\",{}]}",
	  "\"to\" item 2 must be an address (a string), not an object", NULL },
	{ "subject_type", NULL, "{\"to\":\"bob@example.org\",\"subject\":1}",
	  "\"subject\" must be a string, not a number", NULL },
	{ "text_type", NULL, "{\"to\":\"bob@example.org\",\"text\":[]}",
	  "\"text\" must be a string, not an array", NULL },
	{ "html_type", NULL, "{\"to\":\"bob@example.org\",\"html\":true}",
	  "\"html\" must be a string, not true", NULL },
	{ "from_type", NULL, "{\"to\":\"bob@example.org\",\"from\":{}}",
	  "\"from\" must be a string, not an object", NULL },
	{ "id_type", NULL, "{\"id\":false,\"to\":\"bob@example.org\"}",
	  "\"id\" must be a string or a number, not false", NULL },
	{ "root_array", NULL, "{}",
	  "no recipient: give \"to\", an address or an array of addresses", NULL },
	{ "attachments_type", NULL, "{\"to\":\"bob@example.org\",\"attachments\":{}}",
	  "\"attachments\" must be an array of objects {\"name\", \"type\", \"data\"}, not an "
	  "object", NULL },
	{ "attachment_item", NULL, "{\"to\":\"bob@example.org\",\"attachments\":[\"x\"]}",
	  "attachment 1 must be an object {\"name\", \"type\", \"data\"}, not a string", NULL },
	{ "attachment_name", NULL, "{\"to\":\"bob@example.org\",\"attachments\":[{\"data\":\"\"}]}",
	  "attachment 1 has no \"name\" (a file name such as snapshot.jpg)", NULL },
	{ "attachment_name_type", NULL,
	  "{\"to\":\"bob@example.org\",\"attachments\":[{\"name\":3,\"data\":\"\"}]}",
	  "attachment 1's \"name\" must be a string, not a number", NULL },
	{ "attachment_no_data", NULL,
	  "{\"to\":\"bob@example.org\",\"attachments\":[{\"name\":\"a.jpg\"}]}",
	  "attachment 1 (a.jpg) has no \"data\" (its bytes in base64)", NULL },
	{ "attachment_media_type", NULL,
	  "{\"to\":\"bob@example.org\",\"attachments\":[{\"name\":\"a\",\"type\":"
	  "\"text/plain\\r\\nX: y\",\"data\":\"\"}]}",
	  "attachment 1 (a): \"type\" 'text/plain\\x0d\\x0aX: y' is not a media type such as "
	  "image/jpeg", NULL },
	{ "bad_base64", NULL,
	  "{\"id\":\"r8\",\"to\":\"bob@example.org\",\"attachments\":[{\"name\":\"a.jpg\","
	  "\"data\":\"/9j/4A==\"},{\"name\":\"b.jpg\",\"data\":\"/9j/ 4A==\"}]}",
	  "attachment 2 (b.jpg): \"data\" is not base64 (RFC 4648: A-Z a-z 0-9 + / padded with =) "
	  "at offset 4", "r8" },
	{ "base64_unpadded", NULL,
	  "{\"to\":\"bob@example.org\",\"attachments\":[{\"name\":\"a\",\"data\":\"/9j/4A\"}]}",
	  "attachment 1 (a): \"data\" is not base64 (RFC 4648: A-Z a-z 0-9 + / padded with =) "
	  "at offset 4", NULL },
	{ "forged_from", NULL,
	  "{\"id\":\"r9\",\"to\":\"bob@example.org\",\"from\":\"boss@home.example\"}",
	  "\"from\" boss@home.example is not the configured sender rawmail@home.example: requests "
	  "send only as rawmail@home.example (leave \"from\" out)", "r9" },
	{ "forged_from_domain", NULL, "{\"to\":\"bob@example.org\",\"from\":\"rawmail@evil.example\"}",
	  "\"from\" rawmail@evil.example is not the configured sender rawmail@home.example: "
	  "requests send only as rawmail@home.example (leave \"from\" out)", NULL },
	{ "raw_forged_from", "bob@example.org", "From: Boss <boss@home.example>\nSubject: x\n\nhi\n",
	  "the message's From boss@home.example is not the configured sender rawmail@home.example: "
	  "requests send only as rawmail@home.example (or leave From out)", NULL },
	{ "raw_two_from", "bob@example.org",
	  "From: rawmail@home.example\nFrom: rawmail@home.example\n\nhi\n",
	  "the message has 2 From fields; RFC 5322 §3.6 allows one", NULL },
	{ "raw_from_list", "bob@example.org",
	  "From: rawmail@home.example, boss@home.example\n\nhi\n",
	  "the message's From must be one address, the configured sender rawmail@home.example "
	  "(or leave From out)", NULL },
	{ "raw_no_header", "bob@example.org", "motion detected\n",
	  "the payload is neither a JSON object (starting with {) nor a mail message (starting "
	  "with header fields such as Subject:)", NULL },
	{ "raw_json_array", NULL, "[1]",
	  "the payload is neither a JSON object (starting with {) nor a mail message (starting "
	  "with header fields such as Subject:)", NULL },
	{ "raw_bare_cr", "bob@example.org", "Subject: a\rBcc: eve@example.com\n\nhi\n",
	  "line 1 of the message holds a CR not followed by LF: lines end with LF or CR LF", NULL },
	{ "raw_no_recipient", NULL, "Subject: hi\n\nbody\n",
	  "no recipient: publish to PREFIX/send/ADDRESS, or give To or Cc in the message", NULL },
	{ "raw_disallowed_cc", NULL, "To: bob@example.org\nCc: eve@example.com\n\nhi\n",
	  "recipient eve@example.com is not allowed: add --mqtt-send-allow eve@example.com or "
	  "@example.com", NULL },
	{ "raw_disallowed_topic", "eve@example.com", "Subject: s\n\nhi\n",
	  "recipient eve@example.com is not allowed: add --mqtt-send-allow eve@example.com or "
	  "@example.com", NULL },
	{ "raw_bad_to", NULL, "To: <bob@example.org\n\nhi\n",
	  "To/Cc/Bcc: unterminated <address> at octet 18", NULL },
};
#define NREFUSALS (sizeof(refusals) / sizeof(refusals[0]))

static void test_mqtt_refusal(void **state)
{
	const struct refusal *c = *state;
	struct mqtt_request_policy p = policy_base();
	struct mqtt_request r;
	char reason[512];
	bool ok = mqtt_request_parse(c->topic, c->payload, strlen(c->payload), &p, &r, reason,
	                             sizeof(reason));
	assert_false(ok);
	assert_string_equal(reason, c->reason);
	if (c->id)
		assert_string_equal(r.id, c->id);
	else
		assert_null(r.id);
	assert_null(r.message);
	assert_null(r.to);
	assert_null(r.from);
	mqtt_request_free(&r);
}

static void test_mqtt_refusal_sizes(void **state)
{
	(void)state;
	struct mqtt_request_policy p = policy_base();
	struct mqtt_request r;
	char reason[512];
	/* Larger than the limit: refused unparsed, but its id is still found
	 * by a walk over the top-level members, for the refusal. */
	const char *small = "{\"id\":\"r1\",\"to\":\"bob@example.org\",\"text\":\"0123456789\"}";
	p.max_size = strlen(small) - 1;
	assert_false(mqtt_request_parse(NULL, small, strlen(small), &p, &r, reason,
	                                sizeof(reason)));
	char want[200];
	snprintf(want, sizeof(want), "the request is %zu octets, larger than the size limit of "
	         "%zu octets", strlen(small), p.max_size);
	assert_string_equal(reason, want);
	assert_string_equal(r.id, "r1");
	mqtt_request_free(&r);
	static const struct { const char *payload, *id; } peeks[] = {
		/* after a long text, nested values and strings holding quotes,
		 * braces and a fake "id" */
		{ "{\"text\":\"a \\\"id\\\": {\\\"x\\\"}\",\"n\":{\"id\":\"inner\",\"a\":[1,{\"b\":\"}\"}]},"
		  "\"id\" : 42 , \"to\":\"x@y.z\"}", "42" },
		{ " \n{ \"id\":\"caf\\u00e9\"}", "caf\xc3\xa9" },
		{ "{\"to\":[\"a@b.c\"],\"id\":\"last\"}", "last" },
		{ "{\"id\":[1]}", NULL },              /* not a string or number */
		{ "{\"id\":\"unterminated}", NULL },
		{ "{\"to\":\"x\" \"id\":\"no comma\"}", NULL },
		{ "[{\"id\":\"not an object\"}]", NULL },
		{ "{\"ID\":\"other case\"}", NULL },
	};
	for (size_t i = 0; i < sizeof(peeks) / sizeof(peeks[0]); i++) {
		p.max_size = 1;
		assert_false(mqtt_request_parse(NULL, peeks[i].payload, strlen(peeks[i].payload), &p,
		                                &r, reason, sizeof(reason)));
		assert_non_null(strstr(reason, "larger than the size limit"));
		if (peeks[i].id)
			assert_string_equal(r.id, peeks[i].id);
		else
			assert_null(r.id);
		mqtt_request_free(&r);
	}
	/* Within the limit, but the message composed from it is not. */
	p.max_size = strlen(small) + 100;
	assert_false(mqtt_request_parse(NULL, small, strlen(small), &p, &r, reason,
	                                sizeof(reason)));
	snprintf(want, sizeof(want), "the message would be larger than the size limit of %zu "
	         "octets (attachments grow by a third in base64)", p.max_size);
	assert_string_equal(reason, want);
	assert_string_equal(r.id, "r1");
	mqtt_request_free(&r);
	/* A raw message that grows past the limit with its added fields. */
	const char *raw = "Subject: s\n\nhello\n";
	p.max_size = strlen(raw) + 10;
	assert_false(mqtt_request_parse("bob@example.org", raw, strlen(raw), &p, &r, reason,
	                                sizeof(reason)));
	snprintf(want, sizeof(want), "the message is larger than the size limit of %zu octets",
	         p.max_size);
	assert_string_equal(reason, want);
	mqtt_request_free(&r);
	/* A raw line over 998 octets. */
	char *longline = malloc(1200);
	memcpy(longline, "Subject: ", 9);
	memset(longline + 9, 'a', 1100);
	memcpy(longline + 1109, "\n\nhi\n", 6);
	p = policy_base();
	assert_false(mqtt_request_parse("bob@example.org", longline, strlen(longline), &p, &r,
	                                reason, sizeof(reason)));
	assert_string_equal(reason, "line 1 of the message is longer than 998 octets (RFC 5322 "
	                            "§2.1.1): wrap it, or send a JSON request, whose text is "
	                            "encoded");
	mqtt_request_free(&r);
	free(longline);
}

static void test_mqtt_refusal_limits(void **state)
{
	(void)state;
	struct mqtt_request_policy p = policy_base();
	struct mqtt_request r;
	char reason[512];
	/* Nothing is allowed when no pattern is set. */
	p.nallow = 0;
	const char *one = "{\"id\":\"a\",\"to\":\"bob@example.org\"}";
	assert_false(mqtt_request_parse(NULL, one, strlen(one), &p, &r, reason, sizeof(reason)));
	assert_string_equal(reason, "recipient bob@example.org is not allowed: sending from MQTT is "
	                            "allowed to no one until you add --mqtt-send-allow "
	                            "bob@example.org or @example.org");
	assert_string_equal(r.id, "a");
	mqtt_request_free(&r);
	/* More recipients than the limit: in the array, and distinct ones
	 * in a raw message's To. */
	p = policy_base();
	char *big = malloc(20000), *raw = malloc(20000);
	size_t n = (size_t)snprintf(big, 20000, "{\"to\":[");
	size_t m = (size_t)snprintf(raw, 20000, "To: ");
	for (int i = 0; i <= 100; i++) {
		n += (size_t)snprintf(big + n, 20000 - n, "%s\"u%d@example.net\"", i ? "," : "", i);
		m += (size_t)snprintf(raw + m, 20000 - m, "%su%d@example.net", i ? ",\n " : "", i);
	}
	snprintf(big + n, 20000 - n, "]}");
	snprintf(raw + m, 20000 - m, "\n\nhi\n");
	assert_false(mqtt_request_parse(NULL, big, strlen(big), &p, &r, reason, sizeof(reason)));
	assert_string_equal(reason, "\"to\" has 101 addresses, more than 100: send several requests");
	mqtt_request_free(&r);
	assert_false(mqtt_request_parse(NULL, raw, strlen(raw), &p, &r, reason, sizeof(reason)));
	assert_string_equal(reason, "more than 100 recipients in To/Cc/Bcc");
	mqtt_request_free(&r);
	free(big);
	free(raw);
	/* An id of 256 octets is echoed, a longer one refused unechoed. */
	char id[400];
	memset(id, 'i', sizeof(id));
	snprintf(id + 256, sizeof(id) - 256, "\"}");
	char req[600];
	snprintf(req, sizeof(req), "{\"to\":\"bob@example.org\",\"id\":\"%s", id);
	assert_true(mqtt_request_parse(NULL, req, strlen(req), &p, &r, reason, sizeof(reason)));
	assert_int_equal(strlen(r.id), 256);
	mqtt_request_free(&r);
	snprintf(req, sizeof(req), "{\"to\":\"bob@example.org\",\"id\":\"i%s", id);
	assert_false(mqtt_request_parse(NULL, req, strlen(req), &p, &r, reason, sizeof(reason)));
	assert_string_equal(reason, "\"id\" is longer than 256 octets");
	assert_null(r.id);
	mqtt_request_free(&r);
	/* A reason cut short by a small buffer is cut between characters. */
	const char *utf8 = "{\"to\":\"\u00fc@example.com\"}";
	assert_false(mqtt_request_parse(NULL, utf8, strlen(utf8), &p, &r, reason, 12));
	assert_string_equal(reason, "recipient ");
	mqtt_request_free(&r);
	assert_false(mqtt_request_parse(NULL, utf8, strlen(utf8), &p, &r, reason, 13));
	assert_string_equal(reason, "recipient \u00fc");
	mqtt_request_free(&r);
	/* No sender configured: nothing can be sent. */
	p.from = NULL;
	assert_false(mqtt_request_parse(NULL, one, strlen(one), &p, &r, reason, sizeof(reason)));
	assert_string_equal(reason, "no sender address is configured for MQTT requests");
	mqtt_request_free(&r);
}

static void test_mqtt_allowed(void **state)
{
	(void)state;
	struct mqtt_request_policy p = policy_base();
	assert_true(mqtt_request_allowed(&p, "bob@example.org"));
	assert_true(mqtt_request_allowed(&p, "bob@EXAMPLE.ORG"));
	assert_true(mqtt_request_allowed(&p, "\"bob\"@example.org"));   /* same local part */
	assert_false(mqtt_request_allowed(&p, "BOB@example.org"));
	assert_false(mqtt_request_allowed(&p, "bob@example.org.evil"));
	assert_false(mqtt_request_allowed(&p, "alice@example.org"));
	assert_true(mqtt_request_allowed(&p, "anyone@Example.Net"));
	assert_false(mqtt_request_allowed(&p, "anyone@sub.example.net"));
	assert_false(mqtt_request_allowed(&p, "anyone@notexample.net"));
	assert_true(mqtt_request_allowed(&p, "x@[192.0.2.1]"));
	assert_true(mqtt_request_allowed(&p, "x@[IPv6:::ffff:192.0.2.1]"));
	assert_false(mqtt_request_allowed(&p, "x@[192.0.2.2]"));
	assert_true(mqtt_request_allowed(&p, "x@xn--bcher-kva.example"));
	assert_true(mqtt_request_allowed(&p, "x@BÜCHER.example"));
	assert_false(mqtt_request_allowed(&p, "not an address"));
	assert_false(mqtt_request_allowed(&p, ""));
	p.nallow = 0;
	assert_false(mqtt_request_allowed(&p, "bob@example.org"));
	/* A pattern that does not parse allows nothing. */
	const char *bad[] = { "@", "bob", "@exa mple.org", "" };
	p.allow = bad;
	p.nallow = 4;
	assert_false(mqtt_request_allowed(&p, "bob@example.org"));

	char why[200];
	assert_true(mqtt_request_pattern_ok("bob@example.org", why, sizeof(why)));
	assert_true(mqtt_request_pattern_ok("@example.org", why, sizeof(why)));
	assert_true(mqtt_request_pattern_ok("@[IPv6:2001:db8::1]", why, sizeof(why)));
	assert_false(mqtt_request_pattern_ok("@", why, sizeof(why)));
	assert_false(mqtt_request_pattern_ok("example.org", why, sizeof(why)));
	assert_string_equal(why, "'example.org' is neither an address (bob@example.org) nor @ and "
	                         "a domain (@example.org): syntax error in address");
	assert_false(mqtt_request_pattern_ok("@[x:y]", why, sizeof(why)));
	assert_string_equal(why, "'@[x:y]': only a domain or an IPv4 or IPv6 literal can be allowed");
}

static void test_mqtt_base64(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		const char *out;       /* NULL: refused */
		size_t bad;
	} cases[] = {
		{ "", "", 0 },
		{ "aGVsbG8=", "hello", 0 },
		{ "aGVsbA==", "hell", 0 },
		{ "aGVs", "hel", 0 },
		{ "aGVs\r\nbG8=\n", "hello", 0 },
		{ "aGVsbG8", NULL, 4 },       /* padding missing */
		{ "aGVsbG9=", NULL, 4 },      /* unused bits not zero */
		{ "aGVsbB==", NULL, 4 },
		{ "aGVsbG8==", NULL, 8 },     /* one "=" too many */
		{ "aGVs=", NULL, 4 },
		{ "aG=s", NULL, 3 },          /* data after padding */
		{ "aGVsbG8=aGVs", NULL, 8 },
		{ "aGV sbG8=", NULL, 3 },
		{ "aGV-", NULL, 3 },          /* URL-safe alphabet */
		{ "=", NULL, 0 },
		{ "a===", NULL, 1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b;
		buf_init(&b, 100);
		size_t bad = 99;
		int rc = msg_mime_base64_decode(&b, cases[i].in, strlen(cases[i].in), &bad);
		if (cases[i].out) {
			assert_int_equal(rc, 0);
			assert_int_equal(b.len, strlen(cases[i].out));
			assert_memory_equal(b.data ? b.data : "", cases[i].out, b.len);
		} else {
			if (rc != -1 || bad != cases[i].bad)
				print_error("case %zu '%s': rc %d bad %zu\n", i, cases[i].in, rc, bad);
			assert_int_equal(rc, -1);
			assert_int_equal(bad, cases[i].bad);
		}
		buf_free(&b);
	}
	/* Every octet value round-trips through the encoder. */
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	for (size_t len = 0; len <= 256; len += 1 + len / 3) {
		struct buf enc, dec;
		buf_init(&enc, 1000);
		buf_init(&dec, 1000);
		size_t bad;
		assert_int_equal(msg_mime_base64_encode(&enc, all, len), 0);
		assert_int_equal(msg_mime_base64_decode(&dec, enc.data ? enc.data : "", enc.len, &bad),
		                 0);
		assert_int_equal(dec.len, len);
		assert_memory_equal(dec.data ? dec.data : "", all, len);
		buf_free(&enc);
		buf_free(&dec);
	}
	struct buf small;
	buf_init(&small, 4);
	size_t bad;
	assert_int_equal(msg_mime_base64_decode(&small, "aGVsbG8=", 8, &bad), -2);
	buf_free(&small);

	assert_true(msg_attach_type_ok("image/jpeg"));
	assert_true(msg_attach_type_ok("application/vnd.ms-excel"));
	assert_true(msg_attach_type_ok("image/svg+xml"));
	assert_false(msg_attach_type_ok("image"));
	assert_false(msg_attach_type_ok("image/"));
	assert_false(msg_attach_type_ok("/jpeg"));
	assert_false(msg_attach_type_ok("text/plain; charset=utf-8"));
	assert_false(msg_attach_type_ok("text/plain\r\nX: y"));
	assert_false(msg_attach_type_ok("a/b/c"));
	assert_false(msg_attach_type_ok(""));
}

static void test_mqtt_result_json(void **state)
{
	(void)state;
	char *j = mqtt_result_json("r1", NULL, "refused", "no recipient", NULL, 0);
	assert_string_equal(j, "{\"id\":\"r1\",\"status\":\"refused\",\"reason\":\"no recipient\"}");
	free(j);
	j = mqtt_result_json(NULL, "Q1", "queued", NULL, NULL, 0);
	assert_string_equal(j, "{\"queue_id\":\"Q1\",\"status\":\"queued\"}");
	free(j);
	struct mqtt_result_rcpt rc[2] = {
		{ "bob@example.org", "delivered", "250 2.0.0 Ok: queued as \"X\"" },
		{ "x@example.net", "failed", NULL },
	};
	j = mqtt_result_json("7", "Q1", "failed", "1 of 2 recipients failed", rc, 2);
	assert_string_equal(j, "{\"id\":\"7\",\"queue_id\":\"Q1\",\"status\":\"failed\","
	                       "\"reason\":\"1 of 2 recipients failed\",\"recipients\":["
	                       "{\"address\":\"bob@example.org\",\"status\":\"delivered\","
	                       "\"reply\":\"250 2.0.0 Ok: queued as \\\"X\\\"\"},"
	                       "{\"address\":\"x@example.net\",\"status\":\"failed\"}]}");
	free(j);
	/* A reply that is not UTF-8 (Latin-1) and holds control octets:
	 * still valid JSON. */
	struct mqtt_result_rcpt latin = { "bob@example.org", "failed", "550 gr\xfc\xdf\x01" };
	j = mqtt_result_json(NULL, NULL, "failed", "a\tb\n", &latin, 1);
	assert_string_equal(j, "{\"status\":\"failed\",\"reason\":\"a\\tb\\n\",\"recipients\":["
	                       "{\"address\":\"bob@example.org\",\"status\":\"failed\","
	                       "\"reply\":\"550 gr\\\\xfc\\\\xdf\\\\x01\"}]}");
	free(j);
}

/* Every payload of the tests above as a fuzzer seed. */
static int write_seeds(const char *dir)
{
	static const char *const good[] = {
		" {\"to\": \"bob@example.org\", \"subject\": \"Motion\", \"text\": \"Garage door\\n\"}",
		"{\"to\":\"bob@example.org\",\"text\":\"t\",\"html\":\"<b>h</b>\",\"attachments\":"
		"[{\"name\":\"a.txt\",\"data\":\"aGVsbG8=\"},{\"name\":\"s\",\"type\":\"image/jpeg\","
		"\"data\":\"/9j/4A==\"}]}",
		"To: Bob <bob@example.org>, carol@EXAMPLE.net\nCc: (team) dave@example.net\n"
		"Bcc: erin@example.net\nSubject: s\n\nhello\n",
	};
	size_t k = 0;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		for (unsigned char sel = 0; sel < 2; sel++)
			if (test_seed_write(dir, "good", k++, "case", sel, good[i], strlen(good[i])) < 0)
				return -1;
	for (size_t i = 0; i < NREFUSALS; i++)
		if (test_seed_write(dir, "refused", i, refusals[i].name, refusals[i].topic ? 1 : 0,
		                    refusals[i].payload, strlen(refusals[i].payload)) < 0)
			return -1;
	return 0;
}

int main(void)
{
	const char *seed_dir = getenv("RAWMAIL_SEED_DIR");
	if (seed_dir && *seed_dir && write_seeds(seed_dir) < 0)
		return 1;
	struct CMUnitTest tests[NREFUSALS + 16];
	size_t n = 0;
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_mqtt_json_one);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_mqtt_json_several);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_mqtt_json_html);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_mqtt_json_attachments);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_mqtt_raw_topic);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_mqtt_raw_to_cc);
	for (size_t i = 0; i < NREFUSALS; i++)
		tests[n++] = (struct CMUnitTest){ .name = refusals[i].name,
		                                  .test_func = test_mqtt_refusal,
		                                  .initial_state = (void *)&refusals[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_mqtt_refusal_sizes);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_mqtt_refusal_limits);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_mqtt_allowed);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_mqtt_base64);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_mqtt_result_json);
	return _cmocka_run_group_tests("mqtt_request", tests, n, NULL, NULL);
}
