#include "net/ossl_lazy.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Defined by the generated stubs (scripts/ossl_stubs) in the rawmail
 * binary only: weak, so that whatever links OpenSSL itself (unit tests,
 * tools, the static build) sees NULL and has nothing to load. */
extern void *rawmail_ossl_table[] __attribute__((weak));
extern const uint64_t rawmail_ossl_count __attribute__((weak));
extern const char *const rawmail_ossl_sonames[] __attribute__((weak));
extern const char *const rawmail_ossl_names[] __attribute__((weak));

static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool loaded;
static char failure[512];

static void load_all(void)
{
	if (!&rawmail_ossl_count) {
		loaded = true;
		return;
	}
	void *handles[8];
	size_t nh = 0;
	for (size_t i = 0; rawmail_ossl_sonames[i] && nh < 8; i++) {
		/* RTLD_NOW: a library missing a symbol is refused here, not at
		 * some later call. */
		handles[nh] = dlopen(rawmail_ossl_sonames[i], RTLD_NOW | RTLD_LOCAL);
		if (!handles[nh]) {
			snprintf(failure, sizeof(failure), "cannot load %s: %s", rawmail_ossl_sonames[i],
			         dlerror());
			return;
		}
		nh++;
	}
	for (uint64_t i = 0; i < rawmail_ossl_count; i++) {
		void *f = NULL;
		for (size_t h = 0; h < nh && !f; h++)
			f = dlsym(handles[h], rawmail_ossl_names[i]);
		if (!f) {
			snprintf(failure, sizeof(failure), "no function %s in %s or its libraries",
			         rawmail_ossl_names[i], rawmail_ossl_sonames[0]);
			return;
		}
		rawmail_ossl_table[i] = f;
	}
	/* The table is a page of its own (the stubs' .balign): read-only
	 * from now on, as full RELRO makes the GOT. */
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = ((size_t)rawmail_ossl_count * sizeof(void *) + page - 1) & ~(page - 1);
	if (((uintptr_t)rawmail_ossl_table & (page - 1)) == 0)
		mprotect(rawmail_ossl_table, len, PROT_READ);
	loaded = true;
}

bool ossl_lazy_load(char *why, size_t whylen)
{
	pthread_once(&once, load_all);
	if (!loaded && why && whylen)
		snprintf(why, whylen, "%s", failure);
	return loaded;
}

void ossl_lazy_require(void)
{
	char why[512];
	if (ossl_lazy_load(why, sizeof(why)))
		return;
	fprintf(stderr, "rawmail: OpenSSL is needed here and %s\n", why);
	fflush(stderr);
	_exit(72);
}
