/*
 * gc_inline.c -- --gc-layout inline: CPython's layout, a 16-byte gc_head_t
 * in front of every GC-able object (see gc_list.inc).
 */
#include <stdio.h>
#include <string.h>

#include "gc_layout.h"

#define AS_GC(o)    RT_AS_GC(o)
#define FROM_GC(g)  RT_FROM_GC(g)

#include "gc_list.inc"

static int
inline_obj_new(rt_obj_t *o)
{
    gc_head_t *g = RT_AS_GC(o);
    g->next = g->prev = 0;
    return 0;
}

static void
inline_obj_free(rt_obj_t *o)
{
    (void)o;
}

static void
inline_init_static(rt_obj_t *o)
{
    (void)o;                        /* zero links: untracked */
}

static void
inline_side_usage(size_t *bytes, size_t *pages)
{
    *bytes = *pages = 0;
}

const gc_layout_ops_t gc__inline_ops = {
    sizeof(gc_head_t), l_init, inline_obj_new, inline_obj_free,
    inline_init_static, l_track, l_untrack, l_is_tracked, l_collect,
    l_gen_size, l_promote, l_freeze, l_unfreeze, l_foreach, l_check,
    inline_side_usage,
};
