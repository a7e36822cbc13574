"""Photos and drawings of digits: mnist_style against uneven light, shadows, noise, specks,
coloured ink and paper, thin strokes and EXIF orientation; predict --show."""
import dataclasses
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

import tinygrad_mnist as tg
from data_helpers import isolated_env  # noqa: F401 - autouse fixture
from tinygrad_mnist.app import cli
from tinygrad_mnist.models import build_model
from tinygrad_mnist.app.config import TrainConfig
from tinygrad_mnist.data import fashion_style, fit_to_mnist_box, load_image, mnist_style
from tinygrad_mnist.data.photos import components, float_planes, is_photo, otsu_threshold
from tinygrad_mnist.app.predict import predict

W, H = 320, 260


def three(width=14, size=(W, H), offset=(0, 0)):
    """Coverage (0..1) of a handwritten-looking '3' on a canvas: two arcs."""
    im = Image.new("L", size, 0)
    draw = ImageDraw.Draw(im)
    ox, oy = 110 + offset[0], 40 + offset[1]
    draw.arc([ox, oy, ox + 100, oy + 90], 200, 90, fill=255, width=width)
    draw.arc([ox - 5, oy + 80, ox + 105, oy + 180], 270, 160, fill=255, width=width)
    return np.asarray(im.filter(ImageFilter.GaussianBlur(1)), np.float64) / 255


def paper(coverage, paper_rgb=(235, 232, 225), ink_rgb=(25, 25, 30)):
    cov = coverage[..., None]
    return np.array(paper_rgb, float) * (1 - cov) + np.array(ink_rgb, float) * cov


def as_uint8(rgb):
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def similarity(a, b):
    """Correlation of two 28x28 images, allowing a shift of one pixel (the centre of mass
    is rounded to whole pixels)."""
    padded = np.pad(a, 1)
    return max(float(np.corrcoef(padded[1 + dy:29 + dy, 1 + dx:29 + dx].ravel(),
                                 b.ravel())[0, 1])
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


@pytest.fixture(scope="module")
def clean():
    return mnist_style(as_uint8(paper(three())))


def gradient(amplitude, angle=0.6):
    yy, xx = np.mgrid[0:H, 0:W]
    ramp = ((xx - W / 2) * np.cos(angle) + (yy - H / 2) * np.sin(angle)) / (max(W, H) / 2)
    return amplitude * ramp[..., None]


def shadow(depth=0.45, blur=4):
    yy, xx = np.mgrid[0:H, 0:W]
    edge = Image.fromarray(((xx * 0.8 - yy + 40) > 0).astype(np.uint8) * 255)
    soft = np.asarray(edge.filter(ImageFilter.GaussianBlur(blur)), float) / 255
    return 1 - depth * soft[..., None]


def test_the_clean_drawing_is_mnist_like(clean):
    assert clean.shape == (28, 28) and clean.dtype == np.float32 and clean.max() == 1
    rows, cols = np.flatnonzero(clean.max(1) > 0.2), np.flatnonzero(clean.max(0) > 0.2)
    assert 18 <= np.ptp(rows) + 1 <= 21 and np.ptp(cols) + 1 <= 21
    assert clean[0].max() == 0 and clean[:, 0].max() == 0


@pytest.mark.parametrize("amplitude", [25, 60])
def test_a_lighting_gradient_is_not_ink(clean, amplitude):
    """The issue's photo: a clear '3' with a gradient of +-25 grey levels."""
    for angle in (0.0, 1.2, 2.5):
        out = mnist_style(as_uint8(paper(three()) + gradient(amplitude, angle)))
        assert similarity(out, clean) > 0.95, angle


def test_a_shadow_across_the_page_is_not_ink(clean):
    for depth, blur in ((0.3, 1), (0.5, 6)):
        out = mnist_style(as_uint8(paper(three()) * shadow(depth, blur) + gradient(25)))
        assert similarity(out, clean) > 0.93
        assert out[out > 0.2].mean() > 0.6       # the shadowed strokes are not faint


def test_noise_and_specks(clean):
    rng = np.random.default_rng(0)
    cov = three()
    for y, x in ((20, 20), (230, 300), (200, 40), (30, 280)):
        cov[y:y + 4, x:x + 4] = 1.0                    # pen specks far from the digit
    rgb = paper(cov) + rng.normal(0, 12, (H, W, 3))
    out = mnist_style(as_uint8(rgb))
    assert similarity(out, clean) > 0.93


def test_coloured_ink_on_coloured_paper(clean):
    for paper_rgb, ink_rgb in (((240, 230, 120), (30, 40, 170)),   # blue on yellow
                               ((90, 160, 90), (200, 60, 60)),     # red on green: same grey
                               ((250, 250, 250), (200, 30, 30))):  # red pen on white
        out = mnist_style(as_uint8(paper(three(), paper_rgb, ink_rgb)))
        assert similarity(out, clean) > 0.93, (paper_rgb, ink_rgb)


def test_light_ink_on_a_dark_board(clean):
    out = mnist_style(as_uint8(paper(three(), (40, 45, 40), (230, 230, 220)) + gradient(20)))
    assert similarity(out, clean) > 0.95


def test_thin_strokes_are_thickened_thick_ones_kept(clean):
    thin = mnist_style(as_uint8(paper(three(width=2))))
    assert similarity(thin, clean) > 0.85
    assert (thin > 0.5).sum() >= 0.5 * (clean > 0.5).sum()   # not a faint hairline
    thick = mnist_style(as_uint8(paper(three(width=26))))
    assert (thick > 0.5).sum() > (clean > 0.5).sum()


def test_exif_orientation_is_applied(tmp_path, clean):
    upright = Image.fromarray(as_uint8(paper(three()) + gradient(25)))
    exif = Image.Exif()
    exif[0x0112] = 6                     # "rotate 90 clockwise to view": stored turned
    upright.transpose(Image.ROTATE_90).save(tmp_path / "phone.jpg", quality=85, exif=exif)
    read = load_image(tmp_path / "phone.jpg", color=True)
    assert read.shape == (H, W, 3)
    assert similarity(mnist_style(read), clean) > 0.93
    assert load_image(tmp_path / "phone.jpg").shape == (H, W)


def test_a_big_phone_photo_is_quick(clean):
    big = np.asarray(Image.fromarray(as_uint8(paper(three()) + gradient(30))).resize(
        (3200, 2600), Image.BILINEAR))
    start = time.perf_counter()
    out = mnist_style(big)
    assert time.perf_counter() - start < 2.0
    assert similarity(out, clean) > 0.93


def soft_ring(width):
    """A scanned '0' with thick soft strokes, as an 8x8 digit upscaled to 64x64 has them:
    its ink coverage (0..1) and the scan (dark ink on white, uint8)."""
    im = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(im).ellipse([12, 4, 52, 60], outline=255, width=width)
    coverage = np.asarray(im.filter(ImageFilter.GaussianBlur(3)), np.float64) / 255
    return coverage, as_uint8(255 - 255 * coverage)


def test_clean_pages_and_photos_are_told_apart():
    rng = np.random.default_rng(1)
    drawing = np.full((112, 112), 255, np.uint8)
    drawing[20:90, 50:62] = 0                                     # the page's canvas
    clean = {"flat paper": as_uint8(paper(three())), "soft scan": soft_ring(12)[1],
             "canvas": drawing, "light on black": 255 - drawing,
             "faint noise": as_uint8(paper(three()) + rng.normal(0, 2, (H, W, 3)))}
    photos = {"gradient": as_uint8(paper(three()) + gradient(25)),
              "shadow": as_uint8(paper(three()) * shadow(0.3, 1)),
              "noise": as_uint8(paper(three()) + rng.normal(0, 12, (H, W, 3))),
              "colour only": as_uint8(paper(three(), (90, 160, 90), (200, 60, 60)))}
    assert [name for name, im in clean.items() if is_photo(float_planes(im))] == []
    assert [name for name, im in photos.items() if not is_photo(float_planes(im))] == []


@pytest.mark.parametrize("width", [8, 12, 16])
def test_a_soft_scan_keeps_its_strokes_and_grey_levels(width):
    """Thick soft strokes on a clean page come back as they are: the photo steps'
    background estimate and threshold took ink from such strokes."""
    coverage, scan = soft_ring(width)
    ideal = fit_to_mnist_box(coverage / coverage.max())
    out = mnist_style(scan)
    assert np.corrcoef(out.ravel(), ideal.ravel())[0, 1] > 0.97
    assert 0.85 < out.sum() / ideal.sum() < 1.15
    inked = out > 0.05
    assert ((out < 0.95) & inked).sum() > 0.3 * inked.sum()     # grey levels, not a mask


def test_connected_pieces_and_otsu():
    mask = np.zeros((6, 8), bool)
    mask[0:2, 0:2] = True
    mask[2, 2] = True                   # touches the first piece diagonally
    mask[4:6, 5:8] = True
    labels = components(mask)
    assert labels[0, 0] == labels[2, 2] != labels[5, 7] and labels[3, 0] == 0
    assert len(np.unique(labels[mask])) == 2
    values = np.concatenate([np.full(100, 0.1), np.full(50, 0.8)])
    assert 0.1 < otsu_threshold(values) <= 0.8


def test_predict_show_writes_what_the_model_saw(tmp_path, capsys):
    config = TrainConfig.from_dict({"hidden": [8]})
    tg.save({"format": "tinygrad_mnist.model", "model": build_model(config).state_dict(),
             "config": dataclasses.asdict(config), "stats": [0.13, 0.31], "epoch": 1,
             "val_acc": 0.5}, tmp_path / "model.npz")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(as_uint8(paper(three()) * shadow())).save(photos / "three.jpg")
    Image.new("L", (40, 40), 255).save(photos / "blank.png")
    results, _ = predict(tmp_path / "model.npz", [photos], show=tmp_path / "seen")
    assert [r.error is None for r in results] == [False, True]     # blank.png, three.jpg
    shown = sorted((tmp_path / "seen").iterdir())
    assert [p.name for p in shown] == ["0001_three.png"]
    picture = Image.open(shown[0])
    assert picture.height == 224 + 22 and picture.width > 224 * 2
    assert cli.main(["predict", str(tmp_path / "model.npz"), str(photos / "three.jpg"),
                     "--show", str(tmp_path / "seen2")]) == 0
    assert len(list((tmp_path / "seen2").iterdir())) == 1
    capsys.readouterr()


# ------------------------------------------------------------ photos of objects
def garment(rng):
    """A 28x28 Fashion-MNIST-like object touching the frame: a textured shirt shape."""
    image = np.zeros((28, 28))
    image[2:26, 7:21] = 0.8                          # body
    image[2:12, 1:27] = 0.8                          # sleeves
    image[2:5, 11:17] = 0.0                          # neckline
    return np.clip(image * (1 + 0.1 * rng.standard_normal((28, 28))), 0, 1) * (image > 0)


@pytest.mark.parametrize("dark_on_light", [True, False])
def test_a_photo_of_an_object_looks_like_fashion_mnist(dark_on_light):
    rng = np.random.default_rng(4)
    truth = garment(rng)
    scene = np.pad(truth, ((20, 30), (40, 10)))          # off centre on a larger sheet
    photo = np.asarray(Image.fromarray((scene * 255).astype(np.uint8)).resize(
        (scene.shape[1] * 6, scene.shape[0] * 6), Image.BILINEAR), dtype=np.float64)
    photo = (255 - photo) * 0.9 if dark_on_light else photo * 0.9 + 20   # dim paper/light
    photo = np.clip(photo + rng.normal(0, 4, photo.shape), 0, 255).astype(np.uint8)
    seen = fashion_style(np.stack([photo] * 3, axis=-1))   # colour input too
    assert seen.shape == (28, 28) and seen.dtype == np.float32
    assert seen[:, 0].max() > 0.3 and seen[:, -1].max() > 0.3  # the long side (width) is 28
    assert seen[14, 14] > 0.5 and seen[27, 0] < 0.1           # light object on black
    ideal = fashion_style(truth)        # the clean object, trimmed and fitted the same way
    assert np.corrcoef(seen.ravel(), ideal.ravel())[0, 1] > 0.95


def test_an_empty_photo_has_no_object():
    with pytest.raises(ValueError, match="no object found"):
        fashion_style(np.full((50, 60), 200, np.uint8))
