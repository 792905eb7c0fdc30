"""seeknal: compile YAML + SQL pipelines into a reviewable plan.json and execute exactly that plan."""

__version__ = "0.1.0"
