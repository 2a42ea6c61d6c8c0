"""Getting an image out of a request safely: size-limited streaming, header probe, decoding.

Order matters for robustness: the body is counted while it streams in (413 before it is all
read), the image header is read before any pixel is decoded (413 for decompression bombs), and
only then is the image decoded, strictly (truncated files are 400, not half-grey images).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageMode, ImageOps, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.requests import Request
from weedseg.service.errors import (
    ApiError,
    bad_image,
    body_too_large,
    too_many_pixels,
    unsupported_type,
)

from weedseg.imageio import ImageReadError, decode_image, to_rgb8

IMAGE_TYPES = ("image/jpeg", "image/png", "image/tiff", "image/webp")
# Raw bodies may also come untyped or as octet-stream: the bytes say what they are.
RAW_TYPES = (*IMAGE_TYPES, "application/octet-stream", "")
MULTIPART = "multipart/form-data"
Image.init()  # register every Pillow plugin, so the format allow-list below can be checked
# MPO: multi-picture JPEG written by some cameras; WebP only where Pillow was built with it.
PIL_FORMATS = tuple(f for f in ("JPEG", "MPO", "PNG", "TIFF", "WEBP") if f in Image.OPEN)


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int
    channels: int = 3
    sample_bytes: int = 1  # 2 for 16-bit samples, 4 for 32-bit

    @property
    def decoded_bytes(self) -> int:
        """Memory the decoded pixels take (at least 3 channels: greys decode to RGB)."""
        return self.width * self.height * max(self.channels, 3) * self.sample_bytes


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it (or its Content-Length) passes `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise body_too_large(limit)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_upload(request: Request, limit: int) -> bytes:
    """Image bytes from a multipart `file` field or a raw image body (415 for anything else)."""
    kind = media_type(request)
    if kind not in RAW_TYPES and kind != MULTIPART:
        raise unsupported_type(
            f"content type {kind!r} is not supported; send multipart/form-data "
            f"with a 'file' field or a raw body of type {', '.join(IMAGE_TYPES)}"
        )
    body = await read_body(request, limit)
    if kind != MULTIPART:
        if not body:
            raise bad_image("empty request body")
        return body
    return await _multipart_file(request, body)


async def _multipart_file(request: Request, body: bytes) -> bytes:
    """Parse an already size-checked multipart body and return its image part."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=16)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the client's malformed body
        raise bad_image(f"malformed multipart body: {exc}") from exc
    try:
        uploads = [v for v in form.values() if isinstance(v, UploadFile)]
        if not uploads:
            raise bad_image("multipart body has no file part (send the image as field 'file')")
        data = await uploads[0].read()
    finally:
        await form.close()
    if not data:
        raise bad_image("the uploaded file is empty")
    return data


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR, which is all the header a bomb needs to be refused."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    return None


def png_sample_bytes(data: bytes) -> int:
    """2 for a 16-bit PNG (Pillow reports those as 8-bit modes; OpenCV decodes 16 bits)."""
    return 2 if data[:8] == b"\x89PNG\r\n\x1a\n" and data[24:25] == b"\x10" else 1


def probe(data: bytes, max_pixels: int) -> ImageHeader:
    """Read format and size from the header only (no pixel decoding); refuse bombs with 413."""
    claimed = png_size(data)
    if claimed is not None and claimed[0] * claimed[1] > max_pixels:
        raise too_many_pixels(*claimed, max_pixels)
    try:
        with Image.open(io.BytesIO(data), formats=PIL_FORMATS) as im:
            mode = ImageMode.getmode(im.mode)
            header = ImageHeader(
                im.format or "",
                int(im.width),
                int(im.height),
                len(mode.bands),
                max(np.dtype(mode.typestr).itemsize, png_sample_bytes(data)),
            )
    except Image.DecompressionBombError as exc:
        raise ApiError(413, "too_many_pixels", f"{exc} (limit {max_pixels})") from exc
    except UnidentifiedImageError as exc:
        raise bad_image("not a JPEG, PNG, TIFF or WebP image") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise bad_image(f"unreadable image header ({exc})") from exc
    if header.width <= 0 or header.height <= 0:
        raise bad_image(f"image header says {header.width}x{header.height} pixels")
    if header.width * header.height > max_pixels:
        raise too_many_pixels(header.width, header.height, max_pixels)
    return header


def ends_with_eoi(data: bytes) -> bool:
    """Whether a JPEG ends with its end-of-image marker (a cut-off upload does not)."""
    return data.rstrip(b"\x00\r\n ")[-2:] == b"\xff\xd9"


def decode(data: bytes, max_pixels: int, header: ImageHeader | None = None) -> np.ndarray:
    """Decode to HxWx3 uint8 RGB with EXIF orientation; truncated or corrupt data is a 400.

    OpenCV decodes (about twice as fast as Pillow on camera JPEGs) unless a JPEG lacks its
    end marker: libjpeg would then return a half-grey image, so Pillow, which refuses
    truncated data but accepts bytes after the end marker, decides. Pillow is also the second
    opinion for anything OpenCV cannot read.
    """
    header = header or probe(data, max_pixels)
    if header.format not in ("JPEG", "MPO") or ends_with_eoi(data):
        try:
            return decode_image(data, "upload")
        except ImageReadError:
            pass
    return decode_strict(data, max_pixels)


def decode_strict(data: bytes, max_pixels: int) -> np.ndarray:
    """Pillow decoding that raises on truncated data (LOAD_TRUNCATED_IMAGES stays off)."""
    try:
        with Image.open(io.BytesIO(data), formats=PIL_FORMATS) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
                im = im.convert("RGBA" if "A" in im.mode else "RGB")
            array = np.asarray(im)
    except Image.DecompressionBombError as exc:
        raise ApiError(413, "too_many_pixels", f"{exc} (limit {max_pixels})") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise bad_image(f"the image data is corrupt or truncated ({exc})") from exc
    if array.ndim not in (2, 3) or array.size == 0:
        raise bad_image(f"unsupported pixel layout {array.shape}")
    return to_rgb8(array)
