"""Progress lines of a long run: windows done, windows per second and the time left."""
import time


def format_duration(seconds):
    """``1h02m03s``, ``4m05s`` or ``6s``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f'{hours}h{minutes:02d}m{seconds:02d}s'
    return f'{minutes}m{seconds:02d}s' if minutes else f'{seconds}s'


class RunProgress:
    """Prints ``windows D/N, R windows/s, ETA T`` at most every ``interval`` seconds.

    The rate counts only what this run did (windows finished by an earlier, interrupted run are not part of it),
    over all processes, as told by :meth:`update`.

    Args:
        total (int): Windows of the run.
        done (int): Windows finished when the run starts.
        log (callable | None): Where lines go (None prints nothing).
        interval (float): Seconds between lines.
    """

    def __init__(self, total, done, log, interval=5.0):
        self.total, self.start_done, self.log, self.interval = total, done, log, interval
        self.started = self.last = time.monotonic()

    def line(self, done):
        """The progress line for ``done`` finished windows."""
        elapsed = time.monotonic() - self.started
        rate = (done - self.start_done) / elapsed if elapsed > 0 else 0.0
        eta = format_duration((self.total - done) / rate) if rate > 0 else '?'
        return f'windows {done}/{self.total}, {rate:.2f} windows/s, ETA {eta}'

    def update(self, done):
        """Report ``done`` finished windows (printed when ``interval`` has passed)."""
        now = time.monotonic()
        if self.log is not None and now - self.last >= self.interval:
            self.last = now
            self.log(self.line(done))

    def close(self, done):
        """The last line of this process's work."""
        if self.log is not None:
            self.log(self.line(done))
