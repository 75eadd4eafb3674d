"""Helpers the library tests share (local disk, S3 and Dask scans compare catalogues row for row)."""

import sqlite3
from pathlib import Path


def catalogue_rows(db: Path) -> list[list[tuple]]:
    """Every stored value of a catalogue except row ids, ordered by path: files, windows, predictions."""
    with sqlite3.connect(db) as conn:
        return [
            conn.execute(query).fetchall()
            for query in (
                "SELECT path, size, mtime_ns, status, n_samples, segment_seconds, error FROM files "
                "ORDER BY path",
                "SELECT f.path, w.kind, w.idx, w.start_sample, w.end_sample, w.features FROM windows w "
                "JOIN files f ON f.id = w.file_id ORDER BY f.path, w.kind, w.idx",
                "SELECT f.path, p.model_id, p.genre, p.best_guess, p.confidence, p.novelty, p.familiar, "
                "p.probabilities FROM predictions p JOIN files f ON f.id = p.file_id ORDER BY f.path",
            )
        ]


def as_local(rows: list[list[tuple]], url: str | None = None, folder: Path | None = None) -> list:
    """Catalogue rows without the stamps (mtime_ns), with `url` (when given) written as the local `folder`."""

    def fix(value):
        return value.replace(url, str(folder.resolve())) if url and isinstance(value, str) else value

    files, windows, predictions = ([tuple(map(fix, row)) for row in table] for table in rows)
    return [[row[:2] + row[3:] for row in files], windows, predictions]


BUCKET = "genrekit-test"


def s3():
    """The S3 filesystem of the test endpoint (configured by the ``s3_server`` fixture)."""
    import fsspec

    return fsspec.filesystem("s3", skip_instance_cache=True, use_listings_cache=False)


def upload(folder: Path, prefix: str) -> str:
    """Upload every file below `folder` to ``BUCKET/prefix``; return the folder's URL."""
    fs = s3()
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            fs.put_file(str(path), f"{BUCKET}/{prefix}/{path.relative_to(folder).as_posix()}")
    return f"s3://{BUCKET}/{prefix}"
