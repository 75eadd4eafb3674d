"""Saving and loading trained models without pickle.

A model is a folder with two files, ``model.json`` and ``model.safetensors``, in
one of two layouts.

Format 1, kind ``"paper-cnn"`` (the paper's :class:`~genrekit.models.cnn.CNNClassifier`):

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

Format 2, kind ``"genrekit-model"`` (every other recipe of :mod:`genrekit.models.registry`):

``model.safetensors``
    Every array of the fitted model (float64, int64 or float32), named by its
    place in the model (``model/1/coef``, ``model/0/1/mean``, ...).
``model.json``
    ``format_version`` (2), ``kind``, ``genrekit_version``, ``created``,
    ``feature_names``, ``labels``, ``model`` (the node tree described in
    :mod:`genrekit.models.portable`: node types such as ``pipeline``,
    ``transform``, ``svc``, ``lightgbm``, ``voting``, each naming its arrays),
    ``weights`` (file name and SHA-256) and whatever the caller adds (``recipe``
    with the transform and tuning grid, ``chosen`` hyperparameters,
    ``cross_validation``, ``calibration``, ...).

Both files are written into a temporary folder beside the destination, which is
then renamed into place, so a reader never sees a half-written model. Loading
checks every part against the others and returns a
:class:`~genrekit.models.portable.PortableClassifier`: prediction runs in NumPy
and imports neither torch, scikit-learn, pandas, SciPy nor LightGBM.

``feature_names`` are the table columns the model was trained on, in input order: the 57
GTZAN features, or the columns of tagger embeddings (``msd_emb_000`` ..., see
:func:`genrekit.datasets.table.declared_features`) for a model trained on a table of
``genrekit extract --embeddings``. :func:`load_model_dir` refuses an embedding model unless asked
for any features: the callers that read its record, and :func:`genrekit.load_model`, which
computes the embeddings from audio with the musicnn taggers the columns name; the commands that
need the 57 features (``model explain``, ``model calibration``, the shift reference) refuse it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np

from genrekit.core.errors import ModelError, TableError
from genrekit.core.schema import FEATURE_NAMES, declared_features
from genrekit.core.version import __version__
from genrekit.models.portable import PortableClassifier, array_names

FORMAT_VERSION: int = 1
"""Version of the layout of a saved paper CNN."""

PORTABLE_VERSION: int = 2
"""Version of the layout of every other saved model."""

SUPPORTED_VERSIONS: tuple[int, ...] = (1, 2)
"""Format versions :func:`load_model_dir` reads."""

KIND: str = "paper-cnn"
"""The ``kind`` field of a saved :class:`~genrekit.models.cnn.CNNClassifier`."""

PORTABLE_KIND: str = "genrekit-model"
"""The ``kind`` field of every other saved model."""

_KINDS: dict[int, str] = {FORMAT_VERSION: KIND, PORTABLE_VERSION: PORTABLE_KIND}

CNN_PARAMS: tuple[str, ...] = ("epochs", "batch_size", "learning_rate", "patience", "random_state")
"""CNN settings every format-1 ``training`` field holds (``dropout`` and ``weight_decay`` are optional)."""

WEIGHTS_FILE: str = "model.safetensors"
"""Name of the weights file inside a model folder."""

METADATA_FILE: str = "model.json"
"""Name of the metadata file inside a model folder."""

_MODEL_FILES = frozenset({WEIGHTS_FILE, METADATA_FILE, "shift.json"})  # shift.json: genrekit.shift

SHIPPED_MODELS: dict[str, Path] = {
    "shipped": Path(__file__).parent / "pretrained",
    "cnn": Path(__file__).parent / "pretrained_cnn",
}
"""Models that ship with genrekit besides the default one, by name (``load_model_dir("cnn")``)."""


class SavedCNN(PortableClassifier):
    """A loaded paper CNN: NumPy prediction plus the saved training record.

    Attributes
    ----------
    weights_ : dict of str to numpy.ndarray
        The network weights.
    scaler_mean_, scaler_scale_ : numpy.ndarray
        z-score statistics of its training rows.
    params : dict
        The :class:`~genrekit.models.cnn.CNNClassifier` settings it was trained with.
    history_ : list of dict
        Per-epoch training record.
    best_epoch_, n_epochs_run_ : int
        Epoch whose weights were kept, epochs run.
    """

    def __init__(
        self,
        weights: dict,
        mean: np.ndarray,
        scale: np.ndarray,
        labels: list[str],
        feature_names: Sequence[str] = FEATURE_NAMES,
    ) -> None:
        arrays = {"scaler_mean": mean, "scaler_scale": scale, **weights}
        spec = {"type": "cnn", "arrays": {name: name for name in arrays}}
        super().__init__(spec, arrays, labels, len(feature_names))
        self.weights_, self.scaler_mean_, self.scaler_scale_ = weights, mean, scale
        self.feature_names_in_ = np.asarray(feature_names, dtype=object)

    def to_estimator(self):
        """Return an equivalent fitted :class:`~genrekit.models.cnn.CNNClassifier` (imports scikit-learn)."""
        from genrekit.models.cnn import CNNClassifier

        model = CNNClassifier(**self.params)
        for name in ("classes_", "weights_", "scaler_mean_", "scaler_scale_", "n_features_in_"):
            setattr(model, name, getattr(self, name))
        for name in ("feature_names_in_", "history_", "best_epoch_", "n_epochs_run_"):
            setattr(model, name, getattr(self, name))
        return model


def _is_cnn(model: Any) -> bool:
    """Whether `model` is the paper's CNNClassifier (without importing it)."""
    return type(model).__name__ == "CNNClassifier"


def save_model(
    model: Any,
    directory: str | os.PathLike[str],
    metadata: dict | None = None,
    feature_names: Sequence[str] = FEATURE_NAMES,
) -> None:
    """Save a fitted `model` to the folder `directory` (created or replaced atomically).

    Parameters
    ----------
    model : estimator
        A fitted :class:`~genrekit.models.cnn.CNNClassifier` (format 1) or any
        classifier :func:`genrekit.models.export.export_model` supports (format 2).
    directory : path-like
        Destination folder. An existing folder is replaced only if it holds
        nothing but a previous model's files.
    metadata : dict, optional
        Extra JSON-serialisable fields stored at the top level of ``model.json``
        (for example ``{"data": {"sha256": ..., "name": ...}, "metrics": {...}}``).
        They may not reuse a field :func:`save_model` writes itself.
    feature_names : sequence of str
        The columns the model was trained on, in input order (``feature_names``): the 57
        GTZAN features by default, or the columns of an embedding table.

    Raises
    ------
    ModelError
        If the model is unfitted or has no portable form, its input width differs from
        the length of `feature_names`, a metadata key is reserved or not JSON-serialisable,
        or `directory` exists and is not a model folder.
    """
    feature_names = list(feature_names)
    if getattr(model, "n_features_in_", len(feature_names)) != len(feature_names):
        raise ModelError(
            f"cannot save a model of {model.n_features_in_} features as one of {len(feature_names)} "
            f"({feature_names[0]!r} ...)"
        )
    import safetensors.numpy

    if _is_cnn(model):
        if not hasattr(model, "weights_"):
            raise ModelError("cannot save an unfitted CNNClassifier; call fit() first")
        arrays = {
            name: np.ascontiguousarray(value, dtype=np.float32) for name, value in model.weights_.items()
        }
        blob = safetensors.numpy.save(arrays)
        document = _document(model, hashlib.sha256(blob).hexdigest(), feature_names)
    else:
        from genrekit.models.export import export_model

        spec, arrays = export_model(model)
        blob = safetensors.numpy.save(arrays)
        document = _portable_document(model, spec, hashlib.sha256(blob).hexdigest(), feature_names)
    clashes = sorted(set(metadata or {}) & set(document))
    if clashes:
        raise ModelError(f"metadata key {clashes[0]!r} is reserved by the model format")
    document.update(metadata or {})
    try:
        text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ModelError(f"metadata cannot be written as JSON: {exc}") from exc
    _replace_folder(Path(directory), {WEIGHTS_FILE: blob, METADATA_FILE: text.encode("utf-8")})


def _header(version: int, labels: Any, feature_names: list[str]) -> dict[str, Any]:
    """Return the fields every ``model.json`` starts with."""
    return {
        "format_version": version,
        "kind": _KINDS[version],
        "genrekit_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "feature_names": feature_names,
        "labels": [str(label) for label in labels],
    }


def _portable_document(
    model: Any, spec: dict, weights_sha256: str, feature_names: list[str]
) -> dict[str, Any]:
    """Return the fields of a format-2 ``model.json`` that describe `model` itself."""
    return {
        **_header(PORTABLE_VERSION, model.classes_, feature_names),
        "model": spec,
        "weights": {"file": WEIGHTS_FILE, "sha256": weights_sha256},
    }


def _document(model: Any, weights_sha256: str, feature_names: list[str]) -> dict[str, Any]:
    """Return the fields of a format-1 ``model.json`` that describe the CNN `model` itself."""
    from genrekit.models.cnn import model_summary

    n_features, n_classes = model.n_features_in_, len(model.classes_)
    return {
        **_header(FORMAT_VERSION, model.classes_, feature_names),
        "scaler": {"mean": model.scaler_mean_.tolist(), "scale": model.scaler_scale_.tolist()},
        "architecture": model_summary(n_features, n_classes),
        "weights": {"file": WEIGHTS_FILE, "sha256": weights_sha256},
        "training": {
            "epochs": model.epochs,
            "batch_size": model.batch_size,
            "learning_rate": model.learning_rate,
            "patience": model.patience,
            "dropout": model.dropout,
            "weight_decay": model.weight_decay,
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


def load_model_dir(
    directory: str | os.PathLike[str], any_features: bool = False
) -> tuple[PortableClassifier, dict]:
    """Load a model folder written by :func:`save_model`, checking every part.

    Parameters
    ----------
    directory : path-like
        The model folder, or the name of a shipped model (:data:`SHIPPED_MODELS`:
        ``"shipped"``, the default model, or ``"cnn"``, the paper's CNN) when no folder
        of that name exists.
    any_features : bool
        Also load a model trained on other columns than the 57 GTZAN features (tagger
        embeddings); refused otherwise, naming its columns.

    Returns
    -------
    model : PortableClassifier
        The fitted classifier (a :class:`SavedCNN` for a paper CNN): ``classes_``,
        ``decision_function`` (logits), ``predict_proba`` and ``predict``, in NumPy.
    metadata : dict
        The whole of ``model.json``.

    Raises
    ------
    ModelError
        Naming what does not match: a missing folder or file, invalid JSON, an
        unsupported format version or kind, feature names other than the GTZAN
        57 or the columns of embeddings (other than the GTZAN 57 unless `any_features`),
        scaler vectors of the wrong length or not finite, weight names or
        shapes that do not fit the architecture and the label count, or weights
        that are not the ones ``model.json`` was saved with.
    """
    directory = Path(directory)
    if not directory.exists() and str(directory) in SHIPPED_MODELS:
        directory = SHIPPED_MODELS[str(directory)]
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
    version = _check_header(document, json_path)
    labels = _labels(document, json_path)
    names = document["feature_names"]
    weights_path = directory / WEIGHTS_FILE
    blob = weights_path.read_bytes()
    arrays = _read_arrays(blob, weights_path)
    if version == FORMAT_VERSION:
        model = _cnn(document, arrays, labels, weights_path, json_path)
    else:
        model = _portable(document, arrays, labels, weights_path, json_path)
    recorded = _field(document, "weights", dict, json_path).get("sha256")
    if recorded != hashlib.sha256(blob).hexdigest():
        raise ModelError(
            f"{weights_path}: SHA-256 differs from the one in {json_path} (weights from another save?)"
        )
    if names != list(FEATURE_NAMES) and not any_features:
        raise ModelError(
            f"{directory}: trained on {len(names)} columns {names[0]!r} ... {names[-1]!r} (tagger "
            "embeddings), not on the 57 GTZAN features this reads; `genrekit predict` and `genrekit "
            f"evaluate` classify audio with it, `genrekit model info {directory}` shows its record"
        )
    return model, document


def _field(document: dict, key: str, kind: type, where: Path) -> Any:
    """Return ``document[key]`` or raise ModelError if it is missing or not of type `kind`."""
    if key not in document:
        raise ModelError(f"{where}: missing field {key!r}")
    value = document[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ModelError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _check_header(document: dict, where: Path) -> int:
    """Check the format version, kind and feature names; return the version."""
    version = _field(document, "format_version", int, where)
    if version not in SUPPORTED_VERSIONS:
        supported = ", ".join(map(str, SUPPORTED_VERSIONS))
        raise ModelError(f"{where}: unsupported format_version {version} (this genrekit reads {supported})")
    kind = _field(document, "kind", str, where)
    if kind != _KINDS[version]:
        raise ModelError(f"{where}: kind {kind!r} is not {_KINDS[version]!r} (format {version})")
    names = _field(document, "feature_names", list, where)
    if not all(isinstance(name, str) for name in names):
        raise ModelError(f"{where}: field 'feature_names' must list column names")
    try:
        declared = list(declared_features(names))
    except TableError as exc:
        raise ModelError(f"{where}: feature_names: {exc}") from None
    if declared != list(FEATURE_NAMES):
        if names != declared:  # an embedding's columns, all of them, in order
            i, (got, wanted) = next(
                (i, pair) for i, pair in enumerate(zip_longest(names, declared)) if pair[0] != pair[1]
            )
            raise ModelError(f"{where}: feature_names[{i}] is {got!r}, expected {wanted!r}")
    elif names != list(FEATURE_NAMES):
        if len(names) != len(FEATURE_NAMES):
            raise ModelError(
                f"{where}: {len(names)} feature names, expected the {len(FEATURE_NAMES)} GTZAN ones"
            )
        i = next(i for i, (a, b) in enumerate(zip(names, FEATURE_NAMES, strict=True)) if a != b)
        raise ModelError(f"{where}: feature_names[{i}] is {names[i]!r}, expected {FEATURE_NAMES[i]!r}")
    return version


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
    n_features = len(document["feature_names"])
    scaler = _field(document, "scaler", dict, where)
    vectors = []
    for key in ("mean", "scale"):
        values = scaler.get(key)
        try:
            vector = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            vector = np.full(0, np.nan)
        if vector.shape != (n_features,) or not np.isfinite(vector).all():
            raise ModelError(f"{where}: scaler {key!r} must be {n_features} finite numbers")
        vectors.append(vector)
    if (vectors[1] <= 0).any():
        raise ModelError(f"{where}: scaler 'scale' must be positive")
    return vectors[0], vectors[1]


def _read_arrays(blob: bytes, path: Path) -> dict[str, np.ndarray]:
    """Read a safetensors file's arrays and check that they are finite numbers."""
    import safetensors
    import safetensors.numpy

    try:
        arrays = safetensors.numpy.load(blob)
    except safetensors.SafetensorError as exc:
        raise ModelError(f"{path}: cannot read weights (truncated or corrupt?): {exc}") from exc
    for name, value in arrays.items():
        if value.dtype.kind not in "fiu" or (value.dtype.kind == "f" and not np.isfinite(value).all()):
            raise ModelError(f"{path}: array {name!r} is not finite numbers")
    return arrays


def _cnn(document: dict, weights: dict, labels: list[str], path: Path, where: Path) -> SavedCNN:
    """Check a format-1 CNN's scaler and weights against its architecture and build it."""
    from genrekit.models.portable_nets import weight_shapes

    mean, scale = _scaler(document, where)
    names = document["feature_names"]
    expected = weight_shapes(len(names), len(labels))
    if set(weights) != set(expected):
        missing = sorted(set(expected) - set(weights))
        extra = sorted(set(weights) - set(expected))
        raise ModelError(
            f"{path}: weight names do not match the architecture (missing {missing}, extra {extra})"
        )
    if weights["dense2.bias"].shape != expected["dense2.bias"]:
        raise ModelError(
            f"{path}: output layer has {weights['dense2.bias'].shape[0]} units"
            f" but {where} lists {len(labels)} labels"
        )
    for name, shape in expected.items():
        if weights[name].shape != shape:
            raise ModelError(f"{path}: weight {name!r} has shape {weights[name].shape}, expected {shape}")
        if not np.issubdtype(weights[name].dtype, np.floating):
            raise ModelError(f"{path}: weight {name!r} is not finite floating point")
    model = SavedCNN(weights, mean, scale, labels, names)
    training = _field(document, "training", dict, where)
    try:
        model.params = {param: training[param] for param in CNN_PARAMS}
        model.params |= {key: training[key] for key in ("dropout", "weight_decay") if key in training}
        model.best_epoch_ = int(training["best_epoch"])
        model.n_epochs_run_ = int(training["n_epochs_run"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{where}: field 'training' lacks or mangles {exc}") from exc
    model.history_ = _field(document, "history", list, where)
    return model


def _portable(document: dict, arrays: dict, labels: list[str], path: Path, where: Path) -> PortableClassifier:
    """Check a format-2 model's node tree against its arrays and labels and build it."""
    spec = _field(document, "model", dict, where)
    missing = sorted(set(array_names(spec)) - set(arrays))
    if missing:
        raise ModelError(f"{path}: lacks array(s) {missing[:3]} that {where} names")
    names = document["feature_names"]
    model = PortableClassifier(spec, arrays, labels, len(names))
    model.feature_names_in_ = np.asarray(names, dtype=object)
    try:
        logits = model.decision_function(np.zeros((1, len(names))))
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        raise ModelError(f"{where}: the model tree does not fit its arrays: {exc}") from exc
    if logits.shape != (1, len(labels)):
        raise ModelError(f"{where}: the model has {logits.shape[1]} outputs but lists {len(labels)} labels")
    return model
