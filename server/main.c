/*
 * main.c -- the cowlab command: parse the configuration (file, then
 * command line), load the workload, run the prefork master.
 * Exit status: 0 clean stop, 1 runtime failure, 2 bad configuration.
 */
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "config.h"
#include "master.h"
#include "workload.h"

int
main(int argc, char **argv)
{
    cfg_t cfg;
    char err[1024];
    int exit_now = 0;
    cfg_defaults(&cfg);
    if (cfg_parse_args(&cfg, argc, argv, &exit_now, err, sizeof err) < 0) {
        fprintf(stderr, "cowlab: %s\n", err);
        fprintf(stderr, "Try 'cowlab --help'.\n");
        cfg_free(&cfg);
        return 2;
    }
    if (exit_now) {
        cfg_free(&cfg);
        return 0;
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
