"""EncodeMonoDLETargets: the head's coder settings reach it from the config (one source), every
training config encodes its targets in the data pipeline, errors name what is missing."""
from pathlib import Path

import pytest
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[2]
TRAINING_CONFIGS = sorted(p for p in (ROOT / 'configs').rglob('*.py') if '_base_' not in p.parts)
TEST_CONFIGS = sorted((ROOT / 'tests' / 'test_tools' / 'configs').glob('*kitti_mini.py'))


@pytest.mark.parametrize('path', TRAINING_CONFIGS + TEST_CONFIGS,
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_training_pipeline_encodes_with_the_heads_coder(path):
    from mmdet3d.registry import MODELS, TRANSFORMS

    import monodle_plugin  # noqa: F401
    from monodle_plugin.datasets.transforms.encode_monodle_targets import fill_target_coders
    from monodle_plugin.utils.distill_switches import apply_distill_switches
    cfg = Config.fromfile(str(path))
    apply_distill_switches(cfg)  # as MonoDLERunner does first
    pipeline = cfg.train_dataloader.dataset.pipeline
    types = [step['type'] for step in pipeline]
    assert 'EncodeMonoDLETargets' in types, f'{path.name}: no EncodeMonoDLETargets'
    at = types.index('EncodeMonoDLETargets')
    assert types.index('MonoDLEAffineAug') < at < types.index('PackMonoDLEInputs')
    assert pipeline[at].get('bbox_coder') is None  # configs leave it to the head
    assert fill_target_coders(cfg) == [
        'train_dataloader: EncodeMonoDLETargets uses model.bbox_head.bbox_coder']
    transform = TRANSFORMS.build(pipeline[at])
    head = cfg.model.bbox_head
    coder = MODELS.build(dict(head, feat_channels=4, loss_depth_distill=None)).bbox_coder
    assert transform.settings == coder.encoding_settings()
    if '3class' in path.name:
        assert transform.settings['writelist'] == ('Pedestrian', 'Car', 'Cyclist')


def test_fill_keeps_an_explicit_coder_and_reaches_wrapped_datasets():
    from monodle_plugin.datasets.transforms.encode_monodle_targets import fill_target_coders
    own = dict(type='MonoDLEBBoxCoder', writelist=['Car', 'Van'])
    cfg = Config(dict(
        model=dict(bbox_head=dict(num_classes=3, bbox_coder=dict(max_objs=30))),
        train_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
            dict(pipeline=[dict(type='EncodeMonoDLETargets')]),
            dict(pipeline=[dict(type='EncodeMonoDLETargets', bbox_coder=own)])]))))
    assert len(fill_target_coders(cfg)) == 1
    first, second = (d.pipeline[0] for d in cfg.train_dataloader.dataset.datasets)
    assert first.bbox_coder == dict(max_objs=30, type='MonoDLEBBoxCoder', num_classes=3)
    assert second.bbox_coder == own


def test_missing_annotations_are_named():
    import numpy as np

    from monodle_plugin.datasets.transforms import EncodeMonoDLETargets
    with pytest.raises(KeyError, match=r"000001.png lacks results\['gt_alphas', 'img_shape'\]: "
                                       'put it after LoadMonoDLEAnnotations'):
        EncodeMonoDLETargets()(dict(img_path='000001.png', gt_bboxes_3d=None,
                                    gt_labels_3d=np.zeros(0), centers_2d=np.zeros((0, 2)),
                                    gt_difficulty=np.zeros(0), gt_bboxes=np.zeros((0, 4))))
