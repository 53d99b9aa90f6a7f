"""The Windows vocabulary, as the headers define it: values, structures and the session state table.

This is the bottom of the Windows side. ``sessionio.model`` needs these names to be an NT object
model (a filter completes with an NTSTATUS, a session moves through IO_SESSION_STATE), and
``sessionio.nt`` (the routines, above the model) re-exports them under their Windows names.
Keeping them below the model is what lets the model use them without importing the routines.
"""
