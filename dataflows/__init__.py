"""Bytewax wiring of session-promotions: settings, sources, sinks, operator adapters, metrics."""
