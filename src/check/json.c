/* The results as a JSON document (--json), written by hand: one writer
 * for strings (RFC 8259 §7) is all it takes, no library. */
#include "check/check.h"

void check_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		default:
			/* RFC 8259 §7: U+0000 to U+001F must be escaped; DEL
			 * too, so a terminal showing the document is safe. */
			if (*p < 0x20 || *p == 0x7f)
				fprintf(out, "\\u%04x", *p);
			else
				fputc(*p, out);
		}
	}
	fputc('"', out);
}

static void field(FILE *out, const char *name, const char *value, bool comma)
{
	check_json_string(out, name);
	fputc(':', out);
	check_json_string(out, value);
	if (comma)
		fputc(',', out);
}

void check_results_print_json(const struct check_results *r, unsigned long elapsed_ms,
                              FILE *out)
{
	fputs("{\"results\":[", out);
	for (size_t i = 0; i < r->n; i++) {
		const struct check_result *it = &r->items[i];
		fputs(i ? ",\n{" : "\n{", out);
		field(out, "status", check_status_name(it->status), true);
		field(out, "test", it->test, true);
		field(out, "subject", it->subject, true);
		field(out, "found", it->found, true);
		field(out, "fix", it->fix, false);
		fputc('}', out);
	}
	fprintf(out, "],\n\"pass\":%zu,\"warn\":%zu,\"fail\":%zu,\"info\":%zu,\"complete\":%s,"
	             "\"elapsed_ms\":%lu}\n",
	        check_results_count(r, CHECK_PASS), check_results_count(r, CHECK_WARN),
	        check_results_count(r, CHECK_FAIL) + (r->oom ? 1 : 0),
	        check_results_count(r, CHECK_INFO), r->oom ? "false" : "true", elapsed_ms);
}
