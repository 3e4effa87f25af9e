/* bench_attach.c -- what `cowlab attach` costs per GiB of the master's
 * memory per worker: a master with 1 GiB of private anonymous pages and 4
 * forked workers, each having copied a quarter of them (every fourth
 * page), sampled the way attach samples (measure/attach.c): the master's
 * page frames read once a round, then per worker smaps_rollup, stat and
 * its pagemap compared page by page.  CPU time of this process, best of 5
 * rounds.  Target (issue 15): attach_sample_ms_per_gib <= 3. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attach.h"
#include "clock.h"
#include "procstat.h"

static double
cpu_ms(void)
{
    return (double)clk_cpu_ns() / 1e6;
}

int
main(void)
{
    enum { WORKERS = 4, ROUNDS = 5 };
    const size_t gib = (size_t)1 << 30;
    long psize = sysconf(_SC_PAGESIZE);
    char *heap = mmap(NULL, gib, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (heap == MAP_FAILED) {
        printf("attach_sample_ms_per_gib: n/a (cannot map 1 GiB)\n");
        return 0;
    }
    madvise(heap, gib, MADV_NOHUGEPAGE);
    for (size_t off = 0; off < gib; off += (size_t)psize)
        heap[off] = 1;
    ps_range_t r = { (uintptr_t)heap, (uintptr_t)heap + gib };
    att_frames_t *snap, *now;
    ps_pagemap_t mpm;
    if (att_frames_new(&snap, &r, 1) < 0 || att_frames_like(&now, snap) < 0
        || ps_pagemap_open(&mpm, 0) < 0 || att_frames_read(snap, &mpm) < 0) {
        printf("attach_sample_ms_per_gib: n/a (no pagemap)\n");
        return 0;
    }
    int have = att_frames_have_pfn(snap);
    att_method_t method = have == 1 ? ATT_PFN : ATT_EXCLUSIVE;

    pid_t pids[WORKERS];
    int hold[2];
    if (pipe(hold) < 0)
        return 1;
    for (int w = 0; w < WORKERS; w++) {
        pids[w] = fork();
        if (pids[w] == 0) {
            char c;
            close(hold[1]);
            for (size_t off = (size_t)w * (size_t)psize; off < gib;
                 off += 4 * (size_t)psize)
                heap[off] += 1;
            if (read(hold[0], &c, 1) < 0)
                _exit(1);
            _exit(0);
        }
    }
    close(hold[0]);
    sleep(2);                   /* let the workers copy their quarter */
    ps_pagemap_t wpm[WORKERS];
    for (int w = 0; w < WORKERS; w++)
        if (ps_pagemap_open(&wpm[w], pids[w]) < 0)
            return 1;
    double best = 1e30, best_master = 0, best_smaps = 0, best_pm = 0;
    size_t copied = 0;
    for (int round = 0; round < ROUNDS; round++) {
        double t0 = cpu_ms(), smaps = 0, pm = 0;
        att_frames_read(now, &mpm);
        double master = cpu_ms() - t0;
        copied = 0;
        for (int w = 0; w < WORKERS; w++) {
            ps_smaps_t sm;
            ps_stat_t st;
            att_counts_t c;
            double a = cpu_ms();
            ps_read_smaps_rollup(pids[w], &sm);
            ps_read_stat(pids[w], &st);
            double b = cpu_ms();
            att_count(snap, now, &wpm[w], method, &c);
            double d = cpu_ms();
            smaps += b - a;
            pm += d - b;
            copied += c.copied;
        }
        double t = cpu_ms() - t0;
        if (t < best) {
            best = t;
            best_master = master;
            best_smaps = smaps;
            best_pm = pm;
        }
    }
    close(hold[1]);
    for (int w = 0; w < WORKERS; w++) {
        ps_pagemap_close(&wpm[w]);
        waitpid(pids[w], NULL, 0);
    }
    double heap_gib = (double)att_frames_present(snap) * (double)psize
                      / (double)gib;
    printf("# bench_attach: %.2f GiB of master memory, %d workers each "
           "having copied 1/4 of it (%zu pages copied in all, by %s); best "
           "of %d rounds, CPU time\n", heap_gib, WORKERS, copied,
           method == ATT_PFN ? "page frames" : "the exclusive bit", ROUNDS);
    printf("attach_sample_ms_per_gib: %.2f ms (per worker, the master's "
           "read shared out; target <= 3)\n", best / WORKERS / heap_gib);
    printf("attach_pagemap_ms_per_gib: %.2f ms (per worker: its pagemap "
           "read and compared)\n", best_pm / WORKERS / heap_gib);
    printf("attach_smaps_stat_ms_per_gib: %.2f ms (per worker: "
           "smaps_rollup and stat)\n", best_smaps / WORKERS / heap_gib);
    printf("attach_master_read_ms_per_gib: %.2f ms (once a round)\n",
           best_master / heap_gib);
    att_frames_unref(snap);
    att_frames_unref(now);
    ps_pagemap_close(&mpm);
    munmap(heap, gib);
    return 0;
}
