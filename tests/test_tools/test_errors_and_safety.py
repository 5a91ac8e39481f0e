"""Nothing silent, nothing executed (issue 13): strict checkpoints, safe loading, one-line errors.

Each case: the exact command or call, its exit status and the file named in the message.
"""
import builtins
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from tool_helpers import REPO, TINY_CONFIG, load_tool, tool_env

from monodle_plugin.utils.checkpoint_loading import (
    load_checkpoint_file,
    load_weights_strict,
    skip_backbone_pretrained,
)
from monodle_plugin.utils.cli import CheckpointError, UserError, run_cli

DLA_CONFIG = 'configs/monodle/monodle_dla34_kitti.py'
YOLO_CONFIG = 'configs/ablation/monodle_yolo8_kitti.py'


class Payload:
    """Unpickling this creates ``marker`` (stands for any code a crafted file would run)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, 'w')


def run(*args, timeout=300):
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=tool_env(),
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(proc, *names):
    """Exit status 2, the last stderr line is the error, and it names every ``names``."""
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: '), proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    for name in names:
        assert str(name) in last, last
    return last


def run_in_process(tool, argv, capsys):
    """``python tools/<tool>.py ARGV`` as its ``__main__`` does (``run_cli(main)``), in this
    process (a subprocess spends most of its time importing mmdet3d). mmengine's loggers are
    process-wide instances whose stream handlers keep the stderr of the test that made them (a
    stream pytest closed since: "--- Logging error ---"); a fresh run gets fresh ones, as a
    new process would."""
    from mmengine.logging import MMLogger
    MMLogger._instance_dict.clear()
    capsys.readouterr()
    with pytest.raises(SystemExit) as ex:
        run_cli(load_tool(tool).main, [str(a) for a in argv])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(argv, ex.value.code, out.out, out.err)


@pytest.fixture(scope='module')
def tiny_model():
    from mmdet3d.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(str(REPO / TINY_CONFIG))
    init_default_scope('mmdet3d')
    return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def tiny_ckpt(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.pth'
    torch.save({'state_dict': tiny_model.state_dict(), 'meta': dict(epoch=1)}, path)
    return path


# ---------------------------------------------------------------- strict weights
def test_strict_load_roundtrip_and_mismatches(tiny_model, tiny_ckpt, tmp_path):
    assert load_weights_strict(tiny_model, str(tiny_ckpt), TINY_CONFIG)['missing'] == []
    state = dict(tiny_model.state_dict())
    dropped = next(iter(state))
    state.pop(dropped)
    state['backbone.base.extra'] = torch.zeros(1)
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': state}, bad)
    with pytest.raises(CheckpointError) as err:
        load_weights_strict(tiny_model, str(bad), TINY_CONFIG)
    msg = str(err.value)
    assert str(bad) in msg and TINY_CONFIG in msg and dropped in msg
    assert 'backbone.base.extra' in msg and '--allow-partial-load' in msg
    out = load_weights_strict(tiny_model, str(bad), TINY_CONFIG, allow_partial=True)
    assert out['missing'] == [dropped] and out['unexpected'] == ['backbone.base.extra']
    empty = tmp_path / 'empty_state.pth'
    torch.save({'state_dict': {}}, empty)
    with pytest.raises(CheckpointError, match='holds no weights'):
        load_weights_strict(tiny_model, str(empty), TINY_CONFIG)


def test_dla34_weights_on_yolo_model_are_refused(tiny_model, tmp_path):
    from mmdet3d.registry import MODELS
    from mmengine.config import Config
    cfg = Config.fromfile(str(REPO / 'configs/demo/monodle_dla34_kitti_mini.py'))
    dla = tmp_path / 'dla34.pth'
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, dla)
    with pytest.raises(CheckpointError, match='missing key.*unexpected key') as err:
        load_weights_strict(tiny_model, str(dla), TINY_CONFIG)
    assert str(dla) in str(err.value)


def test_test_py_wrong_checkpoint_exits_2_and_writes_no_metrics(tmp_path):
    """python tools/test.py TINY ckpt_of_another_model.pth -> exit 2, no metrics.json."""
    ckpt = tmp_path / 'dla_like.pth'
    torch.save({'state_dict': {'backbone.base_layer.0.weight': torch.zeros(16, 3, 7, 7)}}, ckpt)
    proc = run('tools/test.py', TINY_CONFIG, ckpt, '--work-dir', tmp_path / 'wd')
    one_line_error(proc, ckpt, TINY_CONFIG, 'unexpected key(s): backbone.base_layer.0.weight')
    assert not list((tmp_path / 'wd').rglob('metrics.json'))


def test_eval_never_needs_pretrained_backbone_files(tmp_path):
    """test.py's config: DLA-34 ImageNet init_cfg and YOLO pretrained .pt switched off."""
    test_tool = load_tool('test')
    args = test_tool.parse_args([DLA_CONFIG, __file__, '--work-dir', str(tmp_path)])
    cfg = test_tool.build_cfg(args)
    assert cfg.model.backbone.init_cfg is None and cfg.load_from is None
    from mmengine.config import Config
    yolo = Config.fromfile(str(REPO / YOLO_CONFIG))
    assert yolo.model.backbone.pretrained is True
    assert skip_backbone_pretrained(yolo.model) and yolo.model.backbone.pretrained is False


def test_demo_builds_yolo_detector_without_pt_file(tiny_ckpt, tmp_path, monkeypatch):
    """apis.build_detector (tools/demo.py): a pretrained=True YOLO config, no yolov8n.pt."""
    from monodle_plugin.models.backbones import ultralytics_backbone as ub
    monkeypatch.chdir(tmp_path)  # no checkpoints/ folder here
    monkeypatch.setenv(ub.WEIGHTS_DIR_ENV, str(tmp_path))
    assert ub.resolve_weights_file('yolov8n.pt', 'checkpoints') is None
    from monodle_plugin.apis import build_detector
    model, _ = build_detector(str(REPO / TINY_CONFIG), str(tiny_ckpt), 'cpu',
                              {'model.backbone.pretrained': True})
    assert not model.training


# ---------------------------------------------------------------- no code from data files
@pytest.fixture
def payload_ckpt(tmp_path):
    marker = tmp_path / 'PWNED'
    path = tmp_path / 'payload.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': Payload(marker),
                'model_state': {'w': torch.zeros(1)}}, path)
    return path, marker


def test_payload_checkpoint_never_runs(payload_ckpt, tiny_model, tmp_path):
    path, marker = payload_ckpt
    with pytest.raises(CheckpointError, match='refused to load') as err:
        load_checkpoint_file(str(path))
    assert str(path) in str(err.value)
    with pytest.raises(CheckpointError):
        load_weights_strict(tiny_model, str(path))  # test.py / demo.py path
    from monodle_plugin.models.utils import official_checkpoint as conv
    with pytest.raises(conv.ConversionError, match='weights_only=True'):  # converter's reader
        conv.load_checkpoint_file(str(path), 'model_state')
    # --resume / load_from: mmengine's own torch.load with our allow-list
    import pickle

    from mmengine.runner import CheckpointLoader

    from monodle_plugin.utils.checkpoint_loading import allow_checkpoint_globals
    allow_checkpoint_globals()
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


def test_test_py_payload_checkpoint_exit_2(payload_ckpt, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    path, marker = payload_ckpt
    proc = run_in_process('test', [TINY_CONFIG, path, '--work-dir', tmp_path / 'wd'], capsys)
    one_line_error(proc, path, 'refused to load')
    assert not marker.exists()


def test_payload_pkl_info_file_needs_opt_in(tmp_path):
    import pickle

    from monodle_plugin.datasets import KittiFormatError, MonoDLEKittiDataset
    marker = tmp_path / 'PWNED'
    pkl = tmp_path / 'infos.pkl'
    pkl.write_bytes(pickle.dumps(Payload(marker)))
    mini = str(REPO / 'demo' / 'kitti_mini' / 'KITTI')
    with pytest.raises(KittiFormatError, match='allow_pickle=True') as err:
        MonoDLEKittiDataset(data_root=mini, ann_file=str(pkl))
    assert str(pkl) in str(err.value) and not marker.exists()


def test_payload_ultralytics_pt_never_runs(tmp_path):
    from monodle_plugin.models.backbones.ultralytics_backbone import build_ultralytics_model
    marker = tmp_path / 'PWNED'
    pt = tmp_path / 'yolov8n.pt'
    torch.save({'model': Payload(marker), 'train_args': {}}, pt)
    with pytest.raises(ValueError, match=str(pt)):
        build_ultralytics_model(str(pt), pretrained=True)
    assert not marker.exists()


def test_no_process_wide_weights_only_override():
    sources = sorted((REPO / 'tools').rglob('*.py')) + sorted(
        (REPO / 'monodle_plugin').rglob('*.py'))
    assert len(sources) > 40
    offenders = [str(p.relative_to(REPO)) for p in sources
                 if 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' in p.read_text()]
    assert not offenders, f'process-wide weights_only override in {offenders}'


# ---------------------------------------------------------------- one-line errors
def test_zero_byte_and_truncated_checkpoints_name_the_file(tiny_ckpt, tmp_path):
    zero = tmp_path / 'zero.pth'
    zero.write_bytes(b'')
    with pytest.raises(CheckpointError, match='0 bytes') as err:
        load_checkpoint_file(str(zero))
    assert str(zero) in str(err.value)
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(tiny_ckpt.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match='truncated or corrupt') as err:
        load_checkpoint_file(str(cut))
    assert str(cut) in str(err.value)


def test_run_cli_one_line_exit_2_and_debug(capsys, monkeypatch):
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)

    def main(argv):
        raise UserError('data/x.png: broken\n  fix it')

    with pytest.raises(SystemExit) as ex:
        run_cli(main, [])
    assert ex.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: data/x.png: broken fix it') and err.count('\n') == 1
    with pytest.raises(UserError):
        run_cli(main, ['--debug'])
    monkeypatch.setenv('MONODLE_DEBUG', '1')
    with pytest.raises(UserError):
        run_cli(main, [])
    with pytest.raises(SystemExit) as ex:
        run_cli(lambda argv: 3, [])
    assert ex.value.code == 3
    from monodle_plugin.utils.cli import format_error
    worker = ValueError('Caught ValueError in DataLoader worker process 0.\nOriginal Traceback '
                        '(most recent call last):\n  File "x.py", line 1\nValueError: a.png: bad')
    assert format_error(worker) == 'ValueError: a.png: bad'


def test_test_py_missing_checkpoint_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    proc = run_in_process('test', [TINY_CONFIG, tmp_path / 'nope.pth'], capsys)
    one_line_error(proc, tmp_path / 'nope.pth')
    proc = run_in_process('demo', ['demo/kitti_mini/KITTI/training/image_2/000000.png',
                                   TINY_CONFIG, tmp_path / 'nope.pth'], capsys)
    one_line_error(proc, tmp_path / 'nope.pth')


#: tools beyond train / test / demo / kitti_eval / misc that go through run_cli: (script, its
#: arguments with MISSING for the input that does not exist)
MISSING_INPUT_CASES = {
    'per_sample_eval': ['tools/analysis_tools/per_sample_eval.py', '--gt', 'MISSING', '--split',
                        'demo/kitti_mini/KITTI/ImageSets/val.txt', '--pred', 'MISSING'],
    'format_results': ['tools/analysis_tools/format_results.py', 'MISSING'],
    'check_official_parity': ['tools/analysis_tools/check_official_parity.py',
                              '--official-root', 'MISSING'],
    'convert_checkpoint': ['tools/convert_monodle_checkpoint.py', 'MISSING', 'out.pth'],
    'export_onnx': ['tools/deployment/export_onnx.py', 'MISSING', 'none', 'out.onnx'],
    'ort_infer': ['tools/deployment/ort_infer.py', 'MISSING',
                  'demo/kitti_mini/KITTI/training/image_2', '--out-dir', 'out'],
}


@pytest.mark.parametrize('tool', list(MISSING_INPUT_CASES))
def test_tools_missing_input_exit_2_one_line(tool, tmp_path, monkeypatch):
    """A missing input file / folder: exit status 2 and stderr is the one line ``error: ...``
    naming it; with ``--debug`` Python's traceback instead (ort_infer: no torch import)."""
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    missing = tmp_path / f'no_{tool}_input'
    args = [missing if a == 'MISSING' else a for a in MISSING_INPUT_CASES[tool]]
    args = [tmp_path / a if a in ('out.pth', 'out.onnx', 'out') else a for a in args]
    proc = run(*args)
    last = one_line_error(proc, missing)
    assert proc.stderr.strip() == last, proc.stderr[-3000:]  # nothing else on stderr
    assert not (tmp_path / 'out.pth').exists() and not (tmp_path / 'out.onnx').exists()
    if tool == 'ort_infer':  # the torch-free tool: --debug gives the traceback (status 1)
        proc = run(*args, '--debug')
        assert proc.returncode == 1 and 'Traceback' in proc.stderr, proc.stderr[-3000:]
        assert str(missing) in proc.stderr.strip().splitlines()[-1]


# ---------------------------------------------------------------- switches
def test_resume_with_nothing_to_resume_is_an_error(tmp_path):
    train = load_tool('train')
    args = train.parse_args([TINY_CONFIG, '--work-dir', str(tmp_path), '--resume'])
    with pytest.raises(UserError, match='nothing to resume') as err:
        train.build_cfg(args)
    assert str(tmp_path) in str(err.value)
    (tmp_path / 'epoch_1.pth').write_bytes(b'')
    args = train.parse_args([TINY_CONFIG, '--work-dir', str(tmp_path), '--resume',
                             str(tmp_path / 'epoch_1.pth')])
    with pytest.raises(CheckpointError, match='empty or truncated'):
        train.build_cfg(args)


def test_bad_load_from_is_one_line_naming_the_file(tmp_path, capsys):
    """load_from (fine-tuning) zero-byte, missing or a URL: exit 2, one line naming it, before
    the runner downloads or torch.load fails without the file name."""
    zero = tmp_path / 'zero.pth'
    zero.write_bytes(b'')
    for value, words in ((zero, 'empty or truncated'), (tmp_path / 'none.pth', 'not found'),
                         ('https://example.org/x.pth', 'nothing is downloaded')):
        proc = run_in_process('train', [TINY_CONFIG, '--work-dir', tmp_path / 'wd',
                                        '--cfg-options', f'load_from={value}'], capsys)
        assert words in one_line_error(proc, value)


def test_unknown_top_level_cfg_option_is_an_error(tmp_path):
    train = load_tool('train')
    args = train.parse_args([TINY_CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                             'trian_cfg.max_epochs=1'])
    with pytest.raises(UserError, match='did you mean train_cfg') as err:
        train.build_cfg(args)
    assert TINY_CONFIG in str(err.value)
    args = train.parse_args([TINY_CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                             'train_cfg.max_epochs=1', 'randomness.seed=3'])
    cfg = train.build_cfg(args)
    assert cfg.train_cfg.max_epochs == 1



def test_allow_list_reads_message_hub_in_a_fresh_process(tmp_path):
    """mmengine fills HistoryBuffer's method table lazily: a resuming process that has not
    built a HistoryBuffer yet must still read the message hub (the --resume path)."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('f13_allow_list')
    hub.update_scalar('train/loss', 1.5)
    hub.update_info('np_scalar', np.float64(2.5))  # np scalars occur in runtime_info
    path = tmp_path / 'hub.pth'
    torch.save({'message_hub': hub.state_dict(), 'state_dict': {}}, path)
    code = ('import sys, torch; from monodle_plugin.utils.checkpoint_loading import '
            'allow_checkpoint_globals; allow_checkpoint_globals(); '
            'ck = torch.load(sys.argv[1], weights_only=True); '
            "print(ck['message_hub']['log_scalars']['train/loss'].current(), "
            "ck['message_hub']['runtime_info']['np_scalar'])")
    proc = run('-c', code, path)
    assert proc.returncode == 0 and proc.stdout.strip() == '1.5 2.5', proc.stderr[-2000:]


# ---------------------------------------------------------------- issue 25
def test_changed_config_variable_is_an_error_under_any_tool(tiny_ckpt, tmp_path, capsys,
                                                            monkeypatch):
    """`--cfg-options data_root=X` / `max_epochs=1` changed a variable the config had already
    copied into its components (mmengine evaluates a file once): an error naming the keys to
    set, under our train / test tools and mmdet3d's stock tools/train.py alike, before a
    work dir is made; the suggested options pass the check and do what was asked."""
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    wd = tmp_path / 'wd'
    proc = run_in_process('train', [TINY_CONFIG, '--work-dir', wd, '--cfg-options',
                                    'data_root=/nonexistent/'], capsys)
    last = one_line_error(proc, TINY_CONFIG, 'data_root', 'train_dataloader.dataset.data_root='
                          '/nonexistent/', 'val_evaluator.data_root=/nonexistent/')
    proc = run_in_process('train', [TINY_CONFIG, '--work-dir', wd, '--cfg-options',
                                    'max_epochs=1'], capsys)
    one_line_error(proc, 'max_epochs', '--cfg-options train_cfg.max_epochs=1 ')
    proc = run_in_process('test', [TINY_CONFIG, tiny_ckpt, '--work-dir', wd, '--cfg-options',
                                   'class_names=[Car]'], capsys)
    one_line_error(proc, 'class_names', 'train_dataloader.dataset.metainfo.classes=[Car]')
    import runpy
    from pathlib import Path

    import mmdet3d
    stock = Path(mmdet3d.__file__).parent / '.mim' / 'tools' / 'train.py'
    monkeypatch.setattr(sys, 'argv', [str(stock), TINY_CONFIG, '--work-dir', str(wd),
                                      '--cfg-options', 'input_size=(100,50)'])
    monkeypatch.chdir(REPO)
    with pytest.raises(UserError, match=r'pipeline\.2\.output_size=\(100,50\)'):
        runpy.run_path(str(stock), run_name='__main__')
    assert not wd.exists()
    # the fix the message gives: those options reach the dataset and pass the check
    from mmengine.config import Config

    from monodle_plugin.utils.config_checks import check_top_level_overrides
    options = last.split('--cfg-options ')[1].split(' (traceback')[0].split()
    cfg = Config.fromfile(str(REPO / TINY_CONFIG))
    cfg.merge_from_dict(dict(o.split('=', 1) for o in options))
    check_top_level_overrides(cfg)
    assert cfg.train_dataloader.dataset.data_root == '/nonexistent/'
    assert cfg.test_evaluator.data_root == '/nonexistent/'
    cfg.merge_from_dict({'foo': 1})  # a key nothing reads, under any tool
    with pytest.raises(UserError, match='foo=1 is not in the config and nothing reads it'):
        check_top_level_overrides(cfg)


def test_non_finite_loss_stops_training_before_a_checkpoint(tiny_model, tmp_path, capsys,
                                                            monkeypatch):
    """An infinite loss weight (as distill.lambda=inf did) trains to NaN weights: training
    stops at the first iteration naming it and the loss terms, before any checkpoint is
    written; tools/test.py refuses a checkpoint with NaN weights (it evaluated AP 0)."""
    wd = tmp_path / 'wd'
    proc = run('tools/train.py', TINY_CONFIG, '--work-dir', wd, '--cfg-options',
               'model.bbox_head.loss_size_3d.loss_weight=inf', 'train_cfg.max_epochs=1',
               'default_hooks.checkpoint.interval=1', timeout=900)
    last = one_line_error(proc, 'epoch 1, iteration 1', 'non-finite loss in', 'loss_size_3d=',
                          '.png')
    assert 'loss_heatmap=' in last  # every term's value is given
    assert not list(wd.rglob('*.pth')) and not list(wd.rglob('last_checkpoint'))
    state = {k: torch.full_like(v, float('nan')) if v.is_floating_point() else v
             for k, v in tiny_model.state_dict().items()}
    nan_ckpt = tmp_path / 'nan.pth'
    torch.save({'state_dict': state, 'meta': dict(epoch=1)}, nan_ckpt)
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    proc = run_in_process('test', [TINY_CONFIG, nan_ckpt, '--work-dir', wd], capsys)
    one_line_error(proc, nan_ckpt, 'NaN / infinite values', 'earlier checkpoint')
    assert not list(wd.rglob('metrics.json'))


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    """One real 1-iteration training of the tiny config (2 frames, total batch 2): its work
    dir and epoch_1.pth, shared by the --resume cases below."""
    wd = tmp_path_factory.mktemp('tiny_run') / 'wd'
    proc = run('tools/train.py', TINY_CONFIG, '--work-dir', wd, '--cfg-options',
               'train_dataloader.dataset.indices=2', 'train_cfg.max_epochs=1',
               'train_cfg.val_begin=1000', timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ckpt = (wd / 'last_checkpoint').read_text().strip()
    return wd, ckpt


def test_resume_with_another_batch_lr_or_model_is_refused(tiny_run, tmp_path, capsys,
                                                         monkeypatch):
    """--resume with another total batch or lr logged the new lr while the optimizer kept the
    checkpoint's (ETA negative); into another head width or backbone it failed at the first
    optimizer step with a tensor-size / parameter-group error. Now one line before the
    weights are loaded, naming the checkpoint, what differs and the fix."""
    from monodle_plugin.utils.checkpoint_loading import load_checkpoint_file
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    wd, ckpt = tiny_run
    assert load_checkpoint_file(ckpt)['meta']['batch_plan']['total'] == 2
    base = ['--work-dir', wd, '--resume', ckpt, '--cfg-options',
            'train_dataloader.dataset.indices=2', 'train_cfg.max_epochs=2',
            'train_cfg.val_begin=1000']
    proc = run_in_process('train', [TINY_CONFIG, *base, 'total_batch_size=1'], capsys)
    one_line_error(proc, f'--resume {ckpt}', 'total batch 2 (1 x 2)', 'total batch 1 (1 x 1)',
                   'total_batch_size=2', f'load_from={ckpt}')
    proc = run_in_process('train', [TINY_CONFIG, *base, 'optim_wrapper.optimizer.lr=0.01'],
                          capsys)
    one_line_error(proc, f'--resume {ckpt}', 'lr 0.00015625', 'lr 0.00125')  # x 2/16
    proc = run_in_process('train', [TINY_CONFIG, *base, 'model.bbox_head.feat_channels=8'],
                          capsys)
    one_line_error(proc, f'--resume {ckpt}', 'another model than', TINY_CONFIG,
                   'shape mismatch', 'bbox_head.heatmap.0.weight')
    dla = 'configs/demo/monodle_dla34_kitti_mini.py'  # a YOLO checkpoint into DLA-34
    proc = run_in_process('train', [dla, '--work-dir', wd, '--resume', ckpt], capsys)
    one_line_error(proc, f'--resume {ckpt}', dla, 'missing key', 'unexpected key')
    assert sorted(p.name for p in wd.rglob('*.pth')) == ['epoch_1.pth']  # nothing trained


def test_runs_started_at_once_get_their_own_run_folders(tmp_path):
    """Two runs into one --work-dir started in the same second shared <timestamp>/ (one log
    with both runs, one run's checkpoint beside the other's config). Another run's folders
    for this second and the next four exist: the runner waits for a free second instead."""
    import time

    from mmengine.config import Config
    from mmengine.registry import RUNNERS
    wd = tmp_path / 'wd'
    now = time.time()
    taken = [time.strftime('%Y%m%d_%H%M%S', time.localtime(now + k)) for k in range(5)]
    for name in taken:  # "the other run": its config dump and log
        (wd / name).mkdir(parents=True)
        (wd / name / 'other.log').write_text('other run\n')
    cfg = Config.fromfile(str(REPO / TINY_CONFIG))
    cfg.work_dir = str(wd)
    runner = RUNNERS.build(cfg)
    assert osp.basename(runner.log_dir) not in taken, (runner.log_dir, taken)
    for name in taken:
        assert sorted(p.name for p in (wd / name).iterdir()) == ['other.log']
        assert (wd / name / 'other.log').read_text() == 'other run\n'
    assert (wd / '.run_start.lock').is_file()


def test_demo_refuses_a_bad_calibration(tiny_ckpt, tmp_path, capsys, monkeypatch):
    """tools/demo.py with an all-zero P2 crashed inside OpenCV; an image resized without its
    calibration ran silently (issue 25): exit 2, one line naming the file, nothing drawn."""
    import cv2
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    mini = REPO / 'demo' / 'kitti_mini' / 'KITTI' / 'training'
    calib = (mini / 'calib' / '000000.txt').read_text()
    p2 = next(line for line in calib.splitlines() if line.startswith('P2:'))
    zero = tmp_path / 'zero.txt'
    zero.write_text(calib.replace(p2, 'P2: ' + ' '.join(['0'] * 12)))
    image = str(mini / 'image_2' / '000000.png')
    proc = run_in_process('demo', [image, TINY_CONFIG, tiny_ckpt, '--calib', zero,
                                   '--out-dir', tmp_path / 'out'], capsys)
    one_line_error(proc, zero, 'focal lengths (fu, fv) = (0, 0) must be > 0')
    small = tmp_path / '000000.png'
    cv2.imwrite(str(small), cv2.resize(cv2.imread(image), None, fx=0.5, fy=0.5))
    proc = run_in_process('demo', [small, TINY_CONFIG, tiny_ckpt, '--calib',
                                   mini / 'calib' / '000000.txt', '--out-dir', tmp_path / 'out'],
                          capsys)
    one_line_error(proc, small, 'principal point', 'far from its centre')
    assert not list((tmp_path / 'out').glob('*.png'))


# ---------------------------------------------------------------- issue 25, items 11-12
def test_nested_cfg_option_typo_names_key_component_and_match(tiny_ckpt, tmp_path, capsys,
                                                              monkeypatch):
    """`model.bbox_head.loss_depth.loss_weigth=1` was `TypeError: __init__() got an unexpected
    keyword argument` from deep in the model build: one line naming the full dotted key, the
    component and its close match, under tools/train.py, tools/test.py and
    tools/deployment/export_onnx.py, before anything is built or written."""
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    typo = 'model.bbox_head.loss_depth.loss_weigth=1'
    words = ('--cfg-options ' + typo, 'LaplacianAleatoricDepthLoss',
             f'model.bbox_head.loss_depth in {TINY_CONFIG}', "no argument 'loss_weigth'",
             'did you mean loss_weight? (--cfg-options model.bbox_head.loss_depth.loss_weight=1)')
    wd = tmp_path / 'wd'
    proc = run_in_process('train', [TINY_CONFIG, '--work-dir', wd, '--cfg-options', typo], capsys)
    one_line_error(proc, *words)
    proc = run_in_process('test', [TINY_CONFIG, tiny_ckpt, '--work-dir', wd, '--cfg-options',
                                   typo], capsys)
    one_line_error(proc, *words)
    onnx = tmp_path / 'x.onnx'
    proc = run_in_process('deployment/export_onnx', [TINY_CONFIG, 'none', onnx,
                                                     '--cfg-options', typo], capsys)
    one_line_error(proc, *words)
    # a missing middle part is named at its component (the head), with the key to use
    proc = run_in_process('train', [TINY_CONFIG, '--work-dir', wd, '--cfg-options',
                                    'model.bbox_head.loss_dpeth.loss_weight=2'], capsys)
    one_line_error(proc, 'CenterNet3DHead', "no argument 'loss_dpeth'",
                   '--cfg-options model.bbox_head.loss_depth.loss_weight=2')
    assert not wd.exists() and not onnx.exists()
    # the options the messages give (and other new, accepted arguments) pass the check
    train = load_tool('train')
    cfg = train.build_cfg(train.parse_args([
        TINY_CONFIG, '--work-dir', str(wd), '--cfg-options',
        'model.bbox_head.loss_depth.loss_weight=2', 'optim_wrapper.clip_grad.max_norm=5',
        'model.bbox_head.loss_heatmap.type=mmdet.FocalLoss',
        'model.bbox_head.loss_heatmap.gamma=3.0',
        'param_scheduler.0.convert_to_iter_based=True',  # keys the builders take out
        'optim_wrapper.paramwise_cfg.norm_decay_mult=0.0']))
    assert cfg.model.bbox_head.loss_depth.loss_weight == 2


def test_zero_base_batch_size_is_one_line(tiny_ckpt, tmp_path, capsys, monkeypatch):
    """`auto_scale_lr.base_batch_size=0` was a ZeroDivisionError in mmengine's lr scaling (a
    negative one a negative lr): one line naming the key and the config file's value."""
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    from mmengine.config import Config
    base = Config.fromfile(str(REPO / TINY_CONFIG)).auto_scale_lr.base_batch_size
    wd = tmp_path / 'wd'
    for value in ('0', '-4', 'abc'):
        option = f'auto_scale_lr.base_batch_size={value}'
        proc = run_in_process('train', [TINY_CONFIG, '--work-dir', wd, '--cfg-options', option],
                              capsys)
        one_line_error(proc, TINY_CONFIG, 'auto_scale_lr.base_batch_size must be a positive',
                       f'--cfg-options auto_scale_lr.base_batch_size={base}')
    proc = run_in_process('test', [TINY_CONFIG, tiny_ckpt, '--work-dir', wd, '--cfg-options',
                                   'auto_scale_lr.base_batch_size=0'], capsys)
    one_line_error(proc, 'auto_scale_lr.base_batch_size', 'got 0')
    assert not list(wd.rglob('*.pth'))


def test_ann_file_suffix_in_any_case(tmp_path, capsys, monkeypatch):
    """`ann_file=infos.PKL` passed the allow_pickle check (case-sensitive) and then failed in
    mmengine.load with `TypeError: Unsupported format: PKL`: the suffix is read in any case, so
    `.PKL` needs allow_pickle=True like `.pkl` (no code from the file runs), an unsupported
    suffix is one line naming the file, and a trusted `.PKL` info file is read."""
    import pickle

    from monodle_plugin.datasets import KittiFormatError, MonoDLEKittiDataset
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    marker = tmp_path / 'PWNED'
    payload = tmp_path / 'infos.PKL'
    payload.write_bytes(pickle.dumps(Payload(marker)))
    wd = tmp_path / 'wd'
    proc = run_in_process('train', [TINY_CONFIG, '--work-dir', wd, '--cfg-options',
                                    f'train_dataloader.dataset.ann_file={payload}'], capsys)
    one_line_error(proc, payload, 'can run code', 'allow_pickle=True')
    assert not marker.exists()
    other = tmp_path / 'infos.txt'
    other.write_text('000000\n')
    proc = run_in_process('train', [TINY_CONFIG, '--work-dir', wd, '--cfg-options',
                                    f'train_dataloader.dataset.ann_file={other}'], capsys)
    one_line_error(proc, other, '.pkl', '.json')
    assert not list(wd.rglob('*.pth'))
    # a trusted info file with an upper-case suffix is read (mmdet3d v2 format, two frames)
    mini = REPO / 'demo' / 'kitti_mini' / 'KITTI'
    from monodle_plugin.datasets.kitti_io import read_calib
    infos = dict(metainfo=dict(version='1.1'), data_list=[
        dict(sample_idx=int(sid), images=dict(CAM2=dict(
            img_path=f'{sid}.png',
            cam2img=read_calib(str(mini / 'training' / 'calib' / f'{sid}.txt'))['P2'].tolist())))
        for sid in ('000000', '000001')])
    trusted = tmp_path / 'kitti_infos_train.PKL'
    trusted.write_bytes(pickle.dumps(infos))
    ds = MonoDLEKittiDataset(data_root=str(mini), ann_file=str(trusted), allow_pickle=True)
    assert [ds.get_data_info(i)['sample_id'] for i in range(len(ds))] == ['000000', '000001']
    with pytest.raises(KittiFormatError, match='allow_pickle=True'):
        MonoDLEKittiDataset(data_root=str(mini), ann_file=str(trusted))


def test_negative_onnx_input_size_is_one_line(tmp_path, capsys, monkeypatch):
    """A negative `--input-size` (or a negative test-pipeline `output_size`) was a RuntimeError
    from torch.zeros inside the export: one line naming the flag / config key, no file."""
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    onnx = tmp_path / 'x.onnx'
    proc = run_in_process('deployment/export_onnx', [TINY_CONFIG, 'none', onnx,
                                                     '--input-size', '-320', '96'], capsys)
    one_line_error(proc, '--input-size', 'two positive integers', '-320 x 96')
    key = 'test_dataloader.dataset.pipeline.1.output_size'
    proc = run_in_process('deployment/export_onnx', [TINY_CONFIG, 'none', onnx, '--cfg-options',
                                                     f'{key}=(320,-96)'], capsys)
    one_line_error(proc, f'{TINY_CONFIG}: {key}', '320 x -96')
    assert not onnx.exists()


def test_official_format_checkpoint_names_the_converter(tmp_path, capsys, monkeypatch):
    """An official MonoDLE checkpoint (`{'model_state': ...}`) given to tools/test.py was
    "holds no weights": now it says to convert it, with the converter's command."""
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    official = tmp_path / 'checkpoint_epoch_140.pth'
    torch.save({'epoch': 140, 'model_state': {'backbone.base.base_layer.0.weight':
                                              torch.zeros(16, 3, 7, 7)},
                'optimizer_state': None}, official)
    proc = run_in_process('test', [TINY_CONFIG, official, '--work-dir', tmp_path / 'wd'], capsys)
    last = one_line_error(proc, official, 'official MonoDLE checkpoint',
                          'tools/model_converters/convert_monodle_checkpoint.py')
    assert 'holds no weights' not in last
    assert not list((tmp_path / 'wd').rglob('metrics.json'))


def test_payload_refusals_name_the_file_without_torch_advice(tiny_run, tmp_path, capsys,
                                                            monkeypatch):
    """A planted payload under tools/test.py, `--resume` and `load_from` (zip and legacy
    format): one line naming the file; torch's advice to re-run with weights_only=False (which
    would run the payload) is not quoted; nothing runs."""
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    wd, ckpt = tiny_run
    good = load_checkpoint_file(ckpt)
    marker = tmp_path / 'PWNED'
    payloads = []
    for legacy in (False, True):
        path = tmp_path / f'payload_{"legacy" if legacy else "zip"}.pth'
        torch.save(dict(good, meta=dict(good['meta'], planted=Payload(marker))), path,
                   _use_new_zipfile_serialization=not legacy)
        payloads.append(path)
    run_wd = tmp_path / 'wd'
    base = ['--work-dir', run_wd, '--cfg-options', 'train_dataloader.dataset.indices=2',
            'train_cfg.max_epochs=2', 'train_cfg.val_begin=1000']
    for path in payloads:
        for argv, role in (
                (['test', TINY_CONFIG, path, '--work-dir', run_wd], ''),
                (['train', TINY_CONFIG, *base[:2], '--resume', path, *base[2:]], '--resume'),
                (['train', TINY_CONFIG, *base, f'load_from={path}'], 'load_from')):
            proc = run_in_process(argv[0], argv[1:], capsys)
            last = one_line_error(proc, path, 'refused to load', role, 'GLOBAL io.open')
            assert 'weights_only=False' not in last and 'weights_only` set' not in last, last
    assert not marker.exists()
    assert not list(run_wd.rglob('*.pth'))


def test_legacy_format_checkpoint_resumes_and_loads(tiny_run, tmp_path):
    """A valid checkpoint in torch's legacy (non-zip) format under `--resume` / `load_from`
    was "empty or truncated" although tools/test.py loads it: it resumes (weights_only, our
    allow-list) and trains on; a truncated legacy file is named."""
    wd, ckpt = tiny_run
    legacy = tmp_path / 'epoch_1_legacy.pth'
    torch.save(load_checkpoint_file(ckpt), legacy, _use_new_zipfile_serialization=False)
    with open(legacy, 'rb') as f:
        assert not f.read(2).startswith(b'PK')  # really the legacy format
    run_wd = tmp_path / 'wd'
    proc = run('tools/train.py', TINY_CONFIG, '--work-dir', run_wd, '--resume', legacy,
               '--cfg-options', 'train_dataloader.dataset.indices=2', 'train_cfg.max_epochs=2',
               'train_cfg.val_begin=1000', timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(p.name for p in run_wd.rglob('*.pth')) == ['epoch_2.pth']
    resumed = load_checkpoint_file(str(next(run_wd.rglob('epoch_2.pth'))))
    assert resumed['meta']['epoch'] == 2
    cut = tmp_path / 'cut_legacy.pth'
    cut.write_bytes(legacy.read_bytes()[:4000])
    train = load_tool('train')
    with pytest.raises(CheckpointError, match=r'\(--resume\): not a readable torch checkpoint'):
        train.build_cfg(train.parse_args([TINY_CONFIG, '--work-dir', str(run_wd), '--resume',
                                          str(cut)]))
    from monodle_plugin.utils.config_checks import check_load_from
    assert check_load_from(str(legacy)) == str(legacy)  # load_from: accepted before the runner
    with pytest.raises(CheckpointError, match=r'\(load_from\): not a readable'):
        check_load_from(str(cut))


def test_disk_full_while_saving_names_the_path_and_removes_the_partial_file(
        tmp_path, capsys, monkeypatch):
    """Disk full while a checkpoint is written (the write raises ENOSPC after half the bytes):
    one line naming the checkpoint and the fix, no `.tmp` left, no last_checkpoint written."""
    import errno

    from mmengine.fileio.backends import LocalBackend
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    real_put = LocalBackend.put

    def full_disk(self, obj, filepath):
        if not str(filepath).endswith('.tmp'):
            return real_put(self, obj, filepath)
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(LocalBackend, 'put', full_disk)
    wd = tmp_path / 'wd'
    proc = run_in_process('train', [TINY_CONFIG, '--work-dir', wd, '--cfg-options',
                                    'train_dataloader.dataset.indices=2', 'train_cfg.max_epochs=1',
                                    'train_cfg.val_begin=1000'], capsys)
    last = one_line_error(proc, 'epoch_1.pth: saving the checkpoint failed',
                          'No space left on device', 'free space', '.epoch_1.pth.tmp was removed')
    assert str(wd) in last
    assert not [p for p in wd.rglob('*') if p.name.endswith(('.tmp', '.pth'))]
    assert not (wd / 'last_checkpoint').exists()


def test_non_numeric_distill_lambda_names_the_key(tmp_path, capsys, monkeypatch):
    """`distill.lambda=abc` under tools/train.py: one line naming the key and the fix."""
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    proc = run_in_process('train', ['configs/demo/monodle_yolo8_da3_kitti_mini.py',
                                    '--work-dir', tmp_path / 'wd', '--cfg-options',
                                    'distill.lambda=abc'], capsys)
    one_line_error(proc, 'distill.lambda', "got 'abc'", '--cfg-options distill.lambda=<number>')
    assert not list((tmp_path / 'wd').rglob('*.pth'))


def test_utf8_bom_in_label_and_split_files_is_accepted(tmp_path, capsys, monkeypatch):
    """A UTF-8 BOM (Windows editors) at the start of a label or split file was reported as the
    unknown class '\\ufeffCar': tools/misc/check_kitti_layout.py passes and tools/kitti_eval.py
    gives the same table as on the files without it (both run as their __main__ does)."""
    import re
    import shutil
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    mini = REPO / 'demo' / 'kitti_mini' / 'KITTI'
    root = tmp_path / 'KITTI'
    shutil.copytree(mini, root)
    bom = b'\xef\xbb\xbf'
    split = root / 'ImageSets' / 'val.txt'
    ids = split.read_text().split()
    for path in [split, root / 'ImageSets' / 'train.txt',
                 *[root / 'training' / 'label_2' / f'{i}.txt' for i in ids]]:
        path.write_bytes(bom + path.read_bytes())
    proc = run_in_process('misc/check_kitti_layout', [root, '--no-content'], capsys)
    assert proc.returncode == 0 and 'ufeff' not in proc.stdout, proc.stdout + proc.stderr
    assert proc.stdout.count('complete') == 3
    # results: the labels with a score (plain files), evaluated against both label folders
    pred = tmp_path / 'pred'
    pred.mkdir()
    for i in ids:
        lines = (mini / 'training' / 'label_2' / f'{i}.txt').read_text().splitlines()
        (pred / f'{i}.txt').write_text(''.join(
            f'{line} 0.9\n' if len(line.split()) == 15 else f'{line}\n' for line in lines
            if line.strip() and not line.startswith('DontCare')))
    tables = []
    for labels, split_file in ((mini / 'training' / 'label_2', mini / 'ImageSets' / 'val.txt'),
                               (root / 'training' / 'label_2', split)):
        proc = run_in_process('kitti_eval', ['--gt', labels, '--pred', pred, '--split',
                                             split_file], capsys)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        tables.append(re.sub(r'read [\d.]+ s, evaluated [\d.]+ s', '', proc.stdout))  # timing
    assert tables[0] == tables[1] and 'Car' in tables[0]


def test_amp_trains_on_this_machine(tmp_path, capsys, monkeypatch):
    """`tools/train.py --amp` on a machine without CUDA trains in bfloat16 autocast
    (BF16OptimWrapper: the README's --amp row; with CUDA, AmpOptimWrapper), exit 0, and saves
    a float32 checkpoint with finite weights (one iteration of the tiny config)."""
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    wd = tmp_path / 'wd'
    proc = run_in_process('train', [TINY_CONFIG, '--amp', '--work-dir', wd, '--cfg-options',
                                    'train_dataloader.dataset.indices=2', 'train_cfg.max_epochs=1',
                                    'train_cfg.val_begin=1000'], capsys)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    expected = 'AmpOptimWrapper' if torch.cuda.is_available() else 'BF16OptimWrapper'
    dumped = list(wd.glob('*.py'))  # the config as run (mmengine dumps it into the work dir)
    assert len(dumped) == 1 and f"type='{expected}'" in dumped[0].read_text()
    state = load_checkpoint_file(str(next(wd.rglob('epoch_1.pth'))))['state_dict']
    floats = [v for v in state.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in floats)
