"""Evaluation of C-RNN-GAN runs against real music: the paper's Figure 3 and its numbers.

The library behind ``evaluate.py``, one module per job (import the module you need; this
file imports nothing, so that evaluate.py reads `request` before parsing its flags):

* `request`: `Request`, what to evaluate; its fields are evaluate.py's flags.
* `songs`: the data model: `SongSet` (songs and their statistics), `Run`, `RealMusic`,
  `Evaluation` (everything measured: the one in-memory result) and `EvaluationError`.
* `sources`: the input adapters: MIDI folders, a TFDS split and random windows of it, the
  runs of train.py, an exported SavedModel.
* `report`: the JSON report, the CSV and the printed table, each from one `Evaluation`.
* `orchestration`: `evaluate`, which measures, draws (`crnn_gan.plots`), writes the
  excerpts (and WAVs, `crnn_gan.rendering`) and the reports.

Sources of music:

* real music: a TFDS split (``crnn_gan_midi/<config>:<split>``) or a folder of MIDI files,
  measured over whole songs and over random windows of ``window`` tones;
* generated music: a folder of MIDI files, an exported SavedModel, and the runs of
  ``train.py``, whose ``samples/epoch_NNNN/*.mid`` give one point per epoch.

Every statistic is ``crnn_gan.metrics.all_statistics`` of one song, then the mean and the
(population) standard deviation over songs.

Repetitions of real music are normalised to the length of the generated music as the
paper does (count times ``l_g / l_r``, ``metrics.normalise_real_repetitions``), song by song
(or window by window) with ``l_r`` = that song's number of tones and ``l_g`` = the mean
number of tones of the generated songs (the final epoch of every run plus ``--samples`` and
``--saved_model``; ``window`` when there are none). Both the raw and the normalised values
are reported; the real band of the figure is the windows' statistics with the normalised
repetitions.

Unreadable MIDI files are skipped and counted (``skipped`` in the report); a source with no
readable song at all, or a missing run, raises ``EvaluationError`` with a message naming
what is missing.
"""
