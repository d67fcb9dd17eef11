r"""Ships the best generators of a quality-protocol run as `pretrained/` and renders samples.

    .venv/bin/python scripts/ship_pretrained.py --name=RECIPE [--quality=docs/quality.json]

For C-RNN-GAN (``gan``) and C-RNN-GAN-3 (``gan3``): among the seeds that
`benchmarks/bench_quality.py` trained under ``--name``, the one that meets most of the
protocol's targets on that model (ties: the lowest post-hoc discriminative score, then the
smallest mean |statistic - real| / real std) is exported with
``python -m export --quantization=dynamic_range`` (SavedModel, float32 and int8 TFLite, the
export's README) into ``pretrained/<model>/``, with ``CARD.md``: data, config, seed, that
seed's and the mean protocol numbers, and the commands that reproduce it.

Then ``docs/samples/``: ``--songs`` songs of ``--steps`` steps from each shipped generator
through its SavedModel (seeds 0..), written as MIDI and rendered to OGG with FluidSynth
(mono 22 kHz through ``oggenc``, Debian ``vorbis-tools``, where installed, as the committed
samples are; else FluidSynth's own stereo OGG, about 3x larger), and one real excerpt of
the test split, for listening side by side. Without FluidSynth the MIDI
is written and the message says which Debian packages to install.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

from absl import app, flags

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import protocol_runs  # noqa: E402
from crnn_gan import cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("name", None, "The recipe's name in --quality.", required=True)
flags.DEFINE_string("quality", "docs/quality.json", "bench_quality's results.")
flags.DEFINE_list("models", ["gan", "gan3"], "Models to ship.")
flags.DEFINE_string("output", "pretrained", "Where the exports go.")
flags.DEFINE_string("samples", "docs/samples", "Where the listening samples go.")
flags.DEFINE_integer("songs", 2, "Songs per shipped generator.", lower_bound=0)
flags.DEFINE_integer("steps", 120, "Steps per song.", lower_bound=1)

STATS = ("polyphony", "scale_consistency", "repetitions", "tone_span", "unique_tones",
         "intensity_span")


class ShipError(Exception):
    """Bad input; the message names it."""


def _score(result: dict) -> tuple[float, float]:
    disc = (result.get("discriminative") or {}).get("score")
    generated, real = result["statistics"]["generated"], result["statistics"]["real"]
    distance = sum(abs(generated[s]["mean"] - real[s]["mean"]) / (real[s]["std"] or 1.0)
                   for s in STATS) / len(STATS)
    return (1.0 if disc is None else disc, distance)


def targets_met(entry: dict, model: str, seed: str) -> int:
    """How many of the protocol's per-seed targets on `model` this seed meets (those named
    ".../gan", ".../gan3", and the GAN-vs-baseline ones for "gan")."""
    def concerns(name: str) -> bool:
        return name.split("/")[-1] == model or (model == "gan"
                                                and name.startswith("gan_vs_baseline/"))
    return sum(bool((target.get("met_per_seed") or {}).get(seed))
               for target in entry.get("targets", []) if concerns(target["name"]))


def choose(entry: dict, model: str) -> tuple[str, dict]:
    """The seed that meets most of the targets, then the lowest discriminative score (which
    alone does not see tonality: README, Ablations), then the statistics' distance."""
    runs = entry["runs"].get(model)
    if not runs:
        raise ShipError(f"--models={model}: --quality has no {model} runs under "
                        f"--name={FLAGS.name}")
    seed = min(runs, key=lambda s: (-targets_met(entry, model, s), *_score(runs[s])))
    return seed, runs[seed]


def _head(config: dict) -> str:
    """The output head in words, from the run's Config."""
    head = config.get("output_head", "linear")
    if head != "categorical":
        return f"`{head}`"
    from crnn_gan import heads

    order = (f"drawn one after another ({', '.join(heads.TONE_ORDER_WORDS)}; "
             "`autoregressive_head`)" if config.get("autoregressive_head")
             else "drawn independently given G's state")
    velocity = (f" (velocities at {config['velocity_temperature']:g})"
                if config.get("velocity_temperature") else "")
    return (f"categorical, sampled at temperature {config.get('sampling_temperature', 1.0):g}"
            f"{velocity} with G's noise; a step's {4 * config.get('tones_per_step', 1)} "
            f"features {order}")


def card(model: str, seed: str, result: dict, entry: dict, config: dict) -> str:
    protocol = entry["protocol"]
    headline = entry["over_seeds"][model]
    rows = ["| measure | this seed | mean ± std over seeds | real (test windows) |",
            "| --- | --- | --- | --- |"]
    generated, real = result["statistics"]["generated"], result["statistics"]["real"]
    for stat in STATS:
        over = headline.get(stat) or {}
        rows.append(f"| {stat.replace('_', ' ')} | {generated[stat]['mean']:.3g} | "
                    f"{over.get('mean', float('nan')):.3g} ± {over.get('std', float('nan')):.2g}"
                    f" | {real[stat]['mean']:.3g} ± {real[stat]['std']:.2g} |")
    validity = result["validity"]["valid_fraction"]
    over = headline.get("valid_fraction") or {}
    rows.append(f"| valid tones (raw outputs) | {validity:.2%} | {over.get('mean', 0):.2%} | |")
    disc = (result.get("discriminative") or {}).get("score")
    over = headline.get("discriminative_score") or {}
    if disc is not None:
        rows.append(f"| discriminative score | {disc:.3f} | {over.get('mean', 0):.3f} ± "
                    f"{over.get('std', 0):.2g} | 0 is indistinguishable |")
    train = " ".join(protocol["train_commands"][model]).replace("--seed=S", f"--seed={seed}")
    label = {"gan": "C-RNN-GAN", "gan3": "C-RNN-GAN-3"}[model]
    recipe = f"--preset={protocol['preset']} {entry['recipe']}".strip()
    protocol_flags = " ".join(
        [f"--name={entry['name']}"] + ([f'--recipe="{entry["recipe"]}"'] if entry["recipe"] else [])
        + [f"--{key}={protocol[key]}" for key in ("epochs", "pretrain_epochs")
           if protocol[key] is not None])
    return f"""# {label}, pretrained (`{FLAGS.output}/{model}/`)

The best of {len(entry['runs'][model])} seeds (most of the protocol's targets met, then the
lowest post-hoc discriminative score) of the
quality protocol's recipe `{entry['name']}` (`benchmarks/bench_quality.py`, protocol version
{protocol['version']}). The files are the output of `python -m export`: see `README.md` here
for the signatures, shapes and units, and the main README for apps.

- **Data**: `{protocol['dataset']}` (train split; classical works rendered from the music21
  corpus), measured against {protocol['real_windows']} random windows of the **{protocol['split']}**
  split.
- **Seed**: {seed}.
- **Recipe**: `{recipe}`, {config['config']['epochs']} epochs
  ({config['config']['pretrain_epochs']} of pretraining).
- **Head**: {_head(config['config'])}.
- **Measured** on {protocol['num_songs']} songs of {protocol['steps']} steps through the
  SavedModel, raw outputs (nothing clamped, dropped or shifted):

{chr(10).join(rows)}

Reproduce (train, then export):

```sh
.venv/bin/python -m tfds_midi --config=default --data_dir=data
.venv/bin/python {train.replace('RUN', 'runs/' + model)}
.venv/bin/python -m export --model_dir=runs/{model} --output={FLAGS.output}/{model} \\
    --quantization=dynamic_range
```

or the whole protocol (all seeds, the baseline and both GANs):

```sh
.venv/bin/python benchmarks/bench_quality.py {protocol_flags}
.venv/bin/python scripts/ship_pretrained.py --name={entry['name']}
```

Config (`config.json` of the run):

```json
{json.dumps(config, indent=2, sort_keys=True)}
```
"""


def run(command: list[str]) -> None:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()] or ["no output"]
        raise ShipError(f"{' '.join(command[:3])} failed: {lines[-1]}")


def samples(shipped: dict[str, str]) -> None:
    import numpy as np
    import tensorflow as tf

    from crnn_gan import rendering
    from crnn_gan.evaluation import sources
    from tfds_midi import codec

    os.makedirs(FLAGS.samples, exist_ok=True)
    midis = []
    for model, folder in shipped.items():
        generate = tf.saved_model.load(os.path.join(folder, "saved_model")).signatures[
            "serving_default"]
        noise_dim = generate.structured_input_signature[1]["noise"].shape[-1]
        for song in range(FLAGS.songs):
            noise = np.random.default_rng(song).uniform(
                size=(1, FLAGS.steps, noise_dim)).astype(np.float32)
            tones = generate(noise=tf.constant(noise))["tones"].numpy()[0]
            path = os.path.join(FLAGS.samples, f"{model}_seed{song}.mid")
            with open(path, "wb") as f:
                f.write(codec.tones_to_midi_bytes(codec.unpack_tones(tones.reshape(
                    FLAGS.steps, -1))))
            midis.append(path)
    songs, names = sources.load_tfds_songs("crnn_gan_midi/default:test", "data")
    longest = max(range(len(songs)), key=lambda k: len(songs[k]))
    real = songs[longest][:FLAGS.steps]
    path = os.path.join(FLAGS.samples, "real_excerpt.mid")
    with open(path, "wb") as f:
        f.write(codec.tones_to_midi_bytes(real))
    midis.append(path)
    with open(os.path.join(FLAGS.samples, "real_excerpt.txt"), "w") as f:
        f.write(f"The first {FLAGS.steps} tones of {names[longest]} (test split).\n")
    wavs, message = rendering.render_audio(midis, "wav", out_dir=FLAGS.samples)
    if message:
        print(message)
        return
    for wav in wavs:
        ogg = wav[:-4] + ".ogg"
        if shutil.which("oggenc"):
            run(["oggenc", "-Q", "-q", "-1", "--downmix", "--resample", "22050", "-o", ogg,
                 wav])
        else:  # FluidSynth writes OGG itself when libsndfile has Vorbis
            run(["fluidsynth", "-ni", "-g", "0.8", "-r", "22050", "-T", "oga", "-F", ogg,
                 rendering.find_soundfont(None), wav[:-4] + ".mid"])
        os.remove(wav)
    print(f"samples in {FLAGS.samples}: {len(midis)} MIDI + OGG")


def main(argv):
    del argv
    everything, status = protocol_runs.run_or_report(
        "ship_pretrained.py",
        lambda: protocol_runs.read_results(FLAGS.quality, [FLAGS.name], flag="--name"))
    if status:
        return status
    entry = everything[FLAGS.name]
    shipped = {}
    unknown = [model for model in FLAGS.models if model not in ("gan", "gan3")]
    if unknown or not FLAGS.models:
        return cli.fail(f"--models: give gan and/or gan3, got {','.join(FLAGS.models)!r}")
    try:
        for model in FLAGS.models:
            seed, result = choose(entry, model)
            run_dir = os.path.join(result["job_dir"], "run")
            if not os.path.isfile(os.path.join(run_dir, "generator.weights.h5")):
                raise ShipError(f"--name={FLAGS.name}: the {model} run of seed {seed}, "
                                f"{run_dir}, is not here (run bench_quality.py first)")
            folder = os.path.join(FLAGS.output, model)
            # The new export is made beside the shipped one and replaces it only when whole.
            fresh = f"{folder}.new"
            shutil.rmtree(fresh, ignore_errors=True)
            run([sys.executable, "-m", "export", f"--model_dir={run_dir}", f"--output={fresh}",
                 "--quantization=dynamic_range"])
            with open(os.path.join(run_dir, "config.json")) as f:
                config = json.load(f)
            with open(os.path.join(fresh, "CARD.md"), "w") as f:
                f.write(card(model, seed, result, entry, config))
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(fresh, folder)
            shipped[model] = folder
            print(f"{model}: seed {seed} -> {folder}")
        samples(shipped)
    except ShipError as error:
        return cli.fail(str(error))
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
