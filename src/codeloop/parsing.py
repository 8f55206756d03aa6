"""Turning model text into actions: code blocks for the CodeAgent, JSON tool calls for models
without native tool calling. Failures raise `AgentParsingError` with a short instruction the
model can follow."""

from __future__ import annotations

import ast
import json
import re
import textwrap
from typing import Any

from .errors import AgentParsingError
from .messages import ToolCall

__all__ = [
    "CODE_FORMAT_HINT",
    "EMPTY_REPLY_HINT",
    "answer_literal",
    "code_end",
    "extract_code",
    "no_code_hint",
    "parse_tool_calls_from_text",
    "plain_answer",
]

_PYTHON_TAGS = {"", "python", "py", "python3", "py3", "ipython", "pycon"}

# An opening fence at the start of a line: ``` or ~~~, an optional language tag, end of line.
_FENCE_OPEN = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)[^\n]*\n", re.MULTILINE)
_CODE_TAG = re.compile(r"<code>\s*\n?(?P<body>.*?)(?:</code>|\Z)", re.DOTALL)

CODE_FORMAT_HINT = (
    "Your reply had no code block, so nothing ran. Write the code of your next step in a block "
    "that starts with a ```python line and ends with a ``` line. When you have the answer, "
    "call final_answer(answer) in the code."
)
EMPTY_REPLY_HINT = "Your reply was empty. " + CODE_FORMAT_HINT.split(". ", 1)[1]

_MAX_ANSWER_CHARS = 80
_ANSWER_PREFIX = re.compile(r"^(?:the\s+)?(?:final\s+)?answer(?:\s+is)?\s*[:=]?\s*", re.IGNORECASE)
_NOT_AN_ANSWER = re.compile(
    r"^(?:thoughts?|plan|steps?|let(?:'s)?|i|i'?ll|i'?m|i'?ve|we|we'?ll|now|first|next|then|okay|ok|"
    r"sure|here|to|this|that|it)\b|```|final_answer|print\(|\bdef |\bimport |[=:?]$| = ",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?")


def extract_code(text: str) -> str:
    """Return the Python code in a model reply.

    Accepts ```python / ```py / bare fences, <code> tags, an unclosed final block, and several
    blocks (joined in order). Blocks tagged with another language (json, text...) are ignored.
    """
    blocks = _fenced_blocks(text) or _tagged_blocks(text)
    if not blocks and _looks_like_bare_code(text):
        blocks = [text]
    code = "\n\n".join(textwrap.dedent(b).strip("\n") for b in blocks if b.strip())
    if not code.strip():
        raise AgentParsingError(no_code_hint(text))
    return code


def no_code_hint(text: str) -> str:
    """What to tell a model whose reply had no code: that it was empty, how to give a plain
    answer it wrote as text, or where the code goes."""
    if not text.strip():
        return EMPTY_REPLY_HINT
    answer = plain_answer(text)
    if answer is None:
        return CODE_FORMAT_HINT
    return (
        f"Your reply had no code block. If {json.dumps(answer, ensure_ascii=False)} is your answer, "
        f"reply with:\n```python\nfinal_answer({answer_literal(answer)})\n```\n"
        "Otherwise write the code of your next step in a ```python block."
    )


def plain_answer(text: str) -> str | None:
    """The answer in a reply that has no code but reads like one: a single short line that is
    neither a thought ("I will...", "Let me...", ending in ":") nor code. A leading "Answer:" or
    "The final answer is", surrounding quotes and a final full stop are dropped. None otherwise."""
    line = text.strip()
    if not line or "\n" in line or len(line) > _MAX_ANSWER_CHARS or _NOT_AN_ANSWER.search(line):
        return None
    line = _ANSWER_PREFIX.sub("", line.strip("*_ ")).strip("*_`'\" ")
    line = line.removesuffix(".") if line.count(".") == 1 and not _NUMBER.fullmatch(line) else line
    return line or None


def answer_literal(answer: str) -> str:
    """`answer` as Python source: a number as itself, anything else as a string literal."""
    return answer if _NUMBER.fullmatch(answer) else json.dumps(answer, ensure_ascii=False)


def code_end(text: str) -> int | None:
    """Where the first complete Python code block of a reply ends (after its closing fence or
    </code> tag), or None while there is none. What follows is not run."""
    pos = 0
    while match := _FENCE_OPEN.search(text, pos):
        end = _closing_fence(match["fence"]).search(text, match.end())
        if end is None:
            return None
        if match["lang"].lower() in _PYTHON_TAGS and text[match.end() : end.start()].strip():
            return end.end()
        pos = end.end()
    tag = re.search(r"</code>", text)
    return tag.end() if tag and "```" not in text[: tag.start()] else None


def _fenced_blocks(text: str) -> list[str]:
    blocks: list[str] = []
    pos = 0
    while match := _FENCE_OPEN.search(text, pos):
        lang = match["lang"].lower()
        end = _closing_fence(match["fence"]).search(text, match.end())
        body = text[match.end() : end.start() if end else len(text)]
        if lang in _PYTHON_TAGS:
            blocks.append(body)
        pos = end.end() if end else len(text)
    return blocks


def _closing_fence(fence: str) -> re.Pattern[str]:
    return re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE)


def _tagged_blocks(text: str) -> list[str]:
    return [m["body"] for m in _CODE_TAG.finditer(text)]


def _looks_like_bare_code(text: str) -> bool:
    """A reply with no fences that is valid Python and calls something (not plain prose)."""
    try:
        tree = ast.parse(textwrap.dedent(text))
    except SyntaxError:
        return False
    return any(isinstance(node, ast.Call) for node in ast.walk(tree))


JSON_FORMAT_HINT = (
    "Your reply had no tool call. Call a tool, or reply with exactly one JSON object like\n"
    '{"name": "final_answer", "arguments": {"answer": "..."}}'
)


def parse_tool_calls_from_text(text: str) -> list[ToolCall]:
    """Find tool calls written as JSON in text, for models without native tool calling.

    Tolerates code fences and prose around the JSON. Accepts {"name", "arguments"} and the
    smolagents-style {"action", "action_input"}. A tool's definition echoed from the prompt
    ({"name", "description", "parameters": {JSON schema}}) is not a call, nor is anything in it.
    """
    decoder = json.JSONDecoder()
    calls: list[ToolCall] = []
    pos = text.find("{")
    while pos != -1:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            pos = text.find("{", pos + 1)
            continue
        call = None if _is_tool_definition(value) else _as_tool_call(value, len(calls))
        if call is not None:
            calls.append(call)
        whole = call is not None or _is_tool_definition(value)  # else look inside the object
        pos = text.find("{", end if whole else pos + 1)
    if not calls:
        raise AgentParsingError(JSON_FORMAT_HINT)
    return calls


def _is_tool_definition(value: Any) -> bool:
    """A tool schema, bare or wrapped as {"type": "function", "function": {...}}: small models
    copy the prompt's tool list into their reply."""
    if not isinstance(value, dict):
        return False
    if value.get("type") == "function" and isinstance(value.get("function"), dict):
        return _is_tool_definition(value["function"])
    parameters = value.get("parameters")
    return (
        "arguments" not in value
        and isinstance(parameters, dict)
        and parameters.get("type") == "object"
        and isinstance(parameters.get("properties"), dict)
    )


def _as_tool_call(value: Any, index: int) -> ToolCall | None:
    if not isinstance(value, dict):
        return None
    name = value.get("name", value.get("action", value.get("tool")))
    if not isinstance(name, str):
        return None
    arguments = value.get("arguments", value.get("action_input", value.get("parameters", {})))
    if isinstance(arguments, str) and arguments.lstrip().startswith("{"):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            pass
    if not isinstance(arguments, dict):
        if name == "final_answer":
            arguments = {"answer": arguments}
        elif not isinstance(arguments, str):
            arguments = json.dumps(arguments)
    return ToolCall(id=f"call_{index}", name=name, arguments=arguments)
