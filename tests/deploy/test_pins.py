"""What CI tests is what the district installs: constraints.txt pins every library the app and
its suite need (`make venv` and docs/deploy.md install with it), and the suite runs on exactly
those versions. Without it a `pip install` on the day of a deployment takes whatever PyPI has
that day, a version no test has seen."""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.nginx import ROOT

CONSTRAINTS = ROOT / "constraints.txt"


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def _needed(name: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """The distributions `name` (with `extras`) installs, itself included, by their
    requirements' markers on this machine."""
    walked: set[tuple[str, frozenset[str]]] = set()
    todo = [(canonicalize_name(name), extras)]
    while todo:
        current, wanted = todo.pop()
        if (current, wanted) in walked:
            continue
        walked.add((current, wanted))
        for line in metadata.requires(current) or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra})
                                     for extra in (wanted or {""})):
                todo.append((canonicalize_name(requirement.name),
                             frozenset(requirement.extras)))
    return {name for name, _ in walked}


def test_every_library_the_app_and_its_suite_install_is_pinned():
    needed = _needed("kaifang", frozenset({"test"})) - {"kaifang"}
    assert {"fastapi", "sqlalchemy", "uvicorn", "websockets", "pytest"} <= needed
    missing = sorted(needed - _pins().keys())
    assert not missing, f"not in constraints.txt (make lock): {missing}"


def test_the_suite_runs_on_the_pinned_versions():
    pins = _pins()
    different = {name: (metadata.version(name), pinned) for name, pinned in pins.items()
                 if name in _needed("kaifang", frozenset({"test"}))
                 and metadata.version(name) != pinned}
    assert not different, f"installed != pinned (make venv re-installs): {different}"
