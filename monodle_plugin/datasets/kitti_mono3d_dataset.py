"""KITTI monocular 3D detection dataset read straight from the raw KITTI layout."""
import os.path as osp
import pickle
from typing import Callable, List, Optional, Sequence, Union

import mmengine
import numpy as np
from mmdet3d.datasets import Det3DDataset
from mmdet3d.registry import DATASETS
from mmdet3d.structures import CameraInstance3DBoxes

from ..structures.classes import MONODLE_CLASSES
from ..structures.geometry import pad_cam2img
from .kitti_io import (
    SPLIT_FOLDERS,
    KittiFormatError,
    read_calib,
    read_label,
    read_split_file,
    split_file_path,
    split_folder,
)

#: ``ann_file`` suffix (lower case) -> mmengine.load format; pickle needs ``allow_pickle=True``
INFO_FILE_FORMATS = {'pkl': 'pkl', 'pickle': 'pkl', 'json': 'json', 'yaml': 'yaml',
                     'yml': 'yaml'}


@DATASETS.register_module()
class MonoDLEKittiDataset(Det3DDataset):
    """KITTI object dataset (left colour camera) in MonoDLE's conventions, no info-file step.

    Layout (MonoDLE's README)::

        data_root/ImageSets/{train,val,trainval,test}.txt      one 6-digit id per line
        data_root/training/{image_2/<id>.png, calib/<id>.txt, label_2/<id>.txt}
        data_root/testing/{image_2/<id>.png, calib/<id>.txt}   (no labels)

    Each frame gives one ``data_info`` (see docs/design.md): ``sample_idx`` (int), ``sample_id``
    (str), ``img_path``, ``calib_path``, ``label_path`` (None for ``test``), ``cam2img`` (P2 as a
    4x4 list, per image since KITTI image sizes differ) and ``instances``: every label line in
    file order, DontCare included, with ``bbox_label`` / ``bbox_label_3d`` = index in
    ``classes`` or -1, ``bbox_3d`` ``[x, y, z, l, h, w, ry]`` (camera frame, bottom centre,
    metres / radians), ``difficulty`` (MonoDLE level 0..4), ``center_2d`` (projected 3D centre,
    raw pixels), ``depth`` (metres), ``alpha``, ``truncated``, ``occluded``, ``name``, ``score``.
    Labels and calibrations are parsed once at construction, so a broken file stops the run
    before training with a :class:`KittiFormatError` naming the file and line.

    mmdet3d info files: pass ``ann_file='kitti_infos_train.pkl'`` (relative to ``data_root``,
    as written by ``tools/create_data.py kitti``). The info file then only gives the frame list,
    the image paths and P2 (``images['CAM2']``); the annotations are still read from
    ``label_2/<id>.txt``, because the info files keep neither object names of ignored classes
    nor MonoDLE's difficulty levels.

    Args:
        data_root: dataset root, e.g. ``'data/KITTI/'``.
        split: ``'train'``, ``'val'``, ``'trainval'`` or ``'test'`` (names the split file
            ``ImageSets/<split>.txt``; ``test`` reads ``testing/`` and has no labels).
        ann_file: optional mmdet3d info file (see above; ``.pkl`` / ``.pickle``, or the same
            data as ``.json`` / ``.yaml``, suffix in any case); '' reads the split file.
        pipeline: transforms.
        metainfo: may override ``classes`` with a subset (other names get label -1).
        test_mode: evaluation mode (annotations then go to ``eval_ann_info`` when
            ``load_eval_anns``).
        filter_empty_gt: drop frames without a labelled object; False (MonoDLE keeps them).
        check_files: check at construction that every listed id has its image, calibration
            and (not for ``test``) label file.
        validate: checks of every frame at construction (:mod:`.validation`), all bad files
            named in one :class:`KittiFormatError`, before the first iteration:
            ``'quick'`` (default): images non-empty and complete (PNG IEND chunk / JPEG EOI
            marker), image size from the header against the calibration and the 2D boxes,
            teacher depth files of a ``LoadDA3Depth`` in the pipeline open with their key and
            a usable shape; headers and trailers only, about a millisecond per frame.
            ``True`` (or ``'full'``): the same with every image decoded and every depth map
            read and judged (one full decode per frame; docs/en/errors.md).
            ``False``: none of it.
        allow_pickle: read a ``.pkl`` ``ann_file`` (unpickling can run code from the file:
            only for info files you trust). Default False: a ``.pkl`` ann_file is an error.
        **kwargs: passed to :class:`mmdet3d.datasets.Det3DDataset`.
    """

    METAINFO = {
        'classes': MONODLE_CLASSES,
        'palette': [(255, 51, 153), (0, 204, 0), (255, 153, 0)],
    }

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 ann_file: str = '',
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 metainfo: Optional[dict] = None,
                 test_mode: bool = False,
                 filter_empty_gt: bool = False,
                 check_files: bool = True,
                 validate: Union[bool, str] = 'quick',
                 allow_pickle: bool = False,
                 box_type_3d: str = 'Camera',
                 modality: Optional[dict] = None,
                 **kwargs) -> None:
        if split not in SPLIT_FOLDERS:
            raise ValueError(f'split must be one of {sorted(SPLIT_FOLDERS)}, got {split!r}')
        self.split = split
        self.check_files = check_files
        if validate not in (False, True, 'quick', 'full'):
            raise ValueError(f"validate must be 'quick', True / 'full' or False, got "
                             f'{validate!r}')
        self.validate = validate
        self.allow_pickle = allow_pickle
        super().__init__(
            data_root=data_root,
            ann_file=ann_file,
            metainfo=metainfo,
            data_prefix=dict(img=''),
            pipeline=list(pipeline),
            modality=modality or dict(use_lidar=False, use_camera=True),
            box_type_3d=box_type_3d,
            filter_empty_gt=filter_empty_gt,
            test_mode=test_mode,
            **kwargs)

    # ------------------------------------------------------------------ frame list
    @property
    def split_dir(self) -> str:
        """``<data_root>/training`` or ``<data_root>/testing``."""
        return split_folder(self.data_root, self.split)

    @property
    def has_labels(self) -> bool:
        """False for the ``test`` split (KITTI ships no test labels)."""
        return self.split != 'test'

    def _read_info_file(self) -> List[dict]:
        """(sample_id, img_path, cam2img) of each frame of an mmdet3d info pkl."""
        # the suffix decides the reader, in any case: '.PKL' is a pickle as '.pkl' is (it
        # passed the allow_pickle check and then failed in mmengine.load with a TypeError)
        suffix = osp.splitext(str(self.ann_file))[1].lower().lstrip('.')
        fmt = INFO_FILE_FORMATS.get(suffix)
        if fmt is None:
            raise KittiFormatError(
                f'{self.ann_file}: ann_file must be an mmdet3d info file ending in '
                f'{", ".join("." + k for k in INFO_FILE_FORMATS)} (any case), got '
                f'{"." + suffix if suffix else "no suffix"}; or drop ann_file to read '
                'ImageSets/<split>.txt')
        if fmt == 'pkl' and not self.allow_pickle:
            raise KittiFormatError(
                f'{self.ann_file}: a pickle info file can run code when read; set '
                'allow_pickle=True in the dataset config if you trust it, or drop ann_file to '
                'read ImageSets/<split>.txt')
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'{self.ann_file}: ann_file not found (relative paths are '
                                    'under data_root); or drop ann_file to read '
                                    'ImageSets/<split>.txt')
        try:
            infos = mmengine.load(self.ann_file, file_format=fmt)
        except (ValueError, EOFError, UnicodeDecodeError, pickle.UnpicklingError) as err:
            raise KittiFormatError(f'{self.ann_file}: cannot be read as a {fmt} info file '
                                   f'({type(err).__name__}: {err}); regenerate it with '
                                   "mmdet3d's tools/create_data.py kitti") from None
        if not isinstance(infos, dict) or 'data_list' not in infos:
            raise KittiFormatError(f'{self.ann_file}: not an mmdet3d v2 info file (no data_list)')
        frames = []
        for info in infos['data_list']:
            cam = info['images']['CAM2']
            frames.append(dict(sample_id=f"{int(info['sample_idx']):06d}",
                               img_path=osp.join(self.split_dir, 'image_2',
                                                 osp.basename(cam['img_path'])),
                               cam2img=np.asarray(cam['cam2img'], dtype=np.float64)))
        return frames

    def _frame_paths(self, sample_id: str) -> dict:
        return dict(
            img_path=osp.join(self.split_dir, 'image_2', f'{sample_id}.png'),
            calib_path=osp.join(self.split_dir, 'calib', f'{sample_id}.txt'),
            label_path=(osp.join(self.split_dir, 'label_2', f'{sample_id}.txt')
                        if self.has_labels else None))

    def _check_files(self, frames: List[dict], source: str) -> None:
        missing = []
        for frame in frames:
            for key in ('img_path', 'calib_path', 'label_path'):
                path = frame[key]
                if path is not None and not osp.exists(path):
                    missing.append(path)
        if missing:
            shown = '\n  '.join(missing[:10])
            more = f'\n  ... and {len(missing) - 10} more' if len(missing) > 10 else ''
            raise FileNotFoundError(
                f'{source} lists ids whose files are missing ({len(missing)} files):\n  '
                f'{shown}{more}')

    def load_data_list(self) -> List[dict]:
        """Build the frame list from ``ImageSets/<split>.txt`` (or the info file)."""
        if self.ann_file:
            frames = []
            for info in self._read_info_file():
                frame = self._frame_paths(info['sample_id'])
                frame.update(sample_id=info['sample_id'], img_path=info['img_path'],
                             cam2img=info['cam2img'])
                frames.append(frame)
            source = self.ann_file
        else:
            source = split_file_path(self.data_root, self.split)
            frames = [dict(sample_id=i, **self._frame_paths(i)) for i in read_split_file(source)]
        if self.check_files:
            self._check_files(frames, source)
        data_list = [self.parse_data_info(frame) for frame in frames]
        if self.validate:
            self._validate(data_list, source)
        return data_list

    def _validate(self, data_list: List[dict], source: str) -> None:
        """``validate``: every image, size and depth file checked (see the class doc)."""
        from .transforms.load_da3_depth import LoadDA3Depth
        from .validation import format_problems, validate_frames
        depth = next((t for t in getattr(self.pipeline, 'transforms', [])
                      if isinstance(t, LoadDA3Depth)), None)
        full = self.validate in (True, 'full')
        problems = validate_frames(data_list, depth, full=full)
        if problems:
            how = 'validate=True' if full else (
                "validate='quick', the default; validate=False skips the check")
            raise KittiFormatError(format_problems(problems, f'{source} ({how})'))

    # ------------------------------------------------------------------ parsing
    def parse_data_info(self, info: dict) -> dict:
        """Read calibration and labels of one frame into the contract's ``data_info``."""
        if 'cam2img' in info:
            cam2img = pad_cam2img(info['cam2img'])
        else:
            cam2img = read_calib(info['calib_path'])['cam2img']
        class_to_label = {name: self.label_mapping[i]
                          for i, name in enumerate(self.METAINFO['classes'])}
        instances = (read_label(info['label_path'], cam2img, class_to_label)
                     if info['label_path'] is not None else [])
        data_info = dict(
            sample_idx=int(info['sample_id']),
            sample_id=info['sample_id'],
            img_path=info['img_path'],
            calib_path=info['calib_path'],
            label_path=info['label_path'],
            cam2img=cam2img.tolist(),
            instances=instances,
        )
        if not self.test_mode:
            data_info['ann_info'] = self.parse_ann_info(data_info)
        elif self.load_eval_anns and self.has_labels:
            data_info['eval_ann_info'] = self.parse_ann_info(data_info)
        return data_info

    def parse_ann_info(self, info: dict) -> dict:
        """Stack the instances into the arrays the transforms use.

        Returns:
            dict: ``gt_bboxes`` (N, 4) float32 raw pixels, ``gt_bboxes_labels`` (N,) int64,
            ``gt_bboxes_3d`` :class:`CameraInstance3DBoxes` (N, 7) bottom centre,
            ``gt_labels_3d`` (N,) int64, ``centers_2d`` (N, 2) float32 raw pixels, ``depths``
            (N,) float32 metres, ``gt_alphas`` (N,) float32 radians, ``gt_difficulty`` (N,)
            int64, ``gt_names`` (N,) str, ``instances``. N = 0 for an empty label file.
        """
        instances = info['instances']
        labels = np.array([ins['bbox_label'] for ins in instances], dtype=np.int64)
        for label in labels:
            if label != -1:
                self.num_ins_per_cat[label] += 1
        return dict(
            gt_bboxes=np.array([ins['bbox'] for ins in instances],
                               dtype=np.float32).reshape(-1, 4),
            gt_bboxes_labels=labels,
            gt_bboxes_3d=CameraInstance3DBoxes(
                np.array([ins['bbox_3d'] for ins in instances], dtype=np.float32).reshape(-1, 7),
                box_dim=7, origin=(0.5, 1.0, 0.5)),
            gt_labels_3d=labels.copy(),
            centers_2d=np.array([ins['center_2d'] for ins in instances],
                                dtype=np.float32).reshape(-1, 2),
            depths=np.array([ins['depth'] for ins in instances], dtype=np.float32),
            gt_alphas=np.array([ins['alpha'] for ins in instances], dtype=np.float32),
            gt_difficulty=np.array([ins['difficulty'] for ins in instances], dtype=np.int64),
            gt_names=np.array([ins['name'] for ins in instances], dtype=str),
            instances=instances,
        )

    def get_data_info(self, idx: int) -> dict:
        """``data_info`` of frame ``idx``; ``sample_idx`` is the KITTI id (mmengine would put
        the list position there)."""
        data_info = super().get_data_info(idx)
        data_info['sample_idx'] = int(data_info['sample_id'])
        return data_info


__all__ = ['MonoDLEKittiDataset']
