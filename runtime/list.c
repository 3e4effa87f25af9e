/*
 * list.c -- mutable sequences (PyListObject): a header object and an item
 * array from the same allocator, grown with CPython's over-allocation
 * (newsize + newsize/8 + 6, rounded down to a multiple of 4).
 */
#include "object.h"

#include <string.h>

#include "internal.h"

typedef struct {
    rt_obj_t ob;
    intptr_t size;
    rt_obj_t **items;
    intptr_t allocated;
} list_obj_t;

#define L(o) ((list_obj_t *)(o))

static void
list_dealloc(rt_obj_t *o)
{
    gc_untrack(o);
    if (!rt__trash_begin(o))
        return;
    for (intptr_t i = L(o)->size; i-- > 0;)
        rt_xdecref(L(o)->items[i]);
    rt__obj_free(L(o)->items);
    rt__gc_free(o);
    rt__trash_end();
}

static int
list_traverse(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    for (intptr_t i = L(o)->size; i-- > 0;) {
        if (L(o)->items[i]) {
            int r = visit(L(o)->items[i], arg);
            if (r)
                return r;
        }
    }
    return 0;
}

static int
list_clear(rt_obj_t *o)
{
    rt_obj_t **items = L(o)->items;
    intptr_t n = L(o)->size;
    RT_WK_SPAN(L(o), sizeof *L(o), RT_WK_PAYLOAD);
    L(o)->items = NULL;
    L(o)->size = 0;
    L(o)->allocated = 0;
    while (n-- > 0)
        rt_xdecref(items[n]);
    rt__obj_free(items);
    return 0;
}

rt_type_t rt_list_type = { "list", RT_TPFLAG_GC, list_dealloc,
                           list_traverse, list_clear, NULL, NULL };

rt_obj_t *
rt_list_new(rt_heap_t *h)
{
    (void)h;
    rt_obj_t *o = rt__gc_alloc(sizeof(list_obj_t), &rt_list_type);
    if (o == NULL)
        return NULL;
    L(o)->size = 0;
    L(o)->items = NULL;
    L(o)->allocated = 0;
    gc_track(o);
    return o;
}

/* CPython's list_resize(): keep the array if it is big enough and not more
 * than twice too big, else reallocate with room to grow. */
static int
list_resize(list_obj_t *l, intptr_t newsize)
{
    RT_WK_SPAN(l, sizeof *l, RT_WK_PAYLOAD);
    if (l->allocated >= newsize && newsize >= (l->allocated >> 1)) {
        l->size = newsize;
        return 0;
    }
    intptr_t newalloc = (newsize + (newsize >> 3) + 6) & ~(intptr_t)3;
    if (newsize - l->size > newalloc - newsize)
        newalloc = (newsize + 3) & ~(intptr_t)3;
    if (newsize == 0)
        newalloc = 0;
    rt_obj_t **items = NULL;
    if (newalloc > 0) {
        items = rt__obj_realloc(l->items, (size_t)newalloc * sizeof(*items));
        if (items == NULL)
            return -1;
    } else {
        rt__obj_free(l->items);
    }
    l->items = items;
    l->size = newsize;
    l->allocated = newalloc;
    return 0;
}

int
rt_list_append_steal(rt_obj_t *o, rt_obj_t *v)
{
    list_obj_t *l = L(o);
    intptr_t n = l->size;
    if (v == NULL)
        return -1;
    if (list_resize(l, n + 1) < 0) {
        rt_decref(v);
        return -1;
    }
    RT_WK_PAYLOAD_AT(&l->items[n]);
    l->items[n] = v;
    return 0;
}

int
rt_list_append(rt_obj_t *o, rt_obj_t *v)
{
    rt_incref(v);
    return rt_list_append_steal(o, v);
}

int
rt_list_insert(rt_obj_t *o, size_t i, rt_obj_t *v)
{
    list_obj_t *l = L(o);
    intptr_t n = l->size;
    if ((intptr_t)i > n)
        i = (size_t)n;
    if (list_resize(l, n + 1) < 0)
        return -1;
    RT_WK_SPAN(&l->items[i], (size_t)(n - (intptr_t)i + 1)
               * sizeof(rt_obj_t *), RT_WK_PAYLOAD);
    memmove(&l->items[i + 1], &l->items[i],
            (size_t)(n - (intptr_t)i) * sizeof(rt_obj_t *));
    rt_incref(v);
    l->items[i] = v;
    return 0;
}

int
rt_list_set(rt_obj_t *o, size_t i, rt_obj_t *v)
{
    list_obj_t *l = L(o);
    if ((intptr_t)i >= l->size)
        return -1;
    rt_obj_t *old = l->items[i];
    rt_incref(v);
    RT_WK_PAYLOAD_AT(&l->items[i]);
    l->items[i] = v;
    rt_xdecref(old);
    return 0;
}

int
rt_list_del(rt_obj_t *o, size_t i)
{
    list_obj_t *l = L(o);
    if ((intptr_t)i >= l->size)
        return -1;
    rt_obj_t *old = l->items[i];
    RT_WK_SPAN(&l->items[i], (size_t)(l->size - (intptr_t)i)
               * sizeof(rt_obj_t *), RT_WK_PAYLOAD);
    memmove(&l->items[i], &l->items[i + 1],
            (size_t)(l->size - (intptr_t)i - 1) * sizeof(rt_obj_t *));
    /* Shrinking never fails: the old array is kept if realloc fails. */
    if (list_resize(l, l->size - 1) < 0)
        l->size--;
    rt_xdecref(old);
    return 0;
}

rt_obj_t *
rt_list_pop(rt_obj_t *o)
{
    list_obj_t *l = L(o);
    if (l->size == 0)
        return NULL;
    rt_obj_t *v = l->items[l->size - 1];
    if (list_resize(l, l->size - 1) < 0)
        l->size--;
    return v;
}

rt_obj_t *
rt_list_get(const rt_obj_t *o, size_t i)
{
    if ((intptr_t)i >= L(o)->size)
        return NULL;
    return L(o)->items[i];
}

size_t
rt_list_len(const rt_obj_t *o)
{
    return (size_t)L(o)->size;
}

size_t
rt_list_allocated(const rt_obj_t *o)
{
    return (size_t)L(o)->allocated;
}

void *
rt__list_block(const rt_obj_t *o)
{
    return L(o)->items;
}
