"""What tests, benchmarks and offline demos play against: the stand-in OpenAI-compatible server (`standin`) and
its scripted agents (`agents`). Nothing in the library imports it."""
