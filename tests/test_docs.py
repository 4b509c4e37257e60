"""The README documents every setting and every command."""

from __future__ import annotations

import argparse

from lookup.cli import _parser
from lookup.config import setting_names
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    """The README's section under `## title`, up to the next one."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_every_setting_is_in_the_configuration_table() -> None:
    table = _section("Configuration")
    missing = [name for name in setting_names() if f"| `{name}` |" not in table]
    assert not missing


def _commands(parser: argparse.ArgumentParser, prefix: str = "lookup") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found.extend(_commands(sub, f"{prefix} {name}"))
    return found


def test_every_command_is_in_the_command_line_table() -> None:
    table = _section("Command line")
    # A command's row starts with it, whole: `lookup key` is not `lookup keys ...`.
    missing = [
        command
        for command in _commands(_parser())
        if f"| `{command}`" not in table and f"| `{command} " not in table
    ]
    assert not missing


def test_readme_opens_with_the_two_commands() -> None:
    head = README[: README.index("## How it fits together")]
    assert "make run" in head and "make test" in head
