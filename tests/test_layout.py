"""The packages import one way: common -> callbacks -> trainer -> tasks -> live -> cli, data beside.

Every import counts, also those inside functions (they run too); only ``if TYPE_CHECKING:`` blocks,
which never run, are left out.
"""

from __future__ import annotations

import ast

from tests.conftest import ROOT

# What each package may import of the project besides itself.
ALLOWED = {
    "common": set(),
    "callbacks": {"common"},
    "data": {"common"},
    "trainer": {"common", "callbacks"},
    "tasks": {"common", "callbacks", "trainer", "data"},
    "live": {"common", "callbacks", "trainer", "data", "tasks"},
}
PROJECT = {*ALLOWED, "cli", "cli_config", "cli_help", "cli_options", "models", "tests", "bench"}


def imported_modules(tree: ast.AST):
    """(line, module) of every import in ``tree`` outside ``if TYPE_CHECKING:``."""
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and getattr(block.test, "id", getattr(block.test, "attr", None)) == "TYPE_CHECKING"
               for node in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def offenders() -> list[str]:
    found = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            for line, module in imported_modules(ast.parse(path.read_text())):
                top = module.split(".")[0]
                if top in PROJECT and top != package and top not in allowed:
                    found.append(f"{relative}:{line}: {package} imports {module}")
                if package == "tasks" and relative.parts[1] != "__init__.py" and _other_task(relative, module):
                    found.append(f"{relative}:{line}: a task imports another task's {module}")
    return found


def _other_task(relative, module: str) -> bool:
    """True when a task's package imports another task's package (``tasks.classifiers`` is shared)."""
    parts = module.split(".")
    own = relative.parts[1].removesuffix(".py")
    return parts[0] == "tasks" and len(parts) > 1 and parts[1] not in (own, "classifiers")


def test_imports_run_one_way():
    assert offenders() == []


def test_the_check_sees_an_import_against_the_order():
    tree = ast.parse("import tasks.toy.task\nfrom typing import TYPE_CHECKING\n"
                     "if TYPE_CHECKING:\n    from trainer.trainer import Trainer\n"
                     "def later():\n    from data.datasets import load_mnist\n")
    assert list(imported_modules(tree)) == [(1, "tasks.toy.task"), (2, "typing"), (6, "data.datasets")]
    assert _other_task(ROOT.joinpath("tasks/robust/task.py").relative_to(ROOT), "tasks.adversarial.generator")
    assert not _other_task(ROOT.joinpath("tasks/robust/task.py").relative_to(ROOT), "tasks.classifiers")
