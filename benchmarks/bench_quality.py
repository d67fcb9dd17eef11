r"""Music quality protocol: several seeds of the GAN, the baseline and C-RNN-GAN-3, judged
on the raw outputs of their exported generators against real windows of the test split.

    nice -n 10 .venv/bin/python benchmarks/bench_quality.py --name=current \
        --recipe="--flag=value ..." --epochs=12 --pretrain_epochs=4 \
        [--seeds=0,1,2] [--models=gan,baseline,gan3] [--jobs=2] [--markdown=PATH]

For every model (``gan``: ``train.py --model=gan``; ``baseline``: ``--model=baseline``;
``gan3``: ``--model=gan --tones_per_step=3``) and seed, in
``JOB = --work_dir/<name>/<model>_seed<S>`` (``JOB/run`` is train.py's run folder, which may
hold nothing else):

1. **train**: ``train.py --preset=P <recipe> [--epochs=E] [--pretrain_epochs=PE] --model=...
   --seed=S --model_dir=JOB/run --samples_per_epoch=N --dataset --data_dir [--manual_dir]``
   plus CPU threads (``--jobs`` trainings side by side, each with cores / jobs threads:
   ``--intra_op_threads=1 --inter_op_threads=1`` for 2 jobs on 2 cores; one job keeps
   train.py's default). The recipe is passed through verbatim; the flags the protocol sets
   (model, seed, model_dir, data, preset, epochs, threads, tones_per_step) may not appear
   in it. Skipped when ``RUN/generator.weights.h5`` exists (a killed run resumes: train.py
   restores its backup). A job folder trained with another command is an error (use
   another ``--name``), so a re-run never mixes recipes.
2. **export**: ``python -m export --model_dir=JOB/run --output=JOB/export --quantization=none``
   (what users get), unless the export is newer than the weights.
3. **measure** (a fresh process): ``--num_songs`` songs of ``--steps`` steps through the
   exported SavedModel's ``serving_default`` (noise uniform [0, 1) from ``--noise_seed``,
   the same noise for every run), raw outputs ``[songs, steps, tones_per_step, 4]``
   saved to ``JOB/quality_generated.npy`` and measured with ``crnn_gan.quality.evaluate_set``
   against ``--real_windows`` random windows of ``--steps`` steps of the ``--split`` split
   (GAN, baseline: 100-tone windows; GAN-3: windows of 100 steps of
   ``codec.pack_tones(song, 3)``, the same length in its own format). Cached in
   ``JOB/quality_measure.json`` under a key of everything that decides the numbers.

**Calibration**: ``--num_songs`` real windows of ``--calibration_split`` (default train) are
measured exactly like a run's songs (cached in ``--work_dir/reference``): what real music
scores under the protocol (the discriminative score of real against real, its diversity
ratios and overlapping areas). Printed as the last row of each format.

``--compare_jobs`` only times one GAN epoch alone against two side by side (round robin)
and exits: whether ``--jobs=2`` pays on the machine at hand.

Then the targets (``crnn_gan.quality.check_targets``) are checked in every seed, the results
go to ``--output`` under ``--name`` (other names in the file are kept: recipes and ablations
accumulate), and markdown tables (per seed, mean ± std over seeds, real windows, targets) are
printed and written to ``--markdown``. Timing per run (setup, each pretraining and adversarial
epoch, export, measure) is in the JSON. An entry without baseline runs (``--models=gan``)
that is to be compared with another entry's baselines (the same pretraining, temperature
and seeds) names it with ``--baselines_from``, recorded in its entry for
`benchmarks/ablation_table.py` and `benchmarks/paired_table.py`. Exit status 0 when
everything ran (whether or not the targets are met), 1 when a run failed (``--output`` is
then left as it was), 2 for bad flags.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import hashlib
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import threading
import time

from absl import app, flags

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crnn_gan import cli, metrics, quality  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("name", "current", "Label of the recipe: the key in --output.")
flags.DEFINE_string("recipe", "", "train.py flags of the recipe under test, passed through "
                    "verbatim, e.g. \"--representation=midi --output_head=bounded\".")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Training seeds.")
flags.DEFINE_list("models", ["gan", "baseline", "gan3"], "Models: gan, baseline, gan3.")
flags.DEFINE_string("preset", "small", "train.py --preset.")
flags.DEFINE_integer("epochs", None, "Total epochs, pretraining included (default: preset's).")
flags.DEFINE_integer("pretrain_epochs", None, "Pretraining epochs (default: preset's).")
flags.DEFINE_string("output", "docs/quality.json", "Results, keyed by --name.")
flags.DEFINE_list("baselines_from", None, "Without --models=baseline: entries of --output "
                  "whose baseline runs (same baseline recipe and seeds) this entry's GAN is "
                  "compared with (recorded as its baselines_from; benchmarks/ablation_table.py, "
                  "paired_table.py).")
flags.DEFINE_string("markdown", None, "Also write the markdown tables here.")
flags.DEFINE_string("work_dir", "runs/quality", "Runs go to WORK_DIR/NAME/MODEL_seedS.")
flags.DEFINE_integer("jobs", 2, "Trainings (and measurements) side by side.", lower_bound=1)
flags.DEFINE_integer("num_songs", 64, "Generated songs per run.", lower_bound=8)
flags.DEFINE_integer("steps", 100, "Steps per generated song and per real window.",
                     lower_bound=2)
flags.DEFINE_integer("real_windows", 500, "Random real windows.", lower_bound=8)
flags.DEFINE_string("dataset", "crnn_gan_midi/default", "TFDS dataset (train.py --dataset).")
flags.DEFINE_string("data_dir", "data", "TFDS data dir.")
flags.DEFINE_string("manual_dir", None, "MIDI folder for crnn_gan_midi/manual.")
flags.DEFINE_string("split", "test", "Split of the real windows.")
flags.DEFINE_integer("samples_per_epoch", 1, "train.py --samples_per_epoch.", lower_bound=0)
flags.DEFINE_integer("noise_seed", 0, "Seed of the generation noise (same for every run).")
flags.DEFINE_integer("real_seed", 0, "Seed of the real windows.")
flags.DEFINE_integer("disc_seed", 0, "Seed of the discriminative classifier.")
flags.DEFINE_integer("disc_units", quality.DiscriminatorSpec.units, "Classifier GRU units.")
flags.DEFINE_integer("disc_epochs", quality.DiscriminatorSpec.epochs, "Classifier epochs.")
flags.DEFINE_integer("disc_folds", quality.DiscriminatorSpec.folds, "Classifier folds.")
flags.DEFINE_string("calibration_split", "train", "Also measure --num_songs real windows of "
                    "this split as if generated (the protocol's numbers for real music); "
                    "empty: skip.")
flags.DEFINE_bool("ceiling_only", False, "Only (re)compute the real-music ceiling of the GAN-"
                  "vs-baseline target for the runs of --name in --output (no training).")
flags.DEFINE_bool("quiet", False, "Do not echo the trainings' output.")
flags.DEFINE_bool("compare_jobs", False, "Only time one GAN epoch alone against two side by "
                  "side (round robin, twice) and exit: does --jobs=2 pay on this machine?")
# Internal: the runner measures each run in a fresh process with these.
flags.DEFINE_bool("reference_only", False, "Only build the real windows of --split (for "
                  "--models' tone counts), print their paths and exit (e.g. validation windows "
                  "for bench_temperature.py --reference).")
flags.DEFINE_string("measure_run", None, "(internal) measure this run folder and exit.")
flags.DEFINE_string("reference", None, "(internal) real windows (.npz) for --measure_run.")
flags.DEFINE_string("generated", None, "(internal) windows (.npz) measured instead of the "
                    "export's songs.")
flags.DEFINE_integer("threads", 0, "(internal) TensorFlow threads of --measure_run "
                     "(0: default).")

MODELS = {"gan": ["--model=gan"], "baseline": ["--model=baseline"],
          "gan3": ["--model=gan", "--tones_per_step=3"]}
LABELS = {"gan": "GAN", "baseline": "baseline", "gan3": "GAN-3"}
TONES_PER_STEP = {"gan": 1, "baseline": 1, "gan3": 3}
# Longest first, so that the side-by-side jobs end together (the small preset, 2 jobs: GAN-3
# with its autoregressive head about 17 min, GAN 6, baseline 3).
COST_ORDER = ("gan3", "gan", "baseline")
RESERVED = {"model", "seed", "model_dir", "dataset", "data_dir", "manual_dir",
            "samples_per_epoch", "intra_op_threads", "inter_op_threads", "preset", "epochs",
            "pretrain_epochs", "tones_per_step", "strategy", "tpu"}
_PRINT_LOCK = threading.Lock()


class ProtocolError(Exception):
    """A run cannot be done as asked; the message says why."""


def log(message: str) -> None:
    with _PRINT_LOCK:
        print(message, flush=True)


# --------------------------------------------------------------------------------------
# Commands.
# --------------------------------------------------------------------------------------

def parse_recipe(recipe: str) -> list[str]:
    """The recipe's train.py arguments (shell words), checked against the reserved flags."""
    words = shlex.split(recipe)
    for word in words:
        if word.startswith("--"):
            name = word[2:].split("=", 1)[0]
            if name in RESERVED or (name.startswith("no") and name[2:] in RESERVED):
                hint = (f"use bench_quality's --{name}" if name in FLAGS else
                        "the protocol sets it")
                raise ProtocolError(f"--recipe may not set --{name} ({hint})")
    return words


def cpu_threads(jobs: int) -> tuple[int, int]:
    """(intra_op, inter_op) for each of `jobs` processes side by side: one job keeps
    train.py's default (-1: auto, 0); several share the cores, at least one thread each."""
    if jobs <= 1:
        return -1, 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    per_job = max(1, cores // jobs)
    return per_job, per_job


def train_args(model: str, seed: int, run_dir: str, recipe: list[str]) -> list[str]:
    """train.py's arguments (after the script) for one run."""
    args = [f"--preset={FLAGS.preset}", *recipe]
    if FLAGS.epochs is not None:
        args.append(f"--epochs={FLAGS.epochs}")
    if FLAGS.pretrain_epochs is not None:
        args.append(f"--pretrain_epochs={FLAGS.pretrain_epochs}")
    args += [*MODELS[model], f"--seed={seed}", f"--model_dir={run_dir}",
             f"--samples_per_epoch={FLAGS.samples_per_epoch}", f"--dataset={FLAGS.dataset}",
             f"--data_dir={FLAGS.data_dir}"]
    if FLAGS.manual_dir:
        args.append(f"--manual_dir={FLAGS.manual_dir}")
    return args


def _env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


_EPOCH_START = re.compile(r"^Epoch (\d+)/(\d+)")
_EPOCH_PHASE = re.compile(r"^epoch (\d+) \[(\w+)\]")


def run_logged(command: list[str], log_path: str, label: str) -> dict:
    """Runs a command, writing its output with elapsed seconds to `log_path` (appended).

    Returns:
        ``wall_s``, ``returncode``, and for train.py: ``setup_s`` (start to the first
        epoch) and ``epochs`` (``[epoch, phase, seconds]`` from one "Epoch N/M" line to the
        next, the last one ending with the process).
    """
    start = time.perf_counter()
    starts, phases = {}, {}
    with open(log_path, "a") as out:
        out.write(f"# {datetime.datetime.now().isoformat(timespec='seconds')} "
                  f"{shlex.join(command)}\n")
        process = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            elapsed = time.perf_counter() - start
            out.write(f"{elapsed:9.2f} {line}")
            if match := _EPOCH_START.match(line):
                starts[int(match.group(1))] = elapsed
            elif match := _EPOCH_PHASE.match(line):
                phases[int(match.group(1))] = match.group(2)
            if not FLAGS.quiet and (_EPOCH_PHASE.match(line) or "rror" in line):
                log(f"[{label}] {line.rstrip()}")
        returncode = process.wait()
    wall = time.perf_counter() - start
    order = sorted(starts)
    ends = [starts[e] for e in order[1:]] + [wall]
    return {"wall_s": wall, "returncode": returncode,
            "setup_s": starts[order[0]] if order else None,
            "epochs": [[e, phases.get(e, "?"), end - starts[e]] for e, end in zip(order, ends)]}


# --------------------------------------------------------------------------------------
# Real windows.
# --------------------------------------------------------------------------------------

def reference_path(tones_per_step: int, split: str, count: int, seed: int) -> str:
    key = json.dumps([FLAGS.dataset, FLAGS.data_dir, FLAGS.manual_dir, split, FLAGS.steps,
                      count, seed, tones_per_step])
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    slug = FLAGS.dataset.replace("/", "_")
    return os.path.join(FLAGS.work_dir, "reference",
                        f"{slug}_{split}_k{tones_per_step}_steps{FLAGS.steps}_n{count}_"
                        f"{digest}.npz")


def prepare_dataset() -> None:
    """Prepares the dataset once, before trainings that would otherwise race to do it."""
    import tensorflow_datasets as tfds

    import tfds_midi.crnn_gan_midi  # noqa: F401  (registers crnn_gan_midi)

    builder = tfds.builder(FLAGS.dataset, data_dir=FLAGS.data_dir)
    if not builder.is_prepared():
        log(f"preparing {FLAGS.dataset} in {FLAGS.data_dir}")
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=FLAGS.manual_dir))


def build_reference(tones_per_step: int, split: str | None = None, count: int | None = None,
                    seed: int | None = None) -> str:
    """Random real windows of --steps steps in the packed format of `tones_per_step`, saved
    as ``windows`` float32 ``[count, steps, 4 * k]`` and ``names`` (song@offset).

    Defaults: ``--split``, ``--real_windows``, ``--real_seed``.
    """
    import numpy as np

    from crnn_gan.evaluation import sources
    from tfds_midi import codec

    split = split or FLAGS.split
    count = count or FLAGS.real_windows
    seed = FLAGS.real_seed if seed is None else seed
    path = reference_path(tones_per_step, split, count, seed)
    if os.path.exists(path):
        return path
    songs, names = sources.load_tfds_songs(f"{FLAGS.dataset}:{split}", FLAGS.data_dir)
    if tones_per_step > 1:
        songs = [codec.pack_tones(s, tones_per_step) for s in songs]
    usable = [i for i, s in enumerate(songs) if len(s) >= FLAGS.steps]
    if not usable:
        raise ProtocolError(f"no song of {FLAGS.dataset}:{split} holds {FLAGS.steps} "
                            f"steps of {tones_per_step} tone(s); lower --steps")
    windows, window_names = sources.random_windows(
        [songs[i] for i in usable], [names[i] for i in usable], FLAGS.steps, count, seed=seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + ".tmp.npz"
    np.savez(temporary, windows=np.stack(windows).astype(np.float32),
             names=np.array(window_names), songs=len(songs), usable=len(usable))
    os.replace(temporary, path)
    log(f"real windows: {len(windows)} of {FLAGS.steps} steps x {tones_per_step} tone(s) from "
        f"{len(usable)} of {len(songs)} songs of {FLAGS.dataset}:{split} -> {path}")
    return path


# --------------------------------------------------------------------------------------
# One run: train, export, measure.
# --------------------------------------------------------------------------------------

def _read_json(path: str):
    with open(path) as f:
        return json.load(f)


def _read_output() -> dict:
    """--output's results (keyed by recipe name); {} before the first entry is written."""
    return _read_json(FLAGS.output) if os.path.exists(FLAGS.output) else {}


def _write_json(path: str, value) -> None:
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w") as f:
        json.dump(value, f, indent=1, sort_keys=False, default=_plain)
        f.write("\n")
    os.replace(temporary, path)


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def measure_key(job_dir: str, reference: str, generated: str | None = None) -> dict:
    """What decides a measurement's numbers: a cached one with another key is redone."""
    saved_model = os.path.join(job_dir, "export", "saved_model", "saved_model.pb")
    return {"protocol_version": quality.PROTOCOL_VERSION,
            "reference": os.path.basename(reference),
            "generated": os.path.basename(generated) if generated else None,
            "num_songs": FLAGS.num_songs, "steps": FLAGS.steps, "noise_seed": FLAGS.noise_seed,
            "disc_seed": FLAGS.disc_seed, "disc": dataclasses.asdict(disc_spec()),
            "export_mtime": (os.path.getmtime(saved_model)
                             if not generated and os.path.exists(saved_model) else None)}


def disc_spec() -> quality.DiscriminatorSpec:
    return quality.DiscriminatorSpec(units=FLAGS.disc_units, epochs=FLAGS.disc_epochs,
                                     folds=FLAGS.disc_folds)


def run_job(model: str, seed: int, recipe: list[str], reference: str) -> dict:
    """Trains (or resumes), exports and measures one run; returns its timing and paths.

    Layout of ``JOB = work_dir/name/model_seedS``: ``JOB/run`` (train.py's --model_dir,
    nothing else in it), ``JOB/export`` (python -m export), ``JOB/train.log``,
    ``JOB/export.log``, ``JOB/measure.log``, ``JOB/quality_run.json`` (the train.py flags and
    timing), ``JOB/quality_generated.npy`` (the raw songs), ``JOB/quality_measure.json``.
    """
    job_dir = os.path.join(FLAGS.work_dir, FLAGS.name, f"{model}_seed{seed}")
    run_dir = os.path.join(job_dir, "run")
    label = f"{model} seed {seed}"
    os.makedirs(job_dir, exist_ok=True)
    args = train_args(model, seed, run_dir, recipe)
    record_path = os.path.join(job_dir, "quality_run.json")
    record = _read_json(record_path) if os.path.exists(record_path) else {}
    if record.get("train_args") not in (None, args):
        raise ProtocolError(
            f"{job_dir} was trained with other flags:\n  {shlex.join(record['train_args'])}\n"
            f"not\n  {shlex.join(args)}\nuse another --name or remove {job_dir}")
    record["train_args"] = args
    _write_json(record_path, record)
    timing = record.setdefault("timing", {})

    weights = os.path.join(run_dir, "generator.weights.h5")
    if os.path.exists(weights):
        log(f"[{label}] trained already ({weights})")
    else:
        intra, inter = cpu_threads(FLAGS.jobs)
        command = [sys.executable, str(ROOT / "train.py"), *args,
                   f"--intra_op_threads={intra}", f"--inter_op_threads={inter}"]
        log(f"[{label}] training: {shlex.join(command[1:])}")
        result = run_logged(command, os.path.join(job_dir, "train.log"), label)
        timing.setdefault("train", []).append({**result, "jobs": FLAGS.jobs,
                                               "threads": [intra, inter]})
        _write_json(record_path, record)
        if result["returncode"] != 0 or not os.path.exists(weights):
            raise ProtocolError(f"{label}: train.py failed (exit {result['returncode']}); "
                                f"see {job_dir}/train.log")
        log(f"[{label}] trained in {result['wall_s']:.0f} s")

    export_dir = os.path.join(job_dir, "export")
    saved_model = os.path.join(export_dir, "saved_model", "saved_model.pb")
    if not (os.path.exists(saved_model)
            and os.path.getmtime(saved_model) >= os.path.getmtime(weights)):
        command = [sys.executable, "-m", "export", f"--model_dir={run_dir}",
                   f"--output={export_dir}", "--quantization=none"]
        result = run_logged(command, os.path.join(job_dir, "export.log"), label)
        timing["export_s"] = result["wall_s"]
        _write_json(record_path, record)
        if result["returncode"] != 0 or not os.path.exists(saved_model):
            raise ProtocolError(f"{label}: export failed (exit {result['returncode']}); see "
                                f"{job_dir}/export.log")

    timing["measure_s"] = measure_job(job_dir, reference, label)
    _write_json(record_path, record)
    return {"job_dir": job_dir, "timing": timing}


def measure_job(job_dir: str, reference: str, label: str, generated: str | None = None
                ) -> float | None:
    """Measures in a fresh process into ``job_dir/quality_measure.json`` unless a measurement
    with the same key is there; returns its seconds (None when cached)."""
    measure_path = os.path.join(job_dir, "quality_measure.json")
    key = measure_key(job_dir, reference, generated)
    if os.path.exists(measure_path) and _read_json(measure_path).get("key") == key:
        log(f"[{label}] measured already")
        return None
    os.makedirs(job_dir, exist_ok=True)
    intra, _ = cpu_threads(FLAGS.jobs)
    command = [sys.executable, str(pathlib.Path(__file__).resolve()),
               f"--measure_run={job_dir}", f"--reference={reference}",
               f"--num_songs={FLAGS.num_songs}", f"--steps={FLAGS.steps}",
               f"--noise_seed={FLAGS.noise_seed}", f"--disc_seed={FLAGS.disc_seed}",
               f"--disc_units={FLAGS.disc_units}", f"--disc_epochs={FLAGS.disc_epochs}",
               f"--disc_folds={FLAGS.disc_folds}", f"--threads={max(intra, 0)}"]
    if generated:
        command.append(f"--generated={generated}")
    result = run_logged(command, os.path.join(job_dir, "measure.log"), label)
    if result["returncode"] != 0 or not os.path.exists(measure_path):
        raise ProtocolError(f"{label}: measuring failed (exit {result['returncode']}); "
                            f"see {job_dir}/measure.log")
    log(f"[{label}] measured in {result['wall_s']:.0f} s")
    return result["wall_s"]


def calibration_job(tones_per_step: int, reference: str) -> dict:
    """Real windows of --calibration_split measured as if generated: what the protocol gives
    music that is real (the floor of the discriminative score, the diversity of real
    music, ...). Cached under work_dir/reference."""
    windows = build_reference(tones_per_step, FLAGS.calibration_split, FLAGS.num_songs,
                              FLAGS.real_seed + 1)
    name = (f"calibration_{os.path.basename(windows)[:-4]}_vs_"
            f"{os.path.basename(reference)[:-4].rsplit('_', 1)[-1]}")
    job_dir = os.path.join(FLAGS.work_dir, "reference", name)
    measure_job(job_dir, reference, f"calibration k={tones_per_step}", generated=windows)
    return {"job_dir": job_dir}


def measure_main() -> int:
    """--measure_run: generate through the export, measure, write quality_measure.json."""
    import numpy as np
    import tensorflow as tf

    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    job_dir = FLAGS.measure_run
    start = time.perf_counter()
    if FLAGS.generated:  # calibration: real windows in the place of generated songs
        windows = np.load(FLAGS.generated)["windows"]
        tones = windows.reshape(*windows.shape[:2], -1, 4)
    else:
        signature = tf.saved_model.load(
            os.path.join(job_dir, "export", "saved_model")).signatures["serving_default"]
        tones = quality.protocol_songs(signature, num_songs=FLAGS.num_songs,
                                       steps=FLAGS.steps, noise_seed=FLAGS.noise_seed)
        np.save(os.path.join(job_dir, "quality_generated.npy"), tones)
    generate_s = time.perf_counter() - start
    reference = np.load(FLAGS.reference)
    windows = reference["windows"]
    if windows.shape[-1] != 4 * tones.shape[2]:
        raise ProtocolError(f"{job_dir} generates {tones.shape[2]} tone(s) per step but the "
                            f"real windows {FLAGS.reference} hold {windows.shape[-1] // 4}")
    result = quality.evaluate_set(tones, windows, seed=FLAGS.disc_seed, spec=disc_spec())
    result["generate_s"] = generate_s
    result["measure_s"] = time.perf_counter() - start
    result["key"] = measure_key(job_dir, FLAGS.reference, FLAGS.generated)
    _write_json(os.path.join(job_dir, "quality_measure.json"), result)
    print(f"measured {job_dir}: valid {result['validity']['valid_fraction']:.3f}, "
          f"discriminative score {result['discriminative']['score']:.3f}, "
          f"{result['measure_s']:.0f} s")
    return 0


# --------------------------------------------------------------------------------------
# Aggregation and tables.
# --------------------------------------------------------------------------------------

def headline(result: dict) -> dict[str, float | None]:
    """The per-run numbers of the tables, flat."""
    out = {"valid_fraction": result["validity"]["valid_fraction"],
           "sub_audio": result["validity"]["sub_audio"]}
    for name in metrics.STATISTICS:
        out[name] = result["statistics"]["generated"][name]["mean"]
    out["discriminative_score"] = (result["discriminative"] or {}).get("score")
    for feature, values in result["diversity"].items():
        out[f"diversity_{feature}"] = values["ratio"]
    for feature, values in result["overlap"].items():
        out[f"overlap_{feature}"] = values["real_intra_vs_inter"]
    return out


_STAT_COLUMNS = [("valid_fraction", "valid %", "pct"), ("sub_audio", "sub-audio %", "pct"),
                 ("polyphony", "polyphony", ".2f"), ("scale_consistency", "scale cons.", ".2f"),
                 ("repetitions", "repetitions", ".3g"), ("tone_span", "tone span", ".3g"),
                 ("unique_tones", "unique", ".3g"), ("intensity_span", "intensity span", ".3g"),
                 ("discriminative_score", "disc. score", ".2f")]
_DIVERSITY_COLUMNS = (
    [(f"diversity_{f}", f"diversity {f.replace('_', ' ')} (gen/real)", ".2f")
     for f in quality.DIVERSITY_FEATURES]
    + [(f"overlap_{f}", f"OA {f.replace('_', ' ')}", ".2f") for f in quality.FEATURES])


def _cell(value, fmt: str) -> str:
    if value is None:
        return "–"
    if fmt == "pct":
        return f"{100 * value:.1f}"
    return format(value, fmt)


def _cell_mean_std(entry, fmt: str) -> str:
    if entry is None:
        return "–"
    if fmt == "pct":
        return f"{100 * entry['mean']:.1f} ± {100 * entry['std']:.1f}"
    return f"{format(entry['mean'], fmt)} ± {format(entry['std'], fmt)}"


def markdown(name: str, runs: dict, over_seeds: dict, real: dict, targets: list[dict],
             protocol: dict, ceiling: dict | None = None) -> str:
    pretrain = protocol["pretrain_epochs"]
    lines = [f"**Recipe `{name}`**: `{protocol['recipe'] or '(none)'}`; preset "
             f"{protocol['preset']}, epochs {protocol['epochs'] or 'preset'} (pretraining "
             f"{'preset' if pretrain is None else pretrain}), seeds "
             f"{', '.join(protocol['seeds'])}; {protocol['num_songs']} songs of "
             f"{protocol['steps']} steps per run through the exported SavedModel, raw outputs, "
             f"against {protocol['real_windows']} windows of the {protocol['split']} split.", ""]

    def table(columns, real_row):
        head = ["recipe", "model", "seed"] + [c[1] for c in columns]
        rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for model in runs:
            for seed, result in runs[model].items():
                values = headline(result)
                rows.append("| " + " | ".join([name, LABELS[model], seed] + [
                    _cell(values.get(c[0]), c[2]) for c in columns]) + " |")
            rows.append("| " + " | ".join([name, f"**{LABELS[model]}**", "mean ± std"] + [
                _cell_mean_std(over_seeds[model].get(c[0]), c[2]) for c in columns]) + " |")
        for label, cells in real_row(columns):
            rows.append("| " + " | ".join(["real", label, ""] + cells) + " |")
        return rows

    def calibration_row(entry, columns):
        calibration = entry.get("calibration")
        if calibration:
            values = headline(calibration)
            yield (f"{calibration['songs']} {calibration['split']}-split windows as if "
                   f"generated", [_cell(values.get(c[0]), c[2]) for c in columns])

    def real_statistics(columns):
        for entry in real.values():
            cells = []
            for key, _, fmt in columns:
                stat = entry["statistics"].get(key)
                cells.append(_cell_mean_std(stat, fmt) if stat else "–")
            yield f"{entry['label']} ({protocol['split']})", cells
            yield from calibration_row(entry, columns)

    def real_diversity(columns):
        for entry in real.values():
            cells = []
            for key, _, _ in columns:
                if key.startswith("diversity_"):
                    distance = entry["diversity"].get(key[len("diversity_"):])
                    cells.append(f"1 (= {distance:.3g})" if distance is not None else "–")
                else:
                    cells.append("–")
            yield f"{entry['label']} ({protocol['split']})", cells
            yield from calibration_row(entry, columns)

    lines += table(_STAT_COLUMNS, real_statistics)
    lines += ["", "Statistics: mean over the songs of a run; mean ± std over seeds (ddof=1). "
              "Real: mean ± std over windows, repetitions normalised to the window length. "
              "valid %: raw outputs a piano plays (pitch 21-108, length > 0, velocity "
              "1-127); sub-audio %: below A0 (pitch < 21 or Hz <= 0). disc. score: "
              "|accuracy - 0.5| of a GRU telling real windows from generated songs. The "
              "last row of each format: real windows of another split measured as if "
              "generated (what real music scores).", ""]
    lines += table(_DIVERSITY_COLUMNS, real_diversity)
    lines += ["", "Diversity: mean pairwise distance between generated songs / between real "
              "windows (pitch-class histograms L1, pitch ranges |difference|, inter-onset-"
              "interval histograms L1). OA: overlapping area of the real intra-set and the "
              "real-vs-generated inter-set distance distributions (mgeval; 1 = generated songs "
              "as far from real windows as real windows from each other).", ""]
    lines += ["| target | threshold | values | met |", "| --- | --- | --- | --- |"]
    for t in targets:
        values = ", ".join(f"{k}: {'–' if v is None else format(v, '.3g')}"
                           for k, v in t["values"].items())
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        lines.append(f"| {t['description']} | {t['op']} {t['threshold']:g} | {values} | "
                     f"{met}{' (' + t['note'] + ')' if t.get('note') else ''} |")
    lines += ceiling_markdown(ceiling)
    return "\n".join(lines) + "\n"


#: Real windows of the calibration split whose sets of --num_songs give the real-music
#: ceiling of the GAN-vs-baseline target (`ceiling_entry`), and the sets drawn.
CEILING_WINDOWS = 2000
CEILING_DRAWS = 1000


def ceiling_entry(runs: dict) -> dict | None:
    """How often real music (sets of --num_songs windows of --calibration_split) is closer
    to the test windows than each baseline run on >= `quality.CLOSER_TARGET` statistics
    (`quality.real_ceiling`); None without baseline runs or a calibration split."""
    import numpy as np

    from crnn_gan import metrics

    if not runs.get("baseline") or not FLAGS.calibration_split:
        return None
    path = build_reference(1, split=FLAGS.calibration_split, count=CEILING_WINDOWS)
    stats = [metrics.all_statistics(window) for window in np.load(path)["windows"]]
    return {"split": FLAGS.calibration_split, "windows": CEILING_WINDOWS,
            "per_seed": {seed: quality.real_ceiling(stats, result, set_size=FLAGS.num_songs,
                                                    draws=CEILING_DRAWS, seed=FLAGS.real_seed)
                         for seed, result in runs["baseline"].items()}}


def ceiling_markdown(ceiling: dict | None) -> list[str]:
    if not ceiling:
        return []
    first = next(iter(ceiling["per_seed"].values()))
    lines = ["", f"**Real music on the GAN-vs-baseline target**: {first['draws']} sets of "
             f"{first['set_size']} windows of the {ceiling['split']} split (from "
             f"{ceiling['windows']}), each measured as if generated against the same test "
             "windows as the runs: on how many of the 6 statistics real music is closer than "
             f"each baseline seed, and how often it meets the target (>= "
             f"{quality.CLOSER_TARGET}).", "",
             f"| baseline seed | closer on (mean of 6) | sets closer on >= "
             f"{quality.CLOSER_TARGET} | "
             + " | ".join(f"closer on {n.replace('_', ' ')}" for n in first["per_statistic"])
             + " |", "|" + " --- |" * (3 + len(first["per_statistic"]))]
    for seed, entry in ceiling["per_seed"].items():
        lines.append(f"| {seed} | {entry['closer_mean']:.2f} | {100 * entry['at_least_5']:.0f} % | "
                     + " | ".join(f"{100 * v:.0f} %" for v in entry["per_statistic"].values())
                     + " |")
    return lines


def ceiling_main() -> int:
    """--ceiling_only: adds the ceiling to --name's entry of --output and its tables."""
    everything = _read_output()
    entry = everything.get(FLAGS.name)
    if entry is None:
        raise app.UsageError(f"--name={FLAGS.name!r}: no such entry in {FLAGS.output}")
    protocol = entry["protocol"]  # the runs' own protocol, not the flags' defaults
    FLAGS.num_songs, FLAGS.steps, FLAGS.dataset = (protocol["num_songs"], protocol["steps"],
                                                   protocol["dataset"])
    FLAGS.real_seed = protocol["real_seed"]
    FLAGS.calibration_split = protocol.get("calibration_split") or FLAGS.calibration_split
    prepare_dataset()
    entry["ceiling"] = ceiling_entry(entry["runs"])
    if entry["ceiling"] is None:
        raise app.UsageError(f"--name={FLAGS.name!r} has no baseline runs")
    entry["markdown"] = markdown(FLAGS.name, entry["runs"], entry["over_seeds"], entry["real"],
                                 entry["targets"], entry["protocol"], entry["ceiling"])
    _write_json(FLAGS.output, everything)
    if FLAGS.markdown:
        with open(FLAGS.markdown, "w") as f:
            f.write(entry["markdown"])
    print("\n".join(ceiling_markdown(entry["ceiling"])))
    return 0


def real_entries(runs: dict) -> dict:
    """Real windows per format, from the first measured run of each tones_per_step."""
    out = {}
    for model in runs:
        for result in runs[model].values():
            k = result["tones_per_step"]
            if f"k{k}" in out:
                continue
            stats = dict(result["statistics"]["real"])
            stats["repetitions"] = stats.pop("repetitions_raw")
            label = (f"{result['steps']}-tone windows" if k == 1 else
                     f"{result['steps']}-step windows of {k} tones")
            out[f"k{k}"] = {
                "label": label, "tones_per_step": k, "windows": result["real_windows"],
                "statistics": stats,
                "diversity": {f: v["real"] for f, v in result["diversity"].items()}}
    return out


def compare_jobs(recipe: list[str], rounds: int = 2) -> dict:
    """--compare_jobs: is running 2 trainings side by side faster than one at a time?

    Times the second adversarial epoch of the GAN (``--pretrain_epochs=0 --epochs=2
    --windows_per_song=2``, the recipe's model; the first one traces) from its "Epoch 2/2"
    line to the process's end, round robin so that load from other processes affects both
    alike: one train.py with its default threads, then two side by side with cores / 2
    threads each. Prints
    and returns the seconds per epoch and the throughput ratio (epochs per second of two
    side by side over one alone).
    """
    import shutil

    base = os.path.join(FLAGS.work_dir, "compare_jobs")

    def command(run_dir, threads):
        args = [f"--preset={FLAGS.preset}", *recipe, "--pretrain_epochs=0", "--epochs=2",
                "--windows_per_song=2", "--model=gan", "--seed=0", f"--model_dir={run_dir}",
                "--samples_per_epoch=0", f"--dataset={FLAGS.dataset}",
                f"--data_dir={FLAGS.data_dir}"]
        if FLAGS.manual_dir:
            args.append(f"--manual_dir={FLAGS.manual_dir}")
        return [sys.executable, str(ROOT / "train.py"), *args,
                f"--intra_op_threads={threads[0]}", f"--inter_op_threads={threads[1]}"]

    def epoch_seconds(run_dir, threads):
        shutil.rmtree(run_dir, ignore_errors=True)
        os.makedirs(os.path.dirname(run_dir), exist_ok=True)
        result = run_logged(command(run_dir, threads), run_dir + ".log", "compare")
        if result["returncode"] != 0 or len(result["epochs"]) != 2:
            raise ProtocolError(f"train.py failed; see {run_dir}.log")
        return result["epochs"][1][2]

    alone, side_by_side = [], []
    for round_ in range(rounds):
        alone.append(epoch_seconds(os.path.join(base, f"alone_{round_}"), cpu_threads(1)))
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            pair = list(pool.map(lambda i, r=round_: epoch_seconds(
                os.path.join(base, f"pair_{r}_{i}"), cpu_threads(2)), range(2)))
        side_by_side.append(max(pair))
        log(f"round {round_ + 1}: one alone {alone[-1]:.1f} s, two side by side "
            f"{pair[0]:.1f} s and {pair[1]:.1f} s")
    result = {"alone_s": alone, "side_by_side_s": side_by_side,
              "throughput_ratio": 2 * sum(alone) / sum(side_by_side),
              "load_average": os.getloadavg()}
    log(f"2 side by side do {result['throughput_ratio']:.2f}x the epochs per second of one "
        f"alone (load average {', '.join(f'{x:.1f}' for x in result['load_average'])})")
    _write_json(os.path.join(base, "compare_jobs.json"), result)
    return result


def check_baselines_from() -> None:
    """`app.UsageError` unless --baselines_from is unset, or names entries of --output that
    hold baseline runs while this entry trains none."""
    if not FLAGS.baselines_from:
        return
    if "baseline" in FLAGS.models:
        raise app.UsageError("--baselines_from: only for entries without --models=baseline "
                             "(an entry with baseline runs is compared with its own)")
    try:
        everything = _read_output()
    except (OSError, ValueError) as error:
        raise app.UsageError(f"--baselines_from: cannot read --output={FLAGS.output} "
                             f"({error})") from None
    if not isinstance(everything, dict):
        everything = {}
    lacking = [name for name in FLAGS.baselines_from
               if not (isinstance(everything.get(name), dict)
                       and isinstance(everything[name].get("runs"), dict)
                       and everything[name]["runs"].get("baseline"))]
    if lacking:
        raise app.UsageError(f"--baselines_from: {', '.join(lacking)} holds no baseline runs "
                             f"in --output={FLAGS.output}")


def main(argv):
    """Bad flags, a bad --recipe or --output: one line, exit status 2 (`cli.fail`)."""
    try:
        return run_protocol(argv)
    except app.UsageError as error:
        return cli.fail(str(error))


def run_protocol(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.measure_run:
        return measure_main()
    if FLAGS.ceiling_only:
        return ceiling_main()
    unknown = set(FLAGS.models) - set(MODELS)
    if unknown or not FLAGS.models:
        raise app.UsageError(f"--models: choose among {sorted(MODELS)}, got {FLAGS.models}")
    try:
        seeds = [int(s) for s in FLAGS.seeds]
        recipe = parse_recipe(FLAGS.recipe)
    except ValueError as error:
        raise app.UsageError(f"--seeds must be integers: {error}") from None
    except ProtocolError as error:
        raise app.UsageError(str(error)) from None
    if not re.fullmatch(r"[\w.+-]+", FLAGS.name):
        raise app.UsageError("--name: letters, digits and . _ + - only")
    check_baselines_from()
    if FLAGS.compare_jobs:
        prepare_dataset()
        compare_jobs(recipe)
        return 0
    if FLAGS.reference_only:
        prepare_dataset()
        for k in sorted({TONES_PER_STEP[m] for m in FLAGS.models}):
            print(build_reference(k))
        return 0

    start = time.perf_counter()
    prepare_dataset()
    references = {k: build_reference(k) for k in sorted({TONES_PER_STEP[m] for m in FLAGS.models})}
    order = [(m, s) for m in COST_ORDER if m in FLAGS.models for s in seeds]
    failures, timings, calibrations = [], {}, {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=FLAGS.jobs) as pool:
        futures = {pool.submit(run_job, m, s, recipe, references[TONES_PER_STEP[m]]): (m, s)
                   for m, s in order}
        if FLAGS.calibration_split:
            futures.update({pool.submit(calibration_job, k, path): ("calibration", k)
                            for k, path in references.items()})
        for future in concurrent.futures.as_completed(futures):
            model, seed = futures[future]
            what = f"{model} k={seed}" if model == "calibration" else f"{model} seed {seed}"
            try:
                done = future.result()
            except Exception as error:  # noqa: BLE001 - reported, the other runs go on
                failures.append(f"{what}: {error}")
                log(f"FAILED {what}: {error}")
                continue
            if model == "calibration":
                result = _read_json(os.path.join(done["job_dir"], "quality_measure.json"))
                calibrations[f"k{seed}"] = {**result, "job_dir": done["job_dir"],
                                            "split": FLAGS.calibration_split}
            else:
                timings[(model, seed)] = done
    wall = time.perf_counter() - start

    runs, over_seeds = {}, {}
    for model in (m for m in FLAGS.models if m in MODELS):
        for seed in seeds:
            if (model, seed) not in timings:
                continue
            job_dir = timings[(model, seed)]["job_dir"]
            result = _read_json(os.path.join(job_dir, "quality_measure.json"))
            result["job_dir"] = job_dir
            result["timing"] = timings[(model, seed)]["timing"]
            runs.setdefault(model, {})[str(seed)] = result
        if model in runs:
            flat = [headline(r) for r in runs[model].values()]
            over_seeds[model] = {key: quality.over_seeds([f[key] for f in flat]) for key in flat[0]}
    targets = quality.check_targets(runs)
    real = real_entries(runs)
    protocol = {
        "version": quality.PROTOCOL_VERSION, "recipe": FLAGS.recipe, "preset": FLAGS.preset,
        "epochs": FLAGS.epochs, "pretrain_epochs": FLAGS.pretrain_epochs,
        "seeds": [str(s) for s in seeds], "models": list(FLAGS.models),
        "num_songs": FLAGS.num_songs, "steps": FLAGS.steps, "noise_seed": FLAGS.noise_seed,
        "dataset": FLAGS.dataset, "split": FLAGS.split, "real_windows": FLAGS.real_windows,
        "real_seed": FLAGS.real_seed, "discriminator": dataclasses.asdict(disc_spec()),
        "disc_seed": FLAGS.disc_seed, "jobs": FLAGS.jobs, "threads": cpu_threads(FLAGS.jobs),
        "train_commands": {m: ["train.py", *train_args(m, "S", "RUN", recipe)]
                           for m in FLAGS.models},
    }
    protocol["calibration_split"] = FLAGS.calibration_split or None
    for key, calibration in calibrations.items():
        if key in real:
            real[key]["calibration"] = calibration
    ceiling = ceiling_entry(runs)
    table = markdown(FLAGS.name, runs, over_seeds, real, targets, protocol, ceiling)
    entry = {
        "name": FLAGS.name, "recipe": FLAGS.recipe,
        "updated": datetime.datetime.now().isoformat(timespec="seconds"),
        "wall_s": wall, "protocol": protocol, "real": real, "runs": runs,
        "over_seeds": over_seeds, "targets": targets,
        "targets_met": sum(t["met"] is True for t in targets),
        "targets_total": len(targets),
        "all_targets_met": bool(targets) and all(t["met"] is True for t in targets),
        "failures": failures, "markdown": table, "ceiling": ceiling,
    }
    if FLAGS.baselines_from:
        entry["baselines_from"] = list(FLAGS.baselines_from)
    print()
    print(table)
    if failures:
        # An incomplete set of runs never replaces a recipe's results in --output.
        print(f"{len(failures)} run(s) failed; {FLAGS.output} left as it was:\n  "
              + "\n  ".join(failures), flush=True)
        return 1
    output = FLAGS.output
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    everything = _read_output()
    everything[FLAGS.name] = entry
    _write_json(output, everything)
    if FLAGS.markdown:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.markdown)), exist_ok=True)
        with open(FLAGS.markdown, "w") as f:
            f.write(table)
    print(f"{entry['targets_met']} of {entry['targets_total']} targets met; {wall:.0f} s with "
          f"--jobs={FLAGS.jobs}; results in {output} under {FLAGS.name!r}")
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
