"""One folder per process kind; each has `__main__`, a settings class and a factory."""
