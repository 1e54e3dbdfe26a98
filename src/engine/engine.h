/* engine/engine.h — internals of the engine that tests and other modules may look at (not part
 * of the public API in include/tallow/engine.h). */
#ifndef TL_ENGINE_INTERNAL_H
#define TL_ENGINE_INTERNAL_H

#include "model/model.h"
#include "tallow/engine.h"

#define TL_KV_PAGE_SIZE 16 /* tokens per KV page */
/* The KV pool starts at min(ctx_len, 512) tokens per slot (env TALLOW_KV_FIRST_TOKENS overrides
 * the 512, for tests) and doubles when a pass needs more. */

int tl_engine_pages_used(const tl_engine *e);   /* KV pages referenced by slots or snapshots */
int tl_engine_pages_total(const tl_engine *e);
tl_model *tl_engine_model(tl_engine *e);
tl_backend *tl_engine_backend(tl_engine *e);

#endif
