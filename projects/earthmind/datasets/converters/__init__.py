"""Converters from public EO dataset formats into EarthMind records (``data/README.md``).

One module per source format; :mod:`.conversion` holds the shared record validation and the
kept/rejected report. The command-line front ends are ``tools/data/convert_*.py``.
"""
