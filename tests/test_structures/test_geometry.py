"""monodle_plugin.structures.geometry against hand-computed values and mmdet3d."""
import math

import numpy as np
import pytest
import torch

from monodle_plugin.structures.geometry import (
    apply_affine,
    camera_box_corners,
    decode_depth,
    image_to_camera,
    pad_cam2img,
    pil_to_cv2_affine,
    project_to_image,
    wrap_angle,
)

P2 = np.array([[700.0, 0.0, 600.0, 45.0], [0.0, 710.0, 180.0, -0.3], [0.0, 0.0, 1.0, 0.005]])


def test_pad_cam2img():
    padded = pad_cam2img(P2)
    assert padded.shape == (4, 4) and padded[3].tolist() == [0, 0, 0, 1]
    np.testing.assert_array_equal(padded[:3], P2)
    again = pad_cam2img(padded)
    assert again is not padded and np.array_equal(again, padded)
    with pytest.raises(ValueError, match='3x4 or 4x4'):
        pad_cam2img(np.eye(3))


def test_pil_to_cv2_affine_moves_pixel_centres():
    # PIL: pixel i covers [i, i + 1); a x2 scale maps centre 0.5 -> 1.0, i.e. OpenCV's 0 -> 0.5
    mat = pil_to_cv2_affine(np.diag([2.0, 3.0, 1.0]))
    np.testing.assert_allclose(mat, [[2.0, 0.0, 0.5], [0.0, 3.0, 1.0]])
    assert mat.shape == (2, 3)


def test_apply_affine_numpy_and_torch_agree():
    mat = np.array([[-1.5, 0.2, 640.0], [0.1, 1.5, -20.0], [0.0, 0.0, 1.0]])
    pts = np.array([[0.0, 0.0], [10.0, 5.0], [-3.0, 2.5]])
    expected = np.array([[640.0, -20.0], [626.0, -11.5], [645.0, -16.55]])
    np.testing.assert_allclose(apply_affine(pts, mat), expected)
    got = apply_affine(torch.from_numpy(pts), mat)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected)


def test_projection_and_its_inverse():
    pts = np.array([[1.0, 1.5, 10.0], [-4.0, 0.5, 30.0]])
    uv = project_to_image(pts, P2)
    # divide by the point's own z (MonoDLE's rect_to_img), not by the third row of P2 @ X
    np.testing.assert_allclose(uv[0], [(700 * 1 + 600 * 10 + 45) / 10,
                                       (710 * 1.5 + 180 * 10 - 0.3) / 10])
    x, y = image_to_camera(torch.from_numpy(uv[:, 0]), torch.from_numpy(uv[:, 1]),
                           torch.from_numpy(pts[:, 2]), pad_cam2img(P2))
    np.testing.assert_allclose(np.stack([x.numpy(), y.numpy()], 1), pts[:, :2], atol=1e-12)
    assert np.isinf(project_to_image(np.array([[1.0, 1.0, 0.0]]), P2)).all()


def test_wrap_angle_keeps_monodle_ranges():
    angles = np.array([math.pi, -math.pi, 3.5, -3.5, 0.3, 7.0])
    wrapped = wrap_angle(angles)
    np.testing.assert_allclose(wrapped, [math.pi, -math.pi, 3.5 - 2 * math.pi,
                                         -3.5 + 2 * math.pi, 0.3, 7.0 - 2 * math.pi])
    upper = wrap_angle(torch.from_numpy(angles), upper_only=True)
    assert isinstance(upper, torch.Tensor)
    np.testing.assert_allclose(upper.numpy(), [math.pi, -math.pi, 3.5 - 2 * math.pi, -3.5, 0.3,
                                               7.0 - 2 * math.pi])


def test_decode_depth():
    x = torch.tensor([0.0, math.log(1 / 19.0)])  # sigmoid 0.5 -> ~1 m; 0.05 -> ~19 m
    np.testing.assert_allclose(decode_depth(x).numpy(), [1 / (0.5 + 1e-6) - 1,
                                                         1 / (0.05 + 1e-6) - 1], rtol=1e-6)


def test_box_corners_are_mmdet3d_and_kitti_convention():
    box = np.array([[1.0, 2.0, 10.0, 4.0, 1.5, 2.0, 0.4]])
    corners = camera_box_corners(box)[0]
    # KITTI's re-derivation: x' = cos dx + sin dz, z' = -sin dx + cos dz, y from the bottom
    c, s = math.cos(0.4), math.sin(0.4)
    for dx, dy, dz in [(2.0, 0.0, 1.0), (-2.0, -1.5, -1.0), (2.0, -1.5, -1.0)]:
        point = [1.0 + c * dx + s * dz, 2.0 + dy, 10.0 - s * dx + c * dz]
        assert np.abs(corners - point).sum(1).min() < 1e-6, point
    assert len({tuple(np.round(p, 6)) for p in corners}) == 8


def test_numpy_box_corners_equal_mmdet3d_on_kitti_labels():
    """The one corners implementation (monodle_kitti.camera, numpy: ort_infer draws without
    torch) equals mmdet3d's CameraInstance3DBoxes.corners on every labelled kitti_mini box,
    corner order included, to mmdet3d's float32 rounding (its boxes are float32 tensors; ours
    are computed in float64)."""
    import glob
    import os.path as osp

    from mmdet3d.structures import CameraInstance3DBoxes

    from monodle_kitti.kitti_io import read_label
    mini = osp.join(osp.dirname(__file__), '..', '..', 'demo', 'kitti_mini', 'KITTI', 'training')
    boxes = np.array([ins['bbox_3d'] for path in sorted(glob.glob(osp.join(mini, 'label_2',
                                                                          '*.txt')))
                      for ins in read_label(path) if ins['name'] != 'DontCare'])
    assert len(boxes) > 20
    ref = CameraInstance3DBoxes(torch.from_numpy(boxes), box_dim=7).corners
    assert ref.dtype == torch.float32
    got = camera_box_corners(boxes)
    assert got.shape == tuple(ref.shape) == (len(boxes), 8, 3) and got.dtype == np.float64
    # float32 ulp at 60 m is 4e-6 m; a wrong corner order or rotation is off by metres
    np.testing.assert_allclose(got, ref.numpy(), rtol=0, atol=2e-5)
    exact = CameraInstance3DBoxes(torch.from_numpy(boxes).double(), box_dim=7)
    exact.tensor = torch.from_numpy(boxes)  # float64 all the way: equal to float64 rounding
    np.testing.assert_allclose(got, exact.corners.numpy(), rtol=0, atol=1e-12)
