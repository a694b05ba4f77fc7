"""Server-side milliseconds per frame of `latentlab explore`: what dragging a slider costs.

A frame is one `Explorer.render(state)` (plan, `run_edit` of one image, PNG encoding, the classifier's scores) and,
with --http, one POST /api/render through the real server on localhost (JSON parsing and checks, base64, the socket).
Each "drag" renders --frames frames whose slider value moves a little every frame, as the page sends them.

    python benchmarks/explore_frame.py --config toyfaces --frames 40 --threads 2 --http
    python benchmarks/explore_frame.py --config res256 --frames 20 --threads 2 --http

toyfaces: the embedded model (64 px) with its classifier and boundaries. res64 / res256: random weights with real
model sizes (`generator_throughput.CONFIGS`), random unit W directions as sliders and the toyfaces classifier as the
scorer (its input is resized to 64 px, so it costs the same at every resolution).
"""

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import latentlab  # noqa: E402
from benchmarks.generator_throughput import synthetic_generator  # noqa: E402
from latentlab import defaults  # noqa: E402
from latentlab.explore import make_server, open_explorer  # noqa: E402
from latentlab.latents import LatentCodes  # noqa: E402

ATTRS = ("smile", "age", "male")


def drags(num_ws):
    """(name, state(k)) of the interactions timed: state(k) is the k-th frame of a drag."""
    return [
        ("one slider, W", lambda k: {"seed": 3, "attrs": {"smile": round(-3 + 0.1 * k, 2)}}),
        (
            "3 sliders + hold, W+ coarse",
            lambda k: {
                "seed": 3,
                "space": "w+",
                "layers": "coarse",
                "attrs": {"age": -1.0, "male": 0.5, "smile": round(-3 + 0.1 * k, 2)},
                "conditions": ["age"],
            },
        ),
        (
            "truncation psi (Z, 1 slider)",
            lambda k: {"seed": 3, "space": "z", "psi": round(0.4 + 0.01 * k, 2), "attrs": {"smile": 1.0}},
        ),
        (
            "S channel + mixing",
            lambda k: {
                "seed": 3,
                "space": "w+",
                "mix": {"seed": 7, "layers": "fine"},
                "attrs": {"smile": 1.0},
                "channels": [{"layer": "b16.conv1", "channel": 3, "value": round(-10 + 0.5 * k, 2)}],
            },
        ),
    ]


def explorer_for(config, device):
    if config == "toyfaces":
        G = latentlab.load_generator(defaults.NAME, device=device)
        return open_explorer(G, None, defaults.classifier_spec(), device=device), None
    G = synthetic_generator(config, device)
    folder = tempfile.mkdtemp(prefix="explore-bench-")
    rng = np.random.RandomState(0)
    for space, dim in (("w", G.w_dim), ("z", G.z_dim)):
        os.makedirs(os.path.join(folder, space))
        for name in ATTRS:
            d = latentlab.edits.Direction(rng.randn(dim), name=name, space=space)
            d.save(os.path.join(folder, space, name), index={})
    ex = open_explorer(
        G,
        None,
        defaults.classifier_spec(),
        device=device,
        boundaries_dir=os.path.join(folder, "w"),
        z_boundaries_dir=os.path.join(folder, "z"),
    )
    return ex, folder


def post(conn, body):
    data = json.dumps(body).encode()
    conn.request("POST", "/api/render", body=data, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    doc = json.loads(r.read())
    assert r.status == 200, doc
    return doc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=["toyfaces", "res64", "res256"], default="toyfaces")
    ap.add_argument("--frames", type=int, default=30, help="frames per drag")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--http", action="store_true", help="also time POST /api/render through the server")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ex, _ = explorer_for(args.config, args.device)
    res = ex.G.img_resolution
    print(
        json.dumps(
            dict(
                config=args.config,
                resolution=res,
                threads=torch.get_num_threads(),
                torch=torch.__version__,
                machine=platform.processor() or platform.machine(),
                load=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            )
        )
    )
    server = conn = None
    if args.http:
        server = make_server(ex, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1])
    print(
        f"{'drag':<30} {'median ms':>9} {'min ms':>7} {'render':>7} {'scores':>7}"
        + (f" {'HTTP median':>11}" if conn else "")
    )
    rid = 0
    for name, state in drags(ex.G.num_ws):
        ex.render(ex.parse(state(0)))  # warm-up (direction lookups, first allocations)
        totals, renders, scores, http_ms = [], [], [], []
        for k in range(args.frames):
            f = ex.render(ex.parse(state(k)))
            totals.append(f.ms["total"])
            renders.append(f.ms["render"])
            scores.append(f.ms["scores"])
            if conn is not None:
                t0 = time.perf_counter()
                rid += 1
                post(conn, dict(state(k), tab="bench", rid=rid))
                http_ms.append((time.perf_counter() - t0) * 1000)
        row = (
            f"{name:<30} {statistics.median(totals):9.1f} {min(totals):7.1f} {statistics.median(renders):7.1f} "
            f"{statistics.median(scores):7.1f}"
        )
        if http_ms:
            row += f" {statistics.median(http_ms):11.1f}"
        print(row)
    # the floor, measured after the drags (warm): plain synthesis of the same image, as `latentlab generate` renders it
    with torch.no_grad():
        ws = LatentCodes.from_seeds(ex.G, [3], device=args.device).wplus(ex.G)  # the drags' seed
        for _ in range(3):  # warm-up: first-call allocations and kernel choices
            ex.G.synthesis(ws, noise_mode="const")
        plain = []
        for _ in range(args.frames):
            t0 = time.perf_counter()
            ex.G.synthesis(ws, noise_mode="const")
            plain.append((time.perf_counter() - t0) * 1000)
    print(f"{'plain synthesis, 1 image':<30} {statistics.median(plain):9.1f} {min(plain):7.1f}")
    if server is not None:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
