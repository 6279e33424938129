"""`train sft|kd|dpo|kto|self-imitation|conditional`: LoRA fine-tuning on the distilled dataset, or an RLHF
round on the feedback dataset, in a worker process."""

from __future__ import annotations

import sys
from pathlib import Path

from tutor.bootstrap import open_store
from tutor.config import MODELS_DIR, add_data_dir_argument, settings_from_args
from tutor.model.registry import Registry
from tutor.storage.store import TrainingRun
from tutor.training import runs
from tutor.training.preference import CONDITIONAL, ROUNDS, SELF_IMITATION
from tutor.training.sft import TrainSettings


def register(subcommands) -> None:
    parser = subcommands.add_parser("train", help="train a new student version")
    kinds = parser.add_subparsers(dest="kind", required=True)
    sft = kinds.add_parser("sft", help="supervised LoRA fine-tuning on `distill`'s dataset "
                           "(--kd: logit distillation from a local teacher)")
    defaults = TrainSettings()
    add_training_arguments(sft, defaults, dataset_help="default: DATA_DIR/distill/sft.jsonl")
    sft.add_argument("--lora-r", type=int, default=defaults.lora_r)
    sft.add_argument("--kd", action="store_true",
                     help="logit distillation with TRL's GKD trainer from --teacher (same tokenizer)")
    sft.add_argument("--teacher", help="with --kd: the teacher model's local path")
    sft.add_argument("--promote", action="store_true", help="make it the champion at once (skips the gate)")
    sft.add_argument("--parent", metavar="VERSION",
                     help="train this version's adapter on (e.g. on `distill --resample`'s dataset) "
                     "instead of a new one from the base")
    sft.set_defaults(run=run)
    for kind, about in (("dpo", "DPO on preference pairs (teachers' rewrites, check-labelled drafts)"),
                        ("kto", "KTO on 👍/👎 examples (learners, teachers' ratings, checks)"),
                        (SELF_IMITATION, "SFT on the champion's own passing drafts that the judge scores "
                                         "0.6 or more (I2D2)"),
                        (CONDITIONAL, "conditional training: SFT on every rated turn, a bad one under a "
                                      "control line the served prompt never has")):
        parser = kinds.add_parser(kind, help=f"an RLHF round: {about}, from the champion; "
                                  "then the evaluation gate")
        add_training_arguments(parser, runs.ROUND_TRAINING, dataset_help="a `dataset build` folder (default: built now)")
        parser.add_argument("--upper-layers", type=int, default=runs.ROUND_TRAINING.upper_layers,
                            help="train the adapter in the top N layers only (0: all; fewer: faster)")
        parser.add_argument("--no-simulated", action="store_true", help="leave simulated sessions out")
        parser.add_argument("--mrbench", action="store_true",
                            help="add MRBench's rated teacher turns as DPO pairs (offline teacher data)")
        parser.add_argument("--planner-pairs", action="store_true",
                            help="add pairs of the planner's words and each sent draft, the one the judge "
                            "scores higher chosen (DPO)")
        parser.add_argument("--beta", type=float, default=0.1, help="how close to stay to the champion")
        parser.add_argument("--gate-dialogues", type=int, default=None,
                            help="validation dialogues the gate measures (default: all 53)")
        parser.add_argument("--gate-attacks", type=int, default=40)
        parser.add_argument("--gate-mrbench", type=int, default=None,
                            help="MRBench held-out conversations the gate measures (default: all 46; 0: none)")
        parser.set_defaults(run=run_round)


def add_training_arguments(parser, defaults: TrainSettings, dataset_help: str) -> None:
    """The flags every kind of training run takes."""
    parser.add_argument("--dataset", type=Path, help=dataset_help)
    parser.add_argument("--base", default="embedded",
                        help="the base model: 'embedded' (SmolLM2-135M-Instruct) or a local path")
    parser.add_argument("--epochs", type=float, default=defaults.epochs)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--max-length", type=int, default=defaults.max_length, help="tokens per example")
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps, help="stop early (smoke runs)")
    parser.add_argument("--version", help="name of the new version (default: the next vN)")
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR, help="the registry folder (default models/)")
    parser.add_argument("--detach", action="store_true", help="start the worker and return")
    add_data_dir_argument(parser)


def run(args) -> int:
    if args.kd and not args.teacher:
        print("error: --kd needs --teacher (a local model with the student's tokenizer)", file=sys.stderr)
        return 2
    settings = settings_from_args(args)
    store = open_store(settings)
    if args.parent:
        Registry(args.models_dir, store).resolve(args.parent)  # a clear error before any worker starts
    train = TrainSettings(epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size,
                          max_length=args.max_length, max_steps=args.max_steps, lora_r=args.lora_r,
                          lora_alpha=2 * args.lora_r, kd=args.kd)
    config = {
        "base": args.base, "dataset": str(args.dataset) if args.dataset else None,
        "models_dir": str(args.models_dir), "version": args.version, "promote": args.promote,
        "teacher": args.teacher, "parent": args.parent, "train": train.to_json(),
    }
    return follow(store, settings.data_dir, "kd" if args.kd else "sft", config, args.detach)


def run_round(args) -> int:
    settings = settings_from_args(args)
    store = open_store(settings)
    runs.reap(store)
    train = TrainSettings(epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size,
                          max_length=args.max_length, max_steps=args.max_steps, upper_layers=args.upper_layers)
    config = runs.round_config(base=args.base, models_dir=args.models_dir, dataset=args.dataset,
                               include_simulated=not args.no_simulated, mrbench=args.mrbench, train=train,
                               planner_pairs=args.planner_pairs, beta=args.beta,
                               gate_dialogues=args.gate_dialogues, gate_attacks=args.gate_attacks,
                               gate_mrbench=args.gate_mrbench, version=args.version)
    return follow(store, settings.data_dir, args.kind, config, args.detach)


def follow(store, data_dir: Path, kind: str, config: dict, detach: bool) -> int:
    run, process = runs.start(store, data_dir, kind, config, exclusive=kind in ROUNDS)
    print(f"training run {run.id} started (worker pid {process.pid}; log: "
          f"{data_dir / 'runs' / f'run-{run.id}.log'})")
    if detach:
        return 0
    finished = runs.wait(store, run.id, process, on_update=_show)
    print(f"run {finished.id} {finished.status}: {finished.message or ''}")
    if finished.gate:
        print_verdict(finished.gate)
    return 0 if finished.status == "done" else 1


def print_verdict(gate: dict) -> None:
    """The gate's verdict, metric by metric, champion -> candidate."""
    def figure(value) -> str:
        return "—" if value is None else f"{value:.3f}"
    from tutor.evaluation.gate import interval_text, refusal

    for row in gate["rows"]:
        print(f"  {row['label']:<24} {figure(row['champion'])} -> {figure(row['candidate'])}  "
              f"{'ok' if row['passed'] else 'REGRESSED'}  {interval_text(row.get('interval'))}")
    verdict = "PASSED" if gate["passed"] else f"REFUSED: {refusal(gate)}"
    print(f"{gate['candidate']} against {gate['champion']}: {verdict}")


def _show(run: TrainingRun) -> None:
    if run.step:
        eta = f", about {run.eta_s // 60} min {run.eta_s % 60} s left" if run.eta_s is not None else ""
        print(f"step {run.step}/{run.total_steps}  loss {run.loss:.3f}{eta}", flush=True)
