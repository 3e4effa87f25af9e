/*
 * check_ksm.c -- tests for measure/ksm.c and the server's --ksm: the
 * ksm_stat parser, the knobs held, set and restored (on a folder of our
 * own), the errors at start-up (no KSM in the kernel, not root, a second
 * run), and, where the kernel has KSM and we are root, a worker's copies
 * merged back (heap_copied_pages falls, heap_ksm_pages counts them) with
 * the settings restored afterwards, against a run without --ksm whose
 * copies stay.  CK_RUN_CASE=server for the server's cases.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ksm.h"
#include "support.h"

/* ---- ksm_stat ----------------------------------------------------------- */

START_TEST(ksm_stat_parsed)
{
    /* /proc/PID/ksm_stat of Linux 6.18, a merging process */
    static const char text[] =
        "ksm_rmap_items 2901\n"
        "ksm_zero_pages 0\n"
        "ksm_merging_pages 2176\n"
        "ksm_process_profit 8672192\n"
        "ksm_merge_any: yes\n"
        "ksm_mergeable: yes\n";
    ms_ksm_stat_t st;
    ck_assert_int_eq(ms_ksm_parse_stat(text, strlen(text), &st), 0);
    ck_assert_int_eq(st.rmap_items, 2901);
    ck_assert_int_eq(st.merging_pages, 2176);
    ck_assert_int_eq(st.process_profit, 8672192);
    ck_assert_int_eq(st.merge_any, 1);
    ck_assert_int_eq(st.mergeable, 1);
    /* an older kernel: two lines only, the rest unknown (-1) */
    static const char old[] = "ksm_rmap_items 5\nksm_merging_pages 3\n";
    ck_assert_int_eq(ms_ksm_parse_stat(old, strlen(old), &st), 0);
    ck_assert_int_eq(st.merging_pages, 3);
    ck_assert_int_eq(st.zero_pages, -1);
    ck_assert_int_eq(st.merge_any, -1);
    /* negative profit is a number */
    static const char neg[] = "ksm_merging_pages 0\nksm_process_profit -96\n";
    ck_assert_int_eq(ms_ksm_parse_stat(neg, strlen(neg), &st), 0);
    ck_assert_int_eq(st.process_profit, -96);
    static const char *bad[] = {
        "ksm_rmap_items 5\n",                       /* no merging line */
        "ksm_merging_pages x\n",
        "ksm_merging_pages 1\nksm_merging_pages 2\n",
        "ksm_merging_pages 1\nksm_merge_any: maybe\n",
        "ksm_merging_pages \n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(ms_ksm_parse_stat(bad[i], strlen(bad[i]), &st)
                      == -EINVAL, "case %zu", i);
    /* our own, whatever the kernel says, parses */
    if (access("/proc/self/ksm_stat", R_OK) == 0)
        ck_assert_int_eq(ms_ksm_read_stat(0, &st), 0);
}
END_TEST

/* ---- the knobs, on a folder of our own ------------------------------------ */

static char dir[128];

static void
dir_setup(void)
{
    ck_assert_int_eq(ts_tmpdir(dir, sizeof dir, "ksm"), 0);
}

static void
dir_teardown(void)
{
    ts_rmdir(dir);
}

static void
put(const char *name, const char *v)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(v, f);
    fclose(f);
}

static long
get(const char *name)
{
    char path[256];
    long v = -99;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%ld", &v), 1);
    fclose(f);
    return v;
}

/* The knobs as sysfs has them: files root writes and anyone reads. */
static void
fake_ksm(void)
{
    ck_assert_int_eq(chmod(dir, 0755), 0);
    put("run", "0\n");
    put("pages_to_scan", "100\n");
    put("sleep_millisecs", "20\n");
    put("pages_sharing", "7\n");
}

START_TEST(ksm_settings_held_and_restored)
{
    ms_ksm_ctl_t k, k2;
    char err[256];
    fake_ksm();
    ck_assert_int_eq(ms_ksm_begin(&k, dir, 4321, 33, err, sizeof err), 0);
    ck_assert_int_eq(get("run"), 1);
    ck_assert_int_eq(get("pages_to_scan"), 4321);
    ck_assert_int_eq(get("sleep_millisecs"), 33);
    /* a second run at the same time would restore ours: refused */
    ck_assert_int_eq(ms_ksm_begin(&k2, dir, 1, 1, err, sizeof err), -EBUSY);
    ck_assert_msg(strstr(err, "one --ksm run at a time") != NULL, "%s", err);
    ck_assert_int_eq(get("pages_to_scan"), 4321);       /* untouched */
    ms_ksm_sys_t sys;
    ck_assert_int_eq(ms_ksm_read_sys(dir, &sys), 0);
    ck_assert_int_eq(sys.pages_sharing, 7);
    ck_assert_int_eq(sys.full_scans, -1);               /* no such file */
    ck_assert_int_eq(ms_ksm_end(&k), 0);
    ck_assert_int_eq(get("run"), 0);
    ck_assert_int_eq(get("pages_to_scan"), 100);
    ck_assert_int_eq(get("sleep_millisecs"), 20);
    ck_assert_int_eq(ms_ksm_end(&k), 0);                /* twice: harmless */
    /* released: the next run may take them */
    ck_assert_int_eq(ms_ksm_begin(&k2, dir, 1, 1, err, sizeof err), 0);
    ck_assert_int_eq(ms_ksm_end(&k2), 0);
}
END_TEST

START_TEST(ksm_missing_is_an_error)
{
    ms_ksm_ctl_t k;
    char err[256], none[160];
    snprintf(none, sizeof none, "%s/no-such-folder", dir);
    ck_assert_int_eq(ms_ksm_begin(&k, none, 1, 1, err, sizeof err), -ENOENT);
    ck_assert_msg(strstr(err, "this kernel has no KSM") != NULL, "%s", err);
    ms_ksm_sys_t sys;
    ck_assert_int_eq(ms_ksm_read_sys(none, &sys), -ENOENT);
}
END_TEST

/* As someone who may not write the knobs: root drops to nobody in a child
 * (root may write anything), anyone else makes the file read-only. */
START_TEST(ksm_not_root_is_an_error)
{
    char err[256];
    fake_ksm();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (geteuid() == 0) {
            if (setgid(65534) < 0 || setuid(65534) < 0)
                _exit(3);
        } else {
            char path[256];
            snprintf(path, sizeof path, "%s/run", dir);
            chmod(path, 0444);
        }
        ms_ksm_ctl_t k;
        int r = ms_ksm_begin(&k, dir, 1, 1, err, sizeof err);
        _exit(r == -EACCES && strstr(err, "needs root") != NULL ? 0 : 1);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    ck_assert_int_eq(get("run"), 0);                    /* nothing changed */
    ck_assert_int_eq(get("pages_to_scan"), 100);
}
END_TEST

/* ---- the server ------------------------------------------------------------ */

/* cowlab --ksm as the user it runs as: exit 2 and the message. */
START_TEST(ksm_server_refuses_at_start)
{
    char out[4096];
    const char *args[] = { "--ksm", "--port", "0", "--scale", "0.02",
                           "--duration", "1", NULL };
    char none[160];
    snprintf(none, sizeof none, "%s/no-such-folder", dir);
    setenv("COWLAB_KSM_SYSFS", none, 1);
    ck_assert_int_eq(ts_run(args, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "this kernel has no KSM") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "listening") == NULL, "%s", out);
    /* not root (nobody, if we are root) */
    fake_ksm();
    setenv("COWLAB_KSM_SYSFS", dir, 1);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (geteuid() == 0) {
            if (setgid(65534) < 0 || setuid(65534) < 0)
                _exit(3);
        } else {
            char path[256];
            snprintf(path, sizeof path, "%s/run", dir);
            chmod(path, 0444);
        }
        int rc = ts_run(args, out, sizeof out);
        if (rc != 2 || strstr(out, "needs root") == NULL) {
            fprintf(stderr, "status %d: %s\n", rc, out);
            _exit(1);
        }
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_int_eq(get("run"), 0);
    unsetenv("COWLAB_KSM_SYSFS");
}
END_TEST

static int
sysfs_ksm_usable(void)
{
    return access(MS_KSM_SYSFS "/run", W_OK) == 0
           && ms_ksm_merge_supported() == 0;
}

/* The last value of column col in samples.csv, its maximum, and the
 * value at the row before the last. */
typedef struct { long last, max; size_t rows; } series_t;

static int
series(const char *path, const char *col, series_t *s)
{
    ts_csv_t c;
    char err[256];
    if (ts_csv_load(&c, path, err, sizeof err) < 0)
        return -1;
    s->max = -1;
    s->last = -1;
    s->rows = c.nrows;
    for (size_t r = 0; r < c.nrows; r++) {
        const char *v = ts_csv_get(&c, r, col);
        long x = *v ? strtol(v, NULL, 10) : -1;
        if (x > s->max)
            s->max = x;
        s->last = x;
    }
    ts_csv_free(&c);
    return 0;
}

/* One worker, 60 requests, then idle: with --ksm ksmd merges the copies
 * whose bytes went back to the master's; without it they stay copied. */
static int
run_idle(int ksm, int max_rounds, const char *out, series_t *copied,
         series_t *ksm_pages)
{
    int i;
    ts_server_t s = TS_SERVER_NONE;
    const char *base[] = { "-w", "1", "--scale", "0.05", "--sample-ms",
                           "100", "--exit", "skip", "--out", out, NULL };
    const char *with[] = { "--ksm", "--ksm-pages-to-scan", "5000",
                           "--ksm-sleep-ms", "10", NULL };
    char path[256];
    ck_assert_int_eq(ts_server_start(&s, base, ksm ? with : NULL), 0);
    for (i = 0; i < 60; i++)
        ck_assert_int_eq(ts_get(s.port, i % 2 ? "/" : "/api/items", NULL,
                                0), 200);
    snprintf(path, sizeof path, "%s/samples.csv", out);
    /* idle: wait until the copies fell, at most max_rounds x 200 ms
     * (ksmd is one kernel thread for the machine: a loaded machine, or
     * another KSM user changing its knobs, slows it down) */
    for (i = 0; i < max_rounds; i++) {
        ts_sleep_ms(200);
        if (series(path, "heap_copied_pages", copied) == 0
            && copied->rows > 10 && copied->last < copied->max / 2)
            break;
    }
    kill(s.pid, SIGTERM);
    int st = ts_server_wait(&s);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_int_eq(series(path, "heap_copied_pages", copied), 0);
    ck_assert_int_eq(series(path, "heap_ksm_pages", ksm_pages), 0);
    return i + 1;
}

START_TEST(ksm_merges_copies_back)
{
    if (!sysfs_ksm_usable())
        TS_SKIP("needs root and a kernel with KSM and PR_SET_MEMORY_MERGE "
                "(Linux 6.4+)");
#ifdef RT_MALLOC_BYPASS
    TS_SKIP("copy figures need the arena allocator (RT_MALLOC_BYPASS sends "
            "objects to malloc)");
#endif
    char out[192];
    ms_ksm_sys_t before, after;
    ck_assert_int_eq(ms_ksm_read_sys(NULL, &before), 0);
    series_t copied, kp;
    snprintf(out, sizeof out, "%s/ksm", dir);
    int rounds = run_idle(1, 600, out, &copied, &kp);   /* 2 minutes */
    printf("ksm: heap_copied_pages max %ld, last %ld; heap_ksm_pages max "
           "%ld, last %ld\n", copied.max, copied.last, kp.max, kp.last);
    ck_assert_int_gt(copied.max, 100);
    ck_assert_int_lt(copied.last, copied.max / 2);      /* merged back */
    ck_assert_int_gt(kp.last, 0);       /* and the worker maps KSM pages */
    /* restored: what the machine had before */
    ck_assert_int_eq(ms_ksm_read_sys(NULL, &after), 0);
    ck_assert_int_eq(after.run, before.run);
    ck_assert_int_eq(after.pages_to_scan, before.pages_to_scan);
    ck_assert_int_eq(after.sleep_millisecs, before.sleep_millisecs);
    /* runs.csv: ksmd's CPU, and KSM on */
    ts_csv_t r;
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/runs.csv", out);
    ck_assert_msg(ts_csv_load(&r, path, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(ts_csv_long(&r, 0, "ksm"), 1);
    ck_assert(ts_csv_double(&r, 0, "ksmd_cpu_s") >= 0);
    ts_csv_free(&r);
    /* control: the same without --ksm keeps every copy */
    snprintf(out, sizeof out, "%s/plain", dir);
    run_idle(0, rounds, out, &copied, &kp);  /* idle as long */
    printf("ksm: without --ksm: heap_copied_pages max %ld, last %ld\n",
           copied.max, copied.last);
    ck_assert_int_gt(copied.max, 100);
    ck_assert_int_eq(copied.last, copied.max);
    ck_assert_int_eq(kp.max, -1);                       /* empty */
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("ksm");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, ksm_stat_parsed);
    suite_add_tcase(s, tc);
    TCase *tk = tcase_create("knobs");
    tcase_add_checked_fixture(tk, dir_setup, dir_teardown);
    tcase_add_test(tk, ksm_settings_held_and_restored);
    tcase_add_test(tk, ksm_missing_is_an_error);
    tcase_add_test(tk, ksm_not_root_is_an_error);
    suite_add_tcase(s, tk);
    TCase *ts = tcase_create("server");
    tcase_add_checked_fixture(ts, dir_setup, dir_teardown);
    tcase_set_timeout(ts, 330);  /* a 2-minute wait for ksmd, and its control */
    tcase_add_test(ts, ksm_server_refuses_at_start);
    tcase_add_test(ts, ksm_merges_copies_back);
    suite_add_tcase(s, ts);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
