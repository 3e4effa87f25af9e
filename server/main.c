/*
 * main.c -- the cowlab command: parse the configuration (file, then
 * command line), load the workload, run the prefork master.
 * `cowlab --print-columns FILE` prints an output file's column table;
 * `cowlab --write-kinds ...` runs cowlab-kinds, the same server with the
 * runtime's write-kind notes compiled in (runtime/wkinds.h);
 * `cowlab attach --pid MASTER` measures a server cowlab did not start
 * (attach_cmd.c).
 * Exit status: 0 clean stop, 1 runtime failure, 2 bad configuration.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "attach_cmd.h"
#include "config.h"
#include "master.h"
#include "output.h"
#include "wkinds.h"
#include "workload.h"

/* --print-columns samples|runs|types: the README's Markdown table of that
 * file's columns, from the table the server writes it with.  An action
 * of its own: no other option goes with it.  Returns main's status, or -1
 * when the flag is absent. */
static int
print_columns(int argc, char **argv)
{
    const char *flag = "--print-columns";
    size_t n = strlen(flag);
    int at = -1;
    for (int i = 1; i < argc && at < 0; i++)
        if (strncmp(argv[i], flag, n) == 0
            && (argv[i][n] == '\0' || argv[i][n] == '='))
            at = i;
    if (at < 0)
        return -1;
    const char *what = argv[at][n] == '=' ? argv[at] + n + 1
                       : at + 1 < argc ? argv[at + 1] : NULL;
    int used = argv[at][n] == '=' ? 2 : 3;
    if (what == NULL) {
        fprintf(stderr, "cowlab: %s: missing value, expected %s\n", flag,
                ms_table_names);
        return 2;
    }
    const ms_table_t *t = ms_table_find(what);
    if (t == NULL) {
        fprintf(stderr, "cowlab: %s: expected %s, got '%s'\n", flag,
                ms_table_names, what);
        return 2;
    }
    if (argc != used) {
        fprintf(stderr, "cowlab: %s takes no other option\n", flag);
        return 2;
    }
    ms_buf_t b;
    ms_buf_init(&b);
    ms_table_markdown(t, &b);
    int bad = b.oom || fwrite(b.p, 1, b.len, stdout) != b.len
              || fflush(stdout) != 0;
    ms_buf_free(&b);
    if (bad) {
        fprintf(stderr, "cowlab: %s: cannot write the table\n", flag);
        return 1;
    }
    return 0;
}

/*
 * --write-kinds needs the runtime built with RT_WRITE_KINDS: a binary of
 * its own, cowlab-kinds, beside this one (`make` builds both).  This one
 * hands its whole command line over to it; only a failure returns (2).
 */
static int
exec_kinds_build(char **argv)
{
    char self[4096], path[4200];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "cowlab: --write-kinds: cannot find this program's "
                "own path\n");
        return 2;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    snprintf(path, sizeof path, "%.*s/cowlab-kinds",
             slash ? (int)(slash - self) : 1, slash ? self : ".");
    fflush(NULL);
    execv(path, argv);
    fprintf(stderr, "cowlab: --write-kinds needs %s (the runtime built "
            "with RT_WRITE_KINDS; `make` builds it): %s\n", path,
            strerror(errno));
    return 2;
}

int
main(int argc, char **argv)
{
    cfg_t cfg;
    char err[1024];
    int exit_now = 0;
    if (argc > 1 && strcmp(argv[1], "attach") == 0)
        return srv_attach_main(argc - 1, argv + 1);
    int pc = print_columns(argc, argv);
    if (pc >= 0)
        return pc;
    cfg_defaults(&cfg);
    if (cfg_parse_args(&cfg, argc, argv, &exit_now, err, sizeof err) < 0
        || (!exit_now && cfg_check(&cfg, err, sizeof err) < 0)) {
        fprintf(stderr, "cowlab: %s\n", err);
        fprintf(stderr, "Try 'cowlab --help'.\n");
        cfg_free(&cfg);
        return 2;
    }
    if (exit_now) {
        cfg_free(&cfg);
        return 0;
    }
    if (cfg.write_kinds && !cfg.check_config && !rt_wk_built()) {
        cfg_free(&cfg);
        return exec_kinds_build(argv);
    }
    wl_spec_t *spec = NULL;
    int r = cfg.workload_path
        ? wl_load_file(cfg.workload_path, &spec, err, sizeof err)
        : wl_load_default(&spec, err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "cowlab: %s\n", err);
        cfg_free(&cfg);
        return 2;
    }
    if (cfg.check_config) {
        json_t *j = cfg_to_json(&cfg);
        json_object_set_new(j, "workload_spec", wl_spec_to_json(spec));
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(s ? s : "{}");
        free(s);
        json_decref(j);
        wl_spec_free(spec);
        cfg_free(&cfg);
        return 0;
    }
    int rc = srv_master_run(&cfg, spec);
    wl_spec_free(spec);
    cfg_free(&cfg);
    return rc;
}
