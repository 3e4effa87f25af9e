/*
 * check_config.c -- unit tests for server/config.c and server/jsonpos.c:
 * defaults, every flag and config key, the command line overriding the
 * file, the exact error messages (flag names, file:line:column, field),
 * --help/--version, cfg_to_json() round trips, policy labels, and
 * jpos_find() on nested paths, escaped keys, arrays and tricky strings.
 * Run from the repository root (fixtures: tests/fixtures/config/).
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "jsonpos.h"

#define FIX "tests/fixtures/config/"

static cfg_t cfg;                           /* fresh defaults every test */
static char err[1024];

static void
setup(void)
{
    cfg_defaults(&cfg);
    memset(err, 0, sizeof err);
}

static void
teardown(void)
{
    cfg_free(&cfg);
}

/*
 * Parse "cowlab" followed by the NULL-terminated arguments into cfg.
 * The strings are copied, since getopt wants char **.
 */
static int
parse(int *exit_now, ...)
{
    char *argv[64];
    int argc = 0, rc, i;
    const char *a;
    va_list ap;

    argv[argc++] = strdup("cowlab");
    va_start(ap, exit_now);
    while ((a = va_arg(ap, const char *)) != NULL && argc < 63)
        argv[argc++] = strdup(a);
    va_end(ap);
    argv[argc] = NULL;
    rc = cfg_parse_args(&cfg, argc, argv, exit_now, err, sizeof err);
    for (i = 0; i < argc; i++)
        free(argv[i]);
    return rc;
}

#define PARSE_OK(...) do {                                              \
        int ex_ = -1;                                                   \
        ck_assert_msg(parse(&ex_, __VA_ARGS__, NULL) == 0, "%s", err);  \
        ck_assert_int_eq(ex_, 0);                                       \
    } while (0)

#define ASSERT_ERR(sub) \
    ck_assert_msg(strstr(err, (sub)) != NULL, "'%s' not in '%s'", (sub), err)

/* A file under /tmp holding text; the caller frees the returned path. */
static char *
tmp_file(const char *text)
{
    char *path = strdup("/tmp/check_config_XXXXXX");
    int fd = mkstemp(path);
    size_t n = strlen(text);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

/* ---- defaults and parsing ---- */

START_TEST(config_defaults)
{
    ck_assert_ptr_eq(cfg.config_path, NULL);
    ck_assert_ptr_eq(cfg.workload_path, NULL);
    ck_assert(cfg.scale == 1.0);
    ck_assert_int_eq(cfg.workers, 4);
    ck_assert_str_eq(cfg.host, "127.0.0.1");
    ck_assert_int_eq(cfg.port, 8000);
    ck_assert_int_eq(cfg.gc_enabled, 1);
    ck_assert_int_eq(cfg.gc_threshold[0], 700);
    ck_assert_int_eq(cfg.gc_threshold[1], 10);
    ck_assert_int_eq(cfg.gc_threshold[2], 10);
    ck_assert_int_eq(cfg.freeze, 0);
    ck_assert_int_eq(cfg.immortal, 0);
    ck_assert_int_eq(cfg.lazy, 0);
    ck_assert_int_eq(cfg.exit_policy, CFG_EXIT_FINALIZE);
    ck_assert_int_eq(cfg.max_requests, 0);
    ck_assert_int_eq(cfg.max_requests_jitter, 0);
    ck_assert(cfg.timeout_s == 30);
    ck_assert(cfg.graceful_timeout_s == 30);
    ck_assert_uint_eq(cfg.sample_ms, 250);
    ck_assert(cfg.duration_s == 0);
    ck_assert_int_eq(cfg.requests, 0);
    ck_assert_ptr_eq(cfg.out_dir, NULL);
    ck_assert_ptr_eq(cfg.run_id, NULL);
    ck_assert_ptr_eq(cfg.policy_name, NULL);
    ck_assert_int_eq(cfg.type_census, 0);
    ck_assert(cfg.pagemap_gc_fraction == 0.01);
    ck_assert_uint_eq(cfg.max_header_bytes, 8192);
    ck_assert_uint_eq(cfg.max_url_bytes, 4096);
    ck_assert_uint_eq(cfg.max_body_bytes, 1048576);
    ck_assert_uint_eq(cfg.header_timeout_ms, 10000);
    ck_assert_uint_eq(cfg.keepalive_timeout_ms, 5000);
    ck_assert_uint_eq(cfg.max_connections, 1000);
    ck_assert_int_eq(cfg.check_config, 0);
    ck_assert_int_eq(cfg.quiet, 0);
}
END_TEST

START_TEST(config_no_args_keeps_defaults)
{
    int ex = -1;

    ck_assert_int_eq(parse(&ex, NULL), 0);
    ck_assert_int_eq(ex, 0);
    ck_assert_int_eq(cfg.workers, 4);
    ck_assert_ptr_eq(cfg.config_path, NULL);
}
END_TEST

START_TEST(config_every_flag_parsed)
{
    PARSE_OK("--workload", "wl.json", "--scale", "0.5", "--workers", "7",
             "--host", "::1", "--port", "0", "--gc", "off",
             "--gc-threshold", "1000,5,0", "--freeze", "--immortal",
             "--lazy", "--exit", "skip", "--max-requests", "500",
             "--max-requests-jitter", "20", "--timeout", "0",
             "--graceful-timeout", "2.5", "--sample-ms", "10",
             "--duration", "90", "--requests", "12345", "--out", "res/x",
             "--run-id", "r_1.a", "--policy-name", "p=1", "--type-census",
             "--pagemap-gc-fraction", "1", "--limit-header-bytes", "1024",
             "--limit-url-bytes", "512", "--limit-body-bytes", "0",
             "--header-timeout-ms", "1", "--keepalive-timeout-ms", "0",
             "--max-connections", "2", "--check-config", "--quiet");
    ck_assert_str_eq(cfg.workload_path, "wl.json");
    ck_assert(cfg.scale == 0.5);
    ck_assert_int_eq(cfg.workers, 7);
    ck_assert_str_eq(cfg.host, "::1");
    ck_assert_int_eq(cfg.port, 0);
    ck_assert_int_eq(cfg.gc_enabled, 0);
    ck_assert_int_eq(cfg.gc_threshold[0], 1000);
    ck_assert_int_eq(cfg.gc_threshold[1], 5);
    ck_assert_int_eq(cfg.gc_threshold[2], 0);
    ck_assert_int_eq(cfg.freeze, 1);
    ck_assert_int_eq(cfg.immortal, 1);
    ck_assert_int_eq(cfg.lazy, 1);
    ck_assert_int_eq(cfg.exit_policy, CFG_EXIT_SKIP);
    ck_assert_int_eq(cfg.max_requests, 500);
    ck_assert_int_eq(cfg.max_requests_jitter, 20);
    ck_assert(cfg.timeout_s == 0);
    ck_assert(cfg.graceful_timeout_s == 2.5);
    ck_assert_uint_eq(cfg.sample_ms, 10);
    ck_assert(cfg.duration_s == 90);
    ck_assert_int_eq(cfg.requests, 12345);
    ck_assert_str_eq(cfg.out_dir, "res/x");
    ck_assert_str_eq(cfg.run_id, "r_1.a");
    ck_assert_str_eq(cfg.policy_name, "p=1");
    ck_assert_int_eq(cfg.type_census, 1);
    ck_assert(cfg.pagemap_gc_fraction == 1.0);
    ck_assert_uint_eq(cfg.max_header_bytes, 1024);
    ck_assert_uint_eq(cfg.max_url_bytes, 512);
    ck_assert_uint_eq(cfg.max_body_bytes, 0);
    ck_assert_uint_eq(cfg.header_timeout_ms, 1);
    ck_assert_uint_eq(cfg.keepalive_timeout_ms, 0);
    ck_assert_uint_eq(cfg.max_connections, 2);
    ck_assert_int_eq(cfg.check_config, 1);
    ck_assert_int_eq(cfg.quiet, 1);
}
END_TEST

START_TEST(config_short_and_inline_forms)
{
    PARSE_OK("-w5", "-q", "--port=9100", "--gc=off", "-c",
             FIX "override.json");
    ck_assert_int_eq(cfg.workers, 5);
    ck_assert_int_eq(cfg.quiet, 1);
    ck_assert_int_eq(cfg.port, 9100);
    ck_assert_int_eq(cfg.gc_enabled, 0);
    ck_assert_str_eq(cfg.config_path, FIX "override.json");
}
END_TEST

START_TEST(config_last_flag_wins)
{
    PARSE_OK("-w", "2", "--workers", "3", "--freeze", "--no-freeze");
    ck_assert_int_eq(cfg.workers, 3);
    ck_assert_int_eq(cfg.freeze, 0);
}
END_TEST

START_TEST(config_file_every_key)
{
    ck_assert_msg(cfg_load_file(&cfg, FIX "full.json", err, sizeof err)
                  == 0, "%s", err);
    ck_assert_str_eq(cfg.config_path, FIX "full.json");
    ck_assert_str_eq(cfg.workload_path, "workloads/api.json");
    ck_assert(cfg.scale == 2.5);
    ck_assert_int_eq(cfg.workers, 16);
    ck_assert_str_eq(cfg.host, "0.0.0.0");
    ck_assert_int_eq(cfg.port, 0);
    ck_assert_int_eq(cfg.gc_enabled, 0);
    ck_assert_int_eq(cfg.gc_threshold[0], 7000);
    ck_assert_int_eq(cfg.gc_threshold[1], 20);
    ck_assert_int_eq(cfg.gc_threshold[2], 30);
    ck_assert_int_eq(cfg.freeze, 1);
    ck_assert_int_eq(cfg.immortal, 1);
    ck_assert_int_eq(cfg.lazy, 1);
    ck_assert_int_eq(cfg.exit_policy, CFG_EXIT_SKIP);
    ck_assert_int_eq(cfg.python, 311);
    ck_assert_int_eq(cfg.prefork_gc, CFG_PREFORK_COLLECTED);
    ck_assert_int_eq(cfg.max_requests, 1000);
    ck_assert_int_eq(cfg.max_requests_jitter, 50);
    ck_assert(cfg.timeout_s == 12.5);
    ck_assert(cfg.graceful_timeout_s == 7);
    ck_assert_uint_eq(cfg.sample_ms, 100);
    ck_assert(cfg.duration_s == 60);
    ck_assert_int_eq(cfg.requests, 200000);
    ck_assert_str_eq(cfg.out_dir, "results/full");
    ck_assert_str_eq(cfg.run_id, "run-1");
    ck_assert_str_eq(cfg.policy_name, "my+policy");
    ck_assert_int_eq(cfg.type_census, 1);
    ck_assert(cfg.pagemap_gc_fraction == 0.5);
    ck_assert_uint_eq(cfg.max_header_bytes, 16384);
    ck_assert_uint_eq(cfg.max_url_bytes, 2048);
    ck_assert_uint_eq(cfg.max_body_bytes, 0);
    ck_assert_uint_eq(cfg.header_timeout_ms, 2000);
    ck_assert_uint_eq(cfg.keepalive_timeout_ms, 0);
    ck_assert_uint_eq(cfg.max_connections, 64);
    ck_assert_int_eq(cfg.quiet, 1);
}
END_TEST

/* -c after the flags it is overridden by: the flags still win. */
START_TEST(config_cli_overrides_file_when_c_last)
{
    PARSE_OK("--workers", "2", "--gc", "on", "--no-freeze", "--out", "",
             "-c", FIX "override.json");
    ck_assert_int_eq(cfg.workers, 2);           /* flag */
    ck_assert_int_eq(cfg.gc_enabled, 1);        /* flag */
    ck_assert_int_eq(cfg.freeze, 0);            /* flag */
    ck_assert_ptr_eq(cfg.out_dir, NULL);        /* flag: '' unsets */
    ck_assert_int_eq(cfg.port, 9000);           /* file */
    ck_assert(cfg.scale == 3);                  /* file */
}
END_TEST

START_TEST(config_cli_overrides_file_when_c_first)
{
    PARSE_OK("--config", FIX "override.json", "--port", "9999", "-w", "1");
    ck_assert_int_eq(cfg.workers, 1);
    ck_assert_int_eq(cfg.port, 9999);
    ck_assert_int_eq(cfg.gc_enabled, 0);        /* file */
    ck_assert_int_eq(cfg.freeze, 1);            /* file */
    ck_assert_str_eq(cfg.out_dir, "results/from-file");
}
END_TEST

START_TEST(config_file_nulls_and_bool_gc)
{
    PARSE_OK("--workload", "x.json", "--out", "o", "--gc", "off", "-c",
             FIX "nulls.json");
    ck_assert_str_eq(cfg.workload_path, "x.json");  /* the flag wins */
    ck_assert_str_eq(cfg.out_dir, "o");
    ck_assert_int_eq(cfg.gc_enabled, 0);
    cfg_free(&cfg);
    cfg_defaults(&cfg);
    cfg.out_dir = strdup("before");
    ck_assert_int_eq(cfg_load_file(&cfg, FIX "nulls.json", err, sizeof err),
                     0);
    ck_assert_ptr_eq(cfg.out_dir, NULL);            /* null unsets */
    ck_assert_int_eq(cfg.gc_enabled, 1);            /* "gc": true */
}
END_TEST

START_TEST(config_file_cli_only_keys_ignored)
{
    ck_assert_int_eq(cfg_load_file(&cfg, FIX "cli_only.json", err,
                                   sizeof err), 0);
    ck_assert_int_eq(cfg.workers, 2);
    ck_assert_int_eq(cfg.check_config, 0);
    ck_assert_str_eq(cfg.config_path, FIX "cli_only.json");
}
END_TEST

/* ---- config file errors ---- */

/* Load fixture `name`, expect rc and a message containing `sub`. */
static void
load_fails(const char *name, int rc, const char *sub)
{
    char path[256];

    snprintf(path, sizeof path, FIX "%s", name);
    ck_assert_int_eq(cfg_load_file(&cfg, path, err, sizeof err), rc);
    ASSERT_ERR(sub);
}

START_TEST(config_missing_file)
{
    load_fails("no_such.json", -ENOENT,
               FIX "no_such.json: cannot read config file: "
               "No such file or directory");
}
END_TEST

START_TEST(config_directory_is_error)
{
    load_fails("", -EISDIR, "Is a directory");
}
END_TEST

START_TEST(config_empty_file)
{
    load_fails("empty.json", -EINVAL, FIX "empty.json: empty config file");
    load_fails("blank.json", -EINVAL, FIX "blank.json: empty config file");
}
END_TEST

START_TEST(config_invalid_json_line_col)
{
    load_fails("invalid.json", -EINVAL,
               FIX "invalid.json:4:11: invalid JSON: '}' expected");
}
END_TEST

START_TEST(config_duplicate_key)
{
    load_fails("duplicate.json", -EINVAL,
               FIX "duplicate.json:3:13: invalid JSON: duplicate object key");
}
END_TEST

START_TEST(config_wrong_type_position)
{
    load_fails("wrong_type.json", -EINVAL,
               FIX "wrong_type.json:4:14: field 'scale': expected a number "
               "> 0 and <= 1000, found the string \"big\"");
}
END_TEST

START_TEST(config_out_of_range)
{
    load_fails("out_of_range.json", -EINVAL,
               FIX "out_of_range.json:2:16: field 'workers': expected an "
               "integer from 1 to 256, found 300");
}
END_TEST

START_TEST(config_unknown_key)
{
    load_fails("unknown_key.json", -EINVAL,
               FIX "unknown_key.json:3:5: field 'wrokers': unknown key, "
               "did you mean 'workers'?");
}
END_TEST

START_TEST(config_threshold_element)
{
    load_fails("threshold_element.json", -EINVAL,
               FIX "threshold_element.json:2:29: field 'gc_threshold[2]': "
               "expected an integer >= 0, found the string \"ten\"");
}
END_TEST

START_TEST(config_escaped_key_position)
{
    load_fails("escaped_key.json", -EINVAL,
               FIX "escaped_key.json:1:18: field 'workers': expected an "
               "integer from 1 to 256, found 0");
}
END_TEST

START_TEST(config_not_an_object)
{
    load_fails("not_object.json", -EINVAL,
               FIX "not_object.json:1:1: expected a JSON object of "
               "settings, found an array");
}
END_TEST

/* Inline files: one bad value each; message substrings. */
static const struct {
    const char *text, *msg;
} bad_values[] = {
    { "{\"workers\": 4.0}", ":1:13: field 'workers': expected an integer "
      "from 1 to 256, found 4.0" },
    { "{\"workers\": \"4\"}", "found the string \"4\"" },
    { "{\"port\": 65536}", "field 'port': expected an integer from 0 to "
      "65535, found 65536" },
    { "{\"scale\": 0}", "field 'scale': expected a number > 0 and <= 1000, "
      "found 0" },
    { "{\"scale\": 1000.5}", "found 1000.5" },
    { "{\"gc\": \"maybe\"}", "field 'gc': expected \"on\" or \"off\", found "
      "the string \"maybe\"" },
    { "{\"gc_threshold\": [1, 2]}", "field 'gc_threshold': expected an "
      "array of three integers >= 0, found an array of 2 items" },
    { "{\"gc_threshold\": \"700,10,10\"}", "field 'gc_threshold': expected "
      "an array" },
    { "{\"gc_threshold\": [1, -2, 3]}", ":1:22: field 'gc_threshold[1]': "
      "expected an integer >= 0, found -2" },
    { "{\"freeze\": 1}", "field 'freeze': expected true or false, found 1" },
    { "{\"exit\": \"fast\"}", "field 'exit': expected \"finalize\" or "
      "\"skip\"" },
    { "{\"python\": 3}", ":1:12: field 'python': expected \"3.11\" or "
      "\"3.12\", found 3" },
    { "{\"prefork_gc\": \"lazy\"}", "field 'prefork_gc': expected "
      "\"import\" or \"collected\"" },
    { "{\"out\": 5}", "field 'out': expected a directory name or null, "
      "found 5" },
    { "{\"host\": \"\"}", "field 'host': expected a host name or address" },
    { "{\"host\": null}", "field 'host': expected a host name" },
    { "{\"run_id\": \"a/b\"}", "field 'run_id': expected letters" },
    { "{\"run_id\": \"..\"}", "field 'run_id': expected letters" },
    { "{\"policy_name\": \"a,b\"}", "field 'policy_name': expected" },
    { "{\"sample_ms\": 9}", "field 'sample_ms': expected an integer from "
      "10 to 3600000, found 9" },
    { "{\"pagemap_gc_fraction\": 1.5}", "field 'pagemap_gc_fraction': "
      "expected a number >= 0 and <= 1, found 1.5" },
    { "{\"max_requests\": -1}", "field 'max_requests': expected an integer "
      ">= 0, found -1" },
    { "{\"timeout\": null}", "field 'timeout': expected a number >= 0 and "
      "<= 86400, found null" },
    { "{\"check_config\": \"yes\"}", "field 'check_config': expected true "
      "or false" },
    { "{\"config\": 3}", "field 'config': expected a file name or null" },
    { "{\"workers\": {\"n\": 4}}", "found an object" },
    { "{\"gc-threshold\": [1, 2, 3]}", ":1:2: field 'gc-threshold': "
      "unknown key, did you mean 'gc_threshold'?" },
    { "{\"a/b~c\": 1}", ":1:2: field 'a/b~c': unknown key" },
};

START_TEST(config_file_bad_value)
{
    char *path = tmp_file(bad_values[_i].text);
    char *out = strdup("keep");
    json_t *before, *after;

    cfg.workers = 9;
    cfg.out_dir = out;
    before = cfg_to_json(&cfg);
    ck_assert_int_eq(cfg_load_file(&cfg, path, err, sizeof err), -EINVAL);
    ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "%s", err);
    ASSERT_ERR(bad_values[_i].msg);
    /* all or nothing: nothing changed */
    after = cfg_to_json(&cfg);
    ck_assert(json_equal(before, after));
    ck_assert_ptr_eq(cfg.out_dir, out);
    ck_assert_ptr_eq(cfg.config_path, NULL);
    json_decref(before);
    json_decref(after);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(config_file_error_via_args)
{
    int ex = -1;

    ck_assert_int_lt(parse(&ex, "-w", "3", "-c", FIX "out_of_range.json",
                           NULL), 0);
    ASSERT_ERR("out_of_range.json:2:16: field 'workers'");
    ck_assert_int_lt(parse(&ex, "-c", FIX "no_such.json", NULL), 0);
    ASSERT_ERR("no_such.json: cannot read config file");
    ck_assert_int_eq(cfg.workers, 4);           /* untouched on error */
}
END_TEST

/* ---- command-line errors ---- */

static const struct {
    const char *flag, *value, *msg;
} bad_flags[] = {
    { "--workers", "abc", "--workers: expected an integer from 1 to 256, "
      "got 'abc'" },
    { "--workers", "0", "--workers: expected an integer from 1 to 256, "
      "got '0'" },
    { "-w", "257", "--workers: expected an integer from 1 to 256, "
      "got '257'" },
    { "--workers", " 4", "got ' 4'" },
    { "--workers", "4x", "got '4x'" },
    { "--workers", "", "got ''" },
    { "--port", "-1", "--port: expected an integer from 0 to 65535" },
    { "--scale", "0", "--scale: expected a number > 0 and <= 1000, "
      "got '0'" },
    { "--scale", "nan", "--scale: expected a number" },
    { "--scale", "inf", "--scale: expected a number" },
    { "--scale", "1e400", "--scale: expected a number" },
    { "--gc", "yes", "--gc: expected on or off, got 'yes'" },
    { "--gc-threshold", "700,10", "--gc-threshold: expected three "
      "integers >= 0 as A,B,C, got '700,10'" },
    { "--gc-threshold", "700,10,10,1", "--gc-threshold: expected three" },
    { "--gc-threshold", "700,-1,10", "--gc-threshold: expected three" },
    { "--gc-threshold", "700,,10", "--gc-threshold: expected three" },
    { "--exit", "now", "--exit: expected finalize or skip, got 'now'" },
    { "--python", "3.10", "--python: expected 3.11 or 3.12, got '3.10'" },
    { "--python", "", "--python: expected 3.11 or 3.12, got ''" },
    { "--prefork-gc", "frozen", "--prefork-gc: expected import or "
      "collected, got 'frozen'" },
    { "--max-requests", "-5", "--max-requests: expected an integer >= 0" },
    { "--max-requests-jitter", "x", "--max-requests-jitter: expected" },
    { "--timeout", "-1", "--timeout: expected a number >= 0 and <= 86400" },
    { "--graceful-timeout", "1d", "--graceful-timeout: expected" },
    { "--sample-ms", "5", "--sample-ms: expected an integer from 10 to " },
    { "--duration", "-0.5", "--duration: expected" },
    { "--requests", "1.5", "--requests: expected an integer >= 0" },
    { "--run-id", "a b", "--run-id: expected letters" },
    { "--run-id", ".hidden", "--run-id: expected letters" },
    { "--policy-name", "x\"y", "--policy-name: expected letters" },
    { "--host", "", "--host: expected a host name or address" },
    { "--host", "a-very-long-host-name-that-does-not-fit-in-the-field-of-"
      "sixty-four", "--host: expected" },
    { "--pagemap-gc-fraction", "2", "--pagemap-gc-fraction: expected a "
      "number >= 0 and <= 1" },
    { "--limit-header-bytes", "100", "--limit-header-bytes: expected an "
      "integer from 256 to" },
    { "--limit-url-bytes", "big", "--limit-url-bytes: expected" },
    { "--limit-body-bytes", "-1", "--limit-body-bytes: expected" },
    { "--header-timeout-ms", "0", "--header-timeout-ms: expected an "
      "integer from 1 to 3600000" },
    { "--keepalive-timeout-ms", "x", "--keepalive-timeout-ms: expected" },
    { "--max-connections", "0", "--max-connections: expected" },
};

START_TEST(config_bad_flag_value)
{
    int ex = -1;

    ck_assert_int_eq(parse(&ex, bad_flags[_i].flag, bad_flags[_i].value,
                           NULL), -1);
    ASSERT_ERR(bad_flags[_i].msg);
    ck_assert_int_eq(ex, 0);
}
END_TEST

START_TEST(config_unknown_flag)
{
    int ex = -1;

    ck_assert_int_eq(parse(&ex, "--wokers", "3", NULL), -1);
    ASSERT_ERR("unknown or ambiguous option '--wokers' (did you mean "
               "'--workers'?)");
    ck_assert_int_eq(parse(&ex, "--bogus=1", NULL), -1);
    ASSERT_ERR("unknown or ambiguous option '--bogus'");
    ck_assert_int_eq(parse(&ex, "-x", NULL), -1);
    ASSERT_ERR("unknown option '-x'");
    ck_assert_int_eq(parse(&ex, "--max-requests", "1", "--max-r", "2",
                           NULL), -1);
    ASSERT_ERR("'--max-r'");                    /* ambiguous prefix */
    ck_assert_int_eq(parse(&ex, "--no-check-config", NULL), -1);
    ASSERT_ERR("'--no-check-config'");
}
END_TEST

START_TEST(config_missing_value)
{
    int ex = -1;

    ck_assert_int_eq(parse(&ex, "--workers", NULL), -1);
    ASSERT_ERR("--workers: missing value, expected an integer from 1 to "
               "256");
    ck_assert_int_eq(parse(&ex, "-c", NULL), -1);
    ASSERT_ERR("--config: missing value");
}
END_TEST

START_TEST(config_flag_takes_no_value)
{
    int ex = -1;

    ck_assert_int_eq(parse(&ex, "--freeze=yes", NULL), -1);
    ASSERT_ERR("--freeze: takes no value, got '--freeze=yes'");
    ck_assert_int_eq(parse(&ex, "--help=1", NULL), -1);
    ASSERT_ERR("--help: takes no value");
}
END_TEST

START_TEST(config_positional_arg)
{
    int ex = -1;

    ck_assert_int_eq(parse(&ex, "-w", "2", "extra", NULL), -1);
    ASSERT_ERR("unexpected argument 'extra'");
    ck_assert_int_eq(parse(&ex, "--", "-w", NULL), -1);
    ASSERT_ERR("unexpected argument '-w'");
    ck_assert_int_eq(cfg.workers, 4);
}
END_TEST

START_TEST(config_empty_value_unsets)
{
    PARSE_OK("--out", "x", "--run-id", "r", "--workload", "w.json");
    ck_assert_str_eq(cfg.out_dir, "x");
    PARSE_OK("--out", "", "--run-id", "", "--workload", "",
             "--policy-name", "");
    ck_assert_ptr_eq(cfg.out_dir, NULL);
    ck_assert_ptr_eq(cfg.run_id, NULL);
    ck_assert_ptr_eq(cfg.workload_path, NULL);
    ck_assert_ptr_eq(cfg.policy_name, NULL);
}
END_TEST

/* ---- --help, --version ---- */

/* Run parse() with stdout sent to a file; return what was printed. */
static char *
capture_parse(int *rc, int *ex, const char *flag)
{
    char path[] = "/tmp/check_config_out_XXXXXX";
    char *buf = calloc(1, 65536);
    int fd = mkstemp(path), saved;
    ssize_t n;

    ck_assert_int_ge(fd, 0);
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    *rc = parse(ex, flag, "--bogus-after", NULL);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    n = pread(fd, buf, 65535, 0);
    ck_assert_int_gt(n, 0);
    close(fd);
    unlink(path);
    return buf;
}

START_TEST(config_help_sets_exit_now)
{
    const char *want[] = {
        "usage: cowlab", "-w, --workers N", "[4]", "--gc-threshold A,B,C",
        "[700,10,10]", "--exit finalize|skip", "--max-requests N",
        "--limit-body-bytes N", "[1048576]", "--check-config", "--version",
        "SIGTERM", "--graceful-timeout", "SIGINT, SIGQUIT", "SIGHUP",
        "SIGKILL", "respawn", "\"gc_threshold\"",
    };
    int rc, ex = -1;
    size_t i;
    char *out = capture_parse(&rc, &ex, "--help");
    char *line;

    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(ex, 1);
    for (i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(out, want[i]) != NULL, "no '%s' in help",
                      want[i]);
    for (line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
        ck_assert_msg(strlen(line) <= 79, "help line too long: %s", line);
    free(out);
    out = capture_parse(&rc, &ex, "-h");
    ck_assert_int_eq(ex, 1);
    free(out);
}
END_TEST

START_TEST(config_version_sets_exit_now)
{
    int rc, ex = -1;
    char *out = capture_parse(&rc, &ex, "--version");

    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(ex, 1);
    ck_assert_str_eq(out, "cowlab " COWLAB_VERSION "\n");
    free(out);
    out = capture_parse(&rc, &ex, "-V");
    ck_assert_int_eq(ex, 1);
    free(out);
}
END_TEST

/* ---- cfg_to_json ---- */

START_TEST(config_to_json_fields)
{
    json_t *j = cfg_to_json(&cfg), *t;

    ck_assert_ptr_ne(j, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "workers")), 4);
    ck_assert_str_eq(json_string_value(json_object_get(j, "host")),
                     "127.0.0.1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "gc")), "on");
    ck_assert_str_eq(json_string_value(json_object_get(j, "exit")),
                     "finalize");
    t = json_object_get(j, "gc_threshold");
    ck_assert(json_is_array(t) && json_array_size(t) == 3);
    ck_assert_int_eq(json_integer_value(json_array_get(t, 0)), 700);
    ck_assert(json_is_null(json_object_get(j, "out")));
    ck_assert(json_is_null(json_object_get(j, "workload")));
    ck_assert(json_is_null(json_object_get(j, "config")));
    ck_assert(json_is_false(json_object_get(j, "freeze")));
    ck_assert(json_real_value(json_object_get(j, "scale")) == 1.0);
    ck_assert_int_eq(json_integer_value(json_object_get(j,
                     "limit_body_bytes")), 1048576);
    ck_assert_str_eq(json_string_value(json_object_get(j, "python")),
                     "3.12");
    ck_assert_str_eq(json_string_value(json_object_get(j, "prefork_gc")),
                     "import");
    ck_assert_int_eq(json_object_size(j), 35);  /* one key per setting */
    json_decref(j);
}
END_TEST

START_TEST(config_to_json_round_trip)
{
    cfg_t back;
    json_t *j, *jb;
    char *path;
    char *text;

    ck_assert_int_eq(cfg_load_file(&cfg, FIX "full.json", err, sizeof err),
                     0);
    cfg.check_config = 1;               /* a command-line action */
    cfg.scale = 0.1;                    /* not exact in binary */
    j = cfg_to_json(&cfg);
    ck_assert_ptr_ne(j, NULL);
    text = json_dumps(j, JSON_INDENT(2));
    path = tmp_file(text);
    cfg_defaults(&back);
    ck_assert_msg(cfg_load_file(&back, path, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_str_eq(back.config_path, path);
    ck_assert_str_eq(back.workload_path, cfg.workload_path);
    ck_assert_str_eq(back.out_dir, cfg.out_dir);
    ck_assert_str_eq(back.run_id, cfg.run_id);
    ck_assert_str_eq(back.policy_name, cfg.policy_name);
    ck_assert_int_eq(back.check_config, 0);     /* ignored in a file */
    ck_assert(back.scale == 0.1);
    ck_assert_int_eq(back.gc_threshold[2], 30);
    ck_assert_uint_eq(back.max_connections, 64);
    /* Everything else is equal. */
    back.check_config = 1;
    free(back.config_path);
    back.config_path = strdup(cfg.config_path);
    jb = cfg_to_json(&back);
    ck_assert(json_equal(j, jb));
    json_decref(jb);
    cfg_free(&back);
    unlink(path);
    free(path);
    free(text);
    json_decref(j);
}
END_TEST

START_TEST(config_to_json_round_trip_defaults)
{
    cfg_t back;
    json_t *j = cfg_to_json(&cfg);
    char *text = json_dumps(j, 0);
    char *path = tmp_file(text);
    json_t *jb;

    cfg_defaults(&back);
    back.workers = 99;
    back.freeze = 1;
    back.out_dir = strdup("x");
    ck_assert_int_eq(cfg_load_file(&back, path, err, sizeof err), 0);
    free(back.config_path);
    back.config_path = NULL;
    jb = cfg_to_json(&back);
    ck_assert(json_equal(j, jb));
    ck_assert_ptr_eq(back.out_dir, NULL);
    json_decref(jb);
    cfg_free(&back);
    unlink(path);
    free(path);
    free(text);
    json_decref(j);
}
END_TEST

/* ---- cfg_policy_label ---- */

START_TEST(config_policy_label)
{
    char b[64];

    ck_assert_str_eq(cfg_policy_label(&cfg, b, sizeof b), "default");
    cfg.freeze = 1;
    ck_assert_str_eq(cfg_policy_label(&cfg, b, sizeof b), "freeze");
    cfg.immortal = 1;
    ck_assert_str_eq(cfg_policy_label(&cfg, b, sizeof b), "freeze+immortal");
    cfg.freeze = 0;
    ck_assert_str_eq(cfg_policy_label(&cfg, b, sizeof b), "immortal");
    cfg.immortal = 0;
    cfg.gc_enabled = 0;
    ck_assert_str_eq(cfg_policy_label(&cfg, b, sizeof b), "gc-off");
    cfg.gc_enabled = 1;
    cfg.gc_threshold[0] = 0;            /* gc.set_threshold(0) */
    ck_assert_str_eq(cfg_policy_label(&cfg, b, sizeof b), "gc-off");
    cfg.gc_threshold[0] = 7000;
    ck_assert_str_eq(cfg_policy_label(&cfg, b, sizeof b), "thr-7000-10-10");
    cfg.gc_threshold[0] = 700;
    cfg.lazy = 1;
    ck_assert_str_eq(cfg_policy_label(&cfg, b, sizeof b), "lazy");
    cfg.gc_enabled = 0;
    cfg.freeze = 1;
    ck_assert_str_eq(cfg_policy_label(&cfg, b, sizeof b),
                     "lazy+gc-off+freeze");
    cfg.policy_name = strdup("mine");
    ck_assert_str_eq(cfg_policy_label(&cfg, b, sizeof b), "mine");
    /* truncation stays NUL-terminated */
    ck_assert_str_eq(cfg_policy_label(&cfg, b, 3), "mi");
    ck_assert_str_eq(cfg_policy_label(&cfg, b, 0), "");
    free(cfg.policy_name);
    cfg.policy_name = NULL;
    ck_assert_str_eq(cfg_policy_label(&cfg, b, 6), "lazy+");
}
END_TEST

/* ---- jsonpos ---- */

/* jpos_find() must succeed with this line and column. */
static void
pos_is(const char *text, const char *path, int line, int col)
{
    int l = -1, c = -1;
    int rc = jpos_find(text, strlen(text), path, &l, &c);

    ck_assert_msg(rc == 0, "jpos_find(%s) = %d", path, rc);
    ck_assert_msg(l == line && c == col, "%s: got %d:%d, want %d:%d", path,
                  l, c, line, col);
}

static const char nested[] =
    "{\n"
    "  \"name\": \"api\",\n"
    "  \"routes\": [\n"
    "    {\"path\": \"/a\", \"reads\": 1},\n"
    "    {\"path\": \"/b\", \"reads\": 2, \"tags\": [\"x\", \"y\"]},\n"
    "    {\n"
    "      \"path\": \"/c\",\n"
    "      \"reads\": 3\n"
    "    }\n"
    "  ],\n"
    "  \"deep\": {\"a\": {\"b\": {\"c\": [[0, [1, 2]]]}}}\n"
    "}\n";

START_TEST(config_jpos_nested_paths)
{
    pos_is(nested, "", 1, 1);
    pos_is(nested, "/name", 2, 11);
    pos_is(nested, "/routes", 3, 13);
    pos_is(nested, "/routes/0", 4, 5);
    pos_is(nested, "/routes/0/reads", 4, 29);
    pos_is(nested, "/routes/1/tags/1", 5, 46);
    pos_is(nested, "/routes/2", 6, 5);
    pos_is(nested, "/routes/2/reads", 8, 16);
    pos_is(nested, "/deep/a/b/c", 11, 29);
    pos_is(nested, "/deep/a/b/c/0/1/1", 11, 38);
}
END_TEST

START_TEST(config_jpos_missing)
{
    int l = 0, c = 0;
    size_t n = strlen(nested);

    ck_assert_int_eq(jpos_find(nested, n, "/nope", &l, &c), -ENOENT);
    ck_assert_int_eq(jpos_find(nested, n, "/routes/3", &l, &c), -ENOENT);
    ck_assert_int_eq(jpos_find(nested, n, "/routes/01", &l, &c), -ENOENT);
    ck_assert_int_eq(jpos_find(nested, n, "/routes/-", &l, &c), -ENOENT);
    ck_assert_int_eq(jpos_find(nested, n, "/routes/x", &l, &c), -ENOENT);
    ck_assert_int_eq(jpos_find(nested, n, "/name/x", &l, &c), -ENOENT);
    ck_assert_int_eq(jpos_find(nested, n, "/routes/0/path/0", &l, &c),
                     -ENOENT);
    ck_assert_int_eq(jpos_find("{}", 2, "/a", &l, &c), -ENOENT);
    ck_assert_int_eq(jpos_find("[]", 2, "/0", &l, &c), -ENOENT);
    ck_assert_int_eq(jpos_find(nested, n, "name", &l, &c), -EINVAL);
    ck_assert_int_eq(jpos_find(nested, n, "/a~2b", &l, &c), -EINVAL);
    ck_assert_int_eq(jpos_find(nested, n, "/a~", &l, &c), -EINVAL);
    ck_assert_int_eq(jpos_find("{\"a\": [1, 2", 11, "/a/5", &l, &c),
                     -EINVAL);                  /* truncated text */
    ck_assert_int_eq(l, 0);                     /* untouched on error */
    ck_assert_int_eq(c, 0);
}
END_TEST

START_TEST(config_jpos_escaped_keys)
{
    const char *t =
        "{\"a\\\"b\": 1,\n"
        " \"c\\\\d\": 2,\n"
        " \"sl/ash\": 3, \"ti~lde\": 4,\n"
        " \"\\u0041\\u00e9\": 5, \"\\ud83d\\ude00\": 6, \"\\/x\": 7,\n"
        " \"\\n\": 8, \"\": 9}";

    pos_is(t, "/a\"b", 1, 10);
    pos_is(t, "/c\\d", 2, 10);
    pos_is(t, "/sl~1ash", 3, 12);
    pos_is(t, "/ti~0lde", 3, 25);
    pos_is(t, "/A\xc3\xa9", 4, 18);             /* "Aé" */
    pos_is(t, "/\xf0\x9f\x98\x80", 4, 37);      /* U+1F600 */
    pos_is(t, "/~1x", 4, 47);
    pos_is(t, "/\n", 5, 8);
    pos_is(t, "/", 5, 15);                      /* the empty key */
}
END_TEST

START_TEST(config_jpos_arrays)
{
    const char *t = "[10, [20, 21], {\"k\": [30]}, \"s\", [], {}, 60]";

    pos_is(t, "/0", 1, 2);
    pos_is(t, "/1", 1, 6);
    pos_is(t, "/1/1", 1, 11);
    pos_is(t, "/2/k/0", 1, 23);
    pos_is(t, "/3", 1, 29);
    pos_is(t, "/4", 1, 34);
    pos_is(t, "/5", 1, 38);
    pos_is(t, "/6", 1, 42);
}
END_TEST

START_TEST(config_jpos_strings_with_brackets)
{
    const char *t =
        "{\"a\": \"}]{[\\\"\", \"b\": [\"]\", \"[\", {\"x\": \"}\"}],\n"
        " \"c\": {\"k\": \"\\\\\"}, \"}\": 1, \"d\": 2}";

    pos_is(t, "/b/2/x", 1, 39);
    pos_is(t, "/c/k", 2, 13);
    pos_is(t, "/}", 2, 25);
    pos_is(t, "/d", 2, 33);
}
END_TEST

START_TEST(config_jpos_utf8_columns)
{
    /* columns count characters, as jansson's do */
    const char *t = "{\"\xc3\xa9\": [1, \"\xc3\xbc\xe2\x82\xac\", 2]}";

    pos_is(t, "/\xc3\xa9/2", 1, 17);
}
END_TEST

START_TEST(config_jpos_last_duplicate_wins)
{
    pos_is("{\"a\": 1, \"b\": {\"x\": 0}, \"a\": [5, 6]}", "/a/1", 1, 34);
}
END_TEST

START_TEST(config_jpos_key_position)
{
    const char *t = "{\n  \"outer\": {\n    \"bad key\" :  true\n  }\n}";
    int l, c;

    ck_assert_int_eq(jpos_find_key(t, strlen(t), "/outer/bad key", &l, &c),
                     0);
    ck_assert_int_eq(l, 3);
    ck_assert_int_eq(c, 5);
    pos_is(t, "/outer/bad key", 3, 18);
    ck_assert_int_eq(jpos_find_key("[1, 2]", 6, "/1", &l, &c), 0);
    ck_assert_int_eq(c, 5);                     /* an element: itself */
}
END_TEST

START_TEST(config_jpos_not_nul_terminated)
{
    const char t[] = { '[', '1', ',', '2', ']', '9', '9' };
    int l, c;

    ck_assert_int_eq(jpos_find(t, 5, "/1", &l, &c), 0);
    ck_assert_int_eq(c, 4);
    ck_assert_int_eq(jpos_find(t, 5, "/2", &l, &c), -ENOENT);
}
END_TEST

START_TEST(config_jpos_field_name)
{
    char b[64];

    ck_assert_int_eq(jpos_field_name("/routes/2/reads", b, sizeof b), 0);
    ck_assert_str_eq(b, "routes[2].reads");
    ck_assert_int_eq(jpos_field_name("", b, sizeof b), 0);
    ck_assert_str_eq(b, "");
    ck_assert_int_eq(jpos_field_name("/a~1b/0/0/c~0", b, sizeof b), 0);
    ck_assert_str_eq(b, "a/b[0][0].c~");
    ck_assert_int_eq(jpos_field_name("/routes/2/reads", b, 7), -ENOSPC);
    ck_assert_str_eq(b, "routes");
    ck_assert_int_eq(jpos_field_name("x", b, sizeof b), -EINVAL);
}
END_TEST

START_TEST(config_jpos_path_append)
{
    char b[17] = "";

    ck_assert_int_eq(jpos_path_append_key(b, sizeof b, "routes"), 0);
    ck_assert_int_eq(jpos_path_append_index(b, sizeof b, 12), 0);
    ck_assert_int_eq(jpos_path_append_key(b, sizeof b, "a/~"), 0);
    ck_assert_str_eq(b, "/routes/12/a~1~0");
    ck_assert_int_eq(jpos_path_append_key(b, sizeof b, "x"), -ENOSPC);
    ck_assert_int_eq(jpos_path_append_index(b, sizeof b, 1), -ENOSPC);
    ck_assert_str_eq(b, "/routes/12/a~1~0");
}
END_TEST

START_TEST(config_jpos_errorf)
{
    const char *t = "{\"routes\": [{\"reads\": -1}]}";
    size_t n = strlen(t);

    ck_assert_int_eq(jpos_errorf(err, sizeof err, "wl.json", t, n,
                                 "/routes/0/reads",
                                 "expected integer >= 0, found %d", -1),
                     -EINVAL);
    ck_assert_str_eq(err, "wl.json:1:23: field 'routes[0].reads': "
                     "expected integer >= 0, found -1");
    jpos_key_errorf(err, sizeof err, "wl.json", t, n, "/routes/0/reads",
                    "unknown key");
    ck_assert_str_eq(err, "wl.json:1:14: field 'routes[0].reads': "
                     "unknown key");
    jpos_errorf(err, sizeof err, "wl.json", t, n, "/missing", "required");
    ck_assert_str_eq(err, "wl.json: field 'missing': required");
    jpos_errorf(err, sizeof err, NULL, t, n, "", "bad");
    ck_assert_str_eq(err, "<json>:1:1: bad");
    jpos_errorf(err, 12, "wl.json", t, n, "/routes", "truncated");
    ck_assert_str_eq(err, "wl.json:1:1");
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("parse");
    TCase *te = tcase_create("errors");
    TCase *to = tcase_create("output");
    TCase *tj = tcase_create("jsonpos");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, config_defaults);
    tcase_add_test(tc, config_no_args_keeps_defaults);
    tcase_add_test(tc, config_every_flag_parsed);
    tcase_add_test(tc, config_short_and_inline_forms);
    tcase_add_test(tc, config_last_flag_wins);
    tcase_add_test(tc, config_file_every_key);
    tcase_add_test(tc, config_cli_overrides_file_when_c_last);
    tcase_add_test(tc, config_cli_overrides_file_when_c_first);
    tcase_add_test(tc, config_file_nulls_and_bool_gc);
    tcase_add_test(tc, config_file_cli_only_keys_ignored);
    tcase_add_test(tc, config_empty_value_unsets);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(te, setup, teardown);
    tcase_add_test(te, config_missing_file);
    tcase_add_test(te, config_directory_is_error);
    tcase_add_test(te, config_empty_file);
    tcase_add_test(te, config_invalid_json_line_col);
    tcase_add_test(te, config_duplicate_key);
    tcase_add_test(te, config_wrong_type_position);
    tcase_add_test(te, config_out_of_range);
    tcase_add_test(te, config_unknown_key);
    tcase_add_test(te, config_threshold_element);
    tcase_add_test(te, config_escaped_key_position);
    tcase_add_test(te, config_not_an_object);
    tcase_add_loop_test(te, config_file_bad_value, 0,
                        sizeof bad_values / sizeof bad_values[0]);
    tcase_add_test(te, config_file_error_via_args);
    tcase_add_loop_test(te, config_bad_flag_value, 0,
                        sizeof bad_flags / sizeof bad_flags[0]);
    tcase_add_test(te, config_unknown_flag);
    tcase_add_test(te, config_missing_value);
    tcase_add_test(te, config_flag_takes_no_value);
    tcase_add_test(te, config_positional_arg);
    suite_add_tcase(s, te);

    tcase_add_checked_fixture(to, setup, teardown);
    tcase_add_test(to, config_help_sets_exit_now);
    tcase_add_test(to, config_version_sets_exit_now);
    tcase_add_test(to, config_to_json_fields);
    tcase_add_test(to, config_to_json_round_trip);
    tcase_add_test(to, config_to_json_round_trip_defaults);
    tcase_add_test(to, config_policy_label);
    suite_add_tcase(s, to);

    tcase_add_checked_fixture(tj, setup, teardown);
    tcase_add_test(tj, config_jpos_nested_paths);
    tcase_add_test(tj, config_jpos_missing);
    tcase_add_test(tj, config_jpos_escaped_keys);
    tcase_add_test(tj, config_jpos_arrays);
    tcase_add_test(tj, config_jpos_strings_with_brackets);
    tcase_add_test(tj, config_jpos_utf8_columns);
    tcase_add_test(tj, config_jpos_last_duplicate_wins);
    tcase_add_test(tj, config_jpos_key_position);
    tcase_add_test(tj, config_jpos_not_nul_terminated);
    tcase_add_test(tj, config_jpos_field_name);
    tcase_add_test(tj, config_jpos_path_append);
    tcase_add_test(tj, config_jpos_errorf);
    suite_add_tcase(s, tj);

    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
