/*
 * heapsize.h -- what the heap is made of: objects and allocator bytes per
 * type (rt_kind), for meta.json and `make validate`'s side-by-side with
 * CPython.  The walk reads the heap and writes nothing to it.
 */
#ifndef MS_HEAPSIZE_H
#define MS_HEAPSIZE_H

#include <jansson.h>

#include "object.h"

/* {"<type>": {"objects": N, "bytes": B}, ...} over every object
 * rt_heap_walk() reaches, bytes being the blocks each object owns (its
 * own, a list's item array, a dict's key table, an instance's values
 * block, a class's shared keys); NULL when out of memory. */
json_t *ms_heap_by_type(rt_heap_t *h);

#endif
