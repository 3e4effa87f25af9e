/*
 * check_config.c -- unit tests for server/config.c and common/jsonpos.c:
 * defaults, every flag and config key, the command line overriding the
 * file, the exact error messages (one table: flag names, file:line:column,
 * field), the same mistake worded the same way by the workload loader
 * (common/errmsg.c), --help/--version, cfg_to_json() round trips, policy
 * labels, and jpos_find() on nested paths, escaped keys, arrays and tricky
 * strings.  Run from the repository root (fixtures: tests/fixtures/config/).
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
#include "object.h"
#include "workload.h"
#include "support.h"

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
    char *argv[128];
    int argc = 0, rc, i;
    const char *a;
    va_list ap;

    argv[argc++] = strdup("cowlab");
    va_start(ap, exit_now);
    while ((a = va_arg(ap, const char *)) != NULL && argc < 127)
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
    ck_assert_uint_eq(cfg.smaps_ms, 10000);
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

/*
 * Every key of cfg_to_json(&cfg) must be in `want` (JSON text) with the
 * same value (numbers compared as numbers: 7 == 7.0), and every key of
 * `want` must be a setting: one table row per setting.
 */
static void
settings_are(const char *want)
{
    json_error_t je;
    json_t *w = json_loads(want, JSON_REJECT_DUPLICATES, &je);
    json_t *got = cfg_to_json(&cfg), *a, *b;
    const char *key;

    ck_assert_msg(w != NULL, "want: %s", je.text);
    ck_assert_ptr_nonnull(got);
    json_object_foreach(got, key, a) {
        b = json_object_get(w, key);
        ck_assert_msg(b != NULL, "'%s' missing from the expected table",
                      key);
        if (json_is_number(a) && json_is_number(b))
            ck_assert_msg(json_number_value(a) == json_number_value(b),
                          "%s: %g, want %g", key, json_number_value(a),
                          json_number_value(b));
        else
            ck_assert_msg(json_equal(a, b), "%s differs", key);
    }
    ck_assert_uint_eq(json_object_size(w), json_object_size(got));
    json_decref(got);
    json_decref(w);
}

START_TEST(config_every_flag_parsed)
{
    PARSE_OK("--workload", "wl.json", "--scale", "0.5", "--workers", "7",
             "--host", "::1", "--port", "0", "--gc", "off",
             "--gc-threshold", "1000,5,0", "--freeze", "--immortal",
             "--lazy", "--exit", "skip", "--python", "3.11",
             "--prefork-gc", "collected", "--gc-layout", "bitmap",
             "--refcount", "split", "--warmup", "--max-requests", "500",
             "--max-requests-jitter", "20", "--timeout", "0",
             "--graceful-timeout", "2.5", "--sample-ms", "10",
             "--sample-budget", "50",
             "--duration", "90", "--requests", "12345", "--out", "res/x",
             "--run-id", "r_1.a", "--policy-name", "p=1", "--type-census",
             "--pagemap-gc-fraction", "1", "--attribution", "pagemap",
             "--write-sample-ms", "0", "--write-kinds", "--smaps-ms", "0",
             "--limit-header-bytes", "1024",
             "--limit-url-bytes", "512", "--limit-body-bytes", "0",
             "--header-timeout-ms", "1", "--keepalive-timeout-ms", "0",
             "--max-connections", "2", "--check-config", "--quiet",
             "--ksm", "--ksm-pages-to-scan", "7", "--ksm-sleep-ms", "9",
             "--identical-pages", "--identical-diff", "--refork-after",
             "3,5", "--refork-select", "least-copied", "--max-copied-pct",
             "40", "--reload-on-rss", "300");
    settings_are("{\"config\": null, \"workload\": \"wl.json\", "
                 "\"scale\": 0.5, \"workers\": 7, \"host\": \"::1\", "
                 "\"port\": 0, \"gc\": \"off\", "
                 "\"gc_threshold\": [1000, 5, 0], \"freeze\": true, "
                 "\"immortal\": true, \"lazy\": true, \"exit\": \"skip\", "
                 "\"python\": \"3.11\", \"prefork_gc\": \"collected\", "
                 "\"gc_layout\": \"bitmap\", \"refcount\": \"split\", "
                 "\"warmup\": true, "
                 "\"max_requests\": 500, \"max_requests_jitter\": 20, "
                 "\"timeout\": 0, \"graceful_timeout\": 2.5, "
                 "\"sample_ms\": 10, \"sample_budget\": 50, "
                 "\"duration\": 90, \"requests\": 12345, \"out\": \"res/x\", "
                 "\"run_id\": \"r_1.a\", \"policy_name\": \"p=1\", "
                 "\"type_census\": true, \"pagemap_gc_fraction\": 1, "
                 "\"attribution\": \"pagemap\", \"write_sample_ms\": 0, "
                 "\"write_kinds\": true, \"smaps_ms\": 0, "
                 "\"limit_header_bytes\": 1024, \"limit_url_bytes\": 512, "
                 "\"limit_body_bytes\": 0, \"header_timeout_ms\": 1, "
                 "\"keepalive_timeout_ms\": 0, \"max_connections\": 2, "
                 "\"check_config\": true, \"quiet\": true, \"ksm\": true, "
                 "\"ksm_pages_to_scan\": 7, \"ksm_sleep_ms\": 9, "
                 "\"identical_pages\": true, \"identical_diff\": true, "
                 "\"refork_after\": [3, 5], "
                 "\"refork_select\": \"least-copied\", "
                 "\"max_copied_pct\": 40, \"reload_on_rss\": 300}");
    ck_assert_int_eq(cfg.check_config, 1);
    ck_assert_int_eq(cfg.refork_after_n, 2);
    /* parsed, but --lazy has no pre-fork heap to refork from */
    ck_assert_int_eq(cfg_check(&cfg, err, sizeof err), -1);
    ASSERT_ERR("--refork-after needs a pre-fork heap: not with --lazy");
    cfg.lazy = 0;
    ck_assert_int_eq(cfg_check(&cfg, err, sizeof err), 0);
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
    /* full.json itself, plus the file name and what it does not set */
    settings_are("{\"config\": \"" FIX "full.json\", "
                 "\"workload\": \"workloads/api.json\", \"scale\": 2.5, "
                 "\"workers\": 16, \"host\": \"0.0.0.0\", \"port\": 0, "
                 "\"gc\": \"off\", \"gc_threshold\": [7000, 20, 30], "
                 "\"freeze\": true, \"immortal\": true, \"lazy\": true, "
                 "\"exit\": \"skip\", \"python\": \"3.11\", "
                 "\"prefork_gc\": \"collected\", \"gc_layout\": \"side\", "
                 "\"refcount\": \"split\", \"warmup\": true, "
                 "\"max_requests\": 1000, "
                 "\"max_requests_jitter\": 50, \"timeout\": 12.5, "
                 "\"graceful_timeout\": 7, \"sample_ms\": 100, "
                 "\"sample_budget\": 1, \"duration\": 60, "
                 "\"requests\": 200000, \"out\": \"results/full\", "
                 "\"run_id\": \"run-1\", \"policy_name\": \"my+policy\", "
                 "\"type_census\": true, \"pagemap_gc_fraction\": 0.5, "
                 "\"attribution\": \"off\", \"write_sample_ms\": 250, "
                 "\"write_kinds\": true, \"smaps_ms\": 1000, "
                 "\"limit_header_bytes\": 16384, \"limit_url_bytes\": 2048, "
                 "\"limit_body_bytes\": 0, \"header_timeout_ms\": 2000, "
                 "\"keepalive_timeout_ms\": 0, \"max_connections\": 64, "
                 "\"check_config\": false, \"quiet\": true, "
                 "\"ksm\": true, \"ksm_pages_to_scan\": 100, "
                 "\"ksm_sleep_ms\": 50, \"identical_pages\": true, "
                 "\"identical_diff\": false, \"refork_after\": [1000], "
                 "\"refork_select\": \"first\", \"max_copied_pct\": 0, "
                 "\"reload_on_rss\": 512}");
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

/* ---- errors: one table ---- */

/*
 * One bad input per row: a command line, or a config file loaded with
 * cfg_load_file() when args is empty.  The file under test is `file` (a
 * fixture) or, when text is set, a temporary file holding text; "@" in
 * args and in msg stands for its path.  rc is the status; msg is the whole
 * message when it starts with "=", else a part of it.
 */
typedef struct bad {
    const char *args[8];
    const char *file;
    const char *text;
    int rc;
    const char *msg;
} bad_t;

#define LOAD(name, rc, msg)  { { NULL }, FIX name, NULL, rc, msg }
#define TEXT(text, msg)      { { NULL }, NULL, text, -EINVAL, msg }
#define ARGS(msg, ...)       { { __VA_ARGS__, NULL }, NULL, NULL, -1, msg }
#define LOAD_ARGS(name, rc, msg, ...) \
    { { __VA_ARGS__, NULL }, FIX name, NULL, rc, msg }

static const bad_t bad[] = {
    /* the file */
    LOAD("no_such.json", -ENOENT,
         "=@: cannot read config file: No such file or directory"),
    LOAD("", -EISDIR, "=@: cannot read config file: Is a directory"),
    LOAD("empty.json", -EINVAL, "=@: empty config file, expected a JSON "
         "object of settings"),
    LOAD("blank.json", -EINVAL, "=@: empty config file, expected a JSON "
         "object of settings"),
    LOAD("invalid.json", -EINVAL, "=@:4:11: invalid JSON: '}' expected near "
         "'\"quiet\"'"),
    LOAD("duplicate.json", -EINVAL, "=@:3:13: invalid JSON: duplicate object "
         "key near '\"workers\"'"),
    LOAD("wrong_type.json", -EINVAL, "=@:4:14: field 'scale': expected a "
         "number > 0 and <= 1000, found the string \"big\""),
    LOAD("out_of_range.json", -EINVAL, "=@:2:16: field 'workers': expected "
         "an integer from 1 to 256, found 300"),
    LOAD("unknown_key.json", -EINVAL, "=@:3:5: field 'wrokers': unknown key, "
         "did you mean 'workers'?"),
    LOAD("threshold_element.json", -EINVAL, "=@:2:29: field "
         "'gc_threshold[2]': expected an integer >= 0, found the string "
         "\"ten\""),
    LOAD("escaped_key.json", -EINVAL, "=@:1:18: field 'workers': expected an "
         "integer from 1 to 256, found 0"),
    LOAD("not_object.json", -EINVAL, "=@:1:1: expected a JSON object of "
         "settings, found an array of 1 item"),
    /* one bad value each */
    TEXT("{\"workers\": 4.0}", "=@:1:13: field 'workers': expected an "
         "integer from 1 to 256, found 4.0"),
    TEXT("{\"workers\": \"4\"}", "found the string \"4\""),
    TEXT("{\"port\": 65536}", "field 'port': expected an integer from 0 to "
         "65535, found 65536"),
    TEXT("{\"scale\": 0}", "field 'scale': expected a number > 0 and <= "
         "1000, found 0"),
    TEXT("{\"scale\": 1000.5}", "found 1000.5"),
    TEXT("{\"gc\": \"maybe\"}", "field 'gc': expected \"on\" or \"off\", "
         "found the string \"maybe\""),
    TEXT("{\"gc_threshold\": [1, 2]}", "field 'gc_threshold': expected an "
         "array of three integers >= 0, found an array of 2 items"),
    TEXT("{\"gc_threshold\": \"700,10,10\"}", "field 'gc_threshold': "
         "expected an array"),
    TEXT("{\"gc_threshold\": [1, -2, 3]}", "=@:1:22: field "
         "'gc_threshold[1]': expected an integer >= 0, found -2"),
    TEXT("{\"freeze\": 1}", "field 'freeze': expected true or false, found "
         "1"),
    TEXT("{\"exit\": \"fast\"}", "field 'exit': expected \"finalize\" or "
         "\"skip\""),
    TEXT("{\"attribution\": true}", "field 'attribution': expected "
         "\"auto\", \"write-sets\", \"pagemap\" or \"off\", found true"),
    TEXT("{\"attribution\": \"exact\"}", "field 'attribution': expected "
         "\"auto\""),
    TEXT("{\"python\": 3}", "=@:1:12: field 'python': expected \"3.11\" or "
         "\"3.12\", found 3"),
    TEXT("{\"prefork_gc\": \"lazy\"}", "field 'prefork_gc': expected "
         "\"import\" or \"collected\""),
    TEXT("{\"gc_layout\": \"Side\"}", "=@:1:15: field 'gc_layout': "
         "expected \"inline\", \"side\" or \"bitmap\", found the string "
         "\"Side\""),
    TEXT("{\"gc_layout\": 1}", "field 'gc_layout': expected \"inline\""),
    TEXT("{\"refcount\": \"biased\"}", "field 'refcount': expected "
         "\"inline\" or \"split\""),
    TEXT("{\"refcount\": null}", "field 'refcount': expected \"inline\""),
    TEXT("{\"warmup\": \"yes\"}", "field 'warmup': expected true or "
         "false"),
    TEXT("{\"out\": 5}", "field 'out': expected a directory name or null, "
         "found 5"),
    TEXT("{\"host\": \"\"}", "field 'host': expected a host name or "
         "address"),
    TEXT("{\"host\": null}", "field 'host': expected a host name"),
    TEXT("{\"run_id\": \"a/b\"}", "field 'run_id': expected letters"),
    TEXT("{\"run_id\": \"..\"}", "field 'run_id': expected letters"),
    TEXT("{\"policy_name\": \"a,b\"}", "field 'policy_name': expected"),
    TEXT("{\"sample_ms\": 9}", "field 'sample_ms': expected an integer from "
         "10 to 3600000, found 9"),
    TEXT("{\"pagemap_gc_fraction\": 1.5}", "field 'pagemap_gc_fraction': "
         "expected a number from 0 to 1, found 1.5"),
    TEXT("{\"max_requests\": -1}", "field 'max_requests': expected an "
         "integer >= 0, found -1"),
    TEXT("{\"timeout\": null}", "field 'timeout': expected a number from 0 "
         "to 86400, found null"),
    TEXT("{\"check_config\": \"yes\"}", "field 'check_config': expected "
         "true or false"),
    TEXT("{\"config\": 3}", "field 'config': expected a file name or null"),
    TEXT("{\"workers\": {\"n\": 4}}", "found an object"),
    TEXT("{\"workers\": []}", "found an empty array"),
    TEXT("{\"gc-threshold\": [1, 2, 3]}", "=@:1:2: field 'gc-threshold': "
         "unknown key, did you mean 'gc_threshold'?"),
    TEXT("{\"a/b~c\": 1}", "=@:1:2: field 'a/b~c': unknown key (cowlab "
         "--help lists the settings)"),
    TEXT("{\"refork_after\": [100, 0]}", "=@:1:24: field "
         "'refork_after[1]': expected an integer >= 1, found 0"),
    TEXT("{\"refork_after\": 100}", "field 'refork_after': expected an "
         "array of at most 16 integers >= 1, found 100"),
    TEXT("{\"refork_select\": \"least\"}", "field 'refork_select': "
         "expected \"first\" or \"least-copied\", found"),
    /* a file given on the command line */
    LOAD_ARGS("out_of_range.json", -EINVAL, "=@:2:16: field 'workers': "
              "expected an integer from 1 to 256, found 300",
              "-w", "3", "-c", "@"),
    LOAD_ARGS("no_such.json", -ENOENT, "=@: cannot read config file: No "
              "such file or directory", "-c", "@"),
    /* flag values */
    ARGS("=--workers: expected an integer from 1 to 256, got 'abc'",
         "--workers", "abc"),
    ARGS("=--workers: expected an integer from 1 to 256, got '0'",
         "--workers", "0"),
    ARGS("=--workers: expected an integer from 1 to 256, got '257'",
         "-w", "257"),
    ARGS("got ' 4'", "--workers", " 4"),
    ARGS("got '4x'", "--workers", "4x"),
    ARGS("got ''", "--workers", ""),
    ARGS("--port: expected an integer from 0 to 65535", "--port", "-1"),
    ARGS("=--scale: expected a number > 0 and <= 1000, got '0'",
         "--scale", "0"),
    ARGS("--scale: expected a number", "--scale", "nan"),
    ARGS("--scale: expected a number", "--scale", "inf"),
    ARGS("--scale: expected a number", "--scale", "1e400"),
    ARGS("=--gc: expected on or off, got 'yes'", "--gc", "yes"),
    ARGS("=--gc-threshold: expected three integers >= 0 as A,B,C, got "
         "'700,10'", "--gc-threshold", "700,10"),
    ARGS("--gc-threshold: expected three", "--gc-threshold", "700,10,10,1"),
    ARGS("--gc-threshold: expected three", "--gc-threshold", "700,-1,10"),
    ARGS("--gc-threshold: expected three", "--gc-threshold", "700,,10"),
    ARGS("=--exit: expected finalize or skip, got 'now'", "--exit", "now"),
    ARGS("=--attribution: expected auto, write-sets, pagemap or off, got "
         "'Pagemap'", "--attribution", "Pagemap"),
    ARGS("--write-sample-ms: expected an integer from 0 to 3600000",
         "--write-sample-ms", "-1"),
    ARGS("--smaps-ms: expected", "--smaps-ms", "1.5"),
    ARGS("=--python: expected 3.11 or 3.12, got '3.10'", "--python", "3.10"),
    ARGS("=--python: expected 3.11 or 3.12, got ''", "--python", ""),
    ARGS("=--prefork-gc: expected import or collected, got 'frozen'",
         "--prefork-gc", "frozen"),
    ARGS("=--gc-layout: expected inline, side or bitmap, got 'sides'",
         "--gc-layout", "sides"),
    ARGS("=--gc-layout: expected inline, side or bitmap, got ''",
         "--gc-layout", ""),
    ARGS("=--refcount: expected inline or split, got 'biased'",
         "--refcount", "biased"),
    ARGS("--warmup: takes no value", "--warmup=1"),
    ARGS("--max-requests: expected an integer >= 0", "--max-requests",
         "-5"),
    ARGS("--max-requests-jitter: expected", "--max-requests-jitter", "x"),
    ARGS("--timeout: expected a number from 0 to 86400", "--timeout", "-1"),
    ARGS("--graceful-timeout: expected", "--graceful-timeout", "1d"),
    ARGS("--sample-ms: expected an integer from 10 to ", "--sample-ms",
         "5"),
    ARGS("--duration: expected", "--duration", "-0.5"),
    ARGS("--requests: expected an integer >= 0", "--requests", "1.5"),
    ARGS("--run-id: expected letters", "--run-id", "a b"),
    ARGS("--run-id: expected letters", "--run-id", ".hidden"),
    ARGS("--policy-name: expected letters", "--policy-name", "x\"y"),
    ARGS("--host: expected a host name or address", "--host", ""),
    ARGS("--host: expected", "--host", "a-very-long-host-name-that-does-"
         "not-fit-in-the-field-of-sixty-four"),
    ARGS("--pagemap-gc-fraction: expected a number from 0 to 1",
         "--pagemap-gc-fraction", "2"),
    ARGS("--limit-header-bytes: expected an integer from 256 to",
         "--limit-header-bytes", "100"),
    ARGS("--limit-url-bytes: expected", "--limit-url-bytes", "big"),
    ARGS("--limit-body-bytes: expected", "--limit-body-bytes", "-1"),
    ARGS("--header-timeout-ms: expected an integer from 1 to 3600000",
         "--header-timeout-ms", "0"),
    ARGS("--keepalive-timeout-ms: expected", "--keepalive-timeout-ms", "x"),
    ARGS("--max-connections: expected", "--max-connections", "0"),
    ARGS("--out: expected a directory name in UTF-8, got bytes that are "
         "not UTF-8", "--out", "\xff\xfe"),
    ARGS("=--refork-after: expected 0, or at most 16 integers >= 1 as "
         "N,N2,..., got '10,0'", "--refork-after", "10,0"),
    ARGS("--refork-after: expected 0, or", "--refork-after", "10,"),
    ARGS("--refork-after: expected 0, or", "--refork-after",
         "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"),
    ARGS("=--refork-select: expected first or least-copied, got 'last'",
         "--refork-select", "last"),
    ARGS("=--max-copied-pct: expected a number from 0 to 100, got '101'",
         "--max-copied-pct", "101"),
    ARGS("--ksm-pages-to-scan: expected an integer from 1 to",
         "--ksm-pages-to-scan", "0"),
    ARGS("--reload-on-rss: expected an integer from 0 to",
         "--reload-on-rss", "-1"),
    /* flags themselves */
    ARGS("=unknown or ambiguous option '--wokers' (did you mean "
         "'--workers'?)", "--wokers", "3"),
    ARGS("=unknown or ambiguous option '--bogus' (see --help)",
         "--bogus=1"),
    ARGS("=unknown option '-x' (see --help)", "-x"),
    ARGS("'--max-r'", "--max-requests", "1", "--max-r", "2"),
    ARGS("'--no-check-config'", "--no-check-config"),
    ARGS("=--workers: missing value, expected an integer from 1 to 256",
         "--workers"),
    ARGS("=--config: missing value, expected a file name", "-c"),
    ARGS("=--freeze: takes no value, got '--freeze=yes'", "--freeze=yes"),
    ARGS("=--help: takes no value, got '--help=1'", "--help=1"),
    ARGS("=unexpected argument 'extra' (cowlab takes only options; see "
         "--help)", "-w", "2", "extra"),
    ARGS("unexpected argument '-w'", "--", "-w"),
};

#define N_BAD (sizeof bad / sizeof bad[0])

/* s with every "@" replaced by path, into out. */
static void
expand(char *out, size_t size, const char *s, const char *path)
{
    size_t o = 0;

    for (; *s && o + 1 < size; s++) {
        if (*s == '@') {
            o += (size_t)snprintf(out + o, size - o, "%s", path);
            if (o >= size)
                o = size - 1;
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
}

START_TEST(config_bad_input)
{
    const bad_t *b = &bad[_i];
    char *tmp = b->text ? tmp_file(b->text) : NULL;
    const char *path = tmp ? tmp : b->file ? b->file : "";
    char *argv[12], want[512], *out = strdup("keep");
    json_t *before, *after;
    int argc = 0, ex = -1, rc, i;

    cfg.workers = 9;                    /* a state a failure must keep */
    cfg.out_dir = out;
    before = cfg_to_json(&cfg);
    if (b->args[0] == NULL) {
        rc = cfg_load_file(&cfg, path, err, sizeof err);
        ex = 0;
    } else {
        argv[argc++] = strdup("cowlab");
        for (i = 0; b->args[i] != NULL; i++) {
            expand(want, sizeof want, b->args[i], path);
            argv[argc++] = strdup(want);
        }
        argv[argc] = NULL;
        rc = cfg_parse_args(&cfg, argc, argv, &ex, err, sizeof err);
        for (i = 0; i < argc; i++)
            free(argv[i]);
    }
    ck_assert_msg(rc == b->rc, "rc %d, want %d (%s)", rc, b->rc, err);
    ck_assert_int_eq(ex, 0);
    if (b->msg[0] == '=') {
        expand(want, sizeof want, b->msg + 1, path);
        ck_assert_str_eq(err, want);
    } else {
        expand(want, sizeof want, b->msg, path);
        ASSERT_ERR(want);
    }
    /* all or nothing: nothing changed */
    after = cfg_to_json(&cfg);
    ck_assert(json_equal(before, after));
    ck_assert_ptr_eq(cfg.out_dir, out);
    ck_assert_ptr_eq(cfg.config_path, NULL);
    json_decref(before);
    json_decref(after);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
}
END_TEST

/* ---- the same mistake in a workload file ---- */

/*
 * The message's shape: the file name as FILE, every run of digits as 9,
 * every '...' as 'X', the loader's own words (want, what it reads, where
 * its keys are listed) as WANT, KIND and HINT.  Two loaders that word a
 * mistake the same way give the same shape.
 */
static void
shape(char *out, size_t size, const char *msg, const char *file,
      const char *want, const char *kind)
{
    size_t o = 0, n;
    const char *p = msg;

    if (strncmp(p, file, strlen(file)) == 0) {
        o += (size_t)snprintf(out, size, "FILE");
        p += strlen(file);
    }
    while (*p && o + 8 < size) {
        if (strncmp(p, want, (n = strlen(want))) == 0) {
            o += (size_t)snprintf(out + o, size - o, "WANT");
            p += n;
        } else if (strncmp(p, kind, (n = strlen(kind))) == 0) {
            o += (size_t)snprintf(out + o, size - o, "KIND");
            p += n;
        } else if (*p >= '0' && *p <= '9') {
            out[o++] = '9';
            while (*p >= '0' && *p <= '9')
                p++;
        } else if (*p == '\'' && strchr(p + 1, '\'') != NULL) {
            o += (size_t)snprintf(out + o, size - o, "'X'");
            p = strchr(p + 1, '\'') + 1;
        } else if (*p == '(' && p[strlen(p) - 1] == ')') {
            o += (size_t)snprintf(out + o, size - o, "(HINT)");
            break;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

/* One mistake: as a config file, as a workload file, and its shape. */
static const struct {
    const char *config, *workload, *shape;
} same[] = {
    { NULL, NULL, "FILE: cannot read KIND: No such file or directory" },
    { "", "", "FILE: empty KIND, expected WANT" },
    { "{\"a\": }", "{\"a\": }", "FILE:9:9: invalid JSON: unexpected token "
      "near 'X'" },
    { "{\"x\": 1, \"x\": 2}", "{\"x\": 1, \"x\": 2}", "FILE:9:9: invalid "
      "JSON: duplicate object key near 'X'" },
    { "[1, 2]", "[1, 2]", "FILE:9:9: expected WANT, found an array of 9 "
      "items" },
    { "{\"workers\": \"4\"}", "{\"heap\": {\"modules\": \"4\"}}", "FILE:9:9: "
      "field 'X': expected an integer from 9 to 9, found the string "
      "\"9\"" },
    { "{\"workers\": 300}", "{\"heap\": {\"slots_percent\": 300}}",
      "FILE:9:9: field 'X': expected an integer from 9 to 9, found 9" },
    { "{\"workers\": 4.0}", "{\"heap\": {\"modules\": 4.0}}", "FILE:9:9: "
      "field 'X': expected an integer from 9 to 9, found 9.9" },
    { "{\"workers\": []}", "{\"heap\": {\"modules\": []}}", "FILE:9:9: "
      "field 'X': expected an integer from 9 to 9, found an empty array" },
    { "{\"pagemap_gc_fraction\": 1.5}", "{\"routes\": [{\"path\": \"/\", "
      "\"spread\": 1.5}]}", "FILE:9:9: field 'X': expected a number from 9 "
      "to 9, found 9.9" },
    { "{\"wrokers\": 2}", "{\"rotues\": []}", "FILE:9:9: field 'X': "
      "unknown key, did you mean 'X'?" },
    { "{\"zzzzzz\": 2}", "{\"zzzzzz\": 2}", "FILE:9:9: field 'X': unknown "
      "key (HINT)" },
};

START_TEST(config_same_mistake_as_workload)
{
    char *cpath = same[_i].config ? tmp_file(same[_i].config)
                                  : strdup(FIX "no_such.json");
    char *wpath = same[_i].workload ? tmp_file(same[_i].workload)
                                    : strdup(FIX "no_such.json");
    char cshape[1024], wshape[1024], werr[1024];
    wl_spec_t *spec = NULL;

    ck_assert_int_lt(cfg_load_file(&cfg, cpath, err, sizeof err), 0);
    ck_assert_int_lt(wl_load_file(wpath, &spec, werr, sizeof werr), 0);
    ck_assert_ptr_null(spec);
    shape(cshape, sizeof cshape, err, cpath, "a JSON object of settings",
          "config file");
    shape(wshape, sizeof wshape, werr, wpath, "a JSON object with \"heap\" "
          "and \"routes\"", "workload file");
    ck_assert_msg(strcmp(cshape, wshape) == 0, "config:   %s\nworkload: %s",
                  err, werr);
    ck_assert_str_eq(cshape, same[_i].shape);
    if (same[_i].config)
        unlink(cpath);
    if (same[_i].workload)
        unlink(wpath);
    free(cpath);
    free(wpath);
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
        "[700,10,10]", "--exit finalize|skip", "--python 3.11|3.12",
        "--gc-layout LAYOUT", "--refcount MODE", "--warmup",
        "--max-requests N",
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
    ck_assert(json_is_array(json_object_get(j, "refork_after"))
              && json_array_size(json_object_get(j, "refork_after")) == 0);
    ck_assert_str_eq(json_string_value(json_object_get(j, "refork_select")),
                     "first");
    ck_assert_str_eq(json_string_value(json_object_get(j, "python")),
                     "3.12");
    ck_assert_str_eq(json_string_value(json_object_get(j, "prefork_gc")),
                     "import");
    ck_assert_str_eq(json_string_value(json_object_get(j, "gc_layout")),
                     "inline");
    ck_assert_str_eq(json_string_value(json_object_get(j, "refcount")),
                     "inline");
    ck_assert(json_is_false(json_object_get(j, "warmup")));
    ck_assert_int_eq(json_object_size(j), 51);  /* one key per setting */
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
    cfg.warmup = 1;                     /* a step before freeze */
    ck_assert_str_eq(cfg_policy_label(&cfg, b, sizeof b), "warmup");
    cfg.freeze = 1;
    ck_assert_str_eq(cfg_policy_label(&cfg, b, sizeof b), "warmup+freeze");
    cfg.warmup = cfg.freeze = 0;
    cfg.gc_layout = RT_GC_SIDE;         /* a mode, not a policy */
    cfg.refcount = RT_RC_SPLIT;
    ck_assert_str_eq(cfg_policy_label(&cfg, b, sizeof b), "default");
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
    tcase_add_loop_test(te, config_bad_input, 0, N_BAD);
    tcase_add_loop_test(te, config_same_mistake_as_workload, 0,
                        sizeof same / sizeof same[0]);
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

    return ts_run_suite(s);
}
