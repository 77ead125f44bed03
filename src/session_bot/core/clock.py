"""The clock as a type: every part that needs the time gets one of these injected.

The core never reads the time itself; ``adapters.clock`` has the real and the test clocks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]
"""Returns the current moment as an aware UTC datetime."""
