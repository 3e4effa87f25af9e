/*
 * fuzz_jsonpos.c -- libFuzzer target for server/jsonpos.c, the scanner
 * that turns a JSON pointer into file:line:column for the config and
 * workload error messages.
 *
 * Input: a JSON pointer up to the first '\n' (at most 255 bytes), then
 * the JSON text.  The text is an exact-size heap copy (no NUL after it)
 * so that ASan sees any read past the end; jsonpos must stay in bounds on
 * any text, valid or not.
 *
 * Oracles (abort() on violation), for texts jansson accepts:
 *   - differential: jpos_find() finds the pointer exactly when jansson's
 *     tree has a value there (last duplicate key wins in both), and
 *     -ENOENT otherwise;
 *   - the line:column it returns is the first character of a value ('{',
 *     '[', '"', '-', a digit, 't', 'f', 'n'), and for jpos_find_key() of
 *     an object member, the key's opening '"';
 *   - jpos_field_name() and the path builders stay inside their buffers.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsonpos.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static _Noreturn void
fz_fail(const char *what, const char *ptr)
{
    fprintf(stderr, "fuzz_jsonpos: %s (pointer \"%s\")\n", what,
            ptr ? ptr : "");
    abort();
}

/*
 * RFC 6901 on jansson's tree.  Returns the value, or NULL if there is
 * none; *bad = 1 if the pointer itself is malformed (no leading '/', bad
 * '~' escape).  *last_is_member: the final step was an object member.
 */
static json_t *
fz_resolve(json_t *root, const char *ptr, int *bad, int *last_is_member)
{
    char seg[256];
    const char *p = ptr;

    *bad = 0;
    *last_is_member = 0;
    if (*p == '\0')
        return root;
    if (*p != '/') {
        *bad = 1;
        return NULL;
    }
    while (*p == '/') {
        size_t n = 0;

        p++;
        while (*p != '\0' && *p != '/') {
            if (*p == '~') {
                if (p[1] != '0' && p[1] != '1') {
                    *bad = 1;
                    return NULL;
                }
                seg[n++] = p[1] == '0' ? '~' : '/';
                p += 2;
            } else {
                seg[n++] = *p++;
            }
        }
        seg[n] = '\0';
        if (root == NULL)
            continue;                   /* keep checking the syntax */
        if (json_is_object(root)) {
            root = json_object_get(root, seg);
            *last_is_member = 1;
        } else if (json_is_array(root)) {
            char *end;
            unsigned long k;

            *last_is_member = 0;
            if (n == 0 || (seg[0] == '0' && n > 1)
                || strspn(seg, "0123456789") != n) {
                root = NULL;
                continue;
            }
            k = strtoul(seg, &end, 10);
            root = json_array_get(root, k);
        } else {
            root = NULL;
        }
    }
    return root;
}

/* Byte offset of line:col (col counts UTF-8 lead bytes), or len. */
static size_t
fz_offset(const char *t, size_t len, int line, int col)
{
    size_t i = 0;
    int l = 1, c = 1;

    while (i < len && (l < line || c < col)) {
        unsigned char ch = (unsigned char)t[i++];

        if (ch == '\n') {
            l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80) {
            c++;
        }
        while (i < len && ((unsigned char)t[i] & 0xC0) == 0x80)
            i++;                        /* continuation bytes stay put */
    }
    return i;
}

static void
fz_check_buffers(const char *ptr)
{
    char buf[300], small[8];
    size_t k;
    int rc;

    for (k = 0; k <= sizeof small; k++) {
        memset(small, 'Z', sizeof small);
        rc = jpos_field_name(ptr, small, k);
        if (k > 0 && memchr(small, '\0', k) == NULL)
            fz_fail("jpos_field_name: no NUL inside the buffer", ptr);
        if (k < sizeof small && small[k] != 'Z')
            fz_fail("jpos_field_name wrote past the buffer", ptr);
        (void)rc;
    }
    snprintf(buf, sizeof buf, "/a");
    rc = jpos_path_append_key(buf, sizeof buf, ptr);
    if (rc == 0 && strlen(buf) >= sizeof buf)
        fz_fail("jpos_path_append_key overflow", ptr);
    memset(small, 0, sizeof small);
    if (jpos_path_append_key(small, sizeof small, ptr) == 0
        && strlen(small) >= sizeof small)
        fz_fail("jpos_path_append_key overflow (small)", ptr);
    memset(small, 0, sizeof small);
    (void)jpos_path_append_index(small, sizeof small, strlen(ptr) * 977);
    if (memchr(small, '\0', sizeof small) == NULL)
        fz_fail("jpos_path_append_index: no NUL", ptr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size < 256 ? size : 256);
    char ptr[256], err[512];
    char *text;
    size_t plen, tlen;
    json_t *root, *v;
    json_error_t je;
    int line = 0, col = 0, rc, rck, bad, member, kline = 0, kcol = 0;

    if (nl == NULL || size > 65536)
        return 0;
    plen = (size_t)(nl - data);
    if (memchr(data, '\0', plen) != NULL)
        return 0;
    memcpy(ptr, data, plen);
    ptr[plen] = '\0';
    tlen = size - plen - 1;
    text = malloc(tlen ? tlen : 1);
    if (text == NULL)
        return 0;
    memcpy(text, nl + 1, tlen);

    rc = jpos_find(text, tlen, ptr, &line, &col);
    rck = jpos_find_key(text, tlen, ptr, &kline, &kcol);
    (void)jpos_errorf(err, sizeof err, "f.json", text, tlen, ptr, "x %d", 1);
    (void)jpos_key_errorf(err, 16, NULL, text, tlen, ptr, "y");
    fz_check_buffers(ptr);
    if (rc == 0 && (line < 1 || col < 1))
        fz_fail("position below 1:1", ptr);

    root = json_loadb(text, tlen, JSON_DECODE_ANY, &je);
    if (root != NULL) {
        v = fz_resolve(root, ptr, &bad, &member);
        if (bad) {
            if (rc != -EINVAL)
                fz_fail("malformed pointer not rejected", ptr);
        } else if (v == NULL) {
            if (rc != -ENOENT)
                fz_fail("jpos_find found what jansson does not have", ptr);
        } else {
            size_t off;
            char ch;

            if (rc != 0)
                fz_fail("jpos_find missed a value jansson has", ptr);
            off = fz_offset(text, tlen, line, col);
            ch = off < tlen ? text[off] : '\0';
            if (!strchr("{[\"-0123456789tfn", ch) || ch == '\0')
                fz_fail("position is not the start of a value", ptr);
            if (rck != 0)
                fz_fail("jpos_find_key failed where jpos_find worked", ptr);
            off = fz_offset(text, tlen, kline, kcol);
            ch = off < tlen ? text[off] : '\0';
            if (member && ch != '"')
                fz_fail("key position is not a '\"'", ptr);
            if (!member && (kline != line || kcol != col))
                fz_fail("jpos_find_key differs for a non-member", ptr);
        }
        json_decref(root);
    }
    free(text);
    return 0;
}
