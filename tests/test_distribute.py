"""Distribution: MirroredStrategy equals the default strategy and resumes exactly; URL schemes
fail early."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from crnn_gan import distribute

ROOT = pathlib.Path(__file__).resolve().parents[1]


# The MirroredStrategy check runs in a subprocess of about a minute and a half (11 cases;
# those of one config share their models and, within a phase, their traced steps): `slow`,
# so the newest-stack subset skips it (pytest.ini: slow).
@pytest.fixture(scope="module")
def mirrored_report():
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "mirrored_check.py"),
                             str(ROOT)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# Largest weight difference allowed between the mirrored and the default step.
BOUND = 1e-5


SCORE_FUNCTION_CASES = ("score_function", "score_function_per_step", "statistics_reward",
                        "statistics_reward_steps", "prior_kl")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["both", "d_frozen", "g_frozen", "pretrain",
                                  *SCORE_FUNCTION_CASES, "discriminator_pretraining",
                                  "generator_average"])
def test_mirrored_step_equals_default_strategy(mirrored_report, case):
    assert mirrored_report["replicas"] == 2
    report = mirrored_report[case]
    assert report["max_weight_diff"] < BOUND
    for name in ("d_frozen", "g_frozen"):  # the same freezing decision
        assert report["logs_multi"][name] == report["logs_single"][name]
    if case.startswith("statistics_reward"):  # on, from the global batch's statistics
        assert report["logs_single"]["g_statistics_gap"] > 0
        assert report["logs_multi"]["g_statistics_gap"] == pytest.approx(
            report["logs_single"]["g_statistics_gap"], rel=1e-5)
    if case == "prior_kl":  # on, averaged over both replicas' draws
        assert report["logs_single"]["g_prior_kl"] > 0
        assert report["logs_multi"]["g_prior_kl"] == pytest.approx(
            report["logs_single"]["g_prior_kl"], rel=1e-5)
    assert report["previous_losses_multi"] == pytest.approx(report["previous_losses_single"],
                                                            abs=1e-5)
    expected_d = case in ("both", "g_frozen", *SCORE_FUNCTION_CASES,
                          "discriminator_pretraining", "generator_average")
    expected_g = case in ("both", "d_frozen", "pretrain", *SCORE_FUNCTION_CASES,
                          "generator_average")
    assert report["d_weights_changed"] == expected_d  # a frozen side stays exactly still
    assert report["g_weights_changed"] == expected_g
    # The step moves each updated player by far more than the bound, so a step that went
    # wrong under the strategy would exceed it.
    for player, moves in (("d", expected_d), ("g", expected_g)):
        update = report[f"max_{player}_update"]
        if moves:
            assert update > 100 * BOUND, f"the step moved {player} by at most {update}"
        else:
            assert update == 0.0


@pytest.mark.slow
def test_each_replica_draws_its_own_noise(mirrored_report):
    assert mirrored_report["noise_replicas_differ"]
    assert mirrored_report["noise_is_global_batch_slices"]


@pytest.mark.slow
def test_a_mirrored_run_trained_on_from_its_backup_ends_as_a_straight_one(tmp_path):
    """`--strategy=mirrored` over 2 logical CPUs: 3 epochs straight against 2, then trained
    on to 3 (the README's resume paragraph); the three runs share one process, hence one
    strategy (`distribute.make_strategy`)."""
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "mirrored_run.py"),
                             str(ROOT), str(tmp_path), str(tmp_path / "weights")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    def weights(name):
        with np.load(tmp_path / f"weights_{name}.npz") as saved:
            return [saved[f"arr_{i}"] for i in range(len(saved.files))]

    straight, after_two, resumed = (weights(n) for n in ("straight", "after_two", "resumed"))
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(after_two, resumed))


def test_a_strategy_is_made_once_per_process():
    assert distribute.make_strategy("mirrored") is distribute.make_strategy("mirrored")
    assert distribute.make_strategy("default") is tf.distribute.get_strategy()
    with pytest.raises(ValueError, match="strategy must be one of"):
        distribute.make_strategy("nccl")


def test_unregistered_url_scheme_fails_early_naming_scheme_and_fix():
    with pytest.raises(ValueError, match=r"--model_dir=nosuch://b/run.*'nosuch://'"):
        distribute.check_filesystem("nosuch://b/run", "--model_dir")
    distribute.check_filesystem("/tmp/run", "--model_dir")  # local paths pass
    distribute.check_filesystem("gs://bucket/run", "--model_dir")  # built into TensorFlow


def test_s3_needs_tensorflow_io():
    try:
        import tensorflow_io  # noqa: F401
        loads = "s3" in __import__("tensorflow").io.gfile.get_registered_schemes()
    except Exception:  # noqa: BLE001 - not installed / not loadable (newest stack)
        loads = False
    if loads:
        distribute.check_filesystem("s3://bucket/run", "--model_dir")
    else:
        with pytest.raises(ValueError, match="s3://.*tensorflow-io"):
            distribute.check_filesystem("s3://bucket/run", "--model_dir")


def test_worker_index_from_tf_config(monkeypatch):
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": 1}}))
    assert distribute.worker_index() == (False, 1)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": 0}}))
    assert distribute.worker_index() == (True, 0)
    with pytest.raises(ValueError, match="strategy must be one of"):
        distribute.make_strategy("nope")


_THREADS_CHECK = """
import json, sys
sys.path.insert(0, {root!r})
import tensorflow as tf
from crnn_gan import distribute
result = {{"set": distribute.configure_cpu_threads({intra}, {inter})}}
tf.constant(1.0) + 1.0  # TensorFlow runs from here on
result["intra"] = tf.config.threading.get_intra_op_parallelism_threads()
result["inter"] = tf.config.threading.get_inter_op_parallelism_threads()
try:
    distribute.configure_cpu_threads(2, 2)
except ValueError as error:
    result["late"] = str(error)
print(json.dumps(result))
"""


_AUTO = (1, 0) if len(os.sched_getaffinity(0)) <= 4 else (0, 0)  # no GPU in the tests


@pytest.mark.parametrize("intra, inter, expected", [
    (-1, 0, _AUTO),
    (0, 0, (0, 0)),  # TensorFlow's defaults
    (2, 1, (2, 1)),
])
def test_cpu_threads_are_set_before_tensorflow_runs(intra, inter, expected):
    code = _THREADS_CHECK.format(root=str(ROOT), intra=intra, inter=inter)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert tuple(report["set"]) == expected
    assert (report["intra"], report["inter"]) == expected
    assert "before TensorFlow runs" in report["late"]


def test_cpu_threads_reject_negative_counts():
    with pytest.raises(ValueError, match="intra_op=-2"):
        distribute.configure_cpu_threads(-2, 0)
