"""`user_input`: ask the human a question and return the answer."""

from __future__ import annotations

from collections.abc import Callable

from ..tools import Tool

__all__ = ["InputFunction", "UserInputTool", "user_input"]

InputFunction = Callable[[str], str]
"""Shows a prompt and returns what the user typed, like `input()`."""


class UserInputTool(Tool):
    """Asks the user a question through a pluggable input function (default: `input()`)."""

    name = "user_input"
    description = "Asks the user a question and returns their answer. Use it when you need their input."

    def __init__(self, input_fn: InputFunction | None = None, *, prompt_prefix: str = "") -> None:
        self.input_fn: InputFunction = input_fn if input_fn is not None else input
        self.prompt_prefix = prompt_prefix
        super().__init__()

    def forward(self, question: str) -> str:
        """Ask the user.

        Args:
            question: The question to ask the user.
        """
        prompt = f"{self.prompt_prefix}{question.rstrip()} => "
        try:
            return self.input_fn(prompt)
        except EOFError:
            return "(The user gave no answer: input is closed.)"


user_input = UserInputTool()
"""The default `user_input` tool (reads from standard input)."""
