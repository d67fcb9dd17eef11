"""TimeGAN's post-hoc discriminative score: how well a fresh small classifier tells real
windows from generated songs (``|accuracy - 0.5|`` on held-out folds).

Keras is imported by `discriminative_score` alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from crnn_gan.quality.steps import canonical_steps, present_slots
from tfds_midi import codec

_LENGTH, _FREQ, _VELOCITY, _DELTA = codec.LENGTH, codec.FREQUENCY, codec.VELOCITY, codec.DELTA


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


#: Names of the classifier's input features per tone slot.
CLASSIFIER_COLUMNS: tuple[str, ...] = (
    "slog_length", "slog_hz", "slog_velocity", "slog_delta", "midi_over_12",
    "hz_not_positive", "non_finite", "present")


#: The classifier's columns of each aspect of a tone (`discriminative_score`'s ``columns``):
#: which aspect, seen alone, tells generated songs from real windows.
ASPECT_COLUMNS: dict[str, tuple[str, ...]] = {
    "pitch": ("slog_hz", "midi_over_12", "hz_not_positive"),
    "rhythm": ("slog_length", "slog_delta"),
    "velocity": ("slog_velocity",),
}


def classifier_features(songs: ArrayLike) -> np.ndarray:
    """The fixed transform of the discriminative classifier's input; no clamp.

    Songs first go to `canonical_steps` (for ``k > 1``: absent slots zeroed, their deltas
    carried, as the format reads them). Then for every tone slot, with
    ``slog(x) = sign(x) log1p(|x|)``: slog of each raw column (length, Hz, velocity,
    delta), the MIDI number / 12 where ``hz > 0`` (else 0), an indicator of ``hz <= 0``,
    an indicator of a non-finite value in the slot (whose non-finite values become 0),
    and an indicator of a present slot (always 1 for ``k = 1``).

    Args:
        songs: float ``[N, T, k, 4]`` or ``[N, T, 4 * k]`` in raw units.

    Returns:
        float32 ``[N, T, 8 * k]``.
    """
    x = canonical_steps(songs)
    present = present_slots(x)
    finite = np.isfinite(x)
    non_finite = ~finite.all(axis=-1)
    x = np.where(finite, x, 0.0)
    number = codec.hz_to_fractional_pitch(x[..., _FREQ])  # NaN: hz <= 0
    columns = [
        _signed_log(x[..., _LENGTH]), _signed_log(x[..., _FREQ]),
        _signed_log(x[..., _VELOCITY]), _signed_log(x[..., _DELTA]),
        np.nan_to_num(number / 12.0, nan=0.0),
        ((x[..., _FREQ] <= 0) & present).astype(np.float64),
        non_finite.astype(np.float64), present.astype(np.float64),
    ]
    features = np.stack(columns, axis=-1)  # [N, T, k, 8]
    return features.reshape(*features.shape[:2], -1).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class DiscriminatorSpec:
    """The post-hoc classifier of `discriminative_score`.

    Attributes:
        units: GRU units (one layer), then one sigmoid unit.
        epochs: passes over each training part.
        batch_size: windows per step.
        learning_rate: Adam's.
        folds: stratified folds; every window is held out once.
    """

    units: int = 16
    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 5e-3
    folds: int = 4


def _restrict(x: np.ndarray, columns: Sequence[str] | None, shuffle_steps: bool,
              rng: np.random.Generator) -> np.ndarray:
    """`classifier_features` ``[N, T, 8 k]`` with the columns not in `columns` set to 0
    (in every slot) and, with `shuffle_steps`, each window's steps in a random order."""
    if columns is not None:
        keep = np.isin(CLASSIFIER_COLUMNS, columns)
        x = np.where(np.tile(keep, x.shape[-1] // len(CLASSIFIER_COLUMNS)), x, 0.0)
    if shuffle_steps:
        x = np.take_along_axis(x, np.argsort(rng.random(x.shape[:2]), axis=1)[..., None],
                               axis=1)
    return x.astype(np.float32)


def discriminative_score(real: ArrayLike, generated: ArrayLike, *, seed: int = 0,
                         spec: DiscriminatorSpec = DiscriminatorSpec(),
                         columns: Sequence[str] | None = None,
                         shuffle_steps: bool = False) -> dict:
    """TimeGAN's post-hoc discriminative score ``|accuracy - 0.5|`` (0 = indistinguishable,
    0.5 = trivially separable).

    The two sets are balanced (the larger is cut to the smaller's size by a seeded
    permutation), split into ``spec.folds`` stratified folds; for each fold a fresh
    classifier (``keras``: GRU(``spec.units``) -> Dense(1, sigmoid), Adam, binary
    cross-entropy) learns real (1) against generated (0) on the other folds and labels the
    held-out fold at 0.5. Inputs go through `classifier_features`, then are standardised
    with the training part's per-column mean and std. ``accuracy`` is over every held-out
    window. Seeded: ``keras.utils.set_random_seed(seed + fold)``.

    Args:
        real: float ``[R, T, k, 4]`` / ``[R, T, 4 * k]`` real windows, raw units.
        generated: float ``[G, T, k, 4]`` / ``[G, T, 4 * k]`` generated songs, same T, k.
        seed: seeds the permutation, the folds and the classifiers.
        spec: the classifier.
        columns: a diagnostic, not the protocol's score: names of `CLASSIFIER_COLUMNS`
            (e.g. an aspect of `ASPECT_COLUMNS`) that the classifier sees; the others are
            0 in both sets. None: every column.
        shuffle_steps: a diagnostic too: each window's steps in a random order (seeded), so
            that only the bag of tones is left, no sequence.

    Returns:
        ``score``, ``accuracy``, ``fold_accuracies``, ``per_class`` (``real``,
        ``generated`` accuracies), ``windows_per_class``, ``spec``; and ``columns`` /
        ``shuffle_steps`` when given.

    Raises:
        ValueError: mismatched shapes, fewer than 2 windows per class and fold, or a column
            name that `CLASSIFIER_COLUMNS` does not hold.
    """
    import keras

    if columns is not None:
        unknown = sorted(set(columns) - set(CLASSIFIER_COLUMNS))
        if unknown or not columns:
            raise ValueError(f"columns must be names of {list(CLASSIFIER_COLUMNS)}, "
                             f"got {list(columns)}")
    real_x = classifier_features(real)
    gen_x = classifier_features(generated)
    if real_x.shape[1:] != gen_x.shape[1:]:
        raise ValueError(f"real {list(real_x.shape)} and generated {list(gen_x.shape)} "
                         f"windows must have the same steps and tones per step")
    if columns is not None or shuffle_steps:
        order_rng = np.random.default_rng([seed, 1])  # apart from the folds' permutations
        real_x = _restrict(real_x, columns, shuffle_steps, order_rng)
        gen_x = _restrict(gen_x, columns, shuffle_steps, order_rng)
    rng = np.random.default_rng(seed)
    n = min(len(real_x), len(gen_x))
    if n < 2 * spec.folds:
        raise ValueError(f"discriminative_score needs >= {2 * spec.folds} windows per class, "
                         f"got {n}")
    real_x = real_x[rng.permutation(len(real_x))[:n]]
    gen_x = gen_x[rng.permutation(len(gen_x))[:n]]
    x = np.concatenate([real_x, gen_x])
    y = np.concatenate([np.ones(n), np.zeros(n)]).astype(np.float32)
    fold_of = np.concatenate([rng.permutation(n) % spec.folds, rng.permutation(n) % spec.folds])
    correct = np.zeros(2 * n, dtype=bool)
    fold_accuracies = []
    for fold in range(spec.folds):
        train, test = fold_of != fold, fold_of == fold
        mean = x[train].reshape(-1, x.shape[-1]).mean(axis=0)
        std = x[train].reshape(-1, x.shape[-1]).std(axis=0)
        std = np.where(std > 1e-6, std, 1.0)
        keras.utils.set_random_seed(seed + fold)
        model = keras.Sequential([
            keras.Input(x.shape[1:]),
            keras.layers.GRU(spec.units),
            keras.layers.Dense(1, activation="sigmoid"),
        ])
        model.compile(optimizer=keras.optimizers.Adam(spec.learning_rate),
                      loss="binary_crossentropy")
        model.fit((x[train] - mean) / std, y[train], epochs=spec.epochs,
                  batch_size=spec.batch_size, shuffle=True, verbose=0)
        probability = np.asarray(model((x[test] - mean) / std, training=False))
        correct[test] = (probability.reshape(-1) >= 0.5) == (y[test] == 1)
        fold_accuracies.append(float(correct[test].mean()))
        del model
        keras.backend.clear_session()
    accuracy = float(correct.mean())
    return {
        "score": abs(accuracy - 0.5),
        "accuracy": accuracy,
        "fold_accuracies": fold_accuracies,
        "per_class": {"real": float(correct[:n].mean()), "generated": float(correct[n:].mean())},
        "windows_per_class": int(n),
        "spec": dataclasses.asdict(spec),
        **({"columns": list(columns)} if columns is not None else {}),
        **({"shuffle_steps": True} if shuffle_steps else {}),
    }
