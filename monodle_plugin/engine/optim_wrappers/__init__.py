from .bf16_optim_wrapper import BF16OptimWrapper, apply_amp

__all__ = ['BF16OptimWrapper', 'apply_amp']
