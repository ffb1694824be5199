"""One read at a time, however many changes ask for it: a burst of watch events costs one
read more, not one each. Pure."""

from __future__ import annotations


class OneAtATime:
    def __init__(self) -> None:
        self.running = self.again = False

    def start(self) -> bool:
        """True: run now. False: one runs already; it is run once more when it ends."""
        if self.running:
            self.again = True
            return False
        self.running = True
        return True

    def done(self) -> bool:
        """The run ended; True when it must run again (asked for meanwhile)."""
        again, self.running, self.again = self.again, False, False
        return again
