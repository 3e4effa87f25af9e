/*
 * errmsg.c -- the shared wording of the JSON loaders' error messages
 * (API and the message shapes: errmsg.h).
 */
#include "errmsg.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "jsonpos.h"

#define SHOW_STRING_BYTES 40    /* of a string value, in a message */

void
emsg_set(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- wording ---------------------------------------------------------- */

void
emsg_expect_int(char *buf, size_t len, long long min, long long max)
{
    if (max >= LONG_MAX)
        snprintf(buf, len, "an integer >= %lld", min);
    else
        snprintf(buf, len, "an integer from %lld to %lld", min, max);
}

void
emsg_expect_number(char *buf, size_t len, double min, int min_open,
                   double max)
{
    if (min_open)
        snprintf(buf, len, "a number > %g and <= %g", min, max);
    else
        snprintf(buf, len, "a number from %g to %g", min, max);
}

void
emsg_describe(const json_t *v, char *buf, size_t len)
{
    char text[4 * SHOW_STRING_BYTES + 1];
    size_t n;
    int cut;

    if (len == 0)
        return;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        snprintf(buf, len, "an object");
        break;
    case JSON_ARRAY:
        n = json_array_size(v);
        if (n == 0)
            snprintf(buf, len, "an empty array");
        else
            snprintf(buf, len, "an array of %zu item%s", n,
                     n == 1 ? "" : "s");
        break;
    case JSON_STRING:
        /* one printable line: see jpos_printable() */
        cut = jpos_printable(text, sizeof text, json_string_value(v),
                             SHOW_STRING_BYTES);
        snprintf(buf, len, "the string \"%s%s\"", text, cut ? "..." : "");
        break;
    case JSON_INTEGER:
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(buf, len, "%.17g", json_real_value(v));
        if (strcspn(buf, ".eni") == strlen(buf))
            strncat(buf, ".0", len - strlen(buf) - 1);
        break;
    case JSON_TRUE:
        snprintf(buf, len, "true");
        break;
    case JSON_FALSE:
        snprintf(buf, len, "false");
        break;
    case JSON_NULL:
        snprintf(buf, len, "null");
        break;
    }
}

/* ---- did you mean ----------------------------------------------------- */

size_t
emsg_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t row[64];

    if (la > 63 || lb > 63)
        return SIZE_MAX;
    /* row[j]: the distance between a[0..i) and b[0..j) */
    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);

            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

void
emsg_near_init(emsg_near_t *n, const char *word)
{
    n->word = word;
    n->best = NULL;
    n->bestd = SIZE_MAX;
}

void
emsg_near_try(emsg_near_t *n, const char *candidate)
{
    size_t d = emsg_distance(n->word, candidate);

    if (d < n->bestd) {
        n->bestd = d;
        n->best = candidate;
    }
}

const char *
emsg_near_result(const emsg_near_t *n)
{
    size_t limit = strlen(n->word) / 3;

    if (limit < 2)
        limit = 2;
    return n->bestd <= limit ? n->best : NULL;
}

/* ---- messages about a JSON document ----------------------------------- */

int
emsg_read_error(char *err, size_t errlen, const char *file, const char *what,
                int rc)
{
    emsg_set(err, errlen, "%s: cannot read %s: %s", file, what,
             strerror(-rc));
    return rc;
}

int
emsg_parse_object(const emsg_src_t *src, const char *what, const char *want,
                  json_t **out)
{
    json_error_t je;
    json_t *root;
    size_t i;

    *out = NULL;
    for (i = 0; i < src->len && isspace((unsigned char)src->text[i]); i++)
        ;
    if (i == src->len) {
        emsg_set(src->err, src->errlen, "%s: empty %s, expected %s",
                 src->file, what, want);
        return -EINVAL;
    }
    root = json_loadb(src->text, src->len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        char jtext[4 * JSON_ERROR_TEXT_LENGTH];

        jpos_printable(jtext, sizeof jtext, je.text, sizeof je.text);
        emsg_set(src->err, src->errlen, "%s:%d:%d: invalid JSON: %s",
                 src->file, je.line, je.column, jtext);
        return -EINVAL;
    }
    if (!json_is_object(root)) {
        int rc = emsg_bad_value(src, "", want, root);

        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}

int
emsg_bad_value(const emsg_src_t *src, const char *ptr, const char *want,
               const json_t *v)
{
    char found[4 * SHOW_STRING_BYTES + 32];

    emsg_describe(v, found, sizeof found);
    return emsg_at(src, ptr, "expected %s, found %s", want, found);
}

int
emsg_unknown_key(const emsg_src_t *src, const char *ptr, const char *near,
                 const char *hint)
{
    if (near != NULL)
        return jpos_key_errorf(src->err, src->errlen, src->file, src->text,
                               src->len, ptr,
                               "unknown key, did you mean '%s'?", near);
    return jpos_key_errorf(src->err, src->errlen, src->file, src->text,
                           src->len, ptr, "unknown key (%s)", hint);
}

int
emsg_at(const emsg_src_t *src, const char *ptr, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = jpos_verrorf(src->err, src->errlen, src->file, src->text, src->len,
                      ptr, 0, fmt, ap);
    va_end(ap);
    return rc;
}

int
emsg_oom(const emsg_src_t *src)
{
    emsg_set(src->err, src->errlen, "%s: out of memory", src->file);
    return -ENOMEM;
}
