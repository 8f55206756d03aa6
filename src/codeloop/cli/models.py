"""What `--model NAME` means, the one rule:

* a local model name (`local`, `qwen`, `smollm2`) runs that model on this machine, offline;
* any other name is a model id on an OpenAI-compatible API: OpenAI's own with `--api-key` (or
  `OPENAI_API_KEY`), or the server at `--api-base` (or `OPENAI_BASE_URL`), which needs a key
  unless it runs on this machine. With `--api-base`, a local name is a model id on that server too.

A name that fits neither says so, with the names that exist and what a hosted model needs.
"""

from __future__ import annotations

import difflib
import os
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from ..models._clients import is_local

if TYPE_CHECKING:
    from ..models.base import Model
    from .progress import Display

__all__ = ["LOCAL_MODELS", "build_model", "prepare_model"]

LOCAL_MODELS: dict[str, str] = {
    "local": "the default: Qwen2.5-Coder-1.5B",
    "qwen": "the same",
    "smollm2": "SmolLM2-135M, tiny: for trying things out",
}
"""The names `--model` runs on this machine, with what each is."""


def build_model(
    name: str, api_base: str | None = None, api_key: str | None = None, *, display: Display | None = None
) -> Model:
    """The model `--model NAME` means (see the module docstring); `display` shows a join."""
    if name in LOCAL_MODELS and not api_base:
        return _local_model(name, display)
    if not (api_key or os.environ.get("OPENAI_API_KEY")) and not is_local(api_base):
        raise ConfigurationError(_api_base_needs_key(api_base) if api_base else _unknown_model(name))
    from ..models.openai import OpenAIModel

    return OpenAIModel(name, api_base=api_base, api_key=api_key)


def prepare_model(model: Model, display: Display) -> None:
    """Start a local model's server now, showing the load, rather than at the first request."""
    from ..models.llamacpp import LlamaCppModel

    if isinstance(model, LlamaCppModel):
        with display.activity(f"Loading model {model.model_id}…", done="ready"):
            model.start()


def _local_model(name: str, display: Display | None) -> Model:
    from ..models.llamacpp import LlamaCppModel

    if name == "smollm2":
        return LlamaCppModel.smollm2()
    from ..models.gguf import qwen_coder_path

    if display is not None:
        with display.joining() as progress:
            qwen_coder_path(progress=progress)  # joins the parts once, showing it; then cached
    return LlamaCppModel.qwen_coder()


def _unknown_model(name: str) -> str:
    close = difflib.get_close_matches(name, list(LOCAL_MODELS), n=1)
    guess = f" (did you mean {close[0]}?)" if close else ""
    local = ", ".join(f"{known} ({what})" for known, what in LOCAL_MODELS.items())
    return (
        f"{name!r} is not a local model{guess}, and no API is set up for a hosted one.\n"
        f"  Local models: {local}.\n"
        "  A hosted model needs --api-key KEY (or the OPENAI_API_KEY variable) for OpenAI's API, or "
        "--api-base URL for another OpenAI-compatible server (with --api-key if it asks for one)."
    )


def _api_base_needs_key(api_base: str) -> str:
    return (
        f"the API at {api_base} needs a key: give --api-key KEY or set OPENAI_API_KEY "
        "(only a server on this machine works without one)."
    )
