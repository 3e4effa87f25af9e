/*
 * fuzz_procstat.c -- libFuzzer target for the /proc parsers of
 * server/procstat.c: ps_parse_smaps_rollup() and ps_parse_stat().
 * Both run on every input, from an exact-size heap copy (no NUL after
 * it), so that ASan sees any read past the end.
 *
 * Oracles (abort() on violation):
 *   - *out is written only on success (procstat.h);
 *   - smaps: a success has rss_kb >= 0 and every field >= -1 (-1: the
 *     kernel has no such line), and the values are those a plain
 *     reference parser finds for lines "Name:<blanks>digits kB";
 *   - stat: a success has a letter as state and counters >= 0.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procstat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static _Noreturn void
fz_fail(const char *what)
{
    fprintf(stderr, "fuzz_procstat: %s\n", what);
    abort();
}

/* The value of the line "name:<blanks>DIGITS<blanks>kB<blanks>" in
 * text, or -1 if there is no such line (first match; the parser rejects
 * repeats, so a success has exactly one). */
static long
fz_ref_field(const char *text, size_t len, const char *name)
{
    size_t nl = strlen(name), i = 0;

    while (i < len) {
        const char *line = text + i;
        const char *eol = memchr(line, '\n', len - i);
        size_t ll = eol ? (size_t)(eol - line) : len - i;

        if (ll > nl && memcmp(line, name, nl) == 0 && line[nl] == ':') {
            size_t j = nl + 1;
            long v = 0;

            while (j < ll && (line[j] == ' ' || line[j] == '\t'))
                j++;
            while (j < ll && isdigit((unsigned char)line[j]))
                v = v * 10 + (line[j++] - '0');
            return v;
        }
        i += ll + 1;
    }
    return -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = { "Rss", "Pss", "Shared_Clean",
        "Shared_Dirty", "Private_Clean", "Private_Dirty" };
    char *text;
    ps_smaps_t sm, sm0;
    ps_stat_t st, st0;
    long got[6];
    size_t i;

    if (size > 65536)
        return 0;
    text = malloc(size ? size : 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);

    memset(&sm, 0x5a, sizeof sm);
    sm0 = sm;
    if (ps_parse_smaps_rollup(text, size, &sm) == 0) {
        got[0] = sm.rss_kb;
        got[1] = sm.pss_kb;
        got[2] = sm.shared_clean_kb;
        got[3] = sm.shared_dirty_kb;
        got[4] = sm.private_clean_kb;
        got[5] = sm.private_dirty_kb;
        if (sm.rss_kb < 0)
            fz_fail("smaps: success without Rss");
        for (i = 0; i < 6; i++) {
            if (got[i] < -1)
                fz_fail("smaps: field below -1");
            if (got[i] != fz_ref_field(text, size, names[i])) {
                fprintf(stderr, "%s: parser %ld, reference %ld\n", names[i],
                        got[i], fz_ref_field(text, size, names[i]));
                fz_fail("smaps: value differs from the reference");
            }
        }
    } else if (memcmp(&sm, &sm0, sizeof sm) != 0) {
        fz_fail("smaps: *out written on error");
    }

    memset(&st, 0x5a, sizeof st);
    st0 = st;
    if (ps_parse_stat(text, size, &st) == 0) {
        if (!isalpha((unsigned char)st.state))
            fz_fail("stat: state is not a letter");
        if (st.minflt < 0 || st.majflt < 0 || st.utime_ticks < 0
            || st.stime_ticks < 0)
            fz_fail("stat: negative counter");
    } else if (memcmp(&st, &st0, sizeof st) != 0) {
        fz_fail("stat: *out written on error");
    }
    free(text);
    return 0;
}
