"""Figure: the same seeds rendered at several truncation psi values (rows) with matplotlib.

    python analyses/truncation_grid.py --model ffhq.pkl --seeds 0-5 --psi 1,0.7,0.5,0 --out out/truncation
Writes truncation_grid.png and .pdf.
"""
import argparse
import os

import torch

import latentlab
from latentlab.utils.images import to_uint8


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--seeds", default="0-5")
    ap.add_argument("--psi", default="1,0.7,0.5,0")
    ap.add_argument("--cutoff", type=int, default=None)
    ap.add_argument("--out", default="out/truncation")
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    G = latentlab.load_generator(args.model)
    seeds = latentlab.parse_seeds(args.seeds)
    psis = [float(p) for p in args.psi.split(",")]
    z = latentlab.z_from_seeds(seeds, G.z_dim)
    fig, axes = plt.subplots(len(psis), len(seeds), figsize=(1.6 * len(seeds), 1.6 * len(psis)), squeeze=False)
    with torch.no_grad():
        for r, psi in enumerate(psis):
            imgs = to_uint8(G(z, None, truncation_psi=psi, truncation_cutoff=args.cutoff))
            for c, img in enumerate(imgs):
                ax = axes[r][c]
                ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
                ax.set_xticks([])
                ax.set_yticks([])
                if c == 0:
                    ax.set_ylabel(f"psi={psi:g}")
                if r == 0:
                    ax.set_title(f"seed {seeds[c]}", fontsize=8)
    fig.tight_layout()
    os.makedirs(args.out, exist_ok=True)
    for ext in ("png", "pdf"):
        fig.savefig(os.path.join(args.out, f"truncation_grid.{ext}"), dpi=150)
    print(f"wrote {args.out}/truncation_grid.png and .pdf")


if __name__ == "__main__":
    main()
