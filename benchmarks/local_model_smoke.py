"""Smoke-test the local Qwen2.5-Coder-1.5B model end to end and print its speed.

    python benchmarks/local_model_smoke.py [--prompt TEXT] [--threads N] [--smollm2]

Reports the time to locate (or join and verify, on first use) the GGUF file, the server start
time (child process + model load), time to first token, and decode tokens per second.
"""

from __future__ import annotations

import argparse
import time

from codeloop.messages import ChatMessage, Role, Usage
from codeloop.models.llamacpp import LlamaCppModel

__all__ = ["main"]

PROMPT = "Write Python code that prints the 20th Fibonacci number."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", default=PROMPT)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--smollm2", action="store_true", help="use the tiny SmolLM2-135M instead")
    args = parser.parse_args()

    started = time.perf_counter()
    kwargs = {"n_threads": args.threads, "max_tokens": args.max_tokens}
    model = LlamaCppModel.smollm2(**kwargs) if args.smollm2 else LlamaCppModel.qwen_coder(**kwargs)
    print(f"model file      {model.model_path} ({time.perf_counter() - started:.2f} s to locate/join)")
    with model:
        print(f"server start    {time.perf_counter() - started:.2f} s since launch ({model.base_url})")
        _run(model, args.prompt)


def _run(model: LlamaCppModel, prompt: str) -> None:
    messages = [ChatMessage(Role.USER, prompt)]
    sent = time.perf_counter()
    first: float | None = None
    text: list[str] = []
    usage = Usage()
    for delta in model.generate_stream(messages):
        if delta.content and first is None:
            first = time.perf_counter()
        text.append(delta.content)
        usage = delta.usage or usage
    done = time.perf_counter()
    print("-" * 60 + "\n" + "".join(text).strip() + "\n" + "-" * 60)
    ttft = (first or done) - sent
    decode = max(usage.output_tokens - 1, 0) / max(done - (first or done), 1e-9)
    print(f"prompt tokens   {usage.input_tokens}, first token after {ttft:.2f} s")
    print(f"output tokens   {usage.output_tokens} in {done - sent:.2f} s -> {decode:.1f} tok/s decode")


if __name__ == "__main__":
    main()
