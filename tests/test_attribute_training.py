"""CelebA layout reader and classifier training on a tiny procedurally generated CelebA folder."""

import json
import os

import click
import numpy as np
import pytest
import torch
from PIL import Image

from latentlab.attributes import CELEBA_40, ResNetAttributeClassifier, load_classifier, read_celeba
from latentlab.attributes.training import train_attribute_classifier
from latentlab.cli.attribute_commands import ALL, train_classifier
from latentlab.cli.errors import run

SMILING = CELEBA_40.index("Smiling")


def make_celeba(root, n=48, partitions=None, size=(24, 28), seed=0):
    """A CelebA-layout folder. Smiling faces are red, others blue (plus noise): Smiling is learnable.

    Images are 24x28 (CelebA's aligned crops are not square either). Partitions default to
    two thirds train, one third validation, with both classes in each.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "img_align_celeba"))
    labels = rng.choice([-1, 1], size=(n, 40))
    labels[:, SMILING] = np.where(np.arange(n) % 2 == 0, 1, -1)
    files = [f"{i + 1:06d}.jpg" for i in range(n)]
    for f, row in zip(files, labels):
        img = rng.integers(0, 90, size=(size[1], size[0], 3))
        img[..., 0 if row[SMILING] > 0 else 2] += 150
        Image.fromarray(img.astype(np.uint8)).save(os.path.join(root, "img_align_celeba", f), quality=95)
    with open(os.path.join(root, "list_attr_celeba.txt"), "w") as fh:
        fh.write(f"{n}\n" + " ".join(CELEBA_40) + " \n")
        for f, row in zip(files, labels):
            fh.write(f + "  " + " ".join(f"{v:2d}" for v in row) + "\n")
    partitions = partitions or [0 if i < 2 * n // 3 else 1 for i in range(n)]
    with open(os.path.join(root, "list_eval_partition.txt"), "w") as fh:
        fh.writelines(f"{f} {p}\n" for f, p in zip(files, partitions))
    return files, labels


@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("celeba"))
    files, labels = make_celeba(root)
    return root, files, labels


def test_read_celeba(celeba):
    root, files, labels = celeba
    df = read_celeba(root)
    assert list(df.columns) == ["file"] + CELEBA_40 + ["partition", "split", "path"]
    assert df.attrs["names"] == CELEBA_40 and list(df["file"]) == files
    np.testing.assert_array_equal(df[CELEBA_40].to_numpy(), labels)
    assert df[CELEBA_40].dtypes.unique().tolist() == [np.int8]
    assert (df["partition"] == 0).sum() == 32 and set(df["split"]) == {"train", "val"}
    assert df["path"][0] == os.path.join(root, "img_align_celeba", "000001.jpg")


def _rewrite(path, edit):
    with open(path) as f:
        lines = f.readlines()
    edit(lines)
    with open(path, "w") as f:
        f.writelines(lines)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda ls: ls.__setitem__(4, ls[4].rsplit(" ", 2)[0] + "\n"), r"list_attr_celeba\.txt:5: malformed line"),
        (
            lambda ls: ls.__setitem__(
                3, ls[3].replace(" 1", " 0", 1) if " 1" in ls[3] else ls[3].replace("-1", " 0", 1)
            ),
            r"list_attr_celeba\.txt:4: attribute values must be -1 or 1",
        ),
        (lambda ls: ls.__setitem__(0, "lots\n"), r"list_attr_celeba\.txt:1: expected the number of images"),
        (lambda ls: ls.__setitem__(0, "7\n"), r"line 1 says 7 images, the file lists 6"),
        (lambda ls: ls.append("000007.jpg " + " ".join(["1"] * 41) + "\n"), r"list_attr_celeba\.txt:9: malformed line"),
    ],
)
def test_read_celeba_malformed_attr_file(tmp_path, edit, match):
    make_celeba(str(tmp_path), n=6)
    _rewrite(tmp_path / "list_attr_celeba.txt", edit)
    with pytest.raises(ValueError, match=match):
        read_celeba(tmp_path)


def test_read_celeba_partition_and_missing_files(tmp_path):
    make_celeba(str(tmp_path), n=6)
    _rewrite(tmp_path / "list_eval_partition.txt", lambda ls: ls.__setitem__(2, "000003.jpg 7\n"))
    with pytest.raises(ValueError, match=r"list_eval_partition\.txt:3: partitions must be 0 or 1 or 2"):
        read_celeba(tmp_path)
    _rewrite(tmp_path / "list_eval_partition.txt", lambda ls: ls.__delitem__(2))
    with pytest.raises(ValueError, match=r"no partition for 1 image\(s\), e\.g\. 000003\.jpg"):
        read_celeba(tmp_path)
    os.remove(tmp_path / "list_eval_partition.txt")
    with pytest.raises(FileNotFoundError, match="list_eval_partition.txt"):
        read_celeba(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such CelebA folder"):
        read_celeba(tmp_path / "nope")


def test_read_celeba_official_archive_layout(tmp_path):
    make_celeba(str(tmp_path), n=6)
    for sub, name in (
        ("Anno", "list_attr_celeba.txt"),
        ("Eval", "list_eval_partition.txt"),
        ("Img", "img_align_celeba"),
    ):
        os.makedirs(tmp_path / sub, exist_ok=True)
        os.rename(tmp_path / name, tmp_path / sub / name)
    df = read_celeba(tmp_path)
    assert len(df) == 6 and df["path"][0] == os.path.join(str(tmp_path), "Img", "img_align_celeba", "000001.jpg")


def test_training_learns_the_visible_attribute(celeba, tmp_path):
    root, files, labels = celeba
    torch.set_num_threads(2)
    out = tmp_path / "clf.pt"
    res = train_attribute_classifier(
        root, arch="resnet18", epochs=6, batch_size=8, lr=1e-3, image_size=32, out=out, progress=False
    )
    rep = json.loads((tmp_path / "clf.json").read_text())
    assert rep == json.loads(json.dumps(res.report))
    assert rep["n_train"] == 32 and rep["n_val"] == 16 and rep["names"] == CELEBA_40
    assert len(rep["val_accuracy"]) == 40 and all(0 <= a <= 1 for a in rep["val_accuracy"].values())
    # Smiling (red vs blue) is learnable; the validation split is balanced for it (chance 0.5)
    assert rep["val_majority_baseline"]["Smiling"] == 0.5
    assert rep["val_accuracy"]["Smiling"] >= 0.8, rep["val_accuracy"]["Smiling"]
    assert rep["train_loss"][-1] < rep["train_loss"][0]

    # the saved file reloads (arch inferred, names and 32 px preprocessing from the report beside it)
    clf = load_classifier(f"resnet:{out}")
    assert isinstance(clf, ResNetAttributeClassifier) and clf.preprocess.resize == (32, 32)
    for k, v in res.state_dict.items():
        assert torch.equal(clf.net.state_dict()[k], v)
    # on generator-range images: a red square is smiling, a blue one is not
    red, blue = torch.full((1, 3, 64, 64), -0.6), torch.full((1, 3, 64, 64), -0.6)
    red[:, 0], blue[:, 2] = 0.6, 0.6
    with torch.no_grad():
        s = clf.select(["smile"])(torch.cat([red, blue]))[:, 0]
    assert s[0] > 0 > s[1]


def test_training_errors(tmp_path, celeba):
    root = celeba[0]
    with pytest.raises(ValueError, match="train \\(0\\) and validation \\(1\\)"):
        make_celeba(str(tmp_path / "c"), n=4, partitions=[0, 0, 2, 2])
        train_attribute_classifier(tmp_path / "c", out=tmp_path / "x.pt", progress=False)
    with pytest.raises(ValueError, match="unknown arch"):
        train_attribute_classifier(root, arch="vgg", out=tmp_path / "x.pt")
    with pytest.raises(ValueError, match="must not end in .json"):
        train_attribute_classifier(root, out=tmp_path / "x.json")
    make_celeba(str(tmp_path / "m"), n=6)
    os.remove(tmp_path / "m" / "img_align_celeba" / "000002.jpg")
    with pytest.raises(FileNotFoundError, match="000002.jpg"):
        train_attribute_classifier(
            tmp_path / "m", epochs=1, batch_size=6, image_size=8, out=tmp_path / "m.pt", progress=False
        )
    assert not os.path.exists(tmp_path / "m.pt")


def _app():
    @click.group()
    @click.option("--debug", is_flag=True)
    def app(debug):
        pass

    for cmd in ALL:
        app.add_command(cmd)
    return app


def test_cli_train_classifier(celeba, tmp_path, capsys):
    assert ALL == [train_classifier] and train_classifier.name == "train-classifier"
    assert run(_app(), ["train-classifier", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "Example:" in help_text and "latentlab train-classifier --celeba" in help_text
    out = tmp_path / "cli"  # a folder: classifier.pt and classifier.json inside
    rc = run(
        _app(),
        [
            "train-classifier",
            "--celeba",
            celeba[0],
            "--out",
            str(out),
            "--epochs",
            "1",
            "--batch",
            "16",
            "--image-size",
            "16",
            "--device",
            "cpu",
            "--max-images",
            "16",
        ],
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "mean validation accuracy" in captured.out and sorted(os.listdir(out)) == [
        "classifier.json",
        "classifier.pt",
    ]
    assert json.loads((out / "classifier.json").read_text())["n_train"] == 16

    broken = tmp_path / "broken"
    make_celeba(str(broken), n=4)
    _rewrite(broken / "list_attr_celeba.txt", lambda ls: ls.__setitem__(2, "000001.jpg 1 1\n"))
    rc = run(_app(), ["train-classifier", "--celeba", str(broken), "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.count("\n") == 0 and "list_attr_celeba.txt:3: malformed line" in err
    rc = run(_app(), ["train-classifier", "--celeba", str(tmp_path / "none"), "--out", str(tmp_path / "b")])
    assert rc == 1 and "no such CelebA folder" in capsys.readouterr().err
