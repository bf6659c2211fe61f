"""Segment labels: where a branch starts and its rank among siblings, ordered as text.

ltree compares labels bytewise, so fixed-width decimal keeps (start depth, rank) order: sibling
order is creation order for any number of siblings, and "branches from depth ≥ d" is a plain
comparison of the first label below a segment.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 6  # a million turns deep, a million siblings


def label(*, start_depth: int, rank: int) -> str:
    return f"{start_depth:0{WIDTH}d}_{rank:0{WIDTH}d}"


def parse(text: str) -> tuple[int, int]:
    start, rank = text.split("_")
    return int(start), int(rank)


def root_segment(rank: int) -> str:
    return label(start_depth=1, rank=rank)


def child_segment(*, parent_segment: str, child_depth: int, rank: int) -> str:
    """The first child continues the parent's segment; later siblings open a new one."""
    if rank == 0:
        return parent_segment
    return f"{parent_segment}.{label(start_depth=child_depth, rank=rank)}"


@dataclass(frozen=True)
class Span:
    """Messages of `segment` with depth in [first, last]: one stretch of an ancestor line."""

    segment: str
    first: int
    last: int


def ancestor_spans(segment: str, depth: int) -> list[Span]:
    """The line root→(segment, depth), inclusive, as one span per segment it passes through."""
    labels = segment.split(".")
    starts = [parse(part)[0] for part in labels]
    spans = []
    for index in range(len(labels)):
        last = starts[index + 1] - 1 if index + 1 < len(labels) else depth
        spans.append(Span(".".join(labels[: index + 1]), starts[index], last))
    return spans
