# Dense depth distillation from DA3 metric depth: the switches (docs/distillation.md, section 2).
# MonoDLERunner expands them into LoadDA3Depth, loss_depth_distill and DistillWeightHook.
use_da3_depth = True
distill = dict(
    lambda_=0.5,  # `distill.lambda` (a Python keyword: spelt lambda_); 0 = the baseline
    loss_type='l1',  # 'l1' | 'silog'
    foreground_weight=5.0,
    foreground='heatmap',  # 'heatmap' (soft) | 'box' | 'none'
    silog_variance_factor=0.5,
    silog_weighted=False,
    depth_dir='DA3_depth_results',  # relative to data_root, or absolute
    max_depth=None,  # metres; e.g. 80.0 drops DA3's saturated far / sky pixels
    on_missing='error',  # 'error' | 'skip'
    warmup_iters=0,
    off_after_epoch=None,
    use_uncertainty=False,  # the seed's Kendall loss + the head's log-variance branch
    scale_by_crop=True,  # teacher x crop scale (the seed: False)
    interpolation='nearest',  # 'nearest' | 'bilinear'
    cache=False,  # keep each depth file in memory once read (small sets, no worker restarts)
)
