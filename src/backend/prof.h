/* prof.h — time every op of a backend (TALLOW_PROFILE=1; see prof.c). */
#ifndef TL_BACKEND_PROF_H
#define TL_BACKEND_PROF_H

#include "backend/backend.h"

/* A backend that forwards to `in` and times each op; destroying it prints the table to stderr
 * and destroys `in`. Returns `in` itself when out of memory. */
tl_backend *tl_backend_prof_wrap(tl_backend *in);
/* The backend a wrapper forwards to (be itself when it is not a wrapper). */
tl_backend *tl_backend_prof_inner(tl_backend *be);

#endif
