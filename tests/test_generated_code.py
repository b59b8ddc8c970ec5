"""The checked-in API (dcii/v1) must be exactly what scripts/gen_protos.py makes from proto/."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh, checked_in = tmp_path / "dcii" / "v1", ROOT / "dcii" / "v1"
    fresh_files = sorted(p.name for p in fresh.iterdir() if p.is_file())
    checked_files = sorted(p.name for p in checked_in.iterdir() if p.is_file() and p.suffix in (".py", ".pyi"))
    assert fresh_files == checked_files, "files differ: run python scripts/gen_protos.py"
    _, mismatch, errors = filecmp.cmpfiles(fresh, checked_in, fresh_files, shallow=False)
    assert mismatch == [] and errors == [], f"stale generated code {mismatch}: run python scripts/gen_protos.py"
