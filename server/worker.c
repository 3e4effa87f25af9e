/*
 * worker.c -- a forked worker process.
 *
 * After fork() the worker builds its own uv loop (libuv: a child never
 * uses its parent's loop; the master has none anyway), serves HTTP on the
 * inherited socket, and runs every request against the heap it shares
 * copy-on-write with the master.  Minor faults are attributed by cause:
 * getrusage() deltas around each collection (a GC callback) and around
 * each request with the collections inside it subtracted.  Copies are
 * attributed by exact write sets (measure/wset.c) where the kernel has
 * them, else by pagemap reads around collections: read "Copied pages by
 * cause" below.
 *
 * Stopping: SIGTERM drains (stop accepting, finish in-flight requests),
 * SIGINT/SIGQUIT close at once; --max-requests, --reload-on-rss and
 * --max-copied-pct drain (recycle, "Recycling" below).  With
 * --refork-after the master may tell the worker to become the mold
 * (refork.h): it drains the same way, then runs srv_mold_main() instead
 * of the exit policy.
 * Then the exit policy: finalize (rt_finalize: the whole heap torn down,
 * timed) or skip (rt_skip_exit: _exit right away).  Counters are already in
 * the shared slot, so nothing needs flushing.
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "clock.h"
#include "gc.h"
#include "http.h"
#include "mem.h"
#include "procstat.h"
#include "wkinds.h"
#include "wset.h"

_Static_assert(SRV_NKINDS == MS_NKINDS && MS_NKINDS == RT_WK_NKINDS,
               "one list of write kinds");
#include "refork.h"

typedef struct worker {
    const srv_worker_args_t *a;
    srv_slot_t *slot;
    rt_heap_t *heap;
    wl_app_t *app;
    uv_loop_t loop;
    srv_http_t *http;
    uv_signal_t sig_term, sig_int, sig_quit;
    uv_timer_t stop_timer;
    uv_timer_t publish_timer;   /* the HTTP layer's answers into the slot */
    long max_requests;          /* with jitter; 0 = never */
    int stopping;
    long gc_f0;                 /* minflt at the start of a collection */
    uint64_t faults_gc;
    gc_genstats_t gc_base[GC_NGENS];  /* inherited from the master */
    /* Copy attribution (read "Copied pages by cause" below). */
    ps_pagemap_t pm;            /* our own pagemap; fd -1: not measuring */
    size_t last_copied;         /* copied pages at the last measurement */
    int unmeasured_gc;          /* a collection ran unbracketed since */
    int measuring;              /* inside a bracketed collection */
    uint64_t young_every;       /* bracket 1 in N young collections */
    uint64_t young_seen;
    uint64_t last_measure_ns;
    uint64_t copied_gc, copied_req, copied_unattr, gc_measured;
    uint8_t *seen;              /* teardown: pages already counted */
    uint64_t copied_teardown;
    int recycle;                /* a recycling limit was passed */
    uv_poll_t ctl_poll;         /* the master's messages (refork.h) */
    int ctl_active;
    int becoming_mold;          /* RF_MOLD came: drain, then the mold */
    unsigned mold_gen;
    int stop_signal;            /* a stop signal came: no mold then */
    /* Exact write sets (SRV_ATTR_WSET): */
    int attr;                   /* SRV_ATTR_* in force */
    ms_wset_t *ws;              /* NULL: not tracking */
    ms_cause_t cause;           /* what a copy found now is credited to */
    unsigned route;             /* the row of the request being served */
    unsigned nroutes;           /* the workload's routes */
    uint64_t sampled_ns;        /* when a request was last sampled */
    uint64_t written, written_requests;
} worker_t;

static worker_t W;

rt_heap_t *
srv_heap_new(const cfg_t *cfg)
{
    rt_opts_t o;
    rt_opts_default(&o);
    o.python = cfg->python == 311 ? RT_PY_311 : RT_PY_312;
    o.gc_layout = (rt_gc_layout_t)cfg->gc_layout;
    o.refcount = (rt_refcount_t)cfg->refcount;
    return rt_heap_new_opts(&o);
}

wl_gc_t
srv_build_gc(const cfg_t *cfg)
{
    return cfg->prefork_gc == CFG_PREFORK_COLLECTED ? WL_GC_COLLECTED
                                                    : WL_GC_IMPORT;
}

void
srv_apply_gc_thresholds(const cfg_t *cfg)
{
    long t0 = cfg->gc_enabled ? cfg->gc_threshold[0] : 0;
    gc_set_threshold(t0, cfg->gc_threshold[1], cfg->gc_threshold[2]);
}

/* What each warm-up step changed, on stderr (progress output). */
static void
say_warmup(const cfg_t *cfg, const rt_warmup_t *w)
{
    char msg[512];
    if (cfg->quiet)
        return;
    snprintf(msg, sizeof msg, "cowlab: warm-up: 1. full collection: %ld "
             "unreachable; 2. promoted to the oldest generation: %zu; "
             "3. str hashes cached: %zu; 4. released: %zu pools, %zu "
             "arenas, %zu pages; 5. frozen: %zu objects; %.1f ms\n",
             w->collected, w->promoted, w->hashes, w->pools_released,
             w->arenas_released, w->pages_released, w->frozen, w->ms);
    fputs(msg, stderr);
}

int
srv_apply_prefork_policy(const cfg_t *cfg, rt_heap_t *h, rt_warmup_t *wu)
{
    rt_warmup_t local;
    if (wu == NULL)
        wu = &local;
    memset(wu, 0, sizeof *wu);
    if (cfg->warmup) {
        if (rt_warmup(h, wu) < 0) {
            fputs("cowlab: --warmup: out of memory (the hashes step "
                  "stopped)\n", stderr);
            return -ENOMEM;         /* half warmed: never measure it */
        }
        say_warmup(cfg, wu);
    }
    if (cfg->freeze)
        gc_freeze();
    if (cfg->immortal && rt_immortalize_heap(h) < 0) {
        fputs("cowlab: --immortal: out of memory while making the heap "
              "immortal\n", stderr);
        return -ENOMEM;             /* partly immortal: never measure it */
    }
    return 0;
}

/*
 * Copied pages by cause, with exact write sets (SRV_ATTR_WSET,
 * measure/wset.c): the heap is write-protected from the worker's first
 * instruction, and every interval is closed where its cause changes: at
 * the start of a request (what the HTTP layer copied since the last one:
 * "(server)", counted as request copies), at its end (its handler's), at
 * the start and end of each collection (the collection's), before memory
 * is unmapped (whoever runs), and in teardown.  Every copy lands in one
 * of copied_by_request, copied_by_gc, copied_by_teardown, and the pages
 * copied before tracking began (none, so far) in copied_unattributed.
 * One request per --write-sample-ms is sampled: all the heap pages it
 * writes, copies or not (written_pages).
 */
static void check_copied(size_t copied);

static void
ws_publish(void)
{
    srv_slot_t *s = W.slot;
    uint64_t done, skipped;
    atomic_store(&s->copied_by_request, ms_wset_copied(W.ws,
                                                       MS_CAUSE_REQUEST));
    atomic_store(&s->copied_by_gc, ms_wset_copied(W.ws, MS_CAUSE_GC));
    atomic_store(&s->copied_unattributed,
                 ms_wset_copied(W.ws, MS_CAUSE_BEFORE));
    atomic_store(&s->copied_measured, ms_wset_copied_now(W.ws));
    atomic_store(&s->wset_released, ms_wset_released(W.ws));
    check_copied((size_t)ms_wset_copied_now(W.ws));
    ms_wset_scans(W.ws, &done, &skipped);
    atomic_store(&s->wset_scans, done);
    atomic_store(&s->wset_skipped, skipped);
    atomic_store(&s->wset_busy_us, ms_wset_busy_ns(W.ws) / 1000);
    static const ms_cause_t causes[SRV_NKCAUSES] = {
        MS_CAUSE_REQUEST, MS_CAUSE_GC, MS_CAUSE_TEARDOWN
    };
    if (W.a->cfg->write_kinds)
        for (int c = 0; c < SRV_NKCAUSES; c++)
            for (int k = 0; k < SRV_NKINDS; k++)
                atomic_store(&s->kind_copied[c][k],
                             ms_wset_kind_copied(W.ws, causes[c], k));
}

/* A scan failed: stop attributing (never guess), and say so once. */
static void
ws_fail(long err)
{
    char msg[160];
    snprintf(msg, sizeof msg, "cowlab: worker %u: write-set scan failed: "
             "%s; copies no longer attributed\n", W.a->index,
             strerror((int)-err));
    fputs(msg, stderr);
    ms_wset_free(W.ws);
    W.ws = NULL;
    W.attr = SRV_ATTR_NONE;
    atomic_store(&W.slot->attribution, SRV_ATTR_NONE);
}

static void
ws_credit(long found, ms_cause_t cause)
{
    if (found < 0) {
        ws_fail(found);
        return;
    }
    if (found > 0) {
        srv_route_t *r = &W.a->routes[W.route];
        if (cause == MS_CAUSE_GC)
            atomic_fetch_add(&r->copied_gc, (uint64_t)found);
        else if (cause == MS_CAUSE_REQUEST)
            atomic_fetch_add(&r->copied, (uint64_t)found);
    }
    ws_publish();
}

/* Close the interval now: its copies go to cause (and the route). */
static void
ws_close(ms_cause_t cause, long minflt)
{
    if (W.ws != NULL)
        ws_credit(ms_wset_close(W.ws, cause, minflt), cause);
}

/* The allocator is about to unmap [start, end): its copies first, then
 * its pages are released (neither shared nor copied from now on). */
static void
ws_release(uintptr_t start, uintptr_t end)
{
    if (W.ws != NULL)
        ws_credit(ms_wset_release_range(W.ws, W.cause, start, end),
                  W.cause);
}

static void
ws_teardown_rest(void *arg)
{
    (void)arg;
    ws_close(MS_CAUSE_TEARDOWN, -1);
}

/*
 * Copied pages by cause, by pagemap bracketing (SRV_ATTR_PAGEMAP: kernels
 * without write sets, or --attribution pagemap).  The worker reads its own
 * pagemap over the heap pages present at fork (the master's snapshot) at
 * chosen moments; in a worker only requests and collections write the
 * heap, so:
 *   - around a bracketed collection, the pages newly copied are the GC's;
 *   - between two measurements with no collection in between, they are
 *     the requests' (reads write refcounts; retained state, lazy caches);
 *   - between two measurements that saw an unbracketed collection they
 *     are unattributed (--pagemap-gc-fraction 1 brackets every one).
 * Every full collection is bracketed; young ones at the given fraction.
 * Measurements also close the gap about once a second after a request,
 * and at teardown, so copied_by_gc + copied_by_request +
 * copied_unattributed equals the copied pages at the last measurement.
 */
static void
publish_copies(void)
{
    srv_slot_t *s = W.slot;
    atomic_store(&s->copied_by_gc, W.copied_gc);
    atomic_store(&s->copied_by_request, W.copied_req);
    atomic_store(&s->copied_unattributed, W.copied_unattr);
    atomic_store(&s->copied_measured, (uint64_t)W.last_copied);
    atomic_store(&s->gc_measured, W.gc_measured);
}

/*
 * Recycling.  A worker past one of these limits drains and exits cleanly
 * after the response in hand, and the master forks a fresh one (as
 * --max-requests does; runs.csv counts them in recycles):
 *   --reload-on-rss MiB  its RSS, read after every request from
 *                        /proc/self/statm, as uWSGI's reload-on-rss does;
 *                        RSS counts shared pages as well as copied ones,
 *                        so it sees new memory, never copy-on-write;
 *   --max-copied-pct P   its exact heap copies (the counter of
 *                        heap_copied_pages: its write sets, else pagemap)
 *                        past P% of the heap pages it was forked with,
 *                        checked whenever they are counted (write sets:
 *                        every closed interval; pagemap: about once a
 *                        second of requests, and around full collections).
 */
static void
check_copied(size_t copied)
{
    double pct = W.a->cfg->max_copied_pct;
    size_t pages = ps_snap_pages(W.a->snap);
    if (pct > 0 && pages > 0
        && 100.0 * (double)copied > pct * (double)pages)
        W.recycle = 1;
}

static long
rss_kb(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    long size, resident;
    if (sscanf(buf, "%ld %ld", &size, &resident) != 2)
        return -1;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int
measure(size_t *copied)
{
    if (W.pm.fd < 0)
        return -1;
    if (ps_count_copied_excl(W.a->snap, &W.pm, W.a->released, copied,
                             NULL) < 0) {
        ps_pagemap_close(&W.pm);    /* stop measuring, never guess */
        return -1;
    }
    W.last_measure_ns = clk_now_ns();
    check_copied(*copied);
    return 0;
}

/* Attribute what was copied since the last measurement. */
static void
close_gap(void)
{
    size_t c;
    if (measure(&c) < 0)
        return;
    uint64_t gap = c > W.last_copied ? c - W.last_copied : 0;
    if (W.unmeasured_gc)
        W.copied_unattr += gap;
    else
        W.copied_req += gap;
    W.last_copied = c;
    W.unmeasured_gc = 0;
    publish_copies();
}

/* GC callback: faults inside collections, and bracketing measurements. */
static void
on_gc(int phase, int gen, long collected, void *arg)
{
    (void)collected;
    (void)arg;
    if (phase == 0 && gen == GC_GEN_OLDEST
        && atomic_load(&W.slot->first_full_gc_request) == 0)
        atomic_store(&W.slot->first_full_gc_request,
                     atomic_load(&W.slot->requests) + 1);
    if (W.ws != NULL) {
        if (phase == 0) {
            ws_close(MS_CAUSE_REQUEST, clk_minflt());
            W.cause = MS_CAUSE_GC;
            W.gc_f0 = clk_minflt();
        } else {
            long f1 = clk_minflt();
            W.faults_gc += (uint64_t)(f1 - W.gc_f0);
            atomic_store(&W.slot->faults_gc, W.faults_gc);
            ws_close(MS_CAUSE_GC, f1);
            W.cause = MS_CAUSE_REQUEST;
        }
        return;
    }
    if (phase == 0) {
        if (W.pm.fd >= 0) {
            int bracket = gen == GC_GEN_OLDEST
                          || (W.young_every
                              && ++W.young_seen % W.young_every == 0);
            if (bracket) {
                close_gap();
                W.measuring = W.pm.fd >= 0;
            } else {
                W.unmeasured_gc = 1;
            }
        }
        W.gc_f0 = clk_minflt();
        return;
    }
    W.faults_gc += (uint64_t)(clk_minflt() - W.gc_f0);
    atomic_store(&W.slot->faults_gc, W.faults_gc);
    if (W.measuring) {
        size_t c;
        W.measuring = 0;
        if (measure(&c) == 0) {
            W.copied_gc += c > W.last_copied ? c - W.last_copied : 0;
            W.last_copied = c;
            W.gc_measured++;
            publish_copies();
        }
    }
}

/* The collector's counters since this worker started: a forked child
 * inherits the master's (CPython's gc.get_stats() does the same), which
 * would credit the master's build to every worker. */
static void
publish_gc_stats(void)
{
    gc_genstats_t st[GC_NGENS];
    uint64_t ns = 0, collected = 0;
    gc_get_stats(st);
    for (int i = 0; i < GC_NGENS; i++) {
        atomic_store(&W.slot->gc_collections[i],
                     st[i].collections - W.gc_base[i].collections);
        ns += st[i].time_ns - W.gc_base[i].time_ns;
        collected += st[i].collected - W.gc_base[i].collected;
    }
    atomic_store(&W.slot->gc_time_us, ns / 1000);
    atomic_store(&W.slot->gc_collected, collected);
}

/*
 * Answers by status class.  The HTTP layer counts every answer it sends,
 * the handler's and its own (400 from the strict checker, 408, 413, 414,
 * 431, 503 over --max-connections, 505): those never reach handle(), so
 * the slot is brought up to date at each request, every PUBLISH_MS, and
 * before the exit policy.  /stats reads the layer's counts directly.
 */
#define PUBLISH_MS 250

static void
publish_responses(void)
{
    if (W.http == NULL)
        return;
    const srv_http_counters_t *k = srv_http_counters(W.http);
    atomic_store(&W.slot->responses_4xx, k->responses_4xx);
    atomic_store(&W.slot->responses_5xx, k->responses_5xx);
}

/* --refcount split: the size of this process's own refcount table (it
 * grows with the inherited objects the worker's requests touch). */
static void
publish_overhead(void)
{
    rt_overhead_t ov;
    if (W.heap == NULL)
        return;
    rt_get_overhead(W.heap, &ov);
    atomic_store(&W.slot->rc_table_entries, ov.rc_table_entries);
    atomic_store(&W.slot->rc_table_bytes, ov.rc_table_bytes);
}

static void
on_publish_timer(uv_timer_t *t)
{
    (void)t;
    publish_responses();
    publish_overhead();
}

static char *
json_body(json_t *j, size_t *len)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    *len = s ? strlen(s) : 0;
    return s;
}

static json_t *
stats_json(void)
{
    srv_slot_t *s = W.slot;
    const srv_http_counters_t *k = srv_http_counters(W.http);
    return json_pack("{s:i, s:i, s:I, s:I, s:I, s:[I,I,I], s:I, s:I, s:I, "
                     "s:I}",
        "pid", (int)getpid(), "worker", (int)W.a->index,
        "requests", (json_int_t)atomic_load(&s->requests),
        "responses_4xx", (json_int_t)k->responses_4xx,
        "responses_5xx", (json_int_t)k->responses_5xx,
        "gc_collections",
        (json_int_t)atomic_load(&s->gc_collections[0]),
        (json_int_t)atomic_load(&s->gc_collections[1]),
        (json_int_t)atomic_load(&s->gc_collections[2]),
        "gc_collected", (json_int_t)atomic_load(&s->gc_collected),
        "gc_time_us", (json_int_t)atomic_load(&s->gc_time_us),
        "faults_gc", (json_int_t)atomic_load(&s->faults_gc),
        "faults_request", (json_int_t)atomic_load(&s->faults_request));
}

static void begin_stop(int drain);

static void
on_stop_timer(uv_timer_t *t)
{
    (void)t;
    begin_stop(1);
}

/* The routes.csv row of a path: the workload's routes first. */
static unsigned
route_of(const char *path)
{
    if (strcmp(path, "/healthz") == 0)
        return W.nroutes + SRV_ROUTE_HEALTHZ;
    if (strcmp(path, "/stats") == 0)
        return W.nroutes + SRV_ROUTE_STATS;
    if (strcmp(path, "/sleep") == 0)
        return W.nroutes + SRV_ROUTE_SLEEP;
    for (unsigned i = 0; i < W.nroutes; i++)
        if (strcmp(wl_route_path(W.app, i), path) == 0)
            return i;
    return W.nroutes + SRV_ROUTE_OTHER;
}

/* Is this request the one to sample (its whole write set)?  The first
 * is, then one every --write-sample-ms.  A sample costs a protection of
 * every copied page, a fault on each it rewrites, and lifting the
 * protection again (wset.c): a few ms on a 110 MiB heap, about 50 in a
 * VM whose faults take 30 us. */
static int
sample_due(uint64_t now)
{
    unsigned ms = W.a->cfg->write_sample_ms;
    return W.ws != NULL && ms > 0
           && (W.sampled_ns == 0
               || now - W.sampled_ns >= (uint64_t)ms * 1000000u);
}

/* The sampled request is done: count what it wrote.  Returns the faults
 * its write protection added (one per already-copied page it wrote), to
 * leave out of faults_request. */
static uint64_t
sample_end(uint64_t copied0)
{
    uint64_t req0 = ms_wset_copied(W.ws, MS_CAUSE_REQUEST);
    long w = ms_wset_sample_end(W.ws, MS_CAUSE_REQUEST);
    if (w < 0) {
        ws_fail(w);
        return 0;
    }
    /* The end scan's copies, like any close's; those of collections
     * inside the request were credited as they ended. */
    ws_credit((long)(ms_wset_copied(W.ws, MS_CAUSE_REQUEST) - req0),
              MS_CAUSE_REQUEST);
    uint64_t copied = ms_wset_copied_total(W.ws) - copied0;
    srv_route_t *r = &W.a->routes[W.route];
    W.written += (uint64_t)w;
    W.written_requests++;
    atomic_fetch_add(&r->written, (uint64_t)w);
    atomic_fetch_add(&r->written_requests, 1);
    atomic_store(&W.slot->written_pages, W.written);
    atomic_store(&W.slot->written_requests, W.written_requests);
    uint64_t extra = (uint64_t)w > copied ? (uint64_t)w - copied : 0;
    atomic_fetch_add(&W.slot->faults_sampling, extra);
    return extra;
}

static void
handle(void *ctx, const srv_request_t *req, srv_response_t *resp)
{
    (void)ctx;
    srv_slot_t *s = W.slot;
    uint64_t now = clk_now_ns(), copied0 = 0;
    int sampled = 0;
    atomic_store(&s->busy_since_ns, now);
    publish_responses();
    unsigned route = route_of(req->path);
    if (W.ws != NULL) {
        /* What the HTTP layer copied since the last request. */
        W.route = W.nroutes + SRV_ROUTE_SERVER;
        ws_close(MS_CAUSE_REQUEST, clk_minflt());
        W.route = route;
        if (W.ws != NULL && sample_due(now)) {
            int r = ms_wset_sample_begin(W.ws, MS_CAUSE_REQUEST);
            if (r < 0)
                ws_fail(r);
            sampled = r == 0;
            W.sampled_ns = now;
            copied0 = W.ws ? ms_wset_copied_total(W.ws) : 0;
        }
    }
    W.route = route;
    atomic_fetch_add(&W.a->routes[route].requests, 1);
    if (strcmp(req->path, "/healthz") == 0) {
        resp->body = json_body(json_pack("{s:s, s:i}", "status", "ok",
                                         "pid", (int)getpid()),
                               &resp->body_len);
    } else if (strcmp(req->path, "/stats") == 0) {
        resp->body = json_body(stats_json(), &resp->body_len);
    } else if (strcmp(req->path, "/sleep") == 0) {
        /* A request that takes ms milliseconds (at most 60 s): lets tests
         * and users see draining and --timeout at work. */
        long ms = 0;
        if (strncmp(req->query, "ms=", 3) == 0)
            ms = strtol(req->query + 3, NULL, 10);
        if (ms < 0 || ms > 60000)
            ms = 60000;
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0)
            ;
        resp->body = json_body(json_pack("{s:i}", "slept_ms", (int)ms),
                               &resp->body_len);
    } else {
        wl_result_t res;
        memset(&res, 0, sizeof res);
        long f0 = clk_minflt();
        uint64_t g0 = W.faults_gc;
        wl_handle(W.app, req->path, req->query, &res);
        long f1 = clk_minflt();
        uint64_t in_gc = W.faults_gc - g0;
        uint64_t total = (uint64_t)(f1 - f0), extra = 0;
        if (sampled)
            extra = sample_end(copied0);
        else
            ws_close(MS_CAUSE_REQUEST, f1);
        total = total > in_gc + extra ? total - in_gc - extra : 0;
        atomic_fetch_add(&s->faults_request, total);
        resp->status = res.status ? res.status : 500;
        resp->body = res.body;
        resp->body_len = res.body_len;
        publish_gc_stats();
        if (W.pm.fd >= 0 && clk_now_ns() - W.last_measure_ns > 1000000000u)
            close_gap();
        sampled = 0;
    }
    if (sampled)
        sample_end(copied0);
    else if (W.ws != NULL && route >= W.nroutes)
        ws_close(MS_CAUSE_REQUEST, clk_minflt());
    W.route = W.nroutes + SRV_ROUTE_SERVER;
    uint64_t n = atomic_fetch_add(&s->requests, 1) + 1;
    atomic_store(&s->busy_since_ns, 0);
    if (W.max_requests > 0 && (long)n >= W.max_requests)
        W.recycle = 1;
    if (W.a->cfg->reload_on_rss_mb > 0
        && rss_kb() > (long)W.a->cfg->reload_on_rss_mb * 1024)
        W.recycle = 1;
    if (W.recycle && !W.stopping) {
        /* Recycle (uWSGI max-requests): drain after this response. */
        resp->close = 1;
        uv_timer_start(&W.stop_timer, on_stop_timer, 0, 0);
    }
}

static void
close_cb(uv_handle_t *h)
{
    (void)h;
}

/* The signals that stop a worker: SIGTERM, SIGINT, SIGQUIT. */
static void
stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGQUIT);
}

static void
block_stop_signals(void)
{
    sigset_t set;
    stop_signals(&set);
    sigprocmask(SIG_BLOCK, &set, NULL);
}

static void
http_done(void *arg)
{
    (void)arg;
    /* Closing the uv signal handles restores the default actions: a
     * second SIGTERM must not kill the worker in its exit policy. */
    block_stop_signals();
    uv_close((uv_handle_t *)&W.sig_term, close_cb);
    uv_close((uv_handle_t *)&W.sig_int, close_cb);
    uv_close((uv_handle_t *)&W.sig_quit, close_cb);
    uv_close((uv_handle_t *)&W.stop_timer, close_cb);
    uv_close((uv_handle_t *)&W.publish_timer, close_cb);
    if (W.ctl_active) {
        W.ctl_active = 0;
        uv_close((uv_handle_t *)&W.ctl_poll, close_cb);
    }
}

static void
begin_stop(int drain)
{
    if (W.stopping) {
        if (!drain)
            uv_stop(&W.loop);       /* a second, urgent signal */
        return;
    }
    W.stopping = 1;
    atomic_store(&W.slot->state, SLOT_STOPPING);
    if (!drain) {
        uv_stop(&W.loop);
        return;
    }
    srv_http_stop(W.http, http_done, NULL);
}

static void
on_signal(uv_signal_t *h, int signum)
{
    (void)h;
    W.stop_signal = 1;
    begin_stop(signum == SIGTERM);
}

/* A message from the master (refork.h): RF_MOLD is the only one a
 * worker takes.  The master gone (EOF): PDEATHSIG ends us anyway. */
static void
on_ctl(uv_poll_t *h, int status, int events)
{
    srv_rf_msg_t m;
    int fds[2];
    (void)events;
    int r = status < 0 ? -1 : srv_rf_recv(W.a->ctl_fd, &m, fds);
    for (int i = 0; r > 0 && i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (r == -EAGAIN)
        return;
    if (r <= 0) {
        uv_poll_stop(h);
        return;
    }
    if (m.type == RF_MOLD && !W.stopping) {
        W.becoming_mold = 1;
        W.mold_gen = m.generation;
        begin_stop(1);
    }
}

/* Drained after RF_MOLD: hand the heap over to the mold's loop. */
static _Noreturn void
become_mold(void)
{
    srv_mold_args_t ma = {
        .cfg = W.a->cfg, .heap = W.heap, .app = W.app, .spec = W.a->spec,
        .slots = W.a->slots, .nslots = W.a->nslots, .own = W.slot,
        .ctl_fd = W.a->ctl_fd, .master = W.a->master,
        .generation = W.mold_gen, .attribution = W.a->attribution,
        .routes = W.a->routes_all,
    };
    publish_gc_stats();
    publish_responses();
    publish_overhead();
    gc_set_callback(NULL, NULL);
    /* A mold's copies are the master's pagemap count (samples.csv); its
     * workers track their own, against its snapshot. */
    mem_set_release_hook(NULL, NULL);
    ms_wset_free(W.ws);
    W.ws = NULL;
    ps_pagemap_close(&W.pm);
    uv_loop_close(&W.loop);         /* every handle is closed: no fd left */
    srv_mold_main(&ma);
}

/* The allocator's release hook, for the worker's whole life: pages it
 * gives back are marked released (in the bitmap the master reads too),
 * so that no counter takes them for shared, nor their address, once a new
 * mapping reuses it, for copies.  During a finalize teardown the copies
 * in them are counted first (copied_by_teardown). */
static void
on_release(void *arg, uintptr_t start, uintptr_t end)
{
    size_t n = 0;
    (void)arg;
    ws_release(start, end);
    if (W.seen != NULL
        && ps_count_new_copies(W.a->snap, &W.pm, W.seen, start, end,
                               &n) == 0)
        W.copied_teardown += n;
    if (W.a->snap != NULL && W.a->released != NULL) {
        ps_snap_mark(W.a->snap, W.a->released, start, end);
        if (W.seen != NULL)
            ps_snap_mark(W.a->snap, W.seen, start, end);
    }
}

static void
count_rest(void *arg)
{
    size_t n = 0;
    (void)arg;
    if (W.seen != NULL
        && ps_count_new_copies(W.a->snap, &W.pm, W.seen, 0, UINTPTR_MAX,
                               &n) == 0)
        W.copied_teardown += n;
    free(W.seen);
    W.seen = NULL;              /* the rest is released uncounted */
}

/*
 * The write sets' self-check, once per worker at its exit (before any
 * teardown): every copy they saw against the pagemap's count of the
 * pages copied now (present and exclusive), read by the worker itself at
 * the same instant.  Equal unless a copy escaped them (or a copied page
 * was unmapped since).  One pagemap read: about 1 ms per 100 MiB.
 */
static void
check_against_pagemap(void)
{
    ps_pagemap_t pm;
    size_t now = 0;
    if (W.ws == NULL || ps_pagemap_open(&pm, 0) < 0)
        return;
    if (ps_count_copied_excl(W.a->snap, &pm, W.a->released, &now,
                             NULL) == 0) {
        int64_t d = (int64_t)now - (int64_t)ms_wset_copied_now(W.ws);
        atomic_store(&W.slot->wset_check, (uint64_t)(d < 0 ? -d : d));
        atomic_store(&W.slot->wset_checked, 1);
    }
    ps_pagemap_close(&pm);
}

/* The exit policy; never returns. */
static _Noreturn void
exit_policy(void)
{
    uint64_t t0 = clk_now_ns();
    srv_slot_t *s = W.slot;
    block_stop_signals();           /* the teardown runs to its end */
    publish_gc_stats();
    publish_responses();
    publish_overhead();
    gc_set_callback(NULL, NULL);    /* teardown's collections are its own */
    if (W.ws != NULL) {
        W.route = W.nroutes + SRV_ROUTE_SERVER;
        ws_close(MS_CAUSE_REQUEST, -1);     /* the last interval served */
        check_against_pagemap();
        t0 = clk_now_ns();      /* the measuring above is not the exit's */
    }
    if (W.a->cfg->exit_policy == CFG_EXIT_FINALIZE && W.heap != NULL) {
        rt_teardown_t st;
        memset(&st, 0, sizeof st);
        if (W.ws != NULL) {
            /* The release hook is in place: arenas are scanned before
             * their munmap, the rest at the end. */
            W.cause = MS_CAUSE_TEARDOWN;
            st.before_release = ws_teardown_rest;
        } else if (W.pm.fd >= 0) {
            close_gap();
            /* Pages copied (or released) before teardown are marked seen;
             * what the teardown releases is counted just before its
             * munmap (on_release), the rest at the end (count_rest). */
            size_t bytes = (ps_snap_total_pages(W.a->snap) + 7) / 8 + 1;
            size_t c;
            uint8_t *seen = malloc(bytes);
            if (seen && ps_copied_bitmap_fd(W.a->snap, &W.pm, seen,
                                            &c) == 0) {
                for (size_t i = 0; W.a->released && i + 1 < bytes; i++)
                    seen[i] |= W.a->released[i];
                W.seen = seen;
                st.before_release = count_rest;
            } else {
                free(seen);
            }
        }
        /* Py_Finalize's work, timed by the runtime: the release of what
         * is left (the kernel's work) and the measuring above and in the
         * release hook are not in it. */
        if (rt_finalize(W.heap, &st) < 0) {
            /* Its figures would be those of a partial teardown: report
             * none, and fail (the master says so and exits non-zero). */
            char msg[128];
            snprintf(msg, sizeof msg, "cowlab: worker %u: teardown ran out "
                     "of memory\n", W.a->index);
            fputs(msg, stderr);
            _exit(SRV_EXIT_TEARDOWN_FAILED);
        }
        if (W.ws != NULL)
            W.copied_teardown = ms_wset_copied(W.ws, MS_CAUSE_TEARDOWN);
        atomic_store(&s->copied_by_teardown, W.copied_teardown);
        atomic_store(&s->faults_teardown, (uint64_t)st.minflt);
        atomic_store(&s->teardown_collections, st.collections);
        atomic_store(&s->teardown_us, (uint64_t)(st.wall_ms * 1000.0));
        atomic_store(&s->state, SLOT_DONE);
        _exit(0);
    }
    atomic_store(&s->teardown_us, (clk_now_ns() - t0) / 1000);
    atomic_store(&s->state, SLOT_DONE);
    rt_skip_exit(0);
}

_Noreturn void
srv_worker_main(const srv_worker_args_t *a)
{
    memset(&W, 0, sizeof W);
    W.a = a;
    /* Tracking first: from here on every heap write is seen. */
    W.attr = a->heap != NULL && a->snap != NULL ? a->attribution
                                                : SRV_ATTR_NONE;
    if (W.attr == SRV_ATTR_WSET) {
        char why[256], msg[400];
        if (ms_wset_start(&W.ws, a->snap, why, sizeof why) < 0) {
            snprintf(msg, sizeof msg, "cowlab: worker %u: write sets: %s; "
                     "pagemap bracketing instead\n", a->index, why);
            fputs(msg, stderr);
            W.attr = SRV_ATTR_PAGEMAP;
        } else if (a->cfg->write_kinds) {
            /* The runtime notes the kind of each page's first write. */
            size_t n;
            const ps_range_t *r = ps_snap_ranges(a->snap, &n);
            if (rt_wk_start((const struct mem_range *)(const void *)r, n)
                == 0)
                ms_wset_set_kinds(W.ws, rt_wk_table(NULL));
            else
                fputs("cowlab: --write-kinds: this build notes no write "
                      "kinds (cowlab-kinds does)\n", stderr);
        }
    }
    W.cause = MS_CAUSE_REQUEST;
    W.slot = a->slot;
    W.heap = a->heap;
    W.app = a->app;
    /* A mold's worker: its parent exits right after fork(), and the
     * master (a child subreaper) adopts it.  PDEATHSIG follows the parent
     * of the moment, so it is set once the master is that parent. */
    for (int i = 0; a->reparent && getppid() != a->master && i < 5000; i++)
        usleep(1000);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != a->master)
        _exit(1);                   /* the master died before prctl */
    /* The master forked us with every signal blocked and its handlers
     * reset: stop signals stay blocked (pending) until the loop's own
     * handlers are in place, the rest are unblocked now. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    sigset_t mask;
    stop_signals(&mask);
    sigprocmask(SIG_SETMASK, &mask, NULL);
    atomic_store(&W.slot->pid, (int)getpid());

    if (a->heap == NULL) {          /* lazy: no sharing, the baseline */
        uint64_t t0 = clk_now_ns();
        char err[512];
        W.heap = srv_heap_new(a->cfg);
        srv_apply_gc_thresholds(a->cfg);
        if (W.heap == NULL
            || wl_build_gc(W.heap, a->spec, a->cfg->scale, a->seed,
                           srv_build_gc(a->cfg), &W.app, NULL) < 0) {
            snprintf(err, sizeof err, "worker %u: heap build failed\n",
                     a->index);
            fputs(err, stderr);
            _exit(70);
        }
        if (srv_apply_prefork_policy(a->cfg, W.heap, NULL) < 0) {
            snprintf(err, sizeof err, "cowlab: worker %u: the pre-fork "
                     "policy failed\n", a->index);
            fputs(err, stderr);
            _exit(70);
        }
        atomic_store(&W.slot->build_us, (clk_now_ns() - t0) / 1000);
    }
    wl_app_seed(W.app, a->seed);
    W.nroutes = (unsigned)wl_route_count(W.app);
    W.route = W.nroutes + SRV_ROUTE_SERVER;
    atomic_store(&W.slot->heap_objects, rt_heap_objects(W.heap));
    publish_overhead();
    gc_get_stats(W.gc_base);
    W.pm.fd = -1;
    if (W.attr == SRV_ATTR_PAGEMAP && ps_pagemap_open(&W.pm, 0) < 0)
        W.pm.fd = -1;
    if (W.ws != NULL) {
        ws_close(MS_CAUSE_REQUEST, -1);     /* the start-up, if anything */
        ws_publish();
    }
    atomic_store(&W.slot->attribution, W.attr);
    if (W.pm.fd >= 0) {
        double f = a->cfg->pagemap_gc_fraction;
        W.young_every = f <= 0 ? 0 : (uint64_t)(1.0 / f + 0.5);
        if (measure(&W.last_copied) < 0)
            W.last_copied = 0;
        W.copied_unattr = W.last_copied;    /* before we ran: none, or the
                                               loop setup's */
        publish_copies();
    }
    gc_set_callback(on_gc, NULL);
    /* Released pages, for the write sets too (ws_release). */
    if (a->snap != NULL && a->heap != NULL)
        mem_set_release_hook(on_release, NULL);
    W.max_requests = a->cfg->max_requests;
    if (W.max_requests > 0 && a->cfg->max_requests_jitter > 0)
        W.max_requests += (long)(a->seed % (uint64_t)
                                 (a->cfg->max_requests_jitter + 1));

    if (uv_loop_init(&W.loop) != 0)
        _exit(71);
    srv_http_limits_t lim;
    srv_http_limits_default(&lim);
    lim.max_header_bytes = a->cfg->max_header_bytes;
    lim.max_url_bytes = a->cfg->max_url_bytes;
    lim.max_body_bytes = a->cfg->max_body_bytes;
    lim.header_timeout_ms = a->cfg->header_timeout_ms;
    lim.keepalive_timeout_ms = a->cfg->keepalive_timeout_ms;
    lim.max_connections = a->cfg->max_connections;
    uv_signal_init(&W.loop, &W.sig_term);
    uv_signal_init(&W.loop, &W.sig_int);
    uv_signal_init(&W.loop, &W.sig_quit);
    uv_signal_start(&W.sig_term, on_signal, SIGTERM);
    uv_signal_start(&W.sig_int, on_signal, SIGINT);
    uv_signal_start(&W.sig_quit, on_signal, SIGQUIT);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    uv_timer_init(&W.loop, &W.stop_timer);
    if (srv_http_start(&W.loop, a->listen_fd, &lim, handle, NULL,
                       &W.http) < 0)
        _exit(72);
    uv_timer_init(&W.loop, &W.publish_timer);
    uv_timer_start(&W.publish_timer, on_publish_timer, PUBLISH_MS,
                   PUBLISH_MS);
    uv_unref((uv_handle_t *)&W.publish_timer);  /* never keeps the loop */
    if (a->ctl_fd >= 0 && uv_poll_init(&W.loop, &W.ctl_poll, a->ctl_fd) == 0
        && uv_poll_start(&W.ctl_poll, UV_READABLE, on_ctl) == 0)
        W.ctl_active = 1;
    atomic_store(&W.slot->state, SLOT_SERVING);
    uv_run(&W.loop, UV_RUN_DEFAULT);
    if (W.becoming_mold && !W.stop_signal)
        become_mold();
    exit_policy();
}
