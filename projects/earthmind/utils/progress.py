"""Progress lines of long work: items done, items per second and the time left.

One printer for every long job of the toolkit: scene inference (windows), the test loop (batches) and the slow
metric stages (captions scored by METEOR, ...).
"""
import time


def format_duration(seconds):
    """``1h02m03s``, ``4m05s`` or ``6s``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f'{hours}h{minutes:02d}m{seconds:02d}s'
    return f'{minutes}m{seconds:02d}s' if minutes else f'{seconds}s'


class Progress:
    """Prints ``[what: ]UNIT D/N, R UNIT/s, ETA T`` at most every ``interval`` seconds.

    The rate counts only what this run did (items finished by an earlier, interrupted run are not part of it), as
    told by :meth:`update`.

    Args:
        total (int): Items of the job.
        done (int): Items finished when the job starts.
        log (callable | None): Where lines go (None prints nothing).
        interval (float): Seconds between lines.
        unit (str): What is counted, e.g. ``'windows'``.
        what (str | None): The job's name, put before each line.
    """

    def __init__(self, total, done=0, log=None, interval=5.0, unit='items', what=None):
        self.total, self.start_done, self.log, self.interval = total, done, log, interval
        self.unit, self.what = unit, what
        self.done = done
        self.started = self.last = time.monotonic()

    def line(self, done):
        """The progress line for ``done`` finished items."""
        elapsed = time.monotonic() - self.started
        rate = (done - self.start_done) / elapsed if elapsed > 0 else 0.0
        eta = format_duration((self.total - done) / rate) if rate > 0 else '?'
        prefix = f'{self.what}: ' if self.what else ''
        return f'{prefix}{self.unit} {done}/{self.total}, {rate:.2f} {self.unit}/s, ETA {eta}'

    def update(self, done):
        """Report ``done`` finished items (printed when ``interval`` has passed)."""
        self.done = done
        now = time.monotonic()
        if self.log is not None and now - self.last >= self.interval:
            self.last = now
            self.log(self.line(done))

    def advance(self, count=1):
        """Report ``count`` more finished items."""
        self.update(self.done + count)

    def close(self, done=None):
        """The last line of the job (``done`` defaults to what was reported)."""
        if self.log is not None:
            self.log(self.line(self.done if done is None else done))
