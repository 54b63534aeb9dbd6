"""A question to a verified answer: analysis (the question read once), retrieval, the evidence
gate, generators, grounding, and the answer stream every client reads (docs/architecture.md)."""
