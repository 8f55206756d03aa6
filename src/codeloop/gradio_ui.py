"""A chat web page for an agent, with Gradio: smolagents' `GradioUI`, under the same names.

    from codeloop import CodeAgent, GradioUI
    GradioUI(agent).launch()                      # http://127.0.0.1:7860

Each message runs the agent on it and shows the run as it goes, one subscriber of its events:
per step, a "Step n" box (the model's text as it streams, then its thought) holding the code or
tool calls, the observations and the errors; a sub-agent's run in a box of its own, inside the
step that called it; then the final answer (or why there is none) and the run's summary (steps,
tokens, cost when the model's price is known, time). Written for Gradio 5 and 6 (tested with
6); Gradio itself is imported only here (`pip install "codeloop[gradio]"`), never by `import codeloop`.

As in smolagents, the agent remembers the conversation from one message to the next unless
`reset_agent_memory=True` (clearing the chat makes it forget), and with `file_upload_folder`
the page takes files: each is copied there and its path given to the agent with the message.
Unlike smolagents, `launch()` does not share the page on a public gradio.live link unless
asked (`share=True`).
"""

from __future__ import annotations

import copy
import inspect
import re
import shutil
import uuid
from collections.abc import Iterator
from functools import singledispatchmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .events import (
    ActionOutput,
    CodeAction,
    Event,
    FinalAnswer,
    ModelCallStarted,
    ModelDelta,
    ModelOutput,
    Observation,
    PlanReady,
    RunFinished,
    RunStarted,
    StepErrored,
    StepFinished,
    ToolCallRequested,
)
from .render import reply_thought, run_cost, run_summary

if TYPE_CHECKING:
    from .agents import MultiStepAgent

__all__ = ["GradioUI"]

INSTALL_HINT = 'GradioUI needs Gradio: pip install "codeloop[gradio]"'
Message = dict[str, Any]
"""A chat message as Gradio takes it: `{"role": "assistant", "content": ..., "metadata": {...}}`."""


def _gradio() -> Any:
    try:
        import gradio
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return gradio


class GradioUI:
    """A chat page for `agent`. `file_upload_folder`: where uploaded files go (None: no
    uploads); `reset_agent_memory`: each message starts a new conversation."""

    def __init__(
        self,
        agent: MultiStepAgent,
        file_upload_folder: str | Path | None = None,
        reset_agent_memory: bool = False,
    ) -> None:
        _gradio()  # a missing Gradio is said now, not when the page is served
        self.agent = agent
        self.reset_agent_memory = reset_agent_memory
        self.file_upload_folder = Path(file_upload_folder) if file_upload_folder is not None else None
        if self.file_upload_folder is not None:
            self.file_upload_folder.mkdir(parents=True, exist_ok=True)
        self.name = agent.name or "Agent"
        self.description = agent.description
        self.demo: Any = None
        """The Gradio app `launch()` serves (a `gr.ChatInterface`)."""

    def interact_with_agent(
        self, message: str | dict[str, Any], history: list[Any]
    ) -> Iterator[list[Message]]:
        """Run the agent on `message` (text, or Gradio's `{"text": ..., "files": [...]}`); yield
        the reply's messages after each change, as the run goes."""
        gr = _gradio()
        task = self._task(message)
        view = _ChatView()
        try:
            for event in self.agent.stream(task, reset=self.reset_agent_memory):
                if view.add(event):
                    yield copy.deepcopy(view.messages)  # a snapshot: the view goes on changing
        except Exception as exc:  # the run could not start or go on: say it in the page
            raise gr.Error(f"{type(exc).__name__}: {exc}") from exc

    def create_app(self) -> Any:
        """The Gradio app: a chat whose replies are the agent's runs."""
        gr = _gradio()
        uploads = self.file_upload_folder is not None
        description = self.description or "An agent whose actions are code, run by codeloop."
        demo = gr.ChatInterface(
            self.interact_with_agent,
            multimodal=uploads,
            title=self.name.replace("_", " "),
            description=description,
            **_supported(gr.ChatInterface, type="messages", api_name="chat", fill_height=True),
        )
        if not self.reset_agent_memory and hasattr(demo.chatbot, "clear"):
            with demo:  # clearing the chat starts a new conversation for the agent too
                demo.chatbot.clear(self._forget)
        return demo

    def launch(self, share: bool = False, **kwargs: Any) -> Any:
        """Serve the page (Gradio's `launch`, with its arguments: `server_name`, `server_port`,
        `prevent_thread_lock`...); blocks until it is stopped unless `prevent_thread_lock=True`."""
        self.demo = self.create_app()
        return self.demo.launch(share=share, **kwargs)

    def close(self) -> None:
        """Stop serving the page."""
        if self.demo is not None:
            self.demo.close()

    def _forget(self) -> None:
        self.agent.memory.reset()

    def _task(self, message: str | dict[str, Any]) -> str:
        if isinstance(message, str):
            return message
        text, files = str(message.get("text") or ""), message.get("files") or []
        if not files or self.file_upload_folder is None:
            return text
        kept = [str(self._keep(_file_path(f))) for f in files]
        return f"{text}\nYou have been provided with these files, which might be helpful or not: {kept}"

    def _keep(self, upload: str) -> Path:
        """Copy an uploaded file into `file_upload_folder`, under a name safe for any system."""
        assert self.file_upload_folder is not None
        name = re.sub(r"[^\w\-.]", "_", Path(upload).name).lstrip(".") or "upload"
        target = self.file_upload_folder / name
        shutil.copy(upload, target)
        return target


def _file_path(item: Any) -> str:
    """An uploaded file's path, however this Gradio version gives it (a path or a dict)."""
    if isinstance(item, dict):
        return str(item.get("path") or item.get("name"))
    return str(getattr(item, "path", None) or getattr(item, "name", None) or item)


def _supported(target: Any, **options: Any) -> dict[str, Any]:
    """The `options` that `target`'s constructor takes (Gradio 5 wants `type="messages"`, which
    Gradio 6, where messages are the only type, no longer takes)."""
    parameters = inspect.signature(target).parameters
    return {name: value for name, value in options.items() if name in parameters}


class _ChatView:
    """A run's events as chat messages: `add(event)` updates `messages`, True if they changed."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._prefix = uuid.uuid4().hex[:8]  # ids unique across the chat's replies
        self._steps: dict[tuple[str, int, int], Message] = {}
        self._boxes: dict[int, Message] = {}  # depth -> the running sub-agent's box
        self._current: dict[int, Message] = {}  # depth -> its latest step box
        self._text: dict[tuple[str, int], str] = {}  # (agent, depth) -> model text so far
        self._model_ids: dict[tuple[str, int], str] = {}
        self._planning: set[tuple[str, int]] = set()

    def add(self, event: Event) -> bool:
        return bool(self._add(event))

    @singledispatchmethod
    def _add(self, event: Event) -> bool:
        """Events without a view change nothing."""
        return False

    @_add.register
    def _(self, event: RunStarted) -> bool:
        for key in [k for k in self._steps if k[:2] == (event.agent, event.depth)]:
            del self._steps[key]  # a sub-agent called again: its steps go in its new box
        if event.depth == 0:
            return False
        title = f"🤖 {event.agent}"
        box = self._append(
            _clip(event.task, 500), title, parent=self._current.get(event.depth - 1), pending=True
        )
        self._boxes[event.depth] = box
        return True

    @_add.register
    def _(self, event: ModelCallStarted) -> bool:
        key = (event.agent, event.depth)
        self._model_ids[key] = event.model_id
        self._text[key] = ""
        (self._planning.add if event.purpose != "action" else self._planning.discard)(key)
        return False

    @_add.register
    def _(self, event: ModelDelta) -> bool:
        key = (event.agent, event.depth)
        if not event.delta.content or key in self._planning or not event.step:
            return False
        self._text[key] = self._text.get(key, "") + event.delta.content
        self._step(event)["content"] = _fenced(self._text[key])  # the raw text, as it comes
        return True

    @_add.register
    def _(self, event: ModelOutput) -> bool:
        self._step(event)["content"] = reply_thought(event.message.content)
        return True

    @_add.register
    def _(self, event: PlanReady) -> bool:
        self._append(event.plan, "🧭 Plan", parent=self._boxes.get(event.depth))
        return True

    @_add.register
    def _(self, event: CodeAction) -> bool:
        self._append(_fenced(event.code, "python"), "🛠️ Code", parent=self._step(event))
        return True

    @_add.register
    def _(self, event: ToolCallRequested) -> bool:
        arguments = _fenced(str(event.call.arguments))
        self._append(arguments, f"🛠️ Tool call: {event.call.name}", parent=self._step(event))
        return True

    @_add.register
    def _(self, event: Observation) -> bool:
        if event.is_error:  # a failed tool call: its StepErrored shows it
            return False
        self._append(_fenced(_clip(event.text, 5000)), "📝 Observation", parent=self._step(event))
        return True

    @_add.register
    def _(self, event: ActionOutput) -> bool:
        self._append(_fenced(_clip(repr(event.output), 2000)), "📤 Output", parent=self._step(event))
        return True

    @_add.register
    def _(self, event: StepErrored) -> bool:
        self._append(_fenced(_clip(event.error.message, 5000)), "💥 Error", parent=self._step(event))
        return True

    @_add.register
    def _(self, event: StepFinished) -> bool:
        box = self._steps.get((event.agent, event.depth, event.step))
        if box is None:
            return False
        _finished(box)
        timing = getattr(event.memory_step, "timing", None)
        if timing is not None and timing.duration is not None:
            box["metadata"]["duration"] = round(timing.duration, 2)
        return True

    @_add.register
    def _(self, event: FinalAnswer) -> bool:
        if event.depth == 0:
            self._append(f"**Final answer:** {event.output}")
        else:
            self._append(
                _fenced(_clip(str(event.output), 5000)), "✅ Answer", parent=self._boxes.get(event.depth)
            )
        return True

    @_add.register
    def _(self, event: RunFinished) -> bool:
        result = event.result
        self._settle(event)
        model_id = self._model_ids.get((event.agent, event.depth))
        summary = run_summary(result, run_cost(result, model_id) if model_id else None)
        if event.depth > 0:
            box = self._boxes.pop(event.depth, None)
            if box is not None:
                _finished(box)
                box["metadata"]["log"] = f"{result.state.value} · {summary}"
            return box is not None
        if not result.succeeded:
            self._append(f"**No answer** ({result.state.value}): {result.error}")
        self._append(f"*{result.state.value} · {summary}*")
        return True

    def _settle(self, event: Event) -> None:
        """Mark the run's step boxes done (a step cut short by the run's end had no StepFinished)."""
        for (agent, depth, _), box in self._steps.items():
            if (agent, depth) == (event.agent, event.depth):
                _finished(box)

    def _step(self, event: Event) -> Message:
        """The box of the event's step, opened by its first event."""
        key = (event.agent, event.depth, event.step)
        if key not in self._steps:
            parent = self._boxes.get(event.depth) if event.depth else None
            self._steps[key] = self._append("", f"Step {event.step}", parent=parent, pending=True)
            self._current[event.depth] = self._steps[key]
        return self._steps[key]

    def _append(
        self, content: str, title: str | None = None, *, parent: Message | None = None, pending: bool = False
    ) -> Message:
        message: Message = {"role": "assistant", "content": content, "metadata": {}}
        if title is not None:
            message["metadata"] = {"title": title, "id": f"{self._prefix}-{len(self.messages)}"}
            if pending:
                message["metadata"]["status"] = "pending"  # open, with a spinner
        if parent is not None:
            message["metadata"]["parent_id"] = parent["metadata"]["id"]
        self.messages.append(message)
        return message


def _finished(box: Message) -> None:
    """The box's work is over: no spinner. (Gradio shows a box without a status open, and
    closes a "done" one: the steps stay in sight.)"""
    box["metadata"].pop("status", None)


def _fenced(text: str, language: str = "") -> str:
    """`text` as a Markdown code block, whatever backticks it holds."""
    text = text.rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" … [{len(text) - limit} more chars]"
