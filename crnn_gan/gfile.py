"""Whole-file reads and writes on any `tf.io.gfile` path (local, gs://, s3://, ...).

The package's one set of these helpers: text is read and written as str (UTF-8), bytes as
bytes; a write replaces the file. Errors are TensorFlow's (`tf.errors.OpError`, e.g.
`NotFoundError`). For a write that a kill must not leave half done, see
`crnn_gan.run_dir.write_text_atomic`.
"""

from __future__ import annotations

import tensorflow as tf


def read_text(path: str) -> str:
    """The whole file at `path` as text."""
    with tf.io.gfile.GFile(path, "r") as f:
        return f.read()


def read_bytes(path: str) -> bytes:
    """The whole file at `path` as bytes."""
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def write_text(path: str, text: str) -> None:
    """Writes `text` to `path`, replacing the file."""
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(text)


def write_bytes(path: str, data: bytes) -> None:
    """Writes `data` to `path`, replacing the file."""
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)
