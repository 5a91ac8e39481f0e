from .distill_weight_hook import DistillWeightHook
from .global_loss_log_hook import GlobalLossLogHook
from .model_complexity_hook import ModelComplexityHook
from .monodle_visualization_hook import MonoDLEVisualizationHook
from .progress_bar_hook import ProgressBarHook
from .resumable_checkpoint_hook import ResumableCheckpointHook

__all__ = [
    'DistillWeightHook', 'GlobalLossLogHook', 'ModelComplexityHook',
    'MonoDLEVisualizationHook', 'ProgressBarHook', 'ResumableCheckpointHook'
]
