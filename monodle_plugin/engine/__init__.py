from . import hooks, optim_wrappers, runners, schedulers  # noqa: F401
