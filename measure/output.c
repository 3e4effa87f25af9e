/*
 * output.c -- the server's output files: the column tables of samples.csv,
 * runs.csv and types.csv, the round-at-a-time CSV writer, and meta.json.
 *
 * The tables are the schema.  Their order and names are what users'
 * plots and scripts/runner.py read: append new columns at the end, never
 * rename or reorder one.  Each meaning is the README's column table
 * (`cowlab --print-columns FILE`, `make readme-columns`; a test fails
 * when the README differs).
 */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "mem.h"

/* ---- samples.csv -------------------------------------------------------- */

#define S ms_sample_t
static const ms_column_t sample_cols[] = {
    /* ../shared/DESIGN.md's list, in its order */
    MS_COL_TEXT(S, run_id, "run_id", "",
                "the run (`--run-id`, or from the date)"),
    MS_COL_TEXT(S, policy, "policy", "",
                "policy label (`--policy-name`, or derived: default, "
                "gc-off, freeze, freeze+immortal, lazy, ...)"),
    MS_COL_U64(S, worker, "worker", "",
               "logical worker number (kept by a respawned worker)"),
    MS_COL_I64(S, pid, "pid", "", "the worker process"),
    MS_COL_FIXED(S, t_ms, 1, "t_ms", "ms",
                 "time since the workers were forked"),
    MS_COL_U64(S, requests, "requests", "", "requests this process served"),
    MS_COL_I64(S, rss_kb, "rss_kb", "kB", "`Rss:` of smaps_rollup"),
    MS_COL_I64(S, pss_kb, "pss_kb", "kB", "`Pss:`"),
    MS_COL_I64(S, shared_clean_kb, "shared_clean_kb", "kB",
               "`Shared_Clean:`"),
    MS_COL_I64(S, shared_dirty_kb, "shared_dirty_kb", "kB",
               "`Shared_Dirty:`"),
    MS_COL_I64(S, private_clean_kb, "private_clean_kb", "kB",
               "`Private_Clean:`"),
    MS_COL_I64(S, private_dirty_kb, "private_dirty_kb", "kB",
               "`Private_Dirty:`"),
    MS_COL_I64(S, minflt, "minflt", "",
               "minor faults, cumulative (`/proc/PID/stat`)"),
    MS_COL_I64(S, majflt, "majflt", "", "major faults, cumulative"),
    MS_COL_U64(S, heap_pages, "heap_pages", "pages",
               "heap pages present in the master at fork"),
    MS_COL_U64(S, heap_copied_pages, "heap_copied_pages", "pages",
               "of those, copied by this worker and not released since "
               "(write sets: the copies it counted; with `--ksm` or "
               "without them, its pagemap: present and exclusive)"),
    MS_COL_FIXED(S, heap_shared_pct, 3, "heap_shared_pct", "%",
                 "100 × (1 − (copied + released) / heap_pages)"),
    MS_COL_U64(S, gc_collections_0, "gc_collections_0", "",
               "this worker's generation-0 collections"),
    MS_COL_U64(S, gc_collections_1, "gc_collections_1", "",
               "generation-1 collections"),
    MS_COL_U64(S, gc_collections_2, "gc_collections_2", "",
               "full collections"),
    MS_COL_U64(S, gc_time_us, "gc_time_us", "µs", "time in collections"),
    MS_COL_U64(S, faults_gc, "faults_gc", "",
               "minor faults inside collections"),
    MS_COL_U64(S, faults_request, "faults_request", "",
               "minor faults inside request handling, collections and "
               "faults_sampling excluded"),
    MS_COL_I64(S, faults_other, "faults_other", "",
               "minflt − faults_gc − faults_request − faults_sampling"),
    /* appended after DESIGN.md's list */
    MS_COL_U64(S, sample_ms, "sample_ms", "ms",
               "sampling interval in force"),
    MS_COL_U64(S, copied_by_gc, "copied_by_gc", "pages",
               "heap pages copied inside collections (write sets: every "
               "one; pagemap: the bracketed ones)"),
    MS_COL_U64(S, copied_by_request, "copied_by_request", "pages",
               "heap pages copied while serving requests: handlers and the "
               "HTTP layer (`(server)` in routes.csv)"),
    MS_COL_U64(S, copied_unattributed, "copied_unattributed", "pages",
               "write sets: copied before the worker's first instruction "
               "(0); pagemap: between measurements that saw an "
               "unbracketed collection"),
    MS_COL_U64(S, gc_measured, "gc_measured", "",
               "pagemap: collections bracketed by pagemap reads"),
    MS_COL_U64(S, copied_by_master, "copied_by_master", "pages",
               "`cowlab attach`: heap pages the master itself wrote after "
               "the snapshot (its page frame moved), not this worker's "
               "copies; empty without page frames, and in the model's "
               "runs (its master writes no heap page)"),
    MS_COL_U64(S, heap_new_pages, "heap_new_pages", "pages",
               "`cowlab attach`: pages of the heap's ranges this worker has "
               "that the master did not have at the snapshot"),
    MS_COL_U64(S, heap_shared_pages, "heap_shared_pages", "pages",
               "`cowlab attach`: heap pages on the same page frame as the "
               "master's now; empty without page frames"),
    MS_COL_U64(S, heap_released_pages, "heap_released_pages", "pages",
               "heap pages present at fork that this worker gave back "
               "since (an arena or chunk unmapped): neither shared nor "
               "copied, and not counted as copies if their address is "
               "mapped again"),
    /* fleet strategies (README "Fleet") */
    MS_COL_TEXT(S, role, "role", "",
                "`worker`, or `mold` (`--refork-after`: a former worker "
                "that only forks new workers)"),
    MS_COL_U64(S, refork_generation, "refork_generation", "",
               "0: forked by the master; g: forked by the g-th mold.  "
               "Copies count against the snapshot of the process it was "
               "forked from"),
    MS_COL_FIXED(S, heap_identical_pages, 0, "heap_identical_pages",
                 "pages",
                 "of the copied pages, those whose bytes equal the "
                 "master's (or the mold's) again (`--identical-pages`; "
                 "else empty)"),
    MS_COL_FIXED(S, ksm_merging_pages, 0, "ksm_merging_pages", "pages",
                 "pages of this process merged by KSM, all memory "
                 "(`/proc/PID/ksm_stat`; `--ksm`, else empty)"),
    MS_COL_FIXED(S, heap_ksm_pages, 0, "heap_ksm_pages", "pages",
                 "heap pages present in the master at fork that this "
                 "process maps as KSM pages (kpageflags; `--ksm` as root)"),
    MS_COL_FIXED(S, heap_moved_pages, 0, "heap_moved_pages", "pages",
                 "with reforking, as root: snapshot pages whose frame "
                 "differs from the mold's at its snapshot; 0 for a mold "
                 "that wrote none, its workers' copies for them (else "
                 "empty)"),
    MS_COL_TEXT(S, attribution, "attribution", "",
                "how this worker attributes copies: `write-sets` (exact), "
                "`pagemap` (bracketing), `none`"),
    MS_COL_U64(S, written_pages, "written_pages", "pages",
               "write sets: heap pages written by the sampled requests "
               "(copied before or not: the write rate), one request every "
               "`--write-sample-ms`"),
    MS_COL_U64(S, written_requests, "written_requests", "",
               "requests sampled for written_pages"),
    MS_COL_U64(S, wset_scans, "wset_scans", "",
               "write-set scans done (PAGEMAP_SCAN over the heap)"),
    MS_COL_U64(S, wset_skipped, "wset_skipped", "",
               "scans skipped: no page fault since the last one, so no "
               "copy"),
    MS_COL_FIXED(S, wset_ms, 1, "wset_ms", "ms",
                 "time the worker spent in write-set scans and sampling"),
    MS_COL_U64(S, faults_sampling, "faults_sampling", "",
               "minor faults the written_pages samples added (one per "
               "copied page a sampled request wrote again); not in "
               "faults_request nor faults_other"),
    /* designs (README "Designs") */
    MS_COL_U64(S, side_pages, "side_pages", "pages",
               "pages of the collector's side memory (`--gc-layout "
               "side|bitmap`: slots or bitmaps, outside the heap) present "
               "in the master at fork; 0 under `inline` (none); empty for "
               "a mold's workers"),
    MS_COL_U64(S, side_copied_pages, "side_copied_pages", "pages",
               "of those, copied by this worker (present and exclusive, as "
               "heap_copied_pages): what its collections copy outside the "
               "heap"),
    MS_COL_U64(S, rc_table_entries, "rc_table_entries", "",
               "`--refcount split`: inherited objects whose count this "
               "worker keeps in its own table (0 under `inline`)"),
    MS_COL_U64(S, rc_table_bytes, "rc_table_bytes", "B",
               "that table's bytes (private memory of the worker)"),
};
#undef S

/* ---- runs.csv ----------------------------------------------------------- */

static void
fmt_threshold(const ms_column_t *c, const void *row, ms_buf_t *out)
{
    const ms_run_t *r = row;
    (void)c;
    if (r->gc_threshold[0] == MS_I64_UNSET)
        return;                 /* not ours to know (cowlab attach) */
    ms_buf_printf(out, "%lld-%lld-%lld", (long long)r->gc_threshold[0],
                  (long long)r->gc_threshold[1],
                  (long long)r->gc_threshold[2]);
}

#define R ms_run_t
static const ms_column_t run_cols[] = {
    MS_COL_TEXT(R, run_id, "run_id", "", "the run"),
    MS_COL_TEXT(R, policy, "policy", "", "policy label"),
    MS_COL_U64(R, workers, "workers", "", "`-w`"),
    MS_COL_U64(R, heap_objects, "heap_objects", "",
               "objects in the master's heap (a lazy worker's heap when "
               "`--lazy`)"),
    MS_COL_FIXED(R, heap_mb, 2, "heap_mb", "MiB", "heap_pages × page size"),
    MS_COL_FIXED(R, build_ms, 1, "build_ms", "ms",
                 "heap build and policy in the master"),
    MS_COL_FIXED(R, fork_ms, 2, "fork_ms", "ms", "forking all workers"),
    MS_COL_U64(R, requests, "requests", "",
               "requests served by all workers"),
    MS_COL_FIXED(R, rps, 1, "rps", "1/s",
                 "requests / duration_s (the runner's own summary uses "
                 "wrk's figure)"),
    MS_COL_EMPTY("p50_ms", "ms", "empty here; filled by the runner from wrk"),
    MS_COL_EMPTY("p99_ms", "ms", "empty here; filled by the runner from wrk"),
    MS_COL_FIXED(R, heap_shared_pct, 3, "heap_shared_pct", "%",
                 "mean over workers of their last sample"),
    MS_COL_FIXED(R, private_dirty_kb, 0, "private_dirty_kb", "kB",
                 "mean over workers of their last sample"),
    MS_COL_FIXED(R, teardown_ms, 3, "teardown_ms", "ms",
                 "mean worker exit-policy time (finalize or skip) at the "
                 "final stop"),
    MS_COL_FIXED(R, faults_teardown, 0, "faults_teardown", "",
                 "mean minor faults of that teardown"),
    MS_COL_TEXT(R, exit, "exit", "", "finalize or skip"),
    MS_COL_G(R, scale, "scale", "", "`--scale`"),
    MS_COL_TEXT(R, workload, "workload", "", "workload name or file"),
    MS_COL_TEXT(R, gc, "gc", "", "on or off"),
    { "gc_threshold", "", "A-B-C", fmt_threshold, 0, 0 },
    MS_COL_U64(R, freeze, "freeze", "", "0 or 1"),
    MS_COL_U64(R, immortal, "immortal", "", "0 or 1"),
    MS_COL_U64(R, lazy, "lazy", "", "0 or 1"),
    MS_COL_U64(R, respawns, "respawns", "", "workers respawned after dying"),
    MS_COL_FIXED(R, duration_s, 2, "duration_s", "s",
                 "from fork to the end of the run"),
    MS_COL_FIXED(R, copied_by_teardown, 0, "copied_by_teardown", "pages",
                 "mean heap pages copied by the teardown"),
    MS_COL_U64(R, sample_ms, "sample_ms", "ms",
               "sampling interval in force at the end"),
    MS_COL_U64(R, responses_4xx, "responses_4xx", "",
               "4xx answers of every worker process of the run (the "
               "handler's and the HTTP layer's own: 400, 408, 413, 414, "
               "431, ...)"),
    MS_COL_U64(R, responses_5xx, "responses_5xx", "",
               "5xx answers of every worker process of the run (503 over "
               "`--max-connections`, 505, the handler's)"),
    MS_COL_FIXED(R, copied_by_master, 0, "copied_by_master", "pages",
                 "`cowlab attach`: mean over workers of their last sample"),
    MS_COL_TEXT(R, python, "python", "", "`--python`: 3.11 or 3.12"),
    MS_COL_TEXT(R, prefork_gc, "prefork_gc", "",
                "`--prefork-gc`: import or collected"),
    MS_COL_I64(R, fork_gc_count[0], "fork_gc_count_0", "",
               "`gc.get_count()[0]` in the master at fork (after the "
               "policy)"),
    MS_COL_I64(R, fork_gc_count[1], "fork_gc_count_1", "",
               "`gc.get_count()[1]` at fork"),
    MS_COL_I64(R, fork_gc_count[2], "fork_gc_count_2", "",
               "`gc.get_count()[2]` at fork"),
    MS_COL_U64(R, fork_long_lived_pending, "fork_long_lived_pending", "",
               "objects promoted to generation 2 since the last full "
               "collection, at fork"),
    MS_COL_U64(R, fork_long_lived_total, "fork_long_lived_total", "",
               "survivors of the last full collection before fork"),
    MS_COL_FIXED(R, first_full_gc_request, 1, "first_full_gc_request", "",
                 "mean over the workers that ran one of the request during "
                 "which their first full collection ran (1 = the first); "
                 "empty if none did"),
    MS_COL_U64(R, workers_full_gc, "workers_full_gc", "",
               "workers that ran a full collection"),
    MS_COL_FIXED(R, teardown_collections, 1, "teardown_collections", "",
                 "mean full collections finalize ran"),
    MS_COL_FIXED(R, heap_released_pages, 0, "heap_released_pages", "pages",
                 "mean over workers of their last sample"),
    /* fleet strategies */
    MS_COL_U64(R, refork_generation, "refork_generation", "",
               "generation of the last mold (0: no refork)"),
    MS_COL_U64(R, reforks, "reforks", "", "molds made"),
    MS_COL_U64(R, recycles, "recycles", "",
               "workers replaced after a clean exit (`--max-requests`, "
               "`--max-copied-pct`, `--reload-on-rss`); counted in "
               "respawns too"),
    MS_COL_U64(R, ksm, "ksm", "", "0 or 1 (`--ksm`)"),
    MS_COL_FIXED(R, ksmd_cpu_s, 3, "ksmd_cpu_s", "s",
                 "CPU time of the ksmd thread over the run (`--ksm`)"),
    MS_COL_FIXED(R, ksm_pages_sharing, 0, "ksm_pages_sharing", "pages",
                 "pages saved by KSM at the last sample (`--ksm`)"),
    MS_COL_FIXED(R, heap_identical_pages, 0, "heap_identical_pages",
                 "pages", "mean over workers of their last sample "
                 "(`--identical-pages`)"),
    MS_COL_FIXED(R, cpu_s, 3, "cpu_s", "s",
                 "CPU time of the master and every worker and mold, exited "
                 "ones included"),
    MS_COL_TEXT(R, attribution, "attribution", "",
                "copy attribution of the run's workers: `write-sets`, "
                "`pagemap`, `none`, or `mixed`"),
    MS_COL_U64(R, written_pages, "written_pages", "pages",
               "heap pages written by the sampled requests, all worker "
               "processes"),
    MS_COL_U64(R, written_requests, "written_requests", "",
               "requests sampled"),
    MS_COL_FIXED(R, written_per_request, 1, "written_per_request", "pages",
                 "written_pages / written_requests"),
    MS_COL_TEXT(R, top_copy_route, "top_copy_route", "",
                "write sets: the route whose requests copied the most heap "
                "pages (routes.csv)"),
    MS_COL_FIXED(R, top_copy_route_pct, 1, "top_copy_route_pct", "%",
                 "its share of the copies made by requests"),
    MS_COL_FIXED(R, wset_check_pages, 0, "wset_check_pages", "pages",
                 "write sets' self-check: at each worker's exit, its "
                 "copies counted by write sets against the pagemap's count, "
                 "summed absolute difference (0: every copy was seen)"),
    /* designs (README "Designs") */
    MS_COL_TEXT(R, gc_layout, "gc_layout", "",
                "`--gc-layout`: inline, side or bitmap"),
    MS_COL_TEXT(R, refcount, "refcount", "",
                "`--refcount`: inline or split"),
    MS_COL_U64(R, warmup, "warmup", "", "0 or 1 (`--warmup`)"),
    MS_COL_FIXED(R, warmup_collected, 0, "warmup_collected", "",
                 "warm-up step 1: objects its full collection found "
                 "unreachable (empty without `--warmup`)"),
    MS_COL_FIXED(R, warmup_promoted, 0, "warmup_promoted", "",
                 "step 2: tracked objects moved to the oldest generation"),
    MS_COL_FIXED(R, warmup_hashes, 0, "warmup_hashes", "",
                 "step 3: str hashes computed and cached"),
    MS_COL_FIXED(R, warmup_pages_released, 0, "warmup_pages_released",
                 "pages", "step 4: pages given back by empty pools and "
                 "arenas"),
    MS_COL_FIXED(R, warmup_frozen, 0, "warmup_frozen", "",
                 "step 5: objects frozen (permanent generation)"),
    MS_COL_FIXED(R, warmup_ms, 1, "warmup_ms", "ms",
                 "the whole warm-up (part of build_ms)"),
    MS_COL_FIXED(R, gc_inline_bytes, 0, "gc_inline_bytes", "B",
                 "collector state inside the objects' blocks in the master "
                 "after the build: 16 (inline), 8 (side), 0 (bitmap) per "
                 "GC-able object"),
    MS_COL_FIXED(R, gc_side_bytes, 0, "gc_side_bytes", "B",
                 "collector state outside them: side slots or bitmaps "
                 "mapped"),
    MS_COL_FIXED(R, gc_side_pages, 0, "gc_side_pages", "pages",
                 "pages of that side memory ever written (resident)"),
    MS_COL_FIXED(R, gc_objects, 0, "gc_objects", "",
                 "GC-able objects alive in the master after the build"),
    MS_COL_FIXED(R, gc_bytes_per_object, 2, "gc_bytes_per_object", "B",
                 "(gc_inline_bytes + gc_side_pages × page size) / "
                 "gc_objects: the collector's permanent memory per object, "
                 "its side memory as resident pages (inline: 16)"),
    MS_COL_FIXED(R, rc_table_entries, 0, "rc_table_entries", "",
                 "`--refcount split`: mean over workers of their last "
                 "sample's table entries"),
    MS_COL_FIXED(R, rc_table_bytes, 0, "rc_table_bytes", "B",
                 "the same for the table's bytes: private memory per "
                 "worker"),
    MS_COL_FIXED(R, side_pages, 0, "side_pages", "pages",
                 "mean over workers of their last sample (samples.csv)"),
    MS_COL_FIXED(R, side_copied_pages, 1, "side_copied_pages", "pages",
                 "mean over workers of their last sample: side memory "
                 "copied"),
};
#undef R

/* ---- types.csv ---------------------------------------------------------- */

#define T ms_type_row_t
static const ms_column_t type_cols[] = {
    MS_COL_TEXT(T, run_id, "run_id", "", "the run"),
    MS_COL_TEXT(T, policy, "policy", "", "policy label"),
    MS_COL_U64(T, worker, "worker", "", "logical worker number"),
    MS_COL_I64(T, pid, "pid", "", "the worker process"),
    MS_COL_TEXT(T, type, "type", "",
                "object type (`str`, `dict`, `function`, "
                "`object(__slots__)`, ...)"),
    MS_COL_U64(T, objects, "objects", "",
               "objects of that type in the master's heap"),
    MS_COL_U64(T, pages, "pages", "pages",
               "heap pages holding at least one block of that type"),
    MS_COL_U64(T, copied_pages, "copied_pages", "pages",
               "of those, copied by this worker"),
    MS_COL_FIXED(T, identical_pages, 0, "identical_pages", "pages",
                 "of those copied, holding the master's bytes again "
                 "(`--identical-pages`)"),
};
#undef T

/* ---- totals.csv --------------------------------------------------------- */

#define X ms_total_t
static const ms_column_t total_cols[] = {
    MS_COL_TEXT(X, run_id, "run_id", "", "the run"),
    MS_COL_TEXT(X, policy, "policy", "", "policy label"),
    MS_COL_FIXED(X, t_ms, 1, "t_ms", "ms",
                 "time since the workers were forked"),
    MS_COL_FIXED(X, t_mono_s, 3, "t_mono_s", "s",
                 "the same moment on CLOCK_MONOTONIC (to align other "
                 "measurements, e.g. the load generator's)"),
    MS_COL_U64(X, workers, "workers", "", "workers serving"),
    MS_COL_U64(X, molds, "molds", "", "molds alive"),
    MS_COL_I64(X, master_pss_kb, "master_pss_kb", "kB", "the master's PSS"),
    MS_COL_I64(X, workers_pss_kb, "workers_pss_kb", "kB",
               "PSS of every worker and mold"),
    MS_COL_I64(X, total_pss_kb, "total_pss_kb", "kB",
               "master + workers + molds: what the app costs"),
    MS_COL_U64(X, heap_copied_pages, "heap_copied_pages", "pages",
               "sum over the serving workers"),
    MS_COL_FIXED(X, heap_identical_pages, 0, "heap_identical_pages", "pages",
                 "sum over the serving workers (`--identical-pages`)"),
    MS_COL_FIXED(X, heap_ksm_pages, 0, "heap_ksm_pages", "pages",
                 "sum over the serving workers (`--ksm` as root)"),
    MS_COL_FIXED(X, ksm_pages_sharing, 0, "ksm_pages_sharing", "pages",
                 "`/sys/kernel/mm/ksm/pages_sharing`: pages saved "
                 "(`--ksm`)"),
    MS_COL_FIXED(X, ksm_pages_shared, 0, "ksm_pages_shared", "pages",
                 "`pages_shared`: KSM pages in use (`--ksm`)"),
    MS_COL_FIXED(X, ksmd_cpu_s, 3, "ksmd_cpu_s", "s",
                 "ksmd's CPU time since the run began (`--ksm`)"),
    MS_COL_U64(X, requests, "requests", "", "requests served so far"),
    MS_COL_U64(X, respawns, "respawns", "", "workers respawned so far"),
    MS_COL_U64(X, recycles, "recycles", "",
               "of those, replaced after a clean exit"),
    MS_COL_U64(X, reforks, "reforks", "", "molds made so far"),
    MS_COL_U64(X, refork_generation, "refork_generation", "",
               "generation of the newest mold"),
    MS_COL_FIXED(X, cpu_s, 3, "cpu_s", "s",
                 "CPU time of the master, workers and molds so far"),
    MS_COL_U64(X, sample_ms, "sample_ms", "ms", "sampling interval in force"),
    MS_COL_FIXED(X, sample_cost_ms, 2, "sample_cost_ms", "ms",
                 "CPU time of the previous sampling round"),
};
#undef X

/* ---- diffs.csv ---------------------------------------------------------- */

#define D ms_diff_row_t
static const ms_column_t diff_cols[] = {
    MS_COL_TEXT(D, run_id, "run_id", "", "the run"),
    MS_COL_TEXT(D, policy, "policy", "", "policy label"),
    MS_COL_U64(D, worker, "worker", "", "logical worker number"),
    MS_COL_I64(D, pid, "pid", "", "the worker process"),
    MS_COL_TEXT(D, field, "field", "",
                "`refcount`, `type`, `gc_head`, `body`, `items` or "
                "`allocator` (README \"Fleet\")"),
    MS_COL_TEXT(D, type, "type", "",
                "type of the object holding the word (empty for "
                "`allocator`)"),
    MS_COL_U64(D, words, "words", "",
               "8-byte words that differ from the master's, on copied "
               "pages that are not identical"),
    MS_COL_U64(D, words_up, "words_up", "",
               "of those, greater as a signed integer (a refcount that "
               "stayed up)"),
    MS_COL_U64(D, words_down, "words_down", "", "of those, smaller"),
    MS_COL_U64(D, pages, "pages", "pages",
               "pages with at least one such word"),
    MS_COL_U64(D, pages_only, "pages_only", "pages",
               "pages whose only differing words are of this field and "
               "type"),
};
#undef D

/* ---- routes.csv --------------------------------------------------------- */

#define O ms_route_row_t
static const ms_column_t route_cols[] = {
    MS_COL_TEXT(O, run_id, "run_id", "", "the run"),
    MS_COL_TEXT(O, policy, "policy", "", "policy label"),
    MS_COL_U64(O, worker, "worker", "",
               "logical worker number (its processes summed)"),
    MS_COL_TEXT(O, route, "route", "",
                "the workload's path, `/healthz`, `/stats`, `/sleep`, "
                "`(other)` (unknown paths) or `(server)` (outside any "
                "handler: the HTTP layer)"),
    MS_COL_U64(O, requests, "requests", "", "requests served"),
    MS_COL_FIXED(O, copied_pages, 0, "copied_pages", "pages",
                 "heap pages its handler copied, collections excluded "
                 "(empty without write sets)"),
    MS_COL_FIXED(O, copied_by_gc, 0, "copied_by_gc", "pages",
                 "heap pages copied by collections inside its requests"),
    MS_COL_U64(O, written_requests, "written_requests", "",
               "requests sampled (`--write-sample-ms`)"),
    MS_COL_FIXED(O, written_pages, 0, "written_pages", "pages",
                 "heap pages those requests wrote, copied before or not"),
    MS_COL_FIXED(O, written_per_request, 1, "written_per_request", "pages",
                 "written_pages / written_requests"),
};
#undef O

/* ---- kinds.csv ---------------------------------------------------------- */

#define K ms_kind_row_t
static const ms_column_t kind_cols[] = {
    MS_COL_TEXT(K, run_id, "run_id", "", "the run"),
    MS_COL_TEXT(K, policy, "policy", "", "policy label"),
    MS_COL_U64(K, worker, "worker", "",
               "logical worker number (its processes summed)"),
    MS_COL_TEXT(K, kind, "kind", "",
                "the first write to the page: `refcount` (incref/decref), "
                "`gc` (the collector's links and gc_refs), `payload` (an "
                "object's contents: items, entries, a cached hash, clearing),"
                " `new` (a new object or array in an inherited free block), "
                "`allocator` (pool headers, free-list links, large-block "
                "headers and bins), `other` (no write the runtime noted)"),
    MS_COL_U64(K, copied_pages, "copied_pages", "pages",
               "heap pages this kind of write copied"),
    MS_COL_U64(K, copied_by_request, "copied_by_request", "pages",
               "of those, in request handling"),
    MS_COL_U64(K, copied_by_gc, "copied_by_gc", "pages",
               "in collections"),
    MS_COL_U64(K, copied_by_teardown, "copied_by_teardown", "pages",
               "in the finalize teardown"),
};
#undef K

#define TABLE(file, cols) { file, cols, sizeof cols / sizeof cols[0] }
const ms_table_t ms_samples_table = TABLE("samples.csv", sample_cols);
const ms_table_t ms_runs_table = TABLE("runs.csv", run_cols);
const ms_table_t ms_types_table = TABLE("types.csv", type_cols);
const ms_table_t ms_totals_table = TABLE("totals.csv", total_cols);
const ms_table_t ms_diffs_table = TABLE("diffs.csv", diff_cols);
const ms_table_t ms_routes_table = TABLE("routes.csv", route_cols);
const ms_table_t ms_kinds_table = TABLE("kinds.csv", kind_cols);

const char ms_table_names[] = "samples|runs|types|totals|diffs|routes|kinds";

const ms_table_t *
ms_table_find(const char *name)
{
    const ms_table_t *all[] = { &ms_samples_table, &ms_runs_table,
                                &ms_types_table, &ms_totals_table,
                                &ms_diffs_table, &ms_routes_table,
                                &ms_kinds_table };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *f = all[i]->file;
        size_t stem = strlen(f) - strlen(".csv");
        if (strcmp(name, f) == 0
            || (strlen(name) == stem && strncmp(name, f, stem) == 0))
            return all[i];
    }
    return NULL;
}

/* ---- the CSV writer ----------------------------------------------------- */

/* All of p[0..n) with as many write()s as the kernel needs (one, unless
 * it writes short); 0 or -errno. */
static int
write_all(int fd, const char *p, size_t n, uint64_t *writes)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (writes)
            (*writes)++;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int
ms_csv_open_fd(ms_csv_t *w, int fd, const ms_table_t *t, int header)
{
    memset(w, 0, sizeof *w);
    w->fd = fd;
    w->table = t;
    ms_buf_init(&w->buf);
    if (!header)
        return 0;
    ms_table_header(t, &w->buf);
    int r = w->buf.oom ? -ENOMEM
            : write_all(fd, w->buf.p, w->buf.len, NULL);
    ms_buf_reset(&w->buf);
    if (r < 0) {
        ms_csv_drop(w);
        return r;
    }
    return 0;
}

int
ms_csv_open(ms_csv_t *w, const char *path, const ms_table_t *t)
{
    struct stat sb;
    memset(w, 0, sizeof *w);
    w->fd = -1;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &sb) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    /* A sweep appends every run's rows to the same file: one header. */
    return ms_csv_open_fd(w, fd, t, sb.st_size == 0);
}

void
ms_csv_add(ms_csv_t *w, const void *row)
{
    ms_table_row(w->table, row, &w->buf);
}

int
ms_csv_flush(ms_csv_t *w)
{
    int r = 0;
    if (w->buf.oom)
        r = -ENOMEM;
    else if (w->fd < 0)
        r = -EBADF;
    else if (w->buf.len > 0)
        r = write_all(w->fd, w->buf.p, w->buf.len, &w->writes);
    ms_buf_reset(&w->buf);
    return r;
}

int
ms_csv_close(ms_csv_t *w)
{
    int r = w->fd >= 0 ? ms_csv_flush(w) : 0;
    if (w->fd >= 0 && close(w->fd) < 0 && r == 0)
        r = -errno;
    w->fd = -1;
    ms_buf_free(&w->buf);
    return r;
}

void
ms_csv_drop(ms_csv_t *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    ms_buf_free(&w->buf);
}

/* ---- meta.json ---------------------------------------------------------- */

/* The first line of a file, or of a command's output; "" if none. */
static void
first_line(const char *cmd_or_path, int is_file, char *out, size_t n)
{
    out[0] = '\0';
    FILE *f = is_file ? fopen(cmd_or_path, "r") : popen(cmd_or_path, "r");
    if (f == NULL)
        return;
    if (fgets(out, (int)n, f) == NULL)
        out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    if (is_file)
        fclose(f);
    else
        pclose(f);
}

int
ms_meta_write(const char *path, const ms_meta_t *m)
{
    struct utsname u;
    char thp[256], ksm[64], commit[64], date[64];
    time_t now = time(NULL);
    struct tm tm;
    long page = sysconf(_SC_PAGESIZE);

    if (uname(&u) < 0)
        snprintf(u.release, sizeof u.release, "%s", "");
    first_line("/sys/kernel/mm/transparent_hugepage/enabled", 1, thp,
               sizeof thp);
    first_line("/sys/kernel/mm/ksm/run", 1, ksm, sizeof ksm);
    first_line("git rev-parse --short HEAD 2>/dev/null", 0, commit,
               sizeof commit);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));

    json_t *j = json_object();
    if (j == NULL)
        return -ENOMEM;
    int bad = 0;
#define SET(key, value) (bad |= json_object_set_new(j, key, value))
    SET("run_id", json_string(m->run_id ? m->run_id : ""));
    SET("policy", json_string(m->policy ? m->policy : ""));
    bad |= json_object_set(j, "config", m->config ? m->config : json_null());
    bad |= json_object_set(j, "workload",
                           m->workload ? m->workload : json_null());
    SET("kernel", json_string(u.release));
    SET("transparent_hugepage", json_string(thp));
    SET("ksm_run", json_string(ksm));
    SET("git_commit", json_string(commit));
    SET("date", json_string(date));
    SET("cores", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
    SET("memory_kb", json_integer(
        (json_int_t)sysconf(_SC_PHYS_PAGES) * page / 1024));
    SET("page_size", json_integer(page));
    SET("arena_size", json_integer((json_int_t)MEM_ARENA_SIZE));
    SET("pool_size", json_integer((json_int_t)MEM_POOL_SIZE));
    SET("heap_pages", json_integer((json_int_t)m->heap_pages));
    SET("heap_objects", json_integer((json_int_t)m->heap_objects));
    SET("build_ms", json_real(m->build_ms));
    json_t *a = json_pack("{s:s, s:s?}", "method",
                          m->attribution ? m->attribution : "none",
                          "reason", m->attribution_why);
    SET("attribution", a ? a : json_null());
    bad |= a == NULL;
#undef SET
    if (m->extra != NULL)
        bad |= json_object_update(j, m->extra);
    int r = bad ? -ENOMEM : 0;
    if (r == 0) {
        errno = 0;
        if (json_dump_file(j, path, JSON_INDENT(2)) < 0)
            r = errno ? -errno : -EIO;
    }
    json_decref(j);
    return r;
}
