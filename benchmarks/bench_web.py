"""In-browser generation (web/, LiteRT.js) next to Python TFLite on the same machine.

Usage: ``python benchmarks/bench_web.py [--units 350] [--steps 200] [--repeats 10]``

Exports a generator of the paper's size (2 x 350 LSTM units; random weights cost the same as
trained ones) with `web/demo_export.py`, serves web/ with it as the default model
(`web/serve.py`) and drives Debian's Chromium headless with Playwright (as tests/test_web.py):

- page load: from navigation to "ready" (LiteRT.js's .wasm compiled, model loaded and
  checked), in a fresh browser context each time (nothing cached), and the bytes it fetched;
- latency of `--steps` steps in the page (the `step` signature chained, as the page runs
  it: LiteRT.js compiles static shapes, so the run-time-length `serving_default` is not
  available there), median of `--repeats` after a warm-up;
- the same in Python with the `ai_edge_litert` interpreter on one thread (the page's
  WebAssembly runs on one): `serving_default` whole and `step` chained; and on 2 threads;
- parity: the page's tones for seed 0 against the interpreter's (normalised units).

Prints the ratios browser / Python. Needs what the browser tests need: Chromium, the
`playwright` package and web/node_modules (`make web-deps`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "web"))

import numpy as np  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def python_times(model_path: str, noise: np.ndarray, repeats: int, threads: int) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    whole = Interpreter(model_path=model_path, num_threads=threads).get_signature_runner(
        "serving_default")
    step = Interpreter(model_path=model_path, num_threads=threads).get_signature_runner("step")
    inputs = step.get_input_details()

    def chained():
        state = {k: np.zeros(inputs[k]["shape"], np.float32) for k in ("h", "c", "previous")}
        for t in range(noise.shape[1]):
            out = step(noise=noise[:, t], **state)
            state = {k: out[k] for k in ("h", "c", "previous")}

    variants = {"whole": lambda: whole(noise=noise), "step": chained}
    times = {name: [] for name in variants}
    for fn in variants.values():
        fn()
    for _ in range(repeats):  # round robin
        for name, fn in variants.items():
            begin = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - begin) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=350, help="LSTM units (paper: 350)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--loads", type=int, default=3, help="cold page loads timed")
    args = parser.parse_args(argv)

    import demo_export
    import serve
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("needs Chromium: apt-get install chromium")
    if not (ROOT / "web" / "node_modules" / "@litertjs" / "core").is_dir():
        raise SystemExit("web/node_modules is missing: run `make web-deps`")

    with tempfile.TemporaryDirectory() as tmp:
        # The initialiser's weights, as bench_generate.py (not the demo's livelier 3x).
        summary = demo_export.build(tmp, units=args.units, weight_scale=1.0)
        model_path = os.path.join(tmp, "generator.tflite")
        std = np.asarray(summary["std"], np.float64)
        noise = np.random.default_rng(0).uniform(size=(1, args.steps, 4)).astype(np.float32)

        server, url = serve.serve_in_thread(tmp)
        loads, fetched = [], []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            try:
                for _ in range(args.loads):
                    context = browser.new_context()
                    page = context.new_page()
                    page.goto(f"{url}?offline=0&steps={args.steps}")
                    page.wait_for_function("document.body.dataset.status !== 'loading'",
                                           timeout=120_000)
                    assert page.evaluate("document.body.dataset.status") == "ready", \
                        page.inner_text("#error")
                    page.evaluate("window.crnnGan.ready")
                    loads.append(page.evaluate("window.crnnGan.timings.readyMs"))
                    fetched.append(page.evaluate("""() => performance.getEntriesByType('resource')
                        .concat(performance.getEntriesByType('navigation'))
                        .reduce((n, e) => n + (e.encodedBodySize || 0), 0)"""))
                    if len(loads) < args.loads:
                        context.close()
                page.fill("#seed", "0")
                page.click("#generate")
                page.wait_for_function("document.body.dataset.status === 'done'",
                                       timeout=120_000)
                page_raw = np.asarray(page.evaluate("Array.from(window.crnnGan.song.raw)"))
                browser_ms = page.evaluate(f"window.crnnGan.benchmark({args.steps}, "
                                           f"{args.repeats})")
                context.close()
            finally:
                browser.close()
                server.shutdown()

        one = python_times(model_path, noise, args.repeats, threads=1)
        two = python_times(model_path, noise, args.repeats, threads=2)
        from ai_edge_litert.interpreter import Interpreter

        expected = Interpreter(model_path=model_path).get_signature_runner("serving_default")(
            noise=noise)["tones"]
        error = float((np.abs(page_raw.reshape(-1, std.size) - expected.reshape(-1, std.size))
                       / std).max())
        wasm = ROOT / "web" / "node_modules" / "@litertjs" / "core" / "wasm"
        sizes = {"generator.tflite": os.path.getsize(model_path),
                 "LiteRT.js runtime (.wasm + .js loaded)":
                     os.path.getsize(wasm / "litert_wasm_internal.wasm")
                     + os.path.getsize(wasm / "litert_wasm_internal.js")}

    browser_median = statistics.median(browser_ms)
    print(f"2 x {args.units} units, 1 tone/step, batch 1, {args.steps} steps; Chromium "
          f"{browser.version if hasattr(browser, 'version') else ''}, {os.cpu_count()} CPUs")
    print(f"page load to ready (cold, fresh context), median of {args.loads}: "
          f"{statistics.median(loads):.0f} ms (all: {', '.join(f'{x:.0f}' for x in loads)}); "
          f"{statistics.median(fetched) / 1e6:.1f} MB fetched")
    print(f"{'variant':48s} {'median ms':>10s} {'browser / it':>13s}")
    print(f"{'browser, LiteRT.js wasm, step x ' + str(args.steps):48s} {browser_median:10.1f}")
    for label, value in (("Python TFLite 1 thread, serving_default", one["whole"]),
                         ("Python TFLite 1 thread, step x " + str(args.steps), one["step"]),
                         ("Python TFLite 2 threads, serving_default", two["whole"]),
                         ("Python TFLite 2 threads, step x " + str(args.steps), two["step"])):
        print(f"{label:48s} {value:10.1f} {browser_median / value:12.2f}x")
    for name, size in sizes.items():
        print(f"{name:48s} {size / 1e6:8.2f} MB")
    print(f"parity: max |browser - Python TFLite| over {args.steps} steps = {error:.2g} "
          "normalised units (raw error / feature std)")
    print(json.dumps({"browser_ms": browser_median, "python_1thread_ms": one,
                      "python_2threads_ms": two, "load_ms": loads, "fetched_bytes": fetched,
                      "parity": error, "sizes": sizes}))


if __name__ == "__main__":
    main()
