"""The quality protocol's runs on disk, for the benchmarks that measure them again
(`bench_temperature.py`, `bench_disc_aspects.py`, `bench_closer_by_split.py`):
``WORK/NAME/{model}_seedS/`` as `bench_quality.py` writes them (``run/``,
``quality_measure.json``, ``quality_generated.npy``) and the real windows in
``WORK/reference/``; how those benchmarks write their results (`write_json`); and the
results file they and the tables read (`read_results`: ``docs/quality.json``); the
GAN-against-baseline comparison seed by seed (`paired`, `paired_table`: the table of
`paired_table.py` and `bench_game_start.py`; `versus_baseline`: the ablation table's cell).
"""

from __future__ import annotations

import glob
import json
import os
import sys


class MissingRun(Exception):
    """A run, its measurement or its real windows are missing: one line, exit status 2."""


def run_or_report(program: str, work):
    """``(work(), 0)``, or ``(None, 2)`` after printing a `MissingRun` (or a subclass: bad
    flags) as one line naming `program` on stderr: how the benchmarks' `main` answers."""
    try:
        return work(), 0
    except MissingRun as error:
        print(f"{program}: {error}", file=sys.stderr)
        return None, 2


def runs(work_dir: str, name: str, model: str) -> list[tuple[int, str]]:
    """``(seed, run dir)`` of every ``WORK/NAME/{model}_seedS/run``, by seed."""
    pattern = os.path.join(work_dir, name, f"{model}_seed*", "run")
    found = sorted((int(path.split("_seed")[-1].split(os.sep)[0]), path)
                   for path in glob.glob(pattern))
    if not found:
        raise MissingRun(f"no runs match {pattern} (run bench_quality.py first)")
    return found


def generated_path(run_dir: str) -> str:
    """Where `bench_quality.py` saved the run's raw protocol songs (``[N, T, k, 4]`` .npy)."""
    return os.path.join(os.path.dirname(run_dir), "quality_generated.npy")


def measured_songs(run_dir: str) -> str:
    """`generated_path` of a run that must have been measured (else `MissingRun`)."""
    path = generated_path(run_dir)
    if not os.path.exists(path):
        raise MissingRun(f"{path} is missing: measure the run with bench_quality.py first")
    return path


def measure_key(run_dir: str) -> dict:
    """How the protocol measured this run (``quality_measure.json``'s key: the real
    windows' file name, the noise seed, the classifier ``disc`` and its ``disc_seed``)."""
    path = os.path.join(os.path.dirname(run_dir), "quality_measure.json")
    if not os.path.exists(path):
        raise MissingRun(f"{path} is missing: measure the run with bench_quality.py first")
    with open(path) as f:
        return json.load(f)["key"]


def measured_reference(work_dir: str, run_dir: str) -> str:
    """The real test windows (.npz) the protocol measured this run against (its measure
    key), in ``WORK/reference/``."""
    key = measure_key(run_dir)
    reference = os.path.join(work_dir, "reference", os.path.basename(key["reference"]))
    if not os.path.exists(reference):
        raise MissingRun(f"the real windows {reference} are missing")
    return reference


def common_reference(work_dir: str, run_dirs: list[str]) -> str:
    """The one set of real windows that every run of `run_dirs` was measured against."""
    references = {measured_reference(work_dir, run_dir) for run_dir in run_dirs}
    if len(references) != 1:
        raise MissingRun(f"the runs were measured against different windows: {references}")
    return references.pop()


def common_measurement(run_dirs: list[str]) -> dict:
    """How the protocol measured every run of `run_dirs` (the `measure_key` fields
    ``noise_seed``, ``disc``: `quality.DiscriminatorSpec`'s fields, and ``disc_seed``),
    which must be the same for all of them: the benches that measure the runs again use
    the protocol's own noise and classifier."""
    keys = {json.dumps({field: key[field] for field in ("noise_seed", "disc", "disc_seed")},
                       sort_keys=True)
            for key in map(measure_key, run_dirs)}
    if len(keys) != 1:
        raise MissingRun(f"the runs were measured with different noise or classifiers: "
                         f"{sorted(keys)}")
    return json.loads(keys.pop())


def read_results(path: str, names=(), flag: str = "--names") -> dict:
    """`bench_quality.py`'s results file (``docs/quality.json``, keyed by recipe name),
    which must hold every entry of `names` (`flag`: the flag that named them, for the
    error); else `MissingRun` naming ``--quality`` or `flag`."""
    try:
        with open(path) as f:
            results = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MissingRun(f"--quality={path}: cannot read it ({error})") from None
    if not isinstance(results, dict) or not results:
        raise MissingRun(f"--quality={path} holds no results of bench_quality.py (a JSON "
                         "object of recipe names, each with its runs)")
    missing = [name for name in names if name not in results]
    if missing:
        raise MissingRun(f"{flag}: {', '.join(missing)} not in {path} "
                         f"(it holds {sorted(results)})")
    for name in names or results:
        entry = results[name]
        if not (isinstance(entry, dict) and isinstance(entry.get("over_seeds"), dict)
                and isinstance(entry.get("runs"), dict)
                and all(isinstance(seeds, dict) and all(isinstance(run, dict)
                                                        for run in seeds.values())
                        for seeds in entry["runs"].values())):
            raise MissingRun(f"--quality={path}: {name} is not a result of bench_quality.py "
                             "(it needs runs per model and seed, and over_seeds)")
    return results


def print_table(text: str, markdown: str | None) -> None:
    """A table-making script's output: `text` in the file `markdown` (None: none), then on
    stdout; `MissingRun` naming ``--markdown`` where the file cannot be written."""
    if markdown:
        try:
            with open(markdown, "w") as f:
                f.write(text)
        except OSError as error:
            raise MissingRun(f"--markdown={markdown}: cannot write it ({error.strerror})") \
                from None
    print(text)


def write_json(path: str, value) -> None:
    """Writes a benchmark's result as `docs/*.json` holds them: indent 1, a final newline."""
    with open(path, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")


class TableError(MissingRun):
    """Bad flags or results: one line, exit status 2."""


def seed_runs(results: dict, names: list[str], model: str, flag: str) -> dict[str, dict]:
    """``{seed: run}`` of `model` over the entries `names` (named by `flag`; each seed in one
    entry only)."""
    runs, where = {}, {}
    for name in names:
        if name not in results:
            raise TableError(f"{flag}: {name} is not in the results (they hold "
                             f"{sorted(results)})")
        for seed, run in results[name].get("runs", {}).get(model, {}).items():
            if seed in runs:
                raise TableError(f"seed {seed} of {model} is in both {where[seed]} and {name}")
            runs[seed], where[seed] = run, name
    return runs


def baseline_entries(results: dict, name: str) -> list[str] | None:
    """The entries holding the baselines that entry `name`'s GAN runs are compared with:
    the entry itself where it ran the baseline; else its ``baselines_from`` (a GAN-only
    entry measured against another entry's baselines: the same baseline recipe and seeds,
    set when the entry was merged into ``docs/quality.json``); else None. `TableError`
    where ``baselines_from`` is not a list of entries of `results`."""
    entry = results[name]
    if entry.get("runs", {}).get("baseline"):
        return [name]
    named = entry.get("baselines_from")
    if named is None:
        return None
    if (not isinstance(named, list) or not named
            or not all(isinstance(n, str) and n in results for n in named)):
        raise TableError(f"{name}: baselines_from must list entries of the results, "
                         f"got {named!r}")
    return named


def versus_baseline(results: dict, name: str) -> str:
    """Entry `name`'s GAN against its baselines (`baseline_entries`) as one cell: each
    seed's number of statistics closer to real (the protocol's target: >= 5 of 6), then in
    how many seeds the discriminative score is below the baseline's; "–" where the entry
    has no GAN runs or no baselines."""
    others = baseline_entries(results, name)
    if not others or not results[name]["runs"].get("gan"):
        return "–"
    summary = paired(results, [name], others)
    return (", ".join(str(summary["per_seed"][s]["closer"]) for s in summary["seeds"])
            + f" ({summary['below']} of {len(summary['seeds'])})")


def paired(results: dict, names: list[str], baseline_names: list[str]) -> dict:
    """The seeds both sides hold, `quality.paired_closeness` of the GAN against the
    baseline over them, per seed the closer count and both discriminative scores, and in
    how many seeds the GAN's score is below the baseline's (``below``)."""
    from crnn_gan import quality

    runs = seed_runs(results, names, "gan", "--names")
    baselines = seed_runs(results, baseline_names, "baseline", "--baseline_names")
    seeds = sorted(set(runs) & set(baselines), key=int)
    if not seeds:
        raise TableError(f"no seed has both a GAN run in {names} and a baseline run in "
                         f"{baseline_names}")
    pairs = [(runs[s], baselines[s]) for s in seeds]
    try:
        per_statistic = quality.paired_closeness(pairs)
    except ValueError as error:
        raise TableError(str(error)) from None
    per_seed = {s: {"closer": quality.closer_count(quality.statistic_gaps(g),
                                                   quality.statistic_gaps(b)),
                    "discriminative": g["discriminative"]["score"],
                    "baseline_discriminative": b["discriminative"]["score"]}
                for s, (g, b) in zip(seeds, pairs)}
    below = sum(p["discriminative"] < p["baseline_discriminative"] for p in per_seed.values())
    return {"seeds": seeds, "per_statistic": per_statistic, "per_seed": per_seed,
            "below": below}


def paired_table(summary: dict) -> str:
    """`paired`'s summary as markdown: the per-statistic table, then each seed's count."""
    seeds = summary["seeds"]
    lines = [f"| statistic | GAN closer (of {len(seeds)} seeds) | ties | reduction of "
             "the gap to real, in real stds (mean ± std) | standard error |",
             "| --- | --- | --- | --- | --- |"]
    for name, row in summary["per_statistic"].items():
        reduction = row["reduction"]
        lines.append(f"| {name} | {row['closer']} | {row['ties']} | "
                     f"{reduction['mean']:+.3f} ± {reduction['std']:.3f} | "
                     f"{reduction['sem']:.3f} |")
    per_seed = summary["per_seed"]
    lines += ["", "Closer on, per seed (" + ", ".join(seeds) + "): "
              + ", ".join(str(per_seed[s]["closer"]) for s in seeds)
              + f"; discriminative score below the baseline's in {summary['below']} of "
              f"{len(seeds)}."]
    return "\n".join(lines) + "\n"
