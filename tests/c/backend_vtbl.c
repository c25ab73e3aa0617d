/*
** backend_vtbl.c: a shared object that holds a vtable and the code its
** slots point to, for backend_test to load, find good, unload, and find
** again where the same addresses are mapped anew as plain data.
*/
typedef void (*slot_fn)(void);

/* every symbol is hidden by default (CMAKE_C_VISIBILITY_PRESET) */
#define EXPORT __attribute__((visibility("default")))

EXPORT const slot_fn *backend_vtbl(void);

static void slot(void) {}

static const slot_fn vtbl[16] = {
  slot, slot, slot, slot, slot, slot, slot, slot,
  slot, slot, slot, slot, slot, slot, slot, slot
};

EXPORT const slot_fn *backend_vtbl(void) { return vtbl; }
