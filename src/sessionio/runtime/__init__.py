"""Wiring: the live kernel (LinuxKernel) and the services feeding the model from linux/.

Importing it installs the live kernel as the default one, so that on Linux the object-less
routines (``nt.ProcessIdToSessionId``) answer for this machine without any setup.
"""

import sys

from sessionio.model.kernel import set_default_kernel_factory
from sessionio.runtime.linux_kernel import LinuxKernel as LinuxKernel

if sys.platform == "linux":
    set_default_kernel_factory(LinuxKernel)
