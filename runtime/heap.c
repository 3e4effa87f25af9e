/*
 * heap.c -- the heap as a whole: start-up (singletons, small ints, the
 * interned-string table, sys.modules), immortalizing the heap (Cinder's
 * immortalize_heap, for PEP 683 experiments) and the two ways a worker
 * ends: rt_finalize(), what Py_Finalize does to the heap, and
 * rt_skip_exit(), the os._exit(0) that Instagram registered with atexit.
 */
#include "object.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "mem.h"

static rt_obj_t *
singleton_new(rt_type_t *type)
{
    rt_obj_t *o = rt__obj_alloc(sizeof(rt_obj_t) + sizeof(intptr_t));
    if (o != NULL)
        rt__obj_init(o, type);
    return o;
}

rt_heap_t *
rt_heap_new(void)
{
    if (rt__heap != NULL || mem_init() < 0)
        return NULL;
    rt_heap_t *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        mem_fini();
        return NULL;
    }
    rt__heap = h;
    gc__init();
    h->none = singleton_new(&rt_none_type);
    h->true_ = singleton_new(&rt_bool_type);
    h->false_ = singleton_new(&rt_bool_type);
    if (!h->none || !h->true_ || !h->false_)
        goto error;
    for (int i = 0; i < RT_NSMALLNEG + RT_NSMALLPOS; i++) {
        rt_obj_t *o = rt__int_alloc(i - RT_NSMALLNEG);
        if (o == NULL)
            goto error;
        h->small_ints[i] = o;
    }
    h->interned = rt_dict_new(h);
    h->modules = rt_dict_new(h);
    if (!h->interned || !h->modules)
        goto error;
    return h;
error:
    rt_heap_free(h);
    return NULL;
}

size_t
rt_heap_objects(const rt_heap_t *h)
{
    return h->nobjects;
}

rt_obj_t *
rt_heap_modules(rt_heap_t *h)
{
    return h->modules;
}

/* The heap's roots, as the walks below start from them: the singletons,
 * the small ints, the interned strings, sys.modules, then every tracked
 * container (what the collector knows). */
static void
for_each_root(rt_heap_t *h, int (*fn)(rt_obj_t *o, void *arg),
              void (*tracked)(rt_obj_t *o, void *arg), void *arg)
{
    fn(h->none, arg);
    fn(h->true_, arg);
    fn(h->false_, arg);
    for (int i = 0; i < RT_NSMALLNEG + RT_NSMALLPOS; i++)
        fn(h->small_ints[i], arg);
    fn(h->interned, arg);
    fn(h->modules, arg);
    gc__foreach(tracked, arg);
}

/* ---- immortalize ------------------------------------------------------ */

static int
push(rt_obj_t *o, void *arg)
{
    if (o == NULL || rt_is_immortal(o))
        return 0;
    rt__ptrstack_push(arg, o);
    return 0;
}

static void
push_tracked(rt_obj_t *o, void *arg)
{
    push(o, arg);
}

long
rt_immortalize_heap(rt_heap_t *h)
{
    rt__ptrstack_t s = RT_PTRSTACK_INIT;
    long count = 0;
    for_each_root(h, push, push_tracked, &s);
    /* Depth first over everything reachable from those; an object is
     * visited once, since marking it immortal is the visited mark.  It is
     * marked once all it refers to is on the stack: a push that finds no
     * memory stops the walk with the heap only partly immortal (say so),
     * but every marked object's referents were reached, so a later call
     * finishes the job. */
    while (s.n > 0 && !s.oom) {
        rt_obj_t *o = s.v[--s.n];
        if (rt_is_immortal(o))
            continue;
        if (o->type->traverse)
            o->type->traverse(o, push, &s);
        if (s.oom)
            break;
        rt_immortalize(o);
        count++;
    }
    long rc = s.oom ? -1 : count;
    rt__ptrstack_fini(&s);
    return rc;
}

/* ---- walking ----------------------------------------------------------
 * A visited set of object addresses (open addressing, malloc()ed: never in
 * the heap) and an explicit stack; children come from traverse, plus the
 * keys of str-keyed dicts, which traverse skips as CPython's does. */

typedef struct {
    uintptr_t *slots;
    size_t cap, n;
} pset_t;

static int
pset_add(pset_t *s, uintptr_t p)       /* 1 added, 0 present, -1 oom */
{
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1 << 16;
        uintptr_t *t = rt__fail_now() ? NULL : calloc(cap, sizeof(*t));
        if (t == NULL)
            return -1;
        for (size_t i = 0; i < s->cap; i++) {
            uintptr_t q = s->slots[i];
            if (q) {
                size_t j = (size_t)((q >> 4) * 0x9e3779b97f4a7c15ULL)
                           & (cap - 1);
                while (t[j])
                    j = (j + 1) & (cap - 1);
                t[j] = q;
            }
        }
        free(s->slots);
        s->slots = t;
        s->cap = cap;
    }
    size_t j = (size_t)((p >> 4) * 0x9e3779b97f4a7c15ULL) & (s->cap - 1);
    while (s->slots[j]) {
        if (s->slots[j] == p)
            return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j] = p;
    s->n++;
    return 1;
}

typedef struct {
    rt__ptrstack_t stack;
    pset_t seen;
    int oom;
} walk_t;

static int
walk_push(rt_obj_t *o, void *arg)
{
    walk_t *w = arg;
    if (o == NULL)
        return 0;
    int r = pset_add(&w->seen, (uintptr_t)o);
    if (r < 0)
        w->oom = 1;
    if (r == 1)
        rt__ptrstack_push(&w->stack, o);
    return 0;
}

static void
walk_push_tracked(rt_obj_t *o, void *arg)
{
    walk_push(o, arg);
}

static void
emit(rt_obj_t *o, const void *block, rt_walk_fn fn, void *arg)
{
    if (block == NULL)
        return;
#ifdef RT_MALLOC_BYPASS
    fn(o, block, 0, arg);
#else
    fn(o, block, mem_block_size(block), arg);
#endif
}

long
rt_heap_walk(rt_heap_t *h, rt_walk_fn fn, void *arg)
{
    walk_t w;
    long n = 0;
    memset(&w, 0, sizeof w);
    for_each_root(h, walk_push, walk_push_tracked, &w);
    while (w.stack.n > 0 && !w.oom && !w.stack.oom) {
        rt_obj_t *o = w.stack.v[--w.stack.n];
        n++;
        emit(o, rt_is_gc(o) ? (const void *)RT_AS_GC(o) : (const void *)o,
             fn, arg);
        if (o->type == &rt_list_type)
            emit(o, rt__list_block(o), fn, arg);
        if (o->type == &rt_dict_type) {
            emit(o, rt__dict_block(o), fn, arg);
            size_t pos = 0;
            rt_obj_t *k;
            while (rt_dict_next(o, &pos, &k, NULL))
                walk_push(k, &w);
        }
        if (o->type->traverse)
            o->type->traverse(o, walk_push, &w);
    }
    int failed = w.oom || w.stack.oom;
    rt__ptrstack_fini(&w.stack);
    free(w.seen.slots);
    return failed ? -1 : n;
}

/* ---- teardown --------------------------------------------------------- */

int
rt_finalize(rt_heap_t *h, rt_teardown_t *st)
{
    long f0 = rt__minflt();
    uint64_t t0 = rt__now_ns();
    size_t d0 = h->ndeallocs;
    long collected = 0;
    int rc = 0;

    /* 1. Modules: empty each global dict, then drop sys.modules.  Immortal
     *    objects are never torn down (PEP 683): their pages stay shared. */
    if (h->modules) {
        size_t pos = 0;
        rt_obj_t *m;
        while (rt_dict_next(h->modules, &pos, NULL, &m))
            if (!rt_is_immortal(rt_module_dict(m)))
                rt_dict_clear(rt_module_dict(m));
        rt_decref(h->modules);
        h->modules = NULL;
    }
    /* 2. Interned strings (CPython 3.11 _PyUnicode_ClearInterned). */
    if (h->interned) {
        rt_decref(h->interned);
        h->interned = NULL;
    }
    /* 3. Collect what the roots kept alive, then clear what is left
     *    tracked (frozen objects too), so every mortal object goes.  If
     *    the clearing finds no memory for its list, mortal objects stay:
     *    the figures would describe a teardown that did not happen. */
    if (!gc__collecting()) {
        long n = gc_collect(GC_GEN_OLDEST);
        collected = n > 0 ? n : 0;
        if (gc__clear_all() < 0)
            rc = -1;
    }
    /* 4. Singletons and small ints, created with one reference each. */
    for (int i = 0; i < RT_NSMALLNEG + RT_NSMALLPOS; i++)
        if (h->small_ints[i])
            rt_decref(h->small_ints[i]);
    rt_obj_t *singles[3] = { h->none, h->true_, h->false_ };
    for (int i = 0; i < 3; i++)
        if (singles[i])
            rt_decref(singles[i]);
    size_t left = h->nobjects;
    size_t deallocated = h->ndeallocs - d0;
    if (st && st->before_release)
        st->before_release(st->arg);
    /* 5. Release the arenas: immortal objects go with them unwritten. */
    rt__obj_release_all();
    mem_fini();
    rt__heap = NULL;
    free(h);
    uint64_t t1 = rt__now_ns();
    if (st) {
        st->wall_ms = (double)(t1 - t0) / 1e6;
        st->minflt = rt__minflt() - f0;
        st->collected = (size_t)collected;
        st->deallocated = deallocated;
        st->left = left;
    }
    return rc;
}

void
rt_heap_free(rt_heap_t *h)
{
    if (h != NULL)
        (void)rt_finalize(h, NULL);
}

_Noreturn void
rt_skip_exit(int status)
{
    _exit(status);
}
