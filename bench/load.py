"""Many learners at once through the real server (loopback only).

    python -m bench.load [--learners 16] [--turns 4] [--think 10 20] [--concurrency N] [--model VERSION]
                         [--draft-candidates K ...] [--timeout 900]

`python app.py` runs in a child process with a scratch database; each simulated learner logs in
through the login form and works a different bank problem with its own Gradio client (its own
session), sending the scripted lines of `bench/generation.py` (a wrong value, the right first
step, "I don't know", the final answer). Before each message a learner reads and types for a
time drawn between the two `--think` seconds (a learner reading a short reply and typing a
short answer; `--think 0 0`: as fast as the tutor answers, the server saturated). Reported: time from
sending a message to the first tutor words shown in the chat (p50/p95 over all turns), the
student's decoded tokens per second over the whole run (its drafts, read back from the
database), errors (a call that failed, or a turn that ended without a tutor reply), and the
judge's reading of the turns sent (its mean score; how many turns it ranked candidates for).
With several `--draft-candidates` values the whole run repeats for each, one after another, and
a table compares them at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoTokenizer

from bench.generation import learner_lines, percentile
from bench.server import add_learners, cpu_seconds, resident_mib, running_app, scratch_data_dir, session_cookie
from tutor.config import PROBLEMS_FILE, Settings
from tutor.domain.problems import ProblemBank
from tutor.model.embedded import EMBEDDED_NAME
from tutor.storage.store import Store
from tutor.ui.access import SESSION_COOKIE

PASSWORD = "bench-load-password-1"


@dataclass
class Learner:
    name: str
    problem_id: str
    lines: list[str]
    ttfts: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--learners", type=int, default=16)
    parser.add_argument("--turns", type=int, default=4, help="messages each learner sends (at most 4)")
    parser.add_argument("--think", type=float, nargs=2, default=(10.0, 20.0), metavar=("LOW", "HIGH"),
                        help="seconds a learner reads and types before each message (uniform)")
    parser.add_argument("--concurrency", type=int, default=None, help="the app's --concurrency (default: its own)")
    parser.add_argument("--model", default=None, help="the version the app serves (default: its champion)")
    parser.add_argument("--draft-candidates", type=int, nargs="+", default=[None], metavar="K",
                        help="passing drafts the judge chooses among (default: the app's); several: one run each")
    parser.add_argument("--timeout", type=float, default=900, help="seconds the whole run may take")
    args = parser.parse_args()
    if not 1 <= args.learners <= 64:
        parser.error("--learners: 1 to 64")
    results = [(k, run(args, k)) for k in args.draft_candidates]
    if len(results) > 1:
        print("\nK  p50 s  p95 s  errors  judge score  ranked turns")
        for k, figures in results:
            print(f"{k:<2} {figures['p50']:>6.2f} {figures['p95']:>6.2f} {figures['errors']:>7} "
                  f"{figures['judge']:>12.3f} {figures['ranked']:>13}")


def run(args, candidates: int | None) -> dict:
    """One whole run with the app serving `candidates` (None: its default); its figures."""
    options = ["--concurrency", str(args.concurrency)] if args.concurrency else []
    options += ["--model", args.model] if args.model else []
    options += ["--draft-candidates", str(candidates)] if candidates else []
    options += ["--messages-per-minute", "60"]  # the bench's learners answer at machine speed

    with tempfile.TemporaryDirectory() as scratch:
        data_dir = scratch_data_dir(Path(scratch))
        names = add_learners(data_dir, args.learners, PASSWORD)
        problems = list(ProblemBank.load(PROBLEMS_FILE))
        learners = [Learner(name, problem.id, learner_lines(problem)[: args.turns])
                    for name, problem in zip(names, problems)]
        print(f"starting the app ({data_dir})...", flush=True)
        with running_app(data_dir, *options) as (url, process, ready):
            print(f"serving after {ready:.1f} s; {len(learners)} learners, {args.turns} messages each, "
                  f"{args.think[0]:g}-{args.think[1]:g} s to read and type each", flush=True)
            warm_up(url, names[0], problems[-1].id)
            tokenizer = AutoTokenizer.from_pretrained(data_dir / "models" / EMBEDDED_NAME)
            before = drafted_tokens(data_dir, tokenizer)
            started, cpu = time.perf_counter(), (cpu_seconds(process.pid), time.process_time())
            threads = [threading.Thread(target=work, args=(url, learner, args.think, random.Random(i)), daemon=True)
                       for i, learner in enumerate(learners)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=max(0.0, started + args.timeout - time.perf_counter()))
            elapsed = time.perf_counter() - started
            server_cpu, clients_cpu = cpu_seconds(process.pid) - cpu[0], time.process_time() - cpu[1]
            rss, peak = resident_mib(process.pid)
            unfinished = sum(thread.is_alive() for thread in threads)
            log = (data_dir / "app.log").read_text()
        tokens = drafted_tokens(data_dir, tokenizer) - before
        judged, ranked = judged_turns(data_dir)

    ttfts = [t for learner in learners for t in learner.ttfts]
    errors = [f"{learner.name}: {error}" for learner in learners for error in learner.errors]
    errors += [f"{unfinished} learners still waiting after {args.timeout:.0f} s"] if unfinished else []
    for error in errors[:10]:
        print("error:", error)
    if errors:
        print("the app's log ends:\n" + "\n".join(log.splitlines()[-30:]))
    print(f"\ndraft candidates: {candidates or 'the app default'}")
    print(f"{len(ttfts)} tutor turns for {len(learners)} learners in {elapsed:.1f} s; server resident "
          f"{rss:.0f} MiB (peak {peak:.0f}); CPU seconds: server {server_cpu:.0f}, the learners' clients "
          f"{clients_cpu:.0f} (of {elapsed * (os.cpu_count() or 1):.0f} on {os.cpu_count()} cores)")
    print(f"load_ttft_p50_s: {percentile(ttfts, 50):.2f}" if ttfts else "load_ttft_p50_s: nan")
    print(f"load_ttft_p95_s: {percentile(ttfts, 95):.2f}" if ttfts else "load_ttft_p95_s: nan")
    print(f"load_tokens_per_s: {tokens / elapsed:.1f}")
    print(f"load_errors: {len(errors)}")
    print(f"load_judge_score: {judged:.3f} ({ranked} turns ranked among candidates)")
    return {"p50": percentile(ttfts, 50) if ttfts else float("nan"),
            "p95": percentile(ttfts, 95) if ttfts else float("nan"),
            "errors": len(errors), "judge": judged, "ranked": ranked}


def client_for(url: str, name: str):
    from gradio_client import Client

    cookie = session_cookie(url, name, PASSWORD)
    return Client(f"{url}/learn/", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}, verbose=False,
                  analytics_enabled=False, download_files=False)


def warm_up(url: str, name: str, problem_id: str) -> None:
    """One untimed turn, so the first timed turns do not pay for loading the decoder thread."""
    client = client_for(url, name)
    client.predict(problem_id, api_name="/start_problem")
    client.predict("warm up", api_name="/send")


def work(url: str, learner: Learner, think: tuple[float, float], rng: random.Random) -> None:
    try:
        client = client_for(url, learner.name)
        client.predict(learner.problem_id, api_name="/start_problem")
    except Exception as error:  # a bench counts failures instead of stopping
        learner.errors.append(f"start: {error}")
        return
    for said in learner.lines:
        time.sleep(rng.uniform(*think))
        sent, first, last = time.perf_counter(), None, None
        try:
            for chat, *_ in client.submit(said, api_name="/send"):
                last = chat[-1] if chat else None
                if first is None and last and last["role"] == "assistant" and _text(last).strip():
                    first = time.perf_counter() - sent
        except Exception as error:
            learner.errors.append(f"{said!r}: {error}")
            continue
        if first is None or not last or last["role"] != "assistant":
            learner.errors.append(f"{said!r}: no tutor reply")
        else:
            learner.ttfts.append(first)


def _text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):  # Gradio 6 messages: a list of parts
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


def judged_turns(data_dir: Path) -> tuple[float, int]:
    """The judge's mean score over the tutor turns sent (the warm-up's too), and how many turns
    it ranked candidates for."""
    from tutor.judge.data import exchange_before
    from tutor.judge.registry import load_judge

    from tutor.errors import InvalidInput

    store = Store(Settings(data_dir).database_path)
    try:
        judge, items, ranked = load_judge(), [], 0
    except InvalidInput:
        return float("nan"), 0
    for user in store.users():
        for conversation in store.conversations(user):
            transcript = store.messages(conversation)
            for message in transcript:
                if message.role == "tutor" and any(m.role == "learner" and m.id < message.id for m in transcript):
                    items.append((exchange_before(conversation.problem, transcript, message.id), message.content))
                    ranked += "ranking" in (message.planner_state or {})
    scores = judge.score_many(items)
    return (sum(j.score for j in scores) / len(scores) if scores else float("nan")), ranked


def drafted_tokens(data_dir: Path, tokenizer) -> int:
    """Tokens the student has decoded so far (its drafts of tutor turns, in the database)."""
    drafts = [turn.message.planner_state.get("guard", {}).get("draft")
              for turn in Store(Settings(data_dir).database_path).labelled_turns()]
    return sum(len(tokenizer(draft, add_special_tokens=False)["input_ids"]) for draft in drafts if draft)


if __name__ == "__main__":
    main()
