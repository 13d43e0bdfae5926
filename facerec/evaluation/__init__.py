"""Evaluation: protocols over photo embedders, and verification metrics (numpy only)."""
