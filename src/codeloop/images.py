"""Images as the model sees them: what users and tools hand over, turned into `ImageContent`.

    as_image(Image.open("chart.png"))        # a PIL image: encoded as PNG
    as_image(Path("photo.jpg"))              # a file: its bytes, MIME type from its magic number
    as_image(png_bytes)                      # bytes: PNG, JPEG, GIF or WEBP, told by magic number
    as_image("https://example.com/cat.png")  # an http(s) or data: URL, sent as the URL

Pillow stays optional: it is imported only to encode a PIL image, which cannot exist unless the
caller imported Pillow already.

`tool_images` finds the images in a tool's result (an image, or a list mixing text and
images, as MCP tools return them); the agents show those images to the model after the step.
"""

from __future__ import annotations

import base64
import io
import mimetypes
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .messages import ImageContent

__all__ = ["ImageLike", "as_image", "as_images", "describe_image", "is_image", "sniff_mime", "tool_images"]

ImageLike = Any
"""What `as_image` accepts: `ImageContent`, a PIL image, bytes, a `pathlib.Path` or file path,
or an http(s)/data: URL. (`Any` because Pillow is optional.)"""

_ACCEPTED = "an ImageContent, a PIL image, PNG/JPEG/GIF/WEBP bytes, a file path, or an http(s) or data: URL"
_PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})


def sniff_mime(data: bytes) -> str | None:
    """The image MIME type told by `data`'s magic number (PNG, JPEG, GIF, WEBP), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def is_image(value: object, output_type: str | None = None) -> bool:
    """Whether `value` is an image: an `ImageContent` or a PIL image, or bytes from a tool whose
    declared `output_type` is "image" (smolagents' convention; other bytes are just bytes)."""
    if output_type == "image" and isinstance(value, (bytes, bytearray)):
        return True
    return isinstance(value, ImageContent) or _is_pil_image(value)


def as_image(value: ImageLike) -> ImageContent:
    """`value` as an `ImageContent`; a `TypeError` says what is accepted when it is none of it."""
    if isinstance(value, ImageContent):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _from_bytes(bytes(value))
    if isinstance(value, str) and value.startswith(("http://", "https://", "data:")):
        return _from_url(value)
    if isinstance(value, (str, os.PathLike)):
        return _from_file(Path(value))
    if _is_pil_image(value):
        return _from_pil(value)
    raise TypeError(f"Cannot use a {type(value).__name__} as an image: pass {_ACCEPTED}.")


def as_images(values: ImageLike | Sequence[ImageLike] | None) -> tuple[ImageContent, ...]:
    """Several images (one image alone, bytes or a path included) as `ImageContent`s."""
    if values is None:
        return ()
    single = (ImageContent, bytes, bytearray, memoryview, str, os.PathLike)
    if isinstance(values, single) or _is_pil_image(values):
        return (as_image(values),)
    return tuple(as_image(value) for value in values)


def describe_image(image: ImageContent) -> str:
    """A short description for observations: `image/png, 2048 bytes`, or the URL."""
    if image.url and not image.url.startswith("data:"):
        return f"{image.mime_type}, {image.url}"
    size = len(image.data) if image.data else len(_data_url_payload(image.url or ""))
    return f"{image.mime_type}, {size} bytes"


def tool_images(value: Any, output_type: str | None = None) -> tuple[list[Any], list[ImageContent]] | None:
    """(the other parts, the images) of a tool's result that holds images, else None.

    An image object is an image; so are bytes from a tool whose `output_type` is "image"
    (smolagents' convention). A list or tuple mixing text and images (MCP tools return those)
    keeps its other items, in order, apart from its images."""
    if is_image(value, output_type):
        return [], [as_image(value)]
    if not isinstance(value, (list, tuple)) or not any(is_image(item, output_type) for item in value):
        return None
    others = [item for item in value if not is_image(item, output_type)]
    return others, [as_image(item) for item in value if is_image(item, output_type)]


def _is_pil_image(value: object) -> bool:
    module = sys.modules.get("PIL.Image")  # no PIL image can exist before Pillow is imported
    return module is not None and isinstance(value, module.Image)


def _from_bytes(data: bytes) -> ImageContent:
    mime = sniff_mime(data)
    if mime is None:
        head = data[:8].hex(" ") or "empty"
        raise TypeError(
            f"These bytes are not a PNG, JPEG, GIF or WEBP image (they start {head}); pass {_ACCEPTED}."
        )
    return ImageContent(data=data, mime_type=mime)


def _from_url(url: str) -> ImageContent:
    if url.startswith("data:"):
        header, comma, _ = url.partition(",")
        if not comma or not header.endswith(";base64"):
            raise TypeError(
                f"A data: URL image must be base64 (data:image/png;base64,...), got {url[:40]!r}."
            )
        mime = header.removeprefix("data:").removesuffix(";base64") or "image/png"
        return ImageContent(mime_type=mime, url=url)
    guessed = mimetypes.guess_type(url.split("?")[0])[0]
    return ImageContent(
        mime_type=guessed if guessed and guessed.startswith("image/") else "image/png", url=url
    )


def _from_file(path: Path) -> ImageContent:
    if not path.is_file():
        raise FileNotFoundError(f"No image file at {str(path)!r}: pass {_ACCEPTED}.")
    data = path.read_bytes()
    mime = sniff_mime(data) or mimetypes.guess_type(path.name)[0]
    if mime is None or not mime.startswith("image/"):
        raise TypeError(f"{str(path)!r} is not an image file codeloop recognizes; pass {_ACCEPTED}.")
    return ImageContent(data=data, mime_type=mime)


def _from_pil(image: Any) -> ImageContent:
    """A PIL image encoded as PNG (converted to RGBA first if PNG cannot hold its mode)."""
    if image.mode not in _PNG_MODES:
        image = image.convert("RGBA")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return ImageContent(data=buffer.getvalue(), mime_type="image/png")


def _data_url_payload(url: str) -> bytes:
    try:
        return base64.b64decode(url.partition(",")[2], validate=False)
    except ValueError:
        return b""
