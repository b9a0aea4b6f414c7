"""Reading a ResponsePlan's body in tests, whatever its shape."""

from __future__ import annotations

from lanthorn.core.response import FileBody, ResponsePlan


def body_bytes(plan: ResponsePlan) -> bytes:
    """All body bytes (file slices read from their descriptors, which are then closed)."""
    out = b""
    for chunk in plan.body if isinstance(plan.body, tuple) else (plan.body,):
        if isinstance(chunk, FileBody):
            chunk.file.seek(chunk.offset)
            out += chunk.file.read(chunk.count)
            chunk.close()
        else:
            out += chunk
    return out
