/* libFuzzer harness for the outbox's record format, as the MQTT bridge
 * reads a file the store wrote (or a crash, a disk or a person damaged):
 * nothing may read out of bounds or crash, and every record the parser
 * accepts must re-encode to a record that parses to the same event. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/outbox.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const struct outbox_event *a, const struct outbox_event *b)
{
	if (strcmp(a->id, b->id) || strcmp(a->mailbox, b->mailbox) || strcmp(a->path, b->path) ||
	    strcmp(a->from, b->from) || strcmp(a->client_ip, b->client_ip) ||
	    strcmp(a->helo, b->helo) || a->size != b->size || a->time != b->time || a->nto != b->nto)
		return false;
	for (size_t i = 0; i < a->nto; i++)
		if (strcmp(a->to[i], b->to[i]))
			return false;
	return true;
}

static bool check_again(const struct outbox_event *ev, void *arg)
{
	if (!same(ev, arg))
		abort();
	return true;
}

static bool on_event(const struct outbox_event *ev, void *arg)
{
	struct buf b;
	buf_init(&b, 128u * 1024u * 1024u);
	if (outbox_record_append(&b, ev) < 0)
		abort(); /* what was read fits */
	size_t bad;
	struct outbox_event copy = *ev;
	if (outbox_parse(b.data, b.len, check_again, &copy, &bad) != 1 || bad != 0)
		abort();
	buf_free(&b);
	(*(size_t *)arg)++;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The first octet is the unit tests' seed selector: unused. */
	if (size < 1)
		return 0;
	/* An exact copy, so that a read past the end is caught. */
	char *copy = malloc(size - 1 ? size - 1 : 1);
	memcpy(copy, data + 1, size - 1);
	size_t n = 0, bad = 0;
	size_t got = outbox_parse(copy, size - 1, on_event, &n, &bad);
	if (got != n)
		abort();
	free(copy);
	/* Names: never accept a temporary name, nor a name with a '/'. */
	char name[64];
	size_t len = size - 1 < sizeof(name) - 1 ? size - 1 : sizeof(name) - 1;
	memcpy(name, data + 1, len);
	name[len] = '\0';
	if (outbox_name_ok(name) && (strchr(name, '/') || strchr(name, '.')))
		abort();
	if (outbox_tmp_pid(name) < 0)
		abort();
	return 0;
}
