"""What a run measured, shown to people: records, comparisons, recommendations, tables, charts.

Plain modules (no pytest import): the pytest hooks, the ``cursus-runtime`` command and the
notebook API all use them.
"""
