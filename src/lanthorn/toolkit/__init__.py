"""The lecture's socket examples as small, correct tools: echo servers and clients."""
