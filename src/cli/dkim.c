/* rawmail dkim keygen --domain D --selector S [--type rsa|ed25519]
 * [--out FILE]: a new DKIM private key written to a file only its owner
 * may read (created, never replaced), and the TXT record to publish for
 * it (RFC 6376 §3.6.2.2: SELECTOR._domainkey.DOMAIN) in zone-file syntax
 * on standard output, so `>> zone` works; what was done goes to stderr. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "msg/dkim.h"

#define DKIM_EXIT_SOFTWARE 70
#define DKIM_EXIT_CANTCREAT 73

static const char dkim_help[] =
	"usage: rawmail dkim keygen --domain DOMAIN --selector SELECTOR\n"
	"                           [--type rsa|ed25519] [--out FILE]\n"
	"\n"
	"Makes a DKIM signing key: writes the private key (PEM) to FILE with mode 0600\n"
	"(never over an existing file) and prints on standard output the DNS TXT\n"
	"record to publish, SELECTOR._domainkey.DOMAIN, in zone-file syntax (strings\n"
	"of at most 255 octets).  Then sign with rawmail send --dkim-key FILE\n"
	"--dkim-selector SELECTOR --dkim-domain DOMAIN, or a [dkim] section of\n"
	"rawmail.conf.\n"
	"\n"
	"  --domain DOMAIN      the domain that signs (d=), in A-labels\n"
	"  --selector NAME      the selector (s=), e.g. 2026a\n"
	"  --type rsa|ed25519   rsa (2048 bits, the default: every verifier knows it)\n"
	"                       or ed25519 (RFC 8463; sign with both, as not all\n"
	"                       verifiers check it yet)\n"
	"  --out FILE           where the key goes (default:\n"
	"                       ./SELECTOR._domainkey.DOMAIN.key)\n"
	"  -h, --help           this text\n"
	"\n"
	"Exit status: 0 done, 64 usage, 70 the key could not be made, 73 FILE exists\n"
	"or cannot be written.\n";

/* Writes pem to path: created exclusively, mode 0600, synced. */
static int key_write(const char *path, const struct buf *pem)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			fprintf(stderr, "rawmail dkim keygen: %s exists: not replacing a key "
			        "(choose another --out or --selector)\n", path);
		else
			fprintf(stderr, "rawmail dkim keygen: cannot create %s: %s\n", path,
			        strerror(errno));
		return DKIM_EXIT_CANTCREAT;
	}
	/* The umask may only take bits away; make sure of 0600 anyway. */
	bool ok = fchmod(fd, 0600) == 0;
	size_t off = 0;
	while (ok && off < pem->len) {
		ssize_t w = write(fd, pem->data + off, pem->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		ok = w > 0;
		if (ok)
			off += (size_t)w;
	}
	ok = ok && fsync(fd) == 0;
	int saved = errno;
	if (close(fd) != 0)
		ok = false;
	if (!ok) {
		fprintf(stderr, "rawmail dkim keygen: cannot write %s: %s\n", path, strerror(saved));
		unlink(path);
		return DKIM_EXIT_CANTCREAT;
	}
	return 0;
}

/* The record in zone-file syntax (msg/dkim.h, shared with rawmail
 * check's fixes): one line. */
static int record_print(FILE *out, const char *domain, const char *selector, const char *text)
{
	struct buf line;
	buf_init(&line, 16 * 1024);
	int rc = dkim_record_zone_line(domain, selector, text, &line);
	if (rc == 0)
		fprintf(out, "%.*s\n", (int)line.len, line.data);
	buf_free(&line);
	return rc;
}

static int keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, 'd' },
		{ "selector", required_argument, NULL, 's' },
		{ "type", required_argument, NULL, 't' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *domain = NULL, *selector = NULL, *out = NULL;
	enum dkim_alg alg = DKIM_ALG_RSA_SHA256;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': domain = optarg; break;
		case 's': selector = optarg; break;
		case 'o': out = optarg; break;
		case 't':
			if (!strcmp(optarg, "rsa")) {
				alg = DKIM_ALG_RSA_SHA256;
			} else if (!strcmp(optarg, "ed25519")) {
				alg = DKIM_ALG_ED25519_SHA256;
			} else {
				fprintf(stderr, "rawmail dkim keygen: --type is rsa or ed25519, not '%s'\n",
				        optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h': fputs(dkim_help, stdout); return 0;
		default: fputs(dkim_help, stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc || !domain || !selector) {
		fprintf(stderr, "rawmail dkim keygen: --domain and --selector are needed "
		        "(rawmail dkim --help)\n");
		return EXIT_USAGE;
	}
	char dom[DKIM_NAME_MAX + 2];
	snprintf(dom, sizeof(dom), "%s", domain);
	size_t dl = strlen(dom);
	if (dl > 1 && dom[dl - 1] == '.')
		dom[dl - 1] = '\0';  /* an absolute name's final dot */
	if (!dkim_name_ok(dom) || strchr(dom, '.') == NULL) {
		fprintf(stderr, "rawmail dkim keygen: --domain '%s' is not a domain name "
		        "(letters, digits, '-', dots; A-labels for IDNs)\n", domain);
		return EXIT_USAGE;
	}
	if (!dkim_name_ok(selector)) {
		fprintf(stderr, "rawmail dkim keygen: --selector '%s' is not a DNS name "
		        "(letters, digits, '-', '_')\n", selector);
		return EXIT_USAGE;
	}
	char path[4096];
	if (!out) {
		snprintf(path, sizeof(path), "./%s._domainkey.%s.key", selector, dom);
		out = path;
	}
	char err[512];
	struct dkim_key *key = NULL;
	if (dkim_key_generate(alg, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "rawmail dkim keygen: %s\n", err);
		return DKIM_EXIT_SOFTWARE;
	}
	struct buf pem, pub;
	buf_init(&pem, 64 * 1024);
	buf_init(&pub, 8 * 1024);
	int rc = 0;
	if (dkim_key_pem(key, &pem) < 0 || buf_append_str(&pub, "v=DKIM1; k=") < 0 ||
	    buf_append_str(&pub, dkim_key_type_name(key)) < 0 || buf_append_str(&pub, "; p=") < 0 ||
	    dkim_key_public_b64(key, &pub) < 0) {
		fprintf(stderr, "rawmail dkim keygen: cannot encode the key\n");
		rc = DKIM_EXIT_SOFTWARE;
	} else {
		rc = key_write(out, &pem);
	}
	if (rc == 0) {
		fprintf(stderr, "rawmail dkim keygen: private key (%s) written to %s, mode 0600\n"
		        "rawmail dkim keygen: publish this TXT record in the zone of %s:\n",
		        dkim_key_type_name(key), out, dom);
		if (record_print(stdout, dom, selector, pub.data) < 0) {
			fprintf(stderr, "rawmail dkim keygen: cannot format the record\n");
			rc = DKIM_EXIT_SOFTWARE;
		}
	}
	if (pem.data)
		memset(pem.data, 0, pem.len);
	buf_free(&pem);
	buf_free(&pub);
	dkim_key_free(key);
	return rc;
}

int cli_dkim(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "keygen"))
		return keygen(argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(dkim_help, stdout);
		return 0;
	}
	fputs(dkim_help, stderr);
	return EXIT_USAGE;
}
