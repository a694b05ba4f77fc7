"""`latentlab explore`: serve the local web page of latentlab.explore (one model in memory, state in the page)."""

import click

from . import options as opt


@click.command("explore")
@opt.model
@click.option(
    "--boundaries",
    "boundaries_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder of <attr>.npy directions (or InterFaceGAN's files): one slider each [default: the model's registered "
    "boundaries].",
)
@click.option(
    "--boundary",
    "boundary_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Direction file (.npy, W or Z by its size) for one more slider, named after the file (repeatable).",
)
@click.option(
    "--z-boundaries",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder of Z-space <attr>.npy directions for the Z sliders [default: the embedded model's shipped ones].",
)
@opt.classifier
@click.option(
    "--encoder",
    "encoder_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="An encoder.safetensors (`latentlab train encoder`) to encode uploaded photos [default: none; photos are "
    "projected].",
)
@click.option(
    "--project-steps",
    type=click.IntRange(min=1, max=2000),
    default=100,
    show_default=True,
    help="Projector steps the page proposes for an uploaded photo (the page can change it).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but a loopback address exposes the page (and the model) to the network.",
)
@click.option(
    "--port", type=click.IntRange(min=0, max=65535), default=7860, show_default=True, help="Port (0: a free one)."
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default web browser.")
@click.option("--quiet", is_flag=True, help="Do not log every request on stderr.")
@opt.device_opt
def explore(
    ckpt,
    boundaries_dir,
    boundary_files,
    z_boundaries,
    classifier_spec,
    trust_code,
    encoder_path,
    project_steps,
    host,
    port,
    open_browser,
    quiet,
    device,
):
    """Explore a model's latent space in the browser: one image, live.

    Serves a local web page (http://127.0.0.1:7860/ by default) showing one generated
    image with controls for the seed, the latent space (Z, W, W+), truncation psi and
    cutoff, the noise mode, one slider per attribute direction (conditioned on others
    by checkboxes; W+ layer ranges), S-space channel edits, style mixing with a second
    seed per layer group, and photos (uploaded, projected or encoded, then edited the
    same way). The classifier's scores of every frame are shown as bars. Exports: the
    PNG, the latents file every command reads, and the `latentlab edit` command line
    that writes the same image. Ctrl-C stops the server.

    \b
    Example:
      latentlab explore
      latentlab explore --model ffhq --boundaries interfacegan/boundaries --port 8000
      latentlab explore --model my.pkl --boundary smile_w.npy --classifier resnet:celeba40.pt
    """
    from latentlab.explore import make_server, open_explorer, serve

    from .conventions import note

    opt.check_trust(classifier_spec, trust_code)
    dev = opt.device(device)
    G = opt.load_model(ckpt, dev)
    explorer_kw = dict(
        boundaries_dir=boundaries_dir,
        boundary_files=boundary_files,
        z_boundaries_dir=z_boundaries,
        project_steps=project_steps,
    )
    spec = _classifier(classifier_spec, G, ckpt, explorer_kw)
    explorer = open_explorer(
        G,
        ckpt,
        spec,
        trust_code=trust_code,
        encoder_path=encoder_path,
        device=dev,
        on_missing_classifier=None if classifier_spec is not None else note,  # a default may be missing offline
        **explorer_kw,
    )
    if not explorer.sliders:
        note("no attribute directions for this model: pass --boundaries DIR or --boundary FILE.npy for sliders")
    try:
        server = make_server(explorer, host, port, log=None if quiet else lambda line: click.echo(line, err=True))
    except OSError as e:
        from latentlab.errors import ConfigError

        raise ConfigError(
            f"--host {host} --port {port}: cannot listen there ({e.strerror or e}); choose another --port (0: any free one)"
        ) from None
    if not server.loopback:
        click.echo(
            f"latentlab: warning: serving on {host}, not only on this machine: anyone who can reach it can use the "
            "model and upload images; there is no login",
            err=True,
        )
    click.echo(f"latentlab explore: serving {server.url} ({len(explorer.sliders)} sliders; Ctrl-C stops)")
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    serve(server)
    click.echo("latentlab explore: stopped")


def _classifier(spec, G, ckpt, explorer_kw):
    """--classifier, else the model's default (as `als`/`corr`: the embedded model's own, NVIDIA's CelebA-HQ
    classifiers for face models, only the sliders' attributes); without one the page shows no scores."""
    if spec is not None:
        return spec
    from latentlab.errors import LatentlabError
    from latentlab.explore.directions import find_sliders

    from .conventions import note

    try:
        attrs = list(find_sliders(G, ckpt, explorer_kw["boundaries_dir"], explorer_kw["boundary_files"]))
        return opt.classifier_for(None, G, ckpt, attrs or None)
    except (click.UsageError, LatentlabError) as e:
        note(f"no attribute scores: {e}")
        return None


ALL = [explore]
