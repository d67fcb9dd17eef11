"""The crnn_gan_midi TFDS builder: every config on generated dummy data, splits, bad files."""

from __future__ import annotations

import functools
import http.server
import io
import pathlib
import tempfile
import threading
import zipfile
from unittest import mock

import numpy as np
import pytest
import tensorflow_datasets as tfds

import tfds_midi.crnn_gan_midi  # noqa: F401  (registers crnn_gan_midi)
from tests import midi_fixtures
from tfds_midi import codec, music21_corpus
from tfds_midi.crnn_gan_midi import crnn_gan_midi_dataset_builder as builder_module

SOURCES = midi_fixtures.sources_covering_splits()
BROKEN = {"bach/broken.mid": b"MThd\x00\x00", "mozart/empty.mid": b""}


def _write_dummy_corpus(root: pathlib.Path) -> None:
    midi_fixtures.write_corpus(root, SOURCES)
    for source, data in BROKEN.items():
        (root / source).write_bytes(data)
    (root / "bach" / "notes.txt").write_text("not a MIDI file, ignored by extension")


class ManualConfigTest(tfds.testing.DatasetBuilderTestCase):
    """`manual`: the user's folder, composer = first folder level; broken files skipped."""

    DATASET_CLASS = builder_module.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["manual"]
    SPLITS = midi_fixtures.expected_splits(SOURCES)

    @classmethod
    def setUpClass(cls):
        cls.EXAMPLE_DIR = tempfile.mkdtemp()
        _write_dummy_corpus(pathlib.Path(cls.EXAMPLE_DIR))
        super().setUpClass()


class Mogren2016ConfigTest(tfds.testing.DatasetBuilderTestCase):
    """`mogren2016`: data/classical/ inside the extracted repository archive."""

    DATASET_CLASS = builder_module.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["mogren2016"]
    SPLITS = midi_fixtures.expected_splits(SOURCES)
    DL_EXTRACT_RESULT = "archive"
    SKIP_CHECKSUMS = True  # the archive's checksum cannot be recorded offline

    @classmethod
    def setUpClass(cls):
        cls.EXAMPLE_DIR = tempfile.mkdtemp()
        classical = pathlib.Path(cls.EXAMPLE_DIR, "archive", "c-rnn-gan-9edafc0", "data",
                                 "classical")
        _write_dummy_corpus(classical)
        super().setUpClass()




def _quick_music21_works(per_split=(2, 1, 1)) -> list[str]:
    """A few real, quick Bach chorales of the music21 corpus, covering every split."""
    wanted = dict(zip(("train", "validation", "test"), per_split))
    chosen = []
    for work in music21_corpus.select_works({"bach": None}):
        split = builder_module.split_of(work)
        if work.startswith("bach/bwv") and wanted[split] > 0:
            wanted[split] -= 1
            chosen.append(work)
    return chosen


MUSIC21_WORKS = _quick_music21_works()


class Music21DefaultConfigTest(tfds.testing.DatasetBuilderTestCase):
    """`default`: real music21 scores rendered to MIDI (a few, selected by the test)."""

    DATASET_CLASS = builder_module.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["default"]
    SPLITS = midi_fixtures.expected_splits(MUSIC21_WORKS)

    @classmethod
    def setUpClass(cls):
        cls.EXAMPLE_DIR = tempfile.mkdtemp()
        super().setUpClass()

    def setUp(self):
        patcher = mock.patch.object(music21_corpus, "select_works", lambda _: MUSIC21_WORKS)
        patcher.start()
        self.addCleanup(patcher.stop)
        super().setUp()


def test_music21_default_selection_is_large_enough():
    works = music21_corpus.select_works(music21_corpus.DEFAULT_SELECTION)
    composers = {work.split("/", 1)[0] for work in works}
    assert len(works) >= 400
    assert len(composers) >= 5


def test_music21_render_handles_opus_and_failures(tmp_path):
    opus = "josquin/laDeplorationDeLaMorteDeJohannesOckeghem.abc"
    works = music21_corpus.render_works(
        [opus, "bach/no_such_file.mxl"],
        cache_dir=tmp_path, num_workers=2,
    )
    rendered = [w for w in works if w.midi is not None]
    assert [w.source for w in rendered] == [f"{opus}#{k}" for k in range(len(rendered))]
    assert len(rendered) > 1 and all(len(codec.midi_to_tones(w.midi)) > 0 for w in rendered)
    failed = [w for w in works if w.error is not None]
    assert [w.source for w in failed] == ["bach/no_such_file.mxl"]
    # The cache answers the second time without rendering.
    with mock.patch.object(music21_corpus, "render_work", side_effect=AssertionError):
        again = music21_corpus.render_works([opus], cache_dir=tmp_path)
    assert [w.midi for w in again] == [w.midi for w in rendered]


def test_split_is_a_stable_hash_of_the_source_name():
    assert builder_module.split_of("bach/bwv1.6.mxl") == builder_module.split_of(
        "bach/bwv1.6.mxl")
    counts = midi_fixtures.expected_splits(f"c/{i}.mid" for i in range(2000))
    assert 0.87 < counts["train"] / 2000 < 0.93
    assert 0.03 < counts["validation"] / 2000 < 0.07


def _prepare_manual(manual_dir, data_dir):
    builder = tfds.builder("crnn_gan_midi/manual", data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    )
    return builder


def _split_membership(builder):
    return {
        split: {ex["source"].decode() for ex in tfds.as_numpy(builder.as_dataset(split=split))}
        for split in builder.info.splits
    }


def test_adding_a_file_never_moves_another(tmp_path):
    corpus = tmp_path / "midi"
    midi_fixtures.write_corpus(corpus, SOURCES)
    before = _split_membership(_prepare_manual(corpus, tmp_path / "a"))
    midi_fixtures.write_corpus(corpus, ["haydn/new.mid"], seed=1)
    after = _split_membership(_prepare_manual(corpus, tmp_path / "b"))
    for split, members in before.items():
        assert members <= after[split]
    assert sum(map(len, after.values())) == len(SOURCES) + 1


def test_broken_files_are_skipped_counted_and_named(tmp_path):
    corpus = tmp_path / "midi"
    songs = midi_fixtures.write_corpus(corpus, SOURCES)
    for source, data in BROKEN.items():
        (corpus / source).write_bytes(data)
    builder = _prepare_manual(corpus, tmp_path / "data")
    meta = builder.info.metadata
    assert meta["num_skipped"] == 2
    assert {s["source"] for s in meta["skipped"]} == set(BROKEN)
    assert all(s["reason"] for s in meta["skipped"])
    assert meta["num_songs"] == len(SOURCES)
    # The good songs are intact: the stored tones are exactly what the codec decodes.
    for ex in tfds.as_numpy(builder.as_dataset(split="train")):
        np.testing.assert_array_equal(ex["tones"], songs[ex["source"].decode()])
        assert ex["composer"].decode() == ex["source"].decode().split("/")[0]


def test_no_usable_file_fails_with_a_clear_message(tmp_path):
    corpus = tmp_path / "midi"
    corpus.mkdir()
    (corpus / "a.mid").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"No usable MIDI file.*1 files, all skipped.*a\.mid"):
        _prepare_manual(corpus, tmp_path / "data")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_server(tmp_path):
    """Serves tmp_path/www on 127.0.0.1; yields the base URL."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _repository_zip(songs) -> bytes:
    buffer = io.BytesIO()
    prefix = f"c-rnn-gan-{builder_module.MOGREN2016_COMMIT}/data/classical/"
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"c-rnn-gan-{builder_module.MOGREN2016_COMMIT}/README.md", "readme")
        for source, tones in songs.items():
            archive.writestr(prefix + source, codec.tones_to_midi_bytes(tones))
        archive.writestr(prefix + "bach/truncated.mid", b"MThd\x00\x00\x00\x06\x00")
    return buffer.getvalue()


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_mogren2016_downloads_through_the_real_download_code(tmp_path, http_server, how,
                                                             monkeypatch):
    root, base_url = http_server
    rng = np.random.default_rng(3)
    songs = {source: midi_fixtures.random_song(rng, 40) for source in SOURCES}
    (root / "archive.zip").write_bytes(_repository_zip(songs))
    url = f"{base_url}/archive.zip"
    kwargs = {}
    if how == "argument":
        kwargs["archive_url"] = url
    else:
        monkeypatch.setenv(builder_module.MOGREN2016_URL_ENV, url)
    builder = tfds.builder("crnn_gan_midi/mogren2016", data_dir=tmp_path / "data", **kwargs)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            download_mode=tfds.download.GenerateMode.FORCE_REDOWNLOAD)
    )
    assert builder.info.metadata["num_skipped"] == 1
    assert builder.info.metadata["skipped"][0]["source"] == "bach/truncated.mid"
    loaded = {}
    for split in ("train", "validation", "test"):
        for ex in tfds.as_numpy(tfds.load("crnn_gan_midi/mogren2016", split=split,
                                          data_dir=tmp_path / "data")):
            loaded[ex["source"].decode()] = ex["tones"]
    assert loaded.keys() == songs.keys()
    for source, tones in songs.items():
        np.testing.assert_array_equal(loaded[source], tones)


def _decoded_directly(corpus) -> tuple[dict, list]:
    """What the builder must give for a folder: source -> (split, tones) of every file the
    codec decodes, read straight from disk, and (source, reason) of the others in name order."""
    songs, skipped = {}, []
    for path in sorted(corpus.rglob("*.mid")):
        source = path.relative_to(corpus).as_posix()
        try:
            songs[source] = builder_module.split_of(source), codec.midi_to_tones(path.read_bytes())
        except codec.MidiFormatError as error:
            skipped.append((source, error.reason))
    return songs, skipped


def _all_examples(builder) -> dict:
    """source -> (split, example) of every prepared example; the keys are unique."""
    examples = {}
    for split in builder.info.splits:
        for ex in tfds.as_numpy(builder.as_dataset(split=split)):
            source = ex["source"].decode()
            assert source not in examples
            examples[source] = split, ex
    return examples


@pytest.mark.parametrize("workers", [0, 2])
def test_streaming_gives_the_examples_decoded_directly(tmp_path, workers):
    """Same corpus, same examples, keys, splits and metadata as decoding every file with the
    codec (what the eager builder stored), in-process and with decoder processes."""
    corpus = tmp_path / "midi"
    sources = [f"{c}/piece_{i}.mid" for i, c in enumerate(["bach", "haydn", "mozart"] * 14)]
    midi_fixtures.write_corpus(corpus, sources, num_tones=50)
    for source, data in BROKEN.items():
        (corpus / source).write_bytes(data)
    expected, expected_skipped = _decoded_directly(corpus)
    builder = tfds.builder("crnn_gan_midi/manual", data_dir=tmp_path / "data",
                           decode_workers=workers)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(corpus)))
    examples = _all_examples(builder)
    assert examples.keys() == expected.keys()
    for source, (split, ex) in examples.items():
        assert split == expected[source][0]
        np.testing.assert_array_equal(ex["tones"], expected[source][1])
        assert ex["composer"].decode() == source.split("/")[0]
        assert ex["title"].decode() == pathlib.PurePosixPath(source).stem
    meta = builder.info.metadata
    assert meta["skipped"] == [{"source": s, "reason": r} for s, r in expected_skipped]
    assert (meta["num_songs"], meta["num_skipped"], meta["num_composers"]) == (
        len(expected), len(BROKEN), 3)
    assert meta["num_tones"] == sum(len(tones) for _, tones in expected.values())
    # The metadata is what a later load reads back.
    again = tfds.builder("crnn_gan_midi/manual", data_dir=tmp_path / "data")
    assert dict(again.info.metadata) == dict(meta)


def test_a_split_whose_files_all_fail_is_left_out(tmp_path):
    corpus = tmp_path / "midi"
    sources = midi_fixtures.sources_covering_splits()
    midi_fixtures.write_corpus(corpus, sources)
    broken = [s for s in sources if builder_module.split_of(s) == "validation"]
    for source in broken:
        (corpus / source).write_bytes(b"MThd\x00\x00")
    builder = _prepare_manual(corpus, tmp_path / "data")
    assert set(builder.info.splits) == {"train", "test"}
    assert [s["source"] for s in builder.info.metadata["skipped"]] == sorted(broken)
    assert builder.info.metadata["num_songs"] == len(sources) - len(broken)
