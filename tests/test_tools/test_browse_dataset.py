"""tools/misc/browse_dataset.py: the training data after the pipeline (augmentation included),
drawn on real kitti_mini frames; the drawn geometry is checked against the pipeline's own."""
import cv2
import numpy as np
import pytest
from mmengine.config import Config
from tool_helpers import REPO, load_tool

from monodle_plugin.structures.geometry import project_to_image
from monodle_plugin.visualization.browse_dataset import build_browse_objects, render_training_sample

CONFIG = str(REPO / 'configs' / 'demo' / 'monodle_yolo8_da3_kitti_mini.py')  # 512 x 160, +DA3
#: flip and crop on every sample, so the projection has to undo both
AUG = {'train_dataloader.dataset.pipeline.2.random_flip': 1.0,
       'train_dataloader.dataset.pipeline.2.random_crop': 1.0}


def test_panels_follow_the_augmented_sample():
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(AUG)
    dataset, head, pad = build_browse_objects(cfg)
    np.random.seed(3)
    item = dataset[6]  # 000008: 10 cars
    meta = item['data_samples'].metainfo
    assert meta['flip'] and meta['random_crop']
    panels = render_training_sample(item, head, pad)
    w, h = 512, 160
    assert panels['boxes'].shape == (h, w, 3)
    assert panels['heatmap'].shape == (3 * h, w, 3)
    assert panels['teacher'].shape == (2 * h, w, 3)  # LiDAR stand-in for DA3: depth + mask

    # 3D centres projected through the network-input P2 land on the pipeline's centres_2d
    from monodle_plugin.visualization.browse_dataset import warped_cam2img
    gt3d = item['data_samples'].gt_instances_3d
    boxes = gt3d.bboxes_3d.tensor.numpy().astype(np.float64)
    centres = boxes[:, :3] - np.stack([0 * boxes[:, 4], boxes[:, 4] / 2, 0 * boxes[:, 4]], 1)
    uv = project_to_image(centres, warped_cam2img(meta))
    assert np.abs(uv - gt3d.centers_2d.numpy()).max() < 0.01  # float32 boxes

    # heatmap targets: a peak of 1 on the Car channel at each kept car's centre cell, nothing
    # on the Pedestrian / Cyclist channels (writelist ['Car'])
    heat = panels['heatmap_targets']
    assert heat.shape == (3, h // 4, w // 4)
    assert heat[0].max() == 0 and heat[2].max() == 0
    cells = np.floor(gt3d.centers_2d.numpy() / 4).astype(int)
    depth = boxes[:, 2]
    inside = ((cells >= 0).all(1) & (cells[:, 0] < w // 4) & (cells[:, 1] < h // 4)
              & (depth >= 2) & (depth <= 65) & (gt3d.labels_3d.numpy() == 1))
    assert inside.sum() >= 3
    assert (heat[1][cells[inside, 1], cells[inside, 0]] == 1.0).all()


def test_tool_writes_one_png_per_sample(tmp_path, capsys):
    tool = load_tool('misc/browse_dataset')
    out = tmp_path / 'browse'
    paths = tool.main([CONFIG, '--output-dir', str(out), '--ids', '000076', '000008',
                       '--cfg-options', *[f'{k}={v}' for k, v in AUG.items()]])
    assert [p.split('/')[-1] for p in paths] == ['0011_000076.png', '0006_000008.png']
    img = cv2.imread(paths[0])
    assert img.shape == (6 * 160, 512, 3)  # boxes + 3 heatmaps + teacher depth + mask
    assert img[:160].std() > 10  # an image, not a blank panel
    assert '2 samples written to' in capsys.readouterr().out
    with pytest.raises(KeyError, match="ids \\['999999'\\] are not in the dataset"):
        tool.main([CONFIG, '--output-dir', str(out), '--ids', '999999'])
