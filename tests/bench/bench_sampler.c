/* bench_sampler.c -- what sampling costs the master, per worker per GiB
 * of heap, and its CPU share with 4 workers on a 1 GiB heap at a 250 ms
 * interval, each "worker" having copied a quarter of the heap (every
 * fourth page: the most scattered copies, the worst case for a scan).
 *
 * A round reads each worker's stat and its copied-page count, and its
 * smaps_rollup every --smaps-ms (10000 by default, so at 250 ms one round
 * in 40).  The count comes from where the server takes it:
 *   write sets    the worker's own exact count (measure/wset.c), read from
 *                 shared memory: the worker paid for it in its scans
 *                 (attribution_overhead_pct, bench_attribution.sh);
 *   pagemap       the fallback: 8 bytes of /proc/PID/pagemap per page.
 * Also printed: the same count by the master's own PAGEMAP_SCAN of the
 * worker (ms_wset_count_written), and each read alone, all in master CPU
 * time, best of 5 rounds, baselines from the same run. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "mem.h"
#include "procstat.h"
#include "sampler.h"
#include "wset.h"

#define INTERVAL_MS 250
#define SMAPS_MS 10000          /* the server's --smaps-ms default */

static double
cpu_ms(void)
{
    return (double)clk_cpu_ns() / 1e6;
}

int
main(void)
{
    const size_t gib = (size_t)1 << 30, block = 512;
    enum { WORKERS = 4, ROUNDS = 5 };
    char why[256];
    int wsets = ms_wset_probe(why, sizeof why) == 0;
    if (mem_init() < 0)
        return 1;
    /* A 1 GiB heap from the runtime's allocator, every page touched. */
    size_t n = gib / block;
    for (size_t i = 0; i < n; i++) {
        char *p = mem_alloc(block);
        if (p == NULL) {
            printf("sample_ms_per_gib: n/a (out of memory)\n");
            return 0;
        }
        p[0] = 1;
    }
    static mem_range_t r[4096];
    long got = mem_ranges(r, 4096);
    ps_snap_t *snap;
    if (got < 0 || got > 4096) {
        printf("sample_ms_per_gib: n/a (heap ranges: %ld)\n", got);
        return 0;
    }
    size_t nr = (size_t)got;
    if (ps_snap_take(&snap, 0, (const ps_range_t *)r, nr) < 0) {
        printf("sample_ms_per_gib: n/a (no pagemap)\n");
        return 0;
    }
    double heap_gib = (double)ps_snap_pages(snap) * 4096.0 / (double)gib;
    /* The workers' counts, as in the server's stats slots. */
    volatile uint64_t *slot = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (slot == MAP_FAILED)
        return 1;
    pid_t pids[WORKERS];
    int hold[2], ready[2];
    if (pipe(hold) < 0 || pipe(ready) < 0)
        return 1;
    for (int w = 0; w < WORKERS; w++) {
        pids[w] = fork();
        if (pids[w] == 0) {
            char c = 1;
            ms_wset_t *ws = NULL;
            close(hold[1]);
            if (wsets && ms_wset_start(&ws, snap, why, sizeof why) < 0)
                ws = NULL;
            /* Each worker copies a quarter of the heap, as a busy one
             * would: the pagemap then has both kinds of page. */
            for (size_t off = 0; off < nr; off++)
                for (uintptr_t a = r[off].start + (uintptr_t)w * 4096;
                     a < r[off].end; a += 4 * 4096)
                    *(volatile char *)a += 0;
            if (ws != NULL && ms_wset_close(ws, MS_CAUSE_REQUEST, -1) >= 0)
                slot[w] = ms_wset_copied_total(ws);
            if (write(ready[1], &c, 1) != 1 || read(hold[0], &c, 1) < 0)
                _exit(1);
            _exit(0);
        }
    }
    close(hold[0]);
    for (int w = 0; w < WORKERS; w++) {
        char c;
        if (read(ready[0], &c, 1) != 1)
            return 1;
    }
    ps_pagemap_t pm[WORKERS];
    for (int w = 0; w < WORKERS; w++)
        if (ps_pagemap_open(&pm[w], pids[w]) < 0)
            return 1;
    double best_stat = 1e30, best_smaps = 1e30, best_pm = 1e30;
    double best_scan = 1e30, best_slot = 1e30;
    size_t counted[3] = { 0, 0, 0 };
    for (int round = 0; round < ROUNDS; round++) {
        double stat = 0, smaps = 0, pmt = 0, scan = 0, sl = 0;
        for (int w = 0; w < WORKERS; w++) {
            ps_smaps_t sm;
            ps_stat_t st;
            size_t c = 0;
            double a = cpu_ms();
            ps_read_stat(pids[w], &st);
            double b = cpu_ms();
            ps_read_smaps_rollup(pids[w], &sm);
            double d = cpu_ms();
            ps_count_copied_fd(snap, &pm[w], &c);
            counted[0] += c;
            double e = cpu_ms();
            if (wsets && ms_wset_count_written(snap, &pm[w], &c) == 0)
                counted[1] += c;
            double f = cpu_ms();
            counted[2] += slot[w];
            double g = cpu_ms();
            stat += b - a;
            smaps += d - b;
            pmt += e - d;
            scan += f - e;
            sl += g - f;
        }
        if (stat < best_stat) best_stat = stat;
        if (smaps < best_smaps) best_smaps = smaps;
        if (pmt < best_pm) best_pm = pmt;
        if (scan < best_scan) best_scan = scan;
        if (sl < best_slot) best_slot = sl;
    }
    close(hold[1]);
    for (int w = 0; w < WORKERS; w++) {
        ps_pagemap_close(&pm[w]);
        waitpid(pids[w], NULL, 0);
    }
    /* Per worker per GiB: a round = stat + count, smaps one round in
     * SMAPS_MS / INTERVAL_MS. */
    double per = (double)WORKERS * heap_gib;
    double smaps_share = (double)INTERVAL_MS / SMAPS_MS;
    double count = wsets ? best_slot : best_pm;
    double round_ms = best_stat + count + best_smaps * smaps_share;
    unsigned interval = ms_sample_interval(INTERVAL_MS, round_ms, 1.0);
    printf("# bench_sampler: %.2f GiB heap, %d workers each copying 1/4 of "
           "it (every 4th page); master CPU time, best of %d rounds; "
           "smaps_rollup every %d ms; copies counted by %s\n", heap_gib,
           WORKERS, ROUNDS, SMAPS_MS,
           wsets ? "write sets" : "pagemap reads (no write sets here)");
    if (!wsets)
        printf("# write sets unavailable: %s\n", why);
    printf("# counts agree: pagemap %zu, master PAGEMAP_SCAN %zu, workers' "
           "write sets %zu (%d rounds x %d workers)\n", counted[0],
           counted[1], counted[2], ROUNDS, WORKERS);
    printf("sample_ms_per_gib: %.2f ms\n", round_ms / per);
    printf("sample_count_ms_per_gib: %.3f ms (%s)\n", count / per,
           wsets ? "the worker's count" : "pagemap");
    printf("sample_smaps_ms_per_gib: %.2f ms (one smaps_rollup read)\n",
           best_smaps / per);
    printf("sample_stat_ms_per_gib: %.3f ms\n", best_stat / per);
    printf("sample_pagemap_ms_per_gib: %.2f ms (the fallback's count)\n",
           best_pm / per);
    if (wsets)
        printf("sample_scan_ms_per_gib: %.2f ms (the master's own "
               "PAGEMAP_SCAN)\n", best_scan / per);
    printf("sample_ms_per_gib_before: %.2f ms (smaps_rollup and pagemap "
           "every round)\n", (best_stat + best_smaps + best_pm) / per);
    printf("sampler_cpu_pct_at_250ms: %.2f %%\n",
           100.0 * round_ms / INTERVAL_MS);
    printf("sampler_interval_ms: %u ms (after the 1%% rule)\n", interval);
    printf("sampler_cpu_pct: %.2f %%\n", 100.0 * round_ms / (double)interval);
    ps_snap_free(snap);
    mem_fini();
    return 0;
}
