// Python binding, argument checks and a host fallback loop for bias_act.
#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include "bias_act.h"

namespace latentlab {
namespace bias_act {

void launch_cuda(const Params& p, at::Tensor& y, const at::Tensor& x, const at::Tensor& b, const at::Tensor& g,
                 const at::Tensor& h);

template <typename scalar_t, typename acc_t>
static void run_host(int64_t begin, int64_t end, const Params& p, scalar_t* y, const scalar_t* x, const scalar_t* b,
                     const scalar_t* g, const scalar_t* h) {
    switch (p.act) {
#define LL_CASE(A) \
    case A: run_range<A, scalar_t, acc_t, int64_t>(begin, end, 1, p, y, x, b, g, h); break;
        LL_CASE(LINEAR)
        LL_CASE(RELU)
        LL_CASE(LRELU)
        LL_CASE(TANH)
        LL_CASE(SIGMOID)
        LL_CASE(ELU)
        LL_CASE(SELU)
        LL_CASE(SOFTPLUS)
        LL_CASE(SWISH)
#undef LL_CASE
    }
}

// Bring `t` into exactly the memory layout of `like` (a dense tensor).
static at::Tensor same_layout(const at::Tensor& t, const at::Tensor& like) {
    if (t.strides() == like.strides()) return t;
    return at::empty_like(like).copy_(t);
}

static void check_like(const at::Tensor& t, const at::Tensor& x, const char* what) {
    TORCH_CHECK(t.defined() && t.sizes() == x.sizes(), "bias_act: ", what, " must have the shape of x");
    TORCH_CHECK(t.scalar_type() == x.scalar_type(), "bias_act: ", what, " must have the dtype of x");
    TORCH_CHECK(t.device() == x.device(), "bias_act: ", what, " must be on the device of x");
}

// mode 0: clamp(act(x + b) * gain); mode 1: g * d/dz of that; mode 2: g * h * d2/dz2.
// `b`, `g`, `h` may be empty tensors when unused. The result has the layout of x
// when x is dense (contiguous, channels_last or any other permutation).
at::Tensor bias_act(at::Tensor x, at::Tensor b, at::Tensor g, at::Tensor h, int64_t act, int64_t mode, double alpha,
                    double gain, double clamp, int64_t dim) {
    TORCH_CHECK(act >= 0 && act < NUM_ACTS, "bias_act: bad activation index ", act);
    TORCH_CHECK(mode >= FORWARD && mode <= GRAD2, "bias_act: bad mode ", mode);
    TORCH_CHECK(at::isFloatingType(x.scalar_type()), "bias_act: x must be a floating-point tensor");
    const bool has_bias = b.defined() && b.numel() > 0;
    if (has_bias) {
        TORCH_CHECK(x.dim() > 0 && dim >= 0 && dim < x.dim(), "bias_act: dim out of range");
        TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(dim), "bias_act: b must be 1-D with x.shape[dim] entries");
        TORCH_CHECK(b.scalar_type() == x.scalar_type(), "bias_act: b must have the dtype of x");
        TORCH_CHECK(b.device() == x.device(), "bias_act: b must be on the device of x");
    }
    if (mode >= GRAD1) check_like(g, x, "g");
    if (mode == GRAD2) check_like(h, x, "h");

    if (!x.is_non_overlapping_and_dense()) x = x.contiguous();
    at::Tensor y = at::empty_like(x);  // keeps x's strides since x is dense
    if (x.numel() == 0) return y;
    at::Tensor bc = has_bias ? b.contiguous() : at::Tensor();
    at::Tensor gc = mode >= GRAD1 ? same_layout(g, x) : at::Tensor();
    at::Tensor hc = mode == GRAD2 ? same_layout(h, x) : at::Tensor();

    Params p;
    p.n = x.numel();
    p.channels = has_bias ? x.size(dim) : 0;
    p.step = has_bias && x.size(dim) > 1 ? x.stride(dim) : 1;
    if (p.step < 1) p.step = 1;
    p.act = int(act);
    p.mode = int(mode);
    p.alpha = alpha;
    p.gain = gain;
    p.clamp = clamp;

    if (x.is_cuda()) {
        launch_cuda(p, y, x, bc, gc, hc);
        return y;
    }
    TORCH_CHECK(x.device().is_cpu(), "bias_act: unsupported device ", x.device());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "latentlab_bias_act_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        auto ptr = [](const at::Tensor& t) -> const scalar_t* { return t.defined() ? t.data_ptr<scalar_t>() : nullptr; };
        scalar_t* yp = y.data_ptr<scalar_t>();
        const scalar_t *xp = ptr(x), *bp = ptr(bc), *gp = ptr(gc), *hp = ptr(hc);
        at::parallel_for(0, p.n, 4096, [&](int64_t begin, int64_t end) {
            run_host<scalar_t, acc_t>(begin, end, p, yp, xp, bp, gp, hp);
        });
    });
    return y;
}

}  // namespace bias_act
}  // namespace latentlab

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "latentlab bias_act kernels (CUDA, with a host loop for testing)";
    m.def("bias_act", &latentlab::bias_act::bias_act, "Fused bias + activation + gain + clamp and its derivatives",
          pybind11::arg("x"), pybind11::arg("b"), pybind11::arg("g"), pybind11::arg("h"), pybind11::arg("act"),
          pybind11::arg("mode"), pybind11::arg("alpha"), pybind11::arg("gain"), pybind11::arg("clamp"),
          pybind11::arg("dim"));
}
