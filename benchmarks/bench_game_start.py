r"""Where the game starts: G's weights when its adversarial epochs begin, measured as the
protocol measures a final generator, against the same baselines.

The protocol compares the GAN's final G with a baseline that trained by maximum likelihood
for the whole run; the GAN's G stopped maximum likelihood at the full rate when its game
began. How much of the GAN-against-baseline gap is already there before the game? A run of
`--prior_kl_weight` > 0 keeps G's weights from the game's first step (the KL control's
prior) in its last checkpoint: this script writes each seed's prior as the generator of a
copy of the run folder (``WORK/NAME/gan_seedS/run`` -> ``WORK/NAME/start_seedS/run``),
exports it (``python -m export``) and measures it in a fresh process
(``bench_quality.py --measure_run``: the run's own real windows, the protocol's noise and
classifier seeds), then prints, per statistic, on how many seeds the start is closer to the
real windows than the baseline of the same seed (`benchmarks/paired_table.py`'s table,
`protocol_runs.paired_table`).

Pretraining does not depend on the KL weight, so with the preset's other flags the prior is
also the start of the preset's own game (same seed, same data, same machine).

Usage::

    python benchmarks/bench_game_start.py --name=small_prior_kl10 \
        --baseline_names=small_machine3,small_machine3_seeds345

(every GAN seed of the recipe, ``WORK/NAME/gan_seedS``).
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
flags.DEFINE_string("work_dir", "runs/quality", "bench_quality.py's --work_dir.")
flags.DEFINE_string("name", None, "A recipe with --prior_kl_weight > 0 (WORK/NAME).",
                    required=True)
flags.DEFINE_string("quality", str(ROOT / "docs" / "quality.json"), "bench_quality results.")
flags.DEFINE_list("baseline_names", None, "Entries of --quality holding the baselines.",
                  required=True)

#: The classifier settings that bench_quality.py takes as flags (the rest are its defaults).
DISC_FLAGS = ("units", "epochs", "folds")
#: The files of a run folder that its export reads besides the generator's weights.
RUN_FILES = ("config.json", "scaler.json")


class StartError(protocol_runs.MissingRun):
    """A run without a prior, or a failed export or measurement: one line, exit status 2."""


def write_start(run_dir: str, start_dir: str) -> None:
    """Writes the prior held in `run_dir`'s last checkpoint as `start_dir`'s generator."""
    from crnn_gan import training
    from crnn_gan.config import Config

    config = Config(**json.loads(pathlib.Path(run_dir, "config.json").read_text())["config"])
    if not config.prior_kl_weight:
        raise StartError(f"{run_dir}: trained without --prior_kl_weight, so it kept no prior")
    model = training.build_model(config, "gan", seed=0)
    model.load_weights(os.path.join(run_dir, "checkpoints", "latest.weights.h5"))
    if not int(model.prior_state.numpy()):
        raise StartError(f"{run_dir}: its last checkpoint precedes the game (no prior taken)")
    os.makedirs(start_dir, exist_ok=True)
    for name in RUN_FILES:
        shutil.copy(os.path.join(run_dir, name), start_dir)
    model.prior.save_weights(os.path.join(start_dir, "generator.weights.h5"))


def run_logged(command: list[str], log_path: str) -> None:
    with open(log_path, "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if result.returncode:
        raise StartError(f"{' '.join(command[:3])} ... failed (exit {result.returncode}); "
                         f"see {log_path}")


def measure_start(seed: int, run_dir: str) -> dict:
    """The start of seed `seed`'s game (its run `run_dir`), exported and measured as the
    protocol measured the run; the start's quality_measure.json."""
    key = protocol_runs.measure_key(run_dir)
    reference = protocol_runs.measured_reference(FLAGS.work_dir, run_dir)
    start_job = os.path.join(FLAGS.work_dir, FLAGS.name, f"start_seed{seed}")
    write_start(run_dir, os.path.join(start_job, "run"))
    run_logged([sys.executable, "-m", "export", f"--model_dir={start_job}/run",
                f"--output={start_job}/export", "--quantization=none"],
               os.path.join(start_job, "export.log"))
    run_logged([sys.executable, str(ROOT / "benchmarks" / "bench_quality.py"),
                f"--measure_run={start_job}",
                f"--reference={reference}",
                f"--num_songs={key['num_songs']}", f"--steps={key['steps']}",
                f"--noise_seed={key['noise_seed']}", f"--disc_seed={key['disc_seed']}",
                *(f"--disc_{field}={key['disc'][field]}" for field in DISC_FLAGS)],
               os.path.join(start_job, "measure.log"))
    return json.loads(pathlib.Path(start_job, "quality_measure.json").read_text())


def start_table() -> str:
    results = protocol_runs.read_results(FLAGS.quality)
    label = f"{FLAGS.name}:start"
    results[label] = {"runs": {"gan": {
        str(seed): measure_start(seed, run_dir)
        for seed, run_dir in protocol_runs.runs(FLAGS.work_dir, FLAGS.name, "gan")}}}
    return (f"The start of {FLAGS.name}'s game (the 'GAN' column) against the baselines of "
            f"{', '.join(FLAGS.baseline_names)}:\n\n"
            + protocol_runs.paired_table(protocol_runs.paired(results, [label],
                                                               FLAGS.baseline_names)))


def main(argv):
    del argv
    _, status = protocol_runs.run_or_report(
        "bench_game_start.py", lambda: protocol_runs.print_table(start_table(), None))
    return status


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
