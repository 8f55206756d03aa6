"""codeloop: agents whose actions are code."""
