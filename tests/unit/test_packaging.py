"""The distribution's name is ours: `smsgateway` on PyPI is an unrelated project."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import distribution

from tests.support.processes import REPO_ROOT

DISTRIBUTION = "sinch-smsgateway"


def test_the_distribution_is_not_the_unrelated_pypi_smsgateway() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION
    assert project["scripts"] == {"smsgateway": "smsgateway.cli:main"}


def test_the_installed_distribution_provides_the_smsgateway_command() -> None:
    commands = {
        entry.name
        for entry in distribution(DISTRIBUTION).entry_points
        if entry.group == "console_scripts"
    }
    assert commands == {"smsgateway"}


def test_no_instruction_installs_smsgateway_from_an_index() -> None:
    texts = [REPO_ROOT / name for name in ("README.md", "Dockerfile", "Makefile")]
    for path in texts:
        found = re.findall(r"pip install[^\n`]*?['\" ]smsgateway\b", path.read_text())
        assert found == [], f"{path.name}: {found}"
