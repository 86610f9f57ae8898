"""Test images built in memory: one for every kind of file the upload validation must accept or refuse."""

from __future__ import annotations

import io
import json
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


# --- Files as other programs write them, with what a shared copy must not carry ---

SECRET_PROMPT = "a secret lighthouse at dusk"
LOCATION_ATOM_TEXT = b"+52.5200+013.4050/"


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_text(keyword: str, text: str, kind: bytes = b"tEXt") -> bytes:
    """A text chunk as PNG defines them: plain (tEXt), compressed (zTXt) or international (iTXt)."""
    key, value = keyword.encode("latin-1"), text.encode("utf-8")
    if kind == b"zTXt":
        return png_chunk(kind, key + b"\x00\x00" + zlib.compress(value))
    if kind == b"iTXt":  # keyword, compression flag and method, language, translated keyword, text
        return png_chunk(kind, key + b"\x00\x00\x00\x00\x00" + value)
    return png_chunk(kind, key + b"\x00" + value)


def png_with_chunks(*chunks: bytes, trailer: bytes = b"") -> bytes:
    """A real PNG with these chunks right after its IHDR (where generators and ImageMagick put their text)."""
    data = image_bytes("PNG", (160, 120))
    after_ihdr = len(b"\x89PNG\r\n\x1a\n") + 25
    return data[:after_ihdr] + b"".join(chunks) + data[after_ihdr:] + trailer


def png_chunk_keywords(data: bytes) -> list[tuple[bytes, bytes]]:
    """(chunk type, keyword) of every text chunk, and (type, b"") of the others, in order."""
    found, position = [], 8
    while position + 12 <= len(data):
        length = struct.unpack_from(">I", data, position)[0]
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        found.append((kind, body.split(b"\x00", 1)[0] if kind in (b"tEXt", b"zTXt", b"iTXt") else b""))
        position += 12 + length
    return found


def invokeai_png() -> bytes:
    """A PNG as InvokeAI writes it, plus AUTOMATIC1111's and ComfyUI's chunks, and a title."""
    metadata = {"positive_prompt": SECRET_PROMPT, "seed": 987654321, "model": {"name": "secret-model"}}
    graph = {"nodes": {"positive_prompt": {"type": "string", "value": SECRET_PROMPT}}}
    return png_with_chunks(
        png_text("invokeai_metadata", json.dumps(metadata)),
        png_text("invokeai_graph", json.dumps(graph)),
        png_text("parameters", f"{SECRET_PROMPT}\nSteps: 20, Seed: 987654321, Model: secret-model"),
        png_text("prompt", json.dumps({"3": {"inputs": {"text": SECRET_PROMPT}}}), kind=b"zTXt"),
        png_text("workflow", json.dumps({"nodes": [{"widgets_values": [SECRET_PROMPT]}]}), kind=b"iTXt"),
        png_text("Title", "Lighthouse"),
    )


def imagemagick_png_with_gps() -> bytes:
    """A PNG as ImageMagick converts a camera JPEG: EXIF fields as text chunks, profiles as hex text."""
    return png_with_chunks(
        png_text("exif:GPSLatitude", "52/1, 31/1, 12/1"),
        png_text("exif:GPSLatitudeRef", "N"),
        png_text("exif:GPSLongitude", "13/1, 24/1, 36/1"),
        png_text("exif:GPSLongitudeRef", "E"),
        png_text("Raw profile type iptc", "\niptc\n      14\n1c025a00064265726c696e\n", kind=b"zTXt"),
        png_text("exif:Make", "TestCam"),
        trailer=b"after IEND: " + LOCATION_ATOM_TEXT,
    )


def mp4_box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4_with_location() -> bytes:
    """A small MP4 whose user data holds a location atom, as phones record it in a Motion Photo's video."""
    location = mp4_box(b"\xa9xyz", struct.pack(">HH", len(LOCATION_ATOM_TEXT), 0x15C7) + LOCATION_ATOM_TEXT)
    return (
        mp4_box(b"ftyp", b"mp42\x00\x00\x00\x00isommp42")
        + mp4_box(b"moov", mp4_box(b"udta", location))
        + mp4_box(b"mdat", bytes(256))
    )


MOTION_PHOTO_XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description GCamera:MotionPhoto="1" '
    'Container:Directory="video/mp4"/></rdf:RDF></x:xmpmeta>'
)


def motion_photo() -> tuple[bytes, bytes]:
    """A Motion Photo: a JPEG, and its video appended after the JPEG's end marker. Returns (whole file, JPEG)."""
    jpeg = image_bytes("JPEG", (320, 240), xmp=MOTION_PHOTO_XMP.encode())
    return jpeg + mp4_with_location(), jpeg


def mpo_with_gps_in_second_frame() -> tuple[bytes, bytes]:
    """A camera MPO: the photo, then a second frame (here with GPS) after the first one's end marker.

    Returns (the file, the first frame's pixels)."""
    first = Image.new("RGB", (320, 240), (30, 120, 200))
    second = Image.new("RGB", (320, 240), (200, 120, 30))
    camera, located = Image.Exif(), Image.Exif()
    camera[0x010F] = located[0x010F] = "TestCam"
    located[0x8825] = GPS
    # Pillow writes each appended frame with that frame's own encoderinfo.
    second.encoderinfo = {"exif": located.tobytes()}
    buffer = io.BytesIO()
    first.save(buffer, "MPO", save_all=True, append_images=[second], exif=camera.tobytes())
    return buffer.getvalue(), first.tobytes()


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def iptc_segment(city: str = "Berlin") -> bytes:
    """Photoshop's APP13 with an IPTC record naming the city (dataset 2:90)."""
    dataset = b"\x1c\x02\x5a" + struct.pack(">H", len(city)) + city.encode()
    resource = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(dataset)) + dataset + b"\x00" * (len(dataset) % 2)
    return jpeg_segment(0xED, b"Photoshop 3.0\x00" + resource)


def jpeg_with_generation_text() -> bytes:
    """A JPEG as AUTOMATIC1111 saves one (its parameters in EXIF UserComment), with a description, a
    comment and an IPTC city."""
    exif = Image.Exif()
    exif[0x010E] = SECRET_PROMPT
    exif.get_ifd(0x8769)[0x9286] = b"ASCII\x00\x00\x00" + f"{SECRET_PROMPT}, Steps: 20".encode()
    data = image_bytes("JPEG", (320, 240), exif=exif.tobytes(), comment=SECRET_PROMPT.encode())
    return data[:2] + iptc_segment() + data[2:]
