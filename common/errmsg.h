/*
 * errmsg.h -- the error messages of the JSON loaders (the server's config
 * file, workload files), written once so that both word the same mistake
 * the same way:
 *
 *   FILE: cannot read config file: No such file or directory
 *   FILE: empty workload file, expected a JSON object with ...
 *   FILE:LINE:COL: invalid JSON: '}' expected near ','
 *   FILE:LINE:COL: expected a JSON object of settings, found an array ...
 *   FILE:LINE:COL: field 'routes[2].reads': expected an integer from 0
 *                  to 100, found the string "ten"
 *   FILE:LINE:COL: field 'wrokers': unknown key, did you mean 'workers'?
 *   FILE:LINE:COL: field 'frob': unknown key (HINT)
 *
 * A value read from JSON is "found" and described by its type and value
 * (emsg_describe); a raw text argument (a flag's value, a query string)
 * is "got" and quoted as typed.  Positions come from jsonpos.h.
 * Messages are one printable line, without a trailing newline, written
 * into the caller's buffer (err, errlen); nothing here prints.  The
 * functions that report an error return it as a negative errno, so that a
 * loader can write `return emsg_bad_value(...);`.  Uses jansson.
 */
#ifndef COWLAB_ERRMSG_H
#define COWLAB_ERRMSG_H

#include <stddef.h>
#include <jansson.h>

/* vsnprintf into err (nothing if errlen is 0). */
void emsg_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- wording ---------------------------------------------------------- */

/* "an integer from MIN to MAX", or "an integer >= MIN" when max is
 * LONG_MAX or more (no upper bound worth naming). */
void emsg_expect_int(char *buf, size_t len, long long min, long long max);

/* "a number from MIN to MAX", or "a number > MIN and <= MAX" when
 * min_open (MIN itself is not allowed). */
void emsg_expect_number(char *buf, size_t len, double min, int min_open,
                        double max);

/*
 * What a JSON value is, for "found ...": "an object", "an empty array",
 * "an array of 3 items", "the string \"ten\"" (at most 40 bytes of it,
 * control characters escaped, "..." if cut), numbers as JSON writes them
 * (a real always with '.' or 'e', so 4.0 does not read as 4), "true",
 * "false", "null".
 */
void emsg_describe(const json_t *v, char *buf, size_t len);

/* ---- did you mean ----------------------------------------------------- */

/* Levenshtein distance; words over 63 bytes count as far (SIZE_MAX). */
size_t emsg_distance(const char *a, const char *b);

/*
 * The nearest of the candidates offered with emsg_near_try() to word, if
 * near enough to be a typo: within 2 edits, or a third of the word's
 * length.  Candidates are not copied: they must outlive the search.
 */
typedef struct emsg_near {
    const char *word;
    const char *best;
    size_t bestd;
} emsg_near_t;

void emsg_near_init(emsg_near_t *n, const char *word);
void emsg_near_try(emsg_near_t *n, const char *candidate);
const char *emsg_near_result(const emsg_near_t *n);    /* NULL: none */

/* ---- messages about a JSON document ----------------------------------- */

/* The document being checked: its file name (as the user gave it), its
 * text, and the caller's message buffer. */
typedef struct emsg_src {
    const char *file;
    const char *text;
    size_t len;
    char *err;
    size_t errlen;
} emsg_src_t;

/*
 * "FILE: cannot read WHAT: STRERROR" for fio_read_file()'s rc; returns rc.
 * what is e.g. "config file".
 */
int emsg_read_error(char *err, size_t errlen, const char *file,
                    const char *what, int rc);

/*
 * Parse src->text as one JSON object (duplicate keys refused) into *out.
 * Errors (-EINVAL, *out NULL): "FILE: empty WHAT, expected WANT" for a
 * text of only blanks, "FILE:LINE:COL: invalid JSON: ..." with jansson's
 * position, "FILE:1:1: expected WANT, found ..." for another value.
 */
int emsg_parse_object(const emsg_src_t *src, const char *what,
                      const char *want, json_t **out);

/* "FILE:LINE:COL: field 'NAME': expected WANT, found DESCRIPTION" about
 * the value v at JSON pointer ptr ("" for the whole document: no field
 * part).  Returns -EINVAL. */
int emsg_bad_value(const emsg_src_t *src, const char *ptr, const char *want,
                   const json_t *v);

/* "FILE:LINE:COL: field 'NAME': unknown key, did you mean 'NEAR'?" or,
 * when near is NULL, "...: unknown key (HINT)"; the position is the key's.
 * Returns -EINVAL. */
int emsg_unknown_key(const emsg_src_t *src, const char *ptr,
                     const char *near, const char *hint);

/* "FILE:LINE:COL: field 'NAME': " and the formatted rest, about the value
 * at ptr (jpos_errorf()).  Returns -EINVAL. */
int emsg_at(const emsg_src_t *src, const char *ptr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "FILE: out of memory".  Returns -ENOMEM. */
int emsg_oom(const emsg_src_t *src);

#endif /* COWLAB_ERRMSG_H */
