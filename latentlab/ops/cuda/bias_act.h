// Per-element maths of bias_act, shared by the CUDA kernel and the host loop
// (the host loop exists so the maths can be tested on machines without a GPU).
#pragma once

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define LL_HD __host__ __device__ __forceinline__
#else
#define LL_HD inline
#endif

namespace latentlab {
namespace bias_act {

enum Act { LINEAR = 0, RELU, LRELU, TANH, SIGMOID, ELU, SELU, SOFTPLUS, SWISH, NUM_ACTS };

// mode 0: y = clamp(act(z) * gain)
// mode 1: dz = g * gain * act'(z) * inside(clamp)
// mode 2: dz = g * h * gain * act''(z) * inside(clamp), with h the first-order upstream grad
enum Mode { FORWARD = 0, GRAD1 = 1, GRAD2 = 2 };

LL_HD float ll_exp(float v) { return expf(v); }
LL_HD double ll_exp(double v) { return exp(v); }
LL_HD float ll_expm1(float v) { return expm1f(v); }
LL_HD double ll_expm1(double v) { return expm1(v); }
LL_HD float ll_log1p(float v) { return log1pf(v); }
LL_HD double ll_log1p(double v) { return log1p(v); }
LL_HD float ll_tanh(float v) { return tanhf(v); }
LL_HD double ll_tanh(double v) { return tanh(v); }

// Value, first and second derivative of the activation at z. Branch conventions at
// kinks follow PyTorch's autograd (derivative of the z > 0 branch only for z > 0),
// so results match the reference path exactly where it matters for gradcheck.
template <int A, typename T>
LL_HD void act_eval(T z, T alpha, T& f, T& d1, T& d2) {
    const T one = T(1), zero = T(0);
    if (A == LINEAR) {
        f = z; d1 = one; d2 = zero;
    } else if (A == RELU) {
        const bool p = z > zero;
        f = p ? z : zero; d1 = p ? one : zero; d2 = zero;
    } else if (A == LRELU) {
        const bool p = z > zero;
        f = p ? z : alpha * z; d1 = p ? one : alpha; d2 = zero;
    } else if (A == TANH) {
        const T t = ll_tanh(z);
        f = t; d1 = one - t * t; d2 = T(-2) * t * d1;
    } else if (A == SIGMOID) {
        const T s = one / (one + ll_exp(-z));
        f = s; d1 = s * (one - s); d2 = d1 * (one - T(2) * s);
    } else if (A == ELU || A == SELU) {
        // selu ignores alpha: it is elu with fixed constants, scaled
        const T a = (A == SELU) ? T(1.6732632423543772) : alpha;
        const T sc = (A == SELU) ? T(1.0507009873554805) : one;
        if (z > zero) {
            f = sc * z; d1 = sc; d2 = zero;
        } else {
            const T e = ll_exp(z);
            f = sc * a * ll_expm1(z); d1 = sc * a * e; d2 = d1;
        }
    } else if (A == SOFTPLUS) {
        // same linear cut-off as torch.nn.functional.softplus (threshold 20)
        if (z > T(20)) {
            f = z; d1 = one; d2 = zero;
        } else {
            const T s = one / (one + ll_exp(-z));
            f = ll_log1p(ll_exp(z)); d1 = s; d2 = s * (one - s);
        }
    } else {  // SWISH
        const T s = one / (one + ll_exp(-z));
        f = z * s;
        d1 = s * (one + z * (one - s));
        d2 = s * (one - s) * (T(2) + z * (one - T(2) * s));
    }
}

// One output element. `clamp` < 0 disables clamping; the gradient of the clamp is
// taken as 1 on the closed interval [-clamp, clamp], as torch.clamp does.
template <int A, typename T>
LL_HD T eval_one(int mode, T z, T g, T h, T alpha, T gain, T clamp) {
    T f, d1, d2;
    act_eval<A, T>(z, alpha, f, d1, d2);
    const T y = f * gain;
    if (mode == FORWARD) {
        if (clamp >= T(0)) return y > clamp ? clamp : (y < -clamp ? -clamp : y);
        return y;
    }
    if (clamp >= T(0) && !(y >= -clamp && y <= clamp)) return T(0);
    if (mode == GRAD1) return g * gain * d1;
    return g * h * gain * d2;
}

struct Params {
    int64_t n;         // number of elements
    int64_t step;      // memory stride of the bias axis
    int64_t channels;  // bias length; 0 = no bias
    int act;
    int mode;
    double alpha, gain, clamp;
};

// Elements [begin, end) with stride `stride`, in memory order. All tensors share
// one dense layout, so the bias index follows from the memory offset alone.
template <int A, typename scalar_t, typename acc_t, typename index_t>
LL_HD void run_range(index_t begin, index_t end, index_t stride, const Params& p, scalar_t* y,
                     const scalar_t* x, const scalar_t* b, const scalar_t* g, const scalar_t* h) {
    const acc_t alpha = acc_t(p.alpha), gain = acc_t(p.gain), clamp = acc_t(p.clamp);
    const index_t step = index_t(p.step), channels = index_t(p.channels);
    for (index_t i = begin; i < end; i += stride) {
        acc_t z = acc_t(x[i]);
        if (channels > 0) z += acc_t(b[(i / step) % channels]);
        const acc_t gv = g ? acc_t(g[i]) : acc_t(0);
        const acc_t hv = h ? acc_t(h[i]) : acc_t(0);
        y[i] = scalar_t(eval_one<A, acc_t>(p.mode, z, gv, hv, alpha, gain, clamp));
    }
}

}  // namespace bias_act
}  // namespace latentlab
