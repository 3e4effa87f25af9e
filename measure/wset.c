/*
 * wset.c -- exact write sets: every heap page a worker copies, credited
 * to the request, collection or teardown that copied it (API: wset.h).
 *
 * The mechanism (Linux 6.7+; Documentation/admin-guide/mm/userfaultfd.rst
 * "Write Protect Notifications", pagemap.rst "Pagemap Scan IOCTL"):
 *   - After fork() the worker registers the snapshot's ranges (the heap
 *     pages the master had at fork) with a userfaultfd in write-protect
 *     mode, with UFFD_FEATURE_WP_ASYNC: a write to a protected page is
 *     resolved by the kernel itself (it clears the page's uffd-wp bit and
 *     goes on; no thread handles anything), and with WP_UNPOPULATED even
 *     pages not yet present carry the protection.  UFFDIO_WRITEPROTECT
 *     then protects every page of every range.
 *   - PAGEMAP_SCAN on /proc/self/pagemap with category PAGE_IS_WRITTEN
 *     returns, as runs of pages, those whose protection is gone: written
 *     since they were protected.  PAGE_IS_WPALLOWED in the mask keeps out
 *     memory not registered (an arena unmapped and its address reused).
 *   - A snapshot page is shared with the master until its first write,
 *     which copies it.  So "written since protected" is "copied", and the
 *     pages a scan reports that the previous one did not are exactly the
 *     copies made in between.  The copied bitmap (one bit per snapshot
 *     page) tells new from old.
 *
 * The cost model, and why it is built this way:
 *   - Protection faults.  A protected page faults on its next write.  For
 *     a still-shared page that fault happens anyway (copy-on-write), and
 *     the kernel resolves both in one fault: tracking copies costs no
 *     extra fault.  A copied page is never protected again (re-protecting
 *     it would make it fault at every write after each scan: refcount
 *     writes hit the same pages on every request, and a fault costs
 *     1 us on bare metal, 20-40 us in the VM this was measured in).  So
 *     each inherited page faults at most once in the worker's life.
 *   - Scans.  A scan costs a walk of the ranges' page tables plus one
 *     output record per written page: about 0.05 ms for an untouched
 *     110 MiB heap, 0.4 ms once three quarters of it are copied.  Too
 *     much around every request (about 1 ms of CPU each).  But a copy
 *     always takes a page fault: when the minor-fault count has not moved
 *     since the last scan, nothing can have been copied, and the scan is
 *     skipped (ms_wset_close's minflt).  A warm worker takes no fault in
 *     most requests, so it almost never scans; a young one scans after
 *     requests that faulted anyway.  Exactness does not depend on it:
 *     a skipped scan is one that would have found nothing.
 *   - Memory about to be unmapped (an empty arena, a large block) is
 *     scanned first (ms_wset_close_range), or its copies would vanish.
 *   - written_pages (every page a request writes, copied before or not:
 *     the write rate) needs the copied pages protected again, which is the
 *     expensive part; it is sampled: ms_wset_sample_begin protects every
 *     page (PAGEMAP_SCAN with PM_SCAN_WP_MATCHING), ms_wset_sample_end
 *     counts what the sampled interval wrote and lifts the protection from
 *     the copied pages it did not write (UFFDIO_WRITEPROTECT off, run by
 *     run; or off for the whole range and on again for the shared pages,
 *     whichever needs fewer calls), so the rest of the worker's life pays
 *     nothing for it.  The server samples one request per
 *     --write-sample-ms.
 *   - The master's heap_copied_pages: the worker's own count, read from
 *     its stats slot (nothing to walk).  ms_wset_count_written, the same
 *     scan on another process's pagemap, counts from outside: 2.2 ms per
 *     GiB against 12.6 for reading 8 bytes of pagemap per page
 *     (bench_sampler).
 *   - Measured (make bench, a 2-core VM): in a worker's first seconds of
 *     load, while it copies most of the heap, the scans take about 4-5%
 *     of its CPU time, the getrusage of each close about 1%; warm, much
 *     less.  Exact pagemap bracketing cost about 55%.
 * Every buffer here is mmap()ed: a malloc()ed one could share a page with
 * a heap range's edge (large blocks are page-rounded) and copy it.
 */
#include "wset.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "clock.h"

/* ---- the kernel's interface, where Debian bookworm's headers (Linux 6.1)
 * lack it (include/uapi/linux/userfaultfd.h and fs.h of Linux 6.7) ------- */

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef PAGEMAP_SCAN
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_HUGE (1 << 6)
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
struct page_region {
    __u64 start;
    __u64 end;                  /* exclusive */
    __u64 categories;
};
struct pm_scan_arg {
    __u64 size;
    __u64 flags;
    __u64 start;
    __u64 end;
    __u64 walk_end;             /* where the walk stopped (vec full) */
    __u64 vec;
    __u64 vec_len;
    __u64 max_pages;
    __u64 category_inverted;
    __u64 category_mask;
    __u64 category_anyof_mask;
    __u64 return_mask;
};
#endif

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "wset.c reads procstat's byte bitmaps as 64-bit words: little endian"
#endif

#define VEC_LEN 4096            /* regions per PAGEMAP_SCAN call (96 KiB) */

struct ms_wset {
    const ps_snap_t *snap;
    const ps_range_t *ranges;
    size_t nranges;
    const uint64_t *present;    /* the snapshot's bitmap */
    size_t total;               /* bits in it */
    size_t psize;
    int uffd;
    ps_pagemap_t pm;            /* our own pagemap */
    uint64_t *copied;           /* snapshot pages copied (total bits) */
    uint64_t *sampled;          /* pages written in the sampled interval */
    uint64_t *prot;             /* scratch: pages still protected */
    uint64_t *gone;             /* pages released (unmapped) since fork */
    size_t *rbase;              /* snapshot index of each range's first */
    size_t npresent, ncopied;   /* snapshot pages; of those, copied */
    size_t nreleased;           /* snapshot pages released since fork */
    struct page_region *vec;
    size_t map_len;             /* of the one mapping holding all this */
    long last_flt;              /* minflt read before the last full scan */
    uint64_t epoch;
    uint64_t n[MS_NCAUSES];
    const uint8_t *kinds;
    uint64_t kind_n[MS_NCAUSES][MS_NKINDS];
    uint64_t scans, skipped;
    uint64_t busy_ns;           /* time in scans, samples and their upkeep */
};

/* ---- small helpers ------------------------------------------------------ */

/* "what: strerror(err)" into why. */
static void
say(char *why, size_t len, const char *what, int err)
{
    if (why != NULL && len > 0)
        snprintf(why, len, "%s: %s", what, strerror(err));
}

static int
bit(const uint64_t *m, size_t i)
{
    return (int)((m[i / 64] >> (i % 64)) & 1);
}

/* Mask of bits [lo, hi) within word w (lo, hi absolute). */
static uint64_t
word_mask(size_t w, size_t lo, size_t hi)
{
    size_t a = lo > w * 64 ? lo - w * 64 : 0;
    size_t b = hi < (w + 1) * 64 ? hi - w * 64 : 64;
    uint64_t m = b == 64 ? ~(uint64_t)0 : ((uint64_t)1 << b) - 1;
    return m & ~(((uint64_t)1 << a) - 1);
}

static int
uffd_open(void)
{
    int fd = (int)syscall(SYS_userfaultfd,
                          O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd < 0 && errno == EINVAL)      /* before Linux 5.11 */
        fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

/* The userfaultfd in asynchronous write-protect mode; -errno and why. */
static int
uffd_async_wp(char *why, size_t len)
{
    struct utsname u;
    int fd = uffd_open();
    if (fd < 0) {
        say(why, len, fd == -ENOSYS ? "userfaultfd (kernel built without "
            "it)" : "userfaultfd", -fd);
        return fd;
    }
    struct uffdio_api api = {
        .api = UFFD_API,
        .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
    };
    if (ioctl(fd, UFFDIO_API, &api) < 0
        || !(api.features & UFFD_FEATURE_WP_ASYNC)) {
        int e = errno ? errno : EINVAL;
        close(fd);
        if (uname(&u) < 0)
            u.release[0] = '\0';
        if (why && len)
            snprintf(why, len, "kernel %s has no UFFD_FEATURE_WP_ASYNC "
                     "(Linux 6.7+)", u.release);
        return -e;
    }
    return fd;
}

static int
wp_range(int uffd, uintptr_t start, uintptr_t end, int on)
{
    struct uffdio_writeprotect wp = {
        .range = { .start = start, .len = end - start },
        .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
    };
    if (start >= end)
        return 0;
    while (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
        if (errno != EINTR && errno != EAGAIN)
            return -errno;
    }
    return 0;
}

static int
register_range(int uffd, uintptr_t start, uintptr_t end)
{
    struct uffdio_register reg = {
        .range = { .start = start, .len = end - start },
        .mode = UFFDIO_REGISTER_MODE_WP,
    };
    if (start >= end)
        return 0;
    return ioctl(uffd, UFFDIO_REGISTER, &reg) < 0 ? -errno : 0;
}

/*
 * One PAGEMAP_SCAN over [start, end) for written pages in registered
 * memory (inverted: for those still protected), as many calls as the vec
 * needs; fn(arg, start, end) for each run found, in address order.  flags: 0, or PM_SCAN_WP_MATCHING to protect
 * them again (then vec may be NULL: the kernel's fast path).
 */
typedef void (*run_fn)(void *arg, uintptr_t start, uintptr_t end);

static int
scan(int fd, uintptr_t start, uintptr_t end, uint64_t flags, int inverted,
     struct page_region *vec, size_t veclen, run_fn fn, void *arg)
{
    while (start < end) {
        struct pm_scan_arg a;
        memset(&a, 0, sizeof a);
        a.size = sizeof a;
        a.flags = flags;
        a.start = start;
        a.end = end;
        a.vec = (uintptr_t)vec;
        a.vec_len = vec ? veclen : 0;
        a.category_mask = PAGE_IS_WRITTEN | PAGE_IS_WPALLOWED;
        a.category_inverted = inverted ? PAGE_IS_WRITTEN : 0;
        a.return_mask = PAGE_IS_WRITTEN;
        long r = ioctl(fd, PAGEMAP_SCAN, &a);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (long i = 0; i < r && fn; i++)
            fn(arg, (uintptr_t)vec[i].start, (uintptr_t)vec[i].end);
        if (a.walk_end <= start)
            return -EIO;            /* no progress: never loop forever */
        start = (uintptr_t)a.walk_end;
    }
    return 0;
}

/* ---- the probe ------------------------------------------------------------ */

int
ms_wset_probe(char *why, size_t whylen)
{
    const char *off = getenv("COWLAB_NO_WRITE_SETS");
    if (off && *off && strcmp(off, "0") != 0) {
        if (why && whylen)
            snprintf(why, whylen, "COWLAB_NO_WRITE_SETS is set");
        return -ENOSYS;
    }
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    int fd = uffd_async_wp(why, whylen), pm = -1, err = 0;
    if (fd < 0)
        return fd;
    char *mem = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        err = -errno;
        say(why, whylen, "mmap", -err);
        close(fd);
        return err;
    }
    uintptr_t a = (uintptr_t)mem, b = a + 2 * ps;
    struct page_region vec[4];
    uintptr_t found[2] = { 0, 0 };
    if ((err = register_range(fd, a, b)) < 0
        || (err = wp_range(fd, a, b, 1)) < 0) {
        say(why, whylen, "userfaultfd write-protect", -err);
        goto out;
    }
    mem[ps] = 1;                        /* the second page only */
    pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pm < 0) {
        err = -errno;
        say(why, whylen, "/proc/self/pagemap", -err);
        goto out;
    }
    struct pm_scan_arg s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    s.start = a;
    s.end = b;
    s.vec = (uintptr_t)vec;
    s.vec_len = 4;
    s.category_mask = PAGE_IS_WRITTEN | PAGE_IS_WPALLOWED;
    s.return_mask = PAGE_IS_WRITTEN;
    long r = ioctl(pm, PAGEMAP_SCAN, &s);
    if (r < 0) {
        err = -errno;
        if (err == -ENOTTY || err == -EINVAL)
            say(why, whylen, "no PAGEMAP_SCAN ioctl (Linux 6.7+)", -err);
        else
            say(why, whylen, "PAGEMAP_SCAN", -err);
        goto out;
    }
    if (r == 1) {
        found[0] = (uintptr_t)vec[0].start;
        found[1] = (uintptr_t)vec[0].end;
    }
    if (r != 1 || found[0] != a + ps || found[1] != b) {
        err = -EPROTO;
        if (why && whylen)
            snprintf(why, whylen, "PAGEMAP_SCAN did not report exactly the "
                     "page written (%ld runs)", r);
    }
out:
    if (pm >= 0)
        close(pm);
    munmap(mem, 2 * ps);
    close(fd);
    return err;
}

/* ---- a worker's tracking -------------------------------------------------- */

static void
wset_unmap(ms_wset_t *w)
{
    munmap(w, w->map_len);
}

void
ms_wset_free(ms_wset_t *w)
{
    if (w == NULL)
        return;
    if (w->uffd >= 0)
        close(w->uffd);
    ps_pagemap_close(&w->pm);
    wset_unmap(w);
}

/* Lift the protection from the copied pages, one call per run of them
 * (the pages copied before tracking began, and after a sample). */
static int
unprotect_runs(ms_wset_t *w, const uint64_t *set, const uint64_t *minus)
{
    size_t base = 0;
    for (size_t r = 0; r < w->nranges; r++) {
        const ps_range_t *rg = &w->ranges[r];
        size_t n = (rg->end - rg->start) / w->psize, i = 0;
        while (i < n) {
            size_t k = base + i;
            if (!bit(set, k) || (minus && bit(minus, k))) {
                i++;
                continue;
            }
            size_t j = i + 1;
            while (j < n && bit(set, base + j)
                   && !(minus && bit(minus, base + j)))
                j++;
            int err = wp_range(w->uffd, rg->start + i * w->psize,
                               rg->start + j * w->psize, 0);
            if (err < 0)
                return err;
            i = j;
        }
        base += n;
    }
    return 0;
}

int
ms_wset_start(ms_wset_t **out, const ps_snap_t *snap, char *why,
              size_t whylen)
{
    size_t psize = (size_t)sysconf(_SC_PAGESIZE), nranges, total, words;
    const ps_range_t *ranges = ps_snap_ranges(snap, &nranges);
    int err;

    *out = NULL;
    if (snap == NULL) {
        say(why, whylen, "no heap snapshot", EINVAL);
        return -EINVAL;
    }
    total = ps_snap_total_pages(snap);
    words = total / 64 + 1;
    size_t len = sizeof(ms_wset_t) + 4 * words * sizeof(uint64_t)
                 + VEC_LEN * sizeof(struct page_region)
                 + nranges * sizeof(size_t);
    len = (len + psize - 1) & ~(psize - 1);
    /* Populated now: a scan's own first touch of its buffers would be a
     * fault, and so a needless scan at the next close. */
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
        err = -errno;
        say(why, whylen, "mmap", -err);
        return err;
    }
    ms_wset_t *w = p;                   /* zero-filled */
    w->map_len = len;
    w->snap = snap;
    w->ranges = ranges;
    w->nranges = nranges;
    w->present = ps_snap_bits(snap);
    w->total = total;
    w->psize = psize;
    w->pm.fd = -1;
    w->copied = (uint64_t *)(void *)(w + 1);
    w->sampled = w->copied + words;
    w->prot = w->sampled + words;
    w->gone = w->prot + words;
    w->vec = (struct page_region *)(void *)(w->gone + words);
    w->rbase = (size_t *)(void *)(w->vec + VEC_LEN);
    for (size_t r = 0, b = 0; r < nranges; r++) {
        w->rbase[r] = b;
        b += (ranges[r].end - ranges[r].start) / psize;
    }
    w->npresent = ps_snap_pages(snap);
    w->uffd = uffd_async_wp(why, whylen);
    if (w->uffd < 0) {
        err = w->uffd;
        w->uffd = -1;
        goto error;
    }
    for (size_t r = 0; r < nranges; r++) {
        err = register_range(w->uffd, ranges[r].start, ranges[r].end);
        if (err == 0)
            err = wp_range(w->uffd, ranges[r].start, ranges[r].end, 1);
        if (err < 0) {
            say(why, whylen, "userfaultfd: protecting the heap", -err);
            goto error;
        }
    }
    /* Pages copied before the protection: counted now, left unprotected
     * (they are copies already; a later write must not look like one). */
    err = ps_pagemap_open(&w->pm, 0);
    size_t before = 0;
    if (err == 0)
        err = ps_copied_bitmap_fd(snap, &w->pm, (uint8_t *)w->copied,
                                  &before);
    if (err == 0 && before > 0)
        err = unprotect_runs(w, w->copied, NULL);
    if (err < 0) {
        say(why, whylen, "/proc/self/pagemap", -err);
        goto error;
    }
    w->n[MS_CAUSE_BEFORE] = before;
    w->ncopied = before;
    /* The clock's first read in a new process may fault in the vDSO's
     * data page: now, not inside the first scan. */
    (void)clk_now_ns();
    w->last_flt = clk_minflt();
    *out = w;
    return 0;

error:
    ms_wset_free(w);
    return err;
}

/* ---- closing intervals ---------------------------------------------------- */

typedef struct credit {
    ms_wset_t *w;
    const ps_range_t *r;
    size_t base;                /* snapshot index of r's first page */
    size_t ri;                  /* r's index: a cursor through the ranges */
    run_fn inner;               /* what span_run hands each piece to */
    ms_cause_t cause;
    long found;                 /* new copies */
    long written;               /* snapshot pages written (sampling) */
    int sampling;
} credit_t;

/* fresh: new copies among the 64 pages of word k. */
static void
credit_word(credit_t *c, size_t k, uint64_t fresh)
{
    ms_wset_t *w = c->w;
    fresh &= ~w->gone[k];           /* released: not a copy, whatever the
                                       address holds now */
    if (fresh == 0)
        return;
    w->copied[k] |= fresh;
    c->found += __builtin_popcountll(fresh);
    if (w->kinds) {
        for (uint64_t f = fresh; f; f &= f - 1) {
            size_t i = k * 64 + (size_t)__builtin_ctzll(f);
            unsigned kind = w->kinds[i];
            w->kind_n[c->cause][kind < MS_NKINDS ? kind : 0]++;
        }
    }
}

/* The snapshot indexes [*lo, *hi) of [start, end) clipped to c's range;
 * 0 if empty. */
static int
run_bits(const credit_t *c, uintptr_t start, uintptr_t end, size_t *lo,
         size_t *hi)
{
    if (start < c->r->start)
        start = c->r->start;
    if (end > c->r->end)
        end = c->r->end;
    if (start >= end)
        return 0;
    *lo = c->base + (start - c->r->start) / c->w->psize;
    *hi = c->base + (end - c->r->start) / c->w->psize;
    return 1;
}

/* Inverted scans: a run of pages still protected, noted in prot. */
static void
protected_run(void *arg, uintptr_t start, uintptr_t end)
{
    credit_t *c = arg;
    size_t lo, hi;
    if (run_bits(c, start, end, &lo, &hi))
        for (size_t k = lo / 64; k * 64 < hi; k++)
            c->w->prot[k] |= word_mask(k, lo, hi);
}

/* A run of written pages: the snapshot pages of it not yet in copied are
 * new copies.  Word at a time; bit by bit only to count kinds. */
static void
credit_run(void *arg, uintptr_t start, uintptr_t end)
{
    credit_t *c = arg;
    ms_wset_t *w = c->w;
    size_t lo, hi;
    if (!run_bits(c, start, end, &lo, &hi))
        return;
    for (size_t k = lo / 64; k * 64 < hi; k++) {
        uint64_t m = word_mask(k, lo, hi) & w->present[k];
        if (c->sampling) {
            c->written += __builtin_popcountll(m);
            w->sampled[k] |= m;
        }
        credit_word(c, k, m & ~w->copied[k]);
    }
}

/* A run the kernel reported, in address order: its pieces in each range
 * it meets (the cursor only moves forward), to c->inner. */
static void
span_run(void *arg, uintptr_t start, uintptr_t end)
{
    credit_t *c = arg;
    ms_wset_t *w = c->w;
    while (c->ri < w->nranges && start < end) {
        const ps_range_t *rg = &w->ranges[c->ri];
        if (rg->end <= start) {
            c->ri++;
            continue;
        }
        if (rg->start >= end)
            return;
        c->r = rg;
        c->base = w->rbase[c->ri];
        c->inner(c, start, end < rg->end ? end : rg->end);
        start = rg->end;
    }
}

/* Pages [a, b) (snapshot indexes) of the ranges met by [lo, hi). */
static void
span_bits(const ms_wset_t *w, size_t ri, uintptr_t lo, uintptr_t hi,
          size_t *a, size_t *b)
{
    const ps_range_t *rg = &w->ranges[ri];
    uintptr_t s = lo > rg->start ? lo : rg->start;
    uintptr_t e = hi < rg->end ? hi : rg->end;
    *a = w->rbase[ri] + (s - rg->start) / w->psize;
    *b = w->rbase[ri] + (e > s ? e - rg->start : s - rg->start) / w->psize;
}

/*
 * Scan [start, end) of the ranges with one PAGEMAP_SCAN: the memory
 * between the ranges is not registered, and the kernel skips it a VMA at
 * a time.  A scan costs a walk of the page tables plus a record per page
 * it reports: it asks for the written pages while they are the fewer,
 * then for the pages still protected (inverted), and a new copy is a
 * shared page no longer among those.
 */
static long
scan_ranges(ms_wset_t *w, ms_cause_t cause, uintptr_t start, uintptr_t end,
            int sampling, long *written)
{
    uint64_t t0 = clk_now_ns();
    credit_t c = { .w = w, .cause = cause, .sampling = sampling };
    int inverted = !sampling && w->ncopied > w->npresent - w->ncopied;
    if (w->nranges == 0)
        return 0;
    uintptr_t lo = start > w->ranges[0].start ? start : w->ranges[0].start;
    uintptr_t hi = end < w->ranges[w->nranges - 1].end
                   ? end : w->ranges[w->nranges - 1].end;
    lo &= ~(uintptr_t)(w->psize - 1);
    hi = (hi + w->psize - 1) & ~(uintptr_t)(w->psize - 1);
    size_t first = 0;
    while (first < w->nranges && w->ranges[first].end <= lo)
        first++;
    if (lo < hi) {
        size_t a, b;
        if (inverted)
            for (size_t i = first; i < w->nranges
                 && w->ranges[i].start < hi; i++) {
                span_bits(w, i, lo, hi, &a, &b);
                for (size_t k = a / 64; k * 64 < b; k++)
                    w->prot[k] &= ~word_mask(k, a, b);
            }
        c.ri = first;
        c.inner = inverted ? protected_run : credit_run;
        int err = scan(w->pm.fd, lo, hi, 0, inverted, w->vec, VEC_LEN,
                       span_run, &c);
        if (err < 0)
            return err;
        if (inverted)
            for (size_t i = first; i < w->nranges
                 && w->ranges[i].start < hi; i++) {
                span_bits(w, i, lo, hi, &a, &b);
                for (size_t k = a / 64; k * 64 < b; k++)
                    credit_word(&c, k, word_mask(k, a, b) & w->present[k]
                                       & ~w->copied[k] & ~w->prot[k]);
            }
    }
    w->scans++;
    w->busy_ns += clk_now_ns() - t0;
    w->n[cause] += (uint64_t)c.found;
    w->ncopied += (size_t)c.found;
    if (written)
        *written = c.written;
    return c.found;
}

long
ms_wset_close(ms_wset_t *w, ms_cause_t cause, long minflt)
{
    if (w == NULL || cause >= MS_NCAUSES)
        return -EINVAL;
    if (minflt < 0)
        minflt = clk_minflt();
    if (minflt == w->last_flt) {
        w->skipped++;
        return 0;
    }
    long r = scan_ranges(w, cause, 0, UINTPTR_MAX, 0, NULL);
    if (r >= 0)
        w->last_flt = minflt;           /* read before the scan */
    return r;
}

long
ms_wset_close_range(ms_wset_t *w, ms_cause_t cause, uintptr_t start,
                    uintptr_t end)
{
    if (w == NULL || cause >= MS_NCAUSES)
        return -EINVAL;
    if (clk_minflt() == w->last_flt) {
        w->skipped++;
        return 0;
    }
    /* Not a full scan: the fault count stays that of the last one. */
    return scan_ranges(w, cause, start, end, 0, NULL);
}

long
ms_wset_release_range(ms_wset_t *w, ms_cause_t cause, uintptr_t start,
                      uintptr_t end)
{
    long r = ms_wset_close_range(w, cause, start, end);
    if (r < 0)
        return r;
    start = (start + w->psize - 1) & ~(uintptr_t)(w->psize - 1);
    end &= ~(uintptr_t)(w->psize - 1);
    for (size_t i = 0; start < end && i < w->nranges; i++) {
        size_t a, b;
        if (w->ranges[i].end <= start || w->ranges[i].start >= end)
            continue;
        span_bits(w, i, start, end, &a, &b);
        for (size_t k = a / 64; k * 64 < b; k++) {
            uint64_t m = word_mask(k, a, b) & w->present[k] & ~w->gone[k];
            size_t n = (size_t)__builtin_popcountll(m);
            w->gone[k] |= m;
            w->ncopied -= (size_t)__builtin_popcountll(m & w->copied[k]);
            w->copied[k] &= ~m;
            w->sampled[k] &= ~m;
            w->npresent -= n;
            w->nreleased += n;
        }
    }
    return r;
}

int
ms_wset_sample_begin(ms_wset_t *w, ms_cause_t cause)
{
    if (w == NULL || (w->epoch & 1))
        return -EINVAL;
    long r = ms_wset_close(w, cause, -1);
    if (r < 0)
        return (int)r;
    uint64_t t0 = clk_now_ns();
    w->epoch++;
    if (w->nranges > 0) {
        int err = scan(w->pm.fd, w->ranges[0].start,
                       w->ranges[w->nranges - 1].end, PM_SCAN_WP_MATCHING, 0,
                       NULL, 0, NULL, NULL);
        if (err < 0) {
            w->epoch++;
            return err;
        }
    }
    memset(w->sampled, 0, (w->total / 64 + 1) * sizeof(uint64_t));
    w->last_flt = clk_minflt();
    w->busy_ns += clk_now_ns() - t0;
    return 0;
}

/* Runs of bits set in a & ~b within each range: the calls a restore by
 * runs would make. */
static size_t
count_runs(const ms_wset_t *w, const uint64_t *a, const uint64_t *b,
           int invert_a)
{
    size_t runs = 0, base = 0;
    for (size_t r = 0; r < w->nranges; r++) {
        size_t n = (w->ranges[r].end - w->ranges[r].start) / w->psize;
        int in = 0;
        for (size_t i = base; i < base + n; i++) {
            int on = (invert_a ? !bit(a, i) && bit(w->present, i)
                               : bit(a, i)) && !bit(b, i);
            runs += on && !in;
            in = on;
        }
        base += n;
    }
    return runs;
}

long
ms_wset_sample_end(ms_wset_t *w, ms_cause_t cause)
{
    long written = 0;
    if (w == NULL || !(w->epoch & 1))
        return -EINVAL;
    long r = scan_ranges(w, cause, 0, UINTPTR_MAX, 1, &written);
    if (r < 0)
        goto out;
    w->last_flt = clk_minflt();
    uint64_t t0 = clk_now_ns();
    /*
     * Copied pages the sample did not write are protected again: lift it.
     * By runs of them, or off for whole ranges and on again for the
     * shared pages (snapshot pages not copied), whichever takes fewer
     * calls.  The sampled pages are unprotected already (written).
     */
    size_t by_copied = count_runs(w, w->copied, w->sampled, 0);
    size_t by_shared = count_runs(w, w->copied, w->copied, 1) + w->nranges;
    if (w->nreleased > 0)
        by_shared = SIZE_MAX;       /* whole ranges now have holes */
    int err = 0;
    if (by_copied <= by_shared) {
        err = unprotect_runs(w, w->copied, w->sampled);
    } else {
        for (size_t i = 0; err == 0 && i < w->nranges; i++)
            err = wp_range(w->uffd, w->ranges[i].start, w->ranges[i].end, 0);
        size_t base = 0;
        for (size_t i = 0; err == 0 && i < w->nranges; i++) {
            const ps_range_t *rg = &w->ranges[i];
            size_t n = (rg->end - rg->start) / w->psize, a = 0;
            while (err == 0 && a < n) {
                size_t k = base + a;
                if (!bit(w->present, k) || bit(w->copied, k)) {
                    a++;
                    continue;
                }
                size_t b = a + 1;
                while (b < n && bit(w->present, base + b)
                       && !bit(w->copied, base + b))
                    b++;
                err = wp_range(w->uffd, rg->start + a * w->psize,
                               rg->start + b * w->psize, 1);
                a = b;
            }
            base += n;
        }
    }
    if (err < 0)
        r = err;
    w->busy_ns += clk_now_ns() - t0;
out:
    w->epoch++;
    return r < 0 ? r : written;
}

/* ---- figures -------------------------------------------------------------- */

uint64_t
ms_wset_copied(const ms_wset_t *w, ms_cause_t cause)
{
    return w && cause < MS_NCAUSES ? w->n[cause] : 0;
}

uint64_t
ms_wset_copied_now(const ms_wset_t *w)
{
    return w ? w->ncopied : 0;
}

uint64_t
ms_wset_released(const ms_wset_t *w)
{
    return w ? w->nreleased : 0;
}

uint64_t
ms_wset_copied_total(const ms_wset_t *w)
{
    uint64_t t = 0;
    for (int i = 0; w && i < MS_NCAUSES; i++)
        t += w->n[i];
    return t;
}

uint64_t
ms_wset_epoch(const ms_wset_t *w)
{
    return w ? w->epoch : 0;
}

void
ms_wset_scans(const ms_wset_t *w, uint64_t *done, uint64_t *skipped)
{
    *done = w ? w->scans : 0;
    *skipped = w ? w->skipped : 0;
}

uint64_t
ms_wset_busy_ns(const ms_wset_t *w)
{
    return w ? w->busy_ns : 0;
}

void
ms_wset_set_kinds(ms_wset_t *w, const uint8_t *table)
{
    if (w)
        w->kinds = table;
}

uint64_t
ms_wset_kind_copied(const ms_wset_t *w, ms_cause_t cause, int kind)
{
    if (w == NULL || cause >= MS_NCAUSES || kind < 0 || kind >= MS_NKINDS)
        return 0;
    return w->kind_n[cause][kind];
}

/* ---- the master's count ---------------------------------------------------- */

typedef struct count {
    const ps_range_t *ranges;
    size_t nranges, ri, base, psize;
    const uint64_t *present;
    size_t n;
} count_t;

/* Runs come in address order: a cursor through the ranges. */
static void
count_run(void *arg, uintptr_t start, uintptr_t end)
{
    count_t *c = arg;
    while (c->ri < c->nranges && start < end) {
        const ps_range_t *r = &c->ranges[c->ri];
        if (r->end <= start) {
            c->base += (r->end - r->start) / c->psize;
            c->ri++;
            continue;
        }
        if (r->start >= end)
            return;
        uintptr_t s = start > r->start ? start : r->start;
        uintptr_t e = end < r->end ? end : r->end;
        size_t lo = c->base + (s - r->start) / c->psize;
        size_t hi = c->base + (e - r->start) / c->psize;
        for (size_t k = lo / 64; k * 64 < hi; k++)
            c->n += (size_t)__builtin_popcountll(word_mask(k, lo, hi)
                                                 & c->present[k]);
        start = r->end;
    }
}

int
ms_wset_count_written(const ps_snap_t *snap, ps_pagemap_t *pm,
                      size_t *written)
{
    /* On the stack: the master must not write a malloc()ed page. */
    struct page_region vec[512];
    size_t nranges, psize = (size_t)sysconf(_SC_PAGESIZE);
    const ps_range_t *ranges = ps_snap_ranges(snap, &nranges);
    count_t c = { .ranges = ranges, .nranges = nranges, .psize = psize,
                  .present = ps_snap_bits(snap) };

    if (snap == NULL || pm == NULL || pm->fd < 0 || written == NULL)
        return -EINVAL;
    if (nranges > 0) {
        int err = scan(pm->fd, ranges[0].start, ranges[nranges - 1].end, 0,
                       0, vec, sizeof vec / sizeof vec[0], count_run, &c);
        if (err < 0)
            return err;
    }
    *written = c.n;
    return 0;
}
