"""Wiring: the live kernel (LinuxKernel) and the services feeding the model from linux/."""
