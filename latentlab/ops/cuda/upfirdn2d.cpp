// Python binding, argument checks and a host fallback loop for upfirdn2d.
#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include "upfirdn2d.h"

namespace latentlab {
namespace upfirdn2d {

void launch_cuda(const Params& p, at::Tensor& y, const at::Tensor& x, const at::Tensor& k);

// y = sample every (down) of correlate(pad(zero_stuff(x, up)), k'), times gain, where
// k' is k reversed on both axes when flip_taps is set (a true convolution).
// x: [N, C, H, W] with any strides; k: [kh, kw] of dtype opmath_type<x> (float32, or
// float64 for float64 x). The output is channels_last exactly when x suggests it.
at::Tensor upfirdn2d(at::Tensor x, at::Tensor k, int64_t upx, int64_t upy, int64_t downx, int64_t downy,
                     int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, bool flip_taps, double gain) {
    TORCH_CHECK(x.dim() == 4, "upfirdn2d: x must be [N, C, H, W]");
    TORCH_CHECK(at::isFloatingType(x.scalar_type()), "upfirdn2d: x must be a floating-point tensor");
    TORCH_CHECK(k.dim() == 2 && k.numel() > 0, "upfirdn2d: k must be a non-empty 2-D filter");
    TORCH_CHECK(k.scalar_type() == at::toOpMathType(x.scalar_type()),
                "upfirdn2d: k must be float64 for float64 x and float32 otherwise");
    TORCH_CHECK(k.device() == x.device(), "upfirdn2d: k must be on the device of x");
    TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, "upfirdn2d: up and down must be >= 1");
    const int64_t h = x.size(2), w = x.size(3), kh = k.size(0), kw = k.size(1);
    const int64_t span_y = h * upy + pady0 + pady1 - kh, span_x = w * upx + padx0 + padx1 - kw;
    TORCH_CHECK(span_y >= 0 && span_x >= 0, "upfirdn2d: padding leaves an empty output");
    const int64_t oh = span_y / downy + 1, ow = span_x / downx + 1;
    TORCH_CHECK(h * upy + std::abs(pady0) + std::abs(pady1) + kh < (int64_t(1) << 30) &&
                    w * upx + std::abs(padx0) + std::abs(padx1) + kw < (int64_t(1) << 30),
                "upfirdn2d: spatial size too large");

    const auto fmt = x.suggest_memory_format();
    at::Tensor y = at::empty({x.size(0), x.size(1), oh, ow}, x.options().memory_format(fmt));
    if (y.numel() == 0) return y;
    if (x.numel() == 0) return y.zero_();
    at::Tensor kc = k.contiguous();

    Params p;
    p.n = x.size(0); p.c = x.size(1);
    p.h = int(h); p.w = int(w); p.oh = int(oh); p.ow = int(ow);
    p.sn = x.stride(0); p.sc = x.stride(1); p.sh = x.stride(2); p.sw = x.stride(3);
    p.on = y.stride(0); p.oc = y.stride(1); p.oy_s = y.stride(2); p.ox_s = y.stride(3);
    p.ux = int(upx); p.uy = int(upy); p.dx = int(downx); p.dy = int(downy);
    p.px0 = int(padx0); p.py0 = int(pady0);
    p.kw = int(kw); p.kh = int(kh);
    p.flip_taps = flip_taps;
    p.channels_last = fmt == at::MemoryFormat::ChannelsLast;
    p.gain = gain;
    p.total = y.numel();

    if (x.is_cuda()) {
        launch_cuda(p, y, x, kc);
        return y;
    }
    TORCH_CHECK(x.device().is_cpu(), "upfirdn2d: unsupported device ", x.device());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "latentlab_upfirdn2d_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        scalar_t* yp = y.data_ptr<scalar_t>();
        const scalar_t* xp = x.data_ptr<scalar_t>();
        const acc_t* kp = kc.data_ptr<acc_t>();
        at::parallel_for(0, p.total, 1024, [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) run_one<scalar_t, acc_t, int64_t>(i, p, yp, xp, kp);
        });
    });
    return y;
}

}  // namespace upfirdn2d
}  // namespace latentlab

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "latentlab upfirdn2d kernels (CUDA, with a host loop for testing)";
    m.def("upfirdn2d", &latentlab::upfirdn2d::upfirdn2d, "Upsample, FIR-filter and downsample [N, C, H, W]",
          pybind11::arg("x"), pybind11::arg("k"), pybind11::arg("upx"), pybind11::arg("upy"), pybind11::arg("downx"),
          pybind11::arg("downy"), pybind11::arg("padx0"), pybind11::arg("padx1"), pybind11::arg("pady0"),
          pybind11::arg("pady1"), pybind11::arg("flip_taps"), pybind11::arg("gain"));
}
