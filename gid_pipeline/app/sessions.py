"""Which photo each browser session shows, so that Gradio's repeated change events act once."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class ShownPhotos:
    """Which photo each browser session shows on the poke tab, so one new photo resets the chosen point once.

    Gradio fires ``change`` two or three times for one new photo, within a second and sometimes concurrently, and
    each call sees the same stale session state; a point clicked between the first call and a late repeat would be
    wiped. This record is updated under a lock as a call starts, so of the calls for one photo within
    ``repeat_window`` seconds only the first claims it. Later, the same photo is new again (its session state may
    have expired meanwhile). At most ``max_sessions`` sessions are remembered (least recently used dropped).
    """

    def __init__(
        self, max_sessions: int = 1000, repeat_window: float = 30.0, clock: Callable[[], float] = time.monotonic
    ):
        self.max_sessions, self.repeat_window, self.clock = max_sessions, repeat_window, clock
        self._shown: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, session: str, path: str) -> bool:
        """True if ``path`` is new for ``session`` (now recorded as shown); False for a repeat of its change."""
        now = self.clock()
        with self._lock:
            shown = self._shown.get(session)
            if shown is not None and shown[0] == path and now - shown[1] <= self.repeat_window:
                return False
            self._shown[session] = (path, now)
            self._shown.move_to_end(session)
            while len(self._shown) > self.max_sessions:
                self._shown.popitem(last=False)
            return True

    def forget(self, session: str) -> None:
        """The session shows no photo (cleared, or the photo could not be read): the next one is new."""
        with self._lock:
            self._shown.pop(session, None)
