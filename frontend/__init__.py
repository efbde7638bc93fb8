"""Pages: the public portal and the staff console. Renders only; holds no business rule."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Mounts static files, page routes and the HTML error renderer."""
