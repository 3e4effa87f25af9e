/*
 * check_fleet.c -- integration tests for the recycling strategies of the
 * fleet (server/worker.c "Recycling"): --max-copied-pct replaces a worker
 * whose exact heap copy passes P% and not one below it, --reload-on-rss
 * replaces one whose RSS passes the limit, and runs.csv counts them as
 * recycles (and respawns), apart from deaths; totals.csv sums the app.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

static ts_server_t S = TS_SERVER_NONE;
static char tmpdir[64], outdir[128];

static void
setup(void)
{
    ck_assert_int_eq(ts_tmpdir(tmpdir, sizeof tmpdir, "fleet"), 0);
    snprintf(outdir, sizeof outdir, "%s/run", tmpdir);
}

static void
teardown(void)
{
    ts_server_kill(&S);
    ts_rmdir(tmpdir);
}

static void
load(const char *name, ts_csv_t *c)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    ck_assert_msg(ts_csv_load(c, path, err, sizeof err) == 0, "%s", err);
}

/*
 * One worker; wait past its first pagemap measurement's second, send one
 * request that copies part of the heap (the worker measures after it).
 * Returns 1 if the worker was replaced, 0 if not; the run's recycles and
 * respawns in *rec and *resp.
 */
/* The pid of the worker that answers /healthz (one worker: the one). */
static long
serving_pid(void)
{
    char body[256];
    ck_assert_int_eq(ts_get(S.port, "/healthz", body, sizeof body), 200);
    const char *p = strstr(body, "\"pid\":");
    ck_assert_ptr_nonnull(p);
    return strtol(p + 6, NULL, 10);
}

static int
one_request_then(const char *flag, const char *value, long *rec, long *resp)
{
    const char *base[] = { "-w", "1", "--scale", "0.05", "--sample-ms", "50",
                           "--exit", "skip", "--out", outdir, NULL };
    const char *args[] = { flag, value, NULL };
    ck_assert_int_eq(ts_server_start(&S, base, args), 0);
    long before = serving_pid();
    ts_sleep_ms(1100);
    ck_assert_int_eq(ts_get(S.port, "/api/items", NULL, 0), 200);
    ts_sleep_ms(300);                   /* drained and replaced by now */
    int replaced = serving_pid() != before;
    kill(S.pid, SIGTERM);
    int st = ts_server_wait(&S);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ts_csv_t c;
    load("runs.csv", &c);
    *rec = ts_csv_long(&c, 0, "recycles");
    *resp = ts_csv_long(&c, 0, "respawns");
    ts_csv_free(&c);
    return replaced;
}

/* The first sample of the worker: how much one /api/items copies. */
static double
copied_pct_after_one_request(void)
{
    long rec, resp;
    one_request_then("--max-copied-pct", "0", &rec, &resp);
    ck_assert_int_eq(rec, 0);
    ts_csv_t c;
    load("samples.csv", &c);
    double pct = 100.0 - ts_csv_double(&c, c.nrows - 1, "heap_shared_pct");
    ts_csv_free(&c);
    return pct;
}

START_TEST(fleet_max_copied_pct_recycles_past_the_limit)
{
#ifdef RT_MALLOC_BYPASS
    TS_SKIP("copy figures need the arena allocator (RT_MALLOC_BYPASS sends "
            "objects to malloc)");
#endif
    long rec, resp;
    char p[32];
    double pct = copied_pct_after_one_request();
    printf("fleet: one /api/items copies %.1f%% of the heap\n", pct);
    ck_assert(pct > 5 && pct < 90);
    ts_rmdir(tmpdir);
    setup();
    /* well below what it copied: replaced */
    snprintf(p, sizeof p, "%.1f", pct / 4);
    ck_assert_int_eq(one_request_then("--max-copied-pct", p, &rec, &resp),
                     1);
    ck_assert_int_eq(rec, 1);
    ck_assert_int_eq(resp, 1);
    ts_rmdir(tmpdir);
    setup();
    /* control: well above it, the same request: kept */
    snprintf(p, sizeof p, "%.1f", pct + (100 - pct) / 2);
    ck_assert_int_eq(one_request_then("--max-copied-pct", p, &rec, &resp),
                     0);
    ck_assert_int_eq(rec, 0);
    ck_assert_int_eq(resp, 0);
}
END_TEST

START_TEST(fleet_reload_on_rss_recycles_past_the_limit)
{
    long rec, resp;
    /* 1 MiB: below any worker's RSS (the heap it maps counts), so every
     * worker goes after its first request (/healthz's too) */
    ck_assert_int_eq(one_request_then("--reload-on-rss", "1", &rec, &resp),
                     1);
    ck_assert_int_ge(rec, 1);
    ck_assert_int_eq(resp, rec);
    ts_rmdir(tmpdir);
    setup();
    /* control: 100 GiB */
    ck_assert_int_eq(one_request_then("--reload-on-rss", "102400", &rec,
                                      &resp), 0);
    ck_assert_int_eq(rec, 0);
}
END_TEST

/* A worker killed is a respawn, not a recycle; totals.csv adds up. */
START_TEST(fleet_deaths_are_not_recycles)
{
    const char *base[] = { "-w", "2", "--scale", "0.05", "--sample-ms", "50",
                           "--exit", "skip", "--out", outdir, NULL };
    pid_t w[4], w2[4];
    ck_assert_int_eq(ts_server_start(&S, base, NULL), 0);
    ck_assert_int_eq(ts_wait_workers(&S, 2, w, 4), 2);
    kill(w[0], SIGKILL);
    int ok = 0;
    for (int i = 0; i < 200 && !ok; i++) {
        ts_sleep_ms(25);
        ok = ts_workers(&S, w2, 4) == 2 && w2[0] != w[0] && w2[1] != w[0];
    }
    ck_assert(ok);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(ts_get(S.port, "/", NULL, 0), 200);
    ts_sleep_ms(300);
    kill(S.pid, SIGTERM);
    int st = ts_server_wait(&S);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ts_csv_t c;
    load("runs.csv", &c);
    ck_assert_int_eq(ts_csv_long(&c, 0, "respawns"), 1);
    ck_assert_int_eq(ts_csv_long(&c, 0, "recycles"), 0);
    ck_assert(ts_csv_double(&c, 0, "cpu_s") > 0);
    ts_csv_free(&c);
    /* totals.csv: master + workers, every round; the last one after the
     * load, with both workers */
    ts_csv_t t, s;
    load("totals.csv", &t);
    load("samples.csv", &s);
    ck_assert_uint_ge(t.nrows, 1);      /* at least the final round */
    size_t last = t.nrows - 1;
    ck_assert_int_eq(ts_csv_long(&t, last, "workers"), 2);
    ck_assert_int_eq(ts_csv_long(&t, last, "respawns"), 1);
    ck_assert_int_eq(ts_csv_long(&t, last, "requests"), 10);
    long sum = 0;
    double tl = ts_csv_double(&t, last, "t_ms");
    for (size_t r = 0; r < s.nrows; r++)
        if (ts_csv_double(&s, r, "t_ms") == tl)
            sum += ts_csv_long(&s, r, "pss_kb");
    ck_assert_int_eq(ts_csv_long(&t, last, "workers_pss_kb"), sum);
    ck_assert_int_eq(ts_csv_long(&t, last, "total_pss_kb"),
                     sum + ts_csv_long(&t, last, "master_pss_kb"));
    ck_assert_int_gt(ts_csv_long(&t, last, "master_pss_kb"), 0);
    ck_assert_str_eq(ts_csv_get(&t, last, "ksm_pages_sharing"), "");
    ts_csv_free(&t);
    ts_csv_free(&s);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("fleet");
    TCase *tc = tcase_create("recycling");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fleet_max_copied_pct_recycles_past_the_limit);
    tcase_add_test(tc, fleet_reload_on_rss_recycles_past_the_limit);
    tcase_add_test(tc, fleet_deaths_are_not_recycles);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
