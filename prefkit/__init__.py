"""prefkit: from a teacher LLM and a few reviewers to a preference dataset and a DPO-aligned agent."""

__version__ = "0.1.0"
