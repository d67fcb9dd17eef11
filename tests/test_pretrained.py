"""The shipped generators (`pretrained/`): they load in a fresh process with TensorFlow alone
and with LiteRT alone, their raw outputs are valid tones, and they give the numbers their
cards state."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from crnn_gan import metrics, quality
from tfds_midi import codec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRETRAINED = os.path.join(ROOT, "pretrained")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
SONGS, STEPS = 64, 100

# Each consumer alone: no crnn_gan, no tfds_midi (TFLite: no TensorFlow either).
SAVED_MODEL = """
import sys, numpy as np, tensorflow as tf
generate = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
d = generate.structured_input_signature[1]["noise"].shape[-1]
noise = np.random.default_rng(0).uniform(size=(%d, %d, d)).astype(np.float32)
np.save(sys.argv[2], generate(noise=tf.constant(noise))["tones"].numpy())
assert not any(m.split(".")[0] in ("crnn_gan", "tfds_midi") for m in sys.modules)
""" % (SONGS, STEPS)
TFLITE = """
import sys, numpy as np
from ai_edge_litert.interpreter import Interpreter
r = Interpreter(model_path=sys.argv[1]).get_signature_runner("serving_default")
d = int(r.get_input_details()["noise"]["shape"][-1])
noise = np.random.default_rng(0).uniform(size=(%d, %d, d)).astype(np.float32)
np.save(sys.argv[2], np.concatenate([r(noise=n[None])["tones"] for n in noise]))
assert "tensorflow" not in sys.modules
""" % (SONGS, STEPS)


@pytest.mark.parametrize("model", ["gan", "gan3"])
@pytest.mark.parametrize("runtime", ["saved_model", "tflite", "tflite_int8"])
def test_pretrained_generator_in_a_fresh_process(tmp_path, model, runtime):
    """Each file an app loads, the int8 one (phones) included: its quantization changes a
    few draws (its README), not whether the songs are valid and in key."""
    folder = os.path.join(PRETRAINED, model)
    assert os.path.isfile(os.path.join(folder, "CARD.md")), f"{folder} is not shipped"
    path = os.path.join(folder, {"saved_model": "saved_model", "tflite": "generator.tflite",
                                 "tflite_int8": "generator_dynamic_range.tflite"}[runtime])
    out = str(tmp_path / "tones.npy")
    script = SAVED_MODEL if runtime == "saved_model" else TFLITE
    subprocess.run([sys.executable, "-c", script, path, out], check=True, env=ENV,
                   cwd=str(tmp_path), timeout=300)
    tones = np.load(out)  # raw outputs [songs, steps, tones_per_step, 4]
    assert tones.shape[:2] == (SONGS, STEPS)
    validity = quality.tone_validity(tones)
    assert validity["valid_fraction"] >= 0.99, validity  # the protocol's target
    # The card's scale consistency (the protocol measured it on the same noise through the
    # SavedModel); TFLite within float32 drift of it, int8 within its changed draws' (0.006).
    songs = [codec.present_tones(song) for song in quality.as_steps(tones)]
    scale = np.mean([metrics.scale_consistency(song).score for song in songs])
    card = open(os.path.join(folder, "CARD.md")).read()
    stated = float(re.search(r"\| scale consistency \| ([0-9.]+) \|", card).group(1))
    assert scale == pytest.approx(stated, abs=0.02), (scale, stated)


# Bytes: each shipped folder (SavedModel, float32 and int8 TFLite, README, card), and the int8
# TFLite, what a phone or a web page loads. C-RNN-GAN-3 carries the autoregressive head's
# conditioning layers (540k floats beside G's 365k: README, "The shipped generators").
FOLDER_BYTES = {"gan": 4e6, "gan3": 9.5e6}
INT8_BYTES = {"gan": 0.5e6, "gan3": 1.2e6}


@pytest.mark.parametrize("model", ["gan", "gan3"])
def test_pretrained_exports_are_small_and_described(model):
    folder = os.path.join(PRETRAINED, model)
    summary = json.load(open(os.path.join(folder, "export.json")))
    assert set(summary["files"]) >= {"saved_model", "tflite", "tflite_dynamic_range"}
    total = sum(os.path.getsize(os.path.join(root, name))
                for root, _, names in os.walk(folder) for name in names)
    assert total < FOLDER_BYTES[model], total
    int8 = os.path.getsize(os.path.join(folder, "generator_dynamic_range.tflite"))
    assert int8 < INT8_BYTES[model], int8


@pytest.mark.parametrize("model", ["gan", "gan3"])
def test_each_readme_is_its_export_summary_rendered(model):
    """The shipped README.md says what export.json holds, in the words `python -m export`
    writes today (its quantized file judged as its head's outputs call for)."""
    from export import readme_template, verify

    folder = os.path.join(PRETRAINED, model)
    summary = json.load(open(os.path.join(folder, "export.json")))
    assert open(os.path.join(folder, "README.md")).read() == readme_template.readme(summary)
    assert (summary["bounds"]["tflite_dynamic_range_step_changed_draws"]  # categorical heads
            == verify.QUANTIZED_DRAW_CHANGE_BOUNDS["dynamic_range"])


@pytest.mark.parametrize("model,tones_per_step", [("gan", 1), ("gan3", 3)])
def test_each_card_states_the_head_its_export_has(model, tones_per_step):
    """The card's head line (scripts/ship_pretrained.py) says what the export holds: the small
    preset draws C-RNN-GAN-3's features in order and C-RNN-GAN's independently."""
    folder = os.path.join(PRETRAINED, model)
    summary = json.load(open(os.path.join(folder, "export.json")))
    assert summary["tones_per_step"] == tones_per_step
    assert summary["autoregressive_head"] is (model == "gan3")  # config.GAN3_OVERRIDES
    head = re.search(r"^- \*\*Head\*\*: (.*)$", open(os.path.join(folder, "CARD.md")).read(),
                     re.M).group(1)
    assert f"temperature {summary['sampling_temperature']:g}" in head
    assert f"{4 * tones_per_step} features" in head
    assert ("one after another" in head) is summary["autoregressive_head"]
    if summary["autoregressive_head"]:
        from crnn_gan import heads

        words = dict(zip((codec.COLUMN_NAMES[i] for i in heads.TONE_ORDER),
                         heads.TONE_ORDER_WORDS))
        assert words == {"velocity": "velocity", "delta_ticks": "delta",
                         "frequency_hz": "pitch", "length_ticks": "length"}
        assert f"({', '.join(heads.TONE_ORDER_WORDS)};" in head


def test_ship_pretrained_keeps_the_shipped_export_when_a_run_is_missing(tmp_path):
    """scripts/ship_pretrained.py checks the chosen run before it touches --output: a
    results file whose runs are not on this machine is one line, exit 2, and the export
    already there stays whole."""
    entries = json.load(open(os.path.join(ROOT, "docs", "quality.json")))
    entry = entries["small"]
    for runs in entry["runs"].values():
        for result in runs.values():
            result["job_dir"] = str(tmp_path / "nowhere" / os.path.basename(result["job_dir"]))
    results = tmp_path / "quality.json"
    results.write_text(json.dumps({"small": entry}))
    shipped = tmp_path / "pretrained" / "gan"
    shipped.mkdir(parents=True)
    (shipped / "CARD.md").write_text("the shipped card")
    command = [sys.executable, os.path.join(ROOT, "scripts", "ship_pretrained.py"),
               "--name=small", f"--quality={results}", f"--output={tmp_path / 'pretrained'}",
               f"--samples={tmp_path / 'samples'}"]
    refused = subprocess.run(command + ["--models=gan"], capture_output=True, text=True,
                             env=ENV, cwd=ROOT, timeout=120)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert refused.stderr.strip().splitlines()[-1].startswith("error: --name=small: the gan "
                                                              "run of seed ")
    assert "is not here" in refused.stderr and "Traceback" not in refused.stderr
    assert (shipped / "CARD.md").read_text() == "the shipped card"
    assert not (tmp_path / "samples").exists()
    for bad, named in (("--models=gan,bogus", "--models: give gan and/or gan3"),
                       ("--steps=0", "--steps=0")):
        refused = subprocess.run(command + [bad], capture_output=True, text=True, env=ENV,
                                 cwd=ROOT, timeout=120)
        assert refused.returncode == 2 and named in refused.stderr, refused.stderr[-2000:]
