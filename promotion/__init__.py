"""Pure domain of session-promotions: events, sessions, rules, notifications.

Nothing in this package reads the clock or the environment, and nothing imports bytewax,
kafka or prometheus: wall-clock time and configuration are passed in by `dataflows`.
"""
