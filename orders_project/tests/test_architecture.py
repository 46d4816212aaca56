"""The dependency direction is a contract (pyproject.toml, import-linter):
imports run down the layers orders_project -> backoffice -> orders ->
inventory -> accounts -> core, the modules of a package import each other
without cycles, and runtime code never imports test support. These tests
plant a violation of each in a copy of the code and check that the linter
refuses it, so the contract cannot quietly stop checking anything."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.testing import BASE_DIR

PACKAGES = (
    "orders_project",
    "backoffice",
    "webhooks",
    "backups",
    "orders",
    "inventory",
    "accounts",
    "core",
)
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.slow


@pytest.fixture
def tree(tmp_path):
    """A copy of the project's packages and its import-linter configuration."""
    for package in PACKAGES:
        shutil.copytree(
            BASE_DIR / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(BASE_DIR / "pyproject.toml", tmp_path)
    return tmp_path


def lint(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(folder), "PATH": "/usr/bin:/bin"},
    )


def plant(path: Path, line: str) -> None:
    with path.open("a") as module:
        module.write(f"\n{line}\n")


def test_the_code_keeps_every_contract(tree):
    result = lint(tree)
    assert result.returncode == 0, result.stdout
    assert "3 kept, 0 broken" in result.stdout


def test_a_lower_layer_importing_a_higher_one_is_refused(tree):
    plant(tree / "inventory" / "selectors.py", "from orders.models import Order  # noqa")
    result = lint(tree)
    assert result.returncode != 0
    assert "inventory is not allowed to import orders" in result.stdout
    assert "inventory.selectors -> orders.models" in result.stdout


def test_core_importing_an_app_is_refused(tree):
    plant(tree / "core" / "pagination.py", "import accounts.models  # noqa")
    result = lint(tree)
    assert result.returncode != 0
    assert "core is not allowed to import accounts" in result.stdout


def test_a_cycle_hidden_in_a_function_is_refused(tree):
    plant(
        tree / "orders" / "emails.py",
        "def _planted():\n    from .tasks import send_order_emails  # noqa",
    )
    result = lint(tree)
    assert result.returncode != 0
    assert "No cycles are allowed in orders" in result.stdout


def test_runtime_code_importing_test_support_is_refused(tree):
    plant(tree / "orders" / "services.py", "from core.testing import run_together  # noqa")
    result = lint(tree)
    assert result.returncode != 0
    assert "orders.services -> core.testing" in result.stdout
