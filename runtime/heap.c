/*
 * heap.c -- the heap as a whole: start-up (the mode, the static singletons,
 * the interned-string table, sys.modules), immortalizing the heap (Cinder's
 * immortalize_heap, for PEP 683 experiments), walking it, and the two ways
 * a worker ends: rt_finalize(), what Py_Finalize does to the heap, and
 * rt_skip_exit(), the os._exit(0) that Instagram registered with atexit.
 */
#include "object.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "mem.h"

rt_heap_t *
rt_heap_new(void)
{
    return rt_heap_new_opts(NULL);
}

rt_heap_t *
rt_heap_new_opts(const rt_opts_t *opts)
{
    rt_opts_t def;
    if (opts == NULL) {
        rt_opts_default(&def);
        opts = &def;
    }
    if (opts->python != RT_PY_311 && opts->python != RT_PY_312)
        return NULL;
    if ((unsigned)opts->gc_layout > RT_GC_BITMAP
        || (unsigned)opts->refcount > RT_RC_SPLIT)
        return NULL;
    if (rt__heap != NULL || mem_init() < 0)
        return NULL;
    rt_heap_t *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        mem_fini();
        return NULL;
    }
    rt__mode_set(opts);
    h->python = opts->python;
    rt__heap = h;
    gc__init();
    rt__statics_init(h);
    rt__object_class_init(h);
    h->interned = rt_dict_new(h);
    h->modules = rt_dict_new(h);
    if (!h->interned || !h->modules)
        goto error;
    return h;
error:
    rt_heap_free(h);
    return NULL;
}

rt_python_t
rt_heap_python(const rt_heap_t *h)
{
    return h->python;
}

rt_gc_layout_t
rt_heap_gc_layout(const rt_heap_t *h)
{
    (void)h;
    return rt__mode.gc_layout;
}

rt_refcount_t
rt_heap_refcount(const rt_heap_t *h)
{
    (void)h;
    return rt__mode.refcount;
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
 * the small ints and the object class (statics: 1; they are not the heap's
 * own, so a walk over the heap leaves them out), the interned strings,
 * sys.modules, the object class's subclass table, then every tracked
 * container (what the collector knows). */
static void
for_each_root(rt_heap_t *h, int (*fn)(rt_obj_t *o, void *arg),
              void (*tracked)(rt_obj_t *o, void *arg), void *arg,
              int statics)
{
    if (statics) {
        fn(h->none, arg);
        fn(h->true_, arg);
        fn(h->false_, arg);
        for (int i = 0; i < RT_NSMALLNEG + RT_NSMALLPOS; i++)
            fn(h->small_ints[i], arg);
        fn(h->object_class, arg);
    }
    fn(h->interned, arg);
    fn(h->modules, arg);
    fn(*rt__object_subclasses(), arg);
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

static int
refs_of(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    if (o->type->refs)
        return o->type->refs(o, visit, arg);
    if (o->type->traverse)
        return o->type->traverse(o, visit, arg);
    return 0;
}

long
rt_immortalize_heap(rt_heap_t *h)
{
    rt__ptrstack_t s = RT_PTRSTACK_INIT;
    long count = 0;
    for_each_root(h, push, push_tracked, &s, 1);
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
        refs_of(o, push, &s);
        if (o->type == &rt_dict_type) {     /* str keys: not traversed */
            size_t pos = 0;
            rt_obj_t *k;
            while (rt_dict_next(o, &pos, &k, NULL))
                push(k, &s);
        }
        if (s.oom)
            break;
        rt_immortalize(o);
        count += !rt__is_static(o);
    }
    long rc = s.oom ? -1 : count;
    rt__ptrstack_fini(&s);
    return rc;
}

/* ---- walking ----------------------------------------------------------
 * A visited set of object addresses (open addressing, malloc()ed: never in
 * the heap) and an explicit stack; children come from refs (or traverse),
 * plus the keys of str-keyed dicts, which traverse skips as CPython's
 * does.  The static objects are not the heap's and are not visited. */

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
    if (o == NULL || rt__is_static(o))
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
    for_each_root(h, walk_push, walk_push_tracked, &w, 0);
    while (w.stack.n > 0 && !w.oom && !w.stack.oom) {
        rt_obj_t *o = w.stack.v[--w.stack.n];
        const rt_type_t *k = rt_kind(o);
        n++;
        emit(o, rt__obj_block(o), fn, arg);
        if (k == &rt_list_type)
            emit(o, rt__list_block(o), fn, arg);
        else if (k == &rt_instance_type)
            emit(o, rt__instance_block(o), fn, arg);
        else if (k == &rt_class_type)
            emit(o, rt__class_block(o), fn, arg);
        else if (k == &rt_dict_type) {
            emit(o, rt__dict_block(o), fn, arg);
            size_t pos = 0;
            rt_obj_t *key;
            while (rt_dict_next(o, &pos, &key, NULL))
                walk_push(key, &w);
        }
        refs_of(o, walk_push, &w);
    }
    int failed = w.oom || w.stack.oom;
    rt__ptrstack_fini(&w.stack);
    free(w.seen.slots);
    return failed ? -1 : n;
}

/* ---- teardown --------------------------------------------------------- */

typedef struct {
    size_t collections;
    long collected;
} fin_t;

static void
full_collection(fin_t *f)
{
    long n = gc__collect_nofail();
    if (n >= 0) {
        f->collections++;
        f->collected += n;
    }
}

/* Steps 2-5 of rt_finalize (finalize_modules).  Out of memory for the
 * list of modules: sys.modules is still emptied and collected, but the
 * globals of the modules left alive are not cleared, and -1 says the
 * figures describe a teardown that did not happen. */
static int
finalize_modules(rt_heap_t *h, fin_t *f)
{
    size_t n = rt_dict_len(h->modules), i = 0, pos = 0;
    rt_obj_t **mods = rt__scratch_realloc(NULL, (n ? n : 1) * sizeof(*mods));
    int *alive = rt__scratch_realloc(NULL, (n ? n : 1) * sizeof(*alive));
    int rc = (mods && alive) ? 0 : -1;
    rt_obj_t *k, *v;
    if (alive)
        memset(alive, 0, (n ? n : 1) * sizeof(*alive));
    /* 2. finalize_remove_modules: a weak reference to every module (the
     *    write to md_weaklist), each entry set to None, then the table
     *    cleared (finalize_clear_modules_dict). */
    if (mods && alive) {
        while (rt_dict_next(h->modules, &pos, NULL, &v)) {
            if (v->type != &rt_module_type || i == n)
                continue;
            mods[i] = v;
            alive[i] = 1;
            RT_WK_PAYLOAD_AT(rt__module_weak(v));
            *rt__module_weak(v) = &alive[i];
            i++;
        }
    }
    pos = 0;
    while (rt_dict_next(h->modules, &pos, &k, &v))
        if (v != rt_none(h))
            rt_dict_set(h->modules, k, rt_none(h));  /* an existing key:
                                                        cannot fail */
    rt_dict_clear(h->modules);
    /* 3. */
    full_collection(f);
    /* 4. finalize_modules_clear_weaklist: the modules still alive, newest
     *    first, get their globals set to None.  An immortal module is
     *    alive: its dict's entries are written, its values are not. */
    for (size_t j = i; j-- > 0;)
        if (alive && alive[j])
            rt__module_clear_dict(rt_module_dict(mods[j]));
    /* finalize_clear_sys_builtins_dict, then interp->modules = NULL */
    rt_decref(h->modules);
    h->modules = NULL;
    /* 5. finalize_modules' last collection, then interpreter_clear's. */
    full_collection(f);
    full_collection(f);
    for (size_t j = 0; j < i; j++)
        if (alive[j]) {
            RT_WK_PAYLOAD_AT(rt__module_weak(mods[j]));
            *rt__module_weak(mods[j]) = NULL;
        }
    free(mods);
    free(alive);
    return rc;
}

int
rt_finalize(rt_heap_t *h, rt_teardown_t *st)
{
    fin_t f = { 0, 0 };
    int rc = 0;
    long f0 = rt__minflt();
    uint64_t hook0 = mem_hook_ns(), t0 = rt__now_ns();
    size_t d0 = h->ndeallocs;

    if (!gc__collecting()) {
        /* 1. Py_FinalizeEx's gc.collect(): only if the collector is
         *    enabled (a threshold of 0 leaves it enabled). */
        if (gc_isenabled())
            full_collection(&f);
        if (h->modules && finalize_modules(h, &f) < 0)
            rc = -1;
    }
    /* 6. The interned strings (finalize_interp_types).  3.11 gives each
     *    one back the references the table does not count and marks it
     *    not interned (writing every interned string), then clears the
     *    table; 3.12's are immortal and stay. */
    if (h->interned) {
        if (!rt__mode.immortal_interned) {
            size_t pos = 0;
            rt_obj_t *k;
            while (rt_dict_next(h->interned, &pos, &k, NULL))
                if (!rt_is_immortal(k))
                    rt__str_set_uninterned(k);
        }
        rt_dict_clear(h->interned);
        rt_decref(h->interned);
        h->interned = NULL;
    }
    uint64_t t1 = rt__now_ns(), hook = mem_hook_ns() - hook0;
    long f1 = rt__minflt();
    size_t left = h->nobjects;
    size_t deallocated = h->ndeallocs - d0;
    if (st && st->before_release)
        st->before_release(st->arg);
    /* What is left (immortal objects, frozen cycles and what they hold)
     * goes with the arenas, unwritten: the kernel's work at exit. */
    rt__obj_release_all();
    mem_fini();
    rt__rc_fini();
    rt__heap = NULL;
    free(h);
    if (st) {
        uint64_t ns = t1 - t0 > hook ? t1 - t0 - hook : 0;
        st->wall_ms = (double)ns / 1e6;
        st->minflt = f1 - f0;
        st->collections = f.collections;
        st->collected = (size_t)f.collected;
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
