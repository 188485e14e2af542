"""``python -m kernels``: the same CLI as the ``kernels`` command."""

from kernels.cli import main

raise SystemExit(main())
