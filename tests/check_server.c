/* check_server.c -- integration tests for the cowlab binary: the real
 * server on port 0 in its own process group, talked to over HTTP on
 * loopback.  Routes, keep-alive, /stats, respawn after kill -9, graceful
 * SIGTERM, SIGHUP reload, max-requests, malformed requests, bad config,
 * and the CSV files a --duration run leaves. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

static const char *bin;
static pid_t srv = -1;
static int srv_out = -1;                     /* its stdout */
static int port;
static char tmpdir[64];

static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Start the server with extra args; wait for "listening http://...". */
static void
start(const char *const *args)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    srv = fork();
    ck_assert_int_ge(srv, 0);
    if (srv == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive the test */
        dup2(fds[1], 1);
        close(fds[0]);
        const char *argv[64] = { bin, "--port", "0", "-q", "--scale",
                                 "0.02", "--sample-ms", "50" };
        int n = 8;
        for (int i = 0; args && args[i]; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    setpgid(srv, srv);
    close(fds[1]);
    srv_out = fds[0];
    char buf[256];
    size_t len = 0;
    struct pollfd p = { srv_out, POLLIN, 0 };
    while (len < sizeof buf - 1) {
        ck_assert_msg(poll(&p, 1, 20000) == 1, "server did not start");
        ssize_t k = read(srv_out, buf + len, 1);
        ck_assert_msg(k == 1, "server exited before listening");
        len++;
        if (buf[len - 1] == '\n')
            break;
    }
    buf[len] = '\0';
    ck_assert_msg(sscanf(buf, "listening http://127.0.0.1:%d", &port) == 1,
                  "unexpected first line: %s", buf);
}

static void
stop_all(void)
{
    if (srv > 0) {
        kill(-srv, SIGKILL);
        waitpid(srv, NULL, 0);
        srv = -1;
    }
    if (srv_out >= 0)
        close(srv_out);
    srv_out = -1;
}

static void setup(void) { snprintf(tmpdir, sizeof tmpdir, "/tmp/cowlab-test-XXXXXX");
                          ck_assert_ptr_nonnull(mkdtemp(tmpdir)); }
static void teardown(void)
{
    stop_all();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
}

static int
connect_srv(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { 0 };
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = { 20, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Read one response (headers + Content-Length body); status or -1. */
static int
read_response(int fd, char *body, size_t cap)
{
    static char buf[65536];
    size_t len = 0;
    char *eoh = NULL;
    while (!(eoh = strstr(buf, "\r\n\r\n"))) {
        ssize_t k = read(fd, buf + len, sizeof buf - 1 - len);
        if (k <= 0)
            return -1;
        len += (size_t)k;
        buf[len] = '\0';
    }
    int status = -1;
    sscanf(buf, "HTTP/1.1 %d", &status);
    size_t clen = 0;
    char *cl = strcasestr(buf, "Content-Length:");
    if (cl && cl < eoh)
        clen = strtoul(cl + 15, NULL, 10);
    size_t have = len - (size_t)(eoh + 4 - buf);
    while (have < clen) {
        ssize_t k = read(fd, buf + len, sizeof buf - 1 - len);
        if (k <= 0)
            return -1;
        len += (size_t)k;
        have += (size_t)k;
    }
    buf[len] = '\0';
    if (body) {
        size_t n = clen < cap - 1 ? clen : cap - 1;
        memcpy(body, eoh + 4, n);
        body[n] = '\0';
    }
    /* keep what follows (pipelined responses) */
    size_t used = (size_t)(eoh + 4 - buf) + clen;
    memmove(buf, buf + used, len - used + 1);
    return status;
}

static int
get(const char *path, char *body, size_t cap)
{
    int fd = connect_srv();
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n"
                     "Connection: close\r\n\r\n", path);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    int st = read_response(fd, body, cap);
    close(fd);
    return st;
}

/* The worker pids: the server's children. */
static int
workers(pid_t *out, int max)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", srv, srv);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    int n = 0;
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = '\0';
    for (char *p = strtok(buf, " \n"); p && n < max; p = strtok(NULL, " \n"))
        out[n++] = (pid_t)atoi(p);
    return n;
}

static int
wait_workers(int want, pid_t *out)
{
    for (int i = 0; i < 400; i++) {
        int n = workers(out, 16);
        if (n == want)
            return n;
        sleep_ms(25);
    }
    return workers(out, 16);
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
        ck_assert_int_eq(read_response(fd, NULL, 0), 200);
    }
    const char *st = "GET /stats HTTP/1.1\r\nHost: t\r\n\r\n";
    ck_assert_int_eq(write(fd, st, strlen(st)), (ssize_t)strlen(st));
    char body[4096];
    ck_assert_int_eq(read_response(fd, body, sizeof body), 200);
    ck_assert_msg(strstr(body, "\"requests\":5") != NULL, "%s", body);
    close(fd);
}
END_TEST

START_TEST(server_malformed_request_4xx_worker_lives)
{
    const char *args[] = { "-w", "1", NULL };
    start(args);
    pid_t before[16], after[16];
    ck_assert_int_eq(wait_workers(1, before), 1);
    const char *bad[] = { "GARBAGE\r\n\r\n", "GET / HTTP/1.x\r\n\r\n",
                          "GET / HTTP/1.1\rHost: x\r\n\r\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fd = connect_srv();
        ck_assert_int_eq(write(fd, bad[i], strlen(bad[i])),
                         (ssize_t)strlen(bad[i]));
        int st = read_response(fd, NULL, 0);
        ck_assert_msg(st >= 400 && st < 500, "case %zu: status %d", i, st);
        close(fd);
    }
    ck_assert_int_eq(get("/healthz", NULL, 0), 200);
    ck_assert_int_eq(workers(after, 16), 1);
    ck_assert_int_eq(after[0], before[0]);
}
END_TEST

START_TEST(server_kill9_worker_respawned)
{
    const char *args[] = { "-w", "2", NULL };
    start(args);
    pid_t w[16], w2[16];
    ck_assert_int_eq(wait_workers(2, w), 2);
    kill(w[0], SIGKILL);
    int ok = 0;
    for (int i = 0; i < 400 && !ok; i++) {
        sleep_ms(25);
        int n = workers(w2, 16);
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
    ck_assert_int_eq(wait_workers(1, w), 1);
    int fd = connect_srv();
    const char *req = "GET /sleep?ms=700 HTTP/1.1\r\nHost: t\r\n\r\n";
    ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    sleep_ms(200);                           /* the request is in flight */
    kill(srv, SIGTERM);
    char body[256];
    ck_assert_int_eq(read_response(fd, body, sizeof body), 200);
    ck_assert_ptr_nonnull(strstr(body, "slept_ms"));
    close(fd);
    int status;
    ck_assert_int_eq(waitpid(srv, &status, 0), srv);
    srv = -1;
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(server_sighup_replaces_every_worker)
{
    const char *args[] = { "-w", "2", NULL };
    start(args);
    pid_t w[16], w2[16];
    ck_assert_int_eq(wait_workers(2, w), 2);
    kill(srv, SIGHUP);
    int ok = 0;
    for (int i = 0; i < 400 && !ok; i++) {
        sleep_ms(25);
        int n = workers(w2, 16);
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
    ck_assert_int_eq(wait_workers(1, w), 1);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(get("/healthz", NULL, 0), 200);
    int ok = 0;
    for (int i = 0; i < 400 && !ok; i++) {
        sleep_ms(25);
        ok = workers(w2, 16) == 1 && w2[0] != w[0];
    }
    ck_assert_msg(ok, "worker not recycled after max-requests");
    ck_assert_int_eq(get("/healthz", NULL, 0), 200);
}
END_TEST

static int
run_status(const char *const *args, char *err, size_t cap)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        dup2(fds[1], 1);
        close(fds[0]);
        const char *argv[32] = { bin };
        int n = 1;
        for (int i = 0; args[i]; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t k;
    while (len < cap - 1 && (k = read(fds[0], err + len, cap - 1 - len)) > 0)
        len += (size_t)k;
    err[len] = '\0';
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(server_bad_config_exits_2_naming_field)
{
    char path[128], out[4096];
    snprintf(path, sizeof path, "%s/bad.json", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("{\n  \"workers\": \"many\"\n}\n", f);
    fclose(f);
    const char *a1[] = { "-c", path, NULL };
    ck_assert_int_eq(run_status(a1, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "workers") && strstr(out, ":2:"), "%s", out);
    const char *a2[] = { "--workers", "zero", NULL };
    ck_assert_int_eq(run_status(a2, out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--workers"));
    const char *a3[] = { "--help", NULL };
    ck_assert_int_eq(run_status(a3, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "SIGHUP"));
    const char *a4[] = { "--check-config", "--workers", "3", NULL };
    ck_assert_int_eq(run_status(a4, out, sizeof out), 0);
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
        ck_assert_msg(run_status(a, out, sizeof out) == 0, "%s: %s",
                      files[i], out);
    }
}
END_TEST

START_TEST(server_duration_run_writes_csv)
{
    char outdir[128], path[256], line[2048];
    snprintf(outdir, sizeof outdir, "%s/run", tmpdir);
    const char *args[] = { "-w", "2", "--duration", "1.5", "--out", outdir,
                           "--exit", "skip", NULL };
    start(args);
    for (int i = 0; i < 20; i++)
        get("/api/items", NULL, 0);
    int status;
    ck_assert_int_eq(waitpid(srv, &status, 0), srv);
    srv = -1;
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    snprintf(path, sizeof path, "%s/samples.csv", outdir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_ptr_nonnull(strstr(line, "run_id,policy,worker,pid,t_ms"));
    int rows = 0, cols_ok = 1;
    while (fgets(line, sizeof line, f)) {
        int commas = 0;
        for (char *p = line; *p; p++)
            commas += *p == ',';
        cols_ok &= commas == 29;
        rows++;
    }
    fclose(f);
    ck_assert_int_ge(rows, 4);
    ck_assert(cols_ok);
    snprintf(path, sizeof path, "%s/runs.csv", outdir);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    snprintf(path, sizeof path, "%s/meta.json", outdir);
    ck_assert_int_eq(access(path, R_OK), 0);
}
END_TEST

int
main(void)
{
    bin = getenv("COWLAB_BIN");
    if (bin == NULL)
        bin = "bin/cowlab";
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
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
