"""A scripted LLM server and the real agent CLIs run against it (issue 6)."""
