"""qwen35_common.py — helpers shared by the Qwen3.5 golden scripts.

hash_f32(seed, n, scale) is the deterministic "random" generator that tests/test_qwen35*.c
re-implements bit for bit (tl_test_hash_f32 there): value i of stream `seed` is
    x = mix32(i * 0x9E3779B1 + seed * 0x85EBCA77)      (uint32 arithmetic)
    v = f32(x >> 8) * 2^-23 - 1                          (exact, in [-1, 1))
    v = f32(v * scale)                                   (one f32 rounding)
so goldens need to store only outputs, never inputs or weights.
"""
import numpy as np

M32 = 0xFFFFFFFF


def mix32(x):
    x = x.astype(np.uint64) & M32
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & M32
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & M32
    x ^= x >> np.uint64(16)
    return x


def hash_f32(seed, n, scale=1.0):
    i = np.arange(n, dtype=np.uint64)
    x = (i * np.uint64(0x9E3779B1) + np.uint64((seed * 0x85EBCA77) & M32)) & M32
    x = mix32(x)
    v = (x >> np.uint64(8)).astype(np.float32) * np.float32(2.0 ** -23) - np.float32(1.0)
    return (v * np.float32(scale)).astype(np.float32)


def write_floats(f, name, arr):
    arr = np.asarray(arr, dtype=np.float32).reshape(-1)
    f.write("%s %d\n" % (name, arr.size))
    for i in range(0, arr.size, 8):
        f.write(" ".join("%.9g" % v for v in arr[i:i + 8]) + "\n")
