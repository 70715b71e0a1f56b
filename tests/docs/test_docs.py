"""The README against the code: every command, option and Python name it shows exists (a doc-drift check)."""

import importlib
import re

import typer.main

import genzoo
from genzoo.cli import app
from tests.helpers.recipes import ROOT

README = (ROOT / "README.md").read_text()


def _code_lines() -> list[str]:
    """Lines of the README's fenced code blocks, `$ ` prompts removed, comments cut."""
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            line = line.strip().removeprefix("$ ").split("  #")[0].strip()
            lines.append(line)
    return lines


def _commands() -> dict:
    group = typer.main.get_command(app)
    return {name: cmd for name, cmd in group.commands.items()}


def test_every_command_and_option_the_readme_shows_exists():
    commands = _commands()
    seen = 0
    for line in _code_lines():
        for call in re.findall(r"(?:^|&& )genzoo ([a-z][a-z-]*)([^&|]*)", line):
            name, rest = call
            assert name in commands, f"README shows `genzoo {name}`, which is no command: {line}"
            params = commands[name].params
            options = {opt for p in params if p.param_type_name == "option" for opt in [*p.opts, *p.secondary_opts]}
            for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
                assert option in options, f"README shows `genzoo {name} {option}`, which it does not take: {line}"
            seen += 1
    assert seen >= 20  # the check reads the README's examples, not an empty list


def test_every_python_name_the_readme_shows_exists():
    """Names in code blocks and calls in the text (the "What moved" list names old modules on purpose)."""
    code = "\n".join(_code_lines())
    # (not in quotes: "genzoo.plugins" is the entry-point group's name)
    names = set(re.findall(r"(?<![\"'])\bgenzoo\.([A-Za-z_][A-Za-z_0-9]*(?:\.[A-Za-z_][A-Za-z_0-9]*)*)", code))
    names |= set(re.findall(r"\bgenzoo\.([A-Za-z_][A-Za-z_0-9]*(?:\.[A-Za-z_][A-Za-z_0-9]*)*)\(", README))
    assert len(names) >= 5
    for dotted in sorted(names):
        obj, parts = genzoo, dotted.split(".")
        for i, part in enumerate(parts):
            if not hasattr(obj, part):
                obj = importlib.import_module("genzoo." + ".".join(parts[: i + 1]))  # a submodule
            else:
                obj = getattr(obj, part)
