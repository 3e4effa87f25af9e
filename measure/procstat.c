/*
 * procstat.c -- the master's view of its workers' memory, read from /proc.
 * Parsers for smaps_rollup (rss, pss, shared/private clean/dirty) and stat
 * (minflt, majflt, CPU ticks), and the pagemap snapshot behind
 * heap_pages / heap_copied_pages (DESIGN.md "Metrics").
 * This runs in the master after fork(), so it never touches the runtime
 * heap: one malloc per snapshot, fixed stack buffers for everything else.
 * Read "Pagemap entries" below first, then count_range().  API: procstat.h.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L         /* pread(), O_CLOEXEC */
#endif
#include "procstat.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Pagemap entries (Documentation/admin-guide/mm/pagemap.rst)
 * /proc/PID/pagemap holds one 64-bit entry per virtual page, at file offset
 * (vaddr / page_size) * 8.  We use two bits:
 *   bit 63  PM_PRESENT    the page is in RAM (not swapped, not unmapped).
 *   bit 56  PM_EXCLUSIVE  the page is mapped by this process only.
 * After fork() the master and its workers share every anonymous page, so
 * no one's entry has bit 56 set.  A worker's write to a shared page makes
 * it a private copy: present and exclusive in the worker.  A page that was
 * not present at fork and is first written by the worker is exclusive too,
 * but it is new, not a copy; the snapshot bitmap is what tells them apart.
 * Entries are read PS_BATCH_PAGES at a time (one pread of 64 KiB), and
 * stretches of the ranges with no page in the snapshot are never read.
 */
#define PM_PRESENT      ((uint64_t)1 << 63)
#define PM_EXCLUSIVE    ((uint64_t)1 << 56)
#define PM_COPIED       (PM_PRESENT | PM_EXCLUSIVE)
#define PS_BATCH_PAGES  8192            /* 64 KiB of entries, 32 MiB of VM */

#define PS_STAT_BUF     4096            /* a stat line is ~ 300 bytes */
#define PS_SMAPS_BUF    8192            /* smaps_rollup is ~ 1 KiB */

/*
 * The snapshot, in one malloc: the struct, then ranges[nranges], then
 * map[], one bit per page of the ranges (LSB first within each word).
 * present == the number of bits set in map.
 */
struct ps_snap {
    size_t page_size;
    size_t nranges;
    size_t total;               /* pages in all ranges */
    size_t present;             /* heap_pages */
    ps_range_t *ranges;
    uint64_t *map;
};

/* ---- small helpers ----------------------------------------------------- */

static void
close_keep_errno(int fd)
{
    int saved = errno;

    close(fd);
    errno = saved;
}

static size_t
page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);

    return ps > 0 ? (size_t)ps : 4096;
}

/* "/proc/self/NAME" for pid 0, else "/proc/PID/NAME". */
static int
proc_path(char *buf, size_t cap, pid_t pid, const char *name)
{
    int n;

    if (pid < 0)
        return -EINVAL;
    if (pid == 0)
        n = snprintf(buf, cap, "/proc/self/%s", name);
    else
        n = snprintf(buf, cap, "/proc/%ld/%s", (long)pid, name);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    return 0;
}

static int
open_retry(const char *path)
{
    int fd;

    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

/*
 * Read all of /proc/PID/NAME into buf (cap bytes, not NUL-terminated).
 * -EOVERFLOW if it does not fit.
 */
static int
read_proc_file(pid_t pid, const char *name, char *buf, size_t cap,
               size_t *len)
{
    char path[64];
    size_t got = 0;
    ssize_t r;
    char extra;
    int fd, err;

    err = proc_path(path, sizeof(path), pid, name);
    if (err < 0)
        return err;
    fd = open_retry(path);
    if (fd < 0)
        return fd;
    for (;;) {
        if (got == cap)
            r = read(fd, &extra, 1);    /* is there more than fits? */
        else
            r = read(fd, buf + got, cap - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            err = -errno;
            goto error;
        }
        if (r == 0)
            break;
        if (got == cap) {
            err = -EOVERFLOW;
            goto error;
        }
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return 0;

error:
    close_keep_errno(fd);
    return err;
}

/*
 * Parse decimal digits at *p (before end) into *v, advancing *p.
 * -EINVAL if there are none or the value does not fit in a long.
 */
static int
parse_ulong(const char **p, const char *end, long *v)
{
    const char *q = *p;
    unsigned long acc = 0;

    if (q == end || !isdigit((unsigned char)*q))
        return -EINVAL;
    for (; q < end && isdigit((unsigned char)*q); q++) {
        unsigned d = (unsigned)(*q - '0');

        if (acc > ((unsigned long)LONG_MAX - d) / 10)
            return -EINVAL;
        acc = acc * 10 + d;
    }
    *p = q;
    *v = (long)acc;
    return 0;
}

static const char *
skip_blanks(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* ---- smaps_rollup ------------------------------------------------------ */

static const struct {
    const char *name;
    size_t off;
} smaps_fields[] = {
    { "Rss",            offsetof(ps_smaps_t, rss_kb) },
    { "Pss",            offsetof(ps_smaps_t, pss_kb) },
    { "Shared_Clean",   offsetof(ps_smaps_t, shared_clean_kb) },
    { "Shared_Dirty",   offsetof(ps_smaps_t, shared_dirty_kb) },
    { "Private_Clean",  offsetof(ps_smaps_t, private_clean_kb) },
    { "Private_Dirty",  offsetof(ps_smaps_t, private_dirty_kb) },
};
#define NSMAPS_FIELDS (sizeof(smaps_fields) / sizeof(smaps_fields[0]))

/* The field named key[0..keylen), or NULL if we do not keep it. */
static long *
smaps_field(ps_smaps_t *sm, const char *key, size_t keylen)
{
    for (size_t i = 0; i < NSMAPS_FIELDS; i++) {
        const char *name = smaps_fields[i].name;

        if (strlen(name) == keylen && memcmp(name, key, keylen) == 0)
            return (long *)(void *)((char *)sm + smaps_fields[i].off);
    }
    return NULL;
}

int
ps_parse_smaps_rollup(const char *text, size_t len, ps_smaps_t *out)
{
    const char *p = text, *end = text + len;
    ps_smaps_t sm = { -1, -1, -1, -1, -1, -1 };

    if (text == NULL || out == NULL)
        return -EINVAL;
    /*
     * One line per turn: "Name:<blanks><digits> kB".  The first line is the
     * "start-end ---p ... [rollup]" header; it and any field we do not keep
     * are skipped without a look at their value.
     */
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *colon, *q;
        long *field, v;

        if (eol == NULL)
            eol = end;
        colon = memchr(p, ':', (size_t)(eol - p));
        field = colon ? smaps_field(&sm, p, (size_t)(colon - p)) : NULL;
        if (field != NULL) {
            if (*field != -1)
                return -EINVAL;                 /* repeated */
            q = skip_blanks(colon + 1, eol);
            if (parse_ulong(&q, eol, &v) < 0)
                return -EINVAL;
            q = skip_blanks(q, eol);
            if (eol - q < 2 || q[0] != 'k' || q[1] != 'B')
                return -EINVAL;
            if (skip_blanks(q + 2, eol) != eol)
                return -EINVAL;
            *field = v;
        }
        p = eol + (eol < end);
    }
    if (sm.rss_kb < 0)
        return -EINVAL;
    *out = sm;
    return 0;
}

int
ps_read_smaps_rollup(pid_t pid, ps_smaps_t *out)
{
    char buf[PS_SMAPS_BUF];
    size_t len;
    int err;

    err = read_proc_file(pid, "smaps_rollup", buf, sizeof(buf), &len);
    if (err < 0)
        return err;
    if (len == 0)
        return -ESRCH;          /* no address space: a zombie */
    return ps_parse_smaps_rollup(buf, len, out);
}

/* ---- stat -------------------------------------------------------------- */

/*
 * "pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt
 *  majflt cmajflt utime stime ..." (proc(5)).  Numbered from the state:
 */
#define STAT_MINFLT     7
#define STAT_MAJFLT     9
#define STAT_UTIME      11
#define STAT_STIME      12

int
ps_parse_stat(const char *text, size_t len, ps_stat_t *out)
{
    const char *p, *rparen, *end = text + len;
    ps_stat_t st = { 0, 0, 0, 0, 0 };
    long v;

    if (text == NULL || out == NULL)
        return -EINVAL;
    p = text;
    if (parse_ulong(&p, end, &v) < 0)           /* pid */
        return -EINVAL;
    if (end - p < 2 || p[0] != ' ' || p[1] != '(')
        return -EINVAL;
    /* comm is anything, ')' included: the last ')' closes it. */
    for (rparen = end - 1; rparen > p + 1 && *rparen != ')'; rparen--)
        ;
    if (rparen <= p + 1)
        return -EINVAL;
    p = rparen + 1;
    if (end - p < 3 || p[0] != ' ' || !isalpha((unsigned char)p[1]))
        return -EINVAL;
    st.state = p[1];
    p += 2;
    /* After field i is read, p is just past its last digit. */
    for (int i = 1; i <= STAT_STIME; i++) {
        int neg = 0;

        if (p == end || *p != ' ')
            return -EINVAL;
        p++;
        if (p < end && *p == '-') {             /* tpgid is -1 often */
            neg = 1;
            p++;
        }
        if (parse_ulong(&p, end, &v) < 0)
            return -EINVAL;
        if (neg && i >= STAT_MINFLT)
            return -EINVAL;
        switch (i) {
        case STAT_MINFLT: st.minflt = v; break;
        case STAT_MAJFLT: st.majflt = v; break;
        case STAT_UTIME:  st.utime_ticks = v; break;
        case STAT_STIME:  st.stime_ticks = v; break;
        default: break;
        }
    }
    if (p < end && *p != ' ' && *p != '\n')
        return -EINVAL;
    *out = st;
    return 0;
}

int
ps_read_stat(pid_t pid, ps_stat_t *out)
{
    char buf[PS_STAT_BUF];
    size_t len;
    int err;

    err = read_proc_file(pid, "stat", buf, sizeof(buf), &len);
    if (err < 0)
        return err;
    return ps_parse_stat(buf, len, out);
}

/* ---- pagemap ----------------------------------------------------------- */

int
ps_pagemap_open(ps_pagemap_t *pm, pid_t pid)
{
    char path[64];
    int fd, err;

    if (pm == NULL)
        return -EINVAL;
    pm->fd = -1;
    pm->pid = pid;
    err = proc_path(path, sizeof(path), pid, "pagemap");
    if (err < 0)
        return err;
    fd = open_retry(path);
    if (fd < 0)
        return fd;
    pm->fd = fd;
    return 0;
}

void
ps_pagemap_close(ps_pagemap_t *pm)
{
    if (pm == NULL || pm->fd < 0)
        return;
    close_keep_errno(pm->fd);
    pm->fd = -1;
}

/*
 * Read the entries of the n pages from vaddr into buf, looping over short
 * reads.  The kernel answers 0 bytes once the process's address space is
 * gone (it exited, or is a zombie): -ESRCH.  It does so too past the top
 * of the user address space, where no heap range lies.
 */
static int
read_entries(int fd, uintptr_t vaddr, size_t psize, uint64_t *buf, size_t n)
{
    off_t off = (off_t)(vaddr / psize) * (off_t)sizeof(uint64_t);
    size_t want = n * sizeof(uint64_t), got = 0;

    while (got < want) {
        ssize_t r = pread(fd, (char *)buf + got, want - got,
                          off + (off_t)got);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -ESRCH;
        got += (size_t)r;
    }
    return 0;
}

static int
map_test(const uint64_t *map, size_t i)
{
    return (int)((map[i / 64] >> (i % 64)) & 1);
}

/* First set bit of map in [from, to), or to if there is none. */
static size_t
map_next(const uint64_t *map, size_t from, size_t to)
{
    size_t w;
    uint64_t word;

    if (from >= to)
        return to;
    w = from / 64;
    word = map[w] & (~(uint64_t)0 << (from % 64));
    while (word == 0) {
        if (++w * 64 >= to)
            return to;
        word = map[w];
    }
    from = w * 64 + (size_t)__builtin_ctzll(word);
    return from < to ? from : to;
}

/* Last set bit of map below to; one must be set. */
static size_t
map_last(const uint64_t *map, size_t to)
{
    size_t i = to - 1, w = i / 64;
    uint64_t word = map[w] & (~(uint64_t)0 >> (63 - i % 64));

    while (word == 0)
        word = map[--w];
    return w * 64 + 63 - (size_t)__builtin_clzll(word);
}

/*
 * Snapshot pass over one range: set map bit base + k for each present
 * page k.  Every entry of the range is read.
 */
static int
take_range(ps_snap_t *s, int fd, const ps_range_t *r, size_t base,
           uint64_t *buf)
{
    size_t n = (r->end - r->start) / s->page_size;

    for (size_t i = 0; i < n; i += PS_BATCH_PAGES) {
        size_t k = n - i < PS_BATCH_PAGES ? n - i : PS_BATCH_PAGES;
        int err = read_entries(fd, r->start + i * s->page_size,
                               s->page_size, buf, k);

        if (err < 0)
            return err;
        for (size_t j = 0; j < k; j++) {
            size_t bit = base + i + j;

            if (buf[j] & PM_PRESENT) {
                s->map[bit / 64] |= (uint64_t)1 << (bit % 64);
                s->present++;
            }
        }
    }
    return 0;
}

int
ps_snap_take_fd(ps_snap_t **out, ps_pagemap_t *pm, const ps_range_t *ranges,
                size_t nranges)
{
    uint64_t buf[PS_BATCH_PAGES];
    size_t psize = page_size(), total = 0, nwords, size, base;
    ps_snap_t *s;
    int err;

    if (out == NULL || pm == NULL || pm->fd < 0
        || (ranges == NULL && nranges > 0))
        return -EINVAL;
    *out = NULL;
    for (size_t i = 0; i < nranges; i++) {
        const ps_range_t *r = &ranges[i];
        size_t n;

        if (r->start % psize != 0 || r->end % psize != 0
            || r->end < r->start)
            return -EINVAL;
        n = (r->end - r->start) / psize;
        if (total + n < total)
            return -EINVAL;
        total += n;
    }
    nwords = total / 64 + 1;
    if (nranges > (SIZE_MAX - sizeof(*s)) / 2 / sizeof(ps_range_t)
        || nwords > SIZE_MAX / 2 / sizeof(uint64_t))
        return -ENOMEM;
    size = sizeof(*s) + nranges * sizeof(ps_range_t)
           + nwords * sizeof(uint64_t);
    s = malloc(size);
    if (s == NULL)
        return -ENOMEM;
    s->page_size = psize;
    s->nranges = nranges;
    s->total = total;
    s->present = 0;
    s->ranges = (ps_range_t *)(void *)(s + 1);
    s->map = (uint64_t *)(void *)(s->ranges + nranges);
    if (nranges > 0)
        memcpy(s->ranges, ranges, nranges * sizeof(ps_range_t));
    memset(s->map, 0, nwords * sizeof(uint64_t));

    base = 0;
    for (size_t i = 0; i < nranges; i++) {
        err = take_range(s, pm->fd, &s->ranges[i], base, buf);
        if (err < 0)
            goto error;
        base += (s->ranges[i].end - s->ranges[i].start) / psize;
    }
    *out = s;
    return 0;

error:
    free(s);
    return err;
}

int
ps_snap_take(ps_snap_t **out, pid_t pid, const ps_range_t *ranges,
             size_t nranges)
{
    ps_pagemap_t pm;
    int err;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    err = ps_pagemap_open(&pm, pid);
    if (err < 0)
        return err;
    err = ps_snap_take_fd(out, &pm, ranges, nranges);
    ps_pagemap_close(&pm);
    return err;
}

void
ps_snap_free(ps_snap_t *s)
{
    free(s);
}

size_t
ps_snap_pages(const ps_snap_t *s)
{
    return s ? s->present : 0;
}

size_t
ps_snap_total_pages(const ps_snap_t *s)
{
    return s ? s->total : 0;
}

const ps_range_t *
ps_snap_ranges(const ps_snap_t *s, size_t *nranges)
{
    if (nranges != NULL)
        *nranges = s ? s->nranges : 0;
    return s ? s->ranges : NULL;
}

/*
 * Count pass over the n pages of one range, numbered from base in the
 * snapshot, starting at vaddr.  Each turn reads one batch that begins at
 * the next snapshot page and ends after the last snapshot page within
 * PS_BATCH_PAGES of it; pages between batches are not in the snapshot.
 * After each turn, *copied counts the copied pages of [0, lo) of this
 * range (plus those of the ranges before it), and bits holds them.
 */
static int
count_range(const ps_snap_t *s, int fd, size_t base, size_t n,
            uintptr_t vaddr, uint64_t *buf, uint8_t *bits,
            const uint8_t *released, size_t *copied)
{
    size_t lo = 0, hi, count = 0;

    for (;;) {
        int err;

        lo = map_next(s->map, base + lo, base + n) - base;
        if (lo == n)
            break;
        hi = n - lo < PS_BATCH_PAGES ? n : lo + PS_BATCH_PAGES;
        hi = map_last(s->map, base + hi) + 1 - base;   /* >= lo + 1 */
        err = read_entries(fd, vaddr + lo * s->page_size, s->page_size,
                           buf, hi - lo);
        if (err < 0)
            return err;
        for (size_t j = lo; j < hi; j++) {
            size_t bit = base + j;

            if ((buf[j - lo] & PM_COPIED) == PM_COPIED
                && map_test(s->map, bit)
                && (released == NULL || !((released[bit / 8] >> (bit % 8))
                                          & 1))) {
                count++;
                if (bits != NULL)
                    bits[bit / 8] |= (uint8_t)(1u << (bit % 8));
            }
        }
        lo = hi;
    }
    *copied += count;
    return 0;
}

static int
copied_bitmap(const ps_snap_t *s, ps_pagemap_t *pm, uint8_t *bits,
              const uint8_t *released, size_t *copied)
{
    uint64_t buf[PS_BATCH_PAGES];
    size_t base = 0, count = 0;
    int err = 0;

    if (s == NULL || pm == NULL || pm->fd < 0 || copied == NULL)
        return -EINVAL;
    if (bits != NULL)
        memset(bits, 0, (s->total + 7) / 8);
    for (size_t i = 0; i < s->nranges; i++) {
        const ps_range_t *r = &s->ranges[i];
        size_t n = (r->end - r->start) / s->page_size;

        err = count_range(s, pm->fd, base, n, r->start, buf, bits,
                          released, &count);
        if (err < 0)
            goto error;
        base += n;
    }
    *copied = count;
    return 0;

error:
    if (bits != NULL)
        memset(bits, 0, (s->total + 7) / 8);
    return err;
}

int
ps_copied_bitmap_fd(const ps_snap_t *s, ps_pagemap_t *pm, uint8_t *bits,
                    size_t *copied)
{
    return copied_bitmap(s, pm, bits, NULL, copied);
}

int
ps_count_copied_fd(const ps_snap_t *s, ps_pagemap_t *pm, size_t *copied)
{
    return copied_bitmap(s, pm, NULL, NULL, copied);
}

int
ps_count_copied_excl(const ps_snap_t *s, ps_pagemap_t *pm,
                     const uint8_t *released, size_t *copied,
                     size_t *nreleased)
{
    int err = copied_bitmap(s, pm, NULL, released, copied);
    if (err == 0 && nreleased != NULL) {
        size_t n = 0;
        for (size_t i = 0; released != NULL && i < (s->total + 7) / 8; i++)
            n += (size_t)__builtin_popcount(released[i]);
        *nreleased = n;
    }
    return err;
}

size_t
ps_snap_mark(const ps_snap_t *s, uint8_t *bits, uintptr_t start,
             uintptr_t end)
{
    size_t base = 0, marked = 0;

    if (s == NULL || bits == NULL)
        return 0;
    for (size_t i = 0; i < s->nranges; i++) {
        const ps_range_t *r = &s->ranges[i];
        size_t n = (r->end - r->start) / s->page_size;
        uintptr_t lo = start > r->start ? start : r->start;
        uintptr_t hi = end < r->end ? end : r->end;
        for (uintptr_t a = lo & ~(uintptr_t)(s->page_size - 1); a < hi;
             a += s->page_size) {
            size_t bit = base + (a - r->start) / s->page_size;
            if (map_test(s->map, bit)
                && !((bits[bit / 8] >> (bit % 8)) & 1)) {
                bits[bit / 8] |= (uint8_t)(1u << (bit % 8));
                marked++;
            }
        }
        base += n;
    }
    return marked;
}

int
ps_copied_bitmap(const ps_snap_t *s, pid_t pid, uint8_t *bits,
                 size_t *copied)
{
    ps_pagemap_t pm;
    int err;

    if (s == NULL || copied == NULL)
        return -EINVAL;
    err = ps_pagemap_open(&pm, pid);
    if (err < 0) {
        if (bits != NULL)
            memset(bits, 0, (s->total + 7) / 8);
        return err;
    }
    err = ps_copied_bitmap_fd(s, &pm, bits, copied);
    ps_pagemap_close(&pm);
    return err;
}

int
ps_count_copied(const ps_snap_t *s, pid_t pid, size_t *copied)
{
    return ps_copied_bitmap(s, pid, NULL, copied);
}

int
ps_count_new_copies(const ps_snap_t *s, ps_pagemap_t *pm, uint8_t *seen,
                    uintptr_t start, uintptr_t end, size_t *out)
{
    uint64_t buf[PS_BATCH_PAGES];
    size_t base = 0, count = 0;

    if (s == NULL || pm == NULL || pm->fd < 0 || seen == NULL || out == NULL)
        return -EINVAL;
    for (size_t i = 0; i < s->nranges; i++) {
        const ps_range_t *r = &s->ranges[i];
        size_t n = (r->end - r->start) / s->page_size;
        uintptr_t lo = start > r->start ? start : r->start;
        uintptr_t hi = end < r->end ? end : r->end;
        if (lo < hi) {
            lo &= ~(uintptr_t)(s->page_size - 1);
            size_t first = (lo - r->start) / s->page_size;
            size_t np = (hi - lo + s->page_size - 1) / s->page_size;
            for (size_t k = 0; k < np; k += PS_BATCH_PAGES) {
                size_t m = np - k < PS_BATCH_PAGES ? np - k : PS_BATCH_PAGES;
                int err = read_entries(pm->fd, lo + k * s->page_size,
                                       s->page_size, buf, m);
                if (err < 0)
                    return err;
                for (size_t j = 0; j < m; j++) {
                    size_t bit = base + first + k + j;
                    if ((buf[j] & PM_COPIED) == PM_COPIED
                        && map_test(s->map, bit)
                        && !((seen[bit / 8] >> (bit % 8)) & 1)) {
                        seen[bit / 8] |= (uint8_t)(1u << (bit % 8));
                        count++;
                    }
                }
            }
        }
        base += n;
    }
    *out = count;
    return 0;
}

int
ps_snap_present(const ps_snap_t *s, size_t index)
{
    return s != NULL && index < s->total && map_test(s->map, index);
}

const uint64_t *
ps_snap_bits(const ps_snap_t *s)
{
    return s ? s->map : NULL;
}

/* ---- raw entries ------------------------------------------------------- */

int
ps_snap_each_entry(const ps_snap_t *s, ps_pagemap_t *pm, ps_entry_fn fn,
                   void *arg)
{
    uint64_t buf[PS_BATCH_PAGES];
    size_t base = 0;

    if (s == NULL || pm == NULL || pm->fd < 0 || fn == NULL)
        return -EINVAL;
    for (size_t i = 0; i < s->nranges; i++) {
        const ps_range_t *r = &s->ranges[i];
        size_t n = (r->end - r->start) / s->page_size, lo = 0, hi;

        /* As count_range(): batches from one snapshot page to the last
         * snapshot page within PS_BATCH_PAGES of it. */
        for (;;) {
            int err;

            lo = map_next(s->map, base + lo, base + n) - base;
            if (lo == n)
                break;
            hi = n - lo < PS_BATCH_PAGES ? n : lo + PS_BATCH_PAGES;
            hi = map_last(s->map, base + hi) + 1 - base;
            err = read_entries(pm->fd, r->start + lo * s->page_size,
                               s->page_size, buf, hi - lo);
            if (err < 0)
                return err;
            for (size_t j = lo; j < hi; j++)
                if (map_test(s->map, base + j))
                    fn(arg, base + j, r->start + j * s->page_size,
                       buf[j - lo]);
            lo = hi;
        }
        base += n;
    }
    return 0;
}

uintptr_t
ps_snap_addr(const ps_snap_t *s, size_t index)
{
    size_t base = 0;

    for (size_t i = 0; s != NULL && i < s->nranges; i++) {
        size_t n = (s->ranges[i].end - s->ranges[i].start) / s->page_size;

        if (index < base + n)
            return s->ranges[i].start + (index - base) * s->page_size;
        base += n;
    }
    return 0;
}

/* ---- raw entries of any range (cowlab attach) ------------------------- */

int
ps_pagemap_read(ps_pagemap_t *pm, uintptr_t vaddr, uint64_t *buf, size_t n)
{
    if (pm == NULL || pm->fd < 0 || (buf == NULL && n > 0))
        return -EINVAL;
    return read_entries(pm->fd, vaddr, page_size(), buf, n);
}
