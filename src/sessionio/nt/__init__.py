"""The Windows contract: constants, status codes, structures, the routines."""
