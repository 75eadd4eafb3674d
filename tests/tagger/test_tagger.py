"""The musicnn port (genrekit.tagger): checkpoint reader, weights cache, parity, CLI.

Parity fixtures come from the original musicnn under TensorFlow (scripts/make_tagger_fixtures.py,
run in a pinned reference environment that reproduces the authors' published example). The
weights are obtained once per session through the real ``pip download`` code path (PyPI), or
from the wheel named by ``GENREKIT_MUSICNN_WHEEL`` on an offline machine.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from genrekit.core.errors import AudioError, ModelError
from genrekit.tagger import Tagger, tag_file
from genrekit.tagger.checkpoint import read_checkpoint, read_index
from genrekit.tagger.frontend import LogMelStream, log_mel, patches
from genrekit.tagger.network import PATCH_FRAMES, variable_names
from genrekit.tagger.weights import CHECKPOINTS, load_weights

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tagger"
REFERENCE = json.loads((FIXTURES / "reference.json").read_text())
MODELS = {"mtt": "MTT_musicnn", "msd": "MSD_musicnn"}

# Tolerances, from the reference's own numerical noise:
# * the network on the reference's log-mel input: float32 sums of up to 3927 products in another
#   order than TensorFlow's (observed max differences: probabilities 1e-6, embeddings 1e-5);
NET_ATOL = {"probabilities": 1e-5, "embeddings": 1e-4}
# * from audio: the log-mel rounds mel powers to float16, so a last-bit difference of the FFT
#   (float64 either way, another library) moves a few values by one float16 step (3e-4 after the
#   log; observed in 3e-5 of the values), which reaches the outputs attenuated (observed max
#   differences: probabilities 1e-6, embeddings 1e-5);
AUDIO_ATOL = {"probabilities": 1e-4, "embeddings": 1e-3}
MEL_ATOL, MEL_FRACTION = 1e-3, 1e-3


@pytest.fixture(scope="session")
def taggers(tagger_cache: Path, musicnn_wheel: Path) -> dict[str, Tagger]:
    """Both taggers: ``msd`` obtained as a user gets it (pip download into an empty cache), ``mtt``
    from the wheel as with ``--weights`` (both from the wheel when GENREKIT_MUSICNN_WHEEL is set)."""
    offline = bool(os.environ.get("GENREKIT_MUSICNN_WHEEL"))
    return {"msd": Tagger("msd", musicnn_wheel if offline else None), "mtt": Tagger("mtt", musicnn_wheel)}


@pytest.fixture(scope="session")
def parity() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "parity.npz") as data:
        return dict(data)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory, musicnn_wheel: Path) -> Path:
    """Both checkpoints unpacked from the wheel (``<root>/musicnn/<model>/.index`` ...)."""
    root = tmp_path_factory.mktemp("unpacked")
    with zipfile.ZipFile(musicnn_wheel) as archive:
        for member in archive.namelist():
            if member.split("/")[1:2] in (["MTT_musicnn"], ["MSD_musicnn"]):
                archive.extract(member, root)
    return root


# --- checkpoint reader ------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS.values())
def test_checkpoint_reader_matches_tensorflow(checkpoints: Path, model: str) -> None:
    """Every variable, Adam slots included, byte-identical to what TensorFlow's reader returned."""
    expected = REFERENCE["variables"][model]
    values = read_checkpoint(checkpoints / "musicnn" / model, verify_crc=False)
    assert sorted(values) == sorted(expected)
    for name, value in values.items():
        assert list(value.shape) == expected[name]["shape"], name
        assert (
            hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest() == expected[name]["sha256"]
        ), name


def test_checkpoint_reader_checks_crc(checkpoints: Path, tmp_path: Path) -> None:
    source = checkpoints / "musicnn" / "MTT_musicnn"
    for name in (".index", ".data-00000-of-00001"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    assert read_checkpoint(tmp_path, {"dense_1/bias"}, verify_crc=True)["dense_1/bias"].shape == (50,)
    entry = read_index((tmp_path / ".index").read_bytes())["dense_1/bias"]
    data = bytearray((tmp_path / ".data-00000-of-00001").read_bytes())
    data[entry.offset + 3] ^= 0x40
    (tmp_path / ".data-00000-of-00001").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="CRC32C mismatch"):
        read_checkpoint(tmp_path, {"dense_1/bias"}, verify_crc=True)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b[:-1] + b"\x00", "bad table magic"),
        (lambda b: b[:20], "too short"),
        (lambda b: b"\xff" * 100 + b[-48:], "block|varint|entry|restart"),
    ],
)
def test_checkpoint_reader_rejects_bad_index(checkpoints: Path, tmp_path: Path, mangle, message: str) -> None:
    index = (checkpoints / "musicnn" / "MTT_musicnn" / ".index").read_bytes()
    (tmp_path / "x.index").write_bytes(mangle(index))
    with pytest.raises(ModelError, match=message) as info:
        read_checkpoint(tmp_path / "x")
    assert "x.index" in str(info.value)


# --- weights ----------------------------------------------------------------------------------


def test_weights_cache_is_checked_and_rebuilt(taggers, tagger_cache: Path, musicnn_wheel: Path) -> None:
    tensors = tagger_cache / "MTT_musicnn.safetensors"
    meta = json.loads((tagger_cache / "MTT_musicnn.json").read_text())
    assert meta["safetensors_sha256"] == hashlib.sha256(tensors.read_bytes()).hexdigest()
    assert not [p for p in tagger_cache.iterdir() if p.name.startswith(".")]  # no temporary files left
    good = tensors.read_bytes()
    tensors.write_bytes(good[:-8] + b"\x00" * 8)  # corrupt: rebuilt from the named wheel
    params, _ = load_weights("MTT_musicnn", musicnn_wheel)
    assert tensors.read_bytes() == good
    assert sorted(params) == variable_names()


def test_weights_refuse_other_checkpoints(checkpoints: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GENREKIT_TAGGER_DIR", str(tmp_path / "cache"))
    with pytest.raises(ModelError, match="SHA-256"):  # the MSD files where MTT's are expected
        load_weights("MTT_musicnn", checkpoints / "musicnn" / "MSD_musicnn")
    with pytest.raises(ModelError, match="not a musicnn wheel"):
        (tmp_path / "fake.whl").write_bytes(b"PK not a zip")
        load_weights("MTT_musicnn", tmp_path / "fake.whl")
    # an unpacked package folder works offline, converted into the new cache
    params, meta = load_weights("MSD_musicnn", checkpoints)
    assert meta["checkpoint_sha256"][".index"] == CHECKPOINTS["MSD_musicnn"].index_sha256
    assert (tmp_path / "cache" / "MSD_musicnn.safetensors").is_file()
    assert params["dense_1/kernel"].shape == (200, 50)


# --- front end and network parity --------------------------------------------------------------


def _clip(data_root: Path, clip: str) -> Path:
    return data_root / REFERENCE["clips"][clip]


@pytest.mark.parametrize("clip", ["blues.00000", "metal.00000"])
def test_log_mel_matches_reference(data_root: Path, parity, clip: str) -> None:
    from genrekit.audio.decode import load_audio

    mel = log_mel(load_audio(_clip(data_root, clip), sr=16000))[:PATCH_FRAMES]
    diff = np.abs(mel - parity[f"mel/{clip}"])
    assert diff.max() <= MEL_ATOL and np.mean(diff > 0) <= MEL_FRACTION


def test_log_mel_streaming_equals_whole() -> None:
    y = np.random.default_rng(0).standard_normal(16000 * 4).astype(np.float32) * 0.1
    whole = log_mel(y)
    stream = LogMelStream()
    cuts = [0, 1, 255, 256, 1000, 30000, 30001, len(y)]
    parts = [stream.push(y[a:b]) for a, b in itertools.pairwise(cuts)] + [stream.finish()]
    assert whole.shape == (1 + len(y) // 256, 96)
    np.testing.assert_array_equal(np.concatenate(parts), whole)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("clip", ["blues.00000", "metal.00000"])
def test_network_matches_reference(taggers, parity, name: str, clip: str) -> None:
    """The network alone, on the reference's own log-mel patch."""
    out = taggers[name].run(parity[f"mel/{clip}"][None])
    model = MODELS[name]
    np.testing.assert_allclose(
        out.probabilities[0], parity[f"taggram/{model}/{clip}"][0], atol=NET_ATOL["probabilities"]
    )
    np.testing.assert_allclose(
        out.penultimate[0], parity[f"penultimate/{model}/{clip}"][0], atol=NET_ATOL["embeddings"]
    )


@pytest.mark.parametrize("clip", list(REFERENCE["clips"]))
def test_files_match_reference(taggers, parity, data_root: Path, clip: str) -> None:
    """Audio file to taggram and embeddings, both taggers sharing one decoding, every patch."""
    results = tag_file(_clip(data_root, clip), list(taggers.values()))
    for name, result in results.items():
        model = MODELS[name]
        taggram, embeddings = parity[f"taggram/{model}/{clip}"], parity[f"penultimate/{model}/{clip}"]
        assert result.taggram.shape == taggram.shape and result.embeddings.shape == (len(taggram), 200)
        np.testing.assert_allclose(result.taggram, taggram, atol=AUDIO_ATOL["probabilities"])
        np.testing.assert_allclose(result.embeddings, embeddings, atol=AUDIO_ATOL["embeddings"])
        assert result.labels == tuple(REFERENCE["labels"][model])


def test_short_and_bad_signals(taggers) -> None:
    tagger = taggers["msd"]
    y = np.sin(np.arange(22050) * 2 * np.pi * 440 / 22050).astype(np.float32)  # 1 s: one repeated patch
    result = tagger.tag_signal(y, 22050)
    assert result.taggram.shape == (1, 50) and result.embedding.shape == (200,)
    assert np.isfinite(result.taggram).all()
    with pytest.raises(AudioError, match="NaN"):
        tagger.tag_signal(np.full(16000, np.nan, dtype=np.float32))
    with pytest.raises(AudioError, match="non-empty mono"):
        tagger.embed(np.zeros((2, 100), dtype=np.float32))


def test_patches_stream_with_bounded_batches() -> None:
    """An hour of frames goes through in batches of at most `batch` patches, consumed lazily."""
    consumed = []

    def hour():
        for i in range(3600 * 16000 // 256 // 500):
            consumed.append(i)
            yield np.zeros((500, 96), dtype=np.float32)

    batches = patches(hour(), batch=2)
    first = next(batches)
    assert first.shape == (2, PATCH_FRAMES, 96) and len(consumed) == 1
    assert max(len(b) for b in batches) <= 2
    assert len(consumed) == 3600 * 16000 // 256 // 500


# --- command line ------------------------------------------------------------------------------


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    from genrekit.cli import main

    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_tags_genres_of_real_clips(taggers, gtzan_flac_dir: Path, tmp_path: Path, capsys) -> None:
    """Sane tags on the GTZAN clips: classical (MTT, the tagger with that tag), jazz and metal (MSD)."""

    def run(paths: list[Path], tagger: str) -> tuple[int, dict]:
        args = ["tags", *map(str, paths), "--tagger", tagger, "--top", "5", "--format", "json", "-q"]
        code, out, _ = _cli(args, capsys)
        doc = json.loads(out)
        assert [t["name"] for t in doc["taggers"]] == [tagger]
        return code, {Path(r["file"]).stem: r for r in doc["files"]}

    def top(record: dict, n: int) -> list[str]:
        return [t["tag"] for t in record["tags"]][:n]

    code, records = run([gtzan_flac_dir / "classical"], "mtt")
    assert code == 0 and len(records) == 3
    for record in records.values():
        assert "classical" in top(record, 3), record
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not audio")
    code, records = run([gtzan_flac_dir / "jazz", gtzan_flac_dir / "metal", bad], "msd")
    assert code == 1  # one file failed, kept as a record with its error
    assert "broken.wav" in records["broken"]["error"] and "tags" not in records["broken"]
    assert "jazz" in top(records["jazz.00000"], 5)
    assert {"metal", "heavy metal", "hard rock", "rock"} & set(top(records["metal.00000"], 5))
    probabilities = [t["probability"] for t in records["metal.00000"]["tags"]]
    assert probabilities == sorted(probabilities, reverse=True) and len(probabilities) == 5


def test_cli_formats_and_usage(taggers, data_root: Path, capsys) -> None:
    clip = str(_clip(data_root, "trumpet"))
    code, out, _ = _cli(["tags", clip, "--format", "csv", "--top", "2", "--taggram", "-q"], capsys)
    rows = [line.split(",") for line in out.strip().splitlines()]
    assert code == 0 and rows[0] == [
        "file",
        "tagger",
        "patch",
        "start_s",
        "rank",
        "tag",
        "probability",
        "error",
    ]
    assert len(rows) == 1 + 2 + 2  # file-level top 2, then the one patch's top 2
    code, out, _ = _cli(["tags", clip, "--taggram", "-q"], capsys)
    assert code == 0 and "msd" in out and "0:00.00" in out
    code, out, _ = _cli(["tags", "--about"], capsys)
    assert code == 0 and "ISC" in out and "MagnaTagATune" in out and "Million Song Dataset" in out
    assert _cli(["tags"], capsys)[0] == 2
    assert _cli(["tags", "/no/such/file.mp3"], capsys)[0] == 2
    with pytest.raises(SystemExit):
        _cli(["tags", clip, "--tagger", "vgg"], capsys)


def test_no_tensorflow_or_torch_imported(taggers, tagger_cache: Path, data_root: Path) -> None:
    code = (
        "import sys; from genrekit.cli import main;"
        "rc = main(['tags', sys.argv[1], '-q', '--tagger', 'msd,mtt']);"
        "bad = [m for m in ('tensorflow', 'torch', 'keras') if m in sys.modules];"
        "print(bad); sys.exit(rc or bool(bad))"
    )
    env = {**os.environ, "GENREKIT_TAGGER_DIR": str(tagger_cache)}
    done = subprocess.run([sys.executable, "-c", code, str(_clip(data_root, "trumpet"))], env=env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("[]")


@pytest.mark.skipif(not os.environ.get("GENREKIT_MUSICNN_EXAMPLE"), reason="set GENREKIT_MUSICNN_EXAMPLE")
def test_published_example(taggers) -> None:
    """The MTT top-10 the musicnn README publishes for its example clip (the mp3 is not shipped here:
    point GENREKIT_MUSICNN_EXAMPLE at audio/joram-moments_of_clarity-08-solipsism-59-88.mp3 of
    the jordipons/musicnn repository). Decoded as a user's file is: an MPEG-2 MP3 without an exact
    length in its header."""
    top = [tag for tag, _ in taggers["mtt"].tag_file(os.environ["GENREKIT_MUSICNN_EXAMPLE"]).top(10)]
    assert top == REFERENCE["published_example"]["published_mtt_top10"]


def test_help_has_examples_and_short_lines(monkeypatch, capsys) -> None:
    from genrekit.cli import build_parser

    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as done:
        build_parser("tags").parse_args(["tags", "--help"])
    text = capsys.readouterr().out
    assert done.value.code == 0 and "examples:" in text and "exit status" in text
    assert max(len(line) for line in text.splitlines()) <= 100
