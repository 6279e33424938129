"""`models`: the registry's versions and aliases; `models promote V` makes V the champion."""

from __future__ import annotations

from pathlib import Path

from tutor.bootstrap import open_store
from tutor.config import MODELS_DIR, add_data_dir_argument, settings_from_args
from tutor.model.registry import ALIASES, Registry


def register(subcommands) -> None:
    parser = subcommands.add_parser("models", help="list trained versions; promote one")
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR, help="the registry folder (default models/)")
    add_data_dir_argument(parser)
    actions = parser.add_subparsers(dest="action")
    promote = actions.add_parser("promote", help="point an alias (default champion) at a version")
    promote.add_argument("version")
    promote.add_argument("--alias", default="champion", choices=ALIASES)
    parser.set_defaults(run=run)


def run(args) -> int:
    registry = Registry(args.models_dir, open_store(settings_from_args(args)))
    registry.sync()
    if args.action == "promote":
        registry.set_alias(args.alias, args.version)
        print(f"{args.alias}: {args.version}")
        return 0
    aliases = {alias: registry.alias(alias) for alias in ALIASES}
    for version in registry.versions():
        manifest = registry.manifest(version)
        marks = ", ".join(a for a, v in aliases.items() if v == version)
        figures = manifest.get("evaluation", {}).get("figures", {})
        summary = "  ".join(f"{key} {figures[key]:.3g}" for key in ("move_f1", "question_rate", "leak_rate_unguarded")
                            if key in figures)
        print(f"{version:<6} {manifest.get('kind', ''):<4} base {manifest.get('base')}"
              f"{'  [' + marks + ']' if marks else ''}  {summary}")
    if not registry.versions():
        print(f"no trained versions in {registry.root}")
    return 0
