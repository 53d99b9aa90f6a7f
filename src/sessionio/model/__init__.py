"""The object model: sessions, processes, threads, requests, the filter manager, notifications."""
