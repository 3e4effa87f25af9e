/*
 * worker.c -- a forked worker process.
 *
 * After fork() the worker builds its own uv loop (libuv: a child never
 * uses its parent's loop; the master has none anyway), serves HTTP on the
 * inherited socket, and runs every request against the heap it shares
 * copy-on-write with the master.  Minor faults are attributed by cause:
 * getrusage() deltas around each collection (a GC callback) and around
 * each request with the collections inside it subtracted.
 *
 * Stopping: SIGTERM drains (stop accepting, finish in-flight requests),
 * SIGINT/SIGQUIT close at once, --max-requests drains after N requests.
 * Then the exit policy: finalize (rt_finalize: the whole heap torn down,
 * timed) or skip (rt_skip_exit: _exit right away).  Counters are already in
 * the shared slot, so nothing needs flushing.
 */
#include "worker.h"

#include <errno.h>
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
} worker_t;

static worker_t W;

rt_heap_t *
srv_heap_new(const cfg_t *cfg)
{
    rt_opts_t o;
    rt_opts_default(&o);
    o.python = cfg->python == 311 ? RT_PY_311 : RT_PY_312;
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

int
srv_apply_prefork_policy(const cfg_t *cfg, rt_heap_t *h)
{
    if (cfg->freeze)
        gc_freeze();
    if (cfg->immortal && rt_immortalize_heap(h) < 0)
        return -ENOMEM;             /* partly immortal: never measure it */
    return 0;
}

/*
 * Copied pages by cause.  The worker reads its own pagemap over the heap
 * pages present at fork (the master's snapshot) at chosen moments; in a
 * worker only requests and collections write the heap, so:
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
    if (phase == 0) {
        if (gen == GC_GEN_OLDEST
            && atomic_load(&W.slot->first_full_gc_request) == 0)
            atomic_store(&W.slot->first_full_gc_request,
                         atomic_load(&W.slot->requests) + 1);
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

static void
on_publish_timer(uv_timer_t *t)
{
    (void)t;
    publish_responses();
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

static void
handle(void *ctx, const srv_request_t *req, srv_response_t *resp)
{
    (void)ctx;
    srv_slot_t *s = W.slot;
    atomic_store(&s->busy_since_ns, clk_now_ns());
    publish_responses();
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
        uint64_t total = (uint64_t)(f1 - f0);
        atomic_fetch_add(&s->faults_request,
                         total > in_gc ? total - in_gc : 0);
        resp->status = res.status ? res.status : 500;
        resp->body = res.body;
        resp->body_len = res.body_len;
        publish_gc_stats();
        if (W.pm.fd >= 0 && clk_now_ns() - W.last_measure_ns > 1000000000u)
            close_gap();
    }
    uint64_t n = atomic_fetch_add(&s->requests, 1) + 1;
    atomic_store(&s->busy_since_ns, 0);
    if (W.max_requests > 0 && (long)n >= W.max_requests && !W.stopping) {
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
    begin_stop(signum == SIGTERM);
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

/* The exit policy; never returns. */
static _Noreturn void
exit_policy(void)
{
    uint64_t t0 = clk_now_ns();
    srv_slot_t *s = W.slot;
    block_stop_signals();           /* the teardown runs to its end */
    publish_gc_stats();
    publish_responses();
    gc_set_callback(NULL, NULL);    /* teardown's collections are its own */
    if (W.a->cfg->exit_policy == CFG_EXIT_FINALIZE && W.heap != NULL) {
        rt_teardown_t st;
        memset(&st, 0, sizeof st);
        if (W.pm.fd >= 0) {
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
    W.slot = a->slot;
    W.heap = a->heap;
    W.app = a->app;
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
        if (srv_apply_prefork_policy(a->cfg, W.heap) < 0) {
            snprintf(err, sizeof err, "cowlab: worker %u: --immortal: out "
                     "of memory\n", a->index);
            fputs(err, stderr);
            _exit(70);
        }
        atomic_store(&W.slot->build_us, (clk_now_ns() - t0) / 1000);
    }
    wl_app_seed(W.app, a->seed);
    atomic_store(&W.slot->heap_objects, rt_heap_objects(W.heap));
    gc_get_stats(W.gc_base);
    W.pm.fd = -1;
    if (a->snap != NULL && a->heap != NULL && ps_pagemap_open(&W.pm, 0) < 0)
        W.pm.fd = -1;
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
    atomic_store(&W.slot->state, SLOT_SERVING);
    uv_run(&W.loop, UV_RUN_DEFAULT);
    exit_policy();
}
