"""Training: losses, optimisers, lambda_TCR schedules and the BPTT loop."""
from .loop import HISTORY_COLUMNS, TrainResult, train
from .resume import resume
from .loss import task_loss, tcr_loss
from .objective import Evaluation, loss_and_grads
from .optim import SGD, Adam, clip_by_global_norm, make_optimizer
from .schedules import make_schedule

__all__ = ["HISTORY_COLUMNS", "TrainResult", "resume", "train", "task_loss", "tcr_loss", "Evaluation",
           "loss_and_grads", "SGD", "Adam", "clip_by_global_norm", "make_optimizer", "make_schedule"]
