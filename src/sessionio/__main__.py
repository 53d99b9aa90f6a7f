"""``python -m sessionio`` is the ``sessionio`` command."""

from sessionio.cli.main import main

raise SystemExit(main())
