"""Sleep replay: a trained network replays noisy input as a spiking network and changes its
own weights by a local rule.

`src` holds one Sleep Replay Consolidation phase (Tadros et al. 2022) with a numpy and a Brian2
engine proven equal; `protocol` the class-incremental digits protocol it is tested on
(sequential, sleep, rehearsal, rehearsal + sleep, joint). Importing this package does not import
Brian2: only ``engine="brian2"`` does.
"""

from neurosim.sleep.protocol import (
    CONDITIONS,
    REFERENCE_SLEEP,
    ConditionResult,
    ProtocolConfig,
    digits_splits,
    run_condition,
)
from neurosim.sleep.src import SleepParams, SleepResult, sleep, sleep_network

__all__ = [
    "CONDITIONS",
    "REFERENCE_SLEEP",
    "ConditionResult",
    "ProtocolConfig",
    "SleepParams",
    "SleepResult",
    "digits_splits",
    "run_condition",
    "sleep",
    "sleep_network",
]
