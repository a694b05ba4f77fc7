// Python binding, argument checks, tile planning and a host fallback loop for filtered_lrelu.
#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <tuple>
#include <vector>

#include "filtered_lrelu.h"

namespace latentlab {
namespace filtered_lrelu {

void launch_cuda(const Params& p, at::Tensor& y, const at::Tensor& x, const at::Tensor& b, const at::Tensor& f1,
                 const at::Tensor& f2, at::Tensor& m);
void shared_plan_cuda(const at::Tensor& x, int64_t elem_bytes, int64_t& budget, int64_t& min_tiles);

constexpr int kMaxCoord = 1 << 30;  // every grid coordinate (padding included) fits an int with room

static void check_filter(const at::Tensor& f, const at::Tensor& x, const char* name) {
    TORCH_CHECK((f.dim() == 1 || f.dim() == 2) && f.numel() > 0, "filtered_lrelu: ", name,
                " must be a non-empty 1-D (separable) or 2-D filter");
    TORCH_CHECK(f.scalar_type() == at::toOpMathType(x.scalar_type()), "filtered_lrelu: ", name,
                " must be float64 for float64 x and float32 otherwise");
    TORCH_CHECK(f.device() == x.device(), "filtered_lrelu: ", name, " must be on the device of x");
    TORCH_CHECK(f.size(0) < 4096 && f.size(-1) < 4096, "filtered_lrelu: ", name, " is too large");
}

// Grid sizes along one axis: intermediate = in*u + p0 + p1 - f1 + 1, output = (mid + q0 + q1 - f2) / d + 1.
static void axis_sizes(int64_t in, int64_t u, int64_t d, int64_t p0, int64_t p1, int64_t q0, int64_t q1, int64_t f1,
                       int64_t f2, int64_t& mid, int64_t& out) {
    TORCH_CHECK(in * u + std::abs(p0) + std::abs(p1) + f1 < kMaxCoord, "filtered_lrelu: spatial size too large");
    mid = in * u + p0 + p1 - f1 + 1;
    TORCH_CHECK(mid >= 1, "filtered_lrelu: padding leaves an empty intermediate image");
    TORCH_CHECK(mid + std::abs(q0) + std::abs(q1) + f2 < kMaxCoord, "filtered_lrelu: spatial size too large");
    const int64_t span = mid + q0 + q1 - f2;
    TORCH_CHECK(span >= 0, "filtered_lrelu: padding leaves an empty output");
    out = span / d + 1;
}

// Sets the tile size and counts: th x tw outputs (clipped to the output), tiles per axis to cover it.
static void set_tiles(Params& p, int th, int tw) {
    p.tile_h = std::min(th, p.oh);
    p.tile_w = std::min(tw, p.ow);
    p.tiles_y = (p.oh + p.tile_h - 1) / p.tile_h;
    p.tiles_x = (p.ow + p.tile_w - 1) / p.tile_w;
    p.tiles = p.n * p.c * p.tiles_y * p.tiles_x;
}

// Output tile size: as given (square; tests use tiny tiles to exercise tile borders), else
// planned. A tile of t outputs along an axis computes (t - 1) * d + f2 intermediate samples, so
// n tiles over `out` outputs compute (out - n) * d + n * f2: the fewer tiles, the less overlap
// is recomputed (up 2 / down 2 with 12 taps: 2t + 10 samples for 2t new ones). The plan takes,
// over the tile counts ny x nx, the least recomputed area whose workspace fits `budget` bytes,
// with equal tiles (ceil(size / count); a thin last tile would cost the same overlap) and, at
// equal cost, fewer columns of tiles (wide tiles: longer coalesced rows). Fewer tiles are also
// fewer blocks: a call with fewer than `min_tiles` tiles (two waves of resident blocks on a GPU;
// 0 on the host) takes more, smaller tiles, down to 16 outputs a side. When no tile fits the
// budget, 16 x 16 tiles (the workspace then lives in global memory).
static void plan_tiles(Params& p, int64_t tile, int64_t elem_bytes, int64_t budget, int64_t min_tiles) {
    p.smem_budget = budget;
    if (tile > 0) {
        set_tiles(p, int(tile), int(tile));
    } else {
        constexpr int kMaxTile = 256, kMinSide = 16;
        auto fits = [&](int th, int tw) {
            int64_t ts, a, b;
            workspace_size(p, th, tw, ts, a, b);
            return th <= kMaxTile && tw <= kMaxTile && (ts + a + b) * elem_bytes <= budget;
        };
        auto size = [](int out, int n) { return (out + n - 1) / n; };  // equal tiles, n per axis
        auto area = [](int out, int n, int d, int f2) { return int64_t(out - n) * d + int64_t(n) * f2; };
        const int64_t planes = p.n * p.c;
        // Ranks a plan: enough tiles first, then (enough) the least area or (short) the most
        // tiles, then the fewest columns.
        using Rank = std::tuple<bool, int64_t, int>;
        bool found = false;
        Rank best{};
        int best_h = kMinSide, best_w = kMinSide;
        // nx: the fewest columns of tiles that fit rows of tiles of height th; as ny grows, th
        // shrinks and nx can only decrease (one pass over both axes).
        int nx = p.ow;
        for (int ny = 1; ny <= p.oh; ++ny) {
            const int th = size(p.oh, ny);
            if (ny > 1 && th == size(p.oh, ny - 1)) continue;  // the same tiles as ny - 1
            if (found && th < kMinSide) break;
            if (!fits(th, size(p.ow, nx))) continue;
            while (nx > 1 && fits(th, size(p.ow, nx - 1))) --nx;
            const int64_t want = (min_tiles + planes * ny - 1) / (planes * ny);  // columns for min_tiles
            const int64_t cap = std::max<int64_t>(nx, size(p.ow, kMinSide));      // no thinner than kMinSide
            const int tw = size(p.ow, int(std::min<int64_t>(std::max<int64_t>(nx, want), cap)));
            const int cols = size(p.ow, tw), rows = size(p.oh, th);
            const int64_t tiles = planes * rows * cols;
            const bool short_of = tiles < min_tiles;
            const Rank rank{short_of, short_of ? -tiles : area(p.oh, rows, p.dy, p.f2h) * area(p.ow, cols, p.dx, p.f2w),
                            cols};
            if (!found || rank < best) {
                found = true;
                best = rank;
                best_h = th;
                best_w = tw;
            }
        }
        set_tiles(p, best_h, best_w);
    }
    workspace_size(p, p.tile_h, p.tile_w, p.ws_t, p.ws_a, p.ws_b);
}

static void fill_params(Params& p, const at::Tensor& x, const at::Tensor& f1, const at::Tensor& f2,
                        const std::vector<int64_t>& up_down, const std::vector<int64_t>& pad1,
                        const std::vector<int64_t>& pad2) {
    p.n = x.size(0); p.c = x.size(1);
    p.h = int(x.size(2)); p.w = int(x.size(3));
    p.sn = x.stride(0); p.sc = x.stride(1); p.sh = x.stride(2); p.sw = x.stride(3);
    p.ux = int(up_down[0]); p.uy = int(up_down[1]); p.dx = int(up_down[2]); p.dy = int(up_down[3]);
    p.sep1 = f1.dim() == 1; p.sep2 = f2.dim() == 1;
    p.f1h = int(f1.size(0)); p.f1w = int(f1.size(-1));
    p.f2h = int(f2.size(0)); p.f2w = int(f2.size(-1));
    p.n1x = (p.f1w + p.ux - 1) / p.ux; p.n1y = (p.f1h + p.uy - 1) / p.uy;
    p.px0 = int(pad1[0]); p.py0 = int(pad1[2]);
    p.qx0 = int(pad2[0]); p.qy0 = int(pad2[2]);
    int64_t mh, mw, oh, ow;
    axis_sizes(x.size(2), p.uy, p.dy, pad1[2], pad1[3], pad2[2], pad2[3], p.f1h, p.f2h, mh, oh);
    axis_sizes(x.size(3), p.ux, p.dx, pad1[0], pad1[1], pad2[0], pad2[1], p.f1w, p.f2w, mw, ow);
    p.mh = int(mh); p.mw = int(mw); p.oh = int(oh); p.ow = int(ow);
}

// One chain (see filtered_lrelu.h) over [N, C, H, W] x of any strides:
//   stage 1: upsample by up_down[0:2] (x, y), pad by pad1 (x0, x1, y0, y1), FIR with f1, times gains[0];
//   pointwise: mode 0 (ACT) the activation with gains[1], slope, clamp (< 0: none), recording a
//              uint8 code per intermediate element into a new [N, C, MH, MW] tensor when write_mask;
//              mode 1 (MASKED) multiply by gains[1] * {0, 1, slope}[mask] (mask given, that shape);
//   stage 2: pad by pad2, FIR with f2, keep every up_down[2:4]-th sample, times gains[2].
// b: bias [C] of x's dtype added to x (empty: none). f1/f2: [taps] (separable) or [h, w], dtype
// opmath_type<x>. flip_taps reads the filters reversed (a true convolution). tile: output tile
// size, 0 = automatic. Returns (y, mask), mask undefined unless written; y has x's memory format.
std::tuple<at::Tensor, at::Tensor> filtered_lrelu(at::Tensor x, at::Tensor b, at::Tensor f1, at::Tensor f2,
                                                  at::Tensor mask, std::vector<int64_t> up_down,
                                                  std::vector<int64_t> pad1, std::vector<int64_t> pad2,
                                                  bool flip_taps, std::vector<double> gains, double slope,
                                                  double clamp, int64_t mode, bool write_mask, int64_t tile) {
    TORCH_CHECK(x.dim() == 4, "filtered_lrelu: x must be [N, C, H, W]");
    TORCH_CHECK(at::isFloatingType(x.scalar_type()), "filtered_lrelu: x must be a floating-point tensor");
    TORCH_CHECK(up_down.size() == 4 && pad1.size() == 4 && pad2.size() == 4 && gains.size() == 3,
                "filtered_lrelu: expected 4 factors, 4 + 4 paddings and 3 gains");
    for (int64_t v : up_down) TORCH_CHECK(v >= 1 && v < kMaxCoord, "filtered_lrelu: up and down must be >= 1");
    TORCH_CHECK(mode == ACT || mode == MASKED, "filtered_lrelu: bad mode ", mode);
    TORCH_CHECK(tile >= 0 && tile <= 256, "filtered_lrelu: tile must be in [0, 256]");
    check_filter(f1, x, "f1");
    check_filter(f2, x, "f2");
    const bool has_bias = b.defined() && b.numel() > 0;
    if (has_bias) {
        TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(1), "filtered_lrelu: b must be [C]");
        TORCH_CHECK(b.scalar_type() == x.scalar_type() && b.device() == x.device(),
                    "filtered_lrelu: b must have the dtype and device of x");
    }

    Params p;
    fill_params(p, x, f1, f2, up_down, pad1, pad2);
    p.flip_taps = flip_taps;
    p.g_up = gains[0]; p.gain = gains[1]; p.g_down = gains[2];
    p.slope = slope; p.clamp = clamp;
    p.mode = int(mode);

    const std::vector<int64_t> mshape = {p.n, p.c, p.mh, p.mw};
    at::Tensor m;
    if (mode == MASKED) {
        TORCH_CHECK(mask.defined() && mask.sizes() == at::IntArrayRef(mshape) && mask.scalar_type() == at::kByte &&
                        mask.is_contiguous() && mask.device() == x.device(),
                    "filtered_lrelu: mask must be a contiguous uint8 [N, C, MH, MW] tensor on x's device");
        m = mask;
    } else if (write_mask) {
        m = at::zeros(mshape, x.options().dtype(at::kByte));  // cells no output reads keep code 0
    }
    at::Tensor y = at::empty({p.n, p.c, p.oh, p.ow}, x.options().memory_format(x.suggest_memory_format()));
    p.on = y.stride(0); p.oc = y.stride(1); p.oys = y.stride(2); p.oxs = y.stride(3);
    if (y.numel() == 0) return {y, m};
    if (x.numel() == 0) return {y.zero_(), m};  // the output sees only padding
    const int64_t elem_bytes = x.scalar_type() == at::kDouble ? 8 : 4;  // the workspace holds opmath values
    int64_t budget = kSharedBytes, min_tiles = 0;
    if (x.is_cuda()) shared_plan_cuda(x, elem_bytes, budget, min_tiles);
    plan_tiles(p, tile, elem_bytes, budget, min_tiles);

    at::Tensor bc = has_bias ? b.contiguous() : at::Tensor();
    at::Tensor f1c = f1.contiguous(), f2c = f2.contiguous();
    if (x.is_cuda()) {
        launch_cuda(p, y, x, bc, f1c, f2c, m);
        return {y, m};
    }
    TORCH_CHECK(x.device().is_cpu(), "filtered_lrelu: unsupported device ", x.device());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "latentlab_filtered_lrelu_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        scalar_t* yp = y.data_ptr<scalar_t>();
        const scalar_t* xp = x.data_ptr<scalar_t>();
        const scalar_t* bp = has_bias ? bc.data_ptr<scalar_t>() : nullptr;
        const acc_t *k1 = f1c.data_ptr<acc_t>(), *k2 = f2c.data_ptr<acc_t>();
        uint8_t* mp = m.defined() ? m.data_ptr<uint8_t>() : nullptr;
        with_spec(p, [&](auto spec) {
            using S = decltype(spec);
            at::parallel_for(0, p.tiles, 1, [&](int64_t begin, int64_t end) {
                std::vector<acc_t> ws(static_cast<size_t>(p.ws_t + p.ws_a + p.ws_b));
                const HostGroup g{};
                prepare_taps<acc_t, HostGroup>(p, g, k1, k2, ws.data());
                for (int64_t t = begin; t < end; ++t)
                    run_tile<S, scalar_t, acc_t, HostGroup>(t, p, g, yp, xp, bp, mp, ws.data(), ws.data() + p.ws_t);
            });
        });
    });
    return {y, m};
}

}  // namespace filtered_lrelu
}  // namespace latentlab

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "latentlab filtered_lrelu kernels (CUDA, with a host loop for testing)";
    m.def("filtered_lrelu", &latentlab::filtered_lrelu::filtered_lrelu,
          "Upsample + FIR, leaky ReLU or its recorded derivative, FIR + downsample, fused per output tile",
          pybind11::arg("x"), pybind11::arg("b"), pybind11::arg("f1"), pybind11::arg("f2"), pybind11::arg("mask"),
          pybind11::arg("up_down"), pybind11::arg("pad1"), pybind11::arg("pad2"), pybind11::arg("flip_taps"),
          pybind11::arg("gains"), pybind11::arg("slope"), pybind11::arg("clamp"), pybind11::arg("mode"),
          pybind11::arg("write_mask"), pybind11::arg("tile"));
}
