// CUDA launcher of filtered_lrelu: one block per output tile (grid-stride over tiles), the
// tile's workspace in shared memory, or in a global scratch buffer when too large. Each compiled
// configuration (Spec, see filtered_lrelu.h) is its own kernel.
//
// Shared memory per block (shared_plan_cuda): registers bound the kernels to kBlocksPerSM blocks
// per SM (see the launch bounds), so each block may take an even share of the SM's shared memory
// without lowering occupancy; beyond 48 KiB that needs the opt-in (cudaFuncSetAttribute). On an
// H100/H200 (228 KiB per SM, 1 KiB reserved per block) a float32 block gets 75 KiB, and 3 blocks
// of 256 threads per SM still fit: StyleGAN3's calls get tiles of 26x52 to 50x50 outputs, which
// recompute 1.21-1.31x the intermediate area instead of 1.29-1.46x at 48 KiB (plan_tiles in
// filtered_lrelu.cpp). Two larger blocks per SM (111 KiB) would recompute less still, but run 16
// warps per SM instead of 24 unless they had more threads, which at 80 registers and 2 blocks
// allows at most 384; not chosen without a GPU to time it.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>

#include "filtered_lrelu.h"

namespace latentlab {
namespace filtered_lrelu {

// The threads of one block share a tile; each phase of the tile is followed by a barrier.
struct BlockGroup {
    int tid, size;
    LL_HD void sync() const {
#if defined(__CUDA_ARCH__)
        __syncthreads();
#endif
    }
};

constexpr int kThreads = 256;
template <typename acc_t>
constexpr int kBlocksPerSM = sizeof(acc_t) == 4 ? 3 : 2;
constexpr int64_t kMaxBlocksShared = 1 << 20;
constexpr int64_t kMaxBlocksScratch = 1024;  // bounds the scratch buffer

// Three blocks of 256 threads per SM (with their shares of shared memory, see above) cap the float32 kernels at
// 80 registers, which the register-blocked passes need to run without spilling (ptxas -v, sm_90:
// at 64 every compiled configuration spilled); the float64 ones get two blocks (128 registers).
template <typename S, typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kThreads, kBlocksPerSM<acc_t>)
    filtered_lrelu_kernel(Params p, scalar_t* y, const scalar_t* x, const scalar_t* b, const acc_t* f1,
                          const acc_t* f2, uint8_t* m, acc_t* scratch) {
    extern __shared__ __align__(16) unsigned char smem[];
    const int64_t per_block = p.ws_t + p.ws_a + p.ws_b;
    acc_t* ws = scratch ? scratch + int64_t(blockIdx.x) * per_block : reinterpret_cast<acc_t*>(smem);
    const BlockGroup g{int(threadIdx.x), int(blockDim.x)};
    // The rearranged filters stay in the workspace for all the block's tiles.
    prepare_taps<acc_t, BlockGroup>(p, g, f1, f2, ws);
    // All threads of a block walk the same tiles, so every barrier is reached by all of them.
    for (int64_t t = blockIdx.x; t < p.tiles; t += gridDim.x)
        run_tile<S, scalar_t, acc_t, BlockGroup>(t, p, g, y, x, b, m, ws, ws + p.ws_t);
}

// The shared-memory budget per block for x's device (bytes, for a workspace of elem_bytes
// elements: 4 float32 opmath, 8 float64) and the fewest tiles plan_tiles should cut a call into.
void shared_plan_cuda(const at::Tensor& x, int64_t elem_bytes, int64_t& budget, int64_t& min_tiles) {
    const int dev = x.device().index();
    auto attr = [dev](cudaDeviceAttr a) {
        int v = 0;
        C10_CUDA_CHECK(cudaDeviceGetAttribute(&v, a, dev));
        return int64_t(v);
    };
    const int per_sm = elem_bytes == 4 ? kBlocksPerSM<float> : kBlocksPerSM<double>;
    const int64_t share = attr(cudaDevAttrMaxSharedMemoryPerMultiprocessor) / per_sm -
                          attr(cudaDevAttrReservedSharedMemoryPerBlock);
    budget = std::max<int64_t>(kSharedBytes, std::min(share, attr(cudaDevAttrMaxSharedMemoryPerBlockOptin)));
    min_tiles = 2 * attr(cudaDevAttrMultiProcessorCount) * per_sm;  // two waves of resident blocks
}

// Tensors are already validated and the tiles planned by filtered_lrelu.cpp.
void launch_cuda(const Params& p, at::Tensor& y, const at::Tensor& x, const at::Tensor& b, const at::Tensor& f1,
                 const at::Tensor& f2, at::Tensor& m) {
    const c10::cuda::CUDAGuard guard(x.device());
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "latentlab_filtered_lrelu_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const int64_t per_block = p.ws_t + p.ws_a + p.ws_b;
        const int64_t bytes = per_block * int64_t(sizeof(acc_t));
        const bool shared = bytes <= p.smem_budget;
        const int blocks = int(std::min<int64_t>(p.tiles, shared ? kMaxBlocksShared : kMaxBlocksScratch));
        at::Tensor scratch;
        if (!shared) scratch = at::empty({blocks * per_block}, x.options().dtype(f1.scalar_type()));
        with_spec(p, [&](auto spec) {
            const size_t smem_bytes = shared ? size_t(bytes) : 0;
            auto* kernel = filtered_lrelu_kernel<decltype(spec), scalar_t, acc_t>;
            if (smem_bytes > size_t(kSharedBytes))  // opt in (per kernel and device; cheap to repeat)
                C10_CUDA_CHECK(
                    cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem_bytes)));
            kernel<<<blocks, kThreads, smem_bytes, stream>>>(
                p, y.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), b.defined() ? b.data_ptr<scalar_t>() : nullptr,
                f1.data_ptr<acc_t>(), f2.data_ptr<acc_t>(), m.defined() ? m.data_ptr<uint8_t>() : nullptr,
                shared ? nullptr : scratch.data_ptr<acc_t>());
            C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
    });
}

}  // namespace filtered_lrelu
}  // namespace latentlab
