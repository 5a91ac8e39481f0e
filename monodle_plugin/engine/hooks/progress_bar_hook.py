"""A progress bar over validation / test iterations (``tools/test.py`` adds it)."""
from __future__ import annotations

import sys
from typing import Optional, TextIO

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.utils import ProgressBar


@HOOKS.register_module()
class EvalProgressBarHook(Hook):
    """mmengine's ``ProgressBar`` over the images of a validation or test epoch (main process).

    The logger prints one line every ``LoggerHook.interval`` iterations; on KITTI val (3769
    images) evaluation is minutes of silence between them on a CPU, so the bar shows the count,
    the rate and the time left. It writes to ``file`` (default stderr, so that a captured stdout
    keeps only the log and the AP table); the bar counts images (``len(dataset)``), each
    iteration advancing by its batch size. Nothing is drawn on other ranks.

    Args:
        file: stream of the bar (None: ``sys.stderr`` at the time the epoch starts).
        bar_width: characters of the bar (mmengine's default 50; it shrinks to the terminal).
    """

    priority = 'VERY_LOW'

    def __init__(self, file: Optional[TextIO] = None, bar_width: int = 50) -> None:
        self.file = file
        self.bar_width = bar_width
        self._bar: Optional[ProgressBar] = None

    def _start(self, runner, loop) -> None:
        self._bar = None
        if not is_main_process():
            return
        dataloader = getattr(loop, 'dataloader', None)
        try:
            total = len(dataloader.dataset)
        except (AttributeError, TypeError):  # an iterable dataset without a length
            total = 0
        self._bar = ProgressBar(total, self.bar_width, file=self.file or sys.stderr)

    def _step(self, data_batch) -> None:
        if self._bar is None:
            return
        samples = data_batch.get('data_samples') if isinstance(data_batch, dict) else None
        self._bar.update(max(1, len(samples)) if samples is not None else 1)

    def _end(self) -> None:
        if self._bar is not None:
            self._bar.file.write('\n')
            self._bar.file.flush()
        self._bar = None

    def before_val_epoch(self, runner) -> None:
        self._start(runner, runner.val_loop)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._step(data_batch)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._end()

    def before_test_epoch(self, runner) -> None:
        self._start(runner, runner.test_loop)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._step(data_batch)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._end()
