/*
 * slots.c -- the master/worker stats region; see slots.h.
 */
#include "slots.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

int
srv_slots_map(srv_slots_t *s, unsigned n)
{
    void *p = mmap(NULL, n * sizeof(srv_slot_t), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    s->n = n;
    s->slot = p;
    return 0;
}

void
srv_slots_unmap(srv_slots_t *s)
{
    if (s->slot)
        munmap(s->slot, s->n * sizeof(srv_slot_t));
    s->slot = NULL;
    s->n = 0;
}

int
srv_slots_claim(srv_slots_t *s)
{
    for (unsigned i = 0; i < s->n; i++) {
        if (atomic_load(&s->slot[i].state) == SLOT_FREE) {
            memset(&s->slot[i], 0, sizeof(s->slot[i]));
            atomic_store(&s->slot[i].state, SLOT_STARTING);
            return (int)i;
        }
    }
    return -1;
}

void
srv_slots_release(srv_slots_t *s, int i)
{
    if (i >= 0 && (unsigned)i < s->n)
        atomic_store(&s->slot[i].state, SLOT_FREE);
}

const char *
srv_attr_name(int attr)
{
    switch (attr) {
    case SRV_ATTR_PAGEMAP: return "pagemap";
    case SRV_ATTR_WSET: return "write-sets";
    default: return "none";
    }
}

const char *
srv_route_extra_name(int i)
{
    static const char *const names[SRV_ROUTE_EXTRA] = {
        "/healthz", "/stats", "/sleep", "(other)", "(server)"
    };
    return i >= 0 && i < SRV_ROUTE_EXTRA ? names[i] : "?";
}

int
srv_routes_map(srv_routes_t *r, unsigned nslots, unsigned nroutes)
{
    size_t len = (size_t)nslots * nroutes * sizeof(srv_route_t);
    void *p = mmap(NULL, len ? len : 1, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    r->nslots = nslots;
    r->nroutes = nroutes;
    r->row = p;
    return 0;
}

void
srv_routes_unmap(srv_routes_t *r)
{
    size_t len = (size_t)r->nslots * r->nroutes * sizeof(srv_route_t);
    if (r->row)
        munmap(r->row, len ? len : 1);
    r->row = NULL;
    r->nslots = r->nroutes = 0;
}

srv_route_t *
srv_routes_of(const srv_routes_t *r, int i)
{
    return r->row + (size_t)i * r->nroutes;
}
