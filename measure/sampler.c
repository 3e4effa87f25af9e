/*
 * sampler.c -- the sampling interval and its CPU budget; see sampler.h.
 */
#include "sampler.h"

#include <limits.h>

#define MAX_INTERVAL_MS 600000u

unsigned
ms_sample_interval(unsigned configured_ms, double cost_ms, double budget_pct)
{
    /* Redis's rule of thumb: a periodic probe may take 1% of its period.
     * Recomputed after every round: the configured interval, or as much
     * longer as the last round's cost needs (budget 0: never longer). */
    if (budget_pct <= 0)
        return configured_ms;
    double need = cost_ms * 100.0 / budget_pct;
    if (need <= (double)configured_ms)
        return configured_ms;
    return need > (double)MAX_INTERVAL_MS ? MAX_INTERVAL_MS
                                          : (unsigned)(need + 0.5);
}

void
ms_sampler_init(ms_sampler_t *s, unsigned configured_ms, double budget_pct,
                uint64_t now_ns)
{
    s->configured_ms = configured_ms;
    s->budget_pct = budget_pct;
    s->interval_ms = configured_ms;
    s->last_cost_ms = 0;
    s->next_ns = now_ns + (uint64_t)configured_ms * 1000000u;
}

int
ms_sampler_due(const ms_sampler_t *s, uint64_t now_ns)
{
    return now_ns >= s->next_ns;
}

int
ms_sampler_wait_ms(const ms_sampler_t *s, uint64_t now_ns)
{
    if (now_ns >= s->next_ns)
        return 0;
    uint64_t ms = (s->next_ns - now_ns) / 1000000u + 1;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

unsigned
ms_sampler_done(ms_sampler_t *s, double cost_ms, uint64_t end_ns)
{
    unsigned before = s->interval_ms;
    s->last_cost_ms = cost_ms;
    s->interval_ms = ms_sample_interval(s->configured_ms, cost_ms,
                                        s->budget_pct);
    s->next_ns = end_ns + (uint64_t)s->interval_ms * 1000000u;
    return before;
}
