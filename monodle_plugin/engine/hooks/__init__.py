from .distill_weight_hook import DistillWeightHook  # noqa: F401
from .global_loss_log_hook import GlobalLossLogHook  # noqa: F401
from .monodle_visualization_hook import MonoDLEVisualizationHook  # noqa: F401
from .resumable_checkpoint_hook import ResumableCheckpointHook  # noqa: F401
