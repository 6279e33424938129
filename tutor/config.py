"""Settings from environment variables and command-line flags (flags win)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from tutor.domain.policy import RevealPolicy
from tutor.domain.tutoring import DRAFT_CANDIDATES, DRAFT_TRIES

# Nothing is downloaded at run time: models come from installed packages or the data directory.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DIALOGUES_DIR = PROJECT_ROOT / "dialogues"
PROBLEMS_FILE = DIALOGUES_DIR / "problems.jsonl"
DIALOGUES_FILE = DIALOGUES_DIR / "mathdial.jsonl"
VOCABULARY_FILE = DIALOGUES_DIR / "vocabulary.json"  # the faithfulness check's words, learned from the two above
MODELS_DIR = PROJECT_ROOT / "models"
EMBEDDED = "embedded"
ENGINES = ("onnxruntime", "transformers")  # a local student's decoder: the fast one, or the training stack's


def default_data_dir() -> Path:
    return Path(os.environ.get("TUTOR_DATA_DIR") or platformdirs.user_data_dir("socratic-tutor"))


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    student_model: str = EMBEDDED  # "embedded", "planner", a Hugging Face id/local path, an http(s) endpoint, or "fake"
    model: str = "champion"  # the registry version or alias the embedded student serves ('base': none)
    adapter: str | None = None  # a peft LoRA adapter directory (overrides `model`)
    engine: str = ENGINES[0]  # decodes a local student (falls back to transformers where it cannot)
    teacher: str | None = None  # an OpenAI-compatible endpoint (used by later stages)
    api_key: str | None = None  # for hosted OpenAI-compatible endpoints
    host: str = "127.0.0.1"
    port: int = 7860
    reveal_policy: RevealPolicy = RevealPolicy()
    draft_tries: int = DRAFT_TRIES  # drafts a turn may take before the planner's words go out
    draft_candidates: int = DRAFT_CANDIDATES  # passing drafts the judge chooses among (1: no ranking)
    judge: str = "champion"  # the judge version in models/judges/ ('none': no judge)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "tutor.db"


def add_data_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="holds tutor.db, the converted model and caches "
        "(env TUTOR_DATA_DIR; default: a per-user data folder)",
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--student-model",
        default=env("TUTOR_STUDENT_MODEL", EMBEDDED),
        help="'embedded' (SmolLM2-135M-Instruct, default), 'planner' (no model: the planner's own "
        "words), a Hugging Face model id or local path, an OpenAI-compatible endpoint URL "
        "(http://host:port/v1#model), or 'fake' "
        "(env TUTOR_STUDENT_MODEL)",
    )
    parser.add_argument(
        "--model",
        default=env("TUTOR_MODEL", "champion"),
        help="which trained version of the embedded student to serve: a version in models/ "
        "(v1...), an alias (champion, candidate) or 'base' (env TUTOR_MODEL; default champion)",
    )
    parser.add_argument(
        "--adapter",
        default=env("TUTOR_ADAPTER"),
        help="a peft LoRA adapter directory to apply to the student (env TUTOR_ADAPTER)",
    )
    parser.add_argument(
        "--engine",
        default=env("TUTOR_ENGINE", ENGINES[0]),
        choices=ENGINES,
        help="what decodes a local student: 'onnxruntime' (default, several times faster; each "
        "version built once into the data dir) or 'transformers' (env TUTOR_ENGINE)",
    )
    parser.add_argument(
        "--teacher",
        default=env("TUTOR_TEACHER"),
        help="teacher model: an OpenAI-compatible endpoint URL (http://host:port/v1#model) "
        "(env TUTOR_TEACHER)",
    )
    add_number_argument(parser, "--draft-tries", int, DRAFT_TRIES,
                        "drafts of a turn the student may write before the planner's words go out "
                        "(1: fastest; each try goes on from the sentences the learner has seen)")
    add_number_argument(parser, "--draft-candidates", int, DRAFT_CANDIDATES,
                        "passing drafts the judge chooses among, written only while the engine is idle "
                        "(1: the first passing draft, no ranking)")
    parser.add_argument("--judge", default=env("TUTOR_JUDGE", "champion"),
                        help="the judge that ranks drafts and reads turns on the teacher's pages: a version "
                        "in models/judges/ or 'none' (env TUTOR_JUDGE; default the one shipped)")


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    add_number_argument(parser, "--bottom-out-after", int, 3,
                        "failed attempts on a step before the tutor may show its value")
    parser.add_argument(
        "--final-answer-after", default=env("TUTOR_FINAL_ANSWER_AFTER", "never"),
        help="failed attempts on the last step before the tutor may give the final answer, "
        "or 'never' (env TUTOR_FINAL_ANSWER_AFTER; default never)",
    )


def reveal_policy_from_args(args: argparse.Namespace) -> RevealPolicy:
    final = getattr(args, "final_answer_after", "never")
    if final != "never" and not str(final).isdigit():
        raise SystemExit(f"--final-answer-after must be a number or 'never', not {final!r}")
    return RevealPolicy(
        bottom_out_after=getattr(args, "bottom_out_after", 3),
        final_answer_after=None if final == "never" else int(final),
    )


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--host",
        default=env("TUTOR_HOST", "127.0.0.1"),
        help="interface to listen on (env TUTOR_HOST; default 127.0.0.1, this machine only)",
    )
    add_number_argument(parser, "--port", int, 7860, "port to listen on")
    parser.add_argument(
        "--public-url", default=env("TUTOR_PUBLIC_URL", ""),
        help="the address users open, when a reverse proxy serves the app (env TUTOR_PUBLIC_URL); "
        "an https address turns --secure-cookies on",
    )
    parser.add_argument(
        "--secure-cookies", action=argparse.BooleanOptionalAction,
        default={"1": True, "0": False}.get(env("TUTOR_SECURE_COOKIES", "")),
        help="send cookies over https only (env TUTOR_SECURE_COOKIES=1|0; default: on when "
        "--public-url is https)",
    )


def secure_cookies(args: argparse.Namespace) -> bool:
    """--secure-cookies as given, else whether the public URL is https."""
    if args.secure_cookies is not None:
        return args.secure_cookies
    return args.public_url.lower().startswith("https://")


def add_account_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--no-demo", action="store_true", default=env("TUTOR_NO_DEMO") == "1",
        help="on the first run, create only the admin, not the demo class with a teacher and a "
        "learner (env TUTOR_NO_DEMO=1)",
    )
    parser.add_argument(
        "--admin-name", default=env("TUTOR_ADMIN_NAME", "admin"),
        help="the first admin's name, made on the first run (env TUTOR_ADMIN_NAME; default admin)",
    )
    add_number_argument(parser, "--session-hours", float, 8,
                        "a web session ends after this long without a request")
    add_number_argument(parser, "--messages-per-minute", int, 12, "most messages one learner may send in a minute")
    add_number_argument(parser, "--concurrency", int, 4, "tutor turns generated at once")
    add_number_argument(parser, "--queue-size", int, 64, "requests waiting per page before new ones are refused")


def add_number_argument(parser: argparse.ArgumentParser, flag: str, kind: type, default: float, help: str) -> None:
    """A numeric setting with its environment variable (`--queue-size`: TUTOR_QUEUE_SIZE)."""
    name = "TUTOR_" + flag.removeprefix("--").upper().replace("-", "_")
    parser.add_argument(flag, type=kind, default=kind(os.environ.get(name, default)),
                        help=f"{help} (env {name}; default {default})")


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings(
        data_dir=(args.data_dir or default_data_dir()).expanduser(),
        student_model=getattr(args, "student_model", EMBEDDED),
        model=getattr(args, "model", "champion"),
        adapter=getattr(args, "adapter", None),
        engine=getattr(args, "engine", ENGINES[0]),
        teacher=getattr(args, "teacher", None),
        api_key=os.environ.get("TUTOR_API_KEY") or os.environ.get("OPENAI_API_KEY"),
        host=getattr(args, "host", "127.0.0.1"),
        port=getattr(args, "port", 7860),
        reveal_policy=reveal_policy_from_args(args),
        draft_tries=max(1, getattr(args, "draft_tries", DRAFT_TRIES)),
        draft_candidates=max(1, getattr(args, "draft_candidates", DRAFT_CANDIDATES)),
        judge=getattr(args, "judge", "champion"),
    )
