// Per-output maths of upfirdn2d, shared by the CUDA kernel and the host loop
// (the host loop exists so the maths can be tested on machines without a GPU).
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define LL_HD __host__ __device__ __forceinline__
#else
#define LL_HD inline
#endif

namespace latentlab {
namespace upfirdn2d {

struct Params {
    int64_t n, c;                  // batch and channels
    int h, w;                      // input height and width
    int oh, ow;                    // output height and width
    int64_t sn, sc, sh, sw;        // input strides, in elements
    int64_t on, oc, oy_s, ox_s;    // output strides, in elements
    int ux, uy, dx, dy;            // up and down factors
    int px0, py0;                  // leading padding (negative crops)
    int kw, kh;                    // filter size
    bool flip_taps;                // read the filter reversed (true convolution)
    bool channels_last;            // walk outputs with the channel fastest
    double gain;
    int64_t total;                 // number of outputs
};

// Floor modulo for a possibly negative a and positive m.
LL_HD int pos_mod(int a, int m) {
    const int r = a % m;
    return r < 0 ? r + m : r;
}

// Smallest tap t with base + t a non-negative multiple of `up`: the first tap of a
// window starting at `base` (upsampled coordinates) that hits a real input sample.
LL_HD int first_tap(int base, int up) {
    int t = pos_mod(-base, up);
    if (base + t < 0) t += ((-base - t + up - 1) / up) * up;
    return t;
}

// Output element `i` (in the walk order given by p.channels_last). The output is the
// correlation of the zero-stuffed, padded input with the (maybe reversed) filter,
// sampled every (dx, dy) starting at 0.
template <typename scalar_t, typename acc_t, typename index_t>
LL_HD void run_one(index_t i, const Params& p, scalar_t* __restrict__ y, const scalar_t* __restrict__ x,
                   const acc_t* __restrict__ k) {
    index_t n, c, oy, ox;
    const index_t C = index_t(p.c), OH = index_t(p.oh), OW = index_t(p.ow);
    if (p.channels_last) {
        c = i % C; index_t t = i / C;
        ox = t % OW; t /= OW;
        oy = t % OH; n = t / OH;
    } else {
        ox = i % OW; index_t t = i / OW;
        oy = t % OH; t /= OH;
        c = t % C; n = t / C;
    }
    const scalar_t* xp = x + int64_t(n) * p.sn + int64_t(c) * p.sc;
    const int by = int(oy) * p.dy - p.py0;
    const int bx = int(ox) * p.dx - p.px0;
    const int ky0 = first_tap(by, p.uy);
    const int kx0 = first_tap(bx, p.ux);
    acc_t acc = acc_t(0);
    // Taps step by the up factor, so the sample index steps by one: one division per output, not per tap.
    const int ix0 = (bx + kx0) / p.ux;  // exact: bx + kx0 is a non-negative multiple of ux
    int iy = (by + ky0) / p.uy;         // likewise
    for (int ky = ky0; ky < p.kh; ky += p.uy, ++iy) {
        if (iy >= p.h) break;
        const scalar_t* row = xp + int64_t(iy) * p.sh;
        const int fy = p.flip_taps ? p.kh - 1 - ky : ky;
        int ix = ix0;
        for (int kx = kx0; kx < p.kw; kx += p.ux, ++ix) {
            if (ix >= p.w) break;
            const int fx = p.flip_taps ? p.kw - 1 - kx : kx;
            acc += k[fy * p.kw + fx] * acc_t(row[int64_t(ix) * p.sw]);
        }
    }
    acc *= acc_t(p.gain);
    y[int64_t(n) * p.on + int64_t(c) * p.oc + int64_t(oy) * p.oy_s + int64_t(ox) * p.ox_s] = scalar_t(acc);
}

}  // namespace upfirdn2d
}  // namespace latentlab
