"""Ctrl-C during training: stop at the next logging step with a checkpoint, and leave the handler as found."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path

import transformers


class StopOnInterrupt(transformers.TrainerCallback):
    """Ctrl-C (SIGINT) ends training at the next logging step, with a checkpoint to resume from.

    The next logging step, not the next step: the Trainer averages the loss it logs over the steps
    since the last log and starts that average afresh on resume, so a stop between two logs would
    change the resumed run's logged loss (metrics.jsonl). A second Ctrl-C stops at once, as Python
    normally does.
    """

    def __init__(self):
        self.requested = self.stopped = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True
        print("\nkayan: stopping at the next logging step and saving a checkpoint (Ctrl-C again to quit now)", file=sys.stderr)

    def on_train_begin(self, args, state, control, **kwargs):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested and (state.global_step % args.logging_steps == 0 or state.global_step >= state.max_steps):
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True
            control.should_evaluate = False  # an unscheduled evaluation would change metrics.jsonl

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.stopped:  # the epoch was cut short: its end-of-epoch evaluation never happens
            control.should_evaluate = control.should_save = False

    def on_train_end(self, args, state, control, **kwargs):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def stop_if_interrupted(interrupt: StopOnInterrupt, trainer, checkpoints: Path) -> None:
    """After a Ctrl-C stop: say where the checkpoint is and how to go on, then end the command (status 130)."""
    if interrupt.requested:
        print(f"kayan: interrupted at step {trainer.state.global_step}; checkpoint saved in {checkpoints}; "
              "continue with --resume", file=sys.stderr)
        raise KeyboardInterrupt


@contextlib.contextmanager
def sigint_kept():
    """The Ctrl-C handler as it was before the block, whatever the block (a stopped Trainer) left."""
    previous = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        if previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)
