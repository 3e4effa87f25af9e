/*
 * dict.c -- the compact, insertion-ordered hash table of CPython 3.6+.
 *
 * A dict object points to a keys block (one allocation): a table of
 * indices (1, 2, 4 or 8 bytes each, by table size) followed by an array of
 * entries in insertion order.  Lookup probes the indices with CPython's
 * perturbation scheme; an index is DKIX_EMPTY, DKIX_DUMMY (deleted) or the
 * entry's position.  Deleting leaves a hole in the entries; a resize
 * (to used * 3, CPython 3.11's GROWTH_RATE) compacts them.
 *
 * Tracking (CPython's MAINTAIN_TRACKING): a new dict is untracked and stays
 * so while it holds only atoms; it is tracked the first time it receives a
 * key or value that may be tracked.  A full collection untracks dicts that
 * hold only atoms again (rt__dict_maybe_untrack).
 */
#include "object.h"

#include <string.h>

#include "internal.h"

#define DKIX_EMPTY  (-1)
#define DKIX_DUMMY  (-2)
#define DICT_MINSIZE 8
#define PERTURB_SHIFT 5

typedef struct {
    intptr_t hash;
    rt_obj_t *key;              /* NULL: a deleted entry */
    rt_obj_t *value;
} entry_t;

typedef struct {
    uint8_t log2_size;
    uint8_t log2_index_bytes;
    uint8_t unicode;            /* every key is a str (DK_IS_UNICODE) */
    intptr_t usable;            /* entries that may still be appended */
    intptr_t nentries;          /* entries used, holes included */
    uint8_t indices[];          /* then entry_t entries[] */
} keys_t;

typedef struct {
    rt_obj_t ob;
    intptr_t used;
    keys_t *keys;
} dict_obj_t;

#define D(o) ((dict_obj_t *)(o))
#define DK_SIZE(k)      ((size_t)1 << (k)->log2_size)
#define DK_ENTRIES(k)   ((entry_t *)(&(k)->indices[(size_t)1 \
                                                   << (k)->log2_index_bytes]))
#define USABLE_FRACTION(n)  (((n) << 1) / 3)

static intptr_t
ix_get(const keys_t *k, size_t i)
{
    switch (k->log2_size <= 7 ? 0 : k->log2_size <= 15 ? 1
            : k->log2_size <= 31 ? 2 : 3) {
    case 0: return ((const int8_t *)k->indices)[i];
    case 1: return ((const int16_t *)(const void *)k->indices)[i];
    case 2: return ((const int32_t *)(const void *)k->indices)[i];
    default: return ((const int64_t *)(const void *)k->indices)[i];
    }
}

static void
ix_set(keys_t *k, size_t i, intptr_t ix)
{
    RT_WK_PAYLOAD_AT(k->indices + (i << (k->log2_index_bytes
                                         - k->log2_size)));
    switch (k->log2_size <= 7 ? 0 : k->log2_size <= 15 ? 1
            : k->log2_size <= 31 ? 2 : 3) {
    case 0: ((int8_t *)k->indices)[i] = (int8_t)ix; break;
    case 1: ((int16_t *)(void *)k->indices)[i] = (int16_t)ix; break;
    case 2: ((int32_t *)(void *)k->indices)[i] = (int32_t)ix; break;
    default: ((int64_t *)(void *)k->indices)[i] = (int64_t)ix; break;
    }
}

static keys_t *
keys_new(uint8_t log2_size)
{
    uint8_t width = log2_size <= 7 ? 0 : log2_size <= 15 ? 1
                    : log2_size <= 31 ? 2 : 3;
    size_t size = (size_t)1 << log2_size;
    size_t usable = USABLE_FRACTION(size);
    size_t ixbytes = size << width;
    keys_t *k = rt__obj_alloc(sizeof(keys_t) + ixbytes
                              + usable * sizeof(entry_t));
    if (k == NULL)
        return NULL;
    k->log2_size = log2_size;
    k->log2_index_bytes = (uint8_t)(log2_size + width);
    k->usable = (intptr_t)usable;
    k->nentries = 0;
    k->unicode = 1;
    memset(k->indices, 0xff, ixbytes);     /* every index DKIX_EMPTY */
    return k;
}

/* Find key: its slot in the index table and its entry index (or EMPTY). */
static intptr_t
lookup(keys_t *k, rt_obj_t *key, intptr_t hash, size_t *slot)
{
    size_t mask = DK_SIZE(k) - 1;
    size_t i = (size_t)hash & mask;
    size_t perturb = (size_t)hash;
    entry_t *ep0 = DK_ENTRIES(k);
    for (;;) {
        intptr_t ix = ix_get(k, i);
        if (ix == DKIX_EMPTY) {
            *slot = i;
            return DKIX_EMPTY;
        }
        if (ix >= 0) {
            entry_t *ep = &ep0[ix];
            if (ep->key == key
                || (ep->hash == hash && rt_eq(ep->key, key))) {
                *slot = i;
                return ix;
            }
        }
        perturb >>= PERTURB_SHIFT;
        i = (i * 5 + perturb + 1) & mask;
    }
}

/* First slot whose index is EMPTY or DUMMY, for a key known absent. */
static size_t
find_empty_slot(keys_t *k, intptr_t hash)
{
    size_t mask = DK_SIZE(k) - 1;
    size_t i = (size_t)hash & mask;
    size_t perturb = (size_t)hash;
    while (ix_get(k, i) >= 0) {
        perturb >>= PERTURB_SHIFT;
        i = (i * 5 + perturb + 1) & mask;
    }
    return i;
}

static int
dict_resize(dict_obj_t *d, size_t minsize)
{
    uint8_t log2 = 3;
    while (((size_t)1 << log2) < minsize)
        log2++;
    keys_t *old = d->keys;
    keys_t *k = keys_new(log2);
    if (k == NULL)
        return -1;
    entry_t *src = DK_ENTRIES(old), *dst = DK_ENTRIES(k);
    intptr_t n = 0;
    for (intptr_t i = 0; i < old->nentries; i++) {
        if (src[i].key == NULL)
            continue;
        dst[n] = src[i];
        ix_set(k, find_empty_slot(k, src[i].hash), n);
        n++;
    }
    k->nentries = n;
    k->usable -= n;
    k->unicode = old->unicode;
    RT_WK_PAYLOAD_AT(&d->keys);
    d->keys = k;
    rt__obj_free(old);
    return 0;
}

static void
maintain_tracking(rt_obj_t *d, rt_obj_t *k, rt_obj_t *v)
{
    if (!gc_is_tracked(d) && (rt__may_be_tracked(k) || rt__may_be_tracked(v)))
        gc_track(d);
}

static void
dict_dealloc(rt_obj_t *o)
{
    gc_untrack(o);
    if (!rt__trash_begin(o))
        return;
    keys_t *k = D(o)->keys;
    entry_t *ep = DK_ENTRIES(k);
    for (intptr_t i = 0; i < k->nentries; i++) {
        if (ep[i].key) {
            rt_decref(ep[i].key);
            rt_decref(ep[i].value);
        }
    }
    rt__obj_free(k);
    rt__gc_free(o);
    rt__trash_end();
}

/* As CPython 3.11: a table whose keys are all str visits only the values
 * (strs hold no references), so a collection reads fewer objects. */
static int
dict_traverse(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    keys_t *k = D(o)->keys;
    entry_t *ep = DK_ENTRIES(k);
    int unicode = k->unicode;
    for (intptr_t i = 0; i < k->nentries; i++) {
        if (ep[i].key == NULL)
            continue;
        int r = visit(ep[i].value, arg);
        if (r == 0 && !unicode)
            r = visit(ep[i].key, arg);
        if (r)
            return r;
    }
    return 0;
}

void
rt_dict_clear(rt_obj_t *o)
{
    keys_t *fresh = keys_new(3), *old = D(o)->keys;
    if (fresh == NULL) {
        /* No memory for a new table: empty the old one in place. */
        entry_t *ep = DK_ENTRIES(old);
        for (intptr_t i = 0; i < old->nentries; i++) {
            rt_obj_t *key = ep[i].key, *v = ep[i].value;
            RT_WK_SPAN(&ep[i], sizeof ep[i], RT_WK_PAYLOAD);
            ep[i].key = ep[i].value = NULL;
            rt_xdecref(key);
            rt_xdecref(v);
        }
        RT_WK_SPAN(old, sizeof *old, RT_WK_PAYLOAD);
        RT_WK_SPAN(old->indices, (size_t)1 << old->log2_index_bytes,
                   RT_WK_PAYLOAD);
        memset(old->indices, 0xff, (size_t)1 << old->log2_index_bytes);
        old->usable += old->nentries;
        old->nentries = 0;
        RT_WK_PAYLOAD_AT(&D(o)->used);
        D(o)->used = 0;
        return;
    }
    RT_WK_PAYLOAD_AT(&D(o)->keys);
    RT_WK_PAYLOAD_AT(&D(o)->used);
    D(o)->keys = fresh;
    D(o)->used = 0;
    entry_t *ep = DK_ENTRIES(old);
    for (intptr_t i = 0; i < old->nentries; i++) {
        if (ep[i].key) {
            rt_decref(ep[i].key);
            rt_decref(ep[i].value);
        }
    }
    rt__obj_free(old);
}

static int
dict_clear(rt_obj_t *o)
{
    rt_dict_clear(o);
    return 0;
}

rt_type_t rt_dict_type = { "dict", RT_TPFLAG_GC, dict_dealloc,
                           dict_traverse, dict_clear };

rt_obj_t *
rt_dict_new(rt_heap_t *h)
{
    (void)h;
    keys_t *k = keys_new(3);
    if (k == NULL)
        return NULL;
    rt_obj_t *o = rt__gc_alloc(sizeof(dict_obj_t), &rt_dict_type);
    if (o == NULL) {
        rt__obj_free(k);
        return NULL;
    }
    D(o)->used = 0;
    D(o)->keys = k;
    return o;                       /* untracked until it holds a container */
}

int
rt_dict_set(rt_obj_t *o, rt_obj_t *key, rt_obj_t *v)
{
    dict_obj_t *d = D(o);
    intptr_t hash = rt_hash(key);
    size_t slot;
    if (hash == -1)
        return -1;
    intptr_t ix = lookup(d->keys, key, hash, &slot);
    if (ix >= 0) {
        entry_t *ep = &DK_ENTRIES(d->keys)[ix];
        rt_obj_t *old = ep->value;
        rt_incref(v);
        RT_WK_PAYLOAD_AT(&ep->value);
        ep->value = v;
        maintain_tracking(o, key, v);
        rt_decref(old);
        return 0;
    }
    if (d->keys->usable <= 0) {
        if (dict_resize(d, (size_t)d->used * 3) < 0)
            return -1;
    }
    keys_t *k = d->keys;
    slot = find_empty_slot(k, hash);
    entry_t *ep = &DK_ENTRIES(k)[k->nentries];
    rt_incref(key);
    rt_incref(v);
    RT_WK_SPAN(ep, sizeof *ep, RT_WK_PAYLOAD);
    RT_WK_SPAN(k, sizeof *k, RT_WK_PAYLOAD);
    RT_WK_PAYLOAD_AT(&d->used);
    ep->hash = hash;
    ep->key = key;
    ep->value = v;
    if (key->type != &rt_str_type)
        k->unicode = 0;
    ix_set(k, slot, k->nentries);
    k->nentries++;
    k->usable--;
    d->used++;
    maintain_tracking(o, key, v);
    return 0;
}

int
rt_dict_set_steal(rt_obj_t *d, rt_obj_t *k, rt_obj_t *v)
{
    int r = -1;
    if (k != NULL && v != NULL)
        r = rt_dict_set(d, k, v);
    rt_xdecref(k);
    rt_xdecref(v);
    return r;
}

int
rt_dict_set_str(rt_heap_t *h, rt_obj_t *d, const char *s, rt_obj_t *v)
{
    rt_obj_t *k = rt_str_intern(h, s, strlen(s));
    if (k == NULL)
        return -1;
    int r = rt_dict_set(d, k, v);
    rt_decref(k);
    return r;
}

rt_obj_t *
rt_dict_get(rt_obj_t *o, rt_obj_t *key)
{
    intptr_t hash = rt_hash(key);
    size_t slot;
    if (hash == -1)
        return NULL;
    intptr_t ix = lookup(D(o)->keys, key, hash, &slot);
    return ix >= 0 ? DK_ENTRIES(D(o)->keys)[ix].value : NULL;
}

rt_obj_t *
rt_dict_get_str(rt_heap_t *h, rt_obj_t *d, const char *s)
{
    rt_obj_t *k = rt_str_new(h, s, strlen(s));
    if (k == NULL)
        return NULL;
    rt_obj_t *v = rt_dict_get(d, k);
    rt_decref(k);
    return v;
}

int
rt_dict_del(rt_obj_t *o, rt_obj_t *key)
{
    dict_obj_t *d = D(o);
    intptr_t hash = rt_hash(key);
    size_t slot;
    if (hash == -1)
        return -1;
    intptr_t ix = lookup(d->keys, key, hash, &slot);
    if (ix < 0)
        return -1;
    entry_t *ep = &DK_ENTRIES(d->keys)[ix];
    rt_obj_t *k = ep->key, *v = ep->value;
    ix_set(d->keys, slot, DKIX_DUMMY);
    RT_WK_SPAN(ep, sizeof *ep, RT_WK_PAYLOAD);
    RT_WK_PAYLOAD_AT(&d->used);
    ep->key = ep->value = NULL;
    d->used--;
    rt_decref(k);
    rt_decref(v);
    return 0;
}

size_t
rt_dict_len(const rt_obj_t *o)
{
    return (size_t)D(o)->used;
}

size_t
rt_dict_keys_size(const rt_obj_t *o)
{
    return DK_SIZE(D(o)->keys);
}

int
rt_dict_next(rt_obj_t *o, size_t *pos, rt_obj_t **k, rt_obj_t **v)
{
    keys_t *keys = D(o)->keys;
    entry_t *ep = DK_ENTRIES(keys);
    while (*pos < (size_t)keys->nentries) {
        size_t i = (*pos)++;
        if (ep[i].key) {
            if (k)
                *k = ep[i].key;
            if (v)
                *v = ep[i].value;
            return 1;
        }
    }
    return 0;
}

void
rt__dict_maybe_untrack(rt_obj_t *o)
{
    keys_t *k = D(o)->keys;
    entry_t *ep = DK_ENTRIES(k);
    for (intptr_t i = 0; i < k->nentries; i++) {
        if (ep[i].key == NULL)
            continue;
        if (rt__may_be_tracked(ep[i].value)
            || (!k->unicode && rt__may_be_tracked(ep[i].key)))
            return;
    }
    gc_untrack(o);
}

void *
rt__dict_block(const rt_obj_t *o)
{
    return D(o)->keys;
}
