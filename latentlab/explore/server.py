"""The explorer's HTTP server: Python's `ThreadingHTTPServer`, one `Explorer` (one model in memory), the page as
package data (`static/`: hand-written HTML, JS and CSS; nothing from a CDN) and a small JSON API.

    GET  /                     the page (index.html, app.js, style.css)
    GET  /api/info             model facts: resolution, ws layers and levels, style layers and widths, attributes
                               and the spaces each has a direction in, the classifier's names, inversion options
    POST /api/render           settings JSON (`latentlab.explore.state`) -> {image: PNG base64, scores, command, ms}
    POST /api/export?item=I    settings JSON -> zip (image.png, latents.npz, [start.npz], command.txt, explore.json),
                               or one item: png, latents (npz), command
    POST /api/project?name=N&steps=S&space=w   image bytes -> {job}: a projection in the background
    GET  /api/job?id=J         {step, total, done, error, photo, preview (PNG base64 of the current fit)}
    POST /api/cancel?id=J      stop a projection
    POST /api/encode?name=N    image bytes -> {photo}: the encoder's inversion (needs --encoder)

Every request is independent: the page sends its whole state each time, so tabs never mix. Rendering is serialised
(one model); a page never has more than one render in flight and sends the latest state when the previous answer
arrives, and a render that waited while a newer one of the same tab (`tab`, `rid`) arrived is dropped (409).
Bad input gets a 4xx with one line, `{"error": "..."}`, and the server goes on. Bodies are capped
(`MAX_EXPLORE_REQUEST_BYTES`, `MAX_EXPLORE_UPLOAD_BYTES`) before they are read. On a loopback address only requests
for a loopback host name are served (no DNS rebinding); POSTs must carry a JSON or image content type, which a
foreign page cannot send without the browser asking first.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from ..errors import LatentlabError
from ..utils.limits import MAX_EXPLORE_REQUEST_BYTES, MAX_EXPLORE_UPLOAD_BYTES
from .engine import Explorer, Superseded, _output_name
from .state import BadRequest

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
PAGES = {"/": "index.html", "/index.html": "index.html", "/app.js": "app.js", "/style.css": "style.css"}
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "application/octet-stream")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")
CSP = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'"
MAX_TABS = 1024  # tabs whose latest request id the server remembers


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


class ExploreServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer holding the Explorer and the latest request id of every tab."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], explorer: Explorer, log: Optional[Callable[[str], None]] = None):
        self.explorer = explorer
        self.log = log
        self.loopback = is_loopback(address[0])
        self._latest: Dict[str, int] = {}
        self._latest_lock = threading.Lock()
        self._static = {}
        for name in set(PAGES.values()):
            with open(os.path.join(STATIC, name), "rb") as f:
                self._static[name] = f.read()
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), int(self.server_address[1])
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def note_request(self, tab: Optional[str], rid: Optional[int]) -> Callable[[], bool]:
        """Record the newest request id of `tab`; returns wanted(): whether this request is still the newest."""
        if tab is None or rid is None:
            return lambda: True
        with self._latest_lock:
            if rid > self._latest.get(tab, -1):
                self._latest.pop(tab, None)
                self._latest[tab] = rid  # the most recently active tab last
                while len(self._latest) > MAX_TABS:
                    self._latest.pop(next(iter(self._latest)))
        return lambda: self._latest.get(tab, -1) <= rid


class Handler(BaseHTTPRequestHandler):
    server: ExploreServer
    protocol_version = "HTTP/1.1"
    server_version = "latentlab-explore"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.server.log is not None:
            self.server.log("explore: " + format % args)

    # ------------------------------------------------------------------------------------------ replies
    def _send(self, status: int, body: bytes, media: str, extra: Optional[Dict[str, str]] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        if self.close_connection:
            self.send_header("Connection", "close")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, doc: Any) -> None:
        self._send(status, json.dumps(doc).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        line = " ".join(str(message).split())
        self._json(status, {"error": line})

    # ------------------------------------------------------------------------------------------ requests
    def _query(self) -> Dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def _check_host(self) -> bool:
        if not self.server.loopback:
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name in LOOPBACK_NAMES or name.startswith("127."):
            return True
        self.close_connection = True
        self._error(403, f"host {host!r} is not served: the explorer answers on 127.0.0.1 / localhost only")
        return False

    def _body(self, limit: int, media: Tuple[str, ...]) -> bytes:
        """The request body: refused (BadRequest with a status) before reading when too large or of another type."""
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind not in media:
            self.close_connection = True
            raise BadRequest(f"Content-Type must be {' or '.join(media)}, got {kind or 'none'}", 415)
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self.close_connection = True
            raise BadRequest("a Content-Length header is required", 411)
        n = int(length)
        if n > limit:
            self.close_connection = True
            raise BadRequest(f"request body of {n} bytes, more than the {limit} allowed", 413)
        return self.rfile.read(n)

    def _state_doc(self) -> Any:
        from ..utils.safe_json import loads_json

        raw = self._body(MAX_EXPLORE_REQUEST_BYTES, ("application/json",))
        try:
            return loads_json(raw, "request", max_bytes=MAX_EXPLORE_REQUEST_BYTES, max_depth=8)
        except LatentlabError as e:
            raise BadRequest(str(e)) from None

    def _guarded(self, route: Callable[[], None]) -> None:
        try:
            if self._check_host():
                route()
        except BadRequest as e:
            self._error(e.status, str(e))
        except Superseded:
            self._json(409, {"error": "superseded by a newer request of this tab", "superseded": True})
        except LatentlabError as e:  # the engines refused the settings
            self._error(400, str(e))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 - a bug: one line to the page, the traceback to the log; server lives on
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            try:
                self._error(500, f"internal error: {type(e).__name__}: {e}")
            except OSError:
                pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._guarded(self._get)

    def do_HEAD(self) -> None:  # noqa: N802
        self._guarded(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._guarded(self._post)

    def _get(self) -> None:
        path = urlsplit(self.path).path
        ex = self.server.explorer
        if path in PAGES:
            name = PAGES[path]
            self._send(200, self.server._static[name], TYPES[os.path.splitext(name)[1]])
        elif path == "/api/info":
            self._json(200, ex.info())
        elif path == "/api/job":
            job = ex.photos.job(self._query().get("id", ""))
            doc = job.status()
            if job.preview is not None:
                doc["preview"] = base64.b64encode(job.preview).decode()
            self._json(200, doc)
        elif path == "/favicon.ico":
            self._send(204, b"", "image/x-icon")
        else:
            self._error(404, f"no such page {path!r}")

    def _post(self) -> None:
        path = urlsplit(self.path).path
        ex = self.server.explorer
        q = self._query()
        if path == "/api/render":
            state = ex.parse(self._state_doc())
            frame = ex.render(state, self.server.note_request(state.tab, state.rid))
            doc = dict(
                rid=state.rid,
                image=base64.b64encode(frame.png).decode(),
                scores=frame.scores,
                command=frame.command,
                output=_output_name(frame),
                start_file=frame.plan.needs_start_file,
                ms=frame.ms,
            )
            if state.ref and frame.scores is not None:  # the base image's scores, asked once per new base
                doc["reference"] = ex.render(state.unedited()).scores
            self._json(200, doc)
        elif path == "/api/export":
            state = ex.parse(self._state_doc())
            body, media, name = ex.export(state, q.get("item", "zip"))
            self._send(200, body, media, {"Content-Disposition": f'attachment; filename="{name}"'})
        elif path == "/api/project":
            steps = q.get("steps", str(ex.project_steps))
            if not steps.isdigit():
                raise BadRequest(f"steps must be an integer, got {steps[:20]!r}")
            data = self._body(MAX_EXPLORE_UPLOAD_BYTES, IMAGE_TYPES)
            job = ex.photos.start_projection(data, q.get("name", "photo"), int(steps), q.get("space", "w"))
            self._json(202, job.status())
        elif path == "/api/cancel":
            self._body(0, ("application/json", "application/octet-stream", ""))
            ex.photos.job(q.get("id", "")).cancelled = True
            self._json(200, {"cancelled": True})
        elif path == "/api/encode":
            data = self._body(MAX_EXPLORE_UPLOAD_BYTES, IMAGE_TYPES)
            photo = ex.photos.encode(data, q.get("name", "photo"))
            self._json(200, dict(photo=photo.id, name=photo.name, space=photo.codes.space, metrics=photo.metrics))
        else:
            self._body(MAX_EXPLORE_REQUEST_BYTES, ("application/json", "application/octet-stream", ""))
            self._error(404, f"no such endpoint {path!r}")


def make_server(
    explorer: Explorer, host: str = "127.0.0.1", port: int = 7860, log: Optional[Callable[[str], None]] = None
) -> ExploreServer:
    """A bound (not yet serving) server; port 0 picks a free one (`server.server_address`). OSError when the
    address cannot be bound (in use, not this machine's)."""
    return ExploreServer((host, port), explorer, log)


def serve(server: ExploreServer) -> None:
    """Serve until Ctrl-C (KeyboardInterrupt ends it cleanly: running projections stop, the socket closes)."""
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        pass
    finally:
        server.explorer.photos.cancel_all()
        server.server_close()
