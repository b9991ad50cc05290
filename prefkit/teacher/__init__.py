"""The teacher: any OpenAI-compatible chat endpoint, called with limits, retries and a response cache."""
