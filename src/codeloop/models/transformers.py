"""Local models run in-process by Hugging Face transformers (PyTorch): no server, no API key.

    model = TransformersModel("path/to/Qwen2.5-Coder-1.5B-Instruct", torch_dtype="bfloat16")
    print(model.generate([ChatMessage(Role.USER, "Hi")]).content)

`model_id` is a local directory or a hub id (a hub id needs network access the first time, and
transformers' own cache after that). The model and tokenizer load on first use, in a worker
thread, so an event loop is never blocked; `load()` loads them now.

The prompt is the tokenizer's chat template (`apply_chat_template`, with `tools=` when tools are
given and `add_generation_prompt=True`). Generation runs in a worker thread; streaming uses
transformers' `TextIteratorStreamer` fed by a generation thread. Calls on one model run one at a
time (a lock), since two generations at once on one CPU or GPU are no faster. Stop sequences end
generation as soon as one appears (a stopping criterion) and are cut client-side, so the text
never contains one. Usage counts are exact: the prompt's tokens and the generated tokens. A
leading `<think>...</think>` block goes to `reasoning`, as with the other adapters.

Tool calls are not parsed here: `tool_calls` stays empty and the `ToolCallingAgent` reads the
JSON tool call from the text. Images are not supported (text-only models; a `ConfigurationError`
says so): serve a vision model through an OpenAI-compatible server (vLLM, llama.cpp) instead.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..errors import ConfigurationError, ModelError
from ..messages import ChatMessage, MessageDelta, Role, ToolCall, Usage
from ._text import TextFilter
from .base import Model, ToolSchema
from .openai import to_openai_tools

__all__ = ["TransformersModel"]

_EXTRA = "pip install 'codeloop[transformers]'"
_DISPATCH_MAPS = frozenset({"auto", "balanced", "balanced_low_0", "sequential"})
_MODEL_INPUTS = ("input_ids", "attention_mask")  # not token_type_ids: causal LMs refuse it
_STOP_MARGIN = 4  # extra tokens decoded when looking for a stop sequence (special tokens decode to "")


class TransformersModel(Model):
    """A causal language model run by transformers in this process.

    `device_map`: None picks CUDA when available, else CPU; a device ("cpu", "cuda:1", "mps") moves
    the model there; "auto", "balanced"... or a dict dispatches it with `accelerate`.
    `torch_dtype`: "auto", "bfloat16", "float16", "float32" or a `torch.dtype` (None: the default).
    `max_new_tokens` (alias `max_tokens`) bounds each answer; `temperature=0` is greedy decoding.
    `model_kwargs` go to `from_pretrained` (e.g. `{"attn_implementation": "sdpa"}`);
    `apply_chat_template_kwargs` to every `apply_chat_template` call (e.g. `{"enable_thinking":
    False}`); any other keyword argument (top_p, repetition_penalty...) to every `generate` call.
    """

    def __init__(
        self,
        model_id: str,
        *,
        device_map: Any = None,
        torch_dtype: Any = None,
        trust_remote_code: bool = False,
        max_new_tokens: int = 1024,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        model_kwargs: Mapping[str, Any] | None = None,
        apply_chat_template_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        _check_installed()
        self.model_id = model_id
        self.device_map = device_map
        self.torch_dtype = torch_dtype
        self.trust_remote_code = trust_remote_code
        self.max_new_tokens = max_tokens if max_tokens is not None else max_new_tokens
        if self.max_new_tokens < 1:
            raise ConfigurationError("TransformersModel: max_new_tokens must be at least 1.")
        self.temperature = temperature
        self.model_kwargs = dict(model_kwargs or {})
        self.apply_chat_template_kwargs = dict(apply_chat_template_kwargs or {})
        self.generate_kwargs = kwargs
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()
        self._loaded: _Loaded | None = None

    def __repr__(self) -> str:
        state = "loaded" if self._loaded else "not loaded"
        return f"{type(self).__name__}(model_id={self.model_id!r}, {state})"

    @property
    def model(self) -> Any:
        """The transformers model (loads it on first access)."""
        return self._ensure_loaded().model

    @property
    def tokenizer(self) -> Any:
        """The tokenizer (loads it on first access)."""
        return self._ensure_loaded().tokenizer

    def load(self) -> TransformersModel:
        """Load the model and tokenizer now rather than on first use (idempotent, thread-safe)."""
        self._ensure_loaded()
        return self

    def _ensure_loaded(self) -> _Loaded:
        with self._load_lock:
            if self._loaded is None:
                self._loaded = _load(self)
            return self._loaded

    # -- requests -------------------------------------------------------------------------
    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
    ) -> ChatMessage:
        job = await self._job(messages, stop, tools)
        try:
            generated = await asyncio.to_thread(self._run, job, None)
        finally:
            job.stopper.cancel()  # a cancelled call stops generating at the next token
        text = TextFilter(job.stops)
        content, reasoning = text.feed(job.decode(generated))
        tail_content, tail_reasoning = text.flush()
        return ChatMessage(
            role=Role.ASSISTANT,
            content=content + tail_content,
            reasoning=(reasoning + tail_reasoning).strip() or None,
            usage=job.usage(generated),
            finish_reason=job.finish_reason(generated, text.stopped),
            raw={"prompt": job.prompt, "generated_ids": generated},
        )

    async def astream(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
    ) -> AsyncIterator[MessageDelta]:
        """Stream deltas; the last one carries usage and the finish reason. Leaving the stream
        early stops the generation at the next token."""
        job = await self._job(messages, stop, tools)
        streamer = job.loaded.transformers.TextIteratorStreamer(
            job.loaded.tokenizer, skip_prompt=True, skip_special_tokens=True
        )
        worker = _Worker(lambda: self._run(job, streamer), on_error=streamer.end)
        text = TextFilter(job.stops)
        try:
            worker.start()
            while (chunk := await asyncio.to_thread(next, streamer, None)) is not None:
                delta = text.apply(MessageDelta(content=chunk))
                if delta is not None:
                    yield delta
                if text.stopped:
                    break
        finally:
            job.stopper.cancel()
        generated = await worker.result()
        tail = text.finish()
        if tail is not None:
            yield tail
        finish = job.finish_reason(generated, text.stopped)
        yield MessageDelta(usage=job.usage(generated), finish_reason=finish)

    # -- plumbing -------------------------------------------------------------------------
    async def _job(
        self, messages: Sequence[ChatMessage], stop: Sequence[str] | None, tools: Sequence[ToolSchema] | None
    ) -> _Job:
        """Load the model if needed, then render and tokenize the prompt, off the event loop."""
        _refuse_images(messages, self.model_id)
        loaded = self._loaded
        if loaded is None:
            loaded = await asyncio.to_thread(self._ensure_loaded)  # loading takes seconds
        return await asyncio.to_thread(self._prepare, loaded, messages, stop, tools)

    def _prepare(
        self,
        loaded: _Loaded,
        messages: Sequence[ChatMessage],
        stop: Sequence[str] | None,
        tools: Sequence[ToolSchema] | None,
    ) -> _Job:
        prompt = _render(loaded, messages, tools, self.apply_chat_template_kwargs, self.model_id)
        encoded = loaded.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        device = loaded.model.device
        inputs = {name: encoded[name].to(device) for name in _MODEL_INPUTS if name in encoded}
        prompt_tokens = int(inputs["input_ids"].shape[1])
        stops = [s for s in stop or () if s]
        stopper = _Stopper(loaded, prompt_tokens, stops)
        return _Job(loaded, prompt, inputs, prompt_tokens, stops, stopper, self.max_new_tokens)

    def _run(self, job: _Job, streamer: Any) -> list[int]:
        """Generate (in a worker thread); returns the generated token ids."""
        loaded = job.loaded
        criteria = [*self.generate_kwargs.get("stopping_criteria", ()), job.stopper]  # keep the user's
        options: dict[str, Any] = {
            "max_new_tokens": job.max_new_tokens,
            **_sampling(self.temperature),
            "pad_token_id": _pad_token_id(loaded.tokenizer),
            **self.generate_kwargs,
            "stopping_criteria": loaded.transformers.StoppingCriteriaList(criteria),
            "streamer": streamer,
        }
        with self._generate_lock:
            if job.stopper.cancelled:  # given up while waiting for the lock
                if streamer is not None:
                    streamer.end()  # release a reader still waiting for text
                return []
            try:
                output = loaded.model.generate(**job.encoded, **options)
            except Exception as err:
                raise ModelError(f"TransformersModel {self.model_id!r}: generation failed: {err}") from err
        return [int(t) for t in output[0, job.prompt_tokens :].tolist()]


# -- loading -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Loaded:
    transformers: ModuleType
    torch: ModuleType
    model: Any
    tokenizer: Any


def _check_installed() -> None:
    for module in ("torch", "transformers"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ValueError:  # `sys.modules[module] = None` blocks the import: treat as missing
            found = False
        if not found:
            raise ConfigurationError(f"TransformersModel needs the {module} package: {_EXTRA}")


def _import() -> tuple[ModuleType, ModuleType]:
    try:
        import torch
        import transformers
    except ImportError as err:
        raise ConfigurationError(f"TransformersModel needs torch and transformers: {_EXTRA} ({err})") from err
    return transformers, torch


def _load(owner: TransformersModel) -> _Loaded:
    transformers, torch = _import()
    common = {"trust_remote_code": owner.trust_remote_code}
    dispatch, device = _placement(owner.device_map, torch)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(owner.model_id, **common)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            owner.model_id,
            **common,
            **_dtype_option(transformers, owner.torch_dtype),
            **dispatch,
            **owner.model_kwargs,
        )
    except (OSError, ValueError, ImportError) as err:
        raise ConfigurationError(
            f"TransformersModel could not load {owner.model_id!r}: {err} "
            "(offline, model_id must be a local directory or a model in the transformers cache)"
        ) from err
    if device is not None:
        model.to(device)
    if tokenizer.chat_template is None and "chat_template" not in owner.apply_chat_template_kwargs:
        raise ConfigurationError(
            f"The tokenizer of {owner.model_id!r} has no chat template: use an instruct/chat model, or "
            "pass apply_chat_template_kwargs={'chat_template': '...'}"
        )
    return _Loaded(transformers, torch, model.eval(), tokenizer)


def _placement(device_map: Any, torch: ModuleType) -> tuple[dict[str, Any], Any]:
    """(`from_pretrained` options, device to move the model to). A single device needs no
    `accelerate`; a dispatch map ("auto", a dict...) is handed to transformers, which needs it."""
    if device_map is None:
        return {}, "cuda" if torch.cuda.is_available() else None
    if isinstance(device_map, Mapping) or device_map in _DISPATCH_MAPS:
        return {"device_map": device_map}, None
    return {}, device_map


def _dtype_option(transformers: ModuleType, dtype: Any) -> dict[str, Any]:
    """transformers renamed `torch_dtype` to `dtype` in 4.56 (the old name is deprecated)."""
    if dtype is None:
        return {}
    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": dtype}


# -- prompts ---------------------------------------------------------------------------------------
def _refuse_images(messages: Sequence[ChatMessage], model_id: str) -> None:
    if any(message.images for message in messages):
        raise ConfigurationError(
            f"TransformersModel({model_id!r}) takes text only; images need a vision model served "
            "through an OpenAI-compatible server (e.g. vLLM or llama.cpp with OpenAIModel)."
        )


def _render(
    loaded: _Loaded,
    messages: Sequence[ChatMessage],
    tools: Sequence[ToolSchema] | None,
    template_kwargs: Mapping[str, Any],
    model_id: str,
) -> str:
    """The prompt text, from the tokenizer's chat template."""
    try:
        prompt = loaded.tokenizer.apply_chat_template(
            [_template_message(m) for m in messages],
            tools=to_openai_tools(tools) if tools else None,
            add_generation_prompt=True,
            tokenize=False,
            **template_kwargs,
        )
    except Exception as err:  # jinja's TemplateError, or a template's raise_exception(...)
        raise ModelError(f"The chat template of {model_id!r} failed: {type(err).__name__}: {err}") from err
    return str(prompt)


def _template_message(message: ChatMessage) -> dict[str, Any]:
    """A message as chat templates expect it (reasoning is never sent back)."""
    item: dict[str, Any] = {"role": message.role.value, "content": message.content}
    if message.name:
        item["name"] = message.name
    if message.tool_call_id:
        item["tool_call_id"] = message.tool_call_id
    if message.tool_calls:
        item["tool_calls"] = [_template_call(call) for call in message.tool_calls]
    return item


def _template_call(call: ToolCall) -> dict[str, Any]:
    function = {"name": call.name, "arguments": call.arguments}  # a dict, as templates expect
    return {"id": call.id, "type": "function", "function": function}


# -- generation ------------------------------------------------------------------------------------
def _sampling(temperature: float) -> dict[str, Any]:
    if temperature <= 0:
        return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    return {"do_sample": True, "temperature": temperature}


def _pad_token_id(tokenizer: Any) -> int | None:
    pad = tokenizer.pad_token_id
    return int(pad) if pad is not None else tokenizer.eos_token_id


class _Stopper:
    """A transformers stopping criterion: true once a stop sequence appears in the generated text
    (only the last few tokens are decoded each step), or once the caller has given up."""

    def __init__(self, loaded: _Loaded, prompt_tokens: int, stops: Sequence[str]) -> None:
        self.torch, self.tokenizer = loaded.torch, loaded.tokenizer
        self.prompt_tokens, self.stops = prompt_tokens, list(stops)
        self.window = max((len(s) for s in stops), default=0) + _STOP_MARGIN
        self.cancelled = False
        self.hit = False

    def cancel(self) -> None:
        self.cancelled = True

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        if self.stops and not self.hit:
            start = max(self.prompt_tokens, int(input_ids.shape[1]) - self.window)
            tail = self.tokenizer.decode(input_ids[0, start:], skip_special_tokens=True)
            self.hit = any(stop in tail for stop in self.stops)
        done = self.hit or self.cancelled
        return self.torch.full((input_ids.shape[0],), done, dtype=self.torch.bool, device=input_ids.device)


@dataclass
class _Job:
    """One request: the rendered prompt, its tokens, and how to report the answer."""

    loaded: _Loaded
    prompt: str
    encoded: dict[str, Any]
    prompt_tokens: int
    stops: list[str]
    stopper: _Stopper
    max_new_tokens: int

    def decode(self, generated: list[int]) -> str:
        return str(self.loaded.tokenizer.decode(generated, skip_special_tokens=True))

    def usage(self, generated: list[int]) -> Usage:
        return Usage(input_tokens=self.prompt_tokens, output_tokens=len(generated))

    def finish_reason(self, generated: list[int], stopped: bool) -> str:
        if stopped or self.stopper.hit:
            return "stop"
        return "length" if len(generated) >= self.max_new_tokens else "stop"


class _Worker:
    """Runs `target` in a daemon thread; `result()` awaits it without blocking the event loop.
    `on_error` runs in the thread when `target` raises (it ends the streamer, so no reader
    waits for text that will never come)."""

    def __init__(self, target: Callable[[], list[int]], *, on_error: Callable[[], object]) -> None:
        self._target, self._on_error = target, on_error
        self._done = threading.Event()
        self._value: list[int] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="codeloop-transformers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        try:
            self._value = self._target()
        except BaseException as err:  # re-raised in the caller by result()
            self._error = err
            self._on_error()
        finally:
            self._done.set()

    async def result(self) -> list[int]:
        if not self._done.is_set():
            await asyncio.to_thread(self._done.wait)
        if self._error is not None:
            raise self._error
        return self._value
