"""What a benchmark ran on, for its JSON record: Python, platform, cores, library versions, git commit."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine(*modules: str) -> dict:
    """python, platform, cpu_count, the version of each module named, git_commit (None outside a checkout)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    versions = {name: importlib.import_module(name).__version__ for name in modules}
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
            **versions, "git_commit": commit}
