#include "store/newbox.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/netkey.h"

_Static_assert(NEWBOX_KEY_LEN == NETKEY_LEN, "one client key");

struct newbox_grant {
	int64_t when;
	uint8_t key[NEWBOX_KEY_LEN];
	char *mailbox;
};

void newbox_init(struct newbox *nb, unsigned per_client, unsigned total)
{
	memset(nb, 0, sizeof(*nb));
	nb->per_client = per_client;
	nb->total = total;
}

void newbox_free(struct newbox *nb)
{
	for (size_t i = nb->first; i < nb->first + nb->count; i++)
		free(nb->grants[i].mailbox);
	free(nb->grants);
	memset(nb, 0, sizeof(*nb));
}

/* Grants older than the window go; the array is compacted when the dead
 * front is at least half of it. */
static void expire(struct newbox *nb, int64_t now)
{
	while (nb->count > 0 && now - nb->grants[nb->first].when >= NEWBOX_WINDOW_S) {
		free(nb->grants[nb->first].mailbox);
		nb->first++;
		nb->count--;
	}
	if (nb->count == 0) {
		nb->first = 0;
	} else if (nb->first > 0 && nb->first >= nb->count) {
		memmove(nb->grants, nb->grants + nb->first, nb->count * sizeof(nb->grants[0]));
		nb->first = 0;
	}
}

static int record(struct newbox *nb, int64_t now, const uint8_t *key, const char *mailbox,
                  size_t len)
{
	if (nb->first + nb->count == nb->cap) {
		/* Live grants never exceed total, so neither does this. */
		size_t cap = nb->cap ? nb->cap * 2 : 16;
		struct newbox_grant *g = realloc(nb->grants, cap * sizeof(*g));
		if (!g)
			return -1;
		nb->grants = g;
		nb->cap = cap;
	}
	char *name = malloc(len + 1);
	if (!name)
		return -1;
	memcpy(name, mailbox, len);
	name[len] = '\0';
	struct newbox_grant *g = &nb->grants[nb->first + nb->count++];
	g->when = now;
	memcpy(g->key, key, NEWBOX_KEY_LEN);
	g->mailbox = name;
	return 0;
}

enum store_mailbox_answer newbox_decide(struct newbox *nb, int64_t now,
                                        const uint8_t key[NEWBOX_KEY_LEN], const char *mailbox,
                                        size_t len)
{
	expire(nb, now);
	/* Linear: at most `total` grants live in a window, and only mailboxes
	 * that do not exist get here. */
	unsigned mine = 0;
	for (size_t i = nb->first; i < nb->first + nb->count; i++) {
		const struct newbox_grant *g = &nb->grants[i];
		if (strlen(g->mailbox) == len && !memcmp(g->mailbox, mailbox, len))
			return STORE_MAILBOX_GRANTED;
		if (!memcmp(g->key, key, NEWBOX_KEY_LEN))
			mine++;
	}
	if (mine >= nb->per_client)
		return STORE_MAILBOX_LIMIT_CLIENT;
	if (nb->count >= nb->total)
		return STORE_MAILBOX_LIMIT_TOTAL;
	if (record(nb, now, key, mailbox, len) < 0)
		return STORE_MAILBOX_ERROR;
	return STORE_MAILBOX_GRANTED;
}

void newbox_client_key(const struct sockaddr *sa, uint8_t key[NEWBOX_KEY_LEN])
{
	netkey_from_sockaddr(sa, key);
}

const char *newbox_key_text(const uint8_t key[NEWBOX_KEY_LEN], char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN];
	if (key[0] == 4 && inet_ntop(AF_INET, key + 1, ip, sizeof(ip))) {
		snprintf(out, outlen, "%s", ip);
	} else if (key[0] == 6) {
		unsigned char a[16] = { 0 };
		memcpy(a, key + 1, 8);
		if (inet_ntop(AF_INET6, a, ip, sizeof(ip)))
			snprintf(out, outlen, "%s/64", ip);
		else
			snprintf(out, outlen, "-");
	} else {
		snprintf(out, outlen, "-");
	}
	return out;
}
