/*
 * support.h -- what the test programs share (prefix ts_): visible skips,
 * clocks, the cowlab binary run as a server on port 0 in its own process
 * group, an HTTP/1.1 client for it, scratch folders and a CSV reader.
 * Linked into every tests/check_*.c (the Makefile adds tests/support.c);
 * its own tests are in check_support.c.
 *
 * Helpers that only start, read or wait return -1 on failure instead of
 * asserting, so that they also work in unchecked fixtures; the test says
 * what it expected.
 */
#ifndef COWLAB_TEST_SUPPORT_H
#define COWLAB_TEST_SUPPORT_H

#include <stddef.h>
#include <sys/types.h>

#include <check.h>

/* Run every test of s (CK_NORMAL output): main()'s return value, 0 if
 * all passed, else 1. */
int ts_run_suite(Suite *s);

/* ---- skips ----------------------------------------------------------------
 * A test that cannot run here says so instead of passing: one line
 * "SKIP <test>: <reason>" on stdout, and the same line appended to the
 * file named by COWLAB_SKIPS (make test sets it, counts the lines at the
 * end, and with COWLAB_REQUIRE_ALL=1 fails if there is any). */

void ts_skip(const char *test, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Skip the running Check test (its name from __func__) and return. */
#define TS_SKIP(...) \
    do { ts_skip(__func__, __VA_ARGS__); return; } while (0)

/* ---- clocks -------------------------------------------------------------- */

double ts_now_ms(void);                 /* CLOCK_MONOTONIC, ms */
void ts_sleep_ms(long ms);              /* the whole time, EINTR or not */

/* ---- the server ---------------------------------------------------------- */

/* A running cowlab: master pid (= its process group), its stdout, port. */
typedef struct ts_server {
    pid_t pid;                          /* -1: none */
    int out;
    int port;
} ts_server_t;

#define TS_SERVER_NONE { -1, -1, 0 }

/* The binary under test: $COWLAB_BIN, or bin/cowlab. */
const char *ts_bin(void);
/* Start "cowlab --port 0 -q", then the args of base and of args (each
 * NULL-terminated, either may be NULL); wait up to 30 s for its
 * "listening http://127.0.0.1:PORT" line.  0, or -1 (s->pid is then -1,
 * what it printed is on stderr).  It dies with the test (PDEATHSIG). */
int ts_server_start(ts_server_t *s, const char *const *base,
                    const char *const *args);
/* SIGKILL its whole process group and reap it; none running is fine. */
void ts_server_kill(ts_server_t *s);
/* Wait for it to exit on its own: the wait status, or -1. */
int ts_server_wait(ts_server_t *s);
/* Its children (the workers), at most max: how many. */
int ts_workers(const ts_server_t *s, pid_t *out, int max);
/* Poll (up to 10 s) until it has want workers: how many it has. */
int ts_wait_workers(const ts_server_t *s, int want, pid_t *out, int max);
/* Run the binary with args (NULL-terminated) to its end, stdout and
 * stderr into out (NUL-terminated, cut to cap): its exit status, or -1 if
 * it was killed or still ran after 10 s (it is then killed). */
int ts_run(const char *const *args, char *out, size_t cap);

/* ---- HTTP client --------------------------------------------------------- */

/* A loopback connection to port (rcvbuf > 0 sets SO_RCVBUF), 8 s read
 * and write timeouts: the fd, or -1. */
int ts_connect(int port, int rcvbuf);
/* Send all of p, stopping quietly if the server closed first. */
void ts_send_all(int fd, const char *p, size_t n);
void ts_send_str(int fd, const char *s);
/* Read exactly one response (head + Content-Length body) from fd: its
 * status, or -1 if the connection ended or timed out first.  What follows
 * it (pipelined responses) is kept for the next call on the same fd.
 * body (may be NULL) gets the body, NUL-terminated, cut to cap. */
int ts_read_response(int fd, char *body, size_t cap);
/* Bytes read from fd after the last response, not yet returned. */
size_t ts_pending(int fd);
/* Close fd and drop what was kept for it. */
void ts_close(int fd);
/* GET path on a new connection with "Connection: close": the status and
 * the body, or -1 if it could not connect or got no whole response. */
int ts_get(int port, const char *path, char *body, size_t cap);

/* ---- files --------------------------------------------------------------- */

/* A fresh folder $TMPDIR/cowlab-<tag>-XXXXXX (TMPDIR default /tmp) into
 * dir (cap >= 64): 0 or -1. */
int ts_tmpdir(char *dir, size_t cap, const char *tag);
/* Remove it and everything in it (read-only parts too). */
void ts_rmdir(const char *dir);

/*
 * A CSV file read whole (RFC 4180: quoted fields may hold commas, quotes
 * doubled, line breaks).  ts_csv_load() checks that the file ends in a
 * newline and that every row has as many fields as the header: 0, or -1
 * with the reason in err.
 */
typedef struct ts_csv {
    char **cols;                        /* the header's names */
    size_t ncols;
    char ***rows;                       /* rows[r][c], after the header */
    size_t nrows;
    char *buf;                          /* the file, fields cut in place */
    char ***lines;                      /* the header, then the rows */
    size_t nlines;
} ts_csv_t;

int ts_csv_load(ts_csv_t *c, const char *path, char *err, size_t errlen);
void ts_csv_free(ts_csv_t *c);
/* Column index of name, or -1. */
int ts_csv_col(const ts_csv_t *c, const char *name);
/* The field of row r in column name; fails the test if there is none. */
const char *ts_csv_get(const ts_csv_t *c, size_t r, const char *name);
long ts_csv_long(const ts_csv_t *c, size_t r, const char *name);
double ts_csv_double(const ts_csv_t *c, size_t r, const char *name);

#endif
