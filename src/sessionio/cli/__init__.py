"""The ``sessionio`` command line: argparse commands, renderers and exit codes."""
