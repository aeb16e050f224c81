#include "store/frame.h"

#include <event2/buffer.h>

enum frame_status frame_next(struct evbuffer *in, unsigned allowed, enum frame_type *type,
                             const uint8_t **body, size_t *body_len, const char **why)
{
	uint8_t hdr[FRAME_HEADER_LEN];
	size_t avail = evbuffer_get_length(in);
	if (avail < FRAME_HEADER_LEN)
		return FRAME_NEED_MORE;
	evbuffer_copyout(in, hdr, sizeof(hdr));
	if (frame_header_decode(hdr, sizeof(hdr), allowed, type, body_len, why) != FRAME_OK)
		return FRAME_ERROR;
	if (avail - FRAME_HEADER_LEN < *body_len)
		return FRAME_NEED_MORE; /* the rest of the frame has not arrived */
	const uint8_t *frame = evbuffer_pullup(in, (ev_ssize_t)(FRAME_HEADER_LEN + *body_len));
	if (!frame) {
		*why = "out of memory";
		return FRAME_ERROR;
	}
	*body = frame + FRAME_HEADER_LEN;
	return FRAME_OK;
}
