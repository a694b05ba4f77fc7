"""latentlab.sampling: chunk contents, resume after crashes and kills, manifests, two gloo ranks, memory flatness, CLI."""

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from latentlab.latents import z_from_seeds
from latentlab.sampling import SampleTable, init_from_env, sample
from latentlab.sampling.store import chunk_path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))


class MeanColour:
    """A tiny deterministic classifier: mean of each channel and the overall std, scaled.

    Records how many images it saw at once and how often it was called; can raise
    (a crash) or SIGKILL its own process (a kill) on a given call.
    """

    names = ["red", "green", "blue", "contrast"]

    def __init__(self, fail_on_call=None, kill_on_call=None):
        self.calls, self.max_batch, self.images = 0, 0, 0
        self.fail_on_call, self.kill_on_call = fail_on_call, kill_on_call

    def __call__(self, img):
        self.calls += 1
        if self.calls == self.kill_on_call:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.calls == self.fail_on_call:
            raise RuntimeError("simulated crash")
        self.max_batch = max(self.max_batch, img.shape[0])
        self.images += img.shape[0]
        return torch.cat([img.mean(dim=(2, 3)) * 3, img.std(dim=(1, 2, 3))[:, None]], dim=1)


class LinearColour(torch.nn.Module):
    """A module classifier: a random linear map of the mean colour (its weights depend on `seed`)."""

    names = ["a", "b"]

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.fc = torch.nn.Linear(3, 2)

    def forward(self, img):
        return self.fc(img.mean(dim=(2, 3)))


def expected_arrays(G, seeds, psi=1.0, cutoff=None):
    """Independent expectations for a list of seeds: z from NumPy directly, ws, images and scores."""
    z = np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds]).astype(np.float32)
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(z), None, truncation_psi=psi, truncation_cutoff=cutoff)
        img = G.synthesis(ws, noise_mode="const")
        scores = MeanColour()(img)
    return z, ws.numpy(), img, scores.numpy()


def read_all(out_dir):
    t = SampleTable(out_dir)
    return t.load(t.fields)


def assert_same_tables(a, b):
    ta, tb = read_all(a), read_all(b)
    assert sorted(ta) == sorted(tb)
    for k in ta:
        assert ta[k].dtype == tb[k].dtype and np.array_equal(ta[k], tb[k]), k


def stat(path):
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, st.st_size


KW = dict(n=10, seed_start=5, chunk_size=4, batch_size=2, progress=False)


def test_chunks_hold_the_right_seeds_codes_and_scores(tiny_generator, tmp_path):
    G, clf = tiny_generator, MeanColour()
    out = tmp_path / "s"
    report = sample(G, clf, out, n=10, seed_start=5, chunk_size=4, batch_size=3, progress=False)
    assert report.computed == [0, 1, 2] and report.samples_computed == 10
    assert sorted(os.listdir(out)) == ["chunk_000000.npz", "chunk_000001.npz", "chunk_000002.npz", "manifest.json"]
    expected_seeds = [[5, 6, 7, 8], [9, 10, 11, 12], [13, 14]]
    for k, seeds in enumerate(expected_seeds):
        with np.load(chunk_path(out, k)) as npz:
            assert sorted(npz.files) == ["scores", "seeds", "w", "z"]  # no wplus without a truncation cutoff
            assert npz["seeds"].dtype == np.int64 and npz["seeds"].tolist() == seeds
            z, ws, _, scores = expected_arrays(G, seeds)
            assert npz["z"].dtype == np.float32 and np.array_equal(npz["z"], z)
            assert np.array_equal(npz["z"], z_from_seeds(seeds, G.z_dim).numpy())
            np.testing.assert_allclose(npz["w"], ws[:, 0], rtol=0, atol=1e-6)
            np.testing.assert_allclose(npz["scores"], scores, rtol=0, atol=1e-5)
    assert clf.max_batch == 3 and clf.images == 10
    m = json.loads((out / "manifest.json").read_text())
    assert (m["n"], m["seed_start"], m["chunk_size"], m["num_chunks"]) == (10, 5, 4, 3)
    assert m["names"] == MeanColour.names and m["truncation_psi"] == 1.0 and m["truncation_cutoff"] is None
    from latentlab.models.identity import model_hash

    assert m["model_hash"] == model_hash(G) and "torch" in m["versions"]


def test_truncation_cutoff_styles_and_thumbnails(tiny_generator, tmp_path):
    G = tiny_generator
    sample(
        G,
        MeanColour(),
        tmp_path / "s",
        n=5,
        chunk_size=3,
        batch_size=2,
        truncation_psi=0.5,
        truncation_cutoff=2,
        save_styles=True,
        save_images=True,
        thumb_size=8,
        progress=False,
    )
    data = read_all(tmp_path / "s")
    _, ws, img, scores = expected_arrays(G, range(5), psi=0.5, cutoff=2)
    assert not np.allclose(ws[:, 0], ws[:, -1])  # the cutoff really makes the layers differ
    np.testing.assert_allclose(data["wplus"], ws, rtol=0, atol=1e-6)
    assert np.array_equal(data["w"], data["wplus"][:, 0])
    styles = G.synthesis.pack_styles(G.synthesis.compute_styles(torch.from_numpy(ws))).detach().numpy()
    np.testing.assert_allclose(data["styles"], styles, rtol=0, atol=1e-5)
    # thumbnail: mean of 2x2 pixel blocks, then official uint8 rounding; allow one level for float ties
    blocks = img.numpy().reshape(5, 3, 8, 2, 8, 2).mean(axis=(3, 5)).transpose(0, 2, 3, 1)
    thumbs = np.clip(blocks * 127.5 + 128, 0, 255).astype(np.uint8)
    assert data["images"].dtype == np.uint8 and data["images"].shape == (5, 8, 8, 3)
    assert np.abs(data["images"].astype(int) - thumbs).max() <= 1
    np.testing.assert_allclose(data["scores"], scores, rtol=0, atol=1e-5)

    # psi without a cutoff truncates every layer alike: w alone describes them, no wplus
    sample(G, MeanColour(), tmp_path / "t", n=3, truncation_psi=0.5, progress=False)
    t = SampleTable(tmp_path / "t")
    assert "wplus" not in t.fields
    np.testing.assert_allclose(t.load(("w",))["w"], expected_arrays(G, range(3), psi=0.5)[1][:, 0], rtol=0, atol=1e-6)


def test_resume_after_a_crash_loses_nothing_and_repeats_nothing(tiny_generator, tmp_path):
    G = tiny_generator
    sample(G, MeanColour(), tmp_path / "ref", **KW)
    out = tmp_path / "run"
    # chunks of 4, 4, 2 seeds in batches of 2: calls 1-2 are chunk 0, 3-4 chunk 1, 5 chunk 2; crash inside chunk 1
    with pytest.raises(RuntimeError, match="simulated crash"):
        sample(G, MeanColour(fail_on_call=4), out, **KW)
    assert sorted(p.name for p in out.iterdir()) == ["chunk_000000.npz", "manifest.json"]
    before = stat(chunk_path(out, 0))
    (out / ".tmp-left-by-a-kill.npz").write_bytes(b"partial")  # what a SIGKILL during a write leaves

    clf = MeanColour()
    report = sample(G, clf, out, **KW)
    assert report.skipped == [0] and report.computed == [1, 2] and report.repaired == []
    assert clf.images == 6 and clf.calls == 3  # only the seeds of chunks 1 and 2 were rendered and scored
    assert stat(chunk_path(out, 0)) == before  # the completed chunk was not rewritten
    assert not (out / ".tmp-left-by-a-kill.npz").exists()
    assert_same_tables(tmp_path / "ref", out)

    clf = MeanColour()
    report = sample(G, clf, out, **KW)
    assert clf.calls == 0 and report.computed == [] and report.skipped == [0, 1, 2]


WORKER = r"""
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import torch
from latentlab import Generator
from latentlab.sampling import init_from_env, sample
from latentlab.utils.distributed import shutdown
from test_sampling import MeanColour

args = json.loads(sys.argv[3])
torch.set_num_threads(args["threads"])  # as in the parent, so that float results can be compared bit for bit
saved = torch.load(args["generator"])
G = Generator(**saved["kwargs"]).eval()
G.load_state_dict(saved["state"])
rank, world_size = init_from_env("cpu")
report = sample(G, MeanColour(kill_on_call=args.get("kill_on_call")), args["out"], rank=rank, world_size=world_size,
                **args["kw"])
shutdown()
print("REPORT " + json.dumps(dict(rank=rank, computed=report.computed, skipped=report.skipped)))
"""


def start_worker(G, tmp_path, out, kw, env=None, kill_on_call=None):
    gen = tmp_path / "generator.pt"
    if not gen.exists():
        torch.save(dict(kwargs=G.init_kwargs, state=G.state_dict()), gen)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    args = json.dumps(
        dict(generator=str(gen), out=str(out), kw=kw, kill_on_call=kill_on_call, threads=torch.get_num_threads())
    )
    full_env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    full_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, str(script), REPO, TESTS, args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_resume_after_sigkill(tiny_generator, tmp_path):
    G = tiny_generator
    sample(G, MeanColour(), tmp_path / "ref", **KW)
    out = tmp_path / "run"
    proc = start_worker(G, tmp_path, out, KW, kill_on_call=5)  # killed while rendering chunk 2
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    assert sorted(p.name for p in out.iterdir()) == ["chunk_000000.npz", "chunk_000001.npz", "manifest.json"]
    before = {k: stat(chunk_path(out, k)) for k in (0, 1)}
    with pytest.raises(ValueError, match="1 of 3 chunks are missing"):
        SampleTable(out)
    assert SampleTable(out, allow_partial=True).missing_chunks() == [2]

    clf = MeanColour()
    report = sample(G, clf, out, **KW)
    assert report.skipped == [0, 1] and report.computed == [2] and clf.images == 2
    assert {k: stat(chunk_path(out, k)) for k in (0, 1)} == before
    assert_same_tables(tmp_path / "ref", out)


def test_damaged_chunks_are_detected_and_recomputed(tiny_generator, tmp_path):
    G = tiny_generator
    sample(G, MeanColour(), tmp_path / "ref", **KW)
    out = tmp_path / "run"
    sample(G, MeanColour(), out, **KW)
    data = chunk_path(out, 1)
    with open(data, "r+b") as f:  # truncated, as by a copy that ran out of space
        f.truncate(os.path.getsize(data) // 2)
    with np.load(chunk_path(out, 2)) as npz:  # a readable chunk holding too few rows
        short = {k: npz[k][:1] for k in npz.files}
    np.savez(chunk_path(out, 2), **short)
    with pytest.raises(ValueError, match="chunk_000001.npz"):
        SampleTable(out)
    partial = SampleTable(out, allow_partial=True)
    assert partial.missing_chunks() == [1, 2] and len(partial) == 4

    before = stat(chunk_path(out, 0))
    clf = MeanColour()
    report = sample(G, clf, out, **KW)
    assert report.repaired == [1, 2] and report.computed == [1, 2] and report.skipped == [0] and clf.images == 6
    assert stat(chunk_path(out, 0)) == before
    assert_same_tables(tmp_path / "ref", out)


def test_a_different_request_is_refused_and_nothing_is_mixed(tiny_generator, tmp_path):
    G = tiny_generator
    out = tmp_path / "s"
    sample(G, MeanColour(), out, **KW)
    before = {p.name: stat(p) for p in out.iterdir()}
    with pytest.raises(ValueError, match=r"truncation_psi: folder has 1\.0, this run asks for 0\.7"):
        sample(G, MeanColour(), out, **dict(KW, progress=False), truncation_psi=0.7)
    with pytest.raises(ValueError, match=r"\bn: folder has 10, this run asks for 12"):
        sample(G, MeanColour(), out, **dict(KW, n=12))
    with pytest.raises(ValueError, match="chunk_size"):
        sample(G, MeanColour(), out, **dict(KW, chunk_size=5))

    class OtherNames(MeanColour):
        names = ["a", "b", "c", "d"]

    with pytest.raises(ValueError, match="names"):
        sample(G, OtherNames(), out, **KW)
    other = type(G)(**G.init_kwargs).eval()  # same architecture, other weights
    with pytest.raises(ValueError, match="model_hash"):
        sample(other, MeanColour(), out, **KW)
    assert {p.name: stat(p) for p in out.iterdir()} == before

    # same attribute names, other weights: a different classifier all the same
    sample(G, LinearColour(seed=0), tmp_path / "lin", **KW)
    with pytest.raises(ValueError, match="classifier: folder has"):
        sample(G, LinearColour(seed=1), tmp_path / "lin", **KW)
    assert sample(G, LinearColour(seed=0), tmp_path / "lin", **KW).skipped == [0, 1, 2]

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        sample(G, MeanColour(), foreign, **KW)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_equal_one_process(tiny_generator, tmp_path):
    G = tiny_generator
    kw = dict(
        n=14,
        seed_start=3,
        chunk_size=4,
        batch_size=3,
        truncation_psi=0.7,
        truncation_cutoff=3,
        save_styles=True,
        progress=False,
    )
    sample(G, MeanColour(), tmp_path / "ref", **kw)
    out = tmp_path / "ddp"
    env = dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE="2")
    procs = [start_worker(G, tmp_path, out, kw, env=dict(env, RANK=str(r), LOCAL_RANK=str(r))) for r in (0, 1)]
    reports = {}
    for p in procs:
        stdout, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        rep = json.loads(stdout.split("REPORT ", 1)[1])
        reports[rep["rank"]] = rep["computed"]
    assert reports == {0: [0, 2], 1: [1, 3]}  # chunk k goes to rank k % 2
    assert_same_tables(tmp_path / "ref", out)


def test_memory_stays_flat(tiny_generator, tmp_path):
    clf = MeanColour()
    sample(tiny_generator, clf, tmp_path / "s", n=23, chunk_size=10, batch_size=4, progress=False)
    assert clf.max_batch == 4 and clf.images == 23
    t = SampleTable(tmp_path / "s")
    parts = list(t.iter_chunks(("seeds", "w", "scores")))
    assert [len(p["seeds"]) for p in parts] == [10, 10, 3]
    assert [p["w"].shape for p in parts] == [(10, 16), (10, 16), (3, 16)]


def test_table_reading_and_export(tiny_generator, tmp_path):
    out = tmp_path / "s"
    sample(tiny_generator, MeanColour(), out, **KW)
    t = SampleTable(out)
    assert len(t) == 10 and t.names == MeanColour.names and t.seeds().tolist() == list(range(5, 15))
    full = t.load(("seeds", "z", "scores"))
    blue = t.load(("scores",), attrs=["blue", "red"])["scores"]
    assert np.array_equal(blue, full["scores"][:, [2, 0]])
    frame = t.scores_frame()
    assert frame.index.name == "seed" and frame.index.tolist() == list(range(5, 15))
    assert np.array_equal(frame["green"].to_numpy(), full["scores"][:, 1])
    with pytest.raises(ValueError, match="no field 'styles'.*--styles"):
        t.load(("styles",))
    with pytest.raises(ValueError, match="unknown attributes"):
        t.load(("scores",), attrs=["smile"])

    path = t.export(tmp_path / "table.npz")
    with np.load(path) as npz:
        assert sorted(npz.files) == ["names", "scores", "seeds", "w", "z"]
        assert npz["names"].tolist() == MeanColour.names
        for k in ("seeds", "z", "scores"):
            assert np.array_equal(npz[k], full[k])
    with pytest.raises(ValueError, match=r"\.npz or \.parquet"):
        t.export(tmp_path / "table.csv")
    with pytest.raises(ValueError, match="not a sample folder"):
        SampleTable(tmp_path)


def test_table_exports_parquet(tiny_generator, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    sample(tiny_generator, MeanColour(), tmp_path / "s", **KW)
    t = SampleTable(tmp_path / "s")
    got = pq.read_table(t.export(tmp_path / "t.parquet"))
    data = t.load(t.fields)
    assert got.column("seed").to_pylist() == data["seeds"].tolist()
    assert np.array_equal(np.stack(got.column("w").to_numpy(zero_copy_only=False)), data["w"])
    assert np.array_equal(got.column("contrast").to_numpy(), data["scores"][:, 3])


def test_progress_bar_starts_at_what_is_done(tiny_generator, tmp_path, capsys):
    out = tmp_path / "s"
    with pytest.raises(RuntimeError):
        sample(tiny_generator, MeanColour(fail_on_call=5), out, **KW)  # chunks 0 and 1 done
    capsys.readouterr()
    sample(tiny_generator, MeanColour(), out, **dict(KW, progress=True))
    err = capsys.readouterr().err
    assert " 8/10 " in err and " 10/10 " in err and " 0/10 " not in err


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(n=0), "n must be an integer >= 1"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(batch_size=2.5), "batch_size"),
        (dict(seed_start=2**32 - 5), "exceed the largest seed"),
        (dict(truncation_cutoff=7), "truncation_cutoff"),
        (dict(noise_mode="loud"), "noise_mode"),
        (dict(rank=2, world_size=2), "rank"),
        (dict(class_idx=1), "unconditional"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(tiny_generator, tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        sample(tiny_generator, MeanColour(), tmp_path / "s", **dict(KW, **change))
    assert not (tmp_path / "s").exists()


def test_conditional_generators_sample_one_class(tmp_path):
    from latentlab import Generator

    torch.manual_seed(1)
    G = Generator(
        z_dim=8,
        c_dim=3,
        w_dim=8,
        img_resolution=8,
        img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=64, channel_max=8),
    ).eval()
    with pytest.raises(ValueError, match="conditional"):
        sample(G, MeanColour(), tmp_path / "a", n=3, progress=False)
    sample(G, MeanColour(), tmp_path / "b", n=3, class_idx=2, progress=False)
    z = z_from_seeds([0, 1, 2], 8)
    with torch.no_grad():
        w = G.mapping(z, torch.eye(3)[[2, 2, 2]])[:, 0].numpy()
        w_other = G.mapping(z, torch.eye(3)[[0, 0, 0]])[:, 0].numpy()
    got = SampleTable(tmp_path / "b").load(("w",))["w"]
    np.testing.assert_allclose(got, w, rtol=0, atol=1e-6)
    assert not np.allclose(got, w_other)
    with pytest.raises(ValueError, match="class_idx: folder has 2, this run asks for 1"):
        sample(G, MeanColour(), tmp_path / "b", n=3, class_idx=1, progress=False)


def test_bad_classifiers_are_refused(tiny_generator, tmp_path):
    class NoNames:
        def __call__(self, img):
            return img.mean(dim=(2, 3))

    with pytest.raises(ValueError, match="names"):
        sample(tiny_generator, NoNames(), tmp_path / "a", **KW)

    class WrongWidth(MeanColour):
        names = ["only"]

    with pytest.raises(ValueError, match=r"expected \[2, 1\]"):
        sample(tiny_generator, WrongWidth(), tmp_path / "b", **KW)

    class NaN(MeanColour):
        def __call__(self, img):
            out = super().__call__(img)
            out[1, 0] = float("nan")
            return out

    with pytest.raises(ValueError, match="non-finite logits for seed 6"):
        sample(tiny_generator, NaN(), tmp_path / "c", **KW)
    assert not list((tmp_path / "c").glob("chunk_*"))  # no chunk with a bad score was written


def test_precomputed_scores_by_seed_need_no_rendering(tiny_generator, tmp_path):
    class SeedTable:  # like latentlab.attributes.TableScores: not callable, answers scores_for(seeds)
        names = ["double", "parity"]

        def scores_for(self, seeds):
            s = np.asarray(seeds, dtype=np.float64)
            return np.stack([2 * s, s % 2], axis=1).astype(np.float32)

    rendered = []
    hook = tiny_generator.synthesis.register_forward_hook(lambda m, i, o: rendered.append(len(o)))
    try:
        sample(tiny_generator, SeedTable(), tmp_path / "s", **KW)
        assert rendered == []
        t = SampleTable(tmp_path / "s")
        assert np.array_equal(t.load(("scores",))["scores"], SeedTable().scores_for(range(5, 15)))
        sample(tiny_generator, SeedTable(), tmp_path / "t", save_images=True, thumb_size=4, **KW)
        assert sum(rendered) == 10  # thumbnails still need the images
    finally:
        hook.remove()


def test_ranks_from_the_environment(monkeypatch):
    for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(v, raising=False)
    assert init_from_env("cpu") == (0, 1)
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two'"):
        init_from_env("cpu")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="RANK=2, WORLD_SIZE=2"):
        init_from_env("cpu")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(ValueError, match="MASTER_ADDR"):
        init_from_env("cpu")


def test_cli_help_and_missing_attributes_package(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from latentlab.cli.sample_commands import sample_cmd

    text = CliRunner().invoke(sample_cmd, ["--help"]).output
    assert "Example:" in text and "torchrun --nproc_per_node 4 -m latentlab -- sample" in text
    monkeypatch.setitem(sys.modules, "latentlab.attributes", None)  # makes the import fail
    result = CliRunner().invoke(
        sample_cmd, ["--model", "m.pkl", "--n", "4", "--classifier", "x", "--out", str(tmp_path / "o")]
    )
    assert isinstance(result.exception, ValueError) and "latentlab.attributes" in str(result.exception)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated, and still what torchscript: reads
def test_cli_samples_with_a_torchscript_classifier(tmp_path):
    attributes = pytest.importorskip("latentlab.attributes")
    if not hasattr(attributes, "load_classifier"):
        pytest.skip("latentlab.attributes has no load_classifier yet")
    from click.testing import CliRunner

    from conftest import fixture_path
    from latentlab.cli.sample_commands import sample_cmd

    class Net(torch.nn.Module):
        def forward(self, x):
            return torch.stack([x.mean(dim=(1, 2, 3)), x.std(dim=(1, 2, 3))], dim=1)

    scripted = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(Net()), str(scripted))
    out = tmp_path / "o"
    args = [
        "--model",
        fixture_path("sg2ada_skip32.pkl"),
        "--n",
        "5",
        "--chunk",
        "2",
        "--batch",
        "2",
        "--classifier",
        f"torchscript:{scripted}",
        "--trust-code",
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(sample_cmd, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    t = SampleTable(out)
    assert len(t) == 5 and len(t.names) == 2 and t.seeds().tolist() == [0, 1, 2, 3, 4]
    again = CliRunner().invoke(sample_cmd, args)
    assert again.exit_code == 0 and "computed 0 samples" in again.output
