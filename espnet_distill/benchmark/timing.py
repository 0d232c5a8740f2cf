"""Real-time factors: passes over a set of utterances timed against the seconds of audio they hold."""

import statistics
import time
from typing import Any, Callable, List, Sequence, Tuple


def timed_passes(
    run: Callable[[Any], Any], items: Sequence[Any], audio_seconds: float, warmup: int, repeats: int
) -> Tuple[float, List[float]]:
    """Median and all per-pass real-time factors of ``run`` over ``items`` (``warmup`` of them run untimed first)."""
    for item in items[:warmup]:
        run(item)
    factors = []
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            run(item)
        factors.append((time.perf_counter() - start) / audio_seconds)
    return statistics.median(factors), factors
