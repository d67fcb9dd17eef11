"""Runs one entry point with several argument lists in one process (for test_entry_points).

    python tests/entry_point_runner.py ENTRY ARGS_JSON

ENTRY: a script path relative to the repository (``train.py``, ``evaluate.py``,
``export/generate_tflite.py``, ...) or ``-m MODULE`` (``-m export``, ``-m tfds_midi``).
ARGS_JSON: a JSON list of argument lists. Each one runs the entry point afresh as
``__main__`` (its file executed again, absl flags it defined removed afterwards), as
``python ENTRY ARGS...`` would: only the imports it shares with the previous runs (TensorFlow,
...) are reused. Its file descriptors 1 and 2 are captured (TensorFlow's C++ logs too), and an
uncaught exception is printed as Python prints it ("Traceback ...", status 1).

Prints one JSON list on its last line: ``[{"status": int, "stdout": str, "stderr": str}, ...]``.
"""

from __future__ import annotations

import json
import os
import pathlib
import runpy
import sys
import tempfile
import traceback

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(entry: list[str], args: list[str]) -> int:
    from absl import flags

    before = set(flags.FLAGS)
    flags.FLAGS.unparse_flags()
    try:
        if entry[0] == "-m":
            sys.argv = [entry[1], *args]
            runpy.run_module(entry[1], run_name="__main__", alter_sys=True)
        else:
            path = str(ROOT / entry[0])
            sys.argv = [path, *args]
            runpy.run_path(path, run_name="__main__")
        return 0
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        print(exit_.code, file=sys.stderr)
        return 1
    except BaseException:  # what the interpreter would print for an uncaught exception
        traceback.print_exc()
        return 1
    finally:
        for name in set(flags.FLAGS) - before:
            delattr(flags.FLAGS, name)


def _captured(entry, args) -> dict:
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            status = _run(entry, args)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
        texts = []
        for f in (out, err):
            f.seek(0)
            texts.append(f.read().decode(errors="replace"))
    return {"status": status, "stdout": texts[0], "stderr": texts[1]}


def main() -> None:
    entry = sys.argv[1].split(" ")
    rows = json.loads(sys.argv[2])
    sys.path.insert(0, str(ROOT))
    from absl import app

    app.define_help_flags()  # once, as app.run does on its first call
    results = [_captured(entry, args) for args in rows]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
