// CUDA launcher of upfirdn2d: one thread per output element, grid-stride.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <limits>

#include "upfirdn2d.h"

namespace latentlab {
namespace upfirdn2d {

template <typename scalar_t, typename index_t>
__global__ void upfirdn2d_kernel(Params p, scalar_t* __restrict__ y, const scalar_t* __restrict__ x,
                                 const at::opmath_type<scalar_t>* __restrict__ k) {
    const index_t stride = index_t(gridDim.x) * blockDim.x;
    for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < index_t(p.total); i += stride)
        run_one<scalar_t, at::opmath_type<scalar_t>, index_t>(i, p, y, x, k);
}

// Tensors are already validated by upfirdn2d.cpp; `k` has dtype opmath_type<x>.
void launch_cuda(const Params& p, at::Tensor& y, const at::Tensor& x, const at::Tensor& k) {
    const c10::cuda::CUDAGuard guard(x.device());
    const int threads = 256;
    const int blocks = int(std::min<int64_t>((p.total + threads - 1) / threads, 65536));
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "latentlab_upfirdn2d_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        // 32-bit index arithmetic is much cheaper for the per-output div/mod chain.
        if (p.total <= std::numeric_limits<int32_t>::max() / 2)
            upfirdn2d_kernel<scalar_t, int32_t><<<blocks, threads, 0, stream>>>(
                p, y.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), k.data_ptr<acc_t>());
        else
            upfirdn2d_kernel<scalar_t, int64_t><<<blocks, threads, 0, stream>>>(
                p, y.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), k.data_ptr<acc_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
}

}  // namespace upfirdn2d
}  // namespace latentlab
