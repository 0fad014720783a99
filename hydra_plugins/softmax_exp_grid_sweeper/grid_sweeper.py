"""The project's default sweeper: Hydra's basic grid sweeper, checking each override value once.

Before it launches a batch, Hydra's BasicSweeper composes every job's config to fail early, and the
launcher then composes each job again: two compositions a job (~0.1 s each; 2 x 100 for a 10 x 10 grid).
A composition fails because of a value, not because of a pair of values, so composing only the jobs that
bring a value not composed yet (5 of a 3 x 3 grid, 19 of a 10 x 10 one) catches the same errors before
any job starts; the launcher still composes every job. ``hydra/sweeper=grid`` (conf/hydra/sweeper/grid.yaml).
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper


class GridSweeper(BasicSweeper):
    """BasicSweeper with the cheaper batch check described in the module's doc."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        seen: set[str] = set()
        bringing_new = []
        for overrides in batch:
            if not seen.issuperset(overrides):
                bringing_new.append(overrides)
                seen.update(overrides)
        super().validate_batch_is_legal(bringing_new)
