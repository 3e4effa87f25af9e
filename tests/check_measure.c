/* check_measure.c -- tests for the measurement layer: the CSV headers are
 * the documented schema, a SIGKILLed master leaves whole rows, copies by
 * cause add up to the independently sampled count, teardown copies, the
 * type census, and the sampler's self-limiting interval. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "census.h"
#include "master.h"
#include "mem.h"
#include "procstat.h"
#include "support.h"

static ts_server_t S = TS_SERVER_NONE;
static char tmpdir[64], outdir[128];

/* ---- documented schema -------------------------------------------------- */

/* The column names of the README table after `marker`, comma-joined. */
static void
readme_columns(const char *marker, char *out, size_t cap)
{
    FILE *f = fopen("README.md", "r");
    ck_assert_msg(f != NULL, "README.md not found (run from the repo root)");
    char line[1024];
    int in = 0;
    out[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, marker)) {
            in = 1;
            continue;
        }
        if (!in)
            continue;
        if (strstr(line, "<!-- end -->"))
            break;
        if (strncmp(line, "| ", 2) != 0 || strncmp(line, "| column", 8) == 0)
            continue;
        char name[128];
        if (sscanf(line, "| %127[a-z0-9_] |", name) == 1) {
            if (out[0])
                strncat(out, ",", cap - strlen(out) - 1);
            strncat(out, name, cap - strlen(out) - 1);
        }
    }
    fclose(f);
}

START_TEST(measure_headers_are_the_documented_schema)
{
    char cols[4096];
    readme_columns("<!-- samples.csv columns -->", cols, sizeof cols);
    ck_assert_str_eq(cols, srv_samples_header);
    readme_columns("<!-- runs.csv columns -->", cols, sizeof cols);
    ck_assert_str_eq(cols, srv_runs_header);
    readme_columns("<!-- types.csv columns -->", cols, sizeof cols);
    ck_assert_str_eq(cols, srv_types_header);
    /* DESIGN.md's list comes first, in its order: renaming breaks plots. */
    const char *design =
        "run_id,policy,worker,pid,t_ms,requests,rss_kb,pss_kb,"
        "shared_clean_kb,shared_dirty_kb,private_clean_kb,private_dirty_kb,"
        "minflt,majflt,heap_pages,heap_copied_pages,heap_shared_pct,"
        "gc_collections_0,gc_collections_1,gc_collections_2,gc_time_us,"
        "faults_gc,faults_request,faults_other";
    ck_assert_int_eq(strncmp(srv_samples_header, design, strlen(design)), 0);
}
END_TEST

START_TEST(measure_sampler_keeps_to_one_percent)
{
    ck_assert_uint_eq(srv_sample_interval(250, 1.0, 1), 250);
    ck_assert_uint_eq(srv_sample_interval(250, 2.5, 1), 250);
    ck_assert_uint_eq(srv_sample_interval(250, 10.0, 1), 1000);
    ck_assert_uint_eq(srv_sample_interval(250, 0.1, 1), 250); /* back down */
    ck_assert_uint_eq(srv_sample_interval(250, 1e9, 1), 600000);
    ck_assert_uint_eq(srv_sample_interval(250, 10.0, 5), 250);
    ck_assert_uint_eq(srv_sample_interval(250, 20.0, 5), 400);
    ck_assert_uint_eq(srv_sample_interval(250, 1e6, 0), 250); /* no limit */
}
END_TEST

/* ---- the heap's pages: every range, or an error ---------------------- */

/*
 * The master once listed at most 65,536 heap ranges and silently dropped
 * the rest.  Large blocks that malloc() places apart (a page of someone
 * else's between each two) are ranges of their own: 65,600 of them, about
 * 260 MB of address space and one touched page each.
 */
enum { MANY = 65600 };

START_TEST(measure_snapshot_takes_every_range)
{
#if defined(__SANITIZE_ADDRESS__)
    TS_SKIP("AddressSanitizer's malloc packs blocks of one size together: "
            "no way to make separate ranges (RT_MALLOC_BYPASS build)");
#endif
    static void *blocks[MANY], *gaps[MANY];
    ps_snap_t *snap = NULL;
    size_t nr, pg = (size_t)sysconf(_SC_PAGESIZE), total = 0;

    for (size_t i = 0; i < MANY; i++) {
        blocks[i] = mem_alloc(MEM_SMALL_MAX + 88);      /* large */
        gaps[i] = malloc(2 * pg);
        ck_assert(blocks[i] != NULL && gaps[i] != NULL);
    }
    long n = mem_ranges(NULL, 0);
    if (n <= 65536)
        TS_SKIP("malloc placed the blocks together: %ld ranges", n);
    ck_assert_int_eq(srv_snapshot_heap(&snap), 0);
    const ps_range_t *r = ps_snap_ranges(snap, &nr);
    ck_assert_uint_eq(nr, (size_t)n);               /* all of them */
    for (size_t i = 0; i < nr; i++)
        total += (r[i].end - r[i].start) / pg;
    ck_assert_uint_eq(ps_snap_total_pages(snap), total);
    ck_assert_uint_ge(ps_snap_pages(snap), MANY);   /* each block's page */
    ps_snap_free(snap);
    for (size_t i = 0; i < MANY; i++) {
        mem_free(blocks[i]);
        free(gaps[i]);
    }
}
END_TEST

/* Out of memory while listing the ranges: an error, not an empty heap. */
START_TEST(measure_snapshot_out_of_memory)
{
    void *small = mem_alloc(64), *large = mem_alloc(100000);
    ps_snap_t *snap = NULL;

    ck_assert(small != NULL && large != NULL);
    for (long n = 1; n <= 2; n++) {         /* mem_ranges() twice */
        mem_fail_after(n);
        ck_assert_int_eq(srv_snapshot_heap(&snap), -ENOMEM);
        mem_fail_after(0);
        ck_assert_ptr_null(snap);
    }
    mem_fail_after(3);
    ck_assert_int_eq(srv_snapshot_heap(&snap), 0);
    mem_fail_after(0);
    ck_assert_uint_ge(ps_snap_pages(snap), 2);
    ps_snap_free(snap);
    mem_free(small);
    mem_free(large);
}
END_TEST

static void mem_setup(void)    { ck_assert_int_eq(mem_init(), 0); }
static void mem_teardown(void) { mem_fini(); }

/* ---- running the server ------------------------------------------------- */

static void
start(const char *const *args)
{
    const char *base[] = { "--out", outdir, NULL };
    ck_assert_msg(ts_server_start(&S, base, args) == 0,
                  "server did not start");
}

static void setup(void)
{
    ck_assert_int_eq(ts_tmpdir(tmpdir, sizeof tmpdir, "measure"), 0);
    snprintf(outdir, sizeof outdir, "%s/out", tmpdir);
}

static void teardown(void)
{
    ts_server_kill(&S);
    ts_rmdir(tmpdir);
}

static int
get(const char *path)
{
    return ts_get(S.port, path, NULL, 0);
}

static int
wait_exit(void)
{
    int status = ts_server_wait(&S);
    ck_assert_int_ne(status, -1);
    return status;
}

/* outdir/name as CSV: whole rows, each with the header's fields. */
static size_t
csv_load(ts_csv_t *c, const char *name)
{
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    ck_assert_msg(ts_csv_load(c, path, err, sizeof err) == 0, "%s", err);
    return c->nrows;
}

START_TEST(measure_sigkill_master_leaves_whole_rows)
{
    const char *args[] = { "-w", "3", "--scale", "0.05", "--sample-ms", "20",
                           NULL };
    start(args);
    for (int i = 0; i < 60; i++)
        get(i % 2 ? "/api/items" : "/api/user");
    ts_sleep_ms(300);
    kill(S.pid, SIGKILL);
    int status = wait_exit();
    ck_assert(WIFSIGNALED(status));
    ts_csv_t c;
    ck_assert_uint_ge(csv_load(&c, "samples.csv"), 3);
    ts_csv_free(&c);
}
END_TEST

START_TEST(measure_copies_by_cause_add_up)
{
#ifdef RT_MALLOC_BYPASS
    TS_SKIP("copy figures need the arena allocator (RT_MALLOC_BYPASS sends "
            "objects to malloc)");
#endif
    /* Every collection bracketed: the worker's own attribution must add
     * up to what the master counts independently from outside. */
    const char *args[] = { "-w", "1", "--scale", "0.05", "--sample-ms", "25",
                           "--pagemap-gc-fraction", "1", "--exit", "finalize",
                           NULL };
    start(args);
    for (int i = 0; i < 300; i++)
        ck_assert_int_eq(get(i % 3 ? "/api/user" : "/api/items"), 200);
    ts_sleep_ms(1100);              /* the next request closes the gap */
    ck_assert_int_eq(get("/static"), 200);
    ts_sleep_ms(400);               /* quiet: samples see a still heap */
    kill(S.pid, SIGTERM);
    int status = wait_exit();
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ts_csv_t c;
    size_t n = csv_load(&c, "samples.csv");
    ck_assert_uint_ge(n, 3);
    size_t last = n - 1;
    long copied = ts_csv_long(&c, last, "heap_copied_pages");
    long gc = ts_csv_long(&c, last, "copied_by_gc");
    long req = ts_csv_long(&c, last, "copied_by_request");
    long un = ts_csv_long(&c, last, "copied_unattributed");
    long heap_pages = ts_csv_long(&c, last, "heap_pages");
    printf("measure: %ld copied = %ld gc + %ld request + %ld unattributed "
           "(%ld collections bracketed of %ld)\n", copied, gc, req, un,
           ts_csv_long(&c, last, "gc_measured"),
           ts_csv_long(&c, last, "gc_collections_0")
           + ts_csv_long(&c, last, "gc_collections_1")
           + ts_csv_long(&c, last, "gc_collections_2"));
    ck_assert_int_gt(copied, 0);
    ck_assert_int_eq(gc + req + un, copied);
    /* Unattributed: only pages copied before the worker's first read of
     * its pagemap (its start-up), never the requests' or the GC's. */
    ck_assert_int_le(un, 2);
    ck_assert_int_eq(ts_csv_long(&c, last, "gc_measured"),
                     ts_csv_long(&c, last, "gc_collections_0")
                     + ts_csv_long(&c, last, "gc_collections_1")
                     + ts_csv_long(&c, last, "gc_collections_2"));
    /* faults_other is the rest of minflt, clamped at 0: on a still
     * worker the clamp must not be what makes it add up. */
    long minflt = ts_csv_long(&c, last, "minflt");
    long fgc = ts_csv_long(&c, last, "faults_gc");
    long freq = ts_csv_long(&c, last, "faults_request");
    ck_assert_int_gt(fgc + freq, 0);
    ck_assert_int_ge(minflt, fgc + freq);
    ck_assert_int_eq(ts_csv_long(&c, last, "faults_other"),
                     minflt - fgc - freq);
    ts_csv_free(&c);
    ts_csv_t r;
    ck_assert_uint_eq(csv_load(&r, "runs.csv"), 1);
    long td = ts_csv_long(&r, 0, "copied_by_teardown");
    /* finalize writes every page the worker had not copied yet */
    printf("measure: teardown copied %ld of the %ld pages still shared\n",
           td, heap_pages - copied);
    ck_assert_int_ge(td, (heap_pages - copied) * 8 / 10);
    ck_assert_int_le(td, heap_pages - copied);
    ts_csv_free(&r);
}
END_TEST

START_TEST(measure_skip_exit_copies_nothing)
{
    const char *args[] = { "-w", "2", "--scale", "0.05", "--exit", "skip",
                           "--duration", "1", NULL };
    start(args);
    get("/api/items");
    int status = wait_exit();
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ts_csv_t r;
    ck_assert_uint_eq(csv_load(&r, "runs.csv"), 1);
    ck_assert_int_eq(ts_csv_long(&r, 0, "copied_by_teardown"), 0);
    ck_assert_int_eq(ts_csv_long(&r, 0, "faults_teardown"), 0);
    ck_assert(strtod(ts_csv_get(&r, 0, "teardown_ms"), NULL) < 5.0);
    ts_csv_free(&r);
}
END_TEST

START_TEST(measure_type_census_counts_every_object)
{
    const char *args[] = { "-w", "2", "--scale", "0.05", "--type-census",
                           "--duration", "1.5", "--exit", "skip", NULL };
    start(args);
    for (int i = 0; i < 30; i++)
        get("/api/items");
    int status = wait_exit();
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ts_csv_t t, r;
    size_t n = csv_load(&t, "types.csv");
    ck_assert_uint_ge(n, 10);
    ck_assert_uint_eq(csv_load(&r, "runs.csv"), 1);
    long heap_objects = ts_csv_long(&r, 0, "heap_objects");
    long objects[2] = { 0, 0 };
    int seen_str = 0;
    for (size_t i = 0; i < n; i++) {
        long w = ts_csv_long(&t, i, "worker");
        ck_assert(w == 0 || w == 1);
        objects[w] += ts_csv_long(&t, i, "objects");
        ck_assert_int_le(ts_csv_long(&t, i, "copied_pages"),
                         ts_csv_long(&t, i, "pages"));
        seen_str |= strcmp(ts_csv_get(&t, i, "type"), "str") == 0;
    }
    ck_assert(seen_str);
    /* Every object of the heap is reachable after the build: the census
     * must find each exactly once. */
    ck_assert_int_eq(objects[0], heap_objects);
    ck_assert_int_eq(objects[1], heap_objects);
    ts_csv_free(&t);
    ts_csv_free(&r);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("measure");
    TCase *tc = tcase_create("measure");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, measure_headers_are_the_documented_schema);
    tcase_add_test(tc, measure_sampler_keeps_to_one_percent);
    tcase_add_test(tc, measure_sigkill_master_leaves_whole_rows);
    tcase_add_test(tc, measure_copies_by_cause_add_up);
    tcase_add_test(tc, measure_skip_exit_copies_nothing);
    tcase_add_test(tc, measure_type_census_counts_every_object);
    suite_add_tcase(s, tc);
    TCase *th = tcase_create("heap");
    tcase_add_checked_fixture(th, mem_setup, mem_teardown);
    tcase_set_timeout(th, 120);
    tcase_add_test(th, measure_snapshot_takes_every_range);
    tcase_add_test(th, measure_snapshot_out_of_memory);
    suite_add_tcase(s, th);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
