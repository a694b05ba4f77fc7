"""Latents files as inputs (issue 15, part 3): codes carry their noise maps, and every command that consumes
latents takes --latents FILE instead of seeds (edit, mix, interpolate, truncate, als, corr).

Each command's images are compared byte for byte with an independent render: G.synthesis on codes built by
hand, with the file's noise maps swapped in by `noise_override`, in the same batch as the command renders
(--batch 64), so equal means equal."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_tiny_generator, run_cli
from latentlab.errors import ConfigError
from latentlab.latents import LatentCodes
from latentlab.models.identity import model_hash
from latentlab.models.noise import draw_noise, noise_layers, noise_override

NAMES = ["anna", "bert", "carl"]


def _tiny():
    G = make_tiny_generator()
    with torch.no_grad():  # visible noise and a w_avg away from 0, so that both show in the images
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
        G.mapping.w_avg.normal_()
    return G


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from latentlab.checkpoints import save_native

    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_native(path, {"G_ema": _tiny()}, "latentlab")
    return path


@pytest.fixture(scope="module")
def G(ckpt):
    from latentlab import load_generator

    return load_generator(str(ckpt))


def ws_of(G, n=3, seed=7):
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G.mapping(z, torch.zeros(n, 0))[:, 0]


def write_latents(path, G, space="w", n=3, noise=True, model_id=None):
    """A latents file as the projector/encoder writes one: codes, image names, noise0..noiseK. Returns
    (codes [n, ...], noise list)."""
    w = ws_of(G, n)
    data = {"w": w, "w+": w[:, None].repeat(1, G.num_ws, 1), "s": None}[space]
    if space == "s":
        with torch.no_grad():
            data = G.synthesis.pack_styles(G.synthesis.compute_styles(w[:, None].repeat(1, G.num_ws, 1)))
    maps = draw_noise(G.synthesis, range(50, 50 + n)) if noise else None
    meta = {"targets": NAMES[:n]}
    codes = LatentCodes(data, space, model_id=model_id or model_hash(G), meta=meta)
    codes.save(path, **({f"noise{k}": m.numpy() for k, m in enumerate(maps)} if noise else {}))
    return data, maps


def reference(G, ws=None, styles=None, noise=None):
    """uint8 [N, H, W, C] of G.synthesis (const noise, or `noise` [N, 1, R, R] per layer), one batch."""
    with torch.no_grad():
        if noise is None:
            x = G.synthesis(ws, noise_mode="const") if styles is None else G.synthesis(styles=styles)
        else:
            with noise_override(G.synthesis, noise):
                if styles is None:
                    x = G.synthesis(ws, noise_mode="const")
                else:
                    x = G.synthesis(styles=styles, noise_mode="const")
    return (x.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


def full(G, w):
    return w[:, None].repeat(1, G.num_ws, 1)


def rows(noise, idx):
    return [m[list(idx)] for m in noise]


def png(path):
    return np.asarray(Image.open(path))


def one_line_error(code, err, *parts, exit_code=1):
    assert code == exit_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latentlab: error:"), err
    for p in parts:
        assert p in lines[0], (p, lines[0])
    assert "Traceback" not in err


@pytest.fixture
def direction(tmp_path, G):
    v = np.random.RandomState(3).randn(1, G.w_dim)
    v /= np.linalg.norm(v)
    np.save(tmp_path / "d.npy", v)
    return tmp_path / "d.npy", torch.from_numpy(v[0]).float()


# ---- LatentCodes: noise maps ----------------------------------------------------------------------------------------
def test_noise_maps_round_trip_and_follow_the_rows(tmp_path, G):
    from latentlab.edits import sweep

    data, maps = write_latents(tmp_path / "l.npz", G)
    codes = LatentCodes.load_for(tmp_path / "l.npz", G)
    assert codes.source == str(tmp_path / "l.npz") and codes.names() == NAMES
    assert len(codes.noise) == len(noise_layers(G.synthesis))
    for got, want in zip(codes.noise, maps):
        assert torch.equal(got, want)
    pick = codes[[2, 0]]
    assert pick.names() == ["carl", "anna"] and torch.equal(pick.noise[1], maps[1][[2, 0]])
    rep = codes.repeat_rows(2)
    assert rep.names() == [n for n in NAMES for _ in (0, 1)] and torch.equal(rep.noise[0], maps[0][[0, 0, 1, 1, 2, 2]])
    edited = sweep(codes, np.eye(G.w_dim)[0], [-1.0, 1.0], G)  # each image's noise in each of its columns
    assert torch.equal(edited.noise[-1], maps[-1].repeat_interleave(2, 0))
    assert torch.equal(edited.data[1], data[0] + torch.eye(G.w_dim)[0])
    again = tmp_path / "again.npz"
    codes.save(again)
    for got, want in zip(LatentCodes.load(again).noise, maps):
        assert torch.equal(got, want)
    assert LatentCodes.load(again).to("w+", G).noise[2].shape == maps[2].shape  # conversions keep them


def test_load_for_refuses_noise_maps_that_do_not_fit(tmp_path, G):
    data = ws_of(G, 2)
    maps = draw_noise(G.synthesis, [1, 2])
    cases = {
        "count": ({f"noise{k}": m.numpy() for k, m in enumerate(maps[:-1])}, "noise layers"),
        "size": ({**{f"noise{k}": m.numpy() for k, m in enumerate(maps)}, "noise0": np.zeros((2, 1, 8, 8))}, "8x8"),
        "gap": ({"noise0": maps[0].numpy(), "noise2": maps[2].numpy()}, "numbered"),
        "rows": ({**{f"noise{k}": m.numpy() for k, m in enumerate(maps)}, "noise1": maps[1][:1].numpy()}, "one per"),
    }
    for name, (arrays, message) in cases.items():
        path = tmp_path / f"{name}.npz"
        LatentCodes(data, "w", model_id=model_hash(G)).save(path, **arrays)
        with pytest.raises(ConfigError, match=message) as e:
            LatentCodes.load_for(path, G)
        assert str(path) in str(e.value) and "\n" not in str(e.value), name


def pixel_mse(a, b):
    return (a - b).square().flatten(1).mean(1)


def test_a_projection_renders_as_the_projectors_reconstruction(tmp_path, G):
    from latentlab.inversion import project, write_projection

    target = torch.from_numpy(np.random.RandomState(0).randint(0, 256, (2, 3, 16, 16), dtype=np.uint8))
    for space in ("w", "w+"):
        res = project(G, target, 3, space=space, distance=pixel_mse, names=["x", "y"], w_avg_samples=500)
        write_projection(res, ["x", "y"], str(tmp_path), {})
        codes = LatentCodes.load_for(tmp_path / "latents.npz", G)
        assert codes.names() == ["x", "y"] and codes.noise is not None
        assert torch.equal(codes.render(G), res.images)  # exactly the reconstruction
        alone = codes[[1]].render(G, batch_size=1)  # its own noise rows in a batch of one (floats differ by rounding)
        assert (alone - res.images[1:]).abs().max() < 1e-5
        without = codes.replace(noise=None).render(G)
        assert (without - res.images).abs().max() > 0.05  # the noise maps matter: the test would see them missing


def test_codes_without_noise_render_with_the_constant_noise(G):
    w = ws_of(G, 3)
    got = LatentCodes(w, "w").render_uint8(G, batch_size=2)
    np.testing.assert_array_equal(got[:2], reference(G, full(G, w[:2])))
    np.testing.assert_array_equal(got[2:], reference(G, full(G, w[2:])))


# ---- edit --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("space", ["w", "w+"])
def test_edit_latents_starts_from_each_reconstruction(capsys, tmp_path, ckpt, G, direction, space):
    f = tmp_path / "p.npz"
    w, maps = write_latents(f, G, space, n=2)
    path, n = direction
    out = tmp_path / "o"
    code, stdout, err = run_cli(
        capsys, "edit", "--model", ckpt, "--latents", f, "--boundary", path, "--alpha", "2", "--batch", "64",
        "--out", out,
    )  # fmt: skip
    assert code == 0, err
    ws = full(G, w) if space == "w" else w  # a W direction moves every W+ layer
    edited = torch.stack([ws, ws + 2 * n], 1).flatten(0, 1)  # anna 0, anna 2, bert 0, bert 2
    expected = reference(G, edited, noise=rows(maps, [0, 0, 1, 1]))
    for k, name in enumerate(["anna_alpha+0.00", "anna_alpha+2.00", "bert_alpha+0.00", "bert_alpha+2.00"]):
        np.testing.assert_array_equal(png(out / f"{name}.png"), expected[k], err_msg=name)
    rec = json.loads((out / "edit.json").read_text())
    assert rec["latents"] == str(f) and rec["names"] == ["anna", "bert"] and rec["seeds"] is None
    assert rec["space"] == space
    saved = LatentCodes.load(out / "latents.npz", prefix="edited_")
    assert torch.equal(saved.noise[0], maps[0].repeat_interleave(2, 0))


def test_edit_s_codes_in_s_and_along_a_w_direction(capsys, tmp_path, ckpt, G, direction):
    f = tmp_path / "enc.npz"
    s, maps = write_latents(f, G, "s", n=2)
    out = tmp_path / "o"
    code, _, err = run_cli(
        capsys, "edit", "--model", ckpt, "--latents", f, "--space", "s", "--channels", "3,40", "--alpha", "-4,4",
        "--no-original", "--batch", "64", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    step = torch.zeros(s.shape[1])
    step[[3, 40]] = 0.5**0.5  # the unit vector on the channels (`edit`)
    styles = torch.stack([s - 4 * step, s + 4 * step], 1).flatten(0, 1)
    expected = reference(G, styles=styles, noise=rows(maps, [0, 0, 1, 1]))
    np.testing.assert_array_equal(png(out / "bert_alpha+4.00.png"), expected[3])
    np.testing.assert_array_equal(png(out / "anna_alpha-4.00.png"), expected[0])
    # a W direction moves S codes exactly as it moves the styles: s + alpha (styles(n) - styles(0)) = styles(w + alpha n)
    code, _, err = run_cli(
        capsys, "edit", "--model", ckpt, "--latents", f, "--boundary", direction[0], "--alpha", "3", "--no-original",
        "--batch", "64", "--out", tmp_path / "x",
    )  # fmt: skip
    assert code == 0, err
    w = ws_of(G, 2) + 3 * direction[1]
    with torch.no_grad():
        moved = G.synthesis.pack_styles(G.synthesis.compute_styles(w[:, None].repeat(1, G.num_ws, 1)))
    expected = reference(G, styles=moved, noise=maps).astype(int)
    for k, name in enumerate(["anna", "bert"]):
        got = png(tmp_path / "x" / f"{name}_alpha+3.00.png").astype(int)
        assert np.abs(got - expected[k]).max() <= 1, name  # float round-off of the affine maps only
    edited = LatentCodes.load(tmp_path / "x" / "latents.npz", prefix="edited_")
    torch.testing.assert_close(edited.data, moved, rtol=1e-5, atol=1e-5)
    # a direction of neither S nor W size cannot move S codes: one line that names the fix
    np.save(tmp_path / "odd.npy", np.ones((1, G.w_dim + 1)))
    code, _, err = run_cli(
        capsys, "edit", "--model", ckpt, "--latents", f, "--boundary", tmp_path / "odd.npy", "--out", tmp_path / "y"
    )
    one_line_error(code, err, str(f), "s codes", "--channels")


def test_nvidia_projected_w_is_read_as_w_plus_codes(capsys, tmp_path, ckpt, G, direction):
    """NVIDIA's projector writes projected_w.npz: one float32 array `w` [1, num_ws, w_dim] and nothing else
    (np.savez as its projector.py does). `edit --latents` on it edits those W+ codes with the constant noise,
    as NVIDIA's generate.py --projected-w renders them; the layers differ here, so a W broadcast would show."""
    ws = full(G, ws_of(G, 2)) + torch.randn(2, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(5))
    f = tmp_path / "projected_w.npz"
    np.savez(f, w=ws.numpy().astype(np.float32))
    codes = LatentCodes.load_for(f, G)
    assert codes.space == "w+" and codes.model_id is None and codes.noise is None and torch.equal(codes.data, ws)
    path, n = direction
    out = tmp_path / "o"
    code, _, err = run_cli(
        capsys, "edit", "--model", ckpt, "--latents", f, "--boundary", path, "--alpha", "2", "--no-original",
        "--batch", "64", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    expected = reference(G, ws + 2 * n)
    got = sorted(p.name for p in out.glob("*_alpha+2.00.png"))
    assert len(got) == 2, got
    for k, name in enumerate(got):
        np.testing.assert_array_equal(png(out / name), expected[k], err_msg=name)
    # what `generate --latents-format nvidia` writes reads back as the same codes
    code, _, err = run_cli(
        capsys, "generate", "--model", ckpt, "--seeds", "0-2", "--latents-format", "nvidia", "--out", tmp_path / "g"
    )
    assert code == 0, err
    back = LatentCodes.load_for(tmp_path / "g" / "projected_w.npz", G)
    mine = LatentCodes.load_for(tmp_path / "g" / "latents.npz", G)
    assert back.space == "w+" and torch.equal(back.data, mine.to("w+", G).data)
    # a 'w' array of another layout, or of integers, is refused in one line naming the file
    np.savez(tmp_path / "flat.npz", w=ws[:, 0].numpy())
    np.savez(tmp_path / "ints.npz", w=np.zeros((1, G.num_ws, G.w_dim), dtype=np.int64))
    np.savez(tmp_path / "short.npz", w=ws[:, :2].numpy())
    for name, part in [
        ("flat.npz", "[N, num_ws, w_dim]"),
        ("ints.npz", "expected floats"),
        ("short.npz", "do not fit this generator ([N, 6, 16])"),
    ]:
        code, _, err = run_cli(
            capsys, "edit", "--model", ckpt, "--latents", tmp_path / name, "--boundary", path, "--out", tmp_path / "x"
        )
        one_line_error(code, err, name, part)


def test_edit_w_codes_in_s_converts_forward(capsys, tmp_path, ckpt, G):
    f = tmp_path / "p.npz"
    w, maps = write_latents(f, G, "w", n=2)
    out = tmp_path / "o"
    code, _, err = run_cli(
        capsys, "edit", "--model", ckpt, "--latents", f, "--space", "s", "--channels", "7", "--alpha", "5",
        "--batch", "64", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    with torch.no_grad():
        s = G.synthesis.pack_styles(G.synthesis.compute_styles(full(G, w)))
    s2 = s.clone()
    s2[:, 7] += 5
    expected = reference(G, styles=torch.stack([s, s2], 1).flatten(0, 1), noise=rows(maps, [0, 0, 1, 1]))
    np.testing.assert_array_equal(png(out / "bert_alpha+5.00.png"), expected[3])


def test_refusals_are_one_line(capsys, tmp_path, ckpt, G, direction):
    other = tmp_path / "other.npz"
    write_latents(other, G, model_id=model_hash(make_tiny_generator(seed=1)))
    mine = tmp_path / "mine.npz"
    write_latents(mine, G)
    enc = tmp_path / "enc.npz"
    write_latents(enc, G, "s")
    base = ["--model", ckpt]
    cases = [
        (["edit", *base, "--latents", other, "--boundary", direction[0]], 1, ["other.npz", "another model"]),
        (["interpolate", *base, "--latents", other], 1, ["another model"]),
        (["truncate", *base, "--latents", other], 1, ["another model"]),
        (["mix", *base, "--row-latents", other], 1, ["another model"]),
        (["edit", *base, "--latents", mine, "--seeds", "1-2", "--boundary", direction[0]], 2, ["--seeds", "not both"]),
        (["mix", *base, "--col-latents", mine, "--cols", "3"], 2, ["--cols", "--col-latents", "not both"]),
        (["truncate", *base, "--latents", mine, "--seeds", "0-1"], 2, ["not both"]),
        (["interpolate", *base, "--latents", mine, "--space", "z"], 1, ["mine.npz", "w codes cannot become z"]),
        (["edit", *base, "--latents", mine, "--boundary", direction[0], "--trunc", "0.5"], 1, ["truncation"]),
        (["mix", *base, "--row-latents", enc], 1, ["enc.npz", "s codes"]),
        (["truncate", *base, "--latents", mine, "--variant", "z:2"], 1, ["mine.npz", "needs z codes"]),
        (["truncate", *base, "--latents", enc, "--variant", "w:0.5"], 1, ["enc.npz", "s codes"]),
    ]
    for k, (args, exit_code, parts) in enumerate(cases):
        code, _, err = run_cli(capsys, *args, "--out", tmp_path / f"o{k}")
        one_line_error(code, err, *parts, exit_code=exit_code)
        assert not (tmp_path / f"o{k}" / "grid.png").exists()


# ---- mix, interpolate, truncate ------------------------------------------------------------------------------------
def test_mix_rows_from_a_latents_file(capsys, tmp_path, ckpt, G):
    from latentlab.latents import z_from_seeds

    f = tmp_path / "p.npz"
    w, maps = write_latents(f, G, n=2)
    out = tmp_path / "o"
    code, _, err = run_cli(
        capsys, "mix", "--model", ckpt, "--row-latents", f, "--cols", "3,4", "--layers", "0-1", "--batch", "64",
        "--out", out,
    )  # fmt: skip
    assert code == 0, err
    with torch.no_grad():
        wc = G.mapping(z_from_seeds([3, 4], G.z_dim), torch.zeros(2, 0))
    mixed = full(G, w).repeat_interleave(2, 0)
    mixed[:, :2] = wc.repeat(2, 1, 1)[:, :2]  # anna x 3, anna x 4, bert x 3, bert x 4
    expected = reference(G, mixed, noise=rows(maps, [0, 0, 1, 1]))  # a mixed image keeps its row's noise
    for k, name in enumerate(["anna_0003", "anna_0004", "bert_0003", "bert_0004"]):
        np.testing.assert_array_equal(png(out / f"mix_{name}.png"), expected[k], err_msg=name)
    rec = json.loads((out / "mix.json").read_text())
    assert rec["row_latents"] == str(f) and rec["rows"] == ["anna", "bert"] and rec["cols"] == [3, 4]


def test_interpolate_between_the_codes_of_a_file(capsys, tmp_path, ckpt, G):
    f = tmp_path / "p.npz"
    w, maps = write_latents(f, G, n=3)
    out = tmp_path / "o"
    code, _, err = run_cli(
        capsys, "interpolate", "--model", ckpt, "--latents", f, "--frames", "3", "--batch", "64", "--out", out
    )
    assert code == 0, err
    t = torch.tensor([0.0, 0.5, 1.0])
    ends = [(0, 1), (1, 2)]
    ws = torch.cat([torch.lerp(w[a][None], w[b][None], t[:, None]) for a, b in ends])
    noise = [torch.cat([torch.lerp(m[a][None], m[b][None], t[:, None, None, None]) for a, b in ends]) for m in maps]
    expected = reference(G, full(G, ws), noise=noise)
    for k in range(6):
        np.testing.assert_array_equal(png(out / f"pair{k // 3:02d}_frame{k % 3:03d}.png"), expected[k], err_msg=str(k))
    # both ends are the images themselves
    np.testing.assert_array_equal(expected[[0, 2, 5]], reference(G, full(G, w), noise=maps))
    with np.load(out / "path.npz") as p:
        assert p["names"].tolist() == NAMES and str(p["latents"]) == str(f) and "seeds" not in p


def test_truncate_given_w_codes(capsys, tmp_path, ckpt, G):
    f = tmp_path / "p.npz"
    w, maps = write_latents(f, G, n=2)
    out = tmp_path / "o"
    code, stdout, err = run_cli(
        capsys, "truncate", "--model", ckpt, "--latents", f, "--variant", "none", "--variant", "w:0.5",
        "--batch", "64", "--out", out,
    )  # fmt: skip
    assert code == 0, err and "2 codes" in stdout
    w_avg = G.mapping.w_avg
    for row, ws in enumerate((w, w_avg + 0.5 * (w - w_avg))):
        expected = reference(G, full(G, ws), noise=maps)
        grid = png(out / f"variant{row}.png")
        for i in range(2):
            np.testing.assert_array_equal(grid[:16, i * 18 : i * 18 + 16], expected[i], err_msg=f"{row} {i}")
    rec = json.loads((out / "truncate.json").read_text())
    assert rec["latents"] == str(f) and rec["names"] == ["anna", "bert"] and rec["seeds"] is None
    assert "anna, bert" in (out / "summary.md").read_text()


# ---- studies: als, corr -------------------------------------------------------------------------------------------
@pytest.fixture
def clf_spec(mean_colour_torchscript):
    return f"torchscript:{mean_colour_torchscript}"


def scores(spec, images):
    """The classifier's logits [N, A] of float images [N, C, H, W]."""
    from latentlab.attributes import load_classifier

    return load_classifier(spec, trust_code=True)(images).detach().numpy()


def synth(G, ws, noise):
    with torch.no_grad(), noise_override(G.synthesis, noise):
        return G.synthesis(ws, noise_mode="const")


def test_als_on_given_codes(capsys, tmp_path, ckpt, G, direction, clf_spec):
    f = tmp_path / "p.npz"
    w, maps = write_latents(f, G, n=3)
    out = tmp_path / "o"
    code, stdout, err = run_cli(
        capsys, "als", "--model", ckpt, "--trust-code", "--classifier", clf_spec, "--latents", f, "--boundary", direction[0],
        "--alpha", "2", "--frames", "3", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    assert "3 pairs" in stdout and f"codes of {f}" in stdout  # one edit pair per code
    logits = np.load(out / "logits.npy")
    mid = scores(clf_spec, synth(G, full(G, w + 1.0 * direction[1]), maps))  # t = 1/2 of the way to w + 2 n
    np.testing.assert_allclose(logits[:, 1], mid, atol=1e-5)
    assert json.loads((out / "als.json").read_text())["settings"]["latents"] == str(f)
    # random pairs (the library call behind the command): pair p joins the two codes RandomState(seed + p) draws
    from latentlab.attributes import load_classifier
    from latentlab.studies.reports import als_study

    codes = LatentCodes.load_for(f, G)
    logits = als_study(
        G, load_classifier(clf_spec, trust_code=True), pairs=2, steps=1, seed=5, space=None, latents=codes
    ).attrs["logits"]
    for p in range(2):
        j, k = np.random.RandomState(5 + p).choice(3, 2, replace=False)
        ends = scores(clf_spec, synth(G, full(G, w[[j, k]]), rows(maps, [j, k])))
        np.testing.assert_allclose(logits[p], ends, atol=1e-5)


def test_corr_on_given_w_codes(capsys, tmp_path, ckpt, G, clf_spec):
    bw = tmp_path / "bw"
    bw.mkdir()
    rng = np.random.RandomState(0)
    dirs = {}
    for a in ("red", "green"):
        v = rng.randn(1, G.w_dim)
        dirs[a] = torch.from_numpy(v[0] / np.linalg.norm(v)).float()
        np.save(bw / f"{a}.npy", v / np.linalg.norm(v))
    f = tmp_path / "p.npz"
    w, maps = write_latents(f, G, "w+", n=3)
    args = ["corr", "--model", ckpt, "--trust-code", "--classifier", clf_spec, "--attrs", "red,green", "--score-map",
            "red=attr0,green=attr1", "--w-boundaries", bw, "--latents", f, "--alpha", "-1,1"]  # fmt: skip
    code, _, err = run_cli(capsys, *args, "--out", tmp_path / "c")
    assert code == 0, err
    import pandas as pd

    table = pd.read_csv(tmp_path / "c" / "scores.csv")
    assert len(table) == 2 * 3 * 2 and set(table["space"]) == {"w"} and set(table["seed"]) == set(NAMES)
    row = table[(table.edited == "green") & (table.alpha == 1.0) & (table.seed == "carl")]
    expected = scores(clf_spec, synth(G, w[2:] + dirs["green"], rows(maps, [2])))[0]
    np.testing.assert_allclose(row[["attr0", "attr1", "attr2"]].to_numpy()[0], expected, atol=1e-5)
    assert str(f) in (tmp_path / "c" / "summary.md").read_text()
    code, _, err = run_cli(capsys, *args, "--z-boundaries", bw, "--out", tmp_path / "z")
    one_line_error(code, err, "--z-boundaries", "z codes", exit_code=2)
    enc = tmp_path / "enc.npz"
    write_latents(enc, G, "s")
    code, _, err = run_cli(capsys, *[a if a != f else enc for a in args], "--out", tmp_path / "s")
    one_line_error(code, err, "enc.npz", "s codes")
