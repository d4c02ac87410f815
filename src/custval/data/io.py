"""All file I/O of custval: CSV/Parquet tables, JSON and text, every write atomic.

An atomic write goes to a temporary file in the target's directory, is flushed and fsync'ed, then
`os.replace`d onto the target: a reader sees the old file or the new one, never half a file, and a failed
write leaves the earlier file intact and no temporary file behind.

Table metadata (e.g. model names/versions of a scoring file) is a JSON-able dict: Parquet keeps it in the
Arrow schema metadata under the key ``custval``; CSV keeps it in a sidecar ``<path>.meta.json``.
Read it back with `read_table_metadata`.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from custval.errors import ConfigError, DataError

__all__ = [
    "METADATA_KEY",
    "atomic_path",
    "read_json",
    "read_table",
    "process_alive",
    "read_table_metadata",
    "remove_stale_temp_files",
    "write_json",
    "write_table",
    "write_tables",
    "write_text",
]

METADATA_KEY = b"custval"
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.zip", ".csv.bz2", ".tsv", ".tsv.gz", ".txt", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


def _format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise ConfigError(
        f"unknown table format for {str(path)!r}: the file name must end with one of "
        f"{list(CSV_SUFFIXES + PARQUET_SUFFIXES)}"
    )


def _default_sep(path: Path) -> str:
    name = path.name.lower()
    if ".tsv" in name:
        return "\t"
    if ".txt" in name:
        return r"\s+"
    return ","


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where the metadata of a CSV table lives: ``<path>.meta.json``."""
    path = Path(path)
    return path.with_name(path.name + ".meta.json")


# ------------------------------------------------------------------------------------------------ atomic
def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


_TMP = re.compile(r"^\.tmp-(?:(?P<pid>\d+)-)?[0-9a-f]{8,12}-(?P<name>.+)$")


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (a temp file's or a run's writer)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temp_files(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that writers of `path` left behind when they were killed (their process no
    longer exists; names without a process id come from older versions): a SIGKILL during a write cannot
    clean up after itself."""
    target = Path(path)
    removed = []
    if not target.parent.is_dir():
        return removed
    for candidate in target.parent.glob(f".tmp-*-{glob.escape(target.name)}*"):
        match = _TMP.match(candidate.name)
        if match is None or match["name"] not in (target.name, sidecar_path(target).name):
            continue
        pid = match["pid"]
        if pid is not None and (int(pid) == os.getpid() or process_alive(int(pid))):
            continue
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()
            removed.append(candidate)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on a clean exit fsync it and `os.replace` it onto `path`.

    On an exception the temporary file is removed and `path` keeps its earlier content. The temporary
    name (`.tmp-<pid>-<random>-<name>`) ends with the target's name, so writers that infer a format or
    compression from the suffix work, and carries the writer's process id, so temporary files of killed
    writers are recognised and removed by the next write. Parent directories are created.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(target)
    tmp = target.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{target.name}")
    try:
        yield tmp
        if not tmp.exists():
            raise ConfigError(f"atomic write to {str(target)!r}: the writer produced no file")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text(text: str, path: str | os.PathLike, *, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (pd.Timestamp, pd.Timedelta)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def _dumps(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=_json_default, allow_nan=True)


def write_json(obj, path: str | os.PathLike) -> Path:
    """Write `obj` as indented JSON, atomically (numpy scalars/arrays and timestamps are converted)."""
    return write_text(_dumps(obj) + "\n", path)


def read_json(path: str | os.PathLike):
    """Read a JSON file; ConfigError if missing, DataError if it is not valid JSON."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"file not found: {str(path)!r}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path.name, "*", f"not valid JSON ({exc.msg} at line {exc.lineno})") from exc


# ------------------------------------------------------------------------------------------------ tables
def read_table(path: str | os.PathLike, **kw) -> pd.DataFrame:
    """Read a CSV (``.csv``, ``.tsv``, whitespace-separated ``.txt``, optionally compressed) or Parquet
    (``.parquet``, ``.pq``) file, chosen by suffix. Keyword arguments go to `pandas.read_csv` /
    `pandas.read_parquet`. Missing file or unknown suffix -> ConfigError; unreadable content -> DataError.
    """
    path = Path(path)
    fmt = _format(path)
    if not path.is_file():
        raise ConfigError(f"file not found: {str(path)!r}")
    try:
        if fmt == "parquet":
            return pd.read_parquet(path, **kw)
        if kw.get("sep") is None and kw.get("delimiter") is None:
            kw["sep"] = _default_sep(path)
            kw.pop("delimiter", None)
        return pd.read_csv(path, **kw)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):  # pragma: no cover - raced with a delete
            raise ConfigError(f"file not found: {str(path)!r}") from exc
        raise DataError(path.name, "*", f"could not be read as {fmt} ({type(exc).__name__}: {exc})") from exc


def _is_default_index(index: pd.Index) -> bool:
    return isinstance(index, pd.RangeIndex) and index.name is None and index.start == 0 and index.step == 1


def _check_frame(df) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"write_table expects a pandas DataFrame, got {type(df).__name__}")


def _write_file(df: pd.DataFrame, path: Path, fmt: str, meta_text: str | None, kw: dict) -> None:
    """`df` written to `path` as it is (the callers make it atomic); Parquet carries the metadata inside."""
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(df, preserve_index=None if _is_default_index(df.index) else True)
        if meta_text is not None:
            merged = dict(table.schema.metadata or {})
            merged[METADATA_KEY] = meta_text.encode("utf-8")
            table = table.replace_schema_metadata(merged)
        pq.write_table(table, path, **kw)
        return
    kw = {"index": not _is_default_index(df.index), **({"sep": "\t"} if ".tsv" in path.name.lower() else {}), **kw}
    df.to_csv(path, **kw)


def write_table(
    df: pd.DataFrame, path: str | os.PathLike, *, metadata: Mapping | None = None, **kw
) -> Path:
    """Write `df` atomically as CSV or Parquet (by suffix), with optional JSON-able `metadata`.

    A non-default index (e.g. ``customer_id``) is written as a column (CSV) or kept (Parquet). For CSV the
    metadata goes to the sidecar ``<path>.meta.json``: the earlier sidecar is removed before the new CSV
    replaces the old one and the new sidecar is written after it, so an interrupted write can lose the
    metadata but never pair a table with another write's metadata.
    Extra keyword arguments go to `DataFrame.to_csv` / `pyarrow.parquet.write_table`.
    """
    path = Path(path)
    fmt = _format(path)
    _check_frame(df)
    meta_text = None if metadata is None else _dumps(dict(metadata))
    with atomic_path(path) as tmp:
        _write_file(df, tmp, fmt, meta_text, kw)
        if fmt == "csv":
            # The new CSV is complete; drop the earlier sidecar before it replaces the old CSV, so that a failure
            # from here on leaves a CSV without metadata, never the new CSV next to the previous run's metadata.
            # (A failed CSV write above keeps the old CSV and its sidecar together.)
            with contextlib.suppress(FileNotFoundError):
                sidecar_path(path).unlink()
    if fmt == "csv" and meta_text is not None:
        write_text(meta_text + "\n", sidecar_path(path))  # atomic too
    return path


def write_tables(tables: list[tuple[pd.DataFrame, str | os.PathLike, Mapping | None]]) -> list[Path]:
    """Write several tables (frame, path, metadata) so that a failure while writing leaves every target as it
    was: each table (and a CSV's metadata sidecar) is written in full to a temporary file beside its target,
    and only when all are complete are they renamed onto their targets, one `os.replace` each."""
    staged: list[tuple[Path, Path, bool]] = []
    try:
        for frame, path, metadata in tables:
            target = Path(path)
            fmt = _format(target)
            _check_frame(frame)
            target.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temp_files(target)
            stage = target.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{target.name}")
            staged.append((stage, target, False))
            meta_text = None if metadata is None else _dumps(dict(metadata))
            _write_file(frame, stage, fmt, meta_text, {})
            if fmt == "csv" and meta_text is not None:
                sidecar_path(stage).write_text(meta_text + "\n", encoding="utf-8")
                staged[-1] = (stage, target, True)
            for written in (stage, sidecar_path(stage)) if staged[-1][2] else (stage,):
                with open(written, "rb") as fh:
                    os.fsync(fh.fileno())
        for stage, target, has_sidecar in staged:
            with contextlib.suppress(FileNotFoundError):  # never a new table beside the old metadata
                sidecar_path(target).unlink()
            os.replace(stage, target)
            if has_sidecar:
                os.replace(sidecar_path(stage), sidecar_path(target))
            _fsync_dir(target.parent)
    finally:
        for stage, _, _ in staged:
            for leftover in (stage, sidecar_path(stage)):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
    return [target for _, target, _ in staged]


def read_table_metadata(path: str | os.PathLike) -> dict:
    """The metadata written by `write_table` ({} when there is none)."""
    path = Path(path)
    fmt = _format(path)
    if not path.is_file():
        raise ConfigError(f"file not found: {str(path)!r}")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
        raw = meta.get(METADATA_KEY)
        return {} if raw is None else json.loads(raw.decode("utf-8"))
    side = sidecar_path(path)
    return read_json(side) if side.is_file() else {}
