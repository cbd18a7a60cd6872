"""Support package of LLM From Scratch: data, build, loading, checks, CLI."""
