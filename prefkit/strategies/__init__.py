"""Strategies that turn tasks into chosen/rejected pairs."""
