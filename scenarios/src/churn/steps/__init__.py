"""SageMaker entry points of the churn pipeline: one module per step, each with ``main()``."""
