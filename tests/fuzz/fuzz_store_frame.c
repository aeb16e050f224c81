/* libFuzzer harness for the store's wire format, as the store reads what
 * the smtp process sends (and the client what the store sends): a stream
 * of frames, each header checked, each body decoded, each BEGIN checked
 * and its recipients walked.  Nothing may read out of bounds, and a frame
 * that decodes must re-encode to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/frame.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_begin(const uint8_t *body, size_t len)
{
	struct frame_begin b;
	const char *why;
	if (frame_decode_begin(body, len, &b, &why) != FRAME_OK)
		return;
	if (frame_begin_check(&b) != NULL)
		return;
	/* A valid BEGIN re-encodes to the same body. */
	struct store_recipient *r = calloc(b.nrcpts, sizeof(*r));
	char **strs = calloc((size_t)b.nrcpts * 2 + 6, sizeof(*strs));
	size_t pos = 0, k = 0;
	for (uint32_t i = 0; i < b.nrcpts; i++) {
		struct frame_str a, m;
		frame_begin_rcpt(&b, &pos, &a, &m);
		strs[k] = strndup(a.p, a.len);
		r[i].address = strs[k++];
		/* An empty mailbox is a relayed recipient: NULL (store.h). */
		strs[k] = m.len ? strndup(m.p, m.len) : NULL;
		r[i].mailbox = strs[k++];
	}
	char *qid = strs[k++] = strndup(b.qid.p, b.qid.len);
	char *sender = strs[k++] = strndup(b.sender.p, b.sender.len);
	char *received = strs[k++] = strndup(b.received.p, b.received.len);
	char *signer = strs[k++] = strndup(b.signer.p, b.signer.len);
	char *client_ip = strs[k++] = strndup(b.client_ip.p, b.client_ip.len);
	char *helo = strs[k++] = strndup(b.helo.p, b.helo.len);
	struct buf out;
	buf_init(&out, FRAME_HEADER_LEN + FRAME_BEGIN_MAX);
	if (frame_encode_begin(&out, b.txn, qid, sender, r, b.nrcpts, received, signer, client_ip,
	                       helo) == 0 &&
	    (out.len != FRAME_HEADER_LEN + len || memcmp(out.data + FRAME_HEADER_LEN, body, len)))
		abort();
	buf_free(&out);
	for (size_t i = 0; i < k; i++)
		free(strs[i]);
	free(strs);
	free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The first byte picks the reader: the store (client frames) or the
	 * smtp process (store frames). */
	if (size < 1)
		return 0;
	unsigned allowed = data[0] & 1 ? FRAME_FROM_STORE : FRAME_FROM_CLIENT;
	size_t pos = 1;
	while (pos < size) {
		enum frame_type type;
		size_t len;
		const char *why;
		if (frame_header_decode(data + pos, size - pos, allowed, &type, &len, &why) != FRAME_OK)
			break;
		if (size - pos - FRAME_HEADER_LEN < len)
			break;
		/* An exact-size copy so ASan sees any over-read. */
		uint8_t *body = malloc(len ? len : 1);
		memcpy(body, data + pos + FRAME_HEADER_LEN, len);
		uint64_t txn, space;
		const char *content;
		size_t content_len;
		enum store_result r;
		switch (type) {
		case FRAME_BEGIN:
			check_begin(body, len);
			break;
		case FRAME_DATA:
			if (frame_decode_data(body, len, &txn, &content, &content_len, &why) == FRAME_OK &&
			    (content < (const char *)body || content + content_len > (const char *)body + len))
				abort();
			break;
		case FRAME_COMMIT:
		case FRAME_ABORT:
			frame_decode_txn(body, len, &txn, &why);
			break;
		case FRAME_RESULT:
			frame_decode_result(body, len, &txn, &r, &why);
			break;
		case FRAME_SPACE:
			frame_decode_space(body, len, &space, &why);
			break;
		case FRAME_ASK: {
			/* Decoded, then encoded again: the same octets. */
			const uint8_t *key;
			struct frame_str mb;
			if (frame_decode_ask(body, len, &txn, &key, &mb, &why) == FRAME_OK) {
				char name[FRAME_MAILBOX_MAX + 1];
				memcpy(name, mb.p, mb.len);
				name[mb.len] = '\0';
				struct buf out;
				buf_init(&out, FRAME_HEADER_LEN + FRAME_ASK_MAX);
				if (frame_encode_ask(&out, txn, key, name) != 0 ||
				    out.len != FRAME_HEADER_LEN + len ||
				    memcmp(out.data + FRAME_HEADER_LEN, body, len))
					abort();
				buf_free(&out);
			}
			break;
		}
		case FRAME_ANSWER: {
			enum store_mailbox_answer a;
			frame_decode_answer(body, len, &txn, &a, &why);
			break;
		}
		}
		free(body);
		pos += FRAME_HEADER_LEN + len;
	}
	return 0;
}
