"""Test images built in memory: one for every kind of file the upload validation must accept or refuse."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, PngImagePlugin


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (640, 480), color=(200, 80, 40), **save_args) -> bytes:
    mode = "RGBA" if fmt in ("PNG", "WEBP") and save_args.pop("alpha", False) else "RGB"
    image = Image.new(mode, size, color)
    # A gradient stripe, so encoders have something to encode and renditions can be told apart.
    for x in range(0, size[0], max(1, size[0] // 16)):
        image.paste((x % 256, 255 - x % 256, 128), (x, 0, min(size[0], x + 4), size[1]))
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


def jpeg_with_orientation(size: tuple[int, int], orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return image_bytes("JPEG", size, exif=exif.tobytes())


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    return data[: int(len(data) * keep)]


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge canvas: a decompression bomb in miniature."""
    data = bytearray(image_bytes("PNG", (120, 120)))
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


# Somewhere in Berlin; any coordinates would do, what matters is that none of them leave in a shared file.
GPS = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0), 0x1B: b"ASCII\x00\x00\x00Berlin"}
XMP_WITH_GPS = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description exif:GPSLatitude="52,31.2N"/></rdf:RDF></x:xmpmeta>'
)


def with_gps(fmt: str = "JPEG", size: tuple[int, int] = (640, 480)) -> bytes:
    """An image carrying EXIF GPS coordinates and an XMP packet that repeats them."""
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x8825] = GPS
    if fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_itxt("XML:com.adobe.xmp", XMP_WITH_GPS)
        return image_bytes(fmt, size, exif=exif.tobytes(), pnginfo=text)
    return image_bytes(fmt, size, exif=exif.tobytes(), xmp=XMP_WITH_GPS.encode())
