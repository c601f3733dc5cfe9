"""The LLM layer: prompts, the deliverable schema and the backends that produce deliverables."""
