// TROUPE_HOST_DEVICE marks a small inline function that both the host code and the CUDA kernels
// call (nvcc compiles it for both; a plain C++ compiler sees an ordinary inline function), so one
// rule serves both and the CPU tests check it.
#pragma once

#if defined(__CUDACC__)
#define TROUPE_HOST_DEVICE __host__ __device__
#else
#define TROUPE_HOST_DEVICE
#endif
