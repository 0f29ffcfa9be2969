"""Customer-churn pipeline steps, packaged the way a team ships them to SageMaker.

The entry points live in ``churn.steps`` and share code with relative imports
(``from ..features import ...``), so they must be imported by their dotted module name with
``scenarios/src`` on the import path, never as loose files.
"""

__version__ = "1.4.0"
