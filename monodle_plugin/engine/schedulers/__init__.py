from .cosine_warmup_lr import MonoDLECosineWarmupLR, MonoDLECosineWarmupParamScheduler

__all__ = ['MonoDLECosineWarmupLR', 'MonoDLECosineWarmupParamScheduler']
