// Per-tile maths of filtered_lrelu, shared by the CUDA kernel and the host loop
// (the host loop exists so the maths, tiling included, can be tested without a GPU).
//
// One call evaluates a "chain" on one [H, W] plane: stage 1 upsamples (zero insertion, never
// stored) and FIR-filters onto an intermediate grid [MH, MW]; a pointwise step maps each
// intermediate value; stage 2 FIR-filters and decimates onto the output grid. The pointwise
// step is either the activation (leaky ReLU, gain, clamp), which can record per element which
// branch it took, or the linear map given by such a record. The backward pass is again such a
// chain (transposed filters, up and down swapped) over the very same intermediate grid, so one
// kernel serves every derivative order.
//
// The output is cut into tiles; each tile computes the part of the intermediate grid its
// outputs need into a workspace (shared memory on the GPU), so intermediates never reach
// global memory. Neighbouring tiles recompute the overlap of their footprints.
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define LL_HD __host__ __device__ __forceinline__
#else
#define LL_HD inline
#endif

namespace latentlab {
namespace filtered_lrelu {

// mode ACT: y = clamp(lrelu(v, slope) * gain), optionally recording a code per element.
// mode MASKED: y = v * gain * {0, 1, slope}[code], the derivative of ACT at the recorded point.
enum Mode { ACT = 0, MASKED = 1 };
// Codes of the record: the activation's local derivative class.
enum Code : uint8_t { CLAMPED = 0, POSITIVE = 1, NEGATIVE = 2 };
// Workspace a block may keep in shared memory without opting in; larger ones go to global memory.
constexpr int64_t kSharedBytes = 48 * 1024;

struct Params {
    int64_t n, c;                  // batch and channels
    int h, w;                      // input height and width
    int mh, mw;                    // intermediate grid (after stage 1)
    int oh, ow;                    // output height and width
    int64_t sn, sc, sh, sw;        // input strides, in elements
    int64_t on, oc, oys, oxs;      // output strides, in elements
    int ux, uy, dx, dy;            // stage 1 up, stage 2 down factors
    int px0, py0;                  // stage 1 leading padding, in upsampled pixels (negative crops)
    int qx0, qy0;                  // stage 2 leading padding, in intermediate pixels
    int f1h, f1w, f2h, f2w;        // filter sizes (a separable filter has f*h == f*w == taps)
    bool sep1, sep2;               // separable filters: two 1-D passes instead of one 2-D pass
    bool flip_taps;                // read the filters reversed (true convolution)
    double g_up, gain, g_down;     // stage 1 gain, activation gain, stage 2 gain
    double slope, clamp;           // leaky ReLU slope; clamp < 0 disables clamping
    int mode;                      // ACT or MASKED
    int tile_h, tile_w;            // output tile size
    int tiles_y, tiles_x;          // tiles per plane along each axis
    int64_t tiles;                 // n * c * tiles_y * tiles_x
    int64_t ws_a, ws_u, ws_d;      // workspace elements: activations, stage 1 rows, stage 2 rows
};

LL_HD int floor_div(int a, int b) {  // b > 0
    const int q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}
LL_HD int ceil_div(int a, int b) { return -floor_div(-a, b); }
LL_HD int imin(int a, int b) { return a < b ? a : b; }
LL_HD int imax(int a, int b) { return a > b ? a : b; }

// Smallest tap t >= 0 such that base + t is a multiple of `up` whose sample index
// (base + t) / up is at least `lo` (>= 0): the first tap that reads a real sample.
LL_HD int first_tap(int base, int up, int lo) {
    int t = base % up;
    t = t > 0 ? up - t : -t;  // (-base) mod up, in [0, up)
    const int need = lo * up - base - t;
    if (need > 0) t += need;  // need is a multiple of up here
    return t;
}

// sum_{ky,kx} k'[ky][kx] * S(by + ky, bx + kx), where S(m, n) = src(m / uy, n / ux) + add
// when uy | m and ux | n and that sample lies in the window [y0, y1) x [x0, x1), else 0;
// k' is k reversed on both axes when `flip`. `src` points at the sample (y0, x0).
template <typename acc_t, typename src_t>
LL_HD acc_t fir_window(const src_t* src, int64_t sy, int64_t sx, int y0, int y1, int x0, int x1, int by, int bx,
                       int uy, int ux, const acc_t* k, int kh, int kw, bool flip, acc_t add) {
    acc_t acc = acc_t(0);
    // Taps step by the up factor, so the sample index steps by one: one division per window, not per tap.
    const int ky0 = first_tap(by, uy, y0), kx0 = first_tap(bx, ux, x0);
    const int ix0 = (bx + kx0) / ux;  // exact and >= x0 by the choice of the first tap
    int iy = (by + ky0) / uy;         // likewise
    for (int ky = ky0; ky < kh; ky += uy, ++iy) {
        if (iy >= y1) break;
        const src_t* row = src + int64_t(iy - y0) * sy;
        const acc_t* krow = k + (flip ? kh - 1 - ky : ky) * kw;
        int ix = ix0;
        for (int kx = kx0; kx < kw; kx += ux, ++ix) {
            if (ix >= x1) break;
            acc += krow[flip ? kw - 1 - kx : kx] * (acc_t(row[int64_t(ix - x0) * sx]) + add);
        }
    }
    return acc;
}

// The pointwise step on one intermediate value (see Mode). `code` is read in MASKED mode
// and written in ACT mode.
template <typename acc_t>
LL_HD acc_t pointwise(const Params& p, acc_t v, uint8_t& code) {
    const acc_t gain = acc_t(p.gain), slope = acc_t(p.slope);
    if (p.mode == MASKED) {
        const acc_t d = code == POSITIVE ? gain : (code == NEGATIVE ? gain * slope : acc_t(0));
        return v * d;
    }
    // As the reference: leaky ReLU (derivative slope at 0), gain, then clamp with the
    // closed interval [-clamp, clamp] counting as inside.
    code = v > acc_t(0) ? POSITIVE : NEGATIVE;
    acc_t y = (v > acc_t(0) ? v : v * slope) * gain;
    if (p.clamp >= 0) {
        const acc_t c = acc_t(p.clamp);
        if (y > c) { y = c; code = CLAMPED; }
        else if (y < -c) { y = -c; code = CLAMPED; }
    }
    return y;
}

// Host: one worker, nothing to synchronise.
struct HostGroup {
    int tid = 0, size = 1;
    LL_HD void sync() const {}
};

// Rows/columns of one tile along one axis, in each grid's own coordinates.
struct Span {
    int o0, o1;  // outputs [o0, o1)
    int m0, m1;  // intermediate samples they read, clipped to the grid
    int i0, i1;  // input samples those read, clipped to the input
    int own0, own1;  // intermediate samples whose record this tile writes
};

// Footprints along one axis: output o reads intermediate [o*d - q0, o*d - q0 + f2); intermediate
// j reads upsampled positions [j - p0, j - p0 + f1), i.e. inputs i with i*u in that range.
// Each intermediate sample is owned by one tile (the first and last tiles take the unused ends).
LL_HD Span span_of(int t, int tiles, int tsize, int out, int mid, int in, int u, int d, int p0, int q0, int f1,
                   int f2) {
    Span s;
    s.o0 = t * tsize;
    s.o1 = imin(s.o0 + tsize, out);
    s.m0 = imax(s.o0 * d - q0, 0);
    s.m1 = imax(imin((s.o1 - 1) * d - q0 + f2, mid), s.m0);  // empty when the tile reads only padding
    s.i0 = imax(ceil_div(s.m0 - p0, u), 0);
    s.i1 = s.m1 > s.m0 ? imax(imin(floor_div(s.m1 - 2 - p0 + f1, u) + 1, in), s.i0) : s.i0;
    s.own0 = t == 0 ? 0 : s.o0 * d - q0;
    s.own1 = t == tiles - 1 ? mid : (s.o0 + tsize) * d - q0;
    return s;
}

// Workspace elements (upper bounds over all tiles) for tiles of th x tw outputs.
LL_HD void workspace_size(const Params& p, int th, int tw, int64_t& a, int64_t& u, int64_t& d) {
    const int64_t mh = int64_t(th - 1) * p.dy + p.f2h, mw = int64_t(tw - 1) * p.dx + p.f2w;
    a = mh * mw;
    u = p.sep1 ? ((mh + p.f1h - 2) / p.uy + 1) * mw : 0;
    d = p.sep2 ? mh * tw : 0;
}

// Stage 1 and the pointwise step: fills the activations A [m1 - m0, m1 - m0] of the tile.
template <typename scalar_t, typename acc_t, typename Group>
LL_HD void tile_stage1(const Params& p, const Group& g, const Span& ys, const Span& xs, const scalar_t* xp,
                       acc_t bias, const acc_t* f1, uint8_t* mp, acc_t* A, acc_t* U) {
    const int mrows = ys.m1 - ys.m0, mcols = xs.m1 - xs.m0;
    const bool flip = p.flip_taps;
    if (p.sep1) {  // rows of the input upsampled along x only, then the y pass from those
        const int irows = ys.i1 - ys.i0;
        for (int e = g.tid; e < irows * mcols; e += g.size) {
            const int r = e / mcols, c = e % mcols, iy = ys.i0 + r;
            U[e] = fir_window<acc_t>(xp + int64_t(iy) * p.sh, p.sh, p.sw, iy, iy + 1, 0, p.w, iy, xs.m0 + c - p.px0, 1,
                                     p.ux, f1, 1, p.f1w, flip, bias);
        }
        g.sync();
    }
    const acc_t g_up = acc_t(p.g_up);
    for (int e = g.tid; e < mrows * mcols; e += g.size) {
        const int r = e / mcols, c = e % mcols, jy = ys.m0 + r, jx = xs.m0 + c;
        acc_t v;
        if (p.sep1)
            v = fir_window<acc_t>(U, mcols, 1, ys.i0, ys.i1, xs.m0, xs.m1, jy - p.py0, jx, p.uy, 1, f1, p.f1h, 1, flip,
                                  acc_t(0));
        else
            v = fir_window<acc_t>(xp, p.sh, p.sw, 0, p.h, 0, p.w, jy - p.py0, jx - p.px0, p.uy, p.ux, f1, p.f1h, p.f1w,
                                  flip, bias);
        const bool own = jy >= ys.own0 && jy < ys.own1 && jx >= xs.own0 && jx < xs.own1;
        uint8_t* mcell = mp ? mp + int64_t(jy) * p.mw + jx : nullptr;
        uint8_t code = (p.mode == MASKED && mcell) ? *mcell : uint8_t(CLAMPED);
        A[e] = pointwise<acc_t>(p, v * g_up, code);
        if (p.mode == ACT && mcell && own) *mcell = code;
    }
    g.sync();
}

// Stage 2: the tile's outputs from its activations A.
template <typename scalar_t, typename acc_t, typename Group>
LL_HD void tile_stage2(const Params& p, const Group& g, const Span& ys, const Span& xs, const acc_t* f2,
                       const acc_t* A, acc_t* D, scalar_t* yp) {
    const int mrows = ys.m1 - ys.m0, mcols = xs.m1 - xs.m0;
    const int orows = ys.o1 - ys.o0, ocols = xs.o1 - xs.o0;
    const bool flip = p.flip_taps;
    if (p.sep2) {  // the x pass on every activation row, then the y pass
        for (int e = g.tid; e < mrows * ocols; e += g.size) {
            const int r = e / ocols, c = e % ocols, jy = ys.m0 + r;
            D[e] = fir_window<acc_t>(A + int64_t(r) * mcols, mcols, 1, jy, jy + 1, xs.m0, xs.m1, jy,
                                     (xs.o0 + c) * p.dx - p.qx0, 1, 1, f2, 1, p.f2w, flip, acc_t(0));
        }
        g.sync();
    }
    const acc_t g_down = acc_t(p.g_down);
    for (int e = g.tid; e < orows * ocols; e += g.size) {
        const int oy = ys.o0 + e / ocols, ox = xs.o0 + e % ocols;
        acc_t v;
        if (p.sep2)
            v = fir_window<acc_t>(D, ocols, 1, ys.m0, ys.m1, xs.o0, xs.o1, oy * p.dy - p.qy0, ox, 1, 1, f2, p.f2h, 1,
                                  flip, acc_t(0));
        else
            v = fir_window<acc_t>(A, mcols, 1, ys.m0, ys.m1, xs.m0, xs.m1, oy * p.dy - p.qy0, ox * p.dx - p.qx0, 1, 1,
                                  f2, p.f2h, p.f2w, flip, acc_t(0));
        yp[int64_t(oy) * p.oys + int64_t(ox) * p.oxs] = scalar_t(v * g_down);
    }
    g.sync();  // the workspace is reused by the group's next tile
}

// Tile `t` (plane-major, x fastest): stage 1, pointwise, stage 2. `ws` holds p.ws_a + p.ws_u +
// p.ws_d elements; `b` (bias, or null) and `m` (the record, or null) as in Params' mode.
template <typename scalar_t, typename acc_t, typename Group>
LL_HD void run_tile(int64_t t, const Params& p, const Group& g, scalar_t* __restrict__ y,
                    const scalar_t* __restrict__ x, const scalar_t* __restrict__ b, const acc_t* __restrict__ f1,
                    const acc_t* __restrict__ f2, uint8_t* m, acc_t* ws) {
    const int tx = int(t % p.tiles_x);
    int64_t rest = t / p.tiles_x;
    const int ty = int(rest % p.tiles_y);
    const int64_t plane = rest / p.tiles_y;
    const int64_t n = plane / p.c, c = plane % p.c;
    const Span ys = span_of(ty, p.tiles_y, p.tile_h, p.oh, p.mh, p.h, p.uy, p.dy, p.py0, p.qy0, p.f1h, p.f2h);
    const Span xs = span_of(tx, p.tiles_x, p.tile_w, p.ow, p.mw, p.w, p.ux, p.dx, p.px0, p.qx0, p.f1w, p.f2w);
    const scalar_t* xp = x + n * p.sn + c * p.sc;
    const acc_t bias = b ? acc_t(b[c]) : acc_t(0);
    uint8_t* mp = m ? m + plane * int64_t(p.mh) * p.mw : nullptr;
    acc_t* A = ws;
    tile_stage1<scalar_t, acc_t, Group>(p, g, ys, xs, xp, bias, f1, mp, A, ws + p.ws_a);
    tile_stage2<scalar_t, acc_t, Group>(p, g, ys, xs, f2, A, ws + p.ws_a + p.ws_u, y + n * p.on + c * p.oc);
}

}  // namespace filtered_lrelu
}  // namespace latentlab
