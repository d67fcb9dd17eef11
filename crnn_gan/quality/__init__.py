"""Measures of generated music for the quality protocol (``benchmarks/bench_quality.py``).

Everything here measures the **raw outputs** of a generator: nothing is clamped, dropped or
octave-shifted before measuring. The only rule applied is the format's own: in a C-RNN-GAN-3
step of ``k = 3`` tone slots, a slot whose velocity rounds to 0 (velocity < 0.5, as
``tfds_midi.codec.unpack_tones``) is *absent*, not a tone.

Inputs (raw units, 384 ticks per quarter note):
    * generated songs: float ``[N, T, k, 4]`` (the SavedModel's ``tones`` output) or
      ``[N, T, 4 * k]``; columns ``(length_ticks, frequency_hz, velocity, delta_ticks)``.
    * real windows: float ``[R, T, 4 * k]`` in the same packed format (``k = 1``: ``T``
      consecutive tones; ``k = 3``: ``T`` steps of ``codec.pack_tones``).

One module per job; this file re-exports their public names, so that ``from crnn_gan import
quality`` and ``quality.evaluate_set`` work (its users: ``benchmarks/bench_quality.py``,
``tests/test_quality.py``, ``tests/test_pretrained.py``):

* `steps`: the songs' shape (`steps.as_steps`), which slots are tones
  (`steps.present_slots`) and the canonical packed form (`steps.canonical_steps`).
* `validity`: `validity.tone_validity`, the fraction of tones a MIDI piano can play (pitch
  21-108, length > 0, velocity 1-127) and of sub-audio tones, with the reason of each
  failure.
* `features`: per-song features (`pitch_class_histogram`, `pitch_range`, `ioi_histogram`,
  `note_length_histogram`) and `feature_matrix`.
* `distances`: mgeval's (Yang & Lerch 2020, "On the evaluation of generative models in
  music") intra-set diversity, `mean_pairwise_distance` and `diversity` (a generated set
  against real windows), and the `overlapping_area` of the intra-set and inter-set distance
  distributions (`overlaps`): how far the generated songs sit from real music, as real
  windows sit from each other.
* `discriminative`: TimeGAN's post-hoc score ``|accuracy - 0.5|`` of a fresh small GRU
  classifier that tells real windows from generated songs (held-out folds).
* `protocol`: `protocol.evaluate_set`, all of the above plus the paper's six statistics
  (``crnn_gan.metrics``) for one generated set against real windows, and
  `protocol.check_targets`, the targets of the protocol, per seed, and
  `protocol.real_ceiling`, how often real music itself meets the GAN-vs-baseline target;
  `protocol.protocol_songs`, a generator's songs under the protocol's noise;
  `protocol.over_seeds`, mean ± std over seeds (every benchmark's aggregation).

The tone format's rules come from ``tfds_midi.codec``: Hz -> pitch (`hz_to_pitch`,
`hz_to_fractional_pitch`), the present tones of a song with the deltas of absent slots carried
(`present_tones`), the piano's range (`PIANO_LOWEST`, `PIANO_HIGHEST`).

All results are seeded: the same inputs give the same numbers. Only numpy (and the codec) is
imported at module level; Keras is imported by `discriminative.discriminative_score` alone.
"""

from crnn_gan.quality.discriminative import (
    ASPECT_COLUMNS,
    CLASSIFIER_COLUMNS,
    DiscriminatorSpec,
    classifier_features,
    discriminative_score,
)
from crnn_gan.quality.distances import (
    diversity,
    inter_set_distances,
    intra_set_distances,
    mean_pairwise_distance,
    overlapping_area,
    overlaps,
)
from crnn_gan.quality.features import (
    DIVERSITY_FEATURES,
    DURATION_BIN_EDGES,
    DURATION_BIN_NAMES,
    FEATURES,
    duration_histogram,
    feature_matrix,
    ioi_histogram,
    note_length_histogram,
    pitch_class_histogram,
    pitch_range,
)
from crnn_gan.quality.protocol import (
    CLOSER_TARGET,
    PROTOCOL_VERSION,
    check_targets,
    closer,
    closer_count,
    evaluate_set,
    over_seeds,
    paired_closeness,
    protocol_songs,
    real_ceiling,
    real_summary,
    song_statistics,
    statistic_gaps,
    statistics_summary,
)
from crnn_gan.quality.steps import as_steps, canonical_steps, present_slots
from crnn_gan.quality.validity import tone_validity

__all__ = [
    "ASPECT_COLUMNS",
    "CLASSIFIER_COLUMNS",
    "CLOSER_TARGET",
    "DIVERSITY_FEATURES",
    "DURATION_BIN_EDGES",
    "DURATION_BIN_NAMES",
    "FEATURES",
    "PROTOCOL_VERSION",
    "DiscriminatorSpec",
    "as_steps",
    "canonical_steps",
    "check_targets",
    "closer",
    "closer_count",
    "classifier_features",
    "discriminative_score",
    "diversity",
    "duration_histogram",
    "evaluate_set",
    "feature_matrix",
    "inter_set_distances",
    "intra_set_distances",
    "ioi_histogram",
    "mean_pairwise_distance",
    "note_length_histogram",
    "over_seeds",
    "overlapping_area",
    "overlaps",
    "paired_closeness",
    "pitch_class_histogram",
    "pitch_range",
    "present_slots",
    "protocol_songs",
    "real_ceiling",
    "real_summary",
    "song_statistics",
    "statistic_gaps",
    "statistics_summary",
    "tone_validity",
]
