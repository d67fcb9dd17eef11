"""crnn_gan_midi: classical MIDI as C-RNN-GAN tone events, for `tfds.load`.

Each example is one song: its tones as float32 ``[n, 4]`` (length ticks, frequency Hz,
velocity 0-127, delta ticks; 384 ticks per quarter note) as decoded by `tfds_midi.codec`,
plus composer, title and the source file name inside the corpus.

Preparing streams: `_split_generators` lists the files and their splits (`split_of`), and
each split's `_generate_examples` decodes its files while TFDS writes them, a few files
ahead, so a corpus larger than memory prepares. Where cores are idle, files decode in
`tfds_midi.decode_pool` worker processes (`Builder._workers` chooses how many: by default
one per idle core, `decode_pool.default_workers`; in-process when every core is busy or a
split has few files; at most three files per worker in flight).
A file that does not decode is skipped with a warning and recorded in the metadata; it never
costs another file.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from os import environ, fspath

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from crnn_gan import gfile
from tfds_midi import codec, decode_pool, music21_corpus
from tfds_midi.prepare import PrepareError

MOGREN2016_COMMIT = "9edafc02e62ea0478d1798bdf3a283c71cd1eefc"
MOGREN2016_URL = (
    f"https://github.com/olofmogren/c-rnn-gan/archive/{MOGREN2016_COMMIT}.zip"
)
# Overrides the archive URL of the mogren2016 config (for mirrors), like the builder
# argument `archive_url`.
MOGREN2016_URL_ENV = "CRNN_GAN_MIDI_MOGREN2016_URL"

# Split of every source file by a hash of its name: adding or removing a file never moves
# another one between splits.
SPLIT_PERCENTAGES = (("train", 90), ("validation", 5), ("test", 5))

MIDI_SUFFIXES = (".mid", ".midi", ".kar")

# Decoder worker processes of the builder (argument `decode_workers`, else this variable,
# else `decode_pool.default_workers`: one per core, in-process for small corpora).
DECODE_WORKERS_ENV = "CRNN_GAN_MIDI_DECODE_WORKERS"

_SCORE_VELOCITY_NOTE = (
    " Scores render to MIDI with a constant velocity wherever the score has no dynamics,"
    " so intensity varies little in this config."
)


def split_of(source: str) -> str:
    """Returns the split ("train", "validation" or "test") of a source file name."""
    bucket = int.from_bytes(hashlib.sha256(source.encode("utf-8")).digest()[:8], "big") % 100
    for split, percentage in SPLIT_PERCENTAGES:
        if bucket < percentage:
            return split
        bucket -= percentage
    raise AssertionError("split percentages must add up to 100")


@dataclasses.dataclass(eq=False)
class CrnnGanMidiConfig(tfds.core.BuilderConfig):
    """Which corpus a config reads.

    Attributes:
        corpus: "music21" (scores bundled with the music21 package, rendered offline),
            "github" (the paper's corpus in the authors' repository archive) or "manual"
            (the user's own MIDI folder).
        selection: for "music21": composer folder -> maximum number of works (None = all).
    """

    corpus: str = "music21"
    selection: dict[str, int | None] | None = None


@dataclasses.dataclass(frozen=True)
class _File:
    """One source file to decode: its position in the corpus listing, names and content."""

    index: int
    source: str
    composer: str
    title: str
    content: bytes | tfds.core.Path


class _Tally:
    """What preparing has seen so far: songs, tones, composers and skipped files.

    Attributes:
        skipped: (corpus listing index, source, reason) of every file not used.
    """

    def __init__(self) -> None:
        self.num_songs = 0
        self.num_tones = 0
        self.composers: set[str] = set()
        self.skipped: list[tuple[int, str, str]] = []

    def add(self, file: _File, tones: np.ndarray) -> None:
        self.num_songs += 1
        self.num_tones += len(tones)
        self.composers.add(file.composer)

    def skip(self, index: int, source: str, reason: str) -> None:
        logging.warning("Skipping %s: %s", source, reason)
        self.skipped.append((index, source, reason))

    def skipped_in_order(self) -> list[tuple[str, str]]:
        """(source, reason) of the skipped files, in corpus listing order."""
        return [(source, reason) for _, source, reason in sorted(self.skipped)]

    def metadata(self) -> dict:
        skipped = self.skipped_in_order()
        return {
            "num_songs": self.num_songs,
            "num_tones": self.num_tones,
            "num_composers": len(self.composers),
            "num_skipped": len(skipped),
            "skipped": [{"source": s, "reason": r} for s, r in skipped],
        }


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for crnn_gan_midi."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        CrnnGanMidiConfig(
            name="default",
            description=(
                "Offline default: 686 classical works (Bach, Palestrina, Monteverdi,"
                " Mozart, Haydn, Handel, Corelli, Josquin) from the corpus that the music21"
                " package ships, rendered to MIDI while preparing." + _SCORE_VELOCITY_NOTE
            ),
            corpus="music21",
            selection=music21_corpus.DEFAULT_SELECTION,
        ),
        CrnnGanMidiConfig(
            name="music21_full",
            description=(
                "Every classical work of the music21 corpus that renders (about 2,000"
                " scores by 23 composers; about 17 minutes to prepare on 2 cores)."
                + _SCORE_VELOCITY_NOTE
            ),
            corpus="music21",
            selection=music21_corpus.FULL_SELECTION,
        ),
        CrnnGanMidiConfig(
            name="mogren2016",
            description=(
                "The paper's corpus: 3029 classical MIDI files of 128 composers in"
                " data/classical/ of github.com/olofmogren/c-rnn-gan at commit"
                f" {MOGREN2016_COMMIT}, downloaded as the archive of that commit."
            ),
            corpus="github",
        ),
        CrnnGanMidiConfig(
            name="manual",
            description=(
                "Your own MIDI files from `manual_dir`; the composer is the name of the"
                " first folder level."
            ),
            corpus="manual",
        ),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    For the `manual` config only: put your MIDI files (.mid, .midi, .kar) in a folder, one
    sub-folder per composer (e.g. `bach/bwv772.mid`; files at the top level get the
    composer "unknown"), and pass it as
    `download_config=tfds.download.DownloadConfig(manual_dir=FOLDER)` or
    `tfds build ... --manual_dir=FOLDER`.
    """

    def __init__(self, *, archive_url: str | None = None, decode_workers: int | None = None,
                 **kwargs):
        """Args:
        archive_url: mirror of the mogren2016 archive (zip); see MOGREN2016_URL_ENV.
        decode_workers: decoder processes while preparing (0 = decode in-process); default
            `DECODE_WORKERS_ENV`, else `decode_pool.default_workers`.
        """
        self._archive_url = archive_url
        self._decode_workers = decode_workers
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "tones": tfds.features.Tensor(shape=(None, 4), dtype=np.float32),
                    "composer": tfds.features.Text(),
                    "title": tfds.features.Text(),
                    "source": tfds.features.Text(),
                }
            ),
            supervised_keys=None,
            homepage="https://arxiv.org/abs/1611.09904",
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        """Lists the corpus's files by split; `_generate_examples` decodes them as TFDS
        writes them, so no more than a few decoded songs are in memory at a time.

        TFDS cannot write an empty split, so a split is kept once one of its files decodes:
        each split's files are tried in order here, in-process (usually only the first),
        broken ones are recorded as skipped, and the first good one's tones go to the
        split's generator. The metadata (songs, tones, composers and skipped files with
        their reasons, in corpus order) is complete once every split is written.
        """
        if self.builder_config.corpus == "music21":
            candidates = self._music21_files(dl_manager)
        elif self.builder_config.corpus == "github":
            url = self._archive_url or environ.get(MOGREN2016_URL_ENV) or MOGREN2016_URL
            archive = dl_manager.download_and_extract(url)
            candidates = self._folder_files(_find_classical_folder(archive))
        else:
            candidates = self._folder_files(dl_manager.manual_dir)
        tally = _Tally()
        by_split: dict[str, list[_File]] = {split: [] for split, _ in SPLIT_PERCENTAGES}
        for index, (source, composer, title, content) in enumerate(candidates):
            if isinstance(content, str):  # a rendering error
                tally.skip(index, source, content)
            else:
                by_split[split_of(source)].append(_File(index, source, composer, title,
                                                        content))
        generators = {}
        for split, files in by_split.items():
            first = _first_decodable(files, tally)
            if first is not None:
                generators[split] = self._generate_examples(files, first, tally)
        if not generators:
            skipped = tally.skipped_in_order()
            raise PrepareError(
                f"No usable MIDI file for crnn_gan_midi/{self.builder_config.name}:"
                f" {len(skipped)} files, all skipped"
                + (f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else "")
                + "."
            )
        self.info.metadata.update(tally.metadata())
        return generators

    def _generate_examples(self, files: list[_File], first: np.ndarray, tally: _Tally):
        """Yields (source, example) of `files`, decoding them as TFDS consumes them.

        Args:
            files: one split's files in corpus order; `files[0]` already decoded.
            first: the tones ``[n, 4]`` (float32; ticks, Hz, velocity, ticks) of `files[0]`.
            tally: the corpus's running tally; the builder's metadata is updated from it
                when this split is done (TFDS writes the metadata once every split is).
        """
        try:
            tally.add(files[0], first)
            yield _example(files[0], first)
            rest = files[1:]
            workers = self._workers(len(rest))
            logging.info("Decoding %d files %s.", len(rest),
                         f"in {workers} worker processes" if workers > 1 else "in-process")
            jobs = ((file.source, functools.partial(_read_content, file)) for file in rest)
            results = decode_pool.decode_stream(jobs, workers)
            for file, result in zip(rest, results):
                if isinstance(result, Exception):
                    tally.skip(file.index, file.source, result.reason)
                    continue
                tally.add(file, result)
                yield _example(file, result)
        finally:
            self.info.metadata.update(tally.metadata())

    def _workers(self, num_files: int) -> int:
        """Decoder processes for `num_files` files: the builder argument, the environment
        variable `DECODE_WORKERS_ENV`, or `decode_pool.default_workers` (the choice)."""
        if self._decode_workers is not None:
            return self._decode_workers
        if environ.get(DECODE_WORKERS_ENV):
            return int(environ[DECODE_WORKERS_ENV])
        return decode_pool.default_workers(num_files)

    def _music21_files(self, dl_manager):
        """Renders the config's music21 selection (cached in the download dir)."""
        works = music21_corpus.render_works(
            music21_corpus.select_works(self.builder_config.selection),
            cache_dir=fspath(dl_manager.download_dir / "music21_midi"),
        )
        return [
            (work.source, work.composer, work.title, work.midi or work.error)
            for work in works
        ]

    def _folder_files(self, root):
        """Lists MIDI files under `root` as (source, composer, title, path) tuples."""
        root = tfds.core.Path(root)
        candidates = []
        for folder, _, files in tf.io.gfile.walk(fspath(root)):
            for name in files:
                path = tfds.core.Path(folder) / name
                if path.suffix.lower() not in MIDI_SUFFIXES:
                    continue
                relative = path.relative_to(root)
                composer = relative.parts[0] if len(relative.parts) > 1 else "unknown"
                candidates.append((relative.as_posix(), composer, path.stem, path))
        return sorted(candidates)


def _find_classical_folder(archive) -> tfds.core.Path:
    """Finds ``data/classical`` inside the extracted repository archive."""
    archive = tfds.core.Path(archive)
    for candidate in [archive, *archive.iterdir()]:
        folder = candidate / "data" / "classical"
        if folder.is_dir():
            return folder
    raise PrepareError(f"{archive}: no data/classical/ folder in the downloaded archive")


def _example(file: _File, tones: np.ndarray):
    """The (key, example) of a decoded file; the key is its source name."""
    return file.source, {
        "tones": tones,
        "composer": file.composer,
        "title": file.title,
        "source": file.source,
    }


def _read_content(file: _File) -> bytes:
    """The bytes of a file (rendered bytes, or read from any tf.io.gfile path).

    Raises:
        codec.MidiFormatError: the file cannot be read; the reason is the error's text.
    """
    if isinstance(file.content, bytes):
        return file.content
    try:
        return gfile.read_bytes(fspath(file.content))
    except (OSError, tf.errors.OpError) as error:
        raise codec.MidiFormatError(file.source, str(error)) from None


def _first_decodable(files: list[_File], tally: _Tally) -> np.ndarray | None:
    """Decodes `files` in order, in-process, until one decodes; drops the broken ones
    before it from `files` (into `tally`), so `files[0]` is the decoded one.

    Returns:
        Tones ``[n, 4]`` of the new `files[0]`, or None (and `files` empty) when none
        of them decodes.
    """
    while files:
        file = files[0]
        try:
            return codec.midi_to_tones(_read_content(file), name=file.source)
        except codec.MidiFormatError as error:
            tally.skip(file.index, file.source, error.reason)
            files.pop(0)
    return None
