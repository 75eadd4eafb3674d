"""Write the parity fixtures of genrekit's musicnn port from the original musicnn (TensorFlow).

Runs in a throwaway reference environment, never in genrekit's own (the versions matter: newer
TensorFlow/NumPy/librosa give a broken reference that tags every clip alike)::

    python3 -m venv /tmp/ref-venv
    /tmp/ref-venv/bin/pip install "tensorflow-cpu==2.15.1" "numpy<2" "librosa==0.10.2.post1"
    /tmp/ref-venv/bin/pip install --no-deps musicnn==0.1.0
    /tmp/ref-venv/bin/python scripts/make_tagger_fixtures.py --data ../shared/data \
        --example joram-moments_of_clarity-08-solipsism-59-88.mp3

``--example`` is the authors' example clip (``audio/`` of the jordipons/musicnn repository): the
script refuses to write fixtures unless the reference reproduces the MTT top-10 their README
publishes for it. Output (derived numbers only, no audio) in ``tests/fixtures/tagger/``:

* ``reference.json``: versions, the published-example check, per-variable checksums of both
  checkpoints as TensorFlow reads them, the tag lists and the clips used.
* ``parity.npz``: per clip and model the taggram (``taggram/<model>/<clip>``) and the 200-d
  penultimate embeddings per patch (``penultimate/<model>/<clip>``); the reference's log-mel
  input (float32) of the first patch of two clips (``mel/<clip>``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np

PUBLISHED_MTT_TOP10 = [
    "techno",
    "electronic",
    "synth",
    "fast",
    "beat",
    "drums",
    "no vocals",
    "no vocal",
    "dance",
    "ambient",
]
"""MTT_musicnn top-10 of the example clip, from the jordipons/musicnn README."""

CLIPS = {
    "blues.00000": "gtzan/audio/blues/blues.00000.flac",
    "classical.00000": "gtzan/audio/classical/classical.00000.flac",
    "metal.00000": "gtzan/audio/metal/metal.00000.flac",
    "trumpet": "cross_dataset/librosa_data/sorohanro_-_solo-trumpet-06.ogg",
}
"""Clips (relative to the test data folder): three 30-s GTZAN clips and a 5.3-s one (one patch)."""

MODELS = ("MTT_musicnn", "MSD_musicnn")
MEL_CLIPS = ("blues.00000", "metal.00000")
"""Clips whose first patch of log-mel input is stored (for the network-only parity test)."""


def _reference_outputs(path: str, model: str, labels: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-mel patches, taggram and penultimate layer per patch from musicnn's own graph.

    ``musicnn.extractor.extractor`` 0.1.0 returns the *first* patch's penultimate layer for every
    patch (its loop unpacks the tensor as ``backend_`` and appends the stale ``penultimate_``),
    so the graph is built and restored here exactly as ``extractor`` does and both outputs are
    fetched in one run; the taggram is checked against ``extractor``'s own.
    """
    import tensorflow as tf
    from musicnn import models
    from musicnn.extractor import batch_data, extractor

    batch, _ = batch_data(path, 187, 187)
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
        is_training = tf.compat.v1.placeholder(tf.bool)
        outputs = models.define_model(x, is_training, model, len(labels))
        probabilities, penultimate = tf.nn.sigmoid(outputs[0]), outputs[-1]
    with tf.compat.v1.Session() as sess:
        tf.compat.v1.train.Saver().restore(sess, str(Path(models.__file__).parent / model) + "/")
        taggram, embeddings = sess.run([probabilities, penultimate], feed_dict={x: batch, is_training: False})
    original, _ = extractor(path, model=model, extract_features=False)
    if not np.allclose(taggram, original, atol=1e-6):
        raise SystemExit(f"{path} {model}: graph run differs from extractor()")
    return batch, taggram, embeddings


def _checksums(model_dir: Path) -> dict[str, dict]:
    """Shape, dtype, SHA-256 of the raw bytes and sum of every variable, read by TensorFlow."""
    import tensorflow as tf

    reader = tf.compat.v1.train.NewCheckpointReader(str(model_dir) + "/")  # prefix: empty file name
    out = {}
    for name in sorted(reader.get_variable_to_shape_map()):
        value = np.asarray(reader.get_tensor(name))  # not ascontiguousarray: it makes scalars 1-d
        out[name] = {
            "shape": list(value.shape),
            "dtype": str(value.dtype),
            "sha256": hashlib.sha256(value.tobytes()).hexdigest(),
            "sum": float(np.sum(value, dtype=np.float64)),
        }
    return out


def main() -> None:
    """Check the reference on the published example, then write the fixtures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="the test data folder (shared/data)")
    parser.add_argument("--example", type=Path, required=True, help="the authors' example mp3")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/fixtures/tagger"
    )
    args = parser.parse_args()

    import librosa
    import musicnn
    import tensorflow as tf
    from musicnn import configuration
    from musicnn.tagger import top_tags

    example = top_tags(str(args.example), model="MTT_musicnn", topN=10, print_tags=False)
    if example != PUBLISHED_MTT_TOP10:
        raise SystemExit(f"reference is broken: example top-10 {example} != published {PUBLISHED_MTT_TOP10}")

    arrays: dict[str, np.ndarray] = {}
    labels = {"MTT_musicnn": configuration.MTT_LABELS, "MSD_musicnn": configuration.MSD_LABELS}
    for clip, rel in CLIPS.items():
        path = str(args.data / rel)
        for model in MODELS:
            batch, taggram, embeddings = _reference_outputs(path, model, labels[model])
            arrays[f"taggram/{model}/{clip}"] = taggram.astype(np.float32)
            arrays[f"penultimate/{model}/{clip}"] = embeddings.astype(np.float32)
        if clip in MEL_CLIPS:
            arrays[f"mel/{clip}"] = batch[0].astype(np.float32)

    package = Path(musicnn.__file__).parent
    reference = {
        "generator": "scripts/make_tagger_fixtures.py",
        "versions": {
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
            "librosa": librosa.__version__,
            "musicnn": "0.1.0",
        },
        "published_example": {
            "file": args.example.name,
            "published_mtt_top10": PUBLISHED_MTT_TOP10,
            "reference_mtt_top10": example,
        },
        "clips": CLIPS,
        "labels": labels,
        "notes": [
            "log-mel: float16-rounded mel power, log10(10000 x + 1) computed in float32 (NumPy 1.x casting)",
            "penultimate: fetched from musicnn's graph; extractor() 0.1.0 repeats the first patch's",
        ],
        "variables": {model: _checksums(package / model) for model in MODELS},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "parity.npz", **arrays)
    (args.out / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")
    print(f"wrote {args.out} ({os.path.getsize(args.out / 'parity.npz')} bytes of arrays)")


if __name__ == "__main__":
    main()
