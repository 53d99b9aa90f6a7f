"""sessionio: which process, from which login session, asked for each file operation.

The public surface is re-exported here explicitly; every other module is private.
"""

from sessionio.errors import (
    AccessDenied as AccessDenied,
)
from sessionio.errors import (
    NoSuchProcess as NoSuchProcess,
)
from sessionio.errors import (
    PrivilegeError as PrivilegeError,
)
from sessionio.errors import (
    SessionioError as SessionioError,
)

__version__ = "0.1.0"
