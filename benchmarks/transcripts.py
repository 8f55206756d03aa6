"""Transcripts of failed tasks, from the recording proxy's exchanges: what each model request
added to its conversation (the task, observations, errors) and the model's reply. A system prompt
is written once per side, in `_system_prompts.md` (`_system_prompts-<part>.md` for a later part of a
side's run), and referred to by number."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from .model_proxy import Exchange

__all__ = ["render_transcript", "write_transcripts"]

Message = dict[str, Any]


Failure = tuple[dict[str, Any], dict[str, Any], list[Exchange]]
"""A failed task: the task, its result row, its model exchanges."""


def write_transcripts(folder: Path, failed: dict[str, Failure], part: int | None = None) -> None:
    """One markdown file per failed task in `folder`, emptied first: a re-run replaces it. A
    `part` of a side's run (`--continue-sides`) adds to the folder, its system prompts in their
    own file."""
    if part is None:
        shutil.rmtree(folder, ignore_errors=True)
    if not failed:
        return
    folder.mkdir(parents=True, exist_ok=True)
    prompts: list[str] = []
    name = "_system_prompts.md" if part is None else f"_system_prompts-{part}.md"
    for task_id, (task, row, exchanges) in failed.items():
        (folder / f"{task_id}.md").write_text(render_transcript(task, row, exchanges, prompts, name))
    lines = [f"## System prompt {i + 1}\n\n````\n{p}\n````\n" for i, p in enumerate(prompts)]
    (folder / name).write_text("\n".join(lines))


def render_transcript(task: dict[str, Any], row: dict[str, Any], exchanges: list[Exchange],
                      prompts: list[str], prompts_file: str = "_system_prompts.md") -> str:  # fmt: skip
    """The transcript of one run; system prompts are added to `prompts` and cited by number."""
    lines = [
        f"# {task['id']}",
        "",
        f"- answer: `{_one_line(row['answer'])}`",
        f"- expected: `{task['answer']}`" if "answer" in task else f"- check: {row.get('detail', '')}",
        f"- state: {row['state']}; steps: {row['steps']}; model requests: {len(exchanges)}; "
        f"input tokens: {row.get('input_tokens', 0):,}; wall: {row['wall_s']:.1f} s",
    ]
    if row.get("error"):
        lines.append(f"- error: {row['error']}")
    seen: list[list[Message]] = []
    for number, exchange in enumerate(exchanges, 1):
        lines += _exchange(number, exchange, seen, prompts, prompts_file)
    return "\n".join(lines) + "\n"


def _exchange(
    number: int, exchange: Exchange, seen: list[list[Message]], prompts: list[str], prompts_file: str
) -> list[str]:
    messages = [{"role": m.get("role", "?"), "text": _text(m)} for m in exchange.messages]
    earlier = max((s for s in seen if messages[: len(s)] == s), key=len, default=[])
    seen.append(messages)
    cached = f", {exchange.cached_tokens:,} cached" if exchange.cached_tokens else ""
    lines = ["", f"## Request {number}: {exchange.input_tokens:,} input tokens{cached}, "
             f"{exchange.prompt_s:.1f} s prompt + {exchange.decode_s:.1f} s decoding", ""]  # fmt: skip
    if earlier:
        lines += [f"*(continues an earlier conversation: {len(earlier)} messages not repeated)*", ""]
    for message in messages[len(earlier) :]:
        lines += [f"**{message['role']}**", "", _body(message, prompts, prompts_file), ""]
    if exchange.error:
        lines += ["**error**", "", exchange.error]
    else:
        lines += [f"**reply** ({exchange.output_tokens} tokens)", "", _fenced(exchange.reply)]
    return lines


def _body(message: Message, prompts: list[str], prompts_file: str) -> str:
    if message["role"] != "system":
        return _fenced(message["text"])
    if message["text"] not in prompts:
        prompts.append(message["text"])
    number = prompts.index(message["text"]) + 1
    return f"*(system prompt {number} in `{prompts_file}`, {len(message['text']):,} characters)*"


def _text(message: Message) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if content is None and message.get("tool_calls"):
        return json.dumps(message["tool_calls"])
    return str(content or "")


def _fenced(text: str) -> str:
    return f"````\n{text.rstrip()}\n````"


def _one_line(value: Any, limit: int = 300) -> str:
    text = str(value).replace("\n", "\\n").replace("`", "'")
    return text if len(text) <= limit else text[: limit - 3] + "..."
