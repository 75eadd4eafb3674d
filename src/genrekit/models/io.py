"""Saving and loading a trained :class:`~genrekit.models.cnn.CNNClassifier` without pickle.

A model is a folder with two files:

``model.safetensors``
    The network weights (float32), named as :func:`genrekit.models.cnn.weight_shapes`.
``model.json``
    Everything else: ``format_version``, ``kind`` (``"paper-cnn"``),
    ``genrekit_version``, ``created`` (UTC, ISO 8601), ``feature_names`` (input
    order), ``labels`` (output order), ``scaler`` (``mean`` and ``scale``),
    ``architecture`` (Keras-style layer rows), ``weights`` (file name and
    SHA-256), ``training`` (settings, best epoch, epochs run), ``history`` (per
    epoch) and whatever the caller adds (for example ``data`` with the table's
    SHA-256 and name, and ``metrics``).

Both files are written into a temporary folder beside the destination, which is
then renamed into place, so a reader never sees a half-written model. Loading
needs neither torch nor pickle and checks every part against the others.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from genrekit import __version__
from genrekit.errors import ModelError
from genrekit.models.cnn import CNNClassifier, model_summary, weight_shapes
from genrekit.schema import FEATURE_NAMES

FORMAT_VERSION: int = 1
"""Version of the model folder layout written by :func:`save_model`."""

SUPPORTED_VERSIONS: tuple[int, ...] = (1,)
"""Format versions :func:`load_model_dir` reads."""

KIND: str = "paper-cnn"
"""The ``kind`` field of a saved :class:`~genrekit.models.cnn.CNNClassifier`."""

WEIGHTS_FILE: str = "model.safetensors"
"""Name of the weights file inside a model folder."""

METADATA_FILE: str = "model.json"
"""Name of the metadata file inside a model folder."""

_MODEL_FILES = frozenset({WEIGHTS_FILE, METADATA_FILE})


def _fitted(model: CNNClassifier) -> None:
    """Raise ModelError unless `model` is fitted."""
    if not hasattr(model, "weights_"):
        raise ModelError("cannot save an unfitted CNNClassifier; call fit() first")


def save_model(model: CNNClassifier, directory: str | os.PathLike[str], metadata: dict | None = None) -> None:
    """Save a fitted `model` to the folder `directory` (created or replaced atomically).

    Parameters
    ----------
    model : CNNClassifier
        A fitted classifier.
    directory : path-like
        Destination folder. An existing folder is replaced only if it holds
        nothing but a previous model's files.
    metadata : dict, optional
        Extra JSON-serialisable fields stored at the top level of ``model.json``
        (for example ``{"data": {"sha256": ..., "name": ...}, "metrics": {...}}``).
        They may not reuse a field :func:`save_model` writes itself.

    Raises
    ------
    ModelError
        If the model is unfitted, a metadata key is reserved or not
        JSON-serialisable, or `directory` exists and is not a model folder.
    """
    import safetensors.numpy

    _fitted(model)
    weights = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in model.weights_.items()}
    blob = safetensors.numpy.save(weights)
    document = _document(model, hashlib.sha256(blob).hexdigest())
    clashes = sorted(set(metadata or {}) & set(document))
    if clashes:
        raise ModelError(f"metadata key {clashes[0]!r} is reserved by the model format")
    document.update(metadata or {})
    try:
        text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ModelError(f"metadata cannot be written as JSON: {exc}") from exc
    _replace_folder(Path(directory), {WEIGHTS_FILE: blob, METADATA_FILE: text.encode("utf-8")})


def _document(model: CNNClassifier, weights_sha256: str) -> dict[str, Any]:
    """Return the fields of ``model.json`` that describe `model` itself."""
    n_features, n_classes = model.n_features_in_, len(model.classes_)
    return {
        "format_version": FORMAT_VERSION,
        "kind": KIND,
        "genrekit_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "feature_names": list(FEATURE_NAMES),
        "labels": [str(label) for label in model.classes_],
        "scaler": {"mean": model.scaler_mean_.tolist(), "scale": model.scaler_scale_.tolist()},
        "architecture": model_summary(n_features, n_classes),
        "weights": {"file": WEIGHTS_FILE, "sha256": weights_sha256},
        "training": {
            "epochs": model.epochs,
            "batch_size": model.batch_size,
            "learning_rate": model.learning_rate,
            "patience": model.patience,
            "random_state": model.random_state,
            "best_epoch": model.best_epoch_,
            "n_epochs_run": model.n_epochs_run_,
        },
        "history": model.history_,
    }


def _replace_folder(directory: Path, files: dict[str, bytes]) -> None:
    """Write `files` into a fresh folder beside `directory`, then rename it into place."""
    if directory.exists():
        if not directory.is_dir():
            raise ModelError(f"{directory}: exists and is not a folder")
        foreign = sorted(entry.name for entry in directory.iterdir() if entry.name not in _MODEL_FILES)
        if foreign:
            raise ModelError(
                f"{directory}: exists and holds {foreign[0]!r}, not only a model; choose another"
            )
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; a model folder is an ordinary one
    old = None
    try:
        for name, data in files.items():
            with open(staging / name, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        if directory.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".old", dir=directory.parent))
            old.rmdir()
            directory.rename(old)
        staging.rename(directory)
    except BaseException:
        if old is not None and not directory.exists():
            old.rename(directory)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load_model_dir(directory: str | os.PathLike[str]) -> tuple[CNNClassifier, dict]:
    """Load a model folder written by :func:`save_model`, checking every part.

    Parameters
    ----------
    directory : path-like
        The model folder.

    Returns
    -------
    model : CNNClassifier
        The fitted classifier, ready for ``predict`` / ``predict_proba``.
    metadata : dict
        The whole of ``model.json``.

    Raises
    ------
    ModelError
        Naming what does not match: a missing folder or file, invalid JSON, an
        unsupported format version or kind, feature names other than the GTZAN
        57, scaler vectors of the wrong length or not finite, weight names or
        shapes that do not fit the architecture and the label count, or weights
        that are not the ones ``model.json`` was saved with.
    """
    directory = Path(directory)
    if not directory.is_dir():
        reason = "not a folder" if directory.exists() else "no such model folder"
        raise ModelError(f"{directory}: {reason}")
    for name in (METADATA_FILE, WEIGHTS_FILE):
        if not (directory / name).is_file():
            raise ModelError(f"{directory}: missing {name}")
    json_path = directory / METADATA_FILE
    try:
        document = json.loads(json_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{json_path}: not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ModelError(f"{json_path}: expected a JSON object at the top level")
    _check_header(document, json_path)
    labels = _labels(document, json_path)
    mean, scale = _scaler(document, json_path)
    weights = _weights(directory / WEIGHTS_FILE, document, len(labels), json_path)
    model = _model(document, json_path)
    model.classes_ = np.asarray(labels)
    model.weights_ = weights
    model.scaler_mean_, model.scaler_scale_ = mean, scale
    model.n_features_in_ = len(FEATURE_NAMES)
    model.feature_names_in_ = np.asarray(FEATURE_NAMES, dtype=object)
    return model, document


def _field(document: dict, key: str, kind: type, where: Path) -> Any:
    """Return ``document[key]`` or raise ModelError if it is missing or not of type `kind`."""
    if key not in document:
        raise ModelError(f"{where}: missing field {key!r}")
    value = document[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ModelError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _check_header(document: dict, where: Path) -> None:
    """Check the format version, kind and feature names."""
    version = _field(document, "format_version", int, where)
    if version not in SUPPORTED_VERSIONS:
        supported = ", ".join(map(str, SUPPORTED_VERSIONS))
        raise ModelError(f"{where}: unsupported format_version {version} (this genrekit reads {supported})")
    kind = _field(document, "kind", str, where)
    if kind != KIND:
        raise ModelError(f"{where}: kind {kind!r} is not {KIND!r}")
    names = _field(document, "feature_names", list, where)
    if names != list(FEATURE_NAMES):
        if len(names) != len(FEATURE_NAMES):
            raise ModelError(
                f"{where}: {len(names)} feature names, expected the {len(FEATURE_NAMES)} GTZAN ones"
            )
        i = next(i for i, (a, b) in enumerate(zip(names, FEATURE_NAMES, strict=True)) if a != b)
        raise ModelError(f"{where}: feature_names[{i}] is {names[i]!r}, expected {FEATURE_NAMES[i]!r}")


def _labels(document: dict, where: Path) -> list[str]:
    """Return the label list after checking it is >= 2 distinct non-empty strings."""
    labels = _field(document, "labels", list, where)
    if (
        len(labels) < 2
        or not all(isinstance(x, str) and x for x in labels)
        or len(set(labels)) != len(labels)
    ):
        raise ModelError(f"{where}: field 'labels' must list at least two distinct non-empty names")
    return labels


def _scaler(document: dict, where: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return the scaler mean and scale after checking length, finiteness and positivity."""
    scaler = _field(document, "scaler", dict, where)
    vectors = []
    for key in ("mean", "scale"):
        values = scaler.get(key)
        try:
            vector = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            vector = np.full(0, np.nan)
        if vector.shape != (len(FEATURE_NAMES),) or not np.isfinite(vector).all():
            raise ModelError(f"{where}: scaler {key!r} must be {len(FEATURE_NAMES)} finite numbers")
        vectors.append(vector)
    if (vectors[1] <= 0).any():
        raise ModelError(f"{where}: scaler 'scale' must be positive")
    return vectors[0], vectors[1]


def _weights(path: Path, document: dict, n_classes: int, where: Path) -> dict[str, np.ndarray]:
    """Read the safetensors file and check names, shapes, values and SHA-256."""
    import safetensors
    import safetensors.numpy

    blob = path.read_bytes()
    try:
        weights = safetensors.numpy.load(blob)
    except safetensors.SafetensorError as exc:
        raise ModelError(f"{path}: cannot read weights (truncated or corrupt?): {exc}") from exc
    expected = weight_shapes(len(FEATURE_NAMES), n_classes)
    if set(weights) != set(expected):
        missing = sorted(set(expected) - set(weights))
        extra = sorted(set(weights) - set(expected))
        raise ModelError(
            f"{path}: weight names do not match the architecture (missing {missing}, extra {extra})"
        )
    if weights["dense2.bias"].shape != expected["dense2.bias"]:
        raise ModelError(
            f"{path}: output layer has {weights['dense2.bias'].shape[0]} units"
            f" but {where} lists {n_classes} labels"
        )
    for name, shape in expected.items():
        if weights[name].shape != shape:
            raise ModelError(f"{path}: weight {name!r} has shape {weights[name].shape}, expected {shape}")
        if not np.issubdtype(weights[name].dtype, np.floating) or not np.isfinite(weights[name]).all():
            raise ModelError(f"{path}: weight {name!r} is not finite floating point")
    recorded = _field(document, "weights", dict, where).get("sha256")
    if recorded != hashlib.sha256(blob).hexdigest():
        raise ModelError(f"{path}: SHA-256 differs from the one in {where} (weights from another save?)")
    return weights


def _model(document: dict, where: Path) -> CNNClassifier:
    """Build the classifier from the ``training`` and ``history`` fields."""
    training = _field(document, "training", dict, where)
    params = ("epochs", "batch_size", "learning_rate", "patience", "random_state")
    try:
        model = CNNClassifier(**{param: training[param] for param in params})
        model.best_epoch_ = int(training["best_epoch"])
        model.n_epochs_run_ = int(training["n_epochs_run"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{where}: field 'training' lacks or mangles {exc}") from exc
    model.history_ = _field(document, "history", list, where)
    return model
