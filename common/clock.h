/*
 * clock.h -- the clocks every layer above the runtime reads: monotonic
 * time (for durations and deadlines), the process's CPU time (the
 * sampler's budget) and its minor-fault count (fault attribution around
 * a phase).  The runtime, which may use nothing outside runtime/, keeps
 * its own copy of the two it needs (rt__now_ns, rt__minflt in
 * runtime/base.h).  None of these can fail on Linux.
 */
#ifndef COWLAB_CLOCK_H
#define COWLAB_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t clk_now_ns(void);

/* CLOCK_MONOTONIC in milliseconds, with the fraction. */
double clk_now_ms(void);

/* CPU time this process has used (CLOCK_PROCESS_CPUTIME_ID), in ns. */
uint64_t clk_cpu_ns(void);

/* Minor page faults this process has taken (getrusage ru_minflt). */
long clk_minflt(void);

#endif /* COWLAB_CLOCK_H */
