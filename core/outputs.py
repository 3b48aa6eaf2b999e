"""Output files and folders: claimed before any work, written atomically, never someone else's.

The promise (README, "What the tools promise about your data"): a command writes only into a new
or empty folder, or one it made before; it replaces a file only when it wrote that file itself.
Ownership is recorded where a person would not trip over it:

* a folder a command creates gets a small marker file, :data:`OUTPUT_MARKER`, naming the command;
* a JSON file a command writes carries ``"written_by": "<command>"``;
* a PNG carries ``Software: posekernel <command>`` in its metadata, a PLY or OBJ mesh a
  ``written_by <command>`` header line (:func:`mesh_header`);
* an HTML page carries ``<meta name="generator" content="posekernel <command>">`` in its head
  (:func:`html_generator_meta`), a GLB the glTF ``asset.generator`` ``"posekernel <command>"``
  (:func:`generator_name`).

Everything is checked by :func:`claim_output_dir` / :func:`claim_output_file` before the work
starts, so a bad ``--out`` costs seconds, not the minutes of a run. :func:`atomic_write` writes to a
temporary file beside the target and renames it: an interrupted or failed write (a full disk)
leaves the previous file, never a truncated or 0-byte one.
"""
from __future__ import annotations

import errno
import html
import json
import struct
import os
import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from core.errors import InputError

__all__ = ["OUTPUT_MARKER", "atomic_write", "claim_output_dir", "claim_output_file", "generator_name",
           "html_generator_meta", "mesh_header", "owned_by", "png_metadata", "write_json"]

OUTPUT_MARKER = ".posekernel-output.json"
_PNG_SOFTWARE = "posekernel {writer}"
#: How far into an HTML page its <head> (and so the generator mark) is looked for.
_HTML_HEAD_BYTES = 4096
#: A GLB's JSON chunk larger than this is not read to find its generator (a damaged length field).
_GLB_JSON_MAX_BYTES = 64 << 20


def claim_output_dir(path, flag: str, writer: str) -> Path:
    """Make ``path`` this command's output folder, or refuse it (InputError naming ``flag``).

    Accepted: a new path (created with its parents), an empty folder, or a folder that ``writer``
    made before (its marker). Refused: a file, a folder holding anything else, an unwritable place.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {path}: is a file, not a folder; give a new or empty folder")
    if path.is_dir():
        marker = _read_marker(path)
        if marker is not None and marker.get("written_by") != writer:
            raise InputError(f"{flag} {path}: holds the output of {marker.get('written_by')}, not of {writer}; "
                             "give a new or empty folder")
        if marker is None and any(path.iterdir()):
            raise InputError(f"{flag} {path}: exists and holds files {writer} did not create; "
                             "give a new or empty folder")
    _probe_writable(path, flag)
    if _read_marker(path) is None:
        atomic_write(path / OUTPUT_MARKER, lambda h: h.write(json.dumps(
            {"written_by": writer, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}).encode()))
    return path


def claim_output_file(path, flag: str, writer: str, suffixes: tuple[str, ...] | None = None) -> Path:
    """Check that ``path`` may be written by ``writer``, before any work (InputError naming ``flag``).

    Accepted: a new file in a writable folder (created with its parents), or an existing file that
    ``writer`` wrote (see :func:`owned_by`); with ``suffixes`` (e.g. ``(".png",)``) only those file
    types. Nothing is written here.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(f"{flag} {path}: is a folder; give a file path")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise InputError(f"{flag} {path}: unsupported file type {path.suffix or '(none)'!r}; "
                         f"give a {' or '.join(suffixes)} path")
    if path.exists() and not owned_by(path, writer):
        raise InputError(f"{flag} {path}: exists and was not written by {writer}; choose another path "
                         "(or remove the file yourself)")
    _probe_writable(path.parent, flag)
    return path


def owned_by(path, writer: str) -> bool:
    """True when ``path`` was written by ``writer``: its folder's marker, or the file's own mark (JSON key, PNG
    metadata, mesh header, HTML generator meta tag, GLB asset generator) says so."""
    path = Path(path)
    marker = _read_marker(path.parent)
    if marker is not None and marker.get("written_by") == writer:
        return True
    try:
        if path.suffix.lower() == ".json":
            with open(path) as handle:
                data = json.load(handle)
            return isinstance(data, dict) and data.get("written_by") == writer
        if path.suffix.lower() == ".png":
            from PIL import Image

            with Image.open(path) as image:
                return image.info.get("Software") == _PNG_SOFTWARE.format(writer=writer)
        if path.suffix.lower() in (".ply", ".obj"):
            with open(path, "rb") as handle:
                head = handle.read(1024)
            mark = mesh_header(writer)
            if path.suffix.lower() == ".ply":
                return head.startswith(b"ply") and f"\ncomment {mark}\n".encode() in head.split(b"end_header")[0]
            return head.startswith(f"# {mark}\n".encode())
        if path.suffix.lower() == ".html":
            with open(path, "rb") as handle:
                head = handle.read(_HTML_HEAD_BYTES).split(b"</head>")[0]
            return html_generator_meta(writer).encode() in head
        if path.suffix.lower() == ".glb":
            return _glb_generator(path) == generator_name(writer)
    except Exception:  # noqa: BLE001 - unreadable means not provably ours
        return False
    return False


def png_metadata(writer: str) -> dict:
    """``metadata=`` for matplotlib's ``savefig(..., format='png')`` that marks the file as ``writer``'s."""
    return {"Software": _PNG_SOFTWARE.format(writer=writer)}


def generator_name(writer: str) -> str:
    """The name a file format's own "made by" field carries for ``writer`` (glTF ``asset.generator``)."""
    return _PNG_SOFTWARE.format(writer=writer)


def html_generator_meta(writer: str) -> str:
    """The ``<meta name="generator">`` tag an HTML page's head carries to mark ``writer``'s file."""
    return f'<meta name="generator" content="{html.escape(generator_name(writer))}">'


def mesh_header(writer: str) -> str:
    """The text a PLY (``comment <text>``) or OBJ (``# <text>``) header carries to mark ``writer``'s file."""
    return f"written_by {writer}"


def write_json(path, data: dict, writer: str) -> None:
    """Write ``data`` (plus ``written_by``) as indented JSON, atomically."""
    text = json.dumps({"written_by": writer, **data}, indent=2)
    atomic_write(path, lambda handle: handle.write(text.encode()))


def atomic_write(path, write: Callable, mode: str = "wb") -> None:
    """Call ``write(handle)`` on a temporary file beside ``path``, then rename it onto ``path``.

    A failure (full disk, Ctrl-C) leaves ``path`` as it was and no temporary file behind; a full
    disk raises InputError saying so (the OSError's own text is often an unhelpful library message).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InputError(f"{path}: the disk is full ({_free_text(path.parent)} free); free some space and "
                             "run the same command again") from None
        raise
    except RuntimeError as err:   # torch.save reports a full disk as a RuntimeError from its C++ writer
        if _disk_full(path.parent, err):
            raise InputError(f"{path}: the disk is full ({_free_text(path.parent)} free); free some space and "
                             "run the same command again") from None
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def _probe_writable(folder: Path, flag: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise InputError(f"{flag} {folder}: cannot write there ({err.strerror or err}); "
                         "choose a writable folder") from None


def _read_marker(folder: Path) -> dict | None:
    try:
        with open(folder / OUTPUT_MARKER) as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _glb_generator(path: Path) -> str | None:
    """``asset.generator`` of a GLB file (its first chunk is the glTF JSON), or None."""
    with open(path, "rb") as handle:
        header = handle.read(20)   # magic, version, total length; then the JSON chunk's length and type
        if len(header) < 20 or header[:4] != b"glTF" or header[16:20] != b"JSON":
            return None
        length = struct.unpack("<I", header[12:16])[0]
        if length > _GLB_JSON_MAX_BYTES:
            return None
        tree = json.loads(handle.read(length))
    asset = tree.get("asset") if isinstance(tree, dict) else None
    return asset.get("generator") if isinstance(asset, dict) else None


def _disk_full(folder: Path, err: Exception) -> bool:
    text = str(err).lower()
    if "no space" in text or "enospc" in text:
        return True
    try:
        return shutil.disk_usage(folder).free < 1 << 20 and ("unexpected pos" in text or "write" in text)
    except OSError:
        return False


def _free_text(folder: Path) -> str:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "unknown"
    return f"{free / 2**20:.1f} MiB"
