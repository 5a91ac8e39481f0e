from .distill_weight_hook import DistillWeightHook
from .finite_loss_hook import FiniteLossHook
from .global_loss_log_hook import GlobalLossLogHook
from .model_complexity_hook import ModelComplexityHook
from .monodle_visualization_hook import MonoDLEVisualizationHook
from .norm_eval_hook import NormEvalHook
from .progress_bar_hook import ProgressBarHook
from .resumable_checkpoint_hook import ResumableCheckpointHook
from .resume_check_hook import ResumeCheckHook

__all__ = [
    'DistillWeightHook', 'FiniteLossHook', 'GlobalLossLogHook', 'ModelComplexityHook',
    'MonoDLEVisualizationHook', 'NormEvalHook', 'ProgressBarHook', 'ResumableCheckpointHook',
    'ResumeCheckHook'
]
