"""Progress lines of long jobs."""
from projects.earthmind.utils.progress import Progress, format_duration


def test_durations():
    assert [format_duration(s) for s in (6, 245, 3723)] == ['6s', '4m05s', '1h02m03s']


def test_lines_count_only_this_runs_items():
    lines = []
    progress = Progress(total=100, done=40, log=lines.append, interval=0.0, unit='windows')
    progress.started -= 10.0  # ten seconds into the run
    progress.update(60)       # 20 windows in 10 s, 40 left
    assert lines == ['windows 60/100, 2.00 windows/s, ETA 20s']
    progress.close(100)
    assert lines[-1].startswith('windows 100/100, ') and lines[-1].endswith('ETA 0s')
    quiet = Progress(total=1, done=0, log=None)
    quiet.update(1)
    quiet.close(1)


def test_advance_counts_on_and_names_the_job():
    lines = []
    progress = Progress(total=4, log=lines.append, interval=0.0, unit='captions', what='METEOR')
    progress.started -= 2.0
    progress.advance()
    progress.advance(3)
    assert lines[0] == 'METEOR: captions 1/4, 0.50 captions/s, ETA 6s'
    assert lines[1].startswith('METEOR: captions 4/4, ')
    progress.close()
    assert lines[-1].startswith('METEOR: captions 4/4, ') and lines[-1].endswith('ETA 0s')
