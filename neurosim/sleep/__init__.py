"""Sleep replay: a trained network replays noisy input as a spiking network and changes its
own weights by a local rule.

`src` holds one Sleep Replay Consolidation phase (Tadros et al. 2022) with a numpy and a Brian2
engine proven equal; `protocol` the class-incremental digits protocol it is tested on
(sequential, sleep, rehearsal, rehearsal + sleep, joint). Importing this package does not import
Brian2: only ``engine="brian2"`` does. The sleep rule itself is `neurosim.plasticity.src`;
`SleepParams()` sleeps a network of any depth (`default_beta`).
"""

from neurosim.sleep.protocol import (
    CONDITIONS,
    REFERENCE_SLEEP,
    ConditionResult,
    ProtocolConfig,
    run_condition,
)
from neurosim.sleep.src import (
    TUNED_BETA,
    SleepParams,
    SleepResult,
    default_beta,
    sleep,
    sleep_network,
)

__all__ = [
    "CONDITIONS",
    "REFERENCE_SLEEP",
    "ConditionResult",
    "ProtocolConfig",
    "SleepParams",
    "SleepResult",
    "TUNED_BETA",
    "default_beta",
    "run_condition",
    "sleep",
    "sleep_network",
]
