"""Human-readable facts about a network: sizes, layers per resolution, parameter counts."""


def count_params(module):
    return sum(p.numel() for p in module.parameters())


def generator_summary(G):
    """Dict with dims, num_ws and one row per synthesis block."""
    syn = G.synthesis
    rows, idx = [], 0
    for block in syn.blocks():
        names = block.layer_names()
        rows.append(
            dict(
                resolution=block.resolution,
                channels=block.out_channels,
                layers=names,
                ws=list(range(idx, idx + block.num_conv + block.num_torgb)),
                fp16=bool(block.use_fp16),
                params=count_params(block),
            )
        )
        idx += block.num_conv
    return dict(
        generation=getattr(G, "generation", 2),
        z_dim=G.z_dim,
        c_dim=G.c_dim,
        w_dim=G.w_dim,
        num_ws=G.num_ws,
        img_resolution=G.img_resolution,
        img_channels=G.img_channels,
        architecture=block.architecture,
        style_channels=sum(syn.style_dims.values()),
        params=dict(mapping=count_params(G.mapping), synthesis=count_params(syn), total=count_params(G)),
        blocks=rows,
    )
