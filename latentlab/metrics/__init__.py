"""Distribution metrics of generators: FID, KID, precision and recall, as StyleGAN2-ADA's metrics compute them.

Modules:

    extractors   feature networks behind one call, uint8 images -> float32 features: torch-fidelity's Inception-v3
                 (FID, KID) and VGG16 (precision/recall), the toyfaces classifier, CLIP, untrained variants for
                 offline tests (`get_extractor`, `resolve_extractor_spec`)
    weights      their pretrained weights: downloaded once into latentlab's cache, sha256-verified, read with
                 torch.load(weights_only=True)
    sweep        truncation sweeps: FID and precision/recall of truncation variants over a range of psi, resumable
                 (`truncation_sweep`, `latentlab sweep`); sweep_figures draws them as the multi-level paper does

Layering: above `studies` (it uses `studies.frechet`'s Frechet distance), below `inversion` and the CLI; the
training loop (`train`) never imports it: metrics during training are callables the CLI builds and hands over.
"""
