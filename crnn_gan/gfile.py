"""Whole-file reads and writes on any `tf.io.gfile` path (local, gs://, s3://, ...).

The package's one set of these helpers: text is read and written as str (UTF-8), bytes as
bytes; a write replaces the file. Errors are TensorFlow's (`tf.errors.OpError`, e.g.
`NotFoundError`). For a write that a kill must not leave half done, see
`crnn_gan.run_dir.write_text_atomic`. `make_folder` is the one rule for an output folder
that a flag names (the dataset package, `tfds_midi`, which does not import this one, keeps
its own for ``--data_dir``).
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


def file_in_place_of_folder(path: str, flag: str, give: str = "a folder") -> str | None:
    """``"{flag}={path} is a file: give {give}"`` when `path` is a file, else None (nothing
    is made: for a check before anything is loaded; `make_folder` runs it too)."""
    if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path):
        return f"{flag}={path} is a file: give {give}"
    return None


def make_folder(path: str, flag: str, give: str = "a folder") -> str | None:
    """Makes the folder `path` and its parents, unless it is there already.

    Args:
        path: the folder (any `tf.io.gfile` path).
        flag: the flag that named it, e.g. ``"--output_dir"``; the problem names it.
        give: what the user should give instead of a file, e.g. ``"a folder for the export"``.

    Returns:
        None when the folder exists afterwards; otherwise the problem in one line,
        ``"{flag}={path} is a file: give {give}"`` or ``"{flag}={path} cannot be made: ..."``.
    """
    problem = file_in_place_of_folder(path, flag, give)
    if problem:
        return problem
    try:
        tf.io.gfile.makedirs(path)
    except tf.errors.OpError as error:
        return f"{flag}={path} cannot be made: {error.message}"
    except OSError as error:  # a local path some filesystems report through Python's own errors
        return f"{flag}={path} cannot be made: {error.strerror or error}"
    return None
