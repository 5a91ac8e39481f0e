"""Box corners / projection / canvas of monodle_kitti.mono3d_drawing (torch-free), and the
drawing files of monodle_kitti.frames.DrawingWriter."""
import cv2
import numpy as np
import pytest

from monodle_kitti.camera import project_to_image
from monodle_kitti.frames import DrawingWriter, Frame
from monodle_kitti.mono3d_drawing import (
    MIN_DEPTH,
    box_corners,
    clip_segments_near,
    draw_mono3d_result,
    draw_projected_boxes,
    project_box_edges,
)


def project_corners(corners, cam2img):
    """(N, 8, 3) camera corners (all in front of the camera) -> (N, 8, 2) pixels."""
    return project_to_image(corners.reshape(-1, 3), cam2img).reshape(len(corners), 8, 2)

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


def test_edges_are_cut_at_the_near_plane():
    p0 = np.array([[0.0, 1.0, -1.0], [1.0, 0.0, 2.0], [0.0, 0.0, -3.0], [2.0, 0.0, 5.0]])
    p1 = np.array([[0.0, 1.0, 3.0], [1.0, 0.0, -2.0], [0.0, 0.0, -1.0], [4.0, 0.0, 6.0]])
    q0, q1, keep = clip_segments_near(p0, p1)
    assert keep.tolist() == [True, True, False, True]
    np.testing.assert_allclose(q0[0], [0.0, 1.0, MIN_DEPTH])  # start behind: moved onto it
    np.testing.assert_allclose(q1[0], p1[0])
    np.testing.assert_allclose(q1[1], [1.0, 0.0, MIN_DEPTH])  # end behind
    assert np.isnan(q0[2]).all() and np.isnan(q1[2]).all()  # entirely behind: dropped
    np.testing.assert_allclose(np.stack([q0[3], q1[3]]), np.stack([p0[3], p1[3]]))  # in front
    # on a box: the edges of a far box are its projected corners; none has a NaN
    box = np.array([[1.0, 1.5, 20.0, 4.0, 1.5, 1.8, 0.4]])
    segs = project_box_edges(box_corners(box), P2)
    uv = project_corners(box_corners(box), P2)
    np.testing.assert_allclose(segs[0, 0], uv[0, [0, 1]])
    assert segs.shape == (1, 12, 2, 2) and np.isfinite(segs).all()


def test_box_straddling_the_camera_draws_only_its_visible_part():
    """Regression: a box next to the camera, partly behind it (bottom centre x = +3 m,
    z = 0.5 m, 4 m long along z: corners from z = -1.5 to 2.5 m) is seen only at the right
    image edge; projecting its corners behind the camera drew lines across the whole image."""
    h, w = 375, 1242
    img = np.zeros((h, w, 3), np.uint8)
    box = np.array([[3.0, 1.5, 0.5, 4.0, 1.5, 1.8, np.pi / 2]])  # l along z
    out = draw_projected_boxes(img, box, P2, np.array([1]), np.array([0.8]))
    cols = np.flatnonzero(out.any(axis=(0, 2)))
    assert len(cols), 'the visible part (right image edge) was not drawn'
    assert not out[:, :w // 3].any(), f'painted in the left third: columns {cols[:10]}'
    # its visible corners are at u >= 1206 (x = 2.1 m, z = 2.5 m); allow the line width
    assert cols.min() >= 1195, cols.min()
    # a box centred in front of the camera, its near face behind it: the side edges are cut at
    # the near plane (not dropped) and run out to both image borders on the top face's row
    centred = np.array([[0.0, 1.5, 0.5, 4.0, 1.5, 1.8, np.pi / 2]])
    out = draw_projected_boxes(img, centred, P2)
    top_row = 180  # v of the top face (y = 0) at every depth
    assert out[top_row - 2:top_row + 3, :5].any() and out[top_row - 2:top_row + 3, -5:].any()
    assert not out[:top_row - 3].any()  # nothing above the top face
    # entirely behind the camera: nothing at all
    behind = np.array([[0.0, 1.5, -5.0, 4.0, 1.5, 1.8, 0.0]])
    assert not draw_projected_boxes(img, behind, P2, scores=np.array([0.9])).any()


def test_ordinary_box_still_draws_inside_its_projection():
    h, w = 375, 1242
    img = np.zeros((h, w, 3), np.uint8)
    box = np.array([[2.0, 1.6, 15.0, 3.9, 1.5, 1.6, 0.3]])
    out = draw_projected_boxes(img, box, P2, np.array([1]), np.array([0.9]))
    uv = project_corners(box_corners(box), P2)[0]
    assert np.isfinite(uv).all()
    u0, v0 = np.floor(uv.min(0)).astype(int) - 3
    u1, v1 = np.ceil(uv.max(0)).astype(int) + 3
    ys, xs = np.nonzero(out.any(axis=2))
    inside = (xs >= u0) & (xs <= u1) & (ys >= v0) & (ys <= v1)
    assert inside.sum() > 100  # the 12 edges
    # outside the projected box: only the score text, just above corner 4
    assert (~inside).sum() == 0 or ys[~inside].max() < v0 + 3
    for a, b in ((0, 1), (4, 7)):  # two edges: their mid points are painted
        mid = np.round((uv[a] + uv[b]) / 2).astype(int)
        assert out[mid[1] - 1:mid[1] + 2, mid[0] - 1:mid[0] + 2].any()


def test_drawing_writer_png_per_image_mp4_per_video(tmp_path):
    """tools/demo.py's and ort_infer.py --draw-dir's files: <name>.png per image, one
    <video stem>.mp4 per video with every frame, in order."""
    canvas = np.zeros((48, 64, 3), np.uint8)
    canvas[10:20, 10:30] = (0, 0, 255)
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 5.0, (64, 48))
    for _ in range(3):
        writer.write(canvas)
    writer.release()
    with DrawingWriter(str(tmp_path / 'out')) as out:
        png = out.write(Frame(0, '000000', str(tmp_path / '000000.png')), canvas)
        mp4 = [out.write(Frame(i + 1, f'clip_{i:06d}', str(video), video=str(video),
                               frame_index=i), canvas) for i in range(3)]
    assert png == str(tmp_path / 'out' / '000000.png')
    assert np.array_equal(cv2.imread(png), canvas)
    assert set(mp4) == {str(tmp_path / 'out' / 'clip.mp4')}
    cap = cv2.VideoCapture(mp4[0])
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    ok, first = cap.read()
    cap.release()
    assert ok and first.shape == canvas.shape
