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
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ascii.h"
#include "clock.h"
#include "errmsg.h"
#include "fileio.h"
#include "support.h"

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

/* mkdir -p: parents made, an existing folder fine, a file in the way and
 * an over-long path refused. */
START_TEST(common_mkdir_p)
{
    char dir[] = "/tmp/check_common_dir_XXXXXX", path[256], big[5000];
    struct stat st;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a/b/c", dir);
    ck_assert_int_eq(fio_mkdir_p(path), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(fio_mkdir_p(path), 0);             /* exists: fine */
    snprintf(path, sizeof path, "%s/f", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/f/g", dir);
    ck_assert_int_eq(fio_mkdir_p(path), -ENOTDIR);      /* a file's child */
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(fio_mkdir_p(big), -ENAMETOOLONG);
    ck_assert_int_eq(fio_mkdir_p(""), -ENAMETOOLONG);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(path), 0);
}
END_TEST

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

/* ---- errmsg ----------------------------------------------------------- */

START_TEST(common_distance_and_near)
{
    static const char *const words[] = { "workers", "port", "routes" };
    emsg_near_t n;
    size_t i;

    ck_assert_uint_eq(emsg_distance("", ""), 0);
    ck_assert_uint_eq(emsg_distance("kitten", "sitting"), 3);
    ck_assert_uint_eq(emsg_distance("wrokers", "workers"), 2);
    ck_assert_uint_eq(emsg_distance("abc", ""), 3);
    ck_assert_uint_eq(emsg_distance("x", "0123456789012345678901234567890"
                                    "123456789012345678901234567890123"),
                      SIZE_MAX);                /* 64 bytes: far */
    emsg_near_init(&n, "wrokers");
    for (i = 0; i < 3; i++)
        emsg_near_try(&n, words[i]);
    ck_assert_str_eq(emsg_near_result(&n), "workers");
    emsg_near_init(&n, "zzzzzz");
    for (i = 0; i < 3; i++)
        emsg_near_try(&n, words[i]);
    ck_assert_ptr_null(emsg_near_result(&n));  /* too far from any */
    emsg_near_init(&n, "prt");                  /* short: 2 edits allowed */
    emsg_near_try(&n, words[1]);
    ck_assert_str_eq(emsg_near_result(&n), "port");
}
END_TEST

/* emsg_describe() of the JSON text `json`. */
static void
described_as(const char *json, const char *want)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    char buf[256];

    ck_assert_ptr_nonnull(v);
    emsg_describe(v, buf, sizeof buf);
    ck_assert_str_eq(buf, want);
    json_decref(v);
}

START_TEST(common_describe)
{
    char buf[8];
    json_t *v;

    described_as("{}", "an object");
    described_as("[]", "an empty array");
    described_as("[1]", "an array of 1 item");
    described_as("[1, 2]", "an array of 2 items");
    described_as("\"ten\"", "the string \"ten\"");
    described_as("\"a\\nb\\u001b\"", "the string \"a\\nb\\x1b\"");
    described_as("\"0123456789012345678901234567890123456789xyz\"",
                  "the string \"0123456789012345678901234567890123456789"
                  "...\"");
    described_as("-7", "-7");
    described_as("4.0", "4.0");
    described_as("1.5", "1.5");
    described_as("1e300", "1.0000000000000001e+300");
    described_as("true", "true");
    described_as("false", "false");
    described_as("null", "null");
    v = json_string("a long string");           /* cut, still terminated */
    emsg_describe(v, buf, sizeof buf);
    ck_assert_str_eq(buf, "the str");
    json_decref(v);
}
END_TEST

START_TEST(common_expected_wording)
{
    char buf[64];

    emsg_expect_int(buf, sizeof buf, 1, 256);
    ck_assert_str_eq(buf, "an integer from 1 to 256");
    emsg_expect_int(buf, sizeof buf, 0, LONG_MAX);
    ck_assert_str_eq(buf, "an integer >= 0");
    emsg_expect_number(buf, sizeof buf, 0, 0, 1);
    ck_assert_str_eq(buf, "a number from 0 to 1");
    emsg_expect_number(buf, sizeof buf, 0, 1, 1000);
    ck_assert_str_eq(buf, "a number > 0 and <= 1000");
}
END_TEST

START_TEST(common_document_messages)
{
    static const char text[] = "{\"a\": {\"bb\": 1}}";
    emsg_src_t src = { "f.json", text, sizeof text - 1, NULL, 0 };
    char err[256];
    json_t *root = NULL, *v;

    src.err = err;
    src.errlen = sizeof err;
    ck_assert_int_eq(emsg_parse_object(&src, "test file", "an object",
                                       &root), 0);
    v = json_object_get(json_object_get(root, "a"), "bb");
    ck_assert_int_eq(emsg_bad_value(&src, "/a/bb", "a string", v), -EINVAL);
    ck_assert_str_eq(err, "f.json:1:14: field 'a.bb': expected a string, "
                     "found 1");
    ck_assert_int_eq(emsg_unknown_key(&src, "/a/bb", "b", "hint"), -EINVAL);
    ck_assert_str_eq(err, "f.json:1:8: field 'a.bb': unknown key, did you "
                     "mean 'b'?");
    emsg_unknown_key(&src, "/a/bb", NULL, "see the docs");
    ck_assert_str_eq(err, "f.json:1:8: field 'a.bb': unknown key (see the "
                     "docs)");
    ck_assert_int_eq(emsg_oom(&src), -ENOMEM);
    ck_assert_str_eq(err, "f.json: out of memory");
    ck_assert_int_eq(emsg_read_error(err, sizeof err, "g.json", "test file",
                                     -ENOENT), -ENOENT);
    ck_assert_str_eq(err, "g.json: cannot read test file: No such file or "
                     "directory");
    json_decref(root);
    src.text = "[1]";
    src.len = 3;
    ck_assert_int_eq(emsg_parse_object(&src, "test file", "an object",
                                       &root), -EINVAL);
    ck_assert_ptr_null(root);
    ck_assert_str_eq(err, "f.json:1:1: expected an object, found an array "
                     "of 1 item");
    src.text = " \n";
    src.len = 2;
    emsg_parse_object(&src, "test file", "an object", &root);
    ck_assert_str_eq(err, "f.json: empty test file, expected an object");
    src.text = "{\"a\" 1}";
    src.len = 7;
    emsg_parse_object(&src, "test file", "an object", &root);
    ck_assert_str_eq(err, "f.json:1:6: invalid JSON: ':' expected near "
                     "'1'");
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("common");
    TCase *tf = tcase_create("fileio");
    TCase *tm = tcase_create("misc");
    TCase *te = tcase_create("errmsg");

    tcase_add_test(tf, common_read_file_exact_limit);
    tcase_add_test(tf, common_read_file_empty);
    tcase_add_test(tf, common_read_file_errors);
    tcase_add_test(tf, common_read_file_unknown_size);
    tcase_add_test(tf, common_mkdir_p);
    suite_add_tcase(s, tf);

    tcase_add_test(tm, common_hexval);
    tcase_add_test(tm, common_clocks_move);
    suite_add_tcase(s, tm);

    tcase_add_test(te, common_distance_and_near);
    tcase_add_test(te, common_describe);
    tcase_add_test(te, common_expected_wording);
    tcase_add_test(te, common_document_messages);
    suite_add_tcase(s, te);

    return ts_run_suite(s);
}
