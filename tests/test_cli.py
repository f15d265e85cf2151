"""The `vlaops` command: every subcommand answers --help with an example, errors are one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vlaops import cli


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_subcommand_help_shows_an_example(name, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([name, "--help"])
    assert e.value.code == 0
    assert f"vlaops {name}" in capsys.readouterr().out


def test_help_is_fast_and_imports_no_heavy_library():
    """`vlaops --help` must not pull in torch, jax or lerobot (seconds of import each)."""
    code = (
        "import sys; from vlaops import cli; cli.build_parser(); "
        "print(sorted(m for m in ('torch', 'jax', 'lerobot', 'mujoco') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_user_error_is_one_line_with_status_2(tmp_path, capsys):
    rc = cli.main(["norm-stats", "--dataset", str(tmp_path), "--output", str(tmp_path / "x.json")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1
