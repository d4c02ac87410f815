"""File I/O: round trips, metadata, clear errors and atomic writes that never leave half a file."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from custval.data.io import (
    atomic_path,
    read_json,
    read_table,
    read_table_metadata,
    write_json,
    write_table,
    write_text,
)
from custval.errors import ConfigError, DataError


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": ["a", "b", "c"], "amount": [1.5, 2.0, -3.25], "n": [1, 2, 3]}
    )


def listing(directory) -> list[str]:
    return sorted(os.listdir(directory))


# -------------------------------------------------------------------------------------------- tables
@pytest.mark.parametrize("name", ["t.csv", "t.parquet", "t.tsv", "t.csv.gz", "t.pq"])
def test_table_round_trip(tmp_path, name):
    df = frame()
    write_table(df, tmp_path / name)
    back = read_table(tmp_path / name)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert listing(tmp_path) == [name]  # no temp files, no sidecar without metadata


def test_named_index_is_kept(tmp_path):
    df = frame().set_index("customer_id")
    write_table(df, tmp_path / "s.parquet")
    pd.testing.assert_frame_equal(read_table(tmp_path / "s.parquet"), df)
    write_table(df, tmp_path / "s.csv")
    pd.testing.assert_frame_equal(read_table(tmp_path / "s.csv", index_col="customer_id"), df)


def test_parquet_metadata_lives_in_the_arrow_schema(tmp_path):
    meta = {"model": "custval-clv", "version": 3, "as_of": pd.Timestamp("2020-01-31")}
    path = write_table(frame(), tmp_path / "scores.parquet", metadata=meta)
    raw = pq.read_schema(path).metadata
    assert json.loads(raw[b"custval"]) == {"model": "custval-clv", "version": 3, "as_of": "2020-01-31T00:00:00"}
    assert read_table_metadata(path)["version"] == 3
    assert listing(tmp_path) == ["scores.parquet"]


def test_csv_metadata_goes_to_a_sidecar_and_a_stale_one_is_removed(tmp_path):
    path = tmp_path / "scores.csv"
    write_table(frame(), path, metadata={"model": "m", "version": np.int64(2)})
    assert listing(tmp_path) == ["scores.csv", "scores.csv.meta.json"]
    assert json.loads((tmp_path / "scores.csv.meta.json").read_text()) == {"model": "m", "version": 2}
    assert read_table_metadata(path) == {"model": "m", "version": 2}
    write_table(frame(), path)  # rewritten without metadata: the old sidecar would lie
    assert listing(tmp_path) == ["scores.csv"]
    assert read_table_metadata(path) == {}


def test_a_failed_sidecar_write_never_leaves_the_previous_runs_metadata(tmp_path, monkeypatch):
    import custval.data.io as io_module

    path = tmp_path / "scores.csv"
    write_table(frame(), path, metadata={"run_id": "old"})
    new = frame().assign(n=[7, 8, 9])

    def exploding(text, target, **kw):
        raise Boom("killed before the sidecar was written")

    monkeypatch.setattr(io_module, "write_text", exploding)
    with pytest.raises(Boom):
        write_table(new, path, metadata={"run_id": "new"})
    monkeypatch.undo()
    pd.testing.assert_frame_equal(read_table(path), new)  # the new table is in place ...
    assert read_table_metadata(path) == {}  # ... without metadata rather than with the old run's
    assert listing(tmp_path) == ["scores.csv"]
    write_table(new, path, metadata={"run_id": "new"})
    assert read_table_metadata(path) == {"run_id": "new"}


def test_a_failed_csv_write_keeps_the_old_table_with_its_own_metadata(tmp_path, monkeypatch):
    path = tmp_path / "scores.csv"
    write_table(frame(), path, metadata={"run_id": "old"})

    def exploding(self, *a, **k):
        raise Boom("killed mid-write")

    monkeypatch.setattr(pd.DataFrame, "to_csv", exploding)
    with pytest.raises(Boom):
        write_table(frame().assign(n=0), path, metadata={"run_id": "new"})
    monkeypatch.undo()
    pd.testing.assert_frame_equal(read_table(path), frame())
    assert read_table_metadata(path) == {"run_id": "old"}
    assert listing(tmp_path) == ["scores.csv", "scores.csv.meta.json"]


def test_whitespace_txt_and_explicit_sep(tmp_path):
    (tmp_path / "log.txt").write_text(" id  date   value\n 1 19970101  1.5\n 2 19970102   2\n")
    assert read_table(tmp_path / "log.txt")["value"].tolist() == [1.5, 2.0]
    (tmp_path / "semi.csv").write_text("id;value\n1;1.5\n")
    assert read_table(tmp_path / "semi.csv", sep=";")["value"].tolist() == [1.5]


def test_read_errors(tmp_path):
    with pytest.raises(ConfigError, match="file not found.*nope.csv"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(ConfigError, match=r"unknown table format.*t\.xlsx.*\.csv"):
        read_table(tmp_path / "t.xlsx")
    with pytest.raises(ConfigError, match="unknown table format"):
        write_table(frame(), tmp_path / "t.json")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"bad\.parquet.*could not be read as parquet"):
        read_table(tmp_path / "bad.parquet")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty\.csv.*could not be read as csv"):
        read_table(tmp_path / "empty.csv")


# ------------------------------------------------------------------------------------------ json, text
def test_json_and_text_round_trip(tmp_path):
    obj = {"a": np.float64(1.5), "b": np.arange(3), "c": pd.Timestamp("2020-01-01"), "d": [1, "x", None]}
    write_json(obj, tmp_path / "x.json")
    assert read_json(tmp_path / "x.json") == {"a": 1.5, "b": [0, 1, 2], "c": "2020-01-01T00:00:00", "d": [1, "x", None]}
    write_text("héllo\n", tmp_path / "sub" / "x.txt")  # parents are created
    assert (tmp_path / "sub" / "x.txt").read_text(encoding="utf-8") == "héllo\n"
    with pytest.raises(ConfigError, match="file not found"):
        read_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(DataError, match=r"bad\.json.*not valid JSON"):
        read_json(tmp_path / "bad.json")


# ---------------------------------------------------------------------------------------------- atomic
class Boom(RuntimeError):
    pass


def test_atomic_path_interrupted_mid_write_keeps_the_earlier_file(tmp_path):
    target = tmp_path / "model.json"
    target.write_text("old content")
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp != target
            with open(tmp, "w") as fh:
                fh.write("half of the new")
                fh.flush()
                raise Boom("disk full")
    assert target.read_text() == "old content"
    assert listing(tmp_path) == ["model.json"]


def test_atomic_path_success_replaces(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old"  # not visible before the context exits
    assert target.read_text() == "new"
    assert listing(tmp_path) == ["x.txt"]


def test_atomic_path_without_a_written_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="produced no file"):
        with atomic_path(tmp_path / "x.txt"):
            pass
    assert listing(tmp_path) == []


@pytest.mark.parametrize("name", ["t.csv", "t.parquet"])
def test_write_table_interrupted_mid_write_keeps_the_earlier_file(tmp_path, monkeypatch, name):
    path = tmp_path / name
    old = frame()
    write_table(old, path)
    new = pd.DataFrame({"customer_id": ["z"] * 1000, "amount": np.arange(1000.0), "n": 0})

    if name.endswith(".csv"):
        real = pd.DataFrame.to_csv

        def exploding(self, target, *a, **k):
            real(self.iloc[:10], target, *a, **k)  # part of the file is on disk
            raise Boom("killed mid-write")

        monkeypatch.setattr(pd.DataFrame, "to_csv", exploding)
    else:
        real = pq.write_table

        def exploding(table, target, *a, **k):
            real(table.slice(0, 10), target, *a, **k)
            raise Boom("killed mid-write")

        monkeypatch.setattr(pq, "write_table", exploding)

    with pytest.raises(Boom):
        write_table(new, path, metadata={"v": 2})
    monkeypatch.undo()
    pd.testing.assert_frame_equal(read_table(path), old, check_dtype=False)
    assert listing(tmp_path) == [name]


def test_write_json_unserialisable_keeps_the_earlier_file(tmp_path):
    path = tmp_path / "cfg.json"
    write_json({"v": 1}, path)
    with pytest.raises(TypeError):
        write_json({"v": object()}, path)
    assert read_json(path) == {"v": 1}
    assert listing(tmp_path) == ["cfg.json"]


def test_temp_files_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    """A writer killed mid-write (SIGKILL) leaves its temp file; the next write of the same output removes it,
    but not a live writer's, nor temp files of other outputs."""
    import subprocess
    import sys

    import pandas as pd

    from custval.data.io import write_table

    target = tmp_path / "scores.parquet"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    litter = tmp_path / f".tmp-{dead}-0123abcd-scores.parquet"
    legacy = tmp_path / ".tmp-0123456789ab-scores.parquet"  # the earlier name, without a process id
    live = tmp_path / f".tmp-{os.getppid()}-89abcdef-scores.parquet"
    other = tmp_path / f".tmp-{dead}-0123abcd-other.parquet"
    for path in (litter, legacy, live, other):
        path.write_bytes(b"PAR1")
    write_table(pd.DataFrame({"a": [1]}), target)
    assert not litter.exists() and not legacy.exists()
    assert live.exists() and other.exists()
    assert pd.read_parquet(target)["a"].tolist() == [1]


def test_write_tables_replaces_every_target_or_none(tmp_path, monkeypatch):
    import pandas as pd
    import pyarrow.parquet as pq

    from custval.data.io import read_table_metadata, write_tables

    first, second = tmp_path / "a.parquet", tmp_path / "b.csv"
    write_tables([(pd.DataFrame({"x": [1]}), first, {"v": 1}), (pd.DataFrame({"y": [1]}), second, {"v": 1})])
    before = first.read_bytes(), second.read_bytes()
    real = pd.DataFrame.to_csv

    def disk_full(self, path, *args, **kwargs):  # the second table fails after the first is complete
        real(self, path, *args, **kwargs)
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_tables([(pd.DataFrame({"x": [2]}), first, {"v": 2}), (pd.DataFrame({"y": [2]}), second, {"v": 2})])
    assert (first.read_bytes(), second.read_bytes()) == before
    assert read_table_metadata(first) == {"v": 1} and read_table_metadata(second) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "b.csv", "b.csv.meta.json"]
    monkeypatch.undo()
    write_tables([(pd.DataFrame({"x": [3]}), first, {"v": 3}), (pd.DataFrame({"y": [3]}), second, {"v": 3})])
    assert pq.read_table(first).to_pandas()["x"].tolist() == [3] and read_table_metadata(second) == {"v": 3}
