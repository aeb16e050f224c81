/* What rawmail send, sendmail and rawmail queue share about the queue
 * (send.h): where the spool is, and how a message is queued (the results
 * of a first attempt are send_settle.c's). */
#include "cli/send.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/queue_kick.h"
#include "queue/maildrop.h"
#include "util/id.h"

/* QUEUE.md "Wave 2 decisions": root's spool is the system's; another
 * user's is in their XDG state directory, picked up by their own
 * `rawmail queue run` (no setuid binary is needed to queue). */
static bool spool_default(char *out, size_t outlen)
{
	char why[256];
	return cli_spool_dir(NULL, out, outlen, why, sizeof(why)) != NULL;
}

/* mkdir -p of path's parents, each new one 0700 (the XDG state
 * directory is private). */
static int mkdir_parents(char *path)
{
	for (char *p = path + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		int r = mkdir(path, 0700);
		int e = errno;
		*p = '/';
		if (r != 0 && e != EEXIST)
			return -1;
	}
	return 0;
}

struct queue_spool *send_spool_open(const struct send_opts *o, char *dir, size_t dirlen)
{
	if (o->spool) {
		snprintf(dir, dirlen, "%s", o->spool);
	} else if (!spool_default(dir, dirlen)) {
		fprintf(stderr, "%s: no spool directory: give --spool DIR (HOME is not set)\n",
		        o->prog);
		return NULL;
	} else if (geteuid() != 0 && mkdir_parents(dir) != 0) {
		fprintf(stderr, "%s: cannot make the spool directory %s: %s\n", o->prog, dir,
		        strerror(errno));
		return NULL;
	}
	/* Ids tell processes apart by a salt id_init draws: many sendmail
	 * processes queue at once. */
	id_init();
	struct queue_spool *sp = NULL;
	char why[512];
	if (queue_spool_open(dir, QUEUE_SPOOL_CREATE, &sp, why, sizeof(why)) != QUEUE_OK) {
		fprintf(stderr, "%s: %s\n", o->prog, why);
		return NULL;
	}
	return sp;
}

/* Into spool's maildrop: queued once it is there (the daemon, or root's
 * queue run from the timer, takes it over). */
static int send_entry_drop(const struct send_opts *o, struct send_entry *e, const char *spool)
{
	char name[ID_LEN + 1], why[512];
	id_init();
	const struct buf *msg = e->msg;
	enum queue_status st = queue_maildrop_submit(spool, &e->env, msg->data ? msg->data : "",
	                                             msg->len, name, why, sizeof(why));
	if (st != QUEUE_OK) {
		fprintf(stderr, "%s: not sent: the message could not be queued: %s\n", o->prog, why);
		return SEND_EXIT_TEMPFAIL;
	}
	if (o->verbose || !o->background)
		fprintf(stderr, "%s: queued as %s in %s/%s (the system's queue takes it from "
		                "there)\n",
		        o->prog, name, spool, QUEUE_MAILDROP_DIR);
	return SEND_EXIT_OK;
}

int send_entry_drop_all(const struct send_opts *o, struct send_entry *e)
{
	return send_entry_drop(o, e, e->drop);
}

static void *entry_sync_main(void *arg)
{
	struct send_entry *e = arg;
	e->sync_err = queue_spool_fs_sync(e->sp) == 0 ? 0 : errno;
	return NULL;
}

/* rawmail send's enqueue: the entry written and renamed now, its sync
 * (1-3 ms of a send here: bench/send "the queue's share") run by a
 * thread while the first attempt connects and talks.  The promise is
 * the same as syncing first: nothing is said, and the process does not
 * end, before the sync returned (send_entry_durable).  A crash before
 * that loses only a message nobody was told about, as a crash during a
 * synchronous enqueue does; a peer that took the message meanwhile has
 * it (a crash then may, at worst, send it twice, as after any attempt
 * whose removal was not yet durable). */
static enum queue_status enqueue_syncing(struct send_entry *e, const struct buf *msg, char *why,
                                         size_t whylen)
{
	enum queue_status st = queue_spool_enqueue_unsynced(e->sp, &e->env,
	                                                    msg->data ? msg->data : "", msg->len,
	                                                    why, whylen);
	if (st != QUEUE_OK)
		return st;
	/* What the attempt delivers is removed without a sync: rawmail send
	 * ends right after (queue_spool_lazy_removals). */
	queue_spool_lazy_removals(e->sp);
	e->syncing = pthread_create(&e->sync_thread, NULL, entry_sync_main, e) == 0;
	if (e->syncing)
		return QUEUE_OK;
	entry_sync_main(e);     /* no thread to be had: synced here, as enqueue does */
	if (e->sync_err == 0)
		return QUEUE_OK;
	queue_spool_enqueue_undo(e->sp, &e->env);
	snprintf(why, whylen, "spool %s: syncfs: %s", e->dir, strerror(e->sync_err));
	return QUEUE_TEMP;
}

bool send_entry_durable(struct send_entry *e)
{
	if (e->syncing) {
		pthread_join(e->sync_thread, NULL);
		e->syncing = false;
		if (e->sync_err)
			queue_spool_enqueue_undo(e->sp, &e->env);
	}
	return e->sync_err == 0;
}

int send_entry_enqueue(struct send_opts *o, struct send_entry *e, const char *sender,
                       const struct buf *msg, const char *const *rcpts,
                       const char *const *originals, size_t n)
{
	*e = (struct send_entry){ .msg = msg, .lk.fd = -1 };
	/* A user's sendmail hands the message to the system's queue through
	 * its maildrop (no setuid binary; serve or root's queue run takes it
	 * from there); rawmail send keeps its attempt in the foreground. */
	const char *drop = cli_maildrop_spool(o->spool);
	if (!drop) {
		e->sp = send_spool_open(o, e->dir, sizeof(e->dir));
		if (!e->sp) {
			fprintf(stderr, "%s: not sent: the message could not be queued\n", o->prog);
			return SEND_EXIT_TEMPFAIL;
		}
	}
	e->env.origin = o->background ? QUEUE_ORIGIN_SENDMAIL : QUEUE_ORIGIN_SEND;
	if (queue_envelope_set_sender(&e->env, sender) != 0)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		const char *orcpt = originals && originals[i] && strcmp(originals[i], rcpts[i])
		                            ? originals[i]
		                            : NULL;
		if (queue_envelope_add_rcpt(&e->env, rcpts[i], orcpt) != 0)
			goto nomem;
	}
	if (queue_envelope_wants_smtputf8(&e->env))
		e->env.flags |= QUEUE_FLAG_SMTPUTF8;
	char why[512];
	if (drop && !o->background) {
		e->drop = drop;
		return 0;
	}
	if (drop)
		return send_entry_drop(o, e, drop);
	e->prog = o->prog;
	enum queue_status st =
		o->background ? queue_spool_enqueue(e->sp, &e->env, msg->data ? msg->data : "",
		                                    msg->len, why, sizeof(why))
		              : enqueue_syncing(e, msg, why, sizeof(why));
	if (st != QUEUE_OK) {
		fprintf(stderr, "%s: not sent: the message could not be queued: %s\n", o->prog, why);
		return SEND_EXIT_TEMPFAIL;
	}
	if (o->background) {
		/* The sendmail entry: safely queued is done (Postfix's
		 * behaviour); the first attempt is a detached runner's. */
		if (o->verbose)
			fprintf(stderr, "%s: queued as %s in %s\n", o->prog, e->env.id, e->dir);
		if (!cli_queue_kick(o, e->dir, e->env.id) && o->verbose)
			fprintf(stderr, "%s: the first attempt could not be started now; "
			                "rawmail queue run will make it\n", o->prog);
		return SEND_EXIT_OK;
	}
	st = queue_spool_lock(e->sp, e->env.id, &e->lk, why, sizeof(why));
	if (st != QUEUE_OK) {
		/* A queue runner took it between the two calls: it is queued,
		 * and being delivered by that runner. */
		fprintf(stderr, "%s: queued as %s: %s\n", o->prog, e->env.id,
		        st == QUEUE_BUSY ? "a queue runner is delivering it" : why);
		return SEND_EXIT_TEMPFAIL;
	}
	return 0;
nomem:
	fprintf(stderr, "%s: out of memory\n", o->prog);
	return SEND_EXIT_OSERR;
}

void send_entry_close(struct send_entry *e)
{
	if (e->syncing && !send_entry_durable(e))
		fprintf(stderr, "%s: %s: spool %s: syncfs: %s\n", e->prog,
		        e->settled ? "warning" : "not queued", e->dir, strerror(e->sync_err));
	queue_spool_unlock(&e->lk);
	queue_envelope_free(&e->env);
	if (e->sp)
		queue_spool_close(e->sp);
	e->sp = NULL;
}
