"""The `seeknal` command line; the entry point is ``seeknal.cli.main:main``.

Importing it tunes the garbage collector for a short-lived command, before the command
imports anything: a command allocates far more objects than it leaves in cycles, and
collecting every 700 allocations (Python's default) took about 10 ms of a one-day run's
imports and a few percent of a cold compile. Importing the compiler or the runtime as a
library leaves the collector alone.
"""

import gc

gc.set_threshold(200_000, 30, 30)
