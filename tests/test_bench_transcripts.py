"""Blind rating: replies of two tutors mixed without labels, and scored back against the key."""

import json

from bench.transcripts import blind, score


def _run(tutor: str, replies: list[str]) -> list[dict]:
    return [{"question": "Q", "before": [], "learner": f"line {n}", "tutor": reply}
            for n, reply in enumerate(replies)]


def test_blind_mixing_hides_the_tutor_and_scoring_finds_it_again():
    runs = [_run("planner", ["How did you get 350?", "Yes, 150 is right."]),
            _run("served", ["350 is right!", "Yes, $150 is right. What comes next?"])]
    mixed, key = blind(runs, seed=1)
    assert sorted(row["reply"] for row in mixed) == sorted(r["tutor"] for run in runs for r in run)
    assert all(set(row) == {"id", "problem", "conversation_so_far", "learner", "reply"} for row in mixed)
    key = json.loads(json.dumps(key))  # as read back from the key file: ids are strings
    rating = {"How did you get 350?": 4, "Yes, 150 is right.": 3, "350 is right!": 1,
              "Yes, $150 is right. What comes next?": 5}
    first = [{"id": row["id"], "rating": rating[row["reply"]], "why": ""} for row in mixed]
    second = [{"id": row["id"], "rating": 2, "why": "vague"} for row in mixed if row["reply"] == "How did you get 350?"]
    raters = [first, second]  # a reply's rating is its mean over the raters who rated it: (4 + 2) / 2
    report = score(mixed, key, raters, ["planner", "served"], weakest=1)
    assert report["planner"]["mean"] == 3.0 and report["served"]["mean"] == 3.0
    assert report["served"]["rated_2_or_less"] == 0.5
    assert report["served"]["weakest"][0]["reply"] == "350 is right!"
