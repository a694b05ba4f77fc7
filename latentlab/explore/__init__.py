"""`latentlab explore`: a local web page to explore a model's latent space live (sliders per attribute direction,
S channels, style mixing, truncation, photos projected or encoded), with the classifier's scores of every frame and
exports that reproduce it (the PNG, the latents file, the `latentlab edit` command line).

    from latentlab.explore import open_explorer, make_server, serve
    explorer = open_explorer(G, classifier_spec="toyfaces")
    serve(make_server(explorer, "127.0.0.1", 7860))

Modules: `state` (the settings a page sends, checked), `directions` (the sliders and their directions),
`engine` (rendering through `latentlab.edits.pipeline.run_edit`, the exports), `photos` (uploads, projection jobs,
the encoder), `server` (HTTP and the JSON API), `static/` (the page: HTML, JS and CSS, no build step).
It sits at the top layer with the CLI: it may import every package, and none imports it.
"""

from .engine import Explorer, Frame, Plan, open_explorer, png_bytes
from .server import ExploreServer, make_server, serve
from .state import BadRequest, State, parse_state

__all__ = [
    "BadRequest",
    "ExploreServer",
    "Explorer",
    "Frame",
    "Plan",
    "State",
    "make_server",
    "open_explorer",
    "parse_state",
    "png_bytes",
    "serve",
]
