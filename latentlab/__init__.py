"""latentlab: analyse and edit the latent spaces of pretrained StyleGAN-family generators."""
__version__ = "0.1.0"
