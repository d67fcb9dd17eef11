"""Classical scores from the corpus bundled with the `music21` package, rendered to MIDI.

music21 ships its corpus as MusicXML / Humdrum / ABC scores (no .mid files). This module picks
the works of a corpus selection, renders each score to standard MIDI bytes with music21 (in
parallel, one process per core) and caches the bytes on disk, so that preparing the dataset a
second time costs nothing. The rendered files are then read by the codec like any other MIDI
file; scores without dynamics render with music21's constant default velocity.

Known quirks handled here:
- a few scores have badly formed repeats (music21 raises ``ExpanderException``): they render
  once repeat barlines, repeat expressions and repeat brackets are stripped;
- a file may hold an ``Opus`` of several works (Josquin): each score is written separately,
  with the source name suffixed ``#k``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import pathlib
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence

# Corpus folders of music21 that hold classical (art-music) scores. The folk collections
# (ryansMammoth, oneills1850, essenFolksong, airdsAirs, nottingham-dataset, miscFolk), the
# demos, lead sheets, theory exercises and popular songs are not classical and left out.
CLASSICAL_COMPOSERS = (
    "bach", "beach", "beethoven", "chopin", "ciconia", "corelli", "cpebach", "handel",
    "haydn", "josquin", "luca", "lusitano", "monteverdi", "mozart", "palestrina",
    "schoenberg", "schubert", "schumann_clara", "schumann_robert", "trecento", "verdi",
    "weber", "webern",
)

# The default selection: at most this many works per composer (sorted by path, so the
# selection is stable), chosen so that the default config renders in about 2 minutes on
# 2 cores (measured: Bach 0.16 s, Palestrina 0.4 s, Monteverdi 1.2 s, Mozart/Haydn 1.4 s
# per work on one core). Beethoven and Schumann quartet movements take 8-45 s each and
# are only in the full selection.
DEFAULT_SELECTION = {
    "bach": None,  # None = every work (433 chorales and other pieces)
    "palestrina": 100,
    "monteverdi": None,
    "mozart": None,
    "haydn": None,
    "handel": None,
    "corelli": None,
    "josquin": None,
}

FULL_SELECTION = {composer: None for composer in CLASSICAL_COMPOSERS}


@dataclasses.dataclass(frozen=True)
class RenderedWork:
    """One rendered score.

    Attributes:
        source: path inside the music21 corpus, e.g. ``bach/bwv66.6.mxl`` (``#k`` appended
            for the k-th score of an opus).
        composer: the corpus folder, e.g. ``bach``.
        title: the score's title from its metadata, or the file stem.
        midi: the standard MIDI file bytes, or ``None`` when rendering failed.
        error: why rendering failed, or ``None``.
    """

    source: str
    composer: str
    title: str
    midi: bytes | None = None
    error: str | None = None


def corpus_root() -> pathlib.Path:
    """Returns the directory of music21's bundled corpus."""
    from music21 import common

    return pathlib.Path(common.getCorpusFilePath())


def select_works(selection: dict[str, int | None]) -> list[str]:
    """Lists corpus-relative paths of the works of a selection.

    Args:
        selection: composer folder -> maximum number of works (``None`` = all), taken in
            sorted path order.

    Returns:
        Sorted paths relative to the corpus root, e.g. ``["bach/bwv1.6.mxl", ...]``.
    """
    from music21 import corpus

    root = corpus_root()
    by_composer: dict[str, list[str]] = {}
    for path in corpus.getCorePaths():
        relative = pathlib.Path(path).relative_to(root).as_posix()
        by_composer.setdefault(relative.split("/", 1)[0], []).append(relative)
    works = []
    for composer, limit in selection.items():
        paths = sorted(by_composer.get(composer, []))
        works.extend(paths if limit is None else paths[:limit])
    return sorted(works)


def _strip_repeats(score) -> None:
    """Removes repeat barlines, repeat expressions and repeat brackets in place."""
    from music21 import bar, repeat, spanner, stream

    for measure in score.recurse().getElementsByClass(stream.Measure):
        if isinstance(measure.leftBarline, bar.Repeat):
            measure.leftBarline = None
        if isinstance(measure.rightBarline, bar.Repeat):
            measure.rightBarline = bar.Barline("regular")
    for element in list(score.recurse().getElementsByClass(repeat.RepeatExpression)):
        element.activeSite.remove(element)
    for bracket in list(score.recurse().getElementsByClass(spanner.RepeatBracket)):
        for site in list(bracket.sites.get()):
            if site is not None and hasattr(site, "remove"):
                try:
                    site.remove(bracket)
                except Exception:  # noqa: BLE001 - the bracket was not in this site
                    pass


def _score_to_midi(score) -> bytes:
    """Renders one music21 score to MIDI bytes, stripping broken repeats if needed."""
    from music21 import midi, repeat

    try:
        return midi.translate.music21ObjectToMidiFile(score).writestr()
    except repeat.ExpanderException:
        _strip_repeats(score)
        return midi.translate.music21ObjectToMidiFile(score).writestr()


def _title(score, fallback: str) -> str:
    metadata = getattr(score, "metadata", None)
    title = getattr(metadata, "title", None) if metadata is not None else None
    return str(title) if title else fallback


def render_work(relative_path: str) -> list[RenderedWork]:
    """Parses one corpus file and renders each of its scores to MIDI.

    Never raises for a broken score: the failure is returned as a `RenderedWork` whose
    ``error`` says why, so one bad score never costs the others.

    Args:
        relative_path: path relative to the corpus root, e.g. ``"bach/bwv66.6.mxl"``.

    Returns:
        One entry per score (several for an opus).
    """
    import music21

    composer = relative_path.split("/", 1)[0]
    stem = pathlib.PurePosixPath(relative_path).stem
    try:
        parsed = music21.converter.parse(corpus_root() / relative_path)
    except Exception as error:  # noqa: BLE001 - report any parser failure, keep going
        reason = f"{type(error).__name__}: {error}"
        return [RenderedWork(relative_path, composer, stem, error=reason)]
    if isinstance(parsed, music21.stream.Opus):
        scores = [(f"{relative_path}#{k}", s) for k, s in enumerate(parsed.scores)]
    else:
        scores = [(relative_path, parsed)]
    works = []
    for source, score in scores:
        title = _title(score, stem)
        try:
            works.append(RenderedWork(source, composer, title, midi=_score_to_midi(score)))
        except Exception as error:  # noqa: BLE001 - report any renderer failure
            works.append(
                RenderedWork(source, composer, title, error=f"{type(error).__name__}: {error}")
            )
    return works


class RenderCache:
    """MIDI renders on disk, one folder per music21 version.

    Layout: ``<root>/music21-<version>/<relative path, / as __>.<hash>.<k>.mid`` plus a
    ``.json`` sidecar holding source, composer, title and error of every score of the file.
    """

    def __init__(self, root: str | os.PathLike):
        import music21

        self.root = pathlib.Path(root) / f"music21-{music21.__version__}"

    def _path(self, relative_path: str, suffix: str) -> pathlib.Path:
        digest = hashlib.sha1(relative_path.encode()).hexdigest()[:8]
        return self.root / f"{relative_path.replace('/', '__')}.{digest}{suffix}"

    def load(self, relative_path: str) -> list[RenderedWork] | None:
        import json

        index = self._path(relative_path, ".json")
        if not index.exists():
            return None
        works = []
        for k, entry in enumerate(json.loads(index.read_text())):
            midi_path = self._path(relative_path, f".{k}.mid")
            midi = midi_path.read_bytes() if entry["error"] is None else None
            works.append(RenderedWork(midi=midi, **entry))
        return works

    def save(self, relative_path: str, works: Sequence[RenderedWork]) -> None:
        import json

        self.root.mkdir(parents=True, exist_ok=True)
        for k, work in enumerate(works):
            if work.midi is not None:
                self._path(relative_path, f".{k}.mid").write_bytes(work.midi)
        entries = [
            {"source": w.source, "composer": w.composer, "title": w.title, "error": w.error}
            for w in works
        ]
        self._path(relative_path, ".json").write_text(json.dumps(entries))


def render_works(
    relative_paths: Iterable[str],
    cache_dir: str | os.PathLike | None = None,
    num_workers: int | None = None,
) -> list[RenderedWork]:
    """Renders corpus files to MIDI in parallel, reusing cached renders.

    Workers are separate Python processes running this file as a script (not a
    multiprocessing pool): the caller usually has TensorFlow loaded, whose threads make
    fork unsafe, and a spawn pool would re-import the caller's main module. Workers hand
    their results back through the render cache.

    Args:
        relative_paths: corpus-relative paths (see `select_works`).
        cache_dir: where rendered MIDI is kept between runs; ``None`` uses a temporary
            folder that is deleted afterwards.
        num_workers: processes to use; default one per CPU core.

    Returns:
        Every rendered score (failed ones carry ``error``), in input path order.
    """
    relative_paths = list(relative_paths)
    if cache_dir is None:
        with tempfile.TemporaryDirectory() as temporary:
            return render_works(relative_paths, temporary, num_workers)
    cache = RenderCache(cache_dir)
    todo = [path for path in relative_paths if cache.load(path) is None]
    workers = min(num_workers or os.cpu_count() or 1, len(todo))
    if todo:
        logging.info(
            "Rendering %d music21 scores to MIDI with %d processes (%d cached).",
            len(todo), workers, len(relative_paths) - len(todo),
        )
    if workers == 1:
        for path in todo:
            cache.save(path, render_work(path))
    elif workers > 1:
        processes = [
            subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), str(cache_dir)],
                stdin=subprocess.PIPE, text=True,
            )
            for _ in range(workers)
        ]
        for k, process in enumerate(processes):
            process.stdin.write("\n".join(todo[k::workers]))
            process.stdin.close()
        for process in processes:
            process.wait()
    works = []
    for path in relative_paths:
        cached = cache.load(path)
        if cached is None:  # the worker died on this score (a crash, not an exception)
            composer = path.split("/", 1)[0]
            stem = pathlib.PurePosixPath(path).stem
            cached = [RenderedWork(path, composer, stem, error="the renderer process died")]
        works.extend(cached)
    return works


def _worker_main(argv: Sequence[str]) -> None:
    """Renders the corpus paths read from stdin (one a line) into the cache at argv[1]."""
    cache = RenderCache(argv[1])
    for path in sys.stdin.read().split():
        cache.save(path, render_work(path))


if __name__ == "__main__":
    _worker_main(sys.argv)
