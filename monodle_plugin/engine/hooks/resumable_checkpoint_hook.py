"""ResumableCheckpointHook: atomic checkpoints that carry the random state, in the run folder.

mmengine's ``CheckpointHook`` writes ``epoch_N.pth`` in place and then ``last_checkpoint``; with
``max_keep_ckpts`` it even deletes the previous checkpoint *before* writing the new one. A
SIGKILL while saving therefore leaves a truncated file (or none) that ``--resume`` then fails to
load. It also does not store the random-number generators, so a resumed run draws different
augmentations than the uninterrupted one. This subclass:

- writes ``.<name>.tmp``, flushes it to disk and ``os.replace``-s it onto ``<name>`` (atomic on
  POSIX), then rewrites ``<work_dir>/last_checkpoint`` the same way, and only then removes
  checkpoints beyond ``max_keep_ckpts``: at every instant ``last_checkpoint`` names a complete,
  loadable file (``save_best`` checkpoints, which resume never uses, keep mmengine's writing);
- stores the Python / NumPy / torch (and current GPU's CUDA) generator states of every rank under
  ``checkpoint['rng_states']`` and restores them at ``before_train`` of a resumed run (same
  world size; otherwise it warns and keeps the freshly seeded state);
  Bit-identical resume (same weights as the uninterrupted run, tested) holds with
  ``num_workers=0``; with dataloader worker processes the augmentations after a resume are drawn
  by freshly seeded workers (same distribution, other draws), as worker states are not saved;
- saves into the run folder ``<work_dir>/<timestamp>/`` (next to the logs) unless ``out_dir`` is
  given; a resumed run keeps writing into the run folder of the checkpoint it resumed from when
  that folder belongs to the same work dir (else into its own new run folder).
"""
from __future__ import annotations

import logging
import os
import os.path as osp
import random
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
from mmdet3d.registry import HOOKS
from mmengine.dist import get_dist_info, is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

RNG_KEY = 'rng_states'


def capture_rng_state() -> dict:
    """Generator states of this process: ``python``, ``numpy``, ``torch`` and ``cuda`` (the
    state of this process's current GPU only, so that a resume with fewer visible GPUs per
    process, e.g. torchrun -> slurm with one GPU per task, can restore it)."""
    state = dict(python=random.getstate(), numpy=np.random.get_state(),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state(torch.cuda.current_device())
    return state


def restore_rng_state(state: dict) -> None:
    """Inverse of :func:`capture_rng_state`; the CUDA state goes to the current GPU.

    Older checkpoints hold ``torch.cuda.get_rng_state_all()`` (a list, one state
    per GPU the process saw): the entry of the current GPU is used when the list has one, else
    the first (logged).
    """
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    cuda = state.get('cuda')
    if cuda is None or not torch.cuda.is_available():
        return
    device = torch.cuda.current_device()
    if isinstance(cuda, (list, tuple)):  # old format: every visible GPU's state
        index = device if device < len(cuda) else 0
        print_log(f'The checkpoint holds the CUDA random states of {len(cuda)} GPU(s) (older '
                  f'format); restoring entry {index} on GPU {device}.', logger='current',
                  level=logging.INFO if index == device else logging.WARNING)
        cuda = cuda[index]
    torch.cuda.set_rng_state(cuda, device)


def _fsync_file(path: str) -> None:
    with open(path, 'rb+') as f:
        os.fsync(f.fileno())


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some file systems do not allow opening a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace``."""
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_failed_error(err: OSError, path: str, partial: list, pointer: str):
    """A failed checkpoint write as one line naming ``path`` (the OS error names none), after
    removing the ``partial`` files it left (a half-written ``.tmp`` on a full disk).

    ``pointer`` (``<work_dir>/last_checkpoint``) still names the previous complete checkpoint
    (it is rewritten only after the new file is in place), so ``--resume`` continues from
    there; the message says which.

    Returns:
        the :class:`~monodle_plugin.utils.cli.UserError` to raise.
    """
    import errno

    from ...utils.cli import UserError
    removed = []
    for part in partial:
        try:
            if osp.isfile(part):
                os.remove(part)
                removed.append(osp.basename(part))
        except OSError:
            pass
    reason = err.strerror or str(err) or type(err).__name__
    fix = ('free space on that disk (or set --work-dir on another one)'
           if err.errno in (errno.ENOSPC, errno.EDQUOT) else 'check the folder can be written')
    cleaned = f'; the partial file {", ".join(removed)} was removed' if removed else ''
    previous = ''
    if osp.isfile(pointer):
        with open(pointer) as f:
            previous = f.read().strip()
    then = (f'then continue with --resume ({pointer} still names the previous complete '
            f'checkpoint, {previous})' if previous else 'then start the training again')
    return UserError(f'{path}: saving the checkpoint failed ({reason}){cleaned}; {fix}, '
                     f'{then}')


@HOOKS.register_module()
class ResumableCheckpointHook(CheckpointHook):
    """``CheckpointHook`` with atomic saving, random-state capture and run-folder output.

    Args:
        save_rng_state: store / restore the generator states (default True).
        *args, **kwargs: those of mmengine's ``CheckpointHook`` (``interval``, ``by_epoch``,
            ``max_keep_ckpts``, ``save_best``, ``out_dir``, ...). Without ``out_dir`` the
            checkpoints go to the run folder ``runner.log_dir`` (``work_dir/<timestamp>``).
    """

    def __init__(self, *args, save_rng_state: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.save_rng_state = save_rng_state
        self._rng_to_restore: Optional[list] = None
        self._gathered_rng: Optional[list] = None

    # ------------------------------------------------------------------ where to save
    def before_train(self, runner) -> None:
        in_run_dir = self.out_dir is None
        stale_ids = []
        if in_run_dir and self.max_keep_ckpts > 0:
            ids = list(runner.message_hub.runtime_info.get('keep_ckpt_ids', []))
            stale_ids = ids[:max(len(ids) - self.max_keep_ckpts, 0)]
        super().before_train(runner)  # sets up the backend, best-ckpt and keep-ids bookkeeping
        if in_run_dir and isinstance(self.file_backend, LocalBackend):
            resumed_dir = osp.dirname(runner.message_hub.runtime_info.get('last_ckpt', '') or '')
            work_dir = osp.abspath(runner.work_dir)
            if (getattr(runner, '_resume', False) and resumed_dir and osp.isdir(resumed_dir)
                    and osp.dirname(osp.abspath(resumed_dir)) == work_dir):
                self.out_dir = resumed_dir  # keep the run's checkpoints together
            else:
                self.out_dir = runner.log_dir
            for step in stale_ids:  # what super() would have pruned, in the right folder
                path = osp.join(self.out_dir, self.filename_tmpl.format(step))
                if is_main_process() and osp.isfile(path):
                    os.remove(path)
            runner.logger.info(f'Checkpoints will be saved to {self.out_dir} '
                               f'(atomically; last_checkpoint in {runner.work_dir}).')
        if self._rng_to_restore is not None:
            self._restore(runner, self._rng_to_restore)
            self._rng_to_restore = None

    # ------------------------------------------------------------------ random state
    def _restore(self, runner, states: list) -> None:
        rank, world_size = get_dist_info()
        if len(states) != world_size:
            runner.logger.warning(
                f'The checkpoint holds random states of {len(states)} process(es) but this run '
                f'has {world_size}: keeping the freshly seeded generators (the resumed run is '
                'not bit-identical to an uninterrupted one).')
            return
        restore_rng_state(states[rank])
        runner.logger.info('Restored the Python / NumPy / torch random states from the '
                           'checkpoint.')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the saved random states; they are applied at ``before_train`` of a resume
        (after every seeding the Runner does), never for ``load_from`` fine-tuning or test."""
        if self.save_rng_state and getattr(runner, '_resume', False) and RNG_KEY in checkpoint:
            self._rng_to_restore = checkpoint[RNG_KEY]

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.save_rng_state and self._gathered_rng is not None:
            checkpoint[RNG_KEY] = self._gathered_rng

    def _gather_rng(self) -> None:
        """Collect every rank's generator states (a collective call: all ranks run it)."""
        if not self.save_rng_state:
            return
        state = capture_rng_state()
        _, world_size = get_dist_info()
        if world_size > 1:
            states: list = [None] * world_size
            dist.all_gather_object(states, state)
        else:
            states = [state]
        self._gathered_rng = states

    # ------------------------------------------------------------------ atomic save
    def _save_checkpoint_with_step(self, runner, step, meta):
        self._gather_rng()
        if not isinstance(self.file_backend, LocalBackend):  # remote storage: mmengine's way
            return super()._save_checkpoint_with_step(runner, step, meta)

        to_remove = []
        if self.max_keep_ckpts > 0:
            if not (len(self.keep_ckpt_ids) > 0 and self.keep_ckpt_ids[-1] == step):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    old = self.keep_ckpt_ids.popleft()
                    to_remove.append(osp.join(self.out_dir, self.filename_tmpl.format(old)))
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        final_path = osp.join(self.out_dir, ckpt_filename)
        tmp_filename = f'.{ckpt_filename}.tmp'
        self.last_ckpt = final_path
        runner.message_hub.update_info('last_ckpt', final_path)

        tmp_path = osp.join(self.out_dir, tmp_filename)
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        try:
            runner.save_checkpoint(  # master-only inside mmengine
                self.out_dir, tmp_filename, self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler, meta=meta,
                by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
            if not is_main_process():
                return
            _fsync_file(tmp_path)
            os.replace(tmp_path, final_path)
            _fsync_dir(self.out_dir)
            atomic_write_text(pointer, final_path)
        except OSError as err:  # disk full, quota, permissions: torch / the OS name no path
            raise save_failed_error(err, final_path, [tmp_path, f'{pointer}.tmp'],
                                    pointer) from None
        for path in to_remove:
            if osp.isfile(path) and path != final_path:
                os.remove(path)
