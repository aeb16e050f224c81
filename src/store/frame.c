#include "store/frame.h"

#include <string.h>

#include "util/be.h"
#include "util/buf.h"
#include "util/ip_text.h"

static void put_header(uint8_t *p, enum frame_type type, size_t body_len)
{
	be_put32(p, (uint32_t)body_len);
	p[4] = (uint8_t)type;
}

/* ---- encoding ---- */

static bool str_encodable(const char *s, size_t max)
{
	return s && strlen(s) <= max;
}

static int append_str(struct buf *out, const char *s)
{
	uint8_t len[2];
	size_t n = strlen(s);
	be_put16(len, (uint16_t)n);
	if (buf_append(out, len, sizeof(len)) < 0)
		return -1;
	return buf_append(out, s, n);
}

int frame_encode_begin(struct buf *out, uint64_t txn, const char *qid, const char *sender,
                       const struct store_recipient *rcpts, size_t nrcpts, const char *received,
                       const char *signer, const char *client_ip, const char *helo)
{
	if (!signer)
		signer = "";
	if (!client_ip)
		client_ip = "";
	if (!helo)
		helo = "";
	/* Refuse here what the store would refuse as malformed: a frame it
	 * cannot parse would cost every other message on the connection. */
	if (nrcpts == 0 || nrcpts > FRAME_RCPTS_MAX)
		return -1;
	if (!str_encodable(qid, FRAME_QID_MAX) || !*qid || !str_encodable(sender, FRAME_ADDRESS_MAX))
		return -1;
	if (!str_encodable(received, FRAME_RECEIVED_MAX) || !str_encodable(signer, FRAME_SIGNER_MAX) ||
	    !str_encodable(client_ip, FRAME_CLIENT_IP_MAX))
		return -1;
	for (size_t i = 0; i < nrcpts; i++) {
		if (!str_encodable(rcpts[i].address, FRAME_ADDRESS_MAX) || !*rcpts[i].address)
			return -1;
		/* NULL (relay) goes out as the empty string; an empty name is
		 * a caller's mistake, not a relay. */
		if (rcpts[i].mailbox &&
		    (!str_encodable(rcpts[i].mailbox, FRAME_MAILBOX_MAX) || !*rcpts[i].mailbox))
			return -1;
	}

	size_t start = out->len;
	uint8_t hdr[FRAME_HEADER_LEN + 8];
	put_header(hdr, FRAME_BEGIN, 0); /* length patched below */
	be_put64(hdr + FRAME_HEADER_LEN, txn);
	if (buf_append(out, hdr, sizeof(hdr)) < 0)
		goto fail;
	if (append_str(out, qid) < 0 || append_str(out, sender) < 0)
		goto fail;
	uint8_t n[4];
	be_put32(n, (uint32_t)nrcpts);
	if (buf_append(out, n, sizeof(n)) < 0)
		goto fail;
	for (size_t i = 0; i < nrcpts; i++)
		if (append_str(out, rcpts[i].address) < 0 ||
		    append_str(out, rcpts[i].mailbox ? rcpts[i].mailbox : "") < 0)
			goto fail;
	size_t rlen = strlen(received);
	be_put32(n, (uint32_t)rlen);
	if (buf_append(out, n, sizeof(n)) < 0 || buf_append(out, received, rlen) < 0 ||
	    append_str(out, signer) < 0 || append_str(out, client_ip) < 0)
		goto fail;
	size_t hlen = strnlen(helo, FRAME_HELO_MAX);
	uint8_t h16[2];
	be_put16(h16, (uint16_t)hlen);
	if (buf_append(out, h16, sizeof(h16)) < 0 || buf_append(out, helo, hlen) < 0)
		goto fail;
	be_put32((uint8_t *)out->data + start, (uint32_t)(out->len - start - FRAME_HEADER_LEN));
	return 0;
fail:
	out->len = start;
	if (out->data)
		out->data[start] = '\0';
	return -1;
}

void frame_encode_data_header(uint8_t out[FRAME_DATA_HEADER_LEN], uint64_t txn, size_t len)
{
	put_header(out, FRAME_DATA, 8 + len);
	be_put64(out + FRAME_HEADER_LEN, txn);
}

void frame_encode_txn(uint8_t out[FRAME_TXN_LEN], enum frame_type type, uint64_t txn)
{
	put_header(out, type, 8);
	be_put64(out + FRAME_HEADER_LEN, txn);
}

void frame_encode_result(uint8_t out[FRAME_RESULT_LEN], uint64_t txn, enum store_result r)
{
	put_header(out, FRAME_RESULT, 9);
	be_put64(out + FRAME_HEADER_LEN, txn);
	out[FRAME_HEADER_LEN + 8] = (uint8_t)r;
}

void frame_encode_space(uint8_t out[FRAME_SPACE_LEN], uint64_t free_bytes)
{
	put_header(out, FRAME_SPACE, 8);
	be_put64(out + FRAME_HEADER_LEN, free_bytes);
}

int frame_encode_ask(struct buf *out, uint64_t query, const uint8_t key[FRAME_KEY_LEN],
                     const char *mailbox)
{
	if (!mailbox || !*mailbox || !str_encodable(mailbox, FRAME_MAILBOX_MAX))
		return -1;
	size_t start = out->len;
	uint8_t hdr[FRAME_HEADER_LEN + 8];
	put_header(hdr, FRAME_ASK, 8 + FRAME_KEY_LEN + 2 + strlen(mailbox));
	be_put64(hdr + FRAME_HEADER_LEN, query);
	if (buf_append(out, hdr, sizeof(hdr)) < 0 || buf_append(out, key, FRAME_KEY_LEN) < 0 ||
	    append_str(out, mailbox) < 0) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
		return -1;
	}
	return 0;
}

void frame_encode_answer(uint8_t out[FRAME_ANSWER_LEN], uint64_t query,
                         enum store_mailbox_answer a)
{
	put_header(out, FRAME_ANSWER, 9);
	be_put64(out + FRAME_HEADER_LEN, query);
	out[FRAME_HEADER_LEN + 8] = (uint8_t)a;
}

/* ---- decoding ---- */

static enum frame_status fail(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return FRAME_ERROR;
}

enum frame_status frame_header_decode(const uint8_t *p, size_t avail, unsigned allowed,
                                      enum frame_type *type, size_t *body_len, const char **why)
{
	if (avail < FRAME_HEADER_LEN)
		return FRAME_NEED_MORE;
	uint32_t len = be_get32(p);
	unsigned t = p[4];
	if (t < FRAME_BEGIN || t > FRAME_TYPE_LAST || !(allowed & (1u << t)))
		return fail(why, "unexpected frame type");
	/* Bounds come from the header, so a peer cannot make us buffer more
	 * than one maximal frame of the type it announced. */
	bool ok;
	switch ((enum frame_type)t) {
	case FRAME_BEGIN:
		ok = len >= 8 + 2 + 1 + 2 + 4 + 2 + 1 + 2 + 1 + 4 + 2 + 2 + 2 && len <= FRAME_BEGIN_MAX;
		break;
	case FRAME_DATA:
		ok = len > 8 && len <= 8 + FRAME_DATA_MAX;
		break;
	case FRAME_COMMIT:
	case FRAME_ABORT:
	case FRAME_SPACE:
		ok = len == 8;
		break;
	case FRAME_RESULT:
	case FRAME_ANSWER:
		ok = len == 9;
		break;
	case FRAME_ASK:
		ok = len >= 8 + FRAME_KEY_LEN + 2 + 1 && len <= FRAME_ASK_MAX;
		break;
	default:
		ok = false;
		break;
	}
	if (!ok)
		return fail(why, "frame length out of bounds");
	*type = (enum frame_type)t;
	*body_len = len;
	return FRAME_OK;
}

/* A cursor over a body: every read is bounds-checked. */
struct reader {
	const uint8_t *p;
	size_t left;
};

static bool read_u32(struct reader *r, uint32_t *v)
{
	if (r->left < 4)
		return false;
	*v = be_get32(r->p);
	r->p += 4;
	r->left -= 4;
	return true;
}

static bool read_bytes(struct reader *r, size_t n, struct frame_str *s)
{
	if (r->left < n)
		return false;
	s->p = (const char *)r->p;
	s->len = n;
	r->p += n;
	r->left -= n;
	return true;
}

/* A u16-prefixed string of 1..max octets (or 0..max if empty_ok) with no
 * NUL, so that a copy is a valid C string of the same length. */
static bool read_str(struct reader *r, size_t max, bool empty_ok, struct frame_str *s)
{
	if (r->left < 2)
		return false;
	size_t n = be_get16(r->p);
	r->p += 2;
	r->left -= 2;
	if (n > max || (n == 0 && !empty_ok))
		return false;
	if (!read_bytes(r, n, s))
		return false;
	return memchr(s->p, '\0', n) == NULL;
}

enum frame_status frame_decode_begin(const uint8_t *body, size_t len, struct frame_begin *out,
                                     const char **why)
{
	struct reader r = { body, len };
	struct frame_str s;
	if (len < 8)
		return fail(why, "BEGIN too short");
	out->txn = be_get64(body);
	r.p += 8;
	r.left -= 8;
	if (!read_str(&r, FRAME_QID_MAX, false, &out->qid))
		return fail(why, "BEGIN qid malformed");
	if (!read_str(&r, FRAME_ADDRESS_MAX, true, &out->sender))
		return fail(why, "BEGIN sender malformed");
	if (!read_u32(&r, &out->nrcpts) || out->nrcpts == 0 || out->nrcpts > FRAME_RCPTS_MAX)
		return fail(why, "BEGIN recipient count out of bounds");
	out->rcpts = r.p;
	for (uint32_t i = 0; i < out->nrcpts; i++) {
		if (!read_str(&r, FRAME_ADDRESS_MAX, false, &s))
			return fail(why, "BEGIN recipient address malformed");
		/* Empty: relayed (store.h). */
		if (!read_str(&r, FRAME_MAILBOX_MAX, true, &s))
			return fail(why, "BEGIN recipient mailbox malformed");
	}
	out->rcpts_len = (size_t)(r.p - out->rcpts);
	uint32_t rlen;
	if (!read_u32(&r, &rlen) || rlen > FRAME_RECEIVED_MAX || !read_bytes(&r, rlen, &out->received))
		return fail(why, "BEGIN received malformed");
	if (memchr(out->received.p, '\0', out->received.len))
		return fail(why, "BEGIN received holds a NUL");
	if (!read_str(&r, FRAME_SIGNER_MAX, true, &out->signer))
		return fail(why, "BEGIN signer malformed");
	if (!read_str(&r, FRAME_CLIENT_IP_MAX, true, &out->client_ip))
		return fail(why, "BEGIN client address malformed");
	if (!read_str(&r, FRAME_HELO_MAX, true, &out->helo))
		return fail(why, "BEGIN helo malformed");
	if (r.left != 0)
		return fail(why, "BEGIN has trailing octets");
	return FRAME_OK;
}

void frame_begin_rcpt(const struct frame_begin *b, size_t *pos, struct frame_str *address,
                      struct frame_str *mailbox)
{
	/* Already validated by frame_decode_begin: no checks needed. */
	const uint8_t *p = b->rcpts + *pos;
	address->len = be_get16(p);
	address->p = (const char *)p + 2;
	p += 2 + address->len;
	mailbox->len = be_get16(p);
	mailbox->p = (const char *)p + 2;
	p += 2 + mailbox->len;
	*pos = (size_t)(p - b->rcpts);
}

enum frame_status frame_decode_data(const uint8_t *body, size_t len, uint64_t *txn,
                                    const char **data, size_t *data_len, const char **why)
{
	if (len <= 8 || len > 8 + FRAME_DATA_MAX)
		return fail(why, "DATA length out of bounds");
	*txn = be_get64(body);
	*data = (const char *)body + 8;
	*data_len = len - 8;
	return FRAME_OK;
}

enum frame_status frame_decode_txn(const uint8_t *body, size_t len, uint64_t *txn, const char **why)
{
	if (len != 8)
		return fail(why, "COMMIT/ABORT length wrong");
	*txn = be_get64(body);
	return FRAME_OK;
}

enum frame_status frame_decode_result(const uint8_t *body, size_t len, uint64_t *txn,
                                      enum store_result *r, const char **why)
{
	if (len != 9)
		return fail(why, "RESULT length wrong");
	uint8_t v = body[8];
	if (v != STORE_OK && v != STORE_TEMPFAIL && v != STORE_NOSPACE)
		return fail(why, "RESULT value unknown");
	*txn = be_get64(body);
	*r = (enum store_result)v;
	return FRAME_OK;
}

enum frame_status frame_decode_space(const uint8_t *body, size_t len, uint64_t *free_bytes,
                                     const char **why)
{
	if (len != 8)
		return fail(why, "SPACE length wrong");
	*free_bytes = be_get64(body);
	return FRAME_OK;
}

enum frame_status frame_decode_ask(const uint8_t *body, size_t len, uint64_t *query,
                                   const uint8_t **key, struct frame_str *mailbox,
                                   const char **why)
{
	struct reader r = { body, len };
	if (len < 8 + FRAME_KEY_LEN)
		return fail(why, "ASK too short");
	*query = be_get64(body);
	*key = body + 8;
	r.p += 8 + FRAME_KEY_LEN;
	r.left -= 8 + FRAME_KEY_LEN;
	if (!read_str(&r, FRAME_MAILBOX_MAX, false, mailbox))
		return fail(why, "ASK mailbox malformed");
	if (r.left != 0)
		return fail(why, "ASK has trailing octets");
	return FRAME_OK;
}

enum frame_status frame_decode_answer(const uint8_t *body, size_t len, uint64_t *query,
                                      enum store_mailbox_answer *a, const char **why)
{
	if (len != 9)
		return fail(why, "ANSWER length wrong");
	uint8_t v = body[8];
	if (v > STORE_MAILBOX_ERROR)
		return fail(why, "ANSWER value unknown");
	*query = be_get64(body);
	*a = (enum store_mailbox_answer)v;
	return FRAME_OK;
}

/* ---- what the format cannot say ---- */

static bool has_control(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 || c == 0x7f)
			return true;
	}
	return false;
}

bool frame_mailbox_safe(const char *name, size_t len)
{
	/* One directory name under the mailroot, never a path: no '/', and no
	 * leading '.' (which also rules out "." and ".." and Maildir++
	 * folders). */
	if (len == 0 || len > FRAME_MAILBOX_MAX || name[0] == '.')
		return false;
	if (memchr(name, '/', len) || has_control(name, len))
		return false;
	return true;
}

static bool qid_safe(const struct frame_str *q)
{
	/* The qid is the unique part of a Maildir name: no '.', ',', ':' or
	 * '/', which separate or end its fields. */
	for (size_t i = 0; i < q->len; i++) {
		char c = q->p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return q->len > 0;
}

static bool received_safe(const struct frame_str *r)
{
	if (r->len == 0)
		return true;
	if (r->p[r->len - 1] != '\n')
		return false;
	/* LF line endings only; a tab is a legitimate folding character. */
	for (size_t i = 0; i < r->len; i++) {
		unsigned char c = (unsigned char)r->p[i];
		if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* Empty (local mail) or what inet_ntop writes for the peer. */
static bool client_ip_ok(const struct frame_str *s)
{
	unsigned char a[16];
	return s->len == 0 || ip_text_v4(s->p, s->len, a) || ip_text_v6(s->p, s->len, a) != 0;
}

const char *frame_begin_check(const struct frame_begin *b)
{
	if (!qid_safe(&b->qid))
		return "qid not file-name safe";
	if (has_control(b->sender.p, b->sender.len))
		return "sender holds a control octet";
	if (!received_safe(&b->received))
		return "received text not LF-terminated lines";
	if (has_control(b->signer.p, b->signer.len))
		return "signer holds a control octet";
	if (!client_ip_ok(&b->client_ip))
		return "client address not an IP address";
	size_t pos = 0;
	for (uint32_t i = 0; i < b->nrcpts; i++) {
		struct frame_str a, m;
		frame_begin_rcpt(b, &pos, &a, &m);
		if (has_control(a.p, a.len))
			return "recipient address holds a control octet";
		if (m.len > 0 && !frame_mailbox_safe(m.p, m.len))
			return "mailbox name unsafe";
	}
	return NULL;
}
