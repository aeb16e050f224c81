/* rawmail.conf(5): one INI file whose sections belong to different
 * commands ([serve] or the top level for rawmail serve; [send], [queue]
 * and [delivery] for rawmail send and the queue).  inih reads the lines;
 * this gives each key to its section's setter and words every error the
 * same way, "FILE:LINE: what was wrong", for every command. */
#ifndef RAWMAIL_UTIL_CONFIG_FILE_H
#define RAWMAIL_UTIL_CONFIG_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sets one key of a section.  false with the reason in err (naming the
 * key; an unknown key says so). */
typedef bool (*config_file_set_fn)(void *arg, const char *key, const char *value, char *err,
                                   size_t errlen);

struct config_file_section {
	const char *name;         /* "" for keys before any [section] line */
	config_file_set_fn set;   /* NULL: a section of another command, skipped */
	void *arg;
};

/* Reads path, giving each key to the setter of its section.  A key in a
 * section not in the table is an error (a misspelt [section] would
 * otherwise be ignored without a word).  false with err:
 * "PATH: cannot open: REASON" or "PATH:LINE: REASON". */
bool config_file_read(const char *path, const struct config_file_section *sections, size_t n,
                      char *err, size_t errlen);

/* The file a command reads when no -c is given: $RAWMAIL_CONF when set and
 * not empty (env), else fallback when it exists (/etc/rawmail.conf), else
 * NULL (built-in defaults).  given (-c) wins over both. */
const char *config_file_choose(const char *given, const char *env, const char *fallback);

#define CONFIG_FILE_DEFAULT "/etc/rawmail.conf"

/* A list setting ("domain = a.test b.test", repeated keys, repeated
 * flags): a higher layer (file over defaults, flags over the file)
 * replaces a lower layer's values instead of adding to them. */
struct string_list {
	char **items;
	size_t n;
	int source;      /* private: which layer set it (defaults, file, flags) */
};
/* Adds value's items (separated by spaces, tabs or commas) from layer
 * source; false when memory ran out. */
bool config_list_add(struct string_list *l, int source, const char *value);
void config_list_free(struct string_list *l);

/* The values every command's settings share: yes/true/on/1 and
 * no/false/off/0 (any case); a decimal number with an optional K, M or G
 * (powers of 1024) that is at most max.  false when s is neither. */
bool config_value_bool(const char *s, bool *out);
bool config_value_size(const char *s, uint64_t max, uint64_t *out);

#endif
