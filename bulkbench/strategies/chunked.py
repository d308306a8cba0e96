"""``chunked``: the plan's workaround. Today's individual operations, 50 images at a time.

Each chunk runs the whole ``individual`` flow (hash, single-flight operations, up to 12 uploads,
orphan sweep) and must settle before the next starts, after a pause. Nodes of a chunk are
created locally when the chunk starts, so the orphan deadline runs per chunk.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from bulkbench.effects import Sleep
from bulkbench.strategies.common import Drop, chunks
from bulkbench.strategies.individual import IndividualParams, run_images


@dataclass(frozen=True, slots=True)
class ChunkedParams(IndividualParams):
    chunk_size: int = 50
    chunk_pause_s: float = 1.0


def run(drop: Drop, p: ChunkedParams) -> Generator[Any, Any, None]:
    for number, chunk in enumerate(chunks(drop.images, p.chunk_size)):
        if number:
            yield Sleep(p.chunk_pause_s)
        yield from run_images(drop, chunk, p, queue_prefix=f"chunk{number}-")
