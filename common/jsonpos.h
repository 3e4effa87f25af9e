/*
 * jsonpos.h -- where a value sits in a JSON text, so that errors found
 * after parsing can say "file:line:column: field 'routes[2].reads': ...".
 * jansson reports positions only for syntax errors; this module rescans
 * the raw text (already accepted by jansson) to locate a value or a key by
 * a JSON pointer (RFC 6901): "" is the whole document, "/routes/2/reads"
 * is member "reads" of element 2 of member "routes"; "~1" stands for '/'
 * and "~0" for '~' inside a key.  Lines and columns are 1-based; columns
 * count characters (UTF-8 code points), as jansson's do.
 * Used by config.c and by the workload loader.  Nothing here allocates.
 * Functions return 0 or a negative errno (libuv style).
 */
#ifndef COWLAB_JSONPOS_H
#define COWLAB_JSONPOS_H

#include <stdarg.h>
#include <stddef.h>

/*
 * Find the first character of the value at `path` in text[0..len) (need
 * not end in NUL).  When an object repeats a key, the last one counts, as
 * in jansson without JSON_REJECT_DUPLICATES.  An array index is decimal
 * digits without a leading zero.  -ENOENT if there is no such value,
 * -EINVAL if `path` is not "" or "/..." or has a bad '~' escape, or if the
 * text ends early.  *line and *col are written only on success.
 */
int jpos_find(const char *text, size_t len, const char *path,
              int *line, int *col);

/*
 * Like jpos_find(), but for a path that ends in an object member, the
 * position of the member's key (its opening quote): where an "unknown key"
 * error should point.  For an array element or "", the value itself.
 */
int jpos_find_key(const char *text, size_t len, const char *path,
                  int *line, int *col);

/*
 * Append one segment to the pointer in buf (NUL-terminated, size bytes):
 * "/" and the key with '~' and '/' escaped, or "/" and the index.
 * -ENOSPC (buf unchanged) if it does not fit.
 */
int jpos_path_append_key(char *buf, size_t size, const char *key);
int jpos_path_append_index(char *buf, size_t size, size_t index);

/*
 * Write the pointer as a field name for messages: "/routes/2/reads" ->
 * "routes[2].reads" (all-digit segments print as indexes), "" -> "".
 * -EINVAL for a malformed pointer, -ENOSPC if truncated (buf still ends in
 * NUL when size > 0).
 */
int jpos_field_name(const char *path, char *buf, size_t size);

/*
 * Format an error about the value at `path` into err (errlen bytes):
 *   "FILE:LINE:COL: field 'NAME': MESSAGE"
 * with the position from jpos_find(); "FILE: field 'NAME': MESSAGE" when
 * the value cannot be found, and no "field" part when path is "".  A NULL
 * file prints as "<json>".  Returns -EINVAL, so that a loader can write
 * `return jpos_errorf(...);`.
 */
int jpos_errorf(char *err, size_t errlen, const char *file,
                const char *text, size_t len, const char *path,
                const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* The same, pointing at the key (jpos_find_key()): for unknown keys. */
int jpos_key_errorf(char *err, size_t errlen, const char *file,
                    const char *text, size_t len, const char *path,
                    const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Either of the two with a va_list: at the key if at_key is nonzero. */
int jpos_verrorf(char *err, size_t errlen, const char *file,
                 const char *text, size_t len, const char *path, int at_key,
                 const char *fmt, va_list ap)
    __attribute__((format(printf, 8, 0)));

/*
 * Copy at most max bytes of s into buf (len bytes, NUL-terminated when
 * len > 0) with control characters escaped as \n, \t or \xHH, so that a
 * message quoting a JSON text (jansson's error text, a string value, a
 * key) stays one printable line.  Returns 1 if s was cut short.
 */
int jpos_printable(char *buf, size_t len, const char *s, size_t max);

#endif /* COWLAB_JSONPOS_H */
