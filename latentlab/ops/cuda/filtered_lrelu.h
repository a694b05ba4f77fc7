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
//
// Layout of the work, chosen so the inner loops are plain multiply-adds (on a GPU an integer
// division or modulo costs ~20 instructions and a branch per tap stalls the warp):
// - the filters are rearranged once per block ("taps"): flipped if asked, and stage 1's split
//   into its `up` phases of n1 taps each, zero-padded to equal length;
// - each tile first copies the input window it reads into the workspace, bias added and zeros
//   outside the image, so no filter loop checks bounds;
// - stage 1 works in "groups": the `up` neighbouring intermediate samples that read the same n1
//   inputs (one per phase), so the inputs are loaded once per group and the phase of each
//   sample is known without any division;
// - the intermediate window is not clipped to the grid: samples outside it are stage 2's zero
//   padding and are stored as zeros, so stage 2 has no bounds checks either;
// - cells are handed to threads by stepping (row, column) by the group size, not by / and %;
// - the separable passes hand neighbouring threads neighbouring lines (rows at an odd pitch, or
//   columns), free of shared-memory bank conflicts, and in the compiled configurations each
//   thread computes several neighbouring samples of its line from inputs it loaded once into
//   registers (see up_pass, down_pass);
// - the StyleGAN3 configurations (Spec below) are compiled with fixed factors and filter lengths,
//   so the loops unroll and the filters live in registers; other calls run the same code with
//   run-time values (Spec<0, 0, 0, 0>).
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define LL_HD __host__ __device__ __forceinline__
#define LL_UNROLL _Pragma("unroll")
#else
#define LL_HD inline
#define LL_UNROLL
#endif

namespace latentlab {
namespace filtered_lrelu {

// mode ACT: y = clamp(lrelu(v, slope) * gain), optionally recording a code per element.
// mode MASKED: y = v * gain * {0, 1, slope}[code], the derivative of ACT at the recorded point.
enum Mode { ACT = 0, MASKED = 1 };
// Codes of the record: the activation's local derivative class.
enum Code : uint8_t { CLAMPED = 0, POSITIVE = 1, NEGATIVE = 2 };
// Workspace a block may keep in shared memory without opting in. The host loop plans its tiles
// for this budget; on a GPU the launcher opts in to more where the device allows (see
// filtered_lrelu.cu), and a workspace over the budget goes to global memory.
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
    int n1x, n1y;                  // stage 1 taps per phase: ceil(f1w / ux), ceil(f1h / uy)
    bool sep1, sep2;               // separable filters: two 1-D passes instead of one 2-D pass
    bool flip_taps;                // read the filters reversed (true convolution)
    double g_up, gain, g_down;     // stage 1 gain, activation gain, stage 2 gain
    double slope, clamp;           // leaky ReLU slope; clamp < 0 disables clamping
    int mode;                      // ACT or MASKED
    int tile_h, tile_w;            // output tile size
    int tiles_y, tiles_x;          // tiles per plane along each axis
    int64_t tiles;                 // n * c * tiles_y * tiles_x
    int64_t ws_t, ws_a, ws_b;      // workspace elements: taps, activations, the rest (see workspace_size)
    int64_t smem_budget;           // shared-memory bytes per block the tiles were planned for
};

LL_HD int floor_div(int a, int b) {  // b > 0
    const int q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}
LL_HD int ceil_div(int a, int b) { return -floor_div(-a, b); }
LL_HD int imin(int a, int b) { return a < b ? a : b; }
LL_HD int imax(int a, int b) { return a > b ? a : b; }

// Compile-time factors and filter lengths: up U (both axes) with N stage 1 taps per phase
// (separable stage 1 filter), down D with a stage 2 filter of T taps (1-D, or T x T). Zero: a
// run-time value read from Params.
template <int U_, int N_, int D_, int T_>
struct Spec {
    static constexpr int U = U_, N = N_, D = D_, T = T_;
    static constexpr bool fixed = U_ > 0;
    static bool matches(const Params& p) {
        return fixed && p.sep1 && p.ux == U && p.uy == U && p.n1x == N && p.n1y == N && p.dx == D && p.dy == D &&
               (p.sep2 ? p.f2w == T : (p.f2h == T && p.f2w == T));
    }
};
using Generic = Spec<0, 0, 0, 0>;

// Calls f(Spec{}) with the compiled configuration of p (host only). StyleGAN3's layers use
// 6 taps per phase before the activation and 12 (down 2) after; their backward passes swap
// the filters: up 2 / down 2 with 12 and 12 taps, up 2 / down 4 with 12 and 24.
template <typename F>
inline void with_spec(const Params& p, F&& f) {
    if (Spec<2, 6, 2, 12>::matches(p)) return f(Spec<2, 6, 2, 12>{});
    if (Spec<4, 6, 2, 12>::matches(p)) return f(Spec<4, 6, 2, 12>{});
    if (Spec<2, 6, 4, 24>::matches(p)) return f(Spec<2, 6, 4, 24>{});
    f(Generic{});
}

// Visits the cells (r, c) of a rows x cols grid that worker g.tid of g.size owns, row-major
// (neighbouring threads take neighbouring columns: coalesced and free of bank conflicts).
// (r, c) is stepped by the group size rather than recomputed with a division per cell.
template <typename Group, typename F>
LL_HD void for_cells(const Group& g, int rows, int cols, F&& f) {
    if (rows <= 0 || cols <= 0) return;
    const int dr = g.size / cols, dc = g.size - dr * cols;
    int r = g.tid / cols, c = g.tid - r * cols;
    while (r < rows) {
        f(r, c);
        r += dr;
        c += dc;
        if (c >= cols) {
            c -= cols;
            ++r;
        }
    }
}

// The activation of mode ACT, as the reference: leaky ReLU (derivative slope at 0), gain, then
// clamp (when `clamp`) with the closed interval [-c, c] counting as inside. Sets `code`; callers
// that keep no record pass a dummy, which the compiler drops.
template <typename acc_t>
LL_HD acc_t activate(acc_t v, acc_t slope, acc_t gain, bool clamp, acc_t c, uint8_t& code) {
    code = v > acc_t(0) ? POSITIVE : NEGATIVE;
    acc_t y = (v > acc_t(0) ? v : v * slope) * gain;
    if (clamp) {
        if (y > c) { y = c; code = CLAMPED; }
        else if (y < -c) { y = -c; code = CLAMPED; }
    }
    return y;
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
    return activate<acc_t>(v, slope, gain, p.clamp >= 0, acc_t(p.clamp), code);
}

// Host: one worker, nothing to synchronise.
struct HostGroup {
    int tid = 0, size = 1;
    LL_HD void sync() const {}
};

// One tile along one axis. Intermediate sample j reads the upsampled positions j - p0 + k,
// k < f1; output o reads intermediate samples o*d - q0 + k, k < f2.
struct Win {
    int o0, no;      // outputs [o0, o0 + no)
    int a0, na;      // intermediate window [a0, a0 + na) the outputs read, not clipped to the grid
    int i0, ni;      // input window [i0, i0 + ni) that reads (zeros outside the input)
    int k00;         // i0 * u - (a0 - p0), in [0, u): the phase offset of the window's first sample
    int groups;      // stage 1 groups (see up_pass): ni - n1 + 1
    int own0, own1;  // intermediate samples whose record this tile writes
};

// Local intermediate sample a (global a0 + a) has its first tap of phase k0 = g*u + k00 - a on
// local input g = ceil((a - k00) / u) (>= 0 as k00 < u), so the u samples a = k00 + g*u - k0,
// k0 < u, form group g and read inputs g .. g + n1 - 1. Each intermediate sample is owned by one
// tile (the first and last tiles take the unused ends).
LL_HD Win window_of(int t, int tiles, int tsize, int out, int mid, int u, int d, int p0, int q0, int n1, int f2) {
    Win s;
    s.o0 = t * tsize;
    s.no = imin(tsize, out - s.o0);
    s.a0 = s.o0 * d - q0;
    s.na = (s.no - 1) * d + f2;
    s.i0 = ceil_div(s.a0 - p0, u);
    s.k00 = s.i0 * u - (s.a0 - p0);
    s.groups = ceil_div(s.na - 1 - s.k00, u) + 1;
    s.ni = s.groups - 1 + n1;
    s.own0 = t == 0 ? 0 : s.a0;
    s.own1 = t == tiles - 1 ? mid : (s.o0 + tsize) * d - q0;
    return s;
}

// Row pitch of a workspace array whose rows hold n elements: odd, so that a warp reading one
// column of 32 consecutive rows touches 32 different shared-memory banks (see up_pass).
LL_HD int pitch_of(int n) { return n | 1; }

// Workspace elements (upper bounds over all tiles) for tiles of th x tw outputs: the taps; the
// activations A [na_y, na_x]; the input window X [ni_y, ni_x]; then the x pass U [ni_y, na_x] of a
// separable stage 1 and the x pass D [na_y, tw] of a separable stage 2 in the same space (D is
// written only once stage 1 is done). D does not overlap X, so a block can stage its next tile's
// input while threads still read this tile's D: no barrier at the end of a tile (see run_tile).
// Rows at pitch_of.
LL_HD void workspace_size(const Params& p, int th, int tw, int64_t& t, int64_t& a, int64_t& b) {
    t = (p.sep1 ? int64_t(p.ux) * p.n1x + int64_t(p.uy) * p.n1y : int64_t(p.ux) * p.uy * p.n1x * p.n1y) +
        (p.sep2 ? int64_t(p.f2w) : int64_t(p.f2h) * p.f2w);
    const int64_t nay = int64_t(th - 1) * p.dy + p.f2h, nax = int64_t(tw - 1) * p.dx + p.f2w;
    const int64_t niy = (nay + p.uy - 2) / p.uy + p.n1y, nix = (nax + p.ux - 2) / p.ux + p.n1x;
    a = nay * (nax | 1);
    const int64_t u = p.sep1 ? niy * (nax | 1) : 0, d = p.sep2 ? nay * (tw | 1) : 0;
    b = niy * (nix | 1) + (u > d ? u : d);
}

// Fills `taps` (p.ws_t elements) from the filters, once per block: stage 1 as [uy][ux][n1y][n1x]
// (2-D) or [ux][n1x] then [uy][n1y] (separable), tap k0 + u*t of the (flipped if asked) filter
// at [k0][t], zero past its end; then stage 2's filter, flipped if asked (a 2-D filter flips on
// both axes by reversing its row-major elements). One division per tap, not per use.
template <typename acc_t, typename Group>
LL_HD void prepare_taps(const Params& p, const Group& g, const acc_t* f1, const acc_t* f2, acc_t* taps) {
    const bool flip = p.flip_taps;
    int n = 0;
    if (p.sep1) {
        for (int axis = 0; axis < 2; ++axis) {
            const int u = axis == 0 ? p.ux : p.uy, n1 = axis == 0 ? p.n1x : p.n1y, f = p.f1w;
            for (int e = g.tid; e < u * n1; e += g.size) {
                const int k = e / n1 + u * (e % n1);
                taps[n + e] = k < f ? f1[flip ? f - 1 - k : k] : acc_t(0);
            }
            n += u * n1;
        }
    } else {
        const int per = p.n1y * p.n1x;
        for (int e = g.tid; e < p.uy * p.ux * per; e += g.size) {
            const int ph = e / per, ky = ph / p.ux + p.uy * ((e % per) / p.n1x);
            const int kx = ph % p.ux + p.ux * (e % p.n1x);
            const bool in = ky < p.f1h && kx < p.f1w;
            taps[e] = in ? f1[(flip ? p.f1h - 1 - ky : ky) * p.f1w + (flip ? p.f1w - 1 - kx : kx)] : acc_t(0);
        }
        n = p.uy * p.ux * per;
    }
    const int n2 = p.sep2 ? p.f2w : p.f2h * p.f2w;
    for (int e = g.tid; e < n2; e += g.size) taps[n + e] = f2[flip ? n2 - 1 - e : e];
    g.sync();
}

// Copies the tile's input window to X [ys.ni, xs.ni] with the bias added, zeros outside the image.
template <typename scalar_t, typename acc_t, typename Group>
LL_HD void stage_input(const Params& p, const Group& g, const Win& ys, const Win& xs, const scalar_t* xp,
                       acc_t bias, acc_t* X) {
    for_cells(g, ys.ni, xs.ni, [&](int r, int c) {
        const int iy = ys.i0 + r, ix = xs.i0 + c;
        const bool in = iy >= 0 && iy < p.h && ix >= 0 && ix < p.w;
        X[r * pitch_of(xs.ni) + c] = in ? acc_t(xp[int64_t(iy) * p.sh + int64_t(ix) * p.sw]) + bias : acc_t(0);
    });
}

// Work per thread in the passes of the compiled configurations (register blocking): a stage 1
// item takes G neighbouring groups (G * U samples from G + N - 1 inputs), a stage 2 item R
// neighbouring outputs (from (R - 1) * D + T inputs). Each input is read from the workspace once
// per item instead of once per tap, which matters because shared memory, not arithmetic, bounds
// these passes (one 32-lane load per clock per SM, against four 32-lane multiply-adds). The
// values bound the registers: with them the float32 kernels fit 80 without spilling (ptxas -v,
// sm_90; see filtered_lrelu.cu), the 24-tap stage 2 (T = 24, D = 4) only with R = 2.
template <typename S>
struct Blocking {
    static constexpr int G = S::U == 2 ? 4 : 2;
    static constexpr int R = S::D == 2 ? 8 : 2;
};

// Copies n filter taps to `dst`: into registers when n is a compile-time constant (then every
// later index is one too, after unrolling).
template <int NT, typename acc_t>
LL_HD void load_taps(acc_t* dst, const acc_t* src) {
    LL_UNROLL for (int i = 0; i < NT; ++i) dst[i] = src[i];
}

// Both passes below work on `nlines` lines of a workspace array: element e of line l at
// src[l * ls + e * es] (a row pass has es == 1 and ls the row pitch, a column pass ls == 1 and
// es the pitch). Neighbouring threads take neighbouring lines, so the 32 lanes of a warp read
// 32 neighbouring columns (column pass) or 32 rows at an odd pitch (row pass, see pitch_of):
// 32 different banks either way, also for the stride-u stores of stage 1.

// Stage 1 along one axis (see window_of for groups and k00): emits emit(l, a, sum_t w[k0][t] *
// input(g + t)) for every sample a = k00 + g*u - k0 (k0 < u) of every group g < groups that lies
// in [0, na). `w` is [u][n1]. The sum runs over t in ascending order from zero, as every other
// path of this file does.
template <typename S, typename acc_t, typename Group, typename Emit>
LL_HD void up_pass(const Group& g, int nlines, int groups, int k00, int na, int u_rt, int n1_rt, const acc_t* w,
                   const acc_t* src, int ls, int es, Emit&& emit) {
    if constexpr (S::fixed) {
        constexpr int U = S::U, N = S::N, G = Blocking<S>::G, NV = G + N - 1;
        for_cells(g, (groups + G - 1) / G, nlines, [&](int s, int l) {
            const int g0 = s * G, ng = imin(G, groups - g0);
            const acc_t* in = src + l * ls + g0 * es;
            acc_t v[NV];  // the inputs of the item's groups; past the last group: never used
            LL_UNROLL for (int i = 0; i < NV; ++i, in += es) v[i] = i < ng - 1 + N ? *in : acc_t(0);
            LL_UNROLL for (int j = 0; j < G; ++j) {
                if (j >= ng) continue;
                LL_UNROLL for (int k0 = 0; k0 < U; ++k0) {
                    const int a = k00 + (g0 + j) * U - k0;
                    if (a < 0 || a >= na) continue;  // only at the window's ends
                    acc_t acc = acc_t(0);
                    LL_UNROLL for (int t = 0; t < N; ++t) acc += w[k0 * N + t] * v[j + t];
                    emit(l, a, acc);
                }
            }
        });
    } else {  // one group per item, taps read from the workspace
        for_cells(g, groups, nlines, [&](int grp, int l) {
            const acc_t* in = src + l * ls + grp * es;
            for (int k0 = 0; k0 < u_rt; ++k0) {
                const int a = k00 + grp * u_rt - k0;
                if (a < 0 || a >= na) continue;
                acc_t acc = acc_t(0);
                for (int t = 0; t < n1_rt; ++t) acc += w[k0 * n1_rt + t] * in[t * es];
                emit(l, a, acc);
            }
        });
    }
}

// Stage 2 along one axis: emits emit(l, o, sum_k w[k] * input(o*d + k)) for o < nout, the sum
// over k ascending from zero. A compiled item slides over its (R - 1) * D + T inputs once, each
// input feeding the (up to ceil(T / D)) outputs that read it; the outputs' sums still run over k
// in ascending order, so every path gives the same float sums.
template <typename S, typename acc_t, typename Group, typename Emit>
LL_HD void down_pass(const Group& g, int nlines, int nout, int d_rt, int n_rt, const acc_t* w, const acc_t* src,
                     int ls, int es, Emit&& emit) {
    if constexpr (S::fixed) {
        constexpr int D = S::D, T = S::T, R = Blocking<S>::R, NV = (R - 1) * D + T;
        for_cells(g, (nout + R - 1) / R, nlines, [&](int s, int l) {
            const int o0 = s * R, no = imin(R, nout - o0), lim = (no - 1) * D + T;
            const acc_t* in = src + l * ls + o0 * D * es;
            acc_t acc[R];
            LL_UNROLL for (int j = 0; j < R; ++j) acc[j] = acc_t(0);
            LL_UNROLL for (int i = 0; i < NV; ++i, in += es) {
                const acc_t v = i < lim ? *in : acc_t(0);  // past `lim`: outputs >= no only
                LL_UNROLL for (int j = 0; j < R; ++j) {
                    const int k = i - j * D;  // a constant after unrolling
                    if (k >= 0 && k < T) acc[j] += w[k] * v;
                }
            }
            LL_UNROLL for (int j = 0; j < R; ++j) if (j < no) emit(l, o0 + j, acc[j]);
        });
    } else {  // one output per item, taps read from the workspace
        for_cells(g, nout, nlines, [&](int o, int l) {
            const acc_t* in = src + l * ls + o * d_rt * es;
            acc_t acc = acc_t(0);
            for (int k = 0; k < n_rt; ++k) acc += w[k] * in[k * es];
            emit(l, o, acc);
        });
    }
}

// Stage 1 and the pointwise step: fills the activations A [ys.na, xs.na] of the tile from the
// staged input X (zeros where the intermediate window leaves the grid: stage 2's padding).
template <typename S, typename acc_t, typename Group>
LL_HD void tile_stage1(const Params& p, const Group& g, const Win& ys, const Win& xs, const acc_t* taps,
                       const acc_t* X, uint8_t* mp, acc_t* A, acc_t* U) {
    const acc_t g_up = acc_t(p.g_up);
    const int px = pitch_of(xs.ni), pa = pitch_of(xs.na);  // pitches of X, and of U and A
    // The record, when kept, is indexed by the global intermediate sample.
    auto finish = [&](int r, int c, acc_t v) {
        const int jy = ys.a0 + r, jx = xs.a0 + c;
        if (jy < 0 || jy >= p.mh || jx < 0 || jx >= p.mw) {
            A[r * pa + c] = acc_t(0);
            return;
        }
        uint8_t* cell = mp ? mp + int64_t(jy) * p.mw + jx : nullptr;
        uint8_t code = (p.mode == MASKED && cell) ? *cell : uint8_t(CLAMPED);
        A[r * pa + c] = pointwise<acc_t>(p, v * g_up, code);
        const bool own = jy >= ys.own0 && jy < ys.own1 && jx >= xs.own0 && jx < xs.own1;
        if (p.mode == ACT && cell && own) *cell = code;
    };
    if (!p.sep1) {  // 2-D filter: one division per sample for its phases (not a StyleGAN3 hot path)
        const int per = p.n1y * p.n1x;
        for_cells(g, ys.na, xs.na, [&](int r, int c) {
            const int gy = ceil_div(r - ys.k00, p.uy), gx = ceil_div(c - xs.k00, p.ux);
            const int k0y = gy * p.uy + ys.k00 - r, k0x = gx * p.ux + xs.k00 - c;
            const acc_t* w = taps + (k0y * p.ux + k0x) * per;
            const acc_t* src = X + gy * px + gx;
            acc_t acc = acc_t(0);
            for (int ty = 0; ty < p.n1y; ++ty)
                for (int tx = 0; tx < p.n1x; ++tx) acc += w[ty * p.n1x + tx] * src[ty * px + tx];
            finish(r, c, acc);
        });
        g.sync();
        return;
    }
    // Separable: the x pass on every input row (U [ys.ni, xs.na]), then the y pass from U.
    constexpr int NW = S::fixed ? S::U * S::N : 1;
    const acc_t* wx = taps;
    const acc_t* wy = taps + p.ux * p.n1x;
    {
        acc_t w[NW];
        if constexpr (S::fixed) load_taps<NW>(w, wx);
        up_pass<S>(g, ys.ni, xs.groups, xs.k00, xs.na, p.ux, p.n1x, S::fixed ? w : wx, X, px, 1,
                   [&](int r, int c, acc_t v) { U[r * pa + c] = v; });
    }
    g.sync();
    {
        acc_t w[NW];
        if constexpr (S::fixed) load_taps<NW>(w, wy);
        const acc_t* wk = S::fixed ? w : wy;
        // Inference (mode ACT, no record) on a window inside the intermediate grid, as every tile
        // of StyleGAN3's forward calls: the activation alone, without finish's per-sample grid
        // check, record addressing and ownership test. Same arithmetic (activate), same values.
        const bool inside = ys.a0 >= 0 && ys.a0 + ys.na <= p.mh && xs.a0 >= 0 && xs.a0 + xs.na <= p.mw;
        if (p.mode == ACT && !mp && inside) {
            const acc_t slope = acc_t(p.slope), gain = acc_t(p.gain), cl = acc_t(p.clamp);
            const bool clamp = p.clamp >= 0;
            up_pass<S>(g, xs.na, ys.groups, ys.k00, ys.na, p.uy, p.n1y, wk, U, 1, pa, [&](int c, int r, acc_t v) {
                uint8_t unused;
                A[r * pa + c] = activate<acc_t>(v * g_up, slope, gain, clamp, cl, unused);
            });
        } else {
            up_pass<S>(g, xs.na, ys.groups, ys.k00, ys.na, p.uy, p.n1y, wk, U, 1, pa,
                       [&](int c, int r, acc_t v) { finish(r, c, v); });
        }
    }
    g.sync();
}

// Stage 2: the tile's outputs from its activations A (in-window: no bounds checks).
// D is the space of stage 1's U (see workspace_size).
template <typename S, typename scalar_t, typename acc_t, typename Group>
LL_HD void tile_stage2(const Params& p, const Group& g, const Win& ys, const Win& xs, const acc_t* taps,
                       const acc_t* A, acc_t* D, scalar_t* yp) {
    const acc_t g_down = acc_t(p.g_down);
    const int dx = S::fixed ? int(S::D) : p.dx, dy = S::fixed ? int(S::D) : p.dy;
    const int pa = pitch_of(xs.na), pd = pitch_of(xs.no);  // pitches of A and D
    auto store = [&](int r, int c, acc_t v) {
        yp[int64_t(ys.o0 + r) * p.oys + int64_t(xs.o0 + c) * p.oxs] = scalar_t(v * g_down);
    };
    if (p.sep2) {  // the x pass on every activation row (D [ys.na, xs.no]), then the y pass
        constexpr int NT = S::fixed ? S::T : 1;
        acc_t w[NT];
        if constexpr (S::fixed) load_taps<NT>(w, taps);
        const acc_t* wk = S::fixed ? w : taps;
        down_pass<S>(g, ys.na, xs.no, dx, p.f2w, wk, A, pa, 1, [&](int r, int c, acc_t v) { D[r * pd + c] = v; });
        g.sync();
        // Neighbouring threads store neighbouring columns of an output row (coalesced).
        down_pass<S>(g, xs.no, ys.no, dy, p.f2h, wk, D, 1, pd, [&](int c, int r, acc_t v) { store(r, c, v); });
    } else if constexpr (S::fixed) {  // T x T filter, read from shared memory (up to 576 taps)
        for_cells(g, ys.no, xs.no, [&](int r, int c) {
            const acc_t* src = A + r * dy * pa + c * dx;
            acc_t acc = acc_t(0);
            for (int ky = 0; ky < S::T; ++ky) {  // row sums, then their sum
                acc_t row = acc_t(0);
                LL_UNROLL for (int kx = 0; kx < S::T; ++kx) row += taps[ky * S::T + kx] * src[ky * pa + kx];
                acc += row;
            }
            store(r, c, acc);
        });
    } else {
        for_cells(g, ys.no, xs.no, [&](int r, int c) {
            const acc_t* src = A + r * dy * pa + c * dx;
            acc_t acc = acc_t(0);
            for (int ky = 0; ky < p.f2h; ++ky)
                for (int kx = 0; kx < p.f2w; ++kx) acc += taps[ky * p.f2w + kx] * src[ky * pa + kx];
            store(r, c, acc);
        });
    }
    // No barrier here: the group's next tile first writes only X, which no pass of stage 2 reads
    // (see workspace_size), and the barrier after that staging precedes any write to A or D.
}

// Tile `t` (plane-major, x fastest): stage the input, stage 1, pointwise, stage 2, with four
// barriers (after the staging and after each of the first three separable passes). `taps` as
// filled by prepare_taps; `ws` holds p.ws_a + p.ws_b elements; `b` (bias, or null) and `m` (the
// record, or null) as in Params' mode.
template <typename S, typename scalar_t, typename acc_t, typename Group>
LL_HD void run_tile(int64_t t, const Params& p, const Group& g, scalar_t* __restrict__ y,
                    const scalar_t* __restrict__ x, const scalar_t* __restrict__ b, uint8_t* m,
                    const acc_t* taps, acc_t* ws) {
    const int tx = int(t % p.tiles_x);
    int64_t rest = t / p.tiles_x;
    const int ty = int(rest % p.tiles_y);
    const int64_t plane = rest / p.tiles_y;
    const int64_t n = plane / p.c, c = plane % p.c;
    const Win ys = window_of(ty, p.tiles_y, p.tile_h, p.oh, p.mh, p.uy, p.dy, p.py0, p.qy0, p.n1y, p.f2h);
    const Win xs = window_of(tx, p.tiles_x, p.tile_w, p.ow, p.mw, p.ux, p.dx, p.px0, p.qx0, p.n1x, p.f2w);
    const acc_t bias = b ? acc_t(b[c]) : acc_t(0);
    uint8_t* mp = m ? m + plane * int64_t(p.mh) * p.mw : nullptr;
    acc_t* A = ws;
    acc_t* X = ws + p.ws_a;
    acc_t* U = X + ys.ni * pitch_of(xs.ni);
    const acc_t* taps2 = taps + (p.sep1 ? p.ux * p.n1x + p.uy * p.n1y : p.ux * p.uy * p.n1x * p.n1y);
    stage_input<scalar_t, acc_t, Group>(p, g, ys, xs, x + n * p.sn + c * p.sc, bias, X);
    g.sync();
    tile_stage1<S, acc_t, Group>(p, g, ys, xs, taps, X, mp, A, U);
    tile_stage2<S, scalar_t, acc_t, Group>(p, g, ys, xs, taps2, A, U, y + n * p.on + c * p.oc);
}

}  // namespace filtered_lrelu
}  // namespace latentlab
