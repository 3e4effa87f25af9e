/*
 * check_attribution.c -- copy attribution through the real server: with
 * write sets every copy is credited to a request, a collection or the
 * teardown (copied_unattributed = 0, the causes add up to the copied
 * pages, and each worker's count equals its pagemap's at exit);
 * routes.csv counts exactly the requests sent per route and its copies
 * add up to the workers'; sampled requests give written_pages; where the
 * kernel lacks write sets (forced here with COWLAB_NO_WRITE_SETS) the
 * server falls back to pagemap bracketing and says so at start-up and in
 * meta.json; --attribution write-sets then refuses to start; off is
 * none.  The mechanism's own exactness: check_wset.c.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "support.h"
#include "wset.h"

static ts_server_t S = TS_SERVER_NONE;
static char tmpdir[64], outdir[128];

static void
setup(void)
{
    ck_assert_int_eq(ts_tmpdir(tmpdir, sizeof tmpdir, "attr"), 0);
    snprintf(outdir, sizeof outdir, "%s/out", tmpdir);
}

static void
teardown(void)
{
    ts_server_kill(&S);
    unsetenv("COWLAB_NO_WRITE_SETS");
    ts_rmdir(tmpdir);
}

static void
start(const char *const *args)
{
    const char *base[] = { "--out", outdir, NULL };
    ck_assert_msg(ts_server_start(&S, base, args) == 0,
                  "server did not start");
}

static int
get(const char *path)
{
    return ts_get(S.port, path, NULL, 0);
}

/* SIGTERM, and it must exit 0. */
static void
stop(void)
{
    kill(S.pid, SIGTERM);
    int status = ts_server_wait(&S);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "server status %d", status);
}

static size_t
csv_load(ts_csv_t *c, const char *name)
{
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    ck_assert_msg(ts_csv_load(c, path, err, sizeof err) == 0, "%s", err);
    return c->nrows;
}

/* The last row of each worker in samples.csv: their indexes, by worker. */
static size_t
last_rows(const ts_csv_t *c, size_t *rows, size_t max)
{
    size_t n = 0;
    for (size_t r = 0; r < c->nrows; r++) {
        long w = ts_csv_long(c, r, "worker");
        ck_assert(w >= 0 && (size_t)w < max);
        if ((size_t)w >= n)
            n = (size_t)w + 1;
        rows[w] = r;
    }
    return n;
}

static json_t *
meta(void)
{
    char path[256];
    json_error_t e;
    snprintf(path, sizeof path, "%s/meta.json", outdir);
    json_t *j = json_load_file(path, 0, &e);
    ck_assert_msg(j != NULL, "meta.json: %s", e.text);
    return j;
}

#define NEED_WSET()                                                         \
    do {                                                                    \
        char why_[256];                                                     \
        if (ms_wset_probe(why_, sizeof why_) < 0)                           \
            TS_SKIP("write sets unavailable here: %s", why_);               \
    } while (0)

#ifdef RT_MALLOC_BYPASS
#define NEED_ARENAS()                                                       \
    TS_SKIP("copy figures need the arena allocator (RT_MALLOC_BYPASS sends " \
            "objects to malloc)")
#else
#define NEED_ARENAS() ((void)0)
#endif

/* ---- write sets: every copy has its cause --------------------------------- */

START_TEST(attribution_write_sets_every_copy_has_its_cause)
{
    NEED_ARENAS();
    NEED_WSET();
    /* Small thresholds: collections in every request, a full one often. */
    const char *args[] = { "-w", "2", "--scale", "0.05", "--sample-ms", "25",
                           "--gc-threshold", "100,2,2", "--exit", "finalize",
                           "--write-sample-ms", "0", NULL };
    start(args);
    for (int i = 0; i < 240; i++)
        ck_assert_int_eq(get(i % 3 == 0 ? "/api/items"
                             : i % 3 == 1 ? "/api/user" : "/"), 200);
    ts_sleep_ms(200);                   /* quiet: a still heap */
    stop();
    ts_csv_t c;
    size_t rows[8];
    csv_load(&c, "samples.csv");
    size_t nw = last_rows(&c, rows, 8);
    ck_assert_uint_eq(nw, 2);
    long gc_all = 0, copied_all = 0;
    for (size_t w = 0; w < nw; w++) {
        size_t r = rows[w];
        long copied = ts_csv_long(&c, r, "heap_copied_pages");
        long gc = ts_csv_long(&c, r, "copied_by_gc");
        long req = ts_csv_long(&c, r, "copied_by_request");
        long un = ts_csv_long(&c, r, "copied_unattributed");
        printf("attribution: worker %zu: %ld copied = %ld request + %ld gc "
               "+ %ld unattributed; %ld scans, %ld skipped\n", w, copied,
               req, gc, un, ts_csv_long(&c, r, "wset_scans"),
               ts_csv_long(&c, r, "wset_skipped"));
        ck_assert_str_eq(ts_csv_get(&c, r, "attribution"), "write-sets");
        ck_assert_int_gt(copied, 0);
        ck_assert_int_eq(un, 0);
        ck_assert_int_eq(req + gc, copied);
        ck_assert_int_gt(ts_csv_long(&c, r, "gc_collections_2"), 0);
        gc_all += gc;
        copied_all += copied;
    }
    ck_assert_int_le(gc_all, copied_all);
    ts_csv_free(&c);
    ts_csv_t run;
    ck_assert_uint_eq(csv_load(&run, "runs.csv"), 1);
    ck_assert_str_eq(ts_csv_get(&run, 0, "attribution"), "write-sets");
    /* The workers' own count against their pagemap at exit. */
    ck_assert_int_eq(ts_csv_long(&run, 0, "wset_check_pages"), 0);
    ck_assert_int_gt(ts_csv_long(&run, 0, "copied_by_teardown"), 0);
    ts_csv_free(&run);
    json_t *m = meta();
    json_t *a = json_object_get(m, "attribution");
    ck_assert_str_eq(json_string_value(json_object_get(a, "method")),
                     "write-sets");
    ck_assert(json_is_null(json_object_get(a, "reason")));
    json_decref(m);
}
END_TEST

/* ---- routes.csv ------------------------------------------------------------ */

static long
route_long(const ts_csv_t *c, const char *route, const char *col)
{
    for (size_t r = 0; r < c->nrows; r++)
        if (strcmp(ts_csv_get(c, r, "route"), route) == 0)
            return ts_csv_long(c, r, col);
    ck_abort_msg("routes.csv has no row for %s", route);
    return -1;
}

START_TEST(attribution_routes_count_and_add_up)
{
    NEED_ARENAS();
    NEED_WSET();
    const char *args[] = { "-w", "1", "--scale", "0.05", "--sample-ms", "25",
                           "--exit", "skip", "--write-sample-ms", "0", NULL };
    start(args);
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(get("/"), 200);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(get("/api/user"), 200);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(get("/healthz"), 200);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(get("/no/such/route"), 404);
    ts_sleep_ms(100);
    stop();
    ts_csv_t c;
    csv_load(&c, "routes.csv");
    ck_assert_int_eq(route_long(&c, "/", "requests"), 7);
    ck_assert_int_eq(route_long(&c, "/api/user", "requests"), 5);
    ck_assert_int_eq(route_long(&c, "/api/items", "requests"), 0);
    ck_assert_int_eq(route_long(&c, "/healthz", "requests"), 3);
    ck_assert_int_eq(route_long(&c, "(other)", "requests"), 2);
    long req = 0, gc = 0;
    for (size_t r = 0; r < c.nrows; r++) {
        ck_assert_int_eq(ts_csv_long(&c, r, "worker"), 0);
        req += ts_csv_long(&c, r, "copied_pages");
        gc += ts_csv_long(&c, r, "copied_by_gc");
    }
    ck_assert_int_gt(route_long(&c, "/", "copied_pages"), 0);
    ts_csv_free(&c);
    /* The routes' copies are the worker's, split. */
    ts_csv_t s;
    size_t rows[4];
    csv_load(&s, "samples.csv");
    ck_assert_uint_eq(last_rows(&s, rows, 4), 1);
    ck_assert_int_eq(req, ts_csv_long(&s, rows[0], "copied_by_request"));
    ck_assert_int_eq(gc, ts_csv_long(&s, rows[0], "copied_by_gc"));
    ts_csv_free(&s);
    ts_csv_t run;
    csv_load(&run, "runs.csv");
    ck_assert_str_eq(ts_csv_get(&run, 0, "top_copy_route"), "/");
    ts_csv_free(&run);
}
END_TEST

/* ---- sampled requests: written_pages --------------------------------------- */

START_TEST(attribution_sampled_requests_written_pages)
{
    NEED_ARENAS();
    NEED_WSET();
    const char *args[] = { "-w", "1", "--scale", "0.05", "--sample-ms", "25",
                           "--exit", "skip", "--write-sample-ms", "1", NULL };
    start(args);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(get(i % 2 ? "/api/items" : "/"), 200);
        ts_sleep_ms(3);                 /* > 1 ms: every one is sampled */
    }
    ts_sleep_ms(100);
    stop();
    ts_csv_t c;
    csv_load(&c, "routes.csv");
    for (int k = 0; k < 2; k++) {
        const char *route = k ? "/api/items" : "/";
        long n = route_long(&c, route, "requests");
        long written = route_long(&c, route, "written_pages");
        long copied = route_long(&c, route, "copied_pages")
                      + route_long(&c, route, "copied_by_gc");
        printf("attribution: %s: %ld requests sampled, %ld pages written, "
               "%ld copied\n", route, route_long(&c, route,
               "written_requests"), written, copied);
        ck_assert_int_eq(n, 10);
        ck_assert_int_eq(route_long(&c, route, "written_requests"), 10);
        /* a copy is a write; a read writes every page it touches again */
        ck_assert_int_gt(written, copied);
    }
    ts_csv_free(&c);
    ts_csv_t s;
    size_t rows[4];
    csv_load(&s, "samples.csv");
    ck_assert_uint_eq(last_rows(&s, rows, 4), 1);
    ck_assert_int_eq(ts_csv_long(&s, rows[0], "written_requests"), 20);
    ck_assert_int_eq(ts_csv_long(&s, rows[0], "copied_unattributed"), 0);
    ck_assert_int_eq(ts_csv_long(&s, rows[0], "heap_copied_pages"),
                     ts_csv_long(&s, rows[0], "copied_by_request")
                     + ts_csv_long(&s, rows[0], "copied_by_gc"));
    ts_csv_free(&s);
    ts_csv_t run;
    csv_load(&run, "runs.csv");
    ck_assert_int_eq(ts_csv_long(&run, 0, "wset_check_pages"), 0);
    ck_assert_int_eq(ts_csv_long(&run, 0, "written_requests"), 20);
    ts_csv_free(&run);
}
END_TEST

/* ---- --write-kinds ---------------------------------------------------------- */

START_TEST(attribution_write_kinds_explain_every_copy)
{
    NEED_ARENAS();
    NEED_WSET();
    const char *args[] = { "-w", "2", "--scale", "0.05", "--sample-ms", "25",
                           "--write-kinds", "--exit", "finalize",
                           "--write-sample-ms", "0", NULL };
    start(args);                        /* runs cowlab-kinds */
    for (int i = 0; i < 60; i++)
        ck_assert_int_eq(get(i % 2 ? "/api/items" : "/"), 200);
    ts_sleep_ms(100);
    stop();
    ts_csv_t k, s, run;
    ck_assert_uint_eq(csv_load(&k, "kinds.csv"), 2 * 6);
    size_t rows[4];
    csv_load(&s, "samples.csv");
    ck_assert_uint_eq(last_rows(&s, rows, 4), 2);
    csv_load(&run, "runs.csv");
    long teardown = 0, refcount = 0;
    for (long w = 0; w < 2; w++) {
        long req = 0, gc = 0;
        for (size_t r = 0; r < k.nrows; r++) {
            if (ts_csv_long(&k, r, "worker") != w)
                continue;
            req += ts_csv_long(&k, r, "copied_by_request");
            gc += ts_csv_long(&k, r, "copied_by_gc");
            teardown += ts_csv_long(&k, r, "copied_by_teardown");
            ck_assert_int_eq(ts_csv_long(&k, r, "copied_pages"),
                             ts_csv_long(&k, r, "copied_by_request")
                             + ts_csv_long(&k, r, "copied_by_gc")
                             + ts_csv_long(&k, r, "copied_by_teardown"));
            if (strcmp(ts_csv_get(&k, r, "kind"), "refcount") == 0)
                refcount += ts_csv_long(&k, r, "copied_pages");
        }
        /* every copy of the worker, each with one kind */
        ck_assert_int_eq(req, ts_csv_long(&s, rows[w], "copied_by_request"));
        ck_assert_int_eq(gc, ts_csv_long(&s, rows[w], "copied_by_gc"));
    }
    /* reads write refcounts: most of what requests copy */
    ck_assert_int_gt(refcount, 0);
    /* runs.csv has the mean over the workers, as a whole number */
    double mean = ts_csv_double(&run, 0, "copied_by_teardown");
    ck_assert_msg(teardown >= 2 * mean - 1 && teardown <= 2 * mean + 1,
                  "kinds: %ld teardown copies, runs.csv: 2 x %g", teardown,
                  mean);
    ck_assert_int_gt(teardown, 0);
    ts_csv_free(&k);
    ts_csv_free(&s);
    ts_csv_free(&run);
    /* Without write sets there is nothing to pair kinds with: refused. */
    char out[4096];
    const char *bad[] = { "--port", "0", "--scale", "0.05", "--write-kinds",
                          "--attribution", "pagemap", NULL };
    ck_assert_int_eq(ts_run(bad, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "--write-kinds needs write sets") != NULL,
                  "%s", out);
}
END_TEST

/* ---- the fallback ----------------------------------------------------------- */

START_TEST(attribution_falls_back_without_write_sets)
{
    NEED_ARENAS();
    char out[8192];
    setenv("COWLAB_NO_WRITE_SETS", "1", 1);     /* as a 6.1 kernel would */
    const char *args[] = { "--port", "0", "-w", "1", "--scale", "0.05",
                           "--duration", "1", "--sample-ms", "50",
                           "--out", outdir, NULL };
    int rc = ts_run(args, out, sizeof out);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "copies attributed by pagemap bracketing")
                  && strstr(out, "COWLAB_NO_WRITE_SETS"),
                  "no start-up line saying so: %s", out);
    json_t *m = meta();
    json_t *a = json_object_get(m, "attribution");
    ck_assert_str_eq(json_string_value(json_object_get(a, "method")),
                     "pagemap");
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(a,
                          "reason")), "COWLAB_NO_WRITE_SETS"));
    json_decref(m);
    ts_csv_t c;
    ck_assert_uint_ge(csv_load(&c, "samples.csv"), 1);
    for (size_t r = 0; r < c.nrows; r++)
        ck_assert_str_eq(ts_csv_get(&c, r, "attribution"), "pagemap");
    ts_csv_free(&c);
    ts_csv_t run;
    csv_load(&run, "runs.csv");
    ck_assert_str_eq(ts_csv_get(&run, 0, "attribution"), "pagemap");
    ck_assert_str_eq(ts_csv_get(&run, 0, "wset_check_pages"), "");
    ts_csv_free(&run);
    /* Asked for write sets explicitly: it refuses, and says why. */
    const char *strict[] = { "--port", "0", "--scale", "0.05",
                             "--attribution", "write-sets", NULL };
    rc = ts_run(strict, out, sizeof out);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "--attribution write-sets: not available")
                  != NULL, "%s", out);
}
END_TEST

START_TEST(attribution_off_is_none)
{
    const char *args[] = { "-w", "1", "--scale", "0.05", "--sample-ms", "25",
                           "--attribution", "off", "--exit", "skip", NULL };
    start(args);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(get("/api/items"), 200);
    stop();
    ts_csv_t c;
    size_t rows[4];
    csv_load(&c, "samples.csv");
    ck_assert_uint_eq(last_rows(&c, rows, 4), 1);
    ck_assert_str_eq(ts_csv_get(&c, rows[0], "attribution"), "none");
    ck_assert_int_eq(ts_csv_long(&c, rows[0], "copied_by_request"), 0);
    ck_assert_int_eq(ts_csv_long(&c, rows[0], "wset_scans"), 0);
    ts_csv_free(&c);
    csv_load(&c, "routes.csv");
    ck_assert_int_eq(route_long(&c, "/api/items", "requests"), 10);
    ck_assert_str_eq(ts_csv_get(&c, 0, "copied_pages"), "");
    ts_csv_free(&c);
    json_t *m = meta();
    json_t *a = json_object_get(m, "attribution");
    ck_assert_str_eq(json_string_value(json_object_get(a, "method")),
                     "none");
    json_decref(m);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("attribution");
    TCase *tc = tcase_create("server");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, attribution_write_sets_every_copy_has_its_cause);
    tcase_add_test(tc, attribution_routes_count_and_add_up);
    tcase_add_test(tc, attribution_sampled_requests_written_pages);
    tcase_add_test(tc, attribution_write_kinds_explain_every_copy);
    tcase_add_test(tc, attribution_falls_back_without_write_sets);
    tcase_add_test(tc, attribution_off_is_none);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
