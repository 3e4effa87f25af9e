/*
 * attach_cmd.c -- `cowlab attach --pid MASTER`: measure a prefork server
 * cowlab did not start.  It snapshots the page frames of the master's
 * private anonymous memory (the "heap"), then every --sample-ms finds the
 * master's children (its workers, found again as they are respawned or
 * recycled) and counts, for each, the heap pages still on the master's
 * page frame, the ones it copied, the ones the master itself wrote since
 * (copied_by_master) and new ones, with smaps_rollup and the fault
 * counters: the server's samples.csv and runs.csv columns where they
 * apply, empty where they need the runtime.  The /proc side and the
 * rules: measure/attach.h.
 *
 * It only reads /proc: it never writes to, signals, traces or stops the
 * target.
 *
 * A round, in this order (the order is what makes a new worker's base
 * right):
 *   1. read the master's frames (cur);
 *   2. list the master's children;
 *   3. a child not seen before is compared from now on against the
 *      master's frames of the previous round (prev), read before the
 *      previous listing, which did not have it: so before its fork;
 *      a child present at the first listing gets the snapshot;
 *   4. sample every child: smaps_rollup, stat, pagemap against its base
 *      and cur; the round's rows go out in one write().
 * Worker numbers: a new worker takes the lowest number no live worker
 * has, i.e. the number of the one it replaces (as the model's server
 * keeps a respawned worker's number); one that takes a number a worker
 * had before counts as a respawn.
 */
#include "attach_cmd.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "attach.h"
#include "clock.h"
#include "fileio.h"
#include "output.h"
#include "procstat.h"
#include "sampler.h"

#define MAX_CHILDREN    4096
#define MAX_RANGES      64              /* --range given at most so often */

typedef struct opts {
    pid_t pid;
    unsigned sample_ms;
    double budget_pct;
    double duration_s;
    const char *out_dir;
    const char *run_id;
    const char *policy;
    int no_pfn;
    int scan;                   /* --children-scan */
    int quiet;
    double max_mapping_gib;
    ps_range_t keep[MAX_RANGES];
    size_t nkeep;
} opts_t;

typedef struct aworker {
    pid_t pid;                  /* 0: a free entry */
    unsigned long long start;   /* clock ticks after boot: pid reuse */
    unsigned index;             /* worker number */
    att_frames_t *base;
    ps_pagemap_t pm;
    int seen;                   /* in this round's listing */
    int sampled;
    double last_shared_pct, last_pd_kb, last_by_master;
} aworker_t;

typedef struct attach {
    opts_t o;
    char run_id[160];
    ps_pagemap_t master_pm;
    att_frames_t *snap;         /* the first read: heap_pages */
    att_frames_t *prev;         /* the previous round's read */
    att_frames_t *spare;        /* a read nobody holds any more */
    att_method_t method;
    const char *method_why;
    att_children_how_t how;
    aworker_t *w;
    size_t nw, capw;
    unsigned char *number_used; /* ever held, by worker number */
    size_t nnumbers;
    pid_t children[MAX_CHILDREN];
    unsigned long long starts[MAX_CHILDREN];
    unsigned long long snap_ticks;  /* boot clock at the snapshot, ticks */
    unsigned respawns, max_live, rounds;
    int listed;                 /* a listing has been made */
    size_t workers_at_attach;
    int said_full, said_pm;
    att_skipped_t skipped;
    uint64_t t0_ns, t0_mono_ns;
    ms_sampler_t sampler;
    ms_csv_t samples;
    int samples_failed;
    const char *end_reason;
} attach_t;

/* ---- messages ---------------------------------------------------------- */

static void
say(const attach_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
say(const attach_t *a, const char *fmt, ...)
{
    va_list ap;

    if (a->o.quiet)
        return;
    va_start(ap, fmt);
    fputs("cowlab attach: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void
usage(FILE *f)
{
    fprintf(f,
"usage: cowlab attach --pid MASTER [options]\n"
"Measure a running prefork server (gunicorn, uWSGI, any master/worker\n"
"process tree): which of the master's private anonymous pages each worker\n"
"still shares (same page frame), has copied, or has new; and which the\n"
"master itself wrote after the snapshot (copied_by_master).  Read-only:\n"
"it never writes to, signals or stops the target.  Page frames need\n"
"CAP_SYS_ADMIN (root); without it the exclusive bit is used instead, an\n"
"upper bound on copies (said at start and in meta.json).\n"
"\n"
"Options (defaults in brackets):\n"
"  -p, --pid PID            the master process (required)\n"
"      --sample-ms N        sampling interval, 1..3600000 [250]\n"
"      --sample-budget PCT  longest share of a core sampling may take before\n"
"                           the interval is lengthened, 0..100; 0 = no limit\n"
"                           [1]\n"
"      --duration S         stop after S seconds; 0 = when the master exits\n"
"                           or on SIGINT/SIGTERM [0]\n"
"  -o, --out DIR            write samples.csv, runs.csv, meta.json there\n"
"                           (without it: one line per worker per round)\n"
"      --run-id ID          run_id column [date-pid]\n"
"      --policy-name NAME   policy column [attach]\n"
"      --range START-END    count only the master's pages in this hex\n"
"                           address range (repeatable)\n"
"      --no-pfn             use the exclusive bit even when page frames\n"
"                           are visible\n"
"      --children-scan      find workers by a scan of /proc even where\n"
"                           /proc/PID/task/TID/children exists\n"
"      --max-mapping GIB    leave out mappings larger than this: address\n"
"                           space reserved, not used (a sanitizer's shadow,\n"
"                           a runtime's reservation), 0..1048576; 0 = no\n"
"                           limit [16]\n"
"  -q, --quiet              no progress messages\n"
"  -h, --help               this text\n"
"\n"
"Attach before the master forks its workers to count exactly: pages the\n"
"master writes between a fork and the attach count as that worker's\n"
"copies.  Stop with SIGINT or SIGTERM: one last round, then runs.csv.\n"
"Exit status: 0 when the run ended (duration, signal, or the master\n"
"exited), 1 if the target cannot be read or the output written, 2 for a\n"
"bad command line.\n");
}

/* ---- options ----------------------------------------------------------- */

static int
parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;

    if (*s == '\0' || s[strspn(s, "0123456789.eE+-")] != '\0')
        return -1;
    errno = 0;
    *out = strtod(s, &end);
    return errno || *end || !isfinite(*out) || *out < lo || *out > hi
        ? -1 : 0;
}

static int
id_ok(const char *s)
{
    if (*s == '\0' || strlen(s) > 128)
        return 0;
    return s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789._-+")] == '\0';
}

/* 0 ok, 1 --help, -1 bad (said). */
static int
parse_opts(opts_t *o, int argc, char **argv)
{
    enum { O_SAMPLE = 256, O_BUDGET, O_DURATION, O_RUNID, O_POLICY,
           O_RANGE, O_NOPFN, O_SCAN, O_MAXMAP };
    static const struct option lo[] = {
        { "pid", required_argument, NULL, 'p' },
        { "sample-ms", required_argument, NULL, O_SAMPLE },
        { "sample-budget", required_argument, NULL, O_BUDGET },
        { "duration", required_argument, NULL, O_DURATION },
        { "out", required_argument, NULL, 'o' },
        { "run-id", required_argument, NULL, O_RUNID },
        { "policy-name", required_argument, NULL, O_POLICY },
        { "range", required_argument, NULL, O_RANGE },
        { "no-pfn", no_argument, NULL, O_NOPFN },
        { "children-scan", no_argument, NULL, O_SCAN },
        { "max-mapping", required_argument, NULL, O_MAXMAP },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    double v;
    int c;

    memset(o, 0, sizeof *o);
    o->sample_ms = 250;
    o->budget_pct = 1.0;
    o->policy = "attach";
    o->max_mapping_gib = 16;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":p:o:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (parse_num(optarg, 1, 4194304, &v) < 0 || v != floor(v)) {
                fprintf(stderr, "cowlab attach: --pid: expected a process "
                        "id, got '%s'\n", optarg);
                return -1;
            }
            o->pid = (pid_t)v;
            break;
        case O_SAMPLE:
            if (parse_num(optarg, 1, 3600000, &v) < 0 || v != floor(v)) {
                fprintf(stderr, "cowlab attach: --sample-ms: expected an "
                        "integer in 1..3600000, got '%s'\n", optarg);
                return -1;
            }
            o->sample_ms = (unsigned)v;
            break;
        case O_BUDGET:
            if (parse_num(optarg, 0, 100, &o->budget_pct) < 0) {
                fprintf(stderr, "cowlab attach: --sample-budget: expected a "
                        "number in 0..100, got '%s'\n", optarg);
                return -1;
            }
            break;
        case O_DURATION:
            if (parse_num(optarg, 0, 31536000, &o->duration_s) < 0) {
                fprintf(stderr, "cowlab attach: --duration: expected "
                        "seconds in 0..31536000, got '%s'\n", optarg);
                return -1;
            }
            break;
        case 'o':
            if (*optarg == '\0') {
                fprintf(stderr, "cowlab attach: --out: empty path\n");
                return -1;
            }
            o->out_dir = optarg;
            break;
        case O_RUNID:
        case O_POLICY:
            if (!id_ok(optarg)) {
                fprintf(stderr, "cowlab attach: --%s: expected 1 to 128 of "
                        "[A-Za-z0-9._+-], got '%s'\n",
                        c == O_RUNID ? "run-id" : "policy-name", optarg);
                return -1;
            }
            if (c == O_RUNID)
                o->run_id = optarg;
            else
                o->policy = optarg;
            break;
        case O_RANGE:
            if (o->nkeep == MAX_RANGES) {
                fprintf(stderr, "cowlab attach: --range: at most %d\n",
                        MAX_RANGES);
                return -1;
            }
            if (att_parse_range(optarg, &o->keep[o->nkeep]) < 0) {
                fprintf(stderr, "cowlab attach: --range: expected START-END "
                        "in hex, page aligned, START < END, got '%s'\n",
                        optarg);
                return -1;
            }
            o->nkeep++;
            break;
        case O_NOPFN:
            o->no_pfn = 1;
            break;
        case O_SCAN:
            o->scan = 1;
            break;
        case O_MAXMAP:
            if (parse_num(optarg, 0, 1048576, &o->max_mapping_gib) < 0) {
                fprintf(stderr, "cowlab attach: --max-mapping: expected GiB "
                        "in 0..1048576, got '%s'\n", optarg);
                return -1;
            }
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            return 1;
        case ':':
            fprintf(stderr, "cowlab attach: %s: missing value\n",
                    argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "cowlab attach: unknown option '%s'\n",
                    argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cowlab attach: unexpected argument '%s'\n",
                argv[optind]);
        return -1;
    }
    if (o->pid == 0) {
        fprintf(stderr, "cowlab attach: --pid is required\n");
        return -1;
    }
    if (o->pid == getpid()) {
        fprintf(stderr, "cowlab attach: --pid %d is this process\n",
                (int)o->pid);
        return -1;
    }
    return 0;
}

/* ---- the target -------------------------------------------------------- */

/* /proc/PID/cmdline as a JSON array (the target's command line). */
static json_t *
cmdline_json(pid_t pid)
{
    char path[64];
    char *text = NULL;
    size_t len = 0;
    json_t *a = json_array();

    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    if (a == NULL || fio_read_file(path, 1 << 20, &text, &len) < 0)
        return a;
    for (size_t i = 0; i < len;) {
        size_t n = strnlen(text + i, len - i);
        json_array_append_new(a, json_stringn(text + i, n));
        i += n + 1;
    }
    free(text);
    return a;
}

static json_t *
target_json(pid_t pid)
{
    char path[64], exe[4096], comm[64];
    ssize_t n;
    json_t *t = json_object();

    if (t == NULL)
        return NULL;
    json_object_set_new(t, "pid", json_integer(pid));
    json_object_set_new(t, "cmdline", cmdline_json(pid));
    snprintf(path, sizeof path, "/proc/%ld/exe", (long)pid);
    n = readlink(path, exe, sizeof exe - 1);
    json_object_set_new(t, "exe", n > 0 ? json_stringn(exe, (size_t)n)
                                        : json_null());
    snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
    FILE *f = fopen(path, "r");
    if (f != NULL && fgets(comm, sizeof comm, f) != NULL) {
        comm[strcspn(comm, "\n")] = '\0';
        json_object_set_new(t, "comm", json_string(comm));
    }
    if (f != NULL)
        fclose(f);
    return t;
}

/* 1 if this process has CAP_SYS_ADMIN in its effective set. */
static int
have_sys_admin(void)
{
    char line[256];
    int yes = 0;
    FILE *f = fopen("/proc/self/status", "r");

    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        unsigned long long caps;

        if (sscanf(line, "CapEff: %llx", &caps) == 1) {
            yes = (int)((caps >> 21) & 1);      /* CAP_SYS_ADMIN = 21 */
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    return yes;
}

static const char *
how_name(att_children_how_t how)
{
    return how == ATT_CHILDREN_FILE ? "task-children-files" : "proc-scan";
}

/* ---- output ------------------------------------------------------------ */

static const char *
out_path(const attach_t *a, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", a->o.out_dir, name);
    return buf;
}

static json_t *
config_json(const attach_t *a)
{
    json_t *c = json_object(), *r = json_array();
    char s[80];

    json_object_set_new(c, "pid", json_integer(a->o.pid));
    json_object_set_new(c, "sample_ms", json_integer(a->o.sample_ms));
    json_object_set_new(c, "sample_budget", json_real(a->o.budget_pct));
    json_object_set_new(c, "duration", json_real(a->o.duration_s));
    json_object_set_new(c, "out", json_string(a->o.out_dir));
    json_object_set_new(c, "run_id", json_string(a->run_id));
    json_object_set_new(c, "policy_name", json_string(a->o.policy));
    json_object_set_new(c, "no_pfn", json_boolean(a->o.no_pfn));
    json_object_set_new(c, "children_scan", json_boolean(a->o.scan));
    json_object_set_new(c, "max_mapping", json_real(a->o.max_mapping_gib));
    for (size_t i = 0; i < a->o.nkeep; i++) {
        snprintf(s, sizeof s, "%lx-%lx", (unsigned long)a->o.keep[i].start,
                 (unsigned long)a->o.keep[i].end);
        json_array_append_new(r, json_string(s));
    }
    json_object_set_new(c, "range", r);
    return c;
}

/* meta.json: the machine (ms_meta_write), then what attach knows. */
static void
write_meta(attach_t *a)
{
    char path[4096];
    size_t nr;
    json_t *x = json_object(), *heap = json_object();

    if (a->o.out_dir == NULL)
        return;
    att_frames_ranges(a->snap, &nr);
    json_object_set_new(x, "tool", json_string("cowlab attach"));
    json_object_set_new(x, "target", target_json(a->o.pid));
    json_object_set_new(x, "method", json_string(
        a->method == ATT_PFN ? "pfn" : "exclusive-bit"));
    json_object_set_new(x, "method_note", json_string(a->method_why));
    json_object_set_new(x, "copies_upper_bound",
                        json_boolean(a->method != ATT_PFN));
    json_object_set_new(x, "children", json_string(how_name(a->how)));
    json_object_set_new(heap, "definition", json_string(
        "the master's readable, private, anonymous mappings at the "
        "snapshot: unnamed, [heap] and [anon:NAME] ones (not the stack, "
        "not file mappings, not one larger than --max-mapping)"));
    json_object_set_new(heap, "ranges", json_integer((json_int_t)nr));
    json_object_set_new(heap, "pages", json_integer(
        (json_int_t)att_frames_pages(a->snap)));
    json_object_set_new(heap, "pages_present", json_integer(
        (json_int_t)att_frames_present(a->snap)));
    json_object_set_new(heap, "mappings_left_out", json_integer(
        (json_int_t)a->skipped.n));
    json_object_set_new(heap, "bytes_left_out", json_integer(
        (json_int_t)a->skipped.bytes));
    json_object_set_new(x, "heap", heap);
    /* what only cowlab's own runtime knows */
    json_object_set_new(x, "heap_objects", json_null());
    json_object_set_new(x, "build_ms", json_null());
    json_object_set_new(x, "arena_size", json_null());
    json_object_set_new(x, "pool_size", json_null());
    json_object_set_new(x, "workers_at_attach",
                        json_integer((json_int_t)a->workers_at_attach));
    json_object_set_new(x, "attached_after_fork",
                        json_boolean(a->workers_at_attach > 0));
    if (a->workers_at_attach > 0)
        json_object_set_new(x, "attached_after_fork_note", json_string(
            "workers were running at the attach: their copies made before "
            "it are counted, and pages the master wrote between their fork "
            "and the attach count as their copies"));
    json_object_set_new(x, "worker_numbers", json_string(
        "a new worker takes the lowest number no live worker has (the "
        "number of the one it replaces); respawns counts those that took a "
        "number held before"));
    json_object_set_new(x, "t0_monotonic_ns",
                        json_integer((json_int_t)a->t0_mono_ns));
    json_object_set_new(x, "rounds", json_integer(a->rounds));
    json_object_set_new(x, "end", a->end_reason ? json_string(a->end_reason)
                                                : json_null());
    ms_meta_t m = {
        .run_id = a->run_id, .policy = a->o.policy,
        .config = config_json(a), .workload = NULL,
        .heap_pages = att_frames_present(a->snap), .heap_objects = 0,
        .build_ms = 0, .extra = x, .attribution = "none",
        .attribution_why = "cowlab attach reads a server from outside: no "
                           "copy attribution",
    };
    int r = ms_meta_write(out_path(a, "meta.json", path, sizeof path), &m);
    if (r < 0)
        fprintf(stderr, "cowlab attach: cannot write meta.json: %s\n",
                strerror(-r));
    json_decref(m.config);
    json_decref(x);
}

static void
write_runs_row(attach_t *a)
{
    char path[4096];
    ms_csv_t w;
    double shared = 0, pd = 0, bym = 0;
    unsigned n = 0;

    if (a->o.out_dir == NULL)
        return;
    for (size_t i = 0; i < a->nw; i++) {
        if (a->w[i].pid == 0 || !a->w[i].sampled)
            continue;
        shared += a->w[i].last_shared_pct;
        pd += a->w[i].last_pd_kb;
        bym += a->w[i].last_by_master;
        n++;
    }
    double secs = (double)(clk_now_ns() - a->t0_ns) / 1e9;
    ms_run_t row = {
        .run_id = a->run_id, .policy = a->o.policy,
        .workers = a->max_live, .heap_objects = MS_U64_UNSET,
        .heap_mb = (double)att_frames_present(a->snap)
                   * (double)sysconf(_SC_PAGESIZE) / 1048576.0,
        .build_ms = MS_UNSET, .fork_ms = MS_UNSET,
        .requests = MS_U64_UNSET, .rps = MS_UNSET,
        .heap_shared_pct = n ? shared / n : MS_UNSET,
        .private_dirty_kb = n ? pd / n : MS_UNSET,
        .teardown_ms = MS_UNSET, .faults_teardown = MS_UNSET,
        .exit = NULL, .scale = MS_UNSET, .workload = NULL, .gc = NULL,
        .gc_threshold = { MS_I64_UNSET, MS_I64_UNSET, MS_I64_UNSET },
        .freeze = MS_U64_UNSET, .immortal = MS_U64_UNSET,
        .lazy = MS_U64_UNSET, .respawns = a->respawns,
        .duration_s = secs, .copied_by_teardown = MS_UNSET,
        .sample_ms = a->sampler.interval_ms,
        .responses_4xx = MS_U64_UNSET, .responses_5xx = MS_U64_UNSET,
        .copied_by_master = n && a->method == ATT_PFN ? bym / n : MS_UNSET,
        .refork_generation = MS_U64_UNSET, .reforks = MS_U64_UNSET,
        .recycles = MS_U64_UNSET, .ksm = MS_U64_UNSET,
        .ksmd_cpu_s = MS_UNSET, .ksm_pages_sharing = MS_UNSET,
        .heap_identical_pages = MS_UNSET, .cpu_s = MS_UNSET,
        .fork_gc_count = { MS_I64_UNSET, MS_I64_UNSET, MS_I64_UNSET },
        .fork_long_lived_pending = MS_U64_UNSET,
        .fork_long_lived_total = MS_U64_UNSET,
        .first_full_gc_request = MS_UNSET, .workers_full_gc = MS_U64_UNSET,
        .teardown_collections = MS_UNSET, .heap_released_pages = MS_UNSET,
        .attribution = "none", .written_pages = MS_U64_UNSET,
        .written_requests = MS_U64_UNSET, .written_per_request = MS_UNSET,
        .top_copy_route_pct = MS_UNSET, .wset_check_pages = MS_UNSET,
        /* the runtime's designs: not ours to know */
        .gc_layout = NULL, .refcount = NULL, .warmup = MS_U64_UNSET,
        .warmup_collected = MS_UNSET, .warmup_promoted = MS_UNSET,
        .warmup_hashes = MS_UNSET, .warmup_pages_released = MS_UNSET,
        .warmup_frozen = MS_UNSET, .warmup_ms = MS_UNSET,
        .gc_inline_bytes = MS_UNSET, .gc_side_bytes = MS_UNSET,
        .gc_side_pages = MS_UNSET, .gc_objects = MS_UNSET,
        .gc_bytes_per_object = MS_UNSET, .rc_table_entries = MS_UNSET,
        .rc_table_bytes = MS_UNSET, .side_pages = MS_UNSET,
        .side_copied_pages = MS_UNSET,
    };
    int r = ms_csv_open(&w, out_path(a, "runs.csv", path, sizeof path),
                        &ms_runs_table);
    if (r == 0) {
        ms_csv_add(&w, &row);
        r = ms_csv_close(&w);
    }
    if (r < 0)
        fprintf(stderr, "cowlab attach: cannot write runs.csv: %s\n",
                strerror(-r));
}

/* ---- workers ----------------------------------------------------------- */

static void
drop_worker(aworker_t *w)
{
    ps_pagemap_close(&w->pm);
    att_frames_unref(w->base);
    memset(w, 0, sizeof *w);
    w->pm.fd = -1;
}

/* The lowest worker number no live worker has. */
static int
free_number(attach_t *a, unsigned *out)
{
    for (unsigned k = 0;; k++) {
        int taken = 0;

        for (size_t i = 0; i < a->nw && !taken; i++)
            taken = a->w[i].pid != 0 && a->w[i].index == k;
        if (taken)
            continue;
        if (k >= a->nnumbers) {
            size_t n = a->nnumbers ? a->nnumbers * 2 : 16;
            while (n <= k)
                n *= 2;
            unsigned char *t = realloc(a->number_used, n);
            if (t == NULL)
                return -ENOMEM;
            memset(t + a->nnumbers, 0, n - a->nnumbers);
            a->number_used = t;
            a->nnumbers = n;
        }
        *out = k;
        return 0;
    }
}

static aworker_t *
find_worker(attach_t *a, pid_t pid)
{
    for (size_t i = 0; i < a->nw; i++)
        if (a->w[i].pid == pid)
            return &a->w[i];
    return NULL;
}

/* A child first seen in this round: compared against base from now on. */
static int
add_worker(attach_t *a, pid_t pid, unsigned long long start,
           att_frames_t *base)
{
    aworker_t *w = NULL;
    unsigned k;

    for (size_t i = 0; i < a->nw && w == NULL; i++)
        if (a->w[i].pid == 0)
            w = &a->w[i];
    if (w == NULL) {
        if (a->nw == a->capw) {
            size_t c = a->capw ? a->capw * 2 : 16;
            aworker_t *t = realloc(a->w, c * sizeof *t);
            if (t == NULL)
                return -ENOMEM;
            a->w = t;
            a->capw = c;
        }
        w = &a->w[a->nw++];
        memset(w, 0, sizeof *w);
        w->pm.fd = -1;
    }
    if (free_number(a, &k) < 0)
        return -ENOMEM;
    int err = ps_pagemap_open(&w->pm, pid);
    if (err < 0) {
        if (!a->said_pm)
            fprintf(stderr, "cowlab attach: cannot read the pagemap of "
                    "worker pid %d: %s\n", (int)pid, strerror(-err));
        a->said_pm = 1;
        w->pm.fd = -1;
        return err;
    }
    w->pid = pid;
    w->start = start;
    w->index = k;
    w->base = att_frames_ref(base);
    w->seen = 1;
    int respawn = a->number_used[k];
    a->respawns += (unsigned)respawn;
    a->number_used[k] = 1;
    say(a, "worker %u: pid %d%s", k, (int)pid,
        respawn ? " (replaces an exited one)" : "");
    return 0;
}

/* Step 2 and 3 of a round: the listing, new and gone workers.
 * -ESRCH: the master is gone. */
static int
update_workers(attach_t *a)
{
    size_t n = 0;
    att_children_how_t how;
    int err = att_children(a->o.pid, a->children, MAX_CHILDREN, &n,
                           a->o.scan, &how);

    if (err == -ENOSPC && !a->said_full) {
        fprintf(stderr, "cowlab attach: more than %d children: sampling "
                "the first %d\n", MAX_CHILDREN, MAX_CHILDREN);
        a->said_full = 1;
    } else if (err < 0 && err != -ENOSPC) {
        return err;
    }
    a->how = how;
    /* Known workers first, then the gone ones leave (freeing their
     * numbers), then the new ones come: a worker replaced between two
     * rounds hands its number to its replacement. */
    size_t nnew = 0;
    for (size_t i = 0; i < a->nw; i++)
        a->w[i].seen = 0;
    for (size_t i = 0; i < n; i++) {
        pid_t pid = a->children[i], ppid;
        unsigned long long start;
        aworker_t *w = find_worker(a, pid);

        if (att_proc_start(pid, &ppid, &start) < 0 || ppid != a->o.pid)
            continue;                           /* gone already */
        if (w != NULL && w->start == start) {
            w->seen = 1;
            continue;
        }
        if (!a->listed && start < a->snap_ticks)
            a->workers_at_attach++;             /* forked before the snapshot */
        a->children[nnew] = pid;                /* new: kept for below */
        a->starts[nnew++] = start;
    }
    for (size_t i = 0; i < a->nw; i++) {
        if (a->w[i].pid != 0 && !a->w[i].seen) {
            say(a, "worker %u: pid %d exited", a->w[i].index,
                (int)a->w[i].pid);
            drop_worker(&a->w[i]);
        }
    }
    for (size_t i = 0; i < nnew; i++) {
        /* Before the first listing a child gets the snapshot; after, the
         * previous round's frames, read before its fork (see the top). */
        add_worker(a, a->children[i], a->starts[i],
                   a->listed ? a->prev : a->snap);
    }
    a->listed = 1;
    return 0;
}

/* ---- a round ----------------------------------------------------------- */

static void
print_line(const attach_t *a, const aworker_t *w, double t_ms,
           const att_counts_t *c, const ps_smaps_t *sm, double pct)
{
    char bym[32];

    if (a->method == ATT_PFN)
        snprintf(bym, sizeof bym, "%llu", (unsigned long long)c->by_master);
    else
        snprintf(bym, sizeof bym, "?");
    printf("t=%.1fs worker %u pid %d: %.1f%% shared: copied %llu%s, by "
           "master %s, new %llu, of %llu heap pages; private dirty %ld kB\n",
           t_ms / 1e3, w->index, (int)w->pid, pct,
           (unsigned long long)c->copied,
           a->method == ATT_PFN ? "" : " (upper bound)", bym,
           (unsigned long long)c->new_pages,
           (unsigned long long)c->heap_pages, sm->private_dirty_kb);
}

/* One round (see the top).  0, or -ESRCH when the master is gone (no
 * rows are written for that round). */
static int
round_once(attach_t *a)
{
    att_frames_t *cur = a->spare;
    int err;

    a->spare = NULL;
    if (cur == NULL) {
        err = att_frames_like(&cur, a->snap);
        if (err < 0)
            return err;
    }
    err = att_frames_read(cur, &a->master_pm);
    if (err == 0)
        err = update_workers(a);
    if (err < 0) {
        att_frames_unref(cur);
        return err;
    }
    double t_ms = (double)(clk_now_ns() - a->t0_ns) / 1e6;
    unsigned live = 0;
    for (size_t i = 0; i < a->nw; i++) {
        aworker_t *w = &a->w[i];
        ps_smaps_t sm;
        ps_stat_t st;
        att_counts_t c;

        if (w->pid == 0)
            continue;
        live++;
        if (ps_read_smaps_rollup(w->pid, &sm) < 0
            || ps_read_stat(w->pid, &st) < 0
            || att_count(w->base, cur, &w->pm, a->method, &c) < 0)
            continue;               /* it just exited: the next listing */
        double pct = c.heap_pages
            ? 100.0 * (1.0 - (double)c.copied / (double)c.heap_pages) : 0;
        w->sampled = 1;
        w->last_shared_pct = pct;
        w->last_pd_kb = (double)sm.private_dirty_kb;
        w->last_by_master = (double)c.by_master;
        if (a->o.out_dir == NULL) {
            print_line(a, w, t_ms, &c, &sm, pct);
            continue;
        }
        int pfn = a->method == ATT_PFN;
        ms_sample_t row = {
            .run_id = a->run_id, .policy = a->o.policy,
            .worker = w->index, .pid = w->pid, .t_ms = t_ms,
            .requests = MS_U64_UNSET,
            .rss_kb = sm.rss_kb, .pss_kb = sm.pss_kb,
            .shared_clean_kb = sm.shared_clean_kb,
            .shared_dirty_kb = sm.shared_dirty_kb,
            .private_clean_kb = sm.private_clean_kb,
            .private_dirty_kb = sm.private_dirty_kb,
            .minflt = st.minflt, .majflt = st.majflt,
            .heap_pages = c.heap_pages, .heap_copied_pages = c.copied,
            .heap_shared_pct = pct,
            .gc_collections_0 = MS_U64_UNSET,
            .gc_collections_1 = MS_U64_UNSET,
            .gc_collections_2 = MS_U64_UNSET,
            .gc_time_us = MS_U64_UNSET, .faults_gc = MS_U64_UNSET,
            .faults_request = MS_U64_UNSET, .faults_other = MS_I64_UNSET,
            .sample_ms = a->sampler.interval_ms,
            .copied_by_gc = MS_U64_UNSET,
            .copied_by_request = MS_U64_UNSET,
            .copied_unattributed = MS_U64_UNSET,
            .gc_measured = MS_U64_UNSET,
            .copied_by_master = pfn ? c.by_master : MS_U64_UNSET,
            .heap_new_pages = c.new_pages,
            .heap_shared_pages = pfn ? c.shared : MS_U64_UNSET,
            .role = NULL, .refork_generation = MS_U64_UNSET,
            .heap_identical_pages = MS_UNSET, .ksm_merging_pages = MS_UNSET,
            .heap_ksm_pages = MS_UNSET, .heap_moved_pages = MS_UNSET,
            .heap_released_pages = MS_U64_UNSET,
            .attribution = "none", .written_pages = MS_U64_UNSET,
            .written_requests = MS_U64_UNSET, .wset_scans = MS_U64_UNSET,
            .wset_skipped = MS_U64_UNSET, .wset_ms = MS_UNSET,
            .faults_sampling = MS_U64_UNSET,
            .side_pages = MS_U64_UNSET, .side_copied_pages = MS_U64_UNSET,
            .rc_table_entries = MS_U64_UNSET,
            .rc_table_bytes = MS_U64_UNSET,
        };
        ms_csv_add(&a->samples, &row);
    }
    if (live > a->max_live)
        a->max_live = live;
    if (a->o.out_dir != NULL) {
        /* the whole round in one write(): a killed attach leaves whole
         * rows */
        int r = ms_csv_flush(&a->samples);
        if (r < 0 && !a->samples_failed) {
            a->samples_failed = 1;
            fprintf(stderr, "cowlab attach: cannot write samples.csv: %s\n",
                    strerror(-r));
        }
    } else {
        fflush(stdout);
    }
    /* cur becomes prev; the old prev is kept for reuse if no worker
     * holds it */
    if (att_frames_unique(a->prev) && a->prev != a->snap)
        a->spare = a->prev;
    else
        att_frames_unref(a->prev);
    a->prev = cur;
    a->rounds++;
    return 0;
}

/* ---- the command ------------------------------------------------------- */

static int
start(attach_t *a)
{
    ps_range_t *r = NULL;
    size_t nr = 0;
    int err;

    err = att_read_maps(a->o.pid,
                        (uint64_t)(a->o.max_mapping_gib * 1073741824.0),
                        &r, &nr, &a->skipped);
    if (err < 0) {
        fprintf(stderr, "cowlab attach: --pid %d: %s\n", (int)a->o.pid,
                err == -ENOENT || err == -ESRCH ? "no such process"
                : strerror(-err));
        return err == -ENOENT || err == -ESRCH ? 2 : 1;
    }
    if (a->skipped.n > 0)
        fprintf(stderr, "cowlab attach: left out %zu mapping%s larger than "
                "--max-mapping %g GiB (%.1f GiB of address space in all)\n",
                a->skipped.n, a->skipped.n == 1 ? "" : "s",
                a->o.max_mapping_gib, (double)a->skipped.bytes / 1073741824.0);
    if (a->o.nkeep > 0 && att_clip_ranges(&r, &nr, a->o.keep,
                                          a->o.nkeep) < 0) {
        free(r);
        fprintf(stderr, "cowlab attach: out of memory\n");
        return 1;
    }
    if (nr == 0) {
        free(r);
        fprintf(stderr, "cowlab attach: pid %d has no private anonymous "
                "memory%s\n", (int)a->o.pid,
                a->o.nkeep ? " in the --range given" : "");
        return 1;
    }
    err = ps_pagemap_open(&a->master_pm, a->o.pid);
    if (err == 0)
        err = att_frames_new(&a->snap, r, nr);
    free(r);
    if (err == 0) {
        /* A child whose start time (boot clock, in ticks: proc(5)) is
         * before this was forked before the snapshot: the attach came
         * after its fork.  Within the same tick it counts as after. */
        struct timespec bt;
        long h = sysconf(_SC_CLK_TCK);
        unsigned long long hz = h > 0 ? (unsigned long long)h : 100;
        clock_gettime(CLOCK_BOOTTIME, &bt);
        a->snap_ticks = (unsigned long long)bt.tv_sec * hz
                        + (unsigned long long)bt.tv_nsec / (1000000000ull / hz);
        a->t0_ns = clk_now_ns();
        a->t0_mono_ns = a->t0_ns;
        err = att_frames_read(a->snap, &a->master_pm);
    }
    if (err < 0) {
        fprintf(stderr, "cowlab attach: cannot read /proc/%d/pagemap: %s%s\n",
                (int)a->o.pid, strerror(-err),
                err == -EACCES || err == -EPERM
                ? " (run as root, or as the target's user)" : "");
        return 1;
    }
    int have = att_frames_have_pfn(a->snap);
    if (a->o.no_pfn) {
        a->method = ATT_EXCLUSIVE;
        a->method_why = "--no-pfn: the exclusive bit (bit 56); copies are "
                        "an upper bound, copied_by_master is not measured";
    } else if (have == 1 || (have < 0 && have_sys_admin())) {
        a->method = ATT_PFN;
        a->method_why = "page frame numbers (pagemap bits 0-54): exact";
    } else {
        a->method = ATT_EXCLUSIVE;
        a->method_why = "page frames are hidden (they need CAP_SYS_ADMIN): "
                        "the exclusive bit (bit 56) instead; copies are an "
                        "upper bound (a page the master wrote counts as "
                        "copied in a worker that alone still maps it), "
                        "copied_by_master and heap_shared_pages are not "
                        "measured";
        fprintf(stderr, "cowlab attach: warning: %s\n", a->method_why);
    }
    a->prev = att_frames_ref(a->snap);
    return 0;
}


int
srv_attach_main(int argc, char **argv)
{
    attach_t a;
    int rc;

    memset(&a, 0, sizeof a);
    a.master_pm.fd = -1;
    a.samples.fd = -1;
    rc = parse_opts(&a.o, argc, argv);
    if (rc != 0) {
        if (rc > 0) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "Try 'cowlab attach --help'.\n");
        return 2;
    }
    if (a.o.run_id) {
        snprintf(a.run_id, sizeof a.run_id, "%s", a.o.run_id);
    } else {
        time_t now = time(NULL);
        char ts[32];
        struct tm tm;
        strftime(ts, sizeof ts, "%Y%m%d-%H%M%S", localtime_r(&now, &tm));
        snprintf(a.run_id, sizeof a.run_id, "%s-attach-%d", ts,
                 (int)a.o.pid);
    }
    /* An unwritable --out is an error now, not mid-run. */
    if (a.o.out_dir) {
        char path[4096];
        int r = fio_mkdir_p(a.o.out_dir);
        if (r == 0)
            r = ms_csv_open(&a.samples, out_path(&a, "samples.csv", path,
                                                 sizeof path),
                            &ms_samples_table);
        if (r < 0) {
            fprintf(stderr, "cowlab attach: --out %s: %s\n", a.o.out_dir,
                    strerror(-r));
            return 2;
        }
    }
    rc = start(&a);
    if (rc != 0)
        goto out;

    /* The stop signals are taken by sigtimedwait() between rounds. */
    sigset_t stop;
    int got_signal = 0;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    size_t nr;
    att_frames_ranges(a.snap, &nr);
    printf("attached to pid %d: %zu ranges, %zu heap pages present "
           "(%.1f MiB); %s\n", (int)a.o.pid, nr, att_frames_present(a.snap),
           (double)att_frames_present(a.snap) * (double)sysconf(_SC_PAGESIZE)
           / 1048576.0, a.method == ATT_PFN ? "page frames"
                        : "exclusive bit (upper bound)");
    fflush(stdout);
    ms_sampler_init(&a.sampler, a.o.sample_ms, a.o.budget_pct, clk_now_ns());

    /* the first round now: who was there at the attach */
    int err = round_once(&a);
    if (err == 0) {
        say(&a, "%zu workers at the attach (found by %s)%s",
            a.workers_at_attach, how_name(a.how),
            a.workers_at_attach ? ": their pages written by the master "
            "before now count as theirs" : "");
        write_meta(&a);
    }
    uint64_t end = a.o.duration_s > 0
        ? a.t0_ns + (uint64_t)(a.o.duration_s * 1e9) : 0;
    while (err == 0) {
        uint64_t now = clk_now_ns();
        struct timespec zero = { 0, 0 };
        int sig = sigtimedwait(&stop, NULL, &zero);
        if (sig > 0)
            got_signal = sig;
        if (got_signal) {
            a.end_reason = got_signal == SIGINT ? "SIGINT"
                           : got_signal == SIGHUP ? "SIGHUP" : "SIGTERM";
            err = round_once(&a);               /* the last one */
            break;
        }
        if (end && now >= end) {
            a.end_reason = "--duration reached";
            break;
        }
        if (!ms_sampler_due(&a.sampler, now)) {
            int ms = ms_sampler_wait_ms(&a.sampler, now);
            if (end) {
                uint64_t left = (end - now + 999999) / 1000000;
                if ((uint64_t)ms > left)
                    ms = (int)left;
            }
            struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
            sig = sigtimedwait(&stop, NULL, &ts);
            if (sig > 0)
                got_signal = sig;
            continue;
        }
        uint64_t cpu0 = clk_cpu_ns();
        err = round_once(&a);
        double cost = (double)(clk_cpu_ns() - cpu0) / 1e6;
        unsigned was = ms_sampler_done(&a.sampler, cost, clk_now_ns());
        if (a.sampler.interval_ms != was)
            say(&a, "a round took %.1f ms of CPU: interval %u -> %u ms "
                "(--sample-budget %g%% of a core)", cost, was,
                a.sampler.interval_ms, a.o.budget_pct);
    }
    if (err == -ESRCH || err == -ENOENT) {
        a.end_reason = "the master exited";
        err = 0;
    }
    if (err < 0) {
        fprintf(stderr, "cowlab attach: %s\n", strerror(-err));
        rc = 1;
        if (a.end_reason == NULL)
            a.end_reason = strerror(-err);
    }
    say(&a, "stopped (%s) after %u rounds, %u respawns", a.end_reason,
        a.rounds, a.respawns);
    if (a.rounds > 0 || a.end_reason) {
        write_runs_row(&a);
        write_meta(&a);
    }
    if (a.samples_failed)
        rc = 1;
out:
    if (a.samples.fd >= 0 && ms_csv_close(&a.samples) < 0)
        rc = 1;
    for (size_t i = 0; i < a.nw; i++)
        if (a.w[i].pid)
            drop_worker(&a.w[i]);
    free(a.w);
    free(a.number_used);
    att_frames_unref(a.prev);
    att_frames_unref(a.spare);
    att_frames_unref(a.snap);
    ps_pagemap_close(&a.master_pm);
    return rc;
}
