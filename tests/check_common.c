/*
 * check_common.c -- unit tests for common/: the whole-file reader
 * (limits, directories, files whose size stat() does not know), the hex
 * digit helper, the clocks, and the error-message helpers that the config
 * and workload loaders share (did-you-mean, describing a JSON value, the
 * "expected" wording).  The loaders' own messages are pinned in
 * check_config.c and check_workload.c.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ascii.h"
#include "clock.h"
#include "fileio.h"

/* A file under /tmp holding n bytes of 'x'; the caller frees the path. */
static char *
tmp_file_of(size_t n)
{
    char *path = strdup("/tmp/check_common_XXXXXX");
    int fd = mkstemp(path);
    char *buf = malloc(n + 1);

    ck_assert_int_ge(fd, 0);
    ck_assert_ptr_nonnull(buf);
    memset(buf, 'x', n);
    ck_assert_int_eq(write(fd, buf, n), (ssize_t)n);
    close(fd);
    free(buf);
    return path;
}

/* ---- fileio ----------------------------------------------------------- */

START_TEST(common_read_file_exact_limit)
{
    char *path = tmp_file_of(100), *text = NULL;
    size_t len = 0;

    ck_assert_int_eq(fio_read_file(path, 100, &text, &len), 0);
    ck_assert_uint_eq(len, 100);
    ck_assert_uint_eq(strlen(text), 100);       /* NUL after the bytes */
    free(text);
    text = NULL;
    ck_assert_int_eq(fio_read_file(path, 99, &text, &len), -EFBIG);
    ck_assert_ptr_null(text);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(common_read_file_empty)
{
    char *path = tmp_file_of(0), *text = NULL;
    size_t len = 7;

    ck_assert_int_eq(fio_read_file(path, 0, &text, &len), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(text, "");
    free(text);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(common_read_file_errors)
{
    char *text = NULL;
    size_t len = 0;

    ck_assert_int_eq(fio_read_file("tests", 1 << 20, &text, &len), -EISDIR);
    ck_assert_int_eq(fio_read_file("tests/no/such/file", 1 << 20, &text,
                                   &len), -ENOENT);
    ck_assert_ptr_null(text);
}
END_TEST

/* /proc files report size 0: the limit holds on the bytes read. */
START_TEST(common_read_file_unknown_size)
{
    char *text = NULL;
    size_t len = 0;

    ck_assert_int_eq(fio_read_file("/proc/self/maps", 1 << 24, &text, &len),
                     0);
    ck_assert_uint_gt(len, 10);
    ck_assert_uint_eq(strlen(text), len);
    free(text);
    text = NULL;
    ck_assert_int_eq(fio_read_file("/proc/self/maps", 10, &text, &len),
                     -EFBIG);
    ck_assert_ptr_null(text);
}
END_TEST

/* ---- ascii ------------------------------------------------------------ */

START_TEST(common_hexval)
{
    const char *digits = "0123456789abcdef", *upper = "ABCDEF";
    int ch, n = 0;

    for (ch = 0; digits[ch]; ch++)
        ck_assert_int_eq(ascii_hexval(digits[ch]), ch);
    for (ch = 0; upper[ch]; ch++)
        ck_assert_int_eq(ascii_hexval(upper[ch]), 10 + ch);
    for (ch = -1; ch < 256; ch++)
        n += ascii_hexval(ch) >= 0;
    ck_assert_int_eq(n, 22);                    /* and nothing else */
}
END_TEST

/* ---- clock ------------------------------------------------------------ */

START_TEST(common_clocks_move)
{
    uint64_t t0 = clk_now_ns(), c0 = clk_cpu_ns();
    double m0 = clk_now_ms();
    long f0 = clk_minflt();
    volatile unsigned long spin = 0;
    size_t i, pg = (size_t)sysconf(_SC_PAGESIZE);
    char *p;

    while (clk_cpu_ns() == c0)                  /* some CPU time passes */
        spin++;
    ck_assert_uint_gt(clk_now_ns(), t0);
    ck_assert(clk_now_ms() >= m0);
    /* 64 fresh pages written: at least 64 minor faults more */
    p = mmap(NULL, 64 * pg, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(p != MAP_FAILED);
    madvise(p, 64 * pg, MADV_NOHUGEPAGE);
    for (i = 0; i < 64; i++)
        p[i * pg] = 1;
    ck_assert_int_ge(clk_minflt() - f0, 64);
    munmap(p, 64 * pg);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("common");
    TCase *tf = tcase_create("fileio");
    TCase *tm = tcase_create("misc");
    SRunner *sr;
    int failed;

    tcase_add_test(tf, common_read_file_exact_limit);
    tcase_add_test(tf, common_read_file_empty);
    tcase_add_test(tf, common_read_file_errors);
    tcase_add_test(tf, common_read_file_unknown_size);
    suite_add_tcase(s, tf);

    tcase_add_test(tm, common_hexval);
    tcase_add_test(tm, common_clocks_move);
    suite_add_tcase(s, tm);

    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
