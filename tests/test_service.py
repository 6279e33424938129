import pytest

from tests.conftest import CARMEN_ID, FIRST_REPLY
from tutor.domain.prompting import SOCRATIC_SYSTEM_PROMPT
from tutor.domain.tutoring import solution_steps
from tutor.errors import InvalidInput, NotFound
from tutor.model.fake import FakeBackend
from tutor.service import HINT_REQUEST, PLANNER_VERSION, THUMBS_UP, TutorService


def test_a_turn_streams_and_stores_both_messages(service):
    learner = service.local_learner()
    conversation = service.start_bank_session(learner, CARMEN_ID)

    replies = list(service.reply(conversation, "  I think the desk costs $350. "))

    assert [r.text for r in replies] == [FIRST_REPLY]  # shown once the whole draft has passed
    learner_message, tutor_message = service.transcript(conversation)
    assert (learner_message.role, learner_message.content) == ("learner", "I think the desk costs $350.")
    assert tutor_message.role == "tutor"
    assert tutor_message.content == FIRST_REPLY
    assert tutor_message.model_version == "fake"
    assert tutor_message.generation_params["max_new_tokens"] > 0
    assert tutor_message.latency_ms >= 0
    assert replies[-1].message == tutor_message


def test_the_model_is_asked_to_tutor_socratically_with_the_dialogue_so_far(service, fake_backend):
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    list(service.reply(conversation, "Is it 350?"))
    list(service.reply(conversation, "I added 200 and 150."))

    system, *dialogue = fake_backend.calls[-1]
    assert system.role == "system"
    assert "Never give the final answer" in system.content
    assert conversation.problem.question in system.content
    assert "Your next move is focus" in system.content  # the planner decides, the model phrases
    assert [(m.role, m.content) for m in dialogue] == [
        ("user", "Is it 350?"),
        ("assistant", FIRST_REPLY),
        ("user", "I added 200 and 150."),
    ]
    assert SOCRATIC_SYSTEM_PROMPT.split("\n")[0] in system.content


def test_the_learner_message_is_stored_before_the_model_runs(store, bank):
    seen_by_model = []

    class Recording(FakeBackend):
        def generate(self, messages, params):
            seen_by_model.append([m.content for m in store.messages(conversation)])
            yield from super().generate(messages, params)

    service = TutorService(store, bank, Recording())
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    list(service.reply(conversation, "Is it 500?"))
    # every draft (a failed one is tried again) sees the message stored, and no tutor turn yet
    assert seen_by_model and all(seen == ["Is it 500?"] for seen in seen_by_model)


@pytest.mark.parametrize("bad", ["", "x" * 20_000, "\x00\x01binary\xff\x00"])
def test_bad_input_stores_nothing(service, bad):
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    with pytest.raises(InvalidInput):
        list(service.reply(conversation, bad))
    assert service.transcript(conversation) == []


def test_an_empty_model_reply_is_replaced_by_the_planners_text(store, bank):
    service = TutorService(store, bank, FakeBackend([""]))
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    *_, last = service.reply(conversation, "hello")
    assert last.message.content == last.message.planner_state["planned_text"]
    assert last.message.model_version == PLANNER_VERSION


def test_a_draft_is_shown_once_the_whole_of_it_has_passed(store, bank):
    service = TutorService(store, bank, FakeBackend(["350 isn't right. How did you get 350?"]))
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    replies = list(service.reply(conversation, "I think the desk costs $350."))
    assert [r.text for r in replies] == ["350 isn't right. How did you get 350?"]
    assert replies[-1].message.planner_state["guard"]["passed"] is True


def test_a_draft_that_fails_after_a_good_sentence_shows_nothing_of_it(store, bank):
    leaky = FakeBackend(["Great question! The desk costs 500 dollars in the end, okay?"])
    service = TutorService(store, bank, leaky, draft_tries=1)  # one draft (tries: test_draft_tries.py)
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    replies = list(service.reply(conversation, "just tell me the answer"))
    tutor = replies[-1].message
    assert [reply.text for reply in replies] == [tutor.planner_state["planned_text"]]
    assert all("500" not in reply.text and "Great question" not in reply.text for reply in replies)
    assert tutor.model_version == PLANNER_VERSION
    guard = tutor.planner_state["guard"]
    assert guard["passed"] is False and guard["leaked_final"] is True
    assert guard["draft"].startswith("Great question! The desk costs") and guard["draft_model_version"] == "fake"


def test_a_draft_failing_in_its_first_sentence_is_replaced_before_anything_shows(store, bank):
    service = TutorService(store, bank, FakeBackend(["The desk costs 500 dollars. Good luck!"]))
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    replies = list(service.reply(conversation, "just tell me the answer"))
    tutor = replies[-1].message
    assert [r.text for r in replies] == [tutor.planner_state["planned_text"]]
    assert tutor.model_version == PLANNER_VERSION


def test_each_tutor_turn_stores_why_it_said_what_it_said(service):
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    *_, last = service.reply(conversation, "I think it's 350")
    tutor = last.message
    assert (tutor.move, tutor.hint_level) == ("probing", 0)
    assert tutor.planner_state["learner_state"] == "incorrect"
    assert tutor.planner_state["move"]["intent"] == "ask_to_explain"
    assert tutor.planner_state["planner"]["attempts"] == 1


def test_the_hint_button_climbs_the_ladder_as_far_as_the_policy_allows(service):
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    levels = []
    for _ in range(5):
        *_, last = service.hint(conversation)
        levels.append(last.message.hint_level)
    # focus, partial, the step's value after 3 requests (the policy's default); the next step
    # opens with its own question, so its hints start at partial
    assert levels == [2, 3, 4, 3, 3]
    learner_turns = [m.content for m in service.transcript(conversation) if m.role == "learner"]
    assert learner_turns == [HINT_REQUEST] * 5


def test_solving_steps_updates_mastery_and_progress(service):
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    list(service.reply(conversation, "3 * 50 = 150"))
    progress = service.progress(conversation)
    assert (progress.step, progress.steps, progress.solved) == (1, 4, False)
    assert progress.mastery["multiplication"] > 0.2  # above the prior after a right first try
    for answer in ("150", "300", "500"):
        list(service.reply(conversation, answer))
    progress = service.progress(conversation)
    assert progress.solved and progress.step == 4
    assert service.conversation(service.local_learner(), conversation.id).status == "solved"


def test_a_final_answer_alone_moves_only_the_skill_of_the_step_it_answers(service):
    """The answer (500) skips three steps; the learner did the last one (an addition), not the
    multiplications before it."""
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    list(service.reply(conversation, "500"))
    progress = service.progress(conversation)
    assert progress.solved
    steps = solution_steps(conversation.problem)
    assert set(progress.mastery) == {steps[-1].skill} and steps[0].skill not in progress.mastery


def test_own_problem_sessions_store_the_pasted_text(service):
    conversation = service.start_own_session(service.local_learner(), "  What is 12 + 30?  ")
    assert conversation.problem.question == "What is 12 + 30?"
    assert conversation.problem.source == "learner"
    with pytest.raises(InvalidInput):
        service.start_own_session(service.local_learner(), "")


def test_unknown_bank_problem_is_not_found(service):
    with pytest.raises(NotFound):
        service.start_bank_session(service.local_learner(), "no-such-problem")


def test_only_tutor_turns_of_your_own_conversation_can_be_rated(service, store):
    learner = service.local_learner()
    conversation = service.start_bank_session(learner, CARMEN_ID)
    list(service.reply(conversation, "Is it 350?"))
    learner_message, tutor_message = service.transcript(conversation)

    service.rate(learner, conversation, tutor_message.id, THUMBS_UP)
    assert [f.value for f in store.feedback(tutor_message)] == [1]
    with pytest.raises(NotFound):
        service.rate(learner, conversation, learner_message.id, THUMBS_UP)
    with pytest.raises(InvalidInput):
        service.rate(learner, conversation, tutor_message.id, 5)


def test_sessions_are_listed_newest_first(service):
    learner = service.local_learner()
    first = service.start_bank_session(learner, CARMEN_ID)
    second = service.start_own_session(learner, "What is 2 + 2?")
    list(service.reply(first, "hello again"))
    assert [c.id for c in service.sessions(learner)] == [first.id, second.id]


def test_a_teacher_model_solves_own_problems_and_only_verified_solutions_are_kept(store, bank):
    teacher = FakeBackend([
        "Apples after buying: 7 + 6 = 13\nApples after eating: 13 - 4 = 9\n9",
        "Apples after buying: 7 + 6 = 14\n14",  # a wrong step: not kept
    ])
    service = TutorService(store, bank, FakeBackend(), teacher=teacher)
    learner = service.local_learner()
    text = "Sam has 7 apples, buys 6 more and eats 4. How many are left?"

    solved = service.start_own_session(learner, text)
    assert (solved.problem.answer, len(solved.problem.solution)) == ("9", 2)
    assert service.progress(solved).steps == 2
    assert "Solve this math word problem" in teacher.calls[0][0].content

    unverified = service.start_own_session(learner, "Sam has 7 apples and buys 6 more. How many?")
    assert unverified.problem.solution == ()
    assert service.progress(unverified).steps == 0  # explain mode


def test_a_model_failure_mid_reply_falls_back_to_the_planner_and_keeps_the_turn(store, bank):
    from tutor.errors import ModelError

    class Failing(FakeBackend):
        def generate(self, messages, params):
            yield "Let's "
            raise ModelError("the endpoint went away")

    service = TutorService(store, bank, Failing())
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    *_, last = service.reply(conversation, "I think it's 350")
    assert last.message.model_version == PLANNER_VERSION
    assert last.message.content == last.message.planner_state["planned_text"]
    assert [m.role for m in service.transcript(conversation)] == ["learner", "tutor"]


def test_an_own_problem_gets_its_verified_solution_once_a_teacher_is_there(store, bank):
    text = "Sam has 7 apples and buys 6 more. How many does he have?"
    without = TutorService(store, bank, FakeBackend())
    assert without.start_own_session(without.local_learner(), text).problem.solution == ()
    teacher = FakeBackend(["Apples: 7 + 6 = 13\n13"])
    later = TutorService(store, bank, FakeBackend(), teacher=teacher)
    solved = later.start_own_session(later.local_learner(), text)
    assert solved.problem.answer == "13" and len(teacher.calls) == 1
    again = later.start_own_session(later.local_learner(), text)
    assert again.problem.solution == solved.problem.solution
    assert len(teacher.calls) == 1  # verified before: not asked again


def test_the_planner_student_says_the_planners_words_without_a_model(store, bank):
    from tutor.model.planner import PlannerStudent

    service = TutorService(store, bank, PlannerStudent())
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    replies = list(service.reply(conversation, "I think it is 350."))
    tutor = replies[-1].message
    assert [r.text for r in replies] == [tutor.planner_state["planned_text"]] == ["How did you get 350?"]
    assert tutor.model_version == PLANNER_VERSION and tutor.planner_state["guard"]["passed"] is True
