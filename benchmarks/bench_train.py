r"""Training speed at the paper's size (350 units, seq_len 100, batch 20), side by side.

    python benchmarks/bench_train.py [--steps 5] [--torch_python .venv-torch/bin/python]
        [--only small_straight_through,small_score_function]

Each variant runs in its own process (so each peak memory is its own) and prints one JSON
line; this script prints the table and the ratios:
- crnngan_block: CRNNGAN.train_step, fused BlockLSTM kernels (the CPU default);
- crnngan_keras: CRNNGAN.train_step with Keras LSTM layers and autodiff of G's loop (the
  reference: the path of a GPU, cuDNN, or a TPU);
- keras_reference: plain stacked keras.layers.LSTM / Bidirectional of the same sizes, one
  forward and backward pass each for G and D, no feedback loop;
- torch_peer: ../shared/peers/torch_crnngan_step.py, when a Python with torch is given
  (torch lives in its own virtualenv: python3 -m venv .venv-torch &&
  .venv-torch/bin/pip install torch==2.13.0 numpy);
- pretrain_block: G's teacher-forced next-tone pretraining step (steps per second);
- small_straight_through, small_score_function: one adversarial step of the `small` preset
  (categorical head, 128 units, 32 steps, batch 16) without the statistics reward, with G's
  gradient through its draws by the straight-through estimator (a backward pass through
  the free-running loop) and by the score function (no backward through the loop, one
  teacher-forced pass over the draws);
- small_statistics_reward: the score function with the statistics reward measured on the
  training windows (the six statistics of every real and generated window in numpy);
- small_statistics_reward_runs: the same reward over 100-step free runs against fixed real
  moments (`statistics_reward_steps=100`): a longer free run and log-probability pass;
- small_statistics_reward_autoregressive: small_statistics_reward (the preset's step) with
  the autoregressive head (`autoregressive_head`: a step's features drawn one after another
  in the free run, its conditioning layers in the log-probability pass).
- small_gan3, small_gan3_autoregressive: the preset's C-RNN-GAN-3 adversarial step (3 tones,
  12 features per step) with its features drawn independently and in order (the preset's
  GAN-3, `config.GAN3_OVERRIDES`); small_gan3_pretrain, small_gan3_autoregressive_pretrain:
  its teacher-forced pretraining step (20 of the preset's 24 epochs).

TensorFlow variants run with train.py's CPU threads (`--intra_op_threads=-1`: one thread per
op on this small machine, see crnn_gan/distribute.py); a name ending in "@tf_threads" runs
with TensorFlow's default thread pools instead (what a plain Keras script gets).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
PEER = ROOT.parent / "shared" / "peers" / "torch_crnngan_step.py"
B, T, F, U = 20, 100, 4, 350


def _time(step, steps):
    step()
    step()  # trace and warm up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1000


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(name: str, steps: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import keras
    import tensorflow as tf

    from crnn_gan import config as config_lib
    from crnn_gan import distribute, training

    name, _, threads = name.partition("@")
    distribute.configure_cpu_threads(0 if threads == "tf_threads" else -1, 0)

    keras.utils.set_random_seed(0)
    real = tf.random.uniform([B, T, F])
    paper = config_lib.preset("paper")
    if name.startswith("crnngan_"):
        gan = training.build_model(paper.replace(implementation=name.split("_")[1]), "gan")
        gan.window_length.assign(T)
        step = tf.function(lambda: gan.train_step(real))
        return {"ms_per_step": _time(step, steps)}
    if name == "pretrain_block":
        gan = training.build_model(paper.replace(implementation="block"), "gan")
        gan.window_length.assign(T)
        gan.pretraining = True
        step = tf.function(lambda: gan.train_step(real))
        ms = _time(step, steps)
        return {"ms_per_step": ms, "steps_per_second": 1000 / ms}
    if name.startswith("small_"):
        import numpy as np

        from tfds_midi import codec, pipeline
        preset = config_lib.preset("small")
        gan3 = name.startswith("small_gan3")
        reward = name.startswith("small_statistics_reward") or gan3
        config = preset.replace(
            implementation="block",
            gradient_estimator=preset.gradient_estimator if reward else name[len("small_"):],
            feature_matching=name == "small_straight_through",
            statistics_reward_weight=preset.statistics_reward_weight if reward else 0.0,
            statistics_reward_steps=100 if name == "small_statistics_reward_runs" else 0,
            autoregressive_head="_autoregressive" in name, tones_per_step=3 if gan3 else 1)
        rng = np.random.default_rng(0)
        songs = [np.stack([rng.choice([96.0, 192.0, 384.0, 768.0], 200),
                           440.0 * 2 ** ((rng.integers(40, 90, 200) - 69) / 12),
                           rng.integers(40, 110, 200).astype(float),
                           rng.choice([0.0, 192.0, 384.0], 200)], axis=1) for _ in range(8)]
        songs = [codec.pack_tones(s, config.tones_per_step) for s in songs] if gan3 else songs
        gan = training.build_model(config, "gan")
        scaler = pipeline.FeatureScaler.fit(songs, "log")
        gan.generator.set_output_range(songs, scaler)
        training.set_statistics_reward_data(gan, config, songs, scaler)
        gan.window_length.assign(config.seq_len)
        gan.pretraining = name.endswith("_pretrain")
        small_real = tf.random.normal([config.batch_size, config.seq_len, config.num_features])
        step = tf.function(lambda: gan.train_step(small_real))
        return {"ms_per_step": _time(step, steps)}
    if name == "keras_reference":
        generator = keras.Sequential([keras.Input((None, 2 * F)),
                                      keras.layers.LSTM(U, return_sequences=True),
                                      keras.layers.LSTM(U, return_sequences=True),
                                      keras.layers.Dense(F)])
        discriminator = keras.Sequential([
            keras.Input((None, F)),
            keras.layers.Bidirectional(keras.layers.LSTM(U, return_sequences=True)),
            keras.layers.Bidirectional(keras.layers.LSTM(U, return_sequences=True)),
            keras.layers.Dense(1, activation="sigmoid")])
        g_opt, d_opt = keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.05)

        @tf.function
        def step():
            noise = tf.random.uniform([B, T, 2 * F])
            with tf.GradientTape(persistent=True) as tape:
                fake = generator(noise)
                p_real = tf.reduce_mean(discriminator(real), axis=[1, 2])
                p_fake = tf.reduce_mean(discriminator(fake), axis=[1, 2])
                d_loss = -tf.reduce_mean(tf.math.log(p_real + 1e-7)
                                         + tf.math.log(1 - p_fake + 1e-7))
                g_loss = tf.reduce_mean(tf.math.log(1 - p_fake + 1e-7))
            d_opt.apply(tape.gradient(d_loss, discriminator.trainable_variables),
                        discriminator.trainable_variables)
            g_opt.apply(tape.gradient(g_loss, generator.trainable_variables),
                        generator.trainable_variables)

        return {"ms_per_step": _time(step, steps)}
    raise ValueError(f"unknown variant {name!r}")


def _run_subprocess(command) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        return {"error": (result.stderr or result.stdout).strip().splitlines()[-1:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_torch(python: str, steps: int) -> dict:
    command = [python, "-c", (
        "import resource, runpy, sys; sys.argv = ['peer', '--steps', '%d'];"
        "runpy.run_path(%r, run_name='__main__');"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)") % (steps, str(PEER))]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1:]}
    lines = result.stdout.strip().splitlines()
    ms = float(re.search(r"([\d.]+) ms/step", lines[-2]).group(1))
    return {"ms_per_step": ms, "peak_mb": float(lines[-1]), "version": lines[-2].split(":")[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--torch_python", default=str(ROOT / ".venv-torch" / "bin" / "python"))
    parser.add_argument("--only", help="Run only these variants (comma-separated).")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        result = run_variant(args.variant, args.steps)
        result["peak_mb"] = _peak_mb()
        print(json.dumps(result))
        return
    results = {}
    names = ("crnngan_block", "crnngan_block@tf_threads", "crnngan_keras", "keras_reference",
             "keras_reference@tf_threads", "pretrain_block", "small_straight_through",
             "small_score_function", "small_statistics_reward",
             "small_statistics_reward_runs", "small_statistics_reward_autoregressive",
             "small_gan3", "small_gan3_autoregressive", "small_gan3_pretrain",
             "small_gan3_autoregressive_pretrain")
    only = set(args.only.split(",")) if args.only else None
    for name in names:
        if only is None or name in only:
            results[name] = _run_subprocess(
                [sys.executable, __file__, "--variant", name, "--steps", str(args.steps)])
            print(name, results[name], flush=True)
    if only is None or "torch_peer" in only:
        if pathlib.Path(args.torch_python).exists() and PEER.exists():
            results["torch_peer"] = run_torch(args.torch_python, args.steps)
        else:
            results["torch_peer"] = {"error": f"no torch Python at {args.torch_python}"}
    print(f"\nOne adversarial step, batch {B}, {T} steps, {U} units (small_*: the small "
          f"preset's 16, 32 and 128), on {os.cpu_count()} cores:")
    print(f"{'variant':<40}{'ms/step':>10}{'peak MB':>10}")
    for name, result in results.items():
        if "error" in result:
            print(f"{name:<40}  unavailable: {result['error']}")
        else:
            print(f"{name:<40}{result['ms_per_step']:>10.0f}{result['peak_mb']:>10.0f}")
    ours = results.get("crnngan_block", {}).get("ms_per_step")
    for other in ("crnngan_block@tf_threads", "crnngan_keras", "keras_reference",
                  "keras_reference@tf_threads", "torch_peer"):
        theirs = results.get(other, {}).get("ms_per_step")
        if ours and theirs:
            print(f"speed-up of crnngan_block over {other}: {theirs / ours:.2f}x")
    if "steps_per_second" in results.get("pretrain_block", {}):
        print(f"pretraining: {results['pretrain_block']['steps_per_second']:.2f} steps/s")
    straight = results.get("small_straight_through", {}).get("ms_per_step")
    score = results.get("small_score_function", {}).get("ms_per_step")
    if straight and score:
        print(f"small preset's adversarial step: score function {straight / score:.2f}x the "
              "speed of straight-through")
    reward = results.get("small_statistics_reward", {}).get("ms_per_step")
    if score and reward:
        print(f"the statistics reward costs the score-function step {reward / score:.2f}x its "
              "time")
    runs = results.get("small_statistics_reward_runs", {}).get("ms_per_step")
    if reward and runs:
        print(f"the statistics reward over 100-step runs: {runs / reward:.2f}x the time of the "
              "step that measures the 32-step windows")
    ordered = results.get("small_statistics_reward_autoregressive", {}).get("ms_per_step")
    if reward and ordered:
        print(f"the autoregressive head costs the preset's adversarial step "
              f"{ordered / reward:.2f}x its time")
    for phase in ("", "_pretrain"):
        independent = results.get(f"small_gan3{phase}", {}).get("ms_per_step")
        ordered = results.get(f"small_gan3_autoregressive{phase}", {}).get("ms_per_step")
        if independent and ordered:
            print(f"C-RNN-GAN-3's {'pretraining' if phase else 'adversarial'} step: drawing in "
                  f"order costs {ordered / independent:.2f}x the independent draws' time")


if __name__ == "__main__":
    main()
