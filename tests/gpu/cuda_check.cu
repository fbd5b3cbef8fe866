// The GPU check's workload: device count, a 256 MiB allocation, a kernel, a read-back.
#include <cstdio>
#include <cuda_runtime.h>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { \
    printf("GPU FAIL: %s: %s (%s)\n", #x, cudaGetErrorName(e), cudaGetErrorString(e)); return 1; } } while (0)
__global__ void fill(unsigned *p, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) p[i] = (unsigned)(i * 2654435761u);
}
int main() {
    int n = 0; cudaDeviceProp prop; unsigned *d = nullptr;
    CK(cudaGetDeviceCount(&n)); CK(cudaGetDeviceProperties(&prop, 0));
    size_t count = (256u << 20) / sizeof(unsigned), at[4] = {0, 1, count / 2, count - 1};
    CK(cudaMalloc(&d, count * sizeof(unsigned)));
    fill<<<(unsigned)((count + 255) / 256), 256>>>(d, count); CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
    for (size_t k : at) { unsigned h = 0; CK(cudaMemcpy(&h, d + k, sizeof h, cudaMemcpyDeviceToHost));
        if (h != (unsigned)(k * 2654435761u)) { printf("GPU FAIL: read-back [%zu] = %u\n", k, h); return 1; } }
    CK(cudaFree(d));
    printf("GPU OK: %s, %d SMs, %d device(s), 256 MiB written and read back\n", prop.name, prop.multiProcessorCount, n);
    return 0;
}
