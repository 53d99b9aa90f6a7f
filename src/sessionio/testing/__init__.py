"""Fakes and byte builders shipped for users' own tests."""
