"""Render images for seeds in batches (the library behind `latentlab generate`: `write_generation`)."""

import contextlib
import os

import torch

from .errors import ConfigError
from .utils.grids import grid_bytes, grid_scale_for, parse_grid_scale
from .utils.images import labelled_grid, save_png, to_pil, to_uint8
from .utils.limits import MAX_GENERATE_GRID, MAX_GRID_BYTES
from .utils.render import render_batches


def class_labels(G, n, class_idx=None, device="cpu"):
    """One-hot labels for conditional generators; an empty [n, 0] tensor otherwise."""
    c = torch.zeros([n, G.c_dim], device=device)
    if G.c_dim == 0:
        if class_idx is not None:
            raise ConfigError("this generator is unconditional; drop the class index")
        return c
    if class_idx is None:
        raise ConfigError(f"this generator is conditional ({G.c_dim} classes); pass a class index")
    if not 0 <= class_idx < G.c_dim:
        raise ConfigError(f"class index {class_idx} is outside 0..{G.c_dim - 1}")
    c[:, class_idx] = 1
    return c


@torch.no_grad()
def generate_images(
    G,
    seeds,
    truncation_psi=1.0,
    truncation_cutoff=None,
    noise_mode="const",
    class_idx=None,
    batch_size=8,
    device="cpu",
    progress=None,
):
    """Yield (seed, uint8 [H, W, C] image) for every seed, rendering `batch_size` at a time.

    z for a seed is NumPy's RandomState(seed).randn(z_dim), as in NVIDIA's generate.py,
    so a seed gives the same image here as there. The images are rendered from the w's that
    `generation_latents` returns (what `latentlab generate` saves in latents.npz).
    """
    seeds = [int(s) for s in seeds]
    _, w = generation_latents(G, seeds, truncation_psi, truncation_cutoff, class_idx, device)
    k = 0
    for x in render_batches(G, w.wplus(G), batch_size, noise_mode, progress):
        for arr in to_uint8(x):
            yield seeds[k], arr
            k += 1


def write_images(items, out_dir, grid_name="grid.png", cols=None, grid_scale=None):
    """Save each (seed, image) as seedNNNN.png plus a grid of all, each cell captioned with its seed and upscaled
    `grid_scale` times (None: auto, `latentlab.utils.grids`); return the file paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths, images, seeds = [], [], []
    for seed, arr in items:
        path = os.path.join(out_dir, f"seed{seed:04d}.png")
        save_png(to_pil(arr), path)
        paths.append(path)
        images.append(arr)
        seeds.append(seed)
    if images and grid_name:
        import numpy as np

        path = os.path.join(out_dir, grid_name)
        res, ch = images[0].shape[0], images[0].shape[-1]
        scale = grid_scale_for(len(images), 1, res, ch, grid_scale)
        grid = labelled_grid(np.stack(images), cols=cols, cell_labels=seed_labels(seeds), scale=scale)
        save_png(to_pil(grid), path)
        paths.append(path)
    return paths


def seed_labels(seeds):
    """Grid labels of seeds: 'seed 12'."""
    return [f"seed {int(s)}" for s in seeds]


# ---- what a generate run used: settings and latents ----------------------------------------------------------------
LATENTS_FORMATS = ("latentlab", "nvidia", "wplus")
LATENTS_FILE = "latents.npz"
SETTINGS_FILE = "generate.json"


@torch.no_grad()
def generation_latents(G, seeds, truncation_psi=1.0, truncation_cutoff=None, class_idx=None, device="cpu", wplus=False):
    """(z, w) LatentCodes that `generate_images` renders for `seeds`: z drawn as NVIDIA's generate.py
    draws it, w = G.mapping(z, c) with the same truncation ([N, w_dim], or W+ [N, num_ws, w_dim] when
    a truncation cutoff makes the layers differ or `wplus` is set). G.synthesis(w) with the same
    noise gives the same images as G(z, c, ...)."""
    from .latents import LatentCodes

    seeds = [int(s) for s in seeds]
    c = class_labels(G, len(seeds), class_idx, device)  # refuses a class for unconditional models, and the reverse
    z = LatentCodes.from_seeds(G, seeds, c=c if G.c_dim else None, device=device)
    uniform = truncation_cutoff is None or truncation_psi == 1
    w = z.to(
        "w+" if wplus or not uniform else "w", G, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff
    )
    return z, w.replace(meta=dict(truncation=dict(psi=truncation_psi, cutoff=truncation_cutoff)))


def save_generation_latents(out_dir, z, w, G, fmt="latentlab", projected_w=None):
    """Write the latents of a generate run into out_dir; return the file names written.

    latents.npz (every format): the w codes in LatentCodes' layout (`codes`, `space`, `seeds`,
    `model_id`, `meta`, `c` for conditional models: `LatentCodes.load` and `ppl --latents` read it)
    plus plain `z` [N, z_dim] and `w` (= codes) arrays. fmt 'latentlab': w is [N, w_dim] (W+
    when a truncation cutoff makes the layers differ); 'wplus': W+ [N, num_ws, w_dim] always;
    'nvidia': as 'latentlab', plus projected_w.npz in the layout of stylegan2-ada-pytorch's
    projector (one key `w`, float32 [N, num_ws, w_dim]), which its generate.py --projected-w renders.
    projected_w: that array when the caller has it already (e.g. gathered on disk by `write_generation`).
    Arrays are written as they are (a memory-mapped one is copied a slice at a time).
    """
    import numpy as np

    from .latents.codes import NVIDIA_W_FILE, NVIDIA_W_KEY
    from .utils.atomic import save_npz

    if fmt not in LATENTS_FORMATS:
        raise ConfigError(f"unknown latents format {fmt!r}; choose from {', '.join(LATENTS_FORMATS)}")
    if z.space != "z" or w.space not in ("w", "w+"):
        raise ConfigError(f"expected z and w/w+ codes, got {z.space} and {w.space}")
    if fmt == "wplus" and w.space != "w+":
        w = w.to("w+", G)
    w.save(os.path.join(out_dir, LATENTS_FILE), z=z.data.detach().cpu().numpy(), w=w.data.detach().cpu().numpy())
    files = [LATENTS_FILE]
    if fmt == "nvidia":
        if projected_w is None:
            w.save_projected_w(os.path.join(out_dir, NVIDIA_W_FILE), G)
        else:
            save_npz(os.path.join(out_dir, NVIDIA_W_FILE), {NVIDIA_W_KEY: np.asarray(projected_w, dtype=np.float32)})
        files.append(NVIDIA_W_FILE)
    return files


def save_generation_settings(out_dir, G, record, files):
    """Write generate.json: `record` (model, seeds, truncation, noise mode, class, ...) plus model id,
    versions, the command line and the files written. Returns the full record."""
    import json
    import sys

    from .models.identity import model_hash
    from .utils.atomic import write_text
    from .utils.versions import versions

    record = dict(record, model_id=model_hash(G), versions=versions(), command=sys.argv, files=files)
    write_text(os.path.join(out_dir, SETTINGS_FILE), json.dumps(record, indent=1, default=str))
    return record


def check_generation(G, class_idx=None, latents_format="latentlab", translate=None, rotate=None, grid_scale=None):
    """Refuse (ValueError, one line) what `write_generation` could not do for G: a class index for an
    unconditional model or none for a conditional one, an unknown latents format, a translation/rotation for
    a generator that is not StyleGAN3, a grid scale too large for one image (`generate_grid_layout`). Cheap:
    call it before showing progress."""
    from .models.stylegan3 import check_transform

    class_labels(G, 1, class_idx)
    generate_grid_layout(G, 1, grid_scale)
    check_transform(G, translate, rotate)
    if latents_format not in LATENTS_FORMATS:
        raise ConfigError(f"unknown latents format {latents_format!r}; choose from {', '.join(LATENTS_FORMATS)}")


# Seeds that write_generation maps and renders together (rounded up to whole batches): memory stays flat in the
# number of seeds. A run of up to this many seeds is mapped in one go, as `generation_latents` maps it.
SEED_CHUNK = 1024


def generate_grid_layout(G, n, grid_scale=None):
    """(images, scale) of `generate`'s grid.png for n seeds: the first images, at most MAX_GENERATE_GRID and as
    many as fit in MAX_GRID_BYTES at the scale (at least one), upscaled `grid_scale` times (None: auto, the
    128-px rule lowered to fit, `latentlab.utils.grids.grid_scale_for`). A given scale at which even one image
    passes MAX_GRID_BYTES is refused (ConfigError naming --grid-scale)."""
    res, ch = int(G.img_resolution), int(G.img_channels)
    scale = parse_grid_scale(grid_scale, "--grid-scale")
    if scale is None:
        count = min(int(n), MAX_GENERATE_GRID, max(1, MAX_GRID_BYTES // grid_bytes(1, 1, res, ch)))
        return count, grid_scale_for(count, 1, res, ch)
    per_image = grid_bytes(1, 1, res, ch, scale)
    if per_image > MAX_GRID_BYTES:
        raise ConfigError(
            f"--grid-scale {scale}: one {res}x{res} px image upscaled {scale} times needs {per_image / 2**20:,.0f} "
            f"MiB, more than {MAX_GRID_BYTES >> 20} MiB (use a smaller --grid-scale)"
        )
    return min(int(n), MAX_GENERATE_GRID, MAX_GRID_BYTES // per_image), scale


def generate_grid_count(G, n, grid_scale=None):
    """How many images `generate`'s grid.png shows for n seeds (`generate_grid_layout`)."""
    return generate_grid_layout(G, n, grid_scale)[0]


class _Spill:
    """Float32 arrays of known shapes written to `.tmp-*.npy` files in a folder a chunk of rows at a time, then
    read back memory-mapped (`arrays`): the latents of a long run are gathered on disk, not in memory. Plain
    writes, not a writable memmap, so that a full disk is an OSError (naming `target`), not a SIGBUS. The files
    are deleted on exit."""

    def __init__(self, folder, shapes, target):
        self.folder, self.shapes, self.target = folder, dict(shapes), target
        self.paths, self.files = {}, {}

    def __enter__(self):
        import tempfile

        import numpy as np

        from .utils.atomic import TMP_PREFIX

        with self._errors():
            for name, shape in self.shapes.items():
                fd, path = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=".npy", dir=self.folder)
                self.paths[name] = path
                self.files[name] = f = os.fdopen(fd, "wb")
                header = dict(descr=np.dtype(np.float32).descr[0][1], fortran_order=False, shape=tuple(shape))
                np.lib.format.write_array_header_2_0(f, header)
        return self

    @contextlib.contextmanager
    def _errors(self):
        try:
            yield
        except OSError as e:
            raise OSError(e.errno, e.strerror or str(e), self.target) from e

    def write(self, name, rows):
        """Append `rows` (a tensor or array) to array `name`."""
        import numpy as np

        if isinstance(rows, torch.Tensor):
            rows = rows.detach().cpu().numpy()
        with self._errors():
            self.files[name].write(np.ascontiguousarray(rows, dtype=np.float32).tobytes())

    def arrays(self):
        """{name: the array, memory-mapped copy-on-write} once every row has been written."""
        import numpy as np

        with self._errors():
            for f in self.files.values():
                f.close()
            out = {name: np.load(path, mmap_mode="c") for name, path in self.paths.items()}
        for name, a in out.items():
            if a.shape != tuple(self.shapes[name]):  # a bug, not a user error
                raise RuntimeError(f"{name}: wrote {a.shape}, expected {self.shapes[name]}")
        return out

    def __exit__(self, *exc):
        for f in self.files.values():
            with contextlib.suppress(OSError):
                f.close()
        for path in self.paths.values():
            with contextlib.suppress(OSError):
                os.unlink(path)


def write_generation(
    G,
    seeds,
    out_dir,
    truncation_psi=1.0,
    truncation_cutoff=None,
    noise_mode="const",
    class_idx=None,
    batch_size=8,
    device="cpu",
    latents_format="latentlab",
    model=None,
    progress=None,
    translate=None,
    rotate=None,
    grid_scale=None,
):
    """What `latentlab generate` writes: seedNNNN.png per seed, grid.png, latents.npz (+ projected_w.npz for
    latents_format 'nvidia', see `save_generation_latents`) and generate.json. Returns generate.json's record.

    Streams: seeds are mapped `SEED_CHUNK` at a time and rendered `batch_size` at a time, and each image is
    written (atomically) as soon as it is rendered, so memory does not grow with the number of seeds (a run of
    10^6 seeds holds one batch of images). grid.png shows the first `generate_grid_count` images (all of them
    for up to MAX_GENERATE_GRID small images, as a whole-run grid), each captioned with its seed and upscaled
    `grid_scale` times (None: auto, at least 128 px a cell; `generate_grid_layout`); the seedNNNN.png files
    keep the generator's resolution. The latents are gathered in temporary files beside the images and written
    into latents.npz at the end; generate.json is written last, so a folder without it holds an interrupted run.

    The images are rendered from the saved w's, so rendering latents.npz with the same noise mode gives them
    again. `model` names the model in the record; `progress` advances by the images rendered. `translate`
    ((x, y), image units) and `rotate` (degrees) move a StyleGAN3 generator's images as NVIDIA's gen_images.py
    does (`models.stylegan3.input_transform`; recorded in generate.json). Everything is checked (`check_generation`) before anything is rendered or written.
    """
    import contextlib

    import numpy as np

    from .latents import LatentCodes
    from .models.identity import model_hash
    from .models.stylegan3 import input_transform

    seeds = [int(s) for s in seeds]
    check_generation(G, class_idx, latents_format, translate, rotate, grid_scale)
    moved = translate is not None or rotate is not None
    transform = dict(translate=list(translate or (0.0, 0.0)), rotate=float(rotate or 0.0)) if moved else None
    if not seeds:
        raise ConfigError("no seeds given")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    n, res, ch = len(seeds), G.img_resolution, G.img_channels
    uniform = truncation_cutoff is None or truncation_psi == 1
    wplus = latents_format == "wplus" or not uniform
    shapes = dict(z=(n, G.z_dim), w=(n, G.num_ws, G.w_dim) if wplus else (n, G.w_dim))
    if G.c_dim:
        shapes["c"] = (n, G.c_dim)
    if latents_format == "nvidia":
        shapes["projected"] = (n, G.num_ws, G.w_dim)
    chunk = batch_size * -(-SEED_CHUNK // batch_size)  # whole batches: the same batches as rendering all at once
    grid_count, scale = generate_grid_layout(G, n, grid_scale)
    grid_images = np.empty((grid_count, res, res, ch), dtype=np.uint8)
    os.makedirs(out_dir, exist_ok=True)
    files = []  # names, not paths: a million of them are kept for generate.json
    moving = input_transform(G, **transform) if transform else contextlib.nullcontext()
    with moving, _Spill(out_dir, shapes, os.path.join(out_dir, LATENTS_FILE)) as spill:
        for lo in range(0, n, chunk):
            part = seeds[lo : lo + chunk]
            z, w = generation_latents(G, part, truncation_psi, truncation_cutoff, class_idx, device, wplus=wplus)
            spill.write("z", z.data)
            spill.write("w", w.data)
            if G.c_dim:
                spill.write("c", w.c)
            ws = w.wplus(G)
            if latents_format == "nvidia":
                spill.write("projected", ws)
            k = lo
            for x in render_batches(G, ws, batch_size, noise_mode, progress):
                for arr in to_uint8(x):
                    name = f"seed{seeds[k]:04d}.png"
                    save_png(to_pil(arr), os.path.join(out_dir, name))
                    files.append(name)
                    if k < len(grid_images):
                        grid_images[k] = arr
                    k += 1
        grid = labelled_grid(grid_images, cell_labels=seed_labels(seeds[:grid_count]), scale=scale)
        save_png(to_pil(grid), os.path.join(out_dir, "grid.png"))
        files.append("grid.png")
        del grid_images, grid
        arrays = spill.arrays()
        c = torch.from_numpy(arrays["c"]) if G.c_dim else None
        meta = dict(truncation=dict(psi=truncation_psi, cutoff=truncation_cutoff))
        z = LatentCodes(torch.from_numpy(arrays["z"]), "z", seeds=seeds, c=c, model_id=model_hash(G))
        w = z.replace(data=torch.from_numpy(arrays["w"]), space="w+" if wplus else "w", meta=meta)
        files += save_generation_latents(out_dir, z, w, G, latents_format, projected_w=arrays.get("projected"))
        space = w.space
        del z, w, c, arrays  # the memory maps, before their files are deleted
    record = dict(
        model=model,
        seeds=seeds,
        truncation=dict(psi=truncation_psi, cutoff=truncation_cutoff),
        noise_mode=noise_mode,
        class_idx=class_idx,
        latents_format=latents_format,
        latents_space=space,
        grid_scale=scale,  # the scale grid.png was drawn at (auto resolved)
    )
    if transform:
        record["transform"] = transform
    return save_generation_settings(out_dir, G, record, files)
