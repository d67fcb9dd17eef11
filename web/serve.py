"""Serves the C-RNN-GAN web page (web/) on 127.0.0.1 with a generator export as its default.

``python web/serve.py [--model EXPORT_DIR] [--port 8000]`` (what ``make web`` runs)

The default model, served at ``models/default/`` (``generator.tflite`` and ``export.json``),
is the first of: ``--model``; the shipped ``pretrained/gan/``; ``runs/demo/export/`` (what
``make demo`` writes); a demo export of an untrained generator, built once into
``web/models/demo/`` by ``web/demo_export.py``. The shipped generators are also served as
they are, at ``pretrained/`` (``?model=/pretrained/gan3/generator.tflite``: C-RNN-GAN-3). The
page's JavaScript (LiteRT.js) comes from ``web/node_modules`` (``npm ci`` in web/, which
``make web`` runs): nothing from a CDN.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import posixpath
import sys
import threading
import urllib.parse

WEB = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(WEB)
MODEL_FILE = "generator.tflite"
PRETRAINED = os.path.join(ROOT, "pretrained")
PRETRAINED_MOUNT = "/pretrained/"
CANDIDATES = (os.path.join(PRETRAINED, "gan"), os.path.join(ROOT, "runs", "demo", "export"))
DEMO_DIR = os.path.join(WEB, "models", "demo")
DEFAULT_MOUNT = "/models/default/"
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
         ".tflite": "application/octet-stream", ".json": "application/json",
         ".css": "text/css", ".html": "text/html", ".mid": "audio/midi"}


def default_model(model: str | None = None, *, build_demo: bool = True) -> str:
    """The export folder to serve as the page's default (see the module docstring)."""
    if model:
        if not os.path.isfile(os.path.join(model, MODEL_FILE)):
            raise SystemExit(f"{model} holds no {MODEL_FILE}: give a folder written by "
                             "`python -m export`")
        return model
    for candidate in CANDIDATES:
        if os.path.isfile(os.path.join(candidate, MODEL_FILE)):
            return candidate
    if not os.path.isfile(os.path.join(DEMO_DIR, MODEL_FILE)):
        if not build_demo:
            raise SystemExit("no generator export found (pretrained/gan, runs/demo/export)")
        print(f"no pretrained/gan/ or runs/demo/export/: building an untrained demo export "
              f"into {os.path.relpath(DEMO_DIR, ROOT)}/ ...", flush=True)
        sys.path.insert(0, WEB)
        import demo_export

        demo_export.build(DEMO_DIR)
    return DEMO_DIR


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files of web/, plus folders mounted at URL prefixes (`mounts`)."""

    mounts: dict[str, str] = {}
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}

    def translate_path(self, path):
        clean = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
        for prefix, folder in self.mounts.items():
            if clean.startswith(prefix):
                relative = posixpath.normpath(clean[len(prefix):]).lstrip("/")
                if relative.startswith(".."):
                    return os.path.join(folder, "__forbidden__")
                return os.path.join(folder, *relative.split("/"))
        return super().translate_path(path)

    def end_headers(self):
        # Always revalidate: a new export or page version is picked up on reload.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)


def make_server(model_dir: str, *, host: str = "127.0.0.1", port: int = 0,
                mounts: dict[str, str] | None = None, verbose: bool = False):
    """A threading HTTP server for web/ with `model_dir` at models/default/ and the shipped
    generators at pretrained/ (port 0: any)."""
    shipped = {PRETRAINED_MOUNT: PRETRAINED} if os.path.isdir(PRETRAINED) else {}
    mounts = {DEFAULT_MOUNT: model_dir, **shipped, **(mounts or {})}
    handler = type("PageHandler", (Handler,), {
        "mounts": {prefix: os.path.abspath(folder) for prefix, folder in mounts.items()}})
    server = http.server.ThreadingHTTPServer(
        (host, port), functools.partial(handler, directory=WEB))
    server.verbose = verbose
    server.daemon_threads = True
    return server


def serve_in_thread(model_dir: str, **kwargs):
    """Starts `make_server` in a daemon thread; returns (server, base URL)."""
    server = make_server(model_dir, **kwargs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}/"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="export folder of the default model (with "
                                        f"{MODEL_FILE}); default: see above")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("WEB_PORT", 8000)))
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(WEB, "node_modules", "@litertjs", "core")):
        raise SystemExit("web/node_modules is missing: run `make web` (or `npm ci` in web/)")
    model = default_model(args.model)
    server = make_server(model, host=args.host, port=args.port, verbose=args.verbose)
    host, port = server.server_address[:2]
    print(f"default model: {os.path.relpath(model, ROOT)}/{MODEL_FILE}")
    gan3 = os.path.join(PRETRAINED, "gan3", MODEL_FILE)
    if os.path.isfile(gan3):
        print(f"the shipped C-RNN-GAN-3: http://{host}:{port}/?model={PRETRAINED_MOUNT}gan3/"
              f"{MODEL_FILE}")
    print(f"Serving the C-RNN-GAN page at http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
