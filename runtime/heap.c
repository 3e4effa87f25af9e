/*
 * heap.c -- the heap as a whole: start-up (singletons, small ints, the
 * interned-string table, sys.modules), immortalizing the heap (Cinder's
 * immortalize_heap, for PEP 683 experiments) and the two ways a worker
 * ends: rt_finalize(), what Py_Finalize does to the heap, and
 * rt_skip_exit(), the os._exit(0) that Instagram registered with atexit.
 */
#include "object.h"

#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
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

/* ---- immortalize ------------------------------------------------------ */

typedef struct {
    rt_obj_t **v;
    size_t n, cap;
    int oom;
} stack_t_;

static int
push(rt_obj_t *o, void *arg)
{
    stack_t_ *s = arg;
    if (o == NULL || rt_is_immortal(o))
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        rt_obj_t **v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL) {
            s->oom = 1;
            return 0;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = o;
    return 0;
}

static void
push_tracked(rt_obj_t *o, void *arg)
{
    push(o, arg);
}

size_t
rt_immortalize_heap(rt_heap_t *h)
{
    stack_t_ s = { NULL, 0, 0, 0 };
    size_t count = 0;
    push(h->none, &s);
    push(h->true_, &s);
    push(h->false_, &s);
    for (int i = 0; i < RT_NSMALLNEG + RT_NSMALLPOS; i++)
        push(h->small_ints[i], &s);
    push(h->interned, &s);
    push(h->modules, &s);
    gc__foreach(push_tracked, &s);
    /* Depth first over everything reachable from those; an object is
     * visited once, since marking it immortal is the visited mark. */
    while (s.n > 0) {
        rt_obj_t *o = s.v[--s.n];
        if (rt_is_immortal(o))
            continue;
        rt_immortalize(o);
        count++;
        if (o->type->traverse)
            o->type->traverse(o, push, &s);
    }
    free(s.v);
    return count;
}

/* ---- teardown --------------------------------------------------------- */

static long
minflt_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

void
rt_finalize(rt_heap_t *h, rt_teardown_t *st)
{
    struct timespec t0, t1;
    long f0 = minflt_now();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t d0 = h->ndeallocs;
    long collected = 0;

    /* 1. Modules: empty each global dict, then drop sys.modules. */
    if (h->modules) {
        size_t pos = 0;
        rt_obj_t *m;
        while (rt_dict_next(h->modules, &pos, NULL, &m))
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
     *    tracked (frozen objects too), so every mortal object goes. */
    if (!gc__collecting()) {
        long n = gc_collect(GC_GEN_OLDEST);
        collected = n > 0 ? n : 0;
        gc__clear_all();
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
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (st) {
        st->wall_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3
                      + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        st->minflt = minflt_now() - f0;
        st->collected = (size_t)collected;
        st->deallocated = deallocated;
        st->left = left;
    }
}

void
rt_heap_free(rt_heap_t *h)
{
    if (h != NULL)
        rt_finalize(h, NULL);
}

_Noreturn void
rt_skip_exit(int status)
{
    _exit(status);
}
