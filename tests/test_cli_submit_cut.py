"""`dcii submit` whose server goes away part-way (ops review 7): what was answered stands, the rejects
collected so far are written, it says how many rows were answered and to submit the file again, and exits 3.
It said the whole file was "refused", exited 2 and wrote no rejects, with thousands of rows applied. A real
server subprocess killed while the real CLI streams a file it reads from a pipe (so the cut comes at a known
row, not at a race)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT, free_port, server_process

HEADER = (
    "type,agency,record_number,source_version,surname,given_name,ssn,date_of_birth,custodian,year_indexed,file_number"
)


def _row(agency: str, n: int) -> str:
    return f"FILE,{agency},{agency}-CUT-{n},1,Quennell,Ottoline,,1969-02-03,{agency},2012,F-{n}\n"


def test_a_submit_cut_off_part_way_keeps_what_was_answered_and_writes_its_rejects(tmp_path: Path) -> None:
    port = free_port()
    rows = tmp_path / "rows.csv"
    os.mkfifo(rows)
    rejects = tmp_path / "rejects.csv"
    seen: list[str] = []
    with server_process(tmp_path / "data", tmp_path / "pki", port, "--demo", "10") as server:
        env = {**os.environ, "DCII_PROFILE": str(tmp_path / "data" / "profiles" / "ncis-connector.json")}
        command = [sys.executable, "-m", "dcii.cli.main", "submit", str(rows), "--rejects", str(rejects)]
        submit = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            with rows.open("w") as writer:
                # Three rows the index takes, then one it refuses (another agency's record): its "rejected"
                # line says every row before it was answered.
                writer.write(HEADER + "\n" + "".join(_row("NCIS", n) for n in range(3)) + _row("ARMY", 3))
                writer.flush()
                assert submit.stderr is not None
                while not any("rejected" in line for line in seen):
                    line = submit.stderr.readline()
                    assert line, "".join(seen)
                    seen.append(line)
                server.kill()  # the server goes away with the stream open
                server.wait(timeout=30)
                writer.write("".join(_row("NCIS", n) for n in range(4, 8)))
            _, rest = submit.communicate(timeout=120)
        finally:
            if submit.poll() is None:
                submit.kill()
                submit.wait()
    err = "".join(seen) + rest
    assert submit.returncode == 3, err
    assert "Traceback" not in err and "refused:" not in err
    assert "the stream ended (UNAVAILABLE) after 4 rows were answered" in err
    assert "3 applied" in err and "1 rejected" in err
    with rejects.open() as written:
        assert [row["record_number"] for row in csv.DictReader(written)] == ["ARMY-CUT-3"]
