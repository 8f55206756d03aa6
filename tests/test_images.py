"""Images: coercion (`codeloop.as_image`), run(images=...), images returned by tools (shown to the
model at the next step, kept out of the CodeAgent's sandbox), memory's JSON round trip, and
each provider's wire format, checked on the request its official SDK sends to a local server."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from PIL import Image

from codeloop import (
    ActionStep,
    ChatMessage,
    CodeAgent,
    ImageContent,
    Memory,
    Model,
    Role,
    ScriptedModel,
    TaskStep,
    Tool,
    ToolCall,
    ToolCallingAgent,
    as_image,
    tool,
)
from codeloop.errors import ConfigurationError
from codeloop.images import describe_image, sniff_mime, tool_images
from codeloop.memory import ToolResult

from helpers import completion_reply
from wire import ReplayServer, Reply

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

call = ScriptedModel.call


def picture(color: str = "red", size: tuple[int, int] = (3, 2), mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, color)


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def pixels(image: ImageContent) -> tuple[tuple[int, int], Any]:
    """What an encoded image decodes to: its size and its top-left pixel (RGB)."""
    decoded = Image.open(io.BytesIO(image.data)).convert("RGB")
    return decoded.size, decoded.getpixel((0, 0))


PNG = encoded(picture("blue"), "PNG")
JPEG = encoded(picture("green"), "JPEG")


# -- as_image ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_bytes_are_told_apart_by_their_magic_number(fmt: str, mime: str) -> None:
    data = encoded(picture(), fmt)
    assert sniff_mime(data) == mime
    assert as_image(data) == ImageContent(data=data, mime_type=mime)
    assert as_image(bytearray(data)) == ImageContent(data=data, mime_type=mime)


def test_a_pil_image_is_encoded_as_png_and_decodes_to_itself() -> None:
    image = as_image(picture("red", (5, 4)))
    assert image.mime_type == "image/png" and image.url is None
    assert pixels(image) == ((5, 4), (255, 0, 0))
    cmyk = as_image(picture("red", (2, 2), mode="CMYK"))  # PNG cannot hold CMYK: converted
    assert cmyk.mime_type == "image/png" and pixels(cmyk)[0] == (2, 2)


def test_files_by_path_or_string(tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(JPEG)  # the content decides, not the suffix
    assert as_image(tmp_path / "photo.png") == ImageContent(data=JPEG, mime_type="image/jpeg")
    assert as_image(str(tmp_path / "photo.png")).mime_type == "image/jpeg"
    bmp = tmp_path / "scan.bmp"
    bmp.write_bytes(encoded(picture(), "BMP"))  # not sniffed: the suffix tells
    assert as_image(bmp).mime_type == "image/bmp"
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(TypeError, match="not an image file"):
        as_image(notes)
    with pytest.raises(FileNotFoundError, match=r"No image file at .*missing\.png.*a PIL image"):
        as_image(tmp_path / "missing.png")


def test_urls_stay_urls() -> None:
    assert as_image("https://example.com/cat.jpg?size=2") == ImageContent(
        mime_type="image/jpeg", url="https://example.com/cat.jpg?size=2"
    )
    data_url = "data:image/webp;base64,UklGRg=="
    assert as_image(data_url) == ImageContent(mime_type="image/webp", url=data_url)
    with pytest.raises(TypeError, match="must be base64"):
        as_image("data:image/png,raw")


def test_what_is_not_an_image_says_what_is_accepted() -> None:
    with pytest.raises(TypeError, match=r"not a PNG, JPEG, GIF or WEBP image \(they start 68 65 6c 6c 6f\)"):
        as_image(b"hello")
    with pytest.raises(TypeError, match="Cannot use a int as an image: pass an ImageContent, a PIL image"):
        as_image(42)


def test_describe_image() -> None:
    assert repr(ImageContent(data=PNG)) == f"ImageContent('image/png', {len(PNG)} bytes)"  # never the bytes
    assert repr(as_image("https://x.test/a.gif")) == "ImageContent('image/gif', url='https://x.test/a.gif')"
    assert describe_image(ImageContent(data=PNG)) == f"image/png, {len(PNG)} bytes"
    assert describe_image(as_image(ImageContent(data=PNG).as_data_url())) == f"image/png, {len(PNG)} bytes"
    assert describe_image(as_image("https://x.test/a.gif")) == "image/gif, https://x.test/a.gif"


def test_tool_images_split_text_from_images() -> None:
    image = ImageContent(data=PNG)
    assert tool_images("text") is None and tool_images(PNG) is None  # bytes alone are just bytes
    assert tool_images(PNG, "image") == ([], [image])
    assert tool_images(["a caption", image, 3]) == (["a caption", 3], [image])
    assert tool_images([b"x", "y"]) is None


# -- TaskStep, run(images=...) and memory's JSON ----------------------------------------------------
def test_task_step_takes_any_image_like(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(JPEG)
    step = TaskStep(task="t", images=[picture("blue"), PNG, tmp_path / "a.jpg", "https://x.test/b.png"])
    assert [i.mime_type for i in step.images] == ["image/png", "image/png", "image/jpeg", "image/png"]
    assert step.images[1:3] == (ImageContent(data=PNG), ImageContent(data=JPEG, mime_type="image/jpeg"))
    assert step.images[3].url == "https://x.test/b.png"
    assert TaskStep(task="t", images=PNG).images == (ImageContent(data=PNG),)  # one image alone
    assert TaskStep(task="t", task_images=[PNG]).task_images == [ImageContent(data=PNG)]
    with pytest.raises(TypeError, match="not both"):
        TaskStep(task="t", images=[PNG], task_images=[JPEG])
    with pytest.raises(TypeError, match="not a PNG, JPEG"):
        TaskStep(task="t", images=[b"not an image"])


def test_run_images_as_pil_and_path(tmp_path: Path) -> None:
    (tmp_path / "b.jpg").write_bytes(JPEG)
    model = ScriptedModel([[call("final_answer", answer="blue and green")]])
    ToolCallingAgent([], model).run("Which colours?", images=[picture("blue"), tmp_path / "b.jpg"])
    task = model.requests[0][1]
    assert task.role is Role.USER and task.content.startswith("Task: Which colours?")
    assert pixels(task.images[0]) == ((3, 2), (0, 0, 255))
    assert task.images[1] == ImageContent(data=JPEG, mime_type="image/jpeg")


def test_images_survive_the_json_round_trip() -> None:
    task_images = (
        ImageContent(data=PNG),
        as_image("https://x.test/c.png"),
        as_image(ImageContent(data=JPEG).as_data_url()),
    )
    observed = [ImageContent(data=JPEG, mime_type="image/jpeg")]
    memory = Memory(
        steps=[
            TaskStep(task="t", images=task_images),
            ActionStep(step_number=1, observations_images=observed),
        ]
    )
    text = memory.to_json()
    assert base64.b64encode(PNG).decode() in text  # the bytes are inline, as base64
    restored = Memory.from_json(text)
    assert restored == memory
    step, action = restored.steps
    assert isinstance(step, TaskStep) and step.images == task_images
    assert isinstance(action, ActionStep) and action.observations_images == observed
    shown = restored.to_messages("system")
    assert shown[1].images == task_images and shown[-1].images == tuple(observed)


# -- each provider's format ---------------------------------------------------------------------------
def _data(image: bytes) -> str:
    return base64.b64encode(image).decode()


_CHAT_REPLY = completion_reply("done")
_OPENAI_CHAT = ("image_url", lambda part: part["image_url"]["url"])
_EXPECTED_CHAT = [f"data:image/png;base64,{_data(PNG)}", f"data:image/jpeg;base64,{_data(JPEG)}"]


def _responses_reply() -> Reply:
    part = {"type": "output_text", "text": "done", "annotations": []}
    message = {"type": "message", "id": "m1", "role": "assistant", "status": "completed", "content": [part]}
    usage = {"input_tokens": 9, "output_tokens": 1, "total_tokens": 10}
    usage |= {"input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
    head = {"id": "r1", "object": "response", "created_at": 0, "model": "gpt-test", "status": "completed"}
    rest = {"parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "usage": usage}
    return Reply.json({**head, "output": [message], **rest})


def _anthropic_reply() -> Reply:
    return Reply.json({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
                       "content": [{"type": "text", "text": "done"}], "stop_reason": "end_turn",
                       "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 1}})  # fmt: skip


def _bedrock_reply() -> Reply:
    message = {"role": "assistant", "content": [{"text": "done"}]}
    usage = {"inputTokens": 9, "outputTokens": 1, "totalTokens": 10}
    return Reply.json(
        {
            "output": {"message": message},
            "stopReason": "end_turn",
            "usage": usage,
            "metrics": {"latencyMs": 1},
        }
    )


def _openai(server: ReplayServer) -> Model:
    from codeloop import OpenAIModel

    return OpenAIModel("gpt-test", api_base=server.url("/v1"), api_key="test")


def _responses(server: ReplayServer) -> Model:
    from codeloop import OpenAIResponsesModel

    return OpenAIResponsesModel("gpt-test", api_base=server.url("/v1"), api_key="test")


def _anthropic(server: ReplayServer) -> Model:
    from codeloop import AnthropicModel

    return AnthropicModel("claude-test", api_base=server.url(), api_key="test")


def _bedrock(server: ReplayServer) -> Model:
    from codeloop import AmazonBedrockModel

    keys = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "endpoint_url": server.url()}
    return AmazonBedrockModel(
        "anthropic.claude-3-5-haiku-20241022-v1:0", region_name="us-east-1", client_kwargs=keys
    )


def _litellm(server: ReplayServer) -> Model:
    from codeloop import LiteLLMModel

    return LiteLLMModel("openai/gpt-test", api_base=server.url("/v1"), api_key="test")


def _huggingface(server: ReplayServer) -> Model:
    from codeloop import InferenceClientModel

    return InferenceClientModel("gpt-test", base_url=server.url("/v1"), token="hf_test")


ImagePart = tuple[str, Callable[[dict[str, Any]], Any]]
"""(how to recognize a provider's image part, what of it carries the image)."""

PROVIDERS: dict[str, tuple[Callable[[ReplayServer], Model], Callable[[], Reply], ImagePart, list[Any]]] = {
    "openai-chat": (_openai, lambda: _CHAT_REPLY, _OPENAI_CHAT, _EXPECTED_CHAT),
    "litellm": (_litellm, lambda: _CHAT_REPLY, _OPENAI_CHAT, _EXPECTED_CHAT),
    "huggingface": (_huggingface, lambda: _CHAT_REPLY, _OPENAI_CHAT, _EXPECTED_CHAT),
    "openai-responses": (
        _responses,
        _responses_reply,
        ("input_image", lambda part: part["image_url"]),
        _EXPECTED_CHAT,
    ),
    "anthropic": (
        _anthropic,
        _anthropic_reply,
        ("image", lambda part: part["source"]),
        [
            {"type": "base64", "media_type": "image/png", "data": _data(PNG)},
            {"type": "base64", "media_type": "image/jpeg", "data": _data(JPEG)},
        ],
    ),
    "bedrock": (
        _bedrock,
        _bedrock_reply,
        ("bedrock-image", lambda part: part["image"]),
        [
            {"format": "png", "source": {"bytes": _data(PNG)}},
            {"format": "jpeg", "source": {"bytes": _data(JPEG)}},
        ],
    ),
}


def image_parts(body: Any, kind: str) -> list[dict[str, Any]]:
    """Every image part of `kind` in a request body, in order (`bedrock-image`: `{"image": ...}`)."""
    found: list[dict[str, Any]] = []
    if isinstance(body, dict):
        if body.get("type") == kind or (kind == "bedrock-image" and set(body) == {"image"}):
            return [body]
        for value in body.values():
            found += image_parts(value, kind)
    elif isinstance(body, list):
        for value in body:
            found += image_parts(value, kind)
    return found


def conversation() -> list[ChatMessage]:
    """A task with a PNG, a native tool call, its result and the JPEG that tool returned."""
    get_chart = ToolCall(id="call_1", name="get_chart", arguments={"city": "Paris"})
    result = ToolResult(
        call_id="call_1", name="get_chart", content="Image 1 returned by get_chart: shown below."
    )
    action = ActionStep(
        step_number=1, tool_calls=(get_chart,), native_tool_calls=True, tool_results=(result,)
    )
    action.observations_images = [as_image(JPEG)]
    memory = Memory(steps=[TaskStep(task="Describe the charts.", images=[PNG]), action])
    return memory.to_messages("You describe charts.")


@pytest.mark.parametrize("provider", list(PROVIDERS))
async def test_each_provider_sends_task_and_observation_images_in_its_format(provider: str) -> None:
    make, reply, (kind, carried), expected = PROVIDERS[provider]
    with ReplayServer([reply()]) as server:
        answer = await make(server).agenerate(conversation())
    assert answer.content == "done"
    parts = image_parts(server.requests[0].json, kind)
    assert [carried(part) for part in parts] == expected


@pytest.mark.parametrize("provider", ["openai-chat", "anthropic"])
async def test_url_images_go_as_urls(provider: str) -> None:
    make, reply, (kind, carried), _ = PROVIDERS[provider]
    messages = [
        ChatMessage(role=Role.USER, content="What is this?", images=(as_image("https://x.test/cat.png"),))
    ]
    with ReplayServer([reply()]) as server:
        await make(server).agenerate(messages)
    shown = [carried(part) for part in image_parts(server.requests[0].json, kind)]
    assert shown == (
        ["https://x.test/cat.png"]
        if provider == "openai-chat"
        else [{"type": "url", "url": "https://x.test/cat.png"}]
    )


async def test_text_only_local_models_refuse_images(tmp_path: Path) -> None:
    from codeloop import LlamaCppModel, TransformersModel

    messages = [ChatMessage(role=Role.USER, content="What is this?", images=(as_image(PNG),))]
    with pytest.raises(ConfigurationError, match="takes text only; images need a vision model"):
        await TransformersModel("no-such/model").agenerate(messages)
    weights = tmp_path / "text-only.gguf"
    weights.write_bytes(b"GGUF")  # refused before any server starts: the file is never loaded
    with pytest.raises(ConfigurationError, match=r"takes text only: .*server_options=\{\"mmproj.path\""):
        await LlamaCppModel(weights).agenerate(messages)
    with pytest.raises(ConfigurationError, match="takes text only"):
        await anext(LlamaCppModel(weights).astream(messages))


# -- tools returning images, end to end -----------------------------------------------------------------
@tool
def get_chart(city: str) -> Any:
    """Draw the city's chart.

    Args:
        city: The city.
    """
    return picture("red" if city == "Paris" else "blue", (4, 4))


@tool
def captioned() -> list[Any]:
    """A caption and a picture, as MCP tools return them."""
    return ["a green square", ImageContent(data=JPEG, mime_type="image/jpeg")]


class Snapshot(Tool):
    name = "snapshot"
    description = "A screenshot, as PNG bytes."
    inputs: ClassVar[dict[str, dict[str, Any]]] = {}
    output_type = "image"

    def forward(self) -> bytes:
        return PNG


class Measure(Tool):
    name = "measure"
    description = "The size of an image."
    inputs: ClassVar[dict[str, dict[str, Any]]] = {"image": {"type": "image", "description": "The image."}}
    output_type = "string"

    def forward(self, image: Any) -> str:
        return f"{type(image).__name__} {image.size[0]}x{image.size[1]}"


def test_tool_calling_agent_shows_tool_images_at_the_next_step() -> None:
    model = ScriptedModel(
        [
            [call("get_chart", city="Paris"), call("snapshot"), call("captioned")],
            [call("final_answer", answer="red")],
        ]
    )
    agent = ToolCallingAgent([get_chart, Snapshot(), captioned], model)
    assert agent.run("What colour is the Paris chart?") == "red"
    sent = model.requests[1]
    results = [m.content for m in sent if m.role is Role.TOOL]
    chart = as_image(picture("red", (4, 4)))
    assert results == [
        f"Image 1 returned by get_chart (image/png, {len(chart.data)} bytes): shown below.",
        f"Image 2 returned by snapshot (image/png, {len(PNG)} bytes): shown below.",
        f"a green square\nImage 3 returned by captioned (image/jpeg, {len(JPEG)} bytes): shown below.",
    ]
    shown = sent[-1]
    assert shown.role is Role.USER and shown.content == "Observation images:"
    assert shown.images == (chart, ImageContent(data=PNG), ImageContent(data=JPEG, mime_type="image/jpeg"))
    assert pixels(shown.images[0]) == ((4, 4), (255, 0, 0))
    assert Memory.from_json(agent.memory.to_json()) == agent.memory


def test_code_agent_keeps_images_out_of_the_sandbox() -> None:
    model = ScriptedModel(
        [
            "```python\nchart = get_chart('Paris')\nshot = snapshot()\n"
            "print(chart)\nprint(type(shot).__name__)\n```",
            "```python\nprint(measure(image=chart))\n```",
            "```python\nfinal_answer(measure(chart) + ' red')\n```",
        ]
    )
    agent = CodeAgent([get_chart, Snapshot(), Measure()], model)
    assert agent.run("What colour is the Paris chart?") == "Image 4x4 red"  # the tool got the PIL image back
    first, second = agent.memory.action_steps()[:2]
    placeholder = "<image 1 from get_chart: shown to you after this step>"
    assert first.observations.startswith(
        f"{placeholder}\nstr\nImages from tools, shown to you below: {placeholder}"
    )
    assert (
        f"<image 2 from snapshot: shown to you after this step> (image/png, {len(PNG)} bytes)"
        in first.observations
    )
    chart = as_image(picture("red", (4, 4)))
    shown = model.requests[1][-2]  # then the observation text
    assert shown.content == "Observation images:" and shown.images == (chart, ImageContent(data=PNG))
    assert "Observation:" in model.requests[1][-1].content and placeholder in model.requests[1][-1].content
    assert second.observations == "Image 4x4\n" and second.observations_images is None  # reset each step
    assert Memory.from_json(agent.memory.to_json()) == agent.memory


def test_code_agent_answer_that_is_an_image_placeholder_gives_the_image() -> None:
    model = ScriptedModel(["```python\nfinal_answer(get_chart('Lyon'))\n```"])
    answer = CodeAgent([get_chart], model).run("Draw Lyon.")
    assert isinstance(answer, Image.Image) and answer.getpixel((0, 0)) == (0, 0, 255)
