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
