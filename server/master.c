/*
 * master.c -- the prefork master (gunicorn's arbiter, uWSGI's master).
 *
 * Order of work: build the heap from the workload, apply the pre-fork
 * policy (thresholds / gc off / freeze / immortalize), take the pagemap
 * snapshot of the heap ranges (heap_pages: what the workers may share),
 * open the socket and the shared stats slots, fork the workers, then
 * supervise and sample until told to stop.
 *
 * The master writes no heap page after the first fork: supervision and
 * sampling use malloc()ed state, the slots region and stdio only, so every
 * heap page a worker holds exclusively was copied by that worker.
 *
 * Signals are turned into bytes on a self-pipe and handled in the loop:
 *   SIGCHLD  reap; respawn a worker that died while we are running
 *   SIGTERM  graceful: workers drain within --graceful-timeout, then KILL
 *   SIGINT, SIGQUIT  fast: workers stop at once (5 s, then KILL)
 *   SIGHUP   replace every worker, one new worker per old one
 */
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "census.h"
#include "clock.h"
#include "gc.h"
#include "http.h"
#include "mem.h"
#include "object.h"
#include "output.h"
#include "procstat.h"
#include "sampler.h"
#include "slots.h"
#include "wkinds.h"
#include "worker.h"
#include "wset.h"

typedef struct proc {
    pid_t pid;                  /* 0: none */
    int slot;
    unsigned index;
    int retiring;               /* replaced by SIGHUP or stopping */
    uint64_t started_ns;
    ps_pagemap_t pm;
    /* last sample, for runs.csv */
    double last_shared_pct;
    long last_private_dirty_kb;
    int sampled;
    uint64_t smaps_ns;          /* when its smaps_rollup was last read */
} proc_t;

typedef struct master {
    const cfg_t *cfg;
    const wl_spec_t *spec;
    rt_heap_t *heap;
    wl_app_t *app;
    char policy[128];
    char run_id[160];
    int *listen_fds;            /* one per worker index (SO_REUSEPORT) */
    int port;
    srv_slots_t slots;
    proc_t *procs;              /* 2 * workers entries */
    unsigned nprocs;
    ps_snap_t *snap;
    size_t heap_pages;
    ms_csv_t samples;           /* fd -1: no --out */
    int samples_failed;         /* said so once */
    uint64_t t0_ns;
    double build_ms, fork_ms;
    size_t heap_objects;
    unsigned respawns;
    unsigned teardown_failed;   /* workers whose finalize ran out of memory */
    uint64_t requests_done;     /* by processes that have exited */
    uint64_t responses_4xx_done, responses_5xx_done;    /* the same */
    int stopping;               /* 0 run, 1 graceful, 2 fast */
    uint64_t stop_deadline_ns;
    /* teardown figures of the processes that exited at the final stop */
    double teardown_ms_sum;
    double faults_teardown_sum;
    unsigned teardown_n;
    double final_shared_sum, final_pd_sum;
    unsigned final_n;
    double copied_teardown_sum;
    ms_sampler_t sampler;       /* interval in force, next round */
    /* Copy attribution, resolved before the first fork. */
    int attr;                   /* SRV_ATTR_* */
    char attr_why[320];         /* why not write sets ("" when they run) */
    unsigned attr_seen;         /* 1 << SRV_ATTR_* of every exited worker */
    uint64_t written_done, written_requests_done;
    uint64_t wset_check;        /* sum of the exited workers' checks */
    unsigned wset_checked;      /* workers that made it */
    /* routes.csv: per slot in shared memory, per logical worker summed
     * here as its processes exit. */
    srv_routes_t routes;
    size_t nroutes;             /* the workload's, + SRV_ROUTE_EXTRA */
    srv_route_t *route_sum;     /* [workers][nroutes] */
    uint64_t (*kind_sum)[SRV_NKCAUSES][SRV_NKINDS];    /* [workers] */
    size_t own_len;             /* procs and route sums: one mapping */
    unsigned char *route_wset;  /* [workers]: 1 all write sets, 2 not */
} master_t;

static int sigpipe_fds[2] = { -1, -1 };

static void
on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t r = write(sigpipe_fds[1], &b, 1);
    (void)r;
    errno = saved;
}

static void
say(const master_t *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
say(const master_t *m, const char *fmt, ...)
{
    va_list ap;
    if (m->cfg->quiet)
        return;
    va_start(ap, fmt);
    fputs("cowlab: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int
mkdir_p(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) < 0 && errno != EEXIST)
                return -errno;
            buf[i] = c;
        }
    }
    return 0;
}

/* path of an output file: --out/name */
static const char *
out_path(const master_t *m, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", m->cfg->out_dir, name);
    return buf;
}

static int
write_meta(const master_t *m)
{
    char path[4096];
    ms_meta_t meta = {
        .run_id = m->run_id, .policy = m->policy,
        .config = cfg_to_json(m->cfg), .workload = wl_spec_to_json(m->spec),
        .heap_pages = m->heap_pages, .heap_objects = m->heap_objects,
        .build_ms = m->build_ms, .attribution = srv_attr_name(m->attr),
        .attribution_why = m->attr_why[0] ? m->attr_why : NULL,
    };
    int r = meta.config && meta.workload
        ? ms_meta_write(out_path(m, "meta.json", path, sizeof path), &meta)
        : -ENOMEM;
    json_decref(meta.config);
    json_decref(meta.workload);
    return r;
}

static int
spawn(master_t *m, unsigned index)
{
    proc_t *p = NULL;
    for (unsigned i = 0; i < m->nprocs; i++)
        if (m->procs[i].pid == 0) {
            p = &m->procs[i];
            break;
        }
    int slot = srv_slots_claim(&m->slots);
    if (p == NULL || slot < 0) {
        srv_slots_release(&m->slots, slot);
        return -EAGAIN;
    }
    srv_worker_args_t a = {
        .cfg = m->cfg, .heap = m->heap, .app = m->app, .spec = m->spec,
        .slot = &m->slots.slot[slot], .listen_fd = m->listen_fds[index],
        .index = index, .seed = (uint64_t)clk_now_ns() ^ (index * 0x9e37u),
        .master = getpid(), .snap = m->snap, .attribution = m->attr,
        .routes = srv_routes_of(&m->routes, slot),
    };
    memset(a.routes, 0, m->nroutes * sizeof(srv_route_t));
    fflush(NULL);
    /* Signals stay blocked across fork(): the child must not run the
     * master's handler (its pipe is the master's) before it has its own. */
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid != 0) {
        int saved = errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        errno = saved;
    }
    if (pid < 0) {
        srv_slots_release(&m->slots, slot);
        return -errno;
    }
    if (pid == 0) {
        int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP };
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        close(sigpipe_fds[0]);
        close(sigpipe_fds[1]);
        ms_csv_drop(&m->samples);   /* the master's: never written here */
        srv_worker_main(&a);
    }
    memset(p, 0, sizeof *p);
    p->pid = pid;
    p->slot = slot;
    p->index = index;
    p->started_ns = clk_now_ns();
    p->pm.fd = -1;
    if (ps_pagemap_open(&p->pm, pid) < 0)
        p->pm.fd = -1;
    return 0;
}

static proc_t *
find_proc(master_t *m, pid_t pid)
{
    for (unsigned i = 0; i < m->nprocs; i++)
        if (m->procs[i].pid == pid)
            return &m->procs[i];
    return NULL;
}

static unsigned
live_workers(const master_t *m)
{
    unsigned n = 0;
    for (unsigned i = 0; i < m->nprocs; i++)
        if (m->procs[i].pid)
            n++;
    return n;
}

static uint64_t
total_requests(const master_t *m)
{
    uint64_t n = m->requests_done;
    for (unsigned i = 0; i < m->nprocs; i++)
        if (m->procs[i].pid)
            n += atomic_load(&m->slots.slot[m->procs[i].slot].requests);
    return n;
}

static void
sample(master_t *m, int final)
{
    uint64_t t = clk_now_ns();
    double t_ms = (double)(t - m->t0_ns) / 1e6;
    for (unsigned i = 0; i < m->nprocs; i++) {
        proc_t *p = &m->procs[i];
        if (p->pid == 0 || p->retiring)
            continue;
        srv_slot_t *s = &m->slots.slot[p->slot];
        if (atomic_load(&s->state) < SLOT_SERVING)
            continue;               /* still building (lazy) */
        ps_smaps_t sm;
        ps_stat_t st;
        size_t copied = 0;
        /* smaps_rollup walks every page (PSS): the costliest read by far
         * (about 10 ms per GiB), so at most every --smaps-ms; the rows in
         * between leave its columns empty.  The final row has it. */
        uint64_t every = (uint64_t)m->cfg->smaps_ms * 1000000u;
        int smaps = final || every == 0 || p->smaps_ns == 0
                    || t - p->smaps_ns >= every;
        if ((smaps && ps_read_smaps_rollup(p->pid, &sm) < 0)
            || ps_read_stat(p->pid, &st) < 0)
            continue;               /* it just died: SIGCHLD will tell */
        if (smaps)
            p->smaps_ns = t;
        int attr = atomic_load(&s->attribution);
        if (attr == SRV_ATTR_WSET)
            copied = (size_t)atomic_load(&s->copied_measured);
        else if (m->snap && p->pm.fd >= 0
                 && ps_count_copied_fd(m->snap, &p->pm, &copied) < 0)
            continue;
        double shared_pct = m->heap_pages
            ? 100.0 * (1.0 - (double)copied / (double)m->heap_pages) : 0.0;
        uint64_t fgc = atomic_load(&s->faults_gc);
        uint64_t freq = atomic_load(&s->faults_request);
        uint64_t fsam = atomic_load(&s->faults_sampling);
        long other = st.minflt - (long)fgc - (long)freq - (long)fsam;
        p->last_shared_pct = shared_pct;
        if (smaps)
            p->last_private_dirty_kb = sm.private_dirty_kb;
        p->sampled = 1;
        if (final) {
            m->final_shared_sum += shared_pct;
            m->final_pd_sum += (double)sm.private_dirty_kb;
            m->final_n++;
        }
        if (m->samples.fd < 0)
            continue;
        ms_sample_t row = {
            .run_id = m->run_id, .policy = m->policy,
            .worker = p->index, .pid = p->pid, .t_ms = t_ms,
            .requests = atomic_load(&s->requests),
            .rss_kb = smaps ? sm.rss_kb : MS_I64_UNSET,
            .pss_kb = smaps ? sm.pss_kb : MS_I64_UNSET,
            .shared_clean_kb = smaps ? sm.shared_clean_kb : MS_I64_UNSET,
            .shared_dirty_kb = smaps ? sm.shared_dirty_kb : MS_I64_UNSET,
            .private_clean_kb = smaps ? sm.private_clean_kb : MS_I64_UNSET,
            .private_dirty_kb = smaps ? sm.private_dirty_kb : MS_I64_UNSET,
            .minflt = st.minflt, .majflt = st.majflt,
            .heap_pages = m->heap_pages, .heap_copied_pages = copied,
            .heap_shared_pct = shared_pct,
            .gc_collections_0 = atomic_load(&s->gc_collections[0]),
            .gc_collections_1 = atomic_load(&s->gc_collections[1]),
            .gc_collections_2 = atomic_load(&s->gc_collections[2]),
            .gc_time_us = atomic_load(&s->gc_time_us),
            .faults_gc = fgc, .faults_request = freq,
            .faults_other = other > 0 ? other : 0,
            .sample_ms = m->sampler.interval_ms,
            .copied_by_gc = atomic_load(&s->copied_by_gc),
            .copied_by_request = atomic_load(&s->copied_by_request),
            .copied_unattributed = atomic_load(&s->copied_unattributed),
            .gc_measured = atomic_load(&s->gc_measured),
            .copied_by_master = MS_U64_UNSET,   /* cowlab attach's */
            .heap_new_pages = MS_U64_UNSET,
            .heap_shared_pages = MS_U64_UNSET,
            .attribution = srv_attr_name(attr),
            .written_pages = atomic_load(&s->written_pages),
            .written_requests = atomic_load(&s->written_requests),
            .wset_scans = atomic_load(&s->wset_scans),
            .wset_skipped = atomic_load(&s->wset_skipped),
            .wset_ms = (double)atomic_load(&s->wset_busy_us) / 1e3,
            .faults_sampling = fsam,
        };
        ms_csv_add(&m->samples, &row);
    }
    /* The whole round in one write(): a killed master leaves whole rows. */
    int r = m->samples.fd >= 0 ? ms_csv_flush(&m->samples) : 0;
    if (r < 0 && !m->samples_failed) {
        m->samples_failed = 1;
        say(m, "cannot write samples.csv: %s", strerror(-r));
    }
}

/* A worker process is gone: add what it did per route to its logical
 * worker's sums, and its written pages to the run's. */
static void
collect_routes(master_t *m, const proc_t *p)
{
    srv_slot_t *s = &m->slots.slot[p->slot];
    const srv_route_t *r = srv_routes_of(&m->routes, p->slot);
    srv_route_t *sum = m->route_sum + (size_t)p->index * m->nroutes;
    int attr = atomic_load(&s->attribution);
    m->attr_seen |= 1u << attr;
    m->route_wset[p->index] |= attr == SRV_ATTR_WSET ? 1 : 2;
    m->written_done += atomic_load(&s->written_pages);
    for (int c = 0; c < SRV_NKCAUSES; c++)
        for (int k = 0; k < SRV_NKINDS; k++)
            m->kind_sum[p->index][c][k] += atomic_load(&s->kind_copied[c][k]);
    if (atomic_load(&s->wset_checked)) {
        m->wset_check += atomic_load(&s->wset_check);
        m->wset_checked++;
    }
    m->written_requests_done += atomic_load(&s->written_requests);
    for (size_t i = 0; i < m->nroutes; i++) {
        atomic_fetch_add(&sum[i].requests, atomic_load(&r[i].requests));
        atomic_fetch_add(&sum[i].copied, atomic_load(&r[i].copied));
        atomic_fetch_add(&sum[i].copied_gc, atomic_load(&r[i].copied_gc));
        atomic_fetch_add(&sum[i].written, atomic_load(&r[i].written));
        atomic_fetch_add(&sum[i].written_requests,
                         atomic_load(&r[i].written_requests));
    }
}

static const char *
route_name(const master_t *m, size_t i)
{
    size_t n = m->nroutes - SRV_ROUTE_EXTRA;
    return i < n ? wl_spec_route_path(m->spec, i)
                 : srv_route_extra_name((int)(i - n));
}

static void
reap(master_t *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        proc_t *p = find_proc(m, pid);
        if (p == NULL)
            continue;
        srv_slot_t *s = &m->slots.slot[p->slot];
        m->requests_done += atomic_load(&s->requests);
        m->responses_4xx_done += atomic_load(&s->responses_4xx);
        m->responses_5xx_done += atomic_load(&s->responses_5xx);
        collect_routes(m, p);
        int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0
                    && atomic_load(&s->state) == SLOT_DONE;
        if (m->stopping && clean) {
            m->teardown_ms_sum += (double)atomic_load(&s->teardown_us) / 1e3;
            m->faults_teardown_sum += (double)atomic_load(&s->faults_teardown);
            m->copied_teardown_sum +=
                (double)atomic_load(&s->copied_by_teardown);
            m->teardown_n++;
        }
        unsigned index = p->index;
        int retiring = p->retiring;
        if (WIFEXITED(status)
            && WEXITSTATUS(status) == SRV_EXIT_TEARDOWN_FAILED)
            m->teardown_failed++;   /* it said why; the run fails */
        ps_pagemap_close(&p->pm);
        srv_slots_release(&m->slots, p->slot);
        p->pid = 0;
        if (!clean && !m->stopping) {
            if (WIFSIGNALED(status))
                say(m, "worker %u (pid %d) killed by signal %d", index,
                    (int)pid, WTERMSIG(status));
            else
                say(m, "worker %u (pid %d) exited with status %d", index,
                    (int)pid, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        }
        if (!m->stopping && !retiring) {
            if (spawn(m, index) == 0)
                m->respawns++;
            else
                say(m, "could not respawn worker %u", index);
        }
    }
}

static void
signal_workers(master_t *m, int sig)
{
    for (unsigned i = 0; i < m->nprocs; i++)
        if (m->procs[i].pid)
            kill(m->procs[i].pid, sig);
}

/* --type-census: types.csv rows for every live worker, at the end. */
static void
type_census(master_t *m)
{
    if (!m->cfg->type_census || m->heap == NULL || m->snap == NULL
        || m->cfg->out_dir == NULL)
        return;
    ms_census_t *c = NULL;
    ms_csv_t w;
    char path[4096];
    uint64_t t0 = clk_now_ns();
    if (ms_census_build(&c, m->heap, m->snap) < 0) {
        say(m, "type census: out of memory");
        return;
    }
    int r = ms_csv_open(&w, out_path(m, "types.csv", path, sizeof path),
                        &ms_types_table);
    for (unsigned i = 0; r == 0 && i < m->nprocs; i++) {
        proc_t *p = &m->procs[i];
        ms_type_row_t row = { .run_id = m->run_id, .policy = m->policy,
                              .worker = p->index, .pid = p->pid };
        if (p->pid && !p->retiring && p->pm.fd >= 0)
            ms_census_add(c, &w, &row, &p->pm);  /* fails if it just died */
    }
    if (r == 0)
        r = ms_csv_close(&w);
    if (r < 0)
        say(m, "type census: cannot write types.csv: %s", strerror(-r));
    say(m, "type census: %zu objects in %.0f ms", ms_census_objects(c),
        (double)(clk_now_ns() - t0) / 1e6);
    ms_census_free(c);
}

static void
begin_stop(master_t *m, int fast, const char *why)
{
    if (m->stopping >= (fast ? 2 : 1))
        return;
    say(m, "stopping (%s): %s", why, fast ? "fast" : "graceful");
    if (!m->stopping) {
        sample(m, 1);               /* the final row of every worker */
        type_census(m);
    }
    m->stopping = fast ? 2 : 1;
    double limit = fast ? 5.0 : m->cfg->graceful_timeout_s;
    m->stop_deadline_ns = clk_now_ns() + (uint64_t)(limit * 1e9);
    signal_workers(m, fast ? SIGQUIT : SIGTERM);
}

static void
reload(master_t *m)
{
    unsigned n = m->nprocs;
    say(m, "SIGHUP: replacing workers one by one");
    for (unsigned i = 0; i < n; i++) {
        proc_t *p = &m->procs[i];
        if (p->pid == 0 || p->retiring)
            continue;
        pid_t old = p->pid;
        unsigned index = p->index;
        p->retiring = 1;
        if (spawn(m, index) < 0) {
            p->retiring = 0;
            say(m, "SIGHUP: could not spawn a replacement");
            continue;
        }
        kill(old, SIGTERM);
    }
}

/* --timeout: a worker stuck in one request is killed and respawned. */
static void
check_timeouts(master_t *m)
{
    if (m->cfg->timeout_s <= 0)
        return;
    uint64_t now = clk_now_ns(), limit = (uint64_t)(m->cfg->timeout_s * 1e9);
    for (unsigned i = 0; i < m->nprocs; i++) {
        proc_t *p = &m->procs[i];
        if (p->pid == 0)
            continue;
        uint64_t since = atomic_load(&m->slots.slot[p->slot].busy_since_ns);
        if (since && now > since && now - since > limit) {
            say(m, "worker %u (pid %d) stuck in a request for %.1f s: killed",
                p->index, (int)p->pid, (double)(now - since) / 1e9);
            kill(p->pid, SIGKILL);
        }
    }
}

/* The run's attribution: the method every worker process used, or
 * "mixed" (one fell back). */
static const char *
run_attribution(const master_t *m)
{
    unsigned seen = m->attr_seen ? m->attr_seen : 1u << m->attr;
    for (int a = SRV_ATTR_NONE; a <= SRV_ATTR_WSET; a++)
        if (seen == 1u << a)
            return srv_attr_name(a);
    return "mixed";
}

/* routes.csv: one row per logical worker and route that saw a request
 * or a copy (the workload's routes always). */
static void
write_routes(master_t *m)
{
    char path[4096];
    ms_csv_t w;
    size_t nwl = m->nroutes - SRV_ROUTE_EXTRA;
    int r = ms_csv_open(&w, out_path(m, "routes.csv", path, sizeof path),
                        &ms_routes_table);
    for (int k = 0; r == 0 && k < m->cfg->workers; k++) {
        const srv_route_t *sum = m->route_sum + (size_t)k * m->nroutes;
        int exact = m->route_wset[k] == 1;
        for (size_t i = 0; i < m->nroutes; i++) {
            uint64_t req = atomic_load(&sum[i].requests);
            uint64_t cp = atomic_load(&sum[i].copied);
            uint64_t gc = atomic_load(&sum[i].copied_gc);
            uint64_t wr = atomic_load(&sum[i].written);
            uint64_t wn = atomic_load(&sum[i].written_requests);
            if (i >= nwl && req == 0 && cp == 0 && gc == 0)
                continue;
            ms_route_row_t row = {
                .run_id = m->run_id, .policy = m->policy,
                .worker = (uint64_t)k, .route = route_name(m, i),
                .requests = req,
                .copied_pages = exact ? (double)cp : MS_UNSET,
                .copied_by_gc = exact ? (double)gc : MS_UNSET,
                .written_requests = wn,
                .written_pages = wn ? (double)wr : MS_UNSET,
                .written_per_request = wn ? (double)wr / (double)wn
                                          : MS_UNSET,
            };
            ms_csv_add(&w, &row);
        }
    }
    if (r == 0)
        r = ms_csv_close(&w);
    if (r < 0)
        say(m, "cannot write routes.csv: %s", strerror(-r));
}

/* kinds.csv (--write-kinds): per logical worker and kind. */
static void
write_kinds(master_t *m)
{
    char path[4096];
    ms_csv_t w;
    int r = ms_csv_open(&w, out_path(m, "kinds.csv", path, sizeof path),
                        &ms_kinds_table);
    for (int k = 0; r == 0 && k < m->cfg->workers; k++) {
        for (int kind = 0; kind < SRV_NKINDS; kind++) {
            const uint64_t *c = &m->kind_sum[k][0][0];
            ms_kind_row_t row = {
                .run_id = m->run_id, .policy = m->policy,
                .worker = (uint64_t)k, .kind = rt_wk_name(kind),
                .copied_by_request = c[SRV_KC_REQUEST * SRV_NKINDS + kind],
                .copied_by_gc = c[SRV_KC_GC * SRV_NKINDS + kind],
                .copied_by_teardown = c[SRV_KC_TEARDOWN * SRV_NKINDS + kind],
            };
            row.copied_pages = row.copied_by_request + row.copied_by_gc
                               + row.copied_by_teardown;
            ms_csv_add(&w, &row);
        }
    }
    if (r == 0)
        r = ms_csv_close(&w);
    if (r < 0)
        say(m, "cannot write kinds.csv: %s", strerror(-r));
}

static void
write_runs_row(master_t *m)
{
    char path[4096];
    ms_csv_t w;
    double secs = (double)(clk_now_ns() - m->t0_ns) / 1e9;
    const cfg_t *cfg = m->cfg;
    ms_run_t row = {
        .run_id = m->run_id, .policy = m->policy,
        .workers = (uint64_t)cfg->workers, .heap_objects = m->heap_objects,
        .heap_mb = (double)m->heap_pages * (double)sysconf(_SC_PAGESIZE)
                   / 1048576.0,
        .build_ms = m->build_ms, .fork_ms = m->fork_ms,
        .requests = m->requests_done,
        .rps = secs > 0 ? (double)m->requests_done / secs : 0.0,
        .heap_shared_pct = m->final_n ? m->final_shared_sum / m->final_n
                                      : 0.0,
        .private_dirty_kb = m->final_n ? m->final_pd_sum / m->final_n : 0.0,
        .teardown_ms = MS_UNSET, .faults_teardown = MS_UNSET,
        .exit = cfg->exit_policy == CFG_EXIT_SKIP ? "skip" : "finalize",
        .scale = cfg->scale,
        .workload = cfg->workload_path ? cfg->workload_path
                                       : wl_spec_name(m->spec),
        .gc = cfg->gc_enabled ? "on" : "off",
        .gc_threshold = { cfg->gc_threshold[0], cfg->gc_threshold[1],
                          cfg->gc_threshold[2] },
        .freeze = (uint64_t)cfg->freeze, .immortal = (uint64_t)cfg->immortal,
        .lazy = (uint64_t)cfg->lazy, .respawns = m->respawns,
        .duration_s = secs, .copied_by_teardown = MS_UNSET,
        .sample_ms = m->sampler.interval_ms,
        .responses_4xx = m->responses_4xx_done,
        .responses_5xx = m->responses_5xx_done,
        .copied_by_master = MS_UNSET,           /* cowlab attach's */
    };
    if (cfg->lazy && m->nprocs)
        row.heap_objects = atomic_load(&m->slots.slot[0].heap_objects);
    row.attribution = run_attribution(m);
    row.wset_check_pages = m->wset_checked ? (double)m->wset_check
                                           : MS_UNSET;
    if (m->wset_check)
        fprintf(stderr, "cowlab: write sets missed %llu copied pages (their "
                "count against the pagemap at worker exit)\n",
                (unsigned long long)m->wset_check);
    row.written_pages = m->written_done;
    row.written_requests = m->written_requests_done;
    row.written_per_request = m->written_requests_done
        ? (double)m->written_done / (double)m->written_requests_done
        : MS_UNSET;
    row.top_copy_route_pct = MS_UNSET;
    if (m->attr_seen == 1u << SRV_ATTR_WSET) {
        /* Copies by requests, per route over every worker. */
        uint64_t best = 0, all = 0;
        for (size_t i = 0; i < m->nroutes; i++) {
            uint64_t c = 0;
            for (int k = 0; k < cfg->workers; k++)
                c += atomic_load(&m->route_sum[(size_t)k * m->nroutes
                                               + i].copied);
            all += c;
            if (c > best) {
                best = c;
                row.top_copy_route = route_name(m, i);
            }
        }
        if (all)
            row.top_copy_route_pct = 100.0 * (double)best / (double)all;
    }
    if (m->teardown_n) {            /* empty when no worker reported one */
        row.teardown_ms = m->teardown_ms_sum / m->teardown_n;
        row.faults_teardown = m->faults_teardown_sum / m->teardown_n;
        row.copied_by_teardown = m->copied_teardown_sum / m->teardown_n;
    }
    int r = ms_csv_open(&w, out_path(m, "runs.csv", path, sizeof path),
                        &ms_runs_table);
    if (r == 0) {
        ms_csv_add(&w, &row);
        r = ms_csv_close(&w);
    }
    if (r < 0)
        say(m, "cannot write runs.csv: %s", strerror(-r));
    write_routes(m);
    if (cfg->write_kinds)
        write_kinds(m);
}

int
srv_snapshot_heap(ps_snap_t **snap)
{
    mem_range_t *r = NULL;
    long n = mem_ranges(NULL, 0), got;
    /* However many ranges the heap has: ask for the count, make room,
     * ask again (nothing allocates from the runtime in between, but a
     * count that grew would only mean another round). */
    for (;;) {
        if (n < 0) {
            free(r);
            return -ENOMEM;
        }
        mem_range_t *t = realloc(r, ((size_t)n + 1) * sizeof(*r));
        if (t == NULL) {
            free(r);
            return -ENOMEM;
        }
        r = t;
        got = mem_ranges(r, (size_t)n + 1);
        if (got >= 0 && got <= n + 1)
            break;
        n = got;
    }
    int rc = ps_snap_take(snap, 0, (const ps_range_t *)r, (size_t)got);
    free(r);
    return rc;
}

static int
build_heap(master_t *m)
{
    char err[512];
    uint64_t t0 = clk_now_ns();
    m->heap = rt_heap_new();
    if (m->heap == NULL) {
        fprintf(stderr, "cowlab: cannot start the runtime\n");
        return -1;
    }
    srv_apply_gc_thresholds(m->cfg);
    wl_build_stats_t bs;
    memset(&bs, 0, sizeof bs);
    if (wl_build(m->heap, m->spec, m->cfg->scale, 42, &m->app, &bs) < 0) {
        snprintf(err, sizeof err, "cowlab: building the heap failed "
                 "(out of memory?)\n");
        fputs(err, stderr);
        return -1;
    }
    if (srv_apply_prefork_policy(m->cfg, m->heap) < 0) {
        fprintf(stderr, "cowlab: --immortal: out of memory while making "
                "the heap immortal\n");
        return -1;
    }
    m->build_ms = (double)(clk_now_ns() - t0) / 1e6;
    m->heap_objects = rt_heap_objects(m->heap);
    int r = srv_snapshot_heap(&m->snap);
    if (r < 0) {
        fprintf(stderr, "cowlab: cannot snapshot the heap's pages: %s\n",
                strerror(-r));
        return -1;
    }
    m->heap_pages = ps_snap_pages(m->snap);
    say(m, "heap built: %zu objects, %zu pages (%.1f MiB) in %.0f ms",
        m->heap_objects, m->heap_pages,
        (double)m->heap_pages * 4096.0 / 1048576.0, m->build_ms);
    return 0;
}

/*
 * Which copy attribution the workers use: exact write sets where this
 * kernel and process may (probed here, once), pagemap bracketing where
 * not, none with --attribution off or --lazy (nothing is shared).  A
 * worker whose own start of write sets fails falls back and says so.
 * -1 when --attribution write-sets cannot be had.
 */
static int
resolve_attribution(master_t *m)
{
    const cfg_t *cfg = m->cfg;
    char why[256];
    m->attr_why[0] = '\0';
    if (cfg->lazy || cfg->attribution == CFG_ATTR_OFF) {
        m->attr = SRV_ATTR_NONE;
        snprintf(m->attr_why, sizeof m->attr_why, "%s", cfg->lazy
                 ? "--lazy: no heap is shared" : "--attribution off");
        if (cfg->write_kinds) {
            fprintf(stderr, "cowlab: --write-kinds needs write sets: %s\n",
                    m->attr_why);
            return -1;
        }
        return 0;
    }
    if (cfg->attribution == CFG_ATTR_PAGEMAP) {
        m->attr = SRV_ATTR_PAGEMAP;
        snprintf(m->attr_why, sizeof m->attr_why, "--attribution pagemap");
    } else if (ms_wset_probe(why, sizeof why) == 0) {
        m->attr = SRV_ATTR_WSET;
    } else if (cfg->attribution == CFG_ATTR_WSET) {
        fprintf(stderr, "cowlab: --attribution write-sets: not available "
                "here: %s\n", why);
        return -1;
    } else {
        m->attr = SRV_ATTR_PAGEMAP;
        snprintf(m->attr_why, sizeof m->attr_why, "write sets unavailable: "
                 "%s", why);
    }
    if (cfg->write_kinds && m->attr != SRV_ATTR_WSET) {
        fprintf(stderr, "cowlab: --write-kinds needs write sets: %s\n",
                m->attr_why);
        return -1;
    }
    if (m->attr == SRV_ATTR_WSET)
        say(m, "copies attributed by exact write sets (userfaultfd "
            "write-protect, PAGEMAP_SCAN)%s", cfg->write_kinds ? ", by kind "
            "of write (--write-kinds: a diagnostic mode, slower)" : "");
    else
        say(m, "copies attributed by pagemap bracketing "
            "(--pagemap-gc-fraction %g): %s", cfg->pagemap_gc_fraction,
            m->attr_why);
    return 0;
}

int
srv_master_run(const cfg_t *cfg, const wl_spec_t *spec)
{
    master_t m;
    int rc = 1;
    memset(&m, 0, sizeof m);
    m.samples.fd = -1;
    m.cfg = cfg;
    m.spec = spec;
    cfg_policy_label(cfg, m.policy, sizeof m.policy);
    if (cfg->run_id) {
        snprintf(m.run_id, sizeof m.run_id, "%s", cfg->run_id);
    } else {
        time_t now = time(NULL);
        char ts[32];
        strftime(ts, sizeof ts, "%Y%m%d-%H%M%S", localtime(&now));
        snprintf(m.run_id, sizeof m.run_id, "%s-%d", ts, (int)getpid());
    }
    /* Output first: an unwritable --out is an error now, not mid-run. */
    if (cfg->out_dir) {
        int r = mkdir_p(cfg->out_dir);
        if (r < 0) {
            fprintf(stderr, "cowlab: --out %s: %s\n", cfg->out_dir,
                    strerror(-r));
            return 2;
        }
        char path[4096];
        r = ms_csv_open(&m.samples, out_path(&m, "samples.csv", path,
                                             sizeof path), &ms_samples_table);
        if (r < 0) {
            fprintf(stderr, "cowlab: --out %s: cannot write samples.csv: "
                    "%s\n", cfg->out_dir, strerror(-r));
            return 2;
        }
    }
    if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) < 0)
        return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (resolve_attribution(&m) < 0) {
        rc = 2;
        goto out;
    }
    if (!cfg->lazy && build_heap(&m) < 0)
        goto out;
    if (cfg->lazy)
        say(&m, "lazy: every worker builds its own heap after fork");
    m.listen_fds = malloc((size_t)cfg->workers * sizeof(int));
    if (m.listen_fds == NULL)
        goto out;
    int lr = srv_listen_tcp_group(cfg->host, cfg->port, 1024, cfg->workers,
                                  m.listen_fds, &m.port);
    if (lr < 0) {
        fprintf(stderr, "cowlab: cannot listen on %s:%d: %s\n", cfg->host,
                cfg->port, strerror(-lr));
        free(m.listen_fds);
        m.listen_fds = NULL;
        rc = 2;
        goto out;
    }
    printf("listening http://%s:%d\n", cfg->host, m.port);
    fflush(stdout);
    m.nprocs = (unsigned)cfg->workers * 2;
    /*
     * What the master writes after fork lives in pages of its own, never
     * malloc()ed ones: a malloc chunk can share a page with a large block
     * of the heap (its pages are heap pages), and the master's write
     * would leave the worker that page alone: a copy it never made.
     */
    m.nroutes = wl_spec_route_count(spec) + SRV_ROUTE_EXTRA;
    m.own_len = m.nprocs * sizeof(proc_t) + (size_t)cfg->workers
                * (m.nroutes * sizeof(srv_route_t) + sizeof *m.kind_sum + 1);
    void *own = mmap(NULL, m.own_len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (own != MAP_FAILED) {
        m.procs = own;
        m.route_sum = (srv_route_t *)(void *)(m.procs + m.nprocs);
        m.kind_sum = (void *)(m.route_sum + (size_t)cfg->workers
                                            * m.nroutes);
        m.route_wset = (unsigned char *)(m.kind_sum + cfg->workers);
    }
    if (m.procs == NULL
        || srv_slots_map(&m.slots, m.nprocs) < 0
        || srv_routes_map(&m.routes, m.nprocs, (unsigned)m.nroutes) < 0)
        goto out;
    if (cfg->out_dir && write_meta(&m) < 0)
        say(&m, "cannot write meta.json");
    m.t0_ns = clk_now_ns();
    for (int i = 0; i < cfg->workers; i++) {
        if (spawn(&m, (unsigned)i) < 0) {
            fprintf(stderr, "cowlab: fork: %s\n", strerror(errno));
            goto out;
        }
    }
    m.fork_ms = (double)(clk_now_ns() - m.t0_ns) / 1e6;
    say(&m, "policy %s: %d workers forked in %.1f ms", m.policy,
        cfg->workers, m.fork_ms);

    ms_sampler_init(&m.sampler, cfg->sample_ms, cfg->sample_budget_pct,
                    clk_now_ns());
    uint64_t end = cfg->duration_s > 0
        ? m.t0_ns + (uint64_t)(cfg->duration_s * 1e9) : 0;
    for (;;) {
        uint64_t now = clk_now_ns();
        if (m.stopping && live_workers(&m) == 0)
            break;
        if (m.stopping && now > m.stop_deadline_ns) {
            say(&m, "workers did not stop in time: SIGKILL");
            signal_workers(&m, SIGKILL);
            m.stop_deadline_ns = now + 5000000000u;
        }
        int timeout = ms_sampler_wait_ms(&m.sampler, now);
        if (m.stopping)             /* no sampling now: wait for children */
            timeout = 100;
        struct pollfd pfd = { sigpipe_fds[0], POLLIN, 0 };
        int r = poll(&pfd, 1, timeout);
        if (r > 0) {
            unsigned char buf[64];
            ssize_t k;
            while ((k = read(sigpipe_fds[0], buf, sizeof buf)) > 0) {
                /* Stop requests first: a worker that exited because the
                 * whole process group got SIGTERM must not be respawned. */
                for (ssize_t i = 0; i < k; i++) {
                    switch (buf[i]) {
                    case SIGTERM: begin_stop(&m, 0, "SIGTERM"); break;
                    case SIGINT: begin_stop(&m, 1, "SIGINT"); break;
                    case SIGQUIT: begin_stop(&m, 1, "SIGQUIT"); break;
                    case SIGHUP: if (!m.stopping) reload(&m); break;
                    }
                }
                reap(&m);
            }
        }
        reap(&m);
        now = clk_now_ns();
        if (!m.stopping) {
            check_timeouts(&m);
            if (ms_sampler_due(&m.sampler, now)) {
                /* The cost that matters is the master's CPU time: wall
                 * time would count the waits for busy cores too. */
                uint64_t cpu0 = clk_cpu_ns();
                sample(&m, 0);
                uint64_t after = clk_now_ns();
                double cost = (double)(clk_cpu_ns() - cpu0) / 1e6;
                unsigned was = ms_sampler_done(&m.sampler, cost, after);
                if (m.sampler.interval_ms != was)
                    say(&m, "sampling took %.1f ms of CPU: interval %u -> "
                        "%u ms (--sample-budget %g%% of a core)", cost, was,
                        m.sampler.interval_ms, cfg->sample_budget_pct);
            }
            if (end && now >= end)
                begin_stop(&m, 0, "--duration reached");
            else if (cfg->requests > 0
                     && total_requests(&m) >= (uint64_t)cfg->requests)
                begin_stop(&m, 0, "--requests reached");
        }
    }
    say(&m, "stopped: %llu requests, %u respawns",
        (unsigned long long)m.requests_done, m.respawns);
    if (cfg->out_dir)
        write_runs_row(&m);
    rc = 0;
    if (m.teardown_failed) {
        fprintf(stderr, "cowlab: %u worker teardown%s ran out of memory: "
                "their figures are missing\n", m.teardown_failed,
                m.teardown_failed == 1 ? "" : "s");
        rc = 1;
    }
out:
    ms_csv_close(&m.samples);
    for (int i = 0; m.listen_fds && i < cfg->workers; i++)
        close(m.listen_fds[i]);
    free(m.listen_fds);
    srv_slots_unmap(&m.slots);
    srv_routes_unmap(&m.routes);
    if (m.procs)
        munmap(m.procs, m.own_len);
    ps_snap_free(m.snap);
    /* Every worker is gone: the heap may be written again. */
    if (m.app)
        wl_app_free(m.app);
    if (m.heap)
        rt_heap_free(m.heap);
    return rc;
}
