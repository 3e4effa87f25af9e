/*
 * sampler.h -- when the master samples its workers: the configured
 * interval, lengthened after a round that cost more than the budget.
 * Pure bookkeeping on times the caller reads (CLOCK_MONOTONIC for
 * deadlines, the process's CPU time for a round's cost): the rounds
 * themselves, over the master's workers, are the server's.
 */
#ifndef MS_SAMPLER_H
#define MS_SAMPLER_H

#include <stdint.h>

typedef struct ms_sampler {
    unsigned configured_ms;     /* --sample-ms */
    double budget_pct;          /* --sample-budget: % of a core; 0 = none */
    unsigned interval_ms;       /* in force (sample_ms in the CSVs) */
    double last_cost_ms;        /* CPU time of the last round */
    uint64_t next_ns;           /* when the next round is due */
} ms_sampler_t;

/* The interval to use after a round that cost cost_ms of CPU: the
 * configured one, or longer so that sampling stays within budget_pct of
 * a core (budget 0: never longer); at most 600 s. */
unsigned ms_sample_interval(unsigned configured_ms, double cost_ms,
                            double budget_pct);

/* Start with the configured interval; the first round is due one
 * interval after now_ns. */
void ms_sampler_init(ms_sampler_t *s, unsigned configured_ms,
                     double budget_pct, uint64_t now_ns);
/* Nonzero when a round is due at now_ns. */
int ms_sampler_due(const ms_sampler_t *s, uint64_t now_ns);
/* Milliseconds to wait for the next round (poll's timeout), rounded up;
 * 0 if it is due. */
int ms_sampler_wait_ms(const ms_sampler_t *s, uint64_t now_ns);
/* A round ended at end_ns after cost_ms of CPU: set the interval in force
 * and the next deadline (one interval after end_ns).  Returns the
 * interval in force before, so the caller can say when it changed. */
unsigned ms_sampler_done(ms_sampler_t *s, double cost_ms, uint64_t end_ns);

#endif
