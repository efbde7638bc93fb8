"""`kaifang backup DIR` and `kaifang restore DIR`. Issue 19 fills this in."""

from __future__ import annotations
