"""Test images built in memory: one for every kind of file the upload validation must accept or refuse."""

from __future__ import annotations

import io
import json
import struct
import zipfile
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


def heic_turned(size: tuple[int, int] = (160, 120), orientation: int = 6) -> bytes:
    """A HEIC, as a phone makes one held upright: the sensor's landscape pixels, stored turned by `orientation`
    (pillow-heif writes it as the file's own rotation), with a blue square in the stored top-left corner."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    image = Image.new("RGB", size, (200, 30, 30))
    image.paste((0, 0, 255), (0, 0, size[0] // 4, size[1] // 4))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "HEIF", exif=exif.tobytes(), quality=90)
    return buffer.getvalue()


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


# --- Awkward but valid images, and hostile ones ---


def png_16bit(color_type: int, rows: list[list[tuple[int, ...]]], *, trns: bytes = b"") -> bytes:
    """A 16-bit PNG written by hand (Pillow writes none but greyscale): rows of samples, each 0..65535.

    Colour types: 0 grey, 2 RGB, 4 grey + alpha, 6 RGBA.
    """
    height, width = len(rows), len(rows[0])
    raw = b"".join(b"\x00" + b"".join(struct.pack(f">{len(p)}H", *p) for p in row) for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    chunks = png_chunk(b"IHDR", header) + (png_chunk(b"tRNS", trns) if trns else b"")
    return b"\x89PNG\r\n\x1a\n" + chunks + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")


def halves(size: tuple[int, int], left: tuple[int, ...], right: tuple[int, ...]) -> list[list[tuple[int, ...]]]:
    width, height = size
    row = [left] * (width // 2) + [right] * (width - width // 2)
    return [row] * height


def with_garbage_pixels(png: bytes) -> bytes:
    """The PNG with its pixel data (IDAT) replaced by noise, every chunk's checksum still right: it passes a
    checksum check and its header reads fine, but its pixels do not decode."""
    out, offset = bytearray(png[:8]), 8
    while offset < len(png):
        length, kind = struct.unpack(">I4s", png[offset : offset + 8])
        data = png[offset + 8 : offset + 8 + length]
        if kind == b"IDAT":
            data = bytes((byte * 37 + 11) % 256 for byte in data)
        out += png_chunk(kind, data)
        offset += 12 + length
    return bytes(out)


def _without_jfif(jpeg: bytes) -> bytes:
    """Pillow's JPEG without the JFIF APP0 segment it writes first, which cameras do not write."""
    assert jpeg[2:4] == b"\xff\xe0"
    return jpeg[:2] + jpeg[4 + struct.unpack(">H", jpeg[4:6])[0] :]


def camera_mpo(size: tuple[int, int] = (1200, 800), orientation: int = 6) -> bytes:
    """A camera JPEG with a large preview, laid out as cameras write them (CIPA DC-007, as in a real
    multi-picture file: Exif APP1 with the orientation, then the MPF APP2 index, big-endian, then the
    primary image's JPEG data, then the preview, a second whole JPEG with Exif of its own).

    The primary image is red on the left and blue on the right; the preview is green all over.
    """
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x0112] = orientation
    primary = Image.new("RGB", size, (220, 30, 30))
    primary.paste((30, 30, 220), (size[0] // 2, 0, size[0], size[1]))
    buffer = io.BytesIO()
    primary.save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    first = _without_jfif(buffer.getvalue())
    buffer = io.BytesIO()
    Image.new("RGB", (size[0] // 4, size[1] // 4), (30, 200, 30)).save(buffer, "JPEG", exif=exif.tobytes())
    preview = _without_jfif(buffer.getvalue())

    assert first[2:4] == b"\xff\xe1"  # SOI, then the Exif APP1, as cameras write them
    app1_end = 4 + struct.unpack(">H", first[4:6])[0]
    # MP index: version, count, two 16-byte entries (primary; "large thumbnail, full HD"), then no next IFD.
    entries_offset = 8 + 2 + 3 * 12 + 4
    index_size = 4 + entries_offset + 32
    primary_length = len(first) + 4 + index_size
    ifd = struct.pack(">H", 3)
    ifd += struct.pack(">HHI4s", 0xB000, 7, 4, b"0100")
    ifd += struct.pack(">HHII", 0xB001, 4, 1, 2)
    ifd += struct.pack(">HHII", 0xB002, 7, 32, entries_offset)
    ifd += struct.pack(">I", 0)
    tiff_start = app1_end + 4 + 4  # the APP2 marker and length, then "MPF\0"
    preview_offset = primary_length - tiff_start
    entries = struct.pack(">IIIHH", 0x20030000, primary_length, 0, 0, 0)
    entries += struct.pack(">IIIHH", 0x00010002, len(preview), preview_offset, 0, 0)
    app2 = jpeg_segment(0xE2, b"MPF\x00" + b"MM\x00\x2a" + struct.pack(">I", 8) + ifd + entries)
    assert len(app2) == 4 + index_size
    return first[:app1_end] + app2 + first[app1_end:] + preview


def cmyk_profile() -> bytes:
    """A minimal CMYK printer profile (ICC v2) whose one table maps every ink mix to one dark grey: a colour
    that no profile-less conversion of the test's inks gives."""
    identity = bytes(range(256))
    fixed = b"".join(struct.pack(">i", value << 16) for value in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    lut = b"mft1" + b"\0" * 4 + bytes([4, 3, 2, 0]) + fixed + identity * 4 + bytes([128, 128, 128]) * 16 + identity * 3
    text = b"test CMYK\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 79
    d50 = struct.pack(">iii", 63190, 65536, 54061)
    tags = [(b"desc", desc), (b"wtpt", b"XYZ " + b"\0" * 4 + d50), (b"A2B0", lut)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = struct.pack(">I", offset + len(body)) + b"lcms" + struct.pack(">I", 0x02100000) + b"prtrCMYKLab "
    header += b"\0" * 12 + b"acsp" + b"\0" * 28 + d50 + b"\0" * 48
    return header + struct.pack(">I", len(tags)) + table + body


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.html", "<script>alert(document.cookie)</script>")
    return buffer.getvalue()
