"""s3:// model_dir and data_dir against a local S3-compatible server (moto) on 127.0.0.1.

tensorflow-io's S3 file system reads its endpoint and credentials from the environment;
train.py runs in a subprocess with them. (tensorflow-io 0.37.1's S3 file system aborts at
interpreter exit, tensorflow/io#2039; train.py therefore leaves with os._exit after a remote
run, and the test requires exit status 0.)
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests import midi_fixtures

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUCKET = "crnn-gan-test"
pytestmark = pytest.mark.pinned_stack


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """(boto3 client, environment for tensorflow-io) of a fresh moto server and bucket."""
    # The test extra installs moto (and boto3); tensorflow-io is part of the pinned stack.
    import boto3
    import tensorflow_io  # noqa: F401
    from moto import server as moto_server
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1", "S3_ENDPOINT": endpoint, "S3_USE_HTTPS": "0",
           "S3_VERIFY_SSL": "0",
           # Never ask the EC2 metadata service (169.254.169.254) for credentials/region.
           "AWS_EC2_METADATA_DISABLED": "true",
           "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=BUCKET)
    try:
        yield client, env
    finally:
        server.stop()


def _keys(client, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _history_epochs(client) -> list[int]:
    try:
        body = client.get_object(Bucket=BUCKET, Key="run/history.csv")["Body"].read().decode()
    except client.exceptions.NoSuchKey:
        return []
    return [int(line.split(",")[0]) for line in body.strip().splitlines()[1:]]


def _epochs_done(client) -> int:
    """Committed epochs: progress.json, written once an epoch's outputs and backup are."""
    try:
        body = client.get_object(Bucket=BUCKET, Key="run/progress.json")["Body"].read()
    except client.exceptions.NoSuchKey:
        return 0
    return json.loads(body)["epochs_done"]


def _assert_finished(returncode: int, stdout: str, stderr: str) -> None:
    """train.py finished and exited 0 (it leaves with os._exit after remote runs)."""
    assert "Done: s3://" in stdout, stdout[-3000:] + stderr[-3000:]
    assert returncode == 0, stdout[-3000:] + stderr[-3000:]


def _command(manual_dir, epochs: int) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), "--preset=tiny", f"--epochs={epochs}",
            "--dataset=crnn_gan_midi/manual", f"--manual_dir={manual_dir}",
            f"--data_dir=s3://{BUCKET}/data", f"--model_dir=s3://{BUCKET}/run",
            "--samples_per_epoch=1", "--windows_per_song=64"]


@pytest.mark.slow
def test_a_run_on_s3_writes_its_outputs_there_and_a_second_run_resumes(s3, tmp_path):
    client, env = s3
    manual_dir = tmp_path / "midi"
    midi_fixtures.write_corpus(manual_dir, midi_fixtures.sources_covering_splits(
        per_split=(6, 1, 1)))
    # Run 1 (20 epochs, far more than it gets): stopped by SIGKILL once epoch 2 is committed
    # in the bucket (progress.json, after its samples, checkpoints, TensorBoard, history.csv
    # and backup).
    process = subprocess.Popen(_command(manual_dir, 20), cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.time() + 150
        while time.time() < deadline and process.poll() is None:
            if _epochs_done(client) >= 2:
                break
            time.sleep(0.1)
        assert process.poll() is None, process.stdout.read().decode()[-4000:]
        assert _epochs_done(client) >= 2, "epoch 2 never finished in time"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        first_output = process.stdout.read().decode()
    # The data was prepared into the bucket, and the run wrote there.
    data = _keys(client, "data/crnn_gan_midi/manual/1.0.0/")
    assert any("train.tfrecord" in key for key in data), data
    assert "data/crnn_gan_midi/manual/1.0.0/dataset_info.json" in data
    run = _keys(client, "run/")
    for key in ("run/config.json", "run/scaler.json", "run/real_statistics.json",
                "run/history.csv", "run/statistics.csv", "run/checkpoints/latest.weights.h5",
                "run/checkpoints/best.weights.h5", "run/samples/epoch_0001/sample_000.mid"):
        assert key in run, (key, run)
    assert any(k.startswith("run/logs/") and "events.out.tfevents" in k for k in run), run
    assert any(k.startswith("run/backup/") for k in run), run  # BackupAndRestore state
    assert "run/generator.weights.h5" not in run  # the run had not finished
    done = _epochs_done(client)
    assert done >= 2, (done, first_output[-3000:])

    # Run 2: two more epochs; resumes from the bucket's backup after the last committed one
    # (progress.json may lag the backup by the epoch whose commit the kill interrupted).
    total = done + 3
    result = subprocess.run(_command(manual_dir, total), cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=240)
    _assert_finished(result.returncode, result.stdout, result.stderr)
    output = result.stdout + result.stderr
    first = int(re.search(rf"^Epoch (\d+)/{total}$", output, re.MULTILINE).group(1))
    assert first - 1 in (done, done + 1), output[-3000:]
    assert f"Epoch 1/{total}" not in output
    assert "Reusing dataset" in output or "Load dataset info from s3://" in output
    assert _history_epochs(client) == list(range(total))  # every epoch once
    run = _keys(client, "run/")
    assert "run/generator.weights.h5" in run
    assert f"run/samples/epoch_{total:04d}/sample_000.mid" in run
    assert not any(".partial" in k for k in run)  # every write renamed into place
    assert any(k.startswith("run/backup/") for k in run)  # kept, to train on later
    assert _epochs_done(client) == total

    # Run 3: the same command on the finished run says so and writes nothing.
    before = {k: client.head_object(Bucket=BUCKET, Key=k)["ETag"] for k in run}
    result = subprocess.run(_command(manual_dir, total), cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=240)
    _assert_finished(result.returncode, result.stdout, result.stderr)
    assert f"has finished: {total} epochs trained" in result.stdout
    assert {k: client.head_object(Bucket=BUCKET, Key=k)["ETag"]
            for k in _keys(client, "run/")} == before
