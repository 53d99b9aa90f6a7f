"""The simulated NT kernel: deterministic, no I/O."""

from sessionio.sim.kernel import SYSTEM_PID as SYSTEM_PID
from sessionio.sim.kernel import SimKernel as SimKernel
