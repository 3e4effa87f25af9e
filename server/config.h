/*
 * config.h -- the server's configuration: defaults, a JSON config file,
 * command-line flags (the file first, flags override it), validation with
 * messages that name the flag or the file:line:column of the field, and
 * the resolved configuration as JSON (--check-config, meta.json).
 *
 * Config file: one JSON object whose keys are the long flag names with '-'
 * replaced by '_'; the values have the JSON type of the flag's argument:
 *   integers  workers port max_requests max_requests_jitter sample_ms
 *             requests limit_header_bytes limit_url_bytes
 *             limit_body_bytes header_timeout_ms keepalive_timeout_ms
 *             max_connections ksm_pages_to_scan ksm_sleep_ms reload_on_rss
 *             write_sample_ms smaps_ms
 *   numbers   scale timeout graceful_timeout duration pagemap_gc_fraction
 *             sample_budget max_copied_pct
 *   booleans  freeze immortal lazy type_census quiet ksm identical_pages
 *             identical_diff write_kinds warmup
 *   strings   host; workload out run_id policy_name (or null = unset)
 *   "attribution": "auto" | "write-sets" | "pagemap" | "off"
 *   "gc": "on" | "off" (or true | false)
 *   "gc_threshold": [A, B, C]
 *   "exit": "finalize" | "skip"
 *   "refork_after": [N, N2, ...] (integers >= 1; [] = off)
 *   "refork_select": "first" | "least-copied"
 *   "python": "3.11" | "3.12"
 *   "gc_layout": "inline" | "side" | "bitmap"
 *   "refcount": "inline" | "split"
 *   "prefork_gc": "import" | "collected"
 *   "config", "check_config": accepted so that the output of
 *             --check-config loads back, but ignored (command-line actions)
 * Unknown keys, duplicate keys, wrong types and out-of-range values are
 * errors.  Relative paths are relative to the working directory.
 *
 * Errors: functions return 0 or a negative errno and write a one-line
 * message (no trailing newline) into the caller's buffer; nothing here
 * prints to stderr or exits.  main prints the message and exits 2.
 */
#ifndef COWLAB_CONFIG_H
#define COWLAB_CONFIG_H

#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

#define COWLAB_VERSION "0.1.0"

typedef enum { CFG_EXIT_FINALIZE, CFG_EXIT_SKIP } cfg_exit_t;
/* --refork-select: which worker becomes the mold */
typedef enum { CFG_REFORK_FIRST, CFG_REFORK_LEAST_COPIED } cfg_refork_t;
#define CFG_MAX_REFORK 16       /* values of --refork-after */
/* The collector's state at fork (--prefork-gc): as an import leaves it
 * (collections ran by threshold all along the build), or collected (the
 * build paused the collector and ended with a full collection). */
enum { CFG_PREFORK_IMPORT, CFG_PREFORK_COLLECTED };

/* --attribution: how copies are attributed to their cause. */
enum {
    CFG_ATTR_AUTO,          /* write sets where the kernel has them */
    CFG_ATTR_WSET,          /* write sets, or refuse to start */
    CFG_ATTR_PAGEMAP,       /* pagemap reads around collections */
    CFG_ATTR_OFF            /* none (the baseline of its cost) */
};

typedef struct cfg {
    char *config_path;      /* -c/--config FILE: the file loaded, or NULL */
    char *workload_path;    /* --workload FILE; NULL = embedded 'webapp' */
    double scale;           /* --scale X (default 1.0, >0, <=1000) */
    int workers;            /* -w/--workers N (default 4, 1..256) */
    char host[64];          /* --host (default "127.0.0.1") */
    int port;               /* --port (default 8000; 0 = pick a free port) */
    int gc_enabled;         /* --gc on|off (default on); off = threshold 0 */
    long gc_threshold[3];   /* --gc-threshold A,B,C (default 700,10,10:
                               gc.h's GC_THRESHOLD*_DEFAULT) */
    int freeze;             /* --freeze: gc.freeze() in the master */
    int immortal;           /* --immortal: pre-fork heap made immortal */
    int lazy;               /* --lazy: build the heap in each worker after
                               fork; --freeze/--immortal then apply there */
    cfg_exit_t exit_policy; /* --exit finalize|skip (default finalize) */
    int python;             /* --python 3.11|3.12: 311 or 312 (default) */
    int prefork_gc;         /* --prefork-gc import|collected (default
                               import): CFG_PREFORK_* */
    /* The runtime's designs (README "Designs"): */
    int gc_layout;          /* --gc-layout inline|side|bitmap: an
                               rt_gc_layout_t (default inline) */
    int refcount;           /* --refcount inline|split: an rt_refcount_t
                               (default inline) */
    int warmup;             /* --warmup: rt_warmup() after the build,
                               before --freeze/--immortal */
    long max_requests;      /* --max-requests N (0 = never recycle) */
    long max_requests_jitter; /* --max-requests-jitter N (default 0) */
    double timeout_s;       /* --timeout S: kill a worker stuck this long in
                               one request (default 30; 0 = off) */
    double graceful_timeout_s; /* --graceful-timeout S (default 30) */
    unsigned sample_ms;     /* --sample-ms N (default 250, >= 10) */
    double duration_s;      /* --duration S (0 = until a signal) */
    long requests;          /* --requests N: stop after N in total (0 = no
                               limit) */
    char *out_dir;          /* --out DIR: results folder (NULL = no CSV) */
    char *run_id;           /* --run-id ID (NULL: the caller derives one) */
    char *policy_name;      /* --policy-name NAME (NULL: cfg_policy_label) */
    int type_census;        /* --type-census */
    double pagemap_gc_fraction; /* --pagemap-gc-fraction F in [0,1] (0.01) */
    int attribution;        /* --attribution auto|write-sets|pagemap|off
                               (CFG_ATTR_*; default auto) */
    unsigned write_sample_ms;   /* --write-sample-ms N (10000; 0 = never) */
    int write_kinds;        /* --write-kinds: copies by kind (a build of
                               its own: bin/cowlab-kinds) */
    unsigned smaps_ms;      /* --smaps-ms N (5000; 0 = every sample) */
    double sample_budget_pct;   /* --sample-budget PCT (1; 0 = no limit) */
    /* The HTTP limits; defaults and the meaning of 0: http.h. */
    size_t max_header_bytes;    /* --limit-header-bytes (8192) */
    size_t max_url_bytes;       /* --limit-url-bytes (4096) */
    size_t max_body_bytes;      /* --limit-body-bytes (1048576; 0 = no
                                   request body) */
    unsigned header_timeout_ms;    /* --header-timeout-ms (10000) */
    unsigned keepalive_timeout_ms; /* --keepalive-timeout-ms (5000; 0 =
                                      close after each response) */
    unsigned max_connections;      /* --max-connections (1000) */
    /* Fleet strategies (README "Fleet"). */
    int ksm;                /* --ksm: PR_SET_MEMORY_MERGE before fork, ksmd
                               running (root) */
    unsigned ksm_pages_to_scan; /* --ksm-pages-to-scan (5000) */
    unsigned ksm_sleep_ms;  /* --ksm-sleep-ms (20) */
    int identical_pages;    /* --identical-pages: heap_identical_pages */
    int identical_diff;     /* --identical-diff: diffs.csv at the end */
    long refork_after[CFG_MAX_REFORK]; /* --refork-after N[,N2,...] */
    int refork_after_n;     /* values given; 0 = no reforking */
    cfg_refork_t refork_select; /* --refork-select first|least-copied */
    double max_copied_pct;  /* --max-copied-pct P (0 = off) */
    unsigned reload_on_rss_mb; /* --reload-on-rss MiB (0 = off) */
    int check_config;       /* --check-config: print the config as JSON */
    int quiet;              /* -q/--quiet */
} cfg_t;

/* Fill *c with the defaults.  Allocates nothing (all strings NULL). */
void cfg_defaults(cfg_t *c);

/* Free the strings and set them to NULL; *c can be reused or freed again. */
void cfg_free(cfg_t *c);

/*
 * Load the JSON config file at path over *c (which holds defaults or an
 * earlier configuration); keys absent from the file keep their value, and
 * config_path becomes path.  All or nothing: on error *c is unchanged.
 * Returns 0, -errno if the file cannot be read (-ENOENT, -EISDIR, -EFBIG
 * above 16 MiB, ...), -ENOMEM, or -EINVAL for an empty file, invalid JSON
 * ("FILE:LINE:COL: invalid JSON: ..." with jansson's position) or a bad
 * field ("FILE:LINE:COL: field 'NAME': expected ..., found ...").
 */
int cfg_load_file(cfg_t *c, const char *path, char *err, size_t errlen);

/*
 * Parse argv with getopt_long over *c (initialized by cfg_defaults()).
 * The config file (-c/--config, the last one given) is loaded first, then
 * the other flags override it, whatever their order.  --help and --version
 * print to stdout, set *exit_now = 1 and return 0; otherwise *exit_now = 0.
 * Boolean flags have a --no-... form to undo a config file's true.
 * Returns 0, -1 for a bad command line (message naming the flag, e.g.
 * "--workers: expected an integer from 1 to 256, got 'abc'"; unknown
 * flags; missing values; positional arguments), or cfg_load_file()'s
 * error.  Resets getopt's global state (optind = 0) itself.
 */
int cfg_parse_args(cfg_t *c, int argc, char **argv, int *exit_now,
                   char *err, size_t errlen);

/*
 * Settings that parse but cannot go together (each one names the flags):
 * --refork-after, --identical-pages, --identical-diff and
 * --max-copied-pct need a pre-fork heap, so not --lazy.  0, or -1 with
 * the message in err.  main() calls it after cfg_parse_args().
 */
int cfg_check(const cfg_t *c, char *err, size_t errlen);

/*
 * Every field as a new JSON object, under the config file's key names
 * (unset strings are null), so that the output loads back with
 * cfg_load_file().  NULL if out of memory.
 */
json_t *cfg_to_json(const cfg_t *c);

/*
 * The label written to the CSVs: policy_name if set, else the pre-fork
 * policy joined with '+': "lazy", "gc-off" (--gc off or a first threshold
 * of 0), "thr-A-B-C" (thresholds other than 700,10,10 with GC on),
 * "warmup", "freeze", "immortal"; "default" when none applies (GC on,
 * default thresholds, no warm-up, no freeze, no immortal).  The runtime's
 * modes (--python, --gc-layout, --refcount) are not policies: runs.csv
 * has a column for each.  Written into buf (truncated to
 * len); returns buf, or "" if len is 0.
 */
const char *cfg_policy_label(const cfg_t *c, char *buf, size_t len);

/*
 * Usage: every flag with its default, the config file format and the
 * signal table (SIGTERM, SIGINT/SIGQUIT, SIGHUP, SIGKILL of a worker).
 */
void cfg_print_help(FILE *f);

#endif /* COWLAB_CONFIG_H */
