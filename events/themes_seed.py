"""The plan's themes as shipped (events/data/themes.json), for the migration and the tests'
database reset. A module of its own, importing nothing of ours: migrations must not pull in
the domain."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def theme_seed_rows() -> list[dict[str, Any]]:
    text = resources.files("events").joinpath("data/themes.json").read_text(encoding="utf-8")
    return [{"code": row["code"], "name": row["name"], "name_en": row["name_en"],
             "sort_order": row["sort_order"]} for row in json.loads(text)["themes"]]
