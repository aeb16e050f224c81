/* The sendmail entry's message after its options (send.h): prepared,
 * queued durably (or dropped into the system's maildrop by a user who is
 * not root), its first attempt kicked off in the background.  No
 * delivery engine: the small program the sendmail link runs
 * (sendmail_main.c) is this and what it calls. */
#include "cli/send.h"

int send_submit(struct send_opts *o)
{
	struct send_prepared p;
	int rc = send_prepare(o, &p);
	if (rc == 0) {
		struct send_entry entry;
		rc = send_entry_enqueue(o, &entry, p.sender, &p.msg, (const char *const *)p.list.addrs,
		                        (const char *const *)p.originals, p.list.count);
		send_entry_close(&entry);
	}
	send_prepared_free(&p);
	return rc;
}
