/* bench_sampler.c -- what sampling costs the master: one worker's sample
 * (smaps_rollup, stat and the heap's pagemap) per GiB of heap, and the
 * master's CPU share when sampling 4 workers with a 1 GiB heap at the
 * default interval, before and after the 1% self-limiting rule. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "mem.h"
#include "procstat.h"
#include "sampler.h"

int
main(void)
{
    const size_t gib = (size_t)1 << 30, block = 512;
    enum { WORKERS = 4, ROUNDS = 5 };
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
    pid_t pids[WORKERS];
    int hold[2];
    if (pipe(hold) < 0)
        return 1;
    for (int w = 0; w < WORKERS; w++) {
        pids[w] = fork();
        if (pids[w] == 0) {
            char c;
            close(hold[1]);
            /* Each worker copies a quarter of the heap, as a busy one
             * would: the pagemap then has both kinds of page. */
            for (size_t off = 0; off < nr; off++)
                for (uintptr_t a = r[off].start + (uintptr_t)w * 4096;
                     a < r[off].end; a += 4 * 4096)
                    *(volatile char *)a += 0;
            if (read(hold[0], &c, 1) < 0)
                _exit(1);
            _exit(0);
        }
    }
    close(hold[0]);
    sleep(1);
    double best_round = 1e30, best_smaps = 1e30, best_pm = 1e30;
    for (int round = 0; round < ROUNDS; round++) {
        double t0 = (clk_cpu_ns() / 1e6), smaps = 0, pm = 0;
        for (int w = 0; w < WORKERS; w++) {
            ps_smaps_t sm;
            ps_stat_t st;
            size_t copied;
            double a = (clk_cpu_ns() / 1e6);
            ps_read_smaps_rollup(pids[w], &sm);
            ps_read_stat(pids[w], &st);
            double b = (clk_cpu_ns() / 1e6);
            ps_count_copied(snap, pids[w], &copied);
            double c = (clk_cpu_ns() / 1e6);
            smaps += b - a;
            pm += c - b;
        }
        double t = (clk_cpu_ns() / 1e6) - t0;
        if (t < best_round) {
            best_round = t;
            best_smaps = smaps;
            best_pm = pm;
        }
    }
    close(hold[1]);
    for (int w = 0; w < WORKERS; w++)
        waitpid(pids[w], NULL, 0);
    double per_worker = best_round / WORKERS;
    unsigned interval = ms_sample_interval(250, best_round, 1.0);
    printf("# bench_sampler: %.2f GiB heap, %d workers each copying 1/4 of "
           "it; best of %d rounds, master CPU time\n", heap_gib, WORKERS,
           ROUNDS);
    printf("sample_ms_per_gib: %.2f ms\n", per_worker / heap_gib);
    printf("sample_smaps_stat_ms_per_gib: %.2f ms\n",
           best_smaps / WORKERS / heap_gib);
    printf("sample_pagemap_ms_per_gib: %.2f ms\n",
           best_pm / WORKERS / heap_gib);
    printf("sampler_cpu_pct_at_250ms: %.2f %%\n", 100.0 * best_round / 250.0);
    printf("sampler_interval_ms: %u ms (after the 1%% rule)\n", interval);
    printf("sampler_cpu_pct: %.2f %%\n",
           100.0 * best_round / (double)interval);
    ps_snap_free(snap);
    mem_fini();
    return 0;
}
