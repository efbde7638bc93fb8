"""The hosts' questions panel offers what the domain allows: its table of actions per state is
streaming.questions' (not a copy), so a change of the rules changes the console with it."""

from __future__ import annotations

import pytest

from frontend import console_questions
from streaming import questions

TABLE = {
    "held": ("approve", "reject", "merge"),
    "approved": ("shortlist", "answering", "answered", "merge", "answer"),
    "shortlisted": ("answering", "answered", "merge", "answer"),
    "answering": ("shortlist", "answered", "merge", "answer"),
    "answered": ("answer",),
    "rejected": (),
    "merged": (),
}


def test_the_console_offers_what_the_domain_allows(db, monkeypatch: pytest.MonkeyPatch):
    assert console_questions.questions_panel(db, 1)["actions_of"] == TABLE
    # A rule of the domain changes: the console follows, with no table of its own to edit.
    monkeypatch.setitem(questions.ALLOWED_FROM, "shortlist", ("approved",))
    offered = console_questions.questions_panel(db, 1)["actions_of"]
    assert offered["answering"] == ("answered", "merge", "answer")
    assert offered["approved"] == TABLE["approved"]
