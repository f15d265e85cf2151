"""The ``vlaops`` command: one subcommand per stage.

    vlaops --help
    vlaops convert --help

Each subcommand lives in the module named in ``COMMANDS``; that module defines

    HELP = "one line for the command list"
    def configure(parser: argparse.ArgumentParser) -> None   # add arguments (and an epilog of examples)
    def run(args: argparse.Namespace) -> int | None         # do the work

and keeps heavy imports (jax, lerobot, torch) inside functions so ``--help`` stays instant.
A ``VlaopsError`` is printed as one ``error:`` line with exit status 2; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from vlaops import __version__
from vlaops.errors import VlaopsError

# subcommand → module. Keep sorted by pipeline order.
COMMANDS: dict[str, str] = {
    "convert": "vlaops.data.convert",
    "norm-stats": "vlaops.data.norm_stats",
    "generate-demos": "vlaops.sim.demos",
    "evaluate": "vlaops.sim.evaluate",
    "model": "vlaops.model.cli",
    "train": "vlaops.train.cli",
    "export": "vlaops.serve.export",
    "serve": "vlaops.serve.triton",
    "infer": "vlaops.serve.client",
    "bridge": "vlaops.serve.bridge",
    "deploy": "vlaops.serve.deploy",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vlaops",
        description="Robot demonstrations to a deployed pi0 policy.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vlaops {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(
            name,
            help=module.HELP,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return int(args._run(args) or 0)
    except VlaopsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
