"""The fingerprint of the data a model was fitted on: equal frames give equal digests, any changed value,
column name or dtype another."""

from __future__ import annotations

import hashlib
import json

import pandas as pd


def frame_fingerprint(*frames: pd.DataFrame) -> str:
    """sha256 over the rows, column names and dtypes of the given frames."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return digest.hexdigest()
