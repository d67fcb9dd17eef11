"""The quality protocol: every measure of one generated set against real windows
(`evaluate_set`) and the protocol's targets over seeds (`check_targets`), as
``benchmarks/bench_quality.py`` runs them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from crnn_gan import metrics
from crnn_gan.quality.discriminative import DiscriminatorSpec, discriminative_score
from crnn_gan.quality.distances import diversity, overlaps
from crnn_gan.quality.features import DIVERSITY_FEATURES, FEATURES
from crnn_gan.quality.steps import as_steps
from crnn_gan.quality.validity import tone_validity

#: Bumped whenever a measure changes, so that cached measurements are not reused.
PROTOCOL_VERSION = 1
#: ``gan_vs_baseline/statistics``: the GAN closer to real than the baseline on at least
#: this many of the six statistics (`real_ceiling`'s ``at_least_5``).
CLOSER_TARGET = 5


def song_statistics(songs: Sequence[np.ndarray]) -> list[dict]:
    """``metrics.all_statistics`` of each song ``[T, k, 4]`` (`as_steps`; a step's tones
    packed in one row), as every measure of the protocol computes them."""
    return [metrics.all_statistics(np.asarray(s).reshape(len(s), -1)) for s in songs]


def _summary(stats: Sequence[Mapping]) -> dict[str, dict[str, float]]:
    return {name: {"mean": mean, "std": std}
            for name, (mean, std) in metrics.summarise(stats).items()}


def real_summary(real_stats: Sequence[Mapping], generated_length: float
                 ) -> dict[str, dict[str, float]]:
    """Mean and std of the real windows' statistics, repetitions normalised to the
    generated length as ``crnn_gan.evaluation`` does (each window's count times
    ``l_g / l_r``; ``metrics.normalise_real_repetitions``).

    Args:
        real_stats: ``metrics.all_statistics`` of each real window.
        generated_length: ``l_g``, the mean number of present tones of the generated
            songs (the window length when they have none).
    """
    summary = _summary(real_stats)
    values = [metrics.normalise_real_repetitions(s["repetitions"], s["num_tones"],
                                                 generated_length)
              if s["num_tones"] else 0.0 for s in real_stats]
    summary["repetitions_raw"] = summary["repetitions"]
    summary["repetitions"] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    return summary


def statistics_summary(generated_stats: Sequence[Mapping], real_stats: Sequence[Mapping],
                       steps: int) -> dict[str, dict]:
    """`evaluate_set`'s ``statistics``: the ``generated`` summary of `song_statistics` of
    songs of `steps` steps, and the ``real`` one (`real_summary`, repetitions normalised to
    the songs' mean number of present tones, or to `steps` when they have none)."""
    generated = _summary(generated_stats)
    length = generated["num_tones"]["mean"] or float(steps)
    return {"generated": generated, "real": real_summary(real_stats, length)}


def protocol_songs(signature, *, num_songs: int, steps: int, noise_seed: int) -> np.ndarray:
    """The protocol's songs of one generator: uniform [0, 1) noise ``[num_songs, steps,
    noise_dim]`` from ``numpy.random.default_rng(noise_seed)``, through the exported
    SavedModel's ``serving_default`` signature (`signature`, loaded by the caller).

    Returns:
        the raw ``tones`` output, float ``[num_songs, steps, k, 4]``.
    """
    import tensorflow as tf

    noise_dim = int(signature.structured_input_signature[1]["noise"].shape[-1])
    noise = np.random.default_rng(noise_seed).uniform(
        size=(num_songs, steps, noise_dim)).astype(np.float32)
    return np.asarray(signature(noise=tf.constant(noise))["tones"])


def evaluate_set(generated: ArrayLike, real: ArrayLike, *, seed: int = 0,
                 spec: DiscriminatorSpec = DiscriminatorSpec(),
                 real_stats: Sequence[Mapping] | None = None,
                 discriminator: bool = True) -> dict:
    """Every measure of one generated set against real windows of the same format.

    Args:
        generated: float ``[N, T, k, 4]`` raw outputs (N >= 2).
        real: float ``[R, T, 4 * k]`` (or ``[R, T, k, 4]``) real windows in the same
            packed format; the statistics, diversity and overlaps use all of them, the
            classifier a balanced subset.
        seed: seeds the discriminative score.
        spec: the classifier.
        real_stats: precomputed ``metrics.all_statistics`` of the real windows (optional,
            saves time when several sets share the same windows).
        discriminator: False skips the discriminative score (``None`` in the result).

    Returns:
        ``validity`` (`tone_validity`), ``statistics`` (``generated`` and ``real``
        summaries: mean and population std over songs/windows of the six statistics and
        ``num_tones``; real repetitions normalised, ``repetitions_raw`` too),
        ``diversity`` (`diversity`), ``overlap`` (`overlaps`), ``discriminative``
        (`discriminative_score`), ``songs``, ``steps``, ``tones_per_step``,
        ``real_windows``.
    """
    gen = as_steps(generated)
    ref = as_steps(real, tones_per_step=gen.shape[2])
    if ref.shape[1] != gen.shape[1]:
        raise ValueError(f"real windows have {ref.shape[1]} steps, generated songs "
                         f"{gen.shape[1]}")
    real_stats = list(real_stats) if real_stats is not None else song_statistics(ref)
    return {
        "songs": int(gen.shape[0]), "steps": int(gen.shape[1]),
        "tones_per_step": int(gen.shape[2]), "real_windows": int(ref.shape[0]),
        "validity": tone_validity(gen),
        "statistics": statistics_summary(song_statistics(gen), real_stats, gen.shape[1]),
        "diversity": diversity(gen, ref),
        "overlap": overlaps(gen, ref),
        "discriminative": (discriminative_score(ref, gen, seed=seed, spec=spec)
                           if discriminator else None),
    }


# --------------------------------------------------------------------------------------
# Targets.
# --------------------------------------------------------------------------------------

def _target(name: str, description: str, op: str, threshold: float,
            values: Mapping[str, float | None], note: str | None = None) -> dict:
    """One target: ``values`` (per seed, or one ``"all"`` value) against ``threshold``.

    ``met`` is True only when every value exists, is finite and passes ``op``; None when
    there is no value at all (not evaluated).
    """
    ops = {">=": np.greater_equal, "<=": np.less_equal, "<": np.less, ">": np.greater}
    met_per_seed = {}
    for key, value in values.items():
        ok = value is not None and np.isfinite(value) and bool(ops[op](value, threshold))
        met_per_seed[key] = bool(ok)
    entry = {"name": name, "description": description, "op": op, "threshold": threshold,
             "values": {k: (None if v is None or not np.isfinite(v) else float(v))
                        for k, v in values.items()},
             "met_per_seed": met_per_seed,
             "met": (all(met_per_seed.values()) if any(v is not None for v in values.values())
                     else None)}
    if note:
        entry["note"] = note
    return entry


def _stat(result: Mapping, side: str, name: str, key: str = "mean") -> float:
    return float(result["statistics"][side][name][key])


def statistic_gaps(result: Mapping) -> np.ndarray:
    """``|generated mean - real mean|`` of each statistic (``metrics.STATISTICS``, in that
    order) of an `evaluate_set` result: what `closer` compares."""
    return np.array([abs(_stat(result, "generated", n) - _stat(result, "real", n))
                     for n in metrics.STATISTICS])


def closer(gaps: ArrayLike, baseline_gaps: ArrayLike) -> np.ndarray:
    """Per statistic (last axis), whether a set's ``|mean - real mean|`` is strictly below
    the baseline's: a tie is not closer. The rule of `gan_vs_baseline/statistics`."""
    return np.asarray(gaps) < np.asarray(baseline_gaps)


def closer_count(gaps: ArrayLike, baseline_gaps: ArrayLike) -> int:
    """On how many statistics a set is `closer` to real than the baseline."""
    return int(np.sum(closer(gaps, baseline_gaps)))


def paired_closeness(pairs: Sequence[tuple[Mapping, Mapping]]) -> dict:
    """Per statistic, seed by seed: how much closer to real music a set's mean is than its
    baseline's. `closer_count` asks "on how many statistics, in this seed"; this asks
    "which statistics, and by more than the seeds' spread".

    Args:
        pairs: one ``(set, baseline)`` pair of `evaluate_set` results per seed, each pair
            measured against the same real windows.

    Returns:
        ``{statistic: {"closer", "ties", "seeds", "reduction"}}`` for each of
        ``metrics.STATISTICS``: in how many seeds the set is `closer` (strictly) and tied,
        and `over_seeds` of ``(|baseline gap| - |set gap|) / real std`` (positive: the set
        is closer, in real windows' stds), with ``"sem"``, its std / sqrt(seeds).

    Raises:
        ValueError: no pairs, or a pair measured against other real means.
    """
    if not pairs:
        raise ValueError("paired_closeness needs at least one (set, baseline) pair")
    reductions, wins, ties = [], [], []
    for result, baseline in pairs:
        real = [_stat(result, "real", n) for n in metrics.STATISTICS]
        if not np.allclose(real, [_stat(baseline, "real", n) for n in metrics.STATISTICS]):
            raise ValueError("a set and its baseline were measured against other real windows")
        gaps, baseline_gaps = statistic_gaps(result), statistic_gaps(baseline)
        stds = np.array([_stat(result, "real", n, "std") for n in metrics.STATISTICS])
        reductions.append((baseline_gaps - gaps) / stds)
        wins.append(closer(gaps, baseline_gaps))
        ties.append(gaps == baseline_gaps)
    out = {}
    for i, name in enumerate(metrics.STATISTICS):
        reduction = over_seeds([r[i] for r in reductions])
        reduction["sem"] = reduction["std"] / np.sqrt(len(pairs))
        out[name] = {"closer": int(sum(w[i] for w in wins)),
                     "ties": int(sum(t[i] for t in ties)), "seeds": len(pairs),
                     "reduction": reduction}
    return out


def real_ceiling(real_window_stats: Sequence[Mapping], baseline: Mapping, *, set_size: int,
                 draws: int = 1000, seed: int = 0) -> dict:
    """What real music scores on ``gan_vs_baseline/statistics``: sets of `set_size` real
    windows (of another split than the protocol's, drawn with replacement from
    `real_window_stats`) as if they were a generator's songs, against one baseline run.

    The target compares 64-song means, each with its own sampling error; where the
    baseline's mean is already within that error of the real one, no generator, real music
    included, is closer on every draw. This measures how often real music is.

    Args:
        real_window_stats: ``metrics.all_statistics`` of many real windows (as long as
            the generated songs: repetitions are compared unnormalised).
        baseline: the baseline run's `evaluate_set` result (its means and the real means
            it was compared with).
        set_size: windows per set (the protocol's songs per run).
        draws: sets drawn.
        seed: seeds the draws.

    Returns:
        ``closer_mean`` (mean count of the six), ``at_least_5`` (fraction of sets closer
        on >= 5), ``per_statistic`` (fraction of sets closer on each), ``draws``,
        ``set_size``.
    """
    values = np.array([[s[n] for n in metrics.STATISTICS] for s in real_window_stats], float)
    real = np.array([_stat(baseline, "real", n) for n in metrics.STATISTICS])
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(values), size=(draws, set_size))
    wins = closer(np.abs(values[picks].mean(axis=1) - real), statistic_gaps(baseline))  # [draws, 6]
    counts = wins.sum(axis=1)
    return {"closer_mean": float(counts.mean()),
            "at_least_5": float(np.mean(counts >= CLOSER_TARGET)),
            "per_statistic": dict(zip(metrics.STATISTICS, wins.mean(axis=0).tolist())),
            "draws": draws, "set_size": set_size}


def over_seeds(values: Sequence[float | None]) -> dict | None:
    """The protocol's one aggregation over seeds: mean and std (ddof=1) of per-seed numbers.

    Args:
        values: one number per seed; ``None`` (not measured in that seed) is left out.

    Returns:
        ``{"mean", "std", "values"}`` (``std`` 0.0 for a single value), or ``None`` when no
        value is left.
    """
    kept = [float(v) for v in values if v is not None]
    if not kept:
        return None
    return {"mean": float(np.mean(kept)),
            "std": float(np.std(kept, ddof=1)) if len(kept) > 1 else 0.0,
            "values": kept}


def check_targets(results: Mapping[str, Mapping[str, Mapping]], *,
                  gan: str = "gan", baseline: str = "baseline", gan3: str = "gan3"
                  ) -> list[dict]:
    """The protocol's targets, each checked in every seed.

    Args:
        results: ``model -> seed (str) -> evaluate_set result``. Models that are missing
            leave their targets out (or ``met: None`` when a comparison lacks a partner).

    Returns:
        One dict per target: ``name``, ``description``, ``op``, ``threshold``, ``values``
        (per seed; ``"all"`` for the seed spread), ``met_per_seed`` and ``met`` (True only
        if met in every seed). Targets:

        * ``valid_tones/<gan|gan3>``: valid fraction of the raw outputs >= 0.99.
        * ``scale_consistency/gan``: mean over songs >= 0.85.
        * ``tone_span/gan``, ``unique_tones/gan``: ``|gen mean - real mean| / real std``
          <= 1 (within one std of real windows).
        * ``gan_vs_baseline/statistics``: number of the six statistics on which the GAN's
          mean is strictly closer to the real mean than the baseline's (same seed) >= 5.
        * ``gan_vs_baseline/discriminative``: GAN's score minus the baseline's < 0.
        * ``polyphony/gan3``: ``|gen - real|`` <= 0.1.
        * ``discriminative_score/gan``: < 0.35.
        * ``seed_spread/<statistic>/gan``: std over seeds (ddof=1) of the per-seed means,
          divided by the real std (mean over seeds of each seed's real std), <= 0.5.
          Needs >= 2 seeds.
        * ``diversity/<pitch_class|pitch_range|ioi>/gan``: generated / real mean pairwise
          distance >= 0.7.
    """
    out = []
    g, b, g3 = results.get(gan), results.get(baseline), results.get(gan3)
    for model, label in ((gan, "GAN"), (gan3, "GAN-3")):
        if results.get(model):
            out.append(_target(
                f"valid_tones/{model}", f"{label}: valid tones of the raw outputs >= 99 %",
                ">=", 0.99, {s: r["validity"]["valid_fraction"]
                             for s, r in results[model].items()}))
    if g:
        out.append(_target("scale_consistency/gan", "GAN: scale consistency >= 0.85", ">=",
                           0.85, {s: _stat(r, "generated", "scale_consistency")
                                  for s, r in g.items()}))
        for name in ("tone_span", "unique_tones"):
            values = {}
            for s, r in g.items():
                real_std = _stat(r, "real", name, "std")
                gap = abs(_stat(r, "generated", name) - _stat(r, "real", name))
                values[s] = gap / real_std if real_std > 0 else (0.0 if gap == 0 else None)
            out.append(_target(f"{name}/gan", f"GAN: {name.replace('_', ' ')} within one "
                               f"std of real windows (|gen - real| / real std)", "<=", 1.0,
                               values))
    if g:
        closer, disc = {}, {}
        for s, r in g.items():
            rb = (b or {}).get(s)
            if rb is None:
                closer[s] = disc[s] = None
                continue
            closer[s] = closer_count(statistic_gaps(r), statistic_gaps(rb))
            if r.get("discriminative") and rb.get("discriminative"):
                disc[s] = r["discriminative"]["score"] - rb["discriminative"]["score"]
            else:
                disc[s] = None
        note = None if b else "no baseline run"
        out.append(_target("gan_vs_baseline/statistics",
                           "GAN closer to real than the baseline (same seed) on at least 5 "
                           "of the 6 statistics", ">=", CLOSER_TARGET, closer, note))
        out.append(_target("gan_vs_baseline/discriminative",
                           "GAN's discriminative score minus the baseline's (same seed) < 0",
                           "<", 0.0, disc, note))
    if g3:
        out.append(_target("polyphony/gan3", "GAN-3: polyphony within 0.1 of real (|gen - "
                           "real|)", "<=", 0.1,
                           {s: abs(_stat(r, "generated", "polyphony")
                                   - _stat(r, "real", "polyphony")) for s, r in g3.items()}))
    if g:
        out.append(_target("discriminative_score/gan", "GAN: discriminative score < 0.35",
                           "<", 0.35, {s: (r["discriminative"] or {}).get("score")
                                       for s, r in g.items()}))
        for name in metrics.STATISTICS:
            means = [_stat(r, "generated", name) for r in g.values()]
            real_std = float(np.mean([_stat(r, "real", name, "std") for r in g.values()]))
            if len(means) < 2:
                value, note = None, "needs at least 2 seeds"
            else:
                spread = over_seeds(means)["std"]
                value = spread / real_std if real_std > 0 else (0.0 if spread == 0 else None)
                note = None
            entry = _target(f"seed_spread/{name}/gan",
                            f"GAN: std over seeds of the mean {name.replace('_', ' ')} / real "
                            f"std <= 0.5", "<=", 0.5, {"all": value}, note)
            entry["per_seed_means"] = dict(zip(g.keys(), means))
            out.append(entry)
        for feature in DIVERSITY_FEATURES:
            out.append(_target(
                f"diversity/{feature}/gan",
                f"GAN: mean pairwise {FEATURES[feature]} >= 0.7x the real windows'",
                ">=", 0.7, {s: r["diversity"][feature]["ratio"] for s, r in g.items()}))
    return out
