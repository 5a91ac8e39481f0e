from .monodle import MonoDLE, drawing_score_thr

__all__ = ['MonoDLE', 'drawing_score_thr']
