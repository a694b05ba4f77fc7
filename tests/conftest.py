import os

import numpy as np
import pytest
import torch

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "official")


def fixture_path(name):
    return os.path.join(FIXTURES, name)


def assert_matches_official(got, expected, name=""):
    """The project's exactness bar: |got - expected| <= 1e-4 * max(1, max|expected|)."""
    got = got.detach().cpu().numpy() if torch.is_tensor(got) else np.asarray(got)
    assert got.shape == expected.shape, f"{name}: shape {got.shape} != {expected.shape}"
    tol = 1e-4 * max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(got - expected).max())
    assert err <= tol, f"{name}: max abs error {err:.3g} > tolerance {tol:.3g}"


def make_tiny_generator(seed=0):
    """The small random StyleGAN2 generator every test file builds (16x16, skip, z/w 16), seeded, in eval mode."""
    from latentlab import Generator

    torch.manual_seed(seed)
    G = Generator(
        z_dim=16,
        c_dim=0,
        w_dim=16,
        img_resolution=16,
        img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=256, channel_max=16),
    )
    return G.eval()


@pytest.fixture
def tiny_generator():
    """A small random StyleGAN2 generator (16x16, skip) with non-trivial noise strengths and w_avg."""
    G = make_tiny_generator()
    with torch.no_grad():  # non-trivial noise strengths and w_avg so that tests see them
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
        G.mapping.w_avg.normal_()
    return G.eval()


def run_cli(capsys, *args):
    """Run the `latentlab` command in-process: (exit code, stdout, stderr)."""
    from latentlab.cli.errors import run
    from latentlab.cli.main import app

    code = run(app, [str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


MEAN_COLOUR = (
    "import torch\n"
    "class MeanColour(torch.nn.Module):\n"
    "    def forward(self, x):\n"
    "        return x.mean(dim=[2, 3])\n"
    "torch.jit.script(MeanColour()).save(PATH)\n"
)


@pytest.fixture(scope="session")
def mean_colour_torchscript(tmp_path_factory):
    """A TorchScript classifier file (logits = mean of each channel), written by a script (TorchScript needs source)."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("clf")
    path = folder / "clf.pt"
    script = folder / "make.py"
    script.write_text(MEAN_COLOUR.replace("PATH", repr(str(path))))
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    return path


def blob_images(folder, n, seed=0, size=16, reverse_names=False):
    """`n` smooth random size x size colour blobs as PNGs in `folder` (names NN.png, optionally numbered
    backwards to check sorting); returns the folder."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        cy, cx = rng.uniform(3, size - 3, 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 10)[..., None] * rng.uniform(0, 255, 3)
        Image.fromarray(blob.astype(np.uint8)).save(folder / f"{(n - 1 - i) if reverse_names else i:02d}.png")
    return folder


@pytest.fixture
def sigint_deliverable():
    """Ctrl-C tests need SIGINT to reach Python: a test run started from a background job (`nohup cmd &`)
    inherits SIGINT ignored, where Python installs no handler and latentlab's StopOnInterrupt stays inactive
    on purpose. Give this test Python's default handler, and restore whatever was there."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def sigint_default_in_child():
    """preexec_fn for a child that a test stops with SIGINT (see sigint_deliverable)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
