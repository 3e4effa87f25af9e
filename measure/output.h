/*
 * output.h -- what the server writes into --out: samples.csv, runs.csv,
 * types.csv (one row struct and one column table each, columns.h) and
 * meta.json.  The server fills the row structs from its configuration,
 * its stats slots and the /proc readers; nothing here sees its types.
 * Column definitions and their README meanings: output.c.
 */
#ifndef MS_OUTPUT_H
#define MS_OUTPUT_H

#include <stdint.h>

#include <jansson.h>

#include "columns.h"

/* samples.csv: one row per worker per sample. */
typedef struct ms_sample {
    const char *run_id, *policy;
    uint64_t worker;
    int64_t pid;
    double t_ms;
    uint64_t requests;
    int64_t rss_kb, pss_kb, shared_clean_kb, shared_dirty_kb;
    int64_t private_clean_kb, private_dirty_kb;
    int64_t minflt, majflt;
    uint64_t heap_pages, heap_copied_pages;
    double heap_shared_pct;
    uint64_t gc_collections_0, gc_collections_1, gc_collections_2;
    uint64_t gc_time_us, faults_gc, faults_request;
    int64_t faults_other;
    uint64_t sample_ms;
    uint64_t copied_by_gc, copied_by_request, copied_unattributed;
    uint64_t gc_measured;
    /* cowlab attach's page frames (MS_U64_UNSET where not measured) */
    uint64_t copied_by_master, heap_new_pages, heap_shared_pages;
    /* heap pages given back since fork (MS_U64_UNSET where not known) */
    uint64_t heap_released_pages;
    /* fleet strategies (README "Fleet"); MS_UNSET doubles are empty */
    const char *role;                   /* worker | mold */
    uint64_t refork_generation;
    double heap_identical_pages;        /* --identical-pages */
    double ksm_merging_pages;           /* --ksm: /proc/PID/ksm_stat */
    double heap_ksm_pages;              /* --ksm as root: kpageflags */
    double heap_moved_pages;            /* a mold's frames moved (root) */
    const char *attribution;
    uint64_t written_pages, written_requests;
    uint64_t wset_scans, wset_skipped;
    double wset_ms;
    uint64_t faults_sampling;
    /* designs (README "Designs"): the collector's side memory, compared
     * frame by frame as the heap is, and this process's split refcount
     * table (MS_U64_UNSET where not measured) */
    uint64_t side_pages, side_copied_pages;
    uint64_t rc_table_entries, rc_table_bytes;
} ms_sample_t;

/* runs.csv: one row per server run.  MS_UNSET doubles are empty. */
typedef struct ms_run {
    const char *run_id, *policy;
    uint64_t workers, heap_objects;
    double heap_mb, build_ms, fork_ms;
    uint64_t requests;
    double rps;
    double heap_shared_pct, private_dirty_kb;
    double teardown_ms, faults_teardown;        /* MS_UNSET: none */
    const char *exit;
    double scale;
    const char *workload, *gc;
    int64_t gc_threshold[3];
    uint64_t freeze, immortal, lazy, respawns;
    double duration_s;
    double copied_by_teardown;                  /* MS_UNSET: none */
    uint64_t sample_ms;
    uint64_t responses_4xx, responses_5xx;
    double copied_by_master;                    /* MS_UNSET: not measured */
    /* The runtime's mode and the collector at fork (NULL, MS_I64_UNSET,
     * MS_U64_UNSET, MS_UNSET: not known, as in cowlab attach's rows). */
    const char *python, *prefork_gc;
    int64_t fork_gc_count[3];
    uint64_t fork_long_lived_pending, fork_long_lived_total;
    double first_full_gc_request;               /* MS_UNSET: none ran */
    uint64_t workers_full_gc;
    double teardown_collections;                /* MS_UNSET: none */
    double heap_released_pages;
    /* fleet strategies */
    uint64_t refork_generation, reforks, recycles, ksm;
    double ksmd_cpu_s;                          /* MS_UNSET: no --ksm */
    double ksm_pages_sharing;                   /* MS_UNSET: no --ksm */
    double heap_identical_pages;                /* MS_UNSET: not measured */
    double cpu_s;
    const char *attribution;
    uint64_t written_pages, written_requests;
    double written_per_request;                 /* MS_UNSET: none */
    const char *top_copy_route;
    double top_copy_route_pct;                  /* MS_UNSET: none */
    double wset_check_pages;                    /* MS_UNSET: not checked */
    /* designs (README "Designs"): the runtime's modes (NULL and
     * MS_U64_UNSET: not known), what --warmup changed (MS_UNSET: no
     * warm-up), the memory each design costs in the master after the
     * build, and per worker at its last sample (MS_UNSET: not measured) */
    const char *gc_layout, *refcount;
    uint64_t warmup;
    double warmup_collected, warmup_promoted, warmup_hashes;
    double warmup_pages_released, warmup_frozen, warmup_ms;
    double gc_inline_bytes, gc_side_bytes, gc_side_pages, gc_objects;
    double gc_bytes_per_object;
    double rc_table_entries, rc_table_bytes;
    double side_pages, side_copied_pages;
} ms_run_t;

/* types.csv (--type-census): one row per worker per object type. */
typedef struct ms_type_row {
    const char *run_id, *policy;
    uint64_t worker;
    int64_t pid;
    const char *type;
    uint64_t objects, pages, copied_pages;
    double identical_pages;                     /* MS_UNSET: not measured */
} ms_type_row_t;

/* totals.csv: one row per sampling round, the whole app. */
typedef struct ms_total {
    const char *run_id, *policy;
    double t_ms, t_mono_s;
    uint64_t workers, molds;
    int64_t master_pss_kb, workers_pss_kb, total_pss_kb;
    uint64_t heap_copied_pages;
    double heap_identical_pages, heap_ksm_pages;        /* MS_UNSET: off */
    double ksm_pages_sharing, ksm_pages_shared, ksmd_cpu_s; /* no --ksm */
    uint64_t requests, respawns, recycles, reforks, refork_generation;
    double cpu_s;
    uint64_t sample_ms;
    double sample_cost_ms;
} ms_total_t;

/* diffs.csv (--identical-diff): one row per worker per (field, type). */
typedef struct ms_diff_row {
    const char *run_id, *policy;
    uint64_t worker;
    int64_t pid;
    const char *field, *type;
    uint64_t words, words_up, words_down, pages, pages_only;
} ms_diff_row_t;

/* routes.csv: one row per logical worker per route. */
typedef struct ms_route_row {
    const char *run_id, *policy;
    uint64_t worker;
    const char *route;
    uint64_t requests;
    double copied_pages, copied_by_gc;          /* MS_UNSET: no write sets */
    uint64_t written_requests;
    double written_pages, written_per_request;  /* MS_UNSET: none sampled */
} ms_route_row_t;

/* kinds.csv (--write-kinds): one row per logical worker per kind. */
typedef struct ms_kind_row {
    const char *run_id, *policy;
    uint64_t worker;
    const char *kind;
    uint64_t copied_pages;
    uint64_t copied_by_request, copied_by_gc, copied_by_teardown;
} ms_kind_row_t;

extern const ms_table_t ms_samples_table;       /* rows: ms_sample_t */
extern const ms_table_t ms_runs_table;          /* rows: ms_run_t */
extern const ms_table_t ms_types_table;         /* rows: ms_type_row_t */
extern const ms_table_t ms_totals_table;        /* rows: ms_total_t */
extern const ms_table_t ms_diffs_table;         /* rows: ms_diff_row_t */
extern const ms_table_t ms_routes_table;        /* rows: ms_route_row_t */
extern const ms_table_t ms_kinds_table;         /* rows: ms_kind_row_t */

/* The table of a file, by its name with or without ".csv" ("runs",
 * "runs.csv"); NULL if there is none. */
const ms_table_t *ms_table_find(const char *name);
/* "samples|runs|types|totals|diffs|routes|kinds", for usage messages. */
extern const char ms_table_names[];

/*
 * A CSV file written a round at a time: rows are added to a buffer of
 * our own, and ms_csv_flush() hands the whole round to the kernel in one
 * write() (stdio would split it: glibc ignores setvbuf's size when it
 * allocates the buffer itself), so a killed writer leaves whole rows.
 * (Linux can still cut a write() of several pages short when SIGKILL
 * arrives while it copies them: a window of microseconds per round.)
 */
typedef struct ms_csv {
    int fd;
    const ms_table_t *table;
    ms_buf_t buf;               /* rows added since the last flush */
    uint64_t writes;            /* write() calls that wrote rows */
} ms_csv_t;

/* Open path for appending (created 0666 & ~umask); a file that is empty
 * gets the header first, written at once.  0 or -errno (*w then holds no
 * file). */
int ms_csv_open(ms_csv_t *w, const char *path, const ms_table_t *t);
/* The same over an open fd, which w then owns; header: write it now. */
int ms_csv_open_fd(ms_csv_t *w, int fd, const ms_table_t *t, int header);
/* Add one row (a struct of the table's row type) to the round. */
void ms_csv_add(ms_csv_t *w, const void *row);
/* Write the round with one write() (retried on EINTR, continued after a
 * short write); 0, or -errno (-ENOMEM if a row did not fit in memory):
 * the round is dropped either way. */
int ms_csv_flush(ms_csv_t *w);
/* Flush, then close; 0 or the first -errno. */
int ms_csv_close(ms_csv_t *w);
/* Close without writing: for a forked child holding the parent's
 * writer. */
void ms_csv_drop(ms_csv_t *w);

/* meta.json: the run, what the server hands over, and the machine. */
typedef struct ms_meta {
    const char *run_id, *policy;
    json_t *config;             /* borrowed: the resolved configuration */
    json_t *workload;           /* borrowed: the workload's description */
    uint64_t heap_pages, heap_objects;
    double build_ms;
    json_t *extra;              /* borrowed, may be NULL: its keys are
                                   set last (e.g. "ksm", "sampling") */
    const char *attribution;    /* the method: "write-sets", "pagemap", ... */
    const char *attribution_why;    /* why not write sets; NULL: they run */
} ms_meta_t;

/*
 * Write path: run_id, policy, config, workload, then the machine's facts
 * (kernel release, transparent_hugepage, ksm_run, git_commit of the
 * working directory, date in UTC, cores, memory_kb, page_size, the
 * allocator's arena_size and pool_size), then heap_pages, heap_objects,
 * build_ms, "attribution": {"method", "reason"}, then every key of
 * extra (replacing one of the above with the same name: cowlab attach
 * sets heap_objects to null).  0 or -errno.
 */
int ms_meta_write(const char *path, const ms_meta_t *m);

#endif
