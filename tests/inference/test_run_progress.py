"""Progress lines of a scene run."""
from projects.earthmind.inference.run_progress import RunProgress, format_duration


def test_durations():
    assert [format_duration(s) for s in (6, 245, 3723)] == ['6s', '4m05s', '1h02m03s']


def test_lines_count_only_this_runs_windows():
    lines = []
    progress = RunProgress(total=100, done=40, log=lines.append, interval=0.0)
    progress.started -= 10.0  # ten seconds into the run
    progress.update(60)       # 20 windows in 10 s, 40 left
    assert lines == ['windows 60/100, 2.00 windows/s, ETA 20s']
    progress.close(100)
    assert lines[-1].startswith('windows 100/100, ') and lines[-1].endswith('ETA 0s')
    quiet = RunProgress(total=1, done=0, log=None)
    quiet.update(1)
    quiet.close(1)
