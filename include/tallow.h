/* tallow.h — the public C API of libtallow.
 *
 * Layers (docs/ARCHITECTURE.md): store (find and read model files) -> backend (ops on
 * buffers: CPU, CUDA) -> model (one file per architecture) -> engine (slots, batches,
 * KV pages, recurrent state) ; beside them tokenizer, chat (templates), sample.
 * Every call returns 0 or a negative TL_E* code and fills a tl_err. */
#ifndef TALLOW_H
#define TALLOW_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TALLOW_VERSION "0.1.0"

enum {
    TL_OK = 0,
    TL_EINVAL = 1,   /* bad argument or value from the user */
    TL_EIO = 2,      /* file cannot be opened / read */
    TL_EFORMAT = 3,  /* file content is malformed */
    TL_EUNSUP = 4,   /* well-formed but not supported (architecture, dtype, component) */
    TL_ENOMEM = 5,   /* allocation failed or a memory cap would be passed */
    TL_ENOTFOUND = 6,/* model / file / tensor not there */
    TL_ELIMIT = 7,   /* a configured limit (size, depth, iterations, context) was reached */
    TL_ERUNTIME = 8, /* raised at run time (template raise_exception, device error) */
    TL_ENET = 9,     /* network / HTTP */
    TL_EBUSY = 10,   /* no free slot / queue full */
};

typedef struct tl_err {
    int code;
    char msg[1024];
} tl_err;

/* ---- memory accounting ---- */
typedef enum {
    TL_MEM_WEIGHTS = 0, /* resident model weights (repacked copies, device uploads) */
    TL_MEM_KV,          /* KV cache pages */
    TL_MEM_STATE,       /* recurrent + conv state, snapshots */
    TL_MEM_SCRATCH,     /* activations, logits, temporaries */
    TL_MEM_OTHER,       /* tokenizer, templates, server buffers */
    TL_MEM_KINDS
} tl_mem_kind;

typedef struct tl_mem_stats {
    int64_t cur[TL_MEM_KINDS];
    int64_t peak[TL_MEM_KINDS];
    int64_t cur_total;
    int64_t peak_total;
} tl_mem_stats;

void tl_mem_get(tl_mem_stats *out);
void tl_mem_reset_peak(void);
const char *tl_mem_kind_name(tl_mem_kind k);

#ifdef __cplusplus
}
#endif

/* Module APIs. Each header is self-contained. */
#include "tallow/engine.h"
#include "tallow/tokenizer.h"
#include "tallow/chat.h"
#include "tallow/sample.h"

#endif
