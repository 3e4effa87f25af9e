/*
 * tuple.c -- immutable sequences with their items inline (PyTupleObject).
 * A tuple is tracked when made; a collection untracks it once all its
 * items are atoms or untracked (CPython's _PyTuple_MaybeUntrack), which
 * decides whether later collections write its gc_head.
 */
#include "object.h"

#include "internal.h"

typedef struct {
    rt_obj_t ob;
    intptr_t size;
    rt_obj_t *items[];
} tuple_obj_t;

#define T(o) ((tuple_obj_t *)(o))

static void
tuple_dealloc(rt_obj_t *o)
{
    gc_untrack(o);
    if (!rt__trash_begin(o))
        return;
    for (intptr_t i = 0; i < T(o)->size; i++)
        rt_xdecref(T(o)->items[i]);
    rt__gc_free(o);
    rt__trash_end();
}

static int
tuple_traverse(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    for (intptr_t i = 0; i < T(o)->size; i++) {
        if (T(o)->items[i]) {
            int r = visit(T(o)->items[i], arg);
            if (r)
                return r;
        }
    }
    return 0;
}

static int
tuple_clear(rt_obj_t *o)
{
    for (intptr_t i = 0; i < T(o)->size; i++) {
        rt_obj_t *v = T(o)->items[i];
        RT_WK_PAYLOAD_AT(&T(o)->items[i]);
        T(o)->items[i] = NULL;
        rt_xdecref(v);
    }
    return 0;
}

rt_type_t rt_tuple_type = { "tuple", RT_TPFLAG_GC, tuple_dealloc,
                            tuple_traverse, tuple_clear, NULL, NULL };

rt_obj_t *
rt_tuple_new(rt_heap_t *h, size_t n)
{
    (void)h;
    rt_obj_t *o = rt__gc_alloc(sizeof(tuple_obj_t) + n * sizeof(rt_obj_t *),
                               &rt_tuple_type);
    if (o == NULL)
        return NULL;
    T(o)->size = (intptr_t)n;
    for (size_t i = 0; i < n; i++)
        T(o)->items[i] = NULL;
    gc_track(o);
    return o;
}

void
rt_tuple_set_steal(rt_obj_t *t, size_t i, rt_obj_t *v)
{
    RT_ASSERT(i < (size_t)T(t)->size);
    rt_obj_t *old = T(t)->items[i];
    RT_WK_PAYLOAD_AT(&T(t)->items[i]);
    T(t)->items[i] = v;
    rt_xdecref(old);
}

rt_obj_t *
rt_tuple_get(const rt_obj_t *t, size_t i)
{
    RT_ASSERT(i < (size_t)T(t)->size);
    return T(t)->items[i];
}

size_t
rt_tuple_len(const rt_obj_t *t)
{
    return (size_t)T(t)->size;
}

int
rt__may_be_tracked(const rt_obj_t *o)
{
    if (!rt_is_gc(o))
        return 0;
    if (o->type == &rt_tuple_type)
        return gc_is_tracked(o);
    return 1;
}

int
rt__tuple_untrackable(const rt_obj_t *t)
{
    for (intptr_t i = 0; i < T(t)->size; i++) {
        rt_obj_t *v = T(t)->items[i];
        /* A NULL item means the tuple is still being filled. */
        if (v == NULL || rt__may_be_tracked(v))
            return 0;
    }
    return 1;
}

void
rt__tuple_maybe_untrack(rt_obj_t *t)
{
    if (rt__tuple_untrackable(t))
        gc_untrack(t);
}
