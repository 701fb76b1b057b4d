"""Plain-text table of a test run's metrics."""


def format_metrics_table(metrics):
    """Render ``{'prefix/name': value}`` as an aligned two-column table (counts as integers, scores with 4
    decimals).

    Args:
        metrics (dict): Metrics as returned by mmengine's test loop.

    Returns:
        str: The table.
    """
    if not metrics:
        return 'no metrics'
    rows = [(name, f'{value:.4f}' if isinstance(value, float) else str(value)) for name, value in metrics.items()]
    width = max(len('metric'), *(len(name) for name, _ in rows))
    value_width = max(len('value'), *(len(value) for _, value in rows))
    rule = f'+-{"-" * width}-+-{"-" * value_width}-+'
    lines = [rule, f'| {"metric".ljust(width)} | {"value".rjust(value_width)} |', rule]
    lines += [f'| {name.ljust(width)} | {value.rjust(value_width)} |' for name, value in rows]
    lines.append(rule)
    return '\n'.join(lines)
