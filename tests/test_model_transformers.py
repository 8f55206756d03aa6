"""`TransformersModel` on the real transformers + PyTorch code path, with a tiny random Llama and a
locally trained tokenizer (built once for this module by `tiny_llama.build_tiny_llama`).

The model writes gibberish, but greedily and deterministically, and never ends a turn by itself
(see `tiny_llama`), so every answer is exactly `max_new_tokens` long unless a stop sequence ends it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="needs the transformers extra: pip install 'codeloop[transformers]'")
pytest.importorskip("transformers", reason="needs the transformers extra")

from codeloop import CodeAgent, RunState, ToolCallingAgent, tool
from codeloop.errors import ConfigurationError, ModelError
from codeloop.memory import ActionStep
from codeloop.messages import ChatMessage, ImageContent, MessageDelta, Role, ToolCall
from codeloop.models.base import assemble_message
from codeloop.models.transformers import TransformersModel

from tiny_llama import build_tiny_llama

MAX_NEW = 40
MESSAGES = [
    ChatMessage(Role.SYSTEM, "You are a helpful assistant."),
    ChatMessage(Role.USER, "What is the 20th Fibonacci number?"),
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def model(model_dir: Path) -> TransformersModel:
    return TransformersModel(str(model_dir), max_new_tokens=MAX_NEW)


@pytest.fixture(scope="module")
def full(model: TransformersModel) -> ChatMessage:
    """The unconstrained greedy answer to MESSAGES."""
    return model.generate(MESSAGES)


def _prompt_ids(model: TransformersModel, messages: list[dict[str, Any]], **kwargs: Any) -> list[int]:
    """The prompt's tokens, computed by transformers itself (not by the adapter)."""
    encoded = model.tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, **kwargs
    )
    return list(encoded["input_ids"])


def _pick_stop(text: str) -> str:
    """A 3-character piece of `text` whose first occurrence starts past its first third."""
    for start in range(len(text) // 2, len(text) - 3):
        piece = text[start : start + 3]
        if piece.strip() and text.find(piece) > len(text) // 3:
            return piece
    raise AssertionError(f"no usable stop sequence in {text!r}")


# -- generate, stream, usage --------------------------------------------------------------------


def test_generate_returns_text_and_exact_usage(model: TransformersModel, full: ChatMessage) -> None:
    prompt = _prompt_ids(model, [{"role": m.role.value, "content": m.content} for m in MESSAGES])
    generated = full.raw["generated_ids"]

    assert full.role is Role.ASSISTANT and full.content.strip()
    assert full.usage is not None
    assert full.usage.input_tokens == len(prompt)
    assert full.usage.output_tokens == len(generated) == MAX_NEW  # the model never ends on its own
    assert model.tokenizer.decode(generated, skip_special_tokens=True) == full.content
    assert full.finish_reason == "length"
    assert full.tool_calls == () and full.reasoning is None


def test_greedy_is_deterministic_and_overrides_the_sampling_config(
    model: TransformersModel, full: ChatMessage
) -> None:
    assert model.model.generation_config.do_sample is True  # as saved by the model's author
    assert model(MESSAGES).content == full.content


async def test_stream_assembles_to_the_same_message(model: TransformersModel, full: ChatMessage) -> None:
    deltas = [delta async for delta in model.astream(MESSAGES)]

    assert sum(1 for d in deltas if d.content) > 1  # really streamed, not one block
    assert all(d.usage is None for d in deltas[:-1])
    message = assemble_message(deltas)
    assert message.content == full.content
    assert message.usage == full.usage
    assert message.finish_reason == "length"


def test_sync_stream_wrapper(model: TransformersModel, full: ChatMessage) -> None:
    assert assemble_message(list(model.generate_stream(MESSAGES))).content == full.content


# -- stop sequences -----------------------------------------------------------------------------


def test_stop_sequence_truncates_and_stops_generating(model: TransformersModel, full: ChatMessage) -> None:
    stop = _pick_stop(full.content)
    cut = full.content.find(stop)

    stopped = model.generate(MESSAGES, stop=["never-in-this-text", stop])

    assert stopped.content == full.content[:cut]
    assert stop not in stopped.content
    assert stopped.finish_reason == "stop"
    assert stopped.usage is not None and full.usage is not None
    assert stopped.usage.input_tokens == full.usage.input_tokens
    assert stopped.usage.output_tokens < full.usage.output_tokens  # generation ended early...
    generated = stopped.raw["generated_ids"]
    decode = model.tokenizer.decode
    assert stop in decode(generated) and stop not in decode(generated[:-1])  # ...at the stop itself


async def test_stop_sequence_in_a_stream(model: TransformersModel, full: ChatMessage) -> None:
    stop = _pick_stop(full.content)
    unstreamed = await model.agenerate(MESSAGES, stop=[stop])

    deltas = [delta async for delta in model.astream(MESSAGES, stop=[stop])]

    assert all(stop not in d.content for d in deltas)
    message = assemble_message(deltas)
    assert message.content == full.content[: full.content.find(stop)]
    assert message.usage == unstreamed.usage
    assert message.finish_reason == "stop"


# -- prompts ------------------------------------------------------------------------------------

PRICE_SCHEMA = {
    "name": "get_price",
    "description": "Look up the price of an item.",
    "parameters": {"type": "object", "properties": {"item": {"type": "string"}}, "required": ["item"]},
}


def test_tools_and_tool_calls_go_through_the_chat_template(model: TransformersModel) -> None:
    call = ToolCall(id="call_1", name="get_price", arguments={"item": "apple"})
    messages = [
        *MESSAGES,
        ChatMessage(Role.ASSISTANT, "", tool_calls=(call,), reasoning="secret thoughts"),
        ChatMessage(Role.TOOL, "0.5", tool_call_id="call_1", name="get_price"),
    ]

    answer = model.generate(messages, tools=[PRICE_SCHEMA])

    prompt = answer.raw["prompt"]
    assert '"name": "get_price", "description": "Look up the price of an item."' in prompt
    assert '{"name": "get_price", "arguments": {"item": "apple"}}' in prompt
    assert "<|im_start|>tool\n0.5<|im_end|>" in prompt and "secret thoughts" not in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert answer.tool_calls == ()  # the agents parse JSON tool calls from the text
    assert answer.usage is not None
    assert answer.usage.input_tokens == len(model.tokenizer(prompt, add_special_tokens=False)["input_ids"])


def test_apply_chat_template_kwargs_reach_the_template(model_dir: Path) -> None:
    template = "{% for m in messages %}[{{ m.role }}|{{ greeting }}]{{ m.content }}{% endfor %}>"
    template_kwargs = {"chat_template": template, "greeting": "hi"}
    custom = TransformersModel(str(model_dir), max_new_tokens=2, apply_chat_template_kwargs=template_kwargs)

    prompt = custom.generate(MESSAGES[1:]).raw["prompt"]

    assert prompt == "[user|hi]What is the 20th Fibonacci number?>"


async def test_a_failing_generation_is_a_model_error_streamed_or_not(model_dir: Path) -> None:
    broken = TransformersModel(str(model_dir), max_new_tokens=5, no_such_generate_option=1)

    with pytest.raises(ModelError, match=r"generation failed.*no_such_generate_option"):
        await broken.agenerate(MESSAGES)
    with pytest.raises(ModelError, match="generation failed"):
        _ = [delta async for delta in broken.astream(MESSAGES)]  # ends: the stream is not left waiting


def test_images_are_refused_clearly(model: TransformersModel) -> None:
    picture = ChatMessage(Role.USER, "What is this?", images=(ImageContent(data=b"\x89PNG"),))
    with pytest.raises(ConfigurationError, match="text only"):
        model.generate([picture])


# -- cancellation -------------------------------------------------------------------------------


class _TokenCounter:
    """A real transformers logits processor that counts generation steps."""

    def __init__(self) -> None:
        self.steps = 0
        self.started = threading.Event()

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        self.steps += 1
        self.started.set()
        return scores


Counted = tuple[TransformersModel, _TokenCounter]


@pytest.fixture
def counted(model_dir: Path) -> Iterator[Counted]:
    counter = _TokenCounter()
    long_winded = TransformersModel(str(model_dir), max_new_tokens=100_000, logits_processor=[counter])
    yield long_winded, counter


async def _idle(model: TransformersModel) -> None:
    """Wait until no generation is running on `model` (its generation lock is free)."""
    lock = model._generate_lock
    assert await asyncio.to_thread(lock.acquire, True, 120)
    lock.release()


async def test_leaving_a_stream_stops_the_generation(counted: Counted) -> None:
    model, counter = counted
    stream = model.astream(MESSAGES)
    first = await anext(stream)
    await stream.aclose()

    await _idle(model)

    assert isinstance(first, MessageDelta) and first.content
    assert 0 < counter.steps < 1000


async def test_cancelling_generate_stops_the_generation(counted: Counted) -> None:
    model, counter = counted
    task = asyncio.create_task(model.agenerate(MESSAGES))
    assert await asyncio.to_thread(counter.started.wait, 120)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await _idle(model)

    assert 0 < counter.steps < 1000


# -- agents -------------------------------------------------------------------------------------


@tool
def get_price(item: str) -> float:
    """Look up the price of an item in the shop.

    Args:
        item: The item's name.
    """
    return {"apple": 0.5}.get(item, 1.0)


@pytest.mark.parametrize("agent_class", [CodeAgent, ToolCallingAgent])
def test_agents_run_end_to_end(model_dir: Path, agent_class: type[CodeAgent | ToolCallingAgent]) -> None:
    agent_model = TransformersModel(str(model_dir), max_new_tokens=24)
    agent = agent_class([get_price], agent_model, max_steps=2)

    result = agent.run("What do 3 apples cost?", return_full_result=True)

    assert result.state is RunState.MAX_STEPS  # gibberish never reaches final_answer
    steps = [s for s in result.steps if isinstance(s, ActionStep)]
    assert len(steps) == 2
    for step in steps:
        assert step.model_output.strip() and step.error is not None  # the text arrived, did not parse
        assert step.usage is not None and step.usage.input_tokens > 0 and 0 < step.usage.output_tokens <= 24
    assert result.usage.input_tokens == sum(s.usage.input_tokens for s in steps if s.usage)


# -- configuration ------------------------------------------------------------------------------


def test_dtype_and_single_device_need_no_accelerate(model_dir: Path) -> None:
    import torch

    half = TransformersModel(str(model_dir), torch_dtype="bfloat16", device_map="cpu", max_new_tokens=3)

    assert half.model.dtype == torch.bfloat16 and half.model.device.type == "cpu"
    assert half.generate(MESSAGES).usage is not None


def test_missing_model_directory_is_a_configuration_error(tmp_path: Path) -> None:
    missing = TransformersModel(str(tmp_path / "no" / "such" / "model"))
    with pytest.raises(ConfigurationError, match="could not load"):
        missing.generate(MESSAGES)


def test_a_tokenizer_without_chat_template_is_a_configuration_error(model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    plain = tmp_path / "plain"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = None
    tokenizer.save_pretrained(plain)
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        (plain / name).write_bytes((model_dir / name).read_bytes())

    with pytest.raises(ConfigurationError, match="no chat template"):
        TransformersModel(str(plain)).generate(MESSAGES)


_WITHOUT_TRANSFORMERS = """
import sys
sys.modules["transformers"] = None  # as if it were not installed
import codeloop
from codeloop.errors import ConfigurationError, ModelError
try:
    codeloop.TransformersModel("any/model")
except ConfigurationError as err:
    print(err)
"""


def test_missing_transformers_says_how_to_install() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TRANSFORMERS], capture_output=True, text=True, timeout=60, check=True
    )
    assert "TransformersModel needs the transformers package" in completed.stdout
    assert "pip install 'codeloop[transformers]'" in completed.stdout


def test_importing_the_module_does_not_import_torch() -> None:
    code = (
        "import sys, codeloop.models.transformers\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert completed.stdout.split() == ["False", "False"]
