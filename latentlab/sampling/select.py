"""What a study reads from a sample folder: attributes by name, and the codes of one latent space with their scores.

    from latentlab.sampling import SampleTable
    from latentlab.sampling.select import codes_and_scores, resolve_attributes
    table = SampleTable("out/samples")
    names = resolve_attributes(table, ["smiling", "Male"])          # canonical names, case-insensitive
    codes, scores, seeds = codes_and_scores(table, "w+", names, layer=3)

The library behind `latentlab boundary` and `latentlab separability`; messages name the command-line
options (`option=`) so that both front-ends word a refusal the same way.
"""

import numpy as np

from ..errors import ConfigError

SPACE_FIELDS = {"z": "z", "w": "w", "w+": "wplus", "s": "styles"}


def resolve_attributes(table, given, option="--attr", allow_all=True):
    """Canonical names (exact, else case-insensitive match) of the attributes `given`; `all` alone = every one.

    One ValueError line naming `option` for an unknown name, a name given twice, or `all` mixed with names."""
    names = list(table.names)
    given = list(given)
    if allow_all and "all" in given and "all" not in names:
        if len(given) > 1:
            raise ConfigError(f"{option} all cannot be combined with other attributes")
        return names
    lower = {n.lower(): n for n in names}
    out = []
    for a in given:
        name = a if a in names else lower.get(a.lower())
        if name is None:
            raise ConfigError(
                f"{option} {a}: unknown attribute {a!r}; the samples in {table.out_dir} have: {', '.join(names)}"
            )
        if name in out:
            raise ConfigError(f"{option} names attribute {name!r} twice")
        out.append(name)
    return out


def boundary_attributes(table, attrs, conditions=(), options=("--attr", "--condition")):
    """(attributes to train, attributes to condition on) for InterFaceGAN boundaries.

    attrs: names or ['all'] (every attribute that is not a condition); conditions: names. Refused: an
    attribute conditioned on itself, `all` when every attribute is a condition (ValueError, one line)."""
    attr_option, cond_option = options
    every = list(attrs) == ["all"] and "all" not in table.names
    chosen = resolve_attributes(table, attrs, attr_option)
    cond = resolve_attributes(table, conditions, cond_option, allow_all=False)
    if every:
        chosen = [a for a in chosen if a not in cond]
        if not chosen:
            raise ConfigError(f"{attr_option} all: every attribute is a {cond_option}, none is left to train")
    same = [a for a in chosen if a in cond]
    if same:
        raise ConfigError(
            f"{attr_option} {same[0]} {cond_option} {same[0]}: an attribute cannot be conditioned on itself"
        )
    return chosen, cond


def num_ws(table):
    """Number of ws layers of the sampled model, from the stored per-layer codes or the manifest; None if unknown."""
    if "wplus" in table.fields:
        return int(table.field_spec("wplus")[0][0])
    n = (getattr(table, "manifest", None) or {}).get("num_ws")
    return None if n is None else int(n)


def codes_and_scores(table, space, attrs, layer=None):
    """(codes [N, d] of `space`, scores [N, len(attrs)] of the attributes `attrs`, seeds [N]), in seed order.

    space: z, w, w+ (one layer's codes: `layer`, checked against the sampled model's ws layers) or s.
    Samples that store one w per sample serve any layer of w+ when the manifest records num_ws
    (every layer's code is that w)."""
    if space not in SPACE_FIELDS:
        raise ConfigError(f"unknown space {space!r}; choose from {', '.join(SPACE_FIELDS)}")
    field = SPACE_FIELDS[space]
    if space == "w+":
        if layer is None:
            raise ConfigError("--space w+ needs --layer K (a boundary lives in one layer's w)")
        n = num_ws(table)
        if n is None:
            raise ConfigError(
                f"--space w+ --layer {layer}: the samples in {table.out_dir} store one w per sample and "
                "do not record how many ws layers the model has, so the layer cannot be checked; use "
                "--space w (here every layer's code is that w) or samples with per-layer codes (wplus, "
                "stored by `latentlab sample --trunc PSI --trunc-cutoff K`)"
            )
        if not 0 <= layer < n:
            raise ConfigError(f"--layer {layer} does not exist: the samples have ws layers 0-{n - 1}")
        if field not in table.fields:
            field = "w"  # the sampler stores wplus whenever the layers differ: here every layer is this w
    data = table.load(fields=(field, "scores", "seeds"))
    codes = data[field]
    if field == "wplus":
        codes = codes[:, layer]
    idx = [list(table.names).index(a) for a in attrs]
    return np.asarray(codes), np.asarray(data["scores"])[:, idx], data["seeds"]
