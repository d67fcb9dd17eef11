"""The README.md of an export folder, filled in from its summary (export.json's content).

`readme(summary)` states the files with their sizes, TFLite latency and quantization
errors, the noise input, the output units (ticks at `TICKS_PER_QUARTER` per quarter note,
Hz, velocity, delta ticks), the three signatures with their shapes, the measured parity
errors and a Python example. The text is one f-string: wide Markdown tables and the
example's code keep their lines as a reader sees them.
"""

from __future__ import annotations

from export.verify import CHECK_SEED
from tfds_midi.codec import TICKS_PER_QUARTER


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


_DESCRIPTIONS = {"tflite": "TFLite / LiteRT, float32, builtin ops only",
                 "tflite_dynamic_range": "TFLite, int8 weights (dynamic-range quantized)",
                 "tflite_float16": "TFLite, float16 weights (computed in float32)"}


def _sampling(s: dict) -> str:
    """What the noise does in the export's output head (older exports: not recorded)."""
    head = s.get("output_head")
    if head == "categorical":
        return ("\nEach tone feature is **sampled**: the head gives a distribution over fixed "
                "values (the 88 piano keys; quantiles of the data's lengths, velocities and "
                "deltas) and the feature's noise picks one by inverse CDF, at sampling "
                f"temperature {s['sampling_temperature']:g} (softmax(logits / temperature), "
                "baked into the graph; 1 is the distribution that training fitted, lower is "
                "more conservative)."
                + (f" Velocities are drawn at temperature {s['velocity_temperature']:g}."
                   if s.get("velocity_temperature") else "")
                + (" A step's features are drawn one after another (velocity, delta, pitch, "
                   "length), each conditioned on those drawn before it."
                   if s.get("autoregressive_head") else "")
                + " Every output is a valid tone.\n")
    if head in ("linear", "bounded"):
        return (f"\nThe output head is `{head}`: the noise enters the LSTM as input and the "
                "tones are the head's continuous outputs"
                + (" squashed into their valid ranges" if head == "bounded" else
                   " (unbounded: invalid tones are possible)") + ".\n")
    return ""


def _one_step(s: dict, key: str) -> tuple[float, float, str, str]:
    """A quantized file's judged one-step check: (value, bound, the table's text, the
    list's text). A categorical head's: the fraction of draws it changes (export.verify)."""
    errors, largest = s["errors"], s["errors"][key + "_step_vs_tflite"]
    if key + "_step_changed_draws" in errors:
        step, bound = errors[key + "_step_changed_draws"], s["bounds"][key + "_step_changed_draws"]
        return (step, bound, f"{step:.1%} of draws",
                f"one step **{step:.1%}** of the drawn values change (bound {bound:.0%}; the "
                f"largest change {largest:.3g})")
    bound = s["bounds"][key + "_step_vs_tflite"]
    return largest, bound, f"{largest:.2g}", f"one step **{largest:.3g}** (bound {bound})"


def readme(summary: dict) -> str:
    """The README.md of an export folder."""
    s = summary
    tps, nd, L, U = s["tones_per_step"], s["noise_dim"], s["num_layers"], s["units"]
    length = ("chosen at run time (a signature runner resizes the input; or "
              "`resize_tensor_input` + `allocate_tensors`)" if s["tflite_steps"] is None
              else f"fixed at {s['tflite_steps']} steps at export")
    errors, sizes, files, latency = s["errors"], s["sizes"], s["files"], s["tflite_latency_ms"]
    rows = [f"| `saved_model/` | TensorFlow SavedModel | {_mb(sizes['saved_model'])} | | |"]
    for key in [k for k in files if k.startswith("tflite")]:
        error = ("" if key == "tflite" else
                 f"{_one_step(s, key)[2]} / {errors[key + '_vs_tflite']:.2g}")
        rows.append(f"| `{files[key]}` | {_DESCRIPTIONS[key]} | {_mb(sizes[key])} | "
                    f"{latency[key]:.1f} ms | {error} |")
    quantized = ""
    for q in s["quantizations"]:
        key = f"tflite_{q}"
        raw = ", ".join(f"{name} {e:.3g}" for name, e in zip(
            ("length ticks", "Hz", "velocity", "delta ticks"), s["raw_errors"][key + "_vs_tflite"]))
        step, bound, _, one_step = _one_step(s, key)
        verdict = "" if step <= bound else " **exceeds the bound: prefer float32**"
        if errors[key + "_vs_tflite"] == 0:
            verdict += (" (nothing was quantized: the converter keeps weight tensors of fewer "
                        "than 1024 values in float32)")
        quantized += (f"- `{files[key]}`: {one_step}{verdict}; free running "
                      f"{s['check_steps']} steps **{errors[key + '_vs_tflite']:.3g}**"
                      f", raw: {raw}.\n")
    if quantized:
        quantized = (
            "\n### Quantized variants\n\nMax errors against the float32 TFLite model "
            f"(batch 1, noise seed {CHECK_SEED}) in normalised units (raw error / the "
            "feature's std in the training data): *one step* gives both models the same state "
            f"at each of {s['check_steps']} steps (the error quantization adds per step); *free "
            "running* lets each model feed back its own output, so differences can grow with "
            "the length: a large value means the quantized model plays a different (equally "
            "likely) song for the same seed, not a broken one. Use float32 when the exact "
            "song of a seed matters."
            + (" This export's head draws each value from a distribution: quantization moves "
               "the probabilities slightly and a draw near a boundary takes another value, a "
               "change of whole values however slight the shift, so for one step the "
               "fraction of draws that change is judged." if s.get("output_head") ==
               "categorical" else "") + "\n\n" + quantized)
    return f"""# Exported C-RNN-GAN generator

Exported from `{s['source']}` on {s['exported']} with TensorFlow {s['tensorflow']}.
C-RNN-GAN{'-3' if tps == 3 else ''}: an LSTM ({L} layers x {U} units) that turns uniform
noise into music, {tps} tone(s) per step, each step fed its own previous output.

| file | what | size | {s['check_steps']} steps (TFLite, 1 thread, here) | error vs float32: one step / free running |
| --- | --- | --- | --- | --- |
{chr(10).join(rows)}

## Inputs: noise

`noise` is float32, **uniform in [0, 1)**, {nd} values per step (noise_dim = 4 x
tones_per_step). Any source of uniform noise works; the example scripts use
`numpy.random.default_rng(seed).uniform(size=(1, steps, {nd}))` (for streaming, one
`uniform(size=(1, {nd}))` per step from the same generator: the same numbers), so a seed
always gives the same music in both formats.
{_sampling(s)}
## Outputs: tones, in raw units

`tones` is float32 `[..., {tps}, 4]`, {tps} tone slot(s) per step, columns:

| column | meaning |
| --- | --- |
| 0 | length in ticks, {TICKS_PER_QUARTER} ticks per quarter note |
| 1 | frequency in Hz (MIDI pitch = round(69 + 12 log2(f / 440))) |
| 2 | velocity (MIDI 1..127 after rounding; a slot whose velocity rounds to 0 is no tone) |
| 3 | delta: ticks from the previous tone's start to this one's (0 = together) |

To write MIDI: round lengths and deltas to integer ticks (clip at 0), round and clip
velocities to 0..127, skip tones of velocity 0 (but add their delta to the next tone's),
start time = running sum of the deltas. Feature scaling is inside the models: no scaler needed.

## SavedModel signatures

- `serving_default`: `noise` float32 `[batch, steps, {nd}]` -> `tones` float32
  `[batch, steps, {tps}, 4]`. Batch and steps are free. Starts from zero state.
- `step`: one step for endless generation in constant memory. Inputs `noise`
  `[batch, {nd}]`, `h` and `c` `[{L}, batch, {U}]` (LSTM states per layer), `previous`
  `[batch, {nd}]` (the model's previous output, normalised units); outputs `tones`
  `[batch, {tps}, 4]` and the next `h`, `c`, `previous`. Start with zeros for `h`, `c` and
  `previous`; feed the returned three back. Chaining `step` gives `serving_default`'s output (to float rounding).
- `prime`: continue a primer (music to start from). Input `tones` float32
  `[batch, n, {tps}, 4]`, raw units as in the outputs above (for one tone per step: a
  MIDI file's notes in order of start time; n is free); outputs `h`, `c`, `previous`:
  the state to start `step` from, whose first output continues the primer. The model
  "listens" to the primer: step t of the LSTM is fed tone t - 1 as its previous output
  (teacher forcing; noise 0.5, the mean of the uniform noise, at every primer step, so the
  state depends on the primer alone), and `previous` is the primer's last step in
  normalised units. Long primers cost n LSTM steps: the last few hundred tones are enough.

Shapes are checked: a wrong rank or last dimension fails with an error naming the expected
shape. List the signatures with their shapes:

```sh
saved_model_cli show --dir saved_model --all
```

## TFLite signatures

The same three, named `serving_default`, `step` and `prime`, at **batch 1**; the
whole-sequence length is {length}; the primer's length n is free (the runner resizes it). Ops ({', '.join(s['tflite_ops'])}) are all TFLite builtins: the plain LiteRT
runtime (`pip install ai-edge-litert`) runs it, no Flex delegate. TFLite cannot word shape
errors: a wrong shape fails in `allocate_tensors`/the runner; use the shapes above. The
quantized files have the same signatures; the int8 (dynamic-range) one is the smallest and,
on CPUs, usually the fastest (see the table).
Max error against the SavedModel, one step at a time from the same state:
{errors['tflite_step_vs_saved_model']:.2g} (normalised units, {s['check_steps']} steps; the
export fails above {s['bounds']['tflite_step_vs_saved_model']:g}); free running, where
float32 rounding feeds back: {errors['tflite_vs_saved_model']:.2g} (reported, not judged).
The SavedModel against the Keras model: {errors['saved_model_vs_keras']:.2g}.
`prime`, then one `step` (primer: the model's own first {s['check_primer_steps']} steps):
TFLite against the SavedModel {errors['tflite_prime_vs_saved_model']:.2g} (the export fails
above {s['bounds']['tflite_prime_vs_saved_model']:g}), the SavedModel against the Keras model
{errors['prime_saved_model_vs_keras']:.2g}; with the whole {s['check_steps']} steps as the
primer, TFLite against the SavedModel: {errors['tflite_prime_long_vs_saved_model']:.2g}
(reported, not judged: a lively LSTM amplifies float32 rounding even while primed).
{quantized}
## Example

```python
import numpy as np
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path="{files['tflite']}", num_threads=2)  # default: 1
generate = interpreter.get_signature_runner("serving_default")
noise = np.random.default_rng(0).uniform(size=(1, 200, {nd})).astype(np.float32)
tones = generate(noise=noise)["tones"][0]          # [200, {tps}, 4], raw units

step = interpreter.get_signature_runner("step")
state = {{"h": np.zeros([{L}, 1, {U}], np.float32), "c": np.zeros([{L}, 1, {U}], np.float32),
         "previous": np.zeros([1, {nd}], np.float32)}}
rng = np.random.default_rng(0)
for _ in range(200):
    out = step(noise=rng.uniform(size=(1, {nd})).astype(np.float32), **state)
    state = {{name: out[name] for name in ("h", "c", "previous")}}
    tones_of_this_step = out["tones"][0]          # [{tps}, 4]

# Continue a primer, in raw units: tones (length, Hz, velocity, delta) one per step here
# (with several slots per step, a chord's tones may share a step; empty slots are zeros).
tones = np.array([[192, 261.63, 80, 0], [192, 329.63, 80, 192], [384, 392.0, 80, 192]])
primer = np.zeros([1, len(tones), {tps}, 4], np.float32)
primer[0, :, 0] = tones
state = interpreter.get_signature_runner("prime")(tones=primer)  # h, c, previous
# ... then chain `step` from `state` as above.
```

`generate_savedmodel.py` and `generate_tflite.py` in the project's `export/` folder are
complete stand-alone scripts that write MIDI files (`--primer song.mid` continues a song).
"""
