"""The Argilla side of prefkit: server launcher, SQL-backed search engine, dataset guidelines.

It runs in the argilla-server environment, not in prefkit's own."""
