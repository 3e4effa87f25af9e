/* check_server.c -- integration tests for the cowlab binary: the real
 * server on port 0 in its own process group, talked to over HTTP on
 * loopback.  Routes, keep-alive, /stats, respawn after kill -9, graceful
 * SIGTERM, SIGHUP reload, max-requests, malformed requests, bad config,
 * and the CSV files a --duration run leaves. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "gc.h"
#include "mem.h"
#include "object.h"
#include "support.h"
#include "worker.h"

static ts_server_t S = TS_SERVER_NONE;
static char tmpdir[64];

/* Start the server (a small heap, fast sampling) with extra args. */
static void
start(const char *const *args)
{
    static const char *const base[] = { "--scale", "0.02", "--sample-ms",
                                        "50", NULL };
    ck_assert_msg(ts_server_start(&S, base, args) == 0,
                  "server did not start");
}

static void setup(void)
{
    ck_assert_int_eq(ts_tmpdir(tmpdir, sizeof tmpdir, "test"), 0);
}

static void teardown(void)
{
    ts_server_kill(&S);
    ts_rmdir(tmpdir);
}

static int
connect_srv(void)
{
    int fd = ts_connect(S.port, 0);
    ck_assert_int_ge(fd, 0);
    return fd;
}

static int
get(const char *path, char *body, size_t cap)
{
    return ts_get(S.port, path, body, cap);
}

START_TEST(server_routes_answer)
{
    const char *args[] = { "-w", "2", NULL };
    start(args);
    char body[4096];
    ck_assert_int_eq(get("/healthz", body, sizeof body), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"ok\""));
    ck_assert_int_eq(get("/", body, sizeof body), 200);
    ck_assert_int_eq(get("/api/items", body, sizeof body), 200);
    ck_assert_int_eq(get("/api/user", body, sizeof body), 200);
    ck_assert_int_eq(get("/static", body, sizeof body), 200);
    ck_assert_int_eq(get("/no/such/route", body, sizeof body), 404);
    ck_assert_int_eq(get("/stats", body, sizeof body), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"requests\""));
}
END_TEST

START_TEST(server_keepalive_and_stats_count)
{
    const char *args[] = { "-w", "1", NULL };
    start(args);
    int fd = connect_srv();
    const char *req = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
        ck_assert_int_eq(ts_read_response(fd, NULL, 0), 200);
    }
    const char *st = "GET /stats HTTP/1.1\r\nHost: t\r\n\r\n";
    ck_assert_int_eq(write(fd, st, strlen(st)), (ssize_t)strlen(st));
    char body[4096];
    ck_assert_int_eq(ts_read_response(fd, body, sizeof body), 200);
    ck_assert_msg(strstr(body, "\"requests\":5") != NULL, "%s", body);
    ts_close(fd);
}
END_TEST

START_TEST(server_malformed_request_4xx_worker_lives)
{
    const char *args[] = { "-w", "1", NULL };
    start(args);
    pid_t before[16], after[16];
    ck_assert_int_eq(ts_wait_workers(&S, 1, before, 16), 1);
    const char *bad[] = { "GARBAGE\r\n\r\n", "GET / HTTP/1.x\r\n\r\n",
                          "GET / HTTP/1.1\rHost: x\r\n\r\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fd = connect_srv();
        ck_assert_int_eq(write(fd, bad[i], strlen(bad[i])),
                         (ssize_t)strlen(bad[i]));
        int st = ts_read_response(fd, NULL, 0);
        ck_assert_msg(st >= 400 && st < 500, "case %zu: status %d", i, st);
        ts_close(fd);
    }
    ck_assert_int_eq(get("/healthz", NULL, 0), 200);
    ck_assert_int_eq(ts_workers(&S, after, 16), 1);
    ck_assert_int_eq(after[0], before[0]);
}
END_TEST

START_TEST(server_kill9_worker_respawned)
{
    const char *args[] = { "-w", "2", NULL };
    start(args);
    pid_t w[16], w2[16];
    ck_assert_int_eq(ts_wait_workers(&S, 2, w, 16), 2);
    kill(w[0], SIGKILL);
    int ok = 0;
    for (int i = 0; i < 400 && !ok; i++) {
        ts_sleep_ms(25);
        int n = ts_workers(&S, w2, 16);
        ok = n == 2 && w2[0] != w[0] && w2[1] != w[0];
    }
    ck_assert_msg(ok, "worker not respawned");
    ck_assert_int_eq(get("/healthz", NULL, 0), 200);
}
END_TEST

START_TEST(server_sigterm_drains_inflight)
{
    const char *args[] = { "-w", "1", NULL };
    start(args);
    pid_t w[16];
    ck_assert_int_eq(ts_wait_workers(&S, 1, w, 16), 1);
    int fd = connect_srv();
    const char *req = "GET /sleep?ms=700 HTTP/1.1\r\nHost: t\r\n\r\n";
    ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    ts_sleep_ms(200);                           /* the request is in flight */
    kill(S.pid, SIGTERM);
    char body[256];
    ck_assert_int_eq(ts_read_response(fd, body, sizeof body), 200);
    ck_assert_ptr_nonnull(strstr(body, "slept_ms"));
    ts_close(fd);
    int status = ts_server_wait(&S);
    ck_assert_int_ne(status, -1);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(server_sighup_replaces_every_worker)
{
    const char *args[] = { "-w", "2", NULL };
    start(args);
    pid_t w[16], w2[16];
    ck_assert_int_eq(ts_wait_workers(&S, 2, w, 16), 2);
    kill(S.pid, SIGHUP);
    int ok = 0;
    for (int i = 0; i < 400 && !ok; i++) {
        ts_sleep_ms(25);
        int n = ts_workers(&S, w2, 16);
        ok = n == 2;
        for (int j = 0; j < n; j++)
            if (w2[j] == w[0] || w2[j] == w[1])
                ok = 0;
    }
    ck_assert_msg(ok, "workers not all replaced");
    ck_assert_int_eq(get("/healthz", NULL, 0), 200);
}
END_TEST

START_TEST(server_max_requests_recycles)
{
    const char *args[] = { "-w", "1", "--max-requests", "3", NULL };
    start(args);
    pid_t w[16], w2[16];
    ck_assert_int_eq(ts_wait_workers(&S, 1, w, 16), 1);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(get("/healthz", NULL, 0), 200);
    int ok = 0;
    for (int i = 0; i < 400 && !ok; i++) {
        ts_sleep_ms(25);
        ok = ts_workers(&S, w2, 16) == 1 && w2[0] != w[0];
    }
    ck_assert_msg(ok, "worker not recycled after max-requests");
    ck_assert_int_eq(get("/healthz", NULL, 0), 200);
}
END_TEST

START_TEST(server_bad_config_exits_2_naming_field)
{
    char path[128], out[8192];
    snprintf(path, sizeof path, "%s/bad.json", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("{\n  \"workers\": \"many\"\n}\n", f);
    fclose(f);
    const char *a1[] = { "-c", path, NULL };
    ck_assert_int_eq(ts_run(a1, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "workers") && strstr(out, ":2:"), "%s", out);
    const char *a2[] = { "--workers", "zero", NULL };
    ck_assert_int_eq(ts_run(a2, out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--workers"));
    const char *a3[] = { "--help", NULL };
    ck_assert_int_eq(ts_run(a3, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "SIGHUP"));
    const char *a4[] = { "--check-config", "--workers", "3", NULL };
    ck_assert_int_eq(ts_run(a4, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"workers\": 3"));
}
END_TEST

START_TEST(server_shipped_workloads_load)
{
    char out[8192];
    const char *files[] = { "workloads/webapp.json",
                            "workloads/webapp-stateful.json" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *a[] = { "--check-config", "--workload", files[i], NULL };
        ck_assert_msg(ts_run(a, out, sizeof out) == 0, "%s: %s",
                      files[i], out);
    }
}
END_TEST

START_TEST(server_duration_run_writes_csv)
{
    char outdir[160], path[256], err[512];
    snprintf(outdir, sizeof outdir, "%s/run", tmpdir);
    const char *args[] = { "-w", "2", "--duration", "1.5", "--out", outdir,
                           "--exit", "skip", NULL };
    start(args);
    for (int i = 0; i < 20; i++)
        get("/api/items", NULL, 0);
    int status = ts_server_wait(&S);
    ck_assert_int_ne(status, -1);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* Whole rows, each with as many fields as the header. */
    ts_csv_t c;
    snprintf(path, sizeof path, "%s/samples.csv", outdir);
    ck_assert_msg(ts_csv_load(&c, path, err, sizeof err) == 0, "%s", err);
    const char *first[] = { "run_id", "policy", "worker", "pid", "t_ms" };
    for (size_t i = 0; i < 5; i++)
        ck_assert_str_eq(c.cols[i], first[i]);
    ck_assert_uint_ge(c.nrows, 4);
    ts_csv_free(&c);
    snprintf(path, sizeof path, "%s/runs.csv", outdir);
    ck_assert_msg(ts_csv_load(&c, path, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(c.nrows, 1);
    ts_csv_free(&c);
    snprintf(path, sizeof path, "%s/meta.json", outdir);
    ck_assert_int_eq(access(path, R_OK), 0);
}
END_TEST

/* The first full collection's request is recorded whichever way copies
 * are attributed (write sets or pagemap bracketing): thresholds of
 * 10,1,1 on the growing webapp-stateful heap run one within a few
 * dozen requests.  (The write-set path once returned before noting it.) */
START_TEST(server_first_full_collection_recorded)
{
    char outdir[160], path[256], err[512];
    snprintf(outdir, sizeof outdir, "%s/fullgc", tmpdir);
    const char *args[] = { "-w", "1", "--scale", "0.05", "--workload",
                           "webapp-stateful", "--gc-threshold", "10,1,1",
                           "--duration", "3", "--out", outdir, "--exit",
                           "skip", NULL };
    start(args);
    for (int i = 0; i < 60; i++)
        get("/api/items", NULL, 0);
    int status = ts_server_wait(&S);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ts_csv_t c;
    snprintf(path, sizeof path, "%s/runs.csv", outdir);
    ck_assert_msg(ts_csv_load(&c, path, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(ts_csv_long(&c, 0, "workers_full_gc"), 1);
    double first = ts_csv_double(&c, 0, "first_full_gc_request");
    ck_assert(first >= 1 && first <= 60);
    ts_csv_free(&c);
}
END_TEST

/* --immortal without the memory to finish: an error (the master then
 * exits 1 with a message), never a partly immortal heap measured as an
 * immortal one. */
START_TEST(server_immortal_policy_out_of_memory)
{
    cfg_t cfg;
    rt_heap_t *h = rt_heap_new();
    ck_assert_ptr_nonnull(h);
    cfg_defaults(&cfg);
    cfg.immortal = 1;
    rt_obj_t *m = rt_module_new(h, "app");
    rt_obj_t *l = rt_list_new(h);
    for (int i = 0; i < 3000; i++)
        rt_list_append_steal(l, rt_str_from(h, "x"));
    rt_dict_set_str(h, rt_module_dict(m), "l", l);
    for (long n = 1; n <= 2; n++) {
        mem_fail_after(n);
        ck_assert_int_eq(srv_apply_prefork_policy(&cfg, h, NULL), -ENOMEM);
        mem_fail_after(0);
    }
    ck_assert_int_eq(srv_apply_prefork_policy(&cfg, h, NULL), 0);
    ck_assert(rt_is_immortal(l) && rt_is_immortal(rt_list_get(l, 2999)));
    rt_decref(l);
    rt_decref(m);
    cfg_free(&cfg);
    rt_heap_free(h);
}
END_TEST

/* --warmup runs before the policy's own steps and reports what it did:
 * its full collection finds the two-list cycle nobody holds; without
 * --warmup nothing runs and the report stays zero (the control). */
START_TEST(server_warmup_reports_its_steps)
{
    cfg_t cfg;
    rt_warmup_t wu;
    rt_heap_t *h = rt_heap_new();
    ck_assert_ptr_nonnull(h);
    cfg_defaults(&cfg);
    gc_collect(2);                      /* nothing else pending */
    rt_obj_t *a = rt_list_new(h), *b = rt_list_new(h);
    ck_assert_int_eq(rt_list_append(a, b), 0);
    ck_assert_int_eq(rt_list_append(b, a), 0);
    rt_decref(a);
    rt_decref(b);                       /* only the cycle keeps them */
    memset(&wu, 0xff, sizeof wu);
    ck_assert_int_eq(srv_apply_prefork_policy(&cfg, h, &wu), 0);
    ck_assert_int_eq(wu.collected, 0);
    ck_assert(wu.ms == 0 && wu.frozen == 0);
    cfg.warmup = 1;
    cfg.quiet = 1;
    ck_assert_int_eq(srv_apply_prefork_policy(&cfg, h, &wu), 0);
    ck_assert_int_eq(wu.collected, 2);
    ck_assert(wu.ms >= 0);
    cfg_free(&cfg);
    rt_heap_free(h);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("server");
    TCase *tc = tcase_create("server");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, server_routes_answer);
    tcase_add_test(tc, server_keepalive_and_stats_count);
    tcase_add_test(tc, server_malformed_request_4xx_worker_lives);
    tcase_add_test(tc, server_kill9_worker_respawned);
    tcase_add_test(tc, server_sigterm_drains_inflight);
    tcase_add_test(tc, server_sighup_replaces_every_worker);
    tcase_add_test(tc, server_max_requests_recycles);
    tcase_add_test(tc, server_bad_config_exits_2_naming_field);
    tcase_add_test(tc, server_shipped_workloads_load);
    tcase_add_test(tc, server_duration_run_writes_csv);
    tcase_add_test(tc, server_first_full_collection_recorded);
    tcase_add_test(tc, server_immortal_policy_out_of_memory);
    tcase_add_test(tc, server_warmup_reports_its_steps);
    suite_add_tcase(s, tc);
    return ts_run_suite(s);
}
