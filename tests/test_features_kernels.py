"""The feature kernels (softmax_exp.features.hog, .color_histogram) against the course's code, CS231n
assignment 1 ``features.py``, transcribed below as the reference: equal to the bit on random and structured
images, and the generalisation (any cell, bin count and image size) equal to the course's code wherever the
course's code works."""

from __future__ import annotations

import matplotlib
import matplotlib.colors
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.ndimage import uniform_filter

from softmax_exp.features.color_histogram import hue_histogram
from softmax_exp.features.hog import hog_dim, hog_features

# --------------------------------------------------------------------------------------------------------
# The reference: the course's code as it is (rgb2gray's 0.144 included).
# --------------------------------------------------------------------------------------------------------


def rgb2gray(rgb):
    return np.dot(rgb[..., :3], [0.299, 0.587, 0.144])  # sic: the course's 0.144


def hog_feature(im):
    if im.ndim == 3:
        image = rgb2gray(im)
    else:
        image = np.atleast_2d(im)
    sx, sy = image.shape
    orientations = 9
    cx, cy = (8, 8)
    gx = np.zeros(image.shape)
    gy = np.zeros(image.shape)
    gx[:, :-1] = np.diff(image, n=1, axis=1)
    gy[:-1, :] = np.diff(image, n=1, axis=0)
    grad_mag = np.sqrt(gx**2 + gy**2)
    grad_ori = np.arctan2(gy, (gx + 1e-15)) * (180 / np.pi) + 90
    n_cellsx = int(np.floor(sx / cx))
    n_cellsy = int(np.floor(sy / cy))
    orientation_histogram = np.zeros((n_cellsx, n_cellsy, orientations))
    for i in range(orientations):
        temp_ori = np.where(grad_ori < 180 / orientations * (i + 1), grad_ori, 0)
        temp_ori = np.where(grad_ori >= 180 / orientations * i, temp_ori, 0)
        cond2 = temp_ori > 0
        temp_mag = np.where(cond2, grad_mag, 0)
        orientation_histogram[:, :, i] = uniform_filter(temp_mag, size=(cx, cy))[
            round(cx / 2) :: cx, round(cy / 2) :: cy
        ].T
    return orientation_histogram.ravel()


def color_histogram_hsv(im, nbin=10, xmin=0, xmax=255, normalized=True):
    bins = np.linspace(xmin, xmax, nbin + 1)
    hsv = matplotlib.colors.rgb_to_hsv(im / xmax) * xmax
    imhist, bin_edges = np.histogram(hsv[:, :, 0], bins=bins, density=normalized)
    imhist = imhist * np.diff(bin_edges)
    return imhist


def hog_feature_general(im, cell=8, orientations=9):
    """The course's hog_feature with three changes where it fails: ``cell`` and ``orientations`` as
    arguments; the filtered image sampled at ``cell // 2`` (the course's ``round(cx / 2)``, the same for an
    even cell; for an odd one, the centre of the cell's own window) and only at the ``H // cell`` x
    ``W // cell`` whole cells; the histogram laid out as (cell columns, cell rows, bins), which the course's
    ``.T`` assumes (its shape is only right for a square grid)."""
    if im.ndim == 3:
        image = rgb2gray(im)
    else:
        image = np.atleast_2d(im)
    sx, sy = image.shape
    cx, cy = (cell, cell)
    gx = np.zeros(image.shape)
    gy = np.zeros(image.shape)
    gx[:, :-1] = np.diff(image, n=1, axis=1)
    gy[:-1, :] = np.diff(image, n=1, axis=0)
    grad_mag = np.sqrt(gx**2 + gy**2)
    grad_ori = np.arctan2(gy, (gx + 1e-15)) * (180 / np.pi) + 90
    n_cellsx = sx // cx
    n_cellsy = sy // cy
    orientation_histogram = np.zeros((n_cellsy, n_cellsx, orientations))
    for i in range(orientations):
        temp_ori = np.where(grad_ori < 180 / orientations * (i + 1), grad_ori, 0)
        temp_ori = np.where(grad_ori >= 180 / orientations * i, temp_ori, 0)
        cond2 = temp_ori > 0
        temp_mag = np.where(cond2, grad_mag, 0)
        orientation_histogram[:, :, i] = uniform_filter(temp_mag, size=(cx, cy))[
            cx // 2 : n_cellsx * cx : cx, cy // 2 : n_cellsy * cy : cy
        ].T
    return orientation_histogram.ravel()


def reference_hog(images, cell=8, bins=9, general=False):
    """(n, F): the course's HOG of each image; a 1-channel image's grey values are its pixels as float64
    (the course's code given them as uint8 would difference them in uint8, wrapping 0 - 1 to 255)."""
    grey = images[..., 0].astype(np.float64) if images.shape[-1] == 1 else images
    if not general and (cell, bins) == (8, 9):
        rows = [hog_feature(im) for im in grey]
    else:
        rows = [hog_feature_general(im, cell, bins) for im in grey]
    return np.array(rows).reshape(len(images), -1)


def reference_hue(images, bins=10):
    """(n, bins): the course's hue histogram of each image; a 1-channel image as its channel repeated."""
    rgb = np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images
    return np.array([color_histogram_hsv(im, nbin=bins) for im in rgb]).reshape(len(images), bins)


# --------------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------------


def random_images(n, H=32, W=32, C=3, seed=0, high=256):
    return np.random.default_rng(seed).integers(0, high, (n, H, W, C), dtype=np.uint8)


def structured_images(H=32, W=32, seed=0):
    """(m, H, W, 3) uint8: constants, ramps, edges (exact-0 and 180-degree orientations among them),
    stripes, checkerboards, blocks, single pixels and few-valued noise, grey and coloured."""
    rng = np.random.default_rng(seed)
    r = np.arange(H)[:, None] * np.ones((1, W))
    c = np.ones((H, 1)) * np.arange(W)[None, :]
    planes = [
        np.zeros((H, W)),
        np.full((H, W), 255.0),
        np.full((H, W), 77.0),
        c,  # horizontal gradients only: orientation 90 (or 270 to the left)
        255 - 7 * c,
        r,  # vertical gradients only, small: just under 180 degrees
        8 * r,  # large: exactly 180, in no bin
        255 - 8 * r,  # darkening downwards: orientation exactly 0, in no bin
        255 - r,  # small: just over 0
        r + c,
        3 * r + 2 * c,
        255 - 5 * r - 2 * c,
        (r // 5 % 2) * 255,  # horizontal edges
        (r // 3 % 2) * 40 + 100,
        (c // 4 % 2) * 255,  # vertical edges
        ((r + c) % 2) * 255,  # 1-pixel checkerboard: |gx| == |gy|
        ((r // 4 + c // 4) % 2) * 200,
        np.kron(rng.integers(0, 256, (H // 4 + 1, W // 4 + 1)), np.ones((4, 4)))[:H, :W],  # blocks
        rng.integers(0, 3, (H, W)),
        rng.integers(0, 2, (H, W)) * 255,
        (r == H // 2) * 255,  # one bright row
    ]
    spot = np.zeros((H, W))
    spot[H // 3, W // 2] = 255
    planes.append(spot)
    images = []
    for p in planes:
        p = np.clip(p, 0, 255).astype(np.uint8)
        z = np.zeros_like(p)
        images += [
            np.stack([p, p, p], -1),
            np.stack([p, z, z], -1),
            np.stack([z, p, z], -1),
            np.stack([z, z, p], -1),
            np.stack([p, 255 - p, p // 2], -1),
        ]
    # colour gradients: each channel its own ramp
    for a, b, d in [(8, 0, 0), (0, 8, 0), (4, 4, 4), (7, 3, 1)]:
        red = np.clip(a * c, 0, 255)
        green = np.clip(b * r, 0, 255)
        blue = np.clip(d * (r + c), 0, 255)
        images.append(np.stack([red, green, blue], -1).astype(np.uint8))
    return np.array(images)


def assert_bit_equal(got, want):
    assert got.shape == want.shape and got.dtype == want.dtype == np.float64
    diff = np.flatnonzero(got.ravel() != want.ravel())
    assert diff.size == 0, f"{diff.size} of {got.size} values differ, first at flat index {diff[0]}"


# --------------------------------------------------------------------------------------------------------
# HOG
# --------------------------------------------------------------------------------------------------------


def test_hog_equals_course_code_on_random_cifar_images():
    images = random_images(300)
    assert_bit_equal(hog_features(images), reference_hog(images))


def test_hog_equals_course_code_on_structured_images():
    images = structured_images()
    assert_bit_equal(hog_features(images), reference_hog(images))
    assert_bit_equal(hog_features(images[..., :1]), reference_hog(images[..., :1]))


def test_hog_quirks_are_kept():
    """Horizontal edges: an orientation of exactly 0 (darker downwards) or 180 (brighter) counts in no bin,
    so the HOG of horizontal stripes is 0; a small vertical gradient (179.99... degrees) counts in the
    last bin."""
    r = np.arange(32)[:, None] * np.ones((1, 32))
    for plane, last_bin_empty in [((r // 4 % 2) * 200, True), (r, False)]:
        image = np.repeat(plane.astype(np.uint8)[None, :, :, None], 3, axis=-1)
        got = hog_features(image)
        assert_bit_equal(got, reference_hog(image))
        assert np.all(got.reshape(16, 9)[:, :8] == 0)
        assert np.all(got.reshape(16, 9)[:, 8] == 0) == last_bin_empty


@pytest.mark.parametrize(
    "shape",
    [(32, 32, 3), (16, 16, 3), (8, 8, 3), (36, 36, 3), (44, 44, 3), (8, 8, 1), (16, 16, 1), (32, 32, 1)],
)
def test_hog_equals_course_code_where_it_works(shape):
    """Square cell grids with a remainder of at most cell / 2 (beyond, the course samples a cell too many)."""
    H, W, C = shape
    images = np.concatenate([random_images(20, H, W, C, seed=H + C), structured_images(H, W)[:, :, :, :C]])
    assert_bit_equal(hog_features(images), reference_hog(images))
    assert_bit_equal(reference_hog(images, general=True), reference_hog(images))  # the generalisation


@pytest.mark.parametrize("shape", [(40, 24, 3), (24, 40, 3), (37, 37, 3), (39, 33, 1), (8, 64, 3)])
def test_hog_generalises_to_any_image_size(shape):
    H, W, C = shape
    images = np.concatenate([random_images(10, H, W, C, seed=W), structured_images(H, W)[:, :, :, :C]])
    got = hog_features(images)
    assert got.shape == (len(images), (H // 8) * (W // 8) * 9)
    assert_bit_equal(got, reference_hog(images, general=True))
    with pytest.raises(ValueError):  # the course's own code breaks on these
        hog_feature(images[0, :, :, 0].astype(np.float64))


@pytest.mark.parametrize(
    ("cell", "bins"), [(4, 9), (8, 4), (6, 12), (16, 9), (8, 2), (3, 9), (5, 7), (1, 3), (2, 1)]
)
def test_hog_other_cells_and_bins(cell, bins):
    images = np.concatenate([random_images(8, 20, 27, 3, seed=cell), structured_images(20, 27)])
    got = hog_features(images, cell=cell, bins=bins)
    assert got.shape == (len(images), hog_dim(images.shape[1:], cell, bins))
    assert_bit_equal(got, reference_hog(images, cell, bins, general=True))


@settings(max_examples=40, deadline=None)
@given(
    images=st.integers(8, 20).flatmap(
        lambda H: st.integers(8, 20).flatmap(
            lambda W: st.sampled_from([1, 3]).flatmap(
                lambda C: hnp.arrays(
                    np.uint8, (2, H, W, C), elements=st.sampled_from([0, 1, 2, 100, 254, 255])
                )
            )
        )
    ),
    cell=st.sampled_from([2, 3, 4, 8]),
    bins=st.sampled_from([1, 4, 9]),
)
def test_hog_property_few_valued_images(images, cell, bins):
    """Few distinct values: many ties (gx == 0, |gx| == |gy|), where the order of operations counts."""
    assert_bit_equal(hog_features(images, cell, bins), reference_hog(images, cell, bins, general=True))


def test_hog_dims():
    assert hog_dim((32, 32, 3)) == hog_dim((32, 32), 8, 9) == 144
    assert hog_dim((40, 24, 3), 8, 9) == 5 * 3 * 9
    assert hog_features(random_images(2)).shape == (2, 144)


# --------------------------------------------------------------------------------------------------------
# Hue histogram
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(32, 32, 3), (40, 24, 3), (1, 1, 3), (5, 3, 3)])
def test_hue_equals_course_code(shape):
    images = random_images(200, *shape, seed=shape[0])
    if shape[0] >= 8:
        images = np.concatenate([images, structured_images(*shape[:2])])
    got = hue_histogram(images)
    assert got.shape == (len(images), 10)
    assert_bit_equal(got, reference_hue(images))
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-14)


@pytest.mark.parametrize("bins", [1, 3, 7, 10, 16, 255])
def test_hue_other_bin_counts(bins):
    images = np.concatenate([random_images(30, 12, 10, 3, seed=bins), structured_images(12, 10)])
    assert_bit_equal(hue_histogram(images, bins), reference_hue(images, bins))


def test_hue_of_grey_images_is_all_in_bin_0():
    """1 channel: every pixel grey (r == g == b), hue 0, all the mass in bin 0, as the course's code gives
    for the channel repeated three times."""
    images = random_images(20, 16, 16, 1)
    got = hue_histogram(images)
    assert_bit_equal(got, reference_hue(images))
    assert np.all(got[:, 1:] == 0) and np.allclose(got[:, 0], 1.0, rtol=0, atol=1e-15)


def test_hue_bin_of_every_colour_on_a_grid():
    """Colours on a grid of step 5 (52^3), each a 1 x 1 image: its bin is the one np.histogram gives its
    matplotlib hue (edges closed on the left, the last on both sides)."""
    levels = np.arange(0, 256, 5, dtype=np.uint8)
    colours = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 1, 1, 3)
    hue = matplotlib.colors.rgb_to_hsv(colours[:, 0, 0] / 255)[:, 0] * 255
    edges = np.linspace(0, 255, 11)
    want = np.minimum(np.searchsorted(edges, hue, side="right") - 1, 9)
    got = hue_histogram(colours)
    assert np.array_equal(np.argmax(got, axis=1), want)
    assert np.all(np.count_nonzero(got, axis=1) == 1)


def test_hue_on_and_next_to_bin_edges():
    """Colours whose hue is exactly an edge (76.5, 127.5, 153, 229.5; 0 for the greys) count in the bin on
    the right of the edge, as in np.histogram; colours within 1e-9 below or above an edge, on their side."""
    on = [[1, 5, 0], [0, 1, 1], [0, 2, 5], [5, 0, 3], [10, 10, 10]]
    near = [
        [5, 3, 0],
        [4, 5, 0],
        [33, 37, 32],
        [0, 5, 2],
        [31, 33, 36],
        [34, 33, 38],
        [4, 0, 5],
        [35, 30, 33],
        [35, 33, 30],
        [27, 33, 3],
        [34, 38, 33],
        [12, 147, 66],
        [59, 65, 74],
        [1, 0, 5],
        [33, 21, 36],
        [33, 28, 31],
    ]
    colours = np.array(on + near, dtype=np.uint8)
    edges = np.linspace(0, 255, 11)
    hue = matplotlib.colors.rgb_to_hsv(colours / 255)[:, 0] * 255
    distance = np.abs(hue[:, None] - edges[None, :]).min(axis=1)
    assert np.all(distance[: len(on)] == 0) and np.all(
        (distance[len(on) :] > 0) & (distance[len(on) :] < 1e-9)
    )
    images = np.broadcast_to(colours[:, None, None, :], (len(colours), 4, 4, 3)).copy()
    images[:, 0, 0] = [3, 200, 90]  # one other pixel each
    assert_bit_equal(hue_histogram(images), reference_hue(images))


# --------------------------------------------------------------------------------------------------------
# Both: threads, empty batches, bad input
# --------------------------------------------------------------------------------------------------------


def test_results_do_not_depend_on_the_thread_count():
    images = np.concatenate([random_images(150, seed=5), structured_images()])
    before = numba.get_num_threads()
    results = []
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(threads)
            results.append((hog_features(images), hue_histogram(images), hog_features(images[..., :1], 4, 6)))
    finally:
        numba.set_num_threads(before)
    for got in results[1:]:
        for a, b in zip(got, results[0], strict=True):
            assert_bit_equal(a, b)


def test_no_images():
    assert hog_features(np.zeros((0, 32, 32, 3), np.uint8)).shape == (0, 144)
    assert hog_features(np.zeros((0, 16, 8, 1), np.uint8), 4, 5).shape == (0, 4 * 2 * 5)
    assert hue_histogram(np.zeros((0, 32, 32, 3), np.uint8)).shape == (0, 10)
    assert hue_histogram(np.zeros((0, 5, 5, 1), np.uint8), 7).shape == (0, 7)


def test_non_contiguous_images():
    images = random_images(6, 32, 64)[:, :, ::2]
    assert_bit_equal(hog_features(images), reference_hog(images))
    assert_bit_equal(hue_histogram(images), reference_hue(images))


OK = np.zeros((2, 32, 32, 3), np.uint8)
BAD_INPUTS = [
    (hog_features, (OK[0],), {}, "images"),
    (hog_features, (OK.astype(np.float64),), {}, "uint8"),
    (hog_features, (OK.tolist(),), {}, "images"),
    (hog_features, (np.zeros((2, 32, 32, 4), np.uint8),), {}, "channels"),
    (hog_features, (np.zeros((2, 32, 32, 2), np.uint8),), {}, "channels"),
    (hog_features, (OK,), {"cell": 0}, "cell"),
    (hog_features, (OK,), {"cell": 2.0}, "cell"),
    (hog_features, (OK,), {"bins": 0}, "bins"),
    (hog_features, (OK,), {"bins": True}, "bins"),
    (hog_features, (np.zeros((2, 7, 32, 3), np.uint8),), {}, "one cell"),
    (hog_features, (OK,), {"cell": 33}, "one cell"),
    (hue_histogram, (OK[0],), {}, "images"),
    (hue_histogram, (OK.astype(np.int16),), {}, "uint8"),
    (hue_histogram, (np.zeros((2, 32, 32, 4), np.uint8),), {}, "channels"),
    (hue_histogram, (OK,), {"bins": 0}, "bins"),
    (hue_histogram, (OK,), {"bins": -3}, "bins"),
    (hue_histogram, (np.zeros((2, 0, 32, 3), np.uint8),), {}, "pixel"),
    (hog_dim, ((32,), 8, 9), {}, "image_shape"),
    (hog_dim, ((32, 32, 3), 0, 9), {}, "cell"),
    (hog_dim, ((4, 32, 3), 8, 9), {}, "one cell"),
]


@pytest.mark.parametrize(("func", "args", "kwargs", "words"), BAD_INPUTS)
def test_bad_input_is_one_line_value_error(func, args, kwargs, words):
    with pytest.raises(ValueError, match=words) as info:
        func(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "got" in message
