"""Levels laid by weight: how the fuzzy matcher picks, for each pair of values, the best-weighted level whose
condition holds. Shared by the names' levels (search_service.matching_names) and the identifiers'
(search_service.matching_pids), which differ in their conditions only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Bools = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.int8]
Floats = npt.NDArray[np.float64]


# A level a matcher version does not use (shown "-" in its table): never selected.
UNUSED_WEIGHT = -99.0


def select_levels(
    conditions: Sequence[tuple[int, Bools]], weights: Floats, default: int, shape: tuple[int, ...] | None = None
) -> Codes:
    """The best-weighted level whose condition holds (`default` where none holds; of equal weights, the
    first listed): the conditions are laid on in rising weight, so that the best one is laid last. The
    result has `shape`, or else the conditions' shape broadcast."""
    if shape is None:
        shape = np.broadcast_shapes(*(mask.shape for _, mask in conditions))
    levels: Codes = np.full(shape, default, dtype=np.int8)
    for index, code in laying_order(weights, tuple(int(level) for level, _ in conditions)):
        np.copyto(levels, code, where=conditions[index][1])
    return levels


# The laying order depends only on the weights and the levels listed: a handful of combinations per
# matcher version, worked out once (sorting them on every call was a tenth of a small candidate set's
# scoring).
_ORDERS: dict[tuple[bytes, tuple[int, ...]], list[tuple[int, np.int8]]] = {}


def laying_order(weights: Floats, listed: tuple[int, ...]) -> list[tuple[int, np.int8]]:
    """(index into `listed`, level code) of the levels `weights` uses (above UNUSED_WEIGHT), in rising
    weight, of equal weights the last listed first: laid on in this order, the best level is laid last."""
    key = (weights.tobytes(), listed)
    order = _ORDERS.get(key)
    if order is None:
        rising = sorted(reversed(range(len(listed))), key=lambda i: float(weights[listed[i]]))
        order = [(i, np.int8(listed[i])) for i in rising if weights[listed[i]] > UNUSED_WEIGHT]
        if len(_ORDERS) < 1024:
            _ORDERS[key] = order
    return order
