/* A raw send request (issue 12): a complete RFC 5322 message, its
 * recipients from the topic (PREFIX/send/ADDR) or else its To, Cc and
 * Bcc.  Completed as `rawmail send -t` completes one (msg_raw_prepare). */
#include "mqtt/request_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msg/raw.h"

/* Whether the payload starts with a header field: RFC 5322 §3.6.8 ftext
 * (printable ASCII but ":"), optional white space (§4.5.8), ":".  A
 * payload that does not is neither JSON nor a message ("motion!", or a
 * JSON array). */
static bool raw_starts_with_field(const char *p, size_t len)
{
	size_t i = 0;
	while (i < len && p[i] >= 33 && p[i] <= 126 && p[i] != ':')
		i++;
	if (i == 0)
		return false;
	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < len && p[i] == ':';
}

/* RFC 5322 §2.3: CR and LF only together.  LF alone (what MQTT clients
 * and text editors write) becomes CR LF; a CR not followed by LF is
 * refused (Postfix's smtpd refuses bare CR too: a reader may take it as a
 * line break or not, so it can hide or forge header fields).  The message
 * ends with CR LF. */
static bool raw_normalize(struct request_ctx *ctx, const char *in, size_t len, struct buf *out)
{
	size_t line = 1;
	for (size_t i = 0; i < len; i++) {
		int rc;
		if (in[i] == '\r') {
			if (i + 1 >= len || in[i + 1] != '\n')
				return request_refuse(ctx, "line %zu of the message holds a CR not followed "
				                      "by LF: lines end with LF or CR LF", line);
			rc = buf_append(out, "\r\n", 2);
			i++;
			line++;
		} else if (in[i] == '\n') {
			rc = buf_append(out, "\r\n", 2);
			line++;
		} else {
			size_t n = 1;
			while (i + n < len && in[i + n] != '\r' && in[i + n] != '\n')
				n++;
			rc = buf_append(out, in + i, n);
			i += n - 1;
		}
		if (rc < 0)
			return request_refuse(ctx, "out of memory");
	}
	if (out->len > 0 && out->data[out->len - 1] != '\n' && buf_append(out, "\r\n", 2) < 0)
		return request_refuse(ctx, "out of memory");
	return true;
}

/* Whether the line at p[0..len) starts the field name (case-insensitive). */
static bool raw_line_is_field(const char *p, size_t len, const char *name)
{
	size_t n = strlen(name);
	if (len <= n || strncasecmp(p, name, n) != 0)
		return false;
	while (n < len && (p[n] == ' ' || p[n] == '\t'))
		n++;
	return n < len && p[n] == ':';
}

/* Checks the From field of the prepared message m[0..len) (CR LF, its
 * header section ending at the first empty line or the end): exactly one
 * From field (RFC 5322 §3.6: at most one) naming one address, the
 * configured sender; a display name is the message's own. */
static bool raw_check_from(struct request_ctx *ctx, const char *m, size_t len)
{
	struct buf value;
	buf_init(&value, len);
	size_t nfrom = 0;
	bool in_from = false;
	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(m + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - m) + 1 : len;
		const char *line = m + pos;
		size_t n = end - pos;
		if (n <= 2 && line[0] == '\r')
			break;                      /* the empty line: headers end */
		bool continuation = line[0] == ' ' || line[0] == '\t';
		if (!continuation)
			in_from = raw_line_is_field(line, n, "from");
		if (!continuation && in_from) {
			nfrom++;
			const char *colon = memchr(line, ':', n);
			n -= (size_t)(colon + 1 - line);
			line = colon + 1;
		}
		/* §2.2.3: unfolding removes the CR LF. */
		if (in_from && nfrom == 1 && buf_append(&value, line, n >= 2 ? n - 2 : n) < 0) {
			buf_free(&value);
			return request_refuse(ctx, "out of memory");
		}
		pos = end;
	}
	struct msg_recipients addrs;
	msg_recipients_init(&addrs, 1);
	struct msg_error err = { 0 };
	bool ok = nfrom == 1 &&
	          msg_address_list_parse(value.data ? value.data : "", value.len, &addrs, &err) == 0;
	buf_free(&value);
	if (nfrom > 1)
		ok = request_refuse(ctx, "the message has %zu From fields; RFC 5322 §3.6 allows one",
		                    nfrom);
	else if (!ok || addrs.count != 1)
		ok = request_refuse(ctx, "the message's From must be one address, the configured "
		                    "sender %s (or leave From out)", ctx->policy->from);
	else if (!request_from_is_sender(ctx->policy, addrs.addrs[0])) {
		char shown[160];
		ok = request_refuse(ctx, "the message's From %s is not the configured sender %s: "
		                    "requests send only as %s (or leave From out)",
		                    request_shown(addrs.addrs[0], strlen(addrs.addrs[0]), shown,
		                                  sizeof(shown)),
		                    ctx->policy->from, ctx->policy->from);
	}
	msg_recipients_free(&addrs);
	return ok;
}

static bool raw_prepare(struct request_ctx *ctx, bool extract, const struct buf *in,
                        struct buf *out, struct msg_recipients *found)
{
	struct msg_raw opt = {
		.from = ctx->policy->from,
		.stamp = ctx->stamp,
		.extract_recipients = extract,
	};
	struct msg_error err = { 0 };
	if (msg_raw_prepare(&opt, in->data, in->len, out, found, &err) == 0)
		return true;
	switch (err.status) {
	case MSG_ERR_TOO_BIG:
		return request_refuse(ctx, "the message is larger than the size limit of %zu octets",
		                      ctx->policy->max_size);
	case MSG_ERR_LINE_TOO_LONG:
		return request_refuse(ctx, "line %zu of the message is longer than 998 octets "
		                      "(RFC 5322 §2.1.1): wrap it, or send a JSON request, whose "
		                      "text is encoded", err.line);
	case MSG_ERR_NUL:
		return request_refuse(ctx, "line %zu of the message holds a NUL octet, which RFC 5322 "
		                      "does not allow: send the data as an attachment", err.line);
	case MSG_ERR_NOMEM:
		return request_refuse(ctx, "out of memory");
	default:
		return request_refuse(ctx, "%s", err.text);
	}
}

bool request_raw_parse(struct request_ctx *ctx, const char *topic_addr, const char *payload,
                       size_t len)
{
	if (!raw_starts_with_field(payload, len))
		return request_refuse(ctx, "the payload is neither a JSON object (starting with {) nor "
		                      "a mail message (starting with header fields such as "
		                      "Subject:)");
	struct buf in, out;
	struct msg_recipients found;
	buf_init(&in, 2 * len + 2);
	buf_init(&out, ctx->policy->max_size);
	msg_recipients_init(&found, MQTT_REQUEST_RECIPIENTS_MAX);
	bool ok = raw_normalize(ctx, payload, len, &in) &&
	          raw_prepare(ctx, topic_addr == NULL, &in, &out, &found) &&
	          raw_check_from(ctx, out.data, out.len);
	if (ok && topic_addr)
		ok = request_rcpt_add(ctx, "recipient", topic_addr, strlen(topic_addr));
	for (size_t i = 0; ok && i < found.count; i++)
		ok = request_rcpt_add(ctx, "recipient", found.addrs[i], strlen(found.addrs[i]));
	if (ok && ctx->rcpts.count == 0)
		ok = request_refuse(ctx, "no recipient: publish to PREFIX/send/ADDRESS, or give To or "
		                    "Cc in the message");
	if (ok) {
		ctx->out->message = buf_release(&out, &ctx->out->message_len);
		ok = ctx->out->message ? true : request_refuse(ctx, "out of memory");
	}
	buf_free(&in);
	buf_free(&out);
	msg_recipients_free(&found);
	return ok;
}
