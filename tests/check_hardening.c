/*
 * check_hardening.c -- the bad-input matrix and the fault cases, against
 * the real cowlab binary (COWLAB_BIN, default bin/cowlab) on port 0 in
 * its own process group, over loopback only.
 *
 *   matrix     malformed request lines, methods, versions, bare CR/LF,
 *              duplicate or conflicting Content-Length/Transfer-Encoding
 *              (with a smuggled request that must never be answered),
 *              oversize URL/head/body (414/431/413 with small --limit-*
 *              flags); after every case the same worker still answers
 *              /healthz.  One server for the whole matrix.
 *   conn       pipelining, clients that close mid-request, a client that
 *              never reads, reads resumed after write back-pressure,
 *              slowloris (408), idle keep-alive close, a request on an
 *              idle connection during a SIGHUP reload.
 *   faults     --timeout kills a stuck worker and respawns it; SIGKILL of
 *              a worker under requests; unwritable --out and a full disk
 *              exit 2.
 *   config     bad config files and bad flags: exit 2 with a message that
 *              names the file, line:column and field, or the flag.
 *   chaos      scripts/chaos.sh 5 (wrk, kills, SIGHUP reload), when wrk
 *              and bash are installed.
 *
 * Every server child sets PR_SET_PDEATHSIG and is its own process group;
 * teardown kills the group.  CK_RUN_CASE=matrix runs one case.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

static ts_server_t S = TS_SERVER_NONE;  /* per test (checked fixture) */
static ts_server_t M = TS_SERVER_NONE;  /* the matrix server */
static pid_t matrix_worker;             /* its worker's pid at start */
static char tmpdir[64];

/* Every server: "--scale 0.01 --sample-ms 50", then the test's args. */
static const char *const base_args[] = { "--scale", "0.01", "--sample-ms",
                                         "50", NULL };

static void
start(const char *const *args)
{
    ck_assert_msg(ts_server_start(&S, base_args, args) == 0,
                  "server did not start");
}

/* A connection the test cannot do without. */
static int
connect_port(int port, int rcvbuf)
{
    int fd = ts_connect(port, rcvbuf);

    ck_assert_msg(fd >= 0, "connect: %s", strerror(errno));
    return fd;
}

/* Read until EOF, reset, timeout or cap - 1 bytes; NUL-terminated. */
static size_t
read_all(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t len = 0;
    double end = ts_now_ms() + timeout_ms;

    while (len < cap - 1) {
        struct pollfd p = { fd, POLLIN, 0 };
        int left = (int)(end - ts_now_ms());
        ssize_t k;

        if (left <= 0 || poll(&p, 1, left) != 1)
            break;
        k = recv(fd, buf + len, cap - 1 - len, 0);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    buf[len] = '\0';
    return len;
}

/* Status of the response at p ("HTTP/1.1 NNN"), or -1. */
static int
status_of(const char *p)
{
    int st = -1;

    if (sscanf(p, "HTTP/1.1 %d", &st) != 1)
        return -1;
    return st;
}

/* How many responses the bytes hold (status lines at line starts). */
static int
count_responses(const char *p, size_t n)
{
    int c = 0;

    for (size_t i = 0; i + 9 <= n; i++)
        if ((i == 0 || p[i - 1] == '\n') && memcmp(p + i, "HTTP/1.1 ", 9) == 0)
            c++;
    return c;
}

/* The pid /healthz reports (the worker that answered), or -1. */
static pid_t
healthz_pid(int port)
{
    char body[256];
    const char *p;

    if (ts_get(port, "/healthz", body, sizeof body) != 200)
        return -1;
    p = strstr(body, "\"pid\":");
    return p ? (pid_t)atoi(p + 6) : -1;
}

/* The server answers /healthz, from the same worker as before. */
static void
expect_alive(const ts_server_t *s, pid_t worker, const char *after)
{
    pid_t p = healthz_pid(s->port);

    ck_assert_msg(p > 0, "after %s: /healthz does not answer 200", after);
    if (worker > 0)
        ck_assert_msg(p == worker, "after %s: worker %d replaced by %d "
                      "(it died)", after, (int)worker, (int)p);
}

/* ---- the matrix ------------------------------------------------------- */

typedef struct bad {
    const char *name;
    const char *req;
    size_t len;                 /* 0: strlen(req) */
    int status;                 /* expected status of the only response */
} bad_t;

#define CASE(n, r, st) { n, r, 0, st }
#define CASEN(n, r, st) { n, r, sizeof(r) - 1, st }    /* with NULs */

/*
 * The matrix server runs with --limit-header-bytes 512
 * --limit-url-bytes 64 --limit-body-bytes 256.  Every case must get
 * exactly this one response and a close: a second one would mean the
 * bytes after the framing error were parsed as a request (smuggling).
 */
static const bad_t bad[] = {
    /* malformed request lines */
    CASE("garbage", "GARBAGE\r\n\r\n", 400),
    CASE("method only", "GET\r\n\r\n", 400),
    CASE("http/0.9 line", "GET /\r\n\r\n", 400),
    CASE("two spaces", "GET  / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    CASE("leading space", " GET / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    CASE("trailing token", "GET / HTTP/1.1 x\r\nHost: t\r\n\r\n", 400),
    CASE("space in target", "GET /a b HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    CASE("ctl in target", "GET /a\x01 HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    CASE("del in target", "GET /a\x7f HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    CASEN("nul in target", "GET /a\0b HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    CASEN("nul in header", "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 400),
    CASE("star path", "GET */healthz HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    CASE("bad port", "GET http://a:99999/ HTTP/1.1\r\nHost: t\r\n\r\n",
         400),
    CASE("no colon", "GET / HTTP/1.1\r\nHost t\r\n\r\n", 400),
    CASE("space before colon", "GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
    CASE("empty name", "GET / HTTP/1.1\r\n: t\r\n\r\n", 400),
    CASE("obs-fold", "GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n",
         400),
    CASE("duplicate host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
         400),
    /* invalid methods */
    CASE("method char", "G@T / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    CASE("lowercase method", "get / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    CASE("unknown method", "FOO / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    CASE("long method", "GETT / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    CASE("connect", "CONNECT a:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    /* invalid versions */
    CASE("version x", "GET / HTTP/1.x\r\nHost: t\r\n\r\n", 400),
    CASE("version httx", "GET / HTTX/1.1\r\nHost: t\r\n\r\n", 400),
    CASE("version lowercase", "GET / http/1.1\r\nHost: t\r\n\r\n", 400),
    CASE("version 1", "GET / HTTP/1\r\nHost: t\r\n\r\n", 400),
    CASE("version 1.1.1", "GET / HTTP/1.1.1\r\nHost: t\r\n\r\n", 400),
    CASE("version 11.1", "GET / HTTP/11.1\r\nHost: t\r\n\r\n", 400),
    CASE("version 2.0", "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    CASE("version 0.9", "GET / HTTP/0.9\r\nHost: t\r\n\r\n", 505),
    /* bare CR and LF (CVE-2023-30589 is the bare CR) */
    CASE("bare cr after line", "GET / HTTP/1.1\rHost: t\r\n\r\n", 400),
    CASE("bare cr in value", "GET / HTTP/1.1\r\nX: a\rb\r\nHost: t\r\n\r\n",
         400),
    CASE("bare cr at end", "GET / HTTP/1.1\r\nHost: t\r\n\r\r\n", 400),
    CASE("bare lf", "GET / HTTP/1.1\nHost: t\n\n", 400),
    CASE("bare lf in head", "GET / HTTP/1.1\r\nHost: t\n\r\n", 400),
    CASE("bare cr in chunk line",
         "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
         "3\rabc\r\n0\r\n\r\n", 400),
    CASE("bare cr after chunk",
         "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
         "3\r\nabc\r0\r\n\r\n", 400),
    CASE("no crlf after chunk",
         "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
         "3\r\nabcXX0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
         400),
    /* Content-Length and Transfer-Encoding */
    CASE("cl twice same", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3"
         "\r\nContent-Length: 3\r\n\r\nabc", 400),
    CASE("cl twice differ", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3"
         "\r\nContent-Length: 30\r\n\r\nabcGET /smuggled HTTP/1.1\r\n\r\n",
         400),
    CASE("cl list", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 3\r\n"
         "\r\nabc", 400),
    CASE("cl then te", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1"
         "\r\nHost: t\r\n\r\n", 400),
    CASE("te then cl", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
         "chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /smuggled "
         "HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    CASE("te twice", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
         "chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    CASE("te list", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
         "gzip, chunked\r\n\r\n0\r\n\r\n", 400),
    CASE("te identity", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
         "identity\r\n\r\nabc", 400),
    CASE("te in http/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked"
         "\r\n\r\n0\r\n\r\n", 400),
    CASE("cl negative", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1"
         "\r\n\r\n", 400),
    CASE("cl plus", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n"
         "\r\nabc", 400),
    CASE("cl hex", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0x3\r\n"
         "\r\nabc", 400),
    CASE("cl exponent", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1e1"
         "\r\n\r\n", 400),
    CASE("cl empty", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length:\r\n\r\n",
         400),
    CASE("cl 20 digits", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: "
         "00000000000000000003\r\n\r\nabc", 400),
    CASE("chunk size not hex",
         "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
         "zz\r\n", 400),
    CASE("chunk size space first",
         "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
         " 3\r\nabc\r\n0\r\n\r\n", 400),
    /* limits: 414, 431, 413 */
    CASE("url too long", "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    CASE("header too large", "GET / HTTP/1.1\r\nHost: t\r\nX: "
         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
         "\r\n\r\n", 431),
    CASE("body too large", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: "
         "1000\r\n\r\n", 413),
    CASE("chunked too large",
         "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
         "200\r\n", 413),
    CASE("chunk size overflow",
         "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
         "ffffffffffffffffffffffff\r\n", 413),
    /* controls: well-formed requests that must get 200 (or 404) */
    CASE("ok get", "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close"
         "\r\n\r\n", 200),
    CASE("ok http/1.0", "GET /healthz HTTP/1.0\r\n\r\n", 200),
    CASE("ok head", "HEAD /healthz HTTP/1.1\r\nHost: t\r\nConnection: close"
         "\r\n\r\n", 200),
    CASE("ok chunked", "POST /healthz HTTP/1.1\r\nHost: t\r\nConnection: "
         "close\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n"
         "Trailer: 1\r\n\r\n", 200),
    CASE("ok body at limit", "POST /healthz HTTP/1.1\r\nHost: t\r\n"
         "Connection: close\r\nContent-Length: 0\r\n\r\n", 200),
    CASE("ok absolute form", "GET http://t/healthz HTTP/1.1\r\nHost: t\r\n"
         "Connection: close\r\n\r\n", 200),
    CASE("ok no route", "GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close"
         "\r\n\r\n", 404),
    CASE("ok bad query", "GET /?reads=ten HTTP/1.1\r\nHost: t\r\n"
         "Connection: close\r\n\r\n", 400),
};

#define N_BAD ((int)(sizeof bad / sizeof bad[0]))

static void
matrix_setup(void)
{
    const char *args[] = { "-w", "1", "--limit-header-bytes", "512",
                           "--limit-url-bytes", "64", "--limit-body-bytes",
                           "256", NULL };

    matrix_worker = -1;
    if (ts_server_start(&M, base_args, args) == 0) {
        for (int i = 0; i < 100 && matrix_worker <= 0; i++) {
            matrix_worker = healthz_pid(M.port);
            if (matrix_worker <= 0)
                ts_sleep_ms(20);
        }
    }
}

static void
matrix_teardown(void)
{
    ts_server_kill(&M);
}

START_TEST(hardening_bad_request)
{
    const bad_t *b = &bad[_i];
    static char buf[65536];
    size_t n;
    int fd, st, nresp;

    ck_assert_msg(M.pid > 0 && matrix_worker > 0,
                  "the matrix server did not start");
    fd = connect_port(M.port, 0);
    ts_send_all(fd, b->req, b->len ? b->len : strlen(b->req));
    n = read_all(fd, buf, sizeof buf, 5000);
    ts_close(fd);
    st = status_of(buf);
    nresp = count_responses(buf, n);
    ck_assert_msg(st == b->status, "%s: status %d, want %d: '%.200s'",
                  b->name, st, b->status, buf);
    ck_assert_msg(nresp == 1, "%s: %d responses (smuggled request "
                  "answered?): '%.400s'", b->name, nresp, buf);
    if (b->status >= 400 && b->status != 404 && strstr(b->name, "ok ")
                                                 != b->name)
        ck_assert_msg(strstr(buf, "Connection: close") != NULL,
                      "%s: error response without Connection: close",
                      b->name);
    expect_alive(&M, matrix_worker, b->name);
}
END_TEST

/* ---- connections ------------------------------------------------------ */

static void
setup(void)
{
    ck_assert_int_eq(ts_tmpdir(tmpdir, sizeof tmpdir, "hard"), 0);
}

static void
teardown(void)
{
    ts_server_kill(&S);
    ts_rmdir(tmpdir);
}

static pid_t
only_worker(void)
{
    pid_t w[16];

    for (int i = 0; i < 200; i++) {
        if (ts_workers(&S, w, 16) == 1 && healthz_pid(S.port) == w[0])
            return w[0];
        ts_sleep_ms(25);
    }
    ck_abort_msg("no single worker");
    return -1;
}

/* 20 requests in one write come back as 20 responses, in order; an error
 * in the middle of a pipeline ends it there. */
START_TEST(hardening_pipelined)
{
    const char *args[] = { "-w", "1", NULL };
    static char req[8192], out[1 << 18];
    const char *one = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    size_t n = 0;
    pid_t w;
    int fd;

    start(args);
    w = only_worker();
    for (int i = 0; i < 20; i++)
        n += (size_t)sprintf(req + n, "%s", one);
    n += (size_t)sprintf(req + n, "POST /healthz HTTP/1.1\r\nHost: t\r\n"
                         "Content-Length: 5\r\n\r\nhelloGET /static HTTP/1.1"
                         "\r\nHost: t\r\n\r\n");
    fd = connect_port(S.port, 0);
    ts_send_all(fd, req, n);
    for (int i = 0; i < 22; i++)
        ck_assert_int_eq(ts_read_response(fd, NULL, 0), 200);
    /* good, bad, good: two responses, then the close */
    n = (size_t)sprintf(req, "%sGET / HTTP/1.1\r\nHost: t\r\nContent-Length:"
                        " 1\r\nContent-Length: 2\r\n\r\nxx%s", one, one);
    ts_send_all(fd, req, n);
    ck_assert_int_eq(ts_read_response(fd, NULL, 0), 200);
    ck_assert_int_eq(ts_read_response(fd, NULL, 0), 400);
    n = read_all(fd, out, sizeof out, 3000);
    ck_assert_msg(n == 0 && ts_pending(fd) == 0, "bytes after the 400: %.200s",
                  out);
    ts_close(fd);
    expect_alive(&S, w, "pipelining");
}
END_TEST

/* Clients that go away in every part of a request. */
START_TEST(hardening_client_closes_mid_request)
{
    const char *args[] = { "-w", "1", NULL };
    static const char *halves[] = {
        "G",
        "GET /heal",
        "GET /healthz HTTP/1.1\r\nHo",
        "GET /healthz HTTP/1.1\r\nHost: t\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123",
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "10\r\n0123",
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\nTrailer: x",
        "POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
        "Content-Length: 10\r\n\r\n",
    };
    pid_t w;

    start(args);
    w = only_worker();
    for (size_t i = 0; i < sizeof halves / sizeof halves[0]; i++) {
        for (int rst = 0; rst < 2; rst++) {
            int fd = connect_port(S.port, 0);

            ts_send_all(fd, halves[i], strlen(halves[i]));
            ts_sleep_ms(20);
            if (rst) {          /* close with RST instead of FIN */
                struct linger lg = { 1, 0 };

                setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            }
            ts_close(fd);
        }
    }
    /* and one that closes right after a full request, unread */
    for (int i = 0; i < 20; i++) {
        int fd = connect_port(S.port, 0);

        ts_send_str(fd, "GET /api/items HTTP/1.1\r\nHost: t\r\n\r\n");
        ts_close(fd);
    }
    expect_alive(&S, w, "clients closing mid-request");
}
END_TEST

/*
 * A client that pipelines requests for big responses and never reads:
 * the worker stops reading it once 256 KiB are queued, keeps serving
 * others promptly, and its memory stays bounded.
 */
START_TEST(hardening_client_never_reads)
{
    const char *args[] = { "-w", "1", NULL };
    const char *big = "GET /?response_items=2000 HTTP/1.1\r\nHost: t\r\n\r\n";
    char path[64], line[256];
    long rss_kb = -1;
    double t0, dt;
    pid_t w;
    int slow;
    FILE *f;

    start(args);
    w = only_worker();
    slow = connect_port(S.port, 4096);
    for (int i = 0; i < 40; i++)
        ts_send_all(slow, big, strlen(big));
    ts_sleep_ms(500);
    t0 = ts_now_ms();
    ck_assert_int_eq(healthz_pid(S.port), w);
    dt = ts_now_ms() - t0;
    /* served at all (a worker stuck on the slow client would never
     * answer): how fast is the machine's business, not the test's */
    printf("hardening: another client waited %.0f ms\n", dt);
    snprintf(path, sizeof path, "/proc/%d/status", (int)w);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &rss_kb) == 1)
            break;
    fclose(f);
    ck_assert_msg(rss_kb > 0 && rss_kb < 256 * 1024,
                  "worker RSS %ld kB with a non-reading client", rss_kb);
    ts_close(slow);
    expect_alive(&S, w, "a client that never reads");
}
END_TEST

/*
 * Regression (fuzz_http): once a connection had paused reading for write
 * back-pressure, reads never resumed (uv_read_start with NULL callbacks
 * fails with UV_EINVAL): a request sent after the pause was never
 * answered and the connection died at the keep-alive timeout.
 */
START_TEST(hardening_reads_resume_after_backpressure)
{
    const char *args[] = { "-w", "1", NULL };
    const char *big = "GET /?response_items=2000 HTTP/1.1\r\nHost: t\r\n\r\n";
    static char req[100 * 64];
    char body[256];
    size_t n = 0;
    pid_t w;
    int fd, i, st = 0;

    start(args);
    w = only_worker();
    for (i = 0; i < 100; i++)
        n += (size_t)sprintf(req + n, "%s", big);
    fd = connect_port(S.port, 0);
    ts_send_all(fd, req, n);               /* ~9 MB of responses, unread */
    ts_sleep_ms(1500);                     /* the worker pauses reading */
    ts_send_str(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    ts_sleep_ms(300);
    for (i = 0; i < 100; i++) {
        st = ts_read_response(fd, NULL, 0);
        if (st != 200)
            break;
    }
    ck_assert_msg(i == 100, "response %d: status %d", i, st);
    ck_assert_int_eq(ts_read_response(fd, body, sizeof body), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"ok\""));
    ts_close(fd);
    expect_alive(&S, w, "back-pressure");
}
END_TEST

/* Slowloris: the whole head must arrive within --header-timeout-ms,
 * however steadily it trickles: 408, then the close. */
START_TEST(hardening_slowloris_408)
{
    const char *args[] = { "-w", "1", "--header-timeout-ms", "1000", NULL };
    char buf[4096];
    double t0, dt;
    size_t n = 0;
    pid_t w;
    int fd, i;

    start(args);
    w = only_worker();
    fd = connect_port(S.port, 0);
    t0 = ts_now_ms();
    ts_send_str(fd, "GET / HTTP/1.1\r\n");
    for (i = 0; i < 20; i++) {          /* a header byte every 200 ms */
        struct pollfd p = { fd, POLLIN, 0 };

        if (poll(&p, 1, 200) == 1)
            break;
        ts_send_str(fd, "X");
    }
    n = read_all(fd, buf, sizeof buf, 3000);
    dt = ts_now_ms() - t0;
    ck_assert_msg(status_of(buf) == 408, "got '%.200s'", buf);
    ck_assert_msg(dt >= 900 && dt < 60000, "408 after %.0f ms", dt);
    ck_assert_int_eq(count_responses(buf, n), 1);
    ts_close(fd);
    expect_alive(&S, w, "slowloris");
}
END_TEST

/* A connection that sends nothing is closed at the keep-alive timeout;
 * so is one idle after a response. */
START_TEST(hardening_idle_closed)
{
    const char *args[] = { "-w", "1", "--keepalive-timeout-ms", "500", NULL };
    char buf[256];
    double t0, dt;
    int fd;

    start(args);
    only_worker();
    fd = connect_port(S.port, 0);
    t0 = ts_now_ms();
    ck_assert_uint_eq(read_all(fd, buf, sizeof buf, 5000), 0);
    dt = ts_now_ms() - t0;
    ck_assert_msg(dt >= 400 && dt < 60000, "closed after %.0f ms", dt);
    ts_close(fd);
    fd = connect_port(S.port, 0);
    ts_send_str(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(ts_read_response(fd, NULL, 0), 200);
    t0 = ts_now_ms();
    ck_assert_uint_eq(read_all(fd, buf, sizeof buf, 5000), 0);
    dt = ts_now_ms() - t0;
    ck_assert_msg(dt >= 400 && dt < 60000, "closed after %.0f ms", dt);
    ts_close(fd);
}
END_TEST

/*
 * Regression (SIGHUP reload under load lost requests): the old worker
 * closed its idle keep-alive connections at once, so a request a client
 * had just sent on one met a closed socket.  Now an idle connection gets
 * up to 1 s for one more request, answered with "Connection: close".
 */
START_TEST(hardening_reload_answers_idle_connection)
{
    const char *args[] = { "-w", "1", NULL };
    const char *req = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    char body[256], buf[256];
    const char *p;
    pid_t w;
    int fd;

    start(args);
    w = only_worker();
    fd = connect_port(S.port, 0);
    ts_send_str(fd, req);
    ck_assert_int_eq(ts_read_response(fd, body, sizeof body), 200);
    kill(S.pid, SIGHUP);                /* the worker is told to stop */
    ts_sleep_ms(250);
    ts_send_str(fd, req);                  /* on the now idle connection */
    ck_assert_int_eq(ts_read_response(fd, body, sizeof body), 200);
    p = strstr(body, "\"pid\":");
    ck_assert_msg(p != NULL && atoi(p + 6) == w, "answered by %s", body);
    ck_assert_uint_eq(read_all(fd, buf, sizeof buf, 3000), 0);  /* closed */
    ts_close(fd);
    ck_assert_msg(healthz_pid(S.port) > 0, "no worker after the reload");
}
END_TEST

/* ---- faults -------------------------------------------------------------- */

/* --timeout 1: a worker stuck 3 s in /sleep is killed (its client sees
 * the connection end, no 200) and a new worker answers. */
START_TEST(hardening_request_timeout_kills_worker)
{
    const char *args[] = { "-w", "1", "--timeout", "1", NULL };
    char buf[4096];
    double t0, dt;
    pid_t w, w2 = -1;
    int fd;

    start(args);
    w = only_worker();
    fd = connect_port(S.port, 0);
    t0 = ts_now_ms();
    ts_send_str(fd, "GET /sleep?ms=3000 HTTP/1.1\r\nHost: t\r\n\r\n");
    read_all(fd, buf, sizeof buf, 6000);
    dt = ts_now_ms() - t0;
    ts_close(fd);
    ck_assert_msg(status_of(buf) != 200, "the stuck request completed");
    ck_assert_msg(dt >= 900 && dt < 60000, "connection ended after %.0f ms",
                  dt);
    for (int i = 0; i < 200 && (w2 <= 0 || w2 == w); i++) {
        w2 = healthz_pid(S.port);
        if (w2 <= 0 || w2 == w)
            ts_sleep_ms(25);
    }
    ck_assert_msg(w2 > 0 && w2 != w, "no new worker (%d, was %d)", (int)w2,
                  (int)w);
    ck_assert_int_eq(kill(S.pid, 0), 0);        /* the master lives */
    ck_assert_int_eq(waitpid(S.pid, NULL, WNOHANG), 0);
}
END_TEST

/* 1 once pid has exited (no such process, or a zombie). */
static int
gone(pid_t pid)
{
    char path[64], buf[256], *rp;
    FILE *f;
    size_t k;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return 1;
    k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = '\0';
    rp = strrchr(buf, ')');
    return rp != NULL && (rp[2] == 'Z' || rp[2] == 'X');
}

/* SIGKILL of workers while a client keeps sending: the master respawns
 * every one, and requests on live workers keep succeeding. */
START_TEST(hardening_kill_workers_under_requests)
{
    const char *args[] = { "-w", "2", NULL };
    pid_t w[16];
    int ok = 0, failed = 0, n;

    start(args);
    for (int i = 0; i < 200 && ts_workers(&S, w, 16) != 2; i++)
        ts_sleep_ms(25);
    for (int round = 0; round < 5; round++) {
        n = ts_workers(&S, w, 16);
        ck_assert_int_eq(n, 2);
        kill(w[round % 2], SIGKILL);
        /* wait until it is gone: one that is still dying may accept */
        for (int i = 0; i < 200 && gone(w[round % 2]) == 0; i++)
            ts_sleep_ms(5);
        for (int i = 0; i < 20; i++) {
            if (ts_get(S.port, "/static", NULL, 0) == 200)
                ok++;
            else
                failed++;
        }
        for (int i = 0; i < 200 && ts_workers(&S, w, 16) != 2; i++)
            ts_sleep_ms(10);
    }
    /* a new connection never meets a dead worker: the kernel's accept
     * queue is shared, so at most the in-flight ones fail */
    ck_assert_msg(failed == 0, "%d of %d requests failed", failed,
                  ok + failed);
    ck_assert_int_eq(ts_workers(&S, w, 16), 2);
    ck_assert_int_eq(waitpid(S.pid, NULL, WNOHANG), 0);
}
END_TEST

/* An --out that cannot be written is an error at start: exit 2, saying
 * --out, before any worker runs. */
START_TEST(hardening_unwritable_out_exits_2)
{
    char file[128], out[4096], sub[256];
    const char *a1[] = { "-q", "--port", "0", "--out",
                         "/proc/cowlab-hardening/run", NULL };
    const char *a2[] = { "-q", "--port", "0", "--out", sub, NULL };
    const char *a3[] = { "-q", "--port", "0", "--out", file, NULL };
    FILE *f;

    ck_assert_int_eq(ts_run(a1, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "--out") != NULL, "%s", out);
    snprintf(file, sizeof file, "%s/a-file", tmpdir);
    f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(sub, sizeof sub, "%s/run", file);  /* under a regular file */
    ck_assert_int_eq(ts_run(a2, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "--out") && strstr(out, "Not a directory"),
                  "%s", out);
    ck_assert_int_eq(ts_run(a3, out, sizeof out), 2);   /* a file */
    ck_assert_msg(strstr(out, "--out") != NULL, "%s", out);
}
END_TEST

/* ---- configuration ---------------------------------------------------- */

typedef struct badcfg {
    const char *file;           /* config file text; NULL: args only */
    const char *args[6];        /* "@" stands for the config file's path */
    const char *want[3];        /* substrings of the message */
} badcfg_t;

static const badcfg_t badcfg[] = {
    { NULL, { "-c", "/nonexistent/cowlab.json" },
      { "/nonexistent/cowlab.json", "No such file" } },
    { "", { "-c", "@" }, { ".json", "empty config file" } },
    { "  \n\t\n", { "-c", "@" }, { "empty config file" } },
    { "{\"workers\": ", { "-c", "@" }, { ":1:12:", "invalid JSON" } },
    { "{\"workers\": 2,}", { "-c", "@" }, { ":1:", "invalid JSON" } },
    { "[4]", { "-c", "@" }, { ":1:1:", "expected a JSON object" } },
    { "{\n  \"workers\": \"many\"\n}", { "-c", "@" },
      { ":2:14:", "field 'workers'", "found the string \"many\"" } },
    { "{\"port\": 1.5}", { "-c", "@" }, { "field 'port'", "found 1.5" } },
    { "{\"freeze\": 1}", { "-c", "@" }, { "field 'freeze'", "true or false" } },
    { "{\"gc_threshold\": [1, 2]}", { "-c", "@" },
      { "field 'gc_threshold'", "three integers" } },
    { "{\"gc_threshold\": [1, 2, -3]}", { "-c", "@" },
      { "field 'gc_threshold[2]'", "found -3" } },
    { "{\"workers\": 0}", { "-c", "@" },
      { "field 'workers'", "from 1 to 256", "found 0" } },
    { "{\"scale\": 1e9}", { "-c", "@" }, { "field 'scale'", "<= 1000" } },
    { "{\"limit_header_bytes\": 10}", { "-c", "@" },
      { "field 'limit_header_bytes'", "from 256" } },
    { "{\"exit\": \"never\"}", { "-c", "@" }, { "field 'exit'", "skip" } },
    { "{\"wokers\": 2}", { "-c", "@" },
      { ":1:2:", "field 'wokers'", "did you mean 'workers'" } },
    { "{\"zzz_totally_unknown\": 2}", { "-c", "@" },
      { "field 'zzz_totally_unknown'", "unknown key" } },
    { "{\"workers\": 2, \"workers\": 3}", { "-c", "@" },
      { "duplicate object key" } },
    { "{\"out\": \"a\\nb\\u001b[31m\", \"workers\": \"\\u001b[2J\"}",
      { "-c", "@" }, { "field 'workers'", "\\x1b[2J" } },
    { NULL, { "--workers", "abc" }, { "--workers", "got 'abc'" } },
    { NULL, { "--workers", "0" }, { "--workers", "from 1 to 256" } },
    { NULL, { "--port", "70000" }, { "--port", "0 to 65535" } },
    { NULL, { "--gc", "maybe" }, { "--gc", "on or off" } },
    { NULL, { "--gc-threshold", "1,2" }, { "--gc-threshold" } },
    { NULL, { "--exit", "never" }, { "--exit", "finalize or skip" } },
    { NULL, { "--scale", "0" }, { "--scale", "> 0" } },
    { NULL, { "--scale", "nan" }, { "--scale" } },
    { NULL, { "--timeout", "-1" }, { "--timeout" } },
    { NULL, { "--limit-body-bytes", "-5" }, { "--limit-body-bytes" } },
    { NULL, { "--header-timeout-ms", "0" }, { "--header-timeout-ms" } },
    { NULL, { "--wokers", "2" }, { "did you mean '--workers'" } },
    { NULL, { "--workers" }, { "--workers", "missing value" } },
    { NULL, { "extra" }, { "unexpected argument 'extra'" } },
    { NULL, { "--freeze=yes" }, { "--freeze", "takes no value" } },
    { NULL, { "-x" }, { "unknown option '-x'" } },
    { NULL, { "--host", "bad/host" }, { "--host" } },
    { NULL, { "--run-id", "../x" }, { "--run-id" } },
    { NULL, { "--out", "\xff\xfe" }, { "--out", "UTF-8" } },
    { NULL, { "--workload", "/nonexistent/w.json" },
      { "/nonexistent/w.json", "No such file" } },
    { "{\"heap\": {}, \"routes\": [{\"path\": \"x\"}]}", { "--workload", "@" },
      { "field 'routes[0].path'" } },
};

START_TEST(hardening_bad_config_exits_2)
{
    const badcfg_t *b = &badcfg[_i];
    const char *args[8];
    char path[128], out[4096];
    int n = 0, st;

    snprintf(path, sizeof path, "%s/cfg-%d.json", tmpdir, _i);
    if (b->file != NULL) {
        FILE *f = fopen(path, "w");

        ck_assert_ptr_nonnull(f);
        fputs(b->file, f);
        fclose(f);
    }
    for (int i = 0; i < 6 && b->args[i] != NULL; i++)
        args[n++] = strcmp(b->args[i], "@") == 0 ? path : b->args[i];
    args[n] = NULL;
    st = ts_run(args, out, sizeof out);
    ck_assert_msg(st == 2, "case %d (%s): exit %d: %s", _i, b->args[0], st,
                  out);
    ck_assert_msg(strncmp(out, "cowlab: ", 8) == 0, "case %d: %s", _i, out);
    for (int i = 0; i < 3 && b->want[i] != NULL; i++)
        ck_assert_msg(strstr(out, b->want[i]) != NULL,
                      "case %d: no '%s' in: %s", _i, b->want[i], out);
    /* one line of message (and the --help hint) */
    ck_assert_msg(strchr(out, '\x1b') == NULL, "case %d: raw escape: %s",
                  _i, out);
}
END_TEST

/* ---- chaos ------------------------------------------------------------ */

/* scripts/chaos.sh 5: kills under wrk load, then a SIGHUP reload under
 * load with zero failed requests.  Skipped (and said so) without wrk or
 * the script. */
START_TEST(hardening_chaos_short)
{
    char cmd[512];
    const char *root = getenv("COWLAB_ROOT");
    int st;

    if (system("command -v wrk >/dev/null 2>&1") != 0)
        TS_SKIP("wrk is not installed (apt-get install wrk)");
    if (root == NULL)
        root = ".";
    snprintf(cmd, sizeof cmd, "test -x %s/scripts/chaos.sh", root);
    if (system(cmd) != 0)
        TS_SKIP("no %s/scripts/chaos.sh (run from the repository root)",
                root);
    snprintf(cmd, sizeof cmd, "COWLAB_BIN=%s %s/scripts/chaos.sh 5 "
             "> %s/chaos.log 2>&1", ts_bin(), root, tmpdir);
    st = system(cmd);
    if (st != 0) {
        snprintf(cmd, sizeof cmd, "cat %s/chaos.log >&2", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
    }
    ck_assert_msg(st == 0, "scripts/chaos.sh 5 failed (status %d)", st);
}
END_TEST

/* ---- a full disk, keep-alive off -------------------------------------- */

/* A full disk at start (samples.csv on /dev/full): exit 2 naming --out,
 * not a run that silently writes nothing. */
START_TEST(hardening_disk_full_out_exits_2)
{
    char dir[128], link[160], out[4096];
    const char *args[] = { "-q", "--port", "0", "--duration", "2", "--out",
                           dir, NULL };

    snprintf(dir, sizeof dir, "%s/full", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(link, sizeof link, "%s/samples.csv", dir);
    ck_assert_int_eq(symlink("/dev/full", link), 0);
    ck_assert_int_eq(ts_run(args, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "--out") && strstr(out, "No space"), "%s",
                  out);
}
END_TEST

/*
 * --keepalive-timeout-ms 0 means "close after each response" (--help): of
 * two pipelined requests only the first is answered, with "Connection:
 * close", and the server closes the connection (EOF, not a timeout).
 */
START_TEST(hardening_keepalive_off_closes)
{
    const char *args[] = { "-w", "1", "--keepalive-timeout-ms", "0", NULL };
    char buf[4096];
    size_t n;
    int fd;

    start(args);
    only_worker();
    fd = connect_port(S.port, 0);
    ts_send_str(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    n = read_all(fd, buf, sizeof buf, 10000);   /* returns at EOF */
    ck_assert_int_eq(status_of(buf), 200);
    ck_assert_msg(strstr(buf + 1, "HTTP/1.1 ") == NULL,  /* after a body */
                  "second response on a closing connection: %.*s", (int)n,
                  buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\nConnection: close\r\n"));
    ck_assert_msg(recv(fd, buf, sizeof buf, MSG_DONTWAIT) == 0,
                  "the server did not close the connection");
    ts_close(fd);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("hardening");
    TCase *tm = tcase_create("matrix");
    TCase *tc = tcase_create("conn");
    TCase *tf = tcase_create("faults");
    TCase *tg = tcase_create("config");
    TCase *tx = tcase_create("chaos");

    signal(SIGPIPE, SIG_IGN);

    tcase_add_unchecked_fixture(tm, matrix_setup, matrix_teardown);
    tcase_set_timeout(tm, 30);
    tcase_add_loop_test(tm, hardening_bad_request, 0, N_BAD);
    suite_add_tcase(s, tm);

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, hardening_pipelined);
    tcase_add_test(tc, hardening_client_closes_mid_request);
    tcase_add_test(tc, hardening_client_never_reads);
    tcase_add_test(tc, hardening_reads_resume_after_backpressure);
    tcase_add_test(tc, hardening_slowloris_408);
    tcase_add_test(tc, hardening_idle_closed);
    tcase_add_test(tc, hardening_reload_answers_idle_connection);
    tcase_add_test(tc, hardening_keepalive_off_closes);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(tf, setup, teardown);
    tcase_set_timeout(tf, 60);
    tcase_add_test(tf, hardening_request_timeout_kills_worker);
    tcase_add_test(tf, hardening_kill_workers_under_requests);
    tcase_add_test(tf, hardening_unwritable_out_exits_2);
    tcase_add_test(tf, hardening_disk_full_out_exits_2);
    suite_add_tcase(s, tf);

    tcase_add_checked_fixture(tg, setup, teardown);
    tcase_set_timeout(tg, 30);
    tcase_add_loop_test(tg, hardening_bad_config_exits_2, 0,
                        (int)(sizeof badcfg / sizeof badcfg[0]));
    suite_add_tcase(s, tg);

    tcase_add_checked_fixture(tx, setup, teardown);
    tcase_set_timeout(tx, 120);
    tcase_add_test(tx, hardening_chaos_short);
    suite_add_tcase(s, tx);


    return ts_run_suite(s);
}
