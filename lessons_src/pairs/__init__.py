"""Machinery for one pair each, named like its notebooks: `pNN_topic.py` serves `notebooks/NN_topic*.ipynb`.

The graders of the same pair live in `lessons_src/exercises/eNN_topic.py`; the course's infrastructure (server,
database, demo API, runs, plots, checks) lives in the package's top level.
"""
