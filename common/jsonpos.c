/*
 * jsonpos.c -- locate a value or key in a JSON text by JSON pointer, for
 * error messages with file:line:column (API and conventions: jsonpos.h).
 * The text has already been parsed by jansson, so the scanner trusts the
 * grammar and only keeps enough of it to walk: strings (with escapes, so
 * that a '}' or '"' inside one is not mistaken for structure), containers
 * by depth, and scalars up to the next delimiter.  It still checks bounds
 * at every step and returns -EINVAL rather than read past the end.
 */
#include "jsonpos.h"
#include "ascii.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/*
 * The scanner's cursor.  Invariant: line and col are the position of
 * text[i]: col counts UTF-8 lead bytes (and ASCII) since the last '\n',
 * so continuation bytes never move it.
 */
typedef struct scan {
    const char *text;
    size_t len;
    size_t i;
    int line;
    int col;
} scan_t;

static int
peek(const scan_t *s)
{
    return s->i < s->len ? (unsigned char)s->text[s->i] : -1;
}

static void
advance(scan_t *s)
{
    unsigned char ch = (unsigned char)s->text[s->i++];

    if (ch == '\n') {
        s->line++;
        s->col = 1;
    } else if ((ch & 0xC0) != 0x80) {
        s->col++;
    }
}

static void
skip_ws(scan_t *s)
{
    int ch;

    while ((ch = peek(s)) == ' ' || ch == '\t' || ch == '\n' || ch == '\r')
        advance(s);
}

/* At '"': move past the closing quote. */
static int
skip_string(scan_t *s)
{
    int ch;

    advance(s);                                 /* opening quote */
    while ((ch = peek(s)) != -1) {
        advance(s);
        if (ch == '"')
            return 0;
        if (ch == '\\') {
            if (peek(s) == -1)
                break;
            advance(s);        /* escaped char; \uXXXX digits are plain */
        }
    }
    return -EINVAL;
}

/* At the first character of a value: move past its last character. */
static int
skip_value(scan_t *s)
{
    int ch = peek(s);
    int depth = 0;

    if (ch == -1)
        return -EINVAL;
    if (ch == '"')
        return skip_string(s);
    if (ch != '[' && ch != '{') {
        /*
         * number, true, false, null: up to a delimiter.  Not at a NUL:
         * strchr() finds the terminator, and jansson takes "1\0" as 1
         * (it drops a NUL after a number), so the scan must go on to
         * the ',' as jansson did.  Found by fuzz_jsonpos.
         */
        while ((ch = peek(s)) != -1
               && (ch == '\0' || !strchr(",]} \t\r\n", ch)))
            advance(s);
        return 0;
    }
    /* A container: depth counts the brackets open since its own. */
    while ((ch = peek(s)) != -1) {
        if (ch == '"') {
            if (skip_string(s) < 0)
                return -EINVAL;
            continue;
        }
        advance(s);
        if (ch == '[' || ch == '{')
            depth++;
        else if ((ch == ']' || ch == '}') && --depth == 0)
            return 0;
    }
    return -EINVAL;
}

/*
 * Next byte of a pointer segment seg[0..n) with "~0" and "~1" decoded;
 * -1 at its end.  The segment was checked by check_path().
 */
static int
seg_next(const char *seg, size_t n, size_t *j)
{
    if (*j >= n)
        return -1;
    if (seg[*j] == '~') {
        *j += 2;
        return seg[*j - 1] == '0' ? '~' : '/';
    }
    return (unsigned char)seg[(*j)++];
}

/* At the 'u' of "\uXXXX": read the 4 digits.  -1 if malformed. */
static long
read_u4(scan_t *s)
{
    long v = 0;
    int k;

    advance(s);                                 /* 'u' */
    for (k = 0; k < 4; k++) {
        int d = ascii_hexval(peek(s));

        if (d < 0)
            return -1;
        v = v * 16 + d;
        advance(s);
    }
    return v;
}

/* Encode code point cp as UTF-8 into out; returns the byte count. */
static int
utf8_put(unsigned long cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* At the '\\' of an escape: decode it into out; returns the byte count. */
static int
read_escape(scan_t *s, unsigned char *out)
{
    int ch;
    long cp, lo;

    advance(s);                                 /* backslash */
    switch (ch = peek(s)) {
    case 'b': out[0] = '\b'; break;
    case 'f': out[0] = '\f'; break;
    case 'n': out[0] = '\n'; break;
    case 'r': out[0] = '\r'; break;
    case 't': out[0] = '\t'; break;
    case '"': case '\\': case '/': out[0] = (unsigned char)ch; break;
    case 'u':
        if ((cp = read_u4(s)) < 0)
            return -EINVAL;
        /* A high surrogate followed by "\uDC00".."\uDFFF" is one char. */
        if (cp >= 0xD800 && cp <= 0xDBFF && peek(s) == '\\'
            && s->i + 1 < s->len && s->text[s->i + 1] == 'u') {
            scan_t save = *s;

            advance(s);
            lo = read_u4(s);
            if (lo >= 0xDC00 && lo <= 0xDFFF)
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else
                *s = save;          /* not a pair: next escape stands alone */
        }
        return utf8_put((unsigned long)cp, out);
    default:
        return -EINVAL;
    }
    advance(s);
    return 1;
}

/*
 * At the opening quote of a key: consume the string and compare its decoded
 * bytes with the decoded segment.  1 if equal, 0 if not, -EINVAL if the
 * text ends inside it.
 */
static int
key_matches(scan_t *s, const char *seg, size_t seglen)
{
    unsigned char buf[4];
    size_t j = 0;
    int same = 1;
    int ch, k, m;

    advance(s);                                 /* opening quote */
    for (;;) {
        if ((ch = peek(s)) == -1)
            return -EINVAL;
        if (ch == '"') {
            advance(s);
            break;
        }
        if (ch == '\\') {
            if ((m = read_escape(s, buf)) < 0)
                return -EINVAL;
        } else {
            buf[0] = (unsigned char)ch;
            m = 1;
            advance(s);
        }
        for (k = 0; k < m && same; k++)
            same = seg_next(seg, seglen, &j) == buf[k];
    }
    return same && seg_next(seg, seglen, &j) == -1;
}

/* Parse an array index segment: digits, no leading zero.  -1 if not. */
static long
seg_index(const char *seg, size_t n)
{
    long v = 0;
    size_t k;

    if (n == 0 || (n > 1 && seg[0] == '0'))
        return -1;
    for (k = 0; k < n; k++) {
        if (seg[k] < '0' || seg[k] > '9' || v > (0x7fffffffL - 9) / 10)
            return -1;
        v = v * 10 + (seg[k] - '0');
    }
    return v;
}

/* "" or "/seg/seg..." with '~' only in "~0" or "~1". */
static int
check_path(const char *path)
{
    const char *p;

    if (path == NULL || (*path != '\0' && *path != '/'))
        return -EINVAL;
    for (p = path; *p; p++)
        if (*p == '~' && p[1] != '0' && p[1] != '1')
            return -EINVAL;
    return 0;
}

/*
 * In an object, at '{': find the member whose key matches seg.  On return
 * *key and *val hold the cursor at the last matching key and at its value.
 */
static int
find_member(scan_t *s, const char *seg, size_t seglen,
            scan_t *key, scan_t *val)
{
    int found = 0;
    int rc, ch;

    advance(s);                                 /* '{' */
    skip_ws(s);
    if (peek(s) == '}')
        return -ENOENT;
    for (;;) {
        scan_t at_key;

        skip_ws(s);
        if (peek(s) != '"')
            return -EINVAL;
        at_key = *s;
        if ((rc = key_matches(s, seg, seglen)) < 0)
            return rc;
        skip_ws(s);
        if (peek(s) != ':')
            return -EINVAL;
        advance(s);
        skip_ws(s);
        if (rc) {                   /* keep going: the last one counts */
            found = 1;
            *key = at_key;
            *val = *s;
        }
        if (skip_value(s) < 0)
            return -EINVAL;
        skip_ws(s);
        ch = peek(s);
        if (ch == '}')
            break;
        if (ch != ',')
            return -EINVAL;
        advance(s);
    }
    return found ? 0 : -ENOENT;
}

/* In an array, at '[': leave the cursor at element `index`. */
static int
find_element(scan_t *s, long index)
{
    long k;
    int ch;

    advance(s);                                 /* '[' */
    skip_ws(s);
    if (peek(s) == ']')
        return -ENOENT;
    for (k = 0;; k++) {
        skip_ws(s);
        if (k == index)
            return 0;
        if (skip_value(s) < 0)
            return -EINVAL;
        skip_ws(s);
        ch = peek(s);
        if (ch == ']')
            return -ENOENT;
        if (ch != ',')
            return -EINVAL;
        advance(s);
    }
}

/*
 * Walk the path one segment at a time.  Loop invariant: the cursor is at
 * (or before whitespace preceding) the value that the part of the path
 * already consumed names.
 */
static int
locate(const char *text, size_t len, const char *path, int want_key,
       int *line, int *col)
{
    scan_t s = { text, len, 0, 1, 1 };
    scan_t key = s, val = s;
    int rc;

    if (text == NULL || (rc = check_path(path)) < 0)
        return -EINVAL;
    for (;;) {
        const char *seg, *next;
        size_t seglen;
        long index;

        skip_ws(&s);
        if (*path == '\0')
            break;
        seg = path + 1;
        seglen = strcspn(seg, "/");
        next = seg + seglen;
        switch (peek(&s)) {
        case '{':
            if ((rc = find_member(&s, seg, seglen, &key, &val)) < 0)
                return rc;
            if (*next == '\0' && want_key) {
                s = key;
                goto done;
            }
            s = val;
            break;
        case '[':
            if ((index = seg_index(seg, seglen)) < 0)
                return -ENOENT;
            if ((rc = find_element(&s, index)) < 0)
                return rc;
            break;
        case -1:
            return -EINVAL;
        default:
            return -ENOENT;                     /* a scalar has no members */
        }
        path = next;
    }
done:
    if (peek(&s) == -1)
        return -EINVAL;
    *line = s.line;
    *col = s.col;
    return 0;
}

int
jpos_find(const char *text, size_t len, const char *path, int *line,
          int *col)
{
    return locate(text, len, path, 0, line, col);
}

int
jpos_find_key(const char *text, size_t len, const char *path, int *line,
              int *col)
{
    return locate(text, len, path, 1, line, col);
}

int
jpos_path_append_key(char *buf, size_t size, const char *key)
{
    size_t n = strlen(buf);
    size_t need = 1;
    const char *k;
    char *p;

    for (k = key; *k; k++)
        need += (*k == '~' || *k == '/') ? 2 : 1;
    if (n + need + 1 > size)
        return -ENOSPC;
    p = buf + n;
    *p++ = '/';
    for (k = key; *k; k++) {
        if (*k == '~' || *k == '/') {
            *p++ = '~';
            *p++ = *k == '~' ? '0' : '1';
        } else {
            *p++ = *k;
        }
    }
    *p = '\0';
    return 0;
}

int
jpos_path_append_index(char *buf, size_t size, size_t index)
{
    size_t n = strlen(buf);
    int w;

    if (n >= size)
        return -ENOSPC;
    w = snprintf(buf + n, size - n, "/%zu", index);
    if (w < 0 || (size_t)w >= size - n) {
        buf[n] = '\0';
        return -ENOSPC;
    }
    return 0;
}

int
jpos_field_name(const char *path, char *buf, size_t size)
{
    size_t o = 0;
    int trunc = 0;
    const char *p = path;

    if (check_path(path) < 0) {
        if (size > 0)
            buf[0] = '\0';
        return -EINVAL;
    }
/* Append one char, remembering whether anything was dropped. */
#define PUT(ch) do {                                \
        if (o + 1 < size) buf[o++] = (char)(ch);    \
        else trunc = 1;                             \
    } while (0)
    while (*p == '/') {
        const char *seg = p + 1;
        size_t seglen = strcspn(seg, "/"), j = 0;
        int ch;

        if (seg_index(seg, seglen) >= 0) {
            PUT('[');
            while ((ch = seg_next(seg, seglen, &j)) != -1)
                PUT(ch);
            PUT(']');
        } else {
            if (p != path)
                PUT('.');
            while ((ch = seg_next(seg, seglen, &j)) != -1)
                PUT(ch);
        }
        p = seg + seglen;
    }
#undef PUT
    if (size > 0)
        buf[o] = '\0';
    return trunc || size == 0 ? -ENOSPC : 0;
}

int
jpos_verrorf(char *err, size_t errlen, const char *file, const char *text,
             size_t len, const char *path, int at_key, const char *fmt,
             va_list ap)
{
    char field[256], shown[4 * 256];
    size_t o;
    int line, col, w;

    if (errlen == 0)
        return -EINVAL;
    if (file == NULL)
        file = "<json>";
    if (locate(text, len, path, at_key, &line, &col) == 0)
        w = snprintf(err, errlen, "%s:%d:%d: ", file, line, col);
    else
        w = snprintf(err, errlen, "%s: ", file);
    o = w < 0 ? 0 : (size_t)w;
    if (o < errlen && path != NULL && *path != '\0') {
        jpos_field_name(path, field, sizeof field);
        jpos_printable(shown, sizeof shown, field, sizeof field);
        w = snprintf(err + o, errlen - o, "field '%s': ", shown);
        o += w < 0 ? 0 : (size_t)w;
    }
    if (o < errlen)
        vsnprintf(err + o, errlen - o, fmt, ap);
    return -EINVAL;
}

int
jpos_errorf(char *err, size_t errlen, const char *file, const char *text,
            size_t len, const char *path, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = jpos_verrorf(err, errlen, file, text, len, path, 0, fmt, ap);
    va_end(ap);
    return rc;
}

int
jpos_key_errorf(char *err, size_t errlen, const char *file,
                const char *text, size_t len, const char *path,
                const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = jpos_verrorf(err, errlen, file, text, len, path, 1, fmt, ap);
    va_end(ap);
    return rc;
}

/*
 * Messages quote the user's file: jansson's error text and string values
 * can hold raw newlines and terminal escapes, which must not reach
 * stderr as they are.  Found by fuzz_config.
 */
int
jpos_printable(char *buf, size_t len, const char *s, size_t max)
{
    size_t i, o = 0;

    for (i = 0; s[i] != '\0' && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[5];
        size_t n;

        if (ch == '\n')
            memcpy(esc, "\\n", 3);
        else if (ch == '\t')
            memcpy(esc, "\\t", 3);
        else if (ch < 0x20 || ch == 0x7f)
            snprintf(esc, sizeof esc, "\\x%02x", ch);
        else
            esc[0] = (char)ch, esc[1] = '\0';
        n = strlen(esc);
        if (o + n + 1 > len)
            break;
        memcpy(buf + o, esc, n);
        o += n;
    }
    if (len > 0)
        buf[o] = '\0';
    return s[i] != '\0';
}
