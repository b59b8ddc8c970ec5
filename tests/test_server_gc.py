"""A serving process tunes CPython's garbage collector (search_service.gc_tuning.tune_garbage_collector):
checked in a fresh interpreter, as the setting is process-wide."""

from __future__ import annotations

import json
import subprocess
import sys

from search_service.gc_tuning import GC_THRESHOLDS
from tests.support import ROOT

_PROBE = """
import gc, json
from search_service.gc_tuning import tune_garbage_collector
before = gc.get_threshold()
kept = [[n] for n in range(1000)]  # objects made before serving: frozen out of every pass
tune_garbage_collector()
print(json.dumps([before, gc.get_threshold(), gc.get_freeze_count()]))
"""


def test_serving_freezes_what_start_up_made_and_collects_young_objects_less_often() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    before, after, frozen = json.loads(done.stdout)
    assert tuple(after) == GC_THRESHOLDS != tuple(before)
    assert GC_THRESHOLDS[0] > before[0]
    assert frozen >= 1000
