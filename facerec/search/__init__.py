"""The gallery file and its searches: exact scan and the approximate index."""
