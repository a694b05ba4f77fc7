"""Load a checkpoint, render seeds, edit one style channel, and save the results.

python examples/quickstart.py --model tests/fixtures/official/sg2ada_skip32.pkl --out out/quickstart
"""

import argparse
import os

import numpy as np
import torch

import latentlab
from latentlab.utils.images import make_grid, save_png, to_pil, to_uint8


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", default="out/quickstart")
    ap.add_argument("--seeds", default="0-3")
    args = ap.parse_args()

    G = latentlab.load_generator(args.model)
    seeds = latentlab.parse_seeds(args.seeds)
    z = latentlab.z_from_seeds(seeds, G.z_dim)
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=0.7)
        styles = G.synthesis.compute_styles(ws)
        layer = list(styles)[len(styles) // 2]  # a middle layer
        rows = []
        for delta in (-5, 0, 5):
            edited = dict(styles)
            edited[layer] = styles[layer].clone()
            edited[layer][:, 0] += delta
            rows.append(to_uint8(G.synthesis(styles=edited)))
    os.makedirs(args.out, exist_ok=True)
    grid = make_grid(np.concatenate(rows), cols=len(seeds))  # rows: channel 0 of `layer` at -5, 0, +5
    save_png(to_pil(grid), os.path.join(args.out, "style_edit.png"))
    print(f"edited style channel 0 of {layer}; wrote {os.path.join(args.out, 'style_edit.png')}")


if __name__ == "__main__":
    main()
