"""Finding and preparing a crnn_gan_midi config, with a clear `PrepareError` for every
expected failure (unknown config, missing or empty manual folder, no usable MIDI file).

The entry points (`python -m tfds_midi`, `train.py`) turn a `PrepareError` into one line and
exit status 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class PrepareError(ValueError):
    """A dataset that cannot be found or prepared; the message says what to do."""


def config_names() -> list[str]:
    """The crnn_gan_midi configs: default, music21_full, mogren2016, manual."""
    from tfds_midi.crnn_gan_midi import Builder

    return [config.name for config in Builder.BUILDER_CONFIGS]


def get_builder(name: str, data_dir: str | None = None):
    """``tfds.builder(name, data_dir=data_dir)``.

    Raises:
        PrepareError: no such dataset or config.
    """
    import tensorflow_datasets as tfds

    import tfds_midi.crnn_gan_midi  # noqa: F401  (registers crnn_gan_midi)

    dataset, _, config = name.partition("/")
    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise PrepareError(f"no TFDS dataset {dataset!r}: train on crnn_gan_midi/<config>, "
                           f"config one of {', '.join(config_names())}") from None
    except ValueError as error:
        if dataset == "crnn_gan_midi" and config not in config_names():
            raise PrepareError(f"crnn_gan_midi has no config {config!r}: choose one of "
                               f"{', '.join(config_names())}") from None
        raise PrepareError(f"cannot open {name}: {str(error).splitlines()[0]}") from None


def check_data_dir(data_dir: str | None) -> None:
    """Makes ``--data_dir`` if it is missing (TFDS would, on its first write).

    Raises:
        PrepareError: it is a file, or cannot be made; the message names ``--data_dir``.
    """
    if not data_dir:
        return
    import tensorflow as tf

    if tf.io.gfile.exists(data_dir) and not tf.io.gfile.isdir(data_dir):
        raise PrepareError(f"--data_dir={data_dir} is a file: give a folder")
    try:
        tf.io.gfile.makedirs(data_dir)
    except tf.errors.OpError as error:
        raise PrepareError(f"--data_dir={data_dir} cannot be made: {error.message}") from None


def check_manual_dir(builder, manual_dir: str | None) -> None:
    """Checks ``--manual_dir`` when `builder` is crnn_gan_midi/manual and not yet prepared.

    Raises:
        PrepareError: no folder given, no such folder, or no MIDI file in it; a folder
            given for another config (which would ignore it).
    """
    import tensorflow as tf

    from tfds_midi.crnn_gan_midi.crnn_gan_midi_dataset_builder import MIDI_SUFFIXES

    config = getattr(builder, "builder_config", None)
    if getattr(config, "corpus", None) != "manual":
        if manual_dir:
            raise PrepareError(f"--manual_dir={manual_dir}: only crnn_gan_midi/manual reads "
                               f"MIDI files from a folder; crnn_gan_midi/{config.name} does "
                               "not: leave --manual_dir out, or use crnn_gan_midi/manual")
        return
    if builder.is_prepared():
        return
    layout = ("your MIDI files (.mid, .midi, .kar), one sub-folder per composer, e.g. "
              "bach/bwv772.mid")
    if not manual_dir:
        raise PrepareError(f"crnn_gan_midi/manual needs --manual_dir=FOLDER: {layout}")
    if not tf.io.gfile.isdir(manual_dir):
        what = "is a file" if tf.io.gfile.exists(manual_dir) else "does not exist"
        raise PrepareError(f"--manual_dir={manual_dir} {what}: give the folder of {layout}")
    for _, _, files in tf.io.gfile.walk(manual_dir):
        if any(name.lower().endswith(MIDI_SUFFIXES) for name in files):
            return
    raise PrepareError(f"--manual_dir={manual_dir} holds no MIDI file: put {layout} in it")


def check(name: str, data_dir: str | None = None, manual_dir: str | None = None):
    """`get_builder` and `check_manual_dir`: the builder, once nothing stands in the way
    of preparing it (what `train.py` checks before it starts)."""
    builder = get_builder(name, data_dir)
    check_manual_dir(builder, manual_dir)
    return builder


def prepare(builder, manual_dir: str | None = None):
    """Prepares `builder`'s config (a no-op when it is prepared) and returns the builder.

    Raises:
        PrepareError: see `check_manual_dir`; also when none of the files decodes.
    """
    import tensorflow_datasets as tfds

    check_manual_dir(builder, manual_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return builder
