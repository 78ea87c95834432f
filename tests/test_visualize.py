"""visualize: the colour map, the heatmap over a photo, and its scale bar."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gid_pipeline import GIDInputError
from gid_pipeline.media.visualize import colormap, heatmap_overlay, with_scale_bar

# Nine points of the inferno map (matplotlib's), dark purple to pale yellow.
INFERNO_STOPS = np.array([(0, 0, 4), (31, 12, 72), (85, 15, 109), (136, 34, 106), (186, 54, 85), (227, 89, 51),
                          (249, 140, 10), (249, 201, 50), (252, 255, 164)])  # fmt: skip

GREY = np.full((40, 60, 3), 100, np.uint8)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(float) @ np.array([0.299, 0.587, 0.114])


def test_colormap_runs_from_dark_to_bright_through_the_stops_and_clips():
    colours = colormap(np.linspace(0, 1, 9))
    assert np.abs(colours.astype(int) - INFERNO_STOPS).max() <= 2
    ramp = luminance(colormap(np.linspace(0, 1, 256)))
    assert np.all(np.diff(ramp) >= -0.5)  # luminance rises: the map reads in grey scale too
    assert np.array_equal(colormap(np.array([-3.0, 7.0])), colormap(np.array([0.0, 1.0])))
    assert colormap(np.zeros((2, 3))).shape == (2, 3, 3)


def test_where_nothing_moves_the_photo_shows_desaturated_and_motion_gets_colour():
    photo = GREY.copy()
    photo[..., 0] = 200  # a reddish photo: desaturating pulls red towards grey
    values = np.zeros((40, 60))
    values[10:20, 30:50] = 4.0
    picture, vmax = heatmap_overlay(photo, values)
    assert vmax == pytest.approx(4.0)  # the 99th percentile: 200 of 2400 pixels move
    grey = luminance(photo[:1, :1])[0, 0]
    assert np.allclose(picture[0, 0], 0.5 * photo[0, 0] + 0.5 * grey, atol=1)
    # At vmax the colour is the map's top (pale yellow), 80 % over the photo.
    expected = 0.2 * (0.5 * photo[15, 40] + 0.5 * grey) + 0.8 * INFERNO_STOPS[-1]
    assert np.allclose(picture[15, 40], expected, atol=1)
    assert picture.shape == photo.shape and picture.dtype == np.uint8


def test_a_coarser_map_is_resized_to_the_photo_and_a_given_vmax_is_kept():
    values = torch.zeros(20, 30)
    values[:, 15:] = 1.0  # the right half moves
    picture, vmax = heatmap_overlay(GREY, values, vmax=2.0)
    assert vmax == 2.0
    assert np.array_equal(picture[:, :25], GREY[:, :25])  # grey stays grey where still, left of the blurred edge
    assert np.all(picture[:, 35:, 0] != 100)  # half the scale: mid colour, on the right half only


def test_a_still_map_draws_nothing_and_bad_maps_are_refused():
    picture, vmax = heatmap_overlay(GREY, np.zeros((40, 60)))
    assert vmax == 0.0 and np.array_equal(picture, GREY)
    with pytest.raises(GIDInputError, match="NaN"):
        heatmap_overlay(GREY, np.full((40, 60), np.nan))
    with pytest.raises(GIDInputError, match=r"\(H, W\)"):
        heatmap_overlay(GREY, np.zeros((1, 40, 60)))
    with pytest.raises(GIDInputError, match="uint8"):
        heatmap_overlay(GREY.astype(float), np.zeros((40, 60)))


def test_the_scale_bar_sits_under_the_picture_with_the_colour_ramp():
    picture = np.zeros((50, 240, 3), np.uint8)
    framed = with_scale_bar(picture, 3.5)
    assert framed.shape == (50 + 20, 240, 3) and np.array_equal(framed[:50], picture)
    bar_row = framed[-2]  # below the labels' glyphs
    assert np.array_equal(bar_row[120], colormap(np.linspace(0, 1, 240))[120])
    assert luminance(bar_row[-1:])[0] > luminance(bar_row[:1])[0] + 150  # dark at 0, bright at vmax
