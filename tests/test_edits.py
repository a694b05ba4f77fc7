"""Latent codes and edits: exact algebra, conditioning, mixing, interpolation, files."""

import numpy as np
import pytest
import torch

from latentlab.edits import (
    Direction,
    distance,
    edit,
    edit_to_distance,
    lerp,
    load_direction,
    orthogonalize,
    parse_alphas,
    parse_channels,
    slerp,
    style_mix,
    sweep,
)
from latentlab.latents import LatentCodes, parse_layers, ws_resolutions


@pytest.fixture
def G(tiny_generator):
    return tiny_generator


def unit(d, seed=0):
    v = np.random.RandomState(seed).randn(d)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("space", ["z", "w", "s"])
def test_edit_adds_alpha_times_the_unit_direction(G, space):
    codes = LatentCodes.from_seeds(G, [0, 1, 2])
    with torch.no_grad():
        codes = codes.to(space, G)
    d = codes.data.shape[-1]
    raw = unit(d) * 7.0  # not unit: must be normalised
    out = edit(codes, raw, 2.5, G)
    assert torch.allclose(
        out.data - codes.data, torch.from_numpy(2.5 * unit(d)).float().expand_as(codes.data), atol=1e-5
    )
    assert out.seeds == [0, 1, 2] and out.space == space


def test_wplus_edit_touches_only_the_chosen_layers(G):
    codes = LatentCodes.from_seeds(G, [3, 4]).to("w+", G)
    n = unit(G.w_dim, 1)
    out = edit(codes, n, -1.5, G, layers="0-2")
    diff = (out.data - codes.data).detach()
    assert torch.allclose(diff[:, :3], torch.from_numpy(-1.5 * n).float().expand(2, 3, -1), atol=1e-6)
    assert torch.equal(diff[:, 3:], torch.zeros_like(diff[:, 3:]))
    middle = parse_layers("middle", G)
    out = edit(codes, n, 1.0, G, layers="middle")
    changed = [i for i in range(G.num_ws) if not torch.equal(out.data[:, i], codes.data[:, i])]
    assert changed == middle == [3, 4, 5]


def test_layer_levels_follow_layer_resolution(G):
    # 16x16 generator: ws 0 -> 4 px, 1-2 -> 8 px, 3-5 -> 16 px (the last feeds the final ToRGB)
    assert ws_resolutions(G) == [4, 8, 8, 16, 16, 16]
    assert parse_layers("coarse", G) == [0, 1, 2] and parse_layers("middle", G) == [3, 4, 5]
    assert parse_layers("0-1,4", G) == [0, 1, 4] and parse_layers(None, G) == list(range(6))
    with pytest.raises(ValueError, match="ws layers 0-5"):
        parse_layers("3-9", G)
    with pytest.raises(ValueError, match="selects no layer"):
        parse_layers("fine", G)


def test_s_space_channel_edit(G):
    codes = LatentCodes.from_seeds(G, [0]).to("s", G)
    out = edit(codes, None, 4.0, G, channels="b8.conv1:3-4")
    idx = parse_channels("b8.conv1:3-4", G)
    dims = list(G.synthesis.style_dims.items())
    start = sum(d for name, d in dims[: [n for n, _ in dims].index("b8.conv1")])
    assert idx == [start + 3, start + 4]
    diff = (out.data - codes.data)[0]
    assert torch.count_nonzero(diff) == 2 and torch.allclose(diff[idx], torch.full((2,), 4.0 / np.sqrt(2)))
    with pytest.raises(ValueError, match="unknown style layer"):
        parse_channels("b99.conv0:1", G)


def test_direction_size_mismatch_names_both_sizes(G):
    codes = LatentCodes.from_seeds(G, [0])
    with pytest.raises(ValueError, match="has 7 entries but the z space of this model has 16"):
        edit(codes, np.ones(7), 1.0, G)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_conditional_direction_is_orthogonal_and_unit(k):
    rng = np.random.RandomState(k)
    primary = rng.randn(32)
    conds = [rng.randn(32) for _ in range(k)]
    d = orthogonalize(primary, conds)
    assert abs(np.linalg.norm(d.vector) - 1) < 1e-12
    for c in conds:
        assert abs(d.vector @ c) < 1e-10
    if k == 1:  # InterFaceGAN's single-condition formula: n1 - (n1.n2) n2, renormalised
        n1, n2 = primary / np.linalg.norm(primary), conds[0] / np.linalg.norm(conds[0])
        v = n1 - (n1 @ n2) * n2
        np.testing.assert_allclose(d.vector, v / np.linalg.norm(v), atol=1e-12)
    with pytest.raises(ValueError, match="span"):
        orthogonalize(conds[0] + (conds[1] if k > 1 else 0), conds)


def test_distance_and_edit_to_target(G):
    codes = LatentCodes.from_seeds(G, [0, 1, 2]).to("w", G)
    n = unit(G.w_dim, 2)
    d0 = distance(codes, n, offset=0.3)
    assert torch.allclose(d0, codes.data @ torch.from_numpy(n).float() + 0.3, atol=1e-6)
    moved = edit_to_distance(codes, n, target=2.0, G=G, offset=0.3)
    assert torch.allclose(distance(moved, n, offset=0.3), torch.full((3,), 2.0), atol=1e-5)
    # moving along n only: the component orthogonal to n is unchanged
    ortho = lambda x: x - (x @ torch.from_numpy(n).float())[:, None] * torch.from_numpy(n).float()  # noqa: E731
    assert torch.allclose(ortho(moved.data), ortho(codes.data), atol=1e-5)


def test_sweep_is_seed_major_and_matches_single_edits(G):
    codes = LatentCodes.from_seeds(G, [5, 6]).to("w", G)
    n = unit(G.w_dim)
    out = sweep(codes, n, "-1:1:3", G)
    assert out.seeds == [5, 5, 5, 6, 6, 6]
    assert torch.allclose(out.data[4], edit(codes, n, 0.0, G).data[1])
    assert torch.allclose(out.data[2], edit(codes, n, 1.0, G).data[0])
    assert parse_alphas("-3:3:13")[1] == -2.5 and parse_alphas("1,2") == [1.0, 2.0]
    with pytest.raises(ValueError, match="bad alpha"):
        parse_alphas("a:b")


def test_style_mix_copies_exactly_the_requested_layers():
    a, b = torch.randn(3, 6, 4), torch.randn(3, 6, 4)
    out = style_mix(a, b, [1, 4])
    for i in range(6):
        assert torch.equal(out[:, i], b[:, i] if i in (1, 4) else a[:, i])
    assert torch.equal(a, a.clone())  # inputs untouched


def test_lerp_and_slerp():
    a, b = torch.randn(4, 16), torch.randn(4, 16)
    path = lerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], a) and torch.allclose(path[-1], b) and torch.allclose(path[2], (a + b) / 2)
    b = b / b.norm(dim=1, keepdim=True) * a.norm(dim=1, keepdim=True)  # equal norms
    s = slerp(a, b, torch.linspace(0, 1, 7))
    assert torch.allclose(s[0], a, atol=1e-5) and torch.allclose(s[-1], b, atol=1e-5)
    assert torch.allclose(s.norm(dim=-1), a.norm(dim=-1).expand(7, -1), atol=1e-4)  # slerp keeps norms
    # constant angular speed along the great circle
    ang = [torch.arccos(torch.nn.functional.cosine_similarity(s[i], s[i + 1], dim=-1)) for i in range(6)]
    assert torch.allclose(torch.stack(ang), ang[0].expand(6, -1), atol=1e-3)


def test_codes_convert_forward_only_and_render_identically(G, tmp_path):
    codes = LatentCodes.from_seeds(G, [0, 1])
    with torch.no_grad():
        imgs = [codes.to(s, G).render(G) for s in ("z", "w", "w+", "s")]
    for img in imgs[1:]:
        assert torch.allclose(img, imgs[0], atol=1e-5)
    with pytest.raises(ValueError, match="cannot convert"):
        codes.to("w", G).to("z", G)
    wp = codes.to("w+", G, truncation_psi=0.5, truncation_cutoff=2)
    assert wp.space == "w+" and not torch.allclose(wp.data[:, 0], wp.data[:, 3])
    wp.save(tmp_path / "c.npz")
    back = LatentCodes.load(tmp_path / "c.npz")
    assert back.space == "w+" and back.seeds == [0, 1] and back.model_id == codes.model_id
    assert torch.equal(back.data, wp.data)


def test_direction_files_in_interfacegan_layout(tmp_path):
    d = Direction(np.arange(1.0, 5.0), name="x")
    d.save(tmp_path / "x_w_boundary.npy")
    arr = np.load(tmp_path / "x_w_boundary.npy")
    assert arr.shape == (1, 4) and arr.dtype == np.float64 and abs(np.linalg.norm(arr) - 1) < 1e-12
    back = load_direction(tmp_path / "x_w_boundary.npy")
    assert back.space == "w" and np.allclose(back.vector, d.vector)
    np.save(tmp_path / "bad.npy", np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"shape \(1, d\)"):
        load_direction(tmp_path / "bad.npy")
    with pytest.raises(ValueError, match="zero"):
        Direction(np.zeros(4))
