/*
 * fuzz_attach.c -- libFuzzer target for the /proc parsers of
 * measure/attach.c (cowlab attach): att_parse_maps(),
 * att_parse_stat_ppid(), att_parse_children() and att_parse_range().
 * All run on every input, from an exact-size heap copy (no NUL after it,
 * except for att_parse_range, which takes a C string), so that ASan sees
 * any read past the end.
 *
 * Oracles (abort() on violation):
 *   - maps: every range page aligned with start < end; no range when n
 *     is 0; the bytes kept with a size limit plus the bytes it left out
 *     are the bytes kept without one; on error *out is NULL;
 *   - stat: a success gives a ppid >= 0; a failure leaves both outputs;
 *   - children: a success gives pids > 0, never more than the room;
 *   - range: a success is page aligned with start < end.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static _Noreturn void
fz_fail(const char *what)
{
    fprintf(stderr, "fuzz_attach: %s\n", what);
    abort();
}

static uint64_t
fz_bytes(const ps_range_t *r, size_t n)
{
    uint64_t b = 0;
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);

    for (size_t i = 0; i < n; i++) {
        if (r[i].start >= r[i].end || r[i].start % ps || r[i].end % ps)
            fz_fail("maps: a bad range");
        b += r[i].end - r[i].start;
    }
    return b;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text, *str;
    ps_range_t *r = (ps_range_t *)1, *r2 = NULL;
    size_t n = 7, n2 = 0;
    att_skipped_t sk;

    if (size > 65536)
        return 0;
    text = malloc(size ? size : 1);
    str = malloc(size + 1);
    if (text == NULL || str == NULL) {
        free(text);
        free(str);
        return 0;
    }
    memcpy(text, data, size);
    memcpy(str, data, size);
    str[size] = '\0';

    int e = att_parse_maps(text, size, 0, &r, &n, NULL);
    if (e == 0) {
        if ((n == 0) != (r == NULL))
            fz_fail("maps: ranges and count disagree");
        uint64_t all = fz_bytes(r, n);
        if (att_parse_maps(text, size, 1 << 20, &r2, &n2, &sk) != 0)
            fz_fail("maps: a size limit made it fail");
        if (fz_bytes(r2, n2) + sk.bytes != all)
            fz_fail("maps: kept + left out != all");
        free(r2);
        free(r);
    } else if (e != -EINVAL && e != -ENOMEM) {
        fz_fail("maps: an unexpected error");
    }

    pid_t ppid = -7;
    unsigned long long st = 12345;
    if (att_parse_stat_ppid(text, size, &ppid, &st) == 0) {
        if (ppid < 0)
            fz_fail("stat: negative ppid");
    } else if (ppid != -7 || st != 12345) {
        fz_fail("stat: outputs written on failure");
    }

    pid_t kids[8];
    size_t k = 0;
    int ce = att_parse_children(text, size, kids, 8, &k);
    if (k > 8)
        fz_fail("children: past the room");
    if (ce == 0)
        for (size_t i = 0; i < k; i++)
            if (kids[i] <= 0)
                fz_fail("children: a pid <= 0");

    ps_range_t one;
    if (att_parse_range(str, &one) == 0)
        (void)fz_bytes(&one, 1);

    free(text);
    free(str);
    return 0;
}
