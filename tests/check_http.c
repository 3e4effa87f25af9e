/*
 * check_http.c -- tests for server/http.c, http_parse.c and listen.c:
 * keep-alive (and keep-alive 0: close after each response), pipelining,
 * request framing and smuggling patterns (400), limits (413/414/431, and
 * what 0 means for each), timeouts (408, keep-alive, stalled writes),
 * connection limit, connections that fail to get memory (fault
 * injection: srv_http_fail_next_conns), graceful stop.
 * Each test forks a server child on a 127.0.0.1 port-0 socket; the parent
 * speaks raw HTTP over blocking sockets with timeouts and asserts exact
 * status lines.  The child runs srv_http_stop() on SIGTERM and exits 0 only
 * if the loop closed cleanly (and, under ASan, LeakSanitizer found nothing).
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "clock.h"
#include "http.h"
#include "support.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() __lsan_do_leak_check()
#else
#define LEAK_CHECK() ((void)0)
#endif

#define IO_TIMEOUT_MS   5000            /* any single client recv/send */

static pid_t srv_pid = -1;              /* the server child, or -1 */
static int srv_port;

/* ------------------------------------------------------------------ */
/* Server child                                                        */

static srv_http_t *child_h;

/* Append s[0..n) to out as a JSON string body (no quotes). */
static size_t
json_escape(char *out, const char *s, size_t n)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            o += (size_t)sprintf(out + o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    return o;
}

/*
 * /counters  the server's counters as JSON
 * /fail?n=N  the next N new connections fail to get memory
 * /sleep?ms=N  block the loop N ms (connections queue up meanwhile)
 * /big?n=N   N bytes of 'x'
 * /close     echo, and ask for the connection to be closed
 * anything   {"method":..,"path":..,"query":..,"body_len":..,"body":..}
 */
static void
handler(void *ctx, const srv_request_t *req, srv_response_t *resp)
{
    srv_http_t *h = *(srv_http_t *const *)ctx;
    size_t cap, n;
    char *out;

    if (strcmp(req->path, "/counters") == 0) {
        const srv_http_counters_t *k = srv_http_counters(h);

        out = malloc(512);
        n = (size_t)snprintf(out, 512,
            "{\"requests\":%llu,\"4xx\":%llu,\"5xx\":%llu,"
            "\"connections\":%llu,\"rejected\":%llu,\"timeouts\":%llu,"
            "\"active\":%zu}",
            (unsigned long long)k->requests,
            (unsigned long long)k->responses_4xx,
            (unsigned long long)k->responses_5xx,
            (unsigned long long)k->connections,
            (unsigned long long)k->conn_rejected,
            (unsigned long long)k->timeouts,
            srv_http_active_connections(h));
    } else if (strcmp(req->path, "/fail") == 0) {
        /* the next n new connections fail to get memory */
        srv_http_fail_next_conns(h, (unsigned)strtoul(req->query + 2, NULL,
                                                      10));
        out = strdup("{}");
        n = 2;
    } else if (strcmp(req->path, "/sleep") == 0) {
        usleep(1000 * (useconds_t)strtoul(req->query + 3, NULL, 10));
        out = strdup("{}");
        n = 2;
    } else if (strcmp(req->path, "/big") == 0) {
        n = strncmp(req->query, "n=", 2) == 0
            ? strtoul(req->query + 2, NULL, 10) : 0;
        out = malloc(n + 1);
        memset(out, 'x', n);
        resp->content_type = "text/plain";
    } else {
        cap = 128 + 6 * (strlen(req->method) + strlen(req->path)
                         + strlen(req->query) + req->body_len);
        out = malloc(cap);
        n = (size_t)sprintf(out, "{\"method\":\"%s\",\"path\":\"",
                            req->method);
        n += json_escape(out + n, req->path, strlen(req->path));
        n += (size_t)sprintf(out + n, "\",\"query\":\"");
        n += json_escape(out + n, req->query, strlen(req->query));
        n += (size_t)sprintf(out + n, "\",\"body_len\":%zu,\"body\":\"",
                             req->body_len);
        n += json_escape(out + n, req->body, req->body_len);
        n += (size_t)sprintf(out + n, "\"}");
        if (strcmp(req->path, "/close") == 0)
            resp->close = 1;
    }
    resp->body = out;
    resp->body_len = n;
}

static void
on_stopped(void *arg)
{
    (void)arg;
}

static void
on_sigterm(uv_signal_t *sig, int signum)
{
    (void)signum;
    srv_http_stop(child_h, on_stopped, NULL);
    uv_close((uv_handle_t *)sig, NULL);
}

/* The child: serve until SIGTERM, then exit 0 if everything was freed. */
_Noreturn static void
run_server(int fd, const srv_http_limits_t *lim, pid_t parent)
{
    uv_loop_t loop;
    uv_signal_t sig;
    sigset_t set;
    int rc;

    prctl(PR_SET_PDEATHSIG, SIGKILL);   /* a failed test must not orphan us */
    if (getppid() != parent)
        _exit(3);
    if (uv_loop_init(&loop) != 0)
        _exit(4);
    if (srv_http_start(&loop, fd, lim, handler, &child_h, &child_h) < 0)
        _exit(5);
    close(fd);
    uv_signal_init(&loop, &sig);
    uv_signal_start(&sig, on_sigterm, SIGTERM);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&loop);
    srv_http_free(child_h);
    if (rc != 0)
        _exit(6);
    LEAK_CHECK();
    _exit(0);
}

/* Fork a server with these limits (NULL: defaults). */
static void
server_start(const srv_http_limits_t *lim)
{
    sigset_t set, old;
    pid_t parent = getpid(), pid;
    int port = -1;
    int fd = srv_listen_tcp("127.0.0.1", 0, 128, &port);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_gt(port, 0);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, &old); /* until the child's loop has it */
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        run_server(fd, lim, parent);
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(fd);
    srv_pid = pid;
    srv_port = port;
}

static void
limits(srv_http_limits_t *l)
{
    srv_http_limits_default(l);
}

/* SIGTERM the server and check it stopped gracefully and cleanly. */
static void
server_stop_ok(void)
{
    pid_t r = 0;
    int st = 0, i;

    ck_assert_int_eq(kill(srv_pid, SIGTERM), 0);
    for (i = 0; i < 1000; i++) {
        r = waitpid(srv_pid, &st, WNOHANG);
        if (r == srv_pid)
            break;
        usleep(5000);
    }
    ck_assert_msg(r == srv_pid, "server did not stop within 5 s");
    srv_pid = -1;
    ck_assert_msg(WIFEXITED(st), "server died by signal %d",
                  WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    ck_assert_int_eq(WEXITSTATUS(st), 0);
}

static void
setup(void)
{
    srv_pid = -1;
    signal(SIGPIPE, SIG_IGN);
}

static void
teardown(void)
{
    if (srv_pid > 0) {
        kill(srv_pid, SIGKILL);
        waitpid(srv_pid, NULL, 0);
        srv_pid = -1;
    }
}

/* ------------------------------------------------------------------ */
/* Client                                                              */

typedef struct cli {
    int fd;
    size_t len;                 /* bytes buffered, not yet parsed */
    char buf[1 << 16];
} cli_t;

typedef struct resp {
    int status;
    char line[128];             /* status line without CRLF */
    char head[4096];
    char body[1 << 15];
    size_t body_len;
    long content_length;        /* -1: none */
    int conn_close;
} resp_t;

static int
raw_connect(int rcvbuf)
{
    struct sockaddr_in sa;
    struct timeval tv = { IO_TIMEOUT_MS / 1000, 0 };
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)srv_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
                  "connect: %s", strerror(errno));
    return fd;
}

static cli_t *
cli_open(void)
{
    cli_t *c = calloc(1, sizeof(*c));

    ck_assert_ptr_nonnull(c);
    c->fd = raw_connect(0);
    return c;
}

static void
cli_close(cli_t *c)
{
    close(c->fd);
    free(c);
}

static void
cli_sendn(cli_t *c, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);

        ck_assert_msg(k > 0, "send: %s", strerror(errno));
        s += k;
        n -= (size_t)k;
    }
}

static void
cli_send(cli_t *c, const char *s)
{
    cli_sendn(c, s, strlen(s));
}

/*
 * Read one response; no_body for a HEAD.  Returns 0, -1 on EOF first, or
 * -2 on timeout or error.
 */
static int
read_response(cli_t *c, resp_t *r, int no_body)
{
    for (;;) {
        char *e = memmem(c->buf, c->len, "\r\n\r\n", 4);

        if (e != NULL) {
            size_t hl = (size_t)(e - c->buf) + 4, bl, ll;
            const char *cl;

            ck_assert_uint_lt(hl, sizeof(r->head));
            memcpy(r->head, c->buf, hl);
            r->head[hl] = '\0';
            ll = (size_t)(strstr(r->head, "\r\n") - r->head);
            ck_assert_uint_lt(ll, sizeof(r->line));
            memcpy(r->line, r->head, ll);
            r->line[ll] = '\0';
            r->status = 0;
            sscanf(r->line, "HTTP/1.1 %d", &r->status);
            cl = strstr(r->head, "\r\nContent-Length: ");
            r->content_length = cl ? strtol(cl + 18, NULL, 10) : -1;
            r->conn_close = strstr(r->head, "\r\nConnection: close\r\n")
                            != NULL;
            bl = (no_body || r->content_length < 0)
                 ? 0 : (size_t)r->content_length;
            ck_assert_uint_lt(bl, sizeof(r->body));
            while (c->len < hl + bl) {
                ssize_t k = recv(c->fd, c->buf + c->len,
                                 sizeof(c->buf) - c->len, 0);

                if (k <= 0)
                    return k == 0 ? -1 : -2;
                c->len += (size_t)k;
            }
            memcpy(r->body, c->buf + hl, bl);
            r->body[bl] = '\0';
            r->body_len = bl;
            memmove(c->buf, c->buf + hl + bl, c->len - hl - bl);
            c->len -= hl + bl;
            return 0;
        }
        if (c->len == sizeof(c->buf))
            return -2;
        {
            ssize_t k = recv(c->fd, c->buf + c->len,
                             sizeof(c->buf) - c->len, 0);

            if (k <= 0)
                return k == 0 ? -1 : -2;
            c->len += (size_t)k;
        }
    }
}

static resp_t *
expect_status(cli_t *c, const char *line)
{
    static resp_t r;
    int rc = read_response(c, &r, 0);

    ck_assert_msg(rc == 0, "no response (rc %d, %s) where '%s' was due",
                  rc, strerror(errno), line);
    ck_assert_str_eq(r.line, line);
    if (r.status >= 200)                /* not for 100 Continue */
        ck_assert_int_eq(r.content_length, (long)r.body_len);
    return &r;
}

/* The server closed the connection cleanly, with nothing more to read. */
static void
expect_eof(cli_t *c)
{
    ssize_t k;

    ck_assert_msg(c->len == 0, "unexpected bytes: %.*s", (int)c->len,
                  c->buf);
    k = recv(c->fd, c->buf, sizeof(c->buf), 0);
    ck_assert_msg(k == 0, "expected EOF, got %zd (%s)", k,
                  k < 0 ? strerror(errno) : "data");
}

/* One GET on a fresh connection: the server still answers. */
static void
expect_alive(void)
{
    cli_t *c = cli_open();
    resp_t *r;

    cli_send(c, "GET /alive HTTP/1.1\r\nHost: t\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert_ptr_nonnull(strstr(r->body, "\"path\":\"/alive\""));
    cli_close(c);
}

/* Value of "key":N in the server's /counters. */
static long
counter(const char *key)
{
    cli_t *c = cli_open();
    char pat[64];
    const char *p;
    resp_t *r;
    long v;

    cli_send(c, "GET /counters HTTP/1.1\r\nHost: t\r\n"
                "Connection: close\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 200 OK");
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    p = strstr(r->body, pat);
    ck_assert_msg(p != NULL, "no %s in %s", key, r->body);
    v = strtol(p + strlen(pat), NULL, 10);
    cli_close(c);
    return v;
}

/* Poll /counters until key == want (the counting connection included). */
static void
wait_counter(const char *key, long want)
{
    long v = -1;
    int i;

    for (i = 0; i < 300; i++) {
        v = counter(key);
        if (v == want)
            return;
        usleep(10000);
    }
    ck_abort_msg("counter %s is %ld, want %ld", key, v, want);
}

/* ------------------------------------------------------------------ */
/* Tests: basic exchange                                               */

START_TEST(http_get_ok)
{
    static const char want[] =
        "{\"method\":\"GET\",\"path\":\"/hello\",\"query\":\"x=1&y\","
        "\"body_len\":0,\"body\":\"\"}";
    cli_t *c;
    resp_t *r;

    server_start(NULL);
    c = cli_open();
    cli_send(c, "GET /hello?x=1&y HTTP/1.1\r\nHost: t\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert_int_eq(r->content_length, (long)strlen(want));
    ck_assert_str_eq(r->body, want);
    ck_assert_ptr_nonnull(strstr(r->head,
                                 "\r\nContent-Type: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(r->head, "\r\nDate: "));
    ck_assert(!r->conn_close);
    cli_close(c);
    server_stop_ok();
}
END_TEST

START_TEST(http_keep_alive)
{
    cli_t *c;
    resp_t *r;
    char req[64], path[32];
    int i;

    server_start(NULL);
    c = cli_open();
    for (i = 0; i < 3; i++) {
        snprintf(req, sizeof(req), "GET /k%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
        cli_send(c, req);
        r = expect_status(c, "HTTP/1.1 200 OK");
        snprintf(path, sizeof(path), "\"path\":\"/k%d\"", i);
        ck_assert_ptr_nonnull(strstr(r->body, path));
        ck_assert(!r->conn_close);
    }
    ck_assert_int_eq(counter("connections"), 2);    /* ours + counter's */
    cli_close(c);
    server_stop_ok();
}
END_TEST

START_TEST(http_pipelining)
{
    cli_t *c;
    resp_t *r;

    server_start(NULL);
    c = cli_open();
    cli_send(c, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /b HTTP/1.1\r\nHost: t\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert_ptr_nonnull(strstr(r->body, "\"path\":\"/a\""));
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert_ptr_nonnull(strstr(r->body, "\"path\":\"/b\""));
    /* Bodies and a chunked message between pipelined requests. */
    cli_send(c, "POST /p1 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n"
                "abc"
                "POST /p2 HTTP/1.1\r\nHost: t\r\n"
                "Transfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n"
                "GET /p3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert_ptr_nonnull(strstr(r->body, "\"path\":\"/p1\""));
    ck_assert_ptr_nonnull(strstr(r->body, "\"body\":\"abc\""));
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert_ptr_nonnull(strstr(r->body, "\"path\":\"/p2\""));
    ck_assert_ptr_nonnull(strstr(r->body, "\"body\":\"de\""));
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert_ptr_nonnull(strstr(r->body, "\"path\":\"/p3\""));
    ck_assert(r->conn_close);
    expect_eof(c);
    cli_close(c);
    server_stop_ok();
}
END_TEST

START_TEST(http_connection_close)
{
    cli_t *c;
    resp_t *r;

    server_start(NULL);
    c = cli_open();
    cli_send(c, "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert(r->conn_close);
    expect_eof(c);
    cli_close(c);
    /* The handler can ask for the close too. */
    c = cli_open();
    cli_send(c, "GET /close HTTP/1.1\r\nHost: t\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert(r->conn_close);
    expect_eof(c);
    cli_close(c);
    server_stop_ok();
}
END_TEST

START_TEST(http_http10)
{
    cli_t *c;
    resp_t *r;

    server_start(NULL);
    c = cli_open();
    cli_send(c, "GET /old HTTP/1.0\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert(r->conn_close);
    expect_eof(c);
    cli_close(c);
    c = cli_open();
    cli_send(c, "GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert(!r->conn_close);
    ck_assert_ptr_nonnull(strstr(r->head, "\r\nConnection: keep-alive\r\n"));
    cli_send(c, "GET /ka2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert_ptr_nonnull(strstr(r->body, "\"path\":\"/ka2\""));
    cli_close(c);
    server_stop_ok();
}
END_TEST

START_TEST(http_head_request)
{
    cli_t *c;
    resp_t r;

    server_start(NULL);
    c = cli_open();
    cli_send(c, "HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(read_response(c, &r, 1), 0);
    ck_assert_str_eq(r.line, "HTTP/1.1 200 OK");
    ck_assert_int_gt(r.content_length, 0);    /* the GET body's length */
    ck_assert_int_eq(read_response(c, &r, 0), 0);
    ck_assert_str_eq(r.line, "HTTP/1.1 200 OK");
    ck_assert_ptr_nonnull(strstr(r.body, "\"path\":\"/after\""));
    cli_close(c);
    server_stop_ok();
}
END_TEST

START_TEST(http_chunked_body)
{
    cli_t *c;
    resp_t *r;

    server_start(NULL);
    c = cli_open();
    cli_send(c, "POST /ch HTTP/1.1\r\nHost: t\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
                "5;ext=\"v\"\r\nhello\r\n"
                "7 ; e\r\n worl\r\n\r\n"
                "0\r\nX-Trailer: 1\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert_ptr_nonnull(strstr(r->body, "\"body_len\":12,"));
    ck_assert_ptr_nonnull(strstr(r->body,
                                 "\"body\":\"hello worl\\u000d\\u000a\""));
    cli_close(c);
    server_stop_ok();
}
END_TEST

/* The whole exchange sent one byte per write: incremental parsing. */
START_TEST(http_fragmented)
{
    static const char req[] =
        "POST /frag?q=1 HTTP/1.1\r\nHost: t\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n"
        "PUT /frag2 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nwxyz";
    cli_t *c;
    resp_t *r;
    size_t i;

    server_start(NULL);
    c = cli_open();
    for (i = 0; i < sizeof(req) - 1; i++) {
        cli_sendn(c, req + i, 1);
        usleep(300);
    }
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert_ptr_nonnull(strstr(r->body, "\"query\":\"q=1\""));
    ck_assert_ptr_nonnull(strstr(r->body, "\"body\":\"abcde\""));
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert_ptr_nonnull(strstr(r->body, "\"method\":\"PUT\""));
    ck_assert_ptr_nonnull(strstr(r->body, "\"body\":\"wxyz\""));
    cli_close(c);
    server_stop_ok();
}
END_TEST

START_TEST(http_expect_continue)
{
    cli_t *c;
    resp_t *r;

    server_start(NULL);
    c = cli_open();
    cli_send(c, "POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                "Expect: 100-continue\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 100 Continue");
    cli_send(c, "12345");
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert_ptr_nonnull(strstr(r->body, "\"body\":\"12345\""));
    cli_close(c);
    server_stop_ok();
}
END_TEST

/*
 * "Upgrade" must not make the server skip the body: http_parser would hand
 * the body bytes back as a second, smuggled request.
 */
START_TEST(http_upgrade_ignored)
{
    static const char smuggled[] = "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    char req[512];
    cli_t *c;
    resp_t *r;

    server_start(NULL);
    c = cli_open();
    snprintf(req, sizeof(req),
             "POST /up HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
             "Upgrade: websocket\r\nContent-Length: %zu\r\n\r\n%s"
             "GET /next HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
             strlen(smuggled), smuggled);
    cli_send(c, req);
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert_ptr_nonnull(strstr(r->body, "\"path\":\"/up\""));
    ck_assert_ptr_nonnull(strstr(r->body, "\"body_len\":35,"));
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert_ptr_nonnull(strstr(r->body, "\"path\":\"/next\""));
    expect_eof(c);
    cli_close(c);
    server_stop_ok();
}
END_TEST

/* ------------------------------------------------------------------ */
/* Tests: malformed requests                                           */

static const char *const malformed[] = {
    /* request line */
    "GARBAGE\r\n\r\n",
    "GET\r\n\r\n",
    "GET /\r\n\r\n",                                    /* HTTP/0.9 */
    "GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
    "GET / HTTP/1.1 \r\nHost: t\r\n\r\n",
    " GET / HTTP/1.1\r\nHost: t\r\n\r\n",
    "GET /a\tb HTTP/1.1\r\nHost: t\r\n\r\n",
    "GET /a\x7f HTTP/1.1\r\nHost: t\r\n\r\n",
    /* method */
    "FOO / HTTP/1.1\r\nHost: t\r\n\r\n",
    "get / HTTP/1.1\r\nHost: t\r\n\r\n",
    "G(T / HTTP/1.1\r\nHost: t\r\n\r\n",
    "CONNECT t:443 HTTP/1.1\r\nHost: t\r\n\r\n",
    /* version */
    "GET / HTTX/1.1\r\nHost: t\r\n\r\n",
    "GET / HTTP/1.x\r\nHost: t\r\n\r\n",
    "GET / HTTP/11\r\nHost: t\r\n\r\n",
    "GET / http/1.1\r\nHost: t\r\n\r\n",
    "GET / HTTP/1.1.1\r\nHost: t\r\n\r\n",
    /* bare CR, bare LF (CVE-2023-30589 and relatives) */
    "GET / HTTP/1.1\r\nHost: t\r\n\r\r\n",
    "GET / HTTP/1.1\r\nHost: t\rX-A: b\r\n\r\n",
    "GET / HTTP/1.1\rHost: t\r\n\r\n",
    "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
    "GET / HTTP/1.1\nHost: t\n\n",
    "GET / HTTP/1.1\r\nHost: t\n\r\n",
    "\rGET / HTTP/1.1\r\nHost: t\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\rabc\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\rX0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabcXX0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\n\r\r\n",
    "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\n0\r\n\r\n",
    /* Content-Length */
    "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
        "Content-Length: 3\r\n\r\nabc",
    "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
        "Content-Length: 4\r\n\r\nabcd",
    "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 3\r\n\r\nabc",
    "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -3\r\n\r\nabc",
    "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc",
    "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0x3\r\n\r\nabc",
    "POST / HTTP/1.1\r\nHost: t\r\nContent-Length:\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: t\r\n"
        "Content-Length: 99999999999999999999999\r\n\r\nabc",
    "POST / HTTP/1.1\r\nHost: t\r\nContent-Length : 3\r\n\r\nabc",
    /* Content-Length with Transfer-Encoding, odd Transfer-Encodings */
    "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
        "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        "Content-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n"
        "Content-Length: 3\r\n\r\nabc",
    "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n"
        "0\r\n\r\n",
    "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "zz\r\n",
    "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3 x\r\nabc\r\n0\r\n\r\n",
    /* header syntax */
    "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n",     /* obs-fold */
    "GET / HTTP/1.1\r\n Host: t\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x01z\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: t\r\nX A: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: t\r\n: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
};

#define N_MALFORMED ((int)(sizeof(malformed) / sizeof(malformed[0])))

START_TEST(http_malformed_400)
{
    const char *req = malformed[_i];
    cli_t *c;
    resp_t *r;

    server_start(NULL);
    c = cli_open();
    cli_sendn(c, req, strlen(req));
    r = expect_status(c, "HTTP/1.1 400 Bad Request");
    ck_assert_msg(r->conn_close, "case %d: no Connection: close", _i);
    ck_assert_ptr_nonnull(strstr(r->body, "{\"error\":\""));
    expect_eof(c);
    cli_close(c);
    expect_alive();
    ck_assert_int_eq(counter("requests"), 2);   /* alive + this count */
    server_stop_ok();
}
END_TEST

/* A NUL byte cannot sit in a string literal table entry. */
START_TEST(http_nul_byte_400)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\0b\r\n\r\n";
    cli_t *c;

    server_start(NULL);
    c = cli_open();
    cli_sendn(c, req, sizeof(req) - 1);
    expect_status(c, "HTTP/1.1 400 Bad Request");
    expect_eof(c);
    cli_close(c);
    expect_alive();
    server_stop_ok();
}
END_TEST

START_TEST(http_version_505)
{
    cli_t *c;
    resp_t *r;

    server_start(NULL);
    c = cli_open();
    cli_send(c, "GET / HTTP/2.0\r\nHost: t\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 505 HTTP Version Not Supported");
    ck_assert(r->conn_close);
    expect_eof(c);
    cli_close(c);
    expect_alive();
    server_stop_ok();
}
END_TEST

/* ------------------------------------------------------------------ */
/* Tests: limits                                                       */

START_TEST(http_header_too_large_431)
{
    srv_http_limits_t l;
    char req[1024];
    cli_t *c;
    resp_t *r;

    limits(&l);
    l.max_header_bytes = 256;
    server_start(&l);
    c = cli_open();                     /* just under the limit: fine */
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: t\r\nX-A: %0*d\r\n\r\n",
             256 - 34, 0);
    ck_assert_uint_eq(strlen(req), 256);
    cli_send(c, req);
    expect_status(c, "HTTP/1.1 200 OK");
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: t\r\nX-A: %0*d\r\n\r\n",
             256 - 33, 0);
    cli_send(c, req);
    r = expect_status(c, "HTTP/1.1 431 Request Header Fields Too Large");
    ck_assert(r->conn_close);
    expect_eof(c);
    cli_close(c);
    /* Many small headers, sent without the end: 431 before the end. */
    c = cli_open();
    cli_send(c, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 40; i++)
        cli_send(c, "X-Header: value\r\n");
    expect_status(c, "HTTP/1.1 431 Request Header Fields Too Large");
    cli_close(c);
    expect_alive();
    server_stop_ok();
}
END_TEST

START_TEST(http_url_too_long_414)
{
    srv_http_limits_t l;
    char req[512], path[200];
    cli_t *c;
    resp_t *r;

    limits(&l);
    l.max_url_bytes = 64;
    server_start(&l);
    memset(path, 'a', sizeof(path));
    path[0] = '/';
    c = cli_open();
    snprintf(req, sizeof(req), "GET %.*s HTTP/1.1\r\nHost: t\r\n\r\n", 64,
             path);
    cli_send(c, req);
    expect_status(c, "HTTP/1.1 200 OK");
    snprintf(req, sizeof(req), "GET %.*s HTTP/1.1\r\nHost: t\r\n\r\n", 65,
             path);
    cli_send(c, req);
    r = expect_status(c, "HTTP/1.1 414 URI Too Long");
    ck_assert(r->conn_close);
    expect_eof(c);
    cli_close(c);
    expect_alive();
    server_stop_ok();
}
END_TEST

START_TEST(http_body_too_large_413)
{
    srv_http_limits_t l;
    cli_t *c;
    resp_t *r;

    limits(&l);
    l.max_body_bytes = 16;
    server_start(&l);
    c = cli_open();
    cli_send(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 16\r\n\r\n"
                "0123456789abcdef");
    expect_status(c, "HTTP/1.1 200 OK");
    /* Refused on the header alone, before any body byte. */
    cli_send(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 413 Payload Too Large");
    ck_assert(r->conn_close);
    expect_eof(c);
    cli_close(c);
    /* Chunked: the chunk that crosses the limit. */
    c = cli_open();
    cli_send(c, "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                "\r\n8\r\n01234567\r\n8\r\n01234567\r\n9\r\n");
    r = expect_status(c, "HTTP/1.1 413 Payload Too Large");
    expect_eof(c);
    cli_close(c);
    /* A chunk size too large for any body. */
    c = cli_open();
    cli_send(c, "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                "\r\nffffffffffffffffffffffff\r\n");
    expect_status(c, "HTTP/1.1 413 Payload Too Large");
    cli_close(c);
    expect_alive();
    server_stop_ok();
}
END_TEST

/* max_body_bytes 0: no request may have a body; one without is fine. */
START_TEST(http_body_limit_zero)
{
    srv_http_limits_t l;
    cli_t *c;
    resp_t *r;

    limits(&l);
    l.max_body_bytes = 0;
    server_start(&l);
    c = cli_open();
    cli_send(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_status(c, "HTTP/1.1 200 OK");
    cli_send(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    expect_status(c, "HTTP/1.1 200 OK");
    cli_send(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 413 Payload Too Large");
    ck_assert(r->conn_close);
    expect_eof(c);
    cli_close(c);
    server_stop_ok();
}
END_TEST

/* The limits that have no meaning at 0 are refused, not defaulted. */
START_TEST(http_zero_limit_refused)
{
    static const size_t offs[] = {
        offsetof(srv_http_limits_t, max_header_bytes),
        offsetof(srv_http_limits_t, max_url_bytes),
        offsetof(srv_http_limits_t, header_timeout_ms),
        offsetof(srv_http_limits_t, max_connections),
        offsetof(srv_http_limits_t, write_timeout_ms),
    };
    srv_http_limits_t l;
    uv_loop_t loop;
    srv_http_t *h = NULL;
    int fd = srv_listen_tcp("127.0.0.1", 0, 0, NULL);
    size_t i;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    for (i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        char *f = (char *)&l + offs[i];

        limits(&l);
        if (offs[i] == offsetof(srv_http_limits_t, max_header_bytes)
            || offs[i] == offsetof(srv_http_limits_t, max_url_bytes))
            *(size_t *)(void *)f = 0;
        else
            *(unsigned *)(void *)f = 0;
        ck_assert_int_eq(srv_http_start(&loop, fd, &l, handler, &h, &h),
                         -EINVAL);
        ck_assert_ptr_null(h);
    }
    /* keep-alive, body and write queue may be 0 */
    limits(&l);
    l.keepalive_timeout_ms = 0;
    l.max_body_bytes = 0;
    l.max_write_queue_bytes = 0;
    ck_assert_int_eq(srv_http_start(&loop, fd, &l, handler, &h, &h), 0);
    srv_http_stop(h, NULL, NULL);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    srv_http_free(h);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    close(fd);
}
END_TEST

/*
 * Refused while the client is still sending its body: the server must keep
 * reading (and dropping) it after the 413, so that its close is a FIN the
 * client reads after the response, not an RST that fails the client's send.
 */
START_TEST(http_error_with_body_in_flight)
{
    srv_http_limits_t l;
    size_t n = 1 << 20;
    char *body = malloc(n);
    cli_t *c;
    resp_t *r;

    limits(&l);
    l.max_body_bytes = 16;
    server_start(&l);
    memset(body, 'x', n);
    c = cli_open();
    cli_send(c, "POST / HTTP/1.1\r\nHost: t\r\n"
                "Content-Length: 1048576\r\n\r\n");
    cli_sendn(c, body, n);
    r = expect_status(c, "HTTP/1.1 413 Payload Too Large");
    ck_assert(r->conn_close);
    expect_eof(c);
    cli_close(c);
    free(body);
    expect_alive();
    server_stop_ok();
}
END_TEST

/*
 * A connection the worker cannot get memory for is still accepted, answered
 * 503 and closed, and the next one is served.  (It used to be left
 * unaccepted, and libuv then stops polling the listener: the worker never
 * accepted again.)
 */
static void
expect_turned_away(cli_t *c)
{
    resp_t *r = expect_status(c, "HTTP/1.1 503 Service Unavailable");

    ck_assert(r->conn_close);
    ck_assert_str_eq(r->body, "{\"error\":\"out of memory\"}");
    expect_eof(c);
    cli_close(c);
}

START_TEST(http_conn_alloc_failure)
{
    cli_t *c, *f[3];
    int i;

    server_start(NULL);
    c = cli_open();
    cli_send(c, "GET /fail?n=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_status(c, "HTTP/1.1 200 OK");
    expect_turned_away(cli_open());
    expect_alive();
    /* Three in a row, queued up while the loop is blocked, so that one
     * arrives while the last is still closing. */
    cli_send(c, "GET /fail?n=3 HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_status(c, "HTTP/1.1 200 OK");
    cli_send(c, "GET /sleep?ms=200 HTTP/1.1\r\nHost: t\r\n\r\n");
    for (i = 0; i < 3; i++)
        f[i] = cli_open();
    expect_status(c, "HTTP/1.1 200 OK");
    for (i = 0; i < 3; i++)
        expect_turned_away(f[i]);
    expect_alive();
    ck_assert_int_eq(counter("5xx"), 4);
    ck_assert_int_eq(counter("rejected"), 0);   /* not a connection limit */
    cli_close(c);
    server_stop_ok();
}
END_TEST

START_TEST(http_max_connections)
{
    srv_http_limits_t l;
    cli_t *a, *b, *c;
    resp_t *r;
    int i, ok = 0;

    limits(&l);
    l.max_connections = 2;
    server_start(&l);
    a = cli_open();
    b = cli_open();
    cli_send(a, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_status(a, "HTTP/1.1 200 OK");
    cli_send(b, "GET /b HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_status(b, "HTTP/1.1 200 OK");
    c = cli_open();                     /* third: refused */
    r = expect_status(c, "HTTP/1.1 503 Service Unavailable");
    ck_assert(r->conn_close);
    expect_eof(c);
    cli_close(c);
    cli_close(a);
    for (i = 0; i < 200 && !ok; i++) {  /* a slot frees once a is closed */
        resp_t rr;

        c = cli_open();
        cli_send(c, "GET /c HTTP/1.1\r\nHost: t\r\n\r\n");
        ok = read_response(c, &rr, 0) == 0 && rr.status == 200;
        cli_close(c);
        if (!ok)
            usleep(10000);
    }
    ck_assert_msg(ok, "no slot freed after a client closed");
    cli_close(b);
    server_stop_ok();
}
END_TEST

/* ------------------------------------------------------------------ */
/* Tests: timeouts and misbehaving clients                             */

START_TEST(http_header_timeout_408)
{
    srv_http_limits_t l;
    cli_t *c;
    resp_t *r;
    double t0, dt;

    limits(&l);
    l.header_timeout_ms = 200;
    server_start(&l);
    c = cli_open();
    t0 = clk_now_ms();
    cli_send(c, "GET /slow HTTP/1.1\r\nHost: t\r\n");
    r = expect_status(c, "HTTP/1.1 408 Request Timeout");
    dt = clk_now_ms() - t0;
    ck_assert(r->conn_close);
    ck_assert_msg(dt >= 150 && dt < 60000, "408 after %.0f ms", dt);
    expect_eof(c);
    cli_close(c);
    ck_assert_int_eq(counter("timeouts"), 1);
    server_stop_ok();
}
END_TEST

/* A byte every 40 ms does not extend the header deadline (slowloris). */
START_TEST(http_header_timeout_trickle)
{
    static const char req[] =
        "GET /trickle HTTP/1.1\r\nHost: t\r\nX-Long-Header-Name: "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    srv_http_limits_t l;
    struct pollfd pfd;
    cli_t *c;
    double t0, dt;
    size_t i;

    limits(&l);
    l.header_timeout_ms = 400;
    server_start(&l);
    c = cli_open();
    pfd.fd = c->fd;
    pfd.events = POLLIN;
    t0 = clk_now_ms();
    for (i = 0; i < sizeof(req) - 1; i++) {
        cli_sendn(c, req + i, 1);
        if (poll(&pfd, 1, 40) == 1)
            break;
    }
    ck_assert_msg(i < sizeof(req) - 1, "no 408 while trickling");
    expect_status(c, "HTTP/1.1 408 Request Timeout");
    dt = clk_now_ms() - t0;
    ck_assert_msg(dt >= 350 && dt < 60000, "408 after %.0f ms", dt);
    cli_close(c);
    server_stop_ok();
}
END_TEST

/* A stalled body (headers complete) also times out. */
START_TEST(http_body_timeout_408)
{
    srv_http_limits_t l;
    cli_t *c;

    limits(&l);
    l.header_timeout_ms = 200;
    server_start(&l);
    c = cli_open();
    cli_send(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n123");
    expect_status(c, "HTTP/1.1 408 Request Timeout");
    expect_eof(c);
    cli_close(c);
    server_stop_ok();
}
END_TEST

START_TEST(http_keepalive_timeout)
{
    srv_http_limits_t l;
    cli_t *c;
    double t0, dt;

    limits(&l);
    l.keepalive_timeout_ms = 200;
    server_start(&l);
    c = cli_open();
    cli_send(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_status(c, "HTTP/1.1 200 OK");
    t0 = clk_now_ms();
    expect_eof(c);                      /* closed quietly, no response */
    dt = clk_now_ms() - t0;
    ck_assert_msg(dt >= 150 && dt < 60000, "closed after %.0f ms", dt);
    cli_close(c);
    /* A connection that never sends anything is idle too. */
    c = cli_open();
    expect_eof(c);
    cli_close(c);
    server_stop_ok();
}
END_TEST

/*
 * keepalive_timeout_ms 0 means no keep-alive: the response says
 * "Connection: close" and the connection closes after it, so a pipelined
 * second request is never answered (0 once meant "the default": 5 s).
 */
START_TEST(http_keepalive_off)
{
    srv_http_limits_t l;
    cli_t *c;
    resp_t *r;

    limits(&l);
    l.keepalive_timeout_ms = 0;
    server_start(&l);
    c = cli_open();
    cli_send(c, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /b HTTP/1.1\r\nHost: t\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert(r->conn_close);
    ck_assert_ptr_nonnull(strstr(r->body, "\"path\":\"/a\""));
    expect_eof(c);
    cli_close(c);
    /* HTTP/1.0 asking for keep-alive: closed all the same. */
    c = cli_open();
    cli_send(c, "GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    r = expect_status(c, "HTTP/1.1 200 OK");
    ck_assert(r->conn_close);
    expect_eof(c);
    cli_close(c);
    ck_assert_int_eq(counter("requests"), 3);   /* /a, /c, /counters */
    server_stop_ok();
}
END_TEST

START_TEST(http_client_close_mid_request)
{
    cli_t *c;

    server_start(NULL);
    c = cli_open();                     /* half a request line */
    cli_send(c, "GET /half");
    cli_close(c);
    c = cli_open();                     /* half a body */
    cli_send(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"
                "0123456789");
    cli_close(c);
    c = cli_open();                     /* inside a chunk */
    cli_send(c, "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                "\r\n10\r\n0123");
    cli_close(c);
    c = cli_open();                     /* never reads its responses */
    cli_send(c, "GET /1 HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /2 HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_close(c);
    c = cli_open();                     /* reset, not FIN */
    {
        struct linger lg = { 1, 0 };

        cli_send(c, "GET /rst HTTP/1.1\r\nHost: t\r\n"
                    "Content-Length: 5\r\n\r\n");
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    cli_close(c);
    expect_alive();
    wait_counter("active", 1);          /* only the counting connection */
    server_stop_ok();                   /* and nothing leaked (ASan) */
}
END_TEST

/*
 * A client pipelining requests for big responses and never reading: the
 * server stops reading it, closes it once writes stall, and meanwhile
 * serves others.
 */
START_TEST(http_slow_reader)
{
    srv_http_limits_t l;
    char req[64 * 40];
    size_t n = 0;
    cli_t *slow, *c;
    int i;

    limits(&l);
    l.write_timeout_ms = 300;
    l.max_write_queue_bytes = 64 * 1024;
    server_start(&l);
    slow = calloc(1, sizeof(*slow));
    slow->fd = raw_connect(4096);
    for (i = 0; i < 64; i++)
        n += (size_t)sprintf(req + n,
                             "GET /big?n=200000 HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_sendn(slow, req, n);
    usleep(50000);
    /* served at all (a loop stuck on the slow client would never answer);
     * how fast is the machine's business, not the test's */
    c = cli_open();
    cli_send(c, "GET /other HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_status(c, "HTTP/1.1 200 OK");
    cli_close(c);
    wait_counter("timeouts", 1);
    wait_counter("active", 1);
    cli_close(slow);
    server_stop_ok();
}
END_TEST

/* ------------------------------------------------------------------ */
/* Tests: stop and setup                                               */

START_TEST(http_stop_graceful)
{
    cli_t *idle, *busy;
    resp_t *r;

    server_start(NULL);
    idle = cli_open();
    cli_send(idle, "GET /i HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_status(idle, "HTTP/1.1 200 OK");
    busy = cli_open();
    cli_send(busy, "GET /b HTTP/1.1\r\nHost: t\r\n");
    usleep(100000);                     /* the server has the half head */
    ck_assert_int_eq(kill(srv_pid, SIGTERM), 0);
    expect_eof(idle);                   /* idle: closed at once */
    cli_send(busy, "\r\n");             /* busy: answered, then closed */
    r = expect_status(busy, "HTTP/1.1 200 OK");
    ck_assert(r->conn_close);
    expect_eof(busy);
    cli_close(idle);
    cli_close(busy);
    {
        int st, i;
        pid_t w = 0;

        for (i = 0; i < 1000 && w != srv_pid; i++) {
            w = waitpid(srv_pid, &st, WNOHANG);
            if (w != srv_pid)
                usleep(5000);
        }
        ck_assert_int_eq(w, srv_pid);
        srv_pid = -1;
        ck_assert(WIFEXITED(st));
        ck_assert_int_eq(WEXITSTATUS(st), 0);
    }
}
END_TEST

START_TEST(http_listen_errors)
{
    int port = 0, fd, fd2;
    uv_loop_t loop;
    srv_http_t *h = NULL;

    ck_assert_int_eq(srv_listen_tcp("127.0.0.1", 70000, 0, NULL), -EINVAL);
    ck_assert_int_eq(srv_listen_tcp("127.0.0.1", -1, 0, NULL), -EINVAL);
    fd = srv_listen_tcp(NULL, 0, 0, &port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_gt(port, 0);
    fd2 = srv_listen_tcp("127.0.0.1", port, 0, NULL);
    ck_assert_int_eq(fd2, -EADDRINUSE);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(srv_http_start(&loop, -1, NULL, handler, NULL, &h),
                     -EINVAL);
    ck_assert_int_eq(srv_http_start(&loop, fd, NULL, NULL, NULL, &h),
                     -EINVAL);
    /* Start and stop with no connections: done_cb runs, all freed. */
    ck_assert_int_eq(srv_http_start(&loop, fd, NULL, handler, &h, &h), 0);
    close(fd);                          /* the server keeps its own dup */
    srv_http_stop(h, NULL, NULL);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(srv_http_active_connections(h), 0);
    srv_http_free(h);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("http");
    TCase *basic = tcase_create("basic");
    TCase *bad = tcase_create("malformed");
    TCase *lim = tcase_create("limits");
    TCase *tmo = tcase_create("timeouts");
    TCase *all[] = { basic, bad, lim, tmo };
    size_t i;

    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        tcase_add_checked_fixture(all[i], setup, teardown);
        tcase_set_timeout(all[i], 20);
        suite_add_tcase(s, all[i]);
    }
    tcase_add_test(basic, http_get_ok);
    tcase_add_test(basic, http_keep_alive);
    tcase_add_test(basic, http_pipelining);
    tcase_add_test(basic, http_connection_close);
    tcase_add_test(basic, http_http10);
    tcase_add_test(basic, http_head_request);
    tcase_add_test(basic, http_chunked_body);
    tcase_add_test(basic, http_fragmented);
    tcase_add_test(basic, http_expect_continue);
    tcase_add_test(basic, http_upgrade_ignored);
    tcase_add_test(basic, http_stop_graceful);
    tcase_add_test(basic, http_listen_errors);
    tcase_add_loop_test(bad, http_malformed_400, 0, N_MALFORMED);
    tcase_add_test(bad, http_nul_byte_400);
    tcase_add_test(bad, http_version_505);
    tcase_add_test(lim, http_header_too_large_431);
    tcase_add_test(lim, http_url_too_long_414);
    tcase_add_test(lim, http_body_too_large_413);
    tcase_add_test(lim, http_error_with_body_in_flight);
    tcase_add_test(lim, http_max_connections);
    tcase_add_test(lim, http_conn_alloc_failure);
    tcase_add_test(lim, http_body_limit_zero);
    tcase_add_test(lim, http_zero_limit_refused);
    tcase_add_test(tmo, http_header_timeout_408);
    tcase_add_test(tmo, http_header_timeout_trickle);
    tcase_add_test(tmo, http_body_timeout_408);
    tcase_add_test(tmo, http_keepalive_timeout);
    tcase_add_test(tmo, http_keepalive_off);
    tcase_add_test(tmo, http_client_close_mid_request);
    tcase_add_test(tmo, http_slow_reader);
    return ts_run_suite(s);
}
