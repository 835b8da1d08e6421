"""sharesearch: find out what the tasks of a multi-task network should share."""
__version__ = "0.1.0"
