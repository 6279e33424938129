"""`models`: the registry's versions and aliases; `models promote V` makes V the champion."""

from __future__ import annotations

from pathlib import Path

from tutor.bootstrap import open_store
from tutor.config import MODELS_DIR, add_data_dir_argument, settings_from_args
from tutor.errors import InvalidInput
from tutor.model.registry import ALIASES, Registry


def register(subcommands) -> None:
    parser = subcommands.add_parser("models", help="list trained versions; promote one")
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR, help="the registry folder (default models/)")
    add_data_dir_argument(parser)
    actions = parser.add_subparsers(dest="action")
    promote = actions.add_parser("promote", help="point an alias (default champion) at a version")
    promote.add_argument("version")
    promote.add_argument("--alias", default="champion", choices=ALIASES)
    gate = actions.add_parser("gate", help="measure a round's candidate against the champion again "
                              "(after the gate's metrics or tolerances changed)")
    gate.add_argument("version")
    parser.set_defaults(run=run)


def run(args) -> int:
    registry = Registry(args.models_dir, open_store(settings_from_args(args)))
    registry.sync()
    if args.action == "gate":
        return regate(registry, args)
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


def regate(registry: Registry, args) -> int:
    """The gate again for a round's candidate; the verdict replaces its run's."""
    from tutor.cli.train import print_verdict
    from tutor.evaluation.gate import GateSlice
    from tutor.training import runs

    store = registry.store
    run = next((r for r in store.training_runs(limit=100) if r.version == args.version and r.gate), None)
    if run is None:
        raise InvalidInput(f"{args.version} is no round's candidate with a gate verdict.")
    settings = settings_from_args(args)
    gate_slice = GateSlice(**{k: v for k, v in run.gate["slice"].items() if k != "split"})
    champion = registry.alias("champion")
    base = runs.base_path(run.config, settings.data_dir)
    verdict = runs.run_gate(registry, base, champion, args.version, gate_slice, settings.data_dir)
    store.update_training_run(run.id, gate=verdict)
    print_verdict(verdict)
    return 0
