"""Pictures of what the model sees: GT vs prediction (2D + 3D boxes, BEV) and its dense maps.

From KITTI result files (no model needed)::

    python tools/analysis_tools/visualize.py --data-dir data/KITTI --pred-dir work_dirs/x/results \\
        [--split val] [--num-images 10 | --ids 000001 000015] [--layout overlay|split]

From a config and a checkpoint (also the maps: per-class heatmaps, predicted dense depth,
depth uncertainty, teacher depth and its valid mask)::

    python tools/analysis_tools/visualize.py --config CONFIG --checkpoint CKPT \\
        --data-dir demo/kitti_mini/KITTI --maps heatmap depth uncertainty teacher

Writes ``<output-dir>/<id>.png`` (GT green, predictions in class colours, BEV panel on the
right; ``split`` puts the ground truth row above the prediction row) and, with ``--maps``,
``<output-dir>/<id>_<map>.png`` at the network-input size. Flags of the seed's
``tools/visualize.py`` (``--data_dir``, ``--pred_dir``, ``--num_images``, ``--output_dir``,
``--score_thresh``, ``--no_random``, ``--layout split``) are accepted.
"""
import argparse
import os
import os.path as osp
import sys

import cv2
import numpy as np

from ..datasets.kitti_io import (
    read_calib,
    read_kitti_file,
    read_split_file,
)
from ..utils.cli import UserError
from ..visualization.analysis_drawing import (
    LAYOUTS,
    MAP_KINDS,
    anno_to_boxes,
    draw_depth,
    draw_gt_vs_pred,
    draw_heatmaps,
    draw_teacher,
    draw_uncertainty,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data-dir', '--data_dir', default='data/KITTI',
                        help='KITTI folder with ImageSets/ and training/{image_2,calib,label_2}')
    parser.add_argument('--pred-dir', '--pred_dir',
                        help='folder of KITTI result files <id>.txt (result-file mode)')
    parser.add_argument('--config', help='config file (model mode, with --checkpoint)')
    parser.add_argument('--checkpoint', help='checkpoint file (model mode)')
    parser.add_argument('--split', default='val',
                        help='split name (ImageSets/<split>.txt) or a split file path')
    parser.add_argument('--ids', nargs='+', help='these image ids instead of sampling')
    parser.add_argument('--num-images', '--num_images', type=int, default=10,
                        help='number of images drawn from the split')
    parser.add_argument('--no-random', '--no_random', action='store_true',
                        help='take the first images of the split instead of a random sample')
    parser.add_argument('--seed', type=int, default=43, help='seed of the random sample')
    parser.add_argument('--output-dir', '--output_dir', default='vis_output',
                        help='folder for the PNGs')
    parser.add_argument('--layout', default='overlay', choices=LAYOUTS,
                        help='overlay: GT and prediction in one picture; split: GT row above '
                             'the prediction row')
    parser.add_argument('--score-thr', '--score_thresh', type=float, default=None,
                        help="draw predictions with at least this score (default: the model's "
                        'test_cfg.score_thr; result files: every detection they hold)')
    parser.add_argument('--thickness', type=int, default=2, help='line width of predictions')
    parser.add_argument('--no-2d', action='store_true', help='do not draw 2D boxes')
    parser.add_argument('--no-3d', action='store_true', help='do not draw projected 3D boxes')
    parser.add_argument('--maps', nargs='*', default=[], choices=MAP_KINDS,
                        help='model mode: also draw these dense maps (no value: all)')
    parser.add_argument('--teacher-dir', help="teacher depth folder (<id>.npz, key 'depth'), "
                        'relative to --data-dir; default: the config\'s distill.depth_dir, '
                        'else DA3_depth_results')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    if args.maps == [] and '--maps' in (argv if argv is not None else sys.argv):
        args.maps = list(MAP_KINDS)
    model_mode = args.config is not None or args.checkpoint is not None
    if model_mode and (args.config is None or args.checkpoint is None):
        parser.error('model mode needs both --config and --checkpoint')
    if model_mode == (args.pred_dir is not None):
        parser.error('give either --pred-dir (result files) or --config and --checkpoint')
    if args.maps and not model_mode:
        parser.error('--maps needs a model (--config and --checkpoint)')
    return args


def select_ids(args) -> list:
    """The image ids to draw: ``--ids``, else ``--num-images`` of the split (random or first)."""
    if args.ids:
        return list(args.ids)
    split = args.split if osp.isfile(args.split) else osp.join(args.data_dir, 'ImageSets',
                                                                f'{args.split}.txt')
    ids = read_split_file(split)
    n = min(args.num_images, len(ids))
    if args.no_random:
        return ids[:n]
    rng = np.random.default_rng(args.seed)
    return sorted(rng.choice(ids, n, replace=False).tolist())


def _paths(data_dir: str, sid: str) -> dict:
    t = osp.join(data_dir, 'training')
    return dict(img=osp.join(t, 'image_2', f'{sid}.png'), calib=osp.join(t, 'calib', f'{sid}.txt'),
                label=osp.join(t, 'label_2', f'{sid}.txt'))


def _read_image(path: str) -> np.ndarray:
    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path} (check --data-dir)')
    img = cv2.imread(path)
    if img is None:
        raise OSError(f'{path}: image could not be read')
    return img


def _gt(path: str):
    return anno_to_boxes(read_kitti_file(path)) if osp.isfile(path) else None


def run_results_mode(args, ids) -> list:
    written = []
    for sid in ids:
        p = _paths(args.data_dir, sid)
        pred_path = osp.join(args.pred_dir, f'{sid}.txt')
        if not osp.isfile(pred_path):
            raise FileNotFoundError(f'result file not found: {pred_path} (is --pred-dir the '
                                    'folder of <id>.txt files?)')
        pred = anno_to_boxes(read_kitti_file(pred_path, need_score=True),
                             score_thr=args.score_thr)
        canvas = draw_gt_vs_pred(_read_image(p['img']), read_calib(p['calib'])['cam2img'],
                                 _gt(p['label']), pred, args.layout, not args.no_2d,
                                 not args.no_3d, args.thickness, sid)
        out = osp.join(args.output_dir, f'{sid}.png')
        cv2.imwrite(out, canvas)
        written.append(out)
        print(f'{sid}: {len(pred["boxes"])} prediction(s) -> {out}')
    return written


def run_model_mode(args, ids) -> list:
    import torch
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate

    from ..apis.inference import build_detector
    from ..datasets.transforms.load_da3_depth import LoadDA3Depth
    from ..models.detectors import drawing_score_thr
    model, pipeline = build_detector(args.config, args.checkpoint, args.device)
    thr = drawing_score_thr(model, args.score_thr)
    teacher = None
    if 'teacher' in args.maps:
        cfg = Config.fromfile(args.config)
        depth_dir = args.teacher_dir or cfg.get('distill', {}).get('depth_dir',
                                                                   'DA3_depth_results')
        teacher = LoadDA3Depth(depth_dir=depth_dir, data_root=args.data_dir)
    head = model.bbox_head
    coder = head.bbox_coder
    written = []
    for i, sid in enumerate(ids):
        p = _paths(args.data_dir, sid)
        cam2img = read_calib(p['calib'])['cam2img']
        raw = _read_image(p['img'])
        data = pipeline(dict(img_path=p['img'], cam2img=cam2img, sample_idx=i, sample_id=sid))
        with torch.no_grad():
            batch = model.data_preprocessor(pseudo_collate([data]), False)
            outs = head(model.extract_feat(batch['inputs']))
            meta = batch['data_samples'][0].metainfo
            res, res2d = (r[0] for r in head.predict_by_feat(outs, [meta]))
        keep = res.scores_3d.cpu().numpy() >= thr
        pred = dict(boxes=res.bboxes_3d.tensor.cpu().numpy()[keep, :7].astype(np.float64),
                    bboxes=res2d.bboxes.cpu().numpy()[keep].astype(np.float64),
                    labels=res.labels_3d.cpu().numpy()[keep],
                    scores=res.scores_3d.cpu().numpy()[keep].astype(np.float64))
        canvas = draw_gt_vs_pred(raw, cam2img, _gt(p['label']), pred, args.layout,
                                 not args.no_2d, not args.no_3d, args.thickness, sid)
        out = osp.join(args.output_dir, f'{sid}.png')
        cv2.imwrite(out, canvas)
        written.append(out)
        inp = data['inputs']['img']
        inp = (inp.cpu().numpy() if hasattr(inp, 'cpu') else np.asarray(inp)).transpose(1, 2, 0)
        inp = np.ascontiguousarray(inp.astype(np.uint8))
        maps = {}
        if 'heatmap' in args.maps:
            hm = outs['heatmap'][0].float().sigmoid().cpu().numpy()
            maps['heatmap'] = draw_heatmaps(inp, hm, coder.class_names)
        if 'depth' in args.maps:
            d = coder.decode_depth(outs['depth'][0, 0].float())
            maps['depth'] = draw_depth(inp, d.cpu().numpy(), 'predicted depth')
        if 'uncertainty' in args.maps:
            maps['uncertainty'] = draw_uncertainty(inp, outs['depth'][0, 1].float().cpu().numpy())
        if teacher is not None:
            r = teacher.transform(dict(img_path=p['img'], sample_id=sid,
                                       affine_mat=meta['affine_mat'],
                                       img_shape=meta['img_shape'], ori_shape=meta['ori_shape']))
            maps['teacher'] = draw_teacher(inp, r['gt_depth_map'][0], r['gt_depth_valid'][0])
        for kind, img in maps.items():
            path = osp.join(args.output_dir, f'{sid}_{kind}.png')
            cv2.imwrite(path, img)
            written.append(path)
        print(f'{sid}: {int(keep.sum())} prediction(s) with score >= {thr} -> {out}'
              + (f' (+ {", ".join(maps)})' if maps else ''))
    return written


def main(argv=None) -> list:
    args = parse_args(argv)
    if not osp.isdir(args.data_dir):
        raise UserError(f'data folder not found: {args.data_dir} (give --data-dir, the KITTI '
                        'folder holding training/image_2)')
    if args.pred_dir is not None and not osp.isdir(args.pred_dir):
        raise UserError(f'result folder not found: {args.pred_dir} (give --pred-dir, a folder '
                        'of KITTI result files <id>.txt)')
    ids = select_ids(args)
    os.makedirs(args.output_dir, exist_ok=True)
    if args.pred_dir is not None:
        return run_results_mode(args, ids)
    return run_model_mode(args, ids)
