"""Built-in tools: each module registers one tool; every module here is loaded."""
