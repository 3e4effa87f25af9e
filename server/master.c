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
 *
 * Fleet strategies (README "Fleet"): --ksm sets ksmd running for the run
 * and makes the master mergeable just before its first fork ("KSM");
 * --refork-after makes a warmed worker the mold that forks the next
 * workers ("Reforking"; the mold's side is refork.c); --max-copied-pct
 * and --reload-on-rss are the workers' own (worker.c, "Recycling").
 * Every sampling round also writes the whole app's row of totals.csv.
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

#include <math.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "census.h"
#include "clock.h"
#include "fileio.h"
#include "gc.h"
#include "heapsize.h"
#include "http.h"
#include "identical.h"
#include "ksm.h"
#include "mem.h"
#include "object.h"
#include "output.h"
#include "pagediff.h"
#include "procstat.h"
#include "refork.h"
#include "sampler.h"
#include "slots.h"
#include "wkinds.h"
#include "worker.h"
#include "wset.h"

enum { ROLE_WORKER, ROLE_BECOMING, ROLE_MOLD };

typedef struct proc {
    pid_t pid;                  /* 0: none (or pending) */
    int slot;
    unsigned index;
    int retiring;               /* replaced by SIGHUP or stopping */
    int stop_sent;              /* a mold: stopped once its workers were */
    uint64_t started_ns;
    ps_pagemap_t pm;
    /* last sample, for runs.csv */
    double last_shared_pct;
    long last_private_dirty_kb;
    int sampled;
    uint64_t smaps_ns;          /* when its smaps_rollup was last read */
    int64_t last_pss_kb;        /* its last smaps_rollup reading */
    /* fleet strategies */
    double last_identical;      /* NAN: not measured */
    size_t last_copied;         /* for --refork-select least-copied */
    int ctl;                    /* our end of its socketpair; -1: none */
    int pending;                /* asked of the mold; pid not known yet */
    int role;                   /* ROLE_* */
    unsigned gen;               /* copies count against gens[gen] */
    unsigned mold_gen;          /* a mold: the generation it forks */
    ps_range_t *ranges;         /* RF_RANGES received from a new mold */
    size_t nranges, cap;
} proc_t;

/* A snapshot that workers count their copies against: gens[0] is the
 * master's, gens[g] the g-th mold's. */
typedef struct gen {
    ps_snap_t *snap;            /* gens[0]: master_t.snap, not owned */
    pid_t ref;                  /* whose bytes are the reference: 0 the
                                   master; the mold's pid */
    int ref_alive;
    uint64_t *pfn;              /* the mold's frames at its snapshot, by
                                   snapshot page (root), or NULL */
} gen_t;

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
    /* fleet strategies */
    gen_t *gens;                /* gens[0]: the master's snapshot */
    unsigned ngens;
    unsigned refork_gen;        /* the newest mold's generation; 0: none */
    proc_t *mold;               /* the newest mold, or NULL */
    proc_t *becoming;           /* told RF_MOLD, not ready yet */
    int refork_failed;          /* stop trying after a failed mold */
    unsigned reforks, recycles;
    double cpu_exited_s;        /* CPU time of the reaped processes */
    ms_ksm_ctl_t ksm;           /* --ksm: the knobs held for the run */
    pid_t ksmd;
    double ksmd_cpu0, ksmd_cpu_last;
    long ksm_sharing_last;
    int kpf_fd;                 /* /proc/kpageflags, or -1 */
    ms_csv_t totals;            /* fd -1: no --out */
    uint8_t *bits, *ibits;      /* copied / identical bitmaps */
    size_t bits_cap;
    double final_ident_sum;
    unsigned final_ident_n;
    double last_cost_ms;
    pid_t orphans[16];          /* reaped before the mold said their pid */
    unsigned norphans;
    /* The collector at fork, and released-page bitmaps shared with the
     * workers (one per slot): see "Released pages" in procstat.h. */
    long fork_count[3];
    size_t fork_pending, fork_total;
    uint8_t *released;
    size_t released_bytes;
    double first_full_sum, final_released_sum, teardown_colls_sum;
    unsigned first_full_n;
    size_t build_bytes;         /* allocator bytes the build added */
    /* Designs (README "Designs"): what --warmup did, the memory each
     * design costs after the build, and the collector's side memory as
     * present at fork (NULL: none, or --lazy), which the workers' side
     * pages are counted against as the heap's are against snap. */
    rt_warmup_t warmup;
    rt_overhead_t overhead;
    ps_snap_t *side_snap;
    double final_rc_entries_sum, final_rc_bytes_sum;
    double final_side_sum, final_side_copied_sum;
    unsigned final_side_n;
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

/* path of an output file: --out/name */
static const char *
out_path(const master_t *m, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", m->cfg->out_dir, name);
    return buf;
}

/* meta.json's "designs": the modes, what --warmup did (null without
 * it) and the memory each design costs in the master after the build
 * (null with --lazy: no heap there). */
static json_t *
designs_json(const master_t *m)
{
    const cfg_t *cfg = m->cfg;
    const rt_warmup_t *w = &m->warmup;
    const rt_overhead_t *o = &m->overhead;
    json_t *wu = cfg->warmup && m->heap != NULL
        ? json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}",
                    "collected", (json_int_t)w->collected,
                    "promoted", (json_int_t)w->promoted,
                    "hashes", (json_int_t)w->hashes,
                    "pools_released", (json_int_t)w->pools_released,
                    "arenas_released", (json_int_t)w->arenas_released,
                    "pages_released", (json_int_t)w->pages_released,
                    "frozen", (json_int_t)w->frozen, "ms", w->ms)
        : json_null();
    json_t *ov = m->heap != NULL
        ? json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                    "gc_objects", (json_int_t)o->gc_objects,
                    "gc_inline_bytes", (json_int_t)o->gc_inline_bytes,
                    "gc_side_bytes", (json_int_t)o->gc_side_bytes,
                    "gc_side_pages", (json_int_t)o->gc_side_pages,
                    "rc_shared", (json_int_t)o->rc_shared,
                    "rc_table_entries", (json_int_t)o->rc_table_entries,
                    "rc_table_bytes", (json_int_t)o->rc_table_bytes)
        : json_null();
    return json_pack("{s:s, s:s, s:b, s:o*, s:o*, s:I}",
                     "gc_layout",
                     rt_gc_layout_name((rt_gc_layout_t)cfg->gc_layout),
                     "refcount",
                     rt_refcount_name((rt_refcount_t)cfg->refcount),
                     "warmup", cfg->warmup, "warmup_steps", wu,
                     "overhead", ov, "side_pages",
                     (json_int_t)ps_snap_pages(m->side_snap));
}

static int
write_meta(const master_t *m)
{
    char path[4096];
    const cfg_t *cfg = m->cfg;
    ms_meta_t meta = {
        .run_id = m->run_id, .policy = m->policy,
        .config = cfg_to_json(m->cfg), .workload = wl_spec_to_json(m->spec),
        .heap_pages = m->heap_pages, .heap_objects = m->heap_objects,
        .build_ms = m->build_ms, .attribution = srv_attr_name(m->attr),
        .attribution_why = m->attr_why[0] ? m->attr_why : NULL,
        .extra = json_pack(
            "{s:s, s:I, s:{s:[I,I,I], s:I, s:I}}",
            "python", m->cfg->python == 311 ? "3.11" : "3.12",
            "build_heap_bytes", (json_int_t)m->build_bytes,
            "gc_at_fork", "count", (json_int_t)m->fork_count[0],
            (json_int_t)m->fork_count[1], (json_int_t)m->fork_count[2],
            "long_lived_pending", (json_int_t)m->fork_pending,
            "long_lived_total", (json_int_t)m->fork_total),
    };
    if (meta.extra && m->heap != NULL)
        json_object_set_new(meta.extra, "heap_by_type",
                            ms_heap_by_type(m->heap));
    if (meta.extra)
        json_object_set_new(meta.extra, "designs", designs_json(m));
    /* the fleet strategies: what the master set, and how the costly
     * columns are sampled */
    if (meta.extra) {
        json_object_set_new(meta.extra, "identical_pages_sampling",
            json_string(cfg->identical_pages
                ? "every sampling round, its cost in the sampling budget "
                  "(sample_ms)" : "off"));
        json_object_set_new(meta.extra, "ksm", cfg->ksm
            ? json_pack("{s:s, s:i, s:i, s:{s:I, s:I, s:I}, s:b}",
                        "sysfs", m->ksm.dir,
                        "pages_to_scan", (int)cfg->ksm_pages_to_scan,
                        "sleep_millisecs", (int)cfg->ksm_sleep_ms,
                        "restored_at_end", "run",
                        (json_int_t)m->ksm.saved_run, "pages_to_scan",
                        (json_int_t)m->ksm.saved_pages,
                        "sleep_millisecs",
                        (json_int_t)m->ksm.saved_sleep,
                        "kpageflags", m->kpf_fd >= 0)
            : json_null());
    }
    int r = meta.config && meta.workload && meta.extra
        ? ms_meta_write(out_path(m, "meta.json", path, sizeof path), &meta)
        : -ENOMEM;
    json_decref(meta.config);
    json_decref(meta.workload);
    json_decref(meta.extra);
    return r;
}

/* A free entry of procs[] (no process, none pending), or NULL. */
static proc_t *
free_proc(master_t *m)
{
    for (unsigned i = 0; i < m->nprocs; i++)
        if (m->procs[i].pid == 0 && !m->procs[i].pending)
            return &m->procs[i];
    return NULL;
}

static void
proc_init(proc_t *p, int slot, unsigned index, unsigned gen)
{
    memset(p, 0, sizeof *p);
    p->slot = slot;
    p->index = index;
    p->gen = gen;
    p->pm.fd = -1;
    p->ctl = -1;
    p->last_identical = NAN;
}

/* Fork worker `index` from the master's pristine heap. */
static int
spawn_from_master(master_t *m, unsigned index)
{
    proc_t *p = free_proc(m);
    int slot = srv_slots_claim(&m->slots);
    int sv[2] = { -1, -1 };
    if (p == NULL || slot < 0) {
        srv_slots_release(&m->slots, slot);
        return -EAGAIN;
    }
    if (m->cfg->refork_after_n > 0 && srv_rf_pair(sv) < 0) {
        srv_slots_release(&m->slots, slot);
        return -errno;
    }
    srv_worker_args_t a = {
        .cfg = m->cfg, .heap = m->heap, .app = m->app, .spec = m->spec,
        .slot = &m->slots.slot[slot], .listen_fd = m->listen_fds[index],
        .index = index, .seed = (uint64_t)clk_now_ns() ^ (index * 0x9e37u),
        .master = getpid(), .snap = m->snap, .ctl_fd = sv[1],
        .generation = 0, .slots = m->slots.slot, .nslots = m->slots.n,
        .released = m->released ? m->released + (size_t)slot
                                  * m->released_bytes : NULL,
        .attribution = m->attr, .routes = srv_routes_of(&m->routes, slot),
        .routes_all = &m->routes,
    };
    memset(a.routes, 0, m->nroutes * sizeof(srv_route_t));
    if (a.released)
        memset(a.released, 0, m->released_bytes);
    /* --refcount split: the objects the child inherits are marked (the
     * first call, in build_heap(), wrote them; from then on they are only
     * read, so the master writes no heap page after its first fork). */
    if (m->heap != NULL && rt_before_fork(m->heap) < 0) {
        srv_slots_release(&m->slots, slot);
        if (sv[0] >= 0) {
            close(sv[0]);
            close(sv[1]);
        }
        return -ENOMEM;
    }
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
        int e = errno;
        srv_slots_release(&m->slots, slot);
        if (sv[0] >= 0) {
            close(sv[0]);
            close(sv[1]);
        }
        return -e;
    }
    if (pid == 0) {
        int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP };
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        close(sigpipe_fds[0]);
        close(sigpipe_fds[1]);
        ms_csv_drop(&m->samples);   /* the master's: never written here */
        ms_csv_drop(&m->totals);
        for (unsigned i = 0; i < m->nprocs; i++)    /* the master's ends */
            if (m->procs[i].ctl >= 0)
                close(m->procs[i].ctl);
        if (sv[0] >= 0)
            close(sv[0]);
        srv_worker_main(&a);
    }
    proc_init(p, slot, index, 0);
    p->pid = pid;
    p->started_ns = clk_now_ns();
    if (sv[0] >= 0) {
        close(sv[1]);
        p->ctl = sv[0];
        fcntl(p->ctl, F_SETFL, O_NONBLOCK);
    }
    if (ps_pagemap_open(&p->pm, pid) < 0)
        p->pm.fd = -1;
    return 0;
}

/* Ask the newest mold to fork worker `index`: the entry stays pending
 * until its RF_FORKED names the pid. */
static int
spawn_from_mold(master_t *m, unsigned index)
{
    proc_t *p = free_proc(m);
    int slot = srv_slots_claim(&m->slots);
    int sv[2];
    if (p == NULL || slot < 0) {
        srv_slots_release(&m->slots, slot);
        return -EAGAIN;
    }
    int r = srv_rf_pair(sv);
    if (r < 0) {
        srv_slots_release(&m->slots, slot);
        return r;
    }
    memset(srv_routes_of(&m->routes, slot), 0,
           m->nroutes * sizeof(srv_route_t));
    srv_rf_msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = RF_FORK;
    msg.index = index;
    msg.slot = slot;
    msg.seed = (uint64_t)clk_now_ns() ^ (index * 0x9e37u);
    int fds[2] = { m->listen_fds[index], sv[1] };
    r = srv_rf_send(m->mold->ctl, &msg, fds, 2);
    close(sv[1]);
    if (r < 0) {
        close(sv[0]);
        srv_slots_release(&m->slots, slot);
        return r;
    }
    proc_init(p, slot, index, m->refork_gen);
    p->pending = 1;
    p->ctl = sv[0];
    fcntl(p->ctl, F_SETFL, O_NONBLOCK);
    return 0;
}

/* A new worker: from the newest mold if there is one, else the master. */
static int
spawn(master_t *m, unsigned index)
{
    if (m->mold != NULL && m->mold->ctl >= 0 && !m->stopping)
        return spawn_from_mold(m, index);
    return spawn_from_master(m, index);
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

/* Bitmaps for the largest snapshot (copied and identical pages). */
static int
bits_for(master_t *m, const ps_snap_t *snap)
{
    size_t need = ps_snap_total_pages(snap) / 8 + 1;
    if (need <= m->bits_cap)
        return 0;
    uint8_t *a = realloc(m->bits, need), *b;
    if (a == NULL)
        return -ENOMEM;
    m->bits = a;
    b = realloc(m->ibits, need);
    if (b == NULL)
        return -ENOMEM;
    m->ibits = b;
    m->bits_cap = need;
    return 0;
}

static double
ticks_s(long ticks)
{
    long tck = sysconf(_SC_CLK_TCK);
    return (double)ticks / (double)(tck > 0 ? tck : 100);
}

/* The mold's frames at its snapshot, to check later that it wrote
 * nothing (root only: without CAP_SYS_ADMIN the frames read as 0). */
typedef struct {
    uint64_t *pfn;
    size_t moved;
    int record;
} frames_t;

static void
on_frame(void *arg, size_t index, uintptr_t vaddr, uint64_t entry)
{
    frames_t *f = arg;
    uint64_t pfn = entry & PS_PM_PRESENT ? entry & PS_PM_PFN_MASK : 0;
    (void)vaddr;
    if (f->record)
        f->pfn[index] = pfn;
    else if (pfn != f->pfn[index])
        f->moved++;
}

/*
 * One sampling round: a samples.csv row per serving worker and mold, and
 * a totals.csv row for the whole app.  With --identical-pages the copied
 * pages of every worker are compared with the reference's (identical.h):
 * that cost is part of the round's, so the sampling budget covers it.
 */
static void
sample(master_t *m, int final)
{
    uint64_t t = clk_now_ns();
    double t_ms = (double)(t - m->t0_ns) / 1e6;
    const cfg_t *cfg = m->cfg;
    ms_total_t tot = {
        .run_id = m->run_id, .policy = m->policy, .t_ms = t_ms,
        .t_mono_s = (double)t / 1e9,
        .heap_identical_pages = cfg->identical_pages ? 0 : MS_UNSET,
        .heap_ksm_pages = cfg->ksm && m->kpf_fd >= 0 ? 0 : MS_UNSET,
        .ksm_pages_sharing = MS_UNSET, .ksm_pages_shared = MS_UNSET,
        .ksmd_cpu_s = MS_UNSET, .respawns = m->respawns,
        .recycles = m->recycles, .reforks = m->reforks,
        .refork_generation = m->refork_gen,
        .sample_ms = m->sampler.interval_ms,
        .sample_cost_ms = m->last_cost_ms,
    };
    double cpu_live = 0;
    for (unsigned i = 0; i < m->nprocs; i++) {
        proc_t *p = &m->procs[i];
        if (p->pid == 0 || p->retiring || p->role == ROLE_BECOMING)
            continue;
        srv_slot_t *s = &m->slots.slot[p->slot];
        int state = atomic_load(&s->state);
        if (state < SLOT_SERVING)
            continue;               /* still building (lazy) */
        if (state > SLOT_SERVING && state != SLOT_MOLD && !final)
            continue;               /* stopping or done: its teardown is
                                       not the time series' */
        const gen_t *g = m->gens ? &m->gens[p->gen] : NULL;
        const ps_snap_t *snap = g ? g->snap : NULL;
        size_t heap_pages = ps_snap_pages(snap);
        ps_smaps_t sm;
        ps_stat_t st;
        size_t copied = 0, released = 0;
        const uint8_t *rel = m->released ? m->released + (size_t)p->slot
                                           * m->released_bytes : NULL;
        /* smaps_rollup walks every page (PSS): the costliest read by far
         * (about 10 ms per GiB), so at most every --smaps-ms; the rows in
         * between leave its columns empty (totals.csv carries the last
         * reading forward).  The final row has it. */
        uint64_t every = (uint64_t)m->cfg->smaps_ms * 1000000u;
        int smaps = final || every == 0 || p->smaps_ns == 0
                    || t - p->smaps_ns >= every;
        if ((smaps && ps_read_smaps_rollup(p->pid, &sm) < 0)
            || ps_read_stat(p->pid, &st) < 0)
            continue;               /* it just died: SIGCHLD will tell */
        if (smaps) {
            p->smaps_ns = t;
            p->last_pss_kb = sm.pss_kb;
        }
        int want_ident = cfg->identical_pages && g && g->ref_alive
                         && p->role == ROLE_WORKER
                         && bits_for(m, snap) == 0;
        /* Released pages (procstat.h) are tracked for the master's own
         * workers: a mold's children count against another snapshot. */
        if (p->gen != 0 || p->role != ROLE_WORKER)
            rel = NULL;
        /* A worker with write sets counts its own copies, released pages
         * left out as below (its write sets drop them): no pagemap read
         * here, unless --identical-pages needs the copied pages' list or
         * --ksm may merge copies back (shared again: write sets cannot
         * see that, the pagemap can). */
        int attr = atomic_load(&s->attribution);
        if (attr == SRV_ATTR_WSET && p->role == ROLE_WORKER && !want_ident
            && !cfg->ksm) {
            copied = (size_t)atomic_load(&s->copied_measured);
            released = rel != NULL ? (size_t)atomic_load(&s->wset_released)
                                   : 0;
        } else if (snap && p->pm.fd >= 0) {
            int rc = rel != NULL
                ? ps_count_copied_excl(snap, &p->pm, rel, &copied, &released)
                : ps_copied_bitmap_fd(snap, &p->pm,
                                      want_ident ? m->bits : NULL, &copied);
            if (rc == 0 && rel != NULL && want_ident) {
                size_t all, nb = (ps_snap_total_pages(snap) + 7) / 8;
                rc = ps_copied_bitmap_fd(snap, &p->pm, m->bits, &all);
                for (size_t k = 0; k < nb && k < m->released_bytes; k++)
                    m->bits[k] &= (uint8_t)~rel[k];
            }
            if (rc < 0)
                continue;
        }
        /* The collector's side memory, frame by frame as the heap: the
         * master's own workers only (a mold's sends no side ranges). */
        uint64_t side_pages = MS_U64_UNSET, side_copied = MS_U64_UNSET;
        if (p->gen == 0 && p->role == ROLE_WORKER && m->gens != NULL) {
            size_t sc = 0;
            side_pages = ps_snap_pages(m->side_snap);
            if (m->side_snap == NULL)
                side_copied = 0;
            else if (p->pm.fd >= 0
                     && ps_count_copied_fd(m->side_snap, &p->pm, &sc) == 0)
                side_copied = sc;
        }
        uint64_t rc_entries = atomic_load(&s->rc_table_entries);
        uint64_t rc_bytes = atomic_load(&s->rc_table_bytes);
        double identical = MS_UNSET;
        size_t ni;
        if (want_ident && ms_identical_count(snap, m->bits, p->pid, g->ref,
                                             NULL, &ni) == 0)
            identical = (double)ni;
        double merging = MS_UNSET, ksm_pages = MS_UNSET, moved = MS_UNSET;
        ms_ksm_stat_t ks;
        size_t nk;
        if (cfg->ksm && ms_ksm_read_stat(p->pid, &ks) == 0)
            merging = (double)ks.merging_pages;
        if (cfg->ksm && m->kpf_fd >= 0 && snap && p->pm.fd >= 0
            && ms_ksm_count_pages(snap, &p->pm, m->kpf_fd, &nk) == 0)
            ksm_pages = (double)nk;
        /* Frames against a mold's (reforking, as root): a mold's own
         * must not move; its workers' move exactly where they copied. */
        const gen_t *fg = p->role == ROLE_MOLD ? &m->gens[p->mold_gen] : g;
        if (fg != NULL && fg->pfn != NULL && p->pm.fd >= 0) {
            frames_t f = { fg->pfn, 0, 0 };
            if (ps_snap_each_entry(fg->snap, &p->pm, on_frame, &f) == 0)
                moved = (double)f.moved;
        }
        /* Released pages are neither shared nor copied. */
        double shared_pct = heap_pages
            ? 100.0 * (1.0 - (double)(copied + released)
                             / (double)heap_pages) : 0.0;
        uint64_t fgc = atomic_load(&s->faults_gc);
        uint64_t freq = atomic_load(&s->faults_request);
        uint64_t fsam = atomic_load(&s->faults_sampling);
        long other = st.minflt - (long)fgc - (long)freq - (long)fsam;
        cpu_live += ticks_s(st.utime_ticks + st.stime_ticks);
        tot.workers_pss_kb += p->last_pss_kb;
        if (p->role == ROLE_MOLD) {
            tot.molds++;
        } else {
            tot.workers++;
            tot.heap_copied_pages += copied;
            if (!isnan(tot.heap_identical_pages) && !isnan(identical))
                tot.heap_identical_pages += identical;
            if (!isnan(tot.heap_ksm_pages) && !isnan(ksm_pages))
                tot.heap_ksm_pages += ksm_pages;
            p->last_shared_pct = shared_pct;
            if (smaps)
                p->last_private_dirty_kb = sm.private_dirty_kb;
            p->last_copied = copied;
            p->last_identical = identical;
            p->sampled = 1;
            if (final) {
                m->final_shared_sum += shared_pct;
                m->final_pd_sum += (double)sm.private_dirty_kb;
                m->final_released_sum += (double)released;
                m->final_n++;
                if (!isnan(identical)) {
                    m->final_ident_sum += identical;
                    m->final_ident_n++;
                }
                m->final_rc_entries_sum += (double)rc_entries;
                m->final_rc_bytes_sum += (double)rc_bytes;
                if (side_copied != MS_U64_UNSET) {
                    m->final_side_sum += (double)side_pages;
                    m->final_side_copied_sum += (double)side_copied;
                    m->final_side_n++;
                }
                uint64_t ff = atomic_load(&s->first_full_gc_request);
                if (ff) {
                    m->first_full_sum += (double)ff;
                    m->first_full_n++;
                }
            }
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
            .heap_pages = heap_pages, .heap_copied_pages = copied,
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
            .role = p->role == ROLE_MOLD ? "mold" : "worker",
            .refork_generation = p->gen,
            .heap_identical_pages = identical,
            .ksm_merging_pages = merging, .heap_ksm_pages = ksm_pages,
            .heap_moved_pages = moved,
            .copied_by_master = MS_U64_UNSET,   /* cowlab attach's */
            .heap_new_pages = MS_U64_UNSET,
            .heap_shared_pages = MS_U64_UNSET,
            .heap_released_pages = rel != NULL || (p->gen == 0
                                   && p->role == ROLE_WORKER)
                                   ? released : MS_U64_UNSET,
            .attribution = srv_attr_name(attr),
            .written_pages = atomic_load(&s->written_pages),
            .written_requests = atomic_load(&s->written_requests),
            .wset_scans = atomic_load(&s->wset_scans),
            .wset_skipped = atomic_load(&s->wset_skipped),
            .wset_ms = (double)atomic_load(&s->wset_busy_us) / 1e3,
            .faults_sampling = fsam,
            .side_pages = side_copied != MS_U64_UNSET ? side_pages
                                                      : MS_U64_UNSET,
            .side_copied_pages = side_copied,
            .rc_table_entries = rc_entries, .rc_table_bytes = rc_bytes,
        };
        ms_csv_add(&m->samples, &row);
    }
    /* The whole app: the master's own share, the kernel's KSM counters. */
    ps_smaps_t self;
    if (ps_read_smaps_rollup(0, &self) == 0)
        tot.master_pss_kb = self.pss_kb;
    tot.total_pss_kb = tot.master_pss_kb + tot.workers_pss_kb;
    tot.requests = total_requests(m);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    tot.cpu_s = m->cpu_exited_s + cpu_live
                + (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
                + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    if (cfg->ksm) {
        ms_ksm_sys_t ks;
        double c;
        if (ms_ksm_read_sys(NULL, &ks) == 0) {
            tot.ksm_pages_sharing = (double)ks.pages_sharing;
            tot.ksm_pages_shared = (double)ks.pages_shared;
            m->ksm_sharing_last = ks.pages_sharing;
        }
        if (ms_ksmd_cpu_s(m->ksmd, &c) == 0) {
            m->ksmd_cpu_last = c - m->ksmd_cpu0;
            tot.ksmd_cpu_s = m->ksmd_cpu_last;
        }
    }
    if (m->totals.fd >= 0)
        ms_csv_add(&m->totals, &tot);
    /* The whole round in one write(): a killed master leaves whole rows. */
    int r = m->samples.fd >= 0 ? ms_csv_flush(&m->samples) : 0;
    int r2 = m->totals.fd >= 0 ? ms_csv_flush(&m->totals) : 0;
    if ((r < 0 || r2 < 0) && !m->samples_failed) {
        m->samples_failed = 1;
        say(m, "cannot write samples.csv or totals.csv: %s",
            strerror(r < 0 ? -r : -r2));
    }
}

/* The entry of a process gone: its fleet state, then the entry itself. */
static void
proc_clear(master_t *m, proc_t *p)
{
    if (p->ctl >= 0)
        close(p->ctl);
    p->ctl = -1;
    free(p->ranges);
    p->ranges = NULL;
    p->nranges = p->cap = 0;
    if (p == m->becoming)
        m->becoming = NULL;
    if (p->role == ROLE_MOLD) {
        m->gens[p->mold_gen].ref_alive = 0;
        if (p == m->mold) {
            /* Whatever it was asked to fork will not come: fork those
             * from the master, and the next ones too. */
            m->mold = NULL;
            for (unsigned i = 0; i < m->nprocs; i++) {
                proc_t *q = &m->procs[i];
                if (!q->pending)
                    continue;
                unsigned index = q->index;
                close(q->ctl);
                srv_slots_release(&m->slots, q->slot);
                q->pending = 0;
                q->ctl = -1;
                if (!m->stopping && spawn(m, index) < 0)
                    say(m, "could not respawn worker %u", index);
            }
        }
    }
    ps_pagemap_close(&p->pm);
    srv_slots_release(&m->slots, p->slot);
    p->pid = 0;
    p->pending = 0;
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
    struct rusage ru;
    while ((pid = wait4(-1, &status, WNOHANG, &ru)) > 0) {
        m->cpu_exited_s += (double)ru.ru_utime.tv_sec
                           + ru.ru_utime.tv_usec / 1e6
                           + (double)ru.ru_stime.tv_sec
                           + ru.ru_stime.tv_usec / 1e6;
        proc_t *p = find_proc(m, pid);
        if (p == NULL) {
            /* A mold's worker that died before its RF_FORKED came in. */
            m->orphans[m->norphans++ % 16] = pid;
            continue;
        }
        srv_slot_t *s = &m->slots.slot[p->slot];
        m->requests_done += atomic_load(&s->requests);
        m->responses_4xx_done += atomic_load(&s->responses_4xx);
        m->responses_5xx_done += atomic_load(&s->responses_5xx);
        collect_routes(m, p);
        int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0
                    && atomic_load(&s->state) == SLOT_DONE;
        if (m->stopping && clean && p->role == ROLE_WORKER) {
            m->teardown_ms_sum += (double)atomic_load(&s->teardown_us) / 1e3;
            m->faults_teardown_sum += (double)atomic_load(&s->faults_teardown);
            m->copied_teardown_sum +=
                (double)atomic_load(&s->copied_by_teardown);
            m->teardown_colls_sum +=
                (double)atomic_load(&s->teardown_collections);
            m->teardown_n++;
        }
        unsigned index = p->index;
        int retiring = p->retiring || p->role == ROLE_MOLD;
        if (WIFEXITED(status)
            && WEXITSTATUS(status) == SRV_EXIT_TEARDOWN_FAILED)
            m->teardown_failed++;   /* it said why; the run fails */
        proc_clear(m, p);
        if (!clean && !m->stopping) {
            if (WIFSIGNALED(status))
                say(m, "worker %u (pid %d) killed by signal %d", index,
                    (int)pid, WTERMSIG(status));
            else
                say(m, "worker %u (pid %d) exited with status %d", index,
                    (int)pid, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        }
        if (!m->stopping && !retiring) {
            if (spawn(m, index) == 0) {
                m->respawns++;
                if (clean)
                    m->recycles++;  /* a recycling limit, not a death */
            } else {
                say(m, "could not respawn worker %u", index);
            }
        }
    }
}

/* ---- Reforking --------------------------------------------------------
 *
 * --refork-after N[,N2,...]: once a worker of the newest generation has
 * served N requests (generation g uses the g-th value; the last one
 * repeats, as Pitchfork's refork_after), the master tells it RF_MOLD.  It
 * drains, applies the pre-fork policy, snapshots its heap and sends the
 * ranges (refork.c).  The master then snapshots the mold's pagemap over
 * them (generation g + 1: its children count their copies against it),
 * asks the mold for one new worker per index (its own included) and
 * retires the older workers, like a SIGHUP reload; the previous mold is
 * told RF_EXIT.  Respawns after that come from the newest mold too.
 * --refork-select first takes the worker that reached N first (Pitchfork);
 * least-copied waits until every worker of the generation has reached N
 * and takes the one with the fewest copied pages at its last sample.
 */

static void
refork_check(master_t *m)
{
    const cfg_t *cfg = m->cfg;
    if (cfg->refork_after_n == 0 || m->becoming || m->refork_failed
        || m->gens == NULL)
        return;
    unsigned k = m->refork_gen < (unsigned)cfg->refork_after_n
                 ? m->refork_gen : (unsigned)cfg->refork_after_n - 1;
    uint64_t need = (uint64_t)cfg->refork_after[k];
    proc_t *pick = NULL;
    uint64_t best = 0;
    for (unsigned i = 0; i < m->nprocs; i++) {
        proc_t *p = &m->procs[i];
        if (p->pid == 0 || p->retiring || p->role != ROLE_WORKER
            || p->gen != m->refork_gen
            || atomic_load(&m->slots.slot[p->slot].state) != SLOT_SERVING)
            continue;
        uint64_t n = atomic_load(&m->slots.slot[p->slot].requests);
        if (cfg->refork_select == CFG_REFORK_FIRST) {
            if (n >= need && (pick == NULL || n > best)) {
                pick = p;
                best = n;
            }
        } else {
            if (n < need || !p->sampled)
                return;             /* wait for every worker to reach N */
            if (pick == NULL || p->last_copied < best) {
                pick = p;
                best = p->last_copied;
            }
        }
    }
    if (pick == NULL || pick->ctl < 0)
        return;
    srv_rf_msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = RF_MOLD;
    msg.generation = m->refork_gen + 1;
    if (srv_rf_send(pick->ctl, &msg, NULL, 0) < 0)
        return;
    pick->role = ROLE_BECOMING;
    m->becoming = pick;
    say(m, "refork: worker %u (pid %d, %llu requests, %zu pages copied) "
        "becomes mold %u", pick->index, (int)pick->pid,
        (unsigned long long)atomic_load(&m->slots.slot[pick->slot].requests),
        pick->last_copied, msg.generation);
}

/* The new mold sent all its ranges: snapshot it, fork the next workers
 * from it, retire the others. */
static void
mold_ready(master_t *m, proc_t *p)
{
    ps_snap_t *snap = NULL;
    gen_t *g = realloc(m->gens, (m->ngens + 1) * sizeof *g);
    int r = g == NULL ? -ENOMEM
            : ps_snap_take(&snap, p->pid, p->ranges, p->nranges);
    if (g != NULL)
        m->gens = g;
    if (r < 0) {
        say(m, "refork: cannot snapshot the mold (pid %d): %s; no more "
            "reforks", (int)p->pid, strerror(-r));
        m->refork_failed = 1;
        m->becoming = NULL;
        kill(p->pid, SIGKILL);      /* respawned as a plain worker */
        return;
    }
    unsigned gi = m->ngens++;
    g = &m->gens[gi];
    memset(g, 0, sizeof *g);
    g->snap = snap;
    g->ref = p->pid;
    g->ref_alive = 1;
    /* Its frames now, to check later that it writes nothing (root). */
    g->pfn = calloc(ps_snap_total_pages(snap) + 1, sizeof *g->pfn);
    if (g->pfn != NULL && p->pm.fd >= 0) {
        frames_t f = { g->pfn, 0, 1 };
        size_t nz = 0;
        if (ps_snap_each_entry(snap, &p->pm, on_frame, &f) < 0)
            nz = 0;
        else
            for (size_t i = 0; i < ps_snap_total_pages(snap); i++)
                nz += g->pfn[i] != 0;
        if (nz == 0) {              /* not root: frames hidden */
            free(g->pfn);
            g->pfn = NULL;
        }
    }
    proc_t *prev = m->mold;
    p->role = ROLE_MOLD;
    p->mold_gen = gi;
    m->mold = p;
    m->becoming = NULL;
    m->refork_gen = gi;
    m->reforks++;
    say(m, "refork: mold %u ready (pid %d, %zu heap pages); replacing the "
        "workers", gi, (int)p->pid, ps_snap_pages(snap));
    unsigned n = m->nprocs;
    for (unsigned i = 0; i < n; i++) {
        proc_t *q = &m->procs[i];
        if (q == p || q->pid == 0 || q->retiring || q->role != ROLE_WORKER)
            continue;
        q->retiring = 1;
        if (spawn_from_mold(m, q->index) < 0) {
            q->retiring = 0;
            say(m, "refork: could not fork a replacement from the mold");
            continue;
        }
        kill(q->pid, SIGTERM);
    }
    if (spawn_from_mold(m, p->index) < 0)
        say(m, "refork: could not fork worker %u from the mold", p->index);
    if (prev != NULL && prev->pid != 0) {
        srv_rf_msg_t msg;
        memset(&msg, 0, sizeof msg);
        msg.type = RF_EXIT;
        prev->retiring = 1;
        if (prev->ctl < 0 || srv_rf_send(prev->ctl, &msg, NULL, 0) < 0)
            kill(prev->pid, SIGTERM);
    }
}

/* RF_FORKED: the pending entry of that slot gets its process. */
static void
mold_forked(master_t *m, const srv_rf_msg_t *msg)
{
    proc_t *p = NULL;
    for (unsigned i = 0; i < m->nprocs && p == NULL; i++)
        if (m->procs[i].pending && m->procs[i].slot == msg->slot)
            p = &m->procs[i];
    if (p == NULL)
        return;
    unsigned index = p->index;
    int dead = msg->pid <= 0;
    for (unsigned i = 0; !dead && i < 16 && i < m->norphans; i++)
        if (m->orphans[i] == msg->pid) {
            m->orphans[i] = 0;
            dead = 1;               /* reaped already */
        }
    if (dead) {
        if (msg->pid < 0)
            say(m, "refork: the mold could not fork worker %u: %s", index,
                strerror(-msg->pid));
        close(p->ctl);
        p->ctl = -1;
        srv_slots_release(&m->slots, p->slot);
        p->pending = 0;
        if (!m->stopping && spawn_from_master(m, index) == 0)
            m->respawns++;
        return;
    }
    p->pending = 0;
    p->pid = msg->pid;
    p->started_ns = clk_now_ns();
    if (ps_pagemap_open(&p->pm, p->pid) < 0)
        p->pm.fd = -1;
    if (m->stopping)
        kill(p->pid, m->stopping > 1 ? SIGQUIT : SIGTERM);
}

/* Messages from a worker or mold, until none is waiting. */
static void
handle_ctl(master_t *m, proc_t *p)
{
    for (;;) {
        srv_rf_msg_t msg;
        int fds[2];
        int r = srv_rf_recv(p->ctl, &msg, fds);
        for (int i = 0; r > 0 && i < 2; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        if (r == -EAGAIN)
            return;
        if (r <= 0) {               /* it exited (or broke the protocol) */
            close(p->ctl);
            p->ctl = -1;
            return;
        }
        switch (msg.type) {
        case RF_RANGES:
            if (p->role != ROLE_BECOMING || msg.nranges > RF_RANGES_MAX)
                break;
            if (p->nranges + msg.nranges > p->cap) {
                size_t cap = 2 * (p->nranges + msg.nranges);
                ps_range_t *t = realloc(p->ranges, cap * sizeof *t);
                if (t == NULL)
                    break;
                p->ranges = t;
                p->cap = cap;
            }
            memcpy(p->ranges + p->nranges, msg.ranges,
                   msg.nranges * sizeof *msg.ranges);
            p->nranges += msg.nranges;
            break;
        case RF_READY:
            if (p->role != ROLE_BECOMING)
                break;
            if (msg.nranges != p->nranges) {
                say(m, "refork: the mold sent %zu of %u ranges", p->nranges,
                    msg.nranges);
                m->refork_failed = 1;
                m->becoming = NULL;
                kill(p->pid, SIGKILL);
                break;
            }
            mold_ready(m, p);
            break;
        case RF_FORKED:
            mold_forked(m, &msg);
            break;
        default:
            break;
        }
    }
}

/* A stop signal goes to the workers; a mold is stopped only once no
 * worker is left (stop_molds): its workers' pages are shared with it, and
 * were it gone first, a worker's exit self-check would see them as its
 * own (exclusive) without a write.  SIGKILL goes to every process. */
static void
signal_workers(master_t *m, int sig)
{
    for (unsigned i = 0; i < m->nprocs; i++)
        if (m->procs[i].pid
            && (sig == SIGKILL || m->procs[i].role != ROLE_MOLD))
            kill(m->procs[i].pid, sig);
}

/* Stopping, every worker gone: the molds now. */
static void
stop_molds(master_t *m)
{
    for (unsigned i = 0; i < m->nprocs; i++) {
        proc_t *p = &m->procs[i];
        if (p->pid != 0 && p->role != ROLE_MOLD)
            return;
    }
    for (unsigned i = 0; i < m->nprocs; i++) {
        proc_t *p = &m->procs[i];
        if (p->pid != 0 && p->role == ROLE_MOLD && !p->stop_sent) {
            kill(p->pid, SIGTERM);
            p->stop_sent = 1;
        }
    }
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
        /* the master's heap: only for the master's own children */
        if (p->pid && !p->retiring && p->pm.fd >= 0 && p->gen == 0
            && p->role == ROLE_WORKER)
            ms_census_add(c, &w, &row, &p->pm,     /* fails if it died */
                          m->cfg->identical_pages ? p->pid : 0);
    }
    if (r == 0)
        r = ms_csv_close(&w);
    if (r < 0)
        say(m, "type census: cannot write types.csv: %s", strerror(-r));
    say(m, "type census: %zu objects in %.0f ms", ms_census_objects(c),
        (double)(clk_now_ns() - t0) / 1e6);
    ms_census_free(c);
}

/* --identical-diff: diffs.csv rows for every live worker of the
 * master's, at the end (pagediff.h). */
static void
identical_diff(master_t *m)
{
    if (!m->cfg->identical_diff || m->heap == NULL || m->snap == NULL
        || m->cfg->out_dir == NULL || bits_for(m, m->snap) < 0)
        return;
    ms_pagediff_t *d = NULL;
    ms_csv_t w;
    char path[4096];
    uint64_t t0 = clk_now_ns();
    if (ms_pagediff_build(&d, m->heap, m->snap) < 0) {
        say(m, "identical diff: out of memory");
        return;
    }
    int r = ms_csv_open(&w, out_path(m, "diffs.csv", path, sizeof path),
                        &ms_diffs_table);
    for (unsigned i = 0; r == 0 && i < m->nprocs; i++) {
        proc_t *p = &m->procs[i];
        size_t copied, ident;
        if (p->pid == 0 || p->retiring || p->pm.fd < 0 || p->gen != 0
            || p->role != ROLE_WORKER
            || ps_copied_bitmap_fd(m->snap, &p->pm, m->bits, &copied) < 0
            || ms_identical_count(m->snap, m->bits, p->pid, 0, m->ibits,
                                  &ident) < 0)
            continue;
        ms_diff_row_t row = { .run_id = m->run_id, .policy = m->policy,
                              .worker = p->index, .pid = p->pid };
        ms_pagediff_add(d, &w, &row, p->pid, m->bits, m->ibits);
    }
    if (r == 0)
        r = ms_csv_close(&w);
    if (r < 0)
        say(m, "identical diff: cannot write diffs.csv: %s", strerror(-r));
    say(m, "identical diff: done in %.0f ms",
        (double)(clk_now_ns() - t0) / 1e6);
    ms_pagediff_free(d);
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
        identical_diff(m);
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
        if (p->pid == 0 || p->retiring || p->role != ROLE_WORKER)
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

/* The collector's permanent memory as it costs: in the objects, and the
 * side memory's resident pages (not the chunks it is mapped in). */
static double
gc_bytes(const rt_overhead_t *o)
{
    return (double)o->gc_inline_bytes
           + (double)o->gc_side_pages * (double)sysconf(_SC_PAGESIZE);
}

/* runs.csv's designs columns: the modes, what --warmup did, the memory
 * each design costs (the master's after the build; the workers' tables
 * and side pages at their last sample). */
static void
design_columns(const master_t *m, ms_run_t *row)
{
    const cfg_t *cfg = m->cfg;
    const rt_warmup_t *w = &m->warmup;
    const rt_overhead_t *o = &m->overhead;
    int built = m->heap != NULL;
    row->gc_layout = rt_gc_layout_name((rt_gc_layout_t)cfg->gc_layout);
    row->refcount = rt_refcount_name((rt_refcount_t)cfg->refcount);
    row->warmup = (uint64_t)cfg->warmup;
    int wu = cfg->warmup && built;
    row->warmup_collected = wu ? (double)w->collected : MS_UNSET;
    row->warmup_promoted = wu ? (double)w->promoted : MS_UNSET;
    row->warmup_hashes = wu ? (double)w->hashes : MS_UNSET;
    row->warmup_pages_released = wu ? (double)w->pages_released : MS_UNSET;
    row->warmup_frozen = wu ? (double)w->frozen : MS_UNSET;
    row->warmup_ms = wu ? w->ms : MS_UNSET;
    row->gc_inline_bytes = built ? (double)o->gc_inline_bytes : MS_UNSET;
    row->gc_side_bytes = built ? (double)o->gc_side_bytes : MS_UNSET;
    row->gc_side_pages = built ? (double)o->gc_side_pages : MS_UNSET;
    row->gc_objects = built ? (double)o->gc_objects : MS_UNSET;
    row->gc_bytes_per_object = built && o->gc_objects
        ? gc_bytes(o) / (double)o->gc_objects : MS_UNSET;
    row->rc_table_entries = m->final_n
        ? m->final_rc_entries_sum / m->final_n : MS_UNSET;
    row->rc_table_bytes = m->final_n
        ? m->final_rc_bytes_sum / m->final_n : MS_UNSET;
    row->side_pages = m->final_side_n
        ? m->final_side_sum / m->final_side_n : MS_UNSET;
    row->side_copied_pages = m->final_side_n
        ? m->final_side_copied_sum / m->final_side_n : MS_UNSET;
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
        .refork_generation = m->refork_gen, .reforks = m->reforks,
        .recycles = m->recycles, .ksm = (uint64_t)cfg->ksm,
        .ksmd_cpu_s = cfg->ksm && m->ksmd > 0 ? m->ksmd_cpu_last : MS_UNSET,
        .ksm_pages_sharing = cfg->ksm ? (double)m->ksm_sharing_last
                                      : MS_UNSET,
        .heap_identical_pages = m->final_ident_n
            ? m->final_ident_sum / m->final_ident_n : MS_UNSET,
        .copied_by_master = MS_UNSET,           /* cowlab attach's */
        .python = cfg->python == 311 ? "3.11" : "3.12",
        .prefork_gc = cfg->prefork_gc == CFG_PREFORK_COLLECTED ? "collected"
                                                               : "import",
        .fork_gc_count = { m->fork_count[0], m->fork_count[1],
                           m->fork_count[2] },
        .fork_long_lived_pending = m->fork_pending,
        .fork_long_lived_total = m->fork_total,
        .first_full_gc_request = m->first_full_n
            ? m->first_full_sum / m->first_full_n : MS_UNSET,
        .workers_full_gc = m->first_full_n,
        .teardown_collections = MS_UNSET,
        .heap_released_pages = m->final_n
            ? m->final_released_sum / m->final_n : 0.0,
    };
    design_columns(m, &row);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    row.cpu_s = m->cpu_exited_s
                + (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
                + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
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
        row.teardown_collections = m->teardown_colls_sum / m->teardown_n;
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

/* Snapshot the ranges fn gives (mem_ranges, mem_side_ranges); with none,
 * *snap = NULL. */
static int
snapshot_of(ps_snap_t **snap, long (*fn)(mem_range_t *, size_t),
            int empty_null)
{
    mem_range_t *r = NULL;
    long n = fn(NULL, 0), got;
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
        got = fn(r, (size_t)n + 1);
        if (got >= 0 && got <= n + 1)
            break;
        n = got;
    }
    if (got == 0 && empty_null) {
        free(r);
        *snap = NULL;
        return 0;
    }
    int rc = ps_snap_take(snap, 0, (const ps_range_t *)r, (size_t)got);
    free(r);
    return rc;
}

int
srv_snapshot_heap(ps_snap_t **snap)
{
    return snapshot_of(snap, mem_ranges, 0);
}

/* The collector's side memory (--gc-layout side|bitmap); NULL under
 * inline, which has none. */
static int
snapshot_side(ps_snap_t **snap)
{
    return snapshot_of(snap, mem_side_ranges, 1);
}

static int
build_heap(master_t *m)
{
    char err[512];
    uint64_t t0 = clk_now_ns();
    m->heap = srv_heap_new(m->cfg);
    if (m->heap == NULL) {
        fprintf(stderr, "cowlab: cannot start the runtime\n");
        return -1;
    }
    srv_apply_gc_thresholds(m->cfg);
    wl_build_stats_t bs;
    memset(&bs, 0, sizeof bs);
    if (wl_build_gc(m->heap, m->spec, m->cfg->scale, 42,
                    srv_build_gc(m->cfg), &m->app, &bs) < 0) {
        snprintf(err, sizeof err, "cowlab: building the heap failed "
                 "(out of memory?)\n");
        fputs(err, stderr);
        return -1;
    }
    if (srv_apply_prefork_policy(m->cfg, m->heap, &m->warmup) < 0)
        return -1;                  /* said why */
    /* --refcount split: mark what every worker inherits now, before the
     * snapshot (spawn() calls it again before each fork: then it only
     * reads). */
    if (rt_before_fork(m->heap) < 0) {
        fprintf(stderr, "cowlab: out of memory preparing the fork\n");
        return -1;
    }
    m->build_ms = (double)(clk_now_ns() - t0) / 1e6;
    m->build_bytes = bs.heap_bytes;
    gc_get_count(m->fork_count);
    gc_get_long_lived(&m->fork_pending, &m->fork_total);
    m->heap_objects = rt_heap_objects(m->heap);
    int r = srv_snapshot_heap(&m->snap);
    if (r < 0) {
        fprintf(stderr, "cowlab: cannot snapshot the heap's pages: %s\n",
                strerror(-r));
        return -1;
    }
    m->heap_pages = ps_snap_pages(m->snap);
    rt_get_overhead(m->heap, &m->overhead);
    /* No side memory mapped (inline): nothing to snapshot, side_snap
     * stays NULL and the workers' side pages are 0. */
    r = m->overhead.gc_side_bytes > 0 ? snapshot_side(&m->side_snap) : 0;
    if (r < 0) {
        fprintf(stderr, "cowlab: cannot snapshot the collector's side "
                "memory: %s\n", strerror(-r));
        return -1;
    }
    /* One released-page bitmap per slot, shared with the workers. */
    m->released_bytes = (ps_snap_total_pages(m->snap) + 7) / 8 + 1;
    m->released = mmap(NULL, m->released_bytes * (size_t)m->cfg->workers * 2,
                       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                       -1, 0);
    if (m->released == MAP_FAILED)
        m->released = NULL;         /* then released pages count as now */
    say(m, "heap built: %zu objects, %zu pages (%.1f MiB) in %.0f ms",
        m->heap_objects, m->heap_pages,
        (double)m->heap_pages * 4096.0 / 1048576.0, m->build_ms);
    const rt_overhead_t *o = &m->overhead;
    say(m, "designs: --gc-layout %s --refcount %s%s: %zu GC-able objects, "
        "collector state %zu B in objects + %zu side pages resident (%zu B "
        "mapped): %.2f B per object; %zu objects marked shared",
        rt_gc_layout_name((rt_gc_layout_t)m->cfg->gc_layout),
        rt_refcount_name((rt_refcount_t)m->cfg->refcount),
        m->cfg->warmup ? " --warmup" : "", o->gc_objects,
        o->gc_inline_bytes, o->gc_side_pages, o->gc_side_bytes,
        o->gc_objects ? gc_bytes(o) / (double)o->gc_objects : 0.0,
        o->rc_shared);
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
    } else if (cfg->ksm && cfg->attribution == CFG_ATTR_AUTO) {
        /* KSM merges copies back into shared pages, which write sets
         * cannot see: heap_copied_pages and --max-copied-pct would keep
         * counting them. */
        m->attr = SRV_ATTR_PAGEMAP;
        snprintf(m->attr_why, sizeof m->attr_why, "--ksm: merged copies "
                 "are shared again; write sets with --attribution "
                 "write-sets");
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

/* ---- KSM ---------------------------------------------------------------
 *
 * --ksm: at start-up, check that the kernel has KSM and that we may set it
 * (root), take the knobs for the run and set ksmd running at
 * --ksm-pages-to-scan per --ksm-sleep-ms (ksm.h; restored at the end, and
 * a second run at the same time is refused).  Just before the first fork
 * the master makes itself mergeable (PR_SET_MEMORY_MERGE), which its
 * workers inherit: then ksmd merges any two pages with the same bytes,
 * the master's heap pages and the workers' copies included.  ksmd's CPU
 * time counts from there.  COWLAB_KSM_SYSFS names another folder for the
 * knobs (tests).
 */
static int
ksm_begin(master_t *m)
{
    char err[512];
    const cfg_t *cfg = m->cfg;
    if (ms_ksm_merge_supported() < 0) {
        fprintf(stderr, "cowlab: --ksm: this kernel has no "
                "PR_SET_MEMORY_MERGE (Linux 6.4 or later)\n");
        return -EINVAL;
    }
    int r = ms_ksm_begin(&m->ksm, getenv("COWLAB_KSM_SYSFS"),
                         cfg->ksm_pages_to_scan, cfg->ksm_sleep_ms, err,
                         sizeof err);
    if (r < 0) {
        fprintf(stderr, "cowlab: %s\n", err);
        return r;
    }
    int fd = ms_ksm_open_kpageflags();
    m->kpf_fd = fd >= 0 ? fd : -1;  /* heap_ksm_pages: root only */
    say(m, "ksm: ksmd running, %u pages every %u ms (settings restored at "
        "the end)", cfg->ksm_pages_to_scan, cfg->ksm_sleep_ms);
    return 0;
}

static int
ksm_fork_ready(master_t *m)
{
    int r = ms_ksm_merge_process();
    if (r < 0) {
        fprintf(stderr, "cowlab: --ksm: PR_SET_MEMORY_MERGE: %s\n",
                strerror(-r));
        return r;
    }
    m->ksmd = ms_ksmd_pid();
    if (m->ksmd < 0 || ms_ksmd_cpu_s(m->ksmd, &m->ksmd_cpu0) < 0) {
        say(m, "ksm: no ksmd thread found: ksmd_cpu_s stays empty");
        m->ksmd = -1;
    }
    return 0;
}

int
srv_master_run(const cfg_t *cfg, const wl_spec_t *spec)
{
    master_t m;
    int rc = 1;
    memset(&m, 0, sizeof m);
    m.samples.fd = -1;
    m.totals.fd = -1;
    m.kpf_fd = -1;
    m.ksm.lock_fd = -1;
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
        int r = fio_mkdir_p(cfg->out_dir);
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
        r = ms_csv_open(&m.totals, out_path(&m, "totals.csv", path,
                                            sizeof path), &ms_totals_table);
        if (r < 0) {
            fprintf(stderr, "cowlab: --out %s: cannot write totals.csv: "
                    "%s\n", cfg->out_dir, strerror(-r));
            ms_csv_close(&m.samples);
            return 2;
        }
    }
    /* --ksm: KSM must be there and ours to set, or nothing runs. */
    if (cfg->ksm && ksm_begin(&m) < 0) {
        ms_csv_close(&m.samples);
        ms_csv_close(&m.totals);
        return 2;
    }
    if (cfg->refork_after_n > 0
        && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        fprintf(stderr, "cowlab: --refork-after: cannot become a child "
                "subreaper: %s\n", strerror(errno));
        ms_ksm_end(&m.ksm);
        ms_csv_close(&m.samples);
        ms_csv_close(&m.totals);
        return 2;
    }
    if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        ms_ksm_end(&m.ksm);
        return 1;
    }
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
    if (!cfg->lazy) {
        m.gens = calloc(1, sizeof *m.gens);
        if (m.gens == NULL)
            goto out;
        m.ngens = 1;
        m.gens[0].snap = m.snap;
        m.gens[0].ref_alive = 1;
    }
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
    /* Entries: a worker and its replacement per index, and with reforking
     * the mold, the previous mold and the one becoming. */
    m.nprocs = (unsigned)cfg->workers * 2 + (cfg->refork_after_n ? 4 : 0);
    /*
     * What the master writes after fork lives in pages of its own, never
     * malloc()ed ones: a malloc chunk could share a page with the heap's
     * (its pages are heap pages), and the master's write would leave the
     * worker that page alone: a copy it never made.
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
    for (unsigned i = 0; i < m.nprocs; i++)
        proc_init(&m.procs[i], -1, 0, 0);
    if (cfg->out_dir && write_meta(&m) < 0)
        say(&m, "cannot write meta.json");
    if (cfg->ksm && ksm_fork_ready(&m) < 0)
        goto out;
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
        if (m.stopping)
            stop_molds(&m);
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
        if (cfg->refork_after_n > 0 && timeout > 100)
            timeout = 100;          /* request counts: see refork_check */
        /* the signal pipe, then every worker's and mold's ctl socket */
        struct pollfd pfd[1 + 2 * 256 + 4];
        proc_t *who[1 + 2 * 256 + 4];
        nfds_t npfd = 1;
        pfd[0] = (struct pollfd){ sigpipe_fds[0], POLLIN, 0 };
        for (unsigned i = 0; i < m.nprocs; i++)
            if (m.procs[i].ctl >= 0) {
                who[npfd] = &m.procs[i];
                pfd[npfd++] = (struct pollfd){ m.procs[i].ctl, POLLIN, 0 };
            }
        int r = poll(pfd, npfd, timeout);
        for (nfds_t i = 1; r > 0 && i < npfd; i++)
            if (pfd[i].revents && who[i]->ctl == pfd[i].fd)
                handle_ctl(&m, who[i]);
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
            refork_check(&m);
            if (ms_sampler_due(&m.sampler, now)) {
                /* The cost that matters is the master's CPU time: wall
                 * time would count the waits for busy cores too. */
                uint64_t cpu0 = clk_cpu_ns();
                sample(&m, 0);
                uint64_t after = clk_now_ns();
                double cost = (double)(clk_cpu_ns() - cpu0) / 1e6;
                m.last_cost_ms = cost;
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
    if (cfg->ksm && ms_ksm_end(&m.ksm) < 0)
        fprintf(stderr, "cowlab: --ksm: could not restore the KSM settings "
                "in %s\n", m.ksm.dir);
    if (m.kpf_fd >= 0)
        close(m.kpf_fd);
    ms_csv_close(&m.samples);
    ms_csv_close(&m.totals);
    for (int i = 0; m.listen_fds && i < cfg->workers; i++)
        close(m.listen_fds[i]);
    free(m.listen_fds);
    srv_slots_unmap(&m.slots);
    for (unsigned i = 0; m.procs && i < m.nprocs; i++) {
        if (m.procs[i].ctl >= 0)
            close(m.procs[i].ctl);
        free(m.procs[i].ranges);
    }
    srv_routes_unmap(&m.routes);
    if (m.procs)
        munmap(m.procs, m.own_len);
    for (unsigned g = 0; g < m.ngens; g++) {
        if (g > 0)
            ps_snap_free(m.gens[g].snap);
        free(m.gens[g].pfn);
    }
    free(m.gens);
    free(m.bits);
    free(m.ibits);
    ps_snap_free(m.snap);
    ps_snap_free(m.side_snap);
    if (m.released)
        munmap(m.released, m.released_bytes * (size_t)cfg->workers * 2);
    /* Every worker is gone: the heap may be written again. */
    if (m.app)
        wl_app_free(m.app);
    if (m.heap)
        rt_heap_free(m.heap);
    return rc;
}
