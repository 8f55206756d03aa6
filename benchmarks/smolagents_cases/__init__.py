"""smolagents' own interpreter test cases, extracted as data and run through codeloop's executors."""
