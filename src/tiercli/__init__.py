"""tiercli: route coding-agent LLM calls to the cheapest capable tier and keep a ledger of the cost."""

__version__ = "0.1.0"
