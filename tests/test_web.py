"""The web page (web/) in a real headless Chromium, against the Python TFLite interpreter.

A small generator export (and a C-RNN-GAN-3 one) is built with `web/demo_export.py`, served
by `web/serve.py` on 127.0.0.1, and the page is driven by Playwright through Debian's
Chromium (no browser download: `executable_path`). Checked: the page's noise is numpy's
`default_rng(seed).uniform`, its tones equal the Python TFLite interpreter's for that noise
(1e-4 in normalised units: raw error / the feature's std from the export's scaler), the
streamed tones too, the piano roll is drawn, the downloaded MIDI is byte for byte the codec's
file of the same tones and decodes to the Python model's tones, bad model files give a
visible message, the page works offline once loaded, and nothing logs a console error.

Needs Chromium (`apt-get install chromium`), the `playwright` package (test extra) and
web/node_modules (`make web-deps`); without them these tests skip, except in CI (`CI` set),
where they fail: `.ci/run` installs Chromium.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEB = os.path.join(ROOT, "web")
sys.path.insert(0, WEB)

import demo_export  # noqa: E402
import serve  # noqa: E402

from tfds_midi import codec  # noqa: E402

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
TOLERANCE = 1e-4  # normalised units
TIMEOUT_MS = 60_000
UNITS = 32
# A roll pixel counts as drawn when its colour is saturated (notes are bright hues, the
# background and the grid are greys).
DRAWN_SATURATION = 0.25


def _require(ok: bool, message: str):
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must run the browser tests: .ci/run installs Chromium)")
    pytest.skip(message)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    chromium = _chromium()
    _require(chromium is not None, "the browser tests need Chromium: apt-get install chromium "
             "(Debian's package; no browser is downloaded)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require(False, "the browser tests need the `playwright` package: pip install playwright "
                 "(in the test extra: pip install -e '.[test]'); no `playwright install` needed")
    _require(os.path.isfile(os.path.join(WEB, "node_modules", "@litertjs", "core", "dist",
                                         "index.js")),
             "web/node_modules is missing: run `make web-deps` (npm ci in web/)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def _tflite_model(signatures: dict) -> bytes:
    """A TFLite file with the given {name: tf.function} signatures (not a generator)."""
    import tensorflow as tf

    module = tf.Module()
    for name, function in signatures.items():
        setattr(module, name, function)
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures={
            name: fn.get_concrete_function() for name, fn in signatures.items()})
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=list(signatures))
        return converter.convert()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Exports (1 and 3 tones per step) and bad model files, in one folder mounted at /test/."""
    import tensorflow as tf

    base = tmp_path_factory.mktemp("web")
    # Weights at 2x the initialiser (as tests/test_export.py): lively, not chaotic, so that
    # runtimes agree to float rounding over a free-running song.
    demo_export.build(str(base / "gan"), units=UNITS, seed=1, weight_scale=2.0)
    demo_export.build(str(base / "gan3"), units=UNITS, tones_per_step=3, seed=2, weight_scale=2.0)
    bad = base / "bad"
    bad.mkdir()
    (bad / "garbage.tflite").write_bytes(b"this is not a model\n" * 50)
    good = (base / "gan" / "generator.tflite").read_bytes()
    (bad / "truncated.tflite").write_bytes(good[: len(good) // 3])
    spec = tf.TensorSpec([1, 4], tf.float32)
    (bad / "no_step.tflite").write_bytes(_tflite_model({
        "serving_default": tf.function(lambda x: {"y": x * 2.0}, input_signature=[spec])}))
    noise5 = tf.TensorSpec([1, 5], tf.float32, name="noise")
    (bad / "wrong_shape.tflite").write_bytes(_tflite_model({"step": tf.function(
        lambda noise, h, c, previous: {"tones": tf.reshape(noise[:, :4] + previous[:, :4],
                                                           [1, 1, 4]),
                                       "h": h + 1.0, "c": c, "previous": previous},
        input_signature=[noise5, tf.TensorSpec([2, 1, 8], tf.float32, name="h"),
                         tf.TensorSpec([2, 1, 8], tf.float32, name="c"),
                         tf.TensorSpec([1, 5], tf.float32, name="previous")])}))
    return base


@pytest.fixture(scope="module")
def server(models):
    httpd, url = serve.serve_in_thread(str(models / "gan"), mounts={"/test/": str(models)})
    yield url
    httpd.shutdown()
    httpd.server_close()


class Page:
    """A browser tab on the page that records console errors and uncaught exceptions."""

    def __init__(self, browser, url):
        self.context = browser.new_context(accept_downloads=True,
                                           viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.goto(url)
        self.wait_not("loading")

    def wait_not(self, *statuses):
        self.page.wait_for_function(
            f"!{json.dumps(list(statuses))}.includes(document.body.dataset.status)")
        return self.status

    @property
    def status(self):
        return self.page.evaluate("document.body.dataset.status")

    def generate(self, seed, steps):
        self.page.fill("#seed", str(seed))
        self.page.fill("#steps", str(steps))
        self.page.click("#generate")
        assert self.wait_not("ready", "generating") == "done", self.text("#error")
        return self.song()

    def song(self):
        return self.page.evaluate("""() => {
            const s = window.crnnGan.song;
            return {raw: Array.from(s.raw), noise: s.noise ? Array.from(s.noise) : null,
                    steps: s.steps, tones: s.tones};
        }""")

    def text(self, selector):
        return self.page.inner_text(selector)

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def page(browser, server):
    tab = Page(browser, server)
    yield tab
    tab.close()


def _export_info(models, name):
    with open(models / name / "export.json") as f:
        return json.load(f)


def _python_tflite(models, name, noise):
    """The Python interpreter's `serving_default` tones for `noise` [1, T, F]."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(models / name / "generator.tflite")).get_signature_runner(
        "serving_default")
    return runner(noise=np.asarray(noise, np.float32))["tones"][0]


def _normalised_error(page_raw, expected, info):
    std = np.asarray(info["std"], np.float64).reshape(-1)
    a = np.asarray(page_raw, np.float64).reshape(-1, std.size)
    b = np.asarray(expected, np.float64).reshape(-1, std.size)
    return float((np.abs(a - b) / std).max())


def _numpy_noise(seed, steps, dim):
    return np.random.default_rng(seed).uniform(size=(1, steps, dim)).astype(np.float32)


def _drawn_pixels(png: bytes) -> int:
    import matplotlib.image

    rgb = matplotlib.image.imread(io.BytesIO(png), format="png")[..., :3]
    saturation = rgb.max(axis=-1) - rgb.min(axis=-1)
    return int((saturation > DRAWN_SATURATION).sum())


def test_page_loads_the_default_export(page):
    assert page.status == "ready", page.text("#error")
    info = page.text("#model-info")
    assert f"2 LSTM layers × {UNITS} units" in info and "1 tone per step" in info, info
    assert "web/demo_export.py" in info  # from export.json next to the model
    assert _drawn_pixels(page.page.locator("#roll").screenshot()) == 0
    assert page.errors == []


def test_noise_is_numpys_default_rng(page):
    values = page.page.evaluate("""async () => {
        const {NumpyRandom} = await import('./src/rng.js');
        return [0, 7, 2 ** 40 + 3].map(
            (seed) => Array.from(new NumpyRandom(seed).uniformFloat32(40)));
    }""")
    for seed, got in zip([0, 7, 2 ** 40 + 3], values):
        expected = np.random.default_rng(seed).uniform(size=40).astype(np.float32)
        np.testing.assert_array_equal(np.float32(got), expected)


def test_generates_the_python_tflite_tones_draws_and_downloads(page, models):
    steps, seed = 64, 7
    song = page.generate(seed, steps)
    noise = _numpy_noise(seed, steps, 4)
    np.testing.assert_array_equal(np.float32(song["noise"]), noise.reshape(-1))
    expected = _python_tflite(models, "gan", noise)
    error = _normalised_error(song["raw"], expected, _export_info(models, "gan"))
    assert error <= TOLERANCE, error
    assert f"{steps} steps in" in page.text("#status")
    # "Generate & play" started the Web Audio player on the song.
    page.page.wait_for_function("window.crnnGan.player.scheduled > 0")

    assert _drawn_pixels(page.page.locator("#roll").screenshot()) > 500

    with page.page.expect_download() as download:
        page.page.click("#download")
    assert download.value.suggested_filename == f"crnn-gan_seed{seed}_{steps}steps.mid"
    midi = open(download.value.path(), "rb").read()
    page_tones = codec.unpack_tones(np.float32(song["raw"]).reshape(steps, 4))
    # The codec's own file for the page's tones, byte for byte ...
    assert midi == codec.tones_to_midi_bytes(page_tones)
    # ... which decodes to the Python model's song (its tones after MIDI's rounding).
    decoded = codec.midi_to_tones(midi)
    reference = codec.midi_to_tones(codec.tones_to_midi_bytes(
        codec.unpack_tones(expected.reshape(steps, 4))))
    assert decoded.shape == reference.shape and len(decoded) > 10
    np.testing.assert_allclose(decoded, reference, rtol=1e-6, atol=1.0)
    assert page.errors == []


def test_streams_the_same_tones_with_the_step_signature(page, models):
    page.page.fill("#seed", "3")
    page.page.click("#stream")
    # 16 steps are generated before the stream waits for the playback to catch up.
    page.page.wait_for_function("window.crnnGan.song && window.crnnGan.song.steps >= 16")
    page.page.click("#stop")
    assert page.wait_not("streaming") == "done"
    song = page.song()
    steps = song["steps"]
    assert steps >= 16
    expected = _python_tflite(models, "gan", _numpy_noise(3, steps, 4))
    error = _normalised_error(song["raw"], expected, _export_info(models, "gan"))
    assert error <= TOLERANCE, error
    assert page.errors == []


@pytest.mark.parametrize("name,message", [
    ("garbage.tflite", "is not a TFLite model"),
    ("truncated.tflite", "LiteRT.js could not load truncated.tflite"),
    ("no_step.tflite", 'is not a C-RNN-GAN generator export (python -m export): it has no '
                       '"step" signature (it has "serving_default")'),
    ("wrong_shape.tflite", 'input "noise" has shape [1, 5]'),
])
def test_a_bad_model_file_shows_a_message(page, models, name, message):
    before = page.text("#model-info")
    page.page.set_input_files("#model-file", str(models / "bad" / name))
    assert page.wait_not("loading") == "error"
    assert page.page.is_visible("#error")
    assert message in page.text("#error"), page.text("#error")
    # The model loaded before stays in use.
    assert page.text("#model-info") == before
    assert page.page.is_enabled("#generate")
    assert page.errors == []


def test_a_missing_url_shows_a_message_and_the_old_model_still_generates(page, models):
    page.page.click("summary")
    page.page.fill("#model-url", "/test/nothing/generator.tflite")
    page.page.click("#load-url")
    assert page.wait_not("loading") == "error"
    assert "HTTP 404" in page.text("#error")
    # Chromium itself logs the failed request as a console error: the only one allowed.
    assert page.errors and all("status of 404" in e for e in page.errors), page.errors
    page.errors.clear()
    song = page.generate(11, 16)
    expected = _python_tflite(models, "gan", _numpy_noise(11, 16, 4))
    assert _normalised_error(song["raw"], expected, _export_info(models, "gan")) <= TOLERANCE
    assert not page.page.is_visible("#error")
    assert page.errors == []


@pytest.mark.parametrize("name,label", [("gan", "C-RNN-GAN"), ("gan3", "C-RNN-GAN-3")])
def test_the_shipped_generators_play_in_the_page(browser, server, name, label):
    """serve.py serves pretrained/ as it is, and its float32 TFLite files run in LiteRT.js
    (C-RNN-GAN-3's autoregressive head adds EQUAL and SELECT_V2 to the page's ops): the
    page's song is the Python interpreter's for the same noise (both draw their categorical
    values from it)."""
    shipped = pathlib.Path(ROOT) / "pretrained"
    info = _export_info(shipped, name)
    tab = Page(browser, f"{server}?model=/pretrained/{name}/generator.tflite&seed=7&steps=24")
    try:
        assert tab.status == "ready", tab.text("#error")
        assert label in tab.text("#model-info")
        song = tab.generate(7, 24)
        features = 4 * info["tones_per_step"]
        expected = _python_tflite(shipped, name, _numpy_noise(7, 24, features))
        error = _normalised_error(song["raw"], expected, info)
        assert error <= TOLERANCE, error
        tones = codec.unpack_tones(np.float32(song["raw"]).reshape(24, features),
                                   info["tones_per_step"])
        assert len(tones) >= 24 and tab.errors == []
    finally:
        tab.close()


def test_c_rnn_gan_3_export_by_url(browser, server, models):
    tab = Page(browser, f"{server}?model=/test/gan3/generator.tflite&seed=5&steps=40")
    try:
        assert tab.status == "ready", tab.text("#error")
        assert "C-RNN-GAN-3" in tab.text("#model-info")
        assert "3 tones per step" in tab.text("#model-info")
        song = tab.generate(5, 40)
        noise = _numpy_noise(5, 40, 12)
        expected = _python_tflite(models, "gan3", noise)
        error = _normalised_error(song["raw"], expected, _export_info(models, "gan3"))
        assert error <= TOLERANCE, error
        with tab.page.expect_download() as download:
            tab.page.click("#download")
        midi = open(download.value.path(), "rb").read()
        tones = codec.unpack_tones(np.float32(song["raw"]).reshape(40, 12), 3)
        assert 40 < len(tones) < 120  # some slots silent, their deltas carried
        assert midi == codec.tones_to_midi_bytes(tones)
        assert tab.errors == []
    finally:
        tab.close()


def test_works_offline_once_loaded(browser, server):
    tab = Page(browser, server)
    try:
        # The service worker has cached what the page loaded: the runtime's .wasm and the model.
        cached = """async () => {
            const cache = await caches.open('crnn-gan-web-v1');
            const urls = (await cache.keys()).map((r) => r.url);
            return urls.some((u) => u.endsWith('.wasm')) &&
                   urls.some((u) => u.endsWith('models/default/generator.tflite'));
        }"""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not tab.page.evaluate(cached):
            assert time.monotonic() < deadline, "the service worker cached nothing"
            time.sleep(0.25)
        tab.context.set_offline(True)
        tab.page.reload()
        assert tab.wait_not("loading") == "ready", tab.text("#error")
        tab.generate(1, 8)
        tab.context.set_offline(False)
        assert tab.errors == []
    finally:
        tab.close()


_NODE_WRITER = """
import {stepsToTones, tonesToMidi} from %s;
let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map(({steps, bpm}) =>
    Buffer.from(tonesToMidi(stepsToTones(steps), {bpm})).toString('base64'));
  process.stdout.write(JSON.stringify(out));
});
"""


def test_midi_writer_is_the_codecs_on_random_tones(tmp_path):
    """web/src/midi.js (in Node) against codec.unpack_tones + tones_to_midi_bytes: rounding
    ties, negative and zero lengths and deltas, overlapping same-pitch notes, silent slots."""
    import base64
    import subprocess

    node = shutil.which("node")
    _require(node is not None, "this test needs Node.js: apt-get install nodejs")
    rng = np.random.default_rng(0)
    cases = []
    for k in range(300):
        tps = int(rng.choice([1, 3]))
        n = int(rng.integers(1, 60)) * tps
        length = (rng.choice([0, 1, 2.5, 3.5, 383.7, 96, -20], size=n) if k % 2
                  else rng.normal(200, 200, n))
        hz = 440 * 2 ** ((rng.integers(55, 62, n) + rng.normal(0, 0.3, n) - 69) / 12)
        velocity = rng.choice([0, 0.4, 0.5, 0.6, 1.5, 2.5, 64, 126.6, 200, -3], size=n)
        delta = (rng.choice([0, 0, 0.5, 1.5, 48, 96.2, -5], size=n) if k % 3
                 else rng.normal(50, 100, n))
        steps = np.stack([length, hz, velocity, delta], -1).astype(np.float32)
        cases.append({"steps": [float(x) for x in steps.reshape(-1)], "tps": tps,
                      "bpm": float(rng.choice([120, 90, 45, 133.3]))})
    script = tmp_path / "writer.mjs"
    script.write_text(_NODE_WRITER % json.dumps(os.path.join(WEB, "src", "midi.js")))
    result = subprocess.run([node, str(script)], input=json.dumps(cases), capture_output=True,
                            text=True, timeout=60, check=True)
    outputs = json.loads(result.stdout)
    compared = 0
    for case, output in zip(cases, outputs):
        steps = np.asarray(case["steps"], np.float32).reshape(-1, 4 * case["tps"])
        tones = codec.unpack_tones(steps, case["tps"])
        if len(tones):
            assert base64.b64decode(output) == codec.tones_to_midi_bytes(tones, bpm=case["bpm"])
            compared += 1
    assert compared > 250


def test_serve_mounts_the_shipped_generators_and_nothing_above_them(models):
    """serve.py's /pretrained/ mount: the shipped files as they are, no way out of the folder."""
    import urllib.error
    import urllib.request

    httpd, url = serve.serve_in_thread(str(models / "gan"))
    try:
        with urllib.request.urlopen(url + "pretrained/gan3/export.json") as response:
            assert json.loads(response.read()) == json.load(
                open(os.path.join(ROOT, "pretrained", "gan3", "export.json")))
        for escape in ("pretrained/../README.md", "pretrained/%2e%2e/README.md",
                       "pretrained/gan3/../../setup.py"):
            with pytest.raises(urllib.error.HTTPError) as error:
                urllib.request.urlopen(url + escape)
            assert error.value.code == 404, escape
    finally:
        httpd.shutdown()
        httpd.server_close()
