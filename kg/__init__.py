"""Jiceng KG: a knowledge-graph builder for grassroots Party-building reports."""
