"""Several processes (``torchrun``, ``accelerate launch``): the barriers a run needs, through accelerate.

One process alone: each call does nothing.
"""

from __future__ import annotations


def wait_for_every_rank() -> None:
    """Hold every rank until rank 0 has written the model and the test scores.

    Without it the other ranks return first and exit while rank 0 still holds the process group, and
    a gloo thread torn down at their exit can abort them (``terminate called without an active
    exception``, SIGABRT): torchrun then kills rank 0 in the middle of writing the run folder.
    """
    from accelerate import PartialState

    PartialState().wait_for_everyone()


def end_distributed() -> None:
    """Close the process group that accelerate opened under torchrun, once a command is done with it."""
    from accelerate import PartialState

    state = PartialState()
    state.wait_for_everyone()
    state.destroy_process_group()
