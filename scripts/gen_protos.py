"""Generate the checked-in Python API (dcii/v1) from proto/. The one way to make it.

python scripts/gen_protos.py            # regenerate in place
python scripts/gen_protos.py --out DIR  # generate under DIR (the staleness test compares)
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE = Path("dcii") / "v1"
HEADER = '"""Generated from proto/dcii/v1 by scripts/gen_protos.py. Do not edit."""\n'


def _googleapis_include() -> Path:
    # googleapis-common-protos ships google/type/date.proto beside its generated module.
    from google.type import date_pb2

    return Path(date_pb2.__file__).resolve().parent.parent.parent


def generate(out_root: Path) -> list[Path]:
    from grpc_tools import protoc

    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    target = out_root / PACKAGE
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE).glob("*.proto"))
    bindir = Path(sys.executable).parent
    args = [
        "grpc_tools.protoc",
        f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTO_ROOT}",
        f"-I{_googleapis_include()}",
        f"-I{well_known}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    (target / "__init__.py").write_text(HEADER)
    (out_root / "dcii").mkdir(exist_ok=True)
    return sorted(target.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT)
    files = generate(parser.parse_args().out)
    print(f"generated {len(files)} files", file=sys.stderr)


if __name__ == "__main__":
    main()
