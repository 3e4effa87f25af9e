/*
 * object.c -- object memory, deallocation (with the trashcan) and the
 * atoms: None, bool, int, float, str (cached hash, interning) and bytes.
 * Atoms hold no references, so they are not GC-able: like CPython, only
 * containers carry a gc_head_t.  Containers live in tuple.c, list.c,
 * dict.c and class.c; the heap's singletons and teardown in heap.c.
 */
#include "object.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mem.h"

rt_heap_t *rt__heap;

/* ---- the mode ----------------------------------------------------------
 * Sizes measured with sys.getsizeof() and tracemalloc on CPython 3.11.7
 * and 3.12.1 (64-bit): see each type's comment. */

rt_mode_t rt__mode;

void
rt__mode_set(const rt_opts_t *opts)
{
    rt_python_t v = opts->python;
    memset(&rt__mode, 0, sizeof rt__mode);
    rt__mode.python = v;
    rt__mode.gc_layout = opts->gc_layout;
    rt__mode.refcount = opts->refcount;
    if (v == RT_PY_311) {
        rt__mode.str_header = 48;
        rt__mode.function_size = 136;
        rt__mode.code_size = 192;
        rt__mode.class_size = 944;
        rt__mode.instance_size = 24;
    } else {
        rt__mode.str_header = 40;
        rt__mode.function_size = 144;
        rt__mode.code_size = 200;
        rt__mode.class_size = 960;
        rt__mode.instance_size = 16;
        rt__mode.immortal_statics = 1;
        rt__mode.immortal_interned = 1;
        rt__mode.gc_immortal_to_permanent = 1;
    }
}

void
rt_opts_default(rt_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->python = RT_PY_DEFAULT;
    const char *s = getenv("COWLAB_GC_LAYOUT");
    if (s != NULL && *s && rt_gc_layout_parse(s, &o->gc_layout) < 0)
        o->gc_layout = (rt_gc_layout_t)-1;
    s = getenv("COWLAB_REFCOUNT");
    if (s != NULL && *s && rt_refcount_parse(s, &o->refcount) < 0)
        o->refcount = (rt_refcount_t)-1;
}

static const char *const layout_names[] = { "inline", "side", "bitmap" };
static const char *const refcount_names[] = { "inline", "split" };

int
rt_gc_layout_parse(const char *s, rt_gc_layout_t *out)
{
    for (int i = 0; s != NULL && i < 3; i++)
        if (strcmp(s, layout_names[i]) == 0) {
            *out = (rt_gc_layout_t)i;
            return 0;
        }
    return -1;
}

const char *
rt_gc_layout_name(rt_gc_layout_t v)
{
    return (unsigned)v < 3 ? layout_names[v] : "?";
}

int
rt_refcount_parse(const char *s, rt_refcount_t *out)
{
    for (int i = 0; s != NULL && i < 2; i++)
        if (strcmp(s, refcount_names[i]) == 0) {
            *out = (rt_refcount_t)i;
            return 0;
        }
    return -1;
}

const char *
rt_refcount_name(rt_refcount_t v)
{
    return (unsigned)v < 2 ? refcount_names[v] : "?";
}

int
rt_python_parse(const char *s, rt_python_t *out)
{
    if (s == NULL)
        return -1;
    if (strcmp(s, "3.11") == 0 || strcmp(s, "311") == 0)
        *out = RT_PY_311;
    else if (strcmp(s, "3.12") == 0 || strcmp(s, "312") == 0)
        *out = RT_PY_312;
    else
        return -1;
    return 0;
}

const char *
rt_python_name(rt_python_t v)
{
    return v == RT_PY_311 ? "3.11" : "3.12";
}

/* ---- object memory ----------------------------------------------------
 * Under RT_MALLOC_BYPASS every object is a malloc() block, so the
 * sanitizers see each one; the blocks are chained so that finalization
 * can release the ones it leaves (immortals), as munmap does otherwise.
 * Fault injection (mem_fail_after) fails these as it fails mem_alloc(),
 * so the sanitizer build runs the out-of-memory paths too. */

#ifdef RT_MALLOC_BYPASS
typedef struct bypass {
    struct bypass *prev, *next;
} bypass_t;
static bypass_t bypass_all = { &bypass_all, &bypass_all };

void *
rt__obj_alloc(size_t size)
{
    if (rt__fail_now())
        return NULL;
    bypass_t *b = malloc(sizeof(bypass_t) + size);
    if (b == NULL)
        return NULL;
    b->next = bypass_all.next;
    b->prev = &bypass_all;
    bypass_all.next->prev = b;
    bypass_all.next = b;
    return b + 1;
}

void
rt__obj_free(void *p)
{
    if (p == NULL)
        return;
    bypass_t *b = (bypass_t *)p - 1;
    b->prev->next = b->next;
    b->next->prev = b->prev;
    free(b);
}

void *
rt__obj_realloc(void *p, size_t size)
{
    if (p == NULL)
        return rt__obj_alloc(size);
    if (rt__fail_now())
        return NULL;                /* the block is left as it was */
    bypass_t *b = (bypass_t *)p - 1;
    bypass_t *prev = b->prev, *next = b->next;
    bypass_t *nb = realloc(b, sizeof(bypass_t) + size);
    if (nb == NULL)
        return NULL;
    prev->next = nb;
    next->prev = nb;
    return nb + 1;
}

void
rt__obj_release_all(void)
{
    while (bypass_all.next != &bypass_all)
        rt__obj_free(bypass_all.next + 1);
}
#else
void *
rt__obj_alloc(size_t size)
{
    return mem_alloc(size);
}

void
rt__obj_free(void *p)
{
    mem_free(p);
}

void *
rt__obj_realloc(void *p, size_t size)
{
    return mem_realloc(p, size);
}

void
rt__obj_release_all(void)
{
    /* mem_fini() unmaps the arenas. */
}
#endif

void
rt__obj_init(rt_obj_t *o, rt_type_t *type)
{
    o->refcnt = 1;
    o->type = type;
    rt__heap->nobjects++;
}

void
rt_dealloc(rt_obj_t *o)
{
    RT_ASSERT(o->refcnt == 0);
    o->type->dealloc(o);
}

/* Atoms' memory goes straight back. */
static void
atom_dealloc(rt_obj_t *o)
{

    rt__heap->nobjects--;
    rt__heap->ndeallocs++;
    rt__obj_free(o);
}

/* ---- trashcan ---------------------------------------------------------
 * Freeing a container decrefs its items, which may free containers, and
 * so on: a chain of a million nested lists would recurse a million deep.
 * Past RT_TRASH_LIMIT nested deallocations the object is put aside on
 * trash_later (linked through its gc_head prev, it is untracked, so next
 * stays 0) and freed by the outermost dealloc once it has unwound. */
#define RT_TRASH_LIMIT 50

int
rt__trash_begin(rt_obj_t *o)
{
    rt_heap_t *h = rt__heap;
    if (h->trash_nesting >= RT_TRASH_LIMIT) {
        if (rt__mode.gc_layout == RT_GC_INLINE) {
            RT_WK_GCW(RT_AS_GC(o));
            RT_AS_GC(o)->prev = (uintptr_t)h->trash_later;
        } else {
            /* No link of the collector's in the object: the dead
             * object's refcount field carries the chain. */
            RT_WK_PAYLOAD_AT(&o->refcnt);
            o->refcnt = (intptr_t)h->trash_later;
        }
        h->trash_later = o;
        return 0;
    }
    h->trash_nesting++;
    return 1;
}

void
rt__trash_end(void)
{
    rt_heap_t *h = rt__heap;
    h->trash_nesting--;
    if (h->trash_nesting > 0 || h->trash_draining)
        return;
    h->trash_draining = 1;
    while (h->trash_later != NULL) {
        rt_obj_t *o = h->trash_later;
        if (rt__mode.gc_layout == RT_GC_INLINE) {
            h->trash_later = (rt_obj_t *)RT_AS_GC(o)->prev;
        } else {
            h->trash_later = (rt_obj_t *)o->refcnt;
            o->refcnt = 0;
        }
        o->type->dealloc(o);        /* nesting is back to 0 here */
    }
    h->trash_draining = 0;
}

/* ---- None and bool ---------------------------------------------------- */

static void
singleton_dealloc(rt_obj_t *o)
{
    /* Static: the heap's own reference never goes (a bug if it does). */
    (void)o;
    RT_ASSERT(!"a static singleton reached refcount 0");
}

rt_type_t rt_none_type = { "NoneType", 0, singleton_dealloc, NULL, NULL,
                           NULL, NULL };
rt_type_t rt_bool_type = { "bool", 0, singleton_dealloc, NULL, NULL,
                           NULL, NULL };

rt_obj_t *rt_none(rt_heap_t *h) { return h->none; }
rt_obj_t *rt_true(rt_heap_t *h) { return h->true_; }
rt_obj_t *rt_false(rt_heap_t *h) { return h->false_; }

/* ---- int -------------------------------------------------------------- */

/* CPython's PyLongObject is 24 bytes of header (refcount, type, size)
 * and 30-bit digits of 4 bytes: 28 bytes below 2**30, 32 below 2**60.
 * The model keeps the value in an int64 and allocates what CPython would
 * (never less than its own 32-byte struct; the size class is the same). */
typedef struct {
    rt_obj_t ob;
    intptr_t ndigits;
    int64_t value;
} int_obj_t;

rt_type_t rt_int_type = { "int", 0, atom_dealloc, NULL, NULL, NULL, NULL };

static size_t
int_size(int64_t v)
{
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t nd = 1;
    while (m >>= 30)
        nd++;
    size_t n = 24 + 4 * nd;
    return n < sizeof(int_obj_t) ? sizeof(int_obj_t) : n;
}

rt_obj_t *
rt__int_alloc(int64_t v)
{
    int_obj_t *o = rt__obj_alloc(int_size(v));
    if (o == NULL)
        return NULL;
    rt__obj_init(&o->ob, &rt_int_type);
    o->ndigits = (intptr_t)(int_size(v) - 24) / 4;
    o->value = v;
    return &o->ob;
}

/* ---- static singletons -------------------------------------------------
 * None, True, False and the small ints are static objects in CPython (in
 * its binary's data), never in the object allocator: the same here.  They
 * are mortal in 3.11 (every reference writes their refcount, in static
 * memory) and immortal in 3.12.  The heap holds one reference to each
 * forever, so a mortal one never reaches zero. */

typedef struct {
    rt_obj_t ob;
    intptr_t value;
} static_obj_t;

static static_obj_t none_s, true_s, false_s;
static int_obj_t small_s[RT_NSMALLNEG + RT_NSMALLPOS];

static void
static_init(rt_obj_t *o, rt_type_t *type)
{
    o->type = type;
    o->refcnt = rt__mode.immortal_statics ? RT_IMMORTAL_REFCNT : 1;
}

void
rt__statics_init(rt_heap_t *h)
{
    static_init(&none_s.ob, &rt_none_type);
    static_init(&true_s.ob, &rt_bool_type);
    true_s.value = 1;
    static_init(&false_s.ob, &rt_bool_type);
    h->none = &none_s.ob;
    h->true_ = &true_s.ob;
    h->false_ = &false_s.ob;
    for (int i = 0; i < RT_NSMALLNEG + RT_NSMALLPOS; i++) {
        static_init(&small_s[i].ob, &rt_int_type);
        small_s[i].ndigits = 1;
        small_s[i].value = i - RT_NSMALLNEG;
        h->small_ints[i] = &small_s[i].ob;
    }
}

int
rt__is_static(const rt_obj_t *o)
{
    return o == &none_s.ob || o == &true_s.ob || o == &false_s.ob
           || (o >= &small_s[0].ob
               && o <= &small_s[RT_NSMALLNEG + RT_NSMALLPOS - 1].ob)
           || o == rt__heap->object_class;
}

rt_obj_t *
rt_int_new(rt_heap_t *h, int64_t v)
{
    if (v >= -RT_NSMALLNEG && v < RT_NSMALLPOS && h->small_ints[0]) {
        rt_obj_t *o = h->small_ints[v + RT_NSMALLNEG];
        rt_incref(o);
        return o;
    }
    return rt__int_alloc(v);
}

int64_t
rt_int_value(const rt_obj_t *o)
{
    return ((const int_obj_t *)o)->value;
}

/* ---- float ------------------------------------------------------------ */

typedef struct {
    rt_obj_t ob;
    double value;
} float_obj_t;

rt_type_t rt_float_type = { "float", 0, atom_dealloc, NULL, NULL, NULL,
                            NULL };

rt_obj_t *
rt_float_new(rt_heap_t *h, double v)
{
    (void)h;
    float_obj_t *o = rt__obj_alloc(sizeof(float_obj_t));
    if (o == NULL)
        return NULL;
    rt__obj_init(&o->ob, &rt_float_type);
    o->value = v;
    return &o->ob;
}

double
rt_float_value(const rt_obj_t *o)
{
    return ((const float_obj_t *)o)->value;
}

/* ---- str and bytes ---------------------------------------------------- */

/* A compact ASCII str (PyASCIIObject): refcount, type, length, hash,
 * state; 3.11 adds a wstr pointer.  The text and a NUL follow the header
 * (rt__mode.str_header bytes): 49 + len bytes in 3.11, 41 + len in 3.12.
 * The model handles ASCII text only (every str the workloads make). */
typedef struct {
    rt_obj_t ob;
    intptr_t len;
    intptr_t hash;              /* -1 until first asked, then cached */
    intptr_t interned;          /* CPython's state bits */
} str_obj_t;

#define STR_DATA(o)  ((char *)(o) + rt__mode.str_header)

typedef struct {
    rt_obj_t ob;
    intptr_t len;
    intptr_t hash;
    uint8_t data[];
} bytes_obj_t;

static void
str_dealloc(rt_obj_t *o)
{
    /* An interned string is referenced by the interned dict, so it dies
     * only when finalization clears that dict. */
    atom_dealloc(o);
}

rt_type_t rt_str_type = { "str", 0, str_dealloc, NULL, NULL, NULL, NULL };
rt_type_t rt_bytes_type = { "bytes", 0, atom_dealloc, NULL, NULL, NULL,
                            NULL };

static intptr_t
hash_bytes(const void *p, size_t len)
{
    /* FNV-1a, 64 bits: quick and good enough for non-adversarial keys. */
    const uint8_t *s = p;
    uint64_t x = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        x ^= s[i];
        x *= 0x100000001b3ULL;
    }
    intptr_t r = (intptr_t)(x >> 1);
    return r == -1 ? -2 : r;
}

intptr_t
rt__hash_text(const char *s, size_t len)
{
    return hash_bytes(s, len);
}

rt_obj_t *
rt_str_new(rt_heap_t *h, const char *s, size_t len)
{
    (void)h;
    str_obj_t *o = rt__obj_alloc(rt__mode.str_header + len + 1);
    if (o == NULL)
        return NULL;
    rt__obj_init(&o->ob, &rt_str_type);
    o->len = (intptr_t)len;
    o->hash = -1;
    o->interned = 0;
    if (rt__mode.str_header > sizeof(str_obj_t))        /* wstr */
        memset(o + 1, 0, rt__mode.str_header - sizeof(str_obj_t));
    memcpy(STR_DATA(o), s, len);
    STR_DATA(o)[len] = '\0';
    return &o->ob;
}

rt_obj_t *
rt_str_from(rt_heap_t *h, const char *s)
{
    return rt_str_new(h, s, strlen(s));
}

rt_obj_t *
rt_str_intern(rt_heap_t *h, const char *s, size_t len)
{
    rt_obj_t *tmp = rt_str_new(h, s, len);
    if (tmp == NULL)
        return NULL;
    rt_obj_t *found = rt_dict_get(h->interned, tmp);
    if (found != NULL) {
        rt_decref(tmp);
        rt_incref(found);
        return found;
    }
    if (rt_dict_set(h->interned, tmp, tmp) < 0) {
        rt_decref(tmp);
        return NULL;
    }
    rt__str_set_interned(tmp);
    return tmp;
}

/* 3.12 makes every interned string immortal (SSTATE_INTERNED_IMMORTAL):
 * references to identifiers, the commonest of all, write nothing. */
void
rt__str_set_interned(rt_obj_t *o)
{
    ((str_obj_t *)o)->interned = 1;
    if (rt__mode.immortal_interned)
        rt_immortalize(o);
}

void
rt__str_set_uninterned(rt_obj_t *o)
{
    RT_WK_PAYLOAD_AT(&((str_obj_t *)o)->interned);
    ((str_obj_t *)o)->interned = 0;
}

int
rt__str_is_interned(const rt_obj_t *o)
{
    return o->type == &rt_str_type && ((const str_obj_t *)o)->interned;
}

const char *
rt_str_data(const rt_obj_t *o)
{
    return STR_DATA(o);
}

size_t
rt_str_len(const rt_obj_t *o)
{
    return (size_t)((const str_obj_t *)o)->len;
}

rt_obj_t *
rt_bytes_new(rt_heap_t *h, const void *p, size_t len)
{
    (void)h;
    bytes_obj_t *o = rt__obj_alloc(sizeof(bytes_obj_t) + len + 1);
    if (o == NULL)
        return NULL;
    rt__obj_init(&o->ob, &rt_bytes_type);
    o->len = (intptr_t)len;
    o->hash = -1;
    if (len)
        memcpy(o->data, p, len);
    o->data[len] = 0;
    return &o->ob;
}

size_t
rt_bytes_len(const rt_obj_t *o)
{
    return (size_t)((const bytes_obj_t *)o)->len;
}

const uint8_t *
rt_bytes_data(const rt_obj_t *o)
{
    return ((const bytes_obj_t *)o)->data;
}

/* ---- hashing and equality --------------------------------------------- */

int
rt__str_cache_hash(rt_obj_t *o)
{
    if (o->type != &rt_str_type || ((str_obj_t *)o)->hash != -1)
        return 0;
    rt_hash(o);
    return 1;
}

intptr_t
rt_hash(rt_obj_t *o)
{
    if (o->type == &rt_str_type) {
        str_obj_t *s = (str_obj_t *)o;
        if (s->hash == -1) {        /* a write: the first hash caches */
            RT_WK_PAYLOAD_AT(&s->hash);
            s->hash = hash_bytes(STR_DATA(s), (size_t)s->len);
        }
        return s->hash;
    }
    if (o->type == &rt_int_type) {
        int64_t v = ((int_obj_t *)o)->value;
        return v == -1 ? -2 : (intptr_t)v;
    }
    if (o->type == &rt_bytes_type) {
        bytes_obj_t *b = (bytes_obj_t *)o;
        if (b->hash == -1) {
            RT_WK_PAYLOAD_AT(&b->hash);
            b->hash = hash_bytes(b->data, (size_t)b->len);
        }
        return b->hash;
    }
    if (o->type == &rt_float_type) {
        double d = ((float_obj_t *)o)->value;
        if (d == (double)(int64_t)d) {
            intptr_t v = (intptr_t)(int64_t)d;
            return v == -1 ? -2 : v;
        }
        return hash_bytes(&d, sizeof(d));
    }
    if (o->type == &rt_tuple_type) {
        /* CPython's xxHash-based tuple hash, in spirit. */
        uint64_t acc = 0x27d4eb2f165667c5ULL;
        for (size_t i = 0; i < rt_tuple_len(o); i++) {
            intptr_t ih = rt_hash(rt_tuple_get(o, i));
            if (ih == -1)
                return -1;
            acc += (uint64_t)ih * 0xc2b2ae3d27d4eb4fULL;
            acc = (acc << 31) | (acc >> 33);
            acc *= 0x9e3779b185ebca87ULL;
        }
        intptr_t r = (intptr_t)(acc >> 1);
        return r == -1 ? -2 : r;
    }
    if (o->type == &rt_none_type || o->type == &rt_bool_type
        || o->type == &rt_class_type || o->type == &rt_function_type
        || o->type == &rt_module_type || o->type == &rt_code_type
        || o->type == &rt_weakref_type)
        return (intptr_t)((uintptr_t)o >> 4);
    return -1;                      /* list, dict, instances */
}

int
rt_eq(rt_obj_t *a, rt_obj_t *b)
{
    if (a == b)
        return 1;
    if (a->type != b->type) {
        if (a->type == &rt_int_type && b->type == &rt_float_type)
            return (double)rt_int_value(a) == rt_float_value(b);
        if (a->type == &rt_float_type && b->type == &rt_int_type)
            return rt_float_value(a) == (double)rt_int_value(b);
        return 0;
    }
    if (a->type == &rt_str_type) {
        str_obj_t *x = (str_obj_t *)a, *y = (str_obj_t *)b;
        return x->len == y->len && memcmp(STR_DATA(x), STR_DATA(y),
                                          (size_t)x->len) == 0;
    }
    if (a->type == &rt_bytes_type) {
        bytes_obj_t *x = (bytes_obj_t *)a, *y = (bytes_obj_t *)b;
        return x->len == y->len && memcmp(x->data, y->data,
                                          (size_t)x->len) == 0;
    }
    if (a->type == &rt_int_type)
        return rt_int_value(a) == rt_int_value(b);
    if (a->type == &rt_float_type)
        return rt_float_value(a) == rt_float_value(b);
    if (a->type == &rt_tuple_type) {
        size_t n = rt_tuple_len(a);
        if (n != rt_tuple_len(b))
            return 0;
        for (size_t i = 0; i < n; i++)
            if (!rt_eq(rt_tuple_get(a, i), rt_tuple_get(b, i)))
                return 0;
        return 1;
    }
    return 0;
}

/* ---- immortality ------------------------------------------------------ */

void
rt_immortalize(rt_obj_t *o)
{
    rt__rc_unshare(o);
    RT_WK_NOTE(&o->refcnt, RT_WK_REFCOUNT);
    o->refcnt = RT_IMMORTAL_REFCNT;
}
