"""A server with the batch service, for bench/batch.py until `dcii serve` runs it (server.py wiring).

.venv/bin/python bench/batch_server.py --data D --pki P --port N [--duty 0.5] [--chunk 50]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search_service import pki
from search_service.batch_worker import BatchSettings
from tests.support import Index
from tests.test_batch import start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--pki", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--duty", type=float, default=BatchSettings.duty)
    parser.add_argument("--chunk", type=int, default=BatchSettings.chunk)
    args = parser.parse_args()
    pki_dir = Path(args.pki)
    index = Index(pki_dir, Path(args.data), pki.load_issued(pki_dir, "ca"), port=args.port)
    start(index, BatchSettings(chunk=args.chunk, duty=args.duty))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"serving on {index.port}", file=sys.stderr, flush=True)
    stop.wait()
    index.stop()


if __name__ == "__main__":
    main()
