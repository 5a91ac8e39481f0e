"""MonoDLEKittiDataset: raw KITTI layout, contract fields, bad-input errors (kitti_mini)."""
import os
import os.path as osp
import pickle

import numpy as np
import pytest
from mmdet3d.registry import DATASETS
from mmdet3d.structures import CameraInstance3DBoxes

import monodle_plugin  # noqa: F401  (registers)
from monodle_plugin.datasets import KittiFormatError, MonoDLEKittiDataset

MINI = osp.join(osp.dirname(__file__), '..', '..', 'demo', 'kitti_mini', 'KITTI')
MINI_IDS = ['000000', '000001', '000002', '000004', '000005', '000006', '000008', '000015',
            '000019', '000020', '000021', '000076', '001545']


def p2_from_file(calib_path):
    """Independent reader: the 12 numbers after 'P2:'."""
    for line in open(calib_path):
        if line.startswith('P2:'):
            return np.array([float(v) for v in line.split()[1:]]).reshape(3, 4)
    raise AssertionError('no P2')


def sample_ids(ds) -> list:
    """The 6-digit ids of the dataset's frames, in its order."""
    return [ds.get_data_info(i)['sample_id'] for i in range(len(ds))]


@pytest.fixture(scope='module')
def mini_train():
    return MonoDLEKittiDataset(data_root=MINI, split='train')


def test_split_file_order_and_ids(mini_train):
    assert len(mini_train) == len(MINI_IDS)
    assert sample_ids(mini_train) == MINI_IDS
    info = mini_train.get_data_info(7)
    assert info['sample_id'] == '000015' and info['sample_idx'] == 15
    assert info['img_path'].endswith(osp.join('training', 'image_2', '000015.png'))
    assert info['label_path'].endswith(osp.join('training', 'label_2', '000015.txt'))
    assert mini_train.metainfo['classes'] == ('Pedestrian', 'Car', 'Cyclist')


def test_cam2img_is_p2_padded(mini_train):
    for idx in (0, 11):
        info = mini_train.get_data_info(idx)
        expected = np.vstack([p2_from_file(info['calib_path']), [0, 0, 0, 1]])
        np.testing.assert_allclose(np.array(info['cam2img']), expected, rtol=0, atol=1e-12)
        assert np.array(info['cam2img']).shape == (4, 4)


def test_instances_every_line_in_order_with_labels(mini_train):
    info = mini_train.get_data_info(0)  # 000000: official label, one Pedestrian
    lines = [ln.split() for ln in open(info['label_path']) if ln.strip()]
    assert len(info['instances']) == len(lines)
    for ins, fields in zip(info['instances'], lines):
        assert ins['name'] == fields[0]
        h, w, l_ = map(float, fields[8:11])
        x, y, z = map(float, fields[11:14])
        assert ins['bbox_3d'] == pytest.approx([x, y, z, l_, h, w, float(fields[14])])
        assert ins['bbox'] == pytest.approx([float(v) for v in fields[4:8]])
        assert ins['depth'] == pytest.approx(z)
        assert ins['score'] is None
        # projected 3D centre, divided by z (MonoDLE's rect_to_img)
        P2 = np.array(info['cam2img'])[:3]
        u = (P2[0] @ [x, y - h / 2, z, 1]) / z
        v = (P2[1] @ [x, y - h / 2, z, 1]) / z
        assert ins['center_2d'] == pytest.approx([u, v], abs=1e-9)
    # 000000.txt: 'Pedestrian 0.00 0 -0.20 712.40 143.00 810.73 307.92 ...' -> label 0, Easy
    assert info['instances'][0]['bbox_label'] == 0 and info['instances'][0]['bbox_label_3d'] == 0
    assert info['instances'][0]['difficulty'] == 1


def test_labels_and_difficulty_by_name(tmp_path, make_kitti_layout):
    root = make_kitti_layout(tmp_path, ['000000'])
    lines = [
        'Car 0.00 0 0.1 10 10 50 60 1.5 1.6 3.9 1.0 1.5 20.0 0.1',        # h 51: Easy
        'Van 0.00 0 0.1 10 10 50 40 2.0 1.9 4.5 2.0 1.5 25.0 0.1',        # h 31: Moderate
        'Cyclist 0.40 2 0.1 10 10 50 40 1.7 0.6 1.8 2.0 1.5 25.0 0.1',    # Hard
        'Pedestrian 0.80 0 0.1 10 10 50 40 1.7 0.6 0.8 2.0 1.5 25.0 0.1',  # UnKnown
        'Car 0.00 0 0.1 10 10 50 30 1.5 1.6 3.9 1.0 1.5 20.0 0.1',        # h 21: UnKnown
        'DontCare -1 -1 -10 10 10 50 40 -1 -1 -1 -1000 -1000 -1000 -10',  # level 0
        'Car -1 -1 0.5 10 10 50 60 1.5 1.6 3.9 1.0 1.5 20.0 0.1 0.87',    # pseudo-label, score
    ]
    with open(osp.join(root, 'training', 'label_2', '000000.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    ds = MonoDLEKittiDataset(data_root=root, split='train')
    ins = ds.get_data_info(0)['instances']
    assert [i['name'] for i in ins] == ['Car', 'Van', 'Cyclist', 'Pedestrian', 'Car', 'DontCare',
                                        'Car']
    assert [i['bbox_label'] for i in ins] == [1, -1, 2, 0, 1, -1, 1]
    assert [i['difficulty'] for i in ins] == [1, 2, 3, 4, 4, 0, 0]
    assert ins[-1]['score'] == pytest.approx(0.87) and ins[0]['score'] is None
    ann = ds.get_data_info(0)['ann_info']
    assert isinstance(ann['gt_bboxes_3d'], CameraInstance3DBoxes)
    assert ann['gt_bboxes_3d'].tensor.shape == (7, 7)
    np.testing.assert_array_equal(ann['gt_labels_3d'], [1, -1, 2, 0, 1, -1, 1])
    assert ann['gt_difficulty'].dtype == np.int64 and ann['gt_alphas'].dtype == np.float32
    # a class subset maps the other classes to -1
    ds_car = MonoDLEKittiDataset(data_root=root, split='train', metainfo=dict(classes=['Car']))
    assert [i['bbox_label'] for i in ds_car.get_data_info(0)['instances']] == \
        [0, -1, -1, -1, 0, -1, 0]


def test_empty_label_file_is_a_frame_without_objects(tmp_path, make_kitti_layout):
    root = make_kitti_layout(tmp_path, ['000000', '000001'])
    open(osp.join(root, 'training', 'label_2', '000001.txt'), 'w').close()
    ds = MonoDLEKittiDataset(data_root=root, split='train')
    assert len(ds) == 2
    info = ds.get_data_info(1)
    assert info['instances'] == []
    ann = info['ann_info']
    assert ann['gt_bboxes'].shape == (0, 4) and ann['centers_2d'].shape == (0, 2)
    assert ann['gt_bboxes_3d'].tensor.shape == (0, 7) and ann['gt_labels_3d'].shape == (0,)


def test_test_split_has_no_labels(tmp_path, make_kitti_layout):
    root = make_kitti_layout(tmp_path, ['000000', '000076'], split='test', folder='testing',
                       labels=False)
    ds = MonoDLEKittiDataset(data_root=root, split='test', test_mode=True)
    assert len(ds) == 2
    info = ds.get_data_info(1)
    assert info['label_path'] is None and info['instances'] == []
    assert info['img_path'].endswith(osp.join('testing', 'image_2', '000076.png'))
    assert 'eval_ann_info' not in info


def test_val_split_test_mode_keeps_eval_annotations():
    ds = MonoDLEKittiDataset(data_root=MINI, split='val', test_mode=True)
    info = ds.get_data_info(0)
    assert 'ann_info' not in info
    assert len(info['eval_ann_info']['gt_labels_3d']) == len(info['instances'])


def test_info_pkl_gives_the_same_frames(tmp_path, mini_train):
    data_list = []
    for i in ('000076', '000000'):
        P2 = p2_from_file(osp.join(MINI, 'training', 'calib', f'{i}.txt'))
        data_list.append(dict(sample_idx=int(i), images=dict(CAM2=dict(
            img_path=f'{i}.png', cam2img=np.vstack([P2, [0, 0, 0, 1]]).tolist()))))
    pkl = tmp_path / 'kitti_infos_train.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump(dict(metainfo=dict(), data_list=data_list), f)
    ds = MonoDLEKittiDataset(data_root=MINI, split='train', ann_file=str(pkl),
                             allow_pickle=True)  # a file this test wrote
    assert sample_ids(ds) == ['000076', '000000']
    a, b = ds.get_data_info(1), mini_train.get_data_info(0)
    assert a['img_path'] == b['img_path'] and a['instances'] == b['instances']
    np.testing.assert_allclose(a['cam2img'], b['cam2img'])


# ------------------------------------------------------------------ bad input
def write_label(root, text, sample='000000'):
    with open(osp.join(root, 'training', 'label_2', f'{sample}.txt'), 'w') as f:
        f.write(text)
    return osp.join(root, 'training', 'label_2', f'{sample}.txt')


@pytest.mark.parametrize('line,problem', [
    ('Car 0.00 0 0.1 10 10 50 60 1.5 1.6 3.9 1.0 1.5 20.0', '14 fields'),
    ('Car 0.00 0 0.1 10 10 50 60 1.5 1.6 3.9 1.0 1.5 20.0 0.1 0.9 7', '17 fields'),
    ('Truk 0.00 0 0.1 10 10 50 60 1.5 1.6 3.9 1.0 1.5 20.0 0.1', "unknown class name 'Truk'"),
    ('Car 0.00 0 0.1 10 10 50 60 1.5 nan 3.9 1.0 1.5 20.0 0.1', 'NaN'),
    ('Car 0.00 0 0.1 10 10 50 abc 1.5 1.6 3.9 1.0 1.5 20.0 0.1', 'non-numeric'),
])
def test_bad_label_line_names_file_and_line(tmp_path, line, problem, make_kitti_layout):
    root = make_kitti_layout(tmp_path, ['000000'])
    path = write_label(root, 'Car 0.00 0 0.1 10 10 50 60 1.5 1.6 3.9 1.0 1.5 20.0 0.1\n'
                       + line + '\n')
    with pytest.raises(KittiFormatError) as e:
        MonoDLEKittiDataset(data_root=root, split='train')
    assert f'{path}:2' in str(e.value) and problem in str(e.value)


def test_calibration_without_p2(tmp_path, make_kitti_layout):
    root = make_kitti_layout(tmp_path, ['000000'])
    calib = osp.join(root, 'training', 'calib', '000000.txt')
    lines = [ln for ln in open(calib) if not ln.startswith('P2:')]
    open(calib, 'w').writelines(lines)
    with pytest.raises(KittiFormatError, match='no P2') as e:
        MonoDLEKittiDataset(data_root=root, split='train')
    assert calib in str(e.value)


def test_split_lists_id_with_missing_files(tmp_path, make_kitti_layout):
    root = make_kitti_layout(tmp_path, ['000000', '000001'])
    os.remove(osp.join(root, 'training', 'image_2', '000001.png'))
    with open(osp.join(root, 'ImageSets', 'train.txt'), 'a') as f:
        f.write('000999\n')
    with pytest.raises(FileNotFoundError) as e:
        MonoDLEKittiDataset(data_root=root, split='train')
    msg = str(e.value)
    assert osp.join(root, 'ImageSets', 'train.txt') in msg
    assert osp.join('image_2', '000001.png') in msg
    for f in ('image_2/000999.png', 'calib/000999.txt', 'label_2/000999.txt'):
        assert osp.join(*f.split('/')) in msg
    assert '(4 files)' in msg


def test_missing_split_file_and_bad_split(tmp_path, make_kitti_layout):
    root = make_kitti_layout(tmp_path, ['000000'])
    with pytest.raises(FileNotFoundError, match='val.txt'):
        MonoDLEKittiDataset(data_root=root, split='val')
    with pytest.raises(ValueError, match='split must be one of'):
        MonoDLEKittiDataset(data_root=root, split='training')


def test_built_from_the_config():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(osp.dirname(__file__), '..', '..', 'configs', '_base_',
                                   'datasets', 'kitti_mono3d_monodle.py'))
    assert cfg.total_batch_size == 16 and cfg.data_root == 'data/KITTI/'
    assert cfg.val_evaluator['type'] == 'KittiAP40Metric'
    assert cfg.test_evaluator == cfg.val_evaluator
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        ds_cfg = loader.dataset.copy()
        ds_cfg.data_root = MINI
        ds = DATASETS.build(ds_cfg)
        sample = ds[0]
        assert tuple(sample['inputs']['img'].shape) == (3, 384, 1280)
        assert sample['data_samples'].metainfo['img_shape'] == (384, 1280)
