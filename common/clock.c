/*
 * clock.c -- monotonic time, CPU time and minor faults (API: clock.h).
 */
#include "clock.h"

#include <sys/resource.h>
#include <time.h>

static uint64_t
ns_of(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
clk_now_ns(void)
{
    return ns_of(CLOCK_MONOTONIC);
}

double
clk_now_ms(void)
{
    return (double)clk_now_ns() / 1e6;
}

uint64_t
clk_cpu_ns(void)
{
    return ns_of(CLOCK_PROCESS_CPUTIME_ID);
}

long
clk_minflt(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}
