"""The CodeAgent's guards for models that lose their way: tool names the code cannot redefine,
an observation for every step, a precise hint for a plain-text answer, repetition that ends a run,
a function handed back as its source, and made-up data held back once. End to end with the
scripted model and real executors."""

from __future__ import annotations

from typing import Any

import pytest

from codeloop import CodeAgent, RunState, RunStuck, ScriptedModel, tool
from codeloop.agents.guards import SILENT_STEP, Snippet
from codeloop.agents.shield import shield
from codeloop.errors import AgentExecutionError, ConfigurationError
from codeloop.events import Event, ModelDelta, Observation, RunFinished, StepErrored
from codeloop.messages import Role
from codeloop.result import RunResult

pytestmark = pytest.mark.filterwarnings("ignore:LocalExecutor is not a security boundary")
EXECUTORS = ["monty", "local", "jail"]
PROTECTED = {"get_price", "final_answer"}


class Shop:
    """A tool that records its calls: the real prices are 0.5 (apple) and 0.75 (pear)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

        @tool
        def get_price(item: str) -> float:
            """Look up the price of an item in the shop.

            Args:
                item: The item's name.
            """
            self.calls.append(item)
            return {"apple": 0.5, "pear": 0.75}[item]

        self.tool = get_price


def fenced(code: str) -> str:
    return f"Thought: next.\n```python\n{code}\n```"


def run(agent: CodeAgent, task: str = "t") -> tuple[RunResult, list[Event]]:
    events = list(agent.stream(task))
    finished = [e for e in events if isinstance(e, RunFinished) and e.depth == 0]
    return finished[0].result, events


def last_user_text(model: ScriptedModel, request: int) -> str:
    return next(m.content for m in reversed(model.requests[request]) if m.role is Role.USER)


def notes(events: list[Event], step: int) -> list[str]:
    return [e.text for e in events if isinstance(e, Observation) and e.step == step]


# ---- 1. tool names are protected -------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_tool_the_code_redefines_with_made_up_data_is_still_the_real_tool(executor: str) -> None:
    shop = Shop()
    fake = 'def get_price(item):\n    prices = {"apple": 99.0}\n    return prices[item]\n'
    model = ScriptedModel(
        [fenced(fake + 'total = get_price("apple") * 3\nprint(total)'), fenced("final_answer(total)")]
    )
    result, events = run(CodeAgent([shop.tool], model, executor=executor))
    assert result.output == 1.5 and shop.calls == ["apple"]
    expected = "`get_price` is a tool: your definition of it (line 1) was ignored"
    assert any(expected in text for text in notes(events, 1))
    seen = last_user_text(model, 1)
    assert "1.5" in seen and expected in seen and "calls to get_price() go to the real one" in seen


BINDINGS = {
    "assignment": "get_price = lambda item: 99.0",
    "class": "class get_price:\n    pass",
    "for": "for get_price in [len]:\n    pass",
    "import as": "import math as get_price",
    "walrus": "if (get_price := 99.0):\n    pass",
    "except as": "try:\n    1 / 0\nexcept ZeroDivisionError as get_price:\n    pass",
    "global in a function": "def setup():\n    global get_price\n    get_price = len\nsetup()",
    "annotated": "get_price: float = 99.0",
    "unpacking": "get_price, other = len, 1",
    "with as": (
        "class Box:\n    def __enter__(self):\n        return len\n    def __exit__(self, *exc):\n"
        "        return False\nwith Box() as get_price:\n    pass"
    ),
    "match capture": "match 99.0:\n    case get_price:\n        pass",
    "final_answer": "def final_answer(answer):\n    print('fake', answer)",
}


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("binding", list(BINDINGS))
def test_no_binding_of_a_tool_name_replaces_the_tool(executor: str, binding: str) -> None:
    shop = Shop()
    model = ScriptedModel(
        [fenced(BINDINGS[binding] + '\nprint(get_price("pear"))'), fenced("final_answer(1)")]
    )
    result, _ = run(CodeAgent([shop.tool], model, executor=executor, max_steps=2))
    first = result.memory.action_steps()[0]
    assert first.error is None, first.error
    assert shop.calls == ["pear"] and first.observations.startswith("0.75\n")
    name = "final_answer" if binding == "final_answer" else "get_price"
    assert f"`{name}` is " in first.observations and "was ignored" in first.observations
    assert result.output == 1  # a redefined final_answer still ends the run with the real one


@pytest.mark.parametrize("executor", ["local", "jail"])
def test_dynamic_rebinding_lasts_only_for_its_own_snippet(executor: str) -> None:
    shop = Shop()
    model = ScriptedModel(
        [
            fenced('globals()["get_price"] = len\nprint(get_price("apple"))'),
            fenced('globals().update(get_price=len)\nprint("same snippet:", get_price("apple"))'),
            fenced('print(get_price("pear"))'),
            fenced("final_answer(0)"),
        ]
    )
    result, _ = run(CodeAgent([shop.tool], model, executor=executor))
    steps = result.memory.action_steps()
    assert steps[0].observations.startswith("0.5\n")  # a literal globals() key is renamed too
    assert steps[1].observations.startswith("same snippet: 5")  # not seen by the host...
    assert steps[2].observations.startswith("0.75") and shop.calls == ["apple", "pear"]  # ...undone


def test_methods_class_attributes_and_parameters_keep_a_tool_name() -> None:
    code = (
        "class Shop:\n    get_price = 1\n    def get_price(self, item):\n        return 2\n"
        "def apply(get_price, item):\n    return get_price(item)\n"
        "print(Shop().get_price('a'), apply(len, 'ab'), [get_price for _ in 'x'])"
    )
    assert shield(code, Snippet.parse(code).tree, PROTECTED).code == code


def test_renames_keep_every_line_and_column_and_say_where() -> None:
    code = (
        "from shop import get_price\n"
        "def compute():\n    get_price = {'apple': 9}\n    return get_price\n"
        "globals()['final_answer'] = print\n"
    )
    shielded = shield(code, Snippet.parse(code).tree, PROTECTED)
    assert shielded.code == (
        "from shop import get_price as _ignored_get_price\n"
        "def compute():\n    _ignored_get_price = {'apple': 9}\n    return get_price\n"
        "globals()['_ignored_final_answer'] = print\n"
    )
    assert shielded.notes == (
        "`final_answer` is the final_answer function: your definition of it (line 5) was ignored; "
        "calls to final_answer() go to the real one.",
        "`get_price` is a tool: your definition of it (lines 1, 3) was ignored; "
        "calls to get_price() go to the real one.",
    )


def test_a_binding_that_cannot_be_renamed_safely_is_refused() -> None:
    code = "def \\\n  get_price(item):\n    return 1\n"  # the name is not on the def's line
    with pytest.raises(AgentExecutionError, match="`get_price` names a function you are given"):
        shield(code, Snippet.parse(code).tree, PROTECTED)


def test_an_error_shows_the_line_as_the_model_wrote_it() -> None:
    shop = Shop()
    model = ScriptedModel(
        [fenced("for get_price in [1]: print(get_price['apple'])"), fenced("final_answer(0)")]
    )
    result, _ = run(CodeAgent([shop.tool], model))
    error = result.memory.action_steps()[0].error
    assert error is not None and "line 1: for get_price in [1]: print(get_price['apple'])" in error.message
    assert "_ignored_" not in error.message and "`get_price` is a tool" in error.message


# ---- 2. every step gets an observation -------------------------------------------------------


def test_a_step_that_shows_nothing_is_told_so() -> None:
    model = ScriptedModel(
        [fenced("x = 1"), fenced("def double(n):\n    return 2 * n"), fenced("final_answer(x)")]
    )
    result, events = run(CodeAgent([], model))
    first, second = result.memory.action_steps()[:2]
    assert first.observations == SILENT_STEP and notes(events, 1) == [SILENT_STEP]
    assert last_user_text(model, 1) == f"Observation:\n{SILENT_STEP}"
    assert second.observations.startswith(SILENT_STEP) and "You defined double()" in second.observations
    assert "print what it returns" in last_user_text(model, 2)


def test_a_step_that_printed_or_returned_something_gets_no_silence_note() -> None:
    model = ScriptedModel([fenced("print('hi')"), fenced("3 + 4"), fenced("final_answer(0)")])
    result, _ = run(CodeAgent([], model))
    assert [s.observations for s in result.memory.action_steps()[:2]] == ["hi\n", "Last output: 7"]


# ---- 3. a reply with no code -----------------------------------------------------------------


def test_a_plain_text_answer_gets_the_call_to_write() -> None:
    model = ScriptedModel(["Lyon", "", fenced('final_answer("Lyon")')])
    result, _ = run(CodeAgent([], model))
    assert result.output == "Lyon"
    hint = last_user_text(model, 1)
    assert 'If "Lyon" is your answer, reply with:\n```python\nfinal_answer("Lyon")\n```' in hint
    assert "# your code" not in hint
    assert "Your reply was empty." in last_user_text(model, 2)


@pytest.mark.parametrize(
    ("replies", "state", "output"),
    [
        ([fenced("print(1)"), "Lyon"], RunState.SUCCESS, "Lyon"),
        ([fenced("print(1)"), "The answer is 42."], RunState.SUCCESS, 42),
        ([fenced("print(1)"), "I need to look at more data first."], RunState.MAX_STEPS, None),
        (["Lyon", fenced("print(1)")], RunState.MAX_STEPS, None),  # text on a step that is not the last
    ],
)
def test_plain_answer_text_is_accepted_on_the_last_step_when_asked(
    replies: list[str], state: RunState, output: Any
) -> None:
    agent = CodeAgent([], ScriptedModel(replies), max_steps=2, plain_answer_at_last_step=True)
    result, _ = run(agent)
    assert (result.state, result.output) == (state, output)
    off = CodeAgent([], ScriptedModel(replies), max_steps=2)
    assert run(off)[0].state is RunState.MAX_STEPS


def test_a_plain_answer_on_the_last_step_still_goes_through_the_checks() -> None:
    agent = CodeAgent(
        [],
        ScriptedModel(["Lyon"]),
        max_steps=1,
        plain_answer_at_last_step=True,
        final_answer_checks=[lambda answer, memory: answer == "Paris"],
    )
    result, _ = run(agent)
    assert result.state is RunState.MAX_STEPS
    error = result.memory.action_steps()[0].error
    assert error is not None and error.type == "FinalAnswerRejected"


def test_a_plain_answer_before_any_tool_call_asks_for_the_tools_once() -> None:
    shop = Shop()
    model = ScriptedModel(["0.6", "0.6", fenced('final_answer(get_price("apple"))')])
    result, _ = run(CodeAgent([shop.tool], model))
    assert result.output == 0.5 and shop.calls == ["apple"]
    first = last_user_text(model, 1)
    assert 'no tool has been called yet, so "0.6" does not come from the tools' in first
    assert "get_price()" in first
    assert 'If "0.6" is your answer, reply with:' in last_user_text(model, 2)  # asked once only


def test_a_plain_answer_after_a_tool_call_gets_the_call_to_write() -> None:
    shop = Shop()
    model = ScriptedModel([fenced('print(get_price("pear"))'), "0.75", fenced("final_answer(0.75)")])
    run(CodeAgent([shop.tool], model))
    assert 'If "0.75" is your answer, reply with:' in last_user_text(model, 2)


# ---- 3b. what a failed action shows ----------------------------------------------------------


def order_tool() -> Any:
    @tool
    def get_order(order_id: str) -> dict:
        """An order's record.

        Args:
            order_id: The order's id.
        """
        return {"order_id": order_id, "items": [{"sku": "AB-1", "quantity": 2}]}

    return get_order


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_failed_action_shows_what_the_tools_returned_before_the_error(executor: str) -> None:
    code = 'order = get_order("ORD-1")\ntotal = sum(i["price_usd"] for i in order["items"])'
    model = ScriptedModel([fenced(code), fenced("final_answer(1)")])
    run(CodeAgent([order_tool()], model, executor=executor))
    seen = last_user_text(model, 1)
    assert "'price_usd'" in seen
    assert "Before the error, the tools returned:\nget_order('ORD-1') returned " in seen
    assert "'items': [{'sku': 'AB-1', 'quantity': 2}]" in seen


def test_tool_results_after_an_error_are_bounded() -> None:
    @tool
    def big(n: int) -> list:
        """A big nested value.

        Args:
            n: Its length.
        """
        return [{"k": "x" * 1000, "deep": [[[[[1]]]]]} for _ in range(n)]

    code = "\n".join(f"v{i} = big(2000)" for i in range(6)) + "\n1 / 0"
    model = ScriptedModel([fenced(code), fenced("final_answer(1)")])
    run(CodeAgent([big], model))
    seen = last_user_text(model, 1)
    assert "(last 4 calls)" in seen and seen.count("big(2000) returned") == 4
    assert len(seen) < 3000


def test_an_undefined_function_names_the_tools_to_call_instead() -> None:
    shop = Shop()
    model = ScriptedModel([fenced('print(get_employee("Ada"))'), fenced("final_answer(1)")])
    run(CodeAgent([shop.tool], model))
    assert "get_employee() is not one of your tools. You can call: get_price()." in last_user_text(model, 1)


def test_an_undefined_variable_is_not_taken_for_a_missing_tool() -> None:
    model = ScriptedModel([fenced("print(price)"), fenced("final_answer(1)")])
    run(CodeAgent([Shop().tool], model))
    assert "not one of your tools" not in last_user_text(model, 1)


# ---- 3c. a reply ends with its code block ----------------------------------------------------


@pytest.mark.parametrize("stream_outputs", [True, False])
def test_a_reply_ends_with_its_first_code_block(stream_outputs: bool) -> None:
    reply = (
        "Thought: get the price.\n```python\nfinal_answer(get_price('apple'))\n```\n"
        "These functions already exist. Call them:\n```python\nfinal_answer(99)\n```"
    )
    model = ScriptedModel([reply], chunk_size=8)
    agent = CodeAgent([Shop().tool], model, stream_outputs=stream_outputs)
    result, events = run(agent)
    step = result.memory.action_steps()[0]
    assert result.output == 0.5
    assert step.model_output == "Thought: get the price.\n```python\nfinal_answer(get_price('apple'))\n```"
    assert step.usage is not None and step.usage.output_tokens == len(reply) // 4 + 1  # the whole reply's
    if stream_outputs:
        shown = "".join(e.delta.content for e in events if isinstance(e, ModelDelta))
        assert "already exist" not in shown and shown.startswith(step.model_output)


# ---- 4. repetition ---------------------------------------------------------------------------


def test_the_same_failing_code_again_and_again_ends_the_run_stuck() -> None:
    failing = ["x = 1 / 0", "x = 1/0  # try again", "\n\nx = (1 / 0)\n", "x=1/0", "final_answer(1)"]
    model = ScriptedModel([fenced(c) for c in failing])
    agent = CodeAgent([], model, max_repeats=3)
    result, events = run(agent)
    assert result.state is RunState.STUCK and result.output is None
    assert "repeated itself 3 times in a row" in (result.error or "")
    assert len(model.requests) == 4 and len(result.memory.action_steps()) == 4  # memory intact
    errors = [e.error.message for e in events if isinstance(e, StepErrored)]
    assert "already ran this exact code" not in errors[0]
    assert all("You already ran this exact code (step 1)" in m for m in errors[1:])
    assert "Try a different approach." in last_user_text(model, 3)
    with pytest.raises(RunStuck) as info:
        CodeAgent([], ScriptedModel([fenced("x = 1 / 0")] * 4), max_repeats=3).run("t")
    assert info.value.result is not None and info.value.result.state is RunState.STUCK


def test_the_same_error_twice_in_a_row_is_pointed_out() -> None:
    model = ScriptedModel(
        [fenced("print(missing)"), fenced("y = 2\nprint(missing)"), fenced("final_answer(2)")]
    )
    result, _ = run(CodeAgent([], model))
    assert result.output == 2
    first, second = (s.error for s in result.memory.action_steps()[:2])
    assert first is not None and "same error" not in first.message
    assert second is not None and "This is the same error as in the previous step." in second.message


def test_repeats_that_are_not_in_a_row_or_are_allowed_do_not_end_the_run() -> None:
    codes = ["print(1 / 0)", "print(1 / 0)", "print('c')", "print(1 / 0)", "print('d')", "final_answer(3)"]
    assert CodeAgent([], ScriptedModel([fenced(c) for c in codes]), max_repeats=2).run("t") == 3
    alternating = [fenced("print(1 / 0)"), fenced("print('other')")] * 3  # a loop of two: repeats too
    assert run(CodeAgent([], ScriptedModel(alternating), max_repeats=2))[0].state is RunState.STUCK
    same = [fenced("print(1 / 0)")] * 5
    result, _ = run(CodeAgent([], ScriptedModel(same), max_repeats=None, max_steps=5))
    assert result.state is RunState.MAX_STEPS
    with pytest.raises(ConfigurationError, match="max_repeats"):
        CodeAgent([], ScriptedModel([]), max_repeats=0)


def test_the_same_empty_reply_again_and_again_ends_the_run_stuck() -> None:
    model = ScriptedModel([fenced("x = 1"), "", "", "", ""])
    result, _ = run(CodeAgent([], model, max_steps=10))
    assert result.state is RunState.STUCK and len(model.requests) == 5


# ---- 5. code handed back, assertions that say what failed -----------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_function_or_class_handed_to_final_answer_gives_its_source(executor: str) -> None:
    source = "def add_one(n):\n    # one more\n    return n + 1"
    model = ScriptedModel(
        [
            fenced(f"{source}\nassert add_one(1) == 3"),
            fenced("class Stack:\n    pass\nprint(add_one(1))"),
            fenced("final_answer(add_one)"),
        ]
    )
    result, _ = run(CodeAgent([], model, executor=executor))
    assert result.output == source
    error = result.memory.action_steps()[0].error
    assert (
        error is not None
        and "AssertionError (line 4: assert add_one(1) == 3): assert 2 == 3" in error.message
    )
    classy = ScriptedModel(
        [fenced("class Stack:\n    items = []\nprint(Stack().items)\nfinal_answer(Stack)")]
    )
    assert CodeAgent([], classy, executor=executor).run("t") == "class Stack:\n    items = []"


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_function_handed_back_comes_with_the_imports_it_uses(executor: str) -> None:
    words = "def words(text):\n    return re.findall(r'\\w+', text)"
    model = ScriptedModel(
        [
            fenced("import re\nimport math as m\nfrom collections import Counter"),
            fenced(f"{words}\nprint(words('a b'))"),
            fenced("final_answer(words)"),
        ]
    )
    answer = CodeAgent([], model, executor=executor).run("t")
    assert answer == f"import re\n\n{words}"  # not math or Counter: words() does not use them
    namespace: dict[str, Any] = {}
    exec(answer, namespace)  # the source handed back runs on its own
    assert namespace["words"]("x y") == ["x", "y"]


def test_a_function_whose_definition_never_ran_is_not_handed_back_as_source() -> None:
    model = ScriptedModel(
        [
            fenced("def f():\n    return 1\nprint(f())"),
            fenced("print(1 / 0)\ndef f():\n    return 2"),  # fails before redefining f
            fenced("final_answer(f)"),
        ]
    )
    assert CodeAgent([], model, executor="local").run("t") == "def f():\n    return 1"


SQUARE = (
    'def square(n):\n    """The square of n.\n\n    >>> square(3)\n    9\n'
    '    >>> square(-2)\n    4\n    """\n'
)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_docstring_examples_of_code_handed_back_run_first_and_failures_hold_it_back(executor: str) -> None:
    wrong, right = SQUARE + "    return n * 3", SQUARE + "    return n * n"
    model = ScriptedModel(
        [fenced(f"{wrong}\nfinal_answer(square)"), fenced(f"{right}\nfinal_answer(square)")]
    )
    result, _ = run(CodeAgent([], model, executor=executor))
    first = result.memory.action_steps()[0].error
    assert first is not None and first.type == "FinalAnswerRejected"
    assert "1 of the 2 examples in square's docstring failed" in first.message
    assert "square(3) returned 9" not in first.message  # 3 * 3 is 9: compared by value, not by text
    assert "square(-2) returned -6, the docstring expects 4" in first.message
    assert result.output == right and result.state is RunState.SUCCESS


def test_examples_that_expect_an_error_pass_only_when_that_error_is_raised() -> None:
    doc = (
        '    """Half of an even n.\n\n    >>> half(3)\n'
        '    Traceback (most recent call last):\n    ValueError: odd\n    """\n'
    )
    lax = f"def half(n):\n{doc}    return n // 2"
    strict = f"def half(n):\n{doc}    if n % 2:\n        raise ValueError('odd')\n    return n // 2"
    model = ScriptedModel([fenced(f"{lax}\nfinal_answer(half)"), fenced(f"{strict}\nfinal_answer(half)")])
    result, _ = run(CodeAgent([], model))
    first = result.memory.action_steps()[0].error
    assert first is not None and "half(3) raised nothing, the docstring expects ValueError" in first.message
    assert result.output == strict


def test_a_function_never_run_is_held_back_once_and_never_on_the_last_step() -> None:
    source = "def twice(n):\n    return 2 * n"
    model = ScriptedModel([fenced(f"{source}\nfinal_answer(twice)"), fenced("final_answer(twice)")])
    result, _ = run(CodeAgent([], model))
    first = result.memory.action_steps()[0].error
    assert first is not None and "twice() has never been run" in first.message
    assert result.output == source and len(model.requests) == 2  # held back once only
    wrong = SQUARE + "    return n * 3"
    last = ScriptedModel([fenced("x = 1"), fenced(f"{wrong}\nfinal_answer(square)")])
    assert CodeAgent([], last, max_steps=2).run("t") == wrong  # the last step: taken as it is
    off = ScriptedModel([fenced(f"{wrong}\nfinal_answer(square)")])
    assert CodeAgent([], off, check_handed_back_code=False).run("t") == wrong


def test_failing_examples_hold_code_back_twice_a_run_at_most() -> None:
    wrong = SQUARE + "    return n * 3"
    model = ScriptedModel([fenced(f"{wrong}\nfinal_answer(square)")] * 3)
    result, _ = run(CodeAgent([], model, max_repeats=None))
    assert result.output == wrong and len(model.requests) == 3


# ---- 6. made-up data -------------------------------------------------------------------------

INVENTED = 'prices = {"apple": 0.9, "pear": 1.2, "plum": 2.0}\nfinal_answer(prices["apple"] * 3)'


def test_made_up_data_is_held_back_once_when_asked() -> None:
    shop = Shop()
    model = ScriptedModel([fenced(INVENTED), fenced(INVENTED)])
    agent = CodeAgent([shop.tool], model, check_invented_data=True)
    result, _ = run(agent, "What do 3 apples cost?")
    first = result.memory.action_steps()[0].error
    assert first is not None and first.type == "FinalAnswerRejected"
    assert "no tool was called" in first.message and "step 1, line 1" in first.message
    assert "get_price()" in first.message
    assert result.output == pytest.approx(2.7)  # one rejection, then accepted
    assert CodeAgent([shop.tool], ScriptedModel([fenced(INVENTED)])).run("t") == pytest.approx(2.7)  # off


@pytest.mark.parametrize(
    ("task", "code"),
    [
        ("What do 3 apples cost?", f'get_price("pear")\n{INVENTED}'),  # a tool was called
        ("Prices: apple 0.9, pear 1.2, plum 2.0. What do 3 apples cost?", INVENTED),  # data from the task
        ("What do 3 apples cost?", "final_answer(sorted([3, x := 1, 2]))"),  # not a table: computed
    ],
)
def test_data_from_a_tool_or_the_task_is_not_held_back(task: str, code: str) -> None:
    shop = Shop()
    agent = CodeAgent([shop.tool], ScriptedModel([fenced(code)]), check_invented_data=True, max_steps=1)
    assert run(agent, task)[0].state is RunState.SUCCESS


# ---- 7. data the model looked for in the wrong place, and answers that give up ---------------


@tool
def get_order(order_id: str) -> dict:
    """An order.

    Args:
        order_id: The order's id.

    Returns:
        A dict with keys order_id, items (a list of {"sku", "quantity"}).
    """
    return {"order_id": order_id, "items": [{"sku": "AB-1", "quantity": 2}]}


@tool
def get_product(sku: str) -> dict:
    """A product's details.

    Args:
        sku: The product's SKU.

    Returns:
        A dict with keys sku, name, price_usd.
    """
    return {"sku": sku, "name": "Lamp", "price_usd": 4.5}


LOOKED_IN_ORDER = 'order = get_order("O-1")\nfinal_answer(order["items"][0]["price_usd"] * 2)'


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_key_missing_from_a_tool_result_names_the_tools_whose_results_have_it(executor: str) -> None:
    model = ScriptedModel(
        [fenced(LOOKED_IN_ORDER), fenced('final_answer(get_product("AB-1")["price_usd"] * 2)')]
    )
    result, _ = run(CodeAgent([get_order, get_product], model, executor=executor))
    error = result.memory.action_steps()[0].error
    assert error is not None and error.message.startswith("KeyError")
    assert "'price_usd' is in what these tools return: get_product(sku: str) -> dict." in error.message
    assert "get_order(" not in error.message.split("'price_usd' is in")[1]  # the tool that lacked it
    assert result.output == 9.0
    no_such_key = ScriptedModel([fenced('final_answer(get_order("O-1")["colour"])')])
    failed, _ = run(CodeAgent([get_order, get_product], no_such_key, max_steps=1))
    last = failed.memory.action_steps()[0].error
    assert last is not None and "is in what these tools return" not in last.message  # no tool names it


GIVE_UP = 'order = get_order("O-1")\nfinal_answer("The order does not have a price_usd key.")'


def test_an_answer_that_gives_up_is_held_back_once_while_tools_were_never_called() -> None:
    model = ScriptedModel([fenced(GIVE_UP), fenced('final_answer(get_product("AB-1")["price_usd"])')])
    result, _ = run(CodeAgent([get_order, get_product], model))
    first = result.memory.action_steps()[0].error
    assert first is not None and first.type == "FinalAnswerRejected"
    assert "you have not called get_product() yet" in first.message and "get_order()" not in first.message
    assert result.output == 4.5
    twice = ScriptedModel([fenced(GIVE_UP), fenced(GIVE_UP)])
    assert CodeAgent([get_order, get_product], twice, max_repeats=None).run("t").startswith("The order")
    every_tool = ScriptedModel([fenced('get_product("AB-1")\n' + GIVE_UP)])  # nothing left to try
    assert CodeAgent([get_order, get_product], every_tool).run("t").startswith("The order")
    last_step = ScriptedModel([fenced(GIVE_UP)])
    assert CodeAgent([get_order, get_product], last_step, max_steps=1).run("t").startswith("The order")


def test_docstring_examples_compare_what_was_printed_as_doctest_does() -> None:
    doc = (
        '    """Greet.\n\n    >>> greet("Ann")\n    Hello, Ann\n'
        '    >>> for n in "ab":\n    ...     greet(n)\n    Hello, a\n    Hello, b\n    """\n'
    )
    loud = f"def greet(name):\n{doc}    print('Hello, ' + name)"
    model = ScriptedModel([fenced(f"{loud}\nfinal_answer(greet)")])
    assert CodeAgent([], model).run("t") == loud  # printed lines match, the None result is not shown
    shy = f"def greet(name):\n{doc}    return None"
    held = ScriptedModel([fenced(f"{shy}\nfinal_answer(greet)"), fenced(f"{loud}\nfinal_answer(greet)")])
    result, _ = run(CodeAgent([], held))
    first = result.memory.action_steps()[0].error
    assert (
        first is not None
        and 'greet("Ann") printed nothing, the docstring expects Hello, Ann' in first.message
    )
    assert "2 of the 2 examples" in first.message and result.output == loud


@pytest.mark.parametrize("executor", EXECUTORS)
def test_an_error_in_a_function_of_an_earlier_step_shows_that_line(executor: str) -> None:
    define = (
        "x = 1\n\n@staticmethod\ndef first(items):\n    head = items[0]\n    items[0] = head\n    return head"
    )
    model = ScriptedModel([fenced(define.replace("@staticmethod\n", "")), fenced("print(first((1, 2)))")])
    result, _ = run(CodeAgent([], model, executor=executor, max_steps=2))
    error = result.memory.action_steps()[1].error
    assert error is not None and "from an earlier step, line 5: items[0] = head)" in error.message
