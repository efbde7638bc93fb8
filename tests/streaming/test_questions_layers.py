"""The room and the questions do not import each other (pyproject.toml's
`streaming-room-and-questions` contract): what both need lies below them (streaming.stream,
texts, pace, bans), the message ↔ question link above them (streaming.messages). Even the lazy
import inside a function that used to close the circle breaks the contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.test_layers import lint_imports, tree  # noqa: F401  (tree: a fixture)

CONTRACT = "streaming-room-and-questions"


@pytest.mark.parametrize(("module", "line"), [
    ("streaming/room.py", "def _questions():\n    from streaming import questions\n"),
    ("streaming/questions.py", "from streaming import room"),
    ("streaming/texts.py", "from streaming import messages"),
])
def test_the_circle_stays_cut(tree: Path, module: str, line: str) -> None:  # noqa: F811
    assert lint_imports(tree, CONTRACT).returncode == 0
    with (tree / module).open("a") as source:
        source.write(f"\n{line}\n")
    result = lint_imports(tree, CONTRACT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
