"""Box corners / projection / canvas of monodle_plugin.utils.mono3d_drawing."""
import numpy as np
import pytest

from monodle_plugin.utils.mono3d_drawing import (
    box_corners,
    draw_mono3d_result,
    project_corners,
)

P2 = np.array([[700.0, 0.0, 600.0, 45.0], [0.0, 700.0, 180.0, 0.0], [0.0, 0.0, 1.0, 0.0]])


def test_corners_axis_aligned_and_rotated():
    # l=4 along x at ry=0, h=1.5 upwards (-y), w=2 along z; bottom centre (1, 2, 10)
    c = box_corners(np.array([[1.0, 2.0, 10.0, 4.0, 1.5, 2.0, 0.0]]))[0]
    assert c.shape == (8, 3)
    np.testing.assert_allclose(c[:4, 1], 2.0)  # bottom at y0
    np.testing.assert_allclose(c[4:, 1], 0.5)  # top at y0 - h
    np.testing.assert_allclose(sorted(set(np.round(c[:, 0], 6))), [-1.0, 3.0])
    np.testing.assert_allclose(sorted(set(np.round(c[:, 2], 6))), [9.0, 11.0])
    np.testing.assert_allclose(c[0], [3.0, 2.0, 11.0])  # front (+l/2), +w/2
    # ry = pi/2: KITTI's rotation x' = cos*dx + sin*dz, z' = -sin*dx + cos*dz -> front at -z
    r = box_corners(np.array([[0.0, 0.0, 10.0, 4.0, 1.5, 2.0, np.pi / 2]]))[0]
    np.testing.assert_allclose(r[0], [1.0, 0.0, 8.0], atol=1e-12)


def test_projection_divides_by_depth_and_drops_points_behind():
    corners = np.array([[[0.0, 0.0, 10.0]] * 4 + [[2.0, 1.0, 20.0]] * 3 + [[0.0, 0.0, -1.0]]])
    uv = project_corners(corners, P2)
    np.testing.assert_allclose(uv[0, 0], [600.0 + 45.0 / 10.0, 180.0])
    np.testing.assert_allclose(uv[0, 4], [(700 * 2 + 600 * 20 + 45) / 20, (700 + 180 * 20) / 20])
    assert np.isnan(uv[0, 7]).all()


def test_canvas_has_bev_panel_and_draws_boxes():
    img = np.zeros((100, 300, 3), np.uint8)
    p2 = np.array([[100.0, 0.0, 150.0, 0.0], [0.0, 100.0, 50.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    boxes = np.array([[0.0, 1.5, 15.0, 4.0, 1.5, 1.8, 0.3]])
    out = draw_mono3d_result(img, p2, boxes, np.array([1]), np.array([0.9]))
    assert out.shape[0] == 100 and out.shape[1] > 300 and out.dtype == np.uint8
    assert out[:, :300].any(), 'projected box not drawn'
    empty = draw_mono3d_result(img, p2, np.zeros((0, 7)))
    assert not empty[:, :300].any() and img.sum() == 0  # input untouched
    with pytest.raises(ValueError, match='expected an'):
        draw_mono3d_result(np.zeros((10, 10)), P2, boxes)
