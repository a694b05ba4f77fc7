"""Human-readable facts about a network: sizes, layers per resolution, parameter counts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Union

from torch import nn

if TYPE_CHECKING:
    from .generator import Generator
    from .stylegan1 import StyleGAN1Generator
    from .stylegan3 import StyleGAN3Generator


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def generator_summary(G: Union[Generator, StyleGAN1Generator, StyleGAN3Generator]) -> Dict[str, Any]:
    """Dict with dims, num_ws and one row per synthesis block (works for every generation; StyleGAN3 has
    no blocks: one row per layer under 'layers', with its sampling rate, cutoff and size)."""
    syn: Any = G.synthesis  # any generation's synthesis network
    if getattr(G, "generation", 2) == 3:
        return _stylegan3_summary(G)
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
    architecture = getattr(syn.blocks()[-1], "architecture", None)  # None for v1
    return dict(_common(G, getattr(G, "generation", 2), architecture), blocks=out_rows)


def _common(G: Any, generation: int, architecture: Any) -> Dict[str, Any]:
    syn = G.synthesis
    return dict(
        generation=generation,
        z_dim=G.z_dim,
        c_dim=G.c_dim,
        w_dim=G.w_dim,
        num_ws=G.num_ws,
        img_resolution=G.img_resolution,
        img_channels=G.img_channels,
        architecture=architecture,
        style_channels=sum(syn.style_dims.values()),
        params=dict(mapping=count_params(G.mapping), synthesis=count_params(syn), total=count_params(G)),
    )


def _stylegan3_summary(G: Any) -> Dict[str, Any]:
    syn = G.synthesis
    first = syn.layers()[0]
    radial = any(layer.down_radial for layer in syn.layers())
    # NVlabs' configurations: T (3x3 convs, separable filters), R (1x1 convs, radial filters)
    architecture = "stylegan3-r" if first.conv_kernel == 1 and radial else "stylegan3-t"
    rows = [
        dict(name="input", size=syn.input.size, sampling_rate=syn.input.sampling_rate, cutoff=syn.input.bandwidth,
             channels=syn.input.channels, ws=[0], fp16=False, params=count_params(syn.input))
    ]  # fmt: skip
    for i, (name, layer) in enumerate(zip(syn.layer_names, syn.layers())):
        rows.append(
            dict(
                name=name,
                size=layer.out_size,
                sampling_rate=layer.out_sampling_rate,
                cutoff=layer.out_cutoff,
                channels=layer.out_channels,
                ws=[i + 1],
                fp16=bool(layer.use_fp16),
                params=count_params(layer),
            )
        )
    return dict(_common(G, 3, architecture), blocks=[], layers=rows)
