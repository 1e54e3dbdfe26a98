// cuda_backend.cu — the CUDA backend: every op of src/backend/backend.h on one NVIDIA GPU
// (built for sm_90a). Entry points are extern "C"; no C file includes a CUDA header.
//
// Contract (same meaning as the scalar reference, src/backend/ref/; tests/cuda/ check it):
// - Buffers from alloc are device memory, zeroed, counted under the kind asked. All work runs
//   on the legacy default stream in call order, so to_host (cudaMemcpy) sees every earlier op.
// - Weights are uploaded once in their stored form: packed MLX affine words as bytes (bits
//   2,3,4,5,6,8, LSB-first bit stream, like tl_wdesc_dequant_row) with scales/biases widened
//   to f32; dense F32/F16/BF16 as stored. Counted as TL_MEM_WEIGHTS.
// - matmul: n <= CU_GEMV_MAX_N: 4/8-bit rows of whole 16-byte chunks take k_gemv_q (each
//   thread reads the chunks of 8 rows at once, 4 when n > 1, and shares its x chunk, held in
//   registers, between them; the folded form s·Σxq + b·Σx); dense BF16/F16 rows of whole
//   16-byte chunks the same way (k_gemv_h); other formats a warp per row, one element at a
//   time. Larger n:
//   the weight dequantized to f32 in slices (128 MB scratch) and cuBLAS SGEMM in plain FP32
//   (pedantic math: no TF32); if cuBLAS cannot start, a 64x64 tiled FMA GEMM.
// - tl_rows: rows_upload copies slot/pos to the device; an op given rows that were not
//   uploaded (or whose host arrays changed identity) uploads them itself.
// - tl_kv: kv_sync mirrors the page table; kv->dev points at the mirror. Ops given a kv with
//   no mirror make one.
// - attention: one 8-warp block per (row, head); when that gives few blocks over long contexts
//   (decode), the positions are split over blocks too and the partial softmaxes merged.
// - Gated DeltaNet: exact recurrence in fp32 per token; rows of a run (consecutive rows of one
//   slot) in order. dk <= 128: the state of 32 value columns of one head in the registers of a
//   4-warp block for the whole run; larger dk: one block per (run, head), state in global memory.
//   Runs are found on the host from rows->slot and uploaded once per distinct slot list.
// - Ops do not fail; a CUDA error inside one (a device fault) is a broken invariant: it is
//   printed and the process aborts through tl_panic. Allocation failures return NULL / error.
// - Accuracy: sums are f32 (the reference accumulates in double); the file is compiled with
//   --use_fast_math, so exp/log use the fast intrinsics. RoPE angles use double sincos.
// Validated on an NVIDIA H200 (make test-cuda; figures in docs/PERFORMANCE.md, ## CUDA).
#include <cuda_fp16.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "backend/backend.h"
#include "backend/ref/ref_gdn.h" /* TL_GDN_MAX_DK */
}

#define CU_GEMV_MAX_N 8   /* batches up to this many rows use the GEMV kernel */
#define CU_GEMV_NB 4      /* input rows per pass of the GEMV kernels */
#define CU_GEMV_R1 8      /* weight rows per thread in the 4/8-bit GEMV, one input row */
#define CU_GEMV_RN 4      /* the same for 2..CU_GEMV_MAX_N input rows (registers) */
#define CU_ATT_WARPS 8    /* warps per attention block */
#define CU_GDN_THREADS 256
#define CU_MAX_HEAD_DIM 512

static void cu_check(cudaError_t rc, const char *what, const char *file, int line) {
    if (rc == cudaSuccess) return;
    char msg[512];
    snprintf(msg, sizeof msg, "CUDA error in %s: %s", what, cudaGetErrorString(rc));
    tl_panic(file, line, msg);
}
#define CK(call) cu_check((call), #call, __FILE__, __LINE__)
#define CK_LAUNCH(name) cu_check(cudaGetLastError(), "launch of " name, __FILE__, __LINE__)

/* ---- context -------------------------------------------------------------------------------- */

typedef struct cu_rows {
    int32_t *slot, *pos;           /* device, cap each */
    size_t cap;
    int n;
    const int32_t *hslot, *hpos;   /* the host arrays they were copied from */
} cu_rows;

typedef struct cu_ctx {
    cu_rows up;        /* rows_upload */
    cu_rows tmp;       /* rows an op had to upload itself */
    int32_t *ids;      /* embed ids */
    size_t ids_cap;
    int32_t *runs;     /* gdn run starts (n_runs + 1) and slots (n_runs) */
    size_t runs_cap;
    int32_t *hruns;    /* host copy of the above */
    size_t hruns_cap;
    int32_t *runs_key; /* host: the rows->slot the device runs were made from (runs_n of them;
                        * -1: none), so the layers of one pass upload them once */
    size_t runs_key_cap;
    int runs_n, runs_nr, runs_one;
    int32_t *pt;       /* page table mirror */
    size_t pt_cap;
    cublasHandle_t blas; /* prefill GEMM; made at the first large matmul */
    int blas_state;      /* 0: not tried, 1: ready, -1: unavailable (tiled kernel instead) */
    float *deq;          /* f32 weight slice for cuBLAS, deq_cap floats */
    size_t deq_cap;
    float *att;          /* attention partials of split positions, att_cap floats */
    size_t att_cap;
} cu_ctx;

struct tl_wmat {
    tl_wdesc d;
    uint8_t *data;     /* device: rows * row_bytes */
    float *scales, *biases; /* device f32 [rows, ng] (affine) */
    size_t bytes;      /* counted */
};

/* Weight view passed to kernels by value. */
struct wdev {
    int kind, dtype, rows, cols, bits, gs, ng;
    size_t row_bytes;
    const uint8_t *data;
    const float *scales, *biases;
};

static wdev wdev_of(const tl_wmat *w) {
    wdev v;
    v.kind = w->d.kind;
    v.dtype = w->d.dtype;
    v.rows = w->d.rows;
    v.cols = w->d.cols;
    v.bits = w->d.bits;
    v.gs = w->d.group_size;
    v.ng = w->d.kind == TL_W_AFFINE ? w->d.cols / w->d.group_size : 0;
    v.row_bytes = w->d.row_bytes;
    v.data = w->data;
    v.scales = w->scales;
    v.biases = w->biases;
    return v;
}

/* Grow a device int32 buffer (contents not kept). */
static void grow_i32(int32_t **p, size_t *cap, size_t need) {
    if (need <= *cap) return;
    size_t n = need < 256 ? 256 : need * 2;
    if (*p) {
        CK(cudaFree(*p));
        tl_mem_add(TL_MEM_SCRATCH, -(int64_t)(*cap * sizeof(int32_t)));
    }
    *p = NULL;
    *cap = 0;
    CK(cudaMalloc((void **)p, n * sizeof(int32_t)));
    tl_mem_add(TL_MEM_SCRATCH, (int64_t)(n * sizeof(int32_t)));
    *cap = n;
}

/* Make a device f32 scratch buffer (*cap floats) hold need floats, allocating want (>= need)
 * when it must grow; contents not kept. Returns 0 when the allocation fails (*p NULL, *cap 0):
 * the caller takes a path without the scratch. */
static int grow_f32(float **p, size_t *cap, size_t need, size_t want) {
    if (need <= *cap) return 1;
    if (*p) {
        CK(cudaFree(*p));
        tl_mem_add(TL_MEM_SCRATCH, -(int64_t)(*cap * sizeof(float)));
    }
    *p = NULL;
    *cap = 0;
    if (cudaMalloc((void **)p, want * sizeof(float)) != cudaSuccess) {
        cudaGetLastError(); /* out of memory is not sticky: clear it */
        *p = NULL;
        return 0;
    }
    *cap = want;
    tl_mem_add(TL_MEM_SCRATCH, (int64_t)(want * sizeof(float)));
    return 1;
}

/* Copy rows' slot and pos arrays into d (both buffers share d->cap). */
static void rows_put(cu_rows *d, const tl_rows *r) {
    if ((size_t)r->n > d->cap) {
        size_t pos_cap = d->cap; /* grows to the same size as slot's */
        grow_i32(&d->pos, &pos_cap, (size_t)r->n);
        grow_i32(&d->slot, &d->cap, (size_t)r->n);
    }
    CK(cudaMemcpy(d->slot, r->slot, (size_t)r->n * sizeof(int32_t), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d->pos, r->pos, (size_t)r->n * sizeof(int32_t), cudaMemcpyHostToDevice));
    d->n = r->n;
    d->hslot = r->slot;
    d->hpos = r->pos;
}

/* Device copies of rows' slot and pos arrays (rows->n > 0): the rows_upload copy when it is of
 * these very host arrays, else a fresh upload. */
static void rows_get(cu_ctx *c, const tl_rows *r, const int32_t **slot, const int32_t **pos) {
    cu_rows *d = &c->up;
    if (!(r->dev == (void *)&c->up && d->n == r->n && d->hslot == r->slot && d->hpos == r->pos)) {
        d = &c->tmp;
        rows_put(d, r);
    }
    *slot = d->slot;
    *pos = d->pos;
}

static void cu_rows_upload(tl_backend *be, tl_rows *rows) {
    cu_ctx *c = (cu_ctx *)be->ctx;
    if (rows->n <= 0) {
        rows->dev = NULL;
        return;
    }
    rows_put(&c->up, rows);
    rows->dev = (void *)&c->up;
}

static void cu_kv_sync(tl_backend *be, tl_kv *kv) {
    cu_ctx *c = (cu_ctx *)be->ctx;
    size_t n = (size_t)kv->max_slots * (size_t)kv->max_pages_per_slot;
    if (n == 0) {
        kv->dev = NULL;
        return;
    }
    grow_i32(&c->pt, &c->pt_cap, n);
    CK(cudaMemcpy(c->pt, kv->page_table, n * sizeof(int32_t), cudaMemcpyHostToDevice));
    kv->dev = c->pt;
}

static const int32_t *kv_table(tl_backend *be, const tl_kv *kv) {
    cu_ctx *c = (cu_ctx *)be->ctx;
    if (!kv->dev || kv->dev != (void *)c->pt) cu_kv_sync(be, (tl_kv *)kv);
    return (const int32_t *)kv->dev;
}

/* ---- memory --------------------------------------------------------------------------------- */

static float *cu_alloc(tl_backend *be, size_t n, tl_mem_kind kind) {
    size_t bytes;
    if (!tl_mul_ok(n, sizeof(float), &bytes)) return NULL;
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 4) != cudaSuccess) {
        cudaGetLastError(); /* out of memory is not sticky: clear it */
        return NULL;
    }
    if (cudaMemset(p, 0, bytes ? bytes : 4) != cudaSuccess) {
        cudaGetLastError();
        cudaFree(p);
        return NULL;
    }
    tl_mem_add(kind, (int64_t)bytes);
    return (float *)p;
}

static void cu_free(tl_backend *be, void *p, size_t n, tl_mem_kind kind) {
    if (!p) return;
    CK(cudaFree(p));
    tl_mem_add(kind, -(int64_t)(n * sizeof(float)));
}

static void cu_to_host(tl_backend *be, void *dst, const void *src, size_t bytes) {
    if (bytes) CK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
static void cu_to_device(tl_backend *be, void *dst, const void *src, size_t bytes) {
    if (bytes) CK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
static void cu_sync(tl_backend *be) { CK(cudaDeviceSynchronize()); }

static float *cu_vec_upload(tl_backend *be, const float *host, size_t n) {
    float *p = cu_alloc(be, n, TL_MEM_WEIGHTS);
    if (p && n) CK(cudaMemcpy(p, host, n * sizeof(float), cudaMemcpyHostToDevice));
    return p;
}

/* ---- weights -------------------------------------------------------------------------------- */

static void wmat_release(tl_wmat *w) {
    if (w->data) cudaFree(w->data);
    if (w->scales) cudaFree(w->scales);
    if (w->biases) cudaFree(w->biases);
    if (w->bytes) tl_mem_add(TL_MEM_WEIGHTS, -(int64_t)w->bytes);
    free(w);
}

static int cu_weight_prepare(tl_backend *be, const tl_wdesc *d, tl_wmat **out, tl_err *err) {
    *out = NULL;
    tl_wmat *w = (tl_wmat *)calloc(1, sizeof *w);
    if (!w) return tl_err_set(err, TL_ENOMEM, "cuda backend: out of memory preparing %s", d->name);
    w->d = *d;
    tl_wdesc_finish(&w->d);
    if (d->kind == TL_W_AFFINE &&
        (d->bits < 2 || d->bits > 8 || d->bits == 7 || d->group_size <= 0 ||
         d->cols % d->group_size != 0)) {
        free(w);
        return tl_err_set(err, TL_EUNSUP, "cuda backend: %s: %d-bit groups of %d over %d columns "
                          "are not supported", d->name, d->bits, d->group_size, d->cols);
    }
    if (d->kind == TL_W_DENSE && d->dtype != TL_DT_F32 && d->dtype != TL_DT_F16 &&
        d->dtype != TL_DT_BF16) {
        free(w);
        return tl_err_set(err, TL_EUNSUP, "cuda backend: %s: dense dtype not supported", d->name);
    }
    size_t data_bytes = w->d.row_bytes * (size_t)d->rows;
    cudaError_t rc = cudaMalloc((void **)&w->data, data_bytes ? data_bytes : 16);
    if (rc == cudaSuccess) {
        w->bytes += data_bytes;
        tl_mem_add(TL_MEM_WEIGHTS, (int64_t)data_bytes);
        if (data_bytes) rc = cudaMemcpy(w->data, d->data, data_bytes, cudaMemcpyHostToDevice);
    }
    if (rc == cudaSuccess && d->kind == TL_W_AFFINE) {
        size_t ns = (size_t)d->rows * (size_t)(d->cols / d->group_size);
        float *h = (float *)malloc((ns ? ns : 1) * sizeof(float));
        if (!h) {
            wmat_release(w);
            return tl_err_set(err, TL_ENOMEM, "cuda backend: out of memory preparing %s", d->name);
        }
        const void *src[2] = {d->scales, d->biases};
        float **dst[2] = {&w->scales, &w->biases};
        for (int k = 0; k < 2 && rc == cudaSuccess; k++) {
            for (size_t i = 0; i < ns; i++) h[i] = tl_dtype_get_f32(d->dtype, src[k], i);
            rc = cudaMalloc((void **)dst[k], (ns ? ns : 1) * sizeof(float));
            if (rc != cudaSuccess) break;
            w->bytes += ns * sizeof(float);
            tl_mem_add(TL_MEM_WEIGHTS, (int64_t)(ns * sizeof(float)));
            if (ns) rc = cudaMemcpy(*dst[k], h, ns * sizeof(float), cudaMemcpyHostToDevice);
        }
        free(h);
    }
    if (rc != cudaSuccess) {
        cudaGetLastError();
        wmat_release(w);
        return tl_err_set(err, TL_ENOMEM, "cuda backend: uploading %s (%zu bytes): %s", d->name,
                          data_bytes, cudaGetErrorString(rc));
    }
    *out = w;
    return 0;
}

static void cu_weight_free(tl_backend *be, tl_wmat *w) {
    if (w) wmat_release(w);
}

/* ---- device helpers ------------------------------------------------------------------------- */

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result. */
__device__ float block_sum(float v) {
    __shared__ float sh[32];
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        float t = lane < nw ? sh[lane] : 0.0f;
        t = warp_sum(t);
        if (lane == 0) sh[0] = t;
    }
    __syncthreads();
    return sh[0];
}

#define GRID_STRIDE(i, n)                                                                          \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n);                      \
         i += (size_t)gridDim.x * blockDim.x)

static unsigned ew_blocks(size_t n) {
    size_t b = (n + 255) / 256;
    return (unsigned)(b > 65536 ? 65536 : b);
}

__device__ __forceinline__ float dev_silu(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float dev_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Element (r, c) of a weight, as tl_wdesc_dequant_row defines it. Host and device: the host
 * build is what tl_cuda_host_selfcheck runs. */
__host__ __device__ __forceinline__ float w_get(const wdev &w, int r, int c) {
    const uint8_t *row = w.data + (size_t)r * w.row_bytes;
    if (w.kind == TL_W_DENSE) {
        if (w.dtype == TL_DT_F32) return ((const float *)row)[c];
        uint16_t h = ((const uint16_t *)row)[c];
#ifdef __CUDA_ARCH__
        if (w.dtype == TL_DT_BF16) return __uint_as_float((uint32_t)h << 16);
        return __half2float(__ushort_as_half(h));
#else
        if (w.dtype == TL_DT_BF16) return tl_bf16_to_f32(h);
        return tl_f16_to_f32(h);
#endif
    }
    size_t bit = (size_t)c * (size_t)w.bits;
    size_t byte = bit >> 3;
    unsigned sh = (unsigned)(bit & 7);
    uint32_t v = row[byte];
    if (sh + (unsigned)w.bits > 8) v |= (uint32_t)row[byte + 1] << 8;
    uint32_t q = (v >> sh) & ((1u << w.bits) - 1u);
    size_t g = (size_t)r * w.ng + (size_t)(c / w.gs);
    return w.scales[g] * (float)q + w.biases[g];
}

/* The float with these bits (host and device). */
__host__ __device__ __forceinline__ float bits_to_f32(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

/* One 16-byte chunk of a 4- or 8-bit row (E = 128/BITS elements, LSB first in little-endian
 * words) against xv[0..E) held in registers, given sx = Σ x: returns Σ x·q. No int -> float
 * conversion (a sixteenth of the FMA rate): q is moved to the top of a mantissa, making the float
 * M = 1 + q / 2^BITS exactly (one shift, one and-or), so Σ x·M = Σx + Σ x·q / 2^BITS and
 * Σ x·q = 2^BITS (Σ x·M - Σx); the values are all of one magnitude, so nothing cancels badly.
 * Two partial sums shorten the dependency chain. */
template <int BITS>
__host__ __device__ __forceinline__ float chunk_dot(uint4 q4, const float *xv, float sx) {
    constexpr int PER = 32 / BITS; /* elements per 32-bit word: 8 or 4 */
    constexpr uint32_t TOP = ((1u << BITS) - 1u) << (23 - BITS);
    const uint32_t wd[4] = {q4.x, q4.y, q4.z, q4.w};
    float s0 = 0.0f, s1 = 0.0f;
#pragma unroll
    for (int t = 0; t < 4; t++)
#pragma unroll
        for (int e = 0; e < PER; e++) {
            const int sh = 23 - BITS - e * BITS; /* left shift taking element e to the top */
            const uint32_t moved = sh >= 0 ? wd[t] << (sh & 31) : wd[t] >> ((-sh) & 31);
            const float m = bits_to_f32((moved & TOP) | 0x3F800000u);
            if (e & 1)
                s1 = fmaf(xv[t * PER + e], m, s1);
            else
                s0 = fmaf(xv[t * PER + e], m, s0);
        }
    return ((s0 + s1) - sx) * (float)(1u << BITS);
}

/* Whether the GEMV may take the 128-bit path for this weight and x. */
static int gemv_fast_ok(const tl_wdesc *d, const float *x) {
    return d->kind == TL_W_AFFINE && (d->bits == 4 || d->bits == 8) && d->row_bytes % 16 == 0 &&
           d->group_size % (128 / d->bits) == 0 && ((uintptr_t)x & 15) == 0;
}

/* ---- matmul --------------------------------------------------------------------------------- */

/* Generic GEMV (any format, n <= CU_GEMV_MAX_N): one warp per output row o, one element at a
 * time through w_get; input rows in passes of CU_GEMV_NB. */
__global__ void k_gemv(wdev w, const float *__restrict__ x, float *__restrict__ y, int n) {
    const int o = (int)((blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5);
    const int lane = threadIdx.x & 31;
    if (o >= w.rows) return; /* uniform per warp */
    const int cols = w.cols;
    for (int i0 = 0; i0 < n; i0 += CU_GEMV_NB) {
        const int nb = min(CU_GEMV_NB, n - i0);
        float acc[CU_GEMV_NB];
#pragma unroll
        for (int j = 0; j < CU_GEMV_NB; j++) acc[j] = 0.0f;
        for (int c = lane; c < cols; c += 32) {
            const float wv = w_get(w, o, c);
#pragma unroll
            for (int j = 0; j < CU_GEMV_NB; j++)
                if (j < nb) acc[j] += wv * x[(size_t)(i0 + j) * cols + c];
        }
#pragma unroll
        for (int j = 0; j < CU_GEMV_NB; j++) {
            const float s = warp_sum(acc[j]);
            if (lane == 0 && j < nb) y[(size_t)(i0 + j) * w.rows + o] = s;
        }
    }
}

/* The end of one pass of k_gemv_q / k_gemv_h: each warp's partial sums acc[k][j] (rows o0 + k
 * of its row group, input rows i0 + j, j < nb) are summed over the warp, the wpr warps of a row
 * group meet in red, and the totals go to y. Every thread of the block calls it. */
template <int NB, int R>
__device__ __forceinline__ void gemv_store(const float (&acc)[R][NB], float (&red)[8][R][NB],
                                           float *__restrict__ y, int rows, int i0, int nb,
                                           int wpr) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, rpb = 8 / wpr;
#pragma unroll
    for (int k = 0; k < R; k++)
#pragma unroll
        for (int j = 0; j < NB; j++) {
            if (j >= nb) break;
            const float v = warp_sum(acc[k][j]);
            if (lane == 0) red[warp][k][j] = v;
        }
    __syncthreads();
    const int t = threadIdx.x;
    if (t < rpb * R * NB) {
        const int g2 = t / (R * NB), k = (t / NB) % R, j = t % NB;
        const int o = (blockIdx.x * rpb + g2) * R + k;
        if (o < rows && j < nb) {
            float v = 0.0f;
            for (int sl = 0; sl < wpr; sl++) v += red[g2 * wpr + sl][k][j];
            y[(size_t)(i0 + j) * rows + o] = v;
        }
    }
    __syncthreads(); /* red is rewritten by the next pass */
}

/* 4/8-bit GEMV (gemv_fast_ok): 256 threads = 8 warps. A group of `wpr` warps (1, 2, 4 or 8)
 * takes R consecutive output rows and splits their 16-byte chunks: lane l of warp
 * `slice` reads chunks slice*32 + l, + 32*wpr, ... of all R rows at once (R independent 128-bit
 * loads in flight), loads the matching x chunk into registers once and uses it for the R rows,
 * with the folded form s·Σxq + b·Σx per chunk (a chunk lies inside one group). Partial sums
 * meet in shared memory. Enough threads that a small matrix is read in one wave. NB: input rows
 * per pass (1 for decode keeps the registers low; CU_GEMV_NB otherwise). */
template <int BITS, int NB, int R>
__global__ void __launch_bounds__(256, NB == 1 ? 2 : 1)
    k_gemv_q(wdev w, const float *__restrict__ x, float *__restrict__ y, int n, int wpr) {
    constexpr int E = 128 / BITS;
    __shared__ float red[8][R][NB];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int rpb = 8 / wpr, rg = warp / wpr, slice = warp % wpr;
    const int o0 = (blockIdx.x * rpb + rg) * R;
    const int nchunk = (int)(w.row_bytes / 16), cols = w.cols;
    const uint4 *rw[R];
    size_t gb[R];
#pragma unroll
    for (int k = 0; k < R; k++) {
        const int o = min(o0 + k, w.rows - 1); /* rows past the end read the last, unused */
        rw[k] = (const uint4 *)(w.data + (size_t)o * w.row_bytes);
        gb[k] = (size_t)o * w.ng;
    }
    for (int i0 = 0; i0 < n; i0 += NB) {
        const int nb = min(NB, n - i0);
        float acc[R][NB];
#pragma unroll
        for (int k = 0; k < R; k++)
#pragma unroll
            for (int j = 0; j < NB; j++) acc[k][j] = 0.0f;
        for (int ch = slice * 32 + lane; ch < nchunk; ch += 32 * wpr) {
            uint4 q[R];
            float sc[R], bi[R];
            const int g = ch * E / w.gs;
#pragma unroll
            for (int k = 0; k < R; k++) {
                q[k] = __ldg(rw[k] + ch);
                sc[k] = __ldg(w.scales + gb[k] + g);
                bi[k] = __ldg(w.biases + gb[k] + g);
            }
#pragma unroll
            for (int j = 0; j < NB; j++) {
                if (j >= nb) break;
                const float4 *xp = (const float4 *)(x + (size_t)(i0 + j) * cols + (size_t)ch * E);
                float xv[E];
#pragma unroll
                for (int u = 0; u < E / 4; u++) {
                    const float4 t = __ldg(xp + u);
                    xv[4 * u] = t.x;
                    xv[4 * u + 1] = t.y;
                    xv[4 * u + 2] = t.z;
                    xv[4 * u + 3] = t.w;
                }
                float sx = 0.0f;
#pragma unroll
                for (int u = 0; u < E; u++) sx += xv[u];
#pragma unroll
                for (int k = 0; k < R; k++)
                    acc[k][j] += sc[k] * chunk_dot<BITS>(q[k], xv, sx) + bi[k] * sx;
            }
        }
        gemv_store<NB, R>(acc, red, y, w.rows, i0, nb, wpr);
    }
}

/* The 8 elements of 16 bytes of a BF16 or F16 row as f32. BF16 is the top half of an f32: one
 * shift or one and per element. */
template <bool F16>
__device__ __forceinline__ void half8_to_f32(uint4 q4, float *w) {
    const uint32_t wd[4] = {q4.x, q4.y, q4.z, q4.w};
#pragma unroll
    for (int t = 0; t < 4; t++) {
        if (F16) {
            const float2 f = __half22float2(*(const __half2 *)&wd[t]);
            w[2 * t] = f.x;
            w[2 * t + 1] = f.y;
        } else {
            w[2 * t] = __uint_as_float(wd[t] << 16);
            w[2 * t + 1] = __uint_as_float(wd[t] & 0xFFFF0000u);
        }
    }
}

/* Dense BF16/F16 GEMV (dense16_fast_ok): k_gemv_q's layout (R rows a thread, wpr warps a row
 * group, the x chunk in registers shared by the R rows) over 16-byte chunks of 8 elements. */
template <bool F16, int NB, int R>
__global__ void __launch_bounds__(256, NB == 1 ? 2 : 1)
    k_gemv_h(wdev w, const float *__restrict__ x, float *__restrict__ y, int n, int wpr) {
    __shared__ float red[8][R][NB];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int rpb = 8 / wpr, rg = warp / wpr, slice = warp % wpr;
    const int o0 = (blockIdx.x * rpb + rg) * R;
    const int nchunk = (int)(w.row_bytes / 16), cols = w.cols;
    const uint4 *rw[R];
#pragma unroll
    for (int k = 0; k < R; k++)
        rw[k] = (const uint4 *)(w.data + (size_t)min(o0 + k, w.rows - 1) * w.row_bytes);
    for (int i0 = 0; i0 < n; i0 += NB) {
        const int nb = min(NB, n - i0);
        float acc[R][NB];
#pragma unroll
        for (int k = 0; k < R; k++)
#pragma unroll
            for (int j = 0; j < NB; j++) acc[k][j] = 0.0f;
        for (int ch = slice * 32 + lane; ch < nchunk; ch += 32 * wpr) {
            uint4 q[R];
#pragma unroll
            for (int k = 0; k < R; k++) q[k] = __ldg(rw[k] + ch);
#pragma unroll
            for (int j = 0; j < NB; j++) {
                if (j >= nb) break;
                const float4 *xp = (const float4 *)(x + (size_t)(i0 + j) * cols + (size_t)ch * 8);
                const float4 xa = __ldg(xp), xb = __ldg(xp + 1);
                const float xv[8] = {xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w};
#pragma unroll
                for (int k = 0; k < R; k++) {
                    float wv[8];
                    half8_to_f32<F16>(q[k], wv);
                    float s0 = 0.0f, s1 = 0.0f;
#pragma unroll
                    for (int e = 0; e < 8; e += 2) {
                        s0 = fmaf(xv[e], wv[e], s0);
                        s1 = fmaf(xv[e + 1], wv[e + 1], s1);
                    }
                    acc[k][j] += s0 + s1;
                }
            }
        }
        gemv_store<NB, R>(acc, red, y, w.rows, i0, nb, wpr);
    }
}

/* Whether a dense weight may take k_gemv_h. */
static int dense16_fast_ok(const tl_wdesc *d, const float *x) {
    return d->kind == TL_W_DENSE && (d->dtype == TL_DT_BF16 || d->dtype == TL_DT_F16) &&
           d->row_bytes % 16 == 0 && ((uintptr_t)x & 15) == 0;
}

#define GM_TM 64 /* x rows per block */
#define GM_TN 64 /* weight rows per block */
#define GM_TK 32
/* 256 threads: thread (tx, ty) computes x rows ty + 16i and weight rows tx + 16j, i,j < 4. */
__global__ void __launch_bounds__(256) k_gemm(wdev w, const float *__restrict__ x,
                                              float *__restrict__ y, int n) {
    __shared__ float xs[GM_TK][GM_TM + 1];
    __shared__ float ws[GM_TK][GM_TN + 1];
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int m0 = blockIdx.y * GM_TM, n0 = blockIdx.x * GM_TN;
    const int cols = w.cols, rows = w.rows;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    for (int k0 = 0; k0 < cols; k0 += GM_TK) {
        for (int e = threadIdx.x; e < GM_TM * GM_TK; e += blockDim.x) {
            const int mi = e / GM_TK, ki = e % GM_TK, m = m0 + mi, k = k0 + ki;
            xs[ki][mi] = (m < n && k < cols) ? x[(size_t)m * cols + k] : 0.0f;
        }
        for (int e = threadIdx.x; e < GM_TN * GM_TK; e += blockDim.x) {
            const int ni = e / GM_TK, ki = e % GM_TK, o = n0 + ni, k = k0 + ki;
            ws[ki][ni] = (o < rows && k < cols) ? w_get(w, o, k) : 0.0f;
        }
        __syncthreads();
#pragma unroll 8
        for (int ki = 0; ki < GM_TK; ki++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                a[i] = xs[ki][ty + 16 * i];
                b[i] = ws[ki][tx + 16 * i];
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int m = m0 + ty + 16 * i;
        if (m >= n) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int o = n0 + tx + 16 * j;
            if (o < rows) y[(size_t)m * rows + o] = acc[i][j];
        }
    }
}

/* Rows [r0, r0 + rs) of a weight, dequantized into deq (row-major, cols floats a row). */
__global__ void k_dequant(wdev w, int r0, size_t total, float *deq) {
    GRID_STRIDE(t, total) {
        const int r = (int)(t / (size_t)w.cols), c = (int)(t % (size_t)w.cols);
        deq[t] = w_get(w, r0 + r, c);
    }
}

#define CU_DEQ_MAX ((size_t)32 << 20) /* floats of the cuBLAS weight slice (128 MB) */

/* Prefill matmul through cuBLAS: the weight is dequantized to f32 in slices of rows and
 * multiplied with a plain FP32 SGEMM (no TF32: the same precision as the tiled kernel, several
 * times its speed). Returns 0 when cuBLAS or the scratch is unavailable; the caller then runs
 * the tiled kernel. */
static int blas_matmul(cu_ctx *c, const tl_wmat *w, const float *x, float *y, int n) {
    if (c->blas_state == 0) {
        c->blas_state = cublasCreate(&c->blas) == CUBLAS_STATUS_SUCCESS ? 1 : -1;
        if (c->blas_state == 1 &&
            cublasSetMathMode(c->blas, CUBLAS_PEDANTIC_MATH) != CUBLAS_STATUS_SUCCESS) {
            cublasDestroy(c->blas);
            c->blas_state = -1;
        }
    }
    if (c->blas_state != 1) return 0;
    const size_t rows = (size_t)w->d.rows, cols = (size_t)w->d.cols;
    size_t rs = CU_DEQ_MAX / cols;
    if (rs == 0) return 0;
    if (rs > rows) rs = rows;
    if (!grow_f32(&c->deq, &c->deq_cap, rs * cols, rows * cols < CU_DEQ_MAX ? rows * cols
                                                                             : CU_DEQ_MAX))
        return 0;
    const wdev v = wdev_of(w);
    const float one = 1.0f, zero = 0.0f;
    for (size_t r0 = 0; r0 < rows; r0 += rs) {
        const size_t m = rows - r0 < rs ? rows - r0 : rs;
        k_dequant<<<ew_blocks(m * cols), 256>>>(v, (int)r0, m * cols, c->deq);
        CK_LAUNCH("k_dequant");
        /* column-major view: y^T[rows, n] (ld rows) = W[m, cols] · x^T[cols, n] */
        cublasStatus_t st = cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)m, n, (int)cols,
                                        &one, c->deq, (int)cols, x, (int)cols, &zero, y + r0,
                                        (int)rows);
        if (st != CUBLAS_STATUS_SUCCESS) {
            char msg[128];
            snprintf(msg, sizeof msg, "cublasSgemm failed (status %d)", (int)st);
            tl_panic(__FILE__, __LINE__, msg);
        }
    }
    return 1;
}

/* The grid of k_gemv_q / k_gemv_h for n input rows: *wpr warps per row group, as many as the
 * row's 16-byte chunks keep busy (up to 8), and enough blocks of 8 / *wpr row groups of
 * CU_GEMV_R1 (n == 1) or CU_GEMV_RN rows for all rows. */
static unsigned gemv_blocks(const tl_wdesc *d, int n, int *wpr) {
    const int nchunk = (int)(d->row_bytes / 16);
    *wpr = 1;
    while (*wpr < 8 && 64 * *wpr <= nchunk) *wpr *= 2;
    const int rows_pb = (8 / *wpr) * (n == 1 ? CU_GEMV_R1 : CU_GEMV_RN);
    return (unsigned)((d->rows + rows_pb - 1) / rows_pb);
}

static void cu_matmul(tl_backend *be, const tl_wmat *w, const float *x, float *y, int n) {
    if (n <= 0 || w->d.rows <= 0) return;
    wdev v = wdev_of(w);
    if (w->d.cols <= 0) { /* an empty dot product is 0 */
        CK(cudaMemset(y, 0, (size_t)n * w->d.rows * sizeof(float)));
        return;
    }
    if (n <= CU_GEMV_MAX_N) {
        if (gemv_fast_ok(&w->d, x)) {
            int wpr;
            const unsigned blocks = gemv_blocks(&w->d, n, &wpr);
            if (w->d.bits == 4 && n == 1)
                k_gemv_q<4, 1, CU_GEMV_R1><<<blocks, 256>>>(v, x, y, n, wpr);
            else if (w->d.bits == 4)
                k_gemv_q<4, CU_GEMV_NB, CU_GEMV_RN><<<blocks, 256>>>(v, x, y, n, wpr);
            else if (n == 1)
                k_gemv_q<8, 1, CU_GEMV_R1><<<blocks, 256>>>(v, x, y, n, wpr);
            else
                k_gemv_q<8, CU_GEMV_NB, CU_GEMV_RN><<<blocks, 256>>>(v, x, y, n, wpr);
            CK_LAUNCH("k_gemv_q");
            return;
        }
        if (dense16_fast_ok(&w->d, x)) {
            int wpr;
            const unsigned blocks = gemv_blocks(&w->d, n, &wpr);
            const bool f16 = w->d.dtype == TL_DT_F16;
            if (f16 && n == 1)
                k_gemv_h<true, 1, CU_GEMV_R1><<<blocks, 256>>>(v, x, y, n, wpr);
            else if (f16)
                k_gemv_h<true, CU_GEMV_NB, CU_GEMV_RN><<<blocks, 256>>>(v, x, y, n, wpr);
            else if (n == 1)
                k_gemv_h<false, 1, CU_GEMV_R1><<<blocks, 256>>>(v, x, y, n, wpr);
            else
                k_gemv_h<false, CU_GEMV_NB, CU_GEMV_RN><<<blocks, 256>>>(v, x, y, n, wpr);
            CK_LAUNCH("k_gemv_h");
            return;
        }
        const int threads = 256, warps = threads / 32;
        unsigned blocks = (unsigned)((w->d.rows + warps - 1) / warps);
        k_gemv<<<blocks, threads>>>(v, x, y, n);
        CK_LAUNCH("k_gemv");
        return;
    }
    dim3 grid((unsigned)((w->d.rows + GM_TN - 1) / GM_TN), (unsigned)((n + GM_TM - 1) / GM_TM));
    if (grid.y > 65535) { /* more rows than one grid holds: in slices */
        for (int i0 = 0; i0 < n; i0 += 65535 * GM_TM) {
            int m = TL_MIN(n - i0, 65535 * GM_TM);
            cu_matmul(be, w, x + (size_t)i0 * w->d.cols, y + (size_t)i0 * w->d.rows, m);
        }
        return;
    }
    if (blas_matmul((cu_ctx *)be->ctx, w, x, y, n)) return;
    k_gemm<<<grid, 256>>>(v, x, y, n);
    CK_LAUNCH("k_gemm");
}

/* ---- embed ---------------------------------------------------------------------------------- */

__global__ void k_embed(wdev w, const int32_t *ids, float *y) {
    const int i = blockIdx.x;
    const int r = ids[i];
    for (int c = threadIdx.x; c < w.cols; c += blockDim.x)
        y[(size_t)i * w.cols + c] = w_get(w, r, c);
}

static void cu_embed(tl_backend *be, const tl_wmat *w, const int32_t *ids, float *y, int n) {
    if (n <= 0) return;
    cu_ctx *c = (cu_ctx *)be->ctx;
    grow_i32(&c->ids, &c->ids_cap, (size_t)n);
    CK(cudaMemcpy(c->ids, ids, (size_t)n * sizeof(int32_t), cudaMemcpyHostToDevice));
    k_embed<<<(unsigned)n, 256>>>(wdev_of(w), c->ids, y);
    CK_LAUNCH("k_embed");
}

/* ---- norms ---------------------------------------------------------------------------------- */

__global__ void k_rmsnorm(float *y, const float *x, const float *w, int dim, float eps) {
    const size_t r = blockIdx.x;
    const float *xr = x + r * dim;
    float *yr = y + r * dim;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
    ss = block_sum(ss);
    const float inv = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        yr[i] = w ? (xr[i] * inv) * w[i] : xr[i] * inv;
}

static unsigned norm_threads(int dim) {
    int t = ((dim + 31) / 32) * 32;
    return (unsigned)(t < 32 ? 32 : t > 256 ? 256 : t);
}

/* One block per row (gridDim.x holds up to 2^31 - 1). */
static void cu_rmsnorm(tl_backend *be, float *y, const float *x, const float *w, int rows, int dim,
                       float eps) {
    if (rows <= 0 || dim <= 0) return;
    k_rmsnorm<<<(unsigned)rows, norm_threads(dim)>>>(y, x, w, dim, eps);
    CK_LAUNCH("k_rmsnorm");
}

__global__ void k_gated_rmsnorm(float *o, const float *z, const float *w, int dim, float eps) {
    const size_t g = blockIdx.x;
    float *x = o + g * dim;
    const float *zg = z + g * dim;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += x[i] * x[i];
    ss = block_sum(ss);
    const float inv = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) x[i] = x[i] * inv * w[i] * dev_silu(zg[i]);
}

static void cu_gated_rmsnorm(tl_backend *be, float *o, const float *z, const float *w, int rows,
                             int n_heads, int dim, float eps) {
    size_t g = (size_t)rows * (size_t)n_heads;
    if (g == 0 || dim <= 0) return;
    k_gated_rmsnorm<<<(unsigned)g, norm_threads(dim)>>>(o, z, w, dim, eps);
    CK_LAUNCH("k_gated_rmsnorm");
}

/* ---- rope ----------------------------------------------------------------------------------- */

__global__ void k_rope(float *x, const int32_t *pos, int n, int n_heads, int head_dim, int half,
                       const float *inv_freq) {
    const size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    const size_t total = (size_t)n * n_heads * half;
    if (t >= total) return;
    const int i = (int)(t % half);
    const size_t rh = t / half; /* row * n_heads + head */
    const int r = (int)(rh / n_heads);
    float *v = x + rh * head_dim;
    const float a = (float)pos[r] * inv_freq[i];
    double s, c;
    sincos((double)a, &s, &c); /* double: the fast float intrinsics lose accuracy at large angles */
    const float cf = (float)c, sf = (float)s;
    const float x0 = v[i], x1 = v[i + half];
    v[i] = x0 * cf - x1 * sf;
    v[i + half] = x1 * cf + x0 * sf;
}

static void cu_rope(tl_backend *be, float *x, const tl_rows *rows, int n_heads, int head_dim,
                    int rot_dim, const float *inv_freq) {
    int half = rot_dim / 2;
    if (rows->n <= 0 || n_heads <= 0 || half <= 0) return;
    const int32_t *slot, *pos;
    rows_get((cu_ctx *)be->ctx, rows, &slot, &pos);
    size_t total = (size_t)rows->n * n_heads * half;
    k_rope<<<(unsigned)((total + 255) / 256), 256>>>(x, pos, rows->n, n_heads, head_dim, half,
                                                      inv_freq);
    CK_LAUNCH("k_rope");
}

/* ---- KV cache and attention ----------------------------------------------------------------- */

__device__ __forceinline__ size_t kv_off(const int32_t *pt, int mpps, int page_size, int kv_dim,
                                         int slot, int p) {
    const int page = pt[(size_t)slot * mpps + p / page_size];
    return ((size_t)page * page_size + (size_t)(p % page_size)) * kv_dim;
}

__global__ void k_kv_store(float *kc, float *vc, const float *k, const float *v,
                           const int32_t *slot, const int32_t *pos, int n, const int32_t *pt,
                           int mpps, int page_size, int kv_dim) {
    const size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (t >= (size_t)n * kv_dim) return;
    const int r = (int)(t / kv_dim), d = (int)(t % kv_dim);
    const size_t off = kv_off(pt, mpps, page_size, kv_dim, slot[r], pos[r]) + d;
    kc[off] = k[t];
    vc[off] = v[t];
}

static void cu_kv_store(tl_backend *be, tl_kv *kv, int layer, const tl_rows *rows, const float *k,
                        const float *v) {
    if (rows->n <= 0 || kv->kv_dim <= 0) return;
    const int32_t *pt = kv_table(be, kv);
    const int32_t *slot, *pos;
    rows_get((cu_ctx *)be->ctx, rows, &slot, &pos);
    size_t total = (size_t)rows->n * kv->kv_dim;
    k_kv_store<<<(unsigned)((total + 255) / 256), 256>>>(kv->k[layer], kv->v[layer], k, v, slot,
                                                         pos, rows->n, pt,
                                                         kv->max_pages_per_slot, kv->page_size,
                                                         kv->kv_dim);
    CK_LAUNCH("k_kv_store");
}

/* One block (CU_ATT_WARPS warps) per (row, head, split). The split covers positions
 * [z * split_len, min(len, (z + 1) * split_len)) of the row's len = pos + 1 (split_len 0: all).
 * Warp w takes positions t0 + w, t0 + w + W, ...; lane l holds dims l, l+32, ... (D per lane).
 * Each warp keeps an online softmax (max m, sum l, acc); the warps are merged at the end. part
 * NULL: the normalized output goes to out. Otherwise the block writes its partial (max M, sum L
 * relative to M, unnormalized o[head_dim]) to part[((row * n_heads + head) * nsplit + z)] for
 * k_attention_combine; an empty split writes M = -inf, L = 0. */
template <int D>
__global__ void k_attention(float *out, float *part, const float *q, const float *kc,
                            const float *vc, const int32_t *slot, const int32_t *pos,
                            const int32_t *pt, int mpps, int page_size, int kv_dim, int n_heads,
                            int group, int head_dim, float scale, int split_len) {
    __shared__ float sm[CU_ATT_WARPS], sl[CU_ATT_WARPS];
    __shared__ float sacc[CU_ATT_WARPS][D * 32];
    const int r = blockIdx.x, h = blockIdx.y;
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    const int s = slot[r], len = pos[r] + 1, kvh = h / group;
    const int t0 = split_len ? (int)blockIdx.z * split_len : 0;
    const int t1 = split_len ? min(len, t0 + split_len) : len;
    const float *qh = q + ((size_t)r * n_heads + h) * head_dim;
    float qv[D], acc[D];
#pragma unroll
    for (int i = 0; i < D; i++) {
        const int d = lane + 32 * i;
        qv[i] = d < head_dim ? qh[d] : 0.0f;
        acc[i] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int t = t0 + wid; t < t1; t += CU_ATT_WARPS) {
        const size_t off = kv_off(pt, mpps, page_size, kv_dim, s, t) + (size_t)kvh * head_dim;
        const float *kt = kc + off, *vt = vc + off;
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < D; i++) {
            const int d = lane + 32 * i;
            if (d < head_dim) dot += qv[i] * kt[d];
        }
        const float sc = warp_sum(dot) * scale;
        const float mn = fmaxf(m, sc);
        const float corr = expf(m - mn); /* 0 on the first position (m = -inf) */
        const float p = expf(sc - mn);
        l = l * corr + p;
#pragma unroll
        for (int i = 0; i < D; i++) {
            const int d = lane + 32 * i;
            acc[i] = acc[i] * corr + (d < head_dim ? p * vt[d] : 0.0f);
        }
        m = mn;
    }
    if (lane == 0) {
        sm[wid] = m;
        sl[wid] = l;
    }
#pragma unroll
    for (int i = 0; i < D; i++) sacc[wid][lane + 32 * i] = acc[i];
    __syncthreads();
    if (wid == 0) {
        float M = -INFINITY;
        for (int w = 0; w < CU_ATT_WARPS; w++) M = fmaxf(M, sm[w]);
        float L = 0.0f, f[CU_ATT_WARPS];
        for (int w = 0; w < CU_ATT_WARPS; w++) {
            f[w] = sl[w] > 0.0f ? expf(sm[w] - M) : 0.0f; /* a warp with no position adds 0 */
            L += sl[w] * f[w];
        }
        float *oh;
        float norm;
        if (part) {
            float *pp = part + (((size_t)r * n_heads + h) * gridDim.z + blockIdx.z) *
                                   (size_t)(head_dim + 2);
            if (lane == 0) {
                pp[0] = M;
                pp[1] = L;
            }
            oh = pp + 2;
            norm = 1.0f;
        } else {
            oh = out + ((size_t)r * n_heads + h) * head_dim;
            norm = 1.0f / L;
        }
#pragma unroll
        for (int i = 0; i < D; i++) {
            const int d = lane + 32 * i;
            if (d >= head_dim) continue;
            float o = 0.0f;
            for (int w = 0; w < CU_ATT_WARPS; w++) o += sacc[w][d] * f[w];
            oh[d] = o * norm;
        }
    }
}

/* grid (rows, heads), 128 threads: merge the nsplit partials of k_attention into out. */
__global__ void k_attention_combine(float *out, const float *part, int n_heads, int head_dim,
                                    int nsplit) {
    const int r = blockIdx.x, h = blockIdx.y;
    const float *pp = part + ((size_t)r * n_heads + h) * nsplit * (size_t)(head_dim + 2);
    float M = -INFINITY;
    for (int z = 0; z < nsplit; z++) {
        const float *pz = pp + (size_t)z * (head_dim + 2);
        if (pz[1] > 0.0f) M = fmaxf(M, pz[0]);
    }
    float L = 0.0f;
    for (int z = 0; z < nsplit; z++) {
        const float *pz = pp + (size_t)z * (head_dim + 2);
        if (pz[1] > 0.0f) L += pz[1] * expf(pz[0] - M);
    }
    float *oh = out + ((size_t)r * n_heads + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float o = 0.0f;
        for (int z = 0; z < nsplit; z++) {
            const float *pz = pp + (size_t)z * (head_dim + 2);
            if (pz[1] > 0.0f) o += pz[2 + d] * expf(pz[0] - M);
        }
        oh[d] = o / L;
    }
}

#define CU_ATT_MIN_SPLIT 64 /* fewest positions a split takes */
#define CU_ATT_BLOCKS 528   /* blocks (4 per SM of an H200) that splitting aims for */

static void cu_attention(tl_backend *be, float *out, const float *q, const tl_kv *kv, int layer,
                         const tl_rows *rows, int n_heads, int n_kv_heads, int head_dim,
                         float scale) {
    if (rows->n <= 0 || n_heads <= 0) return;
    if (head_dim > CU_MAX_HEAD_DIM || n_kv_heads <= 0 || n_heads % n_kv_heads != 0)
        tl_panic(__FILE__, __LINE__, "cuda attention: head_dim over 512 or heads not a multiple "
                                     "of kv heads (the model loader should have refused it)");
    cu_ctx *c = (cu_ctx *)be->ctx;
    const int32_t *pt = kv_table(be, kv);
    const int32_t *slot, *pos;
    rows_get(c, rows, &slot, &pos);
    /* Few (row, head) blocks over long contexts (decode): split the positions too, so that the
     * GPU has ~CU_ATT_BLOCKS blocks, then merge the partial softmaxes. */
    int max_len = 0;
    for (int i = 0; i < rows->n; i++) max_len = TL_MAX(max_len, rows->pos[i] + 1);
    const size_t rh = (size_t)rows->n * (size_t)n_heads;
    int split_len = 0, nsplit = 1;
    if (rh < CU_ATT_BLOCKS && max_len > CU_ATT_MIN_SPLIT) {
        int want = (int)((CU_ATT_BLOCKS + rh - 1) / rh);
        split_len = TL_MAX(CU_ATT_MIN_SPLIT, (max_len + want - 1) / want);
        nsplit = (max_len + split_len - 1) / split_len;
        if (nsplit <= 1) split_len = 0, nsplit = 1;
    }
    float *part = NULL;
    if (nsplit > 1) {
        const size_t need = rh * (size_t)nsplit * (size_t)(head_dim + 2);
        if (grow_f32(&c->att, &c->att_cap, need, need * 2)) part = c->att;
        else split_len = 0, nsplit = 1; /* no scratch: one block per (row, head) */
    }
    dim3 grid((unsigned)rows->n, (unsigned)n_heads, (unsigned)nsplit);
    const int group = n_heads / n_kv_heads;
    const unsigned threads = 32 * CU_ATT_WARPS;
#define ATT(D)                                                                                     \
    k_attention<D><<<grid, threads>>>(out, part, q, kv->k[layer], kv->v[layer], slot, pos, pt,    \
                                      kv->max_pages_per_slot, kv->page_size, kv->kv_dim, n_heads,  \
                                      group, head_dim, scale, split_len)
    if (head_dim <= 64) ATT(2);
    else if (head_dim <= 128) ATT(4);
    else if (head_dim <= 256) ATT(8);
    else ATT(16);
#undef ATT
    CK_LAUNCH("k_attention");
    if (part) {
        k_attention_combine<<<dim3((unsigned)rows->n, (unsigned)n_heads), 128>>>(
            out, part, n_heads, head_dim, nsplit);
        CK_LAUNCH("k_attention_combine");
    }
}

/* ---- elementwise ---------------------------------------------------------------------------- */

__global__ void k_swiglu(float *y, const float *g, const float *u, size_t n) {
    GRID_STRIDE(i, n) y[i] = dev_silu(g[i]) * u[i];
}
__global__ void k_add(float *y, const float *x, size_t n) {
    GRID_STRIDE(i, n) y[i] += x[i];
}
__global__ void k_mul_sigmoid(float *y, const float *g, size_t n) {
    GRID_STRIDE(i, n) y[i] *= dev_sigmoid(g[i]);
}
__global__ void k_copy_rows(float *dst, int dst_stride, int dst_off, const float *src,
                            int src_stride, int src_off, int width, size_t total) {
    GRID_STRIDE(t, total) {
        const size_t r = t / (size_t)width, c = t % (size_t)width;
        dst[r * dst_stride + dst_off + c] = src[r * src_stride + src_off + c];
    }
}

static void cu_swiglu(tl_backend *be, float *y, const float *gate, const float *up, size_t n) {
    if (!n) return;
    k_swiglu<<<ew_blocks(n), 256>>>(y, gate, up, n);
    CK_LAUNCH("k_swiglu");
}
static void cu_add(tl_backend *be, float *y, const float *x, size_t n) {
    if (!n) return;
    k_add<<<ew_blocks(n), 256>>>(y, x, n);
    CK_LAUNCH("k_add");
}
static void cu_mul_sigmoid(tl_backend *be, float *y, const float *g, size_t n) {
    if (!n) return;
    k_mul_sigmoid<<<ew_blocks(n), 256>>>(y, g, n);
    CK_LAUNCH("k_mul_sigmoid");
}
static void cu_copy_rows(tl_backend *be, float *dst, int dst_stride, int dst_off,
                         const float *src, int src_stride, int src_off, int rows, int width) {
    if (rows <= 0 || width <= 0) return;
    size_t total = (size_t)rows * (size_t)width;
    k_copy_rows<<<ew_blocks(total), 256>>>(dst, dst_stride, dst_off, src, src_stride, src_off,
                                          width, total);
    CK_LAUNCH("k_copy_rows");
}

/* ---- Gated DeltaNet ------------------------------------------------------------------------- */

/* Split the batch into runs of consecutive rows of one slot; upload [start0..start_n] and the
 * run slots. Returns the number of runs; *one_by_one is set when a slot has more than one run
 * (then the runs must be launched in order, one at a time). */
static int gdn_runs(cu_ctx *c, const tl_rows *rows, int *one_by_one) {
    const int n = rows->n;
    size_t need = 2 * (size_t)n + 1;
    if (need > c->hruns_cap) {
        int32_t *h = (int32_t *)realloc(c->hruns, need * 2 * sizeof(int32_t));
        if (!h) tl_panic(__FILE__, __LINE__, "out of memory in the cuda gdn run list");
        c->hruns = h;
        c->hruns_cap = need * 2;
    }
    /* the same slots as last time (every layer of one pass): the device copy is current */
    if (n == c->runs_n && c->runs_key && !memcmp(c->runs_key, rows->slot, (size_t)n * 4)) {
        *one_by_one = c->runs_one;
        return c->runs_nr;
    }
    int32_t *start = c->hruns;
    int nr = 0;
    for (int r = 0; r < n; r++)
        if (r == 0 || rows->slot[r] != rows->slot[r - 1]) start[nr++] = r;
    start[nr] = n;
    int32_t *slots = start + nr + 1;
    *one_by_one = 0;
    for (int i = 0; i < nr; i++) {
        slots[i] = rows->slot[start[i]];
        for (int j = 0; j < i; j++)
            if (slots[j] == slots[i]) *one_by_one = 1;
    }
    grow_i32(&c->runs, &c->runs_cap, 2 * (size_t)nr + 1);
    CK(cudaMemcpy(c->runs, start, (2 * (size_t)nr + 1) * sizeof(int32_t), cudaMemcpyHostToDevice));
    c->runs_n = -1;
    if ((size_t)n > c->runs_key_cap) {
        int32_t *k = (int32_t *)realloc(c->runs_key, (size_t)n * 2 * sizeof(int32_t));
        if (!k) return nr; /* no cache this time */
        c->runs_key = k;
        c->runs_key_cap = (size_t)n * 2;
    }
    memcpy(c->runs_key, rows->slot, (size_t)n * sizeof(int32_t));
    c->runs_n = n;
    c->runs_nr = nr;
    c->runs_one = *one_by_one;
    return nr;
}

/* grid (runs, ceil(C / blockDim)); thread = channel; rows of the run in order. */
__global__ void k_gdn_conv(float *x, const float *w, float *conv, const int32_t *start,
                           const int32_t *slots, int run0, int C, int K) {
    const int run = run0 + blockIdx.x;
    const int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const int H = K - 1;
    float *hist = conv + (size_t)slots[run] * H * C;
    const float *wc = w + (size_t)c * K;
    for (int r = start[run]; r < start[run + 1]; r++) {
        float *xr = x + (size_t)r * C;
        const float in = xr[c];
        float acc = wc[K - 1] * in;
        for (int i = 0; i < H; i++) acc += wc[i] * hist[(size_t)i * C + c];
        for (int i = 0; i + 1 < H; i++) hist[(size_t)i * C + c] = hist[(size_t)(i + 1) * C + c];
        if (H > 0) hist[(size_t)(H - 1) * C + c] = in;
        xr[c] = dev_silu(acc);
    }
}

static void cu_gdn_conv(tl_backend *be, float *x, const float *w, tl_gdn_state *st,
                        const tl_rows *rows) {
    if (rows->n <= 0 || st->conv_dim <= 0) return;
    cu_ctx *c = (cu_ctx *)be->ctx;
    int one;
    const int nr = gdn_runs(c, rows, &one);
    const int32_t *start = c->runs, *slots = c->runs + nr + 1;
    const unsigned threads = 128, by = (unsigned)((st->conv_dim + 127) / 128);
    for (int r0 = 0; r0 < nr; r0 += one ? 1 : nr) {
        dim3 grid((unsigned)(one ? 1 : nr), by);
        k_gdn_conv<<<grid, threads>>>(x, w, st->conv, start, slots, r0, st->conv_dim, st->conv_k);
        CK_LAUNCH("k_gdn_conv");
    }
}

/* grid (runs, Hv), CU_GDN_THREADS threads. Per row of the run: q, k l2-normalised into shared
 * memory; then each thread owns state columns j (S[i][j] for all i, in global memory): decay,
 * m = Sᵀk, delta = beta (v - m), S += k deltaᵀ, o = Sᵀq — the reference's exact order. */
__global__ void __launch_bounds__(CU_GDN_THREADS)
k_gdn_rule(float *out, const float *qkv, const float *a, const float *b, const float *a_log,
           const float *dt_bias, float *rec, const int32_t *start, const int32_t *slots, int run0,
           int Hk, int Hv, int dk, int dv, int C) {
    __shared__ float qs[TL_GDN_MAX_DK], ks[TL_GDN_MAX_DK];
    const int run = run0 + blockIdx.x, h = blockIdx.y;
    const int kh = h / (Hv / Hk), key_dim = Hk * dk;
    const float qscale = 1.0f / sqrtf((float)dk);
    float *S = rec + (((size_t)slots[run] * Hv + h) * dk) * dv;
    for (int r = start[run]; r < start[run + 1]; r++) {
        const float *row = qkv + (size_t)r * C;
        const float *qr = row + (size_t)kh * dk, *kr = row + key_dim + (size_t)kh * dk;
        const float *v = row + 2 * (size_t)key_dim + (size_t)h * dv;
        float sq = 0.0f, sk = 0.0f;
        for (int i = threadIdx.x; i < dk; i += blockDim.x) {
            sq += qr[i] * qr[i];
            sk += kr[i] * kr[i];
        }
        sq = block_sum(sq);
        sk = block_sum(sk);
        const float iq = 1.0f / sqrtf(sq + 1e-6f) * qscale, ik = 1.0f / sqrtf(sk + 1e-6f);
        for (int i = threadIdx.x; i < dk; i += blockDim.x) {
            qs[i] = qr[i] * iq;
            ks[i] = kr[i] * ik;
        }
        __syncthreads();
        const float beta = dev_sigmoid(b[(size_t)r * Hv + h]);
        const float xa = a[(size_t)r * Hv + h] + dt_bias[h];
        const float sp = xa > 20.0f ? xa : log1pf(expf(xa));
        const float alpha = expf(-expf(a_log[h]) * sp);
        float *o = out + (size_t)r * Hv * dv + (size_t)h * dv;
        for (int j = threadIdx.x; j < dv; j += blockDim.x) {
            float m = 0.0f;
            for (int i = 0; i < dk; i++) {
                const float sij = S[(size_t)i * dv + j] * alpha;
                S[(size_t)i * dv + j] = sij;
                m += sij * ks[i];
            }
            const float delta = beta * (v[j] - m);
            float acc = 0.0f;
            for (int i = 0; i < dk; i++) {
                const float sij = S[(size_t)i * dv + j] + ks[i] * delta;
                S[(size_t)i * dv + j] = sij;
                acc += sij * qs[i];
            }
            o[j] = acc;
        }
        __syncthreads(); /* qs/ks are rewritten by the next row */
    }
}

/* The same rule with the state in registers, for dk <= CU_GDN_SPLIT * CU_GDN_IPT (Qwen3.5:
 * 128): grid (runs, Hv, ceil(dv / 32)), CU_GDN_SPLIT warps. Lane l owns state column
 * j = 32 * blockIdx.z + l; warp w holds its rows i = w, w + SPLIT, ... in registers for the whole
 * run (read once, written once). Sums over i (m = Sᵀk, o = Sᵀq) meet in shared memory. */
#define CU_GDN_SPLIT 4
#define CU_GDN_IPT 32
__global__ void __launch_bounds__(32 * CU_GDN_SPLIT)
k_gdn_rule_reg(float *out, const float *qkv, const float *a, const float *b, const float *a_log,
               const float *dt_bias, float *rec, const int32_t *start, const int32_t *slots,
               int run0, int Hk, int Hv, int dk, int dv, int C) {
    __shared__ float qs[CU_GDN_SPLIT * CU_GDN_IPT], ks[CU_GDN_SPLIT * CU_GDN_IPT];
    __shared__ float red[CU_GDN_SPLIT][32];
    const int run = run0 + blockIdx.x, h = blockIdx.y;
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    const int j = blockIdx.z * 32 + lane;
    const bool jok = j < dv;
    const int kh = h / (Hv / Hk), key_dim = Hk * dk;
    const float qscale = 1.0f / sqrtf((float)dk);
    float *S = rec + (((size_t)slots[run] * Hv + h) * dk) * dv;
    float sr[CU_GDN_IPT];
#pragma unroll
    for (int u = 0; u < CU_GDN_IPT; u++) {
        const int i = wid + CU_GDN_SPLIT * u;
        sr[u] = (jok && i < dk) ? S[(size_t)i * dv + j] : 0.0f;
    }
    for (int r = start[run]; r < start[run + 1]; r++) {
        const float *row = qkv + (size_t)r * C;
        const float *qr = row + (size_t)kh * dk, *kr = row + key_dim + (size_t)kh * dk;
        const float *v = row + 2 * (size_t)key_dim + (size_t)h * dv;
        float sq = 0.0f, sk = 0.0f;
        for (int i = threadIdx.x; i < dk; i += blockDim.x) {
            sq += qr[i] * qr[i];
            sk += kr[i] * kr[i];
        }
        sq = block_sum(sq); /* starts with a barrier: the last row is done with qs, ks, red */
        sk = block_sum(sk);
        const float iq = 1.0f / sqrtf(sq + 1e-6f) * qscale, ik = 1.0f / sqrtf(sk + 1e-6f);
        for (int i = threadIdx.x; i < dk; i += blockDim.x) {
            qs[i] = qr[i] * iq;
            ks[i] = kr[i] * ik;
        }
        __syncthreads();
        const float beta = dev_sigmoid(b[(size_t)r * Hv + h]);
        const float xa = a[(size_t)r * Hv + h] + dt_bias[h];
        const float sp = xa > 20.0f ? xa : log1pf(expf(xa));
        const float alpha = expf(-expf(a_log[h]) * sp);
        float m = 0.0f;
#pragma unroll
        for (int u = 0; u < CU_GDN_IPT; u++) {
            const int i = wid + CU_GDN_SPLIT * u;
            if (i < dk) {
                sr[u] *= alpha;
                m += sr[u] * ks[i];
            }
        }
        red[wid][lane] = m;
        __syncthreads();
        float mt = 0.0f;
#pragma unroll
        for (int w = 0; w < CU_GDN_SPLIT; w++) mt += red[w][lane];
        const float delta = beta * ((jok ? v[j] : 0.0f) - mt);
        float acc = 0.0f;
#pragma unroll
        for (int u = 0; u < CU_GDN_IPT; u++) {
            const int i = wid + CU_GDN_SPLIT * u;
            if (i < dk) {
                sr[u] += ks[i] * delta;
                acc += sr[u] * qs[i];
            }
        }
        __syncthreads(); /* every warp has read red */
        red[wid][lane] = acc;
        __syncthreads();
        if (wid == 0 && jok) {
            float o = 0.0f;
#pragma unroll
            for (int w = 0; w < CU_GDN_SPLIT; w++) o += red[w][lane];
            out[(size_t)r * Hv * dv + (size_t)h * dv + j] = o;
        }
    }
#pragma unroll
    for (int u = 0; u < CU_GDN_IPT; u++) {
        const int i = wid + CU_GDN_SPLIT * u;
        if (jok && i < dk) S[(size_t)i * dv + j] = sr[u];
    }
}

static void cu_gdn_rule(tl_backend *be, float *out, const float *qkv, const float *a,
                        const float *b, const float *a_log, const float *dt_bias,
                        tl_gdn_state *st, const tl_rows *rows) {
    if (rows->n <= 0 || st->n_v_heads <= 0) return;
    if (st->dk > TL_GDN_MAX_DK || st->dv <= 0 || st->n_k_heads <= 0 ||
        st->n_v_heads % st->n_k_heads != 0)
        tl_panic(__FILE__, __LINE__, "cuda gdn_rule: head dims over TL_GDN_MAX_DK or value heads "
                                     "not a multiple of key heads (the loader should refuse it)");
    cu_ctx *c = (cu_ctx *)be->ctx;
    int one;
    const int nr = gdn_runs(c, rows, &one);
    const int32_t *start = c->runs, *slots = c->runs + nr + 1;
    const int reg = st->dk <= CU_GDN_SPLIT * CU_GDN_IPT;
    for (int r0 = 0; r0 < nr; r0 += one ? 1 : nr) {
        if (reg) {
            dim3 grid((unsigned)(one ? 1 : nr), (unsigned)st->n_v_heads,
                      (unsigned)((st->dv + 31) / 32));
            k_gdn_rule_reg<<<grid, 32 * CU_GDN_SPLIT>>>(out, qkv, a, b, a_log, dt_bias, st->rec,
                                                        start, slots, r0, st->n_k_heads,
                                                        st->n_v_heads, st->dk, st->dv,
                                                        st->conv_dim);
            CK_LAUNCH("k_gdn_rule_reg");
            continue;
        }
        dim3 grid((unsigned)(one ? 1 : nr), (unsigned)st->n_v_heads);
        k_gdn_rule<<<grid, CU_GDN_THREADS>>>(out, qkv, a, b, a_log, dt_bias, st->rec, start,
                                             slots, r0, st->n_k_heads, st->n_v_heads, st->dk,
                                             st->dv, st->conv_dim);
        CK_LAUNCH("k_gdn_rule");
    }
}

static void cu_gdn_state_clear(tl_backend *be, tl_gdn_state *st, int slot) {
    const size_t nc = (size_t)(st->conv_k - 1) * st->conv_dim;
    const size_t nr = (size_t)st->n_v_heads * st->dk * st->dv;
    if (nc) CK(cudaMemset(st->conv + (size_t)slot * nc, 0, nc * sizeof(float)));
    if (nr) CK(cudaMemset(st->rec + (size_t)slot * nr, 0, nr * sizeof(float)));
}

/* ---- host self-check ------------------------------------------------------------------------ */

/* Runs the weight-decoding code the kernels use (w_get, chunk_dot with the folded scale/bias),
 * compiled for the host, against tl_wdesc_dequant_row on random weights of every format: a check
 * of the trickiest indexing that needs no GPU. Returns the number of mismatches; the first is
 * described in msg. Declared by tests/cuda/test_cuda_ops.c only. */
extern "C" int tl_cuda_host_selfcheck(char *msg, size_t cap) {
    int bad = 0;
    uint32_t seed = 7;
    const int rows = 3, cols = 256;
    float *ref = (float *)malloc(cols * sizeof(float));
    float *x = NULL;
    uint8_t *data = (uint8_t *)malloc((size_t)rows * cols * 4);
    float *sh = (float *)malloc((size_t)rows * cols * 4);
    float *bh = (float *)malloc((size_t)rows * cols * 4);
    uint16_t *sraw = (uint16_t *)malloc((size_t)rows * cols * 4);
    uint16_t *braw = (uint16_t *)malloc((size_t)rows * cols * 4);
    if (posix_memalign((void **)&x, 16, cols * sizeof(float)) != 0) x = NULL;
    if (!ref || !x || !data || !sh || !bh || !sraw || !braw) {
        snprintf(msg, cap, "out of memory");
        bad = 1;
        goto out;
    }
    msg[0] = 0;
    for (int i = 0; i < cols; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
    static const int bitss[] = {0, 2, 3, 4, 5, 6, 8}; /* 0: dense */
    static const int gss[] = {32, 64, 128};
    static const tl_dtype dts[] = {TL_DT_F32, TL_DT_F16, TL_DT_BF16};
    for (int bi = 0; bi < 7; bi++)
        for (int gi = 0; gi < 3; gi++)
            for (int di = 0; di < 3; di++) {
                const int bits = bitss[bi];
                tl_wdesc d;
                memset(&d, 0, sizeof d);
                d.name = "selfcheck";
                d.rows = rows;
                d.cols = cols;
                d.dtype = dts[di];
                d.kind = bits ? TL_W_AFFINE : TL_W_DENSE;
                d.bits = bits;
                d.group_size = gss[gi];
                tl_wdesc_finish(&d);
                const size_t nb = d.row_bytes * rows;
                for (size_t i = 0; i < nb; i++) {
                    seed = seed * 1664525u + 1013904223u;
                    data[i] = (uint8_t)(seed >> 24);
                }
                if (!bits && d.dtype != TL_DT_F32) /* keep dense 16-bit values finite */
                    for (size_t i = 1; i < nb; i += 2) data[i] = (uint8_t)(0x38 + (data[i] & 7));
                if (!bits && d.dtype == TL_DT_F32)
                    for (size_t i = 3; i < nb; i += 4) data[i] = (uint8_t)(0x3c + (data[i] & 1));
                d.data = data;
                tl_wmat hw; /* the weight as weight_prepare holds it, in host memory */
                memset(&hw, 0, sizeof hw);
                hw.data = data;
                if (bits) {
                    const size_t ns = (size_t)rows * (cols / d.group_size);
                    float *sf = (float *)sraw, *bf = (float *)braw;
                    for (size_t i = 0; i < ns; i++) {
                        float sv = 0.01f * (float)(1 + i % 7), bv = -0.1f * (float)(i % 5);
                        if (d.dtype == TL_DT_F32) {
                            sf[i] = sv;
                            bf[i] = bv;
                        } else if (d.dtype == TL_DT_F16) {
                            sraw[i] = tl_f32_to_f16(sv);
                            braw[i] = tl_f32_to_f16(bv);
                        } else {
                            sraw[i] = tl_f32_to_bf16(sv);
                            braw[i] = tl_f32_to_bf16(bv);
                        }
                    }
                    d.scales = sraw;
                    d.biases = braw;
                    for (size_t i = 0; i < ns; i++) { /* as weight_prepare widens them */
                        sh[i] = tl_dtype_get_f32(d.dtype, sraw, i);
                        bh[i] = tl_dtype_get_f32(d.dtype, braw, i);
                    }
                    hw.scales = sh;
                    hw.biases = bh;
                }
                hw.d = d;
                const wdev v = wdev_of(&hw);
                const int fast = gemv_fast_ok(&d, x);
                for (int r = 0; r < rows; r++) {
                    tl_wdesc_dequant_row(&d, r, ref);
                    double dot = 0.0, mag = 0.0;
                    for (int c = 0; c < cols; c++) {
                        const float got = w_get(v, r, c);
                        dot += (double)ref[c] * x[c];
                        mag += fabs((double)ref[c] * x[c]);
                        if (!(fabsf(got - ref[c]) <= 1e-6f * (1.0f + fabsf(ref[c])))) {
                            if (!bad++)
                                snprintf(msg, cap, "w_get: bits %d group %d dtype %d row %d col "
                                         "%d: %g, reference %g", bits, d.group_size, (int)d.dtype,
                                         r, c, got, ref[c]);
                        }
                    }
                    if (!fast) continue;
                    /* the GEMV's 128-bit path, chunk by chunk, as one lane sequence */
                    const uint4 *rw = (const uint4 *)(data + (size_t)r * d.row_bytes);
                    const int E = 128 / bits;
                    double acc = 0.0;
                    for (int ch = 0; ch < (int)(d.row_bytes / 16); ch++) {
                        const int c0 = ch * E;
                        const size_t g = (size_t)r * v.ng + (size_t)(c0 / v.gs);
                        float sx = 0.0f;
                        for (int e = 0; e < E; e++) sx += x[c0 + e];
                        const float sxq = bits == 4 ? chunk_dot<4>(rw[ch], x + c0, sx)
                                                    : chunk_dot<8>(rw[ch], x + c0, sx);
                        acc += sh[g] * sxq + bh[g] * sx;
                    }
                    if (!(fabs(acc - dot) <= 1e-5 * (1.0 + mag))) {
                        if (!bad++)
                            snprintf(msg, cap, "chunk_dot: bits %d group %d dtype %d row %d: "
                                     "%.9g, reference %.9g", bits, d.group_size, (int)d.dtype, r,
                                     acc, dot);
                    }
                }
            }
out:
    free(ref);
    free(x);
    free(data);
    free(sh);
    free(bh);
    free(sraw);
    free(braw);
    return bad;
}

/* ---- lifetime ------------------------------------------------------------------------------- */

/* Free a scratch buffer of `bytes` counted bytes (NULL: nothing). */
static void free_scratch(void *p, size_t bytes) {
    if (!p) return;
    cudaFree(p);
    tl_mem_add(TL_MEM_SCRATCH, -(int64_t)bytes);
}

static void cu_destroy(tl_backend *be) {
    cu_ctx *c = (cu_ctx *)be->ctx;
    if (c) {
        cudaDeviceSynchronize();
        const size_t i4 = sizeof(int32_t), f4 = sizeof(float);
        free_scratch(c->up.slot, c->up.cap * i4);
        free_scratch(c->up.pos, c->up.cap * i4);
        free_scratch(c->tmp.slot, c->tmp.cap * i4);
        free_scratch(c->tmp.pos, c->tmp.cap * i4);
        free_scratch(c->ids, c->ids_cap * i4);
        free_scratch(c->runs, c->runs_cap * i4);
        free_scratch(c->pt, c->pt_cap * i4);
        free_scratch(c->deq, c->deq_cap * f4);
        free_scratch(c->att, c->att_cap * f4);
        if (c->blas_state == 1) cublasDestroy(c->blas);
        free(c->hruns);
        free(c->runs_key);
        free(c);
    }
    free(be);
}

extern "C" int tl_backend_cuda_available(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n > 0;
}

extern "C" tl_backend *tl_backend_cuda_new(int device, tl_err *err) {
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
    if ((rc = cudaSetDevice(device)) != cudaSuccess) {
        cudaGetLastError();
        tl_err_set(err, TL_EUNSUP, "cannot use CUDA device %d: %s", device,
                   cudaGetErrorString(rc));
        return NULL;
    }
    tl_backend *be = (tl_backend *)calloc(1, sizeof *be);
    cu_ctx *c = (cu_ctx *)calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        tl_err_set(err, TL_ENOMEM, "out of memory creating the CUDA backend");
        return NULL;
    }
    c->runs_n = -1;
    be->ctx = c;
    be->name = "cuda";
    be->destroy = cu_destroy;
    be->alloc = cu_alloc;
    be->free = cu_free;
    be->to_host = cu_to_host;
    be->to_device = cu_to_device;
    be->sync = cu_sync;
    be->rows_upload = cu_rows_upload;
    be->kv_sync = cu_kv_sync;
    be->weight_prepare = cu_weight_prepare;
    be->weight_free = cu_weight_free;
    be->vec_upload = cu_vec_upload;
    be->matmul = cu_matmul;
    be->embed = cu_embed;
    be->rmsnorm = cu_rmsnorm;
    be->rope = cu_rope;
    be->kv_store = cu_kv_store;
    be->attention = cu_attention;
    be->swiglu = cu_swiglu;
    be->add = cu_add;
    be->mul_sigmoid = cu_mul_sigmoid;
    be->copy_rows = cu_copy_rows;
    be->gdn_conv = cu_gdn_conv;
    be->gdn_rule = cu_gdn_rule;
    be->gated_rmsnorm = cu_gated_rmsnorm;
    be->gdn_state_clear = cu_gdn_state_clear;
    return be;
}
