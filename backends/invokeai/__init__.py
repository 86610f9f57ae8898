"""The InvokeAI 6.x integration: `client` (REST), `graphs` (enqueue bodies), `errors`, `masks`, and `fake`
(a faithful fake server for tests)."""
