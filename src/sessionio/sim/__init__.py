"""The simulated NT kernel: deterministic, no I/O."""
