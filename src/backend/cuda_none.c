/* cuda_none.c — the CUDA entry points when tallow is built without nvcc. */
#include "backend/backend.h"

#ifndef TL_HAVE_CUDA
int tl_backend_cuda_available(void) { return 0; }

tl_backend *tl_backend_cuda_new(int device, tl_err *err) {
    (void)device;
    tl_err_set(err, TL_EUNSUP, "this tallow was built without CUDA (nvcc was not found at build "
                               "time); use --device cpu");
    return NULL;
}
#endif
