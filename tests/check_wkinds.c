/*
 * check_wkinds.c -- --write-kinds: the runtime built with RT_WRITE_KINDS
 * (as bin/cowlab-kinds is) notes the kind of the first write to each
 * inherited page, and measure/wset.c pairs every copy with it.  A forked
 * child writes inherited pages one kind at a time, and each copy must
 * carry that kind: refcounts (exactly the pages read), the collector's
 * headers (every copy a collection makes), an object's contents, new
 * objects in inherited free blocks with the allocator's metadata, and a
 * page the runtime never wrote ("other").  Built against the kinds objects
 * (Makefile); white-box for gc__foreach.  check_wset.c shows the default
 * build has none of it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gc.h"
#include "internal.h"
#include "mem.h"
#include "object.h"
#include "procstat.h"
#include "support.h"
#include "wkinds.h"
#include "wset.h"

#define N_OBJS 6000

typedef struct kcase {
    rt_heap_t *h;
    rt_obj_t *lists[N_OBJS];    /* each holds one int */
    rt_obj_t *dict;
    rt_obj_t *strs[400];        /* hashes not cached yet */
    char *raw;                  /* a page of an arena the runtime left */
    ps_snap_t *snap;
} kcase_t;

/* What the child reports: copies by (cause, kind), and totals. */
typedef struct kreport {
    long kind[MS_NCAUSES][MS_NKINDS];
    long copied[MS_NCAUSES];
    long step[8];               /* new copies found at each step */
    long expect_refcount;       /* pages of the ints read */
    char why[256];
} kreport_t;

#ifndef RT_MALLOC_BYPASS    /* the arena allocator's pages (see below) */
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

static size_t
page_of(const ps_snap_t *s, const void *p)
{
    size_t n, base = 0, ps = (size_t)sysconf(_SC_PAGESIZE);
    const ps_range_t *r = ps_snap_ranges(s, &n);
    uintptr_t a = (uintptr_t)p;
    for (size_t i = 0; i < n; i++) {
        if (a >= r[i].start && a < r[i].end)
            return base + (a - r[i].start) / ps;
        base += (r[i].end - r[i].start) / ps;
    }
    return SIZE_MAX;
}

static int read_it(size_t i) { return i % 53 == 0; }

static void
child(kcase_t *c, kreport_t *r)
{
    ms_wset_t *w;
    if (ms_wset_start(&w, c->snap, r->why, sizeof r->why) < 0)
        _exit(10);
    size_t n;
    const ps_range_t *rg = ps_snap_ranges(c->snap, &n);
    if (rt_wk_start((const struct mem_range *)(const void *)rg, n) < 0)
        _exit(11);
    ms_wset_set_kinds(w, rt_wk_table(NULL));
    /* 1. reads: refcounts */
    for (size_t i = 0; i < N_OBJS; i++) {
        if (read_it(i)) {
            rt_obj_t *v = rt_list_get(c->lists[i], 0);
            rt_incref(v);
            __asm__ volatile("" ::: "memory");
            rt_decref(v);
        }
    }
    r->step[0] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    /* 2. a full collection: the collector's headers */
    gc_collect(GC_GEN_OLDEST);
    r->step[1] = ms_wset_close(w, MS_CAUSE_GC, -1);
    /* 3. contents: a new entry in an inherited dict, and the strings'
     *    hashes, cached at their first use (pages nothing else wrote) */
    rt_obj_t *k = rt_str_from(c->h, "a-new-key");
    rt_dict_set(c->dict, k, k);
    rt_decref(k);
    for (int i = 0; i < 400; i++)
        (void)rt_hash(c->strs[i]);
    /* 4. new objects: into the blocks the parent freed */
    rt_obj_t *fresh[64];
    for (int i = 0; i < 64; i++)
        fresh[i] = rt_int_new(c->h, 100000 + i);
    /* 5. a page the runtime does not write */
    c->raw[0] = 1;
    r->step[2] = ms_wset_close(w, MS_CAUSE_REQUEST, -1);
    for (int i = 0; i < 64; i++)
        rt_decref(fresh[i]);
    for (int cause = 0; cause < MS_NCAUSES; cause++) {
        r->copied[cause] = (long)ms_wset_copied(w, (ms_cause_t)cause);
        for (int kind = 0; kind < MS_NKINDS; kind++)
            r->kind[cause][kind] = (long)ms_wset_kind_copied(
                w, (ms_cause_t)cause, kind);
    }
    ms_wset_free(w);
}
#endif

START_TEST(wkinds_every_copy_has_its_kind)
{
#ifdef RT_MALLOC_BYPASS
    TS_SKIP("page figures need the arena allocator (RT_MALLOC_BYPASS)");
#else
    char why[256];
    if (ms_wset_probe(why, sizeof why) < 0)
        TS_SKIP("write sets unavailable here: %s", why);
    ck_assert_int_eq(rt_wk_built(), 1);
    kcase_t *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    c->h = rt_heap_new();
    ck_assert_ptr_nonnull(c->h);
    for (size_t i = 0; i < N_OBJS; i++) {
        c->lists[i] = rt_list_new(c->h);
        ck_assert_int_eq(rt_list_append_steal(c->lists[i],
                         rt_int_new(c->h, 1000 + (int64_t)i)), 0);
    }
    c->dict = rt_dict_new(c->h);
    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        ck_assert_int_eq(rt_dict_set_str(c->h, c->dict, key,
                                         c->lists[i]), 0);
    }
    for (int i = 0; i < 400; i++) {
        char text[120];
        memset(text, 'a' + i % 26, sizeof text);
        snprintf(text, 16, "s%d", i);
        c->strs[i] = rt_str_new(c->h, text, sizeof text);
        ck_assert_ptr_nonnull(c->strs[i]);
    }
    /* Free blocks in inherited pools: the child's new ints land there. */
    rt_obj_t *gone[256];
    for (int i = 0; i < 256; i++)
        gone[i] = rt_int_new(c->h, 500000 + i);
    for (int i = 0; i < 256; i++)
        if (i % 2)
            rt_decref(gone[i]);
    gc_collect(GC_GEN_OLDEST);
    /* An arena page no object uses: a raw block the runtime never
     * touches again (its first bytes written here, before the fork). */
    c->raw = mem_alloc(64 * 1024);
    ck_assert_ptr_nonnull(c->raw);
    memset(c->raw, 7, 64 * 1024);
    c->raw += 32 * 1024;                /* a page inside it */
    c->snap = heap_snapshot();

    /* What the reads must copy: the ints' pages. */
    uint8_t *want = calloc(ps_snap_total_pages(c->snap), 1);
    long k = 0;
    for (size_t i = 0; i < N_OBJS; i++) {
        if (!read_it(i))
            continue;
        size_t p = page_of(c->snap, rt_list_get(c->lists[i], 0));
        ck_assert_uint_ne(p, SIZE_MAX);
        k += !want[p];
        want[p] = 1;
    }
    kreport_t *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(r, MAP_FAILED);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        r->why[0] = '\0';
        child(c, r);
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child: status %d %s", status, r->why);
    long (*kd)[MS_NKINDS] = r->kind;
    printf("wkinds: reads copied %ld pages (refcount %ld), the collection "
           "%ld (gc %ld), then %ld: payload %ld, new %ld, allocator %ld, "
           "other %ld\n", r->step[0], kd[MS_CAUSE_REQUEST][RT_WK_REFCOUNT],
           r->step[1], kd[MS_CAUSE_GC][RT_WK_GC], r->step[2],
           kd[MS_CAUSE_REQUEST][RT_WK_PAYLOAD],
           kd[MS_CAUSE_REQUEST][RT_WK_NEW],
           kd[MS_CAUSE_REQUEST][RT_WK_ALLOC],
           kd[MS_CAUSE_REQUEST][RT_WK_OTHER]);
    /* 1: exactly the ints' pages, and all of them refcount writes */
    ck_assert_int_eq(r->step[0], k);
    /* 2: a collection writes only headers */
    ck_assert_int_eq(kd[MS_CAUSE_GC][RT_WK_GC], r->copied[MS_CAUSE_GC]);
    ck_assert_int_gt(r->copied[MS_CAUSE_GC], 0);
    /* 3-5: each kind seen, the raw page the only "other" */
    ck_assert_int_ge(kd[MS_CAUSE_REQUEST][RT_WK_PAYLOAD], 1);
    ck_assert_int_ge(kd[MS_CAUSE_REQUEST][RT_WK_NEW], 1);
    ck_assert_int_ge(kd[MS_CAUSE_REQUEST][RT_WK_ALLOC], 1);
    ck_assert_int_eq(kd[MS_CAUSE_REQUEST][RT_WK_OTHER], 1);
    /* every copy has exactly one kind */
    for (int cause = 0; cause < MS_NCAUSES; cause++) {
        long sum = 0;
        for (int kind = 0; kind < MS_NKINDS; kind++)
            sum += kd[cause][kind];
        if (cause != MS_CAUSE_BEFORE)
            ck_assert_int_eq(sum, r->copied[cause]);
    }
    ck_assert_int_eq(kd[MS_CAUSE_REQUEST][RT_WK_REFCOUNT], k);
    munmap(r, sizeof *r);
    free(want);
    for (int i = 0; i < 400; i++)
        rt_decref(c->strs[i]);
    ps_snap_free(c->snap);
    rt_heap_free(c->h);
    free(c);
#endif
}
END_TEST

START_TEST(wkinds_table_first_write_wins)
{
    ck_assert_int_eq(rt_wk_built(), 1);
    static char page[3][4096] __attribute__((aligned(4096)));
    mem_range_t r = { (uintptr_t)page, (uintptr_t)page + sizeof page };
    ck_assert_int_eq(rt_wk_start(&r, 1), 0);
    size_t n;
    const uint8_t *t = rt_wk_table(&n);
    ck_assert_uint_eq(n, 3);
    RT_WK_NOTE(&page[1][8], RT_WK_GC);
    RT_WK_NOTE(&page[1][16], RT_WK_REFCOUNT);       /* not the first */
    RT_WK_SPAN(&page[1][4000], 200, RT_WK_PAYLOAD); /* pages 1 and 2 */
    static char outside[64];
    RT_WK_NOTE(outside, RT_WK_ALLOC);               /* not a page of it */
    ck_assert_uint_eq(t[0], RT_WK_OTHER);
    ck_assert_uint_eq(t[1], RT_WK_GC);
    ck_assert_uint_eq(t[2], RT_WK_PAYLOAD);
    rt_wk_stop();
    ck_assert_ptr_null(rt_wk_table(NULL));
    mem_range_t bad[2] = { r, r };                  /* overlapping */
    ck_assert_int_eq(rt_wk_start(bad, 2), -1);
    ck_assert_str_eq(rt_wk_name(RT_WK_ALLOC), "allocator");
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("wkinds");
    TCase *tc = tcase_create("kinds");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, wkinds_table_first_write_wins);
    tcase_add_test(tc, wkinds_every_copy_has_its_kind);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
