/* check_support.c -- tests for tests/support.c, the helpers every test
 * program links: skip lines and their file, the CSV reader (RFC 4180),
 * one response at a time from a pipelined stream, running the binary to
 * its exit status, the server started and stopped, scratch folders. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

static char tmpdir[64];

static void setup(void)
{
    ck_assert_int_eq(ts_tmpdir(tmpdir, sizeof tmpdir, "support"), 0);
}

static void teardown(void)
{
    ts_rmdir(tmpdir);
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* The whole file, NUL-terminated, into buf. */
static void
read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* A test that skips itself, as the real ones do (named as Check names a
 * test's function). */
static void
support_skipping_test_fn(int i)
{
    (void)i;
    TS_SKIP("no %s here", "widget");
    ck_abort_msg("TS_SKIP did not return");
}

/* Send fd (1 or 2) to path ("/dev/null" to silence it) until restore(). */
static int
redirect(int fd, const char *path)
{
    int saved, to;

    fflush(fd == 1 ? stdout : stderr);
    saved = dup(fd);
    to = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert(saved >= 0 && to >= 0);
    ck_assert_int_eq(dup2(to, fd), fd);
    close(to);
    return saved;
}

static void
restore(int fd, int saved)
{
    fflush(fd == 1 ? stdout : stderr);
    ck_assert_int_eq(dup2(saved, fd), fd);
    close(saved);
}

/* Its line on stdout and in COWLAB_SKIPS, appended, the _fn of Check's
 * function name dropped. */
START_TEST(support_skip_is_recorded)
{
    char path[128], outpath[128], buf[1024];
    const char *saved = getenv("COWLAB_SKIPS");
    char *keep = saved ? strdup(saved) : NULL;
    const char *want = "SKIP support_skipping_test: no widget here\n"
                       "SKIP plain_name: reason 2\n";

    snprintf(path, sizeof path, "%s/skips.txt", tmpdir);
    snprintf(outpath, sizeof outpath, "%s/stdout.txt", tmpdir);
    write_file(path, "SKIP earlier: kept\n");
    setenv("COWLAB_SKIPS", path, 1);
    int out = redirect(1, outpath);
    support_skipping_test_fn(0);
    ts_skip("plain_name", "reason %d", 2);
    restore(1, out);
    if (keep) {
        setenv("COWLAB_SKIPS", keep, 1);
        free(keep);
    } else {
        unsetenv("COWLAB_SKIPS");
    }
    read_file(outpath, buf, sizeof buf);
    ck_assert_str_eq(buf, want);
    read_file(path, buf, sizeof buf);
    ck_assert_str_eq(buf + strlen("SKIP earlier: kept\n"), want);
    ck_assert_int_eq(strncmp(buf, "SKIP earlier: kept\n", 19), 0);
}
END_TEST

START_TEST(support_csv_rfc4180)
{
    char path[128], err[256];
    ts_csv_t c;

    snprintf(path, sizeof path, "%s/a.csv", tmpdir);
    write_file(path, "name,path,n\n"
               "plain,/a/b,1\n"
               "\"quoted\",\"/x,y/\"\"z\"\"\",-2\n"
               "empty,,3\n"
               "\"two\nlines\",\"\",4\n");
    ck_assert_msg(ts_csv_load(&c, path, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(c.ncols, 3);
    ck_assert_uint_eq(c.nrows, 4);
    ck_assert_str_eq(c.cols[1], "path");
    ck_assert_int_eq(ts_csv_col(&c, "n"), 2);
    ck_assert_int_eq(ts_csv_col(&c, "nope"), -1);
    ck_assert_str_eq(ts_csv_get(&c, 0, "path"), "/a/b");
    ck_assert_str_eq(ts_csv_get(&c, 1, "name"), "quoted");
    ck_assert_str_eq(ts_csv_get(&c, 1, "path"), "/x,y/\"z\"");
    ck_assert_int_eq(ts_csv_long(&c, 1, "n"), -2);
    ck_assert_str_eq(ts_csv_get(&c, 2, "path"), "");
    ck_assert_str_eq(ts_csv_get(&c, 3, "name"), "two\nlines");
    ck_assert(ts_csv_double(&c, 3, "n") == 4.0);
    ts_csv_free(&c);
}
END_TEST

/* Files that must be refused, each with its reason. */
START_TEST(support_csv_refuses_torn_files)
{
    static const struct { const char *text, *want; } bad[] = {
        { "a,b\n1,2\n3,", "torn" },             /* killed mid-row */
        { "a,b\n1,2,3\n", "row 1 has 3 fields" },
        { "a,b\n1\n", "row 1 has 1 fields" },
        { "a,b\n\"1,2\n", "unterminated" },
        { "a,b\n\"1\"x,2\n", "after a quoted" },
        { "a,b\n1\"2,3\n", "quote inside" },
        { "", "empty" },
    };
    char path[128], err[256];
    ts_csv_t c;

    snprintf(path, sizeof path, "%s/bad.csv", tmpdir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i].text);
        err[0] = '\0';
        ck_assert_msg(ts_csv_load(&c, path, err, sizeof err) == -1,
                      "case %zu loaded", i);
        ck_assert_msg(strstr(err, bad[i].want) != NULL, "case %zu: %s", i,
                      err);
        ck_assert_ptr_null(c.buf);
    }
    snprintf(path, sizeof path, "%s/missing.csv", tmpdir);
    ck_assert_int_eq(ts_csv_load(&c, path, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
}
END_TEST

/* Pipelined responses come back one at a time; what follows the last
 * whole one waits for the next call, and ts_close() drops it. */
START_TEST(support_read_response_one_at_a_time)
{
    int sv[2];
    char body[64];
    const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
                      "HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno"
                      "HTTP/1.1 503 X\r\n";

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ts_send_str(sv[1], two);
    ck_assert_int_eq(ts_read_response(sv[0], body, sizeof body), 200);
    ck_assert_str_eq(body, "hello");
    ck_assert_int_eq(ts_read_response(sv[0], body, 2), 404);
    ck_assert_str_eq(body, "n");                        /* cut to cap */
    ck_assert_uint_eq(ts_pending(sv[0]), strlen("HTTP/1.1 503 X\r\n"));
    ts_send_str(sv[1], "\r\n");
    ck_assert_int_eq(ts_read_response(sv[0], NULL, 0), 503);
    ck_assert_uint_eq(ts_pending(sv[0]), 0);
    ts_send_str(sv[1], "HTTP/1.1 200 OK\r\n");         /* then the end */
    close(sv[1]);
    ck_assert_int_eq(ts_read_response(sv[0], NULL, 0), -1);
    ck_assert_uint_gt(ts_pending(sv[0]), 0);
    ts_close(sv[0]);
    ck_assert_uint_eq(ts_pending(sv[0]), 0);
}
END_TEST

START_TEST(support_run_gives_exit_status)
{
    char out[8192];
    const char *help[] = { "--help", NULL };
    const char *bad[] = { "--workers", "zero", NULL };

    ck_assert_int_eq(ts_run(help, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "--workers"));
    ck_assert_int_eq(ts_run(bad, out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "cowlab: "));     /* stderr too */
    ck_assert_int_eq(ts_run(help, out, 8), 0);
    ck_assert_uint_eq(strlen(out), 7);                  /* cut to cap */
}
END_TEST

START_TEST(support_server_starts_answers_stops)
{
    const char *args[] = { "-w", "2", "--scale", "0.01", NULL };
    const char *bad[] = { "--workers", "0", NULL };
    ts_server_t s = TS_SERVER_NONE;
    pid_t w[16];
    char body[256];

    ck_assert_int_eq(ts_server_start(&s, NULL, args), 0);
    ck_assert_int_gt(s.port, 0);
    ck_assert_int_eq(ts_wait_workers(&s, 2, w, 16), 2);
    ck_assert_int_eq(ts_get(s.port, "/healthz", body, sizeof body), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"ok\""));
    ck_assert_int_eq(ts_get(s.port, "/no/such", NULL, 0), 404);
    pid_t master = s.pid;
    ts_server_kill(&s);
    ck_assert_int_eq(s.pid, -1);
    ck_assert_int_eq(kill(master, 0), -1);              /* gone, reaped */
    ck_assert_int_eq(ts_server_wait(&s), -1);
    ck_assert_int_eq(ts_get(s.port, "/healthz", NULL, 0), -1);
    /* one that exits at once: -1, nothing left running */
    int err = redirect(2, "/dev/null");
    int rc = ts_server_start(&s, NULL, bad);
    restore(2, err);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(s.pid, -1);
    /* SIGTERM: its own exit status */
    ck_assert_int_eq(ts_server_start(&s, NULL, args), 0);
    kill(s.pid, SIGTERM);
    int status = ts_server_wait(&s);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(s.pid, -1);
}
END_TEST

START_TEST(support_tmpdir_removed_whole)
{
    char dir[64], sub[128], file[160];
    struct stat sb;

    ck_assert_int_eq(ts_tmpdir(dir, sizeof dir, "x"), 0);
    ck_assert_int_eq(stat(dir, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    snprintf(sub, sizeof sub, "%s/ro", dir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    snprintf(file, sizeof file, "%s/f", sub);
    write_file(file, "x");
    ck_assert_int_eq(chmod(sub, 0555), 0);      /* read-only, as a test
                                                   of --out leaves it */
    ts_rmdir(dir);
    ck_assert_int_eq(stat(dir, &sb), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(ts_tmpdir(dir, 8, "x"), -1);       /* too long */
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("support");
    TCase *tc = tcase_create("support");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, support_skip_is_recorded);
    tcase_add_test(tc, support_csv_rfc4180);
    tcase_add_test(tc, support_csv_refuses_torn_files);
    tcase_add_test(tc, support_read_response_one_at_a_time);
    tcase_add_test(tc, support_run_gives_exit_status);
    tcase_add_test(tc, support_server_starts_answers_stops);
    tcase_add_test(tc, support_tmpdir_removed_whole);
    suite_add_tcase(s, tc);
    return ts_run_suite(s);
}
