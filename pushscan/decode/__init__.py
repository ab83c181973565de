"""Decode: captured frames to TCP segments (``model.SegmentBatch``).

``vector.decode`` (numpy, whole columns) is the reference; ``kernel.decode_fast``
(compiled, one pass per packet, for big inputs) gives the same batches.
"""
from .layers import linktype_name
from .vector import decode

__all__ = ["decode", "linktype_name"]
