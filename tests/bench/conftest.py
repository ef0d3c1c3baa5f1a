"""The benchmark is run by ``make bench`` (``python -m tests.bench``), never collected by pytest."""

collect_ignore_glob = ["*.py"]
