"""One module per subcommand, each exposing ``COMMAND``; ``main`` lists them in ``COMMANDS``."""
