"""What the renditions of awkward but valid images look like: multi-picture camera JPEGs, 16-bit and palette
PNGs, CMYK, animations, every EXIF orientation; each checked by its pixels against the source."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageCms, ImageOps

from photos import imaging, storage

from .images import camera_mpo, cmyk_profile, halves, image_bytes, jpeg_with_orientation, png_16bit

pytestmark = pytest.mark.django_db


def thumbnail_of(photo, _photo_store) -> Image.Image:
    with Image.open(_photo_store / photo.local_thumbnail_path) as thumb:
        thumb.load()
        return thumb


def display_of(photo, _photo_store) -> Image.Image:
    with Image.open(_photo_store / storage.display_path(photo.local_storage_path)) as display:
        display.load()
        return display


def near(actual, expected, tolerance: int = 8) -> bool:
    """Lossy WebP (and JPEG) move colours a little; a clipped or unscaled value is off by far more."""
    return len(actual) == len(expected) and all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def left_and_right(image: Image.Image) -> tuple[tuple[int, ...], tuple[int, ...]]:
    width, height = image.size
    return image.getpixel((width // 4, height // 2)), image.getpixel((3 * width // 4, height // 2))


# --- multi-picture (MPO) camera JPEGs ---


def test_a_pillow_written_mpo_is_stored_as_its_first_frame(upload, _photo_store):
    first = Image.new("RGB", (1600, 1000), (200, 40, 40))
    second = Image.new("RGB", (1600, 1000), (40, 200, 40))
    buffer = io.BytesIO()
    first.save(buffer, "MPO", save_all=True, append_images=[second])
    with Image.open(io.BytesIO(buffer.getvalue())) as check:
        assert (check.format, check.n_frames) == ("MPO", 2)

    photo = upload("stereo.jpg", buffer.getvalue())

    assert (photo.width, photo.height, photo.mime_type) == (1600, 1000, "image/jpeg")
    assert photo.local_storage_path.endswith(".jpg")
    assert (_photo_store / photo.local_storage_path).read_bytes() == buffer.getvalue()  # the file as uploaded
    thumb = thumbnail_of(photo, _photo_store)
    assert thumb.size == (300, 188)
    assert near(thumb.getpixel((150, 94)), (200, 40, 40))  # the first frame, not the second


def test_a_camera_jpeg_with_a_large_preview_keeps_orientation_renditions_and_size(upload, _photo_store):
    """Exif APP1 with orientation 6, then the MPF index, then the photo, then a full-HD-style preview."""
    data = camera_mpo((1200, 800), orientation=6)
    with Image.open(io.BytesIO(data)) as check:
        assert check.format == "MPO"
        assert check.mpinfo[0xB002][1]["Attribute"]["MPType"] == "Large Thumbnail (Full HD Equivalent)"

    photo = upload("IMG_0001.JPG", data)

    assert (photo.width, photo.height) == (800, 1200)  # turned a quarter by its orientation
    thumb = thumbnail_of(photo, _photo_store)
    display = display_of(photo, _photo_store)
    assert thumb.size == (200, 300)
    assert display.size == (800, 1200)
    # Red left, blue right, turned clockwise: red on top, blue below; none of the preview's green.
    for image in (thumb, display):
        width, height = image.size
        assert near(image.getpixel((width // 2, height // 4)), (220, 30, 30), 20)
        assert near(image.getpixel((width // 2, 3 * height // 4)), (30, 30, 220), 20)


def test_a_large_mpo_is_decoded_at_a_reduced_scale_like_any_jpeg(upload, _photo_store, monkeypatch):
    scales = []
    real_load = Image.Image.load

    def load(self):
        if self.format == "MPO":
            scales.append(self.size)
        return real_load(self)

    monkeypatch.setattr(Image.Image, "load", load)
    photo = upload("big.jpg", camera_mpo((6400, 4800), orientation=1))

    assert (photo.width, photo.height) == (6400, 4800)
    assert scales and scales[0][0] < 6400  # drafted before decoding
    assert display_of(photo, _photo_store).size == (1600, 1200)


# --- 16-bit, palette and transparency: values scaled, never clipped ---

SIZE = (240, 160)


@pytest.mark.parametrize(
    ("color_type", "left", "right", "expected_left", "expected_right"),
    [
        pytest.param(2, (65535, 0, 32896), (2570, 51400, 65535), (255, 0, 128), (10, 200, 255), id="rgb16"),
        pytest.param(6, (65535, 0, 0, 65535), (0, 0, 65535, 32896), (255, 0, 0, 255), (0, 0, 255, 128), id="rgba16"),
        pytest.param(4, (12850, 65535), (51400, 32896), (50, 50, 50, 255), (200, 200, 200, 128), id="la16"),
    ],
)
def test_16_bit_colour_pngs_are_scaled_to_8_bits(
    upload, _photo_store, color_type, left, right, expected_left, expected_right
):
    photo = upload("deep.png", png_16bit(color_type, halves(SIZE, left, right)))

    thumb = thumbnail_of(photo, _photo_store)
    assert thumb.mode == ("RGBA" if len(expected_left) == 4 else "RGB")
    got_left, got_right = left_and_right(thumb)
    assert near(got_left, expected_left) and near(got_right, expected_right), (got_left, got_right)


def test_16_bit_grey_png_is_scaled_not_clipped_to_white(upload, _photo_store):
    grey = Image.new("I;16", SIZE, 10280)  # 40 of 255
    grey.paste(51400, (SIZE[0] // 2, 0, *SIZE))  # 200 of 255
    buffer = io.BytesIO()
    grey.save(buffer, "PNG")

    photo = upload("scan.png", buffer.getvalue())

    for image in (thumbnail_of(photo, _photo_store), display_of(photo, _photo_store)):
        got_left, got_right = left_and_right(image)
        assert near(got_left, (40, 40, 40)) and near(got_right, (200, 200, 200)), (got_left, got_right)


def test_16_bit_grey_with_a_transparent_level_keeps_it_transparent(upload, _photo_store):
    data = png_16bit(0, halves(SIZE, (10280,), (51400,)), trns=(51400).to_bytes(2, "big"))
    photo = upload("key.png", data)
    thumb = thumbnail_of(photo, _photo_store)
    got_left, got_right = left_and_right(thumb)
    assert thumb.mode == "RGBA"
    assert near(got_left, (40, 40, 40, 255)) and got_right[3] == 0


def test_palette_and_grey_alpha_pngs_keep_colours_and_transparency(upload, _photo_store):
    palette = Image.new("P", SIZE, 1)
    palette.putpalette([255, 0, 0, 0, 90, 255])
    palette.paste(0, (SIZE[0] // 2, 0, *SIZE))
    buffer = io.BytesIO()
    palette.save(buffer, "PNG", transparency=0)
    photo = upload("palette.png", buffer.getvalue())
    got_left, got_right = left_and_right(thumbnail_of(photo, _photo_store))
    assert near(got_left, (0, 90, 255, 255)) and got_right[3] == 0

    grey_alpha = Image.new("LA", SIZE, (60, 255))
    grey_alpha.paste((180, 100), (SIZE[0] // 2, 0, *SIZE))
    buffer = io.BytesIO()
    grey_alpha.save(buffer, "PNG")
    photo = upload("grey-alpha.png", buffer.getvalue())
    got_left, got_right = left_and_right(thumbnail_of(photo, _photo_store))
    assert near(got_left, (60, 60, 60, 255)) and near(got_right, (180, 180, 180, 100))


def test_a_large_palette_png_is_shrunk_in_strips_without_seams(upload, _photo_store):
    """Several strips, reduced by 2: bands land where they were, the strips meet without a line."""
    size = (4000, 3000)
    bands = Image.new("P", size, 0)
    bands.putpalette([200, 30, 30, 30, 30, 200, 30, 200, 30])
    bands.paste(1, (0, 1000, size[0], 2000))
    bands.paste(2, (0, 2000, *size))
    buffer = io.BytesIO()
    bands.save(buffer, "PNG")

    photo = upload("bands.png", buffer.getvalue())
    display = display_of(photo, _photo_store)

    assert display.size == (1600, 1200)
    assert near(display.getpixel((800, 200)), (200, 30, 30))
    assert near(display.getpixel((800, 600)), (30, 30, 200))
    assert near(display.getpixel((800, 1000)), (30, 200, 30))
    column = [display.getpixel((800, y)) for y in range(0, 1200)]
    changes = [y for y in range(1, 1200) if not near(column[y], column[y - 1], 12)]
    assert all(380 <= y <= 420 or 780 <= y <= 820 for y in changes), changes  # only at the two band edges


# --- CMYK ---


def cmyk_jpeg(**save_args) -> bytes:
    image = Image.new("CMYK", (400, 300), (0, 255, 255, 0))  # red ink
    image.paste((255, 255, 0, 0), (200, 0, 400, 300))  # blue ink
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95, **save_args)
    return buffer.getvalue()


def test_a_cmyk_jpeg_without_a_profile_is_converted_to_rgb(upload, _photo_store):
    photo = upload("print.jpg", cmyk_jpeg())
    thumb = thumbnail_of(photo, _photo_store)
    got_left, got_right = left_and_right(thumb)
    assert thumb.mode == "RGB" and near(got_left, (255, 0, 0), 12) and near(got_right, (0, 0, 255), 12)


def test_a_cmyk_jpeg_with_its_profile_is_converted_through_it_and_the_profile_not_passed_on(upload, _photo_store):
    profile = cmyk_profile()
    photo = upload("press.jpg", cmyk_jpeg(icc_profile=profile))

    thumb = thumbnail_of(photo, _photo_store)
    expected = ImageCms.applyTransform(
        Image.new("CMYK", (1, 1), (0, 255, 255, 0)),
        ImageCms.buildTransform(
            ImageCms.ImageCmsProfile(io.BytesIO(profile)), ImageCms.createProfile("sRGB"), "CMYK", "RGB"
        ),
    ).getpixel((0, 0))
    assert near(left_and_right(thumb)[0], expected, 12)
    assert not near(expected, (255, 0, 0), 60)  # the profile made a difference
    # An RGB rendition must not claim to be CMYK.
    assert not thumb.info.get("icc_profile")


def test_a_profile_of_another_colour_space_or_a_broken_one_is_not_embedded(upload, _photo_store):
    grey_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    for profile in (grey_profile, b"not a profile at all"):
        photo = upload("tagged.jpg", image_bytes("JPEG", (300, 200), icc_profile=profile))
        assert not thumbnail_of(photo, _photo_store).info.get("icc_profile")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo = upload("srgb.jpg", image_bytes("JPEG", (300, 200), icc_profile=srgb))
    assert thumbnail_of(photo, _photo_store).info.get("icc_profile") == srgb


# --- animations give their first frame ---


@pytest.mark.parametrize(("name", "fmt"), [("moving.webp", "WEBP"), ("moving.png", "PNG")])
def test_an_animated_image_is_stored_with_its_first_frame(upload, _photo_store, name, fmt):
    frames = [Image.new("RGB", (320, 200), colour) for colour in ((220, 30, 30), (30, 220, 30), (30, 30, 220))]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(io.BytesIO(buffer.getvalue())) as check:
        assert check.n_frames == 3

    photo = upload(name, buffer.getvalue())

    assert (photo.width, photo.height) == (320, 200)
    for image in (thumbnail_of(photo, _photo_store), display_of(photo, _photo_store)):
        assert getattr(image, "n_frames", 1) == 1
        assert near(image.getpixel((160, 100)), (220, 30, 30))


# --- EXIF orientation, all eight ---


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_to_the_pixels_and_the_size(upload, _photo_store, orientation):
    source = Image.new("RGB", (400, 200), (30, 30, 220))
    source.paste((220, 30, 30), (0, 0, 200, 100))  # a red top-left quarter
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    source.save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    with Image.open(io.BytesIO(buffer.getvalue())) as original:
        expected = ImageOps.exif_transpose(original)

    photo = upload("turned.jpg", buffer.getvalue())

    assert (photo.width, photo.height) == expected.size
    thumb = thumbnail_of(photo, _photo_store)
    scale = thumb.width / expected.width
    assert thumb.size == (round(expected.width * scale), round(expected.height * scale))
    for x in (0.2, 0.8):
        for y in (0.2, 0.8):
            want = expected.getpixel((int(x * expected.width), int(y * expected.height)))
            got = thumb.getpixel((int(x * thumb.width), int(y * thumb.height)))
            assert near(got, want, 20), (orientation, x, y, got, want)


def test_a_quarter_turned_jpeg_keeps_its_turned_size(upload):
    photo = upload("phone.jpg", jpeg_with_orientation((800, 600), 8))
    assert (photo.width, photo.height) == (600, 800)


def test_the_costliest_accepted_image_fits_the_default_decode_budget():
    from gallery_project import settings as project_settings

    largest = max(imaging.default_sizes())
    side = imaging.MAX_SIDE
    costs = [imaging.decode_cost(fmt, "RGBA", (side, side), largest) for fmt in ("PNG", "WEBP", "HEIF", "JPEG")]
    assert max(costs) <= project_settings.IMAGE_DECODE_MEMORY
