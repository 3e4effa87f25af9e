/*
 * check_identical.c -- unit tests for measure/identical.c and
 * measure/pagediff.c: exact counts of identical pages on a constructed
 * case (k pages copied, j of them written back to the same bytes), with
 * the reference read in place or from another process, a page unmapped
 * since its copy, and the differing words of a runtime heap named by
 * field.  CK_RUN_CASE=identical for one case.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "identical.h"
#include "master.h"
#include "mem.h"
#include "object.h"
#include "output.h"
#include "pagediff.h"
#include "procstat.h"
#include "support.h"

#define NPAGES 64

static size_t psize;
static char *area;                      /* NPAGES pages, each its own bytes */
static ps_snap_t *snap;

static void
setup(void)
{
    psize = (size_t)sysconf(_SC_PAGESIZE);
    area = mmap(NULL, NPAGES * psize, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(area != MAP_FAILED);
    madvise(area, NPAGES * psize, MADV_NOHUGEPAGE);
    for (size_t i = 0; i < NPAGES; i++)
        memset(area + i * psize, (int)(i * 7 + 1), psize);
    ps_range_t r = { (uintptr_t)area, (uintptr_t)area + NPAGES * psize };
    ck_assert_int_eq(ps_snap_take(&snap, 0, &r, 1), 0);
    ck_assert_uint_eq(ps_snap_pages(snap), NPAGES);
}

static void
teardown(void)
{
    ps_snap_free(snap);
    munmap(area, NPAGES * psize);
}

/* A child that runs fn(arg), says so on a pipe, then waits to be killed. */
typedef void (*child_fn)(int arg);

static pid_t
child(child_fn fn, int arg)
{
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(ready[0]);
        if (fn != NULL)
            fn(arg);
        char b = 1;
        if (write(ready[1], &b, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(ready[1]);
    char b;
    ck_assert_int_eq(read(ready[0], &b, 1), 1);
    close(ready[0]);
    return pid;
}

static void
reap(pid_t pid)
{
    int st;
    kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

#define K 20                            /* pages written */
#define J 7                             /* of those, written back */

/* Write pages 0, 3, 6, ... (K of them); put the first J back. */
static void
write_k_back_j(int arg)
{
    (void)arg;
    for (size_t i = 0; i < K; i++) {
        volatile char *c = area + 3 * i * psize + 100;
        *c ^= 0x5a;                     /* copied: the bytes differ */
        if (i < J)
            *c ^= 0x5a;                 /* and back: the same bytes */
    }
}

static int
bit(const uint8_t *b, size_t i)
{
    return (b[i / 8] >> (i % 8)) & 1;
}

START_TEST(identical_counts_pages_written_back)
{
    uint8_t bits[NPAGES / 8 + 1], ident[NPAGES / 8 + 1];
    size_t copied, n;
    pid_t twin = child(NULL, 0);        /* a reference that writes nothing */
    pid_t c = child(write_k_back_j, 0);
    ck_assert_int_eq(ps_copied_bitmap(snap, c, bits, &copied), 0);
    ck_assert_uint_eq(copied, K);       /* every write copies, even back */
    /* the reference in place (this process, as the master reads itself) */
    ck_assert_int_eq(ms_identical_count(snap, bits, c, 0, ident, &n), 0);
    ck_assert_uint_eq(n, J);
    for (size_t i = 0; i < NPAGES; i++)
        ck_assert_int_eq(bit(ident, i), i % 3 == 0 && i / 3 < J);
    /* the reference in another process (a mold), through its mem file */
    ck_assert_int_eq(ms_identical_count(snap, bits, c, twin, NULL, &n), 0);
    ck_assert_uint_eq(n, J);
    /* Reading copies nothing: the twin's pages, read above while this
     * process maps them too, are still shared (process_vm_readv() would
     * have unshared, i.e. copied, every one of them).  And a page that
     * is not in the copied bitmap is never compared. */
    ck_assert_int_eq(ps_copied_bitmap(snap, twin, bits, &copied), 0);
    ck_assert_uint_eq(copied, 0);
    ck_assert_int_eq(ms_identical_count(snap, bits, c, 0, NULL, &n), 0);
    ck_assert_uint_eq(n, 0);
    reap(c);
    reap(twin);
}
END_TEST

/* Copy page 0 and 1 without changing them; then unmap page 1. */
static void
copy_two_then_unmap(int arg)
{
    (void)arg;
    for (size_t i = 0; i < 2; i++) {
        volatile char *p = area + i * psize;
        *p = *p;
    }
}

START_TEST(identical_page_gone_is_not_identical)
{
    uint8_t bits[NPAGES / 8 + 1];
    size_t copied, n;
    int go[2];
    ck_assert_int_eq(pipe(go), 0);
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    pid_t c = fork();
    ck_assert_int_ge(c, 0);
    if (c == 0) {
        char b = 1;
        copy_two_then_unmap(0);
        if (write(ready[1], &b, 1) != 1 || read(go[0], &b, 1) != 1)
            _exit(1);
        munmap(area + psize, psize);
        if (write(ready[1], &b, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    char b;
    ck_assert_int_eq(read(ready[0], &b, 1), 1);
    ck_assert_int_eq(ps_copied_bitmap(snap, c, bits, &copied), 0);
    ck_assert_uint_eq(copied, 2);
    ck_assert_int_eq(ms_identical_count(snap, bits, c, 0, NULL, &n), 0);
    ck_assert_uint_eq(n, 2);            /* written with the same bytes */
    ck_assert_int_eq(write(go[1], &b, 1), 1);
    ck_assert_int_eq(read(ready[0], &b, 1), 1);
    /* the bitmap from before: page 1 is gone, which is no error */
    ck_assert_int_eq(ms_identical_count(snap, bits, c, 0, NULL, &n), 0);
    ck_assert_uint_eq(n, 1);
    reap(c);
    /* and a process that is gone is one */
    ck_assert_int_eq(ms_identical_count(snap, bits, c, 0, NULL, &n), -ESRCH);
}
END_TEST

/* ---- pagediff: the differing words, by field --------------------------- */

static rt_heap_t *heap;
static rt_obj_t *ints, *strs;           /* lists of fresh ints and strs */

/* In the child: two refcounts that stay up (one +1, one +2), one str
 * hash computed and cached, and a refcount that goes up and back. */
static void
write_fields(int arg)
{
    (void)arg;
    rt_incref(rt_list_get(ints, 10));
    rt_incref(rt_list_get(ints, 900));
    rt_incref(rt_list_get(ints, 900));
    rt_hash(rt_list_get(strs, 500));
    rt_incref(rt_list_get(ints, 1500));
    rt_decref(rt_list_get(ints, 1500));
}

START_TEST(pagediff_names_the_fields)
{
#ifdef RT_MALLOC_BYPASS
    TS_SKIP("the page diff needs the arena allocator (RT_MALLOC_BYPASS "
            "sends objects to malloc)");
#endif
    char dir[128], path[256], err[256];
    heap = rt_heap_new();
    ck_assert_ptr_nonnull(heap);
    ints = rt_list_new(heap);
    strs = rt_list_new(heap);
    rt_obj_t *mod = rt_module_new(heap, "m");
    rt_dict_set_str(heap, rt_module_dict(mod), "ints", ints);
    rt_dict_set_str(heap, rt_module_dict(mod), "strs", strs);
    for (int i = 0; i < 2000; i++) {
        char s[32];
        snprintf(s, sizeof s, "string number %d", i);
        ck_assert_int_eq(rt_list_append_steal(ints, rt_int_new(heap,
                                                               100000 + i)),
                         0);
        ck_assert_int_eq(rt_list_append_steal(strs, rt_str_from(heap, s)),
                         0);
    }
    ps_snap_t *hs;
    ck_assert_int_eq(srv_snapshot_heap(&hs), 0);
    pid_t c = child(write_fields, 0);
    size_t total = ps_snap_total_pages(hs), copied;
    uint8_t *bits = calloc(total / 8 + 1, 1);
    ck_assert_ptr_nonnull(bits);
    ck_assert_int_eq(ps_copied_bitmap(hs, c, bits, &copied), 0);
    ck_assert_uint_ge(copied, 2);
    ck_assert_uint_le(copied, 4);       /* at most one page per object */

    ms_pagediff_t *d;
    ck_assert_int_eq(ms_pagediff_build(&d, heap, hs), 0);
    ck_assert_int_eq(ts_tmpdir(dir, sizeof dir, "pagediff"), 0);
    snprintf(path, sizeof path, "%s/diffs.csv", dir);
    ms_csv_t w;
    ck_assert_int_eq(ms_csv_open(&w, path, &ms_diffs_table), 0);
    ms_diff_row_t row = { .run_id = "r", .policy = "p", .worker = 0,
                          .pid = c };
    ck_assert_int_eq(ms_pagediff_add(d, &w, &row, c, bits, NULL), 0);
    ck_assert_int_eq(ms_csv_close(&w), 0);
    reap(c);

    ts_csv_t t;
    ck_assert_msg(ts_csv_load(&t, path, err, sizeof err) == 0, "%s", err);
    /* exactly two rows: two refcount words up (the +1 and the +2; the
     * one put back is no difference), one str body word (the hash) */
    ck_assert_uint_eq(t.nrows, 2);
    int seen = 0;
    for (size_t r = 0; r < t.nrows; r++) {
        const char *f = ts_csv_get(&t, r, "field");
        const char *ty = ts_csv_get(&t, r, "type");
        if (strcmp(f, "refcount") == 0) {
            ck_assert_str_eq(ty, "int");
            ck_assert_int_eq(ts_csv_long(&t, r, "words"), 2);
            ck_assert_int_eq(ts_csv_long(&t, r, "words_up"), 2);
            ck_assert_int_eq(ts_csv_long(&t, r, "words_down"), 0);
            seen |= 1;
        } else {
            ck_assert_str_eq(f, "body");
            ck_assert_str_eq(ty, "str");
            ck_assert_int_eq(ts_csv_long(&t, r, "words"), 1);
            seen |= 2;
        }
    }
    ck_assert_int_eq(seen, 3);
    ts_csv_free(&t);
    ts_rmdir(dir);
    ms_pagediff_free(d);
    free(bits);
    ps_snap_free(hs);
    rt_decref(mod);
    rt_heap_free(heap);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("identical");
    TCase *tc = tcase_create("identical");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, identical_counts_pages_written_back);
    tcase_add_test(tc, identical_page_gone_is_not_identical);
    suite_add_tcase(s, tc);
    TCase *td = tcase_create("pagediff");
    tcase_add_test(td, pagediff_names_the_fields);
    suite_add_tcase(s, td);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
