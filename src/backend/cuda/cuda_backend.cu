// cuda_backend.cu — the CUDA backend's entry points (extern "C"; no C file includes a CUDA
// header). This first step only finds the device: the ops are not written yet, so
// tl_backend_cuda_new reports that plainly and callers fall back to the CPU.
#include <cuda_runtime.h>
#include <stdio.h>

extern "C" {
#include "backend/backend.h"

int tl_backend_cuda_available(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n > 0;
}

tl_backend *tl_backend_cuda_new(int device, tl_err *err) {
    int n = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    if (rc != cudaSuccess || n == 0) {
        cudaGetLastError();
        tl_err_set(err, TL_EUNSUP, "no CUDA device is available (%s)",
                   rc != cudaSuccess ? cudaGetErrorString(rc) : "0 devices");
        return NULL;
    }
    if (device < 0 || device >= n) {
        tl_err_set(err, TL_EINVAL, "CUDA device %d does not exist (%d present)", device, n);
        return NULL;
    }
    cudaDeviceProp p;
    cudaGetDeviceProperties(&p, device);
    tl_err_set(err, TL_EUNSUP,
               "found %s, but the CUDA backend's ops are not built yet in this version; "
               "use --device cpu", p.name);
    return NULL;
}
}
