"""Constructor arguments of the networks, checked when they are called from Python (models/arguments.py).

Absurd sizes give one ConfigError naming the network, the argument and what is accepted, before anything is
allocated (torch's tensor factories are made to fail here, so an allocation before the check would surface as
an AssertionError); the parameter bound refuses networks over limits.MAX_PARAMS without building them.
"""

import itertools

import pytest
import torch

from latentlab.errors import ConfigError
from latentlab.models import Discriminator, Generator, MappingNetwork, SynthesisNetwork
from latentlab.models.stylegan1 import StyleGAN1Discriminator, StyleGAN1Generator
from latentlab.utils import limits

G = dict(
    z_dim=8,
    c_dim=0,
    w_dim=8,
    img_resolution=8,
    img_channels=3,
    mapping_kwargs=dict(num_layers=2),
    synthesis_kwargs=dict(channel_base=64, channel_max=8),
)
D = dict(c_dim=0, img_resolution=8, img_channels=3, channel_base=64, channel_max=8)
M = dict(z_dim=8, c_dim=0, w_dim=8, num_ws=4, num_layers=2)
S1 = dict(resolution=8, latent_size=8, dlatent_size=8, mapping_layers=2, mapping_fmaps=8, fmap_base=64, fmap_max=8)
S1D = dict(resolution=8, num_channels=3, fmap_base=64, fmap_max=8)
HUGE = dict(img_resolution=4096, channel_base=limits.MAX_CHANNEL_BASE, channel_max=limits.MAX_CHANNELS)


def _with(base, **changes):
    """`base` with `changes`; a key 'a__b' sets base['a']['b']."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in changes.items():
        if "__" in key:
            outer, inner = key.split("__")
            out[outer][inner] = value
        else:
            out[key] = value
    return out


CASES = [
    # (network, arguments, fragments of the message)
    (Generator, _with(G, img_resolution=3), ["Generator: ", "'img_resolution' = 3", "power of two from 4 to 4096"]),
    (Generator, _with(G, img_resolution=0), ["'img_resolution' = 0"]),
    (Generator, _with(G, img_resolution=2**20), ["'img_resolution' = 1048576"]),
    (Generator, _with(G, img_channels=0), ["'img_channels' = 0", "from 1 to 16"]),
    (Generator, _with(G, z_dim=-1), ["'z_dim' = -1", "an integer from 1 to 16384"]),
    (Generator, _with(G, z_dim=2.5), ["'z_dim' = 2.5", "an integer"]),
    (Generator, _with(G, z_dim="512"), ["'z_dim' = '512'", "an integer"]),
    (Generator, _with(G, z_dim=None), ["'z_dim' = None"]),
    (Generator, _with(G, c_dim=-3), ["'c_dim' = -3", "from 0 to"]),
    (Generator, _with(G, w_dim=10**9), ["'w_dim' = 1000000000", "from 1 to 16384"]),
    (Generator, _with(G, synthesis_kwargs__channel_base=2**40), ["'channel_base' = 1099511627776", "to 67108864"]),
    (Generator, _with(G, synthesis_kwargs__channel_base=0), ["'channel_base' = 0"]),
    (Generator, _with(G, synthesis_kwargs__channel_base=4), ["'channel_base' = 4", "at least img_resolution (8)"]),
    (Generator, _with(G, synthesis_kwargs__channel_max=0), ["'channel_max' = 0"]),
    (Generator, _with(G, synthesis_kwargs__num_fp16_res=-5), ["'num_fp16_res' = -5"]),
    (Generator, _with(G, synthesis_kwargs__resample_filter=[1, -1]), ["'resample_filter'", "non-zero sum"]),
    (Generator, _with(G, synthesis_kwargs__resample_filter=[1] * 1000), ["'resample_filter'", "1 to 16"]),
    (Generator, _with(G, synthesis_kwargs__conv_clamp=-1), ["'conv_clamp' = -1", "a finite number > 0"]),
    (Generator, _with(G, mapping_kwargs__num_layers=0), ["'num_layers' = 0", "from 1 to 64"]),
    (Generator, _with(G, mapping_kwargs__num_layers=10**9), ["'num_layers' = 1000000000"]),
    (Generator, _with(G, mapping_kwargs__lr_multiplier=0), ["'lr_multiplier' = 0", "> 0"]),
    (
        Generator,
        _with(G, img_resolution=4096, synthesis_kwargs=dict(channel_base=2**26, channel_max=16384)),
        ["SynthesisNetwork: ", "at least", "parameters and buffers (more than the limit of 500,000,000)"],
    ),
    (SynthesisNetwork, dict(w_dim=8, img_resolution=6, img_channels=3), ["SynthesisNetwork: ", "'img_resolution' = 6"]),
    (SynthesisNetwork, dict(w_dim=8, img_channels=3, **HUGE), ["SynthesisNetwork: ", "more than the limit"]),
    (MappingNetwork, _with(M, z_dim=0), ["MappingNetwork: ", "first layer no inputs"]),
    (MappingNetwork, _with(M, z_dim=0, c_dim=4, embed_features=0), ["'embed_features' = 0", "conditional"]),
    (MappingNetwork, _with(M, num_ws=10**9), ["'num_ws' = 1000000000", "from 1 to 1024"]),
    (MappingNetwork, _with(M, num_layers=0), ["'num_layers' = 0"]),
    (MappingNetwork, _with(M, layer_features=16384, num_layers=64), ["MappingNetwork: ", "more than the limit"]),
    (Discriminator, _with(D, img_resolution=3), ["Discriminator: ", "'img_resolution' = 3"]),
    (Discriminator, _with(D, channel_base=4), ["'channel_base' = 4", "at least img_resolution (8)"]),
    (Discriminator, _with(D, channel_max=0), ["'channel_max' = 0"]),
    (Discriminator, _with(D, c_dim=-1), ["'c_dim' = -1"]),
    (Discriminator, _with(D, c_dim=4, cmap_dim=0), ["'cmap_dim' = 0"]),
    (Discriminator, _with(D, c_dim=4, mapping_kwargs=dict(num_layers=0)), ["'num_layers' = 0"]),
    (Discriminator, _with(D, epilogue_kwargs=dict(mbstd_num_channels=10**6)), ["'mbstd_num_channels' = 1000000"]),
    (Discriminator, _with(D, **HUGE), ["Discriminator: ", "more than the limit"]),
    (StyleGAN1Generator, _with(S1, resolution=3), ["StyleGAN1Generator: ", "'resolution' = 3"]),
    (StyleGAN1Generator, _with(S1, latent_size=0), ["'latent_size' = 0"]),
    (StyleGAN1Generator, _with(S1, mapping_layers=0), ["'mapping_layers' = 0"]),
    (StyleGAN1Generator, _with(S1, fmap_base=1), ["StyleGAN1Synthesis: ", "8x8 block 0 channels", "fmap_base = 1"]),
    (StyleGAN1Generator, _with(S1, fmap_decay=1e300), ["'fmap_decay' = 1e+300", "from 0.0 to 16.0"]),
    (StyleGAN1Generator, _with(S1, blur_filter=[0]), ["'blur_filter' = [0]", "non-zero sum"]),
    (StyleGAN1Generator, _with(S1, mapping_lrmul=float("nan")), ["'mapping_lrmul' = nan"]),
    (StyleGAN1Generator, _with(S1, resolution=4096, fmap_base=2**26, fmap_max=16384), ["more than the limit"]),
    (StyleGAN1Discriminator, _with(S1D, fmap_base=1), ["StyleGAN1Discriminator: ", "block 0 channels"]),
    (StyleGAN1Discriminator, _with(S1D, mbstd_num_features=-1), ["'mbstd_num_features' = -1"]),
    (StyleGAN1Discriminator, _with(S1D, resolution=4096, fmap_base=2**26, fmap_max=16384), ["more than the limit"]),
]


@pytest.fixture
def no_allocation(monkeypatch):
    """torch's tensor factories fail: a network that allocates before refusing its arguments is caught."""

    def refuse(*args, **kwargs):
        raise AssertionError("a tensor was allocated before the arguments were checked")

    for name in ("randn", "zeros", "empty", "full", "ones"):
        monkeypatch.setattr(torch, name, refuse)


@pytest.mark.parametrize("factory, kwargs, fragments", CASES, ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_absurd_constructor_arguments_are_one_config_error(no_allocation, factory, kwargs, fragments):
    with pytest.raises(ConfigError) as e:
        factory(**kwargs)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 300, msg
    for f in fragments:
        assert f in msg, (f, msg)
    assert isinstance(e.value, ValueError)  # callers that caught ValueError keep working


@pytest.mark.parametrize(
    "factory, kwargs",
    [
        (Generator, G),
        (Generator, _with(G, synthesis_kwargs__use_noise=False, synthesis_kwargs__architecture="resnet")),
        (Discriminator, D),
        (Discriminator, _with(D, c_dim=4, architecture="skip")),
        (MappingNetwork, M),
        (StyleGAN1Generator, S1),
        (StyleGAN1Generator, _with(S1, use_noise=False, use_styles=False, label_size=3)),
        (StyleGAN1Discriminator, S1D),
    ],
)
def test_valid_arguments_build_and_the_parameter_bound_is_a_lower_bound(monkeypatch, factory, kwargs):
    def count(net):
        return sum(t.numel() for t in itertools.chain(net.parameters(), net.buffers()))

    n = count(factory(**kwargs))  # the valid arguments build
    # with the limit at the exact count, the network still builds: each bound is at most what is built
    monkeypatch.setattr(limits, "MAX_PARAMS", n)
    assert count(factory(**kwargs)) == n
    # at half of it, refused before building (the bounds cover most of a network)
    monkeypatch.setattr(limits, "MAX_PARAMS", n // 2)
    with pytest.raises(ConfigError, match="parameters and buffers .more than the limit"):
        factory(**kwargs)
    # ... except on the meta device, where nothing is allocated (checkpoints.budget counts exactly there)
    with torch.device("meta"):
        assert count(factory(**kwargs)) == n


def test_arguments_from_python_accept_what_the_networks_accept():
    # filters as tuples, tensors and arrays; None where a default is computed; numpy integers as sizes
    import numpy as np

    Generator(**_with(G, z_dim=np.int64(8), synthesis_kwargs__resample_filter=torch.tensor([1.0, 2.0, 1.0])))
    Generator(**_with(G, synthesis_kwargs__resample_filter=np.array([1, 3, 3, 1]), synthesis_kwargs__conv_clamp=256))
    MappingNetwork(**_with(M, num_ws=None, embed_features=None, layer_features=None, w_avg_beta=None))
    MappingNetwork(z_dim=0, c_dim=4, w_dim=8, num_ws=None, num_layers=1)  # a discriminator's label mapping
    Discriminator(**_with(D, c_dim=4, cmap_dim=None, epilogue_kwargs=dict(mbstd_group_size=None)))
    StyleGAN1Generator(**_with(S1, blur_filter=None, fused_scale=True))
