/*
 * check_refork.c -- integration tests for reforking (server/refork.c and
 * the master's side): a worker becomes the mold, its children serve and
 * are the master's (reparented: it is a child subreaper), the mold writes
 * no heap page after it forks (its frames do not move, while its
 * workers' move exactly where they copied: the control), generations
 * follow --refork-after with its last value repeated, the least-copied
 * selector picks the worker with the fewest copies, and a dead mold is
 * survived.  Frame numbers need root: that proof is skipped otherwise.
 * A mold's workers track their copies with write sets against the mold's
 * snapshot, as the master's do against the master's.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"
#include "wset.h"

static ts_server_t S = TS_SERVER_NONE;
static char tmpdir[64], outdir[128];

static void
setup(void)
{
    ck_assert_int_eq(ts_tmpdir(tmpdir, sizeof tmpdir, "refork"), 0);
    snprintf(outdir, sizeof outdir, "%s/run", tmpdir);
}

static void
teardown(void)
{
    ts_server_kill(&S);
    ts_rmdir(tmpdir);
}

static void
start(const char *const *args)
{
    const char *base[] = { "--scale", "0.05", "--sample-ms", "50",
                           "--exit", "skip", "--out", outdir, NULL };
    ck_assert_msg(ts_server_start(&S, base, args) == 0,
                  "server did not start");
}

static void
stop(void)
{
    ts_sleep_ms(300);               /* idle: the final sample sees a still
                                       heap */
    kill(S.pid, SIGTERM);
    int st = ts_server_wait(&S);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void
load(const char *name, ts_csv_t *c)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    ck_assert_msg(ts_csv_load(c, path, err, sizeof err) == 0, "%s", err);
}

/* Requests until samples.csv shows a row with role worker and generation
 * at least gen; returns how many were sent (-1: not within max). */
static int
until_mold(int gen, int max)
{
    int n = 0;
    for (; n < max; n++) {
        ck_assert_int_eq(ts_get(S.port, n % 2 ? "/api/items" : "/", NULL,
                                0), 200);
        if (n % 10 != 9)
            continue;
        ts_csv_t c;
        load("samples.csv", &c);
        int found = 0;
        for (size_t r = 0; r < c.nrows && !found; r++)
            found = strcmp(ts_csv_get(&c, r, "role"), "worker") == 0
                    && ts_csv_long(&c, r, "refork_generation") >= gen;
        ts_csv_free(&c);
        if (found)
            return n + 1;
        /* give the sampler its round: requests can be faster than the
         * interval it lengthens to */
        ts_sleep_ms(30);
    }
    ts_csv_t c;
    load("samples.csv", &c);
    long gmax = -1;
    for (size_t r = 0; r < c.nrows; r++)
        if (ts_csv_long(&c, r, "refork_generation") > gmax)
            gmax = ts_csv_long(&c, r, "refork_generation");
    printf("refork: %d requests: generation %ld at most, %zu rows\n", n,
           gmax, c.nrows);
    ts_csv_free(&c);
    return -1;
}

static int
ppid_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *rp = strrchr(buf, ')');
    int ppid = -1;
    char state;
    if (rp == NULL || sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
        return -1;
    return ppid;
}

START_TEST(refork_mold_children_serve)
{
    const char *args[] = { "-w", "2", "--refork-after", "30,100000",
                           NULL };
    start(args);
    ck_assert_int_gt(until_mold(1, 400), 0);
    /* the mold's workers serve, and the master is their parent */
    for (int i = 0; i < 60; i++)
        ck_assert_int_eq(ts_get(S.port, i % 2 ? "/api/items" : "/", NULL,
                                0), 200);
    ts_sleep_ms(200);
    ts_csv_t c;
    load("samples.csv", &c);
    pid_t gen1[2];
    int n1 = 0;
    pid_t mold = 0;
    for (size_t r = c.nrows; r-- > 0;) {
        pid_t pid = (pid_t)ts_csv_long(&c, r, "pid");
        if (strcmp(ts_csv_get(&c, r, "role"), "mold") == 0)
            mold = mold ? mold : pid;
        else if (ts_csv_long(&c, r, "refork_generation") == 1 && n1 < 2
                 && (n1 == 0 || gen1[0] != pid))
            gen1[n1++] = pid;
    }
    ts_csv_free(&c);
    ck_assert_int_gt(mold, 0);
    ck_assert_int_eq(n1, 2);                /* one per index */
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(ppid_of(gen1[i]), S.pid);
    ck_assert_int_eq(ppid_of(mold), S.pid);
    stop();
    load("runs.csv", &c);
    ck_assert_int_eq(ts_csv_long(&c, 0, "reforks"), 1);
    ck_assert_int_eq(ts_csv_long(&c, 0, "refork_generation"), 1);
    ck_assert_int_eq(ts_csv_long(&c, 0, "respawns"), 0);
    ts_csv_free(&c);
    /* the generation-1 workers served, against the mold's snapshot */
    load("samples.csv", &c);
    long served = 0, mold_pages = 0, w_pages = 0;
    for (size_t r = 0; r < c.nrows; r++) {
        if (ts_csv_long(&c, r, "refork_generation") != 1)
            continue;
        if (strcmp(ts_csv_get(&c, r, "role"), "worker") == 0) {
            served = ts_csv_long(&c, r, "requests") > served
                     ? ts_csv_long(&c, r, "requests") : served;
            w_pages = ts_csv_long(&c, r, "heap_pages");
        }
    }
    for (size_t r = 0; r < c.nrows; r++)
        if (strcmp(ts_csv_get(&c, r, "role"), "worker") == 0
            && ts_csv_long(&c, r, "refork_generation") == 0)
            mold_pages = ts_csv_long(&c, r, "heap_pages");
    ts_csv_free(&c);
    ck_assert_int_gt(served, 0);
    /* the mold's heap: the master's, and what the mold allocated since */
    ck_assert_int_ge(w_pages, mold_pages);
}
END_TEST

/*
 * The invariant the counters rely on: the mold writes no heap page after
 * it forks.  As root the master reads page frame numbers: a write by the
 * mold to a page it shares would move that page to a new frame.  The
 * mold's heap_moved_pages stays 0 while its workers serve; the control,
 * its workers' own, equals their copied pages exactly (a copy is a move).
 */
START_TEST(refork_mold_writes_nothing)
{
#ifdef RT_MALLOC_BYPASS
    TS_SKIP("copy figures need the arena allocator (RT_MALLOC_BYPASS sends "
            "objects to malloc)");
#endif
    if (geteuid() != 0)
        TS_SKIP("page frame numbers need root (CAP_SYS_ADMIN)");
    const char *args[] = { "-w", "2", "--refork-after", "20,100000",
                           NULL };
    start(args);
    ck_assert_int_gt(until_mold(1, 400), 0);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(ts_get(S.port, i % 2 ? "/api/items" : "/", NULL,
                                0), 200);
    /* enough sampling rounds with the mold alive, however long a round
     * takes on this machine (the sampler lengthens its interval) */
    ts_csv_t c;
    for (int tries = 0; tries < 300; tries++) {
        long n = 0;
        load("samples.csv", &c);
        for (size_t r = 0; r < c.nrows; r++)
            n += strcmp(ts_csv_get(&c, r, "role"), "mold") == 0;
        ts_csv_free(&c);
        if (n > 3)
            break;
        usleep(50 * 1000);
    }
    stop();
    load("samples.csv", &c);
    long mold_rows = 0, worker_rows = 0, moved_max = 0;
    long last_copied[2] = { -1, -1 }, last_moved[2] = { -1, -1 };
    double last_t = 0;
    for (size_t r = 0; r < c.nrows; r++)
        if (ts_csv_double(&c, r, "t_ms") > last_t)
            last_t = ts_csv_double(&c, r, "t_ms");
    for (size_t r = 0; r < c.nrows; r++) {
        const char *role = ts_csv_get(&c, r, "role");
        const char *moved = ts_csv_get(&c, r, "heap_moved_pages");
        if (strcmp(role, "mold") == 0) {
            ck_assert_msg(*moved != '\0', "a mold row without frames");
            ck_assert_int_eq(ts_csv_long(&c, r, "heap_moved_pages"), 0);
            mold_rows++;
        } else if (ts_csv_long(&c, r, "refork_generation") == 1) {
            ck_assert_msg(*moved != '\0', "a worker row without frames");
            long m = ts_csv_long(&c, r, "heap_moved_pages");
            moved_max = m > moved_max ? m : moved_max;
            worker_rows++;
            if (ts_csv_double(&c, r, "t_ms") == last_t) {
                int w = (int)ts_csv_long(&c, r, "worker");
                last_copied[w] = ts_csv_long(&c, r, "heap_copied_pages");
                last_moved[w] = m;
            }
        } else {
            ck_assert_str_eq(moved, "");    /* the master's children */
        }
    }
    ts_csv_free(&c);
    printf("refork: %ld mold rows, all 0 moved; workers moved up to %ld "
           "pages; at the end %ld/%ld and %ld/%ld copied/moved\n",
           mold_rows, moved_max, last_copied[0], last_moved[0],
           last_copied[1], last_moved[1]);
    ck_assert_int_gt(mold_rows, 3);
    ck_assert_int_gt(worker_rows, 3);
    ck_assert_int_gt(moved_max, 0);         /* the control moves */
    for (int w = 0; w < 2; w++) {
        /* idle at the end: the two counts read the same pages */
        ck_assert_int_gt(last_copied[w], 0);
        ck_assert_int_eq(last_moved[w], last_copied[w]);
    }
}
END_TEST

/* --refork-after 25,10: the first mold after 25 requests, each next one
 * after 10 (the last value repeats); one mold alive at a time. */
/*
 * Write sets in a mold's workers: each tracks its own copies against the
 * mold's snapshot from its first instruction, so its rows say write-sets,
 * nothing is unattributed, and at exit its count equals its pagemap's
 * (wset_check_pages 0 over every worker, the mold's included).  Fails if
 * the mold's workers fell back to pagemap bracketing or tracked nothing.
 */
START_TEST(refork_children_track_write_sets)
{
    char why[256];
#ifdef RT_MALLOC_BYPASS
    TS_SKIP("copy figures need the arena allocator (RT_MALLOC_BYPASS sends "
            "objects to malloc)");
#endif
    if (ms_wset_probe(why, sizeof why) < 0)
        TS_SKIP("write sets unavailable here: %s", why);
    const char *args[] = { "-w", "2", "--refork-after", "30,100000",
                           NULL };
    start(args);
    ck_assert_int_gt(until_mold(1, 400), 0);
    for (int i = 0; i < 60; i++)
        ck_assert_int_eq(ts_get(S.port, i % 2 ? "/api/items" : "/", NULL,
                                0), 200);
    ts_sleep_ms(200);
    stop();
    ts_csv_t c;
    load("samples.csv", &c);
    long rows = 0, copied = 0;
    for (size_t r = 0; r < c.nrows; r++) {
        if (ts_csv_long(&c, r, "refork_generation") != 1
            || strcmp(ts_csv_get(&c, r, "role"), "worker") != 0)
            continue;
        rows++;
        ck_assert_str_eq(ts_csv_get(&c, r, "attribution"), "write-sets");
        ck_assert_int_eq(ts_csv_long(&c, r, "copied_unattributed"), 0);
        long n = ts_csv_long(&c, r, "heap_copied_pages");
        copied = n > copied ? n : copied;
    }
    ts_csv_free(&c);
    printf("refork: generation-1 rows %ld, copied up to %ld pages\n", rows,
           copied);
    ck_assert_int_gt(rows, 0);
    ck_assert_int_gt(copied, 0);            /* they copied the mold's */
    load("runs.csv", &c);
    ck_assert_str_eq(ts_csv_get(&c, 0, "attribution"), "write-sets");
    ck_assert_int_eq(ts_csv_long(&c, 0, "wset_check_pages"), 0);
    ts_csv_free(&c);
}
END_TEST

START_TEST(refork_generations_repeat_last_value)
{
    const char *args[] = { "-w", "1", "--refork-after", "25,10", NULL };
    start(args);
    ck_assert_int_gt(until_mold(3, 600), 0);
    stop();
    ts_csv_t c;
    load("runs.csv", &c);
    long reforks = ts_csv_long(&c, 0, "reforks");
    ck_assert_int_ge(reforks, 3);
    ck_assert_int_eq(ts_csv_long(&c, 0, "refork_generation"), reforks);
    ts_csv_free(&c);
    /* each mold served its generation's requests first */
    load("samples.csv", &c);
    for (size_t r = 0; r < c.nrows; r++) {
        if (strcmp(ts_csv_get(&c, r, "role"), "mold") != 0)
            continue;
        long gen = ts_csv_long(&c, r, "refork_generation");
        ck_assert_int_ge(ts_csv_long(&c, r, "requests"), gen == 0 ? 25 : 10);
    }
    ts_csv_free(&c);
    load("totals.csv", &c);
    for (size_t r = 0; r < c.nrows; r++)
        ck_assert_int_le(ts_csv_long(&c, r, "molds"), 2);
    ck_assert_int_eq(ts_csv_long(&c, c.nrows - 1, "molds"), 1);
    ts_csv_free(&c);
}
END_TEST

/* --refork-select least-copied: of the workers that reached N, the one
 * with the fewest copied pages at the round before the choice. */
START_TEST(refork_select_least_copied)
{
#ifdef RT_MALLOC_BYPASS
    TS_SKIP("copy figures need the arena allocator (RT_MALLOC_BYPASS sends "
            "objects to malloc)");
#endif
    const char *args[] = { "-w", "2", "--refork-after", "15",
                           "--refork-select", "least-copied", NULL };
    start(args);
    ck_assert_int_gt(until_mold(1, 600), 0);
    stop();
    ts_csv_t c;
    load("samples.csv", &c);
    /* the mold's pid, and the last round before its first mold row in
     * which both generation-0 workers were sampled */
    size_t first_mold = c.nrows;
    for (size_t r = 0; r < c.nrows && first_mold == c.nrows; r++)
        if (strcmp(ts_csv_get(&c, r, "role"), "mold") == 0)
            first_mold = r;
    ck_assert_uint_lt(first_mold, c.nrows);
    long mold = ts_csv_long(&c, first_mold, "pid");
    long mine = -1, other = -1;
    /* rounds from the last one back: the first with both workers (while
     * the chosen one drained it was not sampled) */
    for (size_t r = first_mold; r-- > 0 && (mine < 0 || other < 0);) {
        double t = ts_csv_double(&c, r, "t_ms");
        mine = other = -1;
        size_t q = r + 1;
        while (q-- > 0 && ts_csv_double(&c, q, "t_ms") == t) {
            long copied = ts_csv_long(&c, q, "heap_copied_pages");
            if (ts_csv_long(&c, q, "pid") == mold)
                mine = copied;
            else
                other = copied;
        }
        r = q + 1;
    }
    ts_csv_free(&c);
    printf("refork: least-copied picked %ld copied pages over %ld\n", mine,
           other);
    ck_assert_int_ge(mine, 0);
    ck_assert_int_ge(other, 0);
    ck_assert_int_le(mine, other);
}
END_TEST

/* A mold killed: the master goes on; workers that die later come from the
 * master's pristine heap again, and serve. */
START_TEST(refork_mold_killed_survived)
{
    /* one refork only: with "20" alone (the last value repeats) the
     * generation-1 worker could become the next mold while until_mold
     * waits for the sampler, and the "worker" killed below be a mold */
    const char *args[] = { "-w", "1", "--refork-after", "20,1000000",
                           NULL };
    start(args);
    ck_assert_int_gt(until_mold(1, 400), 0);
    ts_csv_t c;
    load("samples.csv", &c);
    pid_t mold = 0, worker = 0;
    for (size_t r = 0; r < c.nrows; r++) {
        if (strcmp(ts_csv_get(&c, r, "role"), "mold") == 0)
            mold = (pid_t)ts_csv_long(&c, r, "pid");
        else if (ts_csv_long(&c, r, "refork_generation") == 1)
            worker = (pid_t)ts_csv_long(&c, r, "pid");
    }
    ts_csv_free(&c);
    ck_assert(mold > 0 && worker > 0);
    kill(mold, SIGKILL);
    ts_sleep_ms(200);
    kill(worker, SIGKILL);
    pid_t w[8];
    int ok = 0;
    for (int i = 0; i < 200 && !ok; i++) {
        ts_sleep_ms(25);
        int n = ts_workers(&S, w, 8);
        ok = n == 1 && w[0] != worker && w[0] != mold;
    }
    ck_assert_msg(ok, "worker not respawned after its mold died");
    ck_assert_int_eq(ts_get(S.port, "/healthz", NULL, 0), 200);
    stop();
    load("runs.csv", &c);
    ck_assert_int_eq(ts_csv_long(&c, 0, "respawns"), 1);
    ts_csv_free(&c);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("refork");
    TCase *tc = tcase_create("refork");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, refork_mold_children_serve);
    tcase_add_test(tc, refork_mold_writes_nothing);
    tcase_add_test(tc, refork_children_track_write_sets);
    tcase_add_test(tc, refork_generations_repeat_last_value);
    tcase_add_test(tc, refork_select_least_copied);
    tcase_add_test(tc, refork_mold_killed_survived);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
