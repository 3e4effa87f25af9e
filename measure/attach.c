/*
 * attach.c -- the /proc side of `cowlab attach`: the master's private
 * anonymous ranges (maps), its children (task/TID/children or a scan of
 * /proc), and page frames read from pagemap and compared page by page
 * between a worker and the master.  API and the classification rules:
 * attach.h; read "Page frames" below first, then att_classify().
 *
 * Read-only: every file here is opened O_RDONLY; nothing writes to,
 * signals or stops the process it reads.
 */
#include "attach.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ascii.h"
#include "fileio.h"

/*
 * Page frames (Documentation/admin-guide/mm/pagemap.rst)
 *   bit 63     present in RAM
 *   bit 56     exclusively mapped (by this process only)
 *   bits 0-54  page frame number, when present; zero unless the reader
 *              had CAP_SYS_ADMIN when it opened the pagemap file (since
 *              Linux 4.2; before, only root could open it at all)
 * After fork() the master and a worker map the same frame at the same
 * address until one of them writes: the writer gets a new frame (copy on
 * write), the other keeps the old one.  So comparing the worker's frame
 * with the master's says whether the page is still shared, and the
 * master's frame against its own earlier one says whether the master
 * wrote it.  The exclusive bit alone cannot say who wrote: after the
 * master writes, a page that one worker alone still maps is exclusive in
 * that worker although it copied nothing; that is why it is an upper
 * bound.
 */
#define PM_PRESENT      ((uint64_t)1 << 63)
#define PM_EXCLUSIVE    ((uint64_t)1 << 56)
#define PM_PFN          (((uint64_t)1 << 55) - 1)
#define PM_FRAME        (PM_PRESENT | PM_PFN)   /* what "same frame" compares */

#define BATCH_PAGES     32768           /* 256 KiB of entries, 128 MiB of VM */
#define MAPS_MAX        ((size_t)64 << 20)
#define SMALL_FILE      4096

static size_t
page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);

    return ps > 0 ? (size_t)ps : 4096;
}

/* ---- the heap: /proc/PID/maps ------------------------------------------ */

static const char *
skip_blanks(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* A hex number at *p, up to end; -EINVAL if none or it overflows. */
static int
parse_hex(const char **p, const char *end, uintptr_t *v)
{
    const char *q = *p;
    uintptr_t acc = 0;

    if (q == end || ascii_hexval((unsigned char)*q) < 0)
        return -EINVAL;
    for (; q < end && ascii_hexval((unsigned char)*q) >= 0; q++) {
        if (acc > (UINTPTR_MAX >> 4))
            return -EINVAL;
        acc = acc << 4 | (uintptr_t)ascii_hexval((unsigned char)*q);
    }
    *p = q;
    *v = acc;
    return 0;
}

/* The next blank-separated field of [*p, end): its start and length. */
static int
next_field(const char **p, const char *end, const char **f, size_t *len)
{
    const char *q = skip_blanks(*p, end);
    const char *s = q;

    while (q < end && *q != ' ' && *q != '\t')
        q++;
    if (q == s)
        return -EINVAL;
    *f = s;
    *len = (size_t)(q - s);
    *p = q;
    return 0;
}

/* 1 if the mapping named path[0..len) (after the inode) is private
 * anonymous memory we count as heap. */
static int
heap_name(const char *path, size_t len)
{
    if (len == 0)
        return 1;                               /* anonymous, unnamed */
    if (len == 6 && memcmp(path, "[heap]", 6) == 0)
        return 1;
    if (len > 7 && memcmp(path, "[anon:", 6) == 0 && path[len - 1] == ']')
        return 1;                               /* prctl(PR_SET_VMA) name */
    return 0;       /* files, [stack], [vdso], [vvar], [vsyscall], ... */
}

static int
push_range(ps_range_t **r, size_t *n, size_t *cap, uintptr_t lo,
           uintptr_t hi)
{
    if (*n > 0 && (*r)[*n - 1].end == lo) {     /* adjacent: one range */
        (*r)[*n - 1].end = hi;
        return 0;
    }
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        ps_range_t *t = realloc(*r, c * sizeof **r);

        if (t == NULL)
            return -ENOMEM;
        *r = t;
        *cap = c;
    }
    (*r)[*n].start = lo;
    (*r)[*n].end = hi;
    (*n)++;
    return 0;
}

int
att_parse_maps(const char *text, size_t len, uint64_t max_bytes,
               ps_range_t **out, size_t *n, att_skipped_t *skipped)
{
    const char *p = text, *end = text + len;
    size_t psize = page_size(), cnt = 0, cap = 0;
    ps_range_t *r = NULL;
    att_skipped_t sk = { 0, 0 };
    int err = -EINVAL;

    if (text == NULL || out == NULL || n == NULL)
        return -EINVAL;
    /* "start-end perms offset dev inode [path]", one mapping a line; the
     * path runs to the end of the line (it may hold blanks). */
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *f, *q;
        size_t flen;
        uintptr_t lo, hi;

        if (eol == NULL)
            eol = end;
        if (eol == p) {                         /* empty line */
            p = eol + 1;
            continue;
        }
        q = p;
        if (parse_hex(&q, eol, &lo) < 0 || q == eol || *q != '-')
            goto error;
        q++;
        if (parse_hex(&q, eol, &hi) < 0 || lo >= hi || lo % psize != 0
            || hi % psize != 0)
            goto error;
        if (next_field(&q, eol, &f, &flen) < 0 || flen != 4)  /* perms */
            goto error;
        int readable = f[0] == 'r', private = f[3] == 'p';
        if (next_field(&q, eol, &f, &flen) < 0)         /* offset */
            goto error;
        if (next_field(&q, eol, &f, &flen) < 0)         /* dev */
            goto error;
        if (next_field(&q, eol, &f, &flen) < 0)         /* inode */
            goto error;
        for (size_t i = 0; i < flen; i++)
            if (f[i] < '0' || f[i] > '9')
                goto error;
        int no_inode = flen == 1 && f[0] == '0';
        q = skip_blanks(q, eol);
        if (readable && private && no_inode
            && heap_name(q, (size_t)(eol - q))) {
            if (max_bytes && hi - lo > max_bytes) {
                sk.n++;
                sk.bytes += hi - lo;
            } else {
                err = push_range(&r, &cnt, &cap, lo, hi);
                if (err < 0)
                    goto error;
                err = -EINVAL;
            }
        }
        p = eol + (eol < end);
    }
    *out = r;
    *n = cnt;
    if (skipped)
        *skipped = sk;
    return 0;

error:
    free(r);
    return err;
}

int
att_read_maps(pid_t pid, uint64_t max_bytes, ps_range_t **out, size_t *n,
              att_skipped_t *skipped)
{
    char path[64];
    char *text;
    size_t len;
    int err;

    if (pid <= 0)
        return -EINVAL;
    snprintf(path, sizeof path, "/proc/%ld/maps", (long)pid);
    err = fio_read_file(path, MAPS_MAX, &text, &len);
    if (err < 0)
        return err;
    err = att_parse_maps(text, len, max_bytes, out, n, skipped);
    free(text);
    return err;
}

static int
cmp_range(const void *a, const void *b)
{
    const ps_range_t *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

int
att_clip_ranges(ps_range_t **r, size_t *n, const ps_range_t *keep,
                size_t nkeep)
{
    ps_range_t *out = NULL, *k;
    size_t cnt = 0, cap = 0;

    if (r == NULL || n == NULL || (keep == NULL && nkeep > 0))
        return -EINVAL;
    k = malloc((nkeep ? nkeep : 1) * sizeof *k);
    if (k == NULL)
        return -ENOMEM;
    if (nkeep)
        memcpy(k, keep, nkeep * sizeof *k);
    qsort(k, nkeep, sizeof *k, cmp_range);
    /* merge overlapping keeps so a page is kept once */
    size_t m = 0;
    for (size_t i = 0; i < nkeep; i++) {
        if (m > 0 && k[i].start <= k[m - 1].end) {
            if (k[i].end > k[m - 1].end)
                k[m - 1].end = k[i].end;
        } else {
            k[m++] = k[i];
        }
    }
    qsort(*r, *n, sizeof **r, cmp_range);
    for (size_t i = 0; i < *n; i++) {
        for (size_t j = 0; j < m; j++) {
            uintptr_t lo = (*r)[i].start > k[j].start ? (*r)[i].start
                                                      : k[j].start;
            uintptr_t hi = (*r)[i].end < k[j].end ? (*r)[i].end : k[j].end;

            if (lo < hi && push_range(&out, &cnt, &cap, lo, hi) < 0) {
                free(out);
                free(k);
                return -ENOMEM;
            }
        }
    }
    free(k);
    free(*r);
    *r = out;
    *n = cnt;
    return 0;
}

int
att_parse_range(const char *s, ps_range_t *out)
{
    const char *p = s, *end;
    uintptr_t lo, hi;
    size_t psize = page_size();

    if (s == NULL || out == NULL)
        return -EINVAL;
    end = s + strlen(s);
    if (end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        p += 2;
    if (parse_hex(&p, end, &lo) < 0 || p == end || *p != '-')
        return -EINVAL;
    p++;
    if (end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        p += 2;
    if (parse_hex(&p, end, &hi) < 0 || p != end)
        return -EINVAL;
    if (lo >= hi || lo % psize != 0 || hi % psize != 0)
        return -EINVAL;
    out->start = lo;
    out->end = hi;
    return 0;
}

/* ---- the workers ------------------------------------------------------- */

/* Read a small /proc file whole into buf (cap bytes, NUL-terminated). */
static int
read_small(const char *path, char *buf, size_t cap, size_t *len)
{
    size_t got = 0;
    int fd;

    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -errno;
    while (got + 1 < cap) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *len = got;
    return 0;
}

/* Fields after the state, numbered from it (proc(5): ppid is field 4,
 * starttime field 22 of the line; the state is field 3). */
#define STAT_PPID       1
#define STAT_STARTTIME  19

int
att_parse_stat_ppid(const char *text, size_t len, pid_t *ppid,
                    unsigned long long *starttime)
{
    const char *end = text + len, *rp, *p;
    unsigned long long v = 0, pp = 0;

    if (text == NULL || ppid == NULL || starttime == NULL)
        return -EINVAL;
    /* comm may hold anything, ')' included: fields follow the last ')' */
    for (rp = end; rp > text && rp[-1] != ')'; rp--)
        ;
    if (rp == text)
        return -EINVAL;
    p = rp;                                     /* just after ')' */
    if (end - p < 2 || p[0] != ' ')
        return -EINVAL;
    p += 2;                                     /* the state letter */
    for (int i = 1; i <= STAT_STARTTIME; i++) {
        int neg = 0;

        if (p == end || *p != ' ')
            return -EINVAL;
        p++;
        if (p < end && *p == '-') {
            neg = 1;
            p++;
        }
        if (p == end || *p < '0' || *p > '9')
            return -EINVAL;
        for (v = 0; p < end && *p >= '0' && *p <= '9'; p++) {
            if (v > (ULLONG_MAX - 9) / 10)
                return -EINVAL;
            v = v * 10 + (unsigned long long)(*p - '0');
        }
        if (neg && (i == STAT_PPID || i == STAT_STARTTIME))
            return -EINVAL;
        if (i == STAT_PPID)
            pp = v;
    }
    if (pp > INT_MAX)
        return -EINVAL;
    *ppid = (pid_t)pp;
    *starttime = v;
    return 0;
}

int
att_proc_start(pid_t pid, pid_t *ppid, unsigned long long *starttime)
{
    char path[64], buf[SMALL_FILE];
    size_t len;
    int err;

    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    err = read_small(path, buf, sizeof buf, &len);
    if (err < 0)
        return err;
    return att_parse_stat_ppid(buf, len, ppid, starttime);
}

int
att_parse_children(const char *text, size_t len, pid_t *out, size_t cap,
                   size_t *n)
{
    const char *p = text, *end = text + len;

    if (text == NULL || n == NULL || (out == NULL && cap > 0))
        return -EINVAL;
    while (p < end) {
        unsigned long v = 0;

        if (*p == ' ' || *p == '\n' || *p == '\t') {
            p++;
            continue;
        }
        if (*p < '0' || *p > '9')
            return -EINVAL;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            v = v * 10 + (unsigned long)(*p - '0');
            if (v > INT_MAX)
                return -EINVAL;
        }
        if (v == 0)
            return -EINVAL;
        if (*n >= cap)
            return -ENOSPC;
        out[(*n)++] = (pid_t)v;
    }
    return 0;
}

static int
is_number(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Through /proc/PID/task/TID/children, every thread's.  -ENOENT if the
 * kernel has no such files. */
static int
children_files(pid_t pid, pid_t *out, size_t cap, size_t *n)
{
    char path[320], buf[SMALL_FILE * 4];
    struct dirent *de;
    DIR *d;
    int err = 0, any = 0;

    snprintf(path, sizeof path, "/proc/%ld/task", (long)pid);
    d = opendir(path);
    if (d == NULL)
        return errno == ENOENT ? -ESRCH : -errno;
    while (err == 0 && (de = readdir(d)) != NULL) {
        size_t len;

        if (!is_number(de->d_name))
            continue;
        snprintf(path, sizeof path, "/proc/%ld/task/%s/children", (long)pid,
                 de->d_name);
        int r = read_small(path, buf, sizeof buf, &len);
        if (r == -ENOENT && !any) {
            /* no such file: the kernel lacks CONFIG_PROC_CHILDREN, or the
             * thread just exited; the caller tells them apart */
            err = -ENOENT;
            break;
        }
        if (r < 0)
            continue;                           /* a thread that exited */
        any = 1;
        err = att_parse_children(buf, len, out, cap, n);
    }
    closedir(d);
    return err;
}

/* Through every /proc/N/stat: the processes whose parent is pid. */
static int
children_scan(pid_t pid, pid_t *out, size_t cap, size_t *n)
{
    char path[300], buf[SMALL_FILE];
    struct dirent *de;
    DIR *d;
    int err = 0;

    d = opendir("/proc");
    if (d == NULL)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        pid_t ppid;
        unsigned long long st;
        size_t len;

        if (!is_number(de->d_name))
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        if (read_small(path, buf, sizeof buf, &len) < 0
            || att_parse_stat_ppid(buf, len, &ppid, &st) < 0
            || ppid != pid)
            continue;                           /* gone, or not a child */
        if (*n >= cap) {
            err = -ENOSPC;
            break;
        }
        out[(*n)++] = (pid_t)strtol(de->d_name, NULL, 10);
    }
    closedir(d);
    return err;
}

int
att_children(pid_t pid, pid_t *out, size_t cap, size_t *n, int force_scan,
             att_children_how_t *how)
{
    pid_t ppid;
    unsigned long long st;
    int err;

    if (pid <= 0 || n == NULL || (out == NULL && cap > 0))
        return -EINVAL;
    *n = 0;
    err = att_proc_start(pid, &ppid, &st);
    if (err < 0)
        return err == -ENOENT ? -ESRCH : err;
    if (!force_scan) {
        err = children_files(pid, out, cap, n);
        if (err != -ENOENT) {
            if (how)
                *how = ATT_CHILDREN_FILE;
            return err;
        }
        *n = 0;
    }
    if (how)
        *how = ATT_CHILDREN_SCAN;
    err = children_scan(pid, out, cap, n);
    if (err == 0 && att_proc_start(pid, &ppid, &st) < 0)
        return -ESRCH;          /* it died during the scan */
    return err;
}

/* ---- page frames ------------------------------------------------------- */

struct att_frames {
    int refs;
    size_t page_size;
    size_t nranges;
    size_t total;               /* pages in all ranges */
    size_t present;             /* entries with bit 63 */
    ps_range_t *ranges;
    uint64_t *e;                /* total entries */
};

int
att_frames_new(att_frames_t **out, const ps_range_t *r, size_t n)
{
    size_t psize = page_size(), total = 0;
    att_frames_t *f;

    if (out == NULL || (r == NULL && n > 0))
        return -EINVAL;
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        if (r[i].start % psize != 0 || r[i].end % psize != 0
            || r[i].end < r[i].start)
            return -EINVAL;
        size_t k = (r[i].end - r[i].start) / psize;
        if (total + k < total)
            return -EINVAL;
        total += k;
    }
    if (total > SIZE_MAX / sizeof(uint64_t) - 1
        || n > SIZE_MAX / sizeof(ps_range_t) - 1)
        return -ENOMEM;
    f = calloc(1, sizeof *f);
    if (f == NULL)
        return -ENOMEM;
    f->ranges = malloc((n ? n : 1) * sizeof(ps_range_t));
    f->e = calloc(total ? total : 1, sizeof(uint64_t));
    if (f->ranges == NULL || f->e == NULL) {
        free(f->ranges);
        free(f->e);
        free(f);
        return -ENOMEM;
    }
    if (n)
        memcpy(f->ranges, r, n * sizeof(ps_range_t));
    f->refs = 1;
    f->page_size = psize;
    f->nranges = n;
    f->total = total;
    *out = f;
    return 0;
}

int
att_frames_like(att_frames_t **out, const att_frames_t *f)
{
    if (f == NULL)
        return -EINVAL;
    return att_frames_new(out, f->ranges, f->nranges);
}

att_frames_t *
att_frames_ref(att_frames_t *f)
{
    if (f)
        f->refs++;
    return f;
}

void
att_frames_unref(att_frames_t *f)
{
    if (f == NULL || --f->refs > 0)
        return;
    free(f->ranges);
    free(f->e);
    free(f);
}

int
att_frames_unique(const att_frames_t *f)
{
    return f != NULL && f->refs == 1;
}

int
att_frames_read(att_frames_t *f, ps_pagemap_t *pm)
{
    size_t base = 0, present = 0;

    if (f == NULL || pm == NULL || pm->fd < 0)
        return -EINVAL;
    for (size_t i = 0; i < f->nranges; i++) {
        size_t n = (f->ranges[i].end - f->ranges[i].start) / f->page_size;
        int err = n ? ps_pagemap_read(pm, f->ranges[i].start, f->e + base, n)
                    : 0;

        if (err < 0)
            return err;
        for (size_t j = 0; j < n; j++)
            present += (f->e[base + j] & PM_PRESENT) != 0;
        base += n;
    }
    f->present = present;
    return 0;
}

size_t
att_frames_pages(const att_frames_t *f)
{
    return f ? f->total : 0;
}

size_t
att_frames_present(const att_frames_t *f)
{
    return f ? f->present : 0;
}

const ps_range_t *
att_frames_ranges(const att_frames_t *f, size_t *n)
{
    if (n)
        *n = f ? f->nranges : 0;
    return f ? f->ranges : NULL;
}

const uint64_t *
att_frames_entries(const att_frames_t *f)
{
    return f ? f->e : NULL;
}

int
att_frames_have_pfn(const att_frames_t *f)
{
    int seen = 0;

    for (size_t i = 0; f != NULL && i < f->total; i++) {
        if (!(f->e[i] & PM_PRESENT))
            continue;
        if (f->e[i] & PM_PFN)
            return 1;
        seen = 1;
    }
    return seen ? 0 : -1;
}

/* ---- classification ---------------------------------------------------- */

void
att_classify(const uint64_t *base, const uint64_t *now, const uint64_t *w,
             size_t n, att_method_t method, att_counts_t *acc)
{
    att_counts_t c = { 0, 0, 0, 0, 0, 0 };

    /* After page i: c holds the counts of pages [0, i], and for pages
     * present in the base, heap_pages = shared + copied + by_master +
     * absent (ATT_PFN) or >= copied + absent (ATT_EXCLUSIVE). */
    for (size_t i = 0; i < n; i++) {
        uint64_t b = base[i], x = w[i];

        if (!(b & PM_PRESENT)) {
            c.new_pages += (x & PM_PRESENT) != 0;
            continue;
        }
        c.heap_pages++;
        if (!(x & PM_PRESENT)) {
            c.absent++;
        } else if (method == ATT_PFN) {
            uint64_t m = now[i];

            if ((x & PM_FRAME) == (m & PM_FRAME))
                c.shared++;
            else if ((m & PM_FRAME) != (b & PM_FRAME))
                c.by_master++;
            else
                c.copied++;
        } else if (x & PM_EXCLUSIVE) {
            c.copied++;
        }
    }
    acc->heap_pages += c.heap_pages;
    acc->shared += c.shared;
    acc->copied += c.copied;
    acc->by_master += c.by_master;
    acc->new_pages += c.new_pages;
    acc->absent += c.absent;
}

int
att_count(const att_frames_t *base, const att_frames_t *now,
          ps_pagemap_t *pm, att_method_t method, att_counts_t *out)
{
    uint64_t *buf;
    size_t off = 0;
    int err = 0;

    if (base == NULL || now == NULL || pm == NULL || pm->fd < 0
        || out == NULL)
        return -EINVAL;
    if (base->total != now->total || base->nranges != now->nranges)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    buf = malloc(BATCH_PAGES * sizeof *buf);
    if (buf == NULL)
        return -ENOMEM;
    for (size_t i = 0; err == 0 && i < base->nranges; i++) {
        const ps_range_t *r = &base->ranges[i];
        size_t n = (r->end - r->start) / base->page_size;

        for (size_t k = 0; err == 0 && k < n; k += BATCH_PAGES) {
            size_t m = n - k < BATCH_PAGES ? n - k : BATCH_PAGES;

            err = ps_pagemap_read(pm, r->start + k * base->page_size, buf, m);
            if (err == 0)
                att_classify(base->e + off + k, now->e + off + k, buf, m,
                             method, out);
        }
        off += n;
    }
    free(buf);
    if (err < 0)
        memset(out, 0, sizeof *out);
    return err;
}
