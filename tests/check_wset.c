/*
 * check_wset.c -- unit tests for measure/wset.c: exact write sets.
 * Forked children write known pages of memory they share with the test
 * process, and every count is checked exactly: the pages a "request"
 * writes, the GC-header pages a collection writes (against the list the
 * collector holds), copies before tracking, memory unmapped mid-interval,
 * sampled intervals (written pages, and no fault left behind), the
 * master's count through the child's pagemap, and the forced fallback.
 * Each claim has its control: the same scenario that must count 0.
 * White-box (RT_BUILD_CORE) for gc__foreach, the collector's lists.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "gc.h"
#include "internal.h"
#include "mem.h"
#include "object.h"
#include "procstat.h"
#include "support.h"
#include "wkinds.h"
#include "wset.h"

/* ---- helpers --------------------------------------------------------------- */

static size_t
psize(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static char *
map_pages(size_t n)
{
    char *p = mmap(NULL, n * psize(), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    ck_assert_int_eq(madvise(p, n * psize(), MADV_NOHUGEPAGE), 0);
    return p;
}

static void
touch(char *mem, size_t page)
{
    ((volatile char *)mem)[page * psize()] += 1;
}

/* Skip (and say why) where the kernel cannot: the fallback is tested
 * below with the probe forced off. */
#define NEED_WSET()                                                         \
    do {                                                                    \
        char why_[256];                                                     \
        if (ms_wset_probe(why_, sizeof why_) < 0)                           \
            TS_SKIP("write sets unavailable here: %s", why_);               \
    } while (0)

/* What a child reports: a MAP_SHARED page the test reads after it. */
typedef struct report {
    long v[32];
    char why[256];
} report_t;

static report_t *
report_new(void)
{
    report_t *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(r, MAP_FAILED);
    for (size_t i = 0; i < sizeof r->v / sizeof r->v[0]; i++)
        r->v[i] = -999;
    return r;
}

/* Run fn(arg, report) in a forked child; it must exit 0. */
static void
in_child(void (*fn)(void *arg, report_t *r), void *arg, report_t *r)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        r->why[0] = '\0';              /* its page faults in now, not in fn */
        fn(arg, r);
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child failed: status %d (%s)", status, r->why);
}

#define N_PAGES 256

typedef struct mem_case {
    char *mem;
    ps_snap_t *snap;
} mem_case_t;

/* N_PAGES pages, all present, snapshot taken: as a master at fork. */
static mem_case_t
mem_case(void)
{
    mem_case_t c;
    c.mem = map_pages(N_PAGES);
    for (size_t i = 0; i < N_PAGES; i++)
        touch(c.mem, i);
    ps_range_t r = { (uintptr_t)c.mem, (uintptr_t)c.mem + N_PAGES * psize() };
    ck_assert_int_eq(ps_snap_take(&c.snap, 0, &r, 1), 0);
    ck_assert_uint_eq(ps_snap_pages(c.snap), N_PAGES);
    return c;
}

static void
mem_case_free(mem_case_t *c)
{
    ps_snap_free(c->snap);
    munmap(c->mem, N_PAGES * psize());
}

static ms_wset_t *
child_start(const mem_case_t *c, report_t *r)
{
    ms_wset_t *w;
    if (ms_wset_start(&w, c->snap, r->why, sizeof r->why) < 0)
        _exit(10);
    return w;
}

/* ---- the probe and the fallback ------------------------------------------ */

START_TEST(wset_probe_here)
{
    char why[256] = "";
    int r = ms_wset_probe(why, sizeof why);
    if (r < 0)
        TS_SKIP("write sets unavailable here: %s", why);
    ck_assert_int_eq(r, 0);
}
END_TEST

START_TEST(wset_probe_forced_off)
{
    char why[256] = "";
    setenv("COWLAB_NO_WRITE_SETS", "1", 1);
    int r = ms_wset_probe(why, sizeof why);
    unsetenv("COWLAB_NO_WRITE_SETS");
    ck_assert_int_eq(r, -ENOSYS);
    ck_assert_msg(strstr(why, "COWLAB_NO_WRITE_SETS") != NULL, "%s", why);
    setenv("COWLAB_NO_WRITE_SETS", "0", 1);     /* "0" is not set */
    r = ms_wset_probe(why, sizeof why);
    unsetenv("COWLAB_NO_WRITE_SETS");
    ck_assert_int_ne(r, -ENOSYS);
}
END_TEST

/* ---- requests: exactly the pages written ---------------------------------- */

/* Page k of the K chosen ones: 7 is prime to 256, so all distinct. */
#define K_PAGES 37
static size_t chosen(size_t k) { return k * 7 % N_PAGES; }

static void
request_k(void *arg, report_t *r)
{
    mem_case_t *c = arg;
    ms_wset_t *w = child_start(c, r);
    r->v[0] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);  /* nothing yet */
    for (size_t k = 0; k < K_PAGES; k++)                /* "request 1" */
        touch(c->mem, chosen(k));
    r->v[1] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    for (size_t k = 0; k < K_PAGES; k++)                /* the same again */
        touch(c->mem, chosen(k));
    r->v[2] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    for (size_t k = K_PAGES; k < K_PAGES + 5; k++)      /* "a collection" */
        touch(c->mem, chosen(k));
    r->v[3] = ms_wset_close(w, MS_CAUSE_GC, -1);
    r->v[4] = (long)ms_wset_copied(w, MS_CAUSE_REQUEST);
    r->v[5] = (long)ms_wset_copied(w, MS_CAUSE_GC);
    r->v[6] = (long)ms_wset_copied(w, MS_CAUSE_BEFORE);
    size_t pm = 0;
    ps_count_copied(c->snap, 0, &pm);                   /* the control */
    r->v[7] = (long)pm;
    ms_wset_free(w);
}

START_TEST(wset_request_exact)
{
    NEED_WSET();
    mem_case_t c = mem_case();
    report_t *r = report_new();
    in_child(request_k, &c, r);
    ck_assert_int_eq(r->v[0], 0);
    ck_assert_int_eq(r->v[1], K_PAGES);
    ck_assert_int_eq(r->v[2], 0);               /* copied once, not twice */
    ck_assert_int_eq(r->v[3], 5);
    ck_assert_int_eq(r->v[4], K_PAGES);
    ck_assert_int_eq(r->v[5], 5);
    ck_assert_int_eq(r->v[6], 0);
    ck_assert_int_eq(r->v[7], K_PAGES + 5);     /* pagemap agrees */
    munmap(r, sizeof *r);
    mem_case_free(&c);
}
END_TEST

/* Once most pages are copied a scan asks for the protected ones instead
 * (fewer to report): the counts stay exact. */
static void
mostly_copied(void *arg, report_t *r)
{
    mem_case_t *c = arg;
    ms_wset_t *w = child_start(c, r);
    for (size_t p = 0; p < 200; p++)
        touch(c->mem, p);
    r->v[0] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);  /* by written */
    for (size_t p = 200; p < 210; p++)
        touch(c->mem, p);
    r->v[1] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);  /* by protected */
    for (size_t p = 100; p < 106; p++)
        touch(c->mem, p);
    touch(c->mem, 250);
    r->v[2] = ms_wset_close(w, MS_CAUSE_GC, -1);
    r->v[3] = ms_wset_close_range(w, MS_CAUSE_GC, (uintptr_t)c->mem,
                                  (uintptr_t)c->mem + N_PAGES * psize());
    touch(c->mem, 255);
    r->v[4] = ms_wset_close_range(w, MS_CAUSE_TEARDOWN,
                                  (uintptr_t)c->mem + 250 * psize(),
                                  (uintptr_t)c->mem + N_PAGES * psize());
    size_t pm = 0;
    ps_count_copied(c->snap, 0, &pm);
    r->v[5] = (long)pm;
    r->v[6] = (long)ms_wset_copied_total(w);
    ms_wset_free(w);
}

START_TEST(wset_mostly_copied_exact)
{
    NEED_WSET();
    mem_case_t c = mem_case();
    report_t *r = report_new();
    in_child(mostly_copied, &c, r);
    ck_assert_int_eq(r->v[0], 200);
    ck_assert_int_eq(r->v[1], 10);
    ck_assert_int_eq(r->v[2], 1);
    ck_assert_int_eq(r->v[3], 0);
    ck_assert_int_eq(r->v[4], 1);
    ck_assert_int_eq(r->v[5], 212);
    ck_assert_int_eq(r->v[6], 212);
    munmap(r, sizeof *r);
    mem_case_free(&c);
}
END_TEST

/* Three ranges with pages between them that are not the snapshot's (and
 * so not registered): one scan covers all three, the pages between count
 * for nothing, and each range's pages keep their own indexes. */
typedef struct gaps {
    char *mem;                  /* 3 * 64 + 2 pages */
    ps_snap_t *snap;
} gaps_t;

static void
gaps_child(void *arg, report_t *r)
{
    gaps_t *g = arg;
    ms_wset_t *w;
    if (ms_wset_start(&w, g->snap, r->why, sizeof r->why) < 0)
        _exit(10);
    touch(g->mem, 64);                  /* between ranges 0 and 1 */
    touch(g->mem, 129);                 /* between ranges 1 and 2 */
    r->v[0] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    touch(g->mem, 0);
    touch(g->mem, 65);                  /* range 1, its first page */
    touch(g->mem, 193);                 /* range 2, its last page */
    r->v[1] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    for (size_t p = 0; p < 194; p++)    /* all: most are copied now */
        if (p != 64 && p != 129 && p != 100)
            touch(g->mem, p);
    r->v[2] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    touch(g->mem, 100);                 /* by the protected pages */
    r->v[3] = ms_wset_close(w, MS_CAUSE_GC, -1);
    size_t pm = 0;
    ps_count_copied(g->snap, 0, &pm);
    r->v[4] = (long)pm;
    ms_wset_free(w);
}

START_TEST(wset_ranges_with_gaps)
{
    NEED_WSET();
    gaps_t g;
    size_t ps = psize();
    g.mem = map_pages(3 * 64 + 2);
    for (size_t i = 0; i < 3 * 64 + 2; i++)
        touch(g.mem, i);
    uintptr_t b = (uintptr_t)g.mem;
    ps_range_t r[3] = { { b, b + 64 * ps }, { b + 65 * ps, b + 129 * ps },
                        { b + 130 * ps, b + 194 * ps } };
    ck_assert_int_eq(ps_snap_take(&g.snap, 0, r, 3), 0);
    ck_assert_uint_eq(ps_snap_pages(g.snap), 192);
    report_t *rep = report_new();
    in_child(gaps_child, &g, rep);
    ck_assert_int_eq(rep->v[0], 0);
    ck_assert_int_eq(rep->v[1], 3);
    ck_assert_int_eq(rep->v[2], 188);
    ck_assert_int_eq(rep->v[3], 1);
    ck_assert_int_eq(rep->v[4], 192);
    munmap(rep, sizeof *rep);
    ps_snap_free(g.snap);
    munmap(g.mem, (3 * 64 + 2) * ps);
}
END_TEST

/* No fault, no scan: a rewrite of copied pages is skipped, and so is a
 * close with nothing done. */
static void
gate(void *arg, report_t *r)
{
    mem_case_t *c = arg;
    ms_wset_t *w = child_start(c, r);
    uint64_t done0, skip0, done1, skip1;
    touch(c->mem, 3);
    r->v[0] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    /* A scan can fault itself (its buffer's first use; a sanitizer's
     * shadow pages): one more close takes those in before counting. */
    if (ms_wset_close(w, MS_CAUSE_REQUEST, -1) != 0)
        r->v[0] = -100;
    ms_wset_scans(w, &done0, &skip0);
    long f0 = clk_minflt();
    touch(c->mem, 3);                           /* a copy already */
    r->v[1] = clk_minflt() - f0;
    r->v[2] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    r->v[3] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    ms_wset_scans(w, &done1, &skip1);
    r->v[4] = (long)(done1 - done0);
    r->v[5] = (long)(skip1 - skip0);
    ms_wset_free(w);
}

START_TEST(wset_scan_skipped_without_fault)
{
    NEED_WSET();
    mem_case_t c = mem_case();
    report_t *r = report_new();
    in_child(gate, &c, r);
    ck_assert_int_eq(r->v[0], 1);
    ck_assert_int_eq(r->v[1], 0);       /* a copied page faults no more */
    ck_assert_int_eq(r->v[2], 0);
    ck_assert_int_eq(r->v[3], 0);
    ck_assert_int_eq(r->v[4], 0);       /* no scan... */
    ck_assert_int_eq(r->v[5], 2);       /* ...both skipped */
    munmap(r, sizeof *r);
    mem_case_free(&c);
}
END_TEST

/* Pages copied before tracking began: counted apart, never again. */
static void
before(void *arg, report_t *r)
{
    mem_case_t *c = arg;
    for (size_t p = 100; p < 110; p++)
        touch(c->mem, p);
    ms_wset_t *w = child_start(c, r);
    r->v[0] = (long)ms_wset_copied(w, MS_CAUSE_BEFORE);
    for (size_t p = 100; p < 115; p++)          /* 10 old, 5 new */
        touch(c->mem, p);
    r->v[1] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    r->v[2] = (long)ms_wset_copied_total(w);
    ms_wset_free(w);
}

START_TEST(wset_copies_before_tracking)
{
    NEED_WSET();
    mem_case_t c = mem_case();
    report_t *r = report_new();
    in_child(before, &c, r);
    ck_assert_int_eq(r->v[0], 10);
    ck_assert_int_eq(r->v[1], 5);
    ck_assert_int_eq(r->v[2], 15);
    munmap(r, sizeof *r);
    mem_case_free(&c);
}
END_TEST

/* New pages (absent at fork) are not copies; unmapped ones are counted
 * by close_range before they go; an address reused after munmap is not
 * tracked memory. */
static void
unmapped(void *arg, report_t *r)
{
    mem_case_t *c = arg;
    ms_wset_t *w = child_start(c, r);
    size_t ps = psize();
    /* Drop pages 200..255 from this process (the parent keeps them). */
    touch(c->mem, 200);
    touch(c->mem, 201);
    r->v[0] = ms_wset_close_range(w, MS_CAUSE_TEARDOWN,
                                  (uintptr_t)c->mem + 200 * ps,
                                  (uintptr_t)c->mem + 256 * ps);
    munmap(c->mem + 200 * ps, 56 * ps);
    /* Reuse the address: fresh memory, written, not a copy. */
    char *again = mmap(c->mem + 200 * ps, 56 * ps, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (again == MAP_FAILED)
        _exit(11);
    for (size_t p = 200; p < 256; p++)
        touch(c->mem, p);
    touch(c->mem, 0);
    r->v[1] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    r->v[2] = (long)ms_wset_copied(w, MS_CAUSE_TEARDOWN);
    ms_wset_free(w);
}

START_TEST(wset_unmapped_and_reused)
{
    NEED_WSET();
    mem_case_t c = mem_case();
    report_t *r = report_new();
    in_child(unmapped, &c, r);
    ck_assert_int_eq(r->v[0], 2);
    ck_assert_int_eq(r->v[1], 1);               /* page 0 only */
    ck_assert_int_eq(r->v[2], 2);
    munmap(r, sizeof *r);
    mem_case_free(&c);
}
END_TEST

/* ---- sampled intervals ---------------------------------------------------- */

/* Copy pages 0..199 (or the given set), then sample an interval that
 * writes `sample` pages: some copied, some shared. */
static void
sampled(void *arg, report_t *r)
{
    mem_case_t *c = arg;
    long split = r->v[31];              /* 1: sample splits the copied run */
    ms_wset_t *w = child_start(c, r);
    for (size_t p = 0; p < 200; p++)
        touch(c->mem, p);
    r->v[0] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    uint64_t e0 = ms_wset_epoch(w);
    if (ms_wset_sample_begin(w, MS_CAUSE_REQUEST) < 0)
        _exit(12);
    r->v[1] = (long)(ms_wset_epoch(w) - e0);     /* odd inside */
    /* 20 copied pages (every 10th of 0..199, or 0..19) and 3 shared. */
    for (size_t k = 0; k < 20; k++)
        touch(c->mem, split ? k * 10 : k);
    touch(c->mem, 210);
    touch(c->mem, 220);
    touch(c->mem, 230);
    r->v[2] = ms_wset_sample_end(w, MS_CAUSE_REQUEST);
    r->v[3] = (long)(ms_wset_epoch(w) - e0);
    r->v[4] = (long)ms_wset_copied(w, MS_CAUSE_REQUEST);
    /* The copied pages fault no more: the sample left nothing behind. */
    long f0 = clk_minflt();
    for (size_t p = 0; p < 200; p++)
        touch(c->mem, p);
    touch(c->mem, 210);
    r->v[5] = clk_minflt() - f0;
    /* The shared ones are still protected: a write is still a copy. */
    touch(c->mem, 240);
    r->v[6] = ms_wset_close(w, MS_CAUSE_GC, -1);
    size_t pm = 0;
    ps_count_copied(c->snap, 0, &pm);
    r->v[7] = (long)pm;
    r->v[8] = (long)ms_wset_copied_total(w);
    ms_wset_free(w);
}

static void
check_sampled(long split)
{
    NEED_WSET();
    mem_case_t c = mem_case();
    report_t *r = report_new();
    r->v[31] = split;
    in_child(sampled, &c, r);
    ck_assert_int_eq(r->v[0], 200);
    ck_assert_int_eq(r->v[1], 1);
    ck_assert_int_eq(r->v[2], 23);              /* written in the sample */
    ck_assert_int_eq(r->v[3], 2);
    ck_assert_int_eq(r->v[4], 203);             /* 3 new copies in it */
    ck_assert_int_eq(r->v[5], 0);
    ck_assert_int_eq(r->v[6], 1);
    ck_assert_int_eq(r->v[7], 204);
    ck_assert_int_eq(r->v[8], 204);
    munmap(r, sizeof *r);
    mem_case_free(&c);
}

/* The restore by runs of copied pages (one run: 20..199)... */
START_TEST(wset_sample_restores_by_copied_runs)
{
    check_sampled(0);
}
END_TEST

/* ...and by whole range off, shared pages on (the sample cut 0..199 into
 * 20 runs, the shared pages are 4). */
START_TEST(wset_sample_restores_by_shared_runs)
{
    check_sampled(1);
}
END_TEST

/* ---- the master's count --------------------------------------------------- */

static void
hold_for_master(void *arg, report_t *r)
{
    mem_case_t *c = arg;
    ms_wset_t *w = child_start(c, r);
    for (size_t k = 0; k < K_PAGES; k++)
        touch(c->mem, chosen(k));
    ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    r->v[0] = 1;                        /* ready: the parent counts */
    while (__atomic_load_n(&r->v[1], __ATOMIC_SEQ_CST) != 1)
        usleep(1000);
    ms_wset_free(w);
}

START_TEST(wset_master_count_matches_pagemap)
{
    NEED_WSET();
    mem_case_t c = mem_case();
    report_t *r = report_new();
    r->v[0] = r->v[1] = 0;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        hold_for_master(&c, r);
        _exit(0);
    }
    while (__atomic_load_n(&r->v[0], __ATOMIC_SEQ_CST) != 1)
        usleep(1000);
    ps_pagemap_t pm;
    size_t written = 0, copied = 0;
    ck_assert_int_eq(ps_pagemap_open(&pm, pid), 0);
    ck_assert_int_eq(ms_wset_count_written(c.snap, &pm, &written), 0);
    ck_assert_int_eq(ps_count_copied_fd(c.snap, &pm, &copied), 0);
    ck_assert_uint_eq(written, K_PAGES);
    ck_assert_uint_eq(copied, K_PAGES);
    /* The control: a process that tracks nothing shows no written page
     * (its memory is not write-protected, so none is "written"). */
    size_t self = 99;
    ps_pagemap_t me;
    ck_assert_int_eq(ps_pagemap_open(&me, 0), 0);
    ck_assert_int_eq(ms_wset_count_written(c.snap, &me, &self), 0);
    ck_assert_uint_eq(self, 0);
    ps_pagemap_close(&me);
    ps_pagemap_close(&pm);
    __atomic_store_n(&r->v[1], 1, __ATOMIC_SEQ_CST);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    munmap(r, sizeof *r);
    mem_case_free(&c);
}
END_TEST

/* ---- kinds --------------------------------------------------------------- */

static void
kinds(void *arg, report_t *r)
{
    mem_case_t *c = arg;
    static uint8_t table[N_PAGES];      /* .bss: not the snapshot's pages */
    ms_wset_t *w = child_start(c, r);
    for (size_t p = 0; p < N_PAGES; p++)
        table[p] = (uint8_t)(p % 3);    /* 0 other, 1, 2 */
    ms_wset_set_kinds(w, table);
    for (size_t p = 0; p < 30; p++)
        touch(c->mem, p);
    ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    for (size_t p = 30; p < 33; p++)
        touch(c->mem, p);
    ms_wset_close(w, MS_CAUSE_GC, -1);
    for (int k = 0; k < 3; k++) {
        r->v[k] = (long)ms_wset_kind_copied(w, MS_CAUSE_REQUEST, k);
        r->v[3 + k] = (long)ms_wset_kind_copied(w, MS_CAUSE_GC, k);
    }
    ms_wset_free(w);
}

START_TEST(wset_kinds_counted_per_cause)
{
    NEED_WSET();
    mem_case_t c = mem_case();
    report_t *r = report_new();
    in_child(kinds, &c, r);
    ck_assert_int_eq(r->v[0], 10);
    ck_assert_int_eq(r->v[1], 10);
    ck_assert_int_eq(r->v[2], 10);
    ck_assert_int_eq(r->v[3], 1);               /* page 30 */
    ck_assert_int_eq(r->v[4], 1);               /* 31 */
    ck_assert_int_eq(r->v[5], 1);               /* 32 */
    munmap(r, sizeof *r);
    mem_case_free(&c);
}
END_TEST

/* The default build carries no write-kind note at all (it costs nothing):
 * only cowlab-kinds, built with RT_WRITE_KINDS, notes kinds. */
START_TEST(wset_default_build_has_no_kinds)
{
    static char page[4096] __attribute__((aligned(4096)));
    mem_range_t r = { (uintptr_t)page, (uintptr_t)page + sizeof page };
    ck_assert_int_eq(rt_wk_built(), 0);
    ck_assert_int_eq(rt_wk_start(&r, 1), -1);
    ck_assert_ptr_null(rt_wk_table(NULL));
    RT_WK_NOTE(page, RT_WK_GC);                 /* expands to nothing */
}
END_TEST

/* ---- the runtime: a request's refcount writes, a collection's headers ---- */

#ifndef RT_MALLOC_BYPASS
static ps_snap_t *
heap_snapshot(void)
{
    long n = mem_ranges(NULL, 0);
    ck_assert_int_ge(n, 1);
    mem_range_t *r = calloc((size_t)n, sizeof *r);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(mem_ranges(r, (size_t)n), n);
    ps_snap_t *s;
    ck_assert_int_eq(ps_snap_take(&s, 0, (const ps_range_t *)r, (size_t)n),
                     0);
    free(r);
    return s;
}

/* Set the bit of the page holding address a (a snapshot page). */
static size_t
page_index(const ps_snap_t *s, uintptr_t a)
{
    size_t n, base = 0;
    const ps_range_t *r = ps_snap_ranges(s, &n);
    for (size_t i = 0; i < n; i++) {
        if (a >= r[i].start && a < r[i].end)
            return base + (a - r[i].start) / psize();
        base += (r[i].end - r[i].start) / psize();
    }
    return SIZE_MAX;
}

#define N_OBJS 4000
typedef struct heap_case {
    rt_heap_t *h;
    rt_obj_t *objs[N_OBJS];
    ps_snap_t *snap;
    int freeze;
} heap_case_t;

/* A heap of lists holding ints, collected so that everything sits in the
 * oldest generation, as a master's heap at fork. */
static heap_case_t *
heap_case(int freeze)
{
    heap_case_t *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    c->h = rt_heap_new();
    ck_assert_ptr_nonnull(c->h);
    for (size_t i = 0; i < N_OBJS; i++) {
        c->objs[i] = rt_list_new(c->h);
        ck_assert_ptr_nonnull(c->objs[i]);
        rt_obj_t *v = rt_int_new(c->h, 1000 + (int64_t)i);
        ck_assert_int_eq(rt_list_append_steal(c->objs[i], v), 0);
    }
    gc_collect(GC_GEN_OLDEST);
    if (freeze)
        gc_freeze();
    c->freeze = freeze;
    c->snap = heap_snapshot();
    return c;
}

static void
heap_case_free(heap_case_t *c)
{
    for (size_t i = 0; i < N_OBJS; i++)
        rt_decref(c->objs[i]);
    ps_snap_free(c->snap);
    rt_heap_free(c->h);
    free(c);
}

/* Every 97th list's int item is read (incref + decref: a refcount write);
 * the pages of those ints are what the request must copy. */
static int
read_item(size_t i)
{
    return i % 97 == 0;
}

static void
heap_request(void *arg, report_t *r)
{
    heap_case_t *c = arg;
    ms_wset_t *w;
    if (ms_wset_start(&w, c->snap, r->why, sizeof r->why) < 0)
        _exit(10);
    r->v[0] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    for (size_t i = 0; i < N_OBJS; i++) {
        if (read_item(i)) {
            rt_obj_t *v = rt_list_get(c->objs[i], 0);
            rt_incref(v);
            /* The compiler must not fold the pair away: a request does
             * work between them (wl_request.c walks the children). */
            __asm__ volatile("" ::: "memory");
            rt_decref(v);
        }
    }
    r->v[1] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    size_t pm = 0;
    ps_count_copied(c->snap, 0, &pm);
    r->v[2] = (long)pm;
    ms_wset_free(w);
}

START_TEST(wset_runtime_request_copies_read_pages)
{
    NEED_WSET();
    for (int immortal = 0; immortal <= 1; immortal++) {
        heap_case_t *c = heap_case(0);
        uint8_t *want = calloc(ps_snap_total_pages(c->snap), 1);
        size_t k = 0;
        for (size_t i = 0; i < N_OBJS; i++) {
            if (!read_item(i))
                continue;
            rt_obj_t *v = rt_list_get(c->objs[i], 0);
            if (immortal)
                rt_immortalize(v);      /* the control: no write at all */
            size_t p = page_index(c->snap, (uintptr_t)v);
            ck_assert_uint_ne(p, SIZE_MAX);
            k += !want[p];
            want[p] = 1;
        }
        ck_assert_uint_gt(k, 10);
        report_t *r = report_new();
        in_child(heap_request, c, r);
        ck_assert_int_eq(r->v[0], 0);
        ck_assert_int_eq(r->v[1], (immortal ? 0 : (long)k));
        ck_assert_int_eq(r->v[2], (immortal ? 0 : (long)k));
        munmap(r, sizeof *r);
        free(want);
        heap_case_free(c);
    }
}
END_TEST

typedef struct pages {
    const ps_snap_t *snap;
    uint8_t *want;
    size_t n;
} pages_t;

static void
note_header(rt_obj_t *o, void *arg)
{
    pages_t *p = arg;
    size_t i = page_index(p->snap, (uintptr_t)RT_AS_GC(o));
    ck_assert_uint_ne(i, SIZE_MAX);
    p->n += !p->want[i];
    p->want[i] = 1;
}

static void
heap_collect(void *arg, report_t *r)
{
    heap_case_t *c = arg;
    ms_wset_t *w;
    if (ms_wset_start(&w, c->snap, r->why, sizeof r->why) < 0)
        _exit(10);
    r->v[0] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    gc_collect(GC_GEN_OLDEST);
    r->v[1] = ms_wset_close(w, MS_CAUSE_GC, -1);
    /* Which pages: the pagemap's bitmap against the headers' pages. */
    size_t total = ps_snap_total_pages(c->snap), copied;
    size_t blen = (total + 7) / 8;
    uint8_t *bits = mmap(NULL, blen, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (bits == MAP_FAILED || ps_copied_bitmap(c->snap, 0, bits, &copied) < 0)
        _exit(13);
    r->v[2] = (long)copied;
    long same = 0;
    const uint8_t *want = (const uint8_t *)(uintptr_t)r->v[30];
    for (size_t i = 0; i < total; i++)
        same += ((bits[i / 8] >> (i % 8)) & 1) == want[i];
    r->v[3] = same == (long)total;
    munmap(bits, blen);
    ms_wset_free(w);
}

START_TEST(wset_runtime_collection_copies_header_pages)
{
    NEED_WSET();
    for (int freeze = 0; freeze <= 1; freeze++) {
        heap_case_t *c = heap_case(freeze);
        pages_t p = { c->snap, calloc(ps_snap_total_pages(c->snap), 1), 0 };
        ck_assert_ptr_nonnull(p.want);
        if (!freeze) {
            /* What a full collection visits: every tracked object outside
             * the permanent generation (here: all of them). */
            gc__foreach(note_header, &p);
        }
        report_t *r = report_new();
        r->v[30] = (long)(uintptr_t)p.want;     /* same address in child */
        in_child(heap_collect, c, r);
        ck_assert_int_eq(r->v[0], 0);
        ck_assert_int_eq(r->v[1], (long)p.n);   /* frozen: 0 */
        ck_assert_int_eq(r->v[2], (long)p.n);
        ck_assert_int_eq(r->v[3], 1);           /* the very same pages */
        if (!freeze)
            ck_assert_uint_gt(p.n, 10);
        munmap(r, sizeof *r);
        free(p.want);
        heap_case_free(c);
    }
}
END_TEST

#else /* RT_MALLOC_BYPASS */

START_TEST(wset_runtime_request_copies_read_pages)
{
    TS_SKIP("page figures need the arena allocator (RT_MALLOC_BYPASS)");
}
END_TEST

START_TEST(wset_runtime_collection_copies_header_pages)
{
    TS_SKIP("page figures need the arena allocator (RT_MALLOC_BYPASS)");
}
END_TEST
#endif /* RT_MALLOC_BYPASS */

int
main(void)
{
    Suite *s = suite_create("wset");
    TCase *probe = tcase_create("probe");
    tcase_add_test(probe, wset_probe_here);
    tcase_add_test(probe, wset_probe_forced_off);
    suite_add_tcase(s, probe);

    TCase *exact = tcase_create("exact");
    tcase_set_timeout(exact, 60);
    tcase_add_test(exact, wset_request_exact);
    tcase_add_test(exact, wset_scan_skipped_without_fault);
    tcase_add_test(exact, wset_mostly_copied_exact);
    tcase_add_test(exact, wset_ranges_with_gaps);
    tcase_add_test(exact, wset_copies_before_tracking);
    tcase_add_test(exact, wset_unmapped_and_reused);
    tcase_add_test(exact, wset_sample_restores_by_copied_runs);
    tcase_add_test(exact, wset_sample_restores_by_shared_runs);
    tcase_add_test(exact, wset_master_count_matches_pagemap);
    tcase_add_test(exact, wset_kinds_counted_per_cause);
    tcase_add_test(exact, wset_default_build_has_no_kinds);
    suite_add_tcase(s, exact);

    TCase *rt = tcase_create("runtime");
    tcase_set_timeout(rt, 60);
    tcase_add_test(rt, wset_runtime_request_copies_read_pages);
    tcase_add_test(rt, wset_runtime_collection_copies_header_pages);
    suite_add_tcase(s, rt);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
