"""Human-readable facts about a network: sizes, layers per resolution, parameter counts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Union

from torch import nn

if TYPE_CHECKING:
    from .generator import Generator
    from .stylegan1 import StyleGAN1Generator


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def generator_summary(G: Union[Generator, StyleGAN1Generator]) -> Dict[str, Any]:
    """Dict with dims, num_ws and one row per synthesis block (works for every generation)."""
    syn: Any = G.synthesis  # any generation's synthesis network
    rows: Dict[str, Dict[str, List[Any]]] = {}
    for name, _layer, w_index in syn.style_layers():
        block_name, layer_name = name.split(".", 1)
        row = rows.setdefault(block_name, dict(layers=[], ws=[]))
        row["layers"].append(layer_name)
        row["ws"].append(w_index)
    out_rows = []
    for block in syn.blocks():
        row = rows[f"b{block.resolution}"]
        out_rows.append(
            dict(
                resolution=block.resolution,
                channels=block.out_channels,
                layers=row["layers"],
                ws=sorted(set(row["ws"])),
                fp16=bool(getattr(block, "use_fp16", False)),
                params=count_params(block),
            )
        )
    generation = getattr(G, "generation", 2)
    return dict(
        generation=generation,
        z_dim=G.z_dim,
        c_dim=G.c_dim,
        w_dim=G.w_dim,
        num_ws=G.num_ws,
        img_resolution=G.img_resolution,
        img_channels=G.img_channels,
        architecture=getattr(syn.blocks()[-1], "architecture", None),  # None for v1
        style_channels=sum(syn.style_dims.values()),
        params=dict(mapping=count_params(G.mapping), synthesis=count_params(syn), total=count_params(G)),
        blocks=out_rows,
    )
