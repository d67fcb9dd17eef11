"""crnn_gan_midi: classical MIDI as C-RNN-GAN tone events, for `tfds.load`.

Each example is one song: its tones as float32 ``[n, 4]`` (length ticks, frequency Hz,
velocity 0-127, delta ticks; 384 ticks per quarter note) as decoded by `tfds_midi.codec`,
plus composer, title and the source file name inside the corpus.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from os import environ, fspath

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfds_midi import codec, music21_corpus
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
class _Song:
    source: str
    composer: str
    title: str
    tones: np.ndarray


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

    def __init__(self, *, archive_url: str | None = None, **kwargs):
        """Args: archive_url: mirror of the mogren2016 archive (zip); see MOGREN2016_URL_ENV."""
        self._archive_url = archive_url
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
        if self.builder_config.corpus == "music21":
            candidates = self._music21_files(dl_manager)
        elif self.builder_config.corpus == "github":
            url = self._archive_url or environ.get(MOGREN2016_URL_ENV) or MOGREN2016_URL
            archive = dl_manager.download_and_extract(url)
            candidates = self._folder_files(_find_classical_folder(archive))
        else:
            candidates = self._folder_files(dl_manager.manual_dir)
        songs, skipped = _decode_all(candidates)
        for source, reason in skipped:
            logging.warning("Skipping %s: %s", source, reason)
        if not songs:
            raise PrepareError(
                f"No usable MIDI file for crnn_gan_midi/{self.builder_config.name}:"
                f" {len(skipped)} files, all skipped"
                + (f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else "")
                + "."
            )
        self.info.metadata.update(
            {
                "num_songs": len(songs),
                "num_tones": int(sum(len(song.tones) for song in songs)),
                "num_composers": len({song.composer for song in songs}),
                "num_skipped": len(skipped),
                "skipped": [{"source": s, "reason": r} for s, r in skipped],
            }
        )
        by_split = {split: [] for split, _ in SPLIT_PERCENTAGES}
        for song in songs:
            by_split[split_of(song.source)].append(song)
        # TFDS cannot write an empty split (tiny corpora may leave one empty).
        return {
            split: self._generate_examples(items) for split, items in by_split.items() if items
        }

    def _generate_examples(self, songs):
        for song in songs:
            yield song.source, {
                "tones": song.tones,
                "composer": song.composer,
                "title": song.title,
                "source": song.source,
            }

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


def _decode_all(candidates):
    """Decodes (source, composer, title, bytes | path | error string) into songs.

    Returns:
        (songs, skipped): the decoded `_Song`s and (source, reason) of every file that
        could not be used; one broken file never stops the others.
    """
    songs, skipped = [], []
    for source, composer, title, content in candidates:
        if isinstance(content, str):  # a rendering error
            skipped.append((source, content))
            continue
        try:
            data = content if isinstance(content, bytes) else _read_bytes(content)
            tones = codec.midi_to_tones(data, name=source)
        except codec.MidiFormatError as error:
            skipped.append((source, error.reason))
            continue
        except (OSError, tf.errors.OpError) as error:
            skipped.append((source, str(error)))
            continue
        songs.append(_Song(source, composer, title, tones))
    return songs, skipped


def _read_bytes(path) -> bytes:
    with tf.io.gfile.GFile(fspath(path), "rb") as f:
        return f.read()
