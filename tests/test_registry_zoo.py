"""The model zoo: the shipped registry's entries (every official StyleGAN/StyleGAN2/ADA/StyleGAN3 checkpoint,
HSR's, NVIDIA's classifiers, InterFaceGAN's boundary files), docs/MODELS.md in sync with it, and
`latentlab models` listing it. Downloads go to a local HTTP server on 127.0.0.1, never the internet."""

import importlib.util
import io
import json
import os
import re
import urllib.parse

import numpy as np
import pytest
from test_download import OCTETS, Files, files  # noqa: F401  (files: the server fixture)

from conftest import run_cli
from latentlab.checkpoints import download as dl
from latentlab.checkpoints.tags import ALL_FORMATS, FORMAT_SG1_TF, FORMAT_SG2_PYTORCH, FORMAT_SG2_TF
from latentlab.edits.registry import parse_interfacegan_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGISTRY = os.path.join(ROOT, "checkpoints", "registry.json")
GENERATION = {"stylegan1": 1, "stylegan2": 2, "stylegan2-ada": 2, "stylegan3-t": 3, "stylegan3-r": 3}
NGC3 = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"
NGC2 = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
ADA_PT = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
ADA_TF = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada/pretrained/"
SG2_TF = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/"
# the file lists the publishers' READMEs give (NVlabs/stylegan3, stylegan2-ada(-pytorch), stylegan2, stylegan)
OFFICIAL = {
    NGC3: [
        f"stylegan3-{c}-{m}.pkl"
        for c in "tr"
        for m in (
            "ffhq-1024x1024",
            "ffhqu-1024x1024",
            "ffhqu-256x256",
            "metfaces-1024x1024",
            "metfacesu-1024x1024",
            "afhqv2-512x512",
        )
    ],
    NGC2: [
        f"stylegan2-{m}.pkl"
        for m in (
            "ffhq-1024x1024",
            "ffhq-512x512",
            "ffhq-256x256",
            "ffhqu-1024x1024",
            "ffhqu-256x256",
            "metfaces-1024x1024",
            "metfacesu-1024x1024",
            "afhqv2-512x512",
            "afhqcat-512x512",
            "afhqdog-512x512",
            "afhqwild-512x512",
            "brecahad-512x512",
            "cifar10-32x32",
            "celebahq-256x256",
            "lsundog-256x256",
        )
    ],
    ADA_PT: [f"{m}.pkl" for m in ("ffhq", "metfaces", "afhqcat", "afhqdog", "afhqwild", "brecahad", "cifar10")],
    ADA_TF: [f"{m}.pkl" for m in ("ffhq", "metfaces", "afhqcat", "afhqdog", "afhqwild", "brecahad", "cifar10")],
    SG2_TF: [f"stylegan2-{m}-config-f.pkl" for m in ("ffhq", "car", "cat", "church", "horse")],
}
SG1_FILES = [
    "karras2019stylegan-ffhq-1024x1024.pkl",
    "karras2019stylegan-celebahq-1024x1024.pkl",
    "karras2019stylegan-bedrooms-256x256.pkl",
    "karras2019stylegan-cars-512x384.pkl",
    "karras2019stylegan-cats-256x256.pkl",
]
TRANSFER = [  # the --resume networks of both ADA train.py files
    "ffhq-res256-mirror-paper256-noaug.pkl",
    "ffhq-res512-mirror-stylegan2-noaug.pkl",
    "ffhq-res1024-mirror-stylegan2-noaug.pkl",
    "celebahq-res256-mirror-paper256-kimg100000-ada-target0.5.pkl",
    "lsundog-res256-paper256-kimg100000-noaug.pkl",
]
# names tests, docs and users already use: they keep working
EXISTING = [
    "toyfaces",
    "ffhq",
    "metfaces",
    "afhqcat",
    "afhqdog",
    "afhqwild",
    "brecahad",
    "cifar10",
    "stylegan2-ffhq-1024",
    "stylegan2-ffhq-256",
    "stylegan1-ffhq-1024",
    "stylegan1-celebahq-1024",
]


def every():
    return dl.registry(None, shipped=True)


def generators():
    return {k: v for k, v in every().items() if dl.kind_of(v) == "generator" and not dl.is_shipped(v)}


# ------------------------------------------------------------------------------------------------ table


def test_names_are_unique_in_the_file_and_every_entry_passes_the_schema():
    pairs = []
    with open(REGISTRY, encoding="utf-8") as f:
        json.load(f, object_pairs_hook=lambda kv: pairs.append([k for k, _ in kv]) or dict(kv))
    top = pairs[-1]  # the outermost object is the last one closed
    assert len(top) == len(set(top)), sorted(k for k in top if top.count(k) > 1)
    reg = every()  # REGISTRY_SCHEMA, through load_json
    assert len(reg) == len(top) - 1  # all but the _comment
    assert {dl.kind_of(e) for e in reg.values()} == set(dl.KINDS)
    assert set(EXISTING) <= set(reg)


def test_every_generator_has_what_the_listing_and_the_verification_need():
    gens = generators()
    for name, e in gens.items():
        assert urllib.parse.urlparse(e["url"]).scheme == "https", name
        assert e["format"] in ALL_FORMATS and e["format"] != "latentlab", name
        assert e["generation"] == GENERATION[e["architecture"]], name
        res = e["resolution"]
        assert res >= 4 and res & (res - 1) == 0, name  # a power of two
        assert (e["z_dim"], e["w_dim"]) == (512, 512) and e["c_dim"] in (0, 10), name
        assert e["licence"] in ("CC BY-NC 4.0", "NVIDIA SCL-NC", "MIT"), name
        for field in ("licence_url", "page"):
            assert e[field].startswith("https://"), (name, field)
        assert e["sha256"] is None or re.fullmatch(r"[0-9a-f]{64}", e["sha256"]), name
        assert e["description"] and e["dataset"] and e["domain"], name
        assert e.get("size_mb", 1) > 0 and (e.get("size_mb") or e["page"] == "https://github.com/val-iisc/HSR"), name
        # the layout follows the publisher: PyTorch pickles from the PyTorch code bases and NGC, TF ones from TF
        url = e["url"]
        if url.startswith((NGC3, NGC2, ADA_PT, "https://huggingface.co/")):
            assert e["format"] == FORMAT_SG2_PYTORCH, name
        elif url.startswith((ADA_TF, SG2_TF)):
            assert e["format"] == FORMAT_SG2_TF, name
        else:
            assert url.startswith("https://drive.google.com/uc?id=") and e["format"] == FORMAT_SG1_TF, name
        # a conditional model is a CIFAR-10 one, and every CIFAR-10 one is conditional
        assert (e["c_dim"] == 10) == (e["dataset"] == "CIFAR-10"), name
        assert (e["domain"] == "faces") == (e["dataset"] in ("FFHQ", "FFHQ-U", "CelebA-HQ")), name
    counts = {g: sum(e["generation"] == g for e in gens.values()) for g in (1, 2, 3)}
    assert counts == {1: 5, 2: 46, 3: 12}


def test_every_official_file_the_publishers_list_is_in_the_registry():
    urls = {e["url"] for e in generators().values()}
    for base, names in OFFICIAL.items():
        for f in names:
            assert base + f in urls, base + f
    for base in (ADA_PT, ADA_TF):
        for f in TRANSFER:
            assert base + "transfer-learning-source-nets/" + f in urls, f
    assert sorted(e.get("filename") for e in generators().values() if e["generation"] == 1) == sorted(SG1_FILES)
    hsr = {e["url"] for e in generators().values() if e["page"] == "https://github.com/val-iisc/HSR"}
    assert hsr == {f"https://huggingface.co/tejank10/HSR/resolve/main/{f}" for f in ("ffhq256.pkl", "church256.pkl")}
    # the StyleGAN2 files of NGC live in its stylegan2 model, not in the stylegan3 one
    assert not [u for u in urls if u.startswith(NGC3 + "stylegan2-")]


def test_the_architecture_and_resolution_match_the_file_name():
    for name, e in generators().items():
        base, res = dl.official_filename(e), e["resolution"]
        if e["url"].startswith((NGC3, NGC2)):
            assert base.startswith(e["architecture"] + "-") and base.endswith(f"-{res}x{res}.pkl"), name
        elif "-res" in base:  # the transfer-learning source networks
            assert f"-res{res}-" in base, name
        elif e["generation"] == 1:
            assert f"-{res}x" in base, name  # cars: 512x384 images of a 512x512 network


def test_official_file_names_name_one_model_or_ada_twins_meaning_the_pytorch_file():
    by_file = {}
    for name, e in generators().items():
        by_file.setdefault(dl.official_filename(e), []).append(name)
    for f, names in by_file.items():
        if len(names) > 1:  # StyleGAN2-ADA's PyTorch pickle and its TensorFlow original share their name
            pt, tf = names
            assert generators()[pt]["url"].startswith(ADA_PT) and generators()[tf]["url"].startswith(ADA_TF), f
            assert dl.entry_for(f)[0] == pt and dl.entry_for(f"/data/models/{f}")[0] == pt
    assert dl.entry_for("karras2019stylegan-cars-512x384.pkl")[0] == "stylegan1-cars-512"
    assert dl.entry_for(NGC3 + "stylegan3-r-afhqv2-512x512.pkl")[0] == "stylegan3-r-afhqv2-512"


def test_classifiers_keep_their_entries_and_state_their_licence():
    reg = dl.registry("classifier")
    assert len(reg) == 40
    for name, e in reg.items():
        assert e["licence"] == "CC BY-NC 4.0" and e["page"] == "https://github.com/NVlabs/stylegan", name
        assert e["format"] == FORMAT_SG1_TF and e["network"] == "D_basic" and e["resolution"] == 256, name


def test_boundary_entries_are_interfacegans_stylegan_files_pinned_by_commit():
    reg = dl.registry("boundary")
    gens = dl.registry()
    assert len(reg) == 24  # 14 for stylegan_ffhq, 10 for stylegan_celebahq (PGGAN's have no latentlab model)
    for name, e in reg.items():
        f = e["filename"]
        assert name + ".npy" == f and "format" not in e, name
        m = re.fullmatch(
            r"https://raw\.githubusercontent\.com/genforce/interfacegan/([0-9a-f]{40})/boundaries/(.+)", e["url"]
        )
        assert m and m.group(2) == f, name
        assert e["mirrors"] == [f"https://raw.githubusercontent.com/genforce/interfacegan/master/boundaries/{f}"]
        assert re.fullmatch(r"[0-9a-f]{64}", e["sha256"]), name
        info = parse_interfacegan_name(f)
        assert (e["interfacegan"], e["attribute"], e["space"], tuple(e["conditions"])) == (
            info.model,
            info.attr,
            info.space,
            info.conditions,
        )
        assert gens[e["model"]]["interfacegan"] == e["interfacegan"] and e["dim"] == 512, name
        assert (e["licence"], e["page"]) == ("MIT", "https://github.com/genforce/interfacegan"), name
        # fetched into one folder of InterFaceGAN's own file names: what --boundaries takes
        assert dl.cached_path(name) == os.path.join(dl.cache_dir(), "boundaries", "interfacegan", f)
    assert len({m.split("/")[5] for m in (e["url"] for e in reg.values())}) == 1  # one commit for all


def test_a_pinned_boundary_file_is_fetched_and_checked_by_its_checksum(files, tmp_path, monkeypatch):  # noqa: F811
    """The shipped boundary entries, served locally: the right bytes enter the cache, others are refused."""
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    real = dl._all_entries()
    name, entry = "stylegan_ffhq_smile_w_boundary", dict(real["stylegan_ffhq_smile_w_boundary"])
    entry["url"], entry["mirrors"] = f"{files}/{entry['filename']}", []
    monkeypatch.setattr(dl, "_all_entries", lambda: dict(real, **{name: entry}))
    buf = io.BytesIO()
    np.save(buf, np.ones((1, 512)) / np.sqrt(512))  # a good boundary, but not InterFaceGAN's bytes
    Files.files = {"/" + entry["filename"]: (OCTETS, buf.getvalue())}
    with pytest.raises(dl.CheckpointError, match="sha256 mismatch"):
        dl.fetch(name, progress=False)
    assert not os.path.exists(dl.cached_path(name))


# ------------------------------------------------------------------------------------------------ docs


def _models_table():
    spec = importlib.util.spec_from_file_location("models_table", os.path.join(ROOT, "docs", "models_table.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_models_md_is_in_sync_with_the_registry():
    mt = _models_table()
    text = open(mt.DOC, encoding="utf-8").read()
    assert mt.updated(text, mt.render(mt.load_registry())) == text, "run: python docs/models_table.py"
    assert mt.main(["--check"]) == 0
    for name in every():
        assert f"`{name}`" in text, name


def test_models_md_check_sees_a_stale_table(tmp_path, monkeypatch, capsys):
    mt = _models_table()
    stale = tmp_path / "MODELS.md"
    stale.write_text(open(mt.DOC, encoding="utf-8").read().replace("`stylegan3-t-ffhq-1024`", "`gone`"))
    monkeypatch.setattr(mt, "DOC", str(stale))
    assert mt.main(["--check"]) == 1 and "out of date" in capsys.readouterr().err
    assert mt.main([]) == 0 and mt.main(["--check"]) == 0


def test_readme_points_at_the_zoo():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    assert "docs/MODELS.md" in readme and "latentlab models --kind" in readme


# ------------------------------------------------------------------------------------------------ CLI


def _rows(out):
    return [line.split() for line in out.strip().splitlines()]


def test_models_lists_columns_and_kinds(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    code, out, err = run_cli(capsys, "models")
    assert code == 0, err
    rows = _rows(out)
    assert rows[0][:5] == ["toyfaces", "64px", "shipped", "stylegan2", "MIT"]
    by_name = {r[0]: r for r in rows[1:-1]}
    assert by_name["stylegan3-r-ffhq-1024"][1:6] == ["1024px", "~226", "MB", "stylegan3-r", "NVIDIA"]
    assert by_name["stylegan1-cats-256"][1:6] == ["256px", "~288", "MB", "stylegan1", "CC"]
    assert by_name["hsr-ffhq-256"][1:4] == ["256px", "download", "stylegan2"]
    # a cached file says so
    cached = dl.cached_path("cifar10")
    os.makedirs(os.path.dirname(cached))
    open(cached, "wb").close()
    code, out, _ = run_cli(capsys, "models")
    assert {r[0]: r for r in _rows(out)}["cifar10"][1:4] == ["32px", "cached", "stylegan2-ada"]

    code, out, err = run_cli(capsys, "models", "--kind", "boundary")
    assert code == 0, err
    rows = _rows(out)
    assert [r[0] for r in rows[:-2]] == sorted(dl.registry("boundary"))
    assert rows[0][1:6] == ["-", "~4.1", "KB", "stylegan1", "MIT"]
    assert out.splitlines()[-2].startswith("boundary files: ") and out.splitlines()[-1].startswith("cache: ")

    code, out, _ = run_cli(capsys, "models", "--kind", "classifier")
    rows = _rows(out)
    assert [r[0] for r in rows[:-1]] == sorted(dl.registry("classifier"))
    assert rows[0][1:5] == ["256px", "~92", "MB", "D_basic"]

    code, out, _ = run_cli(capsys, "models", "--kind", "all")
    names = [r[0] for r in _rows(out)[:-2]]
    assert names[0] == "toyfaces" and sorted(names) == sorted(every())
    code, _, err = run_cli(capsys, "models", "--kind", "discriminator")
    assert code == 2 and "--kind" in err


def test_models_fetch_downloads_verified_entries_and_prints_where(files, capsys, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    buf = io.BytesIO()
    np.save(buf, np.eye(1, 512))
    entry = dict(kind="boundary", set="interfacegan", url=f"{files}/x_y_smile_boundary.npy", sha256=None, dim=512)
    monkeypatch.setattr(dl, "_all_entries", lambda: {"smile": entry})
    Files.files = {"/x_y_smile_boundary.npy": (OCTETS, buf.getvalue())}
    code, out, err = run_cli(capsys, "models", "--fetch", "smile")
    path = str(tmp_path / "cache" / "boundaries" / "interfacegan" / "x_y_smile_boundary.npy")
    assert code == 0 and out == f"smile: {path}\n", err
    assert open(path, "rb").read() == buf.getvalue()
    code, _, err = run_cli(capsys, "models", "--fetch", "nothing")
    assert code == 1 and "nothing: not in the registry" in err and len(err.strip().splitlines()) == 1
