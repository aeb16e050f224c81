/* See txt.h: a TXT query through the resolver's c-ares channel. */
#include "check/txt.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <stdlib.h>
#include <string.h>

#include "dns/query_start.h"

/* The most records and octets of one answer kept: more is a hostile or
 * broken zone, and a DMARC or SPF record is a few hundred octets. */
#define CHECK_TXT_RECORDS_MAX 16
#define CHECK_TXT_RECORD_MAX 4096

struct txt_query {
	struct dns_resolver *r;
	check_txt_cb cb;
	void *arg;
	struct dns_query_start start;
};

static void txt_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct txt_query *q = arg;
	if (dns_query_start_refused(&q->start))
		return;
	struct ares_txt_ext *txt = NULL;
	if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
		q->cb(q->arg, CHECK_TXT_NONE, NULL, 0);
		free(q);
		return;
	}
	if (status != ARES_SUCCESS || ares_parse_txt_reply_ext(abuf, alen, &txt) != ARES_SUCCESS) {
		q->cb(q->arg, status == ARES_SUCCESS ? CHECK_TXT_NONE : CHECK_TXT_TEMPFAIL, NULL, 0);
		free(q);
		return;
	}
	char *records[CHECK_TXT_RECORDS_MAX];
	size_t n = 0;
	for (struct ares_txt_ext *t = txt; t; t = t->next) {
		/* record_start marks the first string of each record; the
		 * others are appended to the record before them. */
		if (t->record_start || n == 0) {
			if (n == CHECK_TXT_RECORDS_MAX)
				break;
			records[n] = calloc(1, CHECK_TXT_RECORD_MAX + 1);
			if (!records[n])
				break;
			n++;
		}
		char *rec = records[n - 1];
		size_t used = strlen(rec);
		size_t add = t->length;
		if (add > CHECK_TXT_RECORD_MAX - used)
			add = CHECK_TXT_RECORD_MAX - used;
		/* a NUL inside a string would cut it short: replace it */
		for (size_t i = 0; i < add; i++)
			rec[used + i] = t->txt[i] ? (char)t->txt[i] : '?';
		rec[used + add] = '\0';
	}
	ares_free_data(txt);
	q->cb(q->arg, n ? CHECK_TXT_OK : CHECK_TXT_NONE, (const char *const *)records, n);
	for (size_t i = 0; i < n; i++)
		free(records[i]);
	free(q);
}

bool check_txt_lookup(struct dns_resolver *r, const char *name, check_txt_cb cb, void *arg)
{
	struct txt_query *q = calloc(1, sizeof(*q));
	if (!q)
		return false;
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	dns_query_start_begin(&q->start);
	ares_query(dns_resolver_channel(r), name, ns_c_in, ns_t_txt, txt_cb, q);
	if (!dns_query_start_end(&q->start, r)) {
		free(q);
		return false;
	}
	return true;
}
