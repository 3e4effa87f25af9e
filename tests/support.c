/*
 * support.c -- the helpers every test program shares: visible skips, the
 * server under test, an HTTP client, scratch folders, CSV.  API and
 * conventions: support.h.  Tested by check_support.c.
 */
#include "support.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#define IO_MS 8000                      /* any single read or write */

/* ---- skips --------------------------------------------------------------- */

int
ts_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

void
ts_skip(const char *test, const char *fmt, ...)
{
    char line[512], reason[400];
    size_t n = strlen(test);
    va_list ap;

    /* Check names a test's function <name>_fn: report <name>. */
    if (n > 3 && strcmp(test + n - 3, "_fn") == 0)
        n -= 3;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    int len = snprintf(line, sizeof line, "SKIP %.*s: %s\n", (int)n, test,
                       reason);
    if (len < 0)
        return;
    if ((size_t)len >= sizeof line)
        len = (int)sizeof line - 1;
    fputs(line, stdout);
    fflush(stdout);
    const char *file = getenv("COWLAB_SKIPS");
    if (file == NULL || *file == '\0')
        return;
    /* One write() with O_APPEND: lines from forked tests never mix. */
    int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, line, (size_t)len) != len)
        fprintf(stderr, "support: cannot record the skip in %s: %s\n", file,
                strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* ---- clocks -------------------------------------------------------------- */

double
ts_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void
ts_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- the server ---------------------------------------------------------- */

const char *
ts_bin(void)
{
    const char *bin = getenv("COWLAB_BIN");

    return bin != NULL && *bin != '\0' ? bin : "bin/cowlab";
}

/* fork() a child in its own process group that dies with us, its stdout
 * (and stderr if both) into a pipe; exec bin with argv.  The pid, read
 * end in *out; -1 on failure. */
static pid_t
spawn(const char *const *argv, int both, int *out)
{
    int fds[2];
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive the test */
        dup2(fds[1], 1);
        if (both)
            dup2(fds[1], 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    setpgid(pid, pid);                      /* no race with the child's */
    close(fds[1]);
    *out = fds[0];
    return pid;
}

int
ts_server_start(ts_server_t *s, const char *const *base,
                const char *const *args)
{
    const char *argv[80] = { ts_bin(), "--port", "0", "-q" };
    char buf[256];
    size_t len = 0;
    int n = 4;

    for (int i = 0; base != NULL && base[i] != NULL && n < 78; i++)
        argv[n++] = base[i];
    for (int i = 0; args != NULL && args[i] != NULL && n < 78; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    s->out = -1;
    s->pid = spawn(argv, 0, &s->out);
    if (s->pid < 0)
        return -1;
    double end = ts_now_ms() + 30000;     /* a heap build on a busy box */
    while (len < sizeof buf - 1) {
        struct pollfd p = { s->out, POLLIN, 0 };
        int left = (int)(end - ts_now_ms());

        if (left <= 0 || poll(&p, 1, left) != 1
            || read(s->out, buf + len, 1) != 1)
            break;
        if (buf[len++] == '\n')
            break;
    }
    buf[len] = '\0';
    if (sscanf(buf, "listening http://127.0.0.1:%d", &s->port) != 1) {
        fprintf(stderr, "support: the server did not start: '%s'\n", buf);
        ts_server_kill(s);
        return -1;
    }
    return 0;
}

void
ts_server_kill(ts_server_t *s)
{
    if (s->pid > 0) {
        kill(-s->pid, SIGKILL);
        while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (s->out >= 0)
        close(s->out);
    s->pid = -1;
    s->out = -1;
}

int
ts_server_wait(ts_server_t *s)
{
    int status;
    pid_t r;

    if (s->pid <= 0)
        return -1;
    while ((r = waitpid(s->pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (r != s->pid)
        return -1;
    s->pid = -1;
    if (s->out >= 0)
        close(s->out);
    s->out = -1;
    return status;
}

int
ts_workers(const ts_server_t *s, pid_t *out, int max)
{
    char path[64], buf[4096];
    FILE *f;
    size_t k;
    int n = 0;

    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)s->pid,
             (int)s->pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = '\0';
    for (char *save = NULL, *p = strtok_r(buf, " \n", &save); p && n < max;
         p = strtok_r(NULL, " \n", &save))
        out[n++] = (pid_t)atoi(p);
    return n;
}

int
ts_wait_workers(const ts_server_t *s, int want, pid_t *out, int max)
{
    for (int i = 0; i < 400; i++) {
        if (ts_workers(s, out, max) == want)
            return want;
        ts_sleep_ms(25);
    }
    return ts_workers(s, out, max);
}

int
ts_run(const char *const *args, char *out, size_t cap)
{
    const char *argv[64] = { ts_bin() };
    size_t len = 0;
    int n = 1, fd, status;
    pid_t pid, r = 0;

    for (int i = 0; args[i] != NULL && n < 62; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    out[0] = '\0';
    if ((pid = spawn(argv, 1, &fd)) < 0)
        return -1;
    /* A run that does not end at once would serve forever: bound it. */
    double end = ts_now_ms() + 10000;
    for (;;) {
        struct pollfd p = { fd, POLLIN, 0 };
        int left = (int)(end - ts_now_ms());
        char tmp[4096];
        ssize_t k;

        if (left <= 0 || poll(&p, 1, left) != 1)
            break;
        k = read(fd, tmp, sizeof tmp);
        if (k <= 0)
            break;
        for (ssize_t i = 0; i < k && len + 1 < cap; i++)
            out[len++] = tmp[i];
    }
    out[len] = '\0';
    close(fd);
    while (ts_now_ms() < end
           && (r = waitpid(pid, &status, WNOHANG)) == 0)
        ts_sleep_ms(10);
    if (r != pid) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- HTTP client --------------------------------------------------------- */

int
ts_connect(int port, int rcvbuf)
{
    struct sockaddr_in a;
    struct timeval tv = { IO_MS / 1000, 0 };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

void
ts_send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;                 /* the server may close first: fine */
        p += k;
        n -= (size_t)k;
    }
}

void
ts_send_str(int fd, const char *s)
{
    ts_send_all(fd, s, strlen(s));
}

/* What was read past the last response, for one fd at a time. */
static char rbuf[1 << 20];
static size_t rlen;
static int rfd = -1;

int
ts_read_response(int fd, char *body, size_t cap)
{
    char *eoh;
    size_t clen = 0, used;
    int st = -1;

    if (fd != rfd) {
        rfd = fd;
        rlen = 0;
    }
    for (;;) {
        rbuf[rlen] = '\0';
        eoh = strstr(rbuf, "\r\n\r\n");
        if (eoh != NULL) {
            char *cl = strcasestr(rbuf, "\r\nContent-Length:");

            clen = cl != NULL && cl < eoh ? strtoul(cl + 17, NULL, 10) : 0;
            if (rlen >= (size_t)(eoh + 4 - rbuf) + clen)
                break;
        }
        if (rlen >= sizeof rbuf - 1)
            return -1;
        ssize_t k = recv(fd, rbuf + rlen, sizeof rbuf - 1 - rlen, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        rlen += (size_t)k;
    }
    if (sscanf(rbuf, "HTTP/1.1 %d", &st) != 1)
        st = -1;
    if (body != NULL && cap > 0) {
        size_t n = clen < cap - 1 ? clen : cap - 1;

        memcpy(body, eoh + 4, n);
        body[n] = '\0';
    }
    used = (size_t)(eoh + 4 - rbuf) + clen;
    memmove(rbuf, rbuf + used, rlen - used);
    rlen -= used;
    return st;
}

size_t
ts_pending(int fd)
{
    return fd == rfd ? rlen : 0;
}

void
ts_close(int fd)
{
    if (fd == rfd) {
        rfd = -1;
        rlen = 0;
    }
    if (fd >= 0)
        close(fd);
}

int
ts_get(int port, const char *path, char *body, size_t cap)
{
    char req[512];
    int fd = ts_connect(port, 0), st, n;

    if (body != NULL && cap > 0)
        body[0] = '\0';
    if (fd < 0)
        return -1;
    n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n"
                 "Connection: close\r\n\r\n", path);
    ts_send_all(fd, req, (size_t)n);
    st = ts_read_response(fd, body, cap);
    ts_close(fd);
    return st;
}

/* ---- files --------------------------------------------------------------- */

int
ts_tmpdir(char *dir, size_t cap, const char *tag)
{
    const char *t = getenv("TMPDIR");

    if (t == NULL || *t == '\0')
        t = "/tmp";
    if ((size_t)snprintf(dir, cap, "%s/cowlab-%s-XXXXXX", t, tag) >= cap)
        return -1;
    return mkdtemp(dir) != NULL ? 0 : -1;
}

void
ts_rmdir(const char *dir)
{
    char cmd[1024];

    if (dir == NULL || *dir == '\0' || strchr(dir, '\'') != NULL)
        return;
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'",
             dir, dir);
    if (system(cmd) != 0)
        fprintf(stderr, "support: cleanup of %s failed\n", dir);
}

/* ---- CSV ----------------------------------------------------------------- */

/* The fields of the row at *rp, unquoted in place into *wp onwards; *rp
 * and *wp move past it.  NULL on a malformed row (err says why) or out of
 * memory. */
static char **
split_row(char **rp, char **wp, size_t *nfields, size_t *line, char *err,
          size_t errlen)
{
    char *r = *rp, *w = *wp, **fields = NULL, sep;
    size_t cap = 0, n = 0;

    do {
        char *start = w;

        if (*r == '"') {                    /* "a ""quoted"", field" */
            for (r++; !(*r == '"' && r[1] != '"'); r++) {
                if (*r == '\0') {
                    snprintf(err, errlen, "line %zu: unterminated quoted "
                             "field", *line);
                    goto error;
                }
                *line += *r == '\n';
                r += *r == '"';             /* "" is one quote */
                *w++ = *r;
            }
            r++;
            if (*r != ',' && *r != '\n' && *r != '\0') {
                snprintf(err, errlen, "line %zu: text after a quoted field",
                         *line);
                goto error;
            }
        } else {
            for (; *r != ',' && *r != '\n' && *r != '\0'; r++) {
                if (*r == '"') {
                    snprintf(err, errlen, "line %zu: a quote inside an "
                             "unquoted field", *line);
                    goto error;
                }
                *w++ = *r;
            }
        }
        sep = *r;
        r += sep != '\0';
        *w++ = '\0';
        if (n == cap) {
            char **t = realloc(fields, (cap = cap ? 2 * cap : 16)
                                       * sizeof(*t));
            if (t == NULL) {
                snprintf(err, errlen, "out of memory");
                goto error;
            }
            fields = t;
        }
        fields[n++] = start;
    } while (sep == ',');
    (*line)++;
    *rp = r;
    *wp = w;
    *nfields = n;
    return fields;
error:
    free(fields);
    return NULL;
}

int
ts_csv_load(ts_csv_t *c, const char *path, char *err, size_t errlen)
{
    FILE *f;
    long n;
    size_t cap = 0, line = 1;

    memset(c, 0, sizeof *c);
    if ((f = fopen(path, "r")) == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) < 0
        || (c->buf = malloc((size_t)n + 1)) == NULL
        || fread(c->buf, 1, (size_t)n, f) != (size_t)n) {
        snprintf(err, errlen, "%s: cannot read it", path);
        fclose(f);
        goto error;
    }
    fclose(f);
    c->buf[n] = '\0';
    if (n == 0 || c->buf[n - 1] != '\n') {
        snprintf(err, errlen, "%s: %s", path, n == 0 ? "empty"
                 : "the last row is torn (no newline)");
        goto error;
    }
    for (char *r = c->buf, *w = c->buf; *r != '\0';) {
        size_t nf;

        if (c->nlines == cap) {
            char ***t = realloc(c->lines, (cap = cap ? 2 * cap : 64)
                                          * sizeof(*t));
            if (t == NULL) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto error;
            }
            c->lines = t;
        }
        char **fields = split_row(&r, &w, &nf, &line, err, errlen);
        if (fields == NULL)
            goto error;
        c->lines[c->nlines++] = fields;
        if (c->nlines == 1) {
            c->ncols = nf;
        } else if (nf != c->ncols) {
            snprintf(err, errlen, "%s: row %zu has %zu fields, the header "
                     "%zu", path, c->nlines - 1, nf, c->ncols);
            goto error;
        }
    }
    c->cols = c->lines[0];
    c->rows = c->lines + 1;
    c->nrows = c->nlines - 1;
    return 0;
error:
    ts_csv_free(c);
    return -1;
}

void
ts_csv_free(ts_csv_t *c)
{
    for (size_t i = 0; i < c->nlines; i++)
        free(c->lines[i]);
    free(c->lines);
    free(c->buf);
    memset(c, 0, sizeof *c);
}

int
ts_csv_col(const ts_csv_t *c, const char *name)
{
    for (size_t i = 0; i < c->ncols; i++)
        if (strcmp(c->cols[i], name) == 0)
            return (int)i;
    return -1;
}

const char *
ts_csv_get(const ts_csv_t *c, size_t r, const char *name)
{
    int i = ts_csv_col(c, name);

    ck_assert_msg(i >= 0, "no column %s", name);
    ck_assert_msg(r < c->nrows, "no row %zu (%zu rows)", r, c->nrows);
    return c->rows[r][i];
}

long
ts_csv_long(const ts_csv_t *c, size_t r, const char *name)
{
    const char *s = ts_csv_get(c, r, name);
    char *end;
    long v = strtol(s, &end, 10);

    ck_assert_msg(*s != '\0' && *end == '\0', "row %zu, %s: '%s' is not an "
                  "integer", r, name, s);
    return v;
}

double
ts_csv_double(const ts_csv_t *c, size_t r, const char *name)
{
    const char *s = ts_csv_get(c, r, name);
    char *end;
    double v = strtod(s, &end);

    ck_assert_msg(*s != '\0' && *end == '\0', "row %zu, %s: '%s' is not a "
                  "number", r, name, s);
    return v;
}
