"""The models generation runs: a train.py run or an export, behind one interface.

The model is a train.py run (its final generator, or its best or latest checkpoint), an
export of ``python -m export`` (its SavedModel's ``prime`` and ``step`` signatures: what an
app sees), or the generator the repository ships (``request.PRETRAINED``). Both kinds answer
the same three calls (`KerasModel`, `ExportModel`): ``zero_state``, ``prime`` (G's state
warmed on a primer, `crnn_gan.generator.Generator.prime`) and ``run`` (free running from a
state, in chunks, so that long songs show progress and never hold more than one chunk's
graph). `load_model` picks one from generate.py's flags.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from crnn_gan.generation.request import PRETRAINED, GenerationError

#: `--checkpoint` -> the weights file in a run folder.
CHECKPOINTS = {"final": "generator.weights.h5", "best": "checkpoints/best.weights.h5",
               "latest": "checkpoints/latest.weights.h5"}
STATE_NAMES = ("h", "c", "previous")


class _Model:
    """What generation needs of a model. ``state``: ``{"h", "c": [L, B, U], "previous":
    [B, F]}`` (the exports' `step` state); tones in raw units ``[B, T, tones_per_step, 4]``."""

    description: str
    tones_per_step: int
    num_layers: int
    units: int

    @property
    def num_features(self) -> int:
        return 4 * self.tones_per_step

    def zero_state(self, batch: int) -> dict:
        zeros = np.zeros([self.num_layers, batch, self.units], np.float32)
        return {"h": zeros, "c": zeros, "previous": np.zeros([batch, self.num_features],
                                                             np.float32)}

    def _specs(self):
        return [tf.TensorSpec([None, None, self.num_features], tf.float32),
                tf.TensorSpec([self.num_layers, None, self.units], tf.float32),
                tf.TensorSpec([self.num_layers, None, self.units], tf.float32),
                tf.TensorSpec([None, self.num_features], tf.float32)]

    def prime(self, primer: np.ndarray) -> dict:
        """State after priming on raw tones ``[B, n, tones_per_step, 4]``."""
        raise NotImplementedError

    def run(self, noise: np.ndarray, state: dict) -> tuple[np.ndarray, dict]:
        """Free running over ``noise [B, T, F]`` from `state`: (raw tones, next state)."""
        raw, h, c, previous = self._run(tf.constant(noise, tf.float32),
                                        *(tf.constant(state[k]) for k in STATE_NAMES))
        return raw.numpy(), {"h": h.numpy(), "c": c.numpy(), "previous": previous.numpy()}


class KerasModel(_Model):
    """A generator of a train.py run (`crnn_gan.generator.Generator` and its scaler)."""

    def __init__(self, generator, scaler, description: str):
        self.generator, self.scaler, self.description = generator, scaler, description
        self.tones_per_step = generator.tones_per_step
        self.num_layers, self.units = generator.num_layers, generator.units
        self._run = tf.function(self._run_graph, input_signature=self._specs())
        self._prime = tf.function(self._prime_graph, input_signature=[
            tf.TensorSpec([None, None, self.tones_per_step, 4], tf.float32)])

    def _raw(self, normalized):
        raw = self.scaler.denormalize(normalized)
        return tf.reshape(raw, tf.concat([tf.shape(raw)[:-1], [self.tones_per_step, 4]], 0))

    def _run_graph(self, noise, h, c, previous):
        states = list(zip(tf.unstack(h, num=self.num_layers), tf.unstack(c, num=self.num_layers)))
        outputs, states, previous = self.generator.free_run(
            noise, initial=(states, previous), return_state=True)
        return (self._raw(outputs), tf.stack([s[0] for s in states]),
                tf.stack([s[1] for s in states]), previous)

    def _prime_graph(self, tones):
        steps = tf.reshape(tones, tf.concat([tf.shape(tones)[:2], [self.num_features]], 0))
        # The scaler's normalisation as a graph op, as in the exports' `prime`.
        states, previous = self.generator.prime(self.scaler.normalize(steps))
        return {"h": tf.stack([s[0] for s in states]), "c": tf.stack([s[1] for s in states]),
                "previous": previous}

    def prime(self, primer):
        return {k: v.numpy() for k, v in self._prime(tf.constant(primer, tf.float32)).items()}


class ExportModel(_Model):
    """An export's SavedModel, through its ``step`` and ``prime`` signatures only."""

    def __init__(self, path: str, description: str):
        try:
            loaded = tf.saved_model.load(path)
        except (ValueError, OSError, tf.errors.OpError) as error:
            raise GenerationError(f"{path} cannot be loaded as a SavedModel "
                                  f"({str(error).splitlines()[0][:200]}): export the run again"
                                  ) from None
        missing = [name for name in ("serving_default", "step") if name not in loaded.signatures]
        if missing:
            raise GenerationError(f"{path} has no {' or '.join(missing)} signature: it is not "
                                  "a generator exported by `python -m export`")
        self._loaded, self.path, self.description = loaded, path, description
        self._step = loaded.signatures["step"]
        specs = self._step.structured_input_signature[1]
        self.num_layers, _, self.units = specs["h"].shape.as_list()
        self.tones_per_step = specs["noise"].shape[-1] // 4
        self._run = tf.function(self._run_graph, input_signature=self._specs())

    def _run_graph(self, noise, h, c, previous):
        steps = tf.shape(noise)[1]
        tones = tf.TensorArray(tf.float32, size=steps)

        def body(t, h, c, previous, tones):
            out = self._step(noise=noise[:, t], h=h, c=c, previous=previous)
            return t + 1, out["h"], out["c"], out["previous"], tones.write(t, out["tones"])

        _, h, c, previous, tones = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(0), h, c, previous, tones),
            maximum_iterations=steps)
        return tf.transpose(tones.stack(), [1, 0, 2, 3]), h, c, previous

    def prime(self, primer):
        if "prime" not in self._loaded.signatures:
            raise GenerationError(
                f"{self.path} has no prime signature (exported before primers were "
                "supported): export its run again with `python -m export` to continue a "
                "primer, or leave --primer_midi out")
        out = self._loaded.signatures["prime"](tones=tf.constant(primer, tf.float32))
        return {k: out[k].numpy() for k in STATE_NAMES}


def _is_export(folder: str) -> str | None:
    """The SavedModel folder of an export (``folder/saved_model`` or `folder`), or None."""
    for candidate in (f"{folder}/saved_model", folder):
        if tf.io.gfile.exists(f"{candidate}/saved_model.pb"):
            return candidate
    return None


def load_run(model_dir: str, checkpoint: str = "final") -> KerasModel:
    """The generator of a train.py run at `checkpoint` ("final", "best" or "latest").

    "final" is the run's ``generator.weights.h5``; "best" and "latest" are checkpoints of
    the whole model (GAN or baseline), from which G is taken.

    Raises:
        GenerationError: naming the missing or damaged file.
    """
    from crnn_gan import run_dir, training
    from tfds_midi import pipeline

    if checkpoint not in CHECKPOINTS:
        raise GenerationError(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}, "
                              f"got {checkpoint!r}")
    try:
        record = run_dir.read_record(model_dir)
    except run_dir.RunDirError as error:
        raise GenerationError(str(error)) from None
    weights = f"{model_dir}/{CHECKPOINTS[checkpoint]}"
    if not tf.io.gfile.exists(weights):
        if checkpoint == "final":
            try:
                progress = run_dir.read_progress(model_dir)
            except run_dir.RunDirError:
                progress = None
            done = f" ({progress['epochs_done']} of its epochs done)" if progress else ""
            raise GenerationError(
                f"{model_dir} has no generator.weights.h5: the run has not finished{done}. "
                "Give --checkpoint=latest (or best), or run its train.py command again to "
                "finish it")
        why = (" (written only by runs that generate samples: --samples_per_epoch > 0)"
               if checkpoint == "best" else "")
        raise GenerationError(f"{model_dir} has no {CHECKPOINTS[checkpoint]}{why}: give "
                              "another --checkpoint")
    scaler_path = f"{model_dir}/scaler.json"
    if not tf.io.gfile.exists(scaler_path):
        raise GenerationError(f"{model_dir} has no scaler.json (the feature scaling the run "
                              "was trained with): it is not a complete train.py run")
    try:
        scaler = pipeline.FeatureScaler.load(scaler_path)
    except (ValueError, KeyError, TypeError) as error:
        raise GenerationError(f"{scaler_path} is damaged: {error}") from None
    from crnn_gan.config import Config

    config = Config(**record["config"])
    try:
        if checkpoint == "final":
            generator = training.build_generator(config)
            generator.build()
            generator.load_weights(weights)
        else:
            model = training.build_model(config, record.get("model", "gan"))
            model.build_for_training()  # the checkpoint holds the optimisers' state too
            model.load_weights(weights)
            generator = model.generator
    except (ValueError, OSError, KeyError) as error:  # Keras: mismatch; h5py: not HDF5
        raise GenerationError(f"{weights} does not fit {model_dir}/config.json or is damaged: "
                              f"{str(error).splitlines()[0].rstrip(':')}") from None
    return KerasModel(generator, scaler, f"{model_dir} ({checkpoint} weights)")


def load_model(model_dir: str | None = None, export: str | None = None,
               checkpoint: str = "final", pretrained: str | os.PathLike = PRETRAINED):
    """The model of generate.py's flags: `model_dir` (a run, or an export), `export`, or
    with neither the shipped `pretrained` export.

    Raises:
        GenerationError: both given, a folder that does not exist or holds neither a run
            nor an export (the message lists the files looked for), no shipped model, a
            `checkpoint` other than "final" for an export.
    """
    if model_dir and export:
        raise GenerationError("give --model_dir or --export, not both")
    model = _load(model_dir, export, checkpoint, pretrained)
    if checkpoint != "final" and isinstance(model, ExportModel):
        raise GenerationError(f"--checkpoint={checkpoint} picks the weights of a train.py run,"
                              f" and {model.description} holds one generator: leave "
                              "--checkpoint out, or give the run as --model_dir")
    return model


def _load(model_dir, export, checkpoint, pretrained):
    """`load_model` without its check of `checkpoint` against an export."""
    if export:
        export = export.rstrip("/")
        if not tf.io.gfile.exists(export):
            raise GenerationError(f"--export={export} does not exist: give a folder written "
                                  "by `python -m export`")
        found = _is_export(export)
        if found is None:
            raise GenerationError(
                f"--export={export} is not an export: it has neither saved_model/saved_model.pb"
                " nor saved_model.pb" + (" (it is a train.py run: give it as --model_dir)"
                                         if tf.io.gfile.exists(f"{export}/config.json") else ""))
        return ExportModel(found, f"export {export}")
    if not model_dir:
        pretrained = str(pretrained)
        found = _is_export(pretrained)
        if found is None:
            raise GenerationError(
                f"no --model_dir or --export given, and the shipped generator {pretrained} is "
                "not there: give --model_dir=RUN (a train.py run) or --export=DIR (a folder "
                "written by `python -m export`)")
        return ExportModel(found, f"the shipped generator {pretrained}")
    model_dir = model_dir.rstrip("/")
    flag = f"--model_dir={model_dir}"
    if not tf.io.gfile.isdir(model_dir):
        what = "is a file" if tf.io.gfile.exists(model_dir) else "does not exist"
        raise GenerationError(f"{flag} {what}: give the folder of a train.py run or of an "
                              "export")
    if tf.io.gfile.exists(f"{model_dir}/config.json"):
        return load_run(model_dir, checkpoint)
    found = _is_export(model_dir)
    if found is not None:
        return ExportModel(found, f"export {model_dir}")
    raise GenerationError(
        f"{flag} holds neither a train.py run nor an export: looked for config.json, "
        "scaler.json and generator.weights.h5 (a run) and for saved_model/saved_model.pb or "
        "saved_model.pb (an export of `python -m export`)")
