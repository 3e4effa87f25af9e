/*
 * check_procstat.c -- unit tests for server/procstat.c: the smaps_rollup
 * and stat parsers against fixtures from real kernels, and the exactness
 * of the copy-on-write counter against forked children that write a known
 * set of pages.  Run from the repository root (fixtures are found through
 * FIXTURE_DIR).  CK_FORK=no to run under gdb, CK_RUN_CASE=pagemap for one
 * case.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE                     /* MAP_ANONYMOUS, MADV_NOHUGEPAGE */
#endif
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procstat.h"
#include "support.h"

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures/procstat"
#endif

/* ---- helpers ----------------------------------------------------------- */

/*
 * The fixture NAME in a malloc'd buffer of exactly its length, with no NUL
 * after it, so that ASan catches a parser reading past len.
 */
static char *
fixture(const char *name, size_t *len)
{
    char path[512], tmp[16384];
    FILE *f;
    char *buf;

    snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, name);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s (run from the repo root)", path);
    *len = fread(tmp, 1, sizeof(tmp), f);
    ck_assert(!ferror(f) && feof(f));
    fclose(f);
    buf = malloc(*len ? *len : 1);
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, tmp, *len);
    return buf;
}

/* The same for a string literal. */
static int
parse_smaps_str(const char *s, ps_smaps_t *out)
{
    size_t len = strlen(s);
    char *buf = malloc(len ? len : 1);
    int err;

    ck_assert_ptr_nonnull(buf);
    memcpy(buf, s, len);
    err = ps_parse_smaps_rollup(buf, len, out);
    free(buf);
    return err;
}

static int
parse_stat_str(const char *s, ps_stat_t *out)
{
    size_t len = strlen(s);
    char *buf = malloc(len ? len : 1);
    int err;

    ck_assert_ptr_nonnull(buf);
    memcpy(buf, s, len);
    err = ps_parse_stat(buf, len, out);
    free(buf);
    return err;
}

static size_t
psize(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* npages of private anonymous memory, never huge pages, none touched. */
static char *
map_pages(size_t npages)
{
    char *p = mmap(NULL, npages * psize(), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    ck_assert_ptr_ne(p, MAP_FAILED);
    ck_assert_int_eq(madvise(p, npages * psize(), MADV_NOHUGEPAGE), 0);
    return p;
}

static void
touch(char *mem, size_t page)
{
    ((volatile char *)mem)[page * psize()] = (char)(page | 1);
}

static ps_range_t
range_of(char *mem, size_t npages)
{
    ps_range_t r = { (uintptr_t)mem, (uintptr_t)mem + npages * psize() };

    return r;
}

static int
bit_is_set(const uint8_t *bits, size_t i)
{
    return (bits[i / 8] >> (i % 8)) & 1;
}

static size_t
bits_count(const uint8_t *bits, size_t nbits)
{
    size_t n = 0;

    for (size_t i = 0; i < nbits; i++)
        n += (size_t)bit_is_set(bits, i);
    return n;
}

/*
 * A forked child that runs step(0, arg), step(1, arg), ... one at a time:
 * after each it writes a byte to ready, then reads go: 'n' runs the next
 * step, 'q' (or EOF: the test process died) exits.  The child never calls
 * Check; it touches memory only, and reports through its exit status.
 */
typedef void child_step_fn(int step, void *arg);

typedef struct child {
    pid_t pid;
    int ready;                  /* parent's read end */
    int go;                     /* parent's write end */
} child_t;

static void
child_start(child_t *c, child_step_fn *step, void *arg)
{
    int ready[2], go[2];

    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(go), 0);
    c->pid = fork();
    ck_assert_int_ge(c->pid, 0);
    if (c->pid == 0) {
        char cmd = 'n';
        ssize_t r;

        close(ready[0]);
        close(go[1]);
        for (int i = 0; cmd == 'n'; i++) {
            step(i, arg);
            do
                r = write(ready[1], "r", 1);
            while (r < 0 && errno == EINTR);
            if (r != 1)
                _exit(3);
            do
                r = read(go[0], &cmd, 1);
            while (r < 0 && errno == EINTR);
            if (r != 1)
                _exit(4);
        }
        _exit(cmd == 'q' ? 0 : 5);
    }
    close(ready[1]);
    close(go[0]);
    c->ready = ready[0];
    c->go = go[1];
}

/* Wait until the child has finished its current step. */
static void
child_wait_step(child_t *c)
{
    char b;
    ssize_t r;

    do
        r = read(c->ready, &b, 1);
    while (r < 0 && errno == EINTR);
    ck_assert_msg(r == 1, "child %ld died before its step", (long)c->pid);
}

static void
child_send(child_t *c, char cmd)
{
    ssize_t r;

    do
        r = write(c->go, &cmd, 1);
    while (r < 0 && errno == EINTR);
    ck_assert_int_eq(r, 1);
}

/* Tell the child to exit, reap it and check it exited with status 0. */
static void
child_finish(child_t *c)
{
    int status;
    pid_t r;

    child_send(c, 'q');
    close(c->go);
    close(c->ready);
    do
        r = waitpid(c->pid, &status, 0);
    while (r < 0 && errno == EINTR);
    ck_assert_int_eq(r, c->pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}

/* The pid of a process that has exited and been reaped. */
static pid_t
reaped_pid(void)
{
    int status;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return pid;
}

/* ---- smaps_rollup ------------------------------------------------------ */

START_TEST(procstat_smaps_rollup_6x)
{
    size_t len;
    char *text = fixture("smaps_rollup_6x.txt", &len);
    ps_smaps_t sm;

    ck_assert_int_eq(ps_parse_smaps_rollup(text, len, &sm), 0);
    ck_assert_int_eq(sm.rss_kb, 61656);
    ck_assert_int_eq(sm.pss_kb, 30874);        /* not Pss_Dirty etc. */
    ck_assert_int_eq(sm.shared_clean_kb, 3136);
    ck_assert_int_eq(sm.shared_dirty_kb, 57800);
    ck_assert_int_eq(sm.private_clean_kb, 0);
    ck_assert_int_eq(sm.private_dirty_kb, 720);
    free(text);
}
END_TEST

START_TEST(procstat_smaps_rollup_old_kernel)
{
    size_t len;
    char *text = fixture("smaps_rollup_old.txt", &len);
    ps_smaps_t sm;

    ck_assert_int_eq(ps_parse_smaps_rollup(text, len, &sm), 0);
    ck_assert_int_eq(sm.rss_kb, 22184);
    ck_assert_int_eq(sm.pss_kb, 11093);
    ck_assert_int_eq(sm.shared_clean_kb, 2412);
    ck_assert_int_eq(sm.shared_dirty_kb, -1);  /* no such line */
    ck_assert_int_eq(sm.private_clean_kb, 36);
    ck_assert_int_eq(sm.private_dirty_kb, 464);
    free(text);
}
END_TEST

START_TEST(procstat_smaps_rollup_garbage)
{
    size_t len;
    char *text = fixture("garbage.txt", &len);
    ps_smaps_t sm = { 1, 2, 3, 4, 5, 6 };

    ck_assert_int_eq(ps_parse_smaps_rollup(text, len, &sm), -EINVAL);
    ck_assert_int_eq(sm.rss_kb, 1);             /* untouched on error */
    ck_assert_int_eq(sm.private_dirty_kb, 6);
    free(text);

    ck_assert_int_eq(parse_smaps_str("", &sm), -EINVAL);
    ck_assert_int_eq(parse_smaps_str("hello\nworld\n", &sm), -EINVAL);
    /* the header alone: no Rss line */
    ck_assert_int_eq(parse_smaps_str("00400000-7ffd5a1e3000 ---p 00000000 "
                                     "00:00 0   [rollup]\n", &sm), -EINVAL);
    ck_assert_int_eq(parse_smaps_str("Rss: 12\n", &sm), -EINVAL);
    ck_assert_int_eq(parse_smaps_str("Rss: 12 kB junk\n", &sm), -EINVAL);
    ck_assert_int_eq(parse_smaps_str("Rss: -12 kB\n", &sm), -EINVAL);
    ck_assert_int_eq(parse_smaps_str("Rss: 1 kB\nRss: 2 kB\n", &sm),
                     -EINVAL);
    ck_assert_int_eq(parse_smaps_str("Rss: 99999999999999999999999 kB\n",
                                     &sm), -EINVAL);
    ck_assert_int_eq(parse_smaps_str("Rss:\t7 kB", &sm), 0);  /* no '\n' */
    ck_assert_int_eq(sm.rss_kb, 7);
    ck_assert_int_eq(sm.pss_kb, -1);
}
END_TEST

START_TEST(procstat_smaps_rollup_self)
{
    ps_smaps_t sm;

    ck_assert_int_eq(ps_read_smaps_rollup(0, &sm), 0);
    ck_assert_int_gt(sm.rss_kb, 0);
    ck_assert_int_gt(sm.pss_kb, 0);
    ck_assert_int_ge(sm.shared_clean_kb, 0);     /* read, not -1 */
    ck_assert_int_ge(sm.shared_dirty_kb, 0);
    ck_assert_int_ge(sm.private_clean_kb, 0);
    ck_assert_int_gt(sm.private_dirty_kb, 0);
    /* every resident page is one of the four (the kernel's smaps_account) */
    ck_assert_int_eq(sm.rss_kb, sm.shared_clean_kb + sm.shared_dirty_kb
                     + sm.private_clean_kb + sm.private_dirty_kb);
    ck_assert_int_eq(ps_read_smaps_rollup(getpid(), &sm), 0);
    ck_assert_int_gt(sm.rss_kb, 0);
}
END_TEST

/* ---- stat -------------------------------------------------------------- */

START_TEST(procstat_stat_weird_comm)
{
    size_t len;
    char *text = fixture("stat_weird_comm.txt", &len);   /* (my (weird) proc) */
    ps_stat_t st;

    ck_assert_int_eq(ps_parse_stat(text, len, &st), 0);
    ck_assert_int_eq(st.state, 'S');
    ck_assert_int_eq(st.minflt, 1234);
    ck_assert_int_eq(st.majflt, 56);
    ck_assert_int_eq(st.utime_ticks, 78);
    ck_assert_int_eq(st.stime_ticks, 90);
    free(text);
}
END_TEST

START_TEST(procstat_stat_spoof_comm)
{
    size_t len;
    char *text = fixture("stat_spoof_comm.txt", &len);   /* "(x) R 1 2 3)" */
    ps_stat_t st;

    ck_assert_int_eq(ps_parse_stat(text, len, &st), 0);
    ck_assert_int_eq(st.state, 'D');
    ck_assert_int_eq(st.minflt, 5);
    ck_assert_int_eq(st.majflt, 6);
    ck_assert_int_eq(st.utime_ticks, 7);
    ck_assert_int_eq(st.stime_ticks, 8);
    free(text);
}
END_TEST

START_TEST(procstat_stat_garbage)
{
    size_t len;
    char *text;
    ps_stat_t st = { 1, 2, 3, 4, 'Q' };

    text = fixture("stat_truncated.txt", &len);     /* ends at majflt */
    ck_assert_int_eq(ps_parse_stat(text, len, &st), -EINVAL);
    free(text);
    text = fixture("garbage.txt", &len);
    ck_assert_int_eq(ps_parse_stat(text, len, &st), -EINVAL);
    free(text);
    ck_assert_int_eq(st.minflt, 1);             /* untouched on error */
    ck_assert_int_eq(st.state, 'Q');

    ck_assert_int_eq(parse_stat_str("", &st), -EINVAL);
    ck_assert_int_eq(parse_stat_str("12 (unclosed S 1 2 3 4 5 6 7 8 9 10 "
                                    "11 12 13", &st), -EINVAL);
    ck_assert_int_eq(parse_stat_str("12 (a) S 1 2 3 4 -1 6 x 8 9 10 11 12",
                                    &st), -EINVAL);
    ck_assert_int_eq(parse_stat_str("12 (a) S 1 2 3 4 -1 6 -7 8 9 10 11 12",
                                    &st), -EINVAL);
    ck_assert_int_eq(parse_stat_str("12 (a) S 1 2 3 4 -1 6 7 8 9 10 11 12",
                                    &st), 0);   /* ends right at stime */
    ck_assert_int_eq(st.minflt, 7);
    ck_assert_int_eq(st.stime_ticks, 12);
}
END_TEST

START_TEST(procstat_stat_self)
{
    const size_t n = 64;
    ps_stat_t before, after;
    char *mem = map_pages(n);

    ck_assert_int_eq(ps_read_stat(0, &before), 0);
    ck_assert_int_eq(before.state, 'R');
    ck_assert_int_gt(before.minflt, 0);
    for (size_t i = 0; i < n; i++)
        touch(mem, i);
    ck_assert_int_eq(ps_read_stat(getpid(), &after), 0);
    ck_assert_int_ge(after.minflt - before.minflt, (long)n);
    munmap(mem, n * psize());
}
END_TEST

/* ---- pagemap: the copy counter ----------------------------------------- */

#define N_PAGES     256
#define M_WRITTEN   37

/* Page k of the M_WRITTEN chosen ones: 7 is prime to 256, so distinct. */
static size_t
chosen(size_t k)
{
    return k * 7 % N_PAGES;
}

static void
write_chosen(int step, void *arg)
{
    if (step == 0)
        for (size_t k = 0; k < M_WRITTEN; k++)
            touch(arg, chosen(k));
}

static void
write_nothing(int step, void *arg)
{
    (void)step;
    (void)arg;
}

START_TEST(procstat_copy_count_exact)
{
    char *mem = map_pages(N_PAGES);
    ps_range_t r = range_of(mem, N_PAGES);
    uint8_t bits[N_PAGES / 8], want[N_PAGES / 8] = { 0 };
    ps_pagemap_t pm;
    ps_snap_t *snap;
    child_t a, b;
    size_t copied;

    for (size_t i = 0; i < N_PAGES; i++)
        touch(mem, i);
    ck_assert_int_eq(ps_snap_take(&snap, 0, &r, 1), 0);
    ck_assert_uint_eq(ps_snap_pages(snap), N_PAGES);
    ck_assert_uint_eq(ps_snap_total_pages(snap), N_PAGES);

    child_start(&a, write_chosen, mem);
    child_start(&b, write_nothing, mem);
    child_wait_step(&a);
    child_wait_step(&b);

    ck_assert_int_eq(ps_count_copied(snap, a.pid, &copied), 0);
    ck_assert_uint_eq(copied, M_WRITTEN);
    ck_assert_int_eq(ps_count_copied(snap, b.pid, &copied), 0);
    ck_assert_uint_eq(copied, 0);

    for (size_t k = 0; k < M_WRITTEN; k++)
        want[chosen(k) / 8] |= (uint8_t)(1u << (chosen(k) % 8));
    memset(bits, 0xff, sizeof(bits));
    ck_assert_int_eq(ps_copied_bitmap(snap, a.pid, bits, &copied), 0);
    ck_assert_uint_eq(copied, M_WRITTEN);
    ck_assert_mem_eq(bits, want, sizeof(bits));
    memset(bits, 0xff, sizeof(bits));
    ck_assert_int_eq(ps_copied_bitmap(snap, b.pid, bits, &copied), 0);
    ck_assert_uint_eq(copied, 0);
    ck_assert_uint_eq(bits_count(bits, N_PAGES), 0);

    ck_assert_int_eq(ps_pagemap_open(&pm, a.pid), 0);
    ck_assert_int_eq(ps_count_copied_fd(snap, &pm, &copied), 0);
    ck_assert_uint_eq(copied, M_WRITTEN);
    ps_pagemap_close(&pm);
    ck_assert_int_eq(pm.fd, -1);
    ps_pagemap_close(&pm);                      /* twice is harmless */

    child_finish(&a);
    child_finish(&b);
    ps_snap_free(snap);
    munmap(mem, N_PAGES * psize());
}
END_TEST

/* Released pages: the child unmaps 64 snapshot pages and maps new memory
 * at the same address (what a new arena or chunk may get), writing it,
 * and writes 10 other pages.  The plain count takes the 64 new pages for
 * copies; with the release marked (the worker's hook does it) they are
 * left out and counted as released.  Fails without the exclusion. */
static char *released_shared;           /* MAP_SHARED: the child's marks */

static void
release_and_reuse(int step, void *arg)
{
    if (step != 0)
        return;
    char *mem = arg;
    size_t pg = psize();
    for (size_t i = 0; i < 10; i++)
        touch(mem, i);
    munmap(mem + 100 * pg, 64 * pg);
    void *p = mmap(mem + 100 * pg, 64 * pg, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED)
        _exit(3);
    for (size_t i = 100; i < 164; i++)
        touch(mem, i);
}

START_TEST(procstat_released_pages_excluded)
{
    char *mem = map_pages(N_PAGES);
    ps_range_t r = range_of(mem, N_PAGES);
    ps_snap_t *snap;
    ps_pagemap_t pm;
    child_t a;
    size_t copied, released;

    for (size_t i = 0; i < N_PAGES; i++)
        touch(mem, i);
    ck_assert_int_eq(ps_snap_take(&snap, 0, &r, 1), 0);
    released_shared = mmap(NULL, N_PAGES / 8 + 1, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(released_shared, MAP_FAILED);
    /* What the worker's release hook does, here in the parent. */
    ck_assert_uint_eq(ps_snap_mark(snap, (uint8_t *)released_shared,
                                   (uintptr_t)mem + 100 * psize(),
                                   (uintptr_t)mem + 164 * psize()), 64);
    ck_assert_uint_eq(ps_snap_mark(snap, (uint8_t *)released_shared,
                                   (uintptr_t)mem + 100 * psize(),
                                   (uintptr_t)mem + 110 * psize()), 0);
    child_start(&a, release_and_reuse, mem);
    child_wait_step(&a);
    ck_assert_int_eq(ps_pagemap_open(&pm, a.pid), 0);
    ck_assert_int_eq(ps_count_copied_fd(snap, &pm, &copied), 0);
    ck_assert_uint_eq(copied, 10 + 64);             /* the old mistake */
    ck_assert_int_eq(ps_count_copied_excl(snap, &pm,
                                          (uint8_t *)released_shared,
                                          &copied, &released), 0);
    ck_assert_uint_eq(copied, 10);
    ck_assert_uint_eq(released, 64);
    ps_pagemap_close(&pm);
    child_finish(&a);
    munmap(released_shared, N_PAGES / 8 + 1);
    ps_snap_free(snap);
    munmap(mem, N_PAGES * psize());
}
END_TEST

/* Step 0 copies 10 pages; step 1 writes 5 of them again and 10 more. */
static void
write_in_steps(int step, void *arg)
{
    if (step == 0)
        for (size_t i = 0; i < 10; i++)
            touch(arg, i * 3);
    else if (step == 1)
        for (size_t i = 5; i < 20; i++)
            touch(arg, i * 3);
}

START_TEST(procstat_copy_count_sampled)
{
    char *mem = map_pages(N_PAGES);
    ps_range_t r = range_of(mem, N_PAGES);
    ps_pagemap_t pm;
    ps_snap_t *snap;
    child_t a;
    size_t copied;

    for (size_t i = 0; i < N_PAGES; i++)
        touch(mem, i);
    ck_assert_int_eq(ps_snap_take(&snap, 0, &r, 1), 0);
    child_start(&a, write_in_steps, mem);
    ck_assert_int_eq(ps_pagemap_open(&pm, a.pid), 0);
    ck_assert_int_eq(pm.pid, a.pid);

    child_wait_step(&a);
    ck_assert_int_eq(ps_count_copied_fd(snap, &pm, &copied), 0);
    ck_assert_uint_eq(copied, 10);
    child_send(&a, 'n');
    child_wait_step(&a);
    ck_assert_int_eq(ps_count_copied_fd(snap, &pm, &copied), 0);
    ck_assert_uint_eq(copied, 20);

    ps_pagemap_close(&pm);
    child_finish(&a);
    ps_snap_free(snap);
    munmap(mem, N_PAGES * psize());
}
END_TEST

static void
write_outside(int step, void *arg)
{
    static const size_t in_range[] = { 0, 3, 100, 200, N_PAGES - 1 };
    char *fresh;

    if (step != 0)
        return;
    for (size_t i = 0; i < sizeof(in_range) / sizeof(in_range[0]); i++)
        touch(arg, in_range[i]);
    for (size_t i = N_PAGES; i < 2 * N_PAGES; i++)
        touch(arg, i);                          /* present, not in range */
    fresh = mmap(NULL, 64 * psize(), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fresh == MAP_FAILED)
        _exit(2);
    for (size_t i = 0; i < 64; i++)
        touch(fresh, i);
}

START_TEST(procstat_copy_ignores_outside_ranges)
{
    char *mem = map_pages(2 * N_PAGES);
    ps_range_t r = range_of(mem, N_PAGES);     /* first half only */
    ps_snap_t *snap;
    child_t a;
    size_t copied;

    for (size_t i = 0; i < 2 * N_PAGES; i++)
        touch(mem, i);
    ck_assert_int_eq(ps_snap_take(&snap, 0, &r, 1), 0);
    ck_assert_uint_eq(ps_snap_pages(snap), N_PAGES);
    ck_assert_uint_eq(ps_snap_total_pages(snap), N_PAGES);
    child_start(&a, write_outside, mem);
    child_wait_step(&a);
    ck_assert_int_eq(ps_count_copied(snap, a.pid, &copied), 0);
    ck_assert_uint_eq(copied, 5);
    child_finish(&a);
    ps_snap_free(snap);
    munmap(mem, 2 * N_PAGES * psize());
}
END_TEST

static void
write_all(int step, void *arg)
{
    if (step == 0)
        for (size_t i = 0; i < N_PAGES; i++)
            touch(arg, i);
}

START_TEST(procstat_copy_ignores_new_pages)
{
    char *mem = map_pages(N_PAGES);
    ps_range_t r = range_of(mem, N_PAGES);
    uint8_t bits[N_PAGES / 8];
    ps_snap_t *snap;
    child_t a;
    size_t copied;

    for (size_t i = 0; i < N_PAGES; i += 2)
        touch(mem, i);                          /* odd pages: never */
    ck_assert_int_eq(ps_snap_take(&snap, 0, &r, 1), 0);
    ck_assert_uint_eq(ps_snap_pages(snap), N_PAGES / 2);
    ck_assert_uint_eq(ps_snap_total_pages(snap), N_PAGES);
    child_start(&a, write_all, mem);
    child_wait_step(&a);
    ck_assert_int_eq(ps_copied_bitmap(snap, a.pid, bits, &copied), 0);
    ck_assert_uint_eq(copied, N_PAGES / 2);     /* odd ones are new */
    for (size_t i = 0; i < N_PAGES; i++)
        ck_assert_int_eq(bit_is_set(bits, i), i % 2 == 0);
    child_finish(&a);
    ps_snap_free(snap);
    munmap(mem, N_PAGES * psize());
}
END_TEST

/*
 * Two ranges given high address first: bitmap bits follow the order of
 * the ranges, not of the addresses.
 */
typedef struct two_regions {
    char *low;
    char *high;
} two_regions_t;

static void
write_two(int step, void *arg)
{
    two_regions_t *t = arg;

    if (step == 0) {
        touch(t->low, 5);
        touch(t->high, 7);
    }
}

START_TEST(procstat_bitmap_follows_range_order)
{
    char *m1 = map_pages(64), *m2 = map_pages(64);
    two_regions_t t = { m1 < m2 ? m1 : m2, m1 < m2 ? m2 : m1 };
    ps_range_t r[2] = { range_of(t.high, 64), range_of(t.low, 64) };
    const ps_range_t *got;
    uint8_t bits[128 / 8];
    ps_snap_t *snap;
    child_t a;
    size_t copied, n;

    for (size_t i = 0; i < 64; i++) {
        touch(m1, i);
        touch(m2, i);
    }
    ck_assert_int_eq(ps_snap_take(&snap, 0, r, 2), 0);
    got = ps_snap_ranges(snap, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_mem_eq(got, r, sizeof(r));
    child_start(&a, write_two, &t);
    child_wait_step(&a);
    ck_assert_int_eq(ps_copied_bitmap(snap, a.pid, bits, &copied), 0);
    ck_assert_uint_eq(copied, 2);
    ck_assert(bit_is_set(bits, 7));             /* high comes first */
    ck_assert(bit_is_set(bits, 64 + 5));
    child_finish(&a);
    ps_snap_free(snap);
    munmap(m1, 64 * psize());
    munmap(m2, 64 * psize());
}
END_TEST

/*
 * A sparse range over several 8192-page pagemap batches: the pages on
 * either side of a batch boundary, and the last page, are counted.
 */
#define BIG_PAGES   (3 * 8192 + 100)

static const size_t big_present[] = {
    0, 8191, 8192, 8193, 16384, 20000, BIG_PAGES - 1
};
static const size_t big_written[] = { 8191, 8192, 16384, BIG_PAGES - 1 };

static void
write_big(int step, void *arg)
{
    if (step != 0)
        return;
    for (size_t i = 0; i < sizeof(big_written) / sizeof(big_written[0]); i++)
        touch(arg, big_written[i]);
    touch(arg, 100);                            /* new, not a copy */
    touch(arg, 8190);
}

START_TEST(procstat_copy_count_across_batches)
{
    const size_t npresent = sizeof(big_present) / sizeof(big_present[0]);
    const size_t nwritten = sizeof(big_written) / sizeof(big_written[0]);
    char *mem = map_pages(BIG_PAGES);
    ps_range_t r = range_of(mem, BIG_PAGES);
    uint8_t *bits = malloc((BIG_PAGES + 7) / 8);
    ps_snap_t *snap;
    child_t a;
    size_t copied;

    ck_assert_ptr_nonnull(bits);
    for (size_t i = 0; i < npresent; i++)
        touch(mem, big_present[i]);
    ck_assert_int_eq(ps_snap_take(&snap, 0, &r, 1), 0);
    ck_assert_uint_eq(ps_snap_pages(snap), npresent);
    ck_assert_uint_eq(ps_snap_total_pages(snap), BIG_PAGES);
    child_start(&a, write_big, mem);
    child_wait_step(&a);
    ck_assert_int_eq(ps_copied_bitmap(snap, a.pid, bits, &copied), 0);
    ck_assert_uint_eq(copied, nwritten);
    ck_assert_uint_eq(bits_count(bits, BIG_PAGES), nwritten);
    for (size_t i = 0; i < nwritten; i++)
        ck_assert(bit_is_set(bits, big_written[i]));
    child_finish(&a);
    ps_snap_free(snap);
    free(bits);
    munmap(mem, BIG_PAGES * psize());
}
END_TEST

START_TEST(procstat_snap_rejects_bad_ranges)
{
    char *mem = map_pages(4);
    ps_range_t unaligned = { (uintptr_t)mem + 1, (uintptr_t)mem + psize() };
    ps_range_t reversed = { (uintptr_t)mem + psize(), (uintptr_t)mem };
    ps_range_t empty = { (uintptr_t)mem, (uintptr_t)mem };
    ps_snap_t *snap = (ps_snap_t *)(void *)mem;    /* not NULL */
    size_t copied = 99;

    ck_assert_int_eq(ps_snap_take(&snap, 0, &unaligned, 1), -EINVAL);
    ck_assert_ptr_null(snap);
    ck_assert_int_eq(ps_snap_take(&snap, 0, &reversed, 1), -EINVAL);
    ck_assert_int_eq(ps_snap_take(&snap, 0, NULL, 1), -EINVAL);
    ck_assert_int_eq(ps_snap_take(&snap, 0, &empty, 1), 0);
    ck_assert_uint_eq(ps_snap_total_pages(snap), 0);
    ck_assert_int_eq(ps_count_copied(snap, 0, &copied), 0);
    ck_assert_uint_eq(copied, 0);
    ps_snap_free(snap);
    ps_snap_free(NULL);
    munmap(mem, 4 * psize());
}
END_TEST

/* ---- processes that are gone ------------------------------------------- */

START_TEST(procstat_missing_pid)
{
    char *mem = map_pages(4);
    ps_range_t r = range_of(mem, 4);
    pid_t gone = reaped_pid();
    uint8_t bits[1] = { 0xff };
    ps_pagemap_t pm;
    ps_snap_t *snap, *other = NULL;
    ps_smaps_t sm;
    ps_stat_t st;
    size_t copied;

    touch(mem, 0);
    ck_assert_int_eq(ps_snap_take(&snap, 0, &r, 1), 0);
    ck_assert_int_eq(ps_read_stat(gone, &st), -ENOENT);
    ck_assert_int_eq(ps_read_smaps_rollup(gone, &sm), -ENOENT);
    ck_assert_int_eq(ps_pagemap_open(&pm, gone), -ENOENT);
    ck_assert_int_eq(pm.fd, -1);
    ck_assert_int_eq(ps_count_copied(snap, gone, &copied), -ENOENT);
    ck_assert_int_eq(ps_copied_bitmap(snap, gone, bits, &copied), -ENOENT);
    ck_assert_int_eq(bits[0], 0);
    ck_assert_int_eq(ps_snap_take(&other, gone, &r, 1), -ENOENT);
    ck_assert_ptr_null(other);
    ck_assert_int_eq(ps_read_stat(-1, &st), -EINVAL);
    ps_snap_free(snap);
    munmap(mem, 4 * psize());
}
END_TEST

START_TEST(procstat_exited_child_esrch)
{
    char *mem = map_pages(N_PAGES);
    ps_range_t r = range_of(mem, N_PAGES);
    ps_pagemap_t pm;
    ps_snap_t *snap;
    ps_smaps_t sm;
    ps_stat_t st;
    siginfo_t info;
    child_t a;
    size_t copied;
    pid_t zombie;

    for (size_t i = 0; i < N_PAGES; i++)
        touch(mem, i);
    ck_assert_int_eq(ps_snap_take(&snap, 0, &r, 1), 0);

    /* A pagemap opened while the child lived reads -ESRCH once it exits. */
    child_start(&a, write_chosen, mem);
    child_wait_step(&a);
    ck_assert_int_eq(ps_pagemap_open(&pm, a.pid), 0);
    child_finish(&a);
    ck_assert_int_eq(ps_count_copied_fd(snap, &pm, &copied), -ESRCH);
    ps_pagemap_close(&pm);

    /* A zombie still has a stat, but no address space. */
    zombie = fork();
    ck_assert_int_ge(zombie, 0);
    if (zombie == 0)
        _exit(0);
    ck_assert_int_eq(waitid(P_PID, (id_t)zombie, &info, WEXITED | WNOWAIT),
                     0);
    ck_assert_int_eq(ps_read_stat(zombie, &st), 0);
    ck_assert_int_eq(st.state, 'Z');
    ck_assert_int_eq(ps_count_copied(snap, zombie, &copied), -ESRCH);
    ck_assert_int_eq(ps_read_smaps_rollup(zombie, &sm), -ESRCH);
    ck_assert_int_eq(waitpid(zombie, NULL, 0), zombie);

    ps_snap_free(snap);
    munmap(mem, N_PAGES * psize());
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("procstat");
    TCase *parse = tcase_create("parse");
    TCase *pagemap = tcase_create("pagemap");

    tcase_add_test(parse, procstat_smaps_rollup_6x);
    tcase_add_test(parse, procstat_smaps_rollup_old_kernel);
    tcase_add_test(parse, procstat_smaps_rollup_garbage);
    tcase_add_test(parse, procstat_smaps_rollup_self);
    tcase_add_test(parse, procstat_stat_weird_comm);
    tcase_add_test(parse, procstat_stat_spoof_comm);
    tcase_add_test(parse, procstat_stat_garbage);
    tcase_add_test(parse, procstat_stat_self);
    suite_add_tcase(s, parse);

    tcase_add_test(pagemap, procstat_copy_count_exact);
    tcase_add_test(pagemap, procstat_released_pages_excluded);
    tcase_add_test(pagemap, procstat_copy_count_sampled);
    tcase_add_test(pagemap, procstat_copy_ignores_outside_ranges);
    tcase_add_test(pagemap, procstat_copy_ignores_new_pages);
    tcase_add_test(pagemap, procstat_bitmap_follows_range_order);
    tcase_add_test(pagemap, procstat_copy_count_across_batches);
    tcase_add_test(pagemap, procstat_snap_rejects_bad_ranges);
    tcase_add_test(pagemap, procstat_missing_pid);
    tcase_add_test(pagemap, procstat_exited_child_esrch);
    suite_add_tcase(s, pagemap);

    return ts_run_suite(s);
}
