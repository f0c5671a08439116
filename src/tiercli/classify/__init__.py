"""Classifiers: static (task type -> tier), local (no LLM call), llm (shadow router), hybrid."""
