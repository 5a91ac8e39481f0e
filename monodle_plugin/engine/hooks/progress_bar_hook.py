"""A progress bar over training, validation or test iterations (``--progress`` of our tools)."""
from __future__ import annotations

import sys
from typing import Optional, Sequence, TextIO

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.utils import ProgressBar

PHASES = ('train', 'val', 'test')


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """mmengine's ``ProgressBar`` over the iterations of training and / or the images of a
    validation or test epoch, on the main process.

    The logger prints one line every ``LoggerHook.interval`` iterations; on KITTI val (3769
    images) evaluation is minutes of silence between them on a CPU, and a short CPU training
    logs hundreds of lines where a person wants the count, the rate and the time left. The bar
    writes to ``file`` (default stderr, so a captured stdout keeps only the log and the AP
    table). Training counts iterations (``max_iters``, from the resumed iteration on);
    validation / test count images (``len(dataset)``), each iteration advancing by its batch.
    ``tools/test.py`` adds it for ``val`` / ``test`` (``--no-progress`` to omit it),
    ``tools/train.py --progress`` for all three phases; configs do not need it.

    Args:
        phases: any of ``'train'``, ``'val'``, ``'test'``.
        file: stream of the bar (None: ``sys.stderr`` at the time the phase starts).
        bar_width: characters of the bar (mmengine's default 50; it shrinks to the terminal).
    """

    priority = 'VERY_LOW'

    def __init__(self, phases: Sequence[str] = ('val', 'test'), file: Optional[TextIO] = None,
                 bar_width: int = 50) -> None:
        unknown = sorted(set(phases) - set(PHASES))
        if unknown:
            raise ValueError(f'ProgressBarHook: unknown phases {unknown}; known: {PHASES}')
        self.phases = tuple(phases)
        self.file = file
        self.bar_width = bar_width
        self._bar: Optional[ProgressBar] = None
        self._train_bar: Optional[ProgressBar] = None  # held while a validation runs

    def _start(self, phase: str, total: int) -> None:
        self._bar = None
        if phase in self.phases and is_main_process():
            self._bar = ProgressBar(max(0, total), self.bar_width,
                                    file=self.file or sys.stderr)

    def _step(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(max(1, n))

    def _end(self) -> None:
        if self._bar is not None:
            self._bar.file.write('\n')
            self._bar.file.flush()
        self._bar = None

    @staticmethod
    def _dataset_len(loop) -> int:
        try:
            return len(loop.dataloader.dataset)
        except (AttributeError, TypeError):  # an iterable dataset without a length
            return 0

    @staticmethod
    def _batch_len(data_batch) -> int:
        samples = data_batch.get('data_samples') if isinstance(data_batch, dict) else None
        return len(samples) if samples is not None else 1

    # training: iterations
    def before_train(self, runner) -> None:
        self._start('train', runner.max_iters - runner.iter)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._step()

    def after_train(self, runner) -> None:
        self._end()

    # validation inside training pauses the training bar: its own bar, then a fresh line
    def before_val_epoch(self, runner) -> None:
        if self._bar is not None:  # the training bar: continue below the validation one
            self._bar.file.write('\n')
        self._train_bar, self._bar = self._bar, None
        self._start('val', self._dataset_len(runner.val_loop))

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._step(self._batch_len(data_batch))

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._end()
        self._bar, self._train_bar = self._train_bar, None

    def before_test_epoch(self, runner) -> None:
        self._start('test', self._dataset_len(runner.test_loop))

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._step(self._batch_len(data_batch))

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._end()
